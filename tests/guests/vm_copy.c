/* vm_copy: the kernel's copies honour the program's page permissions, as copy_to_user/copy_from_user: read() and getrandom() into a buffer that runs into a PROT_NONE page fill it up to that page and return the short count; into a PROT_NONE or read-only page EFAULT; write()/open()/clock_gettime with such pointers EFAULT. Run: vm_copy FILE (at least 4 KiB, given with --file). Reading from a pipe instead is all-or-EFAULT per pipe buffer on Linux, so a regular file is used. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void show(const char *what, long r)
{
    if (r < 0) printf("%s: -1 %s\n", what, errno == EFAULT ? "EFAULT" : errno == ENOMEM ? "ENOMEM" : errno == EINVAL ? "EINVAL" : errno == EEXIST ? "EEXIST" : "other");
    else printf("%s: %ld\n", what, r);
}

static unsigned sum(const unsigned char *p, size_t n)
{
    unsigned h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: vm_copy FILE\n"); return 2; }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror("open"); return 1; }
    setvbuf(stdout, NULL, _IONBF, 0);
    long pg = 4096;
    /* [rw][rw][none][ro] */
    unsigned char *p = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    show("mprotect none", mprotect(p + 2 * pg, pg, PROT_NONE));
    show("mprotect ro", mprotect(p + 3 * pg, pg, PROT_READ));
    unsigned char *edge = p + 2 * pg; /* first byte of the PROT_NONE page */

    memset(p, 0x55, 2 * pg);
    show("getrandom 1024 with 256 before PROT_NONE", getrandom(edge - 256, 1024, 0));
    int changed = 0;
    for (int i = 0; i < 256; i++) changed += edge[-256 + i] != 0x55;
    printf("getrandom filled the 256 bytes: %s\n", changed > 200 ? "yes" : "no");
    printf("byte before them untouched: %s\n", edge[-257] == 0x55 ? "yes" : "no");
    show("getrandom into PROT_NONE", getrandom(edge, 16, 0));
    show("getrandom into read-only", getrandom(p + 3 * pg, 16, 0));

    show("read 2048 with 512 before PROT_NONE", read(fd, edge - 512, 2048));
    printf("read bytes hash %08x\n", sum(edge - 512, 512));
    show("read into PROT_NONE", read(fd, edge, 64));
    show("read into read-only", read(fd, p + 3 * pg, 64));
    show("read 100 after", read(fd, p, 100));
    printf("read bytes hash %08x\n", sum(p, 100));

    show("position after the reads", lseek(fd, 0, SEEK_CUR));
    show("pread 4096 from 0 with 1024 before PROT_NONE", pread(fd, edge - 1024, 4096, 0));
    printf("pread bytes hash %08x\n", sum(edge - 1024, 1024));
    show("write from PROT_NONE", write(1, edge, 10));
    show("open path in PROT_NONE", open((const char *)edge, O_RDONLY));
    show("clock_gettime into PROT_NONE", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, edge));
    show("clock_gettime into read-only", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, p + 3 * pg));
    show("clock_gettime straddling into PROT_NONE", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, edge - 8));
    struct timespec *ts = (struct timespec *)(edge - 16);
    show("clock_gettime just below PROT_NONE", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, ts));

    show("mprotect none to rw", mprotect(edge, pg, PROT_READ | PROT_WRITE));
    show("getrandom 1024 across the now writable page", getrandom(edge - 256, 1024, 0));
    show("munmap the page", munmap(edge, pg));
    show("getrandom into the hole", getrandom(edge, 16, 0));
    show("getrandom up to the hole", getrandom(edge - 64, 128, 0));
    return 0;
}
