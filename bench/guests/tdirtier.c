/* The dirtier with threads: THREADS threads together write one byte in each of PAGES pages (each its share), then
   sleep SLEEP_US, for SECONDS; the same dirty set whatever the thread count (the checkpoint pause by thread count).
   Usage: tdirtier THREADS PAGES SLEEP_US SECONDS */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long pages, sleep_us, threads;
static double seconds;
static unsigned char *m;

static void *run(void *arg)
{
    long id = (long)arg, from = pages * id / threads, to = pages * (id + 1) / threads, passes = 0;
    struct timespec a, b, t = {sleep_us / 1000000, (sleep_us % 1000000) * 1000};
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (;;) {
        for (long i = from; i < to; i++) m[i * 4096 + (passes & 4095)]++;
        passes++;
        nanosleep(&t, 0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        if ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 >= seconds) break;
    }
    return (void *)passes;
}

int main(int argc, char **argv)
{
    threads = atol(argv[1]); pages = atol(argv[2]); sleep_us = atol(argv[3]); seconds = atof(argv[4]);
    m = calloc(pages + 1, 4096);
    pthread_t t[64];
    for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, run, (void *)i);
    long total = 0;
    for (long i = 0; i < threads; i++) { void *p; pthread_join(t[i], &p); total += (long)p; }
    printf("passes %ld\n", total);
    return 0;
}
