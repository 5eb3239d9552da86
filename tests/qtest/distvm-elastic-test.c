/*
 * distvm qtest suite: an elastic cluster, nodes that join the running
 * guest
 *
 * A cluster of nodes=4 starts with start-nodes=2; the bare-metal SMP
 * guest chains rounds of register and vector work, shared counters and a
 * spinlock-guarded record, sends IPIs around, reads the TSC and home's
 * HPET and takes LAPIC timer interrupts; node 2 joins while it runs,
 * vCPUs move onto it, it is drained and leaves; a node without node-id=
 * joins as node 3 and takes a vCPU; node 2 joins again under its id; and
 * everything the guest leaves must be exact for the rounds it ran, with
 * a checkpoint epoch every 20 ms all along.  A node whose machine
 * differs is refused while the guest keeps running.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "libqtest.h"
#include "distvm/distvm-node.h"
#include "distvm/distvm-tls-netns.h"
#include "distvm/guest/smp-workload.h"

#define MACHINE "-nodefaults -machine pc -m 128M"
#define RES(field) (DG_RESULT_BASE + offsetof(struct dg_results, field))
#define NCPUS 4
/*
 * The join test's cluster, which takes a checkpoint epoch every 20 ms
 * (replicas=1) through its joins, moves and drain
 */
#define JOIN_OPTS "start-nodes=2,placement=0:1:1:0,replicas=1," \
                  "checkpoint-ms=20"

static char *tmpdir;

/*
 * Whether query-distvm on @qts lists node @node as part of the cluster,
 * which started with @start_nodes nodes
 */
static bool node_listed(QTestState *qts, int node, int start_nodes)
{
    QDict *ret = qtest_qmp_assert_success_ref(qts, "{ 'execute': "
                                              "'query-distvm' }");
    bool present = false;

    g_assert_cmpint(qdict_get_int(ret, "start-nodes"), ==, start_nodes);
    for (const QListEntry *e = qlist_first(qdict_get_qlist(ret, "node-list"));
         e; e = qlist_next(e)) {
        QDict *n = qobject_to(QDict, qlist_entry_obj(e));

        if (qdict_get_int(n, "node-id") == node) {
            present = qdict_get_bool(n, "present");
        }
    }
    qobject_unref(ret);
    return present;
}

static bool node_present(QTestState *qts, int node)
{
    return node_listed(qts, node, 2);
}

/* Move vCPU @cpu from @from to @to, and wait until every node saw it. */
static void move_vcpu(DistvmNode **node, int nodes, int cpu, int from, int to)
{
    qtest_qmp_assert_success(node[0]->qts, "{ 'execute': 'distvm-move-vcpu', "
                             "'arguments': { 'cpu-index': %d, 'node': %d } }",
                             cpu, to);
    for (int n = 0; n < nodes; n++) {
        QDict *ev = distvm_wait_event(node[n]->qts, "DISTVM_VCPU_MOVED",
                                      DISTVM_EVENT_TIMEOUT_S);
        QDict *data = qdict_get_qdict(ev, "data");

        g_assert_cmpint(qdict_get_int(data, "cpu-index"), ==, cpu);
        g_assert_cmpint(qdict_get_int(data, "from"), ==, from);
        g_assert_cmpint(qdict_get_int(data, "to"), ==, to);
        qobject_unref(ev);
    }
}

/* Counts the STOP and RESUME events of the QTestState it is set on */
static bool count_run_events(QTestState *qts, const char *name,
                             QDict *event, void *opaque)
{
    int *count = opaque;

    if (!strcmp(name, "STOP") || !strcmp(name, "RESUME")) {
        (*count)++;
    }
    return false;               /* queued as usual */
}

/*
 * Start node @id (whose index in @node is @at) with @opts, and wait until
 * it joined: DISTVM_NODE_JOINED on home, home's guest in run state
 * @status, and nodes 0 to @at of @node listing it as present.  The join
 * holds the vCPUs without a run state change: no node emits STOP or
 * RESUME meanwhile.
 */
static void join_node(DistvmNode **node, int at, const char *dir, int id,
                      const char *opts, const char *args, const char *status)
{
    int run_events[4] = { 0 };
    QDict *ev;

    for (int n = 0; n < at; n++) {
        qtest_qmp_set_event_callback(node[n]->qts, count_run_events,
                                     &run_events[n]);
    }
    node[at] = distvm_node_start(dir, id, opts, args);
    ev = distvm_wait_event(node[0]->qts, "DISTVM_NODE_JOINED",
                           DISTVM_EVENT_TIMEOUT_S);
    g_assert_cmpint(qdict_get_int(qdict_get_qdict(ev, "data"), "node"), ==,
                    id);
    g_test_message("node %d joined; the vCPUs were held %" PRId64 " us", id,
                   qdict_get_int(qdict_get_qdict(ev, "data"), "pause-us"));
    qobject_unref(ev);
    distvm_wait_status(node[0]->qts, status, 1);
    distvm_wait_state(node[at]->qts, "running", 60);
    /* A node that joined a stopped guest starts it on the next "cont" */
    distvm_wait_status(node[at]->qts, strcmp(status, "running") ?
                       "prelaunch" : "running", 5);
    qobject_unref(distvm_assert_active(node[at]->qts, id));
    for (int n = 0; n <= at; n++) {
        for (int tries = 0; !node_present(node[n]->qts, id); tries++) {
            g_assert_cmpint(tries, <, 500);
            g_usleep(10 * 1000);
        }
    }
    for (int n = 0; n < at; n++) {
        qtest_qmp_set_event_callback(node[n]->qts, NULL, NULL);
        g_assert_cmpint(run_events[n], ==, 0);
    }
}

/*
 * Until home shows more rounds of each vCPU from @first on than @other
 * showed before: they go on working.  The wait is bounded in time, not
 * in reads: right after a join or a drain, on a loaded host, a round can
 * take seconds while the vCPUs' pages settle on their new nodes.
 */
static void wait_rounds(QTestState *home, QTestState *other, int first)
{
    int64_t deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

    for (int cpu = first; cpu < NCPUS; cpu++) {
        uint32_t rounds = qtest_readl(other, RES(rounds) + cpu * 4);

        while (qtest_readl(home, RES(rounds) + cpu * 4) <= rounds) {
            g_assert_cmpint(g_get_monotonic_time(), <, deadline);
            g_usleep(2000);
        }
    }
}

static uint32_t timer_ticks(QTestState *qts, int cpu)
{
    return qtest_readl(qts, RES(timer_ticks) + cpu * 4);
}

/*
 * Checkpoint epochs went on through it all: each of the @nodes nodes of
 * @node committed some since it last joined, and keeps pages of another
 */
