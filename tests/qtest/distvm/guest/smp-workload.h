/*
 * distvm bare-metal SMP test guest: the workload and result layout
 *
 * Shared by the guest (tests/qtest/distvm/guest/) and the qtest that
 * checks its final memory, so that the expected values are computed by
 * the test on the host from the same definition.  Only fixed-width types
 * and inline code; no library.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef DISTVM_SMP_WORKLOAD_H
#define DISTVM_SMP_WORKLOAD_H

#include <stdint.h>

/* Guest physical layout (the guest runs with paging off). */
#define DG_RESULT_BASE      0x00400000u     /* struct dg_results */
#define DG_PRIV_BASE        0x00500000u     /* per-CPU private buffers */
#define DG_PRIV_WORDS       8192u           /* uint64_t words per CPU */
#define DG_PRIV_BYTES       (DG_PRIV_WORDS * 8u)
#define DG_MAX_CPUS         16u
#define DG_RING_SLOTS       64u             /* power of two */
#define DG_RING_ITEMS       20000u

#define DG_MAGIC_DONE       0x454e4f44u     /* "DONE" */
#define DG_MAGIC_FAIL       0x4c494146u     /* "FAIL" */
#define DG_MAGIC_PATTERN    0x4e544150u     /* "PATN": pattern written */

/*
 * mode=pattern: the boot CPU fills [DG_PATTERN_BASE, + mb MiB) with
 * dg_pattern(), then serves the mailbox: each time the test bumps
 * mailbox_seq it sums the region again and reports it in pattern_sum.
 */
#define DG_PATTERN_BASE     0x01000000u     /* 16 MiB */

/*
 * mode=stress: every CPU keeps rewriting its own DG_STRESS_PAGES pages at
 * DG_STRESS_BASE + cpu * DG_STRESS_PAGES * 4 KiB until the test sets
 * stop; rounds[cpu] counts the rounds it completed.  In round k (from 1)
 * CPU c writes dg_stress_value(c, k, i) at word (k % 512) of its page i.
 */
#define DG_STRESS_BASE      0x00800000u     /* 8 MiB */
#define DG_STRESS_PAGES     256u

/* Every this many iterations a CPU does a locked add to a shared counter */
#define DG_ATOMIC_EVERY     64u
/* ... and a lock-guarded non-atomic update of the shared record. */
#define DG_LOCKED_EVERY     256u

/*
 * mode=moves: every CPU runs rounds of dg_chain_round() until the test
 * sets stop, with its LAPIC timer interrupting it (vector DG_TIMER_VECTOR,
 * about every millisecond) while the test moves the vCPUs between nodes.
 * After each round it updates the shared counters (locked add, and
 * x += 1 / y += 2 under the spinlock) and publishes its chain state, and
 * sends an IPI (DG_IPI_VECTOR) to the next CPU once that CPU has taken
 * its previous one, so none can merge with another: in the end every
 * CPU's ipi_sent equals the next CPU's ipi_recv.
 */
#define DG_TIMER_VECTOR     0x40
#define DG_IPI_VECTOR       0x41
#define DG_CHAIN_STEPS      2000u

/*
 * mode=irq (2 CPUs), for interrupts from every source to vCPUs on any
 * node, until the test sets stop:
 * - CPU 0 takes the PIT's IRQ 0 through the 8259 (vectors DG_PIC_VECTOR
 *   and up) on its LINT0 in ExtINT mode, as firmware and early kernels do,
 *   and sends rounds of IPIs: one of each kind DG_IPI_*, each once the
 *   previous one was taken;
 * - CPU 1 halts, and takes the RTC's periodic interrupt through the I/O
 *   APIC in level-triggered mode (DG_RTC_VECTOR): each is delivered only
 *   once the EOI of the previous one reached the I/O APIC, and the RTC
 *   lowers its line when the handler reads its register C.
 */
