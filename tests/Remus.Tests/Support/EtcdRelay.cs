using System.Net;
using System.Net.Sockets;

namespace Remus.Tests.Support;

/// <summary>
/// A TCP relay on a loopback port in front of one etcd member, which the test can cut (every connection dropped and
/// new ones refused: a partition between a client and the witness) and restore (the same port listens again).
/// </summary>
public sealed class EtcdRelay : IDisposable
{
    private readonly IPEndPoint _target;
    private readonly object _gate = new();
    private readonly List<TcpClient> _open = [];
    private TcpListener? _listener;

    public int Port { get; }
    public string Url => $"http://127.0.0.1:{Port}";

    public EtcdRelay(string targetUrl)
    {
        var uri = new Uri(targetUrl);
        _target = new IPEndPoint(IPAddress.Parse(uri.Host), uri.Port);
        Port = EtcdCluster.FreePort();
        Restore();
    }

    /// <summary>Listens again (after <see cref="Cut"/>).</summary>
    public void Restore()
    {
        lock (_gate)
        {
            if (_listener is not null) return;
            _listener = new TcpListener(IPAddress.Loopback, Port);
            _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            _listener.Start();
            _ = AcceptLoop(_listener);
        }
    }

    /// <summary>Drops every relayed connection and stops listening (connections are refused until restored).</summary>
    public void Cut()
    {
        lock (_gate)
        {
            _listener?.Stop();
            _listener = null;
            foreach (var c in _open) c.Dispose();
            _open.Clear();
        }
    }

    private async Task AcceptLoop(TcpListener listener)
    {
        while (true)
        {
            TcpClient inbound;
            try { inbound = await listener.AcceptTcpClientAsync().ConfigureAwait(false); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { return; }
            var outbound = new TcpClient();
            try { await outbound.ConnectAsync(_target).ConfigureAwait(false); }
            catch (SocketException) { inbound.Dispose(); outbound.Dispose(); continue; }
            lock (_gate)
            {
                if (_listener != listener) { inbound.Dispose(); outbound.Dispose(); return; }
                _open.Add(inbound);
                _open.Add(outbound);
            }
            _ = Pump(inbound, outbound);
            _ = Pump(outbound, inbound);
        }
    }

    private static async Task Pump(TcpClient from, TcpClient to)
    {
        try { await from.GetStream().CopyToAsync(to.GetStream()).ConfigureAwait(false); }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException or SocketException) { }
        from.Dispose();
        to.Dispose();
    }

    public void Dispose() => Cut();
}
