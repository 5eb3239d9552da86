/*
 * distvm: device accesses of vCPUs that run away from their device
 *
 * Devices are emulated on the home node, except the PCI devices that
 * device-nodes places on another node (distvm-devices.c).  A vCPU whose
 * port I/O or MMIO (outside its LAPIC's window) reaches a device another
 * node runs sends the access to that node and waits for its result (with
 * the BQL released, if its thread held it); that node replays it under
 * the BQL with current_cpu set to its own, parked copy of that vCPU, as
 * the devices expect.  An access that stops the current vCPU there (a
 * reset or suspend request: cpu_stop_current()) stops the real one
 * instead: the reply says so, and home's run state change that follows
 * (reset, suspend, stop) brings it back.  So does an access that sets
 * that vCPU's A20 line, which the vCPU applies before its next
 * instruction.
 *
 * The receive thread replays an access itself, without waking the main
 * loop, when the BQL is free and the device touches no guest RAM (see
 * io_req_now()): the UART a console writes a byte at a time, mostly.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "cpu.h"
#include "exec/address-spaces.h"
#include "exec/cputlb.h"
#include "hw/char/serial.h"
#include "hw/i386/apic_internal.h"
#include "hw/i386/x86-iommu.h"
#include "hw/intc/ioapic.h"
#include "hw/core/cpu.h"
#include "hw/qdev-core.h"
#include "qemu/rcu.h"
#include "distvm-internal.h"
#include "trace.h"

/* A vCPU waiting for the result of its access. */
struct DistvmIoWait {
    QemuEvent done;
    uint32_t dest;              /* the node the request went to */
    uint64_t next_id;           /* the vCPU's thread's */
    uint64_t waiting_id;        /* atomic: the request waiting, or 0 */
    uint64_t data;
    uint32_t flags;             /* the reply's: MemTxResult, _STOP, _REGS */
    uint64_t regs[DISTVM_IO_NR_REGS];
};

/* The EOI register of an I/O APIC of version 0x20. */
#define IOAPIC_EOI_REGISTER 0x40
/* VMware's I/O port (hw/i386/vmport.c) */
#define DISTVM_VMPORT_PORT 0x5658

static void io_account(DistvmState *s, uint32_t space, int64_t start_ns)
{
    DistvmIoKind kind = space == DISTVM_IO_PORT ? DISTVM_IO_KIND_PORT :
                        space == DISTVM_IO_PIC_ACK ? DISTVM_IO_KIND_PIC_ACK :
                        DISTVM_IO_KIND_MMIO;
    uint64_t us = (get_clock() - start_ns) / 1000;

    qemu_mutex_lock(&s->io_stats_lock);
    s->io_stats.lat_us[kind][s->io_stats.count[kind] %
                             DISTVM_IO_LAT_SAMPLES] = MIN(us, UINT32_MAX);
    s->io_stats.count[kind]++;
    qemu_mutex_unlock(&s->io_stats_lock);
}

void distvm_io_get_stats(DistvmState *s, DistvmIoStats *stats)
{
    qemu_mutex_lock(&s->io_stats_lock);
    *stats = s->io_stats;
    qemu_mutex_unlock(&s->io_stats_lock);
}

/*
 * Send @io, an access of this node's vCPU @cs, to node @dest and wait for
 * its result: @io->data read, and with DISTVM_IO_REGS the registers after
 * it.
 */
