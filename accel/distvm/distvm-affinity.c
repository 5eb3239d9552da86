/*
 * distvm: where each vCPU's remote data comes from, and the placement
 * policy that sends vCPUs to it
 *
 * Each node counts, for every vCPU that runs on it, the read and write
 * misses the vCPU took by the node that sent the page's data, its
 * upgrades (which bring no data), and the device accesses it sent to the
 * home node: totals, and rates over the last window.  Faults that no
 * vCPU took (a device model's DMA, the monitor, qtest) are counted apart,
 * so that the figures add up to the node's fault counts.
 *
 * Under policy=affinity, once a window each node looks at the vCPUs it
 * runs and moves at most one of them to the node that sends it the most
 * data, when (a) that node sends at least DISTVM_POLICY_MIN_RATE pages a
 * second, twice as many as every other node together, (b) the time the
 * vCPU would save over its minimum stay beats what the move costs, and
 * (c) the vCPU has stayed where it is long enough: DISTVM_POLICY_STAY_S
 * after any move, DISTVM_POLICY_COMMAND_HOLD_S after a move asked by
 * distvm-move-vcpu, which wins over the policy.  The request goes to the
 * destination first, which takes the vCPU only if it then runs no more
 * vCPUs than its capacity (the vCPUs placed there and the ones it
 * admitted that are on their way), and passes it to the vCPU's node.
 *
 * When none of its vCPUs has a node to follow (no node sends one most of
 * its data, as with a kernel whose vCPUs all share theirs, or that node
 * is full), a node sends one of them to a node that runs more vCPUs than
 * it does (or as many, and has a lower id) and sends that vCPU data
 * (consolidation, DISTVM_MOVE_CONSOLIDATE): shared data travels between
 * fewer nodes.  It goes on until the nodes that run vCPUs are full.  The
 * policy decides for data or to consolidate only from a window in which
 * no vCPU moved.
 *
 * A busy vCPU is also worth more on a faster node (the nodes' speed
 * properties).  Busy means running DISTVM_POLICY_BUSY_PM of what its node
 * can give it: of the window, times the node's speed if that is below 1
 * (a node held to a quarter of a CPU, speed=0.25, gives a vCPU at most a
 * quarter of a second each second).  When no vCPU has data to follow, the
 * busiest one on a node slower than another by DISTVM_POLICY_TIER_STEP
 * goes to the fastest node, which admits it as above; and the policy
 * never sends a busy vCPU to a slower node, for its data or to
 * consolidate.  A node that refused a vCPU is not asked again for a while
 * (for a tier, the next fastest is asked), nor is a node this one is
 * taking a vCPU from; of two nodes that ask each other at once, the one
 * with the lower id takes the vCPU.
 *
 * A move for data is judged by its effect: the request carries the
 * vCPU's remote cost (misses from other nodes, upgrades and device
 * accesses sent home, a second) where it was.  DISTVM_POLICY_JUDGE_MS
 * after it arrived, the destination compares it with the vCPU's cost
 * there; unless the move halved it, the vCPU goes back where it came
 * from, which then keeps it for DISTVM_POLICY_BACKOFF_S, twice that after
 * each further return.  A guest whose vCPUs share their data everywhere
 * (a Linux kernel's) costs one try per vCPU, not a vCPU that travels back
 * and forth.  A consolidation is not judged: what it saves, it saves the
 * vCPUs it leaves as much as the one that moves.  A vCPU on the node
 * that homes its guest NUMA node's memory (-numa) stays there: the guest
 * keeps its data near it already.
 * See DESIGN.md §13.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-distvm.h"
#include "qemu/atomic.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "hw/core/cpu.h"
#include "system/runstate.h"
#include "distvm-internal.h"
#include "trace.h"

/* The window over which rates are measured and the policy decides. */
#define DISTVM_AFFINITY_WINDOW_MS       1000
/* Pages a second from one node below which a vCPU is left alone */
#define DISTVM_POLICY_MIN_RATE          200
/* A vCPU's stay on a node before the policy moves it again (s) */
#define DISTVM_POLICY_STAY_S            3
/* The same, after a move distvm-move-vcpu asked for */
#define DISTVM_POLICY_COMMAND_HOLD_S    10
/* What a remote fault costs the vCPU, as assumed by the policy */
#define DISTVM_POLICY_FAULT_US          100
/* What a move costs: its downtime, and the faults of a restart elsewhere */
#define DISTVM_POLICY_MOVE_US           2000
#define DISTVM_POLICY_WARMUP_FAULTS     256
/* How long a destination keeps room for a vCPU it admitted (s) */
#define DISTVM_POLICY_ADMIT_S           2
/* When a move is judged, after the vCPU arrived (over a full window) */
#define DISTVM_POLICY_JUDGE_MS          2500
/* Per mille of its time running, from which a vCPU counts as busy */
#define DISTVM_POLICY_BUSY_PM           500
/* How much faster (per mille) a node must be for a busy vCPU to go there */
#define DISTVM_POLICY_TIER_STEP         1250
/* A node that refused a vCPU is not asked again for this (s) */
#define DISTVM_POLICY_FULL_S            30
/* A vCPU that came back within this after the policy sent it away ... */
#define DISTVM_POLICY_RETURN_S          30
/* ... stays this long (s), twice that after each further return */
#define DISTVM_POLICY_BACKOFF_S         300
#define DISTVM_POLICY_BACKOFF_MAX_S     3600

