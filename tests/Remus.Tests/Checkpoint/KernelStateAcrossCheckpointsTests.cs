using Remus.Checkpoint;
using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// What the kernel keeps for the program survives pauses, checkpoints and save/restore into a new domain: a blocking
/// call with a timeout keeps its deadline (the guest's wait ends as natively instead of starting over), the CPU clock
/// goes on from where it was, resource limits stay set. The bounds on the waits below only catch a wait that never
/// ends; the guest itself reports how long it took. On each platform this machine has.
/// </summary>
public class KernelStateAcrossCheckpointsTests
{
    private static readonly byte[] Config = "{\"name\":\"t\"}"u8.ToArray();
    private static readonly TimeSpan Never = TimeSpan.FromSeconds(90);

    private static (DomainSpec Spec, string Native) Futex(int seconds, PlatformKind platform)
    {
        string program = GuestBuilder.Build("futex_timeout");
        string[] args = [seconds.ToString()];
        var native = NativeRun.Run(new GuestInvocation(program) { Args = args });
        Assert.Equal(0, native.ExitCode);
        return (new DomainSpec { ProgramPath = program, Args = args, MemoryMiB = 32, Platform = platform }, native.StdoutText);
    }

    /// <summary>Pauses and unpauses <paramref name="domain"/> every <paramref name="periodMs"/> until disposed.</summary>
    private sealed class Pauser : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Thread _thread;
        public int Pauses { get; private set; }

        public Pauser(SandboxDomain domain, int periodMs)
        {
            _thread = new Thread(() =>
            {
                while (!_stop.Token.WaitHandle.WaitOne(periodMs))
                {
                    domain.Pause();
                    if (domain.State == DomainState.Exited) return;
                    Pauses++;
                    domain.Unpause();
                }
            }) { IsBackground = true };
            _thread.Start();
        }

        public void Dispose()
        {
            _stop.Cancel();
            _thread.Join();
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void A_futex_timeout_ends_although_the_domain_is_paused_every_50_ms(PlatformKind platform)
    {
        Platforms.Require(platform);
        var (spec, native) = Futex(1, platform);
        var console = new RecordingConsole();
        using var d = new RunningDomain(SandboxDomain.Create(spec, console));
        using var pauser = new Pauser(d.Domain, 50);
        int status;
        try { status = d.Wait(Never); }
        catch (TimeoutException) { throw new Xunit.Sdk.XunitException($"the waits never timed out ({pauser.Pauses} pauses); output so far:\n{console.Text}"); }
        Assert.Equal(0, status);
        Assert.True(pauser.Pauses > 10, $"only {pauser.Pauses} pauses");
        Assert.Equal(native, console.Text);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void A_futex_timeout_ends_under_remus_protection_with_a_50_ms_interval(PlatformKind platform)
    {
        Platforms.Require(platform);
        var (spec, native) = Futex(1, platform);
        var world = new RecordingConsole();
        var commit = new OutputCommitConsole(world);
        using var d = new RunningDomain(SandboxDomain.Create(spec, commit));
        var options = new RemusOptions { Interval = TimeSpan.FromMilliseconds(50), Timeout = TimeSpan.FromSeconds(1), Blackhole = true };
        using var primary = new RemusPrimary(d.Domain, commit, System.IO.Stream.Null, null, options);
        primary.Protect(Config);
        int status;
        try { status = d.Wait(Never); }
        catch (TimeoutException) { throw new Xunit.Sdk.XunitException($"the waits never timed out ({primary.Stats.Epochs} epochs); output so far:\n{world.Text}"); }
        Assert.Equal(0, status);
        Thread.Sleep(200); // the epoch loop sees the exit and releases the last output
        Assert.Equal(native, world.Text);
    }

    /// <summary>
    /// Saves the running domain and restores it into a new one (a new vCPU, a new kernel) every
    /// <paramref name="periodMs"/> until the program exits; returns its exit status and the number of restores.
    /// </summary>
    internal static (int Status, int Restores) RunThroughSaveRestoreChain(DomainSpec spec, IConsole console, int periodMs)
    {
        var current = new RunningDomain(SandboxDomain.Create(spec, console));
        int restores = 0;
        var deadline = DateTime.UtcNow + Never;
        try
        {
            while (true)
            {
                Thread.Sleep(periodMs);
                current.Domain.Pause();
                if (current.Domain.State == DomainState.Exited) return (current.Wait(Never), restores);
                if (DateTime.UtcNow > deadline) throw new Xunit.Sdk.XunitException($"the program did not end after {restores} restores");
                var file = new MemoryStream();
                DomainSave.Save(current.Domain, file, Config, compress: false);
                current.Dispose();
                file.Position = 0;
                current = new RunningDomain(DomainSave.Restore(file, _ => SandboxDomain.CreateIncoming(spec, console)));
                restores++;
            }
        }
        finally
        {
            current.Dispose();
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void A_futex_timeout_ends_although_the_domain_is_saved_and_restored_every_100_ms(PlatformKind platform)
    {
        Platforms.Require(platform);
        var (spec, native) = Futex(1, platform);
        var console = new RecordingConsole();
        var (status, restores) = RunThroughSaveRestoreChain(spec, console, 100);
        Assert.Equal(0, status);
        Assert.True(restores > 5, $"only {restores} restores");
        Assert.Equal(native, console.Text);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void The_cpu_clock_never_goes_back_through_a_chain_of_save_and_restore(PlatformKind platform)
    {
        Platforms.Require(platform);
        // Each restore runs the program on a new vCPU whose own CPU time starts again near zero.
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("cputime"), Args = ["spin", "0.5"], MemoryMiB = 32, Platform = platform };
        var console = new RecordingConsole();
        var (status, restores) = RunThroughSaveRestoreChain(spec, console, 100);
        Assert.Equal(0, status);
        // One restore already proves the point; how many fit in 0.5 s of CPU depends on the platform (on KVM the
        // VMM's own work on the vCPU thread counts too).
        Assert.True(restores >= 1, "no restore happened");
        Assert.Equal("cpu clock never went back over 0.5 s of cpu time: yes\n", console.Text);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Resource_limits_stay_set_through_a_chain_of_save_and_restore(PlatformKind platform)
    {
        Platforms.Require(platform);
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("rlimits"), Args = ["keep"], MemoryMiB = 32, Platform = platform };
        var console = new RecordingConsole();
        var (status, restores) = RunThroughSaveRestoreChain(spec, console, 100);
        Assert.Equal(0, status);
        Assert.True(restores > 2, $"only {restores} restores");
        Assert.Equal("NOFILE 16/64 set yes\nafter 1 s: NOFILE soft 16 yes, hard 64 yes\ndup2 onto fd 16 fails EBADF yes\n", console.Text);
    }
}