#define DG_PIC_VECTOR       0x20    /* IRQ 0; 0x27 is the spurious IRQ 7 */
#define DG_RTC_VECTOR       0x51
#define DG_IPI_BASE         0x60    /* DG_IPI_BASE + kind; NMI is vector 2 */
enum {
    DG_IPI_FIXED,               /* physical destination CPU 1 */
    DG_IPI_LOGICAL,             /* flat logical destination CPU 1 */
    DG_IPI_LOWEST,              /* lowest priority, logical CPU 1 */
    DG_IPI_NMI,                 /* NMI, physical CPU 1 */
    DG_IPI_ALL_BUT_SELF,        /* shorthand: CPU 1 */
    DG_IPI_ALL,                 /* shorthand: both CPUs */
    DG_IPI_SELF,                /* shorthand: CPU 0 */
    DG_IPI_KINDS
};

/*
 * mode=x2apic (4 CPUs): every CPU switches its LAPIC to x2APIC mode, then
 * until the test sets stop:
 * - CPUs 1 to 3 halt, and take the RTC's periodic interrupt, which the
 *   I/O APIC sends to all three at once, level-triggered, in logical
 *   destination mode (cluster 0, logical IDs 1 << 1 to 1 << 3);
 * - CPU 0 sends rounds of IPIs: one of each kind DG_X2_*, each once every
 *   CPU it addresses took it (physical: to CPU 1, 2 and 3 in turn).  The
 *   last two kinds address no x2APIC, and only a LAPIC taken for an xAPIC
 *   would take them; the IPIs sent after them would find them taken.
 * With reset=1 too, CPU 0 then asks for a hard reset (recorded in struct
 * dg_reset), and after it no CPU writes a LAPIC register that others
 * address it by: every LAPIC stays as the reset left it, in xAPIC mode.
 * In turn, DG_X2_RESET_ROUNDS times, each CPU sends an NMI to physical
 * destination 0xff, which every xAPIC takes (its sender's too, and a
 * LAPIC not enabled by software as well), and waits until every CPU took
 * it (x2_nmi), or counts it lost in x2_lost[DG_X2_XAPIC_BROADCAST].  A
 * node that still took another node's LAPIC for an x2APIC would not
 * deliver it there.
 */
#define DG_X2_RTC_DEST      0x0e    /* logical IDs of CPUs 1 to 3 */
enum {
    DG_X2_PHYSICAL,             /* physical destination, each of CPU 1-3 */
    DG_X2_LOGICAL,              /* logical destination DG_X2_RTC_DEST */
    DG_X2_LOWEST,               /* the same, lowest priority: one of them */
    DG_X2_ALL_BUT_SELF,         /* shorthand: CPUs 1 to 3 */
    DG_X2_BROADCAST,            /* physical destination 0xffffffff: all */
    DG_X2_OTHER_CLUSTER,        /* logical, cluster 1: nobody */
    DG_X2_XAPIC_BROADCAST,      /* physical destination 0xff: nobody */
    DG_X2_KINDS
};

#define DG_X2_RESET_ROUNDS  8

/*
 * mode=msi (4 CPUs, QEMU's edu device): every CPU sets flat logical ID
 * 1 << cpu and takes interrupts; until the test sets stop, CPU 0 has the
 * edu device send rounds of MSIs (its MSI address and data rewritten
 * before each), one of each kind DG_MSI_*, each once every CPU it
 * addresses took it: physical to CPU 0, 1, 2 and 3 in turn, logical to
 * CPUs 1 to 3, the same in lowest priority (one of them), and to the
 * broadcast destination 0xff (all four).  The vector of kind k is
 * dg_x2_vector(k).
 */
#define DG_MSI_LOGICAL_DEST 0x0e
enum {
    DG_MSI_PHYSICAL,
    DG_MSI_LOGICAL,
    DG_MSI_LOWEST,
    DG_MSI_BROADCAST,
    DG_MSI_KINDS
};

/* Its vector: DG_IPI_BASE + kind, skipping DG_IPI_NMI's (see boot.S) */
static inline uint32_t dg_x2_vector(uint32_t kind)
{
    return DG_IPI_BASE + kind + (kind >= DG_IPI_NMI);
}

