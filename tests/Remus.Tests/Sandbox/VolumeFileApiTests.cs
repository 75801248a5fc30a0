using Remus.Checkpoint;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Sandbox.Volumes;
using Remus.Tests.Checkpoint;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Sandbox;

/// <summary>
/// A volume is a writable directory the program uses as Linux's own file system (tests/guests/volumes/fileapi.c):
/// every path and data call, errors included, prints exactly what it prints natively on a fresh directory, with
/// glibc and musl, on each platform (the volume mounted at the same guest path as its host path). What only a domain
/// does (fallocate modes refused, writable shared mappings refused, .remus-orphans invisible) and escapes (.., symlinks
/// to / and out, loops, renames out) have fixed answers. A save and restore with a volume file open mid-way keeps
/// its offset; two domains cannot use one directory.
/// </summary>
public sealed class VolumeFileApiTests : IDisposable
{
    private static readonly TimeSpan Never = TimeSpan.FromSeconds(120);
    private readonly List<string> _dirs = [];

    private string FreshDir()
    {
        string d = Path.Combine(Path.GetTempPath(), $"remus-vol-{Guid.NewGuid():N}");
        Directory.CreateDirectory(d);
        _dirs.Add(d);
        return d;
    }

    public void Dispose()
    {
        foreach (var d in _dirs)
            foreach (var p in new[] { d, VolumeStaging.StagingPath(d), d + "-outside" })
                if (Directory.Exists(p)) Directory.Delete(p, recursive: true);
    }

    public static TheoryData<GuestFlavor, PlatformKind> Cases()
    {
        var d = new TheoryData<GuestFlavor, PlatformKind>();
        foreach (var p in Platforms.Each)
            foreach (var f in GuestBuilder.Libcs) d.Add(f, p);
        return d;
    }

    private static DomainSpec Spec(string program, string dir, PlatformKind platform, params string[] args) => new()
    {
        ProgramPath = program,
        Args = [dir, .. args],
        MemoryMiB = 64,
        Platform = platform,
        Volumes = [new VolumeSpec { HostPath = dir, GuestPath = dir }],
    };