static MemTxResult io_forward(DistvmState *s, CPUState *cs, uint32_t dest,
                              DistvmMsgIo *io)
{
    DistvmIoWait *w = &s->io_waits[cs->cpu_index];
    g_autoptr(GByteArray) m = g_byte_array_new();
    bool locked = bql_locked();
    int64_t start_ns = get_clock();

    distvm_wire_io(m, DISTVM_MSG_IO_REQ, s->node_id, io);
    distvm_wire_set_seq(m, ++w->next_id);
    trace_distvm_io_forward(io->cpu, io->space, io->addr, io->size,
                            io->flags & DISTVM_IO_WRITE, io->data);
    qemu_event_reset(&w->done);
    qatomic_set(&w->dest, dest);
    qatomic_set(&w->waiting_id, w->next_id);
    /*
     * Against distvm_io_fail_waits(): one of the two sees the other; and
     * a @dest in a lost home's place is seen with the loss (IO_DROPPED)
     */
    smp_mb();
    if (distvm_cluster_leaving(s) || distvm_leave_ending(s) ||
        distvm_recovery_busy(s)) {
        io->data = 0;
        io->flags &= ~DISTVM_IO_REGS;
        return MEMTX_ERROR;
    }
    if (locked) {
        bql_unlock();
    }
    if (!distvm_send(s, dest, m)) {
        /* Taken over (home's place by its standby): the guest rolls back */
        distvm_fatal_node_lost(s, dest, "connection closed");
        distvm_io_cancel(s, cs->cpu_index);
    }
    qemu_event_wait(&w->done);
    distvm_dispatch_wait_before_replies(s, cs);
    io_account(s, io->space, start_ns);
    if (dest == distvm_home(s)) {
        /* the policy's pull to home (placed devices' is not counted) */
        distvm_affinity_io(s, cs->cpu_index);
    }
    if (w->flags & DISTVM_IO_STOP) {
        /* cpu_stop_current(), for this vCPU: it is current here. */
        qatomic_set(&cs->stop, true);
        cpu_exit(cs);
    }
    if (w->flags & DISTVM_IO_A20) {
        /*
         * On its own thread, under the BQL as the device would have set
         * it: its TLB is flushed before it goes on.
         */
        bql_lock();
        x86_cpu_set_a20(X86_CPU(cs), w->flags & DISTVM_IO_A20_ON);
        if (!locked) {
            bql_unlock();
        }
    } else if (locked) {
        bql_lock();
    }
    io->data = w->data;
    if (!(w->flags & DISTVM_IO_REGS)) {
        io->flags &= ~DISTVM_IO_REGS;
    } else if (io->flags & DISTVM_IO_REGS) {
        memcpy(io->regs, w->regs, sizeof(io->regs));
    }
    return w->flags & ~(DISTVM_IO_STOP | DISTVM_IO_REGS | DISTVM_IO_A20 |
                        DISTVM_IO_A20_ON);
}

static MemTxResult io_forward_to(DistvmState *s, CPUState *cs, uint32_t dest,
                                 uint32_t space, uint64_t addr,
                                 uint64_t *data, unsigned size, bool is_write)
{
    DistvmMsgIo io = {
        .cpu = cs->cpu_index,
        .space = space,
        .size = size,
        .flags = is_write ? DISTVM_IO_WRITE : 0,
        .addr = addr,
        .data = is_write ? *data & MAKE_64BIT_MASK(0, size * 8) : 0,
    };
    MemTxResult res;

    if (dest != distvm_home(s)) {
        /* A placed device's node: as configured when this node asks */
        io.flags |= DISTVM_IO_CONFIG_GEN;
        io.config_gen = qatomic_read(&s->config_gen);
    }
    res = io_forward(s, cs, dest, &io);

    if (!is_write) {
        *data = io.data;
    }
    return res;
}

MemTxResult distvm_io_forward(DistvmState *s, CPUState *cs, uint32_t space,
                              uint64_t addr, uint64_t *data, unsigned size,
                              bool is_write)
{
    return io_forward_to(s, cs, distvm_home(s), space, addr, data, size,
                         is_write);
}

/*
 * VMware's I/O port reads and writes the general registers of the vCPU
 * that accesses it: they travel with the access, both ways.
 */
static void vmport_forward(DistvmState *s, CPUState *cs, uint32_t *data,
                           bool is_write)
{
    CPUX86State *env = &X86_CPU(cs)->env;
    DistvmMsgIo io = {
        .cpu = cs->cpu_index,
        .space = DISTVM_IO_PORT,
        .size = 4,
        .flags = DISTVM_IO_REGS | (is_write ? DISTVM_IO_WRITE : 0),
        .addr = DISTVM_VMPORT_PORT,
        .data = is_write ? *data : 0,
    };

    memcpy(io.regs, env->regs, sizeof(io.regs));
    io_forward(s, cs, distvm_home(s), &io);
    if (io.flags & DISTVM_IO_REGS) {
        memcpy(env->regs, io.regs, sizeof(io.regs));
    }
    if (!is_write) {
        *data = io.data;
    }
}

