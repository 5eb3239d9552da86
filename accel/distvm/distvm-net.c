/*
 * distvm: cluster membership and transport
 *
 * Every node listens on its "listen" address.  A node other than home
 * connects to home and sends HELLO with its fingerprint; home refuses a
 * node whose fingerprint differs (naming the first difference) and, once
 * all nodes joined, sends each of them WELCOME with every node's address.
 * Each node then connects to the nodes with lower ids (PEER_HELLO), so the
 * nodes form a full mesh, and reports READY to home (distvm-cluster.c).
 *
 * One thread per connection receives messages and hands them to
 * distvm_dispatch() (distvm-dispatch.c); these threads never wait for the
 * BQL (see DESIGN.md, "Threads and locks"), and take it only when it is
 * free, to replay an access to a device that touches no guest RAM
 * (distvm-io.c) or to deliver an interrupt to a vCPU (distvm-vcpu.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <poll.h>
#include "qapi/error.h"
#include "qapi/qapi-events-distvm.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/sockets.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "block/block.h"
#include "io/channel-tls.h"
#include "hw/boards.h"
#include "system/runstate.h"
#include "system/system.h"
#include "distvm-internal.h"
#include "trace.h"

/* How long a node retries its connections while the cluster forms. */
#define DISTVM_CONNECT_RETRY_MS 50
/* A peer with more than this waiting for it, for peer-timeout, is lost. */
#define DISTVM_SENDQ_MAX        (64 * MiB)
/* Messages the writer sends with one system call, at most. */
#define DISTVM_WRITE_BATCH      64
/* What a node that leaves waits for its last messages to go. */
#define DISTVM_FLUSH_MS         2000
/* What a node that comes back waits for its last connection to end. */
#define DISTVM_REUSE_WAIT_MS    2000

/* A connection accepted and not identified yet, in s->unidentified. */
typedef struct DistvmConn {
    DistvmState *s;
    QIOChannelSocket *sioc;
    int64_t deadline;           /* to identify itself, join-timeout */
    bool expired;               /* shut down for being too slow */
} DistvmConn;

/* Connections that have not identified themselves, at most. */
#define DISTVM_MAX_UNIDENTIFIED (2 * DISTVM_MAX_NODES)

#define DISTVM_RECV_IO_ERROR    (-1)
#define DISTVM_RECV_BAD_MSG     (-2)

static Notifier machine_ready_notifier;

static void distvm_deliver_local(DistvmState *s, GByteArray *buf);
static void distvm_expire_unidentified(DistvmState *s, int64_t now);
static Notifier exit_notifier;

static void distvm_limits(DistvmState *s, DistvmWireLimits *lim)
{
    lim->nodes = s->nodes;
    lim->nr_vcpus = s->nr_vcpus;
    lim->home = distvm_home(s);
    distvm_ram_limits(s, lim);
}

/*
 * Buffered reading of messages from one connection: most messages then
 * cost one read system call.
 */
typedef struct DistvmReader {
    QIOChannel *ioc;
    int fd;                     /* the socket under @ioc */
    QCryptoTLSSession *tls;     /* @ioc's TLS session, or NULL */
    uint8_t *buf;
    size_t start;               /* first unconsumed byte */
    size_t end;                 /* end of the bytes read */
} DistvmReader;

#define DISTVM_READER_SIZE (DISTVM_WIRE_HDR_SIZE + DISTVM_WIRE_MAX_PAYLOAD + \
                            64 * KiB)

static void distvm_reader_init(DistvmReader *r, QIOChannel *ioc)
{
    QIOChannel *sock = ioc;

    if (object_dynamic_cast(OBJECT(ioc), TYPE_QIO_CHANNEL_TLS)) {
        r->tls = qio_channel_tls_get_session(QIO_CHANNEL_TLS(ioc));
        sock = QIO_CHANNEL_TLS(ioc)->master;
    } else {
        r->tls = NULL;
    }
    r->ioc = ioc;
    r->fd = QIO_CHANNEL_SOCKET(sock)->fd;
    r->buf = g_malloc(DISTVM_READER_SIZE);
    r->start = r->end = 0;
}

static void distvm_reader_free(DistvmReader *r)
{
    g_free(r->buf);
}

/*
 * Wait until @r's connection has bytes to read, in poll() rather than in
 * recvmsg().  A thread asleep in recvmsg() waits on the socket's one
 * wait queue, where the kernel also announces each message the peer
 * takes from this socket's other direction (buffer space freed) without
 * telling kinds apart: every message this node sends would wake its
 * receive thread for nothing, a context switch each.  poll() wakes only
 * for what it waits for.
 */
static void distvm_reader_wait(DistvmReader *r)
{
    struct pollfd pfd = { .fd = r->fd, .events = POLLIN };

    if (r->tls && qcrypto_tls_session_check_pending(r->tls)) {
        return;                 /* decrypted and waiting in the session */
    }
    while (poll(&pfd, 1, -1) < 0 && errno == EINTR) {
        continue;
    }
}

/*
 * Make @need bytes available at r->buf + r->start.  Returns 1, 0 on end
 * of file with nothing buffered, -1 on an error or end of file inside a
 * message (with @errp set).
 */
static int distvm_reader_fill(DistvmReader *r, size_t need, Error **errp)
{
    if (r->end - r->start >= need) {
        return 1;
    }
    if (r->start + need > DISTVM_READER_SIZE) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    while (r->end - r->start < need) {
        ssize_t n;

        distvm_reader_wait(r);
        n = qio_channel_read(r->ioc, (char *)r->buf + r->end,
                             DISTVM_READER_SIZE - r->end, errp);

        if (n == QIO_CHANNEL_ERR_BLOCK) {
            qio_channel_wait(r->ioc, G_IO_IN);
            continue;
        }
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            if (r->end == r->start) {
                return 0;
            }
            error_setg(errp, "Unexpected end-of-file before all data were "
                       "read");
            return -1;
        }
        r->end += n;
    }
    return 1;
}

/*
 * Read one message.  Returns 1 with @msg filled (a page's data points
 * into the reader's buffer until the next call), 0 on a clean end of file
 * before a message, DISTVM_RECV_IO_ERROR when the connection broke and
 * DISTVM_RECV_BAD_MSG for a truncated message or one that fails
 * validation, both with @errp set.
 */
static int distvm_recv(DistvmState *s, DistvmReader *r, DistvmMsg *msg,
                       uint64_t *bytes, Error **errp)
{
    DistvmMsgHeader hdr;
    DistvmWireLimits lim;
    int ret;

    ret = distvm_reader_fill(r, DISTVM_WIRE_HDR_SIZE, errp);
    if (ret <= 0) {
        return ret ? DISTVM_RECV_IO_ERROR : 0;
    }
    if (!distvm_wire_parse_header(r->buf + r->start, &hdr, errp)) {
        return DISTVM_RECV_BAD_MSG;
    }
    if (distvm_reader_fill(r, DISTVM_WIRE_HDR_SIZE + hdr.length, errp) <= 0) {
        error_prepend(errp, "%s message is truncated: ",
                      distvm_msg_type_name(hdr.type));
        return DISTVM_RECV_BAD_MSG;
    }
    *bytes = DISTVM_WIRE_HDR_SIZE + hdr.length;
    distvm_limits(s, &lim);
    ret = distvm_wire_decode(&hdr, r->buf + r->start + DISTVM_WIRE_HDR_SIZE,
                             &lim, msg, errp);
    r->start += *bytes;
    if (!ret) {
        return DISTVM_RECV_BAD_MSG;
    }
    trace_distvm_msg_recv(hdr.src, distvm_msg_type_name(hdr.type), hdr.seq,
                          hdr.length);
    return 1;
}

