/*
 * distvm qtest helpers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qemu/bswap.h"
#include "qemu/units.h"
#include "distvm-node.h"
#include "distvm-wire.h"
#include "guest/smp-workload.h"

const char *distvm_guest_dir(void)
{
    const char *dir = g_getenv("DISTVM_GUEST_DIR");

    return dir ? dir : DISTVM_DEFAULT_GUEST_DIR;
}

char *distvm_guest_path(const char *name)
{
    char *path = g_build_filename(distvm_guest_dir(), name, NULL);

    if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
        g_error("guest image %s is missing: build it with 'make' at the top "
                "of the distvm tree (or set DISTVM_GUEST_DIR)", path);
    }
    return path;
}

QDict *distvm_assert_active(QTestState *qts, int node_id)
{
    QDict *resp = qtest_qmp(qts, "{ 'execute': 'query-distvm' }");
    QDict *ret;

    if (qdict_haskey(resp, "error")) {
        QDict *err = qdict_get_qdict(resp, "error");

        g_error("distvm is not the active accelerator: query-distvm "
                "failed with '%s'", qdict_get_try_str(err, "desc"));
    }
    ret = qdict_get_qdict(resp, "return");
    g_assert(ret);
    g_assert_cmpint(qdict_get_int(ret, "node-id"), ==, node_id);
    qobject_ref(ret);
    qobject_unref(resp);
    return ret;
}

/* Device @id's entry of query-distvm's devices on @qts (unref it) */
QDict *distvm_placed_device(QTestState *qts, const char *id)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-distvm' }");
    QList *list = qdict_get_qlist(qdict_get_qdict(rsp, "return"), "devices");
    QDict *found = NULL;
    QListEntry *e;

    g_assert_nonnull(list);
    QLIST_FOREACH_ENTRY(list, e) {
        QDict *d = qobject_to(QDict, qlist_entry_obj(e));

        if (!strcmp(qdict_get_str(d, "id"), id)) {
            found = d;
            qobject_ref(found);
        }
    }
    qobject_unref(rsp);
    g_assert_nonnull(found);
    return found;
}

/* The node that @qts says serves pair @pair of card @id */
int64_t distvm_pair_node(QTestState *qts, const char *id, int pair)
{
    QDict *d = distvm_placed_device(qts, id);
    QListEntry *e;
    int64_t node = -1;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(d, "queues"), e) {
        QDict *info = qobject_to(QDict, qlist_entry_obj(e));

        if (qdict_get_int(info, "pair") == pair) {
            node = qdict_get_int(info, "node");
        }
    }
    qobject_unref(d);
    g_assert_cmpint(node, >=, 0);
    return node;
}

void distvm_wait_placed_on(QTestState *qts, const char *id, int node)
{
    for (int tries = 0;; tries++) {
        QDict *d = distvm_placed_device(qts, id);
        int64_t runs_on = qdict_get_int(d, "node");

        qobject_unref(d);
        if (runs_on == node) {
            return;
        }
        g_assert_cmpint(tries, <, 3000);
        g_usleep(10 * 1000);
    }
}

void distvm_check_placed_device(DistvmNode **node, int nodes,
                                const char *id, int dev_node,
                                bool all_used_it)
{
    uint64_t forwarded = 0;

    for (int k = 1; k <= nodes; k++) {
        /* the device's node last: it did what the others sent */
        int n = (dev_node + k) % nodes;
        QDict *d = distvm_placed_device(node[n]->qts, id);

        g_assert_cmpint(qdict_get_int(d, "node"), ==, dev_node);
        if (n == dev_node) {
            g_assert_cmpint(qdict_get_int(d, "local"), >, 0);
            g_assert_cmpint(qdict_get_int(d, "forwarded"), ==, 0);
            g_assert_cmpint(qdict_get_int(d, "served"), >=, forwarded);
        } else {
            g_assert_cmpint(qdict_get_int(d, "local"), ==, 0);
            g_assert_cmpint(qdict_get_int(d, "served"), ==, 0);
            if (all_used_it) {
                g_assert_cmpint(qdict_get_int(d, "forwarded"), >, 0);
            }
            forwarded += qdict_get_int(d, "forwarded");
        }
        qobject_unref(d);
    }
}

