/* sleep: nanosleep, clock_nanosleep (relative and TIMER_ABSTIME), usleep; checks elapsed >= requested and EINVAL; ~50 ms total. Run: sleep (no args, no stdin). */
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void report(const char *what, int rc, long long start, long long want_ns)
{
    long long el = now_ns() - start;
    printf("%s returns 0 %s, slept >= %lld ms %s\n", what, rc == 0 ? "yes" : "no", want_ns / 1000000, el >= want_ns ? "yes" : "no");
}

int main(void)
{
    long long s = now_ns();
    struct timespec req = { 0, 15 * 1000000L }, rem = { 7, 7 };
    int rc = nanosleep(&req, &rem);
    report("nanosleep 15ms", rc, s, 15000000LL);

    s = now_ns();
    req.tv_nsec = 10 * 1000000L;
    rc = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL);
    report("clock_nanosleep MONOTONIC 10ms", rc, s, 10000000LL);

    s = now_ns();
    req.tv_nsec = 5 * 1000000L;
    rc = clock_nanosleep(CLOCK_REALTIME, 0, &req, NULL);
    report("clock_nanosleep REALTIME 5ms", rc, s, 5000000LL);

    s = now_ns();
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_nsec += 10 * 1000000L;
    if (abs.tv_nsec >= 1000000000L) { abs.tv_sec++; abs.tv_nsec -= 1000000000L; }
    rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL);
    report("clock_nanosleep ABSTIME +10ms", rc, s, 10000000LL);

    /* an absolute time in the past returns at once */
    s = now_ns();
    struct timespec past = { 0, 1 };
    rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &past, NULL);
    printf("clock_nanosleep ABSTIME in the past returns 0 %s, quickly %s\n", rc == 0 ? "yes" : "no", now_ns() - s < 1000000000LL ? "yes" : "no");

    s = now_ns();
    rc = usleep(5000);
    report("usleep 5ms", rc, s, 5000000LL);

    struct timespec zero = { 0, 0 };
    printf("nanosleep 0 returns 0 %s\n", nanosleep(&zero, NULL) == 0 ? "yes" : "no");

    struct timespec bad = { 0, 1000000000L };
    errno = 0;
    rc = nanosleep(&bad, NULL);
    int e = errno;
    printf("nanosleep nsec=1e9 fails EINVAL %s\n", rc == -1 && e == EINVAL ? "yes" : "no");
    struct timespec neg = { -1, 0 };
    rc = clock_nanosleep(CLOCK_MONOTONIC, 0, &neg, NULL);
    printf("clock_nanosleep negative sec returns EINVAL %s\n", rc == EINVAL ? "yes" : "no");
    return 0;
}
