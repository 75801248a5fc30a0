/* exhaust: tries to exhaust, in turn, memory, fds and threads, and prints what it got. Each part is also a mode.
 *   exhaust memory RAM_MIB  mmap 1 MiB chunks (each page touched) until ENOMEM, then brk until it stops growing;
 *                           checks it all fit in RAM_MIB, that a failed call changed nothing, and that memory freed
 *                           can be had again. Natively RAM_MIB is whatever you give (the host decides; not compared).
 *   exhaust fds [show]      dup until EMFILE at RLIMIT_NOFILE's soft limit; again under a soft limit of 64 set by
 *                           setrlimit; pipe and socket at the limit fail EMFILE too. Linux's behaviour, compared with
 *                           native. `show` also prints the soft and hard limits (a domain's come from max_fds).
 *   exhaust threads [MAX]   pthread_create (threads parked on a condvar) until it fails; prints how many and the
 *                           errno (EAGAIN in a domain past max_threads); with MAX, stops at MAX threads at most.
 *   exhaust console KIB     reads stdin to its end first (a test starts the flood when it likes), then writes KIB KiB
 *                           of numbered lines "%08ld console line\n" to stdout in writes of growing size (1 B to
 *                           256 KiB: partial writes), and "console done\n". Fills whatever holds console output.
 *   exhaust                 memory 128, fds, threads 600.
 * Exits 0 when every check held, 1 otherwise. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static int failed;

static void check(const char *what, int ok)
{
    printf("  %s: %s\n", what, ok ? "yes" : "NO");
    if (!ok) failed = 1;
}

#define MAX_CHUNKS 65536

static int memory(long ram_mib)
{
    static void *chunks[MAX_CHUNKS];
    long n = 0;
    int err = 0;
    printf("memory (RAM %ld MiB):\n", ram_mib);
    while (n < MAX_CHUNKS) {
        void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) { err = errno; break; }
        for (long off = 0; off < (1 << 20); off += 4096) ((volatile char *)p)[off] = (char)(n + off);
        chunks[n++] = p;
        if (n > ram_mib * 2 + 64) break; /* natively: a host with more memory than this domain would have */
    }
    int enomem = err == ENOMEM;
    check("mmap stops with ENOMEM", enomem || n > ram_mib * 2 + 64);
    check("what was mapped fits in RAM", n <= ram_mib || n > ram_mib * 2 + 64);
    int intact = 1;
    for (long i = 0; i < n; i++)
        for (long off = 0; off < (1 << 20); off += 4096)
            if (((volatile char *)chunks[i])[off] != (char)(i + off)) intact = 0;
    check("every page touched keeps its byte", intact);
    errno = 0;
    void *big = mmap(NULL, (size_t)ram_mib << 21, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check("a mapping of twice RAM fails ENOMEM", big == MAP_FAILED && errno == ENOMEM);
    if (big != MAP_FAILED) munmap(big, (size_t)ram_mib << 21);
    for (long i = 0; i < n / 2; i++) munmap(chunks[i], 1 << 20);
    void *again = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check("memory freed can be mapped again", again != MAP_FAILED);
    if (again != MAP_FAILED) { memset(again, 1, 1 << 20); munmap(again, 1 << 20); }
    for (long i = n / 2; i < n; i++) munmap(chunks[i], 1 << 20);

    /* brk: grow 1 MiB at a time until the kernel leaves it where it was (Linux's brk returns the old break). */
    char *start = sbrk(0), *cur = start;
    long grown = 0;
    while (grown <= ram_mib * 2 + 64) {
        char *want = cur + (1 << 20);
        char *got = (char *)(intptr_t)syscall(12 /* brk */, want);
        if (got != want) break;
        for (char *q = cur; q < want; q += 4096) *q = 7;
        cur = want;
        grown++;
    }
    check("brk stops growing within RAM", grown <= ram_mib || grown > ram_mib * 2 + 64);
    syscall(12, start);
    check("brk shrinks back", (char *)(intptr_t)syscall(12, 0) == start);
    printf("  mapped %ld MiB, brk grew %ld MiB\n", n, grown);
    fflush(stdout);
    return 0;
}

static int dup_until_emfile(int *highest, int *count, int *fds, int cap)
{
    int fd, n = 0;
    *highest = -1;
    errno = 0;
    while (n < cap && (fd = dup(0)) >= 0) { fds[n++] = fd; if (fd > *highest) *highest = fd; }
    int err = n < cap ? errno : 0;
    *count = n;
    return err;
}

