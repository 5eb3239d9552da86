/*
 * distvm: the cluster as the device models that show it to the guest
 * see it (hw/distmem): where each vCPU runs, where RAM starts, and a
 * notice after every move and every memory plug
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/main-loop.h"
#include "distvm-internal.h"

uint32_t distvm_cluster_nodes(void)
{
    DistvmState *s = distvm_state();

    return s ? s->nodes : 1;
}

bool distvm_runs_devices(void)
{
    DistvmState *s = distvm_state();

    return !s || distvm_is_home(s);
}

uint32_t distvm_vcpu_placement(unsigned cpu_index)
{
    DistvmState *s = distvm_state();

    return s ? distvm_vcpu_node(s, cpu_index) : DISTVM_HOME_NODE;
}

uint32_t distvm_ram_home(RAMBlock *rb, bool *homed)
{
    DistvmState *s = distvm_state();

    if (!s) {
        *homed = false;
        return DISTVM_HOME_NODE;
    }
    return distvm_numa_block_home(s, rb, homed);
}

void distvm_placement_notifier_add(Notifier *n)
{
    DistvmState *s = distvm_state();

    assert(bql_locked());
    if (s) {
        notifier_list_add(&s->placement_notifiers, n);
    }
}

void distvm_placement_notify(DistvmState *s, DistvmPlacementChange what)
{
    assert(bql_locked());
    notifier_list_notify(&s->placement_notifiers, &what);
}

void distvm_placement_notifier_remove(Notifier *n)
{
    assert(bql_locked());
    if (distvm_state()) {
        notifier_remove(n);
    }
}
