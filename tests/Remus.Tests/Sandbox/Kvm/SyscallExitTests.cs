using Remus.Sandbox.Platform.Kvm;
using Xunit;

namespace Remus.Tests.Sandbox.Kvm;

/// <summary>
/// Issue 7 fact 3: the rip of the stub's <c>out</c> exit is the <c>out</c> itself on stock KVM and the instruction
/// after it on kvm_pvm. Both, and only those two, are syscalls; any other port-0x20 exit is the program's own.
/// </summary>
public sealed class SyscallExitTests
{
    [Theory]
    [InlineData(false, 0x401dUL)]
    [InlineData(true, 0x4139UL)]
    public void The_stub_out_is_a_syscall_whether_rip_is_at_it_or_after_it(bool fsgs, ulong outAddress)
    {
        Assert.Equal(outAddress, SyscallExits.OutAddress(fsgs));
        Assert.Equal(SyscallPortExit.StubAtOut, SyscallExits.Classify(outAddress, fsgs));      // stock KVM
        Assert.Equal(SyscallPortExit.StubAfterOut, SyscallExits.Classify(outAddress + 2, fsgs)); // kvm_pvm
    }

    [Fact]
    public void The_out_is_where_the_stubs_put_it()
    {
        byte[] plain = Stubs.Syscall(), fsgs = Stubs.SyscallFsgs();
        Assert.Equal(new byte[] { 0xe6, 0x20 }, plain[Stubs.SyscallOutOffset..(Stubs.SyscallOutOffset + 2)]);
        Assert.Equal(new byte[] { 0xe6, 0x20 }, fsgs[Stubs.SyscallFsgsOutOffset..(Stubs.SyscallFsgsOutOffset + 2)]);
        Assert.Equal(Stubs.ResumeAddress, SyscallExits.OutAddress(false) + SyscallExits.OutLength);
    }

    [Theory]
    [InlineData(false, 0x401cUL)]   // one before
    [InlineData(false, 0x401eUL)]   // inside the out
    [InlineData(false, 0x4020UL)]   // past the iretq
    [InlineData(false, 0x4139UL)]   // the other stub's out (not the active one)
    [InlineData(true, 0x401dUL)]
    [InlineData(true, 0x401fUL)]
    [InlineData(false, 0x400002UL)] // the program's own out 0x20
    [InlineData(false, 0x0UL)]
    public void Any_other_rip_is_a_stray_port_access(bool fsgs, ulong rip) =>
        Assert.Equal(SyscallPortExit.Stray, SyscallExits.Classify(rip, fsgs));
}
