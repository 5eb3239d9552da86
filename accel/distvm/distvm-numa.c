/*
 * distvm: guest NUMA nodes homed on the cluster's nodes
 *
 * Memory has a home (DESIGN.md section 4): the node that owns its pages
 * when the guest powers on and manages their directory entries.  A guest
 * NUMA node given its own memory backend (-numa node,memdev=ID,cpus=...)
 * whose vCPUs are all placed on one cluster node is homed there; every
 * other RAMBlock is homed on node 0, the home node.  The guest is told
 * where memory is with a SLIT that follows the cluster, unless -numa dist
 * gave one: so an unmodified Linux allocates a task's memory on the
 * cluster node that runs it, and its scheduler keeps tasks near their
 * memory.
 *
 * Without any -numa option, a guest whose vCPUs are placed on several
 * cluster nodes from power-on, each socket on one of them, gets that
 * layout made for it (auto-numa, on by default): one guest NUMA node for
 * each cluster node that runs vCPUs, in the order of the cluster nodes,
 * with its vCPUs and a memory backend of its own (memory-backend-ram, id
 * distvm-numa<N>) whose size follows its share of the vCPUs.  It is what
 * the user would have written with -object and -numa, made before QEMU
 * reads the -numa options, so that the rest is the same as for a layout
 * given by hand.
 *
 * The plan is made once, when the first vCPU is realized: the NUMA
 * configuration is complete by then, and the ACPI tables not built yet.
 * It depends only on the command line and the placement, which every
 * node checks against home's when it joins (the RAMBlocks' homes are in
 * the fingerprint).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/host-utils.h"
#include "qemu/option.h"
#include "qemu/units.h"
#include "qemu/config-file.h"
#include "qom/object_interfaces.h"
#include "qapi/qapi-types-machine.h"
#include "hw/boards.h"
#include "hw/mem/memory-device.h"
#include "hw/qdev-core.h"
#include "system/hostmem.h"
#include "system/numa.h"
#include "exec/ramblock.h"
#include "distvm-internal.h"
#include "distvm-ram.h"
#include "trace.h"

/* SLIT distances: another guest NUMA node on the same cluster node, or not */
#define DISTVM_NUMA_NEAR    NUMA_DISTANCE_DEFAULT
#define DISTVM_NUMA_FAR     100

#define NO_NODE     UINT32_MAX
#define SPLIT       (UINT32_MAX - 1)

/* Guest NUMA nodes made by auto-numa: their memory's alignment */
#define DISTVM_NUMA_AUTO_ALIGN  (2 * MiB)

/*
 * Whether each socket's vCPUs all run on one node.  A guest NUMA node
 * must hold whole sockets: Linux warns (with a stack trace) of vCPUs that
 * share a last-level cache in different NUMA nodes.
 */
static bool numa_auto_sockets_whole(DistvmState *s, MachineState *ms)
{
    const CPUArchIdList *cpus =
        MACHINE_GET_CLASS(ms)->possible_cpu_arch_ids(ms);

    for (unsigned i = 0; i < cpus->len && i < s->nr_vcpus; i++) {
        for (unsigned j = 0; j < i; j++) {
            const CpuInstanceProperties *a = &cpus->cpus[i].props;
            const CpuInstanceProperties *b = &cpus->cpus[j].props;

            if (a->socket_id == b->socket_id &&
                s->vcpu_node[i] != s->vcpu_node[j]) {
                warn_report("distvm: auto-numa: vCPUs %u and %u share "
                            "socket %" PRId64 " but run on nodes %" PRIu32
                            " and %" PRIu32 ": the guest gets no NUMA nodes "
                            "and its memory stays on node 0 (with -smp "
                            "sockets=N where each node's vCPUs fill whole "
                            "sockets, it would get one per node)", j, i,
                            a->socket_id, s->vcpu_node[j], s->vcpu_node[i]);
                return false;
            }
        }
    }
    return true;
}

/* auto-numa: the memory of a node that runs @vcpus of the guest's vCPUs */
static uint64_t numa_auto_share(DistvmState *s, MachineState *ms,
                                uint32_t vcpus)
{
    return QEMU_ALIGN_DOWN(muldiv64(ms->ram_size, vcpus, s->nr_vcpus),
                           DISTVM_NUMA_AUTO_ALIGN);
}

/*
 * auto-numa: the guest NUMA layout that follows the placement, made
 * before QEMU reads the -numa options, when there are none and the
 * vCPUs run on several cluster nodes from power-on.
 */
