namespace Remus.Sandbox.Net;

/// <summary>
/// The stack's fixed sizes and timeouts, Linux's defaults where Linux has one (the sysctl named beside each). They bound
/// what a flood of frames, fragments or ARP can cost: every queue the network can fill is capped here.
/// </summary>
internal static class NetLimits
{
    /// <summary>The tap's MTU, and the loopback's (Linux's lo has 65536).</summary>
    public const int Mtu = 1500, LoopbackMtu = 65536;

    public const long Second = 1_000_000_000;

    // ARP (net.ipv4.neigh.default.*)
    /// <summary>Entries in the ARP cache (gc_thresh3 is 1024; a domain has one interface and few neighbours).</summary>
    public const int ArpMaxEntries = 256;
    /// <summary>
    /// What the datagrams held for an unresolved neighbour may be charged (each its bytes plus <see cref="DatagramOverhead"/>),
    /// the oldest dropped first: unres_qlen_bytes, 212992 (about 100 full frames, so a 64 KiB datagram's 45 fragments
    /// survive resolution; the old packet count, 3, would lose any fragmented datagram sent to a new neighbour); and
    /// what all of them together may be, so that a flood towards many neighbours stays bounded.
    /// </summary>
    public const int ArpQueueBytesPerNeighbour = 212992, ArpQueueBytes = 1024 * 1024;
    /// <summary>Broadcast requests before a neighbour is given up (mcast_solicit 3), unicast probes of a stale one (ucast_solicit 3).</summary>
    public const int ArpMaxProbes = 3;
    /// <summary>retrans_time_ms 1000, base_reachable_time_ms 30000, delay_first_probe_time 5 s.</summary>
    public const long ArpRetransNs = 1 * Second, ArpReachableNs = 30 * Second, ArpDelayNs = 5 * Second;

    // IPv4 reassembly (net.ipv4.ipfrag_*)
    /// <summary>Datagrams being reassembled at once.</summary>
    public const int ReassemblyMaxDatagrams = 64;
    /// <summary>Memory of all fragments held (ipfrag_high_thresh is 4 MiB), each charged its data plus <see cref="FragmentOverhead"/>.</summary>
    public const int ReassemblyMaxBytes = 4 * 1024 * 1024;
    public const int FragmentOverhead = 128;
    /// <summary>Fragments of one datagram (a 64 KiB datagram needs 45 of 1480 bytes).</summary>
    public const int ReassemblyMaxFragments = 128;
    /// <summary>ipfrag_time 30 s.</summary>
    public const long ReassemblyTimeoutNs = 30 * Second;

    // ICMP (icmp_msgs_per_sec, icmp_msgs_burst)
    public const int IcmpErrorsPerSecond = 1000, IcmpErrorBurst = 50;

    /// <summary>Datagrams waiting on the loopback at once (netdev_max_backlog 1000).</summary>
    public const int LoopbackQueueMax = 1000;

    // Sockets (net.core.*)
    /// <summary>rmem_default / wmem_default and rmem_max / wmem_max: 212992.</summary>
    public const int DefaultBuffer = 212992, MaxBuffer = 212992;
    /// <summary>SOCK_MIN_RCVBUF and SOCK_MIN_SNDBUF on x86-64.</summary>
    public const int MinRcvBuf = 2304, MinSndBuf = 4608;
    /// <summary>What a queued datagram costs beyond its bytes (Linux's SKB_TRUESIZE: sk_buff plus skb_shared_info).</summary>
    public const int DatagramOverhead = 576;
    /// <summary>
    /// What all UDP receive queues of the stack together may be charged (Linux's udp_mem, in bytes): past it a
    /// datagram is dropped even if its socket's SO_RCVBUF has room, so many sockets cannot hold unbounded memory.
    /// </summary>
    public const long UdpMemory = 32L * 1024 * 1024;

    /// <summary>Sockets of the stack at once (beyond: ENOBUFS).</summary>
    public const int MaxSockets = 16384;

    /// <summary>ip_local_port_range.</summary>
    public const int EphemeralLow = 32768, EphemeralHigh = 60999;
}
