using System.Text;
using System.Text.Json;

namespace Atp.Cli.Tests;

/// <summary><c>atp erasures request|list|approve|reject</c> against a real loopback HTTP listener: what was sent, and what the caller sees.</summary>
public sealed class ErasuresCommandTests : IDisposable
{
    private const string ApiKey = TenantAdminEnvironment.ApiKey;
    private readonly LoopbackServer _server = new();

    private static CliEnvironment Environment(string? apiKey = ApiKey) => TenantAdminEnvironment.With(apiKey);

    [Fact]
    public async Task Request_sends_the_subject_and_reason_with_the_bearer_key_and_prints_the_pending_request()
    {
        const string Pending = "{\"id\":\"era_abc\",\"state\":\"pending\"}";
        var served = _server.RespondOnceAsync(202, Pending);

        var result = await CliRun.InProcessAsync(Environment(), "erasures", "request", "--url", _server.BaseUrl + "/", "--tenant", "acme", "--subject", "user-7", "--reason", "GDPR request #4711");
        var received = await served;

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("HTTP 202 Accepted\n", result.Error);
        Assert.Equal(Pending + "\n", result.Output);
        Assert.Equal("POST", received.Method);
        Assert.Equal(_server.BaseUrl + "/v1/tenants/acme/erasures", received.TargetUri);
        Assert.Equal("Bearer " + ApiKey, received.Header("Authorization"));
        using var body = JsonDocument.Parse(received.Body);
        Assert.Equal("user-7", body.RootElement.GetProperty("subject").GetString());
        Assert.Equal("GDPR request #4711", body.RootElement.GetProperty("reason").GetString());
    }

    [Fact]
    public async Task List_narrows_by_state_only_when_asked_and_refuses_a_state_that_is_none()
    {
        var all = _server.RespondOnceAsync(200, "{\"items\":[]}");
        Assert.Equal(0, (await CliRun.InProcessAsync(Environment(), "erasures", "list", "--url", _server.BaseUrl, "--tenant", "acme")).ExitCode);
        Assert.Equal(_server.BaseUrl + "/v1/tenants/acme/erasures", (await all).TargetUri);

        var pending = _server.RespondOnceAsync(200, "{\"items\":[]}");
        var result = await CliRun.InProcessAsync(Environment(), "erasures", "list", "--url", _server.BaseUrl, "--tenant", "acme", "--state", "pending");
        var received = await pending;
        Assert.Equal(0, result.ExitCode);
        Assert.Equal("GET", received.Method);
        Assert.Equal(_server.BaseUrl + "/v1/tenants/acme/erasures?state=pending", received.TargetUri);
        Assert.Empty(received.Body);

        Assert.Equal(2, (await CliRun.InProcessAsync(Environment(), "erasures", "list", "--url", _server.BaseUrl, "--tenant", "acme", "--state", "done")).ExitCode);
    }

    [Fact]
    public async Task Approve_posts_no_body_and_a_refusal_exits_1_with_the_problem_printed()
    {
        const string Problem = "{\"type\":\"https://atp.dev/problems/self-approval\",\"status\":403}";
        var served = _server.RespondOnceAsync(403, Problem);

        var result = await CliRun.InProcessAsync(Environment(), "erasures", "approve", "era_abc", "--url", _server.BaseUrl, "--tenant", "acme");
        var received = await served;

        Assert.Equal(1, result.ExitCode);
        Assert.Equal("HTTP 403 Forbidden\n", result.Error);
        Assert.Equal(Problem + "\n", result.Output);
        Assert.Equal("POST", received.Method);
        Assert.Equal(_server.BaseUrl + "/v1/tenants/acme/erasures/era_abc/approve", received.TargetUri);
        Assert.Empty(received.Body);
    }

    [Fact]
    public async Task Reject_posts_the_reason_and_without_a_key_or_a_reason_nothing_is_sent()
    {
        var served = _server.RespondOnceAsync(200, "{\"state\":\"rejected\"}");
        var result = await CliRun.InProcessAsync(Environment(), "erasures", "reject", "era_abc", "--url", _server.BaseUrl, "--tenant", "acme", "--reason", "identity not verified");
        var received = await served;
        Assert.Equal(0, result.ExitCode);
        Assert.Equal(_server.BaseUrl + "/v1/tenants/acme/erasures/era_abc/reject", received.TargetUri);
        Assert.Equal("{\"reason\":\"identity not verified\"}", Encoding.UTF8.GetString(received.Body));

        var noKey = await CliRun.InProcessAsync(Environment(apiKey: null), "erasures", "list", "--url", _server.BaseUrl, "--tenant", "acme");
        Assert.Equal(2, noKey.ExitCode);
        Assert.Contains("ATP_API_KEY", noKey.Error, StringComparison.Ordinal);
        var noReason = await CliRun.InProcessAsync(Environment(), "erasures", "reject", "era_abc", "--url", _server.BaseUrl, "--tenant", "acme");
        Assert.Equal(2, noReason.ExitCode);
        Assert.Contains("--reason", noReason.Error, StringComparison.Ordinal);

        // The listener got nothing: the next request it sees is this one.
        var next = _server.RespondOnceAsync(200, "{\"items\":[]}");
        await CliRun.InProcessAsync(Environment(), "erasures", "list", "--url", _server.BaseUrl, "--tenant", "acme");
        Assert.Equal(_server.BaseUrl + "/v1/tenants/acme/erasures", (await next).TargetUri);
    }

    public void Dispose() => _server.Dispose();
}
