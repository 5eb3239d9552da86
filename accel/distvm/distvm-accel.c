/*
 * distvm accelerator: multi-threaded TCG whose guest spans several nodes
 *
 * distvm-accel is a subclass of tcg-accel.  It inherits TCG's machine
 * initialisation and properties, insists on one host thread per vCPU
 * (MTTCG) and adds the cluster properties.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <math.h>
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "qemu/error-report.h"
#include "qemu/sockets.h"
#include "qemu/cutils.h"
#include "qom/object.h"
#include "exec/cputlb.h"
#include "hw/boards.h"
#include "hw/i386/apic_internal.h"
#include "system/accel-ops.h"
#include "distvm-internal.h"
#include "trace.h"

#define DISTVM_DEFAULT_JOIN_TIMEOUT 60
#define DISTVM_DEFAULT_PEER_TIMEOUT 5
#define DISTVM_DEFAULT_PATH_UP_DELAY_MS 1000
#define DISTVM_MAX_PEER_TIMEOUT 3600
#define DISTVM_DEFAULT_PAUSE_SLEEP_US 50
#define DISTVM_MAX_PAUSE_SLEEP_US 10000
#define DISTVM_MAX_VCPUS_PER_NODE 4096
#define DISTVM_DEFAULT_CHECKPOINT_MS 100
#define DISTVM_MIN_CHECKPOINT_MS 10
#define DISTVM_MAX_CHECKPOINT_MS 3600000

bool distvm_allowed;

DistvmState *distvm_state(void)
{
    AccelState *accel = current_accel();

    if (!accel || !distvm_enabled()) {
        return NULL;
    }
    return (DistvmState *)object_dynamic_cast(OBJECT(accel),
                                              TYPE_DISTVM_ACCEL);
}

uint32_t distvm_vcpu_node(DistvmState *s, int cpu_index)
{
    if (cpu_index < 0 || cpu_index >= s->nr_vcpus) {
        return distvm_home(s);
    }
    return qatomic_read(&s->vcpu_node[cpu_index]);
}

/*
 * Parse a node address.  Only the two forms the cluster uses are
 * accepted, so that a typo cannot silently select another transport.
 */
static SocketAddress *distvm_parse_address(const char *prop, const char *str,
                                           Error **errp)
{
    SocketAddress *addr;

    if (!g_str_has_prefix(str, "tcp:") && !g_str_has_prefix(str, "unix:")) {
        error_setg(errp, "distvm: %s=%s: the address must be tcp:HOST:PORT "
                   "or unix:PATH", prop, str);
        return NULL;
    }
    addr = socket_parse(str, errp);
    if (!addr) {
        error_prepend(errp, "distvm: %s=%s: ", prop, str);
        return NULL;
    }
    if (addr->type == SOCKET_ADDRESS_TYPE_INET &&
        (!*addr->u.inet.host || !*addr->u.inet.port)) {
        error_setg(errp, "distvm: %s=%s: the address must be tcp:HOST:PORT "
                   "with both a host and a port", prop, str);
        qapi_free_SocketAddress(addr);
        return NULL;
    }
    return addr;
}

static void distvm_get_u32(Object *obj, Visitor *v, const char *name,
                           void *opaque, Error **errp)
{
    uint32_t *field = (uint32_t *)((char *)obj + (uintptr_t)opaque);

    visit_type_uint32(v, name, field, errp);
}

/* A string property at offset @opaque of DistvmState; "" unsets it. */
static void distvm_get_str(Object *obj, Visitor *v, const char *name,
                           void *opaque, Error **errp)
{
    char **field = (char **)((char *)obj + (uintptr_t)opaque);
    g_autofree char *value = g_strdup(*field ?: "");

    visit_type_str(v, name, &value, errp);
}

static void distvm_set_str(Object *obj, Visitor *v, const char *name,
                           void *opaque, Error **errp)
{
    char **field = (char **)((char *)obj + (uintptr_t)opaque);
    g_autofree char *value = NULL;

    if (!visit_type_str(v, name, &value, errp)) {
        return;
    }
    g_free(*field);
    *field = *value ? g_steal_pointer(&value) : NULL;
}

static void distvm_set_node_id(Object *obj, Visitor *v, const char *name,
                               void *opaque, Error **errp)
{
    DistvmState *s = DISTVM_ACCEL(obj);
    uint32_t value;

    if (!visit_type_uint32(v, name, &value, errp)) {
        return;
    }
    if (value >= DISTVM_MAX_NODES) {
        error_setg(errp, "distvm: node-id=%" PRIu32 " is out of range "
                   "(0 to %d)", value, DISTVM_MAX_NODES - 1);
        return;
    }
    s->node_id = value;
    s->node_id_given = true;
}

