/* files: read-only host files given with --file: open/openat, read, pread, lseek SET/CUR/END, fstat/stat, close, EBADF/ENOENT, stdio, opendir/readdir (getdents64, names sorted), readlink /proc/self/exe (ok + basename only). Run: files FILE DIR [--file FILE --file DIR]; DIR must hold >= 1 regular file. "files probe PATH..." prints only whether each PATH opens read-only. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void show(const char *what, const unsigned char *p, ssize_t n)
{
    printf("%s:", what);
    for (ssize_t i = 0; i < n; i++) printf(" %02x", p[i]);
    printf("\n");
}

/* rc is the call's result, read together with errno right after the call */
static void fails(const char *what, long rc, int want, const char *wname)
{
    int e = errno;
    printf("%s fails %s errno %s %s\n", what, rc == -1 ? "yes" : "no", wname, e == want ? "yes" : "no");
    errno = 0;
}

static int probe(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        int fd = open(argv[i], O_RDONLY);
        printf("probe %s: %s\n", argv[i], fd >= 0 ? "ok" : "denied");
        if (fd >= 0) close(fd);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "probe") == 0) return probe(argc, argv);
    if (argc != 3) { fprintf(stderr, "usage: files FILE DIR\n"); return 2; }
    const char *file = argv[1], *dir = argv[2];

    int fd = open(file, O_RDONLY);
    if (fd < 0) { printf("open file failed errno %d\n", errno); return 1; }
    printf("open file ok\n");

    struct stat st, st2;
    if (fstat(fd, &st) != 0) { printf("fstat failed\n"); return 1; }
    if (stat(file, &st2) != 0) { printf("stat failed\n"); return 1; }
    printf("fstat size %lld regular %s\n", (long long)st.st_size, S_ISREG(st.st_mode) ? "yes" : "no");
    printf("stat size %lld same as fstat %s\n", (long long)st2.st_size, st2.st_size == st.st_size ? "yes" : "no");

    /* read the whole file in odd-sized chunks */
    unsigned char buf[777];
    uint64_t h = 1469598103934665603ull;
    long long total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) { h = fnv(buf, (size_t)n, h); total += n; }
    printf("read %lld bytes fnv %016llx last read %zd\n", total, (unsigned long long)h, n);
    printf("read at EOF returns %zd\n", read(fd, buf, 10));

    printf("lseek SET 100 -> %lld\n", (long long)lseek(fd, 100, SEEK_SET));
    n = read(fd, buf, 8);
    show("bytes 100..107", buf, n);
    printf("lseek CUR -5 -> %lld\n", (long long)lseek(fd, -5, SEEK_CUR));
    n = read(fd, buf, 4);
    show("bytes 103..106", buf, n);
    printf("lseek END -20 -> size-20 %s\n", lseek(fd, -20, SEEK_END) == st.st_size - 20 ? "yes" : "no");
    n = read(fd, buf, 100);
    printf("read near end returns %zd\n", n);
    printf("lseek past end -> %lld\n", (long long)lseek(fd, st.st_size + 1000, SEEK_SET));
    printf("read past end returns %zd\n", read(fd, buf, 10));
    fails("lseek to -1", lseek(fd, -1, SEEK_SET), EINVAL, "EINVAL");

    lseek(fd, 42, SEEK_SET);
    n = pread(fd, buf, 6, 5000);
    show("pread 6 at 5000", buf, n);
    printf("pread keeps offset %s\n", lseek(fd, 0, SEEK_CUR) == 42 ? "yes" : "no");
    printf("pread past end returns %zd\n", pread(fd, buf, 6, st.st_size + 5));
    fails("write to read-only fd", write(fd, "x", 1), EBADF, "EBADF");

    printf("close %s\n", close(fd) == 0 ? "ok" : "FAILED");
    fails("read closed fd", read(fd, buf, 1), EBADF, "EBADF");
    fails("close again", close(fd), EBADF, "EBADF");

    /* openat with AT_FDCWD and with a directory fd */
    int fd2 = openat(AT_FDCWD, file, O_RDONLY | O_CLOEXEC);
    printf("openat AT_FDCWD %s\n", fd2 >= 0 ? "ok" : "FAILED");
    if (fd2 >= 0) {
        n = read(fd2, buf, 16);
        show("first 16 bytes", buf, n);
        close(fd2);
    }

    /* stdio on the file */
    FILE *f = fopen(file, "r");
    if (f) {
        char line[128];
        if (fgets(line, sizeof line, f)) printf("fgets first line: %s", line);
        fseek(f, 0, SEEK_END);
        printf("ftell at end %ld\n", ftell(f));
        fclose(f);
    } else printf("fopen FAILED\n");

    /* the directory */
    struct stat dst;
    printf("stat dir is dir %s\n", stat(dir, &dst) == 0 && S_ISDIR(dst.st_mode) ? "yes" : "no");
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/no-such-file", dir);
    fails("open missing file in dir", open(missing, O_RDONLY), ENOENT, "ENOENT");

    DIR *d = opendir(dir);
    if (!d) { printf("opendir FAILED errno %d\n", errno); return 1; }
    char *names[256];
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (count < 256) names[count++] = strdup(e->d_name);
    }
    qsort(names, (size_t)count, sizeof names[0], cmp);
    printf("dir entries %d\n", count);
    int dfd = dirfd(d);
    const char *first_reg = NULL;
    for (int i = 0; i < count; i++) {
        struct stat es;
        if (fstatat(dfd, names[i], &es, 0) != 0) { printf("  %s: fstatat FAILED\n", names[i]); continue; }
        if (S_ISDIR(es.st_mode)) printf("  %s/\n", names[i]);
        else {
            printf("  %s size %lld\n", names[i], (long long)es.st_size);
            if (!first_reg && S_ISREG(es.st_mode)) first_reg = names[i];
        }
    }
    if (first_reg) {
        int rfd = openat(dfd, first_reg, O_RDONLY);
        printf("openat(dirfd, \"%s\") %s\n", first_reg, rfd >= 0 ? "ok" : "FAILED");
        if (rfd >= 0) {
            h = 1469598103934665603ull;
            total = 0;
            while ((n = read(rfd, buf, sizeof buf)) > 0) { h = fnv(buf, (size_t)n, h); total += n; }
            printf("  read %lld bytes fnv %016llx\n", total, (unsigned long long)h);
            close(rfd);
        }
    }
    closedir(d);

    char exe[4096];
    ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (l > 0) {
        exe[l] = 0;
        const char *base = strrchr(exe, '/');
        printf("readlink /proc/self/exe ok basename %s\n", base ? base + 1 : exe);
    } else printf("readlink /proc/self/exe failed\n");
    return 0;
}
