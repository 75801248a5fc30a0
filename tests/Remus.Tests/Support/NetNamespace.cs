using System.Diagnostics;
using System.Security.Cryptography;

namespace Remus.Tests.Support;

/// <summary>
/// A network namespace a test creates for itself (<c>ip netns add remus-t-XXXXXXXX</c>, loopback up) and always
/// deletes in <see cref="Dispose"/>, with every process started in it killed by pid first. Traffic of the tests stays
/// inside such namespaces. Creating one sweeps stale <c>remus-t-*</c> namespaces older than an hour (left by a test
/// process that was killed). Tests call <see cref="Require"/> first: it skips with the reason when this machine
/// cannot (not root, no <c>ip</c>).
/// </summary>
public sealed class NetNamespace : IDisposable
{
    public const string Prefix = "remus-t-";
    private static readonly TimeSpan StaleAge = TimeSpan.FromHours(1);
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(30);
    private static readonly Lazy<string?> unavailable = new(FindUnavailableReason);
    private static int swept;

    private readonly List<Process> started = [];
    private readonly List<string> rootLinks = [];
    private bool disposed;

    private NetNamespace(string name, string tag)
    {
        Name = name;
        Tag = tag;
    }

    /// <summary>remus-t- and 8 random hex digits.</summary>
    public string Name { get; }

    /// <summary>The 8 hex digits: short enough to build interface names (at most 15 characters) from.</summary>
    public string Tag { get; }

    /// <summary>Path of the namespace's handle (/run/netns/NAME): what setns(2) opens.</summary>
    public string Path => $"/run/netns/{Name}";

    /// <summary>Why namespaces cannot be made here, or null when they can.</summary>
    public static string? Unavailable => unavailable.Value;

    /// <summary>Skips the running [SkippableFact]/[SkippableTheory] with the reason unless namespaces can be made here.</summary>
    public static void Require() => Xunit.Skip.If(Unavailable is not null, Unavailable);

    /// <summary>Adds a fresh namespace with its loopback up. Throws (after cleaning up) if <c>ip</c> fails.</summary>
    public static NetNamespace Create()
    {
        if (Unavailable is { } reason) throw new InvalidOperationException(reason);
        if (Interlocked.Exchange(ref swept, 1) == 0) SweepStale();
        var tag = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var ns = new NetNamespace(Prefix + tag, tag);
        IpChecked("netns", "add", ns.Name);
        try
        {
            ns.Ip("link", "set", "lo", "up");
        }
        catch
        {
            ns.Dispose();
            throw;
        }
        return ns;
    }

    /// <summary>`ip -n NAME args...`; throws with ip's output unless it exits 0.</summary>
    public string Ip(params string[] args) => IpChecked(["-n", Name, .. args]);

    /// <summary>Runs a program inside the namespace (`ip netns exec NAME program args...`) to completion.</summary>
    public RunResult Exec(string program, IEnumerable<string> args, byte[]? stdin = null, TimeSpan? timeout = null) =>
        ProcessRunner.Run("ip", ["netns", "exec", Name, program, .. args], stdin, timeout ?? CommandTimeout);

