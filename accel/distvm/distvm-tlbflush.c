/*
 * distvm: a vCPU flushes other vCPUs' TLBs, on every node
 *
 * The guest asks for it with a hypercall (distvm-paravirt.c) instead of
 * sending IPIs.  Between nodes, an IPI that flushes costs an interrupt
 * sent over the wire and page faults on the call's data, which the
 * target reads and marks done and the sender polls; a flush asked here
 * costs one round trip to each node, in parallel, and no guest page
 * moves.
 *
 * A vCPU that arrives on a node starts with an empty TLB (its state's
 * load flushes it), and a node parks a vCPU before its state leaves.  So
 * a vCPU that runs on the asker's node (not parked there) has no TLB
 * entry elsewhere, and when every vCPU the flush names runs there, the
 * flush stays there.  Otherwise vCPU @cs asks every other node present
 * (VCPU_FLUSH), since a vCPU the asker thinks elsewhere may be on its
 * way to any node; each node queues a TLB flush on each of its vCPUs
 * that the flush names and runs there (not parked) and answers
 * (VCPU_FLUSHED) once they all ran it.  The asker's own vCPUs are
 * flushed in the same way; @cs itself at once.
 *
 * A named vCPU that is not in the guest's code (halted, stopped, or
 * between two runs of it) needs no wait: it is marked stale, and flushes
 * its TLB before it enters the guest's code again
 * (distvm_tlb_flush_exec_enter()).
 *
 * The asker waits in the hypercall, which the guest makes with its
 * interrupts off, as a remote flush should.  Meanwhile it flushes its own
 * TLB for the flushes other vCPUs ask of it: two vCPUs that flush each
 * other do not wait for each other.  It gives up, and makes the
 * hypercall again once it runs again, when its thread is wanted outside
 * the guest's code: to stop, to run queued work, or for another vCPU's
 * exclusive section (cpu->has_waiter).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/main-loop.h"
#include "exec/cputlb.h"
#include "hw/core/cpu.h"
#include "distvm-internal.h"
#include "trace.h"

/* How long a waiting vCPU sleeps before it looks again for a stop */
#define FLUSH_POLL_MS   1

/* A flush asked of this node's vCPUs, until they all ran it */
typedef struct FlushAsk {
    DistvmState *s;
    uint32_t src;               /* the asker's node */
    uint32_t cpu;               /* and vCPU */
    uint64_t id;
    unsigned left;              /* atomic: vCPUs still to run it, + 1 */
} FlushAsk;

/*
 * FlushVcpu.state: the id of the vCPU's last flush, and the nodes that
 * are still to answer it, a bit each; one word, so that an answer is
 * taken for the flush it answers only
 */
#define FLUSH_NODE_BITS     DISTVM_WIRE_MAX_NODES
#define FLUSH_NODES         MAKE_64BIT_MASK(0, FLUSH_NODE_BITS)
#define FLUSH_PENDING(state)    ((uint32_t)((state) & FLUSH_NODES))
#define FLUSH_ID(state)     ((state) >> FLUSH_NODE_BITS)

/* Each vCPU of this node: as an asker, and as a target */
typedef struct FlushVcpu {
    QemuSemaphore wake;         /* an answer, or an ask while it waits */
    uint64_t state;             /* atomic: see FLUSH_PENDING(), FLUSH_ID() */
    bool waiting;               /* atomic: it waits for its flush */
    bool executing;             /* atomic: in cpu_exec(), its TLB in use */
    bool stale;                 /* atomic: to flush before it executes */
    QemuMutex lock;             /* @asks, @gone */
    GPtrArray *asks;            /* FlushAsk, for which to flush its TLB */
    bool gone;                  /* unplugged: asks are done without it */
} FlushVcpu;

struct DistvmTlbFlush {
    FlushVcpu *vcpus;           /* [nr_vcpus] */
    uint64_t asked;             /* atomic: flushes asked of other nodes */
    uint64_t done_for_others;   /* atomic: flushes they asked, done here */
};