QEMU_BUILD_BUG_ON(DISTVM_POLICY__MAX != DISTVM_POLICY_COUNT);
QEMU_BUILD_BUG_ON((int)DISTVM_MOVE_REASON__MAX != (int)DISTVM_MOVE__MAX);

/* What the policy knows of one vCPU, on one node; under DistvmAffinity.lock */
typedef struct DistvmPolicyVcpu {
    int64_t hold_until_ns;      /* running here: not moved before */
    int64_t admitted_ns;        /* admitted to come here, at; or 0 */
    uint64_t cost_before;       /* then, or since it came: its remote cost
                                   where it was */
    int64_t judge_ns;           /* came for the policy: judged at; or 0 */
    uint32_t came_from;         /* came for the policy: from this node */
    int64_t sent_away_ns;       /* the policy moved it away from here, at */
    uint32_t backoff_s;         /* its stay after its last return here */
    int asked_to;               /* running here: asked node to take it; -1 */
} DistvmPolicyVcpu;

struct DistvmAffinity {
    uint32_t nodes;
    unsigned nr_vcpus;
    /*
     * Counters, row-major by vCPU: one column per node (the misses whose
     * data it sent), then the upgrades, then the device accesses sent
     * home; row nr_vcpus holds the faults no vCPU took.  Atomic: written
     * by whichever thread completes a fault (under the RAM lock) or
     * forwards an access (the vCPU's own thread), read by the main loop.
     */
    uint64_t *total;
    uint64_t *at_window;        /* @total when the last window began */
    uint64_t *rate;             /* per second, over the last window */
    int64_t window_ns;          /* when the last window began */
    int64_t *run_ns;            /* running here: its thread's CPU time, */
    uint32_t *busy_pm;          /* and per mille of the last window */
    uint32_t *placed;           /* each vCPU's node at the last window's end */
    QEMUTimer *timer;

    QemuMutex lock;
    DistvmPolicyVcpu *vcpu;     /* [nr_vcpus], under @lock */
    /* Nodes that refused a vCPU of this node: not asked before, under @lock */
    int64_t full_until_ns[DISTVM_WIRE_MAX_NODES];
};

static inline unsigned affinity_cols(DistvmAffinity *a)
{
    return a->nodes + 2;
}

static inline unsigned col_upgrades(DistvmAffinity *a)
{
    return a->nodes;
}

static inline unsigned col_io(DistvmAffinity *a)
{
    return a->nodes + 1;
}

static inline unsigned affinity_row(DistvmAffinity *a, int cpu)
{
    return (cpu >= 0 && cpu < (int)a->nr_vcpus ? cpu : a->nr_vcpus) *
           affinity_cols(a);
}

int distvm_affinity_vcpu_of_thread(DistvmState *s, int tid)
{
    CPUState *cpu;

    if (!tid) {
        return -1;
    }
    WITH_RCU_READ_LOCK_GUARD() {
        CPU_FOREACH(cpu) {
            if (cpu->thread_id == tid) {
                return cpu->cpu_index;
            }
        }
    }
    return -1;
}

