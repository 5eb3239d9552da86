/*
 * distvm: device accesses of vCPUs that run away from the home node
 *
 * Devices are emulated on the home node only.  A vCPU on another node
 * that does port I/O or MMIO (outside its LAPIC's window) sends the
 * access to the home node and waits for its result (with the BQL
 * released, if its thread held it); the home node replays it under the
 * BQL with current_cpu set to its own, parked copy of that vCPU, as the
 * devices expect.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/main-loop.h"
#include "cpu.h"
#include "exec/address-spaces.h"
#include "exec/cputlb.h"
#include "hw/i386/apic_internal.h"
#include "hw/intc/ioapic.h"
#include "hw/core/cpu.h"
#include "distvm-internal.h"
#include "trace.h"

/* A vCPU waiting for the result of its access. */
typedef struct DistvmIoWait {
    QemuEvent done;
    uint64_t next_id;           /* the vCPU's thread's */
    uint64_t waiting_id;        /* atomic: the request waiting, or 0 */
    uint64_t data;
    MemTxResult result;
} DistvmIoWait;

/* The EOI register of an I/O APIC of version 0x20. */
#define IOAPIC_EOI_REGISTER 0x40

typedef struct DistvmIoReplay {
    uint32_t from;
    uint64_t id;                /* the request's, for its reply */
    DistvmMsgIo io;
} DistvmIoReplay;

static DistvmIoWait *io_waits;
static QemuMutex io_stats_lock;
static DistvmIoStats io_stats;

static void io_account(uint32_t space, int64_t start_ns)
{
    DistvmIoKind kind = space == DISTVM_IO_PORT ? DISTVM_IO_KIND_PORT :
                        space == DISTVM_IO_PIC_ACK ? DISTVM_IO_KIND_PIC_ACK :
                        DISTVM_IO_KIND_MMIO;
    uint64_t us = (get_clock() - start_ns) / 1000;

    qemu_mutex_lock(&io_stats_lock);
    io_stats.lat_us[kind][io_stats.count[kind] % DISTVM_IO_LAT_SAMPLES] =
        MIN(us, UINT32_MAX);
    io_stats.count[kind]++;
    qemu_mutex_unlock(&io_stats_lock);
}

void distvm_io_get_stats(DistvmIoStats *stats)
{
    qemu_mutex_lock(&io_stats_lock);
    *stats = io_stats;
    qemu_mutex_unlock(&io_stats_lock);
}

MemTxResult distvm_io_forward(DistvmState *s, CPUState *cs, uint32_t space,
                              uint64_t addr, uint64_t *data, unsigned size,
                              bool is_write)
{
    DistvmIoWait *w = &io_waits[cs->cpu_index];
    g_autoptr(GByteArray) m = g_byte_array_new();
    DistvmMsgIo io = {
        .cpu = cs->cpu_index,
        .space = space,
        .size = size,
        .flags = is_write ? DISTVM_IO_WRITE : 0,
        .addr = addr,
        .data = is_write ? *data & MAKE_64BIT_MASK(0, size * 8) : 0,
    };
    bool locked = bql_locked();
    int64_t start_ns = get_clock();

    distvm_wire_io(m, DISTVM_MSG_IO_REQ, s->node_id, &io);
    distvm_wire_set_seq(m, ++w->next_id);
    trace_distvm_io_forward(io.cpu, space, addr, size, is_write, io.data);
    qemu_event_reset(&w->done);
    qatomic_set(&w->waiting_id, w->next_id);
    if (distvm_cluster_leaving(s)) {
        *data = 0;
        return MEMTX_ERROR;
    }
    if (locked) {
        bql_unlock();
    }
    if (!distvm_send(s, DISTVM_HOME_NODE, m)) {
        distvm_fatal_node_lost(s, DISTVM_HOME_NODE, "connection closed");
    }
    qemu_event_wait(&w->done);
    distvm_chipset_wait_replays(cs);
    io_account(space, start_ns);
    if (locked) {
        bql_lock();
    }
    if (!is_write) {
        *data = w->data;
    }
    return w->result;
}

/* Forward unless this is the home node (or the guest has not started). */
bool distvm_io_forwarded(DistvmState *s)
{
    DistvmClusterState state = qatomic_read(&s->state);

    return !distvm_is_home(s) &&
           (state == DISTVM_CLUSTER_STATE_RUNNING ||
            state == DISTVM_CLUSTER_STATE_LEAVING);
}

static bool distvm_pio_forward(CPUState *cs, uint32_t port, uint32_t *data,
                               unsigned size, bool is_write)
{
    DistvmState *s = distvm_state();
    uint64_t val = *data;

    if (!distvm_io_forwarded(s)) {
        return false;
    }
    if (is_write ||
        !distvm_clock_read(s, DISTVM_IO_PORT, port, size, &val)) {
        distvm_io_forward(s, cs, DISTVM_IO_PORT, port, &val, size, is_write);
    }
    *data = val;
    return true;
}

/*
 * MMIO: everything but the LAPIC window, which belongs to the vCPU that
 * accesses it (the other devices are the home node's).
 */
