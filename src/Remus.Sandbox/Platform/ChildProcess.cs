using System.IO.Pipes;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Remus.Sandbox.Platform;

/// <summary>
/// A shell command run with pipes on its stdin, stdout and stderr, started with posix_spawn rather than
/// System.Diagnostics.Process. The reason is measured: once a .NET process has used Process, the runtime handles
/// SIGCHLD, and a VMM receives one for every ptrace stop of its guest (every system call), which then costs ~15 µs
/// more. A VMM opens its migration or Remus channel with this, so its guest keeps the speed it had.
/// The child is reaped by a background thread once it exits; <see cref="Dispose"/> closes our ends of the pipes
/// and neither waits for nor kills the child (an ssh client ends once both sides closed).
/// </summary>
public sealed unsafe partial class ChildProcess : IDisposable
{
    private const string Lib = "libc";
    private const short POSIX_SPAWN_SETSIGDEF = 0x04, POSIX_SPAWN_SETSIGMASK = 0x08;
    private const int O_CLOEXEC = 0x80000;

    public int Pid { get; }

    /// <summary>The command's stdin.</summary>
    public Stream Stdin { get; }

    /// <summary>The command's stdout.</summary>
    public Stream Stdout { get; }

    /// <summary>The command's stderr.</summary>
    public Stream Stderr { get; }

    private readonly ManualResetEventSlim _exited = new();
    private int _exitStatus = -1;

