using Atp.Cli;

return await AtpCommand.InvokeAsync(args, Console.Out, Console.Error, CancellationToken.None).ConfigureAwait(false);
