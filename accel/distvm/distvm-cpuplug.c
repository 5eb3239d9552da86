/*
 * distvm: CPUs plugged into the running guest, on every node at once
 *
 * Every node has an object for each vCPU, and runs those placed on it
 * (DESIGN.md section 6); with -smp N,maxcpus=M, the placement names the
 * node of the M vCPUs, the hot-pluggable ones included.  The guest learns
 * of a new CPU from home's ACPI, then wakes it with INIT and SIPI from
 * whichever node its boot vCPU runs on.  So home, asked to plug a CPU
 * (device_add), first has each other node plug the same one: a CPU_PLUG
 * gives its driver, id and APIC ID, and its vCPU index, which every node
 * derives from the APIC ID in the same way.  Each node creates it as if
 * cold-plugged (the guest never reads its own ACPI device, whose
 * interrupt reaches no vCPU), resets it, runs it if it is placed there
 * and parks it otherwise, and answers CPU_PLUG_ACK.  Only once every node
 * said yes does home realize its own and signal the guest (distvm-plug.c).
 * If a node cannot plug it, home refuses the device_add and has the nodes
 * that plugged it unplug it again.
 *
 * When the guest ejects the CPU, home unplugs it and sends CPU_UNPLUG:
 * each other node unplugs its copy, and the node that ran it stops it.
 * A message about it that comes after is refused, and a device access
 * it made is answered with a failure.  Not handled: a plug or unplug
 * racing with a move of the same vCPU.
 *
 * A hot-plugged CPU takes its model's properties and -cpu's, as the CPUs
 * of the command line do on every node: device_add may give it its place
 * (its id, APIC ID, socket, die, module, core, thread and NUMA node)
 * and nothing else, which the other nodes' copies would not have.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qom/object_interfaces.h"
#include "qom/qom-qobject.h"
#include "hw/boards.h"
#include "hw/hotplug.h"
#include "hw/i386/x86.h"
#include "hw/qdev-core.h"
#include "monitor/qdev.h"
#include "system/runstate.h"
#include "cpu.h"
#include "distvm-internal.h"
#include "trace.h"

/* The BQL: the CPU this node plugs for home's CPU_PLUG, and its vCPU */
static CPUState *mirroring;
static uint32_t mirroring_index;

bool distvm_cpuplug_mirroring(CPUState *cpu)
{
    return cpu == mirroring;
}

/* What every node needs to create the CPU: JSON */
static GString *cpuplug_device_json(DeviceState *dev)
{
    g_autoptr(QDict) props = qdict_new();

    qdict_put_str(props, "driver", object_get_typename(OBJECT(dev)));
    if (dev->id) {
        qdict_put_str(props, "id", dev->id);
    }
    qdict_put_int(props, "apic-id", X86_CPU(dev)->apic_id);
    return qobject_to_json(QOBJECT(props));
}

/*
 * The properties device_add may give a CPU on a cluster: its place in the
 * topology, which every node derives from its APIC ID; and those that are
 * the device's, not the CPU's.
 */
static const char *const cpuplug_place_props[] = {
    "apic-id", "socket-id", "die-id", "module-id", "core-id", "thread-id",
    "node-id", "realized", "hotplugged", "hotpluggable", NULL,
};

/*
 * The properties device_add gave @dev beyond its place, which the other
 * nodes' copies would not have: those that differ from a new CPU of its
 * model's (with -cpu's).  NULL if none.
 */
static char *cpuplug_other_props(DeviceState *dev)
{
    Object *fresh = object_new(object_get_typename(OBJECT(dev)));
    g_autoptr(GString) other = g_string_new(NULL);
    ObjectPropertyIterator iter;
    ObjectProperty *prop;

    object_property_iter_init(&iter, OBJECT(dev));
    while ((prop = object_property_iter_next(&iter))) {
        QObject *mine, *model;

        if (!prop->get || !prop->set ||
            g_strv_contains(cpuplug_place_props, prop->name) ||
            g_str_has_prefix(prop->type, "link<") ||
            g_str_has_prefix(prop->type, "child<")) {
            continue;
        }
        mine = object_property_get_qobject(OBJECT(dev), prop->name, NULL);
        model = object_property_get_qobject(fresh, prop->name, NULL);
        if (mine && model && !qobject_is_equal(mine, model)) {
            g_string_append_printf(other, "%s%s", other->len ? ", " : "",
                                   prop->name);
        }
        qobject_unref(mine);
        qobject_unref(model);
    }
    object_unref(fresh);
    return other->len ? g_string_free(g_steal_pointer(&other), false) : NULL;
}

