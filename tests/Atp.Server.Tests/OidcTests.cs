using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;

namespace Atp.Server.Tests;

/// <summary>People with OIDC tokens: discovery + JWKS from a provider on loopback, roles, tenant claim, refusals.</summary>
public sealed class OidcTests : IAsyncLifetime
{
    private OidcProvider _oidc = null!;
    private ServerFixture _server = null!;

    public async Task InitializeAsync()
    {
        _oidc = await OidcProvider.StartAsync();
        _server = await ServerFixture.StartAsync(settings: _oidc.ServerSettings());
        await _server.CreateTenantWithKeyAsync("acme");
        await _server.CreateTenantWithKeyAsync("globex");
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _oidc.DisposeAsync();
    }


    [Fact]
    public async Task A_writer_writes_but_cannot_read()
    {
        using var writer = _server.ClientWithKey(_oidc.Token("svc-1", "acme", ["atp.writer"]));

        Assert.Equal(HttpStatusCode.Created, (await writer.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Batch(2)))).StatusCode);
        await ProblemAssert.IsProblemAsync(await writer.GetAsync("/v1/tenants/acme/events"), HttpStatusCode.Forbidden, "forbidden");
        Assert.Equal(2UL, await _server.TreeSizeAsync("acme"));
    }

    [Fact]
    public async Task An_auditor_reads_and_verifies_but_cannot_write()
    {
        using var auditor = _server.ClientWithKey(_oidc.Token("alice", "acme", ["atp.auditor"]));

        Assert.Equal(HttpStatusCode.OK, (await auditor.GetAsync("/v1/tenants/acme/events")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await auditor.GetAsync("/v1/tenants/acme/log/checkpoint")).StatusCode);
        await ProblemAssert.IsProblemAsync(await auditor.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Batch(1))), HttpStatusCode.Forbidden, "forbidden");
        Assert.Equal(0UL, await _server.TreeSizeAsync("acme"));
    }

    [Fact]
    public async Task A_tenant_admin_manages_keys_of_its_tenant_only()
    {
        using var admin = _server.ClientWithKey(_oidc.Token("bob", "acme", ["atp.tenant-admin"]));

        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/v1/tenants/acme/api-keys", new { name = "ci", scopes = new[] { "events:write" } })).StatusCode);
        await ProblemAssert.IsProblemAsync(await admin.GetAsync("/v1/tenants/globex/api-keys"), HttpStatusCode.Forbidden, "forbidden");
        await ProblemAssert.IsProblemAsync(await admin.PostAsJsonAsync("/v1/tenants", new { id = "newco", name = "New" }), HttpStatusCode.Forbidden, "forbidden");
    }

    [Fact]
    public async Task A_platform_admin_creates_tenants_and_the_tid_claim_also_names_a_tenant()
    {
        using var platform = _server.ClientWithKey(_oidc.Token("root", null, ["atp.platform-admin"]));
        Assert.Equal(HttpStatusCode.Created, (await platform.PostAsJsonAsync("/v1/tenants", new { id = "newco", name = "New Co" })).StatusCode);

        using var viaTid = _server.ClientWithKey(_oidc.Token("carol", "newco", ["atp.auditor"], tenantClaim: "tid"));
        Assert.Equal(HttpStatusCode.OK, (await viaTid.GetAsync("/v1/tenants/newco/events")).StatusCode);
    }

    [Fact]
    public async Task A_token_whose_tenant_claim_names_the_platform_log_reads_nothing_of_it_without_platform_admin()
    {
        foreach (var role in new[] { "atp.auditor", "atp.tenant-admin", "atp.writer" })
        {
            using var client = _server.ClientWithKey(_oidc.Token("mallory", "atp-platform", [role]));

            foreach (var path in new[] { "/v1/tenants/atp-platform/events", "/v1/tenants/atp-platform/log/checkpoint", "/v1/tenants/atp-platform/log/entries/0", "/v1/tenants/atp-platform" })
            {
                await ProblemAssert.IsProblemAsync(await client.GetAsync(path), HttpStatusCode.Forbidden, "forbidden");
            }
        }

        using var platform = _server.ClientWithKey(_oidc.Token("root", null, ["atp.platform-admin"]));
        Assert.Equal(HttpStatusCode.OK, (await platform.GetAsync("/v1/tenants/atp-platform/log/checkpoint")).StatusCode);
    }

    [Fact]
    public async Task Foreign_and_unknown_tenants_get_the_same_answer()
    {
        using var auditor = _server.ClientWithKey(_oidc.Token("alice", "acme", ["atp.auditor"]));

        var foreign = await ProblemAssert.IsProblemAsync(await auditor.GetAsync("/v1/tenants/globex/events"), HttpStatusCode.Forbidden, "forbidden");
        var unknown = await ProblemAssert.IsProblemAsync(await auditor.GetAsync("/v1/tenants/no-such-co/events"), HttpStatusCode.Forbidden, "forbidden");

        Assert.Equal(foreign.GetProperty("detail").GetString(), unknown.GetProperty("detail").GetString());
    }

    public static TheoryData<string, string> BadTokens => new()
    {
        { "audience", "audience" },
        { "issuer", "issuer" },
        { "expired", "expired" },
        { "signature", "signature" },
        { "region", "region" },
        { "reserved-claim", "reserved" },
        { "unsigned", "" },
    };

    [Theory]
    [MemberData(nameof(BadTokens))]
    public async Task Bad_tokens_are_refused_with_401_and_nothing_is_stored(string flaw, string detailFragment)
    {
        using var otherKey = RSA.Create(2048);
        var token = flaw switch
        {
            "audience" => _oidc.Token("svc", "acme", ["atp.writer"], audience: "some-other-api"),
            "issuer" => _oidc.Token("svc", "acme", ["atp.writer"], issuer: "https://evil.example"),
            "expired" => _oidc.Token("svc", "acme", ["atp.writer"], expires: DateTime.UtcNow.AddMinutes(-5)),
            "signature" => _oidc.Token("svc", "acme", ["atp.writer"], signWith: otherKey),
            "region" => _oidc.Token("svc", "acme", ["atp.writer"], region: "us-east"),
            "reserved-claim" => _oidc.Token("svc", "acme", ["atp.writer"], tenantClaim: "atp:tenant"),
            _ => Unsigned(_oidc.Token("svc", "acme", ["atp.writer"])),
        };
        using var client = _server.ClientWithKey(token);

        var response = await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Batch(1)));

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Contains(detailFragment, problem.GetProperty("detail").GetString(), StringComparison.OrdinalIgnoreCase);
        Assert.Equal(0UL, await _server.TreeSizeAsync("acme"));
    }

    [Fact]
    public async Task Api_keys_keep_working_beside_oidc()
    {
        var key = await _server.CreateKeyAsync("acme", "events:write");
        using var client = _server.ClientWithKey(key);

        Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Batch(1)))).StatusCode);
    }

    // alg "none": the header says unsigned and the signature part is empty.
    private static string Unsigned(string token)
    {
        var parts = token.Split('.');
        using var header = JsonDocument.Parse(Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Decode(parts[0]));
        var none = Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode("{\"alg\":\"none\",\"typ\":\"JWT\"}");
        return $"{none}.{parts[1]}.";
    }
}
