using System.Globalization;
using System.Text.RegularExpressions;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Checkpoint;
using Remus.Tests.Kvm;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Guests;

/// <summary>
/// The program's own accesses honour its page permissions as on Linux where the vCPU can enforce them: a read of a
/// munmapped page, a write to a PROT_READ page and a read of a PROT_NONE page kill it with SIGSEGV (139), at the
/// faulting address. The ptrace vCPU mirrors every permission change into its stub; these run on ptrace whatever
/// REMUS_PLATFORM says (KVM: <see cref="KvmPagePermissionTests"/>).
/// </summary>
public partial class PagePermissionTests
{
    public static TheoryData<string, string> Kinds()
    {
        var data = new TheoryData<string, string>();
        foreach (var kind in new[] { "touch-unmapped", "write-readonly", "touch-none" })
            foreach (var f in GuestBuilder.Libcs) data.Add(kind, f.ToString());
        return data;
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void A_forbidden_access_dies_by_SIGSEGV_as_natively(string kind, string flavor)
    {
        var inv = new GuestInvocation(GuestBuilder.Build("vm_maps", Enum.Parse<GuestFlavor>(flavor))) { Args = [kind] };
        var native = NativeRun.Run(inv);
        Assert.True(native.ExitCode == 139, $"the native run itself is off:\n{native}");
        var domain = RemusCli.Run(["run", "--platform", "ptrace", inv.Program, kind], inv.Stdin);
        GuestAssert.SameAsNative(native, domain, inv);
    }

    [Theory]
    [InlineData("touch-unmapped")]
    [InlineData("write-readonly")]
    [InlineData("touch-none")]
    public void The_fault_is_reported_at_the_address_the_program_touched(string kind)
    {
        var spec = new DomainSpec
        {
            ProgramPath = GuestBuilder.Build("vm_maps"), Args = [kind], Env = [new("VM_SHOW_ADDR", "1")],
            MemoryMiB = 32, Platform = PlatformKind.Ptrace,
        };
        var console = new RecordingConsole();
        var log = new List<string>();
        var domain = SandboxDomain.Create(spec, console);
        domain.Log = m => { lock (log) log.Add(m); };
        using var d = new RunningDomain(domain);
        Assert.Equal(139, d.Wait(TimeSpan.FromSeconds(60)));
        var printed = AddressPrinted().Match(console.Text);
        Assert.True(printed.Success, console.Text);
        ulong expected = ulong.Parse(printed.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        string line;
        lock (log) line = log.Single(l => l.Contains("killed by signal 11", StringComparison.Ordinal));
        Assert.Contains($"(address 0x{expected:x})", line, StringComparison.Ordinal);
    }

    [GeneratedRegex("fault address 0x([0-9a-f]+)")]
    private static partial Regex AddressPrinted();
}

/// <summary>
/// The same on the KVM platform, where the VMM writes the permissions into the guest's page tables and makes the vCPU
/// drop the translations it took away before it runs again (Platform/Kvm/TlbFlush.cs: a CR3/CR4 reset on stock KVM,
/// zapping the frames' shadow entries on kvm_pvm, where the paged address space reports the frames whose rights it took
/// away and keeps its table pages). Runs on either (kvm-lab on machines without KVM).
/// </summary>
public class KvmPagePermissionTests
{
    [KvmTheory]
    [InlineData("touch-unmapped")]
    [InlineData("write-readonly")]
    [InlineData("touch-none")]
    public void A_forbidden_access_dies_by_SIGSEGV_on_KVM(string kind)
    {
        var inv = new GuestInvocation(GuestBuilder.Build("vm_maps")) { Args = [kind] };
        var native = NativeRun.Run(inv);
        Assert.True(native.ExitCode == 139, $"the native run itself is off:\n{native}");
        // Generous: stock KVM is mostly met under emulation (kvm-lab), where starting remus alone takes ~20 s.
        var domain = RemusCli.Run(["run", "--platform", "kvm", inv.Program, kind], inv.Stdin, TimeSpan.FromMinutes(3));
        GuestAssert.SameAsNative(native, domain, inv);
    }
}
