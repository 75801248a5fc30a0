/* futex operations and their errors, as Linux gives them: WAKE, WAIT (EAGAIN, ETIMEDOUT, EINVAL), WAIT_BITSET with
 * absolute CLOCK_MONOTONIC and CLOCK_REALTIME deadlines, the ENOSYS of FUTEX_CLOCK_REALTIME with WAIT, REQUEUE,
 * CMP_REQUEUE (and its EAGAIN), WAKE_OP, WAKE_BITSET, with waiting threads. Prints only what is the same on every run:
 * a waiter is known to be queued when a REQUEUE (onto its own address, or another) counts it. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WAIT 0
#define WAKE 1
#define REQUEUE 3
#define CMP_REQUEUE 4
#define WAKE_OP 5
#define WAIT_BITSET 9
#define WAKE_BITSET 10
#define PRIVATE 128
#define CLOCK_RT 256
#define OP(op, oparg, cmp, cmparg) (((op & 0xf) << 28) | ((cmp & 0xf) << 24) | ((oparg & 0xfff) << 12) | (cmparg & 0xfff))

static long fx(uint32_t *a, int op, uint32_t v, const void *t, uint32_t *a2, uint32_t v3)
{
    return syscall(SYS_futex, a, op, v, t, a2, v3);
}

static void show(const char *what, long r)
{
    if (r < 0) printf("%s: -1 %s\n", what, errno == EAGAIN ? "EAGAIN" : errno == ETIMEDOUT ? "ETIMEDOUT" :
                      errno == EINVAL ? "EINVAL" : errno == ENOSYS ? "ENOSYS" : errno == EFAULT ? "EFAULT" : strerror(errno));
    else printf("%s: %ld\n", what, r);
}

static uint32_t A, B, C, D, E, woken_ok;
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;

static void *waiter(void *arg)
{
    long r = fx(&A, WAIT | PRIVATE, 0, NULL, NULL, 0);
    pthread_mutex_lock(&m);
    if (r == 0) woken_ok++;
    pthread_mutex_unlock(&m);
    return arg;
}

static void *bit_waiter(void *arg)
{
    long r = fx(&E, WAIT_BITSET | PRIVATE, 0, NULL, NULL, 0x1);
    return (void *)r;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    uint32_t w = 1;
    struct timespec rel = {0, 20 * 1000 * 1000}, abs;
    show("wake with no waiter", fx(&w, WAKE | PRIVATE, 1, NULL, NULL, 0));
    show("wait on a changed value", fx(&w, WAIT | PRIVATE, 2, &rel, NULL, 0));
    show("wait, relative timeout", fx(&w, WAIT | PRIVATE, 1, &rel, NULL, 0));
    show("wait, unaligned", fx((uint32_t *)((char *)&w + 1), WAIT | PRIVATE, 1, &rel, NULL, 0));
    struct timespec bad = {0, 2000000000L};
    show("wait, bad timeout", fx(&w, WAIT | PRIVATE, 1, &bad, NULL, 0));
    show("wait with CLOCK_REALTIME", fx(&w, WAIT | PRIVATE | CLOCK_RT, 1, &rel, NULL, 0));
    show("wait_bitset, bitset 0", fx(&w, WAIT_BITSET | PRIVATE, 1, &rel, NULL, 0));
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_nsec += 20 * 1000 * 1000;
    if (abs.tv_nsec >= 1000000000L) { abs.tv_sec++; abs.tv_nsec -= 1000000000L; }
    show("wait_bitset, absolute monotonic", fx(&w, WAIT_BITSET | PRIVATE, 1, &abs, NULL, ~0u));
    clock_gettime(CLOCK_REALTIME, &abs);
    abs.tv_nsec += 20 * 1000 * 1000;
    if (abs.tv_nsec >= 1000000000L) { abs.tv_sec++; abs.tv_nsec -= 1000000000L; }
    show("wait_bitset, absolute realtime", fx(&w, WAIT_BITSET | PRIVATE | CLOCK_RT, 1, &abs, NULL, ~0u));
    abs.tv_sec -= 10;
    show("wait_bitset, deadline passed", fx(&w, WAIT_BITSET | PRIVATE | CLOCK_RT, 1, &abs, NULL, ~0u));
    show("cmp_requeue, value differs", fx(&w, CMP_REQUEUE | PRIVATE, 1, (void *)1L, &B, 7));
    show("requeue, negative count", fx(&w, REQUEUE | PRIVATE, (uint32_t)-1, (void *)1L, &B, 0));
    show("unknown operation", fx(&w, 99 | PRIVATE, 0, NULL, NULL, 0));

    pthread_t t[3];
    for (long i = 0; i < 3; i++) pthread_create(&t[i], NULL, waiter, (void *)i);
    long moved = 0;
    while (moved < 3) {
        long r = fx(&A, REQUEUE | PRIVATE, 0, (void *)(long)INT_MAX, &B, 0);
        if (r < 0) { show("requeue", r); return 1; }
        moved += r;
        if (moved < 3) usleep(1000);
    }
    printf("requeued from A to B: %ld\n", moved);
    show("wake on A (all moved)", fx(&A, WAKE | PRIVATE, INT_MAX, NULL, NULL, 0));
    show("wake_op on B, C += 1 if C was 0", fx(&B, WAKE_OP | PRIVATE, 1, (void *)1L, &C, OP(1, 1, 0, 0)));
    printf("C is now %u\n", C);
    show("wake_op on B (count 0 wakes one), C = 1 << 4, B too if C was > 5", fx(&B, WAKE_OP | PRIVATE, 0, (void *)1L, &C, OP(8, 4, 4, 5)));
    printf("C is now %u\n", C);
    show("cmp_requeue B -> D, wake 0, move 1", fx(&B, CMP_REQUEUE | PRIVATE, 0, (void *)1L, &D, B));
    show("wake on D", fx(&D, WAKE | PRIVATE, 1, NULL, NULL, 0));
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    printf("waiters woken with 0: %u\n", woken_ok);

    pthread_t bt;
    pthread_create(&bt, NULL, bit_waiter, NULL);
    long queued = 0;
    while (!queued) {
        queued = fx(&E, REQUEUE | PRIVATE, 0, (void *)(long)INT_MAX, &E, 0);
        if (!queued) usleep(1000);
    }
    show("wake_bitset 0x2 (the waiter waits on 0x1)", fx(&E, WAKE_BITSET | PRIVATE, 1, NULL, NULL, 0x2));
    show("wake_bitset 0x3", fx(&E, WAKE_BITSET | PRIVATE, 1, NULL, NULL, 0x3));
    void *r;
    pthread_join(bt, &r);
    printf("bitset waiter returned %ld\n", (long)r);
    return 0;
}