bool distvm_numa_auto(DistvmState *s, MachineState *ms, Error **errp)
{
    ERRP_GUARD();
    MachineClass *mc = MACHINE_GET_CLASS(ms);
    g_autofree uint32_t *vcpus = g_new0(uint32_t, s->nodes);
    uint64_t rest = ms->ram_size;
    uint32_t used = 0, first = UINT32_MAX, nid = 0;

    if (!s->auto_numa || s->nodes == 1 ||
        !QTAILQ_EMPTY(&qemu_find_opts("numa")->head)) {
        return true;
    }
    for (unsigned i = 0; i < s->nr_vcpus; i++) {
        used += !vcpus[s->vcpu_node[i]]++;
        first = MIN(first, s->vcpu_node[i]);
    }
    if (used < 2) {
        return true;            /* one node runs them all: nothing to home */
    }
    if (!ms->numa_state || !mc->cpu_index_to_instance_props ||
        !mc->get_default_cpu_node_id || !mc->possible_cpu_arch_ids) {
        warn_report("distvm: machine type %s has no NUMA nodes: guest "
                    "memory stays on node 0 (auto-numa=off hides this)",
                    mc->name);
        return true;
    }
    if (!numa_auto_sockets_whole(s, ms)) {
        return true;
    }
    /* Every node but the first takes its share; the first the rest. */
    for (uint32_t n = first + 1; n < s->nodes; n++) {
        if (vcpus[n] && !numa_auto_share(s, ms, vcpus[n])) {
            error_setg(errp, "distvm: auto-numa: %" PRIu64 " bytes of RAM "
                       "are too few to give each of %u guest NUMA nodes "
                       "%" PRId64 " MiB; use -numa or auto-numa=off",
                       (uint64_t)ms->ram_size, used,
                       DISTVM_NUMA_AUTO_ALIGN / MiB);
            return false;
        }
        rest -= numa_auto_share(s, ms, vcpus[n]);
    }
    for (uint32_t n = first; n < s->nodes; n++) {
        g_autofree char *id = NULL, *size = NULL;
        uint64_t bytes = n == first ? rest : numa_auto_share(s, ms, vcpus[n]);
        NumaOptions opts = {
            .type = NUMA_OPTIONS_TYPE_NODE,
            .u.node = { .has_nodeid = true, .nodeid = nid },
        };
        uint16List **tail = &opts.u.node.cpus;

        if (!vcpus[n]) {
            continue;
        }
        id = g_strdup_printf("distvm-numa%u", nid);
        size = g_strdup_printf("%" PRIu64, bytes);
        if (!object_new_with_props(TYPE_MEMORY_BACKEND_RAM,
                                   object_get_objects_root(), id, errp,
                                   "size", size, NULL)) {
            error_prepend(errp, "distvm: auto-numa: ");
            return false;
        }
        opts.u.node.memdev = id;
        for (unsigned i = 0; i < s->nr_vcpus; i++) {
            if (s->vcpu_node[i] == n) {
                QAPI_LIST_APPEND(tail, i);
            }
        }
        set_numa_options(ms, &opts, errp);
        qapi_free_uint16List(opts.u.node.cpus);
        if (*errp) {
            error_prepend(errp, "distvm: auto-numa: ");
            return false;
        }
        trace_distvm_numa_auto(nid, n, bytes);
        nid++;
    }
    return true;
}

/* The cluster node of each guest NUMA node's vCPUs: a node, NO_NODE or SPLIT */
static void numa_vcpu_nodes(DistvmState *s, MachineState *ms, uint32_t *where)
{
    const CPUArchIdList *cpus = ms->possible_cpus;

    for (int i = 0; i < ms->numa_state->num_nodes; i++) {
        where[i] = NO_NODE;
    }
    for (unsigned i = 0; cpus && i < cpus->len && i < s->nr_vcpus; i++) {
        uint32_t nid;

        if (!cpus->cpus[i].props.has_node_id) {
            continue;
        }
        nid = cpus->cpus[i].props.node_id;
        if (where[nid] == NO_NODE) {
            where[nid] = s->vcpu_node[i];
        } else if (where[nid] != s->vcpu_node[i]) {
            where[nid] = SPLIT;
        }
    }
}

