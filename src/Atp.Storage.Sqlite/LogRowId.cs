namespace Atp.Storage.Sqlite;

/// <summary>
/// Row ids of log entries: (tenant num &lt;&lt; 40) | index. 2^40 (about 1.1 trillion) entries per tenant and 2^23
/// (about 8.4 million) tenants per cell database.
/// </summary>
internal static class LogRowId
{
    public const int IndexBits = 40;
    public const ulong MaxIndex = (1UL << IndexBits) - 1;
    public const long MaxTenantNumber = (1L << 23) - 1;

    public static long Of(long tenantNumber, ulong index)
    {
        if (index > MaxIndex)
        {
            throw new InvalidOperationException($"A tenant log holds at most {MaxIndex + 1} entries.");
        }

        return (tenantNumber << IndexBits) | (long)index;
    }

    public static long First(long tenantNumber) => tenantNumber << IndexBits;

    public static long Last(long tenantNumber) => (tenantNumber << IndexBits) | (long)MaxIndex;

    public static ulong IndexOf(long rowId) => (ulong)rowId & MaxIndex;
}
