/*
 * distvm: the cluster ends in order, with every node's I/O done first
 *
 * When a node leaves in order (quit, SIGTERM, the guest's power-off on
 * home), its BYE ends the cluster: from then on the others serve their
 * faults themselves, with zero pages for what the leaver held.  Anything
 * still in flight on another node at that moment would read those zeros:
 * a disk write whose buffer was on the leaver, or a write of a device
 * placed on another node whose buffer was on home.
 *
 * So the leaver, its own vCPUs stopped and its own devices drained (QEMU
 * did that before its exit notifiers run), first sends END to every
 * other node.  Each stops its guest in its main loop (vm_stop, which
 * drains its block devices, reading what they still need from the
 * leaver, whose page service needs no main loop) and answers ENDED.  The
 * leaver waits for every answer, DISTVM_END_MS at most, and only then
 * sends its BYE.  A node that is itself leaving (two nodes quit at once)
 * answers an END at once, as its devices are drained already.
 *
 * Once a node ends the cluster, no node answers device accesses any more,
 * and those waiting fail: a main loop that waits for its vCPUs to stop
 * replays nothing, and the leaver's is gone, so a vCPU waiting for one
 * would never stop.  A running guest stops with run state "shutdown",
 * which a "cont" cannot leave.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "system/runstate.h"
#include "distvm-internal.h"
#include "trace.h"

/* How long a leaving node waits for the others to stop their guest. */
#define DISTVM_END_MS   10000

struct DistvmLeave {
    bool ending;                /* atomic: a node ends the cluster */
    QemuMutex lock;             /* the rest */
    QemuCond cond;
    bool leaving;               /* this node's devices are drained */
    uint64_t answer;            /* nodes whose END awaits this node's ENDED */
    uint64_t awaited;           /* nodes whose ENDED this node awaits */
    uint64_t said_bye;          /* nodes whose leave is over */
};

static void send_ended(DistvmState *s, uint64_t nodes)
{
    g_autoptr(GByteArray) m = g_byte_array_new();

    distvm_wire_empty(m, DISTVM_MSG_ENDED, s->node_id, 0);
    for (uint32_t n = 0; n < s->nodes; n++) {
        if (nodes & BIT_ULL(n)) {
            trace_distvm_leave_ended_send(n);
            distvm_send(s, n, m);
        }
    }
}

/* Takes the nodes waiting for this node's ENDED; with l->lock. */
static uint64_t take_answers(DistvmLeave *l)
{
    uint64_t nodes = l->answer;

    l->answer = 0;
    return nodes;
}

/* A node ends the cluster: no device access is answered any more. */
static void leave_ending(DistvmState *s)
{
    qatomic_set(&s->leave->ending, true);
    distvm_io_fail_waits(s);
    distvm_tlb_flush_fail_waits(s);
}

static bool end_received(DistvmState *s, const DistvmMsg *msg)
{
    DistvmLeave *l = s->leave;
    uint64_t now = 0;

    trace_distvm_leave_end_received(msg->hdr.src);
    leave_ending(s);
    qemu_mutex_lock(&l->lock);
    l->answer |= BIT_ULL(msg->hdr.src);
    if (l->leaving) {
        now = take_answers(l);
    }
    qemu_mutex_unlock(&l->lock);
    send_ended(s, now);
    return true;
}

/* In the main loop: stop the guest, its I/O drained, and say so. */
static void end_main_loop(DistvmState *s, const DistvmMsg *msg)
{
    DistvmLeave *l = s->leave;
    uint64_t nodes;

    qemu_mutex_lock(&l->lock);
    if (l->leaving) {
        /* This node's own exit drained it, and answers the END */
        qemu_mutex_unlock(&l->lock);
        return;
    }
    qemu_mutex_unlock(&l->lock);
    /* vm_stop() drains the block devices even if the guest is stopped. */
    vm_stop(RUN_STATE_SHUTDOWN);
    qemu_mutex_lock(&l->lock);
    nodes = take_answers(l);
    qemu_mutex_unlock(&l->lock);
    send_ended(s, nodes);
}

