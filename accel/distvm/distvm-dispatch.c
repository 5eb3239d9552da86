/*
 * distvm: what a node does with the messages it receives
 *
 * Each subsystem registers a handler per message type it takes
 * (DistvmMsgHandler): the part that runs at once in the receive thread,
 * and the part that needs the BQL, which the main loop runs later on a
 * copy of the message.  distvm_dispatch() is the one place that checks a
 * message against its sender's role (distvm_wire_check_role()) and the
 * vCPU it names before any handler sees it.
 *
 * Bottom halves scheduled together run in the reverse order, but the
 * main-loop work of messages must keep their order (an INIT before its
 * STARTUP, the chipset writes, stop before cont): one queue, one BH.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "system/runstate.h"
#include "hw/core/cpu.h"
#include "distvm-internal.h"
#include "trace.h"

/* Refused messages logged, at most; the others are counted. */
#define DISTVM_LOGGED_REFUSALS  20

/*
 * Calls each node may have waiting for the main loop: a node that sends
 * more than the main loop handles is lost, not let to grow the queue
 * without end.
 */
#define DISTVM_MAIN_CALLS_MAX   16384
typedef struct DistvmMainCall {
    void (*fn)(void *opaque);
    void *opaque;
    uint32_t src;
} DistvmMainCall;

/* A message whose main-loop part waits for the main loop. */
typedef struct DistvmDeferredMsg {
    DistvmState *s;
    const DistvmMsgHandler *handler;
    bool before_replies;        /* counted in s->replays_received */
    DistvmMsg msg;              /* owns its path and its bytes */
} DistvmDeferredMsg;

/* Whether defer_msg() copies what messages of @type point to. */
static bool msg_copyable(uint32_t type)
{
    switch (type) {
    case DISTVM_MSG_HELLO:
    case DISTVM_MSG_WELCOME:
    case DISTVM_MSG_REFUSE:
    case DISTVM_MSG_PAGE_DATA:
        return false;
    default:
        return true;
    }
}

void distvm_msg_handlers_register(DistvmState *s,
                                  const DistvmMsgHandler *handlers,
                                  size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const DistvmMsgHandler *h = &handlers[i];

        assert(h->type < DISTVM_MSG__MAX && !s->handlers[h->type]);
        assert(h->receive || h->main_loop);
        assert(!h->before_replies || h->main_loop);
        assert(!h->main_loop_now || h->main_loop);
        assert(!h->main_loop || msg_copyable(h->type));
        s->handlers[h->type] = h;
    }
}

/*
 * A well-formed message that its sender had no business sending: it
 * changes nothing, and is counted.  Only the first few are logged, so
 * that a misbehaving peer cannot flood the log.
 */
void distvm_msg_refused(DistvmState *s, uint32_t src, const char *fmt, ...)
{
    uint64_t n = qatomic_fetch_inc(&s->protocol_errors);
    g_autofree char *why = NULL;
    va_list ap;

    va_start(ap, fmt);
    why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    trace_distvm_msg_refused(src, why);
    if (n < DISTVM_LOGGED_REFUSALS) {
        error_report("distvm: refused a message from node %" PRIu32 ": %s%s",
                     src, why, n + 1 == DISTVM_LOGGED_REFUSALS ?
                     " (further refusals are only counted)" : "");
    }
}

static void main_calls_run(void *opaque)
{
    DistvmState *s = opaque;

    while (!s->main_calls_held) {
        DistvmMainCall *c;

        qemu_mutex_lock(&s->main_calls_lock);
        c = g_queue_pop_head(&s->main_calls);
        s->main_calls_running += c != NULL;
        qemu_mutex_unlock(&s->main_calls_lock);
        if (!c) {
            return;
        }
        /*
         * It may let the BQL go (vm_stop, run_on_cpu), and nest calls.
         * One for a home lost since does nothing but free what it holds
         * and count what it waits for (main_loop_part(), run_state_bh()).
         */
        c->fn(c->opaque);
        qemu_mutex_lock(&s->main_calls_lock);
        s->main_calls_from[c->src]--;
        s->main_calls_running--;
        qemu_mutex_unlock(&s->main_calls_lock);
        g_free(c);
    }
}

