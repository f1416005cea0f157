using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Atp.Core.Storage;

namespace Atp.Server.Export;

/// <summary>
/// The lines of the non-bundle formats, each derived from one stored leaf (the canonical event, see
/// docs/architecture.md "Event shape"): CSV (RFC 4180), OCSF 1.x API Activity (class 6003) and CloudEvents 1.0
/// structured JSON. Only ndjson bundles carry the exact leaf bytes; these mappings are for SIEMs and spreadsheets.
/// </summary>
internal sealed class ExportLines(string format, string origin, string region)
{
    public const string OcsfVersion = "1.3.0";

    /// <summary>The CSV header (the only part that is not one line per entry).</summary>
    public static readonly byte[] CsvHeader = Encoding.UTF8.GetBytes(
        "index,id,occurredAt,receivedAt,type,action,outcome,actorType,actorId,actorName,targets,ip,userAgent,requestId,data,leafHash\r\n");

    /// <summary>Appends the line of <paramref name="entry"/> (with its terminator) to <paramref name="output"/>.</summary>
    public void Write(LogEntry entry, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(entry);
        using var leaf = JsonDocument.Parse(entry.Leaf);
        var e = leaf.RootElement;
        switch (format)
        {
            case ExportFormats.Csv:
                WriteCsv(entry, e, output);
                break;
            case ExportFormats.Ocsf:
                WriteOcsf(entry, e, output);
                break;
            case ExportFormats.CloudEvents:
                WriteCloudEvent(entry, e, output);
                break;
            default:
                throw new InvalidOperationException($"{format} is not a line format.");
        }
    }

    private static void WriteCsv(LogEntry entry, JsonElement e, IBufferWriter<byte> output)
    {
        var actor = Member(e, "actor");
        var context = Member(e, "context");
        string?[] cells =
        [
            entry.Index.ToString(CultureInfo.InvariantCulture),
            Text(e, "id"),
            Text(e, "occurredAt"),
            Text(e, "receivedAt"),
            Text(e, "type"),
            Text(e, "action"),
            Text(e, "outcome"),
            Text(actor, "type"),
            Text(actor, "id"),
            Text(actor, "name"),
            Member(e, "targets") is { ValueKind: JsonValueKind.Array } targets ? targets.GetRawText() : "[]",
            Text(context, "ip"),
            Text(context, "userAgent"),
            Text(context, "requestId"),
            Member(e, "data") is { ValueKind: JsonValueKind.Object } data ? data.GetRawText() : null,
            entry.LeafHash.ToBase64(),
        ];
        var line = new StringBuilder();
        for (var i = 0; i < cells.Length; i++)
        {
            if (i > 0)
            {
                line.Append(',');
            }

            line.Append(CsvCell(cells[i]));
        }

        line.Append("\r\n");
        output.Write(Encoding.UTF8.GetBytes(line.ToString()));
    }

    // RFC 4180 §2: a field with a comma, quote or line break is quoted, and its quotes doubled. Values are written as
    // stored (an audit export must not alter them); spreadsheet users should import rather than open the file.
    private static string CsvCell(string? value) =>
        value is null ? ""
        : value.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\""
        : value;

