using Remus.Kvm.Native;

namespace Remus.Kvm;

/// <summary>
/// An open /dev/kvm: the system-wide KVM handle (libxc's xc_interface, kvm-ioctls' Kvm). Creates VMs and answers
/// capability questions. Thread-safe; dispose it after every <see cref="KvmVm"/> made from it.
/// </summary>
public sealed unsafe class KvmSystem : IDisposable
{
    public const string DefaultPath = "/dev/kvm";

    private int _fd;

    private KvmSystem(string path, int fd, int vcpuMmapSize)
    {
        Path = path;
        _fd = fd;
        VcpuMmapSize = vcpuMmapSize;
    }

    /// <summary>The device path this was opened from.</summary>
    public string Path { get; }

    /// <summary>The /dev/kvm file descriptor.</summary>
    public int Fd => _fd >= 0 ? _fd : throw new ObjectDisposedException(nameof(KvmSystem));

    /// <summary>KVM_GET_VCPU_MMAP_SIZE, read once at open: the size of each vCPU's kvm_run mapping.</summary>
    public int VcpuMmapSize { get; }

    /// <summary>
    /// Opens the KVM device and checks KVM_GET_API_VERSION == 12.
    /// </summary>
    /// <exception cref="KvmUnavailableException">The device is missing, not accessible, not KVM, or of another API
    /// version; the message is one line that says what to do.</exception>
    public static KvmSystem Open(string path = DefaultPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        int fd = Libc.open(path, Libc.O_RDWR | Libc.O_CLOEXEC);
        if (fd < 0) throw new KvmUnavailableException(OpenFailureMessage(path, Libc.Errno));
        try
        {
            int version = Libc.ioctl(fd, KvmIoctls.KVM_GET_API_VERSION, 0);
            if (version < 0)
            {
                int e = Libc.Errno;
                throw new KvmUnavailableException(e == Libc.ENOTTY || e == Libc.EINVAL
                    ? $"{path} is not a KVM device (KVM_GET_API_VERSION: {Libc.ErrnoText(e)})"
                    : $"{path}: KVM_GET_API_VERSION failed: {Libc.ErrnoText(e)}");
            }
            if (version != KvmConstants.KVM_API_VERSION)
                throw new KvmUnavailableException(
                    $"{path}: KVM API version {version} is not supported (expected {KvmConstants.KVM_API_VERSION})");

            int mmapSize = Libc.ioctl(fd, KvmIoctls.KVM_GET_VCPU_MMAP_SIZE, 0);
            if (mmapSize < 0)
                throw new KvmUnavailableException($"{path}: KVM_GET_VCPU_MMAP_SIZE failed: {Libc.ErrnoText(Libc.Errno)}");
            if (mmapSize < sizeof(KvmRun))
                throw new KvmUnavailableException($"{path}: KVM_GET_VCPU_MMAP_SIZE returned {mmapSize}, smaller than struct kvm_run");
            return new KvmSystem(path, fd, mmapSize);
        }
        catch
        {
            Libc.close(fd);
            throw;
        }
    }

    /// <summary>True when <paramref name="path"/> can be opened as a usable KVM device; otherwise
    /// <paramref name="reason"/> is the one-line message <see cref="Open"/> would throw.</summary>
    public static bool IsAvailable(out string reason, string path)
    {
        try
        {
            using var kvm = Open(path);
            reason = "";
            return true;
        }
        catch (KvmUnavailableException e)
        {
            reason = e.Message;
            return false;
        }
    }

    /// <summary>True when /dev/kvm can be opened as a usable KVM device; otherwise <paramref name="reason"/> says why.</summary>
    public static bool IsAvailable(out string reason) => IsAvailable(out reason, DefaultPath);

    internal static string OpenFailureMessage(string path, int errno) => errno switch
    {
        Libc.ENOENT => $"{path} does not exist: this host offers no KVM (load kvm_intel or kvm_amd, or use a host with virtualization enabled)",
        Libc.EACCES or Libc.EPERM => $"{path}: permission denied (run as root or join the kvm group)",
        Libc.ENXIO or Libc.ENODEV => $"{path}: no KVM driver behind the device node (load kvm_intel or kvm_amd)",
        Libc.EROFS => $"{path}: read-only file system (KVM needs the device opened read-write)",
        _ => $"{path}: cannot open the KVM device: {Libc.ErrnoText(errno)}",
    };

