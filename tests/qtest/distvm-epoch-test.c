/*
 * distvm qtest suite: checkpoint epochs, each node's state kept by
 * another node (replicas=1)
 *
 * The bare-metal SMP guest runs its workload on 3 nodes while home takes
 * a checkpoint every 20 ms and vCPUs move between the nodes: the result
 * must be exact, every node must report the epochs committed, its
 * replica and what it keeps, and, once the guest is done and an epoch
 * was committed after that, the newest copy of each page of the result
 * that the replicas keep must be the page itself.  Forged messages are
 * refused, and a node's BUSY abandons an epoch, after which every node
 * sends all it holds again, and the copies are still the pages.
 *
 * A disk write reaches the image only once its epoch committed, or once
 * the cluster quits.  The guest is rolled back to the last committed
 * epoch again and again while it runs: its result stays exact.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "libqtest.h"
#include "distvm/distvm-node.h"
#include "distvm/distvm-tls-netns.h"
#include "distvm/guest/smp-workload.h"
#include "distvm-wire.h"

#define MACHINE "-nodefaults -machine pc -m 128M"
#define NODES 3
#define NCPUS 4
#define ITERS 20000000

static char *tmpdir;

/* query-distvm's checkpoint on @qts, which must have one (unref it) */
static QDict *checkpoint_info(QTestState *qts)
{
    QDict *ret = qtest_qmp_assert_success_ref(qts, "{ 'execute': "
                                              "'query-distvm' }");
    QDict *cp = qdict_get_qdict(ret, "checkpoint");

    g_assert_nonnull(cp);
    qobject_ref(cp);
    qobject_unref(ret);
    return cp;
}

static uint64_t committed_epoch(QTestState *qts)
{
    QDict *cp = checkpoint_info(qts);
    uint64_t epoch = qdict_get_int(cp, "committed-epoch");

    qobject_unref(cp);
    return epoch;
}

/* Wait until the guest's workload is done (5 minutes at most) */
static void wait_result(QTestState *home)
{
    for (int tries = 0; qtest_readl(home, DG_RESULT_BASE) != DG_MAGIC_DONE;
         tries++) {
        g_assert_cmpint(tries, <, 6000);
        g_usleep(50 * 1000);
    }
}

/* Wait until home committed @count epochs more than it has now */
static void wait_epochs(QTestState *home, int count)
{
    uint64_t want = committed_epoch(home) + count;

    for (int tries = 0; committed_epoch(home) < want; tries++) {
        g_assert_cmpint(tries, <, 3000);
        g_usleep(10 * 1000);
    }
}

/*
 * The newest copy of pc.ram page @page that any node of @c keeps is
 * @want (the SHA-256 of the page as home reads it).
 */
static void check_replica_page(DistvmCluster *c, uint64_t page,
                               const char *want)
{
    g_autofree char *newest = NULL;
    int64_t newest_epoch = -1;
    int copies = 0;

    for (int n = 0; n < c->nodes; n++) {
        QDict *ret = qtest_qmp(c->node[n]->qts, "{ 'execute': "
                               "'x-query-distvm-replica-page', 'arguments': "
                               "{ 'ramblock': 'pc.ram', 'page': %" PRIu64
                               " } }", page);
        QList *list = qdict_get_qlist(ret, "return");

        g_assert_nonnull(list);
        for (const QListEntry *e = qlist_first(list); e; e = qlist_next(e)) {
            QDict *copy = qobject_to(QDict, qlist_entry_obj(e));
            int64_t epoch = qdict_get_int(copy, "epoch");

            g_assert_cmpint(qdict_get_int(copy, "node"), !=, n);
            copies++;
            if (epoch > newest_epoch) {
                newest_epoch = epoch;
                g_free(newest);
                newest = g_strdup(qdict_get_str(copy, "sha256"));
            }
        }
        qobject_unref(ret);
    }
    g_assert_cmpint(copies, >, 0);
    if (g_strcmp0(newest, want)) {
        g_error("page %" PRIu64 ": the newest copy kept (epoch %" PRId64
                ") is %s, the page is %s", page, newest_epoch, newest, want);
    }
}

/* Each page from @addr for @len bytes, as home reads it, is kept */
static void check_replica_range(DistvmCluster *c, uint64_t addr, size_t len)
{
    g_autofree uint8_t *buf = g_malloc(4096);

    for (uint64_t a = addr & ~4095ull; a < addr + len; a += 4096) {
        g_autofree char *sum = NULL;

        qtest_memread(c->node[0]->qts, a, buf, 4096);
        sum = g_compute_checksum_for_data(G_CHECKSUM_SHA256, buf, 4096);
        check_replica_page(c, a / 4096, sum);
    }
}

static uint64_t aborted_epochs(QTestState *home)
{
    QDict *cp = checkpoint_info(home);
    uint64_t aborted = qdict_get_int(cp, "aborted");

    qobject_unref(cp);
    return aborted;
}

static void check_placed_on(DistvmCluster *c, int node, int moves);
#define PLACED_NODE     2

/* Node 1 forges EPOCH @step for @epoch, about itself, to node @to */
static void forge_epoch(DistvmCluster *c, int to, uint32_t step,
                        uint64_t epoch)
{
    g_autoptr(GByteArray) m = g_byte_array_new();
    DistvmMsgEpoch e = { .step = step, .node = 1, .epoch = epoch };

    distvm_wire_epoch(m, 1, &e);
    distvm_forge(c->node[1], to, m);
}

/* @m, forged as from node @from, is refused by node PLACED_NODE */
static void refused_by_placed_node(DistvmCluster *c, int from,
                                   const GByteArray *m, int64_t *errors)
{
    distvm_forge(c->node[from], PLACED_NODE, m);
    distvm_wait_protocol_errors(c->node[PLACED_NODE]->qts, ++*errors);
}

/*
 * An access of home's vCPU 0, forged as made after a configuration write
 * of home's that never comes: node PLACED_NODE holds it back, and would
 * refuse it after peer-timeout (5 s) if nothing ended its wait first.
 * Returns when it was sent, in g_get_monotonic_time()'s microseconds.
 */
