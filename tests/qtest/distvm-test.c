/*
 * distvm qtest suite
 *
 * Single-node tests: the accelerator and its options, query-distvm and
 * "info distvm", the bare-metal SMP guest (exact final memory) and the
 * Linux guest.  Every test that starts a guest asserts through QMP that
 * distvm, not the qtest fallback, is the accelerator.
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

static char *tmpdir;

/* -accel help lists distvm; -accel distvm,help describes its options. */
static void test_accel_listed(void)
{
    g_autofree char *out = NULL;
    g_autofree char *help = NULL;

    g_assert_cmpint(distvm_run_qemu("-accel help", &out), ==, 0);
    g_assert_nonnull(strstr(out, "\ndistvm\n"));

    g_assert_cmpint(distvm_run_qemu("-accel distvm,help", &help), ==, 0);
    for (const char *p = "node-id\0nodes\0listen\0home\0policy\0capacity\0"
                         "auto-numa\0thread\0"; *p;
         p += strlen(p) + 1) {
        g_autofree char *needle = g_strdup_printf("  %s=", p);

        g_assert_nonnull(strstr(help, needle));
    }
}

/* Bad options are refused at start-up with an error naming the problem. */
static void test_bad_options(void)
{
    static const struct {
        const char *opts;
        const char *error;
    } cases[] = {
        { "thread=single", "needs multi-threaded TCG" },
        { "nodes=0", "nodes=0 is out of range" },
        { "nodes=17", "nodes=17 is out of range" },
        { "node-id=16", "node-id=16 is out of range" },
        { "node-id=2,nodes=2,listen=unix:/nonexistent/x,home=unix:/y",
          "node-id=2 is not below nodes=2" },
        { "listen=bogus", "the address must be tcp:HOST:PORT or unix:PATH" },
        { "listen=tcp:localhost", "listen=tcp:localhost" },
        { "node-id=0,home=unix:/tmp/x", "home= is for the other nodes" },
        { "home=unix:/tmp/x", "a node without node-id= joins a running "
          "guest, and takes the id the home node gives it; that needs "
          "start-nodes below nodes=1" },
        { "nodes=3,start-nodes=3,listen=unix:/tmp/x,home=unix:/tmp/y",
          "that needs start-nodes below nodes=3" },
        { "nodes=2", "needs listen=" },
        { "node-id=1,nodes=2,listen=unix:/tmp/x", "needs home=" },
        { "node-id=abc", "node-id" },
        { "peer-timeout=0", "peer-timeout=0 is out of range (1 to 3600" },
        { "peer-timeout=3601", "peer-timeout=3601 is out of range" },
        { "pause-sleep-us=10001",
          "pause-sleep-us=10001 is out of range (0 to 10000" },
        { "policy=nearest", "Parameter 'policy' does not accept value "
          "'nearest'" },
        { "capacity=0", "capacity=0 is out of range (1 to 4096 vCPUs)" },
        { "replicas=2", "replicas=2 is out of range (0 to 1 copies of each "
          "node's state)" },
        { "replicas=1", "replicas=1 keeps each node's state on another "
          "node, and needs nodes=2 or more" },
        { "redundancy=parity", "redundancy=parity needs replicas=1" },
        { "redundancy=raid5", "Parameter 'redundancy' does not accept "
          "value 'raid5'" },
        { "checkpoint-ms=9", "checkpoint-ms=9 is out of range (10 to "
          "3600000 milliseconds)" },
        { "path-up-delay-ms=3600001", "path-up-delay-ms=3600001 is out of "
          "range (0 to 3600000 milliseconds)" },
        { "queue-follow=on", "queue-follow=on needs queue-nodes: pairs "
          "follow their vCPUs between the nodes that queue-nodes names" },
        { "queue-follow=maybe", "Parameter 'queue-follow' does not accept "
          "value 'maybe'" },
        { "standby=0", "standby=0 is out of range (1 to 15 node ids)" },
        { "nodes=3,listen=unix:/nonexistent/x,standby=2",
          "standby=2 needs replicas=1 and a node that starts the cluster" },
        { "nodes=3,start-nodes=2,listen=unix:/nonexistent/x,replicas=1,"
          "standby=2", "standby=2 needs replicas=1 and a node that starts "
          "the cluster (below start-nodes=2)" },
        { "speed=0", "speed=0 is out of range (0.001 to 1000" },
        { "speed=1001", "speed=1001 is out of range (0.001 to 1000" },
        { "speed=fast", "speed" },
        { "nodes=2,listen=unix:/nonexistent/x,tls-creds=nope",
          "tls-creds=nope: no TLS credentials object" },
        { "nodes=2,listen=unix:/nonexistent/x,tls-authz=a0",
          "tls-authz needs tls-creds" },
        { "nodes=2,listen=unix:/nonexistent/x,tls-creds=anon0 "
          "-object tls-creds-anon,id=anon0,endpoint=server",
          "anonymous credentials authenticate nobody" },
        { "nodes=2,listen=unix:/nonexistent/x,tls-creds=a0 "
          "-object authz-simple,id=a0,identity=CN=x",
          "tls-creds=a0: no TLS credentials object" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *args = g_strdup_printf("-machine none -accel distvm,%s",
                                                cases[i].opts);
        g_autofree char *out = NULL;
        int status = distvm_run_qemu(args, &out);

        if (status != 1 || !strstr(out, cases[i].error)) {
            g_error("'-accel distvm,%s': expected exit status 1 and an error "
                    "with '%s', got status %d and:\n%s", cases[i].opts,
                    cases[i].error, status, out);
        }
    }
}

/*
 * Checkpoints of a machine with a SCSI bus are refused once the machine
 * exists: QEMU saves SCSI requests only with the guest stopped.
 */
static void test_bad_replicas_scsi(void)
{
    g_autofree char *sock = g_strdup_printf("%s/distvm-test-scsi-%d.sock",
                                            g_get_tmp_dir(), getpid());
    g_autofree char *args = g_strdup_printf(
        "-machine pc -nodefaults -device virtio-scsi-pci "
        "-accel distvm,nodes=2,listen=unix:%s,replicas=1", sock);
    g_autofree char *out = NULL;
    int status = distvm_run_qemu(args, &out);

    unlink(sock);
    if (status != 1 || !strstr(out, "distvm: replicas=1 cannot checkpoint "
                               "a machine with a SCSI bus yet")) {
        g_error("replicas=1 with a SCSI bus: expected exit status 1 and an "
                "error, got status %d and:\n%s", status, out);
    }
}

/*
 * device-nodes: each bad placement is refused at start, with an error
 * that names the problem; a single node checks it as any node does.
 */
static void test_bad_device_nodes(void)
{
    static const struct {
        const char *placed;
        const char *error;
    } cases[] = {
        { "edu0@2", "distvm: device-nodes=edu0@2: there is no node 2 (the "
          "cluster has nodes 0 to 1)" },
        { "edu0", "device-nodes=edu0: 'edu0' is not ID@NODE" },
        { "edu0@one", "'edu0@one' is not ID@NODE (NODE is a number)" },
        { "edu0@1:edu0@0", "device 'edu0' is listed twice" },
        { "nope@1", "distvm: device-nodes: there is no device 'nope' (the "
          "PCI devices with an id: " },
        { "ptd@1", "distvm: device-nodes: 'ptd' (pc-testdev) is not a PCI "
          "device; only PCI devices can run on a node other than home" },
        { "/machine/i440fx/ioapic@1", "'/machine/i440fx/ioapic' (ioapic) is "
          "not a PCI device" },
        { "br0@1", "'br0' (pci-bridge) is a bridge" },
        { "vga0@1", "'vga0' (VGA) is a display device" },
        { "edu0@1:/machine/peripheral/edu0@1", "'edu0' and "
          "'/machine/peripheral/edu0' are the same device" },
        /* Checkpoints keep what a device placed away from home holds */
        { "edu0@1,replicas=1", "distvm: device-nodes: 'edu0' (edu) has no "
          "VMState, so no checkpoint epoch keeps its state (replicas=1): it "
          "must run on home" },
        { "vblk0@1,replicas=1", "distvm: device-nodes: 'vblk0' has a disk, "
          "whose writes only home holds until their checkpoint epoch "
          "commits (replicas=1): it must run on home" },
    };
    const char *machine = "-machine pc -nodefaults -device edu,id=edu0 "
        "-device pc-testdev,id=ptd -device pci-bridge,id=br0,chassis_nr=1 "
        "-device VGA,id=vga0 -drive if=none,id=d0,driver=null-co "
        "-device virtio-blk-pci,drive=d0,id=vblk0";

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *args = g_strdup_printf(
            "%s -accel distvm,node-id=1,nodes=2,listen=unix:%s/bad-dev.sock,"
            "home=unix:/nonexistent/y,device-nodes=%s", machine, tmpdir,
            cases[i].placed);
        g_autofree char *out = NULL;
        int status = distvm_run_qemu(args, &out);

        if (status != 1 || !strstr(out, cases[i].error)) {
            g_error("'%s': expected exit status 1 and an error with '%s', "
                    "got status %d and:\n%s", args, cases[i].error, status,
                    out);
        }
    }
    /* The host bridge of a q35; and on a single node */
    {
        g_autofree char *out = NULL;
        int status = distvm_run_qemu("-machine q35 -nodefaults -accel "
                                     "distvm,device-nodes=/machine/q35/mch@0",
                                     &out);

        g_assert_cmpint(status, ==, 1);
        g_assert_nonnull(strstr(out, "distvm: device-nodes: "
                                "'/machine/q35/mch' is the host bridge, part "
                                "of the chipset, which stays on home"));
    }
}

