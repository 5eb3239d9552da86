/*
 * distvm: PCI devices that a node other than home runs
 *
 * -accel distvm,...,device-nodes=ID@NODE[:ID@NODE...] (the same on every
 * node) makes NODE run the device model of the PCI device ID (a -device
 * id, or a QOM path) and its backend.  Every node creates the device, as
 * it creates every other, but only NODE's copy ever runs:
 *
 * - Accesses: the device's BARs, as the guest programmed them, are
 *   looked up first by the vCPUs' port I/O and MMIO hooks on every node,
 *   home included (distvm-io.c).  An access of a vCPU of NODE is done
 *   there; the other nodes send it to NODE (IO_REQ), which replays it as
 *   home replays the others' (the vCPU's parked copy current).
 * - Configuration: the guest reaches it through the chipset, on home.
 *   Home sends each configuration write of a placed device to every
 *   node (PCI_CONFIG), which replays it on its own copy, so that NODE's
 *   copy has the guest's BARs, command register and MSI/MSI-X state, and
 *   every node knows where the BARs are.  Home numbers them; an access
 *   sent to NODE names the last one its sender applied, and NODE does it
 *   only once it applied that one too (the guest may write a device's
 *   MSI address, then at once make it interrupt).
 * - Interrupts: MSI and MSI-X reach the vCPU's LAPIC from NODE as from
 *   any node (distvm-vcpu.c).  INTx: on a node other than home, the root
 *   PCI bus's lines go to home (PCI_INTX), and home's bus drives each
 *   line of its chipset with its own devices' level ORed with the other
 *   nodes'.
 * - DMA goes through the page protocol, from NODE as from anywhere.
 * - A machine reset resets the placed devices on the nodes other than
 *   home too, as home's reset resets its own.
 *
 * Only PCI devices that are neither the chipset (host bridge, ISA
 * bridge) nor a bridge nor a VGA device (its legacy ranges are no BARs)
 * can be placed.  A placed device cannot be unplugged (an unplug
 * blocker says so).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "system/system.h"
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "qemu/timer.h"
#include "qom/object.h"
#include "hw/pci/pci.h"
#include "hw/pci/pci_bus.h"
#include "hw/pci/pci_device.h"
#include "hw/qdev-core.h"
#include "distvm-internal.h"
#include "trace.h"

/* Where the placed devices' BARs are, as the guest programmed them */
typedef struct DistvmDeviceRange {
    uint64_t base;
    uint64_t size;
    uint32_t space;             /* DISTVM_IO_PORT or DISTVM_IO_MEMORY */
    uint32_t dev;               /* index in DistvmDevices.placed */
    int bar;                    /* the device's region */
} DistvmDeviceRange;

typedef struct DistvmDeviceMap {
    struct rcu_head rcu;
    uint32_t count;
    DistvmDeviceRange r[];
} DistvmDeviceMap;

/* The INTx lines of the machine's root PCI bus */
typedef struct DistvmIntx {
    PCIBus *bus;
    pci_set_irq_fn set_irq;     /* the bus's own: the chipset's router */
    void *opaque;
    int nirq;
    bool *local;                /* [nirq]: this node's devices' level */
    uint32_t *remote;           /* home: [nirq] the other nodes' levels */
} DistvmIntx;

struct DistvmDevices {
    DistvmPlacedDevice *placed;
    uint32_t count;
    DistvmDeviceMap *map;       /* RCU */
    DistvmIntx intx;
    bool run_here;              /* a node other than home runs some */
    bool going_home;            /* home: a rollback moved them, not loaded */
    GQueue config_waits;        /* DistvmConfigWait, under the BQL */
    QEMUTimer *config_timer;    /* refuses those that wait too long */
    /* BQL: a node was lost, and this node has not rolled back for it */
    bool waits_fail;
};

/* An access that waits for a configuration write of home's */
typedef struct DistvmConfigWait {
    uint64_t gen;
    int64_t since_ns;
    DistvmMsg msg;              /* without pointers: an IO_REQ */
    void (*fn)(DistvmState *s, const DistvmMsg *msg);
} DistvmConfigWait;

