using System.Buffers;
using System.Globalization;
using System.Text;
using Atp.Core.Events;
using Atp.Core.Tenants;
using Atp.Integrity;

namespace Atp.QueryBench;

/// <summary>
/// The value space of one generated tenant, derived from the seed alone: ~500 actors (users with names drawn from a
/// few hundred first and last names, services, API keys; activity skewed towards a few), 42 actions under 9 prefixes
/// with SaaS-like weights, 15 target types with many ids each (documents, invoices, comments, exports …).
/// </summary>
internal sealed class DataSetModel
{
    public const string TenantId = "bench";

    // (action, event type, weight ×10): document work dominates, as in most SaaS audit trails.
    private static readonly (string Action, string Type, int Weight)[] Actions =
    [
        ("document.view", "app.document", 150), ("document.update", "app.document", 200), ("document.create", "app.document", 50),
        ("document.delete", "app.document", 10), ("document.share", "app.document", 30), ("document.download", "app.document", 30),
        ("document.restore", "app.document", 5), ("document.comment", "app.document", 40),
        ("user.login", "security.auth", 100), ("user.logout", "security.auth", 40), ("user.mfa_challenge", "security.auth", 30),
        ("user.password_reset", "security.auth", 10), ("user.create", "admin.user", 5), ("user.update", "admin.user", 10),
        ("user.deactivate", "admin.user", 3),
        ("billing.invoice.create", "billing.invoice", 20), ("billing.invoice.approve", "billing.invoice", 15),
        ("billing.invoice.pay", "billing.invoice", 15), ("billing.invoice.void", "billing.invoice", 2),
        ("billing.invoice.send", "billing.invoice", 10), ("billing.subscription.create", "billing.subscription", 3),
        ("billing.subscription.upgrade", "billing.subscription", 3), ("billing.subscription.cancel", "billing.subscription", 1),
        ("project.create", "app.project", 10), ("project.archive", "app.project", 3), ("project.rename", "app.project", 5),
        ("project.member_add", "app.project", 10), ("project.member_remove", "app.project", 3),
        ("team.invite", "admin.membership", 10), ("team.role_assign", "admin.membership", 10),
        ("team.role_revoke", "admin.membership", 3), ("team.remove", "admin.membership", 2),
        ("settings.update", "admin.settings", 10), ("settings.sso_configure", "admin.settings", 1),
        ("settings.retention_update", "admin.settings", 1),
        ("api_key.create", "security.credentials", 2), ("api_key.rotate", "security.credentials", 3),
        ("api_key.revoke", "security.credentials", 1),
        ("export.request", "data.export", 10), ("export.download", "data.export", 10),
        ("security.alert_raised", "security.alert", 5), ("security.ip_blocked", "security.alert", 3),
    ];

    /// <summary>The action prefixes (the part before the first dot), as a search writes them: <c>document.*</c>.</summary>
    public static readonly string[] Prefixes = Actions.Select(a => a.Action[..(a.Action.IndexOf('.', StringComparison.Ordinal) + 1)]).Distinct().ToArray();

    public static readonly string[] TargetTypes =
    [
        "document", "folder", "comment", "user", "invoice", "customer", "subscription", "project", "team", "role",
        "workspace", "sso_connection", "retention_policy", "api_key", "export",
    ];

    public static readonly string[] ActorTypes = ["user", "service", "api_key"];

    private static readonly string[] Syllables =
    [
        "ka", "lo", "mi", "ra", "ne", "so", "ti", "va", "de", "lu", "ar", "en", "is", "or", "el", "ha", "jo", "be", "ri", "ma",
        "no", "se", "ta", "vi", "da", "le", "mo", "ru", "an", "ol",
    ];

    private static readonly string[] Words =
    [
        "quarterly", "review", "draft", "customer", "contract", "update", "policy", "approved", "pending", "region", "invoice",
        "renewal", "migration", "access", "budget", "forecast", "legal", "hold", "retention", "export", "team", "roadmap",
        "security", "audit", "release", "notes", "escalation", "priority", "account", "workspace", "onboarding", "pricing",
        "vendor", "incident", "board", "planning", "hiring", "support", "launch", "design",
    ];

