using Atp.Core.Schemas;
using Atp.Core.Tenants;

namespace Atp.Storage.Contract;

/// <summary>The schema registry: immutable numbered versions per tenant and type, the mode per type, one tenant at a time.</summary>
public abstract partial class LogStoreContract<TStore>
{
    private static StoredSchema Version(string type, int version, string schema) =>
        new(type, version, schema, new DateTimeOffset(2026, 11, 26, 10, version, 0, TimeSpan.Zero));

    [Fact]
    public async Task Stores_schema_versions_in_order_and_reads_back_every_field()
    {
        await CreateTenantsAsync(TenantA);

        Assert.True(await Store.TryAddSchemaVersionAsync(TenantA, Version("payment.v", 1, """{"type":"object"}"""), "BACKWARD", None));
        Assert.True(await Store.TryAddSchemaVersionAsync(TenantA, Version("payment.v", 2, """{"required":["a"],"type":"object"}"""), "FULL", None));

        var versions = await Store.ListSchemaVersionsAsync(TenantA, "payment.v", None);
        Assert.Equal([1, 2], versions.Select(v => v.Version));
        Assert.Equal(Version("payment.v", 1, """{"type":"object"}"""), versions[0]);
        Assert.Equal(Version("payment.v", 2, """{"required":["a"],"type":"object"}"""), versions[1]);
        Assert.Equal(new SchemaSubject("payment.v", "FULL", 2), await Store.GetSchemaSubjectAsync(TenantA, "payment.v", None));
    }

    [Fact]
    public async Task Refuses_a_taken_version_number_and_keeps_the_first_schema_and_mode()
    {
        await CreateTenantsAsync(TenantA);
        Assert.True(await Store.TryAddSchemaVersionAsync(TenantA, Version("t", 1, "true"), "BACKWARD", None));

        Assert.False(await Store.TryAddSchemaVersionAsync(TenantA, Version("t", 1, "false"), "NONE", None));

        var only = Assert.Single(await Store.ListSchemaVersionsAsync(TenantA, "t", None));
        Assert.Equal("true", only.Schema);
        Assert.Equal("BACKWARD", (await Store.GetSchemaSubjectAsync(TenantA, "t", None))!.Compatibility);
    }

    [Fact]
    public async Task Lists_registered_types_with_mode_and_latest_version()
    {
        await CreateTenantsAsync(TenantA);
        await Store.TryAddSchemaVersionAsync(TenantA, Version("b.type", 1, "true"), "NONE", None);
        await Store.TryAddSchemaVersionAsync(TenantA, Version("a.type", 1, "true"), "BACKWARD", None);
        await Store.TryAddSchemaVersionAsync(TenantA, Version("a.type", 2, "{}"), "BACKWARD", None);

        var subjects = await Store.ListSchemaSubjectsAsync(TenantA, None);

        Assert.Equal([new SchemaSubject("a.type", "BACKWARD", 2), new SchemaSubject("b.type", "NONE", 1)], subjects);
    }

    [Fact]
    public async Task Sets_the_mode_only_of_a_registered_type()
    {
        await CreateTenantsAsync(TenantA);
        await Store.TryAddSchemaVersionAsync(TenantA, Version("t", 1, "true"), "BACKWARD", None);

        Assert.True(await Store.SetSchemaCompatibilityAsync(TenantA, "t", "FORWARD_TRANSITIVE", None));
        Assert.False(await Store.SetSchemaCompatibilityAsync(TenantA, "unregistered", "NONE", None));

        Assert.Equal("FORWARD_TRANSITIVE", (await Store.GetSchemaSubjectAsync(TenantA, "t", None))!.Compatibility);
        Assert.Null(await Store.GetSchemaSubjectAsync(TenantA, "unregistered", None));
        Assert.Empty(await Store.ListSchemaVersionsAsync(TenantA, "unregistered", None));
    }

    [Fact]
    public async Task Schemas_of_one_tenant_are_invisible_to_another()
    {
        await CreateTenantsAsync(TenantA, TenantB);
        await Store.TryAddSchemaVersionAsync(TenantA, Version("shared.name", 1, """{"type":"string"}"""), "BACKWARD", None);

        Assert.Empty(await Store.ListSchemaSubjectsAsync(TenantB, None));
        Assert.Null(await Store.GetSchemaSubjectAsync(TenantB, "shared.name", None));
        Assert.Empty(await Store.ListSchemaVersionsAsync(TenantB, "shared.name", None));
        Assert.False(await Store.SetSchemaCompatibilityAsync(TenantB, "shared.name", "NONE", None));

        // The same type and version number in another tenant is a separate registration.
        Assert.True(await Store.TryAddSchemaVersionAsync(TenantB, Version("shared.name", 1, """{"type":"integer"}"""), "FULL", None));
        Assert.Equal("""{"type":"string"}""", Assert.Single(await Store.ListSchemaVersionsAsync(TenantA, "shared.name", None)).Schema);
        Assert.Equal("BACKWARD", (await Store.GetSchemaSubjectAsync(TenantA, "shared.name", None))!.Compatibility);
    }

    [Fact]
    public async Task Schemas_and_the_registered_types_setting_survive_a_restart()
    {
        await CreateTenantsAsync(TenantA);
        await Store.TryAddSchemaVersionAsync(TenantA, Version("t", 1, """{"type":"object"}"""), "FULL_TRANSITIVE", None);
        Assert.True(await Store.UpdateTenantSettingsAsync(TenantA, TenantSettings.None with { RequireRegisteredTypes = true }, None));

        await ReopenAsync();

        Assert.Equal(new SchemaSubject("t", "FULL_TRANSITIVE", 1), await Store.GetSchemaSubjectAsync(TenantA, "t", None));
        Assert.True((await Store.GetTenantAsync(TenantA, None))!.Settings.RequireRegisteredTypes);
        Assert.True(await Store.UpdateTenantSettingsAsync(TenantA, TenantSettings.None with { RequireRegisteredTypes = false }, None));
        Assert.False((await Store.GetTenantAsync(TenantA, None))!.Settings.RequireRegisteredTypes);
    }
}
