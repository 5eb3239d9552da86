/*
 * distvm qtest suite: moving running vCPUs between nodes
 *
 * A bare-metal SMP guest runs long register/vector/stack chains, shared
 * counters and a spinlock-guarded record while its LAPIC timers tick; the
 * test moves every vCPU between the nodes many times at random moments.
 * The final state must be exactly what the guest computes without moves
 * (recomputed here from its round counts) and every vCPU's timer must
 * keep ticking after each of its moves.  Another mode of the guest takes
 * interrupts of every kind from the home node's 8259 and I/O APIC and
 * from the other vCPU, wherever each vCPU runs.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qobject/qnum.h"
#include "qemu/units.h"
#include "libqtest.h"
#include "distvm/distvm-node.h"
#include "distvm/guest/smp-workload.h"
#include "hw/distmem/distmem-topology.h"

#define MACHINE "-nodefaults -machine pc -m 128M"
#define RES(field) (DG_RESULT_BASE + offsetof(struct dg_results, field))
/*
 * Rounds of the readers of mode=affinity: enough that they still read
 * when the policy judges its moves (2.5 s after one), or a reader that
 * finished would make a bad move look good; about 20 s in all
 */
#define DG_AFFINITY_ROUNDS 12000
/* ... and with their data on other nodes all along: about 10 s */
#define DG_AFFINITY_NUMA_ROUNDS 800

static char *tmpdir;

static int moves_per_vcpu(void)
{
    const char *s = g_getenv("DISTVM_MOVES");

    return s ? atoi(s) : 50;
}

static uint32_t timer_ticks(QTestState *qts, int cpu)
{
    return qtest_readl(qts, RES(timer_ticks) + cpu * 4);
}

/* Every node reports the same vCPU -> node table, equal to @want. */
static void check_placement(DistvmCluster *c, int ncpus, const int *want)
{
    for (int n = 0; n < c->nodes; n++) {
        for (int cpu = 0; cpu < ncpus; cpu++) {
            g_assert_cmpint(distvm_vcpu_node(c->node[n]->qts, cpu), ==,
                            want[cpu]);
        }
    }
}

/*
 * Wait on @qts for the event of vCPU @cpu's move from @from to @to, made
 * for @reason, and return its downtime.  Each node reports every move,
 * in order.
 */
static int64_t wait_moved_for(QTestState *qts, int cpu, int from, int to,
                              const char *reason)
{
    QDict *ev = distvm_wait_event(qts, "DISTVM_VCPU_MOVED",
                                  DISTVM_EVENT_TIMEOUT_S);
    QDict *data = qdict_get_qdict(ev, "data");
    int64_t downtime = qdict_get_int(data, "downtime-us");

    g_assert_cmpint(qdict_get_int(data, "cpu-index"), ==, cpu);
    g_assert_cmpint(qdict_get_int(data, "from"), ==, from);
    g_assert_cmpint(qdict_get_int(data, "to"), ==, to);
    g_assert_cmpstr(qdict_get_str(data, "reason"), ==, reason);
    g_assert_cmpint(downtime, >, 0);
    qobject_unref(ev);
    return downtime;
}

/* ... of a move distvm-move-vcpu asked for */
static int64_t wait_moved(QTestState *qts, int cpu, int from, int to)
{
    return wait_moved_for(qts, cpu, from, to, "command");
}

/* Host CPU time (ms) a process used so far. */
static uint64_t cpu_time_ms(pid_t pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/stat", pid);
    g_autofree char *text = NULL;
    unsigned long utime, stime;
    char *p;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    p = strrchr(text, ')');
    g_assert(p);
    /* Fields 14 and 15 (utime, stime), counted after "pid (comm)". */
    g_assert_cmpint(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
                           "%*u %lu %lu", &utime, &stime), ==, 2);
    return (utime + stime) * 1000 / sysconf(_SC_CLK_TCK);
}

/* How many times @needle is on @node's console. */
static int console_count(DistvmNode *node, const char *needle)
{
    g_autofree char *console = distvm_read_console(node);
    int n = 0;

    for (const char *p = strstr(console, needle); p;
         p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

/* IRQ 0 (the PIT) as counted by the node's 8259, from "info irq". */
static int pit_irqs(QTestState *qts)
{
    g_autofree char *out = qtest_hmp(qts, "info irq");
    const char *pic = strstr(out, "IRQ statistics for isa-i8259:");
    const char *line;

    g_assert_nonnull(pic);
    line = strstr(pic, "\n 0: ");
    return line ? atoi(line + 5) : 0;
}

static void test_moves(const void *data)
{
    int nodes = GPOINTER_TO_INT(data);
    const int ncpus = 2;
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        MACHINE " -smp %d -kernel %s -append 'cpus=%d moves=1'", ncpus, elf,
        ncpus);
    DistvmCluster *c = distvm_cluster_start(tmpdir, nodes, args);
    QTestState *home = c->node[0]->qts;
    int where[DG_MAX_CPUS] = { 0 };
    int moved[DG_MAX_CPUS] = { 0 };
    GRand *rand = g_rand_new_with_seed(0x5eed + nodes);
    uint32_t rounds[DG_MAX_CPUS];
    uint64_t downtime_total = 0;
    int total = 0;

    g_assert_true(distvm_wait_console(c->node[0], "distvm-guest: all cpus up",
                                      60));
    check_placement(c, ncpus, where);

    /* A node that runs no vCPU costs (almost) no host CPU. */
    {
        pid_t idle = qtest_pid(c->node[nodes - 1]->qts);
        uint64_t t0 = cpu_time_ms(idle);

        g_usleep(2 * G_USEC_PER_SEC);
        g_assert_cmpuint(cpu_time_ms(idle) - t0, <, 60);
    }

    while (total < moves_per_vcpu() * ncpus) {
        int cpu = g_rand_int_range(rand, 0, ncpus);
        int to = (where[cpu] + g_rand_int_range(rand, 1, nodes)) % nodes;
        QTestState *asker = c->node[g_rand_int_range(rand, 0, nodes)]->qts;
        uint32_t ticks;

        if (moved[cpu] >= moves_per_vcpu()) {
            continue;
        }
        qtest_qmp_assert_success(asker, "{ 'execute': 'distvm-move-vcpu', "
                                 "'arguments': { 'cpu-index': %d, "
                                 "'node': %d } }", cpu, to);
        for (int n = 0; n < nodes; n++) {
            int64_t downtime = wait_moved(c->node[n]->qts, cpu, where[cpu],
                                          to);

            if (n == 0) {
                downtime_total += downtime;
            }
        }
        where[cpu] = to;
        moved[cpu]++;
        total++;

        /* Its timer keeps interrupting it on its new node. */
        ticks = timer_ticks(home, cpu);
        for (int tries = 0; timer_ticks(home, cpu) <= ticks + 2; tries++) {
            g_assert_cmpint(tries, <, 1000);
            g_usleep(2000);
        }
        if (total % 10 == 0) {
            check_placement(c, ncpus, where);
        }
        g_usleep(g_rand_int_range(rand, 0, 30000));
    }
    /* Finish away from home, so that the end exercises forwarding. */
    for (int cpu = 0; cpu < ncpus; cpu++) {
        if (where[cpu] == 0) {
            qtest_qmp_assert_success(home, "{ 'execute': 'distvm-move-vcpu', "
                                     "'arguments': { 'cpu-index': %d, "
                                     "'node': 1 } }", cpu);
            for (int n = 0; n < nodes; n++) {
                wait_moved(c->node[n]->qts, cpu, 0, 1);
            }
            where[cpu] = 1;
        }
    }
    check_placement(c, ncpus, where);
    g_test_message("%d nodes: %d moves, mean downtime %" PRIu64 " us", nodes,
                   total, total ? downtime_total / total : 0);

    /* Run state follows home: "stop" there stops every node's vCPUs. */
    qtest_qmp_assert_success(home, "{ 'execute': 'stop' }");
    for (int n = 0; n < nodes; n++) {
        distvm_wait_status(c->node[n]->qts, "paused", 5);
    }
    distvm_memread(home, RES(rounds), rounds, sizeof(rounds));
    g_usleep(300 * 1000);
    for (int cpu = 0; cpu < ncpus; cpu++) {
        g_assert_cmpuint(qtest_readl(home, RES(rounds) + cpu * 4), ==,
                         rounds[cpu]);
    }
    qtest_qmp_assert_success(home, "{ 'execute': 'cont' }");
    for (int n = 0; n < nodes; n++) {
        distvm_wait_status(c->node[n]->qts, "running", 5);
    }
    for (int cpu = 0; cpu < ncpus; cpu++) {
        for (int tries = 0; qtest_readl(home, RES(rounds) + cpu * 4) ==
                            rounds[cpu]; tries++) {
            g_assert_cmpint(tries, <, 1000);
            g_usleep(2000);
        }
    }
    /*
     * Only home's devices run: the other nodes' PIT, armed by the reset
     * (which raised IRQ 0 once), never ticked.
     */
    g_assert_cmpint(pit_irqs(home), >, 10);
    for (int n = 1; n < nodes; n++) {
        g_assert_cmpint(pit_irqs(c->node[n]->qts), <=, 1);
    }

    /* Stop the guest's chains and check its results. */
    distvm_check_moves_results(c->node, nodes, ncpus);
    for (int cpu = 0; cpu < ncpus; cpu++) {
        g_test_message("vCPU %d: %d moves", cpu, moved[cpu]);
    }

    /*
     * A reset of the machine, asked of home, resets every node's vCPUs
     * and chipset: the guest boots again, its boot vCPU running the
     * firmware on node 1, and brings its other vCPU up again.
     */
    qtest_qmp_assert_success(home, "{ 'execute': 'system_reset' }");
    for (int tries = 0;
         console_count(c->node[0], "distvm-guest: all cpus up\n") < 2;
         tries++) {
        if (tries == 1200) {
            g_autofree char *console = distvm_read_console(c->node[0]);

            g_error("the guest did not boot again; console:\n%s", console);
        }
        g_usleep(100 * 1000);
    }
    check_placement(c, ncpus, where);
    g_rand_free(rand);
    distvm_cluster_quit(c);
}

/* Bad requests, a no-op move, and two moves of one vCPU at once. */
static void test_requests(void)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        MACHINE " -smp 2 -kernel %s -append 'cpus=2 moves=1'", elf);
    DistvmCluster *c = distvm_cluster_start(tmpdir, 3, args);
    QTestState *n1 = c->node[1]->qts;
    int want[2] = { 0, 0 };
    QDict *resp;

    g_assert_true(distvm_wait_console(c->node[0], "distvm-guest: all cpus up",
                                      60));
    resp = qtest_qmp(n1, "{ 'execute': 'distvm-move-vcpu', 'arguments': "
                     "{ 'cpu-index': 7, 'node': 1 } }");
    g_assert_nonnull(strstr(qdict_get_str(qdict_get_qdict(resp, "error"),
                            "desc"), "no vCPU with cpu-index 7"));
    qobject_unref(resp);
    resp = qtest_qmp(n1, "{ 'execute': 'distvm-move-vcpu', 'arguments': "
                     "{ 'cpu-index': 1, 'node': 3 } }");
    g_assert_nonnull(strstr(qdict_get_str(qdict_get_qdict(resp, "error"),
                            "desc"), "there is no node 3"));
    qobject_unref(resp);

    /* Where it already runs: success, nothing happens. */
    qtest_qmp_assert_success(n1, "{ 'execute': 'distvm-move-vcpu', "
                             "'arguments': { 'cpu-index': 1, 'node': 0 } }");

    /*
     * Two moves at once, asked of two nodes: they are done one after the
     * other, in the order the requests reach the vCPU's owner, so the
     * vCPU ends on 1 or on 2.  Every node reports both moves; a node may
     * hear of the second first (the two destinations report them).
     */
    qtest_qmp_assert_success(n1, "{ 'execute': 'distvm-move-vcpu', "
                             "'arguments': { 'cpu-index': 1, 'node': 1 } }");
    qtest_qmp_assert_success(c->node[2]->qts, "{ 'execute': "
                             "'distvm-move-vcpu', 'arguments': "
                             "{ 'cpu-index': 1, 'node': 2 } }");
    for (int n = 0; n < 3; n++) {
        int from[2], to[2];

        for (int k = 0; k < 2; k++) {
            QDict *ev = distvm_wait_event(c->node[n]->qts, "DISTVM_VCPU_MOVED",
                                          DISTVM_EVENT_TIMEOUT_S);
            QDict *data = qdict_get_qdict(ev, "data");

            g_assert_cmpint(qdict_get_int(data, "cpu-index"), ==, 1);
            from[k] = qdict_get_int(data, "from");
            to[k] = qdict_get_int(data, "to");
            qobject_unref(ev);
        }
        /* Put in order, the two moves chain: 0 -> a, then a -> b. */
        if (from[0] != 0) {
            int f = from[0], t = to[0];

            from[0] = from[1];
            to[0] = to[1];
            from[1] = f;
            to[1] = t;
        }
        g_assert_cmpint(from[0], ==, 0);
        g_assert_cmpint(from[1], ==, to[0]);
        g_assert_true((to[0] == 1 && to[1] == 2) ||
                      (to[0] == 2 && to[1] == 1));
        g_assert_true(n == 0 || want[1] == to[1]);
        want[1] = to[1];
    }
    check_placement(c, 2, want);
    distvm_cluster_quit(c);
}

