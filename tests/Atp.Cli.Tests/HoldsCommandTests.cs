using System.Text;
using System.Text.Json;

namespace Atp.Cli.Tests;

/// <summary><c>atp holds place|list|release</c> against a real loopback HTTP listener: what was sent, and what the caller sees.</summary>
public sealed class HoldsCommandTests : IDisposable
{
    private const string ApiKey = TenantAdminEnvironment.ApiKey;
    private readonly LoopbackServer _server = new();

    private static CliEnvironment Environment(string? apiKey = ApiKey) => TenantAdminEnvironment.With(apiKey);

    [Fact]
    public async Task Place_sends_the_scope_and_reason_with_the_bearer_key_and_prints_the_hold()
    {
        const string Hold = "{\"id\":\"hold_abc\",\"active\":true}";
        var served = _server.RespondOnceAsync(201, Hold);

        var result = await CliRun.InProcessAsync(
            Environment(), "holds", "place", "--url", _server.BaseUrl + "/", "--tenant", "acme", "--reason", "Matter 2026-CV-0815",
            "--event-type", "billing.invoice.v1", "--event-type", "auth.login.v1", "--actor", "user-7", "--from", "2026-01-01T00:00:00Z", "--until", "2027-01-01T00:00:00+01:00");
        var received = await served;

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("HTTP 201 Created\n", result.Error);
        Assert.Equal(Hold + "\n", result.Output);
        Assert.Equal("POST", received.Method);
        Assert.Equal(_server.BaseUrl + "/v1/tenants/acme/holds", received.TargetUri);
        Assert.Equal("Bearer " + ApiKey, received.Header("Authorization"));
        using var body = JsonDocument.Parse(received.Body);
        var scope = body.RootElement.GetProperty("scope");
        Assert.Equal(["billing.invoice.v1", "auth.login.v1"], scope.GetProperty("eventTypes").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal("user-7", scope.GetProperty("actorId").GetString());
        Assert.False(scope.TryGetProperty("targetId", out _));
        Assert.Equal(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero), scope.GetProperty("from").GetDateTimeOffset());
        Assert.Equal(new DateTimeOffset(2026, 12, 31, 23, 0, 0, TimeSpan.Zero), scope.GetProperty("until").GetDateTimeOffset());
        Assert.Equal("Matter 2026-CV-0815", body.RootElement.GetProperty("reason").GetString());
    }

    [Fact]
    public async Task Place_without_a_scope_member_holds_the_whole_log()
    {
        var served = _server.RespondOnceAsync(201, "{}");

        var result = await CliRun.InProcessAsync(Environment(), "holds", "place", "--url", _server.BaseUrl, "--tenant", "acme", "--reason", "Audit");
        var received = await served;

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("{\"scope\":{},\"reason\":\"Audit\"}", Encoding.UTF8.GetString(received.Body));
    }

    [Fact]
    public async Task List_asks_for_released_holds_only_with_the_flag()
    {
        var active = _server.RespondOnceAsync(200, "{\"items\":[]}");
        Assert.Equal(0, (await CliRun.InProcessAsync(Environment(), "holds", "list", "--url", _server.BaseUrl, "--tenant", "acme")).ExitCode);
        Assert.Equal(_server.BaseUrl + "/v1/tenants/acme/holds", (await active).TargetUri);

        var all = _server.RespondOnceAsync(200, "{\"items\":[]}");
        var result = await CliRun.InProcessAsync(Environment(), "holds", "list", "--url", _server.BaseUrl, "--tenant", "acme", "--include-released");
        var received = await all;
        Assert.Equal(0, result.ExitCode);
        Assert.Equal("GET", received.Method);
        Assert.Equal(_server.BaseUrl + "/v1/tenants/acme/holds?includeReleased=true", received.TargetUri);
        Assert.Empty(received.Body);
    }

    [Fact]
    public async Task Release_posts_the_reason_and_a_refusal_exits_1_with_the_problem_printed()
    {
        const string Problem = "{\"type\":\"https://atp.dev/problems/hold-not-active\",\"status\":409}";
        var served = _server.RespondOnceAsync(409, Problem);

        var result = await CliRun.InProcessAsync(Environment(), "holds", "release", "hold_abc", "--url", _server.BaseUrl, "--tenant", "acme", "--reason", "Matter settled");
        var received = await served;

        Assert.Equal(1, result.ExitCode);
        Assert.Equal("HTTP 409 Conflict\n", result.Error);
        Assert.Equal(Problem + "\n", result.Output);
        Assert.Equal("POST", received.Method);
        Assert.Equal(_server.BaseUrl + "/v1/tenants/acme/holds/hold_abc/release", received.TargetUri);
        Assert.Equal("{\"reason\":\"Matter settled\"}", Encoding.UTF8.GetString(received.Body));
    }

    [Fact]
    public async Task Without_a_key_or_a_reason_nothing_is_sent_and_it_exits_2()
    {
        var noKey = await CliRun.InProcessAsync(Environment(apiKey: null), "holds", "list", "--url", _server.BaseUrl, "--tenant", "acme");
        Assert.Equal(2, noKey.ExitCode);
        Assert.Contains("ATP_API_KEY", noKey.Error, StringComparison.Ordinal);

        var noReason = await CliRun.InProcessAsync(Environment(), "holds", "place", "--url", _server.BaseUrl, "--tenant", "acme");
        Assert.Equal(2, noReason.ExitCode);
        Assert.Contains("--reason", noReason.Error, StringComparison.Ordinal);

        // The listener got nothing: the next request it sees is this one.
        var served = _server.RespondOnceAsync(200, "{\"items\":[]}");
        await CliRun.InProcessAsync(Environment(), "holds", "list", "--url", _server.BaseUrl, "--tenant", "acme");
        Assert.Equal(_server.BaseUrl + "/v1/tenants/acme/holds", (await served).TargetUri);
    }

    public void Dispose() => _server.Dispose();
}
