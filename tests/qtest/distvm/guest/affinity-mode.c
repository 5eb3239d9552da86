/*
 * distvm bare-metal SMP test guest: mode=affinity and mode=busy (see
 * smp-workload.h), for the placement policy
 *
 * Each reader works on data its writer keeps rewriting: wherever the
 * writer runs, that is where the reader's data comes from, and where the
 * placement policy should take the reader.  In mode=busy the CPUs only
 * compute, and need the fastest node.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdint.h>
#include "smp-workload.h"
#include "guest-hw.h"

#define WORDS_PER_PAGE  1024u

static struct dg_results *const res = (struct dg_results *)DG_RESULT_BASE;

static void writer(uint32_t k)
{
    volatile struct dg_aff_writer *w = (void *)DG_AFF_PAIR(k);
    volatile uint32_t *stop = (volatile uint32_t *)DG_AFF_STOP;
    uint32_t pass = 0;

    while (!*stop) {
        pass++;
        for (uint32_t p = 0; p < DG_AFF_PAGES; p++) {
            volatile uint32_t *d = (volatile uint32_t *)DG_AFF_DATA(k, p);

            for (uint32_t i = 0; i < WORDS_PER_PAGE; i++) {
                d[i] = pass;
            }
        }
        w->passes = pass;
    }
}

static void reader(uint32_t k, uint32_t rounds)
{
    volatile struct dg_aff_writer *w = (void *)DG_AFF_PAIR(k);
    volatile struct dg_aff_reader *r = (void *)DG_AFF_READER(k);
    uint32_t seen[DG_AFF_PAGES] = { 0 };
    uint64_t sum = 0;
    uint32_t errors = 0;

    for (uint32_t n = 0; n < rounds; n++) {
        for (uint32_t p = 0; p < DG_AFF_PAGES; p++) {
            const volatile uint32_t *d =
                (const volatile uint32_t *)DG_AFF_DATA(k, p);
            uint32_t lo = UINT32_MAX, hi = 0;

            for (uint32_t i = 0; i < WORDS_PER_PAGE; i++) {
                uint32_t v = d[i];

                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
                sum += v;
            }
            /*
             * Words only grow: none is older than the oldest seen in this
             * page last round; none is newer than the pass the writer is
             * in, once it is read after them.
             */
            if (lo < seen[p] || hi > w->passes + 1) {
                errors++;
            }
            seen[p] = lo;
        }
        r->rounds = n + 1;
    }
    r->sum = sum;
    r->errors = errors;
}

void affinity_mode(uint32_t cpu, uint32_t ncpus, uint32_t rounds)
{
    volatile uint32_t *stop = (volatile uint32_t *)DG_AFF_STOP;

    if (ncpus != 1 + 2 * DG_AFF_PAIRS) {
        say_cpu(cpu, " affinity needs cpus=5\n");
        return;
    }
    if (cpu == 0) {
        /* the readers' ends, then the writers' */
        for (uint32_t k = 0; k < DG_AFF_PAIRS; k++) {
            while (!*(volatile uint32_t *)&res->cpu_done[1 + DG_AFF_PAIRS +
                                                         k]) {
                cpu_relax();
            }
        }
        *stop = 1;
    } else if (cpu <= DG_AFF_PAIRS) {
        writer(cpu - 1);
    } else {
        reader(cpu - 1 - DG_AFF_PAIRS, rounds);
    }
    say_cpu(cpu, " affinity done\n");
    res->cpu_done[cpu] = 1;
}

void busy_mode(uint32_t cpu)
{
    uint64_t x = cpu + 1, steps = 0;

    while (!*(volatile uint32_t *)&res->stop) {
        for (int i = 0; i < 1024; i++) {
            x = dg_busy_step(x);
        }
        steps += 1024;
    }
    res->busy_steps[cpu] = steps;
    res->busy_value[cpu] = x;
    *(volatile uint32_t *)&res->cpu_done[cpu] = 1;
}
