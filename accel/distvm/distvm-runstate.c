/*
 * distvm: the cluster's run state and guest clocks follow the home node
 *
 * The home node is authoritative for run state (DESIGN.md section 3):
 * when its guest stops or runs ("stop"/"cont", the first start) it tells
 * the other nodes, which stop or run their vCPUs too; a reset of the
 * machine resets every node's vCPUs.  A suspend to RAM (S3) stops them
 * too, and the wake-up (a reset, then the guest runs on from its waking
 * vector) runs them again.  Power-off and quit end the home process,
 * which ends the others in order (distvm-leave.c).
 *
 * A checkpoint epoch (distvm-epoch.c) pauses the guest on every node
 * without a run state change (no STOP or RESUME event): the vCPUs are
 * held, as for a join, so that nothing that resumes them meanwhile (a
 * "cont", a reset) runs them, and the clocks and devices stop as for
 * vm_stop().  Home's PAUSE carries it to the others, which answer PAUSED
 * with the epoch's number, and UNPAUSE, with home's clocks, ends it.  A
 * "stop" meanwhile takes effect as usual and the guest stays stopped; a
 * run state change or a reset during the pause marks it disturbed: the
 * epoch is then not taken (distvm_guest_paused_whole()).
 *
 * Each time the guest runs, home sends its clocks: the guest's virtual
 * clock and TSC and the host clocks they were read against.  A node on
 * the same host (same boot id) takes home's offsets as they are, so the
 * guest's clocks agree exactly on every node; a node on another host
 * sets them from the values received, half a round trip later.  Either
 * way a node sets them before its vCPUs run again.
 *
 * The nodes stop a little after home does, so their vCPUs may read a
 * later time than home's stopped clocks.  Each node reports the clocks it
 * stopped at, and home runs the guest again from the latest of them, so
 * that no vCPU sees the guest's time go back.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/main-loop.h"
#include "qemu/seqlock.h"
#include "qemu/timer.h"
#include "cpu.h"
#include "hw/core/cpu.h"
#include "system/cpu-timers.h"
#include "system/cpu-timers-internal.h"
#include "system/cpus.h"
#include "system/runstate.h"
#include "system/reset.h"
#include "block/block-global-state.h"
#include "distvm-internal.h"
#include "trace.h"

typedef struct DistvmRunMsg {
    uint32_t from;
    int64_t received_ns;        /* get_clock() when it arrived */
    int64_t received_ticks;     /* cpu_get_host_ticks() then */
    DistvmMsgRunState run;
} DistvmRunMsg;

struct DistvmRun {
    uint64_t host_id;           /* this host's, read_host_id() */
    Notifier suspend;           /* home: the guest suspends to RAM */
    Notifier wakeup;            /* home: ... and wakes up */
    /* Not home: home's clocks, come before this node's own start. */
    bool have_pending_clocks;
    DistvmRunMsg pending_clocks;
    /* Home: the latest clocks a node reported it stopped at. */
    int64_t nodes_stopped_ns;
    int64_t nodes_stopped_ticks;
};

/* The host's boot id, hashed: equal on processes of one host only. */
static uint64_t read_host_id(void)
{
    g_autofree char *boot_id = NULL;
    uint64_t h = 0xcbf29ce484222325ull;       /* FNV-1a */

    if (!g_file_get_contents("/proc/sys/kernel/random/boot_id", &boot_id,
                             NULL, NULL)) {
        /* No boot id: never assume another process shares our clocks. */
        return g_random_int() | (uint64_t)g_random_int() << 32 | 1;
    }
    for (const char *p = boot_id; *p; p++) {
        h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    }
    return h | 1;
}

