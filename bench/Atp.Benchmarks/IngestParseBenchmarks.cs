using System.Buffers;
using System.Text.Json;
using Atp.Core.Events;
using Atp.Core.Ingestion;
using Atp.Core.Storage;
using Atp.Integrity;
using Atp.LoadTest;
using BenchmarkDotNet.Attributes;

namespace Atp.Benchmarks;

/// <summary>
/// The server's per-request CPU before the storage engine, for a batch of load-test events: parse the body, validate
/// every event (<see cref="EventReader.Read"/>), then assign ids and build leaves and leaf hashes
/// (<see cref="IngestionService.AppendAsync"/> against a store that only completes the task).
/// </summary>
[MemoryDiagnoser]
public class IngestParseBenchmarks
{
    private static readonly JsonDocumentOptions ParseOptions = new() { MaxDepth = 64 };
    private readonly IngestionService _ingestion = new(new CompletingStore(), TimeProvider.System);
    private byte[] _body = [];

    [Params(100)]
    public int Events { get; set; }

    [Params(300)]
    public int DataBytes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var generator = new EventGenerator(seed: 1000, DataBytes);
        var buffer = new ArrayBufferWriter<byte>(Events * (DataBytes + 1024));
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
        if (Read().Count != Events)
        {
            throw new InvalidOperationException("The generated events did not validate.");
        }

        Console.WriteLine($"// request body: {_body.Length} bytes, {Events} events");
    }

    [Benchmark(Description = "parse + EventReader.Read, batch")]
    public int ReadBatch() => Read().Count;

    [Benchmark(Description = "parse + EventReader.Read + IngestionService (leaves, hashes), batch")]
    public int IngestBatch()
    {
        var drafts = Read();
        var outcome = _ingestion.AppendAsync("acme", drafts, null, CancellationToken.None).GetAwaiter().GetResult();
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

        return errors.Count == 0 ? drafts : throw new InvalidOperationException(errors[0].Detail);
    }

    /// <summary>Accepts every append at once: the storage engine is not what this measures.</summary>
    private sealed class CompletingStore : ILogStore
    {
        private static readonly Task<AppendOutcome> Done = Task.FromResult<AppendOutcome>(new Appended([], Replayed: false));

        public Task<AppendOutcome> AppendAsync(AppendRequest request, CancellationToken cancellationToken) => Done;

        public Task<TreeHead?> GetTreeHeadAsync(string tenantId, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<StorageUsage?> GetStorageUsageAsync(string tenantId, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<LogEntry?> GetEntryAsync(string tenantId, ulong index, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<LogEntry?> FindEventAsync(string tenantId, Guid eventId, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<IReadOnlyList<LogEntry>> ListEntriesAsync(string tenantId, ulong fromIndex, int limit, CancellationToken cancellationToken) => throw new NotSupportedException();

        public IMerkleNodeReader NodeReader(string tenantId) => throw new NotSupportedException();

        public Task<IReadOnlyList<UnsealedLog>> ListUnsealedAsync(CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task SaveCheckpointAsync(string tenantId, ulong size, string note, DateTimeOffset createdAt, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<StoredCheckpoint?> GetLatestCheckpointAsync(string tenantId, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<StoredCheckpoint?> GetCheckpointAtOrAfterAsync(string tenantId, ulong size, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<int> PruneIdempotencyKeysAsync(DateTimeOffset before, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<IReadOnlyList<LogSize>> ListLogSizesAsync(CancellationToken cancellationToken) => throw new NotSupportedException();

        public LogQuarantine Quarantine { get; } = new();
    }
}
