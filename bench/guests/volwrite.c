/* Volume write benchmark (remus-bench volume): timed inside the program with CLOCK_MONOTONIC.
 *   volwrite fsync FILE N     N times: pwrite 4 KiB at the next offset, fsync  -> "fsync_writes_per_s X"
 *   volwrite seq FILE MIB     MIB MiB written in 1 MiB write()s, then fsync   -> "seq_mb_per_s X"
 * The file is removed at the end. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 4) return 1;
    int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror("open"); return 2; }
    long n = atol(argv[3]);
    if (strcmp(argv[1], "fsync") == 0) {
        static char block[4096];
        double t0 = now();
        for (long i = 0; i < n; i++) {
            memset(block, (int)i, sizeof block);
            if (pwrite(fd, block, sizeof block, i * 4096L) != sizeof block) { perror("pwrite"); return 3; }
            if (fsync(fd) != 0) { perror("fsync"); return 3; }
        }
        printf("fsync_writes_per_s %.1f\n", n / (now() - t0));
    } else {
        static char chunk[1 << 20];
        double t0 = now();
        for (long i = 0; i < n; i++) {
            memset(chunk, (int)i + 1, sizeof chunk);
            for (size_t off = 0; off < sizeof chunk;) {
                ssize_t w = write(fd, chunk + off, sizeof chunk - off);
                if (w <= 0) { perror("write"); return 3; }
                off += (size_t)w;
            }
        }
        if (fsync(fd) != 0) { perror("fsync"); return 3; }
        printf("seq_mb_per_s %.1f\n", n * 1.048576 / (now() - t0));
    }
    close(fd);
    unlink(argv[2]);
    return 0;
}
