namespace Remus.Toolstack.Security;

/// <summary>
/// Wraps a connected TCP stream in the protection <see cref="ChannelSecurity"/> asks for, on the connecting side
/// (the sender: `remus migrate/protect --tcp`) or the accepting side (`migrate-receive --tcp-listen`). The returned
/// stream is what the checkpoint writer/reader and the back channel use: one reader thread and one writer thread at a
/// time, full duplex. Authentication completes (or fails) inside these calls, within <c>timeout</c>: no byte from an
/// unauthenticated peer is ever returned by the stream. A failure is a <see cref="ChannelAuthenticationException"/>
/// whose message says what failed in one line (wrong certificate, wrong key, not a Remus peer, timed out).
/// Insecure returns <paramref name="transport"/> itself.
/// <para>Writes to a protected stream are buffered (one TLS write / one GCM frame per up to 64 KiB): call
/// <see cref="Stream.Flush"/> when the peer must see what was written. Disposing the stream flushes what is left
/// (best effort) and disposes <paramref name="transport"/>; a failed Connect/Accept disposes it too.</para>
/// <para>A file named by <paramref name="security"/> that cannot be used (missing, unreadable, not PEM, a key shorter
/// than 32 bytes) is a <see cref="RemusException"/> naming the file, raised before any byte is exchanged.</para>
/// </summary>
public static class SecureChannel
{
    public static Stream Connect(Stream transport, ChannelSecurity security, string peer, TimeSpan timeout) =>
        Open(transport, security, peer, timeout, accepting: false);

    public static Stream Accept(Stream transport, ChannelSecurity security, string peer, TimeSpan timeout) =>
        Open(transport, security, peer, timeout, accepting: true);

    private static Stream Open(Stream transport, ChannelSecurity security, string peer, TimeSpan timeout, bool accepting)
    {
        ArgumentNullException.ThrowIfNull(transport);
        ArgumentNullException.ThrowIfNull(security);
        return security.Mode switch
        {
            ChannelMode.Insecure => transport,
            ChannelMode.Tls => TlsChannel.Open(transport, security, peer, timeout, accepting),
            ChannelMode.Psk => PskChannel.Open(transport, security, peer, timeout, accepting),
            _ => throw new ArgumentOutOfRangeException(nameof(security), security.Mode, "unknown channel mode"),
        };
    }
}

/// <summary>The peer could not be authenticated (or the protected channel broke its framing or its tags).</summary>
public sealed class ChannelAuthenticationException(string message, Exception? inner = null) : RemusException(message, inner);
