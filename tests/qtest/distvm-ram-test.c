/*
 * distvm qtest suite: guest RAM shared by several nodes
 *
 * Clusters of 2 to 4 node processes on this machine, over UNIX sockets.
 * The guest runs on the home node; the other nodes read and write guest
 * memory through qtest, which faults on their main threads exactly as a
 * vCPU would.  Every node is asserted through QMP to run distvm.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "qemu/thread.h"
#include "qemu/units.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "libqtest.h"
#include "distvm/distvm-node.h"
#include "distvm/distvm-tls-netns.h"
#include "distvm/guest/smp-workload.h"
#include "distvm-wire.h"

#define MACHINE "-nodefaults -machine pc -m 128M"
#define MACHINE_HOTPLUG "-nodefaults -machine pc -m 128M,slots=2,maxmem=256M"
#define PATTERN_MB 64
#define PC_RAM_PAGES (128u << 8)

static char *tmpdir;

static int stress_seconds(void)
{
    const char *s = g_getenv("DISTVM_STRESS_SECONDS");

    return s ? atoi(s) : 30;
}

static char *guest_args(const char *smp, const char *append)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");

    return g_strdup_printf(MACHINE " -smp %s -kernel %s -append '%s'", smp,
                           elf, append);
}

static void wait_magic(DistvmNode *node, uint32_t magic, int timeout_s)
{
    gint64 deadline = g_get_monotonic_time() + timeout_s * G_USEC_PER_SEC;

    while (qtest_readl(node->qts, DG_RESULT_BASE) != magic) {
        if (g_get_monotonic_time() > deadline) {
            g_autofree char *console = distvm_read_console(node);

            g_error("guest did not reach magic %#x in %d s; console:\n%s",
                    magic, timeout_s, console);
        }
        g_usleep(50 * 1000);
    }
}

/* Every page is held E by at most one node, and then by no other. */
static void check_single_writer(DistvmCluster *c, uint64_t start,
                                uint64_t count)
{
    g_autofree char **states = g_new0(char *, c->nodes + 1);
    uint64_t held = 0;

    for (int i = 0; i < c->nodes; i++) {
        states[i] = distvm_page_states(c->node[i]->qts, start, count);
    }
    for (uint64_t p = 0; p < count; p++) {
        int e = 0, sh = 0;

        for (int i = 0; i < c->nodes; i++) {
            e += states[i][p] == 'E';
            sh += states[i][p] == 'S';
        }
        if (e > 1 || (e == 1 && sh > 0) || e + sh == 0) {
            GString *who = g_string_new(NULL);

            for (int i = 0; i < c->nodes; i++) {
                g_string_append_printf(who, " node%d=%c", i, states[i][p]);
            }
            g_error("page %" PRIu64 " of pc.ram breaks the single-writer "
                    "invariant:%s", start + p, who->str);
        }
        held++;
    }
    g_assert_cmpuint(held, ==, count);
    for (int i = 0; i < c->nodes; i++) {
        g_free(states[i]);
    }
}

/*
 * The guest on home writes a pattern over 64 MiB; every other node reads
 * exactly it; writes through another node are seen by home and by the
 * guest, which reports the sum of what it read.
 */
static void test_pattern(const void *data)
{
    int nodes = GPOINTER_TO_INT(data);
    g_autofree char *args = guest_args("1", "pattern=64");
    DistvmCluster *c = distvm_cluster_start(tmpdir, nodes, args);
    DistvmNode *home = c->node[0];
    size_t len = PATTERN_MB << 20;
    g_autofree uint64_t *want = g_new(uint64_t, len / 8);
    g_autofree uint64_t *got = g_new(uint64_t, len / 8);
    uint64_t sum = 0;
    GRand *rand = g_rand_new_with_seed(nodes);

    wait_magic(home, DG_MAGIC_PATTERN, 120);
    for (size_t i = 0; i < len / 8; i++) {
        want[i] = dg_pattern(DG_PATTERN_BASE + i * 8);
    }
    for (int n = 1; n < nodes; n++) {
        memset(got, 0, len);
        distvm_memread(c->node[n]->qts, DG_PATTERN_BASE, got, len);
        g_assert_cmpmem(got, len, want, len);
    }

    /* Node 1 (and 2, 3) write 64 words each at random places. */
    for (int n = 1; n < nodes; n++) {
        for (int k = 0; k < 64; k++) {
            size_t i = g_rand_int_range(rand, 0, len / 8);
            uint64_t v = ((uint64_t)g_rand_int(rand) << 32) | g_rand_int(rand);

            want[i] = v;
            qtest_writeq(c->node[n]->qts, DG_PATTERN_BASE + i * 8, v);
        }
    }
    distvm_memread(home->qts, DG_PATTERN_BASE, got, len);
    g_assert_cmpmem(got, len, want, len);

    /* The guest sums the region again when node 1 rings the mailbox. */
    for (size_t i = 0; i < len / 8; i++) {
        sum += want[i];
    }
    qtest_writel(c->node[1]->qts,
                 DG_RESULT_BASE + offsetof(struct dg_results, mailbox_seq), 1);
    for (int tries = 0; qtest_readl(c->node[nodes - 1]->qts, DG_RESULT_BASE +
                     offsetof(struct dg_results, mailbox_ack)) != 1; tries++) {
        g_assert_cmpint(tries, <, 1200);
        g_usleep(100 * 1000);
    }
    g_assert_cmphex(qtest_readq(c->node[nodes - 1]->qts, DG_RESULT_BASE +
                    offsetof(struct dg_results, pattern_sum)), ==, sum);
    {
        g_autofree char *line = g_strdup_printf(
            "distvm-guest: mailbox 1 pattern sum %016" PRIx64, sum);

        g_assert_true(distvm_wait_console(home, line, 10));
    }
    check_single_writer(c, DG_PATTERN_BASE >> 12, len >> 12);
    g_rand_free(rand);
    distvm_cluster_quit(c);
}

/* The final content of the guest's stress pages, from its round counts. */
static uint64_t stress_word(const uint32_t *rounds, uint32_t cpu,
                            uint32_t page, uint32_t word)
{
    uint32_t k = rounds[cpu];

    /* The last round k' <= k with k' % 512 == word, if any. */
    if (k < word || (word == 0 && k < 512)) {
        return 0;
    }
    k -= (k - word) % 512;
    return k ? dg_stress_value(cpu, k, page) : 0;
}

/* Node @n sees the stress pages of @ncpus vCPUs as their @rounds left them */
static void check_stress_pages(DistvmNode *node, int n,
                               const uint32_t *rounds, uint32_t ncpus)
{
    g_autofree uint64_t *buf = g_new(uint64_t,
                                     ncpus * DG_STRESS_PAGES * 512);

    distvm_memread(node->qts, DG_STRESS_BASE, buf,
                   ncpus * DG_STRESS_PAGES * 4096);
    for (uint32_t cpu = 0; cpu < ncpus; cpu++) {
        for (uint32_t p = 0; p < DG_STRESS_PAGES; p++) {
            for (uint32_t w = 0; w < 512; w++) {
                uint64_t v = buf[(cpu * DG_STRESS_PAGES + p) * 512 + w];
                uint64_t e = stress_word(rounds, cpu, p, w);

                if (v != e) {
                    g_error("node %d: vCPU %u page %u word %u is %#"
                            PRIx64 ", expected %#" PRIx64, n, cpu, p, w,
                            v, e);
                }
            }
        }
    }
}

/*
 * Guest vCPUs on home keep writing while every other node (and home's
 * qtest) reads and writes random pages; afterwards every node sees
 * exactly the model of all writes and the single-writer invariant holds.
 */
static void test_stress(const void *data)
{
    int nodes = GPOINTER_TO_INT(data);
    const uint32_t ncpus = 2;
    g_autofree char *args = guest_args("2", "cpus=2 stress=1");
    DistvmCluster *c = distvm_cluster_start(tmpdir, nodes, args);
    DistvmNode *home = c->node[0];
    /* Pages written by qtest: 8 MiB above the guest's stress pages. */
    const uint64_t qbase = 0x02000000, qpages = 2048;
    const uint64_t gbase = DG_STRESS_BASE, gpages = ncpus * DG_STRESS_PAGES;
    g_autofree uint64_t *model = g_new0(uint64_t, qpages * 512);
    g_autofree uint64_t *buf = g_new(uint64_t, qpages * 512);
    uint32_t rounds[DG_MAX_CPUS];
    GRand *rand = g_rand_new_with_seed(0xd157 + nodes);
    gint64 end;
    uint64_t ops = 0;

    g_assert_true(distvm_wait_console(home, "distvm-guest: all cpus up", 60));
    end = g_get_monotonic_time() + stress_seconds() * G_USEC_PER_SEC;
    while (g_get_monotonic_time() < end) {
        QTestState *qts = c->node[g_rand_int_range(rand, 0, nodes)]->qts;
        uint32_t op = g_rand_int_range(rand, 0, 4);

        if (op == 0) {
            /* A read of a page the guest keeps writing. */
            uint64_t a = gbase + g_rand_int_range(rand, 0, gpages * 512) * 8;

            qtest_readq(qts, a);
        } else {
            uint64_t w = g_rand_int_range(rand, 0, qpages * 512);
            uint64_t a = qbase + w * 8;

            if (op == 1) {
                g_assert_cmphex(qtest_readq(qts, a), ==, model[w]);
            } else {
                model[w] = ((uint64_t)g_rand_int(rand) << 32) |
                           g_rand_int(rand);
                qtest_writeq(qts, a, model[w]);
            }
        }
        ops++;
    }
    g_test_message("%d nodes: %" PRIu64 " qtest operations in %d s", nodes,
                   ops, stress_seconds());

    qtest_writel(c->node[nodes - 1]->qts,
                 DG_RESULT_BASE + offsetof(struct dg_results, stop), 1);
    wait_magic(home, DG_MAGIC_DONE, 120);
    distvm_memread(home->qts, DG_RESULT_BASE +
                  offsetof(struct dg_results, rounds), rounds, sizeof(rounds));
    for (uint32_t cpu = 0; cpu < ncpus; cpu++) {
        g_assert_cmpuint(rounds[cpu], >, 0);
        g_test_message("vCPU %u: %u rounds", cpu, rounds[cpu]);
    }

    /* Quiescent: check the invariant before and after reading everything. */
    check_single_writer(c, 0, PC_RAM_PAGES);
    for (int n = 0; n < nodes; n++) {
        QTestState *qts = c->node[n]->qts;

        distvm_memread(qts, qbase, buf, qpages * 4096);
        g_assert_cmpmem(buf, qpages * 4096, model, qpages * 4096);
        check_stress_pages(c->node[n], n, rounds, ncpus);
    }
    check_single_writer(c, 0, PC_RAM_PAGES);
    g_rand_free(rand);
    distvm_cluster_quit(c);
}

static void test_stress_2(void)
{
    test_stress(GINT_TO_POINTER(2));
}

/* vCPU @cpu's last arrival on node @n (query-distvm), or NULL; unref it */
static QDict *vcpu_arrival(DistvmCluster *c, int n, int cpu)
{
    QDict *info = distvm_assert_active(c->node[n]->qts, n);
    QDict *arrival = NULL;
    QListEntry *e;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(info, "vcpus"), e) {
        QDict *v = qobject_to(QDict, qlist_entry_obj(e));

        if (qdict_get_int(v, "cpu-index") == cpu &&
            qdict_haskey(v, "arrival")) {
            arrival = qdict_get_qdict(v, "arrival");
            qobject_ref(arrival);
        }
    }
    qobject_unref(info);
    return arrival;
}

/*
 * Moves of a vCPU that keeps rewriting its own 256 pages (mode=stress):
 * with warm pages (the default), its destination asks for the pages its
 * TLB mapped at once, and has them all in place in bounded time; with
 * warm-pages=off, none.  Either way the final memory is exact and every
 * page has a single writer.
 */
static void test_warm_pages(const void *data)
{
    bool warm = GPOINTER_TO_INT(data);
    g_autofree char *args = guest_args("2", "cpus=2 stress=1");
    DistvmCluster *c = distvm_cluster_start_with(
        tmpdir, 2, warm ? NULL : "warm-pages=off", args);
    DistvmNode *home = c->node[0];
    uint32_t rounds[DG_MAX_CPUS];
    int where = 0;

    g_assert_true(distvm_wait_console(home, "distvm-guest: all cpus up", 60));
    for (int i = 0; i < 6; i++) {
        int to = 1 - where;
        gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
        QDict *ev, *a;

        g_usleep(200 * 1000);
        qtest_qmp_assert_success(home->qts, "{ 'execute': 'distvm-move-vcpu',"
                                 " 'arguments': { 'cpu-index': 1, "
                                 "'node': %d } }", to);
        ev = distvm_wait_event(home->qts, "DISTVM_VCPU_MOVED",
                               DISTVM_EVENT_TIMEOUT_S);
        g_assert_cmpint(qdict_get_int(qdict_get_qdict(ev, "data"), "to"), ==,
                        to);
        qobject_unref(ev);
        /* Warm: until its warm pages came and are all in place */
        while (!(a = vcpu_arrival(c, to, 1)) ||
               (warm && !qdict_haskey(a, "warm-us"))) {
            g_assert_cmpint(g_get_monotonic_time(), <, deadline);
            qobject_unref(a);
            g_usleep(10 * 1000);
        }
        g_assert_cmpint(qdict_get_int(a, "from"), ==, where);
        g_assert_cmpint(qdict_get_int(a, "state-bytes"), >, 0);
        if (warm) {
            g_assert_cmpint(qdict_get_int(a, "warm-pages"), >, 0);
            g_assert_cmpint(qdict_get_int(a, "warm-pages"), <=, 512);
            g_assert_cmpint(qdict_get_int(a, "warm-left"), ==, 0);
            g_test_message("move %d to node %d: %" PRId64 " warm pages, in "
                           "place %" PRId64 " us after it stopped; %" PRId64
                           " remote faults in its first 10 ms", i, to,
                           qdict_get_int(a, "warm-pages"),
                           qdict_get_int(a, "warm-us"),
                           qdict_get_int(a, "faults-10ms"));
        } else {
            g_usleep(100 * 1000);
            qobject_unref(a);
            a = vcpu_arrival(c, to, 1);
            g_assert_false(qdict_haskey(a, "warm-pages"));
            g_assert_false(qdict_haskey(a, "warm-us"));
        }
        qobject_unref(a);
        where = to;
    }

    qtest_writel(home->qts, DG_RESULT_BASE + offsetof(struct dg_results, stop),
                 1);
    wait_magic(home, DG_MAGIC_DONE, 120);
    distvm_memread(home->qts, DG_RESULT_BASE +
                  offsetof(struct dg_results, rounds), rounds, sizeof(rounds));
    for (uint32_t cpu = 0; cpu < 2; cpu++) {
        g_assert_cmpuint(rounds[cpu], >, 0);
    }
    for (int n = 0; n < 2; n++) {
        check_stress_pages(c->node[n], n, rounds, 2);
    }
    check_single_writer(c, 0, PC_RAM_PAGES);
    distvm_cluster_quit(c);
}

/* A node started with a different machine is refused; home carries on. */
static void test_mismatch(void)
{
    static const struct {
        const char *args;
        const char *error;
        const char *accel;      /* added to node 1's -accel distvm */
    } cases[] = {
        { "-machine pc -m 256M -smp 2", "differs from the home node in "
          "memory size (-m): the home node has '134217728', node 1 has "
          "'268435456'" },
        { "-machine pc -m 128M,slots=2,maxmem=256M -smp 2", "differs from "
          "the home node in memory slots (-m): the home node has 'slots=0,"
          "maxmem=134217728', node 1 has 'slots=2,maxmem=268435456'" },
        { "-machine pc -m 128M -smp 3", "differs from the home node in "
          "vcpus (-smp)" },
        { "-machine pc -m 128M -smp 2 -cpu qemu32", "differs from the home "
          "node in cpu model" },
        { "-machine q35 -m 128M -smp 2", "differs from the home node in "
          "machine type" },
        { "-machine pc -m 128M -smp 2", "differs from the home node in "
          "placement policy: the home node has 'manual', node 1 has "
          "'affinity'", ",policy=affinity" },
        { "-machine pc -m 128M -smp 2", "differs from the home node in "
          "auto-numa: the home node has 'off', node 1 has 'on'",
          ",auto-numa=on" },
        { "-machine pc -m 128M -smp 2", "differs from the home node in "
          "pv-tlb-flush: the home node has 'on', node 1 has 'off'",
          ",pv-tlb-flush=off" },
    };
    g_autofree char *dir = g_strdup_printf("%s/mismatch", tmpdir);
    g_autofree char *opts0 = NULL;
    g_autofree char *opts1 = NULL;
    DistvmNode *home, *node1;

    g_assert(g_mkdir_with_parents(dir, 0700) == 0);
    opts0 = distvm_cluster_accel_opts(dir, 2, 0);
    opts1 = distvm_cluster_accel_opts(dir, 2, 1);
    home = distvm_node_start(dir, 0, opts0, "-machine pc -m 128M -smp 2");
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *args = g_strdup_printf("-accel distvm,%s%s %s",
                                                opts1, cases[i].accel ?: "",
                                                cases[i].args);
        g_autofree char *out = NULL;
        int status = distvm_run_qemu(args, &out);

        if (status != 1 || !strstr(out, cases[i].error)) {
            g_error("'%s': expected exit status 1 and '%s', got %d:\n%s",
                    cases[i].args, cases[i].error, status, out);
        }
        distvm_wait_state(home->qts, "joining", 1);
    }
    /* The right node joins and the cluster forms. */
    node1 = distvm_node_start(dir, 1, opts1, "-machine pc -m 128M -smp 2");
    distvm_wait_state(home->qts, "running", 60);
    distvm_wait_state(node1->qts, "running", 60);
    distvm_node_quit(node1);
    distvm_node_quit(home);
}

