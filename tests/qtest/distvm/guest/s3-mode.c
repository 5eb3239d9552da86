/*
 * distvm bare-metal SMP test guest: mode=s3, mode=reset and
 * mode=poweroff (see smp-workload.h): requests that stop the machine
 *
 * The tables are QEMU's ACPI tables as the firmware laid them out: the
 * RSDP in the BIOS area, its RSDT, the FADT (FACP) in it, which gives the
 * PM1a control port and the FACS, whose waking vector the firmware jumps
 * to, in real mode, when the machine wakes up from S3.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdint.h>
#include "smp-workload.h"
#include "guest-hw.h"

#define RSDP_AREA_START 0xe0000u
#define RSDP_AREA_END   0x100000u
#define RSDP_RSDT       16          /* offsets in the tables */
#define SDT_LENGTH      4
#define SDT_ENTRIES     36
#define FADT_FACS       36
#define FADT_PM1A_CNT   64
#define FACS_WAKING_VECTOR 12
#define PM1_SLP_TYP_S3  (1u << 10)  /* QEMU's _S3 is type 1 */
#define PM1_SLP_TYP_S5  (0u << 10)  /* and _S5 type 0 */
#define PM1_SLP_EN      (1u << 13)
#define PIIX3_RCR       0xcf9
#define RCR_HARD_RESET  0x06        /* system reset, reset the CPU */

#define V(x)            (*(volatile uint32_t *)&(x))

static struct dg_results *const res = (struct dg_results *)DG_RESULT_BASE;
/* In RAM, which S3 keeps: set before the request, seen once resumed. */
static volatile uint32_t suspended;

static uint32_t rd32(uint32_t addr)
{
    return *(volatile uint32_t *)addr;
}

static int is_sig(uint32_t addr, const char *sig, int n)
{
    for (int i = 0; i < n; i++) {
        if (*(volatile char *)(addr + i) != sig[i]) {
            return 0;
        }
    }
    return 1;
}

/* The FADT, or 0. */
static uint32_t find_fadt(void)
{
    for (uint32_t a = RSDP_AREA_START; a < RSDP_AREA_END; a += 16) {
        if (is_sig(a, "RSD PTR ", 8)) {
            uint32_t rsdt = rd32(a + RSDP_RSDT);
            uint32_t end = rsdt + rd32(rsdt + SDT_LENGTH);

            for (uint32_t e = rsdt + SDT_ENTRIES; e + 4 <= end; e += 4) {
                if (is_sig(rd32(e), "FACP", 4)) {
                    return rd32(e);
                }
            }
            return 0;
        }
    }
    return 0;
}

static void fail(const char *why)
{
    res->magic = DG_MAGIC_FAIL;
    say_cpu(0, why);
}

void s3_mode(uint32_t cpu, uint32_t ncpus)
{
    uint32_t fadt, facs;

    if (suspended) {
        V(res->s3_resumed) = 1;
        say_cpu(cpu, " s3 resumed\n");
        V(res->cpu_done[0]) = 1;
        res->magic = DG_MAGIC_DONE;
        say_cpu(cpu, " DONE\n");
        return;
    }
    if (ncpus != 1) {
        fail(": FAIL mode s3 needs cpus=1\n");
        return;
    }
    fadt = find_fadt();
    facs = fadt ? rd32(fadt + FADT_FACS) : 0;
    if (!facs || !is_sig(facs, "FACS", 4)) {
        fail(": FAIL no FADT or FACS\n");
        return;
    }
    res->s3_pm1_cnt = rd32(fadt + FADT_PM1A_CNT);
    *(volatile uint32_t *)(facs + FACS_WAKING_VECTOR) = TRAMPOLINE;
    suspended = 1;
    say_cpu(cpu, " s3 suspending\n");
    outw(res->s3_pm1_cnt, PM1_SLP_TYP_S3 | PM1_SLP_EN);
    for (;;) {
        V(res->s3_after)++;
    }
}

void reset_mode(uint32_t cpu, uint32_t ncpus)
{
    struct dg_reset *r = (struct dg_reset *)DG_RESET_BASE;

    if (r->magic == DG_RESET_MAGIC) {
        V(r->boots)++;
        say_cpu(cpu, " started again after the reset\n");
        V(res->cpu_done[0]) = 1;
        return;
    }
    if (ncpus != 1) {
        fail(": FAIL mode reset needs cpus=1\n");
        return;
    }
    r->boots = 1;
    r->after = 0;
    r->magic = DG_RESET_MAGIC;
    say_cpu(cpu, " resetting\n");
    outb(PIIX3_RCR, RCR_HARD_RESET);
    for (;;) {
        V(r->after)++;
    }
}

void poweroff_mode(uint32_t cpu, uint32_t ncpus)
{
    uint32_t fadt = find_fadt();

    if (ncpus != 1) {
        fail(": FAIL mode poweroff needs cpus=1\n");
        return;
    }
    if (!fadt) {
        fail(": FAIL no FADT\n");
        return;
    }
    say_cpu(cpu, " powering off\n");
    outw(rd32(fadt + FADT_PM1A_CNT), PM1_SLP_TYP_S5 | PM1_SLP_EN);
    for (;;) {
        V(res->s3_after)++;
    }
}