static int64_t forge_config_wait(DistvmCluster *c)
{
    g_autoptr(GByteArray) m = g_byte_array_new();

    distvm_wire_io(m, DISTVM_MSG_IO_REQ, 0, &(DistvmMsgIo) {
        .cpu = 0, .space = DISTVM_IO_MEMORY, .size = 4,
        .flags = DISTVM_IO_CONFIG_GEN, .addr = 0xfe000000,
        .config_gen = UINT64_MAX,
    });
    distvm_forge(c->node[0], PLACED_NODE, m);
    return g_get_monotonic_time();
}

/*
 * Messages a node had no business sending are refused and change
 * nothing; a BUSY from a node abandons the epoch home takes, and the
 * next ones commit.
 */
static void check_forged(DistvmCluster *c)
{
    g_autoptr(GByteArray) m = g_byte_array_new();
    QTestState *home = c->node[0]->qts;
    int64_t errors = distvm_protocol_errors(home);
    uint64_t aborted = aborted_epochs(home);

    /* Pages of an epoch that ended */
    distvm_wire_epoch_pages_begin(m, 1, 1, 0);
    distvm_wire_epoch_pages_add(m, DG_RESULT_BASE / 4096, 0, NULL);
    distvm_wire_end(m);
    distvm_forge(c->node[1], 0, m);
    distvm_wait_protocol_errors(home, ++errors);
    /* SAVE, which only home sends */
    errors = distvm_protocol_errors(c->node[2]->qts);
    forge_epoch(c, 2, DISTVM_EPOCH_SAVE, committed_epoch(home) + 1);
    distvm_wait_protocol_errors(c->node[2]->qts, ++errors);
    /* The state of devices placed on node 2, from node 1, its replica */
    distvm_wire_epoch_state(m, 1, &(DistvmMsgEpochState) {
        .epoch = committed_epoch(home) + 1, .kind = DISTVM_EPOCH_STATE_PLACED,
        .index = 2, .total = 4, .offset = 0, .len = 4,
        .data = (const uint8_t *)"abcd",
    });
    refused_by_placed_node(c, 1, m, &errors);
    /* A device brought home, said by another node, or one there is not */
    distvm_wire_device_home(m, 1, 0);
    refused_by_placed_node(c, 1, m, &errors);
    distvm_wire_device_home(m, 0, 1);
    refused_by_placed_node(c, 0, m, &errors);
    /* ... or said by home to the node that runs it, which joined long ago */
    distvm_wire_device_home(m, 0, 0);
    refused_by_placed_node(c, 0, m, &errors);
    /*
     * A device sent back to its node, said by another node, or one there
     * is not, or one that runs there already
     */
    distvm_wire_device_away(m, 1, 1, 0, PLACED_NODE,
                            (const uint8_t *)"abcd", 4);
    refused_by_placed_node(c, 1, m, &errors);
    distvm_wire_device_away(m, 0, 1, 1, PLACED_NODE,
                            (const uint8_t *)"abcd", 4);
    refused_by_placed_node(c, 0, m, &errors);
    distvm_wire_device_away(m, 0, 1, 0, PLACED_NODE,
                            (const uint8_t *)"abcd", 4);
    refused_by_placed_node(c, 0, m, &errors);
    check_placed_on(c, PLACED_NODE, 0);
    /* An INTx line raised by node 1, which runs no device */
    errors = distvm_protocol_errors(home);
    distvm_wire_pci_intx(m, 1, 0, 1);
    distvm_forge(c->node[1], 0, m);
    distvm_wait_protocol_errors(home, ++errors);

    for (int tries = 0; aborted_epochs(home) == aborted; tries++) {
        g_assert_cmpint(tries, <, 1000);
        forge_epoch(c, 0, DISTVM_EPOCH_BUSY, committed_epoch(home) + 1);
        g_usleep(2 * 1000);
    }
    wait_epochs(home, 3);
}

/*
 * The SMP guest on @nodes nodes, its vCPUs placed as @placement says, an
 * epoch every 20 ms, with the nodes keeping what @redundancy says, and
 * @more options and devices if not NULL
 */
static DistvmCluster *smp_cluster_start_with(int nodes,
                                             const char *placement,
                                             const char *redundancy,
                                             const char *more_opts,
                                             const char *devices)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        MACHINE " -smp %d -kernel %s -append 'cpus=%d iters=%d' %s", NCPUS,
        elf, NCPUS, ITERS, devices ?: "");
    g_autofree char *opts = g_strdup_printf(
        "replicas=1,checkpoint-ms=20,placement=%s,redundancy=%s%s%s",
        placement, redundancy, more_opts ? "," : "", more_opts ?: "");

    return distvm_cluster_start_with(tmpdir, nodes, opts, args);
}

static DistvmCluster *smp_cluster_start_keeping(int nodes,
                                                const char *placement,
                                                const char *redundancy)
{
    return smp_cluster_start_with(nodes, placement, redundancy, NULL, NULL);
}

static DistvmCluster *smp_cluster_start_on(int nodes, const char *placement)
{
    return smp_cluster_start_keeping(nodes, placement, "replica");
}

/*
 * A PCI device with a VMState (SeaBIOS programs its BARs; the guest
 * leaves it alone) runs on node PLACED_NODE: each epoch keeps its state
 * there, any rollback brings it home (distvm-placed-state.c), and sends
 * it back there at its end unless node PLACED_NODE was lost
 */
#define PLACED_DEVICE   "-device virtio-rng-pci,id=rng0"

static DistvmCluster *smp_cluster_start(void)
{
    g_autofree char *placed = g_strdup_printf("device-nodes=rng0@%d",
                                              PLACED_NODE);

    return smp_cluster_start_with(NODES, "0:1:2:1", "replica", placed,
                                  PLACED_DEVICE);
}

/*
 * Each node of @c left says that @node runs the placed device, and that
 * it changed node @moves times (home, and back)
 */
static void check_placed_on(DistvmCluster *c, int node, int moves)
{
    for (int n = 0; n < c->nodes; n++) {
        QDict *d;

        if (!c->node[n]) {
            continue;
        }
        distvm_wait_placed_on(c->node[n]->qts, "rng0", node);
        d = distvm_placed_device(c->node[n]->qts, "rng0");
        g_assert_cmpint(qdict_get_int(d, "moves"), ==, moves);
        qobject_unref(d);
    }
}

