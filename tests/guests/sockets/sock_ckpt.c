/* sock_ckpt: a conversation over a connected socket pair that goes on through pauses, checkpoints and restores: every tick the main thread sends a chunk (some larger than the socket's buffer, taken late by the worker, so the blocking send waits part-way) and waits for the running checksum a worker thread sends back after a MSG_WAITALL receive of it; meanwhile datagrams wait queued in an AF_UNIX SOCK_DGRAM pair and a connection waits unaccepted on a listener, read and accepted at the end. Prints "tick I bytes N sum S" each tick. Mode unix: an AF_UNIX stream socketpair; tcp: a TCP connection on 127.0.0.1 (and the pending connection too). Run: sock_ckpt COUNT INTERVAL_MS unix|tcp. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int tcp;

static void die(const char *what) { printf("%s failed: errno %d\n", what, errno); exit(1); }

static int listener(struct sockaddr_storage *addr, socklen_t *len)
{
    int l;
    if (tcp) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        l = socket(AF_INET, SOCK_STREAM, 0);
        if (bind(l, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
        *len = sizeof a;
        getsockname(l, (struct sockaddr *)addr, len);
    } else {
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "remus-ckpt-%d-%d", (int)getpid(), rand());
        *len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a.sun_path + 1);
        l = socket(AF_UNIX, SOCK_STREAM, 0);
        if (bind(l, (struct sockaddr *)&a, *len) < 0) die("bind");
        memcpy(addr, &a, *len);
    }
    int small = 65536; /* the accepted sockets' receive buffer: a big chunk does not fit in both buffers at once */
    setsockopt(l, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    if (listen(l, 4) < 0) die("listen");
    return l;
}

static int connect_to(struct sockaddr_storage *addr, socklen_t len)
{
    int c = socket(tcp ? AF_INET : AF_UNIX, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)addr, len) < 0) die("connect");
    return c;
}

static int recv_all(int fd, void *buf, size_t n)
{
    ssize_t got = recv(fd, buf, n, MSG_WAITALL);
    return got == (ssize_t)n;
}

/* Accepts the connection that fills the listener's queue after a while, making room for the blocked connect. */
static void *late_accept(void *arg)
{
    int l = (int)(long)arg;
    usleep(300000);
    return (void *)(long)accept(l, NULL, NULL);
}

/*
 * tcp: a blocking connect that waits (about a second) for room in a listener's full accept queue, its SYN dropped
 * and sent again, while pauses and checkpoints come: it returns 0 once, as it would have without them.
 */
static void slow_connect(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    bind(l, (struct sockaddr *)&a, sizeof a);
    getsockname(l, (struct sockaddr *)&a, &len);
    listen(l, 0);
    int first = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(first, (struct sockaddr *)&a, sizeof a) < 0) die("first connect");
    usleep(50000);
    pthread_t t;
    pthread_create(&t, NULL, late_accept, (void *)(long)l);
    int second = socket(AF_INET, SOCK_STREAM, 0);
    int r = connect(second, (struct sockaddr *)&a, sizeof a);
    printf("connect waiting for room in the accept queue: %s\n", r == 0 ? "ok" : strerror(errno));
    void *accepted;
    pthread_join(t, &accepted);
    int s2 = accept(l, NULL, NULL);
    send(second, "hi", 2, 0);
    char buf[4];
    ssize_t n = recv(s2, buf, sizeof buf, 0);
    printf("it carries '%.*s'\n", (int)n, buf);
    close(first); close(second); close(s2); close((int)(long)accepted); close(l);
}

static void *worker(void *arg)
{
    int fd = (int)(long)arg;
    static unsigned char buf[1 << 20];
    uint64_t sum = 0;
    for (;;) {
        uint32_t len;
        if (!recv_all(fd, &len, 4)) break;
        /* Late for a big chunk: the main thread's send waits part-way through, where pauses and checkpoints find it. */
        if (len > 100000) usleep(150000);
        if (len > sizeof buf || !recv_all(fd, buf, len)) { printf("worker: short receive\n"); break; }
        for (uint32_t i = 0; i < len; i++) sum = sum * 131 + buf[i];
        if (send(fd, &sum, 8, MSG_NOSIGNAL) != 8) { printf("worker: send failed\n"); break; }
    }
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int count = argc > 1 ? atoi(argv[1]) : 20, interval = argc > 2 ? atoi(argv[2]) : 100;
    tcp = argc > 3 && strcmp(argv[3], "tcp") == 0;
    srand(getpid());
    if (tcp) slow_connect();

    struct sockaddr_storage addr;
    socklen_t len;
    int l = listener(&addr, &len);
    int a = connect_to(&addr, len);
    int b = accept(l, NULL, NULL);
    if (b < 0) die("accept");
    int pending = connect_to(&addr, len); /* accepted at the end */
    int one = 1, small = 65536;
    setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    if (tcp) setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    int dg[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, dg);
    send(dg[0], "queued-1", 8, 0);
    send(dg[0], "queued-two", 10, 0);

    pthread_t t;
    pthread_create(&t, NULL, worker, (void *)(long)b);
    static unsigned char chunk[1 << 20];
    long total = 0;
    for (int i = 0; i < count; i++) {
        uint32_t n = i % 5 == 4 ? 400000 : 1000 * (uint32_t)(i % 7 + 1);
        for (uint32_t k = 0; k < n; k++) chunk[k] = (unsigned char)(k * 13 + i);
        if (send(a, &n, 4, 0) != 4) die("send length");
        ssize_t sent = send(a, chunk, n, 0);
        if (sent != (ssize_t)n) { printf("short send %zd of %u\n", sent, n); return 1; }
        uint64_t sum;
        if (!recv_all(a, &sum, 8)) die("recv sum");
        total += n;
        printf("tick %d bytes %ld sum %016llx\n", i, total, (unsigned long long)sum);
        usleep(interval * 1000);
    }
    shutdown(a, SHUT_WR);
    char c;
    printf("end of stream %zd\n", recv(a, &c, 1, 0));
    pthread_join(t, NULL);
    close(a);

    char buf[32];
    ssize_t n = recv(dg[0 + 1], buf, sizeof buf, 0);
    printf("datagram '%.*s'\n", (int)n, buf);
    n = recv(dg[1], buf, sizeof buf, 0);
    printf("datagram '%.*s'\n", (int)n, buf);
    int p = accept(l, NULL, NULL);
    printf("pending connection accepted %s\n", p >= 0 ? "yes" : "no");
    send(pending, "late", 4, 0);
    n = recv(p, buf, sizeof buf, 0);
    printf("it carries '%.*s'\n", (int)n, buf);
    return 0;
}
