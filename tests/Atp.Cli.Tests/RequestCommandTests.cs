using System.Text;
using Atp.Core.Signatures;

namespace Atp.Cli.Tests;

/// <summary><c>atp request</c> against a real loopback HTTP listener; what arrived is checked with the Core verifier.</summary>
public sealed class RequestCommandTests : IDisposable
{
    private const string ApiKey = "atp_test_bearer_key";
    private const string KeyId = "key_0123456789abcdef";
    private static readonly byte[] Secret = Enumerable.Range(100, 32).Select(i => (byte)i).ToArray();
    private static readonly string SecretBase64 = Convert.ToBase64String(Secret);
    private const string Events = "{\"events\":[{\"type\":\"document.update\",\"action\":\"document.update\"}]}";

    private readonly LoopbackServer _server = new();
    private readonly string _directory = Directory.CreateTempSubdirectory("atp-request-").FullName;

    private static CliEnvironment Environment(Dictionary<string, string>? variables = null, string stdin = "") => new(
        name => variables?.GetValueOrDefault(name),
        () => new MemoryStream(Encoding.UTF8.GetBytes(stdin)),
        TimeProvider.System);

    private static Dictionary<string, string> SigningVariables() => new()
    {
        ["ATP_API_KEY"] = ApiKey,
        ["ATP_KEY_ID"] = KeyId,
        ["ATP_SIGNING_SECRET"] = SecretBase64,
    };

    private string EventsUrl => _server.BaseUrl + "/v1/tenants/acme/events?x=1";

    private async Task<string> WriteFileAsync(string name, string content)
    {
        var path = Path.Combine(_directory, name);
        await File.WriteAllTextAsync(path, content);
        return path;
    }

    /// <summary>The server's checks: the profile, the HMAC under the key's secret, and the body against Content-Digest.</summary>
    private static AtpSignature AssertSignedAndVerifies(ReceivedRequest received)
    {
        Assert.True(
            AtpRequestSignature.TryParse(received.Header("Signature-Input"), received.Header("Signature"), received.Body.Length > 0, out var signature, out var failure),
            failure);
        Assert.Equal(KeyId, signature.KeyId);
        Assert.InRange(signature.Created, DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 60, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);
        var verified = signature.Verify(Secret, received.Components());
        Assert.True(verified.IsValid, verified.Failure);
        return signature;
    }

    [Fact]
    public async Task Sends_an_unsigned_request_with_only_the_bearer_key()
    {
        var served = _server.RespondOnceAsync(200, "{\"id\":\"acme\"}");

        var result = await CliRun.InProcessAsync(Environment(new() { ["ATP_API_KEY"] = ApiKey }), "request", "GET", _server.BaseUrl + "/v1/tenants/acme");
        var received = await served;

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("{\"id\":\"acme\"}", result.Output);
        Assert.Equal("HTTP 200 OK\n", result.Error);
        Assert.Equal("GET", received.Method);
        Assert.Equal(_server.BaseUrl + "/v1/tenants/acme", received.TargetUri);
        Assert.Equal("Bearer " + ApiKey, received.Header("Authorization"));
        Assert.Null(received.Header("Signature-Input"));
        Assert.Null(received.Header("Signature"));
        Assert.Null(received.Header("Content-Digest"));
    }

    [Fact]
    public async Task Signs_a_post_with_a_body_over_method_target_uri_and_content_digest()
    {
        var data = await WriteFileAsync("events.json", Events);
        var served = _server.RespondOnceAsync(201, "{\"receipts\":[]}");

        var result = await CliRun.InProcessAsync(Environment(SigningVariables()), "request", "post", EventsUrl, "--data", data);
        var received = await served;

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("HTTP 201 Created\n", result.Error);
        Assert.Equal("{\"receipts\":[]}", result.Output);
        Assert.Equal("POST", received.Method);
        Assert.Equal(EventsUrl, received.TargetUri);
        Assert.Equal(Events, Encoding.UTF8.GetString(received.Body));
        Assert.Equal("application/json", received.Header("Content-Type"));
        Assert.Equal("Bearer " + ApiKey, received.Header("Authorization"));

        var signature = AssertSignedAndVerifies(received);
        Assert.Equal(new[] { "@method", "@target-uri", "content-digest" }, signature.Components);
        var digest = ContentDigest.Verify(received.Header("Content-Digest"), received.Body);
        Assert.True(digest.IsValid, digest.Failure);
    }

    [Fact]
    public async Task Signs_a_get_without_a_body_and_without_content_digest()
    {
        var served = _server.RespondOnceAsync(200, "{\"items\":[]}");

        var result = await CliRun.InProcessAsync(Environment(SigningVariables()), "request", "GET", EventsUrl + "&limit=2");
        var received = await served;

        Assert.Equal(0, result.ExitCode);
        Assert.Empty(received.Body);
        Assert.Null(received.Header("Content-Digest"));
        Assert.Equal(new[] { "@method", "@target-uri" }, AssertSignedAndVerifies(received).Components);
    }

    [Fact]
    public async Task Signs_with_key_id_and_secret_file_options_and_a_body_from_standard_input()
    {
        var secretFile = await WriteFileAsync("secret", "  " + SecretBase64 + "\n\n");
        var served = _server.RespondOnceAsync(201, "");

        var result = await CliRun.InProcessAsync(
            Environment(stdin: Events),
            "request", "POST", EventsUrl, "--data", "-", "--key-id", KeyId, "--signing-secret-file", secretFile, "--content-type", "application/cloudevents+json", "--header", "Idempotency-Key: abc-1");
        var received = await served;

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(Events, Encoding.UTF8.GetString(received.Body));
        Assert.Equal("application/cloudevents+json", received.Header("Content-Type"));
        Assert.Equal("abc-1", received.Header("Idempotency-Key"));
        Assert.Null(received.Header("Authorization"));
        AssertSignedAndVerifies(received);
        Assert.True(ContentDigest.Verify(received.Header("Content-Digest"), received.Body).IsValid);
    }

