using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Runtime.Loader;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Atp.Integrity;
using Microsoft.AspNetCore.Routing;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi;
using NSwag.CodeGeneration.CSharp;
using NSwag.CodeGeneration.OperationNameGenerators;

namespace Atp.Server.Tests;

/// <summary>
/// The OpenAPI document as a contract: valid OpenAPI 3.1 by a real validator, complete for every mapped endpoint, and
/// good enough that a client generated from it (NSwag, compiled with Roslyn) runs the README walkthrough.
/// </summary>
public sealed partial class OpenApiContractTests : IAsyncLifetime
{
    private const string ProblemMediaType = "application/problem+json";

    // Writes that take no body; every other POST, PUT or PATCH must declare its request schema.
    private static readonly HashSet<string> BodilessWrites = new(StringComparer.Ordinal) { "POST /v1/tenants/{tenant}/projection/rebuild", "POST /v1/tenants/{tenant}/projection/dead-letters/retry", "POST /v1/tenants/{tenant}/exports/{id}/cancel", "POST /v1/log/keys/{keyId}/retire", "POST /v1/admin/kek/rotate", "POST /v1/admin/kek/rewrap", "POST /v1/tenants/{tenant}/policy/proposals/{id}/approve", "POST /v1/tenants/{tenant}/retention/run", "POST /v1/tenants/{tenant}/erasures/{id}/approve" };

    private ServerFixture _server = null!;

    public async Task InitializeAsync() => _server = await ServerFixture.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Document_is_valid_OpenAPI_3_1_by_the_Microsoft_OpenApi_validator()
    {
        var json = await _server.Client.GetStringAsync("/openapi/v1.json");

        var read = OpenApiDocument.Parse(json, "json");

        Assert.StartsWith("3.1", JsonDocument.Parse(json).RootElement.GetProperty("openapi").GetString(), StringComparison.Ordinal);
        Assert.NotNull(read.Document);
        var parseErrors = read.Diagnostic?.Errors ?? [];
        Assert.True(parseErrors.Count == 0, "reader: " + string.Join("\n", parseErrors.Select(e => $"{e.Pointer}: {e.Message}")));
        var errors = read.Document!.Validate(ValidationRuleSet.GetDefaultRuleSet())?.ToList() ?? [];
        Assert.True(errors.Count == 0, "validator: " + string.Join("\n", errors.Select(e => $"{e.Pointer}: {e.Message}")));

        // OpenAPI 3.1 §4.8.8.1: each template expression in a path MUST correspond to a path parameter. Microsoft.OpenApi's
        // default rule set does not check this direction (an undeclared {tenant} passes it), so it is checked here.
        foreach (var (path, item) in read.Document.Paths)
        {
            foreach (var (method, operation) in item.Operations!)
            {
                var declared = (operation.Parameters ?? []).Concat(item.Parameters ?? []).Where(p => p.In == ParameterLocation.Path && p.Required).Select(p => p.Name).ToHashSet();
                foreach (Match template in RouteParameter().Matches(path))
                {
                    Assert.True(declared.Contains(template.Groups[1].Value), $"{method} {path}: {{{template.Groups[1].Value}}} is not a declared path parameter");
                }
            }
        }
    }

    [Fact]
    public async Task Every_mapped_endpoint_has_its_parameters_schemas_examples_security_and_problems()
    {
        var document = OpenApiDocument.Parse(await _server.Client.GetStringAsync("/openapi/v1.json"), "json").Document!;
        var endpoints = _server.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText?.StartsWith("/v1/", StringComparison.Ordinal) == true)
            .ToList();
        Assert.True(endpoints.Count >= 17, $"only {endpoints.Count} /v1 endpoints found");

