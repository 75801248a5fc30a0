using Xunit;
using System.Security.Cryptography;
using Remus.Sandbox.Net.Tcp;

namespace Remus.Tests.Net.Tcp;

/// <summary>A one-way byte stream through a connection: writes what the send buffer takes, reads what arrived, checks it.</summary>
internal sealed class TcpTransfer
{
    private readonly byte[] _data;
    private readonly byte[] _buf = new byte[70000];
    private readonly MemoryStream _got = new();
    private readonly bool _shutdownWhenSent;
    private bool _shutDown;

    public TcpTransfer(TcpSocket from, TcpSocket to, int length, int seed, bool shutdownWhenSent = true)
    {
        From = from;
        To = to;
        _data = new byte[length];
        new Random(seed).NextBytes(_data);
        _shutdownWhenSent = shutdownWhenSent;
    }

    public TcpSocket From { get; set; }
    public TcpSocket To { get; set; }
    public int Sent { get; private set; }
    public long Received => _got.Length;
    public bool Eof { get; private set; }
    public long LastError { get; private set; }
    public bool ReadPaused { get; set; }

    public bool Done => _shutdownWhenSent ? Eof : Received == _data.Length;

    public void Pump()
    {
        while (Sent < _data.Length)
        {
            long n = From.Send(_data.AsSpan(Sent, Math.Min(65536, _data.Length - Sent)), 0, null);
            if (n <= 0) { if (n != -TcpErrno.EAGAIN) LastError = n; break; }
            Sent += (int)n;
        }
        if (Sent == _data.Length && _shutdownWhenSent && !_shutDown)
        {
            _shutDown = true;
            Assert.Equal(0, From.Shutdown(1));
        }
        while (!ReadPaused && !Eof)
        {
            long n = To.Receive(_buf, 0, out _, out _);
            if (n > 0) _got.Write(_buf, 0, (int)n);
            else if (n == 0) Eof = true;
            else { if (n != -TcpErrno.EAGAIN) LastError = n; break; }
        }
    }

    public void AssertIntact()
    {
        Assert.Equal(_data.Length, _got.Length);
        Assert.Equal(SHA256.HashData(_data), SHA256.HashData(_got.ToArray()));
    }
}
