using System.Security.Cryptography.X509Certificates;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Toolstack.Security;

/// <summary>The test PKI itself: host certificates load from PEM with their keys and chain to their own CA only.</summary>
public sealed class ChannelTestPkiTests
{
    [Fact]
    public void Host_certificates_chain_to_their_own_ca_and_not_to_the_other()
    {
        using var pki = new TestPki();
        Assert.True(Chains(pki.HostA, pki.CaFile));
        Assert.True(Chains(pki.HostB, pki.CaFile));
        Assert.True(Chains(pki.ForeignHost, pki.ForeignCaFile));
        Assert.False(Chains(pki.ForeignHost, pki.CaFile));
        Assert.False(Chains(pki.HostA, pki.ForeignCaFile));
        Assert.NotEqual(File.ReadAllText(pki.PskFile), File.ReadAllText(pki.OtherPskFile));
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(pki.HostA.KeyFile));
    }

    private static bool Chains(TestPki.Host host, string caFile)
    {
        using X509Certificate2 cert = X509Certificate2.CreateFromPemFile(host.CertFile, host.KeyFile);
        Assert.True(cert.HasPrivateKey);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.CustomTrustStore.ImportFromPemFile(caFile);
        return chain.Build(cert);
    }
}