void distvm_affinity_fault(DistvmState *s, int cpu, bool upgrade,
                           uint32_t server)
{
    DistvmAffinity *a = s->affinity;

    if (a && (upgrade || server < a->nodes)) {
        qatomic_inc(&a->total[affinity_row(a, cpu) +
                              (upgrade ? col_upgrades(a) : server)]);
    }
}

void distvm_affinity_io(DistvmState *s, int cpu)
{
    DistvmAffinity *a = s->affinity;

    if (a) {
        qatomic_inc(&a->total[affinity_row(a, cpu) + col_io(a)]);
    }
}

/* ---- the policy ---- */

/* Whether @when (0: never) is within DISTVM_POLICY_ADMIT_S before @now */
static bool policy_recent(int64_t when, int64_t now)
{
    return when && now - when < DISTVM_POLICY_ADMIT_S * NANOSECONDS_PER_SECOND;
}

/*
 * The vCPUs that run on this node or were admitted to (not those of
 * -smp's maxcpus that are not plugged).  With a->lock.
 */
static unsigned policy_load(DistvmState *s, int64_t now)
{
    DistvmAffinity *a = s->affinity;
    unsigned load = 0;

    RCU_READ_LOCK_GUARD();
    for (unsigned cpu = 0; cpu < a->nr_vcpus; cpu++) {
        if (!qemu_get_cpu(cpu)) {
            continue;
        }
        if (distvm_vcpu_node(s, cpu) == s->node_id) {
            load++;
        } else if (policy_recent(a->vcpu[cpu].admitted_ns, now)) {
            load++;
        }
    }
    return load;
}

/*
 * Whether this node asked node @from to take one of its vCPUs within
 * DISTVM_POLICY_ADMIT_S, and the vCPU is still here.  With a->lock.
 */
static bool policy_asked(DistvmState *s, int64_t now, uint32_t from)
{
    DistvmAffinity *a = s->affinity;

    for (unsigned c = 0; c < a->nr_vcpus; c++) {
        if (a->vcpu[c].asked_to == (int)from &&
            distvm_vcpu_node(s, c) == s->node_id &&
            policy_recent(a->vcpu[c].sent_away_ns, now)) {
            return true;
        }
    }
    return false;
}

bool distvm_affinity_admit(DistvmState *s, uint32_t cpu, uint32_t from,
                           uint64_t cost)
{
    DistvmAffinity *a = s->affinity;
    int64_t now = get_clock();
    unsigned load;
    bool room;

    qemu_mutex_lock(&a->lock);
    load = policy_load(s, now);
    /*
     * Two nodes that ask each other to take a vCPU at once would swap
     * them: the lower id takes one, the other refuses.
     */
    room = load < s->capacity &&
           !(from < s->node_id && policy_asked(s, now, from));
    if (room) {
        a->vcpu[cpu].admitted_ns = now;
        a->vcpu[cpu].cost_before = cost;
    }
    qemu_mutex_unlock(&a->lock);
    trace_distvm_policy_admit(cpu, load, s->capacity, room);
    return room;
}

void distvm_affinity_arrived(DistvmState *s, uint32_t cpu, uint32_t from,
                             uint32_t reason)
{
    DistvmAffinity *a = s->affinity;
    DistvmPolicyVcpu *v;
    int64_t now = get_clock();
    int64_t stay = DISTVM_POLICY_STAY_S;

    if (!a) {
        return;
    }
    v = &a->vcpu[cpu];
    qemu_mutex_lock(&a->lock);
    v->judge_ns = 0;
    v->asked_to = -1;
    if (!distvm_move_by_policy(reason)) {
        /* Asked for by a command or by the guest: that wins a while. */
        stay = DISTVM_POLICY_COMMAND_HOLD_S;
    } else if (v->sent_away_ns &&
               now - v->sent_away_ns <
               DISTVM_POLICY_RETURN_S * NANOSECONDS_PER_SECOND) {
        /* Back from a move that did not pay off: keep it here a while. */
        v->backoff_s = MIN(MAX(2 * v->backoff_s, DISTVM_POLICY_BACKOFF_S),
                           DISTVM_POLICY_BACKOFF_MAX_S);
        stay = v->backoff_s;
    } else if (v->admitted_ns && reason == DISTVM_MOVE_POLICY) {
        /* Judged against its cost_before, which its admission noted */
        v->judge_ns = now + (int64_t)DISTVM_POLICY_JUDGE_MS * SCALE_MS;
        v->came_from = from;
    }
    v->admitted_ns = 0;
    v->hold_until_ns = now + stay * NANOSECONDS_PER_SECOND;
    qemu_mutex_unlock(&a->lock);
}

