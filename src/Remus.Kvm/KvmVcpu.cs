using System.Runtime.InteropServices;
using Remus.Kvm.Native;

namespace Remus.Kvm;

/// <summary>
/// One vCPU (KVM_CREATE_VCPU) and its mmap'd kvm_run page. <see cref="Run"/> and the state accessors are meant for
/// the vCPU's own thread; from other threads only <see cref="VcpuKicker.Kick"/> (or <see cref="ImmediateExit"/>)
/// is safe while it runs. All x86 state moves as the kernel's own structs.
/// </summary>
public sealed unsafe class KvmVcpu : IDisposable
{
    private readonly object _lifetime = new();
    private readonly bool _xsave2;
    private int _fd;
    private KvmRun* _run;
    private readonly int _runSize;

    internal KvmVcpu(KvmVm vm, uint id, int fd, int runSize, int xsaveSize, bool xsave2)
    {
        nint p = Libc.mmap(0, (nuint)runSize, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, 0);
        if (p == Libc.MAP_FAILED) throw new KvmException("mmap of kvm_run", Libc.Errno);
        Vm = vm;
        Id = id;
        _fd = fd;
        _run = (KvmRun*)p;
        _runSize = runSize;
        XsaveSize = xsaveSize;
        _xsave2 = xsave2;
    }

    public KvmVm Vm { get; }

    /// <summary>The vCPU id given to KVM_CREATE_VCPU (its initial APIC id).</summary>
    public uint Id { get; }

    /// <summary>The vCPU file descriptor.</summary>
    public int Fd => _fd >= 0 ? _fd : throw new ObjectDisposedException(nameof(KvmVcpu));

    public bool IsDisposed => _fd < 0;

    /// <summary>Bytes of this vCPU's XSAVE area (4096, or KVM_CAP_XSAVE2's size).</summary>
    public int XsaveSize { get; }

    /// <summary>Host address of the kvm_run mapping.</summary>
    public nint RunAddress => (nint)CheckedRun;

    /// <summary>Size of the kvm_run mapping (KVM_GET_VCPU_MMAP_SIZE).</summary>
    public int RunSize => _runSize;

    /// <summary>The shared kvm_run page.</summary>
    public ref KvmRun RunData => ref *CheckedRun;

    private KvmRun* CheckedRun => _run != null ? _run : throw new ObjectDisposedException(nameof(KvmVcpu));

    /// <summary>kvm_run.immediate_exit: while nonzero, KVM_RUN returns EINTR at once. Safe from any thread.</summary>
    public bool ImmediateExit
    {
        get => Volatile.Read(ref CheckedRun->ImmediateExit) != 0;
        set => Volatile.Write(ref CheckedRun->ImmediateExit, value ? (byte)1 : (byte)0);
    }

    /// <summary>Sets immediate_exit unless the vCPU is disposed; false when it is (for kickers on other threads).</summary>
    internal bool TrySetImmediateExit()
    {
        lock (_lifetime)
        {
            if (_run == null) return false;
            Volatile.Write(ref _run->ImmediateExit, 1);
            return true;
        }
    }

    /// <summary>
    /// KVM_RUN: enters the guest until it exits to userspace. Returns <see cref="KvmExitReason.Intr"/> when the call
    /// was interrupted (EINTR: a signal, a <see cref="VcpuKicker"/> kick, immediate_exit); throws on any other
    /// error. For IN and MMIO-read exits, fill <see cref="GetIoData"/> / <see cref="MmioData"/> before running again.
    /// </summary>
    public KvmExit Run()
    {
        int r = Libc.ioctl(Fd, KvmIoctls.KVM_RUN, 0);
        if (r < 0)
        {
            int e = Libc.Errno;
            if (e == Libc.EINTR) return KvmExit.Intr;
            throw new KvmException("KVM_RUN", e);
        }
        return KvmExit.From(in *_run);
    }

    /// <summary>The data of a KVM_EXIT_IO (IoSize × IoCount bytes inside the kvm_run mapping).</summary>
    public Span<byte> GetIoData(in KvmExit exit)
    {
        if (exit.Reason != KvmExitReason.Io) throw new ArgumentException("not an I/O exit", nameof(exit));
        ulong length = (ulong)exit.IoSize * exit.IoCount;
        if (exit.IoDataOffset > (ulong)_runSize || length > (ulong)_runSize - exit.IoDataOffset)
            throw new KvmException($"KVM_EXIT_IO data at {exit.IoDataOffset} (+{length}) lies outside kvm_run");
        return new Span<byte>((byte*)CheckedRun + exit.IoDataOffset, (int)length);
    }