static void distvm_set_join_timeout(Object *obj, Visitor *v,
                                    const char *name, void *opaque,
                                    Error **errp)
{
    visit_type_uint32(v, name, &DISTVM_ACCEL(obj)->join_timeout, errp);
}

/* Visit a uint32 property that must lie in [@min, @max] @unit. */
static bool distvm_visit_u32_in(Visitor *v, const char *name, uint32_t min,
                                uint32_t max, const char *unit,
                                uint32_t *value, Error **errp)
{
    uint32_t val;

    if (!visit_type_uint32(v, name, &val, errp)) {
        return false;
    }
    if (val < min || val > max) {
        error_setg(errp, "distvm: %s=%" PRIu32 " is out of range (%" PRIu32
                   " to %" PRIu32 " %s)", name, val, min, max, unit);
        return false;
    }
    *value = val;
    return true;
}

static void distvm_set_peer_timeout(Object *obj, Visitor *v,
                                    const char *name, void *opaque,
                                    Error **errp)
{
    distvm_visit_u32_in(v, name, 1, DISTVM_MAX_PEER_TIMEOUT, "seconds",
                        &DISTVM_ACCEL(obj)->peer_timeout, errp);
}

static void distvm_set_path_up_delay_ms(Object *obj, Visitor *v,
                                        const char *name, void *opaque,
                                        Error **errp)
{
    distvm_visit_u32_in(v, name, 0, 3600 * 1000, "milliseconds",
                        &DISTVM_ACCEL(obj)->path_up_delay_ms, errp);
}

static bool distvm_get_auto_numa(Object *obj, Error **errp)
{
    return DISTVM_ACCEL(obj)->auto_numa;
}

static void distvm_set_auto_numa(Object *obj, bool value, Error **errp)
{
    DISTVM_ACCEL(obj)->auto_numa = value;
}

static bool distvm_get_pv_tlb_flush(Object *obj, Error **errp)
{
    return DISTVM_ACCEL(obj)->pv_tlb_flush;
}

static void distvm_set_pv_tlb_flush(Object *obj, bool value, Error **errp)
{
    DISTVM_ACCEL(obj)->pv_tlb_flush = value;
}

static bool distvm_get_warm_pages(Object *obj, Error **errp)
{
    return DISTVM_ACCEL(obj)->warm_pages;
}

static void distvm_set_warm_pages(Object *obj, bool value, Error **errp)
{
    DISTVM_ACCEL(obj)->warm_pages = value;
}

static int distvm_get_queue_follow(Object *obj, Error **errp)
{
    return DISTVM_ACCEL(obj)->queue_follow;
}

static void distvm_set_queue_follow(Object *obj, int value, Error **errp)
{
    DISTVM_ACCEL(obj)->queue_follow = value;
}

static void distvm_set_pause_sleep_us(Object *obj, Visitor *v,
                                      const char *name, void *opaque,
                                      Error **errp)
{
    distvm_visit_u32_in(v, name, 0, DISTVM_MAX_PAUSE_SLEEP_US, "microseconds",
                        &DISTVM_ACCEL(obj)->pause_sleep_us, errp);
}

static void distvm_set_replicas(Object *obj, Visitor *v, const char *name,
                                void *opaque, Error **errp)
{
    distvm_visit_u32_in(v, name, 0, 1, "copies of each node's state",
                        &DISTVM_ACCEL(obj)->replicas, errp);
}

static void distvm_set_standby(Object *obj, Visitor *v, const char *name,
                               void *opaque, Error **errp)
{
    distvm_visit_u32_in(v, name, 1, DISTVM_MAX_NODES - 1, "node ids",
                        &DISTVM_ACCEL(obj)->standby, errp);
}

static int distvm_get_redundancy(Object *obj, Error **errp)
{
    return DISTVM_ACCEL(obj)->redundancy;
}

static void distvm_set_redundancy(Object *obj, int value, Error **errp)
{
    DISTVM_ACCEL(obj)->redundancy = value;
}

static void distvm_set_checkpoint_ms(Object *obj, Visitor *v,
                                     const char *name, void *opaque,
                                     Error **errp)
{
    distvm_visit_u32_in(v, name, DISTVM_MIN_CHECKPOINT_MS,
                        DISTVM_MAX_CHECKPOINT_MS, "milliseconds",
                        &DISTVM_ACCEL(obj)->checkpoint_ms, errp);
}

static void distvm_set_capacity(Object *obj, Visitor *v, const char *name,
                                void *opaque, Error **errp)
{
    distvm_visit_u32_in(v, name, 1, DISTVM_MAX_VCPUS_PER_NODE, "vCPUs",
                        &DISTVM_ACCEL(obj)->capacity, errp);
}