/*
 * vCPUs placed on another node from power-on: the firmware and then the
 * guest start them with INIT/SIPI forwarded to their node, where they run
 * the firmware's start-up code in shadow RAM (the home node's chipset
 * setting, replayed) and then the SMP workload.  APs on both nodes take
 * their stacks with an unaligned "lock xadd", which must be atomic across
 * nodes.
 */
/* The sum of the numbers in @list, which has @len of them. */
static uint64_t sum_list(QList *list, int len)
{
    const QListEntry *e;
    uint64_t sum = 0;
    int n = 0;

    QLIST_FOREACH_ENTRY(list, e) {
        sum += qnum_get_uint(qobject_to(QNum, qlist_entry_obj(e)));
        n++;
    }
    g_assert_cmpint(n, ==, len);
    return sum;
}

/*
 * Wait until the device accesses that @qts's vCPUs sent home are all
 * answered: the affinity matrix counts one as it goes, the I/O counters
 * once its reply came, and the guest's last one (its console's) may be
 * on its way back when the test sees it on home's console.
 */
static void wait_io_answered(QTestState *qts)
{
    for (int tries = 0;; tries++) {
        QDict *ret = qtest_qmp_assert_success_ref(qts, "{ 'execute': "
                                                  "'query-distvm' }");
        QDict *io = qdict_get_qdict(ret, "io");
        uint64_t sent = 0, done;
        const QListEntry *e;

        QLIST_FOREACH_ENTRY(qdict_get_qlist(qdict_get_qdict(ret, "affinity"),
                                            "vcpus"), e) {
            QDict *v = qobject_to(QDict, qlist_entry_obj(e));

            sent += qnum_get_uint(qobject_to(QNum, qdict_get(v, "io")));
        }
        done = qdict_get_int(qdict_get_qdict(io, "port"), "count") +
               qdict_get_int(qdict_get_qdict(io, "mmio"), "count") +
               qdict_get_int(qdict_get_qdict(io, "pic-ack"), "count");
        qobject_unref(ret);
        if (sent == done || tries == 200) {
            return;             /* check_affinity() says if it never was */
        }
        g_usleep(10 * 1000);
    }
}

/*
 * On node @n of a @nodes-node cluster whose guest, placed as @want from
 * power-on, has finished: the vCPU x node matrix accounts for each
 * remote fault and each device access sent home exactly once, the rows
 * of the vCPUs running here have them all, and the others are empty.
 */
static void check_affinity(QTestState *qts, int n, int nodes, int ncpus,
                           const int *want)
{
    QDict *ret;
    QDict *ram, *io, *a;
    uint64_t faults = 0, sent = 0, mine = 0;
    const QListEntry *e;
    int cpu = 0;

    wait_io_answered(qts);
    ret = qtest_qmp_assert_success_ref(qts, "{ 'execute': 'query-distvm' }");
    ram = qdict_get_qdict(ret, "ram");
    io = qdict_get_qdict(ret, "io");
    a = qdict_get_qdict(ret, "affinity");
    QLIST_FOREACH_ENTRY(qdict_get_qlist(a, "vcpus"), e) {
        QDict *v = qobject_to(QDict, qlist_entry_obj(e));
        uint64_t f = sum_list(qdict_get_qlist(v, "faults"), nodes) +
                     qnum_get_uint(qobject_to(QNum, qdict_get(v, "upgrades")));
        uint64_t d = qnum_get_uint(qobject_to(QNum, qdict_get(v, "io")));

        g_assert_cmpint(qdict_get_int(v, "cpu-index"), ==, cpu);
        g_assert_cmpint(qdict_get_bool(v, "running"), ==, want[cpu] == n);
        sum_list(qdict_get_qlist(v, "fault-rate"), nodes);
        if (want[cpu] != n) {
            g_assert_cmpuint(f + d, ==, 0);
        } else if (n != 0) {
            /* away from home: its counter is shared, its serial port not */
            g_assert_cmpuint(f, >, 0);
            g_assert_cmpuint(d, >, 0);
        }
        faults += f;
        sent += d;
        mine += want[cpu] == n;
        cpu++;
    }
    g_assert_cmpint(cpu, ==, ncpus);
    g_assert_cmpuint(sum_list(qdict_get_qlist(a, "other-faults"), nodes),
                     ==, 0);
    g_assert_cmpint(qdict_get_int(a, "other-upgrades"), ==, 0);
    g_assert_cmpuint(faults, ==,
                     qdict_get_int(qdict_get_qdict(ram, "read-miss"),
                                   "count") +
                     qdict_get_int(qdict_get_qdict(ram, "write-miss"),
                                   "count") +
                     qdict_get_int(qdict_get_qdict(ram, "upgrade"), "count"));
    g_assert_cmpuint(sent, ==,
                     qdict_get_int(qdict_get_qdict(io, "port"), "count") +
                     qdict_get_int(qdict_get_qdict(io, "mmio"), "count") +
                     qdict_get_int(qdict_get_qdict(io, "pic-ack"), "count"));
    g_assert_cmpuint(mine, >, 0);
    qobject_unref(ret);
}

static void test_placement(void)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        MACHINE " -smp 4 -kernel %s -append 'cpus=4 iters=200000'", elf);
    g_autofree char *dir = g_strdup_printf("%s/placement", tmpdir);
    const int want[4] = { 0, 1, 1, 0 };
    DistvmNode *node[2];

    g_assert(g_mkdir_with_parents(dir, 0700) == 0);
    for (int n = 0; n < 2; n++) {
        g_autofree char *opts = distvm_cluster_accel_opts(dir, 2, n);
        g_autofree char *placed = g_strdup_printf("%s,placement=0:1:1:0",
                                                  opts);

        node[n] = distvm_node_start(dir, n, placed, args);
    }
    for (int n = 0; n < 2; n++) {
        distvm_wait_state(node[n]->qts, "running", 60);
        for (int cpu = 0; cpu < 4; cpu++) {
            g_assert_cmpint(distvm_vcpu_node(node[n]->qts, cpu), ==,
                            want[cpu]);
        }
    }
    g_assert_true(distvm_wait_console(node[0], "distvm-guest: DONE", 120));
    for (int n = 0; n < 2; n++) {
        g_autofree char *hmp = qtest_hmp(node[n]->qts, "info distvm");

        check_affinity(node[n]->qts, n, 2, 4, want);
        g_test_message("%s", hmp);
        g_assert_nonnull(strstr(hmp, n ? "vCPU 1 *" : "vCPU 0 *"));
    }
    g_assert_cmphex(qtest_readl(node[1]->qts, RES(magic)), ==,
                    DG_MAGIC_DONE);
    distvm_check_smp_memory(node[0]->qts, 4, 200000);
    distvm_check_smp_memory(node[1]->qts, 4, 200000);
    distvm_node_quit(node[1]);
    distvm_node_quit(node[0]);
}

/* Move vCPU @cpu to @to, asked of @qts, and wait until every node saw it. */
static void move_vcpu(DistvmCluster *c, QTestState *qts, int cpu, int from,
                      int to)
{
    qtest_qmp_assert_success(qts, "{ 'execute': 'distvm-move-vcpu', "
                             "'arguments': { 'cpu-index': %d, 'node': %d } }",
                             cpu, to);
    for (int n = 0; n < c->nodes; n++) {
        wait_moved(c->node[n]->qts, cpu, from, to);
    }
}

/* The nodes query-distvm on @qts says vCPU @cpu may run on, as a mask */
static uint32_t vcpu_allowed_mask(QTestState *qts, int cpu)
{
    QDict *ret = qtest_qmp_assert_success_ref(qts, "{ 'execute': "
                                              "'query-distvm' }");
    uint32_t mask = 0;
    bool found = false;

    for (const QListEntry *e = qlist_first(qdict_get_qlist(ret, "vcpus"));
         e; e = qlist_next(e)) {
        QDict *v = qobject_to(QDict, qlist_entry_obj(e));
        QList *nodes;

        if (qdict_get_int(v, "cpu-index") != cpu) {
            continue;
        }
        found = true;
        nodes = qdict_get_qlist(v, "allowed-nodes");
        mask = nodes ? 0 : UINT32_MAX;
        for (const QListEntry *n = nodes ? qlist_first(nodes) : NULL; n;
             n = qlist_next(n)) {
            mask |= 1u << qnum_get_uint(qobject_to(QNum, qlist_entry_obj(n)));
        }
    }
    qobject_unref(ret);
    g_assert_true(found);
    return mask;
}

static void wait_allowed_mask(QTestState *qts, int cpu, uint32_t mask)
{
    for (int tries = 0; vcpu_allowed_mask(qts, cpu) != mask; tries++) {
        g_assert_cmpint(tries, <, 500);
        g_usleep(10 * 1000);
    }
}

/*
 * distvm-set-vcpu-nodes, asked of any node, restricts a vCPU on every
 * node: a move outside the set is refused with the rule, one inside it
 * goes; a set that leaves out where the vCPU runs is refused; without
 * nodes, the vCPU may go anywhere again.
 */
