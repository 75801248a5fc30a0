using Remus.Kvm;
using Remus.Sandbox.Memory;

namespace Remus.Sandbox.Platform.Kvm;

/// <summary>
/// The KVM VM a domain's vCPUs share (<see cref="KvmPlatformVcpu"/>): /dev/kvm, the VM with its single RAM slot, the
/// platform area (<see cref="GuestLayout"/>, written once), the dirty log (per VM: a harvest from any vCPU covers all),
/// the page permissions, and which per-vCPU areas (<see cref="GuestLayout.Cpu"/>) are taken. Reference-counted by
/// area: the first vCPU holds area 0, each sibling (or seed of one) another; the VM goes when the last is released.
/// <para>
/// KVM never destroys a vCPU before its VM (closing its fd does not free it, and KVM_CREATE_VCPU counts every vCPU
/// ever made against KVM_CAP_MAX_VCPUS), so a released vCPU is parked here and the next sibling reuses it on its own
/// thread (KVM lets another thread of the process run a vCPU), reconfigured for its area. A program that starts and
/// ends threads all day thus never runs out of vCPU ids.
/// </para>
/// </summary>
internal sealed class KvmMachine
{
    private readonly Lock _lock = new();
    private readonly bool[] _taken;
    private readonly Stack<KvmVcpu> _idle = new();
    private readonly KvmSystem _kvm;
    private int _references;
    private uint _nextId;
    private bool _closed;

    public GuestMemory Memory { get; }
    public KvmVm Vm { get; }
    public KvmCpuidEntry2[] Cpuid { get; }
    public CpuConfig Config { get; }
    public KvmSlotDirtyLog DirtyLog { get; }
    /// <summary>The program's page permissions in the shared identity map.</summary>
    public PagePermissions Permissions { get; }

    /// <summary>Whether the vCPUs run the program's paged address space (CR3 on its tables) or the identity map.</summary>
    public KvmPagedMode Paged { get; }

    /// <summary>How the VM's vCPUs drop translations the VMM took away (one for the VM: see <see cref="TlbFlush"/>).</summary>
    public TlbFlush Tlb { get; }

    /// <summary>How many vCPUs this VM can run at once: the areas of the layout, or fewer if KVM allows fewer.</summary>
    public int MaxVcpus { get; }

    /// <summary>Whether the vCPUs' rdtsc reads the host's TSC (KVM_VCPU_TSC_CTRL took offset 0 on the first vCPU).</summary>
    public bool TscFromHost { get; set; }

    /// <summary>
    /// A translation was taken away and retired with <see cref="Tlb"/> (on <paramref name="caller"/>'s thread, which
    /// flushes before it next runs), which bumped its generation: kicks every sibling that is in the guest and may hold stale TLB entries, and waits until
    /// each has left the guest or flushed, as Linux's munmap/mprotect return only once no thread can use the old
    /// mapping. A kicked sibling flushes and goes on; the kick is not a Kicked exit for its kernel.
    /// </summary>
    public void Shootdown(KvmPlatformVcpu caller)
    {
        long generation = Tlb.Generation;
        KvmPlatformVcpu[] others;
        lock (_lock) others = _attached.Where(v => v != caller).ToArray();
        foreach (var v in others) v.KickForFlush(generation);
        foreach (var v in others) v.AwaitFlush(generation);
    }

    private readonly List<KvmPlatformVcpu> _attached = [];

    /// <summary>A vCPU that runs (for <see cref="Shootdown"/>); <see cref="Detach"/> before its area is released.</summary>
    public void Attach(KvmPlatformVcpu vcpu)
    {
        lock (_lock) _attached.Add(vcpu);
    }

    public void Detach(KvmPlatformVcpu vcpu)
    {
        lock (_lock) _attached.Remove(vcpu);
    }

    /// <summary>The VM's memory slot: all of guest RAM at guest-physical 0.</summary>
    public const uint MemorySlot = 0;

    private KvmMachine(GuestMemory memory, KvmSystem kvm, KvmVm vm, KvmCpuidEntry2[] cpuid, CpuConfig config,
        KvmDirtyLogMode mode, int maxVcpus, bool paged)
    {
        Paged = new KvmPagedMode(paged);
        Memory = memory;
        _kvm = kvm;
        Vm = vm;
        Cpuid = cpuid;
        Config = config;
        MaxVcpus = maxVcpus;
        _taken = new bool[maxVcpus];
        DirtyLog = new KvmSlotDirtyLog(vm, MemorySlot, memory, mode);
        Tlb = new TlbFlush(memory, TlbFlush.ForHost())
        {
            ReattachSlot = DirtyLog.Reattach,
            Roots = paged ? (PageTableEditor.Root, PageTableEditor.RootMirror) : (GuestLayout.Pml4, GuestLayout.Pml4Alternate),
        };
        Permissions = new PagePermissions(memory, Tlb);
    }

