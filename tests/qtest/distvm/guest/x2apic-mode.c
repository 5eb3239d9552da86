/*
 * distvm bare-metal SMP test guest: mode=x2apic (see smp-workload.h)
 *
 * Every LAPIC is switched to x2APIC mode on the vCPU's own node; the
 * nodes that deliver to it (home's I/O APIC, the other vCPUs' IPIs) must
 * then address it as an x2APIC: by its x2APIC ID and its logical ID
 * (cluster and bit, from the APIC ID), and broadcasts to all x2APICs.
 * After a reset (reset=1), they must address it as an xAPIC again.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdint.h>
#include "smp-workload.h"
#include "guest-hw.h"

#define X2APIC_TPR      0x808
#define X2APIC_EOI      0x80b
#define X2APIC_LDR      0x80d
#define X2APIC_SVR      0x80f
#define X2APIC_ICR      0x830
#define X2APIC_LVT_TIMER 0x832
#define X2APIC_LVT_LINT0 0x835
#define X2APIC_LVT_LINT1 0x836
#define ICR_LOWEST      (1u << 8)
#define ICR_LOGICAL     (1u << 11)
#define ICR_ALL_BUT_SELF (3u << 18)
#define IOAPIC_REDTBL(pin) (0x10 + 2 * (pin))
#define IOAPIC_LEVEL    (1u << 15)
#define IOAPIC_LOGICAL  (1u << 11)
#define IOAPIC_MASKED   (1u << 16)
#define PIC2_DATA       0xa1
#define PIIX3_RCR       0xcf9
#define RCR_HARD_RESET  0x06        /* system reset, reset the CPU */
#define ICR_NMI         (4u << 8)
#define RTC_INDEX       0x70
#define RTC_DATA        0x71
#define RTC_REG_A       0x0a
#define RTC_REG_B       0x0b
#define RTC_RATE_256HZ  0x08
#define RTC_PIE         0x40
#define RTC_ISA_IRQ     8
#define X2_CPUS         4
/* An IPI not taken after this many TSC ticks (a second or two) is lost. */
#define IPI_TIMEOUT_TICKS 4000000000ull

#define V(x)            (*(volatile uint32_t *)&(x))

static struct dg_results *const res = (struct dg_results *)DG_RESULT_BASE;
/* 1: in x2APIC mode; 2: in xAPIC mode after the reset */
volatile uint32_t x2apic_on;
static volatile uint32_t x2_ready, x2_ipis_done, x2_turn;


void x2apic_dispatch(uint32_t vector)
{
    uint32_t cpu = my_cpu();

    if (vector == 2) {
        V(res->x2_nmi[cpu])++;
        return;
    }
    if (vector == DG_RTC_VECTOR) {
        cmos_ack();
        V(res->x2_rtc[cpu])++;
    } else {
        for (uint32_t kind = 0; kind < DG_X2_KINDS; kind++) {
            if (dg_x2_vector(kind) == vector) {
                V(res->x2_ipi[cpu][kind])++;
            }
        }
    }
    if (x2apic_on == 1) {
        wrmsr(X2APIC_EOI, 0);
    } else {
        lapic_write(LAPIC_EOI, 0);
    }
}

static void mask_8259(void)
{
    /*
     * The firmware left the PIT's IRQ 0 unmasked in the 8259, at its own
     * vectors, on the LINT0 that the set-up masks: a tick latched
     * meanwhile would still be taken after the "sti".  Masked in the 8259
     * first, it is withdrawn.
     */
    outb(PIC1_DATA, 0xff);
    outb(PIC2_DATA, 0xff);
}

static void x2apic_cpu_setup(uint32_t cpu)
{
    for (const uint32_t *p = irq_stubs; p[1]; p += 2) {
        idt_set(p[0], (void *)p[1]);
    }
    idt_load();
    x2apic_on = 1;
    wrmsr(MSR_APIC_BASE, rdmsr(MSR_APIC_BASE) | APIC_BASE_X2APIC);
    wrmsr(X2APIC_SVR, 0x1ff);
    wrmsr(X2APIC_TPR, 0);
    wrmsr(X2APIC_LVT_TIMER, LVT_MASKED);
    wrmsr(X2APIC_LVT_LINT0, LVT_MASKED);
    wrmsr(X2APIC_LVT_LINT1, LVT_MASKED);
    V(res->x2_ldr[cpu]) = rdmsr(X2APIC_LDR);
    __atomic_fetch_add(&x2_ready, 1, __ATOMIC_SEQ_CST);
}