static void test_vcpu_nodes(void)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        MACHINE " -smp 2 -kernel %s -append 'cpus=2 iters=200000000'", elf);
    DistvmCluster *c = distvm_cluster_start_with(tmpdir, 3, "placement=0:1",
                                                 args);

    qtest_qmp_assert_success(c->node[2]->qts, "{ 'execute': "
        "'distvm-set-vcpu-nodes', 'arguments': { 'cpu-index': 1, "
        "'nodes': [ 0, 1 ] } }");
    /* Each node has the set once the message reached it. */
    for (int n = 0; n < 3; n++) {
        wait_allowed_mask(c->node[n]->qts, 1, 0x3);
        g_assert_cmphex(vcpu_allowed_mask(c->node[n]->qts, 0), ==,
                        UINT32_MAX);
    }
    for (int n = 0; n < 3; n++) {
        distvm_qmp_refused(c->node[n]->qts,
                           "distvm: vCPU 1 may run only on nodes "
                           "0, 1 (distvm-set-vcpu-nodes), not on node 2",
                           "{ 'execute': 'distvm-move-vcpu', 'arguments': "
                           "{ 'cpu-index': 1, 'node': 2 } }");
    }
    move_vcpu(c, c->node[2]->qts, 1, 1, 0);
    {
        g_autofree char *hmp = qtest_hmp(c->node[1]->qts, "info distvm");

        g_assert_nonnull(strstr(hmp, "vCPU 1: node 0 (may run only on nodes "
                                "0, 1)\r\n"));
        g_assert_nonnull(strstr(hmp, "vCPU 0: node 0\r\n"));
    }
    distvm_qmp_refused(c->node[1]->qts,
                       "distvm: vCPU 1 runs on node 0, outside "
                       "the nodes given; move it into them first",
                       "{ 'execute': 'distvm-set-vcpu-nodes', 'arguments': "
                       "{ 'cpu-index': 1, 'nodes': [ 1, 2 ] } }");
    distvm_qmp_refused(c->node[1]->qts,
                       "distvm: there is no node 3 (the cluster "
                       "has nodes 0 to 2)",
                       "{ 'execute': 'distvm-set-vcpu-nodes', 'arguments': "
                       "{ 'cpu-index': 1, 'nodes': [ 0, 3 ] } }");
    distvm_qmp_refused(c->node[1]->qts,
                       "distvm: a vCPU must be allowed on a node "
                       "at least",
                       "{ 'execute': 'distvm-set-vcpu-nodes', 'arguments': "
                       "{ 'cpu-index': 1, 'nodes': [ ] } }");
    g_assert_cmpint(distvm_vcpu_node(c->node[2]->qts, 1), ==, 0);

    qtest_qmp_assert_success(c->node[0]->qts, "{ 'execute': "
        "'distvm-set-vcpu-nodes', 'arguments': { 'cpu-index': 1 } }");
    for (int n = 0; n < 3; n++) {
        wait_allowed_mask(c->node[n]->qts, 1, UINT32_MAX);
    }
    move_vcpu(c, c->node[1]->qts, 1, 0, 2);
    distvm_cluster_quit(c);
}

/* How many device accesses of @kind @qts sent to the home node. */
static int64_t io_sent_home(QTestState *qts, const char *kind)
{
    QDict *ret = qtest_qmp_assert_success_ref(qts, "{ 'execute': "
                                              "'query-distvm' }");
    int64_t n = qdict_get_int(qdict_get_qdict(qdict_get_qdict(ret, "io"),
                                              kind), "count");

    qobject_unref(ret);
    return n;
}

/* Wait until the guest's counter at @addr went @delta past @from. */
static uint32_t wait_counter(QTestState *qts, uint64_t addr, uint32_t from,
                             uint32_t delta, const char *what)
{
    uint32_t v;

    for (int tries = 0; (v = qtest_readl(qts, addr)) - from < delta;
         tries++) {
        if (tries == 3000) {
            g_error("%s: %u after 30 s, from %u", what, v, from);
        }
        g_usleep(10000);
    }
    return v;
}

/*
 * Interrupts of every kind reach each vCPU wherever it runs (mode=irq of
 * the guest), from power-on with both vCPUs away from home and then in
 * every placement:
 * - vCPU 0 takes the PIT's IRQ 0 through the home node's 8259 on its
 *   LINT0: the 8259's output reaches its node and the acknowledge cycle
 *   is done on home's 8259, which must return the vector, not a spurious
 *   IRQ 7;
 * - vCPU 1 takes the RTC's interrupts through the home node's I/O APIC,
 *   level-triggered: each needs the EOI of the previous one to reach
 *   home's I/O APIC;
 * - vCPU 0 sends IPIs of every kind (fixed, physical and flat logical;
 *   lowest priority; NMI; the three shorthands), each once the previous
 *   one was taken, and every one must be taken exactly once.
 */
static void test_interrupts(void)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        MACHINE " -smp 2 -kernel %s -append 'cpus=2 irq=1'", elf);
    g_autofree char *dir = g_strdup_printf("%s/interrupts", tmpdir);
    static const int placements[][2] = {
        { 1, 1 }, { 1, 0 }, { 0, 1 }, { 0, 0 }, { 1, 1 },
    };
    int where[2] = { 1, 1 };
    DistvmCluster c = { .nodes = 2, .dir = dir };
    QTestState *home;
    uint32_t rounds;
    int64_t start;

    g_assert(g_mkdir_with_parents(dir, 0700) == 0);
    for (int n = 0; n < 2; n++) {
        g_autofree char *opts = distvm_cluster_accel_opts(dir, 2, n);
        g_autofree char *placed = g_strdup_printf("%s,placement=1:1", opts);

        c.node[n] = distvm_node_start(dir, n, placed, args);
    }
    home = c.node[0]->qts;
    for (int n = 0; n < 2; n++) {
        distvm_wait_state(c.node[n]->qts, "running", 60);
    }
    g_assert_true(distvm_wait_console(c.node[0], "distvm-guest: cpu 0 irq "
                                      "running", 120));
    for (int i = 0; i < G_N_ELEMENTS(placements); i++) {
        uint32_t pic = qtest_readl(home, RES(pic_ticks));
        uint32_t rtc = qtest_readl(home, RES(rtc_ticks));
        uint32_t ipi = qtest_readl(home, RES(ipi_rounds));

        for (int cpu = 0; cpu < 2; cpu++) {
            if (where[cpu] != placements[i][cpu]) {
                move_vcpu(&c, c.node[1 - cpu]->qts, cpu, where[cpu],
                          placements[i][cpu]);
                where[cpu] = placements[i][cpu];
            }
        }
        check_placement(&c, 2, where);
        start = g_get_monotonic_time();
        ipi = qtest_readl(home, RES(ipi_rounds));
        pic = wait_counter(home, RES(pic_ticks), pic, 20, "PIC interrupts");
        rtc = wait_counter(home, RES(rtc_ticks), rtc, 20, "RTC interrupts");
        rounds = wait_counter(home, RES(ipi_rounds), ipi, 20, "IPI rounds");
        g_test_message("vCPU 0 on node %d, vCPU 1 on node %d: %u PIC, %u RTC "
                       "interrupts so far; %" PRId64 " IPI rounds/s",
                       where[0], where[1], pic, rtc, (int64_t)(rounds - ipi) *
                       G_USEC_PER_SEC / (g_get_monotonic_time() - start));
    }

    qtest_writel(home, RES(stop), 1);
    if (!distvm_wait_console(c.node[0], "distvm-guest: DONE", 60)) {
        g_autofree char *console = distvm_read_console(c.node[0]);

        g_error("the guest did not stop: cpu_done %u %u; console:\n%s",
                qtest_readl(home, RES(cpu_done)),
                qtest_readl(home, RES(cpu_done) + 4), console);
    }
    rounds = qtest_readl(home, RES(ipi_rounds));
    for (int kind = 0; kind < DG_IPI_KINDS; kind++) {
        g_test_message("IPI kind %d: lost %u, taken %u and %u of %u", kind,
                       qtest_readl(home, RES(ipi_lost) + kind * 4),
                       qtest_readl(home, RES(ipi_kind) + kind * 4),
                       qtest_readl(home, RES(ipi_kind) +
                                   (DG_IPI_KINDS + kind) * 4), rounds);
    }
    g_assert_cmpuint(qtest_readl(home, RES(pic_spurious)), ==, 0);
    for (int kind = 0; kind < DG_IPI_KINDS; kind++) {
        g_assert_cmpuint(qtest_readl(home, RES(ipi_lost) + kind * 4), ==, 0);
    }
    for (int kind = 0; kind < DG_IPI_KINDS; kind++) {
        uint32_t want0 = kind == DG_IPI_ALL || kind == DG_IPI_SELF ? rounds : 0;
        uint32_t want1 = kind == DG_IPI_SELF ? 0 : rounds;

        g_assert_cmpuint(qtest_readl(home, RES(ipi_kind) + kind * 4), ==,
                         want0);
        g_assert_cmpuint(qtest_readl(home, RES(ipi_kind) +
                                     (DG_IPI_KINDS + kind) * 4), ==, want1);
    }
    {
        g_autofree char *console = distvm_read_console(c.node[0]);
        g_autofree char *other = distvm_read_console(c.node[1]);

        distvm_assert_console_clean(console);
        g_assert_cmpstr(other, ==, "");
    }
    /*
     * query-distvm counts what node 1's vCPUs sent home: port I/O, MMIO
     * (the I/O APIC's EOIs among it) and 8259 acknowledge cycles; home
     * sent nothing to itself.
     */
    g_assert_cmpint(io_sent_home(c.node[1]->qts, "port"), >, 0);
    g_assert_cmpint(io_sent_home(c.node[1]->qts, "mmio"), >, 0);
    g_assert_cmpint(io_sent_home(c.node[1]->qts, "pic-ack"), >, 0);
    g_assert_cmpint(io_sent_home(home, "port"), ==, 0);
    g_assert_cmpint(io_sent_home(home, "mmio"), ==, 0);
    g_assert_cmpint(io_sent_home(home, "pic-ack"), ==, 0);
    g_test_message("%s", qtest_hmp(c.node[1]->qts, "info distvm"));
    distvm_node_quit(c.node[1]);
    distvm_node_quit(c.node[0]);
}

/*
 * LAPICs in x2APIC mode are addressed as such wherever their vCPUs run
 * (mode=x2apic of the guest, 4 vCPUs over 3 nodes): the RTC's
 * level-triggered interrupt from home's I/O APIC, in logical destination
 * mode, reaches each of vCPUs 1 to 3 and waits for their EOIs; vCPU 0's
 * IPIs (physical, logical, lowest priority, all-but-self and the x2APIC
 * broadcast) reach every vCPU they address, exactly once, before and
 * after the vCPUs move; and none that only an xAPIC would take (a logical
 * destination in another cluster, the xAPIC broadcast ID 0xff) reaches
 * any.
 */
/* Where the 4 vCPUs of a 3-node test run in turn: every vCPU on each node */
static const int spread_placements[][4] = {
    { 0, 1, 2, 1 }, { 2, 0, 1, 2 }, { 1, 2, 0, 0 },
};

/* Move the 4 vCPUs of @c from @where to @to, and check they are there. */
/*
 * Stop the guest's rounds and wait for it to finish: no interrupt of
 * its @kinds counted at @lost was lost.  Returns its rounds, at @rounds.
 */
static uint32_t stop_rounds(DistvmCluster *c, uint64_t rounds,
                            uint64_t lost, int kinds)
{
    QTestState *home = c->node[0]->qts;

    qtest_writel(home, RES(stop), 1);
    g_assert_true(distvm_wait_console(c->node[0], "distvm-guest: DONE", 60));
    for (int kind = 0; kind < kinds; kind++) {
        g_assert_cmpuint(qtest_readl(home, lost + kind * 4), ==, 0);
    }
    return qtest_readl(home, rounds);
}

static void place_all(DistvmCluster *c, int *where, const int *to)
{
    for (int cpu = 0; cpu < 4; cpu++) {
        if (where[cpu] != to[cpu]) {
            move_vcpu(c, c->node[0]->qts, cpu, where[cpu], to[cpu]);
            where[cpu] = to[cpu];
        }
    }
    check_placement(c, 4, where);
}

/*
 * A 3-node cluster running mode x2apic of the guest (with its command
 * line @more too) on 4 vCPUs placed 0:1:2:1, once the guest's LAPICs are
 * in x2APIC mode.
 */
static DistvmCluster *start_x2apic(const char *more)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        MACHINE " -cpu qemu64,+x2apic -smp 4 -kernel %s "
        "-append 'cpus=4 x2apic=1%s'", elf, more);
    DistvmCluster *c = distvm_cluster_start_with(tmpdir, 3,
                                                 "placement=0:1:2:1", args);

    g_assert_true(distvm_wait_console(c->node[0], "distvm-guest: cpu 0 "
                                      "x2apic running", 120));
    return c;
}