/*
 * What vCPU @cpu's data costs it here, over the last window: its misses
 * from other nodes, its upgrades, and its device accesses sent home.
 */
static uint64_t policy_cost(DistvmState *s, unsigned cpu)
{
    DistvmAffinity *a = s->affinity;
    const uint64_t *r = &a->rate[affinity_row(a, cpu)];
    uint64_t cost = r[col_upgrades(a)] + r[col_io(a)];

    for (uint32_t n = 0; n < a->nodes; n++) {
        cost += n == s->node_id ? 0 : r[n];
    }
    return cost;
}

/*
 * The moves the policy made here whose time to be judged came: a vCPU
 * whose cost did not halve goes back.  Returns true if one does.  With
 * a->lock.
 */
static bool policy_judge(DistvmState *s, int64_t now, unsigned *cpu_back,
                         uint64_t *cost)
{
    DistvmAffinity *a = s->affinity;

    for (unsigned cpu = 0; cpu < a->nr_vcpus; cpu++) {
        DistvmPolicyVcpu *v = &a->vcpu[cpu];

        if (!v->judge_ns || now < v->judge_ns ||
            distvm_vcpu_node(s, cpu) != s->node_id ||
            distvm_vcpu_moving(s, cpu)) {
            continue;
        }
        v->judge_ns = 0;
        *cost = policy_cost(s, cpu);
        trace_distvm_policy_judge(cpu, v->cost_before, *cost);
        if (*cost * 2 > v->cost_before) {
            *cpu_back = cpu;
            return true;
        }
    }
    return false;
}

uint32_t distvm_node_speed(DistvmState *s, uint32_t node)
{
    return node == s->node_id ? s->speed : qatomic_read(&s->peers[node].speed);
}

uint32_t distvm_node_tier(DistvmState *s, uint32_t node)
{
    uint32_t speed = distvm_node_speed(s, node);
    uint32_t tier = 1;

    /* One more for each speed above @node's, counted at its first node */
    for (uint32_t n = 0; n < s->nodes; n++) {
        uint32_t sn = distvm_node_speed(s, n);
        bool first = true;

        for (uint32_t m = 0; m < n && first; m++) {
            first = distvm_node_speed(s, m) != sn;
        }
        tier += sn > speed && first;
    }
    return tier;
}

/* How busy vCPU @cpu was here, per mille of what this node can give it */
static uint32_t policy_busy(DistvmState *s, unsigned cpu)
{
    uint64_t busy = s->affinity->busy_pm[cpu];

    if (s->speed < DISTVM_WIRE_SPEED_ONE) {
        busy = MIN(busy * DISTVM_WIRE_SPEED_ONE / s->speed, 1000);
    }
    return busy;
}

/*
 * Whether the policy may ask node @n to take a vCPU of this node: not if
 * @n refused one lately, nor while this node is taking one from @n.
 * With a->lock.
 */
static bool policy_may_ask(DistvmState *s, int64_t now, uint32_t n)
{
    DistvmAffinity *a = s->affinity;

    if (now < a->full_until_ns[n] || !distvm_node_usable(s, n)) {
        return false;
    }
    for (unsigned c = 0; c < a->nr_vcpus; c++) {
        if (policy_recent(a->vcpu[c].admitted_ns, now) &&
            distvm_vcpu_node(s, c) == n) {
            return false;
        }
    }
    return true;
}

/* Whether vCPU @cpu runs here and the policy may move it now */
static bool policy_movable(DistvmState *s, int64_t now, unsigned cpu)
{
    return distvm_vcpu_node(s, cpu) == s->node_id &&
           now >= s->affinity->vcpu[cpu].hold_until_ns &&
           !distvm_vcpu_moving(s, cpu);
}

