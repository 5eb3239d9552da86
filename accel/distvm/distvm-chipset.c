/*
 * distvm: the other nodes follow the home node's chipset memory map
 *
 * The guest programs the chipset on the home node only (its port I/O
 * goes there), but every node's vCPUs translate guest addresses through
 * their own memory map.  The home node sends each configuration write
 * to the host bridge (on the i440FX: PAM shadow RAM and SMRAM) to the
 * other nodes, which replay it on their own host bridge, so that the
 * BIOS's shadow RAM at 0xc0000-0xfffff is RAM on every node; so are the
 * writes to the configuration of the PCI devices that other nodes run
 * (distvm-devices.c).  The other nodes' own copies of home's devices
 * never run: the timers that the machine's reset
 * armed in their PIT and RTC are stopped before the guest starts.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/main-loop.h"
#include "hw/pci/pci.h"
#include "hw/pci/pci_bus.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/pci_host.h"
#include "hw/rtc/mc146818rtc.h"
#include "hw/timer/i8254.h"
#include "hw/timer/i8254_internal.h"
#include "distvm-internal.h"
#include "trace.h"

static bool is_host_bridge(PCIDevice *dev)
{
    return dev->devfn == 0 && pci_bus_is_root(pci_get_bus(dev));
}

static void distvm_pci_config_written(PCIDevice *dev, uint32_t addr,
                                      uint32_t val, uint32_t len)
{
    DistvmState *s = distvm_state();
    g_autoptr(GByteArray) m = NULL;
    g_autofree char *path = NULL;

    if (s && s->nodes > 1) {
        /* The guest may have moved its PM timer (the PM device's base). */
        distvm_clock_update(s);
        /* or a placed device's BARs */
        distvm_devices_config_written(s, dev);
    }
    if (!s || s->nodes == 1 || !distvm_is_home(s) ||
        !(is_host_bridge(dev) || distvm_devices_placed(s, dev)) ||
        qatomic_read(&s->state) != DISTVM_CLUSTER_STATE_RUNNING) {
        return;
    }
    path = object_get_canonical_path(OBJECT(dev));
    m = g_byte_array_new();
    qatomic_set(&s->config_gen, s->config_gen + 1);
    distvm_wire_pci_config(m, s->node_id, s->config_gen, path, addr, val,
                           len);
    trace_distvm_pci_config_send(path, addr, val, len);
    for (uint32_t i = 0; i < s->nodes; i++) {
        if (i != s->node_id) {
            distvm_send(s, i, m);
        }
    }
    /* Each write changes their memory map: a guest can write faster. */
    distvm_flow_sent(s, (uint32_t)~BIT(s->node_id));
}

static void send_config_reg(DistvmState *s, uint32_t node, PCIDevice *dev,
                            const char *path, uint32_t addr)
{
    g_autoptr(GByteArray) m = g_byte_array_new();

    distvm_wire_pci_config(m, s->node_id, s->config_gen, path, addr,
                           pci_get_long(dev->config + addr), 4);
    distvm_send(s, node, m);
}

static int send_config(Object *obj, void *opaque)
{
    PCIDevice *dev = (PCIDevice *)object_dynamic_cast(obj, TYPE_PCI_DEVICE);
    uint32_t node = *(uint32_t *)opaque;
    DistvmState *s = distvm_state();
    g_autofree char *path = NULL;

    if (!dev || !(is_host_bridge(dev) || distvm_devices_placed(s, dev))) {
        return 0;
    }
    path = object_get_canonical_path(obj);
    if (is_host_bridge(dev)) {
        /* The header is the chipset's own; its registers are what it maps */
        for (uint32_t addr = PCI_CONFIG_HEADER_SIZE;
             addr < PCI_CONFIG_SPACE_SIZE; addr += 4) {
            send_config_reg(s, node, dev, path, addr);
        }
        return 0;
    }
    /*
     * A placed device's copy never runs there: where its BARs are is all
     * that node needs (its accesses go to the device's node).  The BARs
     * first, then the command register that enables them, so that no
     * 64-bit BAR is mapped half written; nothing else, whose writes could
     * do something (virtio's configuration access window).
     */
    for (uint32_t addr = PCI_BASE_ADDRESS_0; addr <= PCI_BASE_ADDRESS_5;
         addr += 4) {
        send_config_reg(s, node, dev, path, addr);
    }
    send_config_reg(s, node, dev, path, PCI_ROM_ADDRESS);
    send_config_reg(s, node, dev, path, PCI_COMMAND);
    return 0;
}