static void distvm_get_speed(Object *obj, Visitor *v, const char *name,
                             void *opaque, Error **errp)
{
    double speed = (double)DISTVM_ACCEL(obj)->speed / DISTVM_WIRE_SPEED_ONE;

    visit_type_number(v, name, &speed, errp);
}

static void distvm_set_speed(Object *obj, Visitor *v, const char *name,
                             void *opaque, Error **errp)
{
    const double min = (double)DISTVM_WIRE_SPEED_MIN / DISTVM_WIRE_SPEED_ONE;
    const double max = (double)DISTVM_WIRE_SPEED_MAX / DISTVM_WIRE_SPEED_ONE;
    double speed;

    if (!visit_type_number(v, name, &speed, errp)) {
        return;
    }
    if (!(speed >= min && speed <= max)) {
        error_setg(errp, "distvm: %s=%g is out of range (%g to %g, relative "
                   "to the other nodes)", name, speed, min, max);
        return;
    }
    DISTVM_ACCEL(obj)->speed = lround(speed * DISTVM_WIRE_SPEED_ONE);
}

static int distvm_get_policy(Object *obj, Error **errp)
{
    return DISTVM_ACCEL(obj)->policy;
}

static void distvm_set_policy(Object *obj, int value, Error **errp)
{
    DISTVM_ACCEL(obj)->policy = value;
}

/* nodes and start-nodes: a count of nodes, at offset @opaque */
static void distvm_set_node_count(Object *obj, Visitor *v, const char *name,
                                  void *opaque, Error **errp)
{
    uint32_t *field = (uint32_t *)((char *)obj + (uintptr_t)opaque);
    uint32_t value;

    if (!visit_type_uint32(v, name, &value, errp)) {
        return;
    }
    if (value < 1 || value > DISTVM_MAX_NODES) {
        error_setg(errp, "distvm: %s=%" PRIu32 " is out of range (1 to %d)",
                   name, value, DISTVM_MAX_NODES);
        return;
    }
    *field = value;
}

static char *distvm_get_listen(Object *obj, Error **errp)
{
    return g_strdup(DISTVM_ACCEL(obj)->listen);
}

/* Set an address property: the string as given and its parsed form. */
static void distvm_set_address(const char *prop, const char *value,
                               char **str, SocketAddress **addr, Error **errp)
{
    SocketAddress *parsed = distvm_parse_address(prop, value, errp);

    if (!parsed) {
        return;
    }
    qapi_free_SocketAddress(*addr);
    g_free(*str);
    *addr = parsed;
    *str = g_strdup(value);
}

static void distvm_set_listen(Object *obj, const char *value, Error **errp)
{
    DistvmState *s = DISTVM_ACCEL(obj);

    distvm_set_address("listen", value, &s->listen, &s->listen_addr, errp);
}

static char *distvm_get_placement(Object *obj, Error **errp)
{
    return g_strdup(DISTVM_ACCEL(obj)->placement);
}

static void distvm_set_placement(Object *obj, const char *value, Error **errp)
{
    DistvmState *s = DISTVM_ACCEL(obj);
    g_auto(GStrv) nodes = g_strsplit(value, ":", -1);

    for (int i = 0; nodes[i]; i++) {
        uint64_t node;

        if (qemu_strtou64(nodes[i], NULL, 10, &node) ||
            node >= DISTVM_MAX_NODES) {
            error_setg(errp, "distvm: placement=%s: '%s' is not a node id "
                       "(placement lists the node of each vCPU, by cpu "
                       "index, separated by ':')", value, nodes[i]);
            return;
        }
    }
    g_free(s->placement);
    s->placement = g_strdup(value);
}

static char *distvm_get_residency(Object *obj, Error **errp)
{
    return g_strdup(DISTVM_ACCEL(obj)->residency);
}

static void distvm_set_residency(Object *obj, const char *value,
                                 Error **errp)
{
    DistvmState *s = DISTVM_ACCEL(obj);

    g_free(s->residency);
    s->residency = g_strdup(value);
}

static char *distvm_get_device_nodes(Object *obj, Error **errp)
{
    return g_strdup(DISTVM_ACCEL(obj)->device_nodes);
}

static void distvm_set_device_nodes(Object *obj, const char *value,
                                    Error **errp)
{
    DistvmState *s = DISTVM_ACCEL(obj);

    g_free(s->device_nodes);
    s->device_nodes = g_strdup(value);
}

