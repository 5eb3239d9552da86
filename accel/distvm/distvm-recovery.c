/*
 * distvm: the other nodes take a lost node's part over
 *
 * With replicas=1 (distvm-epoch.c), a node other than home that is lost
 * (its connection ends, it is silent for peer-timeout, or another node
 * says so) no longer ends the cluster.  The others take its pages and
 * vCPUs over and roll the guest back to the last committed epoch:
 *
 * 1. Every node that learns of the loss (distvm_recovery_node_lost())
 *    counts the node out of the cluster, cuts its connection, serves its
 *    own faults meanwhile (distvm_ram_recover_enter(): a vCPU may wait
 *    for a page the lost node held or was asked for, and must stop for
 *    the pause) and tells home (LOST).  Home tells every node (RECOVER),
 *    and pauses the guest as for an epoch, the epoch under way abandoned.
 * 2. Once every node paused, home sends SETTLE.  Each node waits until
 *    none of its vCPUs is on its way out, forgets the page requests
 *    under way, hands what the lost node managed to the node that kept
 *    its copies (its replica; home with redundancy=parity, which rebuilds
 *    them meanwhile), and tells every other node that no page
 *    message of its comes any more (MARK).
 * 3. Once a node has every MARK, it sends each page's manager the pages
 *    it holds (EPOCH_PAGES, HELD), then HELD_DONE to every node.
 * 4. Once a node has every HELD_DONE, it rebuilds the directory entries
 *    of the pages it manages from what the holders said; a page no node
 *    holds is its own from now on, to be restored.  It tells home which
 *    vCPUs it runs (RUNS), then READY.
 * 5. Home places each vCPU that no node runs (the lost node's, and one
 *    that was on its way to it) on the node that runs the fewest, tells
 *    every node where each vCPU runs (PLACE), and rolls the guest back
 *    to the last committed epoch as if the lost node's copies were gone
 *    (distvm-epoch.c): each node restores the pages it holds that may
 *    have changed since (and those it took), from the copies the nodes
 *    keep; the nodes load the states of the vCPUs they run, home the
 *    devices, those placed on other nodes included, which it runs from
 *    then on if their node was the one lost, and sends back otherwise
 *    (distvm-placed-state.c); what the guest sent since is dropped, and
 *    it runs again.  Home emits DISTVM_RECOVERED.
 *
 * A node that the cluster cannot do without (home, a node that holds
 * resident RAM), a loss before any epoch committed,
 * during a join, a drain or a rollback, or a second loss before the next
 * commit still ends the cluster.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-events-distvm.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "hw/core/cpu.h"
#include "system/runstate.h"
#include "distvm-internal.h"
#include "distvm-ram.h"
#include "trace.h"

/* Where home is in a takeover */
typedef enum RecoveryStage {
    RECOVERY_NONE,
    RECOVERY_PAUSING,           /* the guest pauses */
    RECOVERY_SETTLING,          /* READY awaited from @waiting */
    RECOVERY_ROLLING,           /* vCPUs placed, the guest rolls back */
} RecoveryStage;

/* RUNS' @bytes: the vCPU's moves seen on its sender, and whether it runs */
#define RECOVERY_RUNS_HERE      (1ull << 63)

struct DistvmRecovery {
    QemuMutex lock;             /* the fields up to @held_done */
    uint32_t lost;              /* atomic: the node taken over, or none */
    /*
     * The thread that set @lost is still counting it out: another that
     * learns of the same loss waits on @entered until it is done
     */
    bool entering;
    QemuCond entered;
    uint32_t homes_lost;        /* atomic: the nodes lost as home */
    char *why;
    uint32_t marks;             /* nodes whose MARK came */
    uint32_t held_done;         /* nodes whose HELD_DONE came */
    int64_t lost_ns;            /* when this node learnt of the loss */

    /* Set with @lost, then in the main loop */
    uint64_t epoch;             /* the committed epoch it goes back to */
    bool settled;               /* this node sent its MARKs */
    bool reported;              /* ... and what it holds */
    bool rebuilt;

    /* Home, in the main loop */
    RecoveryStage stage;
    int64_t begun_ns;
    uint32_t waiting;           /* the nodes whose READY is due */
    bool rebuilding;            /* the lost node's copies, from the parity */
    uint32_t *runs;             /* [nr_vcpus]: the node that runs each */
    uint64_t *moves;            /* [nr_vcpus]: the most moves seen of each */
    uint64_t newest;            /* the newest epoch a node saw committed */
    uint64_t recoveries;
    uint64_t last_ms;
};