/* Page states of a RAMBlock on a node, one letter (I, S, E) a page */
static char *block_states(QTestState *qts, const char *block, uint64_t count)
{
    QDict *ret = qtest_qmp_assert_success_ref(qts,
        "{ 'execute': 'x-query-distvm-pages', 'arguments': "
        "{ 'ramblock': %s, 'start': 0, 'count': %" PRIu64 " } }",
        block, count);
    char *states = g_strdup(qdict_get_str(ret, "states"));

    qobject_unref(ret);
    return states;
}

/*
 * x-query-distvm-hot-pages with @count returns @n pages of m1: @pages,
 * with @faults.
 */
static void check_hot_pages(DistvmNode *node, int count, int n,
                            const uint64_t *pages, const uint64_t *faults)
{
    QDict *resp = qtest_qmp(node->qts,
        "{ 'execute': 'x-query-distvm-hot-pages', "
        "'arguments': { 'count': %d } }", count);
    QList *list = qdict_get_qlist(resp, "return");
    int i = 0;

    g_assert(list);
    for (const QListEntry *e = qlist_first(list); e; e = qlist_next(e)) {
        QDict *h = qobject_to(QDict, qlist_entry_obj(e));

        g_assert_cmpint(i, <, n);
        g_assert_cmpstr(qdict_get_str(h, "ramblock"), ==, "m1");
        g_assert_cmpint(qdict_get_int(h, "page"), ==, pages[i]);
        g_assert_cmpint(qdict_get_int(h, "faults"), ==, faults[i]);
        i++;
    }
    g_assert_cmpint(i, ==, n);
    qobject_unref(resp);
}

#define NUMA_BLOCK_MB   64
#define NUMA_OBJECTS \
    "-object memory-backend-ram,id=m0,size=64M " \
    "-object memory-backend-ram,id=m1,size=64M " \
    "-numa node,nodeid=0,memdev=m0,cpus=0 -numa node,nodeid=1,memdev=m1,cpus=1"

/*
 * Two nodes with NUMA_OBJECTS, -m @mem and @extra, vCPU 1 on node 1, in
 * @tmpdir/@name; @accel adds to -accel distvm.
 */
static void numa_pair_start_with(const char *name, const char *mem,
                                 const char *extra, const char *accel,
                                 DistvmNode **node)
{
    g_autofree char *dir = g_strdup_printf("%s/%s", tmpdir, name);
    g_autofree char *args = g_strdup_printf(
        "-machine pc -m %s -smp 2 -S " NUMA_OBJECTS " %s", mem, extra);

    g_assert(g_mkdir_with_parents(dir, 0700) == 0);
    for (int n = 0; n < 2; n++) {
        g_autofree char *opts = distvm_cluster_accel_opts(dir, 2, n);
        g_autofree char *placed = g_strdup_printf("%s,placement=0:1%s",
                                                  opts, accel);

        node[n] = distvm_node_start(dir, n, placed, args);
    }
    for (int n = 0; n < 2; n++) {
        distvm_wait_state(node[n]->qts, "running", 60);
    }
}

static void numa_pair_start(const char *name, const char *mem,
                            const char *extra, DistvmNode **node)
{
    numa_pair_start_with(name, mem, extra, "", node);
}

/*
 * Memory has a home: with vCPU 1 placed on node 1, guest NUMA node 1's
 * memory (m1) starts owned by node 1, and node 1 takes no remote fault
 * on it; node 0 reads it from node 1.
 */
static void test_numa_homes(void)
{
    const uint64_t pages = NUMA_BLOCK_MB << 8;
    const uint64_t len = MiB, base = NUMA_BLOCK_MB * MiB;
    g_autofree uint8_t *want = g_malloc(len);
    g_autofree uint8_t *got = g_malloc(len);
    DistvmNode *node[2];

    numa_pair_start("numa", "128M", "", node);
    for (int n = 0; n < 2; n++) {
        for (int b = 0; b < 2; b++) {
            g_autofree char *block = g_strdup_printf("m%d", b);
            g_autofree char *states = block_states(node[n]->qts, block,
                                                   pages);
            QDict *r = distvm_memory_range(node[n], block);

            g_assert_cmpint(qdict_get_int(r, "home"), ==, b);
            g_assert_true(qdict_get_bool(r, "numa"));
            qobject_unref(r);
            for (uint64_t p = 0; p < pages; p++) {
                if (states[p] != (b == n ? 'E' : 'I')) {
                    g_error("node %d: page %" PRIu64 " of %s is %c", n, p,
                            block, states[p]);
                }
            }
        }
    }

    /* Node 1 writes 1 MiB of its own memory: no page leaves it. */
    for (uint64_t i = 0; i < len; i++) {
        want[i] = i * 7 + (i >> 12);
    }
    qtest_memwrite(node[1]->qts, base, want, len);
    g_assert_cmpint(distvm_remote_faults(node[1], "m1"), ==, 0);
    g_assert_cmpint(distvm_remote_faults(node[0], "m1"), ==, 0);

    /* Node 0 reads it from node 1, one read miss a page. */
    distvm_memread(node[0]->qts, base, got, len);
    g_assert_cmpmem(got, len, want, len);
    g_assert_cmpint(distvm_remote_faults(node[0], "m1"), ==, len / 4096);
    g_assert_cmpint(distvm_remote_faults(node[0], "m0"), ==, 0);

    /* Node 1 writes a page node 0 now shares: an upgrade. */
    qtest_writeq(node[1]->qts, base, 0x1234);
    g_assert_cmpint(distvm_remote_faults(node[1], "m1"), ==, 1);
    g_assert_cmphex(qtest_readq(node[0]->qts, base), ==, 0x1234);

    /*
     * The pages each node asked for most: node 0 read page 0 of m1
     * twice, the 255 others once (ties in page order); node 1 upgraded
     * page 0.
     */
    check_hot_pages(node[0], 3, 3, (const uint64_t[]) { 0, 1, 2 },
                    (const uint64_t[]) { 2, 1, 1 });
    check_hot_pages(node[1], 16, 1, (const uint64_t[]) { 0 },
                    (const uint64_t[]) { 1 });
    qobject_unref(qtest_qmp_assert_failure_ref(node[0]->qts,
        "{ 'execute': 'x-query-distvm-hot-pages', "
        "'arguments': { 'count': 0 } }"));

    distvm_node_quit(node[1]);
    distvm_node_quit(node[0]);
}

/*
 * A node that writes another's untouched pages one after the other gets
 * them in runs, not one round trip each; a page with data is not given
 * away with a run, and nothing written is lost.
 */
static void test_numa_sweep(void)
{
    const uint64_t pages = 256, base = NUMA_BLOCK_MB * MiB;
    const uint64_t marked = 100;    /* the page with node 1's data */
    g_autofree uint8_t *got = g_malloc(pages * 4096);
    g_autofree char *states0 = NULL, *states1 = NULL;
    DistvmNode *node[2];

    numa_pair_start("numa-sweep", "128M", "", node);
    qtest_memset(node[1]->qts, base + marked * 4096, 0xaa, 4096);
    g_assert_cmpint(distvm_remote_faults(node[1], "m1"), ==, 0);

    for (uint64_t p = 0; p < pages; p++) {
        qtest_writeq(node[0]->qts, base + p * 4096, 0x1000 + p);
    }
    /*
     * Pages 0 to 2 one at a time; with page 2, the two before it being
     * node 0's already, come pages 3 to 65; with page 66, pages 67 to 99,
     * the run stopping at the page with data; page 100 comes with its
     * data and pages 101 to 163; pages 164 and 228 with the 63 after
     * them.
     */
    g_assert_cmpint(distvm_remote_faults(node[0], "m1"), ==, 7);
    g_assert_cmpint(distvm_remote_faults(node[1], "m1"), ==, 0);
    states0 = block_states(node[0]->qts, "m1", pages);
    states1 = block_states(node[1]->qts, "m1", pages);
    for (uint64_t p = 0; p < pages; p++) {
        if (states0[p] != 'E' || states1[p] != 'I') {
            g_error("page %" PRIu64 " of m1 is %c on node 0 and %c on node 1",
                    p, states0[p], states1[p]);
        }
    }

    distvm_memread(node[1]->qts, base, got, pages * 4096);
    for (uint64_t p = 0; p < pages; p++) {
        const uint8_t *page = got + p * 4096;

        g_assert_cmphex(ldq_le_p(page), ==, 0x1000 + p);
        for (int i = 8; i < 4096; i++) {
            if (page[i] != (p == marked ? 0xaa : 0)) {
                g_error("byte %d of page %" PRIu64 " of m1 is %#x", i, p,
                        page[i]);
            }
        }
    }
    g_assert_cmpint(distvm_remote_faults(node[1], "m1"), ==, pages);

    distvm_node_quit(node[1]);
    distvm_node_quit(node[0]);
}

#define DIMM_MB         8

/* QEMU with @args exits with status 1, saying @message */
static void check_start_refused(const char *args, const char *message)
{
    g_autofree char *out = NULL;
    int status = distvm_run_qemu(args, &out);

    if (status != 1 || !strstr(out, message)) {
        g_error("'%s': expected exit status 1 and '%s', got %d:\n%s", args,
                message, status, out);
    }
}

/* Whether query-distvm on @node shows RAMBlock @block */
static bool has_range(DistvmNode *node, const char *block)
{
    QDict *r = distvm_memory_range_find(node, block);

    qobject_unref(r);
    return r != NULL;
}

/* Two nodes, vCPUs 0:1:1, auto-numa on, -m 128M -smp @smp: running */
static void numa_auto_start(const char *dir, const char *smp,
                            DistvmNode **node)
{
    g_autofree char *args = g_strdup_printf("-machine pc -m 128M -smp %s -S",
                                            smp);

    for (int n = 0; n < 2; n++) {
        g_autofree char *opts = distvm_cluster_accel_opts(dir, 2, n);
        g_autofree char *placed = g_strdup_printf(
            "%s,placement=0:1:1,auto-numa=on", opts);

        node[n] = distvm_node_start(dir, n, placed, args);
    }
    for (int n = 0; n < 2; n++) {
        distvm_wait_state(node[n]->qts, "running", 60);
    }
}

/*
 * auto-numa: without -numa, a guest whose vCPUs are placed on two nodes
 * gets a NUMA node on each, with a memory backend of its share of the
 * vCPUs homed there (no pc.ram); a node's writes to its share stay on
 * it.  It is refused with objects of its ids, and with -machine
 * memory-backend; a socket split over two nodes is said, and keeps the
 * guest without NUMA nodes (and its CPU slots with their type).
 */
static void test_numa_auto(void)
{
    /* -m 128M, vCPUs on 0:1:1: node 1 has 2/3 of them, in 2 MiB units */
    static const struct {
        const char *id;
        uint64_t mb;
    } blocks[] = { { "distvm-numa0", 44 }, { "distvm-numa1", 84 } };
    static const char *const refused[][2] = {
        { "-smp 2,sockets=2 "
          "-object memory-backend-ram,id=distvm-numa1,size=16M",
          "attempt to add duplicate property 'distvm-numa1'" },
        { "-smp 2,sockets=2 -object memory-backend-ram,id=ram0,size=128M "
          "-machine memory-backend=ram0",
          "'-machine memory-backend' and '-numa memdev' properties are "
          "mutually exclusive" },
        /* Not refused, but said: the node gives up, finding no home */
        { "-smp 2,sockets=1", "distvm: auto-numa: vCPUs 0 and 1 share "
          "socket 0 but run on nodes 0 and 1: the guest gets no NUMA nodes" },
    };
    const uint64_t len = MiB, base = blocks[0].mb * MiB;
    g_autofree char *dir = g_strdup_printf("%s/numa-auto", tmpdir);
    g_autofree uint8_t *want = g_malloc(len);
    g_autofree uint8_t *got = g_malloc(len);
    DistvmNode *node[2];

    g_assert(g_mkdir_with_parents(dir, 0700) == 0);
    numa_auto_start(dir, "3,sockets=3", node);
    for (int n = 0; n < 2; n++) {
        g_assert_false(has_range(node[n], "pc.ram"));
        for (int b = 0; b < 2; b++) {
            g_autofree char *states = block_states(node[n]->qts,
                                                   blocks[b].id,
                                                   blocks[b].mb << 8);
            QDict *r = distvm_memory_range(node[n], blocks[b].id);

            g_assert_cmpuint(qdict_get_int(r, "size"), ==,
                             blocks[b].mb * MiB);
            g_assert_cmpint(qdict_get_int(r, "home"), ==, b);
            g_assert_true(qdict_get_bool(r, "numa"));
            qobject_unref(r);
            for (uint64_t p = 0; p < blocks[b].mb << 8; p++) {
                if (states[p] != (b == n ? 'E' : 'I')) {
                    g_error("node %d: page %" PRIu64 " of %s is %c", n, p,
                            blocks[b].id, states[p]);
                }
            }
        }
    }

    /* Node 1 writes 1 MiB of its share: no page leaves it; node 0 reads. */
    for (uint64_t i = 0; i < len; i++) {
        want[i] = i * 13 + (i >> 12);
    }
    qtest_memwrite(node[1]->qts, base, want, len);
    g_assert_cmpint(distvm_remote_faults(node[1], "distvm-numa1"), ==, 0);
    distvm_memread(node[0]->qts, base, got, len);
    g_assert_cmpmem(got, len, want, len);
    g_assert_cmpint(distvm_remote_faults(node[0], "distvm-numa1"), ==,
                    len / 4096);
    g_assert_cmpint(distvm_remote_faults(node[0], "distvm-numa0"), ==, 0);
    distvm_node_quit(node[1]);
    distvm_node_quit(node[0]);

    /*
     * One socket over two nodes: no NUMA nodes, and the CPU slots, listed
     * before -cpu was read, still have their type (for device_add).
     */
    numa_auto_start(dir, "2,maxcpus=3", node);
    for (int n = 0; n < 2; n++) {
        QDict *resp;
        QList *slots;

        g_assert_true(has_range(node[n], "pc.ram"));
        resp = qtest_qmp(node[n]->qts,
                         "{ 'execute': 'query-hotpluggable-cpus' }");
        slots = qdict_get_qlist(resp, "return");
        g_assert_cmpint(qlist_size(slots), ==, 3);
        for (const QListEntry *e = qlist_first(slots); e;
             e = qlist_next(e)) {
            g_assert_cmpstr(qdict_get_str(qobject_to(QDict,
                                                     qlist_entry_obj(e)),
                                          "type"), ==, "qemu64-x86_64-cpu");
        }
        qobject_unref(resp);
    }
    distvm_node_quit(node[1]);
    distvm_node_quit(node[0]);

    for (size_t i = 0; i < G_N_ELEMENTS(refused); i++) {
        g_autofree char *opts = distvm_cluster_accel_opts(dir, 2, 1);
        g_autofree char *args = g_strdup_printf(
            "-accel distvm,%s,placement=0:1,auto-numa=on,join-timeout=1 "
            "-machine pc -m 128M %s", opts, refused[i][0]);

        check_start_refused(args, refused[i][1]);
    }
}

/* Whether @qts has a QOM object @name in @dir */
static bool has_object(QTestState *qts, const char *dir, const char *name)
{
    QDict *resp = qtest_qmp(qts, "{ 'execute': 'qom-list', 'arguments': "
                            "{ 'path': %s } }", dir);
    bool found = false;

    for (const QListEntry *e = qlist_first(qdict_get_qlist(resp, "return"));
         e; e = qlist_next(e)) {
        QDict *prop = qobject_to(QDict, qlist_entry_obj(e));

        found |= !strcmp(qdict_get_str(prop, "name"), name);
    }
    qobject_unref(resp);
    return found;
}

/* How long ago @node last heard from node @peer */
static int64_t last_heard_ms(DistvmNode *node, int64_t peer)
{
    QDict *info = distvm_assert_active(node->qts, node->node_id);
    int64_t ms = -1;

    for (const QListEntry *e = qlist_first(qdict_get_qlist(info,
                                                           "node-list"));
         e; e = qlist_next(e)) {
        QDict *n = qobject_to(QDict, qlist_entry_obj(e));

        if (qdict_get_int(n, "node-id") == peer) {
            ms = qdict_get_int(n, "last-heard-ms");
        }
    }
    qobject_unref(info);
    g_assert_cmpint(ms, >=, 0);
    return ms;
}

