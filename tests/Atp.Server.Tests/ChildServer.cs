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

    public static async Task<ChildServer> StartAsync(string dataDirectory, string adminKey, IReadOnlyList<string>? storageArguments = null)
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
            "--Atp:RateLimits:Default:IngestEventsPerSecond=100000000",
            "--Atp:RateLimits:Default:IngestBytesPerSecond=2000000000",
            "--Atp:RateLimits:Default:ReadCostPerSecond=10000000",
            "--Logging:LogLevel:Default=Warning",
        }.Concat(storageArguments ?? []))
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the server process");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var server = new ChildServer(process, new Uri($"http://127.0.0.1:{port}"));
        using var client = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            Assert.False(process.HasExited, $"the server process exited with {(process.HasExited ? process.ExitCode : 0)} during start-up");
            try
            {
                if ((await client.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK)
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

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
