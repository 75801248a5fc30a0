using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Remus.Tests.Support;
using Remus.Toolstack.Security;
using Xunit;

namespace Remus.Tests.Toolstack.Security;

/// <summary>TLS: mutual authentication by the CA given, and by it only.</summary>
public sealed class ChannelTlsTests : IDisposable
{
    private readonly TestPki _pki = new();

    public void Dispose() => _pki.Dispose();

    [Fact]
    public void A_certificate_signed_by_an_intermediate_that_its_file_carries_is_accepted_both_ways()
    {
        (ChannelLoopback.Outcome c, ChannelLoopback.Outcome a) =
            ChannelLoopback.Handshake(_pki.Tls(_pki.HostViaIntermediate), _pki.Tls(_pki.HostB));
        c.Ok.Dispose();
        a.Ok.Dispose();
        (c, a) = ChannelLoopback.Handshake(_pki.Tls(_pki.HostA), _pki.Tls(_pki.HostViaIntermediate));
        c.Ok.Dispose();
        a.Ok.Dispose();
    }

    [Fact]
    public void A_connecting_peer_with_a_certificate_from_another_ca_is_refused_by_the_accepting_end()
    {
        (ChannelLoopback.Outcome c, ChannelLoopback.Outcome a) =
            ChannelLoopback.Handshake(_pki.Tls(_pki.ForeignHost), _pki.Tls(_pki.HostB));
        Assert.Contains($"the peer's certificate (CN=foreign-host) does not chain to the CA {_pki.CaFile}", a.Refused.Message);
        Assert.Null(c.Stream); // and the connecting end learns it inside Connect
        Assert.IsType<ChannelAuthenticationException>(c.Error);
    }

    [Fact]
    public void An_accepting_peer_with_a_certificate_from_another_ca_is_refused_by_the_connecting_end()
    {
        (ChannelLoopback.Outcome c, ChannelLoopback.Outcome a) =
            ChannelLoopback.Handshake(_pki.Tls(_pki.HostA), _pki.Tls(_pki.ForeignHost, _pki.CaFile));
        Assert.Contains($"the peer's certificate (CN=foreign-host) does not chain to the CA {_pki.CaFile}", c.Refused.Message);
        Assert.Null(a.Stream);
    }

    [Fact]
    public void Trusting_another_ca_refuses_a_certificate_of_ours()
    {
        (ChannelLoopback.Outcome c, ChannelLoopback.Outcome a) =
            ChannelLoopback.Handshake(_pki.Tls(_pki.HostA, _pki.ForeignCaFile), _pki.Tls(_pki.HostB));
        Assert.Contains($"does not chain to the CA {_pki.ForeignCaFile}", c.Refused.Message);
        Assert.Null(a.Stream);
    }

    [Fact]
    public void A_connecting_peer_without_a_certificate_is_refused()
    {
        (NetworkStream connecting, NetworkStream accepting) = ChannelLoopback.Pair();
        using var ssl = new SslStream(connecting, leaveInnerStreamOpen: false);
        Task client = Task.Run(async () =>
        {
            try
            {
                await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = "remus",
                    RemoteCertificateValidationCallback = (_, _, _, _) => true,
                });
                await ssl.WriteAsync("REMUS-T1"u8.ToArray());
                await ssl.ReadAtLeastAsync(new byte[8], 8, throwOnEndOfStream: false);
            }
            catch (Exception e) when (e is IOException or AuthenticationException) { }
        });
        ChannelLoopback.Outcome a = ChannelLoopback.Run(() =>
            SecureChannel.Accept(accepting, _pki.Tls(_pki.HostB), "peer", ChannelLoopback.Patience));
        Assert.Contains("the peer sent no certificate", a.Refused.Message);
        Assert.True(client.Wait(ChannelLoopback.Patience));
    }

    [Fact]
    public void A_flipped_bit_in_a_tls_record_makes_the_reader_throw_and_never_return_altered_bytes()
    {
        using var relay = new ChannelRelay(flipAt: 500_000); // well past the handshake (a few KB)
        (ChannelLoopback.Outcome c, ChannelLoopback.Outcome a) =
            ChannelLoopback.Handshake(relay.Connecting, _pki.Tls(_pki.HostA), relay.Accepting, _pki.Tls(_pki.HostB));
        using Stream connecting = c.Ok, accepting = a.Ok;
        byte[] sent = Random.Shared.GetItems<byte>(Enumerable.Range(0, 256).Select(i => (byte)i).ToArray(), 1024 * 1024);
        Task writer = Task.Run(() =>
        {
            try { connecting.Write(sent); connecting.Flush(); }
            catch (Exception e) when (e is IOException or ObjectDisposedException) { }
        });

        var received = new MemoryStream();
        byte[] buffer = new byte[10_000];
        Exception error = Assert.ThrowsAny<Exception>(() =>
        {
            for (int n; (n = accepting.Read(buffer)) > 0;) received.Write(buffer, 0, n);
        });
        Assert.True(error is ChannelAuthenticationException, $"expected a ChannelAuthenticationException, got {error}");
        Assert.InRange(received.Length, 1, 500_000);
        Assert.Equal(sent.AsSpan(0, (int)received.Length).ToArray(), received.ToArray()); // a prefix of what was sent
        accepting.Dispose();
        Assert.True(writer.Wait(ChannelLoopback.Patience));
    }

    [Fact]
    public void A_missing_certificate_file_is_named_before_any_byte_is_sent()
    {
        (NetworkStream connecting, NetworkStream accepting) = ChannelLoopback.Pair();
        using (connecting) using (accepting)
        {
            ChannelSecurity security = _pki.Tls(_pki.HostA) with { CertFile = Path.Combine(_pki.Dir, "missing.crt") };
            ChannelLoopback.Outcome c = ChannelLoopback.Run(() => SecureChannel.Connect(connecting, security, "peer", ChannelLoopback.Patience));
            Assert.Contains("missing.crt", Assert.IsAssignableFrom<Remus.Toolstack.RemusException>(c.Error).Message);
            Assert.Equal(0, accepting.Socket.Available);
        }
    }
}