    /// <summary>kvm_run.mmio.data (8 bytes): what the guest wrote, or where to put what it reads.</summary>
    public Span<byte> MmioData => new(CheckedRun->Exit.Mmio.Data, 8);

    // ---- registers -------------------------------------------------------------------------------------------

    /// <summary>An ioctl that fills one fixed-size struct (the KVM_GET_* of vCPU state).</summary>
    private T Get<T>(ulong request) where T : unmanaged
    {
        T value;
        Ioctl.Ptr(Fd, request, &value);
        return value;
    }

    /// <summary>An ioctl that reads one fixed-size struct (the KVM_SET_* of vCPU state).</summary>
    private void Set<T>(ulong request, in T value) where T : unmanaged
    {
        fixed (T* p = &value) Ioctl.Ptr(Fd, request, p);
    }

    public KvmRegs GetRegs() => Get<KvmRegs>(KvmIoctls.KVM_GET_REGS);

    private const uint KVM_VCPU_TSC_CTRL = 0, KVM_VCPU_TSC_OFFSET = 0;

    /// <summary>
    /// Sets the vCPU's TSC offset (KVM_VCPU_TSC_CTRL/KVM_VCPU_TSC_OFFSET, Linux 5.16+): the guest's rdtsc reads the
    /// host's TSC plus <paramref name="offset"/>. False, with the errno, where KVM does not offer it.
    /// </summary>
    public bool TrySetTscOffset(long offset, out int errno)
    {
        var attr = new KvmDeviceAttr { Group = KVM_VCPU_TSC_CTRL, Attr = KVM_VCPU_TSC_OFFSET, Addr = (ulong)&offset };
        return Ioctl.TryPtr(Fd, KvmIoctls.KVM_SET_DEVICE_ATTR, &attr, out errno) >= 0;
    }

    public void SetRegs(in KvmRegs regs) => Set(KvmIoctls.KVM_SET_REGS, in regs);

    public KvmSregs GetSregs() => Get<KvmSregs>(KvmIoctls.KVM_GET_SREGS);

    public void SetSregs(in KvmSregs sregs) => Set(KvmIoctls.KVM_SET_SREGS, in sregs);

    public KvmFpu GetFpu() => Get<KvmFpu>(KvmIoctls.KVM_GET_FPU);

    public void SetFpu(in KvmFpu fpu) => Set(KvmIoctls.KVM_SET_FPU, in fpu);

    /// <summary>KVM_GET_XSAVE2 (with KVM_CAP_XSAVE2) or KVM_GET_XSAVE into a new <see cref="XsaveSize"/>-byte array.</summary>
    public byte[] GetXsave()
    {
        byte[] area = new byte[XsaveSize];
        GetXsave(area);
        return area;
    }

    /// <summary>KVM_GET_XSAVE2 or KVM_GET_XSAVE into <paramref name="destination"/> (at least <see cref="XsaveSize"/> bytes).</summary>
    public void GetXsave(Span<byte> destination)
    {
        if (destination.Length < XsaveSize)
            throw new ArgumentException($"the XSAVE area needs {XsaveSize} bytes", nameof(destination));
        fixed (byte* p = destination)
            Ioctl.Ptr(Fd, _xsave2 ? KvmIoctls.KVM_GET_XSAVE2 : KvmIoctls.KVM_GET_XSAVE, p);
    }

    /// <summary>
    /// KVM_SET_XSAVE (the kernel reads <see cref="XsaveSize"/> bytes). A shorter area (e.g. a 4096-byte area captured
    /// on a host without larger dynamic features) is zero-extended; a longer one is accepted only when its excess is
    /// all zero.
    /// </summary>
    public void SetXsave(ReadOnlySpan<byte> area)
    {
        if (area.Length < KvmXsave.Size) throw new ArgumentException($"an XSAVE area has at least {KvmXsave.Size} bytes", nameof(area));
        if (area.Length > XsaveSize && area[XsaveSize..].ContainsAnyExcept((byte)0))
            throw new KvmException($"the XSAVE area ({area.Length} bytes) holds state this vCPU cannot take (its area is {XsaveSize} bytes)");
        if (area.Length == XsaveSize)
        {
            fixed (byte* p = area) Ioctl.Ptr(Fd, KvmIoctls.KVM_SET_XSAVE, p);
            return;
        }
        byte[] buffer = new byte[XsaveSize];
        area[..Math.Min(area.Length, XsaveSize)].CopyTo(buffer);
        fixed (byte* p = buffer) Ioctl.Ptr(Fd, KvmIoctls.KVM_SET_XSAVE, p);
    }

