using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Remus.Checkpoint;
using Remus.Checkpoint.Migration;
using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Toolstack.Security;

namespace Remus.Bench;

/// <summary>
/// `remus-bench tls`: what protecting a channel (issue 13, <see cref="SecureChannel"/>) costs over loopback, plain TCP
/// vs TLS (mutual certificates, a throw-away CA) vs a pre-shared key (AES-256-GCM frames), the runs interleaved so a
/// drift of the machine favours none, the median of N:
/// <list type="bullet">
/// <item>migration throughput: MB/s of a domain that filled 256 MiB, moved uncompressed by MigrationSender/Receiver
/// over the wrapped stream (bytes sent / total time);</item>
/// <item>the Remus checkpoint at 100 Hz with a guest dirtying 1 MiB per 10 ms, uncompressed (about 100 MB/s on the
/// channel): checkpoints/s, pause p50 and ack latency; and the highest sustained rate (interval 1 ms, 10 pages).</item>
/// </list>
/// Each figure has its ratio to plain beside it (the issue's goal: >= 0.8 with AES-NI).
/// </summary>
static class TlsBench
{
    private static readonly byte[] Config = "{\"name\":\"bench\"}"u8.ToArray();
    private static readonly string[] Modes = ["plain", "TLS", "PSK"];
    private static readonly TimeSpan Handshake = TimeSpan.FromSeconds(10);

    public static void Run(GuestBinaries guests, int runs, PlatformKind platform)
    {
        using var keys = new Keys();
        Console.WriteLine($"channel protection over loopback ({PlatformSelection.Choose(platform).Name}; median of {runs}, interleaved; " +
                          $"AES-NI {(System.Runtime.Intrinsics.X86.Aes.IsSupported ? "yes" : "no")}):");

        var migration = new DomainSpec { ProgramPath = guests.Build("idle.c"), Args = ["256", "60"], MemoryMiB = 320, Platform = platform };
        // One uncounted round of each first: the first migration and protection of a process pay for the JIT and the
        // first handshake's setup (plain went first and looked 2x slower than TLS without this).
        foreach (var mode in Modes)
        {
            MigrateOnce(migration with { Args = ["16", "60"], MemoryMiB = 64 }, keys, mode, warmupMs: 500);
            Protect(migration with { Args = ["16", "60"], MemoryMiB = 64 }, keys, mode, TimeSpan.FromMilliseconds(10), 0.5, out _);
        }
        var mbps = Modes.ToDictionary(m => m, _ => new List<double>());
        var downtime = Modes.ToDictionary(m => m, _ => new List<double>());
        for (int r = 0; r < runs; r++)
            foreach (var mode in Modes)
            {
                var result = MigrateOnce(migration, keys, mode, warmupMs: 4000);
                mbps[mode].Add(result.BytesSent / result.Total.TotalSeconds / 1e6);
                downtime[mode].Add(result.Downtime.TotalMilliseconds);
            }
        foreach (var mode in Modes)
            Console.WriteLine($"  migration of a 256 MiB domain (uncompressed), {mode,-5}: {Median(mbps[mode]),7:F0} MB/s, downtime {Median(downtime[mode]),6:F1} ms, " +
                              $"throughput ratio to plain {Median(mbps[mode]) / Median(mbps["plain"]):F2}");

        var dirtier = new DomainSpec { ProgramPath = guests.Build("dirtier.c"), Args = ["256", "10000", "60"], MemoryMiB = 128, Platform = platform };
        var rate = Modes.ToDictionary(m => m, _ => new List<double>());
        var pause = Modes.ToDictionary(m => m, _ => new List<double>());
        var ack = Modes.ToDictionary(m => m, _ => new List<double>());
        var kib = Modes.ToDictionary(m => m, _ => new List<double>());
        var fastSpec = dirtier with { Args = ["10", "1000", "60"], MemoryMiB = 64 };
        var fast = Modes.ToDictionary(m => m, _ => new List<double>());
        for (int r = 0; r < runs; r++)
            foreach (var mode in Modes)
            {
                var stats = Protect(dirtier, keys, mode, TimeSpan.FromMilliseconds(10), 2.5, out double elapsed);
                rate[mode].Add(stats.Epochs / elapsed);
                pause[mode].Add(stats.PauseP50Ms);
                ack[mode].Add(stats.AckLatencyMs);
                kib[mode].Add(stats.BytesPerEpoch / 1024);
                var f = Protect(fastSpec, keys, mode, TimeSpan.FromMilliseconds(1), 2, out double fastElapsed);
                fast[mode].Add(f.Epochs / fastElapsed);
            }
        foreach (var mode in Modes)
            Console.WriteLine($"  Remus at 100 Hz, guest dirtying 1 MiB per 10 ms (uncompressed, {Median(kib[mode]):F0} KiB/epoch), {mode,-5}: " +
                              $"{Median(rate[mode]),5:F1} checkpoints/s, pause p50 {Median(pause[mode]):F2} ms, ack {Median(ack[mode]):F2} ms " +
                              $"(pause+ack {Median(pause[mode]) + Median(ack[mode]):F2} ms, ratio to plain {(Median(pause["plain"]) + Median(ack["plain"])) / (Median(pause[mode]) + Median(ack[mode])):F2})");
        foreach (var mode in Modes)
            Console.WriteLine($"  highest sustained checkpoint rate (interval 1 ms, 10 dirty pages), {mode,-5}: {Median(fast[mode]),5:F0} checkpoints/s, " +
                              $"ratio to plain {Median(fast[mode]) / Median(fast["plain"]):F2}");
    }

