/*
 * distvm bare-metal SMP test guest: mode=irq (see smp-workload.h)
 *
 * The devices are the home node's; the test moves the two vCPUs between
 * nodes while the 8259, the I/O APIC and the LAPICs interrupt them.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdint.h>
#include "smp-workload.h"
#include "guest-hw.h"

#define PIC2_CMD        0xa0
#define PIC2_DATA       0xa1
#define PIC_EOI         0x20
#define PIT_CMD         0x43
#define PIT_CH0         0x40
#define PIT_DIVISOR     2386            /* about 500 Hz */
#define RTC_INDEX       0x70
#define RTC_DATA        0x71
#define RTC_REG_A       0x0a
#define RTC_REG_B       0x0b
#define RTC_REG_C       0x0c
#define RTC_RATE_256HZ  0x08
#define RTC_PIE         0x40
#define RTC_ISA_IRQ     8
#define IOAPIC_BASE     0xfec00000u
#define IOAPIC_REDTBL(pin) (0x10 + 2 * (pin))
#define IOAPIC_LEVEL    (1u << 15)
#define IOAPIC_MASKED   (1u << 16)
#define LAPIC_TPR       0x080
#define LAPIC_LDR       0x0d0
#define LAPIC_DFR       0x0e0
#define ICR_LOWEST      (1u << 8)
#define ICR_NMI         (4u << 8)
#define ICR_LOGICAL     (1u << 11)
#define ICR_SELF        (1u << 18)
#define ICR_ALL         (2u << 18)
#define ICR_ALL_BUT_SELF (3u << 18)
/* An IPI not taken after this many TSC ticks (a second or two) is lost. */
#define IPI_TIMEOUT_TICKS 4000000000ull

#define V(x)            (*(volatile uint32_t *)&(x))

static struct dg_results *const res = (struct dg_results *)DG_RESULT_BASE;
/* CPU 0 sent its last IPI: CPU 1 may stop taking interrupts. */
static volatile uint32_t ipis_done;


static uint8_t cmos_read(uint8_t reg)
{
    outb(RTC_INDEX, reg);
    return inb(RTC_DATA);
}

static void cmos_write(uint8_t reg, uint8_t v)
{
    outb(RTC_INDEX, reg);
    outb(RTC_DATA, v);
}

void ioapic_write(uint32_t reg, uint32_t v)
{
    *(volatile uint32_t *)IOAPIC_BASE = reg;
    *(volatile uint32_t *)(IOAPIC_BASE + 0x10) = v;
}

/* The RTC's periodic interrupt: reading register C lowers its line. */
void cmos_ack(void)
{
    cmos_read(RTC_REG_C);
}

void irq_dispatch(uint32_t vector);
void irq_dispatch(uint32_t vector)
{
    uint32_t cpu;

    if (x2apic_on) {
        x2apic_dispatch(vector);
        return;
    }
    if (msi_on) {
        msi_dispatch(vector);
        return;
    }
    if (topo_on) {
        topology_dispatch(vector);
        return;
    }
    cpu = my_cpu();
    if (vector == 2) {
        V(res->ipi_kind[cpu][DG_IPI_NMI])++;
    } else if (vector == DG_PIC_VECTOR) {
        V(res->pic_ticks)++;
        outb(PIC1_CMD, PIC_EOI);
    } else if (vector == DG_PIC_VECTOR + 7) {
        V(res->pic_spurious)++;         /* not in service: no EOI */
    } else if (vector == DG_RTC_VECTOR) {
        cmos_read(RTC_REG_C);           /* the RTC lowers its line */
        V(res->rtc_ticks)++;
        lapic_write(LAPIC_EOI, 0);
    } else {
        V(res->ipi_kind[cpu][vector - DG_IPI_BASE])++;
        lapic_write(LAPIC_EOI, 0);
    }
}

/* LINT0 of CPU 0 takes the 8259's output; flat logical IDs 1 << cpu. */
void irq_cpu_setup(uint32_t cpu)
{
    for (const uint32_t *p = irq_stubs; p[1]; p += 2) {
        idt_set(p[0], (void *)p[1]);
    }
    idt_load();
    lapic_write(LAPIC_SVR, 0x1ff);
    lapic_write(LAPIC_TPR, 0);
    lapic_write(LAPIC_DFR, 0xffffffffu);
    lapic_write(LAPIC_LDR, (1u << cpu) << 24);
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED);
    lapic_write(LAPIC_LVT_LINT1, LVT_MASKED);
    lapic_write(LAPIC_LVT_LINT0, cpu == 0 ? LVT_EXTINT : LVT_MASKED);
}