static void recovery_send(DistvmState *s, uint32_t to, DistvmEpochStep step,
                          uint32_t node, uint64_t bytes, uint32_t vcpus)
{
    distvm_epoch_send(s, to, step, node, s->recovery->epoch, bytes, vcpus);
}

/* Send @step about @lost to every node present, this one too if @self */
static void recovery_broadcast(DistvmState *s, DistvmEpochStep step,
                               uint32_t lost, bool self)
{
    uint32_t present = qatomic_read(&s->present);

    for (uint32_t n = 0; n < s->nodes; n++) {
        if ((present & BIT(n)) && (self || n != s->node_id)) {
            recovery_send(s, n, step, lost, 0, 0);
        }
    }
}

/*
 * Why home's standby cannot take the place of home, lost, or NULL.  Two
 * homes must never both run the guest.  Home left alone with the other
 * nodes lost goes on by itself, so its standby alone must not: a
 * standby takes home's place only with another node.  With more nodes,
 * a takeover ends only once every node left answered, and a commit
 * needs every node: of a cluster cut in two by a partition, a side that
 * has not all the others (home's or not) finds a second node lost before
 * the next commit and ends (and what a home there held of the guest's
 * output is never sent).
 */
static const char *recovery_home_refusal(DistvmState *s, uint32_t home)
{
    uint32_t present = qatomic_read(&s->present);

    if (ctpop32(present & ~BIT(home)) < 2) {
        return "it is the home node, and its standby would be left alone "
               "(as a home cut off from it would go on)";
    }
    return distvm_epoch_home_refusal(s);
}

/* Why the cluster cannot take @node's part over, or NULL if it can */
static const char *recovery_refusal(DistvmState *s, uint32_t node)
{
    if (node == distvm_home(s)) {
        const char *refusal = recovery_home_refusal(s, node);

        if (refusal) {
            return refusal;
        }
    }
    if (!distvm_node_present(s, node)) {
        return "it was not part of the cluster";
    }
    if (qatomic_read(&s->state) != DISTVM_CLUSTER_STATE_RUNNING) {
        return "the cluster is not running";
    }
    if (qatomic_read(&s->joining) != UINT32_MAX ||
        qatomic_read(&s->draining) != UINT32_MAX) {
        return "a node was joining or being drained";
    }
    if (!distvm_epoch_committed(s)) {
        return "no checkpoint epoch was committed yet";
    }
    /*
     * The pairs of a card that it serves go to the card's node, and the
     * devices placed on it to home (distvm_devices_go_home()); a card
     * whose pairs several nodes serve runs on home, and goes to its
     * standby with the rest of home's part
     */
    if (distvm_netqueues_changed(s)) {
        return "the guest changed the setting of a card whose queue pairs "
               "several nodes serve since the last commit, and the other "
               "nodes' copies of the card do not roll back";
    }
    for (uint32_t i = 0; i < distvm_residency_count(s); i++) {
        if (s->resident[i].node == node) {
            return "it holds resident RAM";
        }
    }
    if (distvm_is_home(s)) {
        return distvm_epoch_recover_refusal(s, node);
    }
    return NULL;
}

/*
 * With @r->lock, home @home lost: its standby takes its place.  Before
 * this node counts it as home, it tells it (LOST) or, as the standby,
 * the others (RECOVER): whatever it sends them from then on comes after
 * that, which makes each count the standby as home if it did not yet
 * (distvm_recovery_home_news()).  And after @lost: no vCPU's device
 * access goes to the standby until the guest rolled back (distvm-io.c).
 */
static void recovery_take_home(DistvmState *s, uint32_t home)
{
    uint32_t standby = distvm_replica_of(s, home);

    qatomic_or(&s->recovery->homes_lost, BIT(home));
    if (standby == s->node_id) {
        recovery_broadcast(s, DISTVM_EPOCH_RECOVER, home, false);
    } else {
        recovery_send(s, standby, DISTVM_EPOCH_LOST, home, 0, 0);
    }
    smp_wmb();  /* @lost, then home: see io_destination() */
    qatomic_set(&s->home_node, standby);
}