static void check_epochs(DistvmNode **node, int nodes)
{
    for (int n = 0; n < nodes; n++) {
        QDict *ret = qtest_qmp_assert_success_ref(node[n]->qts, "{ 'execute': "
                                                  "'query-distvm' }");
        QDict *cp = qdict_get_qdict(ret, "checkpoint");
        uint64_t committed;

        g_assert_nonnull(cp);
        committed = qdict_get_int(cp, "committed-epoch");
        for (int tries = 0; !committed || !qdict_get_int(cp, "stored-pages");
             tries++) {
            g_assert_cmpint(tries, <, 500);
            g_usleep(10 * 1000);
            qobject_unref(ret);
            ret = qtest_qmp_assert_success_ref(node[n]->qts, "{ 'execute': "
                                               "'query-distvm' }");
            cp = qdict_get_qdict(ret, "checkpoint");
            committed = qdict_get_int(cp, "committed-epoch");
        }
        if (n == 0) {
            g_test_message("%" PRId64 " epochs committed, %" PRId64
                           " abandoned", qdict_get_int(cp, "epochs"),
                           qdict_get_int(cp, "aborted"));
        }
        qobject_unref(ret);
    }
}

/* The machine, running the bare-metal guest's move workload on NCPUS */
static char *moves_args(void)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");

    return g_strdup_printf(MACHINE " -smp %d -kernel %s -append 'cpus=%d "
                           "moves=1'", NCPUS, elf, NCPUS);
}

static void test_join(void)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = moves_args();
    g_autofree char *dir = g_strdup_printf("%s/join", tmpdir);
    const int want[NCPUS] = { 0, 2, 1, 2 };
    DistvmNode *node[4];
    g_autofree char *opts2 = NULL;
    g_autofree char *opts2_join = NULL;
    g_autofree char *out = NULL;
    g_autofree char *cmd = NULL;
    QDict *ev;
    uint32_t ticks[NCPUS];

    g_assert(g_mkdir_with_parents(dir, 0700) == 0);
    for (int n = 0; n < 2; n++) {
        g_autofree char *base = distvm_cluster_accel_opts(dir, 4, n);
        g_autofree char *opts = g_strdup_printf("%s," JOIN_OPTS, base);

        node[n] = distvm_node_start(dir, n, opts, args);
    }
    for (int n = 0; n < 2; n++) {
        distvm_wait_state(node[n]->qts, "running", 60);
        g_assert_true(node_present(node[n]->qts, 1));
        g_assert_false(node_present(node[n]->qts, 2));
    }
    g_assert_true(distvm_wait_console(node[0], "distvm-guest: all cpus up",
                                      60));

    /* Nothing goes to node 2 before it joined */
    distvm_qmp_refused(node[0]->qts,
                       "distvm: node 2 is not part of the cluster: "
                       "it has not joined (start-nodes=2), or it left",
                       "{ 'execute': 'distvm-move-vcpu', 'arguments': "
                       "{ 'cpu-index': 1, 'node': 2 } }");
    g_assert_cmpint(distvm_vcpu_node(node[1]->qts, 1), ==, 1);

    /* A node 2 with another machine is refused; the guest goes on */
    opts2 = distvm_cluster_accel_opts(dir, 4, 2);
    cmd = g_strdup_printf("-accel distvm,%s,start-nodes=2,placement=0:1:1:0,"
                          "auto-numa=off -machine pc -m 256M -smp %d "
                          "-kernel %s -append 'cpus=%d moves=1'", opts2,
                          NCPUS, elf, NCPUS);
    ticks[0] = timer_ticks(node[0]->qts, 0);
    g_assert_cmpint(distvm_run_qemu(cmd, &out), ==, 1);
    g_test_message("%s", out);
    g_assert_nonnull(strstr(out, "the home node refused this node: node 2 "
                            "differs from the home node in memory size "
                            "(-m): the home node has '134217728', node 2 "
                            "has '268435456'"));
    g_assert_false(node_present(node[0]->qts, 2));
    for (int tries = 0; timer_ticks(node[0]->qts, 0) <= ticks[0]; tries++) {
        g_assert_cmpint(tries, <, 1000);
        g_usleep(10 * 1000);
    }

    /* The same machine joins */
    opts2_join = g_strdup_printf("%s," JOIN_OPTS, opts2);
    join_node(node, 2, dir, 2, opts2_join, args, "running");
    /* It knows where every vCPU runs, and runs none */
    for (int cpu = 0; cpu < NCPUS; cpu++) {
        g_assert_cmpint(distvm_vcpu_node(node[2]->qts, cpu), ==,
                        distvm_vcpu_node(node[0]->qts, cpu));
    }

    /* vCPUs move onto it, from home and from node 1 */
    move_vcpu(node, 3, 1, 1, 2);
    move_vcpu(node, 3, 3, 0, 2);
    for (int n = 0; n < 3; n++) {
        for (int cpu = 0; cpu < NCPUS; cpu++) {
            g_assert_cmpint(distvm_vcpu_node(node[n]->qts, cpu), ==,
                            want[cpu]);
        }
    }
    /* Their timers interrupt them there, and they go on working */
    for (int cpu = 0; cpu < NCPUS; cpu++) {
        uint32_t rounds = qtest_readl(node[2]->qts, RES(rounds) + cpu * 4);

        ticks[cpu] = timer_ticks(node[2]->qts, cpu);
        for (int tries = 0;
             timer_ticks(node[0]->qts, cpu) <= ticks[cpu] + 2 ||
             qtest_readl(node[1]->qts, RES(rounds) + cpu * 4) <= rounds;
             tries++) {
            g_assert_cmpint(tries, <, 1000);
            g_usleep(2000);
        }
    }
    g_assert_cmpint(distvm_remote_faults(node[2], "pc.ram"), >, 0);

    /* Refused: drain home, or ask it of a node other than home */
    distvm_qmp_refused(node[0]->qts,
                       "distvm: the home node runs the devices and "
                       "cannot be drained",
                       "{ 'execute': 'distvm-drain-node', 'arguments': "
                       "{ 'node': 0 } }");
    distvm_qmp_refused(node[1]->qts,
                       "distvm: distvm-drain-node is asked of the "
                       "home node (node 0) of a cluster",
                       "{ 'execute': 'distvm-drain-node', 'arguments': "
                       "{ 'node': 2 } }");

    /* Node 2 is drained while the guest runs: its vCPUs go to node 1 */
    qtest_qmp_assert_success(node[0]->qts, "{ 'execute': "
                             "'distvm-drain-node', 'arguments': "
                             "{ 'node': 2, 'to': [ 1 ] } }");
    for (int n = 0; n < 2; n++) {
        unsigned moved = 0;

        /* vCPUs 1 and 3, in either order */
        for (int i = 0; i < 2; i++) {
            ev = distvm_wait_event(node[n]->qts, "DISTVM_VCPU_MOVED",
                                   DISTVM_EVENT_TIMEOUT_S);
            moved |= 1u << qdict_get_int(qdict_get_qdict(ev, "data"),
                                         "cpu-index");
            g_assert_cmpint(qdict_get_int(qdict_get_qdict(ev, "data"),
                                          "from"), ==, 2);
            g_assert_cmpint(qdict_get_int(qdict_get_qdict(ev, "data"),
                                          "to"), ==, 1);
            g_assert_cmpstr(qdict_get_str(qdict_get_qdict(ev, "data"),
                                          "reason"), ==, "drain");
            qobject_unref(ev);
        }
        g_assert_cmphex(moved, ==, 0xa);
        ev = distvm_wait_event(node[n]->qts, "DISTVM_NODE_LEFT",
                               DISTVM_EVENT_TIMEOUT_S);
        g_assert_cmpint(qdict_get_int(qdict_get_qdict(ev, "data"), "node"),
                        ==, 2);
        if (n == 0) {
            g_test_message("node 2 drained in %" PRId64 " ms",
                           qdict_get_int(qdict_get_qdict(ev, "data"),
                                         "drain-ms"));
        }
        qobject_unref(ev);
        g_assert_false(node_present(node[n]->qts, 2));
        for (int cpu = 0; cpu < NCPUS; cpu++) {
            g_assert_cmpint(distvm_vcpu_node(node[n]->qts, cpu), ==,
                            cpu == 0 ? 0 : 1);
        }
    }
    /* It exits 0 by itself; the guest runs on, without it */
    qtest_wait_qemu(node[2]->qts);
    distvm_qmp_refused(node[0]->qts,
                       "distvm: node 2 is not part of the cluster: "
                       "it has not joined (start-nodes=2), or it left",
                       "{ 'execute': 'distvm-move-vcpu', 'arguments': "
                       "{ 'cpu-index': 1, 'node': 2 } }");
    wait_rounds(node[0]->qts, node[1]->qts, 0);

    /*
     * A node without node-id= joins, and home gives it one: 3, which no
     * node had yet, rather than 2, which left.  It takes vCPU 3.  Its
     * heartbeats (to a node it sent nothing for 0.6 s, peer-timeout=3)
     * carry that id.
     */
    distvm_node_quit(node[2]);
    {
        g_autofree char *opts = g_strdup_printf(
            "nodes=4,listen=unix:%s/node3.sock,home=unix:%s/node0.sock,"
            JOIN_OPTS ",peer-timeout=3", dir, dir);

        join_node(node, 2, dir, 3, opts, args, "running");
    }
    move_vcpu(node, 3, 3, 1, 3);
    for (int n = 0; n < 3; n++) {
        for (int cpu = 0; cpu < NCPUS; cpu++) {
            g_assert_cmpint(distvm_vcpu_node(node[n]->qts, cpu), ==,
                            cpu == 0 ? 0 : cpu == 3 ? 3 : 1);
        }
    }
    /* The guest stopped, the nodes send each other heartbeats only */
    qtest_qmp_assert_success(node[0]->qts, "{ 'execute': 'stop' }");
    g_usleep(2 * G_USEC_PER_SEC);
    for (int n = 0; n < 3; n++) {
        g_assert_true(node_present(node[n]->qts, 3));
    }

    /*
     * Node 2, started again under its id, joins again, the guest stopped
     * by the user: it stays stopped, on every node, until "cont".  Then
     * vCPU 2 goes there.
     */
    join_node(node, 3, dir, 2, opts2_join, args, "paused");
    g_assert_true(node_present(node[3]->qts, 3));
    for (int n = 0; n < 3; n++) {
        distvm_wait_status(node[n]->qts, "paused", 1);
    }
    qtest_qmp_assert_success(node[0]->qts, "{ 'execute': 'cont' }");
    for (int n = 0; n < 4; n++) {
        distvm_wait_status(node[n]->qts, "running", 10);
    }
    move_vcpu(node, 4, 2, 1, 2);
    wait_rounds(node[0]->qts, node[3]->qts, 2);

    distvm_check_moves_results(node, 4, NCPUS);
    check_epochs(node, 4);
    for (int n = 3; n >= 0; n--) {
        distvm_node_quit(node[n]);
    }
}