static bool placed_parse_one(DistvmState *s, const char *item,
                             DistvmPlacedDevice *d, Error **errp)
{
    const char *at = strrchr(item, '@');
    uint64_t node;

    if (!at || at == item || !at[1]) {
        error_setg(errp, "distvm: device-nodes=%s: '%s' is not ID@NODE",
                   s->device_nodes, item);
        return false;
    }
    if (qemu_strtou64(at + 1, NULL, 10, &node)) {
        error_setg(errp, "distvm: device-nodes=%s: '%s' is not ID@NODE "
                   "(NODE is a number)", s->device_nodes, item);
        return false;
    }
    if (node >= s->nodes) {
        error_setg(errp, "distvm: device-nodes=%s: there is no node %" PRIu64
                   " (the cluster has nodes 0 to %" PRIu32 ")",
                   s->device_nodes, node, s->nodes - 1);
        return false;
    }
    if (node >= s->start_nodes) {
        error_setg(errp, "distvm: device-nodes=%s: node %" PRIu64 " joins "
                   "the running guest later (the cluster starts with nodes "
                   "0 to %" PRIu32 ")", s->device_nodes, node,
                   s->start_nodes - 1);
        return false;
    }
    d->name = g_strndup(item, at - item);
    d->node = node;
    d->placed = node;
    d->saved_node = node;
    d->ckpt_node = node;
    d->option = "device-nodes";
    d->taken_from = UINT32_MAX;
    return true;
}

static Notifier single_node_ready;

/* A single node: the devices are checked once they exist, as elsewhere */
static void single_node_machine_ready(Notifier *n, void *data)
{
    Error *err = NULL;

    if (!distvm_devices_setup(distvm_state(), &err)) {
        error_report_err(err);
        exit(1);
    }
}

uint32_t distvm_devices_count(DistvmState *s)
{
    return s->devices ? s->devices->count : 0;
}

DistvmPlacedDevice *distvm_devices_get(DistvmState *s, uint32_t i)
{
    assert(i < distvm_devices_count(s));
    return &s->devices->placed[i];
}

DistvmPlacedDevice *distvm_devices_card(DistvmState *s, const char *name)
{
    DistvmDevices *dv = s->devices;

    for (uint32_t i = 0; i < dv->count; i++) {
        if (!strcmp(dv->placed[i].name, name)) {
            return &dv->placed[i];
        }
    }
    dv->placed = g_renew(DistvmPlacedDevice, dv->placed, dv->count + 1);
    dv->placed[dv->count] = (DistvmPlacedDevice) {
        .name = g_strdup(name),
        .node = DISTVM_HOME_NODE,
        .placed = DISTVM_HOME_NODE,
        .saved_node = DISTVM_HOME_NODE,
        .ckpt_node = DISTVM_HOME_NODE,
        .option = "queue-nodes",
        .taken_from = UINT32_MAX,
    };
    return &dv->placed[dv->count++];
}

/* The properties, once the cluster's size is known */
bool distvm_devices_init(DistvmState *s, Error **errp)
{
    g_auto(GStrv) items = NULL;
    DistvmDevices *dv;

    if ((!s->device_nodes || !*s->device_nodes) &&
        (!s->queue_nodes || !*s->queue_nodes)) {
        return true;
    }
    items = g_strsplit(s->device_nodes ?: "", ":", -1);
    dv = g_new0(DistvmDevices, 1);
    dv->count = g_strv_length(items);
    dv->placed = g_new0(DistvmPlacedDevice, dv->count);
    s->devices = dv;
    for (uint32_t i = 0; i < dv->count; i++) {
        if (!placed_parse_one(s, items[i], &dv->placed[i], errp)) {
            return false;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (!strcmp(dv->placed[j].name, dv->placed[i].name)) {
                error_setg(errp, "distvm: device-nodes=%s: device '%s' is "
                           "listed twice", s->device_nodes,
                           dv->placed[i].name);
                return false;
            }
        }
    }
    /* The cards of queue-nodes that device-nodes does not name: home */
    if (!distvm_netqueues_init(s, errp)) {
        return false;
    }
    if (s->nodes == 1) {
        single_node_ready.notify = single_node_machine_ready;
        qemu_add_machine_init_done_notifier(&single_node_ready);
    }
    return true;
}

static int list_pci_device(Object *obj, void *opaque)
{
    GString *ids = opaque;
    DeviceState *dev = (DeviceState *)object_dynamic_cast(obj, TYPE_DEVICE);

    if (dev && dev->id && object_dynamic_cast(obj, TYPE_PCI_DEVICE)) {
        g_string_append_printf(ids, "%s%s", ids->len ? ", " : "", dev->id);
    }
    return 0;
}

/* The device @name names: a -device id, or a QOM path */
static Object *placed_find(const char *name)
{
    if (name[0] == '/') {
        return object_resolve_path(name, NULL);
    }
    return object_resolve_path_component(
        machine_get_container("peripheral"), name);
}

/*
 * The machine's root PCI bus above @dev, through bridges and through the
 * root buses of PCI expander bridges (pxb), whose lines go to it
 */
static PCIBus *top_root_bus(PCIDevice *dev)
{
    PCIBus *bus = pci_get_bus(dev);

    while (bus->parent_dev) {
        bus = pci_get_bus(bus->parent_dev);
    }
    return bus;
}

