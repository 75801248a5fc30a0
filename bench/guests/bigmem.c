/* A big-memory guest for `remus-bench scale`: fills MIB MiB with a mix of pages (even pages random, odd pages a
   repeating 64-byte pattern that compresses ~50x), prints "filled PAGES", then every PERIOD_MS writes one byte in each of
   TOUCH pages (spread over the filled memory, a different set each time) for SECONDS, printing "tick N" once a second.
   Usage: bigmem MIB TOUCH PERIOD_MS SECONDS */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}
int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: bigmem MIB TOUCH PERIOD_MS SECONDS\n"); return 2; }
    size_t pages = ((size_t)atol(argv[1]) << 20) / 4096;
    long touch = atol(argv[2]), period_ms = atol(argv[3]);
    double seconds = atof(argv[4]);
    unsigned char *m = mmap(0, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) { perror("mmap"); return 1; }
    uint64_t x = 88172645463325252ull;
    for (size_t p = 0; p < pages; p++) {
        uint64_t *w = (uint64_t *)(m + p * 4096);
        if (p % 2 == 0)
            for (int i = 0; i < 512; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; w[i] = x; }
        else
            for (int i = 0; i < 512; i++) w[i] = (uint64_t)p << 8 | (i & 7);
    }
    printf("filled %zu\n", pages);
    fflush(stdout);
    struct timespec nap = {period_ms / 1000, (period_ms % 1000) * 1000000L};
    double start = now(), next_tick = start + 1;
    size_t at = 0, stride = pages / 7919 + 1; /* a prime: the touched sets wander over all of memory */
    long ticks = 0;
    while (now() - start < seconds) {
        for (long i = 0; i < touch; i++) { m[(at % pages) * 4096 + (at & 4095)]++; at += stride; }
        nanosleep(&nap, 0);
        if (now() >= next_tick) { printf("tick %ld\n", ++ticks); fflush(stdout); next_tick += 1; }
    }
    return 0;
}