static void test_smp(void)
{
    DistvmCluster *c = smp_cluster_start();
    int moves = 0;
    QDict *cp;

    /* Epochs are taken while vCPUs move: the guest's result stays exact */
    wait_epochs(c->node[0]->qts, 3);
    for (; moves < 6 && qtest_readl(c->node[0]->qts, DG_RESULT_BASE) !=
         DG_MAGIC_DONE; moves++) {
        int i = moves;
        int cpu = 1 + i % (NCPUS - 1);
        int to = (distvm_vcpu_node(c->node[0]->qts, cpu) + 1) % NODES;

        qtest_qmp_assert_success(c->node[0]->qts, "{ 'execute': "
                                 "'distvm-move-vcpu', 'arguments': "
                                 "{ 'cpu-index': %d, 'node': %d } }", cpu,
                                 to);
        wait_epochs(c->node[0]->qts, 1);
    }
    g_test_message("%d vCPU moves while the guest ran", moves);
    wait_result(c->node[0]->qts);
    for (int n = 0; n < NODES; n++) {
        distvm_check_smp_memory(c->node[n]->qts, NCPUS, ITERS);
    }

    /* What each node reports */
    wait_epochs(c->node[0]->qts, 2);
    cp = checkpoint_info(c->node[0]->qts);
    g_assert_cmpint(qdict_get_int(cp, "interval-ms"), ==, 20);
    g_assert_cmpint(qdict_get_int(cp, "epochs"), >=, 10);
    g_assert_cmpint(qdict_get_int(cp, "committed-epoch"), >=,
                    qdict_get_int(cp, "epochs"));
    g_assert_cmpint(qdict_get_int(cp, "last-bytes"), >, 0);
    g_assert_cmpint(qdict_get_int(cp, "pause-us-p50"), >, 0);
    g_assert_cmpint(qdict_get_int(cp, "pause-us-p99"), >=,
                    qdict_get_int(cp, "pause-us-p50"));
    g_test_message("epochs %" PRId64 ", aborted %" PRId64 ", pause p50 %"
                   PRId64 " us, p99 %" PRId64 " us, last %" PRId64 " bytes",
                   qdict_get_int(cp, "epochs"), qdict_get_int(cp, "aborted"),
                   qdict_get_int(cp, "pause-us-p50"),
                   qdict_get_int(cp, "pause-us-p99"),
                   qdict_get_int(cp, "last-bytes"));
    qobject_unref(cp);
    for (int n = 0; n < NODES; n++) {
        QDict *info = distvm_assert_active(c->node[n]->qts, n);

        g_assert_cmpint(qdict_get_int(info, "protocol-errors"), ==, 0);
        qobject_unref(info);
        cp = checkpoint_info(c->node[n]->qts);
        g_assert_cmpint(qdict_get_int(cp, "replica"), ==, (n + 1) % NODES);
        g_assert_cmpint(qdict_get_int(cp, "standby"), ==, 1);
        g_assert_cmpint(qdict_get_int(cp, "committed-epoch"), >, 0);
        g_assert_cmpint(qdict_get_int(cp, "stored-pages"), >, 0);
        g_assert_cmpint(qdict_get_int(cp, "stored-bytes"), >, 0);
        qobject_unref(cp);
    }

    /* The replicas keep the guest's result as it is */
    check_replica_range(c, DG_RESULT_BASE, sizeof(struct dg_results));
    check_replica_range(c, DG_PRIV_BASE, NCPUS * DG_PRIV_BYTES);

    /* ... and still do once an epoch was abandoned, sent all again */
    check_forged(c);
    check_replica_range(c, DG_RESULT_BASE, sizeof(struct dg_results));
    check_replica_range(c, DG_PRIV_BASE, NCPUS * DG_PRIV_BYTES);
    distvm_check_smp_memory(c->node[0]->qts, NCPUS, ITERS);
    distvm_cluster_quit(c);
}

/*
 * The guest is rolled back to the last committed epoch again and again
 * while it runs and its vCPUs move: each time, every node restores the
 * pages changed since, its vCPUs and home its devices, from the copies
 * the replicas keep; two rollbacks of three without the copies node 1 or
 * node 2 keeps, as if it were lost.  Anything restored wrong (a page, a
 * vCPU's state) would count some of the guest's work twice or lose it:
 * its result must still be exact.
 */
static void test_rollback(void)
{
    DistvmCluster *c = smp_cluster_start();
    QTestState *home = c->node[0]->qts;
    int done = 0;
    QDict *ret, *cp;

    /* Only home rolls back, and only to an epoch committed */
    ret = qtest_qmp(c->node[1]->qts, "{ 'execute': 'x-distvm-rollback' }");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(ret, "error"), "desc"),
                    ==, "distvm: only the home node rolls the guest back");
    qobject_unref(ret);
    wait_epochs(home, 1);
    ret = qtest_qmp(home, "{ 'execute': 'x-distvm-rollback', 'arguments': "
                    "{ 'as-if-lost': 0 } }");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(ret, "error"), "desc"),
                    ==, "distvm: node 0 is not another node of the cluster");
    qobject_unref(ret);

    wait_epochs(home, 3);
    check_placed_on(c, PLACED_NODE, 0);
    for (; done < 8 && qtest_readl(home, DG_RESULT_BASE) != DG_MAGIC_DONE;
         done++) {
        if (done % 3 == 1) {
            int cpu = 1 + done % (NCPUS - 1);
            int to = (distvm_vcpu_node(home, cpu) + 1) % NODES;

            qtest_qmp_assert_success(home, "{ 'execute': "
                                     "'distvm-move-vcpu', 'arguments': "
                                     "{ 'cpu-index': %d, 'node': %d } }",
                                     cpu, to);
        }
        /* two of three as if node 1 or 2 were lost */
        distvm_roll_back(home, done % 3 ? done % 3 : -1);
        wait_epochs(home, 2);
    }
    g_test_message("%d rollbacks while the guest ran", done);
    g_assert_cmpint(done, >=, 2);
    /* Each brought the device placed on node 2 home, and sent it back */
    check_placed_on(c, PLACED_NODE, 2 * done);
    wait_result(home);
    for (int n = 0; n < NODES; n++) {
        QDict *info = distvm_assert_active(c->node[n]->qts, n);

        g_assert_cmpint(qdict_get_int(info, "protocol-errors"), ==, 0);
        qobject_unref(info);
        distvm_check_smp_memory(c->node[n]->qts, NCPUS, ITERS);
    }
    cp = checkpoint_info(home);
    g_assert_cmpint(qdict_get_int(cp, "rollbacks"), ==, done);
    g_assert_cmpint(qdict_get_int(cp, "last-rollback-us"), >, 0);
    g_test_message("last rollback paused the guest %" PRId64 " us",
                   qdict_get_int(cp, "last-rollback-us"));
    qobject_unref(cp);
    distvm_cluster_quit(c);
}

