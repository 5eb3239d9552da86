/*
 * distvm: the guest's network packets wait for their epoch's commit
 *
 * With checkpoint epochs (replicas=1, distvm-epoch.c), a lost node will
 * roll the guest back to the last committed epoch: what the guest sent
 * after it must not have reached the world.  So every node puts a net
 * filter of this type on each queue of each network backend that a NIC
 * of its machine sends to, as COLO and filter-buffer do.  The filter
 * holds each packet the guest sends; when an epoch's data is saved (SAVE,
 * with the guest paused) the packets held so far are sealed with the
 * epoch's number, and when an epoch commits those of it and of earlier,
 * abandoned epochs go on, in order.  While the cluster is a single node,
 * which takes no epochs, they go on at once.
 *
 * Packets that come to the guest are held only while an epoch pauses it,
 * so that no NIC writes them into guest RAM while the nodes save it.
 *
 * Only the NICs of the machine as it starts are covered: one plugged
 * later (device_add) sends its packets at once.  Disk writes are held
 * too (distvm-output-disk.c): an epoch's packets go once its writes are
 * on the disks.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/iov.h"
#include "net/filter.h"
#include "net/vhost_net.h"
#include "net/net.h"
#include "net/queue.h"
#include "distvm-internal.h"
#include "trace.h"

#define TYPE_DISTVM_OUTPUT_FILTER "distvm-output-filter"
OBJECT_DECLARE_SIMPLE_TYPE(DistvmOutputFilter, DISTVM_OUTPUT_FILTER)

/* The packets of one epoch, sealed, until it commits */
typedef struct HeldEpoch {
    uint64_t epoch;
    NetQueue *queue;
    uint64_t packets;
} HeldEpoch;

struct DistvmOutputFilter {
    NetFilterState parent_obj;
    NetQueue *open;             /* the epoch the guest runs in */
    uint64_t open_packets;
    GQueue sealed;              /* HeldEpoch, oldest first */
    NetQueue *inbound;          /* to the guest, while an epoch pauses it */
    NetClientState *nic;        /* the sender of the packets held */
};

/* Under the BQL, as the net layer */
static GPtrArray *filters;      /* DistvmOutputFilter, one per queue */
static bool guest_paused;       /* by an epoch */
static uint64_t held_packets;   /* held now */
static uint64_t released_packets;

/*
 * Send on what @queue holds, from @sender.  What the next one cannot
 * take now is dropped, as filter-buffer does; and all of it if @sender,
 * the guest's NIC, was unplugged meanwhile (its packets go nowhere, and
 * the NIC is no more).
 */
static void held_flush(NetFilterState *nf, NetQueue *queue,
                       NetClientState *sender)
{
    if (sender && sender != nf->netdev && nf->netdev->peer != sender) {
        qemu_net_queue_purge(queue, sender);
    } else if (!qemu_net_queue_flush(queue) && sender) {
        qemu_net_queue_purge(queue, sender);
    }
}

/* The @packets in @queue go on (@send) or are dropped */
static void held_end(DistvmOutputFilter *f, NetQueue *queue,
                     uint64_t packets, bool send)
{
    if (send) {
        held_flush(NETFILTER(f), queue, f->nic);
        released_packets += packets;
    } else if (f->nic) {
        qemu_net_queue_purge(queue, f->nic);
    }
    held_packets -= packets;
}

/* ... for a sealed epoch's, which is freed */
static void held_epoch_end(DistvmOutputFilter *f, HeldEpoch *h, bool send)
{
    held_end(f, h->queue, h->packets, send);
    g_free(h->queue);
    g_free(h);
}

/* ... for the epoch the guest runs in */
static void held_open_end(DistvmOutputFilter *f, bool send)
{
    held_end(f, f->open, f->open_packets, send);
    f->open_packets = 0;
}