/*
 * A write of a vCPU to a placed device that the copies of @nodes do too
 * (a card whose queue pairs several nodes serve: distvm-netqueues.c),
 * each in turn, by node id, before the node that answers it
 */
static void io_mirror(DistvmState *s, CPUState *cs, uint32_t nodes,
                      uint32_t space, uint64_t addr, uint64_t data,
                      unsigned size)
{
    for (uint32_t node = 0; nodes && node < s->nodes; node++) {
        MemTxResult res;

        if (!(nodes & BIT(node))) {
            continue;
        }
        if (node == s->node_id) {
            MemTxAttrs attrs = MEMTXATTRS_UNSPECIFIED;
            uint8_t buf[8];

            stq_le_p(buf, data);
            res = address_space_rw(space == DISTVM_IO_PORT ?
                                   &address_space_io : cs->as, addr, attrs,
                                   buf, size, true);
        } else {
            res = io_forward_to(s, cs, node, space, addr, &data, size, true);
        }
        trace_distvm_io_mirror(node, cs->cpu_index, space, addr, size, data,
                               res);
        if (res != MEMTX_OK) {
            error_report_once("distvm: node %" PRIu32 " failed a write of "
                              "vCPU %d at %s 0x%" PRIx64 " (result %u): "
                              "its copy of the device is out of step", node,
                              cs->cpu_index, space == DISTVM_IO_PORT ?
                              "port" : "address", addr, res);
        }
    }
}

static bool cluster_runs(DistvmState *s)
{
    DistvmClusterState state = qatomic_read(&s->state);

    return state == DISTVM_CLUSTER_STATE_RUNNING ||
           state == DISTVM_CLUSTER_STATE_LEAVING;
}

/* Forward unless this is the home node (or the guest has not started). */
bool distvm_io_forwarded(DistvmState *s)
{
    return !distvm_is_home(s) && cluster_runs(s);
}

/*
 * While a lost node is taken over, a vCPU's device access is dropped (a
 * read reads 0): the vCPU is about to stop, and the guest, its devices
 * included, rolls back; a standby in home's place has not loaded the
 * devices' state yet.
 */
#define IO_DROPPED  (-2)

/*
 * The node that does a vCPU's access of @space at @addr (a write of @data
 * if @is_write), -1 for this one, or IO_DROPPED: a placed device's node
 * (@pd set), or home for the other devices.  A write that other nodes'
 * copies of a placed device do too is done there first (io_mirror()).
 */
static int io_destination(DistvmState *s, CPUState *cs, uint32_t space,
                          uint64_t addr, uint64_t data, unsigned size,
                          bool is_write, DistvmPlacedDevice **pd)
{
    DistvmPlacedDevice *d = NULL;
    uint32_t home = distvm_home(s);
    DistvmIoRoute route;

    *pd = NULL;
    if (!cluster_runs(s)) {
        return -1;
    }
    /* Against distvm_recovery_node_lost(): the loss is set before home */
    smp_rmb();
    if (distvm_recovery_busy(s)) {
        return IO_DROPPED;
    }
    d = distvm_devices_route(s, space, addr, data, is_write, &route);
    if (d) {
        *pd = d;
        io_mirror(s, cs, route.mirror & ~BIT(route.node), space, addr, data,
                  size);
        if (route.node == s->node_id) {
            qatomic_inc(&d->local);
            distvm_netqueues_handled(d, route.queue);
            return -1;
        }
        qatomic_inc(&d->forwarded);
        return route.node;
    }
    return home == s->node_id ? -1 : home;
}

static bool distvm_pio_forward(CPUState *cs, uint32_t port, uint32_t *data,
                               unsigned size, bool is_write)
{
    DistvmState *s = distvm_state();
    DistvmPlacedDevice *pd;
    uint64_t val = *data;
    int dest = io_destination(s, cs, DISTVM_IO_PORT, port, val, size,
                              is_write, &pd);

    if (dest == IO_DROPPED) {
        *data = is_write ? *data : 0;
        return true;
    }
    if (dest < 0) {
        return false;
    }
    if (!pd && port == DISTVM_VMPORT_PORT && size == 4) {
        vmport_forward(s, cs, data, is_write);
        return true;
    }
    if (is_write || pd ||
        !distvm_clock_read(s, DISTVM_IO_PORT, port, size, &val)) {
        io_forward_to(s, cs, dest, DISTVM_IO_PORT, port, &val, size,
                      is_write);
    }
    *data = val;
    return true;
}