/*
 * mode=s3 (1 CPU): the CPU sets the firmware's waking vector (FACS) to
 * the AP start-up code, says "s3 suspending" and asks the ACPI PM1
 * control register for S3; from the next instruction on it counts in
 * s3_after, which stays at most 1 if it stopped at once.  Woken up (the
 * test's system_wakeup), the firmware resumes it at the waking vector: it
 * sets s3_resumed, says "s3 resumed" and finishes.
 */

/*
 * mode=reset (1 CPU): the CPU asks the PIIX3's reset control register
 * (port 0xcf9) for a hard reset and counts in after from the next
 * instruction on; this stays at most 1 if it stopped at once.  The
 * firmware starts the guest again, which finds its first boot recorded
 * here (in RAM, which a reset keeps and the guest does not clear), counts
 * the boot and finishes.
 */
#define DG_RESET_BASE       0x00480000u     /* struct dg_reset */
/* mode=poweroff (1 CPU): the CPU asks the ACPI PM1 control for S5. */
#define DG_RESET_MAGIC      0x54534552u     /* "REST" */

struct dg_reset {
    uint32_t magic;             /* DG_RESET_MAGIC once it asked */
    uint32_t boots;
    uint32_t after;
};

/*
 * Every mode: the boot CPU counts each start of the guest here (RAM,
 * which a reset keeps and the guest does not clear): 1 unless the guest
 * rebooted.  A rollback brings it back with the rest of RAM.
 */
#define DG_BOOTS            0x00480100u     /* uint32_t */

/*
 * mode=vmport (1 CPU): the CPU sends VMware's I/O port the commands
 * dg_vmport_cmd[] (GETVERSION, GETRAMSIZE) and keeps the registers EAX,
 * EBX, ECX, EDX, ESI and EDI each leaves (ESI and EDI set to values of
 * its own, which no command changes).
 */
#define DG_VMPORT_CMDS      2
static const uint32_t dg_vmport_cmd[DG_VMPORT_CMDS] = { 0x0a, 0x14 };

/*
 * mode=lint0 (1 CPU): with interrupts off, the CPU takes the 8259 on
 * LINT0 (ExtINT) and waits until the PIT's IRQ 0 is pending there, and
 * long enough for the 8259's output to reach it from home; it masks
 * LINT0, then takes interrupts for a while: none may come (pic_ticks
 * stays 0), and the CPU must not fault.
 */

/*
 * mode=a20 (cpus=1 or 2): DG_A20_ROUNDS rounds.  In each, CPU 0 writes
 * DG_A20_LO_WORD + round at DG_A20_LO and DG_A20_HI_WORD + round at
 * DG_A20_HI (DG_A20_LO with bit 20 set), turns A20 off through port 0x92,
 * reads DG_A20_HI (a20_self[round][0]: the word at DG_A20_LO) and writes
 * its complement there (at DG_A20_LO), turns A20 on and reads DG_A20_LO
 * and DG_A20_HI again (a20_self[round][1] and [2]).  Then CPU 1 turns A20
 * off for CPU 0 and on again once CPU 0 saw it off (a20_off[round] = 1).
 * CPU 0 keeps how long it waited (a20_wait_ticks, TSC ticks) and port
 * 0x92 as it read it then (a20_wait_port): what went wrong, if it did.
 */
#define DG_A20_ROUNDS       4
#define DG_A20_LO           0x00200000u
#define DG_A20_HI           0x00300000u
#define DG_A20_LO_WORD      0x10a20000u
#define DG_A20_HI_WORD      0x20a20000u

/*
 * mode=remap=N (cpus=2): CPU 0 changes the guest's memory map twice in
 * each of N rounds (DG_REMAP_ROUNDS in most tests; the i440FX's PAM
 * register for 0xd0000-0xd3fff, from read-only to writable and back),
 * while CPU 1 reads the HPET's capabilities register (DG_REMAP_HPET_ID
 * in its low 32 bits), DG_REMAP_BURST times in a row in each pass, until
 * CPU 0 is done: remap_reads reads, of which remap_bad returned something
 * else (the first: remap_bad_value).
 */