/*
 * RAM resident on a node (distvm-residency.c) in a cluster a node joins:
 * RESIDENT_PROP on node 1 from power-on (residency=), RESIDENT_SET on
 * home, set while the guest runs.  The bare-metal guest's move workload
 * touches neither.
 */
#define RESIDENT_PROP   UINT64_C(0x2000000)
#define RESIDENT_SET    UINT64_C(0x3000000)
#define RESIDENT_SIZE   UINT64_C(0x100000)
#define RESIDENT_DATA   (16 * 1024)     /* bytes qtest writes into each */

static void fill_words(uint64_t *buf, size_t len, uint64_t seed)
{
    for (size_t i = 0; i < len / 8; i++) {
        buf[i] = seed ^ (i * 0x9e3779b97f4a7c15ull);
    }
}

/* @len bytes at @addr on @qts are @want */
static void check_words(QTestState *qts, uint64_t addr, const uint64_t *want,
                        size_t len)
{
    g_autofree uint64_t *got = g_malloc(len);

    qtest_memread(qts, addr, got, len);
    for (size_t i = 0; i < len / 8; i++) {
        if (got[i] != want[i]) {
            g_error("0x%" PRIx64 " holds 0x%" PRIx64 ", not 0x%" PRIx64,
                    addr + i * 8, got[i], want[i]);
        }
    }
}

/*
 * The accesses node 2 (@qts) had done on the node of its range at @base,
 * which must be @want_node
 */
static int64_t remote_accesses(QTestState *qts, uint64_t base,
                               int64_t want_node)
{
    QDict *info = distvm_assert_active(qts, 2);
    QList *res = qdict_get_qlist(info, "residency");
    int64_t n = -1;

    g_assert_nonnull(res);
    g_assert_cmpint(qlist_size(res), ==, 2);
    for (const QListEntry *e = qlist_first(res); e; e = qlist_next(e)) {
        QDict *r = qobject_to(QDict, qlist_entry_obj(e));

        if (qdict_get_int(r, "base") == base) {
            g_assert_cmpint(qdict_get_int(r, "size"), ==, RESIDENT_SIZE);
            g_assert_cmpint(qdict_get_int(r, "node"), ==, want_node);
            g_assert_false(qdict_get_bool(r, "gathering"));
            n = qdict_get_int(r, "remote-accesses");
        }
    }
    qobject_unref(info);
    g_assert_cmpint(n, >=, 0);
    return n;
}

