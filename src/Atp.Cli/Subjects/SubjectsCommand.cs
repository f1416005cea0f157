using System.Buffers;
using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Atp.Cli.Requests;
using Atp.Cli.Verify;
using Atp.Integrity;

namespace Atp.Cli.Subjects;

/// <summary>
/// <c>atp subjects export SUBJECT --url URL --tenant T --key VERIFIER --out FILE</c>: fetches every page of
/// <c>GET /v1/tenants/{tenant}/subjects/{subject}/events</c> (a data subject access or portability request), checks the
/// one checkpoint all pages name against the trusted keys and every event's inclusion proof against it, offline, the
/// way <c>atp verify events</c> does, and writes the events with their proofs and the checkpoint as one JSON document
/// that <c>atp verify events</c> verifies again later. The file appears only when everything verified.
/// Exit 0 exported, 1 a check failed, 2 unusable input (server unreachable, refused, or an answer of the wrong shape).
/// </summary>
internal static class SubjectsCommand
{
    private const int MaxRateLimitWaits = 30;

    // As atp verify events: duplicate member names would let two readers see different values.
    private static readonly JsonDocumentOptions PageOptions = new() { MaxDepth = 72, AllowDuplicateProperties = false };

    private sealed record Arguments(string Subject, Uri Url, string Tenant, List<NoteVerifier> Trusted, string? Origin, FileInfo Out, FileInfo? ApiKeyFile, int Limit);

    public static Command Create(CliEnvironment environment)
    {
        var command = new Command("subjects", "Data subject requests: export every event about a subject, verified.");
        var subject = new Argument<string>("subject") { Description = "The data subject's id, as events name it in actor.id or a target's id" };
        var url = new Option<string>("--url") { Description = "Base URL of the ATP server, e.g. https://atp.example.com", Required = true };
        var tenant = new Option<string>("--tenant") { Description = "The tenant whose events to export", Required = true };
        var keys = VerifyCommand.KeyOption();
        var origin = VerifyCommand.OriginOption();
        var output = new Option<FileInfo>("--out") { Description = "The JSON file to write (replaced only when every proof verified)", Required = true };
        var apiKeyFile = new Option<FileInfo>("--api-key-file")
        {
            Description = $"File holding an API key with events:read, and pii:read to export classified fields in clear (default: ${RequestCommand.ApiKeyVariable}); never the key itself, since arguments show in the process list",
        };
        var limit = new Option<int>("--limit") { Description = "Events per page, 1 to 1000", DefaultValueFactory = _ => 1000 };
        var export = new Command("export", "Fetch every event about a data subject with its inclusion proof, verify them all offline against one signed checkpoint, and write them to a file.")
        {
            subject, url, tenant, keys, origin, output, apiKeyFile, limit,
        };
        export.SetAction((parse, cancellationToken) => RunAsync(
            new Arguments(
                parse.GetValue(subject)!,
                ParseUrl(parse.GetValue(url)!),
                parse.GetValue(tenant)!,
                VerifyCommand.ParseKeys(parse.GetValue(keys)!),
                parse.GetValue(origin),
                parse.GetValue(output)!,
                parse.GetValue(apiKeyFile),
                parse.GetValue(limit) is var n and >= 1 and <= 1000 ? n : throw new CliInputException("--limit must be 1 to 1000")),
            environment,
            parse.InvocationConfiguration.Output,
            parse.InvocationConfiguration.Error,
            cancellationToken));
        command.Subcommands.Add(export);
        return command;
    }

    private static async Task<int> RunAsync(Arguments arguments, CliEnvironment environment, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var apiKey = arguments.ApiKeyFile is { } keyFile ? ReadKeyFile(keyFile) : environment.Variable(RequestCommand.ApiKeyVariable)?.Trim();
        if (string.IsNullOrWhiteSpace(apiKey))
        {
            throw new CliInputException($"no API key: set ${RequestCommand.ApiKeyVariable} (or pass --api-key-file) to a key with events:read for the tenant");
        }

        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("atp-subjects", "1"));
        var path = $"v1/tenants/{Uri.EscapeDataString(arguments.Tenant)}/subjects/{Uri.EscapeDataString(arguments.Subject)}/events?limit={arguments.Limit.ToString(CultureInfo.InvariantCulture)}";

