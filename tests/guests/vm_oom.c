/* vm_oom: running out of the domain's memory. `commit MIB`: a read-write private mapping of MIB MiB (more than the
   domain's RAM) fails up front with ENOMEM, while the same size with MAP_NORESERVE succeeds; `touch MIB`: touches
   every page of a MAP_NORESERVE mapping of MIB MiB, which the domain's RAM cannot back: SIGBUS (exit 135), never a
   crash of the VMM. Run: vm_oom commit|touch MIB */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 3) { fprintf(stderr, "usage: vm_oom commit|touch MIB\n"); return 2; }
    size_t len = (size_t)atol(argv[2]) << 20;
    if (strcmp(argv[1], "commit") == 0) {
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        printf("committed mapping: %s\n", p == MAP_FAILED ? (errno == ENOMEM ? "ENOMEM" : strerror(errno)) : "mapped");
        void *q = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        printf("MAP_NORESERVE mapping: %s\n", q == MAP_FAILED ? strerror(errno) : "mapped");
        return 0;
    }
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    printf("touching %s MiB\n", argv[2]);
    for (size_t i = 0; i < len; i += 4096) p[i] = 1;
    printf("touched them all?!\n");
    return 0;
}
