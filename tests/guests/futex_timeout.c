/* futex_timeout: FUTEX_WAIT with a relative timeout on a word nobody changes ends with ETIMEDOUT after the timeout (whole seconds printed), also FUTEX_WAIT_PRIVATE and FUTEX_WAIT_BITSET (absolute); EAGAIN on a mismatch. Run: futex_timeout [SECONDS] (default 1). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* musl's toolchain has no kernel headers: the futex ABI constants, as <linux/futex.h> defines them. */
#define FUTEX_WAIT 0
#define FUTEX_WAIT_BITSET 9
#define FUTEX_PRIVATE_FLAG 128
#define FUTEX_WAIT_PRIVATE (FUTEX_WAIT | FUTEX_PRIVATE_FLAG)
#define FUTEX_BITSET_MATCH_ANY 0xffffffff

static int word;

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long futex(int op, int val, const struct timespec *timeout)
{
    return syscall(SYS_futex, &word, op, val, timeout, NULL, FUTEX_BITSET_MATCH_ANY);
}

/* Whole seconds, rounded down: a wait that ends early prints one less, one that ends a little late the same. */
static void report(const char *what, long rc, int e, long long start)
{
    long long el = now_ns() - start;
    printf("%s: ETIMEDOUT %s, took %lld s\n", what, rc == -1 && e == ETIMEDOUT ? "yes" : "no", el / 1000000000LL);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int secs = argc > 1 ? atoi(argv[1]) : 1;
    struct timespec rel = { secs, 0 };

    long long s = now_ns();
    errno = 0;
    long rc = futex(FUTEX_WAIT, 0, &rel);
    report("FUTEX_WAIT relative", rc, errno, s);

    s = now_ns();
    errno = 0;
    rc = futex(FUTEX_WAIT_PRIVATE, 0, &rel);
    report("FUTEX_WAIT_PRIVATE relative", rc, errno, s);

    s = now_ns();
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_sec += secs;
    errno = 0;
    rc = futex(FUTEX_WAIT_BITSET, 0, &abs);
    report("FUTEX_WAIT_BITSET absolute", rc, errno, s);

    errno = 0;
    rc = futex(FUTEX_WAIT, 1, &rel);
    printf("FUTEX_WAIT on a changed value: EAGAIN %s\n", rc == -1 && errno == EAGAIN ? "yes" : "no");
    return 0;
}