    private static readonly string[] Extensions = ["docx", "xlsx", "pdf", "md", "pptx"];
    private static readonly string[] Roles = ["viewer", "editor", "admin", "billing-admin", "auditor", "owner"];
    private static readonly string[] UserAgents =
    [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "acme-sdk-python/3.2.1 (CPython 3.12; Linux)",
        "acme-sdk-go/1.14.0",
    ];

    private static readonly int TotalWeight = Actions.Sum(a => a.Weight);

    private readonly Party[] _actors;
    private readonly Party[] _users;
    private readonly string[] _customers;
    private readonly string[] _teams;
    private readonly string[] _projects;
    private readonly string[] _folders;
    private readonly string[] _apiKeys;
    private readonly int _seed;

    public DataSetModel(int seed)
    {
        _seed = seed;
        var random = new Random(seed);
        var firstNames = DistinctNames(random, 300, 2);
        var lastNames = DistinctNames(random, 300, 3);
        _users = Enumerable.Range(0, 430)
            .Select(_ => new Party("user", "usr_" + Base36(random, 10), $"{firstNames[random.Next(firstNames.Length)]} {lastNames[random.Next(lastNames.Length)]}"))
            .ToArray();
        var services = Enumerable.Range(0, 50)
            .Select(i => new Party("service", $"svc-{Words[i % Words.Length]}-{i / Words.Length + 1}", $"{Words[i % Words.Length]} worker"))
            .ToArray();
        _apiKeys = Enumerable.Range(0, 20).Select(_ => "key_" + Base36(random, 16)).ToArray();
        var keys = _apiKeys.Select((id, i) => new Party("api_key", id, $"integration {Words[(i * 7) % Words.Length]}")).ToArray();

        // Interleaved so the activity skew (low positions are busiest) reaches every actor type.
        _actors = [.. _users.Take(60), .. services.Take(10), .. keys.Take(5), .. _users.Skip(60), .. services.Skip(10), .. keys.Skip(5)];
        _customers = Enumerable.Range(0, 300).Select(_ => Capitalize(Syllable(random) + Syllable(random) + Syllable(random)) + (random.Next(2) == 0 ? " Ltd" : " GmbH")).ToArray();
        _teams = Enumerable.Range(0, 200).Select(i => $"{Words[i % Words.Length]} {Words[(i * 11 + 3) % Words.Length]}").ToArray();
        _projects = Enumerable.Range(0, 3000).Select(_ => $"{Words[random.Next(Words.Length)]} {Words[random.Next(Words.Length)]}").ToArray();
        _folders = Enumerable.Range(0, 5000).Select(_ => $"{Words[random.Next(Words.Length)]} {Words[random.Next(Words.Length)]}").ToArray();
    }

    public int ActorCount => _actors.Length;

    /// <summary>The one tenant of a data set.</summary>
    public static Tenant CreateTenant() => new(TenantId, "Query bench", Tenant.DefaultEdition, "westeu", new Residency(Residency.Strict, []), Tenant.Active, DateTimeOffset.UtcNow);

    /// <summary>
    /// The events with global numbers [first, first + count) of a data set of <paramref name="total"/> events; a
    /// pure function of the seed and the numbers, so concurrent callers produce the same data set in any order.
    /// occurredAt follows the event number over one year (ending at <paramref name="end"/>) with a few seconds of
    /// jitter and 1 % late arrivals (up to an hour).
    /// </summary>
    public EventDraft[] Batch(long first, int count, long total, DateTimeOffset end)
    {
        var random = new Random(unchecked((_seed * 1_000_003) + (int)(first / Math.Max(1, count))));
        var start = end.AddDays(-365);
        var span = (end - start).Ticks;
        var drafts = new EventDraft[count];
        for (var i = 0; i < count; i++)
        {
            var n = first + i;
            var occurredAt = start.AddTicks((long)(span * ((double)n / total)));
            occurredAt = random.Next(100) == 0 ? occurredAt.AddSeconds(-random.Next(60, 3600)) : occurredAt.AddMilliseconds(-random.Next(0, 5000));
            drafts[i] = Draft(random, occurredAt);
        }

        return drafts;
    }

