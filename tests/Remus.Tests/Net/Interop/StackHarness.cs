using System.Diagnostics;
using Remus.Sandbox.Net;
using Remus.Sandbox.Platform.Net;

namespace Remus.Tests.Net.Interop;

/// <summary>
/// The domain's TCP/IP stack (<see cref="NetStack"/>) outside any domain, wired the way the VMM wires it: its link is
/// a tap device in a test network namespace whose host side has <see cref="HostAddress"/> (the Linux peer's address),
/// a pump thread feeds the tap's frames in, and a timer thread runs the stack's timers, all under one lock (the
/// kernel lock's stand-in). A <see cref="LossyRelay"/> sits on each direction (<see cref="Outbound"/>: stack to Linux,
/// <see cref="Inbound"/>: Linux to stack).
/// </summary>
internal sealed class StackHarness : IDisposable
{
    public static readonly IPv4Address StackAddress = new(0x0A630002); // 10.99.0.2
    public static readonly IPv4Address HostAddress = new(0x0A630001);  // 10.99.0.1
    public const string StackIp = "10.99.0.2";
    public const string HostIp = "10.99.0.1";

    private readonly Stopwatch clock = Stopwatch.StartNew();
    private readonly TapDevice tap;
    private readonly AutoResetEvent timerKick = new(false);
    private readonly Thread pump, timer;
    private volatile bool stopping;
    private Exception? threadFailure;

    /// <param name="netns">an existing network namespace (the test's) to create the tap in</param>
    /// <param name="tapName">the tap's name (at most 15 characters)</param>
    public StackHarness(string netns, string tapName, LossProfile? loss = null, int seed = 1)
    {
        Netns = netns;
        TapName = tapName;
        tap = TapDevice.Create(TapName, netns);
        try
        {
            using (var ifc = InterfaceControl.Open(netns))
            {
                ifc.SetAddress(TapName, HostAddress, 24);
                ifc.SetUp(TapName);
            }
            var spec = new NetworkSpec
            {
                Tap = TapName,
                Address = StackAddress,
                PrefixLength = 24,
                HostAddress = HostAddress,
                HostPrefixLength = 24,
                Mac = MacAddress.FromName(TapName),
            };
            Stack = new NetStack(() => clock.Elapsed.Ticks * 100, spec) { DeadlineMoved = () => timerKick.Set() };
            Outbound = new LossyRelay(new DelegateLink(f => tap.WriteFrame(f)), loss ?? LossProfile.None, seed);
            Inbound = new LossyRelay(new DelegateLink(f => Stack.ReceiveFrame(f)), loss ?? LossProfile.None, seed * 7919 + 1);
            lock (Lock)
            {
                Stack.AttachLink(Outbound);
                Stack.AnnounceAddress();
            }
        }
        catch
        {
            tap.Dispose();
            throw;
        }
        pump = new Thread(Pump) { IsBackground = true, Name = $"pump {TapName}" };
        timer = new Thread(Timers) { IsBackground = true, Name = $"timers {TapName}" };
        pump.Start();
        timer.Start();
    }

    /// <summary>The kernel lock's stand-in: every stack call is made holding it.</summary>
    public object Lock { get; } = new();

    public NetStack Stack { get; }
    public string Netns { get; }
    public string TapName { get; }

    /// <summary>Frames the stack sends, on their way to the tap.</summary>
    public LossyRelay Outbound { get; }

    /// <summary>Frames from the tap, on their way into the stack.</summary>
    public LossyRelay Inbound { get; }

    /// <summary>Sets both directions' loss.</summary>
    public LossProfile Loss
    {
        set
        {
            lock (Lock) Outbound.Profile = Inbound.Profile = value;
        }
    }

    /// <summary>Runs <paramref name="f"/> under the lock.</summary>
    public T Locked<T>(Func<NetStack, T> f)
    {
        lock (Lock) return f(Stack);
    }

    /// <summary>A new stack socket (SOCK_STREAM 1, SOCK_DGRAM 2) with blocking helpers.</summary>
    public StackSocket Socket(int type = 1)
    {
        lock (Lock)
        {
            long r = Stack.CreateSocket(type, 0, out var s);
            if (r != 0 || s is null) throw new InvalidOperationException($"CreateSocket({type}) = {r}");
            return new StackSocket(this, s);
        }
    }

    /// <summary>Throws what a pump or timer thread died of (the tests check it at their end).</summary>
    public void ThrowIfThreadFailed()
    {
        if (threadFailure is { } e) throw new InvalidOperationException($"a harness thread failed: {e.Message}", e);
    }

    private void Pump()
    {
        var buffer = new byte[65536];
        try
        {
            while (!stopping)
            {
                int n = tap.ReadFrame(buffer, timeoutMs: 20);
                lock (Lock)
                {
                    if (n > 0) Inbound.SendFrame(buffer.AsSpan(0, n));
                    else
                    {
                        // The wire went quiet: a frame held back for reordering goes now.
                        Inbound.ReleaseHeld();
                        Outbound.ReleaseHeld();
                    }
                }
            }
        }
        catch (Exception e)
        {
            threadFailure ??= e;
        }
    }

    private void Timers()
    {
        try
        {
            while (!stopping)
            {
                long waitNs;
                lock (Lock)
                {
                    long now = clock.Elapsed.Ticks * 100, next = Stack.NextDeadlineNs;
                    if (next <= now)
                    {
                        Stack.RunTimers();
                        continue;
                    }
                    waitNs = next - now;
                }
                timerKick.WaitOne(waitNs >= 1_000_000_000L ? 1000 : (int)(waitNs / 1_000_000) + 1);
            }
        }
        catch (Exception e)
        {
            threadFailure ??= e;
        }
    }

    public void Dispose()
    {
        stopping = true;
        tap.Interrupt();
        timerKick.Set();
        pump.Join(TimeSpan.FromSeconds(10));
        timer.Join(TimeSpan.FromSeconds(10));
        tap.Dispose();
        timerKick.Dispose();
    }
}
