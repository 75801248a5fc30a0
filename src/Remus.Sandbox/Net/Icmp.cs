using System.Buffers;
using System.Buffers.Binary;
using Remus.Sandbox.Net.Ipv4;

namespace Remus.Sandbox.Net;

/// <summary>
/// ICMP (RFC 792) for the stack: answers echo requests (not those sent to a broadcast address, as Linux's
/// icmp_echo_ignore_broadcasts), hands received errors (destination unreachable, fragmentation needed, time exceeded,
/// parameter problem) to the transport named in the quoted header, and sends the errors the stack owes (port and
/// protocol unreachable, reassembly time exceeded) under Linux's two token buckets, one for the whole stack
/// (<see cref="IcmpRateLimiter"/>) and one per destination host (<see cref="IcmpPeerLimiter"/>); errors to ourselves
/// are not limited, as Linux does not limit the loopback.
/// </summary>
internal sealed class Icmp
{
    public const byte Protocol = 1;
    public const byte EchoReply = 0, DestinationUnreachable = 3, SourceQuench = 4, Redirect = 5, Echo = 8,
        TimeExceeded = 11, ParameterProblem = 12;
    public const byte CodeNetUnreachable = 0, CodeHostUnreachable = 1, CodeProtocolUnreachable = 2,
        CodePortUnreachable = 3, CodeFragmentationNeeded = 4, CodeReassemblyTimeExceeded = 1;

    /// <summary>Linux's limit on an error's size (576 bytes of IPv4 datagram).</summary>
    private const int MaxErrorQuote = 576 - Ipv4Header.MinLength - 8;

    private readonly Ipv4Layer _ip;
    private readonly NetStats _stats;

    public Icmp(Ipv4Layer ip, NetStats stats)
    {
        _ip = ip;
        _stats = stats;
    }

    public IcmpRateLimiter Limiter { get; } = new(NetLimits.IcmpErrorsPerSecond, NetLimits.IcmpErrorBurst);
    public IcmpPeerLimiter PeerLimiter { get; } = new();

    public static bool IsError(byte type) => type is DestinationUnreachable or SourceQuench or Redirect or TimeExceeded or ParameterProblem;

    /// <summary>An ICMP message addressed to us (<paramref name="broadcast"/>: to a broadcast address).</summary>
    public void Receive(in Ipv4Header h, ReadOnlySpan<byte> message, bool broadcast)
    {
        if (message.Length < 8) { _stats.Drop(NetDrop.Malformed); return; }
        if (Checksum.Of(message) != 0) { _stats.Drop(NetDrop.BadChecksum); return; }
        byte type = message[0], code = message[1];
        switch (type)
        {
            case Echo when !broadcast:
                Reply(h, message);
                break;
            case DestinationUnreachable or TimeExceeded or ParameterProblem:
                DeliverError(type, code, message);
                break;
            default:
                break; // echo replies (no ping sockets), redirects, source quench: ignored as Linux does
        }
    }

