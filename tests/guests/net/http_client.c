// http_client: the client of the Remus network tests (runs natively, in the test's netns: ip netns exec NS http_client ...). Opens K keep-alive connections to http_server (or the Go httpd) and loops GET /n over them (every B-th one a GET /big?k=64), and F loops of fresh connections (GET /n with "Connection: close", one per connection), for D seconds or until SIGTERM/SIGINT or the stop file exists; then waits for the requests in flight and prints a summary (key=value lines) the tests parse: requests ok and failed (resets, timeouts, bad responses), connect errors (a request never sent: retried), the counters seen per connection strictly increasing, the global set of counters without duplicates (as ranges), max gap between two answers and max latency in ms. Exit 0 when nothing failed. Run: http_client HOST PORT [-k K=4] [-f F=1] [-d SECONDS=0] [-s STOPFILE] [-t TIMEOUT_MS=20000] [-b EVERY=10].
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { IDLE, BACKOFF, CONNECTING, SENDING, READING };
enum { REQ_N, REQ_BIG };
#define BIG_KIB 64

struct conn {
    int id, keep_alive;
    int state, fd;
    char out[256];
    size_t out_len, out_off;
    char *in;
    size_t in_len, in_cap;
    int req_kind;
    int64_t started_ms;     // the request (or the connect) began
    int64_t backoff_until;
    uint64_t last_n;
    int has_last;
    uint64_t served;        // requests answered on this connection
    int connected;          // the current fd completed its handshake
};

static struct sockaddr_in server;
static volatile sig_atomic_t stop_signal;
static int64_t timeout_ms = 20000;
static int big_every = 10;
static uint64_t ok, failed, resets, timeouts, bad, connect_errors, non_monotonic, opened, reopened;
static int64_t last_ok_ms = -1, max_gap_ms, max_latency_ms;
static uint64_t *seen;
static size_t seen_len, seen_cap;
static int errors_logged;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_signal(int sig) { (void)sig; stop_signal = 1; }

static unsigned char big_byte(uint64_t i) { return (unsigned char)((i * 2654435761u) >> 13) ^ (unsigned char)(i >> 10); }

static void logerr(struct conn *c, const char *fmt, ...)
{
    if (errors_logged++ >= 50) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "error: conn %d (%s, %llu served): %s\n", c->id, c->keep_alive ? "keep-alive" : "fresh",
            (unsigned long long)c->served, msg);
}

static void close_conn(struct conn *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->in_len = 0;
    c->connected = 0;
    c->state = IDLE;
}

// A request failed after it was (maybe) sent: count it, drop the connection; a keep-alive one is opened again.
static void fail(struct conn *c, uint64_t *kind, const char *fmt, const char *detail)
{
    failed++;
    if (kind) (*kind)++;
    logerr(c, fmt, detail);
    close_conn(c);
    if (c->keep_alive) reopened++;
}

static void start_connect(struct conn *c, int64_t now)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) { perror("socket"); exit(2); }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->started_ms = now;
    c->has_last = 0; // a new connection: its counters start afresh (the global set still checks them)
    if (connect(c->fd, (struct sockaddr *)&server, sizeof server) == 0 || errno == EINPROGRESS) {
        c->state = CONNECTING;
        return;
    }
    connect_errors++;
    logerr(c, "connect: %s", strerror(errno));
    close(c->fd);
    c->fd = -1;
    c->state = BACKOFF;
    c->backoff_until = now + 50;
}

static void start_request(struct conn *c, int64_t now)
{
    c->req_kind = c->keep_alive && big_every > 0 && c->served % (uint64_t)big_every == (uint64_t)big_every - 1 ? REQ_BIG : REQ_N;
    char host[32];
    inet_ntop(AF_INET, &server.sin_addr, host, sizeof host);
    if (c->req_kind == REQ_BIG)
        c->out_len = (size_t)snprintf(c->out, sizeof c->out, "GET /big?k=%d HTTP/1.1\r\nHost: %s\r\n\r\n", BIG_KIB, host);
    else
        c->out_len = (size_t)snprintf(c->out, sizeof c->out, "GET /n HTTP/1.1\r\nHost: %s\r\n%s\r\n", host,
                                      c->keep_alive ? "" : "Connection: close\r\n");
    c->out_off = 0;
    c->in_len = 0;
    c->started_ms = now;
    c->state = SENDING;
}

