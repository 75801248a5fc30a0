/* peer: the Linux side of the network interop tests and benchmarks, run on the host inside a test network namespace
 * (`ip netns exec remus-t-XXXX peer`), never in a domain. It reads one command per line on stdin and answers one line
 * on stdout ("ok ..." or "err ERRNAME ..."), so a test drives real Linux sockets step by step:
 *   listen PORT [BACKLOG]            -> ok ID            (TCP, SO_REUSEADDR, on 0.0.0.0)
 *   accept LID                       -> ok ID ADDR:PORT
 *   connect IP PORT [LPORT]          -> ok ID LPORT       (LPORT: bind that local port first, SO_REUSEADDR)
 *   send ID N SEED                   -> ok N NS           (N bytes of the generated stream SEED; NS: elapsed ns)
 *   recv ID N                        -> ok COUNT SHA256 NS [eof]   (reads N bytes, or up to end of stream)
 *   recvall ID                       -> ok COUNT SHA256 NS         (to end of stream)
 *   wait ID                          -> ok data N | ok eof | err ERRNAME   (one blocking read of at most 64 KiB)
 *   shut ID HOW                      -> ok                (0 SHUT_RD, 1 SHUT_WR, 2 SHUT_RDWR)
 *   close ID / rst ID                -> ok                (rst: SO_LINGER 0 then close: sends RST)
 *   rcvbuf ID N / nodelay ID         -> ok
 *   keepalive ID IDLE INTVL CNT      -> ok
 *   soerror ID                       -> ok ERRNAME|0
 *   echo ID                          -> ok BYTES          (echoes until end of stream, then SHUT_WR)
 *   rr ID COUNT SIZE                 -> ok P50NS P99NS    (COUNT requests of SIZE bytes, each waits for SIZE back)
 *   many IP PORT COUNT BYTES SEED    -> ok COUNT NS       (COUNT connections at once, each sends BYTES and reads
 *                                                          the echo to end of stream, compared with what it sent)
 *   cps IP PORT COUNT                -> ok NS             (COUNT connect+close in turn)
 *   udp PORT                         -> ok ID             (UDP socket bound to 0.0.0.0:PORT)
 *   udpsend ID IP PORT TEXT          -> ok
 *   udprecv ID                       -> ok ADDR:PORT TEXT
 *   udpecho ID COUNT                 -> ok                (echoes COUNT datagrams to their senders)
 *   source ID N                      -> ok N NS           (N zero bytes: throughput without generating or hashing)
 *   sink ID [N]                      -> ok COUNT NS       (reads N bytes or to end of stream, no hash)
 *   acceptclose LID COUNT            -> ok                (accepts COUNT connections, closing each at once)
 *   hold IP PORT COUNT               -> ok COUNT          (opens COUNT connections and keeps them, idle)
 *   ping IP COUNT SIZE               -> ok REPLIES        (ICMP echo over a raw socket, payload SIZE bytes checked;
 *                                                          each waits at most 2 s for its reply)
 * The generated stream of SEED is xorshift64 (13, 7, 17) from state SEED|1, each state written little-endian: the
 * tests compute the same bytes and their SHA-256. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXS 4096
static int socks[MAXS];

/* ---- SHA-256 (FIPS 180-4) ---- */
typedef struct { uint32_t h[8]; uint64_t len; uint8_t buf[64]; size_t n; } sha_t;
static const uint32_t K[64] = {
    0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,0xd807aa98,0x12835b01,
    0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,
    0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,
    0x06ca6351,0x14292967,0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,
    0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,0x19a4c116,0x1e376c08,
    0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,
    0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2};