    private void Reply(in Ipv4Header h, ReadOnlySpan<byte> request)
    {
        var a = ArrayPool<byte>.Shared.Rent(request.Length);
        try
        {
            var reply = a.AsSpan(0, request.Length);
            request.CopyTo(reply);
            reply[0] = EchoReply;
            reply[2] = reply[3] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(reply[2..], Checksum.Of(reply));
            _ip.Send(h.Destination, h.Source, Protocol, reply, h.Tos, 64, dontFragment: false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(a);
        }
    }

    private void DeliverError(byte type, byte code, ReadOnlySpan<byte> message)
    {
        var quoted = message[8..];
        if (quoted.Length < Ipv4Header.MinLength || quoted[0] >> 4 != 4) { _stats.Drop(NetDrop.Malformed); return; }
        int ihl = (quoted[0] & 0xF) * 4;
        if (ihl < Ipv4Header.MinLength || quoted.Length < ihl + 8) { _stats.Drop(NetDrop.Malformed); return; }
        byte protocol = quoted[9];
        var source = IPv4Address.Read(quoted[12..]);
        var destination = IPv4Address.Read(quoted[16..]);
        int mtu = type == DestinationUnreachable && code == CodeFragmentationNeeded ? BinaryPrimitives.ReadUInt16BigEndian(message[6..]) : 0;
        if (type == DestinationUnreachable && code == CodeFragmentationNeeded)
        {
            if (!_ip.IsLocal(source) || _ip.IsLocal(destination)) return; // not about a datagram we sent out
            _ip.PathMtu.Learn(destination, mtu, NetLimits.Mtu, _ip.NowNs);
            mtu = _ip.MtuFor(destination); // what the path is now taken to be (at least 552)
        }
        if (_ip.Transport(protocol) is { } t) t.IcmpError(type, code, source, destination, quoted[ihl..], mtu);
    }

    /// <summary>
    /// Sends an ICMP error about <paramref name="offending"/> (its IPv4 header and at least 8 bytes after it), unless
    /// RFC 1122 forbids one (about an ICMP error, a non-first fragment, a broadcast/multicast or unspecified address)
    /// or the rate limit says no.
    /// </summary>
    public void SendError(byte type, byte code, ReadOnlySpan<byte> offending, bool linkBroadcast, int nextHopMtu = 0)
    {
        if (offending.Length < Ipv4Header.MinLength) return;
        int ihl = (offending[0] & 0xF) * 4;
        if (ihl < Ipv4Header.MinLength || ihl > offending.Length) return;
        var source = IPv4Address.Read(offending[12..]);
        var destination = IPv4Address.Read(offending[16..]);
        ushort fragment = BinaryPrimitives.ReadUInt16BigEndian(offending[6..]);
        if (linkBroadcast || (fragment & Ipv4Header.OffsetMask) != 0) return;
        if (source.IsAny || source.IsBroadcast || source.IsMulticast || destination.IsBroadcast || destination.IsMulticast
            || _ip.IsBroadcast(destination) || _ip.IsBroadcast(source)) return;
        if (offending[9] == Protocol && offending.Length > ihl && IsError(offending[ihl])) return;
        if (!_ip.IsLocal(source) && !(Limiter.Allow(_ip.NowNs) && PeerLimiter.Allow(source, _ip.NowNs)))
        {
            _stats.Drop(NetDrop.IcmpRateLimited);
            return;
        }
        int quote = Math.Min(offending.Length, MaxErrorQuote);
        Span<byte> message = stackalloc byte[8 + MaxErrorQuote];
        message = message[..(8 + quote)];
        message[0] = type;
        message[1] = code;
        message[2..8].Clear();
        if (nextHopMtu != 0) BinaryPrimitives.WriteUInt16BigEndian(message[6..], (ushort)nextHopMtu);
        offending[..quote].CopyTo(message[8..]);
        BinaryPrimitives.WriteUInt16BigEndian(message[2..], Checksum.Of(message));
        byte tos = (byte)((offending[1] & 0x1E) | 0xC0); // RT_TOS | IPTOS_PREC_INTERNETCONTROL
        var from = _ip.IsLocal(destination) ? destination : IPv4Address.Any;
        _ip.Send(from, source, Protocol, message, tos, 64, dontFragment: false);
    }

    /// <summary>
    /// The errno an ICMP error means to a socket (Linux's icmp_err_convert), and whether it is "fatal" (hard): a
    /// connected UDP socket reports only hard errors; TCP aborts a connection attempt on them.
    /// </summary>
    public static int ErrnoFor(int type, int code, out bool fatal)
    {
        fatal = false;
        switch (type)
        {
            case DestinationUnreachable:
                (int errno, bool hard) = code switch
                {
                    0 => (NetErrno.ENETUNREACH, false),
                    1 => (NetErrno.EHOSTUNREACH, false),
                    2 => (NetErrno.ENOPROTOOPT, true),
                    3 => (NetErrno.ECONNREFUSED, true),
                    4 => (NetErrno.EMSGSIZE, false),
                    5 => (NetErrno.EOPNOTSUPP, false),
                    6 => (NetErrno.ENETUNREACH, true),
                    7 => (NetErrno.EHOSTDOWN, true),
                    8 => (NetErrno.ENONET, true),
                    9 => (NetErrno.ENETUNREACH, true),
                    10 => (NetErrno.EHOSTUNREACH, true),
                    11 => (NetErrno.ENETUNREACH, false),
                    12 => (NetErrno.EHOSTUNREACH, false),
                    _ => (NetErrno.EHOSTUNREACH, true),
                };
                fatal = hard;
                return errno;
            case TimeExceeded:
                return NetErrno.EHOSTUNREACH;
            case ParameterProblem:
                fatal = true;
                return NetErrno.EPROTO;
            default:
                return 0;
        }
    }
}
