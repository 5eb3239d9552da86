/*
 * distvm qtest: a Linux SMP guest across nodes
 *
 * Debian's kernel with a busybox initramfs, -smp 4, some vCPUs placed on
 * other nodes from power-on.  The guest brings them up through forwarded
 * INIT/SIPI, fetches a file from an HTTP server this test runs on
 * loopback (virtio-net through slirp on the home node), writes it to a
 * virtio-blk disk and reads it back, all from a vCPU on another node,
 * then runs a workload on every CPU while the test moves vCPUs between
 * nodes.  It checks the guest's output, the disk image, the console and
 * that every node exits 0 after the guest powers off.  Time stays local:
 * the guest keeps the TSC as its clocksource, and no node sends a read of
 * a clock register home.  The 3-node case gives the guest one NUMA node
 * per cluster node, homed where its vCPUs run, and checks the distances
 * the guest sees.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sched.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include "qemu/atomic.h"
#include "qemu/bswap.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qobject/qnum.h"
#include "distvm/distvm-node.h"
#include "distvm/distvm-tls-netns.h"
#include "distvm/guest/linux/dimm-pattern.h"
#include "distvm-wire.h"

#define FILE_SIZE   (1024 * 1024)
#define DISK_SIZE   (4 * 1024 * 1024)
#define WORK        60000
#define MOVES       24
/* Rollbacks to the last committed epoch, with replicas=1 */
#define ROLLBACKS   6

static char *tmpdir;

/* A one-file HTTP server on 127.0.0.1, serving until it is stopped. */
typedef struct HttpServer {
    int fd;
    int port;
    GByteArray *body;
    GThread *thread;
    int served;                 /* atomic */
} HttpServer;

static gpointer http_serve(gpointer opaque)
{
    HttpServer *h = opaque;

    for (;;) {
        char req[4096];
        size_t got = 0;
        g_autofree char *head = NULL;
        int c = accept(h->fd, NULL, NULL);

        if (c < 0) {
            return NULL;        /* the listening socket was shut down */
        }
        /* Read the request up to its blank line; its content is ignored. */
        while (got < sizeof(req) - 1) {
            ssize_t n = read(c, req + got, sizeof(req) - 1 - got);

            if (n <= 0) {
                break;
            }
            got += n;
            req[got] = 0;
            if (strstr(req, "\r\n\r\n")) {
                break;
            }
        }
        head = g_strdup_printf("HTTP/1.0 200 OK\r\nContent-Type: "
                               "application/octet-stream\r\nContent-Length: "
                               "%u\r\nConnection: close\r\n\r\n",
                               h->body->len);
        g_assert_true(qemu_write_full(c, head, strlen(head)) ==
                      strlen(head));
        g_assert_true(qemu_write_full(c, h->body->data, h->body->len) ==
                      h->body->len);
        close(c);
        qatomic_inc(&h->served);
    }
}

/* A thread's: a TCP socket in network namespace @opaque (a path). */
static gpointer socket_in_netns(gpointer opaque)
{
    int ns = open(opaque, O_RDONLY);

    g_assert_cmpint(ns, >=, 0);
    g_assert_cmpint(setns(ns, CLONE_NEWNET), ==, 0);
    close(ns);
    return GINT_TO_POINTER(socket(AF_INET, SOCK_STREAM, 0) + 1);
}

/*
 * Serve @body on @addr:@port (@port 0: any), in network namespace @netns
 * if not NULL (the home node's, whose slirp reaches 127.0.0.1 as
 * 10.0.2.2).
 */
