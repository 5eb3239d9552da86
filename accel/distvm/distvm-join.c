/*
 * distvm: a node joins the running guest
 *
 * -accel distvm,...,nodes=N,start-nodes=K: nodes 0 to K-1 form the
 * cluster and start the guest; nodes K to N-1 may join it while it runs,
 * one at a time, started with the same machine options:
 *
 * 1. The node sends HELLO to home, which checks its fingerprint as at
 *    start (distvm-net.c), marks it joining and tells the nodes of the
 *    cluster (NODE_JOINING), which accept its connection from then on,
 *    then sends it WELCOME with their addresses.
 * 2. The node connects to each of them, which answers (a HEARTBEAT) once
 *    it took the connection, and then reports READY to home.
 * 3. Home holds the vCPUs (distvm_hold_vcpus(): they do not run, and
 *    the guest's run state and clocks do not change), waits until every
 *    node reported its own held (after any change they made that the
 *    node must know), has the node plug the CPUs plugged into the guest
 *    since it started (CPU_PLUG, as device_add does on every node), and
 *    sends the node what the others learnt: where each vCPU runs and
 *    after how many moves (VCPU_WHERE), its LAPIC's addressing and the
 *    nodes it may run on, the 8259's output, where the clock registers
 *    are, the host bridge's registers and the configuration of the
 *    devices other nodes run (device-nodes), where the queue pairs of
 *    cards are served (queue-nodes), the ranges of RAM resident on a
 *    node, the policy; then START.  The node starts sharing the
 *    guest's RAM and reports READY again.  Home has it plug the DIMMs
 *    plugged into the guest (MEM_PLUG, in the order of their RAMBlocks),
 *    which it shares too.
 * 4. Home sends NODE_JOINED to every node, the new one included, lets
 *    the vCPUs go, and has the new node run its guest (RUN_CONT, with
 *    the clocks) if the guest runs.
 *
 * The user's "stop" and "cont" meanwhile take effect as usual: a held
 * vCPU runs once it is let go, if the guest runs then.  A node that does
 * not report its vCPUs held within peer-timeout makes the join fail (the
 * joining node is refused): what it holds may have changed; so does a
 * joining node that does not report READY within peer-timeout of START.
 * Each join has a number, which HOLD carries and HELD echoes, so that a
 * late HELD of a join that failed does not count for the next one.
 *
 * A joined node runs no vCPU until one is moved to it, and holds no page
 * until it touches one: every page starts not present there, and it
 * manages none of them (the directory stays on the first K nodes,
 * distvm-ram.c).
 *
 * A node lost before it joined is dropped, and the cluster goes on; once
 * it joined, it is lost as any other node is.  A node-id whose node left
 * (drained) or was lost while it joined may join again: each node forgets
 * that node's last connection when the new one comes (distvm-net.c).
 * Not in this version: a join while a range of RAM becomes resident on
 * a node is refused with a clear error.  Ranges resident already are
 * sent to it with the state (distvm-residency.c); the devices that
 * device-nodes places run on start nodes only, so a joining node runs
 * none.  A device_add is refused while a node joins.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-events-distvm.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "io/channel.h"
#include "system/runstate.h"
#include "distvm-internal.h"
#include "distvm-ram.h"
#include "trace.h"

struct DistvmJoin {
    uint32_t node;              /* joining, or UINT32_MAX */
    bool starting;              /* it has the state, and starts */
    uint64_t number;            /* of the last join that held the vCPUs */
    uint32_t held;              /* nodes told to hold their vCPUs */
    uint32_t holding;           /* ... that have not reported it yet */
    bool was_running;           /* the guest ran when they were held */
    int64_t held_ns;
    QEMUTimer *timer;           /* peer-timeout for a step's answers */
};

/* Home, with s->lock held: why node @node may not join now, or NULL. */
char *distvm_join_refusal(DistvmState *s, uint32_t node)
{
    if (s->state != DISTVM_CLUSTER_STATE_RUNNING) {
        return g_strdup_printf("node %" PRIu32 " joins a running cluster, "
                               "and the first %" PRIu32 " nodes have not "
                               "formed it yet (start it once they have)",
                               node, s->start_nodes);
    }
    if (distvm_node_present(s, node)) {
        return g_strdup_printf("node %" PRIu32 " is part of the cluster "
                               "already", node);
    }
    if (s->peers[node].sioc) {
        return g_strdup_printf("node %" PRIu32 " is connected already",
                               node);
    }
    if (s->joining != UINT32_MAX) {
        return g_strdup_printf("node %" PRIu32 " is joining the cluster; "
                               "one node joins at a time", s->joining);
    }
    if (qatomic_read(&s->draining) != UINT32_MAX) {
        return g_strdup_printf("node %" PRIu32 " is being drained; a node "
                               "joins once it left",
                               qatomic_read(&s->draining));
    }
    if (distvm_residency_changing(s)) {
        return g_strdup("a range of guest RAM is becoming resident on a "
                        "node (distvm-set-residency); a node joins once it "
                        "is");
    }
    return NULL;
}

