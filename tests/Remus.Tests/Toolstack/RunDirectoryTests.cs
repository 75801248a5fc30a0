using Remus.Toolstack.Registry;
using Xunit;

namespace Remus.Tests.Toolstack;

public sealed class RunDirectoryTests
{
    [Fact]
    public void Layout()
    {
        var run = new RunDirectory("/run/remus");
        Assert.Equal("/run/remus/lock", run.LockFile);
        Assert.Equal("/run/remus/next-id", run.NextIdFile);
        Assert.Equal("/run/remus/domains/3.json", run.RecordPath(3));
        Assert.Equal("/run/remus/domains/3.sock", run.SocketPath(3));
        Assert.Equal("/run/remus/logs/3.log", run.LogPath(3));
    }

    [Fact]
    public void EnsureExists_creates_the_folders()
    {
        var path = Path.Combine(Path.GetTempPath(), "rt-" + Guid.NewGuid().ToString("N")[..10], "nested");
        try
        {
            var run = new RunDirectory(path);
            run.EnsureExists();
            Assert.True(Directory.Exists(run.DomainsDirectory));
            Assert.True(Directory.Exists(run.LogsDirectory));
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
        }
    }
}
