/*
 * distvm bare-metal SMP test guest
 *
 * The boot CPU starts every other CPU with INIT/SIPI, then all CPUs run
 * the deterministic workload of smp-workload.h: a private buffer, locked
 * adds to a shared counter and a spinlock-guarded non-atomic record; the
 * first and the last CPU also pass DG_RING_ITEMS values through a
 * single-producer/single-consumer ring.  Progress goes to the serial port;
 * the test checks the final memory.
 *
 * Command line (multiboot, -append): "cpus=N iters=M", or "pattern=MB",
 * "cpus=N stress=1", "cpus=N moves=1", "cpus=2 irq=1" or
 * "cpus=5 affinity=R" for the modes
 * described in smp-workload.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdint.h>
#include "smp-workload.h"
#include "guest-hw.h"

#define COM1            0x3f8
#define ICR_INIT        0x00000500u
#define ICR_STARTUP     0x00000600u
#define ICR_ASSERT      0x00004000u
#define ICR_LEVEL       0x00008000u

struct multiboot_info {
    uint32_t flags;
    uint32_t mem_lower, mem_upper, boot_device;
    uint32_t cmdline;
};

extern char trampoline_start[], trampoline_end[], __trampoline_load[];

static struct dg_results *const res = (struct dg_results *)DG_RESULT_BASE;
static volatile uint32_t print_lock;
static volatile uint32_t data_lock;
static volatile uint32_t go;
static uint32_t ncpus = 1, iters = 100000;
static uint32_t mode_pattern_mb, mode_stress, mode_moves, mode_irq;
static uint32_t mode_x2apic, mode_s3, mode_reset, mode_poweroff;
static uint32_t mode_vmport, mode_lint0, mode_affinity, mode_busy, mode_msi,
    mode_a20, mode_remap, mode_topology, mode_xcode, mode_xcode_how,
    mode_ipiflood;


struct idt_entry {
    uint16_t off_lo, sel;
    uint8_t zero, type;
    uint16_t off_hi;
} __attribute__((packed));

static struct idt_entry idt[256] __attribute__((aligned(8)));
extern char timer_entry[], spurious_entry[], ipi_entry[];

/* The ring: the producer owns head, the consumer owns tail. */
static volatile uint64_t ring[DG_RING_SLOTS];
static volatile uint32_t ring_head, ring_tail;

static inline uint32_t xchg(volatile uint32_t *p, uint32_t v)
{
    __asm__ volatile("xchgl %0, %1" : "+r"(v), "+m"(*p) : : "memory");
    return v;
}

static inline void lock_add64(volatile uint64_t *p, uint32_t v)
{
    /* 64-bit locked add from 32-bit code: add low, carry into high. */
    __asm__ volatile("lock addl %1, %0\n\t"
                     "lock adcl $0, 4+%0"
                     : "+m"(*p) : "ri"(v) : "memory", "cc");
}

static inline void lock_inc32(volatile uint32_t *p)
{
    __asm__ volatile("lock incl %0" : "+m"(*p) : : "memory", "cc");
}

static void spin_lock(volatile uint32_t *l)
{
    while (xchg(l, 1)) {
        while (*l) {
            cpu_relax();
        }
    }
}

static void spin_unlock(volatile uint32_t *l)
{
    __asm__ volatile("" ::: "memory");
    *l = 0;
}

static void putc_serial(char c)
{
    while (!(inb(COM1 + 5) & 0x20)) {
        cpu_relax();
    }
    outb(COM1, c);
}

static void puts_serial(const char *s)
{
    while (*s) {
        putc_serial(*s++);
    }
}

static void putu(uint32_t v)
{
    char buf[12];
    int i = 0;

    do {
        buf[i++] = '0' + v % 10;
        v /= 10;
    } while (v);
    while (i) {
        putc_serial(buf[--i]);
    }
}

