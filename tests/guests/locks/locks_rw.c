/* Record locks on a writable file (argv[1]: a directory — in a domain a volume — where it makes "locked"):
 *   api:  write locks between descriptions (OFD conflicts, EAGAIN; POSIX vs OFD), SEEK_END after writes, the access
 *         mode checks on O_WRONLY, F_OFD_SETLKW and F_SETLKW blocked in one thread and woken by another's unlock or
 *         close, interrupted by a handled signal (EINTR without SA_RESTART, restarted with it);
 *   ckpt: holds an OFD write lock and a POSIX read lock while a thread blocks in F_OFD_SETLKW and another in F_SETLKW for about 1.5 s
 *         (the domain is saved and restored meanwhile), then lets go. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

static char path[4096];

static const char *ename(int e)
{
    switch (e)
    {
    case EAGAIN: return "EAGAIN";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case EINTR: return "EINTR";
    case EDEADLK: return "EDEADLK";
    default: return "other";
    }
}

static const char *err(int r) { return r == 0 ? "ok" : ename(errno); }

static int lk(int fd, int cmd, int type, int whence, long start, long len)
{
    struct flock fl = { .l_type = type, .l_whence = whence, .l_start = start, .l_len = len, .l_pid = 0 };
    return fcntl(fd, cmd, &fl);
}

static void get(const char *what, int fd, int cmd, int type, int whence, long start, long len)
{
    struct flock fl = { .l_type = type, .l_whence = whence, .l_start = start, .l_len = len, .l_pid = 0 };
    int r = fcntl(fd, cmd, &fl);
    if (r != 0) { printf("%s: %s\n", what, err(r)); return; }
    if (fl.l_type == F_UNLCK) { printf("%s: UN\n", what); return; }
    printf("%s: %s start %ld len %ld pid %s\n", what, fl.l_type == F_RDLCK ? "RD" : "WR", (long)fl.l_start, (long)fl.l_len,
           fl.l_pid == -1 ? "-1" : fl.l_pid == getpid() ? "self" : "other");
}

/* A thread blocking in one lock call. */
struct call { int fd, cmd, type; long start, len; int result, error; volatile int done; pthread_t t; };