/* Home: @node joins; the nodes of the cluster accept its connections. */
void distvm_join_announce(DistvmState *s, uint32_t node, uint32_t speed)
{
    g_autoptr(GByteArray) m = g_byte_array_new();

    trace_distvm_join_announce(node);
    distvm_wire_node_join(m, DISTVM_MSG_NODE_JOINING, s->node_id, node,
                          speed);
    for (uint32_t i = 1; i < s->nodes; i++) {
        if (distvm_node_present(s, i)) {
            distvm_send(s, i, m);
        }
    }
}

/* Home, in the main loop: the answers of the next step are due then. */
static void join_wait_answers(DistvmState *s)
{
    DistvmJoin *join = s->join;

    timer_mod(join->timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                           (int64_t)s->peer_timeout * 1000);
}

/*
 * Shut down @node's connection, if it has one: its receive thread ends.
 * Under s->lock, which distvm-net.c holds to forget a connection.
 */
static void join_shutdown(DistvmState *s, uint32_t node)
{
    qemu_mutex_lock(&s->lock);
    if (s->peers[node].sioc) {
        qio_channel_shutdown(s->peers[node].ioc, QIO_CHANNEL_SHUTDOWN_BOTH,
                             NULL);
    }
    qemu_mutex_unlock(&s->lock);
}

/*
 * Home, in the main loop: @node could not plug what the guest has (@err):
 * it is refused, and the join ends as if it was lost (join_abort_bh()).
 */
static void join_refuse(DistvmState *s, uint32_t node, Error *err)
{
    DistvmJoin *join = s->join;

    timer_del(join->timer);
    error_reportf_err(err, "distvm: node %" PRIu32 " cannot join: ", node);
    join_shutdown(s, node);
}

/*
 * Home, in the main loop, the vCPUs held: send the joining node the
 * state, then START.  It starts its RAM, then reports READY again.
 */
static void join_send_state(DistvmState *s)
{
    DistvmJoin *join = s->join;
    g_autoptr(GByteArray) m = g_byte_array_new();
    uint32_t node = join->node;
    Error *err = NULL;

    /* The vCPUs plugged meanwhile exist there before their state comes */
    if (!distvm_cpuplug_send_state(s, node, &err)) {
        join_refuse(s, node, err);
        return;
    }
    join_wait_answers(s);
    distvm_handoff_send_state(s, node);
    distvm_vcpu_send_state(s, node);
    distvm_wire_pic_output(m, s->node_id, s->pic_output_sent > 0);
    distvm_send(s, node, m);
    distvm_clock_send_state(s, node);
    distvm_chipset_send_state(s, node);
    distvm_residency_send_state(s, node);
    distvm_devices_send_state(s, node);
    distvm_netqueues_send_state(s, node);
    g_byte_array_set_size(m, 0);
    distvm_wire_policy(m, s->node_id, qatomic_read(&s->policy));
    distvm_send(s, node, m);
    g_byte_array_set_size(m, 0);
    distvm_wire_empty(m, DISTVM_MSG_START, s->node_id, 0);
    distvm_send(s, node, m);
    join->starting = true;
}

/* Home, in the main loop: let the vCPUs the join held go. */
static void join_release(DistvmState *s)
{
    DistvmJoin *join = s->join;

    timer_del(join->timer);
    distvm_runstate_send(s, join->held & qatomic_read(&s->present),
                         DISTVM_RUN_RELEASE, join->number);
    distvm_hold_vcpus(false);
    join->held = 0;
    join->holding = 0;
}

/*
 * Home, in the main loop: the joining node started; every node takes it
 * as part of the cluster, and the vCPUs run again.
 */
static void join_complete(DistvmState *s)
{
    DistvmJoin *join = s->join;
    g_autoptr(GByteArray) m = g_byte_array_new();
    uint32_t node = join->node;
    uint32_t present = qatomic_read(&s->present) | BIT(node);
    uint64_t paused_us = 0;

    distvm_wire_node_join(m, DISTVM_MSG_NODE_JOINED, s->node_id, node,
                          qatomic_read(&s->peers[node].speed));
    for (uint32_t i = 0; i < s->nodes; i++) {
        if (present & BIT(i)) {
            distvm_send(s, i, m);       /* home too: it applies it there */
        }
    }
    join->node = UINT32_MAX;
    join->starting = false;
    join_release(s);
    if (join->was_running) {
        paused_us = (get_clock() - join->held_ns) / SCALE_US;
    }
    /* If the guest is stopped, the "cont" that runs it will run it there */
    if (runstate_is_running()) {
        distvm_runstate_send(s, BIT(node), DISTVM_RUN_CONT, 0);
    }
    trace_distvm_join_done(node, paused_us);
    qapi_event_send_distvm_node_joined(node, paused_us);
}