static bool distvm_mmio_forward(CPUState *cs, hwaddr addr, MemTxAttrs attrs,
                                void *buf, unsigned size, bool is_write,
                                MemTxResult *res)
{
    DistvmState *s = distvm_state();
    uint64_t val = 0;

    if (!distvm_io_forwarded(s) ||
        (addr >= APIC_DEFAULT_ADDRESS &&
         addr < APIC_DEFAULT_ADDRESS + APIC_SPACE_SIZE)) {
        return false;
    }
    if (is_write) {
        val = ldn_le_p(buf, size);
    }
    if (!is_write && !attrs.secure &&
        distvm_clock_read(s, DISTVM_IO_MEMORY, addr, size, &val)) {
        *res = MEMTX_OK;
    } else {
        *res = distvm_io_forward(s, cs,
                                 attrs.secure ? DISTVM_IO_SMM :
                                 DISTVM_IO_MEMORY,
                                 addr, &val, size, is_write);
    }
    if (!is_write) {
        stn_le_p(buf, size, val);
    }
    return true;
}

/*
 * The EOI of a level-triggered interrupt, on a vCPU away from home: the
 * I/O APIC that sent it is home's.  Written to its EOI register, which
 * the I/O APIC of version 0x20 (the default) has, it reaches
 * ioapic_eoi_broadcast() there.
 */
static bool distvm_ioapic_eoi(APICCommonState *apic, int vector)
{
    DistvmState *s = distvm_state();
    uint64_t val = vector;

    if (!distvm_io_forwarded(s)) {
        return false;
    }
    distvm_io_forward(s, CPU(apic->cpu), DISTVM_IO_MEMORY,
                      IO_APIC_DEFAULT_ADDRESS + IOAPIC_EOI_REGISTER, &val, 4,
                      true);
    return true;
}

/* Home: replay the access under the BQL and send back its result. */
static void distvm_io_replay_bh(void *opaque)
{
    DistvmIoReplay *r = opaque;
    DistvmState *s = distvm_state();
    CPUState *saved = current_cpu;
    CPUState *cpu = qemu_get_cpu(r->io.cpu);
    g_autoptr(GByteArray) m = g_byte_array_new();
    uint8_t buf[8] = { 0 };
    bool is_write = r->io.flags & DISTVM_IO_WRITE;
    MemTxAttrs attrs = MEMTXATTRS_UNSPECIFIED;
    AddressSpace *as = &address_space_io;
    MemTxResult res;

    if (r->io.space == DISTVM_IO_MEMORY || r->io.space == DISTVM_IO_SMM) {
        attrs = (MemTxAttrs) { .secure = r->io.space == DISTVM_IO_SMM };
        as = cpu_get_address_space(cpu, cpu_asidx_from_attrs(cpu, attrs));
    }
    stq_le_p(buf, r->io.data);
    current_cpu = cpu;
    if (r->io.space == DISTVM_IO_PIC_ACK) {
        buf[0] = distvm_pic_acknowledge();
        res = MEMTX_OK;
    } else {
        res = address_space_rw(as, r->io.addr, attrs, buf, r->io.size,
                               is_write);
    }
    current_cpu = saved;
    r->io.data = is_write ? 0 : ldq_le_p(buf) &
                 MAKE_64BIT_MASK(0, r->io.size * 8);
    r->io.flags = res;
    trace_distvm_io_replay(r->from, r->io.cpu, r->io.space, r->io.addr,
                           r->io.size, is_write, res);
    distvm_wire_io(m, DISTVM_MSG_IO_REPLY, s->node_id, &r->io);
    distvm_wire_set_seq(m, r->id);
    distvm_send(s, r->from, m);
    g_free(r);
}

void distvm_io_handle(DistvmState *s, const DistvmMsg *msg)
{
    /* Role, and a vCPU that exists: checked by distvm_dispatch(). */
    if (msg->hdr.type == DISTVM_MSG_IO_REQ) {
        DistvmIoReplay *r = g_new(DistvmIoReplay, 1);

        r->from = msg->hdr.src;
        r->id = msg->hdr.seq;
        r->io = msg->u.io;
        distvm_main_loop_call(msg->hdr.src, distvm_io_replay_bh, r);
    } else {
        DistvmIoWait *w = &io_waits[msg->u.io.cpu];

        if (!msg->hdr.seq ||
            qatomic_cmpxchg(&w->waiting_id, msg->hdr.seq, 0) !=
            msg->hdr.seq) {
            distvm_msg_refused(s, msg->hdr.src, "IO_REPLY %" PRIu64 " for "
                               "vCPU %" PRIu32 ", which waits for no such "
                               "reply", msg->hdr.seq, msg->u.io.cpu);
            return;
        }
        w->data = msg->u.io.data;
        w->result = msg->u.io.flags;
        qemu_event_set(&w->done);
    }
}

/*
 * The cluster shuts down (a node left in order): the home node may be
 * gone, so no access waits for it any more; those waiting fail.
 */
void distvm_io_leaving(DistvmState *s)
{
    for (unsigned i = 0; i < s->nr_vcpus; i++) {
        io_waits[i].data = 0;
        io_waits[i].result = MEMTX_ERROR;
        qemu_event_set(&io_waits[i].done);
    }
}

void distvm_io_init(DistvmState *s)
{
    qemu_mutex_init(&io_stats_lock);
    io_waits = g_new0(DistvmIoWait, s->nr_vcpus);
    for (unsigned i = 0; i < s->nr_vcpus; i++) {
        qemu_event_init(&io_waits[i].done, false);
    }
    x86_pio_forward_hook = distvm_pio_forward;
    tcg_mmio_forward_hook = distvm_mmio_forward;
    apic_eoi_hook = distvm_ioapic_eoi;
}
