/*
 * distvm: the queue pairs of a virtio-net card, served on several nodes
 *
 * -accel distvm,...,queue-nodes=ID/PAIR@NODE[:ID/PAIR@NODE...] (the same
 * on every node) has NODE serve queue pair PAIR of the multi-queue
 * virtio-net card ID, so that a vCPU's traffic leaves from its own host
 * and one card's bandwidth grows with the nodes.  The card itself runs
 * where device-nodes places it (home if it does not name it): that node
 * serves the other pairs and the control queue, and answers the guest's
 * reads of the card.  Every node keeps its copy of the card in step with
 * the card's node's, and the nodes that serve some of its pairs run
 * theirs:
 *
 * - The guest's writes to the card's registers (virtio's common and
 *   device configuration, the MSI-X table) are done by every node's
 *   copy, one after the other, before the vCPU goes on (distvm-io.c); so
 *   each copy has the guest's features, status, rings and MSI-X vectors,
 *   and every node knows whether the guest uses several pairs (without,
 *   the control queue is queue 2).  Its PCI configuration reaches every
 *   node as any placed device's does (distvm-devices.c).
 * - A notification of a pair's receive or transmit queue is sent to the
 *   pair's node only, which pops the ring there.
 * - The control queue's commands (the number of pairs in use, receive
 *   filters, offloads) are handled on the card's node, which sends each
 *   to the pairs' nodes first (NET_CTRL); they apply it to their copy.
 * - The backend must be a tap with one queue per pair (queues=N), opened
 *   on every node, on hosts whose taps reach the same network.  Each node
 *   keeps only the tap queues of the pairs it serves attached to the tap
 *   (TUNSETQUEUE), so that the host's kernel sends a flow's packets to
 *   the node whose queue sent it, and reads only those.
 * - Interrupts: each pair's node sends its queues' MSI-X messages; a
 *   pair's vector that the guest points at a vCPU of that node is
 *   delivered there, without a round trip.
 *
 * - A pair moves to another node (distvm-move-queue-pair, for instance
 *   when its node's network path goes down) by steps of NET_PAIR: home
 *   tells every node (MOVE), which from then on sends the pair's
 *   notifications to the new node; the node that served it stops, lets
 *   its backend queue go and tells the new node (TAKE), which takes the
 *   pair's rings up where the guest's used rings say it was left, with
 *   its own backend queue, and tells home (TAKEN).  A notification that
 *   still reaches a node that no longer serves the pair is passed on
 *   (KICK); one that reaches the new node before TAKE is covered by the
 *   look at the rings it makes then.  The new node must be the card's
 *   or serve another pair already, so that its copy of the card has
 *   applied the guest's control commands.
 * - Path failover: each node that may serve pairs watches its tap on its
 *   host (distvm-netpath.c) and tells home when it goes down or comes
 *   back up (NET_PAIR's PATH_DOWN and PATH_UP).  Home moves the pairs of
 *   a node whose path is down to the card's node, or else to another
 *   node that serves pairs, whose path is up; once the path is back, they
 *   move back to where they belong.  One pair of a card moves at a time.
 * - A node that joins the running guest learns from home where each pair
 *   is served (NET_PAIR STATE), and of the moves that begin meanwhile.
 *
 * The card must have MSI-X vectors; while the guest has MSI-X off (an
 * INTx line and its ISR are one per card), the card's node serves every
 * pair.  rss=on and hash=on are refused: virtio-net would steer packets
 * to the queues of pairs other nodes serve.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-distvm.h"
#include "qapi/qapi-events-distvm.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/iov.h"
#include "qemu/main-loop.h"
#include "hw/i386/apic-msidef.h"
#include "hw/i386/apic_internal.h"
#include "hw/i386/x86-iommu.h"
#include "hw/pci/msix.h"
#include "hw/virtio/virtio-pci.h"
#include "hw/virtio/virtio-net.h"
#include "net/net.h"
#include "net/tap.h"
#include "standard-headers/linux/virtio_pci.h"
#include "distvm-internal.h"
#include "trace.h"

/* A pair that the property names, until the machine exists */
typedef struct DistvmPairWanted {
    uint32_t pair;
    uint32_t node;
} DistvmPairWanted;

struct DistvmNetQueues {
    GArray *wanted;             /* DistvmPairWanted, until the setup */
    /* Once the machine exists: */
    VirtIOPCIProxy *proxy;
    VirtIONet *net;
    uint32_t pairs;             /* the card's queue pairs */
    uint32_t *node;             /* [pairs]: atomic, the node that serves each */
    uint32_t others;            /* the nodes but the card's that serve some */
    uint64_t *notified;         /* [2 * pairs]: atomic, handled here */
    bool applying;              /* BQL: a NET_CTRL of the card's node */
    /* BQL: [pairs], moving here: MOVE came, TAKE not yet */
    bool *taking;
    /* BQL: [pairs], the last of its moves this node knows of */
    uint32_t *move;
    /* BQL: [pairs], moving away: its last packet sent first */
    struct DistvmPairLeave *leaving;
    /* Home, BQL: the pair that moves (to @node[@moving]), or -1 */
    int moving;
    /*
     * Home, BQL: [pairs], the node each pair belongs on (queue-nodes, or
     * the last distvm-move-queue-pair), while its network path is up
     */
    uint32_t *placed;
    /*
     * Home, BQL, with queue-follow: [pairs], the node of the vCPU that the
     * guest points each pair's receive vector at, where the pair belongs
     * if that node may serve it, or UINT32_MAX; whether
     * distvm-move-queue-pair placed it, which then keeps it where it put
     * it; whether the vCPUs' placement changed (atomic: until then, the
     * pairs stay where queue-nodes puts them); and the timer that looks
     * at the vectors a moment after a vCPU moved or the guest wrote the
     * card's setting
     */
    uint32_t *follow;
    bool *pinned;
    bool following;
    QEMUTimer *follow_timer;
    int64_t follow_since;       /* atomic: the timer's first arming, in ms */
    Notifier vcpu_moved;
    /* Home, BQL: the nodes whose network path is down */
    uint64_t paths_down;
    /* This node's tap, if it may serve pairs; BQL: the state home knows */
    DistvmNetPath *path;
    bool path_told_up;
    /* Home: pairs_follow_paths() once a PCI configuration write went on */
    QEMUBH *follow_bh;
    /*
     * The guest's changes to this node's copy of the card's setting (its
     * registers, PCI configuration and control commands; atomic), their
     * number at the last SAVE (BQL), and at the last commit (atomic: read
     * by distvm_netqueues_changed() in any thread)
     */
    uint64_t changes;
    uint64_t changes_saved;
    uint64_t changes_committed;
    /* BQL: the guest rolled back; its rings' places are to be read again */
    bool rolled_back;
    QEMUBH *kick_bh;            /* the pairs served here look at their rings */
};

/*
 * How long after a vCPU's move, or the guest's last write to a card's
 * setting, home looks at where the pairs' receive vectors point
 * (queue-follow), so that a burst of moves or writes moves each pair once
 */
#define DISTVM_PAIR_FOLLOW_DELAY_MS 200
/* ... but no later than this after the first of them */
#define DISTVM_PAIR_FOLLOW_MAX_MS   1000

/* A pair that this node stops serving: its TAKE waits for its last send */
typedef struct DistvmPairLeave {
    DistvmPlacedDevice *pd;
    uint32_t pair;
    QEMUTimer *timer;
    int64_t give_up_ms;         /* QEMU_CLOCK_REALTIME */
} DistvmPairLeave;