/* Whether a lost node is being taken over: no vCPU moves meanwhile */
bool distvm_recovery_busy(DistvmState *s)
{
    return s->recovery && qatomic_read(&s->recovery->lost) != UINT32_MAX;
}

/*
 * The watch thread, whatever the main loop does: a takeover that did
 * not end within 4 times peer-timeout (home waits twice that for each of
 * its steps) never will; this node ends.
 */
void distvm_recovery_watch(DistvmState *s, int64_t now)
{
    DistvmRecovery *r = s->recovery;
    g_autofree char *why = NULL;
    uint32_t lost;

    if (!r) {
        return;
    }
    qemu_mutex_lock(&r->lock);
    lost = r->lost;
    if (lost != UINT32_MAX &&
        now - r->lost_ns > 4 * (int64_t)s->peer_timeout *
                           NANOSECONDS_PER_SECOND) {
        why = g_strdup_printf("taking node %" PRIu32 "'s part over did not "
                              "end within 4 times peer-timeout=%" PRIu32
                              " s", lost, s->peer_timeout);
    }
    qemu_mutex_unlock(&r->lock);
    if (why) {
        distvm_fatal_node_lost(s, s->node_id, why);
    }
}

static void recovery_lost_main(void *opaque);

/* This thread counts a lost node out (it may learn of the loss again) */
static __thread bool counting_out;

/*
 * In any thread, before it acts on the loss of @node: if another thread
 * of this node is counting @node out, wait until it is done.  Else this
 * thread would take the loss as known (@node no longer present) while
 * this node still serves page messages as usual, and go on to what
 * follows: home's SETTLE, then the pages the others hold, which only a
 * node that counted the lost node out takes.
 */
void distvm_recovery_wait_counted_out(DistvmState *s, uint32_t node)
{
    DistvmRecovery *r = s->recovery;

    if (!r || counting_out) {
        return;
    }
    qemu_mutex_lock(&r->lock);
    while (r->entering && r->lost == node) {
        qemu_cond_wait(&r->entered, &r->lock);
    }
    qemu_mutex_unlock(&r->lock);
}

/*
 * In any thread: @node is lost (@why).  Whether the cluster takes its
 * part over: if not, the caller ends this node.
 */
bool distvm_recovery_node_lost(DistvmState *s, uint32_t node,
                               const char *why)
{
    DistvmRecovery *r = s->recovery;
    const char *refusal;
    bool lost_home;

    /* Without checkpoint epochs (replicas=0), a loss ends the cluster */
    if (!r || !s->epoch || node == s->node_id || node >= s->nodes) {
        return false;
    }
    qemu_mutex_lock(&r->lock);
    if (r->lost == node) {
        qemu_mutex_unlock(&r->lock);
        /* Another thread counts it out: once it is done */
        distvm_recovery_wait_counted_out(s, node);
        return true;
    }
    refusal = r->lost != UINT32_MAX ? "another node is being taken over" :
              recovery_refusal(s, node);
    if (refusal) {
        qemu_mutex_unlock(&r->lock);
        error_report("distvm: node %" PRIu32 "'s part cannot be taken over: "
                     "%s", node, refusal);
        return false;
    }
    lost_home = node == distvm_home(s);
    qatomic_set(&r->lost, node);
    g_free(r->why);
    r->why = g_strdup(why);
    r->marks = r->held_done = 0;
    r->lost_ns = get_clock();
    /*
     * Here, not in recovery_lost_main(): once @lost is set, another
     * thread may take home's RECOVER as known and queue its SETTLE's
     * main-loop part before this thread queues recovery_lost_main()
     */
    r->epoch = distvm_epoch_committed(s);
    r->settled = r->reported = r->rebuilt = false;
    r->entering = counting_out = true;
    if (lost_home) {
        recovery_take_home(s, node);
    }
    qemu_mutex_unlock(&r->lock);
    trace_distvm_recover_lost(node, why);

    /* Before it counts as gone: a COMMIT would drop its copies */
    distvm_epoch_keep_lost(s, node);
    qemu_mutex_lock(&s->lock);
    qatomic_set(&s->left, s->left | BIT(node));
    qatomic_set(&s->present, s->present & ~BIT(node));
    qemu_mutex_unlock(&s->lock);
    distvm_net_cut(s, node);
    /*
     * The vCPUs stop now, not at the pause, and before the faults waiting
     * for the lost node end: what they read from then on may be a
     * stand-in for a page it held.  The rollback undoes what they do with
     * it; a reset or shutdown they ask for meanwhile is dropped
     * (recovery_drops_request()).
     */
    WITH_RCU_READ_LOCK_GUARD() {
        CPUState *cpu;

        CPU_FOREACH(cpu) {
            qatomic_set(&cpu->held, true);
            qemu_cpu_kick(cpu);
        }
    }
    distvm_io_fail_waits_on(s, node);
    distvm_tlb_flush_fail_waits_on(s, node);
    distvm_ram_recover_enter(s);
    distvm_flow_forget(s, node);
    qemu_mutex_lock(&r->lock);
    r->entering = counting_out = false;
    qemu_cond_broadcast(&r->entered);
    qemu_mutex_unlock(&r->lock);
    distvm_main_loop_call(s, s->node_id, recovery_lost_main, s);
    return true;
}

