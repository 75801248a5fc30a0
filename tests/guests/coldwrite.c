/* Writes into memory that has gone cold (the ptrace dirty log stops scanning 2 MiB regions not written for a while and
   unmaps them in the stub): fills REGIONS regions of 2 MiB, then for COUNT ticks of TICK_MS: every EVERY-th tick writes
   the tick into one cell of the next region in turn (not written for REGIONS*EVERY ticks: the write is the first
   access after it went cold) and prints the tick and a hash of every region's written cell; the other ticks print the
   tick and a hash of another cell of each region (read only). A write the checkpoints missed shows on the backup as a
   line the native run never printed. Usage: coldwrite COUNT TICK_MS EVERY REGIONS */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#define REGION_WORDS (1ul << 18) /* 2 MiB of unsigned long */
#define WRITTEN (400 * 512)      /* page 400 of a region */
#define READ (100 * 512)         /* page 100 */
int main(int argc, char **argv) {
    long count = atol(argv[1]), tick = atol(argv[2]), every = atol(argv[3]), regions = atol(argv[4]);
    unsigned long *m = aligned_alloc(2ul << 20, regions * REGION_WORDS * sizeof *m);
    for (unsigned long i = 0; i < regions * REGION_WORDS; i++) m[i] = i * 0x9E3779B97F4A7C15ul;
    struct timespec t = {tick / 1000, (tick % 1000) * 1000000};
    for (long i = 0; i < count; i++) {
        unsigned long h = 0;
        if (i % every == 0) {
            m[((i / every) % regions) * REGION_WORDS + WRITTEN] = (unsigned long)i;
            for (long r = 0; r < regions; r++) h = h * 31 + m[r * REGION_WORDS + WRITTEN];
        } else {
            for (long r = 0; r < regions; r++) h = h * 31 + m[r * REGION_WORDS + READ];
        }
        printf("%ld %lu\n", i, h);
        fflush(stdout);
        nanosleep(&t, 0);
    }
    printf("done\n");
    return 0;
}