    internal static (int Status, string Output) RunInDomain(DomainSpec spec)
    {
        var console = new RecordingConsole();
        using var d = new RunningDomain(SandboxDomain.Create(spec, console));
        int status = d.Wait(Never);
        return (status, console.Text);
    }

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void Every_file_call_on_a_volume_answers_as_on_the_host(GuestFlavor flavor, PlatformKind platform)
    {
        Platforms.Require(platform);
        string program = GuestBuilder.Build("volumes/fileapi", flavor);
        var native = NativeRun.Run(new GuestInvocation(program) { Args = [FreshDir(), "api"] });
        Assert.True(native.ExitCode == 0, $"the native run itself is off:\n{native}");
        var (status, output) = RunInDomain(Spec(program, FreshDir(), platform, "api"));
        Assert.Equal(native.StdoutText, output);
        Assert.Equal(0, status);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void What_only_a_domain_does_on_a_volume(PlatformKind platform)
    {
        Platforms.Require(platform);
        var (status, output) = RunInDomain(Spec(GuestBuilder.Build("volumes/fileapi"), FreshDir(), platform, "domain"));
        Assert.DoesNotContain("FAIL", output);
        Assert.Equal(16, output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Equal(0, status);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void A_tmpfs_at_tmp_works_like_a_volume_and_goes_with_its_domain(PlatformKind platform)
    {
        Platforms.Require(platform);
        var spec = new DomainSpec
        {
            ProgramPath = GuestBuilder.Build("volumes/fileapi"),
            Args = ["/tmp", "domain"],
            MemoryMiB = 64,
            Platform = platform,
            Volumes = [new VolumeSpec { GuestPath = "/tmp", Tmpfs = true }],
        };
        var console = new RecordingConsole();
        string privateDir;
        using (var d = new RunningDomain(SandboxDomain.Create(spec, console)))
        {
            privateDir = d.Domain.VolumeTable.HostDir(0);
            Assert.Equal(0, d.Wait(Never));
            Assert.True(File.Exists(Path.Combine(privateDir, "g")), "the program's files are in the private directory while the domain lives");
        }
        Assert.DoesNotContain("FAIL", console.Text);
        Assert.StartsWith("/dev/shm/", privateDir);
        Assert.False(Directory.Exists(privateDir), "the tmpfs's directory outlived its domain");
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Paths_cannot_leave_a_volume(PlatformKind platform)
    {
        Platforms.Require(platform);
        string dir = FreshDir();
        Directory.CreateDirectory(dir + "-outside");
        File.WriteAllText(Path.Combine(Path.GetDirectoryName(dir)!, "etc-passwd-probe"), "");
        var (status, output) = RunInDomain(Spec(GuestBuilder.Build("volumes/fileapi"), dir, platform, "escape"));
        Assert.DoesNotContain("FAIL", output);
        Assert.Equal(21, output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Equal(0, status);
        Assert.False(File.Exists("/inside-moved"));
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void A_second_domain_cannot_use_a_volume_in_use(PlatformKind platform)
    {
        Platforms.Require(platform);
        string dir = FreshDir();
        var spec = Spec(GuestBuilder.Build("volumes/fileapi"), dir, platform, "ckpt", "1");
        using var first = SandboxDomain.Create(spec, new RecordingConsole());
        var e = Assert.Throws<SandboxException>(() => SandboxDomain.Create(spec, new RecordingConsole()));
        Assert.Equal($"volume {dir} is in use by another domain on this host", e.Message);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void An_open_volume_file_keeps_its_offset_through_save_and_restore(PlatformKind platform)
    {
        Platforms.Require(platform);
        string program = GuestBuilder.Build("volumes/fileapi");
        var native = NativeRun.Run(new GuestInvocation(program) { Args = [FreshDir(), "ckpt", "40"] });
        Assert.True(native.ExitCode == 0, $"the native run itself is off:\n{native}");
        string dir = FreshDir();
        var spec = Spec(program, dir, platform, "ckpt", "40");
        var console = new RecordingConsole();
        var current = new RunningDomain(SandboxDomain.Create(spec, console));
        int restores = 0;
        var deadline = DateTime.UtcNow + Never;
        string live = dir;
        string copy = FreshDir();
        try
        {
            while (true)
            {
                Thread.Sleep(60);
                current.Domain.Pause();
                if (current.Domain.State == DomainState.Exited) break;
                Assert.True(DateTime.UtcNow < deadline, $"the program did not end after {restores} restores");
                var file = new MemoryStream();
                DomainSave.Save(current.Domain, file, "{}"u8.ToArray(), compress: false);
                // What the replica would carry: the volume's content as of the pause, into the receiver's staging.
                CopyTree(live, copy);
                current.Dispose();
                file.Position = 0;
                current = new RunningDomain(DomainSave.Restore(file, _ =>
                {
                    var d = SandboxDomain.CreateIncoming(spec, console);
                    CopyTree(copy, VolumeStaging.StagingPath(dir));
                    return d;
                }));
                live = VolumeStaging.StagingPath(dir);
                restores++;
            }
            Assert.Equal(0, current.Wait(Never));
        }
        finally
        {
            current.Dispose();
        }
        Assert.True(restores >= 2, $"only {restores} restores");
        Assert.Equal(native.StdoutText, console.Text);
    }

    private static void CopyTree(string from, string to)
    {
        if (Directory.Exists(to))
            foreach (var e in Directory.EnumerateFileSystemEntries(to))
                if (Directory.Exists(e)) Directory.Delete(e, true); else File.Delete(e);
        Directory.CreateDirectory(to);
        foreach (var f in Directory.EnumerateFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)), overwrite: true);
        foreach (var d in Directory.EnumerateDirectories(from)) CopyTree(d, Path.Combine(to, Path.GetFileName(d)));
    }
}