/* In the main loop, once per loss */
static void recovery_lost_main(void *opaque)
{
    DistvmState *s = opaque;
    DistvmRecovery *r = s->recovery;
    uint32_t lost;
    g_autofree char *why = NULL;
    bool lost_home;

    qemu_mutex_lock(&r->lock);
    lost = r->lost;
    why = g_strdup(r->why);
    qemu_mutex_unlock(&r->lock);
    lost_home = distvm_recovery_was_home(s, lost);

    warn_report("distvm: lost node %" PRIu32 " (%s); the other nodes take "
                "its part over from checkpoint epoch %" PRIu64, lost, why,
                r->epoch);
    qapi_event_send_distvm_node_lost(lost, why);
    distvm_devices_config_waits_fail(s);
    if (!distvm_is_home(s)) {
        /* Home's standby, in its place, was told already */
        if (!lost_home) {
            recovery_send(s, distvm_home(s), DISTVM_EPOCH_LOST, lost, 0, 0);
        }
        return;
    }
    if (lost_home) {
        /* This node, its standby, is home now */
        warn_report("distvm: node %" PRIu32 " takes the place of the home "
                    "node", s->node_id);
        distvm_runstate_take_home(s);
        distvm_epoch_take_home(s);
    }
    r->begun_ns = get_clock();
    r->waiting = 0;
    r->newest = r->epoch;
    r->stage = RECOVERY_PAUSING;
    g_free(r->runs);
    r->runs = g_new(uint32_t, s->nr_vcpus);
    memset(r->runs, 0xff, s->nr_vcpus * sizeof(uint32_t));
    g_free(r->moves);
    r->moves = g_new0(uint64_t, s->nr_vcpus);
    /* Before the pause: each node serves its faults before it pauses */
    if (!lost_home) {
        recovery_broadcast(s, DISTVM_EPOCH_RECOVER, lost, false);
    }
    distvm_epoch_recover(s, lost);
}

/* A page this node holds: its manager is told */
typedef struct HeldSender {
    DistvmState *s;
    uint64_t epoch;
    GByteArray *msgs[DISTVM_MAX_NODES];     /* being filled, by manager */
    uint32_t blocks[DISTVM_MAX_NODES];
} HeldSender;

static void held_flush(HeldSender *hs, uint32_t to)
{
    if (hs->msgs[to]) {
        distvm_wire_end(hs->msgs[to]);
        distvm_send(hs->s, to, hs->msgs[to]);
        g_byte_array_unref(hs->msgs[to]);
        hs->msgs[to] = NULL;
    }
}

static void held_page(void *opaque, uint32_t manager, uint32_t block,
                      uint64_t page, bool owned)
{
    HeldSender *hs = opaque;
    uint32_t flags = DISTVM_EPOCH_PAGE_HELD |
                     (owned ? DISTVM_EPOCH_PAGE_OWNED : 0);

    if (hs->msgs[manager] && hs->blocks[manager] != block) {
        held_flush(hs, manager);
    }
    if (!hs->msgs[manager]) {
        hs->msgs[manager] = g_byte_array_new();
        hs->blocks[manager] = block;
        distvm_wire_epoch_pages_begin(hs->msgs[manager], hs->s->node_id,
                                      hs->epoch, block);
    }
    if (distvm_wire_epoch_pages_add(hs->msgs[manager], page, flags, NULL) ==
        DISTVM_EPOCH_PAGES_MAX) {
        held_flush(hs, manager);
    }
}

/*
 * Every node stopped its page messages: tell each page's manager that
 * this node holds it, then every node that all was said.
 */
