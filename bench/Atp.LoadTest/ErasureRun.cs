using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using Atp.Core.Keys;
using Atp.Core.Storage;
using Atp.Core.Tenants;
using Microsoft.Extensions.DependencyInjection;

namespace Atp.LoadTest;

/// <summary>
/// Erasure of a data subject with many events (issue 19, "erasing a subject with 10,000 events finishes in seconds"):
/// hosts the server in this process on the embedded engine with the envelope's personal fields sealed, ingests
/// <c>--subject-events</c> events of each of three subjects interleaved with as many of other actors, lets the
/// projector catch up, then times <c>POST …/erasures</c> for each subject over loopback HTTP: first with no legal hold,
/// then with a hold naming no party (the erasure then searches the subject's events for what the hold covers).
/// </summary>
internal static class ErasureRun
{
    private const int Subjects = 3;
    private const int Batch = 500;

    public static async Task<int> RunAsync(LoadTestSettings settings, int subjectEvents, string[] args, CancellationToken cancellationToken)
    {
        Console.WriteLine($"ATP erasure of a subject: {string.Join(' ', args)}");
        Console.WriteLine($"  {Subjects} subjects × {subjectEvents:N0} events each, as many of other actors; embedded engine, envelope sealing on; machine {Environment.ProcessorCount} cores, {Environment.Version}");
        var data = Directory.CreateTempSubdirectory("atp-loadtest-erasure-");
        var adminKey = ApiKeyFormat.Generate();
        var app = await InProcessServer.StartAsync(
            InProcessServer.Arguments(data.FullName, adminKey, "--Atp:Classification:SealEnvelopeFields=true"), cancellationToken);
        try
        {
            var url = InProcessServer.Url(app);
            var store = app.Services.GetRequiredService<ITenantStore>();
            var key = await InProcessServer.CreateTenantAsync(store, "erasure", "erasure", [Scopes.EventsWrite, Scopes.EventsRead, Scopes.TenantAdmin], cancellationToken);
            await store.UpdateTenantSettingsAsync("erasure", TenantSettings.None with { IngestPerSecond = 1_000_000, IngestEventsPerSecond = 10_000_000, IngestBytesPerSecond = 1_000_000_000, ReadCostPerSecond = 1_000_000 }, cancellationToken);
            using var http = AtpClient.CreateHttpClient(4);
            http.BaseAddress = url;
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);

            var ingesting = Stopwatch.StartNew();
            var total = 0;
            for (var sent = 0; sent < subjectEvents; sent += Batch)
            {
                var count = Math.Min(Batch, subjectEvents - sent);
                for (var s = 0; s <= Subjects; s++)
                {
                    // Subject s = Subjects is "others": a different actor each event.
                    await PostAsync(http, HttpMethod.Post, "v1/tenants/erasure/events", Events(s, sent, count), cancellationToken);
                    total += count;
                }
            }

            Console.WriteLine($"  ingested {total:N0} events in {ingesting.Elapsed.TotalSeconds:0.0} s");
            var projected = Stopwatch.StartNew();
            while (true)
            {
                using var status = await http.GetAsync(new Uri("v1/tenants/erasure/projection", UriKind.Relative), cancellationToken);
                var text = await status.Content.ReadAsStringAsync(cancellationToken);
                if (text.Contains($"\"projectedSize\":{total}", StringComparison.Ordinal))
                {
                    break;
                }

                await Task.Delay(200, cancellationToken);
            }

            Console.WriteLine($"  projected in {projected.Elapsed.TotalSeconds:0.0} s more");
            Console.WriteLine();
            Console.WriteLine("| subject | events | legal holds | erasure ms |");
            Console.WriteLine("|---|---:|---|---:|");
            for (var s = 0; s < Subjects; s++)
            {
                if (s == Subjects - 1)
                {
                    await PostAsync(http, HttpMethod.Post, "v1/tenants/erasure/holds", """{"scope":{"eventTypes":["billing.dispute"]},"reason":"benchmark: a hold naming no party"}""", cancellationToken);
                }

                var erasing = Stopwatch.StartNew();
                await PostAsync(http, HttpMethod.Post, "v1/tenants/erasure/erasures", $$"""{"subject":"{{Subject(s)}}","reason":"benchmark"}""", cancellationToken);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {Subject(s)} | {subjectEvents:N0} | {(s == Subjects - 1 ? "1 naming no party (the subject's events searched)" : "none")} | {erasing.Elapsed.TotalMilliseconds:0} |"));
            }

            return LoadTestCommand.ExitOk;
        }
        finally
        {
            await InProcessServer.StopAsync(app);
            data.Delete(recursive: true);
        }
    }

    private static string Subject(int s) => $"subject-{s}";

    private static string Events(int subject, int from, int count)
    {
        var body = new StringBuilder("{\"events\":[");
        for (var i = 0; i < count; i++)
        {
            var actor = subject < Subjects ? Subject(subject) : $"other-{from + i}";
            body.Append(i == 0 ? "" : ",")
                .Append("{\"type\":\"profile.update\",\"occurredAt\":\"2026-12-07T12:00:00Z\",\"actor\":{\"type\":\"user\",\"id\":\"")
                .Append(actor).Append("\",\"name\":\"Name of ").Append(actor)
                .Append("\"},\"action\":\"profile.update\",\"targets\":[{\"type\":\"document\",\"id\":\"doc-").Append((from + i) % 97)
                .Append("\"}],\"context\":{\"ip\":\"203.0.113.7\",\"userAgent\":\"bench/1.0\"}}");
        }

        return body.Append("]}").ToString();
    }

    private static async Task PostAsync(HttpClient http, HttpMethod method, string path, string json, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, new Uri(path, UriKind.Relative)) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, cancellationToken);
        if ((int)response.StatusCode is not (200 or 201))
        {
            throw new InvalidOperationException($"{path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(cancellationToken)}");
        }
    }
}
