using Remus.Kvm;
using Remus.Kvm.Native;
using Xunit;

namespace Remus.Tests.Kvm;

public sealed class KvmSystemTests
{
    [Fact]
    public void Open_on_a_missing_device_throws_one_clear_line()
    {
        string path = $"/nonexistent-{Guid.NewGuid():N}/kvm";
        var e = Assert.Throws<KvmUnavailableException>(() => KvmSystem.Open(path));
        Assert.Equal(
            $"{path} does not exist: this host offers no KVM (load kvm_intel or kvm_amd, or use a host with virtualization enabled)",
            e.Message);
        Assert.DoesNotContain('\n', e.Message);

        Assert.False(KvmSystem.IsAvailable(out string reason, path));
        Assert.Equal(e.Message, reason);
    }

    [Fact]
    public void Open_on_a_device_that_is_not_kvm_says_so()
    {
        var e = Assert.Throws<KvmUnavailableException>(() => KvmSystem.Open("/dev/null"));
        Assert.StartsWith("/dev/null is not a KVM device", e.Message);
    }

    [Fact]
    public void Permission_and_driver_errors_have_clear_messages()
    {
        // Tests usually run as root, for whom a mode-000 file is still readable; check the errno mapping directly.
        Assert.Equal("/dev/kvm: permission denied (run as root or join the kvm group)",
            KvmSystem.OpenFailureMessage("/dev/kvm", Libc.EACCES));
        Assert.Equal("/dev/kvm: permission denied (run as root or join the kvm group)",
            KvmSystem.OpenFailureMessage("/dev/kvm", Libc.EPERM));
        Assert.Contains("load kvm_intel or kvm_amd", KvmSystem.OpenFailureMessage("/dev/kvm", Libc.ENXIO));
        Assert.Contains("(EBUSY)", KvmSystem.OpenFailureMessage("/dev/kvm", Libc.EBUSY));
    }

    [Fact]
    public void IsAvailable_agrees_with_the_host()
    {
        bool available = KvmSystem.IsAvailable(out string reason);
        if (!File.Exists("/dev/kvm"))
        {
            Assert.False(available);
            Assert.StartsWith("/dev/kvm does not exist", reason);
        }
        else if (available)
        {
            Assert.Equal("", reason);
        }
        else
        {
            Assert.StartsWith("/dev/kvm", reason);
        }
    }

    [Fact]
    public void Exit_descriptions_read_the_kvm_run_union()
    {
        KvmRun run = default;
        run.ExitReason = KvmExitReason.Io;
        run.Exit.Io.Direction = KvmConstants.KVM_EXIT_IO_OUT;
        run.Exit.Io.Size = 1;
        run.Exit.Io.Port = 0x20;
        run.Exit.Io.Count = 1;
        run.Exit.Io.DataOffset = 4096;
        var exit = KvmExit.From(in run);
        Assert.Equal(KvmExitReason.Io, exit.Reason);
        Assert.Equal(KvmIoDirection.Out, exit.IoDirection);
        Assert.Equal((ushort)0x20, exit.IoPort);
        Assert.Equal(4096UL, exit.IoDataOffset);
        Assert.Equal("IO out port 0x20 size 1 count 1", exit.ToString());

        run = default;
        run.ExitReason = KvmExitReason.FailEntry;
        run.Exit.FailEntry.HardwareEntryFailureReason = 0x21;
        run.Exit.FailEntry.Cpu = 1;
        exit = KvmExit.From(in run);
        Assert.Equal(0x21UL, exit.HardwareEntryFailureReason);
        Assert.Equal(1u, exit.FailEntryCpu);

        run = default;
        run.ExitReason = KvmExitReason.InternalError;
        run.Exit.Internal.Suberror = KvmConstants.KVM_INTERNAL_ERROR_EMULATION;
        run.Exit.Internal.Ndata = 2;
        exit = KvmExit.From(in run);
        Assert.Equal(1u, exit.InternalSuberror);
        Assert.Equal(2u, exit.InternalNdata);

        Assert.True(KvmExit.Intr.Interrupted);
    }
}
