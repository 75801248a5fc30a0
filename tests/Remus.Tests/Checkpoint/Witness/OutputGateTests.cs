using Remus.Checkpoint.Remus;
using Remus.Checkpoint.Witness;
using Xunit;

namespace Remus.Tests.Checkpoint.Witness;

/// <summary>
/// The witness gate of output commit (docs/witness.md rule 2): with a lease, nothing reaches the world unless the
/// lease is valid at that moment; what cannot go out stays held, in order, never dropped, until it is valid again.
/// </summary>
public class OutputGateTests
{
    /// <summary>A lease whose validity the test sets.</summary>
    private sealed class Lease : IWitnessLease
    {
        public volatile bool Valid = true;
        public long ValidUntil => Valid ? long.MaxValue : long.MinValue;
        public bool Lost => false;
        public TimeSpan Ttl => TimeSpan.FromSeconds(1);
        public void NoteEpoch(ulong epoch) { }
        public void Dispose() { }
    }

    private static void Say(OutputCommitConsole c, string s) => c.Write(1, System.Text.Encoding.UTF8.GetBytes(s));

    [Fact]
    public void An_acked_epoch_is_held_while_the_lease_is_not_valid_and_released_in_order_when_it_is()
    {
        var world = new RecordingConsole();
        var lease = new Lease();
        var c = new OutputCommitConsole(world) { Lease = lease };
        c.StartHolding();
        Say(c, "1\n");
        c.SealEpoch(1);
        Assert.True(c.Release(1));
        Assert.Equal("1\n", world.Text);

        lease.Valid = false;
        Say(c, "2\n");
        c.SealEpoch(2);
        Say(c, "3\n");
        c.SealEpoch(3);
        Assert.False(c.Release(2)); // acked, but the lease is not certainly valid: held
        Assert.False(c.Flush());
        Assert.Equal("1\n", world.Text); // without the gate: "1\n2\n"
        Assert.True(c.HeldByLease);

        lease.Valid = true;
        Assert.True(c.Flush());
        Assert.Equal("1\n2\n", world.Text); // epoch 3 was not acked: still held by the protocol, not by the lease
        Assert.False(c.HeldByLease);
        Assert.True(c.Release(3));
        Assert.Equal("1\n2\n3\n", world.Text);
    }

    [Fact]
    public void Unprotected_output_is_held_while_the_lease_is_not_valid_and_keeps_its_order()
    {
        var world = new RecordingConsole();
        var lease = new Lease();
        var c = new OutputCommitConsole(world) { Lease = lease };
        c.StartHolding();
        Say(c, "1\n");
        c.SealEpoch(1);
        Say(c, "2\n");
        lease.Valid = false;
        c.StopHolding(); // the backup is lost while the witness is too
        Say(c, "3\n");
        Assert.Equal("", world.Text); // without the gate: everything out at once
        lease.Valid = true;
        Say(c, "4\n"); // still behind what is held: held too, so the order is kept
        Assert.Equal("", world.Text);
        Assert.True(c.Flush());
        Assert.Equal("1\n2\n3\n4\n", world.Text);
        Say(c, "5\n");
        Assert.Equal("1\n2\n3\n4\n5\n", world.Text); // straight through again
    }

    [Fact]
    public void A_fence_drops_what_the_gate_held_and_removing_the_lease_lets_it_out()
    {
        var world = new RecordingConsole();
        var lease = new Lease { Valid = false };
        var c = new OutputCommitConsole(world) { Lease = lease };
        c.StartHolding();
        Say(c, "1\n");
        c.SealEpoch(1);
        c.Release(1);
        c.Lease = null; // protection stopped with the key given up: what was held goes out
        Assert.Equal("1\n", world.Text);

        var fenced = new OutputCommitConsole(world) { Lease = lease };
        fenced.StartHolding();
        Say(fenced, "2\n");
        fenced.SealEpoch(1);
        fenced.Release(1);
        fenced.Fence();
        lease.Valid = true;
        Assert.False(fenced.Flush());
        Assert.Equal("1\n", world.Text);
    }
}
