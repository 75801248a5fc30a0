using Remus.Sandbox.Net.Sockets;

namespace Remus.Sandbox.Net.Tcp;

/// <summary>TCP (RFC 9293). CONTRACT SKELETON — the net-tcp helper replaces the bodies; the surface is fixed.</summary>
internal sealed class TcpLayer(IIpLayer ip) : ITransportProtocol
{
    public IIpLayer Ip { get; } = ip;
    public byte Protocol => 6;
    public void Receive(IPv4Address source, IPv4Address destination, ReadOnlySpan<byte> segment, byte tos) => throw new NotImplementedException();
    public void IcmpError(int type, int code, IPv4Address source, IPv4Address destination, ReadOnlySpan<byte> original, int nextHopMtu) => throw new NotImplementedException();
    public long NextDeadlineNs => long.MaxValue;
    public void RunTimers(long nowNs) => throw new NotImplementedException();
    public long CreateSocket(int id, out IInetSocket? socket) => throw new NotImplementedException();
    public IInetSocket? SocketById(int id) => throw new NotImplementedException();
    public void Save(BinaryWriter w) => throw new NotImplementedException();
    public void Load(BinaryReader r) => throw new NotImplementedException();
}