static void distvm_protocol_error(DistvmState *s, const char *from,
                                  Error *err)
{
    qatomic_inc(&s->protocol_errors);
    trace_distvm_protocol_error(from, error_get_pretty(err));
    error_report("distvm: protocol error from %s: %s; dropping the "
                 "connection", from, error_get_pretty(err));
    error_free(err);
}

/* ---- sending ---- */

/* With peer->send_lock held. */
static void distvm_sendq_push(DistvmPeer *peer, const uint8_t *data,
                              size_t len, bool head)
{
    GByteArray *m = g_byte_array_sized_new(len);

    g_byte_array_append(m, data, len);
    if (head) {
        g_queue_push_head(&peer->sendq, m);
    } else {
        g_queue_push_tail(&peer->sendq, m);
    }
    peer->sendq_bytes += len;
    if (peer->sendq_bytes > DISTVM_SENDQ_MAX && !peer->sendq_over_ns) {
        peer->sendq_over_ns = get_clock();
    }
    qemu_cond_broadcast(&peer->send_cond);
}

/*
 * Send @msg to @node.  Never blocks: whatever the socket does not take at
 * once waits in the peer's queue for its writer thread, so that neither
 * the BQL holder nor a receive thread waits for a slow or stopped peer.
 * A message that fits in the socket's buffer, with nothing queued before
 * it, is written here: waking the writer would cost a thread wake-up,
 * which is as much as a page fault's whole network round trip.  Not with
 * TLS: only the writer writes to a TLS session.
 */
bool distvm_send(DistvmState *s, uint32_t node, GByteArray *msg)
{
    DistvmPeer *peer = &s->peers[node];
    QIOChannelSocket *sioc;
    ssize_t n;
    int err;

    trace_distvm_msg_send(node, distvm_msg_type_name(lduw_le_p(msg->data + 6)),
                          ldq_le_p(msg->data + 16), ldl_le_p(msg->data + 8));
    if (node == s->node_id) {
        distvm_deliver_local(s, msg);
        return true;
    }
    distvm_flow_count_sent(s, node, msg);
    qemu_mutex_lock(&peer->send_lock);
    sioc = peer->sioc;          /* distvm_peer_reuse() takes it under it */
    if (!sioc || peer->broken) {
        qemu_mutex_unlock(&peer->send_lock);
        trace_distvm_send_failed(node, "closed");
        return false;
    }
    if (!g_queue_is_empty(&peer->sendq) || peer->writing || s->tls_server) {
        distvm_sendq_push(peer, msg->data, msg->len, false);
    } else {
        peer->writing = true;
        qemu_mutex_unlock(&peer->send_lock);
        n = send(sioc->fd, msg->data, msg->len, MSG_DONTWAIT | MSG_NOSIGNAL);
        err = errno;
        qemu_mutex_lock(&peer->send_lock);
        peer->writing = false;
        if (n < 0 && err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
            peer->broken = true;
            qemu_cond_broadcast(&peer->send_cond);
            qemu_mutex_unlock(&peer->send_lock);
            trace_distvm_send_failed(node, strerror(err));
            return false;
        }
        n = MAX(n, 0);
        if (n < msg->len) {
            /* First in line: what others queued meanwhile comes after. */
            distvm_sendq_push(peer, msg->data + n, msg->len - n, true);
        } else if (!g_queue_is_empty(&peer->sendq)) {
            qemu_cond_broadcast(&peer->send_cond);
        }
    }
    qemu_mutex_unlock(&peer->send_lock);
    qatomic_add(&peer->bytes_sent, msg->len);
    qatomic_add(&s->bytes_sent, msg->len);
    return true;
}

/* The writer of one peer: sends its queue, in order, as it fills. */
static void *distvm_writer_thread(void *opaque)
{
    DistvmPeer *peer = opaque;
    QIOChannel *ioc = peer->ioc;
    GByteArray *batch[DISTVM_WRITE_BATCH];
    struct iovec iov[DISTVM_WRITE_BATCH];

    rcu_register_thread();
    qemu_mutex_lock(&peer->send_lock);
    while (!peer->broken) {
        Error *err = NULL;
        size_t n = 0;
        int ret;

        if (peer->writing || g_queue_is_empty(&peer->sendq)) {
            qemu_cond_wait(&peer->send_cond, &peer->send_lock);
            continue;
        }
        while (n < DISTVM_WRITE_BATCH &&
               (batch[n] = g_queue_pop_head(&peer->sendq))) {
            iov[n].iov_base = batch[n]->data;
            iov[n].iov_len = batch[n]->len;
            peer->sendq_bytes -= batch[n]->len;
            n++;
        }
        if (peer->sendq_bytes <= DISTVM_SENDQ_MAX) {
            peer->sendq_over_ns = 0;
        }
        peer->writing = true;
        qemu_mutex_unlock(&peer->send_lock);

        ret = qio_channel_writev_all(ioc, iov, n, &err);
        for (size_t i = 0; i < n; i++) {
            g_byte_array_unref(batch[i]);
        }
        if (ret < 0) {
            trace_distvm_send_failed(peer->id, error_get_pretty(err));
            error_free(err);
        }

        qemu_mutex_lock(&peer->send_lock);
        peer->writing = false;
        peer->broken |= ret < 0;
        qemu_cond_broadcast(&peer->send_cond);
    }
    qemu_mutex_unlock(&peer->send_lock);
    rcu_unregister_thread();
    return NULL;
}

/* Bytes waiting for @peer's writer. */
uint64_t distvm_peer_queued(DistvmPeer *peer)
{
    uint64_t bytes;

    qemu_mutex_lock(&peer->send_lock);
    bytes = peer->sendq_bytes;
    qemu_mutex_unlock(&peer->send_lock);
    return bytes;
}

/*
 * Wait until every message queued so far has gone out, to every peer but
 * @lost, or until @timeout_ms passed: the last messages of a node that
 * leaves.
 */
static void distvm_send_flush(DistvmState *s, uint32_t lost,
                              int64_t timeout_ms)
{
    int64_t deadline = get_clock() + timeout_ms * SCALE_MS;

    for (uint32_t i = 0; i < s->nodes; i++) {
        DistvmPeer *peer = &s->peers[i];

        if (i == s->node_id || i == lost) {
            continue;
        }
        qemu_mutex_lock(&peer->send_lock);
        while ((peer->writing || !g_queue_is_empty(&peer->sendq)) &&
               !peer->broken) {
            int64_t left = deadline - get_clock();

            if (left <= 0) {
                break;
            }
            qemu_cond_timedwait(&peer->send_cond, &peer->send_lock,
                                MAX(left / SCALE_MS, 1));
        }
        qemu_mutex_unlock(&peer->send_lock);
    }
}

/*
 * With s->lock held: @sioc is the connection to @peer from now on, and
 * @ioc the stream over it (distvm_tls_wrap()).
 */
static void distvm_peer_attach(DistvmPeer *peer, QIOChannelSocket *sioc,
                               QIOChannel *ioc)
{
    g_autofree char *name = g_strdup_printf("distvm-node%" PRIu32,
                                            peer->id);

    qio_channel_set_name(QIO_CHANNEL(sioc), name);
    if (ioc != QIO_CHANNEL(sioc)) {
        qio_channel_set_name(ioc, name);
    }
    qatomic_set(&peer->heard_ns, get_clock());
    peer->loop_done = false;
    qemu_mutex_lock(&peer->send_lock);
    peer->ioc = ioc;
    qatomic_set(&peer->sioc, sioc);
    qemu_mutex_unlock(&peer->send_lock);
    qemu_thread_create(&peer->tx_thread, "distvm-tx", distvm_writer_thread,
                       peer, QEMU_THREAD_JOINABLE);
}

