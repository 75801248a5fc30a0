using System.Security.Cryptography;
using System.Text;

namespace Remus.Toolstack.Security;

/// <summary>
/// The pre-shared key handshake (.NET has no TLS-PSK). Each end sends a hello, "REMUSPSK", version 1, its role
/// (0 connecting, 1 accepting) and 32 random bytes; then, from the PSK and both nonces (HKDF-SHA256, the nonces as
/// salt), one AES-256-GCM key per direction and a proof key; each end sends HMAC-SHA256(proof key, its role's label +
/// both hellos) and checks the peer's (constant time) before anything else crosses. A recorded session replayed to a
/// new one fails the proof: the accepting end's nonce is new. A peer without the key cannot make the proof; an
/// attacker reflecting an end's own hello is refused by the role and the nonce checks.
/// </summary>
internal static class PskHandshake
{
    public const int NonceBytes = 32;
    public const int HelloBytes = 8 + 1 + 1 + NonceBytes;
    public const int ProofBytes = 32;
    public const byte Version = 1;
    public static ReadOnlySpan<byte> Magic => "REMUSPSK"u8;

    /// <summary>The keys of one session, as seen from one end.</summary>
    public sealed record Keys(byte[] SendKey, byte[] ReceiveKey, uint SendDirection, uint ReceiveDirection);

    public static async Task<Keys> RunAsync(Stream transport, byte[] psk, string peer, bool accepting, CancellationToken ct)
    {
        byte role = accepting ? (byte)1 : (byte)0;
        byte[] hello = new byte[HelloBytes];
        Magic.CopyTo(hello);
        hello[8] = Version;
        hello[9] = role;
        RandomNumberGenerator.Fill(hello.AsSpan(10));
        await transport.WriteAsync(hello, ct).ConfigureAwait(false);
        await transport.FlushAsync(ct).ConfigureAwait(false);

        byte[] theirs = new byte[HelloBytes];
        // The magic first: a peer that is not one of ours is told apart by its first bytes, not after a full hello.
        await ReadExactly(transport, theirs.AsMemory(0, 8), peer, "before the pre-shared key handshake", ct).ConfigureAwait(false);
        if (!theirs.AsSpan(0, 8).SequenceEqual(Magic))
            throw new ChannelAuthenticationException($"{peer}: the peer is not a Remus PSK endpoint ({Describe(theirs.AsSpan(0, 8))})");
        await ReadExactly(transport, theirs.AsMemory(8), peer, "during the pre-shared key handshake", ct).ConfigureAwait(false);
        if (theirs[8] != Version)
            throw new ChannelAuthenticationException($"{peer}: the peer speaks version {theirs[8]} of the Remus PSK protocol; this build speaks {Version}");
        if (theirs[9] == role)
            throw new ChannelAuthenticationException($"{peer}: the peer is also the {(accepting ? "accepting" : "connecting")} end of the PSK handshake (a reflected hello?)");
        if (CryptographicOperations.FixedTimeEquals(theirs.AsSpan(10), hello.AsSpan(10)))
            throw new ChannelAuthenticationException($"{peer}: the peer sent our own nonce back (a reflected hello)");

        byte[] clientHello = accepting ? theirs : hello, serverHello = accepting ? hello : theirs;
        byte[] salt = [.. clientHello.AsSpan(10), .. serverHello.AsSpan(10)];
        byte[] prk = HKDF.Extract(HashAlgorithmName.SHA256, psk, salt);
        byte[] c2s = Expand(prk, "remus psk v1 key client->server");
        byte[] s2c = Expand(prk, "remus psk v1 key server->client");
        byte[] proofKey = Expand(prk, "remus psk v1 proof");
        CryptographicOperations.ZeroMemory(prk);

        byte[] transcript = [.. clientHello, .. serverHello];
        byte[] ourProof = Proof(proofKey, accepting ? "server" : "client", transcript);
        byte[] expected = Proof(proofKey, accepting ? "client" : "server", transcript);
        CryptographicOperations.ZeroMemory(proofKey);
        await transport.WriteAsync(ourProof, ct).ConfigureAwait(false);
        await transport.FlushAsync(ct).ConfigureAwait(false);

        byte[] theirProof = new byte[ProofBytes];
        await ReadExactly(transport, theirProof, peer, "during the pre-shared key handshake (it refused our proof: wrong key?)", ct).ConfigureAwait(false);
        if (!CryptographicOperations.FixedTimeEquals(theirProof, expected))
        {
            CryptographicOperations.ZeroMemory(c2s);
            CryptographicOperations.ZeroMemory(s2c);
            throw new ChannelAuthenticationException($"{peer}: the peer did not prove the pre-shared key (wrong key?)");
        }
        return accepting ? new Keys(s2c, c2s, SendDirection: 2, ReceiveDirection: 1) : new Keys(c2s, s2c, SendDirection: 1, ReceiveDirection: 2);
    }

    private static byte[] Expand(byte[] prk, string label) =>
        HKDF.Expand(HashAlgorithmName.SHA256, prk, 32, Encoding.ASCII.GetBytes(label));

    private static byte[] Proof(byte[] key, string role, byte[] transcript) =>
        HMACSHA256.HashData(key, (byte[])[.. Encoding.ASCII.GetBytes($"remus psk v1 {role} proof"), .. transcript]);

    private static async Task ReadExactly(Stream transport, Memory<byte> buffer, string peer, string when, CancellationToken ct)
    {
        int n = await transport.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, ct).ConfigureAwait(false);
        if (n < buffer.Length)
            throw new ChannelAuthenticationException($"{peer}: the peer closed the connection {when}");
    }

    private static string Describe(ReadOnlySpan<byte> first) =>
        first[0] == 0x16 ? "it speaks TLS: --tls-cert/--tls-key/--tls-ca on its side?"
        : first.SequenceEqual("REMUSCKP"u8) ? "it sent an unprotected Remus stream: --insecure on its side?"
        : $"it sent {Convert.ToHexString(first)}";
}