static void recovery_report(DistvmState *s)
{
    DistvmRecovery *r = s->recovery;
    HeldSender hs = { .s = s, .epoch = r->epoch };

    r->reported = true;
    distvm_ram_recover_held(s, held_page, &hs);
    for (uint32_t n = 0; n < s->nodes; n++) {
        held_flush(&hs, n);
    }
    recovery_broadcast(s, DISTVM_EPOCH_HELD_DONE, r->lost, true);
}

/* Whether every node present sent what @seen counts */
static bool recovery_all(DistvmState *s, uint32_t seen)
{
    uint32_t present = qatomic_read(&s->present);

    return (seen & present) == present;
}

/*
 * SETTLE, in the main loop, the guest paused: once no vCPU of this node
 * is on its way out, nothing of the directory is under way; then MARK.
 */
static void recovery_settle(DistvmState *s)
{
    DistvmRecovery *r = s->recovery;
    int64_t deadline = get_clock() +
                       (int64_t)s->peer_timeout * NANOSECONDS_PER_SECOND;
    bool sending = true;
    bool all;

    if (r->settled) {
        return;
    }
    bql_unlock();
    while (sending && get_clock() < deadline) {
        sending = false;
        /* Not CPU_FOREACH: without the BQL; one never plugged sends none */
        for (uint32_t i = 0; i < s->nr_vcpus; i++) {
            sending |= distvm_vcpu_sending(s, i);
        }
        if (sending) {
            g_usleep(1000);
        }
    }
    bql_lock();
    if (sending) {
        distvm_fatal_node_lost(s, s->node_id, "a vCPU could not leave this "
                               "node while the cluster took a lost node's "
                               "part over");
        return;
    }
    distvm_ram_recover_settle(s, r->lost, distvm_epoch_keeper_of(s, r->lost));
    r->settled = true;
    recovery_broadcast(s, DISTVM_EPOCH_MARK, r->lost, false);
    qemu_mutex_lock(&r->lock);
    r->marks |= BIT(s->node_id);
    all = recovery_all(s, r->marks);
    qemu_mutex_unlock(&r->lock);
    if (all) {
        recovery_report(s);
    }
}

/*
 * Every node's HELD came: rebuild, then tell home the moves of each vCPU
 * seen here and which run here
 */
static void recovery_rebuild(DistvmState *s)
{
    DistvmRecovery *r = s->recovery;
    CPUState *cpu;

    r->rebuilt = true;
    /* A COMMIT taken since the loss: the newest this node has */
    r->epoch = distvm_epoch_committed(s);
    distvm_ram_recover_rebuild(s);
    CPU_FOREACH(cpu) {
        uint32_t i = cpu->cpu_index;

        bool runs;
        uint64_t moves = distvm_vcpu_seen(s, i, &runs);

        recovery_send(s, distvm_home(s), DISTVM_EPOCH_RUNS, r->lost,
                      moves | (runs ? RECOVERY_RUNS_HERE : 0), i);
    }
    recovery_send(s, distvm_home(s), DISTVM_EPOCH_READY, r->lost, 0, 0);
}

/* Home: every node settled: SETTLE, then READY awaited from each */
void distvm_recovery_settle_all(DistvmState *s)
{
    DistvmRecovery *r = s->recovery;

    r->waiting = qatomic_read(&s->present);
    r->stage = RECOVERY_SETTLING;
    r->rebuilding = distvm_epoch_parity_rebuild(s, r->lost, r->epoch);
    recovery_broadcast(s, DISTVM_EPOCH_SETTLE, r->lost, false);
    recovery_settle(s);
}

/*
 * Home, every node READY: each vCPU no node runs goes to the node that
 * runs the fewest (of those it may run on, if any), every node is told
 * where each vCPU runs, as a move newer than any seen (so that its next
 * move is taken everywhere), and the guest rolls back.  Faults go to the
 * pages' managers again: every node rebuilt its part of the directory.
 */