void pit_pic_start(void)
{
    /* The 8259s: vectors from DG_PIC_VECTOR, only IRQ 0 unmasked. */
    outb(PIC1_CMD, 0x11);
    outb(PIC2_CMD, 0x11);
    outb(PIC1_DATA, DG_PIC_VECTOR);
    outb(PIC2_DATA, DG_PIC_VECTOR + 8);
    outb(PIC1_DATA, 0x04);
    outb(PIC2_DATA, 0x02);
    outb(PIC1_DATA, 0x01);
    outb(PIC2_DATA, 0x01);
    outb(PIC1_DATA, 0xfe);
    outb(PIC2_DATA, 0xff);
    /* The PIT's channel 0 as a rate generator. */
    outb(PIT_CMD, 0x34);
    outb(PIT_CH0, PIT_DIVISOR & 0xff);
    outb(PIT_CH0, PIT_DIVISOR >> 8);
}

static void irq_devices_start(void)
{
    pit_pic_start();
    /* The RTC's periodic interrupt, level-triggered, to APIC ID 1. */
    ioapic_write(IOAPIC_REDTBL(RTC_ISA_IRQ) + 1, 1u << 24);
    ioapic_write(IOAPIC_REDTBL(RTC_ISA_IRQ), DG_RTC_VECTOR | IOAPIC_LEVEL);
    cmos_write(RTC_REG_A, 0x20 | RTC_RATE_256HZ);
    cmos_write(RTC_REG_B, cmos_read(RTC_REG_B) | RTC_PIE);
    cmos_read(RTC_REG_C);
}

static void irq_devices_stop(void)
{
    outb(PIC1_DATA, 0xff);
    cmos_write(RTC_REG_B, cmos_read(RTC_REG_B) & ~RTC_PIE);
    ioapic_write(IOAPIC_REDTBL(RTC_ISA_IRQ), IOAPIC_MASKED);
    cmos_read(RTC_REG_C);
}

static void ipi_send(uint32_t kind)
{
    static const uint32_t icr[DG_IPI_KINDS] = {
        [DG_IPI_FIXED] = 0,
        [DG_IPI_LOGICAL] = ICR_LOGICAL,
        [DG_IPI_LOWEST] = ICR_LOGICAL | ICR_LOWEST,
        [DG_IPI_NMI] = ICR_NMI,
        [DG_IPI_ALL_BUT_SELF] = ICR_ALL_BUT_SELF,
        [DG_IPI_ALL] = ICR_ALL,
        [DG_IPI_SELF] = ICR_SELF,
    };
    /* CPU 1: APIC ID 1, or logical ID 1 << 1 */
    uint32_t dest = icr[kind] & ICR_LOGICAL ? 2 : 1;

    lapic_write(LAPIC_ICR_HI, dest << 24);
    lapic_write(LAPIC_ICR_LO, icr[kind] |
                (kind == DG_IPI_NMI ? 0 : DG_IPI_BASE + kind));
    wait_icr_idle();
}

/* One IPI of each kind, each once the previous one was taken. */
static void ipi_round(void)
{
    for (uint32_t kind = 0; kind < DG_IPI_KINDS; kind++) {
        uint32_t want0 = V(res->ipi_kind[0][kind]) +
                         (kind == DG_IPI_ALL || kind == DG_IPI_SELF);
        uint32_t want1 = V(res->ipi_kind[1][kind]) + (kind != DG_IPI_SELF);
        uint64_t start = rdtsc();

        ipi_send(kind);
        while (V(res->ipi_kind[0][kind]) != want0 ||
               V(res->ipi_kind[1][kind]) != want1) {
            if (rdtsc() - start > IPI_TIMEOUT_TICKS) {
                V(res->ipi_lost[kind])++;
                break;
            }
            cpu_relax();
        }
    }
    V(res->ipi_rounds)++;
}

void irq_mode(uint32_t cpu, uint32_t ncpus)
{
    if (ncpus != 2) {
        res->magic = DG_MAGIC_FAIL;
        say_cpu(cpu, ": FAIL mode irq needs cpus=2\n");
        return;
    }
    irq_cpu_setup(cpu);
    if (cpu == 1) {
        while (!ipis_done) {
            __asm__ volatile("sti; hlt");
        }
        __asm__ volatile("cli");
        V(res->cpu_done[1]) = 1;
        return;
    }
    irq_devices_start();
    __asm__ volatile("sti");
    say_cpu(0, " irq running\n");
    while (!V(res->stop)) {
        ipi_round();
    }
    ipis_done = 1;
    __asm__ volatile("cli");
    /* CPU 1 halts until an interrupt: the RTC's wakes it up to stop. */
    while (!V(res->cpu_done[1])) {
        cpu_relax();
    }
    irq_devices_stop();
    say_cpu(0, " irq done\n");
    V(res->cpu_done[0]) = 1;
}
