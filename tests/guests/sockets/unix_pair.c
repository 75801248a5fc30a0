/* unix_pair: AF_UNIX socketpair, SOCK_STREAM, SOCK_DGRAM and SOCK_SEQPACKET: fstat S_IFSOCK, F_GETFL, SO_TYPE/DOMAIN/PROTOCOL, names, send/recv/read/write/readv/writev, MSG_PEEK, MSG_DONTWAIT, MSG_TRUNC, FIONREAD, poll and epoll (edge-triggered) readiness, filling a non-blocking socket to EAGAIN, shutdown half close, EOF, ECONNRESET after a close with unread data, EPIPE with and without MSG_NOSIGNAL (SIGPIPE caught), ECONNREFUSED/ENOTCONN to a closed datagram peer, SO_SNDBUF/SO_RCVBUF, SO_PEERCRED, SO_RCVTIMEO, a signal in a blocking recv (EINTR, or restarted under SA_RESTART), and a 1 MB blocking transfer between two threads with a checksum. Run: unix_pair. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

static const char *e(long rc)
{
    if (rc >= 0) return "ok";
    switch (errno) {
    case EAGAIN: return "EAGAIN"; case EPIPE: return "EPIPE"; case ECONNRESET: return "ECONNRESET"; case EINTR: return "EINTR";
    case ECONNREFUSED: return "ECONNREFUSED"; case ENOTCONN: return "ENOTCONN"; case EINVAL: return "EINVAL";
    case EOPNOTSUPP: return "EOPNOTSUPP"; case EMSGSIZE: return "EMSGSIZE"; case EISCONN: return "EISCONN";
    case ENOTSOCK: return "ENOTSOCK"; case EAFNOSUPPORT: return "EAFNOSUPPORT"; case ESOCKTNOSUPPORT: return "ESOCKTNOSUPPORT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT"; case ENOPROTOOPT: return "ENOPROTOOPT"; default: return "other";
    }
}

static const char *ev(int r)
{
    static char bufs[4][128];
    static int next;
    char *b = bufs[next++ & 3];
    b[0] = 0;
    if (r < 0) return "error";
    if (r & POLLIN) strcat(b, "IN ");
    if (r & POLLOUT) strcat(b, "OUT ");
    if (r & POLLERR) strcat(b, "ERR ");
    if (r & POLLHUP) strcat(b, "HUP ");
    if (r & POLLRDHUP) strcat(b, "RDHUP ");
    if (!b[0]) strcat(b, "none ");
    b[strlen(b) - 1] = 0;
    return b;
}

static int revents(int fd)
{
    struct pollfd p = { fd, POLLIN | POLLOUT | POLLRDHUP, 0 };
    int n = poll(&p, 1, 0);
    return n == 1 ? p.revents : n == 0 ? 0 : -1;
}

static int readable(int fd)
{
    int n = -1;
    ioctl(fd, FIONREAD, &n);
    return n;
}

static int opt(int fd, int name)
{
    int v = -1;
    socklen_t l = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, name, &v, &l) < 0) return -errno;
    return v;
}

static volatile int sigpipes;
static void on_sigpipe(int sig) { (void)sig; sigpipes++; }

static unsigned char big[1 << 20];

/* A signal arriving in a blocking recv: EINTR without SA_RESTART; with it the recv goes on and gets what the handler sent. */
static int alarm_fd = -1;
static volatile int alarms;
static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
    if (alarm_fd >= 0) write(alarm_fd, "!", 1);
}

static void signals(void)
{
    int sv[2];
    char c = 0;
    /* Repeating, so that one comes while the recv waits even if the first came before it (a loaded machine). */
    struct itimerval every = { { 0, 50000 }, { 0, 50000 } }, off = { { 0, 0 }, { 0, 0 } };
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    struct sigaction sa = { 0 };
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    setitimer(ITIMER_REAL, &every, NULL);
    const char *r = e(recv(sv[0], &c, 1, 0));
    setitimer(ITIMER_REAL, &off, NULL);
    printf("blocking recv, SIGALRM without SA_RESTART: %s (alarms: %s)\n", r, alarms > 0 ? "yes" : "no");
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    alarm_fd = sv[1];
    setitimer(ITIMER_REAL, &every, NULL);
    ssize_t n = recv(sv[0], &c, 1, 0);
    setitimer(ITIMER_REAL, &off, NULL);
    alarm_fd = -1;
    printf("with SA_RESTART: recv %zd '%c'\n", n, c);
    close(sv[0]);
    close(sv[1]);
}