static void puthex64(uint64_t v)
{
    for (int i = 60; i >= 0; i -= 4) {
        putc_serial("0123456789abcdef"[(v >> i) & 0xf]);
    }
}

void say_cpu(uint32_t cpu, const char *what)
{
    spin_lock(&print_lock);
    puts_serial("distvm-guest: cpu ");
    putu(cpu);
    puts_serial(what);
    spin_unlock(&print_lock);
}

static uint32_t parse_arg(const char *cmdline, const char *key, uint32_t def)
{
    const char *p = cmdline;

    while (p && *p) {
        const char *k = key;
        const char *q = p;

        while (*k && *q == *k) {
            k++;
            q++;
        }
        if (!*k && *q == '=') {
            uint32_t v = 0;

            for (q++; *q >= '0' && *q <= '9'; q++) {
                v = v * 10 + (*q - '0');
            }
            return v;
        }
        while (*p && *p != ' ') {
            p++;
        }
        while (*p == ' ') {
            p++;
        }
    }
    return def;
}

void wait_icr_idle(void)
{
    while (lapic_read(LAPIC_ICR_LO) & ICR_PENDING) {
        cpu_relax();
    }
}

static void delay(uint32_t n)
{
    for (volatile uint32_t i = 0; i < n; i++) {
        cpu_relax();
    }
}

/* INIT, INIT de-assert, then two STARTUPs, to one APIC ID. */
static void start_ap(uint32_t apic_id)
{
    lapic_write(LAPIC_ICR_HI, apic_id << 24);
    lapic_write(LAPIC_ICR_LO, ICR_INIT | ICR_ASSERT | ICR_LEVEL);
    wait_icr_idle();
    lapic_write(LAPIC_ICR_HI, apic_id << 24);
    lapic_write(LAPIC_ICR_LO, ICR_INIT | ICR_LEVEL);
    wait_icr_idle();
    delay(1000);
    for (int i = 0; i < 2; i++) {
        lapic_write(LAPIC_ICR_HI, apic_id << 24);
        lapic_write(LAPIC_ICR_LO, ICR_STARTUP | (TRAMPOLINE >> 12));
        wait_icr_idle();
        delay(200);
    }
}

static void ring_produce(void)
{
    for (uint32_t i = 0; i < DG_RING_ITEMS; i++) {
        while (ring_head - ring_tail == DG_RING_SLOTS) {
            cpu_relax();
        }
        ring[ring_head & (DG_RING_SLOTS - 1)] = dg_ring_value(i);
        __asm__ volatile("" ::: "memory");
        ring_head = ring_head + 1;
    }
}

static void ring_consume(void)
{
    uint64_t sum = 0;
    uint32_t errors = 0;

    for (uint32_t i = 0; i < DG_RING_ITEMS; i++) {
        uint64_t v;

        while (ring_head == ring_tail) {
            cpu_relax();
        }
        v = ring[ring_tail & (DG_RING_SLOTS - 1)];
        __asm__ volatile("" ::: "memory");
        ring_tail = ring_tail + 1;
        if (v != dg_ring_value(i)) {
            errors++;
        }
        sum += v;
    }
    res->ring_sum = sum;
    res->ring_count = DG_RING_ITEMS;
    res->ring_errors = errors;
}