/*
 * queue-nodes: each bad layout is refused at start, with an error that
 * names the problem.  The cards' taps are queues of one multi-queue tap
 * of this host (root).
 */
static void test_bad_queue_nodes(void)
{
    static const struct {
        const char *placed;
        const char *error;
    } cases[] = {
        { "vmq/1@2", "distvm: queue-nodes=vmq/1@2: 'vmq/1@2': there is no "
          "node 2 at start (the cluster starts with nodes 0 to 1)" },
        { "vmq1@1", "queue-nodes=vmq1@1: 'vmq1@1' is not ID/PAIR@NODE "
          "(PAIR and NODE are numbers)" },
        { "vmq/one@1", "'vmq/one@1' is not ID/PAIR@NODE" },
        { "vmq/1@1x", "'vmq/1@1x' is not ID/PAIR@NODE" },
        { "vmq/1@1:vmq/1@0", "queue pair 1 of 'vmq' is listed twice" },
        { "vmq/2@1", "distvm: queue-nodes: 'vmq' has no queue pair 2 (it "
          "has pairs 0 to 1)" },
        { "nope/1@1", "distvm: queue-nodes: there is no device 'nope' (the "
          "PCI devices with an id: " },
        { "edu0/1@1", "distvm: queue-nodes: 'edu0' (edu) is not a "
          "virtio-net card" },
        { "vnomq/1@1", "distvm: queue-nodes: 'vnomq' has one queue pair: "
          "give it mq=on and its netdev queues=N" },
        { "vslirp/0@1", "distvm: queue-nodes: 'vslirp' has one queue pair" },
        { "vnovec/1@1", "distvm: queue-nodes: 'vnovec' has no MSI-X vectors "
          "(vectors=0)" },
        { "vrss/1@1", "distvm: queue-nodes: 'vrss' has rss=on or hash=on, "
          "which steer received packets to other pairs' queues" },
        { "br0/0@1", "distvm: queue-nodes: 'br0' (pci-bridge) is a bridge" },
        { "vpacked/1@1,replicas=1", "distvm: queue-nodes: 'vpacked' has "
          "packed=on: after a rollback (replicas=1), the nodes could not "
          "take its pairs' packed rings up again" },
    };
    const char *tap = "dvqbad0";
    g_autofree char *machine = g_strdup_printf(
        "-machine pc -nodefaults -device edu,id=edu0 "
        "-device pci-bridge,id=br0,chassis_nr=1 "
        "-netdev tap,id=t0,ifname=%s,queues=2,script=no,downscript=no "
        "-device virtio-net-pci,netdev=t0,mq=on,romfile=,id=vmq "
        "-netdev tap,id=t1,ifname=%s,queues=2,script=no,downscript=no "
        "-device virtio-net-pci,netdev=t1,romfile=,id=vnomq "
        "-netdev tap,id=t2,ifname=%s,queues=2,script=no,downscript=no "
        "-device virtio-net-pci,netdev=t2,mq=on,vectors=0,romfile=,"
        "id=vnovec "
        "-netdev tap,id=t3,ifname=%s,queues=2,script=no,downscript=no "
        "-device virtio-net-pci,netdev=t3,mq=on,rss=on,romfile=,id=vrss "
        "-netdev tap,id=t4,ifname=%s,queues=2,script=no,downscript=no "
        "-device virtio-net-pci,netdev=t4,mq=on,packed=on,romfile=,"
        "id=vpacked "
        "-netdev user,id=u0 "
        "-device virtio-net-pci,netdev=u0,mq=on,romfile=,id=vslirp",
        tap, tap, tap, tap, tap);

    distvm_sh("ip link del %s 2>/dev/null; ip tuntap add dev %s mode tap "
              "multi_queue", tap, tap);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *args = g_strdup_printf(
            "%s -accel distvm,node-id=1,nodes=2,listen=unix:%s/bad-q.sock,"
            "home=unix:/nonexistent/y,queue-nodes=%s", machine, tmpdir,
            cases[i].placed);
        g_autofree char *out = NULL;
        int status = distvm_run_qemu(args, &out);

        if (status != 1 || !strstr(out, cases[i].error)) {
            distvm_sh("ip link del %s", tap);
            g_error("'%s': expected exit status 1 and an error with '%s', "
                    "got status %d and:\n%s", args, cases[i].error, status,
                    out);
        }
    }
    distvm_sh("ip link del %s", tap);
}