static bool parse_one(DistvmState *s, const char *item, Error **errp)
{
    const char *at = strrchr(item, '@');
    const char *slash = at ? g_strrstr_len(item, at - item, "/") : NULL;
    const char *end = NULL;
    g_autofree char *card = NULL;
    DistvmPlacedDevice *pd;
    DistvmPairWanted w;
    unsigned int pair;
    uint64_t node;

    if (!at || !slash || slash == item || !at[1] ||
        qemu_strtoui(slash + 1, &end, 10, &pair) || end != at ||
        qemu_strtou64(at + 1, NULL, 10, &node)) {
        error_setg(errp, "distvm: queue-nodes=%s: '%s' is not ID/PAIR@NODE "
                   "(PAIR and NODE are numbers)", s->queue_nodes, item);
        return false;
    }
    if (node >= s->start_nodes) {
        error_setg(errp, "distvm: queue-nodes=%s: '%s': there is no node %"
                   PRIu64 " at start (the cluster starts with nodes 0 to %"
                   PRIu32 ")", s->queue_nodes, item, node,
                   s->start_nodes - 1);
        return false;
    }
    card = g_strndup(item, slash - item);
    pd = distvm_devices_card(s, card);
    if (!pd->queues) {
        pd->queues = g_new0(DistvmNetQueues, 1);
        pd->queues->wanted = g_array_new(false, false,
                                         sizeof(DistvmPairWanted));
    }
    for (guint i = 0; i < pd->queues->wanted->len; i++) {
        if (g_array_index(pd->queues->wanted, DistvmPairWanted, i).pair ==
            pair) {
            error_setg(errp, "distvm: queue-nodes=%s: queue pair %u of '%s' "
                       "is listed twice", s->queue_nodes, pair, card);
            return false;
        }
    }
    w.pair = pair;
    w.node = node;
    g_array_append_val(pd->queues->wanted, w);
    return true;
}

bool distvm_netqueues_init(DistvmState *s, Error **errp)
{
    g_auto(GStrv) items = NULL;

    if (!s->queue_nodes || !*s->queue_nodes) {
        return true;
    }
    items = g_strsplit(s->queue_nodes, ":", -1);
    for (int i = 0; items[i]; i++) {
        if (!parse_one(s, items[i], errp)) {
            return false;
        }
    }
    return true;
}

/* The card whose model is @n, if its pairs are served on several nodes */
static DistvmPlacedDevice *card_of(DistvmState *s, VirtIONet *n)
{
    for (uint32_t i = 0; i < distvm_devices_count(s); i++) {
        DistvmPlacedDevice *pd = distvm_devices_get(s, i);

        if (pd->queues && pd->queues->net == n) {
            return pd;
        }
    }
    return NULL;
}

/*
 * The next card whose pairs several nodes serve, from placed device *@i
 * on, or NULL: for (uint32_t i = 0; (pd = next_card(s, &i));)
 */
static DistvmPlacedDevice *next_card(DistvmState *s, uint32_t *i)
{
    while (*i < distvm_devices_count(s)) {
        DistvmPlacedDevice *pd = distvm_devices_get(s, (*i)++);

        if (pd->queues && pd->queues->net) {
            return pd;
        }
    }
    return NULL;
}

/*
 * The node that serves @pair of @pd's card: the one queue-nodes names,
 * once the guest turned MSI-X on; until then the card's, which has its
 * one INTx line and its ISR
 */
static uint32_t pair_node(DistvmPlacedDevice *pd, uint32_t pair)
{
    DistvmNetQueues *q = pd->queues;

    return msix_enabled(&q->proxy->pci_dev) ? qatomic_read(&q->node[pair]) :
           pd->node;
}

/* May @node serve pairs of @pd's card: is it the card's, or queue-nodes'? */
static bool may_serve(DistvmPlacedDevice *pd, uint32_t node)
{
    return node == pd->node || (pd->queues->others & BIT(node));
}

/*
 * virtio_net_queue_pair_hook: does this node serve pair @index of @n, or
 * its control queue (@index max_queue_pairs)?  The card's node handles
 * the control queue's commands; the others apply them (NET_CTRL), and
 * never pop the queue, not even when their ioeventfds start and kick
 * every queue.
 */
static bool pair_here(VirtIONet *n, int index)
{
    DistvmState *s = distvm_state();
    DistvmPlacedDevice *pd = card_of(s, n);

    if (!pd) {
        return true;
    }
    if (index >= pd->queues->pairs) {
        return pd->node == s->node_id;
    }
    return pair_node(pd, index) == s->node_id && !pd->queues->taking[index];
}

/*
 * In any thread: the guest changed this node's copy of @pd's setting
 * (@how), which a lost node's part taken over would not roll back on the
 * other nodes until an epoch commits (distvm_netqueues_changed())
 */
static void card_changed(DistvmPlacedDevice *pd, const char *how)
{
    trace_distvm_netqueue_changed(pd->name, how,
                                  qatomic_fetch_inc(&pd->queues->changes) + 1);
}

/*
 * virtio_net_ctrl_hook, under the BQL: the card's node is about to handle
 * a command of the control queue; the pairs' nodes apply it first.
 */
static void ctrl_command(VirtIONet *n, const struct iovec *out_sg,
                         unsigned out_num)
{
    DistvmState *s = distvm_state();
    DistvmPlacedDevice *pd = card_of(s, n);
    g_autofree uint8_t *cmd = NULL;
    g_autofree char *path = NULL;
    size_t len;

    if (!pd || pd->queues->applying || pd->node != s->node_id ||
        !pd->queues->others) {
        return;
    }
    card_changed(pd, "control command");
    len = iov_size(out_sg, out_num);
    if (len > DISTVM_NET_CTRL_MAX) {
        /* A MAC table of over 10,000 addresses: the pairs' nodes keep theirs */
        error_report_once("distvm: card %s: a control command of %zu bytes "
                          "is not applied by the nodes of its other pairs "
                          "(at most %u)", pd->name, len, DISTVM_NET_CTRL_MAX);
        return;
    }
    cmd = g_malloc(len);
    iov_to_buf(out_sg, out_num, 0, cmd, len);
    path = object_get_canonical_path(OBJECT(pd->dev));
    trace_distvm_netqueue_ctrl_send(pd->name, len, pd->queues->others);
    for (uint32_t node = 0; node < s->nodes; node++) {
        g_autoptr(GByteArray) m = NULL;

        if (!(pd->queues->others & BIT(node))) {
            continue;
        }
        m = g_byte_array_new();
        distvm_wire_net_ctrl(m, s->node_id, path, cmd, len);
        distvm_send(s, node, m);
        distvm_flow_sent(s, BIT(node));
    }
}

/* Under the BQL: the card's node sent its card's control command */
static void ctrl_received(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgNetCtrl *c = &msg->u.net_ctrl;
    PCIDevice *dev = (PCIDevice *)
        object_dynamic_cast(object_resolve_path(c->path, NULL),
                            TYPE_PCI_DEVICE);
    DistvmPlacedDevice *pd = distvm_devices_find(s, dev);
    virtio_net_ctrl_ack status = VIRTIO_NET_ERR;
    struct iovec in = { .iov_base = &status, .iov_len = sizeof(status) };
    /* virtio-net reads the command; it writes only the status */
    struct iovec out = { .iov_base = (void *)c->data, .iov_len = c->len };

    if (!pd || !pd->queues || !pd->queues->net ||
        pd->node != msg->hdr.src || !(pd->queues->others & BIT(s->node_id))) {
        distvm_msg_refused(s, msg->hdr.src, "NET_CTRL for %s, which is no "
                           "card of node %" PRIu32 " whose queue pairs "
                           "node %" PRIu32 " serves", c->path, msg->hdr.src,
                           s->node_id);
        return;
    }
    card_changed(pd, "control command of its node");
    pd->queues->applying = true;
    virtio_net_handle_ctrl_iov(VIRTIO_DEVICE(pd->queues->net), &in, 1,
                               &out, 1);
    pd->queues->applying = false;
    trace_distvm_netqueue_ctrl_applied(pd->name, msg->hdr.src, c->len,
                                       status);
}

/* ---- a pair that moves to another node ---- */

