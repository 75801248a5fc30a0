using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Remus.Tests.Support;

/// <summary>
/// Real etcd members (Debian's etcd-server, /usr/bin/etcd) on free loopback ports with temporary data directories:
/// one node, or several forming one cluster with --initial-cluster. Waits until every member reports healthy (a leader
/// elected); <see cref="Kill"/> kills one member by its pid; Dispose kills the rest and deletes the data.
/// Short heartbeat and election timeouts so that a killed leader is replaced quickly (etcd's minimum lease TTL is
/// 1.5 election timeouts, well under the 1 s leases the tests ask for).
/// </summary>
public sealed class EtcdCluster : IDisposable
{
    public const string EtcdPath = "/usr/bin/etcd";

    /// <summary>Why the etcd tests cannot run here, or null when they can.</summary>
    public static string? SkipReason => File.Exists(EtcdPath) ? null : $"{EtcdPath} is missing (apt-get install etcd-server)";

    private readonly string _dir;
    private readonly Process?[] _members;

    /// <summary>The members' client URLs, in member order.</summary>
    public IReadOnlyList<string> ClientUrls { get; }

    public EtcdCluster(int size = 1)
    {
        // In memory when /dev/shm exists: etcd fsyncs its WAL on every write, which on a loaded disk can take longer
        // than the tests' per-call deadlines (etcd 3.4 has no --unsafe-no-fsync).
        _dir = Directory.Exists("/dev/shm")
            ? Directory.CreateDirectory(Path.Combine("/dev/shm", $"remus-etcd-{Environment.ProcessId}-{Guid.NewGuid():N}")).FullName
            : Directory.CreateTempSubdirectory("remus-etcd-").FullName;
        var clientPorts = Enumerable.Range(0, size).Select(_ => FreePort()).ToArray();
        var peerPorts = Enumerable.Range(0, size).Select(_ => FreePort()).ToArray();
        ClientUrls = clientPorts.Select(p => $"http://127.0.0.1:{p}").ToArray();
        string initialCluster = string.Join(",", Enumerable.Range(0, size).Select(i => $"m{i}=http://127.0.0.1:{peerPorts[i]}"));
        _members = new Process?[size];
        try
        {
            for (int i = 0; i < size; i++)
            {
                var psi = new ProcessStartInfo(EtcdPath)
                {
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                    UseShellExecute = false,
                };
                foreach (string a in new[]
                {
                    "--name", $"m{i}", "--data-dir", Path.Combine(_dir, $"m{i}"),
                    "--listen-client-urls", ClientUrls[i], "--advertise-client-urls", ClientUrls[i],
                    "--listen-peer-urls", $"http://127.0.0.1:{peerPorts[i]}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{peerPorts[i]}",
                    "--initial-cluster", initialCluster, "--initial-cluster-state", "new", "--initial-cluster-token", Path.GetFileName(_dir),
                    "--heartbeat-interval", "20", "--election-timeout", "200", "--log-level", "error", "--logger", "zap",
                })
                    psi.ArgumentList.Add(a);
                var p = Process.Start(psi)!;
                p.OutputDataReceived += (_, _) => { };
                p.ErrorDataReceived += (_, _) => { };
                p.BeginOutputReadLine();
                p.BeginErrorReadLine();
                _members[i] = p;
            }
            for (int i = 0; i < size; i++) WaitHealthy(i);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The pid of member <paramref name="i"/>.</summary>
    public int Pid(int i) => _members[i]!.Id;

    /// <summary>Kills member <paramref name="i"/> by its pid and waits until it is gone.</summary>
    public void Kill(int i)
    {
        var p = _members[i] ?? throw new InvalidOperationException($"member {i} is already dead");
        p.Kill();
        p.WaitForExit();
        p.Dispose();
        _members[i] = null;
    }

    /// <summary>Runs etcdctl against the cluster (for tests that play another party); returns its stdout.</summary>
    public string Etcdctl(params string[] args)
    {
        var psi = new ProcessStartInfo("/usr/bin/etcdctl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.Environment["ETCDCTL_API"] = "3";
        psi.ArgumentList.Add("--endpoints=" + string.Join(",", ClientUrls));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"etcdctl {string.Join(' ', args)} failed: {stderr.Result}");
        return stdout;
    }

    private void WaitHealthy(int i)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + TestTimeouts.Scaled(TimeSpan.FromSeconds(30));
        string last = "";
        while (DateTime.UtcNow < deadline)
        {
            if (_members[i]!.HasExited) throw new InvalidOperationException($"etcd member {i} exited with {_members[i]!.ExitCode}");
            try
            {
                last = http.GetStringAsync($"{ClientUrls[i]}/health").GetAwaiter().GetResult();
                if (last.Contains("\"health\":\"true\"", StringComparison.Ordinal)) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                last = e.Message;
            }
            Thread.Sleep(50);
        }
        throw new TimeoutException($"etcd member {i} at {ClientUrls[i]} not healthy: {last}");
    }

    /// <summary>A loopback port nobody listens on (free when asked; the tests also use it as an unreachable endpoint).</summary>
    public static int FreePort() => Remus.Tests.EndToEnd.E2E.FreePort();

    public void Dispose()
    {
        for (int i = 0; i < _members.Length; i++)
        {
            if (_members[i] is not { } p) continue;
            try { p.Kill(); p.WaitForExit(); } catch (InvalidOperationException) { }
            p.Dispose();
            _members[i] = null;
        }
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
