/* sysinfo: uname (sysname, machine), getpid/gettid/getppid, sysinfo, sched_getaffinity, sysconf, auxv page size; prints only sanity checks. Run: sysinfo (no args, no stdin). */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(void)
{
    struct utsname u;
    memset(&u, 0, sizeof u);
    if (uname(&u) != 0) { printf("uname FAILED\n"); return 1; }
    printf("sysname %s\n", u.sysname);
    printf("machine %s\n", u.machine);
    printf("release non-empty %s\n", u.release[0] ? "yes" : "no");

    pid_t pid = getpid();
    long tid = syscall(SYS_gettid);
    printf("pid > 0 %s\n", pid > 0 ? "yes" : "no");
    printf("pid == tid %s\n", (long)pid == tid ? "yes" : "no");
    printf("getpid stable %s\n", getpid() == pid ? "yes" : "no");
    printf("ppid >= 0 %s\n", getppid() >= 0 ? "yes" : "no");

    struct sysinfo si;
    memset(&si, 0, sizeof si);
    int ok = sysinfo(&si) == 0;
    unsigned long long unit = si.mem_unit ? si.mem_unit : 1;
    printf("sysinfo ok %s\n", ok ? "yes" : "no");
    printf("sysinfo totalram >= 1 MiB %s\n", (unsigned long long)si.totalram * unit >= (1ull << 20) ? "yes" : "no");
    printf("sysinfo freeram <= totalram %s\n", si.freeram <= si.totalram ? "yes" : "no");
    printf("sysinfo procs >= 1 %s\n", si.procs >= 1 ? "yes" : "no");

    cpu_set_t set;
    CPU_ZERO(&set);
    ok = sched_getaffinity(0, sizeof set, &set) == 0;
    printf("sched_getaffinity ok %s, cpus >= 1 %s\n", ok ? "yes" : "no", CPU_COUNT(&set) >= 1 ? "yes" : "no");

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    printf("nprocessors >= 1 %s\n", ncpu >= 1 ? "yes" : "no");
    printf("page size %ld\n", sysconf(_SC_PAGESIZE));
    printf("auxv page size %lu\n", getauxval(AT_PAGESZ));
    return 0;
}
