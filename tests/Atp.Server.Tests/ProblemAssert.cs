using System.Net;
using System.Text.Json;

namespace Atp.Server.Tests;

internal static class ProblemAssert
{
    /// <summary>Asserts an RFC 9457 problem with the given status and problem type slug; returns the body.</summary>
    public static async Task<JsonElement> IsProblemAsync(HttpResponseMessage response, HttpStatusCode status, string typeSlug)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var body = JsonDocument.Parse(text);
        Assert.Equal("https://atp.dev/problems/" + typeSlug, body.RootElement.GetProperty("type").GetString());
        Assert.Equal((int)status, body.RootElement.GetProperty("status").GetInt32());

        // Every problem names its request and its W3C trace, the keys to the request's log lines.
        Assert.False(string.IsNullOrEmpty(body.RootElement.GetProperty("requestId").GetString()), text);
        Assert.Matches("^[0-9a-f]{32}$", body.RootElement.GetProperty("traceId").GetString());
        return body.RootElement.Clone();
    }
}