/* ---- liveness ---- */

/*
 * Every node sends each peer a HEARTBEAT when it sent it nothing else for
 * a fifth of peer-timeout, and declares lost a peer it heard nothing from
 * for peer-timeout, or whose queue stayed too long for that long.  Only
 * while the cluster runs: while it forms, join-timeout applies, and a
 * cluster that shuts down in order expects its nodes to go quiet.  It
 * also drops the accepted connections too slow to identify themselves.
 *
 * Traffic is seen from the byte counters at each tick, which costs the
 * paths that send and receive messages nothing.
 */
static void *distvm_watch_thread(void *opaque)
{
    DistvmState *s = opaque;
    int64_t timeout = (int64_t)s->peer_timeout * NANOSECONDS_PER_SECOND;
    int64_t beat = timeout / 5;
    g_autoptr(GByteArray) hb = g_byte_array_new();
    uint64_t rx_seen[DISTVM_MAX_NODES] = {}, tx_seen[DISTVM_MAX_NODES] = {};
    int64_t tx_idle_since[DISTVM_MAX_NODES] = {};
    uint32_t watched = 0;       /* the nodes present at the last tick */
    bool armed = false;

    for (;;) {
        int64_t now;

        g_usleep(MIN(beat / 2, 500 * SCALE_MS) / SCALE_US);
        distvm_expire_unidentified(s, get_clock());
        distvm_recovery_watch(s, get_clock());
        if (qatomic_read(&s->state) != DISTVM_CLUSTER_STATE_RUNNING) {
            if (armed) {
                break;          /* leaving or failed: nothing to watch */
            }
            continue;
        }
        if (!hb->len) {
            /* Its id is known now, even if home gave it (WELCOME) */
            distvm_wire_empty(hb, DISTVM_MSG_HEARTBEAT, s->node_id, 0);
        }
        now = get_clock();
        for (uint32_t i = 0; i < s->nodes; i++) {
            DistvmPeer *peer = &s->peers[i];
            uint64_t rx = qatomic_read(&peer->bytes_received);
            uint64_t tx = qatomic_read(&peer->bytes_sent);
            int64_t over;
            g_autofree char *why = NULL;

            if (i == s->node_id || !distvm_node_present(s, i)) {
                continue;
            }
            /*
             * At the start, or when it joined, a peer counts as heard, and
             * as sent to.
             */
            if (!(watched & BIT(i)) || rx != rx_seen[i]) {
                rx_seen[i] = rx;
                qatomic_set(&peer->heard_ns, now);
            }
            if (!(watched & BIT(i)) || tx != tx_seen[i]) {
                tx_seen[i] = tx;
                tx_idle_since[i] = now;
            }
            if (now - tx_idle_since[i] >= beat) {
                distvm_send(s, i, hb);
            }
            qemu_mutex_lock(&peer->send_lock);
            over = peer->sendq_over_ns;
            qemu_mutex_unlock(&peer->send_lock);
            if (now - qatomic_read(&peer->heard_ns) > timeout) {
                why = g_strdup_printf("silent for more than peer-timeout=%"
                                      PRIu32 " s", s->peer_timeout);
            } else if (over && now - over > timeout) {
                why = g_strdup_printf("it took in less than it was sent for "
                                      "peer-timeout=%" PRIu32 " s (over %d "
                                      "MiB queued)", s->peer_timeout,
                                      (int)(DISTVM_SENDQ_MAX / MiB));
            }
            if (why) {
                distvm_fatal_node_lost(s, i, why);
            }
        }
        watched = qatomic_read(&s->present);
        armed = true;
    }
    return NULL;
}

/* While the cluster forms, before the peer has a writer. */
static bool distvm_send_raw(QIOChannel *ioc, GByteArray *msg)
{
    return qio_channel_write_all(ioc, (char *)msg->data, msg->len,
                                 NULL) == 0;
}

/* Set in the threads that receive an identified peer's messages */
static __thread bool in_receive_loop;

bool distvm_net_receiving(void)
{
    return in_receive_loop;
}

static void distvm_flush_block_devices_now(void)
{
    int ret = bdrv_flush_all();

    if (ret < 0) {
        error_report("distvm: flushing the block devices failed: %s",
                     strerror(-ret));
    }
}

static void distvm_flush_block_devices_bh(void *opaque)
{
    distvm_flush_block_devices_now();
    qemu_sem_post(opaque);
}

/*
 * Home, before it exits for a lost node: what the guest wrote to its
 * disks reaches them.  That needs the BQL, which a vCPU waiting for a
 * page of the lost node may hold for ever: give up after a while.
 */
static void distvm_flush_block_devices(void)
{
    QemuSemaphore *done;

    if (bql_locked() && !in_receive_loop) {
        distvm_flush_block_devices_now();
        return;
    }
    if (bql_locked()) {
        /*
         * A receive thread doing a message's main-loop part: the flush
         * could wait for a page that only this thread brings.  The main
         * loop does it; this thread does not take the BQL again (_exit).
         */
        bql_unlock();
    }
    /* Not freed: the BH may still run after we gave up on it. */
    done = g_new(QemuSemaphore, 1);
    qemu_sem_init(done, 0);
    aio_bh_schedule_oneshot(qemu_get_aio_context(),
                            distvm_flush_block_devices_bh, done);
    if (qemu_sem_timedwait(done, DISTVM_FLUSH_MS) < 0) {
        error_report("distvm: the block devices could not be flushed within "
                     "%d ms: the main loop is blocked", DISTVM_FLUSH_MS);
    }
}

/*
 * A node the cluster cannot do without is gone (unless the others take
 * its part over: distvm-recovery.c): its pages are lost.  Tell
 * the monitor and the other nodes, let the home node's disks have what
 * the guest wrote, and leave: a vCPU may be waiting for one of its pages,
 * so nothing that waits for the vCPUs (vm_stop, the usual exit path) can
 * be used.
 */
void distvm_fatal_node_lost(DistvmState *s, uint32_t node, const char *why)
{
    g_autoptr(GByteArray) lost = g_byte_array_new();

    /* This node was drained away: its connections end as it does */
    if (qatomic_read(&s->state) == DISTVM_CLUSTER_STATE_LEFT ||
        distvm_join_lost(s, node, why)) {
        /* Or another thread counts it out (left): once it is done */
        distvm_recovery_wait_counted_out(s, node);
        return;
    }
    /* With checkpoint epochs, the others may take its part over */
    if (distvm_recovery_node_lost(s, node, why)) {
        return;
    }
    qemu_mutex_lock(&s->lock);
    if (s->state == DISTVM_CLUSTER_STATE_FAILED) {
        qemu_mutex_unlock(&s->lock);
        return;
    }
    s->state = DISTVM_CLUSTER_STATE_FAILED;
    qemu_mutex_unlock(&s->lock);

    error_report("distvm: lost node %" PRIu32 " (%s); the guest cannot "
                 "continue, stopping", node, why);
    qapi_event_send_distvm_node_lost(node, why);
    /* Name the culprit to the others before they see this node go. */
    distvm_wire_node(lost, DISTVM_MSG_NODE_LOST, s->node_id, node);
    for (uint32_t i = 0; i < s->nodes; i++) {
        if (i != s->node_id && i != node) {
            distvm_send(s, i, lost);
        }
    }
    distvm_send_flush(s, node, DISTVM_FLUSH_MS);
    /*
     * Home's standby may take its place, and write the committed writes
     * home holds itself: this node, maybe only cut off from the others,
     * must not write them after the guest wrote on
     */
    if (distvm_is_home(s) && !distvm_epoch_standby_may_write(s)) {
        distvm_flush_block_devices();
    }
    _exit(1);
}

