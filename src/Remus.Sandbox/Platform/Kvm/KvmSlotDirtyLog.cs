using Remus.Kvm;

namespace Remus.Sandbox.Platform.Kvm;

/// <summary>How the KVM dirty log re-arms tracking after a harvest.</summary>
internal enum KvmDirtyLogMode
{
    /// <summary>KVM_GET_DIRTY_LOG alone: reports and write-protects the written pages again in one call.</summary>
    GetDirtyLog,
    /// <summary>KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: KVM_GET_DIRTY_LOG only reports, KVM_CLEAR_DIRTY_LOG re-protects
    /// what was reported, except the untracked pages (<see cref="KvmSlotDirtyLog.SetUntracked"/>): those stay
    /// writable, their dirty bit stays set, and every harvest reports them.</summary>
    ManualProtect,
}

/// <summary>
/// The KVM platform's dirty log: KVM_MEM_LOG_DIRTY_PAGES on the single RAM slot, switched on by <see cref="Start"/>
/// (a domain nobody checkpoints never pays for write protection), read by <see cref="Harvest"/> with
/// KVM_GET_DIRTY_LOG. It reports what the vCPU wrote; the VMM's own writes into guest RAM are in
/// <see cref="GuestMemory"/>'s host-dirty bitmap, which <see cref="SandboxDomain"/> merges into every harvest (as on
/// ptrace). The platform's reserved first 2 MiB (stub stacks, data page) is left out of what is reported: it is
/// rebuilt on every host and never transferred.
/// <para>The mode: <see cref="KvmDirtyLogMode.GetDirtyLog"/> by default, chosen by measurement (bench
/// <c>kvm-dirty-log</c>); <see cref="KvmDirtyLogMode.ManualProtect"/> is used when REMUS_KVM_DIRTY_LOG=manual and
/// KVM offers it.</para>
/// </summary>
internal sealed class KvmSlotDirtyLog
{
    private readonly KvmVm _vm;
    private readonly uint _slot;
    private readonly GuestMemory _memory;
    private readonly ulong[] _scratch;
    private readonly int _reservedWords;
    private readonly Lock _lock = new();
    /// <summary>Manual mode: pages the caller asked not to track (never re-protected), and pages that left that set
    /// since the last harvest (reported once more, as a write just before they left was not seen).</summary>
    private readonly ulong[] _untracked, _leaving;
    /// <summary>What KVM had logged when the slot was last deleted and re-added (<see cref="Reattach"/>), reported by
    /// the next harvest.</summary>
    private readonly ulong[] _carried;
    private bool _anyCarried;
    private ulong[]? _manualBits; // manual mode: what KVM_CLEAR_DIRTY_LOG re-protects

    public KvmDirtyLogMode Mode { get; }

    public KvmSlotDirtyLog(KvmVm vm, uint slot, GuestMemory memory, KvmDirtyLogMode mode)
    {
        _vm = vm;
        _slot = slot;
        _memory = memory;
        _scratch = new ulong[DirtyLog.BitmapWords(memory.Size)];
        _untracked = new ulong[_scratch.Length];
        _leaving = new ulong[_scratch.Length];
        _carried = new ulong[_scratch.Length];
        _reservedWords = (int)(GuestLayout.ReservedSize / GuestMemory.PageSize / 64);
        if (mode == KvmDirtyLogMode.ManualProtect && vm.CheckExtension(KvmConstants.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) == 0)
            mode = KvmDirtyLogMode.GetDirtyLog;
        Mode = mode;
    }

    /// <summary>The mode REMUS_KVM_DIRTY_LOG asks for (a measurement knob; unset: the default).</summary>
    public static KvmDirtyLogMode RequestedMode() =>
        Environment.GetEnvironmentVariable("REMUS_KVM_DIRTY_LOG")?.ToLowerInvariant() == "manual"
            ? KvmDirtyLogMode.ManualProtect : KvmDirtyLogMode.GetDirtyLog;

    public bool Started { get; private set; }

    /// <summary>Turns logging on for the slot: KVM write-protects every page, so from here each page the vCPU writes
    /// is reported once per harvest. Paused; idempotent.</summary>
    public void Start()
    {
        lock (_lock) // the VM's log: any of its vCPUs may start it
        {
            if (Started) return;
            if (Mode == KvmDirtyLogMode.ManualProtect && !_vm.ManualDirtyLogProtect) _vm.EnableManualDirtyLogProtect();
            _vm.SetUserMemoryRegion(_slot, 0, _memory.Size, _memory.HostBase, KvmConstants.KVM_MEM_LOG_DIRTY_PAGES);
            Started = true;
        }
        // Nothing was logged before the flag went on; this just leaves the log empty and armed.
        lock (_lock) Read();
    }

