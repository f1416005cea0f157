using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Atp.Integrity;
using Atp.Server.Integrity;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Net.Pkcs11Interop.Common;

namespace Atp.Server.Tests;

/// <summary>The PKCS#11 signing-key provider against a real SoftHSM2 token, in a server over real Kestrel.</summary>
public sealed class Pkcs11SigningKeyTests(SoftHsmToken token) : IClassFixture<SoftHsmToken>
{
    [Fact]
    public async Task Checkpoints_are_signed_in_the_token_and_verify_with_the_key_read_from_the_token_and_with_atp_verify()
    {
        string note;
        string publishedKey;
        string dataDirectory;
        await using (var server = await ServerFixture.StartAsync(settings: token.Settings("cell-signing")))
        {
            using var client = server.ClientWithKey(await server.CreateTenantWithKeyAsync("acme"));
            Assert.Equal(System.Net.HttpStatusCode.Created, (await client.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Batch(5)))).StatusCode);
            note = await ServerFixture.WaitForCheckpointAsync(client, "acme", 5);
            var keys = await client.GetFromJsonAsync<JsonElement>("/v1/log/keys");
            publishedKey = keys.GetProperty("keys")[0].GetProperty("verifierKey").GetString()!;
            dataDirectory = server.DataDirectory;
            Assert.False(File.Exists(Path.Combine(dataDirectory, "keys", "cell-signing.key")), "the PKCS#11 provider wrote a key file");
        }

        // The verifier key, built independently from the public object's CKA_EC_POINT (DER OCTET STRING 04 20 ‖ key).
        byte[] point;
        using (var session = token.Open())
        {
            point = session.Session.GetAttributeValue(session.Find(CKO.CKO_PUBLIC_KEY, "cell-signing"), [CKA.CKA_EC_POINT])[0].GetValueAsByteArray();
        }

        var raw = point.Length == 34 ? point[2..] : point;
        using var fromToken = NoteSigner.FromExternalKey("atp.test/test-cell-1", raw, _ => throw new InvalidOperationException("verification only"));
        Assert.Equal(fromToken.Verifier.VerifierKey, publishedKey);

        Assert.True(Checkpoint.Open(Encoding.UTF8.GetBytes(note), [fromToken.Verifier], out var checkpoint).IsValid);
        Assert.Equal(5UL, checkpoint!.Size);

        var file = Path.Combine(token.Directory, "checkpoint.txt");
        await File.WriteAllTextAsync(file, note);
        var verified = await AuditorTests.AtpAsync(new Dictionary<string, string>(), "verify", "checkpoint", file, "--key", fromToken.Verifier.VerifierKey);
        Assert.True(verified.ExitCode == 0, verified.Output + verified.Error);

        // And a checkpoint altered after signing does not.
        await File.WriteAllTextAsync(file, note.Replace("\n5\n", "\n6\n", StringComparison.Ordinal));
        var altered = await AuditorTests.AtpAsync(new Dictionary<string, string>(), "verify", "checkpoint", file, "--key", fromToken.Verifier.VerifierKey);
        Assert.NotEqual(0, altered.ExitCode);
    }

    [Fact]
    public void A_generated_private_key_is_sensitive_and_not_extractable()
    {
        using (var provider = NewProvider("not-extractable", createKeyIfMissing: true))
        {
            Assert.Throws<InvalidOperationException>(provider.Current.ExportSignerKey);
        }

        using var session = token.Open();
        var key = session.Find(CKO.CKO_PRIVATE_KEY, "not-extractable");
        var attributes = session.Session.GetAttributeValue(key, [CKA.CKA_EXTRACTABLE, CKA.CKA_SENSITIVE, CKA.CKA_NEVER_EXTRACTABLE, CKA.CKA_TOKEN]);
        Assert.False(attributes[0].GetValueAsBool());
        Assert.True(attributes[1].GetValueAsBool());
        Assert.True(attributes[2].GetValueAsBool());
        Assert.True(attributes[3].GetValueAsBool());

        // The token refuses to reveal the private value itself.
        var value = session.Session.GetAttributeValue(key, [CKA.CKA_VALUE])[0];
        Assert.True(value.CannotBeRead);
    }

    [Fact]
    public void Concurrent_signers_each_get_a_signature_that_verifies()
    {
        using var provider = NewProvider("concurrent", createKeyIfMissing: true);
        var notes = Enumerable.Range(0, 64).Select(i => new Checkpoint($"atp.test/test-cell-1/t{i}", (ulong)i + 1, default).ToNoteText()).ToArray();

        var signatures = new NoteSignature[notes.Length];
        Parallel.For(0, notes.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i => signatures[i] = provider.Current.Sign(notes[i]));

        for (var i = 0; i < notes.Length; i++)
        {
            Assert.True(provider.Current.Verifier.Verify(Encoding.UTF8.GetBytes(notes[i]), signatures[i].Signature.Span), $"signature {i} does not verify");
        }
    }

    [Fact]
    public void A_missing_key_stops_the_start_with_a_message_that_names_the_key_and_the_way_out()
    {
        var error = Assert.Throws<SigningKeyUnavailableException>(() => NewProvider("absent", createKeyIfMissing: false));

        Assert.Contains("'absent'", error.Message, StringComparison.Ordinal);
        Assert.Contains("CreateKeyIfMissing", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_wrong_pin_fails_the_start_with_a_clear_message_that_does_not_contain_the_pin()
    {
        const string wrongPin = "9999-wrong-pin";
        var pinFile = Path.Combine(token.Directory, "wrong.pin");
        await File.WriteAllTextAsync(pinFile, wrongPin + "\n");
        var dataDirectory = Directory.CreateTempSubdirectory("atp-server-").FullName;

        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = AppContext.BaseDirectory };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Atp.Server.dll"));
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add("http://127.0.0.1:0");
        start.ArgumentList.Add($"--Atp:DataDirectory={dataDirectory}");
        foreach (var (key, value) in token.Settings("cell-signing", createKeyIfMissing: false, pinFile: pinFile))
        {
            start.ArgumentList.Add($"--{key}={value}");
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var text = await output + await error;

        Assert.Equal(1, process.ExitCode);
        Assert.Contains($"ATP cannot start: The token '{SoftHsmToken.Label}' refused the user PIN from the file {pinFile} (CKR_PIN_INCORRECT).", text, StringComparison.Ordinal);
        Assert.DoesNotContain(wrongPin, text, StringComparison.Ordinal);
        Assert.DoesNotContain(SoftHsmToken.Pin, text, StringComparison.Ordinal);
        Directory.Delete(dataDirectory, recursive: true);
    }

    [Fact]
    public void A_pin_from_the_environment_variable_logs_in()
    {
        const string variable = "ATP_TEST_PKCS11_PIN";
        Environment.SetEnvironmentVariable(variable, SoftHsmToken.Pin);
        try
        {
            var settings = new Pkcs11KeyOptions
            {
                Library = SoftHsmToken.Module, TokenLabel = SoftHsmToken.Label, KeyLabel = "from-environment", PinEnvironmentVariable = variable, CreateKeyIfMissing = true,
            };
            using var provider = new Pkcs11SigningKeyProvider(Options.Create(settings), Options.Create(new AtpOptions { Origin = "atp.test/test-cell-1" }), NullLogger<Pkcs11SigningKeyProvider>.Instance);
            var note = new Checkpoint("atp.test/test-cell-1/t", 1, default).ToNoteText();
            Assert.True(provider.Current.Verifier.Verify(Encoding.UTF8.GetBytes(note), provider.Current.Sign(note).Signature.Span));
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    [Fact]
    public void An_unknown_provider_or_a_pkcs11_provider_without_a_pin_is_a_configuration_error()
    {
        var data = Directory.CreateTempSubdirectory("atp-server-").FullName;
        try
        {
            var unknown = Assert.Throws<OptionsValidationException>(() => AtpServer.Build([$"--Atp:DataDirectory={data}", "--Atp:Keys:Provider=kms"]));
            Assert.Contains("Atp:Keys:Provider must be 'file' or 'pkcs11', not 'kms'", unknown.Message, StringComparison.Ordinal);

            var settings = token.Settings("no-pin");
            settings.Remove("Atp:Keys:Pkcs11:PinFile");
            settings["Atp:Keys:Pkcs11:PinEnvironmentVariable"] = "ATP_TEST_PKCS11_PIN_UNSET";
            var app = AtpServer.Build([$"--Atp:DataDirectory={data}", .. settings.Select(s => $"--{s.Key}={s.Value}")]);
            var noPin = Assert.Throws<OptionsValidationException>(() => app.Services.GetService(typeof(ISigningKeyProvider)));
            Assert.Contains("Atp:Keys:Pkcs11:PinFile or the environment variable ATP_TEST_PKCS11_PIN_UNSET", noPin.Message, StringComparison.Ordinal);
            ((IDisposable)app).Dispose();
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    private Pkcs11SigningKeyProvider NewProvider(string keyLabel, bool createKeyIfMissing)
    {
        var settings = new Pkcs11KeyOptions
        {
            Library = SoftHsmToken.Module, TokenLabel = SoftHsmToken.Label, KeyLabel = keyLabel, PinFile = token.PinFile, CreateKeyIfMissing = createKeyIfMissing,
        };
        return new Pkcs11SigningKeyProvider(Options.Create(settings), Options.Create(new AtpOptions { Origin = "atp.test/test-cell-1" }), NullLogger<Pkcs11SigningKeyProvider>.Instance);
    }
}
