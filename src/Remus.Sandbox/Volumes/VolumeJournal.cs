namespace Remus.Sandbox.Volumes;

/// <summary>What a <see cref="VolumeJournal"/> does with the mutations reported to it.</summary>
internal enum VolumeTracking
{
    /// <summary>Nothing is kept (the table holds no journal then: an unprotected domain pays a null check).</summary>
    Off,

    /// <summary>A copy is under way: the paths touched are remembered, for the next copy round to resend.</summary>
    Copy,

    /// <summary>Protected: every mutation is encoded as an op, in order, for this epoch's VOLUME_OPS.</summary>
    Journal,
}

/// <summary>
/// The sender's record of volume mutations (<see cref="IVolumeJournal"/>, called by the file system under the kernel
/// lock after each mutation that succeeded on the host). In <see cref="VolumeTracking.Copy"/> mode it remembers dirty
/// paths — a rename marks both ends, with everything below them; in <see cref="VolumeTracking.Journal"/> mode it
/// encodes each call as a VOLUME_OPS op into pooled buffers (writes over 1 MiB split, data LZ4-compressed when that
/// helps). Its own lock orders the file system's calls against the checkpoint engine's drains (a copy round runs
/// while the domain does).
/// </summary>
internal sealed class VolumeJournal : IVolumeJournal
{
    private readonly object _gate = new();
    private readonly VolumeBatchWriter _ops = new();
    private Dictionary<(int Volume, string Path), bool> _dirty = [];
    private VolumeTracking _mode;

    public VolumeTracking Mode
    {
        get { lock (_gate) return _mode; }
    }

    /// <summary>Switches mode, dropping whatever the previous mode kept.</summary>
    public void SetMode(VolumeTracking mode)
    {
        lock (_gate)
        {
            _mode = mode;
            _dirty = [];
            _ops.Clear();
        }
    }

    /// <summary>Copy mode: the paths touched since the last call (value: everything below them too), and forgets them.</summary>
    public Dictionary<(int Volume, string Path), bool> TakeDirty()
    {
        lock (_gate)
        {
            var d = _dirty;
            _dirty = [];
            return d;
        }
    }

    /// <summary>Journal mode: hands over the epoch's ops as VOLUME_OPS bodies; returns the bytes emitted.</summary>
    public long Drain(Action<ReadOnlySpan<byte>> emit)
    {
        lock (_gate) return _ops.Drain(emit);
    }

    /// <summary>Journal mode: bytes of ops waiting for the next drain.</summary>
    public long PendingBytes
    {
        get { lock (_gate) return _ops.PendingBytes; }
    }

    public void Created(int volume, string path, uint mode)
    {
        lock (_gate)
        {
            if (_mode == VolumeTracking.Copy) Mark(volume, path, false);
            else if (_mode == VolumeTracking.Journal) _ops.Create(volume, path, mode & VolumeOpsFormat.ModeMask);
        }
    }

    public void Wrote(int volume, string path, long offset, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty) return;
        lock (_gate)
        {
            if (_mode == VolumeTracking.Copy) Mark(volume, path, false);
            else if (_mode == VolumeTracking.Journal) _ops.Write(volume, path, offset, data);
        }
    }

    public void Truncated(int volume, string path, long size)
    {
        lock (_gate)
        {
            if (_mode == VolumeTracking.Copy) Mark(volume, path, false);
            else if (_mode == VolumeTracking.Journal) _ops.Truncate(volume, path, size);
        }
    }

    public void Allocated(int volume, string path, long offset, long length)
    {
        if (length <= 0) return;
        lock (_gate)
        {
            if (_mode == VolumeTracking.Copy) Mark(volume, path, false);
            else if (_mode == VolumeTracking.Journal) _ops.Fallocate(volume, path, offset, length);
        }
    }

    public void MadeDirectory(int volume, string path, uint mode)
    {
        lock (_gate)
        {
            if (_mode == VolumeTracking.Copy) Mark(volume, path, false);
            else if (_mode == VolumeTracking.Journal) _ops.Mkdir(volume, path, mode & VolumeOpsFormat.ModeMask);
        }
    }

    public void RemovedDirectory(int volume, string path)
    {
        lock (_gate)
        {
            if (_mode == VolumeTracking.Copy) Mark(volume, path, false);
            else if (_mode == VolumeTracking.Journal) _ops.Rmdir(volume, path);
        }
    }

    public void Unlinked(int volume, string path)
    {
        lock (_gate)
        {
            if (_mode == VolumeTracking.Copy) Mark(volume, path, false);
            else if (_mode == VolumeTracking.Journal) _ops.Unlink(volume, path);
        }
    }

    public void Renamed(int volume, string from, string to, uint flags)
    {
        lock (_gate)
        {
            if (_mode == VolumeTracking.Copy)
            {
                Mark(volume, from, true);
                Mark(volume, to, true);
            }
            else if (_mode == VolumeTracking.Journal) _ops.Rename(volume, from, to, flags);
        }
    }

    public void Linked(int volume, string existing, string newPath)
    {
        lock (_gate)
        {
            if (_mode == VolumeTracking.Copy)
            {
                // Both names: the copy rounds learn the inode's names from what they send.
                Mark(volume, existing, false);
                Mark(volume, newPath, false);
            }
            else if (_mode == VolumeTracking.Journal) _ops.Link(volume, existing, newPath);
        }
    }

    public void Symlinked(int volume, string target, string path)
    {
        lock (_gate)
        {
            if (_mode == VolumeTracking.Copy) Mark(volume, path, false);
            else if (_mode == VolumeTracking.Journal) _ops.Symlink(volume, target, path);
        }
    }

    public void ChangedMode(int volume, string path, uint mode)
    {
        lock (_gate)
        {
            if (_mode == VolumeTracking.Copy) Mark(volume, path, false);
            else if (_mode == VolumeTracking.Journal) _ops.Chmod(volume, path, mode & VolumeOpsFormat.ModeMask);
        }
    }

    public void ChangedTimes(int volume, string path, long atimeNs, long mtimeNs)
    {
        lock (_gate)
        {
            if (_mode == VolumeTracking.Copy) Mark(volume, path, false);
            else if (_mode == VolumeTracking.Journal) _ops.Utimes(volume, path, atimeNs, mtimeNs);
        }
    }

    private void Mark(int volume, string path, bool recursive)
    {
        ref bool r = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_dirty, (volume, path), out _);
        r |= recursive;
    }
}
