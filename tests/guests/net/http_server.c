// http_server: a static HTTP/1.1 server on epoll (glibc and musl), many clients, keep-alive, pipelining, Content-Length. GET /n answers "n=<counter> t=<CLOCK_REALTIME ns>\n" (the counter goes up by one per /n served; each is also printed to stdout as "n=<counter>"), GET /big?k=N answers N KiB of deterministic bytes (byte i = big_byte(i)), GET /quit answers "bye\n" and exits 0 after "done", anything else is 404. The Remus network tests run it in a domain (and natively in a netns): clients check that the counter has no gap and no repeat across a failover. Run: http_server [PORT=8080].
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 64
#define IN_CAP 8192
#define MAX_BIG_KIB (64 * 1024)

struct conn {
    int fd;
    char in[IN_CAP];
    size_t in_len;
    char *out;         // pending response bytes
    size_t out_len, out_off, out_cap;
    int close_after;   // close once out is flushed
    int quit_after;    // exit once out is flushed
    int want_out;      // EPOLLOUT registered
};

static uint64_t counter;

// The deterministic body of /big: the client computes the same.
static unsigned char big_byte(uint64_t i) { return (unsigned char)((i * 2654435761u) >> 13) ^ (unsigned char)(i >> 10); }

static void say(const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(1, s, n);
        if (w < 0) { if (errno == EINTR) continue; return; }
        s += w;
        n -= (size_t)w;
    }
}

static int reserve(struct conn *c, size_t more)
{
    if (c->out_len + more <= c->out_cap) return 0;
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + more) cap *= 2;
    char *p = realloc(c->out, cap);
    if (!p) return -1;
    c->out = p;
    c->out_cap = cap;
    return 0;
}

static int append(struct conn *c, const char *data, size_t n)
{
    if (reserve(c, n) < 0) return -1;
    memcpy(c->out + c->out_len, data, n);
    c->out_len += n;
    return 0;
}

static int respond(struct conn *c, int status, const char *reason, const char *body, size_t body_len, int keep_alive)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nServer: remus-test\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n",
                     status, reason, body ? "text/plain" : "application/octet-stream", body_len,
                     keep_alive ? "" : "Connection: close\r\n");
    if (append(c, head, (size_t)n) < 0) return -1;
    if (body) return append(c, body, body_len);
    // /big: the body is generated in place
    if (reserve(c, body_len) < 0) return -1;
    for (size_t i = 0; i < body_len; i++) c->out[c->out_len + i] = (char)big_byte(i);
    c->out_len += body_len;
    return 0;
}

static int ieq_prefix(const char *s, const char *end, const char *prefix)
{
    size_t n = strlen(prefix);
    if ((size_t)(end - s) < n) return 0;
    return strncasecmp(s, prefix, n) == 0;
}

