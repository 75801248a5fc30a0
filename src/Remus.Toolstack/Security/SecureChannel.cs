namespace Remus.Toolstack.Security;

/// <summary>
/// Wraps a connected TCP stream in the protection <see cref="ChannelSecurity"/> asks for, on the connecting side
/// (the sender: `remus migrate/protect --tcp`) or the accepting side (`migrate-receive --tcp-listen`). The returned
/// stream is what the checkpoint writer/reader and the back channel use: one reader thread and one writer thread at a
/// time, full duplex. Authentication completes (or fails) inside these calls, within <c>timeout</c>: no byte from an
/// unauthenticated peer is ever returned by the stream. A failure is a <see cref="ChannelAuthenticationException"/>
/// whose message says what failed in one line (wrong certificate, wrong key, not a Remus peer, timed out).
/// Insecure returns <paramref name="transport"/> itself.
/// </summary>
public static class SecureChannel
{
    public static Stream Connect(Stream transport, ChannelSecurity security, string peer, TimeSpan timeout) =>
        throw new NotImplementedException("issue 13: sec-channel");

    public static Stream Accept(Stream transport, ChannelSecurity security, string peer, TimeSpan timeout) =>
        throw new NotImplementedException("issue 13: sec-channel");
}

/// <summary>The peer could not be authenticated (or the protected channel broke its framing or its tags).</summary>
public sealed class ChannelAuthenticationException(string message, Exception? inner = null) : RemusException(message, inner);