/* How long a node that gives a pair up waits for the tap to take its last */
#define DISTVM_PAIR_SEND_WAIT_MS    1000

/* Is pair @pair of @q's card in use (the guest's number of pairs)? */
static bool pair_used(DistvmNetQueues *q, uint32_t pair)
{
    return pair < (q->net->multiqueue ? q->net->curr_queue_pairs : 1);
}

/* Send step @step of move @move of @pair of @pd's card to @dest */
static void pair_send(DistvmState *s, DistvmPlacedDevice *pd, uint32_t dest,
                      uint32_t step, uint32_t pair, uint32_t node,
                      uint32_t queue, uint32_t move)
{
    g_autofree char *path = object_get_canonical_path(OBJECT(pd->dev));
    g_autoptr(GByteArray) m = g_byte_array_new();

    trace_distvm_netqueue_move_send(pd->name, pair, move, step, dest);
    distvm_wire_net_pair(m, s->node_id, path, step, pair, node, queue, move);
    distvm_send(s, dest, m);
}

static void pairs_follow_paths(DistvmState *s, DistvmPlacedDevice *pd);
static void taps_attach(DistvmState *s, DistvmPlacedDevice *pd);

/* Read @pair's rings' places again from the guest's used rings */
static void pair_rings_reread(VirtIODevice *vdev, uint32_t pair)
{
    for (uint32_t i = 2 * pair; i <= 2 * pair + 1; i++) {
        virtio_queue_restore_last_avail_idx(vdev, i);
        virtio_queue_update_used_idx(vdev, i);
        virtio_queue_invalidate_signalled_used(vdev, i);
    }
}

/* Look at both rings of @pair, for notifications that went elsewhere */
static void pair_kick(VirtIODevice *vdev, uint32_t pair)
{
    virtio_queue_notify(vdev, 2 * pair);
    virtio_queue_notify(vdev, 2 * pair + 1);
}

/* Home: @node serves @pair of @pd's card now; the next may move */
static void pair_taken(DistvmState *s, DistvmPlacedDevice *pd, uint32_t pair,
                       uint32_t node)
{
    pd->queues->moving = -1;
    qapi_event_send_distvm_queue_pair_moved(pd->name, pair, node);
    pairs_follow_paths(s, pd);
}

/*
 * TAKE of move @move: serve @pair of @pd's card from where the guest's
 * rings say its last node left it (that node stopped, and had sent what
 * it took from the transmit ring), with this node's queue of the backend;
 * then look at both rings, for the notifications that went elsewhere
 * meanwhile.
 */
static void pair_take(DistvmState *s, DistvmPlacedDevice *pd, uint32_t pair,
                      uint32_t move)
{
    DistvmNetQueues *q = pd->queues;
    VirtIODevice *vdev = VIRTIO_DEVICE(q->net);

    pair_rings_reread(vdev, pair);
    q->move[pair] = move;
    qatomic_set(&q->node[pair], s->node_id);
    q->taking[pair] = false;
    if (pair_used(q, pair) && pair_node(pd, pair) == s->node_id &&
        tap_enable(qemu_get_subqueue(q->net->nic, pair)->peer) < 0) {
        error_report("distvm: card %s: cannot attach queue %" PRIu32 " of "
                     "its tap, for the pair that moved here", pd->name, pair);
    }
    trace_distvm_netqueue_taken(pd->name, pair, move);
    pair_kick(vdev, pair);
    if (distvm_is_home(s)) {
        pair_taken(s, pd, pair, s->node_id);
    } else {
        pair_send(s, pd, distvm_home(s), DISTVM_NET_PAIR_TAKEN, pair,
                  s->node_id, 2 * pair, move);
    }
}

/*
 * This node no longer serves a pair: once the backend took the last
 * packet it was given (virtio-net completes it then; one it still holds
 * after DISTVM_PAIR_SEND_WAIT_MS is dropped), let the backend's queue go,
 * with the packets it held for this node's copy, and tell the pair's new
 * node to take it.
 */
static void pair_hand_off(void *opaque)
{
    DistvmPairLeave *l = opaque;
    DistvmState *s = distvm_state();
    DistvmNetQueues *q = l->pd->queues;
    NetClientState *nc = qemu_get_subqueue(q->net->nic, l->pair);
    uint32_t to = qatomic_read(&q->node[l->pair]);
    int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);

    if (q->net->vqs[l->pair].async_tx.elem) {
        if (now < l->give_up_ms) {
            timer_mod(l->timer, now + 1);
            return;
        }
        qemu_purge_queued_packets(nc);
    }
    qemu_purge_queued_packets(nc->peer);
    tap_disable(nc->peer);
    pair_send(s, l->pd, to, DISTVM_NET_PAIR_TAKE, l->pair, to, 2 * l->pair,
              q->move[l->pair]);
}

/* MOVE @move, on every node: @pair of @pd's card moves to @to */
static void pair_move(DistvmState *s, DistvmPlacedDevice *pd, uint32_t pair,
                      uint32_t to, uint32_t move)
{
    DistvmNetQueues *q = pd->queues;
    uint32_t from = qatomic_read(&q->node[pair]);
    VirtIONetQueue *nq = &q->net->vqs[pair];
    DistvmPairLeave *l = &q->leaving[pair];

    trace_distvm_netqueue_move(pd->name, pair, move, from, to);
    if (move <= q->move[pair]) {
        return;                 /* its TAKE, or a later move's, came first */
    }
    q->move[pair] = move;
    qatomic_set(&q->node[pair], to);
    q->taking[pair] = to == s->node_id;
    if (from != s->node_id || to == s->node_id) {
        return;
    }
    /* Its transmission stops here (virtio-net asks pair_here()) */
    if (nq->tx_timer) {
        timer_del(nq->tx_timer);
    }
    if (nq->tx_bh) {
        qemu_bh_cancel(nq->tx_bh);
    }
    nq->tx_waiting = 0;
    if (!l->timer) {
        l->timer = timer_new_ms(QEMU_CLOCK_REALTIME, pair_hand_off, l);
    }
    l->give_up_ms = qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                    DISTVM_PAIR_SEND_WAIT_MS;
    pair_hand_off(l);
}

/*
 * Can home move a pair of @pd's card now?  The cluster runs, the guest
 * has MSI-X on and split rings, and no pair of the card moves.
 */
static bool pair_movable(DistvmState *s, DistvmPlacedDevice *pd,
                         Error **errp)
{
    DistvmNetQueues *q = pd->queues;

    if (qatomic_read(&s->state) != DISTVM_CLUSTER_STATE_RUNNING ||
        distvm_recovery_busy(s)) {
        error_setg(errp, "distvm: the cluster is not running");
        return false;
    }
    if (!msix_enabled(&q->proxy->pci_dev)) {
        error_setg(errp, "distvm: the guest has MSI-X off on '%s': its node "
                   "serves every pair", pd->name);
        return false;
    }
    /* Restoring a packed ring's place takes more than its used index */
    if (virtio_vdev_has_feature(VIRTIO_DEVICE(q->net),
                                VIRTIO_F_RING_PACKED)) {
        error_setg(errp, "distvm: the guest uses packed rings on '%s' "
                   "(packed=on), whose pairs do not move", pd->name);
        return false;
    }
    if (q->moving >= 0) {
        error_setg(errp, "distvm: a queue pair of '%s' is moving already",
                   pd->name);
        return false;
    }
    return true;
}

/* Home: move @pair of @pd's card to @to (pair_movable()) */
static void pair_start(DistvmState *s, DistvmPlacedDevice *pd, uint32_t pair,
                       uint32_t to)
{
    DistvmNetQueues *q = pd->queues;
    uint32_t move = q->move[pair] + 1;

    q->moving = pair;
    /* A node joining may have been told where the pair was (STATE) */
    for (uint32_t n = 0; n < s->nodes; n++) {
        if (n != s->node_id && (distvm_node_present(s, n) ||
                                n == qatomic_read(&s->joining))) {
            pair_send(s, pd, n, DISTVM_NET_PAIR_MOVE, pair, to, 2 * pair,
                      move);
        }
    }
    pair_move(s, pd, pair, to, move);
}

