using Remus.Checkpoint;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Sandbox.Volumes;
using Remus.Tests.Checkpoint;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Sandbox;

/// <summary>
/// Write locks on a volume file (tests/guests/locks/locks_rw.c, the volume mounted at its host path) print exactly
/// what they print natively, with glibc and musl, on each platform: OFD write locks of two descriptions conflict
/// (EAGAIN) and conflict with the process's POSIX locks, conversions that would conflict fail, the access mode checks,
/// SEEK_END ranges; F_OFD_SETLKW and F_SETLKW block in one thread until another unlocks or closes, and a handled
/// signal interrupts them (EINTR) or they go on (SA_RESTART). And with the domain saved and restored every 100 ms while
/// two threads wait in F_OFD_SETLKW and F_SETLKW, the locks stay held and the waiters complete once the holder unlocks.
/// 3000 random lock operations with a fixed seed (tests/guests/locks/locks_random.c: POSIX and OFD locks through three
/// descriptions, flocks, closes and reopens, each followed by a random F_GETLK probe) answer as natively: merging,
/// splitting, conflicts and which conflict F_GETLK reports first.
/// </summary>
public sealed class LockVolumeTests : IDisposable
{
    private static readonly TimeSpan Never = TimeSpan.FromSeconds(120);
    private readonly List<string> _dirs = [];

    private string FreshDir()
    {
        string d = Path.Combine(Path.GetTempPath(), $"remus-lockvol-{Guid.NewGuid():N}");
        Directory.CreateDirectory(d);
        _dirs.Add(d);
        return d;
    }

    public void Dispose()
    {
        foreach (var d in _dirs)
            foreach (var p in new[] { d, VolumeStaging.StagingPath(d) })
                if (Directory.Exists(p)) Directory.Delete(p, recursive: true);
    }

    public static TheoryData<GuestFlavor, PlatformKind> Cases()
    {
        var d = new TheoryData<GuestFlavor, PlatformKind>();
        foreach (var p in Platforms.Each)
            foreach (var f in GuestBuilder.Libcs) d.Add(f, p);
        return d;
    }

    private static DomainSpec Spec(string program, string dir, PlatformKind platform, string mode) => new()
    {
        ProgramPath = program,
        Args = [dir, mode],
        MemoryMiB = 64,
        Platform = platform,
        Volumes = [new VolumeSpec { HostPath = dir, GuestPath = dir }],
    };

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void Write_locks_on_a_volume_file_answer_as_on_the_host(GuestFlavor flavor, PlatformKind platform)
    {
        Threads.Require(platform);
        string program = GuestBuilder.Build("locks/locks_rw", flavor);
        var native = NativeRun.Run(new GuestInvocation(program) { Args = [FreshDir(), "api"] });
        Assert.True(native.ExitCode == 0, $"the native run itself is off:\n{native}");
        var console = new RecordingConsole();
        int status;
        using (var d = new RunningDomain(SandboxDomain.Create(Spec(program, FreshDir(), platform, "api"), console)))
            status = d.Wait(Never);
        Assert.Equal(native.StdoutText, console.Text);
        Assert.Equal(0, status);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Three_thousand_random_lock_operations_answer_as_on_the_host(PlatformKind platform)
    {
        Platforms.Require(platform);
        string program = GuestBuilder.Build("locks/locks_random");
        var native = NativeRun.Run(new GuestInvocation(program) { Args = [FreshDir()] });
        Assert.True(native.ExitCode == 0, $"the native run itself is off:\n{native}");
        string dir = FreshDir();
        var spec = Spec(program, dir, platform, "") with { Args = [dir] };
        var console = new RecordingConsole();
        int status;
        using (var d = new RunningDomain(SandboxDomain.Create(spec, console)))
            status = d.Wait(Never);
        Assert.Equal(native.StdoutText, console.Text);
        Assert.Equal(0, status);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Write_locks_and_blocked_setlkw_calls_survive_a_chain_of_save_and_restore(PlatformKind platform)
    {
        Threads.Require(platform);
        string program = GuestBuilder.Build("locks/locks_rw");
        var native = NativeRun.Run(new GuestInvocation(program) { Args = [FreshDir(), "ckpt"] });
        Assert.True(native.ExitCode == 0, $"the native run itself is off:\n{native}");
        string dir = FreshDir();
        var spec = Spec(program, dir, platform, "ckpt");
        var console = new RecordingConsole();
        var current = new RunningDomain(SandboxDomain.Create(spec, console));
        int restores = 0;
        var deadline = DateTime.UtcNow + Never;
        string live = dir, copy = FreshDir();
        try
        {
            while (true)
            {
                Thread.Sleep(100);
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
        Assert.True(restores > 3, $"only {restores} restores");
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