/* join_complete(), between two checkpoint epochs, if it still joins */
static void join_complete_idle(DistvmState *s)
{
    DistvmJoin *join = s->join;

    if (join->starting && join->node == qatomic_read(&s->joining)) {
        join_complete(s);
    }
}

/* Home, in the main loop: @node reported READY, its mesh complete. */
static void join_hold_bh(void *opaque)
{
    DistvmState *s = opaque;
    DistvmJoin *join = s->join;
    uint32_t node = qatomic_read(&s->joining);
    Error *err = NULL;

    if (node == UINT32_MAX || join->node != UINT32_MAX) {
        return;                 /* lost meanwhile */
    }
    /* What the main loop did since home accepted it */
    if (distvm_residency_changing(s)) {
        error_setg(&err, "a range of guest RAM began to become resident on "
                   "a node meanwhile");
    } else if (distvm_recovery_busy(s)) {
        error_setg(&err, "the cluster is taking a lost node's part over");
    } else {
        distvm_ram_set_spread(s, true, &err);   /* not while it migrates */
    }
    if (err) {
        error_reportf_err(err, "distvm: node %" PRIu32 " cannot join: ",
                          node);
        join_shutdown(s, node);
        return;
    }
    join->node = node;
    join->was_running = runstate_is_running();
    join->held_ns = get_clock();
    join->held = qatomic_read(&s->present) & ~BIT(s->node_id);
    join->holding = join->held;
    /* Even a stopped guest's: a "cont" meanwhile must not run them */
    distvm_hold_vcpus(true);
    if (!join->holding) {
        join_send_state(s);
        return;
    }
    distvm_runstate_send(s, join->held, DISTVM_RUN_HOLD, ++join->number);
    join_wait_answers(s);
}

/*
 * Home, in the main loop: a node did not report its vCPUs held in time
 * (what the joining node would be sent may be out of date), or the
 * joining node did not report READY after START.  It is refused, and the
 * join ends as if it was lost (join_abort_bh()).
 */
static void join_answers_timeout(void *opaque)
{
    DistvmState *s = opaque;
    DistvmJoin *join = s->join;

    if (join->node == UINT32_MAX) {
        return;
    }
    if (join->starting) {
        error_report("distvm: node %" PRIu32 " did not report that it "
                     "started within %" PRIu32 " s (peer-timeout); it cannot "
                     "join", join->node, s->peer_timeout);
    } else {
        error_report("distvm: node %d did not report its vCPUs held within "
                     "%" PRIu32 " s (peer-timeout); node %" PRIu32 " cannot "
                     "join", ctz32(join->holding), s->peer_timeout, join->node);
    }
    join_shutdown(s, join->node);
}

/*
 * Home, in the main loop: the joining node reported READY, its mesh
 * complete (then hold the vCPUs), or started (then it joined).
 */
static void join_ready_bh(void *opaque)
{
    DistvmState *s = opaque;
    DistvmJoin *join = s->join;
    Error *err = NULL;

    if (join->node == UINT32_MAX) {
        join_hold_bh(s);
    } else if (join->starting && join->node == qatomic_read(&s->joining)) {
        /* The DIMMs plugged meanwhile: its RAM started, it shares theirs */
        if (!distvm_memplug_send_state(s, join->node, &err)) {
            join_refuse(s, join->node, err);
            return;
        }
        distvm_epoch_when_idle(s, join_complete_idle);
    }
}

/* Home: a node that joins the running guest reported READY. */
void distvm_join_ready(DistvmState *s, uint32_t node)
{
    if (qatomic_read(&s->joining) != node) {
        distvm_msg_refused(s, node, "READY from node %" PRIu32 ", which is "
                           "not joining", node);
        return;
    }
    distvm_main_loop_call(s, node, join_ready_bh, s);
}

/*
 * Home, in the main loop: node @node reported its vCPUs held, for join
 * number @number.
 */
void distvm_join_node_held(DistvmState *s, uint32_t node, uint64_t number)
{
    DistvmJoin *join = s->join;

    if (join->node == UINT32_MAX || join->starting || number != join->number ||
        !(join->holding & BIT(node))) {
        return;
    }
    join->holding &= ~BIT(node);
    if (!join->holding) {
        join_send_state(s);
    }
}