/* Home: may @node serve pairs of @pd's card, its network path up? */
static bool path_usable(DistvmState *s, DistvmPlacedDevice *pd,
                        uint32_t node)
{
    DistvmNetQueues *q = pd->queues;

    return distvm_node_usable(s, node) && may_serve(pd, node) &&
           !(q->paths_down & BIT(node));
}

/*
 * The vCPU that an MSI message to @addr interrupts: the first whose local
 * APIC its destination reaches, as hw/intc/apic.c delivers it (every node
 * mirrors each LAPIC's addressing), or NULL for an address outside the
 * interrupt window, a physical broadcast, or with interrupt remapping,
 * whose tables say
 */
static CPUState *msi_vcpu(uint64_t addr)
{
    X86IOMMUState *iommu = x86_iommu_get_default();
    uint8_t dest = (addr & MSI_ADDR_DEST_ID_MASK) >> MSI_ADDR_DEST_ID_SHIFT;
    uint8_t dest_mode = (addr >> MSI_ADDR_DEST_MODE_SHIFT) & 1;

    if ((iommu && x86_iommu_ir_supported(iommu)) ||
        (addr & ~(uint64_t)0xfffff) != APIC_DEFAULT_ADDRESS ||
        (dest_mode == APIC_DESTMODE_PHYSICAL && dest == 0xff)) {
        return NULL;
    }
    return apic_first_destination(dest, dest_mode);
}

/*
 * The vCPU that @pd's card interrupts for @pair's receive queue, or NULL
 * if it has no vector that points at one (the guest has MSI-X off, or the
 * vector masked while it sets it)
 */
static CPUState *pair_vcpu(DistvmPlacedDevice *pd, uint32_t pair)
{
    PCIDevice *dev = &pd->queues->proxy->pci_dev;
    unsigned vector = virtio_queue_vector(VIRTIO_DEVICE(pd->queues->net),
                                          2 * pair);

    if (!msix_enabled(dev) || vector >= dev->msix_entries_nr ||
        msix_is_masked(dev, vector)) {
        return NULL;
    }
    return msi_vcpu(msix_get_message(dev, vector).address);
}

/*
 * Home: the node @pair of @pd's card belongs on: its vCPU's
 * (queue-follow), if that node may serve it; else the one queue-nodes or
 * the last distvm-move-queue-pair put it on
 */
static uint32_t pair_belongs(DistvmPlacedDevice *pd, uint32_t pair)
{
    DistvmNetQueues *q = pd->queues;

    if (q->follow && q->follow[pair] != UINT32_MAX &&
        may_serve(pd, q->follow[pair])) {
        return q->follow[pair];
    }
    return q->placed[pair];
}

/*
 * Home: the node that should serve @pair of @pd's card: the one it belongs
 * on (pair_belongs()) while that node's path is up; else the one that
 * serves it now, if its path is up; else the card's node, or the first
 * node that serves pairs, whose path is up.  If no path is up, it stays.
 */
static uint32_t path_node(DistvmState *s, DistvmPlacedDevice *pd,
                          uint32_t pair)
{
    DistvmNetQueues *q = pd->queues;
    uint32_t now = qatomic_read(&q->node[pair]);
    uint32_t belongs = pair_belongs(pd, pair);

    if (path_usable(s, pd, belongs)) {
        return belongs;
    }
    if (path_usable(s, pd, now)) {
        return now;
    }
    if (path_usable(s, pd, pd->node)) {
        return pd->node;
    }
    for (uint32_t n = 0; n < s->nodes; n++) {
        if (path_usable(s, pd, n)) {
            return n;
        }
    }
    return now;
}

/*
 * Home, under the BQL: move the first pair of @pd's card that is not
 * where path_node() says it should be, if a pair can move now (its TAKEN
 * calls this again)
 */
static void pairs_follow_paths(DistvmState *s, DistvmPlacedDevice *pd)
{
    DistvmNetQueues *q = pd->queues;

    if (!distvm_is_home(s) || !pair_movable(s, pd, NULL)) {
        return;
    }
    for (uint32_t i = 0; i < q->pairs; i++) {
        uint32_t from = qatomic_read(&q->node[i]);
        uint32_t to = path_node(s, pd, i);

        if (to != from) {
            trace_distvm_netqueue_failover(pd->name, i, from, to);
            pair_start(s, pd, i, to);
            return;
        }
    }
}

/* Home, under the BQL: @node's network path for @pd's card is @up now */
static void path_changed_at(DistvmState *s, DistvmPlacedDevice *pd,
                            uint32_t node, bool up)
{
    DistvmNetQueues *q = pd->queues;

    if (up == !(q->paths_down & BIT(node))) {
        return;
    }
    trace_distvm_netqueue_path(pd->name, node, up);
    if (up) {
        q->paths_down &= ~BIT(node);
    } else {
        q->paths_down |= BIT(node);
    }
    qapi_event_send_distvm_network_path(pd->name, node, up);
    pairs_follow_paths(s, pd);
}

/*
 * Under the BQL: once the cluster runs, tell home of this node's path for
 * @pd's card, if home has not heard of its state
 */
static void path_tell(DistvmState *s, DistvmPlacedDevice *pd)
{
    DistvmNetQueues *q = pd->queues;
    bool up;

    if (!q->path ||
        qatomic_read(&s->state) != DISTVM_CLUSTER_STATE_RUNNING) {
        return;
    }
    up = distvm_netpath_up(q->path);
    if (distvm_is_home(s)) {
        path_changed_at(s, pd, s->node_id, up);
    } else if (up != q->path_told_up) {
        q->path_told_up = up;
        pair_send(s, pd, distvm_home(s), up ? DISTVM_NET_PAIR_PATH_UP :
                  DISTVM_NET_PAIR_PATH_DOWN, 0, s->node_id, 0, 0);
    }
}

/* distvm-netpath.c: the tap of this node went down, or came back up */
static void path_changed(void *opaque)
{
    path_tell(distvm_state(), opaque);
}

static void follow_paths_bh(void *opaque)
{
    pairs_follow_paths(distvm_state(), opaque);
}

/*
 * Home, queue-follow, a moment after a vCPU moved or the guest set the
 * card: where do the guest's receive vectors of @opaque's pairs in use
 * point?  Move the pairs there, if those nodes may serve them; the
 * others stay where they belong.
 */
static void follow_vcpus(void *opaque)
{
    DistvmPlacedDevice *pd = opaque;
    DistvmState *s = distvm_state();
    DistvmNetQueues *q = pd->queues;

    if (!distvm_is_home(s)) {
        return;
    }
    for (uint32_t i = 0; i < q->pairs; i++) {
        CPUState *cs;
        uint32_t node;

        if (q->pinned[i] || !pair_used(q, i)) {
            continue;
        }
        cs = pair_vcpu(pd, i);
        node = cs ? distvm_vcpu_node(s, cs->cpu_index) : UINT32_MAX;
        if (node != UINT32_MAX && may_serve(pd, node) &&
            node != q->follow[i]) {
            trace_distvm_netqueue_follow(pd->name, i, node);
            q->follow[i] = node;
        }
    }
    pairs_follow_paths(s, pd);
}

/*
 * Any thread, once a vCPU moved (queue-follow): a vCPU moved, or the
 * guest may have pointed a vector of @pd's card at another vCPU (Linux
 * does at the vector's first interrupt after it set its affinity); home
 * looks at the vectors in a moment
 */