/*
 * The guest finished after nodes @first and @second (or @first alone)
 * were lost: its exact result on each node left, none of its vCPUs on
 * them
 */
static void check_lost_refused(DistvmCluster *c, int first, int second,
                               int placed_refused)
{
    for (int n = 0; n < c->nodes; n++) {
        QDict *info;

        if (!c->node[n]) {
            continue;
        }
        info = distvm_assert_active(c->node[n]->qts, n);
        g_assert_cmpint(qdict_get_int(info, "protocol-errors"), ==,
                        n == PLACED_NODE ? placed_refused : 0);
        qobject_unref(info);
        distvm_check_smp_memory(c->node[n]->qts, NCPUS, ITERS);
        /* The guest went on from a checkpoint: it did not reboot */
        distvm_assert_booted_once(c->node[n]->qts);
        for (int i = 0; i < NCPUS; i++) {
            int where = distvm_vcpu_node(c->node[n]->qts, i);

            g_assert_true(where != first && where != second);
        }
    }
}

static void check_lost(DistvmCluster *c, int first, int second)
{
    check_lost_refused(c, first, second, 0);
}

/*
 * A node other than home is killed (SIGKILL) at a random moment while
 * the guest runs, after a vCPU move: the other two take its part over
 * from the last committed epoch (its pages, from the copies they keep,
 * and its vCPUs, placed on them), and the guest finishes with the exact
 * result, its vCPUs on the two nodes left, epochs taken again.
 */
static void test_kill(void)
{
    DistvmCluster *c = smp_cluster_start();
    QTestState *home = c->node[0]->qts;
    int victim = g_test_rand_int_range(1, NODES);
    int other = NODES - victim;
    int cpu = g_test_rand_int_range(1, NCPUS);
    pid_t pid = qtest_pid(c->node[victim]->qts);
    int status;
    QDict *ev, *cp;

    wait_epochs(home, 3);
    qtest_qmp_assert_success(home, "{ 'execute': 'distvm-move-vcpu', "
                             "'arguments': { 'cpu-index': %d, 'node': %d } }",
                             cpu, (distvm_vcpu_node(home, cpu) + 1) % NODES);
    g_usleep(g_test_rand_int_range(0, 300) * 1000);
    g_assert_cmpint(qtest_readl(home, DG_RESULT_BASE), !=, DG_MAGIC_DONE);
    g_test_message("node %d killed", victim);
    kill(pid, SIGKILL);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFSIGNALED(status));
    /* Its QTestState is left alone: the process is already reaped */
    c->node[victim] = NULL;

    ev = distvm_wait_event(c->node[other]->qts, "DISTVM_NODE_LOST",
                           DISTVM_EVENT_TIMEOUT_S);
    g_assert_cmpint(qdict_get_int(qdict_get_qdict(ev, "data"), "node"), ==,
                    victim);
    qobject_unref(ev);
    ev = distvm_wait_event(home, "DISTVM_RECOVERED", DISTVM_EVENT_TIMEOUT_S);
    g_assert_cmpint(qdict_get_int(qdict_get_qdict(ev, "data"), "node"), ==,
                    victim);
    g_test_message("taken over in %" PRId64 " ms, back at epoch %" PRId64,
                   qdict_get_int(qdict_get_qdict(ev, "data"), "recovery-ms"),
                   qdict_get_int(qdict_get_qdict(ev, "data"), "epoch"));
    qobject_unref(ev);

    wait_result(home);
    check_lost(c, victim, victim);
    /* The device is home's if node 2 was lost, else back on node 2 */
    check_placed_on(c, victim == PLACED_NODE ? 0 : PLACED_NODE,
                    victim == PLACED_NODE ? 1 : 2);
    /* Epochs go on without it */
    wait_epochs(home, 2);
    cp = checkpoint_info(home);
    g_assert_cmpint(qdict_get_int(cp, "recoveries"), ==, 1);
    g_assert_cmpint(qdict_get_int(cp, "replica"), ==, other);
    qobject_unref(cp);
    distvm_cluster_quit(c);
}

/*
 * Home is killed (SIGKILL) at a random moment while the guest runs,
 * after a vCPU move: its standby (node 1, its replica) takes its place:
 * it loads the devices' state of the last committed epoch, takes home's
 * pages and vCPUs over with node 2, and the guest finishes with the exact
 * result; both nodes say node 1 is home, and epochs go on.  An access of
 * home's that waits on node 2 for a configuration write home never sent
 * fails when home is lost: node 2 does not wait for it, nor refuses it
 * peer-timeout later.
 */