void distvm_numa_plan(DistvmState *s, MachineState *ms)
{
    NumaState *numa = ms->numa_state;
    uint32_t where[MAX_NODES];
    uint32_t home[MAX_NODES];
    int n;

    if (!s || s->nodes == 1 || s->numa_planned) {
        return;
    }
    s->numa_planned = true;
    /*
     * auto-numa had the machine list its CPU slots before -cpu was read
     * (made NUMA nodes or not), so they have no type yet: the one they
     * would have had.
     */
    for (unsigned i = 0; ms->possible_cpus && i < ms->possible_cpus->len;
         i++) {
        if (!ms->possible_cpus->cpus[i].type) {
            ms->possible_cpus->cpus[i].type = ms->cpu_type;
        }
    }
    if (!numa || !numa->num_nodes) {
        return;
    }
    n = numa->num_nodes;
    numa_vcpu_nodes(s, ms, where);
    s->numa_homes = g_new0(DistvmNumaHome, n);
    s->numa_node_home = g_new(uint32_t, n);
    s->nr_numa_nodes = n;
    s->vcpu_numa_home = g_new(uint32_t, s->nr_vcpus);
    for (int i = 0; i < n; i++) {
        HostMemoryBackend *be = numa->nodes[i].node_memdev;

        home[i] = DISTVM_HOME_NODE;
        if (where[i] == SPLIT) {
            warn_report("distvm: the vCPUs of NUMA node %d run on different "
                        "nodes of the cluster: its memory stays on node 0",
                        i);
        } else if (where[i] != NO_NODE && !be) {
            warn_report("distvm: NUMA node %d has no memdev: its memory "
                        "stays on node 0 (give it its own memory backend to "
                        "home it on node %" PRIu32 ")", i, where[i]);
        } else if (where[i] != NO_NODE) {
            home[i] = where[i];
        }
        s->numa_node_home[i] = be && where[i] < s->nodes ? home[i] : NO_NODE;
        if (be && where[i] < s->nodes) {
            s->numa_homes[s->nr_numa_homes].rb =
                host_memory_backend_get_memory(be)->ram_block;
            s->numa_homes[s->nr_numa_homes].node = home[i];
            s->nr_numa_homes++;
            trace_distvm_numa_home(i, qemu_ram_get_idstr(
                host_memory_backend_get_memory(be)->ram_block), home[i]);
        }
    }
    for (unsigned i = 0; i < s->nr_vcpus; i++) {
        const CPUArchIdList *cpus = ms->possible_cpus;
        int nid = cpus && i < cpus->len && cpus->cpus[i].props.has_node_id ?
                  cpus->cpus[i].props.node_id : -1;

        s->vcpu_numa_home[i] = nid >= 0 && numa->nodes[nid].node_memdev &&
                               where[nid] < s->nodes ? home[nid] : NO_NODE;
    }
    if (numa->have_numa_distance) {
        return;
    }
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            numa->nodes[i].distance[j] = i == j ? NUMA_DISTANCE_MIN :
                                         home[i] == home[j] ?
                                         DISTVM_NUMA_NEAR : DISTVM_NUMA_FAR;
        }
    }
    numa->have_numa_distance = true;
}

/*
 * The cluster node that homes the memory of vCPU @cpu's guest NUMA node,
 * or UINT32_MAX if that memory is not homed (no -numa, no memdev, or the
 * NUMA node's vCPUs on several cluster nodes).
 */
uint32_t distvm_numa_vcpu_home(DistvmState *s, unsigned cpu)
{
    return s->vcpu_numa_home ? s->vcpu_numa_home[cpu] : NO_NODE;
}

uint32_t distvm_numa_node_home(uint32_t numa_node)
{
    DistvmState *s = distvm_state();

    if (s && s->nodes == 1) {
        return DISTVM_HOME_NODE;
    }
    if (!s || !s->numa_node_home || numa_node >= s->nr_numa_nodes) {
        return NO_NODE;
    }
    return s->numa_node_home[numa_node];
}

/*
 * A RAMBlock a device homes (hw/distmem's DIMM), with the NUMA nodes';
 * before the cluster shares it (at start, or when it is plugged).
 */
bool distvm_ram_set_home(RAMBlock *rb, uint32_t node, Error **errp)
{
    DistvmState *s = distvm_state();
    bool homed;

    /* Or a node that left, whose pages went to one that is (block_fill) */
    if (!distvm_node_present(s, distvm_ram_mgr_now(s, node))) {
        error_setg(errp, "distvm: node %" PRIu32 " is not part of the "
                   "cluster (a node that joins later, or left, cannot be "
                   "the home of memory)", node);
        return false;
    }
    distvm_numa_block_home(s, rb, &homed);
    if (homed) {
        error_setg(errp, "distvm: RAMBlock %s is homed already (is its "
                   "memory backend a NUMA node's too?)",
                   qemu_ram_get_idstr(rb));
        return false;
    }
    s->numa_homes = g_renew(DistvmNumaHome, s->numa_homes,
                            s->nr_numa_homes + 1);
    s->numa_homes[s->nr_numa_homes].rb = rb;
    s->numa_homes[s->nr_numa_homes].node = node;
    s->nr_numa_homes++;
    trace_distvm_numa_home(-1, qemu_ram_get_idstr(rb), node);
    return true;
}

/* @rb is unplugged: a later RAMBlock at its address is not homed. */
void distvm_ram_clear_home(DistvmState *s, RAMBlock *rb)
{
    for (unsigned i = 0; i < s->nr_numa_homes; i++) {
        if (s->numa_homes[i].rb == rb) {
            s->numa_homes[i] = s->numa_homes[--s->nr_numa_homes];
            return;
        }
    }
}

uint32_t distvm_numa_block_home(DistvmState *s, RAMBlock *rb, bool *homed)
{
    for (unsigned i = 0; i < s->nr_numa_homes; i++) {
        if (s->numa_homes[i].rb == rb) {
            *homed = true;
            return s->numa_homes[i].node;
        }
    }
    *homed = false;
    return DISTVM_HOME_NODE;
}
