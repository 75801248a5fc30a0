using Remus.Sandbox;
using Remus.Toolstack;
using Remus.Toolstack.Console;

namespace Remus.Cli;

/// <summary>How every command reports failure: one line "remus: message" on stderr and a non-zero status.</summary>
internal static class Cli
{
    public const int FailureStatus = 1;
    public const int UsageStatus = 2;
    public const int InternalErrorStatus = 70;
    public const int BrokenPipeStatus = 128 + 13;

    /// <summary>Runs a command's body, turning user errors into one line and a status (never a stack trace).</summary>
    public static int Guard(Func<int> body, int failureStatus = FailureStatus)
    {
        try
        {
            return body();
        }
        catch (RemusException e)
        {
            return Fail(e.Message, failureStatus);
        }
        catch (SandboxException e)
        {
            return Fail(e.Message, failureStatus);
        }
        catch (OutputClosedException)
        {
            return BrokenPipeStatus; // as a program killed by SIGPIPE: quietly
        }
        catch (Exception e)
        {
            if (Environment.GetEnvironmentVariable("REMUS_DEBUG") is { Length: > 0 }) StdStreams.Error.WriteLine(e);
            return Fail($"internal error: {e.GetType().Name}: {e.Message} (set REMUS_DEBUG=1 for details)", InternalErrorStatus);
        }
    }

    public static int Fail(string message, int status)
    {
        try
        {
            StdStreams.Error.WriteLine($"remus: {message}");
        }
        catch (IOException)
        {
            // No stderr to complain to.
        }
        return status;
    }

    public static DomainManager Manager() => DomainManager.FromEnvironment();
}
