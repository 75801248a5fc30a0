namespace Remus.Sandbox.Kernel.Readiness;

/// <summary>
/// Linux's readiness bits: the same values in poll's events/revents and in epoll's events (EPOLLIN == POLLIN …).
/// Every kind of open file reports its readiness with these (<see cref="Files.FileDescription.Readiness"/>).
/// </summary>
[Flags]
internal enum PollEvents : uint
{
    None = 0,
    In = 0x1,
    Pri = 0x2,
    Out = 0x4,
    Err = 0x8,
    Hup = 0x10,
    Nval = 0x20,
    RdNorm = 0x40,
    RdBand = 0x80,
    WrNorm = 0x100,
    WrBand = 0x200,
    Msg = 0x400,
    RdHup = 0x2000,

    /// <summary>What a read-ready file reports (EPOLLIN | EPOLLRDNORM).</summary>
    Readable = In | RdNorm,

    /// <summary>What a write-ready file reports (EPOLLOUT | EPOLLWRNORM).</summary>
    Writable = Out | WrNorm,

    /// <summary>Linux's DEFAULT_POLLMASK: a file without a poll operation is always ready both ways.</summary>
    Always = Readable | Writable,
}