#define DG_REMAP_ROUNDS     20000
/*
 * mode=ipiflood=N (cpus=2): CPU 0 sends CPU 1 N fixed IPIs (DG_IPI_VECTOR)
 * without waiting for any to be taken; CPU 1 takes them (ipi_recv[1],
 * at most N: the LAPIC merges those that find one pending).
 */
#define DG_REMAP_BURST      32
#define DG_REMAP_HPET_ID    0x8086a201u

/*
 * mode=topology (4 CPUs, the distmem-topology device): CPU 0, the guest's
 * agent, finds the device, records what it says (topo_*), has it send
 * its MSIs to itself at DG_TOPO_VECTOR and, until the test sets stop,
 * keeps the vCPU table it reads in topo_node[] with its generation in
 * topo_gen (counting the changes it saw), and makes the requests the test
 * puts in topo_req[] (command, vCPU, node, address) whenever topo_ask
 * goes up, with the status the device answered in topo_status.  The
 * other CPUs wait.
 */
#define DG_TOPO_VECTOR      0x52
#define DG_TOPO_RANGES      8
enum {
    DG_TOPO_CMD,
    DG_TOPO_VCPU,
    DG_TOPO_NODE,
    DG_TOPO_ADDR,
    DG_TOPO_REQ_WORDS
};
/* topo_range[i]: base (low, high), size (low, high), node, flags */
#define DG_TOPO_RANGE_WORDS 6

/*
 * mode=xcode=R (cpus=3), cross-modifying code: CPU 0 rewrites the
 * immediate of a function at DG_XCODE_BASE (mov $imm, %eax; ret) R times,
 * 1 to R, each time publishing the new value in xcode_round once written;
 * CPUs 1 and 2 keep calling the function, after reading xcode_round and a
 * serializing instruction (cpuid), as the x86 rules for code written by
 * another CPU ask.  A call that returns less than the xcode_round read
 * before it ran old code: xcode_stale[cpu] counts them.  CPU 0 waits for
 * both to return each round's value (xcode_seen[cpu]) for a few seconds
 * of TSC (DG_XCODE_WAIT cycles), or counts the round in xcode_timeouts.
 * With xhow=DG_XCODE_STOLEN, before each write CPU 0 has CPU 2 write a
 * word of data in the same page (DG_XCODE_DATA; round r in xcode_steal,
 * done in xcode_stolen), which takes the page away from CPU 0's node if
 * CPU 2 runs on another.  With xhow=DG_XCODE_IDLE, CPU 1 runs the
 * function only from the odd rounds' writes on (xcode_go) until it
 * returns their value, so that it ran none of the code before them.
 */
#define DG_XCODE_BASE       0x03000000u     /* 48 MiB, a page of its own */
#define DG_XCODE_DATA       0x800u          /* offset of CPU 2's word */
enum {
    DG_XCODE_SHARED,
    DG_XCODE_STOLEN,
    DG_XCODE_IDLE,
};
#define DG_XCODE_WAIT       8000000000ull

typedef uint32_t dg_v4 __attribute__((vector_size(16)));

/* 8-byte aligned on i386 too, so the guest and the test agree on layout. */
typedef uint64_t dg_u64 __attribute__((aligned(8)));

/*
 * mode=affinity=R (cpus=1+2*DG_AFF_PAIRS): pairs of a writer (CPU 1+k)
 * and a reader (CPU 1+DG_AFF_PAIRS+k) share pair k's DG_AFF_PAGES data
 * pages.  The writer keeps writing its pass number into every word of
 * every page, pass after pass, and then into passes; the reader reads
 * each page, counts in errors the pages with a word older than the
 * oldest it saw there the round before or newer than the writer can
 * have written, and sums them, R rounds over all pages, keeping its
 * progress in its own page.  Then the boot CPU stops
 * the writers.  At the end every word of pair k's pages is its passes.
 */
