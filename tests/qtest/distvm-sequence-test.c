/*
 * distvm: sequences of well-formed messages forged by a member of the
 * cluster, as a fuzzer would send them
 *
 * The wire fuzz target (tests/unit/distvm) feeds the decoder bytes; the
 * forged-message case of distvm-ram-test sends one message per role
 * rule.  Here a member of a running 2-node cluster sends the other a
 * pseudo-random sequence of messages (x-distvm-send-message): every type
 * a running cluster may carry, with fields drawn from values that mean
 * something to the receiver (its pages and the other's, both nodes, vCPUs
 * that exist and that do not, the moves' generations).  The messages go
 * through distvm-wire.c's encoders and decoder, so each one is
 * well-formed: what is tested is what the receiving node does with a
 * sequence from a peer in the sender's role, home or not.
 *
 * A node must refuse what its sender had no business sending and go on
 * serving, or, for what its role allows but its state contradicts (a
 * manager forwarding a page the node does not hold, a vCPU state that
 * cannot be loaded), end the cluster: every node then exits with status
 * 1 and an error naming the problem.  Never a crash, an assertion or a
 * hang; the test asserts each of those.  The nodes run their own QMP
 * sockets rather than libqtest's, whose client aborts when QEMU exits.
 *
 * DISTVM_SEQUENCE_ROUNDS (default 4) sets the clusters started per
 * sender role; DISTVM_SEQUENCE_SEED the first seed.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include "qemu/bswap.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qlist.h"
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "distvm/distvm-node.h"
#include "distvm-wire.h"

#define SEQUENCE_ARGS \
    "-machine pc -m 128M -smp 2,maxcpus=4 -S " \
    "-object memory-backend-ram,id=m0,size=64M " \
    "-object memory-backend-ram,id=m1,size=64M " \
    "-numa node,nodeid=0,memdev=m0,cpus=0,cpus=2 " \
    "-numa node,nodeid=1,memdev=m1,cpus=1,cpus=3"

/* Messages sent in one cluster, at most. */
#define SEQUENCE_MESSAGES   400
/* How long a node may take to answer QMP, or to exit after the other. */
#define SEQUENCE_TIMEOUT_S  10

static char *tmpdir;

/* ---- a QMP client that survives the QEMU it talks to ---- */

typedef struct Qmp {
    int fd;
    GString *buf;               /* bytes read, not yet a whole line */
} Qmp;

/* The next line, or NULL at end of file or after SEQUENCE_TIMEOUT_S. */
static char *qmp_read_line(Qmp *q)
{
    gint64 deadline = g_get_monotonic_time() +
                      SEQUENCE_TIMEOUT_S * G_USEC_PER_SEC;

    for (;;) {
        char *nl = memchr(q->buf->str, '\n', q->buf->len);
        struct pollfd pfd = { .fd = q->fd, .events = POLLIN };
        char chunk[4096];
        ssize_t n;
        int left_ms;

        if (nl) {
            char *line = g_strndup(q->buf->str, nl - q->buf->str);

            g_string_erase(q->buf, 0, nl - q->buf->str + 1);
            return line;
        }
        left_ms = (deadline - g_get_monotonic_time()) / 1000;
        if (left_ms <= 0 || poll(&pfd, 1, left_ms) <= 0) {
            return NULL;
        }
        n = read(q->fd, chunk, sizeof(chunk));
        if (n <= 0) {
            return NULL;
        }
        g_string_append_len(q->buf, chunk, n);
    }
}

/*
 * Run @json; its "return" or "error" object wrapped in the response
 * (unref it), or NULL if QEMU is gone or does not answer.
 */
static QDict *qmp_command(Qmp *q, const char *json)
{
    g_autofree char *cmd = g_strconcat(json, "\n", NULL);

    /* Not write(): a node that just exited must not end the test by SIGPIPE */
    if (q->fd < 0 || send(q->fd, cmd, strlen(cmd), MSG_NOSIGNAL) !=
        strlen(cmd)) {
        return NULL;
    }
    for (;;) {
        g_autofree char *line = qmp_read_line(q);
        QDict *resp;

        if (!line) {
            return NULL;
        }
        resp = qobject_to(QDict, qobject_from_json(line, &error_abort));
        g_assert(resp);
        if (qdict_haskey(resp, "return") || qdict_haskey(resp, "error")) {
            return resp;
        }
        qobject_unref(resp);    /* an event */
    }
}