static HttpServer *http_start(GByteArray *body, const char *netns,
                              uint32_t addr, int port)
{
    HttpServer *h = g_new0(HttpServer, 1);
    struct sockaddr_in sa = {
        .sin_family = AF_INET,
        .sin_addr.s_addr = htonl(addr),
        .sin_port = htons(port),
    };
    socklen_t len = sizeof(sa);

    h->body = body;
    if (netns) {
        g_autofree char *path = g_strdup_printf("/run/netns/%s", netns);
        GThread *t = g_thread_new("netns", socket_in_netns, path);

        h->fd = GPOINTER_TO_INT(g_thread_join(t)) - 1;
    } else {
        h->fd = socket(AF_INET, SOCK_STREAM, 0);
    }
    g_assert_cmpint(h->fd, >=, 0);
    g_assert_cmpint(bind(h->fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    g_assert_cmpint(listen(h->fd, 4), ==, 0);
    g_assert_cmpint(getsockname(h->fd, (struct sockaddr *)&sa, &len), ==, 0);
    h->port = ntohs(sa.sin_port);
    h->thread = g_thread_new("http", http_serve, h);
    return h;
}

static void http_stop(HttpServer *h)
{
    shutdown(h->fd, SHUT_RDWR);
    g_thread_join(h->thread);
    close(h->fd);
    g_free(h);
}

/* The file the guest fetches: FILE_SIZE bytes of a fixed sequence. */
static GByteArray *test_file(void)
{
    GByteArray *b = g_byte_array_sized_new(FILE_SIZE);
    uint64_t x = 0x9e3779b97f4a7c15ull;

    g_byte_array_set_size(b, FILE_SIZE);
    for (size_t i = 0; i < FILE_SIZE; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(b->data + i, &x, 8);
    }
    return b;
}

static char *sha256_hex(const uint8_t *data, size_t len)
{
    return g_compute_checksum_for_data(G_CHECKSUM_SHA256, data, len);
}

/* Wait for the next DISTVM_VCPU_MOVED of @cpu to @to on @qts. */
static void wait_moved(QTestState *qts, int cpu, int to)
{
    QDict *ev = distvm_wait_event(qts, "DISTVM_VCPU_MOVED",
                                  DISTVM_EVENT_TIMEOUT_S);
    QDict *data = qdict_get_qdict(ev, "data");

    g_assert_cmpint(qdict_get_int(data, "cpu-index"), ==, cpu);
    g_assert_cmpint(qdict_get_int(data, "to"), ==, to);
    qobject_unref(ev);
}

typedef struct LinuxCase {
    int nodes;
    const char *accel_opts;     /* more -accel distvm options, or NULL */
    const char *placement;      /* of the 4 vCPUs */
    int io_cpu;                 /* a vCPU away from home, for the I/O */
    const char *smp;            /* -smp, 4 vCPUs */
    const char *numa;           /* -numa options, or NULL */
    const char *const *numa_lines;  /* what the guest says of its nodes */
    bool netns;                 /* each node in a network namespace, TLS */
    const char *cpu;            /* -cpu, or NULL for the machine's */
    /*
     * q35 with an IOMMU that remaps interrupts, as Linux needs to switch
     * its LAPICs to x2APIC mode, which it must say it did
     */
    bool x2apic;
    /*
     * The distmem devices: a distmem-dimm of node 2, in guest NUMA node 2
     * (which needs the case's NUMA homes and vCPU 2 on node 2),
     * hot-plugged, written by vCPU 2 and unplugged; a distmem-topology
     * that the guest reads
     */
    bool distmem;
    /*
     * The node that runs the disk and the network card (device-nodes),
     * 0 for home; the card then uses INTx, not MSI-X.  Two more cards
     * then, one on node 1 and one on home, which fetch the file again
     * at the same time, from vCPU 1 and vCPU 0.
     */
    int device_node;
    /*
     * A vCPU that -smp's maxcpus leaves out, hot-plugged (device_add on
     * home) onto the node the placement gives it once the guest waits
     * for it: the guest onlines it and hashes on it; after the workload,
     * it is unplugged.  0 for none.
     */
    int cpu_plug;
    /*
     * With replicas=1: a node other than home, chosen at random, is
     * killed (SIGKILL) during the workload; the other two take its part
     * over and the guest finishes as it should.
     */
    bool kill;
    /*
     * The same, but the node that runs io_cpu is killed once the guest
     * begins its I/O (which it does from that vCPU: the HTTP fetch, the
     * disk write and read back), and no vCPU moves or rollbacks after
     */
    bool kill_io;
    /*
     * With netns: node 2 cut off by a partition (its link taken down)
     * during the workload instead of killed; it finds the others silent
     * and exits 1
     */
    bool partition;
    /*
     * With replicas=1: home is killed during the workload; its standby,
     * node 1, which opened the same disk image (inactive until then),
     * takes its place, and the guest finishes there
     */
    bool kill_home;
    /* With netns: the same with home cut off by a partition, not killed */
    bool partition_home;
    /*
     * A multi-queue card more (MQ_NIC, eth3), whose 4 queue pairs a tap
     * of this host serves, a queue of it on each node: the card on home,
     * pairs 1 and 3 on node 1 and pair 2 on node 2 (queue-nodes), the
     * nodes of vCPUs 1, 3 and 2, which transmit on them.  The guest
     * fetches the file over it from vCPUs 0 and 2 at once.  Node 1 has a
     * tap of its own (MQ_TAP_1), as on a host of its own, which the test
     * takes down and up again (fail_over_path()).
     */
    bool mq_card;
    /*
     * With replicas=1: the multi-queue card alone (eth1), its pairs on
     * the nodes that queue-nodes names, and one tap for all; the guest
     * fetches over it from vCPUs 0 and 2 at once, and node 2, which
     * serves pair 2, is killed as the fetches begin.  Its pair goes to
     * home, and both fetches finish, exact (issue 16).  With the pairs
     * following their vCPUs (queue-follow not off), vCPU 2 then moves to
     * another node, and pair 2 follows it there.
     */
    bool kill_pair;
    /*
     * With kill_pair: home killed instead, which runs the card and
     * serves pair 0: node 1, its standby, takes its place, the card and
     * pair 0 included, and both fetches finish, exact (issue 16)
     */
    bool kill_pair_home;
    /*
     * With replicas=1: a card more (eth1) placed on node 2
     * (device-nodes), each node's copy with a tap of its own, the taps
     * on one bridge of this host, as hosts on one network; the guest
     * fetches over it from vCPUs 0 and 2 at once, and node 2 is killed
     * as the fetches begin.  The card goes to home, which runs it as node
     * 2 last saved it, and both fetches finish, exact (issue 16).
     */
    bool kill_card;
    /*
     * The same card, but node 2's tap of it goes down as the fetches
     * begin, node 2 killed by nobody: home rolls the guest back, which
     * brings the card home (DISTVM_NETWORK_PATH); the tap comes up again,
     * and home sends the card back to node 2 at the end of the next
     * checkpoint epoch, with no rollback; node 2 then serves the guest's
     * accesses to it again; both fetches finish, exact (issue 16)
     */
    bool card_path_down;
} LinuxCase;

/* The cards of a case with devices placed: eth1 on node 1, eth2 on home */
#define MORE_NICS \
    "-netdev user,id=net1,net=10.0.3.0/24 " \
    "-device virtio-net-pci,netdev=net1,romfile=,id=vnet1 " \
    "-netdev user,id=net2,net=10.0.4.0/24 " \
    "-device virtio-net-pci,netdev=net2,romfile=,id=vnet2 "

/* The multi-queue card, on 10.0.5.0/24 (eth3 of distvm.fetch) */
#define MQ_TAP          "dvmq0"
#define MQ_TAP_1        "dvmq1"
#define MQ_HOST         "10.0.5.2"
#define MQ_HOST_ADDR    0x0a000502u
#define MQ_PAIRS        4
#define MQ_NIC(tap) \
    "-netdev tap,id=netmq,ifname=" tap ",queues=4,script=no," \
    "downscript=no,vhost=off " \
    "-device virtio-net-pci,netdev=netmq,mq=on,romfile=,id=vmq "
#define MQ_QUEUE_NODES  "vmq/1@1:vmq/2@2:vmq/3@1"
/* Where each pair runs once pair 2 moved to home (move_queue_pair()) */
static const int mq_pair_node[MQ_PAIRS] = { 0, 1, 0, 1 };
#define MQ_MOVED_PAIR   2
/*
 * The vCPU move after which pair 0 is checked to have followed vCPU 0
 * (queue-follow), and pair 2, placed by hand, not to have followed vCPU 2
 */
#define MQ_FOLLOW_CHECK 1
/* The multi-queue card as eth1, of kill_pair */
#define MQ_HOST_ETH1        "10.0.3.2"
#define MQ_HOST_ETH1_ADDR   0x0a000302u

/* kill_card's card, eth1: node N's tap is CARD_TAP N, on CARD_BRIDGE */
#define CARD_BRIDGE     "dvmcbr"
#define CARD_TAP        "dvmc"
#define CARD_NODE       2
#define CARD_NIC \
    "-netdev tap,id=netc,ifname=" CARD_TAP "%d,script=no,downscript=no," \
    "vhost=off -device virtio-net-pci,netdev=netc,romfile=,id=vcard "

#define DIMM_BASE   0x100000000ull
#define DIMM_SIZE   (128 * 1024 * 1024)
#define DIMM_ARGS   "-device distmem-topology"

#define NETNS_PORT 4440
#define NETNS_HTTP_PORT 8080

/*
 * Registers that only read a clock are read on the vCPU's node: no node
 * sent one home, and some were answered away from home (the guest's init
 * keeps time with the HPET for a moment before its workload).
 */
static void check_clock_reads(DistvmNode **node, int nodes)
{
    uint64_t local = 0;

    for (int n = 1; n < nodes; n++) {
        QDict *info = distvm_assert_active(node[n]->qts, n);
        QDict *io = qdict_get_qdict(info, "io");

        g_assert_cmpuint(qdict_get_int(io, "clock-reads-sent"), ==, 0);
        local += qdict_get_int(io, "clock-reads-local");
        qobject_unref(info);
    }
    g_assert_cmpuint(local, >, 0);
}

/* Whether the multi-queue card's pairs follow their vCPUs */
static bool linux_queue_follow(const LinuxCase *lc)
{
    return !lc->accel_opts || !strstr(lc->accel_opts, "queue-follow=off");
}

/* Whether the guest is offered the remote TLB flush hypercall */
static bool linux_pv_tlb_flush(const LinuxCase *lc)
{
    return !lc->accel_opts || !strstr(lc->accel_opts, "pv-tlb-flush=off");
}

/*
 * Linux's IPIs between vCPUs on different nodes (function calls,
 * reschedules) went to the nodes that run their targets, and
 * query-distvm counts them on both sides; and so do the TLB flushes the
 * guest asked for with its hypercall (pv-tlb-flush), which the workload's
 * multi-threaded xz makes.  On a quiet machine the vCPU moves can be over
 * before xz asked for one: wait for them a while then (the workload runs
 * on for a minute or more).
 */
static void check_interrupts(const LinuxCase *lc, DistvmNode **node,
                             int nodes)
{
    uint64_t sent, received, flushes, flushed;

    for (int tries = 0;; tries++) {
        sent = received = flushes = flushed = 0;
        for (int n = 0; n < nodes; n++) {
            QDict *info = distvm_assert_active(node[n]->qts, n);

            sent += qdict_get_int(info, "interrupts-sent");
            received += qdict_get_int(info, "interrupts-received");
            flushes += qdict_get_int(info, "tlb-flushes-sent");
            flushed += qdict_get_int(info, "tlb-flushes-done");
            qobject_unref(info);
        }
        if (!linux_pv_tlb_flush(lc) || (flushes && flushed) || tries == 300) {
            break;
        }
        g_usleep(100 * 1000);
    }
    g_assert_cmpuint(sent, >, 0);
    g_assert_cmpuint(received, >, 0);
    if (linux_pv_tlb_flush(lc)) {
        g_assert_cmpuint(flushes, >, 0);
        g_assert_cmpuint(flushed, >, 0);
    } else {
        g_assert_cmpuint(flushes, ==, 0);
        g_assert_cmpuint(flushed, ==, 0);
    }
}

/*
 * Once the guest waits for it, plug the DIMM of node 2 on home: every
 * node has it, homed on node 2.
 */
static void plug_dimm(DistvmNode **node, int nodes)
{
    if (!distvm_wait_console(node[0], "distvm-linux: dimm waiting", 600)) {
        g_autofree char *console = distvm_read_console(node[0]);

        g_error("the Linux guest did not wait for its DIMM; console:\n%s",
                console);
    }
    qtest_qmp_assert_success(node[0]->qts, "{ 'execute': 'object-add', "
        "'arguments': { 'qom-type': 'memory-backend-ram', 'id': 'd0', "
        "'size': %d } }", DIMM_SIZE);
    qtest_qmp_assert_success(node[0]->qts, "{ 'execute': 'device_add', "
        "'arguments': { 'driver': 'distmem-dimm', 'id': 'dimm0', "
        "'memdev': 'd0', 'node': 2, 'cluster-node': 2, 'addr': %llu } }",
        DIMM_BASE);
    for (int n = 0; n < nodes; n++) {
        QDict *r = distvm_memory_range(node[n], "d0");

        g_assert_cmpint(qdict_get_int(r, "home"), ==, 2);
        g_assert_true(qdict_get_bool(r, "numa"));
        g_assert_cmpint(qdict_get_int(r, "size"), ==, DIMM_SIZE);
        qobject_unref(r);
    }
}

/*
 * Once the guest gave its pages up, unplug the DIMM: Linux offlines and
 * ejects it, and it leaves every node.
 */
static void unplug_dimm(DistvmNode **node, int nodes)
{
    g_autofree char *console = NULL;

    if (!distvm_wait_console(node[0], "distvm-linux: dimm released", 600)) {
        console = distvm_read_console(node[0]);
        g_error("the Linux guest did not release its DIMM; console:\n%s",
                console);
    }
    qtest_qmp_assert_success(node[0]->qts, "{ 'execute': 'device_del', "
                             "'arguments': { 'id': 'dimm0' } }");
    for (int n = 0; n < nodes; n++) {
        QDict *ev = distvm_wait_event(node[n]->qts, "DEVICE_DELETED",
                                      DISTVM_EVENT_TIMEOUT_S);

        g_assert_cmpstr(qdict_get_str(qdict_get_qdict(ev, "data"),
                                      "device"), ==, "dimm0");
        qobject_unref(ev);
        g_assert_null(distvm_memory_range_find(node[n], "d0"));
    }
    if (!distvm_wait_console(node[0], "distvm-linux: dimm removed", 120)) {
        console = distvm_read_console(node[0]);
        g_error("the Linux guest kept its DIMM; console:\n%s", console);
    }
}

/*
 * The DIMM of node 2: Linux put its memory in NUMA node 2, and vCPU 2, on
 * node 2, wrote into its pages with no remote fault; node 0 reads them
 * back exactly, from node 2.
 */
static void check_dimm(DistvmNode **node)
{
    g_autofree char *console = NULL;
    g_autofree uint8_t *page = g_malloc(4096);
    g_autofree char *online = NULL;
    const char *p;
    uint64_t pages;
    int shown = 0;

    if (!distvm_wait_console(node[0], "written\n", 600)) {
        console = distvm_read_console(node[0]);
        g_error("the Linux guest did not write into its DIMM; console:\n%s",
                console);
    }
    g_assert_cmpint(distvm_remote_faults(node[2], "d0"), ==, 0);
    console = distvm_read_console(node[0]);
    online = g_strdup_printf("distvm-linux: dimm memory%llu online node2\n",
                             DIMM_BASE / DIMM_SIZE);
    g_assert_nonnull(strstr(console, online));
    p = strstr(console, "distvm-linux: dimm pages ");
    g_assert_nonnull(p);
    pages = g_ascii_strtoull(p + strlen("distvm-linux: dimm pages "), NULL,
                             10);
    g_test_message("vCPU 2 wrote %" PRIu64 " pages of the DIMM", pages);
    g_assert_cmpuint(pages, >=, DIMM_PATTERN_PAGES_SHOWN);
    for (p = console; (p = strstr(p, "distvm-linux: dimm page 0x")); p++) {
        uint64_t addr = g_ascii_strtoull(p + strlen("distvm-linux: dimm "
                                                    "page "), NULL, 16);

        g_assert_cmphex(addr - DIMM_BASE, <, DIMM_SIZE);
        distvm_memread(node[0]->qts, addr, page, 4096);
        for (int w = 0; w < 4096; w += 8) {
            g_assert_cmphex(ldq_le_p(page + w), ==, dimm_pattern(addr + w));
        }
        shown++;
    }
    g_assert_cmpint(shown, ==, DIMM_PATTERN_PAGES_SHOWN);
    g_assert_cmpint(distvm_remote_faults(node[0], "d0"), >=, shown);
    g_assert_cmpint(distvm_remote_faults(node[2], "d0"), ==, 0);
}

/*
 * The guest read, through the distmem-topology device, generation @gen,
 * the 4 vCPUs on the nodes of @where, and a range of RAM homed on node 2
 * at the DIMM's address if @dimm
 */
static void check_topology(DistvmNode *home, int gen, const int *where,
                           bool dimm)
{
    g_autofree char *console = distvm_read_console(home);
    g_autofree char *line = g_strdup_printf(
        "distvm-linux: topology nodes 3 generation %d vcpus %d %d %d %d\n"
        "distvm-linux: topology-ranges ", gen, where[0], where[1], where[2],
        where[3]);
    g_autofree char *range = g_strdup_printf(" %#llx+%#x@2h", DIMM_BASE,
                                             DIMM_SIZE);
    g_autofree char *ranges = NULL;
    const char *p = strstr(console, line);

    if (!p) {
        g_error("missing '%s' in the console:\n%s", line, console);
    }
    p += strlen(line) - 1;
    ranges = g_strndup(p, strchrnul(p, '\n') - p);
    g_test_message("generation %d: RAM ranges%s", gen, ranges);
    g_assert_cmpint(strstr(ranges, range) != NULL, ==, dimm);
}

/* The faults, by serving node, and upgrades that @cpu took on @node */
static int64_t vcpu_remote_faults(DistvmNode *node, int cpu)
{
    QDict *info = distvm_assert_active(node->qts, node->node_id);
    QList *vcpus = qdict_get_qlist(qdict_get_qdict(info, "affinity"),
                                   "vcpus");
    int64_t faults = 0;

    for (const QListEntry *e = qlist_first(vcpus); e; e = qlist_next(e)) {
        QDict *v = qobject_to(QDict, qlist_entry_obj(e));

        if (qdict_get_int(v, "cpu-index") == cpu) {
            for (const QListEntry *f = qlist_first(qdict_get_qlist(v,
                                                                   "faults"));
                 f; f = qlist_next(f)) {
                faults += qnum_get_int(qobject_to(QNum, qlist_entry_obj(f)));
            }
            faults += qdict_get_int(v, "upgrades");
        }
    }
    qobject_unref(info);
    return faults;
}

/*
 * Once the guest waits for it, plug the case's vCPU on home, in the free
 * slot query-hotpluggable-cpus lists: every node has it, the placement's
 * node runs it, and the guest onlines it and hashes there exactly what
 * its workload 0 hashes.
 */
static void plug_cpu(const LinuxCase *lc, DistvmNode **node, int to)
{
    g_autofree char *console = NULL;
    g_autofree char *work0 = distvm_linux_work_line(0, WORK);
    g_autofree char *want = NULL;
    QDict *resp, *props = NULL;
    QList *slots;

    if (!distvm_wait_console(node[0], "distvm-linux: cpu waiting", 600)) {
        console = distvm_read_console(node[0]);
        g_error("the guest did not wait for the CPU; console:\n%s", console);
    }
    for (int n = 0; n < lc->nodes; n++) {
        g_assert_false(distvm_vcpu_exists(node[n]->qts, lc->cpu_plug));
    }
    resp = qtest_qmp(node[0]->qts,
                     "{ 'execute': 'query-hotpluggable-cpus' }");
    slots = qdict_get_qlist(resp, "return");
    for (const QListEntry *e = qlist_first(slots); e; e = qlist_next(e)) {
        QDict *slot = qobject_to(QDict, qlist_entry_obj(e));

        if (!qdict_haskey(slot, "qom-path")) {
            g_assert_null(props);
            props = qdict_clone_shallow(qdict_get_qdict(slot, "props"));
            qdict_put_str(props, "driver", qdict_get_str(slot, "type"));
        }
    }
    qobject_unref(resp);
    g_assert_nonnull(props);
    qdict_put_str(props, "id", "cpuplug");

    /* Not on another node, nor with a property its copies would lack */
    resp = qtest_qmp_assert_failure_ref(node[1]->qts,
        "{ 'execute': 'device_add', 'arguments': %p }",
        qdict_clone_shallow(props));
    g_assert_cmpstr(qdict_get_str(resp, "desc"), ==, "distvm: CPUs are "
                    "plugged on the home node (node 0), which plugs them on "
                    "every node");
    qobject_unref(resp);
    {
        QDict *bad = qdict_clone_shallow(props);

        qdict_put_bool(bad, "x-force-features", true);
        resp = qtest_qmp_assert_failure_ref(node[0]->qts,
            "{ 'execute': 'device_add', 'arguments': %p }", bad);
        g_assert_cmpstr(qdict_get_str(resp, "desc"), ==, "distvm: a CPU "
                        "plugged into a cluster takes its model's properties "
                        "and -cpu's; give it only its place and id, not: "
                        "x-force-features");
        qobject_unref(resp);
    }
    for (int n = 0; n < lc->nodes; n++) {
        g_assert_false(distvm_vcpu_exists(node[n]->qts, lc->cpu_plug));
    }

    qtest_qmp_assert_success(node[0]->qts,
        "{ 'execute': 'device_add', 'arguments': %p }", props);
    for (int n = 0; n < lc->nodes; n++) {
        g_assert_true(distvm_vcpu_exists(node[n]->qts, lc->cpu_plug));
        g_assert_cmpint(distvm_vcpu_node(node[n]->qts, lc->cpu_plug), ==, to);
    }
    want = g_strdup_printf("distvm-linux: cpu %d work %s", lc->cpu_plug,
                           work0 + strlen("distvm-linux: work 0 "));
    if (!distvm_wait_console(node[0], want, 600)) {
        console = distvm_read_console(node[0]);
        g_error("missing '%s' in the console:\n%s", want, console);
    }
    /* It ran on its node, and only there */
    g_assert_cmpint(vcpu_remote_faults(node[to], lc->cpu_plug), >, 0);
    for (int n = 0; n < lc->nodes; n++) {
        if (n != to) {
            g_assert_cmpint(vcpu_remote_faults(node[n], lc->cpu_plug), ==, 0);
        }
    }
}

/* Once the guest offlined it, unplug the vCPU: it is gone from every node */
static void unplug_cpu(const LinuxCase *lc, DistvmNode **node)
{
    g_autofree char *console = NULL;

    if (!distvm_wait_console(node[0], "distvm-linux: cpu offline", 600)) {
        console = distvm_read_console(node[0]);
        g_error("the guest did not offline the CPU; console:\n%s", console);
    }
    qtest_qmp_assert_success(node[0]->qts, "{ 'execute': 'device_del', "
                             "'arguments': { 'id': 'cpuplug' } }");
    /* The guest ejects it: home unplugs it, and so does every node */
    for (int n = 0; n < lc->nodes; n++) {
        for (int tries = 0; distvm_vcpu_exists(node[n]->qts, lc->cpu_plug);
             tries++) {
            g_assert_cmpint(tries, <, 300);
            g_usleep(100 * 1000);
        }
    }
    if (!distvm_wait_console(node[0], "distvm-linux: cpu unplugged, online "
                             "0-3\n", 60)) {
        console = distvm_read_console(node[0]);
        g_error("the guest did not see the CPU go; console:\n%s", console);
    }
}

/*
 * Each guest NUMA node's memory is homed on its vCPUs' node: -numa's, or,
 * without -numa, the NUMA nodes auto-numa made.
 */
static void check_numa_homes(DistvmNode **node, int nodes)
{
    for (int n = 0; n < nodes; n++) {
        QDict *info = distvm_assert_active(node[n]->qts, n);
        QList *mem = qdict_get_qlist(info, "memory");
        int homed = 0;

        for (const QListEntry *e = qlist_first(mem); e; e = qlist_next(e)) {
            QDict *r = qobject_to(QDict, qlist_entry_obj(e));
            const char *rb = qdict_get_str(r, "ramblock");
            /* -numa's backends m<N>, or those auto-numa made */
            const char *id = g_str_has_prefix(rb, "distvm-numa") ?
                             rb + strlen("distvm-numa") : rb + 1;

            if ((rb[0] == 'm' || id != rb + 1) && g_ascii_isdigit(id[0]) &&
                !id[1]) {
                g_assert_true(qdict_get_bool(r, "numa"));
                g_assert_cmpint(qdict_get_int(r, "home"), ==, id[0] - '0');
                homed++;
            } else {
                g_assert_false(qdict_get_bool(r, "numa"));
                g_assert_cmpint(qdict_get_int(r, "home"), ==, 0);
            }
        }
        g_assert_cmpint(homed, ==, nodes);
        qobject_unref(info);
    }
}

/*
 * Roll the running guest back to its last committed epoch, a few times,
 * every other time without the copies node 1 keeps (home's standby), as
 * if it were lost: what the guest did since is done again, its packets
 * and disk writes of it were never seen; its workload must still end as
 * it should.
 */
static void roll_back(QTestState *home)
{
    for (int i = 0; i < ROLLBACKS; i++) {
        /* every other one as if node 1, home's standby, were lost */
        distvm_roll_back(home, i % 2 ? 1 : -1);
        g_usleep(200 * 1000);
    }
}

/*
 * Checkpoint epochs were committed all along (replicas=1): home counts
 * them, and every node keeps pages of another.  The packets the guest
 * sent by then went through home's filter once their epoch committed,
 * and so did its disk writes, which it read back meanwhile.  Home rolled
 * the guest back ROLLBACKS times, and @more others.
 */
static void check_checkpoints(DistvmNode **node, int nodes, int more)
{
    for (int n = 0; n < nodes; n++) {
        QDict *info = distvm_assert_active(node[n]->qts, n);
        QDict *cp = qdict_get_qdict(info, "checkpoint");

        g_assert_nonnull(cp);
        g_assert_cmpint(qdict_get_int(cp, "replica"), ==, (n + 1) % nodes);
        g_assert_cmpint(qdict_get_int(cp, "committed-epoch"), >, 0);
        g_assert_cmpint(qdict_get_int(cp, "stored-pages"), >, 0);
        if (n == 0) {
            g_assert_cmpint(qdict_get_int(cp, "epochs"), >=, 10);
            g_assert_cmpint(qdict_get_int(cp, "released-packets"), >, 0);
            g_assert_cmpint(qdict_get_int(cp, "released-writes"), >, 0);
            g_assert_cmpint(qdict_get_int(cp, "rollbacks"), ==,
                            ROLLBACKS + more);
            g_test_message("%" PRId64 " epochs, %" PRId64 " abandoned, "
                           "pause p50 %" PRId64 " us, p99 %" PRId64 " us, %"
                           PRId64 " bytes; last rollback %" PRId64 " us",
                           qdict_get_int(cp, "epochs"),
                           qdict_get_int(cp, "aborted"),
                           qdict_get_int(cp, "pause-us-p50"),
                           qdict_get_int(cp, "pause-us-p99"),
                           qdict_get_int(cp, "bytes"),
                           qdict_get_int(cp, "last-rollback-us"));
        }
        qobject_unref(info);
    }
}

/* Home took node @victim's part over, its first takeover */
static void wait_taken_over(DistvmNode **node, int victim)
{
    int home = victim ? 0 : 1;
    QDict *ev = distvm_wait_event(node[home]->qts, "DISTVM_RECOVERED",
                                  DISTVM_EVENT_TIMEOUT_S);
    QDict *info;

    g_assert_cmpint(qdict_get_int(qdict_get_qdict(ev, "data"), "node"), ==,
                    victim);
    g_test_message("node %d taken over in %" PRId64 " ms once lost, back at "
                   "epoch %" PRId64, victim,
                   qdict_get_int(qdict_get_qdict(ev, "data"), "recovery-ms"),
                   qdict_get_int(qdict_get_qdict(ev, "data"), "epoch"));
    qobject_unref(ev);
    info = distvm_assert_active(node[home]->qts, home);
    g_assert_cmpint(qdict_get_int(qdict_get_qdict(info, "checkpoint"),
                                  "recoveries"), ==, 1);
    g_assert_cmpint(qdict_get_int(info, "home-node"), ==, home);
    qobject_unref(info);
}

/*
 * Kill node @victim (a node other than home, at random, if -1), within
 * @within_ms, while the guest runs: the others take its part over from
 * the last committed epoch (home, or node 1 in home's place, says so with
 * DISTVM_RECOVERED), and run all the vCPUs.  Returns the node.
 */
static int kill_node(DistvmNode **node, int nodes, int victim,
                     int within_ms, bool pair_moves)
{
    pid_t pid;
    int status;

    if (victim < 0) {
        victim = g_test_rand_int_range(1, nodes);
    }
    pid = qtest_pid(node[victim]->qts);
    g_usleep(g_test_rand_int_range(0, within_ms) * 1000);
    g_test_message("node %d killed", victim);
    g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFSIGNALED(status));
    /* Its QTestState is left alone: the process is already reaped */

    if (pair_moves) {
        /*
         * The pair it served goes to the card's node, home, as it rolls
         * back; home's, pair 0, to node 1, in its place with the card
         */
        int home = victim ? 0 : 1;
        QDict *ev = distvm_wait_event(node[home]->qts,
                                      "DISTVM_QUEUE_PAIR_MOVED",
                                      DISTVM_EVENT_TIMEOUT_S);
        QDict *data = qdict_get_qdict(ev, "data");

        g_assert_cmpstr(qdict_get_str(data, "device"), ==, "vmq");
        g_assert_cmpint(qdict_get_int(data, "pair"), ==,
                        victim ? MQ_MOVED_PAIR : 0);
        g_assert_cmpint(qdict_get_int(data, "node"), ==, home);
        qobject_unref(ev);
    }
    wait_taken_over(node, victim);
    for (int n = 0; n < nodes; n++) {
        for (int cpu = 0; n != victim && cpu < 4; cpu++) {
            g_assert_cmpint(distvm_vcpu_node(node[n]->qts, cpu), !=, victim);
        }
    }
    return victim;
}

/*
 * Node @victim of @node, each in a network namespace of @prefix, is cut
 * off from the others (its link goes down) within @within_ms: the others
 * take its part over, it exits 1
 */
static void cut_node(DistvmNode **node, const char *prefix, int victim,
                     int within_ms)
{
    QDict *ev;

    g_usleep(g_test_rand_int_range(0, within_ms) * 1000);
    g_test_message("node %d cut off", victim);
    distvm_sh("ip -n %ssw link set %sp%d down", prefix, prefix, victim);
    qtest_set_expected_status(node[victim]->qts, 1);
    ev = distvm_wait_event(node[victim]->qts, "DISTVM_NODE_LOST",
                           DISTVM_EVENT_TIMEOUT_S);
    g_assert_cmpint(qdict_get_int(qdict_get_qdict(ev, "data"), "node"), !=,
                    victim);
    qobject_unref(ev);
    qtest_wait_qemu(node[victim]->qts);
    wait_taken_over(node, victim);
}

/*
 * Node 2's network path "goes down" before the guest uses the
 * multi-queue card (the guest brings it up after its boot): its pair
 * moves to the card's node, home, asked of home; and the move's bad
 * requests are refused.
 */
static void move_queue_pair(DistvmNode **node)
{
    QDict *ev, *data;

    distvm_qmp_refused(node[1]->qts, "distvm: distvm-move-queue-pair is "
                       "asked of the home node (node 0) of a cluster",
                       "{ 'execute': 'distvm-move-queue-pair', 'arguments': "
                       "{ 'device': 'vmq', 'pair': 2, 'node': 0 } }");
    distvm_qmp_refused(node[0]->qts, "distvm: 'vmq' has no queue pair 4 (it "
                       "has pairs 0 to 3)",
                       "{ 'execute': 'distvm-move-queue-pair', 'arguments': "
                       "{ 'device': 'vmq', 'pair': 4, 'node': 0 } }");
    distvm_qmp_refused(node[0]->qts, "distvm: 'vnet1' is no card whose "
                       "queue pairs several nodes serve (queue-nodes)",
                       "{ 'execute': 'distvm-move-queue-pair', 'arguments': "
                       "{ 'device': 'vnet1', 'pair': 0, 'node': 0 } }");
    distvm_qmp_refused(node[0]->qts, "distvm: node 5 cannot serve pairs of "
                       "'vmq': they can move to its node (0) or to a node "
                       "that serves another of its pairs",
                       "{ 'execute': 'distvm-move-queue-pair', 'arguments': "
                       "{ 'device': 'vmq', 'pair': 2, 'node': 5 } }");
    /* Once the guest's driver turned the card's MSI-X on */
    for (int i = 0;; i++) {
        QDict *resp = qtest_qmp(node[0]->qts,
            "{ 'execute': 'distvm-move-queue-pair', 'arguments': "
            "{ 'device': 'vmq', 'pair': %d, 'node': 0 } }", MQ_MOVED_PAIR);
        bool done = !qdict_haskey(resp, "error");

        if (!done) {
            g_assert_cmpstr(qdict_get_str(qdict_get_qdict(resp, "error"),
                                          "desc"), ==,
                            "distvm: the guest has MSI-X off on 'vmq': its "
                            "node serves every pair");
            g_assert_cmpint(i, <, 6000);
        }
        qobject_unref(resp);
        if (done) {
            break;
        }
        g_usleep(100 * 1000);
    }
    ev = distvm_wait_event(node[0]->qts, "DISTVM_QUEUE_PAIR_MOVED",
                           DISTVM_EVENT_TIMEOUT_S);
    data = qdict_get_qdict(ev, "data");
    g_assert_cmpstr(qdict_get_str(data, "device"), ==, "vmq");
    g_assert_cmpint(qdict_get_int(data, "pair"), ==, MQ_MOVED_PAIR);
    g_assert_cmpint(qdict_get_int(data, "node"), ==, 0);
    qobject_unref(ev);

    /*
     * Told to take pair 1, which it serves, for a move it never heard of,
     * by home or by node 2: node 1 refuses, and serves the pair on
     * (check_pair_nodes())
     */
    g_assert_cmpint(distvm_pair_node(node[1]->qts, "vmq", 1), ==, 1);
    for (int from = 0; from <= 2; from += 2) {
        g_autoptr(GByteArray) m = g_byte_array_new();
        int64_t errors = distvm_protocol_errors(node[1]->qts);

        distvm_wire_net_pair(m, from, "/machine/peripheral/vmq",
                             DISTVM_NET_PAIR_TAKE, 1, 1, 2, 99);
        distvm_forge(node[from], 1, m);
        distvm_wait_protocol_errors(node[1]->qts, errors + 1);
    }
}

/*
 * Every node says that the multi-queue card's pairs are served on @where,
 * but those at -1 (the others may hear of a move a moment after home
 * emitted its event)
 */
static void check_pair_nodes(DistvmNode **node, int nodes,
                             const int *where)
{
    for (int n = 0; n < nodes; n++) {
        for (int tries = 0;; tries++) {
            QDict *d = distvm_placed_device(node[n]->qts, "vmq");
            int pair = 0, same = 0;

            for (const QListEntry *e =
                 qlist_first(qdict_get_qlist(d, "queues"));
                 e; e = qlist_next(e)) {
                QDict *q = qobject_to(QDict, qlist_entry_obj(e));

                g_assert_cmpint(pair, <, MQ_PAIRS);
                same += where[pair] < 0 ||
                        qdict_get_int(q, "node") == where[pair];
                pair++;
            }
            qobject_unref(d);
            g_assert_cmpint(pair, ==, MQ_PAIRS);
            if (same == MQ_PAIRS) {
                break;
            }
            g_assert_cmpint(tries, <, 100);
            g_usleep(100 * 1000);
        }
    }
}

/*
 * The multi-queue card: each node handled the notifications of the pairs
 * it serves and of no other (node 2, which served pair 2 before it moved,
 * none of it since the guest brought the card up); vCPUs 0 and 2, which
 * fetched over it, transmitted on their own pairs (0 and 2) and gave
 * their receive buffers back there.
 */
static void check_queue_pairs(DistvmNode **node, int nodes)
{
    int64_t rx[3][MQ_PAIRS], tx[3][MQ_PAIRS];

    check_pair_nodes(node, nodes, mq_pair_node);
    for (int n = 0; n < nodes; n++) {
        QDict *d = distvm_placed_device(node[n]->qts, "vmq");
        QList *queues = qdict_get_qlist(d, "queues");
        int pair = 0;

        g_assert_cmpint(qdict_get_int(d, "node"), ==, 0);
        g_assert_nonnull(queues);
        for (const QListEntry *e = qlist_first(queues); e;
             e = qlist_next(e)) {
            QDict *q = qobject_to(QDict, qlist_entry_obj(e));

            g_assert_cmpint(pair, <, MQ_PAIRS);
            g_assert_cmpint(qdict_get_int(q, "pair"), ==, pair);
            rx[n][pair] = qdict_get_int(q, "rx-notified");
            tx[n][pair] = qdict_get_int(q, "tx-notified");
            g_test_message("node %d: pair %d rx-notified %" PRId64
                           " tx-notified %" PRId64, n, pair, rx[n][pair],
                           tx[n][pair]);
            pair++;
        }
        g_assert_cmpint(pair, ==, MQ_PAIRS);
        qobject_unref(d);
    }
    for (int n = 0; n < nodes; n++) {
        for (int pair = 0; pair < MQ_PAIRS; pair++) {
            if (mq_pair_node[pair] != n) {
                g_assert_cmpint(rx[n][pair] + tx[n][pair], ==, 0);
            } else if (pair == 0 || pair == 2) {
                g_assert_cmpint(rx[n][pair], >, 0);
                g_assert_cmpint(tx[n][pair], >, 0);
            }
        }
    }
}

/*
 * What @n says of @pair of the multi-queue card in query-distvm: its
 * member @key, or -1 if it has none
 */
static int64_t pair_member(DistvmNode *n, int pair, const char *key)
{
    QDict *d = distvm_placed_device(n->qts, "vmq");
    int64_t value = -1;

    for (const QListEntry *e = qlist_first(qdict_get_qlist(d, "queues"));
         e; e = qlist_next(e)) {
        QDict *q = qobject_to(QDict, qlist_entry_obj(e));

        if (qdict_get_int(q, "pair") == pair) {
            value = qdict_get_try_int(q, key, -1);
        }
    }
    qobject_unref(d);
    return value;
}

/*
 * Node 2 taken over (kill_pair, the pairs following): the guest points pair 2's
 * receive interrupt at vCPU 2, so the pair is served on vCPU 2's node,
 * and follows vCPU 2 to the other node that survived.
 */
static void follow_after_takeover(DistvmNode **node)
{
    int from = distvm_vcpu_node(node[0]->qts, MQ_MOVED_PAIR);
    int to = from == 0 ? 1 : 0;         /* the other node left */
    int where[MQ_PAIRS] = { 0, -1, from, -1 };

    for (int n = 0; n < 2; n++) {
        g_assert_cmpint(pair_member(node[n], MQ_MOVED_PAIR, "rx-vcpu"), ==,
                        MQ_MOVED_PAIR);
    }
    check_pair_nodes(node, 2, where);
    g_test_message("pair %d on node %d with its vCPU, which moves to node %d",
                   MQ_MOVED_PAIR, from, to);
    qtest_qmp_assert_success(node[0]->qts,
        "{ 'execute': 'distvm-move-vcpu', 'arguments': "
        "{ 'cpu-index': %d, 'node': %d } }", MQ_MOVED_PAIR, to);
    wait_moved(node[0]->qts, MQ_MOVED_PAIR, to);
    where[MQ_MOVED_PAIR] = to;
    check_pair_nodes(node, 2, where);
}

/* The notifications of @pair of the multi-queue card that @n handled */
static int64_t pair_notified(DistvmNode *n, int pair)
{
    int64_t rx = pair_member(n, pair, "rx-notified");
    int64_t tx = pair_member(n, pair, "tx-notified");

    g_assert_cmpint(rx, >=, 0);
    g_assert_cmpint(tx, >=, 0);
    return rx + tx;
}

/* The accesses to placed device @id that node @n did */
static int64_t device_accesses(DistvmNode *n, const char *id)
{
    QDict *d = distvm_placed_device(n->qts, id);
    int64_t done = qdict_get_int(d, "local") + qdict_get_int(d, "served");

    qobject_unref(d);
    return done;
}

/*
 * kill_card: node CARD_NODE, which ran the card, was taken over (@lost);
 * or card_path_down, its tap went down: every node left says node @where
 * runs it now, home (0) or, once the tap is up again, CARD_NODE
 */
static void check_card_node(DistvmNode **node, int nodes, bool lost,
                            int where)
{
    for (int n = 0; n < nodes; n++) {
        if (n != CARD_NODE || !lost) {
            distvm_wait_placed_on(node[n]->qts, "vcard", where);
        }
    }
}

/*
 * Home says the path of @device's node @n is @up; when it did, in
 * g_get_monotonic_time()
 */
static int64_t wait_path_event(DistvmNode **node, const char *device, int n,
                               bool up)
{
    QDict *ev = distvm_wait_event(node[0]->qts, "DISTVM_NETWORK_PATH",
                                  DISTVM_EVENT_TIMEOUT_S);
    int64_t said_us = g_get_monotonic_time();
    QDict *data = qdict_get_qdict(ev, "data");

    g_assert_cmpstr(qdict_get_str(data, "device"), ==, device);
    g_assert_cmpint(qdict_get_int(data, "node"), ==, n);
    g_assert_cmpint(qdict_get_bool(data, "up"), ==, up);
    qobject_unref(ev);
    return said_us;
}

/*
 * card_path_down: node 2's tap of the card goes @up (or down); home says
 * so, and every node says node @where runs it: home rolled the guest back
 * to bring it home, and sent it back with no rollback
 */
static void set_card_path(DistvmNode **node, int nodes, bool up, int where)
{
    uint64_t rollbacks = distvm_rollbacks(node[0]->qts);

    distvm_sh("ip link set " CARD_TAP "%d %s", CARD_NODE, up ? "up" : "down");
    wait_path_event(node, "vcard", CARD_NODE, up);
    check_card_node(node, nodes, false, where);
    /* (The rollback counts once it ended, after the card came home) */
    for (int i = 0; !up && distvm_rollbacks(node[0]->qts) == rollbacks; i++) {
        g_assert_cmpint(i, <, 6000);
        g_usleep(10 * 1000);
    }
    if (up) {
        g_assert_cmpuint(distvm_rollbacks(node[0]->qts), ==, rollbacks);
    }
}

/* The fetches from vCPUs 0 and 2 are under way over the card */
static void wait_card_fetches(DistvmNode **node)
{
    g_assert_true(distvm_wait_console(node[0], "distvm-linux: fetches "
                                      "start", 600));
    for (int i = 0; device_accesses(node[CARD_NODE], "vcard") < 200; i++) {
        g_assert_cmpint(i, <, 6000);
        g_usleep(20 * 1000);
    }
}

/*
 * Home says node 1's path is @up (at *@said_us, g_get_monotonic_time()),
 * and moved pairs 1 and 3 to @to
 */
static void wait_path(DistvmNode **node, bool up, int to, int64_t *said_us)
{
    QDict *ev, *data;

    *said_us = wait_path_event(node, "vmq", 1, up);
    for (int pair = 1; pair < MQ_PAIRS; pair += 2) {
        ev = distvm_wait_event(node[0]->qts, "DISTVM_QUEUE_PAIR_MOVED",
                               DISTVM_EVENT_TIMEOUT_S);
        data = qdict_get_qdict(ev, "data");
        g_assert_cmpstr(qdict_get_str(data, "device"), ==, "vmq");
        g_assert_cmpint(qdict_get_int(data, "pair"), ==, pair);
        g_assert_cmpint(qdict_get_int(data, "node"), ==, to);
        qobject_unref(ev);
    }
}

/*
 * Node 1's network path goes down (its host's tap of the multi-queue
 * card): home moves its pairs, 1 and 3, to the card's node, and refuses
 * to move one back while the path is down; once the path is up again,
 * and stayed up for path-up-delay-ms (1 s), they go back to node 1 by
 * themselves.
 */
static void fail_over_path(DistvmNode **node, int nodes)
{
    static const int failed_over[MQ_PAIRS] = { 0, 0, 0, 0 };
    int64_t up_us, said_us;

    distvm_sh("ip link set " MQ_TAP_1 " down");
    wait_path(node, false, 0, &said_us);
    check_pair_nodes(node, nodes, failed_over);
    distvm_qmp_refused(node[0]->qts, "distvm: the network path of node 1 "
                       "is down: its tap for 'vmq' is down or has no "
                       "carrier",
                       "{ 'execute': 'distvm-move-queue-pair', 'arguments': "
                       "{ 'device': 'vmq', 'pair': 1, 'node': 1 } }");
    distvm_sh("ip link set " MQ_TAP_1 " up");
    up_us = g_get_monotonic_time();
    wait_path(node, true, 1, &said_us);
    /* (less a moment: the node may hear of it before the clock is read) */
    g_assert_cmpint(said_us - up_us, >=, 900 * 1000);
    check_pair_nodes(node, nodes, mq_pair_node);
}

/*
 * The guest took the receive interrupts of the multi-queue card's pairs 0
 * and 2 on vCPUs 0 and 2, which fetched over them: each pair's node, home
 * and node 2, received the pair's packets and interrupted a vCPU of its
 * own.
 */
static void check_mq_irqs(const char *console)
{
    for (int pair = 0; pair < MQ_PAIRS; pair++) {
        g_autofree char *key = g_strdup_printf(
            "distvm-linux: eth3 irq input.%d cpus", pair);
        const char *line = strstr(console, key);
        unsigned long cpus[4];
        int len;

        g_assert_nonnull(line);
        len = strchrnul(line, '\n') - line;
        g_assert_cmpint(sscanf(line + strlen(key), "%lu %lu %lu %lu",
                               &cpus[0], &cpus[1], &cpus[2], &cpus[3]), ==,
                        4);
        g_test_message("%.*s", len, line);
        if (pair == 0 || pair == 2) {
            g_assert_cmpuint(cpus[pair], >, 0);
        }
    }
}

static void test_linux(const void *opaque)
{
    const LinuxCase *lc = opaque;
    g_autofree char *kernel = distvm_guest_path("linux/vmlinuz");
    g_autofree char *initrd = distvm_guest_path("linux/initramfs.cpio.gz");
    g_autofree char *dir = g_strdup_printf("%s/linux-%d%s%s", tmpdir,
                                           lc->nodes, lc->cpu ? "-" : "",
                                           lc->cpu ?: "");
    g_autofree char *disk = g_strdup_printf("%s/disk.img", dir);
    g_autoptr(GByteArray) file = test_file();
    g_autofree char *file_sha = sha256_hex(file->data, file->len);
    g_autofree char *console = NULL;
    g_autofree char *image = NULL;
    g_autofree char *want = NULL;
    g_autofree char *prefix = g_strdup_printf("dvl%d-", (int)getpid());
    g_autofree char *home_ns = g_strdup_printf("%s0", prefix);
    g_autofree char *binary = g_strdup(g_getenv("QTEST_QEMU_BINARY"));
    g_autofree char *objects = NULL;
    int subnet = getpid() % 200 + 20;
    DistvmNode *node[3];
    int where[4];
    gsize image_len;
    g_autofree char *cpu_plug = lc->cpu_plug ?
        g_strdup_printf(" distvm.cpu_plug=%d", lc->cpu_plug) : NULL;
    HttpServer *http;
    HttpServer *http_mq = NULL;
    int victim = -1;
    int home = 0;               /* or node 1, in its place */
    QDict *ev;

    g_assert(g_mkdir_with_parents(dir, 0700) == 0);
    g_assert_true(g_file_set_contents(disk, "", 0, NULL));
    g_assert_cmpint(truncate(disk, DISK_SIZE), ==, 0);
    if (lc->netns) {
        g_autofree char *ips = g_strdup_printf(
            "ip_address = 10.199.%d.1\nip_address = 10.199.%d.2\n"
            "ip_address = 10.199.%d.3\n", subnet, subnet, subnet);
        g_autofree char *tls = distvm_make_tls_dir(dir, "tls", "distvm-node",
                                                   ips);

        objects = distvm_tls_objects(tls);
        distvm_netns_setup(prefix, subnet, lc->nodes);
    }
    /* A thread would make the g_setenv() below unsafe: later, in netns. */
    http = lc->netns ? NULL : http_start(file, NULL, INADDR_LOOPBACK, 0);
    if (lc->mq_card || lc->kill_pair) {
        /* The tap every node opens, and a server behind it on this host */
        distvm_sh("ip link del " MQ_TAP " 2>/dev/null; ip tuntap add dev "
                  MQ_TAP " mode tap multi_queue && ip addr add %s/24 dev "
                  MQ_TAP " && ip link set " MQ_TAP " up",
                  lc->kill_pair ? MQ_HOST_ETH1 : MQ_HOST);
        http_mq = http_start(file, NULL, lc->kill_pair ? MQ_HOST_ETH1_ADDR :
                             MQ_HOST_ADDR, http->port);
    }
    if (lc->mq_card) {
        distvm_sh("ip link del " MQ_TAP_1 " 2>/dev/null; ip tuntap add dev "
                  MQ_TAP_1 " mode tap multi_queue && ip link set " MQ_TAP_1
                  " up");
    }
    if (lc->kill_card || lc->card_path_down) {
        /* Each node's tap, on a bridge with a server behind it */
        distvm_sh("ip link del " CARD_BRIDGE " 2>/dev/null; ip link add "
                  CARD_BRIDGE " type bridge && ip addr add " MQ_HOST_ETH1
                  "/24 dev " CARD_BRIDGE " && ip link set " CARD_BRIDGE
                  " up");
        for (int n = 0; n < lc->nodes; n++) {
            distvm_sh("ip link del " CARD_TAP "%d 2>/dev/null; ip tuntap add "
                      "dev " CARD_TAP "%d mode tap && ip link set " CARD_TAP
                      "%d master " CARD_BRIDGE " up", n, n, n);
        }
        http_mq = http_start(file, NULL, MQ_HOST_ETH1_ADDR, http->port);
    }

    for (int n = 0; n < lc->nodes; n++) {
        g_autofree char *opts = NULL;
        g_autofree char *placed = NULL;

        if (lc->netns) {
            /* TCP between namespaces, and TLS, as between hosts. */
            g_autofree char *in_ns = g_strdup_printf("ip netns exec %s%d %s",
                                                     prefix, n, binary);
            g_autofree char *home_opt = n ? g_strdup_printf(
                "home=tcp:10.199.%d.1:%d,", subnet, NETNS_PORT) :
                g_strdup("");

            opts = g_strdup_printf("node-id=%d,nodes=%d,listen=tcp:10.199.%d."
                                   "%d:%d,%stls-creds=tls0,tls-authz=authz0",
                                   n, lc->nodes, subnet, n + 1,
                                   NETNS_PORT + n, home_opt);
            g_setenv("QTEST_QEMU_BINARY", in_ns, true);
        } else {
            opts = distvm_cluster_accel_opts(dir, lc->nodes, n);
        }
        g_autofree char *devices = lc->device_node ?
            g_strdup_printf(",device-nodes=vblk@%d:vnet@%d:vnet1@1",
                            lc->device_node, lc->device_node) :
            lc->kill_card || lc->card_path_down ?
            g_strdup_printf(",device-nodes=vcard@%d", CARD_NODE) :
            g_strdup("");
        g_autofree char *card = lc->kill_card || lc->card_path_down ?
            g_strdup_printf(CARD_NIC, n) : NULL;

        /* Without -numa, the guest gets the NUMA nodes of auto-numa. */
        placed = g_strdup_printf("%s,placement=%s%s%s,auto-numa=%s%s%s",
                                 opts, lc->placement, devices,
                                 lc->mq_card || lc->kill_pair ?
                                 ",queue-nodes=" MQ_QUEUE_NODES : "",
                                 lc->numa_lines && !lc->numa ? "on" : "off",
                                 lc->accel_opts ? "," : "",
                                 lc->accel_opts ?: "");
        /*
         * Every node describes the same machine; only the devices' node
         * runs them, so only it opens the disk image.
         */
        g_autofree char *drive = n == lc->device_node ?
            g_strdup_printf("file=%s,format=raw", disk) :
            (lc->kill_home || lc->partition_home || lc->kill_pair_home) &&
            n == 1 ?
            g_strdup_printf("file=%s,format=raw,file.locking=off", disk) :
            g_strdup_printf("driver=null-co,size=%d", DISK_SIZE);
        g_autofree char *args = g_strdup_printf(
            "-nodefaults -machine %s -m 512M%s %s%s -smp %s -kernel %s "
            "-initrd %s "
            "-drive if=none,id=disk0,%s "
            "-device virtio-blk-pci,drive=disk0,id=vblk "
            "-netdev user,id=net0 -device virtio-net-pci,netdev=net0,"
            "romfile=,id=vnet%s %s%s"
            "-append 'console=ttyS0 panic=-1 distvm.work=%d "
            "distvm.io_cpu=%d distvm.http=10.0.2.2:%d/file "
            "distvm.disk=vda%s%s%s' %s %s %s",
            lc->x2apic ? "q35 -device intel-iommu,intremap=on,eim=on" : "pc",
            lc->distmem ? ",slots=1,maxmem=1G" : "",
            lc->cpu ? "-cpu " : "", lc->cpu ?: "", lc->smp, kernel, initrd,
            drive, lc->device_node ? ",vectors=0" : "",
            lc->device_node ? MORE_NICS : "",
            lc->kill_pair ? MQ_NIC(MQ_TAP) : card ? card :
            !lc->mq_card ? "" : n == 1 ? MQ_NIC(MQ_TAP_1) : MQ_NIC(MQ_TAP),
            WORK,
            lc->io_cpu,
            http ? http->port : NETNS_HTTP_PORT,
            lc->distmem ? " distvm.dimm=0x100000000,0x8000000,2 "
                          "distvm.topology=1" : "",
            lc->kill_pair || lc->kill_card || lc->card_path_down ?
            " distvm.fetch=1@0,1@2" :
            !lc->device_node ? "" : lc->mq_card ?
            " distvm.fetch=1@1,2@0,3@0,3@2" : " distvm.fetch=1@1,2@0",
            cpu_plug ?: "",
            lc->numa ?: "", lc->distmem ? DIMM_ARGS : "", objects ?: "");

        node[n] = distvm_node_start(dir, n, placed, args);
    }
    g_setenv("QTEST_QEMU_BINARY", binary, true);
    if (lc->netns) {
        http = http_start(file, home_ns, INADDR_LOOPBACK, NETNS_HTTP_PORT);
    }
    for (int n = 0; n < lc->nodes; n++) {
        QDict *info;

        distvm_wait_state(node[n]->qts, "running", 60);
        info = distvm_assert_active(node[n]->qts, n);
        g_assert_cmpint(qdict_get_bool(info, "tls"), ==, lc->netns);
        qobject_unref(info);
    }
    for (int cpu = 0; cpu < 4; cpu++) {
        where[cpu] = lc->placement[cpu * 2] - '0';
        for (int n = 0; n < lc->nodes; n++) {
            g_assert_cmpint(distvm_vcpu_node(node[n]->qts, cpu), ==,
                            where[cpu]);
        }
    }
    g_assert_cmpint(where[lc->io_cpu], !=, 0);
    if (lc->mq_card) {
        move_queue_pair(node);
    }
    if (lc->numa_lines) {
        check_numa_homes(node, lc->nodes);
    }
    if (lc->distmem) {
        plug_dimm(node, lc->nodes);
        check_dimm(node);
    }
    if (lc->cpu_plug) {
        plug_cpu(lc, node, lc->placement[lc->cpu_plug * 2] - '0');
    }

    if (lc->kill_io) {
        g_assert_true(distvm_wait_console(node[0], "distvm-linux: io start",
                                          600));
        victim = kill_node(node, lc->nodes, where[lc->io_cpu], 300, false);
    }
    if (lc->kill_pair_home) {
        /* pair 0, which home served, goes to node 1 with the card */
        static const int taken_home[MQ_PAIRS] = { 1, 1, 2, 1 };

        g_assert_true(distvm_wait_console(node[0], "distvm-linux: fetches "
                                          "start", 600));
        /* Once the fetch from vCPU 0 is under way over home's pair */
        for (int i = 0; pair_notified(node[0], 0) < 50; i++) {
            g_assert_cmpint(i, <, 6000);
            g_usleep(20 * 1000);
        }
        victim = kill_node(node, lc->nodes, 0, 1, true);
        home = 1;
        /* nodes 1 and 2 say so, and that node 1 runs the card */
        check_pair_nodes(node + 1, lc->nodes - 1, taken_home);
        for (int n = 1; n < lc->nodes; n++) {
            QDict *d = distvm_placed_device(node[n]->qts, "vmq");

            g_assert_cmpint(qdict_get_int(d, "node"), ==, home);
            qobject_unref(d);
        }
    } else if (lc->kill_pair) {
        static const int taken_over[MQ_PAIRS] = { 0, 1, 0, 1 };

        g_assert_true(distvm_wait_console(node[0], "distvm-linux: fetches "
                                          "start", 600));
        /* Once the fetch from vCPU 2 is under way over node 2's pair */
        for (int i = 0; pair_notified(node[2], MQ_MOVED_PAIR) < 50; i++) {
            g_assert_cmpint(i, <, 6000);
            g_usleep(20 * 1000);
        }
        victim = kill_node(node, lc->nodes, 2, 1, true);
        if (linux_queue_follow(lc)) {
            follow_after_takeover(node);
        } else {
            check_pair_nodes(node, 2, taken_over);
        }
    }
    if (lc->kill_card) {
        wait_card_fetches(node);
        victim = kill_node(node, lc->nodes, CARD_NODE, 1, false);
        check_card_node(node, lc->nodes, true, 0);
    }
    if (lc->card_path_down) {
        int64_t served;

        wait_card_fetches(node);
        set_card_path(node, lc->nodes, false, 0);
        /* Up again: the card goes back to node 2, which serves it again */
        set_card_path(node, lc->nodes, true, CARD_NODE);
        served = device_accesses(node[CARD_NODE], "vcard");
        for (int i = 0; device_accesses(node[CARD_NODE], "vcard") <
                        served + 50; i++) {
            g_assert_cmpint(i, <, 6000);
            g_usleep(20 * 1000);
        }
    }
    /* While the workload runs: move vCPUs around, asked of any node. */
    if (!distvm_wait_console(node[home], "distvm-linux: workload start",
                             600)) {
        console = distvm_read_console(node[home]);
        g_error("the Linux guest did not reach its workload; console:\n%s",
                console);
    }
    if (lc->kill_pair_home) {
        /* The fetch from vCPU 0 went on over pair 0, on node 1 */
        g_assert_cmpint(pair_notified(node[home], 0), >, 0);
    }
    if (lc->device_node) {
        /* nothing sent home, nor done there */
        distvm_check_placed_device(node, lc->nodes, "vblk", lc->device_node,
                                   false);
        distvm_check_placed_device(node, lc->nodes, "vnet", lc->device_node,
                                   false);
        distvm_check_placed_device(node, lc->nodes, "vnet1", 1, false);
    }
    if (lc->mq_card) {
        check_queue_pairs(node, lc->nodes);
        fail_over_path(node, lc->nodes);
    }
    if (lc->distmem) {
        /* At boot, then after the DIMM was plugged */
        check_topology(node[0], 0, where, false);
        check_topology(node[0], 1, where, true);
    }
    for (int k = 0; victim < 0 && k < MOVES; k++) {
        int cpu = k % 4;
        int to = (where[cpu] + 1 + k / 4 % (lc->nodes - 1)) % lc->nodes;

        if (to == where[cpu]) {
            to = (to + 1) % lc->nodes;
        }
        qtest_qmp_assert_success(node[k % lc->nodes]->qts,
            "{ 'execute': 'distvm-move-vcpu', 'arguments': "
            "{ 'cpu-index': %d, 'node': %d } }", cpu, to);
        wait_moved(node[0]->qts, cpu, to);
        where[cpu] = to;
        if (lc->mq_card && k == MQ_FOLLOW_CHECK) {
            /*
             * vCPU 0 left home: pair 0, whose vector the guest pointed at
             * it as it fetched over the pair, followed it; pair 2, moved
             * by hand, did not follow vCPU 2.  (The vectors of pairs 1
             * and 3 may still point where Linux first put them.)
             */
            const int followed[MQ_PAIRS] = {
                where[0], -1, mq_pair_node[MQ_MOVED_PAIR], -1
            };

            g_assert_cmpint(where[0], !=, mq_pair_node[0]);
            g_assert_cmpint(where[2], !=, mq_pair_node[MQ_MOVED_PAIR]);
            /* every node reads the vectors of pairs 0 and 2 so */
            for (int n = 0; n < lc->nodes; n++) {
                g_assert_cmpint(pair_member(node[n], 0, "rx-vcpu"), ==, 0);
                g_assert_cmpint(pair_member(node[n], MQ_MOVED_PAIR,
                                            "rx-vcpu"), ==, MQ_MOVED_PAIR);
            }
            check_pair_nodes(node, lc->nodes, followed);
        }
    }
    if (lc->mq_card) {
        /* vCPU 0 is back on home, and so is pair 0. */
        static const int back[MQ_PAIRS] = { 0, -1, 0, -1 };

        g_assert_cmpint(where[0], ==, 0);
        check_pair_nodes(node, lc->nodes, back);
    }
    if (lc->accel_opts && strstr(lc->accel_opts, "replicas=1") &&
        victim < 0) {
        roll_back(node[0]->qts);
    }
    /* The guest's time goes on across a stop and cont of the cluster. */
    qtest_qmp_assert_success(node[home]->qts, "{ 'execute': 'stop' }");
    g_usleep(300 * 1000);
    qtest_qmp_assert_success(node[home]->qts, "{ 'execute': 'cont' }");
    if (victim < 0) {
        check_clock_reads(node, lc->nodes);
        check_interrupts(lc, node, lc->nodes);
    }
    if (lc->accel_opts && strstr(lc->accel_opts, "replicas=1") &&
        victim < 0) {
        /* card_path_down: the one that brought the card home */
        check_checkpoints(node, lc->nodes, lc->card_path_down ? 1 : 0);
    }
    console = distvm_read_console(node[home]);
    g_assert_null(strstr(console, "distvm-linux: workload done"));
    g_clear_pointer(&console, g_free);
    if (lc->kill) {
        victim = kill_node(node, lc->nodes, -1, 1000, false);
    }
    if (lc->partition) {
        victim = 2;
        cut_node(node, prefix, victim, 1000);
    }
    if (lc->kill_home) {
        victim = kill_node(node, lc->nodes, 0, 1000, false);
        home = 1;
    }
    if (lc->partition_home) {
        victim = 0;
        cut_node(node, prefix, victim, 1000);
        home = 1;
    }
    if (lc->distmem) {
        unplug_dimm(node, lc->nodes);
    }
    if (lc->cpu_plug) {
        unplug_cpu(lc, node);
    }

    if (!distvm_wait_console(node[home], "distvm-linux: workload done",
                             600)) {
        console = distvm_read_console(node[home]);
        g_error("the Linux guest did not finish its workload; console:\n%s",
                console);
    }
    ev = distvm_wait_event(node[home]->qts, "SHUTDOWN",
                           DISTVM_EVENT_TIMEOUT_S);
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(ev, "data"), "reason"),
                    ==, "guest-shutdown");
    qobject_unref(ev);
    /* Every node exits by itself, with status 0. */
    for (int n = 0; n < lc->nodes; n++) {
        if (n != victim) {
            qtest_wait_qemu(node[n]->qts);
        }
    }
    g_assert_cmpint(qatomic_read(&http->served), ==,
                    lc->device_node ? 3 : 1);
    http_stop(http);
    if (http_mq) {
        /* from vCPUs 0 and 2 */
        g_assert_cmpint(qatomic_read(&http_mq->served), ==, 2);
        http_stop(http_mq);
        if (lc->kill_card || lc->card_path_down) {
            for (int n = 0; n < lc->nodes; n++) {
                distvm_sh("ip link del " CARD_TAP "%d", n);
            }
            distvm_sh("ip link del " CARD_BRIDGE);
        } else {
            distvm_sh("ip link del " MQ_TAP);
        }
        if (lc->mq_card) {
            distvm_sh("ip link del " MQ_TAP_1);
        }
    }

    if (lc->distmem) {
        /* after the moves and the DIMM's unplug */
        check_topology(node[0], MOVES + 2, where, false);
    }
    console = distvm_read_console(node[0]);
    if (home) {
        /* Home's console, then its standby's, in its place */
        g_autofree char *before = console;
        g_autofree char *after = distvm_read_console(node[home]);

        console = g_strconcat(before, after, NULL);
    }
    g_assert_nonnull(strstr(console, "distvm-linux: cpus-online 0-3\n"));
    g_assert_nonnull(strstr(console, "distvm-linux: nproc 4\n"));
    /* The guest took the remote TLB flush hypercall (pv-tlb-flush) */
    g_assert_true(!!strstr(console, "Hyper-V: Using hypercall for remote "
                           "TLB flush\n") == linux_pv_tlb_flush(lc));
    /* The TSC stayed the clocksource: CPUID says it is invariant. */
    g_assert_nonnull(strstr(console, "clocksource: Switched to clocksource "
                            "tsc\n"));
    g_assert_nonnull(strstr(console, "distvm-linux: clocksource tsc\n"));
    g_assert_nonnull(strstr(console, "distvm-linux: tsc flags constant_tsc "
                            "nonstop_tsc tsc_adjust\n"));
    if (lc->x2apic) {
        g_assert_nonnull(strstr(console, "x2apic enabled\n"));
        g_assert_nonnull(strstr(console, "Switched APIC routing to cluster "
                                "x2apic.\n"));
    }
    for (int i = 0; lc->numa_lines && lc->numa_lines[i]; i++) {
        if (!strstr(console, lc->numa_lines[i])) {
            g_error("missing '%s' in the console:\n%s", lc->numa_lines[i],
                    console);
        }
    }
    if (lc->kill_io) {
        /* The serial console is not held: a rollback shows what it redid */
        g_auto(GStrv) io = g_strsplit(console, "distvm-linux: io start", -1);
        g_auto(GStrv) fetched = g_strsplit(console, "distvm-linux: fetched",
                                           -1);

        const char *took = strstr(console, "distvm-linux: fetch took");

        g_test_message("the guest began its I/O %u times, fetched %u times;"
                       " %.*s", g_strv_length(io) - 1,
                       g_strv_length(fetched) - 1,
                       took ? (int)strcspn(took, "\n") : 0, took ?: "");
    }
    want = g_strdup_printf("distvm-linux: fetched %d bytes %s\n", FILE_SIZE,
                           file_sha);
    g_assert_nonnull(strstr(console, want));
    g_free(want);
    for (int k = 1; lc->device_node && k <= 2 + lc->mq_card; k++) {
        /* over the cards of node 1 and of home, and the multi-queue one */
        g_autofree char *line = g_strdup_printf(
            "distvm-linux: eth%d fetched %d bytes %s\n", k, FILE_SIZE,
            file_sha);
        g_auto(GStrv) parts = g_strsplit(console, line, -1);

        g_assert_cmpint(g_strv_length(parts) - 1, ==, k == 3 ? 2 : 1);
    }
    if (lc->mq_card) {
        check_mq_irqs(console);
    }
    if (lc->kill_pair || lc->kill_card || lc->card_path_down) {
        /* from vCPUs 0 and 2, over the pairs of home and of node 2 */
        g_autofree char *line = g_strdup_printf(
            "distvm-linux: eth1 fetched %d bytes %s\n", FILE_SIZE, file_sha);
        g_auto(GStrv) parts = g_strsplit(console, line, -1);
        const char *took = strstr(console, "distvm-linux: fetches took");

        g_test_message("%.*s", took ? (int)strcspn(took, "\n") : 0,
                       took ?: "");
        g_assert_cmpint(g_strv_length(parts) - 1, ==, 2);
    }
    want = g_strdup_printf("distvm-linux: disk read back %s\n", file_sha);
    g_assert_nonnull(strstr(console, want));
    g_free(want);
    /* xz, one thread per CPU, compressed and decompressed exactly */
    want = g_strdup_printf("distvm-linux: xz round trip ok %d bytes\n",
                           WORK * 16);
    g_assert_nonnull(strstr(console, want));
    for (int i = 0; i < 4; i++) {
        g_autofree char *line = distvm_linux_work_line(i, WORK);

        if (!strstr(console, line)) {
            g_error("missing '%s' in the console:\n%s", line, console);
        }
    }
    distvm_assert_console_clean(console);
    for (int n = 1; n < lc->nodes; n++) {
        g_autofree char *other = n != victim && n != home ?
                                 distvm_read_console(node[n]) : NULL;

        g_assert_cmpstr(other ?: "", ==, "");
    }

    /* What the guest wrote is on the disk image, exactly. */
    g_assert_true(g_file_get_contents(disk, &image, &image_len, NULL));
    g_assert_cmpuint(image_len, ==, DISK_SIZE);
    g_assert_true(memcmp(image, file->data, FILE_SIZE) == 0);

    for (int n = 0; n < lc->nodes; n++) {
        if (n != victim) {
            distvm_node_quit(node[n]);
        }
    }
    if (lc->netns) {
        distvm_netns_cleanup(prefix, lc->nodes);
    }
}

