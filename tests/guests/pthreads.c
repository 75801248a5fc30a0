/* pthreads: mutex, condvar, barrier, TLS (__thread), pthread_join with exit values, tgkill between threads, a
 * futex wait that times out, a pipe between threads, and pthread_create/join in a loop. Prints only what is the
 * same on every run (no tids, no times). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define FUTEX_WAIT_PRIVATE_OP (0 | 128) /* FUTEX_WAIT | FUTEX_PRIVATE_FLAG (musl has no linux/futex.h) */

#define THREADS 4
#define ROUNDS 20000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static pthread_barrier_t barrier;
static long counter;
static int turn;
static __thread int tls_value = 7;

static void *adder(void *arg)
{
    long id = (long)arg;
    tls_value = 100 + (int)id;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    pthread_barrier_wait(&barrier);
    if (tls_value != 100 + (int)id) return (void *)-1L;
    return (void *)(id * 10);
}

/* Threads take turns in order through one condition variable. */
static void *taker(void *arg)
{
    int id = (int)(long)arg;
    for (int r = 0; r < 5; r++) {
        pthread_mutex_lock(&lock);
        while (turn % THREADS != id) pthread_cond_wait(&cond, &lock);
        printf("turn %d by %d\n", turn, id);
        turn++;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static volatile sig_atomic_t got_signal;
static volatile pid_t target_tid;
static void on_usr1(int sig) { (void)sig; got_signal = (syscall(SYS_gettid) == target_tid) ? 1 : 2; }

static void *signal_target(void *arg)
{
    (void)arg;
    target_tid = (pid_t)syscall(SYS_gettid);
    while (!got_signal) usleep(1000);
    return (void *)(long)got_signal;
}

static int pipefd[2];
static void *pipe_writer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "message %d\n", i);
        if (write(pipefd[1], buf, (size_t)n) != n) return (void *)1L;
    }
    close(pipefd[1]);
    return NULL;
}

/* A process-directed signal goes to a thread that does not block it; a SIGEV_THREAD_ID timer to its thread. */
static volatile pid_t worker_tid;
static volatile sig_atomic_t usr2_in_worker, alarm_in_worker, worker_stop;
static void on_usr2(int sig) { (void)sig; usr2_in_worker = syscall(SYS_gettid) == worker_tid ? 1 : 2; }
static void on_rt(int sig) { (void)sig; alarm_in_worker = syscall(SYS_gettid) == worker_tid ? 1 : 2; }
static void *worker(void *arg)
{
    (void)arg;
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    worker_tid = (pid_t)syscall(SYS_gettid);
    while (!worker_stop) usleep(1000);
    return NULL;
}

/* The kernel's struct sigevent (musl and older glibc name the thread id field differently). */
struct kernel_sigevent { uint64_t value; int signo; int notify; int tid; int pad[11]; };

static void signals_to_threads(void)
{
    signal(SIGUSR2, on_usr2);
    signal(SIGRTMIN + 1, on_rt);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR2);
    sigaddset(&block, SIGRTMIN + 1);
    pthread_sigmask(SIG_BLOCK, &block, NULL);
    pthread_t w;
    pthread_create(&w, NULL, worker, NULL);
    while (!worker_tid) usleep(1000);
    kill(getpid(), SIGUSR2);
    while (!usr2_in_worker) usleep(1000);
    printf("kill() with the main thread blocking it: handled %s\n", usr2_in_worker == 1 ? "by the worker" : "elsewhere");

    struct kernel_sigevent ev = { .value = 0, .signo = SIGRTMIN + 1, .notify = 4 /* SIGEV_THREAD_ID */, .tid = worker_tid };
    int timer;
    if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &timer) != 0) perror("timer_create");
    struct itimerspec its = { { 0, 0 }, { 0, 20 * 1000 * 1000 } };
    syscall(SYS_timer_settime, timer, 0, &its, NULL);
    while (!alarm_in_worker) usleep(1000);
    printf("SIGEV_THREAD_ID timer: handled %s\n", alarm_in_worker == 1 ? "by its thread" : "elsewhere");
    syscall(SYS_timer_delete, timer);
    worker_stop = 1;
    pthread_join(w, NULL);
    pthread_sigmask(SIG_UNBLOCK, &block, NULL);
}

static void *exit_early(void *arg) { pthread_exit((void *)((long)arg + 1)); }
static void *nothing(void *arg) { return arg; }

int main(void)
{
    pthread_t t[THREADS];
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, adder, (void *)i);
    for (int i = 0; i < THREADS; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        printf("adder %d returned %ld\n", i, (long)ret);
    }
    printf("counter %ld (expected %d)\n", counter, THREADS * ROUNDS);
    printf("main tls %d\n", tls_value);

    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, taker, (void *)i);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);

    signal(SIGUSR1, on_usr1);
    pthread_t st;
    pthread_create(&st, NULL, signal_target, NULL);
    while (!target_tid) usleep(1000);
    if (syscall(SYS_tgkill, getpid(), target_tid, SIGUSR1) != 0) perror("tgkill");
    void *sret;
    pthread_join(st, &sret);
    printf("signal went to %s\n", (long)sret == 1 ? "the target thread" : "another thread");
    /* Linux can still find a thread whose exit pthread_join saw (its tid is cleared before the task is released):
       ESRCH comes once it is gone, which natively on a loaded host can take a moment. */
    int gone = 0;
    for (int i = 0; i < 2000 && !gone; i++) {
        gone = syscall(SYS_tgkill, getpid(), target_tid, SIGUSR1) == -1 && errno == ESRCH;
        if (!gone) usleep(1000);
    }
    printf("tgkill to a joined thread: %s\n", gone ? "ESRCH" : "delivered?");

    signals_to_threads();

    uint32_t word = 5;
    struct timespec ts = {0, 50 * 1000 * 1000};
    long r = syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE_OP, 5, &ts, NULL, 0);
    printf("futex wait with timeout: %ld %s\n", r, r == -1 && errno == ETIMEDOUT ? "ETIMEDOUT" : strerror(errno));
    r = syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE_OP, 6, &ts, NULL, 0);
    printf("futex wait on a changed value: %ld %s\n", r, r == -1 && errno == EAGAIN ? "EAGAIN" : strerror(errno));

    pipe(pipefd);
    pthread_t pw;
    pthread_create(&pw, NULL, pipe_writer, NULL);
    char buf[4096];
    size_t total = 0;
    ssize_t n;
    int lines = 0;
    while ((n = read(pipefd[0], buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) lines += buf[i] == '\n';
        total += (size_t)n;
    }
    pthread_join(pw, NULL);
    printf("pipe: %zu bytes, %d lines\n", total, lines);

    void *eret;
    pthread_create(&pw, NULL, exit_early, (void *)41L);
    pthread_join(pw, &eret);
    printf("pthread_exit value %ld\n", (long)eret);

    long sum = 0;
    for (long i = 0; i < 200; i++) {
        void *v;
        pthread_create(&pw, NULL, nothing, (void *)i);
        pthread_join(pw, &v);
        sum += (long)v;
    }
    printf("200 threads made and joined, sum %ld\n", sum);
    fflush(stdout);
    return 0;
}
