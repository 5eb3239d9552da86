/*
 * distvm: a node is drained and leaves the running guest
 *
 * distvm-drain-node, asked of home, takes node D out of the cluster
 * while the guest runs:
 *
 * 1. Home tells every node that D is being drained (NODE_DRAIN): no move
 *    goes to D from then on, the policy's included.
 * 2. Home asks D to move each vCPU it runs to another node (reason
 *    "drain"); D moves on any vCPU that still comes (a move decided
 *    before the drain), and tells home once none runs there or comes
 *    (DRAINED, from D).
 * 3. If D manages pages (a start node), home has it hand them to another
 *    node that does (distvm-handoff.c), which answers DRAINED again.
 * 4. Home asks each node that manages pages (DRAIN_PAGES); each brings
 *    every page it manages that D holds to itself for writing, as a fault
 *    of its own would (which takes D's copy away), asking for
 *    DISTVM_TAKE_AHEAD of them at once, until D holds none of them, and
 *    answers DRAINED.
 * 5. Home tells every node that D has left (NODE_LEFT); each emits
 *    DISTVM_NODE_LEFT and no longer counts D; D ends its process (exit
 *    status 0), its BYE ending nothing but its connections.
 *
 * Home runs the devices and cannot be drained (until a standby can take
 * its place), nor can a node that runs a device placed on it
 * (device-nodes) or holds resident RAM.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-distvm.h"
#include "qapi/qapi-events-distvm.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "system/runstate.h"
#include "system/runstate-action.h"
#include "hw/core/cpu.h"
#include "distvm-internal.h"
#include "distvm-ram.h"
#include "trace.h"

/* How often home looks whether the drained node's vCPUs have gone */
#define DISTVM_DRAIN_POLL_MS    20

struct DistvmDrain {
    uint32_t node;              /* home: being drained, or UINT32_MAX */
    bool vcpus_gone;            /* home: it reported it runs none */
    bool handing_off;           /* home: it hands its pages off */
    uint32_t managers;          /* home: DRAINED awaited from these */
    int64_t started_ns;
    QEMUTimer *timer;           /* the drained node: its vCPUs' moves */
};

/* Send @type about node @node to every node present, this one too. */
static void drain_broadcast(DistvmState *s, DistvmMsgType type, uint32_t node)
{
    g_autoptr(GByteArray) m = g_byte_array_new();
    /* as they are now: this node applies the message as it sends it */
    uint32_t present = qatomic_read(&s->present);

    distvm_wire_node(m, type, s->node_id, node);
    for (uint32_t i = 0; i < s->nodes; i++) {
        if (present & BIT(i)) {
            distvm_send(s, i, m);
        }
    }
}

/* Home: the drained node leaves, between two checkpoint epochs */
static void drain_left(DistvmState *s)
{
    DistvmDrain *drain = s->drain;

    if (drain->node == qatomic_read(&s->draining) && !drain->managers) {
        drain_broadcast(s, DISTVM_MSG_NODE_LEFT, drain->node);
    }
}

/* vCPUs on each node, and the one with the fewest that @cpu may run on */
static uint32_t drain_target(DistvmState *s, uint32_t cpu, uint32_t node)
{
    g_autofree uint32_t *runs = g_new0(uint32_t, s->nodes);
    uint32_t best = UINT32_MAX;
    CPUState *c;

    CPU_FOREACH(c) {
        runs[distvm_vcpu_node(s, c->cpu_index)]++;
    }
    for (uint32_t n = 0; n < s->nodes; n++) {
        if (n != node && distvm_node_usable(s, n) &&
            distvm_vcpu_allowed(s, cpu, n) &&
            (best == UINT32_MAX || runs[n] < runs[best])) {
            best = n;
        }
    }
    return best;
}

/*
 * The drained node, in the main loop, until it left: each vCPU that runs
 * here goes (home asked for them first; one that arrived since, from a
 * move decided before the drain, goes to the node that runs the fewest).
 * Once none runs or comes here, it tells home (DRAINED).
 */
