using System.Net;
using System.Net.Sockets;
using Atp.Core.Signatures;

namespace Atp.Cli.Tests;

/// <summary>A request as a server received it: method, the absolute target URI rebuilt from Host and the raw request line, headers, body.</summary>
internal sealed record ReceivedRequest(string Method, string TargetUri, IReadOnlyDictionary<string, string> Headers, byte[] Body)
{
    public string? Header(string name) => Headers.GetValueOrDefault(name.ToLowerInvariant());

    /// <summary>Signature components the way the ATP server builds them from a received request.</summary>
    public SignatureComponents Components() => new(Method, TargetUri, Header);
}

/// <summary>A real HTTP listener on 127.0.0.1 and a free port, answering one request at a time with a canned response.</summary>
internal sealed class LoopbackServer : IDisposable
{
    private readonly HttpListener _listener;

    public LoopbackServer()
    {
        for (var attempt = 0; ; attempt++)
        {
            var port = FreePort();
            _listener = new HttpListener();
            _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            try
            {
                _listener.Start();
                BaseUrl = $"http://127.0.0.1:{port}";
                return;
            }
            catch (HttpListenerException) when (attempt < 5)
            {
                // Another process took the port between probing and binding; try another.
                _listener.Close();
            }
        }
    }

    public string BaseUrl { get; }

    /// <summary>A loopback port nothing listens on (for connection failures), as the OS hands out free ports.</summary>
    public static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>Waits for the next request, records it, and answers with <paramref name="status"/> and <paramref name="body"/>.</summary>
    public async Task<ReceivedRequest> RespondOnceAsync(int status, string body)
    {
        var context = await _listener.GetContextAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var request = context.Request;
        using var content = new MemoryStream();
        await request.InputStream.CopyToAsync(content);
        var headers = request.Headers.AllKeys.ToDictionary(k => k!.ToLowerInvariant(), k => string.Join(", ", request.Headers.GetValues(k)!));
        var received = new ReceivedRequest(request.HttpMethod, $"http://{request.Headers["Host"]}{request.RawUrl}", headers, content.ToArray());

        context.Response.StatusCode = status;
        var bytes = System.Text.Encoding.UTF8.GetBytes(body);
        await context.Response.OutputStream.WriteAsync(bytes);
        context.Response.Close();
        return received;
    }

    public void Dispose() => _listener.Close();
}