/*
 * Issue 13, 6(c): the Linux workload on 3 nodes (vCPUs 0:1:2:1, no guest
 * NUMA nodes, so every vCPU shares the kernel's data with all others),
 * once under policy=manual and once under policy=affinity with no move
 * asked for.  Both finish with the exact result and a clean console; the
 * policy moves vCPUs only for their data or to consolidate, and the run
 * under it takes fewer remote faults a second.
 */
#define POLICY_WORK 30000

/* Remote faults of every kind, on every node of @node */
static uint64_t cluster_faults(DistvmNode **node, int nodes)
{
    static const char *const kinds[] = { "read-miss", "write-miss",
                                         "upgrade" };
    uint64_t faults = 0;

    for (int n = 0; n < nodes; n++) {
        QDict *info = distvm_assert_active(node[n]->qts, n);
        QDict *ram = qdict_get_qdict(info, "ram");

        for (int k = 0; k < ARRAY_SIZE(kinds); k++) {
            faults += qdict_get_int(qdict_get_qdict(ram, kinds[k]), "count");
        }
        qobject_unref(info);
    }
    return faults;
}

/* Whether query-status on @qts answers @status */
static bool status_is(QTestState *qts, const char *status)
{
    QDict *ret = qtest_qmp_assert_success_ref(qts,
                                              "{ 'execute': 'query-status' }");
    bool is = !strcmp(qdict_get_str(ret, "status"), status);

    qobject_unref(ret);
    return is;
}