static int64_t dimm_prop(QTestState *qts, const char *id, const char *prop)
{
    g_autofree char *path = g_strdup_printf("/machine/peripheral/%s", id);
    QDict *resp = qtest_qmp(qts, "{ 'execute': 'qom-get', 'arguments': "
                            "{ 'path': %s, 'property': %s } }", path, prop);
    int64_t v = qdict_get_int(resp, "return");

    qobject_unref(resp);
    return v;
}

/*
 * DIMM @id (backend @block of DIMM_MB, at @base) is on both nodes, at the
 * same address and slot, with its pages owned by node @home: it writes
 * them without a remote fault, and the other node reads them back
 * exactly, one read miss a page.
 */
static void check_dimm_shared(DistvmNode **node, const char *id,
                              const char *block, int home, uint8_t seed)
{
    const uint64_t pages = DIMM_MB << 8, len = DIMM_MB * MiB;
    g_autofree uint8_t *want = g_malloc(len);
    g_autofree uint8_t *got = g_malloc(len);
    uint64_t base = dimm_prop(node[0]->qts, id, "addr");

    g_assert_cmphex(base, >=, 4 * GiB);
    g_assert_cmphex(dimm_prop(node[1]->qts, id, "addr"), ==, base);
    g_assert_cmpint(dimm_prop(node[1]->qts, id, "slot"), ==,
                    dimm_prop(node[0]->qts, id, "slot"));
    for (int n = 0; n < 2; n++) {
        g_autofree char *states = block_states(node[n]->qts, block, pages);
        QDict *r = distvm_memory_range(node[n], block);

        g_assert_cmpint(qdict_get_int(r, "home"), ==, home);
        g_assert_cmpint(qdict_get_int(r, "size"), ==, len);
        g_assert_cmpint(qdict_get_int(r, "remote-faults"), ==, 0);
        qobject_unref(r);
        for (uint64_t p = 0; p < pages; p++) {
            if (states[p] != (n == home ? 'E' : 'I')) {
                g_error("node %d: page %" PRIu64 " of %s is %c", n, p,
                        block, states[p]);
            }
        }
    }
    for (uint64_t i = 0; i < len; i++) {
        want[i] = i * 13 + (i >> 12) + seed;
    }
    qtest_memwrite(node[home]->qts, base, want, len);
    g_assert_cmpint(distvm_remote_faults(node[home], block), ==, 0);
    distvm_memread(node[!home]->qts, base, got, len);
    g_assert_cmpmem(got, len, want, len);
    g_assert_cmpint(distvm_remote_faults(node[!home], block), ==, pages);
}

/*
 * device_add on node 0 of a distmem-dimm of node @cluster_node fails with
 * @message, and leaves nothing plugged on any node.
 */
static void dimm_add_refused(DistvmNode **node, const char *id,
                             const char *memdev, int cluster_node,
                             const char *message)
{
    QDict *resp = qtest_qmp_assert_failure_ref(node[0]->qts,
        "{ 'execute': 'device_add', 'arguments': { 'driver': "
        "'distmem-dimm', 'id': %s, 'memdev': %s, 'node': 1, "
        "'cluster-node': %d } }", id, memdev, cluster_node);
    const char *desc = qdict_get_str(resp, "desc");

    if (!g_str_has_prefix(desc, message)) {
        g_error("device_add: '%s', not '%s...'", desc, message);
    }
    qobject_unref(resp);
    for (int n = 0; n < 2; n++) {
        g_assert_false(has_object(node[n]->qts, "/machine/peripheral", id));
        g_assert_false(has_range(node[n], memdev));
    }
}

static void backend_add(QTestState *qts, const char *id)
{
    qtest_qmp_assert_success(qts, "{ 'execute': 'object-add', "
        "'arguments': { 'qom-type': 'memory-backend-ram', 'id': %s, "
        "'size': %d } }", id, (int)(DIMM_MB * MiB));
}

/*
 * The guest's _EJ0 of DIMM @id, through home's ACPI memory hot-plug
 * registers (PIIX4's, at 0xa00): select its slot, eject it.  Home
 * unplugs it, and so does every node.
 */
#define MEM_HOTPLUG_PORT    0xa00
#define MEM_HOTPLUG_FLAGS   0x14
#define MEM_HOTPLUG_EJECT   0x08

static void dimm_eject(DistvmNode **node, const char *id)
{
    qtest_outl(node[0]->qts, MEM_HOTPLUG_PORT,
               dimm_prop(node[0]->qts, id, "slot"));
    qtest_outb(node[0]->qts, MEM_HOTPLUG_PORT + MEM_HOTPLUG_FLAGS,
               MEM_HOTPLUG_EJECT);
    for (int n = 0; n < 2; n++) {
        QDict *ev = distvm_wait_event(node[n]->qts, "DEVICE_DELETED",
                                      DISTVM_EVENT_TIMEOUT_S);

        g_assert_cmpstr(qdict_get_str(qdict_get_qdict(ev, "data"),
                                      "device"), ==, id);
        qobject_unref(ev);
    }
}

/*
 * A distmem-dimm of node 1, in guest NUMA node 1, cold-plugged and then
 * hot-plugged: its pages start owned by node 1, which writes them with no
 * remote fault, and node 0 reads them back exactly.  A hot-plug is
 * refused, and leaves nothing plugged on any node, when a node cannot
 * plug it or has been silent; the index of the RAMBlock table it would
 * have taken is not reused.  An ejected DIMM leaves every node, and its
 * backend can be plugged again.
 */
#define DIMM_ARGS \
    "-object memory-backend-ram,id=d0,size=8M " \
    "-device distmem-dimm,id=dimm0,memdev=d0,node=1,cluster-node=1"
/* Two of a heartbeat interval (peer-timeout/5) and more, well within it */
#define DIMM_PEER_TIMEOUT   10
#define DIMM_SILENT_S       5

static void test_dimm(void)
{
    DistvmNode *node[2];
    QDict *resp;

    numa_pair_start_with("dimm", "128M,slots=4,maxmem=256M", DIMM_ARGS,
                         ",peer-timeout=" stringify(DIMM_PEER_TIMEOUT),
                         node);
    check_dimm_shared(node, "dimm0", "d0", 1, 0);

    backend_add(node[0]->qts, "d1");
    qtest_qmp_assert_success(node[0]->qts, "{ 'execute': 'device_add', "
        "'arguments': { 'driver': 'distmem-dimm', 'id': 'dimm1', "
        "'memdev': 'd1', 'node': 1, 'cluster-node': 1 } }");
    check_dimm_shared(node, "dimm1", "d1", 1, 1);
    g_assert_true(has_object(node[1]->qts, "/objects", "d1"));

    /* Memory is plugged on home. */
    backend_add(node[1]->qts, "d2");
    resp = qtest_qmp_assert_failure_ref(node[1]->qts,
        "{ 'execute': 'device_add', 'arguments': { 'driver': 'pc-dimm', "
        "'id': 'dimm2', 'memdev': 'd2' } }");
    g_assert_cmpstr(qdict_get_str(resp, "desc"), ==,
                    "distvm: memory is plugged on the home node (node 0), "
                    "which plugs it on every node");
    qobject_unref(resp);

    /* Node 1 cannot plug it: it has an object of the backend's id. */
    backend_add(node[0]->qts, "d2");
    dimm_add_refused(node, "dimm2", "d2", 1, "distvm: node 1 could not plug "
                     "the memory: node 1: an object 'd2' exists here "
                     "already");

    /* Node 1 is silent (stopped), and may be gone. */
    backend_add(node[0]->qts, "d3");
    kill(qtest_pid(node[1]->qts), SIGSTOP);
    g_usleep(DIMM_SILENT_S * G_USEC_PER_SEC);
    resp = qtest_qmp_assert_failure_ref(node[0]->qts,
        "{ 'execute': 'device_add', 'arguments': { 'driver': "
        "'distmem-dimm', 'id': 'dimm3', 'memdev': 'd3', 'node': 1, "
        "'cluster-node': 1 } }");
    kill(qtest_pid(node[1]->qts), SIGCONT);
    g_assert_true(g_str_has_prefix(qdict_get_str(resp, "desc"),
                                   "distvm: node 1 has been silent for "));
    qobject_unref(resp);
    while (last_heard_ms(node[0], 1) > 1000) {
        g_usleep(100 * 1000);
    }
    for (int n = 0; n < 2; n++) {
        g_assert_false(has_object(node[n]->qts, "/machine/peripheral",
                                  "dimm3"));
        g_assert_false(has_range(node[n], "d3"));
    }
    g_assert_false(has_object(node[1]->qts, "/objects", "d3"));

    /* Memory distvm cannot share */
    qtest_qmp_assert_success(node[0]->qts, "{ 'execute': 'object-add', "
        "'arguments': { 'qom-type': 'memory-backend-ram', 'id': 'd4', "
        "'size': %d, 'share': true } }", (int)(DIMM_MB * MiB));
    dimm_add_refused(node, "dimm4", "d4", 1, "distvm: RAMBlock d4 is shared "
                     "memory; guest RAM must be private (share=off)");
    /* A node that does not exist */
    dimm_add_refused(node, "dimm3", "d3", 2, "distvm: node 1 could not plug "
                     "the memory: node 1: distmem-dimm: there is no node 2 "
                     "(the cluster has nodes 0 to 1)");

    /* A plain pc-dimm, homed nowhere: node 0 owns its pages at first. */
    qtest_qmp_assert_success(node[0]->qts, "{ 'execute': 'device_add', "
        "'arguments': { 'driver': 'pc-dimm', 'id': 'dimm3', "
        "'memdev': 'd3' } }");
    check_dimm_shared(node, "dimm3", "d3", 0, 3);

    /* The guest ejects dimm1: gone from both nodes, its backend too. */
    dimm_eject(node, "dimm1");
    for (int n = 0; n < 2; n++) {
        g_assert_false(has_object(node[n]->qts, "/machine/peripheral",
                                  "dimm1"));
        g_assert_false(has_range(node[n], "d1"));
    }
    g_assert_true(has_object(node[0]->qts, "/objects", "d1"));
    g_assert_false(has_object(node[1]->qts, "/objects", "d1"));
    /* and it comes back */
    qtest_qmp_assert_success(node[0]->qts, "{ 'execute': 'device_add', "
        "'arguments': { 'driver': 'distmem-dimm', 'id': 'dimm1', "
        "'memdev': 'd1', 'node': 1, 'cluster-node': 1 } }");
    check_dimm_shared(node, "dimm1", "d1", 1, 4);
    g_assert_true(has_range(node[0], "d3") && has_range(node[1], "d3"));

    distvm_node_quit(node[1]);
    distvm_node_quit(node[0]);
}

/*
 * Data residency: 4 MiB of the guest's pattern region resident on node 2
 * are only ever present there.  The guest's vCPU, on node 0, writes its
 * pattern into them by moving to node 2 (reason residency); the other
 * nodes' accesses (qtest's, and home's IDE disk reading into the range by
 * DMA) are done on node 2; the guest's sum of the region, with what node
 * 0 and the disk wrote, is exact.
 */
#define RESIDENT_MB     8
#define RESIDENT_BASE   (DG_PATTERN_BASE + 2 * MiB)
#define RESIDENT_SIZE   (4 * MiB)
#define RESIDENT_OPTS   "residency=0x1200000+0x400000@2"

static void check_resident_pages(DistvmCluster *c)
{
    for (int n = 0; n < 3; n++) {
        g_autofree char *states = distvm_page_states(c->node[n]->qts,
                                                     RESIDENT_BASE >> 12,
                                                     RESIDENT_SIZE >> 12);

        for (size_t p = 0; states[p]; p++) {
            if (states[p] != (n == 2 ? 'E' : 'I')) {
                g_error("node %d: resident page %#" PRIx64 " is %c", n,
                        (uint64_t)(RESIDENT_BASE + p * 4096), states[p]);
            }
        }
    }
}

/*
 * The disk's read into resident RAM: the PIIX IDE controller of home (a
 * device of home's, as the guest would drive it) reads RESIDENT_DISK
 * bytes of the disk by bus-master DMA.  Its DMA reaches node 2's RAM only
 * through the accesses the overlay sends there.
 */
#define RESIDENT_DISK       (32 * KiB)
#define RESIDENT_DISK_DMA   (RESIDENT_BASE + MiB + 4 * KiB)
#define RESIDENT_PRDT       0x03800000u
#define IDE_BASE            0x1f0
#define IDE_BMDMA_BAR       0x80000920u     /* 0xcf8: 00:01.1, BAR4 */
#define IDE_COMMAND_REG     0x80000904u     /* 0xcf8: 00:01.1, command */

static uint64_t resident_disk_word(size_t i)
{
    return 0xd15c000000000000ull | (i * 0x9e3779b1u);
}

/* The accesses to resident RAM @qts's node had done on the range's node */
static int64_t resident_remote_accesses(QTestState *qts)
{
    QDict *resp = qtest_qmp(qts, "{ 'execute': 'query-distvm' }");
    QList *res = qdict_get_qlist(qdict_get_qdict(resp, "return"),
                                 "residency");
    int64_t n;

    g_assert_cmpint(qlist_size(res), ==, 1);
    n = qdict_get_int(qobject_to(QDict, qlist_peek(res)), "remote-accesses");
    qobject_unref(resp);
    return n;
}

/*
 * Start a bus-master DMA of the PIIX IDE controller of @home, as a guest
 * would: @len bytes (at most 64 KiB - 512) between guest RAM at @addr and
 * the disk from sector @lba, READ DMA into RAM if @to_ram, else WRITE DMA
 * from it.  The PRD table is at RESIDENT_PRDT.  Returns the bus master's
 * I/O port base.
 */
static uint32_t ide_dma_start(QTestState *home, uint32_t addr, uint32_t len,
                              uint32_t lba, bool to_ram)
{
    uint32_t bmdma, cmd;

    g_assert_cmpuint(len, <, 64 * KiB);
    qtest_outl(home, 0xcf8, IDE_BMDMA_BAR);
    bmdma = qtest_inl(home, 0xcfc) & ~3u;
    g_assert_cmphex(bmdma, !=, 0);      /* the firmware gave it ports */
    qtest_outl(home, 0xcf8, IDE_COMMAND_REG);
    cmd = qtest_inw(home, 0xcfc);
    qtest_outl(home, 0xcf8, IDE_COMMAND_REG);
    qtest_outw(home, 0xcfc, cmd | 0x5);          /* I/O and bus master */

    /* One PRD entry, the last */
    qtest_writel(home, RESIDENT_PRDT, addr);
    qtest_writel(home, RESIDENT_PRDT + 4, len | 0x80000000u);
    qtest_outb(home, bmdma, 0);                  /* stopped */
    qtest_outb(home, bmdma + 2, 0x06);           /* clear INTR and ERR */
    qtest_outl(home, bmdma + 4, RESIDENT_PRDT);

    qtest_outb(home, IDE_BASE + 6, 0xe0 | (lba >> 24));  /* master, LBA */
    qtest_outb(home, IDE_BASE + 2, len / 512);
    qtest_outb(home, IDE_BASE + 3, lba);
    qtest_outb(home, IDE_BASE + 4, lba >> 8);
    qtest_outb(home, IDE_BASE + 5, lba >> 16);
    qtest_outb(home, IDE_BASE + 7, to_ram ? 0xc8 : 0xca);  /* READ/WRITE DMA */
    qtest_outb(home, bmdma, to_ram ? 0x09 : 0x01);  /* start, direction */
    return bmdma;
}

/* Wait for the DMA ide_dma_start() started, and check it succeeded. */
static void ide_dma_wait(QTestState *home, uint32_t bmdma)
{
    uint8_t st;

    for (int tries = 0; (st = qtest_inb(home, bmdma + 2)) & 0x01; tries++) {
        g_assert_cmpint(tries, <, 1200);
        g_usleep(50 * 1000);
    }
    qtest_outb(home, bmdma, 0);
    g_assert_cmphex(st & 0x06, ==, 0x04);         /* done, no error */
    g_assert_cmphex(qtest_inb(home, IDE_BASE + 7) & 0x89, ==, 0);
}

static void resident_disk_read(QTestState *home)
{
    int64_t accesses = resident_remote_accesses(home);

    ide_dma_wait(home, ide_dma_start(home, RESIDENT_DISK_DMA, RESIDENT_DISK,
                                     0, true));
    /* At most 8 bytes an access */
    g_assert_cmpint(resident_remote_accesses(home) - accesses, >=,
                    RESIDENT_DISK / 8);
}