void distvm_net_cut(DistvmState *s, uint32_t node)
{
    DistvmPeer *peer = &s->peers[node];

    qemu_mutex_lock(&peer->send_lock);
    peer->broken = true;
    qemu_cond_broadcast(&peer->send_cond);
    qemu_mutex_unlock(&peer->send_lock);
    qemu_mutex_lock(&s->lock);
    if (peer->sioc) {
        qio_channel_shutdown(peer->ioc, QIO_CHANNEL_SHUTDOWN_BOTH, NULL);
    }
    qemu_mutex_unlock(&s->lock);
}

/* ---- receiving ---- */

/* Receive loop of an identified peer. */
static void distvm_peer_receive(DistvmState *s, DistvmPeer *peer,
                                DistvmReader *r)
{
    g_autofree char *from = g_strdup_printf("node %" PRIu32, peer->id);
    bool bye = false;

    in_receive_loop = true;
    for (;;) {
        DistvmMsg msg;
        Error *err = NULL;
        uint64_t bytes = 0;
        int ret = distvm_recv(s, r, &msg, &bytes, &err);

        if (ret == 0) {
            break;
        }
        if (ret < 0) {
            g_autofree char *why = NULL;

            if (bye) {
                error_free(err);
                break;
            }
            why = g_strdup_printf("%s: %s", ret == DISTVM_RECV_BAD_MSG ?
                                  "protocol error" : "connection lost",
                                  error_get_pretty(err));
            if (ret == DISTVM_RECV_BAD_MSG) {
                distvm_protocol_error(s, from, err);
            } else {
                error_free(err);
            }
            distvm_fatal_node_lost(s, peer->id, why);
            return;
        }
        qatomic_add(&peer->bytes_received, bytes);
        qatomic_add(&s->bytes_received, bytes);
        if (msg.hdr.src != peer->id) {
            error_setg(&err, "message claims to come from node %" PRIu32,
                       msg.hdr.src);
            distvm_msg_clear(&msg);
            distvm_protocol_error(s, from, err);
            distvm_fatal_node_lost(s, peer->id, "protocol error");
            return;
        }
        if (msg.hdr.type == DISTVM_MSG_BYE) {
            bye = true;
            trace_distvm_peer_bye(peer->id);
            /*
             * A node drained away (distvm-drain.c), or one that is not
             * part of the cluster (yet), ends its own part only.
             */
            if (!distvm_node_present(s, peer->id) ||
                peer->id == qatomic_read(&s->draining)) {
                distvm_join_lost(s, peer->id, "it left");
                continue;
            }
            distvm_leave_peer_bye(s, peer->id);
            /* The cluster shuts down when any node leaves in order. */
            qemu_mutex_lock(&s->lock);
            if (s->state == DISTVM_CLUSTER_STATE_RUNNING) {
                qatomic_set(&s->state, DISTVM_CLUSTER_STATE_LEAVING);
            }
            qemu_mutex_unlock(&s->lock);
            distvm_ram_leaving(s);
            distvm_io_fail_waits(s);
            distvm_tlb_flush_fail_waits(s);
            qemu_system_shutdown_request(SHUTDOWN_CAUSE_HOST_QMP_QUIT);
            continue;
        }
        /* Nothing from a node that left the cluster counts any more */
        if (!(qatomic_read(&s->left) & BIT(peer->id))) {
            distvm_dispatch(s, &msg);
        }
        distvm_msg_clear(&msg);
    }
    if (!bye) {
        distvm_fatal_node_lost(s, peer->id, "connection closed");
    }
}

/* ... until its connection ends: then nothing reads from it any more. */
static void distvm_peer_loop(DistvmState *s, DistvmPeer *peer,
                             DistvmReader *r)
{
    distvm_peer_receive(s, peer, r);
    qemu_mutex_lock(&s->lock);
    peer->loop_done = true;
    qemu_cond_broadcast(&s->cond);
    qemu_mutex_unlock(&s->lock);
}

/*
 * A node that was part of the cluster and left it (drained), or that was
 * lost while it joined, joins again under the same node-id: forget its
 * last connection, once the receive loop of that connection ended (its
 * process exited; DISTVM_REUSE_WAIT_MS at most).  False if it did not:
 * the slot is still the old connection's.
 */
static bool distvm_peer_reuse(DistvmState *s, uint32_t node)
{
    DistvmPeer *peer = &s->peers[node];
    int64_t deadline = get_clock() + DISTVM_REUSE_WAIT_MS * SCALE_MS;
    QIOChannelSocket *sioc;
    QIOChannel *ioc;
    GByteArray *m;
    bool gone;

    qemu_mutex_lock(&s->lock);
    qemu_mutex_lock(&peer->send_lock);
    gone = peer->broken || (qatomic_read(&s->left) & BIT(node));
    qemu_mutex_unlock(&peer->send_lock);
    if (!peer->sioc || distvm_node_present(s, node) || !gone ||
        (distvm_is_home(s) && s->joining == node)) {
        qemu_mutex_unlock(&s->lock);
        return true;            /* nothing of an earlier one to forget */
    }
    while (!peer->loop_done) {
        if (get_clock() >= deadline) {
            qemu_mutex_unlock(&s->lock);
            return false;
        }
        qemu_cond_timedwait(&s->cond, &s->lock, 10);
    }
    qemu_mutex_lock(&peer->send_lock);
    gone = peer->broken || (qatomic_read(&s->left) & BIT(node));
    qemu_mutex_unlock(&peer->send_lock);
    if (!peer->sioc || !gone) {
        qemu_mutex_unlock(&s->lock);
        return true;            /* another connection forgot it meanwhile */
    }
    /*
     * Its writer ends, then nothing sends to the old connection: shut
     * down, a write to a process that no longer reads fails at once.
     */
    qio_channel_shutdown(peer->ioc, QIO_CHANNEL_SHUTDOWN_BOTH, NULL);
    qemu_mutex_lock(&peer->send_lock);
    peer->broken = true;
    qemu_cond_broadcast(&peer->send_cond);
    qemu_mutex_unlock(&peer->send_lock);
    qemu_thread_join(&peer->tx_thread);
    qemu_mutex_lock(&peer->send_lock);
    while (peer->writing) {     /* a non-blocking send() of distvm_send() */
        qemu_cond_timedwait(&peer->send_cond, &peer->send_lock, 1);
    }
    while ((m = g_queue_pop_head(&peer->sendq))) {
        g_byte_array_unref(m);
    }
    peer->sendq_bytes = 0;
    peer->sendq_over_ns = 0;
    sioc = peer->sioc;
    ioc = peer->ioc;
    qatomic_set(&peer->sioc, NULL);
    peer->ioc = NULL;
    peer->broken = false;
    qemu_mutex_unlock(&peer->send_lock);
    peer->ready = false;
    peer->rtt_ns = 0;
    qatomic_set(&s->left, s->left & ~BIT(node));
    qemu_mutex_unlock(&s->lock);

    trace_distvm_peer_reuse(node);
    distvm_flow_forget(s, node);
    /* The peer held a reference of each, the same object without TLS */
    qio_channel_close(ioc, NULL);
    object_unref(OBJECT(ioc));
    object_unref(OBJECT(sioc));
    return true;
}