static void follow_later(DistvmState *s, DistvmPlacedDevice *pd)
{
    DistvmNetQueues *q = pd->queues;
    int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);

    if (!q->follow_timer || !qatomic_read(&q->following) ||
        !distvm_is_home(s)) {
        return;
    }
    if (!timer_pending(q->follow_timer)) {
        qatomic_set(&q->follow_since, now);
    }
    /* Later, unless moves or writes that never pause held it back long */
    if (now - qatomic_read(&q->follow_since) < DISTVM_PAIR_FOLLOW_MAX_MS) {
        timer_mod(q->follow_timer, now + DISTVM_PAIR_FOLLOW_DELAY_MS);
    }
}

/* distvm_placement_notify(): a vCPU moved, maybe away from its pairs */
static void follow_vcpu_moved(Notifier *n, void *data)
{
    DistvmNetQueues *q = container_of(n, DistvmNetQueues, vcpu_moved);
    DistvmPlacementChange *what = data;
    DistvmState *s = distvm_state();

    if (*what == DISTVM_PLACEMENT_VCPU) {
        qatomic_set(&q->following, true);
        follow_later(s, card_of(s, q->net));
    }
}

void distvm_netqueues_cluster_running(DistvmState *s)
{
    DistvmPlacedDevice *pd;

    for (uint32_t i = 0; (pd = next_card(s, &i));) {
        path_tell(s, pd);
    }
}

/* The card @path names, if its pairs are served on several nodes */
static DistvmPlacedDevice *card_at(DistvmState *s, const char *path)
{
    PCIDevice *dev = (PCIDevice *)
        object_dynamic_cast(object_resolve_path(path, NULL),
                            TYPE_PCI_DEVICE);
    DistvmPlacedDevice *pd = distvm_devices_find(s, dev);

    return pd && pd->queues && pd->queues->net ? pd : NULL;
}

/*
 * Home, to node @node, which joins: where each pair of each card is
 * served now, and the last of its moves (NET_PAIR STATE).  The node's
 * copies started where queue-nodes put the pairs, which moves, paths
 * and lost nodes may have changed since.
 */
void distvm_netqueues_send_state(DistvmState *s, uint32_t node)
{
    DistvmPlacedDevice *pd;

    for (uint32_t i = 0; (pd = next_card(s, &i));) {
        DistvmNetQueues *q = pd->queues;

        for (uint32_t pair = 0; pair < q->pairs; pair++) {
            pair_send(s, pd, node, DISTVM_NET_PAIR_STATE, pair,
                      qatomic_read(&q->node[pair]), 2 * pair, q->move[pair]);
        }
    }
}

/*
 * A node that joins, from home: node @np->node serves pair @np->pair of
 * @pd's card.  Home moves pairs only to the card's node and to the nodes
 * of queue-nodes (start nodes, of which a node that joins is none) that
 * were never lost (a node that serves pairs cannot be drained).
 */
static void pair_state(DistvmState *s, DistvmPlacedDevice *pd,
                       const DistvmMsg *msg)
{
    const DistvmMsgNetPair *np = &msg->u.net_pair;
    DistvmNetQueues *q = pd->queues;

    if (distvm_node_present(s, s->node_id)) {
        distvm_msg_refused(s, msg->hdr.src, "NET_PAIR STATE of pair %"
                           PRIu32 " of %s, to a node that joined already",
                           np->pair, np->path);
        return;
    }
    if (np->pair >= q->pairs || !distvm_node_present(s, np->node) ||
        !may_serve(pd, np->node)) {
        distvm_msg_refused(s, msg->hdr.src, "NET_PAIR STATE of pair %"
                           PRIu32 " of %s on node %" PRIu32 ", which is no "
                           "pair of it or no node that may serve it",
                           np->pair, np->path, np->node);
        return;
    }
    trace_distvm_netqueue_pair(pd->name, np->pair, np->node);
    /* As home's: the nodes lost since the start serve none */
    qatomic_set(&q->others, q->others & qatomic_read(&s->present));
    qatomic_set(&q->node[np->pair], np->node);
    q->move[np->pair] = np->move;
    q->taking[np->pair] = false;
    taps_attach(s, pd);
}

/* Under the BQL: a step of a pair's move */
static void pair_received(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgNetPair *np = &msg->u.net_pair;
    DistvmPlacedDevice *pd = card_at(s, np->path);
    DistvmNetQueues *q = pd ? pd->queues : NULL;
    uint32_t pair = np->pair;

    /* A card of device-nodes, whose node's path changed (distvm-devpath.c) */
    if (!q && distvm_is_home(s) && np->node == msg->hdr.src &&
        (np->step == DISTVM_NET_PAIR_PATH_DOWN ||
         np->step == DISTVM_NET_PAIR_PATH_UP)) {
        DistvmPlacedDevice *d = distvm_devices_find(s, (PCIDevice *)
            object_dynamic_cast(object_resolve_path(np->path, NULL),
                                TYPE_PCI_DEVICE));

        if (d && distvm_devpath_changed(s, d, np->node,
                                        np->step == DISTVM_NET_PAIR_PATH_UP)) {
            return;
        }
    }
    if (q && np->step == DISTVM_NET_PAIR_STATE) {
        pair_state(s, pd, msg);
        return;
    }
    if (!q || pair >= q->pairs || !distvm_node_present(s, np->node) ||
        !may_serve(pd, np->node)) {
        distvm_msg_refused(s, msg->hdr.src, "NET_PAIR for pair %" PRIu32
                           " of %s to node %" PRIu32 ", which is no pair "
                           "of a card whose pairs several nodes serve, or "
                           "no node that may serve it", pair, np->path,
                           np->node);
        return;
    }
    switch (np->step) {
    case DISTVM_NET_PAIR_MOVE:
        pair_move(s, pd, pair, np->node, np->move);
        break;
    case DISTVM_NET_PAIR_TAKE:
        if (np->move == q->move[pair] && !q->taking[pair] &&
            qatomic_read(&q->node[pair]) == s->node_id) {
            /* A move that a rollback ended (distvm_netqueues_rolled_back) */
            trace_distvm_netqueue_taken(pd->name, pair, np->move);
            return;
        }
        /*
         * For the move this node waits for, or one it has not heard of,
         * from a node that served the pair.  Never for a pair this node
         * serves and does not wait for: a move to it comes after a move
         * away from it, which this node hears first.
         */
        if (np->move < q->move[pair] ||
            (np->move == q->move[pair] && !q->taking[pair]) ||
            (qatomic_read(&q->node[pair]) == s->node_id &&
             !q->taking[pair]) ||
            !may_serve(pd, msg->hdr.src)) {
            distvm_msg_refused(s, msg->hdr.src, "NET_PAIR TAKE of pair %"
                               PRIu32 " of %s for its move %" PRIu32 ", "
                               "which this node does not wait for from "
                               "node %" PRIu32, pair, np->path, np->move,
                               msg->hdr.src);
            return;
        }
        pair_take(s, pd, pair, np->move);
        break;
    case DISTVM_NET_PAIR_KICK:
        if (pair_here(q->net, pair)) {
            virtio_queue_notify(VIRTIO_DEVICE(q->net), np->queue);
        } else if (!q->taking[pair] && q->move[pair] > np->move) {
            /* It moved on since the sender knew: pass it on again */
            pair_send(s, pd, qatomic_read(&q->node[pair]),
                      DISTVM_NET_PAIR_KICK, pair,
                      qatomic_read(&q->node[pair]), np->queue,
                      q->move[pair]);
        }
        /* else its TAKE, still to come, looks at the rings */
        break;
    case DISTVM_NET_PAIR_TAKEN:
        if (q->moving != (int)pair &&
            qatomic_read(&q->node[pair]) == np->node &&
            q->move[pair] == np->move) {
            /* A move that a rollback ended (distvm_netqueues_rolled_back) */
            return;
        }
        if (q->moving != (int)pair ||
            qatomic_read(&q->node[pair]) != np->node ||
            q->move[pair] != np->move) {
            distvm_msg_refused(s, msg->hdr.src, "NET_PAIR TAKEN of pair %"
                               PRIu32 " of %s by node %" PRIu32 " for move "
                               "%" PRIu32 ", which is not under way", pair,
                               np->path, np->node, np->move);
            return;
        }
        pair_taken(s, pd, pair, np->node);
        break;
    case DISTVM_NET_PAIR_PATH_DOWN:
    case DISTVM_NET_PAIR_PATH_UP:
        path_changed_at(s, pd, np->node, np->step == DISTVM_NET_PAIR_PATH_UP);
        break;
    case DISTVM_NET_PAIR_STATE:     /* (above) */
        break;
    }
}

