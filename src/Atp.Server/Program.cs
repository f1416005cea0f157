using Atp.Server;
using Microsoft.AspNetCore.Connections;

try
{
    var app = AtpServer.Build(args);
    await AtpServer.InitializeAsync(app, CancellationToken.None);
    await app.RunAsync();
}
catch (Microsoft.Extensions.Options.OptionsValidationException e)
{
    // A configuration mistake: what is wrong, in the operator's words, not a stack trace.
    await Console.Error.WriteLineAsync($"ATP cannot start: the configuration is not valid: {string.Join(" ", e.Failures)}");
    return 1;
}
catch (Atp.Server.Integrity.SigningKeyUnavailableException e)
{
    // The signing key's module, token, key or PIN: the message says which, and never carries the PIN.
    await Console.Error.WriteLineAsync($"ATP cannot start: {e.Message}");
    return 1;
}
catch (IOException e) when (e.InnerException is AddressInUseException)
{
    // One sentence an operator can act on, not a stack trace (appsettings.json keeps the host's own "failed to
    // start" log line, which carries the trace, quiet; any other start-up failure still ends the process with it).
    await Console.Error.WriteLineAsync($"ATP cannot start: {e.Message.TrimEnd('.')}. Stop what uses it, or choose another address with --urls, ASPNETCORE_URLS or ASPNETCORE_HTTP_PORTS.");
    return 1;
}

return 0;
