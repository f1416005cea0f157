using System.Text.Json;

namespace Atp.Core.Export;

/// <summary>
/// What one bundle holds, decided once before anything is written, so a job that resumes after a crash writes the
/// same files again: tenant <see cref="Tenant"/>'s entries [<see cref="From"/>, <see cref="To"/>) proven by the stored
/// checkpoint of size <see cref="TreeSize"/>. A complete bundle has <see cref="Indexes"/> null and
/// <see cref="To"/> == <see cref="TreeSize"/>; a filtered one lists the (sorted, distinct) indexes it holds.
/// </summary>
public sealed record BundlePlan(
    string Tenant,
    ulong From,
    ulong To,
    ulong TreeSize,
    ulong? PreviousSize,
    IReadOnlyList<ulong>? Indexes,
    JsonElement? Filters,
    DateTimeOffset CreatedAt,
    string? ExportId)
{
    /// <summary>True when every index in [From, To) is in the bundle.</summary>
    public bool Complete => Indexes is null;

    /// <summary>How many entries the bundle holds.</summary>
    public ulong Events => Indexes is null ? To - From : (ulong)Indexes.Count;

    /// <summary>How many entries files the bundle has (at most <see cref="BundleManifest.MaxEntriesPerFile"/> entries each).</summary>
    public int FileCount => (int)((Events + BundleManifest.MaxEntriesPerFile - 1) / BundleManifest.MaxEntriesPerFile);

    /// <summary>How many entries go into entries file <paramref name="number"/>.</summary>
    public int CountOf(int number)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(number);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(number, FileCount);
        var first = (ulong)number * BundleManifest.MaxEntriesPerFile;
        return (int)Math.Min(BundleManifest.MaxEntriesPerFile, Events - first);
    }

    /// <summary>Throws when the plan contradicts itself (a caller's bug, not a verification result).</summary>
    public void Validate()
    {
        ArgumentException.ThrowIfNullOrEmpty(Tenant);
        if (From > To || To > TreeSize)
        {
            throw new ArgumentException($"A bundle needs from <= to <= treeSize, not {From}, {To}, {TreeSize}.");
        }

        if (Indexes is null && To != TreeSize)
        {
            throw new ArgumentException("A complete bundle ends exactly at its checkpoint's size.");
        }

        if (PreviousSize is { } previous && (previous == 0 || previous > TreeSize))
        {
            throw new ArgumentException($"A previous checkpoint of size {previous} cannot precede a tree of size {TreeSize}.");
        }

        if (Indexes is not null)
        {
            for (var i = 0; i < Indexes.Count; i++)
            {
                if (Indexes[i] < From || Indexes[i] >= To || i > 0 && Indexes[i] <= Indexes[i - 1])
                {
                    throw new ArgumentException("A filtered bundle's indexes are sorted, distinct and within [from, to).");
                }
            }
        }
    }
}
