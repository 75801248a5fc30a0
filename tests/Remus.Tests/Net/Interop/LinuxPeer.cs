using System.Diagnostics;

namespace Remus.Tests.Net.Interop;

/// <summary>
/// Real Linux sockets inside a test namespace: tests/guests/net-interop/peer.c run with `ip netns exec`, driven one
/// command line at a time (its header lists the commands). <see cref="Do"/> returns the reply's words after "ok" and
/// throws on "err"; <see cref="Try"/> returns the whole reply. Several peers may run in one namespace at once (a
/// blocking command of one does not hold up another).
/// </summary>
public sealed class LinuxPeer : IDisposable
{
    private readonly Process process;
    private readonly string where;

    /// <param name="process">peer.c started with its three streams redirected (inside a namespace)</param>
    /// <param name="where">the namespace, for messages</param>
    public LinuxPeer(Process process, string where)
    {
        this.process = process;
        this.where = where;
    }

    /// <summary>A hang guard for one command, never a timing (the tests scale it in slow labs).</summary>
    public static TimeSpan DefaultTimeout { get; set; } = TimeSpan.FromMinutes(3);

    /// <summary>Sends one command and waits for its reply line ("ok ..." or "err ...").</summary>
    public string Try(string command, TimeSpan? timeout = null)
    {
        process.StandardInput.WriteLine(command);
        process.StandardInput.Flush();
        return ReadReply(command, timeout);
    }

    /// <summary>Sends one command without waiting; <see cref="ReadReply"/> takes its answer later.</summary>
    public void Post(string command)
    {
        process.StandardInput.WriteLine(command);
        process.StandardInput.Flush();
    }

    /// <summary>The next reply line.</summary>
    public string ReadReply(string what, TimeSpan? timeout = null)
    {
        var t = process.StandardOutput.ReadLineAsync();
        if (!t.Wait(timeout ?? DefaultTimeout))
            throw new TimeoutException($"peer in {where}: no reply to '{what}' (a hang guard, not a timing)");
        return t.Result ?? throw new InvalidOperationException($"peer in {where} exited during '{what}': {StderrSoFar()}");
    }

    /// <summary>The reply's words after "ok"; throws with the reply when it is an error.</summary>
    public string[] Do(string command, TimeSpan? timeout = null) => Ok(command, Try(command, timeout));

    /// <summary>The words after "ok" of a reply taken with <see cref="ReadReply"/>.</summary>
    public static string[] Ok(string command, string reply)
    {
        var words = reply.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (words is not ["ok", ..]) throw new InvalidOperationException($"peer: '{command}' -> {reply}");
        return words[1..];
    }

    private string StderrSoFar()
    {
        var t = process.StandardError.ReadToEndAsync();
        return t.Wait(TimeSpan.FromSeconds(2)) ? t.Result : "";
    }

    /// <summary>Ends the peer (closing its stdin; killed by pid if it lingers), which closes every socket it holds.</summary>
    public void Dispose()
    {
        try
        {
            process.StandardInput.Close();
            if (!process.WaitForExit(TimeSpan.FromSeconds(5))) process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException) { }
        catch (IOException) { }
    }
}
