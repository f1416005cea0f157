using System.Text.Json;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Atp.Server.Health;

/// <summary><c>/readyz</c> as JSON: the status, why not ready, and details such as the projection lag.</summary>
internal static class ReadinessResponse
{
    public static Task WriteAsync(HttpContext context, HealthReport report)
    {
        var body = new Dictionary<string, object?> { ["status"] = report.Status.ToString() };
        foreach (var (name, entry) in report.Entries)
        {
            body[name] = new Dictionary<string, object?> { ["status"] = entry.Status.ToString(), ["description"] = entry.Description, ["data"] = entry.Data };
        }

        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(JsonSerializer.Serialize(body, ReadinessJson.Options), context.RequestAborted);
    }
}

internal static class ReadinessJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);
}
