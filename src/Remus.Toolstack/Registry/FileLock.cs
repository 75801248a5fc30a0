using Remus.Sandbox.Platform;

namespace Remus.Toolstack.Registry;

/// <summary>An exclusive flock(2) on a file, released on dispose (or when the process dies).</summary>
public sealed class FileLock : IDisposable
{
    private int _fd;

    private FileLock(int fd) => _fd = fd;

    public static FileLock Acquire(string path, TimeSpan timeout)
    {
        // A raw descriptor: .NET's own FileStream/OpenHandle takes a non-blocking shared flock on open, which would
        // make every other opener fail while we hold the exclusive lock.
        var fd = HostOs.open(path, HostOs.O_RDWR | HostOs.O_CREAT | HostOs.O_CLOEXEC, 0b110_000_000); // 0600: another user could hold a lock it can open
        if (fd < 0) throw new RemusException($"cannot open the lock file '{path}': {HostOs.ErrorText(HostOs.LastError)}");
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (true)
        {
            if (HostOs.flock(fd, HostOs.LOCK_EX | HostOs.LOCK_NB) == 0) return new FileLock(fd);
            var errno = HostOs.LastError;
            if (errno != HostOs.EWOULDBLOCK && errno != HostOs.EINTR)
            {
                HostOs.close(fd);
                throw new RemusException($"cannot lock '{path}': {HostOs.ErrorText(errno)}");
            }
            if (Environment.TickCount64 > deadline)
            {
                HostOs.close(fd);
                throw new RemusException($"timed out waiting for the lock '{path}' (another remus command holds it)");
            }
            Thread.Sleep(5);
        }
    }

    /// <summary>Closing the only descriptor releases the lock.</summary>
    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) HostOs.close(fd);
    }
}