/* Home: the CPU_PLUG of @dev, a new plug whose number is put in @seq */
static GByteArray *cpuplug_message(DistvmState *s, DeviceState *dev,
                                   uint64_t *seq)
{
    g_autoptr(GString) device = cpuplug_device_json(dev);
    GByteArray *m = g_byte_array_new();

    *seq = distvm_plug_ask(s, DISTVM_MSG_CPU_PLUG_ACK);
    distvm_wire_cpu_plug(m, s->node_id, *seq, CPU(dev)->cpu_index,
                         device->str);
    trace_distvm_cpuplug_send(CPU(dev)->cpu_index, device->str);
    return m;
}

static void cpuplug_unplug_all(DistvmState *s, uint32_t cpu)
{
    g_autoptr(GByteArray) m = g_byte_array_new();

    distvm_wire_cpu_unplug(m, s->node_id, cpu);
    distvm_plug_send_all(s, m);
}

/* Home: the CPU failed to realize after the others plugged it. */
static void cpuplug_check_plugged(void *opaque)
{
    DistvmState *s = distvm_state();
    uint32_t cpu = GPOINTER_TO_UINT(opaque);

    if (!qemu_get_cpu(cpu)) {
        trace_distvm_cpuplug_abandoned(cpu);
        cpuplug_unplug_all(s, cpu);
    }
}

static bool cpuplug_pre_plug(DeviceState *dev, Error **errp)
{
    DistvmState *s = distvm_state();
    uint32_t cpu = CPU(dev)->cpu_index;
    g_autoptr(GByteArray) m = NULL;
    g_autofree char *other = NULL;
    uint64_t seq;

    if (s->nodes == 1 || !phase_check(PHASE_MACHINE_READY)) {
        return true;        /* on the command line: on every node's too */
    }
    if (mirroring == CPU(dev)) {
        if (cpu != mirroring_index) {
            error_setg(errp, "its APIC ID is vCPU %" PRIu32 "'s here, not "
                       "vCPU %" PRIu32 "'s", cpu, mirroring_index);
            return false;
        }
        return true;
    }
    if (!distvm_is_home(s)) {
        error_setg(errp, "distvm: CPUs are plugged on the home node (node "
                   "%u), which plugs them on every node", distvm_home(s));
        return false;
    }
    if (!X86_MACHINE(qdev_get_machine())->acpi_dev) {
        error_setg(errp, "distvm: a CPU is plugged into a cluster through "
                   "ACPI, which this machine does not have");
        return false;
    }
    if (!distvm_plug_nodes_heard(s, "a CPU", errp)) {
        return false;
    }
    other = cpuplug_other_props(dev);
    if (other) {
        error_setg(errp, "distvm: a CPU plugged into a cluster takes its "
                   "model's properties and -cpu's; give it only its place "
                   "and id, not: %s", other);
        return false;
    }
    m = cpuplug_message(s, dev, &seq);
    if (!distvm_plug_send_wait(s, m, seq, "the CPU", errp)) {
        cpuplug_unplug_all(s, cpu);
        return false;
    }
    trace_distvm_cpuplug_answered(cpu);
    aio_bh_schedule_oneshot(qemu_get_aio_context(), cpuplug_check_plugged,
                            GUINT_TO_POINTER(cpu));
    return true;
}

bool distvm_cpuplug_send_state(DistvmState *s, uint32_t node, Error **errp)
{
    CPUState *cpu;

    CPU_FOREACH(cpu) {
        g_autoptr(GByteArray) m = NULL;
        uint64_t seq;

        /* Those of the command line are the joining node's too */
        if (!DEVICE(cpu)->hotplugged) {
            continue;
        }
        m = cpuplug_message(s, DEVICE(cpu), &seq);
        if (!distvm_plug_send_wait_node(s, m, seq, node, "the CPU", errp)) {
            return false;
        }
    }
    return true;
}

/* The last reference to an unplugged CPU, dropped after a grace period */
typedef struct CpuRelease {
    struct rcu_head rcu;
    Object *cpu;
} CpuRelease;

static void cpuplug_release(CpuRelease *r)
{
    object_unref(r->cpu);
    g_free(r);
}

static void cpuplug_unplug(DeviceState *dev)
{
    DistvmState *s = distvm_state();
    CpuRelease *r;

    if (s->nodes == 1) {
        return;
    }
    if (distvm_is_home(s)) {
        cpuplug_unplug_all(s, CPU(dev)->cpu_index);
    }
    /* Its thread ends: TLB flushes asked of it are done without it */
    distvm_tlb_flush_vcpu_present(s, CPU(dev)->cpu_index, false);
    /*
     * Handlers of this node's receive threads may hold it: they run in an
     * RCU read-side critical section (distvm_dispatch()), and find it
     * unrealized, but not freed.
     */
    r = g_new(CpuRelease, 1);
    r->cpu = object_ref(OBJECT(dev));
    call_rcu(r, cpuplug_release, rcu);
}

