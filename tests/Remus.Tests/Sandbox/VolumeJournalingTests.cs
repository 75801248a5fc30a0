using System.Text;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Sandbox.Volumes;
using Remus.Tests.Checkpoint;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Sandbox;

/// <summary>
/// Every change a program makes to a volume reaches the journal (<see cref="IVolumeJournal"/>) after it succeeded on
/// the host, in order, with canonical paths (symlinks resolved, renames of directories above followed), the offset a
/// write really went to (O_APPEND: the end), the resulting mode (umask applied) and times; an open file the program
/// unlinks goes to .remus-orphans (a rename) and is unlinked there at its last close (tests/guests/volumes/fileapi.c
/// journal mode).
/// </summary>
public sealed class VolumeJournalingTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"remus-vol-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private sealed class Recorder : IVolumeJournal
    {
        public List<string> Entries { get; } = [];
        private void Add(string s) { lock (Entries) Entries.Add(s); }
        public void Created(int volume, string path, uint mode) => Add($"{volume} created {path} {Convert.ToString(mode, 8)}");
        public void Wrote(int volume, string path, long offset, ReadOnlySpan<byte> data) => Add($"{volume} wrote {path} @{offset} \"{Encoding.ASCII.GetString(data)}\"");
        public void Truncated(int volume, string path, long size) => Add($"{volume} truncated {path} {size}");
        public void Allocated(int volume, string path, long offset, long length) => Add($"{volume} allocated {path} {offset}+{length}");
        public void MadeDirectory(int volume, string path, uint mode) => Add($"{volume} mkdir {path} {Convert.ToString(mode, 8)}");
        public void RemovedDirectory(int volume, string path) => Add($"{volume} rmdir {path}");
        public void Unlinked(int volume, string path) => Add($"{volume} unlink {path}");
        public void Renamed(int volume, string from, string to, uint flags) => Add($"{volume} rename {from} {to} {flags}");
        public void Linked(int volume, string existing, string newPath) => Add($"{volume} link {existing} {newPath}");
        public void Symlinked(int volume, string target, string path) => Add($"{volume} symlink {target} {path}");
        public void ChangedMode(int volume, string path, uint mode) => Add($"{volume} chmod {path} {Convert.ToString(mode, 8)}");
        public void ChangedTimes(int volume, string path, long atimeNs, long mtimeNs) => Add($"{volume} times {path} {atimeNs} {mtimeNs}");
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Each_change_is_journaled_in_order_with_canonical_paths(PlatformKind platform)
    {
        Platforms.Require(platform);
        var spec = new DomainSpec
        {
            ProgramPath = GuestBuilder.Build("volumes/fileapi"),
            Args = ["/work", "journal"],
            MemoryMiB = 64,
            Platform = platform,
            // A second volume first, so that the one used is index 1.
            Volumes = [new VolumeSpec { GuestPath = "/tmp", Tmpfs = true }, new VolumeSpec { HostPath = _dir, GuestPath = "/work" }],
        };
        var console = new RecordingConsole();
        var journal = new Recorder();
        using (var d = new RunningDomain(CreateWithJournal(spec, console, journal)))
            Assert.Equal(0, d.Wait(TimeSpan.FromSeconds(120)));
        Assert.Equal("done\n", console.Text);
        string[] expected =
        [
            "1 mkdir d 750",
            "1 created d/f 644",
            "1 wrote d/f @0 \"abc\"",
            "1 wrote d/f @3 \"de\"",
            "1 wrote d/f @0 \"Z\"",
            "1 truncated d/f 4",
            "1 allocated d/f 0+100",
            "1 symlink d ln",
            "1 created d/g 600",
            "1 rename d/g d/h 0",
            "1 link d/h k",
            "1 chmod d/h 640",
            "1 times k 1000000002 3000000004",
            "1 unlink k",
            "1 mkdir .remus-orphans 700",
            "1 rename d/f .remus-orphans/0 0",
            "1 wrote .remus-orphans/0 @100 \"x\"",
            "1 unlink .remus-orphans/0",
            "1 rename d e 0",
            "1 unlink e/h",
            "1 rmdir e",
            "1 created t 644",
            "1 wrote t @0 \"1\"",
            "1 truncated t 0",
        ];
        Assert.Equal(expected, journal.Entries);
        Assert.Equal([".remus-orphans", "ln", "t"], Directory.EnumerateFileSystemEntries(_dir).Select(Path.GetFileName).Order());
    }

    private static SandboxDomain CreateWithJournal(DomainSpec spec, RecordingConsole console, IVolumeJournal journal)
    {
        var d = SandboxDomain.Create(spec, console);
        d.VolumeTable.Journal = journal;
        return d;
    }
}
