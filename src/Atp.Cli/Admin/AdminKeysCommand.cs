using System.CommandLine;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Atp.Cli.Requests;

namespace Atp.Cli.Admin;

/// <summary>
/// <c>atp admin keys list|create|rotate|revoke</c>: the platform-admin API keys of a running cell, through its
/// <c>/v1/admin/keys</c> API. The caller's own platform-admin key comes from <c>ATP_API_KEY</c>, never an argument.
/// A new key is written owner-only to <c>--out</c> when given; otherwise it is printed once to standard output.
/// </summary>
internal static class AdminKeysCommand
{
    public static Command Create(CliEnvironment environment)
    {
        var keys = new Command("keys", $"Platform-admin API keys of a running cell (your own key from ${RequestCommand.ApiKeyVariable}).");

        var listUrl = UrlOption();
        var list = new Command("list", "List the platform-admin keys with their status (never the keys).") { listUrl };
        list.SetAction((parse, ct) => CallAsync(environment, HttpMethod.Get, parse.GetValue(listUrl)!, "", null, null, parse, ct));
        keys.Subcommands.Add(list);

        var name = new Option<string>("--name") { Description = "A name people recognise, e.g. 'ops on-call'", Required = true };
        var expires = new Option<DateTimeOffset?>("--expires-at") { Description = "When the key stops working (RFC 3339); default: never" };
        var createOut = OutOption();
        var createUrl = UrlOption();
        var create = new Command("create", "Create a platform-admin key; it is shown (or written to --out) once.") { createUrl, name, expires, createOut };
        create.SetAction((parse, ct) => CallAsync(
            environment, HttpMethod.Post, parse.GetValue(createUrl)!, "",
            new JsonObject { ["name"] = parse.GetValue(name), ["expiresAt"] = parse.GetValue(expires) is { } at ? at.ToString("O") : null }.ToJsonString(),
            parse.GetValue(createOut), parse, ct));
        keys.Subcommands.Add(create);

        var rotateId = new Argument<string>("key-id") { Description = "The key to replace" };
        var overlap = new Option<long?>("--overlap-seconds") { Description = "How long the old key keeps working (default 86400, at most 2592000)" };
        var rotateOut = OutOption();
        var rotateUrl = UrlOption();
        var rotate = new Command("rotate", "Replace a platform-admin key: a new key now, the old one expires after the overlap.") { rotateUrl, rotateId, overlap, rotateOut };
        rotate.SetAction((parse, ct) => CallAsync(
            environment, HttpMethod.Post, parse.GetValue(rotateUrl)!, "/" + Uri.EscapeDataString(parse.GetValue(rotateId)!) + "/rotate",
            new JsonObject { ["overlapSeconds"] = parse.GetValue(overlap) }.ToJsonString(), parse.GetValue(rotateOut), parse, ct));
        keys.Subcommands.Add(rotate);

        var revokeId = new Argument<string>("key-id") { Description = "The key to revoke" };
        var revokeUrl = UrlOption();
        var revoke = new Command("revoke", "Revoke a platform-admin key at once (the last active one is refused).") { revokeUrl, revokeId };
        revoke.SetAction((parse, ct) => CallAsync(environment, HttpMethod.Delete, parse.GetValue(revokeUrl)!, "/" + Uri.EscapeDataString(parse.GetValue(revokeId)!), null, null, parse, ct));
        keys.Subcommands.Add(revoke);
        return keys;
    }

    private static Option<string> UrlOption() => new("--url") { Description = "The cell's base URL, e.g. http://127.0.0.1:8080", Required = true };

    private static Option<FileInfo?> OutOption() => new("--out") { Description = "Write the new key to this file (created owner-only, must not exist) instead of printing it" };

    private static async Task<int> CallAsync(
        CliEnvironment environment, HttpMethod method, string baseUrl, string suffix, string? json, FileInfo? outFile, ParseResult parse, CancellationToken cancellationToken)
    {
        var output = parse.InvocationConfiguration.Output;
        var error = parse.InvocationConfiguration.Error;
        if (!Uri.TryCreate(baseUrl.TrimEnd('/') + "/v1/admin/keys" + suffix, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new CliInputException($"'{baseUrl}' is not an absolute http:// or https:// URL");
        }

        var apiKey = environment.Variable(RequestCommand.ApiKeyVariable);
        if (string.IsNullOrWhiteSpace(apiKey))
        {
            throw new CliInputException($"set {RequestCommand.ApiKeyVariable} to a platform-admin API key (it is never taken from an argument)");
        }

        if (outFile is { Exists: true })
        {
            throw new CliInputException($"'{outFile.FullName}' already exists; choose a new file for the new key");
        }

        using var request = new HttpRequestMessage(method, uri);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey.Trim());
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        using var client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false });
        string text;
        HttpResponseMessage response;
        try
        {
            response = await client.SendAsync(request, cancellationToken).ConfigureAwait(false);
            text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new CliInputException($"no response from {uri}: {e.Message}");
        }

        using (response)
        {
            await error.WriteLineAsync($"HTTP {(int)response.StatusCode} {response.ReasonPhrase}".TrimEnd()).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                await output.WriteLineAsync(text).ConfigureAwait(false);
                return ExitCodes.HttpError;
            }

            if (outFile is not null && JsonNode.Parse(text) is JsonObject created && created["key"]?.GetValue<string>() is { } secret)
            {
                WriteOwnerOnly(outFile, secret + "\n");
                created["key"] = $"(written to {outFile.FullName})";
                text = created.ToJsonString(new JsonSerializerOptions { WriteIndented = false });
            }

            await output.WriteLineAsync(text).ConfigureAwait(false);
            return ExitCodes.Success;
        }
    }

    private static void WriteOwnerOnly(FileInfo file, string text)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            // Created owner-only: the key never exists on disk with wider permissions, not even briefly.
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        try
        {
            using var stream = new FileStream(file.FullName, options);
            stream.Write(new UTF8Encoding(false).GetBytes(text));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliInputException($"cannot write the new key to '{file.FullName}': {e.Message} (the key was created; revoke it if it is lost)");
        }
    }
}