        var operationIds = new HashSet<string>(StringComparer.Ordinal);
        foreach (var endpoint in endpoints)
        {
            var path = RouteParameter().Replace(endpoint.RoutePattern.RawText!.TrimEnd('/'), "{$1}");
            foreach (var method in endpoint.Metadata.GetRequiredMetadata<IHttpMethodMetadata>().HttpMethods)
            {
                var name = $"{method} {path}";
                Assert.True(document.Paths.TryGetValue(path, out var item), $"{name}: not in the document");
                Assert.True(item!.Operations!.TryGetValue(new HttpMethod(method), out var operation), $"{name}: no operation");
                Assert.False(string.IsNullOrEmpty(operation!.OperationId), $"{name}: no operationId");
                Assert.True(operationIds.Add(operation.OperationId!), $"{name}: operationId {operation.OperationId} used twice");
                Assert.False(string.IsNullOrEmpty(operation.Summary), $"{name}: no summary");

                foreach (var parameter in endpoint.RoutePattern.Parameters)
                {
                    var declared = operation.Parameters?.SingleOrDefault(p => p.Name == parameter.Name && p.In == ParameterLocation.Path);
                    Assert.True(declared is { Required: true, Schema: not null }, $"{name}: path parameter {parameter.Name} not declared");
                    Assert.False(string.IsNullOrEmpty(declared!.Description), $"{name}: path parameter {parameter.Name} undescribed");
                }

                if (method is "POST" or "PUT" or "PATCH" && !BodilessWrites.Contains(name))
                {
                    var body = SchemaOf(operation.RequestBody?.Content, "application/json");
                    Assert.True(body is not null, $"{name}: accepts a body but declares no request schema");
                    AssertHasExamples(document, body!, $"{name} request");
                }

                var responses = operation.Responses!;
                var successes = responses.Where(r => r.Key.StartsWith('2')).ToList();
                Assert.True(successes.Count > 0, $"{name}: no success response");
                foreach (var (status, response) in successes.Where(r => r.Key != "204"))
                {
                    var (mediaType, content) = Assert.Single(response.Content!);
                    Assert.True(content.Schema is not null, $"{name} {status}: no schema");
                    if (mediaType == "application/json" && content.Schema is OpenApiSchemaReference { Reference.Id: not "Stream" })
                    {
                        AssertHasExamples(document, content.Schema, $"{name} {status}");
                    }
                }

                Assert.Contains("429", responses.Keys);
                var authorized = operation.Security is { Count: > 0 };
                if (authorized)
                {
                    Assert.Contains("401", responses.Keys);
                    Assert.Contains("403", responses.Keys);
                }

                if (path.Contains("{tenant}", StringComparison.Ordinal))
                {
                    Assert.True(authorized, $"{name}: a tenant endpoint without security requirements");
                    Assert.Contains("404", responses.Keys);
                    Assert.Contains("421", responses.Keys);
                }

                foreach (var (status, response) in responses.Where(r => r.Key[0] is '4' or '5'))
                {
                    var problem = SchemaOf(response.Content, ProblemMediaType);
                    Assert.True(problem is OpenApiSchemaReference { Reference.Id: "ProblemDetails" }, $"{name} {status}: not the shared problem schema");
                    Assert.False(string.IsNullOrEmpty(response.Description), $"{name} {status}: undescribed");
                }
            }
        }

        var problemSchema = document.Components!.Schemas!["ProblemDetails"];
        Assert.Equal(["detail", "errors", "instance", "requestId", "status", "title", "traceId", "type"], problemSchema.Properties!.Keys.Order(StringComparer.Ordinal));

        var schemes = document.Components.SecuritySchemes!;
        Assert.Equal(SecuritySchemeType.Http, schemes["apiKey"].Type);
        Assert.Equal("bearer", schemes["apiKey"].Scheme);
        Assert.Equal(SecuritySchemeType.ApiKey, schemes["signature"].Type);
        Assert.Equal(ParameterLocation.Header, schemes["signature"].In);
        Assert.Contains("Signature-Input", schemes["signature"].Description, StringComparison.Ordinal);
        Assert.DoesNotContain("oidc", schemes.Keys);

