/* Locks held across checkpoints, and a flock waiter blocked through them (argv[1]: a file, read-only). The main
 * thread holds a flock, a POSIX and an OFD read lock; a second thread blocks in flock(LOCK_EX) on another description
 * while the domain is saved and restored (the call restarts after each restore); after about a second the main thread
 * checks that its locks are all still there, lets go, and the waiter takes the lock. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

static int a, b;
static volatile int acquired, result;

static void *waiter(void *arg)
{
    (void)arg;
    result = flock(b, LOCK_EX);
    __atomic_store_n(&acquired, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static const char *getlk(int fd, int cmd, long start)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = 1 };
    if (fcntl(fd, cmd, &fl) != 0) return "error";
    if (fl.l_type == F_UNLCK) return "none";
    return fl.l_pid == -1 ? "ofd" : fl.l_pid == getpid() ? "posix" : "other";
}

int main(int argc, char **argv)
{
    if (argc < 2) return 2;
    setvbuf(stdout, NULL, _IONBF, 0);
    a = open(argv[1], O_RDONLY);
    b = open(argv[1], O_RDONLY);
    int c = open(argv[1], O_RDONLY);
    struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
    printf("flock a EX: %d\n", flock(a, LOCK_EX));
    printf("posix RD [0,10): %d\n", fcntl(a, F_SETLK, &fl));
    fl.l_start = 20;
    printf("ofd RD [20,30) via a: %d\n", fcntl(a, F_OFD_SETLK, &fl));
    pthread_t t;
    pthread_create(&t, NULL, waiter, NULL);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do
    {
        usleep(10000);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) < 1500000000L);
    printf("waiter got the lock while it was held: %d\n", __atomic_load_n(&acquired, __ATOMIC_SEQ_CST));
    printf("flock c SH|NB: %s\n", flock(c, LOCK_SH | LOCK_NB) == 0 ? "ok" : "EWOULDBLOCK");
    printf("posix lock via c: %s\n", getlk(c, F_OFD_GETLK, 5));
    printf("ofd lock via c: %s\n", getlk(c, F_OFD_GETLK, 25));
    printf("ofd lock seen by F_GETLK: %s\n", getlk(c, F_GETLK, 25));
    flock(a, LOCK_UN);
    pthread_join(t, NULL);
    printf("waiter after unlock: %d\n", result);
    printf("flock a EX|NB now: %s\n", flock(a, LOCK_EX | LOCK_NB) == 0 ? "ok" : "EWOULDBLOCK");
    close(c);
    printf("posix lock after close(c): %s\n", getlk(b, F_OFD_GETLK, 5));
    printf("ofd lock after close(c): %s\n", getlk(b, F_OFD_GETLK, 25));
    return 0;
}
