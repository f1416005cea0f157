using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Atp.Core.Keys;

namespace Atp.Server.Tests;

/// <summary>
/// A request's correlation ids, on a real server process logging JSON lines: the problem body names the request
/// (<c>requestId</c>) and its W3C trace (<c>traceId</c>), and every log line written for that request carries both.
/// </summary>
public sealed class CorrelationTests
{
    private static readonly string[] Logging =
    [
        "--Logging:LogLevel:Default=Information",
        "--Logging:LogLevel:Microsoft.AspNetCore=Information",
        "--Logging:Console:FormatterName=json",
        "--Logging:Console:FormatterOptions:IncludeScopes=true",
    ];

    [Fact]
    public async Task A_problem_and_every_log_line_of_its_request_carry_the_callers_trace_id_and_the_request_id()
    {
        var directory = Directory.CreateTempSubdirectory("atp-correlation-").FullName;
        await using var server = await ChildServer.StartAsync(directory, ApiKeyFormat.Generate(), [.. await TestStorage.NewStoreArgumentsAsync(), .. Logging]);
        using var client = new HttpClient { BaseAddress = server.BaseAddress };

        // A caller's W3C trace context: the server joins that trace rather than starting its own.
        var traceId = ActivityTraceId.CreateRandom().ToHexString();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/tenants/nobody/events");
        request.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom().ToHexString()}-01");
        var body = await ProblemAssert.IsProblemAsync(await client.SendAsync(request), HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Equal(traceId, body.GetProperty("traceId").GetString());

        await AssertEveryLineOfTheRequestCarriesAsync(server, body.GetProperty("requestId").GetString()!, traceId);
    }

    [Fact]
    public async Task Without_a_caller_trace_the_framework_problem_names_the_trace_the_request_started()
    {
        var directory = Directory.CreateTempSubdirectory("atp-correlation-").FullName;
        await using var server = await ChildServer.StartAsync(directory, ApiKeyFormat.Generate(), [.. await TestStorage.NewStoreArgumentsAsync(), .. Logging]);
        using var client = new HttpClient { BaseAddress = server.BaseAddress };

        var body = await ProblemAssert.IsProblemAsync(await client.GetAsync("/no/such/route"), HttpStatusCode.NotFound, "not-found");
        var traceId = body.GetProperty("traceId").GetString()!;
        Assert.NotEqual(new string('0', 32), traceId);

        await AssertEveryLineOfTheRequestCarriesAsync(server, body.GetProperty("requestId").GetString()!, traceId);
    }

    // The lines of a request are those in its hosting scope (RequestId); ASP.NET Core writes at least "Request
    // starting" and "Request finished" there, the latter just after the response, so it is awaited.
    private static async Task AssertEveryLineOfTheRequestCarriesAsync(ChildServer server, string requestId, string traceId)
    {
        Assert.False(string.IsNullOrEmpty(requestId));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        List<JsonElement> lines;
        do
        {
            lines = [.. server.Output.Select(Parse).OfType<JsonElement>().Where(line => ScopeValue(line, "RequestId") == requestId)];
            if (lines.Any(line => line.GetProperty("Message").GetString()!.StartsWith("Request finished", StringComparison.Ordinal)))
            {
                break;
            }

            await Task.Delay(50);
        }
        while (DateTime.UtcNow < deadline);

        Assert.True(lines.Count >= 2, $"{lines.Count} log lines for request {requestId}:\n{string.Join('\n', server.Output)}");
        Assert.Contains(lines, line => line.GetProperty("Message").GetString()!.StartsWith("Request finished", StringComparison.Ordinal));
        foreach (var line in lines)
        {
            Assert.Equal(traceId, ScopeValue(line, "TraceId"));
        }

        // And no line of another request claims this trace.
        Assert.All(
            server.Output.Select(Parse).OfType<JsonElement>().Where(line => ScopeValue(line, "TraceId") == traceId),
            line => Assert.Equal(requestId, ScopeValue(line, "RequestId")));
    }

    private static JsonElement? Parse(string line)
    {
        if (!line.StartsWith('{'))
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(line);
            return document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return null;
        }
    }

    // The JSON console formatter writes each scope as an object of its values (the hosting scope: RequestId,
    // RequestPath, ...; the activity tracking: TraceId, SpanId, ParentId).
    private static string? ScopeValue(JsonElement line, string name)
    {
        if (!line.TryGetProperty("Scopes", out var scopes) || scopes.ValueKind != JsonValueKind.Array)
        {
            return null;
        }

        foreach (var scope in scopes.EnumerateArray())
        {
            if (scope.ValueKind == JsonValueKind.Object && scope.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String)
            {
                return value.GetString();
            }
        }

        return null;
    }
}