QDict *distvm_memory_range_find(DistvmNode *node, const char *block)
{
    QDict *info = distvm_assert_active(node->qts, node->node_id);
    QList *mem = qdict_get_qlist(info, "memory");
    QDict *found = NULL;

    for (const QListEntry *e = qlist_first(mem); e; e = qlist_next(e)) {
        QDict *r = qobject_to(QDict, qlist_entry_obj(e));

        if (!strcmp(qdict_get_str(r, "ramblock"), block)) {
            found = r;
            qobject_ref(found);
        }
    }
    qobject_unref(info);
    return found;
}

QDict *distvm_memory_range(DistvmNode *node, const char *block)
{
    QDict *found = distvm_memory_range_find(node, block);

    g_assert(found);
    return found;
}

int64_t distvm_remote_faults(DistvmNode *node, const char *block)
{
    QDict *r = distvm_memory_range(node, block);
    int64_t faults = qdict_get_int(r, "remote-faults");

    qobject_unref(r);
    return faults;
}

bool distvm_vcpu_exists(QTestState *qts, int cpu_index)
{
    QDict *resp = qtest_qmp(qts, "{ 'execute': 'query-cpus-fast' }");
    QList *cpus = qdict_get_qlist(resp, "return");
    bool found = false;

    for (const QListEntry *e = qlist_first(cpus); e; e = qlist_next(e)) {
        found |= qdict_get_int(qobject_to(QDict, qlist_entry_obj(e)),
                               "cpu-index") == cpu_index;
    }
    qobject_unref(resp);
    return found;
}

int distvm_vcpu_node(QTestState *qts, int cpu_index)
{
    QDict *resp = qtest_qmp_assert_success_ref(qts,
                                               "{ 'execute': 'query-distvm' }");
    QListEntry *e;
    int node = -1;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(resp, "vcpus"), e) {
        QDict *v = qobject_to(QDict, qlist_entry_obj(e));

        if (qdict_get_int(v, "cpu-index") == cpu_index) {
            node = qdict_get_int(v, "node");
        }
    }
    qobject_unref(resp);
    g_assert_cmpint(node, >=, 0);
    return node;
}

bool distvm_vcpu_vapic(QTestState *qts, int cpu_index)
{
    QDict *resp = qtest_qmp_assert_success_ref(qts,
                                               "{ 'execute': 'query-distvm' }");
    g_autofree char *lapic = NULL;
    QListEntry *e;
    QDict *ret;
    bool on;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(resp, "vcpus"), e) {
        QDict *v = qobject_to(QDict, qlist_entry_obj(e));

        if (qdict_get_int(v, "cpu-index") == cpu_index) {
            lapic = g_strdup_printf("%s/lapic", qdict_get_str(v, "qom-path"));
        }
    }
    qobject_unref(resp);
    g_assert_nonnull(lapic);
    ret = qtest_qmp(qts, "{ 'execute': 'qom-get', 'arguments': { "
                    "'path': %s, 'property': 'vapic' } }", lapic);
    g_assert_true(qdict_haskey(ret, "return"));
    on = qdict_get_bool(ret, "return");
    qobject_unref(ret);
    return on;
}

DistvmNode *distvm_node_start(const char *tmpdir, int node_id,
                              const char *accel_opts,
                              const char *extra_args)
{
    DistvmNode *node = g_new0(DistvmNode, 1);
    /*
     * The bare-metal guests read no ACPI table, and their tests look at
     * pc.ram and expect memory to start on home: a test that does not
     * choose runs without the NUMA nodes auto-numa would make.
     */
    bool flat = !accel_opts || !strstr(accel_opts, "auto-numa=");
    QDict *info;

    node->node_id = node_id;
    node->serial_path = g_strdup_printf("%s/node%d-serial.log", tmpdir,
                                        node_id);
    node->qts = qtest_initf("-accel distvm%s%s%s -serial file:%s %s",
                            accel_opts && *accel_opts ? "," : "",
                            accel_opts ? accel_opts : "",
                            flat ? ",auto-numa=off" : "",
                            node->serial_path, extra_args);
    /* A node that asks home for its node-id knows it once it joined */
    if (!accel_opts || strstr(accel_opts, "node-id=") ||
        !strstr(accel_opts, "home=")) {
        info = distvm_assert_active(node->qts, node_id);
        qobject_unref(info);
    }
    return node;
}

void distvm_node_quit(DistvmNode *node)
{
    if (node->qts) {
        qtest_quit(node->qts);
    }
    g_free(node->serial_path);
    g_free(node);
}