/*
 * Start nodes 0 and 1 of a cluster of 3 in @dir (start-nodes=2, vCPUs
 * placed 0:1:1:0, and @extra) and wait until the guest's CPUs are all up;
 * returns node 2's -accel options, for it to join later.
 */
static char *start_two_of_three(DistvmNode **node, const char *dir,
                                const char *extra, const char *args)
{
    char *opts2 = NULL;

    g_assert(g_mkdir_with_parents(dir, 0700) == 0);
    for (int n = 0; n < 3; n++) {
        g_autofree char *base = distvm_cluster_accel_opts(dir, 3, n);
        g_autofree char *opts = g_strdup_printf(
            "%s,start-nodes=2,placement=0:1:1:0,%s", base, extra);

        if (n == 2) {
            opts2 = g_steal_pointer(&opts);
            break;
        }
        node[n] = distvm_node_start(dir, n, opts, args);
    }
    for (int n = 0; n < 2; n++) {
        distvm_wait_state(node[n]->qts, "running", 60);
    }
    g_assert_true(distvm_wait_console(node[0], "distvm-guest: all cpus up",
                                      60));
    return opts2;
}

/*
 * A node joins a guest with RAM resident on nodes: it learns the range
 * set while the guest ran (the other from its own options), holds no page
 * of either, and its accesses to them are done on their nodes, with
 * exact data both ways.
 */
static void test_join_residency(void)
{
    g_autofree char *args = moves_args();
    g_autofree char *dir = g_strdup_printf("%s/residency", tmpdir);
    g_autofree uint64_t *prop = g_malloc(RESIDENT_DATA);
    g_autofree uint64_t *set = g_malloc(RESIDENT_DATA);
    g_autofree uint64_t *joined = g_malloc(RESIDENT_DATA);
    g_autofree char *opts2 = NULL;
    DistvmNode *node[3];
    int64_t before[2];
    QDict *ev;

    opts2 = start_two_of_three(node, dir, "residency=0x2000000+0x100000@1",
                               args);

    /* Data in both ranges, written where each is (to be) resident */
    fill_words(prop, RESIDENT_DATA, 0x5052u);
    fill_words(set, RESIDENT_DATA, 0x534554u);
    qtest_memwrite(node[1]->qts, RESIDENT_PROP, prop, RESIDENT_DATA);
    qtest_memwrite(node[0]->qts, RESIDENT_SET, set, RESIDENT_DATA);
    qtest_qmp_assert_success(node[0]->qts, "{ 'execute': "
                             "'distvm-set-residency', 'arguments': { "
                             "'base': %" PRIu64 ", 'size': %" PRIu64 ", "
                             "'node': 0 } }", RESIDENT_SET, RESIDENT_SIZE);
    ev = distvm_wait_event(node[0]->qts, "DISTVM_RESIDENT",
                           DISTVM_EVENT_TIMEOUT_S);
    qobject_unref(ev);

    /* Node 2 joins: it knows both ranges, and holds none of their pages */
    join_node(node, 2, dir, 2, opts2, args, "running");
    before[0] = remote_accesses(node[2]->qts, RESIDENT_PROP, 1);
    before[1] = remote_accesses(node[2]->qts, RESIDENT_SET, 0);
    for (int r = 0; r < 2; r++) {
        g_autofree char *states = distvm_page_states(
            node[2]->qts, (r ? RESIDENT_SET : RESIDENT_PROP) >> 12,
            RESIDENT_SIZE >> 12);

        g_assert_null(strpbrk(states, "SE"));
    }

    /* Its reads and writes are done on the ranges' nodes */
    check_words(node[2]->qts, RESIDENT_PROP, prop, RESIDENT_DATA);
    check_words(node[2]->qts, RESIDENT_SET, set, RESIDENT_DATA);
    fill_words(joined, RESIDENT_DATA, 0x4a4f494eu);
    qtest_memwrite(node[2]->qts, RESIDENT_PROP + RESIDENT_DATA, joined,
                   RESIDENT_DATA);
    check_words(node[1]->qts, RESIDENT_PROP + RESIDENT_DATA, joined,
                RESIDENT_DATA);
    g_assert_cmpint(remote_accesses(node[2]->qts, RESIDENT_PROP, 1) -
                    before[0], >=, 2 * RESIDENT_DATA / 8);
    g_assert_cmpint(remote_accesses(node[2]->qts, RESIDENT_SET, 0) -
                    before[1], >=, RESIDENT_DATA / 8);
    for (int r = 0; r < 2; r++) {
        g_autofree char *states = distvm_page_states(
            node[2]->qts, (r ? RESIDENT_SET : RESIDENT_PROP) >> 12,
            RESIDENT_SIZE >> 12);

        g_assert_null(strpbrk(states, "SE"));
    }

    /* The guest went on meanwhile, on nodes 0 and 1 */
    wait_rounds(node[0]->qts, node[1]->qts, 0);
    for (int n = 2; n >= 0; n--) {
        distvm_node_quit(node[n]);
    }
}

/* The guest-physical address of DIMM @id, as query-memory-devices says */
static uint64_t dimm_addr(QTestState *qts, const char *id)
{
    QDict *ret = qtest_qmp(qts, "{ 'execute': 'query-memory-devices' }");
    QList *devs = qdict_get_qlist(ret, "return");
    uint64_t addr = UINT64_MAX;

    for (const QListEntry *e = qlist_first(devs); e; e = qlist_next(e)) {
        QDict *d = qdict_get_qdict(qobject_to(QDict, qlist_entry_obj(e)),
                                   "data");

        if (!g_strcmp0(qdict_get_try_str(d, "id"), id)) {
            addr = qdict_get_int(d, "addr");
        }
    }
    qobject_unref(ret);
    g_assert_cmphex(addr, !=, UINT64_MAX);
    return addr;
}

/*
 * A node joins a guest into which a DIMM and a CPU were plugged: home has
 * it plug them too, so that it shares the DIMM's memory (data written on
 * node 1 reads back there exactly, its pages not present there until it
 * touches them) and holds the plugged vCPU when it is moved there (the
 * bare-metal guest never starts that vCPU: it stays in wait-for-SIPI).
 */
