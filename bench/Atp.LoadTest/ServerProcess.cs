using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using Atp.Core.Keys;

namespace Atp.LoadTest;

/// <summary>
/// An ATP server started as a child process on a free loopback port, with a temporary data directory (or one the caller
/// owns) and a fresh platform-admin key; killed and cleaned up on dispose (and on process exit, as a last resort).
/// </summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    private const int MaxLogChars = 1_000_000;
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    private readonly Process _process;
    private readonly StringBuilder _log = new();
    private readonly object _logLock = new();
    private readonly bool _ownsDataDirectory;
    private int _disposed;

    private ServerProcess(Process process, Uri url, string adminKey, DirectoryInfo dataDirectory, bool ownsDataDirectory, string serverDll, long startedAt)
    {
        _process = process;
        Url = url;
        AdminKey = adminKey;
        DataDirectory = dataDirectory;
        _ownsDataDirectory = ownsDataDirectory;
        ServerDll = serverDll;
        StartedAt = startedAt;
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
    }

    public Uri Url { get; }

    public string AdminKey { get; }

    public DirectoryInfo DataDirectory { get; }

    public string ServerDll { get; }

    /// <summary><see cref="Stopwatch.GetTimestamp"/> just before the process was started: time zero of a start-up run.</summary>
    public long StartedAt { get; }

    public bool HasExited
    {
        get
        {
            try
            {
                return _process.HasExited;
            }
            catch (InvalidOperationException)
            {
                return true;
            }
        }
    }

    /// <summary>CPU time the server has used so far; null once it has exited.</summary>
    public TimeSpan? CpuTime()
    {
        try
        {
            _process.Refresh();
            return _process.HasExited ? null : _process.TotalProcessorTime;
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    public static async Task<ServerProcess> StartAsync(string? serverDllOverride, IReadOnlyDictionary<string, string> environment, HttpClient http, CancellationToken cancellationToken)
    {
        var server = Launch(serverDllOverride, environment, dataDirectory: null, adminKey: null);
        try
        {
            await server.WaitUntilReadyAsync(http, TimeSpan.FromMilliseconds(200), cancellationToken);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Starts the server process and returns at once, without waiting for it to answer. With a
    /// <paramref name="dataDirectory"/> the caller owns that directory (it survives dispose, so a second server can start
    /// on what the first one wrote); otherwise a temporary one is created and deleted on dispose.
    /// </summary>
    public static ServerProcess Launch(string? serverDllOverride, IReadOnlyDictionary<string, string> environment, DirectoryInfo? dataDirectory, string? adminKey)
    {
        var serverDll = LocateServer(serverDllOverride);
        var ownsDataDirectory = dataDirectory is null;
        dataDirectory ??= Directory.CreateTempSubdirectory("atp-loadtest-server-");
        adminKey ??= ApiKeyFormat.Generate();
        var port = FreeLoopbackPort();
        var url = new Uri($"http://127.0.0.1:{port}/");

        var start = new ProcessStartInfo(DotnetHost())
        {
            // The server reads appsettings.json from its content root, the current directory.
            WorkingDirectory = Path.GetDirectoryName(serverDll)!,
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        start.ArgumentList.Add(serverDll);
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add($"http://127.0.0.1:{port}");
        start.ArgumentList.Add($"--Atp:DataDirectory={dataDirectory.FullName}");

        // Same effect as --Atp:Bootstrap:AdminKey=…, but an environment variable is readable only by this user,
        // a command line by everyone on the machine (ps).
        start.Environment["Atp__Bootstrap__AdminKey"] = adminKey;
        start.Environment.Remove("ASPNETCORE_URLS");
        start.Environment.Remove("Atp__DataDirectory");

        // Storage selection (connection strings hold passwords: environment, not command line).
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        var process = new Process { StartInfo = start };
        try
        {
            var startedAt = Stopwatch.GetTimestamp();
            if (!process.Start())
            {
                throw new InvalidOperationException($"Could not start {start.FileName} {serverDll}.");
            }

            var server = new ServerProcess(process, url, adminKey, dataDirectory, ownsDataDirectory, serverDll, startedAt);
            process.OutputDataReceived += (_, e) => server.Append(e.Data);
            process.ErrorDataReceived += (_, e) => server.Append(e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return server;
        }
        catch
        {
            process.Dispose();
            if (ownsDataDirectory)
            {
                TryDelete(dataDirectory);
            }

            throw;
        }
    }

    /// <summary>SIGTERM and wait for the exit: a clean shutdown, as an operator's restart does (the store is closed, not recovered).</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (HasExited)
        {
            return;
        }

        using (var kill = Process.Start("kill", ["-TERM", SafePid()]))
        {
            await kill.WaitForExitAsync(cancellationToken);
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        await _process.WaitForExitAsync(timeout.Token);
    }

    /// <summary>Warning and error lines the server logged (console logger format: "warn: …" / "fail: …" plus the message line).</summary>
    public IReadOnlyList<string> Problems(int max)
    {
        var lines = LogLines();
        var problems = new List<string>();
        for (var i = 0; i < lines.Length && problems.Count < max; i++)
        {
            if (lines[i].StartsWith("warn:", StringComparison.Ordinal) || lines[i].StartsWith("fail:", StringComparison.Ordinal) || lines[i].StartsWith("crit:", StringComparison.Ordinal))
            {
                problems.Add(i + 1 < lines.Length ? $"{lines[i]} {lines[i + 1].Trim()}" : lines[i]);
            }
        }

        return problems;
    }

    public int ProblemCount() => LogLines().Count(l => l.StartsWith("warn:", StringComparison.Ordinal) || l.StartsWith("fail:", StringComparison.Ordinal) || l.StartsWith("crit:", StringComparison.Ordinal));

    public string LogTail(int lines)
    {
        var all = LogLines();
        return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
    }

    /// <summary>Stops the server (kill: its data is thrown away) and deletes its data directory.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        Kill();
        try
        {
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            await _process.WaitForExitAsync(wait.Token);
        }
        catch (OperationCanceledException)
        {
            await Console.Error.WriteLineAsync($"warning: the server process {SafePid()} did not exit within 15 s.");
        }

        _process.Dispose();
        if (_ownsDataDirectory)
        {
            TryDelete(DataDirectory);
        }
    }

    /// <summary>Polls <c>/readyz</c> every <paramref name="pollEvery"/> until it answers 200; throws if the process exits or takes too long.</summary>
    public async Task WaitUntilReadyAsync(HttpClient http, TimeSpan pollEvery, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        var ready = new Uri(Url, "readyz");
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"The server exited with code {_process.ExitCode} during start-up. Its output:\n{LogTail(40)}");
            }

            try
            {
                using var probe = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, probe.Token);
                using var response = await http.GetAsync(ready, linked.Token);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Probe timed out; try again.
            }

            if (deadline.Elapsed > StartTimeout)
            {
                throw new TimeoutException($"The server was not ready within {StartTimeout.TotalSeconds:0} s. Its output:\n{LogTail(40)}");
            }

            await Task.Delay(pollEvery, cancellationToken);
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_logLock)
        {
            if (_log.Length < MaxLogChars)
            {
                _log.Append(line).Append('\n');
            }
        }
    }

    private string[] LogLines()
    {
        lock (_logLock)
        {
            return _log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        }
    }

    private void OnProcessExit(object? sender, EventArgs e)
    {
        Kill();
        if (_ownsDataDirectory)
        {
            TryDelete(DataDirectory);
        }
    }

    private void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // Exiting concurrently.
        }
    }

    private string SafePid()
    {
        try
        {
            return _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (InvalidOperationException)
        {
            return "?";
        }
    }

    public static void TryDelete(DirectoryInfo directory)
    {
        for (var attempt = 0; attempt < 5; attempt++)
        {
            try
            {
                directory.Refresh();
                if (directory.Exists)
                {
                    directory.Delete(recursive: true);
                }

                return;
            }
            catch (IOException) when (attempt < 4)
            {
                Thread.Sleep(200);
            }
            catch (UnauthorizedAccessException) when (attempt < 4)
            {
                Thread.Sleep(200);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"warning: could not delete {directory.FullName}: {e.Message}");
                return;
            }
        }
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>The dotnet host that runs this process (its runtime directory is {root}/shared/Microsoft.NETCore.App/{version}/).</summary>
    private static string DotnetHost()
    {
        var executable = OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet";
        var fromRuntime = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", "..", executable));
        if (File.Exists(fromRuntime))
        {
            return fromRuntime;
        }

        var hostPath = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        return hostPath is not null && File.Exists(hostPath) ? hostPath : executable;
    }

    private static string LocateServer(string? serverDllOverride)
    {
        if (serverDllOverride is not null)
        {
            return Path.GetFullPath(serverDllOverride);
        }

        var embedded = typeof(ServerProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "AtpServerPath")?.Value;
        if (!string.IsNullOrEmpty(embedded) && File.Exists(embedded))
        {
            return embedded;
        }

        // Fallback: a conventional build output of src/Atp.Server above this program's directory.
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            foreach (var configuration in new[] { "Release", "Debug" })
            {
                var candidate = Path.Combine(dir.FullName, "src", "Atp.Server", "bin", configuration, "net10.0", "Atp.Server.dll");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        throw new FileNotFoundException($"Atp.Server.dll not found (expected {embedded ?? "the build output of src/Atp.Server"}); build src/Atp.Server or pass --server-dll.");
    }
}