    /// <summary>KVM_GET_VCPU_MMAP_SIZE.</summary>
    public int GetVcpuMmapSize() => Ioctl.Value(Fd, KvmIoctls.KVM_GET_VCPU_MMAP_SIZE, 0);

    /// <summary>KVM_CHECK_EXTENSION on /dev/kvm: 0 when the capability (a KVM_CAP_* of <see cref="KvmConstants"/>)
    /// is absent, otherwise a positive, capability-specific value. Some capabilities (KVM_CAP_XSAVE2,
    /// KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 details) must be asked of the VM: <see cref="KvmVm.CheckExtension"/>.</summary>
    public int CheckExtension(int capability) => Ioctl.Value(Fd, KvmIoctls.KVM_CHECK_EXTENSION, (nuint)capability);

    /// <summary>KVM_GET_SUPPORTED_CPUID: every CPUID leaf KVM can offer a guest on this host (to pass, possibly
    /// edited, to <see cref="KvmVcpu.SetCpuid2"/>).</summary>
    public KvmCpuidEntry2[] GetSupportedCpuid()
    {
        for (int capacity = 128; ; capacity *= 2)
        {
            int bytes = sizeof(KvmCpuid2) + capacity * sizeof(KvmCpuidEntry2);
            byte[] buffer = new byte[bytes];
            fixed (byte* p = buffer)
            {
                ((KvmCpuid2*)p)->Nent = (uint)capacity;
                int r = Ioctl.TryPtr(Fd, KvmIoctls.KVM_GET_SUPPORTED_CPUID, p, out int errno);
                if (r < 0)
                {
                    if (errno == Libc.E2BIG && capacity < 65536) continue;
                    throw new KvmException("KVM_GET_SUPPORTED_CPUID", errno);
                }
                int n = (int)((KvmCpuid2*)p)->Nent;
                return new ReadOnlySpan<KvmCpuidEntry2>(p + sizeof(KvmCpuid2), n).ToArray();
            }
        }
    }

    /// <summary>KVM_GET_MSR_INDEX_LIST: the MSRs KVM saves and restores for a guest (what migration should move).</summary>
    public uint[] GetMsrIndexList()
    {
        // First ask with room for none: KVM answers E2BIG and writes the count it needs.
        KvmMsrList probe = default;
        int r = Ioctl.TryPtr(Fd, KvmIoctls.KVM_GET_MSR_INDEX_LIST, &probe, out int errno);
        if (r >= 0) return [];
        if (errno != Libc.E2BIG) throw new KvmException("KVM_GET_MSR_INDEX_LIST", errno);
        for (uint capacity = Math.Max(probe.Nmsrs, 1); ; capacity *= 2)
        {
            byte[] buffer = new byte[sizeof(KvmMsrList) + (int)capacity * sizeof(uint)];
            fixed (byte* p = buffer)
            {
                ((KvmMsrList*)p)->Nmsrs = capacity;
                r = Ioctl.TryPtr(Fd, KvmIoctls.KVM_GET_MSR_INDEX_LIST, p, out errno);
                if (r < 0)
                {
                    if (errno == Libc.E2BIG && capacity < 65536) continue;
                    throw new KvmException("KVM_GET_MSR_INDEX_LIST", errno);
                }
                int n = (int)((KvmMsrList*)p)->Nmsrs;
                return new ReadOnlySpan<uint>(p + sizeof(KvmMsrList), n).ToArray();
            }
        }
    }

    /// <summary>KVM_CREATE_VM. <paramref name="machineType"/> 0 is the default x86 VM.</summary>
    public KvmVm CreateVm(ulong machineType = 0)
    {
        int vmFd = Ioctl.Value(Fd, KvmIoctls.KVM_CREATE_VM, (nuint)machineType);
        return new KvmVm(this, vmFd);
    }

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) Libc.close(fd);
    }
}