/* query-distvm and "info distvm" on a single node with 2 vCPUs. */
static void test_query(void)
{
    DistvmNode *node = distvm_node_start(tmpdir, 0, NULL, "-smp 2 -S");
    QDict *info = distvm_assert_active(node->qts, 0);
    QList *vcpus = qdict_get_qlist(info, "vcpus");
    g_autofree char *hmp = NULL;
    QListEntry *e;
    int n = 0;

    g_assert_cmpint(qdict_get_int(info, "nodes"), ==, 1);
    g_assert_false(qdict_haskey(info, "home"));
    QLIST_FOREACH_ENTRY(vcpus, e) {
        QDict *v = qobject_to(QDict, qlist_entry_obj(e));

        g_assert_cmpint(qdict_get_int(v, "cpu-index"), ==, n);
        g_assert_cmpint(qdict_get_int(v, "node"), ==, 0);
        g_assert_nonnull(strstr(qdict_get_str(v, "qom-path"), "/machine/"));
        n++;
    }
    g_assert_cmpint(n, ==, 2);
    qobject_unref(info);
    /* alone, a node keeps the vAPIC option ROM, as TCG does */
    g_assert_true(distvm_vcpu_vapic(node->qts, 1));

    hmp = qtest_hmp(node->qts, "info distvm");
    g_assert_nonnull(strstr(hmp, "node 0 of 1 (home)"));
    g_assert_nonnull(strstr(hmp, "vCPU 1: node 0"));
    distvm_node_quit(node);
}

