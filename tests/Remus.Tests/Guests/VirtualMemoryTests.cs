using Remus.Checkpoint;
using Remus.Checkpoint.Migration;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Checkpoint;
using Remus.Tests.Kvm;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Guests;

/// <summary>
/// The 47-bit paged address space (issue 8 item 1, docs/memory.md part 2): a 64 GiB PROT_NONE reservation costs
/// nothing, pages are backed on first touch, rights taken away fault at the right address, memory the domain's RAM
/// cannot back is ENOMEM up front (committed) or SIGBUS on touch (MAP_NORESERVE), and a sparse reservation is
/// checkpointed through its page tables (the image carries the touched pages, not the reservation).
/// The plain parity run of tests/guests/vm_reserve.c is in <see cref="GuestCatalog"/> (every platform).
/// </summary>
public class VirtualMemoryTests
{
    private static readonly byte[] Config = "{\"name\":\"vm\"}"u8.ToArray();

    public static TheoryData<string> Flavors()
    {
        var d = new TheoryData<string>();
        foreach (var f in GuestBuilder.Libcs) d.Add(f.ToString());
        return d;
    }

    /// <summary>Writes to a page made read-only and reads of one made PROT_NONE after the program touched them: the
    /// handler sees SEGV_ACCERR at the address, as natively (the vCPU's cached translation was dropped).</summary>
    [Theory]
    [MemberData(nameof(Flavors))]
    public void Rights_taken_away_from_touched_pages_fault_as_natively_on_ptrace(string flavor)
    {
        var inv = new GuestInvocation(GuestBuilder.Build("vm_reserve", Enum.Parse<GuestFlavor>(flavor))) { Args = ["downgrade"] };
        var native = NativeRun.Run(inv);
        Assert.True(native.ExitCode == 0, $"the native run itself is off:\n{native}");
        Assert.Contains("write to a read-only page: SIGSEGV SEGV_ACCERR, si_addr right yes", native.StdoutText);
        GuestAssert.SameAsNative(native, RemusCli.Run(["run", "--platform", "ptrace", inv.Program, "downgrade"], inv.Stdin), inv);
    }

    [KvmTheory]
    [InlineData("downgrade")]
    public void Rights_taken_away_from_touched_pages_fault_as_natively_on_KVM(string arg)
    {
        var inv = new GuestInvocation(GuestBuilder.Build("vm_reserve")) { Args = [arg] };
        var native = NativeRun.Run(inv);
        GuestAssert.SameAsNative(native, RemusCli.Run(["run", "--platform", "kvm", inv.Program, arg], inv.Stdin, TimeSpan.FromMinutes(3)), inv);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Committed_memory_past_RAM_is_ENOMEM_up_front_and_NORESERVE_is_not(PlatformKind platform)
    {
        Platforms.Require(platform);
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("vm_oom"), Args = ["commit", "64"], MemoryMiB = 16, Platform = platform };
        var console = new RecordingConsole();
        using var d = new RunningDomain(SandboxDomain.Create(spec, console));
        Assert.Equal(0, d.Wait(TimeSpan.FromSeconds(60)));
        Assert.Equal("committed mapping: ENOMEM\nMAP_NORESERVE mapping: mapped\n", console.Text);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void A_touch_no_frame_can_back_is_SIGBUS_logged_not_a_VMM_crash(PlatformKind platform)
    {
        Platforms.Require(platform);
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("vm_oom"), Args = ["touch", "64"], MemoryMiB = 16, Platform = platform };
        var console = new RecordingConsole();
        var log = new List<string>();
        var domain = SandboxDomain.Create(spec, console);
        domain.Log = m => { lock (log) log.Add(m); };
        using var d = new RunningDomain(domain);
        Assert.Equal(135, d.Wait(TimeSpan.FromSeconds(60)));
        Assert.Equal("touching 64 MiB\n", console.Text);
        lock (log) Assert.Contains(log, l => l.Contains("out of memory", StringComparison.Ordinal) && l.Contains("SIGBUS", StringComparison.Ordinal));
    }

    private static string Expected(int count, bool touch)
    {
        var s = new System.Text.StringBuilder("reserved 64 GiB, 64 pages made read-write\n");
        for (int i = 1; i <= count; i++) s.Append("tick ").Append(i).Append(" ok\n");
        if (touch) s.Append("touching a PROT_NONE page\n");
        return s.ToString();
    }

    /// <summary>Saved and restored on each platform: the image holds the 64 touched pages and the tables (well under
    /// the domain's RAM), the restored program finds every byte (its pages fault back in through the restored
    /// tables), and the untouched reservation still faults.</summary>
    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void A_64_GiB_reservation_is_saved_and_restored_through_its_page_tables(PlatformKind platform)
    {
        Platforms.Require(platform);
        var spec = new DomainSpec
        {
            ProgramPath = GuestBuilder.Build("vm_hugereserve"), Args = ["60", "10", "touch"], MemoryMiB = 32, Platform = platform,
        };
        var console = new RecordingConsole();
        var file = new MemoryStream();
        using (var first = new RunningDomain(SandboxDomain.Create(spec, console)))
        {
            console.WaitForLines(6, TimeSpan.FromSeconds(30));
            first.Domain.Pause();
            DomainSave.Save(first.Domain, file, Config, compress: false);
        }
        int before = console.Lines;
        Assert.True(file.Length < 8L << 20, $"the image of a 64 GiB reservation with 64 touched pages is {file.Length} bytes");
        file.Position = 0;
        using var second = new RunningDomain(DomainSave.Restore(file, _ => SandboxDomain.CreateIncoming(spec, console)));
        int status = second.Wait(TimeSpan.FromSeconds(60));
        Assert.True(status == 139, $"exit {status}, saved after {before} lines:\n{console.Text}");
        Assert.True(before >= 6 && before < 61, $"saved after {before} lines");
        Assert.Equal(Expected(60, touch: true), console.Text);
    }

    /// <summary>Live migration of the same: every page the program rewrites each tick reaches the target (the dirty log
    /// reports frames: on ptrace through the virtual pages the stub maps).</summary>
    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public async Task A_64_GiB_reservation_migrates_live(PlatformKind platform)
    {
        Platforms.Require(platform);
        var spec = new DomainSpec
        {
            ProgramPath = GuestBuilder.Build("vm_hugereserve"), Args = ["200", "10"], MemoryMiB = 32, Platform = platform,
        };
        var console = new RecordingConsole();
        using var source = new RunningDomain(SandboxDomain.Create(spec, console));
        console.WaitForLines(5, TimeSpan.FromSeconds(20));
        var (moved, _) = await LiveMigration.MoveAsync(source, spec, console, Config, TimeSpan.FromSeconds(60));
        using var _moved = moved;
        Assert.Equal(0, moved.Wait(TimeSpan.FromSeconds(60)));
        Assert.Equal(Expected(200, touch: false), console.Text);
    }
}