/* Fill in vcpu_node[] from the placement property. */
static bool distvm_apply_placement(DistvmState *s, Error **errp)
{
    g_auto(GStrv) nodes = NULL;

    if (!s->placement) {
        return true;
    }
    nodes = g_strsplit(s->placement, ":", -1);
    if (g_strv_length(nodes) > s->nr_vcpus) {
        error_setg(errp, "distvm: placement=%s names %u vCPUs; the machine "
                   "has %u", s->placement, g_strv_length(nodes),
                   s->nr_vcpus);
        return false;
    }
    for (unsigned i = 0; nodes[i]; i++) {
        uint32_t node = strtoul(nodes[i], NULL, 10);

        if (node >= s->nodes) {
            error_setg(errp, "distvm: placement=%s puts vCPU %u on node %"
                       PRIu32 "; the cluster has %" PRIu32 " nodes",
                       s->placement, i, node, s->nodes);
            return false;
        }
        if (node >= s->start_nodes) {
            error_setg(errp, "distvm: placement=%s puts vCPU %u on node %"
                       PRIu32 ", which joins the running guest later "
                       "(start-nodes=%" PRIu32 "): place vCPUs on nodes 0 "
                       "to %" PRIu32 " and move them once it joined",
                       s->placement, i, node, s->start_nodes,
                       s->start_nodes - 1);
            return false;
        }
        s->vcpu_node[i] = node;
    }
    return true;
}

static char *distvm_get_home(Object *obj, Error **errp)
{
    return g_strdup(DISTVM_ACCEL(obj)->home);
}

static void distvm_set_home(Object *obj, const char *value, Error **errp)
{
    DistvmState *s = DISTVM_ACCEL(obj);

    distvm_set_address("home", value, &s->home, &s->home_addr, errp);
}

/* Check that the properties describe one consistent node. */
static bool distvm_check_options(DistvmState *s, Error **errp)
{
    if (!s->start_nodes) {
        s->start_nodes = s->nodes;
    }
    /* A node that joins the running guest may take the id home gives it */
    if (!s->node_id_given && s->home) {
        if (s->start_nodes >= s->nodes) {
            error_setg(errp, "distvm: a node without node-id= joins a "
                       "running guest, and takes the id the home node "
                       "gives it; that needs start-nodes below nodes=%"
                       PRIu32, s->nodes);
            return false;
        }
        s->node_id = s->start_nodes;    /* until home gives one */
    }
    if (s->node_id >= s->nodes) {
        error_setg(errp, "distvm: node-id=%" PRIu32 " is not below "
                   "nodes=%" PRIu32, s->node_id, s->nodes);
        return false;
    }
    if (s->start_nodes > s->nodes) {
        error_setg(errp, "distvm: start-nodes=%" PRIu32 " is above nodes=%"
                   PRIu32, s->start_nodes, s->nodes);
        return false;
    }
    s->present = MAKE_64BIT_MASK(0, s->start_nodes);
    s->joining = UINT32_MAX;
    s->draining = UINT32_MAX;
    if (s->node_id == DISTVM_HOME_NODE && s->home) {
        error_setg(errp, "distvm: home= is for the other nodes; node 0 is "
                   "the home node itself");
        return false;
    }
    if (s->nodes > 1 && !s->listen) {
        error_setg(errp, "distvm: a cluster of %" PRIu32 " nodes needs "
                   "listen=tcp:HOST:PORT or listen=unix:PATH on every node",
                   s->nodes);
        return false;
    }
    if (s->node_id != DISTVM_HOME_NODE && !s->home) {
        error_setg(errp, "distvm: node %" PRIu32 " needs home=ADDRESS, the "
                   "listen address of node 0", s->node_id);
        return false;
    }
    if (s->join_timeout == 0) {
        error_setg(errp, "distvm: join-timeout must be at least 1 second");
        return false;
    }
    if (s->queue_follow == ON_OFF_AUTO_ON &&
        (!s->queue_nodes || !*s->queue_nodes)) {
        error_setg(errp, "distvm: queue-follow=on needs queue-nodes: pairs "
                   "follow their vCPUs between the nodes that queue-nodes "
                   "names");
        return false;
    }
    if (!s->replicas && s->redundancy != DISTVM_REDUNDANCY_REPLICA) {
        error_setg(errp, "distvm: redundancy=%s needs replicas=1: without "
                   "checkpoint epochs, the nodes keep nothing of each other",
                   DistvmRedundancy_str(s->redundancy));
        return false;
    }
    if (s->standby && (!s->replicas || s->standby >= s->start_nodes)) {
        error_setg(errp, "distvm: standby=%" PRIu32 " needs replicas=1 and "
                   "a node that starts the cluster (below start-nodes=%"
                   PRIu32 ")", s->standby, s->start_nodes);
        return false;
    }
    if (s->replicas && s->nodes < 2) {
        error_setg(errp, "distvm: replicas=%" PRIu32 " keeps each node's "
                   "state on another node, and needs nodes=2 or more",
                   s->replicas);
        return false;
    }
    return true;
}