static void workload(uint32_t cpu)
{
    volatile uint64_t *priv =
        (volatile uint64_t *)(DG_PRIV_BASE + cpu * DG_PRIV_BYTES);
    uint64_t x = dg_seed(cpu);
    uint64_t sum = 0;

    for (uint32_t i = 0; i < iters; i++) {
        x = dg_next(x);
        priv[dg_priv_index(x)] += dg_priv_delta(x, i);
        sum += x;
        if (i % DG_ATOMIC_EVERY == 0) {
            lock_add64(&res->atomic_counter, 1);
        }
        if (i % DG_LOCKED_EVERY == 0) {
            volatile uint64_t *px = &res->locked_x;
            uint64_t t;

            spin_lock(&data_lock);
            t = *px;            /* a deliberately non-atomic update */
            cpu_relax();
            *px = t + 1;
            res->locked_y = res->locked_y + 2;
            res->locked_z = res->locked_z + cpu + 1;
            spin_unlock(&data_lock);
        }
    }
    if (ncpus > 1 && cpu == 0) {
        ring_produce();
    } else if (ncpus > 1 && cpu == ncpus - 1) {
        ring_consume();
    }
    res->checksum[cpu] = sum;
    __asm__ volatile("" ::: "memory");
    res->cpu_done[cpu] = 1;
    spin_lock(&print_lock);
    puts_serial("distvm-guest: cpu ");
    putu(cpu);
    puts_serial(" checksum ");
    puthex64(sum);
    puts_serial("\n");
    spin_unlock(&print_lock);
}

static uint64_t pattern_sum(void)
{
    uint64_t sum = 0;

    for (uint32_t a = DG_PATTERN_BASE;
         a < DG_PATTERN_BASE + (mode_pattern_mb << 20); a += 8) {
        sum += *(volatile uint64_t *)a;
    }
    return sum;
}

/* mode=pattern, on the boot CPU only: write, then serve the mailbox. */
static void pattern(void)
{
    uint32_t seen = 0;

    for (uint32_t a = DG_PATTERN_BASE;
         a < DG_PATTERN_BASE + (mode_pattern_mb << 20); a += 8) {
        *(volatile uint64_t *)a = dg_pattern(a);
    }
    res->magic = DG_MAGIC_PATTERN;
    puts_serial("distvm-guest: pattern written\n");
    for (;;) {
        uint32_t seq = *(volatile uint32_t *)&res->mailbox_seq;

        if (seq == seen) {
            cpu_relax();
            continue;
        }
        seen = seq;
        res->pattern_sum = pattern_sum();
        __asm__ volatile("" ::: "memory");
        res->mailbox_ack = seq;
        puts_serial("distvm-guest: mailbox ");
        putu(seq);
        puts_serial(" pattern sum ");
        puthex64(res->pattern_sum);
        puts_serial("\n");
    }
}

/* mode=stress: rewrite this CPU's pages until told to stop. */
static void stress(uint32_t cpu)
{
    volatile uint64_t *base = (volatile uint64_t *)
        (DG_STRESS_BASE + cpu * DG_STRESS_PAGES * 4096u);
    uint32_t k;

    for (k = 1; !*(volatile uint32_t *)&res->stop; k++) {
        for (uint32_t i = 0; i < DG_STRESS_PAGES; i++) {
            base[i * 512 + k % 512] = dg_stress_value(cpu, k, i);
        }
        res->rounds[cpu] = k;
    }
    res->cpu_done[cpu] = 1;
    say_cpu(cpu, " stress done\n");
}

/* The PIIX IDE BAR 4, through configuration mechanism 1. */
#define HPET_BASE       0xfed00000u
#define HPET_CONFIG     0x10
#define HPET_COUNTER    0xf0

static void hpet_enable(void)
{
    *(volatile uint32_t *)(HPET_BASE + HPET_CONFIG) = 1;
}

static void hpet_probe(uint32_t cpu)
{
    res->hpet_probe[cpu][0] = *(volatile uint32_t *)(HPET_BASE +
                                                     HPET_COUNTER);
    delay(10000);
    res->hpet_probe[cpu][1] = *(volatile uint32_t *)(HPET_BASE +
                                                     HPET_COUNTER);
}

static uint32_t pci_probe(void)
{
    uint32_t v;

    spin_lock(&print_lock);
    outl(0xcf8, 0x80000000u | (1 << 11) | (1 << 8) | 0x20);
    v = inl(0xcfc);
    spin_unlock(&print_lock);
    return v;
}

void timer_interrupt(void);
void timer_interrupt(void)
{
    res->timer_ticks[my_cpu()]++;
    lapic_write(LAPIC_EOI, 0);
}