#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
static void sha_block(sha_t *s, const uint8_t *p) {
    uint32_t w[64], a, b, c, d, e, f, g, h;
    for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4*i] << 24 | (uint32_t)p[4*i+1] << 16 | (uint32_t)p[4*i+2] << 8 | p[4*i+3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i-15], 7) ^ ROR(w[i-15], 18) ^ (w[i-15] >> 3), s1 = ROR(w[i-2], 17) ^ ROR(w[i-2], 19) ^ (w[i-2] >> 10);
        w[i] = w[i-16] + s0 + w[i-7] + s1;
    }
    a = s->h[0]; b = s->h[1]; c = s->h[2]; d = s->h[3]; e = s->h[4]; f = s->h[5]; g = s->h[6]; h = s->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d; s->h[4] += e; s->h[5] += f; s->h[6] += g; s->h[7] += h;
}
static void sha_init(sha_t *s) {
    static const uint32_t iv[8] = {0x6a09e667,0xbb67ae85,0x3c6ef372,0xa54ff53a,0x510e527f,0x9b05688c,0x1f83d9ab,0x5be0cd19};
    memcpy(s->h, iv, sizeof iv); s->len = 0; s->n = 0;
}
static void sha_update(sha_t *s, const uint8_t *p, size_t n) {
    s->len += n;
    while (n > 0) {
        if (s->n == 0 && n >= 64) { sha_block(s, p); p += 64; n -= 64; continue; }
        size_t k = 64 - s->n < n ? 64 - s->n : n;
        memcpy(s->buf + s->n, p, k); s->n += k; p += k; n -= k;
        if (s->n == 64) { sha_block(s, s->buf); s->n = 0; }
    }
}
static void sha_hex(sha_t *s, char out[65]) {
    uint64_t bits = s->len * 8;
    uint8_t pad = 0x80, z = 0, l[8];
    sha_update(s, &pad, 1);
    while (s->n != 56) sha_update(s, &z, 1);
    for (int i = 0; i < 8; i++) l[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha_update(s, l, 8);
    for (int i = 0; i < 8; i++) sprintf(out + 8 * i, "%08x", s->h[i]);
}

/* ---- the generated stream ---- */
typedef struct { uint64_t x; uint8_t b[8]; int used; } gen_t;
static void gen_init(gen_t *g, uint64_t seed) { g->x = seed | 1; g->used = 8; }
static void gen_fill(gen_t *g, uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (g->used == 8) {
            g->x ^= g->x << 13; g->x ^= g->x >> 7; g->x ^= g->x << 17;
            for (int k = 0; k < 8; k++) g->b[k] = (uint8_t)(g->x >> (8 * k));
            g->used = 0;
        }
        p[i] = g->b[g->used++];
    }
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}
static int add_sock(int fd) {
    for (int i = 1; i < MAXS; i++) if (socks[i] < 0) { socks[i] = fd; return i; }
    close(fd);
    return -1;
}
static int sock_of(const char *id) {
    int i = atoi(id);
    return i > 0 && i < MAXS ? socks[i] : -1;
}
static void reply_err(const char *what) { printf("err %s %s\n", strerrorname_np(errno) ? strerrorname_np(errno) : "?", what); }
static int parse_addr(const char *ip, const char *port, struct sockaddr_in *a) {
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)atoi(port));
    return inet_pton(AF_INET, ip, &a->sin_addr) == 1 ? 0 : -1;
}
static const char *fmt_addr(struct sockaddr_in *a) {
    static char s[64];
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
    snprintf(s, sizeof s, "%s:%u", ip, ntohs(a->sin_port));
    return s;
}
static int set_int(int fd, int level, int name, int v) { return setsockopt(fd, level, name, &v, sizeof v); }

static uint8_t iobuf[1 << 16];

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        p += w; n -= (size_t)w;
    }
    return 0;
}
static int read_exact(int fd, uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { if (r == 0) errno = ECONNRESET; return -1; }
        p += r; n -= (size_t)r;
    }
    return 0;
}

