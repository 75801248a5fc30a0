using System.Security.Cryptography;

namespace Remus.Toolstack.Security;

/// <summary>The PSK layer: read the key file, run <see cref="PskHandshake"/> within the deadline, frame with <see cref="PskStream"/>.</summary>
internal static class PskChannel
{
    public static Stream Open(Stream transport, ChannelSecurity security, string peer, TimeSpan timeout, bool accepting)
    {
        byte[] psk = PskKey.Read(security.PskFile);
        PskHandshake.Keys keys;
        try
        {
            keys = HandshakeDeadline.Run(transport, peer, timeout, async ct =>
            {
                try { return await PskHandshake.RunAsync(transport, psk, peer, accepting, ct).ConfigureAwait(false); }
                catch (IOException e) when (!ct.IsCancellationRequested)
                {
                    throw new ChannelAuthenticationException($"{peer}: the connection broke during the pre-shared key handshake: {HandshakeDeadline.OneLine(e)}", e);
                }
            });
        }
        finally
        {
            CryptographicOperations.ZeroMemory(psk);
        }
        return new PskStream(transport, keys, peer);
    }
}
