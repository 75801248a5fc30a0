namespace Remus.Checkpoint.Remus;

/// <summary>What `remus list --json` shows of a protected domain.</summary>
public sealed record RemusStats(
    long Epochs, double PauseP50Ms, double PauseP99Ms, double BytesPerEpoch, double CompressionRatio, double AckLatencyMs,
    double PagesPerEpoch = 0)
{
    /// <summary>Output commit on the wire: the domain's frames held and released, and how long they were held.</summary>
    public NetOutputStats? Net { get; init; }
}

/// <summary>Rolling figures of the epoch loop (the last 1000 epochs).</summary>
internal sealed class RemusCounters
{
    private const int Window = 1000;
    private readonly double[] _pause = new double[Window], _ack = new double[Window];
    private readonly long[] _bytes = new long[Window], _pages = new long[Window];
    private long _epochs;
    private double _ratio = 1;

    public void Record(double pauseMs, double ackMs, long bytes, double ratio, long pages)
    {
        lock (this)
        {
            int i = (int)(_epochs % Window);
            _pages[i] = pages;
            _pause[i] = pauseMs;
            _ack[i] = ackMs;
            _bytes[i] = bytes;
            _ratio = ratio;
            _epochs++;
        }
    }

    public RemusStats Snapshot()
    {
        lock (this)
        {
            int n = (int)Math.Min(_epochs, Window);
            if (n == 0) return new RemusStats(0, 0, 0, 0, 1, 0);
            var p = _pause.Take(n).Order().ToArray();
            var a = _ack.Take(n).Order().ToArray();
            return new RemusStats(_epochs, p[n / 2], p[Math.Min(n - 1, (int)(n * 0.99))], _bytes.Take(n).Average(), _ratio, a[n / 2],
                _pages.Take(n).Average());
        }
    }
}
