using System.Net;
using System.Text;

namespace Atp.Server.Tests;

/// <summary>Kestrel and JSON limits at the front door: oversized headers, too many headers, deep JSON.</summary>
public sealed class RequestLimitTests : AcmeServerTests
{
    [Fact]
    public async Task Headers_over_32_KiB_in_all_are_refused_with_431_and_nothing_is_stored()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/tenants/acme/events") { Content = ServerFixture.Json(ServerFixture.Batch(1)) };
        for (var i = 0; i < 5; i++)
        {
            request.Headers.TryAddWithoutValidation($"X-Padding-{i}", new string('a', 7 * 1024));
        }

        var response = await Acme.SendAsync(request);

        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, response.StatusCode);
        Assert.Equal(0UL, await Server.TreeSizeAsync("acme"));
    }

    [Fact]
    public async Task More_than_64_headers_are_refused_with_431()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/tenants/acme/events");
        for (var i = 0; i < 70; i++)
        {
            request.Headers.TryAddWithoutValidation($"X-Header-{i}", "x");
        }

        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, (await Acme.SendAsync(request)).StatusCode);
    }

    [Fact]
    public async Task Json_nested_deeper_than_64_levels_is_refused_with_400_and_nothing_is_stored()
    {
        var deep = new StringBuilder("{\"events\":[{\"type\":\"acme.doc.v1\",\"occurredAt\":\"2026-11-26T10:00:00Z\",\"actor\":{\"type\":\"user\",\"id\":\"u\"},\"action\":\"doc.read\",\"outcome\":\"success\",\"data\":");
        deep.Append(string.Concat(Enumerable.Repeat("{\"a\":", 100))).Append('1').Append('}', 100).Append("}]}");

        var response = await Acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(deep.ToString()));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(0UL, await Server.TreeSizeAsync("acme"));
    }
}
