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
    private readonly IngestionService _ingestion = new(new AcceptingLogStore(), TimeProvider.System);
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
}