static void record_ok(struct conn *c, int64_t now)
{
    ok++;
    c->served++;
    if (last_ok_ms >= 0 && now - last_ok_ms > max_gap_ms) max_gap_ms = now - last_ok_ms;
    last_ok_ms = now;
    if (now - c->started_ms > max_latency_ms) max_latency_ms = now - c->started_ms;
}

// Checks a complete response (head_len bytes of head, then body_len of body); 0 if correct.
static int check_response(struct conn *c, size_t head_len, size_t body_len, int closes)
{
    char *body = c->in + head_len;
    if (strncmp(c->in, "HTTP/1.1 200 ", 13) != 0) {
        char line[64];
        snprintf(line, sizeof line, "%.*s", (int)(strcspn(c->in, "\r") < 60 ? strcspn(c->in, "\r") : 60), c->in);
        logerr(c, "status line '%s'", line);
        return -1;
    }
    if (c->keep_alive && closes) { logerr(c, "the server closes a keep-alive connection"); return -1; }
    if (c->req_kind == REQ_BIG) {
        if (body_len != BIG_KIB * 1024) { logerr(c, "/big: %zu bytes", body_len); return -1; }
        for (size_t i = 0; i < body_len; i++)
            if ((unsigned char)body[i] != big_byte(i)) { logerr(c, "/big: byte %zu differs", i); return -1; }
        return 0;
    }
    char text[128];
    if (body_len >= sizeof text) { logerr(c, "/n: %zu bytes", body_len); return -1; }
    memcpy(text, body, body_len);
    text[body_len] = 0;
    unsigned long long n;
    long long t;
    int used = 0;
    if (sscanf(text, "n=%llu t=%lld\n%n", &n, &t, &used) != 2 || (size_t)used != body_len || text[body_len - 1] != '\n' || n == 0) {
        logerr(c, "/n: body '%s'", text);
        return -1;
    }
    if (c->has_last && n <= c->last_n) {
        non_monotonic++;
        logerr(c, "/n: counter %llu after %llu on the same connection", n, (unsigned long long)c->last_n);
    }
    c->last_n = n;
    c->has_last = 1;
    if (seen_len == seen_cap) {
        seen_cap = seen_cap ? seen_cap * 2 : 4096;
        seen = realloc(seen, seen_cap * sizeof *seen);
        if (!seen) { perror("realloc"); exit(2); }
    }
    seen[seen_len++] = n;
    return 0;
}

// Parses what arrived; returns 1 when the response is complete and handled, 0 to wait for more, -1 when bad.
static int parse(struct conn *c, int64_t now, int eof)
{
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!end) return eof ? -1 : 0;
    size_t head_len = (size_t)(end - c->in) + 4;
    long content_length = -1;
    int closes = 0;
    for (char *h = memmem(c->in, head_len, "\r\n", 2) + 2; h < end;) {
        char *he = memmem(h, (size_t)(end + 2 - h), "\r\n", 2);
        if (strncasecmp(h, "content-length:", 15) == 0) content_length = strtol(h + 15, NULL, 10);
        else if (strncasecmp(h, "connection:", 11) == 0 && strncasecmp(h + 11 + strspn(h + 11, " "), "close", 5) == 0) closes = 1;
        h = he + 2;
    }
    if (content_length < 0) { logerr(c, "no Content-Length"); return -1; }
    if (c->in_len < head_len + (size_t)content_length) return eof ? -1 : 0;
    if (c->in_len > head_len + (size_t)content_length) { logerr(c, "%zu bytes after the response", c->in_len - head_len - (size_t)content_length); return -1; }
    if (check_response(c, head_len, (size_t)content_length, closes) < 0) return -1;
    record_ok(c, now);
    return 1;
}