/* Node @node answered vCPU @cpu's flush @id (it may be this node) */
static void flush_answered(DistvmState *s, uint32_t node, uint32_t cpu,
                           uint64_t id)
{
    FlushVcpu *v = &s->tlbflush->vcpus[cpu];
    uint64_t state = qatomic_read(&v->state), seen;

    for (;;) {
        if (FLUSH_ID(state) != id) {
            if (id > FLUSH_ID(state)) {
                break;
            }
            return;     /* a flush the vCPU gave up and made again */
        }
        if (!(FLUSH_PENDING(state) & BIT(node))) {
            return;     /* waited for no more: the cluster ends */
        }
        seen = qatomic_cmpxchg(&v->state, state, state & ~(uint64_t)BIT(node));
        if (seen == state) {
            qemu_sem_post(&v->wake);
            return;
        }
        state = seen;
    }
    distvm_msg_refused(s, node, "VCPU_FLUSHED %" PRIu64 " for vCPU %"
                       PRIu32 ", which waits for no such answer from node %"
                       PRIu32, id, cpu, node);
}

/* One vCPU fewer to flush for @a: the last one answers the asker */
static void flush_ask_done(FlushAsk *a)
{
    DistvmState *s = a->s;
    g_autoptr(GByteArray) m = NULL;

    if (qatomic_fetch_dec(&a->left) != 1) {
        return;
    }
    trace_distvm_tlb_flush_done(a->cpu, a->src, a->id);
    if (a->src == s->node_id) {
        flush_answered(s, s->node_id, a->cpu, a->id);
    } else {
        qatomic_inc(&s->tlbflush->done_for_others);
        m = g_byte_array_new();
        distvm_wire_vcpu(m, DISTVM_MSG_VCPU_FLUSHED, s->node_id, a->cpu,
                         s->node_id, a->src, 0, NULL, 0);
        distvm_wire_set_seq(m, a->id);
        /* An asker whose node is lost waits no more (flush_fail_on()) */
        distvm_send(s, a->src, m);
    }
    g_free(a);
}

/* On the thread of vCPU @cs: flush its TLB for the asks waiting */
static void flush_run_asks(CPUState *cs)
{
    FlushVcpu *v = &distvm_state()->tlbflush->vcpus[cs->cpu_index];
    g_autoptr(GPtrArray) asks = NULL;

    qemu_mutex_lock(&v->lock);
    if (v->asks->len) {
        asks = v->asks;
        v->asks = g_ptr_array_new();
    }
    qemu_mutex_unlock(&v->lock);
    if (asks) {
        qatomic_set(&v->stale, false);
        tlb_flush(cs);
        for (unsigned i = 0; i < asks->len; i++) {
            flush_ask_done(g_ptr_array_index(asks, i));
        }
    }
}

static void flush_run_work(CPUState *cs, run_on_cpu_data data)
{
    flush_run_asks(cs);
}

/*
 * Flush the TLBs of this node's vCPUs that @vcpus names and run here,
 * for vCPU @cpu of node @src, then answer it.  A vCPU that waits for a
 * flush of its own runs them as it waits; any other is sent work.
 */
static void flush_ask_here(DistvmState *s, uint32_t src, uint32_t cpu,
                           uint64_t id, uint64_t vcpus)
{
    FlushAsk *a = g_new0(FlushAsk, 1);
    CPUState *cs;

    a->s = s;
    a->src = src;
    a->cpu = cpu;
    a->id = id;
    a->left = 1;
    CPU_FOREACH(cs) {
        FlushVcpu *v = &s->tlbflush->vcpus[cs->cpu_index];

        if (cs->cpu_index >= 64 || !(vcpus & BIT_ULL(cs->cpu_index)) ||
            qatomic_read(&cs->parked)) {
            continue;
        }
        qatomic_set(&v->stale, true);
        /* Against distvm_tlb_flush_exec_enter(): one sees the other */
        smp_mb();
        if (!qatomic_read(&v->executing)) {
            continue;
        }
        qemu_mutex_lock(&v->lock);
        if (v->gone) {
            qemu_mutex_unlock(&v->lock);
            continue;
        }
        qatomic_inc(&a->left);
        g_ptr_array_add(v->asks, a);
        qemu_mutex_unlock(&v->lock);
        /* Against distvm_tlb_flush(): one of the two sees the other */
        smp_mb();
        if (qatomic_read(&v->waiting)) {
            qemu_sem_post(&v->wake);
        } else {
            async_run_on_cpu(cs, flush_run_work, RUN_ON_CPU_NULL);
        }
    }
    flush_ask_done(a);
}

/* Whether a vCPU that @vcpus names is parked here: it may run elsewhere */
static bool flush_names_parked(uint64_t vcpus)
{
    CPUState *cs;

    CPU_FOREACH(cs) {
        if (cs->cpu_index < 64 && (vcpus & BIT_ULL(cs->cpu_index)) &&
            qatomic_read(&cs->parked)) {
            return true;
        }
    }
    return false;
}