static void qmp_open(Qmp *q, const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    g_autofree char *greeting = NULL;
    QDict *resp;

    g_assert_cmpint(strlen(path), <, sizeof(addr.sun_path));
    strcpy(addr.sun_path, path);
    q->buf = g_string_new("");
    for (int i = 0;; i++) {
        q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(q->fd, >=, 0);
        if (!connect(q->fd, (struct sockaddr *)&addr, sizeof(addr))) {
            break;
        }
        close(q->fd);
        g_assert_cmpint(i, <, 600);     /* QEMU listens within 30 s */
        g_usleep(50 * 1000);
    }
    greeting = qmp_read_line(q);
    g_assert(greeting && strstr(greeting, "QMP"));
    resp = qmp_command(q, "{ \"execute\": \"qmp_capabilities\" }");
    g_assert(resp && qdict_haskey(resp, "return"));
    qobject_unref(resp);
}

static void qmp_close(Qmp *q)
{
    if (q->fd >= 0) {
        close(q->fd);
    }
    q->fd = -1;
    g_string_free(q->buf, true);
}

/* ---- the nodes ---- */

typedef struct SeqNode {
    int id;
    GPid pid;
    Qmp qmp;
    char *log;                  /* its stderr */
    bool exited;
    int status;                 /* waitpid()'s, once exited */
} SeqNode;

