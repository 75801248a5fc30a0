using System.Buffers.Binary;
using System.Net.Sockets;
using Remus.Tests.Support;
using Remus.Toolstack.Security;
using Xunit;

namespace Remus.Tests.Toolstack.Security;

/// <summary>
/// The pre-shared key channel: a wrong key is refused on both ends, a recorded session cannot be replayed, and a
/// frame that was altered, dropped or moved makes the reader throw; it never returns bytes that were not sent.
/// </summary>
public sealed class ChannelPskTests : IDisposable
{
    /// <summary>What the connecting end sends before its first frame: its hello (42 bytes) and its proof (32).</summary>
    private const int ConnectingHandshakeBytes = 42 + 32;

    private readonly TestPki _pki = new();

    public void Dispose() => _pki.Dispose();

    [Fact]
    public void A_wrong_key_is_refused_on_both_ends()
    {
        (ChannelLoopback.Outcome c, ChannelLoopback.Outcome a) = ChannelLoopback.Handshake(_pki.Psk(_pki.OtherPskFile), _pki.Psk());
        Assert.Contains("the peer did not prove the pre-shared key (wrong key?)", a.Refused.Message);
        Assert.Contains("wrong key?", c.Refused.Message);
    }

    [Fact]
    public void A_binary_key_is_used_byte_for_byte_and_a_text_key_loses_only_its_surrounding_white_space()
    {
        // 32 random bytes that start with a newline and end with a space: trimmed, they would be 30 and refused.
        byte[] binary = new byte[32];
        System.Security.Cryptography.RandomNumberGenerator.Fill(binary);
        binary[0] = (byte)'\n';
        binary[1] = 0x01;
        binary[31] = (byte)' ';
        string binaryFile = Path.Combine(_pki.Dir, "binary-psk");
        File.WriteAllBytes(binaryFile, binary);
        Assert.Equal(binary, PskKey.Read(binaryFile));

        string textFile = Path.Combine(_pki.Dir, "text-psk");
        string text = Convert.ToBase64String(binary);
        File.WriteAllText(textFile, "  " + text + "\n");
        Assert.Equal(System.Text.Encoding.ASCII.GetBytes(text), PskKey.Read(textFile));
    }

    [Fact]
    public void A_recorded_session_replayed_to_a_new_accepting_end_is_refused()
    {
        byte[] recording;
        using (var relay = new ChannelRelay(ConnectingHandshakeBytes, (_, frame) => [frame]))
        {
            (ChannelLoopback.Outcome c, ChannelLoopback.Outcome a) =
                ChannelLoopback.Handshake(relay.Connecting, _pki.Psk(), relay.Accepting, _pki.Psk());
            using Stream connecting = c.Ok, accepting = a.Ok;
            connecting.Write("the original session"u8);
            connecting.Flush();
            byte[] got = new byte[20];
            Assert.Equal(20, ChannelLoopback.ReadFully(accepting, got));
            connecting.Dispose();
            Assert.Equal(0, accepting.Read(got));
            recording = relay.Recorded;
        }
        Assert.True(recording.Length > ConnectingHandshakeBytes);

        (NetworkStream replayer, NetworkStream fresh) = ChannelLoopback.Pair();
        using (replayer)
        {
            replayer.Write(recording);
            ChannelLoopback.Outcome replayed = ChannelLoopback.Run(() => SecureChannel.Accept(fresh, _pki.Psk(), "replayer", ChannelLoopback.Patience));
            Assert.Contains("the peer did not prove the pre-shared key", replayed.Refused.Message);
        }
    }

    public static TheoryData<string> Tamperings => new() { "flip", "drop", "swap", "replay" };

