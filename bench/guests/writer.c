/* The writer of the platform benchmark: for SECONDS, writes one byte in each of PAGES pages per pass, without system
   calls in the loop (time is read from the TSC, calibrated once against CLOCK_MONOTONIC), and every PRINT_MS ms
   prints "t <CLOCK_REALTIME ns>", so a reader of the console sees how long output is held (Remus output commit).
   Ends with "passes <n> seconds <s> cpu_seconds <s>" (wall and CLOCK_PROCESS_CPUTIME_ID time of the loop).
   Usage: writer PAGES PRINT_MS SECONDS */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static inline uint64_t tsc(void) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}
static double clock_s(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}
static double mono(void) { return clock_s(CLOCK_MONOTONIC); }
int main(int argc, char **argv) {
    long pages = atol(argv[1]);
    double print_s = atof(argv[2]) / 1000, seconds = atof(argv[3]);
    unsigned char *m = calloc(pages + 1, 4096);
    setvbuf(stdout, 0, _IOLBF, 0);
    struct timespec nap = {0, 20000000};
    double s0 = mono();
    uint64_t c0 = tsc();
    nanosleep(&nap, 0);
    double hz = (double)(tsc() - c0) / (mono() - s0);
    uint64_t start = tsc(), next = start + (uint64_t)(print_s * hz), end = start + (uint64_t)(seconds * hz);
    long passes = 0;
    double a = mono(), ca = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    for (;;) {
        for (long i = 0; i < pages; i++) m[i * 4096 + (passes & 4095)]++;
        passes++;
        uint64_t now = tsc();
        if (now >= next) {
            struct timespec r;
            clock_gettime(CLOCK_REALTIME, &r);
            printf("t %lld\n", (long long)r.tv_sec * 1000000000LL + r.tv_nsec);
            next = now + (uint64_t)(print_s * hz);
        }
        if (now >= end) break;
    }
    double cb = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    printf("passes %ld seconds %.6f cpu_seconds %.6f\n", passes, mono() - a, cb - ca);
    return 0;
}
