using System.Text.Json;
using Atp.Core.Keys;
using Atp.Core.Policy;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Atp.Server.Audit;
using Atp.Server.Gateway;
using Atp.Server.OpenApi;
using Atp.Server.Policy;
using Atp.Server.Problems;
using Microsoft.Extensions.Options;

namespace Atp.Server.Tenants;

/// <summary>Tenants and their API keys.</summary>
internal static class TenantEndpoints
{
    public static IEndpointRouteBuilder MapTenantEndpoints(this IEndpointRouteBuilder app)
    {
        var tenants = app.MapGroup("/v1/tenants").WithTags("Tenants");

        tenants.MapPost("/", CreateTenantAsync)
            .RequireAuthorization(Scopes.PlatformAdmin)
            .WithSummary("Create a tenant (platform admin)")
            .WithName("createTenant")
            .WithJsonBody<CreateTenantRequest>()
            .Produces<TenantResponse>(StatusCodes.Status201Created)
            .ProducesProblems(StatusCodes.Status409Conflict, StatusCodes.Status421MisdirectedRequest);

        tenants.MapGet("/{tenant}", GetTenantAsync)
            .RequireAuthorization(Scopes.TenantAdmin)
            .RequireTenantAccess(allowSuspendedForPlatformAdmin: true)
            .WithSummary("Get a tenant with its effective limits and its storage usage (platform admin, tenant admin)")
            .WithName("getTenant")
            .Produces<TenantResponse>();

        tenants.MapPatch("/{tenant}", UpdateTenantAsync)
            .RequireAuthorization(Scopes.PlatformAdmin)
            .RequireTenantAccess(allowSuspendedForPlatformAdmin: true)
            .WithSummary("Suspend or reactivate a tenant, require signed requests, require registered event types, override its rate limits and storage quotas (platform admin)")
            .WithName("updateTenant")
            .WithDescription("409 read-only-replica: a replica's status cannot be changed (it was imported from another cell's export bundles). 409 policy-approval-required: requireSignedRequests and requireRegisteredTypes are policy, changed through POST /v1/tenants/{tenant}/policy/proposals and a second person's approval (unless Atp:Policy:TwoPersonApproval is false); nothing is stored.")
            .WithJsonBody<UpdateTenantRequest>()
            .Produces<TenantResponse>()
            .ProducesProblem(StatusCodes.Status409Conflict);

        tenants.MapPost("/{tenant}/api-keys", CreateApiKeyAsync)
            .RequireAuthorization(Scopes.TenantAdmin)
            .RequireTenantAccess()
            .WithSummary("Create an API key (optional expiresAt; signing: true adds an HMAC signing secret); key and secret are shown once")
            .WithName("createApiKey")
            .WithJsonBody<CreateApiKeyRequest>()
            .Produces<ApiKeyResponse>(StatusCodes.Status201Created);

        // A suspended tenant's keys stay listable and revocable by platform admins (a suspension is often the first step
        // of an incident, and revoking is the next).
        tenants.MapGet("/{tenant}/api-keys", ListApiKeysAsync)
            .RequireAuthorization(Scopes.TenantAdmin)
            .RequireTenantAccess(allowSuspendedForPlatformAdmin: true)
            .WithSummary("The tenant's API keys with their status; never the keys themselves")
            .WithName("listApiKeys")
            .Produces<ApiKeyListResponse>();

        tenants.MapDelete("/{tenant}/api-keys/{keyId}", RevokeApiKeyAsync)
            .RequireAuthorization(Scopes.TenantAdmin)
            .RequireTenantAccess(allowSuspendedForPlatformAdmin: true)
            .WithSummary("Revoke an API key, effective at once")
            .WithName("revokeApiKey")
            .Produces(StatusCodes.Status204NoContent);

        tenants.MapPost("/{tenant}/api-keys/{keyId}/rotate", RotateApiKeyAsync)
            .RequireAuthorization(Scopes.TenantAdmin)
            .RequireTenantAccess()
            .WithSummary("Issue a successor key; the old one stays valid for the overlap (default 24 h), then expires")
            .WithName("rotateApiKey")
            .WithJsonBody<RotateApiKeyRequest>(optional: true)
            .Produces<ApiKeyResponse>(StatusCodes.Status201Created)
            .ProducesProblems(StatusCodes.Status409Conflict);
        return app;
    }

