/*
 * distvm: a node's part of the page directory is handed to another
 *
 * A start node manages part of the page directory (distvm-ram.c): the
 * owner and copy set of its pages, and their requests one at a time.
 * Before such a node D can be drained (distvm-drain.c), home has it hand
 * that part to another node N while the guest runs, in the steps of
 * MGR_MOVE:
 *
 * 1. ASK, home -> D.  D parks each new request for its pages instead of
 *    taking it, until none it took is under way; then their entries
 *    (owner and copy set) cannot change.  (If that takes long, D takes
 *    the parked requests and tries again later: one it took may wait for
 *    one it parked, through TCG's lock of a page.)
 * 2. PREPARE, D -> every other node: it takes N's manager messages about
 *    D's pages as well as D's from now on, and answers PREPARED.  On each
 *    connection, PREPARE follows what D sent before it, the answers that
 *    finish a request at once (FINAL) included: once every node answered,
 *    nothing D sent about the pages can overtake what N sends.
 * 3. MGR_ENTRIES, D -> N, then MOVED: N manages the pages from then on,
 *    and answers MOVED_ACK.
 * 4. D sends the requests it parked on to N, and MOVED to every other
 *    node, which sends its next requests and PAGE_DONEs for the pages to
 *    N, and answers MOVED_ACK once those it made before are on their way
 *    to D.  Meanwhile D sends on to N what still reaches it (relayed
 *    with the requester's id, which N takes from D alone).
 * 5. With every answer in, nothing for the pages can reach D any more:
 *    D tells home (DRAINED), and the drain goes on.
 *
 * The guest runs throughout; a request for one of the pages made during
 * the hand-off waits from step 1 to step 4, a few milliseconds.  A node
 * that joins later learns where the pages went from home (KNOWN).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/thread.h"
#include "qemu/rcu.h"
#include "qemu/timer.h"
#include "distvm-internal.h"
#include "distvm-ram.h"
#include "trace.h"

/* How often the node that hands its pages off looks at its answers */
#define DISTVM_HANDOFF_POLL_US  200
/* How long it parks requests at most, and waits before it parks again */
#define DISTVM_HANDOFF_PARK_US  (20 * 1000)
#define DISTVM_HANDOFF_RETRY_US (5 * 1000)

/*
 * The hand-off under way.  @from and @to are set on a node before it
 * sends or answers anything about it (atomic).
 */
struct DistvmHandoff {
    uint32_t from;              /* UINT32_MAX: none */
    uint32_t to;
    uint64_t others;            /* @from: the nodes that must answer */
    uint64_t prepared;          /* @from, atomic: PREPARED from these */
    uint64_t acked;             /* @from, atomic: MOVED_ACK from these */
};

static void handoff_send(DistvmState *s, uint32_t node, uint32_t step,
                         uint32_t from, uint32_t to)
{
    g_autoptr(GByteArray) m = g_byte_array_new();

    distvm_wire_mgr_move(m, s->node_id, step, from, to);
    distvm_send(s, node, m);
}

/* @from: wait for an answer from each of @nodes; false if leaving */
static bool handoff_wait(DistvmState *s, uint64_t *answered, uint64_t nodes)
{
    while ((qatomic_read(answered) & nodes) != nodes) {
        if (distvm_cluster_leaving(s)) {
            return false;
        }
        g_usleep(DISTVM_HANDOFF_POLL_US);
    }
    return true;
}