    public KvmXcrs GetXcrs() => Get<KvmXcrs>(KvmIoctls.KVM_GET_XCRS);

    public void SetXcrs(in KvmXcrs xcrs) => Set(KvmIoctls.KVM_SET_XCRS, in xcrs);

    /// <summary>
    /// KVM_GET_MSRS: reads the MSRs whose <see cref="KvmMsrEntry.Index"/> is set, in place. Returns how many were read:
    /// KVM stops at the first MSR it cannot read, so a result n smaller than the count means entry n failed.
    /// </summary>
    public int GetMsrs(Span<KvmMsrEntry> entries)
    {
        int done = 0;
        while (done < entries.Length)
        {
            var chunk = entries.Slice(done, Math.Min(MaxMsrsPerIoctl, entries.Length - done));
            int n = MsrIoctl(KvmIoctls.KVM_GET_MSRS, chunk, chunk);
            done += n;
            if (n < chunk.Length) break;
        }
        return done;
    }

    /// <summary>KVM_SET_MSRS. Returns how many were written: a result n smaller than the count means entry n was refused.</summary>
    public int SetMsrs(ReadOnlySpan<KvmMsrEntry> entries)
    {
        int done = 0;
        while (done < entries.Length)
        {
            var chunk = entries.Slice(done, Math.Min(MaxMsrsPerIoctl, entries.Length - done));
            int n = MsrIoctl(KvmIoctls.KVM_SET_MSRS, chunk, default);
            done += n;
            if (n < chunk.Length) break;
        }
        return done;
    }

    /// <summary>KVM rejects a kvm_msrs with MAX_IO_MSRS (256) or more entries; longer lists go in chunks.</summary>
    private const int MaxMsrsPerIoctl = 255;

    /// <summary>Reads one MSR; throws when KVM cannot read it.</summary>
    public ulong GetMsr(uint index)
    {
        Span<KvmMsrEntry> e = [new KvmMsrEntry(index)];
        if (GetMsrs(e) != 1) throw new KvmException($"KVM_GET_MSRS: MSR 0x{index:x} cannot be read");
        return e[0].Data;
    }

    /// <summary>Writes one MSR; throws when KVM refuses it.</summary>
    public void SetMsr(uint index, ulong value)
    {
        Span<KvmMsrEntry> e = [new KvmMsrEntry(index, value)];
        if (SetMsrs(e) != 1) throw new KvmException($"KVM_SET_MSRS: MSR 0x{index:x} refused the value 0x{value:x}");
    }

    /// <summary>Builds a kvm_msrs buffer from <paramref name="entries"/>, runs the ioctl and copies the entries back
    /// into <paramref name="output"/> (unless it is empty).</summary>
    private int MsrIoctl(ulong request, ReadOnlySpan<KvmMsrEntry> entries, Span<KvmMsrEntry> output)
    {
        if (entries.Length == 0) return 0;
        int bytes = sizeof(KvmMsrs) + entries.Length * sizeof(KvmMsrEntry);
        byte[]? heap = bytes > 2048 ? new byte[bytes] : null;
        Span<byte> buffer = heap ?? stackalloc byte[bytes];
        fixed (byte* p = buffer)
        {
            ((KvmMsrs*)p)->Nmsrs = (uint)entries.Length;
            ((KvmMsrs*)p)->Pad = 0;
            var body = new Span<KvmMsrEntry>(p + sizeof(KvmMsrs), entries.Length);
            entries.CopyTo(body);
            int n = Ioctl.Ptr(Fd, request, p);
            if (!output.IsEmpty) body.CopyTo(output);
            return n;
        }
    }

    public KvmVcpuEvents GetVcpuEvents() => Get<KvmVcpuEvents>(KvmIoctls.KVM_GET_VCPU_EVENTS);

    public void SetVcpuEvents(in KvmVcpuEvents events) => Set(KvmIoctls.KVM_SET_VCPU_EVENTS, in events);

    public KvmMpState GetMpState() => Get<KvmMpState>(KvmIoctls.KVM_GET_MP_STATE);

