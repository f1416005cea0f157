using System.Buffers;
using System.CommandLine;
using System.Text;
using System.Text.Json;
using Atp.Core.Classification;
using Atp.Integrity;

namespace Atp.Cli.Verify;

/// <summary>
/// <c>atp verify events</c>: checks a verify-on-read response (<c>GET …/events?verify=true</c> or
/// <c>GET …/events/{id}?verify=true</c>) offline: the checkpoint's signature with the trusted keys, then for every
/// event its leaf hash recomputed from the event's JCS form and its inclusion proof against the checkpoint's root.
/// A response read with <c>pii:read</c> shows classified fields in clear and carries the leaf's tokens in each item's
/// <c>sealed</c> (JSON pointer → token): the tokens are put back before hashing, so what is verified is what the log
/// committed to; the clear text beside them cannot be checked without the tenant's keys.
/// </summary>
internal static class VerifyEventsCommand
{
    /// <summary>Largest response file accepted; the whole document is held in memory while it is checked.</summary>
    public const long MaxResponseBytes = 256L << 20;

    /// <summary>A progress line goes to standard error after every this many events.</summary>
    public const int ProgressEvery = 10_000;

    // Duplicate member names would let a reader and this check see different values: refuse them anywhere.
    // Depth: the response wraps an event in at most four levels, and an event's data may nest up to 64.
    private static readonly JsonDocumentOptions ResponseOptions = new() { MaxDepth = 72, AllowDuplicateProperties = false };

