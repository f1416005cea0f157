namespace Atp.Server.Gateway;

/// <summary>
/// Marks an endpoint that maintains a tenant's read models and never appends to its log, so that a platform admin may
/// call it for the platform audit log too (which the API otherwise only reads).
/// </summary>
internal sealed class ReadModelMaintenance;
