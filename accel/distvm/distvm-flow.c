/*
 * distvm: a vCPU waits for the main loops of the other nodes
 *
 * Some messages are work for the main loop of the node that receives
 * them (distvm-dispatch.c): a PCI configuration write that home mirrors
 * changes the memory map of every node, an interrupt is delivered to a
 * LAPIC under the BQL.  A guest makes them as fast as its vCPUs run,
 * which can be faster than another node's main loop takes them: a PAM
 * register written in a tight loop is a memory map change on every node
 * per write, and a node whose host is busier falls behind.  A node gives
 * up a sender that has DISTVM_MAIN_CALLS_MAX calls waiting for its main
 * loop; well before that, it tells the sender to wait (FLOW, stop), and
 * to go on once its main loop caught up (FLOW, go).  The FLOWs of a
 * node are numbered, since the receive thread that queues work and the
 * main loop that takes it tell them from two threads.
 *
 * The sender holds back the vCPU that made such a message, when another
 * node asked it to wait: the vCPU finishes the instruction, leaves its
 * translation block, and waits before it runs the next one, with the BQL
 * let go (its main loop serves the other nodes meanwhile).  Only vCPUs
 * wait: a receive thread may be bringing what the other node's main loop
 * needs, and the main loop makes this work only for other nodes' vCPUs,
 * which wait for its answer anyway.  A vCPU that must stop (a pause, a
 * move, a reset) stops waiting, and none waits longer than
 * DISTVM_FLOW_WAIT_MAX_MS at a time: the other node's main loop could be
 * waiting for it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "hw/core/cpu.h"
#include "distvm-internal.h"
#include "trace.h"

#define DISTVM_FLOW_WAIT_MAX_MS 100

struct DistvmFlow {
    QemuMutex lock;
    QemuCond cond;
    uint32_t stopped;           /* atomic, set under @lock: nodes that wait */
    uint64_t seq[DISTVM_MAX_NODES];     /* under @lock: the last FLOW */
};

/* A vCPU thread has its wait queued, and queues no other meanwhile. */
static __thread bool flow_wait_queued;

void distvm_flow_send(DistvmState *s, uint32_t node, uint64_t seq, bool stop)
{
    g_autoptr(GByteArray) m = g_byte_array_new();

    trace_distvm_flow_send(node, seq, stop);
    distvm_wire_flow(m, s->node_id, seq, stop);
    distvm_send(s, node, m);
}

static bool flow_received(DistvmState *s, const DistvmMsg *msg)
{
    DistvmFlow *f = s->flow;
    uint32_t src = msg->hdr.src;

    trace_distvm_flow_received(src, msg->hdr.seq, msg->u.stop);
    qemu_mutex_lock(&f->lock);
    if (msg->hdr.seq > f->seq[src]) {
        f->seq[src] = msg->hdr.seq;
        if (msg->u.stop) {
            qatomic_set(&f->stopped, f->stopped | BIT(src));
        } else {
            qatomic_set(&f->stopped, f->stopped & ~BIT(src));
            qemu_cond_broadcast(&f->cond);
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
    uint32_t nodes = data.host_int;
    int64_t start_ns = get_clock();
    int64_t end_ns = start_ns + DISTVM_FLOW_WAIT_MAX_MS * SCALE_MS;
    bool locked = bql_locked();

    flow_wait_queued = false;
    if (locked) {
        bql_unlock();
    }
    qemu_mutex_lock(&f->lock);
    while ((f->stopped & nodes & qatomic_read(&s->present)) &&
           !qatomic_read(&cs->stop) && !distvm_cluster_leaving(s) &&
           get_clock() < end_ns) {
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

    if (!(qatomic_read(&s->flow->stopped) & nodes) || !cs ||
        !qemu_cpu_is_self(cs) || flow_wait_queued) {
        return;
    }
    flow_wait_queued = true;
    async_run_on_cpu(cs, flow_wait, RUN_ON_CPU_HOST_INT(nodes));
}

static const DistvmMsgHandler flow_handlers[] = {
    { DISTVM_MSG_FLOW, .receive = flow_received },
};

void distvm_flow_init(DistvmState *s)
{
    DistvmFlow *f = g_new0(DistvmFlow, 1);

    qemu_mutex_init(&f->lock);
    qemu_cond_init(&f->cond);
    s->flow = f;
    distvm_msg_handlers_register(s, flow_handlers, ARRAY_SIZE(flow_handlers));
}
