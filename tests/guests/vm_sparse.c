/* vm_sparse: a PROT_NONE reservation with a few scattered pages made read-write and filled, checked at every tick (checkpoint tests: content and permissions survive save/restore). Prints "tick I ok" every INTERVAL_MS; after COUNT ticks, with `touch`, reads a page of the reservation that stayed PROT_NONE (SIGSEGV, 139). With `flip`, every tick first makes the pages PROT_NONE and read-write again, then rewrites them (the dirty log must still see those writes). Run: vm_sparse COUNT INTERVAL_MS [touch|flip]. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PAGES 2048 /* 8 MiB reserved */

static const int touched[] = { 0, 1, 17, 300, 301, 1024, 1500, 2047 };
#define NTOUCHED (int)(sizeof touched / sizeof touched[0])

static unsigned char pattern(int page, int i, int round) { return (unsigned char)(page * 31 + i * 7 + round); }

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 3) { fprintf(stderr, "usage: vm_sparse COUNT INTERVAL_MS [touch]\n"); return 2; }
    int count = atoi(argv[1]), interval = atoi(argv[2]);
    long pg = 4096;
    unsigned char *r = mmap(NULL, PAGES * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED) { perror("mmap"); return 1; }
    for (int t = 0; t < NTOUCHED; t++) {
        if (mprotect(r + touched[t] * pg, pg, PROT_READ | PROT_WRITE) != 0) { perror("mprotect"); return 1; }
        for (int i = 0; i < pg; i++) r[touched[t] * pg + i] = pattern(touched[t], i, 0);
    }
    printf("reserved %d pages, %d made read-write\n", PAGES, NTOUCHED);
    struct timespec ts = { interval / 1000, (interval % 1000) * 1000000L };
    int flip = argc > 3 && strcmp(argv[3], "flip") == 0;
    for (int k = 1; k <= count; k++) {
        int ok = 1;
        if (flip)
            for (int t = 0; t < NTOUCHED; t++)
                if (mprotect(r + touched[t] * pg, pg, PROT_NONE) != 0 || mprotect(r + touched[t] * pg, pg, PROT_READ | PROT_WRITE) != 0) {
                    perror("mprotect");
                    return 1;
                }
        for (int t = 0; t < NTOUCHED; t++)
            for (int i = 0; i < pg; i++) {
                unsigned char *b = &r[touched[t] * pg + i];
                if (*b != pattern(touched[t], i, k - 1)) ok = 0;
                *b = pattern(touched[t], i, k);
            }
        printf("tick %d %s\n", k, ok ? "ok" : "CORRUPT");
        nanosleep(&ts, NULL);
    }
    if (argc > 3 && strcmp(argv[3], "touch") == 0) {
        printf("touching a PROT_NONE page\n");
        printf("read %d\n", *(volatile unsigned char *)(r + 2 * pg));
    }
    return 0;
}
