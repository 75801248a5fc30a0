using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace Remus.Tests.Support;

/// <summary>How a guest program is compiled.</summary>
public enum GuestFlavor
{
    /// <summary>gcc -static -O2 (glibc, ET_EXEC).</summary>
    Glibc,

    /// <summary>musl-gcc -static -O2 (only when musl-gcc is on PATH).</summary>
    Musl,

    /// <summary>gcc -static-pie -O2 (glibc, ET_DYN without an interpreter: the loader must relocate).</summary>
    GlibcStaticPie,

    /// <summary>gcc -O2 (a normal dynamically linked PIE; remus must refuse it).</summary>
    GlibcDynamic,

    /// <summary>gcc -O2 -no-pie (a dynamically linked ET_EXEC; remus must refuse it).</summary>
    GlibcDynamicNoPie,
}

/// <summary>
/// Compiles the C programs of tests/guests at test time into a cache under the system temp directory, keyed by a
/// hash of the source, compiler and flags. Parallel-safe (within and across processes): each build writes a
/// temporary file and renames it into place.
/// </summary>
public static class GuestBuilder
{
    private static readonly Lazy<string> repoRoot = new(FindRepoRoot);
    private static readonly Lazy<string?> muslGcc = new(() => ProcessRunner.FindOnPath("musl-gcc"));
    private static readonly ConcurrentDictionary<string, Lazy<(string Path, string Log)>> builds = new();

    /// <summary>The folder holding Remus.sln (found by walking up from AppContext.BaseDirectory).</summary>
    public static string RepoRoot => repoRoot.Value;

    /// <summary>tests/guests under the repository root.</summary>
    public static string GuestsDir => Path.Combine(RepoRoot, "tests", "guests");

    /// <summary>Where built guests are cached: $TMPDIR/remus-guests.</summary>
    public static string CacheDir { get; } = Path.Combine(Path.GetTempPath(), "remus-guests");

    public static bool MuslAvailable => muslGcc.Value is not null;

    /// <summary>The libc flavours every guest is tested with: glibc, and musl when musl-gcc is installed.</summary>
    public static IReadOnlyList<GuestFlavor> Libcs => MuslAvailable ? [GuestFlavor.Glibc, GuestFlavor.Musl] : [GuestFlavor.Glibc];

    /// <summary>Path of tests/guests/{program}.c.</summary>
    public static string SourcePath(string program) => Path.Combine(GuestsDir, program + ".c");

    /// <summary>Builds tests/guests/{program}.c (cached) and returns the absolute path of the executable.</summary>
    /// <exception cref="InvalidOperationException">The compiler is missing or the build failed (message has its output).</exception>
    public static string Build(string program, GuestFlavor flavor = GuestFlavor.Glibc)
    {
        var (compiler, flags) = flavor switch
        {
            GuestFlavor.Glibc => ("gcc", new[] { "-static", "-O2" }),
            GuestFlavor.Musl => (muslGcc.Value ?? throw new InvalidOperationException("musl-gcc is not on PATH"), new[] { "-static", "-O2" }),
            GuestFlavor.GlibcStaticPie => ("gcc", new[] { "-static-pie", "-O2" }),
            GuestFlavor.GlibcDynamic => ("gcc", new[] { "-O2" }),
            GuestFlavor.GlibcDynamicNoPie => ("gcc", new[] { "-O2", "-no-pie" }),
            _ => throw new ArgumentOutOfRangeException(nameof(flavor)),
        };
        return Compile(SourcePath(program), compiler, flags, FlavorTag(flavor), out var log)
            ?? throw new InvalidOperationException($"building {program} ({flavor}) failed:\n{log}");
    }

    /// <summary>
    /// Compiles one C file with "compiler flags... -o out source -lm" into the cache; returns the executable's path,
    /// or null (with the compiler's output in <paramref name="log"/>) if compilation failed.
    /// </summary>
    public static string? Compile(string sourcePath, string compiler, IReadOnlyList<string> flags, string tag, out string log)
    {
        var source = File.ReadAllBytes(sourcePath);
        var keyText = compiler + "\0" + string.Join("\0", flags) + "\0";
        var hash = Convert.ToHexStringLower(SHA256.HashData([.. Encoding.UTF8.GetBytes(keyText), .. source]))[..16];
        var name = Path.GetFileNameWithoutExtension(sourcePath);
        var output = Path.Combine(CacheDir, $"{name}-{tag}-{hash}");
        var lazy = builds.GetOrAdd(output, o => new Lazy<(string, string)>(() => BuildOnce(o, sourcePath, compiler, flags)));
        var (path, buildLog) = lazy.Value;
        log = buildLog;
        if (path.Length == 0)
        {
            builds.TryRemove(output, out _); // let a later call retry (and report) rather than cache the failure
            return null;
        }
        return path;
    }

    private static (string Path, string Log) BuildOnce(string output, string sourcePath, string compiler, IReadOnlyList<string> flags)
    {
        if (File.Exists(output)) return (output, "");
        Directory.CreateDirectory(CacheDir);
        var tmp = $"{output}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            RunResult r;
            try
            {
                r = ProcessRunner.Run(compiler, [.. flags, "-o", tmp, sourcePath, "-lm"], null, TimeSpan.FromMinutes(2));
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                return ("", $"cannot start {compiler}: {e.Message}");
            }
            var log = r.StdoutText + r.StderrText;
            if (r.ExitCode != 0 || !File.Exists(tmp)) return ("", $"{compiler} {string.Join(' ', flags)} exited {r.ExitCode}:\n{log}");
            File.Move(tmp, output, overwrite: true); // atomic: readers see the whole file or none
            return (output, log);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    private static string FlavorTag(GuestFlavor f) => f switch
    {
        GuestFlavor.Glibc => "glibc",
        GuestFlavor.Musl => "musl",
        GuestFlavor.GlibcStaticPie => "glibc-spie",
        GuestFlavor.GlibcDynamic => "glibc-dyn",
        GuestFlavor.GlibcDynamicNoPie => "glibc-dyn-nopie",
        _ => f.ToString(),
    };

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Remus.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException($"no Remus.sln above {AppContext.BaseDirectory}");
    }
}
