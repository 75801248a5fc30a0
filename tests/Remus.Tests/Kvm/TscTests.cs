using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Kvm;

/// <summary>
/// On KVM a program's rdtsc reads the host's TSC (the vCPU's TSC offset is 0), as natively and on ptrace. A vCPU's
/// own TSC starts again near 0 whenever the VM is made, so without this a restored or migrated program's rdtsc ran
/// backwards (checkpoints carry no TSC). On kvm_pvm ring 3 reads the host's TSC anyway; on stock KVM (kvm-lab) this
/// is what the offset control gives.
/// </summary>
public sealed class TscTests
{
    [KvmFact]
    public void A_programs_rdtsc_reads_the_hosts_TSC()
    {
        var inv = new GuestInvocation(GuestBuilder.Build("tsc", GuestFlavor.Glibc)) { Platform = PlatformKind.Kvm };
        ulong before = Read(NativeRun.Run(inv), "native (before)");
        ulong inDomain = Read(RemusCli.Run(inv), "in the domain");
        ulong after = Read(NativeRun.Run(inv), "native (after)");
        Assert.True(before <= inDomain && inDomain <= after,
            $"the domain's rdtsc {inDomain} is not between the host's {before} and {after}: the vCPU runs on its own TSC");
    }

    private static ulong Read(RunResult r, string what)
    {
        Assert.True(r.ExitCode == 0, $"tsc {what} failed:\n{r}");
        return ulong.Parse(r.StdoutText.Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