/*
 * The guest's TSC (rdtsc and the TSC MSR, through AccelOpsClass's
 * get_elapsed_ticks): QEMU's cpu_get_ticks() without its ratchet.  When
 * a thread reads the host's TSC on a CPU whose TSC is a little behind
 * the one the last read came from, cpu_get_ticks() adds the difference
 * to the offset for good.  With vCPU threads reading the TSC in turn on
 * both CPUs of this machine, that moved a node's offset ahead by 10
 * million ticks in the first second of a Linux boot, each node by its
 * own amount: the nodes' TSCs parted, and Linux, which checks a new
 * socket's TSC against the boot CPU's and the TSC against the HPET,
 * found a warp or a skew and dropped the TSC.  Here a read that would go
 * back returns the last value instead, and the offset stays home's; only
 * a step back of more than DISTVM_TICKS_BACK_MAX (the host's TSC went
 * back, as after a suspend) moves the offset, as QEMU's does.
 */
#define DISTVM_TICKS_BACK_MAX   (1 << 20)

static int64_t guest_ticks_last;    /* under timers_state.vm_clock_lock */

/* The guest's TSC from the offset, not what it last returned. */
static int64_t guest_ticks_raw(void)
{
    return timers_state.cpu_ticks_offset +
           (timers_state.cpu_ticks_enabled ? cpu_get_host_ticks() : 0);
}

int64_t distvm_guest_ticks(void)
{
    int64_t ticks;

    qemu_spin_lock(&timers_state.vm_clock_lock);
    ticks = guest_ticks_raw();
    if (ticks < guest_ticks_last) {
        if (guest_ticks_last - ticks > DISTVM_TICKS_BACK_MAX) {
            timers_state.cpu_ticks_offset += guest_ticks_last - ticks;
        }
        ticks = guest_ticks_last;
    }
    guest_ticks_last = ticks;
    qemu_spin_unlock(&timers_state.vm_clock_lock);
    return ticks;
}

/* Home, with the BQL, while the guest runs: its clocks, read together. */
static void read_clocks(DistvmState *s, DistvmMsgRunState *run)
{
    int64_t host_ns = get_clock();
    int64_t host_ticks = cpu_get_host_ticks();

    run->host_ns = host_ns;
    run->host_ticks = host_ticks;
    run->virtual_ns = host_ns + timers_state.cpu_clock_offset;
    run->guest_ticks = host_ticks + timers_state.cpu_ticks_offset;
    run->host_id = s->run->host_id;
}

/* A node, with the BQL, while the guest runs: set its clocks to home's. */
static void apply_clocks(DistvmState *s, const DistvmRunMsg *m)
{
    const DistvmMsgRunState *run = &m->run;
    int64_t clock_offset, ticks_offset;

    if (run->host_id == s->run->host_id) {
        clock_offset = run->virtual_ns - run->host_ns;
        ticks_offset = run->guest_ticks - run->host_ticks;
    } else {
        int64_t half_rtt = s->peers[m->from].rtt_ns / 2;

        clock_offset = run->virtual_ns + half_rtt - m->received_ns;
        ticks_offset = run->guest_ticks - m->received_ticks;
    }
    seqlock_write_lock(&timers_state.vm_clock_seqlock,
                       &timers_state.vm_clock_lock);
    if (timers_state.cpu_ticks_enabled) {
        trace_distvm_clock_sync(clock_offset - timers_state.cpu_clock_offset,
                                ticks_offset - timers_state.cpu_ticks_offset,
                                run->host_id == s->run->host_id);
        timers_state.cpu_clock_offset = clock_offset;
        timers_state.cpu_ticks_offset = ticks_offset;
        /*
         * Home's clocks go on from where every node's stopped (its
         * catch-up): a step back here is not undone.
         */
        timers_state.cpu_ticks_prev = 0;
        guest_ticks_last = 0;
    }
    seqlock_write_unlock(&timers_state.vm_clock_seqlock,
                         &timers_state.vm_clock_lock);
    qemu_clock_notify(QEMU_CLOCK_VIRTUAL);
}