// Handles every complete request in c->in; returns -1 to drop the connection.
static int handle_requests(struct conn *c)
{
    for (;;) {
        char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (!end) {
            if (c->in_len == IN_CAP) return -1; // a head larger than the buffer
            return 0;
        }
        size_t head_len = (size_t)(end - c->in) + 4;
        char *line_end = memmem(c->in, head_len, "\r\n", 2);
        // request line: METHOD SP TARGET SP VERSION
        char method[16] = "", target[512] = "", version[16] = "";
        {
            char line[600];
            size_t ll = (size_t)(line_end - c->in);
            if (ll >= sizeof line) return -1;
            memcpy(line, c->in, ll);
            line[ll] = 0;
            if (sscanf(line, "%15s %511s %15s", method, target, version) != 3) return -1;
        }
        int keep_alive = strcmp(version, "HTTP/1.1") == 0;
        size_t body_len = 0;
        for (char *h = line_end + 2; h < end; ) {
            char *he = memmem(h, (size_t)(end + 2 - h), "\r\n", 2);
            if (ieq_prefix(h, he, "connection:")) {
                char *v = h + 11;
                while (v < he && *v == ' ') v++;
                if (ieq_prefix(v, he, "close")) keep_alive = 0;
                else if (ieq_prefix(v, he, "keep-alive")) keep_alive = 1;
            } else if (ieq_prefix(h, he, "content-length:")) {
                body_len = strtoul(h + 15, NULL, 10);
            }
            h = he + 2;
        }
        if (head_len + body_len > c->in_len) {
            if (head_len + body_len > IN_CAP) return -1;
            return 0; // wait for the request's body (ignored)
        }
        int rc;
        if (strcmp(method, "GET") != 0) {
            rc = respond(c, 405, "Method Not Allowed", "method not allowed\n", 19, keep_alive);
        } else if (strcmp(target, "/n") == 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            counter++;
            char body[96], line[48];
            int n = snprintf(body, sizeof body, "n=%llu t=%lld\n", (unsigned long long)counter,
                             (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
            snprintf(line, sizeof line, "n=%llu\n", (unsigned long long)counter);
            say(line);
            rc = respond(c, 200, "OK", body, (size_t)n, keep_alive);
        } else if (strncmp(target, "/big?k=", 7) == 0) {
            char *e;
            unsigned long k = strtoul(target + 7, &e, 10);
            if (*e || k > MAX_BIG_KIB) rc = respond(c, 400, "Bad Request", "bad k\n", 6, keep_alive);
            else rc = respond(c, 200, "OK", NULL, k * 1024, keep_alive);
        } else if (strcmp(target, "/quit") == 0) {
            rc = respond(c, 200, "OK", "bye\n", 4, 0);
            keep_alive = 0;
            c->quit_after = 1;
        } else {
            rc = respond(c, 404, "Not Found", "not found\n", 10, keep_alive);
        }
        if (rc < 0) return -1;
        memmove(c->in, c->in + head_len + body_len, c->in_len - head_len - body_len);
        c->in_len -= head_len + body_len;
        if (!keep_alive) {
            c->close_after = 1;
            c->in_len = 0;
            return 0;
        }
    }
}

static void drop(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->out);
    free(c);
}

// Writes what is pending; returns -1 on a dead connection, 1 when the connection is done (closed), 0 otherwise.
static int flush_out(int ep, struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            return -1;
        }
        c->out_off += (size_t)w;
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        if (c->out_cap > 65536) { free(c->out); c->out = NULL; c->out_cap = 0; }
        if (c->quit_after) {
            shutdown(c->fd, SHUT_WR);
            say("done\n");
            exit(0);
        }
        if (c->close_after) return 1;
    }
    int want = c->out_off < c->out_len;
    if (want != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0), .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) return -1;
        c->want_out = want;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 8080;
    signal(SIGPIPE, SIG_IGN);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ls < 0) { perror("socket"); return 1; }
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_ANY)};
    if (bind(ls, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("bind"); return 1; }
    if (listen(ls, 128) < 0) { perror("listen"); return 1; }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) { perror("epoll_create1"); return 1; }
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev) < 0) { perror("epoll_ctl"); return 1; }
    char line[64];
    snprintf(line, sizeof line, "listening on 0.0.0.0:%d\n", port);
    say(line);

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (!c) {
                for (;;) {
                    int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) break; // EAGAIN, or a connection that died in the queue
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *nc = calloc(1, sizeof *nc);
                    if (!nc) { close(fd); continue; }
                    nc->fd = fd;
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = nc};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) { close(fd); free(nc); }
                }
                continue;
            }
            int dead = 0;
            if (events[i].events & EPOLLOUT) {
                int r = flush_out(ep, c);
                if (r != 0) { drop(ep, c); continue; }
            }
            if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                for (;;) {
                    if (c->close_after) { // ignore what follows a "Connection: close" request
                        char sink[4096];
                        ssize_t r = recv(c->fd, sink, sizeof sink, 0);
                        if (r > 0) continue;
                        if (r == 0 || (errno != EAGAIN && errno != EINTR)) dead = c->out_off == c->out_len || r < 0;
                        break;
                    }
                    ssize_t r = recv(c->fd, c->in + c->in_len, IN_CAP - c->in_len, 0);
                    if (r > 0) {
                        c->in_len += (size_t)r;
                        if (handle_requests(c) < 0) { dead = 1; break; }
                        continue;
                    }
                    if (r == 0) { // the client closed: answer what it sent, then close
                        c->close_after = 1;
                        if (c->out_off == c->out_len) dead = 1;
                        break;
                    }
                    if (errno == EINTR) continue;
                    if (errno != EAGAIN) dead = 1;
                    break;
                }
                if (!dead) {
                    int r = flush_out(ep, c);
                    if (r != 0) dead = 1;
                }
            }
            if (dead) drop(ep, c);
        }
    }
}
