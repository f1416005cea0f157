using Atp.Server;

var app = AtpServer.Build(args);
await AtpServer.InitializeAsync(app, CancellationToken.None);
await app.RunAsync();

/// <summary>Entry point type, public so tests can locate the assembly.</summary>
public partial class Program;