    // OCSF 1.x API Activity: https://schema.ocsf.io/1.3.0/classes/api_activity (class_uid 6003, category 6).
    private void WriteOcsf(LogEntry entry, JsonElement e, IBufferWriter<byte> output)
    {
        var action = Text(e, "action") ?? "";
        var (activityId, activityName) = Activity(action);
        var (statusId, status) = Text(e, "outcome") switch
        {
            "success" => (1, "Success"),
            "failure" => (2, "Failure"),
            _ => (0, "Unknown"),
        };
        using var writer = new Utf8JsonWriter(output);
        writer.WriteStartObject();
        writer.WriteNumber("class_uid", 6003);
        writer.WriteString("class_name", "API Activity");
        writer.WriteNumber("category_uid", 6);
        writer.WriteString("category_name", "Application Activity");
        writer.WriteNumber("activity_id", activityId);
        writer.WriteString("activity_name", activityName);
        writer.WriteNumber("type_uid", (6003 * 100) + activityId);
        writer.WriteString("type_name", "API Activity: " + activityName);
        writer.WriteNumber("severity_id", 1);
        writer.WriteString("severity", "Informational");
        writer.WriteNumber("status_id", statusId);
        writer.WriteString("status", status);
        writer.WriteNumber("time", EpochMilliseconds(Text(e, "occurredAt")));
        writer.WriteStartObject("metadata");
        writer.WriteString("version", OcsfVersion);
        writer.WriteString("uid", Text(e, "id"));
        writer.WriteString("log_name", origin);
        writer.WriteNumber("sequence", entry.Index);
        writer.WriteNumber("logged_time", EpochMilliseconds(Text(e, "receivedAt")));
        writer.WriteString("original_time", Text(e, "occurredAt"));
        writer.WriteStartObject("product");
        writer.WriteString("name", "ATP");
        writer.WriteString("vendor_name", "ATP");
        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.WriteStartObject("actor");
        writer.WriteStartObject("user");
        var actor = Member(e, "actor");
        writer.WriteString("uid", Text(actor, "id"));
        writer.WriteString("type", Text(actor, "type"));
        if (Text(actor, "name") is { } actorName)
        {
            writer.WriteString("name", actorName);
        }

        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.WriteStartObject("api");
        writer.WriteString("operation", action);
        writer.WriteEndObject();
        writer.WriteStartObject("cloud");
        writer.WriteString("provider", "ATP");
        writer.WriteString("region", region);
        writer.WriteEndObject();
        var context = Member(e, "context");
        writer.WriteStartObject("src_endpoint");
        if (Text(context, "ip") is { } ip)
        {
            writer.WriteString("ip", ip);
        }

        writer.WriteEndObject();
        if (Text(context, "userAgent") is { } agent)
        {
            writer.WriteStartObject("http_request");
            writer.WriteString("user_agent", agent);
            if (Text(context, "requestId") is { } requestId)
            {
                writer.WriteString("uid", requestId);
            }

            writer.WriteEndObject();
        }

        writer.WriteStartArray("resources");
        if (Member(e, "targets") is { ValueKind: JsonValueKind.Array } targets)
        {
            foreach (var target in targets.EnumerateArray())
            {
                writer.WriteStartObject();
                writer.WriteString("uid", Text(target, "id"));
                writer.WriteString("type", Text(target, "type"));
                if (Text(target, "name") is { } name)
                {
                    writer.WriteString("name", name);
                }

                writer.WriteEndObject();
            }
        }

        writer.WriteEndArray();
        writer.WriteStartObject("unmapped");
        writer.WriteString("atp_type", Text(e, "type"));
        writer.WriteString("atp_leaf_hash", entry.LeafHash.ToBase64());
        if (Member(e, "data") is { ValueKind: JsonValueKind.Object } data)
        {
            writer.WritePropertyName("data");
            data.WriteTo(writer);
        }

        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.Flush();
        output.Write("\n"u8);
    }

    // CloudEvents 1.0 structured mode (JSON event format): the required attributes, the event as data, and the log
    // position as extension attributes (names: lowercase letters and digits only, CloudEvents §3.1.1).
    private void WriteCloudEvent(LogEntry entry, JsonElement e, IBufferWriter<byte> output)
    {
        using var writer = new Utf8JsonWriter(output);
        writer.WriteStartObject();
        writer.WriteString("specversion", "1.0");
        writer.WriteString("id", Text(e, "id"));
        writer.WriteString("source", Source);
        writer.WriteString("type", Text(e, "type"));
        if (Member(e, "targets") is { ValueKind: JsonValueKind.Array } targets && targets.GetArrayLength() > 0)
        {
            writer.WriteString("subject", $"{Text(targets[0], "type")}/{Text(targets[0], "id")}");
        }

        writer.WriteString("time", Text(e, "occurredAt"));
        writer.WriteString("datacontenttype", "application/json");
        writer.WriteString("atpindex", entry.Index.ToString(CultureInfo.InvariantCulture));
        writer.WriteString("atpleafhash", entry.LeafHash.ToBase64());
        writer.WritePropertyName("data");
        e.WriteTo(writer);
        writer.WriteEndObject();
        writer.Flush();
        output.Write("\n"u8);
    }

    /// <summary>The CloudEvents source of every event of this log: a URI naming the log's origin.</summary>
    public string Source => "urn:atp:" + origin;

    // OCSF API Activity activity_id: 1 Create, 2 Read, 3 Update, 4 Delete, 99 Other; from the verb of resource.verb.
    internal static (int Id, string Name) Activity(string action)
    {
        var verb = action[(action.LastIndexOf('.') + 1)..].ToLowerInvariant();
        return verb switch
        {
            "create" or "created" or "add" or "added" or "insert" => (1, "Create"),
            "read" or "get" or "list" or "view" or "viewed" or "download" or "export" => (2, "Read"),
            "update" or "updated" or "edit" or "change" or "changed" or "modify" or "rename" or "share" => (3, "Update"),
            "delete" or "deleted" or "remove" or "removed" or "destroy" => (4, "Delete"),
            _ => (99, "Other"),
        };
    }

    private static long EpochMilliseconds(string? time) =>
        time is not null && DateTimeOffset.TryParse(time, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t.ToUnixTimeMilliseconds() : 0;

    private static JsonElement Member(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var value) ? value : default;

    private static string? Text(JsonElement e, string name) =>
        Member(e, name) is { ValueKind: JsonValueKind.String } value ? value.GetString() : null;
}
