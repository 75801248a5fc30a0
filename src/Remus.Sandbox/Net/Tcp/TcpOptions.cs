namespace Remus.Sandbox.Net.Tcp;

/// <summary>
/// A TCP socket's options (setsockopt), shared by the socket and its connection. Buffer sizes are what getsockopt
/// reports (Linux doubles what setsockopt is given); the defaults are larger than Linux's initial ones (16 KiB send,
/// 128 KiB receive, grown by autotuning) so that one connection can fill a 1 Gbit/s path without autotuning:
/// 1 MiB each way, allocated only as data arrives.
/// </summary>
internal sealed class TcpOptions
{
    public const int DefaultSendBuffer = 1 << 20, DefaultReceiveBuffer = 1 << 20;
    public const int MinSendBuffer = 4608, MinReceiveBuffer = 2304, MaxBufferRequest = 4 << 20;

    public bool ReuseAddress, ReusePort, KeepAlive, NoDelay, Cork;
    public int SendBuffer = DefaultSendBuffer, ReceiveBuffer = DefaultReceiveBuffer;
    public bool LingerOn;
    public int LingerSeconds;
    public int KeepIdleSeconds = 7200, KeepIntervalSeconds = 75, KeepCount = 9;
    public int UserMss;        // TCP_MAXSEG, 0: none
    public byte Tos;
    public byte Ttl = 64;
    public long RecvTimeoutNs, SendTimeoutNs;   // SO_RCVTIMEO/SO_SNDTIMEO, kept for the syscall layer's getsockopt
    public int RecvLowat = 1;

    public TcpOptions Clone() => (TcpOptions)MemberwiseClone();

    public void Save(BinaryWriter w)
    {
        w.Write(ReuseAddress); w.Write(ReusePort); w.Write(KeepAlive); w.Write(NoDelay); w.Write(Cork);
        w.Write(SendBuffer); w.Write(ReceiveBuffer); w.Write(LingerOn); w.Write(LingerSeconds);
        w.Write(KeepIdleSeconds); w.Write(KeepIntervalSeconds); w.Write(KeepCount); w.Write(UserMss); w.Write(Tos); w.Write(Ttl);
        w.Write(RecvTimeoutNs); w.Write(SendTimeoutNs); w.Write(RecvLowat);
    }

    public static TcpOptions Load(BinaryReader r) => new()
    {
        ReuseAddress = r.ReadBoolean(), ReusePort = r.ReadBoolean(), KeepAlive = r.ReadBoolean(), NoDelay = r.ReadBoolean(), Cork = r.ReadBoolean(),
        SendBuffer = r.ReadInt32(), ReceiveBuffer = r.ReadInt32(), LingerOn = r.ReadBoolean(), LingerSeconds = r.ReadInt32(),
        KeepIdleSeconds = r.ReadInt32(), KeepIntervalSeconds = r.ReadInt32(), KeepCount = r.ReadInt32(), UserMss = r.ReadInt32(),
        Tos = r.ReadByte(), Ttl = r.ReadByte(), RecvTimeoutNs = r.ReadInt64(), SendTimeoutNs = r.ReadInt64(), RecvLowat = r.ReadInt32(),
    };
}
