/*
 * distvm bare-metal SMP test guest: mode=vmport (see smp-workload.h)
 *
 * VMware's I/O port takes its command in the registers of the vCPU that
 * reads it and answers in them: home's device must see this vCPU's, and
 * its answers must reach them, wherever the vCPU runs.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdint.h>
#include "smp-workload.h"
#include "guest-hw.h"

#define VMPORT_PORT     0x5658
#define VMPORT_MAGIC    0x564d5868u     /* "VMXh" */

static struct dg_results *const res = (struct dg_results *)DG_RESULT_BASE;

/* One command: @r gives EBX, ESI and EDI, and gets EAX to EDI back. */
static void vmport_call(uint32_t cmd, uint32_t r[6])
{
    uint32_t a = VMPORT_MAGIC, b = r[1], c = cmd, d = VMPORT_PORT;
    uint32_t si = r[4], di = r[5];

    __asm__ volatile("inl %%dx, %%eax"
                     : "+a"(a), "+b"(b), "+c"(c), "+d"(d), "+S"(si), "+D"(di)
                     : : "memory");
    r[0] = a;
    r[1] = b;
    r[2] = c;
    r[3] = d;
    r[4] = si;
    r[5] = di;
}

void vmport_mode(uint32_t cpu, uint32_t ncpus)
{
    (void)ncpus;
    for (uint32_t i = 0; i < DG_VMPORT_CMDS; i++) {
        uint32_t r[6] = { 0, ~VMPORT_MAGIC, 0, 0, 0x51515151u + i,
                          0xd1d1d1d1u - i };

        vmport_call(dg_vmport_cmd[i], r);
        for (int k = 0; k < 6; k++) {
            res->vmport_regs[i][k] = r[k];
        }
    }
    say_cpu(cpu, " vmport done\n");
    res->cpu_done[cpu] = 1;
}
