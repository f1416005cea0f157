namespace Atp.Core.Schemas;

/// <summary>
/// One reason a schema pair is not compatible: where (a JSON Pointer into the schema documents, the same place in
/// both) and why, in words a schema author can act on.
/// </summary>
public sealed record BreakingChange(string Location, string Reason);

/// <summary>
/// A breaking change of a candidate version against one earlier version: <see cref="Direction"/> is
/// <c>backward</c> (an event valid under <see cref="Version"/> is refused by the candidate) or <c>forward</c>
/// (an event valid under the candidate is refused by <see cref="Version"/>).
/// </summary>
public sealed record SchemaConflict(int Version, string Direction, string Location, string Reason);
