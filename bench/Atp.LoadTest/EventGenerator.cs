using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Atp.LoadTest;

/// <summary>
/// Realistic audit events of one tenant: a few dozen users (skewed: some far more active), services and API keys as
/// actors; document, membership, billing, security and settings actions with matching targets; IPv4/IPv6 addresses,
/// browser and SDK user agents; a data object with action-specific fields, padded with text to about the requested size.
/// </summary>
internal sealed class EventGenerator
{
    private static readonly string[] FirstNames = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim", "Hedy", "Linus", "Margaret", "Niklaus", "Sophie", "Yukihiro"];
    private static readonly string[] LastNames = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman", "Berners-Lee", "Lamarr", "Torvalds", "Hamilton", "Wirth", "Wilson", "Matsumoto"];
    private static readonly string[] Services = ["svc-billing-worker", "svc-sync-gateway", "svc-scheduler", "svc-import"];
    private static readonly string[] UserAgents =
    [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
        "acme-sdk-python/3.2.1 (CPython 3.12; Linux)",
        "acme-sdk-go/1.14.0",
        "curl/8.10.1",
    ];

    private static readonly string[] Words = ["quarterly", "review", "draft", "customer", "contract", "update", "policy", "approved", "pending", "region", "invoice", "renewal", "migration", "access", "budget", "forecast", "legal", "hold", "retention", "export", "team", "roadmap", "security", "audit", "release", "notes", "escalation", "priority", "account", "workspace"];
    private static readonly string[] DocumentNames = ["Q3 planning.docx", "Board deck.pptx", "Customer list.xlsx", "Security policy.md", "Vendor contract.pdf", "Roadmap 2027.docx", "Incident report.md", "Pricing model.xlsx"];
    private static readonly string[] Roles = ["viewer", "editor", "admin", "billing-admin", "auditor"];
    private static readonly string[] Fields = ["title", "status", "owner", "dueDate", "visibility", "description", "labels"];
    private static readonly string[] Sources = ["web", "mobile", "api", "sync"];

    // (action, event type, weight): document edits dominate, as in most SaaS audit trails.
    private static readonly (string Action, string Type, int Weight)[] Actions =
    [
        ("document.update", "app.document", 30),
        ("document.view", "app.document", 15),
        ("document.create", "app.document", 8),
        ("document.share", "app.document", 5),
        ("document.delete", "app.document", 2),
        ("user.login", "security.auth", 10),
        ("user.logout", "security.auth", 4),
        ("user.mfa_challenge", "security.auth", 3),
        ("member.invite", "admin.membership", 3),
        ("role.assign", "admin.membership", 3),
        ("invoice.approve", "billing.invoice", 4),
        ("invoice.pay", "billing.invoice", 3),
        ("project.create", "app.project", 2),
        ("project.archive", "app.project", 1),
        ("api_key.rotate", "security.credentials", 1),
        ("settings.update", "admin.settings", 3),
        ("export.download", "data.export", 3),
    ];

    // One schema for every data shape the load generator writes: a closed content model with enums, bounds, a
    // pattern, a nested array of objects and required members, as a tenant would register for its audit events.
    public const string DataSchema = """
        {"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["source"],
         "properties":{
           "source":{"enum":["web","mobile","api","sync"]},
           "changes":{"type":"array","minItems":1,"maxItems":20,"items":{"type":"object","additionalProperties":false,"required":["field","from","to"],
             "properties":{"field":{"enum":["title","status","owner","dueDate","visibility","description","labels"]},
                           "from":{"type":"string","maxLength":256},"to":{"type":"string","maxLength":256}}}},
           "revision":{"type":"integer","minimum":1},
           "amountCents":{"type":"integer","minimum":0},"currency":{"enum":["EUR","USD","GBP"]},
           "method":{"enum":["sso","password","password+totp"]},"newDevice":{"type":"boolean"},
           "rows":{"type":"integer","minimum":0},"format":{"enum":["csv","ndjson"]},
           "sessionId":{"type":"string","pattern":"^ses_[0-9a-z]{16}$"},
           "comment":{"type":"string","maxLength":65536}}}
        """;