/* The pages a second node @n sent vCPU @cpu, counting device accesses */
static uint64_t policy_rate_from(DistvmState *s, unsigned cpu, uint32_t n)
{
    DistvmAffinity *a = s->affinity;
    const uint64_t *r = &a->rate[affinity_row(a, cpu)];

    /* A device access sent home costs as much as a remote fault. */
    return r[n] + (n == distvm_home(s) ? r[col_io(a)] : 0);
}

/*
 * The node vCPU @cpu should run on, and what it would save there (pages
 * a second no longer fetched from afar), or -1.  With a->lock.
 */
static int policy_choose(DistvmState *s, int64_t now, unsigned cpu,
                         uint64_t *gain)
{
    DistvmAffinity *a = s->affinity;
    bool busy = policy_busy(s, cpu) >= DISTVM_POLICY_BUSY_PM;
    uint64_t best_rate = 0, others = 0;
    int best = -1;

    for (uint32_t n = 0; n < a->nodes; n++) {
        uint64_t rate = policy_rate_from(s, cpu, n);

        if (n == s->node_id) {
            continue;
        }
        if ((busy && distvm_node_speed(s, n) < s->speed) ||
            !policy_may_ask(s, now, n)) {
            others += rate;     /* not for a busy vCPU, or not now */
            continue;
        }
        if (rate > best_rate) {
            others += best_rate;
            best_rate = rate;
            best = n;
        } else {
            others += rate;
        }
    }
    /*
     * Over its stay there, the vCPU must save more than the move costs:
     * its downtime, and the faults of a restart on a node that has little
     * of its working set.
     */
    if (best < 0 || best_rate < DISTVM_POLICY_MIN_RATE ||
        best_rate < 2 * others ||
        best_rate * DISTVM_POLICY_FAULT_US * DISTVM_POLICY_STAY_S <
        DISTVM_POLICY_MOVE_US +
        DISTVM_POLICY_WARMUP_FAULTS * DISTVM_POLICY_FAULT_US) {
        return -1;
    }
    *gain = best_rate;
    return best;
}

/*
 * When no vCPU here has a node that sends most of its data, one whose
 * data comes from several nodes shares it with their vCPUs, as a
 * kernel's vCPUs do all the time: every node that runs some of them adds
 * to the pages that travel.  The vCPU here that takes the most data from
 * a node running more vCPUs than this one (or as many, if that node has
 * a lower id: two nodes never ask each other) goes there, if that node
 * sends it DISTVM_POLICY_MIN_RATE / 2 pages a second at least.  Each such
 * move runs the vCPUs on fewer nodes, as far as the nodes' capacity lets
 * it.  Returns the node, or -1.  With a->lock.
 */
static int policy_choose_consolidate(DistvmState *s, int64_t now,
                                     unsigned *cpu, uint64_t *gain)
{
    DistvmAffinity *a = s->affinity;
    unsigned count[DISTVM_WIRE_MAX_NODES] = { 0 };
    unsigned here;
    uint64_t best_rate = DISTVM_POLICY_MIN_RATE / 2;
    int best = -1;

    WITH_RCU_READ_LOCK_GUARD() {
        for (unsigned c = 0; c < a->nr_vcpus; c++) {
            if (qemu_get_cpu(c)) {
                count[distvm_vcpu_node(s, c)]++;
            }
        }
    }
    here = count[s->node_id];
    for (unsigned c = 0; c < a->nr_vcpus; c++) {
        bool busy = policy_busy(s, c) >= DISTVM_POLICY_BUSY_PM;

        if (!policy_movable(s, now, c) ||
            distvm_numa_vcpu_home(s, c) == s->node_id) {
            continue;
        }
        for (uint32_t n = 0; n < a->nodes; n++) {
            uint64_t rate = a->rate[affinity_row(a, c) + n];

            if (n == s->node_id || count[n] < here ||
                (count[n] == here && n > s->node_id) || rate < best_rate ||
                (busy && distvm_node_speed(s, n) < s->speed) ||
                !policy_may_ask(s, now, n) || !distvm_vcpu_allowed(s, c, n)) {
                continue;
            }
            best_rate = rate;
            best = n;
            *cpu = c;
        }
    }
    if (best >= 0) {
        *gain = best_rate;
    }
    return best;
}

