/*
 * distmem-topology: a PCI device that shows the guest where a distvm
 * cluster runs its vCPUs and where its memory starts, and takes the
 * guest's requests to move a vCPU (docs/specs/distmem-topology.rst)
 *
 * The device model runs on home, as every device does; a vCPU elsewhere
 * reaches its registers by a forwarded access.  Its generation counter
 * goes up after every move, which home learns of with every other node
 * (distvm_placement_notifier_add()), and after memory was plugged or
 * unplugged (its range table changed then), and it interrupts the guest.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/log.h"
#include "qemu/module.h"
#include "qemu/rcu.h"
#include "exec/memory.h"
#include "exec/address-spaces.h"
#include "hw/boards.h"
#include "hw/core/cpu.h"
#include "hw/pci/msi.h"
#include "hw/pci/pci_device.h"
#include "hw/distmem/distmem-topology.h"
#include "migration/vmstate.h"
#include "system/distvm.h"
#include "system/hostmem.h"
#include "trace.h"

OBJECT_DECLARE_SIMPLE_TYPE(DistmemTopologyState, DISTMEM_TOPOLOGY)

/* A run of guest-physical RAM whose pages start on one node */
typedef struct DistmemRange {
    uint64_t base;
    uint64_t size;
    uint32_t node;
    bool homed;
} DistmemRange;

struct DistmemTopologyState {
    PCIDevice parent_obj;

    MemoryRegion mmio;
    Notifier placement_changed;
    uint32_t nr_vcpus;

    uint32_t generation;
    uint32_t int_status;
    uint32_t int_mask;
    bool irq_asserted;
    uint32_t req_vcpu;
    uint32_t req_node;
    uint64_t req_addr;
    uint32_t req_status;

    /* Found again at every reset, and when memory is (un)plugged */
    uint32_t nr_ranges;
    DistmemRange ranges[DISTMEM_TOPOLOGY_RANGE_MAX];
};

static void topology_update_irq(DistmemTopologyState *t)
{
    PCIDevice *pdev = PCI_DEVICE(t);
    bool level = t->int_status & t->int_mask;

    if (msi_enabled(pdev)) {
        /* One message per rise: the guest clears INT_STATUS for the next */
        if (level && !t->irq_asserted) {
            msi_notify(pdev, 0);
        }
    } else {
        pci_set_irq(pdev, level);
    }
    t->irq_asserted = level;
}

static void topology_find_ranges(DistmemTopologyState *t);

static void topology_placement_changed(Notifier *n, void *data)
{
    DistmemTopologyState *t = container_of(n, DistmemTopologyState,
                                           placement_changed);
    DistvmPlacementChange *what = data;

    if (!distvm_runs_devices()) {
        return;
    }

    if (*what == DISTVM_PLACEMENT_RAM) {
        topology_find_ranges(t);
    }
    t->generation++;
    t->int_status |= DISTMEM_TOPOLOGY_INT_CHANGED;
    trace_distmem_topology_changed(t->generation);
    topology_update_irq(t);
}

/* Guest RAM is what memory backends hold, ROM and device memory are not */
static bool topology_add_range(Int128 start, Int128 len,
                               const MemoryRegion *mr, hwaddr offset,
                               void *opaque)
{
    DistmemTopologyState *t = opaque;
    DistmemRange *last = t->nr_ranges ? &t->ranges[t->nr_ranges - 1] : NULL;
    uint64_t base = int128_get64(start), size = int128_get64(len);
    uint32_t node;
    bool homed;

    if (!mr->ram_block || mr->readonly || mr->rom_device ||
        !object_dynamic_cast(mr->owner, TYPE_MEMORY_BACKEND)) {
        return false;
    }
    node = distvm_ram_home(mr->ram_block, &homed);
    if (last && last->base + last->size == base && last->node == node &&
        last->homed == homed) {
        last->size += size;
        return false;
    }
    if (t->nr_ranges == DISTMEM_TOPOLOGY_RANGE_MAX) {
        warn_report_once("distmem-topology: guest RAM has more than %d "
                         "ranges; the device shows the first ones",
                         DISTMEM_TOPOLOGY_RANGE_MAX);
        return true;
    }
    t->ranges[t->nr_ranges++] = (DistmemRange) {
        .base = base, .size = size, .node = node, .homed = homed,
    };
    return false;
}