    /// <summary>
    /// Starts a program inside the namespace with its three streams redirected (the caller reads and writes them) and
    /// returns at once. It is killed by pid in <see cref="Dispose"/> if still running.
    /// </summary>
    public Process Start(string program, params string[] args)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var psi = new ProcessStartInfo("ip")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in (string[])["netns", "exec", Name, program, .. args]) psi.ArgumentList.Add(a);
        var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {program}");
        lock (started) started.Add(p);
        return p;
    }

    /// <summary>
    /// A veth pair with one end (<c>rv{tag}{suffix}a</c>) in this namespace and the other (<c>…b</c>) in
    /// <paramref name="other"/> (null: the test process's own namespace, deleted again in Dispose), both up, with the
    /// given addresses ("10.0.0.1/24"; null: none).
    /// </summary>
    public VethPair AddVeth(string? address, NetNamespace? other = null, string? otherAddress = null, char suffix = '0')
    {
        string a = $"rv{Tag}{suffix}a", b = $"rv{Tag}{suffix}b";
        if (other is null)
        {
            IpChecked("link", "add", b, "type", "veth", "peer", "name", a, "netns", Name);
            lock (rootLinks) rootLinks.Add(b);
            IpChecked("link", "set", b, "up");
            if (otherAddress is not null) IpChecked("addr", "add", otherAddress, "dev", b);
        }
        else
        {
            Ip("link", "add", a, "type", "veth", "peer", "name", b, "netns", other.Name);
            other.Ip("link", "set", b, "up");
            if (otherAddress is not null) other.Ip("addr", "add", otherAddress, "dev", b);
        }
        Ip("link", "set", a, "up");
        if (address is not null) Ip("addr", "add", address, "dev", a);
        return new VethPair(a, b);
    }

    /// <summary>
    /// Runs <paramref name="func"/> on a thread of its own that joined the namespace (setns), and returns its result.
    /// Sockets and devices it makes stay in the namespace wherever they are used afterwards: open a
    /// <see cref="System.Net.Sockets.Socket"/> here and use it from any thread.
    /// </summary>
    public T RunInside<T>(Func<T> func) => Remus.Sandbox.Platform.Net.NetNamespace.Run(Name, func);

    /// <summary><see cref="RunInside{T}"/> for an action.</summary>
    public void RunInside(Action action) => Remus.Sandbox.Platform.Net.NetNamespace.Run(Name, action);

    /// <summary>Moves an interface of the test process's namespace (a tap the test opened, say) into this one.</summary>
    public void MoveIn(string link) => IpChecked("link", "set", "dev", link, "netns", Name);

    /// <summary>Brings an interface of this namespace up, with an address ("10.0.0.1/24") when given.</summary>
    public void Up(string link, string? address = null)
    {
        if (address is not null) Ip("addr", "add", address, "dev", link);
        Ip("link", "set", link, "up");
    }

    /// <summary>A name of the form the fixture uses for interfaces (at most 15 characters): rt{tag}{suffix}.</summary>
    public string LinkName(string suffix) => $"rt{Tag}{suffix}";

    /// <summary>Kills the processes started in the namespace (by pid), deletes links it made outside it, then the namespace.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        lock (started)
        {
            foreach (var p in started)
            {
                try
                {
                    if (!p.HasExited) p.Kill(entireProcessTree: true);
                    p.WaitForExit(TimeSpan.FromSeconds(10));
                }
                catch (InvalidOperationException) { }
                catch (System.ComponentModel.Win32Exception) { }
            }
            started.Clear();
        }
        lock (rootLinks)
        {
            foreach (var l in rootLinks) TryIp("link", "del", l); // usually gone with the namespace's end already
        }
        TryIp("netns", "del", Name);
    }

    /// <summary>Deletes remus-t-* namespaces made more than an hour ago (their test process died).</summary>
    public static void SweepStale() => SweepStale(StaleAge, Prefix);

    /// <summary>Deletes the namespaces named <paramref name="prefix"/>* made more than <paramref name="age"/> ago (the
    /// time of the nsfs inode that /run/netns/NAME is: when the namespace was made).</summary>
    public static void SweepStale(TimeSpan age, string prefix)
    {
        if (!prefix.StartsWith(Prefix, StringComparison.Ordinal)) throw new ArgumentException($"only {Prefix}* namespaces", nameof(prefix));
        if (!Directory.Exists("/run/netns")) return;
        foreach (var f in Directory.GetFiles("/run/netns", prefix + "*"))
        {
            try
            {
                if (DateTime.UtcNow - File.GetLastWriteTimeUtc(f) > age) TryIp("netns", "del", System.IO.Path.GetFileName(f));
            }
            catch (IOException) { }
        }
    }

    private static string IpChecked(params string[] args)
    {
        var r = ProcessRunner.Run("ip", args, null, CommandTimeout);
        if (r.ExitCode != 0) throw new InvalidOperationException($"ip {string.Join(' ', args)}: {r}");
        return r.StdoutText;
    }

    private static bool TryIp(params string[] args)
    {
        try
        {
            return ProcessRunner.Run("ip", args, null, CommandTimeout).ExitCode == 0;
        }
        catch (Exception e) when (e is TimeoutException or System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    private static string? FindUnavailableReason()
    {
        if (!OperatingSystem.IsLinux()) return "network namespaces need Linux";
        if (!IsRoot()) return "network namespaces need root (CAP_SYS_ADMIN, CAP_NET_ADMIN); not root";
        if (ProcessRunner.FindOnPath("ip") is null) return "network namespaces need the `ip` command (iproute2), not on PATH";
        return null;
    }

    private static bool IsRoot()
    {
        // Uid: real effective saved fs — the effective one decides.
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("Uid:", StringComparison.Ordinal))
                return line.Split('\t', StringSplitOptions.RemoveEmptyEntries) is [_, _, "0", ..];
        }
        return false;
    }
}

/// <summary>The two ends of a veth pair: <see cref="Inside"/> in the namespace that made it, <see cref="Other"/> in the other.</summary>
public sealed record VethPair(string Inside, string Other);