static bool ended_received(DistvmState *s, const DistvmMsg *msg)
{
    DistvmLeave *l = s->leave;

    qemu_mutex_lock(&l->lock);
    trace_distvm_leave_ended_received(msg->hdr.src,
                                      !!(l->awaited & BIT_ULL(msg->hdr.src)));
    l->awaited &= ~BIT_ULL(msg->hdr.src);
    qemu_cond_broadcast(&l->cond);
    qemu_mutex_unlock(&l->lock);
    return true;
}

/*
 * A node's BYE follows its own leave (its devices drained, its END waits
 * over): no ENDED comes from it any more, nor need one.  Two nodes that
 * quit at once can cross: one's END reaches the other after that one's
 * last ENDED was sent.
 */
void distvm_leave_peer_bye(DistvmState *s, uint32_t node)
{
    DistvmLeave *l = s->leave;

    if (!l) {
        return;
    }
    qemu_mutex_lock(&l->lock);
    l->said_bye |= BIT_ULL(node);
    if (l->awaited & BIT_ULL(node)) {
        trace_distvm_leave_bye_instead(node);
        l->awaited &= ~BIT_ULL(node);
        qemu_cond_broadcast(&l->cond);
    }
    qemu_mutex_unlock(&l->lock);
}

bool distvm_leave_ending(DistvmState *s)
{
    return s->leave && qatomic_read(&s->leave->ending);
}

static const DistvmMsgHandler leave_handlers[] = {
    { DISTVM_MSG_END, .receive = end_received, .main_loop = end_main_loop },
    { DISTVM_MSG_ENDED, .receive = ended_received },
};

void distvm_leave_init(DistvmState *s)
{
    s->leave = g_new0(DistvmLeave, 1);
    qemu_mutex_init(&s->leave->lock);
    qemu_cond_init(&s->leave->cond);
    distvm_msg_handlers_register(s, leave_handlers,
                                 ARRAY_SIZE(leave_handlers));
}

/*
 * This node leaves in order, its vCPUs stopped and its devices drained:
 * have every other node stop its guest and drain its devices while this
 * node still serves its pages.  Runs outside the main loop (an exit
 * notifier), without waiting for it.
 */
void distvm_leave_end_cluster(DistvmState *s)
{
    DistvmLeave *l = s->leave;
    g_autoptr(GByteArray) end = g_byte_array_new();
    int64_t deadline = get_clock() + (int64_t)DISTVM_END_MS * SCALE_MS;
    uint64_t answers;

    if (!l) {
        return;
    }
    qemu_mutex_lock(&l->lock);
    l->leaving = true;
    answers = take_answers(l);
    qemu_mutex_unlock(&l->lock);
    send_ended(s, answers);
    if (qatomic_read(&s->state) != DISTVM_CLUSTER_STATE_RUNNING) {
        return;                 /* no guest ran, or another node ended it */
    }
    leave_ending(s);

    distvm_wire_empty(end, DISTVM_MSG_END, s->node_id, 0);
    for (uint32_t n = 0; n < s->nodes; n++) {
        if (n == s->node_id || !distvm_node_present(s, n)) {
            continue;
        }
        qemu_mutex_lock(&l->lock);
        if (l->said_bye & BIT_ULL(n)) {
            qemu_mutex_unlock(&l->lock);
            continue;           /* it left meanwhile, its I/O drained */
        }
        l->awaited |= BIT_ULL(n);
        qemu_mutex_unlock(&l->lock);
        if (!distvm_send(s, n, end)) {
            qemu_mutex_lock(&l->lock);
            l->awaited &= ~BIT_ULL(n);
            qemu_mutex_unlock(&l->lock);
        }
    }

    qemu_mutex_lock(&l->lock);
    trace_distvm_leave_end_sent(l->awaited);
    while (l->awaited) {
        int64_t left = deadline - get_clock();

        if (left <= 0) {
            break;
        }
        qemu_cond_timedwait(&l->cond, &l->lock, MAX(left / SCALE_MS, 1));
    }
    for (uint32_t n = 0; n < s->nodes; n++) {
        if (l->awaited & BIT_ULL(n)) {
            warn_report("distvm: node %" PRIu32 " did not stop its guest "
                        "within %d ms; leaving anyway: its writes still in "
                        "flight may read zeros for this node's pages", n,
                        DISTVM_END_MS);
        }
    }
    qemu_mutex_unlock(&l->lock);
}
