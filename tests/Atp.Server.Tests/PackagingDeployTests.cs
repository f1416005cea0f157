using System.ComponentModel;
using System.Net;
using System.Reflection;
using System.Text.RegularExpressions;
using Atp.Server.Export;
using Atp.Server.Integrity;
using Atp.Server.Query;
using Atp.Server.Schemas;
using Atp.Server.Telemetry;
using Atp.Storage.Postgres;
using Atp.Storage.Sqlite;
using Microsoft.Extensions.Configuration;
using YamlDotNet.RepresentationModel;
using YamlDotNet.Serialization;

namespace Atp.Server.Tests;

/// <summary>
/// The Dockerfile, deploy/compose.yaml and the Helm chart deploy/helm/atp, checked without Docker or helm (neither
/// runs where these tests run): every YAML file parses, the settings they give ATP are real configuration keys (bound
/// through the server's options as ASP.NET Core maps environment variables), the probes are real endpoints, the
/// chart's hardening is in place, and the image builds projects that exist and exposes the port the server uses.
/// </summary>
public sealed partial class PackagingDeployTests
{
    private static readonly string Root = RepositoryRoot();
    private static readonly string Deploy = Path.Combine(Root, "deploy");
    private static readonly string Chart = Path.Combine(Deploy, "helm", "atp");

    // Configuration sections bound to options classes (the server binds each with BindConfiguration).
    private static readonly (string Section, Type Options)[] Sections =
    [
        (AtpOptions.Section, typeof(AtpOptions)),
        (TelemetryOptions.Section, typeof(TelemetryOptions)),
        (ExportOptions.Section, typeof(ExportOptions)),
        (IntegritySweepOptions.Section, typeof(IntegritySweepOptions)),
        (ReadModelSweepOptions.Section, typeof(ReadModelSweepOptions)),
        (SchemaRegistryOptions.Section, typeof(SchemaRegistryOptions)),
        ("Atp:Postgres", typeof(PostgresStoreOptions)),
        ("Atp:Sqlite", typeof(SqliteStoreOptions)),
    ];

    // Keys the server reads directly from configuration rather than through an options class (StorageEngine,
    // TrustedProxies), and the host's own listening ports.
    private static readonly Regex DirectKeys = DirectKey();