/* Home would unplug its own copy only: @d's device cannot be unplugged */
static void placed_block_unplug(DistvmPlacedDevice *d)
{
    if (d->unplug_blocker) {
        qdev_del_unplug_blocker(DEVICE(d->dev), d->unplug_blocker);
        error_free(d->unplug_blocker);
        d->unplug_blocker = NULL;
    }
    error_setg(&d->unplug_blocker, "distvm: device '%s' runs on node %"
               PRIu32 " (%s); it cannot be unplugged", d->name, d->node,
               d->option);
    qdev_add_unplug_blocker(DEVICE(d->dev), d->unplug_blocker);
}

/* Can @d's device run away from home?  Sets @d->dev if so. */
static bool placed_check(DistvmState *s, DistvmPlacedDevice *d, Error **errp)
{
    Object *obj = placed_find(d->name);
    PCIDevice *dev;
    uint16_t class;

    if (!obj) {
        g_autoptr(GString) ids = g_string_new("");

        object_child_foreach_recursive(object_get_root(), list_pci_device,
                                       ids);
        error_setg(errp, "distvm: %s: there is no device '%s' "
                   "(the PCI devices with an id: %s)", d->option, d->name,
                   ids->len ? ids->str : "none");
        return false;
    }
    dev = (PCIDevice *)object_dynamic_cast(obj, TYPE_PCI_DEVICE);
    if (!dev) {
        error_setg(errp, "distvm: %s: '%s' (%s) is not a PCI "
                   "device; only PCI devices can run on a node other than "
                   "home (the chipset, the PICs, the I/O APIC, the LAPICs "
                   "and the other devices stay on home)", d->option, d->name,
                   object_get_typename(obj));
        return false;
    }
    class = pci_get_word(dev->config + PCI_CLASS_DEVICE);
    if (!pci_get_bus(dev)->parent_dev && dev->devfn == 0) {
        error_setg(errp, "distvm: %s: '%s' is the host bridge, "
                   "part of the chipset, which stays on home", d->option,
                   d->name);
        return false;
    }
    if ((class >> 8) == PCI_BASE_CLASS_BRIDGE) {
        error_setg(errp, "distvm: %s: '%s' (%s) is a bridge, "
                   "part of the chipset or of the PCI hierarchy, which stays "
                   "on home", d->option, d->name, object_get_typename(obj));
        return false;
    }
    if ((class >> 8) == (PCI_CLASS_DISPLAY_VGA >> 8)) {
        error_setg(errp, "distvm: %s: '%s' (%s) is a display "
                   "device, whose legacy VGA ranges stay on home", d->option,
                   d->name, object_get_typename(obj));
        return false;
    }
    if (s->devices->intx.bus && top_root_bus(dev) != s->devices->intx.bus) {
        error_setg(errp, "distvm: %s: '%s' is under another PCI "
                   "host bridge than the devices before it; placed devices "
                   "must share one", d->option, d->name);
        return false;
    }
    s->devices->intx.bus = top_root_bus(dev);
    d->dev = dev;
    placed_block_unplug(d);
    return true;
}

/* ---- the BARs' map ---- */

/* Under the BQL: rebuild the map from the devices' BARs here. */
static void map_update(DistvmState *s)
{
    DistvmDevices *dv = s->devices;
    DistvmDeviceMap *map = g_malloc0(sizeof(*map) + dv->count *
                                     PCI_NUM_REGIONS *
                                     sizeof(DistvmDeviceRange));
    DistvmDeviceMap *old;

    for (uint32_t i = 0; i < dv->count; i++) {
        PCIDevice *dev = dv->placed[i].dev;

        for (int r = 0; r < PCI_NUM_REGIONS; r++) {
            PCIIORegion *reg = &dev->io_regions[r];

            if (!reg->size || reg->addr == PCI_BAR_UNMAPPED) {
                continue;
            }
            map->r[map->count++] = (DistvmDeviceRange) {
                .base = reg->addr, .size = reg->size, .dev = i, .bar = r,
                .space = (reg->type & PCI_BASE_ADDRESS_SPACE_IO) ?
                         DISTVM_IO_PORT : DISTVM_IO_MEMORY,
            };
            trace_distvm_device_bar(dv->placed[i].name, r, reg->addr,
                                    reg->size);
        }
    }
    old = qatomic_xchg(&dv->map, map);
    if (old) {
        g_free_rcu(old, rcu);
    }
}

