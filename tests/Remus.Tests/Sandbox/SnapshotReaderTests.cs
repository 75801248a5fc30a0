using Remus.Sandbox.Kernel;
using Xunit;

namespace Remus.Tests.Sandbox;

/// <summary>
/// The kernel state comes from another host: a length inside it that is longer than the state itself is refused
/// before anything is allocated (BinaryReader.ReadBytes allocates the count it is given first).
/// </summary>
public class SnapshotReaderTests
{
    [Theory]
    [InlineData(int.MaxValue)]
    [InlineData(1 << 30)]
    [InlineData(17)]
    [InlineData(-1)]
    public void A_length_beyond_the_state_is_refused_without_allocating_it(int length)
    {
        var state = new byte[16];
        BitConverter.TryWriteBytes(state, length);
        using var r = new SnapshotReader(state);
        int n = r.ReadInt32();
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => r.ReadBytes(n));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "the refused length was allocated");
        Assert.Contains($"asks for {length} bytes where 12 are left", e.Message);
    }

    [Fact]
    public void A_length_within_the_state_reads_its_bytes()
    {
        byte[] state = [3, 0, 0, 0, 7, 8, 9];
        using var r = new SnapshotReader(state);
        Assert.Equal([7, 8, 9], r.ReadBytes(r.ReadInt32()));
        Assert.Empty(r.ReadBytes(0));
    }
}
