using System.Buffers.Binary;

namespace Remus.Sandbox.Net.Tcp;

/// <summary>setsockopt/getsockopt for SOL_SOCKET, IPPROTO_IP and IPPROTO_TCP (Linux numbering and semantics).</summary>
internal sealed partial class TcpSocket
{
    public const int SolSocket = 1, IpProtoIp = 0, IpProtoTcp = 6;
    public const int SoReuseAddr = 2, SoType = 3, SoErrorOption = 4, SoDontRoute = 5, SoBroadcast = 6, SoSndBuf = 7, SoRcvBuf = 8,
        SoKeepAlive = 9, SoOobInline = 10, SoPriority = 12, SoLinger = 13, SoReusePort = 15, SoRcvLowat = 18, SoSndLowat = 19,
        SoRcvTimeo = 20, SoSndTimeo = 21, SoAcceptConn = 30, SoSndBufForce = 32, SoRcvBufForce = 33, SoProtocol = 38, SoDomain = 39;
    public const int TcpNoDelay = 1, TcpMaxSeg = 2, TcpCork = 3, TcpKeepIdle = 4, TcpKeepIntvl = 5, TcpKeepCnt = 6,
        TcpSynCnt = 7, TcpLinger2 = 8, TcpDeferAccept = 9, TcpWindowClamp = 10, TcpInfo = 11, TcpQuickAck = 12,
        TcpCongestion = 13, TcpUserTimeout = 18, TcpNotSentLowat = 25;
    public const int IpTos = 1, IpTtl = 2;

    public long SetOption(int level, int name, ReadOnlySpan<byte> value)
    {
        Touch();
        if (level == SolSocket && name is SoLinger)
        {
            if (value.Length < 8) return -TcpErrno.EINVAL;
            Options.LingerOn = BinaryPrimitives.ReadInt32LittleEndian(value) != 0;
            Options.LingerSeconds = Math.Max(0, BinaryPrimitives.ReadInt32LittleEndian(value[4..]));
            return 0;
        }
        if (level == SolSocket && name is SoRcvTimeo or SoSndTimeo)
        {
            if (value.Length < 16) return -TcpErrno.EINVAL;
            long ns = BinaryPrimitives.ReadInt64LittleEndian(value) * 1_000_000_000L + BinaryPrimitives.ReadInt64LittleEndian(value[8..]) * 1000;
            if (name == SoRcvTimeo) Options.RecvTimeoutNs = ns; else Options.SendTimeoutNs = ns;
            return 0;
        }
        if (name == TcpCongestion && level == IpProtoTcp) return 0; // one algorithm (NewReno); accept any name
        if (value.Length < 4 && !(level == IpProtoIp && value.Length >= 1)) return -TcpErrno.EINVAL;
        int v = value.Length >= 4 ? BinaryPrimitives.ReadInt32LittleEndian(value) : value[0];
        switch (level)
        {
            case SolSocket:
                switch (name)
                {
                    case SoReuseAddr: Options.ReuseAddress = v != 0; if (Binding != null) Binding.ReuseAddress = v != 0; return 0;
                    case SoReusePort: Options.ReusePort = v != 0; if (Binding != null) Binding.ReusePort = v != 0; return 0;
                    case SoKeepAlive:
                        Options.KeepAlive = v != 0;
                        if (Tcb != null) { Tcb.ArmKeepalive(); layer.AfterChange(Tcb); }
                        return 0;
                    case SoSndBuf:
                    case SoSndBufForce:
                        Options.SendBuffer = Math.Max(TcpOptions.MinSendBuffer, 2 * Math.Clamp(v, 0, TcpOptions.MaxBufferRequest));
                        if (Tcb != null) Tcb.Snd.Capacity = Math.Max(Options.SendBuffer, Tcb.Snd.Count);
                        return 0;
                    case SoRcvBuf:
                    case SoRcvBufForce:
                        Options.ReceiveBuffer = Math.Max(TcpOptions.MinReceiveBuffer, 2 * Math.Clamp(v, 0, TcpOptions.MaxBufferRequest));
                        if (Tcb != null) Tcb.Rcv.Capacity = Math.Max(Options.ReceiveBuffer, Tcb.Rcv.Readable);
                        return 0;
                    case SoRcvLowat: Options.RecvLowat = Math.Max(1, v); return 0;
                    case SoDontRoute: case SoBroadcast: case SoOobInline: case SoPriority: case SoSndLowat: return 0;
                    case SoType: case SoErrorOption: case SoAcceptConn: case SoProtocol: case SoDomain: return -TcpErrno.ENOPROTOOPT;
                }
                return -TcpErrno.ENOPROTOOPT;
            case IpProtoTcp:
                switch (name)
                {
                    case TcpNoDelay:
                        Options.NoDelay = v != 0;
                        if (Tcb != null && v != 0) { Tcb.Output(); layer.AfterChange(Tcb); }
                        return 0;
                    case TcpCork:
                        Options.Cork = v != 0;
                        if (Tcb != null && v == 0) { Tcb.Output(); layer.AfterChange(Tcb); }
                        return 0;
                    case TcpMaxSeg:
                        if (v != 0 && (v < 88 || v > 32767)) return -TcpErrno.EINVAL;
                        Options.UserMss = v;
                        Tcb?.UpdateSendMss();
                        return 0;
                    case TcpKeepIdle:
                    case TcpKeepIntvl:
                        if (v < 1 || v > 32767) return -TcpErrno.EINVAL;
                        if (name == TcpKeepIdle) Options.KeepIdleSeconds = v; else Options.KeepIntervalSeconds = v;
                        if (Tcb != null && Options.KeepAlive) { Tcb.ArmKeepalive(); layer.AfterChange(Tcb); }
                        return 0;
                    case TcpKeepCnt:
                        if (v < 1 || v > 127) return -TcpErrno.EINVAL;
                        Options.KeepCount = v;
                        return 0;
                    case TcpSynCnt: case TcpLinger2: case TcpDeferAccept: case TcpWindowClamp: case TcpQuickAck:
                    case TcpUserTimeout: case TcpNotSentLowat:
                        return 0;
                }
                return -TcpErrno.ENOPROTOOPT;
            case IpProtoIp:
                switch (name)
                {
                    case IpTos: Options.Tos = (byte)(v & 0xFC); return 0;
                    case IpTtl:
                        if (v == -1) v = 64;
                        if (v is < 1 or > 255) return -TcpErrno.EINVAL;
                        Options.Ttl = (byte)v;
                        return 0;
                }
                return -TcpErrno.ENOPROTOOPT;
        }
        return -TcpErrno.ENOPROTOOPT;
    }