static void recovery_place(DistvmState *s)
{
    DistvmRecovery *r = s->recovery;
    uint32_t present = qatomic_read(&s->present);
    uint32_t count[DISTVM_MAX_NODES] = {};
    CPUState *cpu;

    CPU_FOREACH(cpu) {
        if (r->runs[cpu->cpu_index] < s->nodes) {
            count[r->runs[cpu->cpu_index]]++;
        }
    }
    CPU_FOREACH(cpu) {
        uint32_t i = cpu->cpu_index;
        uint32_t allowed = qatomic_read(&s->vcpu_allowed[i]) & present;
        uint32_t best = UINT32_MAX;

        if (r->runs[i] < s->nodes) {
            continue;
        }
        for (uint32_t n = 0; n < s->nodes; n++) {
            if ((present & BIT(n)) && (!allowed || (allowed & BIT(n))) &&
                (best == UINT32_MAX || count[n] < count[best])) {
                best = n;
            }
        }
        r->runs[i] = best;
        count[best]++;
        trace_distvm_recover_place(i, best);
    }
    r->stage = RECOVERY_ROLLING;
    distvm_ram_recover_end(s);
    CPU_FOREACH(cpu) {
        uint32_t i = cpu->cpu_index;

        for (uint32_t n = 0; n < s->nodes; n++) {
            if ((present & BIT(n)) && n != s->node_id) {
                recovery_send(s, n, DISTVM_EPOCH_PLACE, r->runs[i],
                              r->moves[i] + 1, i);
            }
        }
        distvm_vcpu_place(s, i, r->runs[i], r->moves[i] + 1);
    }
    distvm_placement_notify(s, DISTVM_PLACEMENT_VCPU);
    r->epoch = MAX(r->newest, distvm_epoch_committed(s));
    distvm_epoch_commit_late(s, r->epoch);
    distvm_epoch_recover_rollback(s);
}

/* Home: with redundancy=parity, the lost node's copies are rebuilt */
void distvm_recovery_parity_rebuilt(DistvmState *s)
{
    DistvmRecovery *r = s->recovery;

    r->rebuilding = false;
    if (r->stage == RECOVERY_SETTLING && !r->waiting) {
        recovery_place(s);
    }
}

/*
 * Home, the guest rolled back and about to run again: the lost node's
 * part is taken over.  Another node may be lost from now on.
 */
void distvm_recovery_done(DistvmState *s)
{
    DistvmRecovery *r = s->recovery;
    uint32_t lost;

    r->last_ms = (get_clock() - r->begun_ns) / SCALE_MS;
    r->recoveries++;
    r->stage = RECOVERY_NONE;
    qemu_mutex_lock(&r->lock);
    lost = r->lost;
    qatomic_set(&r->lost, UINT32_MAX);
    qemu_mutex_unlock(&r->lock);
    trace_distvm_recover_done(lost, r->epoch, r->last_ms);
    info_report("distvm: node %" PRIu32 "'s part was taken over; the guest "
                "goes on from checkpoint epoch %" PRIu64 " after %" PRIu64
                " ms", lost, r->epoch, r->last_ms);
    qapi_event_send_distvm_recovered(lost, r->epoch, r->last_ms);
    recovery_broadcast(s, DISTVM_EPOCH_RECOVERED, lost, false);
}

/* The node this node takes over, or UINT32_MAX */
uint32_t distvm_recovery_lost(DistvmState *s)
{
    return s->recovery ? qatomic_read(&s->recovery->lost) : UINT32_MAX;
}

void distvm_recovery_stats(DistvmState *s, uint64_t *count, uint64_t *last_ms)
{
    *count = s->recovery ? s->recovery->recoveries : 0;
    *last_ms = s->recovery ? s->recovery->last_ms : 0;
}

/* ---- messages: EPOCH's steps of a recovery, and EPOCH_PAGES' HELD ---- */

/* In the receive thread: whether @msg is about the node being taken over */
static bool recovery_msg_ours(DistvmState *s, const DistvmMsg *msg)
{
    DistvmRecovery *r = s->recovery;
    bool ours;

    qemu_mutex_lock(&r->lock);
    ours = r->lost != UINT32_MAX && msg->u.epoch.node == r->lost;
    qemu_mutex_unlock(&r->lock);
    if (!ours) {
        distvm_msg_refused(s, msg->hdr.src, "EPOCH step %" PRIu32 " about "
                           "node %" PRIu32 ", which is not being taken "
                           "over", msg->u.epoch.step, msg->u.epoch.node);
    }
    return ours;
}

/*
 * In the receive thread, before the role of @msg's sender is checked:
 * the standby, or another node, found home lost (LOST to the standby,
 * RECOVER from it) before this node did.  Home's place is taken here
 * first, or this node ends, so that the new home's messages pass.
 */