static void *reader(void *arg)
{
    int fd = (int)(long)arg;
    static unsigned char buf[70000];
    unsigned long sum = 0, total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; i++) sum = sum * 31 + buf[i];
        total += n;
    }
    printf("  reader got %lu bytes, checksum %lx\n", total, sum);
    return NULL;
}

static void stream(void)
{
    int sv[2];
    char buf[256];
    printf("SOCK_STREAM\n");
    printf("socketpair %s\n", e(socketpair(AF_UNIX, SOCK_STREAM, 0, sv)));
    struct stat st;
    fstat(sv[0], &st);
    printf("fstat socket %s mode %o\n", S_ISSOCK(st.st_mode) ? "yes" : "no", st.st_mode & 0777);
    printf("F_GETFL %x\n", fcntl(sv[0], F_GETFL));
    printf("SO_TYPE %d SO_DOMAIN %d SO_PROTOCOL %d SO_ACCEPTCONN %d SO_ERROR %d\n", opt(sv[0], SO_TYPE), opt(sv[0], SO_DOMAIN),
           opt(sv[0], SO_PROTOCOL), opt(sv[0], SO_ACCEPTCONN), opt(sv[0], SO_ERROR));
    struct sockaddr_un a;
    socklen_t al = sizeof a;
    memset(&a, 0x55, sizeof a);
    const char *r = e(getsockname(sv[0], (struct sockaddr *)&a, &al));
    printf("getsockname %s len %d family %d\n", r, (int)al, a.sun_family);
    al = sizeof a;
    r = e(getpeername(sv[0], (struct sockaddr *)&a, &al));
    printf("getpeername %s len %d\n", r, (int)al);
    printf("poll fresh: a %s, b %s\n", ev(revents(sv[0])), ev(revents(sv[1])));
    printf("recv empty MSG_DONTWAIT %s\n", e(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT)));
    printf("write %zd\n", write(sv[0], "hello", 5));
    printf("send %zd\n", send(sv[0], " world", 6, 0));
    printf("poll after writes: b %s, FIONREAD %d\n", ev(revents(sv[1])), readable(sv[1]));
    ssize_t n = recv(sv[1], buf, 3, MSG_PEEK);
    printf("peek %zd '%.*s', FIONREAD %d\n", n, (int)n, buf, readable(sv[1]));
    n = read(sv[1], buf, 7);
    printf("read %zd '%.*s'\n", n, (int)n, buf);
    n = recv(sv[1], buf, sizeof buf, 0);
    printf("recv %zd '%.*s'\n", n, (int)n, buf);
    struct iovec out[3] = { { "ab", 2 }, { "", 0 }, { "cdef", 4 } };
    printf("writev %zd\n", writev(sv[1], out, 3));
    char x[3], y[10];
    struct iovec in[2] = { { x, 3 }, { y, 10 } };
    n = readv(sv[0], in, 2);
    printf("readv %zd '%.3s' '%.*s'\n", n, x, (int)n - 3, y);
    struct msghdr m = { 0 };
    struct iovec one = { buf, 4 };
    m.msg_iov = &one;
    m.msg_iovlen = 1;
    send(sv[0], "0123456789", 10, 0);
    n = recvmsg(sv[1], &m, MSG_WAITALL);
    printf("recvmsg WAITALL %zd '%.*s' flags %x namelen %d\n", n, (int)n, buf, m.msg_flags, (int)m.msg_namelen);
    n = recv(sv[1], buf, sizeof buf, 0);
    printf("rest %zd '%.*s'\n", n, (int)n, buf);

    /* edge-triggered epoll */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ee = { .events = EPOLLIN | EPOLLET, .data.u32 = 7 }, got[4];
    epoll_ctl(ep, EPOLL_CTL_ADD, sv[1], &ee);
    printf("epoll empty: %d\n", epoll_wait(ep, got, 4, 0));
    write(sv[0], "x", 1);
    int k = epoll_wait(ep, got, 4, 0);
    printf("epoll after write: %d data %u events %x\n", k, k > 0 ? got[0].data.u32 : 0, k > 0 ? got[0].events : 0);
    printf("epoll again (edge): %d\n", epoll_wait(ep, got, 4, 0));
    write(sv[0], "y", 1);
    printf("epoll after 2nd write: %d\n", epoll_wait(ep, got, 4, 0));
    read(sv[1], buf, sizeof buf);

    /* fill a non-blocking socket */
    int fl = fcntl(sv[0], F_GETFL);
    fcntl(sv[0], F_SETFL, fl | O_NONBLOCK);
    long total = 0;
    for (;;) {
        n = write(sv[0], big, 4096);
        if (n < 0) break;
        total += n;
    }
    printf("fill stops with %s after > 100000 bytes: %s\n", e(n), total > 100000 ? "yes" : "no");
    printf("poll full: a %s, b %s\n", ev(revents(sv[0])), ev(revents(sv[1])));
    printf("FIONREAD equals what went in: %s\n", readable(sv[1]) == total ? "yes" : "no");
    long drained = 0;
    while ((n = recv(sv[1], big, sizeof big, MSG_DONTWAIT)) > 0) drained += n;
    printf("drained all: %s, then %s; poll a %s\n", drained == total ? "yes" : "no", e(n), ev(revents(sv[0])));
    fcntl(sv[0], F_SETFL, fl);

    /* half close */
    printf("shutdown SHUT_WR %s\n", e(shutdown(sv[0], SHUT_WR)));
    printf("poll after shutdown: a %s, b %s\n", ev(revents(sv[0])), ev(revents(sv[1])));
    printf("b reads EOF %zd\n", read(sv[1], buf, sizeof buf));
    printf("a send after SHUT_WR %s\n", e(send(sv[0], "z", 1, MSG_NOSIGNAL)));
    n = write(sv[1], "back", 4);
    printf("b can still write %zd", n);
    printf(", a reads %zd\n", read(sv[0], buf, sizeof buf));
    printf("shutdown bad how %s\n", e(shutdown(sv[0], 7)));
    close(sv[1]);
    printf("poll after close: a %s\n", ev(revents(sv[0])));
    printf("a reads EOF %zd\n", read(sv[0], buf, sizeof buf));
    close(sv[0]);
    close(ep);

    /* EPIPE, SIGPIPE */
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
    printf("SOCK_CLOEXEC FD_CLOEXEC %d\n", fcntl(sv[0], F_GETFD));
    close(sv[1]);
    printf("send to closed MSG_NOSIGNAL %s, sigpipes %d\n", e(send(sv[0], "a", 1, MSG_NOSIGNAL)), sigpipes);
    signal(SIGPIPE, on_sigpipe);
    r = e(write(sv[0], "a", 1));
    printf("write to closed %s, sigpipes %d\n", r, sigpipes);
    r = e(send(sv[0], "a", 1, 0));
    printf("send to closed %s, sigpipes %d\n", r, sigpipes);
    close(sv[0]);

    /* a close with unread data resets the peer */
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    write(sv[0], "unread", 6);
    close(sv[1]);
    printf("poll after reset: a %s\n", ev(revents(sv[0])));
    printf("read after peer closed unread %s", e(read(sv[0], buf, sizeof buf)));
    printf(", again %zd\n", read(sv[0], buf, sizeof buf));
    close(sv[0]);

    /* options */
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    printf("SOCK_NONBLOCK F_GETFL %x, read %s\n", fcntl(sv[0], F_GETFL), e(read(sv[0], buf, 1)));
    printf("SO_SNDBUF default %d SO_RCVBUF default %d\n", opt(sv[0], SO_SNDBUF), opt(sv[0], SO_RCVBUF));
    int v = 65536;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
    printf("SO_SNDBUF 65536 -> %d, SO_RCVBUF 65536 -> %d\n", opt(sv[0], SO_SNDBUF), opt(sv[0], SO_RCVBUF));
    v = 1;
    setsockopt(sv[0], SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v);
    setsockopt(sv[0], SOL_SOCKET, SO_REUSEADDR, &v, sizeof v);
    printf("SO_KEEPALIVE %d SO_REUSEADDR %d\n", opt(sv[0], SO_KEEPALIVE), opt(sv[0], SO_REUSEADDR));
    struct ucred cr;
    socklen_t cl = sizeof cr;
    r = e(getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &cr, &cl));
    printf("SO_PEERCRED %s len %d pid is mine %s uid is mine %s gid is mine %s\n", r,
           (int)cl, cr.pid == getpid() ? "yes" : "no", cr.uid == getuid() ? "yes" : "no", cr.gid == getgid() ? "yes" : "no");
    struct timeval tv = { 0, 200000 }, tv2;
    socklen_t tl = sizeof tv2;
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv2, &tl);
    printf("SO_RCVTIMEO %ld.%06ld\n", (long)tv2.tv_sec, (long)tv2.tv_usec);
    fcntl(sv[0], F_SETFL, 0);
    printf("blocking read with SO_RCVTIMEO times out %s\n", e(read(sv[0], buf, 1)));
    close(sv[0]);
    close(sv[1]);

    /* 1 MB through a blocking pair, a reader thread on the other end */
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    for (size_t i = 0; i < sizeof big; i++) big[i] = (unsigned char)(i * 7 + (i >> 9));
    pthread_t t;
    pthread_create(&t, NULL, reader, (void *)(long)sv[1]);
    n = write(sv[0], big, sizeof big);
    printf("  blocking write of 1 MB: %zd\n", n);
    close(sv[0]);
    pthread_join(t, NULL);
    close(sv[1]);
}

