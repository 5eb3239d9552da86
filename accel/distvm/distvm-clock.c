/*
 * distvm: registers that only read a clock, read on every node
 *
 * Linux keeps or checks time with the HPET's main counter or the ACPI PM
 * timer.  Those are devices of the home node, so every read by a vCPU on
 * another node would be a round trip to it.  But such a read only reads
 * the guest's virtual clock, which every node has and keeps in step with
 * home's (distvm-runstate.c).  So the home node tells the others where
 * the registers are and the HPET counter's state (CLOCK_REGS, each time
 * it changes), and they answer a vCPU's read themselves, with the value
 * home's device would have returned: the PM timer through their own
 * copy of its register, the HPET counter as hpet.c computes it.
 *
 * CLOCK_REGS travels on the connection that carries home's IO_REPLYs and
 * is applied in the receive thread, so a vCPU whose forwarded write
 * changed the state sees the new state once its write completed.  The
 * state is read by vCPU threads under @lock, which is never held long.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/host-utils.h"
#include "qemu/timer.h"
#include "exec/address-spaces.h"
#include "exec/memory.h"
#include "hw/acpi/piix4.h"
#include "hw/southbridge/ich9.h"
#include "hw/sysbus.h"
#include "hw/timer/hpet.h"
#include "distvm-internal.h"
#include "trace.h"

#define PM_TIMER_MASK   0xffffff

struct DistvmClock {
    QemuMutex lock;
    DistvmMsgClockRegs regs;    /* home: its devices'; others: home's */
    MemoryRegion *pm_timer;     /* this node's ACPI PM timer register */
    uint64_t reads_local;       /* atomic */
    uint64_t reads_sent;        /* atomic */
};

/* The ACPI PM timer's register of the machine's power management device. */
static MemoryRegion *find_pm_timer(void)
{
    Object *obj = object_resolve_path_type("", TYPE_PIIX4_PM, NULL);

    if (obj) {
        return &PIIX4_PM(obj)->ar.tmr.io;
    }
    obj = object_resolve_path_type("", TYPE_ICH9_LPC_DEVICE, NULL);
    if (obj) {
        return &ICH9_LPC_DEVICE(obj)->pm.acpi_regs.tmr.io;
    }
    return NULL;
}

/* Where @mr is in the port I/O space, if it is mapped there. */
static bool port_of(MemoryRegion *mr, uint32_t *port)
{
    hwaddr addr = 0;

    for (; mr; mr = mr->container) {
        if (!mr->enabled) {
            return false;
        }
        if (mr == get_system_io()) {
            *port = addr;
            return true;
        }
        addr += mr->addr;
    }
    return false;
}

/* Home: tell @node (or every other node, UINT32_MAX) where they are. */
static void clock_send_to(DistvmState *s, uint32_t node)
{
    g_autoptr(GByteArray) m = g_byte_array_new();

    if (qatomic_read(&s->state) != DISTVM_CLUSTER_STATE_RUNNING) {
        return;     /* sent when the cluster starts */
    }
    distvm_wire_clock_regs(m, s->node_id, &s->clock->regs);
    trace_distvm_clock_regs_send(s->clock->regs.flags,
                                 s->clock->regs.pm_timer_port,
                                 s->clock->regs.hpet_counter,
                                 s->clock->regs.hpet_offset);
    for (uint32_t i = 0; i < s->nodes; i++) {
        if (i != s->node_id && (node == UINT32_MAX || i == node)) {
            distvm_send(s, i, m);
        }
    }
}

static void clock_send(DistvmState *s)
{
    clock_send_to(s, UINT32_MAX);
}

/* Home, with the BQL: a node joins the running guest (distvm-join.c). */
void distvm_clock_send_state(DistvmState *s, uint32_t node)
{
    if (s->clock) {
        clock_send_to(s, node);
    }
}

/* Home: where the PM timer is now; true if it moved. */
static bool pm_timer_moved(DistvmClock *c)
{
    uint32_t port = 0;
    bool mapped = c->pm_timer && port_of(c->pm_timer, &port);
    uint32_t flags;
    bool moved;

    qemu_mutex_lock(&c->lock);
    flags = c->regs.flags & ~DISTVM_CLOCK_PM_TIMER;
    flags |= mapped ? DISTVM_CLOCK_PM_TIMER : 0;
    moved = flags != c->regs.flags || port != c->regs.pm_timer_port;
    c->regs.flags = flags;
    c->regs.pm_timer_port = port;
    qemu_mutex_unlock(&c->lock);
    return moved;
}

/* Home, with the BQL: the guest may have moved the PM timer. */
void distvm_clock_update(DistvmState *s)
{
    if (s->clock && distvm_is_home(s) && pm_timer_moved(s->clock)) {
        clock_send(s);
    }
}

