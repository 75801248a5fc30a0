using System.Runtime.ExceptionServices;

namespace Remus.Sandbox.Platform.Net;

/// <summary>
/// Runs code inside an existing network namespace (/run/netns/NAME, as `ip netns add` makes them): a dedicated thread
/// joins the namespace with setns(CLONE_NEWNET), runs the function and ends, so no pooled thread is ever left in
/// another namespace. File descriptors made there (a tap's /dev/net/tun, an AF_INET socket for ioctls) stay bound to
/// that namespace wherever they are used afterwards.
/// </summary>
public static class NetNamespace
{
    public const string Directory = "/run/netns";

    public static string PathOf(string name) => $"{Directory}/{name}";

    public static bool Exists(string name) => IsValidName(name) && File.Exists(PathOf(name));

    /// <summary>A name `ip netns` would accept: a plain file name.</summary>
    public static bool IsValidName(string name) =>
        name.Length is > 0 and <= 255 && name is not "." and not ".." && !name.Contains('/') && !name.Contains('\0');

    /// <summary>Runs <paramref name="action"/> in namespace <paramref name="netns"/>; null: on the calling thread, in ours.</summary>
    public static void Run(string? netns, Action action) => Run<object?>(netns, () => { action(); return null; });

    /// <summary>
    /// Runs <paramref name="func"/> in namespace <paramref name="netns"/> (null: on the calling thread, in ours) and
    /// returns its result; its exception is rethrown here. A namespace that does not exist is a
    /// <see cref="SandboxException"/> naming it.
    /// </summary>
    public static T Run<T>(string? netns, Func<T> func)
    {
        if (netns is null) return func();
        if (!IsValidName(netns)) throw new SandboxException($"bad network namespace name '{netns}'");
        int fd = Libc.open(PathOf(netns), Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (fd < 0)
        {
            int errno = Libc.Errno;
            throw errno == Libc.ENOENT
                ? new SandboxException($"network namespace {netns} does not exist (no {PathOf(netns)}; create it with 'ip netns add {netns}')")
                : new SandboxException($"network namespace {netns}: cannot open {PathOf(netns)}: {Libc.ErrnoText(errno)}");
        }
        T result = default!;
        ExceptionDispatchInfo? failure = null;
        try
        {
            var thread = new Thread(() =>
            {
                try
                {
                    if (Libc.setns(fd, Libc.CLONE_NEWNET) != 0)
                    {
                        int errno = Libc.Errno;
                        throw new SandboxException(errno == Libc.EPERM
                            ? $"entering network namespace {netns} needs CAP_SYS_ADMIN"
                            : $"entering network namespace {netns}: {Libc.ErrnoText(errno)}");
                    }
                    result = func();
                }
                catch (Exception e)
                {
                    failure = ExceptionDispatchInfo.Capture(e);
                }
            })
            { IsBackground = true, Name = $"netns {netns}" };
            thread.Start();
            thread.Join();
        }
        finally
        {
            Libc.close(fd);
        }
        failure?.Throw();
        return result;
    }
}