static int distvm_init_machine(MachineState *ms)
{
    DistvmState *s = DISTVM_ACCEL(ms->accelerator);
    DistvmAccelClass *dc = DISTVM_ACCEL_GET_CLASS(s);
    Error *err = NULL;
    int ret;

    if (!distvm_check_options(s, &err)) {
        error_report_err(err);
        return -EINVAL;
    }
    /*
     * Each vCPU must have its own host thread: a vCPU of another node is
     * parked in its thread, and a page fault stalls only the vCPU that
     * took it.
     */
    if (!s->parent_obj.mttcg_enabled) {
        error_report("distvm: needs multi-threaded TCG (thread=multi); "
                     "thread=single, -icount and record/replay are not "
                     "supported");
        return -EINVAL;
    }

    ret = dc->parent_init_machine(ms);
    if (ret < 0) {
        return ret;
    }

    s->nr_vcpus = ms->smp.max_cpus;
    s->vcpu_node = g_new0(uint32_t, s->nr_vcpus);
    if (!distvm_apply_placement(s, &err) ||
        !distvm_numa_auto(s, ms, &err) ||
        !distvm_residency_init(s, &err) ||
        !distvm_devices_init(s, &err)) {
        error_report_err(err);
        return -EINVAL;
    }
    trace_distvm_init_machine(s->node_id, s->nodes, s->nr_vcpus);
    distvm_vcpu_init(s);

    /*
     * A single node shares nothing: it runs exactly as TCG does.  The
     * transport starts first; no message reaches a handler before the
     * machine exists (distvm_machine_ready()), by when the subsystems
     * below registered theirs.
     */
    if (s->nodes > 1 && !distvm_net_init(s, &err)) {
        error_report_err(err);
        return -EINVAL;
    }
    if (s->nodes > 1) {
#ifdef __x86_64__
        /*
         * TCG does an unaligned atomic in an exclusive section, which
         * stops this node's vCPUs only: the other nodes' could write the
         * memory between its load and its store.  x86 hosts do unaligned
         * atomics themselves.  One that crosses a page is still done in an
         * exclusive section, and is not atomic across nodes.
         */
        tcg_unaligned_host_atomics = true;
#endif
        /*
         * The vAPIC option ROM (kvmvapic, hw/i386/vapic.c) patches the
         * TPR accesses of 32-bit Windows while every vCPU of the process
         * is stopped, enables TPR reporting on every vCPU with
         * run_on_cpu() and maps its ROM writable in home's memory map:
         * on a cluster, the vCPUs of the other nodes would run on through
         * the patching and never report.  It is an optimization; without
         * it the guest's TPR accesses are plain LAPIC accesses.  A user's
         * -global apic-common.vapic=on still wins.
         */
        object_register_sugar_prop(TYPE_APIC_COMMON, "vapic", "off", false);
        distvm_plug_init(s);
        distvm_memplug_init(s);
        distvm_cpuplug_init(s);
        distvm_affinity_init(s);
        distvm_flow_init(s);
        distvm_chipset_init(s);
        distvm_clock_init(s);
        distvm_io_init(s);
        distvm_paravirt_init(s);
        distvm_join_init(s);
        distvm_drain_init(s);
        distvm_epoch_init(s);
        distvm_recovery_init(s);
        distvm_handoff_init(s);
        distvm_leave_init(s);
        distvm_pic_init(s);
        distvm_pause_init(s);
        distvm_runstate_init(s);
    }
    distvm_vcpu_start(s);
    return 0;
}

/* The host CPUs this process may run on: a node's default capacity */
static uint32_t distvm_host_cpus(void)
{
    cpu_set_t set;

    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set)) {
        return CPU_COUNT(&set);
    }
    return MAX(sysconf(_SC_NPROCESSORS_ONLN), 1);
}

static void distvm_accel_instance_init(Object *obj)
{
    DistvmState *s = DISTVM_ACCEL(obj);

    s->node_id = DISTVM_HOME_NODE;
    s->home_node = DISTVM_HOME_NODE;
    s->nodes = 1;
    s->join_timeout = DISTVM_DEFAULT_JOIN_TIMEOUT;
    s->peer_timeout = DISTVM_DEFAULT_PEER_TIMEOUT;
    s->path_up_delay_ms = DISTVM_DEFAULT_PATH_UP_DELAY_MS;
    s->pause_sleep_us = DISTVM_DEFAULT_PAUSE_SLEEP_US;
    s->checkpoint_ms = DISTVM_DEFAULT_CHECKPOINT_MS;
    s->policy = DISTVM_POLICY_MANUAL;
    s->capacity = distvm_host_cpus();
    s->speed = DISTVM_WIRE_SPEED_ONE;
    s->warm_pages = true;
    s->auto_numa = true;
    s->pv_tlb_flush = true;
    s->queue_follow = ON_OFF_AUTO_AUTO;
    s->state = DISTVM_CLUSTER_STATE_RUNNING;
}