static int fds(int show)
{
    static int opened[70000];
    struct rlimit r;
    getrlimit(RLIMIT_NOFILE, &r);
    printf("fds:\n");
    if (show) printf("  soft limit %llu, hard limit %llu\n", (unsigned long long)r.rlim_cur, (unsigned long long)r.rlim_max);
    int cap = r.rlim_cur < 65536 ? (int)r.rlim_cur : 65536, highest, n;
    int err = dup_until_emfile(&highest, &n, opened, cap);
    check("dup stops with EMFILE", err == EMFILE);
    check("the last fd is the soft limit less one", highest == (int)r.rlim_cur - 1);
    int p[2];
    errno = 0;
    check("pipe at the limit fails EMFILE", pipe(p) == -1 && errno == EMFILE);
    errno = 0;
    check("socket at the limit fails EMFILE", socket(AF_UNIX, SOCK_STREAM, 0) == -1 && errno == EMFILE);
    close(opened[n - 1]);
    check("closing one lets one more open", dup(0) == opened[n - 1]);
    for (int i = 0; i < n; i++) close(opened[i]);

    struct rlimit low = { 64, r.rlim_max };
    check("setrlimit NOFILE soft 64", setrlimit(RLIMIT_NOFILE, &low) == 0);
    err = dup_until_emfile(&highest, &n, opened, 70000);
    check("dup stops with EMFILE at 64", err == EMFILE && highest == 63);
    for (int i = 0; i < n; i++) close(opened[i]);
    check("the soft limit goes back up", setrlimit(RLIMIT_NOFILE, &r) == 0);
    fflush(stdout);
    return 0;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go = PTHREAD_COND_INITIALIZER;
static int released;

static void *parked(void *arg)
{
    pthread_mutex_lock(&lock);
    while (!released) pthread_cond_wait(&go, &lock);
    pthread_mutex_unlock(&lock);
    return arg;
}

static int threads(int max)
{
    static pthread_t t[4096];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 << 10);
    int n = 0, err = 0;
    printf("threads:\n");
    while (n < max && n < 4096) {
        err = pthread_create(&t[n], &attr, parked, NULL);
        if (err) break;
        n++;
    }
    printf("  created %d besides main, then %s\n", n, err == EAGAIN ? "EAGAIN" : err ? strerror(err) : "stopped at the maximum");
    pthread_mutex_lock(&lock);
    released = 1;
    pthread_cond_broadcast(&go);
    pthread_mutex_unlock(&lock);
    int joined = 0;
    for (int i = 0; i < n; i++) joined += pthread_join(t[i], NULL) == 0;
    check("every thread joined", joined == n);
    pthread_t one;
    released = 1;
    int again = pthread_create(&one, &attr, parked, NULL);
    check("a thread can be made again", again == 0);
    if (again == 0) pthread_join(one, NULL);
    fflush(stdout);
    return 0;
}

static int console(long kib)
{
    char in[256];
    while (read(0, in, sizeof in) > 0) {}
    size_t total = (size_t)kib * 1024, len = 0;
    char *buf = malloc(total + 64);
    if (!buf) return 3;
    for (long line = 0; len < total; line++) len += (size_t)snprintf(buf + len, 64, "%08ld console line\n", line);
    size_t off = 0, chunk = 1;
    while (off < len) {
        size_t n = chunk < len - off ? chunk : len - off;
        ssize_t w = write(1, buf + off, n);
        if (w <= 0) return 10;
        off += (size_t)w;
        chunk = chunk * 5 + 3;
        if (chunk > 262144) chunk = 1;
    }
    free(buf);
    static const char done[] = "console done\n";
    return write(1, done, sizeof done - 1) == sizeof done - 1 ? 0 : 10;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *mode = argc > 1 ? argv[1] : "all";
    if (strcmp(mode, "memory") == 0) memory(argc > 2 ? atol(argv[2]) : 128);
    else if (strcmp(mode, "fds") == 0) fds(argc > 2 && strcmp(argv[2], "show") == 0);
    else if (strcmp(mode, "console") == 0) return console(argc > 2 ? atol(argv[2]) : 1024);
    else if (strcmp(mode, "threads") == 0) threads(argc > 2 ? atoi(argv[2]) : 4096);
    else {
        memory(128);
        fds(0);
        threads(600);
    }
    printf("%s\n", failed ? "FAILED" : "all checks held");
    return failed;
}
