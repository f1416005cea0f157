using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Atp.Server.Tests;

/// <summary>The server as a separate OS process, so a test can SIGKILL it as a crash would.</summary>
internal sealed class ChildServer : IAsyncDisposable
{
    private readonly Process _process;

    private ChildServer(Process process, Uri baseAddress)
    {
        _process = process;
        BaseAddress = baseAddress;
    }

    public Uri BaseAddress { get; }

    /// <summary>Every line the process wrote to stdout and stderr, in arrival order.</summary>
    public ConcurrentQueue<string> Output { get; } = new();

    /// <summary>
    /// Starts the server and waits until <paramref name="readyPath"/> answers 200: <c>/readyz</c> by default, <c>/livez</c>
    /// for a server expected to start unready (e.g. on a full disk).
    /// </summary>
    public static async Task<ChildServer> StartAsync(string dataDirectory, string adminKey, IReadOnlyList<string>? storageArguments = null, string readyPath = "/readyz")
    {
        var port = FreePort();
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        foreach (var arg in new[]
        {
            Path.Combine(AppContext.BaseDirectory, "Atp.Server.dll"),
            "--urls", $"http://127.0.0.1:{port}",
            $"--Atp:DataDirectory={dataDirectory}",
            $"--Atp:Bootstrap:AdminKey={adminKey}",
            "--Atp:Integrity:CheckpointInterval=00:00:00.050",
            "--Atp:Origin=atp.test/crash-cell-1",
            "--Atp:RateLimits:Default:IngestPerSecond=1000000",
            "--Atp:RateLimits:Default:QueryPerSecond=1000000",
            "--Logging:LogLevel:Default=Warning",
        }.Concat(storageArguments ?? []))
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the server process");
        var server = new ChildServer(process, new Uri($"http://127.0.0.1:{port}"));
        process.OutputDataReceived += (_, line) => Keep(server, line.Data);
        process.ErrorDataReceived += (_, line) => Keep(server, line.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var client = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            Assert.False(process.HasExited, $"the server process exited with {(process.HasExited ? process.ExitCode : 0)} during start-up");
            try
            {
                if ((await client.GetAsync(readyPath)).StatusCode == HttpStatusCode.OK)
                {
                    return server;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException)
            {
                // Start-up still in progress.
            }

            await Task.Delay(100);
        }

        await server.DisposeAsync();
        throw new TimeoutException("the server process did not become ready within 30 s");
    }

    /// <summary>SIGTERM and wait for the exit: a clean shutdown (SQLite checkpoints and removes its WAL and index files).</summary>
    public async Task StopAsync()
    {
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _process.WaitForExitAsync(timeout.Token);
    }

    /// <summary>SIGKILL: no shutdown hooks, no flush — what a power cut or OOM kill looks like to the process.</summary>
    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    public ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            Kill();
        }

        _process.Dispose();
        return ValueTask.CompletedTask;
    }

    private static void Keep(ChildServer server, string? line)
    {
        if (line is not null)
        {
            server.Output.Enqueue(line);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
