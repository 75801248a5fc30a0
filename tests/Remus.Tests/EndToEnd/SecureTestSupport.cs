using System.Net;
using System.Net.Sockets;
using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Xunit;
using Xunit.Sdk;

namespace Remus.Tests.EndToEnd;

/// <summary>The channel options of the issue-13 end-to-end tests, and what "refused, nothing created" means.</summary>
internal static class Secure
{
    /// <summary>`--tls-cert C --tls-key K --tls-ca CA` for <paramref name="host"/> (trusting the Remus CA unless told).</summary>
    public static string[] Tls(TestPki pki, TestPki.Host host, string? ca = null) =>
        ["--tls-cert", host.CertFile, "--tls-key", host.KeyFile, "--tls-ca", ca ?? pki.CaFile];

    public static string[] Psk(string file) => ["--psk-file", file];

    /// <summary>The options of a channel mode: "tls" as the sender (host A) or receiver (host B), "psk", "insecure".</summary>
    public static string[] Options(TestPki pki, string mode, bool receiver) => mode switch
    {
        "tls" => Tls(pki, receiver ? pki.HostB : pki.HostA),
        "psk" => Psk(pki.PskFile),
        "insecure" => ["--insecure"],
        _ => throw new ArgumentOutOfRangeException(nameof(mode)),
    };

    /// <summary>`migrate-receive [-r] --tcp-listen 127.0.0.1:PORT OPTIONS...` on a free port, once it says it waits.
    /// (Not <see cref="Receiver.Listen"/>: that one is the plain-TCP receiver of the older tests.)</summary>
    public static Receiver Listen(DomainTestBed host, bool remus, out int port, params string[] options)
    {
        port = E2E.FreePort();
        string[] args = [.. remus ? new[] { "-r" } : [], "--tcp-listen", $"127.0.0.1:{port}", .. options];
        var receiver = Receiver.Start(host, args);
        receiver.WaitForStderr("waiting for a", TimeSpan.FromSeconds(30));
        return receiver;
    }

    /// <summary>
    /// Waits until the receiver said one more "remus: " line after its "waiting" line and its "PEER authenticated" line
    /// if any (its refusal) and returns it;
    /// the receiver may exit or go on listening, both are fine. Neither a stack trace nor an internal error.
    /// </summary>
    public static string Refusal(Receiver receiver)
    {
        string[] Lines() => receiver.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => !l.Contains("waiting for a", StringComparison.Ordinal) && !l.Contains(" authenticated: ", StringComparison.Ordinal)).ToArray();
        E2E.WaitUntil(() => Lines().Length > 0 || receiver.HasExited, "the receiver refuses the stream (one line on stderr)",
            TimeSpan.FromSeconds(30), receiver.Describe);
        if (receiver.HasExited) receiver.WaitForExit(TimeSpan.FromSeconds(10)); // collect all it said
        var lines = Lines();
        Assert.True(lines.Length == 1 && lines[0].StartsWith("remus: ", StringComparison.Ordinal),
            $"want exactly one 'remus: ' line after the waiting line:\n{receiver.Describe()}");
        Assert.DoesNotContain("   at ", receiver.Stderr);
        Assert.DoesNotContain("internal error", receiver.Stderr);
        Assert.DoesNotContain("arrived", receiver.Stderr);
        Assert.DoesNotContain("failover", receiver.Stderr);
        Assert.True(!receiver.HasExited || receiver.ExitCode != 0, $"a receiver that refused exited 0:\n{receiver.Describe()}");
        return lines[0];
    }

    /// <summary>
    /// Nothing was made at the receiving host: no domain in `remus list` (neither NAME nor NAME--incoming), no
    /// registry entry or socket, no VMM log, no process of its run directory but the receiver itself, none of
    /// <paramref name="paths"/> (console_log, files...) exists, and its work folder holds what it held before.
    /// </summary>
    public static void NothingCreated(DomainTestBed host, Receiver receiver, string[] workBefore, params string[] paths) =>
        NothingLeft(host, receiver, workBefore, logKept: false, paths);

    /// <summary>
    /// <see cref="NothingCreated"/>, or with <paramref name="logKept"/> for a stream that failed after its header was
    /// accepted (the domain was NAME--incoming for a moment): nothing remains but the VMM log, kept as every VMM's is.
    /// </summary>
    public static void NothingLeft(DomainTestBed host, Receiver receiver, string[] workBefore, bool logKept, params string[] paths)
    {
        string details = $"{receiver.Describe()}\n{E2E.Logs(host)}";
        var listed = host.List();
        Assert.True(listed.Count == 0, $"the receiver lists [{string.Join(", ", listed.Select(d => d.Name))}]\n{details}");
        Assert.True(host.DomainEntries().Length == 0, $"the receiver registered [{string.Join(", ", host.DomainEntries())}]\n{details}");
        string logs = Path.Combine(host.RunDir, "logs");
        Assert.True(logKept || !Directory.Exists(logs) || Directory.GetFiles(logs).Length == 0, $"a VMM log was made at the receiver\n{details}");
        var others = host.ProcessesOfThisRunDir().Where(p => receiver.HasExited || p != receiver.Pid).ToArray();
        Assert.True(others.Length == 0, $"processes of the receiver's run dir: {string.Join(", ", others)}\n{details}");
        foreach (var path in paths)
            Assert.False(File.Exists(path) || Directory.Exists(path), $"the receiver made {path}\n{details}");
        Assert.Equal(workBefore, Tree(host.Work));
    }

    /// <summary>Every path under <paramref name="dir"/> (relative, sorted): what "nothing written there" compares.</summary>
    public static string[] Tree(string dir) =>
        Directory.Exists(dir)
            ? Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories).Select(p => Path.GetRelativePath(dir, p)).Order().ToArray()
            : [];

    /// <summary>Sends <paramref name="bytes"/> from a plain TCP connection, then reads whatever comes back until the
    /// receiver closes (or 10 s pass); a reset is an answer too.</summary>
    public static void SendPlain(int port, byte[] bytes)
    {
        using var client = new TcpClient();
        client.Connect(IPAddress.Loopback, port);
        client.ReceiveTimeout = 10_000;
        var stream = client.GetStream();
        try
        {
            stream.Write(bytes);
            stream.Flush();
            client.Client.Shutdown(SocketShutdown.Send);
            var sink = new byte[64 * 1024];
            while (stream.Read(sink) > 0) { }
        }
        catch (IOException) { } // the receiver hung up on us: what a refusal may look like
        catch (SocketException) { }
    }
}