void ipi_interrupt(void);
void ipi_interrupt(void)
{
    lock_inc32(&res->ipi_recv[my_cpu()]);
    lapic_write(LAPIC_EOI, 0);
}

/* A fixed IPI to @cpu once it took the previous one from this CPU. */
static void ipi_next(uint32_t cpu)
{
    uint32_t peer = (cpu + 1) % ncpus;

    if (*(volatile uint32_t *)&res->ipi_recv[peer] != res->ipi_sent[cpu]) {
        return;
    }
    res->ipi_sent[cpu]++;
    lapic_write(LAPIC_ICR_HI, peer << 24);
    lapic_write(LAPIC_ICR_LO, DG_IPI_VECTOR);
    wait_icr_idle();
}

void idt_set(int vec, void *handler)
{
    idt[vec].off_lo = (uint32_t)handler & 0xffff;
    idt[vec].off_hi = (uint32_t)handler >> 16;
    idt[vec].sel = 0x08;
    idt[vec].type = 0x8e;           /* present, 32-bit interrupt gate */
}

void idt_load(void)
{
    struct {
        uint16_t limit;
        uint32_t base;
    } __attribute__((packed)) idtr = { sizeof(idt) - 1, (uint32_t)idt };

    __asm__ volatile("lidt %0" : : "m"(idtr));
}

/*
 * This CPU's interrupts: only its LAPIC timer.  LINT0/LINT1 (the PIC's
 * and NMI lines) are masked so that no node's legacy devices reach it.
 */
static void timer_start(void)
{
    idt_load();
    lapic_write(LAPIC_SVR, 0x1ff);
    lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
    lapic_write(LAPIC_LVT_LINT1, LVT_MASKED);
    lapic_write(LAPIC_TMR_DIV, 0x3);                /* divide by 16 */
    lapic_write(LAPIC_LVT_TIMER, DG_TIMER_VECTOR | LVT_PERIODIC);
    lapic_write(LAPIC_TMR_INIT, 62500);             /* about 1 ms */
    __asm__ volatile("sti");
}

/* mode=moves: chain rounds until told to stop. */
static void moves(uint32_t cpu)
{
    uint64_t tsc;
    uint32_t hpet;
    uint64_t x;
    dg_v4 v;
    uint32_t k;

    if (cpu == 0) {
        res->pci_probe_ref = pci_probe();
        hpet_enable();
    }
    timer_start();
    dg_chain_init(cpu, &x, &v);
    for (k = 1; !*(volatile uint32_t *)&res->stop; k++) {
        dg_chain_round(&x, &v);
        lock_add64(&res->atomic_counter, 1);
        spin_lock(&data_lock);
        res->locked_x = res->locked_x + 1;
        res->locked_y = res->locked_y + 2;
        tsc = rdtsc();
        if (tsc < res->last_tsc) {
            res->tsc_warps++;
        }
        res->last_tsc = tsc;
        res->tsc_checks++;
        hpet = *(volatile uint32_t *)(HPET_BASE + HPET_COUNTER);
        if ((int32_t)(hpet - res->last_hpet) < 0) {
            res->hpet_warps++;
        }
        res->last_hpet = hpet;
        spin_unlock(&data_lock);
        res->chain_x[cpu] = x;
        res->chain_v[cpu] = v;
        __asm__ volatile("" ::: "memory");
        res->rounds[cpu] = k;
        if (ncpus > 1) {
            ipi_next(cpu);
        }
    }
    /* The last IPI this CPU sent is taken, then it is done. */
    while (ncpus > 1 && *(volatile uint32_t *)&res->ipi_recv[(cpu + 1) %
                                                            ncpus] !=
           res->ipi_sent[cpu]) {
        cpu_relax();
    }
    res->pci_probe[cpu] = pci_probe();
    hpet_probe(cpu);
    say_cpu(cpu, " finished\n");
    res->cpu_done[cpu] = 1;
    if (cpu == 0) {
        for (uint32_t c = 0; c < ncpus; c++) {
            while (!*(volatile uint32_t *)&res->cpu_done[c]) {
                cpu_relax();
            }
        }
        res->magic = DG_MAGIC_DONE;
    }
    /* Keep taking interrupts: the other CPUs may still be finishing. */
    for (;;) {
        __asm__ volatile("sti; hlt");
    }
}

