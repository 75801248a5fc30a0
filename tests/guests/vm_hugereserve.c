/* vm_hugereserve: the Go runtime's shape of memory, for checkpoint tests: reserves 64 GiB PROT_NONE (MAP_NORESERVE),
   makes 64 pages 1 GiB apart read-write and fills them, then every INTERVAL_MS checks every byte and rewrites them
   with the tick number, printing "tick I ok" (or "tick I BAD page P"). A save/restore or migration must carry the
   touched pages (through the page tables) and the reservation, not 64 GiB. With `touch` it ends by reading a page of
   the reservation that stayed PROT_NONE (SIGSEGV, 139). Run: vm_hugereserve COUNT INTERVAL_MS [touch] */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PAGES 64
static const size_t pg = 4096;

static void fill(unsigned char *p, unsigned tick, int page)
{
    for (size_t i = 0; i < pg; i++) p[i] = (unsigned char)(tick * 31 + page * 7 + i);
}

static int check(const unsigned char *p, unsigned tick, int page)
{
    for (size_t i = 0; i < pg; i++) if (p[i] != (unsigned char)(tick * 31 + page * 7 + i)) return 0;
    return 1;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 3) { fprintf(stderr, "usage: vm_hugereserve COUNT INTERVAL_MS [touch]\n"); return 2; }
    int count = atoi(argv[1]), ms = atoi(argv[2]);
    size_t big = 64UL << 30;
    unsigned char *r = mmap(NULL, big, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED) { perror("mmap"); return 1; }
    for (int p = 0; p < PAGES; p++) {
        unsigned char *at = r + (size_t)p * (1UL << 30) + (size_t)p * pg;
        if (mprotect(at, pg, PROT_READ | PROT_WRITE) != 0) { perror("mprotect"); return 1; }
        fill(at, 0, p);
    }
    printf("reserved 64 GiB, %d pages made read-write\n", PAGES);
    struct timespec d = { ms / 1000, (long)(ms % 1000) * 1000000L };
    for (int t = 1; t <= count; t++) {
        nanosleep(&d, NULL);
        int bad = -1;
        for (int p = 0; p < PAGES && bad < 0; p++) {
            unsigned char *at = r + (size_t)p * (1UL << 30) + (size_t)p * pg;
            if (!check(at, (unsigned)t - 1, p)) bad = p;
            else fill(at, (unsigned)t, p);
        }
        if (bad >= 0) { printf("tick %d BAD page %d\n", t, bad); return 1; }
        printf("tick %d ok\n", t);
    }
    if (argc > 3 && strcmp(argv[3], "touch") == 0) {
        printf("touching a PROT_NONE page\n");
        printf("read %d\n", *(volatile unsigned char *)(r + 12345 * pg));
    }
    return 0;
}
