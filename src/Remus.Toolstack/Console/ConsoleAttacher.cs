using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Remus.Toolstack.Control;

namespace Remus.Toolstack.Console;

/// <summary>How a <c>remus console</c> session ended.</summary>
public sealed record ConsoleOutcome
{
    /// <summary>The program's exit status, when it exited while attached.</summary>
    public int? ExitStatus { get; init; }

    /// <summary>The user detached (Ctrl-] or Ctrl-C); the domain goes on.</summary>
    public bool Detached { get; init; }
}

/// <summary>
/// The client end of a console: shows the recent output, then what the program writes (stdout to our stdout, stderr
/// to our stderr), and sends our stdin to the program, until the program exits or the user presses Ctrl-] (or
/// Ctrl-C). Our end of input does not end the program's input: the domain's console outlives its clients.
/// </summary>
internal static class ConsoleAttacher
{
    public static ConsoleOutcome Attach(ControlClient client, string domain)
    {
        var response = client.Call(new ControlRequest { Op = ControlOps.Console, Replay = true }, TimeSpan.FromSeconds(10));
        if (!response.Ok) throw new RemusException(response.Error ?? "console refused");

        using var terminal = TerminalMode.DetachKeyEndsLine(0);
        using var stopInput = new CancellationTokenSource();
        var detached = 0;
        void Detach()
        {
            if (Interlocked.Exchange(ref detached, 1) == 0)
                try { client.Socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { }
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
        {
            context.Cancel = true;
            Detach();
        });
        var input = new Thread(() => ForwardInput(client, Detach, stopInput.Token)) { IsBackground = true, Name = "console input" };
        input.Start();
        try
        {
            var header = new byte[ControlProtocol.FrameHeaderBytes];
            var body = new byte[64 * 1024];
            while (true)
            {
                if (!ReadExactly(client.Input, header)) break;
                var kind = (ConsoleFrameKind)header[0];
                var length = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(1));
                if (length < 0 || length > 64 << 20) throw new RemusException("corrupt console stream from the VMM");
                if (length > body.Length) body = new byte[length];
                if (!ReadExactly(client.Input, body.AsSpan(0, length))) break;
                switch (kind)
                {
                    case ConsoleFrameKind.Stdout: FdIo.WriteAll(1, body.AsSpan(0, length)); break;
                    case ConsoleFrameKind.Stderr: FdIo.WriteAll(2, body.AsSpan(0, length)); break;
                    case ConsoleFrameKind.Exit: return new ConsoleOutcome { ExitStatus = BinaryPrimitives.ReadInt32LittleEndian(body) };
                }
            }
        }
        catch (IOException) when (Volatile.Read(ref detached) != 0)
        {
        }
        catch (ObjectDisposedException) when (Volatile.Read(ref detached) != 0)
        {
        }
        finally
        {
            stopInput.Cancel();
        }
        if (Volatile.Read(ref detached) != 0) return new ConsoleOutcome { Detached = true };
        throw new VmmGoneException($"lost the connection to domain '{domain}'");
    }

    private static void ForwardInput(ControlClient client, Action detach, CancellationToken stop)
    {
        using var stdin = new CancellableFdReader(0);
        var buffer = new byte[4096];
        try
        {
            while (true)
            {
                var n = stdin.Read(buffer, stop);
                if (n == 0)
                {
                    client.Socket.Shutdown(SocketShutdown.Send); // no more input from us; keep showing output
                    return;
                }
                var data = buffer.AsSpan(0, n);
                var key = data.IndexOf(TerminalMode.DetachKey);
                if (key >= 0)
                {
                    if (key > 0) client.Output.Write(data[..key]);
                    detach();
                    return;
                }
                client.Output.Write(data);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }

    private static bool ReadExactly(Stream stream, Span<byte> buffer)
    {
        var done = 0;
        while (done < buffer.Length)
        {
            var n = stream.Read(buffer[done..]);
            if (n == 0) return false;
            done += n;
        }
        return true;
    }
}
