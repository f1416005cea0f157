using System.Text.Json.Nodes;
using Atp.Server.Events;
using Atp.Server.Integrity;
using Atp.Server.Tenants;
using Microsoft.AspNetCore.Mvc;

namespace Atp.Server.OpenApi;

/// <summary>One example per body, in the words of the README walkthrough (tenant acme, Jane editing doc-8812).</summary>
internal static class ContractExamples
{
    private const string LeafJson = """
        {"action":"document.update","actor":{"id":"u-17","name":"Jane","type":"user"},"context":{"ip":"203.0.113.42"},
         "data":{"field":"title"},"id":"0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b","occurredAt":"2026-11-26T10:15:30Z","outcome":"success",
         "receivedAt":"2026-11-26T10:15:30.412Z","targets":[{"id":"doc-8812","type":"document"}],"type":"app.audit"}
        """;

    private const string EventJson = """
        {"type":"app.audit","occurredAt":"2026-11-26T10:15:30Z","actor":{"type":"user","id":"u-17","name":"Jane"},
         "action":"document.update","targets":[{"type":"document","id":"doc-8812"}],"outcome":"success",
         "context":{"ip":"203.0.113.42"},"data":{"field":"title"}}
        """;

    private const string Checkpoint = "atp.local/local-dev-1/acme\n2\nq3Wv0eJ2b8mS2c1o6h9XjVtq3R7rX2yq0Jb2o8rY4Xc=\n\n— atp.local/local-dev-1 AbCd1234+ExampleSignatureBase64==\n";

    private const string Inclusion = """
        {"index":1,"treeSize":2,"leafHash":"n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=","hashes":["bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0="]}
        """;

    private static readonly Dictionary<Type, string> Examples = new()
    {
        [typeof(CreateTenantRequest)] = """{"id":"acme","name":"Acme Corp","edition":"default","homeRegion":"local","residency":{"mode":"strict","allowedRegions":[]}}""",
        [typeof(TenantResponse)] = """
            {"id":"acme","name":"Acme Corp","edition":"default","homeRegion":"local","residency":{"mode":"strict","allowedRegions":[]},
             "status":"active","createdAt":"2026-11-26T10:00:00+00:00","origin":"atp.local/local-dev-1/acme",
             "settings":{"requireSignedRequests":false,"ingestPerSecond":50,"queryPerSecond":30}}
            """,
        [typeof(UpdateTenantRequest)] = """{"status":"active","requireSignedRequests":true,"limits":{"ingestPerSecond":100,"queryPerSecond":null}}""",
        [typeof(CreateApiKeyRequest)] = """{"name":"backend","scopes":["events:write","events:read"],"expiresAt":"2027-11-26T00:00:00Z","signing":false}""",
        [typeof(RotateApiKeyRequest)] = """{"overlapSeconds":86400,"expiresAt":"2027-11-26T00:00:00Z"}""",
        [typeof(ApiKeyResponse)] = """
            {"id":"key_5f0c2a9e1b7d3c48","key":"atp_3vQ8s…shown-once…","name":"backend","scopes":["events:write","events:read"],
             "tenant":"acme","expiresAt":"2027-11-26T00:00:00+00:00"}
            """,
        [typeof(ApiKeyListResponse)] = """
            {"items":[{"id":"key_5f0c2a9e1b7d3c48","name":"backend","scopes":["events:write","events:read"],"signing":false,
             "createdAt":"2026-11-26T10:00:00+00:00","expiresAt":"2027-11-26T00:00:00+00:00","status":"active"}]}
            """,
        [typeof(EventInput)] = EventJson,
        [typeof(EventBatch)] = "{\"events\":[" + EventJson + """
            ,{"type":"app.audit","occurredAt":"2026-11-26T10:16:02Z","actor":{"type":"user","id":"u-17"},
              "action":"document.share","targets":[{"type":"document","id":"doc-8812"},{"type":"user","id":"u-99"}]}]}
            """,
        [typeof(ReceiptsResponse)] = """
            {"receipts":[{"id":"0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b","index":0,"leafHash":"n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="},
             {"id":"0193a1b2-7c3e-7a01-9c2d-41f0e5d6a7b8","index":1,"leafHash":"bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0="}]}
            """,
        [typeof(EventResponse)] = "{\"event\":{\"index\":0,\"leafHash\":\"n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=\",\"event\":" + LeafJson
            + "},\"proof\":{\"checkpoint\":" + System.Text.Json.JsonSerializer.Serialize(Checkpoint) + ",\"inclusion\":" + Inclusion.Replace("\"index\":1", "\"index\":0", StringComparison.Ordinal) + "}}",
        [typeof(SearchResponse)] = "{\"items\":[{\"index\":0,\"leafHash\":\"n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=\",\"event\":" + LeafJson
            + "}],\"nextCursor\":\"eyJ2IjoxLCJzIjoyLCJhIjoxfQ.c2lnbmF0dXJl\"}",
        [typeof(ProjectionStatusResponse)] = """{"projectedSize":2,"treeSize":2}""",
        [typeof(InclusionProofResponse)] = Inclusion,
        [typeof(ConsistencyProofResponse)] = """{"from":1,"to":2,"hashes":["bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0="]}""",
        [typeof(KeysResponse)] = """{"keys":[{"name":"atp.local/local-dev-1","verifierKey":"atp.local/local-dev-1+1a2b3c4d+AQ…","status":"active"}]}""",
        [typeof(ProblemDetails)] = """
            {"type":"https://atp.dev/problems/validation","title":"The request is not valid","status":400,
             "detail":"1 of 2 events are not valid; nothing was stored.","errors":[{"index":1,"pointer":"/occurredAt","detail":"is required"}]}
            """,
    };

    /// <summary>A fresh node each time: a node belongs to one parent, and schemas are built more than once.</summary>
    public static JsonNode? For(Type type) => Examples.TryGetValue(type, out var json) ? JsonNode.Parse(json) : null;

    public static JsonNode Leaf() => JsonNode.Parse(LeafJson)!;
}