static void node_spawn(SeqNode *n, const char *dir, int id)
{
    const char *binary = g_getenv("QTEST_QEMU_BINARY");
    g_autofree char *opts = distvm_cluster_accel_opts(dir, 2, id);
    g_autofree char *qmp_path = g_strdup_printf("%s/qmp%d.sock", dir, id);
    g_autofree char *cmd = NULL;
    g_auto(GStrv) argv = NULL;
    g_autoptr(GError) err = NULL;
    int log_fd;

    g_assert(binary);
    n->id = id;
    n->log = g_strdup_printf("%s/node%d.log", dir, id);
    cmd = g_strdup_printf("%s -display none -nodefaults "
                          "-accel distvm,%s,placement=0:1:0:1 "
                          "-qmp unix:%s,server=on,wait=off %s",
                          binary, opts, qmp_path, SEQUENCE_ARGS);
    g_assert_true(g_shell_parse_argv(cmd, NULL, &argv, NULL));
    log_fd = open(n->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    g_assert_cmpint(log_fd, >=, 0);
    if (!g_spawn_async_with_fds(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                                NULL, NULL, &n->pid, -1, log_fd, log_fd,
                                &err)) {
        g_error("cannot start node %d: %s", id, err->message);
    }
    close(log_fd);
    qmp_open(&n->qmp, qmp_path);
}

/* Whether the node still runs; reaps it otherwise. */
static bool node_alive(SeqNode *n)
{
    if (!n->exited && waitpid(n->pid, &n->status, WNOHANG) == n->pid) {
        n->exited = true;
    }
    return !n->exited;
}

static bool node_wait_exit(SeqNode *n, int timeout_s)
{
    for (int i = 0; i < timeout_s * 50 && node_alive(n); i++) {
        g_usleep(20 * 1000);
    }
    return !node_alive(n);
}

/* query-distvm's result (unref it), or NULL if the node is gone. */
static QDict *node_query(SeqNode *n)
{
    QDict *resp = qmp_command(&n->qmp, "{ \"execute\": \"query-distvm\" }");
    QDict *ret;

    if (!resp) {
        return NULL;
    }
    ret = qdict_get_qdict(resp, "return");
    if (!ret) {
        g_error("node %d: query-distvm failed: distvm is not the "
                "accelerator?", n->id);
    }
    qobject_ref(ret);
    qobject_unref(resp);
    g_assert_cmpint(qdict_get_int(ret, "node-id"), ==, n->id);
    return ret;
}

/* Wait until both nodes report the cluster running. */
static void nodes_wait_running(SeqNode *node)
{
    for (int i = 0; i < 2; i++) {
        for (int tries = 0;; tries++) {
            QDict *info = node_query(&node[i]);
            bool running;

            g_assert(info);
            running = !strcmp(qdict_get_str(info, "state"), "running");
            qobject_unref(info);
            if (running) {
                break;
            }
            g_assert_cmpint(tries, <, 3000);
            g_usleep(20 * 1000);
        }
    }
}

/* ---- the messages ---- */

typedef struct SeqLayout {
    DistvmWireLimits lim;
    uint64_t block_pages[16];
    uint32_t m0, m1;            /* the RAMBlocks homed on node 0 and 1 */
} SeqLayout;

static void layout_read(SeqNode *n, SeqLayout *l)
{
    g_autoptr(QDict) info = node_query(n);
    QListEntry *e;
    uint32_t i = 0;

    g_assert(info);
    QLIST_FOREACH_ENTRY(qdict_get_qlist(info, "memory"), e) {
        QDict *r = qobject_to(QDict, qlist_entry_obj(e));
        const char *name = qdict_get_str(r, "ramblock");

        g_assert_cmpint(i, <, G_N_ELEMENTS(l->block_pages));
        l->block_pages[i] = qdict_get_int(r, "size") / DISTVM_PAGE_SIZE;
        if (!strcmp(name, "m0")) {
            l->m0 = i;
        } else if (!strcmp(name, "m1")) {
            l->m1 = i;
        }
        i++;
    }
    l->lim = (DistvmWireLimits) {
        .nodes = 2, .nr_vcpus = 4, .nr_blocks = i,
        .block_pages = l->block_pages,
    };
}

/* Every type a running cluster may carry, but those that end it. */
static const DistvmMsgType sequence_types[] = {
    DISTVM_MSG_PEER_HELLO, DISTVM_MSG_READY, DISTVM_MSG_START,
    DISTVM_MSG_PAGE_REQ, DISTVM_MSG_PAGE_FWD, DISTVM_MSG_PAGE_DATA,
    DISTVM_MSG_PAGE_INV, DISTVM_MSG_PAGE_INV_ACK, DISTVM_MSG_PAGE_GRANT,
    DISTVM_MSG_PAGE_DONE, DISTVM_MSG_PING, DISTVM_MSG_PONG,
    DISTVM_MSG_VCPU_MOVE, DISTVM_MSG_VCPU_STATE, DISTVM_MSG_VCPU_MOVED,
    DISTVM_MSG_VCPU_IPI, DISTVM_MSG_PCI_CONFIG, DISTVM_MSG_IO_REQ,
    DISTVM_MSG_IO_REPLY, DISTVM_MSG_VCPU_APIC, DISTVM_MSG_RUN_STATE,
    DISTVM_MSG_PIC_OUTPUT, DISTVM_MSG_CLOCK_REGS, DISTVM_MSG_HEARTBEAT,
    DISTVM_MSG_PCI_INTX, DISTVM_MSG_ENDED, DISTVM_MSG_CPU_PLUG_ACK,
    /*
     * BYE, NODE_LOST and END end the cluster, as they should: not sent;
     * nor are home's plugs, which change the machine.
     */
};

/* One of the values after @r, at random. */
#define PICK(r, type, ...) ({ \
        static const type pick_[] = { __VA_ARGS__ }; \
        pick_[g_rand_int_range(r, 0, G_N_ELEMENTS(pick_))]; \
    })