        var creates = document.Paths["/v1/tenants"].Operations![HttpMethod.Post];
        Assert.Contains("201", creates.Responses!.Keys);
        Assert.Contains("409", creates.Responses.Keys);
        Assert.Contains("204", document.Paths["/v1/tenants/{tenant}/api-keys/{keyId}"].Operations![HttpMethod.Delete].Responses!.Keys);
        var append = document.Paths["/v1/tenants/{tenant}/events"].Operations![HttpMethod.Post];
        Assert.Equal(["201", "400", "401", "403", "404", "409", "413", "415", "421", "422", "429", "503", "507"], append.Responses!.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["events:write"], append.Security![0].Single().Value);
        Assert.Contains(append.Parameters!, p => p.Name == "Idempotency-Key" && p.In == ParameterLocation.Header);

        // The schema registry: registration is for tenant admins, answers 201 (new version) or 200 (the same schema
        // again) and 409 for a breaking version; a version is addressed by type and number.
        var register = document.Paths["/v1/tenants/{tenant}/schemas/{type}"].Operations![HttpMethod.Put];
        Assert.Equal(["200", "201", "400", "401", "403", "404", "409", "413", "415", "421", "429", "503"], register.Responses!.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["tenant:admin"], register.Security![0].Single().Value);
        var version = document.Paths["/v1/tenants/{tenant}/schemas/{type}/versions/{version}"].Operations![HttpMethod.Get];
        Assert.Contains(version.Parameters!, p => p.Name == "version" && p.In == ParameterLocation.Path && p.Schema!.Type == JsonSchemaType.Integer);
        Assert.Contains("400", version.Responses!.Keys);
        Assert.Contains("/v1/tenants/{tenant}/schemas/{type}/compatibility", document.Paths.Keys);
    }

    [Fact]
    public async Task Every_declared_search_parameter_is_one_the_search_accepts()
    {
        var acme = _server.ClientWithKey(await _server.CreateTenantWithKeyAsync("acme"));
        var document = OpenApiDocument.Parse(await _server.Client.GetStringAsync("/openapi/v1.json"), "json").Document!;
        var search = document.Paths["/v1/tenants/{tenant}/events"].Operations![HttpMethod.Get];
        var query = search.Parameters!.Where(p => p.In == ParameterLocation.Query).ToList();

        Assert.Equal(
            ["action", "actor", "actorType", "cursor", "from", "limit", "order", "outcome", "q", "targetId", "targetType", "to", "verify"],
            query.Select(p => p.Name!).Order(StringComparer.Ordinal));

        // Each declared parameter with its documented example (or first allowed value) is a valid search; an undeclared one is not.
        foreach (var parameter in query.Where(p => p.Name != "cursor"))
        {
            var value = parameter.Example?.ToString() ?? parameter.Schema!.Enum![0]!.ToString();
            var response = await acme.GetAsync($"/v1/tenants/acme/events?{parameter.Name}={Uri.EscapeDataString(value)}");
            Assert.True(response.IsSuccessStatusCode, $"{parameter.Name}={value}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }

        var undeclared = await acme.GetAsync("/v1/tenants/acme/events?actorId=u-17");
        await ProblemAssert.IsProblemAsync(undeclared, System.Net.HttpStatusCode.BadRequest, "validation");
    }

    [Fact]
    public async Task The_documented_proof_example_verifies_against_its_checkpoint_and_verifier_key()
    {
        using var json = JsonDocument.Parse(await _server.Client.GetStringAsync("/openapi/v1.json"));
        var schemas = json.RootElement.GetProperty("components").GetProperty("schemas");
        var example = schemas.GetProperty("EventResponse").GetProperty("examples")[0];
        var verifierKey = schemas.GetProperty("KeysResponse").GetProperty("examples")[0].GetProperty("keys")[0].GetProperty("verifierKey").GetString()!;

        var leaf = JsonCanonicalizer.Canonicalize(Encoding.UTF8.GetBytes(example.GetProperty("event").GetProperty("event").GetRawText()));
        var opened = Atp.Integrity.Checkpoint.Open(
            Encoding.UTF8.GetBytes(example.GetProperty("proof").GetProperty("checkpoint").GetString()!), [NoteVerifier.Parse(verifierKey)], out var checkpoint);
        var inclusion = example.GetProperty("proof").GetProperty("inclusion");

        Assert.True(opened.IsValid, opened.Failure);
        Assert.Equal(MerkleHasher.HashLeaf(leaf).ToBase64(), example.GetProperty("event").GetProperty("leafHash").GetString());
        var verified = InclusionProof.Verify(
            inclusion.GetProperty("index").GetUInt64(), checkpoint!.Size, MerkleHasher.HashLeaf(leaf), ProofJson.Hashes(inclusion), checkpoint.Root);
        Assert.True(verified.IsValid, verified.Failure);
    }

    [Fact]
    public async Task With_OIDC_configured_the_document_declares_its_discovery_url()
    {
        await using var server = await ServerFixture.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Atp:Auth:Oidc:Authority"] = "https://login.example.test/realms/atp",
            ["Atp:Auth:Oidc:Audience"] = "atp",
        });

        var document = OpenApiDocument.Parse(await server.Client.GetStringAsync("/openapi/v1.json"), "json").Document!;

        var oidc = document.Components!.SecuritySchemes!["oidc"];
        Assert.Equal(SecuritySchemeType.OpenIdConnect, oidc.Type);
        Assert.Equal(new Uri("https://login.example.test/realms/atp/.well-known/openid-configuration"), oidc.OpenIdConnectUrl);
        var search = document.Paths["/v1/tenants/{tenant}/events"].Operations![HttpMethod.Get];
        Assert.Equal(["apiKey", "oidc", "signature"], search.Security!.Select(r => r.Single().Key.Reference.Id!).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_client_generated_with_NSwag_runs_the_README_walkthrough()
    {
        var json = await _server.Client.GetStringAsync("/openapi/v1.json");
        var client = await GeneratedClient.CompileAsync(json);
        using var adminHttp = _server.Admin;
        var admin = client.Create(adminHttp);

        // 1. A tenant, and an API key for it.
        var tenant = await admin.CallAsync("CreateTenant", ("body", client.Model("CreateTenantRequest",
            """{"id":"acme","name":"Acme Corp","edition":"default","homeRegion":"local","residency":{"mode":"strict","allowedRegions":[]}}""")));
        Assert.Equal("TenantResponse", tenant!.GetType().Name);
        Assert.Equal("atp.test/test-cell-1/acme", GeneratedClient.Json(tenant).GetProperty("origin").GetString());

        var created = await admin.CallAsync("CreateApiKey", ("tenant", "acme"), ("body", client.Model("CreateApiKeyRequest",
            """{"name":"backend","scopes":["events:write","events:read"]}""")));
        var key = GeneratedClient.Json(created!).GetProperty("key").GetString()!;
        using var keyHttp = _server.ClientWithKey(key);
        var acme = client.Create(keyHttp);

        // 2. Two events in one batch; the receipts come back once they are durable.
        var batch = client.Model("EventBatch", """
            {"events":[
              {"type":"app.audit","occurredAt":"2026-11-26T10:15:30Z","actor":{"type":"user","id":"u-17","name":"Jane"},
               "action":"document.update","targets":[{"type":"document","id":"doc-8812"}],"outcome":"success",
               "context":{"ip":"203.0.113.42"},"data":{"field":"title"}},
              {"type":"app.audit","occurredAt":"2026-11-26T10:16:02Z","actor":{"type":"user","id":"u-17"},
               "action":"document.share","targets":[{"type":"document","id":"doc-8812"},{"type":"user","id":"u-99"}]}]}
            """);
        var receipts = GeneratedClient.Json((await acme.CallAsync("AppendEvents", ("tenant", "acme"), ("idempotencyKey", "import-2026-11-26-001"), ("body", batch)))!)
            .GetProperty("receipts");
        Assert.Equal(2, receipts.GetArrayLength());
        Assert.Equal(1UL, receipts[1].GetProperty("index").GetUInt64());

        // 3. The signed checkpoint, an entry's exact bytes and its inclusion proof.
        await ServerFixture.WaitForCheckpointAsync(keyHttp, "acme", 2);
        var note = (string)(await acme.CallAsync("GetCheckpoint", ("tenant", "acme")))!;
        var leaf = await GeneratedClient.ReadFileResponseAsync((await acme.CallAsync("GetEntry", ("tenant", "acme"), ("index", 1L)))!);
        var proof = GeneratedClient.Json((await acme.CallAsync("GetInclusionProof", ("tenant", "acme"), ("index", 1L)))!);
        var byId = GeneratedClient.Json((await acme.CallAsync("GetEvent", ("tenant", "acme"), ("id", receipts[1].GetProperty("id").GetGuid()), ("verify", true)))!);

        // 4. Verify, trusting only the cell's published verifier key.
        var keys = GeneratedClient.Json((await client.Create(_server.ClientWithKey(null)).CallAsync("GetVerifierKeys"))!);
        var verifier = NoteVerifier.Parse(keys.GetProperty("keys")[0].GetProperty("verifierKey").GetString()!);
        var opened = Atp.Integrity.Checkpoint.Open(Encoding.UTF8.GetBytes(note), [verifier], out var checkpoint);
        Assert.True(opened.IsValid, opened.Failure);
        Assert.Equal(2UL, checkpoint!.Size);
        var leafHash = MerkleHasher.HashLeaf(leaf);
        Assert.Equal(receipts[1].GetProperty("leafHash").GetString(), leafHash.ToBase64());
        Assert.Equal(leafHash.ToBase64(), proof.GetProperty("leafHash").GetString());
        var verified = InclusionProof.Verify(1, proof.GetProperty("treeSize").GetUInt64(), leafHash, ProofJson.Hashes(proof), checkpoint.Root);
        Assert.True(verified.IsValid, verified.Failure);
        Assert.Equal("document.share", byId.GetProperty("event").GetProperty("event").GetProperty("action").GetString());
        Assert.Equal(1UL, byId.GetProperty("proof").GetProperty("inclusion").GetProperty("index").GetUInt64());

        // A refusal reaches the generated client as its typed problem.
        var missing = await Assert.ThrowsAnyAsync<Exception>(() => acme.CallAsync("GetEvent", ("tenant", "acme"), ("id", Guid.NewGuid()), ("verify", false)));
        Assert.Equal(404, (int)missing.GetType().GetProperty("StatusCode")!.GetValue(missing)!);
        var problem = GeneratedClient.Json(missing.GetType().GetProperty("Result")!.GetValue(missing)!);
        Assert.Equal("https://atp.dev/problems/not-found", problem.GetProperty("type").GetString());
    }

    private static IOpenApiSchema? SchemaOf(IDictionary<string, OpenApiMediaType>? content, string mediaType) =>
        content is not null && content.TryGetValue(mediaType, out var media) ? media.Schema : null;

    private static void AssertHasExamples(OpenApiDocument document, IOpenApiSchema schema, string where)
    {
        var alternatives = schema.OneOf is { Count: > 0 } oneOf ? oneOf : [schema];
        foreach (var alternative in alternatives)
        {
            var target = alternative is OpenApiSchemaReference reference ? document.Components!.Schemas![reference.Reference.Id!] : alternative;
            Assert.True(target.Examples is { Count: > 0 }, $"{where}: schema without an example");
        }
    }

    [GeneratedRegex(@"\{\**([A-Za-z0-9_]+)[^}]*\}")]
    private static partial Regex RouteParameter();

    /// <summary>The NSwag C# client of the served document, compiled in memory and called by reflection.</summary>
    private sealed class GeneratedClient(Assembly assembly)
    {
        private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

        public static async Task<GeneratedClient> CompileAsync(string json)
        {
            var document = await NSwag.OpenApiDocument.FromJsonAsync(json);
            var settings = new CSharpClientGeneratorSettings
            {
                ClassName = "AtpClient",
                UseBaseUrl = false,
                GenerateClientInterfaces = false,
                OperationNameGenerator = new SingleClientFromOperationIdOperationNameGenerator(),
            };
            settings.CSharpGeneratorSettings.Namespace = "Atp.Generated";
            settings.CSharpGeneratorSettings.JsonLibrary = NJsonSchema.CodeGeneration.CSharp.CSharpJsonLibrary.SystemTextJson;
            var source = new CSharpClientGenerator(document, settings).GenerateFile();

            var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
                .Select(path => MetadataReference.CreateFromFile(path));
            var compilation = CSharpCompilation.Create(
                "Atp.Generated." + Guid.NewGuid().ToString("N"),
                [CSharpSyntaxTree.ParseText(source)],
                references,
                new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
            using var image = new MemoryStream();
            var emitted = compilation.Emit(image);
            var errors = emitted.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
            // Kept for whoever reads a failure of this test.
            var saved = Path.Combine(Path.GetTempPath(), "atp-generated-client.cs");
            await File.WriteAllTextAsync(saved, source);
            Assert.True(errors.Count == 0, $"the generated client ({saved}) does not compile:\n" + string.Join("\n", errors.Take(20)));

            image.Position = 0;
            return new GeneratedClient(new AssemblyLoadContext("atp-generated", isCollectible: true).LoadFromStream(image));
        }

        public Instance Create(HttpClient http) => new(Activator.CreateInstance(Type("AtpClient"), http)!);

        /// <summary>A generated model, filled from JSON through its own serialization attributes.</summary>
        public object Model(string name, string json) => JsonSerializer.Deserialize(json, Type(name), Web)!;

        public static JsonElement Json(object value) => JsonSerializer.SerializeToElement(value, value.GetType(), Web);

        public static async Task<byte[]> ReadFileResponseAsync(object fileResponse)
        {
            await using var stream = (Stream)fileResponse.GetType().GetProperty("Stream")!.GetValue(fileResponse)!;
            using var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            ((IDisposable)fileResponse).Dispose();
            return copy.ToArray();
        }

        private Type Type(string name) => assembly.GetType("Atp.Generated." + name) ?? throw new InvalidOperationException($"no generated type {name}");

        public sealed class Instance(object client)
        {
            /// <summary>Calls <c>{operation}Async</c>, matching arguments to parameters by name (case and punctuation aside).</summary>
            public async Task<object?> CallAsync(string operation, params (string Name, object? Value)[] arguments)
            {
                var method = client.GetType().GetMethods()
                    .Single(m => m.Name == operation + "Async" && m.GetParameters().LastOrDefault()?.ParameterType == typeof(CancellationToken));
                var values = method.GetParameters().Select(p =>
                {
                    if (p.ParameterType == typeof(CancellationToken))
                    {
                        return CancellationToken.None;
                    }

                    var match = arguments.Where(a => Normalize(a.Name) == Normalize(p.Name!)).ToList();
                    return match.Count == 1 ? Convert(match[0].Value, p.ParameterType) : null;
                }).ToArray();
                var task = (Task)method.Invoke(client, values)!;
                await task;
                return task.GetType().GetProperty("Result")?.GetValue(task);
            }

            private static string Normalize(string name) => new([.. name.Where(char.IsLetterOrDigit).Select(char.ToLowerInvariant)]);

            private static object? Convert(object? value, Type type)
            {
                var target = Nullable.GetUnderlyingType(type) ?? type;
                return value is null || target.IsInstanceOfType(value) || value is IEnumerable and not string
                    ? value
                    : System.Convert.ChangeType(value, target, CultureInfo.InvariantCulture);
            }
        }
    }
}