/* The node whose pages move, in a thread of its own: steps 1 to 5 */
static void *handoff_thread(void *opaque)
{
    DistvmState *s = opaque;
    DistvmHandoff *handoff = s->handoff;
    uint32_t to = qatomic_read(&handoff->to);
    uint64_t others = handoff->others & ~BIT_ULL(to);
    int64_t start = get_clock();
    g_autoptr(GPtrArray) entries = NULL;
    g_autoptr(GByteArray) m = g_byte_array_new();

    rcu_register_thread();
    while (!distvm_ram_mgr_park(s, DISTVM_HANDOFF_PARK_US)) {
        if (distvm_cluster_leaving(s)) {
            goto out;
        }
        g_usleep(DISTVM_HANDOFF_RETRY_US);
    }
    for (uint32_t i = 0; i < s->nodes; i++) {
        if (handoff->others & BIT_ULL(i)) {
            handoff_send(s, i, DISTVM_MGR_MOVE_PREPARE, s->node_id, to);
        }
    }
    if (!handoff_wait(s, &handoff->prepared, handoff->others)) {
        goto out;
    }
    entries = distvm_ram_mgr_entries(s);
    trace_distvm_handoff_entries(entries->len, to);
    for (guint i = 0; i < entries->len; i++) {
        distvm_send(s, to, g_ptr_array_index(entries, i));
    }
    handoff_send(s, to, DISTVM_MGR_MOVE_MOVED, s->node_id, to);
    if (!handoff_wait(s, &handoff->acked, BIT_ULL(to))) {
        goto out;
    }
    distvm_ram_mgr_switch(s, s->node_id, to);
    for (uint32_t i = 0; i < s->nodes; i++) {
        if (others & BIT_ULL(i)) {
            handoff_send(s, i, DISTVM_MGR_MOVE_MOVED, s->node_id, to);
        }
    }
    if (!handoff_wait(s, &handoff->acked, others)) {
        goto out;
    }
    trace_distvm_handoff_done(s->node_id, to, (get_clock() - start) / 1000);
    distvm_wire_node(m, DISTVM_MSG_DRAINED, s->node_id, s->node_id);
    distvm_send(s, distvm_home(s), m);
out:
    rcu_unregister_thread();
    return NULL;
}

/* A node learns of the hand-off of @from's pages to @to */
static void handoff_set(DistvmState *s, uint32_t from, uint32_t to)
{
    DistvmHandoff *handoff = s->handoff;

    qatomic_set(&handoff->to, to);
    qatomic_set(&handoff->from, from);
}

/*
 * Home: what node @from manages goes to another node.  Returns the node
 * it goes to: of the nodes that manage pages, the one that manages the
 * fewest parts of the directory, home last.
 */
uint32_t distvm_handoff_start(DistvmState *s, uint32_t from)
{
    uint32_t parts[DISTVM_WIRE_MAX_NODES] = { 0 };
    uint64_t managers = distvm_ram_managers(s) & qatomic_read(&s->present);
    uint32_t to = distvm_home(s);

    for (uint32_t i = 0; i < s->start_nodes; i++) {
        parts[distvm_ram_mgr_now(s, i)]++;
    }
    for (uint32_t i = 1; i < s->nodes; i++) {
        if (i != from && (managers & BIT_ULL(i)) &&
            (to == distvm_home(s) || parts[i] < parts[to])) {
            to = i;
        }
    }
    trace_distvm_handoff_start(from, to);
    handoff_set(s, from, to);
    handoff_send(s, from, DISTVM_MGR_MOVE_ASK, from, to);
    return to;
}

/*
 * Home: tell node @node, which joins, where the parts of the directory
 * that moved are now.  Before its RAM is shared.
 */
void distvm_handoff_send_state(DistvmState *s, uint32_t node)
{
    for (uint32_t i = 0; i < s->nodes; i++) {
        uint32_t now = distvm_ram_mgr_now(s, i);

        if (now != i) {
            handoff_send(s, node, DISTVM_MGR_MOVE_KNOWN, i, now);
        }
    }
}

/* Why @mv may not come now from @src, or NULL */
static const char *mgr_move_refusal(DistvmState *s, uint32_t src,
                                    const DistvmMsgMgrMove *mv)
{
    DistvmHandoff *handoff = s->handoff;
    uint32_t from = qatomic_read(&handoff->from);
    bool current = from == mv->from && qatomic_read(&handoff->to) == mv->to;

    switch (mv->step) {
    case DISTVM_MGR_MOVE_ASK:
        if (mv->from != qatomic_read(&s->draining) ||
            !distvm_node_present(s, mv->to) || from != UINT32_MAX) {
            return "this node is not being drained, the node its pages go "
                   "to is not part of the cluster, or a hand-off runs";
        }
        break;
    case DISTVM_MGR_MOVE_PREPARE:
        /* It may overtake the NODE_DRAIN that home sent this node */
        if (!distvm_node_present(s, mv->from) ||
            !distvm_node_present(s, mv->to) ||
            (from != UINT32_MAX && !current)) {
            return "a node not part of the cluster, or another hand-off "
                   "runs";
        }
        break;
    case DISTVM_MGR_MOVE_PREPARED:
    case DISTVM_MGR_MOVE_MOVED_ACK:
        if (!current || mv->from != s->node_id ||
            !(handoff->others & BIT_ULL(src))) {
            return "this node does not hand its pages off to that node";
        }
        break;
    case DISTVM_MGR_MOVE_MOVED:
        if (!current || mv->from == s->node_id) {
            return "no such hand-off runs";
        }
        break;
    case DISTVM_MGR_MOVE_KNOWN:
        if (distvm_node_present(s, s->node_id)) {
            return "this node is not joining";
        }
        break;
    }
    return NULL;
}