char *distvm_read_console(DistvmNode *node)
{
    char *text = NULL;

    char *out;

    if (!g_file_get_contents(node->serial_path, &text, NULL, NULL)) {
        return g_strdup("");
    }
    /* Serial consoles end lines with CR LF; keep LF only. */
    out = text;
    for (char *in = text; *in; in++) {
        if (*in != '\r') {
            *out++ = *in;
        }
    }
    *out = '\0';
    return text;
}

bool distvm_wait_console(DistvmNode *node, const char *needle, int timeout_s)
{
    gint64 deadline = g_get_monotonic_time() + timeout_s * G_USEC_PER_SEC;

    for (;;) {
        g_autofree char *text = distvm_read_console(node);

        if (strstr(text, needle)) {
            return true;
        }
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        g_usleep(100 * 1000);
    }
}

char *distvm_linux_work_line(int i, int work)
{
    g_autoptr(GString) seq = g_string_new(NULL);
    g_autofree char *sum = NULL;

    for (int n = i * work + 1; n <= (i + 1) * work; n++) {
        g_string_append_printf(seq, "%d\n", n);
    }
    sum = g_compute_checksum_for_string(G_CHECKSUM_SHA256, seq->str, seq->len);
    return g_strdup_printf("distvm-linux: work %d %s", i, sum);
}

void distvm_assert_console_clean(const char *console)
{
    static const char *const bad[] = {
        "soft lockup", "rcu_sched self-detected stall",
        "rcu: INFO: rcu_preempt detected stalls", "RCU Stall",
        "BUG:", "Oops", "Kernel panic", "general protection fault",
        "Marking clocksource", "as unstable", "Call Trace:",
        "Marking TSC unstable", "TSC synchronization [",
        "distvm-guest: FAIL", "distvm-linux: FAIL",
    };

    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        if (strstr(console, bad[i])) {
            g_error("guest console has '%s':\n%s", bad[i], console);
        }
    }
}

void distvm_assert_booted_once(QTestState *qts)
{
    g_assert_cmpuint(qtest_readl(qts, DG_BOOTS), ==, 1);
}