static void message_make(GRand *r, const SeqLayout *l, uint32_t src,
                         GByteArray *m)
{
    DistvmMsgType type = sequence_types[g_rand_int_range(
                                      r, 0, G_N_ELEMENTS(sequence_types))];
    uint32_t node = g_rand_int_range(r, 0, 2);
    uint32_t cpu = g_rand_int_range(r, 0, 4);   /* 2 and 3 do not exist */
    uint64_t seq = g_rand_int_range(r, 0, 4);
    uint8_t bytes[DISTVM_PAGE_SIZE];

    memset(bytes, g_rand_int(r), sizeof(bytes));
    g_byte_array_set_size(m, 0);
    switch (type) {
    case DISTVM_MSG_PAGE_REQ ... DISTVM_MSG_PAGE_DONE:
        distvm_wire_page(m, type, src, seq, g_rand_boolean(r) ? l->m1 : l->m0,
                         g_rand_int_range(r, 16, 20), node,
                         g_rand_int(r) & DISTVM_PAGE_FLAGS_ALL, bytes);
        break;
    case DISTVM_MSG_VCPU_MOVE ... DISTVM_MSG_VCPU_IPI:
    case DISTVM_MSG_VCPU_APIC: {
        /* An IPI's delivery: a valid mode, a vector, a trigger mode. */
        uint64_t value = type != DISTVM_MSG_VCPU_IPI ? g_rand_int(r) :
                         PICK(r, uint64_t, 0, 1, 2, 4, 5, 6) |
                         g_rand_int_range(r, 0, 256) << 8 |
                         (uint64_t)g_rand_int_range(r, 0, 2) << 16;

        distvm_wire_vcpu(m, type, src, cpu, node, g_rand_int_range(r, 0, 2),
                         value, bytes, g_rand_int_range(r, 0, 64));
        distvm_wire_set_seq(m, seq);
        break;
    }
    case DISTVM_MSG_PCI_CONFIG: {
        const char *path = PICK(r, char *, "/machine/i440fx",
                                "/machine/unattached");

        distvm_wire_pci_config(m, src, g_rand_int(r), path,
                               g_rand_int_range(r, 0, 8) * 4, g_rand_int(r),
                               4);
        break;
    }
    case DISTVM_MSG_IO_REQ:
    case DISTVM_MSG_IO_REPLY: {
        /* Reads: a write to a device could legitimately power it off. */
        DistvmMsgIo io = {
            .cpu = cpu,
            .space = PICK(r, uint32_t, DISTVM_IO_PORT, DISTVM_IO_MEMORY),
            .size = 1,
            .addr = PICK(r, uint64_t, 0x80, 0x3fd, 0x70, 0x1000, 0xfed000f0),
        };

        distvm_wire_io(m, type, src, &io);
        distvm_wire_set_seq(m, seq);
        break;
    }
    case DISTVM_MSG_RUN_STATE:
        distvm_wire_run_state(m, src, &(DistvmMsgRunState) {
                                  .action = g_rand_int_range(
                                      r, 0, DISTVM_RUN__MAX),
                                  .virtual_ns = g_rand_int(r),
                                  .guest_ticks = g_rand_int(r),
                                  .host_ns = g_rand_int(r),
                                  .host_ticks = g_rand_int(r),
                                  .host_id = g_rand_int(r) | 1,
                              });
        break;
    case DISTVM_MSG_PIC_OUTPUT:
        distvm_wire_pic_output(m, src, g_rand_int_range(r, 0, 2));
        break;
    case DISTVM_MSG_PCI_INTX:
        distvm_wire_pci_intx(m, src, g_rand_int_range(r, 0, 8),
                             g_rand_int_range(r, 0, 2));
        break;
    case DISTVM_MSG_CLOCK_REGS:
        distvm_wire_clock_regs(m, src, &(DistvmMsgClockRegs) {
                                   .flags = g_rand_int(r) &
                                            DISTVM_CLOCK_FLAGS_ALL,
                                   .pm_timer_port = 0x608,
                                   .hpet_base = 0xfed00000,
                                   .hpet_counter = g_rand_int(r),
                                   .hpet_offset = g_rand_int(r),
                               });
        break;
    case DISTVM_MSG_PEER_HELLO:
        distvm_wire_node(m, type, src, node);
        break;
    case DISTVM_MSG_CPU_PLUG_ACK:
        distvm_wire_cpu_plug_ack(m, src, seq, cpu,
                                 PICK(r, const char *, "", "no room"));
        break;
    default:
        distvm_wire_empty(m, type, src, g_rand_int(r));
        break;
    }
}

