/* Record locks and flocks on a file opened read-only (argv[1]; in a domain a `files` entry): the checks and
 * semantics that need no write access, printed so that a domain's run can be compared with the native one.
 * POSIX locks of the one process never conflict with each other (F_GETLK says F_UNLCK); OFD locks are owned by the
 * open description (F_GETLK reports them with l_pid -1); closing any fd drops the process's POSIX locks on the file;
 * OFD locks and flocks go with their description; flock conversion is not atomic; blocked flocks are woken by an
 * unlock or a close, and interrupted by a handled signal (EINTR without SA_RESTART, restarted with it). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *path;

static const char *ename(int e)
{
    switch (e)
    {
    case EAGAIN: return "EAGAIN";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case EINTR: return "EINTR";
    case EOVERFLOW: return "EOVERFLOW";
    case EFAULT: return "EFAULT";
    case ENOLCK: return "ENOLCK";
    default: return "other";
    }
}

static const char *err(int r) { return r == 0 ? "ok" : ename(errno); }

static const char *tname(int t) { return t == F_RDLCK ? "RD" : t == F_WRLCK ? "WR" : t == F_UNLCK ? "UN" : "??"; }

static int lk(int fd, int cmd, int type, int whence, long start, long len)
{
    struct flock fl = { .l_type = type, .l_whence = whence, .l_start = start, .l_len = len, .l_pid = 0 };
    return fcntl(fd, cmd, &fl);
}

/* F_GETLK / F_OFD_GETLK and what it says. */
static void get(const char *what, int fd, int cmd, int type, int whence, long start, long len)
{
    struct flock fl = { .l_type = type, .l_whence = whence, .l_start = start, .l_len = len, .l_pid = 0 };
    int r = fcntl(fd, cmd, &fl);
    if (r != 0) { printf("%s: %s\n", what, err(r)); return; }
    if (fl.l_type == F_UNLCK) { printf("%s: UN (whence %d start %ld len %ld kept)\n", what, fl.l_whence, (long)fl.l_start, (long)fl.l_len); return; }
    printf("%s: %s whence %d start %ld len %ld pid %s\n", what, tname(fl.l_type), fl.l_whence, (long)fl.l_start,
           (long)fl.l_len, fl.l_pid == -1 ? "-1" : fl.l_pid == getpid() ? "self" : "other");
}

