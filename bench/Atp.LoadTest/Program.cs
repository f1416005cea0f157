using Atp.LoadTest;

return await LoadTestCommand.InvokeAsync(args);