/* What @f holds goes on, sealed or not: no epoch will commit it */
static void release_all(DistvmOutputFilter *f)
{
    HeldEpoch *h;

    while ((h = g_queue_pop_head(&f->sealed))) {
        held_epoch_end(f, h, true);
    }
    held_open_end(f, true);
}

static ssize_t output_receive_iov(NetFilterState *nf, NetClientState *sender,
                                  unsigned flags, const struct iovec *iov,
                                  int iovcnt, NetPacketSent *sent_cb)
{
    DistvmOutputFilter *f = DISTVM_OUTPUT_FILTER(nf);

    if (sender == nf->netdev) {
        /* To the guest */
        if (!guest_paused) {
            return 0;
        }
        qemu_net_queue_append_iov(f->inbound, sender, flags, iov, iovcnt,
                                  NULL);
        return iov_size(iov, iovcnt);
    }
    if (!distvm_epoch_taken(distvm_state())) {
        /* Drained to one node: what it held goes first, in order */
        release_all(f);
        return 0;
    }
    /* Taken: the sender goes on, and its sent_cb is not called */
    f->nic = sender;
    qemu_net_queue_append_iov(f->open, sender, flags, iov, iovcnt, NULL);
    f->open_packets++;
    held_packets++;
    return iov_size(iov, iovcnt);
}

static void output_setup(NetFilterState *nf, Error **errp)
{
    DistvmOutputFilter *f = DISTVM_OUTPUT_FILTER(nf);

    if (!filters) {
        error_setg(errp, "%s is made by distvm itself, with replicas=1",
                   TYPE_DISTVM_OUTPUT_FILTER);
        return;
    }
    f->open = qemu_new_net_queue(qemu_netfilter_pass_to_next, nf);
    f->inbound = qemu_new_net_queue(qemu_netfilter_pass_to_next, nf);
    g_queue_init(&f->sealed);
    g_ptr_array_add(filters, f);
}

/* Going away (object-del): what it holds goes on */
static void output_cleanup(NetFilterState *nf)
{
    DistvmOutputFilter *f = DISTVM_OUTPUT_FILTER(nf);

    if (!f->open) {
        return;                 /* its setup failed */
    }
    g_ptr_array_remove(filters, f);
    release_all(f);
    g_free(f->open);
    held_flush(nf, f->inbound, nf->netdev);
    g_free(f->inbound);
}

static void output_class_init(ObjectClass *oc, void *data)
{
    NetFilterClass *nfc = NETFILTER_CLASS(oc);

    nfc->setup = output_setup;
    nfc->cleanup = output_cleanup;
    nfc->receive_iov = output_receive_iov;
}

static const TypeInfo output_filter_info = {
    .name = TYPE_DISTVM_OUTPUT_FILTER,
    .parent = TYPE_NETFILTER,
    .class_init = output_class_init,
    .instance_size = sizeof(DistvmOutputFilter),
};

static void output_register_types(void)
{
    type_register_static(&output_filter_info);
}

type_init(output_register_types);

void distvm_output_seal(uint64_t epoch)
{
    distvm_output_disk_seal(epoch);
    for (guint i = 0; filters && i < filters->len; i++) {
        DistvmOutputFilter *f = g_ptr_array_index(filters, i);
        HeldEpoch *h;

        if (!f->open_packets) {
            continue;
        }
        h = g_new(HeldEpoch, 1);
        h->epoch = epoch;
        h->queue = f->open;
        h->packets = f->open_packets;
        g_queue_push_tail(&f->sealed, h);
        f->open = qemu_new_net_queue(qemu_netfilter_pass_to_next, f);
        f->open_packets = 0;
    }
}

void distvm_output_packets_release(uint64_t epoch)
{
    for (guint i = 0; filters && i < filters->len; i++) {
        DistvmOutputFilter *f = g_ptr_array_index(filters, i);
        HeldEpoch *h;

        while ((h = g_queue_peek_head(&f->sealed)) && h->epoch <= epoch) {
            g_queue_pop_head(&f->sealed);
            trace_distvm_output_release(h->epoch, h->packets);
            held_epoch_end(f, h, true);
        }
    }
}