static void test_residency(void)
{
    g_autofree char *disk = g_strdup_printf("%s/resident-disk.img", tmpdir);
    g_autofree uint64_t *disk_data = g_new(uint64_t, RESIDENT_DISK / 8);
    g_autofree char *guest = guest_args("1", "pattern="
                                        stringify(RESIDENT_MB));
    /*
     * Every node describes the same machine; only home runs the disk.  The
     * others open the image, without locks, but never read it.
     */
    g_autofree char *args = g_strdup_printf("%s -drive if=ide,index=0,"
                                            "format=raw,file.locking=off,"
                                            "file=%s", guest, disk);
    DistvmCluster *c;
    const size_t len = RESIDENT_MB * MiB, chunk = 16 * KiB;
    g_autofree uint64_t *want = g_new(uint64_t, len / 8);
    g_autofree uint64_t *got = g_new(uint64_t, chunk / 8);
    uint64_t sum = 0, dma = RESIDENT_BASE + MiB;
    QDict *ev, *data, *info, *resp;
    QList *res;

    for (size_t i = 0; i < RESIDENT_DISK / 8; i++) {
        disk_data[i] = cpu_to_le64(resident_disk_word(i));
    }
    g_assert_true(g_file_set_contents(disk, (char *)disk_data, RESIDENT_DISK,
                                      NULL));
    c = distvm_cluster_start_with(tmpdir, 3, RESIDENT_OPTS, args);
    wait_magic(c->node[0], DG_MAGIC_PATTERN, 120);
    ev = distvm_wait_event(c->node[0]->qts, "DISTVM_VCPU_MOVED",
                           DISTVM_EVENT_TIMEOUT_S);
    data = qdict_get_qdict(ev, "data");
    g_assert_cmpint(qdict_get_int(data, "cpu-index"), ==, 0);
    g_assert_cmpint(qdict_get_int(data, "to"), ==, 2);
    g_assert_cmpstr(qdict_get_str(data, "reason"), ==, "residency");
    qobject_unref(ev);
    for (int n = 0; n < 3; n++) {
        g_assert_cmpint(distvm_vcpu_node(c->node[n]->qts, 0), ==, 2);
    }
    check_resident_pages(c);

    for (size_t i = 0; i < len / 8; i++) {
        want[i] = dg_pattern(DG_PATTERN_BASE + i * 8);
    }
    /* Node 0 writes a page of it, as a DMA would, on node 2. */
    for (size_t i = 0; i < 512; i++) {
        want[(dma - DG_PATTERN_BASE) / 8 + i] = 0x5eed0000 + i;
        qtest_writeq(c->node[0]->qts, dma + i * 8, 0x5eed0000 + i);
    }
    /* The disk reads into it, on home: its DMA is done on node 2 */
    resident_disk_read(c->node[0]->qts);
    for (size_t i = 0; i < RESIDENT_DISK / 8; i++) {
        want[(RESIDENT_DISK_DMA - DG_PATTERN_BASE) / 8 + i] =
            resident_disk_word(i);
    }
    check_resident_pages(c);
    for (int n = 0; n < 3; n++) {
        g_autofree uint64_t *disk_got = g_new(uint64_t, RESIDENT_DISK / 8);

        qtest_memread(c->node[n]->qts, RESIDENT_DISK_DMA, disk_got,
                      RESIDENT_DISK);
        g_assert_cmpmem(disk_got, RESIDENT_DISK, disk_data, RESIDENT_DISK);
    }
    /* Every node reads some of it back: on node 2, or from it */
    for (int n = 0; n < 3; n++) {
        for (uint64_t a = RESIDENT_BASE - chunk;
             a < RESIDENT_BASE + RESIDENT_SIZE + chunk; a += MiB / 2) {
            qtest_memread(c->node[n]->qts, a, got, chunk);
            g_assert_cmpmem(got, chunk, &want[(a - DG_PATTERN_BASE) / 8],
                            chunk);
        }
    }
    check_resident_pages(c);

    /* The guest, on node 2 now, sums the whole region. */
    for (size_t i = 0; i < len / 8; i++) {
        sum += want[i];
    }
    qtest_writel(c->node[1]->qts,
                 DG_RESULT_BASE + offsetof(struct dg_results, mailbox_seq), 1);
    for (int tries = 0; qtest_readl(c->node[0]->qts, DG_RESULT_BASE +
                     offsetof(struct dg_results, mailbox_ack)) != 1; tries++) {
        g_assert_cmpint(tries, <, 1200);
        g_usleep(100 * 1000);
    }
    g_assert_cmphex(qtest_readq(c->node[0]->qts, DG_RESULT_BASE +
                    offsetof(struct dg_results, pattern_sum)), ==, sum);
    check_resident_pages(c);

    info = distvm_assert_active(c->node[0]->qts, 0);
    res = qdict_get_qlist(info, "residency");
    g_assert_cmpint(qlist_size(res), ==, 1);
    data = qobject_to(QDict, qlist_peek(res));
    g_assert_cmphex(qdict_get_int(data, "base"), ==, RESIDENT_BASE);
    g_assert_cmphex(qdict_get_int(data, "size"), ==, RESIDENT_SIZE);
    g_assert_cmpint(qdict_get_int(data, "node"), ==, 2);
    g_assert_cmpint(qdict_get_int(data, "vcpu-moves"), ==, 1);
    g_assert_cmpint(qdict_get_int(data, "remote-accesses"), >=, 512);
    qobject_unref(info);
    {
        g_autofree char *hmp = qtest_hmp(c->node[1]->qts, "info distvm");

        g_assert_nonnull(strstr(hmp, "resident on node 2: 0x1200000+0x400000"
                                ", "));
        g_assert_nonnull(strstr(hmp, " accesses done there for this node, 0 "
                                "vCPUs moved there\r\n"));
    }

    /* A vCPU that touches it runs on node 2: it cannot be kept away. */
    resp = qtest_qmp_assert_failure_ref(c->node[1]->qts, "{ 'execute': "
        "'distvm-set-vcpu-nodes', 'arguments': { 'cpu-index': 0, "
        "'nodes': [ 0, 1 ] } }");
    g_assert_cmpstr(qdict_get_str(resp, "desc"), ==, "distvm: vCPU 0 must "
                    "be allowed on node 2, where guest RAM 0x1200000+0x400000 "
                    "is resident: a vCPU that touches it runs there");
    qobject_unref(resp);
    qtest_qmp_assert_success(c->node[1]->qts, "{ 'execute': "
        "'distvm-set-vcpu-nodes', 'arguments': { 'cpu-index': 0, "
        "'nodes': [ 2 ] } }");
    distvm_cluster_quit(c);
}

#define XCODE_ROUNDS 2000
#define XRES(field) (DG_RESULT_BASE + offsetof(struct dg_results, field))

/*
 * Code rewritten while it runs (mode=xcode of the guest): vCPU 0 rewrites
 * a function 2000 times while vCPU 1, on the same node, and vCPU 2, on
 * the other, keep calling it.  The writes wait for the page (vCPU 2's
 * node reads it each time), and meanwhile vCPU 1 may translate the code
 * again: none of them may leave it running what the page held before the
 * write.  Linux rewrites its code so (static keys, alternatives).
 * DG_XCODE_STOLEN: vCPU 2 also writes a word of data in the page before
 * each write, so that the page is gone from node 0 and its code with it:
 * vCPU 0's write and vCPU 1's translation then both wait for the page.
 * DG_XCODE_IDLE: vCPU 1 runs none of the code before a write, and starts
 * with it, so that the page holds no code on node 0 when it is written.
 */
static void test_xcode(const void *data)
{
    int how = GPOINTER_TO_INT(data);
    g_autofree char *append = g_strdup_printf("cpus=3 xhow=%d xcode=%d", how,
                                              XCODE_ROUNDS);
    g_autofree char *args = guest_args("3", append);
    DistvmCluster *c = distvm_cluster_start_with(tmpdir, 2, "placement=0:0:1",
                                                 args);
    QTestState *home = c->node[0]->qts;
    g_autofree char *console = NULL;

    /* The console says each round a vCPU did not see in time. */
    wait_magic(c->node[0], DG_MAGIC_DONE, 300);
    for (int n = 0; n < 2; n++) {
        for (int cpu = 0; cpu < 3; cpu++) {
            g_assert_cmpint(distvm_vcpu_node(c->node[n]->qts, cpu), ==,
                            cpu == 2);
        }
    }
    g_test_message("calls: vCPU 1 %u, vCPU 2 %u; stale: %u, %u; "
                   "of which the code's memory was old too: %u, %u",
                   qtest_readl(home, XRES(xcode_calls) + 4),
                   qtest_readl(home, XRES(xcode_calls) + 8),
                   qtest_readl(home, XRES(xcode_stale) + 4),
                   qtest_readl(home, XRES(xcode_stale) + 8),
                   qtest_readl(home, XRES(xcode_stale_data) + 4),
                   qtest_readl(home, XRES(xcode_stale_data) + 8));
    g_assert_cmpuint(qtest_readl(home, XRES(xcode_round)), ==, XCODE_ROUNDS);
    g_assert_cmpuint(qtest_readl(home, XRES(xcode_timeouts)), ==, 0);
    for (int cpu = 1; cpu < 3; cpu++) {
        /* In DG_XCODE_IDLE, vCPU 1 returned the odd rounds' values */
        g_assert_cmpuint(qtest_readl(home, XRES(xcode_seen) + cpu * 4), ==,
                         how == DG_XCODE_IDLE && cpu == 1 ?
                         XCODE_ROUNDS - 1 : XCODE_ROUNDS);
        g_assert_cmpuint(qtest_readl(home, XRES(xcode_stale) + cpu * 4), ==,
                         0);
        g_assert_cmpuint(qtest_readl(home, XRES(xcode_calls) + cpu * 4), >=,
                         XCODE_ROUNDS / 2);
    }
    /*
     * The writes waited: node 1 read the code page back each round, so
     * that node 0 had to ask for it again to write it (with the page of
     * xcode_round, it is among the pages node 0 asked for most).
     */
    {
        QDict *resp = qtest_qmp(home, "{ 'execute': "
            "'x-query-distvm-hot-pages', 'arguments': { 'count': 4 } }");
        QList *hot = qdict_get_qlist(resp, "return");
        int64_t faults = -1;

        g_assert(hot);
        for (const QListEntry *e = qlist_first(hot); e; e = qlist_next(e)) {
            QDict *h = qobject_to(QDict, qlist_entry_obj(e));

            if (!strcmp(qdict_get_str(h, "ramblock"), "pc.ram") &&
                qdict_get_int(h, "page") == DG_XCODE_BASE >> 12) {
                faults = qdict_get_int(h, "faults");
            }
        }
        g_test_message("node 0 asked for the code page %" PRId64 " times",
                       faults);
        g_assert_cmpint(faults, >=, XCODE_ROUNDS / 2);
        qobject_unref(resp);
    }
    /* mov $XCODE_ROUNDS, %eax; ret, on both nodes */
    for (int n = 0; n < 2; n++) {
        g_assert_cmphex(qtest_readb(c->node[n]->qts, DG_XCODE_BASE), ==,
                        0xb8);
        g_assert_cmphex(qtest_readl(c->node[n]->qts, DG_XCODE_BASE + 1), ==,
                        XCODE_ROUNDS);
        g_assert_cmphex(qtest_readb(c->node[n]->qts, DG_XCODE_BASE + 5), ==,
                        0xc3);
        g_assert_cmpuint(qtest_readl(c->node[n]->qts,
                                     DG_XCODE_BASE + DG_XCODE_DATA), ==,
                         how == DG_XCODE_STOLEN ? XCODE_ROUNDS : 0);
    }
    console = distvm_read_console(c->node[0]);
    distvm_assert_console_clean(console);
    distvm_cluster_quit(c);
}

/*
 * Whether query-distvm on node @n of @c lists @base+@size resident on
 * @node, its pages gathered
 */
static bool resident_range_active(DistvmCluster *c, int n, uint64_t base,
                                  uint64_t size, uint32_t node)
{
    QDict *info = distvm_assert_active(c->node[n]->qts, n);
    QList *res = qdict_haskey(info, "residency") ?
                 qdict_get_qlist(info, "residency") : NULL;
    bool active = false;

    for (const QListEntry *e = res ? qlist_first(res) : NULL; e;
         e = qlist_next(e)) {
        QDict *r = qobject_to(QDict, qlist_entry_obj(e));

        if (qdict_get_int(r, "base") == base &&
            qdict_get_int(r, "size") == size) {
            g_assert_cmpint(qdict_get_int(r, "node"), ==, node);
            active = !qdict_get_bool(r, "gathering");
        }
    }
    qobject_unref(info);
    return active;
}

static void set_residency_refused(QTestState *qts, int64_t base,
                                  int64_t size, int node, const char *want)
{
    QDict *resp = qtest_qmp_assert_failure_ref(qts, "{ 'execute': "
        "'distvm-set-residency', 'arguments': { 'base': %" PRId64 ", "
        "'size': %" PRId64 ", 'node': %d } }", base, size, node);

    g_assert_cmpstr(qdict_get_str(resp, "desc"), ==, want);
    qobject_unref(resp);
}

/*
 * Make @base+@size resident on @node, on home, and wait for home's
 * DISTVM_RESIDENT, then for every node to know
 */
static void set_residency(DistvmCluster *c, uint64_t base, uint64_t size,
                          uint32_t node)
{
    QTestState *home = c->node[0]->qts;
    QDict *ev, *data;

    qtest_qmp_assert_success(home, "{ 'execute': 'distvm-set-residency', "
                             "'arguments': { 'base': %" PRId64 ", "
                             "'size': %" PRId64 ", 'node': %d } }",
                             (int64_t)base, (int64_t)size, (int)node);
    ev = distvm_wait_event(home, "DISTVM_RESIDENT", DISTVM_EVENT_TIMEOUT_S);
    data = qdict_get_qdict(ev, "data");
    g_assert_cmphex(qdict_get_int(data, "base"), ==, base);
    g_assert_cmphex(qdict_get_int(data, "size"), ==, size);
    g_assert_cmpint(qdict_get_int(data, "node"), ==, node);
    qobject_unref(ev);
    for (int n = 0; n < 3; n++) {
        for (int tries = 0; !resident_range_active(c, n, base, size, node);
             tries++) {
            g_assert_cmpint(tries, <, 100);
            g_usleep(100 * 1000);
        }
    }
}

/*
 * Residency set while the guest runs (distvm-set-residency): the guest's
 * vCPU, on node 0, wrote its pattern; the 4 MiB of it made resident on
 * node 2 keep their data, end up present on node 2 only, and the vCPU
 * that sums the region moves there (reason residency).  Then 1 MiB next
 * to it becomes resident on home.  Bad requests are refused with an
 * error naming the problem, and change nothing.
 */
static void test_residency_set(void)
{
    g_autofree char *args = guest_args("1", "pattern="
                                       stringify(RESIDENT_MB));
    DistvmCluster *c = distvm_cluster_start(tmpdir, 3, args);
    QTestState *home = c->node[0]->qts;
    const size_t len = RESIDENT_MB * MiB;
    g_autofree uint64_t *got = g_new(uint64_t, RESIDENT_SIZE / 8);
    uint64_t sum = 0;
    QDict *ev, *data;
    int tries;

    wait_magic(c->node[0], DG_MAGIC_PATTERN, 120);
    /* Asked of another node, or badly: refused */
    set_residency_refused(c->node[1]->qts, RESIDENT_BASE, RESIDENT_SIZE, 2,
                          "distvm: distvm-set-residency is asked of the "
                          "home node (node 0) of a cluster");
    set_residency_refused(home, RESIDENT_BASE, RESIDENT_SIZE, 3,
                          "distvm: there is no node 3 (the cluster has "
                          "nodes 0 to 2)");
    set_residency_refused(home, RESIDENT_BASE + 1, RESIDENT_SIZE, 2,
                          "distvm: residency: 0x1200001+0x400000 is not a "
                          "non-empty range of whole 4 KiB pages");
    set_residency_refused(home, 4 * KiB, 4 * KiB, 2,
                          "distvm: residency: [0x1000, 0x2000) is below "
                          "1 MiB, where firmware and SMRAM are");
    set_residency_refused(home, 127 * MiB, 2 * MiB, 2,
                          "distvm: residency: [0x7f00000, 0x8100000) is not "
                          "all in one range of guest RAM");
    qtest_qmp_assert_success(home, "{ 'execute': 'distvm-set-vcpu-nodes', "
                             "'arguments': { 'cpu-index': 0, "
                             "'nodes': [ 0, 1 ] } }");
    set_residency_refused(home, RESIDENT_BASE, RESIDENT_SIZE, 2,
                          "distvm: vCPU 0 may not run on node 2 "
                          "(distvm-set-vcpu-nodes), where a vCPU that "
                          "touches RAM resident there must run");
    qtest_qmp_assert_success(home, "{ 'execute': 'distvm-set-vcpu-nodes', "
                             "'arguments': { 'cpu-index': 0 } }");
    for (int n = 0; n < 3; n++) {
        QDict *info = distvm_assert_active(c->node[n]->qts, n);

        g_assert_false(qdict_haskey(info, "residency"));
        qobject_unref(info);
    }

    set_residency(c, RESIDENT_BASE, RESIDENT_SIZE, 2);
    check_resident_pages(c);
    set_residency_refused(home, RESIDENT_BASE + 2 * MiB, RESIDENT_SIZE, 1,
                          "distvm: residency: 0x1400000+0x400000 overlaps "
                          "0x1200000+0x400000, resident on node 2");

    /* The pattern is still there, read on node 2 or from it */
    for (int n = 0; n < 3; n++) {
        qtest_memread(c->node[n]->qts, RESIDENT_BASE, got, RESIDENT_SIZE);
        for (size_t i = 0; i < RESIDENT_SIZE / 8; i++) {
            if (got[i] != dg_pattern(RESIDENT_BASE + i * 8)) {
                g_error("node %d: %#" PRIx64 " holds %#" PRIx64 ", not %#"
                        PRIx64, n, (uint64_t)(RESIDENT_BASE + i * 8), got[i],
                        dg_pattern(RESIDENT_BASE + i * 8));
            }
        }
    }

    /* The guest sums the whole region: its vCPU moves to node 2 for it */
    for (size_t i = 0; i < len / 8; i++) {
        sum += dg_pattern(DG_PATTERN_BASE + i * 8);
    }
    qtest_writel(c->node[1]->qts,
                 DG_RESULT_BASE + offsetof(struct dg_results, mailbox_seq), 1);
    ev = distvm_wait_event(home, "DISTVM_VCPU_MOVED", DISTVM_EVENT_TIMEOUT_S);
    data = qdict_get_qdict(ev, "data");
    g_assert_cmpint(qdict_get_int(data, "cpu-index"), ==, 0);
    g_assert_cmpint(qdict_get_int(data, "to"), ==, 2);
    g_assert_cmpstr(qdict_get_str(data, "reason"), ==, "residency");
    qobject_unref(ev);
    for (tries = 0; qtest_readl(home, DG_RESULT_BASE +
                     offsetof(struct dg_results, mailbox_ack)) != 1; tries++) {
        g_assert_cmpint(tries, <, 1200);
        g_usleep(100 * 1000);
    }
    g_assert_cmphex(qtest_readq(home, DG_RESULT_BASE +
                    offsetof(struct dg_results, pattern_sum)), ==, sum);
    check_resident_pages(c);

    /* Another range, on home itself, next to it: its pattern stays too */
    set_residency(c, RESIDENT_BASE + RESIDENT_SIZE, MiB, 0);
    for (int n = 0; n < 3; n++) {
        g_autofree char *states = distvm_page_states(c->node[n]->qts,
            (RESIDENT_BASE + RESIDENT_SIZE) >> 12, MiB >> 12);

        for (size_t p = 0; states[p]; p++) {
            g_assert_cmpint(states[p], ==, n == 0 ? 'E' : 'I');
        }
        qtest_memread(c->node[n]->qts, RESIDENT_BASE + RESIDENT_SIZE, got,
                      MiB);
        for (size_t i = 0; i < MiB / 8; i++) {
            g_assert_cmphex(got[i], ==, dg_pattern(RESIDENT_BASE +
                                                   RESIDENT_SIZE + i * 8));
        }
    }
    {
        g_autofree char *hmp = qtest_hmp(c->node[1]->qts, "info distvm");

        g_assert_nonnull(strstr(hmp, "resident on node 2: 0x1200000+0x400000"
                                ", "));
        g_assert_nonnull(strstr(hmp, "resident on node 0: 0x1600000+0x100000"
                                ", "));
    }
    distvm_cluster_quit(c);
}

