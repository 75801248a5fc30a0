using System.Text;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Guests;

/// <summary>One scripted run of a tests/guests program. "{files}" in Args/Files is replaced by <see cref="GuestFiles.Root"/>.</summary>
public sealed record GuestCase(string Name, string Program, int ExpectedExit = 0)
{
    public string[] Args { get; init; } = [];
    public KeyValuePair<string, string>[] Env { get; init; } = [];
    public string[] Files { get; init; } = [];
    public int? MemoryMiB { get; init; }
    public byte[] Stdin { get; init; } = [];

    /// <summary>Builds the program for the flavour and describes the run.</summary>
    public GuestInvocation Invocation(GuestFlavor flavor) => new(GuestBuilder.Build(Program, flavor))
    {
        Args = [.. Args.Select(Expand)],
        Env = Env,
        Files = [.. Files.Select(Expand)],
        MemoryMiB = MemoryMiB,
        Stdin = Stdin,
    };

    private static string Expand(string s) => s.Contains("{files}", StringComparison.Ordinal) ? s.Replace("{files}", GuestFiles.Root, StringComparison.Ordinal) : s;

    public override string ToString() => Name;
}

/// <summary>Every guest run that must look the same in a domain as natively.</summary>
public static class GuestCatalog
{
    private static KeyValuePair<string, string> E(string k, string v) => new(k, v);