static void record_locks(void)
{
    int a = open(path, O_RDONLY), b = open(path, O_RDONLY);
    struct stat st;
    fstat(a, &st);
    printf("posix RD [0,10) via a: %s\n", err(lk(a, F_SETLK, F_RDLCK, SEEK_SET, 0, 10)));
    printf("posix RD [5,20) via b: %s\n", err(lk(b, F_SETLK, F_RDLCK, SEEK_SET, 5, 15)));
    get("getlk WR all via b (own locks)", b, F_GETLK, F_WRLCK, SEEK_SET, 0, 0);
    printf("posix WR via read-only fd: %s\n", err(lk(a, F_SETLK, F_WRLCK, SEEK_SET, 0, 1)));
    printf("ofd WR via read-only fd: %s\n", err(lk(a, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 1)));
    printf("unlock via read-only fd: %s\n", err(lk(a, F_SETLK, F_UNLCK, SEEK_SET, 100, 1)));
    get("getlk UN", a, F_GETLK, F_UNLCK, SEEK_SET, 0, 0);
    printf("setlk type 7: %s\n", err(lk(a, F_SETLK, 7, SEEK_SET, 0, 1)));
    printf("setlk whence 3: %s\n", err(lk(a, F_SETLK, F_RDLCK, 3, 0, 1)));
    printf("setlk start -1: %s\n", err(lk(a, F_SETLK, F_RDLCK, SEEK_SET, -1, 1)));
    printf("setlk len -5 at 3: %s\n", err(lk(a, F_SETLK, F_RDLCK, SEEK_SET, 3, -5)));
    {
        struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1, .l_pid = 1 };
        printf("ofd setlk pid 1: %s\n", err(fcntl(a, F_OFD_SETLK, &fl)));
        fl.l_type = F_WRLCK;
        printf("ofd getlk pid 1: %s\n", err(fcntl(a, F_OFD_GETLK, &fl)));
        fl.l_pid = 12345;
        fl.l_type = F_RDLCK;
        printf("posix setlk pid 12345 (ignored): %s\n", err(fcntl(a, F_SETLK, &fl)));
        lk(a, F_SETLK, F_UNLCK, SEEK_SET, 0, 1);
        lk(a, F_SETLK, F_RDLCK, SEEK_SET, 0, 10);
    }
    printf("bad fd: %s\n", err(lk(99, F_SETLK, F_RDLCK, SEEK_SET, 0, 1)));

    printf("ofd RD [20,30) via a: %s\n", err(lk(a, F_OFD_SETLK, F_RDLCK, SEEK_SET, 20, 10)));
    get("getlk WR all via b", b, F_GETLK, F_WRLCK, SEEK_SET, 0, 0);
    get("ofd getlk WR all via b", b, F_OFD_GETLK, F_WRLCK, SEEK_SET, 0, 0);
    get("ofd getlk WR all via a", a, F_OFD_GETLK, F_WRLCK, SEEK_SET, 0, 0);
    get("ofd getlk RD all via b", b, F_OFD_GETLK, F_RDLCK, SEEK_SET, 0, 0);
    get("ofd getlk WR [30,35) len -5", b, F_OFD_GETLK, F_WRLCK, SEEK_SET, 30, -5);
    get("ofd getlk WR [15,20)", b, F_OFD_GETLK, F_WRLCK, SEEK_SET, 15, 5);
    lseek(b, 7, SEEK_SET);
    get("ofd getlk WR cur+0 len 1", b, F_OFD_GETLK, F_WRLCK, SEEK_CUR, 0, 1);
    get("ofd getlk WR cur-7 len 1", b, F_OFD_GETLK, F_WRLCK, SEEK_CUR, -7, 1);
    get("ofd getlk WR cur-8", b, F_OFD_GETLK, F_WRLCK, SEEK_CUR, -8, 1);
    get("ofd getlk WR end-size+25 len 1", b, F_OFD_GETLK, F_WRLCK, SEEK_END, 25 - st.st_size, 1);
    get("ofd getlk WR end+0", b, F_OFD_GETLK, F_WRLCK, SEEK_END, 0, 0);

    /* POSIX merge and split: [0,15) RD, unlock [3,6): [0,3) and [6,15) remain. */
    printf("posix unlock [3,6): %s\n", err(lk(a, F_SETLK, F_UNLCK, SEEK_SET, 3, 3)));
    get("ofd getlk WR [0,100)", b, F_OFD_GETLK, F_WRLCK, SEEK_SET, 0, 100);
    get("ofd getlk WR [3,6)", b, F_OFD_GETLK, F_WRLCK, SEEK_SET, 3, 3);
    get("ofd getlk WR [4,100)", b, F_OFD_GETLK, F_WRLCK, SEEK_SET, 4, 96);
    printf("posix RD [3,6) again: %s\n", err(lk(b, F_SETLK, F_RDLCK, SEEK_SET, 3, 3)));
    get("ofd getlk WR [0,100) merged", b, F_OFD_GETLK, F_WRLCK, SEEK_SET, 0, 100);
    printf("posix RD [15,to end): %s\n", err(lk(b, F_SETLK, F_RDLCK, SEEK_SET, 15, 0)));
    get("ofd getlk WR [40,41) to end", b, F_OFD_GETLK, F_WRLCK, SEEK_SET, 40, 1);
    get("ofd getlk WR [0,1) merged to end", b, F_OFD_GETLK, F_WRLCK, SEEK_SET, 0, 1);
    printf("posix unlock all: %s\n", err(lk(a, F_SETLK, F_UNLCK, SEEK_SET, 0, 0)));
    get("ofd getlk WR [0,1) after unlock", b, F_OFD_GETLK, F_WRLCK, SEEK_SET, 0, 1);

    /* Closing any fd of the file drops the process's POSIX locks, whichever description set them. */
    lk(a, F_SETLK, F_RDLCK, SEEK_SET, 0, 10);
    int c = open(path, O_RDONLY);
    get("ofd getlk via c before close(dup(b))", c, F_OFD_GETLK, F_WRLCK, SEEK_SET, 0, 1);
    close(dup(b));
    get("ofd getlk via c after close(dup(b))", c, F_OFD_GETLK, F_WRLCK, SEEK_SET, 0, 1);
    get("ofd lock of a survives", c, F_OFD_GETLK, F_WRLCK, SEEK_SET, 20, 1);
    lk(a, F_SETLK, F_RDLCK, SEEK_SET, 0, 10);
    int d = dup(a);
    dup2(c, d); /* closes d (a's description stays open through a) */
    get("posix after dup2 over a dup", c, F_OFD_GETLK, F_WRLCK, SEEK_SET, 0, 1);
    close(d);
    /* OFD locks go with their description: not when a dup of it closes, when its last fd does. */
    int a2 = dup(a);
    close(a);
    get("ofd lock after closing one of two fds", c, F_OFD_GETLK, F_WRLCK, SEEK_SET, 20, 1);
    close(a2);
    get("ofd lock after closing the last fd", c, F_OFD_GETLK, F_WRLCK, SEEK_SET, 20, 1);
    close(b);
    close(c);
}