DistvmPlacedDevice *distvm_devices_route(DistvmState *s, uint32_t space,
                                         uint64_t addr, uint64_t data,
                                         bool is_write, DistvmIoRoute *r)
{
    DistvmDevices *dv = s->devices;
    DistvmDeviceMap *map;

    if (!dv) {
        return NULL;
    }
    RCU_READ_LOCK_GUARD();
    map = qatomic_rcu_read(&dv->map);
    for (uint32_t i = 0; map && i < map->count; i++) {
        const DistvmDeviceRange *range = &map->r[i];
        DistvmPlacedDevice *pd = &dv->placed[range->dev];

        if (range->space == space && addr >= range->base &&
            addr - range->base < range->size) {
            *r = (DistvmIoRoute) { .node = qatomic_read(&pd->node),
                                   .queue = -1 };
            if (pd->queues) {
                distvm_netqueues_route(s, pd, range->bar,
                                       addr - range->base, data, is_write,
                                       r);
            }
            return pd;
        }
    }
    return NULL;
}

DistvmPlacedDevice *distvm_devices_find(DistvmState *s, PCIDevice *dev)
{
    for (uint32_t i = 0; dev && s->devices && i < s->devices->count; i++) {
        if (s->devices->placed[i].dev == dev) {
            return &s->devices->placed[i];
        }
    }
    return NULL;
}

bool distvm_devices_placed(DistvmState *s, PCIDevice *dev)
{
    return distvm_devices_find(s, dev) != NULL;
}

const char *distvm_devices_on_node(DistvmState *s, uint32_t node,
                                   bool pairs)
{
    for (uint32_t i = 0; s->devices && i < s->devices->count; i++) {
        if (s->devices->placed[i].node == node ||
            (pairs && distvm_netqueues_serves(&s->devices->placed[i],
                                              node))) {
            return s->devices->placed[i].name;
        }
    }
    return NULL;
}

bool distvm_devices_run_here(DistvmState *s)
{
    return s->devices && s->devices->run_here;
}

void distvm_devices_config_written(DistvmState *s, PCIDevice *dev)
{
    DistvmPlacedDevice *pd = distvm_devices_find(s, dev);

    if (pd) {
        map_update(s);
        if (pd->queues) {
            distvm_netqueues_config_written(s, pd);
        }
    }
}

/*
 * A held-back access made before a node was lost fails: its vCPU stops,
 * and the guest rolls back to before it (distvm_devices_config_waits_fail())
 */
static void config_wait_fails(DistvmState *s, const DistvmMsg *msg,
                              uint64_t gen)
{
    trace_distvm_config_wait_failed(msg->hdr.src, gen,
                                    distvm_recovery_lost(s));
    distvm_io_req_failed(s, msg);
}

bool distvm_devices_config_wait(DistvmState *s, uint64_t gen,
                                const DistvmMsg *msg,
                                void (*fn)(DistvmState *s,
                                           const DistvmMsg *msg))
{
    DistvmConfigWait *w;

    if (!s->devices || qatomic_read(&s->config_gen) >= gen) {
        return false;
    }
    if (s->devices->waits_fail) {
        config_wait_fails(s, msg, gen);
        return true;
    }
    /* A vCPU makes one access at a time */
    for (GList *l = s->devices->config_waits.head; l; l = l->next) {
        DistvmConfigWait *o = l->data;

        if (o->msg.hdr.src == msg->hdr.src &&
            o->msg.u.io.cpu == msg->u.io.cpu) {
            distvm_msg_refused(s, msg->hdr.src, "%s of vCPU %" PRIu32
                               " while its last waits for home's "
                               "configuration write %" PRIu64,
                               distvm_msg_type_name(msg->hdr.type),
                               msg->u.io.cpu, o->gen);
            return true;
        }
    }
    w = g_new0(DistvmConfigWait, 1);
    w->gen = gen;
    w->since_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    w->msg = *msg;
    w->fn = fn;
    g_queue_push_tail(&s->devices->config_waits, w);
    if (!timer_pending(s->devices->config_timer)) {
        timer_mod(s->devices->config_timer, w->since_ns +
                  (int64_t)s->peer_timeout * NANOSECONDS_PER_SECOND);
    }
    return true;
}

/*
 * Run the accesses that waited for configuration writes applied now.
 * They are taken off the queue first: a device's access may run the main
 * loop, and with it this again, or a node's loss.
 */
void distvm_devices_config_applied(DistvmState *s)
{
    GQueue *q = s->devices ? &s->devices->config_waits : NULL;
    GList *l = q ? q->head : NULL;
    GQueue ready = G_QUEUE_INIT;
    DistvmConfigWait *w;

    while (l) {
        GList *next = l->next;

        w = l->data;
        if (w->gen <= s->config_gen) {
            g_queue_unlink(q, l);
            g_queue_push_tail_link(&ready, l);
        }
        l = next;
    }
    while ((w = g_queue_pop_head(&ready))) {
        if (s->devices->waits_fail) {
            config_wait_fails(s, &w->msg, w->gen);  /* a node lost meanwhile */
        } else {
            w->fn(s, &w->msg);
        }
        g_free(w);
    }
}