static void test_kill_home(void)
{
    DistvmCluster *c = smp_cluster_start();
    QTestState *home = c->node[0]->qts;
    QTestState *standby = c->node[1]->qts;
    int cpu = g_test_rand_int_range(1, NCPUS);
    pid_t pid = qtest_pid(home);
    QDict *ev, *cp, *info;
    int64_t forged;
    int status;

    cp = checkpoint_info(home);
    g_assert_cmpint(qdict_get_int(cp, "standby"), ==, 1);
    qobject_unref(cp);
    wait_epochs(home, 3);
    qtest_qmp_assert_success(home, "{ 'execute': 'distvm-move-vcpu', "
                             "'arguments': { 'cpu-index': %d, 'node': %d } }",
                             cpu, (distvm_vcpu_node(home, cpu) + 1) % NODES);
    g_usleep(g_test_rand_int_range(0, 300) * 1000);
    g_assert_cmpint(qtest_readl(home, DG_RESULT_BASE), !=, DG_MAGIC_DONE);
    /*
     * Well within peer-timeout, but after home sent it; the second
     * access of the same vCPU is refused at once
     */
    forged = forge_config_wait(c);
    forge_config_wait(c);
    distvm_wait_protocol_errors(c->node[PLACED_NODE]->qts, 1);
    g_usleep(100 * 1000);
    g_test_message("home killed");
    kill(pid, SIGKILL);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFSIGNALED(status));
    c->node[0] = NULL;

    ev = distvm_wait_event(standby, "DISTVM_RECOVERED",
                           DISTVM_EVENT_TIMEOUT_S);
    g_assert_cmpint(qdict_get_int(qdict_get_qdict(ev, "data"), "node"), ==,
                    0);
    g_test_message("home's place taken in %" PRId64 " ms, back at epoch %"
                   PRId64,
                   qdict_get_int(qdict_get_qdict(ev, "data"), "recovery-ms"),
                   qdict_get_int(qdict_get_qdict(ev, "data"), "epoch"));
    qobject_unref(ev);

    wait_result(standby);
    /* Past the forged access's peer-timeout: no refusal but the second's */
    while (g_get_monotonic_time() < forged + 6 * G_USEC_PER_SEC) {
        g_usleep(100 * 1000);
    }
    check_lost_refused(c, 0, 0, 1);
    for (int n = 1; n < NODES; n++) {
        info = distvm_assert_active(c->node[n]->qts, n);
        g_assert_cmpint(qdict_get_int(info, "home-node"), ==, 1);
        qobject_unref(info);
    }
    /*
     * The device node 2 ran came to the new home, as node 2 saved it,
     * and went back to node 2
     */
    check_placed_on(c, PLACED_NODE, 2);
    /* Epochs go on, node 2 the new home's standby */
    wait_epochs(standby, 2);
    cp = checkpoint_info(standby);
    g_assert_cmpint(qdict_get_int(cp, "recoveries"), ==, 1);
    g_assert_cmpint(qdict_get_int(cp, "standby"), ==, 2);
    qobject_unref(cp);
    distvm_cluster_quit(c);
}

/*
 * On 2 nodes, home's standby would be left alone, as home would if it
 * lost its standby (neither can tell a lost node from a partition): it
 * does not take home's place, and ends, exit status 1
 */
static void test_kill_home_two(void)
{
    DistvmCluster *c = smp_cluster_start_on(2, "0:1:0:1");
    QTestState *standby = c->node[1]->qts;
    pid_t pid = qtest_pid(c->node[0]->qts);
    QDict *info;
    int status;

    info = distvm_assert_active(standby, 1);
    g_assert_cmpint(qdict_get_int(info, "home-node"), ==, 0);
    qobject_unref(info);
    wait_epochs(c->node[0]->qts, 2);
    qtest_set_expected_status(standby, 1);
    kill(pid, SIGKILL);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    c->node[0] = NULL;
    qtest_wait_qemu(standby);
    distvm_cluster_quit(c);
}

/* Kill node @n of @c and wait until home took its part over */
static void kill_and_recover(DistvmCluster *c, int n)
{
    pid_t pid = qtest_pid(c->node[n]->qts);
    int status;
    QDict *ev;

    g_test_message("node %d killed", n);
    kill(pid, SIGKILL);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    c->node[n] = NULL;
    ev = distvm_wait_event(c->node[0]->qts, "DISTVM_RECOVERED",
                           DISTVM_EVENT_TIMEOUT_S);
    g_assert_cmpint(qdict_get_int(qdict_get_qdict(ev, "data"), "node"), ==,
                    n);
    qobject_unref(ev);
}


/*
 * Two nodes of four lost one after the other: once the first was taken
 * over and an epoch committed without it, the second is taken over too,
 * and the guest finishes on the two left with the exact result.
 */
static void test_kill_twice(void)
{
    DistvmCluster *c = smp_cluster_start_on(4, "0:1:2:3");
    QTestState *home = c->node[0]->qts;
    int first = g_test_rand_int_range(1, 4);
    int second = first % 3 + 1;
    QDict *info;

    wait_epochs(home, 3);
    kill_and_recover(c, first);
    /* A loss before the next commit could not be taken over */
    wait_epochs(home, 2);
    g_assert_cmpint(qtest_readl(home, DG_RESULT_BASE), !=, DG_MAGIC_DONE);
    kill_and_recover(c, second);
    wait_result(home);
    check_lost(c, first, second);
    info = distvm_assert_active(home, 0);
    g_assert_cmpint(qdict_get_int(qdict_get_qdict(info, "checkpoint"),
                                  "recoveries"), ==, 2);
    qobject_unref(info);
    distvm_cluster_quit(c);
}

/* The QMP command of @fmt fails, its error saying @why */
static void G_GNUC_PRINTF(3, 4) assert_refused(QTestState *qts,
                                               const char *why,
                                               const char *fmt, ...)
{
    va_list ap;
    QDict *ret;
    const char *desc;

    va_start(ap, fmt);
    ret = qtest_vqmp(qts, fmt, ap);
    va_end(ap);
    desc = qdict_get_str(qdict_get_qdict(ret, "error"), "desc");
    if (!strstr(desc, why)) {
        g_error("'%s', not '%s'", desc, why);
    }
    qobject_unref(ret);
}

/* Pages of the region each node writes in test_kill_parity() */
#define PARITY_REGION_PAGES 32

/* Node @n's region, away from the guest's data */
static uint64_t parity_region(int n)
{
    return DG_PATTERN_BASE + (uint64_t)n * MiB;
}

/* What node @n writes in its region the @gen-th time */
static void parity_pattern(int n, int gen, uint8_t *buf, size_t len)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(n * 1000 + gen);

    for (size_t i = 0; i < len; i += 4) {
        uint32_t v = g_rand_int(rand);

        memcpy(buf + i, &v, 4);
    }
    /* One page that stays zero, one that the next time leaves alone */
    memset(buf + 3 * 4096, 0, 4096);
    if (gen > 1) {
        parity_pattern(n, gen - 1, buf + 5 * 4096, 4096);
    }
}

/* Node @n writes its region, through its own faults: the pages are its */
static void parity_write(DistvmCluster *c, int n, int gen)
{
    size_t len = PARITY_REGION_PAGES * 4096;
    g_autofree uint8_t *buf = g_malloc(len);

    parity_pattern(n, gen, buf, len);
    qtest_memwrite(c->node[n]->qts, parity_region(n), buf, len);
}

