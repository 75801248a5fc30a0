/* thread_counter THREADS COUNT INTERVAL_MS: each thread counts to COUNT, printing "t<id> <n> <wall clock ms>" every
 * INTERVAL_MS (one line at a time, under a mutex), then main joins them and prints "done". A checkpoint, restore or
 * migration in between must leave each thread's count unbroken (no number missing, none twice) and the clock never
 * going back. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static pthread_mutex_t out = PTHREAD_MUTEX_INITIALIZER;
static int count, interval_ms;

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void *counter(void *arg)
{
    int id = (int)(long)arg;
    struct timespec d = { interval_ms / 1000, interval_ms % 1000 * 1000000L };
    for (int n = 1; n <= count; n++) {
        pthread_mutex_lock(&out);
        printf("t%d %d %lld\n", id, n, wall_ms());
        fflush(stdout);
        pthread_mutex_unlock(&out);
        nanosleep(&d, NULL);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 4;
    count = argc > 2 ? atoi(argv[2]) : 100;
    interval_ms = argc > 3 ? atoi(argv[3]) : 10;
    pthread_t t[64];
    if (threads > 64) threads = 64;
    for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, counter, (void *)i);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    printf("done\n");
    return 0;
}