#define DG_AFF_BASE         0x02000000u     /* 32 MiB */
#define DG_AFF_PAIRS        2
#define DG_AFF_PAGES        64
#define DG_AFF_STRIDE       0x00100000u     /* between pairs */
/* pair k's area: its control page, then its data pages */
#define DG_AFF_PAIR(k)      (DG_AFF_BASE + (k) * DG_AFF_STRIDE)
#define DG_AFF_DATA(k, p)   (DG_AFF_PAIR(k) + 0x1000u * (1 + (p)))
/* the reader's own page, after the data, and the boot CPU's stop page */
#define DG_AFF_READER(k)    DG_AFF_DATA(k, DG_AFF_PAGES)
#define DG_AFF_STOP         (DG_AFF_BASE + DG_AFF_PAIRS * DG_AFF_STRIDE)

/*
 * mode=busy: every CPU keeps applying dg_busy_step() to a value of its
 * own, from cpu + 1, in its registers, sharing nothing but the reads of
 * stop, until the test sets it; then it reports the steps it made and
 * the value in busy_steps[cpu] and busy_value[cpu].
 */
static inline uint64_t dg_busy_step(uint64_t x)
{
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    return x ^ (x >> 27);
}

struct dg_aff_writer {          /* at DG_AFF_PAIR(k) */
    uint32_t passes;            /* passes finished */
};

struct dg_aff_reader {          /* at DG_AFF_READER(k) */
    uint32_t rounds;            /* rounds finished */
    uint32_t errors;            /* words older or newer than they may be */
    dg_u64 sum;                 /* of every word read */
};