/* Home reads node @n's region as node @n last wrote it */
static void parity_check(DistvmCluster *c, int n, int gen)
{
    size_t len = PARITY_REGION_PAGES * 4096;
    g_autofree uint8_t *want = g_malloc(len);
    g_autofree uint8_t *got = g_malloc(len);

    parity_pattern(n, gen, want, len);
    qtest_memread(c->node[0]->qts, parity_region(n), got, len);
    g_assert_cmpmem(got, len, want, len);
}

/*
 * With redundancy=parity, home keeps no copy of the other nodes' pages,
 * only their parity, and refuses what would need one (a rollback as if a
 * node were lost, a drain).  Two nodes of four are killed one after the
 * other: home rebuilds the first one's pages from the parity and the two
 * others' pages, then the second one's from the parity and the last
 * one's; the guest finishes with the exact result.
 */
static void test_kill_parity(void)
{
    DistvmCluster *c = smp_cluster_start_keeping(4, "0:1:2:3", "parity");
    QTestState *home = c->node[0]->qts;
    int first = g_test_rand_int_range(1, 4);
    int second = first % 3 + 1;
    QDict *cp;

    wait_epochs(home, 3);
    cp = checkpoint_info(home);
    g_assert_cmpstr(qdict_get_str(cp, "redundancy"), ==, "parity");
    /* Only the states of the others' vCPUs: no page */
    g_assert_cmpint(qdict_get_int(cp, "stored-pages"), ==, 0);
    g_assert_cmpint(qdict_get_int(cp, "replica"), ==, 1);
    qobject_unref(cp);
    for (int n = 1; n < 4; n++) {
        cp = checkpoint_info(c->node[n]->qts);
        g_assert_cmpint(qdict_get_int(cp, "replica"), ==, 0);
        /* Node 1 keeps home's pages, as with redundancy=replica */
        if (n == 1) {
            g_assert_cmpint(qdict_get_int(cp, "stored-pages"), >, 0);
        } else {
            g_assert_cmpint(qdict_get_int(cp, "stored-pages"), ==, 0);
        }
        qobject_unref(cp);
    }
    assert_refused(home, "home rebuilds a node's copies only once the node "
                   "is lost", "{ 'execute': 'x-distvm-rollback', "
                   "'arguments': { 'as-if-lost': 2 } }");
    assert_refused(home, "with redundancy=parity a node cannot be drained",
                   "{ 'execute': 'distvm-drain-node', 'arguments': "
                   "{ 'node': 2 } }");

    /*
     * Pages that only the node to be lost holds, written by the test:
     * exactly what home rebuilds, which the guest would not notice
     */
    for (int n = 1; n < 4; n++) {
        parity_write(c, n, 1);
    }
    wait_epochs(home, 2);
    cp = checkpoint_info(home);
    g_assert_cmpint(qdict_get_int(cp, "stored-pages"), ==, 0);
    /* At least the pages written, which are not zero */
    g_assert_cmpint(qdict_get_int(cp, "parity-bytes"), >=,
                    (PARITY_REGION_PAGES - 2) * 4096);
    qobject_unref(cp);
    kill_and_recover(c, first);
    for (int n = 1; n < 4; n++) {
        parity_check(c, n, 1);
    }
    /* Written again where they are now: the parity takes the changes */
    for (int n = 1; n < 4; n++) {
        if (c->node[n]) {
            parity_write(c, n, 2);
        }
    }
    wait_epochs(home, 2);
    g_assert_cmpint(qtest_readl(home, DG_RESULT_BASE), !=, DG_MAGIC_DONE);
    kill_and_recover(c, second);
    for (int n = 1; n < 4; n++) {
        parity_check(c, n, n == first ? 1 : 2);
    }
    wait_result(home);
    check_lost(c, first, second);
    cp = checkpoint_info(home);
    g_assert_cmpint(qdict_get_int(cp, "recoveries"), ==, 2);
    qobject_unref(cp);
    distvm_cluster_quit(c);
}

/*
 * A cluster of two nodes whose other node is killed: home takes all of
 * it over, and the guest finishes alone on home with the exact result.
 */
static void test_kill_two(void)
{
    DistvmCluster *c = smp_cluster_start_on(2, "0:1:0:1");
    QTestState *home = c->node[0]->qts;
    QDict *info;

    wait_epochs(home, 3);
    g_usleep(g_test_rand_int_range(0, 200) * 1000);
    g_assert_cmpint(qtest_readl(home, DG_RESULT_BASE), !=, DG_MAGIC_DONE);
    kill_and_recover(c, 1);
    wait_result(home);
    distvm_check_smp_memory(home, NCPUS, ITERS);
    for (int i = 0; i < NCPUS; i++) {
        g_assert_cmpint(distvm_vcpu_node(home, i), ==, 0);
    }
    info = distvm_assert_active(home, 0);
    g_assert_cmpint(qdict_get_int(info, "protocol-errors"), ==, 0);
    /* Alone: no replica, no epochs */
    g_assert_cmpint(qdict_get_int(qdict_get_qdict(info, "checkpoint"),
                                  "replica"), ==, 0);
    qobject_unref(info);
    distvm_cluster_quit(c);
}

/*
 * The same with the nodes in network namespaces, over TCP, and node
 * @victim cut off by a partition (its link goes down) instead of killed:
 * the other two declare it lost within peer-timeout and take its part
 * over (if it is home, node 2, its standby= here, takes its place);
 * @victim, which hears neither of them, exits with an error.
 */
#define PARTITION_PEER_TIMEOUT 2
#define PARTITION_PORT 4460

