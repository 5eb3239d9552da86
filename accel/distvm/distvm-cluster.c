/*
 * distvm: forming the cluster, and the messages about the cluster itself
 *
 * Once the mesh of connections is complete (distvm-net.c), each node
 * other than home reports READY; when every node is ready, home sends
 * START and every node starts: its RAM coherence, its clocks, and its
 * guest if it was to run at once.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-events-distvm.h"
#include "qemu/error-report.h"
#include "qemu/timer.h"
#include "system/runstate.h"
#include "distvm-internal.h"
#include "trace.h"

static void distvm_cluster_started_bh(void *opaque)
{
    DistvmState *s = opaque;
    Error *err = NULL;

    if (!distvm_ram_start(s, &err)) {
        error_report_err(err);
        exit(1);
    }
    qemu_mutex_lock(&s->lock);
    s->state = DISTVM_CLUSTER_STATE_RUNNING;
    qemu_cond_broadcast(&s->cond);
    qemu_mutex_unlock(&s->lock);
    distvm_chipset_quiesce(s);
    distvm_clock_start(s);
    distvm_netqueues_cluster_running(s);
    trace_distvm_cluster_running(s->node_id, s->nodes);
    qapi_event_send_distvm_cluster_formed(s->node_id, s->nodes);
    if (s->node_id >= s->start_nodes) {
        g_autoptr(GByteArray) ready = g_byte_array_new();

        /* Joining the running guest: its RAM is shared, it can take part */
        distvm_wire_empty(ready, DISTVM_MSG_READY, s->node_id, 0);
        distvm_send(s, distvm_home(s), ready);
    }

    /* Measure the round trip to every peer once. */
    for (uint32_t i = 0; i < s->nodes; i++) {
        if (i != s->node_id) {
            g_autoptr(GByteArray) ping = g_byte_array_new();

            distvm_wire_empty(ping, DISTVM_MSG_PING, s->node_id,
                              get_clock_realtime());
            distvm_send(s, i, ping);
        }
    }
    if (s->want_autostart) {
        if (distvm_is_home(s)) {
            vm_start();
        } else {
            distvm_runstate_start(s);
        }
    }
}

/* Called with s->lock held: every connection of the mesh is up. */
static bool distvm_mesh_complete(DistvmState *s)
{
    bool joins = s->node_id >= s->start_nodes;

    for (uint32_t i = 0; i < s->nodes; i++) {
        if (i == s->node_id || !distvm_node_present(s, i)) {
            continue;
        }
        /*
         * A node that joins the running guest waits for a first message
         * of each but home (whose WELCOME came): it has taken the
         * connection (distvm_peer_accept()), and will take the
         * NODE_JOINED that home sends it about this node.
         */
        if (!s->peers[i].sioc ||
            (joins && i != distvm_home(s) &&
             !qatomic_read(&s->peers[i].bytes_received))) {
            return false;
        }
    }
    return true;
}

/*
 * Once per node: the first START (or home's own decision, or home alone
 * with start-nodes=1) counts.
 */
void distvm_cluster_start(DistvmState *s)
{
    bool first;

    qemu_mutex_lock(&s->lock);
    first = !s->starting;
    s->starting = true;
    qemu_mutex_unlock(&s->lock);
    if (first) {
        distvm_main_loop_call(s, s->node_id, distvm_cluster_started_bh, s);
    }
}

/* Home: a node reported READY. */
static void distvm_home_node_ready(DistvmState *s, uint32_t node)
{
    g_autoptr(GByteArray) start = g_byte_array_new();
    bool all = true;

    if (node >= s->start_nodes) {
        distvm_join_ready(s, node);
        return;
    }
    qemu_mutex_lock(&s->lock);
    s->peers[node].ready = true;
    for (uint32_t i = 1; i < s->start_nodes; i++) {
        all &= s->peers[i].ready;
    }
    all &= !s->starting;
    qemu_mutex_unlock(&s->lock);
    if (!all) {
        return;
    }
    /* The nodes start their vCPUs when home starts its own. */
    distvm_wire_empty(start, DISTVM_MSG_START, s->node_id, s->want_autostart);
    for (uint32_t i = 1; i < s->start_nodes; i++) {
        distvm_send(s, i, start);
    }
    distvm_cluster_start(s);
}