static const X86CPUPlugHooks cpuplug_hooks = {
    .pre_plug = cpuplug_pre_plug,
    .unplug = cpuplug_unplug,
};

void distvm_cpuplug_realize(DistvmState *s, CPUState *cpu)
{
    /* At start, distvm_vcpu_park_foreign() does it for all. */
    if (s->nodes > 1 && phase_check(PHASE_MACHINE_READY)) {
        qatomic_set(&cpu->parked,
                    distvm_vcpu_node(s, cpu->cpu_index) != s->node_id);
        distvm_tlb_flush_vcpu_present(s, cpu->cpu_index, true);
    }
}

/* ---- the other nodes ---- */

static DeviceState *cpuplug_new_cpu(DistvmState *s, const DistvmMsgCpuPlug *m,
                                    Error **errp)
{
    DeviceState *dev;

    if (qemu_get_cpu(m->cpu)) {
        error_setg(errp, "vCPU %" PRIu32 " exists here already", m->cpu);
        return NULL;
    }
    dev = distvm_plug_new_device(m->device, TYPE_X86_CPU, "an x86 CPU",
                                 errp);
    if (!dev) {
        return NULL;
    }
    mirroring = CPU(dev);
    mirroring_index = m->cpu;
    if (distvm_plug_realize(dev, errp)) {
        /* As the hot-plug of home's, then it runs here or is parked */
        device_cold_reset(dev);
    } else {
        dev = NULL;
    }
    mirroring = NULL;
    return dev;
}

/* CPU_PLUG, in the main loop */
static void cpuplug_replay(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgCpuPlug *m = &msg->u.cpu_plug;
    Error *err = NULL;
    DeviceState *dev = cpuplug_new_cpu(s, m, &err);

    if (dev && distvm_vcpu_node(s, m->cpu) == s->node_id &&
        runstate_is_running()) {
        cpu_resume(CPU(dev));
    }
    trace_distvm_cpuplug_replay(m->cpu, m->device, !err);
    distvm_plug_reply(s, msg, m->cpu, "CPU", err);
}

/* CPU_UNPLUG, in the main loop: home unplugged it, or gave up plugging */
static void cpuplug_unplug_replay(DistvmState *s, const DistvmMsg *msg)
{
    CPUState *cpu = qemu_get_cpu(msg->u.cpu_plug.cpu);
    DeviceState *dev = cpu ? DEVICE(cpu) : NULL;
    Error *err = NULL;
    Object *acpi;

    trace_distvm_cpuplug_unplug(msg->u.cpu_plug.cpu, !!dev);
    if (!dev) {
        return;                 /* it never plugged it */
    }
    acpi = OBJECT(X86_MACHINE(qdev_get_machine())->acpi_dev);
    if (!acpi || cpu->cpu_index < MACHINE(qdev_get_machine())->smp.cpus) {
        distvm_msg_refused(s, msg->hdr.src, "CPU_UNPLUG of vCPU %" PRIu32
                           ", which was not hot-plugged", cpu->cpu_index);
        return;
    }
    /* Unplugged while it runs here: no access of its waits for home. */
    distvm_io_cancel(s, cpu->cpu_index);
    /*
     * A CPU is unplugged through ACPI's modern CPU hot-plug interface,
     * to which the guest switched home's ACPI device.  This node's copy,
     * which the guest never reads, switches too.
     */
    if (object_property_find(acpi, "cpu-hotplug-legacy") &&
        object_property_get_bool(acpi, "cpu-hotplug-legacy", &error_abort)) {
        object_property_set_bool(acpi, "cpu-hotplug-legacy", false,
                                 &error_abort);
    }
    hotplug_handler_unplug(qdev_get_hotplug_handler(dev), dev, &err);
    if (err) {
        error_prepend(&err, "distvm: home unplugged vCPU %" PRIu32 ", which "
                      "this node could not: ", msg->u.cpu_plug.cpu);
        error_report_err(err);
        return;
    }
    object_unparent(OBJECT(dev));
}

/* CPU_PLUG_ACK, in the receive thread */
static bool cpuplug_answered(DistvmState *s, const DistvmMsg *msg)
{
    distvm_plug_answered(s, msg, msg->u.cpu_plug.error);
    return true;
}

static const DistvmMsgHandler cpuplug_handlers[] = {
    { DISTVM_MSG_CPU_PLUG, .main_loop = cpuplug_replay },
    { DISTVM_MSG_CPU_PLUG_ACK, .receive = cpuplug_answered },
    { DISTVM_MSG_CPU_UNPLUG, .main_loop = cpuplug_unplug_replay },
};

void distvm_cpuplug_init(DistvmState *s)
{
    distvm_msg_handlers_register(s, cpuplug_handlers,
                                 ARRAY_SIZE(cpuplug_handlers));
    x86_cpu_plug_hooks = &cpuplug_hooks;
}
