using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Remus.Toolstack.Security;

namespace Remus.Tests.Support;

/// <summary>
/// A throw-away private PKI for the issue-13 tests, as PEM files in a temp directory (0700, keys 0600):
/// <list type="bullet">
/// <item><see cref="CaFile"/>: the Remus CA; <see cref="HostA"/> and <see cref="HostB"/>: host certificates signed by it
/// (EKU server + client authentication, SAN 127.0.0.1/localhost);</item>
/// <item><see cref="ForeignCaFile"/>: another CA, and <see cref="ForeignHost"/>: a host certificate signed by that one
/// (valid in every other way: the tests of "does not chain to the CA");</item>
/// <item><see cref="HostViaIntermediate"/>: a host certificate signed by an intermediate CA that the Remus CA signed;
/// its certificate file holds the host certificate and then the intermediate (the CA file stays the root alone);</item>
/// <item><see cref="PskFile"/> and <see cref="OtherPskFile"/>: two random pre-shared keys (32 random bytes, base64, one line).</item>
/// </list>
/// ECDSA P-256 keys: cheap to make. Dispose removes the directory.
/// </summary>
public sealed class TestPki : IDisposable
{
    /// <summary>One host's certificate and private key, as PEM files.</summary>
    public sealed record Host(string CertFile, string KeyFile);

    public string Dir { get; }
    public string CaFile { get; }
    public Host HostA { get; }
    public Host HostB { get; }
    public Host HostViaIntermediate { get; }
    public string ForeignCaFile { get; }
    public Host ForeignHost { get; }
    public string PskFile { get; }
    public string OtherPskFile { get; }

    public TestPki()
    {
        Dir = Directory.CreateTempSubdirectory("remus-pki-").FullName;
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(Dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        using ECDsa caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using X509Certificate2 ca = MakeCa("Remus Test CA", caKey);
        CaFile = WritePublic("ca.pem", ca.ExportCertificatePem());
        HostA = MakeHost("host-a", ca, caKey);
        HostB = MakeHost("host-b", ca, caKey);
        using ECDsa intermediateKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using X509Certificate2 intermediate = MakeIntermediate("Remus Test Intermediate CA", intermediateKey, ca, caKey);
        HostViaIntermediate = MakeHost("host-via-intermediate", intermediate, intermediateKey);
        File.AppendAllText(HostViaIntermediate.CertFile, intermediate.ExportCertificatePem() + "\n");

        using ECDsa foreignKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using X509Certificate2 foreign = MakeCa("Foreign Test CA", foreignKey);
        ForeignCaFile = WritePublic("foreign-ca.pem", foreign.ExportCertificatePem());
        ForeignHost = MakeHost("foreign-host", foreign, foreignKey);

        PskFile = WriteSecret("psk", Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) + "\n");
        OtherPskFile = WriteSecret("other-psk", Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) + "\n");
    }

    /// <summary>TLS with <paramref name="host"/>'s certificate, trusting <paramref name="caFile"/> (the Remus CA by default).</summary>
    public ChannelSecurity Tls(Host host, string? caFile = null) => new()
    {
        Mode = ChannelMode.Tls, CertFile = host.CertFile, KeyFile = host.KeyFile, CaFile = caFile ?? CaFile,
    };

    /// <summary>PSK with <paramref name="pskFile"/> (<see cref="PskFile"/> by default).</summary>
    public ChannelSecurity Psk(string? pskFile = null) => new() { Mode = ChannelMode.Psk, PskFile = pskFile ?? PskFile };

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static X509Certificate2 MakeCa(string name, ECDsa key)
    {
        var req = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 1, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        DateTimeOffset now = DateTimeOffset.UtcNow;
        return req.CreateSelfSigned(now.AddDays(-1), now.AddYears(5));
    }

    private static X509Certificate2 MakeIntermediate(string name, ECDsa key, X509Certificate2 ca, ECDsa caKey)
    {
        var req = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        req.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        DateTimeOffset now = DateTimeOffset.UtcNow;
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using X509Certificate2 cert = req.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey),
            now.AddDays(-1), now.AddYears(2), serial);
        return cert.CopyWithPrivateKey(key);
    }

    private Host MakeHost(string name, X509Certificate2 ca, ECDsa caKey)
    {
        using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false)); // server + client authentication
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(name);
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        req.CertificateExtensions.Add(san.Build());
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        req.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        DateTimeOffset now = DateTimeOffset.UtcNow;
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using X509Certificate2 cert = req.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey),
            now.AddDays(-1), now.AddYears(1), serial);
        return new Host(
            WritePublic($"{name}.crt", cert.ExportCertificatePem()),
            WriteSecret($"{name}.key", key.ExportPkcs8PrivateKeyPem()));
    }

    private string WritePublic(string name, string pem)
    {
        string path = Path.Combine(Dir, name);
        File.WriteAllText(path, pem + "\n");
        return path;
    }

    private string WriteSecret(string name, string text)
    {
        string path = Path.Combine(Dir, name);
        using (File.Create(path)) { }
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.WriteAllText(path, text);
        return path;
    }
}