static void distvm_accel_instance_finalize(Object *obj)
{
    DistvmState *s = DISTVM_ACCEL(obj);

    g_free(s->listen);
    g_free(s->home);
    g_free(s->placement);
    g_free(s->residency);
    g_free(s->device_nodes);
    g_free(s->queue_nodes);
    g_free(s->tls_creds);
    g_free(s->tls_authz);
    g_free(s->tls_hostname);
    if (s->tls_server) {
        object_unref(OBJECT(s->tls_server));
    }
    if (s->tls_client) {
        object_unref(OBJECT(s->tls_client));
    }
    qapi_free_SocketAddress(s->listen_addr);
    qapi_free_SocketAddress(s->home_addr);
    g_free(s->vcpu_node);
}

static void distvm_accel_class_init(ObjectClass *oc, void *data)
{
    AccelClass *ac = ACCEL_CLASS(oc);
    DistvmAccelClass *dc = DISTVM_ACCEL_CLASS(oc);

    ac->name = "distvm";
    dc->parent_init_machine = ac->init_machine;
    ac->init_machine = distvm_init_machine;
    ac->allowed = &distvm_allowed;

    object_class_property_add(oc, "node-id", "uint32", distvm_get_u32,
                              distvm_set_node_id, NULL,
                              (void *)offsetof(DistvmState, node_id));
    object_class_property_set_description(oc, "node-id",
        "This node's id in the cluster, 0 to nodes-1 (0 is the home node, "
        "which runs the devices; default 0, or, with home=, the id the "
        "home node gives a node that joins the running guest)");

    object_class_property_add(oc, "nodes", "uint32", distvm_get_u32,
                              distvm_set_node_count, NULL,
                              (void *)offsetof(DistvmState, nodes));
    object_class_property_set_description(oc, "nodes",
        "How many nodes the cluster has, at most (default 1)");

    object_class_property_add(oc, "start-nodes", "uint32", distvm_get_u32,
                              distvm_set_node_count, NULL,
                              (void *)offsetof(DistvmState, start_nodes));
    object_class_property_set_description(oc, "start-nodes",
        "How many nodes (ids 0 to start-nodes-1) form the cluster and "
        "start the guest; the others may join it while it runs (default: "
        "nodes)");

    object_class_property_add(oc, "join-timeout", "uint32", distvm_get_u32,
                              distvm_set_join_timeout, NULL,
                              (void *)offsetof(DistvmState, join_timeout));
    object_class_property_set_description(oc, "join-timeout",
        "Seconds a node keeps trying to reach its peers while the cluster "
        "forms (default 60)");

    object_class_property_add(oc, "peer-timeout", "uint32", distvm_get_u32,
                              distvm_set_peer_timeout, NULL,
                              (void *)offsetof(DistvmState, peer_timeout));
    object_class_property_set_description(oc, "peer-timeout",
        "Seconds a peer may stay silent before it is declared lost, once "
        "the cluster runs (default " stringify(DISTVM_DEFAULT_PEER_TIMEOUT)
        ")");

    object_class_property_add(oc, "path-up-delay-ms", "uint32",
                              distvm_get_u32, distvm_set_path_up_delay_ms,
                              NULL,
                              (void *)offsetof(DistvmState,
                                               path_up_delay_ms));
    object_class_property_set_description(oc, "path-up-delay-ms",
        "Milliseconds the tap of a node that serves queue pairs must stay "
        "up before the pairs move back to it (default "
        stringify(DISTVM_DEFAULT_PATH_UP_DELAY_MS) ")");

    object_class_property_add(oc, "pause-sleep-us", "uint32", distvm_get_u32,
                              distvm_set_pause_sleep_us, NULL,
                              (void *)offsetof(DistvmState, pause_sleep_us));
    object_class_property_set_description(oc, "pause-sleep-us",
        "Microseconds a vCPU that spins (PAUSE after PAUSE) sleeps, on a "
        "cluster of more than one node; 0 never (default "
        stringify(DISTVM_DEFAULT_PAUSE_SLEEP_US) ")");

    object_class_property_add(oc, "replicas", "uint32", distvm_get_u32,
                              distvm_set_replicas, NULL,
                              (void *)offsetof(DistvmState, replicas));
    object_class_property_set_description(oc, "replicas",
        "Copies of each node's state that other nodes keep, taken in "
        "checkpoint epochs: 0 (none: the guest stops if a node is lost) "
        "or 1 (default 0)");

    object_class_property_add_enum(oc, "redundancy", "DistvmRedundancy",
                                   &DistvmRedundancy_lookup,
                                   distvm_get_redundancy,
                                   distvm_set_redundancy);
    object_class_property_set_description(oc, "redundancy",
        "What the nodes keep of each other with replicas=1: replica (each "
        "node's replica keeps a copy of its pages) or parity (home keeps "
        "the XOR of the other nodes' pages, from which a lost node's are "
        "rebuilt); the same on every node (default replica)");

    object_class_property_add(oc, "standby", "uint32", distvm_get_u32,
                              distvm_set_standby, NULL,
                              (void *)offsetof(DistvmState, standby));
    object_class_property_set_description(oc, "standby",
        "With replicas=1, the node that keeps the home node's pages and "
        "devices' state, and takes its place if it is lost; the same on "
        "every node (default: node 1, the next node present)");

    object_class_property_add(oc, "checkpoint-ms", "uint32", distvm_get_u32,
                              distvm_set_checkpoint_ms, NULL,
                              (void *)offsetof(DistvmState, checkpoint_ms));
    object_class_property_set_description(oc, "checkpoint-ms",
        "Milliseconds between two checkpoint epochs with replicas=1, as "
        "the home node counts them (default "
        stringify(DISTVM_DEFAULT_CHECKPOINT_MS) ")");

    object_class_property_add_enum(oc, "policy", "DistvmPolicy",
                                   &DistvmPolicy_lookup, distvm_get_policy,
                                   distvm_set_policy);
    object_class_property_set_description(oc, "policy",
        "How vCPUs are placed while the guest runs: manual (only by "
        "distvm-move-vcpu) or affinity (also moved to the node that serves "
        "their data); the same on every node (default manual)");

    object_class_property_add(oc, "capacity", "uint32", distvm_get_u32,
                              distvm_set_capacity, NULL,
                              (void *)offsetof(DistvmState, capacity));
    object_class_property_set_description(oc, "capacity",
        "How many vCPUs the placement policy may place on this node "
        "(default: the host CPUs this process may run on)");

    object_class_property_add(oc, "speed", "number", distvm_get_speed,
                              distvm_set_speed, NULL, NULL);
    object_class_property_set_description(oc, "speed",
        "This node's speed relative to the other nodes' (default 1, from "
        "0.001 to 1000): the placement policy prefers faster nodes for "
        "the busiest vCPUs");

    object_class_property_add_bool(oc, "warm-pages", distvm_get_warm_pages,
                                   distvm_set_warm_pages);
    object_class_property_set_description(oc, "warm-pages",
        "Whether a vCPU that leaves this node takes the pages it used "
        "last with it, so that it resumes warm (default on)");

    object_class_property_add_bool(oc, "auto-numa", distvm_get_auto_numa,
                                   distvm_set_auto_numa);
    object_class_property_set_description(oc, "auto-numa",
        "Without -numa options, give the guest a NUMA node for each node "
        "that runs vCPUs from power-on, with its memory homed there");

    object_class_property_add_bool(oc, "pv-tlb-flush",
                                   distvm_get_pv_tlb_flush,
                                   distvm_set_pv_tlb_flush);
    object_class_property_set_description(oc, "pv-tlb-flush",
        "For a guest that starts on more than one node, offer it "
        "Hyper-V's remote TLB flush hypercall, which costs one round trip "
        "to each node instead of IPIs and page faults (default on)");

    object_class_property_add_str(oc, "listen", distvm_get_listen,
                                  distvm_set_listen);
    object_class_property_set_description(oc, "listen",
        "This node's address for its peers: tcp:HOST:PORT or unix:PATH");

    object_class_property_add_str(oc, "placement", distvm_get_placement,
                                  distvm_set_placement);
    object_class_property_set_description(oc, "placement",
        "The node of each vCPU at power-on, by cpu index, separated by ':' "
        "(default: all on node 0)");

    object_class_property_add_str(oc, "residency", distvm_get_residency,
                                  distvm_set_residency);
    object_class_property_set_description(oc, "residency",
        "Guest RAM whose pages stay on one node, BASE+SIZE@NODE, separated "
        "by ':'; a vCPU elsewhere that touches it moves there (default: "
        "none)");

    object_class_property_add_str(oc, "device-nodes",
                                  distvm_get_device_nodes,
                                  distvm_set_device_nodes);
    object_class_property_set_description(oc, "device-nodes",
        "PCI devices run by a node other than home, ID@NODE (ID: the "
        "-device id), separated by ':'; that node runs the device model "
        "and opens its backend, and the other nodes send it their "
        "accesses (default: every device on home)");

    object_class_property_add(oc, "queue-nodes", "str", distvm_get_str,
                              distvm_set_str, NULL,
                              (void *)offsetof(DistvmState, queue_nodes));
    object_class_property_set_description(oc, "queue-nodes",
        "Queue pairs of multi-queue virtio-net cards served by other nodes "
        "than the card's, ID/PAIR@NODE (ID: the card's -device id), "
        "separated by ':'; that node handles the pair's notifications, "
        "runs its queue of the card's tap and sends its interrupts "
        "(default: the card's node serves them all)");

    object_class_property_add_enum(oc, "queue-follow", "OnOffAuto",
                                   &OnOffAuto_lookup,
                                   distvm_get_queue_follow,
                                   distvm_set_queue_follow);
    object_class_property_set_description(oc, "queue-follow",
        "Once a vCPU has moved, serve each queue pair of the cards of "
        "queue-nodes on the node of the vCPU that the guest points the "
        "pair's receive interrupt at, if that node may serve the card's "
        "pairs; off: each pair stays where queue-nodes puts it (default "
        "auto: on if queue-nodes names pairs)");

    object_class_property_add_str(oc, "home", distvm_get_home,
                                  distvm_set_home);
    object_class_property_set_description(oc, "home",
        "The home node's listen address, given on every other node");

    object_class_property_add(oc, "tls-creds", "str", distvm_get_str,
                              distvm_set_str, NULL,
                              (void *)offsetof(DistvmState, tls_creds));
    object_class_property_set_description(oc, "tls-creds",
        "ID of the tls-creds-x509 or tls-creds-psk object that secures "
        "every connection of the cluster (default: no TLS)");

    object_class_property_add(oc, "tls-authz", "str", distvm_get_str,
                              distvm_set_str, NULL,
                              (void *)offsetof(DistvmState, tls_authz));
    object_class_property_set_description(oc, "tls-authz",
        "ID of the authz object that a peer's x509 distinguished name or "
        "PSK username must satisfy (default: any peer the credentials "
        "accept)");

    object_class_property_add(oc, "tls-hostname", "str", distvm_get_str,
                              distvm_set_str, NULL,
                              (void *)offsetof(DistvmState, tls_hostname));
    object_class_property_set_description(oc, "tls-hostname",
        "The name every node's x509 certificate must carry (default: the "
        "host of each tcp: address, localhost for unix: addresses)");
}

