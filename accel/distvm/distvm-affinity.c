/*
 * distvm: where each vCPU's remote data comes from
 *
 * Each node counts, for every vCPU that runs on it, the remote page
 * faults the vCPU took by the node that served the page, and the device
 * accesses it sent to the home node: totals, and rates over the last
 * window.  Faults that no vCPU took (a device model's DMA, the monitor,
 * qtest) are counted apart, so that the figures add up to the node's
 * fault counts.  See DESIGN.md §13.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/atomic.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "hw/core/cpu.h"
#include "distvm-internal.h"

/* The window over which rates are measured. */
#define DISTVM_AFFINITY_WINDOW_MS 1000

struct DistvmAffinity {
    uint32_t nodes;
    unsigned nr_vcpus;
    /*
     * Counters, row-major by vCPU, one column per node and a last one for
     * the device accesses sent home; row nr_vcpus holds the faults no
     * vCPU took.  Atomic: written by whichever thread completes a fault
     * (under the RAM lock) or forwards an access (the vCPU's own thread),
     * read by the main loop.
     */
    uint64_t *total;
    uint64_t *at_window;        /* @total when the last window began */
    uint64_t *rate;             /* per second, over the last window */
    int64_t window_ns;          /* when the last window began */
    QEMUTimer *timer;
};

static inline unsigned affinity_cols(DistvmAffinity *a)
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

void distvm_affinity_fault(DistvmState *s, int cpu, uint32_t server)
{
    DistvmAffinity *a = s->affinity;

    if (a && server < a->nodes) {
        qatomic_inc(&a->total[affinity_row(a, cpu) + server]);
    }
}

void distvm_affinity_io(DistvmState *s, int cpu)
{
    DistvmAffinity *a = s->affinity;

    if (a) {
        qatomic_inc(&a->total[affinity_row(a, cpu) + a->nodes]);
    }
}

static void affinity_window(void *opaque)
{
    DistvmAffinity *a = opaque;
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    int64_t len = MAX(now - a->window_ns, 1);
    size_t n = (a->nr_vcpus + 1) * affinity_cols(a);

    for (size_t i = 0; i < n; i++) {
        uint64_t t = qatomic_read(&a->total[i]);

        a->rate[i] = (t - a->at_window[i]) * NANOSECONDS_PER_SECOND / len;
        a->at_window[i] = t;
    }
    a->window_ns = now;
    timer_mod(a->timer, now / SCALE_MS + DISTVM_AFFINITY_WINDOW_MS);
}

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
    e->io = qatomic_read(&a->total[row + a->nodes]);
    e->io_rate = a->rate[row + a->nodes];
    return e;
}

/* With the BQL (the rates change under it). */
DistvmAffinityInfo *distvm_affinity_query(DistvmState *s)
{
    DistvmAffinity *a = s->affinity;
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
    info->other_faults = affinity_list(&a->total[affinity_row(a, -1)],
                                       a->nodes);
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
    a->window_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    a->timer = timer_new_ms(QEMU_CLOCK_REALTIME, affinity_window, a);
    timer_mod(a->timer, a->window_ns / SCALE_MS + DISTVM_AFFINITY_WINDOW_MS);
    s->affinity = a;
}