static void test_join_plugged(void)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        "-nodefaults -machine pc -m 128M,slots=2,maxmem=256M "
        "-smp %d,maxcpus=%d -kernel %s -append 'cpus=%d moves=1'", NCPUS,
        NCPUS + 1, elf, NCPUS);
    g_autofree char *dir = g_strdup_printf("%s/plugged", tmpdir);
    g_autofree uint64_t *data = g_malloc(RESIDENT_DATA);
    g_autofree char *opts2 = NULL;
    DistvmNode *node[3];
    uint64_t addr;
    QDict *resp, *props = NULL;
    QList *slots;

    opts2 = start_two_of_three(node, dir, "auto-numa=off", args);

    /* A DIMM and a CPU plugged into the running guest, on nodes 0 and 1 */
    qtest_qmp_assert_success(node[0]->qts, "{ 'execute': 'object-add', "
        "'arguments': { 'qom-type': 'memory-backend-ram', 'id': 'm1', "
        "'size': %d } }", 64 << 20);
    qtest_qmp_assert_success(node[0]->qts, "{ 'execute': 'device_add', "
        "'arguments': { 'driver': 'pc-dimm', 'id': 'dimm1', "
        "'memdev': 'm1' } }");
    resp = qtest_qmp(node[0]->qts, "{ 'execute': 'query-hotpluggable-cpus' }");
    slots = qdict_get_qlist(resp, "return");
    for (const QListEntry *e = qlist_first(slots); e; e = qlist_next(e)) {
        QDict *slot = qobject_to(QDict, qlist_entry_obj(e));

        if (!qdict_haskey(slot, "qom-path")) {
            props = qdict_clone_shallow(qdict_get_qdict(slot, "props"));
            qdict_put_str(props, "driver", qdict_get_str(slot, "type"));
        }
    }
    qobject_unref(resp);
    g_assert_nonnull(props);
    qdict_put_str(props, "id", "cpu4");
    qtest_qmp_assert_success(node[0]->qts,
        "{ 'execute': 'device_add', 'arguments': %p }", props);
    addr = dimm_addr(node[0]->qts, "dimm1");
    g_assert_cmphex(dimm_addr(node[1]->qts, "dimm1"), ==, addr);
    g_assert_true(distvm_vcpu_exists(node[1]->qts, NCPUS));
    fill_words(data, RESIDENT_DATA, 0x44494d4du);
    qtest_memwrite(node[1]->qts, addr, data, RESIDENT_DATA);

    /* Node 2 joins: it has both, as home has them */
    join_node(node, 2, dir, 2, opts2, args, "running");
    g_assert_cmphex(dimm_addr(node[2]->qts, "dimm1"), ==, addr);
    g_assert_true(distvm_vcpu_exists(node[2]->qts, NCPUS));
    for (int cpu = 0; cpu <= NCPUS; cpu++) {
        g_assert_cmpint(distvm_vcpu_node(node[2]->qts, cpu), ==,
                        distvm_vcpu_node(node[0]->qts, cpu));
    }
    g_assert_cmpint(distvm_remote_faults(node[2], "m1"), ==, 0);
    check_words(node[2]->qts, addr, data, RESIDENT_DATA);
    g_assert_cmpint(distvm_remote_faults(node[2], "m1"), >=,
                    RESIDENT_DATA / 4096);

    /* The plugged vCPU moves onto it; the guest goes on meanwhile */
    move_vcpu(node, 3, NCPUS, distvm_vcpu_node(node[0]->qts, NCPUS), 2);
    for (int n = 0; n < 3; n++) {
        g_assert_cmpint(distvm_vcpu_node(node[n]->qts, NCPUS), ==, 2);
    }
    wait_rounds(node[0]->qts, node[1]->qts, 0);
    for (int n = 2; n >= 0; n--) {
        distvm_node_quit(node[n]);
    }
}

/* Wait until query-migrate on @qts reports @status (at most 60 s). */
static void wait_migration(QTestState *qts, const char *status)
{
    for (int tries = 0;; tries++) {
        QDict *ret = qtest_qmp_assert_success_ref(qts, "{ 'execute': "
                                                  "'query-migrate' }");
        const char *now = qdict_haskey(ret, "status") ?
                          qdict_get_str(ret, "status") : "none";
        bool done = !strcmp(now, status);

        g_assert_cmpstr(now, !=, "failed");
        qobject_unref(ret);
        if (done) {
            return;
        }
        g_assert_cmpint(tries, <, 6000);
        g_usleep(10 * 1000);
    }
}

/*
 * A guest that starts on home alone (start-nodes=1) spreads to node 1,
 * which joins, and comes back when node 1 is drained: then it is a plain
 * single-node guest again, and QEMU's own live migration moves it to a
 * fresh QEMU (plain TCG), where it finishes with exact results.  While it
 * is spread, migration is refused.
 */