/*
 * In the main loop: a node was lost.  Every vCPU is held from then until
 * the guest rolls back to before what they did, so the accesses that wait
 * for a configuration write of home's (which a lost home may never send:
 * the standby in its place numbers its own), and those that come until
 * this node rolls back for the loss (distvm_devices_go_home()), fail at
 * once: their vCPUs stop.  Those that come after are the guest's again.
 */
void distvm_devices_config_waits_fail(DistvmState *s)
{
    DistvmDevices *dv = s->devices;
    DistvmConfigWait *w;

    if (!dv) {
        return;
    }
    dv->waits_fail = true;
    while ((w = g_queue_pop_head(&dv->config_waits))) {
        config_wait_fails(s, &w->msg, w->gen);
        g_free(w);
    }
    timer_del(dv->config_timer);
}

/*
 * An access that waited for longer than peer-timeout for a configuration
 * write that home never sent: its sender made the number up.  Counted as
 * refused, and done without waiting any longer, as if it named none.
 */
static void config_wait_expired(void *opaque)
{
    DistvmState *s = opaque;
    GQueue *q = &s->devices->config_waits;
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    int64_t limit = (int64_t)s->peer_timeout * NANOSECONDS_PER_SECOND;
    DistvmConfigWait *w;

    while ((w = g_queue_peek_head(q)) && now - w->since_ns >= limit) {
        g_queue_pop_head(q);
        distvm_msg_refused(s, w->msg.hdr.src, "%s after home's configuration "
                           "write %" PRIu64 ", which did not come in %"
                           PRIu32 " s (the last was %" PRIu64 ")",
                           distvm_msg_type_name(w->msg.hdr.type), w->gen,
                           s->peer_timeout, s->config_gen);
        w->msg.u.io.flags &= ~DISTVM_IO_CONFIG_GEN;
        w->fn(s, &w->msg);
        g_free(w);
    }
    if (w) {
        timer_mod(s->devices->config_timer, w->since_ns + limit);
    }
}

/*
 * A node other than home, when the machine is reset: home's reset reset
 * its copies of the placed devices, so do this node's.
 */
void distvm_devices_reset(DistvmState *s)
{
    if (!s->devices) {
        return;
    }
    if (!distvm_is_home(s)) {
        for (uint32_t i = 0; i < s->devices->count; i++) {
            device_cold_reset(DEVICE(s->devices->placed[i].dev));
        }
    }
    map_update(s);
}

/* ---- a rollback brings them home ---- */

/* Whether this node runs a device placed on it, or serves a card's pair */
static bool devices_run_here(DistvmState *s)
{
    DistvmDevices *dv = s->devices;

    for (uint32_t i = 0; !distvm_is_home(s) && i < dv->count; i++) {
        if (dv->placed[i].node == s->node_id ||
            distvm_netqueues_serves(&dv->placed[i], s->node_id)) {
            return true;
        }
    }
    return false;
}

/* Under the BQL: @d runs on home from now on; its node's copy stops */
static void device_goes_home(DistvmState *s, DistvmPlacedDevice *d)
{
    uint32_t home = distvm_home(s);

    if (d->node == s->node_id) {
        /* Its copy here stops: reset, it takes in no packet */
        device_cold_reset(DEVICE(d->dev));
    }
    trace_distvm_device_home(d->name, d->node, home);
    qatomic_set(&d->node, home);
    qatomic_set(&d->moved, true);
    d->moves++;
    placed_block_unplug(d);
}

void distvm_devices_go_home(DistvmState *s, uint32_t saved_home)
{
    DistvmDevices *dv = s->devices;
    uint32_t home = distvm_home(s);
    uint32_t left = 0;

    if (dv) {
        dv->waits_fail = false;     /* the guest's accesses wait again */
    }
    /* A rollback tried again: home moved them already */
    if (!dv || dv->going_home) {
        return;
    }
    dv->going_home = distvm_is_home(s);
    for (uint32_t i = 0; i < dv->count; i++) {
        DistvmPlacedDevice *d = &dv->placed[i];

        if (d->queues) {
            /*
             * A card whose pairs several nodes serve runs on home
             * (distvm_placed_state_check()).  Home lost, its standby,
             * home now, runs it on: its copy loads home's state of the
             * epoch, with home's other devices'
             */
            if (d->node != home) {
                device_goes_home(s, d);
                distvm_netqueues_card_home(s, d);
            }
            continue;
        }
        if (!distvm_node_present(s, d->placed)) {
            qatomic_set(&d->stays_home, true);      /* its node was lost */
        }
        /*
         * Its state of the epoch: home's own, if the home that saved it
         * ran it then, or that of the node that did (it may have come
         * home, or gone back, since)
         */
        d->taken_from = UINT32_MAX;
        if (distvm_is_home(s) && qatomic_read(&d->ckpt_node) != saved_home) {
            d->taken_from = qatomic_read(&d->ckpt_node);
        }
        if (d->node == home) {
            continue;           /* home, or its standby in its place, runs it */
        }
        left |= BIT(d->node);
        device_goes_home(s, d);
    }
    dv->run_here = devices_run_here(s);
    if (!left) {
        return;
    }
    /* The INTx lines the nodes left drove (driven again once loaded) */
    for (int irq = 0; distvm_is_home(s) && irq < dv->intx.nirq; irq++) {
        dv->intx.remote[irq] &= ~left;
    }
    map_update(s);
}