static void drain_poll(void *opaque)
{
    DistvmState *s = opaque;
    DistvmDrain *drain = s->drain;
    bool empty = true;
    CPUState *cpu;

    if (qatomic_read(&s->draining) != s->node_id) {
        return;                 /* it left */
    }
    CPU_FOREACH(cpu) {
        uint32_t i = cpu->cpu_index;

        if (distvm_vcpu_moving(s, i)) {
            empty = false;
        } else if (distvm_vcpu_node(s, i) == s->node_id) {
            uint32_t to = drain_target(s, i, s->node_id);

            empty = false;
            if (to != UINT32_MAX) {
                distvm_vcpu_request_move(s, i, s->node_id, to,
                                         DISTVM_MOVE_DRAIN, 0);
            }
        }
    }
    if (empty && !drain->vcpus_gone) {
        g_autoptr(GByteArray) m = g_byte_array_new();

        drain->vcpus_gone = true;
        distvm_wire_node(m, DISTVM_MSG_DRAINED, s->node_id, s->node_id);
        distvm_send(s, distvm_home(s), m);
    }
    timer_mod(drain->timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                            DISTVM_DRAIN_POLL_MS * (empty ? 1 : 10));
}

void qmp_distvm_drain_node(uint32_t node, bool has_to, uint32List *to,
                           Error **errp)
{
    DistvmState *s = distvm_qmp_home("distvm-drain-node", errp);
    DistvmDrain *drain;
    g_autofree uint32_t *target = NULL;
    uint32List *next = to;
    CPUState *cpu;

    if (!s) {
        return;
    }
    drain = s->drain;           /* home of a cluster (distvm_qmp_home()) */
    if (qatomic_read(&s->state) != DISTVM_CLUSTER_STATE_RUNNING) {
        error_setg(errp, "distvm: the cluster is not running");
        return;
    }
    if (distvm_recovery_busy(s)) {
        error_setg(errp, "distvm: the cluster is taking a lost node's part "
                   "over");
        return;
    }
    if (node == distvm_home(s)) {
        error_setg(errp, "distvm: the home node runs the devices and cannot "
                   "be drained");
        return;
    }
    if (s->epoch && s->redundancy == DISTVM_REDUNDANCY_PARITY) {
        error_setg(errp, "distvm: with redundancy=parity a node cannot be "
                   "drained: home's parity holds its pages, which only "
                   "the node's loss takes out; use redundancy=replica");
        return;
    }
    if (!distvm_node_present(s, node)) {
        error_setg(errp, "distvm: node %" PRIu32 " is not part of the "
                   "cluster", node);
        return;
    }
    /* Which brings the devices placed on the node home for a while */
    if (distvm_epoch_rollback_pending(s)) {
        error_setg(errp, "distvm: the guest is being rolled back");
        return;
    }
    if (distvm_devices_on_node(s, node, false)) {
        error_setg(errp, "distvm: node %" PRIu32 " runs device '%s' "
                   "(device-nodes), which cannot be drained", node,
                   distvm_devices_on_node(s, node, false));
        return;
    }
    if (distvm_devices_on_node(s, node, true)) {
        error_setg(errp, "distvm: node %" PRIu32 " serves queue pairs of "
                   "'%s' (queue-nodes), which cannot be drained", node,
                   distvm_devices_on_node(s, node, true));
        return;
    }
    for (uint32_t i = 0; i < distvm_residency_count(s); i++) {
        if (s->resident[i].node == node) {
            error_setg(errp, "distvm: guest RAM 0x%" PRIx64 "+0x%" PRIx64
                       " is resident on node %" PRIu32 ", which cannot be "
                       "drained", s->resident[i].base, s->resident[i].size,
                       node);
            return;
        }
    }
    if (drain->node != UINT32_MAX || qatomic_read(&s->joining) !=
                                     UINT32_MAX) {
        error_setg(errp, "distvm: node %" PRIu32 " is %s; one node joins "
                   "or leaves at a time", drain->node != UINT32_MAX ?
                   drain->node : qatomic_read(&s->joining),
                   drain->node != UINT32_MAX ? "being drained" : "joining");
        return;
    }
    for (uint32List *n = to; n; n = n->next) {
        if (n->value == node || !distvm_node_usable(s, n->value)) {
            error_setg(errp, "distvm: the vCPUs of node %" PRIu32 " cannot "
                       "go to node %" PRIu32 ": it is %s", node, n->value,
                       n->value == node ? "the node drained" :
                       "not part of the cluster");
            return;
        }
    }

    /* Where each vCPU goes, all known before anything moves */
    target = g_new(uint32_t, s->nr_vcpus);
    CPU_FOREACH(cpu) {
        uint32_t i = cpu->cpu_index;

        target[i] = UINT32_MAX;
        if (distvm_vcpu_node(s, i) != node) {
            continue;
        }
        if (to) {
            target[i] = next->value;
            next = next->next ?: to;
        } else {
            target[i] = drain_target(s, i, node);
        }
        if (target[i] == UINT32_MAX ||
            !distvm_vcpu_allowed(s, i, target[i])) {
            error_setg(errp, "distvm: vCPU %" PRIu32 " of node %" PRIu32
                       " may not run on %s (distvm-set-vcpu-nodes)", i,
                       node, target[i] == UINT32_MAX ? "any other node" :
                       "the node given");
            return;
        }
    }

    trace_distvm_drain_start(node);
    drain->node = node;
    drain->vcpus_gone = false;
    drain->handing_off = false;
    drain->started_ns = get_clock();
    /* On the connection to the node, before the moves it is asked for */
    drain_broadcast(s, DISTVM_MSG_NODE_DRAIN, node);
    CPU_FOREACH(cpu) {
        if (target[cpu->cpu_index] != UINT32_MAX) {
            distvm_vcpu_request_move(s, cpu->cpu_index, node,
                                     target[cpu->cpu_index],
                                     DISTVM_MOVE_DRAIN, 0);
        }
    }
}

