/*
 * distvm: memory plugged into the running guest, on every node at once
 *
 * The guest learns of a new DIMM from home's ACPI, and may touch it from
 * every node right after.  So home, asked to plug a DIMM (device_add),
 * first has each other node plug the same one: a MEM_PLUG gives the
 * backend's type, id and size and the device's properties, with the
 * address and slot home chose and the index of the RAMBlock table its
 * RAMBlock takes.  Each node creates the backend and the device as if
 * cold-plugged (its own ACPI device, which the guest never reads, is not
 * told), shares the RAMBlock and answers MEM_PLUG_ACK.  Only once every
 * node said yes does home realize the device and signal the guest.  If a
 * node cannot plug it, did not answer within peer-timeout, or has been
 * silent before, home refuses the device_add and has the nodes that
 * plugged it unplug it again: nothing stays half-plugged.
 *
 * When the guest ejects a DIMM, home unplugs it and sends MEM_UNPLUG:
 * each other node unplugs its copy and deletes the backend it created.
 *
 * Home asks and waits as distvm-plug.c does.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qom/object_interfaces.h"
#include "hw/boards.h"
#include "hw/hotplug.h"
#include "hw/mem/memory-device.h"
#include "hw/mem/nvdimm.h"
#include "hw/mem/pc-dimm.h"
#include "hw/qdev-core.h"
#include "monitor/qdev.h"
#include "system/hostmem.h"
#include "exec/ramblock.h"
#include "distvm-internal.h"
#include "trace.h"

struct DistvmMemPlug {
    /* The BQL: the device between its pre-plug and its plug */
    MemoryDeviceState *plugging;
    RAMBlock *plugging_block;
    uint32_t plugging_index;
    /* The other nodes: plugging the device home asked for, at this index */
    bool mirroring;
    uint32_t mirror_index;
    /* The other nodes: the backends they created, by RAMBlock index */
    GHashTable *backends;
};

static void memplug_abort(DistvmState *s, uint32_t index)
{
    g_autoptr(GByteArray) m = g_byte_array_new();

    distvm_wire_mem_unplug(m, s->node_id, index);
    distvm_plug_send_all(s, m);
}

/* The device's properties, for the other nodes to create it: JSON */
static GString *memplug_device_json(PCDIMMDevice *dimm, const char *memdev)
{
    Object *obj = OBJECT(dimm);
    g_autoptr(QDict) props = qdict_new();

    qdict_put_str(props, "driver", object_get_typename(obj));
    if (DEVICE(dimm)->id) {
        qdict_put_str(props, "id", DEVICE(dimm)->id);
    }
    qdict_put_str(props, "memdev", memdev);
    qdict_put_int(props, PC_DIMM_NODE_PROP, dimm->node);
    qdict_put_int(props, PC_DIMM_SLOT_PROP, dimm->slot);
    qdict_put_int(props, PC_DIMM_ADDR_PROP, dimm->addr);
    /* hw/distmem's DIMM: the node whose memory it is */
    if (object_property_find(obj, "cluster-node")) {
        qdict_put_int(props, "cluster-node",
                      object_property_get_uint(obj, "cluster-node",
                                               &error_abort));
    }
    return qobject_to_json(QOBJECT(props));
}

/* Home: can every other node plug @dimm?  Checked before anything is sent */
static bool memplug_can_mirror(DistvmState *s, PCDIMMDevice *dimm,
                               Error **errp)
{
    Object *backend = OBJECT(dimm->hostmem);
    const char *memdev = object_get_canonical_path_component(backend);

    if (!distvm_plug_nodes_heard(s, "memory", errp)) {
        return false;
    }
    if (!memdev || object_resolve_path_component(object_get_objects_root(),
                                                 memdev) != backend) {
        error_setg(errp, "distvm: the memory backend of a DIMM plugged into "
                   "a cluster must be an object of /objects (object-add)");
        return false;
    }
    return true;
}