/*
 * What only the vCPU's thread outside the guest's code can answer: a
 * stop, queued work, or another vCPU's exclusive section, which waits
 * for this one to leave cpu_exec() (start_exclusive())
 */
static bool flush_must_leave(CPUState *cs)
{
    return qatomic_read(&cs->stop) || qatomic_read(&cs->held) ||
           qatomic_read(&cs->parked) || qatomic_read(&cs->has_waiter) ||
           qatomic_read(&cs->work_list.sqh_first);
}

bool distvm_tlb_flush(DistvmState *s, CPUState *cs, uint64_t vcpus)
{
    FlushVcpu *v = &s->tlbflush->vcpus[cs->cpu_index];
    uint32_t others = qatomic_read(&s->present) & ~BIT(s->node_id);
    uint64_t id = FLUSH_ID(qatomic_read(&v->state)) + 1;
    uint64_t here;
    int64_t start_ns = get_clock();
    bool done;
    g_autoptr(GByteArray) m = g_byte_array_new();

    /* The guest's mask may name vCPUs that do not exist */
    vcpus &= MAKE_64BIT_MASK(0, MIN(s->nr_vcpus, 64));
    here = vcpus & ~BIT_ULL(cs->cpu_index);
    trace_distvm_tlb_flush(cs->cpu_index, vcpus, others);
    if (vcpus & BIT_ULL(cs->cpu_index)) {
        tlb_flush(cs);
    }
    if (!here) {
        return true;
    }
    /* The guest's page-table changes before the look at where they run */
    smp_mb();
    if (!flush_names_parked(here)) {
        others = 0;
    }
    /* Answers for the flushes this vCPU gave up are from now on old */
    qatomic_set(&v->state, id << FLUSH_NODE_BITS | others | BIT(s->node_id));
    qatomic_set(&v->waiting, true);
    /* Against flush_fail_on() and flush_ask_here() */
    smp_mb();
    if (distvm_cluster_leaving(s) || distvm_recovery_busy(s)) {
        qatomic_and(&v->state, ~(uint64_t)others);
    }
    /* A node that left since is not asked: flush_fail_on() saw it or not */
    others &= FLUSH_PENDING(qatomic_read(&v->state)) &
              qatomic_read(&s->present);
    for (uint32_t node = 0; others >> node; node++) {
        if (!(others & BIT(node))) {
            continue;
        }
        g_byte_array_set_size(m, 0);
        distvm_wire_vcpu(m, DISTVM_MSG_VCPU_FLUSH, s->node_id, cs->cpu_index,
                         s->node_id, node, here, NULL, 0);
        distvm_wire_set_seq(m, id);
        qatomic_inc(&s->tlbflush->asked);
        if (!distvm_send(s, node, m)) {
            qatomic_and(&v->state, ~(uint64_t)BIT(node));
        }
    }
    flush_ask_here(s, s->node_id, cs->cpu_index, id, here);

    while (FLUSH_PENDING(qatomic_read(&v->state)) && !flush_must_leave(cs)) {
        flush_run_asks(cs);
        qemu_sem_timedwait(&v->wake, FLUSH_POLL_MS);
    }
    done = !FLUSH_PENDING(qatomic_read(&v->state));
    qatomic_set(&v->waiting, false);
    /* Against flush_ask_here(): an ask it did not post is run here */
    smp_mb();
    flush_run_asks(cs);
    if (!done) {
        trace_distvm_tlb_flush_retry(
            cs->cpu_index, id, FLUSH_PENDING(qatomic_read(&v->state)));
    } else {
        trace_distvm_tlb_flush_end(cs->cpu_index, id,
                                   (get_clock() - start_ns) / 1000);
    }
    return done;
}

/* A VCPU_FLUSH or VCPU_FLUSHED comes from its sender, to this node */
static bool flush_msg_ours(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgVcpu *v = &msg->u.vcpu;

    if (v->from != msg->hdr.src || v->to != s->node_id) {
        distvm_msg_refused(s, msg->hdr.src, "%s of vCPU %" PRIu32 " from "
                           "node %" PRIu32 " to node %" PRIu32 ", sent by "
                           "node %" PRIu32,
                           distvm_msg_type_name(msg->hdr.type), v->cpu,
                           v->from, v->to, msg->hdr.src);
        return false;
    }
    return true;
}