void distvm_devices_rolled_back(DistvmState *s)
{
    DistvmDevices *dv = s->devices;
    DistvmIntx *x = dv ? &dv->intx : NULL;

    if (!dv) {
        return;
    }
    dv->going_home = false;
    /*
     * The root bus's lines as the devices home runs now drive them, ORed
     * with the nodes', over what the interrupt controllers loaded
     */
    for (int irq = 0; x->bus && x->remote && irq < x->nirq; irq++) {
        x->local[irq] = x->bus->irq_count[irq] != 0;
        x->set_irq(x->opaque, irq, x->local[irq] || x->remote[irq]);
    }
}

void distvm_devices_saved(DistvmState *s, uint64_t epoch)
{
    for (uint32_t i = 0; s->devices && i < s->devices->count; i++) {
        DistvmPlacedDevice *d = &s->devices->placed[i];

        qatomic_set(&d->saved_node, d->node);
        qatomic_set(&d->saved_epoch, epoch);
    }
}

void distvm_devices_committed(DistvmState *s, uint64_t epoch)
{
    for (uint32_t i = 0; s->devices && i < s->devices->count; i++) {
        DistvmPlacedDevice *d = &s->devices->placed[i];

        if (qatomic_read(&d->saved_epoch) == epoch) {
            qatomic_set(&d->ckpt_node, qatomic_read(&d->saved_node));
        }
    }
}

void distvm_devices_node_left(DistvmState *s, uint32_t node)
{
    for (uint32_t i = 0; s->devices && i < s->devices->count; i++) {
        if (s->devices->placed[i].placed == node) {
            qatomic_set(&s->devices->placed[i].stays_home, true);
        }
    }
}

void distvm_devices_send_state(DistvmState *s, uint32_t node)
{
    g_autoptr(GByteArray) m = g_byte_array_new();

    for (uint32_t i = 0; s->devices && i < s->devices->count; i++) {
        if (s->devices->placed[i].moved) {
            distvm_wire_device_home(m, s->node_id, i);
            distvm_send(s, node, m);
        }
    }
}

/* ---- and sends them back to their node ---- */

/*
 * Home: its copy of @d stops (reset: it takes in no packet), as its node
 * runs it.  Home's chipset answers the guest's reads of the device's
 * configuration space from that copy: it stays as the guest wrote it.
 */
static void device_stops_here(DistvmPlacedDevice *d)
{
    PCIDevice *dev = d->dev;
    g_autofree uint8_t *config = g_memdup2(dev->config,
                                           pci_config_size(dev));

    device_cold_reset(DEVICE(dev));
    memcpy(dev->config, config, pci_config_size(dev));
    pci_device_deassert_intx(dev);
}

/* Under the BQL: @d runs on the node device-nodes names again */
static void device_goes_away(DistvmState *s, DistvmPlacedDevice *d)
{
    trace_distvm_device_away(d->name, d->placed);
    qatomic_set(&d->node, d->placed);
    qatomic_set(&d->moved, false);
    d->moves++;
    d->taken_from = UINT32_MAX;
    placed_block_unplug(d);
    s->devices->run_here = devices_run_here(s);
    map_update(s);
}

bool distvm_devices_goes_back(DistvmState *s, DistvmPlacedDevice *d)
{
    uint32_t home = distvm_home(s);

    return !d->queues && d->node == home && d->placed != home &&
           distvm_node_present(s, d->placed) &&
           !qatomic_read(&d->stays_home) &&
           qatomic_read(&s->draining) != d->placed && distvm_devpath_up(d);
}