/*
 * Send RUN_STATE @action to the nodes in @nodes (DISTVM_RUN_ALL: every
 * other node), with the clocks it carries: home's for CONT, this node's
 * for STOPPED, and for HOLD, HELD and RELEASE the join's @number in
 * their place.
 */
void distvm_runstate_send(DistvmState *s, uint32_t nodes,
                          DistvmRunAction action, uint64_t number)
{
    g_autoptr(GByteArray) m = g_byte_array_new();
    DistvmMsgRunState run = { .action = action };

    if (action == DISTVM_RUN_CONT || action == DISTVM_RUN_UNPAUSE) {
        read_clocks(s, &run);
    } else if (action == DISTVM_RUN_STOPPED || action == DISTVM_RUN_PAUSED) {
        run.virtual_ns = cpu_get_clock();
        run.guest_ticks = distvm_guest_ticks();
        run.host_ns = number;           /* PAUSED: the epoch */
    } else if (action != DISTVM_RUN_STOP && action != DISTVM_RUN_RESET) {
        run.virtual_ns = number;
    }
    distvm_wire_run_state(m, s->node_id, &run);
    for (uint32_t i = 0; i < s->nodes; i++) {
        if ((nodes & BIT(i)) && i != s->node_id) {
            distvm_send(s, i, m);
        }
    }
}

static void catch_up_with_nodes(DistvmRun *r);

/* A checkpoint epoch's pause, under the BQL (see above) */
static struct {
    bool paused;
    bool notifying;             /* its own VM state changes */
    bool taken_over;            /* the run state changed meanwhile */
    bool disturbed;             /* ... or the machine was reset */
} epoch_pause;

/* Home tells the other nodes to pause for @epoch, which answer PAUSED */
static void pause_tell(DistvmState *s, uint64_t epoch)
{
    if (distvm_is_home(s)) {
        s->run->nodes_stopped_ns = 0;
        s->run->nodes_stopped_ticks = 0;
        distvm_runstate_send(s, DISTVM_RUN_ALL, DISTVM_RUN_PAUSE, epoch);
    } else {
        distvm_runstate_send(s, BIT(distvm_home(s)), DISTVM_RUN_PAUSED,
                             epoch);
    }
}

/*
 * Pause the guest for checkpoint epoch @epoch (see above); on home, the
 * other nodes too, which answer PAUSED.
 */
void distvm_guest_pause(DistvmState *s, uint64_t epoch)
{
    if (epoch_pause.paused) {
        /*
         * Paused for the epoch of a home that was lost: its standby, home
         * now, pauses the guest again, and the others answer it
         */
        pause_tell(s, epoch);
        return;
    }
    epoch_pause.paused = true;
    epoch_pause.taken_over = !runstate_is_running();
    epoch_pause.disturbed = epoch_pause.taken_over;
    distvm_hold_vcpus(true);
    if (!epoch_pause.taken_over) {
        cpu_disable_ticks();
        epoch_pause.notifying = true;
        vm_state_notify(false, RUN_STATE_SAVE_VM);
        epoch_pause.notifying = false;
    }
    /* Before the nodes are told: it runs bottom halves, their answers' */
    bdrv_drain_all();
    distvm_output_pause(true);
    pause_tell(s, epoch);
}

/*
 * Whether the guest stayed paused as distvm_guest_pause() left it: no
 * run state change, no reset since
 */
bool distvm_guest_paused_whole(void)
{
    return epoch_pause.paused && !epoch_pause.disturbed;
}

/* Whether distvm_guest_pause() holds the guest, whatever happened since */
bool distvm_guest_paused(void)
{
    return epoch_pause.paused;
}

/*
 * End the epoch's pause: the guest runs again, unless a run state change
 * took it over meanwhile, and the vCPUs are let go.  On home, the other
 * nodes too (UNPAUSE, with home's clocks); on them, with @clocks.
 */
