using System.CommandLine;
using System.Net;

namespace Atp.LoadTest;

/// <summary>Settings of one load-test run, validated.</summary>
internal sealed record LoadTestSettings(
    Uri? Url,
    string? AdminKey,
    int Tenants,
    int Clients,
    int Batch,
    int EventBytes,
    int DurationSeconds,
    int WarmupSeconds,
    bool BaselineOnly,
    bool NoBaseline,
    string? ServerDll,
    int ProgressSeconds,
    string Engine = "sqlite",
    string? PgConnection = null,
    string? PgAdminConnection = null,
    bool Marten = false,
    bool NoProjector = false,
    int Rounds = 1,
    bool Spread = false);

/// <summary>Command line of the load generator.</summary>
internal static class LoadTestCommand
{
    public const int ExitOk = 0;
    public const int ExitRequestErrors = 1;
    public const int ExitBadInput = 2;
    public const int ExitCancelled = 130;

    public static async Task<int> InvokeAsync(string[] args)
    {
        var url = new Option<string?>("--url") { Description = "An already running ATP server (loopback only, e.g. http://127.0.0.1:8080). Default: start one as a child process with a temporary data directory." };
        var adminKey = new Option<string?>("--admin-key") { Description = "Platform-admin API key of the --url server (default: environment variable ATP_ADMIN_KEY)." };
        var tenants = new Option<int>("--tenants") { Description = "Tenants to create; client i writes to tenant i mod tenants (with --spread: each request to the next tenant).", DefaultValueFactory = _ => 4 };
        var tenantMemory = new Option<bool>("--tenant-memory") { Description = "Instead of the usual run: host the server in this process, create --tenants tenants with a key each, send each one event, wait --duration seconds idle and report the managed heap per tenant before and after (a full GC each time)." };
        var spread = new Option<bool>("--spread") { Description = "Send each request to the next tenant round-robin (all clients share one counter), so every tenant is touched in turn: the many-tenants run (docs/performance.md, \"Many tenants\")." };
        var clients = new Option<int>("--clients") { Description = "Concurrent clients (each has one request in flight), and concurrent baseline writers.", DefaultValueFactory = _ => 8 };
        var batch = new Option<int>("--batch") { Description = "Events per request (1 sends a single event object, more sends {\"events\":[...]}); rows per baseline transaction.", DefaultValueFactory = _ => 100 };
        var eventBytes = new Option<int>("--event-bytes") { Description = "Approximate size in bytes of each event's data object (0: no data).", DefaultValueFactory = _ => 300 };
        var duration = new Option<int>("--duration") { Description = "Measured seconds, for ATP and again for the baseline.", DefaultValueFactory = _ => 20 };
        var warmup = new Option<int>("--warmup") { Description = "Seconds of load before measuring starts.", DefaultValueFactory = _ => 3 };
        var baselineOnly = new Option<bool>("--baseline-only") { Description = "Run only the SQLite baseline (no server)." };
        var noBaseline = new Option<bool>("--no-baseline") { Description = "Skip the SQLite baseline." };
        var serverDll = new Option<string?>("--server-dll") { Description = "Atp.Server.dll to start (default: the build output of src/Atp.Server in the same configuration)." };
        var progress = new Option<int>("--progress") { Description = "Seconds between progress lines (0: none).", DefaultValueFactory = _ => 5 };
        var engine = new Option<string>("--engine") { Description = "Storage engine of the child server and of the baseline: sqlite or postgres.", DefaultValueFactory = _ => "sqlite" };
        var pgConnection = new Option<string?>("--pg-connection") { Description = "With --engine postgres: the application role's connection string (default: environment variable ATP_PG_CONNECTION)." };
        var pgAdminConnection = new Option<string?>("--pg-admin-connection") { Description = "With --engine postgres: the owner role's connection string; migrates the schema and runs the baselines (default: ATP_PG_ADMIN_CONNECTION)." };
        var marten = new Option<bool>("--marten") { Description = "With --engine postgres: also append the same events through Marten's event store (one stream per tenant)." };

        var noProjector = new Option<bool>("--no-projector") { Description = "Start the child server with Atp:Query:Projector=false: an ingest node of a cell whose projectors run on other nodes (its outbox keeps what was not projected)." };
        var rounds = new Option<int>("--rounds") { Description = "Run ATP, the baseline (and Marten) this many times in turn, each with its own warm-up and --duration seconds, and report each round and their sum: on a machine whose speed drifts, the comparison then spans the same stretches of time.", DefaultValueFactory = _ => 1 };
        var authOverhead = new Option<bool>("--auth-overhead") { Description = "Instead of the usual run: host the server in this process and compare, in one run, ingest with no authentication (a bench-only trusted header), bearer API keys and RFC 9421 signed requests (--duration seconds per phase, four rounds in alternating order)." };

        var fairness = new Option<bool>("--fairness") { Description = "Instead of the usual run: host the server in this process with the product's edition limits and measure a quiet tenant's write and read p95 alone and while another tenant floods (1,000-event batches; verify=true&limit=1000 searches) from --clients clients, with only request limits and then with the work limits (--duration seconds per phase)." };

        var telemetryOverhead = new Option<bool>("--telemetry-overhead") { Description = "Instead of the usual run: compare ingest against a child server with OpenTelemetry off (Atp:Telemetry:Enabled=false) and on with /metrics scraped every 5 s, a fresh server per phase, four rounds in alternating order (--warmup and --duration seconds per phase)." };

        var root = new RootCommand("ATP end-to-end load generator: creates tenants and write keys, drives POST /v1/tenants/{t}/events from concurrent clients, then runs a plain SQLite insert baseline with the same durability settings and prints a Markdown summary.");
        var schemaOverhead = new Option<bool>("--schema-overhead") { Description = "Instead of the usual run: compare ingest with no schema registered against the generator's data schema registered for every event type (every event validated), a fresh server per phase, four rounds in alternating order (--warmup and --duration seconds per phase)." };
        var sealingOverhead = new Option<bool>("--sealing-overhead") { Description = "Instead of the usual run: compare ingest with the envelope's personal fields stored in clear against sealed at ingest (Atp:Classification:SealEnvelopeFields=true), a fresh server per phase, four rounds in alternating order (--warmup and --duration seconds per phase)." };
        var startup = new Option<bool>("--startup") { Description = "Instead of the usual run: start a child server on a fresh data directory and drive ingest from the moment the process starts, counting events per 250 ms; report the time to ready, to the first 201 and until ≥ 90 % of the steady rate (median of seconds 10–20) holds for a whole second; then the same after a clean restart on the directory the first run filled. --duration seconds per run (at least 20), --repeat times, median reported." };
        var repeat = new Option<int>("--repeat") { Description = "With --startup: repetitions (each a fresh run and a restart per variant, variants in rotating order).", DefaultValueFactory = _ => 3 };
        var variant = new Option<string[]>("--variant") { Description = "With --startup, repeatable: a server to compare, LABEL=PATH[;NAME=VALUE...] (its Atp.Server.dll, empty for the build output, and environment variables for it, e.g. DOTNET_TieredPGO=0). Default: the build output (or --server-dll) alone." };
        var erasure = new Option<int>("--erasure") { Description = "Instead of the usual run: host the server in this process (envelope sealing on), ingest N events of each of three data subjects and as many of other actors, and time POST …/erasures for each subject (the last with a legal hold naming no party in place). N: events per subject, e.g. 10000.", DefaultValueFactory = _ => 0 };
        var retention = new Option<int>("--retention") { Description = "Instead of the usual run: host the server in this process (--engine sqlite or postgres), build a tenant log of N entries received 400 days ago straight through the store's append path, set a 30-day retention (two-person approval) and time POST …/retention/run: the pass that purges them all, a second pass at once and one after a restart (nothing expired). N: entries, e.g. 10000000.", DefaultValueFactory = _ => 0 };
        foreach (var option in new Option[] { url, adminKey, tenants, clients, batch, eventBytes, duration, warmup, baselineOnly, noBaseline, serverDll, progress, engine, pgConnection, pgAdminConnection, marten, noProjector, rounds, authOverhead, fairness, telemetryOverhead, schemaOverhead, sealingOverhead, spread, tenantMemory, startup, repeat, variant, erasure, retention })
        {
            root.Options.Add(option);
        }

        root.SetAction(async (parse, cancellationToken) =>
        {
            var (settings, error) = Validate(
                parse.GetValue(url), parse.GetValue(adminKey),
                parse.GetValue(tenants), parse.GetValue(clients), parse.GetValue(batch), parse.GetValue(eventBytes),
                parse.GetValue(duration), parse.GetValue(warmup), parse.GetValue(baselineOnly), parse.GetValue(noBaseline),
                parse.GetValue(serverDll), parse.GetValue(progress));
            if (settings is { } valid)
            {
                (settings, error) = ValidateEngine(
                    valid, parse.GetValue(engine)!, parse.GetValue(pgConnection) ?? Environment.GetEnvironmentVariable("ATP_PG_CONNECTION"),
                    parse.GetValue(pgAdminConnection) ?? Environment.GetEnvironmentVariable("ATP_PG_ADMIN_CONNECTION"), parse.GetValue(marten));
            }

            if (settings is { } withEngine && parse.GetValue(noProjector))
            {
                (settings, error) = withEngine.Url is null
                    ? ((LoadTestSettings?)(withEngine with { NoProjector = true }), (string?)null)
                    : (null, "--no-projector applies to the child server; with --url the server's own configuration decides.");
            }

            if (settings is { } withRounds && parse.GetValue(rounds) is var roundCount and not 1)
            {
                (settings, error) = roundCount is < 1 or > 20
                    ? ((LoadTestSettings?)null, (string?)"--rounds: 1 to 20.")
                    : parse.GetValue(authOverhead) || withRounds.BaselineOnly || withRounds.NoBaseline
                        ? (null, "--rounds compares ATP with its baseline: not with --auth-overhead, --baseline-only or --no-baseline.")
                        : (withRounds with { Rounds = roundCount }, null);
            }

            if (settings is { } withSpread && parse.GetValue(spread))
            {
                settings = withSpread with { Spread = true };
            }

            if (settings is null)
            {
                await Console.Error.WriteLineAsync($"atp-loadtest: {error}");
                return ExitBadInput;
            }

            try
            {
                if (parse.GetValue(startup))
                {
                    var (variants, startupError) = ValidateStartup(settings, parse.GetValue(variant) ?? [], parse.GetValue(repeat));
                    if (variants is null)
                    {
                        await Console.Error.WriteLineAsync($"atp-loadtest: {startupError}");
                        return ExitBadInput;
                    }

                    return await StartupRun.RunAsync(settings, variants, parse.GetValue(repeat), args, cancellationToken);
                }

                if (parse.GetValue(erasure) is > 0 and var subjectEvents)
                {
                    return await ErasureRun.RunAsync(settings, subjectEvents, args, cancellationToken);
                }

                if (parse.GetValue(retention) is > 0 and var expired)
                {
                    return await RetentionRun.RunAsync(settings, expired, args, cancellationToken);
                }

                return parse.GetValue(tenantMemory) ? await TenantMemoryRun.RunAsync(settings, args, cancellationToken)
                    : parse.GetValue(telemetryOverhead) ? await OverheadRun.ForTelemetry().RunAsync(settings, args, cancellationToken)
                    : parse.GetValue(schemaOverhead) ? await OverheadRun.ForSchemas().RunAsync(settings, args, cancellationToken)
                    : parse.GetValue(sealingOverhead) ? await OverheadRun.ForSealing().RunAsync(settings, args, cancellationToken)
                    : parse.GetValue(fairness) ? await FairnessRun.RunAsync(settings, args, cancellationToken)
                    : parse.GetValue(authOverhead) ? await AuthOverheadRun.RunAsync(settings, args, cancellationToken)
                    : await LoadTestRun.RunAsync(settings, args, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                await Console.Error.WriteLineAsync("atp-loadtest: cancelled.");
                return ExitCancelled;
            }
        });

        // Ctrl+C cancels the run; leave enough time to stop the child server and delete the temporary directories.
        var configuration = new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(30) };
        return await root.Parse(args).InvokeAsync(configuration);
    }

