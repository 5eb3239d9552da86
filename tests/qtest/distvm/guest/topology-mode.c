/*
 * distvm bare-metal SMP test guest: mode=topology (see smp-workload.h)
 *
 * A guest agent of the distmem-topology device: it reads where the
 * cluster runs each vCPU and where guest RAM starts, follows the changes
 * the device interrupts it for, and asks the device to move vCPUs.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdint.h>
#include "smp-workload.h"
#include "guest-hw.h"
#include "hw/distmem/distmem-topology.h"

#define TOPO_ID         (DISTMEM_TOPOLOGY_DEVICE_ID << 16 | \
                         DISTMEM_TOPOLOGY_VENDOR_ID)
#define TOPO_CPUS       4
/* Between two reads of the generation: a few microseconds */
#define TOPO_POLL_PAUSES 200

#define V(x)            (*(volatile uint32_t *)&(x))

static struct dg_results *const res = (struct dg_results *)DG_RESULT_BASE;
volatile uint32_t topo_on;
static uint32_t topo_bdf, topo_msi, topo_mmio;

static uint32_t topo_read(uint32_t reg)
{
    return *(volatile uint32_t *)(topo_mmio + reg);
}

static void topo_write(uint32_t reg, uint32_t v)
{
    *(volatile uint32_t *)(topo_mmio + reg) = v;
}

void topology_dispatch(uint32_t vector)
{
    if (vector == DG_TOPO_VECTOR) {
        V(res->topo_irqs)++;
        /* Cleared, the next change interrupts again */
        topo_write(DISTMEM_TOPOLOGY_INT_STATUS,
                   DISTMEM_TOPOLOGY_INT_CHANGED);
    }
    lapic_write(LAPIC_EOI, 0);
}

/* What does not change while the guest runs */
static void topo_read_layout(void)
{
    res->topo_magic = topo_read(DISTMEM_TOPOLOGY_MAGIC);
    res->topo_version = topo_read(DISTMEM_TOPOLOGY_VERSION);
    res->topo_vcpus = topo_read(DISTMEM_TOPOLOGY_VCPUS);
    res->topo_nodes = topo_read(DISTMEM_TOPOLOGY_NODES);
    res->topo_nranges = topo_read(DISTMEM_TOPOLOGY_RANGES);
    for (uint32_t i = 0; i < res->topo_nranges && i < DG_TOPO_RANGES; i++) {
        uint32_t entry = DISTMEM_TOPOLOGY_RANGE_TABLE +
                         i * DISTMEM_TOPOLOGY_RANGE_SIZE;

        for (uint32_t w = 0; w < DG_TOPO_RANGE_WORDS; w++) {
            res->topo_range[i][w] = topo_read(entry + w * 4);
        }
    }
}

/* The vCPU table, read between two equal generations */
static void topo_read_vcpus(void)
{
    uint32_t node[TOPO_CPUS], gen;

    do {
        gen = topo_read(DISTMEM_TOPOLOGY_GENERATION);
        for (uint32_t cpu = 0; cpu < TOPO_CPUS; cpu++) {
            node[cpu] = topo_read(DISTMEM_TOPOLOGY_VCPU_TABLE + cpu * 4);
        }
    } while (topo_read(DISTMEM_TOPOLOGY_GENERATION) != gen);
    if (gen == V(res->topo_gen) && V(res->topo_found)) {
        return;
    }
    for (uint32_t cpu = 0; cpu < TOPO_CPUS; cpu++) {
        V(res->topo_node[cpu]) = node[cpu];
    }
    if (V(res->topo_found)) {
        V(res->topo_changes)++;
    }
    /* Last: the test reads the table once it sees the generation */
    V(res->topo_gen) = gen;
    V(res->topo_found) = 1;
}

static void topo_request(void)
{
    uint32_t ask = V(res->topo_ask);

    topo_write(DISTMEM_TOPOLOGY_REQ_VCPU, V(res->topo_req[DG_TOPO_VCPU]));
    topo_write(DISTMEM_TOPOLOGY_REQ_NODE, V(res->topo_req[DG_TOPO_NODE]));
    topo_write(DISTMEM_TOPOLOGY_REQ_ADDR_LO, V(res->topo_req[DG_TOPO_ADDR]));
    topo_write(DISTMEM_TOPOLOGY_REQ_ADDR_HI, 0);
    topo_write(DISTMEM_TOPOLOGY_REQ_CMD, V(res->topo_req[DG_TOPO_CMD]));
    V(res->topo_status) = topo_read(DISTMEM_TOPOLOGY_REQ_STATUS);
    V(res->topo_asked) = ask;
}

void topology_mode(uint32_t cpu, uint32_t ncpus)
{
    if (ncpus != TOPO_CPUS) {
        res->magic = DG_MAGIC_FAIL;
        say_cpu(cpu, ": FAIL mode topology needs cpus=4\n");
        return;
    }
    if (cpu != 0) {
        for (;;) {
            __asm__ volatile("cli; hlt");
        }
    }
    /* The 8259 masked: no firmware tick latched on the masked LINT0 */
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    if (!pci_find_msi(TOPO_ID, &topo_bdf, &topo_msi, &topo_mmio)) {
        res->magic = DG_MAGIC_FAIL;
        say_cpu(0, ": FAIL no distmem-topology device with MSI\n");
        return;
    }
    for (const uint32_t *p = irq_stubs; p[1]; p += 2) {
        idt_set(p[0], (void *)p[1]);
    }
    idt_load();
    topo_on = 1;
    lapic_write(LAPIC_SVR, 0x1ff);
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED);
    lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
    lapic_write(LAPIC_LVT_LINT1, LVT_MASKED);
    /* Physical destination: APIC ID 0, CPU 0 wherever it runs */
    pci_write(topo_bdf, topo_msi + MSI_ADDR_LO, LAPIC_BASE);
    pci_write(topo_bdf, topo_msi + MSI_ADDR_HI, 0);
    pci_write(topo_bdf, topo_msi + MSI_DATA, DG_TOPO_VECTOR);
    pci_write(topo_bdf, topo_msi, pci_read(topo_bdf, topo_msi) |
              MSI_ENABLE << 16);
    topo_read_layout();
    topo_write(DISTMEM_TOPOLOGY_INT_MASK, DISTMEM_TOPOLOGY_INT_CHANGED);
    topo_read_vcpus();
    __asm__ volatile("sti");
    say_cpu(0, " topology running\n");
    while (!V(res->stop)) {
        topo_read_vcpus();
        if (V(res->topo_ask) != V(res->topo_asked)) {
            topo_request();
        }
        for (uint32_t i = 0; i < TOPO_POLL_PAUSES; i++) {
            cpu_relax();
        }
    }
    __asm__ volatile("cli");
    topo_read_vcpus();
    say_cpu(0, " topology done\n");
    V(res->cpu_done[0]) = 1;
}