void distvm_recovery_home_news(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgEpoch *m = &msg->u.epoch;
    uint32_t home = distvm_home(s);
    g_autofree char *why = NULL;

    if (!s->recovery || msg->hdr.type != DISTVM_MSG_EPOCH ||
        (m->step != DISTVM_EPOCH_LOST && m->step != DISTVM_EPOCH_RECOVER) ||
        m->node != home || msg->hdr.src == home ||
        home == s->node_id) {
        return;
    }
    /* From a node counted out since it was sent: it is the one */
    if (qatomic_read(&s->left) & BIT(msg->hdr.src)) {
        return;
    }
    why = g_strdup_printf("node %" PRIu32 " lost it", msg->hdr.src);
    distvm_fatal_node_lost(s, home, why);
}

/*
 * Whether @src was home and lost: what it asked of this node's main loop
 * before, and that did not run yet, is not done (its standby may be home
 * by now, and ask again)
 */
bool distvm_recovery_was_home(DistvmState *s, uint32_t src)
{
    return s->recovery && src < DISTVM_MAX_NODES &&
           (qatomic_read(&s->recovery->homes_lost) & BIT(src));
}

/* In the receive thread; whether the main loop takes it too */
bool distvm_recovery_received(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgEpoch *m = &msg->u.epoch;
    DistvmRecovery *r = s->recovery;
    g_autofree char *why = NULL;

    trace_distvm_recover_step(m->step, msg->hdr.src);
    switch (m->step) {
    case DISTVM_EPOCH_LOST:
    case DISTVM_EPOCH_RECOVER:
        /* From a node counted out since it was sent: it is the one */
        if (qatomic_read(&s->left) & BIT(msg->hdr.src)) {
            return false;
        }
        why = g_strdup_printf("node %" PRIu32 " lost it", msg->hdr.src);
        distvm_fatal_node_lost(s, m->node, why);
        return false;
    case DISTVM_EPOCH_MARK:
        /* May come before home's RECOVER, on another connection */
        if (qatomic_read(&r->lost) == UINT32_MAX) {
            why = g_strdup_printf("node %" PRIu32 " lost it", msg->hdr.src);
            distvm_fatal_node_lost(s, m->node, why);
        }
        break;
    case DISTVM_EPOCH_RECOVERED:
        return true;
    case DISTVM_EPOCH_PLACE:    /* its @node: where the vCPU runs */
        if (m->vcpus >= s->nr_vcpus || !qemu_get_cpu(m->vcpus) ||
            !distvm_node_present(s, m->node) ||
            qatomic_read(&r->lost) == UINT32_MAX) {
            distvm_msg_refused(s, msg->hdr.src, "EPOCH PLACE of vCPU %"
                               PRIu32 " on node %" PRIu32, m->vcpus,
                               m->node);
            return false;
        }
        return true;
    default:
        break;
    }
    if (!recovery_msg_ours(s, msg)) {
        return false;
    }
    switch (m->step) {
    case DISTVM_EPOCH_MARK:
        qemu_mutex_lock(&r->lock);
        r->marks |= BIT(msg->hdr.src);
        qemu_mutex_unlock(&r->lock);
        return true;
    case DISTVM_EPOCH_HELD_DONE:
        qemu_mutex_lock(&r->lock);
        r->held_done |= BIT(msg->hdr.src);
        qemu_mutex_unlock(&r->lock);
        return true;
    case DISTVM_EPOCH_RUNS:
    case DISTVM_EPOCH_READY:
        if (!distvm_is_home(s) || m->vcpus >= s->nr_vcpus ||
            !qemu_get_cpu(m->vcpus)) {
            distvm_msg_refused(s, msg->hdr.src, "EPOCH RUNS or READY not "
                               "for a vCPU of this home node");
            return false;
        }
        return true;       /* their stage: recovery_main_loop() */
    default:
        return true;            /* SETTLE */
    }
}