    private static (IReadOnlyList<StartupVariant>? Variants, string? Error) ValidateStartup(LoadTestSettings settings, string[] variantTexts, int repeat)
    {
        if (settings.Url is not null || settings.Engine != "sqlite")
        {
            return (null, "--startup starts its own child servers on the embedded engine: not with --url or --engine postgres.");
        }

        if (settings.DurationSeconds < 20)
        {
            return (null, "--startup: --duration at least 20 (the steady rate is the median of seconds 10–20).");
        }

        if (repeat is < 1 or > 20)
        {
            return (null, "--repeat: 1 to 20.");
        }

        if (variantTexts.Length == 0)
        {
            return ([new StartupVariant("build", settings.ServerDll, new Dictionary<string, string>())], null);
        }

        var variants = new List<StartupVariant>();
        foreach (var text in variantTexts)
        {
            var (parsed, error) = StartupVariant.Parse(text);
            if (parsed is null)
            {
                return (null, error);
            }

            if (variants.Any(v => v.Label == parsed.Label))
            {
                return (null, $"--variant: the label {parsed.Label} is used twice.");
            }

            variants.Add(parsed with { ServerDll = parsed.ServerDll ?? settings.ServerDll });
        }

        return (variants, null);
    }

    private static (LoadTestSettings? Settings, string? Error) ValidateEngine(LoadTestSettings settings, string engine, string? connection, string? adminConnection, bool marten)
    {
        if (engine is not ("sqlite" or "postgres"))
        {
            return (null, "--engine: sqlite or postgres.");
        }

        if (engine == "sqlite")
        {
            return connection is null && adminConnection is null && !marten
                ? (settings, null)
                : (null, "--pg-connection, --pg-admin-connection and --marten need --engine postgres.");
        }

        if (settings.Url is not null)
        {
            return (null, "--engine postgres starts its own server; with --url the server's own configuration decides.");
        }

        if (string.IsNullOrEmpty(connection) || string.IsNullOrEmpty(adminConnection))
        {
            return (null, "--engine postgres needs --pg-connection (application role) and --pg-admin-connection (owner role), or ATP_PG_CONNECTION and ATP_PG_ADMIN_CONNECTION.");
        }

        return (settings with { Engine = engine, PgConnection = connection, PgAdminConnection = adminConnection, Marten = marten }, null);
    }