        // Written beside the target and moved over it only when every page verified: a failed export leaves no file.
        var target = arguments.Out.FullName;
        var partial = target + ".partial";
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        var result = ExitCodes.VerificationFailed;
        try
        {
            await using (var file = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 64 * 1024, useAsync: true))
            {
                await using var writer = new Utf8JsonWriter(file, new JsonWriterOptions { Indented = false });
                result = await ExportAsync(http, path, arguments, writer, output, error, cancellationToken).ConfigureAwait(false);
            }

            if (result == ExitCodes.Success)
            {
                File.Move(partial, target, overwrite: true);
            }

            return result;
        }
        finally
        {
            if (result != ExitCodes.Success)
            {
                File.Delete(partial);
            }
        }
    }

    private static async Task<int> ExportAsync(HttpClient http, string path, Arguments arguments, Utf8JsonWriter writer, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        string? note = null;
        Checkpoint? checkpoint = null;
        var seen = new Dictionary<ulong, int>();
        var leaf = new ArrayBufferWriter<byte>(1024);
        var unavailable = new List<ulong>();
        var events = 0;
        var sealedFields = 0;
        string? cursor = null;
        for (var page = 1; ; page++)
        {
            var uri = new Uri(arguments.Url, cursor is null ? path : $"{path}&cursor={Uri.EscapeDataString(cursor)}");
            using var document = await GetPageAsync(http, uri, cancellationToken).ConfigureAwait(false);
            var root = document.RootElement;
            var source = $"page {page} of GET {uri.GetLeftPart(UriPartial.Path)}";
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new CliInputException($"{source}: not a JSON object");
            }

            if (root.TryGetProperty("proofPending", out var pending) && pending.ValueKind == JsonValueKind.True)
            {
                return await VerifyCommand.FailAsync(error, "proof pending: the tenant has no signed checkpoint yet, so nothing was exported (ask again after the next checkpoint)").ConfigureAwait(false);
            }

            var pageNote = root.TryGetProperty("checkpoint", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : throw new CliInputException($"{source}: has no \"checkpoint\"");
            if (note is null)
            {
                var opened = VerifyCommand.OpenCheckpoint(Encoding.UTF8.GetBytes(pageNote), arguments.Trusted, arguments.Origin, "checkpoint", source);
                if (opened.Checkpoint is not { } first)
                {
                    return await VerifyCommand.FailAsync(error, opened.Failure!).ConfigureAwait(false);
                }

                (note, checkpoint) = (pageNote, first);
                writer.WriteStartObject();
                writer.WriteString("tenant", arguments.Tenant);
                writer.WriteString("subject", arguments.Subject);
                writer.WriteString("checkpoint", note);
                writer.WriteNumber("snapshot", root.TryGetProperty("snapshot", out var snapshot) && snapshot.TryGetUInt64(out var size) ? size : 0);
                writer.WriteStartArray("items");
            }
            else if (!string.Equals(pageNote, note, StringComparison.Ordinal))
            {
                return await VerifyCommand.FailAsync(error, $"{source}: names another checkpoint than the first page; every page of one listing must lead to the same one").ConfigureAwait(false);
            }

            var items = root.TryGetProperty("items", out var list) && list.ValueKind == JsonValueKind.Array ? list : throw new CliInputException($"{source}: has no \"items\" array");
            var k = 0;
            foreach (var item in items.EnumerateArray())
            {
                var itemPath = $"items[{k++}]";
                if (item.ValueKind == JsonValueKind.Object && item.TryGetProperty("quarantined", out var quarantined) && quarantined.ValueKind == JsonValueKind.True)
                {
                    var index = item.TryGetProperty("index", out var i) ? i.GetRawText() : "?";
                    return await VerifyCommand.FailAsync(error, $"{source}: {itemPath} (event at index {index}) is quarantined by the server: its stored bytes failed their leaf hash or are not JSON, so it cannot be exported verified").ConfigureAwait(false);
                }

                if (VerifyEventsCommand.CheckItem(source, item, itemPath, events, seen, leaf, checkpoint!, ref sealedFields) is { } failure)
                {
                    return await VerifyCommand.FailAsync(error, $"{source}: {itemPath}: {failure}").ConfigureAwait(false);
                }

                item.WriteTo(writer);
                events++;
            }

            if (root.TryGetProperty("unavailable", out var gone) && gone.ValueKind == JsonValueKind.Array)
            {
                unavailable.AddRange(gone.EnumerateArray().Select(g => g.TryGetUInt64(out var index) ? index : throw new CliInputException($"{source}: \"unavailable\" holds a value that is not an index")));
            }

            await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
            cursor = root.TryGetProperty("nextCursor", out var next) && next.ValueKind == JsonValueKind.String ? next.GetString() : null;
            if (cursor is null)
            {
                break;
            }

            await error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"verified {events} events so far (after page {page})…")).ConfigureAwait(false);
        }

        writer.WriteEndArray();
        if (unavailable.Count > 0)
        {
            writer.WriteStartArray("unavailable");
            foreach (var index in unavailable)
            {
                writer.WriteNumberValue(index);
            }

            writer.WriteEndArray();
        }

        writer.WriteEndObject();
        await writer.FlushAsync(cancellationToken).ConfigureAwait(false);

        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"exported: {events} events about the subject, each verified against checkpoint {checkpoint!.Origin} size {checkpoint.Size}, to {arguments.Out.FullName}")).ConfigureAwait(false);
        if (sealedFields > 0)
        {
            await output.WriteLineAsync($"{sealedFields} classified fields are in clear with the sealed tokens the log holds beside them (\"sealed\"); the tokens were verified, the clear values cannot be without the tenant's keys").ConfigureAwait(false);
        }

        if (unavailable.Count > 0)
        {
            await output.WriteLineAsync($"{unavailable.Count} listed events are no longer held by the log (retention) and are named in \"unavailable\"").ConfigureAwait(false);
        }

        return ExitCodes.Success;
    }

    // A 429 is waited out (its Retry-After) rather than failing a long export; any other non-2xx answer is unusable input.
    private static async Task<JsonDocument> GetPageAsync(HttpClient http, Uri uri, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            HttpResponseMessage response;
            try
            {
                response = await http.GetAsync(uri, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException e)
            {
                throw new CliInputException($"GET {uri.GetLeftPart(UriPartial.Path)}: {e.Message}");
            }

            using (response)
            {
                var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    try
                    {
                        return JsonDocument.Parse(body, PageOptions);
                    }
                    catch (JsonException e)
                    {
                        throw new CliInputException($"GET {uri.GetLeftPart(UriPartial.Path)}: the answer is not JSON: {e.Message}");
                    }
                }

                if (response.StatusCode == HttpStatusCode.TooManyRequests && attempt < MaxRateLimitWaits)
                {
                    var wait = response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1);
                    await Task.Delay(wait < TimeSpan.FromMilliseconds(100) ? TimeSpan.FromMilliseconds(100) : wait, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                var detail = Encoding.UTF8.GetString(body);
                throw new CliInputException(string.Create(CultureInfo.InvariantCulture,
                    $"GET {uri.GetLeftPart(UriPartial.Path)}: {(int)response.StatusCode} {response.ReasonPhrase}: {detail[..Math.Min(detail.Length, 500)]}"));
            }
        }
    }

    private static Uri ParseUrl(string url) =>
        Uri.TryCreate(url.EndsWith('/') ? url : url + "/", UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? uri
            : throw new CliInputException($"--url must be an absolute http or https URL, not '{url}'");

    private static string ReadKeyFile(FileInfo file)
    {
        try
        {
            return File.ReadAllText(file.FullName).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliInputException($"cannot read the key file {file.FullName}: {e.Message}");
        }
    }
}
