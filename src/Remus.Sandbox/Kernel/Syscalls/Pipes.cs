using Remus.Sandbox.Kernel.Files;

namespace Remus.Sandbox.Kernel;

/// <summary>pipe, pipe2.</summary>
internal sealed partial class SandboxKernel
{
    private const int O_WRONLY = 1, O_RDWR = 2, O_NONBLOCK = 0x800, O_DIRECT = 0x4000;

    private long SysPipe2(ulong fds, int flags)
    {
        if ((flags & ~(O_CLOEXEC | O_NONBLOCK | O_DIRECT)) != 0) return -Errno.EINVAL;
        var pipe = new Pipe();
        int fl = flags & (O_NONBLOCK | O_DIRECT);
        var reader = new PipeFile(pipe, writeEnd: false, fl);
        var writer = new PipeFile(pipe, writeEnd: true, fl | O_WRONLY);
        bool cloexec = (flags & O_CLOEXEC) != 0;
        long r = Fds.Add(reader, cloexec);
        if (r < 0)
        {
            reader.Close();
            writer.Close();
            return r;
        }
        long w = Fds.Add(writer, cloexec);
        if (w < 0)
        {
            Fds.Close((int)r);
            writer.Close();
            return w;
        }
        try
        {
            Memory.WriteU32(fds, (uint)r);
            Memory.WriteU32(fds + 4, (uint)w);
        }
        catch (Platform.GuestFaultException)
        {
            // Linux installs the fds only once they are copied out: none appear.
            Fds.Close((int)r);
            Fds.Close((int)w);
            throw;
        }
        return 0;
    }
}