    /// <summary>Every event type the generator writes.</summary>
    public static IReadOnlyList<string> EventTypes { get; } = [.. Actions.Select(a => a.Type).Distinct()];

    private static readonly int TotalWeight = Actions.Sum(a => a.Weight);

    private readonly Random _random;
    private readonly int _dataBytes;
    private readonly (string Type, string Id, string? Name)[] _users;
    private readonly string[] _apiKeys;
    private readonly string[] _documents;
    private readonly string[] _folders;

    public EventGenerator(int seed, int dataBytes)
    {
        _random = new Random(seed);
        _dataBytes = dataBytes;
        _users = Enumerable.Range(0, 40)
            .Select(_ => ("user", "usr_" + Base36(10), (string?)$"{Pick(FirstNames)} {Pick(LastNames)}"))
            .ToArray();
        _apiKeys = Enumerable.Range(0, 3).Select(_ => "key_" + Base36(16)).ToArray();
        _documents = Enumerable.Range(0, 500).Select(_ => "doc_" + Base36(12)).ToArray();
        _folders = Enumerable.Range(0, 25).Select(_ => "fld_" + Base36(8)).ToArray();
    }

    /// <summary>One event as a JSON object.</summary>
    public void Write(Utf8JsonWriter writer, DateTimeOffset now)
    {
        var (action, type) = PickAction();
        var resource = action[..action.IndexOf('.', StringComparison.Ordinal)];
        writer.WriteStartObject();
        writer.WriteString("type", type);
        writer.WriteString("occurredAt", now.AddMilliseconds(-_random.Next(0, 5000)).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));

        var actor = PickActor(resource);
        writer.WriteStartObject("actor");
        writer.WriteString("type", actor.Type);
        writer.WriteString("id", actor.Id);
        if (actor.Name is not null)
        {
            writer.WriteString("name", actor.Name);
        }

        writer.WriteEndObject();
        writer.WriteString("action", action);
        writer.WriteStartArray("targets");
        WriteTargets(writer, resource, action, actor);
        writer.WriteEndArray();
        var roll = _random.Next(100);
        writer.WriteString("outcome", roll < 92 ? "success" : roll < 98 ? "failure" : "unknown");
        writer.WriteStartObject("context");
        writer.WriteString("ip", Ip());
        writer.WriteString("userAgent", actor.Type == "service" ? "acme-internal/2.8 (+svc)" : Pick(UserAgents));
        writer.WriteString("requestId", "req_" + Base36(20));
        writer.WriteEndObject();
        if (_dataBytes > 0)
        {
            writer.WritePropertyName("data");
            writer.WriteRawValue(Data(resource, action), skipInputValidation: true);
        }

