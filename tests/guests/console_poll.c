/* console_poll: stdin/stdout/stderr poll and epoll as the pipes they are (the tests feed stdin and then close it): epoll_ctl accepts fds 0 and 1; stdout is writable; epoll and poll waits on stdin end when its input arrives; after reading to EOF stdin polls POLLHUP only (poll, epoll, and events=0 as Rust's start-up asks); a read of stdin made O_NONBLOCK gives EOF. Run: console_poll (stdin: some bytes, then closed). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static void out(const char *s) { write(1, s, strlen(s)); }

int main(void)
{
    char line[256];
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 100};
    int r0 = epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
    ev.events = EPOLLOUT;
    ev.data.u32 = 101;
    int r1 = epoll_ctl(ep, EPOLL_CTL_ADD, 1, &ev);
    snprintf(line, sizeof line, "epoll_ctl add stdin %d, stdout %d\n", r0, r1);
    out(line);

    struct pollfd p = {.fd = 1, .events = POLLOUT};
    int n = poll(&p, 1, 0);
    snprintf(line, sizeof line, "poll stdout for POLLOUT: %d revents %#x\n", n, p.revents);
    out(line);

    /* Wait (up to 10 s) for stdin's bytes, stdin alone in the set: it must become ready. */
    epoll_ctl(ep, EPOLL_CTL_DEL, 1, NULL);
    int saw_stdin = 0;
    for (int i = 0; i < 100 && !saw_stdin; i++) {
        struct epoll_event got[4];
        int k = epoll_wait(ep, got, 4, 100);
        for (int j = 0; j < k; j++)
            if (got[j].data.u32 == 100 && (got[j].events & (EPOLLIN | EPOLLHUP))) saw_stdin = 1;
    }
    snprintf(line, sizeof line, "epoll_wait saw stdin ready: %s\n", saw_stdin ? "yes" : "no");
    out(line);
    p.fd = 0;
    p.events = POLLIN;
    n = poll(&p, 1, 10000);
    snprintf(line, sizeof line, "poll stdin for POLLIN: %d, readable %s\n", n, (p.revents & POLLIN) ? "yes" : "no (hup only)");
    out(line);

    long total = 0;
    char buf[4096];
    ssize_t got;
    while ((got = read(0, buf, sizeof buf)) > 0) total += got;
    snprintf(line, sizeof line, "read %ld bytes of stdin, then %zd\n", total, got);
    out(line);

    p.fd = 0;
    p.events = POLLIN;
    n = poll(&p, 1, 0);
    snprintf(line, sizeof line, "poll stdin after EOF: %d revents %#x\n", n, p.revents);
    out(line);
    struct pollfd three[3] = {{0, 0, 0}, {1, 0, 0}, {2, 0, 0}};
    n = poll(three, 3, 0);
    snprintf(line, sizeof line, "poll 0,1,2 with no events: %d revents %#x %#x %#x\n", n, three[0].revents, three[1].revents, three[2].revents);
    out(line);

    struct epoll_event got2[4];
    int k = epoll_wait(ep, got2, 4, 1000);
    snprintf(line, sizeof line, "epoll_wait after EOF: %d events %#x data %u\n", k, k > 0 ? got2[0].events : 0, k > 0 ? got2[0].data.u32 : 0);
    out(line);

    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    got = read(0, buf, sizeof buf);
    snprintf(line, sizeof line, "non-blocking read after EOF: %zd\n", got);
    out(line);
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) & ~O_NONBLOCK);
    return 0;
}