/*
 * With the BQL: the main loop's calls wait (@hold) or run again.  While
 * the devices stop or run (vm_state_notify(): a "stop" or "cont", an
 * epoch's pause), QEMU polls the main loop (a virtio-blk waits for its
 * queues' handlers to stop): a call then, such as a device access of
 * another node's vCPU, would run in the middle of a device's change.
 */
static void main_calls_hold(DistvmState *s, bool hold)
{
    assert(hold || s->main_calls_held);
    s->main_calls_held += hold ? 1 : -1;
    if (!s->main_calls_held) {
        qemu_bh_schedule(s->main_calls_bh);
    }
}

/*
 * VM state change handlers of the lowest and of the highest priority:
 * when the guest runs, the lowest's prepare step comes first of all and
 * the highest's last; when it stops, the highest's prepare step first
 * and the lowest's last.
 */
static void hold_if_running(void *opaque, bool running, RunState state)
{
    if (running) {
        main_calls_hold(opaque, true);
    }
}

static void release_if_stopping(void *opaque, bool running, RunState state)
{
    if (!running) {
        main_calls_hold(opaque, false);
    }
}

static void hold_if_stopping(void *opaque, bool running, RunState state)
{
    if (!running) {
        main_calls_hold(opaque, true);
    }
}

static void release_if_running(void *opaque, bool running, RunState state)
{
    if (running) {
        main_calls_hold(opaque, false);
    }
}

void distvm_main_loop_call(DistvmState *s, uint32_t src,
                           void (*fn)(void *opaque), void *opaque)
{
    DistvmMainCall *c = g_new(DistvmMainCall, 1);
    bool flooded;

    c->fn = fn;
    c->opaque = opaque;
    c->src = src;
    qemu_mutex_lock(&s->main_calls_lock);
    flooded = ++s->main_calls_from[src] > DISTVM_MAIN_CALLS_MAX;
    g_queue_push_tail(&s->main_calls, c);
    qemu_mutex_unlock(&s->main_calls_lock);
    if (flooded) {
        qatomic_inc(&s->protocol_errors);
        distvm_fatal_node_lost(s, src, "it sent more messages for the main "
                               "loop than it can handle (over "
                               stringify(DISTVM_MAIN_CALLS_MAX) " waiting)");
    }
    qemu_bh_schedule(s->main_calls_bh);
}

/*
 * @msg names vCPU @cpu, which does not exist here (-smp's maxcpus, not
 * plugged, or unplugged): refused, and a device access answered, as its
 * vCPU waits.
 */
static void vcpu_gone(DistvmState *s, const DistvmMsg *msg, uint32_t cpu)
{
    distvm_msg_refused(s, msg->hdr.src, "%s for vCPU %" PRIu32 ", which "
                       "does not exist", distvm_msg_type_name(msg->hdr.type),
                       cpu);
    if (msg->hdr.type == DISTVM_MSG_IO_REQ) {
        distvm_io_req_failed(s, msg);
    }
}

/* With the BQL: @h's main-loop part of @msg */
static void main_loop_part(DistvmState *s, const DistvmMsgHandler *h,
                           const DistvmMsg *msg)
{
    uint32_t cpu;

    /* A vCPU it names may have been unplugged since it arrived. */
    if (distvm_recovery_was_home(s, msg->hdr.src)) {
        trace_distvm_msg_dropped(msg->hdr.src, msg->hdr.type);
    } else if (distvm_wire_msg_vcpu(msg, &cpu) && !qemu_get_cpu(cpu)) {
        vcpu_gone(s, msg, cpu);
    } else {
        h->main_loop(s, msg);
    }
}

