using System.Buffers;
using System.Text.Json;
using Atp.Core.Events;

namespace Atp.LoadTest;

/// <summary>
/// Pre-generated request bodies per tenant (so the load generator spends its CPU on sending, not on building JSON,
/// on a machine it shares with the server) and the canonical leaf bytes ATP would store for the same events (the
/// baseline inserts those). Events carry no client id, so re-sending a body appends new events.
/// </summary>
internal sealed class Workload
{
    private const long MaxPoolBytes = 256L * 1024 * 1024;

    private Workload(TenantPool[] tenants, int batch)
    {
        Tenants = tenants;
        Batch = batch;
    }

    public IReadOnlyList<TenantPool> Tenants { get; }

    public int Batch { get; }

    public double AverageLeafBytes => Tenants.SelectMany(t => t.Leaves).Average(l => l.Length);

    public double AverageBodyBytes => Tenants.SelectMany(t => t.Bodies).Average(b => b.Length);

    public int MaxBodyBytes => Tenants.SelectMany(t => t.Bodies).Max(b => b.Length);

    public static Workload Create(int tenants, int batch, int eventBytes)
    {
        // Enough distinct events for variety (about 4096 per tenant), bounded in memory.
        var bodiesPerTenant = Math.Clamp((4096 + batch - 1) / batch, 4, 512);
        var estimatedBody = (long)batch * (eventBytes + 600);
        while (bodiesPerTenant > 2 && (long)tenants * bodiesPerTenant * estimatedBody > MaxPoolBytes)
        {
            bodiesPerTenant /= 2;
        }

        var now = DateTimeOffset.UtcNow;
        var pools = new TenantPool[tenants];
        Parallel.For(0, tenants, t =>
        {
            var generator = new EventGenerator(seed: 1000 + t, eventBytes);
            var bodies = new byte[bodiesPerTenant][];
            var leaves = new List<byte[]>(bodiesPerTenant * batch);
            for (var b = 0; b < bodiesPerTenant; b++)
            {
                var events = new byte[batch][];
                for (var e = 0; e < batch; e++)
                {
                    var buffer = new ArrayBufferWriter<byte>(eventBytes + 1024);
                    using (var writer = new Utf8JsonWriter(buffer))
                    {
                        generator.Write(writer, now);
                    }

                    events[e] = buffer.WrittenSpan.ToArray();
                    leaves.Add(ToLeaf(events[e], now));
                }

                bodies[b] = Body(events);
            }

            pools[t] = new TenantPool(bodies, leaves.ToArray());
        });

        return new Workload(pools, batch);
    }

    /// <summary>A single event object for batch 1, otherwise {"events":[…]}.</summary>
    private static byte[] Body(byte[][] events)
    {
        if (events.Length == 1)
        {
            return events[0];
        }

        var buffer = new ArrayBufferWriter<byte>(events.Sum(e => e.Length + 1) + 16);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("events");
            foreach (var e in events)
            {
                writer.WriteRawValue(e, skipInputValidation: true);
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// The leaf ATP stores for this event: validated by the server's own reader (a generator bug fails here, before
    /// any request), with an id and receive time assigned, canonicalized (RFC 8785).
    /// </summary>
    private static byte[] ToLeaf(byte[] eventJson, DateTimeOffset receivedAt)
    {
        using var document = JsonDocument.Parse(eventJson);
        var errors = new List<EventError>();
        var draft = EventReader.Read(document.RootElement, 0, errors)
            ?? throw new InvalidOperationException($"Generated event is not valid: {string.Join("; ", errors.Select(e => $"{e.Location}: {e.Detail}"))}\n{System.Text.Encoding.UTF8.GetString(eventJson)}");
        var auditEvent = new AuditEvent(
            Guid.CreateVersion7(receivedAt), draft.Type, draft.OccurredAt, receivedAt, draft.Actor, draft.Action, draft.Targets, draft.Outcome, draft.Context, draft.Data);
        return LeafWriter.ToLeaf(auditEvent);
    }
}

/// <summary>One tenant's request bodies and the leaves of their events.</summary>
internal sealed record TenantPool(byte[][] Bodies, byte[][] Leaves)
{
    /// <summary>The body a client sends on its nth request: clients of one tenant start at different places in the pool.</summary>
    public byte[] BodyFor(int worker, long iteration) => Bodies[(int)((iteration + (worker * 7L)) % Bodies.Length)];
}
