using Remus.Sandbox.Kernel.Readiness;

namespace Remus.Sandbox.Net.Sockets;

/// <summary>
/// What the syscall layer holds for an AF_INET socket: the transport's socket, each call bracketed as a call into the
/// stack, so datagrams it sent to the loopback are delivered when it returns (never inside the transport's own Send).
/// </summary>
internal sealed class StackSocket(NetStack stack, IInetSocket inner) : IInetSocket
{
    public IInetSocket Inner { get; } = inner;

    public int Id => Inner.Id;
    public int Type => Inner.Type;
    public WaitQueue Queue => Inner.Queue;
    public PollEvents Readiness() => Inner.Readiness();
    public long NextEventNs => Inner.NextEventNs;
    public NetEndpoint LocalEndpoint => Inner.LocalEndpoint;
    public NetEndpoint? RemoteEndpoint => Inner.RemoteEndpoint;
    public int ReadableBytes => Inner.ReadableBytes;
    public int UnsentBytes => Inner.UnsentBytes;

    public long Bind(NetEndpoint local)
    {
        stack.Enter();
        try { return Inner.Bind(local); }
        finally { stack.Exit(); }
    }

    public long Listen(int backlog)
    {
        stack.Enter();
        try { return Inner.Listen(backlog); }
        finally { stack.Exit(); }
    }

    public long Connect(NetEndpoint remote, bool disconnect = false)
    {
        stack.Enter();
        try { return Inner.Connect(remote, disconnect); }
        finally { stack.Exit(); }
    }

    public long Accept(out IInetSocket? accepted)
    {
        stack.Enter();
        try
        {
            long r = Inner.Accept(out var a);
            accepted = a is null ? null : stack.Wrap(a);
            return r;
        }
        finally { stack.Exit(); }
    }

    public long Send(ReadOnlySpan<byte> data, int flags, NetEndpoint? to)
    {
        stack.Enter();
        try { return Inner.Send(data, flags, to); }
        finally { stack.Exit(); }
    }

    public long Receive(Span<byte> buffer, int flags, out NetEndpoint from, out int fullLength)
    {
        stack.Enter();
        try { return Inner.Receive(buffer, flags, out from, out fullLength); }
        finally { stack.Exit(); }
    }

    public long Shutdown(int how)
    {
        stack.Enter();
        try { return Inner.Shutdown(how); }
        finally { stack.Exit(); }
    }

    public void Close()
    {
        stack.Enter();
        try
        {
            Inner.Close();
            stack.Forget(this);
        }
        finally { stack.Exit(); }
    }

    public long SetOption(int level, int name, ReadOnlySpan<byte> value)
    {
        stack.Enter();
        try { return Inner.SetOption(level, name, value); }
        finally { stack.Exit(); }
    }

    public long GetOption(int level, int name, Span<byte> value)
    {
        stack.Enter();
        try { return Inner.GetOption(level, name, value); }
        finally { stack.Exit(); }
    }

    public int TakeError() => Inner.TakeError();
}