static void guest_resume(DistvmState *s, const DistvmRunMsg *clocks)
{
    if (!epoch_pause.paused) {
        return;
    }
    epoch_pause.paused = false;
    distvm_netqueues_resume(s);
    if (!epoch_pause.taken_over) {
        cpu_enable_ticks();
        if (distvm_is_home(s)) {
            catch_up_with_nodes(s->run);
        }
        epoch_pause.notifying = true;
        vm_state_notify(true, RUN_STATE_RUNNING);
        epoch_pause.notifying = false;
        if (clocks) {
            apply_clocks(s, clocks);
        }
    }
    distvm_output_pause(false);
    if (distvm_is_home(s)) {
        distvm_runstate_send(s, DISTVM_RUN_ALL, DISTVM_RUN_UNPAUSE, 0);
    }
    distvm_hold_vcpus(false);
}

void distvm_guest_resume(DistvmState *s)
{
    guest_resume(s, NULL);
}

/* Any run state change but the pause's own takes it over */
static void epoch_pause_state_change(void *opaque, bool running,
                                     RunState state)
{
    if (epoch_pause.paused && !epoch_pause.notifying) {
        epoch_pause.taken_over = true;
        epoch_pause.disturbed = true;
    }
}

static void send_run_state(DistvmState *s, DistvmRunAction action)
{
    distvm_runstate_send(s, action == DISTVM_RUN_STOPPED ?
                         BIT(distvm_home(s)) : DISTVM_RUN_ALL, action, 0);
}

/*
 * Home, its clocks just enabled and its vCPUs not yet running: go on
 * from the latest time a node stopped at, if that is later than home's.
 */
static void catch_up_with_nodes(DistvmRun *r)
{
    int64_t clock_behind = r->nodes_stopped_ns - cpu_get_clock();
    int64_t ticks_behind;

    seqlock_write_lock(&timers_state.vm_clock_seqlock,
                       &timers_state.vm_clock_lock);
    if (clock_behind > 0) {
        timers_state.cpu_clock_offset += clock_behind;
    }
    /*
     * The offset, which the nodes are sent, goes on from the latest TSC
     * any vCPU saw: theirs, and what home's last returned.
     */
    ticks_behind = MAX(r->nodes_stopped_ticks, guest_ticks_last) -
                   guest_ticks_raw();
    if (ticks_behind > 0) {
        timers_state.cpu_ticks_offset += ticks_behind;
    }
    guest_ticks_last = 0;
    seqlock_write_unlock(&timers_state.vm_clock_seqlock,
                         &timers_state.vm_clock_lock);
    trace_distvm_clock_catch_up(MAX(clock_behind, 0), MAX(ticks_behind, 0));
}

/* Home: its guest runs or stops. */
static void distvm_vm_state_change(void *opaque, bool running, RunState state)
{
    DistvmState *s = opaque;

    if (qatomic_read(&s->state) != DISTVM_CLUSTER_STATE_RUNNING ||
        (!running && state == RUN_STATE_SHUTDOWN) || epoch_pause.notifying) {
        return;     /* distvm-leave.c ends the others; an epoch's pause */
    }
    trace_distvm_run_state_send(running, RunState_str(state));
    if (running) {
        catch_up_with_nodes(s->run);
    } else {
        s->run->nodes_stopped_ns = 0;
        s->run->nodes_stopped_ticks = 0;
    }
    send_run_state(s, running ? DISTVM_RUN_CONT : DISTVM_RUN_STOP);
}

/*
 * Home: the guest suspends to RAM (S3).  QEMU pauses the vCPUs without a
 * VM state change, and its clocks go on; the nodes stop theirs as for a
 * "stop".
 */
static void distvm_home_suspend(Notifier *n, void *data)
{
    DistvmState *s = distvm_state();

    if (qatomic_read(&s->state) == DISTVM_CLUSTER_STATE_RUNNING) {
        trace_distvm_run_state_send(false, "suspended");
        send_run_state(s, DISTVM_RUN_STOP);
    }
}

/*
 * Home: the guest wakes up.  The machine was just reset (a RUN_RESET went
 * out before this), and the vCPUs run on as for a "cont".
 */