/* Home, with the BQL: the HPET's main counter was started, stopped or set. */
static void distvm_hpet_counter_changed(DeviceState *dev, bool enabled,
                                        uint64_t counter, uint64_t offset)
{
    DistvmState *s = distvm_state();
    DistvmClock *c = s ? s->clock : NULL;
    SysBusDevice *sbd = SYS_BUS_DEVICE(dev);

    if (!c || !distvm_is_home(s) || sbd->mmio[0].addr == (hwaddr)-1 ||
        OBJECT(dev) != object_resolve_path_type("", TYPE_HPET, NULL)) {
        return;
    }
    qemu_mutex_lock(&c->lock);
    c->regs.flags |= DISTVM_CLOCK_HPET;
    c->regs.flags &= ~DISTVM_CLOCK_HPET_ENABLED;
    c->regs.flags |= enabled ? DISTVM_CLOCK_HPET_ENABLED : 0;
    c->regs.hpet_base = sbd->mmio[0].addr;
    c->regs.hpet_counter = counter;
    c->regs.hpet_offset = offset;
    qemu_mutex_unlock(&c->lock);
    clock_send(s);
}

/*
 * The cluster formed, with the BQL: the home node tells the others what
 * the guest set up so far.
 */
void distvm_clock_start(DistvmState *s)
{
    s->clock->pm_timer = find_pm_timer();
    if (distvm_is_home(s)) {
        pm_timer_moved(s->clock);
        clock_send(s);
    }
}

/* Not home, in the receive thread. */
static bool clock_regs_received(DistvmState *s, const DistvmMsg *msg)
{
    DistvmClock *c = s->clock;

    trace_distvm_clock_regs_recv(msg->u.clock.flags,
                                 msg->u.clock.pm_timer_port,
                                 msg->u.clock.hpet_counter,
                                 msg->u.clock.hpet_offset);
    qemu_mutex_lock(&c->lock);
    c->regs = msg->u.clock;
    qemu_mutex_unlock(&c->lock);
    return true;
}

static bool hpet_counter_read(const DistvmMsgClockRegs *r, uint64_t addr,
                              unsigned size, uint64_t *val)
{
    uint64_t ticks;

    if (!(r->flags & DISTVM_CLOCK_HPET) || addr < r->hpet_base + HPET_COUNTER ||
        addr + size > r->hpet_base + HPET_COUNTER + 8 ||
        (size != 4 && size != 8) || (addr & (size - 1))) {
        return false;
    }
    /* As hpet_ram_read() and hpet_get_ticks() compute it. */
    if (r->flags & DISTVM_CLOCK_HPET_ENABLED) {
        ticks = (qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + r->hpet_offset) /
                HPET_CLK_PERIOD;
    } else {
        ticks = r->hpet_counter;
    }
    *val = (ticks >> ((addr & 4) * 8)) & MAKE_64BIT_MASK(0, size * 8);
    return true;
}

/* Is this one of the registers, though not a read answered here? */
static bool clock_register(const DistvmMsgClockRegs *r, uint32_t space,
                           uint64_t addr)
{
    uint64_t hpet = r->flags & DISTVM_CLOCK_HPET ? r->hpet_base : HPET_BASE;

    if (space == DISTVM_IO_PORT) {
        return (r->flags & DISTVM_CLOCK_PM_TIMER) &&
               addr >= r->pm_timer_port && addr < r->pm_timer_port + 4;
    }
    return addr >= hpet + HPET_COUNTER && addr < hpet + HPET_COUNTER + 8;
}

/*
 * A vCPU of this node reads port I/O or MMIO: answer it here if it only
 * reads a clock.  Little-endian @val.
 */
bool distvm_clock_read(DistvmState *s, uint32_t space, uint64_t addr,
                       unsigned size, uint64_t *val)
{
    DistvmClock *c = s->clock;
    DistvmMsgClockRegs r;
    bool done = false;

    qemu_mutex_lock(&c->lock);
    r = c->regs;
    qemu_mutex_unlock(&c->lock);

    if (space == DISTVM_IO_PORT) {
        if ((r.flags & DISTVM_CLOCK_PM_TIMER) && addr == r.pm_timer_port &&
            size == 4 && c->pm_timer) {
            done = memory_region_dispatch_read(c->pm_timer, 0, val, MO_32,
                                               MEMTXATTRS_UNSPECIFIED) ==
                   MEMTX_OK;
            *val &= PM_TIMER_MASK;
        }
    } else if (space == DISTVM_IO_MEMORY) {
        done = hpet_counter_read(&r, addr, size, val);
    }
    if (done) {
        qatomic_inc(&c->reads_local);
    } else if (clock_register(&r, space, addr)) {
        qatomic_inc(&c->reads_sent);
    }
    return done;
}

void distvm_clock_get_stats(DistvmState *s, uint64_t *local, uint64_t *sent)
{
    *local = s->clock ? qatomic_read(&s->clock->reads_local) : 0;
    *sent = s->clock ? qatomic_read(&s->clock->reads_sent) : 0;
}

static const DistvmMsgHandler clock_handlers[] = {
    { DISTVM_MSG_CLOCK_REGS, .receive = clock_regs_received },
};

void distvm_clock_init(DistvmState *s)
{
    DistvmClock *c = g_new0(DistvmClock, 1);

    qemu_mutex_init(&c->lock);
    s->clock = c;
    hpet_counter_hook = distvm_hpet_counter_changed;
    distvm_msg_handlers_register(s, clock_handlers, ARRAY_SIZE(clock_handlers));
}