static void partition(int victim)
{
    int subnet = getpid() % 200 + 20;
    g_autofree char *prefix = g_strdup_printf("dve%d-", (int)getpid());
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        MACHINE " -smp %d -kernel %s -append 'cpus=%d iters=%d'", NCPUS, elf,
        NCPUS, ITERS);
    g_autofree char *binary = g_strdup(g_getenv("QTEST_QEMU_BINARY"));
    int home = victim ? 0 : 2;
    DistvmNode *node[NODES];
    QDict *ev, *cp;

    distvm_netns_setup(prefix, subnet, NODES);
    for (int i = 0; i < NODES; i++) {
        g_autofree char *in_ns = g_strdup_printf("ip netns exec %s%d %s",
                                                 prefix, i, binary);
        g_autofree char *home_opt = i ? g_strdup_printf(
            "home=tcp:10.199.%d.1:%d,", subnet, PARTITION_PORT) :
            g_strdup("");
        g_autofree char *opts = g_strdup_printf(
            "node-id=%d,nodes=%d,listen=tcp:10.199.%d.%d:%d,%s"
            "replicas=1,checkpoint-ms=20,placement=0:1:2:1,peer-timeout=%d,"
            "standby=%d", i, NODES, subnet, i + 1, PARTITION_PORT + i,
            home_opt, PARTITION_PEER_TIMEOUT, victim ? 1 : 2);

        g_setenv("QTEST_QEMU_BINARY", in_ns, true);
        node[i] = distvm_node_start(tmpdir, i, opts, args);
    }
    g_setenv("QTEST_QEMU_BINARY", binary, true);
    for (int i = 0; i < NODES; i++) {
        distvm_wait_state(node[i]->qts, "running", 60);
    }
    wait_epochs(node[0]->qts, 3);
    g_assert_cmpint(qtest_readl(node[0]->qts, DG_RESULT_BASE), !=,
                    DG_MAGIC_DONE);

    distvm_sh("ip -n %ssw link set %sp%d down", prefix, prefix, victim);
    qtest_set_expected_status(node[victim]->qts, 1);
    ev = distvm_wait_event(node[victim]->qts, "DISTVM_NODE_LOST",
                           DISTVM_EVENT_TIMEOUT_S);
    g_assert_cmpint(qdict_get_int(qdict_get_qdict(ev, "data"), "node"), !=,
                    victim);
    qobject_unref(ev);
    qtest_wait_qemu(node[victim]->qts);
    ev = distvm_wait_event(node[home]->qts, "DISTVM_RECOVERED",
                           DISTVM_EVENT_TIMEOUT_S);
    g_assert_cmpint(qdict_get_int(qdict_get_qdict(ev, "data"), "node"), ==,
                    victim);
    g_test_message("taken over in %" PRId64 " ms once lost",
                   qdict_get_int(qdict_get_qdict(ev, "data"), "recovery-ms"));
    qobject_unref(ev);

    wait_result(node[home]->qts);
    for (int i = 0; i < NODES; i++) {
        QDict *info;

        if (i == victim) {
            continue;
        }
        info = distvm_assert_active(node[i]->qts, i);
        g_assert_cmpint(qdict_get_int(info, "protocol-errors"), ==, 0);
        g_assert_cmpint(qdict_get_int(info, "home-node"), ==, home);
        qobject_unref(info);
        distvm_check_smp_memory(node[i]->qts, NCPUS, ITERS);
        for (int cpu = 0; cpu < NCPUS; cpu++) {
            g_assert_cmpint(distvm_vcpu_node(node[i]->qts, cpu), !=, victim);
        }
    }
    wait_epochs(node[home]->qts, 2);
    cp = checkpoint_info(node[home]->qts);
    g_assert_cmpint(qdict_get_int(cp, "recoveries"), ==, 1);
    g_assert_cmpint(qdict_get_int(cp, "standby"), ==, 1);
    qobject_unref(cp);
    for (int i = NODES - 1; i >= 0; i--) {
        distvm_node_quit(node[i]);
    }
    distvm_netns_cleanup(prefix, NODES);
}

static void test_partition(void)
{
    partition(2);
}

/* Home cut off: it holds the guest at once, and ends */
static void test_partition_home(void)
{
    partition(0);
}

/* The 4 KiB of @path at @offset are all @byte */
static bool file_holds(const char *path, off_t offset, uint8_t byte)
{
    g_autofree uint8_t *buf = g_malloc(4096);
    int fd = open(path, O_RDONLY);
    ssize_t n;

    g_assert_cmpint(fd, >=, 0);
    n = pread(fd, buf, 4096, offset);
    close(fd);
    g_assert_cmpint(n, ==, 4096);
    for (int i = 0; i < 4096; i++) {
        if (buf[i] != byte) {
            return false;
        }
    }
    return true;
}

/*
 * Write 4 KiB of @byte at @offset of disk d0 through home's HMP (qemu-io
 * prints to QEMU's standard output, not to the monitor)
 */
static void disk_write(QTestState *home, uint8_t byte, off_t offset)
{
    g_autofree char *out = qtest_hmp(home, "qemu-io d0 \"write -P 0x%x %"
                                     PRId64 " 4k\"", byte, (int64_t)offset);

    g_assert_cmpstr(out, ==, "");
}

static void qmp_stop(QTestState *home)
{
    qtest_qmp_assert_success(home, "{ 'execute': 'stop' }");
}

static void qmp_cont(QTestState *home)
{
    qtest_qmp_assert_success(home, "{ 'execute': 'cont' }");
}

static void roll_back(QTestState *home)
{
    distvm_roll_back(home, -1);
}

/*
 * Write 4 KiB of @byte to disk d0 between two commits, at @base, then do
 * @then (if any) before the next commit; if an epoch committed meanwhile,
 * @undo (if any) what @then did and try again 4 KiB further.  Returns
 * where it wrote.
 */
static off_t write_uncommitted(QTestState *home, uint8_t byte, off_t base,
                               void (*then)(QTestState *home),
                               void (*undo)(QTestState *home))
{
    for (int tries = 0;; tries++) {
        off_t offset = base + tries * 4096;
        uint64_t before;

        g_assert_cmpint(tries, <, 5);
        wait_epochs(home, 1);
        before = committed_epoch(home);
        disk_write(home, byte, offset);
        if (then) {
            then(home);
        }
        if (committed_epoch(home) == before) {
            return offset;
        }
        if (undo) {
            undo(home);
        }
    }
}

/* Wait until the 4 KiB of @path at @offset are all @byte (at most 5 s) */
static void wait_file_holds(const char *path, off_t offset, uint8_t byte)
{
    for (int tries = 0; !file_holds(path, offset, byte); tries++) {
        g_assert_cmpint(tries, <, 500);
        g_usleep(10 * 1000);
    }
}

/*
 * A write to a disk of home reaches its image only once the epoch it was
 * made in committed, even if the guest stops meanwhile, and never if the
 * guest is rolled back before; quitting writes out what is held.  (The
 * Linux test reads what its guest wrote while it is held.)
 */
