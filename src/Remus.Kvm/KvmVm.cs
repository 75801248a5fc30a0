using Remus.Kvm.Native;

namespace Remus.Kvm;

/// <summary>
/// One KVM virtual machine (KVM_CREATE_VM): its memory slots, dirty log and vCPUs. Guest memory is allocated by the
/// caller (any page-aligned host mapping) and only registered here. Dispose the vCPUs first.
/// </summary>
public sealed unsafe class KvmVm : IDisposable
{
    /// <summary>The page size of the dirty log: one bit per 4 KiB guest page.</summary>
    public const int PageSize = 4096;

    private readonly object _lock = new();
    private readonly Dictionary<uint, KvmUserspaceMemoryRegion> _regions = new();
    private int _fd;
    private int _xsaveSize;

    internal KvmVm(KvmSystem system, int fd)
    {
        System = system;
        _fd = fd;
    }

    public KvmSystem System { get; }

    /// <summary>The VM file descriptor.</summary>
    public int Fd => _fd >= 0 ? _fd : throw new ObjectDisposedException(nameof(KvmVm));

    /// <summary>True after <see cref="CreateIrqchip"/>: vCPUs then have an in-kernel local APIC (KVM_GET_LAPIC works).</summary>
    public bool HasIrqchip { get; private set; }

    /// <summary>True after <see cref="EnableManualDirtyLogProtect"/>: KVM_GET_DIRTY_LOG no longer re-protects pages;
    /// <see cref="ClearDirtyLog(uint, ulong, uint, ReadOnlySpan{ulong})"/> does.</summary>
    public bool ManualDirtyLogProtect { get; private set; }

    /// <summary>The registered memory slots.</summary>
    public IReadOnlyCollection<KvmUserspaceMemoryRegion> MemoryRegions
    {
        get { lock (_lock) return _regions.Values.ToArray(); }
    }

    /// <summary>
    /// Bytes of the XSAVE area of this VM's vCPUs: KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) on the VM when supported
    /// (at least 4096; more when dynamic features such as AMX are enabled), otherwise 4096.
    /// </summary>
    public int XsaveSize
    {
        get
        {
            if (_xsaveSize == 0)
            {
                int size = CheckExtension(KvmConstants.KVM_CAP_XSAVE2);
                _xsaveSize = Math.Max(size, KvmXsave.Size);
            }
            return _xsaveSize;
        }
    }

    /// <summary>True when KVM_GET_XSAVE2 is to be used (KVM_CAP_XSAVE2 reported).</summary>
    internal bool HasXsave2 => CheckExtension(KvmConstants.KVM_CAP_XSAVE2) > 0;

    /// <summary>KVM_CHECK_EXTENSION on the VM fd (answers for this VM, e.g. KVM_CAP_XSAVE2's size,
    /// KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2's supported flags, KVM_CAP_NR_MEMSLOTS).</summary>
    public int CheckExtension(int capability) => Ioctl.Value(Fd, KvmIoctls.KVM_CHECK_EXTENSION, (nuint)capability);

    /// <summary>KVM_SET_TSS_ADDR: three pages of guest-physical space, unused by the guest, that Intel VMX needs for
    /// real-mode emulation (e.g. 0xfffbd000). Call before running a vCPU.</summary>
    public void SetTssAddress(ulong address)
    {
        if (address + 3 * PageSize > 1UL << 32) throw new ArgumentOutOfRangeException(nameof(address), "the TSS must lie below 4 GiB");
        Ioctl.Value(Fd, KvmIoctls.KVM_SET_TSS_ADDR, (nuint)address);
    }

    /// <summary>KVM_SET_IDENTITY_MAP_ADDR: one page of guest-physical space, unused by the guest, for the EPT identity
    /// map of VMX real mode (e.g. 0xfffbc000). Must be called before any vCPU is created.</summary>
    public void SetIdentityMapAddress(ulong address)
    {
        ulong a = address;
        Ioctl.Ptr(Fd, KvmIoctls.KVM_SET_IDENTITY_MAP_ADDR, &a);
    }

    /// <summary>KVM_CREATE_IRQCHIP: an in-kernel PIC, IOAPIC and per-vCPU local APIC. Optional (the ring-3 sandbox
    /// needs none); must come before <see cref="CreateVcpu"/>.</summary>
    public void CreateIrqchip()
    {
        Ioctl.Value(Fd, KvmIoctls.KVM_CREATE_IRQCHIP, 0);
        HasIrqchip = true;
    }