    private static (LoadTestSettings? Settings, string? Error) Validate(
        string? urlText, string? explicitAdminKey, int tenants, int clients, int batch, int eventBytes, int duration, int warmup,
        bool baselineOnly, bool noBaseline, string? serverDll, int progress)
    {
        if (baselineOnly && noBaseline)
        {
            return (null, "--baseline-only and --no-baseline exclude each other.");
        }

        if (tenants is < 1 or > 100_000)
        {
            return (null, "--tenants: 1 to 100,000.");
        }

        if (clients is < 1 or > 4096)
        {
            return (null, "--clients: 1 to 4096.");
        }

        if (batch is < 1 or > 10_000)
        {
            return (null, "--batch: 1 to 10000 (the server accepts 1000 per request unless configured otherwise).");
        }

        if (eventBytes is < 0 or > 60_000)
        {
            return (null, "--event-bytes: 0 to 60000 (the server accepts data objects up to 64 KiB).");
        }

        if (duration is < 1 or > 24 * 3600)
        {
            return (null, "--duration: 1 to 86400 seconds.");
        }

        if (warmup is < 0 or > 3600)
        {
            return (null, "--warmup: 0 to 3600 seconds.");
        }

        if (progress is < 0 or > 3600)
        {
            return (null, "--progress: 0 to 3600 seconds.");
        }

        var adminKey = explicitAdminKey ?? Environment.GetEnvironmentVariable("ATP_ADMIN_KEY");
        Uri? url = null;
        if (urlText is not null)
        {
            if (!Uri.TryCreate(urlText, UriKind.Absolute, out url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
            {
                return (null, "--url: an absolute http:// or https:// URL.");
            }

            // Only loopback targets: this tool generates heavy write load and must not be pointed at a shared server.
            if (!IPAddress.TryParse(url.Host.Trim('[', ']'), out var address) || !IPAddress.IsLoopback(address))
            {
                return (null, "--url: only loopback targets are allowed (use 127.0.0.1, not a host name).");
            }

            if (!baselineOnly && string.IsNullOrEmpty(adminKey))
            {
                return (null, "--url needs the server's platform-admin key: --admin-key or ATP_ADMIN_KEY.");
            }

            url = new Uri(url.GetLeftPart(UriPartial.Authority) + "/");
        }
        else if (explicitAdminKey is not null)
        {
            return (null, "--admin-key is only used with --url (a child server gets a fresh key).");
        }
        else
        {
            adminKey = null;
        }

        if (serverDll is not null && !File.Exists(serverDll))
        {
            return (null, $"--server-dll: no file {serverDll}.");
        }

        return (new LoadTestSettings(url, adminKey, tenants, clients, batch, eventBytes, duration, warmup, baselineOnly, noBaseline, serverDll, progress), null);
    }
}