void distvm_output_rollback(uint64_t epoch)
{
    for (guint i = 0; filters && i < filters->len; i++) {
        DistvmOutputFilter *f = g_ptr_array_index(filters, i);
        GList *l = f->sealed.head;

        while (l) {
            HeldEpoch *h = l->data;
            GList *next = l->next;

            if (h->epoch > epoch) {
                held_epoch_end(f, h, false);
                g_queue_delete_link(&f->sealed, l);
            }
            l = next;
        }
        held_open_end(f, false);
    }
    distvm_output_disk_rollback(epoch);
}

void distvm_output_pause(bool paused)
{
    guest_paused = paused;
    for (guint i = 0; !paused && filters && i < filters->len; i++) {
        DistvmOutputFilter *f = g_ptr_array_index(filters, i);

        held_flush(NETFILTER(f), f->inbound, NETFILTER(f)->netdev);
    }
}

/* The packets of @epoch go once the disk writes of it did */
void distvm_output_release(uint64_t epoch)
{
    distvm_output_disk_release(epoch);
}

void distvm_output_stats(uint64_t *held, uint64_t *released)
{
    *held = held_packets;
    *released = released_packets;
}

/*
 * A filter on @backend, queue @queue of a NIC's backend, under @parent:
 * the QOM tree's /objects for queue 0, queue 0's filter for the others.
 * QEMU's filters take a backend's first queue only (netfilter_complete()
 * refuses a backend with several), and the backend's deletion takes its
 * first queue's filters away only; so the filter is made here as that
 * would make it, on each queue, and those of the other queues go with the
 * first's.  The pairs of a card that several nodes serve use a
 * multi-queue tap, each node its pairs' queues (distvm-netqueues.c).
 */
static Object *hold_queue(NetClientState *backend, int queue,
                          Object *parent, Error **errp)
{
    g_autofree char *id = queue ? g_strdup_printf("queue%d", queue) :
                          g_strdup_printf("distvm-output-%s", backend->name);
    Object *obj;
    NetFilterState *nf;

    if (get_vhost_net(backend)) {
        error_setg(errp, "network backend %s uses vhost, which sends the "
                   "guest's packets past QEMU", backend->name);
        return NULL;
    }
    obj = object_new(TYPE_DISTVM_OUTPUT_FILTER);
    nf = NETFILTER(obj);
    nf->netdev_id = g_strdup(backend->name);
    nf->netdev = backend;
    output_setup(nf, errp);
    if (*errp) {
        object_unref(obj);
        return NULL;
    }
    QTAILQ_INSERT_TAIL(&backend->filters, nf, next);
    object_property_add_child(parent, id, obj);
    object_unref(obj);
    return obj;
}

/* A filter on each queue of the backend that @nic sends to, if any */
static void hold_nic(NICState *nic, void *opaque)
{
    Error **errp = opaque;
    Object *first = NULL;

    for (int i = 0; i < MAX(nic->conf->peers.queues, 1) && !*errp; i++) {
        NetClientState *backend = qemu_get_subqueue(nic, i)->peer;

        if (!backend) {
            continue;
        }
        if (!first) {
            first = hold_queue(backend, i, object_get_objects_root(), errp);
        } else {
            hold_queue(backend, i, first, errp);
        }
    }
}

bool distvm_output_hold(Error **errp)
{
    Error *err = NULL;

    filters = g_ptr_array_new();
    qemu_foreach_nic(hold_nic, &err);
    if (err) {
        error_propagate_prepend(errp, err, "distvm: cannot hold the guest's "
                                "packets until their epoch commits: ");
        return false;
    }
    /* Home runs the disks */
    if (distvm_is_home(distvm_state()) && !distvm_output_disk_hold(&err)) {
        error_propagate_prepend(errp, err, "distvm: cannot hold the guest's "
                                "disk writes until their epoch commits: ");
        return false;
    }
    return true;
}
