/* nonce_ticker: every PERIOD_US prints "tick I t NS r HEX" (I from 0; NS = CLOCK_REALTIME in ns, HEX = 8 bytes of getrandom), fflushes, and dirties MIB of memory; a re-executed tick prints a different line. For Remus output-commit tests. Run: nonce_ticker COUNT PERIOD_US [MIB=1] (no stdin). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: nonce_ticker COUNT PERIOD_US [MIB]\n"); return 2; }
    long count = atol(argv[1]), period = atol(argv[2]);
    long mib = argc > 3 ? atol(argv[3]) : 1;
    if (count < 0 || period < 0 || mib < 1) { fprintf(stderr, "usage: nonce_ticker COUNT PERIOD_US [MIB]\n"); return 2; }
    size_t len = (size_t)mib << 20, pages = len / 4096;
    unsigned char *mem = calloc(1, len);
    if (!mem) { fprintf(stderr, "allocation failed\n"); return 3; }
    for (long t = 0; t < count; t++) {
        /* dirty a tick-dependent set of pages (about 1 in 8), so that every checkpoint carries some memory */
        for (size_t pg = (size_t)t % 8; pg < pages; pg += 8)
            mem[pg * 4096 + (size_t)(t * 64) % 4096] += (unsigned char)(t + 1);
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        uint64_t r = 0;
        while (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) { }
        printf("tick %ld t %lld r %016llx\n", t, (long long)now.tv_sec * 1000000000LL + now.tv_nsec, (unsigned long long)r);
        fflush(stdout);
        if (period > 0 && t + 1 < count) {
            struct timespec ts = { period / 1000000, (period % 1000000) * 1000L };
            while (nanosleep(&ts, &ts) != 0) { }
        }
    }
    printf("done\n");
    return 0;
}