/*
 * MMIO: everything but the LAPIC window, which belongs to the vCPU that
 * accesses it (the other devices are the home node's, or a placed
 * device's node's).
 */
static bool distvm_mmio_forward(CPUState *cs, hwaddr addr, MemTxAttrs attrs,
                                void *buf, unsigned size, bool is_write,
                                MemTxResult *res, uintptr_t ra)
{
    DistvmState *s = distvm_state();
    uint32_t space = attrs.secure ? DISTVM_IO_SMM : DISTVM_IO_MEMORY;
    DistvmPlacedDevice *pd;
    uint64_t val = 0;
    int dest;

    if (distvm_residency_vcpu_access(s, cs, addr, ra) ||
        (addr >= APIC_DEFAULT_ADDRESS &&
         addr < APIC_DEFAULT_ADDRESS + APIC_SPACE_SIZE)) {
        return false;
    }
    if (is_write) {
        val = ldn_le_p(buf, size);
    }
    dest = io_destination(s, cs, space, addr, val, size, is_write, &pd);
    if (dest == IO_DROPPED) {
        if (!is_write) {
            memset(buf, 0, size);
        }
        *res = MEMTX_OK;
        return true;
    }
    if (dest < 0) {
        return false;
    }
    if (!is_write && !pd && !attrs.secure &&
        distvm_clock_read(s, DISTVM_IO_MEMORY, addr, size, &val)) {
        *res = MEMTX_OK;
    } else {
        *res = io_forward_to(s, cs, dest, space, addr, &val, size, is_write);
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

/*
 * Answer @msg, an IO_REQ, with @io; held back while one of @flow_nodes,
 * which the access made work for, asks this node to wait
 * (distvm-flow.c).
 */
static void io_reply(DistvmState *s, const DistvmMsg *msg,
                     const DistvmMsgIo *io, uint32_t flow_nodes)
{
    g_autoptr(GByteArray) m = g_byte_array_new();

    distvm_wire_io(m, DISTVM_MSG_IO_REPLY, s->node_id, io);
    distvm_wire_set_seq(m, msg->hdr.seq);
    if (!distvm_flow_hold_reply(s, flow_nodes, msg->hdr.src, m)) {
        distvm_send(s, msg->hdr.src, m);
    }
}

/* Answer @msg, an IO_REQ, with a failure: @flags, and no data */
static void io_reply_failed(DistvmState *s, const DistvmMsg *msg,
                            uint32_t flags)
{
    DistvmMsgIo reply = msg->u.io;

    reply.data = 0;
    reply.flags = flags;
    io_reply(s, msg, &reply, 0);
}

/* Answer @msg, an IO_REQ, with a failure: its vCPU stops. */
void distvm_io_req_failed(DistvmState *s, const DistvmMsg *msg)
{
    io_reply_failed(s, msg, MEMTX_ERROR | DISTVM_IO_STOP);
}

/*
 * Is @io for a device this node runs?  Home runs all but the placed
 * devices; another node, the devices placed on it.  Returns false if it
 * is not, and answers it then.
 */
static bool io_req_ours(DistvmState *s, const DistvmMsg *msg,
                        DistvmPlacedDevice **pd)
{
    const DistvmMsgIo *io = &msg->u.io;
    DistvmIoRoute route;

    *pd = NULL;
    if (io->space == DISTVM_IO_PORT || io->space == DISTVM_IO_MEMORY) {
        *pd = distvm_devices_route(s, io->space, io->addr, io->data,
                                   io->flags & DISTVM_IO_WRITE, &route);
    }
    if (*pd) {
        if (route.node == s->node_id) {
            distvm_netqueues_handled(*pd, route.queue);
            return true;
        }
        if (route.mirror & BIT(s->node_id)) {
            return true;
        }
        if (distvm_netqueues_pass_on(s, *pd, route.queue, route.node)) {
            /* A pair's notification sent here before its move: done */
            io_reply_failed(s, msg, MEMTX_OK);
            return false;
        }
    }
    if (distvm_is_home(s) && !(*pd && (*pd)->queues)) {
        return true;
    }
    distvm_msg_refused(s, msg->hdr.src, "IO_REQ of vCPU %" PRIu32 " for %s "
                       "0x%" PRIx64 ", which no device of node %" PRIu32
                       " answers", io->cpu,
                       io->space == DISTVM_IO_PORT ? "port" : "address",
                       io->addr, s->node_id);
    io_reply_failed(s, msg, MEMTX_DECODE_ERROR);
    return false;
}

/* Accesses done here for other nodes' vCPUs with one device */
typedef struct DistvmIoServedCount {
    char *name;
    uint64_t count;
} DistvmIoServedCount;

static void served_count_free(gpointer p)
{
    DistvmIoServedCount *c = p;

    g_free(c->name);
    g_free(c);
}

/*
 * Under the BQL: count an access done here for another node's vCPU by
 * the device that answers it (the owner of its memory region, by its id,
 * or QOM path if it has none), or by its region's name if no device owns
 * it.  Kept by owner, or region: named once.
 */
static void io_count_served(DistvmState *s, AddressSpace *as, hwaddr addr,
                            MemTxAttrs attrs, bool is_write)
{
    DistvmIoServedCount *c;
    MemoryRegion *mr;
    Object *owner;
    hwaddr xlat, len = 1;

    RCU_READ_LOCK_GUARD();
    mr = address_space_translate(as, addr, &xlat, &len, is_write, attrs);
    owner = memory_region_owner(mr);
    if (owner && !object_dynamic_cast(owner, TYPE_DEVICE)) {
        owner = NULL;
    }
    c = g_hash_table_lookup(s->io_served, owner ? (void *)owner : mr);
    if (!c) {
        c = g_new0(DistvmIoServedCount, 1);
        c->name = !owner ? g_strdup(memory_region_name(mr)) :
                  DEVICE(owner)->id ? g_strdup(DEVICE(owner)->id) :
                  object_get_canonical_path(owner);
        g_hash_table_insert(s->io_served, owner ? (void *)owner : mr, c);
    }
    c->count++;
}

DistvmIoServedList *distvm_io_served(DistvmState *s)
{
    DistvmIoServedList *list = NULL;
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init(&iter, s->io_served);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        DistvmIoServedCount *c = value;
        DistvmIoServed *e = g_new0(DistvmIoServed, 1);

        e->device = g_strdup(c->name);
        e->accesses = c->count;
        QAPI_LIST_PREPEND(list, e);
    }
    return list;
}

/*
 * Home, or a placed device's node: replay the access under the BQL and
 * send back its result.
 */
static void io_req_replay(DistvmState *s, const DistvmMsg *msg)
{
    DistvmMsgIo io = msg->u.io;
    DistvmPlacedDevice *pd;
    CPUState *saved = current_cpu;
    CPUState *saved_replaying;
    CPUState *cpu = qemu_get_cpu(io.cpu);
    int saved_a20, replay_a20;
    uint32_t saved_flow, replay_flow;
    uint8_t buf[8] = { 0 };
    bool is_write = io.flags & DISTVM_IO_WRITE;
    bool stopped;
    MemTxAttrs attrs = MEMTXATTRS_UNSPECIFIED;
    AddressSpace *as = &address_space_io;
    MemTxResult res;

    /*
     * The requester had applied home's configuration writes up to
     * config_gen: the device's BARs and its MSI addresses, for instance.
     */
    if ((io.flags & DISTVM_IO_CONFIG_GEN) &&
        distvm_devices_config_wait(s, io.config_gen, msg, io_req_replay)) {
        return;
    }
    if (!cpu) {
        /* Unplugged while the access waited: main_loop_part() checked */
        distvm_msg_refused(s, msg->hdr.src, "IO_REQ for vCPU %" PRIu32
                           ", which does not exist", io.cpu);
        distvm_io_req_failed(s, msg);
        return;
    }
    if (!io_req_ours(s, msg, &pd)) {
        return;
    }
    if (distvm_leave_ending(s)) {
        /* This node's guest stopped for good: its devices start nothing. */
        distvm_io_req_failed(s, msg);
        return;
    }
    if (pd) {
        qatomic_inc(&pd->served);
    }
    if (io.space == DISTVM_IO_MEMORY || io.space == DISTVM_IO_SMM) {
        attrs = (MemTxAttrs) { .secure = io.space == DISTVM_IO_SMM };
        as = cpu_get_address_space(cpu, cpu_asidx_from_attrs(cpu, attrs));
    }
    stq_le_p(buf, io.data);
    stopped = cpu->stop;
    if (io.flags & DISTVM_IO_REGS) {
        /* The parked copy's are stale: the vCPU's own, for the device. */
        memcpy(X86_CPU(cpu)->env.regs, io.regs, sizeof(io.regs));
    }
    current_cpu = cpu;
    /* A main-loop replay that let the BQL go may be under this one */
    saved_replaying = s->io_replaying;
    saved_a20 = s->io_replay_a20;
    saved_flow = s->io_replay_flow;
    s->io_replaying = cpu;
    s->io_replay_a20 = -1;
    s->io_replay_flow = 0;
    if (io.space == DISTVM_IO_PIC_ACK) {
        buf[0] = distvm_pic_acknowledge();
        res = MEMTX_OK;
    } else {
        io_count_served(s, as, io.addr, attrs, is_write);
        res = address_space_rw(as, io.addr, attrs, buf, io.size, is_write);
    }
    replay_a20 = s->io_replay_a20;
    replay_flow = s->io_replay_flow;
    s->io_replaying = saved_replaying;
    s->io_replay_a20 = saved_a20;
    s->io_replay_flow = saved_flow;
    current_cpu = saved;
    io.data = is_write ? 0 : ldq_le_p(buf) & MAKE_64BIT_MASK(0, io.size * 8);
    if (io.flags & DISTVM_IO_REGS) {
        memcpy(io.regs, X86_CPU(cpu)->env.regs, sizeof(io.regs));
        io.flags = res | DISTVM_IO_REGS;
    } else {
        io.flags = res;
    }
    if (cpu->stop && !stopped) {
        /* Not this parked copy: the vCPU stops where it runs. */
        cpu->stop = false;
        io.flags |= DISTVM_IO_STOP;
    }
    if (replay_a20 >= 0) {
        io.flags |= DISTVM_IO_A20 | (replay_a20 ? DISTVM_IO_A20_ON : 0);
    }
    trace_distvm_io_replay(msg->hdr.src, io.cpu, io.space, io.addr, io.size,
                           is_write, res, distvm_net_receiving());
    io_reply(s, msg, &io, replay_flow);
}

/*
 * The register models that read and write no guest RAM: an access to
 * them never waits for a page, so a receive thread may replay it (the
 * page could have to come through that very thread).  Their interrupts
 * go through the PIC and the I/O APIC, which touch no guest RAM either
 * unless an IOMMU remaps interrupts (its table is in guest RAM): then
 * io_req_now() leaves them to the main loop.
 */
static const MemoryRegionOps *const io_ram_free_ops[] = {
    &serial_io_ops,             /* the 16550A UART: a console's bytes */
};

/* Whether @io, under the BQL, reaches a region of io_ram_free_ops */
static bool io_touches_no_ram(const DistvmMsgIo *io)
{
    hwaddr xlat, len = io->size;
    MemoryRegion *mr;

    if (io->space != DISTVM_IO_PORT) {
        return false;
    }
    mr = address_space_translate(&address_space_io, io->addr, &xlat, &len,
                                 io->flags & DISTVM_IO_WRITE,
                                 MEMTXATTRS_UNSPECIFIED);
    if (len < io->size) {
        return false;           /* it goes on into another region */
    }
    for (size_t i = 0; i < ARRAY_SIZE(io_ram_free_ops); i++) {
        if (mr->ops == io_ram_free_ops[i]) {
            return true;
        }
    }
    return false;
}

/*
 * DistvmMsgHandler.main_loop_now, with the BQL (the memory map stays as
 * it is): the receive thread may replay @msg if the device touches no
 * guest RAM, and no other node's configuration needs waiting for.
 */
static bool io_req_now(const DistvmMsg *msg)
{
    return !(msg->u.io.flags & DISTVM_IO_CONFIG_GEN) &&
           !x86_iommu_get_default() && io_touches_no_ram(&msg->u.io);
}

/*
 * Home, under the BQL: the A20 line of @cpu changed.  If home is
 * replaying an access of that vCPU (its write to port 0x92 or to the
 * 8042), the reply carries the change, which the vCPU applies before its
 * next instruction, as on one node: returns true.
 */
bool distvm_io_replay_a20(DistvmState *s, CPUState *cpu, bool enabled)
{
    if (s->io_replaying != cpu) {
        return false;
    }
    s->io_replay_a20 = enabled;
    return true;
}

/* The result a vCPU waits for, by the id of its request and its node. */
static bool io_reply_received(DistvmState *s, const DistvmMsg *msg)
{
    DistvmIoWait *w = &s->io_waits[msg->u.io.cpu];

    if (!msg->hdr.seq || msg->hdr.src != qatomic_read(&w->dest) ||
        qatomic_cmpxchg(&w->waiting_id, msg->hdr.seq, 0) != msg->hdr.seq) {
        distvm_msg_refused(s, msg->hdr.src, "IO_REPLY %" PRIu64 " for "
                           "vCPU %" PRIu32 ", which waits for no such "
                           "reply", msg->hdr.seq, msg->u.io.cpu);
        return false;
    }
    w->data = msg->u.io.data;
    w->flags = msg->u.io.flags;
    if (w->flags & DISTVM_IO_REGS) {
        memcpy(w->regs, msg->u.io.regs, sizeof(w->regs));
    }
    qemu_event_set(&w->done);
    return true;
}

/*
 * A node ends the cluster (distvm-leave.c), or left it (BYE): no node
 * answers device accesses any more (a main loop that waits for its vCPUs
 * to stop replays none, and the leaver may be gone).  So those waiting
 * fail, and io_forward() fails those made from now on: the vCPUs that
 * made them can stop.
 */
void distvm_io_fail_waits(DistvmState *s)
{
    smp_mb();   /* the cluster state, or distvm_leave_ending(), first */
    for (unsigned i = 0; i < s->nr_vcpus; i++) {
        distvm_io_cancel(s, i);
    }
}

/*
 * Node @node was lost and is taken over (distvm-recovery.c): the accesses
 * waiting for its answer fail, and the guest rolls back.
 */
void distvm_io_fail_waits_on(DistvmState *s, uint32_t node)
{
    smp_mb();   /* the connection cut first: against io_forward() */
    for (unsigned i = 0; i < s->nr_vcpus; i++) {
        if (qatomic_read(&s->io_waits[i].dest) == node) {
            distvm_io_cancel(s, i);
        }
    }
}

/* vCPU @cpu's access waiting for an answer, if any, fails. */
void distvm_io_cancel(DistvmState *s, unsigned cpu)
{
    DistvmIoWait *w = &s->io_waits[cpu];
    uint64_t id = qatomic_read(&w->waiting_id);

    if (id && qatomic_cmpxchg(&w->waiting_id, id, 0) == id) {
        w->data = 0;
        w->flags = MEMTX_ERROR;
        qemu_event_set(&w->done);
    }
}

/* io_req_ours() and io_reply_received() check who may send them. */
static const DistvmMsgHandler io_handlers[] = {
    { DISTVM_MSG_IO_REQ, .main_loop = io_req_replay,
      .main_loop_now = io_req_now },
    { DISTVM_MSG_IO_REPLY, .receive = io_reply_received },
};

void distvm_io_init(DistvmState *s)
{
    qemu_mutex_init(&s->io_stats_lock);
    s->io_served = g_hash_table_new_full(NULL, NULL, NULL,
                                         served_count_free);
    s->io_waits = g_new0(DistvmIoWait, s->nr_vcpus);
    for (unsigned i = 0; i < s->nr_vcpus; i++) {
        qemu_event_init(&s->io_waits[i].done, false);
    }
    distvm_msg_handlers_register(s, io_handlers, ARRAY_SIZE(io_handlers));
    x86_pio_forward_hook = distvm_pio_forward;
    tcg_mmio_forward_hook = distvm_mmio_forward;
    apic_eoi_hook = distvm_ioapic_eoi;
}
