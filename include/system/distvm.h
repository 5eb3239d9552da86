/*
 * distvm: one guest spread over several QEMU processes
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef SYSTEM_DISTVM_H
#define SYSTEM_DISTVM_H

#include "qemu/accel.h"
#include "qemu/notify.h"

#define TYPE_DISTVM_ACCEL ACCEL_CLASS_NAME("distvm")

/* Nodes a cluster may have; node ids are 0 .. DISTVM_MAX_NODES - 1. */
#define DISTVM_MAX_NODES 16

/*
 * The node that is home at power-on: it runs the devices and coordinates
 * the cluster, until a standby takes its place (distvm_home()).
 */
#define DISTVM_HOME_NODE 0

extern bool distvm_allowed;

static inline bool distvm_enabled(void)
{
    return distvm_allowed;
}

/*
 * For device models that show the guest where the cluster runs it
 * (hw/distmem).  Valid only while distvm is the accelerator; called under
 * the BQL.
 */

/* The nodes of the cluster; one when distvm runs alone. */
uint32_t distvm_cluster_nodes(void);

/* Whether this node runs the guest's device models (it is home). */
bool distvm_runs_devices(void);

/* The node that runs vCPU @cpu_index. */
uint32_t distvm_vcpu_placement(unsigned cpu_index);

/*
 * The node whose pages of @rb start owned there, and whether that is
 * because the block is homed there (a guest NUMA node's memory, see
 * docs/system/distvm.rst) rather than by default on home.
 */
uint32_t distvm_ram_home(RAMBlock *rb, bool *homed);

/*
 * The cluster node that homes guest NUMA node @numa_node, or UINT32_MAX
 * if none does (not every vCPU of it is placed on one node, it has none,
 * or no memory backend of its own).
 */
uint32_t distvm_numa_node_home(uint32_t numa_node);

/*
 * Make the pages of @rb start owned by @node, which also keeps their
 * directory entries: before the cluster shares @rb (a device given on
 * the command line, or being plugged).
 */
bool distvm_ram_set_home(RAMBlock *rb, uint32_t node, Error **errp);

/* What changed, for the placement notifiers */
typedef enum DistvmPlacementChange {
    DISTVM_PLACEMENT_VCPU,      /* a vCPU moved */
    DISTVM_PLACEMENT_RAM,       /* memory was plugged or unplugged */
} DistvmPlacementChange;

/*
 * @n is called, with the BQL, after every change of placement, with a
 * DistvmPlacementChange * as its data.
 */
void distvm_placement_notifier_add(Notifier *n);
void distvm_placement_notifier_remove(Notifier *n);

/*
 * Move vCPU @cpu_index to @node because the guest asked for it, as
 * distvm-move-vcpu does.  False, with @errp set, if that cannot start.
 */
bool distvm_guest_move_vcpu(unsigned cpu_index, uint32_t node, Error **errp);

#endif /* SYSTEM_DISTVM_H */