uint32_t my_cpu(void)
{
    if (rdmsr(MSR_APIC_BASE) & APIC_BASE_X2APIC) {
        return rdmsr(X2APIC_ID);
    }
    return lapic_read(LAPIC_ID) >> 24;
}

void ap_main(void);
void ap_main(void)
{
    uint32_t cpu = my_cpu();

    lock_inc32(&res->cpus_started);
    say_cpu(cpu, " up\n");
    while (!go) {
        cpu_relax();
    }
    if (cpu >= ncpus) {
        return;
    }
    if (mode_irq) {
        irq_mode(cpu, ncpus);
    } else if (mode_x2apic) {
        x2apic_mode(cpu, ncpus, mode_reset);
    } else if (mode_s3) {
        s3_mode(cpu, ncpus);    /* the boot CPU, resumed at the trampoline */
    } else if (mode_affinity) {
        affinity_mode(cpu, ncpus, mode_affinity);
    } else if (mode_busy) {
        busy_mode(cpu);
    } else if (mode_msi) {
        msi_mode(cpu, ncpus);
    } else if (mode_a20) {
        a20_mode(cpu, ncpus);
    } else if (mode_remap) {
        remap_mode(cpu, ncpus, mode_remap);
    } else if (mode_ipiflood) {
        ipiflood_mode(cpu, ncpus, mode_ipiflood);
    } else if (mode_topology) {
        topology_mode(cpu, ncpus);
    } else if (mode_xcode) {
        xcode_mode(cpu, ncpus, mode_xcode, mode_xcode_how);
    } else if (mode_moves) {
        moves(cpu);
    } else if (mode_stress) {
        stress(cpu);
    } else {
        workload(cpu);
    }
}

