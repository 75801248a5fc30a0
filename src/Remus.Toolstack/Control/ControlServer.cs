using System.Net.Sockets;
using System.Text.Json;
using Remus.Toolstack.Vmm;

namespace Remus.Toolstack.Control;

/// <summary>
/// The VMM end of the control socket: accepts connections, reads one request line each, lets the
/// <see cref="VmmHost"/> (the owner of the domain's state) answer it, or hands the connection to the console.
/// </summary>
internal sealed class ControlServer(Socket listener, VmmHost host) : IDisposable
{
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);
    private int _active;

    public void Start() => _ = Task.Run(AcceptLoopAsync);

    private async Task AcceptLoopAsync()
    {
        while (true)
        {
            Socket connection;
            try
            {
                connection = await listener.AcceptAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return; // stopped
            }
            _ = Task.Run(() => ServeAsync(connection));
        }
    }

    private async Task ServeAsync(Socket connection)
    {
        Interlocked.Increment(ref _active);
        await using var stream = new NetworkStream(connection, ownsSocket: true);
        try
        {
            var line = await ReadLineAsync(stream).ConfigureAwait(false);
            if (line is null) return; // a liveness probe
            var request = ControlProtocol.ParseRequest(line, out var failure);
            if (request is null)
            {
                await ReplyAsync(stream, failure!).ConfigureAwait(false);
                return;
            }
            if (request.Op == ControlOps.Console)
            {
                await ReplyAsync(stream, new ControlResponse { Ok = true, Domain = host.Info() }).ConfigureAwait(false);
                await host.ServeConsoleAsync(stream, request.Replay).ConfigureAwait(false);
                return;
            }
            var writeLock = new SemaphoreSlim(1, 1);
            void Progress(string line)
            {
                writeLock.Wait();
                try { ReplyAsync(stream, new ControlResponse { Ok = true, Progress = line }).GetAwaiter().GetResult(); }
                catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException) { /* the client left */ }
                finally { writeLock.Release(); }
            }
            var response = await Task.Run(() => host.Handle(request, Progress)).ConfigureAwait(false);
            await ReplyAsync(stream, response).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The client went away.
        }
        finally
        {
            Interlocked.Decrement(ref _active);
        }
    }

    /// <summary>Reads one line byte by byte (so that console input after it stays in the socket).</summary>
    private static async Task<byte[]?> ReadLineAsync(NetworkStream stream)
    {
        using var timeout = new CancellationTokenSource(RequestTimeout);
        var line = new MemoryStream();
        var one = new byte[1];
        while (true)
        {
            if (await stream.ReadAsync(one, timeout.Token).ConfigureAwait(false) == 0) return null;
            if (one[0] == '\n') return line.ToArray();
            if (line.Length >= ControlProtocol.MaxLineBytes) throw new IOException("request line too long");
            line.WriteByte(one[0]);
        }
    }

    private static async Task ReplyAsync(Stream stream, ControlResponse response)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(response, ToolstackJson.Default.ControlResponse);
        await stream.WriteAsync(bytes).ConfigureAwait(false);
        await stream.WriteAsync("\n"u8.ToArray()).ConfigureAwait(false);
        await stream.FlushAsync().ConfigureAwait(false);
    }

    /// <summary>Stops taking new connections (the socket file is the registry's to remove).</summary>
    public void StopAccepting() => listener.Dispose();

    /// <summary>Waits until the requests in progress have been answered.</summary>
    public void WaitForIdle(TimeSpan timeout)
    {
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (Volatile.Read(ref _active) > 0 && Environment.TickCount64 < deadline) Thread.Sleep(10);
    }

    public void Dispose() => listener.Dispose();
}