static void cmd_send(int fd, long long n, uint64_t seed) {
    gen_t g; gen_init(&g, seed);
    long long t0 = now_ns(), sent = 0;
    while (sent < n) {
        size_t k = n - sent < (long long)sizeof iobuf ? (size_t)(n - sent) : sizeof iobuf;
        gen_fill(&g, iobuf, k);
        if (write_all(fd, iobuf, k) < 0) { int e = errno; char w[64]; snprintf(w, sizeof w, "after %lld", sent); errno = e; reply_err(w); return; }
        sent += (long long)k;
    }
    printf("ok %lld %lld\n", sent, now_ns() - t0);
}
static void cmd_recv(int fd, long long n) {
    sha_t s; sha_init(&s);
    char hex[65];
    long long t0 = now_ns(), got = 0;
    int eof = 0;
    while (n < 0 || got < n) {
        size_t want = n < 0 || n - got > (long long)sizeof iobuf ? sizeof iobuf : (size_t)(n - got);
        ssize_t r = read(fd, iobuf, want);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { char w[64]; snprintf(w, sizeof w, "after %lld", got); reply_err(w); return; }
        if (r == 0) { eof = 1; break; }
        sha_update(&s, iobuf, (size_t)r);
        got += r;
    }
    long long dt = now_ns() - t0;
    sha_hex(&s, hex);
    printf("ok %lld %s %lld%s\n", got, hex, dt, eof && n >= 0 ? " eof" : "");
}
static int cmp_ll(const void *a, const void *b) { long long x = *(const long long *)a, y = *(const long long *)b; return x < y ? -1 : x > y; }
static void cmd_rr(int fd, int count, int size) {
    long long *lat = calloc((size_t)count, sizeof *lat);
    memset(iobuf, 'q', (size_t)size);
    set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    for (int i = 0; i < count; i++) {
        long long t0 = now_ns();
        if (write_all(fd, iobuf, (size_t)size) < 0 || read_exact(fd, iobuf, (size_t)size) < 0) { reply_err("rr"); free(lat); return; }
        lat[i] = now_ns() - t0;
    }
    qsort(lat, (size_t)count, sizeof *lat, cmp_ll);
    printf("ok %lld %lld\n", lat[count / 2], lat[(count * 99) / 100 < count ? (count * 99) / 100 : count - 1]);
    free(lat);
}
static void cmd_echo(int fd) {
    long long total = 0;
    for (;;) {
        ssize_t r = read(fd, iobuf, sizeof iobuf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { reply_err("echo read"); return; }
        if (r == 0) break;
        if (write_all(fd, iobuf, (size_t)r) < 0) { reply_err("echo write"); return; }
        total += r;
    }
    shutdown(fd, SHUT_WR);
    printf("ok %lld\n", total);
}
static void cmd_many(struct sockaddr_in *a, int count, int bytes, uint64_t seed) {
    int *fds = calloc((size_t)count, sizeof *fds);
    uint8_t *want = malloc((size_t)bytes), *got = malloc((size_t)bytes);
    long long t0 = now_ns();
    int ok = 0;
    for (int i = 0; i < count; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)a, sizeof *a) < 0) { char w[64]; snprintf(w, sizeof w, "connect %d", i); reply_err(w); goto out; }
    }
    for (int i = 0; i < count; i++) {
        gen_t g; gen_init(&g, seed + (uint64_t)i);
        gen_fill(&g, want, (size_t)bytes);
        if (write_all(fds[i], want, (size_t)bytes) < 0 || shutdown(fds[i], SHUT_WR) < 0) { char w[64]; snprintf(w, sizeof w, "send %d", i); reply_err(w); goto out; }
    }
    for (int i = 0; i < count; i++) {
        gen_t g; gen_init(&g, seed + (uint64_t)i);
        gen_fill(&g, want, (size_t)bytes);
        if (read_exact(fds[i], got, (size_t)bytes) < 0) { char w[64]; snprintf(w, sizeof w, "recv %d", i); reply_err(w); goto out; }
        if (memcmp(want, got, (size_t)bytes) != 0) { printf("err EBADMSG echo %d differs\n", i); goto out; }
        ssize_t r = read(fds[i], got, 1);
        if (r != 0) { printf("err EBADMSG echo %d: no end of stream (%zd)\n", i, r); goto out; }
        ok++;
    }
    printf("ok %d %lld\n", ok, now_ns() - t0);
