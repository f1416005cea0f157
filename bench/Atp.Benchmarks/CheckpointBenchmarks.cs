using Atp.Integrity;
using BenchmarkDotNet.Attributes;

namespace Atp.Benchmarks;

/// <summary>Signing a checkpoint (what the sealer does per grown tenant per interval) and opening one (what every verifier does).</summary>
[MemoryDiagnoser]
public class CheckpointBenchmarks
{
    private NoteSigner _signer = null!;
    private NoteVerifier[] _trusted = [];
    private Checkpoint _checkpoint = null!;
    private byte[] _signed = [];

    [GlobalSetup]
    public void Setup()
    {
        _signer = NoteSigner.FromSeed("atp.example.com/westeu-prod-1", new byte[32]);
        _trusted = [_signer.Verifier];
        _checkpoint = new Checkpoint("atp.example.com/westeu-prod-1/acme", 123_456_789, Hash.Sha256("root"u8));
        _signed = _checkpoint.Sign(_signer).ToUtf8Bytes();
    }

    [GlobalCleanup]
    public void Cleanup() => _signer.Dispose();

    [Benchmark(Description = "sign checkpoint")]
    public string Sign() => _checkpoint.Sign(_signer).ToString();

    [Benchmark(Description = "parse + verify checkpoint")]
    public bool Verify() => Checkpoint.Open(_signed, _trusted, out _).IsValid;
}
