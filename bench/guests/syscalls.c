/* Syscall-heavy guest: N getppid() calls, timed inside the guest. Prints "ns_per_call <n>" (the mean over the run).
   With a second argument "dist" each call is also timed alone with the TSC (calibrated against CLOCK_MONOTONIC over
   the run, minus the cost of two back-to-back TSC reads) and "p50_ns <n>" and "p99_ns <n>" follow.
   Usage: syscalls [n] [dist] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
static inline uint64_t tsc(void) {
    uint32_t lo, hi;
    __asm__ volatile("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi) :: "memory");
    return (uint64_t)hi << 32 | lo;
}
static int cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000;
    int dist = argc > 2 && strcmp(argv[2], "dist") == 0;
    uint64_t *d = dist ? calloc(n, sizeof *d) : 0, empty[256];
    struct timespec a, b;
    if (dist) {
        for (int i = 0; i < 256; i++) { uint64_t t = tsc(); empty[i] = tsc() - t; }
        qsort(empty, 256, sizeof *empty, cmp);
    }
    clock_gettime(CLOCK_MONOTONIC, &a);
    uint64_t t0 = tsc();
    if (dist)
        for (long i = 0; i < n; i++) { uint64_t t = tsc(); syscall(SYS_getppid); d[i] = tsc() - t; }
    else
        for (long i = 0; i < n; i++) syscall(SYS_getppid);
    uint64_t t1 = tsc();
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec));
    printf("ns_per_call %.0f\n", ns / n);
    if (dist) {
        double ns_per_tick = ns / (double)(t1 - t0);
        qsort(d, n, sizeof *d, cmp);
        double off = (double)empty[128];
        printf("p50_ns %.0f\np99_ns %.0f\n", ((double)d[n / 2] - off) * ns_per_tick, ((double)d[n * 99 / 100] - off) * ns_per_tick);
    }
    return 0;
}
