namespace Atp.Cli;

/// <summary>Process exit codes shared by every command, so scripts can tell a failed check from a broken call.</summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int VerificationFailed = 1;

    /// <summary><c>atp request</c>: the server answered with a status other than 2xx.</summary>
    public const int HttpError = 1;
    public const int BadInput = 2;
}

/// <summary>Input the command cannot use (missing file, malformed JSON or key, unreachable server): exit code 2 with this message.</summary>
internal sealed class CliInputException(string message) : Exception(message);
