using Remus.Kvm;
using Xunit;

namespace Remus.Tests.Kvm;

/// <summary>Runs real guests; skipped (with the reason) on hosts without usable KVM.</summary>
public sealed class KvmSmokeTests
{
    // mov eax, 42; syscall; mov eax, 60; syscall; jmp $
    private static readonly byte[] TwoSyscalls = [0xb8, 42, 0, 0, 0, 0x0f, 0x05, 0xb8, 60, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xfe];

    // jmp $
    private static readonly byte[] Spin = [0xeb, 0xfe];

    [KvmFact]
    public void System_reports_what_the_sandbox_needs()
    {
        using var kvm = KvmSystem.Open();
        Assert.True(kvm.VcpuMmapSize >= 4096);
        Assert.Equal(kvm.VcpuMmapSize, kvm.GetVcpuMmapSize());
        Assert.True(kvm.CheckExtension(KvmConstants.KVM_CAP_USER_MEMORY) > 0);
        Assert.True(kvm.CheckExtension(KvmConstants.KVM_CAP_IMMEDIATE_EXIT) > 0);
        Assert.Contains(kvm.GetSupportedCpuid(), e => e.Function == 0);
        Assert.Contains(VcpuState.MSR_LSTAR, kvm.GetMsrIndexList());
    }

    [KvmFact]
    public void Ring3_guest_exits_through_the_syscall_stub_with_out()
    {
        using var kvm = KvmSystem.Open();
        using var guest = new LongModeGuest(kvm, TwoSyscalls);
        var vcpu = guest.Vcpu;

        var exit = vcpu.Run();
        Assert.Equal(KvmExitReason.Io, exit.Reason);
        Assert.Equal(KvmIoDirection.Out, exit.IoDirection);
        Assert.Equal(LongModeGuest.ExitPort, exit.IoPort);
        Assert.Equal(1, exit.IoSize);
        Assert.Equal(1u, exit.IoCount);
        Assert.Equal(42, vcpu.GetIoData(exit)[0]);
        var regs = vcpu.GetRegs();
        Assert.Equal(42UL, regs.Rax);
        Assert.Equal(LongModeGuest.UserCode + 7, regs.Rcx); // the user rip after the first syscall

        exit = vcpu.Run();
        Assert.Equal(KvmExitReason.Io, exit.Reason);
        Assert.Equal(60UL, vcpu.GetRegs().Rax);

        // The stub wrote the saved user rsp and its iretq frame into page 8 (0x8000..0x8fff).
        ulong[] bitmap = DirtyLog.AllocateBitmap(LongModeGuest.MemorySize);
        guest.Vm.GetDirtyLog(0, bitmap);
        Assert.True(DirtyLog.IsDirty(bitmap, LongModeGuest.UserRspSave / 4096));
        Assert.False(DirtyLog.IsDirty(bitmap, 0x100)); // 1 MiB: untouched
    }

    [KvmFact]
    public void Immediate_exit_returns_intr_without_running()
    {
        using var kvm = KvmSystem.Open();
        using var guest = new LongModeGuest(kvm, Spin);
        guest.Vcpu.ImmediateExit = true;
        Assert.Equal(KvmExitReason.Intr, guest.Vcpu.Run().Reason);
        Assert.Equal(LongModeGuest.UserCode, guest.Vcpu.GetRegs().Rip);
    }

    [KvmFact]
    public void Kicker_pulls_a_spinning_vcpu_out_of_kvm_run()
    {
        using var kvm = KvmSystem.Open();
        using var guest = new LongModeGuest(kvm, Spin);
        var kicker = new VcpuKicker(guest.Vcpu);
        using var attached = new ManualResetEventSlim();
        KvmExit exit = default;
        int consumed = -1;
        bool immediateExitAfter = true;
        Exception? failure = null;

        var thread = new Thread(() =>
        {
            try
            {
                kicker.AttachCurrentThread();
                attached.Set();
                exit = guest.Vcpu.Run(); // spins in ring 3 until kicked
                consumed = kicker.AcknowledgeKick();
                immediateExitAfter = guest.Vcpu.ImmediateExit;
                kicker.DetachCurrentThread();
            }
            catch (Exception e)
            {
                failure = e;
                attached.Set();
            }
        });
        thread.Start();
        Assert.True(attached.Wait(TimeSpan.FromSeconds(10)));
        Thread.Sleep(200); // let it enter the guest
        Assert.True(kicker.Kick());
        Assert.True(thread.Join(TimeSpan.FromSeconds(10)), "the vCPU thread did not leave KVM_RUN");
        Assert.Null(failure);
        Assert.Equal(KvmExitReason.Intr, exit.Reason);
        Assert.Equal(1, consumed);
        Assert.False(immediateExitAfter);
        Assert.False(kicker.IsAttached);
    }

    [KvmFact]
    public void Captured_state_restores_into_a_new_vm_and_continues()
    {
        using var kvm = KvmSystem.Open();
        using var guest = new LongModeGuest(kvm, TwoSyscalls);
        Assert.Equal(KvmExitReason.Io, guest.Vcpu.Run().Reason);
        Assert.Equal(42UL, guest.Vcpu.GetRegs().Rax);

        // Capture completes the pending `out` (rip moves on to iretq), then round-trips through bytes.
        var state = VcpuState.Deserialize(VcpuState.Capture(guest.Vcpu).Serialize());
        Assert.Equal(LongModeGuest.SyscallStub + 31, state.Regs.Rip);
        Assert.Contains(state.Msrs, m => m.Index == VcpuState.MSR_LSTAR && m.Data == LongModeGuest.SyscallStub);

        // A second VM over the same memory, restored from the state, performs the second syscall.
        using var vm2 = kvm.CreateVm();
        vm2.SetTssAddress(0xfffbd000);
        vm2.SetUserMemoryRegion(0, 0, LongModeGuest.MemorySize, guest.HostAddress);
        using var vcpu2 = vm2.CreateVcpu(0);
        vcpu2.SetCpuid2(guest.Cpuid);
        state.Restore(vcpu2);

        var exit = vcpu2.Run();
        Assert.Equal(KvmExitReason.Io, exit.Reason);
        Assert.Equal(LongModeGuest.ExitPort, exit.IoPort);
        Assert.Equal(60UL, vcpu2.GetRegs().Rax);
    }
}