void distvm_recovery_main_loop(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgEpoch *m = &msg->u.epoch;
    DistvmRecovery *r = s->recovery;
    bool all;

    switch (m->step) {
    case DISTVM_EPOCH_SETTLE:
        recovery_settle(s);
        break;
    case DISTVM_EPOCH_MARK:
        qemu_mutex_lock(&r->lock);
        all = recovery_all(s, r->marks);
        qemu_mutex_unlock(&r->lock);
        if (r->settled && !r->reported && all) {
            recovery_report(s);
        }
        break;
    case DISTVM_EPOCH_HELD_DONE:
        qemu_mutex_lock(&r->lock);
        all = recovery_all(s, r->held_done);
        qemu_mutex_unlock(&r->lock);
        if (r->reported && !r->rebuilt && all) {
            recovery_rebuild(s);
        }
        break;
    case DISTVM_EPOCH_RUNS:
    case DISTVM_EPOCH_READY:
        if (r->stage != RECOVERY_SETTLING ||
            !(r->waiting & BIT(msg->hdr.src))) {
            distvm_msg_refused(s, msg->hdr.src, "EPOCH RUNS or READY of a "
                               "node that home does not wait for");
            return;
        }
        /* The committed epoch it goes back to, as it knows it */
        r->newest = MAX(r->newest, m->epoch);
        if (m->step == DISTVM_EPOCH_READY) {
            r->waiting &= ~BIT(msg->hdr.src);
            if (!r->waiting && !r->rebuilding) {
                recovery_place(s);
            }
            return;
        }
        r->moves[m->vcpus] = MAX(r->moves[m->vcpus],
                                 m->bytes & ~RECOVERY_RUNS_HERE);
        if (!(m->bytes & RECOVERY_RUNS_HERE)) {
            return;
        }
        if (r->runs[m->vcpus] != UINT32_MAX) {
            g_autofree char *why = g_strdup_printf(
                "nodes %" PRIu32 " and %" PRIu32 " both run vCPU %" PRIu32,
                r->runs[m->vcpus], msg->hdr.src, m->vcpus);

            distvm_fatal_node_lost(s, s->node_id, why);
            return;
        }
        r->runs[m->vcpus] = msg->hdr.src;
        break;
    case DISTVM_EPOCH_PLACE:
        distvm_ram_recover_end(s);
        distvm_vcpu_place(s, m->vcpus, m->node, m->bytes);
        distvm_placement_notify(s, DISTVM_PLACEMENT_VCPU);
        break;
    case DISTVM_EPOCH_RECOVERED:
        qemu_mutex_lock(&r->lock);
        qatomic_set(&r->lost, UINT32_MAX);
        qemu_mutex_unlock(&r->lock);
        break;
    default:
        break;
    }
}

/* EPOCH_PAGES of kind HELD, in the receive thread */
void distvm_recovery_held_received(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgEpochPages *ep = &msg->u.epoch_pages;
    const uint8_t *pos = ep->entries;

    for (uint32_t i = 0; i < ep->count; i++) {
        bool owned = ldl_le_p(pos + 8) & DISTVM_EPOCH_PAGE_OWNED;
        uint64_t page;

        distvm_wire_epoch_page(&pos, &page);
        if (!distvm_ram_recover_holder(s, msg->hdr.src, ep->block, page,
                                       owned)) {
            distvm_msg_refused(s, msg->hdr.src, "EPOCH_PAGES: page %" PRIu64
                               " of RAMBlock %" PRIu32 " held, which this "
                               "node does not manage or no node is taken "
                               "over", page, ep->block);
            return;
        }
    }
}

/*
 * qemu_system_request_hook, in any thread: while a lost node's part is
 * taken over, the guest's requests to reset or shut down are dropped.
 * Its vCPUs may have run on stand-ins for the lost node's pages (a
 * zeroed IDT triple faults), and the rollback takes the guest back to
 * before whatever they asked for since the last commit.  (A panic stops
 * the guest before it asks: not one of them.)
 */
static bool recovery_drops_request(ShutdownCause reason)
{
    DistvmState *s = distvm_state();

    if ((reason != SHUTDOWN_CAUSE_GUEST_SHUTDOWN &&
         reason != SHUTDOWN_CAUSE_GUEST_RESET) ||
        !s || !distvm_recovery_busy(s)) {
        return false;
    }
    trace_distvm_recover_request_dropped(ShutdownCause_str(reason),
                                         current_cpu ?
                                         current_cpu->cpu_index : -1);
    return true;
}

void distvm_recovery_init(DistvmState *s)
{
    DistvmRecovery *r = g_new0(DistvmRecovery, 1);

    qemu_mutex_init(&r->lock);
    qemu_cond_init(&r->entered);
    qatomic_set(&r->lost, UINT32_MAX);
    s->recovery = r;
    qemu_system_request_hook = recovery_drops_request;
}
