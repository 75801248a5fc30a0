/* unix_stream: AF_UNIX sockets with names, between two threads: bind/listen/accept/connect on an abstract name and on a path (SOCK_STREAM and SOCK_SEQPACKET), getsockname/getpeername, accept4 flags, non-blocking accept EAGAIN, a blocking accept woken by a connect from another thread, errors (EADDRINUSE, EINVAL listen unbound, ENOENT/ECONNREFUSED connect, EPROTOTYPE, EISCONN), a path name left behind after close until unlink, SOCK_DGRAM sendto/recvfrom between bound sockets with the source address, connect(AF_UNSPEC), autobind, a full accept queue (EAGAIN, a blocking connect waiting for an accept). Run: unix_stream. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char *e(long rc)
{
    if (rc >= 0) return "ok";
    switch (errno) {
    case EAGAIN: return "EAGAIN"; case EPIPE: return "EPIPE"; case ECONNRESET: return "ECONNRESET";
    case ECONNREFUSED: return "ECONNREFUSED"; case ENOTCONN: return "ENOTCONN"; case EINVAL: return "EINVAL";
    case EOPNOTSUPP: return "EOPNOTSUPP"; case EADDRINUSE: return "EADDRINUSE"; case EISCONN: return "EISCONN";
    case ENOENT: return "ENOENT"; case EPROTOTYPE: return "EPROTOTYPE"; case EPERM: return "EPERM"; default: return "other";
    }
}

static socklen_t make(struct sockaddr_un *a, const char *name, int abstract)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if (abstract) {
        a->sun_path[0] = 0;
        memcpy(a->sun_path + 1, name, strlen(name));
        return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
    }
    strcpy(a->sun_path, name);
    return offsetof(struct sockaddr_un, sun_path) + strlen(name) + 1;
}

static struct sockaddr_un server_addr;
static socklen_t server_len;
static int sock_type;

/* The client thread's lines, printed by the main thread after the join (the two threads' output never interleaves). */
static char client_log[4096];
static size_t client_len;
#include <stdarg.h>
static void logf_(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    client_len += vsnprintf(client_log + client_len, sizeof client_log - client_len, fmt, ap);
    va_end(ap);
}

static void *client(void *arg)
{
    (void)arg;
    usleep(50000); /* the server is (very likely) blocked in accept by now; either way the output is the same */
    int c = socket(AF_UNIX, sock_type, 0);
    const char *r = e(connect(c, (struct sockaddr *)&server_addr, server_len));
    logf_("  client connect %s\n", r);
    r = e(connect(c, (struct sockaddr *)&server_addr, server_len));
    logf_("  client connect again %s\n", r);
    struct sockaddr_un p;
    socklen_t pl = sizeof p;
    getpeername(c, (struct sockaddr *)&p, &pl);
    logf_("  client getpeername is the server's name: %s\n", pl == server_len && memcmp(&p, &server_addr, pl) == 0 ? "yes" : "no");
    pl = sizeof p;
    getsockname(c, (struct sockaddr *)&p, &pl);
    logf_("  client getsockname len %d\n", (int)pl);
    char buf[64];
    for (int i = 0; i < 3; i++) {
        int n = snprintf(buf, sizeof buf, "request %d", i);
        send(c, buf, n, 0);
        ssize_t got = recv(c, buf, sizeof buf, 0);
        logf_("  client got '%.*s'\n", (int)got, buf);
    }
    shutdown(c, SHUT_WR);
    ssize_t got = recv(c, buf, sizeof buf, 0);
    logf_("  client after its SHUT_WR reads '%.*s'\n", (int)got, buf);
    logf_("  client then EOF %zd\n", recv(c, buf, sizeof buf, 0));
    close(c);
    return NULL;
}