static void distvm_home_wakeup(Notifier *n, void *data)
{
    DistvmState *s = distvm_state();

    if (qatomic_read(&s->state) == DISTVM_CLUSTER_STATE_RUNNING) {
        trace_distvm_run_state_send(true, "woken up");
        send_run_state(s, DISTVM_RUN_CONT);
    }
}

/* Home: the machine is reset (the guest rebooted, or system_reset). */
static void distvm_home_reset(void *opaque)
{
    DistvmState *s = opaque;

    if (qatomic_read(&s->state) == DISTVM_CLUSTER_STATE_RUNNING) {
        send_run_state(s, DISTVM_RUN_RESET);
    }
    epoch_pause.disturbed |= epoch_pause.paused;
}

/*
 * A node: reset the vCPUs it runs and its host bridge's memory map, as
 * the home node reset its own.  Its clocks go on (they are home's).
 */
static void reset_own_vcpus(DistvmState *s)
{
    CPUState *cpu;

    pause_all_vcpus();
    epoch_pause.disturbed |= epoch_pause.paused;
    distvm_chipset_reset(s);
    CPU_FOREACH(cpu) {
        if (distvm_vcpu_node(s, cpu->cpu_index) == s->node_id) {
            cpu_reset(cpu);
            x86_cpu_after_reset(X86_CPU(cpu));
        }
    }
    if (runstate_is_running()) {
        resume_all_vcpus();         /* held still, in an epoch's pause */
    }
}

static void run_state_bh(void *opaque)
{
    DistvmRunMsg *m = opaque;
    DistvmState *s = distvm_state();

    if (distvm_recovery_was_home(s, m->from)) {
        /* Its standby, home now, says what the guest does */
        trace_distvm_msg_dropped(m->from, DISTVM_MSG_RUN_STATE);
        g_free(m);
        return;
    }
    trace_distvm_run_state_apply(m->run.action);
    if (qatomic_read(&s->state) != DISTVM_CLUSTER_STATE_RUNNING) {
        /* Before this node's own start: it applies the clocks then. */
        if (m->run.action == DISTVM_RUN_CONT) {
            s->run->pending_clocks = *m;
            s->run->have_pending_clocks = true;
        }
        g_free(m);
        return;
    }
    switch (m->run.action) {
    case DISTVM_RUN_STOP:
        if (runstate_is_running()) {
            vm_stop(RUN_STATE_PAUSED);
            send_run_state(s, DISTVM_RUN_STOPPED);
        }
        break;
    case DISTVM_RUN_PAUSE:
        distvm_guest_pause(s, m->run.virtual_ns);
        break;
    case DISTVM_RUN_UNPAUSE:
        guest_resume(s, m);
        break;
    case DISTVM_RUN_CONT:
        if (runstate_is_running()) {
            apply_clocks(s, m);         /* the guest's first start */
        } else if (!vm_prepare_start(false)) {
            apply_clocks(s, m);
            resume_all_vcpus();
        }
        break;
    case DISTVM_RUN_RESET:
        reset_own_vcpus(s);
        break;
    case DISTVM_RUN_HOLD:
        distvm_hold_vcpus(true);
        distvm_runstate_send(s, BIT(distvm_home(s)), DISTVM_RUN_HELD,
                             m->run.virtual_ns);
        break;
    case DISTVM_RUN_RELEASE:
        distvm_hold_vcpus(false);
        break;
    case DISTVM_RUN_STOPPED:
    case DISTVM_RUN_HELD:
    case DISTVM_RUN_PAUSED:
    case DISTVM_RUN__MAX:
        g_assert_not_reached();
    }
    g_free(m);
}

/*
 * Home, in the main loop: a node stopped its vCPUs at these clocks, or
 * holds them for a join.
 */
