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
 * DISTVM_MAIN_CALLS_MAX calls waiting for its main loop.
 *
 * So a sender keeps at most DISTVM_FLOW_WINDOW of those messages
 * (distvm_wire_flow_counted()) between it and each receiver: those on
 * their way, in its queue and the connection, and those the receiver
 * has not done with yet, in its main loop's queue.  Both count them, by
 * type, as they send them and as they are done with them (handled at
 * once, refused, or run by the main loop); every DISTVM_FLOW_ACK_EVERY
 * the receiver tells the sender its count (FLOW).  The counts only grow,
 * so FLOWs sent by two threads out of order tell nothing wrong; a node
 * that comes back under the same id counts from 0 again.
 *
 * While it is that far ahead of a node, the guest waits, where it made
 * such work for that node:
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
/*
 * Messages FLOW counts a sender keeps between it and a receiver, at
 * most, and how often the receiver says how many it is done with: well
 * below DISTVM_MAIN_CALLS_MAX, and a window of several acknowledgements,
 * so that a sender that waits for one always gets it.
 */
#define DISTVM_FLOW_WINDOW      4096
#define DISTVM_FLOW_ACK_EVERY   1024

/* An answer to another node's access, held back */
typedef struct DistvmFlowReply {
    uint32_t dest;
    GByteArray *msg;
} DistvmFlowReply;

struct DistvmFlow {
    QemuMutex lock;
    QemuCond cond;
    /* Atomic: the messages FLOW counts sent to each node, and done there */
    uint64_t sent[DISTVM_MAX_NODES];
    uint64_t done[DISTVM_MAX_NODES];    /* only grows, under @lock */
    /* Atomic: those of each node this node is done with */
    uint64_t done_here[DISTVM_MAX_NODES];
    GQueue replies;             /* DistvmFlowReply, under @lock */
    QEMUTimer *replies_timer;   /* sends them, at the latest */
};

/* The nodes a vCPU thread's queued wait is for, or 0 if none is queued */
static __thread uint32_t flow_wait_nodes;

/* The nodes of @nodes that this one is a whole window ahead of */
static uint32_t flow_behind(DistvmState *s, uint32_t nodes)
{
    DistvmFlow *f = s->flow;
    uint32_t present = nodes & qatomic_read(&s->present);
    uint32_t behind = 0;

    for (uint32_t n = 0; f && n < DISTVM_MAX_NODES; n++) {
        if ((present & BIT(n)) &&
            (int64_t)(qatomic_read(&f->sent[n]) -
                      qatomic_read(&f->done[n])) > DISTVM_FLOW_WINDOW) {
            behind |= BIT(n);
        }
    }
    return behind;
}

void distvm_flow_count_sent(DistvmState *s, uint32_t node,
                            const GByteArray *m)
{
    if (s->flow && distvm_wire_flow_counted(lduw_le_p(m->data + 6))) {
        qatomic_inc(&s->flow->sent[node]);
    }
}

void distvm_flow_done(DistvmState *s, const DistvmMsg *msg)
{
    uint32_t src = msg->hdr.src;
    g_autoptr(GByteArray) m = NULL;
    uint64_t done;

    if (!s->flow || src == s->node_id ||
        !distvm_wire_flow_counted(msg->hdr.type)) {
        return;
    }
    done = qatomic_fetch_inc(&s->flow->done_here[src]) + 1;
    if (done % DISTVM_FLOW_ACK_EVERY == 0) {
        trace_distvm_flow_send(src, done);
        m = g_byte_array_new();
        distvm_wire_flow(m, s->node_id, done);
        distvm_send(s, src, m);
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

    trace_distvm_flow_received(src, msg->u.value);
    qemu_mutex_lock(&f->lock);
    if (msg->u.value > f->done[src]) {
        qatomic_set(&f->done[src], msg->u.value);
        qemu_cond_broadcast(&f->cond);
        if (!flow_behind(s, UINT32_MAX)) {
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
    if (!flow_behind(s, nodes)) {
        return;                 /* let go meanwhile */
    }
    if (locked) {
        bql_unlock();
    }
    qemu_mutex_lock(&f->lock);
    while (flow_behind(s, nodes) && !qatomic_read(&cs->stop) &&
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

    if (!cs || !flow_behind(s, nodes)) {
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

    if (!flow_behind(s, nodes)) {
        return false;
    }
    qemu_mutex_lock(&f->lock);
    held = flow_behind(s, nodes);
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
    qatomic_set(&f->sent[node], 0);
    qatomic_set(&f->done[node], 0);
    qatomic_set(&f->done_here[node], 0);
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
    if (!flow_behind(s, UINT32_MAX)) {
        flow_replies_send(s);
    }
    qemu_mutex_unlock(&f->lock);
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