static void test_x2apic(void)
{
    int where[4] = { 0, 1, 2, 1 };
    DistvmCluster *c;
    QTestState *home;
    uint32_t rounds;

    c = start_x2apic("");
    home = c->node[0]->qts;
    for (int i = 0; i < G_N_ELEMENTS(spread_placements); i++) {
        place_all(c, where, spread_placements[i]);
        for (int cpu = 1; cpu < 4; cpu++) {
            wait_counter(home, RES(x2_rtc) + cpu * 4,
                         qtest_readl(home, RES(x2_rtc) + cpu * 4), 20,
                         "RTC interrupts");
        }
        rounds = wait_counter(home, RES(x2_rounds),
                              qtest_readl(home, RES(x2_rounds)), 20,
                              "IPI rounds");
        g_test_message("vCPUs on nodes %d %d %d %d: %u IPI rounds so far",
                       where[0], where[1], where[2], where[3], rounds);
    }

    rounds = stop_rounds(c, RES(x2_rounds), RES(x2_lost), DG_X2_KINDS);
    for (int cpu = 0; cpu < 4; cpu++) {
        uint64_t ipi = RES(x2_ipi) + cpu * DG_X2_KINDS * 4;
        uint32_t lowest = qtest_readl(home, ipi + DG_X2_LOWEST * 4);

        /* cluster 0, one bit per APIC ID */
        g_assert_cmphex(qtest_readl(home, RES(x2_ldr) + cpu * 4), ==,
                        1u << cpu);
        g_assert_cmpuint(qtest_readl(home, ipi + DG_X2_BROADCAST * 4), ==,
                         rounds);
        g_assert_cmpuint(qtest_readl(home, ipi + DG_X2_OTHER_CLUSTER * 4),
                         ==, 0);
        g_assert_cmpuint(qtest_readl(home,
                                     ipi + DG_X2_XAPIC_BROADCAST * 4), ==, 0);
        for (int kind = DG_X2_PHYSICAL; kind <= DG_X2_ALL_BUT_SELF; kind++) {
            if (kind != DG_X2_LOWEST) {
                g_assert_cmpuint(qtest_readl(home, ipi + kind * 4), ==,
                                 cpu ? rounds : 0);
            }
        }
        /* QEMU gives a lowest-priority interrupt to the first addressed */
        g_assert_cmpuint(lowest, ==, cpu == 1 ? rounds : 0);
        if (cpu) {
            g_assert_cmpuint(qtest_readl(home, RES(x2_rtc) + cpu * 4), >, 0);
        } else {
            g_assert_cmpuint(qtest_readl(home, RES(x2_rtc)), ==, 0);
        }
    }
    {
        g_autofree char *console = distvm_read_console(c->node[0]);

        distvm_assert_console_clean(console);
    }
    distvm_cluster_quit(c);
}

/*
 * MSIs from a device of the home node (mode=msi of the guest, QEMU's edu
 * device, 4 vCPUs over 3 nodes, moved twice): physical, logical, lowest
 * priority and broadcast MSIs each reach exactly the vCPUs they address,
 * wherever those run, once per round.  With a node other than home given
 * (device-nodes), that node runs the edu device: each round's MSI
 * address, written to its configuration on home, is the one it uses for
 * the MMIO write that follows at once, wherever it comes from.  With
 * MSI_JOIN, node 2 joins the running guest (start-nodes=2) before the
 * vCPUs move: it learns where the edu device's BAR is and what its
 * configuration is from home, and its vCPUs' accesses go to node 1.
 */
enum { MSI_HOME, MSI_DEVICE_NODE, MSI_JOIN };

/* The cluster of test_msi() with MSI_JOIN: node 2 joins the guest. */
static DistvmCluster *msi_join_start(const char *opts, const char *args,
                                     int *where)
{
    DistvmCluster *c = g_new0(DistvmCluster, 1);
    QDict *ev;

    c->nodes = 3;
    c->dir = g_strdup_printf("%s/msi-join", tmpdir);
    g_assert(g_mkdir_with_parents(c->dir, 0700) == 0);
    for (int n = 0; n < 3; n++) {
        g_autofree char *base = distvm_cluster_accel_opts(c->dir, 3, n);
        g_autofree char *all = g_strdup_printf(
            "%s,start-nodes=2,placement=0:1:1:0,%s", base, opts);

        if (n == 2) {
            g_assert_true(distvm_wait_console(c->node[0], "distvm-guest: "
                                              "cpu 0 msi running", 120));
        }
        c->node[n] = distvm_node_start(c->dir, n, all, args);
        if (n == 1) {
            distvm_wait_state(c->node[0]->qts, "running", 60);
            distvm_wait_state(c->node[1]->qts, "running", 60);
        }
    }
    ev = distvm_wait_event(c->node[0]->qts, "DISTVM_NODE_JOINED",
                           DISTVM_EVENT_TIMEOUT_S);
    qobject_unref(ev);
    distvm_wait_state(c->node[2]->qts, "running", 60);
    where[2] = 1;
    where[3] = 0;
    return c;
}

static void test_msi(const void *opaque)
{
    int variant = GPOINTER_TO_INT(opaque);
    int dev_node = variant == MSI_HOME ? 0 : 1;
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        MACHINE " -smp 4 -device edu,id=edu0 -kernel %s "
        "-append 'cpus=4 msi=1'", elf);
    int where[4] = { 0, 1, 2, 1 };
    DistvmCluster *c;
    QTestState *home;
    g_autofree char *console = NULL;
    uint32_t rounds;

    if (variant == MSI_JOIN) {
        c = msi_join_start("device-nodes=edu0@1", args, where);
    } else {
        g_autofree char *opts = g_strdup_printf(
            "placement=0:1:2:1%s", dev_node ? ",device-nodes=edu0@1" : "");

        c = distvm_cluster_start_with(tmpdir, 3, opts, args);
        g_assert_true(distvm_wait_console(c->node[0], "distvm-guest: cpu 0 "
                                          "msi running", 120));
    }
    home = c->node[0]->qts;
    for (int i = 0; i < G_N_ELEMENTS(spread_placements); i++) {
        place_all(c, where, spread_placements[i]);
        rounds = wait_counter(home, RES(msi_rounds),
                              qtest_readl(home, RES(msi_rounds)), 20,
                              "MSI rounds");
        g_test_message("vCPUs on nodes %d %d %d %d: %u MSI rounds so far",
                       where[0], where[1], where[2], where[3], rounds);
    }
    rounds = stop_rounds(c, RES(msi_rounds), RES(msi_lost), DG_MSI_KINDS);
    for (int cpu = 0; cpu < 4; cpu++) {
        uint64_t msi = RES(msi) + cpu * DG_MSI_KINDS * 4;

        g_assert_cmpuint(qtest_readl(home, msi + DG_MSI_PHYSICAL * 4), ==,
                         rounds);
        g_assert_cmpuint(qtest_readl(home, msi + DG_MSI_LOGICAL * 4), ==,
                         cpu ? rounds : 0);
        /* QEMU gives a lowest-priority interrupt to the first addressed */
        g_assert_cmpuint(qtest_readl(home, msi + DG_MSI_LOWEST * 4), ==,
                         cpu == 1 ? rounds : 0);
        g_assert_cmpuint(qtest_readl(home, msi + DG_MSI_BROADCAST * 4), ==,
                         rounds);
    }
    if (dev_node) {
        /* the vCPUs ran on every node in turn */
        distvm_check_placed_device(c->node, c->nodes, "edu0", dev_node,
                                   true);
        /* Home would unplug its own copy only. */
        {
            QDict *err = qtest_qmp_assert_failure_ref(home,
                "{ 'execute': 'device_del', 'arguments': "
                "{ 'id': 'edu0' } }");

            g_assert_cmpstr(qdict_get_str(err, "desc"), ==,
                            "distvm: device 'edu0' runs on node 1 "
                            "(device-nodes); it cannot be unplugged");
            qobject_unref(err);
        }
        /* Nor can its node be drained */
        distvm_qmp_refused(home, "distvm: node 1 runs device 'edu0' "
                           "(device-nodes), which cannot be drained",
                           "{ 'execute': 'distvm-drain-node', "
                           "'arguments': { 'node': 1 } }");
    }
    console = distvm_read_console(c->node[0]);
    distvm_assert_console_clean(console);
    distvm_cluster_quit(c);
}

/*
 * After a reset, every node addresses the LAPICs as the reset left them
 * (mode=x2apic reset=1 of the guest, 4 vCPUs over 3 nodes): once the
 * guest ran in x2APIC mode, vCPU 0 asks for a hard reset; after it no
 * vCPU writes to its LAPIC but for its own NMIs to the xAPIC broadcast
 * (physical destination 0xff), which reach every vCPU, on every node.  A
 * node that reset only its own vCPUs' LAPICs would still take the
 * others' for x2APICs, which ignore that destination.
 */
static void test_x2apic_reset(void)
{
    g_autofree char *console = NULL;
    static const int where[] = { 0, 1, 2, 1 };
    DistvmCluster *c;
    QTestState *home;
    struct dg_reset r;

    c = start_x2apic(" reset=1");
    home = c->node[0]->qts;
    wait_counter(home, RES(x2_rounds), qtest_readl(home, RES(x2_rounds)), 20,
                 "IPI rounds");
    qtest_writel(home, RES(stop), 1);
    g_assert_true(distvm_wait_console(c->node[0], "distvm-guest: cpu 0 "
                                      "xapic after the reset", 120));
    g_assert_true(distvm_wait_console(c->node[0], "distvm-guest: DONE", 60));
    distvm_memread(home, DG_RESET_BASE, &r, sizeof(r));
    g_assert_cmphex(r.magic, ==, DG_RESET_MAGIC);
    g_assert_cmpuint(r.boots, ==, 2);
    g_assert_cmpuint(qtest_readl(home, RES(x2_lost) +
                                 DG_X2_XAPIC_BROADCAST * 4), ==, 0);
    for (int cpu = 0; cpu < 4; cpu++) {
        g_assert_cmpuint(qtest_readl(home, RES(x2_nmi) + cpu * 4), ==,
                         4 * DG_X2_RESET_ROUNDS);
    }
    check_placement(c, 4, where);
    console = distvm_read_console(c->node[0]);
    g_assert_nonnull(strstr(console, "distvm-guest: cpu 0 resetting"));
    distvm_assert_console_clean(console);
    distvm_cluster_quit(c);
}

/*
 * A 2-node cluster, in @name under the test's directory, running the
 * bare-metal guest on one vCPU placed on node 1 from power-on, with the
 * guest's command line @append.
 */
static void start_away(DistvmCluster *c, char **dir, const char *name,
                       const char *append)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        MACHINE " -smp 1 -kernel %s -append 'cpus=1 %s'", elf, append);

    *dir = g_strdup_printf("%s/%s", tmpdir, name);
    *c = (DistvmCluster) { .nodes = 2, .dir = *dir };
    g_assert(g_mkdir_with_parents(*dir, 0700) == 0);
    for (int n = 0; n < 2; n++) {
        g_autofree char *opts = distvm_cluster_accel_opts(*dir, 2, n);
        g_autofree char *placed = g_strdup_printf("%s,placement=1", opts);

        c->node[n] = distvm_node_start(*dir, n, placed, args);
    }
    for (int n = 0; n < 2; n++) {
        distvm_wait_state(c->node[n]->qts, "running", 60);
    }
    g_assert_cmpint(distvm_vcpu_node(c->node[0]->qts, 0), ==, 1);
}

/*
 * Suspend to RAM requested by the boot vCPU away from home (mode=s3 of
 * the guest, vCPU 0 on node 1): home replays its write to the PM1
 * control register, and the vCPU stops at once, as it would on one node
 * (it counts at most once after the request); the cluster stops; after
 * system_wakeup on home the firmware resumes the vCPU, still on node 1,
 * at the waking vector the guest set.
 */
