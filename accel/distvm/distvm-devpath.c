/*
 * distvm: a network card placed away from home comes home when its
 * node's path goes down, and goes back once it is up again
 *
 * With replicas=1, a card that device-nodes places on a node other than
 * home, with a tap as its backend, has its node watch that tap
 * (distvm-netpath.c).  When the tap goes down or loses its carrier, the
 * node tells home (NET_PAIR PATH_DOWN, as a node that serves queue pairs
 * does); home emits DISTVM_NETWORK_PATH and rolls the guest back to the
 * last committed epoch, which brings the card home
 * (distvm_devices_go_home()), to home's tap: the guest's connections go
 * on as when the card's node is lost.  When the tap is up again (for
 * path-up-delay-ms), the node tells home (PATH_UP), which emits the
 * event; at the end of the next checkpoint epoch, every node paused,
 * home sends the card back to its node with its state
 * (distvm_devices_send_away(), DEVICE_AWAY), which runs it from there
 * on: the guest goes on, and loses nothing.  A rollback that cannot begin
 * now (a node joins, or none committed yet) is tried again every second
 * while the path stays down.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-events-distvm.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "net/net.h"
#include "hw/qdev-core.h"
#include "distvm-internal.h"
#include "trace.h"

struct DistvmDevPath {
    DistvmPlacedDevice *d;
    DistvmNetPath *watch;       /* on the card's node */
    bool told_up;               /* what home last heard */
    uint32_t told_home;         /* the card's node: the home it told */
    QEMUTimer *retry;           /* home: a rollback to ask again */
    bool warned;                /* home: that it cannot roll back now */
};

typedef struct NicFind {
    DeviceState *dev;
    NICState *nic;
} NicFind;

/* Whether @nic is @opaque's card's, or that of a device on its buses */
static void nic_of(NICState *nic, void *opaque)
{
    NicFind *f = opaque;
    DeviceState *dev = nic->opaque;

    while (dev && dev != f->dev) {
        dev = dev->parent_bus ? dev->parent_bus->parent : NULL;
    }
    if (dev) {
        f->nic = nic;
    }
}

/* The NIC of @d's card here, or NULL if it is no card */
static NICState *card_nic(DistvmPlacedDevice *d)
{
    NicFind f = { .dev = DEVICE(d->dev) };

    qemu_foreach_nic(nic_of, &f);
    return f.nic;
}

/* The card's node: tell home whether its path is up, if it changed */
static void devpath_tell(DistvmState *s, DistvmDevPath *p)
{
    g_autofree char *path = NULL;
    g_autoptr(GByteArray) m = g_byte_array_new();
    bool up = distvm_netpath_up(p->watch);

    if ((up == p->told_up && p->told_home == distvm_home(s)) ||
        p->d->placed != s->node_id ||
        qatomic_read(&s->state) != DISTVM_CLUSTER_STATE_RUNNING) {
        return;
    }
    p->told_up = up;
    p->told_home = distvm_home(s);
    path = object_get_canonical_path(OBJECT(p->d->dev));
    distvm_wire_net_pair(m, s->node_id, path, up ? DISTVM_NET_PAIR_PATH_UP :
                         DISTVM_NET_PAIR_PATH_DOWN, 0, s->node_id, 0, 0);
    distvm_send(s, distvm_home(s), m);
}

static void devpath_changed(void *opaque)
{
    devpath_tell(distvm_state(), opaque);
}

void distvm_devpath_rolled_back(DistvmState *s)
{
    for (uint32_t i = 0; i < distvm_devices_count(s); i++) {
        DistvmPlacedDevice *d = distvm_devices_get(s, i);

        if (d->path && d->path->watch) {
            devpath_tell(s, d->path);   /* a new home has heard nothing */
        }
    }
}

void distvm_devpath_setup(DistvmState *s, DistvmPlacedDevice *d)
{
    NICState *nic;
    NetClientState *peer;
    Error *err = NULL;

    if (!s->replicas || d->queues || d->node != s->node_id ||
        distvm_is_home(s)) {
        return;
    }
    nic = card_nic(d);
    peer = nic ? qemu_get_queue(nic)->peer : NULL;
    if (!peer || peer->info->type != NET_CLIENT_DRIVER_TAP) {
        return;                 /* no card, or no tap of this host */
    }
    d->path = g_new0(DistvmDevPath, 1);
    d->path->d = d;
    d->path->told_up = true;
    d->path->told_home = distvm_home(s);
    d->path->watch = distvm_netpath_watch_tap(peer, s->path_up_delay_ms,
                                              devpath_changed, d->path, &err);
    if (err) {
        warn_report("%s; '%s' does not come home when it goes down",
                    error_get_pretty(err), d->name);
        error_free(err);
    }
}

bool distvm_devpath_up(DistvmPlacedDevice *d)
{
    return !d->path || d->path->told_up;
}

/*
 * Home: while the card's path is down, roll back, which brings it home.
 * Once the path is up, the end of the next epoch sends it back.
 */
static void devpath_roll_back(void *opaque)
{
    DistvmDevPath *p = opaque;
    DistvmState *s = distvm_state();
    Error *err = NULL;

    if (p->told_up || p->d->node == distvm_home(s)) {
        p->warned = false;
        return;
    }
    /* Until it is home: a rollback asked for may not begin after all */
    timer_mod(p->retry, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 1000);
    if (distvm_epoch_rollback_pending(s)) {
        return;                 /* which brings it home at its start */
    }
    if (!distvm_epoch_rollback(s, false, 0, &err)) {
        if (!p->warned) {
            warn_report("%s; '%s' comes home once the guest can be rolled "
                        "back", error_get_pretty(err), p->d->name);
        }
        p->warned = true;
        error_free(err);
    }
}

bool distvm_devpath_changed(DistvmState *s, DistvmPlacedDevice *d,
                            uint32_t node, bool up)
{
    DistvmDevPath *p = d->path;

    if (!s->replicas || d->queues || !card_nic(d)) {
        return false;
    }
    if (d->placed != node) {
        return true;            /* no card of that node's */
    }
    if (!p) {
        /* Home since the path changed (its standby): up until told not */
        p = d->path = g_new0(DistvmDevPath, 1);
        p->d = d;
        p->told_up = true;
    }
    if (!p->retry) {
        p->retry = timer_new_ms(QEMU_CLOCK_REALTIME, devpath_roll_back, p);
    }
    if (up == p->told_up) {
        return true;
    }
    trace_distvm_devpath(d->name, node, up);
    p->told_up = up;
    qapi_event_send_distvm_network_path(d->name, node, up);
    devpath_roll_back(p);
    return true;
}
