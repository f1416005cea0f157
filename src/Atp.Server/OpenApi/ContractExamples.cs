using System.Text.Json.Nodes;
using Atp.Server.Events;
using Atp.Server.Export;
using Atp.Server.Gateway;
using Atp.Server.Integrity;
using Atp.Server.Policy;
using Atp.Server.Schemas;
using Atp.Server.Tenants;
using Microsoft.AspNetCore.Mvc;

namespace Atp.Server.OpenApi;

/// <summary>
/// One example per body, taken from a real run of the README walkthrough (tenant acme, Jane editing doc-8812), so the
/// hashes, proof and checkpoint agree with each other and with the leaf.
/// </summary>
internal static class ContractExamples
{
    private const string LeafJson = """
        {"action":"document.update","actor":{"id":"u-17","name":"Jane","type":"user"},"context":{"ip":"203.0.113.42"},
         "data":{"field":"title"},"id":"01a24d5a-0c41-72f5-8947-c92611223a06","occurredAt":"2026-11-26T10:15:30Z","outcome":"success",
         "receivedAt":"2026-12-06T21:54:36.7378481Z","targets":[{"id":"doc-8812","type":"document"}],"type":"app.audit"}
        """;

    private const string EventJson = """
        {"type":"app.audit","occurredAt":"2026-11-26T10:15:30Z","actor":{"type":"user","id":"u-17","name":"Jane"},
         "action":"document.update","targets":[{"type":"document","id":"doc-8812"}],"outcome":"success",
         "context":{"ip":"203.0.113.42"},"data":{"field":"title"}}
        """;

    private const string PaymentSchema = """
        {"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["amount","currency"],
         "properties":{"amount":{"type":"number","minimum":0},"currency":{"enum":["EUR","USD"]},"orderId":{"type":"string","maxLength":64}}}
        """;

    private const string Checkpoint = "atp.local/local-dev-1/acme\n2\nm3BrvMOU9kKxjPYDEVtWGdR7vq5I38lQ1qShdHCJuQU=\n\n"
        + "— atp.local/local-dev-1 lyNS5qBNovcFCeOBmHIsuaAKc2MdK+O03BQDNQFiDEUx0rnlbRCsOC6oPSa98+wgSwJuRD9HvcrSBwBSueJ30OqSiwc=\n";

    private const string Inclusion = """
        {"index":0,"treeSize":2,"leafHash":"5WVc1fCNODNIPFNr4qAhA5jp2cUJ5n//SPx/Qv9hnug=","hashes":["N6VSy3tRR3BlKR1wz3Y+ZoZBjkUajlhsPcwpp6Lc/PA="]}
        """;

    private const string ExportJson = """
        {"id":"exp_4f0c5e2b9a7d1c3e5f6a7b","tenant":"acme","format":"ndjson","state":"succeeded","fromIndex":0,"toIndex":2,"treeSize":2,
         "complete":false,"filters":{"actor":"u-17","action":"document.*"},"events":2,"bytes":10240,"percent":100,
         "createdAt":"2026-12-06T21:55:00+00:00","expiresAt":"2026-12-13T21:55:00+00:00","finishedAt":"2026-12-06T21:55:01+00:00",
         "sha256":"9f2c1e4b6a8d0f3e5c7b9a1d2e4f6a8c0b2d4e6f8a0c2e4f6b8d0a2c4e6f8b0d"}
        """;

    private const string PolicyVersionJson = """
        {"version":2,"document":{"requireSignedRequests":true,"requireRegisteredTypes":null,"classification":{"pii":["/data/email"],"secret":[],"subjectTargetType":null},"retention":null,"requireErasureApproval":null},"proposalId":"pp_5b0e8f1c2d3a4b5c6d7e8f90",
         "proposedBy":"alice@example.com","approvedBy":"oidc:https://login.example.com#u-4711","appliedAt":"2026-12-07T09:12:00+00:00"}
        """;

    private const string HoldScopeJson = """
        {"eventTypes":["app.audit"],"targetId":"doc-8812","from":"2026-01-01T00:00:00+00:00","until":"2027-01-01T00:00:00+00:00"}
        """;

    private const string ErasureRequestJson = """
        {"id":"era_m4n6p8r2t4v6x8z3b5d7f2h4j6","state":"pending","subjectKeyId":"q3dE6cUq0vH4bTqz2Yl3xw","reason":"GDPR art. 17 request #4711",
         "requestedBy":"dpo@example.com","createdAt":"2026-12-07T09:00:00+00:00","expiresAt":"2026-12-14T09:00:00+00:00"}
        """;

