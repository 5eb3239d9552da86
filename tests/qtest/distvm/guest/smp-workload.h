/*
 * distvm bare-metal SMP test guest: the workload and result layout
 *
 * Shared by the guest (tests/qtest/distvm/guest/) and the qtest that
 * checks its final memory, so that the expected values are computed by
 * the test on the host from the same definition.  Only fixed-width types
 * and inline code; no library.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef DISTVM_SMP_WORKLOAD_H
#define DISTVM_SMP_WORKLOAD_H

#include <stdint.h>

/* Guest physical layout (the guest runs with paging off). */
#define DG_RESULT_BASE      0x00400000u     /* struct dg_results */
#define DG_PRIV_BASE        0x00500000u     /* per-CPU private buffers */
#define DG_PRIV_WORDS       8192u           /* uint64_t words per CPU */
#define DG_PRIV_BYTES       (DG_PRIV_WORDS * 8u)
#define DG_MAX_CPUS         16u
#define DG_RING_SLOTS       64u             /* power of two */
#define DG_RING_ITEMS       20000u

#define DG_MAGIC_DONE       0x454e4f44u     /* "DONE" */
#define DG_MAGIC_FAIL       0x4c494146u     /* "FAIL" */
#define DG_MAGIC_PATTERN    0x4e544150u     /* "PATN": pattern written */

/*
 * mode=pattern: the boot CPU fills [DG_PATTERN_BASE, + mb MiB) with
 * dg_pattern(), then serves the mailbox: each time the test bumps
 * mailbox_seq it sums the region again and reports it in pattern_sum.
 */
#define DG_PATTERN_BASE     0x01000000u     /* 16 MiB */

/*
 * mode=stress: every CPU keeps rewriting its own DG_STRESS_PAGES pages at
 * DG_STRESS_BASE + cpu * DG_STRESS_PAGES * 4 KiB until the test sets
 * stop; rounds[cpu] counts the rounds it completed.  In round k (from 1)
 * CPU c writes dg_stress_value(c, k, i) at word (k % 512) of its page i.
 */
#define DG_STRESS_BASE      0x00800000u     /* 8 MiB */
#define DG_STRESS_PAGES     256u

/* Every this many iterations a CPU does a locked add to a shared counter */
#define DG_ATOMIC_EVERY     64u
/* ... and a lock-guarded non-atomic update of the shared record. */
#define DG_LOCKED_EVERY     256u

struct dg_results {
    uint32_t magic;             /* DG_MAGIC_DONE once every CPU finished */
    uint32_t ncpus;             /* CPUs the guest ran on */
    uint32_t iters;             /* workload iterations per CPU */
    uint32_t cpus_started;      /* APs that reached C code, plus the BSP */
    uint64_t atomic_counter;    /* lock add by every CPU */
    uint64_t locked_x;          /* x += 1 under the spinlock (non-atomic) */
    uint64_t locked_y;          /* y += 2 under the spinlock (non-atomic) */
    uint64_t locked_z;          /* z += cpu + 1 under the spinlock */
    uint64_t ring_sum;          /* sum of what the consumer read */
    uint32_t ring_count;        /* items the consumer read */
    uint32_t ring_errors;       /* items read out of order */
    uint64_t checksum[DG_MAX_CPUS];  /* per-CPU sum of its sequence */
    uint32_t cpu_done[DG_MAX_CPUS];  /* 1 when the CPU finished */
    /* mode=pattern */
    uint32_t mailbox_seq;       /* written by the test */
    uint32_t mailbox_ack;       /* the guest: last mailbox_seq served */
    uint64_t pattern_sum;       /* sum of the region's words, at ack time */
    /* mode=stress */
    uint32_t stop;              /* written by the test */
    uint32_t rounds[DG_MAX_CPUS];
};

static inline uint64_t dg_pattern(uint64_t addr)
{
    return addr * 0x9e3779b97f4a7c15ull ^ (addr >> 12);
}

static inline uint64_t dg_stress_value(uint32_t cpu, uint32_t round,
                                       uint32_t page)
{
    return ((uint64_t)(cpu + 1) << 56) | ((uint64_t)round << 16) | page;
}

/* One step of the per-CPU pseudo-random sequence (xorshift64). */
static inline uint64_t dg_next(uint64_t x)
{
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

static inline uint64_t dg_seed(uint32_t cpu)
{
    return 0x9e3779b97f4a7c15ull * (uint64_t)(cpu + 1) ^ 0x0123456789abcdefull;
}

/* The value the producer puts in ring slot number @i. */
static inline uint64_t dg_ring_value(uint32_t i)
{
    return dg_next(0xabcdef0123456789ull + i);
}

/*
 * What one iteration does to the CPU's private buffer: the index it
 * writes and the value it adds.
 */
static inline uint32_t dg_priv_index(uint64_t x)
{
    return (uint32_t)(x >> 20) & (DG_PRIV_WORDS - 1);
}

static inline uint64_t dg_priv_delta(uint64_t x, uint32_t i)
{
    return x ^ i;
}

/* How many of iterations 0 .. iters-1 are multiples of @every. */
static inline uint64_t dg_multiples(uint32_t iters, uint32_t every)
{
    return ((uint64_t)iters + every - 1) / every;
}

#endif /* DISTVM_SMP_WORKLOAD_H */
