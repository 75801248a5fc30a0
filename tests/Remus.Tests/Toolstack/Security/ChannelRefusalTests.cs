using System.Net.Sockets;
using System.Text;
using Remus.Checkpoint.Stream;
using Remus.Tests.Support;
using Remus.Toolstack.Security;
using Xunit;

namespace Remus.Tests.Toolstack.Security;

/// <summary>Peers that are not Remus endpoints of the same kind, and silent peers, are refused inside Connect/Accept.</summary>
public sealed class ChannelRefusalTests : IDisposable
{
    private readonly TestPki _pki = new();

    public void Dispose() => _pki.Dispose();

    public static TheoryData<ChannelMode> Modes => new() { ChannelMode.Tls, ChannelMode.Psk };

    private ChannelSecurity Accepting(ChannelMode mode) => mode == ChannelMode.Tls ? _pki.Tls(_pki.HostB) : _pki.Psk();
    private ChannelSecurity Connecting(ChannelMode mode) => mode == ChannelMode.Tls ? _pki.Tls(_pki.HostA) : _pki.Psk();

    [Theory]
    [MemberData(nameof(Modes))]
    public void A_plain_peer_sending_a_valid_remus_stream_header_is_refused(ChannelMode mode)
    {
        (NetworkStream plain, NetworkStream accepting) = ChannelLoopback.Pair();
        using (plain)
        {
            var writer = new CheckpointWriter(plain);
            writer.WriteHeader(new StreamHeader(Encoding.UTF8.GetBytes("""{"name":"intruder","memory":64,"console_log":"/etc/x"}""")));
            plain.Flush();
            ChannelLoopback.Outcome a = ChannelLoopback.Run(() => SecureChannel.Accept(accepting, Accepting(mode), "plain-peer", ChannelLoopback.Patience));
            Assert.Null(a.Stream); // no stream: not one byte of it is readable
            string message = a.Refused.Message;
            Assert.Contains($"the peer is not a Remus {(mode == ChannelMode.Tls ? "TLS" : "PSK")} endpoint", message);
            Assert.Contains("unprotected Remus stream", message);
            Assert.DoesNotContain('\n', message);
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void A_peer_of_the_other_mode_is_refused(ChannelMode mode)
    {
        ChannelMode other = mode == ChannelMode.Tls ? ChannelMode.Psk : ChannelMode.Tls;
        (ChannelLoopback.Outcome c, ChannelLoopback.Outcome a) = ChannelLoopback.Handshake(Connecting(other), Accepting(mode));
        Assert.Contains($"the peer is not a Remus {(mode == ChannelMode.Tls ? "TLS" : "PSK")} endpoint", a.Refused.Message);
        Assert.IsType<ChannelAuthenticationException>(c.Error);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void A_silent_connecting_peer_is_refused_within_the_timeout(ChannelMode mode)
    {
        (NetworkStream silent, NetworkStream accepting) = ChannelLoopback.Pair();
        using (silent)
        {
            ChannelLoopback.Outcome a = ChannelLoopback.Run(() => SecureChannel.Accept(accepting, Accepting(mode), "silent-peer", TimeSpan.FromSeconds(1)));
            Assert.Equal("silent-peer: no handshake from the peer within 1 s", a.Refused.Message);
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void A_silent_accepting_peer_is_refused_within_the_timeout(ChannelMode mode)
    {
        (NetworkStream connecting, NetworkStream silent) = ChannelLoopback.Pair();
        using (silent)
        {
            ChannelLoopback.Outcome c = ChannelLoopback.Run(() => SecureChannel.Connect(connecting, Connecting(mode), "silent-peer", TimeSpan.FromSeconds(1.5)));
            Assert.Equal("silent-peer: no handshake from the peer within 1.5 s", c.Refused.Message);
        }
    }

    [Fact]
    public void A_refused_accept_closes_the_connection()
    {
        (NetworkStream plain, NetworkStream accepting) = ChannelLoopback.Pair();
        using (plain)
        {
            plain.Write("GET / HT"u8); // exactly the magic's length: nothing is left unread (a close would reset)
            Assert.NotNull(ChannelLoopback.Run(() => SecureChannel.Accept(accepting, _pki.Psk(), "peer", ChannelLoopback.Patience)).Error);
            plain.ReadTimeout = (int)ChannelLoopback.Patience.TotalMilliseconds;
            byte[] buffer = new byte[100];
            int total = 0;
            for (int n; (n = plain.Read(buffer)) > 0;) total += n;
            Assert.Equal(42, total); // our hello, and then the end of the connection
        }
    }
}
