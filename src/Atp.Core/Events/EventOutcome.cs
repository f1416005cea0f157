namespace Atp.Core.Events;

/// <summary>The outcomes an event may report (as WorkOS and OCSF do).</summary>
public static class EventOutcome
{
    public const string Success = "success";
    public const string Failure = "failure";
    public const string Unknown = "unknown";

    public static bool IsValid(string value) => value is Success or Failure or Unknown;
}