/* NODE_DRAIN: no vCPU goes to that node from now on. */
static bool node_drain_received(DistvmState *s, const DistvmMsg *msg)
{
    uint32_t node = msg->u.node_id;

    if (!distvm_node_present(s, node) || node == distvm_home(s)) {
        distvm_msg_refused(s, msg->hdr.src, "NODE_DRAIN of node %" PRIu32
                           ", which may not be drained", node);
        return false;
    }
    qatomic_set(&s->draining, node);
    return true;
}

/* The drained node: its vCPUs go, the first after home's moves came */
static void node_drain_self(DistvmState *s, const DistvmMsg *msg)
{
    DistvmDrain *drain = s->drain;

    if (msg->u.node_id == s->node_id) {
        drain->vcpus_gone = false;
        timer_mod(drain->timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                                DISTVM_DRAIN_POLL_MS * 10);
    }
}

typedef struct DistvmDrainPages {
    DistvmState *s;
    uint32_t node;
} DistvmDrainPages;

/* A manager, in a thread of its own: take the drained node's pages. */
static void *drain_pages_thread(void *opaque)
{
    DistvmDrainPages *d = opaque;
    DistvmState *s = d->s;
    g_autoptr(GByteArray) m = g_byte_array_new();
    uint64_t pages;

    rcu_register_thread();
    pages = distvm_ram_take_from(s, d->node);
    trace_distvm_drain_pages_done(d->node, pages);
    if (pages != UINT64_MAX) {
        distvm_wire_node(m, DISTVM_MSG_DRAINED, s->node_id, d->node);
        distvm_send(s, distvm_home(s), m);
    }
    rcu_unregister_thread();
    g_free(d);
    return NULL;
}

/* DRAIN_PAGES: bring the pages this node manages back from that node. */
static bool drain_pages_received(DistvmState *s, const DistvmMsg *msg)
{
    DistvmDrainPages *d;
    QemuThread thread;

    if (msg->u.node_id != qatomic_read(&s->draining) ||
        !(distvm_ram_managers(s) & BIT_ULL(s->node_id))) {
        distvm_msg_refused(s, msg->hdr.src, "DRAIN_PAGES of node %" PRIu32
                           ", which is not being drained, or to a node "
                           "that manages no page", msg->u.node_id);
        return false;
    }
    d = g_new(DistvmDrainPages, 1);
    d->s = s;
    d->node = msg->u.node_id;
    qemu_thread_create(&thread, "distvm-drain", drain_pages_thread, d,
                       QEMU_THREAD_DETACHED);
    return true;
}

/*
 * Home, in the main loop: the drained node runs no vCPU any more (then
 * it hands off the pages it manages, if any), or it handed them off (then
 * the managers take its pages back), or a manager holds none of its
 * pages (then, once all do, it leaves).
 */