struct dg_results {
    uint32_t magic;             /* DG_MAGIC_DONE once every CPU finished */
    uint32_t ncpus;             /* CPUs the guest ran on */
    uint32_t iters;             /* workload iterations per CPU */
    uint32_t cpus_started;      /* APs that reached C code, plus the BSP */
    dg_u64 atomic_counter;    /* lock add by every CPU */
    dg_u64 locked_x;          /* x += 1 under the spinlock (non-atomic) */
    dg_u64 locked_y;          /* y += 2 under the spinlock (non-atomic) */
    dg_u64 locked_z;          /* z += cpu + 1 under the spinlock */
    dg_u64 ring_sum;          /* sum of what the consumer read */
    uint32_t ring_count;        /* items the consumer read */
    uint32_t ring_errors;       /* items read out of order */
    dg_u64 checksum[DG_MAX_CPUS];  /* per-CPU sum of its sequence */
    uint32_t cpu_done[DG_MAX_CPUS];  /* 1 when the CPU finished */
    /* mode=pattern */
    uint32_t mailbox_seq;       /* written by the test */
    uint32_t mailbox_ack;       /* the guest: last mailbox_seq served */
    dg_u64 pattern_sum;       /* sum of the region's words, at ack time */
    /* mode=stress */
    uint32_t stop;              /* written by the test */
    uint32_t rounds[DG_MAX_CPUS];
    /* mode=moves */
    uint32_t timer_ticks[DG_MAX_CPUS];
    dg_u64 chain_x[DG_MAX_CPUS];
    dg_v4 chain_v[DG_MAX_CPUS];
    uint32_t ipi_sent[DG_MAX_CPUS];
    uint32_t ipi_recv[DG_MAX_CPUS];
    /*
     * The PIIX IDE function's BAR 4 (0:1.1, offset 0x20), read by port I/O:
     * by the boot CPU at start, on the home node, and by every CPU at the
     * end, wherever it is.  Only the home node's chipset has it set.
     */
    uint32_t pci_probe_ref;
    uint32_t pci_probe[DG_MAX_CPUS];
    /*
     * The HPET's main counter, read by MMIO twice by every CPU at the end,
     * wherever it is.  The boot CPU enabled the HPET at start, on the home
     * node: only the home node's HPET counts.
     */
    uint32_t hpet_probe[DG_MAX_CPUS][2];
    /*
     * Under the spinlock, each round: the TSC read must not be below the
     * last one read by any CPU (Linux's TSC warp check), wherever the
     * CPUs run.
     */
    dg_u64 last_tsc;
    uint32_t tsc_warps;
    uint32_t tsc_checks;
    /*
     * The same for the HPET's main counter (its low 32 bits, compared
     * modulo 2^32), which every node answers from its own clock.
     */
    uint32_t last_hpet;
    uint32_t hpet_warps;
    /* mode=irq */
    uint32_t pic_ticks;         /* CPU 0: IRQ 0 through the 8259 */
    uint32_t pic_spurious;      /* CPU 0: the 8259's spurious IRQ 7 */
    uint32_t rtc_ticks;         /* CPU 1: the RTC, level-triggered */
    uint32_t ipi_rounds;        /* rounds of IPIs CPU 0 completed */
    uint32_t ipi_lost[DG_IPI_KINDS];    /* not taken within a second or so */
    uint32_t ipi_kind[2][DG_IPI_KINDS];     /* taken, by CPU and kind */
    /* mode=x2apic */
    uint32_t x2_ldr[DG_MAX_CPUS];   /* each CPU's x2APIC logical ID */
    uint32_t x2_rtc[DG_MAX_CPUS];   /* RTC interrupts taken, by CPU */
    uint32_t x2_rounds;             /* rounds of IPIs CPU 0 completed */
    uint32_t x2_lost[DG_X2_KINDS];  /* not taken within a second or so */
    uint32_t x2_ipi[DG_MAX_CPUS][DG_X2_KINDS];  /* taken, by CPU and kind */
    uint32_t x2_nmi[DG_MAX_CPUS];   /* after the reset: NMIs taken */
    /* mode=s3 */
    uint32_t s3_pm1_cnt;        /* the PM1a control port (FADT) */
    uint32_t s3_after;          /* counted after the S3 request */
    uint32_t s3_resumed;        /* 1 once resumed at the waking vector */
    /* mode=vmport */
    uint32_t vmport_regs[DG_VMPORT_CMDS][6];
    /* mode=msi */
    uint32_t msi_rounds;
    uint32_t msi_lost[DG_MSI_KINDS];
    uint32_t msi[DG_MAX_CPUS][DG_MSI_KINDS];
    /* mode=busy */
    dg_u64 busy_steps[DG_MAX_CPUS];
    dg_u64 busy_value[DG_MAX_CPUS];
    /* mode=a20 */
    uint32_t a20_ready;         /* CPU 0 waits for A20 off in this round */
    uint32_t a20_self[DG_A20_ROUNDS][3];
    uint32_t a20_off[DG_A20_ROUNDS];
    uint32_t a20_wait_port[DG_A20_ROUNDS];
    dg_u64 a20_wait_ticks[DG_A20_ROUNDS];
    /* mode=topology */
    uint32_t topo_found;        /* the registers below were read */
    uint32_t topo_magic;
    uint32_t topo_version;
    uint32_t topo_vcpus;
    uint32_t topo_nodes;
    uint32_t topo_nranges;
    uint32_t topo_range[DG_TOPO_RANGES][DG_TOPO_RANGE_WORDS];
    uint32_t topo_gen;          /* of topo_node[] */
    uint32_t topo_changes;      /* generation changes seen */
    uint32_t topo_irqs;         /* MSIs taken */
    uint32_t topo_node[DG_MAX_CPUS];
    uint32_t topo_ask;          /* written by the test */
    uint32_t topo_asked;        /* the guest: last topo_ask done */
    uint32_t topo_req[DG_TOPO_REQ_WORDS];   /* written by the test */
    uint32_t topo_status;       /* REQ_STATUS after the last request */
    /* mode=xcode */
    uint32_t xcode_round;       /* the value CPU 0 wrote last */
    uint32_t xcode_timeouts;
    uint32_t xcode_steal;       /* CPU 0 asks CPU 2 to write its word */
    uint32_t xcode_stolen;      /* CPU 2 wrote it */
    uint32_t xcode_go;          /* CPU 1 runs the function (DG_XCODE_IDLE) */
    uint32_t xcode_seen[DG_MAX_CPUS];
    uint32_t xcode_stale[DG_MAX_CPUS];
    uint32_t xcode_calls[DG_MAX_CPUS];
    uint32_t xcode_stale_data[DG_MAX_CPUS];
    /* mode=remap */
    uint32_t remap_done;        /* rounds CPU 0 made */
    uint32_t remap_reads;
    uint32_t remap_bad;
    uint32_t remap_bad_value;
    /* mode=ipiflood */
    uint32_t ipiflood_ready;    /* CPU 1 takes interrupts */
    uint32_t ipiflood_sent;     /* CPU 0 sent them all */
} __attribute__((aligned(16)));

