/* dirtypages: writes one byte in each of PAGES pages (the same pages each time) every PERIOD_MS, for SECONDS (0: until
   killed), printing nothing after "ready" (Remus epoch tests: an idle domain with PAGES 0, a few dirty pages per
   epoch otherwise). Run: dirtypages PAGES PERIOD_MS [SECONDS] (no stdin). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: dirtypages PAGES PERIOD_MS [SECONDS]\n"); return 2; }
    long pages = atol(argv[1]), period_ms = atol(argv[2]);
    double seconds = argc > 3 ? atof(argv[3]) : 0;
    unsigned char *m = pages > 0 ? mmap(0, (size_t)pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : 0;
    if (m == MAP_FAILED) { perror("mmap"); return 1; }
    for (long p = 0; p < pages; p++) m[p * 4096] = 1;
    printf("ready\n");
    fflush(stdout);
    struct timespec nap = { period_ms / 1000, (period_ms % 1000) * 1000000L };
    double start = now();
    unsigned char v = 1;
    while (seconds <= 0 || now() - start < seconds) {
        v++;
        for (long p = 0; p < pages; p++) m[p * 4096 + (v & 4095)] = v;
        nanosleep(&nap, 0);
    }
    printf("done\n");
    return 0;
}