    private ChildProcess(int pid, int stdin, int stdout, int stderr)
    {
        Pid = pid;
        Stdin = new AnonymousPipeClientStream(PipeDirection.Out, new SafePipeHandle(stdin, true));
        Stdout = new AnonymousPipeClientStream(PipeDirection.In, new SafePipeHandle(stdout, true));
        Stderr = new AnonymousPipeClientStream(PipeDirection.In, new SafePipeHandle(stderr, true));
        new Thread(() =>
        {
            int status = 0, rc;
            while ((rc = waitpid(pid, &status, 0)) < 0 && Marshal.GetLastPInvokeError() == 4) { }
            if (rc == pid) _exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);
            _exited.Set();
        })
        { IsBackground = true, Name = $"reap {pid}" }.Start();
    }

    /// <summary>Waits up to <paramref name="timeout"/> for the command to end; its exit status (128+n for a signal n),
    /// or null if it still runs.</summary>
    public int? WaitForExit(TimeSpan timeout) => _exited.Wait(timeout) && _exitStatus >= 0 ? _exitStatus : null;

    /// <summary>Runs <c>/bin/sh -c <paramref name="command"/></c> with the current environment.</summary>
    /// <exception cref="IOException">the command could not be started (one sentence with the reason)</exception>
    public static ChildProcess StartShell(string command) => StartShell(command, null, null);

    /// <summary>
    /// Runs <c>/bin/sh -c <paramref name="command"/></c> in <paramref name="workingDirectory"/> (null: ours) with
    /// exactly <paramref name="environment"/> (null: ours).
    /// </summary>
    /// <exception cref="IOException">the command could not be started (one sentence with the reason)</exception>
    public static ChildProcess StartShell(string command, string? workingDirectory, IReadOnlyDictionary<string, string>? environment)
    {
        int* fds = stackalloc int[6];
        for (int i = 0; i < 6; i++) fds[i] = -1;
        var strings = new List<nint>();
        void* actions = NativeMemory.AllocZeroed(256), attr = NativeMemory.AllocZeroed(512);
        byte* set = stackalloc byte[128];
        try
        {
            // in: [0] child reads, [1] we write; out: [2] we read, [3] child writes; err: [4] we read, [5] child writes
            for (int i = 0; i < 3; i++)
                if (pipe2(fds + 2 * i, O_CLOEXEC) != 0) throw Fail("pipe2");
            Check(posix_spawn_file_actions_init(actions), "posix_spawn_file_actions_init");
            Check(posix_spawn_file_actions_adddup2(actions, fds[0], 0), "adddup2");
            Check(posix_spawn_file_actions_adddup2(actions, fds[3], 1), "adddup2");
            Check(posix_spawn_file_actions_adddup2(actions, fds[5], 2), "adddup2");
            // Nothing else of ours goes to the command: a VMM holds descriptors that are deliberately inheritable
            // (the guest RAM memfd, for its vCPU stub), and ssh has no business keeping guest memory alive.
            try { Check(posix_spawn_file_actions_addclosefrom_np(actions, 3), "addclosefrom"); }
            catch (EntryPointNotFoundException) { /* glibc < 2.34: those descriptors stay open in the command */ }
            if (workingDirectory != null)
            {
                // glibc >= 2.29; the chdir happens in the child, so a bad directory fails the spawn with its errno.
                try { Check(posix_spawn_file_actions_addchdir_np(actions, workingDirectory), "addchdir"); }
                catch (EntryPointNotFoundException) { throw new IOException($"cannot run '{command}' in '{workingDirectory}': this C library cannot start a process in another directory"); }
            }
            // A clean signal state in the child, whatever the runtime set here.
            Check(posix_spawnattr_init(attr), "posix_spawnattr_init");
            Check(posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK), "posix_spawnattr_setflags");
            sigemptyset(set);
            Check(posix_spawnattr_setsigmask(attr, set), "posix_spawnattr_setsigmask");
            sigfillset(set);
            Check(posix_spawnattr_setsigdefault(attr, set), "posix_spawnattr_setsigdefault");

            nint Utf8(string s)
            {
                nint p = Marshal.StringToCoTaskMemUTF8(s);
                strings.Add(p);
                return p;
            }
            var env = environment?.Select(e => $"{e.Key}={e.Value}").ToList()
                      ?? Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>().Select(e => $"{e.Key}={e.Value}").ToList();
            nint* argv = stackalloc nint[4] { Utf8("/bin/sh"), Utf8("-c"), Utf8(command), 0 };
            var envp = new nint[env.Count + 1];
            int n = 0;
            foreach (string e in env) envp[n++] = Utf8(e);
            int pid;
            fixed (nint* ep = envp)
            {
                int err = posix_spawn(&pid, "/bin/sh", actions, attr, argv, ep);
                if (err != 0)
                    throw new IOException(workingDirectory is null
                        ? $"cannot run '{command}': {Marshal.GetPInvokeErrorMessage(err)}"
                        : $"cannot run '{command}' in '{workingDirectory}': {Marshal.GetPInvokeErrorMessage(err)}");
            }
            var child = new ChildProcess(pid, fds[1], fds[2], fds[4]);
            fds[1] = fds[2] = fds[4] = -1; // ours now
            return child;
        }
        finally
        {
            for (int i = 0; i < 6; i++)
                if (fds[i] >= 0) close(fds[i]);
            posix_spawn_file_actions_destroy(actions);
            posix_spawnattr_destroy(attr);
            NativeMemory.Free(actions);
            NativeMemory.Free(attr);
            foreach (nint p in strings) Marshal.FreeCoTaskMem(p);
        }
    }

    private static IOException Fail(string what) =>
        new($"cannot start a process ({what}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())})");

    private static void Check(int err, string what)
    {
        if (err != 0) throw new IOException($"cannot start a process ({what}: {Marshal.GetPInvokeErrorMessage(err)})");
    }

    /// <summary>
    /// Closes stdin now, and stdout and stderr on a thread of their own: a pipe stream's Dispose waits for a read in
    /// progress on another thread (measured: until the command writes or exits), and their readers are such threads.
    /// </summary>
    public void Dispose()
    {
        try { Stdin.Dispose(); } catch (IOException) { }
        new Thread(() =>
        {
            foreach (var s in new[] { Stdout, Stderr })
                try { s.Dispose(); } catch (IOException) { }
        }) { IsBackground = true, Name = $"close pipes of {Pid}" }.Start();
    }

    [LibraryImport(Lib, SetLastError = true)]
    private static partial int pipe2(int* fds, int flags);

    [LibraryImport(Lib, SetLastError = true)]
    private static partial int close(int fd);

    [LibraryImport(Lib, SetLastError = true)]
    private static partial int waitpid(int pid, int* status, int options);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int posix_spawn(int* pid, string path, void* fileActions, void* attr, nint* argv, nint* envp);

    [LibraryImport(Lib)]
    private static partial int posix_spawn_file_actions_init(void* actions);

    [LibraryImport(Lib)]
    private static partial int posix_spawn_file_actions_adddup2(void* actions, int fd, int newfd);

    [LibraryImport(Lib)]
    private static partial int posix_spawn_file_actions_addclosefrom_np(void* actions, int from);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int posix_spawn_file_actions_addchdir_np(void* actions, string path);

    [LibraryImport(Lib)]
    private static partial int posix_spawn_file_actions_destroy(void* actions);

    [LibraryImport(Lib)]
    private static partial int posix_spawnattr_init(void* attr);

    [LibraryImport(Lib)]
    private static partial int posix_spawnattr_setflags(void* attr, short flags);

    [LibraryImport(Lib)]
    private static partial int posix_spawnattr_setsigmask(void* attr, void* set);

    [LibraryImport(Lib)]
    private static partial int posix_spawnattr_setsigdefault(void* attr, void* set);

    [LibraryImport(Lib)]
    private static partial int posix_spawnattr_destroy(void* attr);

    [LibraryImport(Lib)]
    private static partial int sigemptyset(void* set);

    [LibraryImport(Lib)]
    private static partial int sigfillset(void* set);
}
