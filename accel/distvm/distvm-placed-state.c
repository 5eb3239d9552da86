/*
 * distvm: the state of the devices placed away from home, in checkpoint
 * epochs
 *
 * With replicas=1 (distvm-epoch.c), each node other than home saves, in
 * each epoch, the VMState of the devices that device-nodes places on it,
 * as home saves the machine's: the device's own and that of each device
 * on its buses (a virtio card's is its virtio device's, which holds the
 * PCI function's).  A rollback brings every such device to home
 * (distvm_devices_go_home()), which loads it here as its node saved it at
 * the epoch the guest goes back to, over the copy of home's own state:
 * a node lost takes no device with it.  At the end of the rollback, each
 * device whose node is still part of the cluster goes back there, with
 * the state home saves of it then (DEVICE_AWAY; a card whose node's
 * path is down waits until it is up again, distvm-devpath.c).
 *
 * A device whose writes would reach the world without waiting for their
 * epoch's commit cannot run away from home with replicas=1: a disk
 * (home holds its disks' writes, distvm-output-disk.c); nor can one that
 * cannot be migrated or has no VMState.  The packets of a card wait on
 * its node as on home (distvm-output.c).  A node that joins later learns
 * from home which devices came home (DEVICE_HOME, distvm-devices.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/units.h"
#include "migration/qemu-file-types.h"
#include "migration/vmstate.h"
#include "hw/pci/pci.h"
#include "hw/pci/pci_device.h"
#include "hw/qdev-core.h"
#include "system/block-backend.h"
#include "distvm-internal.h"
#include "trace.h"

/*
 * The stream: for each device, its index in device-nodes, then for each
 * device of its tree that has a VMState, that VMState's name and the
 * VMState; then PLACED_STATE_END
 */
#define PLACED_STATE_END    UINT32_MAX

typedef struct PlacedWalk {
    QEMUFile *f;
    Error **errp;
    const char *name;           /* the placed device */
    uint32_t states;            /* devices of its tree with a VMState */
} PlacedWalk;

/* Why @dev's writes or state keep it on home with replicas=1, or NULL */
static int placed_refusal(DeviceState *dev, void *opaque)
{
    PlacedWalk *w = opaque;
    const VMStateDescription *vmsd = qdev_get_vmsd(dev);

    if (blk_by_dev(dev)) {
        error_setg(w->errp, "distvm: device-nodes: '%s' has a disk, whose "
                   "writes only home holds until their checkpoint epoch "
                   "commits (replicas=1): it must run on home", w->name);
        return -1;
    }
    if (vmsd && vmsd->unmigratable) {
        error_setg(w->errp, "distvm: device-nodes: '%s' (%s) cannot be "
                   "migrated, so no checkpoint epoch keeps its state "
                   "(replicas=1): it must run on home", w->name,
                   object_get_typename(OBJECT(dev)));
        return -1;
    }
    w->states += vmsd != NULL;
    return 0;
}

bool distvm_placed_state_check(DistvmState *s, DistvmPlacedDevice *d,
                               Error **errp)
{
    PlacedWalk w = { .errp = errp, .name = d->name };

    if (!s->replicas || d->node == distvm_home(s)) {
        return true;
    }
    if (d->queues) {
        error_setg(errp, "distvm: device-nodes: '%s', whose queue pairs "
                   "several nodes serve (queue-nodes), must run on home "
                   "with replicas=1", d->name);
        return false;
    }
    if (qdev_walk_children(DEVICE(d->dev), placed_refusal, NULL, NULL, NULL,
                           &w)) {
        return false;
    }
    if (!w.states) {
        error_setg(errp, "distvm: device-nodes: '%s' (%s) has no VMState, "
                   "so no checkpoint epoch keeps its state (replicas=1): it "
                   "must run on home", d->name,
                   object_get_typename(OBJECT(d->dev)));
        return false;
    }
    return true;
}

static int save_one(DeviceState *dev, void *opaque)
{
    PlacedWalk *w = opaque;
    const VMStateDescription *vmsd = qdev_get_vmsd(dev);

    if (!vmsd) {
        return 0;
    }
    qemu_put_counted_string(w->f, vmsd->name);
    return vmstate_save_state(w->f, vmsd, dev, NULL);
}