/* Whether the receiver's decoder takes @m (distvm-wire.c, as it runs). */
static bool message_well_formed(const SeqLayout *l, GByteArray *m)
{
    DistvmMsgHeader hdr;
    DistvmMsg msg;
    Error *err = NULL;
    bool ok;

    ok = distvm_wire_parse_header(m->data, &hdr, &err) &&
         distvm_wire_decode(&hdr, m->data + DISTVM_WIRE_HDR_SIZE, &l->lim,
                            &msg, &err);
    if (ok) {
        distvm_msg_clear(&msg);
    }
    error_free(err);
    return ok;
}

static bool message_send(SeqNode *from, int to, GByteArray *m)
{
    g_autoptr(GString) cmd = g_string_new("");
    QDict *resp;
    bool sent;

    g_string_append_printf(cmd, "{ \"execute\": \"x-distvm-send-message\", "
                           "\"arguments\": { \"to\": %d, \"type\": %u, "
                           "\"seq\": %" PRIu64 ", \"payload\": \"", to,
                           lduw_le_p(m->data + 6), ldq_le_p(m->data + 16));
    for (guint i = DISTVM_WIRE_HDR_SIZE; i < m->len; i++) {
        g_string_append_printf(cmd, "%02x", m->data[i]);
    }
    g_string_append(cmd, "\" } }");
    resp = qmp_command(&from->qmp, cmd->str);
    if (!resp) {
        return false;
    }
    /* Refused only if the cluster failed meanwhile: the node exits. */
    sent = qdict_haskey(resp, "return");
    qobject_unref(resp);
    return sent;
}

/* ---- the test ---- */

typedef struct SeqTotals {
    unsigned sent, clusters_ended;
    int64_t refused;
} SeqTotals;

/* A node that exited: with status 1, saying why, and nothing worse. */
static void assert_clean_exit(SeqNode *n, uint32_t seed)
{
    g_autofree char *log = NULL;

    g_assert_true(g_file_get_contents(n->log, &log, NULL, NULL));
    if (!WIFEXITED(n->status) || WEXITSTATUS(n->status) != 1) {
        g_error("seed %" PRIu32 ": node %d ended with status 0x%x; its log:"
                "\n%s", seed, n->id, n->status, log);
    }
    if (!strstr(log, "distvm: lost node") &&
        !strstr(log, "distvm: protocol error")) {
        g_error("seed %" PRIu32 ": node %d exited 1 without saying which "
                "node it lost; its log:\n%s", seed, n->id, log);
    }
    g_assert_null(strstr(log, "Assertion"));
}

/* The line of @n's log that says why it stopped (g_free it). */
static char *exit_reason(SeqNode *n)
{
    g_autofree char *log = NULL;
    g_auto(GStrv) lines = NULL;

    g_assert_true(g_file_get_contents(n->log, &log, NULL, NULL));
    lines = g_strsplit(log, "\n", -1);
    for (char **l = lines; *l; l++) {
        if (strstr(*l, "distvm: inconsistent") ||
            strstr(*l, "distvm: protocol error") ||
            strstr(*l, "distvm: lost node")) {
            return g_strdup(*l);
        }
    }
    return g_strdup("?");
}