/*
 * A vCPU the policy asked another node to take that is still here once
 * its stay after the request is over was refused (the node had no room,
 * or had asked this one to take a vCPU at the same time): that node is
 * not asked again for DISTVM_POLICY_FULL_S.  With a->lock.
 */
static void policy_refusals(DistvmState *s, int64_t now)
{
    DistvmAffinity *a = s->affinity;

    for (unsigned c = 0; c < a->nr_vcpus; c++) {
        DistvmPolicyVcpu *v = &a->vcpu[c];

        if (v->asked_to < 0 || now < v->hold_until_ns ||
            distvm_vcpu_moving(s, c)) {
            continue;
        }
        if (distvm_vcpu_node(s, c) == s->node_id) {
            trace_distvm_policy_full(c, v->asked_to);
            a->full_until_ns[v->asked_to] =
                now + DISTVM_POLICY_FULL_S * NANOSECONDS_PER_SECOND;
        }
        v->asked_to = -1;
    }
}

/*
 * For the busiest of the busy vCPUs here, the fastest node that did not
 * just refuse one, if it is DISTVM_POLICY_TIER_STEP faster than this
 * one; or -1.  With a->lock.
 */
static int policy_choose_tier(DistvmState *s, int64_t now, unsigned *cpu)
{
    DistvmAffinity *a = s->affinity;
    uint32_t fastest = 0, busiest = DISTVM_POLICY_BUSY_PM;
    int node = -1, found = -1;

    for (uint32_t n = 0; n < a->nodes; n++) {
        if (n != s->node_id && !policy_may_ask(s, now, n)) {
            continue;
        }
        if (distvm_node_speed(s, n) > fastest) {
            fastest = distvm_node_speed(s, n);
            node = n;
        }
    }
    if ((uint64_t)fastest * 1000 <
        (uint64_t)s->speed * DISTVM_POLICY_TIER_STEP) {
        return -1;
    }
    for (unsigned c = 0; c < a->nr_vcpus; c++) {
        if (!policy_movable(s, now, c) || policy_busy(s, c) < busiest) {
            continue;
        }
        busiest = policy_busy(s, c);
        found = c;
    }
    if (found < 0) {
        return -1;
    }
    *cpu = found;
    return node;
}

/*
 * Whether a vCPU moved (anywhere in the cluster) since the last window
 * ended.  With a->lock.
 */
static bool policy_placement_changed(DistvmState *s)
{
    DistvmAffinity *a = s->affinity;
    bool changed = false;

    for (unsigned c = 0; c < a->nr_vcpus; c++) {
        uint32_t node = distvm_vcpu_node(s, c);

        changed |= node != a->placed[c];
        a->placed[c] = node;
    }
    return changed;
}

static void policy_run(DistvmState *s, int64_t now)
{
    DistvmAffinity *a = s->affinity;
    uint64_t best_gain = 0, cost = 0;
    int best_cpu = -1, best_node = -1;
    uint32_t reason = DISTVM_MOVE_POLICY;
    unsigned back;
    bool stale, judged = false;

    /* Nor while a node joins: the vCPUs are held, and it learns moves */
    if (qatomic_read(&s->policy) != DISTVM_POLICY_AFFINITY ||
        qatomic_read(&s->state) != DISTVM_CLUSTER_STATE_RUNNING ||
        !runstate_is_running() ||
        qatomic_read(&s->joining) != UINT32_MAX) {
        return;
    }
    qemu_mutex_lock(&a->lock);
    policy_refusals(s, now);
    /* After a move, the last window's rates are another placement's. */
    stale = policy_placement_changed(s);
    if (policy_judge(s, now, &back, &cost)) {
        best_cpu = back;
        best_node = a->vcpu[back].came_from;
        best_gain = cost;
        judged = true;
    }
    for (unsigned cpu = 0; !judged && !stale && cpu < a->nr_vcpus; cpu++) {
        uint64_t gain;
        int node;

        /*
         * On the node that homes its NUMA node, a vCPU is where the guest,
         * told so by its SRAT and SLIT, keeps its data: it stays.
         */
        if (!policy_movable(s, now, cpu) ||
            distvm_numa_vcpu_home(s, cpu) == s->node_id) {
            continue;
        }
        node = policy_choose(s, now, cpu, &gain);
        if (node >= 0 && gain > best_gain &&
            distvm_vcpu_allowed(s, cpu, node)) {
            best_gain = gain;
            best_cpu = cpu;
            best_node = node;
        }
    }
    if (best_node < 0) {
        unsigned cpu;

        best_node = policy_choose_tier(s, now, &cpu);
        if (best_node >= 0) {
            best_cpu = cpu;
            best_gain = policy_busy(s, cpu);
            reason = DISTVM_MOVE_TIER;
        }
    }
    if (best_node < 0 && !stale) {
        unsigned cpu;

        best_node = policy_choose_consolidate(s, now, &cpu, &best_gain);
        if (best_node >= 0) {
            best_cpu = cpu;
            reason = DISTVM_MOVE_CONSOLIDATE;
        }
    }
    if (best_cpu >= 0 && !distvm_vcpu_allowed(s, best_cpu, best_node)) {
        best_cpu = -1;          /* distvm-set-vcpu-nodes */
    }
    if (best_cpu >= 0) {
        /* Asked once: the destination may refuse, and then it stays. */
        a->vcpu[best_cpu].hold_until_ns = now + DISTVM_POLICY_STAY_S *
                                                NANOSECONDS_PER_SECOND;
        a->vcpu[best_cpu].sent_away_ns = now;
        a->vcpu[best_cpu].asked_to = best_node;
        cost = policy_cost(s, best_cpu);
    }
    qemu_mutex_unlock(&a->lock);
    if (best_cpu >= 0) {
        trace_distvm_policy_move(best_cpu, s->node_id, best_node, best_gain,
                                 reason);
        distvm_vcpu_request_move(s, best_cpu, best_node, best_node, reason,
                                 cost);
    }
}

