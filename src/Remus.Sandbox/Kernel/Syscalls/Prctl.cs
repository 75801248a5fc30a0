using System.Text;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// prctl (kernel/sys.c) for what runtimes use: PR_SET_NAME/PR_GET_NAME (Rust names its threads), PR_SET_DUMPABLE/
/// PR_GET_DUMPABLE, PR_SET_NO_NEW_PRIVS/PR_GET_NO_NEW_PRIVS (one way), PR_SET_PDEATHSIG/PR_GET_PDEATHSIG,
/// PR_GET_TIMERSLACK/PR_SET_TIMERSLACK; any other option is EINVAL, as Linux answers options it does not know. The
/// values are the program's state and travel in checkpoints (<see cref="SaveProcessAttributes"/>). One name for the
/// process today; per-thread names come with threads.
/// </summary>
internal sealed partial class SandboxKernel
{
    private const int PR_SET_PDEATHSIG = 1, PR_GET_PDEATHSIG = 2, PR_GET_DUMPABLE = 3, PR_SET_DUMPABLE = 4,
        PR_SET_NAME = 15, PR_GET_NAME = 16, PR_SET_TIMERSLACK = 29, PR_GET_TIMERSLACK = 30,
        PR_SET_NO_NEW_PRIVS = 38, PR_GET_NO_NEW_PRIVS = 39;
    private const int TaskCommLen = 16;
    private const long DefaultTimerSlackNs = 50_000;

    private byte[]? _comm;
    private int _dumpable = 1, _pdeathSignal;
    private bool _noNewPrivs;
    private long _timerSlackNs = DefaultTimerSlackNs;

    /// <summary>The task's name (comm): at start the program file's base name, at most 15 bytes, as exec sets it.</summary>
    private byte[] Comm => _comm ??= InitialComm(Spec.ProgramPath);

    private static byte[] InitialComm(string programPath)
    {
        var name = Encoding.UTF8.GetBytes(Path.GetFileName(programPath));
        return name.Length < TaskCommLen ? name : name[..(TaskCommLen - 1)];
    }

    private long SysPrctl(int option, ulong a2, ulong a3, ulong a4, ulong a5)
    {
        switch (option)
        {
            case PR_SET_NAME:
            {
                // strncpy_from_user of at most 15 bytes, then NUL: a longer name is cut.
                ulong readable = Memory.Accessible(a2, TaskCommLen - 1, write: false);
                if (readable == 0) return -Errno.EFAULT;
                Span<byte> b = stackalloc byte[(int)readable];
                Memory.Read(a2, b);
                int nul = b.IndexOf((byte)0);
                if (nul < 0 && readable < TaskCommLen - 1) return -Errno.EFAULT; // ran into an unreadable page first
                _comm = (nul >= 0 ? b[..nul] : b).ToArray();
                return 0;
            }
            case PR_GET_NAME:
            {
                Span<byte> b = stackalloc byte[TaskCommLen];
                b.Clear();
                Comm.CopyTo(b);
                Memory.Write(a2, b);
                return 0;
            }
            case PR_GET_DUMPABLE:
                return _dumpable;
            case PR_SET_DUMPABLE:
                if (a2 > 1) return -Errno.EINVAL; // SUID_DUMP_ROOT (2) is not allowed here either
                _dumpable = (int)a2;
                return 0;
            case PR_SET_NO_NEW_PRIVS:
                if (a2 != 1 || a3 != 0 || a4 != 0 || a5 != 0) return -Errno.EINVAL;
                _noNewPrivs = true;
                return 0;
            case PR_GET_NO_NEW_PRIVS:
                if (a2 != 0 || a3 != 0 || a4 != 0 || a5 != 0) return -Errno.EINVAL;
                return _noNewPrivs ? 1 : 0;
            case PR_SET_PDEATHSIG:
                if (a2 > 64) return -Errno.EINVAL;
                _pdeathSignal = (int)a2;
                return 0;
            case PR_GET_PDEATHSIG:
                Memory.WriteU32(a2, (uint)_pdeathSignal);
                return 0;
            case PR_SET_TIMERSLACK:
                _timerSlackNs = a2 == 0 ? DefaultTimerSlackNs : (long)Math.Min(a2, long.MaxValue);
                return 0;
            case PR_GET_TIMERSLACK:
                return _timerSlackNs;
            default:
                return -Errno.EINVAL;
        }
    }

    /// <summary>The prctl attributes, for the checkpoint (a tagged trailing section of KERNEL_STATE).</summary>
    private void SaveProcessAttributes(BinaryWriter w)
    {
        w.Write(Comm.Length);
        w.Write(Comm);
        w.Write(_dumpable);
        w.Write(_noNewPrivs);
        w.Write(_pdeathSignal);
        w.Write(_timerSlackNs);
    }

    private void LoadProcessAttributes(BinaryReader r)
    {
        int n = r.ReadInt32();
        if (n is < 0 or >= TaskCommLen) throw new SandboxException("corrupt kernel state in the checkpoint (task name)");
        _comm = r.ReadBytes(n);
        _dumpable = r.ReadInt32();
        _noNewPrivs = r.ReadBoolean();
        _pdeathSignal = r.ReadInt32();
        _timerSlackNs = r.ReadInt64();
    }
}