static void flocks(void)
{
    int a = open(path, O_RDONLY), b = open(path, O_RDONLY);
    printf("flock a EX: %s\n", err(flock(a, LOCK_EX)));
    printf("flock b EX|NB: %s\n", err(flock(b, LOCK_EX | LOCK_NB)));
    printf("flock b SH|NB: %s\n", err(flock(b, LOCK_SH | LOCK_NB)));
    int a2 = dup(a);
    printf("flock dup of a EX|NB (same description): %s\n", err(flock(a2, LOCK_EX | LOCK_NB)));
    printf("flock a SH (convert): %s\n", err(flock(a, LOCK_SH)));
    printf("flock b SH|NB: %s\n", err(flock(b, LOCK_SH | LOCK_NB)));
    printf("flock a EX|NB (convert, conflicts): %s\n", err(flock(a, LOCK_EX | LOCK_NB)));
    printf("flock b EX|NB (a lost its SH converting): %s\n", err(flock(b, LOCK_EX | LOCK_NB)));
    printf("flock b UN: %s\n", err(flock(b, LOCK_UN)));
    printf("flock b UN again: %s\n", err(flock(b, LOCK_UN)));
    printf("flock op 0: %s\n", err(flock(a, 0)));
    printf("flock op SH|UN: %s\n", err(flock(a, LOCK_SH | LOCK_UN)));
    printf("flock op NB only: %s\n", err(flock(a, LOCK_NB)));
    printf("flock bad fd: %s\n", err(flock(99, LOCK_SH)));
    printf("flock bad fd bad op: %s\n", err(flock(99, 0)));
    printf("flock a EX: %s\n", err(flock(a, LOCK_EX)));
    printf("record lock beside flock: %s\n", err(lk(b, F_OFD_SETLK, F_RDLCK, SEEK_SET, 0, 0)));
    get("flock is not a record lock", b, F_GETLK, F_WRLCK, SEEK_SET, 0, 0);
    close(a);
    printf("flock b EX|NB after closing one fd of a: %s\n", err(flock(b, LOCK_EX | LOCK_NB)));
    close(a2);
    printf("flock b EX|NB after closing a's last fd: %s\n", err(flock(b, LOCK_EX | LOCK_NB)));
    close(b);
}