static void test_collapse(void)
{
    g_autofree char *args = moves_args();
    g_autofree char *dir = g_strdup_printf("%s/collapse", tmpdir);
    g_autofree char *sock = g_strdup_printf("%s/migrate.sock", dir);
    g_autofree char *uri = g_strdup_printf("unix:%s", sock);
    DistvmNode *node[2];
    DistvmNode dest = { .node_id = 0 };
    QDict *ev, *resp;

    g_assert(g_mkdir_with_parents(dir, 0700) == 0);
    {
        g_autofree char *base = distvm_cluster_accel_opts(dir, 2, 0);
        g_autofree char *opts = g_strdup_printf("%s,start-nodes=1", base);

        node[0] = distvm_node_start(dir, 0, opts, args);
    }
    distvm_wait_state(node[0]->qts, "running", 60);
    g_assert_true(distvm_wait_console(node[0], "distvm-guest: all cpus up",
                                      60));
    {
        g_autofree char *base = distvm_cluster_accel_opts(dir, 2, 1);
        g_autofree char *opts = g_strdup_printf("%s,start-nodes=1", base);

        node[1] = distvm_node_start(dir, 1, opts, args);
    }
    ev = distvm_wait_event(node[0]->qts, "DISTVM_NODE_JOINED",
                           DISTVM_EVENT_TIMEOUT_S);
    qobject_unref(ev);
    distvm_wait_state(node[1]->qts, "running", 60);
    /* A node that asks for a node-id now is refused: none is free */
    {
        g_autofree char *cmd = g_strdup_printf(
            "-accel distvm,nodes=2,start-nodes=1,listen=unix:%s/extra.sock,"
            "home=unix:%s/node0.sock,auto-numa=off %s", dir, dir, args);
        g_autofree char *out = NULL;

        g_assert_cmpint(distvm_run_qemu(cmd, &out), ==, 1);
        g_assert_nonnull(strstr(out, "the home node refused this node: a "
                                "node asked for a node-id, and none is "
                                "free: the ids a node may join under (1 to "
                                "1, nodes=2) are all part of the cluster or "
                                "joining"));
    }
    move_vcpu(node, 2, 1, 0, 1);
    for (int tries = 0; timer_ticks(node[0]->qts, 1) < 10 ||
                        distvm_remote_faults(node[1], "pc.ram") == 0;
         tries++) {
        g_assert_cmpint(tries, <, 1000);
        g_usleep(10 * 1000);
    }

    /* Spread: QEMU's migration is refused */
    resp = qtest_qmp(node[0]->qts, "{ 'execute': 'migrate', 'arguments': "
                     "{ 'uri': %s } }", uri);
    g_assert_true(qdict_haskey(resp, "error"));
    g_assert_nonnull(strstr(qdict_get_str(qdict_get_qdict(resp, "error"),
                                          "desc"),
                            "distvm: a guest spread over several nodes "
                            "cannot be migrated"));
    qobject_unref(resp);

    /* Drained back to home: a single-node guest, QEMU migrates it */
    qtest_qmp_assert_success(node[0]->qts, "{ 'execute': "
                             "'distvm-drain-node', 'arguments': "
                             "{ 'node': 1 } }");
    ev = distvm_wait_event(node[0]->qts, "DISTVM_NODE_LEFT",
                           DISTVM_EVENT_TIMEOUT_S);
    qobject_unref(ev);
    qtest_wait_qemu(node[1]->qts);
    g_assert_cmpint(distvm_vcpu_node(node[0]->qts, 1), ==, 0);

    dest.serial_path = g_strdup_printf("%s/dest-serial.log", dir);
    dest.qts = qtest_initf("-accel tcg -serial file:%s %s -incoming %s",
                           dest.serial_path, args, uri);
    qtest_qmp_assert_success(node[0]->qts, "{ 'execute': 'migrate', "
                             "'arguments': { 'uri': %s } }", uri);
    wait_migration(node[0]->qts, "completed");
    distvm_wait_status(dest.qts, "running", 10);
    {
        uint32_t ticks = timer_ticks(dest.qts, 1);

        for (int tries = 0; timer_ticks(dest.qts, 1) <= ticks + 2; tries++) {
            g_assert_cmpint(tries, <, 1000);
            g_usleep(10 * 1000);
        }
    }
    {
        DistvmNode *on_dest[1] = { &dest };

        distvm_check_moves_results(on_dest, 1, NCPUS);
    }
    qtest_quit(dest.qts);
    g_free(dest.serial_path);
    for (int n = 1; n >= 0; n--) {
        distvm_node_quit(node[n]);
    }
}

/*
 * Drain node @drained, its vCPUs to @to: nodes 0 to @nodes - 1 (@node
 * by id, of a cluster of @start_nodes) see it go, and it exits 0.
 */
static void drain_node(DistvmNode **node, int nodes, int start_nodes,
                       int drained, int to)
{
    qtest_qmp_assert_success(node[0]->qts, "{ 'execute': "
                             "'distvm-drain-node', 'arguments': "
                             "{ 'node': %d, 'to': [ %d ] } }", drained, to);
    for (int n = 0; n < nodes; n++) {
        QDict *ev = distvm_wait_event(node[n]->qts, "DISTVM_NODE_LEFT",
                                      DISTVM_EVENT_TIMEOUT_S);

        g_assert_cmpint(qdict_get_int(qdict_get_qdict(ev, "data"), "node"),
                        ==, drained);
        if (n == 0) {
            g_test_message("node %d drained in %" PRId64 " ms", drained,
                           qdict_get_int(qdict_get_qdict(ev, "data"),
                                         "drain-ms"));
        }
        qobject_unref(ev);
        if (n != drained) {
            g_assert_false(node_listed(node[n]->qts, drained, start_nodes));
        }
    }
    qtest_wait_qemu(node[drained]->qts);       /* exit status 0 */
}

/*
 * The guest-physical address of the memory of auto-numa's guest NUMA
 * node @nid, homed on cluster node @nid here: after the NUMA nodes before
 * it, all below 4 GiB.  Checks that its home is that node.
 */
static uint64_t numa_base(DistvmNode *node, int nid)
{
    uint64_t base = 0;

    for (int i = 0; i <= nid; i++) {
        g_autofree char *id = g_strdup_printf("distvm-numa%d", i);
        QDict *r = distvm_memory_range(node, id);

        g_assert_true(qdict_get_bool(r, "numa"));
        if (i == nid) {
            g_assert_cmpint(qdict_get_int(r, "home"), ==, nid);
        } else {
            base += qdict_get_int(r, "size");
        }
        qobject_unref(r);
    }
    return base;
}

/* Bytes that qtest writes into the memory homed on each drained node */
#define DRAINED_DATA    (256 * 1024)

/*
 * Start nodes are drained while the guest runs: each hands the part of
 * the page directory it manages to another node first
 * (distvm-handoff.c), the directory of the guest NUMA node homed on it
 * (auto-numa) with it.  Three start nodes run the move workload's vCPUs;
 * node 2 is drained (its part goes to node 1), then node 1 (both parts go
 * to home); the guest, on home alone, finishes with the exact results.
 */