    /// <summary>Builds the VM over <paramref name="memory"/> (writing the platform area) with area 0 taken for the first
    /// vCPU (release it with <see cref="Release"/>).</summary>
    /// <exception cref="SandboxException">KVM is missing, lacks something, or refused the configuration.</exception>
    public static KvmMachine Create(GuestMemory memory, KvmDirtyLogMode mode, bool paged = false)
    {
        ArgumentNullException.ThrowIfNull(memory);
        if (memory.Size > GuestLayout.MaxMemory)
            throw new SandboxException($"the KVM platform maps at most {GuestLayout.MaxMemory >> 30} GiB of guest memory (asked for {memory.Size >> 20} MiB)");
        KvmSystem? kvm = null;
        KvmVm? vm = null;
        try
        {
            try
            {
                kvm = KvmSystem.Open();
            }
            catch (KvmUnavailableException e)
            {
                throw new SandboxException($"cannot use KVM: {e.Message}", e);
            }
            if (KvmPlatform.MissingCapability(kvm) is { } missing) throw new SandboxException($"cannot use KVM: {missing}");
            KvmCpuidEntry2[] cpuid = kvm.GetSupportedCpuid();
            CpuConfig config = CpuConfig.From(cpuid);

            // The paged model's roots live in the platform area (written whole by Build): kept across it.
            byte[]? roots = paged ? KvmPagedMode.SaveRoots(memory) : null;
            GuestLayout.Build(memory.Physical(0, (int)GuestLayout.ReservedSize), memory.Size);
            if (roots != null) KvmPagedMode.RestoreRoots(memory, roots);

            vm = kvm.CreateVm();
            vm.SetUserMemoryRegion(MemorySlot, 0, memory.Size, memory.HostBase, flags: 0); // logging: StartDirtyLog
            if (memory.Size <= GuestLayout.KvmTssAddress) vm.SetTssAddress(GuestLayout.KvmTssAddress);
            // KVM_CAP_MAX_VCPUS: how many vCPUs the VM may have (0 on very old kernels: then assume the layout's).
            int kvmMax = vm.CheckExtension(KvmConstants.KVM_CAP_MAX_VCPUS);
            int max = kvmMax > 0 ? Math.Min(kvmMax, GuestLayout.MaxVcpus) : GuestLayout.MaxVcpus;
            var machine = new KvmMachine(memory, kvm, vm, cpuid, config, mode, max, paged);
            machine._taken[0] = true;
            machine._references = 1;
            return machine;
        }
        catch (Exception e)
        {
            vm?.Dispose();
            kvm?.Dispose();
            if (e is KvmException k) throw new SandboxException($"cannot start the KVM vCPU: {k.Message}", k);
            throw;
        }
    }

    /// <summary>Takes a free per-vCPU area for a new sibling (and a reference on the VM); -1 when all
    /// <see cref="MaxVcpus"/> are in use.</summary>
    public int Reserve()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            for (int i = 0; i < _taken.Length; i++)
            {
                if (_taken[i]) continue;
                _taken[i] = true;
                _references++;
                return i;
            }
            return -1;
        }
    }

    /// <summary>A KVM vCPU for a newly attached vCPU: a parked one, or a new one (then <paramref name="fresh"/>: it
    /// still needs its CPUID and TSC offset).</summary>
    public KvmVcpu TakeVcpu(out bool fresh)
    {
        uint id;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            if (_idle.TryPop(out var parked))
            {
                fresh = false;
                return parked;
            }
            id = _nextId++;
        }
        fresh = true;
        return Vm.CreateVcpu(id);
    }

    /// <summary>Gives area <paramref name="index"/> back, parks <paramref name="vcpu"/> (when given) for reuse and drops
    /// the reference; the last release closes every parked vCPU, the VM and /dev/kvm.</summary>
    public void Release(int index, KvmVcpu? vcpu)
    {
        KvmVcpu[] close;
        lock (_lock)
        {
            if (_closed) return;
            if (!_taken[index]) throw new InvalidOperationException($"vCPU area {index} was not taken");
            _taken[index] = false;
            if (vcpu != null) _idle.Push(vcpu);
            if (--_references > 0) return;
            _closed = true;
            close = _idle.ToArray();
            _idle.Clear();
        }
        foreach (var v in close) v.Dispose();
        Vm.Dispose();
        _kvm.Dispose();
        GC.KeepAlive(Memory);
    }
}
