using System.Text.Json;

namespace Remus.Simulation;

/// <summary>
/// What the simulated guest is: its memory size, how many pages each step dirties, its pace, and whether (and
/// where) it exits. Travels as the stream header's domain configuration (UTF-8 JSON), so the backup builds the same
/// guest from it.
/// </summary>
public sealed record GuestConfig
{
    /// <summary>Seeds the page choice, the page contents and the payloads.</summary>
    public ulong Seed { get; init; }

    /// <summary>Guest pages, page 0 (the platform's) and page 1 (the counter) included.</summary>
    public int Pages { get; init; } = 48;

    /// <summary>Pages written per step besides the counter page and the hot page.</summary>
    public int DirtyPerStep { get; init; } = 2;

    /// <summary>Steps (lines) between two 1 ms sleeps: the pace of the guest.</summary>
    public int StepsPerTick { get; init; } = 2;

    /// <summary>The counter of the guest's last line, after which it exits; -1: it runs until stopped.</summary>
    public long ExitAt { get; init; } = -1;

    /// <summary>The last lines before the exit say so ("exiting").</summary>
    public int FinalLines { get; init; } = 2;

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this);

    public static GuestConfig FromJson(ReadOnlySpan<byte> json) =>
        JsonSerializer.Deserialize<GuestConfig>(json) ?? throw new InvalidDataException("no guest configuration");

    /// <summary>A fingerprint of the configuration, kept in the guest's counter page and kernel state.</summary>
    public ulong Fingerprint =>
        SimHash.Of(Seed, (ulong)Pages << 32 | (uint)DirtyPerStep, SimHash.Of((ulong)StepsPerTick, (ulong)ExitAt, (ulong)FinalLines));

    public override string ToString() =>
        $"pages={Pages} dirty/step={DirtyPerStep} steps/ms={StepsPerTick} exit={(ExitAt < 0 ? "never" : $"after n={ExitAt}")}";
}