static int placed_save_file(QEMUFile *f, void *opaque)
{
    DistvmState *s = opaque;
    PlacedWalk w = { .f = f };
    int ret;

    for (uint32_t i = 0; i < distvm_devices_count(s); i++) {
        DistvmPlacedDevice *d = distvm_devices_get(s, i);

        if (d->node != s->node_id || d->queues) {
            continue;
        }
        qemu_put_be32(f, i);
        ret = qdev_walk_children(DEVICE(d->dev), save_one, NULL, NULL, NULL,
                                 &w);
        if (ret) {
            return ret;
        }
    }
    qemu_put_be32(f, PLACED_STATE_END);
    return qemu_file_get_error(f);
}

bool distvm_placed_state_save(DistvmState *s, GByteArray *out, Error **errp)
{
    int ret = distvm_state_save(out, 64 * KiB, placed_save_file, s);

    if (ret) {
        error_setg(errp, "distvm: cannot save the state of the devices that "
                   "run on node %" PRIu32 " for a checkpoint: %s",
                   s->node_id, strerror(-ret));
    }
    return !ret;
}

static int load_one(DeviceState *dev, void *opaque)
{
    PlacedWalk *w = opaque;
    const VMStateDescription *vmsd = qdev_get_vmsd(dev);
    char name[256];
    int ret;

    if (!vmsd) {
        return 0;
    }
    qemu_get_counted_string(w->f, name);
    ret = qemu_file_get_error(w->f);
    if (!ret && strcmp(name, vmsd->name)) {
        error_setg(w->errp, "it has a state of '%s' where '%s' (%s) has one "
                   "of '%s'", name, w->name,
                   object_get_typename(OBJECT(dev)), vmsd->name);
        return -EINVAL;
    }
    return ret ?: vmstate_load_state(w->f, vmsd, dev, vmsd->version_id);
}

/*
 * The INTx level that @d's state says it drives, on home's bus: the
 * VMState sets the device's own, not its bus's count of it.  False if it
 * drives a pin the device does not have.
 */
static bool intx_reassert(DistvmPlacedDevice *d, Error **errp)
{
    PCIDevice *dev = d->dev;
    int pin = pci_intx(dev);
    uint8_t level = dev->irq_state;

    dev->irq_state = 0;
    if (level & ~(pin >= 0 ? BIT(pin) : 0)) {
        error_setg(errp, "it drives INTx pins 0x%x of '%s', which has %s",
                   level, d->name, pin >= 0 ? "one other" : "none");
        return false;
    }
    if (level) {
        pci_set_irq(dev, 1);
    }
    return true;
}

typedef struct PlacedLoad {
    DistvmState *s;
    uint32_t node;
    Error **errp;
} PlacedLoad;

static int placed_load_file(QEMUFile *f, void *opaque)
{
    PlacedLoad *pl = opaque;
    DistvmState *s = pl->s;
    PlacedWalk w = { .f = f, .errp = pl->errp };
    uint32_t i;
    int ret;

    while ((i = qemu_get_be32(f)) != PLACED_STATE_END) {
        DistvmPlacedDevice *d;

        if (qemu_file_get_error(f)) {
            break;
        }
        if (i >= distvm_devices_count(s)) {
            error_setg(pl->errp, "it names device %" PRIu32 " of %" PRIu32,
                       i, distvm_devices_count(s));
            return -EINVAL;
        }
        d = distvm_devices_get(s, i);
        if (d->taken_from != pl->node) {
            error_setg(pl->errp, "it has the state of '%s', which node %"
                       PRIu32 " did not run", d->name, pl->node);
            return -EINVAL;
        }
        /* The level home's copy drives now goes, as the state says */
        pci_device_deassert_intx(d->dev);
        w.name = d->name;
        ret = qdev_walk_children(DEVICE(d->dev), load_one, NULL, NULL, NULL,
                                 &w);
        if (ret && !*pl->errp) {
            error_setg(pl->errp, "the state of '%s' does not load: %s",
                       d->name, strerror(-ret));
        }
        if (ret || !intx_reassert(d, pl->errp)) {
            return ret ?: -EINVAL;
        }
        d->taken_from = UINT32_MAX;
        trace_distvm_device_state_loaded(d->name, pl->node);
    }
    return qemu_file_get_error(f);
}

