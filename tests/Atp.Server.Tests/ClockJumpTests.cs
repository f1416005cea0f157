using System.Net;
using System.Text.Json;
using Atp.Storage.Contract;

namespace Atp.Server.Tests;

/// <summary>
/// The wall clock set a day forward while the server runs (a real server, its own sealer pruning Idempotency-Keys on
/// its own schedule; only the clock is fake): a key used minutes before is still remembered, so a retry returns the
/// same receipts and stores nothing, while a key that is really older than the retention is forgotten.
/// </summary>
public sealed class ClockJumpTests
{
    [Fact]
    public async Task A_forward_wall_clock_jump_of_a_day_does_not_forget_an_Idempotency_Key_used_minutes_ago()
    {
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        await using var server = await ServerFixture.StartAsync(clock: clock);
        using var acme = server.ClientWithKey(await server.CreateTenantWithKeyAsync("acme"));
        var oldBody = ServerFixture.Event(actor: "old");
        var recentBody = ServerFixture.Event(actor: "recent");

        Assert.Equal(HttpStatusCode.Created, (await PostAsync(acme, "old", oldBody)).StatusCode);
        clock.Advance(TimeSpan.FromHours(23) + TimeSpan.FromMinutes(50));
        var recent = await PostAsync(acme, "recent", recentBody);
        Assert.Equal(HttpStatusCode.Created, recent.StatusCode);
        var receipts = await recent.Content.ReadAsStringAsync();

        // The clock is set a day forward; then 11 minutes pass, so the sealer's next pass prunes (every 10 minutes).
        clock.Jump(TimeSpan.FromDays(1));
        clock.Advance(TimeSpan.FromMinutes(11));

        // "old" is now a day and a minute old by the monotonic clock: a pass after the jump forgets it, and then the key
        // is free for another body. That pass must not have forgotten "recent", 11 minutes old (a day and 11 minutes by
        // the wall clock).
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while ((await PostAsync(acme, "old", ServerFixture.Event(actor: "another"))).StatusCode != HttpStatusCode.Created)
        {
            Assert.True(DateTime.UtcNow < deadline, "the sealer never forgot the key older than the retention");
            await Task.Delay(100);
        }

        var size = await server.TreeSizeAsync("acme");
        var retry = await PostAsync(acme, "recent", recentBody);
        Assert.Equal(HttpStatusCode.Created, retry.StatusCode);
        Assert.Equal("true", retry.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal(Receipts(receipts), Receipts(await retry.Content.ReadAsStringAsync()));
        Assert.Equal(size, await server.TreeSizeAsync("acme"));
    }

    private static Task<HttpResponseMessage> PostAsync(HttpClient client, string key, string body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/tenants/acme/events") { Content = ServerFixture.Json(body) };
        request.Headers.Add("Idempotency-Key", key);
        return client.SendAsync(request);
    }

    private static string Receipts(string body)
    {
        using var json = JsonDocument.Parse(body);
        return json.RootElement.GetProperty("receipts").GetRawText();
    }
}