/* Under another accelerator, query-distvm fails rather than lying. */
static void test_query_other_accel(void)
{
    QTestState *qts = qtest_init("-machine none");
    QDict *resp = qtest_qmp(qts, "{ 'execute': 'query-distvm' }");

    g_assert_true(qdict_haskey(resp, "error"));
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(resp, "error"), "desc"),
                    ==, "distvm is not the active accelerator");
    qobject_unref(resp);
    qtest_quit(qts);
}

/* Wait for the SMP guest to finish; fails the test on timeout or FAIL. */
static void wait_smp_guest(DistvmNode *node, int timeout_s)
{
    gint64 deadline = g_get_monotonic_time() + timeout_s * G_USEC_PER_SEC;
    uint32_t magic;

    for (;;) {
        magic = qtest_readl(node->qts, DG_RESULT_BASE);
        if (magic == DG_MAGIC_DONE || magic == DG_MAGIC_FAIL) {
            break;
        }
        if (g_get_monotonic_time() > deadline) {
            g_autofree char *console = distvm_read_console(node);

            g_error("SMP guest did not finish in %d s; console:\n%s",
                    timeout_s, console);
        }
        g_usleep(50 * 1000);
    }
    if (magic != DG_MAGIC_DONE) {
        g_autofree char *console = distvm_read_console(node);

        g_error("SMP guest failed; console:\n%s", console);
    }
}