void distvm_devices_send_away(DistvmState *s)
{
    DistvmDevices *dv = s->devices;

    for (uint32_t i = 0; dv && i < dv->count; i++) {
        DistvmPlacedDevice *d = &dv->placed[i];
        g_autoptr(GByteArray) state = NULL;
        g_autoptr(GByteArray) m = NULL;
        Error *err = NULL;

        if (!distvm_devices_goes_back(s, d)) {
            continue;
        }
        state = g_byte_array_new();
        if (!distvm_placed_state_save_one(d, state, &err)) {
            warn_report_err(err);
            qatomic_set(&d->stays_home, true);      /* not asked again */
            continue;
        }
        device_stops_here(d);
        /* Numbered as a configuration write: accesses sent after it wait */
        qatomic_set(&s->config_gen, s->config_gen + 1);
        m = g_byte_array_new();
        distvm_wire_device_away(m, s->node_id, s->config_gen, i, d->placed,
                                state->data, state->len);
        /* A node joining may have been told it came home (DEVICE_HOME) */
        for (uint32_t n = 0; n < s->nodes; n++) {
            if (n != s->node_id && (distvm_node_present(s, n) ||
                                    n == qatomic_read(&s->joining))) {
                distvm_send(s, n, m);
            }
        }
        device_goes_away(s, d);
    }
}

/* From home, before the guest runs again: a device goes back */
static void device_away_received(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgDeviceAway *a = &msg->u.away;
    DistvmDevices *dv = s->devices;
    DistvmPlacedDevice *d = dv && a->device < dv->count ?
                            &dv->placed[a->device] : NULL;
    Error *err = NULL;

    /* Refused, it changes nothing, its number included */
    if (!d || d->queues || d->placed != a->node) {
        distvm_msg_refused(s, msg->hdr.src, "DEVICE_AWAY of device %" PRIu32
                           " to node %" PRIu32 ", which is no device that "
                           "device-nodes places there", a->device, a->node);
        return;
    }
    if (qatomic_read(&d->moved)) {
        if (a->node == s->node_id &&
            !distvm_placed_state_load_one(d, a->data, a->len, &err)) {
            distvm_fatal_node_lost(s, s->node_id, error_get_pretty(err));
            error_free(err);
            return;
        }
        device_goes_away(s, d);
    } else if (distvm_node_present(s, s->node_id)) {
        distvm_msg_refused(s, msg->hdr.src, "DEVICE_AWAY of '%s' to node %"
                           PRIu32 ", which runs it already", d->name,
                           a->node);
        return;
    }
    /*
     * (A node joining learnt where the devices are after home sent it
     * back.)  Numbered as a configuration write: the accesses that wait
     * for it go on.
     */
    qatomic_set(&s->config_gen, MAX(s->config_gen, msg->hdr.seq));
    distvm_devices_config_applied(s);
}

/* A joining node, from home: a rollback brought a device home */
static void device_home_received(DistvmState *s, const DistvmMsg *msg)
{
    DistvmDevices *dv = s->devices;
    DistvmPlacedDevice *d;

    if (!dv || msg->u.device >= dv->count) {
        distvm_msg_refused(s, msg->hdr.src, "DEVICE_HOME of device %" PRIu32
                           ", where device-nodes places %" PRIu32,
                           msg->u.device, dv ? dv->count : 0);
        return;
    }
    if (distvm_node_present(s, s->node_id)) {
        distvm_msg_refused(s, msg->hdr.src, "DEVICE_HOME of device %" PRIu32
                           " to a node that joined already",
                           msg->u.device);
        return;
    }
    d = &dv->placed[msg->u.device];
    if (d->moved) {
        return;                 /* told twice */
    }
    device_goes_home(s, d);
    if (d->queues) {
        distvm_netqueues_card_home(s, d);
    }
    dv->run_here = devices_run_here(s);
    map_update(s);
}

bool distvm_devices_taken_from(DistvmState *s, uint32_t node)
{
    for (uint32_t i = 0; s->devices && i < s->devices->count; i++) {
        if (s->devices->placed[i].taken_from == node) {
            return true;
        }
    }
    return false;
}

/* ---- INTx ---- */

/* The root bus's set_irq, here: @level is this node's devices' */
static void intx_set_irq(void *opaque, int irq, int level)
{
    DistvmState *s = opaque;
    DistvmIntx *x = &s->devices->intx;
    DistvmClusterState state = qatomic_read(&s->state);

    if (distvm_is_home(s)) {
        x->local[irq] = level;
        x->set_irq(x->opaque, irq, level || x->remote[irq]);
        return;
    }
    /* Only placed devices run here: their lines are home's chipset's. */
    if (x->local[irq] == !!level) {
        return;
    }
    x->local[irq] = level;
    if (state == DISTVM_CLUSTER_STATE_RUNNING) {
        g_autoptr(GByteArray) m = g_byte_array_new();

        trace_distvm_device_intx_send(irq, level);
        distvm_wire_pci_intx(m, s->node_id, irq, level);
        distvm_send(s, distvm_home(s), m);
        distvm_flow_sent(s, BIT(distvm_home(s)));
    }
}

/* Does @node run a device, or does device-nodes place one there? */
static bool devices_of(DistvmState *s, uint32_t node)
{
    for (uint32_t i = 0; i < s->devices->count; i++) {
        DistvmPlacedDevice *d = &s->devices->placed[i];

        if (d->placed == node || qatomic_read(&d->node) == node) {
            return true;
        }
    }
    return false;
}