static void test_suspend(void)
{
    g_autofree char *dir = NULL;
    static const int where[] = { 1 };
    DistvmCluster c;
    QTestState *home;
    uint32_t after;

    start_away(&c, &dir, "suspend", "s3=1");
    home = c.node[0]->qts;
    g_assert_true(distvm_wait_console(c.node[0], "distvm-guest: cpu 0 s3 "
                                      "suspending", 120));
    distvm_wait_status(home, "suspended", 5);
    distvm_wait_status(c.node[1]->qts, "paused", 5);
    after = qtest_readl(home, RES(s3_after));
    g_usleep(200000);
    g_assert_cmpuint(qtest_readl(home, RES(s3_after)), ==, after);
    g_assert_cmpuint(after, <=, 1);
    g_assert_cmpuint(qtest_readl(home, RES(s3_resumed)), ==, 0);

    qtest_qmp_assert_success(home, "{ 'execute': 'system_wakeup' }");
    g_assert_true(distvm_wait_console(c.node[0], "distvm-guest: cpu 0 s3 "
                                      "resumed", 60));
    g_assert_true(distvm_wait_console(c.node[0], "distvm-guest: cpu 0 DONE",
                                      30));
    g_assert_cmpuint(qtest_readl(home, RES(s3_resumed)), ==, 1);
    g_assert_cmphex(qtest_readl(home, RES(magic)), ==, DG_MAGIC_DONE);
    g_assert_cmpuint(qtest_readl(home, RES(s3_after)), ==, after);
    distvm_wait_status(home, "running", 5);
    distvm_wait_status(c.node[1]->qts, "running", 5);
    check_placement(&c, 1, where);
    {
        g_autofree char *console = distvm_read_console(c.node[0]);

        distvm_assert_console_clean(console);
    }
    distvm_node_quit(c.node[1]);
    distvm_node_quit(c.node[0]);
}

/*
 * A hard reset requested by the boot vCPU away from home (mode=reset of
 * the guest, vCPU 0 on node 1, through the PIIX3's reset control
 * register): the vCPU stops at once, as it would on one node (it counts
 * at most once after the request), and the firmware starts the guest
 * again on node 1.
 */
static void test_reset(void)
{
    g_autofree char *dir = NULL;
    g_autofree char *console = NULL;
    static const int where[] = { 1 };
    DistvmCluster c;
    QTestState *home;
    struct dg_reset r;

    start_away(&c, &dir, "reset", "reset=1");
    home = c.node[0]->qts;
    g_assert_true(distvm_wait_console(c.node[0], "distvm-guest: cpu 0 "
                                      "started again after the reset", 120));
    g_assert_true(distvm_wait_console(c.node[0], "distvm-guest: DONE", 30));
    distvm_memread(home, DG_RESET_BASE, &r, sizeof(r));
    g_assert_cmphex(r.magic, ==, DG_RESET_MAGIC);
    g_assert_cmpuint(r.boots, ==, 2);
    g_assert_cmpuint(r.after, <=, 1);
    check_placement(&c, 1, where);
    console = distvm_read_console(c.node[0]);
    g_assert_nonnull(strstr(console, "distvm-guest: cpu 0 resetting"));
    distvm_assert_console_clean(console);
    distvm_node_quit(c.node[1]);
    distvm_node_quit(c.node[0]);
}

/*
 * A power-off requested by the boot vCPU away from home (mode=poweroff of
 * the guest, vCPU 0 on node 1, through the ACPI PM1 control register):
 * home reports the guest's shutdown and every node exits by itself, with
 * status 0.
 */
static void test_poweroff(void)
{
    g_autofree char *dir = NULL;
    g_autofree char *console = NULL;
    DistvmCluster c;
    QDict *ev;

    start_away(&c, &dir, "poweroff", "poweroff=1");
    ev = distvm_wait_event(c.node[0]->qts, "SHUTDOWN", DISTVM_EVENT_TIMEOUT_S);
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(ev, "data"), "reason"),
                    ==, "guest-shutdown");
    qobject_unref(ev);
    for (int n = 0; n < 2; n++) {
        qtest_wait_qemu(c.node[n]->qts);
    }
    console = distvm_read_console(c.node[0]);
    g_assert_nonnull(strstr(console, "distvm-guest: cpu 0 powering off"));
    distvm_assert_console_clean(console);
    for (int n = 0; n < 2; n++) {
        distvm_node_quit(c.node[n]);
    }
}

/*
 * VMware's I/O port, read by the boot vCPU away from home (mode=vmport of
 * the guest, vCPU 0 on node 1): home's device takes the command from the
 * vCPU's registers and its answers reach them, as on one node.
 */
static void test_vmport(void)
{
    g_autofree char *dir = NULL;
    /* EAX, EBX, ECX, EDX, ESI, EDI after GETVERSION and GETRAMSIZE */
    static const uint32_t want[DG_VMPORT_CMDS][6] = {
        { 6, 0x564d5868, 2, 0x5658, 0x51515151, 0xd1d1d1d1 },
        { 128 << 20, 0x1177, 0x14, 0x5658, 0x51515152, 0xd1d1d1d0 },
    };
    DistvmCluster c;

    start_away(&c, &dir, "vmport", "vmport=1");
    g_assert_true(distvm_wait_console(c.node[0], "distvm-guest: DONE", 120));
    for (int i = 0; i < DG_VMPORT_CMDS; i++) {
        for (int r = 0; r < 6; r++) {
            g_assert_cmphex(qtest_readl(c.node[0]->qts,
                                        RES(vmport_regs) + (i * 6 + r) * 4),
                            ==, want[i][r]);
        }
    }
    g_assert_cmpint(io_sent_home(c.node[1]->qts, "port"), >, 0);
    distvm_node_quit(c.node[1]);
    distvm_node_quit(c.node[0]);
}

/*
 * The 8259 asks for an interrupt on the LINT0 of the boot vCPU away from
 * home, which has them off (mode=lint0 of the guest, vCPU 0 on node 1);
 * the vCPU masks LINT0 and turns them on: it takes none, and runs on,
 * where it triple faulted and the guest rebooted (patches/0023).
 */
static void test_lint0(void)
{
    g_autofree char *dir = NULL;
    g_autofree char *console = NULL;
    DistvmCluster c;

    start_away(&c, &dir, "lint0", "lint0=1");
    g_assert_true(distvm_wait_console(c.node[0],
                                      "distvm-guest: cpu 0 lint0 done", 120));
    /* LINT0 masked: nothing came through it */
    g_assert_cmpint(qtest_readl(c.node[0]->qts, RES(pic_ticks)), ==, 0);
    g_assert_cmpint(distvm_vcpu_node(c.node[0]->qts, 0), ==, 1);
    console = distvm_read_console(c.node[0]);
    distvm_assert_console_clean(console);
    distvm_assert_booted_once(c.node[0]->qts);
    distvm_node_quit(c.node[1]);
    distvm_node_quit(c.node[0]);
}

/*
 * Start mode @mode ("a20=1") of the bare-metal guest on 2 vCPUs, placed
 * on nodes @where[0] and @where[1] of a cluster of @nodes.
 */
static DistvmCluster *two_vcpu_mode_start(int nodes, const int *where,
                                          const char *mode)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        MACHINE " -smp 2 -kernel %s -append 'cpus=2 %s'", elf, mode);
    g_autofree char *placement = g_strdup_printf("placement=%d:%d",
                                                 where[0], where[1]);

    return distvm_cluster_start_with(tmpdir, nodes, placement, args);
}

/*
 * Until the guest of two_vcpu_mode_start() says DONE (false if not within
 * @timeout_s); the placement checked.
 */
static bool two_vcpu_mode_wait(DistvmCluster *c, const int *where,
                               int timeout_s)
{
    bool done = distvm_wait_console(c->node[0], "distvm-guest: DONE",
                                    timeout_s);

    check_placement(c, 2, where);
    return done;
}

/* Both: until DONE (*@done false if not within @timeout_s) */
static DistvmCluster *two_vcpu_mode_run(int nodes, const int *where,
                                        const char *mode, int timeout_s,
                                        bool *done)
{
    DistvmCluster *c = two_vcpu_mode_start(nodes, where, mode);

    *done = two_vcpu_mode_wait(c, where, timeout_s);
    return c;
}

/* After two_vcpu_mode_run(): the console is clean; the cluster quits. */
static void two_vcpu_mode_end(DistvmCluster *c)
{
    g_autofree char *console = distvm_read_console(c->node[0]);

    distvm_assert_console_clean(console);
    distvm_cluster_quit(c);
}

/*
 * The A20 line of the boot vCPU (mode=a20 of the guest), vCPU 0 on node 1
 * and vCPU 1 on node 2: home's port 0x92 drives it.  vCPU 0 turns A20
 * off itself, and its very next access wraps at 1 MiB; then vCPU 1 turns
 * it off for vCPU 0, which sees its accesses wrap, and on again.  Last,
 * the other piece of CPU glue that home's devices hold, the vAPIC option
 * ROM, is off on every node.
 */
static void test_a20(void)
{
    static const int where[] = { 1, 2 };
    bool done;
    DistvmCluster *c = two_vcpu_mode_run(3, where, "a20=1", 120, &done);
    QTestState *home = c->node[0]->qts;

    /* What the guest recorded tells what went wrong, round by round. */
    for (uint32_t r = 0; r < DG_A20_ROUNDS; r++) {
        uint64_t self = RES(a20_self) + r * 12;

        g_test_message("round %u: vCPU 0 waited %" PRIu64 " TSC ticks for "
                       "A20 off, then read port 0x92 as 0x%x", r,
                       qtest_readq(home, RES(a20_wait_ticks) + r * 8),
                       qtest_readl(home, RES(a20_wait_port) + r * 4) & 0xff);
        /* A20 off: the write and the read at DG_A20_HI went below 1 MiB */
        g_assert_cmphex(qtest_readl(home, self), ==, DG_A20_LO_WORD + r);
        g_assert_cmphex(qtest_readl(home, self + 4), ==,
                        ~(DG_A20_LO_WORD + r));
        g_assert_cmphex(qtest_readl(home, self + 8), ==, DG_A20_HI_WORD + r);
        g_assert_cmpuint(qtest_readl(home, RES(a20_off) + r * 4), ==, 1);
    }
    g_assert_true(done);
    g_assert_cmpint(io_sent_home(c->node[1]->qts, "port"), >, 0);
    g_assert_cmpint(io_sent_home(c->node[2]->qts, "port"), >, 0);
    /* and no node has the vAPIC option ROM, which cannot span nodes */
    for (int n = 0; n < 3; n++) {
        g_assert_false(distvm_vcpu_vapic(c->node[n]->qts, 0));
    }
    two_vcpu_mode_end(c);
}

/*
 * A vCPU's TLB entries for MMIO keep resolving to the regions they were
 * filled for while another vCPU changes the memory map (mode=remap of
 * the guest): vCPU 0 on node 1 toggles a PAM register 20,000 times (home
 * replays each write, which every node applies to its map), while vCPU 1
 * on home reads the HPET's capabilities register in bursts of 32.  Every
 * read must return the HPET's value.
 */
static void test_remap(void)
{
    static const int where[] = { 1, 0 };
    bool done;
    g_autofree char *mode = g_strdup_printf("remap=%d", DG_REMAP_ROUNDS);
    DistvmCluster *c = two_vcpu_mode_run(2, where, mode, 300, &done);
    QTestState *home = c->node[0]->qts;

    g_assert_true(done);
    g_assert_cmpuint(qtest_readl(home, RES(remap_done)), ==,
                     DG_REMAP_ROUNDS);
    g_assert_cmpuint(qtest_readl(home, RES(remap_reads)), >=,
                     DG_REMAP_BURST);
    g_assert_cmphex(qtest_readl(home, RES(remap_bad_value)), ==, 0);
    g_assert_cmpuint(qtest_readl(home, RES(remap_bad)), ==, 0);
    two_vcpu_mode_end(c);
}