void qmp_distvm_move_queue_pair(const char *device, uint32_t pair,
                                uint32_t node, Error **errp)
{
    DistvmState *s = distvm_qmp_home("distvm-move-queue-pair", errp);
    DistvmPlacedDevice *pd = NULL;
    DistvmNetQueues *q;

    if (!s) {
        return;
    }
    for (uint32_t i = 0; i < distvm_devices_count(s); i++) {
        DistvmPlacedDevice *d = distvm_devices_get(s, i);

        if (d->queues && d->queues->net && !strcmp(d->name, device)) {
            pd = d;
        }
    }
    if (!pd) {
        error_setg(errp, "distvm: '%s' is no card whose queue pairs several "
                   "nodes serve (queue-nodes)", device);
        return;
    }
    q = pd->queues;
    if (pair >= q->pairs) {
        error_setg(errp, "distvm: '%s' has no queue pair %" PRIu32 " (it has "
                   "pairs 0 to %" PRIu32 ")", device, pair, q->pairs - 1);
        return;
    }
    if (!distvm_node_usable(s, node) || !may_serve(pd, node)) {
        error_setg(errp, "distvm: node %" PRIu32 " cannot serve pairs of "
                   "'%s': they can move to its node (%" PRIu32 ") or to a "
                   "node that serves another of its pairs", node, device,
                   pd->node);
        return;
    }
    if (q->paths_down & BIT(node)) {
        error_setg(errp, "distvm: the network path of node %" PRIu32 " is "
                   "down: its tap for '%s' is down or has no carrier", node,
                   device);
        return;
    }
    if (!pair_movable(s, pd, errp)) {
        return;
    }
    q->placed[pair] = node;
    if (q->pinned) {
        q->pinned[pair] = true;
        q->follow[pair] = UINT32_MAX;
    }
    if (qatomic_read(&q->node[pair]) == node) {
        qapi_event_send_distvm_queue_pair_moved(pd->name, pair, node);
        return;
    }
    pair_start(s, pd, pair, node);
}

/*
 * An IO_REQ of another node notified queue @queue of @pd's card, whose
 * pair node @node serves as this node knows (a move made the other
 * node's knowledge old): pass the notification on.  False if @queue is
 * no queue of a pair.
 */
bool distvm_netqueues_pass_on(DistvmState *s, DistvmPlacedDevice *pd,
                              int queue, uint32_t node)
{
    if (!pd->queues || queue < 0) {
        return false;
    }
    pair_send(s, pd, node, DISTVM_NET_PAIR_KICK, queue / 2, node, queue,
              pd->queues->move[queue / 2]);
    return true;
}

static const DistvmMsgHandler netqueues_handlers[] = {
    { DISTVM_MSG_NET_CTRL, .main_loop = ctrl_received },
    { DISTVM_MSG_NET_PAIR, .main_loop = pair_received },
};

void distvm_netqueues_register(DistvmState *s)
{
    distvm_msg_handlers_register(s, netqueues_handlers,
                                 ARRAY_SIZE(netqueues_handlers));
}

/* Is @pd's device a card whose pairs can be served on several nodes? */
static bool card_check(DistvmPlacedDevice *pd, Error **errp)
{
    DistvmNetQueues *q = pd->queues;
    VirtIOPCIProxy *proxy = (VirtIOPCIProxy *)
        object_dynamic_cast(OBJECT(pd->dev), TYPE_VIRTIO_PCI);
    VirtIODevice *vdev = proxy ? virtio_bus_get_device(&proxy->bus) : NULL;
    VirtIONet *n = vdev ? (VirtIONet *)
        object_dynamic_cast(OBJECT(vdev), TYPE_VIRTIO_NET) : NULL;

    if (!n) {
        error_setg(errp, "distvm: queue-nodes: '%s' (%s) is not a virtio-net "
                   "card", pd->name, object_get_typename(OBJECT(pd->dev)));
        return false;
    }
    if (!virtio_has_feature(n->host_features, VIRTIO_NET_F_MQ) ||
        n->max_queue_pairs < 2) {
        error_setg(errp, "distvm: queue-nodes: '%s' has one queue pair: "
                   "give it mq=on and its netdev queues=N", pd->name);
        return false;
    }
    if (virtio_has_feature(n->host_features, VIRTIO_NET_F_RSS) ||
        virtio_has_feature(n->host_features, VIRTIO_NET_F_HASH_REPORT)) {
        error_setg(errp, "distvm: queue-nodes: '%s' has rss=on or hash=on, "
                   "which steer received packets to other pairs' queues, "
                   "that other nodes serve", pd->name);
        return false;
    }
    if (distvm_state()->replicas &&
        virtio_has_feature(vdev->host_features, VIRTIO_F_RING_PACKED)) {
        error_setg(errp, "distvm: queue-nodes: '%s' has packed=on: after a "
                   "rollback (replicas=1), the nodes could not take its "
                   "pairs' packed rings up again", pd->name);
        return false;
    }
    if (!msix_present(&proxy->pci_dev)) {
        error_setg(errp, "distvm: queue-nodes: '%s' has no MSI-X vectors "
                   "(vectors=0): several nodes interrupt for it, which its "
                   "one INTx line cannot carry", pd->name);
        return false;
    }
    for (int i = 0; i < n->max_queue_pairs; i++) {
        NetClientState *peer = qemu_get_subqueue(n->nic, i)->peer;

        if (!peer || peer->info->type != NET_CLIENT_DRIVER_TAP) {
            error_setg(errp, "distvm: queue-nodes: the netdev of '%s' is "
                       "%s; the nodes serve its queue pairs from a tap "
                       "(-netdev tap,queues=N)", pd->name,
                       peer ? NetClientDriver_str(peer->info->type) :
                       "missing");
            return false;
        }
        if (tap_get_vhost_net(peer)) {
            error_setg(errp, "distvm: queue-nodes: the tap of '%s' has "
                       "vhost=on; its queues are served by QEMU, give it "
                       "vhost=off", pd->name);
            return false;
        }
    }
    for (guint i = 0; i < q->wanted->len; i++) {
        DistvmPairWanted *w = &g_array_index(q->wanted, DistvmPairWanted, i);

        if (w->pair >= n->max_queue_pairs) {
            error_setg(errp, "distvm: queue-nodes: '%s' has no queue pair %"
                       PRIu32 " (it has pairs 0 to %d)", pd->name, w->pair,
                       n->max_queue_pairs - 1);
            return false;
        }
    }
    q->proxy = proxy;
    q->net = n;
    return true;
}

/*
 * Watch the host's tap of @pd's card, whose pairs this node may serve.
 * A tap that cannot be watched (one passed by fd= from another network
 * namespace, for instance) is taken to be up, with a warning.
 */
static void path_watch(DistvmPlacedDevice *pd)
{
    DistvmNetQueues *q = pd->queues;
    NetClientState *peer = qemu_get_subqueue(q->net->nic, 0)->peer;
    Error *err = NULL;

    q->path_told_up = true;
    q->path = distvm_netpath_watch_tap(peer, distvm_state()->path_up_delay_ms,
                                       path_changed, pd, &err);
    if (err) {
        warn_report("%s; the pairs of '%s' that this node serves do not "
                    "fail over when it goes down", error_get_pretty(err),
                    pd->name);
        error_free(err);
    }
}