static const TypeInfo distvm_accel_type = {
    .name = TYPE_DISTVM_ACCEL,
    .parent = TYPE_TCG_ACCEL,
    .instance_size = sizeof(DistvmState),
    .instance_init = distvm_accel_instance_init,
    .instance_finalize = distvm_accel_instance_finalize,
    .class_size = sizeof(DistvmAccelClass),
    .class_init = distvm_accel_class_init,
};

static void (*tcg_ops_init)(AccelOpsClass *ops);
static void (*tcg_handle_interrupt)(CPUState *cpu, int mask);

/*
 * SMIs and NMIs that devices raise with cpu_interrupt() (the chipset's
 * SMI, the monitor's "nmi") for a vCPU that runs on another node go to
 * that node.
 */
static void distvm_handle_interrupt(CPUState *cpu, int mask)
{
    mask = distvm_vcpu_forward_interrupt(cpu, mask);
    if (mask) {
        tcg_handle_interrupt(cpu, mask);
    }
}

static void distvm_accel_ops_init(AccelOpsClass *ops)
{
    DistvmState *s = distvm_state();

    tcg_ops_init(ops);
    tcg_handle_interrupt = ops->handle_interrupt;
    ops->handle_interrupt = distvm_handle_interrupt;
    /* A single node runs exactly as TCG does. */
    if (s && s->nodes > 1) {
        ops->get_elapsed_ticks = distvm_guest_ticks;
    }
}

static void distvm_accel_ops_class_init(ObjectClass *oc, void *data)
{
    AccelOpsClass *ops = ACCEL_OPS_CLASS(oc);

    tcg_ops_init = ops->ops_init;
    ops->ops_init = distvm_accel_ops_init;
}

/* The vCPU threads are TCG's own (inherited ops_init picks MTTCG). */
static const TypeInfo distvm_accel_ops_type = {
    .name = ACCEL_OPS_NAME("distvm"),
    .parent = ACCEL_OPS_NAME("tcg"),
    .class_init = distvm_accel_ops_class_init,
    .abstract = true,
};

static void distvm_register_types(void)
{
    type_register_static(&distvm_accel_type);
    type_register_static(&distvm_accel_ops_type);
}

type_init(distvm_register_types);
