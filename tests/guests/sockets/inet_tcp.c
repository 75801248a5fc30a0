/* inet_tcp: TCP on 127.0.0.1 through the socket API: ephemeral bind, getsockname/getpeername, non-blocking connect (EINPROGRESS, poll, SO_ERROR), blocking connect, accept4 flags and the peer's address, send/recv with MSG_PEEK/MSG_DONTWAIT/MSG_WAITALL, FIONREAD, readv/writev, shutdown half close and EOF, a reset by SO_LINGER 0 (ECONNRESET, then EPIPE), ECONNREFUSED to a closed port (blocking and via SO_ERROR), EADDRINUSE, errors on the wrong kind of socket, options read back (SO_REUSEADDR, TCP_NODELAY, SO_KEEPALIVE, TCP_KEEPIDLE, SO_RCVBUF, SO_TYPE…), edge-triggered epoll on a connection, and 1 MB from a client thread with a checksum. Prints only what is the same on every run. Run: inet_tcp. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static const char *e(long rc)
{
    if (rc >= 0) return "ok";
    switch (errno) {
    case EAGAIN: return "EAGAIN"; case EPIPE: return "EPIPE"; case ECONNRESET: return "ECONNRESET";
    case ECONNREFUSED: return "ECONNREFUSED"; case ENOTCONN: return "ENOTCONN"; case EINVAL: return "EINVAL";
    case EOPNOTSUPP: return "EOPNOTSUPP"; case EADDRINUSE: return "EADDRINUSE"; case EISCONN: return "EISCONN";
    case EINPROGRESS: return "EINPROGRESS"; case EALREADY: return "EALREADY"; case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ENOPROTOOPT: return "ENOPROTOOPT"; case EDESTADDRREQ: return "EDESTADDRREQ"; default: return "other";
    }
}

static int wait_for(int fd, short events)
{
    struct pollfd p = { fd, events, 0 };
    int n = poll(&p, 1, 10000);
    return n == 1 ? p.revents : 0;
}

static int iopt(int fd, int level, int name)
{
    int v = -1;
    socklen_t l = sizeof v;
    if (getsockopt(fd, level, name, &v, &l) < 0) return -errno;
    return v;
}

static void set(int fd, int level, int name, int v) { setsockopt(fd, level, name, &v, sizeof v); }

static struct sockaddr_in listen_addr;

static int tcp_socket(int flags) { return socket(AF_INET, SOCK_STREAM | flags, 0); }

static int connected_pair(int l, int *server)
{
    int c = tcp_socket(0);
    if (connect(c, (struct sockaddr *)&listen_addr, sizeof listen_addr) < 0) { printf("connect failed %s\n", e(-1)); exit(1); }
    *server = accept(l, NULL, NULL);
    set(c, IPPROTO_TCP, TCP_NODELAY, 1);
    set(*server, IPPROTO_TCP, TCP_NODELAY, 1);
    return c;
}

static unsigned char big[1 << 20];
static void *sender(void *arg)
{
    int fd = (int)(long)arg;
    ssize_t n = send(fd, big, sizeof big, 0);
    close(fd);
    return (void *)n;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char buf[256];
    const char *r;

    int l = tcp_socket(0);
    printf("SO_TYPE %d SO_PROTOCOL %d SO_DOMAIN %d\n", iopt(l, SOL_SOCKET, SO_TYPE), iopt(l, SOL_SOCKET, SO_PROTOCOL), iopt(l, SOL_SOCKET, SO_DOMAIN));
    printf("SO_REUSEADDR default %d", iopt(l, SOL_SOCKET, SO_REUSEADDR));
    set(l, SOL_SOCKET, SO_REUSEADDR, 1);
    printf(", set %d\n", iopt(l, SOL_SOCKET, SO_REUSEADDR));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    getsockname(l, (struct sockaddr *)&a, &al);
    printf("unbound getsockname len %d port %d addr %s\n", (int)al, ntohs(a.sin_port), inet_ntoa(a.sin_addr));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    r = e(bind(l, (struct sockaddr *)&a, sizeof a));
    printf("bind 127.0.0.1:0 %s\n", r);
    printf("bind again %s\n", e(bind(l, (struct sockaddr *)&a, sizeof a)));
    al = sizeof listen_addr;
    getsockname(l, (struct sockaddr *)&listen_addr, &al);
    printf("ephemeral port given: %s, addr %s, len %d\n", listen_addr.sin_port != 0 ? "yes" : "no", inet_ntoa(listen_addr.sin_addr), (int)al);
    printf("getpeername unconnected %s\n", e(getpeername(l, (struct sockaddr *)&a, &al)));
    printf("accept before listen %s\n", e(accept(l, NULL, NULL)));
    r = e(listen(l, 8));
    printf("listen %s, SO_ACCEPTCONN %d\n", r, iopt(l, SOL_SOCKET, SO_ACCEPTCONN));
    int fl = fcntl(l, F_GETFL);
    fcntl(l, F_SETFL, fl | O_NONBLOCK);
    printf("accept nothing non-blocking %s\n", e(accept(l, NULL, NULL)));
    fcntl(l, F_SETFL, fl);
    printf("recv on a listener %s\n", e(recv(l, buf, 1, MSG_DONTWAIT)));
    int busy = tcp_socket(0);
    printf("bind the listener's port %s\n", e(bind(busy, (struct sockaddr *)&listen_addr, sizeof listen_addr)));
    close(busy);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    printf("listen on UDP %s\n", e(listen(u, 1)));
    close(u);

    /* non-blocking connect */
    int c = tcp_socket(SOCK_NONBLOCK);
    r = e(connect(c, (struct sockaddr *)&listen_addr, sizeof listen_addr));
    printf("non-blocking connect %s\n", r);
    int re = wait_for(c, POLLOUT);
    printf("poll for the handshake: OUT %s ERR %s\n", re & POLLOUT ? "yes" : "no", re & POLLERR ? "yes" : "no");
    printf("SO_ERROR %d\n", iopt(c, SOL_SOCKET, SO_ERROR));
    printf("connect again %s", e(connect(c, (struct sockaddr *)&listen_addr, sizeof listen_addr)));
    printf(", and again %s\n", e(connect(c, (struct sockaddr *)&listen_addr, sizeof listen_addr)));
    struct sockaddr_in p, me;
    socklen_t pl = sizeof p, ml = sizeof me;
    getpeername(c, (struct sockaddr *)&p, &pl);
    getsockname(c, (struct sockaddr *)&me, &ml);
    printf("client's peer is the listener: %s; client's address %s, its port ephemeral: %s\n",
           p.sin_port == listen_addr.sin_port && p.sin_addr.s_addr == listen_addr.sin_addr.s_addr ? "yes" : "no",
           inet_ntoa(me.sin_addr), me.sin_port != 0 && me.sin_port != listen_addr.sin_port ? "yes" : "no");
    pl = sizeof p;
    memset(&p, 0, sizeof p);
    int s = accept4(l, (struct sockaddr *)&p, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    printf("accept4 %s len %d, peer is the client: %s, O_NONBLOCK %s, FD_CLOEXEC %d\n", e(s), (int)pl,
           p.sin_port == me.sin_port && p.sin_addr.s_addr == me.sin_addr.s_addr ? "yes" : "no",
           fcntl(s, F_GETFL) & O_NONBLOCK ? "yes" : "no", fcntl(s, F_GETFD));
    ml = sizeof me;
    getsockname(s, (struct sockaddr *)&me, &ml);
    printf("accepted socket's address is the listener's: %s\n", me.sin_port == listen_addr.sin_port ? "yes" : "no");
    fcntl(c, F_SETFL, 0);
    fcntl(s, F_SETFL, 0);

    /* options */
    printf("TCP_NODELAY default %d", iopt(c, IPPROTO_TCP, TCP_NODELAY));
    set(c, IPPROTO_TCP, TCP_NODELAY, 1);
    set(s, IPPROTO_TCP, TCP_NODELAY, 1);
    printf(", set %d\n", iopt(c, IPPROTO_TCP, TCP_NODELAY));
    printf("SO_KEEPALIVE default %d", iopt(c, SOL_SOCKET, SO_KEEPALIVE));
    set(c, SOL_SOCKET, SO_KEEPALIVE, 1);
    printf(", set %d\n", iopt(c, SOL_SOCKET, SO_KEEPALIVE));
    set(c, IPPROTO_TCP, TCP_KEEPIDLE, 30);
    set(c, IPPROTO_TCP, TCP_KEEPINTVL, 5);
    set(c, IPPROTO_TCP, TCP_KEEPCNT, 4);
    printf("TCP_KEEPIDLE %d TCP_KEEPINTVL %d TCP_KEEPCNT %d\n", iopt(c, IPPROTO_TCP, TCP_KEEPIDLE), iopt(c, IPPROTO_TCP, TCP_KEEPINTVL), iopt(c, IPPROTO_TCP, TCP_KEEPCNT));
    int rb = 65536;
    setsockopt(c, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);
    printf("SO_RCVBUF 65536 -> %d\n", iopt(c, SOL_SOCKET, SO_RCVBUF));
    int unknown = iopt(c, SOL_SOCKET, 9999);
    printf("unknown option %s\n", unknown == -ENOPROTOOPT ? "ENOPROTOOPT" : "other");

    /* data */
    printf("recv nothing MSG_DONTWAIT %s\n", e(recv(s, buf, sizeof buf, MSG_DONTWAIT)));
    printf("send %zd\n", send(c, "hello world", 11, 0));
    wait_for(s, POLLIN);
    int n = -1;
    ioctl(s, FIONREAD, &n);
    printf("FIONREAD %d\n", n);
    ssize_t k = recv(s, buf, 5, MSG_PEEK);
    printf("peek %zd '%.*s'\n", k, (int)k, buf);
    k = recv(s, buf, 6, 0);
    printf("recv %zd '%.*s'\n", k, (int)k, buf);
    k = read(s, buf, sizeof buf);
    printf("read %zd '%.*s'\n", k, (int)k, buf);
    struct iovec out[3] = { { "ab", 2 }, { "", 0 }, { "cdefg", 5 } };
    printf("writev %zd\n", writev(s, out, 3));
    char x[3], y[10];
    struct iovec in[2] = { { x, 3 }, { y, 4 } };
    k = recv(c, x, 3, MSG_WAITALL);
    k += readv(c, in + 1, 1);
    printf("WAITALL + readv %zd '%.3s' '%.4s'\n", k, x, y);

    /* edge-triggered epoll */
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u32 = 42 }, got[2];
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    printf("epoll idle %d\n", epoll_wait(ep, got, 2, 0));
    send(c, "1", 1, 0);
    int m = epoll_wait(ep, got, 2, 10000);
    printf("epoll after send %d data %u IN %s\n", m, got[0].data.u32, got[0].events & EPOLLIN ? "yes" : "no");
    printf("epoll again (edge) %d\n", epoll_wait(ep, got, 2, 0));
    send(c, "2", 1, 0);
    printf("epoll after 2nd send %d\n", epoll_wait(ep, got, 2, 10000));
    k = recv(s, buf, 2, MSG_WAITALL);
    printf("both bytes %zd '%.2s'\n", k, buf);
    close(ep);

    /* half close */
    printf("shutdown SHUT_WR %s\n", e(shutdown(c, SHUT_WR)));
    printf("server reads EOF %zd\n", recv(s, buf, sizeof buf, 0));
    re = wait_for(s, POLLIN | POLLRDHUP);
    printf("server poll IN %s RDHUP %s\n", re & POLLIN ? "yes" : "no", re & POLLRDHUP ? "yes" : "no");
    printf("client send after SHUT_WR %s\n", e(send(c, "x", 1, MSG_NOSIGNAL)));
    printf("server still sends %zd\n", send(s, "reply", 5, 0));
    k = recv(c, buf, 5, MSG_WAITALL);
    printf("client reads %zd '%.*s'\n", k, (int)k, buf);
    close(s);
    printf("client reads EOF %zd\n", recv(c, buf, sizeof buf, 0));
    close(c);

    /* reset */
    c = connected_pair(l, &s);
    struct linger lg = { 1, 0 };
    setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    socklen_t ll = sizeof lg;
    struct linger lg2 = { 9, 9 };
    getsockopt(s, SOL_SOCKET, SO_LINGER, &lg2, &ll);
    printf("SO_LINGER %d %d\n", lg2.l_onoff, lg2.l_linger);
    close(s);
    re = wait_for(c, POLLIN);
    printf("after the reset: poll ERR %s HUP %s\n", re & POLLERR ? "yes" : "no", re & POLLHUP ? "yes" : "no");
    printf("recv %s\n", e(recv(c, buf, sizeof buf, 0)));
    printf("then recv %zd\n", recv(c, buf, sizeof buf, 0));
    printf("send %s\n", e(send(c, "x", 1, MSG_NOSIGNAL)));
    close(c);

    /* refused */
    int gone = tcp_socket(0);
    struct sockaddr_in ga = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t gl = sizeof ga;
    bind(gone, (struct sockaddr *)&ga, sizeof ga);
    getsockname(gone, (struct sockaddr *)&ga, &gl);
    close(gone);
    c = tcp_socket(0);
    printf("blocking connect to a closed port %s\n", e(connect(c, (struct sockaddr *)&ga, sizeof ga)));
    close(c);
    c = tcp_socket(SOCK_NONBLOCK);
    r = e(connect(c, (struct sockaddr *)&ga, sizeof ga));
    re = wait_for(c, POLLOUT);
    printf("non-blocking connect to a closed port %s, poll ERR %s, SO_ERROR %s\n", r, re & POLLERR ? "yes" : "no",
           iopt(c, SOL_SOCKET, SO_ERROR) == ECONNREFUSED ? "ECONNREFUSED" : "other");
    printf("send on it %s\n", e(send(c, "x", 1, MSG_NOSIGNAL)));
    close(c);
    c = tcp_socket(0);
    printf("send unconnected %s\n", e(send(c, "x", 1, MSG_NOSIGNAL)));
    printf("recv unconnected %s\n", e(recv(c, buf, 1, 0)));
    struct sockaddr_in6 six = { .sin6_family = AF_INET6 };
    printf("connect with an IPv6 address %s\n", e(connect(c, (struct sockaddr *)&six, sizeof six)));
    close(c);

    /* 1 MB */
    for (size_t i = 0; i < sizeof big; i++) big[i] = (unsigned char)(i * 7 + (i >> 11));
    c = connected_pair(l, &s);
    pthread_t t;
    pthread_create(&t, NULL, sender, (void *)(long)c);
    unsigned long sum = 0, total = 0;
    for (;;) {
        k = recv(s, buf, sizeof buf, 0);
        if (k <= 0) break;
        for (ssize_t i = 0; i < k; i++) sum = sum * 31 + (unsigned char)buf[i];
        total += k;
    }
    void *sent;
    pthread_join(t, &sent);
    printf("1 MB: sent %ld, received %lu, checksum %lx\n", (long)sent, total, sum);
    close(s);
    close(l);
    return 0;
}