/*
 * The machine exists: check @pd's card, and detach from its tap the
 * queues of the pairs other nodes serve (the guest's setting of its
 * pairs later attaches only this node's: pair_here()).
 */
bool distvm_netqueues_setup(DistvmState *s, DistvmPlacedDevice *pd,
                            Error **errp)
{
    DistvmNetQueues *q = pd->queues;

    if (!card_check(pd, errp)) {
        return false;
    }
    q->pairs = q->net->max_queue_pairs;
    q->node = g_new(uint32_t, q->pairs);
    q->notified = g_new0(uint64_t, 2 * q->pairs);
    q->taking = g_new0(bool, q->pairs);
    q->move = g_new0(uint32_t, q->pairs);
    q->moving = -1;
    q->leaving = g_new0(DistvmPairLeave, q->pairs);
    for (uint32_t i = 0; i < q->pairs; i++) {
        q->node[i] = pd->node;
    }
    for (guint i = 0; i < q->wanted->len; i++) {
        DistvmPairWanted *w = &g_array_index(q->wanted, DistvmPairWanted, i);

        q->node[w->pair] = w->node;
        if (w->node != pd->node) {
            q->others |= BIT(w->node);
        }
    }
    g_array_free(q->wanted, true);
    q->wanted = NULL;
    q->placed = g_memdup2(q->node, q->pairs * sizeof(uint32_t));
    q->follow_bh = qemu_bh_new(follow_paths_bh, pd);
    /* A card that queue-nodes names: auto is on */
    if (s->queue_follow != ON_OFF_AUTO_OFF && s->nodes > 1) {
        q->follow = g_new(uint32_t, q->pairs);
        memset(q->follow, 0xff, q->pairs * sizeof(uint32_t));
        q->pinned = g_new0(bool, q->pairs);
        q->follow_timer = timer_new_ms(QEMU_CLOCK_REALTIME, follow_vcpus, pd);
        q->vcpu_moved.notify = follow_vcpu_moved;
        distvm_placement_notifier_add(&q->vcpu_moved);
    }
    if (s->nodes > 1 && may_serve(pd, s->node_id)) {
        path_watch(pd);
    }
    for (uint32_t i = 0; i < q->pairs; i++) {
        q->leaving[i].pd = pd;
        q->leaving[i].pair = i;
        trace_distvm_netqueue_pair(pd->name, i, q->node[i]);
        if (s->nodes > 1 && q->node[i] != s->node_id &&
            tap_disable(qemu_get_subqueue(q->net->nic, i)->peer) < 0) {
            error_setg(errp, "distvm: queue-nodes: cannot detach queue %"
                       PRIu32 " of the tap of '%s', which node %" PRIu32
                       " serves (is it a multi-queue tap?)", i, pd->name,
                       q->node[i]);
            return false;
        }
    }
    virtio_net_queue_pair_hook = pair_here;
    virtio_net_ctrl_hook = ctrl_command;
    return true;
}

/*
 * Attach to the tap the queues of the pairs in use that this node serves
 * now, and detach the others
 */
static void taps_attach(DistvmState *s, DistvmPlacedDevice *pd)
{
    DistvmNetQueues *q = pd->queues;

    for (uint32_t i = 0; i < q->pairs; i++) {
        NetClientState *peer = qemu_get_subqueue(q->net->nic, i)->peer;
        bool here = pair_used(q, i) && pair_node(pd, i) == s->node_id &&
                    !q->taking[i];
        int ret = here ? tap_enable(peer) : tap_disable(peer);

        trace_distvm_netqueue_attach(pd->name, i, here, ret);
    }
}

/*
 * Under the BQL: the guest wrote the card's PCI configuration, and may
 * have turned MSI-X on or off, which moves the pairs between the card's
 * node and theirs (pair_node()): taps_attach().
 */
void distvm_netqueues_config_written(DistvmState *s, DistvmPlacedDevice *pd)
{
    DistvmNetQueues *q = pd->queues;

    if (s->nodes == 1) {
        return;
    }
    card_changed(pd, "PCI configuration");
    taps_attach(s, pd);
    /*
     * A path that went down before the guest turned MSI-X on.  Home moves
     * pairs once it sent this write to the other nodes, whose copies then
     * have MSI-X on when the move reaches them.
     */
    path_tell(s, pd);
    if (distvm_is_home(s)) {
        qemu_bh_schedule(q->follow_bh);
    }
    follow_later(s, pd);
}

bool distvm_netqueues_serves(DistvmPlacedDevice *pd, uint32_t node)
{
    return pd->queues && (pd->queues->others & BIT(node));
}

/*
 * The queue that a write of @data at @offset of region @bar notifies, or
 * -1: as hw/virtio/virtio-pci.c decodes it (the modern notification
 * region spaces the queues' addresses VIRTIO_QUEUE_MAX times over it)
 */
static int64_t notified_queue(VirtIOPCIProxy *proxy, int bar, uint64_t offset,
                              uint64_t data)
{
    if (virtio_pci_modern(proxy) && bar == proxy->modern_mem_bar_idx &&
        offset >= proxy->notify.offset &&
        offset - proxy->notify.offset < proxy->notify.size) {
        return (offset - proxy->notify.offset) /
               (proxy->notify.size / VIRTIO_QUEUE_MAX);
    }
    if (virtio_pci_modern(proxy) &&
        (proxy->flags & VIRTIO_PCI_FLAG_MODERN_PIO_NOTIFY) &&
        bar == proxy->modern_io_bar_idx &&
        offset >= proxy->notify_pio.offset &&
        offset - proxy->notify_pio.offset < proxy->notify_pio.size) {
        return (uint32_t)data;
    }
    if (virtio_pci_legacy(proxy) && bar == proxy->legacy_io_bar_idx &&
        offset == VIRTIO_PCI_QUEUE_NOTIFY) {
        return (uint16_t)data;
    }
    return -1;
}

void distvm_netqueues_route(DistvmState *s, DistvmPlacedDevice *pd, int bar,
                            uint64_t offset, uint64_t data, bool is_write,
                            DistvmIoRoute *r)
{
    DistvmNetQueues *q = pd->queues;
    /* the data queues, below the control queue */
    uint32_t queues = 2 * (qatomic_read(&q->net->multiqueue) ? q->pairs : 1);
    int64_t queue;

    if (!is_write) {
        return;                 /* reads: the card's node answers */
    }
    queue = notified_queue(q->proxy, bar, offset, data);
    if (queue >= 0 && queue < queues) {
        r->node = pair_node(pd, queue / 2);
        r->queue = queue;
    } else if (queue < 0) {
        /* The guest's setting of the card: every node's copy applies it. */
        r->mirror = qatomic_read(&s->present) & ~BIT(r->node);
        /* (on each node that applies it, which routes it first) */
        card_changed(pd, "register");
        follow_later(s, pd);
    }
    /* else the control queue, or none: the card's node */
}

void distvm_netqueues_handled(DistvmPlacedDevice *pd, int queue)
{
    if (queue >= 0) {
        qatomic_inc(&pd->queues->notified[queue]);
    }
}

DistvmQueuePairInfoList *distvm_netqueues_query(DistvmPlacedDevice *pd)
{
    DistvmNetQueues *q = pd->queues;
    DistvmQueuePairInfoList *list = NULL, **tail = &list;

    for (uint32_t i = 0; q && i < q->pairs; i++) {
        DistvmQueuePairInfo *info = g_new0(DistvmQueuePairInfo, 1);
        CPUState *cs;

        info->pair = i;
        info->node = qatomic_read(&q->node[i]);
        info->rx_notified = qatomic_read(&q->notified[2 * i]);
        info->tx_notified = qatomic_read(&q->notified[2 * i + 1]);
        cs = pair_vcpu(pd, i);
        info->has_rx_vcpu = cs != NULL;
        info->rx_vcpu = cs ? cs->cpu_index : 0;
        QAPI_LIST_APPEND(tail, info);
    }
    return list;
}

