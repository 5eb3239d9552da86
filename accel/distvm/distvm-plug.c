/*
 * distvm: home asks every node to plug a device, and waits for the answers
 *
 * A device the guest learns of from home's ACPI (a DIMM, a CPU) must exist
 * on every node before the guest is told: home, in its device_add, sends
 * every other node the device to plug (MEM_PLUG, CPU_PLUG) with a new
 * sequence number, and waits until each answered (MEM_PLUG_ACK,
 * CPU_PLUG_ACK, with the same number) that it plugged it, or why not.
 * Home waits with the BQL held, as the rest of device_add runs: the other
 * nodes plug in their main loop, which never waits for home's (their
 * vCPUs wait for home's device accesses without their BQL).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qemu/timer.h"
#include "qom/object_interfaces.h"
#include "hw/qdev-core.h"
#include "monitor/qdev.h"
#include "distvm-internal.h"
#include "trace.h"

struct DistvmPlug {
    QemuMutex lock;             /* all of the below */
    QemuCond cond;
    uint64_t seq;               /* of the last question */
    DistvmMsgType answer;       /* the type of its answers */
    uint32_t answered;          /* nodes, a bit each */
    uint32_t refused_by;
    char *refusal;              /* the first node that could not plug */
};

void distvm_plug_init(DistvmState *s)
{
    s->plug = g_new0(DistvmPlug, 1);
    qemu_mutex_init(&s->plug->lock);
    qemu_cond_init(&s->plug->cond);
}

int distvm_plug_send_all(DistvmState *s, GByteArray *msg)
{
    int gone = -1;

    for (uint32_t i = 0; i < s->nodes; i++) {
        if (i != s->node_id && distvm_node_present(s, i) &&
            !distvm_send(s, i, msg)) {
            gone = i;
        }
    }
    return gone;
}

/*
 * A node that has not been heard from for two of its heartbeats may be
 * gone, or stopped: it could not plug the device in time.
 */
bool distvm_plug_nodes_heard(DistvmState *s, const char *what, Error **errp)
{
    int64_t limit = (int64_t)s->peer_timeout * NANOSECONDS_PER_SECOND * 2 /
                    5 + 500 * SCALE_MS;
    int64_t now = get_clock();

    if (qatomic_read(&s->state) != DISTVM_CLUSTER_STATE_RUNNING) {
        error_setg(errp, "distvm: %s is plugged only while the cluster runs",
                   what);
        return false;
    }
    if (qatomic_read(&s->joining) != UINT32_MAX) {
        error_setg(errp, "distvm: node %" PRIu32 " is joining the cluster; "
                   "plug %s once it joined", qatomic_read(&s->joining), what);
        return false;
    }
    if (qatomic_read(&s->draining) != UINT32_MAX) {
        error_setg(errp, "distvm: node %" PRIu32 " is being drained; plug %s "
                   "once it left", qatomic_read(&s->draining), what);
        return false;
    }
    for (uint32_t i = 0; i < s->nodes; i++) {
        int64_t silent = now - qatomic_read(&s->peers[i].heard_ns);

        if (i != s->node_id && distvm_node_present(s, i) && silent > limit) {
            error_setg(errp, "distvm: node %" PRIu32 " has been silent for "
                       "%" PRId64 " ms; %s is plugged only while every node "
                       "answers", i, silent / SCALE_MS, what);
            return false;
        }
    }
    return true;
}

uint64_t distvm_plug_ask(DistvmState *s, DistvmMsgType answer)
{
    DistvmPlug *p = s->plug;
    uint64_t seq;

    qemu_mutex_lock(&p->lock);
    seq = ++p->seq;
    p->answer = answer;
    p->answered = 0;
    g_clear_pointer(&p->refusal, g_free);
    qemu_mutex_unlock(&p->lock);
    return seq;
}

/*
 * The nodes that may still answer: a node that left the cluster, or gave
 * up joining it, will not.
 */
static uint32_t plug_listeners(DistvmState *s)
{
    uint32_t joining = qatomic_read(&s->joining);

    return qatomic_read(&s->present) |
           (joining < DISTVM_MAX_NODES ? BIT(joining) : 0);
}

