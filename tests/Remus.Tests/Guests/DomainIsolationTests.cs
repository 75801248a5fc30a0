using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Guests;

/// <summary>Where a domain must differ from a native run: it sees only the --file paths, and only --memory of RAM.</summary>
public sealed class DomainIsolationTests
{
    public static TheoryData<string> Libcs
    {
        get
        {
            var d = new TheoryData<string>();
            foreach (var f in GuestBuilder.Libcs) d.Add(f.ToString());
            return d;
        }
    }

    [Theory]
    [MemberData(nameof(Libcs))]
    public void Only_files_given_with_file_can_be_opened(string flavor)
    {
        var root = GuestFiles.Root;
        string[] probes =
        [
            $"{root}/data.bin",            // listed file
            "/etc/passwd",                 // host file, not listed
            $"{root}/tree/alpha.txt",      // inside a listed directory
            $"{root}/tree/sub/inner.txt",  // deeper inside a listed directory
            $"{root}/unlisted.txt",        // sibling of a listed file
            $"{root}/tree/../unlisted.txt", // escaping a listed directory with ..
        ];
        var inv = new GuestInvocation(GuestBuilder.Build("files", Enum.Parse<GuestFlavor>(flavor)))
        {
            Args = ["probe", .. probes],
            Files = [$"{root}/data.bin", $"{root}/tree"],
        };

        var native = NativeRun.Run(inv);
        Assert.Equal(string.Concat(probes.Select(p => $"probe {p}: ok\n")), native.StdoutText); // they all exist on the host

        var domain = RemusCli.Run(inv);
        string[] expected = ["ok", "denied", "ok", "ok", "denied", "denied"];
        Assert.Equal(string.Concat(probes.Zip(expected, (p, e) => $"probe {p}: {e}\n")), domain.StdoutText);
        Assert.Equal("", domain.StderrText);
        Assert.Equal(0, domain.ExitCode);
    }

    [Theory]
    [MemberData(nameof(Libcs))]
    public void Allocating_more_than_the_domain_memory_fails_cleanly(string flavor)
    {
        var inv = new GuestInvocation(GuestBuilder.Build("memtouch", Enum.Parse<GuestFlavor>(flavor)))
        {
            Args = ["200"],
            MemoryMiB = 64,
        };
        var domain = RemusCli.Run(inv);
        Assert.True(domain.ExitCode == 3 && domain.StderrText == "allocation of 200 MiB failed\n" && domain.Stdout.Length == 0,
            $"expected malloc to fail inside a 64 MiB domain (exit 3):\n{domain}");
    }

    [Theory]
    [MemberData(nameof(Libcs))]
    public void A_guest_writing_half_of_a_small_domain_twice_exits_cleanly(string flavor)
    {
        var inv = new GuestInvocation(GuestBuilder.Build("memtouch", Enum.Parse<GuestFlavor>(flavor)))
        {
            Args = ["16", "2"],
            MemoryMiB = 32,
        };
        var native = NativeRun.Run(inv);
        Assert.Equal(0, native.ExitCode);
        GuestAssert.SameAsNative(native, RemusCli.Run(inv), inv);
    }
}