    [Fact]
    public void Every_yaml_file_under_deploy_parses()
    {
        // The chart's templates are Go templates, YAML only once helm renders them.
        var files = Directory.EnumerateFiles(Deploy, "*.*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".yaml", StringComparison.Ordinal) || f.EndsWith(".yml", StringComparison.Ordinal))
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}templates{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .ToList();
        Assert.Contains(Path.Combine(Deploy, "compose.yaml"), files);
        Assert.Contains(Path.Combine(Chart, "Chart.yaml"), files);
        Assert.Contains(Path.Combine(Chart, "values.yaml"), files);
        foreach (var file in files)
        {
            var stream = new YamlStream();
            using (var reader = new StreamReader(file))
            {
                stream.Load(reader);
            }

            Assert.True(stream.Documents.Count >= 1 && stream.Documents[0].RootNode is YamlMappingNode, $"{file} is not a YAML mapping");
        }

        var chart = Mapping(Load(Path.Combine(Chart, "Chart.yaml")));
        Assert.Equal("v2", chart["apiVersion"]);
        Assert.Equal("atp", chart["name"]);
        Assert.Equal("application", chart["type"]);
    }

    [Fact]
    public void Every_value_the_chart_templates_use_is_defined_in_values_yaml()
    {
        var values = Values();
        var used = Directory.EnumerateFiles(Path.Combine(Chart, "templates"))
            .SelectMany(file => ValuesReference().Matches(File.ReadAllText(file)).Select(m => (File: Path.GetFileName(file), Path: m.Groups[1].Value)))
            .ToList();
        Assert.True(used.Count > 30, $"only {used.Count} references");
        foreach (var (file, path) in used)
        {
            object? node = values;
            foreach (var part in path.Split('.'))
            {
                Assert.True(node is Dictionary<object, object> map && map.TryGetValue(part, out node), $"{file} uses .Values.{path}, which values.yaml does not define");
            }
        }
    }

    [Fact]
    public void The_chart_runs_ATP_as_non_root_on_a_read_only_root_without_capabilities()
    {
        var values = Values();
        var pod = Map(values, "podSecurityContext");
        Assert.Equal("true", pod["runAsNonRoot"]);
        Assert.Equal("RuntimeDefault", Map(pod, "seccompProfile")["type"]);
        var container = Map(values, "securityContext");
        Assert.Equal("true", container["runAsNonRoot"]);
        Assert.Equal("true", container["readOnlyRootFilesystem"]);
        Assert.Equal("false", container["allowPrivilegeEscalation"]);
        Assert.Equal("false", container["privileged"]);
        Assert.Equal(new[] { "ALL" }, ((List<object>)Map(container, "capabilities")["drop"]).Cast<string>());
        Assert.Equal("RuntimeDefault", Map(container, "seccompProfile")["type"]);

        // The same user as the image's (chiseled's "app"), so the data volume it writes is its own.
        Assert.Equal(DockerfileInstruction("USER").Single(), container["runAsUser"]);
        Assert.Equal(container["runAsUser"], pod["runAsUser"]);

        // The templates apply them to the pod and to every container (ATP's and the key-copying init container).
        var workload = File.ReadAllText(Path.Combine(Chart, "templates", "statefulset.yaml"));
        Assert.Contains("toYaml .Values.podSecurityContext", workload, StringComparison.Ordinal);
        Assert.Equal(2, Regex.Count(workload, @"toYaml \.Values\.securityContext \| nindent"));
        Assert.Contains("automountServiceAccountToken: false", workload, StringComparison.Ordinal);
        Assert.Matches(@"- name: tmp\s+mountPath: /tmp", workload);
        Assert.Contains("existingSecret", workload, StringComparison.Ordinal);
        foreach (var probe in new[] { "startupProbe", "livenessProbe", "readinessProbe" })
        {
            Assert.Contains(probe + ":", workload, StringComparison.Ordinal);
        }

        // Connection strings come from a Secret, never from the ConfigMap.
        var config = File.ReadAllText(Path.Combine(Chart, "templates", "configmap.yaml"));
        Assert.DoesNotContain("ConnectionStrings", config, StringComparison.Ordinal);
        Assert.DoesNotContain("AdminKey", config, StringComparison.Ordinal);
    }

    [Fact]
    public void Compose_runs_ATP_read_only_with_a_small_tmp_and_its_passwords_in_secret_files()
    {
        var services = (YamlMappingNode)Mapping(Load(Path.Combine(Deploy, "compose.yaml"))).Children[new YamlScalarNode("services")];
        Assert.Equal(new[] { "atp", "postgres" }, services.Children.Keys.Select(k => ((YamlScalarNode)k).Value!).Order(StringComparer.Ordinal));
        var atp = (YamlMappingNode)services.Children[new YamlScalarNode("atp")];
        Assert.Equal("true", Scalar(atp, "read_only"));
        Assert.Contains(Sequence(atp, "tmpfs"), entry => entry.StartsWith("/tmp:", StringComparison.Ordinal));
        Assert.Equal(new[] { "ALL" }, Sequence(atp, "cap_drop"));
        Assert.Contains("no-new-privileges:true", Sequence(atp, "security_opt"));
        Assert.Equal("service_healthy", Scalar((YamlMappingNode)((YamlMappingNode)atp.Children[new YamlScalarNode("depends_on")]).Children[new YamlScalarNode("postgres")], "condition"));

        // No password in the file: the connection strings read theirs from the mounted secrets.
        var environment = (YamlMappingNode)atp.Children[new YamlScalarNode("environment")];
        foreach (var name in new[] { "ConnectionStrings__Atp", "ConnectionStrings__AtpAdmin" })
        {
            var connection = Scalar(environment, name);
            Assert.DoesNotContain("Password", connection, StringComparison.OrdinalIgnoreCase);
            var passfile = Regex.Match(connection, "Passfile=/run/secrets/([a-z_]+)").Groups[1].Value;
            Assert.Contains(passfile, Sequence(atp, "secrets"));
        }

        var postgres = (YamlMappingNode)services.Children[new YamlScalarNode("postgres")];
        Assert.Contains("pg_isready", Sequence((YamlMappingNode)postgres.Children[new YamlScalarNode("healthcheck")], "test"));
        Assert.Equal("/run/secrets/postgres_password", Scalar((YamlMappingNode)postgres.Children[new YamlScalarNode("environment")], "POSTGRES_PASSWORD_FILE"));
        Assert.DoesNotContain(File.ReadAllLines(Path.Combine(Deploy, "compose.yaml")), line => !line.TrimStart().StartsWith('#') && line.Contains("nats", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task The_charts_probe_paths_are_endpoints_of_a_running_server()
    {
        var probes = Map(Values(), "probes");
        var paths = probes.Values.Select(p => (string)((Dictionary<object, object>)p)["path"]).Distinct().ToList();
        Assert.Equal(new[] { "/livez", "/readyz" }, paths.Order(StringComparer.Ordinal));

        await using var server = await ServerFixture.StartAsync();
        using var anonymous = server.ClientWithKey(null);
        foreach (var path in paths)
        {
            var deadline = DateTime.UtcNow.AddSeconds(15);
            HttpStatusCode status;
            while ((status = (await anonymous.GetAsync(path)).StatusCode) != HttpStatusCode.OK && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }

            Assert.Equal(HttpStatusCode.OK, status);
        }
    }

    [Theory]
    [InlineData("eu-central-prod-1", "eu-central", "prod", true)]
    [InlineData("local-dev-12", "local", "dev", true)]
    [InlineData("eu-central-prod", "eu-central", "prod", false)]
    [InlineData("eu-central-prod-0", "eu-central", "prod", false)]
    [InlineData("prod-eu-central-1", "eu-central", "prod", false)]
    [InlineData("eu-central-staging-1", "eu-central", "prod", false)]
    [InlineData("atp", "local", "dev", false)]
    public void Release_names_follow_region_environment_n(string release, string region, string environment, bool accepted)
    {
        // The pattern the chart's template helper checks with regexMatch (RE2; this pattern means the same in .NET).
        var helpers = File.ReadAllText(Path.Combine(Chart, "templates", "_helpers.tpl"));
        var pattern = ReleasePattern().Match(helpers);
        Assert.True(pattern.Success, "no release-name check in _helpers.tpl");
        Assert.Contains("fail", helpers, StringComparison.Ordinal);
        var regex = pattern.Groups[1].Value.Replace("%s-%s", $"{region}-{environment}", StringComparison.Ordinal);
        Assert.Equal(accepted, Regex.IsMatch(release, regex));
    }

    [Fact]
    public void The_charts_edition_defaults_are_the_servers_defaults()
    {
        var editions = Map(Values(), "editions");
        var limits = new RateLimitOptions();
        Assert.Equal(new[] { "default", "enterprise" }, editions.Keys.Cast<string>().Order(StringComparer.Ordinal));
        foreach (var (edition, expected) in new[] { ("default", limits.Default), ("enterprise", limits.Enterprise) })
        {
            var values = Map(editions, edition);
            var properties = typeof(EditionLimits).GetProperties();
            Assert.Equal(properties.Length, values.Count);
            foreach (var property in properties)
            {
                var key = char.ToLowerInvariant(property.Name[0]) + property.Name[1..];
                Assert.True(values.ContainsKey(key), $"editions.{edition}.{key} missing");
                Assert.Equal(Convert.ToString(property.GetValue(expected), System.Globalization.CultureInfo.InvariantCulture), values[key]);
            }
        }
    }

    [Fact]
    public void Every_setting_compose_and_the_chart_give_ATP_binds_to_a_real_configuration_key()
    {
        // Compose: the atp service's environment, with its real values.
        var compose = Mapping(Load(Path.Combine(Deploy, "compose.yaml")));
        var atp = (YamlMappingNode)((YamlMappingNode)compose.Children[new YamlScalarNode("services")]).Children[new YamlScalarNode("atp")];
        var environment = ((YamlMappingNode)atp.Children[new YamlScalarNode("environment")]).Children
            .ToDictionary(e => ((YamlScalarNode)e.Key).Value!, e => ((YamlScalarNode)e.Value).Value!);
        Assert.Equal("postgres", environment["Atp__Storage__Provider"]);

        // The chart: the ConfigMap's literal keys, its per-edition keys and the Secret-fed variables.
        var chartKeys = ConfigMapKey().Matches(File.ReadAllText(Path.Combine(Chart, "templates", "configmap.yaml"))).Select(m => m.Groups[1].Value)
            .Concat(SecretEnvName().Matches(File.ReadAllText(Path.Combine(Chart, "templates", "statefulset.yaml"))).Select(m => m.Groups[1].Value))
            .Concat(Map(Values(), "editions").SelectMany(e => Map(Map(Values(), "editions"), (string)e.Key).Keys.Select(k => $"Atp__RateLimits__{Title((string)e.Key)}__{Title((string)k)}")))
            .Distinct()
            .ToList();
        Assert.Contains("Atp__DataDirectory", chartKeys);
        Assert.Contains("ConnectionStrings__Atp", chartKeys);
        Assert.Contains("Atp__RateLimits__Enterprise__ExportJobMaxBytes", chartKeys);

        foreach (var (name, value) in environment.Select(e => (e.Key, (string?)e.Value)).Concat(chartKeys.Select(k => (k, (string?)null))))
        {
            AssertBinds(name, value);
        }
    }

    [Fact]
    public void The_storage_provider_key_the_deployments_set_is_the_one_the_server_reads()
    {
        // Atp:Storage:Provider is read directly (no options class): a value it does not know stops the build, naming it.
        var error = Assert.ThrowsAny<Exception>(() => AtpServer.Build(["--Atp:Storage:Provider=nonsense", $"--Atp:DataDirectory={Directory.CreateTempSubdirectory("atp-pack-").FullName}"]));
        Assert.Contains("Atp:Storage:Provider", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_Dockerfile_publishes_projects_that_exist_and_exposes_the_port_the_server_listens_on()
    {
        var dockerfile = File.ReadAllText(Path.Combine(Root, "Dockerfile"));
        var projects = CsprojPath().Matches(dockerfile).Select(m => m.Value).Distinct().ToList();
        Assert.Contains("src/Atp.Server/Atp.Server.csproj", projects);
        Assert.Contains("src/Atp.Cli/Atp.Cli.csproj", projects);
        Assert.All(projects, project => Assert.True(File.Exists(Path.Combine(Root, project)), $"{project} does not exist"));

        // Every project the server and the CLI reference is copied for the restore.
        foreach (var project in new[] { "src/Atp.Server/Atp.Server.csproj", "src/Atp.Cli/Atp.Cli.csproj" })
        {
            foreach (var reference in ProjectReference().Matches(File.ReadAllText(Path.Combine(Root, project))).Select(m => m.Groups[1].Value))
            {
                var referenced = Path.GetRelativePath(Root, Path.GetFullPath(Path.Combine(Root, Path.GetDirectoryName(project)!, reference))).Replace('\\', '/');
                Assert.Contains(referenced, projects);
            }
        }

        Assert.Contains("dotnet publish src/Atp.Server/Atp.Server.csproj", dockerfile, StringComparison.Ordinal);
        Assert.Contains("dotnet publish src/Atp.Cli/Atp.Cli.csproj", dockerfile, StringComparison.Ordinal);
        Assert.Contains("-p:PublishReadyToRun=true", dockerfile, StringComparison.Ordinal);
        Assert.Matches(@"FROM mcr\.microsoft\.com/dotnet/aspnet:\$\{DOTNET_VERSION\}-noble-chiseled AS runtime", dockerfile);
        Assert.DoesNotContain("HEALTHCHECK CMD", dockerfile, StringComparison.Ordinal);

        // The entry point is the server's apphost (its assembly name), the CLI's is "atp".
        Assert.Equal("[\"/app/server/Atp.Server\"]", DockerfileInstruction("ENTRYPOINT").Single());
        Assert.Equal("Atp.Server", typeof(AtpServer).Assembly.GetName().Name);
        Assert.Contains("<AssemblyName>atp</AssemblyName>", File.ReadAllText(Path.Combine(Root, "src/Atp.Cli/Atp.Cli.csproj")), StringComparison.Ordinal);

        // One port everywhere: the image's EXPOSE and ASPNETCORE_HTTP_PORTS, compose's mapping, the chart's service.
        var port = DockerfileInstruction("EXPOSE").Single();
        Assert.Matches($@"ASPNETCORE_HTTP_PORTS={port}\b", dockerfile);
        Assert.Contains($"127.0.0.1:{port}:{port}", File.ReadAllText(Path.Combine(Deploy, "compose.yaml")), StringComparison.Ordinal);
        Assert.Equal(port, Map(Values(), "service")["port"]);

        // The data directory is the image's one volume.
        Assert.Matches(@"Atp__DataDirectory=/var/lib/atp\b", dockerfile);
        Assert.Equal("[\"/var/lib/atp\"]", DockerfileInstruction("VOLUME").Single());

        // The build context leaves out local state and build output.
        var ignore = File.ReadAllLines(Path.Combine(Root, ".dockerignore"));
        Assert.Contains("**/bin/", ignore);
        Assert.Contains("**/obj/", ignore);
        Assert.Contains("**/atp-data/", ignore);
    }

    // Maps an environment variable the way ASP.NET Core does (the real environment-variables provider, "__" → ":"),
    // then finds the options property it binds to and checks a value survives the binding.
    private static void AssertBinds(string name, string? value)
    {
        var key = name.Replace("__", ":", StringComparison.Ordinal);
        if (DirectKeys.IsMatch(key))
        {
            return;
        }

        var (section, type) = Sections.Where(s => key.StartsWith(s.Section + ":", StringComparison.OrdinalIgnoreCase)).MaxBy(s => s.Section.Length);
        Assert.True(type is not null, $"{name}: no options section binds {key}");
        var path = key[(section.Length + 1)..].Split(':');
        var property = Resolve(type, path);
        Assert.True(property is not null, $"{name}: {type.Name} has no property {string.Join('.', path)}");

        value ??= Sample(property.PropertyType);
        var prefix = $"ATPTEST_{Guid.NewGuid():N}_";
        Environment.SetEnvironmentVariable(prefix + name, value);
        try
        {
            var configuration = new ConfigurationBuilder().AddEnvironmentVariables(prefix).Build();
            Assert.Equal(value, configuration[key]);
            var bound = configuration.GetSection(section).Get(type);
            Assert.NotNull(bound);
            var actual = path.Aggregate<string, object?>(bound, (current, part) => current?.GetType().GetProperty(part, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase)?.GetValue(current));
            var target = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            Assert.Equal(TypeDescriptor.GetConverter(target).ConvertFromInvariantString(value), actual);
        }
        finally
        {
            Environment.SetEnvironmentVariable(prefix + name, null);
        }
    }

    private static PropertyInfo? Resolve(Type type, string[] path)
    {
        PropertyInfo? property = null;
        foreach (var part in path)
        {
            property = type.GetProperty(part, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
            if (property is null)
            {
                return null;
            }

            type = property.PropertyType;
        }

        return property is { CanWrite: true } ? property : null;
    }

    private static string Sample(Type type) => (Nullable.GetUnderlyingType(type) ?? type) switch
    {
        var t when t == typeof(bool) => "true",
        var t when t == typeof(int) || t == typeof(long) => "7",
        var t when t == typeof(TimeSpan) => "00:00:07",
        var t when t == typeof(Uri) => "http://collector:4317/",
        _ => "sample",
    };

    private static string Title(string word) => char.ToUpperInvariant(word[0]) + word[1..];

    private static Dictionary<object, object> Values() =>
        new DeserializerBuilder().Build().Deserialize<Dictionary<object, object>>(File.ReadAllText(Path.Combine(Chart, "values.yaml")));

    private static Dictionary<object, object> Map(Dictionary<object, object> map, string key) => (Dictionary<object, object>)map[key];

    private static YamlNode Load(string path)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(path);
        stream.Load(reader);
        return stream.Documents[0].RootNode;
    }

    private static YamlMappingNode Mapping(YamlNode node) => Assert.IsType<YamlMappingNode>(node);

    private static string Scalar(YamlMappingNode node, string key) => ((YamlScalarNode)node.Children[new YamlScalarNode(key)]).Value!;

    private static List<string> Sequence(YamlMappingNode node, string key) =>
        [.. ((YamlSequenceNode)node.Children[new YamlScalarNode(key)]).Children.Select(item => ((YamlScalarNode)item).Value!)];

    // The arguments of every instruction of that name in the Dockerfile (continuation lines joined).
    private static List<string> DockerfileInstruction(string instruction) =>
        [.. File.ReadAllText(Path.Combine(Root, "Dockerfile")).Replace("\\\n", " ", StringComparison.Ordinal).Split('\n')
            .Where(line => line.StartsWith(instruction + " ", StringComparison.Ordinal))
            .Select(line => line[(instruction.Length + 1)..].Trim())];

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Atp.slnx")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("not inside the repository");
    }

    [GeneratedRegex(@"^(Atp:Storage:Provider|ConnectionStrings:(Atp|AtpAdmin)|Atp:Gateway:(KnownProxies|KnownNetworks):\d+|ASPNETCORE_HTTP_PORTS)$")]
    private static partial Regex DirectKey();

    [GeneratedRegex(@"\$?\.Values\.([A-Za-z0-9_.]+)")]
    private static partial Regex ValuesReference();

    [GeneratedRegex(@"regexMatch \(printf ""(\^%s-%s-[^""]+)""")]
    private static partial Regex ReleasePattern();

    [GeneratedRegex(@"^  ((?:Atp|ConnectionStrings|ASPNETCORE)_[A-Za-z0-9_]+):", RegexOptions.Multiline)]
    private static partial Regex ConfigMapKey();

    [GeneratedRegex(@"- name: ((?:Atp|ConnectionStrings)__[A-Za-z0-9_]+)")]
    private static partial Regex SecretEnvName();

    [GeneratedRegex(@"src/[A-Za-z.]+/[A-Za-z.]+\.csproj")]
    private static partial Regex CsprojPath();

    [GeneratedRegex(@"<ProjectReference Include=""([^""]+)""")]
    private static partial Regex ProjectReference();
}
