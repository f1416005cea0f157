using System.Buffers;
using System.Text.Json;
using Atp.Core.Classification;
using Atp.Core.Events;
using Atp.Core.Ingestion;
using Atp.Core.Storage;
using Atp.LoadTest;

namespace Atp.Benchmarks;

/// <summary>
/// What reading sealed events costs (docs/classification.md): a page of leaves whose actor name, IP and user agent are
/// sealed, written out as a reader without <c>pii:read</c> gets them (the tokens, as the leaf holds them) and as a
/// <c>pii:read</c> reader gets them (every token opened under its subject's data key, the clear values and the
/// <c>sealed</c> map written). Keys are in the ring's cache (the steady state); no store, no HTTP.
/// </summary>
internal sealed class FieldOpeningBenchmarks
{
    private const int Events = 100;
    private readonly FieldOpener _opener;
    private readonly byte[][] _leaves;

    private FieldOpeningBenchmarks()
    {
        var store = new AcceptingLogStore();
        var sealer = new FieldSealer(new DataKeyRing(new FieldSealingBenchmarks.MemoryKeyProvider(), store, capacity: 100_000));
        _opener = new FieldOpener(sealer.Ring);
        var generator = new EventGenerator(seed: 2001, dataBytes: 300);
        var buffer = new ArrayBufferWriter<byte>(1400);
        var drafts = new List<EventDraft>(Events);
        for (var i = 0; i < Events; i++)
        {
            buffer.Clear();
            using (var writer = new Utf8JsonWriter(buffer))
            {
                generator.Write(writer, new DateTimeOffset(2026, 11, 26, 10, 15, 30, TimeSpan.Zero));
            }

            using var document = JsonDocument.Parse(buffer.WrittenMemory);
            var draft = EventReader.Read(document.RootElement, i, []) ?? throw new InvalidOperationException("the generator wrote an invalid event");
            drafts.Add(draft with
            {
                Actor = draft.Actor with { Name = $"Person {i % 17}" },
                Context = new EventContext($"203.0.113.{i % 250}", "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0", null),
            });
        }

        // The committed append moves every subject's new key into the ring's cache, as on a server.
        var outcome = new IngestionService(store, TimeProvider.System, sealer)
            .AppendClassifiedAsync("acme", drafts, null, null, StorageQuota.Unlimited, SealingPlan.EnvelopeOnly, CancellationToken.None).GetAwaiter().GetResult();
        if (outcome is not Appended || store.LastRequest is not { } request)
        {
            throw new InvalidOperationException($"the sealed events were not appended: {outcome}");
        }

        _leaves = [.. request.Entries.Select(e => e.Leaf)];
    }

    /// <summary>CPU time per event of writing a page as tokens and opened, interleaved in one process (<c>-- fieldopen</c>).</summary>
    public static void Print(TextWriter output)
    {
        var run = new FieldOpeningBenchmarks();
        var opened = run.Page(open: true);
        if (opened != Events)
        {
            throw new InvalidOperationException($"{Events - opened} of {Events} leaves did not open: the measurement would not be of opening");
        }

        var (tokens, clear, tokenBytes, clearBytes) = InterleavedCpu.Measure(open => run.Page(open), Events);
        output.WriteLine($"page written with the tokens (no pii:read): {tokens,7:F2} µs CPU/event, {tokenBytes,8:F0} B/event");
        output.WriteLine($"page opened for pii:read:                   {clear,7:F2} µs CPU/event, {clearBytes,8:F0} B/event");
        output.WriteLine($"opening alone:                              {clear - tokens,7:F2} µs CPU/event ({(clear - tokens) / tokens:P0} of the rest)");
    }

    private int Page(bool open)
    {
        var output = new ArrayBufferWriter<byte>(Events * 1600);
        using var writer = new Utf8JsonWriter(output);
        writer.WriteStartArray();
        var pass = open ? _opener.Begin("acme") : null;
        var openedCount = 0;
        foreach (var leaf in _leaves)
        {
            if (pass?.OpenAsync(leaf, CancellationToken.None).AsTask().GetAwaiter().GetResult() is { Unopened.Count: 0 } shown)
            {
                writer.WriteStartObject();
                writer.WritePropertyName("event");
                shown.Event.WriteTo(writer);
                writer.WriteStartObject("sealed");
                foreach (var (pointer, token) in shown.Sealed)
                {
                    writer.WriteString(pointer, token);
                }

                writer.WriteEndObject();
                writer.WriteEndObject();
                openedCount++;
                continue;
            }

            using var document = JsonDocument.Parse(leaf);
            writer.WriteStartObject();
            writer.WritePropertyName("event");
            document.RootElement.WriteTo(writer);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        return openedCount;
    }
}