static bool flush_received(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgVcpu *v = &msg->u.vcpu;

    if (!flush_msg_ours(s, msg)) {
        return false;
    }
    trace_distvm_tlb_flush_asked(v->cpu, v->from, msg->hdr.seq, v->value);
    flush_ask_here(s, v->from, v->cpu, msg->hdr.seq, v->value);
    return true;
}

static bool flushed_received(DistvmState *s, const DistvmMsg *msg)
{
    if (!flush_msg_ours(s, msg)) {
        return false;
    }
    flush_answered(s, msg->u.vcpu.from, msg->u.vcpu.cpu, msg->hdr.seq);
    return true;
}

/* The flushes waiting for the nodes in @nodes wait for them no more. */
static void flush_fail_on(DistvmState *s, uint32_t nodes)
{
    nodes &= FLUSH_NODES;
    smp_mb();   /* the node gone first: against distvm_tlb_flush() */
    for (unsigned i = 0; i < s->nr_vcpus; i++) {
        FlushVcpu *v = &s->tlbflush->vcpus[i];

        if (FLUSH_PENDING(qatomic_read(&v->state)) & nodes) {
            qatomic_and(&v->state, ~(uint64_t)nodes);
            qemu_sem_post(&v->wake);
        }
    }
}

void distvm_tlb_flush_fail_waits(DistvmState *s)
{
    if (s->tlbflush) {
        flush_fail_on(s, ~BIT(s->node_id));
    }
}

void distvm_tlb_flush_fail_waits_on(DistvmState *s, uint32_t node)
{
    if (s->tlbflush) {
        flush_fail_on(s, BIT(node));
    }
}

/* vCPU @cs enters the guest's code: a flush asked meanwhile first */
void distvm_tlb_flush_exec_enter(CPUState *cs)
{
    FlushVcpu *v = &distvm_state()->tlbflush->vcpus[cs->cpu_index];

    qatomic_set(&v->executing, true);
    /* Against flush_ask_here(): one sees the other */
    smp_mb();
    if (qatomic_read(&v->stale) && qatomic_xchg(&v->stale, false)) {
        tlb_flush(cs);
    }
}

/* ... and leaves it: its TLB is not used until it enters again */
void distvm_tlb_flush_exec_exit(CPUState *cs)
{
    FlushVcpu *v = &distvm_state()->tlbflush->vcpus[cs->cpu_index];

    qatomic_store_release(&v->executing, false);
}

/*
 * vCPU @cpu is unplugged (@present false), or plugged: the flushes asked
 * of it meanwhile are done without it, as its thread ends.
 */
void distvm_tlb_flush_vcpu_present(DistvmState *s, uint32_t cpu,
                                   bool present)
{
    FlushVcpu *v;
    g_autoptr(GPtrArray) asks = NULL;

    if (!s->tlbflush || cpu >= s->nr_vcpus) {
        return;
    }
    v = &s->tlbflush->vcpus[cpu];
    qemu_mutex_lock(&v->lock);
    v->gone = !present;
    if (!present) {
        asks = v->asks;
        v->asks = g_ptr_array_new();
    }
    qemu_mutex_unlock(&v->lock);
    for (unsigned i = 0; asks && i < asks->len; i++) {
        flush_ask_done(g_ptr_array_index(asks, i));
    }
}

void distvm_tlb_flush_counts(DistvmState *s, uint64_t *asked,
                             uint64_t *done_for_others)
{
    *asked = s->tlbflush ? qatomic_read(&s->tlbflush->asked) : 0;
    *done_for_others = s->tlbflush ?
                       qatomic_read(&s->tlbflush->done_for_others) : 0;
}

static const DistvmMsgHandler tlbflush_handlers[] = {
    { DISTVM_MSG_VCPU_FLUSH, .receive = flush_received },
    { DISTVM_MSG_VCPU_FLUSHED, .receive = flushed_received },
};

void distvm_tlb_flush_init(DistvmState *s)
{
    DistvmTlbFlush *f = g_new0(DistvmTlbFlush, 1);

    f->vcpus = g_new0(FlushVcpu, s->nr_vcpus);
    for (unsigned i = 0; i < s->nr_vcpus; i++) {
        qemu_sem_init(&f->vcpus[i].wake, 0);
        qemu_mutex_init(&f->vcpus[i].lock);
        f->vcpus[i].asks = g_ptr_array_new();
    }
    s->tlbflush = f;
    distvm_msg_handlers_register(s, tlbflush_handlers,
                                 ARRAY_SIZE(tlbflush_handlers));
}
