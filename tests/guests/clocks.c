/* clocks: clock_gettime REALTIME/MONOTONIC, gettimeofday, time; prints only sanity checks, never times. Run: clocks (no args, no stdin). */
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static double ts(struct timespec t) { return (double)t.tv_sec + (double)t.tv_nsec / 1e9; }

int main(void)
{
    struct timespec rt, mo, prev, now;
    int ok = clock_gettime(CLOCK_REALTIME, &rt) == 0;
    printf("realtime call ok %s\n", ok ? "yes" : "no");
    printf("realtime after 2020 %s\n", ok && rt.tv_sec > 1577836800 ? "yes" : "no");
    printf("realtime nsec in range %s\n", rt.tv_nsec >= 0 && rt.tv_nsec < 1000000000 ? "yes" : "no");

    ok = clock_gettime(CLOCK_MONOTONIC, &mo) == 0;
    printf("monotonic call ok %s\n", ok ? "yes" : "no");
    printf("monotonic nsec in range %s\n", mo.tv_nsec >= 0 && mo.tv_nsec < 1000000000 ? "yes" : "no");

    /* 2000 reads never go backwards */
    int mono = 1;
    prev = mo;
    for (int i = 0; i < 2000; i++) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec < prev.tv_sec || (now.tv_sec == prev.tv_sec && now.tv_nsec < prev.tv_nsec)) mono = 0;
        prev = now;
    }
    printf("monotonic non-decreasing %s\n", mono ? "yes" : "no");

    /* it advances: spin until 5 ms have passed (bounded) */
    int advanced = 0;
    for (long i = 0; i < 200000000L; i++) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (ts(now) - ts(mo) >= 0.005) { advanced = 1; break; }
    }
    printf("monotonic advances %s\n", advanced ? "yes" : "no");

    struct timespec rt2;
    clock_gettime(CLOCK_REALTIME, &rt2);
    printf("realtime advanced with monotonic %s\n", ts(rt2) - ts(rt) >= 0.004 ? "yes" : "no");

    struct timeval tv;
    ok = gettimeofday(&tv, NULL) == 0;
    double tvs = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
    printf("gettimeofday ok %s\n", ok ? "yes" : "no");
    printf("gettimeofday usec in range %s\n", tv.tv_usec >= 0 && tv.tv_usec < 1000000 ? "yes" : "no");
    printf("gettimeofday within 2s of realtime %s\n", tvs - ts(rt2) > -2 && tvs - ts(rt2) < 2 ? "yes" : "no");

    time_t t1 = 0, t0 = time(&t1);
    printf("time returns and stores same %s\n", t0 == t1 ? "yes" : "no");
    printf("time within 2s of realtime %s\n", (double)t0 - ts(rt2) > -2 && (double)t0 - ts(rt2) < 2 ? "yes" : "no");

    struct tm tm;
    printf("gmtime year >= 2020 %s\n", gmtime_r(&t0, &tm) && tm.tm_year + 1900 >= 2020 ? "yes" : "no");
    return 0;
}
