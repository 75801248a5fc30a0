using System.Net;
using System.Net.Sockets;
using System.Text;
using Remus.Sandbox;

namespace Remus.Tests.Checkpoint;

/// <summary>A console that keeps everything the program writes to stdout, in order, across domains.</summary>
public sealed class RecordingConsole : IConsole
{
    private readonly MemoryStream _out = new();
    public void Write(int stream, ReadOnlySpan<byte> data)
    {
        if (stream != 1) return;
        lock (_out) _out.Write(data);
    }
    public int Read(Span<byte> buffer, CancellationToken cancel) => 0;
    public bool IsTerminal => false;
    public string Text { get { lock (_out) return Encoding.UTF8.GetString(_out.ToArray()); } }
    public int Lines => Text.Count(c => c == '\n');

    public void WaitForLines(int n, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (Lines < n)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"only {Lines} of {n} lines arrived");
            Thread.Sleep(5);
        }
    }
}

/// <summary>What the outside world sees of a primary; after <see cref="Sever"/> the writer (a dead primary) reaches nobody.</summary>
public sealed class SeverableConsole(IConsole inner) : IConsole
{
    private volatile bool _severed;
    public void Sever() => _severed = true;
    public void Write(int stream, ReadOnlySpan<byte> data) { if (!_severed) inner.Write(stream, data); }
    public int Read(Span<byte> buffer, CancellationToken cancel) => inner.Read(buffer, cancel);
    public bool IsTerminal => false;
}

/// <summary>A domain running on a thread of its own, as a VMM runs it.</summary>
public sealed class RunningDomain : IDisposable
{
    private readonly Thread _thread;
    public SandboxDomain Domain { get; }
    public int? Status { get; private set; }

    public RunningDomain(SandboxDomain domain)
    {
        Domain = domain;
        _thread = new Thread(() => Status = domain.Run()) { IsBackground = true };
        _thread.Start();
    }

    public int Wait(TimeSpan timeout)
    {
        if (!_thread.Join(timeout)) throw new TimeoutException("the domain did not finish");
        return Status!.Value;
    }

    public void Dispose()
    {
        Domain.Kill();
        _thread.Join();
        Domain.Dispose();
    }
}

/// <summary>A connected pair of loopback TCP streams (the migration channel in tests).</summary>
public static class Channel
{
    public static (NetworkStream A, NetworkStream B) Pair()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var client = new TcpClient();
        client.Connect((IPEndPoint)listener.LocalEndpoint);
        var server = listener.AcceptTcpClient();
        listener.Stop();
        client.NoDelay = server.NoDelay = true;
        return (client.GetStream(), server.GetStream());
    }
}