/*
 * One run under @policy; returns its remote faults, its length in s in
 * @seconds, and counts its moves.
 */
static uint64_t linux_policy_run(const char *policy, double *seconds,
                                 int *moves)
{
    g_autofree char *kernel = distvm_guest_path("linux/vmlinuz");
    g_autofree char *initrd = distvm_guest_path("linux/initramfs.cpio.gz");
    g_autofree char *dir = g_strdup_printf("%s/linux-policy-%s", tmpdir,
                                           policy);
    g_autofree char *args = g_strdup_printf(
        "-nodefaults -machine pc -m 512M -smp 4,sockets=4 -kernel %s "
        "-initrd %s -action shutdown=pause "
        "-append 'console=ttyS0 panic=-1 distvm.work=%d'", kernel, initrd,
        POLICY_WORK);
    g_autofree char *xz = g_strdup_printf(
        "distvm-linux: xz round trip ok %d bytes\n", POLICY_WORK * 16);
    g_autofree char *console = NULL;
    DistvmNode *node[3];
    uint64_t faults;
    gint64 start, end;
    QDict *ev;

    g_assert(g_mkdir_with_parents(dir, 0700) == 0);
    start = g_get_monotonic_time();
    for (int n = 0; n < 3; n++) {
        g_autofree char *opts = distvm_cluster_accel_opts(dir, 3, n);
        g_autofree char *placed = g_strdup_printf(
            "%s,placement=0:1:2:1,auto-numa=off,policy=%s", opts, policy);

        node[n] = distvm_node_start(dir, n, placed, args);
    }
    for (int n = 0; n < 3; n++) {
        distvm_wait_state(node[n]->qts, "running", 60);
    }
    if (!distvm_wait_console(node[0], "distvm-linux: workload done", 900)) {
        console = distvm_read_console(node[0]);
        g_error("the Linux guest did not finish its workload; console:\n%s",
                console);
    }
    /*
     * Wait for the power-off through QMP commands, which keep the events
     * that come before their answers (looking for one event drops those
     * before it: libqtest).
     */
    for (int i = 0; !status_is(node[0]->qts, "shutdown"); i++) {
        g_assert_cmpint(i, <, 600);     /* a minute */
        g_usleep(100 * 1000);
    }
    end = g_get_monotonic_time();
    faults = cluster_faults(node, 3);
    *moves = 0;
    while ((ev = qtest_qmp_event_ref(node[0]->qts, "DISTVM_VCPU_MOVED"))) {
        const char *reason = qdict_get_str(qdict_get_qdict(ev, "data"),
                                           "reason");

        g_test_message("policy=%s: a move for '%s'", policy, reason);
        if (strcmp(reason, "consolidate")) {
            g_assert_cmpstr(reason, ==, "policy");
        }
        (*moves)++;
        qobject_unref(ev);
    }

    console = distvm_read_console(node[0]);
    g_assert_nonnull(strstr(console, "distvm-linux: nproc 4\n"));
    for (int i = 0; i < 4; i++) {
        g_autofree char *line = distvm_linux_work_line(i, POLICY_WORK);

        if (!strstr(console, line)) {
            g_error("missing '%s' in the console:\n%s", line, console);
        }
    }
    g_assert_nonnull(strstr(console, xz));
    distvm_assert_console_clean(console);
    for (int n = 0; n < 3; n++) {
        distvm_node_quit(node[n]);
    }
    *seconds = (end - start) / 1e6;
    g_test_message("policy=%s: %" PRIu64 " remote faults in %.1f s, %d "
                   "moves", policy, faults, *seconds, *moves);
    return faults;
}