    public void SetMpState(in KvmMpState state) => Set(KvmIoctls.KVM_SET_MP_STATE, in state);

    public KvmDebugRegs GetDebugRegs() => Get<KvmDebugRegs>(KvmIoctls.KVM_GET_DEBUGREGS);

    public void SetDebugRegs(in KvmDebugRegs debugRegs) => Set(KvmIoctls.KVM_SET_DEBUGREGS, in debugRegs);

    /// <summary>KVM_GET_LAPIC (needs an in-kernel irqchip, <see cref="KvmVm.CreateIrqchip"/>; EINVAL otherwise).</summary>
    public KvmLapicState GetLapic() => Get<KvmLapicState>(KvmIoctls.KVM_GET_LAPIC);

    public void SetLapic(in KvmLapicState lapic) => Set(KvmIoctls.KVM_SET_LAPIC, in lapic);

    // ---- CPUID -----------------------------------------------------------------------------------------------

    /// <summary>KVM_SET_CPUID2: the CPUID the guest sees (typically <see cref="KvmSystem.GetSupportedCpuid"/>,
    /// edited). Set it before the first KVM_RUN; long mode, SYSCALL and XSAVE need the matching bits.</summary>
    public void SetCpuid2(ReadOnlySpan<KvmCpuidEntry2> entries)
    {
        byte[] buffer = new byte[sizeof(KvmCpuid2) + entries.Length * sizeof(KvmCpuidEntry2)];
        fixed (byte* p = buffer)
        {
            ((KvmCpuid2*)p)->Nent = (uint)entries.Length;
            entries.CopyTo(new Span<KvmCpuidEntry2>(p + sizeof(KvmCpuid2), entries.Length));
            Ioctl.Ptr(Fd, KvmIoctls.KVM_SET_CPUID2, p);
        }
    }

    /// <summary>KVM_GET_CPUID2: the CPUID set on this vCPU.</summary>
    public KvmCpuidEntry2[] GetCpuid2()
    {
        for (int capacity = 128; ; capacity *= 2)
        {
            byte[] buffer = new byte[sizeof(KvmCpuid2) + capacity * sizeof(KvmCpuidEntry2)];
            fixed (byte* p = buffer)
            {
                ((KvmCpuid2*)p)->Nent = (uint)capacity;
                int r = Ioctl.TryPtr(Fd, KvmIoctls.KVM_GET_CPUID2, p, out int errno);
                if (r < 0)
                {
                    if (errno == Libc.E2BIG && capacity < 65536) continue;
                    throw new KvmException("KVM_GET_CPUID2", errno);
                }
                int n = (int)((KvmCpuid2*)p)->Nent;
                return new ReadOnlySpan<KvmCpuidEntry2>(p + sizeof(KvmCpuid2), n).ToArray();
            }
        }
    }

    // ---- signals ---------------------------------------------------------------------------------------------

    /// <summary>
    /// KVM_SET_SIGNAL_MASK: the signal mask of the thread while it is inside KVM_RUN, as the kernel's 8-byte sigset
    /// (bit n-1 is signal n). Outside KVM_RUN the thread's own mask applies. See <see cref="VcpuKicker"/>.
    /// </summary>
    public void SetSignalMask(ulong kernelSigset)
    {
        // struct kvm_signal_mask { __u32 len; __u8 sigset[]; }: the 8 sigset bytes follow len at offset 4.
        byte* buffer = stackalloc byte[sizeof(KvmSignalMask) + sizeof(ulong)];
        ((KvmSignalMask*)buffer)->Len = sizeof(ulong);
        *(ulong*)(buffer + sizeof(KvmSignalMask)) = kernelSigset;
        Ioctl.Ptr(Fd, KvmIoctls.KVM_SET_SIGNAL_MASK, buffer);
    }

    /// <summary>KVM_SET_SIGNAL_MASK with no mask: KVM_RUN keeps the thread's own mask.</summary>
    public void ClearSignalMask() => Ioctl.Ptr(Fd, KvmIoctls.KVM_SET_SIGNAL_MASK, null);

    public void Dispose()
    {
        lock (_lifetime)
        {
            if (_run != null)
            {
                Libc.munmap((nint)_run, (nuint)_runSize);
                _run = null;
            }
            int fd = Interlocked.Exchange(ref _fd, -1);
            if (fd >= 0) Libc.close(fd);
        }
    }
}