static void deferred_msg_run(void *opaque)
{
    DistvmDeferredMsg *d = opaque;
    DistvmState *s = d->s;

    main_loop_part(s, d->handler, &d->msg);
    distvm_flow_done(s, &d->msg);
    if (d->before_replies) {
        qemu_mutex_lock(&s->replay_lock);
        qatomic_inc(&s->replays_done);
        qemu_cond_broadcast(&s->replay_cond);
        qemu_mutex_unlock(&s->replay_lock);
    }
    if (d->msg.hdr.type == DISTVM_MSG_VCPU_STATE) {
        g_free((uint8_t *)d->msg.u.vcpu.data);
    }
    if (d->msg.hdr.type == DISTVM_MSG_NET_CTRL) {
        g_free((uint8_t *)d->msg.u.net_ctrl.data);
    }
    if (d->msg.hdr.type == DISTVM_MSG_DEVICE_AWAY) {
        g_free((uint8_t *)d->msg.u.away.data);
    }
    distvm_msg_clear(&d->msg);
    g_free(d);
}

/*
 * The bytes a received message borrows from its payload, and those that
 * distvm_msg_clear() frees, are copied.
 */
static void defer_msg(DistvmState *s, const DistvmMsgHandler *h,
                      const DistvmMsg *msg)
{
    DistvmDeferredMsg *d = g_new(DistvmDeferredMsg, 1);

    d->s = s;
    d->handler = h;
    d->before_replies = h->before_replies && h->before_replies(msg);
    if (d->before_replies) {
        qatomic_inc(&s->replays_received);
    }
    d->msg = *msg;
    switch (msg->hdr.type) {
    case DISTVM_MSG_PCI_CONFIG:
        d->msg.u.pci.path = g_strdup(msg->u.pci.path);
        break;
    case DISTVM_MSG_NET_CTRL:
        d->msg.u.net_ctrl.path = g_strdup(msg->u.net_ctrl.path);
        d->msg.u.net_ctrl.data = g_memdup2(msg->u.net_ctrl.data,
                                           msg->u.net_ctrl.len);
        break;
    case DISTVM_MSG_NET_PAIR:
        d->msg.u.net_pair.path = g_strdup(msg->u.net_pair.path);
        break;
    case DISTVM_MSG_VCPU_STATE:
        d->msg.u.vcpu.data = g_memdup2(msg->u.vcpu.data, msg->u.vcpu.len);
        break;
    case DISTVM_MSG_DEVICE_AWAY:
        d->msg.u.away.data = g_memdup2(msg->u.away.data, msg->u.away.len);
        break;
    case DISTVM_MSG_VCPU_WARM_PAGES:
        d->msg.u.warm.pages = g_memdup2(msg->u.warm.pages,
                                        msg->u.warm.count *
                                        sizeof(*msg->u.warm.pages));
        break;
    case DISTVM_MSG_MEM_PLUG:
    case DISTVM_MSG_MEM_PLUG_ACK:
    case DISTVM_MSG_MEM_UNPLUG:
        d->msg.u.mem.backend_type = g_strdup(msg->u.mem.backend_type);
        d->msg.u.mem.backend_id = g_strdup(msg->u.mem.backend_id);
        d->msg.u.mem.device = g_strdup(msg->u.mem.device);
        d->msg.u.mem.error = g_strdup(msg->u.mem.error);
        break;
    case DISTVM_MSG_CPU_PLUG:
    case DISTVM_MSG_CPU_PLUG_ACK:
    case DISTVM_MSG_CPU_UNPLUG:
        d->msg.u.cpu_plug.device = g_strdup(msg->u.cpu_plug.device);
        d->msg.u.cpu_plug.error = g_strdup(msg->u.cpu_plug.error);
        break;
    default:
        break;
    }
    distvm_main_loop_call(s, msg->hdr.src, deferred_msg_run, d);
}

/*
 * In the thread that received @msg: do @h's main-loop part now, as
 * DistvmMsgHandler.main_loop_now allows, rather than wake the main loop
 * for it (a thread hand-off).  That takes the BQL if it is free (a
 * receive thread must never wait for it: a vCPU thread holding it may
 * wait for a page this thread brings), the main loop being in the middle
 * of no message's work and having nothing of the sender's queued before
 * it.  Returns false if the main loop must do it.
 */