/* Wait until @all (nodes, a bit each) answered plug @seq */
static bool plug_wait(DistvmState *s, uint64_t seq, uint32_t all,
                      const char *what, Error **errp)
{
    DistvmPlug *p = s->plug;
    int64_t deadline = get_clock() + (int64_t)s->peer_timeout *
                       NANOSECONDS_PER_SECOND;
    bool ok;

    qemu_mutex_lock(&p->lock);
    assert(seq == p->seq);
    while (p->answered != all && !p->refusal &&
           (all & ~p->answered & plug_listeners(s)) &&
           qatomic_read(&s->state) == DISTVM_CLUSTER_STATE_RUNNING &&
           !distvm_leave_ending(s)) {
        int64_t left = deadline - get_clock();

        if (left <= 0) {
            break;
        }
        qemu_cond_timedwait(&p->cond, &p->lock,
                            MIN(left / SCALE_MS + 1, 100));
    }
    ok = p->answered == all && !p->refusal;
    if (p->refusal) {
        error_setg(errp, "distvm: node %" PRIu32 " could not plug %s: %s",
                   p->refused_by, what, p->refusal);
    } else if (!ok) {
        uint32_t missing = ctz32(all & ~p->answered);

        if (!(plug_listeners(s) & BIT(missing))) {
            error_setg(errp, "distvm: node %" PRIu32 " is gone; %s is not "
                       "plugged there", missing, what);
        } else {
            error_setg(errp, "distvm: node %" PRIu32 " did not plug %s "
                       "within peer-timeout=%" PRIu32 " s", missing, what,
                       s->peer_timeout);
        }
    }
    p->seq++;                   /* late answers are for no plug */
    qemu_mutex_unlock(&p->lock);
    return ok;
}

bool distvm_plug_send_wait(DistvmState *s, GByteArray *msg, uint64_t seq,
                           const char *what, Error **errp)
{
    int gone = distvm_plug_send_all(s, msg);

    if (gone >= 0) {
        error_setg(errp, "distvm: node %d is gone; %s is not plugged", gone,
                   what);
        return false;
    }
    return plug_wait(s, seq, qatomic_read(&s->present) & ~BIT(s->node_id),
                     what, errp);
}

bool distvm_plug_send_wait_node(DistvmState *s, GByteArray *msg,
                                uint64_t seq, uint32_t node,
                                const char *what, Error **errp)
{
    if (!distvm_send(s, node, msg)) {
        error_setg(errp, "distvm: node %" PRIu32 " is gone; %s is not "
                   "plugged there", node, what);
        return false;
    }
    return plug_wait(s, seq, BIT(node), what, errp);
}

void distvm_plug_reply(DistvmState *s, const DistvmMsg *msg, uint32_t index,
                       const char *what, Error *err)
{
    g_autoptr(GByteArray) ack = g_byte_array_new();
    const char *error = "";

    if (err) {
        error_prepend(&err, "node %" PRIu32 ": ", s->node_id);
        warn_report("distvm: home's %s plug refused: %s", what,
                    error_get_pretty(err));
        error = error_get_pretty(err);
    }
    if (msg->hdr.type == DISTVM_MSG_MEM_PLUG) {
        distvm_wire_mem_plug_ack(ack, s->node_id, msg->hdr.seq, index, error);
    } else {
        distvm_wire_cpu_plug_ack(ack, s->node_id, msg->hdr.seq, index, error);
    }
    distvm_send(s, distvm_home(s), ack);
    error_free(err);
}

void distvm_plug_answered(DistvmState *s, const DistvmMsg *msg,
                          const char *error)
{
    DistvmPlug *p = s->plug;

    qemu_mutex_lock(&p->lock);
    if (msg->hdr.seq == p->seq && msg->hdr.type == p->answer) {
        p->answered |= 1u << msg->hdr.src;
        if (error[0] && !p->refusal) {
            p->refusal = g_strdup(error);
            p->refused_by = msg->hdr.src;
        }
        qemu_cond_broadcast(&p->cond);
    }
    qemu_mutex_unlock(&p->lock);
}

DeviceState *distvm_plug_new_device(const char *json, const char *type,
                                    const char *what, Error **errp)
{
    QObject *obj = qobject_from_json(json, errp);
    g_autoptr(QDict) props = qobject_to(QDict, obj);
    const char *driver = props ? qdict_get_try_str(props, "driver") : NULL;
    ObjectClass *oc = driver ? object_class_by_name(driver) : NULL;
    Error *err = NULL;
    DeviceState *dev;

    if (!props) {
        if (obj) {
            error_setg(errp, "the device to plug is not a JSON object: %s",
                       json);
        }
        qobject_unref(obj);
        return NULL;
    }
    if (!oc || object_class_is_abstract(oc) ||
        !object_class_dynamic_cast(oc, type)) {
        error_setg(errp, "the device to plug is not %s: %s", what, json);
        return NULL;
    }
    dev = DEVICE(object_new(driver));
    /* Plugged as at start: this node's ACPI device is not the guest's */
    dev->hotplugged = false;
    if (!qdev_set_id(dev, g_strdup(qdict_get_try_str(props, "id")), errp)) {
        object_unref(OBJECT(dev));
        return NULL;
    }
    qdict_del(props, "driver");
    qdict_del(props, "id");
    object_set_properties_from_keyval(OBJECT(dev), props, true, &err);
    if (err) {
        error_propagate(errp, err);
        object_unparent(OBJECT(dev));
        object_unref(OBJECT(dev));
        return NULL;
    }
    return dev;
}

bool distvm_plug_realize(DeviceState *dev, Error **errp)
{
    bool ok = qdev_realize(dev, NULL, errp);

    if (!ok) {
        object_unparent(OBJECT(dev));
    }
    object_unref(OBJECT(dev));
    return ok;
}
