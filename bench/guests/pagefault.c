/* pagefault: demand-fault cost. Maps MIB MiB (MAP_NORESERVE, read-write), then times (CLOCK_MONOTONIC) touching every
   page once in order ("seq", ns per page: fault-around brings in runs) and, in a second mapping, one page per 64 KiB
   ("sparse", ns per touch: every touch is a fault). Prints "seq NS sparse NS". Run: pagefault MIB */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }

int main(int argc, char **argv)
{
    size_t len = (size_t)(argc > 1 ? atol(argv[1]) : 32) << 20;
    volatile unsigned char *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    volatile unsigned char *b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (a == MAP_FAILED || b == MAP_FAILED) { perror("mmap"); return 1; }
    double t0 = now();
    for (size_t i = 0; i < len; i += 4096) a[i] = 1;
    double t1 = now();
    munmap((void *)a, len);
    double t2 = now();
    for (size_t i = 0; i < len; i += 65536) b[i] = 1;
    double t3 = now();
    printf("seq %.0f sparse %.0f\n", (t1 - t0) / (len / 4096), (t3 - t2) / (len / 65536));
    return 0;
}