static void serve(const char *name, int abstract, int type)
{
    char buf[64];
    printf("%s %s name\n", type == SOCK_STREAM ? "SOCK_STREAM" : "SOCK_SEQPACKET", abstract ? "abstract" : "path");
    sock_type = type;
    server_len = make(&server_addr, name, abstract);
    if (!abstract) unlink(name);
    int s = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    printf("listen unbound %s\n", e(listen(s, 5)));
    printf("bind %s\n", e(bind(s, (struct sockaddr *)&server_addr, server_len)));
    printf("bind again %s\n", e(bind(s, (struct sockaddr *)&server_addr, server_len)));
    int s2 = socket(AF_UNIX, type, 0);
    printf("bind the same name %s\n", e(bind(s2, (struct sockaddr *)&server_addr, server_len)));
    printf("connect to a bound, not listening socket %s\n", e(connect(socket(AF_UNIX, type, 0), (struct sockaddr *)&server_addr, server_len)));
    close(s2);
    struct sockaddr_un a;
    socklen_t al = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &al);
    printf("getsockname is the bound name: %s\n", al == server_len && memcmp(&a, &server_addr, al) == 0 ? "yes" : "no");
    printf("listen %s\n", e(listen(s, 5)));
    int v = -1;
    socklen_t vl = sizeof v;
    getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl);
    printf("SO_ACCEPTCONN %d\n", v);
    struct pollfd p = { s, POLLIN | POLLOUT, 0 };
    poll(&p, 1, 0);
    printf("poll listener: %x\n", p.revents);
    int fl = fcntl(s, F_GETFL);
    fcntl(s, F_SETFL, fl | O_NONBLOCK);
    printf("accept nothing non-blocking %s\n", e(accept(s, NULL, NULL)));
    fcntl(s, F_SETFL, fl);
    int d = socket(AF_UNIX, type == SOCK_STREAM ? SOCK_SEQPACKET : SOCK_STREAM, 0);
    printf("connect another type %s\n", e(connect(d, (struct sockaddr *)&server_addr, server_len)));
    close(d);
    pthread_t t;
    pthread_create(&t, NULL, client, NULL);
    al = sizeof a;
    memset(&a, 0x55, sizeof a);
    int c = accept4(s, (struct sockaddr *)&a, &al, SOCK_NONBLOCK | SOCK_CLOEXEC);
    printf("accept4 %s peer len %d family %d, F_GETFL %x FD_CLOEXEC %d\n", e(c), (int)al, a.sun_family, fcntl(c, F_GETFL), fcntl(c, F_GETFD));
    fcntl(c, F_SETFL, 0);
    al = sizeof a;
    getsockname(c, (struct sockaddr *)&a, &al);
    printf("accepted getsockname is the listener's name: %s\n", al == server_len && memcmp(&a, &server_addr, al) == 0 ? "yes" : "no");
    for (;;) {
        ssize_t n = recv(c, buf, sizeof buf, 0);
        if (n <= 0) { printf("server EOF %zd\n", n); break; }
        buf[0] = 'R';
        send(c, buf, n, 0);
    }
    send(c, "bye", 3, 0);
    close(c);
    pthread_join(t, NULL);
    fputs(client_log, stdout);
    client_len = 0;
    client_log[0] = 0;
    close(s);
    int again = socket(AF_UNIX, type, 0);
    printf("connect after the listener closed %s\n", e(connect(again, (struct sockaddr *)&server_addr, server_len)));
    printf("bind the name after close %s\n", e(bind(again, (struct sockaddr *)&server_addr, server_len)));
    if (!abstract) {
        printf("unlink %s\n", e(unlink(name)));
        printf("connect after unlink %s\n", e(connect(socket(AF_UNIX, type, 0), (struct sockaddr *)&server_addr, server_len)));
        printf("bind after unlink %s\n", e(bind(again, (struct sockaddr *)&server_addr, server_len)));
        unlink(name);
    }
    close(again);
}

static void *accept_later(void *arg)
{
    usleep(100000);
    return (void *)(long)accept((int)(long)arg, NULL, NULL);
}

/* A listener's accept queue full (backlog 0 holds one): non-blocking connect EAGAIN, a blocking one waits for an accept. */
static void full_queue(const char *tag)
{
    printf("full accept queue\n");
    char name[64];
    snprintf(name, sizeof name, "remus-full-%s", tag);
    struct sockaddr_un a;
    socklen_t l = make(&a, name, 1);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(s, (struct sockaddr *)&a, l);
    listen(s, 0);
    int c1 = socket(AF_UNIX, SOCK_STREAM, 0), c2 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0), c3 = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("first connect %s\n", e(connect(c1, (struct sockaddr *)&a, l)));
    printf("second, non-blocking %s\n", e(connect(c2, (struct sockaddr *)&a, l)));
    pthread_t t;
    pthread_create(&t, NULL, accept_later, (void *)(long)s);
    printf("third, blocking, waits for room: %s\n", e(connect(c3, (struct sockaddr *)&a, l)));
    void *first;
    pthread_join(t, &first);
    printf("accepted the first: %s, then the third: %s\n", (long)first >= 0 ? "yes" : "no", e(accept(s, NULL, NULL)));
    close(c1); close(c2); close(c3); close(s); close((int)(long)first);
}

