/* Random record-lock and flock operations with a fixed seed on a writable file (argv[1]: a directory — in a domain a
 * volume), each result and a random F_GETLK / F_OFD_GETLK probe printed: merging, splitting, conflicts and the order in
 * which F_GETLK finds the first conflict must come out exactly as natively. Three descriptions; an actor is the
 * process (POSIX locks, through any of them) or one description (OFD locks); now and then a description is closed
 * (dropping the process's POSIX locks and its own OFD locks and flock) and opened again. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static unsigned long long x = 88172645463325252ULL;
static unsigned rnd(unsigned n) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return (unsigned)(x % n); }

static const char *ename(int e) { return e == EAGAIN ? "EAGAIN" : e == EINVAL ? "EINVAL" : e == EBADF ? "EBADF" : "other"; }

int main(int argc, char **argv)
{
    if (argc < 2) return 2;
    char path[4096];
    snprintf(path, sizeof path, "%s/random", argv[1]);
    int fd[3];
    fd[0] = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    fd[1] = open(path, O_RDWR);
    fd[2] = open(path, O_RDWR);
    char buf[64] = { 0 };
    write(fd[0], buf, sizeof buf);
    static const char *types[] = { "RD", "WR", "UN" };
    for (int i = 0; i < 3000; i++)
    {
        unsigned op = rnd(20), d = rnd(3);
        if (op == 0)
        {
            close(fd[d]);
            fd[d] = open(path, O_RDWR);
            printf("%d reopen %u\n", i, d);
            continue;
        }
        if (op < 4)
        {
            static const int ops[] = { LOCK_SH, LOCK_EX, LOCK_UN };
            int o = rnd(3);
            int r = flock(fd[d], ops[o] | LOCK_NB);
            printf("%d flock %u %s: %s\n", i, d, types[o], r == 0 ? "ok" : ename(errno));
            continue;
        }
        int ofd = rnd(2), type = rnd(3);
        long start = rnd(64), len = (long)rnd(20) - 3;
        struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
        int r = fcntl(fd[d], ofd ? F_OFD_SETLK : F_SETLK, &fl);
        printf("%d %s %u %s %ld %ld: %s\n", i, ofd ? "ofd" : "posix", d, types[type], start, len, r == 0 ? "ok" : ename(errno));
        unsigned pd = rnd(3);
        int pofd = rnd(2);
        struct flock q = { .l_type = rnd(2), .l_whence = SEEK_SET, .l_start = rnd(64), .l_len = rnd(24) };
        r = fcntl(fd[pd], pofd ? F_OFD_GETLK : F_GETLK, &q);
        if (r != 0) printf("  probe: %s\n", ename(errno));
        else if (q.l_type == F_UNLCK) printf("  probe %s %u: UN\n", pofd ? "ofd" : "posix", pd);
        else
            printf("  probe %s %u: %s %ld %ld %s\n", pofd ? "ofd" : "posix", pd, types[q.l_type], (long)q.l_start, (long)q.l_len,
                   q.l_pid == -1 ? "ofd" : q.l_pid == getpid() ? "posix" : "other");
    }
    printf("done\n");
    return 0;
}
