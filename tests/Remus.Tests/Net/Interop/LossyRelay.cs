using Remus.Sandbox.Net;

namespace Remus.Tests.Net.Interop;

/// <summary>How a <see cref="LossyRelay"/> mistreats IPv4 frames (each a probability per frame, 0 to 1).</summary>
public sealed record LossProfile(double Drop, double Reorder, double Duplicate)
{
    public static readonly LossProfile None = new(0, 0, 0);

    public bool IsNone => Drop == 0 && Reorder == 0 && Duplicate == 0;

    public override string ToString() => $"drop {Drop:P0}, reorder {Reorder:P0}, duplicate {Duplicate:P0}";
}

/// <summary>
/// A bad wire between the stack and the tap, one per direction (tc netem does not exist on this kernel): it drops an
/// IPv4 frame with <see cref="LossProfile.Drop"/>, holds one back and sends it after the next with
/// <see cref="LossProfile.Reorder"/>, sends one twice with <see cref="LossProfile.Duplicate"/>, from a seeded
/// generator. ARP and other non-IPv4 frames pass untouched (the link layer is not what the tests are about). It can
/// also be cut (every frame dropped) and counts what it saw. Called under the harness's lock, like any INetLink.
/// </summary>
public sealed class LossyRelay(INetLink next, LossProfile profile, int seed) : INetLink
{

    private readonly Random random = new(seed);
    private readonly byte[] held = new byte[2048];
    private int heldLength;

    public LossProfile Profile { get; set; } = profile;

    /// <summary>Drop every frame (IPv4 or not), as an unplugged cable.</summary>
    public bool Cut { get; set; }

    /// <summary>Called for every frame offered (before any loss), under the caller's lock: tests watch the wire here.</summary>
    public Action<ReadOnlySpan<byte>>? Observe { get; set; }

    /// <summary>Called for every frame this relay passes on (duplicates twice, held ones when released): what the far side got.</summary>
    public Action<ReadOnlySpan<byte>>? Delivered { get; set; }

    public long Frames { get; private set; }
    public long Dropped { get; private set; }
    public long Reordered { get; private set; }
    public long Duplicated { get; private set; }

    public void SendFrame(ReadOnlySpan<byte> frame)
    {
        Frames++;
        Observe?.Invoke(frame);
        if (Cut)
        {
            Dropped++;
            return;
        }
        var p = Profile;
        if (p.IsNone || !IsIPv4(frame))
        {
            Pass(frame);
            return;
        }
        if (random.NextDouble() < p.Drop)
        {
            Dropped++;
            return;
        }
        if (heldLength == 0 && random.NextDouble() < p.Reorder && frame.Length <= held.Length)
        {
            frame.CopyTo(held);
            heldLength = frame.Length;
            Reordered++;
            return; // goes out after the next frame
        }
        Pass(frame);
        if (random.NextDouble() < p.Duplicate)
        {
            Pass(frame);
            Duplicated++;
        }
        ReleaseHeld();
    }

    /// <summary>Sends a frame held back for reordering now (the harness calls it when the wire goes quiet).</summary>
    public void ReleaseHeld()
    {
        if (heldLength == 0) return;
        int n = heldLength;
        heldLength = 0;
        Pass(held.AsSpan(0, n));
    }

    private void Pass(ReadOnlySpan<byte> frame)
    {
        Delivered?.Invoke(frame);
        next.SendFrame(frame);
    }

    public override string ToString() =>
        $"{Frames} frames: {Dropped} dropped, {Reordered} reordered, {Duplicated} duplicated ({Profile})";

    private static bool IsIPv4(ReadOnlySpan<byte> frame) => frame.Length >= 14 && frame[12] == 0x08 && frame[13] == 0x00;
}

/// <summary>An INetLink that hands frames to a function (the tap's write, or the stack's receive).</summary>
public sealed class DelegateLink(DelegateLink.Sink sink) : INetLink
{
    public delegate void Sink(ReadOnlySpan<byte> frame);

    public void SendFrame(ReadOnlySpan<byte> frame) => sink(frame);
}
