/* rlimits: setrlimit/getrlimit/prlimit read back what was set; EINVAL for soft > hard or a bad resource, EPERM for raising a hard limit (unprivileged), ESRCH for another pid; RLIMIT_NOFILE enforced on dup/dup2/F_DUPFD, RLIMIT_AS on mmap. Run: rlimits (no args; --memory 256 in a domain; natively without CAP_SYS_RESOURCE), or rlimits keep (sets NOFILE 16/64, sleeps 1 s, checks they still hold: across checkpoints). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

static const char *yesno(int b) { return b ? "yes" : "no"; }

static int map_ok(size_t mib)
{
    void *p = mmap(NULL, mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int ok = p != MAP_FAILED;
    int e = errno;
    if (ok) munmap(p, mib << 20);
    errno = e;
    return ok;
}

static int keep(void)
{
    struct rlimit r = { 16, 64 };
    printf("NOFILE 16/64 set %s\n", yesno(setrlimit(RLIMIT_NOFILE, &r) == 0));
    fflush(stdout);
    struct timespec req = { 1, 0 };
    nanosleep(&req, NULL);
    getrlimit(RLIMIT_NOFILE, &r);
    printf("after 1 s: NOFILE soft 16 %s, hard 64 %s\n", yesno(r.rlim_cur == 16), yesno(r.rlim_max == 64));
    errno = 0;
    printf("dup2 onto fd 16 fails EBADF %s\n", yesno(dup2(0, 16) == -1 && errno == EBADF));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "keep") == 0) return keep();
    struct rlimit orig, r;
    int ok = getrlimit(RLIMIT_NOFILE, &orig) == 0;
    printf("getrlimit NOFILE ok %s, soft <= hard %s\n", yesno(ok), yesno(ok && orig.rlim_cur <= orig.rlim_max));

    r.rlim_cur = 16;
    r.rlim_max = orig.rlim_max;
    printf("setrlimit NOFILE soft 16 ok %s\n", yesno(setrlimit(RLIMIT_NOFILE, &r) == 0));
    getrlimit(RLIMIT_NOFILE, &r);
    printf("  reads back soft 16 %s, hard unchanged %s\n", yesno(r.rlim_cur == 16), yesno(r.rlim_max == orig.rlim_max));

    int fds[64], n = 0, fd, highest = -1;
    errno = 0;
    while (n < 64 && (fd = dup(0)) >= 0) { fds[n++] = fd; if (fd > highest) highest = fd; }
    printf("  dup stops with EMFILE %s, no fd >= 16 handed out %s\n", yesno(fd == -1 && errno == EMFILE), yesno(highest < 16));
    for (int i = 0; i < n; i++) close(fds[i]);
    errno = 0;
    printf("  dup2 onto fd 16 fails EBADF %s\n", yesno(dup2(0, 16) == -1 && errno == EBADF));
    errno = 0;
    printf("  F_DUPFD from 16 fails EINVAL %s\n", yesno(fcntl(0, F_DUPFD, 16) == -1 && errno == EINVAL));
    fd = dup2(0, 15);
    printf("  dup2 onto fd 15 ok %s\n", yesno(fd == 15));
    close(15);

    r.rlim_cur = 32;
    r.rlim_max = 20;
    errno = 0;
    printf("soft > hard fails EINVAL %s\n", yesno(setrlimit(RLIMIT_NOFILE, &r) == -1 && errno == EINVAL));

    r.rlim_cur = 16;
    r.rlim_max = 64;
    printf("lowering the NOFILE hard limit to 64 ok %s\n", yesno(setrlimit(RLIMIT_NOFILE, &r) == 0));
    r.rlim_max = 65;
    errno = 0;
    printf("raising it again fails EPERM %s\n", yesno(setrlimit(RLIMIT_NOFILE, &r) == -1 && errno == EPERM));
    r.rlim_cur = 64;
    r.rlim_max = 64;
    printf("raising the soft limit up to the hard one ok %s\n", yesno(setrlimit(RLIMIT_NOFILE, &r) == 0));
    struct rlimit old;
    printf("prlimit reads the same %s\n", yesno(prlimit(0, RLIMIT_NOFILE, NULL, &old) == 0 && old.rlim_cur == 64 && old.rlim_max == 64));
    r.rlim_cur = 40;
    printf("prlimit sets and returns the old one %s\n", yesno(prlimit(0, RLIMIT_NOFILE, &r, &old) == 0 && old.rlim_cur == 64 && getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur == 40));
    errno = 0;
    printf("prlimit of resource 16 fails EINVAL %s\n", yesno(prlimit(0, 16, NULL, &old) == -1 && errno == EINVAL));
    errno = 0;
    printf("prlimit of another pid fails ESRCH %s\n", yesno(prlimit(999999, RLIMIT_NOFILE, NULL, &old) == -1 && errno == ESRCH));

    r.rlim_cur = 0;
    r.rlim_max = 0;
    printf("RLIMIT_CORE 0 set and read back %s\n", yesno(setrlimit(RLIMIT_CORE, &r) == 0 && getrlimit(RLIMIT_CORE, &r) == 0 && r.rlim_cur == 0 && r.rlim_max == 0));
    getrlimit(RLIMIT_STACK, &orig);
    r.rlim_cur = 1 << 20;
    r.rlim_max = orig.rlim_max;
    printf("RLIMIT_STACK soft 1 MiB set and read back %s\n", yesno(setrlimit(RLIMIT_STACK, &r) == 0 && getrlimit(RLIMIT_STACK, &r) == 0 && r.rlim_cur == 1 << 20));

    getrlimit(RLIMIT_AS, &orig);
    printf("RLIMIT_AS hard unlimited %s\n", yesno(orig.rlim_max == RLIM_INFINITY));
    r.rlim_cur = 64 << 20;
    r.rlim_max = orig.rlim_max;
    printf("RLIMIT_AS soft 64 MiB ok %s\n", yesno(setrlimit(RLIMIT_AS, &r) == 0));
    printf("  mmap 16 MiB ok %s\n", yesno(map_ok(16)));
    errno = 0;
    int big = map_ok(100);
    printf("  mmap 100 MiB fails ENOMEM %s\n", yesno(!big && errno == ENOMEM));
    r.rlim_cur = RLIM_INFINITY;
    printf("RLIMIT_AS soft back to unlimited ok %s\n", yesno(setrlimit(RLIMIT_AS, &r) == 0));
    printf("  mmap 100 MiB ok %s\n", yesno(map_ok(100)));
    return 0;
}