static void drained_bh(DistvmState *s, const DistvmMsg *msg)
{
    DistvmDrain *drain = s->drain;
    uint32_t src = msg->hdr.src;

    if (drain->node != msg->u.node_id ||
        (src == drain->node ? drain->vcpus_gone && !drain->handing_off :
         !(drain->managers & BIT(src)))) {
        distvm_msg_refused(s, src, "DRAINED of node %" PRIu32 ", which it "
                           "was not asked for", msg->u.node_id);
        return;
    }
    if (src == drain->node && !drain->vcpus_gone &&
        (distvm_ram_managers(s) & BIT_ULL(src))) {
        drain->vcpus_gone = true;
        drain->handing_off = true;
        distvm_handoff_start(s, src);
        return;
    }
    if (src == drain->node) {
        drain->vcpus_gone = true;
        drain->handing_off = false;
        trace_distvm_drain_pages(drain->node);
        drain->managers = distvm_ram_managers(s) & qatomic_read(&s->present);
        for (uint32_t i = 0; i < s->nodes; i++) {
            g_autoptr(GByteArray) m = g_byte_array_new();

            if (!(drain->managers & BIT(i))) {
                continue;
            }
            distvm_wire_node(m, DISTVM_MSG_DRAIN_PAGES, s->node_id,
                             drain->node);
            distvm_send(s, i, m);
        }
        return;
    }
    drain->managers &= ~BIT(src);
    if (!drain->managers) {
        distvm_epoch_when_idle(s, drain_left);
    }
}

/* NODE_LEFT: the node is no longer part of the cluster. */
static bool node_left_received(DistvmState *s, const DistvmMsg *msg)
{
    uint32_t node = msg->u.node_id;

    if (node != qatomic_read(&s->draining)) {
        distvm_msg_refused(s, msg->hdr.src, "NODE_LEFT of node %" PRIu32
                           ", which was not being drained", node);
        return false;
    }
    qemu_mutex_lock(&s->lock);
    qatomic_set(&s->left, s->left | BIT(node));
    qatomic_set(&s->present, s->present & ~BIT(node));
    distvm_devices_node_left(s, node);
    qatomic_set(&s->draining, UINT32_MAX);
    distvm_handoff_end(s);
    if (node == s->node_id) {
        qatomic_set(&s->state, DISTVM_CLUSTER_STATE_LEFT);
    }
    qemu_mutex_unlock(&s->lock);
    /* It runs no vCPU: its answers, dropped from now on, are not needed */
    distvm_tlb_flush_fail_waits_on(s, node);
    return true;
}

static void node_left_event(DistvmState *s, const DistvmMsg *msg)
{
    DistvmDrain *drain = s->drain;
    uint32_t node = msg->u.node_id;
    uint64_t ms = 0;

    if (distvm_is_home(s) && drain->node == node) {
        ms = (get_clock() - drain->started_ns) / SCALE_MS;
        drain->node = UINT32_MAX;
    }
    trace_distvm_drain_left(node, ms);
    if (node == s->node_id) {
        CPUState *cpu;

        timer_del(drain->timer);
        CPU_FOREACH(cpu) {
            /*
             * Moves to a node being drained are refused everywhere, and
             * this node moved on any that came after: only a move that a
             * node decided before it learnt of the drain, and that took
             * longer than the whole drain, could land here now.
             */
            if (distvm_vcpu_node(s, cpu->cpu_index) == s->node_id ||
                distvm_vcpu_moving(s, cpu->cpu_index)) {
                error_report("distvm: vCPU %d came to node %" PRIu32 " as "
                             "it left the cluster; the guest loses it",
                             cpu->cpu_index, node);
                exit(1);
            }
        }
    }
    qapi_event_send_distvm_node_left(node, ms);
    /* Home alone again: a plain single-node guest, QEMU can migrate it */
    if (qatomic_read(&s->present) == BIT(s->node_id)) {
        distvm_ram_set_spread(s, false, NULL);
    }
    distvm_placement_notify(s, DISTVM_PLACEMENT_VCPU);
    if (node == s->node_id) {
        /* as QMP's quit does, whatever -action shutdown= says */
        shutdown_action = SHUTDOWN_ACTION_POWEROFF;
        qemu_system_shutdown_request(SHUTDOWN_CAUSE_HOST_QMP_QUIT);
    }
}

static const DistvmMsgHandler drain_handlers[] = {
    { DISTVM_MSG_NODE_DRAIN, .receive = node_drain_received,
      .main_loop = node_drain_self },
    { DISTVM_MSG_DRAIN_PAGES, .receive = drain_pages_received },
    { DISTVM_MSG_DRAINED, .main_loop = drained_bh },
    { DISTVM_MSG_NODE_LEFT, .receive = node_left_received,
      .main_loop = node_left_event },
};

void distvm_drain_init(DistvmState *s)
{
    DistvmDrain *drain = g_new0(DistvmDrain, 1);

    drain->node = UINT32_MAX;
    drain->timer = timer_new_ms(QEMU_CLOCK_REALTIME, drain_poll, s);
    s->drain = drain;
    distvm_msg_handlers_register(s, drain_handlers,
                                 ARRAY_SIZE(drain_handlers));
}
