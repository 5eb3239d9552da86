/*
 * distvm bare-metal SMP test guest: mode=msi (see smp-workload.h)
 *
 * QEMU's edu device, a device model of the home node, sends its
 * interrupts as MSIs: the home node delivers each to the LAPICs its
 * address and data name, wherever their vCPUs run.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdint.h>
#include "smp-workload.h"
#include "guest-hw.h"

#define MSI_ADDR_LOGICAL (1u << 2)
#define MSI_DATA_LOWEST (1u << 8)
#define EDU_ID          0x11e81234u     /* device, vendor */
#define EDU_RAISE       0x60
#define LAPIC_LDR       0x0d0
#define LAPIC_DFR       0x0e0
#define LAPIC_TPR       0x080
#define MSI_CPUS        4
/* An MSI not taken after this many TSC ticks (a second or two) is lost. */
#define MSI_TIMEOUT_TICKS 4000000000ull

#define V(x)            (*(volatile uint32_t *)&(x))

static struct dg_results *const res = (struct dg_results *)DG_RESULT_BASE;
volatile uint32_t msi_on;
static volatile uint32_t msi_ready, msi_done;
static uint32_t edu_bdf, edu_msi, edu_mmio;


void msi_dispatch(uint32_t vector)
{
    uint32_t cpu = my_cpu();

    for (uint32_t kind = 0; kind < DG_MSI_KINDS; kind++) {
        if (dg_x2_vector(kind) == vector) {
            V(res->msi[cpu][kind])++;
        }
    }
    lapic_write(LAPIC_EOI, 0);
}

/* The edu device on bus 0, its MSI capability and its MMIO BAR */
static int edu_find(void)
{
    return pci_find_msi(EDU_ID, &edu_bdf, &edu_msi, &edu_mmio);
}

static uint32_t taken(uint32_t kind)
{
    uint32_t n = 0;

    for (uint32_t cpu = 0; cpu < MSI_CPUS; cpu++) {
        n += V(res->msi[cpu][kind]);
    }
    return n;
}

/* One MSI of @kind to @dest, waited for until @want of that kind were taken */
static void msi_one(uint32_t kind, uint32_t dest, uint32_t want)
{
    static const uint32_t addr[DG_MSI_KINDS] = {
        [DG_MSI_LOGICAL] = MSI_ADDR_LOGICAL,
        [DG_MSI_LOWEST] = MSI_ADDR_LOGICAL,
    };
    uint64_t start = rdtsc();

    pci_write(edu_bdf, edu_msi + MSI_ADDR_LO,
              LAPIC_BASE | dest << 12 | addr[kind]);
    pci_write(edu_bdf, edu_msi + MSI_DATA, dg_x2_vector(kind) |
              (kind == DG_MSI_LOWEST ? MSI_DATA_LOWEST : 0));
    *(volatile uint32_t *)(edu_mmio + EDU_RAISE) = 1;
    while (taken(kind) != want) {
        if (rdtsc() - start > MSI_TIMEOUT_TICKS) {
            V(res->msi_lost[kind])++;
            return;
        }
        cpu_relax();
    }
}

/* One MSI of each kind, each once every CPU it addresses took it */
static void msi_round(void)
{
    for (uint32_t cpu = 0; cpu < MSI_CPUS; cpu++) {
        msi_one(DG_MSI_PHYSICAL, cpu, taken(DG_MSI_PHYSICAL) + 1);
    }
    msi_one(DG_MSI_LOGICAL, DG_MSI_LOGICAL_DEST,
            taken(DG_MSI_LOGICAL) + MSI_CPUS - 1);
    msi_one(DG_MSI_LOWEST, DG_MSI_LOGICAL_DEST, taken(DG_MSI_LOWEST) + 1);
    msi_one(DG_MSI_BROADCAST, 0xff, taken(DG_MSI_BROADCAST) + MSI_CPUS);
    V(res->msi_rounds)++;
}

void msi_mode(uint32_t cpu, uint32_t ncpus)
{
    if (ncpus != MSI_CPUS) {
        res->magic = DG_MAGIC_FAIL;
        say_cpu(cpu, ": FAIL mode msi needs cpus=4\n");
        return;
    }
    for (const uint32_t *p = irq_stubs; p[1]; p += 2) {
        idt_set(p[0], (void *)p[1]);
    }
    idt_load();
    msi_on = 1;
    lapic_write(LAPIC_SVR, 0x1ff);
    lapic_write(LAPIC_TPR, 0);
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED);
    lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
    lapic_write(LAPIC_LVT_LINT1, LVT_MASKED);
    lapic_write(LAPIC_DFR, 0xffffffffu);
    lapic_write(LAPIC_LDR, (1u << cpu) << 24);
    __atomic_fetch_add(&msi_ready, 1, __ATOMIC_SEQ_CST);
    if (cpu != 0) {
        __asm__ volatile("sti");
        while (!msi_done) {
            cpu_relax();
        }
        __asm__ volatile("cli");
        V(res->cpu_done[cpu]) = 1;
        return;
    }
    /* The 8259 masked: no firmware tick latched on the masked LINT0 */
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    if (!edu_find()) {
        res->magic = DG_MAGIC_FAIL;
        say_cpu(0, ": FAIL no edu device with MSI (-device edu)\n");
        msi_done = 1;
        return;
    }
    while (msi_ready != MSI_CPUS) {
        cpu_relax();
    }
    pci_write(edu_bdf, edu_msi + MSI_ADDR_HI, 0);
    pci_write(edu_bdf, edu_msi, pci_read(edu_bdf, edu_msi) |
              MSI_ENABLE << 16);
    __asm__ volatile("sti");
    say_cpu(0, " msi running\n");
    while (!V(res->stop)) {
        msi_round();
    }
    __asm__ volatile("cli");
    msi_done = 1;
    for (uint32_t c = 1; c < MSI_CPUS; c++) {
        while (!V(res->cpu_done[c])) {
            cpu_relax();
        }
    }
    say_cpu(0, " msi done\n");
    V(res->cpu_done[0]) = 1;
}
