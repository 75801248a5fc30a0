/* Guest for the pause benchmark (remus-bench pause): fills FILL_MIB MiB (pseudo-random bytes, so nothing is a zero
   page), prints "filled", then every 10 ms writes one byte in each of TOUCH pages of the filled memory (a different
   set each pass), for SECONDS. Usage: pausetouch FILL_MIB TOUCH SECONDS */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int main(int argc, char **argv) {
    size_t n = (size_t)atol(argv[1]) << 20, pages = n >> 12;
    long touch = atol(argv[2]);
    double seconds = atof(argv[3]);
    unsigned char *m = malloc(n);
    for (size_t i = 0; i < n; i += 8) *(unsigned long *)(m + i) = i * 0x9E3779B97F4A7C15ul;
    printf("filled\n");
    fflush(stdout);
    struct timespec a, b, t = {0, 10 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &a);
    size_t at = 0;
    for (;;) {
        for (long i = 0; i < touch; i++) { m[(at % pages) << 12]++; at += 7919; }
        nanosleep(&t, 0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        if ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 >= seconds) break;
    }
    return m[0] == 7;
}
