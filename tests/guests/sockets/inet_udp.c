/* inet_udp: UDP on 127.0.0.1 through the socket API: ephemeral bind, sendto/recvfrom with the source address, MSG_PEEK, MSG_TRUNC (the whole length, and msg_flags), FIONREAD (the next datagram's length), a zero-length datagram, a 60000-byte datagram, EMSGSIZE, connect (send without an address, getpeername, datagrams from others filtered), ECONNREFUSED on a connected socket after the port-unreachable ICMP, connect(AF_UNSPEC) and EDESTADDRREQ, EAGAIN, poll readiness, sendmmsg/recvmmsg. Run: inet_udp. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static const char *e(long rc)
{
    if (rc >= 0) return "ok";
    switch (errno) {
    case EAGAIN: return "EAGAIN"; case ECONNREFUSED: return "ECONNREFUSED"; case ENOTCONN: return "ENOTCONN";
    case EINVAL: return "EINVAL"; case EMSGSIZE: return "EMSGSIZE"; case EDESTADDRREQ: return "EDESTADDRREQ";
    case EADDRINUSE: return "EADDRINUSE"; case EOPNOTSUPP: return "EOPNOTSUPP"; default: return "other";
    }
}

static int wait_in(int fd)
{
    struct pollfd p = { fd, POLLIN, 0 };
    return poll(&p, 1, 10000) == 1 ? p.revents : 0;
}

static int udp_bound(struct sockaddr_in *a)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in b = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    bind(s, (struct sockaddr *)&b, sizeof b);
    socklen_t l = sizeof *a;
    getsockname(s, (struct sockaddr *)a, &l);
    return s;
}

static int same(struct sockaddr_in *x, struct sockaddr_in *y) { return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr; }

static char big[70000];

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char buf[256];
    struct sockaddr_in a1, a2, from;
    socklen_t fl;
    int s1 = udp_bound(&a1), s2 = udp_bound(&a2);
    int v = -1;
    socklen_t vl = sizeof v;
    getsockopt(s1, SOL_SOCKET, SO_TYPE, &v, &vl);
    printf("SO_TYPE %d, ephemeral ports: %s, addr %s\n", v, a1.sin_port && a2.sin_port && a1.sin_port != a2.sin_port ? "yes" : "no", inet_ntoa(a1.sin_addr));
    struct pollfd p = { s1, POLLIN | POLLOUT, 0 };
    poll(&p, 1, 0);
    printf("poll idle: IN %s OUT %s\n", p.revents & POLLIN ? "yes" : "no", p.revents & POLLOUT ? "yes" : "no");
    printf("recv nothing MSG_DONTWAIT %s\n", e(recv(s1, buf, sizeof buf, MSG_DONTWAIT)));
    printf("sendto %zd\n", sendto(s2, "first datagram", 14, 0, (struct sockaddr *)&a1, sizeof a1));
    printf("sendto %zd\n", sendto(s2, "2nd", 3, 0, (struct sockaddr *)&a1, sizeof a1));
    printf("sendto empty %zd\n", sendto(s2, "", 0, 0, (struct sockaddr *)&a1, sizeof a1));
    wait_in(s1);
    int n = -1;
    ioctl(s1, FIONREAD, &n);
    printf("FIONREAD %d\n", n);
    fl = sizeof from;
    ssize_t k = recvfrom(s1, buf, 5, MSG_PEEK, (struct sockaddr *)&from, &fl);
    printf("peek %zd '%.*s' from s2: %s len %d\n", k, (int)k, buf, same(&from, &a2) ? "yes" : "no", (int)fl);
    k = recv(s1, buf, 5, MSG_TRUNC);
    printf("recv 5 MSG_TRUNC %zd '%.5s'\n", k, buf);
    struct msghdr m = { 0 };
    struct iovec one = { buf, 2 };
    m.msg_iov = &one;
    m.msg_iovlen = 1;
    m.msg_name = &from;
    m.msg_namelen = sizeof from;
    wait_in(s1);
    k = recvmsg(s1, &m, 0);
    printf("recvmsg 2 of '2nd': %zd flags %s namelen %d\n", k, m.msg_flags & MSG_TRUNC ? "MSG_TRUNC" : "none", (int)m.msg_namelen);
    wait_in(s1);
    printf("empty datagram %zd\n", recv(s1, buf, sizeof buf, 0));
    printf("recv nothing MSG_DONTWAIT %s\n", e(recv(s1, buf, sizeof buf, MSG_DONTWAIT)));

    memset(big, 'b', sizeof big);
    printf("60000 bytes %zd", sendto(s2, big, 60000, 0, (struct sockaddr *)&a1, sizeof a1));
    wait_in(s1);
    printf(", received %zd\n", recv(s1, big, sizeof big, 0));
    printf("65508 bytes %s\n", e(sendto(s2, big, 65508, 0, (struct sockaddr *)&a1, sizeof a1)));

    /* sendmmsg / recvmmsg */
    struct mmsghdr mm[3];
    struct iovec iv[3] = { { "one", 3 }, { "two!", 4 }, { "three", 5 } };
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 3; i++) {
        mm[i].msg_hdr.msg_iov = &iv[i];
        mm[i].msg_hdr.msg_iovlen = 1;
        mm[i].msg_hdr.msg_name = &a1;
        mm[i].msg_hdr.msg_namelen = sizeof a1;
    }
    int sent = sendmmsg(s2, mm, 3, 0);
    printf("sendmmsg %d: %u %u %u\n", sent, mm[0].msg_len, mm[1].msg_len, mm[2].msg_len);
    char rb[3][16];
    struct iovec rv[3] = { { rb[0], 16 }, { rb[1], 16 }, { rb[2], 16 } };
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 3; i++) { mm[i].msg_hdr.msg_iov = &rv[i]; mm[i].msg_hdr.msg_iovlen = 1; }
    int got = 0;
    while (got < 3) {
        wait_in(s1);
        int r = recvmmsg(s1, mm + got, 3 - got, MSG_WAITFORONE, NULL);
        if (r <= 0) break;
        got += r;
    }
    printf("recvmmsg %d: '%.*s' '%.*s' '%.*s'\n", got, (int)mm[0].msg_len, rb[0], (int)mm[1].msg_len, rb[1], (int)mm[2].msg_len, rb[2]);

    /* connected */
    printf("send unconnected %s\n", e(send(s2, "x", 1, 0)));
    fl = sizeof from;
    printf("getpeername unconnected %s\n", e(getpeername(s2, (struct sockaddr *)&from, &fl)));
    printf("connect %s\n", e(connect(s2, (struct sockaddr *)&a1, sizeof a1)));
    fl = sizeof from;
    getpeername(s2, (struct sockaddr *)&from, &fl);
    printf("getpeername is s1: %s\n", same(&from, &a1) ? "yes" : "no");
    printf("send connected %zd\n", send(s2, "hello", 5, 0));
    wait_in(s1);
    k = recv(s1, buf, sizeof buf, 0);
    printf("s1 got '%.*s'\n", (int)k, buf);
    struct sockaddr_in a3;
    int s3 = udp_bound(&a3);
    sendto(s3, "stranger", 8, 0, (struct sockaddr *)&a2, sizeof a2);
    sendto(s1, "from s1", 7, 0, (struct sockaddr *)&a2, sizeof a2);
    wait_in(s2);
    k = recv(s2, buf, sizeof buf, 0);
    printf("s2, connected to s1, gets only '%.*s'", (int)k, buf);
    printf(", then %s\n", e(recv(s2, buf, sizeof buf, MSG_DONTWAIT)));
    struct sockaddr unspec = { .sa_family = AF_UNSPEC };
    printf("connect AF_UNSPEC %s", e(connect(s2, &unspec, sizeof unspec)));
    printf(", send %s\n", e(send(s2, "x", 1, 0)));

    /* refused */
    struct sockaddr_in gone;
    int g = udp_bound(&gone);
    close(g);
    int c = socket(AF_INET, SOCK_DGRAM, 0);
    struct timeval tv = { 5, 0 };
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    printf("connect to a closed port %s\n", e(connect(c, (struct sockaddr *)&gone, sizeof gone)));
    printf("send %zd\n", send(c, "anyone?", 7, 0));
    printf("recv %s\n", e(recv(c, buf, sizeof buf, 0)));
    printf("recv again MSG_DONTWAIT %s\n", e(recv(c, buf, sizeof buf, MSG_DONTWAIT)));
    printf("unconnected sendto a closed port %zd", sendto(s3, "x", 1, 0, (struct sockaddr *)&gone, sizeof gone));
    usleep(100000);
    printf(", then recv %s\n", e(recv(s3, buf, sizeof buf, MSG_DONTWAIT)));
    int busy = socket(AF_INET, SOCK_DGRAM, 0);
    printf("bind a port in use %s\n", e(bind(busy, (struct sockaddr *)&a1, sizeof a1)));
    printf("accept on UDP %s\n", e(accept(s1, NULL, NULL)));
    close(busy); close(c); close(s1); close(s2); close(s3);
    return 0;
}