/* ---- checkpoint epochs (replicas=1, distvm-epoch.c) ---- */

/* The pairs whose queues are data queues: below the control queue */
static uint32_t pairs_known(DistvmNetQueues *q)
{
    return q->net->multiqueue ? q->pairs : 1;
}

/*
 * Home, every node paused for a checkpoint, before they save: its copy
 * of each card reads the places of the pairs that it does not serve from
 * the guest's used rings, so that the state of the devices it saves has
 * them right (a rollback loads them, and virtio_load() checks them
 * against the guest's rings).  Nothing is in flight there: a node that
 * serves a pair gives each packet it takes to the output filter, which
 * takes it at once.
 */
void distvm_netqueues_checkpoint(DistvmState *s)
{
    DistvmPlacedDevice *pd;

    for (uint32_t i = 0; (pd = next_card(s, &i));) {
        DistvmNetQueues *q = pd->queues;

        for (uint32_t pair = 0; pair < pairs_known(q); pair++) {
            if (!pair_here(q->net, pair)) {
                pair_rings_reread(VIRTIO_DEVICE(q->net), pair);
            }
        }
    }
}

/* This node saves its data for an epoch, the guest paused */
void distvm_netqueues_saved(DistvmState *s)
{
    DistvmPlacedDevice *pd;

    for (uint32_t i = 0; (pd = next_card(s, &i));) {
        pd->queues->changes_saved = qatomic_read(&pd->queues->changes);
    }
}

/* The epoch whose SAVE came last committed */
void distvm_netqueues_committed(DistvmState *s)
{
    DistvmPlacedDevice *pd;

    for (uint32_t i = 0; (pd = next_card(s, &i));) {
        qatomic_store_release(&pd->queues->changes_committed,
                              pd->queues->changes_saved);
    }
}

/*
 * In any thread: the card whose setting the guest changed on this node
 * since the last commit, if several nodes serve its pairs (only home's
 * copy rolls back: the others would keep a setting that the guest has
 * not made), or NULL.  Each node counts what its own copy applied: a
 * write reaches the other nodes' copies before home's.
 */
const char *distvm_netqueues_changed(DistvmState *s)
{
    DistvmPlacedDevice *pd;

    for (uint32_t i = 0; (pd = next_card(s, &i));) {
        DistvmNetQueues *q = pd->queues;

        if (qatomic_read(&q->others) &&
            qatomic_load_acquire(&q->changes_committed) !=
            qatomic_read(&q->changes)) {
            return pd->name;
        }
    }
    return NULL;
}

/*
 * A lost node's part taken over, the guest rolled back to the last
 * committed epoch (on home, before it loads the devices): the pairs that
 * the lost node served go to the card's node, which every node knows to
 * be present (it runs the card, which recovery_refusal() keeps); a move
 * under way ends where it went, with no TAKE (one that comes later is
 * ignored: pair_received()).  Each node keeps attached to the tap the
 * queues of the pairs it serves now, and reads their rings' places again
 * once every node restored its pages (distvm_netqueues_resume()).
 */
void distvm_netqueues_rolled_back(DistvmState *s)
{
    DistvmPlacedDevice *pd;

    for (uint32_t i = 0; (pd = next_card(s, &i));) {
        DistvmNetQueues *q = pd->queues;

        for (uint32_t pair = 0; pair < q->pairs; pair++) {
            uint32_t node = qatomic_read(&q->node[pair]);
            bool moved = q->moving == (int)pair;

            if (q->leaving[pair].timer) {
                timer_del(q->leaving[pair].timer);
            }
            q->taking[pair] = false;
            if (!distvm_node_present(s, node)) {
                trace_distvm_netqueue_failover(pd->name, pair, node,
                                               pd->node);
                qatomic_set(&q->node[pair], pd->node);
                moved = true;
            }
            if (moved && distvm_is_home(s)) {
                qapi_event_send_distvm_queue_pair_moved(
                    pd->name, pair, qatomic_read(&q->node[pair]));
            }
        }
        q->moving = -1;
        qatomic_set(&q->others, q->others & qatomic_read(&s->present));
        q->paths_down &= qatomic_read(&s->present);
        taps_attach(s, pd);
        for (uint32_t pair = 0; pair < q->pairs; pair++) {
            if (!pair_here(q->net, pair)) {
                /* What its tap queue gave this node's copy (pair_hand_off) */
                qemu_purge_queued_packets(
                    qemu_get_subqueue(q->net->nic, pair)->peer);
            }
        }
        q->rolled_back = true;
    }
}

/*
 * In a rollback (or joining, told by DEVICE_HOME): home was lost, and
 * its standby, home now, runs @pd's card (distvm_devices_go_home()).
 * Only home knew which nodes' paths were down and where
 * distvm-move-queue-pair placed pairs, and a move it began may have
 * reached some nodes and not others: every node puts the pairs where
 * queue-nodes put them (@placed, which only home changed), those of
 * nodes gone on the card's node, and counts their moves from 0 again.
 * The new home watches its own tap, and each node tells it of its path
 * again once the guest runs (rings_kick_bh()), which moves the pairs of
 * nodes whose path is down.
 */
void distvm_netqueues_card_home(DistvmState *s, DistvmPlacedDevice *pd)
{
    DistvmNetQueues *q = pd->queues;
    uint32_t present = qatomic_read(&s->present);

    qatomic_set(&q->others, q->others & ~BIT(pd->node) & present);
    for (uint32_t pair = 0; pair < q->pairs; pair++) {
        uint32_t from = qatomic_read(&q->node[pair]);
        uint32_t node = q->placed[pair];

        if (!(present & BIT(node)) || !may_serve(pd, node)) {
            node = pd->node;
        }
        qatomic_set(&q->node[pair], node);
        q->move[pair] = 0;
        if (node != from && distvm_is_home(s)) {
            trace_distvm_netqueue_failover(pd->name, pair, from, node);
            qapi_event_send_distvm_queue_pair_moved(pd->name, pair, node);
        }
    }
    q->paths_down = 0;
    q->path_told_up = true;
    if (pd->node == s->node_id && !q->path) {
        path_watch(pd);
    }
}

static void rings_kick_bh(void *opaque)
{
    DistvmPlacedDevice *pd = opaque;
    DistvmNetQueues *q = pd->queues;

    for (uint32_t pair = 0; pair < pairs_known(q); pair++) {
        if (pair_here(q->net, pair)) {
            pair_kick(VIRTIO_DEVICE(q->net), pair);
        }
    }
    /* To a new home (distvm_netqueues_card_home()); else nothing changed */
    path_tell(distvm_state(), pd);
    if (distvm_is_home(distvm_state())) {
        pairs_follow_paths(distvm_state(), pd);
    }
}

/*
 * The guest resumes, before its devices do: after a rollback, the pairs
 * served here take their rings up where the guest's used rings say (what
 * this node's copy took since the commit is undone), then look at them,
 * for the notifications that went to a node lost meanwhile.
 */
void distvm_netqueues_resume(DistvmState *s)
{
    DistvmPlacedDevice *pd;

    for (uint32_t i = 0; (pd = next_card(s, &i));) {
        DistvmNetQueues *q = pd->queues;

        if (!q->rolled_back) {
            continue;
        }
        q->rolled_back = false;
        for (uint32_t pair = 0; pair < pairs_known(q); pair++) {
            if (pair_here(q->net, pair)) {
                pair_rings_reread(VIRTIO_DEVICE(q->net), pair);
            }
        }
        if (!q->kick_bh) {
            q->kick_bh = qemu_bh_new(rings_kick_bh, pd);
        }
        qemu_bh_schedule(q->kick_bh);
    }
}
