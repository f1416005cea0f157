using System.Buffers;
using System.Text.Json;
using Atp.Core.Events;
using Atp.Core.Ingestion;
using Atp.Core.Schemas;
using Atp.Core.Storage;
using Atp.Integrity;
using Atp.LoadTest;
using BenchmarkDotNet.Attributes;

namespace Atp.Benchmarks;

/// <summary>
/// What schema validation (docs/schemas.md) adds to ingest: the load-test batch of <see cref="IngestParseBenchmarks"/>
/// through parse, <see cref="EventReader.Read"/> and <see cref="IngestionService"/>, without and with every event's
/// data evaluated against a realistic schema compiled once (as the server's per-(tenant, type, version) cache holds it).
/// </summary>
[MemoryDiagnoser]
public class SchemaValidationBenchmarks
{
    private static readonly JsonDocumentOptions ParseOptions = new() { MaxDepth = 64 };
    private readonly IngestionService _ingestion = new(new AcceptingLogStore(), TimeProvider.System);
    private EventSchema _schema = null!;
    private byte[] _body = [];

    [Params(100)]
    public int Events { get; set; }

    [Params(300)]
    public int DataBytes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        using var schema = JsonDocument.Parse(EventGenerator.DataSchema);
        _schema = EventSchema.Compile(schema.RootElement, out var errors) ?? throw new InvalidOperationException(string.Join("; ", errors));
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
        if (Ingest(validate: true) != Events)
        {
            throw new InvalidOperationException("The generated events do not all match the schema.");
        }
    }

    /// <summary>
    /// CPU time per event of both paths, interleaved in one process (<c>-- schemas</c>): on a busy machine process CPU
    /// time is steadier than BenchmarkDotNet's wall-clock iterations.
    /// </summary>
    public static void Print(TextWriter output)
    {
        var run = new SchemaValidationBenchmarks { Events = 100, DataBytes = 300 };
        run.Setup();
        var (plain, validated, plainBytes, withBytes) = InterleavedCpu.Measure(validate => run.Ingest(validate), run.Events);
        output.WriteLine($"parse + read + leaves:          {plain,7:F2} µs CPU/event, {plainBytes,8:F0} B/event");
        output.WriteLine($"the same + schema validation:   {validated,7:F2} µs CPU/event, {withBytes,8:F0} B/event");
        output.WriteLine($"fast path for the schema:       {(run._schema.HasFastPath ? "yes" : "no (JsonSchema.Net evaluates every event)")}");
        output.WriteLine($"validation alone:               {validated - plain,7:F2} µs CPU/event ({(validated - plain) / plain:P0} of the rest)");
    }

    [Benchmark(Baseline = true, Description = "parse + EventReader.Read + IngestionService, batch")]
    public int IngestBatch() => Ingest(validate: false);

    [Benchmark(Description = "the same + schema validation of every event's data, batch")]
    public int IngestValidatedBatch() => Ingest(validate: true);

    private int Ingest(bool validate)
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

        if (validate)
        {
            foreach (var draft in drafts)
            {
                if (_schema.Validate(draft.Data!.Value) is { } violation)
                {
                    throw new InvalidOperationException($"{violation.InstanceLocation} {violation.Keyword}: {violation.Message}");
                }
            }
        }

        var outcome = _ingestion.AppendAsync("acme", drafts, null, CancellationToken.None).GetAwaiter().GetResult();
        return outcome is Appended ? drafts.Count : -1;
    }
}
