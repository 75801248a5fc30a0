using Remus.Checkpoint;
using Remus.Checkpoint.Migration;
using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Remus.Sandbox.Memory;
using Remus.Sandbox.Platform;
using Remus.Tests.Checkpoint;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Hardening;

/// <summary>
/// The program image keeps each PT_LOAD segment's protection (issue 11, the syscall fuzzer's finding 3):
/// tests/guests/textprot.c passes text pointers to system calls (EFAULT, text unchanged), stores to its text and rodata
/// and calls into data, .bss, heap and stack (SIGSEGV, SEGV_ACCERR, si_addr), runs a text page it mprotected
/// read-write, wrote and made read-execute again, and prints its image's /proc/self/maps lines reduced to their
/// permissions. Its output must be the native one here through checkpoints: a chain of save/restore on each
/// platform, a save on one platform restored on the other, a live migration and a Remus failover (the plain run on each platform and
/// libc is GuestParityTests' "textprot" case). Each round after a restore redoes every check, so protections a
/// checkpoint lost (an image back to rwx, the JIT page left writable) change the output.
/// </summary>
public sealed class TextProtectionTests
{
    private static readonly byte[] Config = "{\"name\":\"t\"}"u8.ToArray();
    private static readonly string[] Args = ["8", "120"]; // 8 rounds, 120 ms apart