    private static async Task<IResult> CreateTenantAsync(HttpContext context, ITenantStore store, IOptions<AtpOptions> options, PlatformAuditLog audit, TimeProvider clock, CancellationToken cancellationToken)
    {
        var (request, problem) = await JsonBody.ReadAsync<CreateTenantRequest>(context, 64 * 1024, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        var errors = new List<string>();
        if (!TenantRules.IsValidId(request!.Id))
        {
            errors.Add("id: 2-63 lowercase letters, digits or '-', starting with a letter or digit");
        }
        else if (request.Id == PlatformAuditLog.TenantId)
        {
            errors.Add($"id: '{PlatformAuditLog.TenantId}' is reserved for the platform audit log");
        }

        if (!DisplayNames.IsValid(request.Name))
        {
            errors.Add(DisplayNames.Rule);
        }

        var edition = request.Edition ?? Tenant.DefaultEdition;
        if (edition is not (Tenant.DefaultEdition or Tenant.EnterpriseEdition))
        {
            errors.Add("edition: default or enterprise");
        }

        var homeRegion = request.HomeRegion ?? options.Value.Region;
        if (!TenantRules.IsValidRegion(homeRegion))
        {
            errors.Add("homeRegion: a region name such as westeu");
        }

        var mode = request.Residency?.Mode ?? Residency.Strict;
        if (mode is not (Residency.Strict or Residency.Permitted))
        {
            errors.Add("residency.mode: strict or permitted");
        }

        var allowed = request.Residency?.AllowedRegions ?? [];
        if (allowed.Any(r => !TenantRules.IsValidRegion(r)) || allowed.Count > 32)
        {
            errors.Add("residency.allowedRegions: at most 32 region names");
        }

        if (errors.Count > 0)
        {
            return Problem.Validation("The tenant is not valid; nothing was stored.", errors);
        }

        var tenant = new Tenant(request.Id!, request.Name!.Trim(), edition, homeRegion, new Residency(mode, [.. allowed.Distinct(StringComparer.Ordinal)]), Tenant.Active, clock.GetUtcNow());
        if (!tenant.IsServedIn(options.Value.Region))
        {
            audit.Report(PlatformEvents.Refusal(context, PlatformEvents.ResidencyRefused, tenant.Id, "tenant creation outside the residency policy"));
            return Problem.Misdirected($"This cell serves region '{options.Value.Region}'; the tenant's residency policy keeps its data in '{homeRegion}'{(mode == Residency.Permitted && allowed.Count > 0 ? " and " + string.Join(", ", allowed) : "")}. Create it in such a cell.");
        }

        if (!await store.TryCreateTenantAsync(tenant, cancellationToken).ConfigureAwait(false))
        {
            return Problem.Conflict("tenant-exists", $"A tenant '{tenant.Id}' already exists.");
        }

        await audit.RecordAsync(PlatformEvents.AdminAction(context, "tenant.created", tenant.Id, new() { ["edition"] = tenant.Edition, ["homeRegion"] = tenant.HomeRegion, ["residency"] = tenant.Residency.Mode }), cancellationToken).ConfigureAwait(false);
        return TypedResults.Created($"/v1/tenants/{tenant.Id}", ToResponse(tenant, options.Value) with { Usage = new StorageUsageDto(0, 0) });
    }

    private static async Task<IResult> UpdateTenantAsync(
        HttpContext context, ITenantStore store, ILogStore logs, IOptions<AtpOptions> options, IOptions<PolicyOptions> policyOptions, PlatformAuditLog audit, TimeProvider clock, CancellationToken cancellationToken)
    {
        var (request, problem) = await JsonBody.ReadAsync<UpdateTenantRequest>(context, 4 * 1024, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        var tenant = TenantAccessFilter.Current(context);

        // Policy settings change only by a proposal and a second person's approval; the whole request is refused so
        // nothing of it (a status change) is half applied.
        if (policyOptions.Value.TwoPersonApproval
            && (request!.RequireSignedRequests.ValueKind != JsonValueKind.Undefined || request.RequireRegisteredTypes.ValueKind != JsonValueKind.Undefined))
        {
            return Problem.Conflict(
                "policy-approval-required",
                $"requireSignedRequests and requireRegisteredTypes are the tenant's policy: propose the change with POST /v1/tenants/{tenant.Id}/policy/proposals and have a second admin approve it. Nothing was stored.");
        }

        // Appends to a replica would fork it from the source cell's log, whose checkpoints it serves: it stays read-only.
        if (tenant.IsReplica && request!.Status is not null)
        {
            return Problem.ReadOnlyReplica();
        }

        var errors = new List<string>();
        if (request!.Status is not (null or Tenant.Active or Tenant.Suspended))
        {
            errors.Add("status: active or suspended");
        }

        var settings = tenant.Settings;
        switch (request.RequireSignedRequests.ValueKind)
        {
            case JsonValueKind.Undefined:
                break;
            case JsonValueKind.Null:
                settings = settings with { RequireSignedRequests = null };
                break;
            case JsonValueKind.True or JsonValueKind.False:
                settings = settings with { RequireSignedRequests = request.RequireSignedRequests.GetBoolean() };
                break;
            default:
                errors.Add("requireSignedRequests: true, false, or null for the edition's default");
                break;
        }

        switch (request.RequireRegisteredTypes.ValueKind)
        {
            case JsonValueKind.Undefined:
                break;
            case JsonValueKind.Null:
                settings = settings with { RequireRegisteredTypes = null };
                break;
            case JsonValueKind.True or JsonValueKind.False:
                settings = settings with { RequireRegisteredTypes = request.RequireRegisteredTypes.GetBoolean() };
                break;
            default:
                errors.Add("requireRegisteredTypes: true, false, or null for the default (false)");
                break;
        }

        if (request.Limits.ValueKind == JsonValueKind.Object)
        {
            foreach (var member in request.Limits.EnumerateObject())
            {
                if (!LimitRanges.TryGetValue(member.Name, out var range))
                {
                    errors.Add($"limits.{member.Name}: unknown; use {string.Join(", ", LimitRanges.Keys)}");
                    continue;
                }

                long? value = member.Value.ValueKind == JsonValueKind.Null ? null
                    : member.Value.ValueKind == JsonValueKind.Number && member.Value.TryGetInt64(out var n) && n >= range.Min && n <= range.Max ? n : -1;
                if (value == -1)
                {
                    errors.Add($"limits.{member.Name}: {range.Min} to {range.Max} {range.Unit}, or null for the edition's default");
                    continue;
                }

                // Every range above fits its setting's type, so the narrowing casts cannot overflow.
                var small = (int?)value;
                settings = member.Name switch
                {
                    "ingestPerSecond" => settings with { IngestPerSecond = small },
                    "queryPerSecond" => settings with { QueryPerSecond = small },
                    "ingestEventsPerSecond" => settings with { IngestEventsPerSecond = small },
                    "ingestBytesPerSecond" => settings with { IngestBytesPerSecond = small },
                    "maxConcurrentExports" => settings with { MaxConcurrentExports = small },
                    "maxDailyExportBytes" => settings with { MaxDailyExportBytes = value },
                    "exportJobMaxBytes" => settings with { ExportJobMaxBytes = value },
                    "maxStoredEvents" => settings with { MaxStoredEvents = value },
                    "maxStoredBytes" => settings with { MaxStoredBytes = value },
                    _ => settings with { ReadCostPerSecond = small },
                };
            }
        }
        else if (request.Limits.ValueKind != JsonValueKind.Undefined)
        {
            errors.Add($"limits: an object with any of {string.Join(", ", LimitRanges.Keys)}");
        }

        if (errors.Count > 0)
        {
            return Problem.Validation("The change is not valid; nothing was changed.", errors);
        }

        // With two-person approval off, a direct change of policy settings is still recorded as a policy version.
        var policy = PolicyDocument.Of(settings);
        if (policy != PolicyDocument.Of(tenant.Settings))
        {
            var now = clock.GetUtcNow();
            var active = await TenantPolicies.ActiveAsync(store, tenant, now, cancellationToken).ConfigureAwait(false);
            var person = await Persons.OfAsync(context.User, store, cancellationToken).ConfigureAwait(false);
            if (await store.ApplyPolicyVersionAsync(tenant.Id, new PolicyVersion(active.Version + 1, active.Document with { RequireSignedRequests = policy.RequireSignedRequests, RequireRegisteredTypes = policy.RequireRegisteredTypes }, null, person, person, now), cancellationToken).ConfigureAwait(false) != PolicyApplyResult.Applied)
            {
                return Problem.Conflict("policy-conflict", "The tenant's policy changed at the same time; nothing was stored. Read the tenant and retry.");
            }
        }

        if (request.Status is { } status && status != tenant.Status)
        {
            await store.SetTenantStatusAsync(tenant.Id, status, cancellationToken).ConfigureAwait(false);
            tenant = tenant with { Status = status };
            await audit.RecordAsync(PlatformEvents.AdminAction(context, status == Tenant.Suspended ? "tenant.suspended" : "tenant.reactivated", tenant.Id), cancellationToken).ConfigureAwait(false);
        }

        if (settings != tenant.Settings)
        {
            await store.UpdateTenantSettingsAsync(tenant.Id, settings, cancellationToken).ConfigureAwait(false);
            var changes = new Dictionary<string, string>
            {
                ["requireSignedRequests"] = settings.RequireSignedRequests?.ToString().ToLowerInvariant() ?? "default",
                ["ingestPerSecond"] = settings.IngestPerSecond?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "default",
                ["queryPerSecond"] = settings.QueryPerSecond?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "default",
                ["ingestEventsPerSecond"] = settings.IngestEventsPerSecond?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "default",
                ["ingestBytesPerSecond"] = settings.IngestBytesPerSecond?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "default",
                ["readCostPerSecond"] = settings.ReadCostPerSecond?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "default",
                ["maxConcurrentExports"] = settings.MaxConcurrentExports?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "default",
                ["maxDailyExportBytes"] = settings.MaxDailyExportBytes?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "default",
                ["exportJobMaxBytes"] = settings.ExportJobMaxBytes?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "default",
                ["requireRegisteredTypes"] = settings.RequireRegisteredTypes?.ToString().ToLowerInvariant() ?? "default",
                ["maxStoredEvents"] = settings.MaxStoredEvents?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "default",
                ["maxStoredBytes"] = settings.MaxStoredBytes?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "default",
            };
            tenant = tenant with { Settings = settings };
            await audit.RecordAsync(PlatformEvents.AdminAction(context, "tenant.settings-changed", tenant.Id, changes), cancellationToken).ConfigureAwait(false);
        }

        return TypedResults.Ok(await WithUsageAsync(ToResponse(tenant, options.Value), logs, cancellationToken).ConfigureAwait(false));
    }

    private static async Task<IResult> GetTenantAsync(HttpContext context, ILogStore logs, IOptions<AtpOptions> options, CancellationToken cancellationToken) =>
        TypedResults.Ok(await WithUsageAsync(ToResponse(TenantAccessFilter.Current(context), options.Value), logs, cancellationToken).ConfigureAwait(false));

    private static async Task<TenantResponse> WithUsageAsync(TenantResponse response, ILogStore logs, CancellationToken cancellationToken)
    {
        var usage = await logs.GetStorageUsageAsync(response.Id, cancellationToken).ConfigureAwait(false);
        return usage is null ? response : response with { Usage = new StorageUsageDto((long)usage.StoredEvents, usage.StoredBytes) };
    }

    // The PATCH limits a platform admin may override, with the ranges the edition defaults are validated against.
    private static readonly Dictionary<string, (long Min, long Max, string Unit)> LimitRanges = new(StringComparer.Ordinal)
    {
        ["ingestPerSecond"] = (1, 10_000_000, "requests per second"),
        ["queryPerSecond"] = (1, 10_000_000, "requests per second"),
        ["ingestEventsPerSecond"] = (1, 100_000_000, "events per second"),
        ["ingestBytesPerSecond"] = (1024, int.MaxValue, "bytes per second"),
        ["readCostPerSecond"] = (1, 10_000_000, "read-cost units per second"),
        ["maxConcurrentExports"] = (1, 1000, "export jobs queued or running"),
        ["maxDailyExportBytes"] = (1024, long.MaxValue, "export bytes per UTC day"),
        ["exportJobMaxBytes"] = (1024, long.MaxValue, "bytes per export job"),
        ["maxStoredEvents"] = (0, long.MaxValue, "events stored (0: unlimited)"),
        ["maxStoredBytes"] = (0, long.MaxValue, "leaf bytes stored (0: unlimited)"),
    };

    private static readonly TimeSpan MaxOverlap = TimeSpan.FromDays(30);

    private static async Task<IResult> CreateApiKeyAsync(HttpContext context, ITenantStore store, ISecretSealer sealer, PlatformAuditLog audit, TimeProvider clock, CancellationToken cancellationToken)
    {
        var (request, problem) = await JsonBody.ReadAsync<CreateApiKeyRequest>(context, 4 * 1024, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        var scopes = request!.Scopes ?? [];
        if (!DisplayNames.IsValid(request.Name))
        {
            return Problem.Validation(DisplayNames.Rule);
        }

        if (scopes.Count == 0 || scopes.Any(s => !Scopes.TenantScopes.Contains(s)))
        {
            return Problem.Validation($"scopes: one or more of {string.Join(", ", Scopes.TenantScopes)}");
        }

        if (request.ExpiresAt is { } expires && expires <= clock.GetUtcNow())
        {
            return Problem.Validation("expiresAt: must be in the future");
        }

        if (request.Owner is not null && !DisplayNames.IsValid(request.Owner))
        {
            return Problem.Validation(OwnerRule);
        }

        var tenant = TenantAccessFilter.Current(context);
        var owner = await OwnerOfNewKeyAsync(context, request.Owner, store, cancellationToken).ConfigureAwait(false);
        var (key, secret, signingSecret) = NewKey(tenant.Id, request.Name.Trim(), [.. scopes.Distinct(StringComparer.Ordinal)], request.ExpiresAt, request.Signing == true, sealer, clock);
        key = key with { Owner = owner };
        await store.CreateApiKeyAsync(key, cancellationToken).ConfigureAwait(false);
        await audit.RecordAsync(PlatformEvents.AdminAction(context, "api-key.created", tenant.Id, new() { ["keyId"] = key.Id, ["scopes"] = string.Join(' ', key.Scopes), ["signing"] = signingSecret is null ? "false" : "true", ["owner"] = owner }), cancellationToken).ConfigureAwait(false);
        context.Response.Headers.CacheControl = "no-store";
        return TypedResults.Created($"/v1/tenants/{tenant.Id}/api-keys/{key.Id}", new ApiKeyResponse(key.Id, secret, key.Name, key.Scopes, tenant.Id, key.ExpiresAt, signingSecret) { Owner = owner });
    }

    internal const string OwnerRule = "owner: the person the key belongs to, 1-200 characters of printable text";

    /// <summary>
    /// The owner a new key gets: the one named, else the creating credential's person, so that a second key an admin
    /// creates for themselves cannot approve their own policy proposal.
    /// </summary>
    internal static async Task<string> OwnerOfNewKeyAsync(HttpContext context, string? named, ITenantStore store, CancellationToken cancellationToken) =>
        named?.Trim() is { Length: > 0 } owner ? owner : await Persons.OfAsync(context.User, store, cancellationToken).ConfigureAwait(false) ?? "";

    /// <summary>A key as listed: never the key, and its owner (a key from before owners is its own person).</summary>
    internal static ApiKeyInfo InfoOf(ApiKey k, DateTimeOffset now) =>
        new(k.Id, k.Name, k.Scopes, k.SealedSigningSecret is not null, k.CreatedAt, k.ExpiresAt, k.RevokedAt, k.StatusAt(now)) { Owner = k.Owner ?? Persons.OfKeyWithoutOwner(k.Id) };

    private static async Task<IResult> ListApiKeysAsync(HttpContext context, ITenantStore store, TimeProvider clock, CancellationToken cancellationToken)
    {
        var tenant = TenantAccessFilter.Current(context);
        var now = clock.GetUtcNow();
        var keys = await store.ListApiKeysAsync(tenant.Id, cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(new ApiKeyListResponse(keys.Select(k => InfoOf(k, now)).ToArray()));
    }

    private static async Task<IResult> RevokeApiKeyAsync(HttpContext context, string keyId, ITenantStore store, PlatformAuditLog audit, TimeProvider clock, CancellationToken cancellationToken) =>
        await RevokeKeyAsync(context, TenantAccessFilter.Current(context).Id, keyId, store, audit, clock, cancellationToken).ConfigureAwait(false);

    private static async Task<IResult> RotateApiKeyAsync(HttpContext context, string keyId, ITenantStore store, ISecretSealer sealer, PlatformAuditLog audit, TimeProvider clock, CancellationToken cancellationToken) =>
        await RotateKeyAsync(context, TenantAccessFilter.Current(context).Id, keyId, store, sealer, audit, clock, cancellationToken).ConfigureAwait(false);

    /// <summary>Revokes a key of the tenant, or a platform key when <paramref name="tenantId"/> is null.</summary>
    internal static async Task<IResult> RevokeKeyAsync(HttpContext context, string? tenantId, string keyId, ITenantStore store, PlatformAuditLog audit, TimeProvider clock, CancellationToken cancellationToken)
    {
        if (!await store.RevokeApiKeyAsync(tenantId, keyId, clock.GetUtcNow(), cancellationToken).ConfigureAwait(false))
        {
            return Problem.NotFound(tenantId is null ? $"There is no platform-admin key '{keyId}'." : $"The tenant has no API key '{keyId}'.");
        }

        await audit.RecordAsync(PlatformEvents.AdminAction(context, tenantId is null ? "platform-key.revoked" : "api-key.revoked", tenantId ?? PlatformAuditLog.TenantId, new() { ["keyId"] = keyId }), cancellationToken).ConfigureAwait(false);
        return TypedResults.NoContent();
    }

    /// <summary>A new key with the old one's name and scopes; the old one expires after the overlap. Null tenant: a platform key.</summary>
    internal static async Task<IResult> RotateKeyAsync(HttpContext context, string? tenantId, string keyId, ITenantStore store, ISecretSealer sealer, PlatformAuditLog audit, TimeProvider clock, CancellationToken cancellationToken)
    {
        var request = new RotateApiKeyRequest(null, null);
        if (context.Request.ContentLength is > 0 || context.Request.ContentType is not null)
        {
            var (body, problem) = await JsonBody.ReadAsync<RotateApiKeyRequest>(context, 4 * 1024, cancellationToken).ConfigureAwait(false);
            if (problem is not null)
            {
                return problem;
            }

            request = body!;
        }

        // Checked as a number first: TimeSpan.FromSeconds overflows (a 500) long before long.MaxValue.
        var overlapSeconds = request.OverlapSeconds ?? (long)TimeSpan.FromHours(24).TotalSeconds;
        if (overlapSeconds < 0 || overlapSeconds > (long)MaxOverlap.TotalSeconds)
        {
            return Problem.Validation($"overlapSeconds: 0 to {(long)MaxOverlap.TotalSeconds}");
        }

        var overlap = TimeSpan.FromSeconds(overlapSeconds);
        var now = clock.GetUtcNow();
        if (request.ExpiresAt is { } expires && expires <= now + overlap)
        {
            return Problem.Validation("expiresAt: the new key must outlive the overlap");
        }

        var old = (await store.ListApiKeysAsync(tenantId, cancellationToken).ConfigureAwait(false)).FirstOrDefault(k => k.Id == keyId);
        if (old is null)
        {
            return Problem.NotFound(tenantId is null ? $"There is no platform-admin key '{keyId}'." : $"The tenant has no API key '{keyId}'.");
        }

        if (old.StatusAt(now) != ApiKey.Active)
        {
            return Problem.Conflict("key-not-active", $"API key '{keyId}' is {old.StatusAt(now)}; only an active key can be rotated.");
        }

        // The successor belongs to the same person (a key without an owner is its own person: the successor takes that).
        var (key, secret, signingSecret) = NewKey(tenantId, old.Name, old.Scopes, request.ExpiresAt, old.SealedSigningSecret is not null, sealer, clock);
        key = key with { Owner = old.Owner ?? Persons.OfKeyWithoutOwner(old.Id) };
        await store.CreateApiKeyAsync(key, cancellationToken).ConfigureAwait(false);
        var oldExpiry = old.ExpiresAt is { } current && current < now + overlap ? current : now + overlap;
        await store.ExpireApiKeyAsync(tenantId, old.Id, oldExpiry, cancellationToken).ConfigureAwait(false);
        await audit.RecordAsync(PlatformEvents.AdminAction(context, tenantId is null ? "platform-key.rotated" : "api-key.rotated", tenantId ?? PlatformAuditLog.TenantId, new() { ["keyId"] = key.Id, ["replaces"] = old.Id }), cancellationToken).ConfigureAwait(false);
        context.Response.Headers.CacheControl = "no-store";
        var location = tenantId is null ? $"/v1/admin/keys/{key.Id}" : $"/v1/tenants/{tenantId}/api-keys/{key.Id}";
        return TypedResults.Created(location, new ApiKeyResponse(key.Id, secret, key.Name, key.Scopes, tenantId, key.ExpiresAt, signingSecret, old.Id, oldExpiry) { Owner = key.Owner });
    }

    // A signing key also gets 32 random bytes of HMAC secret: returned once (base64), stored only sealed under the KEK.
    internal static (ApiKey Key, string Secret, string? SigningSecret) NewKey(
        string? tenantId, string name, IReadOnlyList<string> scopes, DateTimeOffset? expiresAt, bool signing, ISecretSealer sealer, TimeProvider clock)
    {
        var secret = ApiKeyFormat.Generate();
        var id = ApiKeyFormat.NewId();
        string? signingSecret = null;
        byte[]? sealedSecret = null;
        if (signing)
        {
            Span<byte> hmacKey = stackalloc byte[32];
            System.Security.Cryptography.RandomNumberGenerator.Fill(hmacKey);
            signingSecret = Convert.ToBase64String(hmacKey);
            sealedSecret = sealer.Seal(hmacKey, id);
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(hmacKey);
        }

        var key = new ApiKey(id, tenantId, name, scopes, ApiKeyFormat.Hash(secret), clock.GetUtcNow())
        {
            ExpiresAt = expiresAt,
            SealedSigningSecret = sealedSecret,
        };
        return (key, secret, signingSecret);
    }

    private static TenantResponse ToResponse(Tenant t, AtpOptions options)
    {
        var limits = options.RateLimits.For(t.Edition);
        var settings = new TenantSettingsDto(t.RequiresSignedRequests, t.Settings.IngestPerSecond ?? limits.IngestPerSecond, t.Settings.QueryPerSecond ?? limits.QueryPerSecond)
        {
            IngestEventsPerSecond = t.Settings.IngestEventsPerSecond ?? limits.IngestEventsPerSecond,
            IngestBytesPerSecond = t.Settings.IngestBytesPerSecond ?? limits.IngestBytesPerSecond,
            ReadCostPerSecond = t.Settings.ReadCostPerSecond ?? limits.ReadCostPerSecond,
            MaxConcurrentExports = t.Settings.MaxConcurrentExports ?? limits.MaxConcurrentExports,
            MaxDailyExportBytes = t.Settings.MaxDailyExportBytes ?? limits.MaxDailyExportBytes,
            ExportJobMaxBytes = t.Settings.ExportJobMaxBytes ?? limits.ExportJobMaxBytes,
            MaxStoredEvents = t.Settings.MaxStoredEvents ?? limits.MaxStoredEvents,
            MaxStoredBytes = t.Settings.MaxStoredBytes ?? limits.MaxStoredBytes,
            RequireRegisteredTypes = t.Settings.RequireRegisteredTypes ?? false,
        };
        return new(t.Id, t.Name, t.Edition, t.HomeRegion, new ResidencyDto(t.Residency.Mode, t.Residency.AllowedRegions), t.Status, t.CreatedAt, options.TenantOrigin(t.Id), settings);
    }
}
