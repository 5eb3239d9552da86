/*
 * distvm: vCPUs that spin give their host CPU away
 *
 * A guest spins with PAUSE while it waits for another vCPU: for a lock,
 * a seqcount, the answer to an IPI.  On a cluster, what it waits for is
 * often a page or a message on its way between nodes, and its spinning
 * takes a host CPU from the threads that bring it (the node protocol's,
 * or the vCPU that holds the lock, in this process or another one on the
 * same host).  Like the pause-loop exiting of hardware virtualization, a
 * vCPU that executed DISTVM_PAUSE_LOOP PAUSEs in a row, each within
 * DISTVM_PAUSE_GAP_NS of the last, sleeps for pause-sleep-us.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/atomic.h"
#include "qemu/timer.h"
#include "cpu.h"
#include "distvm-internal.h"

/* PAUSEs in a row that make a spin, and the most time between two. */
#define DISTVM_PAUSE_LOOP   100
#define DISTVM_PAUSE_GAP_NS 5000

/* The accelerator, looked up once: every PAUSE of a spin comes here. */
static DistvmState *pause_state;

/* Per vCPU thread (one vCPU each under MTTCG). */
static __thread int64_t last_pause_ns;
static __thread unsigned pauses_in_row;

static void distvm_pause(CPUState *cs)
{
    DistvmState *s = pause_state;
    int64_t now = get_clock();

    if (now - last_pause_ns > DISTVM_PAUSE_GAP_NS) {
        pauses_in_row = 0;
    } else if (++pauses_in_row >= DISTVM_PAUSE_LOOP) {
        pauses_in_row = 0;
        g_usleep(s->pause_sleep_us);
        qatomic_inc(&s->pause_sleeps);
        now = get_clock();
    }
    last_pause_ns = now;
}

void distvm_pause_init(DistvmState *s)
{
    if (s->nodes > 1 && s->pause_sleep_us) {
        pause_state = s;
        x86_pause_hook = distvm_pause;
    }
}
