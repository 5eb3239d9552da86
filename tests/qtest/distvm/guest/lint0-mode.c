/*
 * distvm bare-metal SMP test guest: mode=lint0 (see smp-workload.h)
 *
 * The 8259 asks for an interrupt through LINT0 while the CPU has them
 * off; the CPU masks LINT0 and turns them on.  A masked LINT0 no longer
 * asks: the CPU takes nothing, where it took "vector -1" and triple
 * faulted (patches/0023).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdint.h>
#include "smp-workload.h"
#include "guest-hw.h"

#define PIC_READ_IRR    0x0a
/* About 0.5 s: for the 8259's output to reach a vCPU away from home */
#define LINT0_SETTLE_TICKS 1000000000ull

static struct dg_results *const res = (struct dg_results *)DG_RESULT_BASE;

static void wait_ticks(uint64_t ticks)
{
    uint64_t start = rdtsc();

    while (rdtsc() - start < ticks) {
        cpu_relax();
    }
}

void lint0_mode(uint32_t cpu)
{
    irq_cpu_setup(cpu);             /* LINT0 in ExtINT mode */
    pit_pic_start();
    outb(PIC1_CMD, PIC_READ_IRR);
    while (!(inb(PIC1_CMD) & 1)) {
        cpu_relax();
    }
    wait_ticks(LINT0_SETTLE_TICKS);
    lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
    __asm__ volatile("sti");
    wait_ticks(LINT0_SETTLE_TICKS);
    __asm__ volatile("cli");
    outb(PIC1_DATA, 0xff);
    say_cpu(cpu, " lint0 done\n");
    res->cpu_done[cpu] = 1;
}