    /// <summary>
    /// KVM_SET_USER_MEMORY_REGION: maps <paramref name="size"/> bytes of host memory at <paramref name="hostAddress"/>
    /// to guest-physical <paramref name="guestPhysAddr"/> as slot <paramref name="slot"/>. By default the slot logs
    /// dirty pages. All three must be page-aligned. The memory must stay mapped until the slot is deleted or the VM
    /// disposed.
    /// </summary>
    public void SetUserMemoryRegion(uint slot, ulong guestPhysAddr, ulong size, nint hostAddress,
        uint flags = KvmConstants.KVM_MEM_LOG_DIRTY_PAGES)
    {
        SetUserMemoryRegion(new KvmUserspaceMemoryRegion
        {
            Slot = slot,
            Flags = flags,
            GuestPhysAddr = guestPhysAddr,
            MemorySize = size,
            UserspaceAddr = (ulong)hostAddress,
        });
    }

    /// <summary>KVM_SET_USER_MEMORY_REGION with a prepared region (MemorySize 0 deletes the slot).</summary>
    public void SetUserMemoryRegion(in KvmUserspaceMemoryRegion region)
    {
        if (region.GuestPhysAddr % PageSize != 0) throw new ArgumentException("guest-physical address is not page-aligned", nameof(region));
        if (region.MemorySize % PageSize != 0) throw new ArgumentException("size is not a multiple of the page size", nameof(region));
        if (region.MemorySize != 0 && region.UserspaceAddr % PageSize != 0)
            throw new ArgumentException("host address is not page-aligned", nameof(region));
        KvmUserspaceMemoryRegion r = region;
        lock (_lock)
        {
            Ioctl.Ptr(Fd, KvmIoctls.KVM_SET_USER_MEMORY_REGION, &r);
            if (r.MemorySize == 0) _regions.Remove(r.Slot);
            else _regions[r.Slot] = r;
        }
    }

    /// <summary>Deletes a memory slot (KVM_SET_USER_MEMORY_REGION with size 0).</summary>
    public void DeleteUserMemoryRegion(uint slot) =>
        SetUserMemoryRegion(new KvmUserspaceMemoryRegion { Slot = slot });

    /// <summary>The registered region of <paramref name="slot"/>.</summary>
    public KvmUserspaceMemoryRegion GetMemoryRegion(uint slot)
    {
        lock (_lock)
        {
            return _regions.TryGetValue(slot, out var r) ? r : throw new ArgumentException($"memory slot {slot} is not registered", nameof(slot));
        }
    }

    /// <summary>
    /// KVM_GET_DIRTY_LOG: writes into <paramref name="bitmap"/> one bit per page of the slot (bit i of word w is page
    /// w*64+i) that the guest wrote since the previous call; the bitmap must hold
    /// <see cref="DirtyLog.BitmapWords(ulong)"/> words for the slot's size. Without manual protection the call also
    /// re-arms tracking, so each write is reported once.
    /// </summary>
    public void GetDirtyLog(uint slot, Span<ulong> bitmap)
    {
        var region = GetMemoryRegion(slot);
        if ((region.Flags & KvmConstants.KVM_MEM_LOG_DIRTY_PAGES) == 0)
            throw new InvalidOperationException($"memory slot {slot} does not log dirty pages");
        int words = DirtyLog.BitmapWords(region.MemorySize);
        if (bitmap.Length < words)
            throw new ArgumentException($"the dirty bitmap of slot {slot} needs {words} words, got {bitmap.Length}", nameof(bitmap));
        fixed (ulong* p = bitmap)
        {
            KvmDirtyLog log = new() { Slot = slot, DirtyBitmap = (ulong)p };
            Ioctl.Ptr(Fd, KvmIoctls.KVM_GET_DIRTY_LOG, &log);
        }
    }

