/* stdin_count: read(0) until EOF, echo stdin to stdout (cat), then print bytes/lines/words and an FNV-1a hash to stderr. Run: stdin_count < input (any bytes; empty stdin is fine). */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    static unsigned char buf[4096];
    uint64_t bytes = 0, lines = 0, words = 0, h = 1469598103934665603ull;
    int inword = 0;
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n < 0) { fprintf(stderr, "read failed\n"); return 2; }
        if (n == 0) break;
        for (ssize_t i = 0; i < n; i++) {
            unsigned char c = buf[i];
            h = (h ^ c) * 1099511628211ull;
            if (c == '\n') lines++;
            int sp = c == ' ' || c == '\n' || c == '\t' || c == '\r';
            if (!sp && !inword) words++;
            inword = !sp;
        }
        bytes += (uint64_t)n;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(1, buf + off, (size_t)(n - off));
            if (w <= 0) return 3;
            off += w;
        }
    }
    /* a second read after EOF must still return 0 */
    if (read(0, buf, sizeof buf) != 0) { fprintf(stderr, "read after EOF not 0\n"); return 4; }
    fprintf(stderr, "bytes %llu lines %llu words %llu fnv %016llx\n",
            (unsigned long long)bytes, (unsigned long long)lines, (unsigned long long)words, (unsigned long long)h);
    return 0;
}
