/* echo_server PORT: a TCP echo server for the network benchmarks, run in a domain (or natively): prints "listening"
 * once bound, then serves one connection at a time, echoing every byte until the client's end of stream. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 7000, one = 1;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 64) < 0) { perror("bind/listen"); return 1; }
    printf("listening %d\n", port);
    fflush(stdout);
    static char buf[65536];
    for (;;) {
        int c = accept(l, NULL, NULL);
        if (c < 0) { perror("accept"); return 1; }
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        for (;;) {
            ssize_t n = read(c, buf, sizeof buf), off = 0;
            if (n <= 0) break;
            while (off < n) {
                ssize_t w = write(c, buf + off, (size_t)(n - off));
                if (w <= 0) break;
                off += w;
            }
            if (off < n) break;
        }
        close(c);
    }
}