/* Home, under the BQL: a node's devices drive line @irq at @level. */
static void intx_received(DistvmState *s, const DistvmMsg *msg)
{
    DistvmIntx *x = s->devices ? &s->devices->intx : NULL;
    uint32_t irq = msg->u.intx.irq;

    if (!x || !x->bus || irq >= x->nirq) {
        distvm_msg_refused(s, msg->hdr.src, "PCI_INTX for line %" PRIu32
                           ", which no device placed on node %" PRIu32
                           " drives", irq, msg->hdr.src);
        return;
    }
    if (msg->u.intx.level && !devices_of(s, msg->hdr.src)) {
        distvm_msg_refused(s, msg->hdr.src, "PCI_INTX raising line %" PRIu32
                           " from node %" PRIu32 ", which runs no device",
                           irq, msg->hdr.src);
        return;
    }
    trace_distvm_device_intx_received(msg->hdr.src, irq, msg->u.intx.level);
    if (msg->u.intx.level) {
        x->remote[irq] |= 1u << msg->hdr.src;
    } else {
        x->remote[irq] &= ~(1u << msg->hdr.src);
    }
    x->set_irq(x->opaque, irq, x->local[irq] || x->remote[irq]);
}

static void intx_setup(DistvmState *s)
{
    DistvmIntx *x = &s->devices->intx;
    PCIBus *bus = x->bus;

    x->set_irq = bus->set_irq;
    x->opaque = bus->irq_opaque;
    x->nirq = MIN(bus->nirq, DISTVM_PCI_INTX_MAX);
    x->local = g_new0(bool, bus->nirq);
    x->remote = g_new0(uint32_t, bus->nirq);
    for (int i = 0; i < x->nirq; i++) {
        x->local[i] = bus->irq_count[i] != 0;
    }
    bus->set_irq = intx_set_irq;
    bus->irq_opaque = s;
}

static const DistvmMsgHandler devices_handlers[] = {
    { DISTVM_MSG_PCI_INTX, .main_loop = intx_received },
    { DISTVM_MSG_DEVICE_HOME, .main_loop = device_home_received },
    { DISTVM_MSG_DEVICE_AWAY, .main_loop = device_away_received },
};

/* The machine exists: find the devices, and take over their INTx lines. */
bool distvm_devices_setup(DistvmState *s, Error **errp)
{
    DistvmDevices *dv = s->devices;

    distvm_msg_handlers_register(s, devices_handlers,
                                 ARRAY_SIZE(devices_handlers));
    distvm_netqueues_register(s);
    if (!dv) {
        return true;
    }
    for (uint32_t i = 0; i < dv->count; i++) {
        if (!placed_check(s, &dv->placed[i], errp)) {
            return false;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (dv->placed[j].dev == dv->placed[i].dev) {
                error_setg(errp, "distvm: device-nodes: '%s' and '%s' are "
                           "the same device", dv->placed[j].name,
                           dv->placed[i].name);
                return false;
            }
        }
        if (dv->placed[i].queues &&
            !distvm_netqueues_setup(s, &dv->placed[i], errp)) {
            return false;
        }
        if (!distvm_placed_state_check(s, &dv->placed[i], errp)) {
            return false;
        }
        distvm_devpath_setup(s, &dv->placed[i]);
        trace_distvm_device_placed(dv->placed[i].name, dv->placed[i].node);
    }
    dv->run_here = devices_run_here(s);
    if (s->nodes > 1) {
        intx_setup(s);
    }
    g_queue_init(&dv->config_waits);
    dv->config_timer = timer_new_ns(QEMU_CLOCK_REALTIME, config_wait_expired,
                                    s);
    map_update(s);
    return true;
}

DistvmDeviceInfoList *distvm_devices_query(DistvmState *s)
{
    DistvmDeviceInfoList *list = NULL, **tail = &list;

    for (uint32_t i = 0; s->devices && i < s->devices->count; i++) {
        DistvmPlacedDevice *d = &s->devices->placed[i];
        DistvmDeviceInfo *info;

        if (!d->dev) {
            continue;           /* a single node: it runs them all */
        }
        info = g_new0(DistvmDeviceInfo, 1);

        info->id = g_strdup(d->name);
        info->qom_path = object_get_canonical_path(OBJECT(d->dev));
        info->node = d->node;
        info->local = qatomic_read(&d->local);
        info->forwarded = qatomic_read(&d->forwarded);
        info->served = qatomic_read(&d->served);
        info->moves = d->moves;
        info->queues = distvm_netqueues_query(d);
        info->has_queues = info->queues != NULL;
        QAPI_LIST_APPEND(tail, info);
    }
    return list;
}