#define SWAPPED_BASE    0x02000000u     /* above the guest's pattern */
#define SWAPPED_PAGES   16384u          /* 64 MiB */
#define SWAPPED_LIMIT   (32 * MiB)

static uint64_t swapped_word(uint64_t page)
{
    return 0x5a9000000000000ull | page;
}

/* Run @argv, which must succeed; its output is not the test's (TAP) */
static void run_ok(const char *const *argv)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *out = NULL;
    g_autofree char *errout = NULL;
    int status;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL,
                      NULL, &out, &errout, &status, &err) ||
        !g_spawn_check_exit_status(status, &err)) {
        g_error("%s failed: %s %s%s", argv[0], err ? err->message : "",
                out ?: "", errout ?: "");
    }
}

/* Whether the host has swap space on (a line below /proc/swaps' header) */
static bool host_has_swap(void)
{
    g_autofree char *swaps = NULL;

    g_assert_true(g_file_get_contents("/proc/swaps", &swaps, NULL, NULL));
    return strchr(swaps, '\n') && strchr(swaps, '\n')[1];
}

/*
 * A memory cgroup (v1 or v2) holding process @pid: the memory it touches
 * from now on is counted there.  Returns its directory, to remove once
 * the process is gone.
 */
static char *memory_cgroup(pid_t pid)
{
    bool v1 = g_file_test("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                          G_FILE_TEST_EXISTS);
    char *dir = g_strdup_printf("/sys/fs/cgroup/%sdistvm-test-%d",
                                v1 ? "memory/" : "", (int)pid);
    g_autofree char *members = g_build_filename(dir, "cgroup.procs", NULL);
    g_autofree char *procs = g_strdup_printf("%d", (int)pid);

    if (!v1) {
        distvm_cgroup_write("/sys/fs/cgroup/cgroup.subtree_control",
                            "+memory");
    }
    g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
    if (!distvm_cgroup_write(members, procs)) {
        g_error("cannot put process %d in %s: %s", (int)pid, dir,
                g_strerror(errno));
    }
    return dir;
}

static void memory_cgroup_limit(const char *dir, uint64_t limit)
{
    bool v1 = g_str_has_prefix(dir, "/sys/fs/cgroup/memory/");
    g_autofree char *file = g_build_filename(dir, v1 ? "memory.limit_in_bytes"
                                                    : "memory.max", NULL);
    g_autofree char *text = g_strdup_printf("%" PRIu64, limit);

    if (!distvm_cgroup_write(file, text)) {
        g_error("cannot limit %s to %" PRIu64 " bytes: %s", dir, limit,
                g_strerror(errno));
    }
}

/* VmSwap of process @pid, in KiB */
static uint64_t process_swap_kib(pid_t pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/status", (int)pid);
    g_autofree char *status = NULL;
    const char *swap;

    g_assert_true(g_file_get_contents(path, &status, NULL, NULL));
    swap = strstr(status, "VmSwap:");
    g_assert_nonnull(swap);
    return g_ascii_strtoull(swap + strlen("VmSwap:"), NULL, 10);
}

/*
 * A node that quits while home's disk still writes data it holds: home's
 * IDE disk, throttled, has a WRITE DMA of a buffer that node 1 wrote
 * waiting in its throttle queue when node 1 quits (SIGTERM).  Node 1
 * serves its pages until home stopped its guest and drained the disk, so
 * the disk gets the data, not zero pages; both nodes exit with status 0.
 */
#define LEAVE_BUF       0x03000000u
#define LEAVE_PRIME     0x03400000u
#define LEAVE_LEN       (32 * KiB)

static void test_leave_disk_write(void)
{
    g_autofree char *disk = g_strdup_printf("%s/leave-disk.img", tmpdir);
    g_autofree char *guest = guest_args("1", "pattern=1");
    /*
     * 4 KiB/s: the priming write passes, and the next one waits about 8 s
     * in the throttle queue, or until home drains the disk.
     */
    g_autofree char *args = g_strdup_printf("%s -drive if=ide,index=0,"
                                            "format=raw,file.locking=off,"
                                            "throttling.bps-write=4096,"
                                            "file=%s", guest, disk);
    g_autofree uint64_t *want = g_new(uint64_t, LEAVE_LEN / 8);
    g_autofree char *got = NULL;
    g_autofree char *states = NULL;
    gsize got_len;
    DistvmCluster *c;
    uint32_t bmdma;

    g_assert_true(g_file_set_contents(disk, "", 0, NULL));
    g_assert_cmpint(truncate(disk, MiB), ==, 0);
    c = distvm_cluster_start(tmpdir, 2, args);
    wait_magic(c->node[0], DG_MAGIC_PATTERN, 120);

    /* A first write, of home's zero pages, fills the throttle's bucket. */
    ide_dma_wait(c->node[0]->qts, ide_dma_start(c->node[0]->qts, LEAVE_PRIME,
                                                LEAVE_LEN, 1024, false));

    /* Node 1 writes the buffer: its pages are node 1's alone. */
    for (size_t i = 0; i < LEAVE_LEN / 8; i++) {
        want[i] = cpu_to_le64(0x1eaf000000000000ull | (i * 0x9e3779b1u));
    }
    qtest_memwrite(c->node[1]->qts, LEAVE_BUF, want, LEAVE_LEN);
    states = distvm_page_states(c->node[0]->qts, LEAVE_BUF >> 12,
                                LEAVE_LEN >> 12);
    g_assert_cmpstr(states, ==, "IIIIIIII");

    bmdma = ide_dma_start(c->node[0]->qts, LEAVE_BUF, LEAVE_LEN, 0, false);
    g_usleep(200 * 1000);
    /* Still waiting in the throttle queue: nothing of it was read yet */
    g_assert_cmphex(qtest_inb(c->node[0]->qts, bmdma + 2) & 0x01, ==, 0x01);
    g_free(states);
    states = distvm_page_states(c->node[0]->qts, LEAVE_BUF >> 12,
                                LEAVE_LEN >> 12);
    g_assert_cmpstr(states, ==, "IIIIIIII");

    /* Node 1 quits; home drains its disk first, then ends too. */
    distvm_node_quit(c->node[1]);
    c->node[1] = NULL;
    qtest_wait_qemu(c->node[0]->qts);

    g_assert_true(g_file_get_contents(disk, &got, &got_len, NULL));
    g_assert_cmpuint(got_len, ==, MiB);
    g_assert_cmpmem(got, LEAVE_LEN, want, LEAVE_LEN);
    distvm_cluster_quit(c);
}

/*
 * Every node quits at once (SIGTERM to all three): each answers the
 * others' END while it waits for theirs, so all exit with status 0 well
 * before a node that waited for an answer would give up (10 s).
 */
static void test_leave_together(void)
{
    g_autofree char *guest = guest_args("2", "pattern=1");
    DistvmCluster *c = distvm_cluster_start_with(tmpdir, 3, "placement=1:2",
                                                 guest);
    gint64 start;

    wait_magic(c->node[0], DG_MAGIC_PATTERN, 120);
    start = g_get_monotonic_time();
    for (int n = 0; n < 3; n++) {
        g_assert_cmpint(kill(qtest_pid(c->node[n]->qts), SIGTERM), ==, 0);
    }
    for (int n = 0; n < 3; n++) {
        qtest_wait_qemu(c->node[n]->qts);
    }
    g_assert_cmpint(g_get_monotonic_time() - start, <, 8 * G_USEC_PER_SEC);
    distvm_cluster_quit(c);
}

/*
 * A page its owner's host swapped out holds data: another node that asks
 * for it gets the data, not zeros (mincore(), asked before, took such a
 * page for one never touched).  qtest writes a word in each of 64 MiB of
 * pages on node 0, which owns them, held by a memory cgroup that it then
 * limits to 32 MiB, with swap on (a swap file of the test's own if the
 * host has none): most of those pages go to swap.  Node 1 reads every
 * word back.
 */
static void test_swapped_out(void)
{
    g_autofree char *args = guest_args("1", "pattern=8");
    g_autofree char *swapfile = NULL;
    g_autofree char *cgroup = NULL;
    uint64_t swapped_kib, wrong = 0;
    DistvmCluster *c;
    pid_t pid;

    if (!host_has_swap()) {
        swapfile = g_strdup_printf("/var/tmp/distvm-test-swap-%d",
                                   (int)getpid());
        run_ok((const char *[]) { "fallocate", "-l", "256M", swapfile, NULL });
        g_assert_cmpint(chmod(swapfile, 0600), ==, 0);
        run_ok((const char *[]) { "mkswap", swapfile, NULL });
        run_ok((const char *[]) { "swapon", swapfile, NULL });
    }
    c = distvm_cluster_start(tmpdir, 2, args);
    pid = qtest_pid(c->node[0]->qts);
    cgroup = memory_cgroup(pid);
    for (uint64_t p = 0; p < SWAPPED_PAGES; p++) {
        qtest_writeq(c->node[0]->qts, SWAPPED_BASE + p * 4096,
                     swapped_word(p));
    }
    memory_cgroup_limit(cgroup, SWAPPED_LIMIT);
    swapped_kib = process_swap_kib(pid);
    g_test_message("node 0 has %" PRIu64 " KiB in swap", swapped_kib);
    for (uint64_t p = 0; p < SWAPPED_PAGES; p++) {
        uint64_t got = qtest_readq(c->node[1]->qts, SWAPPED_BASE + p * 4096);

        if (got != swapped_word(p) && !wrong++) {
            g_test_message("page %#" PRIx64 ", owned by node 0, reads %#"
                           PRIx64 " on node 1, not %#" PRIx64,
                           (uint64_t)SWAPPED_BASE + p * 4096, got,
                           swapped_word(p));
        }
    }
    qobject_unref(distvm_assert_active(c->node[1]->qts, 1));

    /* Put the host back as it was before any verdict */
    memory_cgroup_limit(cgroup, 1 * GiB);
    distvm_cluster_quit(c);
    g_assert_cmpint(rmdir(cgroup), ==, 0);
    if (swapfile) {
        run_ok((const char *[]) { "swapoff", swapfile, NULL });
        g_assert_cmpint(unlink(swapfile), ==, 0);
    }
    g_assert_cmpuint(swapped_kib, >=, 16 * KiB);
    g_assert_cmpuint(wrong, ==, 0);
}

/* A residency that cannot be is refused when the node starts. */
static void test_residency_bad(void)
{
    static const struct {
        const char *residency;
        const char *message;
    } cases[] = {
        { "0x1200000+0x400000@2", "distvm: residency=0x1200000+0x400000@2: "
          "there is no node 2 (the cluster has nodes 0 to 1)" },
        { "0x1200000+0x400", "is not BASE+SIZE@NODE" },
        { "0x1200800+0x1000@1", "is not a non-empty range of whole 4 KiB "
          "pages" },
        { "0x1000000+0x200000@1:0x1100000+0x1000@0", "ranges "
          "0x1000000+0x200000@1 and 0x1100000+0x1000@0 overlap" },
        { "0x7ff0000+0x20000@1", "distvm: residency: [0x7ff0000, "
          "0x8010000) is not all in one range of guest RAM" },
        { "0xfffc0000+0x1000@1", "is not all in one range of guest RAM" },
        { "0x80000+0x1000@1", "distvm: residency: [0x80000, 0x81000) is "
          "below 1 MiB, where firmware and SMRAM are" },
    };
    g_autofree char *dir = g_strdup_printf("%s/residency-bad", tmpdir);

    g_assert(g_mkdir_with_parents(dir, 0700) == 0);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *opts = distvm_cluster_accel_opts(dir, 2, 1);
        g_autofree char *args = g_strdup_printf(
            "-accel distvm,%s,residency=%s,join-timeout=1 " MACHINE,
            opts, cases[i].residency);

        check_start_refused(args, cases[i].message);
    }
}

/*
 * On 3 nodes, a plug that node 1 makes and node 2 refuses leaves nothing
 * plugged anywhere, and the nodes still agree on the directory of the
 * memory plugged next: each reads exactly what another wrote into it.
 */
static void test_dimm_refused(void)
{
    DistvmCluster *c = distvm_cluster_start(tmpdir, 3, MACHINE_HOTPLUG);
    DistvmNode **node = c->node;
    const size_t len = MiB;
    g_autofree uint8_t *want = g_malloc(len);
    g_autofree uint8_t *got = g_malloc(len);
    uint64_t base;

    backend_add(node[2]->qts, "d1");
    backend_add(node[0]->qts, "d1");
    {
        QDict *resp = qtest_qmp_assert_failure_ref(node[0]->qts,
            "{ 'execute': 'device_add', 'arguments': { 'driver': "
            "'pc-dimm', 'id': 'dimm1', 'memdev': 'd1' } }");

        g_assert_cmpstr(qdict_get_str(resp, "desc"), ==,
                        "distvm: node 2 could not plug the memory: node 2: "
                        "an object 'd1' exists here already");
        qobject_unref(resp);
    }
    /* Node 1 plugged it, and unplugs it when home says so. */
    for (int tries = 0; has_object(node[1]->qts, "/objects", "d1");
         tries++) {
        g_assert_cmpint(tries, <, 100);
        g_usleep(100 * 1000);
    }
    for (int n = 0; n < 3; n++) {
        g_assert_false(has_object(node[n]->qts, "/machine/peripheral",
                                  "dimm1"));
        g_assert_false(has_range(node[n], "d1"));
    }

    backend_add(node[0]->qts, "d2");
    qtest_qmp_assert_success(node[0]->qts, "{ 'execute': 'device_add', "
        "'arguments': { 'driver': 'pc-dimm', 'id': 'dimm2', "
        "'memdev': 'd2' } }");
    base = dimm_prop(node[0]->qts, "dimm2", "addr");
    for (int n = 0; n < 3; n++) {
        QDict *r = distvm_memory_range(node[n], "d2");

        g_assert_cmpint(qdict_get_int(r, "home"), ==, 0);
        g_assert_false(qdict_get_bool(r, "numa"));
        qobject_unref(r);
        g_assert_cmphex(dimm_prop(node[n]->qts, "dimm2", "addr"), ==, base);
    }
    for (int w = 0; w < 3; w++) {
        for (size_t i = 0; i < len; i++) {
            want[i] = i * 7 + (i >> 12) + w;
        }
        qtest_memwrite(node[w]->qts, base, want, len);
        for (int n = 0; n < 3; n++) {
            distvm_memread(node[(w + n) % 3]->qts, base, got, len);
            g_assert_cmpmem(got, len, want, len);
        }
    }
    distvm_cluster_quit(c);
}