static void *run(void *arg)
{
    struct call *c = arg;
    c->result = lk(c->fd, c->cmd, c->type, SEEK_SET, c->start, c->len);
    c->error = errno;
    __atomic_store_n(&c->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void start(struct call *c) { c->done = 0; pthread_create(&c->t, NULL, run, c); }

static const char *finish(struct call *c)
{
    pthread_join(c->t, NULL);
    return c->result == 0 ? "ok" : ename(c->error);
}

static int handled;
static void on_usr1(int sig) { (void)sig; handled++; }

static void api(void)
{
    int a = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644), b = open(path, O_RDWR), w = open(path, O_WRONLY);
    char buf[100];
    memset(buf, 'x', sizeof buf);
    write(a, buf, sizeof buf);
    printf("ofd WR [0,50) via a: %s\n", err(lk(a, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 50)));
    printf("ofd WR [49,60) via b: %s\n", err(lk(b, F_OFD_SETLK, F_WRLCK, SEEK_SET, 49, 11)));
    printf("ofd RD [10,11) via b: %s\n", err(lk(b, F_OFD_SETLK, F_RDLCK, SEEK_SET, 10, 1)));
    printf("ofd WR [50,60) via b: %s\n", err(lk(b, F_OFD_SETLK, F_WRLCK, SEEK_SET, 50, 10)));
    get("ofd getlk RD all via b", b, F_OFD_GETLK, F_RDLCK, SEEK_SET, 0, 0);
    get("ofd getlk RD [50,..) via a", a, F_OFD_GETLK, F_RDLCK, SEEK_SET, 50, 0);
    printf("posix WR [0,1) via a (a's own OFD lock conflicts): %s\n", err(lk(a, F_SETLK, F_WRLCK, SEEK_SET, 0, 1)));
    printf("posix WR [60,70) via a: %s\n", err(lk(a, F_SETLK, F_WRLCK, SEEK_SET, 60, 10)));
    printf("posix WR [65,80) via b (same process): %s\n", err(lk(b, F_SETLK, F_WRLCK, SEEK_SET, 65, 15)));
    printf("ofd RD [75,76) via a: %s\n", err(lk(a, F_OFD_SETLK, F_RDLCK, SEEK_SET, 75, 1)));
    get("ofd getlk WR [60,..) via w", w, F_OFD_GETLK, F_WRLCK, SEEK_SET, 60, 0);
    get("getlk WR [60,..) via w", w, F_GETLK, F_WRLCK, SEEK_SET, 60, 0);
    get("ofd getlk RD end-10 len 10", w, F_OFD_GETLK, F_RDLCK, SEEK_END, -10, 10);
    get("ofd getlk RD end-40 len 10", w, F_OFD_GETLK, F_RDLCK, SEEK_END, -40, 10);
    printf("ofd RD via O_WRONLY: %s\n", err(lk(w, F_OFD_SETLK, F_RDLCK, SEEK_SET, 90, 1)));
    printf("ofd WR via O_WRONLY: %s\n", err(lk(w, F_OFD_SETLK, F_WRLCK, SEEK_SET, 90, 1)));
    printf("flock EX via O_WRONLY: %s\n", err(flock(w, LOCK_EX)));
    printf("ofd downgrade a to RD [0,50): %s\n", err(lk(a, F_OFD_SETLK, F_RDLCK, SEEK_SET, 0, 50)));
    printf("ofd RD [10,11) via b now: %s\n", err(lk(b, F_OFD_SETLK, F_RDLCK, SEEK_SET, 10, 1)));
    printf("ofd upgrade a to WR [0,50) (b reads [10,11)): %s\n", err(lk(a, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 50)));
    get("a still RD there", w, F_OFD_GETLK, F_WRLCK, SEEK_SET, 0, 5);
    lk(b, F_OFD_SETLK, F_UNLCK, SEEK_SET, 0, 0);
    lk(a, F_SETLK, F_UNLCK, SEEK_SET, 0, 0);
    lk(a, F_OFD_SETLK, F_UNLCK, SEEK_SET, 0, 0);
    lk(w, F_OFD_SETLK, F_UNLCK, SEEK_SET, 0, 0);
    flock(w, LOCK_UN);

    /* F_OFD_SETLKW woken by the holder's unlock. */
    struct call c = { .fd = b, .cmd = F_OFD_SETLKW, .type = F_WRLCK, .start = 0, .len = 10 };
    lk(a, F_OFD_SETLK, F_WRLCK, SEEK_SET, 5, 1);
    start(&c);
    usleep(50000);
    printf("ofd setlkw returned while the lock was held: %d\n", __atomic_load_n(&c.done, __ATOMIC_SEQ_CST));
    lk(a, F_OFD_SETLK, F_UNLCK, SEEK_SET, 5, 1);
    printf("ofd setlkw after unlock: %s\n", finish(&c));
    get("b holds it", a, F_OFD_GETLK, F_RDLCK, SEEK_SET, 0, 0);

    /* F_SETLKW (POSIX) waits for b's OFD lock, and is woken when b's description goes. */
    struct call p = { .fd = a, .cmd = F_SETLKW, .type = F_RDLCK, .start = 3, .len = 1 };
    start(&p);
    usleep(50000);
    printf("posix setlkw returned while the lock was held: %d\n", __atomic_load_n(&p.done, __ATOMIC_SEQ_CST));
    close(b);
    printf("posix setlkw after the holder's close: %s\n", finish(&p));
    get("the process holds [3,4)", w, F_OFD_GETLK, F_WRLCK, SEEK_SET, 0, 0);
    lk(a, F_SETLK, F_UNLCK, SEEK_SET, 0, 0);

    /* A handled signal without SA_RESTART interrupts F_OFD_SETLKW; with SA_RESTART it goes on waiting. */
    b = open(path, O_RDWR);
    struct sigaction sa = { .sa_handler = on_usr1 };
    sigaction(SIGUSR1, &sa, NULL);
    lk(a, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 0);
    struct call s = { .fd = b, .cmd = F_OFD_SETLKW, .type = F_RDLCK, .start = 0, .len = 0 };
    start(&s);
    while (!__atomic_load_n(&s.done, __ATOMIC_SEQ_CST))
    {
        pthread_kill(s.t, SIGUSR1);
        usleep(20000);
    }
    printf("ofd setlkw signalled: %s, handler ran: %s\n", finish(&s), handled ? "yes" : "no");
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    handled = 0;
    struct call r = { .fd = b, .cmd = F_SETLKW, .type = F_WRLCK, .start = 0, .len = 0 };
    start(&r);
    for (int i = 0; i < 5; i++)
    {
        pthread_kill(r.t, SIGUSR1);
        usleep(20000);
    }
    printf("restarting setlkw returned while the lock was held: %d\n", __atomic_load_n(&r.done, __ATOMIC_SEQ_CST));
    close(a);
    printf("restarting setlkw after the holder's close: %s, handler ran: %s\n", finish(&r), handled ? "yes" : "no");
    close(b);
    close(w);
}

static void ckpt(void)
{
    int a = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644), b = open(path, O_RDWR);
    printf("ofd WR [10,..) via a: %s\n", err(lk(a, F_OFD_SETLK, F_WRLCK, SEEK_SET, 10, 0)));
    printf("posix RD [0,10) via a: %s\n", err(lk(a, F_SETLK, F_RDLCK, SEEK_SET, 0, 10)));
    struct call o = { .fd = b, .cmd = F_OFD_SETLKW, .type = F_WRLCK, .start = 100, .len = 1 };
    struct call p = { .fd = b, .cmd = F_SETLKW, .type = F_WRLCK, .start = 200, .len = 1 };
    start(&o);
    start(&p);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
    {
        usleep(10000);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - t0.tv_sec) * 1000000000L + (now.tv_nsec - t0.tv_nsec) < 1500000000L);
    printf("waiters returned while the lock was held: %d %d\n", __atomic_load_n(&o.done, __ATOMIC_SEQ_CST),
           __atomic_load_n(&p.done, __ATOMIC_SEQ_CST));
    get("ofd lock via b", b, F_OFD_GETLK, F_RDLCK, SEEK_SET, 50, 1);
    get("posix lock via b", b, F_OFD_GETLK, F_WRLCK, SEEK_SET, 5, 1);
    lk(a, F_OFD_SETLK, F_UNLCK, SEEK_SET, 0, 0);
    printf("ofd setlkw after unlock: %s\n", finish(&o));
    printf("posix setlkw after unlock: %s\n", finish(&p));
    get("b's OFD lock", a, F_OFD_GETLK, F_RDLCK, SEEK_SET, 0, 150);
    get("the process's POSIX locks", a, F_OFD_GETLK, F_RDLCK, SEEK_SET, 150, 0);
    close(a);
    get("after close(a): POSIX locks gone", b, F_GETLK, F_WRLCK, SEEK_SET, 150, 0);
    close(b);
}

int main(int argc, char **argv)
{
    if (argc < 3) return 2;
    snprintf(path, sizeof path, "%s/locked", argv[1]);
    setvbuf(stdout, NULL, _IONBF, 0);
    if (strcmp(argv[2], "api") == 0) api();
    else if (strcmp(argv[2], "ckpt") == 0) ckpt();
    else return 2;
    printf("done\n");
    return 0;
}