    public long GetOption(int level, int name, Span<byte> value)
    {
        if (level == SolSocket && name == SoLinger) return Write2(value, Options.LingerOn ? 1 : 0, Options.LingerSeconds);
        if (level == SolSocket && name is SoRcvTimeo or SoSndTimeo)
        {
            long ns = name == SoRcvTimeo ? Options.RecvTimeoutNs : Options.SendTimeoutNs;
            if (value.Length < 16) return -TcpErrno.EINVAL;
            BinaryPrimitives.WriteInt64LittleEndian(value, ns / 1_000_000_000);
            BinaryPrimitives.WriteInt64LittleEndian(value[8..], ns % 1_000_000_000 / 1000);
            return 16;
        }
        if (level == IpProtoTcp && name == TcpInfo) return WriteInfo(value);
        if (level == IpProtoTcp && name == TcpCongestion)
        {
            ReadOnlySpan<byte> reno = "reno"u8;
            int n = Math.Min(value.Length, 16);
            value[..n].Clear();
            reno[..Math.Min(reno.Length, n)].CopyTo(value);
            return n;
        }
        int? v = (level, name) switch
        {
            (SolSocket, SoReuseAddr) => Options.ReuseAddress ? 1 : 0,
            (SolSocket, SoReusePort) => Options.ReusePort ? 1 : 0,
            (SolSocket, SoKeepAlive) => Options.KeepAlive ? 1 : 0,
            (SolSocket, SoType) => 1,
            (SolSocket, SoProtocol) => 6,
            (SolSocket, SoDomain) => 2,
            (SolSocket, SoAcceptConn) => IsListening ? 1 : 0,
            (SolSocket, SoErrorOption) => TakeError(),
            (SolSocket, SoSndBuf or SoSndBufForce) => Options.SendBuffer,
            (SolSocket, SoRcvBuf or SoRcvBufForce) => Options.ReceiveBuffer,
            (SolSocket, SoRcvLowat) => Options.RecvLowat,
            (SolSocket, SoSndLowat) => 1,
            (SolSocket, SoBroadcast or SoDontRoute or SoOobInline or SoPriority) => 0,
            (IpProtoTcp, TcpNoDelay) => Options.NoDelay ? 1 : 0,
            (IpProtoTcp, TcpCork) => Options.Cork ? 1 : 0,
            (IpProtoTcp, TcpMaxSeg) => Tcb is { Synchronized: true } t ? t.SendMss : (Options.UserMss > 0 ? Options.UserMss : 536),
            (IpProtoTcp, TcpKeepIdle) => Options.KeepIdleSeconds,
            (IpProtoTcp, TcpKeepIntvl) => Options.KeepIntervalSeconds,
            (IpProtoTcp, TcpKeepCnt) => Options.KeepCount,
            (IpProtoTcp, TcpSynCnt) => TcpControlBlock.SynRetries,
            (IpProtoTcp, TcpLinger2) => 60,
            (IpProtoTcp, TcpDeferAccept or TcpWindowClamp or TcpQuickAck or TcpUserTimeout) => 0,
            (IpProtoIp, IpTos) => Options.Tos,
            (IpProtoIp, IpTtl) => Options.Ttl,
            _ => null,
        };
        if (v is not int iv) return -TcpErrno.ENOPROTOOPT;
        if (value.Length >= 4)
        {
            BinaryPrimitives.WriteInt32LittleEndian(value, iv);
            return 4;
        }
        if (value.Length == 0) return -TcpErrno.EINVAL;
        value[0] = (byte)iv;
        return 1;
    }

