namespace Remus.Sandbox.Kernel;

/// <summary>
/// The program's resource limits (getrlimit/setrlimit/prlimit64), soft and hard, as it set them; checkpointed.
/// They start as the domain imposes them: the stack is fixed at its size, the fd table holds 1024; the rest unlimited.
/// </summary>
internal sealed class ResourceLimits
{
    public const int Count = 16; // RLIM_NLIMITS
    public const ulong Infinity = ulong.MaxValue;
    public const int RLIMIT_STACK = 3, RLIMIT_NOFILE = 7, RLIMIT_AS = 9;

    private readonly ulong[] _soft = new ulong[Count], _hard = new ulong[Count];

    public ResourceLimits(ulong stackSize, int maxFds)
    {
        Array.Fill(_soft, Infinity);
        Array.Fill(_hard, Infinity);
        _soft[RLIMIT_STACK] = _hard[RLIMIT_STACK] = stackSize;
        _soft[RLIMIT_NOFILE] = _hard[RLIMIT_NOFILE] = (ulong)maxFds;
    }

    public ulong Soft(int resource) => _soft[resource];

    public ulong Hard(int resource) => _hard[resource];

    /// <summary>Sets a limit as an unprivileged process may: EINVAL for soft &gt; hard, EPERM for raising the hard limit.</summary>
    public long Set(int resource, ulong soft, ulong hard)
    {
        if (soft > hard) return -Errno.EINVAL;
        if (hard > _hard[resource]) return -Errno.EPERM;
        _soft[resource] = soft;
        _hard[resource] = hard;
        return 0;
    }

    public void Save(BinaryWriter w)
    {
        for (int i = 0; i < Count; i++) { w.Write(_soft[i]); w.Write(_hard[i]); }
    }

    public void Load(BinaryReader r)
    {
        for (int i = 0; i < Count; i++)
        {
            ulong soft = r.ReadUInt64(), hard = r.ReadUInt64();
            if (soft > hard) throw new SandboxException("corrupt kernel state in the checkpoint (resource limits)");
            _soft[i] = soft;
            _hard[i] = hard;
        }
    }
}