    private static (DomainSpec Spec, string Native) Guest(PlatformKind platform)
    {
        string program = GuestBuilder.Build("textprot");
        var native = NativeRun.Run(new GuestInvocation(program) { Args = Args });
        Assert.Equal(0, native.ExitCode);
        return (new DomainSpec { ProgramPath = program, Args = Args, MemoryMiB = 32, Platform = platform }, native.StdoutText);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Segment_protections_survive_a_chain_of_save_and_restore(PlatformKind platform)
    {
        Platforms.Require(platform);
        var (spec, native) = Guest(platform);
        var console = new RecordingConsole();
        var (status, restores) = KernelStateAcrossCheckpointsTests.RunThroughSaveRestoreChain(spec, console, 100);
        Assert.Equal(0, status);
        Assert.True(restores >= 3, $"only {restores} restores");
        Assert.Equal(native, console.Text);
    }

    [CrossPlatformTheory]
    [MemberData(nameof(CrossPlatform.Directions), MemberType = typeof(CrossPlatform))]
    public void Segment_protections_survive_a_save_on_one_platform_and_a_restore_on_the_other(PlatformKind from, PlatformKind to)
    {
        var (spec, native) = Guest(from);
        var console = new RecordingConsole();
        var file = new MemoryStream();
        using (var first = new RunningDomain(SandboxDomain.Create(spec, console)))
        {
            console.WaitForLines(30, TimeSpan.FromSeconds(30)); // past round 1, the JIT page written once
            first.Domain.Pause();
            DomainSave.Save(first.Domain, file, Config, compress: false);
        }
        int linesBefore = console.Lines;
        file.Position = 0;
        using var second = new RunningDomain(DomainSave.Restore(file, _ => SandboxDomain.CreateIncoming(spec with { Platform = to }, console)));
        Assert.Equal(to, second.Domain.Platform.Kind);
        Assert.Equal(0, second.Wait(TimeSpan.FromSeconds(60)));
        Assert.True(linesBefore < native.Split('\n').Length - 1, $"saved after {linesBefore} lines: the program had ended");
        Assert.Equal(native, console.Text);
    }

    [SkippableFact]
    public async Task Segment_protections_move_with_a_live_migration()
    {
        Platforms.Require(PlatformKind.Ptrace);
        var (spec, native) = Guest(PlatformKind.Ptrace);
        var console = new RecordingConsole();
        using var source = new RunningDomain(SandboxDomain.Create(spec, console));
        console.WaitForLines(30, TimeSpan.FromSeconds(30));
        var (moved, _) = await LiveMigration.MoveAsync(source, spec, console, Config, TimeSpan.FromSeconds(30));
        using var _moved = moved;
        Assert.Equal(0, moved.Wait(TimeSpan.FromSeconds(60)));
        Assert.Equal(native, console.Text);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Segment_protections_hold_on_the_backup_after_a_remus_failover(PlatformKind platform)
    {
        Platforms.Require(platform);
        var options = new RemusOptions { Interval = TimeSpan.FromMilliseconds(20), Timeout = TimeSpan.FromSeconds(2) };
        string program = GuestBuilder.Build("textprot");
        string[] args = ["25", "100"]; // 25 rounds, 100 ms apart
        string native = NativeRun.Run(new GuestInvocation(program) { Args = args }).StdoutText;
        var spec = new DomainSpec { ProgramPath = program, Args = args, MemoryMiB = 32, Platform = platform };
        var world = new RecordingConsole();
        // A few rounds, the JIT page rewritten each time, before the primary dies.
        var (status, _) = InProcessFailover.Run(spec, options, world, 150, TimeSpan.FromSeconds(60), w =>
            Assert.False(w.Text.Contains("image:", StringComparison.Ordinal), "the program ended before the primary died: make it run longer"));
        Assert.Equal(0, status);

        Continuity.AssertNoGapAtMostOneEpochRepeated(native, world.Text);
    }

    [Fact]
    public void Image_pieces_have_their_segments_protections_and_the_kernel_copies_follow_them()
    {
        using var ram = new GuestMemory(16 << 20);
        var mm = new AddressSpace(ram, paged: true) { ImageStart = 0x400000, BrkStart = 0x406000, Brk = 0x406000 };
        const int R = AddressSpace.ProtRead, W = AddressSpace.ProtWrite, X = AddressSpace.ProtExec;
        mm.MapImage(0x400000, 0x401000, R, file: true);
        mm.MapImage(0x401000, 0x403000, R | X, file: true);
        mm.MapImage(0x404000, 0x405000, R | W, file: true);
        mm.MapImage(0x405000, 0x406000, R | W, file: false);
        Assert.Equal(R | X, mm.ProtectionAt(0x401800));
        Assert.Equal(-1, mm.ProtectionAt(0x403000)); // a gap between segments stays unmapped
        Assert.Equal(0UL, mm.AccessibleLength(0x401000, 16, write: true));  // copy_to_user into text: EFAULT
        Assert.Equal(16UL, mm.AccessibleLength(0x401000, 16, write: false));
        Assert.Equal(FaultResolution.NotAllowed, mm.ResolveFault(0x401000, write: true));
        Assert.Equal(FaultResolution.NotAllowed, mm.ResolveFault(0x404000, write: false, exec: true));
        Assert.Equal(FaultResolution.Resolved, mm.ResolveFault(0x401000, write: false, exec: true));
        // Page-table entries: text executable and read-only, data writable and no-execute.
        mm.ResolveFault(0x404000, write: true);
        Assert.Equal(0UL, mm.Tables!.Get(0x401000) & (PageTableEditor.Writable | PageTableEditor.NoExecute));
        Assert.Equal(PageTableEditor.Writable | PageTableEditor.NoExecute, mm.Tables.Get(0x404000) & (PageTableEditor.Writable | PageTableEditor.NoExecute));
        // mprotect of a text page: writable (and VM_ACCOUNT from then on), then back to r-x.
        mm.SetProtection(0x402000, 0x403000, R | W);
        Assert.Equal(16UL, mm.AccessibleLength(0x402000, 16, write: true));
        mm.SetProtection(0x402000, 0x403000, R | X);
        Assert.Equal(0UL, mm.AccessibleLength(0x402000, 16, write: true));
        Assert.Equal(MapFlags.Image | MapFlags.File | MapFlags.Accounted, mm.MappingAt(0x402000)!.Value.Flags);
        Assert.Equal(MapFlags.Image | MapFlags.File, mm.MappingAt(0x401000)!.Value.Flags);
    }

    [Fact]
    public void A_checkpoint_from_before_image_segments_restores_its_image_read_write_execute()
    {
        using var ram = new GuestMemory(16 << 20);
        var mm = new AddressSpace(ram, paged: true);
        var layout = new SavedLayout(true, AddressSpace.TaskSize, 8UL << 20, AddressSpace.TaskSize - AddressSpace.StackGap);
        var root = mm.Tables!.RootEntries();
        mm.Restore(0x400000, 0x408000, 0x409000, [], layout, root, imageSegments: false);
        Assert.Equal(7, mm.ProtectionAt(0x400000));
        Assert.Equal(7, mm.ProtectionAt(0x407fff));
        Assert.Equal(3, mm.ProtectionAt(0x408000)); // the heap
        mm.Restore(0x400000, 0x408000, 0x409000, [], layout, root, imageSegments: true);
        Assert.Equal(-1, mm.ProtectionAt(0x400000)); // a version 7 state names its segments: none here
    }
}
