/*
 * distvm bare-metal SMP test guest: mode=xcode (see smp-workload.h)
 *
 * Code one CPU rewrites while others run it.  Once a CPU has seen that
 * the code was written, and serialized itself, it must run the new code,
 * whichever node wrote it: none may keep running code translated from
 * what the page held before.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdint.h>
#include "smp-workload.h"
#include "guest-hw.h"

static struct dg_results *const res = (struct dg_results *)DG_RESULT_BASE;
static volatile uint8_t *const code = (volatile uint8_t *)DG_XCODE_BASE;
static volatile uint32_t code_ready, code_end;

typedef uint32_t xcode_fn(void);

static inline void serialize(void)
{
    uint32_t a = 0, b, c = 0, d;

    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d)
                     :: "memory");
}

static void writer(uint32_t ncpus, uint32_t rounds, uint32_t how)
{
    /* mov $0, %eax; ret */
    code[0] = 0xb8;
    *(volatile uint32_t *)(code + 1) = 0;
    code[5] = 0xc3;
    code_ready = 1;
    for (uint32_t r = 1; r <= rounds; r++) {
        uint64_t start;

        if (how == DG_XCODE_STOLEN) {
            /* CPU 2 writes the page first: it leaves this node */
            *(volatile uint32_t *)&res->xcode_steal = r;
            while (*(volatile uint32_t *)&res->xcode_stolen < r) {
                cpu_relax();
            }
        } else if (how == DG_XCODE_IDLE && (r & 1)) {
            /* CPU 1, which ran none of it since the last write, starts */
            *(volatile uint32_t *)&res->xcode_go = r;
        }
        *(volatile uint32_t *)(code + 1) = r;
        *(volatile uint32_t *)&res->xcode_round = r;
        start = rdtsc();
        for (uint32_t cpu = 1; cpu < ncpus; cpu++) {
            if (how == DG_XCODE_IDLE && cpu == 1 && !(r & 1)) {
                continue;
            }
            while (*(volatile uint32_t *)&res->xcode_seen[cpu] < r) {
                if (rdtsc() - start > DG_XCODE_WAIT) {
                    (*(volatile uint32_t *)&res->xcode_timeouts)++;
                    say_cpu(0, " xcode: a CPU did not see a write\n");
                    break;
                }
                cpu_relax();
            }
        }
    }
    code_end = 1;
}

static void runner(uint32_t cpu, uint32_t how)
{
    xcode_fn *fn = (xcode_fn *)DG_XCODE_BASE;
    uint32_t calls = 0, stale = 0, go = 0;

    while (!code_ready) {
        cpu_relax();
    }
    while (!code_end) {
        uint32_t round = *(volatile uint32_t *)&res->xcode_round;
        uint32_t v;

        if (how == DG_XCODE_IDLE && cpu == 1 &&
            *(volatile uint32_t *)&res->xcode_seen[cpu] >= go) {
            /* Until the next write it is asked to watch */
            go = *(volatile uint32_t *)&res->xcode_go;
            if (*(volatile uint32_t *)&res->xcode_seen[cpu] >= go) {
                cpu_relax();
                continue;
            }
        }
        serialize();
        v = fn();
        calls++;
        if (v < round) {
            stale++;
            if (*(volatile uint32_t *)(code + 1) < round) {
                res->xcode_stale_data[cpu]++;
            }
        } else {
            *(volatile uint32_t *)&res->xcode_seen[cpu] = v;
        }
        if (cpu == 2) {
            uint32_t steal = *(volatile uint32_t *)&res->xcode_steal;

            if (steal > *(volatile uint32_t *)&res->xcode_stolen) {
                *(volatile uint32_t *)(code + DG_XCODE_DATA) = steal;
                *(volatile uint32_t *)&res->xcode_stolen = steal;
            }
        }
    }
    res->xcode_calls[cpu] = calls;
    res->xcode_stale[cpu] = stale;
}

void xcode_mode(uint32_t cpu, uint32_t ncpus, uint32_t rounds, uint32_t how)
{
    if (ncpus != 3) {
        say_cpu(cpu, " xcode needs cpus=3\n");
    } else if (cpu == 0) {
        writer(ncpus, rounds, how);
    } else {
        runner(cpu, how);
    }
    say_cpu(cpu, " xcode done\n");
    res->cpu_done[cpu] = 1;
}