static void run_smp_guest(uint32_t ncpus, uint32_t iters)
{
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        "-machine pc -m 64M -smp %u -kernel %s -append 'cpus=%u iters=%u'",
        ncpus, elf, ncpus, iters);
    DistvmNode *node = distvm_node_start(tmpdir, 0, NULL, args);
    g_autofree char *console = NULL;

    wait_smp_guest(node, 300);
    distvm_check_smp_memory(node->qts, ncpus, iters);
    console = distvm_read_console(node);
    g_assert_nonnull(strstr(console, "distvm-guest: all cpus up"));
    g_assert_nonnull(strstr(console, "distvm-guest: DONE"));
    distvm_assert_console_clean(console);
    distvm_node_quit(node);
}

static void test_smp_guest_1cpu(void)
{
    run_smp_guest(1, 200000);
}

static void test_smp_guest_4cpus(void)
{
    run_smp_guest(4, 400000);
}

/*
 * Room for CPUs to be hot-plugged (-smp 2,maxcpus=4): the 2 that exist
 * run on 2 nodes from power-on, and the guest's result is exact.
 */
static int64_t pause_sleeps(DistvmNode *node)
{
    QDict *resp = qtest_qmp_assert_success_ref(node->qts,
                                               "{ 'execute': 'query-distvm' }");
    int64_t n = qdict_get_int(resp, "pause-sleeps");

    qobject_unref(resp);
    return n;
}

static void test_smp_guest_maxcpus(void)
{
    const uint32_t iters = 100000;
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        "-machine pc -m 64M -smp 2,maxcpus=4 -kernel %s "
        "-append 'cpus=2 iters=%u'", elf, iters);
    DistvmCluster *c = distvm_cluster_start_with(tmpdir, 2, "placement=0:1",
                                                 args);
    g_autofree char *console = NULL;

    for (int n = 0; n < 2; n++) {
        g_assert_cmpint(distvm_vcpu_node(c->node[n]->qts, 0), ==, 0);
        g_assert_cmpint(distvm_vcpu_node(c->node[n]->qts, 1), ==, 1);
    }
    wait_smp_guest(c->node[0], 300);
    distvm_check_smp_memory(c->node[1]->qts, 2, iters);
    distvm_check_smp_memory(c->node[0]->qts, 2, iters);
    console = distvm_read_console(c->node[0]);
    g_assert_nonnull(strstr(console, "distvm-guest: all cpus up"));
    distvm_assert_console_clean(console);
    /* The two vCPUs spun for their shared lock across nodes, and slept. */
    g_assert_cmpint(pause_sleeps(c->node[0]) + pause_sleeps(c->node[1]), >,
                    0);
    distvm_cluster_quit(c);
}

/*
 * pause-sleep-us=0: the vCPUs of the test guest spin for their shared
 * lock across 2 nodes without ever sleeping, with the same exact result.
 */