    public static Command Create()
    {
        var file = new Argument<FileInfo>("response-file") { Description = "Saved body of GET …/events?verify=true (a page of search results) or GET …/events/{id}?verify=true (one event)" };
        var keys = VerifyCommand.KeyOption();
        var origin = VerifyCommand.OriginOption();
        var command = new Command("events", "Verify every event of a verify-on-read response against its signed checkpoint.") { file, keys, origin };
        command.SetAction((parse, cancellationToken) => RunAsync(
            parse.GetValue(file)!,
            VerifyCommand.ParseKeys(parse.GetValue(keys)!),
            parse.GetValue(origin),
            parse.InvocationConfiguration.Output,
            parse.InvocationConfiguration.Error,
            cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(FileInfo file, List<NoteVerifier> trusted, string? expectedOrigin, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        using var document = await InputFiles.ReadJsonAsync(file, "response", MaxResponseBytes, ResponseOptions, cancellationToken).ConfigureAwait(false);
        var reader = new ResponseReader($"response file '{file.FullName}'");
        var response = reader.ReadShape(document.RootElement);
        if (response.PendingIndex is { } pending)
        {
            return await VerifyCommand.FailAsync(error, $"event at index {pending}: proof pending: the event is not yet covered by a signed checkpoint, so nothing was verified (ask again after the next checkpoint)").ConfigureAwait(false);
        }

        var opened = VerifyCommand.OpenCheckpoint(Encoding.UTF8.GetBytes(response.Checkpoint!), trusted, expectedOrigin, "checkpoint", reader.Describe(response.CheckpointPath));
        if (opened.Checkpoint is not { } checkpoint)
        {
            return await VerifyCommand.FailAsync(error, opened.Failure!).ConfigureAwait(false);
        }

        var seen = new Dictionary<ulong, int>();
        var leaf = new ArrayBufferWriter<byte>(1024);
        var sealedFields = 0;
        for (var k = 0; k < response.Entries.Count; k++)
        {
            var entry = reader.ReadEntry(response.Entries[k]);
            var label = response.IsSingle ? $"event at index {entry.Index}" : $"event at index {entry.Index} (item {k})";
            if (CheckEntry(entry, k, seen, leaf, checkpoint) is { } failure)
            {
                return await VerifyCommand.FailAsync(error, $"{label}: {failure}").ConfigureAwait(false);
            }

            sealedFields += entry.Sealed?.Count ?? 0;

            if ((k + 1) % ProgressEvery == 0)
            {
                await error.WriteLineAsync($"verified {k + 1} of {response.Entries.Count} events…").ConfigureAwait(false);
            }
        }

        await output.WriteLineAsync($"verified: {response.Entries.Count} events against checkpoint {checkpoint.Origin} size {checkpoint.Size}").ConfigureAwait(false);
        if (sealedFields > 0)
        {
            await output.WriteLineAsync($"{sealedFields} classified fields were verified as the sealed tokens the log holds (\"sealed\"); the clear values shown in their place were not checked (opening a token needs the tenant's keys)").ConfigureAwait(false);
        }
        return ExitCodes.Success;
    }

    /// <summary>
    /// Verifies one item of a verified page (<c>{index, leafHash, event, sealed?, inclusion}</c>, as search with
    /// verify=true and the subject listing serve it) against <paramref name="checkpoint"/>: null when it verifies, else
    /// why not. Unusable input (a missing or mistyped member) throws <see cref="CliInputException"/> naming
    /// <paramref name="source"/> and the item's <paramref name="path"/>. <paramref name="sealedFields"/> grows by the
    /// tokens put back before hashing.
    /// </summary>
    internal static string? CheckItem(string source, JsonElement item, string path, int position, Dictionary<ulong, int> seen, ArrayBufferWriter<byte> leaf, Checkpoint checkpoint, ref int sealedFields)
    {
        var entry = new ResponseReader(source).ReadItem(item, path);
        var failure = CheckEntry(entry, position, seen, leaf, checkpoint);
        if (failure is null)
        {
            sealedFields += entry.Sealed?.Count ?? 0;
        }

        return failure;
    }

    /// <summary>Why the entry does not verify against the checkpoint, or null when it does.</summary>
    private static string? CheckEntry(Entry entry, int position, Dictionary<ulong, int> seen, ArrayBufferWriter<byte> leaf, Checkpoint checkpoint)
    {
        if (!seen.TryAdd(entry.Index, position))
        {
            return $"index {entry.Index} already appeared as item {seen[entry.Index]}: a response cannot hold one log entry twice";
        }

        if (entry.Proof is not { } proof)
        {
            return "proof pending: the event is not yet covered by a signed checkpoint, so it was not verified";
        }

        leaf.ResetWrittenCount();
        try
        {
            if (entry.Sealed is { Count: > 0 } sealedFields)
            {
                // The leaf holds the tokens, not the clear values shown to a pii:read reader: hash what it holds.
                var withTokens = new ArrayBufferWriter<byte>(1024);
                if (SealedFields.TryPutBack(entry.Event, sealedFields, withTokens) is { } unusable)
                {
                    return unusable;
                }

                JsonCanonicalizer.Canonicalize(withTokens.WrittenMemory, leaf);
            }
            else
            {
                JsonCanonicalizer.Write(entry.Event, leaf);
            }
        }
        catch (JsonException e)
        {
            return $"the event has no RFC 8785 canonical form, so no log entry can hold it: {e.Message}";
        }

        var leafHash = MerkleHasher.HashLeaf(leaf.WrittenSpan);
        if (leafHash != entry.LeafHash)
        {
            return $"the event hashes to {leafHash.ToBase64()}, but the response names leaf hash {entry.LeafHash.ToBase64()}";
        }

        if (proof.LeafHash is { } proofLeafHash && proofLeafHash != leafHash)
        {
            return $"the event hashes to {leafHash.ToBase64()}, but its inclusion proof names leaf hash {proofLeafHash.ToBase64()}";
        }

        if (proof.Index != entry.Index)
        {
            return $"the inclusion proof is for index {proof.Index}, not {entry.Index}";
        }

        return VerifyCommand.CheckInclusion(entry.Index, proof.TreeSize, leafHash, proof.Hashes, checkpoint);
    }

    /// <summary>The response's checkpoint and its events, still unread; or, for a single unsealed event, its index.</summary>
    private sealed record Shape(bool IsSingle, string? Checkpoint, string CheckpointPath, IReadOnlyList<RawEntry> Entries, ulong? PendingIndex);

    /// <summary>One event object (<c>{index, leafHash, event}</c>) and where its inclusion proof is, if it has one.</summary>
    private sealed record RawEntry(JsonElement Item, string Path, JsonElement? Inclusion, string InclusionPath);

    private sealed record Entry(ulong Index, Hash LeafHash, JsonElement Event, Proof? Proof)
    {
        /// <summary>The item's <c>sealed</c> map (JSON pointer → token), present when it was read with <c>pii:read</c>.</summary>
        public List<KeyValuePair<string, string>>? Sealed { get; init; }
    }

    private sealed record Proof(ulong Index, ulong TreeSize, Hash? LeafHash, List<byte[]> Hashes);

    /// <summary>Reads the two response shapes; every missing or mistyped member is unusable input naming its JSON path.</summary>
    private sealed class ResponseReader(string source)
    {
        public string Describe(string path) => $"{source}: {(path.Length == 0 ? "the response" : path)}";

        /// <summary>One item of a page, with its inclusion proof when it has one.</summary>
        public Entry ReadItem(JsonElement item, string path)
        {
            Expect(item, JsonValueKind.Object, path);
            return ReadEntry(new RawEntry(item, path, OptionalMember(item, "inclusion", JsonValueKind.Object, path), $"{path}.inclusion"));
        }

        public Shape ReadShape(JsonElement root)
        {
            Expect(root, JsonValueKind.Object, string.Empty);
            var hasItems = root.TryGetProperty("items", out _);
            var hasEvent = root.TryGetProperty("event", out _);
            if (hasItems == hasEvent)
            {
                throw Unusable(string.Empty, hasItems
                    ? "has both \"items\" and \"event\""
                    : "has neither \"items\" (GET …/events?verify=true) nor \"event\" (GET …/events/{id}?verify=true)");
            }

            if (hasItems)
            {
                var items = Member(root, "items", JsonValueKind.Array, string.Empty);
                var entries = new List<RawEntry>(items.GetArrayLength());
                foreach (var item in items.EnumerateArray())
                {
                    var path = $"items[{entries.Count}]";
                    Expect(item, JsonValueKind.Object, path);
                    entries.Add(new RawEntry(item, path, OptionalMember(item, "inclusion", JsonValueKind.Object, path), $"{path}.inclusion"));
                }

                return new Shape(false, Member(root, "checkpoint", JsonValueKind.String, string.Empty).GetString(), "checkpoint", entries, null);
            }

            var single = Member(root, "event", JsonValueKind.Object, string.Empty);
            if (OptionalMember(root, "proof", JsonValueKind.Object, string.Empty) is not { } proof)
            {
                var index = Index(single, "event");
                return IsPending(root)
                    ? new Shape(true, null, string.Empty, [], index)
                    : throw Unusable(string.Empty, "has no \"proof\" (was it fetched with ?verify=true?)");
            }

            var checkpoint = Member(proof, "checkpoint", JsonValueKind.String, "proof").GetString();
            return new Shape(true, checkpoint, "proof.checkpoint", [new RawEntry(single, "event", Member(proof, "inclusion", JsonValueKind.Object, "proof"), "proof.inclusion")], null);
        }

        public Entry ReadEntry(RawEntry raw)
        {
            var index = Index(raw.Item, raw.Path);
            var leafHash = LeafHash(Member(raw.Item, "leafHash", JsonValueKind.String, raw.Path).GetString(), $"{raw.Path}.leafHash");
            var item = Member(raw.Item, "event", JsonValueKind.Object, raw.Path);
            var sealedFields = Sealed(raw.Item, raw.Path);
            if (raw.Inclusion is not { } inclusion)
            {
                return IsPending(raw.Item) ? new Entry(index, leafHash, item, null) { Sealed = sealedFields } : throw Unusable(raw.Path, "has no \"inclusion\" proof (was it fetched with ?verify=true?)");
            }

            InclusionProofFile parsed;
            try
            {
                parsed = inclusion.Deserialize(ProofJsonContext.Default.InclusionProofFile)!;
            }
            catch (JsonException e)
            {
                throw Unusable(raw.InclusionPath, $"is not an inclusion proof: {e.Message}");
            }

            if (parsed.Index is not { } proofIndex || parsed.TreeSize is not { } treeSize)
            {
                throw Unusable(raw.InclusionPath, "needs \"index\" and \"treeSize\"");
            }

            Hash? proofLeafHash = parsed.LeafHash is null ? null : LeafHash(parsed.LeafHash, $"{raw.InclusionPath}.leafHash");
            var hashes = ProofFiles.DecodeHashes(parsed.Hashes, Describe(raw.InclusionPath));
            return new Entry(index, leafHash, item, new Proof(proofIndex, treeSize, proofLeafHash, hashes)) { Sealed = sealedFields };
        }

        private List<KeyValuePair<string, string>>? Sealed(JsonElement item, string path)
        {
            if (OptionalMember(item, "sealed", JsonValueKind.Object, path) is not { } map)
            {
                return null;
            }

            var fields = new List<KeyValuePair<string, string>>();
            foreach (var field in map.EnumerateObject())
            {
                Expect(field.Value, JsonValueKind.String, $"{path}.sealed[\"{field.Name}\"]");
                fields.Add(KeyValuePair.Create(field.Name, field.Value.GetString()!));
            }

            return fields;
        }

        private static bool IsPending(JsonElement element) =>
            element.TryGetProperty("proofPending", out var pending) && pending.ValueKind == JsonValueKind.True;

        private ulong Index(JsonElement item, string path)
        {
            var value = Member(item, "index", JsonValueKind.Number, path);
            return value.TryGetUInt64(out var index) ? index : throw Unusable($"{path}.index", "is not a non-negative integer");
        }

        private Hash LeafHash(string? text, string path) =>
            Hash.TryParseBase64(text, out var hash) ? hash : throw Unusable(path, "is not standard base64 of 32 bytes");

        private JsonElement Member(JsonElement parent, string name, JsonValueKind kind, string path) =>
            OptionalMember(parent, name, kind, path) ?? throw Unusable(path, $"has no \"{name}\"");

        /// <summary>The member, or null when it is absent or JSON null; any other kind than <paramref name="kind"/> is unusable.</summary>
        private JsonElement? OptionalMember(JsonElement parent, string name, JsonValueKind kind, string path)
        {
            if (!parent.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
            {
                return null;
            }

            Expect(value, kind, path.Length == 0 ? name : $"{path}.{name}");
            return value;
        }

        private void Expect(JsonElement value, JsonValueKind kind, string path)
        {
            if (value.ValueKind != kind)
            {
                throw Unusable(path, $"is {Kind(value.ValueKind)}, not {Kind(kind)}");
            }
        }

        private CliInputException Unusable(string path, string problem) => new($"{Describe(path)} {problem}");

        private static string Kind(JsonValueKind kind) => kind switch
        {
            JsonValueKind.Object => "an object",
            JsonValueKind.Array => "an array",
            JsonValueKind.String => "a string",
            JsonValueKind.Number => "a number",
            JsonValueKind.True or JsonValueKind.False => "a boolean",
            _ => "null",
        };
    }
}
