using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Atp.Integrity;

namespace Atp.Server.Tests;

public sealed class LogApiTests : AcmeServerTests
{
    [Fact]
    public async Task Verifier_keys_are_public_and_sign_the_checkpoint()
    {
        using var anonymous = Server.ClientWithKey(null);
        var keys = await anonymous.GetFromJsonAsync<JsonElement>("/v1/log/keys");
        var key = keys.GetProperty("keys")[0];
        Assert.Equal("atp.test/test-cell-1", key.GetProperty("name").GetString());
        Assert.Equal("active", key.GetProperty("status").GetString());

        await Post(3);
        var note = await ServerFixture.WaitForCheckpointAsync(Acme, "acme", 3);
        var response = await Acme.GetAsync("/v1/tenants/acme/log/checkpoint");

        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        var result = Checkpoint.Open(Encoding.UTF8.GetBytes(note), [NoteVerifier.Parse(key.GetProperty("verifierKey").GetString()!)], out var checkpoint);
        Assert.True(result.IsValid, result.Failure);
        Assert.Equal("atp.test/test-cell-1/acme", checkpoint!.Origin);
        Assert.Equal(3UL, checkpoint.Size);
    }

    [Fact]
    public async Task An_empty_log_gets_a_size_0_checkpoint_with_the_empty_root()
    {
        var note = await ServerFixture.WaitForCheckpointAsync(Acme, "acme", 0);
        Assert.True(SignedNote.TryParse(note, out var signed, out _));
        Assert.True(Checkpoint.TryParse(signed.Text, out var checkpoint, out _));
        Assert.Equal(0UL, checkpoint.Size);
        Assert.Equal(MerkleHasher.EmptyRoot, checkpoint.Root);
    }

    [Fact]
    public async Task Inclusion_proofs_verify_for_every_entry_and_bad_arguments_are_400()
    {
        await Post(11);
        var checkpoint = ProofJson.Checkpoint(await ServerFixture.WaitForCheckpointAsync(Acme, "acme", 11));

        for (var i = 0UL; i < checkpoint.Size; i++)
        {
            var proof = await Acme.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/log/proof/inclusion?index={i}");
            var leaf = await Acme.GetByteArrayAsync($"/v1/tenants/acme/log/entries/{i}");
            Assert.Equal(checkpoint.Size, proof.GetProperty("treeSize").GetUInt64());
            Assert.Equal(MerkleHasher.HashLeaf(leaf).ToBase64(), proof.GetProperty("leafHash").GetString());
            Assert.True(InclusionProof.Verify(i, checkpoint.Size, MerkleHasher.HashLeaf(leaf), ProofJson.Hashes(proof), checkpoint.Root).IsValid);
        }

        var small = await Acme.GetFromJsonAsync<JsonElement>("/v1/tenants/acme/log/proof/inclusion?index=2&size=5");
        Assert.Equal(5UL, small.GetProperty("treeSize").GetUInt64());

        foreach (var query in new[] { "index=11", "index=5&size=5", "index=1&size=999", "index=-1", "index=x", "", "index=1&size=abc" })
        {
            await ProblemAssert.IsProblemAsync(await Acme.GetAsync($"/v1/tenants/acme/log/proof/inclusion?{query}"), HttpStatusCode.BadRequest, "validation");
        }
    }

    [Fact]
    public async Task Consistency_proofs_verify_between_checkpoints_and_bad_arguments_are_400()
    {
        await Post(6);
        var old = ProofJson.Checkpoint(await ServerFixture.WaitForCheckpointAsync(Acme, "acme", 6));
        await Post(9);
        var current = ProofJson.Checkpoint(await ServerFixture.WaitForCheckpointAsync(Acme, "acme", 15));

        var proof = await Acme.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/log/proof/consistency?from={old.Size}&to={current.Size}");

        Assert.Equal(old.Size, proof.GetProperty("from").GetUInt64());
        Assert.True(ConsistencyProof.Verify(old.Size, current.Size, ProofJson.Hashes(proof), old.Root, current.Root).IsValid);

        var same = await Acme.GetFromJsonAsync<JsonElement>($"/v1/tenants/acme/log/proof/consistency?from=15&to=15");
        Assert.Equal(0, same.GetProperty("hashes").GetArrayLength());

        foreach (var query in new[] { "from=0&to=15", "from=9&to=3", "from=1&to=16", "from=1", "to=2", "from=a&to=2" })
        {
            await ProblemAssert.IsProblemAsync(await Acme.GetAsync($"/v1/tenants/acme/log/proof/consistency?{query}"), HttpStatusCode.BadRequest, "validation");
        }
    }

    [Fact]
    public async Task Entries_outside_the_log_are_404_and_bad_indexes_are_400()
    {
        await Post(2);
        await ProblemAssert.IsProblemAsync(await Acme.GetAsync("/v1/tenants/acme/log/entries/2"), HttpStatusCode.NotFound, "not-found");
        await ProblemAssert.IsProblemAsync(await Acme.GetAsync("/v1/tenants/acme/log/entries/-1"), HttpStatusCode.BadRequest, "validation");
        await ProblemAssert.IsProblemAsync(await Acme.GetAsync("/v1/tenants/acme/log/entries/abc"), HttpStatusCode.BadRequest, "validation");
    }

    private async Task Post(int count)
    {
        var response = await Acme.PostAsync("/v1/tenants/acme/events", ServerFixture.Json(ServerFixture.Batch(count)));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }

}