    /// <summary>
    /// Enables KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: KVM_GET_DIRTY_LOG then only reports, and the caller re-arms
    /// tracking with <see cref="ClearDirtyLog(uint, ulong, uint, ReadOnlySpan{ulong})"/> (cheaper for large slots).
    /// With <paramref name="initiallySet"/> a new slot starts all-dirty and unprotected (KVM_DIRTY_LOG_INITIALLY_SET).
    /// </summary>
    public void EnableManualDirtyLogProtect(bool initiallySet = false)
    {
        int supported = CheckExtension(KvmConstants.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
        if (supported == 0) throw new KvmException("KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 is not supported by this kernel");
        ulong flags = KvmConstants.KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
        if (initiallySet)
        {
            if (((ulong)supported & KvmConstants.KVM_DIRTY_LOG_INITIALLY_SET) == 0)
                throw new KvmException("KVM_DIRTY_LOG_INITIALLY_SET is not supported by this kernel");
            flags |= KvmConstants.KVM_DIRTY_LOG_INITIALLY_SET;
        }
        EnableCapability(KvmConstants.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, flags);
        ManualDirtyLogProtect = true;
    }

    /// <summary>
    /// KVM_CLEAR_DIRTY_LOG: re-arms dirty tracking for the pages whose bits are set in <paramref name="bitmap"/>
    /// (bit i is page <paramref name="firstPage"/>+i, for <paramref name="numPages"/> pages). KVM requires
    /// <paramref name="firstPage"/> to be a multiple of 64 and <paramref name="numPages"/> to be one too unless the
    /// range ends at the end of the slot.
    /// </summary>
    public void ClearDirtyLog(uint slot, ulong firstPage, uint numPages, ReadOnlySpan<ulong> bitmap)
    {
        if (!ManualDirtyLogProtect) throw new InvalidOperationException("KVM_CLEAR_DIRTY_LOG needs EnableManualDirtyLogProtect first");
        var region = GetMemoryRegion(slot);
        ulong slotPages = region.MemorySize / PageSize;
        if (firstPage % 64 != 0) throw new ArgumentException("firstPage must be a multiple of 64", nameof(firstPage));
        if (firstPage + numPages > slotPages) throw new ArgumentOutOfRangeException(nameof(numPages), "the range exceeds the slot");
        if (numPages % 64 != 0 && firstPage + numPages != slotPages)
            throw new ArgumentException("numPages must be a multiple of 64 unless the range ends at the end of the slot", nameof(numPages));
        if ((ulong)bitmap.Length * 64 < numPages) throw new ArgumentException("the bitmap is shorter than numPages bits", nameof(bitmap));
        if (numPages == 0) return;
        fixed (ulong* p = bitmap)
        {
            KvmClearDirtyLog clear = new() { Slot = slot, NumPages = numPages, FirstPage = firstPage, DirtyBitmap = (ulong)p };
            Ioctl.Ptr(Fd, KvmIoctls.KVM_CLEAR_DIRTY_LOG, &clear);
        }
    }

    /// <summary>KVM_CLEAR_DIRTY_LOG over the whole slot with a bitmap from <see cref="GetDirtyLog"/>.</summary>
    public void ClearDirtyLog(uint slot, ReadOnlySpan<ulong> bitmap)
    {
        var region = GetMemoryRegion(slot);
        ulong pages = region.MemorySize / PageSize;
        if (pages > uint.MaxValue) throw new NotSupportedException("slot too large for one KVM_CLEAR_DIRTY_LOG");
        ClearDirtyLog(slot, 0, (uint)pages, bitmap);
    }

    /// <summary>KVM_ENABLE_CAP on the VM.</summary>
    public void EnableCapability(int capability, ulong arg0 = 0, ulong arg1 = 0, ulong arg2 = 0, ulong arg3 = 0)
    {
        KvmEnableCap cap = default;
        cap.Cap = (uint)capability;
        cap.Args[0] = arg0;
        cap.Args[1] = arg1;
        cap.Args[2] = arg2;
        cap.Args[3] = arg3;
        Ioctl.Ptr(Fd, KvmIoctls.KVM_ENABLE_CAP, &cap);
    }

    /// <summary>KVM_CREATE_VCPU with APIC id <paramref name="id"/>, and mmap of its kvm_run page.</summary>
    public KvmVcpu CreateVcpu(uint id)
    {
        int xsaveSize = XsaveSize;
        bool xsave2 = HasXsave2;
        int vcpuFd = Ioctl.Value(Fd, KvmIoctls.KVM_CREATE_VCPU, id);
        try
        {
            return new KvmVcpu(this, id, vcpuFd, System.VcpuMmapSize, xsaveSize, xsave2);
        }
        catch
        {
            Libc.close(vcpuFd);
            throw;
        }
    }

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) Libc.close(fd);
    }
}