static void topology_find_ranges(DistmemTopologyState *t)
{
    RCU_READ_LOCK_GUARD();

    t->nr_ranges = 0;
    flatview_for_each_range(address_space_to_flatview(&address_space_memory),
                            topology_add_range, t);
    for (uint32_t i = 0; i < t->nr_ranges; i++) {
        trace_distmem_topology_range(t->ranges[i].base, t->ranges[i].size,
                                     t->ranges[i].node, t->ranges[i].homed);
    }
}

static const DistmemRange *topology_range_of(DistmemTopologyState *t,
                                             uint64_t addr)
{
    for (uint32_t i = 0; i < t->nr_ranges; i++) {
        if (addr - t->ranges[i].base < t->ranges[i].size) {
            return &t->ranges[i];
        }
    }
    return NULL;
}

/* A move the guest asks for: the same path as distvm-move-vcpu's. */
static uint32_t topology_request(DistmemTopologyState *t, uint32_t cmd)
{
    const DistmemRange *range;
    Error *err = NULL;
    uint32_t node;

    switch (cmd) {
    case DISTMEM_TOPOLOGY_CMD_TO_NODE:
        node = t->req_node;
        break;
    case DISTMEM_TOPOLOGY_CMD_TO_ADDR:
        range = topology_range_of(t, t->req_addr);
        if (!range) {
            return DISTMEM_TOPOLOGY_ST_NO_RAM;
        }
        node = range->node;
        break;
    default:
        return DISTMEM_TOPOLOGY_ST_BAD_CMD;
    }
    if (t->req_vcpu >= t->nr_vcpus || !qemu_get_cpu(t->req_vcpu)) {
        return DISTMEM_TOPOLOGY_ST_NO_VCPU;
    }
    if (node >= distvm_cluster_nodes()) {
        return DISTMEM_TOPOLOGY_ST_NO_NODE;
    }
    if (distvm_vcpu_placement(t->req_vcpu) == node) {
        return DISTMEM_TOPOLOGY_ST_THERE;
    }
    if (!distvm_guest_move_vcpu(t->req_vcpu, node, &err)) {
        trace_distmem_topology_refused(t->req_vcpu, node,
                                       error_get_pretty(err));
        error_free(err);
        return DISTMEM_TOPOLOGY_ST_REFUSED;
    }
    return DISTMEM_TOPOLOGY_ST_STARTED;
}

static uint64_t topology_range_read(DistmemTopologyState *t, hwaddr off)
{
    uint32_t i = off / DISTMEM_TOPOLOGY_RANGE_SIZE;
    const DistmemRange *r;

    if (i >= t->nr_ranges) {
        return 0;
    }
    r = &t->ranges[i];
    switch (off % DISTMEM_TOPOLOGY_RANGE_SIZE) {
    case DISTMEM_TOPOLOGY_RANGE_BASE_LO:
        return (uint32_t)r->base;
    case DISTMEM_TOPOLOGY_RANGE_BASE_HI:
        return r->base >> 32;
    case DISTMEM_TOPOLOGY_RANGE_SIZE_LO:
        return (uint32_t)r->size;
    case DISTMEM_TOPOLOGY_RANGE_SIZE_HI:
        return r->size >> 32;
    case DISTMEM_TOPOLOGY_RANGE_NODE:
        return r->node;
    case DISTMEM_TOPOLOGY_RANGE_FLAGS:
        return r->homed ? DISTMEM_TOPOLOGY_RANGE_HOMED : 0;
    default:
        return 0;
    }
}

