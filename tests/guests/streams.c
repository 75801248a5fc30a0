/* streams: write/writev/printf to stdout AND stderr, interleaved; the streams must stay apart. Run: streams (no args, no stdin). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/uio.h>

static void wr(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w <= 0) _exit(10);
        s += w;
        n -= (size_t)w;
    }
}

int main(void)
{
    wr(1, "out: write 1\n");
    wr(2, "err: write 1\n");

    struct iovec iov[3] = {
        { (void *)"out: ", 5 },
        { (void *)"writev ", 7 },
        { (void *)"three parts\n", 12 },
    };
    if (writev(1, iov, 3) != 24) return 11;
    struct iovec eiov[2] = { { (void *)"err: writev ", 12 }, { (void *)"two parts\n", 10 } };
    if (writev(2, eiov, 2) != 22) return 12;

    /* zero-length writes and an empty iovec entry are legal */
    if (write(1, "", 0) != 0) return 13;
    struct iovec ziov[2] = { { (void *)"", 0 }, { (void *)"out: after empty iov\n", 21 } };
    if (writev(1, ziov, 2) != 21) return 14;

    for (int i = 0; i < 5; i++) {
        printf("out: printf line %d\n", i);
        fflush(stdout);
        fprintf(stderr, "err: fprintf line %d\n", i);
    }
    /* a line without fflush: stdio flushes it at exit */
    printf("out: buffered until exit\n");
    fputs("err: no newline at end", stderr);
    return 0;
}
