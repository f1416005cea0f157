using System.Security.Claims;
using Atp.Core.Events;
using Atp.Server.Gateway;

namespace Atp.Server.Audit;

/// <summary>One entry of the platform audit log: an administrative action, a refused request, or an alert.</summary>
internal sealed record PlatformEvent(
    string Type,
    string Action,
    Party Actor,
    string? TenantId,
    string Outcome,
    EventContext? Context,
    IReadOnlyDictionary<string, string>? Data);

/// <summary>The event types and actions of the platform audit log, and how they are built from a request.</summary>
internal static class PlatformEvents
{
    public const string AdminType = "atp.admin.v1";
    public const string SecurityType = "atp.security.v1";
    public const string AlertType = "atp.alerts.ops.v1";

    public const string AuthFailed = "auth.failed";
    public const string SignatureInvalid = "auth.signature-invalid";
    public const string SignatureReplayed = "auth.signature-replayed";
    public const string SignatureRequired = "auth.signature-required";
    public const string CrossTenant = "access.cross-tenant";
    public const string ResidencyRefused = "access.residency-refused";
    public const string RateLimited = "access.rate-limited";

    public static PlatformEvent AdminAction(HttpContext context, string action, string tenantId, Dictionary<string, string>? data = null) =>
        new(AdminType, action, ActorOf(context), tenantId, EventOutcome.Success, ContextOf(context), data);

    public static PlatformEvent Refusal(HttpContext context, string action, string? tenantId, string detail) =>
        new(SecurityType, action, ActorOf(context), tenantId, EventOutcome.Failure, ContextOf(context), new Dictionary<string, string> { ["detail"] = detail, ["path"] = context.Request.Path.Value ?? "" });

    /// <summary>Who made the request: the credential when one was accepted, else the client address.</summary>
    public static Party ActorOf(HttpContext context) => ActorOf(context.User, ClientIp(context));

    public static Party ActorOf(ClaimsPrincipal user, string ip) =>
        user.FindFirst(AtpClaims.KeyId)?.Value is { } keyId
            ? keyId.StartsWith(AtpClaims.UserPrefix, StringComparison.Ordinal)
                ? new Party("user", keyId[AtpClaims.UserPrefix.Length..], null)
                : new Party("api-key", keyId, null)
            : new Party("client", ip, null);

    public static string ClientIp(HttpContext context) => context.Connection.RemoteIpAddress?.ToString() ?? "unknown";

    public static EventContext ContextOf(HttpContext context)
    {
        string? agent = context.Request.Headers.UserAgent;
        return new EventContext(ClientIp(context), agent is { Length: > 0 } ? agent[..Math.Min(agent.Length, 256)] : null, context.TraceIdentifier);
    }
}
