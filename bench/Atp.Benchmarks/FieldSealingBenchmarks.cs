using System.Buffers;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Atp.Core.Classification;
using Atp.Core.Events;
using Atp.Core.Ingestion;
using Atp.Core.Storage;
using Atp.Integrity;
using Atp.LoadTest;
using BenchmarkDotNet.Attributes;

namespace Atp.Benchmarks;

/// <summary>
/// What sealing the classified fields (actor name, IP, user agent; docs/classification.md) costs at ingest, with every
/// subject's data key already in the ring's cache (the steady state: no store read, no KEK unwrap per event).
/// </summary>
[MemoryDiagnoser]
public class FieldSealingBenchmarks
{
    private static readonly JsonDocumentOptions ParseOptions = new() { MaxDepth = 64 };
    private FieldSealer _sealer = null!;
    private IngestionService _ingestion = null!;
    private EventDraft[] _one = [];
    private EventDraft[] _oneWithClientId = [];
    private byte[] _body = [];

    [Params(100)]
    public int Events { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var store = new AcceptingLogStore();
        _sealer = new FieldSealer(new DataKeyRing(new MemoryKeyProvider(), store, capacity: 100_000));
        _ingestion = new IngestionService(store, TimeProvider.System, _sealer);
        var generator = new EventGenerator(seed: 2000, dataBytes: 300);
        var buffer = new ArrayBufferWriter<byte>(Events * 1400);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("events");
            for (var i = 0; i < Events; i++)
            {
                generator.Write(writer, new DateTimeOffset(2026, 11, 26, 10, 15, 30, TimeSpan.Zero));
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        _body = buffer.WrittenSpan.ToArray();
        var drafts = Read();
        _one = [drafts[0] with { Actor = drafts[0].Actor with { Name = "Grace Hopper" }, Context = new EventContext("203.0.113.7", "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0", null) }];
        _oneWithClientId = [_one[0] with { Id = Guid.NewGuid() }];

        // Warm: every subject's key is created once and, with the first committed append, moves to the cache.
        Ingest(seal: true);
        SealOneEvent().GetAwaiter().GetResult();
        _ingestion.AppendClassifiedAsync("acme", _one, null, null, StorageQuota.Unlimited, CancellationToken.None).GetAwaiter().GetResult();
    }

    /// <summary>CPU time per event of ingest (parse, read, leaves) without and with sealing, interleaved in one process (<c>-- fieldenc</c>).</summary>
    public static void Print(TextWriter output)
    {
        var run = new FieldSealingBenchmarks { Events = 100 };
        run.Setup();
        var (plain, sealedPath, plainBytes, withBytes) = InterleavedCpu.Measure(seal => run.Ingest(seal), run.Events);
        output.WriteLine($"parse + read + leaves:          {plain,7:F2} µs CPU/event, {plainBytes,8:F0} B/event");
        output.WriteLine($"the same + field sealing:       {sealedPath,7:F2} µs CPU/event, {withBytes,8:F0} B/event");
        output.WriteLine($"sealing alone:                  {sealedPath - plain,7:F2} µs CPU/event ({(sealedPath - plain) / plain:P0} of the rest)");

        // A tenant policy classifying one data field (docs/classification.md), in a cell that leaves the envelope in clear.
        var (plain2, dataPath, _, dataBytes) = InterleavedCpu.Measure(seal => run.Ingest(seal ? DataFieldPlan : null), run.Events);
        output.WriteLine($"parse + read + leaves (again):  {plain2,7:F2} µs CPU/event");
        output.WriteLine($"the same + one data field:      {dataPath,7:F2} µs CPU/event, {dataBytes,8:F0} B/event");
        output.WriteLine($"data field sealing alone:       {dataPath - plain2,7:F2} µs CPU/event ({(dataPath - plain2) / plain2:P0} of the rest)");
    }

    private static readonly SealingPlan DataFieldPlan = new(false, ["/data/source"]);

    [Benchmark(Description = "seal one event's actor name, IP and user agent (random nonces)")]
    public async Task<int> SealOneEvent() => (await _sealer.SealAsync("acme", _one, CancellationToken.None)).Drafts.Count;

    [Benchmark(Description = "the same with a client-assigned id (synthetic nonces)")]
    public async Task<int> SealOneEventWithClientId() => (await _sealer.SealAsync("acme", _oneWithClientId, CancellationToken.None)).Drafts.Count;

    [Benchmark(Baseline = true, Description = "parse + EventReader.Read + IngestionService, batch")]
    public int IngestBatch() => Ingest(seal: false);

    [Benchmark(Description = "the same + field sealing, batch")]
    public int IngestSealedBatch() => Ingest(seal: true);

    [Benchmark(Description = "the same + one classified data field (tenant policy), batch")]
    public int IngestDataFieldSealedBatch() => Ingest(DataFieldPlan);

    private int Ingest(bool seal) => Ingest(seal ? SealingPlan.EnvelopeOnly : null);

    private int Ingest(SealingPlan? plan)
    {
        var drafts = Read();
        var outcome = plan is not null
            ? _ingestion.AppendClassifiedAsync("acme", drafts, null, null, StorageQuota.Unlimited, plan, CancellationToken.None).GetAwaiter().GetResult()
            : _ingestion.AppendAsync("acme", drafts, null, CancellationToken.None).GetAwaiter().GetResult();
        return outcome is Appended ? drafts.Count : -1;
    }

    private List<EventDraft> Read()
    {
        using var document = JsonDocument.Parse(_body, ParseOptions);
        var errors = new List<EventError>();
        var drafts = new List<EventDraft>(Events);
        var i = 0;
        foreach (var element in document.RootElement.GetProperty("events").EnumerateArray())
        {
            if (EventReader.Read(element, i++, errors) is { } draft)
            {
                drafts.Add(draft);
            }
        }

        return drafts;
    }

    /// <summary>A KEK in memory: the provider is only asked on a cache miss, which the steady state measured here never has.</summary>
    internal sealed class MemoryKeyProvider : IKeyProvider
    {
        private readonly byte[] _kek = RandomNumberGenerator.GetBytes(32);
        private readonly ConcurrentDictionary<string, byte[]> _blind = new();

        public ValueTask<byte[]> WrapAsync(string tenantId, string keyId, ReadOnlyMemory<byte> dataKey, CancellationToken cancellationToken)
        {
            using var aes = new AesGcm(_kek, 16);
            var wrapped = new byte[12 + 16 + dataKey.Length];
            RandomNumberGenerator.Fill(wrapped.AsSpan(0, 12));
            aes.Encrypt(wrapped.AsSpan(0, 12), dataKey.Span, wrapped.AsSpan(28), wrapped.AsSpan(12, 16), Encoding.UTF8.GetBytes(tenantId + "\n" + keyId));
            return ValueTask.FromResult(wrapped);
        }

        public ValueTask<byte[]> UnwrapAsync(string tenantId, string keyId, ReadOnlyMemory<byte> wrapped, CancellationToken cancellationToken)
        {
            using var aes = new AesGcm(_kek, 16);
            var key = new byte[wrapped.Length - 28];
            aes.Decrypt(wrapped.Span[..12], wrapped.Span[28..], wrapped.Span.Slice(12, 16), key, Encoding.UTF8.GetBytes(tenantId + "\n" + keyId));
            return ValueTask.FromResult(key);
        }

        public ValueTask<byte[]> GetBlindIndexKeyAsync(string tenantId, CancellationToken cancellationToken) =>
            ValueTask.FromResult(_blind.GetOrAdd(tenantId, _ => RandomNumberGenerator.GetBytes(32)));
    }
}