/* The fault rates (pages a second, by serving node) of vCPU @cpu here. */
static uint64_t fault_rate(QTestState *qts, int cpu, int from)
{
    QDict *ret = qtest_qmp_assert_success_ref(qts, "{ 'execute': "
                                              "'query-distvm' }");
    QList *vcpus = qdict_get_qlist(qdict_get_qdict(ret, "affinity"),
                                   "vcpus");
    const QListEntry *e;
    uint64_t rate = 0;
    int n = 0;

    QLIST_FOREACH_ENTRY(vcpus, e) {
        QDict *v = qobject_to(QDict, qlist_entry_obj(e));
        const QListEntry *r;
        int node = 0;

        if (qdict_get_int(v, "cpu-index") != cpu) {
            continue;
        }
        QLIST_FOREACH_ENTRY(qdict_get_qlist(v, "fault-rate"), r) {
            if (from < 0 || node == from) {
                rate += qnum_get_uint(qobject_to(QNum, qlist_entry_obj(r)));
            }
            node++;
        }
        n++;
    }
    g_assert_cmpint(n, ==, 1);
    qobject_unref(ret);
    return rate;
}

static void check_policy(DistvmCluster *c, const char *policy)
{
    for (int n = 0; n < c->nodes; n++) {
        QDict *ret = qtest_qmp_assert_success_ref(c->node[n]->qts,
                                                  "{ 'execute': "
                                                  "'query-distvm' }");

        g_assert_cmpstr(qdict_get_str(ret, "policy"), ==, policy);
        qobject_unref(ret);
    }
}

/*
 * Hold process @pid to @percent of one host CPU with a cgroup (v1's cpu
 * controller, or v2's); returns the cgroup's directory, to remove once
 * the process is gone.
 */
static char *cpu_limit(pid_t pid, int percent)
{
    g_autofree char *quota = g_strdup_printf("%d", percent * 1000);
    g_autofree char *max = g_strdup_printf("%d 100000", percent * 1000);
    g_autofree char *procs = g_strdup_printf("%d", (int)pid);
    bool v1 = g_file_test("/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
                          G_FILE_TEST_EXISTS);
    char *dir = g_strdup_printf("/sys/fs/cgroup/%sdistvm-test-%d",
                                v1 ? "cpu/" : "", (int)pid);
    g_autofree char *limit = g_build_filename(dir, v1 ? "cpu.cfs_quota_us"
                                                      : "cpu.max", NULL);
    g_autofree char *members = g_build_filename(dir, "cgroup.procs", NULL);

    if (!v1) {
        /* v2: the cpu controller must be enabled for the children */
        distvm_cgroup_write("/sys/fs/cgroup/cgroup.subtree_control", "+cpu");
    }
    g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
    if (!distvm_cgroup_write(limit, v1 ? quota : max) ||
        !distvm_cgroup_write(members, procs)) {
        g_error("cannot hold process %d to %d%% of a CPU in %s: %s",
                (int)pid, percent, dir, g_strerror(errno));
    }
    return dir;
}

/*
 * The remap guest, with vCPU 0's writes not waited for by the node that
 * applies them: on home, vCPU 0 changes the map 40,000 times as fast as
 * home applies it, and every write is mirrored to node 1, whose vCPU 1
 * reads the HPET through home meanwhile.  Node 1, held to a quarter of
 * a host CPU, applies each write in its main loop, more slowly than home
 * makes them: home's vCPU must wait for node 1 rather than let it fall
 * behind until it gives home up.
 * With 3 nodes, vCPU 0 on node 1 and vCPU 1 on node 2, held to a fifth
 * of a host CPU: home replays vCPU 0's writes and mirrors them to node
 * 2, and its answers to node 1 wait for node 2.  A quarter of the
 * rounds, for time: the slow node takes a few seconds per thousand.
 */
static void test_remap_flow(const void *opaque)
{
    int nodes = GPOINTER_TO_INT(opaque);
    const int where[] = { nodes - 2, nodes - 1 };
    const int rounds = DG_REMAP_ROUNDS / 4;
    g_autofree char *mode = g_strdup_printf("remap=%d", rounds);
    DistvmCluster *c = two_vcpu_mode_start(nodes, where, mode);
    QTestState *home = c->node[0]->qts;
    g_autofree char *cgroup = NULL;
    g_autoptr(QDict) info = NULL;

    /*
     * The node that applies the writes runs on a fraction of a host CPU,
     * so that it is slower than home whatever else this host runs.
     */
    cgroup = cpu_limit(qtest_pid(c->node[nodes - 1]->qts),
                       nodes == 3 ? 20 : 25);
    g_assert_true(two_vcpu_mode_wait(c, where, 300));
    g_assert_cmpuint(qtest_readl(home, RES(remap_done)), ==, rounds);
    g_assert_cmpuint(qtest_readl(home, RES(remap_bad)), ==, 0);
    /* and home waited for the node that applies the writes */
    info = distvm_assert_active(home, 0);
    g_test_message("home waited %" PRId64 " times",
                   qdict_get_int(info, "flow-waits"));
    g_assert_cmpint(qdict_get_int(info, "flow-waits"), >, 0);
    two_vcpu_mode_end(c);
    g_assert_cmpint(rmdir(cgroup), ==, 0);
}

/*
 * Interrupts made faster than their node takes them (mode=ipiflood of
 * the guest): vCPU 0 on node 1 sends vCPU 1 on home 1,000,000 IPIs
 * without waiting, home held to a tenth of a host CPU.  Home delivers
 * them under the BQL, more slowly than they come, and takes them from
 * the connection in bursts: node 1's vCPU must wait for home rather than
 * let it fall behind until it gives node 1 up.
 */
static void test_ipi_flood(void)
{
    static const int where[] = { 1, 0 };
    const uint32_t count = 1000000;
    g_autofree char *mode = g_strdup_printf("ipiflood=%u", count);
    DistvmCluster *c = two_vcpu_mode_start(2, where, mode);
    QTestState *home = c->node[0]->qts;
    g_autofree char *cgroup = cpu_limit(qtest_pid(home), 10);
    g_autoptr(QDict) info = NULL;
    uint32_t taken;

    g_assert_true(two_vcpu_mode_wait(c, where, 300));
    g_assert_cmpuint(qtest_readl(home, RES(ipiflood_sent)), ==, count);
    taken = qtest_readl(home, RES(ipi_recv) + 4);
    g_test_message("vCPU 1 took %u of the %u IPIs", taken, count);
    g_assert_cmpuint(taken, >=, 1);
    g_assert_cmpuint(taken, <=, count);
    /* and node 1's vCPU 0 waited for home */
    info = distvm_assert_active(c->node[1]->qts, 1);
    g_assert_cmpint(qdict_get_int(info, "flow-waits"), >, 0);
    two_vcpu_mode_end(c);
    g_assert_cmpint(rmdir(cgroup), ==, 0);
}

/* The node speeds and tiers @c reports, on each of its nodes */
static void check_speeds(DistvmCluster *c, const double *speed,
                         const int *tier)
{
    for (int n = 0; n < c->nodes; n++) {
        QDict *ret = qtest_qmp_assert_success_ref(c->node[n]->qts,
                                                  "{ 'execute': "
                                                  "'query-distvm' }");
        QListEntry *e;
        int i = 0;

        QLIST_FOREACH_ENTRY(qdict_get_qlist(ret, "node-list"), e) {
            QDict *node = qobject_to(QDict, qlist_entry_obj(e));

            g_assert_cmpfloat(qdict_get_double(node, "speed"), ==, speed[i]);
            g_assert_cmpint(qdict_get_int(node, "tier"), ==, tier[i]);
            i++;
        }
        g_assert_cmpint(i, ==, c->nodes);
        qobject_unref(ret);
    }
}

/*
 * CPU tiers (mode=busy of the guest: both vCPUs only compute): node 1,
 * held to a quarter of a host CPU by a cgroup, declares speed=0.25.
 * Every node reports it in tier 2 and home in tier 1, and under
 * policy=affinity the busy vCPU 1 leaves node 1 for home, which has room
 * for it, and stays there.  The computations end exact.
 */
/*
 * Within a minute, vCPU @cpu moves from node @from to node @to for its
 * tier, the first move of the run, and the @ncpus vCPUs then stay as
 * @settled.
 */
static void wait_tier_move(DistvmCluster *c, int cpu, int from, int to,
                           int ncpus, const int *settled)
{
    QTestState *home = c->node[0]->qts;

    for (int i = 0; distvm_vcpu_node(home, cpu) != to; i++) {
        g_assert_cmpint(i, <, 600);     /* a minute */
        g_usleep(100 * 1000);
    }
    wait_moved_for(home, cpu, from, to, "tier");
    check_placement(c, ncpus, settled);
    g_usleep(3 * G_USEC_PER_SEC);
    check_placement(c, ncpus, settled);
}

/* Stop mode=busy on @ncpus vCPUs; their computations are exact */
static void stop_busy(DistvmCluster *c, int ncpus)
{
    QTestState *home = c->node[0]->qts;
    g_autofree char *console = NULL;
    struct dg_results r;

    qtest_writel(home, RES(stop), 1);
    g_assert_true(distvm_wait_console(c->node[0], "distvm-guest: DONE", 60));
    distvm_memread(home, DG_RESULT_BASE, &r, sizeof(r));
    for (int cpu = 0; cpu < ncpus; cpu++) {
        uint64_t x = cpu + 1;

        g_test_message("vCPU %d: %" PRIu64 " steps", cpu, r.busy_steps[cpu]);
        g_assert_cmpuint(r.busy_steps[cpu], >, 0);
        for (uint64_t i = 0; i < r.busy_steps[cpu]; i++) {
            x = dg_busy_step(x);
        }
        g_assert_cmphex(r.busy_value[cpu], ==, x);
    }
    console = distvm_read_console(c->node[0]);
    distvm_assert_console_clean(console);
}

static void test_tier(void)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        MACHINE " -smp 2 -kernel %s -append 'cpus=2 busy=1'", elf);
    g_autofree char *cgroup = NULL;
    static const double speed[] = { 1, 0.25 };
    static const int tier[] = { 1, 2 }, settled[] = { 0, 0 };
    static const char *const opts[] = {
        "placement=0:1,policy=affinity,capacity=2",
        "placement=0:1,policy=affinity,capacity=2,speed=0.25",
    };
    DistvmCluster *c = distvm_cluster_start_each(tmpdir, 2, opts, args);

    cgroup = cpu_limit(qtest_pid(c->node[1]->qts), 25);
    check_speeds(c, speed, tier);
    wait_tier_move(c, 1, 1, 0, 2, settled);
    stop_busy(c, 2);
    distvm_cluster_quit(c);
    g_assert_cmpint(rmdir(cgroup), ==, 0);
}

/*
 * The fastest node has no room (capacity=1, taken by vCPU 0): the busy
 * vCPU on the slow node, refused there, goes to the next fastest node.
 */
static void test_tier_next(void)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        MACHINE " -smp 3 -kernel %s -append 'cpus=3 busy=1'", elf);
    g_autofree char *cgroup = NULL;
    static const double speed[] = { 1, 0.25, 0.8 };
    static const int tier[] = { 1, 3, 2 }, settled[] = { 0, 2, 2 };
    static const char *const opts[] = {
        "placement=0:1:2,policy=affinity,capacity=1",
        "placement=0:1:2,policy=affinity,capacity=1,speed=0.25",
        "placement=0:1:2,policy=affinity,capacity=2,speed=0.8",
    };
    DistvmCluster *c = distvm_cluster_start_each(tmpdir, 3, opts, args);

    cgroup = cpu_limit(qtest_pid(c->node[1]->qts), 25);
    check_speeds(c, speed, tier);
    wait_tier_move(c, 1, 1, 2, 3, settled);
    stop_busy(c, 3);
    distvm_cluster_quit(c);
    g_assert_cmpint(rmdir(cgroup), ==, 0);
}

/*
 * policy=affinity (mode=affinity of the guest): two writers run on nodes
 * 1 and 2, and the two readers of their data start on home.  The policy
 * moves each reader to its writer's node, for the policy, and there
 * reader 4's remote faults fall at least tenfold.  Writer 1 is then moved
 * home by a command while its reader arrives on node 1: the move does not
 * pay off, and the reader goes back home, where it stays.  Reader 4, then
 * moved home by a command, stays too: a command wins over the policy.
 * The readers never see stale data, and the data end as the writers left
 * them.  distvm-set-policy from a node other than home reaches every
 * node.
 */
