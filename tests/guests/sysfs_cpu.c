/* sysfs_cpu: /sys/devices/system/cpu/online, possible and present agree with sched_getaffinity, sysconf(_SC_NPROCESSORS_ONLN/CONF) and get_nprocs; /sys/kernel/mm/transparent_hugepage/hpage_pmd_size is either absent (ENOENT, as in a domain) or 2 MiB (as the Go runtime expects). Run: sysfs_cpu (no args). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

/* Counts the CPUs of a sysfs CPU list such as "0-3,5\n"; -1 if unreadable. */
static int count_list(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buf[256] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0 || buf[n - 1] != '\n') return -1;
    int count = 0;
    for (char *p = buf; *p && *p != '\n';) {
        long a = strtol(p, &p, 10), b = a;
        if (*p == '-') b = strtol(p + 1, &p, 10);
        count += (int)(b - a + 1);
        if (*p == ',') p++;
    }
    return count;
}

int main(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    sched_getaffinity(0, sizeof set, &set);
    int affinity = CPU_COUNT(&set);
    int online = count_list("/sys/devices/system/cpu/online");
    int possible = count_list("/sys/devices/system/cpu/possible");
    int present = count_list("/sys/devices/system/cpu/present");
    printf("online readable: %s\n", online > 0 ? "yes" : "no");
    printf("online == affinity: %s\n", online == affinity ? "yes" : "no");
    printf("possible >= online: %s\n", possible >= online ? "yes" : "no");
    printf("present >= online: %s\n", present >= online ? "yes" : "no");
    printf("sysconf ONLN == online: %s\n", sysconf(_SC_NPROCESSORS_ONLN) == online ? "yes" : "no");
    printf("sysconf CONF >= online: %s\n", sysconf(_SC_NPROCESSORS_CONF) >= online ? "yes" : "no");
    printf("get_nprocs == online: %s\n", get_nprocs() == online ? "yes" : "no");
    struct stat st;
    printf("stat online: %s\n", stat("/sys/devices/system/cpu/online", &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0444 ? "regular 0444" : "other");
    int fd = open("/sys/devices/system/cpu/online", O_WRONLY);
    printf("open online for writing: %s\n", fd < 0 && (errno == EACCES || errno == EPERM) ? "refused" : "allowed");
    printf("access W_OK: %s\n", access("/sys/devices/system/cpu/online", W_OK) == 0 && getuid() != 0 ? "yes" : "no (or root)");

    fd = open("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", O_RDONLY);
    if (fd < 0) printf("hpage_pmd_size: %s\n", errno == ENOENT ? "absent or 2 MiB" : "other error");
    else {
        char buf[32] = {0};
        read(fd, buf, sizeof buf - 1);
        printf("hpage_pmd_size: %s\n", atol(buf) == 2097152 ? "absent or 2 MiB" : buf);
        close(fd);
    }
    return 0;
}