/*
 * The same work takes fewer remote faults under affinity: in all, or a
 * second.  Either, because most faults come from the guest's ticks (on
 * the pages of its time and scheduler): a run that this shared machine
 * slows down takes more in all and fewer a second.  The policy's gain
 * shows in both when the machine is quiet (one of them, 10 to 30%, in
 * the runs seen); a policy that made things worse would lose in both.
 * One pair of runs on this 2-CPU machine has lost in both once (CI, 393k
 * faults in 34.0 s against 277k in 29.9 s): a pair that loses in both is
 * run once more, and the policy fails only if that one loses in both too.
 */
static void test_linux_policy(void)
{
    for (int attempt = 1;; attempt++) {
        int moves_manual, moves_affinity;
        double s_manual, s_affinity;
        uint64_t manual = linux_policy_run("manual", &s_manual,
                                           &moves_manual);
        uint64_t affinity = linux_policy_run("affinity", &s_affinity,
                                             &moves_affinity);

        g_assert_cmpint(moves_manual, ==, 0);
        g_assert_cmpint(moves_affinity, >, 0);
        if (affinity < manual || affinity / s_affinity < manual / s_manual) {
            return;
        }
        if (attempt == 2) {
            g_error("policy=affinity took %" PRIu64 " remote faults in %.1f "
                    "s, manual %" PRIu64 " in %.1f s: more in all and a "
                    "second, in two pairs of runs", affinity, s_affinity,
                    manual, s_manual);
        }
        g_test_message("affinity lost in all and a second: once more");
    }
}

