using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Remus.Checkpoint.Stream;

/// <summary>
/// 4. The whole stream path as a migration's first round takes it: a CheckpointWriter writing one epoch of N MiB of
/// mixed pages into a loopback TCP socket, a CheckpointReader on the other end reading, verifying and applying it to
/// a second N MiB image (both ends in this process, so they share the machine's cores as a migration on one host
/// does). Prints GB/s of guest pages (wall time from the first page written to the last page applied) and CPU
/// seconds per GB of guest pages (Process.TotalProcessorTime, both ends), beside memcpy of the same bytes.
/// </summary>
static class Pipeline
{
    const int P = StreamFormat.PageSize;

    public static void Run(PageKinds kinds, int mib, int runs, string? only = null)
    {
        int count = mib * 256;
        Console.WriteLine($"4. Pipeline: writer -> loopback TCP -> reader (verify, apply); one epoch of {mib} MiB = {kinds.MixDescription}");
        Console.WriteLine($"   median of {runs} runs; CPU s/GB counts both ends (this process); load {Load()}");
        var image = kinds.MixedImage(count);
        var target = new byte[image.Length];
        Console.WriteLine($"{"scenario",-44} {"GB/s",8} {"CPU s/GB",9} {"wire MB",9} {"send s",7} {"apply s",8}");

        var copy = Measure(runs, () => { image.AsSpan().CopyTo(target); return (0L, 0.0, 0.0); });
        Print("memcpy (the physical limit)", copy, image.Length);

        foreach (var (name, options) in Scenarios())
        {
            if (only != null && !name.StartsWith(only, StringComparison.Ordinal)) continue;
            var result = Measure(runs, () => Once(image, target, count, options));
            Print(name, result, image.Length);
            if (!image.AsSpan().SequenceEqual(target)) Console.WriteLine("   !! the receiver's image differs from the sender's");
            target.AsSpan().Clear();
        }
    }

    static IEnumerable<(string, CheckpointWriterOptions)> Scenarios()
    {
        yield return ("raw (-u)", CheckpointWriterOptions.Uncompressed);
        yield return ("compressed, 1 encode thread", CheckpointWriterOptions.Default with { EncodeThreads = 1 });
        yield return ($"compressed, {CheckpointWriterOptions.Default.EncodeThreads} encode threads", CheckpointWriterOptions.Default);
    }

    record struct Sample(double Seconds, double CpuSeconds, long WireBytes, double SendSeconds, double ApplySeconds);

    static List<Sample> Measure(int runs, Func<(long Wire, double Send, double Apply)> op)
    {
        var samples = new List<Sample>();
        op(); // warm-up: JIT, page faults of the target
        GC.Collect();
        for (int r = 0; r < runs; r++)
        {
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            var (wire, send, apply) = op();
            double s = sw.Elapsed.TotalSeconds;
            double cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
            samples.Add(new Sample(s, cpu, wire, send, apply));
        }
        return samples;
    }

    static void Print(string name, List<Sample> samples, long bytes)
    {
        var sorted = samples.OrderBy(x => x.Seconds).ToList();
        var m = sorted[sorted.Count / 2];
        double gb = bytes / 1e9;
        string wire = m.WireBytes == 0 ? "-" : $"{m.WireBytes / 1e6:F0}";
        string send = m.WireBytes == 0 ? "-" : $"{m.SendSeconds:F3}";
        string apply = m.WireBytes == 0 ? "-" : $"{m.ApplySeconds:F3}";
        Console.WriteLine($"{name,-44} {gb / m.Seconds,8:F2} {m.CpuSeconds / gb,9:F2} {wire,9} {send,7} {apply,8}");
    }

    static (long, double, double) Once(byte[] image, byte[] target, int count, CheckpointWriterOptions options)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var client = new TcpClient { NoDelay = true };
        client.Connect(IPAddress.Loopback, port);
        using var server = listener.AcceptTcpClient();
        server.NoDelay = true;
        var sw = Stopwatch.StartNew();
        double applyTime = 0;
        Exception? failed = null;
        var receiver = new Thread(() =>
        {
            try
            {
            var reader = new CheckpointReader(server.GetStream());
            reader.ReadHeader();
            using var epoch = reader.ReadEpoch() ?? throw new InvalidOperationException("no epoch");
            var t = Stopwatch.StartNew();
            epoch.ApplyTo(new Sink(target, count));
            applyTime = t.Elapsed.TotalSeconds;
            if (reader.ReadEpoch() != null) throw new InvalidOperationException("more than one epoch");
            }
            catch (Exception e)
            {
                failed = e;
            }
        }) { Name = "receiver" };
        receiver.Start();
        var stream = client.GetStream();
        var writer = new CheckpointWriter(stream, options);
        writer.WriteHeader(new StreamHeader("{}"u8.ToArray()));
        var pfns = new ulong[count];
        for (int i = 0; i < count; i++) pfns[i] = (ulong)i;
        writer.WritePages(pfns, new Source(image));
        writer.EndCheckpoint(0);
        writer.WriteEnd();
        double send = sw.Elapsed.TotalSeconds;
        receiver.Join();
        if (failed != null) throw new InvalidOperationException("the receiver failed", failed);
        return (writer.Statistics.BytesWritten, send, applyTime);
    }

    static string Load() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "?";

    sealed class Source(byte[] image) : IPageSource
    {
        public ReadOnlySpan<byte> GetPage(ulong pfn) => image.AsSpan((int)pfn * P, P);
    }

    sealed class Sink(byte[] image, int count) : IPageSink
    {
        public ulong PageCount => (ulong)count;
        public Span<byte> GetPage(ulong pfn) => image.AsSpan((int)pfn * P, P);
        public bool ConcurrentPages => true;
    }
}