/*
 * Home: the MEM_PLUG of @dimm, as RAMBlock @index, a new plug whose number
 * is put in @seq
 */
static GByteArray *memplug_message(DistvmState *s, PCDIMMDevice *dimm,
                                   MemoryRegion *mr, uint32_t index,
                                   uint64_t *seq)
{
    Object *backend = OBJECT(dimm->hostmem);
    const char *memdev = object_get_canonical_path_component(backend);
    g_autoptr(GString) device = memplug_device_json(dimm, memdev);
    GByteArray *m = g_byte_array_new();

    *seq = distvm_plug_ask(s, DISTVM_MSG_MEM_PLUG_ACK);
    distvm_wire_mem_plug(m, s->node_id, *seq, &(DistvmMsgMemPlug) {
        .slot = index,
        .size = memory_region_size(mr),
        .backend_type = (char *)object_get_typename(backend),
        .backend_id = (char *)memdev,
        .device = device->str,
    });
    trace_distvm_memplug_send(index, memdev, device->str);
    return m;
}

/*
 * Home: have every other node plug @dimm, as RAMBlock @index, and wait
 * until all did.
 */
static bool memplug_mirror(DistvmState *s, PCDIMMDevice *dimm,
                           MemoryRegion *mr, uint32_t index, Error **errp)
{
    uint64_t seq;
    g_autoptr(GByteArray) m = memplug_message(s, dimm, mr, index, &seq);
    bool ok;

    ok = distvm_plug_send_wait(s, m, seq, "the memory", errp);
    if (!ok) {
        memplug_abort(s, index);
    }
    trace_distvm_memplug_answered(index, ok);
    return ok;
}

/* Home: the device failed to realize after the others plugged it. */
static void memplug_check_plugged(void *opaque)
{
    DistvmState *s = opaque;
    DistvmMemPlug *mp = s->memplug;

    if (mp->plugging) {
        mp->plugging = NULL;
        distvm_ram_plug_abandon(s, mp->plugging_index, mp->plugging_block);
        distvm_ram_clear_home(s, mp->plugging_block);
        memplug_abort(s, mp->plugging_index);
    }
}

static bool memplug_pre_plug(MemoryDeviceState *md, MemoryRegion *mr,
                             Error **errp)
{
    DistvmState *s = distvm_state();
    DistvmMemPlug *mp = s->memplug;
    uint32_t index;

    if (!phase_check(PHASE_MACHINE_READY)) {
        return true;            /* on the command line: shared at start */
    }
    if (!object_dynamic_cast(OBJECT(md), TYPE_PC_DIMM) ||
        object_dynamic_cast(OBJECT(md), TYPE_NVDIMM)) {
        error_setg(errp, "distvm: a %s cannot be plugged into a cluster of "
                   "%" PRIu32 " nodes; DIMMs (pc-dimm, distmem-dimm) can",
                   object_get_typename(OBJECT(md)), s->nodes);
        return false;
    }
    if (mp->mirroring) {
        index = mp->mirror_index;
    } else if (distvm_is_home(s)) {
        memplug_check_plugged(s);       /* if it has not run yet */
        if (!memplug_can_mirror(s, PC_DIMM(md), errp)) {
            return false;
        }
        index = distvm_ram_next_block(s);
    } else {
        error_setg(errp, "distvm: memory is plugged on the home node (node "
                   "%u), which plugs it on every node", distvm_home(s));
        return false;
    }
    if (!distvm_ram_plug_prepare(s, mr->ram_block, index, errp)) {
        return false;
    }
    if (!mp->mirroring &&
        !memplug_mirror(s, PC_DIMM(md), mr, index, errp)) {
        /* Some nodes may have plugged it meanwhile: the index is spent */
        distvm_ram_plug_abandon(s, index, mr->ram_block);
        return false;
    }
    mp->plugging = md;
    mp->plugging_block = mr->ram_block;
    mp->plugging_index = index;
    if (!mp->mirroring) {
        aio_bh_schedule_oneshot(qemu_get_aio_context(),
                                memplug_check_plugged, s);
    }
    return true;
}

