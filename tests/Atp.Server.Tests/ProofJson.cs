using System.Text.Json;
using Atp.Integrity;

namespace Atp.Server.Tests;

/// <summary>Reading checkpoints and proofs as the API returns them.</summary>
internal static class ProofJson
{
    public static Atp.Integrity.Checkpoint Checkpoint(string note)
    {
        Assert.True(SignedNote.TryParse(note, out var signed, out var error), error);
        Assert.True(Atp.Integrity.Checkpoint.TryParse(signed.Text, out var checkpoint, out error), error);
        return checkpoint;
    }

    public static Hash[] Hashes(JsonElement proof) =>
        [.. proof.GetProperty("hashes").EnumerateArray().Select(h => new Hash(Convert.FromBase64String(h.GetString()!)))];
}