static inline uint64_t dg_pattern(uint64_t addr)
{
    return addr * 0x9e3779b97f4a7c15ull ^ (addr >> 12);
}

static inline uint64_t dg_stress_value(uint32_t cpu, uint32_t round,
                                       uint32_t page)
{
    return ((uint64_t)(cpu + 1) << 56) | ((uint64_t)round << 16) | page;
}

/* One step of the per-CPU pseudo-random sequence (xorshift64). */
static inline uint64_t dg_next(uint64_t x)
{
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

static inline uint64_t dg_seed(uint32_t cpu)
{
    return 0x9e3779b97f4a7c15ull * (uint64_t)(cpu + 1) ^ 0x0123456789abcdefull;
}

/* The value the producer puts in ring slot number @i. */
static inline uint64_t dg_ring_value(uint32_t i)
{
    return dg_next(0xabcdef0123456789ull + i);
}

/*
 * What one iteration does to the CPU's private buffer: the index it
 * writes and the value it adds.
 */
static inline uint32_t dg_priv_index(uint64_t x)
{
    return (uint32_t)(x >> 20) & (DG_PRIV_WORDS - 1);
}

static inline uint64_t dg_priv_delta(uint64_t x, uint32_t i)
{
    return x ^ i;
}

/* How many of iterations 0 .. iters-1 are multiples of @every. */
static inline uint64_t dg_multiples(uint32_t iters, uint32_t every)
{
    return ((uint64_t)iters + every - 1) / every;
}

/* Uses the stack: a few frames of locals that depend on each other. */
static inline uint64_t dg_stack_mix(uint64_t a, int depth)
{
    volatile uint64_t local[6];

    for (int i = 0; i < 6; i++) {
        local[i] = a + i * 0x10001ull;
    }
    if (depth > 0) {
        a = dg_stack_mix(a ^ local[depth % 6], depth - 1);
    }
    for (int i = 0; i < 6; i++) {
        a += local[i] >> i;
    }
    return a;
}

static inline void dg_chain_init(uint32_t cpu, uint64_t *x, dg_v4 *v)
{
    *x = dg_seed(cpu);
    *v = (dg_v4){ cpu, cpu * 3u + 1, 0x12345678u, 0x9abcdef0u };
}

/*
 * One round: a long chain through 64-bit (add/adc, so the carry flag in
 * 32-bit code), vector (SSE2) and stack arithmetic.
 */
static inline void dg_chain_round(uint64_t *x, dg_v4 *v)
{
    uint64_t a = *x;
    dg_v4 w = *v;

    for (uint32_t i = 0; i < DG_CHAIN_STEPS; i++) {
        a = dg_next(a) + (a >> 3) + w[i & 3];
        w = ((w << 1) | (w >> 31)) +
            (dg_v4){ (uint32_t)a, (uint32_t)(a >> 32), i, ~i };
        w ^= (dg_v4){ w[3], w[0], w[1], w[2] };
    }
    a = dg_stack_mix(a, 5);
    *x = a;
    *v = w;
}

#endif /* DISTVM_SMP_WORKLOAD_H */
