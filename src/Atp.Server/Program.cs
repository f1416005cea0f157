using Atp.Server;

var app = AtpServer.Build(args);
await AtpServer.InitializeAsync(app, CancellationToken.None);
await app.RunAsync();