/*
 * A socket a vCPU, so that auto-numa gives the guest a NUMA node on each
 * node; Linux checks the TSC of each new socket against the boot CPU's.
 */
static const char *const two_numa_lines[] = {
    "distvm-linux: node0 cpus 0-1 distance 10 100\n",
    "distvm-linux: node1 cpus 2-3 distance 100 10\n",
    NULL
};

static const LinuxCase two_nodes = {
    .nodes = 2, .placement = "0:0:1:1:1", .io_cpu = 2,
    /* Checkpoint epochs all along, through the moves, stop and cont */
    .accel_opts = "replicas=1,checkpoint-ms=50",
    .smp = "4,maxcpus=5,sockets=5",
    .cpu_plug = 4,
    .numa_lines = two_numa_lines,
};

/*
 * Every feature TCG has (x2APIC, AVX-512, PKU, LA57...): their state
 * moves with the vCPUs.  On q35 with interrupt remapping, Linux runs its
 * LAPICs in x2APIC mode (cluster addressing) on both nodes; without
 * pv-tlb-flush, since Linux on Hyper-V uses physical addressing.  One
 * socket of 4 cores, split over the nodes: no guest NUMA nodes.
 */
static const LinuxCase two_nodes_cpu_max = {
    .nodes = 2, .placement = "0:0:1:1", .io_cpu = 2, .smp = "4",
    .cpu = "max", .x2apic = true, .accel_opts = "pv-tlb-flush=off",
};
/* One NUMA node per cluster node; the guest sees them far apart. */
static const char *const three_numa_lines[] = {
    "distvm-linux: node0 cpus 0 distance 10 100 100\n",
    "distvm-linux: node1 cpus 1,3 distance 100 10 100\n",
    "distvm-linux: node2 cpus 2 distance 100 100 10\n",
    NULL
};
#define THREE_NUMA \
    "-object memory-backend-ram,id=m0,size=256M " \
    "-object memory-backend-ram,id=m1,size=128M " \
    "-object memory-backend-ram,id=m2,size=128M " \
    "-numa node,nodeid=0,memdev=m0,cpus=0 " \
    "-numa node,nodeid=1,memdev=m1,cpus=1,cpus=3 " \
    "-numa node,nodeid=2,memdev=m2,cpus=2"