int distvm_run_qemu(const char *args, char **out)
{
    const char *binary = g_getenv("QTEST_QEMU_BINARY");
    g_autofree char *cmd = NULL;
    g_autofree char *sout = NULL;
    g_autofree char *serr = NULL;
    g_autoptr(GError) err = NULL;
    int status;

    g_assert(binary);
    cmd = g_strdup_printf("%s -display none -nodefaults %s", binary, args);
    if (!g_spawn_command_line_sync(cmd, &sout, &serr, &status, &err)) {
        g_error("cannot run '%s': %s", cmd, err->message);
    }
    *out = g_strconcat(sout, serr, NULL);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

char *distvm_cluster_accel_opts(const char *dir, int nodes, int node_id)
{
    if (node_id == 0) {
        return g_strdup_printf("node-id=0,nodes=%d,listen=unix:%s/node0.sock",
                               nodes, dir);
    }
    return g_strdup_printf("node-id=%d,nodes=%d,listen=unix:%s/node%d.sock,"
                           "home=unix:%s/node0.sock", node_id, nodes, dir,
                           node_id, dir);
}

/*
 * Wait until @command's @key on @qts answers @want, at most @timeout_s;
 * @what names the value in the error.
 */
static void wait_answer(QTestState *qts, const char *command, const char *key,
                        const char *want, int timeout_s, const char *what)
{
    gint64 deadline = g_get_monotonic_time() + timeout_s * G_USEC_PER_SEC;

    for (;;) {
        QDict *ret = qtest_qmp_assert_success_ref(qts,
                                        "{ 'execute': %s }", command);
        g_autofree char *now = g_strdup(qdict_get_str(ret, key));

        qobject_unref(ret);
        if (!strcmp(now, want)) {
            return;
        }
        if (g_get_monotonic_time() > deadline) {
            g_error("%s is '%s', not '%s', after %d s", what, now, want,
                    timeout_s);
        }
        g_usleep(10 * 1000);
    }
}

/*
 * qtest_qmp_eventwait_ref() waits for ever: a thread of the test's own
 * ends it with an error if the wait outlasts its deadline.
 */
static struct {
    GMutex lock;
    GCond cond;
    gint64 deadline;            /* of the wait, or 0 */
    const char *event;
    int timeout_s;
} event_watch;

static gpointer event_watch_run(gpointer opaque)
{
    g_mutex_lock(&event_watch.lock);
    for (;;) {
        if (!event_watch.deadline) {
            g_cond_wait(&event_watch.cond, &event_watch.lock);
        } else if (!g_cond_wait_until(&event_watch.cond, &event_watch.lock,
                                      event_watch.deadline) &&
                   event_watch.deadline &&
                   g_get_monotonic_time() >= event_watch.deadline) {
            g_error("no %s event after %d s", event_watch.event,
                    event_watch.timeout_s);
        }
    }
    return NULL;
}

static gpointer event_watch_start(gpointer opaque)
{
    return g_thread_new("event-watch", event_watch_run, NULL);
}

static void event_watch_set(const char *event, int timeout_s)
{
    static GOnce once = G_ONCE_INIT;

    g_once(&once, event_watch_start, NULL);
    g_mutex_lock(&event_watch.lock);
    event_watch.event = event;
    event_watch.timeout_s = timeout_s;
    event_watch.deadline = timeout_s ?
        g_get_monotonic_time() + timeout_s * G_USEC_PER_SEC : 0;
    g_cond_signal(&event_watch.cond);
    g_mutex_unlock(&event_watch.lock);
}

QDict *distvm_wait_event(QTestState *qts, const char *event, int timeout_s)
{
    QDict *ev;

    event_watch_set(event, timeout_s);
    ev = qtest_qmp_eventwait_ref(qts, event);
    event_watch_set(NULL, 0);
    return ev;
}

void distvm_wait_state(QTestState *qts, const char *state, int timeout_s)
{
    wait_answer(qts, "query-distvm", "state", state, timeout_s,
                "the cluster's state");
}

void distvm_wait_status(QTestState *qts, const char *status, int timeout_s)
{
    wait_answer(qts, "query-status", "status", status, timeout_s,
                "the guest's run state");
}

DistvmCluster *distvm_cluster_start(const char *tmpdir, int nodes,
                                    const char *machine_args)
{
    return distvm_cluster_start_with(tmpdir, nodes, NULL, machine_args);
}

DistvmCluster *distvm_cluster_start_with(const char *tmpdir, int nodes,
                                         const char *accel_opts,
                                         const char *machine_args)
{
    const char *each[G_N_ELEMENTS(((DistvmCluster *)NULL)->node)];

    g_assert(nodes >= 2 && nodes <= (int)G_N_ELEMENTS(each));
    for (int i = 0; i < nodes; i++) {
        each[i] = accel_opts;
    }
    return distvm_cluster_start_each(tmpdir, nodes, each, machine_args);
}

DistvmCluster *distvm_cluster_start_each(const char *tmpdir, int nodes,
                                         const char *const *accel_opts,
                                         const char *machine_args)
{
    DistvmCluster *c = g_new0(DistvmCluster, 1);
    static int count;

    g_assert(nodes >= 2 && nodes <= (int)G_N_ELEMENTS(c->node));
    c->nodes = nodes;
    c->dir = g_strdup_printf("%s/cluster%d", tmpdir, count++);
    g_assert(g_mkdir_with_parents(c->dir, 0700) == 0);
    for (int i = 0; i < nodes; i++) {
        g_autofree char *base = distvm_cluster_accel_opts(c->dir, nodes, i);
        g_autofree char *opts = g_strdup_printf("%s%s%s", base,
                                                accel_opts[i] ? "," : "",
                                                accel_opts[i] ?: "");

        c->node[i] = distvm_node_start(c->dir, i, opts, machine_args);
    }
    for (int i = 0; i < nodes; i++) {
        distvm_wait_state(c->node[i]->qts, "running", 60);
    }
    return c;
}

void distvm_cluster_quit(DistvmCluster *c)
{
    /*
     * A node that quits tells the others, which shut down by themselves
     * (exit status 0); qtest_quit then only reaps them.
     */
    for (int i = c->nodes - 1; i >= 0; i--) {
        if (c->node[i]) {
            distvm_node_quit(c->node[i]);
        }
    }
    g_free(c->dir);
    g_free(c);
}

bool distvm_cgroup_write(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY);
    bool ok = fd >= 0 && write(fd, text, strlen(text)) == strlen(text);

    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

char *distvm_page_states(QTestState *qts, uint64_t start, uint64_t count)
{
    QDict *ret = qtest_qmp_assert_success_ref(qts,
        "{ 'execute': 'x-query-distvm-pages', 'arguments': "
        "{ 'ramblock': 'pc.ram', 'start': %" PRIu64 ", 'count': %" PRIu64
        " } }", start, count);
    char *states = g_strdup(qdict_get_str(ret, "states"));

    qobject_unref(ret);
    g_assert_cmpuint(strlen(states), ==, count);
    return states;
}

void distvm_memread(QTestState *qts, uint64_t addr, void *buf, size_t len)
{
    const size_t chunk = 256 * KiB;

    for (size_t off = 0; off < len; off += chunk) {
        qtest_memread(qts, addr + off, (uint8_t *)buf + off,
                      MIN(chunk, len - off));
    }
}

/* Compute what the SMP guest must leave in memory. */
static void expected_smp_results(uint32_t ncpus, uint32_t iters,
                                 struct dg_results *r, uint64_t *priv)
{
    memset(r, 0, sizeof(*r));
    memset(priv, 0, (size_t)ncpus * DG_PRIV_BYTES);
    r->magic = DG_MAGIC_DONE;
    r->ncpus = ncpus;
    r->iters = iters;
    r->cpus_started = ncpus;
    for (uint32_t cpu = 0; cpu < ncpus; cpu++) {
        uint64_t x = dg_seed(cpu), sum = 0;
        uint64_t *p = priv + (size_t)cpu * DG_PRIV_WORDS;

        for (uint32_t i = 0; i < iters; i++) {
            x = dg_next(x);
            p[dg_priv_index(x)] += dg_priv_delta(x, i);
            sum += x;
        }
        r->checksum[cpu] = sum;
        r->cpu_done[cpu] = 1;
        r->locked_z += dg_multiples(iters, DG_LOCKED_EVERY) * (cpu + 1);
    }
    r->atomic_counter = ncpus * dg_multiples(iters, DG_ATOMIC_EVERY);
    r->locked_x = ncpus * dg_multiples(iters, DG_LOCKED_EVERY);
    r->locked_y = 2 * r->locked_x;
    if (ncpus > 1) {
        for (uint32_t i = 0; i < DG_RING_ITEMS; i++) {
            r->ring_sum += dg_ring_value(i);
        }
        r->ring_count = DG_RING_ITEMS;
    }
}

void distvm_check_smp_memory(QTestState *qts, uint32_t ncpus, uint32_t iters)
{
    g_autofree struct dg_results *want = g_new(struct dg_results, 1);
    g_autofree struct dg_results *got = g_new(struct dg_results, 1);
    g_autofree uint64_t *want_priv = g_new(uint64_t, ncpus * DG_PRIV_WORDS);
    g_autofree uint64_t *got_priv = g_new(uint64_t, ncpus * DG_PRIV_WORDS);

    expected_smp_results(ncpus, iters, want, want_priv);
    qtest_memread(qts, DG_RESULT_BASE, got, sizeof(*got));
    qtest_memread(qts, DG_PRIV_BASE, got_priv, ncpus * DG_PRIV_BYTES);

    g_assert_cmphex(got->magic, ==, want->magic);
    g_assert_cmpuint(got->ncpus, ==, want->ncpus);
    g_assert_cmpuint(got->iters, ==, want->iters);
    g_assert_cmpuint(got->cpus_started, ==, want->cpus_started);
    g_assert_cmpuint(got->atomic_counter, ==, want->atomic_counter);
    g_assert_cmpuint(got->locked_x, ==, want->locked_x);
    g_assert_cmpuint(got->locked_y, ==, want->locked_y);
    g_assert_cmpuint(got->locked_z, ==, want->locked_z);
    g_assert_cmpuint(got->ring_count, ==, want->ring_count);
    g_assert_cmpuint(got->ring_errors, ==, 0);
    g_assert_cmphex(got->ring_sum, ==, want->ring_sum);
    for (uint32_t cpu = 0; cpu < ncpus; cpu++) {
        g_assert_cmphex(got->checksum[cpu], ==, want->checksum[cpu]);
        g_assert_cmpuint(got->cpu_done[cpu], ==, 1);
    }
    /* The whole record, padding and unused slots included. */
    g_assert_cmpmem(got, sizeof(*got), want, sizeof(*want));
    g_assert_cmpmem(got_priv, ncpus * DG_PRIV_BYTES,
                    want_priv, ncpus * DG_PRIV_BYTES);
}


char *distvm_test_init(int *argc, char ***argv, const char *name)
{
    g_autofree char *template = g_strdup_printf("%s-XXXXXX", name);
    char *tmpdir;

    g_test_init(argc, argv, NULL);
    if (!qtest_has_accel("distvm")) {
        g_error("this QEMU binary has no distvm accelerator");
    }
    tmpdir = g_dir_make_tmp(template, NULL);
    g_assert(tmpdir);
    return tmpdir;
}

int distvm_test_run(char *tmpdir)
{
    int ret = g_test_run();
    g_autofree char *rm = g_strdup_printf("rm -rf %s", tmpdir);

    g_spawn_command_line_sync(rm, NULL, NULL, NULL, NULL);
    g_free(tmpdir);
    return ret;
}

#define MOVES_RES(field) (DG_RESULT_BASE + offsetof(struct dg_results, field))

void distvm_check_moves_results(DistvmNode **node, int nodes, int ncpus)
{
    QTestState *home = node[0]->qts;
    uint32_t rounds[DG_MAX_CPUS];
    uint64_t total_rounds = 0;

    qtest_writel(node[nodes - 1]->qts, MOVES_RES(stop), 1);
    for (int tries = 0; qtest_readl(home, MOVES_RES(magic)) != DG_MAGIC_DONE;
         tries++) {
        g_assert_cmpint(tries, <, 3000);
        g_usleep(10000);
    }
    /*
     * Port I/O and MMIO reached the home node's devices from wherever each
     * vCPU was: its chipset and HPET answered, and the console is home's.
     */
    {
        uint32_t ref = qtest_readl(home, MOVES_RES(pci_probe_ref));
        g_autofree char *console = distvm_read_console(node[0]);

        g_assert_cmphex(ref & ~3u, !=, 0);
        for (int cpu = 0; cpu < ncpus; cpu++) {
            g_autofree char *line = g_strdup_printf(
                "distvm-guest: cpu %d finished", cpu);
            uint32_t hpet0 = qtest_readl(home, MOVES_RES(hpet_probe) +
                                               cpu * 8);
            uint32_t hpet1 = qtest_readl(home, MOVES_RES(hpet_probe) +
                                               cpu * 8 + 4);

            g_assert_cmphex(qtest_readl(home, MOVES_RES(pci_probe) +
                                              cpu * 4), ==, ref);
            /* MMIO too: home's HPET, the only one enabled, counted. */
            g_assert_cmpuint(hpet0, >, 0);
            g_assert_cmpuint(hpet1, >, hpet0);
            g_assert_nonnull(strstr(console, line));
        }
        for (int n = 1; n < nodes; n++) {
            g_autofree char *other = distvm_read_console(node[n]);

            g_assert_cmpstr(other, ==, "");
        }
    }
    /* No IPI was lost, whatever node each vCPU was on at the time. */
    for (int cpu = 0; cpu < ncpus; cpu++) {
        uint32_t sent = qtest_readl(home, MOVES_RES(ipi_sent) + cpu * 4);

        g_assert_cmpuint(sent, >, 0);
        g_assert_cmpuint(qtest_readl(home, MOVES_RES(ipi_recv) +
                                     (cpu + 1) % ncpus * 4), ==, sent);
        g_test_message("vCPU %d sent %u IPIs", cpu, sent);
    }
    distvm_memread(home, MOVES_RES(rounds), rounds, sizeof(rounds));
    for (int cpu = 0; cpu < ncpus; cpu++) {
        uint64_t x;
        dg_v4 v, got_v;

        g_assert_cmpuint(rounds[cpu], >, 0);
        dg_chain_init(cpu, &x, &v);
        for (uint32_t k = 0; k < rounds[cpu]; k++) {
            dg_chain_round(&x, &v);
        }
        g_assert_cmphex(qtest_readq(home, MOVES_RES(chain_x) + cpu * 8), ==,
                        x);
        distvm_memread(home, MOVES_RES(chain_v) + cpu * sizeof(dg_v4),
                       &got_v, sizeof(got_v));
        g_assert_cmpmem(&got_v, sizeof(got_v), &v, sizeof(v));
        total_rounds += rounds[cpu];
        g_test_message("vCPU %d: %u rounds", cpu, rounds[cpu]);
    }
    g_assert_cmpuint(qtest_readq(home, MOVES_RES(atomic_counter)), ==,
                     total_rounds);
    g_assert_cmpuint(qtest_readq(home, MOVES_RES(locked_x)), ==,
                     total_rounds);
    g_assert_cmpuint(qtest_readq(home, MOVES_RES(locked_y)), ==,
                     2 * total_rounds);
    /*
     * The TSC agrees across nodes: read under the lock, handed from node
     * to node, it never went back (Linux's warp check).
     */
    g_assert_cmpuint(qtest_readl(home, MOVES_RES(tsc_checks)), ==,
                     total_rounds);
    g_assert_cmpuint(qtest_readq(home, MOVES_RES(last_tsc)), >, 0);
    g_assert_cmpuint(qtest_readl(home, MOVES_RES(tsc_warps)), ==, 0);
    /*
     * So does the HPET's counter, which the other nodes read from their
     * own clock: none of them sent a read of it home.
     */
    g_assert_cmpuint(qtest_readl(home, MOVES_RES(last_hpet)), >, 0);
    g_assert_cmpuint(qtest_readl(home, MOVES_RES(hpet_warps)), ==, 0);
    for (int n = 1; n < nodes; n++) {
        QDict *info = distvm_assert_active(node[n]->qts, node[n]->node_id);
        QDict *io = qdict_get_qdict(info, "io");

        g_assert_cmpint(qdict_get_int(io, "clock-reads-sent"), ==, 0);
        g_assert_cmpint(qdict_get_int(io, "clock-reads-local"), >, 0);
        qobject_unref(info);
    }
}

void distvm_qmp_refused(QTestState *qts, const char *message,
                        const char *fmt, ...)
{
    va_list ap;
    QDict *resp;

    va_start(ap, fmt);
    resp = qtest_vqmp(qts, fmt, ap);
    va_end(ap);
    g_assert_true(qdict_haskey(resp, "error"));
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(resp, "error"), "desc"),
                    ==, message);
    qobject_unref(resp);
}

