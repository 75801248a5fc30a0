using Remus.Toolstack.Registry;
using Xunit;

namespace Remus.Tests.Toolstack;

public sealed class DomainIdAllocatorTests : IDisposable
{
    private readonly TempRunDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private int Allocate()
    {
        using var held = _dir.Run.Lock();
        return DomainIdAllocator.Allocate(_dir.Run, held);
    }

    [Fact]
    public void Ids_start_at_1_and_only_grow()
    {
        Assert.Equal([1, 2, 3], [Allocate(), Allocate(), Allocate()]);
        Assert.Equal("4", File.ReadAllText(_dir.Run.NextIdFile).Trim());
    }

    [Fact]
    public void Ids_are_not_reused_after_a_domain_is_gone()
    {
        var first = Allocate();
        File.WriteAllText(_dir.Run.RecordPath(first), "{}");
        File.Delete(_dir.Run.RecordPath(first));
        Assert.Equal(first + 1, Allocate());
    }

    [Fact]
    public void Skips_ids_that_still_have_an_entry_when_the_counter_was_lost()
    {
        File.WriteAllText(_dir.Run.RecordPath(1), "{}");
        File.WriteAllText(_dir.Run.SocketPath(2), "");
        Assert.Equal(3, Allocate());
    }

    [Fact]
    public void A_corrupt_counter_starts_over_safely()
    {
        File.WriteAllText(_dir.Run.NextIdFile, "garbage");
        Assert.Equal(1, Allocate());
        Assert.Equal(2, Allocate());
    }

    [Fact]
    public void Concurrent_allocations_are_unique()
    {
        var ids = new System.Collections.Concurrent.ConcurrentBag<int>();
        Parallel.For(0, 64, new ParallelOptions { MaxDegreeOfParallelism = 8 }, _ => ids.Add(Allocate()));
        Assert.Equal(Enumerable.Range(1, 64), ids.Order());
    }

    [Fact]
    public async Task The_lock_excludes_other_holders_until_released()
    {
        var first = _dir.Run.Lock();
        var acquired = new ManualResetEventSlim();
        var other = Task.Run(() =>
        {
            using var second = _dir.Run.Lock();
            acquired.Set();
        });
        Assert.False(acquired.Wait(200));
        first.Dispose();
        Assert.True(acquired.Wait(5000));
        await other;
    }
}
