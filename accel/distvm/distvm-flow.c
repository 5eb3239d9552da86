/*
 * distvm: the guest waits for the main loops of the other nodes
 *
 * Some messages are work for the main loop of the node that receives
 * them (distvm-dispatch.c): a PCI configuration write that home mirrors
 * changes the memory map of every node, an interrupt is delivered to a
 * LAPIC under the BQL, an INTx level drives home's chipset.  A guest
 * makes them as fast as its vCPUs run, which can be faster than another
 * node's main loop takes them: a PAM register written in a tight loop
 * is a memory map change on every node per write, and a node whose host
 * is busier falls behind.  A node gives up a sender that has
 * DISTVM_MAIN_CALLS_MAX calls waiting for its main loop; well before
 * that, it asks the sender to wait (FLOW, stop), and lets it go on once
 * its main loop caught up (FLOW, go).  Those calls may also be on their
 * way, in the connection and the sender's queue, where the receiver
 * cannot see them: it also tells the sender, every so often, how many of
 * them it received, and the sender waits as well when it sent
 * DISTVM_FLOW_WINDOW more than that.  The FLOWs to a node are numbered,
 * since the receive thread that queues work and the main loop that takes
 * it send them from two threads; a node that comes back under the same
 * id numbers them from 1 again.
 *
 * While a node asks this one to wait, or is that far behind, the guest
 * waits, where it made such work for that node:
 * - on a vCPU's own thread: the vCPU leaves its translation block, and
 *   waits before it runs the next one, with the BQL let go (this node's
 *   main loop serves the other nodes meanwhile);
 * - in an access this node replays for another node's vCPU (home's
 *   configuration writes mirrored to every node): the answer waits, and
 *   so does that vCPU.
 * Nothing else waits: not a receive thread, which may bring what the
 * other node's main loop needs, nor this node's main loop (its timers,
 * its devices' interrupts, which the guest does not drive at will).  A
 * vCPU that must stop or has other work queued (a pause, a move, a
 * reset) stops waiting, and no wait lasts longer than
 * DISTVM_FLOW_WAIT_MAX_MS: the other node's main loop could itself be
 * waiting for this vCPU.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "hw/core/cpu.h"
#include "system/cpus.h"
#include "distvm-internal.h"
#include "trace.h"

#define DISTVM_FLOW_WAIT_MAX_MS 100
/* Messages FLOW counts, sent to a node and not yet received there, at most */
#define DISTVM_FLOW_WINDOW      4096

/* An answer to another node's access, held back */
typedef struct DistvmFlowReply {
    uint32_t dest;
    GByteArray *msg;
} DistvmFlowReply;

struct DistvmFlow {
    QemuMutex lock;
    QemuCond cond;
    uint32_t stopped;           /* atomic, set under @lock: asked to wait */
    uint64_t seq[DISTVM_MAX_NODES];     /* under @lock: the last FLOW */
    /* Atomic: the messages FLOW counts sent to each node, and received */
    uint64_t sent[DISTVM_MAX_NODES];
    uint64_t received[DISTVM_MAX_NODES];    /* set under @lock */
    GQueue replies;             /* DistvmFlowReply, under @lock */
    QEMUTimer *replies_timer;   /* sends them, at the latest */
};

/* The nodes a vCPU thread's queued wait is for, or 0 if none is queued */
static __thread uint32_t flow_wait_nodes;

/* The nodes of @nodes that asked this one to wait, or are far behind */
static uint32_t flow_stopped(DistvmState *s, uint32_t nodes)
{
    DistvmFlow *f = s->flow;
    uint32_t present, stopped;

    if (!f) {
        return 0;
    }
    present = nodes & qatomic_read(&s->present);
    stopped = qatomic_read(&f->stopped) & present;
    for (uint32_t n = 0; n < DISTVM_MAX_NODES; n++) {
        if ((present & BIT(n)) &&
            (int64_t)(qatomic_read(&f->sent[n]) -
                      qatomic_read(&f->received[n])) > DISTVM_FLOW_WINDOW) {
            stopped |= BIT(n);
        }
    }
    return stopped;
}

void distvm_flow_send(DistvmState *s, uint32_t node, uint64_t seq,
                      const DistvmMsgFlow *flow)
{
    g_autoptr(GByteArray) m = g_byte_array_new();

    trace_distvm_flow_send(node, seq, flow->stop, flow->received);
    distvm_wire_flow(m, s->node_id, seq, flow);
    distvm_send(s, node, m);
}

void distvm_flow_count_sent(DistvmState *s, uint32_t node,
                            const GByteArray *m)
{
    if (s->flow && distvm_wire_flow_counted(lduw_le_p(m->data + 6))) {
        qatomic_inc(&s->flow->sent[node]);
    }
}

/* Send the answers held back; with f->lock */
static void flow_replies_send(DistvmState *s)
{
    DistvmFlow *f = s->flow;
    DistvmFlowReply *r;

    while ((r = g_queue_pop_head(&f->replies))) {
        distvm_send(s, r->dest, r->msg);
        g_byte_array_unref(r->msg);
        g_free(r);
    }
}

static void flow_replies_expired(void *opaque)
{
    DistvmState *s = opaque;

    qemu_mutex_lock(&s->flow->lock);
    flow_replies_send(s);
    qemu_mutex_unlock(&s->flow->lock);
}

