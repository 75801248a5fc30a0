using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Checkpoint;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Sandbox;

/// <summary>
/// A conversation over sockets goes on through checkpoints (tests/guests/sockets/sock_ckpt.c): a connected pair with
/// a worker thread answering each chunk with a running checksum (blocking sends bigger than the socket's buffer,
/// MSG_WAITALL receives), datagrams left queued and a connection left unaccepted until the end. Saved and restored
/// into a new domain every 100 ms, paused every 30 ms, under Remus checkpoints, and moved by a live migration: the count goes on, no byte is lost
/// or repeated (the checksums are the native run's). Over an AF_UNIX socketpair and over a TCP connection on the
/// domain's 127.0.0.1 (the stack's state in the checkpoint: its connections, queues and timers).
/// The bounds on the waits only catch a run that never ends.
/// </summary>
public sealed class SocketsCheckpointTests
{
    private static readonly byte[] Config = "{\"name\":\"s\"}"u8.ToArray();
    private static readonly TimeSpan Never = TimeSpan.FromSeconds(120);

    internal static (DomainSpec Spec, string Native) Guest(string mode, PlatformKind platform, int count = 15, int intervalMs = 40)
    {
        string program = GuestBuilder.Build("sockets/sock_ckpt");
        string[] args = [count.ToString(), intervalMs.ToString(), mode];
        var native = NativeRun.Run(new GuestInvocation(program) { Args = args });
        Assert.True(native.ExitCode == 0, $"the native run itself is off:\n{native}");
        return (new DomainSpec { ProgramPath = program, Args = args, MemoryMiB = 64, Platform = platform }, native.StdoutText);
    }

    public static TheoryData<string, PlatformKind> Modes()
    {
        var d = new TheoryData<string, PlatformKind>();
        foreach (var p in Platforms.Each)
            foreach (var m in new[] { "unix", "tcp" }) d.Add(m, p);
        return d;
    }

    [SkippableTheory]
    [MemberData(nameof(Modes))]
    public void A_socket_conversation_survives_a_chain_of_save_and_restore(string mode, PlatformKind platform)
    {
        Threads.Require(platform);
        var (spec, native) = Guest(mode, platform);
        var console = new RecordingConsole();
        var (status, restores) = KernelStateAcrossCheckpointsTests.RunThroughSaveRestoreChain(spec, console, 100);
        Assert.Equal(native, console.Text);
        Assert.Equal(0, status);
        Assert.True(restores >= 3, $"only {restores} restores");
    }

    [SkippableTheory]
    [MemberData(nameof(Modes))]
    public void A_socket_conversation_survives_pauses_every_30_ms(string mode, PlatformKind platform)
    {
        Threads.Require(platform);
        var (spec, native) = Guest(mode, platform);
        var console = new RecordingConsole();
        using var d = new RunningDomain(SandboxDomain.Create(spec, console));
        int pauses = 0;
        var stop = new CancellationTokenSource();
        var pauser = new Thread(() =>
        {
            while (!stop.Token.WaitHandle.WaitOne(30))
            {
                d.Domain.Pause();
                if (d.Domain.State == DomainState.Exited) return;
                pauses++;
                d.Domain.Unpause();
            }
        }) { IsBackground = true };
        pauser.Start();
        int status;
        try { status = d.Wait(Never); }
        finally
        {
            stop.Cancel();
            pauser.Join();
        }
        Assert.Equal(native, console.Text);
        Assert.Equal(0, status);
        Assert.True(pauses > 5, $"only {pauses} pauses");
    }

    [SkippableTheory]
    [MemberData(nameof(Modes))]
    public void A_socket_conversation_survives_remus_checkpoints_every_30_ms(string mode, PlatformKind platform)
    {
        Threads.Require(platform);
        var (spec, native) = Guest(mode, platform);
        var world = new RecordingConsole();
        var commit = new OutputCommitConsole(world);
        using var d = new RunningDomain(SandboxDomain.Create(spec, commit));
        var options = new RemusOptions { Interval = TimeSpan.FromMilliseconds(30), Timeout = TimeSpan.FromSeconds(1), Blackhole = true };
        using var primary = new RemusPrimary(d.Domain, commit, System.IO.Stream.Null, null, options);
        primary.Protect(Config);
        Assert.Equal(0, d.Wait(Never));
        Thread.Sleep(200); // the epoch loop sees the exit and releases the last output
        Assert.Equal(native, world.Text);
        Assert.True(primary.Stats.Epochs > 5, $"only {primary.Stats.Epochs} epochs");
    }

    [SkippableTheory]
    [MemberData(nameof(Modes))]
    public async Task A_socket_conversation_moves_with_a_live_migration(string mode, PlatformKind platform)
    {
        Threads.Require(platform);
        // Long enough (30 ticks of 100 ms) that the conversation is under way when the domain moves.
        var (spec, native) = Guest(mode, platform, count: 30, intervalMs: 100);
        var console = new RecordingConsole();
        using var source = new RunningDomain(SandboxDomain.Create(spec, console));
        console.WaitForLines(5, TimeSpan.FromSeconds(30));
        var (moved, _) = await LiveMigration.MoveAsync(source, spec, console, Config, TimeSpan.FromSeconds(60));
        using var _moved = moved;
        Assert.Equal(0, moved.Wait(Never));
        Assert.Equal(native, console.Text);
    }
}