int64_t distvm_protocol_errors(QTestState *qts)
{
    QDict *info = qtest_qmp_assert_success_ref(qts,
                                               "{ 'execute': 'query-distvm' }");
    int64_t n = qdict_get_int(info, "protocol-errors");

    qobject_unref(info);
    return n;
}

void distvm_wait_protocol_errors(QTestState *qts, int64_t want)
{
    for (int i = 0; i < 1000 && distvm_protocol_errors(qts) < want; i++) {
        g_usleep(10 * 1000);
    }
    g_assert_cmpint(distvm_protocol_errors(qts), ==, want);
}

uint64_t distvm_rollbacks(QTestState *home)
{
    QDict *info = qtest_qmp_assert_success_ref(home,
                                               "{ 'execute': 'query-distvm' }");
    uint64_t n = qdict_get_int(qdict_get_qdict(info, "checkpoint"),
                               "rollbacks");

    qobject_unref(info);
    return n;
}

void distvm_roll_back(QTestState *home, int as_if_lost)
{
    uint64_t before = distvm_rollbacks(home);

    if (as_if_lost >= 0) {
        qtest_qmp_assert_success(home, "{ 'execute': 'x-distvm-rollback', "
                                 "'arguments': { 'as-if-lost': %d } }",
                                 as_if_lost);
    } else {
        qtest_qmp_assert_success(home, "{ 'execute': 'x-distvm-rollback' }");
    }
    for (int tries = 0; distvm_rollbacks(home) == before; tries++) {
        g_assert_cmpint(tries, <, 2000);
        g_usleep(5 * 1000);
    }
}

void distvm_forge(DistvmNode *from, int to, const GByteArray *msg)
{
    g_autoptr(GString) hex = g_string_new("");

    for (guint i = DISTVM_WIRE_HDR_SIZE; i < msg->len; i++) {
        g_string_append_printf(hex, "%02x", msg->data[i]);
    }
    qobject_unref(qtest_qmp_assert_success_ref(from->qts,
        "{ 'execute': 'x-distvm-send-message', 'arguments': "
        "{ 'to': %d, 'type': %d, 'seq': %" PRIu64 ", 'payload': %s } }",
        to, lduw_le_p(msg->data + 6), ldq_le_p(msg->data + 16), hex->str));
}