static void node_stopped_bh(void *opaque)
{
    DistvmRunMsg *m = opaque;
    DistvmRun *r = distvm_state()->run;

    if (m->run.action == DISTVM_RUN_HELD) {
        distvm_join_node_held(distvm_state(), m->from, m->run.virtual_ns);
    } else {
        r->nodes_stopped_ns = MAX(r->nodes_stopped_ns,
                                  (int64_t)m->run.virtual_ns);
        r->nodes_stopped_ticks = MAX(r->nodes_stopped_ticks,
                                     (int64_t)m->run.guest_ticks);
        if (m->run.action == DISTVM_RUN_PAUSED) {
            distvm_epoch_node_paused(distvm_state(), m->from,
                                     m->run.host_ns);
        }
    }
    g_free(m);
}

/*
 * With the BQL: hold this node's vCPUs, or let them go.  A held vCPU
 * does not run, whatever stops and resumes the guest meanwhile (a "stop"
 * and "cont" of the user's take effect as usual, and a "cont" runs it
 * once it is let go); its thread still does queued work.  Holding waits
 * until the running ones left the guest; the guest's clocks go on.  A
 * join and an epoch may hold them at once: they go once both let go.
 */
void distvm_hold_vcpus(bool hold)
{
    static unsigned holds;
    CPUState *cpu;

    if (hold ? holds++ : !holds || --holds) {
        return;
    }
    CPU_FOREACH(cpu) {
        qatomic_set(&cpu->held, hold);
        if (!hold) {
            qemu_cpu_kick(cpu);
        }
    }
    if (hold && runstate_is_running()) {
        /* Each answers the stop, then sleeps, held, once resumed */
        pause_all_vcpus();
        resume_all_vcpus();
    }
}

/*
 * A node, in the main loop, once the cluster formed: start its guest,
 * with home's clocks if they came already.
 */
void distvm_runstate_start(DistvmState *s)
{
    if (!vm_prepare_start(false)) {
        if (s->run->have_pending_clocks) {
            apply_clocks(s, &s->run->pending_clocks);
        }
        resume_all_vcpus();
    }
    s->run->have_pending_clocks = false;
}

/*
 * Home decides, the others report (distvm_wire_check_role()).  Its own
 * main-loop call, not the handler's: the clocks are read as it arrives.
 */
static bool run_state_received(DistvmState *s, const DistvmMsg *msg)
{
    DistvmRunMsg *m = g_new0(DistvmRunMsg, 1);

    m->from = msg->hdr.src;
    m->received_ns = get_clock();
    m->received_ticks = cpu_get_host_ticks();
    m->run = msg->u.run;
    /* Run state changes take the BQL: the main loop does them. */
    distvm_main_loop_call(s, msg->hdr.src,
                          distvm_is_home(s) ? node_stopped_bh : run_state_bh,
                          m);
    return true;
}

static const DistvmMsgHandler runstate_handlers[] = {
    { DISTVM_MSG_RUN_STATE, .receive = run_state_received },
};

void distvm_runstate_init(DistvmState *s)
{
    s->run = g_new0(DistvmRun, 1);
    s->run->host_id = read_host_id();
    distvm_msg_handlers_register(s, runstate_handlers,
                                 ARRAY_SIZE(runstate_handlers));
    qemu_add_vm_change_state_handler(epoch_pause_state_change, s);
    if (distvm_is_home(s)) {
        distvm_runstate_take_home(s);
    }
}

/*
 * This node is home (from the start, or in its lost home's place): the
 * guest's run state changes, resets and wake-ups go from here
 */
void distvm_runstate_take_home(DistvmState *s)
{
    qemu_add_vm_change_state_handler(distvm_vm_state_change, s);
    qemu_register_reset(distvm_home_reset, s);
    s->run->suspend.notify = distvm_home_suspend;
    qemu_register_suspend_notifier(&s->run->suspend);
    s->run->wakeup.notify = distvm_home_wakeup;
    qemu_register_wakeup_notifier(&s->run->wakeup);
}