/*
 * Home, with the BQL: @node joins the running guest (distvm-join.c).  Its
 * host bridge writes the registers home's has, and so maps its memory as
 * home's does (shadow RAM, SMRAM); its copies of the devices that other
 * nodes run write their BARs and command register, so that it knows
 * where their BARs are.  The numbering stays home's.
 */
void distvm_chipset_send_state(DistvmState *s, uint32_t node)
{
    object_child_foreach_recursive(object_get_root(), send_config, &node);
}

/* Changing the memory map needs the BQL: the main loop does it. */
static void pci_config_replay(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgPciConfig *w = &msg->u.pci;
    Object *obj = object_resolve_path(w->path, NULL);
    PCIDevice *dev = (PCIDevice *)object_dynamic_cast(obj, TYPE_PCI_DEVICE);

    if (dev && (is_host_bridge(dev) || distvm_devices_placed(s, dev))) {
        trace_distvm_pci_config_replay(w->path, w->addr, w->val, w->len);
        pci_host_config_write_common(dev, w->addr, pci_config_size(dev),
                                     w->val, w->len);
    } else {
        /* Refused, it changes nothing, its number included */
        distvm_msg_refused(s, msg->hdr.src, "PCI_CONFIG of %s, which is "
                           "neither a host bridge nor a placed device here",
                           w->path);
        return;
    }
    qatomic_set(&s->config_gen, msg->hdr.seq);
    distvm_devices_config_applied(s);
}

static const DistvmMsgHandler chipset_handlers[] = {
    /*
     * firmware writes to its shadow RAM right after enabling it, and
     * drivers to a placed device's BARs right after enabling them
     */
    { DISTVM_MSG_PCI_CONFIG, .main_loop = pci_config_replay,
      .before_replies = distvm_msg_always },
};

void distvm_chipset_init(DistvmState *s)
{
    distvm_msg_handlers_register(s, chipset_handlers,
                                 ARRAY_SIZE(chipset_handlers));
    pci_host_config_write_hook = distvm_pci_config_written;
}

static int reset_host_bridge(Object *obj, void *opaque)
{
    PCIDevice *dev = (PCIDevice *)object_dynamic_cast(obj, TYPE_PCI_DEVICE);

    if (dev && is_host_bridge(dev)) {
        device_cold_reset(DEVICE(dev));
    }
    return 0;
}

/*
 * A node other than home, when the machine is reset: home's host bridge
 * went back to its power-on memory map (the BIOS in ROM), so does ours.
 */
void distvm_chipset_reset(DistvmState *s)
{
    if (!distvm_is_home(s)) {
        object_child_foreach_recursive(object_get_root(), reset_host_bridge,
                                       NULL);
    }
    distvm_devices_reset(s);
}

static void timer_stop(QEMUTimer *timer)
{
    if (timer) {
        timer_del(timer);
    }
}

static int quiesce_device(Object *obj, void *opaque)
{
    PITCommonState *pit = (PITCommonState *)object_dynamic_cast(
        obj, TYPE_PIT_COMMON);
    MC146818RtcState *rtc = (MC146818RtcState *)object_dynamic_cast(
        obj, TYPE_MC146818_RTC);

    if (pit) {
        for (int i = 0; i < ARRAY_SIZE(pit->channels); i++) {
            timer_stop(pit->channels[i].irq_timer);
        }
    }
    if (rtc) {
        timer_stop(rtc->periodic_timer);
        timer_stop(rtc->update_timer);
        timer_stop(rtc->coalesced_timer);
    }
    return 0;
}

/*
 * A node other than home, before its guest first runs: its devices never
 * run (the guest's port I/O and MMIO go to home's), but the machine's
 * reset armed the PIT's periodic timer and the RTC's update timer, which
 * would fire here for ever.
 */
void distvm_chipset_quiesce(DistvmState *s)
{
    if (!distvm_is_home(s)) {
        object_child_foreach_recursive(object_get_root(), quiesce_device,
                                       NULL);
    }
}