    /// <summary>A connected loopback pair, wrapped as the sender (Connect) and the receiver (Accept) of <paramref name="mode"/>.</summary>
    private static (Stream Sender, Stream Receiver) Pair(Keys keys, string mode)
    {
        var (a, b) = CheckpointBenches.Pair();
        if (mode == "plain") return (a, b);
        var accept = Task.Run(() => SecureChannel.Accept(b, keys.Security(mode, sender: false), "127.0.0.1", Handshake));
        var sender = SecureChannel.Connect(a, keys.Security(mode, sender: true), "127.0.0.1", Handshake);
        return (sender, accept.GetAwaiter().GetResult());
    }

    private static MigrationResult MigrateOnce(DomainSpec spec, Keys keys, string mode, int warmupMs)
    {
        using var src = SandboxDomain.Create(spec, new CapturingConsole());
        var run = new Thread(() => src.Run()) { IsBackground = true };
        run.Start();
        Thread.Sleep(warmupMs); // let it fill its memory (256 MiB: 4 s)
        var (a, b) = Pair(keys, mode);
        var receiver = new MigrationReceiver(b, b);
        SandboxDomain? got = null;
        var t = Task.Run(() => { got = receiver.Receive(_ => SandboxDomain.CreateIncoming(spec, new CapturingConsole())); receiver.ConfirmRunning(); });
        var result = new MigrationSender(src, a, a, new MigrationOptions { Compress = false }).Migrate(Config);
        t.Wait();
        got!.Kill();
        got.Dispose();
        src.Kill();
        run.Join();
        a.Dispose();
        b.Dispose();
        return result;
    }

    private static RemusStats Protect(DomainSpec spec, Keys keys, string mode, TimeSpan interval, double seconds, out double elapsed)
    {
        var console = new OutputCommitConsole(new CapturingConsole());
        using var domain = SandboxDomain.Create(spec, console);
        var run = new Thread(() => domain.Run()) { IsBackground = true };
        run.Start();
        var options = new RemusOptions { Interval = interval, Compress = false };
        var (a, b) = Pair(keys, mode);
        var backup = new RemusBackup(b, b, options);
        var watch = Task.Run(() =>
        {
            try { backup.Watch(_ => SandboxDomain.CreateIncoming(spec, new CapturingConsole())); }
            catch (Exception) { }
            finally { backup.Domain?.Dispose(); }
        });
        RemusStats stats;
        using (var primary = new RemusPrimary(domain, console, a, a, options))
        {
            primary.Protect(Config);
            var sw = Stopwatch.StartNew();
            Thread.Sleep(TimeSpan.FromSeconds(seconds));
            stats = primary.Stats;
            elapsed = sw.Elapsed.TotalSeconds;
            domain.Kill();
            run.Join();
        }
        a.Dispose();
        watch.Wait(TimeSpan.FromSeconds(30));
        b.Dispose();
        return stats;
    }

    private static double Median(List<double> xs)
    {
        var sorted = xs.Order().ToList();
        return sorted[sorted.Count / 2];
    }

    /// <summary>A throw-away CA with two host certificates and a pre-shared key, as PEM/key files in a 0700 temp folder.</summary>
    private sealed class Keys : IDisposable
    {
        private readonly string _dir = Directory.CreateTempSubdirectory("remus-bench-tls-").FullName;
        private readonly string _ca, _psk;
        private readonly (string Cert, string Key) _sender, _receiver;

        public Keys()
        {
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(_dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var caReq = new CertificateRequest("CN=remus-bench CA", caKey, HashAlgorithmName.SHA256);
            caReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            caReq.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
            var now = DateTimeOffset.UtcNow;
            using var ca = caReq.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));
            _ca = Write("ca.pem", ca.ExportCertificatePem());
            _sender = Host("sender", ca, caKey);
            _receiver = Host("receiver", ca, caKey);
            _psk = Write("psk", Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) + "\n");
        }

        public ChannelSecurity Security(string mode, bool sender) => mode switch
        {
            "TLS" => new ChannelSecurity
            {
                Mode = ChannelMode.Tls, CertFile = (sender ? _sender : _receiver).Cert, KeyFile = (sender ? _sender : _receiver).Key, CaFile = _ca,
            },
            "PSK" => new ChannelSecurity { Mode = ChannelMode.Psk, PskFile = _psk },
            _ => ChannelSecurity.Insecure,
        };

        private (string, string) Host(string name, X509Certificate2 ca, ECDsa caKey)
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var req = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
            req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
            req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
            req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
            var now = DateTimeOffset.UtcNow;
            byte[] serial = RandomNumberGenerator.GetBytes(8);
            serial[0] &= 0x7f; // positive
            using var cert = req.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey), now.AddDays(-1), now.AddDays(30), serial);
            return (Write($"{name}.crt", cert.ExportCertificatePem()), Write($"{name}.key", key.ExportPkcs8PrivateKeyPem()));
        }

        private string Write(string name, string text)
        {
            string path = Path.Combine(_dir, name);
            File.WriteAllText(path, text);
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            return path;
        }

        public void Dispose() => Directory.Delete(_dir, recursive: true);
    }
}