/* The data of mode=affinity=@rounds at its end, exact; a clean console */
static void check_affinity_data(DistvmCluster *c, uint32_t rounds)
{
    QTestState *home = c->node[0]->qts;
    g_autofree char *console = NULL;

    for (int k = 0; k < DG_AFF_PAIRS; k++) {
        struct dg_aff_writer w;
        struct dg_aff_reader r;
        g_autofree uint32_t *data = g_new(uint32_t, DG_AFF_PAGES * 1024);

        distvm_memread(home, DG_AFF_PAIR(k), &w, sizeof(w));
        distvm_memread(home, DG_AFF_READER(k), &r, sizeof(r));
        distvm_memread(home, DG_AFF_DATA(k, 0), data,
                       DG_AFF_PAGES * 4096);
        g_assert_cmpuint(r.rounds, ==, rounds);
        g_assert_cmpuint(r.errors, ==, 0);
        g_assert_cmpuint(w.passes, >, 0);
        for (int i = 0; i < DG_AFF_PAGES * 1024; i++) {
            if (data[i] != w.passes) {
                g_error("pair %d: word %d is %" PRIu32 ", not %" PRIu32, k, i,
                        data[i], w.passes);
            }
        }
    }
    console = distvm_read_console(c->node[0]);
    distvm_assert_console_clean(console);
}

static void test_affinity(void)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        MACHINE " -smp 5 -kernel %s -append 'cpus=5 affinity=%d'", elf,
        DG_AFFINITY_ROUNDS);
    /* writer 1 + k on node 1 + k, its reader 3 + k on home */
    const int start[5] = { 0, 1, 2, 0, 0 }, settled[5] = { 0, 0, 2, 0, 2 };
    const int held[5] = { 0, 0, 2, 0, 0 };
    DistvmCluster *c = distvm_cluster_start_with(
        tmpdir, 3, "placement=0:1:2:0:0,policy=affinity,capacity=3", args);
    QTestState *home = c->node[0]->qts;
    uint64_t before = 0, after;
    /* reader 3 to node 1, reader 4 to node 2, writer 1 home, reader 3 back */
    bool seen[4] = { false, false, false, false };

    check_placement(c, 5, start);
    check_policy(c, "affinity");
    while (!(seen[0] && seen[1] && seen[2] && seen[3])) {
        QDict *ev = distvm_wait_event(home, "DISTVM_VCPU_MOVED",
                                      DISTVM_EVENT_TIMEOUT_S);
        QDict *data = qdict_get_qdict(ev, "data");
        int cpu = qdict_get_int(data, "cpu-index");
        int from = qdict_get_int(data, "from"), to = qdict_get_int(data, "to");
        const char *reason = qdict_get_str(data, "reason");

        g_test_message("vCPU %d from node %d to node %d: %s", cpu, from, to,
                       reason);
        if (cpu == 3 && !seen[0]) {
            g_assert_cmpint(from, ==, 0);
            g_assert_cmpint(to, ==, 1);
            g_assert_cmpstr(reason, ==, "policy");
            seen[0] = true;
            qtest_qmp_assert_success(home, "{ 'execute': 'distvm-move-vcpu', "
                                     "'arguments': { 'cpu-index': 1, "
                                     "'node': 0 } }");
        } else if (cpu == 4) {
            g_assert_false(seen[1]);
            g_assert_cmpint(from, ==, 0);
            g_assert_cmpint(to, ==, 2);
            g_assert_cmpstr(reason, ==, "policy");
            seen[1] = true;
            /* What the policy saw: the last window's rate, until the next */
            before = fault_rate(home, 4, 2);
            g_assert_cmpuint(before, >=, 200);
        } else if (cpu == 1) {
            g_assert_false(seen[2]);
            g_assert_cmpint(from, ==, 1);
            g_assert_cmpint(to, ==, 0);
            g_assert_cmpstr(reason, ==, "command");
            seen[2] = true;
        } else {
            /*
             * The move that did not pay off, undone: its data is home's
             * again.  The policy's check of a move's gain and its
             * consolidation (node 1 then runs no vCPU that needs it)
             * both see it, whichever looks first.
             */
            g_assert_cmpint(cpu, ==, 3);
            g_assert_true(seen[2]);
            g_assert_false(seen[3]);
            g_assert_cmpint(from, ==, 1);
            g_assert_cmpint(to, ==, 0);
            if (strcmp(reason, "policy") && strcmp(reason, "consolidate")) {
                g_error("vCPU 3 went home for the reason '%s'", reason);
            }
            seen[3] = true;
        }
        qobject_unref(ev);
    }

    /* Every node reported the four moves. */
    for (int n = 1; n < 3; n++) {
        for (int i = 0; i < 4; i++) {
            qobject_unref(distvm_wait_event(c->node[n]->qts,
                                            "DISTVM_VCPU_MOVED",
                                            DISTVM_EVENT_TIMEOUT_S));
        }
    }

    /* Later, nothing more moves; reader 4 works on local data. */
    g_usleep(3000 * 1000);
    check_placement(c, 5, settled);
    after = fault_rate(c->node[2]->qts, 4, -1);
    g_test_message("reader 4: %" PRIu64 " remote faults/s before its move, %"
                   PRIu64 " after", before, after);
    g_assert_cmpuint(after * 10, <=, before);

    /* A command wins: the policy leaves the reader where it is put. */
    move_vcpu(c, c->node[2]->qts, 4, 2, 0);
    g_usleep(3500 * 1000);
    check_placement(c, 5, held);

    /* Whoever sets the policy, every node follows. */
    qtest_qmp_assert_success(c->node[2]->qts, "{ 'execute': "
                             "'distvm-set-policy', 'arguments': "
                             "{ 'policy': 'manual' } }");
    for (int i = 0; i < 100; i++) {
        QDict *ret = qtest_qmp_assert_success_ref(c->node[1]->qts,
                                                  "{ 'execute': "
                                                  "'query-distvm' }");
        bool manual = !strcmp(qdict_get_str(ret, "policy"), "manual");

        qobject_unref(ret);
        if (manual) {
            break;
        }
        g_usleep(20 * 1000);
    }
    check_policy(c, "manual");

    g_assert_true(distvm_wait_console(c->node[0], "distvm-guest: DONE", 120));
    check_placement(c, 5, held);
    check_affinity_data(c, DG_AFFINITY_ROUNDS);
    distvm_cluster_quit(c);
}

/*
 * policy=affinity with -numa homes: the readers' NUMA node (with vCPUs 0,
 * 3 and 4, and the data) is homed on node 0, and the writers' on nodes 1
 * and 2.  The readers take most of their data from the writers' nodes,
 * which would send them there, but the guest's own placement (SRAT) wins:
 * nothing moves.
 */
static void test_affinity_numa(void)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        MACHINE " -smp 5 -kernel %s -append 'cpus=5 affinity=%d' "
        "-object memory-backend-ram,id=m0,size=64M "
        "-object memory-backend-ram,id=m1,size=32M "
        "-object memory-backend-ram,id=m2,size=32M "
        "-numa node,nodeid=0,cpus=0,cpus=3-4,memdev=m0 "
        "-numa node,nodeid=1,cpus=1,memdev=m1 "
        "-numa node,nodeid=2,cpus=2,memdev=m2", elf,
        DG_AFFINITY_NUMA_ROUNDS);
    const int start[5] = { 0, 1, 2, 0, 0 };
    DistvmCluster *c = distvm_cluster_start_with(
        tmpdir, 3, "placement=0:1:2:0:0,policy=affinity,capacity=3", args);
    uint64_t rate = 0;

    check_placement(c, 5, start);
    check_policy(c, "affinity");
    /* Longer than a vCPU's stay and a window: the policy had its chances */
    for (int i = 0; i < 12; i++) {
        g_usleep(500 * 1000);
        rate = MAX(rate, fault_rate(c->node[0]->qts, 3, 1));
        check_placement(c, 5, start);
    }
    g_test_message("reader 3: up to %" PRIu64 " pages a second from node 1",
                   rate);
    g_assert_cmpuint(rate, >=, 200);
    g_assert_true(distvm_wait_console(c->node[0], "distvm-guest: DONE", 120));
    check_placement(c, 5, start);
    check_affinity_data(c, DG_AFFINITY_NUMA_ROUNDS);
    distvm_cluster_quit(c);
}

/*
 * policy=affinity, consolidation: four vCPUs that all share their data
 * (the guest's shared counter and spinlock records), placed 0:1:2:0 on 3
 * nodes whose capacity is 2.  No node sends them most of their data for
 * long, so the vCPUs do not follow it; the policy runs them on fewer
 * nodes instead ("consolidate"), possibly after a move for a vCPU's data
 * ("policy"), until one node runs none and the others no more than their
 * capacity.  The cluster then takes fewer remote faults a second, nothing
 * moves any more, and the guest's memory is exact.
 */
#define DG_CONSOLIDATE_ITERS 120000000

/* Remote faults a second of the vCPUs, over their nodes' last window */
static uint64_t cluster_fault_rate(DistvmCluster *c, int ncpus)
{
    uint64_t rate = 0;

    for (int cpu = 0; cpu < ncpus; cpu++) {
        int n = distvm_vcpu_node(c->node[0]->qts, cpu);

        rate += fault_rate(c->node[n]->qts, cpu, -1);
    }
    return rate;
}

/*
 * The moves test_consolidate's policy made so far, into @where and
 * @count, and how many were consolidations into @consolidations; returns
 * how many there were.
 */
static int consolidate_moves(QTestState *home, int *where, int *count,
                             int *consolidations)
{
    QDict *ev;
    int n = 0;

    while ((ev = qtest_qmp_event_ref(home, "DISTVM_VCPU_MOVED"))) {
        QDict *data = qdict_get_qdict(ev, "data");
        int cpu = qdict_get_int(data, "cpu-index");
        int from = qdict_get_int(data, "from");
        int to = qdict_get_int(data, "to");
        const char *reason = qdict_get_str(data, "reason");

        g_test_message("vCPU %d from node %d to node %d: %s", cpu, from, to,
                       reason);
        g_assert_cmpint(where[cpu], ==, from);
        if (strcmp(reason, "consolidate")) {
            g_assert_cmpstr(reason, ==, "policy");
        } else {
            (*consolidations)++;
        }
        n++;
        count[from]--;
        count[to]++;
        g_assert_cmpint(count[to], <=, 2);
        where[cpu] = to;
        qobject_unref(ev);
    }
    return n;
}

/* One run of test_consolidate's guest; returns its consolidations */
static int consolidate_run(void)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        MACHINE " -smp 4 -kernel %s -append 'cpus=4 iters=%d'", elf,
        DG_CONSOLIDATE_ITERS);
    const int start[4] = { 0, 1, 2, 0 };
    DistvmCluster *c = distvm_cluster_start_with(
        tmpdir, 3, "placement=0:1:2:0,policy=affinity,capacity=2", args);
    QTestState *home = c->node[0]->qts;
    g_autofree char *console = NULL;
    int where[4] = { 0, 1, 2, 0 }, count[3] = { 2, 1, 1 };
    int consolidations = 0;
    uint64_t before = 0, after;

    check_placement(c, 4, start);
    check_policy(c, "affinity");
    g_assert_true(distvm_wait_console(c->node[0], "distvm-guest: all cpus up",
                                      60));
    for (int i = 0; count[0] && count[1] && count[2]; i++) {
        g_assert_cmpint(i, <, 120);     /* a minute */
        g_usleep(500 * 1000);
        check_policy(c, "affinity");    /* and reads the events */
        consolidate_moves(home, where, count, &consolidations);
        if (count[0] && count[1] && count[2]) {
            before = MAX(before, cluster_fault_rate(c, 4));
        }
    }
    g_usleep(4500 * 1000);      /* longer than a stay: nothing moves */
    after = cluster_fault_rate(c, 4);
    g_assert_cmpint(consolidate_moves(home, where, count, &consolidations),
                    ==, 0);
    check_placement(c, 4, where);
    g_test_message("remote faults a second, all vCPUs: up to %" PRIu64
                   " on 3 nodes, %" PRIu64 " on 2", before, after);
    g_assert_cmpuint(after, <, before);

    g_assert_true(distvm_wait_console(c->node[0], "distvm-guest: DONE", 300));
    check_placement(c, 4, where);
    distvm_check_smp_memory(home, 4, DG_CONSOLIDATE_ITERS);
    console = distvm_read_console(c->node[0]);
    distvm_assert_console_clean(console);
    distvm_cluster_quit(c);
    return consolidations;
}