void guest_main(struct multiboot_info *mbi);
void guest_main(struct multiboot_info *mbi)
{
    const char *cmdline = (mbi->flags & 4) ? (const char *)mbi->cmdline : "";
    uint32_t size = (uint32_t)(trampoline_end - trampoline_start);
    uint32_t cpu, done;

    ncpus = parse_arg(cmdline, "cpus", 1);
    iters = parse_arg(cmdline, "iters", 100000);
    mode_pattern_mb = parse_arg(cmdline, "pattern", 0);
    mode_stress = parse_arg(cmdline, "stress", 0);
    mode_moves = parse_arg(cmdline, "moves", 0);
    mode_irq = parse_arg(cmdline, "irq", 0);
    mode_x2apic = parse_arg(cmdline, "x2apic", 0);
    mode_s3 = parse_arg(cmdline, "s3", 0);
    mode_reset = parse_arg(cmdline, "reset", 0);
    mode_poweroff = parse_arg(cmdline, "poweroff", 0);
    mode_vmport = parse_arg(cmdline, "vmport", 0);
    mode_lint0 = parse_arg(cmdline, "lint0", 0);
    mode_affinity = parse_arg(cmdline, "affinity", 0);
    mode_busy = parse_arg(cmdline, "busy", 0);
    mode_msi = parse_arg(cmdline, "msi", 0);
    mode_a20 = parse_arg(cmdline, "a20", 0);
    mode_remap = parse_arg(cmdline, "remap", 0);
    mode_ipiflood = parse_arg(cmdline, "ipiflood", 0);
    mode_topology = parse_arg(cmdline, "topology", 0);
    mode_xcode = parse_arg(cmdline, "xcode", 0);
    mode_xcode_how = parse_arg(cmdline, "xhow", DG_XCODE_SHARED);
    idt_set(DG_TIMER_VECTOR, timer_entry);
    idt_set(DG_IPI_VECTOR, ipi_entry);
    idt_set(0xff, spurious_entry);
    /* volatile: RAM that outlives this program (a reset keeps it) */
    (*(volatile uint32_t *)DG_BOOTS)++;

    puts_serial("distvm-guest: start cpus=");
    putu(ncpus);
    puts_serial(" iters=");
    putu(iters);
    puts_serial("\n");
    if (ncpus < 1 || ncpus > DG_MAX_CPUS || my_cpu() != 0) {
        res->magic = DG_MAGIC_FAIL;
        puts_serial("distvm-guest: FAIL bad cpus= or boot CPU is not APIC 0\n");
        return;
    }

    /* Clear the result area and the private buffers. */
    for (uint32_t *p = (uint32_t *)res; p < (uint32_t *)(res + 1); p++) {
        *p = 0;
    }
    for (uint32_t *p = (uint32_t *)DG_PRIV_BASE;
         p < (uint32_t *)(DG_PRIV_BASE + ncpus * DG_PRIV_BYTES); p++) {
        *p = 0;
    }
    res->ncpus = ncpus;
    res->iters = iters;
    res->cpus_started = 1;
    if (mode_pattern_mb) {
        pattern();
        return;
    }

    for (uint32_t i = 0; i < size; i++) {
        ((volatile char *)TRAMPOLINE)[i] = __trampoline_load[i];
    }
    lapic_write(LAPIC_SVR, lapic_read(LAPIC_SVR) | 0x100);
    for (cpu = 1; cpu < ncpus; cpu++) {
        start_ap(cpu);
    }
    for (uint32_t spins = 0; res->cpus_started < ncpus; spins++) {
        if (spins == 200000000u) {
            res->magic = DG_MAGIC_FAIL;
            spin_lock(&print_lock);
            puts_serial("distvm-guest: FAIL not every AP started\n");
            spin_unlock(&print_lock);
            return;
        }
        cpu_relax();
    }
    spin_lock(&print_lock);
    puts_serial("distvm-guest: all cpus up\n");
    spin_unlock(&print_lock);
    go = 1;
    if (mode_irq) {
        irq_mode(0, ncpus);
    } else if (mode_x2apic) {
        x2apic_mode(0, ncpus, mode_reset);
    } else if (mode_s3) {
        s3_mode(0, ncpus);
    } else if (mode_reset) {
        reset_mode(0, ncpus);
    } else if (mode_poweroff) {
        poweroff_mode(0, ncpus);
    } else if (mode_vmport) {
        vmport_mode(0, ncpus);
    } else if (mode_lint0) {
        lint0_mode(0);
    } else if (mode_affinity) {
        affinity_mode(0, ncpus, mode_affinity);
    } else if (mode_busy) {
        busy_mode(0);
    } else if (mode_msi) {
        msi_mode(0, ncpus);
    } else if (mode_a20) {
        a20_mode(0, ncpus);
    } else if (mode_remap) {
        remap_mode(0, ncpus, mode_remap);
    } else if (mode_ipiflood) {
        ipiflood_mode(0, ncpus, mode_ipiflood);
    } else if (mode_topology) {
        topology_mode(0, ncpus);
    } else if (mode_xcode) {
        xcode_mode(0, ncpus, mode_xcode, mode_xcode_how);
    } else if (mode_moves) {
        moves(0);
    } else if (mode_stress) {
        stress(0);
    } else {
        workload(0);
    }

    do {
        done = 0;
        for (cpu = 0; cpu < ncpus; cpu++) {
            done += *(volatile uint32_t *)&res->cpu_done[cpu];
        }
        cpu_relax();
    } while (done < ncpus);
    res->magic = DG_MAGIC_DONE;
    spin_lock(&print_lock);
    puts_serial("distvm-guest: DONE\n");
    spin_unlock(&print_lock);
}