#define DIMM_BAD(numa, node) \
    "-object memory-backend-ram,id=d0,size=16M " \
    "-device distmem-dimm,memdev=d0,node=" #numa ",cluster-node=" #node

/*
 * Memory that cannot be shared between nodes is refused (shared, backed
 * by a file, locked, or read and written by a disk that bypasses the
 * host's page cache), and so is a
 * distmem-dimm on a node that does not exist or in a guest NUMA node of
 * another node; a NUMA node whose vCPUs are split between nodes stays on
 * node 0, with a warning.  Without distvm, the distmem devices refuse to
 * start.
 */

static void test_numa_bad(void)
{
    static const struct {
        const char *args;
        const char *message;
    } cases[] = {
        { "-object memory-backend-ram,id=m0,size=64M,share=on "
          "-object memory-backend-ram,id=m1,size=64M "
          "-numa node,memdev=m0,cpus=0 -numa node,memdev=m1,cpus=1",
          "RAMBlock m0 is shared memory" },
        { "-object memory-backend-file,id=m0,size=64M,mem-path=/dev/shm,"
          "share=off -object memory-backend-ram,id=m1,size=64M "
          "-numa node,memdev=m0,cpus=0 -numa node,memdev=m1,cpus=1",
          "RAMBlock m0 is backed by a file" },
        { "-object memory-backend-ram,id=m0,size=64M "
          "-object memory-backend-ram,id=m1,size=64M "
          "-numa node,memdev=m0,cpus=0-1 -numa node,memdev=m1",
          "the vCPUs of NUMA node 0 run on different nodes of the cluster: "
          "its memory stays on node 0" },
        { NUMA_OBJECTS " -m 128M,slots=1,maxmem=256M " DIMM_BAD(1, 2),
          "distmem-dimm: there is no node 2 (the cluster has nodes 0 to 1)" },
        { NUMA_OBJECTS " -m 128M,slots=1,maxmem=256M " DIMM_BAD(0, 1),
          "distmem-dimm: guest NUMA node 0 is homed on node 0, not on "
          "node 1" },
        { NUMA_OBJECTS " -m 128M,slots=1,maxmem=256M "
          "-object memory-backend-ram,id=d0,size=16M "
          "-device distmem-dimm,memdev=d0,node=1",
          "distmem-dimm needs cluster-node=N" },
        { NUMA_OBJECTS " -m 128M,slots=1,maxmem=256M "
          "-object memory-backend-ram,id=d0,size=16M,share=on "
          "-device distmem-dimm,memdev=d0,node=1,cluster-node=1",
          "RAMBlock d0 is shared memory" },
        { "-overcommit mem-lock=on",
          "guest RAM cannot be locked in memory (-overcommit mem-lock) on "
          "a cluster" },
        { "-blockdev driver=null-co,node-name=disk9,cache.direct=on",
          "block node disk9 bypasses the host's page cache" },
    }, no_distvm[] = {
        { DIMM_BAD(0, 0), "distmem-dimm needs the distvm accelerator" },
        { "-device distmem-topology",
          "distmem-topology needs the distvm accelerator" },
    };
    g_autofree char *dir = g_strdup_printf("%s/numa-bad", tmpdir);

    g_assert(g_mkdir_with_parents(dir, 0700) == 0);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *opts = distvm_cluster_accel_opts(dir, 2, 1);
        g_autofree char *args = g_strdup_printf(
            "-accel distvm,%s,placement=0:1,join-timeout=1 "
            "-machine pc -m 128M -smp 2 %s", opts, cases[i].args);

        /* Node 1, with no home to join, gives up after a second. */
        check_start_refused(args, cases[i].message);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(no_distvm); i++) {
        g_autofree char *args = g_strdup_printf(
            "-accel tcg -machine pc -m 128M,slots=1,maxmem=256M %s",
            no_distvm[i].args);

        check_start_refused(args, no_distvm[i].message);
    }
}

/*
 * A node killed while it owns pages: the others report it lost and exit
 * non-zero in bounded time, even with a vCPU waiting for one of its pages.
 */
static void test_node_killed(void)
{
    g_autofree char *args = guest_args("2", "cpus=2 stress=1");
    DistvmCluster *c = distvm_cluster_start(tmpdir, 3, args);
    QTestState *victim = c->node[2]->qts;
    int status;
    gint64 t0;

    g_assert_true(distvm_wait_console(c->node[0], "distvm-guest: all cpus up",
                                      60));
    /* Node 2 takes pages the guest's vCPUs keep writing. */
    for (uint64_t a = DG_STRESS_BASE; a < DG_STRESS_BASE + (64 << 12);
         a += 4096) {
        qtest_writeq(victim, a, 0x1234);
    }
    t0 = g_get_monotonic_time();
    kill(qtest_pid(victim), SIGKILL);
    g_assert_cmpint(waitpid(qtest_pid(victim), &status, 0), ==,
                    qtest_pid(victim));
    g_assert_true(WIFSIGNALED(status));
    /* Its QTestState is left alone: the process is already reaped. */
    c->node[2] = NULL;

    for (int n = 0; n < 2; n++) {
        QTestState *qts = c->node[n]->qts;
        QDict *ev;

        qtest_set_expected_status(qts, 1);
        ev = distvm_wait_event(qts, "DISTVM_NODE_LOST", DISTVM_EVENT_TIMEOUT_S);
        g_assert_cmpint(qdict_get_int(qdict_get_qdict(ev, "data"), "node"),
                        ==, 2);
        qobject_unref(ev);
        qtest_wait_qemu(qts);
    }
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 20 * G_USEC_PER_SEC);
    distvm_cluster_quit(c);
}

/*
 * A node that stops answering (SIGSTOP) is declared lost within
 * peer-timeout, and every node exits with an error: the survivors at
 * once, the stopped node as soon as it runs again.
 */
#define STOPPED_PEER_TIMEOUT 2

static void test_node_stopped(void)
{
    g_autofree char *args = guest_args("2", "cpus=2 stress=1");
    DistvmCluster *c = distvm_cluster_start_with(
        tmpdir, 3, "peer-timeout=" stringify(STOPPED_PEER_TIMEOUT), args);
    QTestState *victim = c->node[2]->qts;
    bool timeout_named = false;
    gint64 t0;

    g_assert_true(distvm_wait_console(c->node[0], "distvm-guest: all cpus up",
                                      60));

    /*
     * A stopped guest sends no page or I/O message: the heartbeats alone
     * keep every node heard of, well within peer-timeout.
     */
    qtest_qmp_assert_success(c->node[0]->qts, "{ 'execute': 'stop' }");
    g_usleep(3 * STOPPED_PEER_TIMEOUT * G_USEC_PER_SEC);
    for (int n = 0; n < 3; n++) {
        QDict *info = distvm_assert_active(c->node[n]->qts, n);
        QListEntry *e;

        g_assert_cmpstr(qdict_get_str(info, "state"), ==, "running");
        QLIST_FOREACH_ENTRY(qdict_get_qlist(info, "node-list"), e) {
            QDict *peer = qobject_to(QDict, qlist_entry_obj(e));

            if (qdict_get_bool(peer, "self")) {
                g_assert_false(qdict_haskey(peer, "last-heard-ms"));
                continue;
            }
            g_assert_cmpint(qdict_get_int(peer, "last-heard-ms"), <,
                            STOPPED_PEER_TIMEOUT * 1000 / 2);
            g_assert_true(qdict_haskey(peer, "queued-bytes"));
        }
        qobject_unref(info);
    }
    qtest_qmp_assert_success(c->node[0]->qts, "{ 'execute': 'cont' }");

    /* Node 2 takes pages the guest's vCPUs keep writing. */
    for (uint64_t a = DG_STRESS_BASE; a < DG_STRESS_BASE + (64 << 12);
         a += 4096) {
        qtest_writeq(victim, a, 0x1234);
    }
    t0 = g_get_monotonic_time();
    kill(qtest_pid(victim), SIGSTOP);

    for (int n = 0; n < 2; n++) {
        QTestState *qts = c->node[n]->qts;
        QDict *ev, *data;
        gint64 lost_us;

        qtest_set_expected_status(qts, 1);
        ev = distvm_wait_event(qts, "DISTVM_NODE_LOST", DISTVM_EVENT_TIMEOUT_S);
        lost_us = g_get_monotonic_time() - t0;
        data = qdict_get_qdict(ev, "data");
        g_test_message("node %d: node %" PRId64 " lost after %" PRId64
                       " ms: %s", n, qdict_get_int(data, "node"),
                       lost_us / 1000, qdict_get_str(data, "reason"));
        g_assert_cmpint(qdict_get_int(data, "node"), ==, 2);
        timeout_named |= strstr(qdict_get_str(data, "reason"),
                                "peer-timeout") != NULL;
        g_assert_cmpint(lost_us, <,
                        (STOPPED_PEER_TIMEOUT + 2) * G_USEC_PER_SEC);
        qobject_unref(ev);
        qtest_wait_qemu(qts);
    }
    g_assert_true(timeout_named);
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 10 * G_USEC_PER_SEC);

    /* Woken up, node 2 finds its peers gone and leaves with an error. */
    t0 = g_get_monotonic_time();
    kill(qtest_pid(victim), SIGCONT);
    qtest_set_expected_status(victim, 1);
    qtest_wait_qemu(victim);
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 10 * G_USEC_PER_SEC);
    distvm_cluster_quit(c);
}

/* ---- TLS ---- */

static void send_and_expect_drop(const char *path, const void *buf,
                                 size_t len, bool half_close);

/*
 * Every connection of a 3-node cluster is TLS with x509 certificates
 * that the authz object must accept: pages, moves, I/O and interrupts
 * all go over it, and the guest's result is exact.
 */
static void test_tls(void)
{
    const uint32_t iters = 50000;
    g_autofree char *dir = distvm_make_tls_dir(tmpdir, "tls-node",
                                               "distvm-node", "");
    g_autofree char *objects = distvm_tls_objects(dir);
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        "%s " MACHINE " -smp 2 -kernel %s -append 'cpus=2 iters=%u'",
        objects, elf, iters);
    DistvmCluster *c = distvm_cluster_start_with(
        tmpdir, 3, "tls-creds=tls0,tls-authz=authz0,placement=1:2", args);

    wait_magic(c->node[0], DG_MAGIC_DONE, 300);
    for (int n = 0; n < 3; n++) {
        QDict *info = distvm_assert_active(c->node[n]->qts, n);

        g_assert_true(qdict_get_bool(info, "tls"));
        g_assert_cmpint(qdict_get_int(info, "protocol-errors"), ==, 0);
        qobject_unref(info);
        g_assert_cmpint(distvm_vcpu_node(c->node[n]->qts, 0), ==, 1);
        g_assert_cmpint(distvm_vcpu_node(c->node[n]->qts, 1), ==, 2);
        distvm_check_smp_memory(c->node[n]->qts, 2, iters);
    }
    distvm_cluster_quit(c);
}

/*
 * A node whose certificate the authz object does not name, and a node
 * without TLS, are refused while the cluster forms; the home node goes
 * on, and the right node then joins.
 */
static void test_tls_refused(void)
{
    g_autofree char *good = distvm_make_tls_dir(tmpdir, "tls-good",
                                                "distvm-node", "");
    g_autofree char *bad = distvm_make_tls_dir(tmpdir, "tls-intruder",
                                               "intruder", "");
    g_autofree char *dir = g_strdup_printf("%s/cluster-tls-refused", tmpdir);
    g_autofree char *objects = distvm_tls_objects(good);
    g_autofree char *bad_objects = distvm_tls_objects(bad);
    g_autofree char *machine = guest_args("2", "cpus=2 stress=1");
    g_autofree char *home_args = g_strdup_printf("%s %s", objects, machine);
    g_autofree char *home_base = NULL, *home_opts = NULL, *node_opts = NULL;
    static const struct {
        const char *what;
        bool tls;
        bool intruder;
    } cases[] = {
        { "a certificate the authz object does not name", true, true },
        { "no TLS", false, false },
    };
    DistvmNode *home, *node;

    g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
    home_base = distvm_cluster_accel_opts(dir, 2, 0);
    home_opts = g_strdup_printf("%s,tls-creds=tls0,tls-authz=authz0,"
                                "join-timeout=3", home_base);
    node_opts = distvm_cluster_accel_opts(dir, 2, 1);
    home = distvm_node_start(dir, 0, home_opts, home_args);

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *args = g_strdup_printf(
            "-accel distvm,%s%s %s %s", node_opts,
            cases[i].tls ? ",tls-creds=tls0,tls-authz=authz0" : "",
            cases[i].tls ? (cases[i].intruder ? bad_objects : objects) : "",
            machine);
        g_autofree char *out = NULL;
        int status = distvm_run_qemu(args, &out);

        g_test_message("node 1 with %s: exit %d: %s", cases[i].what, status,
                       out);
        g_assert_cmpint(status, ==, 1);
        g_assert_nonnull(strstr(out, "home node"));
        /* Home refused it, and waits on for the cluster to form. */
        g_assert_cmpint(distvm_protocol_errors(home->qts), ==, i + 1);
        distvm_wait_state(home->qts, "joining", 1);
    }

    /* A connection that never starts its handshake: dropped, counted once. */
    {
        g_autofree char *sock0 = g_strdup_printf("%s/node0.sock", dir);

        send_and_expect_drop(sock0, NULL, 0, false);
        g_assert_cmpint(distvm_protocol_errors(home->qts), ==,
                        G_N_ELEMENTS(cases) + 1);
    }

    {
        g_autofree char *opts = g_strdup_printf(
            "%s,tls-creds=tls0,tls-authz=authz0", node_opts);
        g_autofree char *args = g_strdup_printf("%s %s", objects, machine);

        node = distvm_node_start(dir, 1, opts, args);
    }
    distvm_wait_state(home->qts, "running", 60);
    distvm_wait_state(node->qts, "running", 60);
    g_assert_true(distvm_wait_console(home, "distvm-guest: all cpus up", 60));
    distvm_node_quit(node);
    distvm_node_quit(home);
}

/* ---- nodes on separate network stacks ---- */

#define NETNS_NODES 3
#define NETNS_PEER_TIMEOUT 2

/*
 * A 3-node cluster in three network namespaces, over TCP and TLS (x509
 * certificates that name each node's address): the guest's vCPUs run on
 * nodes 1 and 2 and its result is exact.  Then node 2's link goes down:
 * every node declares the node it can no longer hear lost within
 * peer-timeout, and exits with an error.
 */
static void test_netns(void)
{
    const uint32_t iters = 50000;
    int subnet = getpid() % 200 + 20;
    g_autofree char *prefix = g_strdup_printf("dvm%d-", (int)getpid());
    g_autofree char *ips = g_strdup_printf("ip_address = 10.199.%d.1\n"
                                           "ip_address = 10.199.%d.2\n"
                                           "ip_address = 10.199.%d.3\n",
                                           subnet, subnet, subnet);
    g_autofree char *dir = distvm_make_tls_dir(tmpdir, "tls-netns",
                                               "distvm-node", ips);
    g_autofree char *objects = distvm_tls_objects(dir);
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        "%s " MACHINE " -smp 2 -kernel %s -append 'cpus=2 iters=%u'",
        objects, elf, iters);
    g_autofree char *binary = g_strdup(g_getenv("QTEST_QEMU_BINARY"));
    DistvmNode *node[NETNS_NODES];
    gint64 t0;

    distvm_netns_setup(prefix, subnet, NETNS_NODES);
    for (int i = 0; i < NETNS_NODES; i++) {
        g_autofree char *in_ns = g_strdup_printf("ip netns exec %s%d %s",
                                                 prefix, i, binary);
        g_autofree char *home = i ? g_strdup_printf(
            "home=tcp:10.199.%d.1:4440,", subnet) : g_strdup("");
        g_autofree char *opts = g_strdup_printf(
            "node-id=%d,nodes=%d,listen=tcp:10.199.%d.%d:%d,%s"
            "tls-creds=tls0,tls-authz=authz0,placement=1:2,peer-timeout=%d",
            i, NETNS_NODES, subnet, i + 1, 4440 + i, home,
            NETNS_PEER_TIMEOUT);

        g_setenv("QTEST_QEMU_BINARY", in_ns, true);
        node[i] = distvm_node_start(tmpdir, i, opts, args);
    }
    g_setenv("QTEST_QEMU_BINARY", binary, true);
    for (int i = 0; i < NETNS_NODES; i++) {
        distvm_wait_state(node[i]->qts, "running", 60);
    }
    wait_magic(node[0], DG_MAGIC_DONE, 300);
    for (int i = 0; i < NETNS_NODES; i++) {
        QDict *info = distvm_assert_active(node[i]->qts, i);

        g_assert_true(qdict_get_bool(info, "tls"));
        qobject_unref(info);
        g_assert_cmpint(distvm_vcpu_node(node[i]->qts, 1), ==, 2);
        distvm_check_smp_memory(node[i]->qts, 2, iters);
    }

    /* A partition: node 2's link goes down. */
    t0 = g_get_monotonic_time();
    distvm_sh("ip -n %ssw link set %sp2 down", prefix, prefix);
    for (int i = 0; i < NETNS_NODES; i++) {
        QDict *ev, *data;
        gint64 lost_us;

        qtest_set_expected_status(node[i]->qts, 1);
        ev = distvm_wait_event(node[i]->qts, "DISTVM_NODE_LOST",
                               DISTVM_EVENT_TIMEOUT_S);
        lost_us = g_get_monotonic_time() - t0;
        data = qdict_get_qdict(ev, "data");
        g_test_message("node %d: node %" PRId64 " lost after %" PRId64
                       " ms: %s", i, qdict_get_int(data, "node"),
                       lost_us / 1000, qdict_get_str(data, "reason"));
        /* Node 2 hears neither of the others: it names one of them. */
        if (i == 2) {
            g_assert_cmpint(qdict_get_int(data, "node"), <, 2);
        } else {
            g_assert_cmpint(qdict_get_int(data, "node"), ==, 2);
        }
        g_assert_cmpint(lost_us, <,
                        (NETNS_PEER_TIMEOUT + 2) * G_USEC_PER_SEC);
        qobject_unref(ev);
    }
    for (int i = 0; i < NETNS_NODES; i++) {
        qtest_wait_qemu(node[i]->qts);
        distvm_node_quit(node[i]);
    }
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 10 * G_USEC_PER_SEC);
    distvm_netns_cleanup(prefix, NETNS_NODES);
}

