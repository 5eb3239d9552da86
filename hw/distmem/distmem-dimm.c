/*
 * distmem-dimm: a DIMM whose memory lives on a chosen node of a distvm
 * cluster
 *
 * A pc-dimm whose memory backend's pages start owned by the cluster node
 * @cluster-node, which also keeps their directory entries: a guest gets
 * memory that lives on another host, and the vCPUs of that host use it
 * without a remote fault.  With -numa, the DIMM's guest NUMA node (its
 * "node" property) must be the one whose vCPUs that cluster node runs,
 * so that the guest's SRAT and SLIT say where the memory is, or one that
 * is homed nowhere.
 *
 * Cold-plugged (-device), or hot-plugged with device_add on the home
 * node, which plugs it on every node of the cluster before the guest
 * hears of it (accel/distvm/distvm-memplug.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/module.h"
#include "hw/boards.h"
#include "hw/mem/pc-dimm.h"
#include "hw/qdev-properties.h"
#include "system/distvm.h"
#include "system/hostmem.h"
#include "system/numa.h"
#include "exec/cpu-common.h"
#include "trace.h"

#define TYPE_DISTMEM_DIMM "distmem-dimm"
OBJECT_DECLARE_SIMPLE_TYPE(DistmemDimm, DISTMEM_DIMM)

#define NO_CLUSTER_NODE UINT32_MAX

struct DistmemDimm {
    PCDIMMDevice parent_obj;

    uint32_t cluster_node;
};

static void distmem_dimm_realize(PCDIMMDevice *dimm, Error **errp)
{
    DistmemDimm *d = DISTMEM_DIMM(dimm);
    MachineState *ms = MACHINE(qdev_get_machine());
    RAMBlock *rb;
    uint32_t numa_home;

    if (!distvm_enabled()) {
        error_setg(errp, "%s needs the distvm accelerator (-accel distvm)",
                   TYPE_DISTMEM_DIMM);
        return;
    }
    if (d->cluster_node == NO_CLUSTER_NODE) {
        error_setg(errp, "%s needs cluster-node=N, the node of the cluster "
                   "whose memory it is", TYPE_DISTMEM_DIMM);
        return;
    }
    if (d->cluster_node >= distvm_cluster_nodes()) {
        error_setg(errp, "%s: there is no node %" PRIu32 " (the cluster has "
                   "nodes 0 to %" PRIu32 ")", TYPE_DISTMEM_DIMM,
                   d->cluster_node, distvm_cluster_nodes() - 1);
        return;
    }
    /*
     * A guest NUMA node homed on another node would tell the guest the
     * DIMM is there.  One homed nowhere (its vCPUs on several nodes, as
     * the single NUMA node that memory hot-plug slots create) says
     * nothing of where memory is.
     */
    if (ms->numa_state && ms->numa_state->num_nodes) {
        numa_home = distvm_numa_node_home(dimm->node);
        if (numa_home != d->cluster_node && numa_home != UINT32_MAX) {
            error_setg(errp, "%s: guest NUMA node %" PRIu32 " is homed on "
                       "node %" PRIu32 ", not on node %" PRIu32 "; give "
                       "node= the NUMA node whose vCPUs (and memory "
                       "backend) node %" PRIu32 " has", TYPE_DISTMEM_DIMM,
                       dimm->node, numa_home, d->cluster_node,
                       d->cluster_node);
            return;
        }
    }
    rb = host_memory_backend_get_memory(dimm->hostmem)->ram_block;
    if (!distvm_ram_set_home(rb, d->cluster_node, errp)) {
        return;
    }
    trace_distmem_dimm_home(qemu_ram_get_idstr(rb), d->cluster_node);
}

static const Property distmem_dimm_properties[] = {
    DEFINE_PROP_UINT32("cluster-node", DistmemDimm, cluster_node,
                       NO_CLUSTER_NODE),
};

static void distmem_dimm_class_init(ObjectClass *oc, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(oc);
    PCDIMMDeviceClass *ddc = PC_DIMM_CLASS(oc);

    ddc->realize = distmem_dimm_realize;
    device_class_set_props(dc, distmem_dimm_properties);
    dc->desc = "DIMM whose memory lives on a node of a distvm cluster";
}

static const TypeInfo distmem_dimm_info = {
    .name = TYPE_DISTMEM_DIMM,
    .parent = TYPE_PC_DIMM,
    .instance_size = sizeof(DistmemDimm),
    .class_init = distmem_dimm_class_init,
};

static void distmem_dimm_register_types(void)
{
    type_register_static(&distmem_dimm_info);
}

type_init(distmem_dimm_register_types)
