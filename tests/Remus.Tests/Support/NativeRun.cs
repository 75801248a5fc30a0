namespace Remus.Tests.Support;

/// <summary>
/// Runs a guest program natively on the host exactly as a domain would start it: the same path string as
/// argv[0], the same argv, ONLY the --env variables (in order; nothing inherited), the same stdin bytes.
/// (--file and --memory do not apply natively.)
/// </summary>
public static class NativeRun
{
    public static TimeSpan DefaultTimeout { get; } = TimeSpan.FromSeconds(30);

    public static RunResult Run(GuestInvocation guest, TimeSpan? timeout = null) =>
        ProcessRunner.Run(guest.Program, guest.Args, guest.Stdin, timeout ?? DefaultTimeout, exactEnvironment: guest.Env);
}