/// <summary>
/// A TCP relay on loopback in front of a receiver: forwards one connection both ways and keeps every byte the
/// connecting side (the sender) sent, as an eavesdropper on the path would record it; or, given a tamper offset,
/// flips one bit of the byte at that offset of what the sender sent, as a forger on the path would.
/// </summary>
internal sealed class RecordingRelay : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly MemoryStream _sent = new();
    private readonly Task _run;
    private readonly long _tamperAt;

    public RecordingRelay(int targetPort, long tamperAt = -1)
    {
        _tamperAt = tamperAt;
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _run = Task.Run(() => Relay(targetPort));
    }

    public int Port { get; }

    /// <summary>What the sender sent, once the connection ended both ways.</summary>
    public byte[] Recorded(TimeSpan timeout)
    {
        if (!_run.Wait(timeout)) throw new XunitException("the relayed connection did not end");
        lock (_sent) return _sent.ToArray();
    }

    private void Relay(int targetPort)
    {
        using var client = _listener.AcceptTcpClient();
        _listener.Stop();
        using var server = new TcpClient();
        server.Connect(IPAddress.Loopback, targetPort);
        client.NoDelay = server.NoDelay = true;
        var up = Task.Run(() => Copy(client, server, _sent, _tamperAt));
        var down = Task.Run(() => Copy(server, client, null, -1));
        Task.WaitAll(up, down);
    }

    private static void Copy(TcpClient from, TcpClient to, MemoryStream? record, long tamperAt)
    {
        var buffer = new byte[64 * 1024];
        long offset = 0;
        try
        {
            int n;
            while ((n = from.GetStream().Read(buffer)) > 0)
            {
                if (tamperAt >= offset && tamperAt < offset + n) buffer[tamperAt - offset] ^= 0x10;
                offset += n;
                if (record is not null) lock (record) record.Write(buffer, 0, n);
                to.GetStream().Write(buffer, 0, n);
            }
            to.Client.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            try { to.Client.Shutdown(SocketShutdown.Both); } catch (Exception f) when (f is SocketException or ObjectDisposedException) { }
        }
    }

    public void Dispose()
    {
        _listener.Stop();
        try { _run.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
    }
}