    [Theory]
    [MemberData(nameof(Tamperings))]
    public void A_tampered_frame_makes_the_reader_throw_and_never_return_altered_bytes(string tampering)
    {
        byte[] saved = [];
        Func<int, byte[], IEnumerable<byte[]>> tamper = tampering switch
        {
            // Frame 1 (the second) is the target; frame 0 passes as it is.
            "flip" => (i, f) => { if (i == 1) f[4 + f.Length / 2 % 100] ^= 0x20; return [f]; },
            "drop" => (i, f) => i == 1 ? [] : [f],
            "swap" => (i, f) => { if (i == 1) { saved = f; return []; } return i == 2 ? [f, saved] : [f]; },
            "replay" => (i, f) => i == 1 ? [f, f] : [f],
            _ => throw new ArgumentOutOfRangeException(nameof(tampering)),
        };
        using var relay = new ChannelRelay(ConnectingHandshakeBytes, tamper);
        (ChannelLoopback.Outcome c, ChannelLoopback.Outcome a) =
            ChannelLoopback.Handshake(relay.Connecting, _pki.Psk(), relay.Accepting, _pki.Psk());
        using Stream connecting = c.Ok, accepting = a.Ok;

        byte[][] frames = [Filled(1000, 0xA0), Filled(1000, 0xB1), Filled(1000, 0xC2), Filled(1000, 0xD3)];
        foreach (byte[] frame in frames)
        {
            connecting.Write(frame);
            connecting.Flush(); // one frame each
        }
        connecting.Dispose();

        var received = new MemoryStream();
        byte[] buffer = new byte[700]; // smaller than a frame: the buffered path as well as the direct one
        var error = Assert.Throws<ChannelAuthenticationException>(() =>
        {
            for (int n; (n = accepting.Read(buffer)) > 0;) received.Write(buffer, 0, n);
        });
        // Exactly what came before the tampering, nothing after it (a replayed frame 1 arrives where frame 2 belongs).
        int good = tampering == "replay" ? 2 : 1;
        Assert.Contains($"frame {good} failed its authentication tag", error.Message);
        Assert.Equal(frames[..good].SelectMany(f => f).ToArray(), received.ToArray());
        Assert.Throws<ChannelAuthenticationException>(() => accepting.Read(buffer)); // and it stays refused
    }

    [Fact]
    public void A_frame_length_of_4_GiB_is_refused_without_allocating_it()
    {
        using var relay = new ChannelRelay(ConnectingHandshakeBytes,
            (i, f) => i == 0 ? [[0xFF, 0xFF, 0xFF, 0xFF], .. Enumerable.Repeat(f, 4)] : [f]);
        (ChannelLoopback.Outcome c, ChannelLoopback.Outcome a) =
            ChannelLoopback.Handshake(relay.Connecting, _pki.Psk(), relay.Accepting, _pki.Psk());
        using Stream connecting = c.Ok, accepting = a.Ok;
        connecting.Write(Filled(100, 1));
        connecting.Flush();

        byte[] buffer = new byte[100];
        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<ChannelAuthenticationException>(() => accepting.Read(buffer));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("claims 4294967295 bytes", error.Message);
        Assert.True(allocated < 1024 * 1024, $"reading the frame header allocated {allocated} bytes");
        Assert.Equal(new byte[100], buffer);
    }

    [Fact]
    public void A_key_file_shorter_than_32_bytes_is_refused_before_any_byte_is_sent()
    {
        string shortKey = Path.Combine(_pki.Dir, "short-psk");
        File.WriteAllText(shortKey, "too short\n");
        (NetworkStream connecting, NetworkStream accepting) = ChannelLoopback.Pair();
        using (connecting) using (accepting)
        {
            ChannelLoopback.Outcome c = ChannelLoopback.Run(() => SecureChannel.Connect(connecting, _pki.Psk(shortKey), "peer", ChannelLoopback.Patience));
            Assert.Contains("at least 32 bytes", Assert.IsAssignableFrom<Remus.Toolstack.RemusException>(c.Error).Message);
            Assert.Equal(0, accepting.Socket.Available);
        }
    }

    private static byte[] Filled(int length, byte value)
    {
        byte[] b = new byte[length];
        Array.Fill(b, value);
        BinaryPrimitives.WriteInt32BigEndian(b, length);
        return b;
    }
}
