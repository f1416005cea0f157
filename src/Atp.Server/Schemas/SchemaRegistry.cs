using System.Text.Json;
using Atp.Core.Events;
using Atp.Core.Schemas;
using Atp.Core.Tenants;
using BitFaster.Caching.Lru;
using Microsoft.Extensions.Options;

namespace Atp.Server.Schemas;

/// <summary>
/// The registry as ingestion and the endpoints use it: what each tenant registered (cached for
/// <see cref="SchemaRegistryOptions.CacheTime"/>) and the compiled schema of each (tenant, type, version), compiled once
/// per node (versions are immutable, so a compiled version never goes stale).
/// </summary>
internal sealed class SchemaRegistry(ISchemaStore store, IOptions<SchemaRegistryOptions> options, TimeProvider clock)
{
    // Registration state of (tenant, type) pairs kept per node (unregistered types are remembered too, so that events
    // of a tenant without schemas cost no store read). Both caches are LRU: with many tenants a new pair pushes out
    // the least recently used one, not every pair of the cell (issue 22).
    private const int MaxSubjects = 100_000;

    private static readonly JsonElement EmptyObject = JsonDocument.Parse("{}").RootElement.Clone();

    private readonly ConcurrentLru<(string Tenant, string Type), (SchemaSubject? Subject, long Expires)> _subjects = new(MaxSubjects);
    private readonly ConcurrentLru<(string Tenant, string Type, int Version), EventSchema> _compiled = new(options.Value.MaxCompiledSchemas);

    public ISchemaStore Store => store;

    /// <summary>The type's registration (null: not registered), from the cache while it is fresh.</summary>
    public async ValueTask<SchemaSubject?> GetSubjectAsync(string tenantId, string type, bool fresh, CancellationToken cancellationToken)
    {
        var now = clock.GetTimestamp();
        if (!fresh && _subjects.TryGet((tenantId, type), out var cached) && now < cached.Expires)
        {
            return cached.Subject;
        }

        var subject = await store.GetSchemaSubjectAsync(tenantId, type, cancellationToken).ConfigureAwait(false);
        _subjects.AddOrUpdate((tenantId, type), (subject, now + (long)(options.Value.CacheTime.TotalSeconds * clock.TimestampFrequency)));
        return subject;
    }

    /// <summary>Forgets what this node read about the type (after it changed here).</summary>
    public void Forget(string tenantId, string type) => _subjects.TryRemove((tenantId, type));

    /// <summary>The compiled schema of one version; null when the type has no such version.</summary>
    public async ValueTask<EventSchema?> CompiledAsync(string tenantId, string type, int version, CancellationToken cancellationToken)
    {
        if (_compiled.TryGet((tenantId, type, version), out var schema))
        {
            return schema;
        }

        var stored = (await store.ListSchemaVersionsAsync(tenantId, type, cancellationToken).ConfigureAwait(false)).FirstOrDefault(v => v.Version == version);
        if (stored is null)
        {
            return null;
        }

        schema = EventSchema.FromStored(stored.Schema);
        _compiled.AddOrUpdate((tenantId, type, version), schema);
        return schema;
    }

    /// <summary>
    /// Validates each event's data against its type's schema (the version it names, else the latest) and applies
    /// requireRegisteredTypes; one error per refused event, with its index in the request.
    /// </summary>
    public async Task<IReadOnlyList<SchemaError>> ValidateAsync(Tenant tenant, IReadOnlyList<EventDraft> drafts, CancellationToken cancellationToken)
    {
        var errors = new List<SchemaError>();
        var requireRegistered = tenant.Settings.RequireRegisteredTypes == true;
        HashSet<string>? reread = null;
        for (var i = 0; i < drafts.Count; i++)
        {
            var draft = drafts[i];
            var subject = await GetSubjectAsync(tenant.Id, draft.Type, fresh: false, cancellationToken).ConfigureAwait(false);

            // A type or version this node has not seen may have been registered on another node just now: read it
            // again, once per type and request (a refused batch must not cost a store read per event).
            if ((subject is null && (requireRegistered || draft.SchemaVersion is not null) || draft.SchemaVersion > subject?.LatestVersion)
                && (reread ??= new(StringComparer.Ordinal)).Add(draft.Type))
            {
                subject = await GetSubjectAsync(tenant.Id, draft.Type, fresh: true, cancellationToken).ConfigureAwait(false);
            }

            if (subject is null)
            {
                if (requireRegistered)
                {
                    errors.Add(new SchemaError(i, "/type", null, null, $"type '{draft.Type}' has no registered schema, and this tenant accepts only registered types (requireRegisteredTypes)"));
                }
                else if (draft.SchemaVersion is { } named)
                {
                    errors.Add(new SchemaError(i, "/schemaVersion", null, null, $"type '{draft.Type}' has no registered schema, so it has no version {named}"));
                }

                continue;
            }

            var version = draft.SchemaVersion ?? subject.LatestVersion;
            if (version > subject.LatestVersion || await CompiledAsync(tenant.Id, draft.Type, version, cancellationToken).ConfigureAwait(false) is not { } schema)
            {
                errors.Add(new SchemaError(i, "/schemaVersion", null, null, $"type '{draft.Type}' has versions 1 to {subject.LatestVersion}, not {version}"));
                continue;
            }

            if (schema.Validate(draft.Data ?? EmptyObject) is { } violation)
            {
                errors.Add(new SchemaError(i, "/data" + violation.InstanceLocation, violation.Keyword, version, violation.Message));
            }
        }

        return errors;
    }
}

/// <summary>
/// Why one event of a request was refused by the registry: its index, the JSON Pointer into the event, the schema
/// keyword that failed (null when the event names no usable schema) and the version it was checked against.
/// </summary>
internal sealed record SchemaError(int Index, string Pointer, string? Keyword, int? SchemaVersion, string Detail);