/* How busy each vCPU that runs here was over the last window, @len ns */
static void affinity_busy(DistvmState *s, int64_t len)
{
    DistvmAffinity *a = s->affinity;
    CPUState *cs;

    CPU_FOREACH(cs) {
        unsigned cpu = cs->cpu_index;
        clockid_t clock;
        struct timespec ts;
        int64_t t;

        if (cpu >= a->nr_vcpus || distvm_vcpu_node(s, cpu) != s->node_id ||
            !cs->thread ||
            pthread_getcpuclockid(cs->thread->thread, &clock) ||
            clock_gettime(clock, &ts)) {
            a->run_ns[cpu] = 0;
            a->busy_pm[cpu] = 0;
            continue;
        }
        t = ts.tv_sec * NANOSECONDS_PER_SECOND + ts.tv_nsec;
        a->busy_pm[cpu] = a->run_ns[cpu] ?
                          MIN((t - a->run_ns[cpu]) * 1000 / len, 1000) : 0;
        a->run_ns[cpu] = t;
    }
}

static void affinity_window(void *opaque)
{
    DistvmState *s = opaque;
    DistvmAffinity *a = s->affinity;
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    int64_t len = MAX(now - a->window_ns, 1);
    size_t n = (a->nr_vcpus + 1) * affinity_cols(a);

    for (size_t i = 0; i < n; i++) {
        uint64_t t = qatomic_read(&a->total[i]);

        a->rate[i] = (t - a->at_window[i]) * NANOSECONDS_PER_SECOND / len;
        a->at_window[i] = t;
    }
    affinity_busy(s, len);
    a->window_ns = now;
    policy_run(s, get_clock());
    timer_mod(a->timer, now / SCALE_MS + DISTVM_AFFINITY_WINDOW_MS);
}

static void policy_apply(DistvmState *s, uint32_t policy)
{
    trace_distvm_policy_set(DistvmPolicy_str(policy));
    qatomic_set(&s->policy, policy);
}

static void policy_broadcast(DistvmState *s, uint32_t policy)
{
    g_autoptr(GByteArray) m = g_byte_array_new();

    distvm_wire_policy(m, s->node_id, policy);
    for (uint32_t n = 0; n < s->nodes; n++) {
        if (n != s->node_id) {
            distvm_send(s, n, m);
        }
    }
}

/*
 * POLICY (between home and another node, as the dispatcher checked): the
 * home node sets the policy it is sent and tells every other node.
 */
static bool policy_received(DistvmState *s, const DistvmMsg *msg)
{
    policy_apply(s, msg->u.policy);
    if (distvm_is_home(s)) {
        policy_broadcast(s, msg->u.policy);
    }
    return true;
}