/*
 * The disk and the network card run on node 2, where vCPU 2 uses them.
 * No -numa: auto-numa gives the guest the three NUMA nodes.  The pairs of
 * the multi-queue card follow their vCPUs as they move (queue-follow,
 * auto by default: on, as the card's pairs are in queue-nodes).
 */
static const LinuxCase three_nodes = {
    .nodes = 3, .placement = "0:1:2:1", .io_cpu = 2,
    /* A NUMA node holds whole sockets, or Linux warns of its topology. */
    .smp = "4,sockets=4",
    .numa_lines = three_numa_lines,
    .distmem = true,
    .device_node = 2,
    .mq_card = true,
};

/* A node other than home is killed during the workload (issue 15) */
static const LinuxCase three_nodes_kill = {
    .nodes = 3, .placement = "0:1:2:1", .io_cpu = 2, .smp = "4",
    .accel_opts = "replicas=1,checkpoint-ms=100",
    .kill = true,
};

/*
 * Node 2, which runs vCPU 2, killed as the guest fetches a file over HTTP
 * and writes it to the disk from that vCPU: the fetch is served once,
 * the disk holds the file (issue 15).  Home keeps parity, not copies:
 * node 2's pages are rebuilt from it and node 1's.
 */
static const LinuxCase three_nodes_kill_io = {
    .nodes = 3, .placement = "0:1:2:1", .io_cpu = 2, .smp = "4",
    .accel_opts = "replicas=1,checkpoint-ms=100,redundancy=parity",
    .kill_io = true,
};