static void rtc_start(void)
{
    ioapic_write(IOAPIC_REDTBL(RTC_ISA_IRQ) + 1,
                 (uint32_t)DG_X2_RTC_DEST << 24);
    ioapic_write(IOAPIC_REDTBL(RTC_ISA_IRQ),
                 DG_RTC_VECTOR | IOAPIC_LEVEL | IOAPIC_LOGICAL);
    outb(RTC_INDEX, RTC_REG_A);
    outb(RTC_DATA, 0x20 | RTC_RATE_256HZ);
    outb(RTC_INDEX, RTC_REG_B);
    outb(RTC_DATA, inb(RTC_DATA) | RTC_PIE);
    cmos_ack();
}

static void rtc_stop(void)
{
    outb(RTC_INDEX, RTC_REG_B);
    outb(RTC_DATA, inb(RTC_DATA) & ~RTC_PIE);
    ioapic_write(IOAPIC_REDTBL(RTC_ISA_IRQ), IOAPIC_MASKED);
    cmos_ack();
}

static void ipi_send(uint32_t kind, uint32_t dest)
{
    static const uint32_t icr[DG_X2_KINDS] = {
        [DG_X2_LOGICAL] = ICR_LOGICAL,
        [DG_X2_LOWEST] = ICR_LOGICAL | ICR_LOWEST,
        [DG_X2_ALL_BUT_SELF] = ICR_ALL_BUT_SELF,
        [DG_X2_OTHER_CLUSTER] = ICR_LOGICAL,
    };

    wrmsr(X2APIC_ICR, (uint64_t)dest << 32 | icr[kind] | dg_x2_vector(kind));
}

static uint32_t taken(uint32_t kind, uint32_t first, uint32_t last)
{
    uint32_t n = 0;

    for (uint32_t cpu = first; cpu <= last; cpu++) {
        n += V(res->x2_ipi[cpu][kind]);
    }
    return n;
}

/* Send one IPI and wait until CPUs @first to @last took @want of @kind. */
static void ipi_one(uint32_t kind, uint32_t dest, uint32_t first,
                    uint32_t last, uint32_t want)
{
    uint64_t start = rdtsc();

    ipi_send(kind, dest);
    while (taken(kind, first, last) != want) {
        if (rdtsc() - start > IPI_TIMEOUT_TICKS) {
            V(res->x2_lost[kind])++;
            return;
        }
        cpu_relax();
    }
}

/* One IPI of each kind, each once every CPU it addresses took it. */
static void ipi_round(void)
{
    ipi_send(DG_X2_OTHER_CLUSTER, 1u << 16 | DG_X2_RTC_DEST);
    ipi_send(DG_X2_XAPIC_BROADCAST, 0xff);
    for (uint32_t cpu = 1; cpu < X2_CPUS; cpu++) {
        ipi_one(DG_X2_PHYSICAL, cpu, cpu, cpu,
                V(res->x2_ipi[cpu][DG_X2_PHYSICAL]) + 1);
    }
    ipi_one(DG_X2_LOGICAL, DG_X2_RTC_DEST, 1, X2_CPUS - 1,
            taken(DG_X2_LOGICAL, 1, X2_CPUS - 1) + X2_CPUS - 1);
    ipi_one(DG_X2_LOWEST, DG_X2_RTC_DEST, 1, X2_CPUS - 1,
            taken(DG_X2_LOWEST, 1, X2_CPUS - 1) + 1);
    ipi_one(DG_X2_ALL_BUT_SELF, 0, 1, X2_CPUS - 1,
            taken(DG_X2_ALL_BUT_SELF, 1, X2_CPUS - 1) + X2_CPUS - 1);
    ipi_one(DG_X2_BROADCAST, 0xffffffffu, 0, X2_CPUS - 1,
            taken(DG_X2_BROADCAST, 0, X2_CPUS - 1) + X2_CPUS);
    V(res->x2_rounds)++;
}