/* Home: check a joining node's HELLO; returns a refusal or NULL. */
static char *distvm_check_hello(DistvmState *s, const DistvmMsgHello *h)
{
    uint32_t i;

    if (distvm_home(s) != DISTVM_HOME_NODE) {
        return g_strdup_printf("node %" PRIu32 " took the place of the home "
                               "node, which nodes cannot join yet",
                               distvm_home(s));
    }
    if (h->node_id == DISTVM_HOME_NODE || h->node_id >= s->nodes) {
        return g_strdup_printf("node-id=%" PRIu32 " is not a valid node of "
                               "this %" PRIu32 "-node cluster (1 to %" PRIu32
                               ")", h->node_id, s->nodes, s->nodes - 1);
    }
    if (h->nodes != s->nodes) {
        return g_strdup_printf("node %" PRIu32 " was started with nodes=%"
                               PRIu32 ", the home node with nodes=%" PRIu32,
                               h->node_id, h->nodes, s->nodes);
    }
    if (h->node_id >= s->start_nodes) {
        char *refusal = distvm_join_refusal(s, h->node_id);

        if (refusal) {
            return refusal;
        }
    } else if (s->state != DISTVM_CLUSTER_STATE_JOINING) {
        return g_strdup("the cluster has already formed");
    }
    if (s->peers[h->node_id].sioc) {
        return g_strdup_printf("node %" PRIu32 " has already joined",
                               h->node_id);
    }
    for (i = 0; i < s->fp_items && i < h->nr_items; i++) {
        bool same_key = !strcmp(s->fp_keys[i], h->keys[i]);

        if (!same_key || strcmp(s->fp_values[i], h->values[i])) {
            /* Quoted values are cut so the refusal fits in a message. */
            return g_strdup_printf("node %" PRIu32 " differs from the home "
                                   "node in %.200s: the home node has "
                                   "'%.200s', node %" PRIu32 " has %s%.200s%s",
                                   h->node_id, s->fp_keys[i], s->fp_values[i],
                                   h->node_id,
                                   same_key ? "'" : "no such setting (it has ",
                                   same_key ? h->values[i] : h->keys[i],
                                   same_key ? "'" : ")");
        }
    }
    if (i < s->fp_items || i < h->nr_items) {
        return g_strdup_printf("node %" PRIu32 " differs from the home node "
                               "in %.200s: one of them does not have it",
                               h->node_id, i < s->fp_items ? s->fp_keys[i] :
                               h->keys[i]);
    }
    return NULL;
}

/*
 * Home: the id a node that asks for one gets: the lowest of a node that
 * may join and is not part of the cluster, preferring one that never
 * connected to one whose last connection ended; UINT32_MAX if none is.
 */
static uint32_t distvm_free_node_id(DistvmState *s)
{
    uint32_t reusable = UINT32_MAX;

    qemu_mutex_lock(&s->lock);
    for (uint32_t i = s->start_nodes; i < s->nodes; i++) {
        if (distvm_node_present(s, i) || s->joining == i) {
            continue;
        }
        if (!s->peers[i].sioc) {
            reusable = i;
            break;
        }
        if (reusable == UINT32_MAX && s->peers[i].loop_done) {
            reusable = i;
        }
    }
    qemu_mutex_unlock(&s->lock);
    return reusable;
}

/*
 * Home: WELCOME for @node, with the address of every node of the cluster
 * and @node's own; no address for the others.
 */
static void home_welcome_msg(DistvmState *s, uint32_t node,
                             GByteArray *welcome)
{
    g_autofree char **addrs = g_new0(char *, s->nodes + 1);
    g_autofree uint32_t *speeds = g_new0(uint32_t, s->nodes);

    addrs[0] = s->listen;
    speeds[0] = s->speed;
    for (uint32_t i = 1; i < s->nodes; i++) {
        bool known = distvm_node_present(s, i) || i == node;

        addrs[i] = known ? s->peers[i].addr : (char *)"";
        speeds[i] = known ? qatomic_read(&s->peers[i].speed) : 0;
    }
    distvm_wire_welcome(welcome, s->nodes, node, addrs, speeds);
}

/* Home: a node joins.  Returns whether the connection is now its. */
static bool distvm_home_accept(DistvmState *s, QIOChannelSocket *sioc,
                               QIOChannel *ioc, DistvmMsgHello *h)
{
    g_autoptr(GByteArray) reply = g_byte_array_new();
    g_autofree char *refusal = NULL;
    uint32_t joined = 0;

    if (h->node_id == DISTVM_WIRE_NODE_ANY) {
        h->node_id = distvm_free_node_id(s);
        if (h->node_id == UINT32_MAX) {
            refusal = g_strdup_printf("a node asked for a node-id, and none "
                                      "is free: the ids a node may join "
                                      "under (%" PRIu32 " to %" PRIu32 ", "
                                      "nodes=%" PRIu32 ") are all part of "
                                      "the cluster or joining",
                                      s->start_nodes, s->nodes - 1, s->nodes);
        }
    }
    if (!refusal && h->node_id < s->nodes && h->node_id != s->node_id &&
        !distvm_peer_reuse(s, h->node_id)) {
        refusal = g_strdup_printf("node %" PRIu32 " joined or was joining "
                                  "before, and its last connection is still "
                                  "open; start it again once its last "
                                  "process ended", h->node_id);
    }
    qemu_mutex_lock(&s->lock);
    while (!s->fp_keys) {           /* the machine is still being built */
        qemu_cond_wait(&s->cond, &s->lock);
    }
    if (!refusal) {
        refusal = distvm_check_hello(s, h);
    }
    if (!refusal) {
        /* A node joining the running guest: once WELCOME went, below */
        if (h->node_id < s->start_nodes) {
            distvm_peer_attach(&s->peers[h->node_id], sioc, ioc);
        }
        g_free(s->peers[h->node_id].addr);     /* a node that left's */
        s->peers[h->node_id].addr = g_strdup(h->listen);
        qatomic_set(&s->peers[h->node_id].speed, h->speed);
        for (uint32_t i = 1; i < s->start_nodes; i++) {
            joined += !!s->peers[i].sioc;
        }
        if (h->node_id >= s->start_nodes) {
            qatomic_set(&s->joining, h->node_id);
        }
    }
    qemu_mutex_unlock(&s->lock);

    if (refusal) {
        error_report("distvm: refused a node: %s", refusal);
        distvm_wire_refuse(reply, s->node_id, refusal);
        distvm_send_raw(ioc, reply);
        return false;
    }
    trace_distvm_node_joined(h->node_id, h->listen);
    if (h->node_id >= s->start_nodes) {
        distvm_join_announce(s, h->node_id, h->speed);
        /*
         * WELCOME is the first message it reads: what home sends every
         * node meanwhile (a PCI_CONFIG of the running guest's) goes to it
         * once it is attached, after.  A write that fails leaves the
         * connection to its reader, which finds it closed.
         */
        home_welcome_msg(s, h->node_id, reply);
        distvm_send_raw(ioc, reply);
        qemu_mutex_lock(&s->lock);
        distvm_peer_attach(&s->peers[h->node_id], sioc, ioc);
        qemu_mutex_unlock(&s->lock);
    } else if (joined == s->start_nodes - 1) {
        for (uint32_t i = 1; i < s->start_nodes; i++) {
            distvm_home_welcome(s, i);
        }
    }
    return true;
}

