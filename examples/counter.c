/* A sample long-running guest: prints a counter and a hash of its memory every interval, for ever or N times.
   Usage: counter [count (0 = for ever)] [interval_ms]. Used by the demos of pause/save/migration/failover. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t fnv(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 1099511628211ULL; }
    return h;
}

int main(int argc, char **argv) {
    long count = argc > 1 ? atol(argv[1]) : 0;
    long interval = argc > 2 ? atol(argv[2]) : 200;
    size_t size = 4 << 20;
    unsigned char *mem = calloc(1, size);
    for (long i = 0; count == 0 || i < count; i++) {
        for (size_t j = 0; j < size; j += 512) mem[j] = (unsigned char)(mem[j] * 31 + i + j);
        printf("%ld %016llx\n", i, (unsigned long long)fnv(mem, size));
        fflush(stdout);
        struct timespec t = {interval / 1000, (interval % 1000) * 1000000L};
        nanosleep(&t, NULL);
    }
    return 0;
}
