/* Memory-writing guest for the checkpoint benchmarks: for SECONDS, writes one byte in each of PAGES pages, then
   sleeps SLEEP_US (0: no sleep), and so on; prints the number of passes it made. Usage: dirtier PAGES SLEEP_US SECONDS */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int main(int argc, char **argv) {
    long pages = atol(argv[1]), sleep_us = atol(argv[2]);
    double seconds = atof(argv[3]);
    unsigned char *m = calloc(pages + 1, 4096);
    struct timespec a, b, t = {sleep_us / 1000000, (sleep_us % 1000000) * 1000};
    long passes = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (;;) {
        for (long i = 0; i < pages; i++) m[i * 4096 + (passes & 4095)]++;
        passes++;
        if (sleep_us) nanosleep(&t, 0);
        /* without sleeps, look at the clock only every 1024 passes (~1 ms): a system call costs ~30 us in a
           domain here, and this guest is meant to measure memory writing, not system calls */
        if (sleep_us ? 1 : (passes & 1023) == 0) {
            clock_gettime(CLOCK_MONOTONIC, &b);
            if ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 >= seconds) break;
        }
    }
    printf("passes %ld\n", passes);
    return 0;
}
