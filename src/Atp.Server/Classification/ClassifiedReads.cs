using System.Diagnostics.Metrics;
using System.Security.Claims;
using System.Text.Json;
using Atp.Core.Classification;
using Atp.Core.Keys;
using Atp.Server.Gateway;

namespace Atp.Server.Classification;

/// <summary>
/// What the read paths show of classified fields: callers holding <c>pii:read</c> get the clear value in place of each
/// token that opens, with the committed tokens beside the event (<c>sealed</c>: JSON pointer → token); every other
/// caller gets the event exactly as the leaf holds it.
/// </summary>
/// <remarks>
/// A token that does not open for the reader (its key is gone, it was altered, or it belongs to another tenant or
/// field) stays in place and is counted and logged by reason, never with its value: a read never fails for it. The log
/// line is written once per response for each pointer and reason, so a page of an erased subject's events is one line
/// per field, not one per event.
/// </remarks>
internal sealed partial class ClassifiedReads
{
    private readonly FieldOpener _opener;
    private readonly ILogger<ClassifiedReads> _logger;
    private readonly Counter<long> _opened;
    private readonly Counter<long> _unopened;

    public ClassifiedReads(FieldOpener opener, ILogger<ClassifiedReads> logger, IMeterFactory meters)
    {
        ArgumentNullException.ThrowIfNull(meters);
        _opener = opener;
        _logger = logger;
        var meter = meters.Create(Telemetry.AtpMetrics.MeterName);
        _opened = meter.CreateCounter<long>("atp.classification.fields_opened", "{field}", "Sealed fields shown in clear to pii:read callers");
        _unopened = meter.CreateCounter<long>("atp.classification.fields_unopened", "{field}", "Sealed fields left sealed for pii:read callers, by reason (key-missing, key-unwrap-failed, does-not-open, malformed, not-json)");
    }

    /// <summary>The opening of one response for this caller and tenant, or null when the caller does not hold <c>pii:read</c>.</summary>
    public Reader? ReaderFor(ClaimsPrincipal user, string tenantId) =>
        AtpClaims.HasScope(user, Scopes.PiiRead) ? new Reader(this, _opener.Begin(tenantId), tenantId) : null;

    /// <summary>One response's reads of one tenant's events by a <c>pii:read</c> caller.</summary>
    internal sealed class Reader(ClassifiedReads reads, FieldOpener.Pass pass, string tenantId)
    {
        private readonly HashSet<(string Pointer, UnopenedReason Reason)> _logged = [];

        /// <summary>
        /// The event to show for <paramref name="leaf"/> (parsed as <paramref name="stored"/>), the tokens its clear
        /// values replace, and the tokens that stayed sealed with why (<c>key-missing</c>: the subject was erased), if any.
        /// </summary>
        public async ValueTask<ShownEvent> ShowAsync(ReadOnlyMemory<byte> leaf, JsonElement stored, CancellationToken cancellationToken)
        {
            if (await pass.OpenAsync(leaf, cancellationToken).ConfigureAwait(false) is not { } opened)
            {
                return new(stored, null, null);
            }

            reads.Record(tenantId, opened, _logged);
            var unopened = opened.Unopened.Count == 0
                ? null
                : opened.Unopened.GroupBy(f => f.Location, StringComparer.Ordinal).ToDictionary(g => g.Key, g => ReasonName(g.First().Reason), StringComparer.Ordinal);
            return opened.Sealed.Count == 0 ? new(stored, null, unopened) : new(opened.Event, opened.Sealed, unopened);
        }
    }

    /// <summary>What a <c>pii:read</c> caller is shown of one event: see <see cref="Reader.ShowAsync"/>.</summary>
    internal readonly record struct ShownEvent(JsonElement Event, IReadOnlyDictionary<string, string>? Sealed, IReadOnlyDictionary<string, string>? Unopened);

    private void Record(string tenantId, OpenedEvent opened, HashSet<(string Pointer, UnopenedReason Reason)> logged)
    {
        if (opened.Sealed.Count > 0)
        {
            _opened.Add(opened.Sealed.Count);
        }

        foreach (var field in opened.Unopened)
        {
            var reason = ReasonName(field.Reason);
            _unopened.Add(1, new KeyValuePair<string, object?>("atp.reason", reason));
            if (logged.Add((field.Location, field.Reason)))
            {
                LogUnopened(tenantId, field.Location, reason);
            }
        }
    }

    private static string ReasonName(UnopenedReason reason) => reason switch
    {
        UnopenedReason.KeyMissing => "key-missing",
        UnopenedReason.KeyUnwrapFailed => "key-unwrap-failed",
        UnopenedReason.DoesNotOpen => "does-not-open",
        UnopenedReason.NotJson => "not-json",
        _ => "malformed",
    };

    [LoggerMessage(EventId = 1801, Level = LogLevel.Warning, Message = "Sealed fields of tenant {Tenant} at {Pointer} stayed sealed for a pii:read caller: {Reason} (logged once per response)")]
    private partial void LogUnopened(string tenant, string pointer, string reason);
}