static void on_readable(struct conn *c, int64_t now)
{
    for (;;) {
        if (c->in_cap - c->in_len < 16384) {
            c->in_cap = c->in_cap ? c->in_cap * 2 : 65536 + 4096;
            c->in = realloc(c->in, c->in_cap);
            if (!c->in) { perror("realloc"); exit(2); }
        }
        ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (r > 0) {
            c->in_len += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) {
            int p = parse(c, now, 0);
            if (p < 0) { fail(c, &bad, "%s", "bad response"); return; }
            if (p > 0) {
                if (c->keep_alive) c->state = IDLE;
                else close_conn(c);
            }
            return;
        }
        if (r == 0) { // EOF: only after a whole response of a fresh connection
            int p = parse(c, now, 1);
            if (p > 0 && !c->keep_alive) { close_conn(c); return; }
            if (p > 0) { fail(c, &resets, "%s", "EOF on a keep-alive connection"); return; }
            fail(c, &resets, "EOF after %s bytes of the response", c->in_len ? "some" : "no");
            return;
        }
        fail(c, errno == ETIMEDOUT ? &timeouts : &resets, "recv: %s", strerror(errno));
        return;
    }
}

static void print_ranges(void)
{
    printf("counters=");
    int first = 1;
    for (size_t i = 0; i < seen_len;) {
        size_t j = i;
        while (j + 1 < seen_len && seen[j + 1] == seen[j] + 1) j++;
        if (!first) putchar(',');
        first = 0;
        if (j == i) printf("%llu", (unsigned long long)seen[i]);
        else printf("%llu-%llu", (unsigned long long)seen[i], (unsigned long long)seen[j]);
        i = j + 1;
    }
    putchar('\n');
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: http_client HOST PORT [-k K] [-f F] [-d SECONDS] [-s STOPFILE] [-t TIMEOUT_MS] [-b EVERY]\n");
        return 2;
    }
    int k = 4, f = 1;
    int64_t duration_ms = 0;
    const char *stop_file = NULL;
    memset(&server, 0, sizeof server);
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &server.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", argv[1]); return 2; }
    for (int i = 3; i + 1 < argc; i += 2) {
        const char *o = argv[i], *v = argv[i + 1];
        if (!strcmp(o, "-k")) k = atoi(v);
        else if (!strcmp(o, "-f")) f = atoi(v);
        else if (!strcmp(o, "-d")) duration_ms = atoll(v) * 1000;
        else if (!strcmp(o, "-s")) stop_file = v;
        else if (!strcmp(o, "-t")) timeout_ms = atoll(v);
        else if (!strcmp(o, "-b")) big_every = atoi(v);
        else { fprintf(stderr, "unknown option %s\n", o); return 2; }
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    int total = k + f;
    struct conn *conns = calloc((size_t)total, sizeof *conns);
    struct pollfd *pfds = calloc((size_t)total, sizeof *pfds);
    for (int i = 0; i < total; i++) {
        conns[i].id = i;
        conns[i].keep_alive = i < k;
        conns[i].fd = -1;
        conns[i].state = IDLE;
    }
    int64_t start = now_ms(), last_progress = start;
    int stopping = 0;
    for (;;) {
        int64_t now = now_ms();
        if (!stopping && (stop_signal || (duration_ms > 0 && now - start >= duration_ms) || (stop_file && access(stop_file, F_OK) == 0)))
            stopping = 1;
        if (now - last_progress >= 1000) {
            printf("progress ok=%llu failed=%llu connect_errors=%llu\n", (unsigned long long)ok, (unsigned long long)failed,
                   (unsigned long long)connect_errors);
            last_progress = now;
        }
        int busy = 0;
        for (int i = 0; i < total; i++) {
            struct conn *c = &conns[i];
            if (c->state == BACKOFF && now >= c->backoff_until) c->state = IDLE;
            if (c->state == IDLE && !stopping) {
                if (c->fd < 0) start_connect(c, now);
                else start_request(c, now);
            }
            if (c->state == CONNECTING || c->state == SENDING || c->state == READING) {
                busy = 1;
                if (now - c->started_ms > timeout_ms) {
                    if (c->state == CONNECTING) {
                        connect_errors++;
                        logerr(c, "connect: no answer in %lld ms", (long long)timeout_ms);
                        close_conn(c);
                    } else {
                        fail(c, &timeouts, "no answer in %s", "the timeout");
                    }
                }
            }
        }
        if (stopping && !busy) break;
        int np = 0;
        for (int i = 0; i < total; i++) {
            struct conn *c = &conns[i];
            pfds[i].fd = -1;
            pfds[i].events = 0;
            pfds[i].revents = 0;
            if (c->state == CONNECTING || c->state == SENDING) pfds[i].events = POLLOUT;
            else if (c->state == READING) pfds[i].events = POLLIN;
            else continue;
            pfds[i].fd = c->fd;
            np++;
        }
        int r = poll(pfds, (nfds_t)total, 20);
        if (r < 0 && errno != EINTR) { perror("poll"); return 2; }
        now = now_ms();
        for (int i = 0; r > 0 && i < total; i++) {
            struct conn *c = &conns[i];
            if (!pfds[i].revents || pfds[i].fd != c->fd) continue;
            if (c->state == CONNECTING) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) {
                    connect_errors++;
                    logerr(c, "connect: %s", strerror(err));
                    close_conn(c);
                    c->state = BACKOFF;
                    c->backoff_until = now + 50;
                    continue;
                }
                c->connected = 1;
                opened++;
                if (stopping) { close_conn(c); continue; }
                start_request(c, now);
            }
            if (c->state == SENDING) {
                ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
                if (w < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                if (w < 0) { fail(c, errno == ETIMEDOUT ? &timeouts : &resets, "send: %s", strerror(errno)); continue; }
                c->out_off += (size_t)w;
                if (c->out_off == c->out_len) c->state = READING;
                continue;
            }
            if (c->state == READING) on_readable(c, now);
        }
        (void)np;
    }
    uint64_t keepalive_served_min = UINT64_MAX;
    for (int i = 0; i < k; i++)
        if (conns[i].served < keepalive_served_min) keepalive_served_min = conns[i].served;
    for (int i = 0; i < total; i++) close_conn(&conns[i]);

    qsort(seen, seen_len, sizeof *seen, cmp_u64);
    uint64_t dups = 0;
    size_t u = 0;
    for (size_t i = 0; i < seen_len; i++) {
        if (u > 0 && seen[i] == seen[u - 1]) {
            if (dups++ < 20) fprintf(stderr, "error: counter %llu seen twice\n", (unsigned long long)seen[i]);
            continue;
        }
        seen[u++] = seen[i];
    }
    seen_len = u;
    printf("requests_ok=%llu\n", (unsigned long long)ok);
    printf("requests_failed=%llu\n", (unsigned long long)failed);
    printf("resets=%llu\n", (unsigned long long)resets);
    printf("timeouts=%llu\n", (unsigned long long)timeouts);
    printf("bad_responses=%llu\n", (unsigned long long)bad);
    printf("connect_errors=%llu\n", (unsigned long long)connect_errors);
    printf("non_monotonic=%llu\n", (unsigned long long)non_monotonic);
    printf("duplicates=%llu\n", (unsigned long long)dups);
    printf("connections=%llu\n", (unsigned long long)opened);
    printf("keepalive_reopened=%llu\n", (unsigned long long)reopened);
    printf("keepalive_served_min=%llu\n", (unsigned long long)(k > 0 ? keepalive_served_min : 0));
    printf("max_gap_ms=%lld\n", (long long)max_gap_ms);
    printf("max_latency_ms=%lld\n", (long long)max_latency_ms);
    print_ranges();
    return failed || non_monotonic || dups ? 1 : 0;
}