    private const string LegalHoldJson = "{\"id\":\"hold_k3m5q7s2u4w6y8a3c5e7g2i4k6\",\"scope\":" + HoldScopeJson
        + ",\"reason\":\"Litigation hold, matter 2026-CV-0815\",\"issuer\":\"counsel@example.com\",\"createdAt\":\"2026-12-07T09:00:00+00:00\",\"active\":true}";

    private const string PolicyProposalJson = """
        {"id":"pp_5b0e8f1c2d3a4b5c6d7e8f90","baseVersion":1,"document":{"requireSignedRequests":true,"requireRegisteredTypes":null,"classification":{"pii":["/data/email"],"secret":[],"subjectTargetType":null},"retention":null,"requireErasureApproval":null},
         "reason":"SOC 2 CC6.1: signed requests for every integration","state":"pending","proposedBy":"alice@example.com",
         "createdAt":"2026-12-07T09:00:00+00:00","expiresAt":"2026-12-14T09:00:00+00:00"}
        """;

    private static readonly Dictionary<Type, string> Examples = new()
    {
        [typeof(CreateTenantRequest)] = """{"id":"acme","name":"Acme Corp","edition":"default","homeRegion":"local","residency":{"mode":"strict","allowedRegions":[]}}""",
        [typeof(TenantResponse)] = """
            {"id":"acme","name":"Acme Corp","edition":"default","homeRegion":"local","residency":{"mode":"strict","allowedRegions":[]},
             "status":"active","createdAt":"2026-12-06T21:54:35.8343582+00:00","origin":"atp.local/local-dev-1/acme",
             "settings":{"requireSignedRequests":false,"ingestPerSecond":50,"queryPerSecond":30,"maxStoredEvents":0,"maxStoredBytes":0},
             "usage":{"storedEvents":1200,"storedBytes":734003}}
            """,
        [typeof(UpdateTenantRequest)] = """{"status":"active","requireSignedRequests":true,"requireRegisteredTypes":false,"limits":{"ingestPerSecond":100,"queryPerSecond":null}}""",
        [typeof(CreateApiKeyRequest)] = """{"name":"backend","scopes":["events:write","events:read"],"expiresAt":"2027-11-26T00:00:00Z","signing":false}""",
        [typeof(CreatePlatformKeyRequest)] = """{"name":"ops on-call","expiresAt":"2027-06-01T00:00:00Z"}""",
        [typeof(RotateApiKeyRequest)] = """{"overlapSeconds":86400,"expiresAt":"2027-11-26T00:00:00Z"}""",
        [typeof(ApiKeyResponse)] = """
            {"id":"key_176bd1d3646bb4d8","key":"atp_3vQ8s…shown-once…","name":"backend","scopes":["events:write","events:read"],
             "tenant":"acme","expiresAt":"2027-11-26T00:00:00+00:00"}
            """,
        [typeof(ApiKeyListResponse)] = """
            {"items":[{"id":"key_176bd1d3646bb4d8","name":"backend","scopes":["events:write","events:read"],"signing":false,
             "createdAt":"2026-12-06T21:54:35.8343582+00:00","expiresAt":"2027-11-26T00:00:00+00:00","status":"active"}]}
            """,
        [typeof(KekStatusResponse)] = """
            {"currentKekId":"5c0ffee1","keks":[{"id":"5c0ffee1","current":true,"known":true,"sealedSecrets":12},
             {"id":"00000000","current":false,"known":true,"sealedSecrets":0}],"legacyFormatSecrets":0,"unreadableSecrets":0}
            """,
        [typeof(KekRewrapResponse)] = """
            {"currentKekId":"5c0ffee1","rewrapped":12,"changedMeanwhile":0,"unreadable":0,
             "keks":[{"id":"5c0ffee1","current":true,"known":true,"sealedSecrets":12},{"id":"00000000","current":false,"known":true,"sealedSecrets":0}]}
            """,
        [typeof(EventInput)] = EventJson,
        [typeof(EventBatch)] = "{\"events\":[" + EventJson + """
            ,{"type":"app.audit","occurredAt":"2026-11-26T10:16:02Z","actor":{"type":"user","id":"u-17"},
              "action":"document.share","targets":[{"type":"document","id":"doc-8812"},{"type":"user","id":"u-99"}]}]}
            """,
        [typeof(ReceiptsResponse)] = """
            {"receipts":[{"id":"01a24d5a-0c41-72f5-8947-c92611223a06","index":0,"leafHash":"5WVc1fCNODNIPFNr4qAhA5jp2cUJ5n//SPx/Qv9hnug="},
             {"id":"01a24d5a-0c41-720f-a72f-247533a015b8","index":1,"leafHash":"N6VSy3tRR3BlKR1wz3Y+ZoZBjkUajlhsPcwpp6Lc/PA="}]}
            """,
        [typeof(EventResponse)] = "{\"event\":{\"index\":0,\"leafHash\":\"5WVc1fCNODNIPFNr4qAhA5jp2cUJ5n//SPx/Qv9hnug=\",\"event\":" + LeafJson
            + "},\"proof\":{\"checkpoint\":" + System.Text.Json.JsonSerializer.Serialize(Checkpoint) + ",\"inclusion\":" + Inclusion + "}}",
        [typeof(SearchResponse)] = "{\"items\":[{\"index\":0,\"leafHash\":\"5WVc1fCNODNIPFNr4qAhA5jp2cUJ5n//SPx/Qv9hnug=\",\"event\":" + LeafJson
            + ",\"inclusion\":" + Inclusion + "}],\"nextCursor\":\"AQAAAAAAAAAAAgjfS6ZF8V0AAAAAAAAAAAH_u7HV5B0OUSUDvt1uKx5QuuXY6znJVvxD1IMswY-KAQ\",\"checkpoint\":"
            + System.Text.Json.JsonSerializer.Serialize(Checkpoint) + ",\"snapshot\":2}",
        [typeof(Subjects.SubjectEventsResponse)] = "{\"subject\":\"u-17\",\"items\":[{\"index\":0,\"leafHash\":\"5WVc1fCNODNIPFNr4qAhA5jp2cUJ5n//SPx/Qv9hnug=\",\"event\":" + LeafJson
            + ",\"inclusion\":" + Inclusion + "}],\"nextCursor\":null,\"checkpoint\":" + System.Text.Json.JsonSerializer.Serialize(Checkpoint) + ",\"snapshot\":2}",
        [typeof(ProjectionStatusResponse)] = """{"projectedSize":2,"treeSize":2,"complete":true,"deadLetters":0,"rebuilding":false}""",
        [typeof(DeadLettersResponse)] = """
            {"deadLetters":[{"index":3,"error":"the stored entry is not valid JSON (JsonException at byte 17)","firstSeen":"2026-12-06T21:54:36+00:00",
             "lastSeen":"2026-12-06T21:55:36+00:00","attempts":2}]}
            """,
        [typeof(DeadLetterRetryResponse)] = """{"projected":1,"remaining":0}""",
        [typeof(InclusionProofResponse)] = Inclusion,
        [typeof(ConsistencyProofResponse)] = """{"from":1,"to":2,"hashes":["N6VSy3tRR3BlKR1wz3Y+ZoZBjkUajlhsPcwpp6Lc/PA="]}""",
        [typeof(KeysResponse)] = """{"keys":[{"name":"atp.local/local-dev-1","verifierKey":"atp.local/local-dev-1+972352e6+AUbXFfRA9QgCSeqK+N9V6PuHJaPAkInI+kWb7cq2KzGj","status":"active","keyId":"972352e6","notBefore":"2026-12-06T21:54:30+00:00"}]}""",
        [typeof(RotateSigningKeyRequest)] = """{"overlapSeconds":604800}""",
        [typeof(CreateExportRequest)] = """{"format":"ndjson","fromIndex":0,"toIndex":2,"filters":{"actor":"u-17","action":"document.*"}}""",
        [typeof(ExportResponse)] = ExportJson,
        [typeof(ExportListResponse)] = "{\"items\":[" + ExportJson + "],\"nextCursor\":null}",
        [typeof(RegisterSchemaRequest)] = "{\"schema\":" + PaymentSchema + ",\"compatibility\":\"BACKWARD\"}",
        [typeof(SetCompatibilityRequest)] = """{"compatibility":"FULL_TRANSITIVE"}""",
        [typeof(Erasure.ErasureRequest)] = """{"subject":"u-17","reason":"GDPR art. 17 request #4711"}""",
        [typeof(Holds.HoldScopeDto)] = HoldScopeJson,
        [typeof(Holds.PlaceHoldRequest)] = "{\"scope\":" + HoldScopeJson + ",\"reason\":\"Litigation hold, matter 2026-CV-0815\"}",
        [typeof(Holds.ReleaseHoldRequest)] = """{"reason":"Matter 2026-CV-0815 settled; counsel released the hold"}""",
        [typeof(Holds.LegalHoldDto)] = LegalHoldJson,
        [typeof(Holds.LegalHoldListResponse)] = "{\"items\":[" + LegalHoldJson + "]}",
        [typeof(Erasure.ErasureResponse)] = """{"subjectKeyId":"q3dE6cUq0vH4bTqz2Yl3xw","keyDestroyed":true,"filesScrubbed":true,"tombstone":{"id":"01a24d5b-1f20-7c11-9a3e-5d2f0b7c9e11","index":3,"leafHash":"N6VSy3tRR3BlKR1wz3Y+ZoZBjkUajlhsPcwpp6Lc/PA="},"requestId":"era_m4n6p8r2t4v6x8z3b5d7f2h4j6"}""",
        [typeof(Erasure.ErasureRequestDto)] = ErasureRequestJson,
        [typeof(Erasure.ErasureRequestListResponse)] = "{\"items\":[" + ErasureRequestJson + "]}",
        [typeof(Erasure.RejectErasureRequest)] = """{"reason":"The requester's identity could not be verified"}""",
        [typeof(SchemaVersionResponse)] = "{\"type\":\"payment.captured\",\"version\":2,\"compatibility\":\"BACKWARD\",\"schema\":" + PaymentSchema + ",\"createdAt\":\"2026-12-06T21:54:35.8343582+00:00\"}",
        [typeof(SchemaTypeResponse)] = "{\"type\":\"payment.captured\",\"compatibility\":\"BACKWARD\",\"latestVersion\":2,\"versions\":[1,2],\"schema\":" + PaymentSchema + ",\"createdAt\":\"2026-12-06T21:54:35.8343582+00:00\"}",
        [typeof(SchemaTypeListResponse)] = """{"items":[{"type":"payment.captured","compatibility":"BACKWARD","latestVersion":2}]}""",
        [typeof(CompatibilityResponse)] = """{"type":"payment.captured","compatibility":"FULL_TRANSITIVE","latestVersion":2}""",
        [typeof(ProposePolicyRequest)] = """{"changes":{"requireSignedRequests":true},"reason":"SOC 2 CC6.1: signed requests for every integration"}""",
        [typeof(RejectProposalRequest)] = """{"reason":"wait until the billing integration signs its requests"}""",
        [typeof(PolicyDocumentDto)] = """{"requireSignedRequests":true,"requireRegisteredTypes":null,"classification":{"pii":["/data/email","/data/customer/address"],"secret":["/data/apiToken"],"subjectTargetType":"customer"},"retention":{"days":400,"types":{"app.debug":30}},"requireErasureApproval":true}""",
        [typeof(ClassificationDto)] = """{"pii":["/data/email","/data/customer/address"],"secret":["/data/apiToken"],"subjectTargetType":"customer"}""",
        [typeof(Retention.RetentionRunResponse)] = """{"policyVersion":3,"purged":1840,"retainedByHold":12,"purgeRecords":[{"index":52113,"id":"01a24d5c-2e31-7d22-8b4f-6e3a1c8d0f22","from":0,"to":9999,"count":1840,"retainedByHold":12}],"filesScrubbed":true}""",
        [typeof(Retention.PurgeRecordSummary)] = """{"index":52113,"id":"01a24d5c-2e31-7d22-8b4f-6e3a1c8d0f22","from":0,"to":9999,"count":1840,"retainedByHold":12}""",
        [typeof(Retention.PurgeRecordDto)] = """{"index":52113,"id":"01a24d5c-2e31-7d22-8b4f-6e3a1c8d0f22","from":0,"to":9999,"count":1840,"policyVersion":3,"purgedAt":"2026-12-07T10:00:00+00:00"}""",
        [typeof(RetentionDto)] = """{"days":400,"types":{"app.debug":30}}""",
        [typeof(PolicyVersionDto)] = PolicyVersionJson,
        [typeof(PolicyProposalDto)] = PolicyProposalJson,
        [typeof(PolicyHistoryDto)] = """{"versions":[{"version":1,"document":{"requireSignedRequests":null,"requireRegisteredTypes":null,"classification":null,"retention":null,"requireErasureApproval":null},"appliedAt":"2026-12-06T21:54:35+00:00"}],"proposals":[]}""",
        [typeof(PolicyResponse)] = "{\"active\":" + PolicyVersionJson + ",\"pending\":[],\"history\":{\"versions\":[{\"version\":1,\"document\":{\"requireSignedRequests\":null,\"requireRegisteredTypes\":null,\"classification\":null,\"retention\":null,\"requireErasureApproval\":null},\"appliedAt\":\"2026-12-06T21:54:35+00:00\"}],\"proposals\":[]}}",
        [typeof(ProblemDetails)] = """
            {"type":"https://atp.dev/problems/validation","title":"The request is not valid","status":400,
             "detail":"1 of 2 events are not valid; nothing was stored.","errors":[{"index":1,"pointer":"/occurredAt","detail":"is required"}],
             "requestId":"0HN8QK5N6UAVR:00000001","traceId":"4bf92f3577b34da6a3ce929d0e0e4736"}
            """,
    };

    /// <summary>A fresh node each time: a node belongs to one parent, and schemas are built more than once.</summary>
    public static JsonNode? For(Type type) => Examples.TryGetValue(type, out var json) ? JsonNode.Parse(json) : null;

    public static JsonNode Leaf() => JsonNode.Parse(LeafJson)!;
}
