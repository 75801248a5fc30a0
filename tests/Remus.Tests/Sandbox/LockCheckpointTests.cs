using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Checkpoint;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Sandbox;

/// <summary>
/// Locks are kernel state and a blocked lock call restarts: tests/guests/locks/locks_ckpt.c holds a flock, a POSIX and
/// an OFD lock while a second thread blocks in flock(LOCK_EX), and the domain is saved and restored (in-process) every
/// 100 ms meanwhile; after each restore the locks are still held and the waiter waits again, and when the main thread
/// lets go the waiter takes the lock — the same output as natively. On each platform this machine has that runs threads.
/// </summary>
public sealed class LockCheckpointTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("remus-lockckpt-").FullName;

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Locks_and_a_blocked_flock_survive_a_chain_of_save_and_restore(PlatformKind platform)
    {
        Threads.Require(platform);
        string file = Path.Combine(_dir, "locked.bin");
        File.WriteAllBytes(file, new byte[100]);
        var spec = new DomainSpec
        {
            ProgramPath = GuestBuilder.Build("locks/locks_ckpt"),
            Args = [file],
            Files = [file],
            MemoryMiB = 32,
            Platform = platform,
        };
        var native = NativeRun.Run(new GuestInvocation(spec.ProgramPath) { Args = spec.Args });
        Assert.True(native.ExitCode == 0, $"the native run itself is off:\n{native}");
        var console = new RecordingConsole();
        var (status, restores) = KernelStateAcrossCheckpointsTests.RunThroughSaveRestoreChain(spec, console, 100);
        Assert.Equal(0, status);
        Assert.True(restores > 3, $"only {restores} restores");
        Assert.Equal(native.StdoutText, console.Text);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