static const DistvmMsgHandler policy_handlers[] = {
    { DISTVM_MSG_POLICY, .receive = policy_received },
};

void qmp_distvm_set_policy(DistvmPolicy policy, Error **errp)
{
    DistvmState *s = distvm_state();
    g_autoptr(GByteArray) m = g_byte_array_new();

    if (!s) {
        error_setg(errp, "distvm is not the active accelerator");
        return;
    }
    if (s->nodes == 1 || distvm_is_home(s)) {
        policy_apply(s, policy);
        if (s->nodes > 1) {
            policy_broadcast(s, policy);
        }
        return;
    }
    distvm_wire_policy(m, s->node_id, policy);
    if (!distvm_send(s, distvm_home(s), m)) {
        error_setg(errp, "distvm: the home node cannot be reached");
    }
}

/* ---- monitor ---- */

static uint64List *affinity_list(const uint64_t *v, unsigned n)
{
    uint64List *head = NULL, **tail = &head;

    for (unsigned i = 0; i < n; i++) {
        QAPI_LIST_APPEND(tail, qatomic_read(&v[i]));
    }
    return head;
}

static DistvmVcpuAffinity *affinity_entry(DistvmState *s, unsigned cpu)
{
    DistvmAffinity *a = s->affinity;
    const unsigned row = affinity_row(a, cpu);
    DistvmVcpuAffinity *e = g_new0(DistvmVcpuAffinity, 1);

    e->cpu_index = cpu;
    e->running = distvm_vcpu_node(s, cpu) == s->node_id;
    e->faults = affinity_list(&a->total[row], a->nodes);
    e->fault_rate = affinity_list(&a->rate[row], a->nodes);
    e->upgrades = qatomic_read(&a->total[row + col_upgrades(a)]);
    e->upgrade_rate = a->rate[row + col_upgrades(a)];
    e->io = qatomic_read(&a->total[row + col_io(a)]);
    e->io_rate = a->rate[row + col_io(a)];
    e->busy = a->busy_pm[cpu] / 10;
    return e;
}

/* With the BQL (the rates change under it). */
DistvmAffinityInfo *distvm_affinity_query(DistvmState *s)
{
    DistvmAffinity *a = s->affinity;
    const unsigned other = affinity_row(a, -1);
    DistvmAffinityInfo *info;
    DistvmVcpuAffinityList **tail;

    if (!a) {
        return NULL;
    }
    info = g_new0(DistvmAffinityInfo, 1);
    tail = &info->vcpus;
    for (unsigned cpu = 0; cpu < a->nr_vcpus; cpu++) {
        QAPI_LIST_APPEND(tail, affinity_entry(s, cpu));
    }
    info->other_faults = affinity_list(&a->total[other], a->nodes);
    info->other_upgrades = qatomic_read(&a->total[other + col_upgrades(a)]);
    return info;
}

void distvm_affinity_init(DistvmState *s)
{
    DistvmAffinity *a = g_new0(DistvmAffinity, 1);
    size_t n;

    a->nodes = s->nodes;
    a->nr_vcpus = s->nr_vcpus;
    n = (a->nr_vcpus + 1) * affinity_cols(a);
    a->total = g_new0(uint64_t, n);
    a->at_window = g_new0(uint64_t, n);
    a->rate = g_new0(uint64_t, n);
    qemu_mutex_init(&a->lock);
    a->vcpu = g_new0(DistvmPolicyVcpu, a->nr_vcpus);
    for (unsigned i = 0; i < a->nr_vcpus; i++) {
        a->vcpu[i].asked_to = -1;
    }
    a->run_ns = g_new0(int64_t, a->nr_vcpus);
    a->busy_pm = g_new0(uint32_t, a->nr_vcpus);
    a->placed = g_new0(uint32_t, a->nr_vcpus);
    a->window_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    a->timer = timer_new_ms(QEMU_CLOCK_REALTIME, affinity_window, s);
    timer_mod(a->timer, a->window_ns / SCALE_MS + DISTVM_AFFINITY_WINDOW_MS);
    s->affinity = a;
    distvm_msg_handlers_register(s, policy_handlers,
                                 ARRAY_SIZE(policy_handlers));
}