bool distvm_placed_state_load(DistvmState *s, uint32_t node,
                              const GByteArray *state, Error **errp)
{
    Error *err = NULL;
    PlacedLoad pl = { .s = s, .node = node, .errp = &err };
    int ret = distvm_state_load(state->data, state->len, placed_load_file,
                                &pl);

    if (!err && ret < 0) {
        error_setg(&err, "it is cut short: %s", strerror(-ret));
    }
    for (uint32_t i = 0; !err && i < distvm_devices_count(s); i++) {
        DistvmPlacedDevice *d = distvm_devices_get(s, i);

        if (d->taken_from == node) {
            error_setg(&err, "it lacks '%s'", d->name);
        }
    }
    if (err) {
        error_propagate_prepend(errp, err, "distvm: the state of the devices "
                                "that node %" PRIu32 " ran: ", node);
        return false;
    }
    return true;
}

/* ---- a device that goes back to its node (DEVICE_AWAY) ---- */

/*
 * The stream: for each device of its tree that has a VMState, that
 * VMState's name and the VMState, then PLACED_STATE_END (a VMState's
 * load looks at the byte after it, for subsections)
 */
static int one_save_file(QEMUFile *f, void *opaque)
{
    DistvmPlacedDevice *d = opaque;
    PlacedWalk w = { .f = f, .name = d->name };
    int ret = qdev_walk_children(DEVICE(d->dev), save_one, NULL, NULL, NULL,
                                 &w);

    qemu_put_be32(f, PLACED_STATE_END);
    return ret ?: qemu_file_get_error(f);
}

bool distvm_placed_state_save_one(DistvmPlacedDevice *d, GByteArray *out,
                                  Error **errp)
{
    int ret = distvm_state_save(out, 16 * KiB, one_save_file, d);

    /* DEVICE_AWAY carries it, after the device's index and its node */
    if (!ret && out->len > DISTVM_WIRE_MAX_PAYLOAD - 8) {
        ret = -EFBIG;
    }
    if (ret) {
        error_setg(errp, "distvm: cannot save the state of '%s' to send it "
                   "back to node %" PRIu32 " (%s); it stays on home",
                   d->name, d->placed, strerror(-ret));
    }
    return !ret;
}

typedef struct OneLoad {
    DistvmPlacedDevice *d;
    Error **errp;
} OneLoad;

static int one_load_file(QEMUFile *f, void *opaque)
{
    OneLoad *ol = opaque;
    PlacedWalk w = { .f = f, .errp = ol->errp, .name = ol->d->name };
    int ret = qdev_walk_children(DEVICE(ol->d->dev), load_one, NULL, NULL,
                                 NULL, &w);

    if (!ret && qemu_get_be32(f) != PLACED_STATE_END &&
        !qemu_file_get_error(f)) {
        error_setg(ol->errp, "it has more than the state of '%s'",
                   ol->d->name);
        return -EINVAL;
    }
    return ret ?: qemu_file_get_error(f);
}

bool distvm_placed_state_load_one(DistvmPlacedDevice *d, const uint8_t *state,
                                  uint32_t len, Error **errp)
{
    Error *err = NULL;
    OneLoad ol = { .d = d, .errp = &err };
    int ret;

    /* The level its copy here drove goes, as the state says */
    pci_device_deassert_intx(d->dev);
    ret = distvm_state_load(state, len, one_load_file, &ol);
    if (!err && ret < 0) {
        error_setg(&err, "it does not load: %s", strerror(-ret));
    }
    if (!err) {
        intx_reassert(d, &err);
    }
    if (err) {
        error_propagate_prepend(errp, err, "distvm: the state of '%s' that "
                                "home sent back: ", d->name);
        return false;
    }
    trace_distvm_device_state_loaded(d->name, d->placed);
    return true;
}