static void memplug_plug(MemoryDeviceState *md, MemoryRegion *mr)
{
    DistvmState *s = distvm_state();
    DistvmMemPlug *mp = s->memplug;

    if (mp->plugging == md) {
        mp->plugging = NULL;
        distvm_ram_plug(s, mr->ram_block, mp->plugging_index);
        if (distvm_is_home(s)) {
            distvm_placement_notify(s, DISTVM_PLACEMENT_RAM);
        }
    }
}

static void memplug_unplug(MemoryDeviceState *md, MemoryRegion *mr)
{
    DistvmState *s = distvm_state();
    int index = distvm_ram_unplug(s, mr->ram_block);

    distvm_ram_clear_home(s, mr->ram_block);
    if (index >= 0 && distvm_is_home(s)) {
        memplug_abort(s, index);
        distvm_placement_notify(s, DISTVM_PLACEMENT_RAM);
    }
}

static const MemoryDeviceHooks memplug_hooks = {
    .pre_plug = memplug_pre_plug,
    .plug = memplug_plug,
    .unplug = memplug_unplug,
};

/* ---- the other nodes ---- */

static Object *memplug_new_backend(const DistvmMsgMemPlug *m, Error **errp)
{
    ObjectClass *oc = object_class_by_name(m->backend_type);
    g_autofree char *size = g_strdup_printf("%" PRIu64, m->size);

    if (!oc || object_class_is_abstract(oc) ||
        !object_class_dynamic_cast(oc, TYPE_MEMORY_BACKEND)) {
        error_setg(errp, "'%s' is not a memory backend type",
                   m->backend_type);
        return NULL;
    }
    if (object_resolve_path_component(object_get_objects_root(),
                                      m->backend_id)) {
        error_setg(errp, "an object '%s' exists here already",
                   m->backend_id);
        return NULL;
    }
    return object_new_with_props(m->backend_type, object_get_objects_root(),
                                 m->backend_id, errp, "size", size, NULL);
}

static DeviceState *memplug_new_dimm(DistvmState *s,
                                     const DistvmMsgMemPlug *m, Error **errp)
{
    DistvmMemPlug *mp = s->memplug;
    DeviceState *dev = distvm_plug_new_device(m->device, TYPE_PC_DIMM,
                                              "a DIMM", errp);
    bool ok;

    if (!dev) {
        return NULL;
    }
    mp->mirroring = true;
    mp->mirror_index = m->slot;
    ok = distvm_plug_realize(dev, errp);
    mp->mirroring = false;
    if (mp->plugging) {
        /* prepared, then realize failed */
        distvm_ram_plug_abandon(s, m->slot, mp->plugging_block);
        distvm_ram_clear_home(s, mp->plugging_block);
        mp->plugging = NULL;
    }
    return ok ? dev : NULL;
}

/* MEM_PLUG, in the main loop */
static void memplug_replay(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgMemPlug *m = &msg->u.mem;
    Error *err = NULL;
    Object *backend = memplug_new_backend(m, &err);

    if (backend && !memplug_new_dimm(s, m, &err)) {
        object_unparent(backend);
        backend = NULL;
    }
    if (backend) {
        g_hash_table_insert(s->memplug->backends, GUINT_TO_POINTER(m->slot),
                            backend);
    }
    trace_distvm_memplug_replay(m->slot, m->backend_id, !err);
    distvm_plug_reply(s, msg, m->slot, "memory", err);
}

typedef struct DimmOfBlock {
    RAMBlock *rb;
    DeviceState *dev;
} DimmOfBlock;