out:
    for (int i = 0; i < count; i++) if (fds[i] > 0) close(fds[i]);
    free(fds); free(want); free(got);
}

static uint16_t csum(const uint8_t *p, size_t n) {
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (n & 1) sum += (uint32_t)(p[n - 1] << 8);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}
static void cmd_ping(struct sockaddr_in *a, int count, int size) {
    int s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    if (s < 0) { reply_err("raw socket"); return; }
    struct timeval tv = {2, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    uint16_t id = (uint16_t)getpid();
    int replies = 0;
    static uint8_t pkt[9000], in[9100];
    if (size > 8000) size = 8000;
    for (int i = 0; i < count; i++) {
        memset(pkt, 0, 8);
        pkt[0] = 8; /* echo request */
        pkt[4] = (uint8_t)(id >> 8); pkt[5] = (uint8_t)id; pkt[6] = (uint8_t)(i >> 8); pkt[7] = (uint8_t)i;
        for (int k = 0; k < size; k++) pkt[8 + k] = (uint8_t)(k * 7 + i);
        uint16_t c = csum(pkt, 8 + (size_t)size);
        pkt[2] = (uint8_t)(c >> 8); pkt[3] = (uint8_t)c;
        if (sendto(s, pkt, 8 + (size_t)size, 0, (struct sockaddr *)a, sizeof *a) < 0) { reply_err("sendto"); close(s); return; }
        for (;;) {
            ssize_t r = recv(s, in, sizeof in, 0);
            if (r < 0) break; /* timeout: lost */
            int ihl = (in[0] & 15) * 4;
            uint8_t *m = in + ihl;
            if (r < ihl + 8 || m[0] != 0 || (m[4] << 8 | m[5]) != id || (m[6] << 8 | m[7]) != i) continue;
            if (r - ihl - 8 == size && memcmp(m + 8, pkt + 8, (size_t)size) == 0 && csum(m, (size_t)(r - ihl)) == 0) replies++;
            break;
        }
    }
    close(s);
    printf("ok %d\n", replies);
}

int main(void) {
    char line[4096];
    char *v[16];
    for (int i = 0; i < MAXS; i++) socks[i] = -1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof line, stdin)) {
        int n = 0;
        for (char *t = strtok(line, " \t\r\n"); t && n < 16; t = strtok(NULL, " \t\r\n")) v[n++] = t;
        if (n == 0) continue;
        const char *c = v[0];
        int fd = n > 1 ? sock_of(v[1]) : -1;
        struct sockaddr_in a;
        socklen_t al = sizeof a;
        if (!strcmp(c, "listen") && n >= 2) {
            int s = socket(AF_INET, SOCK_STREAM, 0);
            set_int(s, SOL_SOCKET, SO_REUSEADDR, 1);
            parse_addr("0.0.0.0", v[1], &a);
            if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, n > 2 ? atoi(v[2]) : 128) < 0) { reply_err("listen"); close(s); continue; }
            printf("ok %d\n", add_sock(s));
        } else if (!strcmp(c, "accept") && n >= 2) {
            int s = accept(fd, (struct sockaddr *)&a, &al);
            if (s < 0) { reply_err("accept"); continue; }
            int id = add_sock(s);
            printf("ok %d %s\n", id, fmt_addr(&a));
        } else if (!strcmp(c, "connect") && n >= 3) {
            int s = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in l;
            if (n > 3) {
                set_int(s, SOL_SOCKET, SO_REUSEADDR, 1);
                parse_addr("0.0.0.0", v[3], &l);
                if (bind(s, (struct sockaddr *)&l, sizeof l) < 0) { reply_err("bind"); close(s); continue; }
            }
            if (parse_addr(v[1], v[2], &a) < 0) { printf("err EINVAL address\n"); close(s); continue; }
            if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) { reply_err("connect"); close(s); continue; }
            socklen_t ll = sizeof l;
            getsockname(s, (struct sockaddr *)&l, &ll);
            int id = add_sock(s);
            printf("ok %d %u\n", id, ntohs(l.sin_port));
        } else if (!strcmp(c, "send") && n >= 4 && fd >= 0) {
            cmd_send(fd, atoll(v[2]), strtoull(v[3], NULL, 10));
        } else if (!strcmp(c, "recv") && n >= 3 && fd >= 0) {
            cmd_recv(fd, atoll(v[2]));
        } else if (!strcmp(c, "recvall") && fd >= 0) {
            cmd_recv(fd, -1);
        } else if (!strcmp(c, "wait") && fd >= 0) {
            ssize_t r;
            do r = read(fd, iobuf, sizeof iobuf); while (r < 0 && errno == EINTR);
            if (r < 0) reply_err("read");
            else if (r == 0) printf("ok eof\n");
            else printf("ok data %zd\n", r);
        } else if (!strcmp(c, "shut") && n >= 3 && fd >= 0) {
            if (shutdown(fd, atoi(v[2])) < 0) reply_err("shutdown"); else printf("ok\n");
        } else if ((!strcmp(c, "close") || !strcmp(c, "rst")) && fd >= 0) {
            if (c[0] == 'r') { struct linger lg = {1, 0}; setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg); }
            close(fd);
            socks[atoi(v[1])] = -1;
            printf("ok\n");
        } else if (!strcmp(c, "rcvbuf") && n >= 3 && fd >= 0) {
            if (set_int(fd, SOL_SOCKET, SO_RCVBUF, atoi(v[2])) < 0) reply_err("rcvbuf"); else printf("ok\n");
        } else if (!strcmp(c, "nodelay") && fd >= 0) {
            if (set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1) < 0) reply_err("nodelay"); else printf("ok\n");
        } else if (!strcmp(c, "keepalive") && n >= 5 && fd >= 0) {
            if (set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1) < 0 || set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, atoi(v[2])) < 0 ||
                set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, atoi(v[3])) < 0 || set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, atoi(v[4])) < 0)
                reply_err("keepalive");
            else printf("ok\n");
        } else if (!strcmp(c, "soerror") && fd >= 0) {
            int e = 0; socklen_t el = sizeof e;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
            printf("ok %s\n", e ? strerrorname_np(e) : "0");
        } else if (!strcmp(c, "echo") && fd >= 0) {
            cmd_echo(fd);
        } else if (!strcmp(c, "rr") && n >= 4 && fd >= 0) {
            cmd_rr(fd, atoi(v[2]), atoi(v[3]));
        } else if (!strcmp(c, "many") && n >= 6) {
            if (parse_addr(v[1], v[2], &a) < 0) { printf("err EINVAL address\n"); continue; }
            cmd_many(&a, atoi(v[3]), atoi(v[4]), strtoull(v[5], NULL, 10));
        } else if (!strcmp(c, "cps") && n >= 4) {
            if (parse_addr(v[1], v[2], &a) < 0) { printf("err EINVAL address\n"); continue; }
            long long t0 = now_ns();
            int i, count = atoi(v[3]);
            for (i = 0; i < count; i++) {
                int s = socket(AF_INET, SOCK_STREAM, 0);
                if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) { reply_err("connect"); close(s); break; }
                ssize_t r = read(s, iobuf, 1); /* the server closes first: its side keeps the TIME_WAIT */
                (void)r;
                close(s);
            }
            if (i == count) printf("ok %lld\n", now_ns() - t0);
        } else if (!strcmp(c, "udp") && n >= 2) {
            int s = socket(AF_INET, SOCK_DGRAM, 0);
            parse_addr("0.0.0.0", v[1], &a);
            if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) { reply_err("bind"); close(s); continue; }
            printf("ok %d\n", add_sock(s));
        } else if (!strcmp(c, "udpsend") && n >= 5 && fd >= 0) {
            if (parse_addr(v[2], v[3], &a) < 0) { printf("err EINVAL address\n"); continue; }
            if (sendto(fd, v[4], strlen(v[4]), 0, (struct sockaddr *)&a, sizeof a) < 0) reply_err("sendto"); else printf("ok\n");
        } else if (!strcmp(c, "udprecv") && fd >= 0) {
            ssize_t r = recvfrom(fd, iobuf, sizeof iobuf - 1, 0, (struct sockaddr *)&a, &al);
            if (r < 0) { reply_err("recvfrom"); continue; }
            iobuf[r] = 0;
            printf("ok %s %s\n", fmt_addr(&a), (char *)iobuf);
        } else if (!strcmp(c, "udpecho") && n >= 3 && fd >= 0) {
            int count = atoi(v[2]), i;
            for (i = 0; i < count; i++) {
                al = sizeof a;
                ssize_t r = recvfrom(fd, iobuf, sizeof iobuf, 0, (struct sockaddr *)&a, &al);
                if (r < 0 || sendto(fd, iobuf, (size_t)r, 0, (struct sockaddr *)&a, al) < 0) { reply_err("udpecho"); break; }
            }
            if (i == count) printf("ok\n");
        } else if (!strcmp(c, "source") && n >= 3 && fd >= 0) {
            long long want = atoll(v[2]), sent = 0, t0 = now_ns();
            memset(iobuf, 0, sizeof iobuf);
            while (sent < want) {
                size_t k = want - sent < (long long)sizeof iobuf ? (size_t)(want - sent) : sizeof iobuf;
                if (write_all(fd, iobuf, k) < 0) break;
                sent += (long long)k;
            }
            if (sent < want) reply_err("source"); else printf("ok %lld %lld\n", sent, now_ns() - t0);
        } else if (!strcmp(c, "sink") && fd >= 0) {
            long long got = 0, t0 = now_ns(), want = n > 2 ? atoll(v[2]) : -1;
            ssize_t r = 1;
            while (want < 0 || got < want) {
                size_t k = want < 0 || want - got > (long long)sizeof iobuf ? sizeof iobuf : (size_t)(want - got);
                r = read(fd, iobuf, k);
                if (r < 0 && errno == EINTR) continue;
                if (r <= 0) break;
                got += r;
            }
            if (r < 0) reply_err("sink"); else printf("ok %lld %lld\n", got, now_ns() - t0);
        } else if (!strcmp(c, "acceptclose") && n >= 3 && fd >= 0) {
            int count = atoi(v[2]), i;
            for (i = 0; i < count; i++) {
                int s = accept(fd, NULL, NULL);
                if (s < 0) { reply_err("accept"); break; }
                close(s);
            }
            if (i == count) printf("ok\n");
        } else if (!strcmp(c, "hold") && n >= 4) {
            if (parse_addr(v[1], v[2], &a) < 0) { printf("err EINVAL address\n"); continue; }
            int count = atoi(v[3]), i;
            for (i = 0; i < count; i++) {
                int s = socket(AF_INET, SOCK_STREAM, 0);
                if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) { reply_err("connect"); close(s); break; }
                if (add_sock(s) < 0) { printf("err EMFILE hold\n"); break; }
            }
            if (i == count) printf("ok %d\n", count);
        } else if (!strcmp(c, "ping") && n >= 4) {
            if (parse_addr(v[1], "0", &a) < 0) { printf("err EINVAL address\n"); continue; }
            cmd_ping(&a, atoi(v[2]), atoi(v[3]));
        } else {
            printf("err EINVAL unknown command or socket: %s\n", c);
        }
    }
    return 0;
}
