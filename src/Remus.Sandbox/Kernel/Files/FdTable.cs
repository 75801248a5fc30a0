using Remus.Sandbox.Kernel.Locks;

namespace Remus.Sandbox.Kernel.Files;

/// <summary>The program's file descriptor table: small integers to shared open files, with the close-on-exec bit.</summary>
internal sealed class FdTable
{
    public const int MaxFds = 1024;

    /// <summary>New fds are below this (RLIMIT_NOFILE), at most <see cref="MaxFds"/>.</summary>
    public int Limit { get; set; } = MaxFds;

    private readonly Dictionary<int, (FileDescription File, bool CloseOnExec)> _fds = [];

    /// <summary>
    /// The record locks and flocks of the process (the fd table is the owner of POSIX locks, as Linux's files_struct):
    /// closing any descriptor drops the process's POSIX locks on its file.
    /// </summary>
    public LockTable Locks { get; } = new();

    public FileDescription? Get(int fd) => _fds.TryGetValue(fd, out var e) ? e.File : null;

    public IEnumerable<(int Fd, FileDescription File, bool CloseOnExec)> All =>
        _fds.OrderBy(kv => kv.Key).Select(kv => (kv.Key, kv.Value.File, kv.Value.CloseOnExec));

    /// <summary>Installs <paramref name="file"/> at the lowest free fd at or above <paramref name="min"/>.</summary>
    public long Add(FileDescription file, bool closeOnExec, int min = 0)
    {
        for (int fd = min; fd < Limit; fd++)
        {
            if (_fds.ContainsKey(fd)) continue;
            _fds[fd] = (file, closeOnExec);
            return fd;
        }
        return -Errno.EMFILE;
    }

    /// <summary>Puts <paramref name="file"/> at exactly <paramref name="fd"/>, closing what was there.</summary>
    public void Set(int fd, FileDescription file, bool closeOnExec)
    {
        var old = Get(fd);
        _fds[fd] = (file, closeOnExec);
        if (old == null) return;
        Locks.ClosedFd(old); // dup2 over an open fd closes it, even one of the same description
        if (old != file) ReleaseIfUnused(old);
    }

    public bool GetCloseOnExec(int fd) => _fds.TryGetValue(fd, out var e) && e.CloseOnExec;

    public void SetCloseOnExec(int fd, bool value)
    {
        if (_fds.TryGetValue(fd, out var e)) _fds[fd] = (e.File, value);
    }

    public long Close(int fd)
    {
        if (!_fds.Remove(fd, out var e)) return -Errno.EBADF;
        Locks.ClosedFd(e.File);
        ReleaseIfUnused(e.File);
        return 0;
    }

    /// <summary>Whether any descriptor refers to <paramref name="file"/>.</summary>
    public bool Refers(FileDescription file)
    {
        foreach (var v in _fds.Values) if (v.File == file) return true;
        return false;
    }

    private void ReleaseIfUnused(FileDescription file)
    {
        foreach (var v in _fds.Values) if (v.File == file) return;
        file.Close();
    }

    public void CloseAll()
    {
        foreach (var fd in _fds.Keys.ToList()) Close(fd);
    }
}