    private static byte[] TextStdin()
    {
        var sb = new StringBuilder();
        sb.Append("first line\n\n  indented\twith tab\n");
        for (int i = 0; i < 200; i++) sb.Append("line ").Append(i).Append(" of the input, ünïcødé ✓\n");
        sb.Append("no newline at the end");
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    private static byte[] BinaryStdin(int size)
    {
        var b = new byte[size];
        uint x = 2463534242;
        for (int i = 0; i < size; i++) { x ^= x << 13; x ^= x >> 17; x ^= x << 5; b[i] = (byte)x; }
        return b;
    }

    public static IReadOnlyList<GuestCase> All { get; } =
    [
        new("streams", "streams"),
        new("stdin_count-text", "stdin_count") { Stdin = TextStdin() },
        new("stdin_count-empty", "stdin_count"),
        new("stdin_count-300KiB-binary", "stdin_count") { Stdin = BinaryStdin(300 * 1024) },
        new("malloc_mix", "malloc_mix"),
        new("files", "files")
        {
            Args = ["{files}/data.bin", "{files}/tree"],
            Files = ["{files}/data.bin", "{files}/tree"],
        },
        new("clocks", "clocks"),
        new("sleep", "sleep"),
        new("futex_timeout", "futex_timeout"),
        new("cputime", "cputime"),
        new("rlimits", "rlimits") { MemoryMiB = 256 }, // room to map 100 MiB, which only RLIMIT_AS refuses
        new("random", "random"),
        new("sysinfo", "sysinfo"),
        new("envargs-bare", "envargs"),
        new("envargs-full", "envargs")
        {
            // Arguments after the program belong to the program, even when they look like remus options.
            Args = ["one", "two words", "", "ünïcødé ✓", "-x", "--memory", "7", "--", "--env", "A=B", "--file", "/etc/passwd"],
            Env = [E("REMUS_A", "alpha"), E("REMUS_EMPTY", ""), E("REMUS_EQ", "a=b=c"), E("REMUS_SPACE", "with  spaces"), E("REMUS_UTF8", "ü✓"), E("Z_LAST", "z")],
        },
        new("tls", "tls"),
        new("exit-0", "exitcode", 0) { Args = ["exit", "0"] },
        new("exit-1", "exitcode", 1) { Args = ["exit", "1"] },
        new("exit-42", "exitcode", 42) { Args = ["exit", "42"] },
        new("exit-255", "exitcode", 255) { Args = ["exit", "255"] },
        new("exit-256", "exitcode", 0) { Args = ["exit", "256"] },
        new("return-0", "exitcode", 0) { Args = ["return", "0"] },
        new("return-7", "exitcode", 7) { Args = ["return", "7"] },
        new("_exit-3", "exitcode", 3) { Args = ["_exit", "3"] },
        new("sysexit-5", "exitcode", 5) { Args = ["sysexit", "5"] },
        new("atexit-9", "exitcode", 9) { Args = ["atexit", "9"] },
        new("crash-segv", "crash", 139) { Args = ["segv"] },
        new("crash-segvwrite", "crash", 139) { Args = ["segvwrite"] },
        new("crash-gp", "crash", 139) { Args = ["gp"] },
        new("crash-fpe", "crash", 136) { Args = ["fpe"] },
        new("crash-intmin", "crash", 136) { Args = ["intmin"] },
        new("crash-ill", "crash", 132) { Args = ["ill"] },
        new("crash-abort", "crash", 134) { Args = ["abort"] },
        new("crash-port", "crash", 139) { Args = ["port"] },     // port 0x20: the KVM stub's port, reachable from ring 3
        new("crash-portdx", "crash", 139) { Args = ["portdx"] },
        new("cpu_sieve", "cpu_sieve") { Args = ["2000000"] },
        new("memtouch-40-of-64", "memtouch") { Args = ["40"], MemoryMiB = 64 },
        new("ticker", "ticker") { Args = ["5", "20"] },
        new("fpmath", "fpmath"),
        new("signals", "signals"),
        new("sigfault", "sigfault", 139),     // ends with a fault whose signal is blocked
        new("sigfault-badstack", "sigfault", 139) { Args = ["badstack"] },
        new("sigdeliver", "sigdeliver", 143), // ends with raise(SIGTERM)
        new("sigtimers", "sigtimers"),
        new("sigvec", "sigvec"),
        new("sigckpt", "sigckpt") { Args = ["10"] },
        new("bigout-512KiB", "bigout") { Args = ["512"] },
        new("bigimage", "bigimage"),
        // Pipes, events and readiness (issue 8 item 4).
        new("pipes", "pipes"),
        new("pipes-sigpipe", "pipes", 141) { Args = ["sigpipe"] },
        new("eventfd", "eventfd"),
        new("timerfd", "timerfd"),
        new("epoll", "epoll"),
        new("poll_select", "poll_select"),
        new("devnull", "devnull"),
        new("procmaps", "procmaps"),
        new("iov_bounds", "iov_bounds"), // readv/writev lengths beyond the buffers (issue 11: found by sysfuzz.c)
        new("sigwait_io", "sigwait_io"), // signals ending readiness waits (EINTR, SA_RESTART, masks of ppoll/epoll_pwait)
        new("vm_maps", "vm_maps"),
        new("vm_copy", "vm_copy") { Args = ["{files}/data.bin"], Files = ["{files}/data.bin"] },
        new("vm_reserve", "vm_reserve"),
        // What the Go and Rust runtimes ask of the kernel beyond memory and threads (issue 8 items 4 and 6).
        new("statx", "statx") { Args = ["{files}/data.bin", "{files}/tree"], Files = ["{files}/data.bin", "{files}/tree"] },
        new("prctl", "prctl"),
        new("sigtimedwait", "sigtimedwait"),
        new("sysfs_cpu", "sysfs_cpu"),
        new("console_poll", "console_poll") { Stdin = Encoding.UTF8.GetBytes("hello world\n") }, // stdio polls and epolls as pipes
        new("textprot", "textprot"), // the image's segment protections (issue 11, fuzzer finding 3): EFAULT, SIGSEGV, mprotect, maps
    ];

    /// <summary>The cases also run as glibc static-pie (the loader must relocate a position-independent image).</summary>
    public static IReadOnlyList<string> StaticPieCases { get; } =
        ["streams", "envargs-full", "tls", "malloc_mix", "files", "crash-segv", "fpmath", "bigimage", "textprot"];

    public static GuestCase Get(string name) => All.Single(c => c.Name == name);

    /// <summary>(case, flavour) pairs: every case with every available libc, plus the static-pie subset.</summary>
    public static TheoryData<string, string> CasesByFlavor()
    {
        var data = new TheoryData<string, string>();
        foreach (var c in All)
            foreach (var f in GuestBuilder.Libcs)
                data.Add(c.Name, f.ToString());
        foreach (var n in StaticPieCases) data.Add(n, nameof(GuestFlavor.GlibcStaticPie));
        return data;
    }
}

/// <summary>
/// Host files for the "files" guest, made once per test process under the temp dir (removed at exit).
/// Layout: data.bin (9023 bytes: a text line, then a byte pattern), unlisted.txt (exists but is never given
/// with --file), tree/{alpha.txt, b.bin, empty, zz-ünï.txt, sub/inner.txt}.
/// </summary>
public static class GuestFiles
{
    private static readonly Lazy<string> root = new(Create);

    public static string Root => root.Value;

    private static string Create()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"remus-guest-files-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path.Combine(dir, "tree", "sub"));
        var data = new List<byte>(Encoding.ASCII.GetBytes("first line of the file\n"));
        for (int i = 0; i < 9000; i++) data.Add((byte)((i * 7 + 3) % 256));
        File.WriteAllBytes(Path.Combine(dir, "data.bin"), [.. data]);
        File.WriteAllText(Path.Combine(dir, "unlisted.txt"), "not for the guest\n");
        File.WriteAllText(Path.Combine(dir, "tree", "alpha.txt"), string.Concat(Enumerable.Range(0, 100).Select(i => $"alpha {i}\n")));
        File.WriteAllBytes(Path.Combine(dir, "tree", "b.bin"), [0, 1, 2, 3, 255]);
        File.WriteAllBytes(Path.Combine(dir, "tree", "empty"), []);
        File.WriteAllText(Path.Combine(dir, "tree", "zz-ünï.txt"), "utf-8 name\n");
        File.WriteAllText(Path.Combine(dir, "tree", "sub", "inner.txt"), "inner\n");
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        };
        return dir;
    }
}