    [Fact]
    public async Task Signatures_of_two_requests_use_fresh_nonces_and_fail_under_another_secret()
    {
        var nonces = new List<string>();
        for (var i = 0; i < 2; i++)
        {
            var served = _server.RespondOnceAsync(200, "");
            Assert.Equal(0, (await CliRun.InProcessAsync(Environment(SigningVariables()), "request", "GET", EventsUrl)).ExitCode);
            var received = await served;
            nonces.Add(AssertSignedAndVerifies(received).Nonce);

            Assert.True(AtpRequestSignature.TryParse(received.Header("Signature-Input"), received.Header("Signature"), false, out var parsed, out _));
            Assert.False(parsed.Verify(new byte[32], received.Components()).IsValid);
        }

        Assert.NotEqual(nonces[0], nonces[1]);
    }

    [Fact]
    public async Task No_sign_sends_unsigned_even_with_signing_credentials()
    {
        var served = _server.RespondOnceAsync(200, "");

        var result = await CliRun.InProcessAsync(Environment(SigningVariables()), "request", "GET", EventsUrl, "--no-sign");
        var received = await served;

        Assert.Equal(0, result.ExitCode);
        Assert.Null(received.Header("Signature"));
        Assert.Equal("Bearer " + ApiKey, received.Header("Authorization"));
    }

    [Fact]
    public async Task A_non_2xx_status_prints_the_body_and_exits_1()
    {
        const string Problem = "{\"type\":\"about:blank\",\"title\":\"Unauthorized\",\"status\":401}";
        var served = _server.RespondOnceAsync(401, Problem);

        var result = await CliRun.InProcessAsync(Environment(SigningVariables()), "request", "GET", EventsUrl);
        await served;

        Assert.Equal(1, result.ExitCode);
        Assert.Equal("HTTP 401 Unauthorized\n", result.Error);
        Assert.Equal(Problem, result.Output);
    }

    [Theory]
    [InlineData("not base64 at all")]
    [InlineData("AAAA")]
    [InlineData("")]
    public async Task A_bad_secret_file_exits_2_without_sending_or_printing_the_secret(string content)
    {
        var secretFile = await WriteFileAsync("secret", content);
        var variables = new Dictionary<string, string> { ["ATP_KEY_ID"] = KeyId };

        var result = await CliRun.InProcessAsync(Environment(variables), "request", "GET", EventsUrl, "--signing-secret-file", secretFile);

        Assert.Equal(2, result.ExitCode);
        Assert.Empty(result.Output);
        Assert.StartsWith("atp: signing secret file", result.Error);
        Assert.Single(result.Error.TrimEnd().Split('\n'));
        if (content.Length > 0)
        {
            Assert.DoesNotContain(content, result.Error);
        }
    }

    [Fact]
    public async Task A_bad_secret_in_the_environment_exits_2_without_printing_it()
    {
        var variables = SigningVariables();
        variables["ATP_SIGNING_SECRET"] = "c2VjcmV0LXRvby1zaG9ydA==";

        var result = await CliRun.InProcessAsync(Environment(variables), "request", "GET", EventsUrl);

        Assert.Equal(2, result.ExitCode);
        Assert.Equal("atp: ATP_SIGNING_SECRET does not hold a signing secret (standard base64 of 32 bytes)\n", result.Error);
    }

    [Fact]
    public async Task A_missing_secret_file_exits_2()
    {
        var result = await CliRun.InProcessAsync(Environment(), "request", "GET", EventsUrl, "--key-id", KeyId, "--signing-secret-file", Path.Combine(_directory, "absent"));

        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("atp: cannot read signing secret file", result.Error);
    }

    [Fact]
    public async Task A_key_id_without_a_secret_exits_2()
    {
        var result = await CliRun.InProcessAsync(Environment(new() { ["ATP_KEY_ID"] = KeyId }), "request", "GET", EventsUrl);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("signing needs both a key id", result.Error);
    }

    [Fact]
    public async Task An_unreachable_server_exits_2_with_one_line()
    {
        var url = $"http://127.0.0.1:{LoopbackServer.FreePort()}/v1/tenants/acme";

        var result = await CliRun.InProcessAsync(Environment(), "request", "GET", url);

        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith($"atp: no response from {url}", result.Error);
        Assert.Single(result.Error.TrimEnd().Split('\n'));
    }

    [Theory]
    [InlineData("GET", "/relative/path", "not an absolute")]
    [InlineData("GET", "ftp://127.0.0.1/x", "not an absolute")]
    [InlineData("GE T", "http://127.0.0.1/x", "not an HTTP method")]
    [InlineData("", "http://127.0.0.1/x", "not an HTTP method")]
    public async Task Usage_errors_exit_2(string method, string url, string reason)
    {
        var result = await CliRun.InProcessAsync(Environment(), "request", method, url);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains(reason, result.Error);
    }

    [Theory]
    [InlineData("NoColon")]
    [InlineData(": value")]
    [InlineData("Signature: atp=:AAAA:")]
    public async Task Bad_or_conflicting_headers_exit_2(string header)
    {
        var result = await CliRun.InProcessAsync(Environment(SigningVariables()), "request", "GET", EventsUrl, "--header", header);

        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("atp: --header", result.Error);
    }

    public void Dispose()
    {
        _server.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
