using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace Remus.Tests.Support;

/// <summary>The language a runtime guest (tests/guests/go, tests/guests/rust) is written in.</summary>
public enum RuntimeLanguage
{
    /// <summary>tests/guests/go/NAME.go, built with `go build` (CGO_ENABLED=0: static, no libc).</summary>
    Go,

    /// <summary>tests/guests/rust/NAME.rs, built with `rustc -C target-feature=+crt-static` (static glibc).</summary>
    Rust,
}

/// <summary>
/// Builds the Go and Rust guest programs at test time, as <see cref="GuestBuilder"/> builds the C ones: into
/// $TMPDIR/remus-guests, keyed by a hash of the source, the toolchain's version and the flags; parallel-safe (a
/// temporary file renamed into place). Go builds offline and reproducibly: CGO_ENABLED=0, GOFLAGS=-trimpath,
/// GOTOOLCHAIN=local, GOPROXY=off, GOFLAGS without modules fetching anything, and a private GOCACHE/GOPATH under the
/// test output directory (nothing is written to the user's caches). A missing toolchain is reported by
/// <see cref="Available"/> with the reason, so tests can skip with it.
/// </summary>
public static class RuntimeBuilder
{
    private static readonly ConcurrentDictionary<string, Lazy<(string Path, string Log)>> builds = new();
    private static readonly Lazy<string?> goVersion = new(() => ToolVersion("go", "version"));
    private static readonly Lazy<string?> rustcVersion = new(() => ToolVersion("rustc", "--version"));

    /// <summary>Where the Go toolchain keeps its build cache and module path for these builds.</summary>
    public static string GoHome { get; } = Path.Combine(AppContext.BaseDirectory, "go-build-home");

    /// <summary>tests/guests/go or tests/guests/rust.</summary>
    public static string SourceDir(RuntimeLanguage language) =>
        Path.Combine(GuestBuilder.GuestsDir, language == RuntimeLanguage.Go ? "go" : "rust");

    /// <summary>The source file of a program.</summary>
    public static string SourcePath(RuntimeLanguage language, string program) =>
        Path.Combine(SourceDir(language), program + (language == RuntimeLanguage.Go ? ".go" : ".rs"));

    /// <summary>Whether the toolchain for <paramref name="language"/> is installed; else why not, in one line.</summary>
    public static bool Available(RuntimeLanguage language, out string reason)
    {
        var version = language == RuntimeLanguage.Go ? goVersion.Value : rustcVersion.Value;
        reason = version is null
            ? language == RuntimeLanguage.Go
                ? "no `go` on PATH (Debian: apt-get install golang-go; .ci/run installs it)"
                : "no `rustc` on PATH (Debian: apt-get install rustc; .ci/run installs it)"
            : "";
        return version is not null;
    }

    /// <summary>Skips the running [SkippableFact]/[SkippableTheory] unless the toolchain is here.</summary>
    public static void Require(RuntimeLanguage language)
    {
        if (!Available(language, out var reason)) Xunit.Skip.If(true, reason);
    }

    /// <summary>Builds the program (cached) and returns the executable's absolute path.</summary>
    /// <exception cref="InvalidOperationException">The toolchain is missing or the build failed (message has its output).</exception>
    public static string Build(RuntimeLanguage language, string program)
    {
        if (!Available(language, out var reason)) throw new InvalidOperationException(reason);
        var source = SourcePath(language, program);
        var version = language == RuntimeLanguage.Go ? goVersion.Value! : rustcVersion.Value!;
        string[] flags = language == RuntimeLanguage.Go
            ? ["build", "-o", "{out}", "{src}"]
            : ["-O", "--edition", "2021", "-C", "target-feature=+crt-static", "-o", "{out}", "{src}"];
        var bytes = File.ReadAllBytes(source);
        var key = version + "\0" + string.Join("\0", flags) + "\0";
        var hash = Convert.ToHexStringLower(SHA256.HashData([.. Encoding.UTF8.GetBytes(key), .. bytes]))[..16];
        var tag = language == RuntimeLanguage.Go ? "go" : "rust";
        var output = Path.Combine(GuestBuilder.CacheDir, $"{program}-{tag}-{hash}");
        var lazy = builds.GetOrAdd(output, o => new Lazy<(string, string)>(() => BuildOnce(language, o, source, flags)));
        var (path, log) = lazy.Value;
        if (path.Length == 0)
        {
            builds.TryRemove(output, out _);
            throw new InvalidOperationException($"building {source} failed:\n{log}");
        }
        return path;
    }

    /// <summary>The environment `go build` runs in: offline, static, reproducible, caches private to the tests.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> GoEnvironment() =>
    [
        new("CGO_ENABLED", "0"),
        new("GOFLAGS", "-trimpath"),
        new("GOTOOLCHAIN", "local"),
        new("GOPROXY", "off"),
        new("GO111MODULE", "off"), // a lone file outside any module: no go.mod, nothing fetched
        new("GOCACHE", Path.Combine(GoHome, "cache")),
        new("GOPATH", Path.Combine(GoHome, "path")),
        new("HOME", GoHome),
    ];

    private static (string Path, string Log) BuildOnce(RuntimeLanguage language, string output, string source, string[] flags)
    {
        if (File.Exists(output)) return (output, "");
        Directory.CreateDirectory(GuestBuilder.CacheDir);
        var tmp = $"{output}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            // The source by its bare name, from its own folder: panic messages and debug info name "x.rs", not a host path.
            var args = flags.Select(f => f == "{out}" ? tmp : f == "{src}" ? Path.GetFileName(source) : f).ToArray();
            RunResult r;
            if (language == RuntimeLanguage.Go)
            {
                Directory.CreateDirectory(GoHome);
                r = ProcessRunner.Run("go", args, null, TimeSpan.FromMinutes(5), extraEnvironment: GoEnvironment(),
                    workingDirectory: Path.GetDirectoryName(source));
            }
            else
            {
                r = ProcessRunner.Run("rustc", args, null, TimeSpan.FromMinutes(5), workingDirectory: Path.GetDirectoryName(source));
            }
            var log = r.StdoutText + r.StderrText;
            if (r.ExitCode != 0 || !File.Exists(tmp)) return ("", $"{language} build exited {r.ExitCode}:\n{log}");
            File.Move(tmp, output, overwrite: true);
            return (output, log);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return ("", $"cannot start the {language} toolchain: {e.Message}");
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    private static string? ToolVersion(string tool, string arg)
    {
        if (ProcessRunner.FindOnPath(tool) is null) return null;
        try
        {
            var r = ProcessRunner.Run(tool, [arg], null, TimeSpan.FromMinutes(1),
                extraEnvironment: tool == "go" ? GoEnvironment() : null);
            return r.ExitCode == 0 ? r.StdoutText.Trim() : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}