static uint64_t topology_read(void *opaque, hwaddr addr, unsigned size)
{
    DistmemTopologyState *t = opaque;
    uint32_t cpu;

    switch (addr) {
    case DISTMEM_TOPOLOGY_MAGIC:
        return DISTMEM_TOPOLOGY_MAGIC_VALUE;
    case DISTMEM_TOPOLOGY_VERSION:
        return DISTMEM_TOPOLOGY_VERSION_VALUE;
    case DISTMEM_TOPOLOGY_VCPUS:
        return t->nr_vcpus;
    case DISTMEM_TOPOLOGY_NODES:
        return distvm_cluster_nodes();
    case DISTMEM_TOPOLOGY_GENERATION:
        return t->generation;
    case DISTMEM_TOPOLOGY_INT_STATUS:
        return t->int_status;
    case DISTMEM_TOPOLOGY_INT_MASK:
        return t->int_mask;
    case DISTMEM_TOPOLOGY_RANGES:
        return t->nr_ranges;
    case DISTMEM_TOPOLOGY_REQ_VCPU:
        return t->req_vcpu;
    case DISTMEM_TOPOLOGY_REQ_NODE:
        return t->req_node;
    case DISTMEM_TOPOLOGY_REQ_ADDR_LO:
        return (uint32_t)t->req_addr;
    case DISTMEM_TOPOLOGY_REQ_ADDR_HI:
        return t->req_addr >> 32;
    case DISTMEM_TOPOLOGY_REQ_STATUS:
        return t->req_status;
    }
    if (addr >= DISTMEM_TOPOLOGY_VCPU_TABLE) {
        cpu = (addr - DISTMEM_TOPOLOGY_VCPU_TABLE) / 4;
        if (cpu < t->nr_vcpus && qemu_get_cpu(cpu)) {
            return distvm_vcpu_placement(cpu);
        }
        return UINT32_MAX;
    }
    if (addr >= DISTMEM_TOPOLOGY_RANGE_TABLE) {
        return topology_range_read(t, addr - DISTMEM_TOPOLOGY_RANGE_TABLE);
    }
    qemu_log_mask(LOG_GUEST_ERROR, "distmem-topology: read of reserved "
                  "register 0x%" HWADDR_PRIx "\n", addr);
    return 0;
}

static void topology_write(void *opaque, hwaddr addr, uint64_t val,
                           unsigned size)
{
    DistmemTopologyState *t = opaque;

    switch (addr) {
    case DISTMEM_TOPOLOGY_INT_STATUS:
        t->int_status &= ~val;
        topology_update_irq(t);
        break;
    case DISTMEM_TOPOLOGY_INT_MASK:
        t->int_mask = val & DISTMEM_TOPOLOGY_INT_CHANGED;
        topology_update_irq(t);
        break;
    case DISTMEM_TOPOLOGY_REQ_VCPU:
        t->req_vcpu = val;
        break;
    case DISTMEM_TOPOLOGY_REQ_NODE:
        t->req_node = val;
        break;
    case DISTMEM_TOPOLOGY_REQ_ADDR_LO:
        t->req_addr = deposit64(t->req_addr, 0, 32, val);
        break;
    case DISTMEM_TOPOLOGY_REQ_ADDR_HI:
        t->req_addr = deposit64(t->req_addr, 32, 32, val);
        break;
    case DISTMEM_TOPOLOGY_REQ_CMD:
        t->req_status = topology_request(t, val);
        trace_distmem_topology_request(t->req_vcpu, val, t->req_node,
                                       t->req_addr, t->req_status);
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "distmem-topology: write of "
                      "read-only or reserved register 0x%" HWADDR_PRIx "\n",
                      addr);
    }
}

static const MemoryRegionOps topology_mmio_ops = {
    .read = topology_read,
    .write = topology_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 4,
        .max_access_size = 4,
    },
};

