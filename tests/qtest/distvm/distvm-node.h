/*
 * distvm qtest helpers: starting nodes, checking that distvm is really the
 * accelerator, reading guest consoles
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef DISTVM_NODE_H
#define DISTVM_NODE_H

#include "libqtest.h"

typedef struct DistvmNode {
    QTestState *qts;
    int node_id;
    char *serial_path;          /* the node's console, or NULL */
} DistvmNode;

/* Directory of the guest images (DISTVM_GUEST_DIR or the build's default). */
const char *distvm_guest_dir(void);

/* Path of guest image @name; fails the test if it was not built. */
char *distvm_guest_path(const char *name);

/*
 * Start a node with "-accel distvm,@accel_opts" and @extra_args, its
 * serial console written to a file in @tmpdir, and assert through QMP
 * that distvm is the active accelerator and the node is @node_id.
 * Unless @accel_opts say auto-numa=, the node runs with auto-numa=off.
 */
DistvmNode *distvm_node_start(const char *tmpdir, int node_id,
                              const char *accel_opts,
                              const char *extra_args);

/* Stop the node (SIGTERM unless it exited) and free it. */
void distvm_node_quit(DistvmNode *node);

/*
 * Assert that query-distvm answers on @qts for node @node_id: libqtest
 * would otherwise silently fall back to -accel qtest.  Returns the
 * query's result (unref it).
 */
QDict *distvm_assert_active(QTestState *qts, int node_id);

/* query-distvm's entry for RAMBlock @block on @node (unref it) */
QDict *distvm_memory_range(DistvmNode *node, const char *block);
/* The same, or NULL if @node has no RAMBlock @block */
QDict *distvm_memory_range_find(DistvmNode *node, const char *block);

/* The remote faults @node took on RAMBlock @block */
int64_t distvm_remote_faults(DistvmNode *node, const char *block);

/*
 * Placed device @id's accesses (query-distvm's devices) on each of the
 * @nodes nodes of @node, once vCPUs used it: its node @dev_node did
 * those of its own vCPUs, sent none, and did at least all that the
 * others sent it; no other node, home included, did any.  If
 * @all_used_it, the vCPUs of every other node sent it some too.
 */
/* query-distvm's entry for the placed device @id (asserts there is one) */
QDict *distvm_placed_device(QTestState *qts, const char *id);
/* The node that @qts says serves pair @pair of card @id */
int64_t distvm_pair_node(QTestState *qts, const char *id, int pair);
/*
 * Until @qts says that @node runs the placed device @id (30 s at most:
 * home may have sent it there just now)
 */
void distvm_wait_placed_on(QTestState *qts, const char *id, int node);
void distvm_check_placed_device(DistvmNode **node, int nodes,
                                const char *id, int dev_node,
                                bool all_used_it);