/*
 * On a loaded machine the fault rates vary more, and moves for data may
 * empty a node first, which leaves nothing to consolidate: that run's
 * other checks hold, and the guest runs again, up to three times.
 */
static void test_consolidate(void)
{
    int consolidations = 0;

    for (int run = 0; run < 3 && !consolidations; run++) {
        if (run) {
            g_test_message("moves for data emptied a node before any "
                           "consolidation: again");
        }
        consolidations = consolidate_run();
    }
    g_assert_cmpint(consolidations, >, 0);
}

/*
 * The guest's agent (vCPU 0) of a distmem-topology device, on node 1:
 * the guest NUMA nodes' RAM ranges with their homes, and the vCPU table
 * after a QMP move and after its own requests, which the MSIs announce;
 * bad requests answer an error and move nothing.
 */
#define TOPO_ARGS MACHINE " -smp 4 -kernel %s -append 'cpus=4 topology=1' " \
    "-device distmem-topology " \
    "-object memory-backend-ram,id=m0,size=64M " \
    "-object memory-backend-ram,id=m1,size=32M " \
    "-object memory-backend-ram,id=m2,size=32M " \
    "-numa node,nodeid=0,cpus=0,memdev=m0 " \
    "-numa node,nodeid=1,cpus=1,cpus=3,memdev=m1 " \
    "-numa node,nodeid=2,cpus=2,memdev=m2"

/* What the guest read of range @i */
static uint32_t topo_range(QTestState *qts, int i, int word)
{
    return qtest_readl(qts, RES(topo_range) +
                       (i * DG_TOPO_RANGE_WORDS + word) * 4);
}

/*
 * The guest saw generation @gen, with the vCPUs where @want (and where
 * every node says they are), and took @irqs MSIs.
 */
static void wait_topology(DistvmCluster *c, const int *want, uint32_t gen,
                          uint32_t irqs)
{
    QTestState *home = c->node[0]->qts;

    wait_counter(home, RES(topo_gen), gen - 1, 1, "topology generation");
    g_assert_cmpuint(qtest_readl(home, RES(topo_gen)), ==, gen);
    for (int cpu = 0; cpu < 4; cpu++) {
        g_assert_cmpuint(qtest_readl(home, RES(topo_node) + cpu * 4), ==,
                         want[cpu]);
    }
    check_placement(c, 4, want);
    wait_counter(home, RES(topo_irqs), irqs - 1, 1, "topology MSIs");
    g_assert_cmpuint(qtest_readl(home, RES(topo_irqs)), ==, irqs);
}

/* The guest asks the device; what the device answered */
static uint32_t topo_ask(QTestState *qts, uint32_t cmd, uint32_t cpu,
                         uint32_t node, uint32_t addr)
{
    uint32_t ask = qtest_readl(qts, RES(topo_ask)) + 1;

    qtest_writel(qts, RES(topo_req) + DG_TOPO_CMD * 4, cmd);
    qtest_writel(qts, RES(topo_req) + DG_TOPO_VCPU * 4, cpu);
    qtest_writel(qts, RES(topo_req) + DG_TOPO_NODE * 4, node);
    qtest_writel(qts, RES(topo_req) + DG_TOPO_ADDR * 4, addr);
    qtest_writel(qts, RES(topo_ask), ask);
    wait_counter(qts, RES(topo_asked), ask - 1, 1, "topology request");
    return qtest_readl(qts, RES(topo_status));
}

static void test_topology(void)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(TOPO_ARGS, elf);
    int where[4] = { 1, 0, 2, 0 };
    DistvmCluster *c = distvm_cluster_start_with(tmpdir, 3,
                                                 "placement=1:0:2:0", args);
    QTestState *home = c->node[0]->qts;
    g_autofree char *console = NULL;
    uint32_t nranges, gen;
    int i;

    g_assert_true(distvm_wait_console(c->node[0], "distvm-guest: cpu 0 "
                                      "topology running", 120));
    g_assert_cmphex(qtest_readl(home, RES(topo_magic)), ==,
                    DISTMEM_TOPOLOGY_MAGIC_VALUE);
    g_assert_cmpuint(qtest_readl(home, RES(topo_version)), ==,
                     DISTMEM_TOPOLOGY_VERSION_VALUE);
    g_assert_cmpuint(qtest_readl(home, RES(topo_vcpus)), ==, 4);
    g_assert_cmpuint(qtest_readl(home, RES(topo_nodes)), ==, 3);

    /*
     * Guest NUMA node 0 (vCPU 0) is homed on node 1, in runs up to 64
     * MiB around the firmware's holes; node 1 (vCPUs 1, 3) on node 0 and
     * node 2 (vCPU 2) on node 2.
     */
    nranges = qtest_readl(home, RES(topo_nranges));
    g_assert_cmpuint(nranges, >=, 3);
    g_assert_cmpuint(nranges, <=, DG_TOPO_RANGES);
    for (i = 0; i < nranges; i++) {
        uint32_t base = topo_range(home, i, 0), size = topo_range(home, i, 2);
        uint32_t node = base < 64 * MiB ? 1 : base < 96 * MiB ? 0 : 2;

        g_test_message("guest RAM 0x%08x size 0x%08x on node %u, flags %u",
                       base, size, topo_range(home, i, 4),
                       topo_range(home, i, 5));
        g_assert_cmpuint(topo_range(home, i, 1), ==, 0);
        g_assert_cmpuint(topo_range(home, i, 3), ==, 0);
        g_assert_cmpuint(topo_range(home, i, 4), ==, node);
        g_assert_cmpuint(topo_range(home, i, 5), ==,
                         DISTMEM_TOPOLOGY_RANGE_HOMED);
        if (base >= 64 * MiB) {
            g_assert_cmpuint(size, ==, 32 * MiB);
        } else {
            g_assert_cmpuint(base + size, <=, 64 * MiB);
        }
    }
    g_assert_cmphex(topo_range(home, nranges - 2, 0), ==, 64 * MiB);
    g_assert_cmphex(topo_range(home, nranges - 1, 0), ==, 96 * MiB);

    gen = qtest_readl(home, RES(topo_gen));
    wait_topology(c, where, gen, 0);

    move_vcpu(c, home, 3, 0, 1);
    where[3] = 1;
    wait_topology(c, where, gen + 1, 1);

    /* To the node of guest RAM at 100 MiB, and to a node by number */
    g_assert_cmpuint(topo_ask(home, DISTMEM_TOPOLOGY_CMD_TO_ADDR, 0, 0,
                              100 * MiB), ==, DISTMEM_TOPOLOGY_ST_STARTED);
    for (int n = 0; n < c->nodes; n++) {
        wait_moved_for(c->node[n]->qts, 0, 1, 2, "guest");
    }
    where[0] = 2;
    wait_topology(c, where, gen + 2, 2);
    g_assert_cmpuint(topo_ask(home, DISTMEM_TOPOLOGY_CMD_TO_NODE, 2, 1, 0),
                     ==, DISTMEM_TOPOLOGY_ST_STARTED);
    for (int n = 0; n < c->nodes; n++) {
        wait_moved_for(c->node[n]->qts, 2, 2, 1, "guest");
    }
    where[2] = 1;
    wait_topology(c, where, gen + 3, 3);

    /* Refused: nothing moves */
    g_assert_cmphex(topo_ask(home, DISTMEM_TOPOLOGY_CMD_TO_NODE, 1, 3, 0),
                    ==, DISTMEM_TOPOLOGY_ST_NO_NODE);
    g_assert_cmphex(topo_ask(home, DISTMEM_TOPOLOGY_CMD_TO_NODE, 4, 1, 0),
                    ==, DISTMEM_TOPOLOGY_ST_NO_VCPU);
    g_assert_cmphex(topo_ask(home, DISTMEM_TOPOLOGY_CMD_TO_ADDR, 1, 0,
                             0xfec00000u), ==, DISTMEM_TOPOLOGY_ST_NO_RAM);
    g_assert_cmphex(topo_ask(home, 3, 1, 1, 0), ==,
                    DISTMEM_TOPOLOGY_ST_BAD_CMD);
    g_assert_cmphex(topo_ask(home, DISTMEM_TOPOLOGY_CMD_TO_ADDR, 1, 0,
                             70 * MiB), ==, DISTMEM_TOPOLOGY_ST_THERE);
    g_usleep(G_USEC_PER_SEC / 2);
    wait_topology(c, where, gen + 3, 3);

    qtest_writel(home, RES(stop), 1);
    wait_counter(home, RES(cpu_done), 0, 1, "the end of mode=topology");
    wait_topology(c, where, gen + 3, 3);
    console = distvm_read_console(c->node[0]);
    distvm_assert_console_clean(console);
    distvm_cluster_quit(c);
}

int main(int argc, char **argv)
{
    tmpdir = distvm_test_init(&argc, &argv, "distvm-move-test");

    qtest_add_func("/distvm/move/placement", test_placement);
    qtest_add_func("/distvm/move/vcpu-nodes", test_vcpu_nodes);
    qtest_add_func("/distvm/move/requests", test_requests);
    qtest_add_func("/distvm/move/interrupts", test_interrupts);
    qtest_add_func("/distvm/move/x2apic", test_x2apic);
    qtest_add_func("/distvm/move/x2apic-reset", test_x2apic_reset);
    qtest_add_data_func("/distvm/move/msi", GINT_TO_POINTER(MSI_HOME),
                        test_msi);
    qtest_add_data_func("/distvm/move/msi-device-node",
                        GINT_TO_POINTER(MSI_DEVICE_NODE), test_msi);
    qtest_add_data_func("/distvm/move/msi-device-node-join",
                        GINT_TO_POINTER(MSI_JOIN), test_msi);
    qtest_add_func("/distvm/move/topology", test_topology);
    qtest_add_func("/distvm/move/tier", test_tier);
    qtest_add_func("/distvm/move/tier-next", test_tier_next);
    qtest_add_func("/distvm/move/suspend", test_suspend);
    qtest_add_func("/distvm/move/reset", test_reset);
    qtest_add_func("/distvm/move/poweroff", test_poweroff);
    qtest_add_func("/distvm/move/vmport", test_vmport);
    qtest_add_func("/distvm/move/lint0", test_lint0);
    qtest_add_func("/distvm/move/a20", test_a20);
    qtest_add_func("/distvm/move/remap", test_remap);
    qtest_add_data_func("/distvm/move/remap-home", GINT_TO_POINTER(2),
                        test_remap_flow);
    qtest_add_data_func("/distvm/move/remap-3-nodes", GINT_TO_POINTER(3),
                        test_remap_flow);
    qtest_add_func("/distvm/move/ipi-flood", test_ipi_flood);
    qtest_add_func("/distvm/move/affinity", test_affinity);
    qtest_add_func("/distvm/move/affinity-numa", test_affinity_numa);
    qtest_add_func("/distvm/move/consolidate", test_consolidate);
    qtest_add_data_func("/distvm/move/2-nodes", GINT_TO_POINTER(2),
                        test_moves);
    qtest_add_data_func("/distvm/move/3-nodes", GINT_TO_POINTER(3),
                        test_moves);

    return distvm_test_run(tmpdir);
}