static void topology_realize(PCIDevice *pdev, Error **errp)
{
    DistmemTopologyState *t = DISTMEM_TOPOLOGY(pdev);
    MachineState *ms = MACHINE(qdev_get_machine());

    if (!distvm_enabled()) {
        error_setg(errp, "%s needs the distvm accelerator (-accel distvm)",
                   TYPE_DISTMEM_TOPOLOGY);
        return;
    }
    if (ms->smp.max_cpus > DISTMEM_TOPOLOGY_VCPU_MAX) {
        error_setg(errp, "%s shows at most %d vCPUs, and the machine has %u",
                   TYPE_DISTMEM_TOPOLOGY, DISTMEM_TOPOLOGY_VCPU_MAX,
                   ms->smp.max_cpus);
        return;
    }
    t->nr_vcpus = ms->smp.max_cpus;
    pci_config_set_interrupt_pin(pdev->config, 1);
    if (msi_init(pdev, 0, 1, true, false, errp)) {
        return;
    }
    memory_region_init_io(&t->mmio, OBJECT(t), &topology_mmio_ops, t,
                          "distmem-topology", DISTMEM_TOPOLOGY_BAR_SIZE);
    pci_register_bar(pdev, 0, PCI_BASE_ADDRESS_SPACE_MEMORY, &t->mmio);

    /*
     * Only home's copy of the device is used, and so changes; but another
     * node may take home's place
     */
    t->placement_changed.notify = topology_placement_changed;
    distvm_placement_notifier_add(&t->placement_changed);
}

static void topology_exit(PCIDevice *pdev)
{
    DistmemTopologyState *t = DISTMEM_TOPOLOGY(pdev);

    if (t->placement_changed.notify) {
        distvm_placement_notifier_remove(&t->placement_changed);
    }
    msi_uninit(pdev);
}

/* The generation is kept: a guest that reads it after a reset sees it go on */
static void topology_reset(DeviceState *dev)
{
    DistmemTopologyState *t = DISTMEM_TOPOLOGY(dev);

    t->int_status = 0;
    t->int_mask = 0;
    t->irq_asserted = false;
    t->req_vcpu = 0;
    t->req_node = 0;
    t->req_addr = 0;
    t->req_status = DISTMEM_TOPOLOGY_ST_NONE;
    topology_find_ranges(t);
}

static int topology_post_load(void *opaque, int version_id)
{
    topology_find_ranges(opaque);
    return 0;
}

static const VMStateDescription vmstate_distmem_topology = {
    .name = TYPE_DISTMEM_TOPOLOGY,
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = topology_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, DistmemTopologyState),
        VMSTATE_UINT32(generation, DistmemTopologyState),
        VMSTATE_UINT32(int_status, DistmemTopologyState),
        VMSTATE_UINT32(int_mask, DistmemTopologyState),
        VMSTATE_BOOL(irq_asserted, DistmemTopologyState),
        VMSTATE_UINT32(req_vcpu, DistmemTopologyState),
        VMSTATE_UINT32(req_node, DistmemTopologyState),
        VMSTATE_UINT64(req_addr, DistmemTopologyState),
        VMSTATE_UINT32(req_status, DistmemTopologyState),
        VMSTATE_END_OF_LIST()
    },
};

static void topology_class_init(ObjectClass *oc, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(oc);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(oc);

    k->realize = topology_realize;
    k->exit = topology_exit;
    k->vendor_id = DISTMEM_TOPOLOGY_VENDOR_ID;
    k->device_id = DISTMEM_TOPOLOGY_DEVICE_ID;
    k->revision = 1;
    k->class_id = PCI_CLASS_OTHERS;
    dc->desc = "distvm cluster topology (where vCPUs and memory run)";
    /* Every node needs the same devices: none may appear on one alone. */
    dc->hotpluggable = false;
    dc->vmsd = &vmstate_distmem_topology;
    device_class_set_legacy_reset(dc, topology_reset);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static void topology_register_types(void)
{
    static InterfaceInfo interfaces[] = {
        { INTERFACE_CONVENTIONAL_PCI_DEVICE },
        { },
    };
    static const TypeInfo topology_info = {
        .name = TYPE_DISTMEM_TOPOLOGY,
        .parent = TYPE_PCI_DEVICE,
        .instance_size = sizeof(DistmemTopologyState),
        .class_init = topology_class_init,
        .interfaces = interfaces,
    };

    type_register_static(&topology_info);
}

type_init(topology_register_types)