/* The QMP command @fmt, asked of @qts, fails with exactly @message. */
void distvm_qmp_refused(QTestState *qts, const char *message,
                        const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* Whether vCPU @cpu_index exists on @qts (query-cpus-fast) */
bool distvm_vcpu_exists(QTestState *qts, int cpu_index);
/* The node running vCPU @cpu_index, as query-distvm reports it. */
int distvm_vcpu_node(QTestState *qts, int cpu_index);

/* Whether the LAPIC of vCPU @cpu_index has the vAPIC option (kvmvapic). */
bool distvm_vcpu_vapic(QTestState *qts, int cpu_index);

/*
 * Wait until the console file contains @needle, for at most @timeout_s
 * seconds; returns whether it did.  The node's process must stay alive.
 */
bool distvm_wait_console(DistvmNode *node, const char *needle,
                         int timeout_s);

/* The console so far, with CR LF line ends turned into LF (g_free it). */
char *distvm_read_console(DistvmNode *node);

/*
 * The line the Linux test guest prints for its workload number @i with
 * distvm.work=@work (g_free it).
 */
char *distvm_linux_work_line(int i, int work);

/* Fail the test if @console has a kernel or guest failure line. */
void distvm_assert_console_clean(const char *console);

/*
 * Fail the test unless the bare-metal guest started once (DG_BOOTS, read
 * through node @qts): it never rebooted
 */
void distvm_assert_booted_once(QTestState *qts);

/*
 * Run qemu-system-x86_64 with @args (no qtest) and return its exit
 * status; its stdout and stderr are returned in @out (g_free it).
 */
int distvm_run_qemu(const char *args, char **out);

/* A cluster of nodes on this machine, over UNIX sockets in a directory. */
typedef struct DistvmCluster {
    int nodes;
    char *dir;
    DistvmNode *node[4];
} DistvmCluster;

/*
 * Start @nodes nodes with the same @machine_args (which must describe
 * the same machine on every node) and wait until every node reports the
 * cluster running.  Node 0 is the home node.
 */
DistvmCluster *distvm_cluster_start(const char *tmpdir, int nodes,
                                    const char *machine_args);
/* The same, with @accel_opts added to every node's -accel distvm. */
DistvmCluster *distvm_cluster_start_with(const char *tmpdir, int nodes,
                                         const char *accel_opts,
                                         const char *machine_args);
/* The same, with @accel_opts[i] (or nothing, if NULL) for node i. */
DistvmCluster *distvm_cluster_start_each(const char *tmpdir, int nodes,
                                         const char *const *accel_opts,
                                         const char *machine_args);

/* The command line options of node @node_id of a cluster in @dir. */
char *distvm_cluster_accel_opts(const char *dir, int nodes, int node_id);

/*
 * Wait for the event @event on @qts, as qtest_qmp_eventwait_ref() does,
 * and return it; the test fails if it has not come after @timeout_s.
 * DISTVM_EVENT_TIMEOUT_S is for any event a test expects: long enough
 * for the slowest of them (a Linux guest's power-off after its
 * workload) on a loaded machine.
 */
#define DISTVM_EVENT_TIMEOUT_S 300
QDict *distvm_wait_event(QTestState *qts, const char *event, int timeout_s);
/* Wait until query-distvm on @qts reports @state (at most @timeout_s s). */
void distvm_wait_state(QTestState *qts, const char *state, int timeout_s);
/* Wait until query-status on @qts reports @status (at most @timeout_s). */
void distvm_wait_status(QTestState *qts, const char *status, int timeout_s);

/* Quit every node still running, home last, and free the cluster. */
void distvm_cluster_quit(DistvmCluster *c);

/*
 * qtest_memread in chunks: libqtest's line reader is quadratic in the
 * length of a reply, so one read of many MiB would take minutes.
 */
void distvm_memread(QTestState *qts, uint64_t addr, void *buf, size_t len);

/* Page states of pc.ram pages [start, start + count) on @qts. */
char *distvm_page_states(QTestState *qts, uint64_t start, uint64_t count);

/*
 * Check that the SMP test guest's workload mode (cpus=@ncpus
 * iters=@iters) left exactly the expected memory.
 */
void distvm_check_smp_memory(QTestState *qts, uint32_t ncpus, uint32_t iters);

/*
 * Stop the SMP test guest's mode=moves chains (asked of the last of the
 * @nodes nodes @node) and check what it left, as home reads it: every
 * chain and counter exact for its rounds, no IPI lost, the TSC and the
 * HPET's counter never back, the chipset and the HPET reached from every
 * vCPU, its console home's only, clock reads local on every node.
 */
void distvm_check_moves_results(DistvmNode **node, int nodes, int ncpus);

/* query-distvm's protocol-errors on @qts */
int64_t distvm_protocol_errors(QTestState *qts);
/* Wait until it is @want (at most 10 s), and check it is not above */
void distvm_wait_protocol_errors(QTestState *qts, int64_t want);

/* query-distvm's checkpoint rollbacks on @home */
uint64_t distvm_rollbacks(QTestState *home);
/*
 * Have @home roll the guest back to its last committed epoch, as if node
 * @as_if_lost were lost (or not, if negative), and wait until it did
 */
void distvm_roll_back(QTestState *home, int as_if_lost);

/*
 * @from sends node @to @msg, a whole message as distvm-wire.c encodes it,
 * through x-distvm-send-message: its type, sequence and payload.
 */
void distvm_forge(DistvmNode *from, int to, const GByteArray *msg);

/* Write @text to the control file @path of a cgroup (no temporary file) */
bool distvm_cgroup_write(const char *path, const char *text);

/*
 * Start a distvm test program: g_test_init, a check that this QEMU has
 * distvm, and a temporary directory named after @name (returned).
 */
char *distvm_test_init(int *argc, char ***argv, const char *name);

/* Run the tests, remove @tmpdir and free it; returns g_test_run's value. */
int distvm_test_run(char *tmpdir);

#endif /* DISTVM_NODE_H */