void distvm_home_welcome(DistvmState *s, uint32_t node)
{
    g_autoptr(GByteArray) welcome = g_byte_array_new();

    home_welcome_msg(s, node, welcome);
    distvm_send(s, node, welcome);
}

/* A node other than home: a node with a higher id opens its connection. */
static bool distvm_peer_accept(DistvmState *s, QIOChannelSocket *sioc,
                               QIOChannel *ioc, uint32_t node, Error **errp)
{
    int64_t deadline = get_clock() +
                       (int64_t)s->join_timeout * NANOSECONDS_PER_SECOND;
    bool ok = false;

    qemu_mutex_lock(&s->lock);
    /* A node joining the running guest: home announces it first. */
    while (node >= s->start_nodes && s->joining != node &&
           s->state == DISTVM_CLUSTER_STATE_RUNNING &&
           get_clock() < deadline) {
        qemu_cond_timedwait(&s->cond, &s->lock, 100);
    }
    qemu_mutex_unlock(&s->lock);
    if (node >= s->start_nodes && node < s->nodes &&
        !distvm_peer_reuse(s, node)) {
        error_setg(errp, "node %" PRIu32 " joins again, and its last "
                   "connection is still open", node);
        return false;
    }
    qemu_mutex_lock(&s->lock);
    if (s->peers[node].sioc) {
        error_setg(errp, "node %" PRIu32 " is already connected", node);
    } else if (node >= s->start_nodes && s->joining == node &&
               s->state == DISTVM_CLUSTER_STATE_RUNNING) {
        distvm_peer_attach(&s->peers[node], sioc, ioc);
        ok = true;
    } else if (node >= s->start_nodes) {
        error_setg(errp, "node %" PRIu32 " is not joining the cluster (the "
                   "home node did not announce it)", node);
    } else if (node <= s->node_id) {
        error_setg(errp, "node %" PRIu32 " opened a connection that node %"
                   PRIu32 " should have opened", node, s->node_id);
    } else if (s->state != DISTVM_CLUSTER_STATE_JOINING) {
        error_setg(errp, "the cluster has already formed");
    } else {
        distvm_peer_attach(&s->peers[node], sioc, ioc);
        ok = true;
    }
    qemu_mutex_unlock(&s->lock);
    if (ok && node >= s->start_nodes) {
        g_autoptr(GByteArray) hb = g_byte_array_new();

        /* A node that joins reports READY once every node answered */
        distvm_wire_empty(hb, DISTVM_MSG_HEARTBEAT, s->node_id, 0);
        distvm_send(s, node, hb);
    }
    if (ok) {
        trace_distvm_peer_connected(node);
        distvm_check_ready(s);
    }
    return ok;
}

/*
 * @conn identified itself, or failed to: it is no longer counted.  Frees
 * it; returns whether the watch thread had shut it down.
 */
static bool distvm_conn_done(DistvmState *s, DistvmConn *conn)
{
    bool expired;

    qemu_mutex_lock(&s->lock);
    g_ptr_array_remove_fast(s->unidentified, conn);
    expired = conn->expired;
    qemu_mutex_unlock(&s->lock);
    g_free(conn);
    return expired;
}

/*
 * Shut down the connections that did not identify themselves (TLS
 * handshake and first message) within join-timeout: their threads then
 * drop them.  In the watch thread.
 */
static void distvm_expire_unidentified(DistvmState *s, int64_t now)
{
    qemu_mutex_lock(&s->lock);
    for (guint i = 0; i < s->unidentified->len; i++) {
        DistvmConn *conn = g_ptr_array_index(s->unidentified, i);

        if (!conn->expired && now > conn->deadline) {
            conn->expired = true;
            qatomic_inc(&s->protocol_errors);
            error_report("distvm: dropped a connection that did not identify "
                         "itself within join-timeout=%" PRIu32 " s",
                         s->join_timeout);
            qio_channel_shutdown(QIO_CHANNEL(conn->sioc),
                                 QIO_CHANNEL_SHUTDOWN_BOTH, NULL);
        }
    }
    qemu_mutex_unlock(&s->lock);
}

/* The first message on an accepted connection identifies the peer. */
static void *distvm_conn_thread(void *opaque)
{
    DistvmConn *conn = opaque;
    DistvmState *s = conn->s;
    QIOChannelSocket *sioc = conn->sioc;
    QIOChannel *ioc;
    DistvmReader r;
    DistvmMsg msg;
    Error *err = NULL;
    uint64_t bytes;
    uint32_t node = UINT32_MAX;
    int ret;

    rcu_register_thread();
    ioc = distvm_tls_wrap(s, sioc, NULL, &err);
    if (!ioc) {
        /* Not reported twice if the watch thread cut the handshake short. */
        if (!distvm_conn_done(s, conn)) {
            error_report("distvm: refused a connection: %s",
                         error_get_pretty(err));
            qatomic_inc(&s->protocol_errors);
        }
        error_free(err);
        qio_channel_close(QIO_CHANNEL(sioc), NULL);
        object_unref(OBJECT(sioc));
        rcu_unregister_thread();
        return NULL;
    }
    distvm_reader_init(&r, ioc);
    ret = distvm_recv(s, &r, &msg, &bytes, &err);
    if (distvm_conn_done(s, conn)) {
        /* Shut down by the watch thread: see distvm_expire_unidentified. */
        if (ret > 0) {
            distvm_msg_clear(&msg);
        }
        error_free(err);
        goto drop;
    }
    if (ret == DISTVM_RECV_BAD_MSG) {
        distvm_protocol_error(s, "an unidentified connection", err);
        goto drop;
    }
    if (ret <= 0) {
        error_free(err);
        goto drop;
    }
    if (msg.hdr.type == DISTVM_MSG_HELLO && distvm_is_home(s)) {
        if (distvm_home_accept(s, sioc, ioc, &msg.u.hello)) {
            node = msg.u.hello.node_id;
        }
    } else if (msg.hdr.type == DISTVM_MSG_PEER_HELLO && !distvm_is_home(s)) {
        if (distvm_peer_accept(s, sioc, ioc, msg.u.node_id, &err)) {
            node = msg.u.node_id;
        } else {
            distvm_protocol_error(s, "an unidentified connection", err);
        }
    } else {
        error_setg(&err, "expected %s, got %s",
                   distvm_is_home(s) ? "HELLO" : "PEER_HELLO",
                   distvm_msg_type_name(msg.hdr.type));
        distvm_protocol_error(s, "an unidentified connection", err);
    }
    distvm_msg_clear(&msg);
    if (node != UINT32_MAX) {
        distvm_peer_loop(s, &s->peers[node], &r);
        distvm_reader_free(&r);
        rcu_unregister_thread();
        return NULL;
    }
drop:
    distvm_reader_free(&r);
    qio_channel_close(ioc, NULL);
    object_unref(OBJECT(ioc));
    object_unref(OBJECT(sioc));
    rcu_unregister_thread();
    return NULL;
}

