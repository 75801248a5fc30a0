using Remus.Tests.Net.Interop;
using Xunit;

namespace Remus.Tests.Net;

/// <summary>The interop tests' bad wire: seeded drops, one-frame-late reordering and duplicates of IPv4 frames only.</summary>
public sealed class LossyRelayTests
{
    private static byte[] Frame(int n, bool ipv4 = true)
    {
        var f = new byte[60];
        f[12] = 0x08;
        f[13] = ipv4 ? (byte)0x00 : (byte)0x06; // 0x0806 ARP
        f[20] = (byte)n;
        f[21] = (byte)(n >> 8);
        return f;
    }

    private static (List<int> Out, LossyRelay Relay) Run(LossProfile p, int count, bool ipv4 = true, int seed = 5)
    {
        var got = new List<int>();
        var relay = new LossyRelay(new DelegateLink(f => got.Add(f[20] | (f[21] << 8))), p, seed);
        for (int i = 0; i < count; i++) relay.SendFrame(Frame(i, ipv4));
        relay.ReleaseHeld();
        return (got, relay);
    }

    [Fact]
    public void NoLoss_PassesEveryFrameInOrder()
    {
        var (got, _) = Run(LossProfile.None, 1000);
        Assert.Equal(Enumerable.Range(0, 1000), got);
    }

    [Fact]
    public void Drop_LosesAboutThatShare_AndKeepsTheRestInOrder()
    {
        var (got, relay) = Run(new LossProfile(0.05, 0, 0), 10000);
        Assert.Equal(10000 - relay.Dropped, got.Count);
        Assert.InRange(relay.Dropped, 300, 700); // 5% of 10000, seeded: the same count every run
        Assert.Equal(got.Order(), got);
    }

    [Fact]
    public void Reorder_SendsAHeldFrameRightAfterTheNext_LosingNone()
    {
        var (got, relay) = Run(new LossProfile(0, 0.1, 0), 10000);
        Assert.Equal(Enumerable.Range(0, 10000), got.Order());
        Assert.True(relay.Reordered > 500, relay.ToString());
        int swapped = 0;
        for (int i = 0; i + 1 < got.Count; i++)
        {
            if (got[i] > got[i + 1])
            {
                Assert.Equal(got[i] - 1, got[i + 1]); // held back by exactly one frame
                swapped++;
            }
        }
        Assert.Equal(relay.Reordered, swapped);
    }

    [Fact]
    public void Duplicate_SendsSomeFramesTwiceInARow()
    {
        var (got, relay) = Run(new LossProfile(0, 0, 0.05), 10000);
        Assert.Equal(10000 + relay.Duplicated, got.Count);
        Assert.True(relay.Duplicated > 300, relay.ToString());
        Assert.Equal(Enumerable.Range(0, 10000), got.Distinct());
    }

    [Fact]
    public void NonIPv4Frames_PassUntouched_UnlessCut()
    {
        var (got, _) = Run(new LossProfile(0.5, 0.5, 0.5), 1000, ipv4: false);
        Assert.Equal(Enumerable.Range(0, 1000), got);
        var cut = new List<int>();
        var relay = new LossyRelay(new DelegateLink(f => cut.Add(f[20])), LossProfile.None, 1) { Cut = true };
        relay.SendFrame(Frame(1, ipv4: false));
        relay.SendFrame(Frame(2));
        Assert.Empty(cut);
        Assert.Equal(2, relay.Dropped);
    }

    [Fact]
    public void SameSeed_SameFate()
    {
        var p = new LossProfile(0.04, 0.04, 0.04);
        Assert.Equal(Run(p, 5000, seed: 9).Out, Run(p, 5000, seed: 9).Out);
        Assert.NotEqual(Run(p, 5000, seed: 9).Out, Run(p, 5000, seed: 10).Out);
    }
}