/* A node other than home: report READY once the mesh is complete. */
void distvm_check_ready(DistvmState *s)
{
    g_autoptr(GByteArray) ready = g_byte_array_new();
    bool complete;

    qemu_mutex_lock(&s->lock);
    complete = distvm_mesh_complete(s) && !s->ready_sent;
    s->ready_sent |= complete;
    qemu_mutex_unlock(&s->lock);
    if (complete) {
        distvm_wire_empty(ready, DISTVM_MSG_READY, s->node_id, 0);
        distvm_send(s, distvm_home(s), ready);
    }
}

/* ---- messages about the cluster ---- */

static bool ready_received(DistvmState *s, const DistvmMsg *msg)
{
    distvm_home_node_ready(s, msg->hdr.src);
    return true;
}

static bool start_received(DistvmState *s, const DistvmMsg *msg)
{
    s->want_autostart = msg->hdr.seq != 0;
    distvm_cluster_start(s);
    return true;
}

static bool ping_received(DistvmState *s, const DistvmMsg *msg)
{
    g_autoptr(GByteArray) pong = g_byte_array_new();

    distvm_wire_empty(pong, DISTVM_MSG_PONG, s->node_id, msg->u.value);
    distvm_send(s, msg->hdr.src, pong);
    return true;
}

static bool pong_received(DistvmState *s, const DistvmMsg *msg)
{
    qatomic_set(&s->peers[msg->hdr.src].rtt_ns,
                get_clock_realtime() - msg->u.value);
    return true;
}

/* Its arrival is all it says: distvm-net.c counts the bytes. */
static bool heartbeat_received(DistvmState *s, const DistvmMsg *msg)
{
    if (qatomic_read(&s->state) == DISTVM_CLUSTER_STATE_JOINING) {
        distvm_check_ready(s);  /* a node that joins: a peer answered */
    }
    return true;
}

static bool node_lost_received(DistvmState *s, const DistvmMsg *msg)
{
    g_autofree char *why = g_strdup_printf("node %" PRIu32 " reported it "
                                           "lost", msg->hdr.src);

    /* Not a node of the cluster (any more, or yet): not its say */
    if (!distvm_node_present(s, msg->hdr.src)) {
        distvm_msg_refused(s, msg->hdr.src, "NODE_LOST of node %" PRIu32
                           " from a node that is not part of the cluster",
                           msg->u.node_id);
        return false;
    }
    /*
     * With checkpoint epochs, a node that ends because it lost another
     * may be the one the others cut off (distvm-recovery.c): each node
     * finds a lost node itself, and the sender's end is its own loss.
     */
    if (s->epoch) {
        trace_distvm_node_lost_ignored(msg->hdr.src, msg->u.node_id);
        return true;
    }

    distvm_fatal_node_lost(s, msg->u.node_id, why);
    return true;
}

static const DistvmMsgHandler cluster_handlers[] = {
    { DISTVM_MSG_READY, .receive = ready_received },
    { DISTVM_MSG_START, .receive = start_received },
    { DISTVM_MSG_PING, .receive = ping_received },
    { DISTVM_MSG_PONG, .receive = pong_received },
    { DISTVM_MSG_HEARTBEAT, .receive = heartbeat_received },
    { DISTVM_MSG_NODE_LOST, .receive = node_lost_received },
};

void distvm_cluster_init(DistvmState *s)
{
    distvm_msg_handlers_register(s, cluster_handlers,
                                 ARRAY_SIZE(cluster_handlers));
}
