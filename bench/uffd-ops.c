/*
 * The host's own cost of the page-table changes a remote page fault
 * needs, besides its network round trip:
 *
 *   place          UFFDIO_COPY of a 4 KiB page, write-protected, into a
 *                  page another thread of the process waits for (what
 *                  the requester does; the ioctl wakes that thread)
 *   write-protect  UFFDIO_WRITEPROTECT of a present page (what the owner
 *                  does before it copies a page it sends)
 *   unprotect      the same page made writable again (what a node that
 *                  upgrades its read-only copy does)
 *   discard        MADV_DONTNEED of a present page (what a node that
 *                  gives a page away or drops its copy does)
 *
 *   uffd-ops COUNT [GAP_US]
 *
 * Each operation is timed alone, one every GAP_US, as a workload that
 * faults now and then does them.  The memory is private anonymous,
 * registered for missing and write-protect faults, as a node's guest
 * RAM.  Prints "OP p50_us p99_us" for each.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

static char *area;
static sem_t go, done;
static int touch_page;             /* set before go is posted */

static double now_us(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* The "vCPU": reads the page it is told to, waiting for it if missing. */
static void *faulter(void *opaque)
{
    for (;;) {
        sem_wait(&go);
        if (touch_page < 0) {
            return NULL;
        }
        /* volatile: the read is the point, though its value is not */
        (void)*(volatile char *)(area + (size_t)touch_page * PAGE);
        sem_post(&done);
    }
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void report(const char *op, double *lat, int count)
{
    qsort(lat, count, sizeof(double), cmp);
    printf("%s %.1f %.1f\n", op, lat[(count - 1) / 2],
           lat[(count - 1) * 99 / 100]);
}

int main(int argc, char **argv)
{
    int count = argc > 1 ? atoi(argv[1]) : 2000;
    int gap_us = argc > 2 ? atoi(argv[2]) : 0;
    size_t len = (size_t)count * 2 * PAGE;
    double *place = calloc(count, sizeof(double));
    double *wp = calloc(count, sizeof(double));
    double *unprot = calloc(count, sizeof(double));
    double *discard = calloc(count, sizeof(double));
    struct uffdio_api api = {
        .api = UFFD_API,
        .features = UFFD_FEATURE_PAGEFAULT_FLAG_WP,
    };
    struct uffdio_register reg;
    static char src[PAGE];
    pthread_t thread;
    int uffd;

    if (count <= 0) {
        fprintf(stderr, "usage: uffd-ops COUNT [GAP_US]\n");
        return 1;
    }
    area = mmap(NULL, len, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED) {
        die("uffd-ops: mmap");
    }
    madvise(area, len, MADV_NOHUGEPAGE);
    uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
    if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api)) {
        die("uffd-ops: userfaultfd");
    }
    reg = (struct uffdio_register) {
        .range = { .start = (uintptr_t)area, .len = len },
        .mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
    };
    if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
        die("uffd-ops: UFFDIO_REGISTER");
    }
    memset(src, 0x5a, sizeof(src));
    sem_init(&go, 0, 0);
    sem_init(&done, 0, 0);
    pthread_create(&thread, NULL, faulter, NULL);

    for (int i = 0; i < count; i++) {
        char *waited = area + (size_t)i * PAGE;
        char *held = area + (size_t)(count + i) * PAGE;
        struct pollfd pfd = { .fd = uffd, .events = POLLIN };
        struct uffd_msg msg;
        struct uffdio_copy copy = {
            .dst = (uintptr_t)waited, .src = (uintptr_t)src, .len = PAGE,
            .mode = UFFDIO_COPY_MODE_WP,
        };
        struct uffdio_writeprotect prot = {
            .range = { .start = (uintptr_t)held, .len = PAGE },
            .mode = UFFDIO_WRITEPROTECT_MODE_WP,
        };
        struct uffdio_copy fill = {
            .dst = (uintptr_t)held, .src = (uintptr_t)src, .len = PAGE,
        };
        double t0;

        /* A page this process holds, written, as an owner's */
        if (ioctl(uffd, UFFDIO_COPY, &fill)) {
            die("uffd-ops: UFFDIO_COPY");
        }
        held[0] = 1;

        touch_page = i;
        sem_post(&go);
        if (poll(&pfd, 1, 5000) != 1 ||
            read(uffd, &msg, sizeof(msg)) != sizeof(msg)) {
            die("uffd-ops: no fault");
        }
        usleep(gap_us);
        t0 = now_us();
        if (ioctl(uffd, UFFDIO_COPY, &copy)) {
            die("uffd-ops: UFFDIO_COPY");
        }
        place[i] = now_us() - t0;
        sem_wait(&done);

        usleep(gap_us);
        t0 = now_us();
        if (ioctl(uffd, UFFDIO_WRITEPROTECT, &prot)) {
            die("uffd-ops: UFFDIO_WRITEPROTECT");
        }
        wp[i] = now_us() - t0;

        usleep(gap_us);
        prot.mode = 0;
        t0 = now_us();
        if (ioctl(uffd, UFFDIO_WRITEPROTECT, &prot)) {
            die("uffd-ops: UFFDIO_WRITEPROTECT");
        }
        unprot[i] = now_us() - t0;

        usleep(gap_us);
        t0 = now_us();
        if (madvise(held, PAGE, MADV_DONTNEED)) {
            die("uffd-ops: MADV_DONTNEED");
        }
        discard[i] = now_us() - t0;
    }
    touch_page = -1;
    sem_post(&go);
    pthread_join(thread, NULL);

    report("place", place, count);
    report("write-protect", wp, count);
    report("unprotect", unprot, count);
    report("discard", discard, count);
    return 0;
}
