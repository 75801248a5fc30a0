/* CPU-bound guest for the domain-vs-native benchmark: a sieve and an LCG checksum, no syscalls in the hot loop.
   Usage: cpu [rounds]   prints the checksum, then "seconds <s>" and "cpu_seconds <s>": the loop's own CLOCK_MONOTONIC
   and CLOCK_PROCESS_CPUTIME_ID time (on a shared machine only the second is independent of the other load). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    static unsigned char sieve[1 << 22];
    uint64_t sum = 0, x = 88172645463325252ULL;
    struct timespec a, b, ca, cb;
    clock_gettime(CLOCK_MONOTONIC, &a);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ca);
    for (int r = 0; r < rounds; r++) {
        memset(sieve, 1, sizeof sieve);
        for (size_t i = 2; i * i < sizeof sieve; i++)
            if (sieve[i]) for (size_t j = i * i; j < sizeof sieve; j += i) sieve[j] = 0;
        for (size_t i = 2; i < sizeof sieve; i++) if (sieve[i]) sum += i;
        for (int k = 0; k < 5000000; k++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; sum += x & 0xff; }
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cb);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%llu\nseconds %.6f\ncpu_seconds %.6f\n", (unsigned long long)sum, (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9,
           (cb.tv_sec - ca.tv_sec) + (cb.tv_nsec - ca.tv_nsec) / 1e9);
    return 0;
}
