namespace Atp.Core.Events;

/// <summary>One reason an event was refused: which event of the request (0-based), where in it (JSON Pointer), and why.</summary>
public sealed record EventError(int Index, string Location, string Detail);