    private static void U32(Span<byte> info, int off, long x) =>
        BinaryPrimitives.WriteUInt32LittleEndian(info[off..], (uint)Math.Clamp(x, 0, uint.MaxValue));

    private static long Write2(Span<byte> value, int a, int b)
    {
        if (value.Length < 8) return -TcpErrno.EINVAL;
        BinaryPrimitives.WriteInt32LittleEndian(value, a);
        BinaryPrimitives.WriteInt32LittleEndian(value[4..], b);
        return 8;
    }

    /// <summary>struct tcp_info (Linux's layout; the fields kept here, the rest 0), as much as fits.</summary>
    private long WriteInfo(Span<byte> value)
    {
        const int size = 232;
        Span<byte> info = stackalloc byte[size];
        info.Clear();
        var t = Tcb;
        info[0] = (byte)(IsListening ? TcpState.Listen : t?.State ?? TcpState.Closed);
        if (t != null)
        {
            info[1] = (byte)(t.Cc.InRecovery ? 3 : 0);
            info[2] = (byte)Math.Min(t.Retransmits, 255);
            info[3] = (byte)Math.Min(t.KeepProbes, 255);
            info[5] = (byte)((t.Timestamps ? 1 : 0) | (t.SackOk ? 2 : 0) | (t.SndScale > 0 || t.RcvScale > 0 ? 4 : 0));
            info[6] = (byte)((t.SndScale & 0xF) | ((t.RcvScale & 0xF) << 4));
            U32(info, 8, t.Rtt.RtoNs / 1000);
            U32(info, 12, TcpControlBlock.DelayedAckNs / 1000);
            U32(info, 16, t.SendMss);
            U32(info, 20, t.PeerMss);
            U32(info, 24, (t.SndMax - t.SndUna + (long)t.SendMss - 1) / Math.Max(t.SendMss, 1));
            U32(info, 60, layer.Ip.MtuFor(t.Remote.Address));
            U32(info, 68, t.Rtt.SrttNs / 1000);
            U32(info, 72, t.Rtt.RttvarNs / 1000);
            U32(info, 76, Math.Min(t.Cc.Ssthresh / Math.Max(t.SendMss, 1), int.MaxValue));
            U32(info, 80, t.Cc.Cwnd / Math.Max(t.SendMss, 1));
            U32(info, 84, t.OwnMss());
            U32(info, 88, 3);
            U32(info, 100, t.TotalRetransmits);
        }
        int n = Math.Min(value.Length, size);
        info[..n].CopyTo(value);
        return n;
    }
}
