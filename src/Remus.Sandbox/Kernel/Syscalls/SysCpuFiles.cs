using System.Text;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// /sys/devices/system/cpu/{online,possible,present}: the CPUs the program may count, "0-N" or "0" as sysfs prints a
/// CPU list. glibc's sysconf(_SC_NPROCESSORS_ONLN/_CONF) and get_nprocs read them; they must agree with
/// sched_getaffinity (Threads.cs; both use OfferedCpus, Tasks/TaskTable.cs), or a runtime sizes its thread pools by a CPU count it cannot use. Other paths
/// the runtimes probe (/sys/kernel/mm/transparent_hugepage/hpage_pmd_size, read by the Go runtime; /proc/self/cgroup
/// and cgroup quota files, read by Rust's available_parallelism) stay ENOENT: each falls back to its default.
/// </summary>
internal sealed partial class SandboxKernel
{
    private static readonly HashSet<string> CpuListPaths =
        ["/sys/devices/system/cpu/online", "/sys/devices/system/cpu/possible", "/sys/devices/system/cpu/present"];

    private byte[] CpuList() => Encoding.ASCII.GetBytes(OfferedCpus == 1 ? "0\n" : $"0-{OfferedCpus - 1}\n");
}