static bool main_loop_part_now(DistvmState *s, const DistvmMsgHandler *h,
                               const DistvmMsg *msg)
{
    bool now;

    if (!h->main_loop_now || (h->before_replies && h->before_replies(msg)) ||
        bql_locked() || !bql_trylock()) {
        return false;
    }
    /*
     * The main loop takes no call out of its queue while this holds the
     * BQL, but may be in the middle of one that let it go.
     */
    qemu_mutex_lock(&s->main_calls_lock);
    now = !s->main_calls_running && !s->main_calls_held &&
          !s->main_calls_from[msg->hdr.src];
    qemu_mutex_unlock(&s->main_calls_lock);
    now = now && h->main_loop_now(msg);
    if (now) {
        main_loop_part(s, h, msg);
    }
    bql_unlock();
    return now;
}

/* distvm_dispatch(); returns true if the main loop does the rest later */
static bool dispatch_deferred(DistvmState *s, const DistvmMsg *msg)
{
    uint32_t type = msg->hdr.type;
    uint32_t src = msg->hdr.src;
    const DistvmMsgHandler *h = type < DISTVM_MSG__MAX ? s->handlers[type]
                                                        : NULL;
    Error *err = NULL;
    uint32_t cpu;

    if (src != s->node_id) {
        distvm_recovery_home_news(s, msg);
    }
    if (src != s->node_id &&
        !distvm_wire_check_role(msg, distvm_home(s), s->node_id, &err)) {
        distvm_msg_refused(s, src, "%s", error_get_pretty(err));
        error_free(err);
        return false;
    }
    /* -smp N,maxcpus=M: the indices from N on are no vCPU (yet). */
    if (distvm_wire_msg_vcpu(msg, &cpu) && !qemu_get_cpu(cpu)) {
        vcpu_gone(s, msg, cpu);
        return false;
    }
    if (!h) {
        distvm_msg_refused(s, src, "unexpected %s",
                           distvm_msg_type_name(type));
        return false;
    }
    if (h->receive && !h->receive(s, msg)) {
        return false;
    }
    if (h->main_loop && !main_loop_part_now(s, h, msg)) {
        defer_msg(s, h, msg);
        return true;
    }
    return false;
}

void distvm_dispatch(DistvmState *s, const DistvmMsg *msg)
{
    /* A vCPU unplugged meanwhile is freed after this (distvm-cpuplug.c) */
    RCU_READ_LOCK_GUARD();

    if (!dispatch_deferred(s, msg)) {
        distvm_flow_done(s, msg);
    }
}

bool distvm_msg_always(const DistvmMsg *msg)
{
    return true;
}

void distvm_dispatch_wait_before_replies(DistvmState *s, CPUState *cs)
{
    uint64_t target = qatomic_read(&s->replays_received);

    /* Almost always: nothing to wait for, and no lock to take. */
    if (qatomic_read(&s->replays_done) == target) {
        return;
    }
    qemu_mutex_lock(&s->replay_lock);
    while (s->replays_done < target && !qatomic_read(&cs->stop)) {
        qemu_cond_timedwait(&s->replay_cond, &s->replay_lock, 10);
    }
    qemu_mutex_unlock(&s->replay_lock);
}

void distvm_dispatch_init(DistvmState *s)
{
    qemu_mutex_init(&s->main_calls_lock);
    g_queue_init(&s->main_calls);
    s->main_calls_bh = qemu_bh_new(main_calls_run, s);
    qemu_add_vm_change_state_handler_prio_full(release_if_stopping,
                                               hold_if_running, s, INT_MIN);
    qemu_add_vm_change_state_handler_prio_full(release_if_running,
                                               hold_if_stopping, s, INT_MAX);
    qemu_mutex_init(&s->replay_lock);
    qemu_cond_init(&s->replay_cond);
}