static uint32_t nmis_taken_by_all(void)
{
    uint32_t least = V(res->x2_nmi[0]);

    for (uint32_t cpu = 1; cpu < X2_CPUS; cpu++) {
        if (V(res->x2_nmi[cpu]) < least) {
            least = V(res->x2_nmi[cpu]);
        }
    }
    return least;
}

/*
 * After the reset: every CPU, its LAPIC as the reset left it (xAPIC mode,
 * not enabled by software), sends in turn NMIs to physical destination
 * 0xff, which every CPU (the sender too) must take.
 */
static void xapic_after_reset(uint32_t cpu)
{
    if (cpu == 0) {
        mask_8259();
        V(((struct dg_reset *)DG_RESET_BASE)->boots)++;
    }
    for (const uint32_t *p = irq_stubs; p[1]; p += 2) {
        idt_set(p[0], (void *)p[1]);
    }
    idt_load();
    x2apic_on = 2;
    __atomic_fetch_add(&x2_ready, 1, __ATOMIC_SEQ_CST);
    while (x2_ready != X2_CPUS) {
        cpu_relax();
    }
    if (cpu == 0) {
        say_cpu(0, " xapic after the reset\n");
    }
    for (uint32_t t = 0; t < X2_CPUS * DG_X2_RESET_ROUNDS; t++) {
        if (t % X2_CPUS == cpu) {
            uint64_t start = rdtsc();

            lapic_write(LAPIC_ICR_HI, 0xffu << 24);
            lapic_write(LAPIC_ICR_LO, ICR_NMI);
            while (nmis_taken_by_all() < t + 1) {
                if (rdtsc() - start > IPI_TIMEOUT_TICKS) {
                    V(res->x2_lost[DG_X2_XAPIC_BROADCAST])++;
                    break;
                }
                cpu_relax();
            }
            V(x2_turn) = t + 1;
        }
        while (V(x2_turn) <= t) {
            cpu_relax();
        }
    }
    V(res->cpu_done[cpu]) = 1;
}

void x2apic_mode(uint32_t cpu, uint32_t ncpus, uint32_t then_reset)
{
    struct dg_reset *r = (struct dg_reset *)DG_RESET_BASE;

    if (ncpus != X2_CPUS || !(rdmsr(MSR_APIC_BASE) & (1u << 11))) {
        res->magic = DG_MAGIC_FAIL;
        say_cpu(cpu, ": FAIL mode x2apic needs cpus=4, LAPICs enabled\n");
        return;
    }
    if (then_reset && r->magic == DG_RESET_MAGIC) {
        xapic_after_reset(cpu);
        return;
    }
    if (cpu == 0) {
        mask_8259();
    }
    x2apic_cpu_setup(cpu);
    if (cpu != 0) {
        while (!x2_ipis_done) {
            __asm__ volatile("sti; hlt");
        }
        __asm__ volatile("cli");
        V(res->cpu_done[cpu]) = 1;
        return;
    }
    /* No IPI before every LAPIC is in x2APIC mode. */
    while (x2_ready != X2_CPUS) {
        cpu_relax();
    }
    rtc_start();
    __asm__ volatile("sti");
    say_cpu(0, " x2apic running\n");
    while (!V(res->stop)) {
        ipi_round();
    }
    x2_ipis_done = 1;
    __asm__ volatile("cli");
    /* CPUs 1 to 3 halt until an interrupt: the RTC's wakes them up. */
    for (uint32_t c = 1; c < X2_CPUS; c++) {
        while (!V(res->cpu_done[c])) {
            cpu_relax();
        }
    }
    rtc_stop();
    say_cpu(0, " x2apic done\n");
    if (then_reset) {
        r->boots = 1;
        r->after = 0;
        r->magic = DG_RESET_MAGIC;
        say_cpu(0, " resetting\n");
        outb(PIIX3_RCR, RCR_HARD_RESET);
        for (;;) {
            V(r->after)++;
        }
    }
    V(res->cpu_done[0]) = 1;
}
