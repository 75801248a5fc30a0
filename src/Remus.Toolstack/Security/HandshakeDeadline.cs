using System.Globalization;
using System.Runtime.ExceptionServices;

namespace Remus.Toolstack.Security;

/// <summary>
/// Runs a channel handshake within a time limit. The handshake gets a token that is cancelled at the deadline; if it
/// has still not finished then (a transport whose reads ignore cancellation), the transport is disposed, which ends
/// any read on it. Either way the caller gets one line: "PEER: no handshake from the peer within N s". Any other
/// failure disposes the transport and is rethrown as it was.
/// </summary>
internal static class HandshakeDeadline
{
    public static T Run<T>(Stream transport, string peer, TimeSpan timeout, Func<CancellationToken, Task<T>> handshake)
    {
        using var cts = new CancellationTokenSource();
        if (timeout != Timeout.InfiniteTimeSpan) cts.CancelAfter(timeout);
        Task<T> task;
        try { task = handshake(cts.Token); }
        catch (Exception e) { task = Task.FromException<T>(e); }
        bool finished;
        try { finished = task.Wait(timeout == Timeout.InfiniteTimeSpan ? timeout : timeout + TimeSpan.FromSeconds(1)); }
        catch (AggregateException) { finished = true; }
        if (!finished)
        {
            transport.Dispose();
            try { task.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
            throw TimedOut(peer, timeout);
        }
        if (task.IsCompletedSuccessfully) return task.Result;

        transport.Dispose();
        Exception error = task.Exception?.InnerException ?? new OperationCanceledException();
        if (error is not ChannelAuthenticationException && cts.IsCancellationRequested)
            throw TimedOut(peer, timeout, error);
        ExceptionDispatchInfo.Throw(error);
        throw error; // not reached
    }

    private static ChannelAuthenticationException TimedOut(string peer, TimeSpan timeout, Exception? inner = null) =>
        new($"{peer}: no handshake from the peer within {timeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s", inner);

    /// <summary>An exception's message as one line (OpenSSL's can span several).</summary>
    public static string OneLine(Exception e)
    {
        Exception inner = e;
        while (inner.InnerException is not null) inner = inner.InnerException;
        string text = inner == e ? e.Message : $"{e.Message} ({inner.Message})";
        return string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }
}
