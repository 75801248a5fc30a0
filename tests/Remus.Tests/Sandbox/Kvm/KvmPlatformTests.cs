using System.Diagnostics;
using System.Runtime.InteropServices;
using Remus.Kvm;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Sandbox.Platform.Kvm;
using Remus.Tests.Kvm;
using Xunit;

namespace Remus.Tests.Sandbox.Kvm;

/// <summary>KVM's availability, and the kvm_run sync-regs layout the vCPU relies on (against the real headers).</summary>
public sealed class KvmPlatformTests
{
    [Fact]
    public void KVM_platform_availability_follows_dev_kvm_and_says_why_not()
    {
        bool kvm = KvmSystem.IsAvailable(out string kvmReason);
        bool platform = PlatformSelector.KvmPlatformAvailable(out string reason);
        if (!kvm)
        {
            Assert.False(platform);
            Assert.Equal(kvmReason, reason);
            Assert.Contains("/dev/kvm", reason);
        }
        else if (!platform)
        {
            Assert.False(string.IsNullOrWhiteSpace(reason)); // names the missing capability or CPUID feature
            Assert.DoesNotContain('\n', reason);
        }
        else
        {
            Assert.Equal("", reason);
        }
    }

    [Fact]
    public void Asking_for_KVM_where_it_is_missing_is_one_clear_error()
    {
        if (PlatformSelector.KvmPlatformAvailable(out string reason)) return; // covered by the [KvmFact] tests
        using var memory = new GuestMemory(8UL << 20);
        var e = Assert.Throws<SandboxException>(() => PlatformSelector.Create(memory, PlatformKind.Kvm));
        Assert.Equal($"cannot use KVM: {reason}", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Sync_regs_sit_at_the_start_of_kvm_run_s()
    {
        // struct kvm_sync_regs { struct kvm_regs regs; ... }: regs at offset 0 of kvm_run.s (checked against the C
        // headers by the GccFact below); kvm_valid_regs/kvm_dirty_regs right before it.
        Assert.Equal(304, (int)Marshal.OffsetOf<KvmRun>(nameof(KvmRun.S)));
        Assert.Equal(288, (int)Marshal.OffsetOf<KvmRun>(nameof(KvmRun.KvmValidRegs)));
        Assert.Equal(296, (int)Marshal.OffsetOf<KvmRun>(nameof(KvmRun.KvmDirtyRegs)));
        Assert.Equal(144, Marshal.SizeOf<KvmRegs>());
        Assert.Equal(74, KvmPlatform.KVM_CAP_SYNC_REGS);
        Assert.Equal(1UL, KvmPlatform.KVM_SYNC_X86_REGS);
    }

    [GccFact]
    public void Sync_regs_layout_and_constants_match_the_kernel_headers()
    {
        const string program = """
            #include <linux/kvm.h>
            #include <stddef.h>
            #include <stdio.h>
            int main(void) {
                printf("%zu %zu %zu %zu %d %d\n", offsetof(struct kvm_run, s.regs.regs), offsetof(struct kvm_run, kvm_valid_regs),
                       offsetof(struct kvm_run, kvm_dirty_regs), offsetof(struct kvm_run, s.regs.regs.rip),
                       KVM_CAP_SYNC_REGS, KVM_SYNC_X86_REGS);
                return 0;
            }
            """;
        string dir = Path.Combine(Path.GetTempPath(), $"remus-syncregs-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, "p.c"), program);
            var (rc, _, err) = Run(Gcc.Path!, "-o", Path.Combine(dir, "p"), Path.Combine(dir, "p.c"));
            Assert.True(rc == 0, err);
            var (rc2, output, err2) = Run(Path.Combine(dir, "p"));
            Assert.True(rc2 == 0, err2);
            string[] v = output.Trim().Split(' ');
            Assert.Equal((int)Marshal.OffsetOf<KvmRun>(nameof(KvmRun.S)), int.Parse(v[0]));
            Assert.Equal((int)Marshal.OffsetOf<KvmRun>(nameof(KvmRun.KvmValidRegs)), int.Parse(v[1]));
            Assert.Equal((int)Marshal.OffsetOf<KvmRun>(nameof(KvmRun.KvmDirtyRegs)), int.Parse(v[2]));
            Assert.Equal((int)Marshal.OffsetOf<KvmRun>(nameof(KvmRun.S)) + (int)Marshal.OffsetOf<KvmRegs>(nameof(KvmRegs.Rip)), int.Parse(v[3]));
            Assert.Equal(KvmPlatform.KVM_CAP_SYNC_REGS, int.Parse(v[4]));
            Assert.Equal(KvmPlatform.KVM_SYNC_X86_REGS, ulong.Parse(v[5]));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static (int ExitCode, string Stdout, string Stderr) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout, stderr.Result);
    }
}
