using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Atp.Core.Classification;
using Atp.Integrity;
using Npgsql;

namespace Atp.Server.Tests;

/// <summary>
/// The envelope's personal fields (actor name, IP, user agent) are sealed before the leaf is written: no file of the
/// server's data directory and no row of its database holds them in clear, in any usual encoding, while the leaves,
/// proofs and checkpoints still verify and re-sends still match.
/// </summary>
public sealed class ClassifiedFieldTests : IAsyncLifetime
{
    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private ServerFixture _server = null!;

    public async Task InitializeAsync() =>
        _server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?> { ["Atp:Classification:SealEnvelopeFields"] = "true" });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task No_clear_personal_value_is_stored_and_every_leaf_still_verifies()
    {
        var key = await _server.CreateTenantWithKeyAsync("acme");
        using var client = _server.ClientWithKey(key);
        var marker = Guid.NewGuid().ToString("N")[..12];
        var secrets = new List<string>();
        var batch = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            // Non-ASCII and '<' so that the JSON-escaped form differs from the UTF-8 one.
            var name = $"Zoë Quartermaine<{marker}-{i}>";
            var ip = $"198.51.{100 + i}.{marker.Length + i}";
            var agent = $"Mozilla/5.0 (X11; {marker}-agent-{i})";
            secrets.AddRange([name, ip, agent]);
            batch.Add(EventJson(i % 3 == 0 ? Guid.NewGuid().ToString() : null, $"user-{marker}-{i % 2}", name, ip, agent));
        }

        var response = await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json("{\"events\":[" + string.Join(',', batch) + "]}"));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var receipts = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("receipts");

        // A second request for a subject whose key now exists, and one event alone.
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(batch[1]))).StatusCode);

        // A re-send of an event with a client-assigned id seals identically, so it is recognised and gets its receipt.
        var resent = await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(batch[0]));
        Assert.True(resent.IsSuccessStatusCode, await resent.Content.ReadAsStringAsync());
        Assert.Equal(receipts[0].GetProperty("index").GetUInt64(), (await resent.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("receipts")[0].GetProperty("index").GetUInt64());
        Assert.Equal(7UL, await _server.TreeSizeAsync("acme"));

        var note = await ServerFixture.WaitForCheckpointAsync(client, "acme", 7);
        var verifier = NoteVerifier.Parse((await client.GetFromJsonAsync<JsonElement>("/v1/log/keys")).GetProperty("keys")[0].GetProperty("verifierKey").GetString()!);
        Assert.True(Checkpoint.Open(Encoding.UTF8.GetBytes(note), [verifier], out var checkpoint).IsValid);
        for (ulong index = 0; index < checkpoint!.Size; index++)
        {
            var leaf = await client.GetByteArrayAsync($"/v1/tenants/acme/log/entries/{index}");
            var proof = await client.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/log/proof/inclusion?index={index}&size={checkpoint.Size}");
            Assert.True(InclusionProof.Verify(index, checkpoint.Size, MerkleHasher.HashLeaf(leaf), ProofJson.Hashes(proof), checkpoint.Root).IsValid, $"inclusion of {index}");

            using var parsed = JsonDocument.Parse(leaf);
            var actor = parsed.RootElement.GetProperty("actor");
            Assert.StartsWith(FieldToken.Prefix, actor.GetProperty("name").GetString(), StringComparison.Ordinal);
            Assert.StartsWith("user-", actor.GetProperty("id").GetString(), StringComparison.Ordinal);
            Assert.StartsWith(FieldToken.Prefix, parsed.RootElement.GetProperty("context").GetProperty("ip").GetString(), StringComparison.Ordinal);
            Assert.StartsWith(FieldToken.Prefix, parsed.RootElement.GetProperty("context").GetProperty("userAgent").GetString(), StringComparison.Ordinal);
            Assert.Equal("req-1", parsed.RootElement.GetProperty("context").GetProperty("requestId").GetString());
        }

        // The key id of a subject's token names no subject, and both subjects got their own key.
        var keyIds = new HashSet<string>();
        for (ulong index = 0; index < 6; index++)
        {
            using var parsed = JsonDocument.Parse(await client.GetByteArrayAsync($"/v1/tenants/acme/log/entries/{index}"));
            Assert.True(FieldToken.TryParse(parsed.RootElement.GetProperty("actor").GetProperty("name").GetString(), out var keyId, out _));
            Assert.DoesNotContain(marker, keyId, StringComparison.Ordinal);
            keyIds.Add(keyId);
        }

        Assert.Equal(2, keyIds.Count);

        await ServerFixture.WaitForProjectionAsync(client, "acme");
        var search = await client.GetStringAsync("/v1/tenants/acme/events?limit=50");
        Assert.Contains(FieldToken.Prefix, search, StringComparison.Ordinal);
        Assert.DoesNotContain(marker + "-agent", search, StringComparison.Ordinal);

        var dump = TestStorage.IsPostgres ? await DumpDatabaseAsync(_server) : null;
        await _server.StopAsync();
        var forms = secrets.SelectMany(Forms).Distinct().ToArray();
        foreach (var path in Directory.EnumerateFiles(_server.DataDirectory, "*", SearchOption.AllDirectories))
        {
            AssertAbsent(path, File.ReadAllBytes(path), forms);
        }

        Assert.Equal(7 * 3, await AssertEveryTokenHasItsKeyAsync(_server.DataDirectory, _server.StorageArguments));
        if (dump is not null)
        {
            Assert.Contains("data_keys", Encoding.UTF8.GetString(dump), StringComparison.Ordinal);
            AssertAbsent("pg_dump", dump, forms);
        }
    }

    /// <summary>
    /// Every token in every stored leaf names a data key the store holds (read straight from the stopped server's
    /// storage): no leaf outlived its key. Returns how many tokens were checked.
    /// </summary>
    internal static async Task<int> AssertEveryTokenHasItsKeyAsync(string dataDirectory, IReadOnlyList<string> storageArguments)
    {
        var (leaves, keys) = await ReadStoredAsync(dataDirectory, storageArguments);
        var keyIds = keys.Keys.ToHashSet(StringComparer.Ordinal);
        var tokens = 0;
        foreach (var leaf in leaves)
        {
            using var parsed = JsonDocument.Parse(leaf);
            var root = parsed.RootElement;
            var values = new[]
            {
                root.TryGetProperty("actor", out var actor) && actor.TryGetProperty("name", out var name) ? name.GetString() : null,
                root.TryGetProperty("context", out var context) && context.TryGetProperty("ip", out var ip) ? ip.GetString() : null,
                root.TryGetProperty("context", out var context2) && context2.TryGetProperty("userAgent", out var agent) ? agent.GetString() : null,
            };
            foreach (var value in values.Where(FieldToken.IsToken))
            {
                Assert.True(FieldToken.TryParse(value, out var keyId, out _), "a stored token does not parse");
                Assert.True(keyIds.Contains(keyId), $"a stored leaf is sealed under key {keyId}, which the store does not hold");
                tokens++;
            }
        }

        return tokens;
    }

    /// <summary>
    /// Every stored leaf and every stored wrapped data key (key id → wrapped bytes), read straight from the storage
    /// (SQLite read-only, or PostgreSQL as the throwaway server's superuser: row-level security would hide rows from
    /// anyone else).
    /// </summary>
    internal static async Task<(List<byte[]> Leaves, Dictionary<string, byte[]> Keys)> ReadStoredAsync(string dataDirectory, IReadOnlyList<string> storageArguments)
    {
        var leaves = new List<byte[]>();
        var keys = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var (connection, schema) = await OpenStoreAsync(dataDirectory, storageArguments);
        await using (connection)
        {
            await using (var read = connection.CreateCommand())
            {
                read.CommandText = $"SELECT leaf FROM {schema}log_entries";
                await using var reader = await read.ExecuteReaderAsync();
                while (await reader.ReadAsync())
                {
                    leaves.Add((byte[])reader[0]);
                }
            }

            await using var keyRead = connection.CreateCommand();
            keyRead.CommandText = $"SELECT key_id, wrapped FROM {schema}data_keys";
            await using var keyReader = await keyRead.ExecuteReaderAsync();
            while (await keyReader.ReadAsync())
            {
                keys[keyReader.GetString(0)] = (byte[])keyReader[1];
            }
        }

        return (leaves, keys);
    }

    /// <summary>
    /// A connection straight to the server's storage (SQLite read-only, or PostgreSQL as the throwaway server's
    /// superuser: row-level security would hide rows from anyone else), open, with the prefix of its tables' names.
    /// </summary>
    internal static async Task<(System.Data.Common.DbConnection Connection, string Schema)> OpenStoreAsync(string dataDirectory, IReadOnlyList<string> storageArguments)
    {
        System.Data.Common.DbConnection connection;
        if (storageArguments.FirstOrDefault(a => a.StartsWith("--ConnectionStrings:AtpAdmin=", StringComparison.Ordinal)) is { } owner)
        {
            var builder = new NpgsqlConnectionStringBuilder(owner["--ConnectionStrings:AtpAdmin=".Length..]) { Username = "postgres", Password = null };
            connection = new NpgsqlConnection(builder.ConnectionString);
        }
        else
        {
            connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(dataDirectory, "atp.db")};Mode=ReadOnly;Pooling=False");
        }

        await connection.OpenAsync();
        return (connection, connection is NpgsqlConnection ? "atp." : "");
    }

    private static string EventJson(string? id, string actorId, string name, string ip, string agent) =>
        "{" + (id is null ? "" : $"\"id\":\"{id}\",")
        + "\"type\":\"app.audit\",\"occurredAt\":\"2026-11-26T10:15:30Z\","
        + $"\"actor\":{{\"type\":\"user\",\"id\":\"{actorId}\",\"name\":{JsonSerializer.Serialize(name)}}},"
        + "\"action\":\"document.update\",\"targets\":[{\"type\":\"document\",\"id\":\"doc-1\"}],\"outcome\":\"success\","
        + $"\"context\":{{\"ip\":\"{ip}\",\"userAgent\":{JsonSerializer.Serialize(agent)},\"requestId\":\"req-1\"}},\"data\":{{\"n\":1}}}}";

    // UTF-8, UTF-16LE, JSON-escaped (default and relaxed encoders), hex (how pg_dump writes bytea) and base64 (standard
    // and URL-safe, at each of the three alignments a value can have inside a longer base64 text).
    internal static IEnumerable<byte[]> Forms(string value)
    {
        var utf8 = Encoding.UTF8.GetBytes(value);
        yield return utf8;
        yield return Encoding.Unicode.GetBytes(value);
        yield return Encoding.ASCII.GetBytes(Convert.ToHexStringLower(utf8));
        yield return Encoding.UTF8.GetBytes(JsonSerializer.Serialize(value)[1..^1]);
        yield return Encoding.UTF8.GetBytes(JsonSerializer.Serialize(value, Relaxed)[1..^1]);
        for (var shift = 0; shift < 3; shift++)
        {
            var encoded = Convert.ToBase64String([.. new byte[shift], .. utf8]);

            // Drop the characters that also encode the prefix, and the last group (it depends on what follows).
            var core = encoded[(shift == 0 ? 0 : 4)..^4];
            yield return Encoding.ASCII.GetBytes(core);
            yield return Encoding.ASCII.GetBytes(core.Replace('+', '-').Replace('/', '_'));
        }
    }

    internal static void AssertAbsent(string where, ReadOnlySpan<byte> content, byte[][] forms)
    {
        foreach (var form in forms)
        {
            Assert.True(content.IndexOf(form) < 0, $"{where} holds a classified value in clear ({Encoding.UTF8.GetString(form)})");
        }
    }

    // The whole database as pg_dump writes it (schema and every row), as the throwaway server's superuser (row-level
    // security would hide rows from anyone else).
    internal static async Task<byte[]> DumpDatabaseAsync(ServerFixture server)
    {
        var owner = server.StorageArguments.Single(a => a.StartsWith("--ConnectionStrings:AtpAdmin=", StringComparison.Ordinal));
        var builder = new NpgsqlConnectionStringBuilder(owner["--ConnectionStrings:AtpAdmin=".Length..]);
        var pgDump = Directory.EnumerateDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin", "pg_dump")).First(File.Exists);
        var start = new ProcessStartInfo(pgDump)
        {
            ArgumentList = { "-h", builder.Host!, "-p", builder.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", "postgres", "-d", builder.Database!, "--no-owner" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        using var output = new MemoryStream();
        var copy = process.StandardOutput.BaseStream.CopyToAsync(output);
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        await copy;
        Assert.True(process.ExitCode == 0, await errors);
        return output.ToArray();
    }
}