static void datagrams(const char *tag)
{
    printf("SOCK_DGRAM\n");
    char n1[64], n2[64], buf[64];
    snprintf(n1, sizeof n1, "remus-dg1-%s", tag);
    snprintf(n2, sizeof n2, "remus-dg2-%s", tag);
    struct sockaddr_un a1, a2, from;
    socklen_t l1 = make(&a1, n1, 1), l2 = make(&a2, n2, 1);
    int s1 = socket(AF_UNIX, SOCK_DGRAM, 0), s2 = socket(AF_UNIX, SOCK_DGRAM, 0), s3 = socket(AF_UNIX, SOCK_DGRAM, 0);
    bind(s1, (struct sockaddr *)&a1, l1);
    bind(s2, (struct sockaddr *)&a2, l2);
    printf("sendto %zd\n", sendto(s1, "ping", 4, 0, (struct sockaddr *)&a2, l2));
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(s2, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    printf("recvfrom %zd '%.*s' from s1: %s\n", n, (int)n, buf, fl == l1 && memcmp(&from, &a1, fl) == 0 ? "yes" : "no");
    printf("unbound sender %zd\n", sendto(s3, "anon", 4, 0, (struct sockaddr *)&a2, l2));
    fl = sizeof from;
    n = recvfrom(s2, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    printf("recvfrom %zd from length %d\n", n, (int)fl);
    printf("send unconnected %s\n", e(send(s1, "x", 1, 0)));
    printf("connect %s\n", e(connect(s1, (struct sockaddr *)&a2, l2)));
    printf("send connected %zd\n", send(s1, "pong", 4, 0));
    printf("s3 sends to s2, connected to s1: %s\n", e(sendto(s3, "no", 2, 0, (struct sockaddr *)&a1, l1)));
    n = recv(s2, buf, sizeof buf, 0);
    printf("recv %zd '%.*s'\n", n, (int)n, buf);
    struct sockaddr unspec = { .sa_family = AF_UNSPEC };
    printf("connect AF_UNSPEC %s, then send %s\n", e(connect(s1, &unspec, sizeof unspec)), "-");
    printf("send after disconnect %s\n", e(send(s1, "x", 1, 0)));
    struct sockaddr_un none;
    socklen_t nl = make(&none, "remus-nobody-here", 1);
    printf("sendto an unbound abstract name %s\n", e(sendto(s1, "x", 1, 0, (struct sockaddr *)&none, nl)));
    nl = make(&none, "/tmp/remus-nobody-here/x", 0);
    printf("sendto a missing path %s\n", e(sendto(s1, "x", 1, 0, (struct sockaddr *)&none, nl)));
    int s4 = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un auto_a;
    socklen_t al = sizeof auto_a;
    sa_family_t fam = AF_UNIX;
    printf("autobind %s", e(bind(s4, (struct sockaddr *)&fam, sizeof fam)));
    getsockname(s4, (struct sockaddr *)&auto_a, &al);
    printf(": len %d abstract %s\n", (int)al, auto_a.sun_path[0] == 0 ? "yes" : "no");
    close(s1); close(s2); close(s3); close(s4);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char name[64], path[64];
    snprintf(name, sizeof name, "remus-unix-stream-%d", (int)getpid());
    snprintf(path, sizeof path, "/tmp/remus-unix-stream-%d.sock", (int)getpid());
    serve(name, 1, SOCK_STREAM);
    serve(path, 0, SOCK_STREAM);
    serve(name, 1, SOCK_SEQPACKET);
    char tag[16];
    snprintf(tag, sizeof tag, "%d", (int)getpid());
    datagrams(tag);
    full_queue(tag);
    return 0;
}