static void test_smp_guest_pause_sleep_off(void)
{
    const uint32_t iters = 20000;
    g_autofree char *elf = distvm_guest_path("smp-guest.elf");
    g_autofree char *args = g_strdup_printf(
        "-machine pc -m 64M -smp 2 -kernel %s -append 'cpus=2 iters=%u'",
        elf, iters);
    DistvmCluster *c = distvm_cluster_start_with(
        tmpdir, 2, "placement=0:1,pause-sleep-us=0", args);
    g_autofree char *console = NULL;

    wait_smp_guest(c->node[0], 300);
    distvm_check_smp_memory(c->node[1]->qts, 2, iters);
    distvm_check_smp_memory(c->node[0]->qts, 2, iters);
    console = distvm_read_console(c->node[0]);
    distvm_assert_console_clean(console);
    g_assert_cmpint(pause_sleeps(c->node[0]), ==, 0);
    g_assert_cmpint(pause_sleeps(c->node[1]), ==, 0);
    distvm_cluster_quit(c);
}

/*
 * The Linux guest with 2 CPUs: both come online, the workload's output
 * is exact, the console is clean and the guest powers off (exit 0).
 */
static void test_linux_smp2(void)
{
    const int work = 20000;
    g_autofree char *kernel = distvm_guest_path("linux/vmlinuz");
    g_autofree char *initrd = distvm_guest_path("linux/initramfs.cpio.gz");
    g_autofree char *args = g_strdup_printf(
        "-machine pc -m 512M -smp 2 -kernel %s -initrd %s "
        "-append 'console=ttyS0 panic=-1 distvm.work=%d'",
        kernel, initrd, work);
    DistvmNode *node = distvm_node_start(tmpdir, 0, NULL, args);
    g_autofree char *console = NULL;
    g_autofree char *want = NULL;
    QDict *ev;

    if (!distvm_wait_console(node, "distvm-linux: workload done", 600)) {
        console = distvm_read_console(node);
        g_error("Linux guest did not finish its workload; console:\n%s",
                console);
    }
    ev = distvm_wait_event(node->qts, "SHUTDOWN", DISTVM_EVENT_TIMEOUT_S);
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(ev, "data"), "reason"),
                    ==, "guest-shutdown");
    qobject_unref(ev);

    console = distvm_read_console(node);
    g_assert_nonnull(strstr(console, "distvm-linux: cpus-online 0-1\n"));
    g_assert_nonnull(strstr(console, "distvm-linux: nproc 2\n"));
    want = g_strdup_printf("distvm-linux: xz round trip ok %d bytes\n",
                           work * 16);
    g_assert_nonnull(strstr(console, want));
    for (int i = 0; i < 2; i++) {
        g_autofree char *line = distvm_linux_work_line(i, work);

        if (!strstr(console, line)) {
            g_error("missing '%s' in the console:\n%s", line, console);
        }
    }
    distvm_assert_console_clean(console);
    /* The process exits by itself after the power-off, with status 0. */
    qtest_wait_qemu(node->qts);
    distvm_node_quit(node);
}

int main(int argc, char **argv)
{
    tmpdir = distvm_test_init(&argc, &argv, "distvm-test");

    qtest_add_func("/distvm/accel/listed", test_accel_listed);
    qtest_add_func("/distvm/accel/bad-options", test_bad_options);
    qtest_add_func("/distvm/accel/bad-options/replicas-scsi",
                   test_bad_replicas_scsi);
    qtest_add_func("/distvm/accel/bad-device-nodes", test_bad_device_nodes);
    qtest_add_func("/distvm/accel/bad-queue-nodes", test_bad_queue_nodes);
    qtest_add_func("/distvm/qmp/query", test_query);
    qtest_add_func("/distvm/qmp/query-other-accel", test_query_other_accel);
    qtest_add_func("/distvm/smp-guest/1cpu", test_smp_guest_1cpu);
    qtest_add_func("/distvm/smp-guest/4cpus", test_smp_guest_4cpus);
    qtest_add_func("/distvm/smp-guest/maxcpus", test_smp_guest_maxcpus);
    qtest_add_func("/distvm/smp-guest/pause-sleep-off",
                   test_smp_guest_pause_sleep_off);
    qtest_add_func("/distvm/linux/smp2", test_linux_smp2);

    return distvm_test_run(tmpdir);
}
