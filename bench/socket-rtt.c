/*
 * Raw request / 4 KiB reply round trip between two processes, over the
 * kind of socket a distvm cluster uses: the floor a remote page fault is
 * compared with.  Message sizes are those of a page request (24-byte
 * header + 24-byte payload) and a page reply (24 + 24 + 4096 bytes).
 *
 *   socket-rtt unix|tcp COUNT [GAP_US]
 *
 * GAP_US idles the client between round trips, as a workload that
 * faults now and then does (both processes' cores go idle and must be
 * woken).  Prints "rtt p50_us p99_us mean_us", then with SAMPLES set in
 * the environment every round trip, one per line, in microseconds.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REQ_SIZE 48
#define REPLY_SIZE (48 + 4096)

static void xfer(int fd, char *buf, size_t len, int out)
{
    while (len) {
        ssize_t n = out ? write(fd, buf, len) : read(fd, buf, len);

        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            perror("socket-rtt");
            exit(1);
        }
        buf += n;
        len -= n;
    }
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int tcp = argc > 1 && !strcmp(argv[1], "tcp");
    int count = argc > 2 ? atoi(argv[2]) : 2000;
    int gap_us = argc > 3 ? atoi(argv[3]) : 0;
    static char req[REQ_SIZE], reply[REPLY_SIZE];
    double *lat = calloc(count, sizeof(double)), sum = 0;
    int lfd, fd, one = 1;
    pid_t pid;

    if (tcp) {
        struct sockaddr_in sin = { .sin_family = AF_INET };
        socklen_t len = sizeof(sin);

        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        lfd = socket(AF_INET, SOCK_STREAM, 0);
        if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) ||
            getsockname(lfd, (struct sockaddr *)&sin, &len) ||
            listen(lfd, 1)) {
            perror("socket-rtt: listen");
            return 1;
        }
        pid = fork();
        if (pid == 0) {
            fd = socket(AF_INET, SOCK_STREAM, 0);
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            if (connect(fd, (struct sockaddr *)&sin, sizeof(sin))) {
                perror("socket-rtt: connect");
                return 1;
            }
            goto server;
        }
    } else {
        struct sockaddr_un sun = { .sun_family = AF_UNIX };

        snprintf(sun.sun_path, sizeof(sun.sun_path), "/tmp/socket-rtt-%d",
                 getpid());
        unlink(sun.sun_path);
        lfd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) ||
            listen(lfd, 1)) {
            perror("socket-rtt: listen");
            return 1;
        }
        pid = fork();
        if (pid == 0) {
            fd = socket(AF_UNIX, SOCK_STREAM, 0);
            if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
                perror("socket-rtt: connect");
                return 1;
            }
            goto server;
        }
        fd = accept(lfd, NULL, NULL);
        unlink(sun.sun_path);
        goto client;
    }
    fd = accept(lfd, NULL, NULL);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

client:
    for (int i = -100; i < count; i++) {        /* 100 warm-up rounds */
        struct timespec t0, t1;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        xfer(fd, req, sizeof(req), 1);
        xfer(fd, reply, sizeof(reply), 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (i >= 0) {
            lat[i] = (t1.tv_sec - t0.tv_sec) * 1e6 +
                     (t1.tv_nsec - t0.tv_nsec) / 1e3;
            sum += lat[i];
        }
        if (gap_us) {
            usleep(gap_us);
        }
    }
    close(fd);
    waitpid(pid, NULL, 0);
    if (getenv("SAMPLES")) {
        for (int i = 0; i < count; i++) {
            printf("%.1f\n", lat[i]);
        }
        return 0;
    }
    qsort(lat, count, sizeof(double), cmp);
    printf("rtt %.0f %.0f %.0f\n", lat[(count - 1) / 2],
           lat[(count - 1) * 99 / 100], sum / count);
    return 0;

server:
    for (;;) {
        ssize_t n = read(fd, req, sizeof(req));

        if (n <= 0) {
            return 0;
        }
        if (n < (ssize_t)sizeof(req)) {
            xfer(fd, req + n, sizeof(req) - n, 0);
        }
        xfer(fd, reply, sizeof(reply), 1);
    }
}
