/*
 * distvm bare-metal SMP test guest: mode=a20 (see smp-workload.h)
 *
 * The A20 line is an input of the boot CPU, driven by the chipset's
 * port 0x92, a device of the home node.  A change must reach the CPU
 * where it runs: before its next instruction when the CPU wrote the port
 * itself, soon when another CPU did.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdint.h>
#include "smp-workload.h"
#include "guest-hw.h"

#define PORT_A          0x92
#define PORT_A_A20      0x02

static struct dg_results *const res = (struct dg_results *)DG_RESULT_BASE;
static volatile uint32_t *const lo = (volatile uint32_t *)DG_A20_LO;
static volatile uint32_t *const hi = (volatile uint32_t *)DG_A20_HI;

/* boot.S, below 1 MiB (linked with the trampoline, copied with it) */
void a20_self(uint32_t out[3], volatile uint32_t *lo, volatile uint32_t *hi);
uint32_t a20_wait_off(volatile uint32_t *lo, volatile uint32_t *hi,
                      uint32_t round);
extern volatile uint32_t a20_seen;

void a20_mode(uint32_t cpu, uint32_t ncpus)
{
    for (uint32_t r = 0; r < DG_A20_ROUNDS; r++) {
        if (cpu == 0) {
            uint64_t start;

            *lo = DG_A20_LO_WORD + r;
            *hi = DG_A20_HI_WORD + r;
            a20_self(res->a20_self[r], lo, hi);
            if (ncpus < 2) {
                continue;
            }
            *lo = DG_A20_LO_WORD + r;
            start = rdtsc();
            res->a20_ready = r + 1;
            res->a20_off[r] = a20_wait_off(lo, hi, r + 1);
            res->a20_wait_ticks[r] = rdtsc() - start;
            res->a20_wait_port[r] = inb(PORT_A);
        } else if (cpu == 1) {
            while (res->a20_ready != r + 1) {
                cpu_relax();
            }
            outb(PORT_A, inb(PORT_A) & ~(PORT_A_A20 | 1));
            while (a20_seen != r + 1) {
                cpu_relax();
            }
            outb(PORT_A, (inb(PORT_A) & ~1) | PORT_A_A20);
        }
    }
    say_cpu(cpu, " a20 done\n");
    res->cpu_done[cpu] = 1;
}
