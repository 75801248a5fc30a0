namespace Remus.Tests.Runtimes;

/// <summary>
/// Whether the kernel can run the Go and Rust runtimes yet. They need, besides the syscall surface of this branch,
/// a 47-bit virtual address space with demand paging (Go reserves GiBs of PROT_NONE address space at start-up:
/// "failed to reserve page summary memory" without it) and threads (clone/clone3, futex, tgkill, per-thread signal
/// state: Rust's first thread::spawn fails with ENOSYS without them). Those land from other branches (issue 8 items
/// 1 and 2).
/// <para>LEAD: flip <see cref="Ready"/> to true in the merge that brings both in; the domain-vs-native theories in
/// <see cref="GoRustTests"/> then run (they skip with <see cref="Reason"/> until then; their native halves run today in
/// <see cref="RuntimeNativeTests"/>).</para>
/// </summary>
public static class RuntimeSupport
{
    public const bool Ready = false;

    public const string Reason =
        "Go and Rust in a domain need virtual memory (issue 8 item 1) and threads (item 2) from other branches: " +
        "RuntimeSupport.Ready is false until they are merged";
}