    /// <summary>One event with the given occurredAt.</summary>
    public EventDraft Draft(Random random, DateTimeOffset occurredAt)
    {
        var (action, type) = PickAction(random);
        var actor = PickActor(random, action);
        var targets = Targets(random, action, actor);
        var roll = random.Next(100);
        var outcome = roll < 90 ? EventOutcome.Success : roll < 98 ? EventOutcome.Failure : EventOutcome.Unknown;
        var context = new EventContext(Ip(random), actor.Type == "service" ? "acme-internal/2.8 (+svc)" : UserAgents[random.Next(UserAgents.Length)], "req_" + Base36(random, 20));
        return new EventDraft(null, type, occurredAt, actor, action, targets, outcome, context, null) { CanonicalData = Data(random, action) };
    }

    private static (string Action, string Type) PickAction(Random random)
    {
        var roll = random.Next(TotalWeight);
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

    private Party PickActor(Random random, string action)
    {
        if (action.StartsWith("billing.invoice.", StringComparison.Ordinal) && random.Next(3) == 0)
        {
            return _actors[60]; // the invoicing service
        }

        // Skewed: a few actors produce most of the activity, every actor some.
        return _actors[(int)(Math.Pow(random.NextDouble(), 2.2) * _actors.Length)];
    }

    private Party[] Targets(Random random, string action, Party actor)
    {
        var prefix = action[..action.IndexOf('.', StringComparison.Ordinal)];
        switch (prefix)
        {
            case "document":
            {
                var doc = Skewed(random, 200_000, 2.0);
                var document = new Party("document", $"doc_{doc:x6}", $"{Words[doc % Words.Length]} {Words[(doc / 40) % Words.Length]} {doc % 997}.{Extensions[doc % Extensions.Length]}");
                var list = new List<Party>(3) { document };
                if (random.Next(3) == 0)
                {
                    var folder = doc % _folders.Length;
                    list.Add(new Party("folder", $"fld_{folder:x4}", _folders[folder]));
                }

                if (action == "document.share")
                {
                    list.Add(User(random));
                }
                else if (action == "document.comment")
                {
                    list.Add(new Party("comment", "cmt_" + Base36(random, 12), null));
                }

                return [.. list];
            }

            case "user":
                return action is "user.login" or "user.logout" or "user.mfa_challenge" ? [] : [User(random)];
            case "billing":
            {
                var customer = Skewed(random, _customers.Length, 1.5);
                var customerParty = new Party("customer", $"cus_{customer:x4}", _customers[customer]);
                return action.StartsWith("billing.invoice.", StringComparison.Ordinal)
                    ? [new Party("invoice", $"inv_{Skewed(random, 150_000, 1.2):D6}", null), customerParty]
                    : [new Party("subscription", $"sub_{customer * 16 + random.Next(16):x5}", null), customerParty];
            }

            case "project":
            {
                var project = Skewed(random, _projects.Length, 1.8);
                var projectParty = new Party("project", $"prj_{project:x4}", _projects[project]);
                return action is "project.member_add" or "project.member_remove" ? [projectParty, User(random)] : [projectParty];
            }

            case "team":
            {
                var team = random.Next(_teams.Length);
                return [new Party("team", $"team_{team:D3}", _teams[team]), User(random), new Party("role", Roles[random.Next(Roles.Length)], null)];
            }

            case "settings":
                var workspace = new Party("workspace", $"ws_{random.Next(3)}", "Main workspace");
                return action switch
                {
                    "settings.sso_configure" => [workspace, new Party("sso_connection", $"sso_{random.Next(3)}", "Okta")],
                    "settings.retention_update" => [workspace, new Party("retention_policy", $"ret_{random.Next(5)}", null)],
                    _ => [workspace],
                };
            case "api_key":
                return [new Party("api_key", _apiKeys[random.Next(_apiKeys.Length)], null)];
            case "export":
                return [new Party("export", "exp_" + Base36(random, 10), null)];
            case "security":
                return [actor.Type == "user" ? actor : User(random)];
            default:
                return [];
        }
    }

    private Party User(Random random) => _users[Skewed(random, _users.Length, 1.5)];

    private static int Skewed(Random random, int count, double power) => (int)(Math.Pow(random.NextDouble(), power) * count);

    // A small data object (≈100–300 B) written in RFC 8785 form directly: members in code-unit order, integers, plain strings.
    private static byte[] Data(Random random, string action)
    {
        var output = new ArrayBufferWriter<byte>(320);
        var members = new SortedDictionary<string, object>(StringComparer.Ordinal)
        {
            ["source"] = random.Next(4) switch { 0 => "web", 1 => "mobile", 2 => "api", _ => "sync" },
            ["sessionId"] = "ses_" + Base36(random, 16),
        };
        switch (action)
        {
            case "document.update":
                members["field"] = Words[random.Next(Words.Length)];
                members["from"] = $"{Words[random.Next(Words.Length)]} {Words[random.Next(Words.Length)]}";
                members["to"] = $"{Words[random.Next(Words.Length)]} {Words[random.Next(Words.Length)]}";
                members["revision"] = random.Next(1, 400);
                break;
            case var a when a.StartsWith("billing.", StringComparison.Ordinal):
                members["amountCents"] = random.Next(1_000, 5_000_000);
                members["currency"] = random.Next(3) == 0 ? "USD" : "EUR";
                break;
            case var a when a.StartsWith("user.", StringComparison.Ordinal):
                members["method"] = random.Next(4) == 0 ? "sso" : "password totp";
                members["newDevice"] = random.Next(10) == 0 ? 1 : 0;
                break;
            case var a when a.StartsWith("export.", StringComparison.Ordinal):
                members["rows"] = random.Next(10, 250_000);
                members["format"] = "csv";
                break;
            default:
                break;
        }

        var comment = new StringBuilder();
        for (var words = random.Next(0, 14); words > 0; words--)
        {
            comment.Append(comment.Length == 0 ? "" : " ").Append(Words[random.Next(Words.Length)]);
        }

        if (comment.Length > 0)
        {
            members["comment"] = comment.ToString();
        }

        output.Write("{"u8);
        var first = true;
        foreach (var (name, value) in members)
        {
            if (!first)
            {
                output.Write(","u8);
            }

            first = false;
            JsonCanonicalizer.WriteString(name, output);
            output.Write(":"u8);
            if (value is int number)
            {
                output.Write(Encoding.ASCII.GetBytes(number.ToString(CultureInfo.InvariantCulture)));
            }
            else
            {
                JsonCanonicalizer.WriteString((string)value, output);
            }
        }

        output.Write("}"u8);
        return output.WrittenSpan.ToArray();
    }

    private static string Ip(Random random) => random.Next(100) switch
    {
        < 40 => $"203.0.113.{random.Next(1, 255)}",
        < 65 => $"198.51.100.{random.Next(1, 255)}",
        < 80 => $"10.{random.Next(0, 255)}.{random.Next(0, 255)}.{random.Next(1, 255)}",
        _ => $"2001:db8:{random.Next(0, 0xffff):x}:{random.Next(0, 0xffff):x}::{random.Next(1, 0xffff):x}",
    };

    private static string[] DistinctNames(Random random, int count, int syllables)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        while (names.Count < count)
        {
            var name = new StringBuilder();
            for (var i = 0; i < syllables; i++)
            {
                name.Append(Syllable(random));
            }

            names.Add(Capitalize(name.ToString()));
        }

        return [.. names.Order(StringComparer.Ordinal)];
    }

    private static string Syllable(Random random) => Syllables[random.Next(Syllables.Length)];

    private static string Capitalize(string value) => char.ToUpperInvariant(value[0]) + value[1..];

    private static string Base36(Random random, int length)
    {
        const string alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
        return string.Create(length, random, (span, r) =>
        {
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = alphabet[r.Next(alphabet.Length)];
            }
        });
    }
}