static bool flow_received(DistvmState *s, const DistvmMsg *msg)
{
    DistvmFlow *f = s->flow;
    uint32_t src = msg->hdr.src;

    trace_distvm_flow_received(src, msg->hdr.seq, msg->u.flow.stop,
                               msg->u.flow.received);
    qemu_mutex_lock(&f->lock);
    if (msg->hdr.seq > f->seq[src]) {
        f->seq[src] = msg->hdr.seq;
        qatomic_set(&f->received[src], msg->u.flow.received);
        if (msg->u.flow.stop) {
            qatomic_set(&f->stopped, f->stopped | BIT(src));
        } else {
            qatomic_set(&f->stopped, f->stopped & ~BIT(src));
        }
        qemu_cond_broadcast(&f->cond);
        if (!flow_stopped(s, UINT32_MAX)) {
            flow_replies_send(s);
        }
    }
    qemu_mutex_unlock(&f->lock);
    return true;
}

/* Queued work of the vCPU, between two translation blocks */
static void flow_wait(CPUState *cs, run_on_cpu_data data)
{
    DistvmState *s = distvm_state();
    DistvmFlow *f = s->flow;
    uint32_t nodes = flow_wait_nodes;
    int64_t start_ns = get_clock();
    int64_t end_ns = start_ns + DISTVM_FLOW_WAIT_MAX_MS * SCALE_MS;
    bool locked = bql_locked();

    flow_wait_nodes = 0;
    if (!flow_stopped(s, nodes)) {
        return;                 /* let go meanwhile */
    }
    if (locked) {
        bql_unlock();
    }
    qemu_mutex_lock(&f->lock);
    while (flow_stopped(s, nodes) && !qatomic_read(&cs->stop) &&
           !cs->stopped && cpu_work_list_empty(cs) &&
           !distvm_cluster_leaving(s) && get_clock() < end_ns) {
        qemu_cond_timedwait(&f->cond, &f->lock, 10);
    }
    qemu_mutex_unlock(&f->lock);
    if (locked) {
        bql_lock();
    }
    qatomic_inc(&s->flow_waits);
    trace_distvm_flow_wait(cs->cpu_index, nodes,
                           (get_clock() - start_ns) / SCALE_US);
}

void distvm_flow_sent(DistvmState *s, uint32_t nodes)
{
    CPUState *cs = current_cpu;

    if (!cs || !flow_stopped(s, nodes)) {
        return;
    }
    if (!qemu_cpu_is_self(cs)) {
        /* its parked copy: an access replayed here for another node */
        if (s->io_replaying == cs) {
            s->io_replay_flow |= nodes;
        }
        return;
    }
    if (!flow_wait_nodes) {
        async_run_on_cpu(cs, flow_wait, RUN_ON_CPU_NULL);
    }
    flow_wait_nodes |= nodes;
}

bool distvm_flow_hold_reply(DistvmState *s, uint32_t nodes, uint32_t dest,
                            GByteArray *m)
{
    DistvmFlow *f = s->flow;
    DistvmFlowReply *r;
    bool held;

    if (!flow_stopped(s, nodes)) {
        return false;
    }
    qemu_mutex_lock(&f->lock);
    held = flow_stopped(s, nodes);
    if (held) {
        r = g_new(DistvmFlowReply, 1);
        r->dest = dest;
        r->msg = g_byte_array_ref(m);
        g_queue_push_tail(&f->replies, r);
        if (f->replies.length == 1) {
            timer_mod(f->replies_timer,
                      qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                      DISTVM_FLOW_WAIT_MAX_MS);
        }
        qatomic_inc(&s->flow_waits);
        trace_distvm_flow_hold_reply(dest, nodes);
    }
    qemu_mutex_unlock(&f->lock);
    return held;
}

void distvm_flow_forget(DistvmState *s, uint32_t node)
{
    DistvmFlow *f = s->flow;

    if (!f) {
        return;
    }
    qemu_mutex_lock(&f->lock);
    f->seq[node] = 0;
    qatomic_set(&f->sent[node], 0);
    qatomic_set(&f->received[node], 0);
    qatomic_set(&f->stopped, f->stopped & ~BIT(node));
    qemu_cond_broadcast(&f->cond);
    /* Answers to its old connection's accesses are for no one now */
    for (GList *l = f->replies.head, *next; l; l = next) {
        DistvmFlowReply *r = l->data;

        next = l->next;
        if (r->dest == node) {
            g_byte_array_unref(r->msg);
            g_free(r);
            g_queue_delete_link(&f->replies, l);
        }
    }
    if (!flow_stopped(s, UINT32_MAX)) {
        flow_replies_send(s);
    }
    qemu_mutex_unlock(&f->lock);
    distvm_dispatch_forget_flow(s, node);
}

static const DistvmMsgHandler flow_handlers[] = {
    { DISTVM_MSG_FLOW, .receive = flow_received },
};

void distvm_flow_init(DistvmState *s)
{
    DistvmFlow *f = g_new0(DistvmFlow, 1);

    qemu_mutex_init(&f->lock);
    qemu_cond_init(&f->cond);
    g_queue_init(&f->replies);
    f->replies_timer = timer_new_ms(QEMU_CLOCK_REALTIME,
                                    flow_replies_expired, s);
    s->flow = f;
    distvm_msg_handlers_register(s, flow_handlers, ARRAY_SIZE(flow_handlers));
}