/* ---- malformed messages on a node's listening socket ---- */

static int connect_unix(const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    g_assert(fd >= 0);
    g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
    g_assert_cmpint(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
    return fd;
}

/* Send @len bytes; wait until the node drops the connection. */
static void send_and_expect_drop(const char *path, const void *buf,
                                 size_t len, bool half_close)
{
    int fd = connect_unix(path);
    struct timeval tv = { .tv_sec = 20 };
    ssize_t ret;
    char c;

    g_assert_cmpint(send(fd, buf, len, MSG_NOSIGNAL), ==, len);
    if (half_close) {
        shutdown(fd, SHUT_WR);
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    /*
     * The node answers nothing and closes: EOF, or a reset when it closed
     * with our bytes unread, but not a timeout.
     */
    ret = recv(fd, &c, 1, 0);
    if (ret < 0) {
        g_assert_cmpint(errno, ==, ECONNRESET);
    } else {
        g_assert_cmpint(ret, ==, 0);
    }
    close(fd);
}

#define MALFORMED_JOIN_TIMEOUT 3

static void test_malformed(void)
{
    g_autofree char *args = guest_args("1", "pattern=8");
    DistvmCluster *c = distvm_cluster_start_with(
        tmpdir, 3, "join-timeout=" stringify(MALFORMED_JOIN_TIMEOUT), args);
    int silent[2 * DISTVM_WIRE_MAX_NODES];
    gint64 t0;
    g_autoptr(GByteArray) msg = g_byte_array_new();
    g_autofree char *sock1 = g_strdup_printf("%s/node1.sock", c->dir);
    g_autofree char *sock0 = g_strdup_printf("%s/node0.sock", c->dir);
    QTestState *n1 = c->node[1]->qts;
    uint8_t junk[64];
    int64_t errors = distvm_protocol_errors(n1);

    wait_magic(c->node[0], DG_MAGIC_PATTERN, 120);

    /* Bad magic. */
    memset(junk, 0xa5, sizeof(junk));
    send_and_expect_drop(sock1, junk, sizeof(junk), false);
    g_assert_cmpint(distvm_protocol_errors(n1), ==, ++errors);

    /* Truncated: a header announcing 100 bytes, then 10 and EOF. */
    distvm_wire_empty(msg, DISTVM_MSG_PING, 2, 0);
    stl_le_p(msg->data + 8, 100);
    g_byte_array_append(msg, junk, 10 - 8);
    send_and_expect_drop(sock1, msg->data, msg->len, true);
    g_assert_cmpint(distvm_protocol_errors(n1), ==, ++errors);

    /* Oversized: a 2 MiB payload. */
    distvm_wire_empty(msg, DISTVM_MSG_PING, 2, 0);
    stl_le_p(msg->data + 8, 2u << 20);
    send_and_expect_drop(sock1, msg->data, msg->len, false);
    g_assert_cmpint(distvm_protocol_errors(n1), ==, ++errors);

    /* Out of range: a page beyond the end of the first RAMBlock. */
    distvm_wire_page(msg, DISTVM_MSG_PAGE_REQ, 2, 1, 0, 1ull << 40, 2, 0,
                     NULL);
    send_and_expect_drop(sock1, msg->data, msg->len, false);
    g_assert_cmpint(distvm_protocol_errors(n1), ==, ++errors);

    /* A well-formed message that is not how a connection starts. */
    distvm_wire_empty(msg, DISTVM_MSG_PING, 2, 7);
    send_and_expect_drop(sock1, msg->data, msg->len, false);
    g_assert_cmpint(distvm_protocol_errors(n1), ==, ++errors);

    /* Home: a node that claims to join after the cluster formed. */
    distvm_wire_hello(msg, 1, 1, 3, "unix:/nonexistent",
                      DISTVM_WIRE_SPEED_ONE, 0, NULL, NULL);
    {
        int fd = connect_unix(sock0);
        uint8_t hdr[DISTVM_WIRE_HDR_SIZE];
        DistvmMsgHeader h;

        g_assert_cmpint(send(fd, msg->data, msg->len, MSG_NOSIGNAL), ==,
                        msg->len);
        g_assert_cmpint(recv(fd, hdr, sizeof(hdr), MSG_WAITALL), ==,
                        sizeof(hdr));
        g_assert_true(distvm_wire_parse_header(hdr, &h, &error_abort));
        g_assert_cmpint(h.type, ==, DISTVM_MSG_REFUSE);
        close(fd);
    }

    /* Every node still serves the others. */
    for (int n = 0; n < c->nodes; n++) {
        uint64_t a = DG_PATTERN_BASE + 4096 * (n + 1) + 8;

        g_assert_cmphex(qtest_readq(c->node[n]->qts, a), ==, dg_pattern(a));
        distvm_wait_state(c->node[n]->qts, "running", 1);
    }

    /*
     * Connections that say nothing: 32 wait, the 33rd is refused at once,
     * and the 32 are dropped once join-timeout passed.
     */
    t0 = g_get_monotonic_time();
    for (int i = 0; i < G_N_ELEMENTS(silent); i++) {
        silent[i] = connect_unix(sock1);
    }
    send_and_expect_drop(sock1, NULL, 0, false);
    g_assert_cmpint(g_get_monotonic_time() - t0, <,
                    MALFORMED_JOIN_TIMEOUT * G_USEC_PER_SEC);
    g_assert_cmpint(distvm_protocol_errors(n1), ==, ++errors);
    for (int i = 0; i < G_N_ELEMENTS(silent); i++) {
        struct timeval tv = { .tv_sec = MALFORMED_JOIN_TIMEOUT + 5 };
        char ch;

        setsockopt(silent[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        g_assert_cmpint(recv(silent[i], &ch, 1, 0), ==, 0);
        close(silent[i]);
    }
    g_assert_cmpint(g_get_monotonic_time() - t0, >=,
                    MALFORMED_JOIN_TIMEOUT * G_USEC_PER_SEC);
    errors += G_N_ELEMENTS(silent);
    g_assert_cmpint(distvm_protocol_errors(n1), ==, errors);
    /* The cluster still serves. */
    g_assert_cmpint(distvm_vcpu_node(c->node[2]->qts, 0), ==, 0);

    distvm_cluster_quit(c);
}

/*
 * A relay between node 1 and the home node that adds a subsection to the
 * x86 CPU part of each VCPU_STATE passing from node 1: one that only KVM
 * fills in, as a node running KVM would send it.
 */
typedef struct KvmOnlySubsection {
    const char *name;
    uint32_t version;
    size_t len;                 /* its fields' bytes (zeros) */
} KvmOnlySubsection;

static const KvmOnlySubsection kvm_only_subsections[] = {
    /*
     * Known to any build with KVM, which would load it through a pointer
     * that TCG leaves NULL; unknown to a build without KVM.
     */
    { "cpu/nested_state", 1, 0 },
    /* Known to every build: refused by distvm alone (one u64 MSR). */
    { "cpu/async_pf_msr", 1, 8 },
};

typedef struct StateRelay {
    int listen_fd;
    char *home_path;
    const KvmOnlySubsection *sub;
    int added;                  /* subsections added, atomic */
} StateRelay;

typedef struct RelayPump {
    int from, to;
    StateRelay *relay;          /* rewrite VCPU_STATE, or NULL: copy */
} RelayPump;

static bool read_full(int fd, void *buf, size_t len)
{
    for (size_t done = 0; done < len;) {
        ssize_t n = read(fd, (uint8_t *)buf + done, len - done);

        if (n <= 0) {
            return false;
        }
        done += n;
    }
    return true;
}

/* Where the x86 CPU's first subsection starts in a vCPU state, or -1. */
static ssize_t cpu_subsection_offset(const uint8_t *state, size_t len)
{
    for (size_t i = 0; i + 6 <= len; i++) {
        size_t n = state[i + 1];

        if (state[i] == 0x05 /* QEMU_VM_SUBSECTION */ && n > 4 &&
            i + 2 + n <= len && !memcmp(state + i + 2, "cpu/", 4)) {
            return i;
        }
    }
    return -1;
}

static void *relay_pump(void *opaque)
{
    RelayPump *p = opaque;
    uint8_t hdr[DISTVM_WIRE_HDR_SIZE];

    while (read_full(p->from, hdr, sizeof(hdr))) {
        uint32_t len = ldl_le_p(hdr + 8);
        g_autoptr(GByteArray) msg = g_byte_array_sized_new(len + 64);

        g_byte_array_append(msg, hdr, sizeof(hdr));
        g_byte_array_set_size(msg, sizeof(hdr) + len);
        if (!read_full(p->from, msg->data + sizeof(hdr), len)) {
            break;
        }
        if (p->relay && lduw_le_p(hdr + 6) == DISTVM_MSG_VCPU_STATE) {
            /* cpu, from, to, reserved, value; then the state */
            const size_t state_at = DISTVM_WIRE_HDR_SIZE + 24;
            ssize_t at = cpu_subsection_offset(msg->data + state_at,
                                               msg->len - state_at);
            const KvmOnlySubsection *k = p->relay->sub;
            g_autoptr(GByteArray) sub = g_byte_array_new();
            uint8_t head[2] = { 0x05 /* QEMU_VM_SUBSECTION */,
                                strlen(k->name) };
            uint8_t version[4];

            g_assert_cmpint(at, >=, 0);
            stl_be_p(version, k->version);
            g_byte_array_append(sub, head, sizeof(head));
            g_byte_array_append(sub, (const uint8_t *)k->name, head[1]);
            g_byte_array_append(sub, version, sizeof(version));
            g_byte_array_set_size(sub, sub->len + k->len);
            memset(sub->data + sub->len - k->len, 0, k->len);

            g_byte_array_set_size(msg, msg->len + sub->len);
            memmove(msg->data + state_at + at + sub->len,
                    msg->data + state_at + at,
                    msg->len - sub->len - state_at - at);
            memcpy(msg->data + state_at + at, sub->data, sub->len);
            stl_le_p(msg->data + 8, msg->len - DISTVM_WIRE_HDR_SIZE);
            qatomic_inc(&p->relay->added);
        }
        if (qemu_write_full(p->to, msg->data, msg->len) != msg->len) {
            break;
        }
    }
    shutdown(p->to, SHUT_WR);
    g_free(p);
    return NULL;
}

/* Relay the one connection node 1 makes to home (its join and mesh). */
static void *relay_thread(void *opaque)
{
    StateRelay *r = opaque;
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int node = accept(r->listen_fd, NULL, NULL);
    int home = socket(AF_UNIX, SOCK_STREAM, 0);
    RelayPump *up = g_new0(RelayPump, 1), *down = g_new0(RelayPump, 1);
    QemuThread t;

    g_assert_cmpint(node, >=, 0);
    g_strlcpy(addr.sun_path, r->home_path, sizeof(addr.sun_path));
    g_assert_cmpint(connect(home, (struct sockaddr *)&addr, sizeof(addr)),
                    ==, 0);
    *up = (RelayPump) { .from = node, .to = home, .relay = r };
    *down = (RelayPump) { .from = home, .to = node };
    qemu_thread_create(&t, "relay-up", relay_pump, up, QEMU_THREAD_DETACHED);
    qemu_thread_create(&t, "relay-down", relay_pump, down,
                       QEMU_THREAD_DETACHED);
    return NULL;
}

/* Wait up to @timeout_s s for @qts's QEMU to exit; it is not reaped. */
static bool qemu_exited(QTestState *qts, int timeout_s)
{
    for (int i = 0; i < timeout_s * 50; i++) {
        siginfo_t info = { 0 };

        if (!waitid(P_PID, qtest_pid(qts), &info,
                    WEXITED | WNOHANG | WNOWAIT) && info.si_pid) {
            return true;
        }
        g_usleep(20 * 1000);
    }
    return false;
}

/*
 * A vCPU state carrying a section that only KVM fills in is refused
 * before it is loaded: the move fails, and the cluster ends naming the
 * node that sent it (every node exits 1).
 */
static void test_kvm_only_state(gconstpointer opaque)
{
    const KvmOnlySubsection *k = opaque;
    g_autofree char *dir = g_strdup_printf("%s/kvm-only-%s", tmpdir,
                                           strchr(k->name, '/') + 1);
    g_autofree char *relay_path = g_strdup_printf("%s/relay.sock", dir);
    g_autofree char *opts0 = NULL, *opts1 = NULL;
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    StateRelay relay = { .sub = k };
    DistvmNode *node[2];
    QemuThread t;
    QDict *ev;
    const char *reason;

    g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
    relay.home_path = g_strdup_printf("%s/node0.sock", dir);
    relay.listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    g_strlcpy(addr.sun_path, relay_path, sizeof(addr.sun_path));
    g_assert_cmpint(bind(relay.listen_fd, (struct sockaddr *)&addr,
                         sizeof(addr)), ==, 0);
    g_assert_cmpint(listen(relay.listen_fd, 1), ==, 0);
    qemu_thread_create(&t, "relay", relay_thread, &relay, QEMU_THREAD_JOINABLE);

    opts0 = g_strdup_printf("node-id=0,nodes=2,listen=unix:%s,"
                            "placement=0:1", relay.home_path);
    opts1 = g_strdup_printf("node-id=1,nodes=2,listen=unix:%s/node1.sock,"
                            "home=unix:%s,placement=0:1", dir, relay_path);
    node[0] = distvm_node_start(dir, 0, opts0, MACHINE " -smp 2 -S");
    node[1] = distvm_node_start(dir, 1, opts1, MACHINE " -smp 2 -S");
    for (int i = 0; i < 2; i++) {
        distvm_wait_state(node[i]->qts, "running", 60);
        qtest_set_expected_status(node[i]->qts, 1);
    }
    qemu_thread_join(&t);

    /*
     * Not waiting for the answer: home may end, its event out, before its
     * main loop answers (the state can come back that soon); the event
     * is what counts.
     */
    qtest_qmp_send(node[0]->qts, "{ 'execute': 'distvm-move-vcpu', "
                   "'arguments': { 'cpu-index': 1, 'node': 0 } }");
    if (!qemu_exited(node[0]->qts, 30)) {
        g_error("the home node took a vCPU state carrying %s", k->name);
    }
    g_assert_cmpint(qatomic_read(&relay.added), ==, 1);
    /* Its last words are still in the QMP socket. */
    ev = distvm_wait_event(node[0]->qts, "DISTVM_NODE_LOST",
                           DISTVM_EVENT_TIMEOUT_S);
    g_assert_cmpint(qdict_get_int(qdict_get_qdict(ev, "data"), "node"), ==, 1);
    reason = qdict_get_str(qdict_get_qdict(ev, "data"), "reason");
    g_assert_nonnull(strstr(reason, "state of vCPU 1 that cannot be loaded"));
    g_assert_nonnull(strstr(reason, "only KVM uses"));
    qobject_unref(ev);
    for (int i = 0; i < 2; i++) {
        qtest_wait_qemu(node[i]->qts);
        distvm_node_quit(node[i]);
    }
    close(relay.listen_fd);
    g_free(relay.home_path);
}

/* The index of RAMBlock @block in the page protocol: its place in @memory. */
static uint32_t block_index(DistvmNode *node, const char *block)
{
    QDict *info = distvm_assert_active(node->qts, node->node_id);
    QList *mem = qdict_get_qlist(info, "memory");
    uint32_t i = 0;

    for (const QListEntry *e = qlist_first(mem); e; e = qlist_next(e), i++) {
        QDict *r = qobject_to(QDict, qlist_entry_obj(e));

        if (!strcmp(qdict_get_str(r, "ramblock"), block)) {
            qobject_unref(info);
            return i;
        }
    }
    g_assert_not_reached();
}

#define FORGED_ARGS \
    "-machine pc -m 128M -smp 2,maxcpus=4 -S " \
    "-object memory-backend-ram,id=m0,size=64M " \
    "-object memory-backend-ram,id=m1,size=64M " \
    "-numa node,nodeid=0,memdev=m0,cpus=0,cpus=2 " \
    "-numa node,nodeid=1,memdev=m1,cpus=1,cpus=3"

/*
 * Node @src forges a vCPU message (distvm_wire_vcpu()'s arguments, with
 * the header's @seq) to node @dst, which refuses it: its protocol errors
 * reach @errors.
 */
static void forge_vcpu(DistvmNode **node, uint32_t src, uint32_t dst,
                       DistvmMsgType type, uint32_t cpu, uint32_t from,
                       uint32_t to, uint64_t value, const char *data,
                       uint64_t seq, int64_t errors)
{
    g_autoptr(GByteArray) msg = g_byte_array_new();

    distvm_wire_vcpu(msg, type, src, cpu, from, to, value, data,
                     data ? strlen(data) : 0);
    distvm_wire_set_seq(msg, seq);
    distvm_forge(node[src], dst, msg);
    distvm_wait_protocol_errors(node[dst]->qts, errors);
}

/*
 * Messages forged by a member of the cluster, one for each rule of who
 * may send what: node 1 sends them to node 0, which refuses each one
 * (protocol-errors counts it) and goes on serving, its memory untouched;
 * and node 0 sends node 1 a device access's result it did not ask for.
 * Node 0 manages and owns m0 (NUMA home), node 1 m1; vCPU 0 runs on
 * node 0, and vCPU 3 does not exist (maxcpus).
 */
static void test_forged(void)
{
    DistvmCluster *c = distvm_cluster_start_with(tmpdir, 2,
                                                 "placement=0:1:0:1",
                                                 FORGED_ARGS);
    DistvmNode **node = c->node;
    g_autoptr(GByteArray) msg = g_byte_array_new();
    const uint64_t p0 = 16, p1 = 16, base1 = NUMA_BLOCK_MB * MiB;
    const uint64_t a0 = p0 * DISTVM_PAGE_SIZE;
    const uint64_t a1 = base1 + p1 * DISTVM_PAGE_SIZE;
    uint8_t page[DISTVM_PAGE_SIZE], got[DISTVM_PAGE_SIZE];
    uint8_t other[DISTVM_PAGE_SIZE];
    uint32_t m0, m1;
    int64_t errors;
    struct {
        DistvmMsgType type;
        bool m1;                /* a page of m1, else of m0 */
        uint32_t node, flags;
        bool data;
    } page_msgs[] = {
        /* Only a page's manager forwards, invalidates or grants it. */
        { DISTVM_MSG_PAGE_FWD, false, 1, DISTVM_PAGE_WRITE },
        { DISTVM_MSG_PAGE_FWD, false, 1, 0 },
        { DISTVM_MSG_PAGE_INV, false, 1, 0 },
        { DISTVM_MSG_PAGE_GRANT, false, 0, DISTVM_PAGE_WRITE },
        /* A node asks for itself, and the page's manager. */
        { DISTVM_MSG_PAGE_REQ, false, 0, DISTVM_PAGE_WRITE },
        { DISTVM_MSG_PAGE_REQ, true, 1, 0 },
        { DISTVM_MSG_PAGE_DONE, true, 1, 0 },
        /* Acknowledges only what the manager asked. */
        { DISTVM_MSG_PAGE_INV_ACK, false, 1, 0 },
        /* Finishes only a request of its own that runs. */
        { DISTVM_MSG_PAGE_DONE, false, 1, 0 },
        /* Data only for the node it reaches, and that asked for it. */
        { DISTVM_MSG_PAGE_DATA, false, 1, DISTVM_PAGE_ZERO },
        { DISTVM_MSG_PAGE_DATA, false, 0, DISTVM_PAGE_WRITE, true },
        /* Only a page's manager gives it in a run, deciding it itself. */
        { DISTVM_MSG_PAGE_DATA, false, 0,
          DISTVM_PAGE_WRITE | DISTVM_PAGE_ZERO | DISTVM_PAGE_RUN },
        { DISTVM_MSG_PAGE_FWD, true, 1, DISTVM_PAGE_WRITE | DISTVM_PAGE_RUN },
        /* Only a page's manager sends data that needs no PAGE_DONE. */
        { DISTVM_MSG_PAGE_DATA, false, 0,
          DISTVM_PAGE_ZERO | DISTVM_PAGE_FINAL },
        /* Its manager grants a page only to a node that asked. */
        { DISTVM_MSG_PAGE_GRANT, true, 0,
          DISTVM_PAGE_WRITE | DISTVM_PAGE_FINAL },
    };

    for (int b = 0; b < 2; b++) {
        QDict *r = distvm_memory_range(node[0], b ? "m1" : "m0");

        g_assert_cmpint(qdict_get_int(r, "home"), ==, b);
        qobject_unref(r);
    }
    m0 = block_index(node[0], "m0");
    m1 = block_index(node[0], "m1");
    memset(page, 0x5a, sizeof(page));
    memset(other, 0xc3, sizeof(other));
    qtest_memwrite(node[0]->qts, a0, page, sizeof(page));
    qtest_memwrite(node[1]->qts, a1, other, sizeof(other));
    errors = distvm_protocol_errors(node[0]->qts);

    for (size_t i = 0; i < G_N_ELEMENTS(page_msgs); i++) {
        distvm_wire_page(msg, page_msgs[i].type, 1, 0,
                         page_msgs[i].m1 ? m1 : m0, page_msgs[i].m1 ? p1 : p0,
                         page_msgs[i].node, page_msgs[i].flags,
                         page_msgs[i].data ? other : NULL);
        distvm_forge(node[1], 0, msg);
        distvm_wait_protocol_errors(node[0]->qts, ++errors);
    }
    /* Requests in one message: each refused alone (node 1 manages m1). */
    {
        const DistvmPageRef reqs[] = {
            { .block = m1, .page = p1 },
            { .block = m1, .flags = DISTVM_PAGE_WRITE, .page = p1 + 1 },
        };

        distvm_wire_page_reqs(msg, 1, reqs, G_N_ELEMENTS(reqs));
        distvm_forge(node[1], 0, msg);
        errors += G_N_ELEMENTS(reqs);
        distvm_wait_protocol_errors(node[0]->qts, errors);
    }
    /* Run state only from home; the vCPU's state only from its owner. */
    distvm_wire_empty(msg, DISTVM_MSG_START, 1, 1);
    distvm_forge(node[1], 0, msg);
    distvm_wait_protocol_errors(node[0]->qts, ++errors);
    forge_vcpu(node, 1, 0, DISTVM_MSG_VCPU_STATE, 0, 1, 0, 0, "forged", 99,
               ++errors);
    /* Only a vCPU's destination reports its move, and not to its owner. */
    forge_vcpu(node, 1, 0, DISTVM_MSG_VCPU_MOVED, 0, 0, 1, 0, NULL, 99,
               ++errors);
    forge_vcpu(node, 1, 0, DISTVM_MSG_VCPU_MOVED, 1, 1, 0, 0, NULL, 99,
               ++errors);
    /* vCPU 3 does not exist. */
    distvm_wire_vcpu(msg, DISTVM_MSG_VCPU_MOVE, 1, 3, 0, 1, 0, NULL, 0);
    distvm_forge(node[1], 0, msg);
    distvm_wait_protocol_errors(node[0]->qts, ++errors);
    /*
     * Residency: only home asks for a range, or has one covered; node 0
     * asked for none, makes none resident, and node 1 made none active.
     */
    for (uint32_t step = DISTVM_RES_SET_ASK; step < DISTVM_RES_SET__MAX;
         step++) {
        distvm_wire_res_set(msg, 1, &(DistvmMsgResSet) {
            .base = a0, .size = 4096, .step = step,
            .node = step == DISTVM_RES_SET_ASK ||
                    step == DISTVM_RES_SET_COVERED ? 0 : 1,
        });
        distvm_forge(node[1], 0, msg);
        distvm_wait_protocol_errors(node[0]->qts, ++errors);
    }
    {
        QDict *info = distvm_assert_active(node[0]->qts, 0);

        g_assert_false(qdict_haskey(info, "residency"));
        qobject_unref(info);
    }
    /*
     * From the home node: a device access's result that vCPU 1, on node
     * 1, did not ask for (an inb of port 0x80).
     */
    distvm_wire_io(msg, DISTVM_MSG_IO_REPLY, 0, &(DistvmMsgIo) {
                       .cpu = 1, .space = DISTVM_IO_PORT, .size = 1,
                       .addr = 0x80 });
    distvm_wire_set_seq(msg, 12345);
    distvm_forge(node[0], 1, msg);
    distvm_wait_protocol_errors(node[1]->qts, 1);
    /*
     * From the home node: an access to a device node 1 does not run (it
     * runs none).  Node 1 answers that it failed, which node 0 refuses in
     * turn: its vCPU 0 asked for nothing.
     */
    distvm_wire_io(msg, DISTVM_MSG_IO_REQ, 0, &(DistvmMsgIo) {
                       .cpu = 0, .space = DISTVM_IO_MEMORY, .size = 4,
                       .addr = 0xfebf0000 });
    distvm_wire_set_seq(msg, 777);
    distvm_forge(node[0], 1, msg);
    distvm_wait_protocol_errors(node[1]->qts, 2);
    distvm_wait_protocol_errors(node[0]->qts, ++errors);
    /* From the home node: the unplug of a CPU that was not hot-plugged */
    distvm_wire_cpu_unplug(msg, 0, 1);
    distvm_forge(node[0], 1, msg);
    distvm_wait_protocol_errors(node[1]->qts, 3);
    /*
     * From the home node: a control command of a network card whose queue
     * pairs node 1 would serve; there is no such card (queue-nodes)
     */
    distvm_wire_net_ctrl(msg, 0, "/machine/unattached/device[0]",
                         (const uint8_t[]) { 4, 0, 2, 0 }, 4);
    distvm_forge(node[0], 1, msg);
    distvm_wait_protocol_errors(node[1]->qts, 4);
    /*
     * A queue pair's move: from the home node, of no such card; from node
     * 1, a move only home asks for
     */
    distvm_wire_net_pair(msg, 0, "/machine/unattached/device[0]",
                         DISTVM_NET_PAIR_MOVE, 1, 1, 2, 1);
    distvm_forge(node[0], 1, msg);
    distvm_wait_protocol_errors(node[1]->qts, 5);
    distvm_wire_net_pair(msg, 1, "/machine/unattached/device[0]",
                         DISTVM_NET_PAIR_MOVE, 1, 0, 2, 1);
    distvm_forge(node[1], 0, msg);
    distvm_wait_protocol_errors(node[0]->qts, ++errors);
    /*
     * From node 1: an access of vCPU 3, which -smp's maxcpus leaves out.
     * Home answers that it failed, which node 1 refuses in turn.
     */
    distvm_wire_io(msg, DISTVM_MSG_IO_REQ, 1, &(DistvmMsgIo) {
                       .cpu = 3, .space = DISTVM_IO_PORT, .size = 1,
                       .addr = 0x80 });
    distvm_wire_set_seq(msg, 778);
    distvm_forge(node[1], 0, msg);
    distvm_wait_protocol_errors(node[0]->qts, ++errors);
    distvm_wait_protocol_errors(node[1]->qts, 6);
    /*
     * TLB flushes: node 1 asks in node 0's name, or asks node 0 for node
     * 1; and answers a flush that node 0's vCPU 0 did not make.
     */
    forge_vcpu(node, 1, 0, DISTVM_MSG_VCPU_FLUSH, 1, 0, 0, 1, NULL, 5,
               ++errors);
    forge_vcpu(node, 1, 0, DISTVM_MSG_VCPU_FLUSH, 1, 1, 1, 1, NULL, 5,
               ++errors);
    forge_vcpu(node, 1, 0, DISTVM_MSG_VCPU_FLUSHED, 0, 1, 0, 0, NULL, 5,
               ++errors);
    /*
     * A well-formed flush of vCPU 0 in vCPU 1's name: node 0 does it and
     * answers, which node 1 refuses: its vCPU 1 asked for nothing.
     */
    forge_vcpu(node, 1, 0, DISTVM_MSG_VCPU_FLUSH, 1, 1, 0, 1, NULL, 5,
               errors);
    distvm_wait_protocol_errors(node[1]->qts, 7);
    {
        QDict *info = distvm_assert_active(node[0]->qts, 0);

        g_assert_cmpint(qdict_get_int(info, "tlb-flushes-done"), ==, 1);
        qobject_unref(info);
    }

    /* Node 0 still owns its page, as it was, and both nodes serve. */
    {
        g_autofree char *states = block_states(node[0]->qts, "m0", p0 + 1);

        g_assert_cmpint(states[p0], ==, 'E');
    }
    qtest_memread(node[0]->qts, a0, got, sizeof(got));
    g_assert_cmpmem(got, sizeof(got), page, sizeof(page));
    distvm_memread(node[1]->qts, a0, got, sizeof(got));
    g_assert_cmpmem(got, sizeof(got), page, sizeof(page));
    distvm_memread(node[0]->qts, a1, got, sizeof(got));
    g_assert_cmpmem(got, sizeof(got), other, sizeof(other));
    g_assert_cmpint(distvm_vcpu_node(node[0]->qts, 0), ==, 0);
    g_assert_cmpint(distvm_vcpu_node(node[0]->qts, 1), ==, 1);
    g_assert_cmpint(distvm_vcpu_node(node[1]->qts, 1), ==, 1);
    g_assert_cmpint(distvm_protocol_errors(node[0]->qts), ==, errors);
    g_assert_cmpint(distvm_protocol_errors(node[1]->qts), ==, 7);
    distvm_wait_state(node[0]->qts, "running", 1);
    distvm_wait_state(node[1]->qts, "running", 1);

    distvm_cluster_quit(c);
}

int main(int argc, char **argv)
{
    tmpdir = distvm_test_init(&argc, &argv, "distvm-ram-test");

    qtest_add_data_func("/distvm/ram/pattern/2-nodes", GINT_TO_POINTER(2),
                        test_pattern);
    qtest_add_data_func("/distvm/ram/pattern/3-nodes", GINT_TO_POINTER(3),
                        test_pattern);
    qtest_add_data_func("/distvm/ram/pattern/4-nodes", GINT_TO_POINTER(4),
                        test_pattern);
    qtest_add_func("/distvm/ram/stress/2-nodes", test_stress_2);
    qtest_add_data_func("/distvm/ram/warm-pages/on", GINT_TO_POINTER(1),
                        test_warm_pages);
    qtest_add_data_func("/distvm/ram/warm-pages/off", GINT_TO_POINTER(0),
                        test_warm_pages);
    qtest_add_data_func("/distvm/ram/stress/3-nodes", GINT_TO_POINTER(3),
                        test_stress);
    qtest_add_data_func("/distvm/ram/stress/4-nodes", GINT_TO_POINTER(4),
                        test_stress);
    qtest_add_func("/distvm/ram/numa/homes", test_numa_homes);
    qtest_add_func("/distvm/ram/numa/sweep", test_numa_sweep);
    qtest_add_func("/distvm/ram/numa/auto", test_numa_auto);
    qtest_add_func("/distvm/ram/numa/bad", test_numa_bad);
    qtest_add_func("/distvm/ram/numa/dimm", test_dimm);
    qtest_add_func("/distvm/ram/numa/dimm-refused", test_dimm_refused);
    qtest_add_func("/distvm/ram/residency/guest", test_residency);
    qtest_add_func("/distvm/ram/residency/bad", test_residency_bad);
    qtest_add_func("/distvm/ram/residency/set", test_residency_set);
    qtest_add_func("/distvm/ram/swapped-out", test_swapped_out);
    qtest_add_func("/distvm/ram/leave/disk-write", test_leave_disk_write);
    qtest_add_func("/distvm/ram/leave/together", test_leave_together);
    qtest_add_data_func("/distvm/ram/xcode/shared",
                        GINT_TO_POINTER(DG_XCODE_SHARED), test_xcode);
    qtest_add_data_func("/distvm/ram/xcode/stolen",
                        GINT_TO_POINTER(DG_XCODE_STOLEN), test_xcode);
    qtest_add_data_func("/distvm/ram/xcode/idle",
                        GINT_TO_POINTER(DG_XCODE_IDLE), test_xcode);
    qtest_add_func("/distvm/cluster/mismatch", test_mismatch);
    qtest_add_func("/distvm/cluster/node-killed", test_node_killed);
    qtest_add_func("/distvm/cluster/node-stopped", test_node_stopped);
    qtest_add_func("/distvm/cluster/tls", test_tls);
    qtest_add_func("/distvm/cluster/tls-refused", test_tls_refused);
    qtest_add_func("/distvm/cluster/netns", test_netns);
    qtest_add_func("/distvm/cluster/malformed", test_malformed);
    qtest_add_func("/distvm/cluster/forged", test_forged);
    for (size_t i = 0; i < G_N_ELEMENTS(kvm_only_subsections); i++) {
        const KvmOnlySubsection *k = &kvm_only_subsections[i];
        g_autofree char *path = g_strdup_printf(
            "/distvm/cluster/kvm-only-state/%s", strchr(k->name, '/') + 1);

        qtest_add_data_func(path, k, test_kvm_only_state);
    }

    return distvm_test_run(tmpdir);
}
