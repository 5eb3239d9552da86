/*
 * distvm bare-metal SMP test guest: CPU, LAPIC and port helpers, and the
 * functions of smp-guest.c that its other modes use
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef DISTVM_GUEST_HW_H
#define DISTVM_GUEST_HW_H

#include <stdint.h>

#define TRAMPOLINE      0x8000u     /* the APs' start-up code (boot.S) */
#define LAPIC_BASE      0xfee00000u
#define LAPIC_ID        0x020
#define LAPIC_SVR       0x0f0
#define LAPIC_ICR_LO    0x300
#define LAPIC_ICR_HI    0x310
#define ICR_PENDING     (1u << 12)
#define LAPIC_EOI       0x0b0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_TMR_INIT  0x380
#define LAPIC_TMR_DIV   0x3e0
#define LVT_MASKED      (1u << 16)
#define LVT_PERIODIC    (1u << 17)
#define LVT_EXTINT      (7u << 8)
#define PIC1_CMD        0x20
#define PIC1_DATA       0x21
#define MSR_APIC_BASE   0x1b
#define APIC_BASE_X2APIC (1u << 10)
#define X2APIC_ID       0x802

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline void outw(uint16_t port, uint16_t v)
{
    __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint32_t inl(uint16_t port)
{
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline void cpu_relax(void)
{
    __asm__ volatile("pause" ::: "memory");
}

static inline uint32_t lapic_read(uint32_t reg)
{
    return *(volatile uint32_t *)(LAPIC_BASE + reg);
}

static inline void lapic_write(uint32_t reg, uint32_t v)
{
    *(volatile uint32_t *)(LAPIC_BASE + reg) = v;
}

static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;

    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return (uint64_t)hi << 32 | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v),
                     "d"((uint32_t)(v >> 32)));
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;

    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

#define PCI_ADDR        0xcf8
#define PCI_DATA        0xcfc
#define PCI_COMMAND     0x04
#define PCI_CMD_MEMORY  0x02
#define PCI_CMD_MASTER  0x04
#define PCI_BAR0        0x10
#define PCI_CAP_PTR     0x34
#define PCI_CAP_MSI     0x05
#define MSI_CTRL        0x02            /* from the capability */
#define MSI_ENABLE      0x0001
#define MSI_ADDR_LO     0x04
#define MSI_ADDR_HI     0x08
#define MSI_DATA        0x0c            /* with a 64-bit address */

static inline uint32_t pci_read(uint32_t bdf, uint32_t reg)
{
    outl(PCI_ADDR, 0x80000000u | bdf << 8 | (reg & 0xfc));
    return inl(PCI_DATA);
}

static inline void pci_write(uint32_t bdf, uint32_t reg, uint32_t v)
{
    outl(PCI_ADDR, 0x80000000u | bdf << 8 | (reg & 0xfc));
    outl(PCI_DATA, v);
}

/* pci-msi.c */
int pci_find_msi(uint32_t id, uint32_t *bdf, uint32_t *msi_cap,
                 uint32_t *mmio);

/* boot.S: pairs of a vector and its entry, ended by 0, 0 */
extern const uint32_t irq_stubs[];

/* smp-guest.c */
void say_cpu(uint32_t cpu, const char *what);
uint32_t my_cpu(void);
void idt_set(int vec, void *handler);
void idt_load(void);
void wait_icr_idle(void);

/* irq-mode.c */
void irq_mode(uint32_t cpu, uint32_t ncpus);
void irq_cpu_setup(uint32_t cpu);
void cmos_ack(void);
void pit_pic_start(void);
void ioapic_write(uint32_t reg, uint32_t v);

/* s3-mode.c */
void s3_mode(uint32_t cpu, uint32_t ncpus);
void reset_mode(uint32_t cpu, uint32_t ncpus);
void poweroff_mode(uint32_t cpu, uint32_t ncpus);

/* vmport-mode.c */
void vmport_mode(uint32_t cpu, uint32_t ncpus);
void affinity_mode(uint32_t cpu, uint32_t ncpus, uint32_t rounds);
void busy_mode(uint32_t cpu);

/* msi-mode.c */
extern volatile uint32_t msi_on;
void msi_mode(uint32_t cpu, uint32_t ncpus);
void msi_dispatch(uint32_t vector);

/* topology-mode.c */
extern volatile uint32_t topo_on;
void topology_mode(uint32_t cpu, uint32_t ncpus);
void topology_dispatch(uint32_t vector);

/* a20-mode.c */
void a20_mode(uint32_t cpu, uint32_t ncpus);

/* lint0-mode.c */
void lint0_mode(uint32_t cpu);

/* remap-mode.c */
void remap_mode(uint32_t cpu, uint32_t ncpus, uint32_t rounds);
void ipiflood_mode(uint32_t cpu, uint32_t ncpus, uint32_t count);

/* xcode-mode.c */
void xcode_mode(uint32_t cpu, uint32_t ncpus, uint32_t rounds, uint32_t how);

/* x2apic-mode.c */
extern volatile uint32_t x2apic_on;
void x2apic_mode(uint32_t cpu, uint32_t ncpus, uint32_t then_reset);
void x2apic_dispatch(uint32_t vector);

#endif /* DISTVM_GUEST_HW_H */
