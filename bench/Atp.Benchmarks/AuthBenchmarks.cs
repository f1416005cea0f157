using System.Security.Cryptography;
using System.Text;
using Atp.Core.Keys;
using Atp.Core.Signatures;
using BenchmarkDotNet.Attributes;

namespace Atp.Benchmarks;

/// <summary>
/// The per-request work of authentication, without HTTP: a bearer key's checks and hash, and a signed request's
/// header parsing, Content-Digest over a batch-of-100 body (≈ 30 KiB), the unsealing of the secret, the HMAC and the
/// nonce fingerprint. Compared with the server's CPU per request, this is what authentication adds to ingest.
/// </summary>
[MemoryDiagnoser]
public class AuthBenchmarks : IDisposable
{
    private const string KeyId = "key_0123456789abcdef";
    private string _apiKey = "";
    private byte[] _secret = [];
    private byte[] _body = [];
    private AtpSignedHeaders _headers = null!;
    private AesGcm _kek = null!;
    private byte[] _sealed = [];
    private string _targetUri = "";

    [GlobalSetup]
    public void Setup()
    {
        _apiKey = ApiKeyFormat.Generate();
        _secret = RandomNumberGenerator.GetBytes(32);
        _targetUri = "http://127.0.0.1:8080/v1/tenants/loadtest-0/events";
        var events = Enumerable.Range(0, 100).Select(i =>
            $"{{\"type\":\"acme.audit.v1\",\"occurredAt\":\"2026-11-26T10:00:00Z\",\"actor\":{{\"type\":\"user\",\"id\":\"user-{i}\",\"name\":\"Ada Lovelace\"}},\"action\":\"document.update\",\"targets\":[{{\"type\":\"document\",\"id\":\"doc-{i}\"}}],\"outcome\":\"success\",\"data\":{{\"pad\":\"{new string('x', 120)}\"}}}}");
        _body = Encoding.UTF8.GetBytes("{\"events\":[" + string.Join(',', events) + "]}");
        _headers = AtpRequestSignature.Sign(_secret, KeyId, "POST", _targetUri, _body, 1_764_151_200, AtpRequestSignature.NewNonce());
        _kek = new AesGcm(RandomNumberGenerator.GetBytes(32), 16);
        _sealed = new byte[1 + 12 + 16 + 32];
        RandomNumberGenerator.Fill(_sealed.AsSpan(1, 12));
        _kek.Encrypt(_sealed.AsSpan(1, 12), _secret, _sealed.AsSpan(29), _sealed.AsSpan(13, 16), Encoding.UTF8.GetBytes(KeyId));
    }

    [GlobalCleanup]
    public void Cleanup() => _kek.Dispose();

    public void Dispose()
    {
        _kek?.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Body size the signed benchmark digests.</summary>
    public int BodyBytes => _body.Length;

    [Benchmark(Description = "bearer key: format check + SHA-256")]
    public byte[] Bearer() => ApiKeyFormat.IsWellFormed(_apiKey) ? ApiKeyFormat.Hash(_apiKey) : [];

    [Benchmark(Description = "signed request (≈30 KiB body): parse + digest + unseal + HMAC + nonce")]
    public bool SignedRequest()
    {
        if (!AtpRequestSignature.TryParse(_headers.SignatureInput, _headers.Signature, hasBody: true, out var signature, out _))
        {
            return false;
        }

        if (!ContentDigest.Verify(_headers.ContentDigest, _body).IsValid)
        {
            return false;
        }

        Span<byte> secret = stackalloc byte[32];
        _kek.Decrypt(_sealed.AsSpan(1, 12), _sealed.AsSpan(29), _sealed.AsSpan(13, 16), secret, Encoding.UTF8.GetBytes(KeyId));
        var components = new SignatureComponents("POST", _targetUri, name => name == "content-digest" ? _headers.ContentDigest : null);
        Span<byte> fingerprint = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(KeyId + "\n" + signature.Nonce), fingerprint);
        return signature.Verify(secret, components).IsValid;
    }
}