static void sequence_round(int sender, uint32_t seed, SeqTotals *t)
{
    g_autofree char *dir = g_strdup_printf("%s/seq-%" PRIu32, tmpdir, seed);
    g_autoptr(GByteArray) m = g_byte_array_new();
    g_autoptr(GRand) r = g_rand_new_with_seed(seed);
    SeqNode node[2] = { 0 };
    SeqLayout layout;
    int receiver = !sender;
    g_autofree char *reason = NULL;
    bool ended = false;
    unsigned sent = 0;

    g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
    for (int i = 0; i < 2; i++) {
        node_spawn(&node[i], dir, i);
    }
    nodes_wait_running(node);
    layout_read(&node[0], &layout);

    while (sent < SEQUENCE_MESSAGES) {
        message_make(r, &layout, sender, m);
        if (!message_well_formed(&layout, m)) {
            continue;
        }
        if (!message_send(&node[sender], receiver, m)) {
            ended = true;
            break;
        }
        sent++;
        /* Now and then, the receiver must answer: no hang. */
        if (sent % 25 == 0) {
            QDict *info = node_query(&node[receiver]);

            if (!info) {
                ended = true;
                break;
            }
            qobject_unref(info);
        }
    }
    t->sent += sent;

    if (!ended) {
        /* Both serve: each answers, the cluster runs, and one can quit. */
        for (int i = 0; i < 2 && !ended; i++) {
            QDict *info = node_query(&node[i]);

            if (!info) {
                ended = true;
                break;
            }
            if (strcmp(qdict_get_str(info, "state"), "running")) {
                ended = true;           /* failed: it exits next */
            } else if (i == receiver) {
                t->refused += qdict_get_int(info, "protocol-errors");
            }
            qobject_unref(info);
        }
    }
    if (ended) {
        t->clusters_ended++;
        /* Every node exits, with the error, within the bound. */
        for (int i = 0; i < 2; i++) {
            if (!node_wait_exit(&node[i], SEQUENCE_TIMEOUT_S)) {
                g_error("seed %" PRIu32 ": node %d did not exit within %d s "
                        "after the cluster ended", seed, i,
                        SEQUENCE_TIMEOUT_S);
            }
            assert_clean_exit(&node[i], seed);
        }
        reason = exit_reason(&node[receiver]);
    } else {
        QDict *resp = qmp_command(&node[0].qmp, "{ \"execute\": \"quit\" }");

        qobject_unref(resp);
        for (int i = 0; i < 2; i++) {
            g_assert_true(node_wait_exit(&node[i], SEQUENCE_TIMEOUT_S));
            if (!WIFEXITED(node[i].status) || WEXITSTATUS(node[i].status)) {
                g_error("seed %" PRIu32 ": node %d ended with status 0x%x "
                        "after quit", seed, i, node[i].status);
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        qmp_close(&node[i].qmp);
        g_free(node[i].log);
        g_spawn_close_pid(node[i].pid);
    }
    g_test_message("seed %" PRIu32 ": node %d sent %u messages; %s%s",
                   seed, sender, sent, ended ? "the cluster ended: " :
                   "the cluster went on", reason ?: "");
}

static void test_sequences(gconstpointer opaque)
{
    int sender = GPOINTER_TO_INT(opaque);
    const char *env_rounds = g_getenv("DISTVM_SEQUENCE_ROUNDS");
    const char *env_seed = g_getenv("DISTVM_SEQUENCE_SEED");
    int rounds = 4;
    unsigned int seed = 1;
    SeqTotals t = { 0 };

    if (env_rounds && (qemu_strtoi(env_rounds, NULL, 0, &rounds) ||
                       rounds < 1)) {
        g_error("DISTVM_SEQUENCE_ROUNDS=%s is not a positive number",
                env_rounds);
    }
    if (env_seed && qemu_strtoui(env_seed, NULL, 0, &seed)) {
        g_error("DISTVM_SEQUENCE_SEED=%s is not a number", env_seed);
    }

    for (int i = 0; i < rounds; i++) {
        sequence_round(sender, seed + 1000 * sender + i, &t);
    }
    g_test_message("node %d sent %u messages in %d clusters; %u ended the "
                   "cluster; the others left %" PRId64 " refusals counted",
                   sender, t.sent, rounds, t.clusters_ended, t.refused);
    /* The sequences reached the role checks, not only the ends. */
    g_assert_cmpint(t.sent, >=, rounds);
    g_assert_true(t.clusters_ended == rounds || t.refused > 0);
}

int main(int argc, char **argv)
{
    tmpdir = distvm_test_init(&argc, &argv, "distvm-sequence-test");

    qtest_add_data_func("/distvm/cluster/sequences/from-home",
                        GINT_TO_POINTER(0), test_sequences);
    qtest_add_data_func("/distvm/cluster/sequences/from-node",
                        GINT_TO_POINTER(1), test_sequences);
    return distvm_test_run(tmpdir);
}
