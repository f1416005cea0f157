using System.Text.Json;
using Atp.Core.Events;
using Atp.Server.Audit;

namespace Atp.Server.Tests;

/// <summary>What reaches the platform audit log from outside callers is held to the rules of tenant events.</summary>
public sealed class PlatformEventTextTests
{
    [Theory]
    [InlineData("oidc|\u0000admin", "oidc|\\u0000admin")]
    [InlineData("line\nbreak\u007f", "line\\u000Abreak\\u007F")]
    [InlineData("bell\u0085", "bell\\u0085")]
    [InlineData("", "-")]
    [InlineData("plain sub ✓ \ud83d\ude00", "plain sub ✓ \ud83d\ude00")]
    public void Control_characters_and_unpaired_surrogates_are_escaped(string raw, string stored) =>
        Assert.Equal(stored, PlatformEventText.Clean(raw, EventReader.MaxTextLength));

    [Fact]
    public void An_unpaired_surrogate_is_escaped() =>
        Assert.Equal("half\\uFFFD end", PlatformEventText.Clean("half" + (char)0xD800 + " end", EventReader.MaxTextLength));

    [Fact]
    public void An_overlong_value_is_cut_with_an_ellipsis_and_never_between_a_surrogate_pair()
    {
        var cut = PlatformEventText.Clean(new string('a', 254) + "\ud83d\ude00" + "tail", EventReader.MaxTextLength);
        Assert.Equal(EventReader.MaxTextLength - 1, cut.Length);
        Assert.EndsWith("a…", cut, StringComparison.Ordinal);
    }

    [Fact]
    public void A_cleaned_platform_event_passes_the_tenant_event_rules()
    {
        var actor = PlatformEventText.Party(new Party("user", "sub-\u0000-" + new string('x', 400), "Name\twith tab"));
        var context = PlatformEventText.Context(new EventContext("203.0.113.9", "agent\r\n" + new string('u', 2000), "req\u0001"));
        var json = JsonSerializer.SerializeToElement(new
        {
            type = "atp.security.v1",
            occurredAt = "2026-11-26T10:00:00Z",
            actor = new { type = actor.Type, id = actor.Id, name = actor.Name },
            action = "auth.failed",
            outcome = "failure",
            context = new { ip = context!.Ip, userAgent = context.UserAgent, requestId = context.RequestId },
        });

        var errors = new List<EventError>();
        Assert.NotNull(EventReader.Read(json, 0, errors));
        Assert.Empty(errors);
    }
}
