/* bigout: writes KIB KiB of numbered lines to stdout with write(2) in varying chunk sizes (pipe back-pressure, partial writes), a progress line to stderr every 64 KiB. Run: bigout [KIB=512] (no stdin). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void put(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) _exit(10);
        p += w;
        n -= (size_t)w;
    }
}

int main(int argc, char **argv)
{
    long kib = argc > 1 ? atol(argv[1]) : 512;
    size_t total = (size_t)kib * 1024;
    char *buf = malloc(total + 64);
    if (!buf) { fprintf(stderr, "allocation failed\n"); return 3; }
    size_t len = 0;
    for (long line = 0; len < total; line++) {
        int n = snprintf(buf + len, 64, "%08ld abcdefghijklmnopqrstuvwxyz %ld\n", line, line * line % 1000003);
        len += (size_t)n;
    }
    len = total;
    size_t off = 0, chunk = 1, next_report = 65536;
    while (off < len) {
        size_t n = chunk < len - off ? chunk : len - off;
        put(1, buf + off, n);
        off += n;
        chunk = chunk * 3 + 7;
        if (chunk > 200000) chunk = 1;
        while (off >= next_report) {
            char msg[64];
            int m = snprintf(msg, sizeof msg, "progress %zu KiB\n", next_report / 1024);
            put(2, msg, (size_t)m);
            next_report += 65536;
        }
    }
    fprintf(stderr, "wrote %zu bytes\n", off);
    free(buf);
    return 0;
}