        writer.WriteEndObject();
    }

    private (string Action, string Type) PickAction()
    {
        var roll = _random.Next(TotalWeight);
        foreach (var (action, type, weight) in Actions)
        {
            if (roll < weight)
            {
                return (action, type);
            }

            roll -= weight;
        }

        throw new InvalidOperationException("unreachable");
    }

    private (string Type, string Id, string? Name) PickActor(string resource)
    {
        if (resource == "invoice" && _random.Next(3) == 0)
        {
            return ("service", Services[0], null);
        }

        var roll = _random.Next(100);
        if (roll < 8)
        {
            return ("service", Pick(Services), null);
        }

        if (roll < 14)
        {
            return ("api_key", _apiKeys[_random.Next(_apiKeys.Length)], "CI integration");
        }

        // Skewed: a few users produce most of the activity.
        return _users[(int)(Math.Pow(_random.NextDouble(), 2.5) * _users.Length)];
    }

    private void WriteTargets(Utf8JsonWriter writer, string resource, string action, (string Type, string Id, string? Name) actor)
    {
        switch (resource)
        {
            case "document":
                Party(writer, "document", _documents[(int)(Math.Pow(_random.NextDouble(), 2) * _documents.Length)], Pick(DocumentNames));
                if (_random.Next(3) == 0)
                {
                    Party(writer, "folder", _folders[_random.Next(_folders.Length)], Pick(Words) + " " + Pick(Words));
                }

                if (action == "document.share")
                {
                    var user = _users[_random.Next(_users.Length)];
                    Party(writer, user.Type, user.Id, user.Name);
                }

                break;
            case "user":
                if (actor.Type == "user")
                {
                    Party(writer, actor.Type, actor.Id, actor.Name);
                }

                break;
            case "member":
            case "role":
                var member = _users[_random.Next(_users.Length)];
                Party(writer, member.Type, member.Id, member.Name);
                Party(writer, "role", Pick(Roles), null);
                break;
            case "invoice":
                Party(writer, "invoice", $"inv_2026_{_random.Next(1, 99_999):D5}", null);
                break;
            case "project":
                Party(writer, "project", "prj_" + Base36(8), $"{Pick(Words)} {Pick(Words)}");
                break;
            case "api_key":
                Party(writer, "api_key", _apiKeys[_random.Next(_apiKeys.Length)], "CI integration");
                break;
            case "settings":
                Party(writer, "workspace", "ws_main", "Main workspace");
                break;
            case "export":
                Party(writer, "export", "exp_" + Base36(10), null);
                break;
            default:
                break;
        }
    }

    private static void Party(Utf8JsonWriter writer, string type, string id, string? name)
    {
        writer.WriteStartObject();
        writer.WriteString("type", type);
        writer.WriteString("id", id);
        if (name is not null)
        {
            writer.WriteString("name", name);
        }

        writer.WriteEndObject();
    }

    /// <summary>The data object, padded with a "comment" to about <see cref="_dataBytes"/> bytes of JSON.</summary>
    private byte[] Data(string resource, string action)
    {
        var buffer = new ArrayBufferWriter<byte>(_dataBytes + 64);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("source", Pick(Sources));
            switch (resource)
            {
                case "document" when action == "document.update":
                    writer.WriteStartArray("changes");
                    for (var i = _random.Next(1, 3); i > 0; i--)
                    {
                        writer.WriteStartObject();
                        writer.WriteString("field", Pick(Fields));
                        writer.WriteString("from", $"{Pick(Words)} {Pick(Words)}");
                        writer.WriteString("to", $"{Pick(Words)} {Pick(Words)}");
                        writer.WriteEndObject();
                    }

                    writer.WriteEndArray();
                    writer.WriteNumber("revision", _random.Next(1, 400));
                    break;
                case "invoice":
                    writer.WriteNumber("amountCents", _random.Next(1_000, 5_000_000));
                    writer.WriteString("currency", _random.Next(3) == 0 ? "USD" : "EUR");
                    break;
                case "user":
                    writer.WriteString("method", _random.Next(4) == 0 ? "sso" : "password+totp");
                    writer.WriteBoolean("newDevice", _random.Next(10) == 0);
                    break;
                case "export":
                    writer.WriteNumber("rows", _random.Next(10, 250_000));
                    writer.WriteString("format", "csv");
                    break;
                default:
                    writer.WriteString("sessionId", "ses_" + Base36(16));
                    break;
            }

            writer.Flush();

            // "comment":"…"} adds 13 bytes around the text.
            var room = _dataBytes - (int)writer.BytesCommitted - 13;
            if (room > 0)
            {
                writer.WriteString("comment", Text(room));
            }

            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private string Text(int length)
    {
        var text = new StringBuilder(length + 16);
        while (text.Length < length)
        {
            if (text.Length > 0)
            {
                text.Append(' ');
            }

            text.Append(Pick(Words));
        }

        return text.ToString(0, length).TrimEnd();
    }

    private string Ip()
    {
        var roll = _random.Next(100);
        return roll switch
        {
            < 40 => $"203.0.113.{_random.Next(1, 255)}",
            < 65 => $"198.51.100.{_random.Next(1, 255)}",
            < 80 => $"10.{_random.Next(0, 255)}.{_random.Next(0, 255)}.{_random.Next(1, 255)}",
            _ => $"2001:db8:{_random.Next(0, 0xffff):x}:{_random.Next(0, 0xffff):x}::{_random.Next(1, 0xffff):x}",
        };
    }

    private string Pick(string[] values) => values[_random.Next(values.Length)];

    private string Base36(int length)
    {
        const string alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
        return string.Create(length, _random, (span, random) =>
        {
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = alphabet[random.Next(alphabet.Length)];
            }
        });
    }
}
