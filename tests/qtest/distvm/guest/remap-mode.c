/*
 * distvm bare-metal SMP test guest: mode=remap (see smp-workload.h)
 *
 * A vCPU's TLB remembers where an MMIO page goes in the memory map as it
 * was when the vCPU filled the entry.  When another vCPU changes the map,
 * that vCPU must go on using the map its TLB was filled from until its
 * TLB is flushed: an MMIO read must not land on another region.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdint.h>
#include "smp-workload.h"
#include "guest-hw.h"

#define HPET_ID         ((volatile uint32_t *)0xfed00000u) /* MMIO */
#define I440FX          0               /* bus 0, device 0, function 0 */
#define I440FX_PAM3     0x5c            /* PAM3 to PAM6, a byte each */
/*
 * Write enable of PAM3's 0xd0000-0xd3fff, which the firmware left
 * read-only like its neighbours: toggled, the range becomes a region of
 * its own in the map and back, which renumbers the regions after it.
 */
#define PAM3_D0000_WE   0x00000002u

/* CPU 0 and the test read the counts while CPU 1 counts. */
static volatile struct dg_results *const res =
    (volatile struct dg_results *)DG_RESULT_BASE;   /* shared, see above */

static void remap_check(uint32_t v)
{
    res->remap_reads++;
    if (v != DG_REMAP_HPET_ID && !res->remap_bad++) {
        res->remap_bad_value = v;
    }
}

void remap_mode(uint32_t cpu, uint32_t ncpus, uint32_t rounds)
{
    if (cpu == 0) {
        uint32_t pam = pci_read(I440FX, I440FX_PAM3);

        /* CPU 1's TLB maps the HPET before the map changes. */
        while (ncpus > 1 && !res->remap_reads) {
            cpu_relax();
        }
        for (uint32_t r = 0; r < rounds; r++) {
            pci_write(I440FX, I440FX_PAM3, pam ^ PAM3_D0000_WE);
            pci_write(I440FX, I440FX_PAM3, pam);
            res->remap_done = r + 1;
        }
    } else if (cpu == 1) {
        while (res->remap_done < rounds) {
            /* Straight-line code: one translation block for the burst. */
            uint32_t v[DG_REMAP_BURST];

#pragma GCC unroll 64
            for (uint32_t i = 0; i < DG_REMAP_BURST; i++) {
                v[i] = *HPET_ID;
            }
            for (uint32_t i = 0; i < DG_REMAP_BURST; i++) {
                remap_check(v[i]);
            }
        }
    }
    say_cpu(cpu, " remap done\n");
    res->cpu_done[cpu] = 1;
}