/* Home, in the main loop: node @opaque, joining, was lost. */
static void join_abort_bh(void *opaque)
{
    DistvmState *s = distvm_state();
    DistvmJoin *join = s->join;

    if (join->node != GPOINTER_TO_UINT(opaque)) {
        return;
    }
    join->node = UINT32_MAX;
    join->starting = false;
    join_release(s);
    if (qatomic_read(&s->present) == BIT(s->node_id)) {
        distvm_ram_set_spread(s, false, NULL);
    }
}

/*
 * A node that is not part of the cluster, and was joining it, is lost:
 * the cluster goes on without it.  Its connection stays broken until a
 * node joins again under its id.  Returns false if @node is part of the
 * cluster.
 */
bool distvm_join_lost(DistvmState *s, uint32_t node, const char *why)
{
    DistvmPeer *peer = &s->peers[node];
    bool joining, known;

    if (qatomic_read(&s->left) & BIT(node)) {
        return true;            /* drained, it left: nothing is lost */
    }
    qemu_mutex_lock(&s->lock);
    /* Not counted out meanwhile (left with present, under s->lock) */
    joining = s->state == DISTVM_CLUSTER_STATE_RUNNING &&
              !(s->left & BIT(node)) &&
              !distvm_node_present(s, node) && node != s->node_id;
    if (joining && s->joining == node) {
        qatomic_set(&s->joining, UINT32_MAX);
    }
    qemu_mutex_unlock(&s->lock);
    if (!joining) {
        return false;
    }
    qemu_mutex_lock(&peer->send_lock);
    known = peer->broken;
    peer->broken = true;
    qemu_cond_broadcast(&peer->send_cond);
    qemu_mutex_unlock(&peer->send_lock);
    if (!known) {               /* not again at its connection's end */
        warn_report("distvm: node %" PRIu32 " was lost while it joined "
                    "(%s); the cluster goes on without it", node, why);
    }
    /* Nothing more from it: its receive thread ends */
    join_shutdown(s, node);
    if (distvm_is_home(s)) {
        /* this node's call, not the lost node's: it may have flooded */
        distvm_main_loop_call(s, s->node_id, join_abort_bh,
                              GUINT_TO_POINTER(node));
    }
    return true;
}

/* NODE_JOINING: home announces a node that joins the running guest. */
static bool node_joining_received(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgNodeJoin *j = &msg->u.join;

    if (j->node_id < s->start_nodes || j->node_id == s->node_id ||
        distvm_node_present(s, j->node_id)) {
        distvm_msg_refused(s, msg->hdr.src, "NODE_JOINING of node %" PRIu32
                           ", which may not join", j->node_id);
        return false;
    }
    trace_distvm_join_announce(j->node_id);
    qemu_mutex_lock(&s->lock);
    s->joining = j->node_id;
    qatomic_set(&s->peers[j->node_id].speed, j->speed);
    qemu_cond_broadcast(&s->cond);
    qemu_mutex_unlock(&s->lock);
    return true;
}

/* NODE_JOINED: a node is part of the cluster from now on. */
static bool node_joined_received(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgNodeJoin *j = &msg->u.join;

    if (j->node_id < s->start_nodes || distvm_node_present(s, j->node_id) ||
        (j->node_id != s->node_id && !s->peers[j->node_id].sioc)) {
        distvm_msg_refused(s, msg->hdr.src, "NODE_JOINED of node %" PRIu32
                           ", which was not joining", j->node_id);
        return false;
    }
    qemu_mutex_lock(&s->lock);
    qatomic_set(&s->peers[j->node_id].speed, j->speed);
    qatomic_set(&s->peers[j->node_id].heard_ns, get_clock());
    qatomic_set(&s->present, s->present | BIT(j->node_id));
    if (s->joining == j->node_id) {
        qatomic_set(&s->joining, UINT32_MAX);
    }
    qemu_mutex_unlock(&s->lock);
    return true;
}

static void node_joined_event(DistvmState *s, const DistvmMsg *msg)
{
    if (!distvm_is_home(s)) {
        qapi_event_send_distvm_node_joined(msg->u.join.node_id, 0);
    }
    distvm_placement_notify(s, DISTVM_PLACEMENT_VCPU);
}

static const DistvmMsgHandler join_handlers[] = {
    { DISTVM_MSG_NODE_JOINING, .receive = node_joining_received },
    { DISTVM_MSG_NODE_JOINED, .receive = node_joined_received,
      .main_loop = node_joined_event },
};

void distvm_join_init(DistvmState *s)
{
    DistvmJoin *join = g_new0(DistvmJoin, 1);

    join->node = UINT32_MAX;
    join->timer = timer_new_ms(QEMU_CLOCK_REALTIME, join_answers_timeout, s);
    s->join = join;
    distvm_msg_handlers_register(s, join_handlers, ARRAY_SIZE(join_handlers));
}
