using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Remus.Toolstack.Security;

/// <summary>
/// The TLS layer: <see cref="SslStream"/>, TLS 1.3 (1.2 allowed), mutual authentication. The peer's certificate must
/// chain to the CA file given (and to nothing else: custom root trust, the system store plays no part; no revocation
/// check) and carry the EKU for its role (server authentication for the accepting end, client authentication for the
/// connecting end). There is no host-name check: the PKI is private to Remus hosts, and a certificate signed by that
/// CA is what authenticates a host (docs/security.md).
/// <para>After the TLS handshake each end sends a short Remus greeting and reads the peer's, inside TLS. With TLS 1.3
/// the connecting end's handshake completes before the accepting end has judged its certificate; the greeting makes a
/// refusal of our certificate fail here, inside Connect, and not at the first record.</para>
/// </summary>
internal static class TlsChannel
{
    private static ReadOnlySpan<byte> Greeting => "REMUS-T1"u8;
    private const string ServerAuth = "1.3.6.1.5.5.7.3.1", ClientAuth = "1.3.6.1.5.5.7.3.2";

    public static Stream Open(Stream transport, ChannelSecurity security, string peer, TimeSpan timeout, bool accepting)
    {
        (X509Certificate2 own, X509Certificate2Collection chain, X509Certificate2Collection ca) = LoadFiles(security);
        var verdict = new Verdict();
        var seen = new FirstBytes(transport);
        var ssl = new SslStream(seen, leaveInnerStreamOpen: false);
        RemoteCertificateValidationCallback validate = (_, cert, sent, _) => Validate(cert, sent, ca, security.CaFile!, accepting, verdict);
        try
        {
            HandshakeDeadline.Run(ssl, peer, timeout, async ct =>
            {
                bool authenticated = false;
                try
                {
                    if (accepting)
                        await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                        {
                            ServerCertificateContext = SslStreamCertificateContext.Create(own, chain, offline: true),
                            ClientCertificateRequired = true,
                            EnabledSslProtocols = SslProtocols.Tls13 | SslProtocols.Tls12,
                            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                            RemoteCertificateValidationCallback = validate,
                        }, ct).ConfigureAwait(false);
                    else
                        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                        {
                            TargetHost = "remus",
                            ClientCertificateContext = SslStreamCertificateContext.Create(own, chain, offline: true),
                            EnabledSslProtocols = SslProtocols.Tls13 | SslProtocols.Tls12,
                            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                            RemoteCertificateValidationCallback = validate,
                        }, ct).ConfigureAwait(false);
                    authenticated = true;
                    await ssl.WriteAsync(Greeting.ToArray(), ct).ConfigureAwait(false);
                    await ssl.FlushAsync(ct).ConfigureAwait(false);
                    byte[] got = new byte[Greeting.Length];
                    int n = await ssl.ReadAtLeastAsync(got, got.Length, throwOnEndOfStream: false, ct).ConfigureAwait(false);
                    if (n < got.Length)
                        throw new ChannelAuthenticationException(accepting
                            ? $"{peer}: the peer closed the TLS connection right after the handshake (it refused our certificate? it must chain to the peer's CA)"
                            : $"{peer}: the peer refused our certificate (it must chain to the CA the peer trusts, with the client authentication EKU)");
                    if (!got.AsSpan().SequenceEqual(Greeting))
                        throw new ChannelAuthenticationException($"{peer}: the peer is not a Remus TLS endpoint (it sent {Convert.ToHexString(got)} after the handshake)");
                    return true;
                }
                catch (Exception e) when (e is AuthenticationException or IOException && !ct.IsCancellationRequested)
                {
                    throw Explain(e, peer, verdict, seen, authenticated, accepting);
                }
            });
        }
        catch
        {
            own.Dispose();
            throw;
        }
        return new TlsStream(ssl, peer);
    }

    private static ChannelAuthenticationException Explain(Exception e, string peer, Verdict verdict, FirstBytes seen, bool authenticated, bool accepting)
    {
        if (verdict.Refusal is not null) return new($"{peer}: {verdict.Refusal}", e);
        if (authenticated)
            return new(accepting
                ? $"{peer}: the TLS connection broke right after the handshake: {HandshakeDeadline.OneLine(e)}"
                : $"{peer}: the peer refused our certificate (it must chain to the CA the peer trusts): {HandshakeDeadline.OneLine(e)}", e);
        string? what = seen.Describe();
        if (what is null) return new($"{peer}: the peer closed the connection before the TLS handshake", e);
        if (seen.Seen[0] != 0x16) return new($"{peer}: the peer is not a Remus TLS endpoint ({what})", e);
        return new($"{peer}: the TLS handshake failed (does our certificate chain to the peer's CA?): {HandshakeDeadline.OneLine(e)}", e);
    }

    /// <summary>Custom root trust in the CA file only; the EKU for the peer's role; no host name.</summary>
    private static bool Validate(X509Certificate? certificate, X509Chain? sent, X509Certificate2Collection ca, string caFile, bool accepting, Verdict verdict)
    {
        if (certificate is null)
        {
            verdict.Refusal = "the peer sent no certificate (TLS needs --tls-cert/--tls-key/--tls-ca on both ends)";
            return false;
        }
        using var peerCert = new X509Certificate2(certificate);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(ca);
        // Intermediates the peer sent may complete the path; they are never anchors (custom root trust: only the CA file).
        if (sent is not null) chain.ChainPolicy.ExtraStore.AddRange(sent.ChainPolicy.ExtraStore);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid(accepting ? ClientAuth : ServerAuth));
        if (chain.Build(peerCert))
            return true;
        X509ChainStatusFlags flags = chain.ChainStatus.Aggregate(X509ChainStatusFlags.NoError, (f, s) => f | s.Status);
        verdict.Refusal =
            (flags & ~X509ChainStatusFlags.NotValidForUsage) == 0
                ? $"the peer's certificate ({peerCert.Subject}) is not for TLS {(accepting ? "client" : "server")} authentication (extended key usage)"
            : (flags & ~(X509ChainStatusFlags.NotTimeValid | X509ChainStatusFlags.NotTimeNested)) == 0
                ? $"the peer's certificate ({peerCert.Subject}) has expired or is not yet valid"
            : $"the peer's certificate ({peerCert.Subject}) does not chain to the CA {caFile}";
        return false;
    }

    private static (X509Certificate2 Own, X509Certificate2Collection Chain, X509Certificate2Collection Ca) LoadFiles(ChannelSecurity security)
    {
        if (security.CertFile is null || security.KeyFile is null || security.CaFile is null)
            throw new RemusException("TLS needs a certificate, its key and the CA (--tls-cert FILE --tls-key FILE --tls-ca FILE)");
        X509Certificate2 own;
        try { own = X509Certificate2.CreateFromPemFile(security.CertFile, security.KeyFile); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            throw new RemusException($"cannot use the TLS certificate {security.CertFile} with the key {security.KeyFile}: {HandshakeDeadline.OneLine(e)}", e);
        }
        // Certificates after the first in the certificate file are intermediates, sent along with ours.
        var chain = new X509Certificate2Collection();
        try { chain.ImportFromPemFile(security.CertFile); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            own.Dispose();
            throw new RemusException($"cannot read the TLS certificate {security.CertFile}: {HandshakeDeadline.OneLine(e)}", e);
        }
        if (chain.Count > 0) chain.RemoveAt(0);
        var ca = new X509Certificate2Collection();
        try { ca.ImportFromPemFile(security.CaFile); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            own.Dispose();
            throw new RemusException($"cannot read the TLS CA {security.CaFile}: {HandshakeDeadline.OneLine(e)}", e);
        }
        if (ca.Count == 0)
        {
            own.Dispose();
            throw new RemusException($"the TLS CA {security.CaFile} holds no PEM certificate");
        }
        return (own, chain, ca);
    }

    private sealed class Verdict
    {
        public volatile string? Refusal;
    }
}