static void test_drain_start(void)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    /* A socket a vCPU: auto-numa makes a NUMA node a cluster node */
    g_autofree char *args = g_strdup_printf(
        MACHINE " -smp %d,sockets=%d -kernel %s -append 'cpus=%d moves=1'",
        NCPUS, NCPUS, elf, NCPUS);
    DistvmCluster *c = distvm_cluster_start_with(
        tmpdir, 3, "placement=0:1:2:2,auto-numa=on", args);
    DistvmNode **node = c->node;
    g_autofree uint64_t *data = g_malloc(DRAINED_DATA * 3);
    uint64_t addr[3];
    int64_t faults;

    g_assert_true(distvm_wait_console(node[0], "distvm-guest: all cpus up",
                                      60));
    wait_rounds(node[0]->qts, node[2]->qts, 0);
    g_assert_cmpint(distvm_remote_faults(node[2], "distvm-numa0"), >, 0);
    /* Each node writes data into its own memory, and home into node 2's */
    for (int n = 0; n < 3; n++) {
        addr[n] = numa_base(node[n], n) + 16 * 1024 * 1024;
        fill_words(data + n * DRAINED_DATA / 8, DRAINED_DATA, n + 1);
        qtest_memwrite(node[n]->qts, addr[n], data + n * DRAINED_DATA / 8,
                       DRAINED_DATA);
    }
    qtest_memwrite(node[0]->qts, addr[2] + DRAINED_DATA, data,
                   DRAINED_DATA);

    drain_node(node, 3, 3, 2, 1);
    for (int n = 0; n < 2; n++) {
        for (int cpu = 0; cpu < NCPUS; cpu++) {
            g_assert_cmpint(distvm_vcpu_node(node[n]->qts, cpu), ==,
                            cpu == 0 ? 0 : 1);
        }
    }
    /* Node 1 manages node 2's pages now: it has them, home reads them */
    check_words(node[1]->qts, addr[2], data + 2 * DRAINED_DATA / 8,
                DRAINED_DATA);
    faults = distvm_remote_faults(node[0], "distvm-numa2");
    check_words(node[0]->qts, addr[2], data + 2 * DRAINED_DATA / 8,
                DRAINED_DATA);
    g_assert_cmpint(distvm_remote_faults(node[0], "distvm-numa2"), >,
                    faults);
    wait_rounds(node[0]->qts, node[1]->qts, 0);

    drain_node(node, 2, 3, 1, 0);
    for (int cpu = 0; cpu < NCPUS; cpu++) {
        g_assert_cmpint(distvm_vcpu_node(node[0]->qts, cpu), ==, 0);
    }
    for (int n = 0; n < 3; n++) {
        check_words(node[0]->qts, addr[n], data + n * DRAINED_DATA / 8,
                    DRAINED_DATA);
    }
    check_words(node[0]->qts, addr[2] + DRAINED_DATA, data, DRAINED_DATA);
    distvm_check_moves_results(node, 1, NCPUS);
    distvm_cluster_quit(c);
}

/* A multi-queue tap of this host, which every node opens */
#define MQ_TAP  "dvmqj"

/*
 * With checkpoint epochs, a rollback brings a device that device-nodes
 * placed on node 1 home, and sends it back to node 1 at its end
 * (distvm-placed-state.c); once node 1 is lost, it stays on home, and
 * so does the queue pair of a multi-queue card that node 1 served
 * (queue-nodes).  A node that joins then learns that from home, not from
 * device-nodes and queue-nodes: every node says home runs them, and the
 * guest goes on.
 */
static void test_join_moved_device(void)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        MACHINE " -smp %d -kernel %s -append 'cpus=%d moves=1' "
        "-device virtio-rng-pci,id=rng0 -netdev tap,id=nq,ifname=" MQ_TAP
        ",queues=2,script=no,downscript=no,vhost=off "
        "-device virtio-net-pci,netdev=nq,mq=on,romfile=,id=vmq", NCPUS, elf,
        NCPUS);
    g_autofree char *dir = g_strdup_printf("%s/moved-device", tmpdir);
    g_autofree char *opts2 = NULL;
    pid_t pid;
    DistvmNode *node[3];
    QDict *d, *ev;
    int status;

    distvm_sh("ip link del " MQ_TAP " 2>/dev/null; ip tuntap add dev "
              MQ_TAP " mode tap multi_queue");
    opts2 = start_two_of_three(node, dir, "auto-numa=off,replicas=1,"
                               "checkpoint-ms=20,device-nodes=rng0@1,"
                               "queue-nodes=vmq/1@1", args);
    g_assert_cmpint(distvm_pair_node(node[0]->qts, "vmq", 1), ==, 1);
    check_epochs(node, 2);
    distvm_roll_back(node[0]->qts, -1);
    for (int n = 0; n < 2; n++) {
        distvm_wait_placed_on(node[n]->qts, "rng0", 1);
        d = distvm_placed_device(node[n]->qts, "rng0");
        g_assert_cmpint(qdict_get_int(d, "moves"), ==, 2);
        qobject_unref(d);
    }

    /* Node 1 lost: home takes its part over, the device with it */
    pid = qtest_pid(node[1]->qts);
    kill(pid, SIGKILL);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFSIGNALED(status));
    /* Its QTestState is left alone: the process is already reaped */
    node[1] = NULL;
    ev = distvm_wait_event(node[0]->qts, "DISTVM_RECOVERED",
                           DISTVM_EVENT_TIMEOUT_S);
    g_assert_cmpint(qdict_get_int(qdict_get_qdict(ev, "data"), "node"), ==,
                    1);
    qobject_unref(ev);

    join_node(node, 1, dir, 2, opts2, args, "running");
    for (int n = 0; n < 2; n++) {
        d = distvm_placed_device(node[n]->qts, "rng0");
        g_assert_cmpint(qdict_get_int(d, "node"), ==, 0);
        /* home: home, back, home; node 2: home */
        g_assert_cmpint(qdict_get_int(d, "moves"), ==, n ? 1 : 3);
        qobject_unref(d);
        /*
         * The card's pair 1 went to its node, home, when node 1 was lost:
         * node 2 learnt it as it joined (queue-nodes says node 1)
         */
        g_assert_cmpint(distvm_pair_node(node[n]->qts, "vmq", 0), ==, 0);
        g_assert_cmpint(distvm_pair_node(node[n]->qts, "vmq", 1), ==, 0);
        g_assert_cmpint(distvm_protocol_errors(node[n]->qts), ==, 0);
    }
    qtest_qmp_assert_success(node[0]->qts, "{ 'execute': 'distvm-move-vcpu', "
                             "'arguments': { 'cpu-index': 1, 'node': 2 } }");
    wait_rounds(node[0]->qts, node[1]->qts, 0);
    /* The guest went on from the checkpoint: it did not reboot */
    distvm_assert_booted_once(node[0]->qts);
    for (int n = 0; n < 2; n++) {
        distvm_node_quit(node[n]);
    }
    distvm_sh("ip link del " MQ_TAP);
}

/* The Linux workload: long enough on nodes for two joins and two drains */
#define LINUX_WORK 1000000

/* Start node @n of the Linux cluster in @dir, with @machine */
static DistvmNode *linux_node(const char *dir, int n, const char *machine)
{
    g_autofree char *base = distvm_cluster_accel_opts(dir, 3, n);
    g_autofree char *opts = g_strdup_printf("%s,start-nodes=1,"
                                            "auto-numa=off", base);

    return distvm_node_start(dir, n, opts, machine);
}

/*
 * Issue 17's Linux case: the guest starts on home alone and runs its
 * workload; node 1, then node 2, join (a node 2 with another machine is
 * refused first) and take vCPUs; node 1, then node 2, are drained; the
 * guest, on home alone again, is live-migrated by QEMU's migrate to a
 * fresh plain-TCG QEMU, where it finishes with the exact results and a
 * clean console.
 */