/* MGR_MOVE, in the receive thread: it touches the directory only */
static bool mgr_move_received(DistvmState *s, const DistvmMsg *msg)
{
    DistvmHandoff *handoff = s->handoff;
    const DistvmMsgMgrMove *mv = &msg->u.mgr_move;
    const char *why = mgr_move_refusal(s, msg->hdr.src, mv);
    QemuThread thread;

    if (why) {
        distvm_msg_refused(s, msg->hdr.src, "MGR_MOVE of step %" PRIu32
                           " from node %" PRIu32 " to node %" PRIu32 ": %s",
                           mv->step, mv->from, mv->to, why);
        return false;
    }
    switch (mv->step) {
    case DISTVM_MGR_MOVE_ASK:
        trace_distvm_handoff_start(mv->from, mv->to);
        handoff->others = qatomic_read(&s->present) & ~BIT_ULL(s->node_id);
        handoff_set(s, mv->from, mv->to);
        /* N's manager messages come once every node was PREPARED */
        distvm_ram_mgr_coming(s, mv->from, mv->to);
        qemu_thread_create(&thread, "distvm-handoff", handoff_thread, s,
                           QEMU_THREAD_DETACHED);
        break;
    case DISTVM_MGR_MOVE_PREPARE:
        handoff_set(s, mv->from, mv->to);
        distvm_ram_mgr_coming(s, mv->from, mv->to);
        handoff_send(s, mv->from, DISTVM_MGR_MOVE_PREPARED, mv->from,
                     mv->to);
        break;
    case DISTVM_MGR_MOVE_PREPARED:
        qatomic_or(&handoff->prepared, BIT_ULL(msg->hdr.src));
        break;
    case DISTVM_MGR_MOVE_MOVED:
        distvm_ram_mgr_switch(s, mv->from, mv->to);
        handoff_send(s, mv->from, DISTVM_MGR_MOVE_MOVED_ACK, mv->from,
                     mv->to);
        break;
    case DISTVM_MGR_MOVE_MOVED_ACK:
        qatomic_or(&handoff->acked, BIT_ULL(msg->hdr.src));
        break;
    case DISTVM_MGR_MOVE_KNOWN:
        distvm_ram_mgr_switch(s, mv->from, mv->to);
        break;
    }
    return true;
}

/* MGR_ENTRIES, in the receive thread, before the MOVED that follows */
static bool mgr_entries_received(DistvmState *s, const DistvmMsg *msg)
{
    DistvmHandoff *handoff = s->handoff;
    Error *err = NULL;

    if (qatomic_read(&handoff->from) != msg->hdr.src ||
        qatomic_read(&handoff->to) != s->node_id ||
        !distvm_ram_mgr_install(s, msg->hdr.src, &msg->u.mgr_entries,
                                &err)) {
        distvm_msg_refused(s, msg->hdr.src, "MGR_ENTRIES: %s",
                           err ? error_get_pretty(err) :
                           "that node hands no pages to this node");
        error_free(err);
        return false;
    }
    return true;
}

/* The drained node left: the hand-off, if any, is over everywhere */
void distvm_handoff_end(DistvmState *s)
{
    DistvmHandoff *handoff = s->handoff;

    handoff_set(s, UINT32_MAX, UINT32_MAX);
    qatomic_set(&handoff->prepared, 0);
    qatomic_set(&handoff->acked, 0);
}

static const DistvmMsgHandler handoff_handlers[] = {
    { DISTVM_MSG_MGR_MOVE, .receive = mgr_move_received },
    { DISTVM_MSG_MGR_ENTRIES, .receive = mgr_entries_received },
};

void distvm_handoff_init(DistvmState *s)
{
    DistvmHandoff *handoff = g_new0(DistvmHandoff, 1);

    handoff->from = UINT32_MAX;
    s->handoff = handoff;
    distvm_msg_handlers_register(s, handoff_handlers,
                                 ARRAY_SIZE(handoff_handlers));
}
