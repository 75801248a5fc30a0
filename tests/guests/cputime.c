/* cputime: CLOCK_PROCESS_CPUTIME_ID / CLOCK_THREAD_CPUTIME_ID / clock_getcpuclockid / clock(): a 300 ms sleep uses almost no CPU time, busy work does, the clocks never go back, 1 ns resolution. Run: cputime, or cputime spin SECONDS (reads the CPU clock for SECONDS of CPU time, checking it never goes back). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/times.h>
#include <time.h>
#include <unistd.h>

static double cpu(clockid_t c)
{
    struct timespec t;
    if (clock_gettime(c, &t) != 0) return -1;
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static const char *yesno(int b) { return b ? "yes" : "no"; }

static int spin(double seconds)
{
    /* Computes, reading the CPU clock in between, until it has advanced by SECONDS; 1 if it never went back. */
    double start = cpu(CLOCK_PROCESS_CPUTIME_ID), prev = start, now;
    int ok = 1;
    volatile unsigned x = 1;
    while ((now = cpu(CLOCK_PROCESS_CPUTIME_ID)) - start < seconds) {
        if (now < prev) ok = 0;
        prev = now;
        for (int i = 0; i < 100000; i++) x = x * 1664525u + 1013904223u;
    }
    return ok;
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "spin") == 0) {
        int ok = spin(atof(argv[2]));
        printf("cpu clock never went back over %s s of cpu time: %s\n", argv[2], yesno(ok));
        return 0;
    }
    double p0 = cpu(CLOCK_PROCESS_CPUTIME_ID), t0 = cpu(CLOCK_THREAD_CPUTIME_ID);
    clock_t c0 = clock();
    struct rusage ru0, ru1;
    struct tms tm0, tm1;
    int ruok = getrusage(RUSAGE_SELF, &ru0) == 0;
    clock_t tk0 = times(&tm0);
    struct timespec req = { 0, 300 * 1000000L };
    nanosleep(&req, NULL);
    double p1 = cpu(CLOCK_PROCESS_CPUTIME_ID), t1 = cpu(CLOCK_THREAD_CPUTIME_ID);
    clock_t c1 = clock();
    ruok = ruok && getrusage(RUSAGE_SELF, &ru1) == 0;
    clock_t tk1 = times(&tm1);
    printf("process cpu during a 300 ms sleep < 0.1 s: %s\n", yesno(p0 >= 0 && p1 - p0 < 0.1));
    printf("thread cpu during a 300 ms sleep < 0.1 s: %s\n", yesno(t0 >= 0 && t1 - t0 < 0.1));
    printf("clock() during a 300 ms sleep < 0.1 s: %s\n", yesno(c0 != (clock_t)-1 && (double)(c1 - c0) / CLOCKS_PER_SEC < 0.1));

    double ru = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec)
        + ((ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec)) / 1e6;
    printf("getrusage ok %s, cpu during a 300 ms sleep < 0.1 s %s\n", yesno(ruok), yesno(ru < 0.1));
    long hz = sysconf(_SC_CLK_TCK);
    printf("times ok %s, cpu during a 300 ms sleep < 0.1 s %s, elapsed ticks >= 0.25 s %s\n", yesno(tk0 != (clock_t)-1 && tk1 != (clock_t)-1),
           yesno((double)(tm1.tms_utime + tm1.tms_stime - tm0.tms_utime - tm0.tms_stime) / hz < 0.1), yesno((double)(tk1 - tk0) / hz >= 0.25));
    printf("cpu clock advances with busy work and never goes back: %s\n", yesno(spin(0.05)));
    printf("process cpu clock >= 0.05 s after the busy work: %s\n", yesno(cpu(CLOCK_PROCESS_CPUTIME_ID) - p0 >= 0.05));

    clockid_t id;
    int rc = clock_getcpuclockid(0, &id);
    double viaid = cpu(id), direct = cpu(CLOCK_PROCESS_CPUTIME_ID);
    printf("clock_getcpuclockid(0) ok %s, reads the process cpu time %s\n", yesno(rc == 0), yesno(viaid >= 0 && direct - viaid >= 0 && direct - viaid < 0.1));
    rc = pthread_getcpuclockid(pthread_self(), &id);
    viaid = cpu(id);
    direct = cpu(CLOCK_THREAD_CPUTIME_ID);
    printf("pthread_getcpuclockid(self) ok %s, reads the thread cpu time %s\n", yesno(rc == 0), yesno(viaid >= 0 && direct - viaid >= 0 && direct - viaid < 0.1));

    struct timespec res;
    printf("clock_getres process cpu 1 ns: %s\n", yesno(clock_getres(CLOCK_PROCESS_CPUTIME_ID, &res) == 0 && res.tv_sec == 0 && res.tv_nsec == 1));
    printf("clock_getres thread cpu 1 ns: %s\n", yesno(clock_getres(CLOCK_THREAD_CPUTIME_ID, &res) == 0 && res.tv_sec == 0 && res.tv_nsec == 1));
    errno = 0;
    rc = clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &req, NULL);
    printf("clock_nanosleep on the thread cpu clock: EINVAL %s\n", yesno(rc == EINVAL));
    return 0;
}