static void test_disk(void)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *img = g_strdup_printf("%s/epoch-disk.img", tmpdir);
    g_autofree char *args = NULL;
    DistvmCluster *c;
    QTestState *home;
    off_t offset;
    QDict *cp;
    int fd;

    fd = open(img, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, 1024 * 1024), ==, 0);
    close(fd);
    args = g_strdup_printf(MACHINE " -smp 2 -kernel %s -append 'cpus=2 "
                           "iters=%d' -drive if=none,id=d0,format=raw,"
                           "file=%s,file.locking=off", elf, ITERS, img);
    c = distvm_cluster_start_with(tmpdir, 2,
                                  "replicas=1,checkpoint-ms=1500", args);
    home = c->node[0]->qts;

    /* Written between two commits: on the image only after the second */
    offset = write_uncommitted(home, 0x5a, 4096, NULL, NULL);
    g_assert_true(file_holds(img, offset, 0));
    cp = checkpoint_info(home);
    g_assert_cmpint(qdict_get_int(cp, "held-writes"), >=, 1);
    g_assert_cmpint(qdict_get_int(cp, "held-write-bytes"), >=, 4096);
    qobject_unref(cp);
    wait_epochs(home, 1);
    wait_file_holds(img, offset, 0x5a);
    cp = checkpoint_info(home);
    g_assert_cmpint(qdict_get_int(cp, "released-writes"), >=, 1);
    qobject_unref(cp);

    /* A stop keeps what did not commit: the epoch after cont writes it */
    offset = write_uncommitted(home, 0xa5, 65536, qmp_stop, qmp_cont);
    g_assert_true(file_holds(img, offset, 0));
    qmp_cont(home);
    wait_epochs(home, 1);
    wait_file_holds(img, offset, 0xa5);

    /* A rollback drops what did not commit: it never reaches the image */
    offset = write_uncommitted(home, 0x77, 98304, roll_back, NULL);
    wait_epochs(home, 2);
    g_assert_true(file_holds(img, offset, 0));

    /* Quitting writes out all that is held */
    disk_write(home, 0x3c, 131072);
    distvm_cluster_quit(c);
    g_assert_true(file_holds(img, 131072, 0x3c));
}

/*
 * Home is killed right after an epoch committed a write to its disk, and
 * with a write of the next epoch held: its standby, which opened the same
 * image (inactive until then), writes what home held of the committed
 * epoch, whether home had written it or not, and not the other; then
 * holds its own writes until their epoch commits.
 */
static void test_disk_kill_home(void)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *img = g_strdup_printf("%s/epoch-disk-home.img", tmpdir);
    g_autofree char *args = NULL;
    DistvmCluster *c;
    QTestState *home, *standby;
    uint64_t committed = 0, back;
    off_t offset = 0;
    pid_t pid;
    QDict *ev, *info;
    int fd, status;

    fd = open(img, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, 1024 * 1024), ==, 0);
    close(fd);
    args = g_strdup_printf(MACHINE " -smp %d -kernel %s -append 'cpus=%d "
                           "iters=%d' -drive if=none,id=d0,format=raw,"
                           "file=%s,file.locking=off", NCPUS, elf, NCPUS,
                           ITERS, img);
    c = distvm_cluster_start_with(tmpdir, NODES, "replicas=1,checkpoint-ms="
                                  "1500,placement=0:1:2:1", args);
    home = c->node[0]->qts;
    standby = c->node[1]->qts;
    pid = qtest_pid(home);

    /* One write commits in an epoch, the next is made in the one after */
    for (int tries = 0; !offset; tries++) {
        g_assert_cmpint(tries, <, 5);
        wait_epochs(home, 1);
        disk_write(home, 0xb1, 8192 * tries);
        wait_epochs(home, 1);
        committed = committed_epoch(home);
        disk_write(home, 0xc3, 8192 * tries + 4096);
        if (committed_epoch(home) == committed) {
            offset = 8192 * tries;
        }
    }
    g_test_message("home killed");
    kill(pid, SIGKILL);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    c->node[0] = NULL;
    ev = distvm_wait_event(standby, "DISTVM_RECOVERED",
                           DISTVM_EVENT_TIMEOUT_S);
    back = qdict_get_int(qdict_get_qdict(ev, "data"), "epoch");
    qobject_unref(ev);
    g_assert_cmpint(back, >=, committed);
    /* On the image before the guest runs again; the other only if it too */
    g_assert_true(file_holds(img, offset, 0xb1));
    g_assert_true(file_holds(img, offset + 4096, back > committed ? 0xc3 :
                             0));
    for (int n = 1; n < NODES; n++) {
        info = distvm_assert_active(c->node[n]->qts, n);
        g_assert_cmpint(qdict_get_int(info, "home-node"), ==, 1);
        qobject_unref(info);
    }

    /* The new home holds its writes until their epoch commits */
    offset = write_uncommitted(standby, 0xd4, 512 * 1024, NULL, NULL);
    g_assert_true(file_holds(img, offset, 0));
    wait_epochs(standby, 1);
    wait_file_holds(img, offset, 0xd4);
    wait_result(standby);
    check_lost(c, 0, 0);
    distvm_cluster_quit(c);
}

int main(int argc, char **argv)
{
    tmpdir = distvm_test_init(&argc, &argv, "distvm-epoch-test");

    qtest_add_func("/distvm/epoch/smp", test_smp);
    qtest_add_func("/distvm/epoch/disk", test_disk);
    qtest_add_func("/distvm/epoch/disk-kill-home", test_disk_kill_home);
    qtest_add_func("/distvm/epoch/rollback", test_rollback);
    qtest_add_func("/distvm/epoch/kill", test_kill);
    qtest_add_func("/distvm/epoch/kill-home", test_kill_home);
    qtest_add_func("/distvm/epoch/kill-home-two", test_kill_home_two);
    qtest_add_func("/distvm/epoch/kill-two", test_kill_two);
    qtest_add_func("/distvm/epoch/kill-twice", test_kill_twice);
    qtest_add_func("/distvm/epoch/kill-parity", test_kill_parity);
    qtest_add_func("/distvm/epoch/partition", test_partition);
    qtest_add_func("/distvm/epoch/partition-home", test_partition_home);

    return distvm_test_run(tmpdir);
}