static void test_linux(void)
{
    g_autofree char *kernel = distvm_guest_path("linux/vmlinuz");
    g_autofree char *initrd = distvm_guest_path("linux/initramfs.cpio.gz");
    g_autofree char *dir = g_strdup_printf("%s/linux", tmpdir);
    g_autofree char *sock = g_strdup_printf("%s/migrate.sock", dir);
    g_autofree char *uri = g_strdup_printf("unix:%s", sock);
    g_autofree char *machine = g_strdup_printf(
        "-nodefaults -machine pc -m 512M -smp 4,sockets=4 -kernel %s "
        "-initrd %s -action shutdown=pause "
        "-append 'console=ttyS0 panic=-1 distvm.work=%d'", kernel, initrd,
        LINUX_WORK);
    g_autofree char *xz = g_strdup_printf(
        "distvm-linux: xz round trip ok %d bytes\n", LINUX_WORK * 16);
    g_autofree char *console = NULL;
    g_autofree char *out = NULL;
    DistvmNode *node[3];
    DistvmNode dest = { .node_id = 0 };
    static const int where[4] = { 0, 1, 2, 1 };

    g_assert(g_mkdir_with_parents(dir, 0700) == 0);
    node[0] = linux_node(dir, 0, machine);
    distvm_wait_state(node[0]->qts, "running", 60);
    if (!distvm_wait_console(node[0], "distvm-linux: workload start", 600)) {
        console = distvm_read_console(node[0]);
        g_error("the Linux guest did not reach its workload; console:\n%s",
                console);
    }

    /* A node with another machine is refused; the guest runs on */
    {
        g_autofree char *base = distvm_cluster_accel_opts(dir, 3, 2);
        g_autofree char *cmd = g_strdup_printf(
            "-accel distvm,%s,start-nodes=1,auto-numa=off %s",
            base, machine);
        char *m = strstr(cmd, "-m 512M");

        memcpy(m, "-m 768M", 7);
        g_assert_cmpint(distvm_run_qemu(cmd, &out), ==, 1);
        g_assert_nonnull(strstr(out, "the home node refused this node: "
                                "node 2 differs from the home node in "
                                "memory size (-m)"));
    }

    /* Nodes 1 and 2 join, one after the other, and take vCPUs */
    for (int n = 1; n < 3; n++) {
        QDict *ev;

        node[n] = linux_node(dir, n, machine);
        ev = distvm_wait_event(node[0]->qts, "DISTVM_NODE_JOINED",
                               DISTVM_EVENT_TIMEOUT_S);
        g_assert_cmpint(qdict_get_int(qdict_get_qdict(ev, "data"), "node"),
                        ==, n);
        g_test_message("node %d joined; the vCPUs were held %" PRId64 " us", n,
                       qdict_get_int(qdict_get_qdict(ev, "data"),
                                     "pause-us"));
        qobject_unref(ev);
        distvm_wait_state(node[n]->qts, "running", 60);
    }
    for (int cpu = 1; cpu < 4; cpu++) {
        qtest_qmp_assert_success(node[0]->qts, "{ 'execute': "
                                 "'distvm-move-vcpu', 'arguments': "
                                 "{ 'cpu-index': %d, 'node': %d } }",
                                 cpu, where[cpu]);
    }
    for (int cpu = 1; cpu < 4; cpu++) {
        for (int tries = 0; distvm_vcpu_node(node[0]->qts, cpu) !=
                            where[cpu]; tries++) {
            g_assert_cmpint(tries, <, 1000);
            g_usleep(10 * 1000);
        }
    }
    /* They work there: each node takes the guest's pages */
    for (int n = 1; n < 3; n++) {
        for (int tries = 0; distvm_remote_faults(node[n], "pc.ram") < 100;
             tries++) {
            g_assert_cmpint(tries, <, 1000);
            g_usleep(10 * 1000);
        }
    }

    /* Node 1, then node 2, are drained; the guest is on home alone */
    drain_node(node, 3, 1, 1, 2);
    drain_node(node, 1, 1, 2, 0);
    for (int cpu = 0; cpu < 4; cpu++) {
        g_assert_cmpint(distvm_vcpu_node(node[0]->qts, cpu), ==, 0);
    }
    console = distvm_read_console(node[0]);
    g_assert_null(strstr(console, "distvm-linux: workload done"));
    g_clear_pointer(&console, g_free);

    /* QEMU's own live migration takes it to a fresh QEMU, plain TCG */
    dest.serial_path = g_strdup_printf("%s/dest-serial.log", dir);
    dest.qts = qtest_initf("-accel tcg -serial file:%s %s -incoming %s",
                           dest.serial_path, machine, uri);
    qtest_qmp_assert_success(node[0]->qts, "{ 'execute': 'migrate', "
                             "'arguments': { 'uri': %s } }", uri);
    wait_migration(node[0]->qts, "completed");
    if (!distvm_wait_console(&dest, "distvm-linux: workload done", 600)) {
        console = distvm_read_console(&dest);
        g_error("the Linux guest did not finish its workload after its "
                "migration; console:\n%s", console);
    }
    console = distvm_read_console(node[0]);
    g_assert_nonnull(strstr(console, "distvm-linux: nproc 4\n"));
    g_assert_nonnull(strstr(console, "distvm-linux: workload start\n"));
    g_assert_null(strstr(console, "distvm-linux: workload done"));
    distvm_assert_console_clean(console);
    g_clear_pointer(&console, g_free);
    console = distvm_read_console(&dest);
    for (int i = 0; i < 4; i++) {
        g_autofree char *line = distvm_linux_work_line(i, LINUX_WORK);

        if (!strstr(console, line)) {
            g_error("missing '%s' in the console:\n%s", line, console);
        }
    }
    g_assert_nonnull(strstr(console, xz));
    g_assert_nonnull(strstr(console, "distvm-linux: clocksource tsc\n"));
    distvm_assert_console_clean(console);

    qtest_quit(dest.qts);
    g_free(dest.serial_path);
    for (int n = 2; n >= 0; n--) {
        distvm_node_quit(node[n]);
    }
}

int main(int argc, char **argv)
{
    tmpdir = distvm_test_init(&argc, &argv, "distvm-elastic-test");

    qtest_add_func("/distvm/elastic/join", test_join);
    qtest_add_func("/distvm/elastic/join-residency", test_join_residency);
    qtest_add_func("/distvm/elastic/join-plugged", test_join_plugged);
    qtest_add_func("/distvm/elastic/collapse", test_collapse);
    qtest_add_func("/distvm/elastic/drain-start", test_drain_start);
    qtest_add_func("/distvm/elastic/join-moved-device",
                   test_join_moved_device);
    qtest_add_func("/distvm/elastic/linux", test_linux);

    return distvm_test_run(tmpdir);
}