/* The listener's callback, in the accept thread: a new connection. */
static void distvm_accepted(QIONetListener *listener, QIOChannelSocket *sioc,
                            gpointer opaque)
{
    DistvmState *s = opaque;
    DistvmConn *conn;
    QemuThread thread;

    qemu_mutex_lock(&s->lock);
    if (s->unidentified->len >= DISTVM_MAX_UNIDENTIFIED) {
        qemu_mutex_unlock(&s->lock);
        qatomic_inc(&s->protocol_errors);
        error_report("distvm: refused a connection: %d others have not "
                     "identified themselves yet", DISTVM_MAX_UNIDENTIFIED);
        qio_channel_close(QIO_CHANNEL(sioc), NULL);
        return;
    }
    conn = g_new0(DistvmConn, 1);
    conn->s = s;
    conn->sioc = sioc;
    object_ref(OBJECT(sioc));
    conn->deadline = get_clock() +
                     (int64_t)s->join_timeout * NANOSECONDS_PER_SECOND;
    g_ptr_array_add(s->unidentified, conn);
    qemu_mutex_unlock(&s->lock);
    qio_channel_set_blocking(QIO_CHANNEL(sioc), true, NULL);
    qio_channel_set_delay(QIO_CHANNEL(sioc), false);
    qemu_thread_create(&thread, "distvm-conn", distvm_conn_thread, conn,
                       QEMU_THREAD_DETACHED);
}

/*
 * Connections are accepted in a thread of their own, whatever the main
 * loop is doing: the listener's sources run in its context.
 */
static void *distvm_accept_thread(void *opaque)
{
    GMainContext *ctx = opaque;
    g_autoptr(GMainLoop) loop = g_main_loop_new(ctx, FALSE);

    g_main_context_push_thread_default(ctx);
    g_main_loop_run(loop);
    return NULL;
}

static QIOChannelSocket *distvm_connect(DistvmState *s, const char *addr_str,
                                        Error **errp)
{
    g_autoptr(SocketAddress) addr = socket_parse(addr_str, errp);
    int64_t deadline = get_clock() + s->join_timeout * NANOSECONDS_PER_SECOND;
    QIOChannelSocket *sioc;

    if (!addr) {
        return NULL;
    }
    for (;;) {
        Error *err = NULL;

        sioc = qio_channel_socket_new();
        if (qio_channel_socket_connect_sync(sioc, addr, &err) == 0) {
            qio_channel_set_blocking(QIO_CHANNEL(sioc), true, NULL);
            qio_channel_set_delay(QIO_CHANNEL(sioc), false);
            return sioc;
        }
        object_unref(OBJECT(sioc));
        if (get_clock() > deadline) {
            error_propagate_prepend(errp, err, "distvm: cannot reach %s "
                                    "within join-timeout=%" PRIu32 " s: ",
                                    addr_str, s->join_timeout);
            return NULL;
        }
        error_free(err);
        g_usleep(DISTVM_CONNECT_RETRY_MS * 1000);
    }
}

static void *distvm_peer_thread(void *opaque)
{
    DistvmPeer *peer = opaque;
    DistvmReader r;

    rcu_register_thread();
    distvm_reader_init(&r, peer->ioc);
    distvm_peer_loop(distvm_state(), peer, &r);
    distvm_reader_free(&r);
    rcu_unregister_thread();
    return NULL;
}

/* A node other than home: join the cluster through home. */
static void *distvm_join_thread(void *opaque)
{
    DistvmState *s = opaque;
    g_autoptr(GByteArray) buf = g_byte_array_new();
    QIOChannelSocket *home;
    QIOChannel *home_ioc;
    DistvmReader r;
    DistvmMsg msg;
    Error *err = NULL;
    uint64_t bytes;
    uint32_t present;
    int ret;

    rcu_register_thread();
    home = distvm_connect(s, s->home, &err);
    if (!home) {
        error_report_err(err);
        exit(1);
    }
    home_ioc = distvm_tls_wrap(s, home, s->home, &err);
    if (!home_ioc) {
        error_report("distvm: cannot join through the home node %s: %s",
                     s->home, error_get_pretty(err));
        exit(1);
    }
    distvm_wire_hello(buf, s->node_id, !s->node_id_given ?
                      DISTVM_WIRE_NODE_ANY : s->node_id, s->nodes, s->listen,
                      s->speed, s->fp_items, s->fp_keys, s->fp_values);
    if (!distvm_send_raw(home_ioc, buf)) {
        error_report("distvm: the home node %s closed the connection",
                     s->home);
        exit(1);
    }
    distvm_reader_init(&r, home_ioc);
    ret = distvm_recv(s, &r, &msg, &bytes, &err);
    if (ret <= 0) {
        error_report("distvm: no answer from the home node %s%s%s%s", s->home,
                     err ? ": " : "", err ? error_get_pretty(err) : "",
                     s->tls_server ? " (over TLS, the home node refuses a "
                     "node its tls-authz does not accept: see its log)" : "");
        exit(1);
    }
    if (msg.hdr.type == DISTVM_MSG_REFUSE) {
        error_report("distvm: the home node refused this node: %s",
                     msg.u.reason);
        exit(1);
    }
    if (msg.hdr.type != DISTVM_MSG_WELCOME || msg.hdr.src != 0 ||
        msg.u.welcome.nodes != s->nodes) {
        error_report("distvm: unexpected %s from the home node while joining",
                     distvm_msg_type_name(msg.hdr.type));
        exit(1);
    }
    if (!s->node_id_given && msg.u.welcome.node_id >= s->start_nodes) {
        /* Before any other node knows this one: no thread reads it yet */
        s->node_id = msg.u.welcome.node_id;
        trace_distvm_node_id_given(s->node_id);
    } else if (msg.u.welcome.node_id != s->node_id) {
        error_report("distvm: the home node welcomed node %" PRIu32 " on "
                     "the connection of node %" PRIu32,
                     msg.u.welcome.node_id, s->node_id);
        exit(1);
    }
    qemu_mutex_lock(&s->lock);
    distvm_peer_attach(&s->peers[DISTVM_HOME_NODE], home, home_ioc);
    present = 0;
    for (uint32_t i = 0; i < s->nodes; i++) {
        if (msg.u.welcome.addrs[i][0]) {
            present |= BIT(i);
            s->peers[i].addr = g_strdup(msg.u.welcome.addrs[i]);
            qatomic_set(&s->peers[i].speed, msg.u.welcome.speeds[i]);
        }
    }
    /* Not this node itself, if it joins the running guest: not yet */
    if (s->node_id >= s->start_nodes) {
        present &= ~BIT(s->node_id);
    }
    qatomic_set(&s->present, present);
    qemu_mutex_unlock(&s->lock);
    distvm_msg_clear(&msg);
    trace_distvm_welcome(s->node_id, s->nodes);

    /*
     * Open the mesh connections to the nodes with lower ids, or, when
     * this node joins the running guest, to every node of the cluster.
     */
    for (uint32_t i = 1; i < s->nodes; i++) {
        if (i == s->node_id || !(present & BIT(i)) ||
            (i > s->node_id && s->node_id < s->start_nodes)) {
            continue;
        }
        QIOChannelSocket *sioc = distvm_connect(s, s->peers[i].addr, &err);
        QIOChannel *ioc;

        if (!sioc) {
            error_report_err(err);
            exit(1);
        }
        ioc = distvm_tls_wrap(s, sioc, s->peers[i].addr, &err);
        if (!ioc) {
            error_report("distvm: cannot connect to node %" PRIu32 " at %s: "
                         "%s", i, s->peers[i].addr, error_get_pretty(err));
            exit(1);
        }
        distvm_wire_node(buf, DISTVM_MSG_PEER_HELLO, s->node_id, s->node_id);
        if (!distvm_send_raw(ioc, buf)) {
            error_report("distvm: node %" PRIu32 " closed the connection",
                         i);
            exit(1);
        }
        qemu_mutex_lock(&s->lock);
        distvm_peer_attach(&s->peers[i], sioc, ioc);
        qemu_mutex_unlock(&s->lock);
        qemu_thread_create(&s->peers[i].rx_thread, "distvm-rx",
                           distvm_peer_thread, &s->peers[i],
                           QEMU_THREAD_DETACHED);
    }
    distvm_check_ready(s);
    distvm_peer_loop(s, &s->peers[DISTVM_HOME_NODE], &r);
    distvm_reader_free(&r);
    rcu_unregister_thread();
    return NULL;
}

