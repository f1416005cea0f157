using System.Buffers;
using System.Text;
using Atp.Integrity;
using BenchmarkDotNet.Attributes;

namespace Atp.Benchmarks;

/// <summary>RFC 8785 canonicalisation of a realistic audit event (~1 KiB); MB/s = input bytes / mean time.</summary>
[MemoryDiagnoser]
public class JcsBenchmarks
{
    private readonly ArrayBufferWriter<byte> _output = new(4096);
    private byte[] _event = [];

    public int InputBytes => _event.Length;

    [GlobalSetup]
    public void Setup()
    {
        _event = Encoding.UTF8.GetBytes("""
            {
              "type": "document.update", "occurredAt": "2026-11-26T10:15:30.123Z", "id": "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b",
              "actor": { "type": "user", "id": "user_01HZX3Q9K2", "name": "Jane Doe" },
              "action": "document.update",
              "targets": [ { "type": "document", "id": "doc_8812", "name": "Q3 board minutes.pdf" },
                           { "type": "folder", "id": "fld_21", "name": "Board" } ],
              "outcome": "success",
              "context": { "ip": "203.0.113.42", "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36", "requestId": "req_7f3a9c" },
              "data": { "changes": [ { "field": "title", "from": "Draft", "to": "Final" }, { "field": "pages", "from": 12, "to": 14.5 } ],
                        "reason": "Approved by the audit committee — see ticket ÄÖÜ-42", "retention": { "days": 2555, "legalHold": false },
                        "tags": ["finance", "board", "q3"], "size": 1048576, "ratio": 0.000123, "big": 1e21 }
            }
            """);
        Console.WriteLine($"// JCS input: {_event.Length} bytes");
    }

    [Benchmark(Description = "JCS canonicalise audit event")]
    public int Canonicalize()
    {
        _output.ResetWrittenCount();
        JsonCanonicalizer.Canonicalize(_event, _output);
        return _output.WrittenCount;
    }
}
