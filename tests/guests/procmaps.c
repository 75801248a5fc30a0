/* procmaps: /proc/self/maps agrees with the program's memory: code in an executable mapping, data and heap writable, the stack in [stack], an mmap region with its protection (r--), split by mprotect into r-- rw- r--, gone after munmap; lines in order without overlaps; /proc/thread-self/maps readable. Prints facts only. Run: procmaps. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static char text[1 << 16];
static int global = 1;

static int load(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int len = 0, n;
    while ((n = read(fd, text + len, sizeof text - 1 - len)) > 0) len += n;
    text[len] = 0;
    close(fd);
    return len;
}

/* The permissions of the mapping holding addr ("----" when none), and whether its name contains want. */
static const char *find(uintptr_t addr, char perms[5], const char *want, int *named)
{
    strcpy(perms, "----");
    *named = 0;
    for (char *line = text; *line; ) {
        char *end = strchr(line, '\n');
        unsigned long lo, hi;
        char p[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, p) == 3 && addr >= lo && addr < hi) {
            memcpy(perms, p, 5);
            if (want) {
                char save = end ? *end : 0;
                if (end) *end = 0;
                *named = strstr(line, want) != NULL;
                if (end) *end = save;
            }
            return perms;
        }
        if (!end) break;
        line = end + 1;
    }
    return perms;
}

static int ordered(void)
{
    unsigned long prev = 0;
    for (char *line = text; *line; ) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) != 2 || lo >= hi || lo < prev) return 0;
        prev = hi;
        char *end = strchr(line, '\n');
        if (!end) break;
        line = end + 1;
    }
    return 1;
}

int main(void)
{
    int local = 0, named;
    char perms[5];
    printf("read /proc/self/maps: %s\n", load("/proc/self/maps") > 0 ? "yes" : "no");
    printf("lines in order, no overlaps: %s\n", ordered() ? "yes" : "no");
    find((uintptr_t)&main, perms, NULL, &named);
    printf("main in an executable mapping: %s\n", perms[2] == 'x' ? "yes" : "no");
    find((uintptr_t)&global, perms, NULL, &named);
    printf("a global in a writable mapping: %s\n", perms[1] == 'w' ? "yes" : "no");
    find((uintptr_t)&local, perms, "[stack]", &named);
    printf("a local in [stack], writable: %s %s\n", named ? "yes" : "no", perms[1] == 'w' ? "yes" : "no");
    char *heap = sbrk(4096);
    if (heap == (void *)-1) printf("sbrk with an increment not supported (musl)\n");
    else {
        load("/proc/self/maps");
        find((uintptr_t)heap + 4095, perms, "[heap]", &named);
        printf("sbrk'ed memory in [heap], writable: %s %s\n", named ? "yes" : "no", perms[1] == 'w' ? "yes" : "no");
    }

    long pg = sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, 3 * pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    load("/proc/self/maps");
    find((uintptr_t)m + pg, perms, NULL, &named);
    printf("mmap PROT_READ: %s\n", perms);
    mprotect(m + pg, pg, PROT_READ | PROT_WRITE);
    load("/proc/self/maps");
    char a[5], b[5], c[5];
    find((uintptr_t)m, a, NULL, &named);
    find((uintptr_t)m + pg, b, NULL, &named);
    find((uintptr_t)m + 2 * pg, c, NULL, &named);
    printf("after mprotect of the middle page: %s %s %s\n", a, b, c);
    munmap(m, 3 * pg);
    load("/proc/self/maps");
    find((uintptr_t)m + pg, perms, NULL, &named);
    printf("after munmap: %s\n", perms);
    printf("read /proc/thread-self/maps: %s\n", load("/proc/thread-self/maps") > 0 ? "yes" : "no");
    return 0;
}
