using System.Runtime.InteropServices;

namespace Atp.Server.Query;

/// <summary>
/// Lowers the scheduling priority of the calling thread (Linux nice value), so that under CPU contention the
/// projector yields to ingest: a receipt is the durable promise, search freshness can lag behind a burst and catch up.
/// </summary>
internal static partial class ProjectorThread
{
    // Nice 10 weighs about a tenth of a normal thread when both want the CPU; when the CPU is free it runs at full speed.
    private const int Niceness = 10;
    private const int PriorityProcess = 0;

    /// <summary>True when the thread's priority was lowered (Linux only; anywhere else nothing changes).</summary>
    public static bool TryLowerPriority()
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        try
        {
            // On Linux a thread is a task with its own nice value: PRIO_PROCESS with the thread id sets just this one.
            return SetPriority(PriorityProcess, GetThreadId(), Niceness) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "setpriority")]
    private static partial int SetPriority(int which, int who, int priority);

    [LibraryImport("libc", EntryPoint = "gettid")]
    private static partial int GetThreadId();
}