static int memplug_find_dimm(Object *obj, void *opaque)
{
    DimmOfBlock *find = opaque;
    PCDIMMDevice *dimm = (PCDIMMDevice *)object_dynamic_cast(obj,
                                                              TYPE_PC_DIMM);

    if (dimm && DEVICE(dimm)->realized && dimm->hostmem &&
        host_memory_backend_get_memory(dimm->hostmem)->ram_block ==
        find->rb) {
        find->dev = DEVICE(dimm);
        return 1;
    }
    return 0;
}

/*
 * The DIMMs plugged into the running guest are the hot-plugged ones
 * (those of the command line are the joining node's too), in the order
 * of their RAMBlocks, which the node's table must take as home's did.
 */
bool distvm_memplug_send_state(DistvmState *s, uint32_t node, Error **errp)
{
    for (uint32_t index = 0; index < distvm_ram_next_block(s); index++) {
        DimmOfBlock find = { .rb = distvm_ram_block(s, index) };
        PCDIMMDevice *dimm;
        g_autoptr(GByteArray) m = NULL;
        uint64_t seq;

        if (!find.rb) {
            continue;           /* unplugged, or never plugged */
        }
        object_child_foreach_recursive(qdev_get_machine(), memplug_find_dimm,
                                       &find);
        if (!find.dev || !find.dev->hotplugged) {
            continue;
        }
        dimm = PC_DIMM(find.dev);
        m = memplug_message(s, dimm,
                            host_memory_backend_get_memory(dimm->hostmem),
                            index, &seq);
        if (!distvm_plug_send_wait_node(s, m, seq, node, "the memory",
                                        errp)) {
            return false;
        }
    }
    return true;
}

/* MEM_UNPLUG, in the main loop: home unplugged it, or gave up plugging */
static void memplug_unplug_replay(DistvmState *s, const DistvmMsg *msg)
{
    uint32_t index = msg->u.mem.slot;
    DimmOfBlock find = { .rb = distvm_ram_block(s, index) };
    Object *backend = g_hash_table_lookup(s->memplug->backends,
                                          GUINT_TO_POINTER(index));
    DeviceState *dev;

    trace_distvm_memplug_unplug(index,
                                find.rb ? qemu_ram_get_idstr(find.rb) : "");
    if (find.rb) {
        object_child_foreach_recursive(qdev_get_machine(), memplug_find_dimm,
                                       &find);
    }
    dev = find.dev;
    if (dev) {
        Error *err = NULL;

        hotplug_handler_unplug(qdev_get_hotplug_handler(dev), dev, &err);
        if (err) {
            error_prepend(&err, "distvm: home unplugged RAMBlock %" PRIu32
                          ", which this node could not: ", index);
            error_report_err(err);
            return;
        }
        object_unparent(OBJECT(dev));
    } else {
        distvm_ram_plug_abandon(s, index, NULL);
    }
    if (backend) {
        g_hash_table_remove(s->memplug->backends, GUINT_TO_POINTER(index));
        object_unparent(backend);
    }
}

/* MEM_PLUG_ACK, in the receive thread */
static bool memplug_answered(DistvmState *s, const DistvmMsg *msg)
{
    distvm_plug_answered(s, msg, msg->u.mem.error);
    return true;
}

static const DistvmMsgHandler memplug_handlers[] = {
    { DISTVM_MSG_MEM_PLUG, .main_loop = memplug_replay },
    { DISTVM_MSG_MEM_PLUG_ACK, .receive = memplug_answered },
    { DISTVM_MSG_MEM_UNPLUG, .main_loop = memplug_unplug_replay },
};

void distvm_memplug_init(DistvmState *s)
{
    DistvmMemPlug *mp = g_new0(DistvmMemPlug, 1);

    mp->backends = g_hash_table_new(NULL, NULL);
    s->memplug = mp;
    distvm_msg_handlers_register(s, memplug_handlers,
                                 ARRAY_SIZE(memplug_handlers));
    memory_device_hooks = &memplug_hooks;
}