static void datagrams(int type, const char *name)
{
    int sv[2];
    char buf[64];
    printf("%s\n", name);
    printf("socketpair %s\n", e(socketpair(AF_UNIX, type, 0, sv)));
    printf("poll fresh: a %s\n", ev(revents(sv[0])));
    send(sv[0], "first message", 13, 0);
    send(sv[0], "2nd", 3, 0);
    send(sv[0], "", 0, 0);
    send(sv[0], "fourth one", 10, 0);
    printf("FIONREAD (next datagram) %d\n", readable(sv[1]));
    ssize_t n = recv(sv[1], buf, 5, MSG_PEEK);
    printf("peek 5: %zd '%.*s'\n", n, (int)n, buf);
    n = recv(sv[1], buf, 5, MSG_TRUNC);
    printf("recv 5 MSG_TRUNC: %zd '%.5s'\n", n, buf);
    struct msghdr m = { 0 };
    struct iovec one = { buf, 2 };
    m.msg_iov = &one;
    m.msg_iovlen = 1;
    n = recvmsg(sv[1], &m, 0);
    printf("recvmsg 2: %zd flags %s\n", n, m.msg_flags & MSG_TRUNC ? "MSG_TRUNC" : "none");
    n = recv(sv[1], buf, sizeof buf, 0);
    printf("empty datagram: %zd\n", n);
    one.iov_len = sizeof buf;
    m.msg_flags = 0;
    n = recvmsg(sv[1], &m, 0);
    printf("recvmsg: %zd '%.*s' flags %s\n", n, (int)n, buf, m.msg_flags & MSG_TRUNC ? "MSG_TRUNC" : "none");
    printf("recv empty MSG_DONTWAIT %s\n", e(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT)));
    printf("send to self-addressed %s\n", e(sendto(sv[0], "x", 1, 0, NULL, 0)));
    recv(sv[1], buf, sizeof buf, 0);
    int k = 0;
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    while (send(sv[0], big, 1000, 0) == 1000 && k < 100000) k++;
    printf("fill stops with %s\n", e(-1));
    printf("poll full: a %s, b %s\n", ev(revents(sv[0])), ev(revents(sv[1])));
    while (recv(sv[1], buf, sizeof buf, MSG_DONTWAIT) > 0) k--;
    printf("every datagram came out: %s; poll a %s\n", k == 0 ? "yes" : "no", ev(revents(sv[0])));
    shutdown(sv[0], SHUT_WR);
    printf("after a's SHUT_WR: b %s", ev(revents(sv[1])));
    printf(", a send %s\n", e(send(sv[0], "x", 1, MSG_NOSIGNAL)));
    if (type == SOCK_SEQPACKET) printf("b reads EOF %zd\n", recv(sv[1], buf, sizeof buf, 0));
    close(sv[1]);
    printf("poll after peer closed: a %s\n", ev(revents(sv[0])));
    close(sv[0]);
    socketpair(AF_UNIX, type, 0, sv);
    send(sv[1], "last", 4, 0);
    close(sv[1]);
    n = recv(sv[0], buf, sizeof buf, 0);
    printf("datagram sent before the close still read: %zd\n", n);
    if (type == SOCK_SEQPACKET) printf("then EOF %zd\n", recv(sv[0], buf, sizeof buf, 0));
    printf("send to closed peer %s\n", e(send(sv[0], "x", 1, MSG_NOSIGNAL)));
    printf("send again %s\n", e(send(sv[0], "x", 1, MSG_NOSIGNAL)));
    close(sv[0]);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    stream();
    signals();
    datagrams(SOCK_DGRAM, "SOCK_DGRAM");
    datagrams(SOCK_SEQPACKET, "SOCK_SEQPACKET");
    int sv[2];
    printf("socketpair AF_INET %s\n", e(socketpair(AF_INET, SOCK_STREAM, 0, sv)));
    printf("socketpair bad type %s\n", e(socketpair(AF_UNIX, 9, 0, sv)));
    printf("socketpair bad protocol %s\n", e(socketpair(AF_UNIX, SOCK_STREAM, 5, sv)));
    printf("send on a pipe %s\n", e(send(1, "x", 1, 0)));
    return 0;
}