static volatile int acquired, handled, result, result_errno;
static int wa, wb;

static void *waiter(void *arg)
{
    (void)arg;
    int r = flock(wb, LOCK_EX);
    result = r;
    result_errno = errno;
    __atomic_store_n(&acquired, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void on_usr1(int sig) { (void)sig; handled++; }

static void blocking(void)
{
    pthread_t t;
    /* A blocked flock is woken by the unlock. */
    wa = open(path, O_RDONLY);
    wb = open(path, O_RDONLY);
    flock(wa, LOCK_EX);
    acquired = 0;
    pthread_create(&t, NULL, waiter, NULL);
    usleep(50000);
    printf("waiter got the lock while it was held: %d\n", __atomic_load_n(&acquired, __ATOMIC_SEQ_CST));
    flock(wa, LOCK_UN);
    pthread_join(t, NULL);
    printf("waiter after unlock: %s\n", result == 0 ? "ok" : ename(result_errno));
    printf("holder EX|NB now: %s\n", err(flock(wa, LOCK_EX | LOCK_NB)));
    close(wb);
    flock(wa, LOCK_EX);

    /* ... and by the close of the holder's last fd. */
    wb = open(path, O_RDONLY);
    acquired = 0;
    pthread_create(&t, NULL, waiter, NULL);
    usleep(50000);
    printf("waiter got the lock while it was held: %d\n", __atomic_load_n(&acquired, __ATOMIC_SEQ_CST));
    close(wa);
    pthread_join(t, NULL);
    printf("waiter after close: %s\n", result == 0 ? "ok" : ename(result_errno));

    /* A handled signal without SA_RESTART interrupts the wait with EINTR. */
    wa = wb;
    wb = open(path, O_RDONLY);
    struct sigaction sa = { .sa_handler = on_usr1 };
    sigaction(SIGUSR1, &sa, NULL);
    acquired = 0;
    pthread_create(&t, NULL, waiter, NULL);
    while (!__atomic_load_n(&acquired, __ATOMIC_SEQ_CST))
    {
        pthread_kill(t, SIGUSR1);
        usleep(20000);
    }
    pthread_join(t, NULL);
    printf("waiter signalled: %s, handler ran: %s\n", result == 0 ? "ok" : ename(result_errno), handled > 0 ? "yes" : "no");

    /* With SA_RESTART the wait goes on after the handler and ends with the unlock. */
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    acquired = 0;
    handled = 0;
    pthread_create(&t, NULL, waiter, NULL);
    for (int i = 0; i < 5; i++)
    {
        pthread_kill(t, SIGUSR1);
        usleep(20000);
    }
    printf("restarting waiter got the lock while it was held: %d\n", __atomic_load_n(&acquired, __ATOMIC_SEQ_CST));
    flock(wa, LOCK_UN);
    pthread_join(t, NULL);
    printf("restarting waiter after unlock: %s, handler ran: %s\n", result == 0 ? "ok" : ename(result_errno), handled > 0 ? "yes" : "no");
    close(wa);

    /* The waiter's fd is closed by another thread while it waits: the lock it then takes goes with the description
     * as its call returns. */
    wa = wb;
    wb = open(path, O_RDONLY);
    sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, NULL);
    pthread_create(&t, NULL, waiter, NULL);
    usleep(50000);
    close(wb);
    flock(wa, LOCK_UN);
    pthread_join(t, NULL);
    int c = open(path, O_RDONLY);
    printf("EX|NB after the closed waiter's call: %s\n", err(flock(c, LOCK_EX | LOCK_NB)));
    close(c);
    close(wa);
}

int main(int argc, char **argv)
{
    if (argc < 2) return 2;
    path = argv[1];
    setvbuf(stdout, NULL, _IONBF, 0);
    record_locks();
    flocks();
    blocking();
    printf("done\n");
    return 0;
}