/*
 * Node 2, which serves pair 2 of the multi-queue card, killed as the
 * guest fetches over the card from vCPUs 0 and 2 (issue 16).  The test
 * checks where the takeover puts the pairs: they do not follow vCPU 2 to
 * its new node afterwards (queue-follow=off).
 */
static const LinuxCase three_nodes_kill_pair = {
    .nodes = 3, .placement = "0:1:2:1", .io_cpu = 2, .smp = "4",
    .accel_opts = "replicas=1,checkpoint-ms=100,queue-follow=off",
    .kill_pair = true,
};

/*
 * Home killed instead, which runs the multi-queue card and serves pair 0
 * (make check-long)
 */
static const LinuxCase three_nodes_kill_pair_home = {
    .nodes = 3, .placement = "0:1:2:1", .io_cpu = 2, .smp = "4",
    .accel_opts = "replicas=1,checkpoint-ms=100,queue-follow=off",
    .kill_pair = true, .kill_pair_home = true,
};

/* The same, the pairs following their vCPUs (make check-long) */
static const LinuxCase three_nodes_kill_pair_follow = {
    .nodes = 3, .placement = "0:1:2:1", .io_cpu = 2, .smp = "4",
    .accel_opts = "replicas=1,checkpoint-ms=100",
    .kill_pair = true,
};

/* Node 2, which runs a card (device-nodes), killed as the guest fetches */
static const LinuxCase three_nodes_kill_card = {
    .nodes = 3, .placement = "0:1:2:1", .io_cpu = 2, .smp = "4",
    .accel_opts = "replicas=1,checkpoint-ms=100",
    .kill_card = true,
};

/* The same card, its node's tap taken down as the guest fetches */
static const LinuxCase three_nodes_card_path = {
    .nodes = 3, .placement = "0:1:2:1", .io_cpu = 2, .smp = "4",
    .accel_opts = "replicas=1,checkpoint-ms=100",
    .card_path_down = true,
};

/*
 * Home killed during the workload: node 1, its standby, takes its place,
 * its disk included (issue 15)
 */
static const LinuxCase three_nodes_kill_home = {
    .nodes = 3, .placement = "0:1:2:1", .io_cpu = 2, .smp = "4",
    .accel_opts = "replicas=1,checkpoint-ms=100",
    .kill_home = true,
};

/*
 * Node 2, which runs vCPU 2, cut off by a partition during the workload,
 * the nodes in network namespaces over TLS (issue 15)
 */
static const LinuxCase three_nodes_partition = {
    .nodes = 3, .placement = "0:1:2:1", .io_cpu = 2, .smp = "4",
    .accel_opts = "replicas=1,checkpoint-ms=100,peer-timeout=3",
    .netns = true,
    .partition = true,
};

/* The same with home cut off: node 1, its standby, takes its place */
static const LinuxCase three_nodes_partition_home = {
    .nodes = 3, .placement = "0:1:2:1", .io_cpu = 2, .smp = "4",
    .accel_opts = "replicas=1,checkpoint-ms=100,peer-timeout=3",
    .netns = true,
    .partition_home = true,
};

/* The 3-node case with each node in a network namespace, over TLS. */
static const LinuxCase three_nodes_netns_tls = {
    .nodes = 3, .placement = "0:1:2:1", .io_cpu = 2,
    .smp = "4,sockets=4",
    .numa = THREE_NUMA,
    .numa_lines = three_numa_lines,
    .netns = true,
};

int main(int argc, char **argv)
{
    tmpdir = distvm_test_init(&argc, &argv, "distvm-linux-test");

    qtest_add_data_func("/distvm/linux/2-nodes", &two_nodes, test_linux);
    qtest_add_data_func("/distvm/linux/3-nodes", &three_nodes, test_linux);
    qtest_add_func("/distvm/linux/3-nodes-policy", test_linux_policy);
    qtest_add_data_func("/distvm/linux/3-nodes-kill-home",
                        &three_nodes_kill_home, test_linux);
    qtest_add_data_func("/distvm/linux/3-nodes-kill-io",
                        &three_nodes_kill_io, test_linux);
    qtest_add_data_func("/distvm/linux/3-nodes-kill-pair",
                        &three_nodes_kill_pair, test_linux);
    /*
     * make check-long and make stress: root, iproute2 and certtool, and a
     * few minutes each
     */
    if (g_getenv("DISTVM_LONG")) {
        qtest_add_data_func("/distvm/linux/2-nodes-cpu-max",
                            &two_nodes_cpu_max, test_linux);
        /* a node killed at random: 3-nodes-kill-io kills one too */
        qtest_add_data_func("/distvm/linux/3-nodes-kill", &three_nodes_kill,
                            test_linux);
        qtest_add_data_func("/distvm/linux/3-nodes-netns-tls",
                            &three_nodes_netns_tls, test_linux);
        qtest_add_data_func("/distvm/linux/3-nodes-partition",
                            &three_nodes_partition, test_linux);
        qtest_add_data_func("/distvm/linux/3-nodes-partition-home",
                            &three_nodes_partition_home, test_linux);
        qtest_add_data_func("/distvm/linux/3-nodes-kill-pair-home",
                            &three_nodes_kill_pair_home, test_linux);
        qtest_add_data_func("/distvm/linux/3-nodes-kill-pair-follow",
                            &three_nodes_kill_pair_follow, test_linux);
        qtest_add_data_func("/distvm/linux/3-nodes-kill-card",
                            &three_nodes_kill_card, test_linux);
        qtest_add_data_func("/distvm/linux/3-nodes-card-path",
                            &three_nodes_card_path, test_linux);
    }

    return distvm_test_run(tmpdir);
}