    /// <summary>ORs into <paramref name="bitmap"/> the program pages the vCPU wrote since the last harvest and re-arms
    /// tracking for them. Any thread, running or paused (KVM_GET_DIRTY_LOG is a VM ioctl).</summary>
    public void Harvest(Span<ulong> bitmap)
    {
        lock (_lock)
        {
            Read();
            int n = Math.Min(bitmap.Length, _scratch.Length);
            for (int i = _reservedWords; i < n; i++) bitmap[i] |= _scratch[i];
        }
    }

    /// <summary>The same into a <see cref="DirtyPageSet"/>: only the non-zero words of what KVM returned are visited
    /// (a vectorized skip over the zeros), so our side costs O(memory / 64 bytes) of reading, not a loop per word.</summary>
    public void Harvest(DirtyPageSet set)
    {
        lock (_lock)
        {
            Read();
            var words = _scratch.AsSpan(0, Math.Min(_scratch.Length, set.Bitmap.Length));
            int i = _reservedWords;
            while (i < words.Length)
            {
                int next = words[i..].IndexOfAnyExcept(0UL);
                if (next < 0) break;
                i += next;
                set.OrWord(i, words[i]);
                i++;
            }
        }
    }

    /// <summary>
    /// Reads the log into <see cref="_scratch"/> (what to report: written pages, plus in manual mode the untracked
    /// and leaving ones, plus what <see cref="Reattach"/> carried) and re-arms it. Under the lock.
    /// </summary>
    private void Read()
    {
        if (!Started) throw new InvalidOperationException("the dirty log was not started");
        _vm.GetDirtyLog(_slot, _scratch);
        if (Mode == KvmDirtyLogMode.ManualProtect)
        {
            // Re-protect what was written, except the untracked pages; report those whether written or not.
            if (_manualBits == null) _manualBits = new ulong[_scratch.Length];
            for (int i = 0; i < _scratch.Length; i++)
            {
                ulong written = _scratch[i];
                _manualBits[i] = written & ~_untracked[i];
                _scratch[i] = written | _untracked[i] | _leaving[i] | _carried[i];
                _leaving[i] = 0;
            }
            _vm.ClearDirtyLog(_slot, _manualBits);
        }
        else if (_anyCarried)
        {
            for (int i = 0; i < _scratch.Length; i++) _scratch[i] |= _carried[i];
        }
        if (_anyCarried)
        {
            Array.Clear(_carried);
            _anyCarried = false;
        }
    }

    /// <summary>
    /// Deletes the slot and adds it again as it was, which makes KVM drop every shadow page of it
    /// (<see cref="TlbFlush.RetireTables"/>). The slot's dirty bitmap goes with it, so it is read first and reported
    /// by the next <see cref="Harvest"/>; the re-added slot, still logging, starts with every page write-protected
    /// again. Paused, on the vCPU thread.
    /// </summary>
    public void Reattach()
    {
        lock (_lock)
        {
            var region = _vm.GetMemoryRegion(_slot);
            if (Started)
            {
                _vm.GetDirtyLog(_slot, _scratch);
                for (int i = 0; i < _scratch.Length; i++) _carried[i] |= _scratch[i];
                _anyCarried = true;
            }
            _vm.DeleteUserMemoryRegion(_slot);
            _vm.SetUserMemoryRegion(region);
        }
    }

    /// <summary>
    /// <see cref="IVcpu.SetUntracked"/>: in <see cref="KvmDirtyLogMode.ManualProtect"/> mode the pages set in
    /// <paramref name="bitmap"/> are no longer re-protected by the harvests (so the guest writes them without a
    /// write-protection fault) and every harvest reports them; a page that leaves the set is re-protected by the next
    /// harvest, which reports it once more. In <see cref="KvmDirtyLogMode.GetDirtyLog"/> mode KVM re-protects every
    /// written page itself, so the hint is ignored (which is correct: written pages are still reported).
    /// </summary>
    public void SetUntracked(ReadOnlySpan<ulong> bitmap)
    {
        if (Mode != KvmDirtyLogMode.ManualProtect) return;
        lock (_lock)
        {
            for (int i = 0; i < _untracked.Length; i++)
            {
                ulong now = i < bitmap.Length ? bitmap[i] : 0;
                _leaving[i] |= _untracked[i] & ~now;
                _untracked[i] = now;
            }
        }
    }
}
