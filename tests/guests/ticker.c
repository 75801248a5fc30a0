/* ticker: every INTERVAL_MS prints "tick I hash H" (H hashes a MIB-sized buffer that each tick changes deterministically) and fflushes; for checkpoint/continuity tests. Run: ticker COUNT INTERVAL_MS [MIB=1] (no stdin). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: ticker COUNT INTERVAL_MS [MIB]\n"); return 2; }
    long count = atol(argv[1]), interval = atol(argv[2]);
    long mib = argc > 3 ? atol(argv[3]) : 1;
    if (count < 0 || interval < 0 || mib < 1) { fprintf(stderr, "usage: ticker COUNT INTERVAL_MS [MIB]\n"); return 2; }
    size_t len = (size_t)mib << 20, pages = len / 4096;
    unsigned char *mem = calloc(1, len);
    if (!mem) { fprintf(stderr, "allocation failed\n"); return 3; }
    for (long t = 1; t <= count; t++) {
        /* dirty a deterministic, tick-dependent set of pages (about 1 in 8) */
        for (size_t pg = (size_t)t % 8; pg < pages; pg += 8) {
            uint64_t *w = (uint64_t *)(mem + pg * 4096 + (size_t)(t * 64) % 4096);
            *w = *w * 31 + (uint64_t)t * 0x9e3779b97f4a7c15ull + pg;
        }
        uint64_t h = 1469598103934665603ull;
        const uint64_t *q = (const uint64_t *)mem;
        for (size_t i = 0; i < len / 8; i++) { h = (h ^ q[i]) * 1099511628211ull; h ^= h >> 29; }
        printf("tick %ld hash %016llx\n", t, (unsigned long long)h);
        fflush(stdout);
        if (interval > 0 && t < count) {
            struct timespec ts = { interval / 1000, (interval % 1000) * 1000000L };
            while (nanosleep(&ts, &ts) != 0) { }
        }
    }
    printf("done\n");
    return 0;
}
