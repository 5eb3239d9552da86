/*
 * distvm bare-metal SMP test guest: mode=ipiflood=N (see smp-workload.h)
 *
 * A vCPU sends another one N fixed IPIs as fast as it can, without
 * waiting for any to be taken: on a cluster, each is a message for the
 * target node, which delivers it under the BQL.  The target's node must
 * make the sender wait rather than fall behind until it gives it up.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdint.h>
#include "smp-workload.h"
#include "guest-hw.h"

static volatile struct dg_results *const res =
    (volatile struct dg_results *)DG_RESULT_BASE;   /* shared */

void ipiflood_mode(uint32_t cpu, uint32_t ncpus, uint32_t count)
{
    if (cpu == 1) {
        /* Only the IPIs: the PIC's and NMI lines masked */
        idt_load();
        lapic_write(LAPIC_SVR, 0x1ff);
        lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
        lapic_write(LAPIC_LVT_LINT1, LVT_MASKED);
        __asm__ volatile("sti");
        res->ipiflood_ready = 1;
        while (!res->ipiflood_sent) {
            cpu_relax();        /* the IPIs are taken here */
        }
        __asm__ volatile("cli");
    } else if (cpu == 0 && ncpus > 1) {
        while (!res->ipiflood_ready) {
            cpu_relax();
        }
        for (uint32_t i = 0; i < count; i++) {
            lapic_write(LAPIC_ICR_HI, 1u << 24);
            lapic_write(LAPIC_ICR_LO, DG_IPI_VECTOR);
        }
        res->ipiflood_sent = count;
    }
    say_cpu(cpu, " ipiflood done\n");
    res->cpu_done[cpu] = 1;
}