/*
 * A message a node sends to itself (it manages a page it also holds or
 * requests) is handled at once, in the sending thread: callers send only
 * after releasing their locks, and a chain of such messages is at most
 * as long as one request's (request, forward, data).
 */
static void distvm_deliver_local(DistvmState *s, GByteArray *buf)
{
    DistvmMsgHeader hdr;
    DistvmWireLimits lim;
    DistvmMsg msg;

    distvm_limits(s, &lim);
    if (!distvm_wire_parse_header(buf->data, &hdr, &error_abort) ||
        !distvm_wire_decode(&hdr, buf->data + DISTVM_WIRE_HDR_SIZE, &lim,
                            &msg, &error_abort)) {
        g_assert_not_reached();
    }
    distvm_dispatch(s, &msg);
    distvm_msg_clear(&msg);
}

/*
 * Leaving in order: once the others stopped and drained their I/O, tell
 * them, so that they shut down too.
 */
static void distvm_exit_notify(Notifier *n, void *data)
{
    DistvmState *s = distvm_state();
    g_autoptr(GByteArray) bye = g_byte_array_new();

    if (!s || s->state == DISTVM_CLUSTER_STATE_FAILED) {
        return;
    }
    distvm_leave_end_cluster(s);
    distvm_wire_empty(bye, DISTVM_MSG_BYE, s->node_id, 0);
    for (uint32_t i = 0; i < s->nodes; i++) {
        if (i != s->node_id) {
            distvm_send(s, i, bye);
        }
    }
    distvm_send_flush(s, UINT32_MAX, DISTVM_FLUSH_MS);
}

static void distvm_build_fingerprint(DistvmState *s, MachineState *ms)
{
    g_autoptr(GPtrArray) keys = g_ptr_array_new();
    g_autoptr(GPtrArray) values = g_ptr_array_new();

#define FP(k, ...) do { \
        g_ptr_array_add(keys, g_strdup(k)); \
        g_ptr_array_add(values, g_strdup_printf(__VA_ARGS__)); \
    } while (0)
    FP("protocol", "%d", DISTVM_WIRE_VERSION);
    FP("qemu version", "%s", QEMU_VERSION);
    FP("machine type", "%s", MACHINE_GET_CLASS(ms)->name);
    FP("cpu model", "%s", ms->cpu_type);
    FP("memory size (-m)", "%" PRIu64, (uint64_t)ms->ram_size);
    /* A joining node plugs the DIMMs plugged before (distvm-join.c) */
    FP("memory slots (-m)", "slots=%" PRIu64 ",maxmem=%" PRIu64,
       ms->ram_slots, (uint64_t)ms->maxram_size);
    FP("vcpus (-smp)", "cpus=%u,maxcpus=%u,sockets=%u,dies=%u,clusters=%u,"
       "cores=%u,threads=%u", ms->smp.cpus, ms->smp.max_cpus,
       ms->smp.sockets, ms->smp.dies, ms->smp.clusters, ms->smp.cores,
       ms->smp.threads);
    FP("start nodes", "%" PRIu32, s->start_nodes);
    FP("vcpu placement", "%s", s->placement ?: "all on node 0");
    FP("resident RAM", "%s", s->residency ?: "none");
    FP("devices on other nodes", "%s", s->device_nodes ?: "none");
    FP("queue pairs on other nodes", "%s", s->queue_nodes ?: "none");
    FP("placement policy", "%s", DistvmPolicy_str(s->policy));
    FP("pv-tlb-flush", "%s", s->pv_tlb_flush ? "on" : "off");
    FP("auto-numa", "%s", s->auto_numa ? "on" : "off");
    FP("replicas", "%" PRIu32, s->replicas);
    FP("redundancy", "%s", DistvmRedundancy_str(s->redundancy));
    FP("standby", "%" PRIu32, s->standby ?: 1);
#undef FP
    distvm_ram_fingerprint(keys, values);

    qemu_mutex_lock(&s->lock);
    s->fp_items = keys->len;
    g_ptr_array_add(keys, NULL);
    g_ptr_array_add(values, NULL);
    s->fp_keys = (char **)g_ptr_array_steal(keys, NULL);
    s->fp_values = (char **)g_ptr_array_steal(values, NULL);
    qemu_cond_broadcast(&s->cond);
    qemu_mutex_unlock(&s->lock);
}

/*
 * The machine exists (its RAMBlocks too): describe it, hold the guest
 * until the cluster has formed, and join.
 */
static void distvm_machine_ready(Notifier *n, void *data)
{
    DistvmState *s = distvm_state();
    QemuThread thread;
    Error *err = NULL;

    if (!distvm_residency_setup(s, &err) || !distvm_ram_init(s, &err) ||
        !distvm_devices_setup(s, &err)) {
        error_report_err(err);
        exit(1);
    }
    s->want_autostart = autostart;
    autostart = 0;
    distvm_vcpu_park_foreign(s);
    distvm_build_fingerprint(s, MACHINE(qdev_get_machine()));
    if (distvm_is_home(s) && s->start_nodes == 1) {
        distvm_cluster_start(s);  /* others join the running guest */
    } else if (!distvm_is_home(s)) {
        qemu_thread_create(&thread, "distvm-join", distvm_join_thread, s,
                           QEMU_THREAD_DETACHED);
    }
}

bool distvm_net_init(DistvmState *s, Error **errp)
{
    QemuThread thread;

    qemu_mutex_init(&s->lock);
    qemu_cond_init(&s->cond);
    distvm_dispatch_init(s);
    distvm_cluster_init(s);
    s->state = DISTVM_CLUSTER_STATE_JOINING;
    s->unidentified = g_ptr_array_new();
    for (uint32_t i = 0; i < s->nodes; i++) {
        s->peers[i].id = i;
        qemu_mutex_init(&s->peers[i].send_lock);
        qemu_cond_init(&s->peers[i].send_cond);
        g_queue_init(&s->peers[i].sendq);
    }
    if (!distvm_tls_init(s, errp)) {
        return false;
    }
    s->listener = qio_net_listener_new();
    qio_net_listener_set_name(s->listener, "distvm-listener");
    if (qio_net_listener_open_sync(s->listener, s->listen_addr,
                                   DISTVM_MAX_NODES * 2, errp) < 0) {
        error_prepend(errp, "distvm: cannot listen on %s: ", s->listen);
        return false;
    }
    s->accept_ctx = g_main_context_new();
    qio_net_listener_set_client_func_full(s->listener, distvm_accepted, s,
                                          NULL, s->accept_ctx);
    qemu_thread_create(&thread, "distvm-accept", distvm_accept_thread,
                       s->accept_ctx, QEMU_THREAD_DETACHED);
    qemu_thread_create(&thread, "distvm-watch", distvm_watch_thread, s,
                       QEMU_THREAD_DETACHED);

    machine_ready_notifier.notify = distvm_machine_ready;
    qemu_add_machine_init_done_notifier(&machine_ready_notifier);
    exit_notifier.notify = distvm_exit_notify;
    qemu_add_exit_notifier(&exit_notifier);
    return true;
}
