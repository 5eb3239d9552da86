/*
 * distvm: checkpoint epochs, each node's state kept by another node
 *
 * With replicas=1 the cluster takes a consistent checkpoint every
 * checkpoint-ms (DESIGN.md section 15), in these steps:
 *
 * 1. Home pauses the guest, its devices included, without a run state
 *    change (distvm_guest_pause(): a "stop" meanwhile is taken as usual);
 *    so do the other nodes, which answer PAUSED.
 * 2. Once every node paused, no vCPU runs: home sends SAVE.  Each node
 *    waits until no page it asked for is on its way (a moved vCPU's warm
 *    pages), and sends its replica (the next node of the cluster in node
 *    order) the state of the vCPUs it runs and the pages of guest RAM it
 *    changed since its last epoch and still holds, or all it holds the
 *    first time and whenever its replica changed
 *    (distvm_ram_checkpoint_pages()), then SENT, with the number of vCPU
 *    states.  Home also sends the state of the machine's devices to its
 *    standby, its own replica; a node that runs devices placed on it
 *    (device-nodes) theirs (distvm-placed-state.c).
 * 3. The replica keeps all of it aside for the epoch, and answers STORED
 *    to home once the node's SENT came.
 * 4. Once every node's data is stored, home sends COMMIT: the replicas
 *    make the epoch's data their committed copy.  Home sends a device
 *    that a rollback brought home, and that may go back now, to its node
 *    (distvm_devices_send_away()), and runs the guest again, which runs
 *    the other nodes' vCPUs.
 *
 * A node that does not pause, or whose data is not stored, within twice
 * peer-timeout is lost (a node whose vCPU waits for a silent node cannot
 * pause: the silent one is found lost first, within peer-timeout, and
 * the other pauses then): the others take its part over from the last
 * committed epoch (distvm-recovery.c), with the rollback below.  An
 * epoch that cannot be taken now is abandoned once every node
 * answered (BUSY or STORED): a node answers BUSY if a vCPU is moving to
 * or from it, if its pages still travel after a second, or if its pause
 * was disturbed (distvm_guest_paused_whole()); and home abandons it if
 * the nodes did not save each vCPU once (one whose state was on its way
 * between two nodes).  Home sends ABORT, the replicas drop its data,
 * each node sends again in its next epoch what it sent for it, and home
 * tries again one interval later.
 *
 * Each node also keeps a copy of what it sends (its own store), and a
 * node keeps another's copies while that node is in the cluster, so that
 * losing any one node leaves a committed copy of every page and state.
 *
 * The guest's network packets and disk writes wait for the commit of the
 * epoch they were made in (distvm-output.c, distvm-output-disk.c).
 *
 * A rollback (x-distvm-rollback, home) takes the guest back to the last
 * committed epoch, with it paused as for an epoch: each node restores the
 * pages it holds that changed since, from the newest committed copy any
 * node keeps (ROLLBACK, EPOCH_PAGES ASK and COPY, FETCH, FETCHED), and
 * the vCPUs it runs; home then loads the devices, and those placed on
 * other nodes, which it sends back to their node at the end unless that
 * node was lost or left (distvm_devices_send_away()).  What the guest
 * sent since is dropped.
 *
 * A replica may receive a node's data for the next epoch before home's
 * COMMIT of this one (they come on different connections), so it keeps
 * what it receives by epoch until COMMIT or ABORT says what to do.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "system/system.h"
#include "io/channel-buffer.h"
#include "migration/qemu-file.h"
#include "migration/savevm.h"
#include "migration/global_state.h"
#include "hw/core/cpu.h"
#include "exec/cputlb.h"
#include "system/runstate.h"
#include "hw/scsi/scsi.h"
#include "distvm-internal.h"
#include "distvm-parity.h"
#include "distvm-ram.h"
#include "trace.h"

/* Pauses kept for query-distvm's percentiles */
#define EPOCH_PAUSE_SAMPLES     1024
/* Bytes of a state that one EPOCH_STATE carries */
#define EPOCH_STATE_CHUNK       (512 * KiB)

/* Where home is in the epoch it takes */
typedef enum EpochPhase {
    EPOCH_IDLE,
    EPOCH_STOPPING,             /* waits for the nodes' PAUSED */
    EPOCH_SAVING,               /* waits for STORED of every node's data */
    EPOCH_ROLLING,              /* waits for every node's ROLLED */
} EpochPhase;

/* A page or a state as a replica keeps it */
typedef struct EpochCopy {
    uint64_t epoch;
    GByteArray *data;           /* NULL: an all-zero page */
    uint32_t total;             /* a state: its size */
} EpochCopy;

/* What a replica received of one epoch of one node, not yet committed */
typedef struct EpochPending {
    uint64_t epoch;
    GHashTable *pages;          /* page key -> EpochCopy */
    GHashTable *states;         /* state key -> EpochCopy */
    GHashTable *deltas;         /* parity: slot -> DistvmParityDelta */
    uint64_t bytes;
} EpochPending;

/*
 * A node rolling back: what it asked for, and the newest committed copy
 * of it that came so far, from this node's stores or another's
 */
typedef struct EpochRollback {
    uint64_t epoch;             /* the committed epoch rolled back to */
    bool took_over;             /* a lost node's part taken over */
    uint32_t waiting;           /* the nodes whose FETCHED is due */
    GArray *pages;              /* DistvmPageRef: the pages to restore */
    GHashTable *pages_asked;    /* page key -> EpochCopy, or none */
    GHashTable *states;         /* state key -> EpochCopy, whole */
    /* (sender << 48 | state key) -> EpochCopy, coming in parts */
    GHashTable *partial;
} EpochRollback;

/* What this node keeps as the replica of another */
typedef struct EpochStore {
    GHashTable *pages;          /* page key -> EpochCopy, committed */
    GHashTable *states;         /* state key -> EpochCopy, committed */
    GQueue pending;             /* EpochPending, oldest first */
    uint64_t bytes;             /* of the committed copies */
} EpochStore;

struct DistvmEpoch {
    QemuMutex lock;             /* the stores and the fields below */
    EpochStore *stores[DISTVM_MAX_NODES];   /* by the node they are of */
    uint64_t committed;         /* atomic: the last COMMIT */
    uint64_t ended;             /* atomic: the last COMMIT or ABORT */
    /*
     * Nodes lost and taken over (distvm-recovery.c), whose stores are
     * kept although they are gone: until the commit of an epoch after
     * @lost_until, in which every node sent all it holds
     */
    uint32_t lost_stores;
    uint64_t lost_until;

    /*
     * redundancy=parity: home's parity of the others' copies, and the
     * slots of this node's own copies; NULL with redundancy=replica
     */
    DistvmParity *parity;

    /* In the main loop: the replica of this node's last epoch, if any */
    uint32_t sent_to;
    uint64_t sent_epoch;        /* ... its number */
    bool sent_aborted;          /* ... and that epoch was abandoned */
    /* Why this node could not take home's place: a disk it lacks */
    char *stand_in;
    bool took_home;             /* in its place: the next rollback's */

    /* Home, rebuilding a lost node's copies from the parity, under @lock */
    uint32_t parity_waiting;    /* the nodes whose slots are due */
    char *parity_refused;       /* why a node's answer was refused */

    /* Home, in the main loop */
    QEMUTimer *timer;
    EpochPhase phase;
    uint64_t epoch;             /* the last begun */
    uint32_t waiting;           /* the nodes its phase waits for */
    bool busy;                  /* a node could not save this epoch */
    uint32_t vcpus;             /* the vCPU states saved */
    int64_t begun_ns;
    uint64_t bytes;
    uint64_t epochs;
    uint64_t aborted;
    uint64_t last_pause_us;
    uint64_t last_bytes;
    uint64_t all_bytes;         /* of every committed epoch */
    uint32_t pause_us[EPOCH_PAUSE_SAMPLES];
    unsigned nr_pauses;
    GSList *when_idle;          /* EpochWhenIdle, run once the epoch ends */

    /* Rolling back: on each node, under @lock */
    EpochRollback *rollback;
    /* ... home, in the main loop: its own, until the devices are loaded */
    EpochRollback *home_rollback;
    bool rolling;               /* the epoch begun is a rollback's pause */
    uint32_t rolling_lost;      /* ... as if this node were lost, or home */
    GQueue rollbacks_asked;     /* each one's as-if-lost node, + 1 */
    bool recovering;            /* ... a lost node's part taken over */
    bool number_ended;          /* ... its number ended (ABORT): kept */
    int64_t rollback_begun_ns;
    uint64_t rollbacks;
    uint64_t last_rollback_us;
    /* The cluster at the last commit (a rollback needs the same) */
    uint32_t committed_vcpus;   /* the vCPU states saved */
    uint32_t committed_present;
    uint32_t committed_blocks;  /* RAMBlocks */
};

typedef struct EpochWhenIdle {
    void (*fn)(DistvmState *s);
} EpochWhenIdle;

/* A page's key in the stores: its RAMBlock and its page in it */
#define PAGE_KEY_BLOCK_SHIFT    40

static inline gpointer page_key(uint32_t block, uint64_t page)
{
    return (gpointer)(uintptr_t)((uint64_t)block << PAGE_KEY_BLOCK_SHIFT |
                                 page);
}

static inline uint32_t page_key_block(uint64_t key)
{
    return key >> PAGE_KEY_BLOCK_SHIFT;
}

static inline uint64_t page_key_page(uint64_t key)
{
    return key & (BIT_ULL(PAGE_KEY_BLOCK_SHIFT) - 1);
}

static inline gpointer state_key(uint32_t kind, uint32_t index)
{
    return (gpointer)(uintptr_t)((uint64_t)kind << 32 | index);
}

/*
 * The node that keeps @node's state: the next node of the cluster (one
 * that is gone: the next one present, which takes its part over), or for
 * the first home, its standby= if given
 */
uint32_t distvm_replica_of(DistvmState *s, uint32_t node)
{
    uint32_t present = qatomic_read(&s->present);

    /* The first home's: its standby, if present */
    if (node == DISTVM_HOME_NODE && s->standby &&
        (present & BIT(s->standby))) {
        return s->standby;
    }

    for (uint32_t i = 1; i < s->nodes; i++) {
        uint32_t n = (node + i) % s->nodes;

        if (present & BIT(n)) {
            return n;
        }
    }
    return node;
}

/*
 * The node that keeps @node's state: its replica, or with
 * redundancy=parity home, which keeps the parity of the others' pages
 */
uint32_t distvm_epoch_keeper_of(DistvmState *s, uint32_t node)
{
    if (s->redundancy == DISTVM_REDUNDANCY_PARITY &&
        node != distvm_home(s)) {
        return distvm_home(s);
    }
    return distvm_replica_of(s, node);
}

static void copy_free(gpointer data)
{
    EpochCopy *c = data;

    if (c->data) {
        g_byte_array_unref(c->data);
    }
    g_free(c);
}

/* A whole copy as of @epoch of @len bytes at @data; NULL: an all-zero page */
static EpochCopy *copy_new(uint64_t epoch, const void *data, size_t len)
{
    EpochCopy *c = g_new0(EpochCopy, 1);

    c->epoch = epoch;
    if (data) {
        c->total = len;
        c->data = g_byte_array_sized_new(len);
        g_byte_array_append(c->data, data, len);
    }
    return c;
}

static EpochCopy *page_copy_new(uint64_t epoch, const void *data)
{
    return copy_new(epoch, data, DISTVM_PAGE_SIZE);
}

static uint64_t copy_bytes(const EpochCopy *c)
{
    return c->data ? c->data->len : 0;
}

static GHashTable *copies_new(void)
{
    return g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                 copy_free);
}

static EpochPending *pending_new(uint64_t epoch)
{
    EpochPending *p = g_new0(EpochPending, 1);

    p->epoch = epoch;
    p->pages = copies_new();
    p->states = copies_new();
    p->deltas = distvm_parity_deltas_new();
    return p;
}

static void pending_free(EpochPending *p)
{
    g_hash_table_unref(p->pages);
    g_hash_table_unref(p->states);
    g_hash_table_unref(p->deltas);
    g_free(p);
}

static void store_free(EpochStore *st)
{
    g_hash_table_unref(st->pages);
    g_hash_table_unref(st->states);
    g_queue_clear_full(&st->pending, (GDestroyNotify)pending_free);
    g_free(st);
}

/* With e->lock: @node's store, made if it has none */
static EpochStore *store_of(DistvmEpoch *e, uint32_t node)
{
    if (!e->stores[node]) {
        e->stores[node] = g_new0(EpochStore, 1);
        e->stores[node]->pages = copies_new();
        e->stores[node]->states = copies_new();
        g_queue_init(&e->stores[node]->pending);
    }
    return e->stores[node];
}

/*
 * With e->lock: the store's pending data of @epoch, made if none; NULL
 * if it has two already (this epoch's and the next's are all it takes)
 */
static EpochPending *pending_of(EpochStore *st, uint64_t epoch)
{
    EpochPending *p;

    for (GList *l = st->pending.head; l; l = l->next) {
        p = l->data;
        if (p->epoch == epoch) {
            return p;
        }
    }
    if (st->pending.length >= 2) {
        return NULL;
    }
    p = pending_new(epoch);
    g_queue_push_tail(&st->pending, p);
    return p;
}

/*
 * With e->lock: @p, this node's own copy of what it sent for an epoch,
 * becomes @st's pending data of that epoch, which it replaces
 */
static void own_pending_add(EpochStore *st, EpochPending *p)
{
    for (GList *l = st->pending.head; l; l = l->next) {
        EpochPending *old = l->data;

        if (old->epoch == p->epoch) {
            g_queue_delete_link(&st->pending, l);
            pending_free(old);
            break;
        }
    }
    g_queue_push_tail(&st->pending, p);
}

/* With e->lock: @from's copies become the committed ones of @st */
static void copies_commit(EpochStore *st, GHashTable *to, GHashTable *from)
{
    GHashTableIter it;
    gpointer key, value;

    g_hash_table_iter_init(&it, from);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        EpochCopy *old = g_hash_table_lookup(to, key);

        if (old) {
            st->bytes -= copy_bytes(old);
        }
        st->bytes += copy_bytes(value);
        g_hash_table_iter_steal(&it);
        g_hash_table_replace(to, key, value);
    }
}

/*
 * With e->lock: epoch @epoch is committed (@commit) or abandoned.  A
 * node this one no longer keeps the state of has it kept by its new
 * replica, which received all of it in this epoch: drop it.
 */
static void stores_end_epoch(DistvmState *s, uint64_t epoch, bool commit)
{
    DistvmEpoch *e = s->epoch;

    for (uint32_t node = 0; node < DISTVM_MAX_NODES; node++) {
        EpochStore *st = e->stores[node];
        GList *l, *next;

        if (!st) {
            continue;
        }
        for (l = st->pending.head; l; l = next) {
            EpochPending *p = l->data;

            next = l->next;
            if (commit ? p->epoch > epoch : p->epoch != epoch) {
                continue;
            }
            /* One older came after its ABORT (a lost node taken over) */
            if (commit && p->epoch == epoch) {
                copies_commit(st, st->pages, p->pages);
                copies_commit(st, st->states, p->states);
                if (e->parity) {
                    distvm_parity_commit(e->parity, node, p->deltas);
                }
            }
            g_queue_delete_link(&st->pending, l);
            pending_free(p);
        }
        /*
         * A node gone has its pages held, and sent, by others now.  One
         * whose replica changed sends its new replica only the pages it
         * holds: the copies kept here of those it gave away stay the
         * newest elsewhere than on it.  A node lost is gone only once
         * every node sent all it holds since.
         */
        if (commit && !distvm_node_present(s, node) &&
            (!(e->lost_stores & BIT(node)) || epoch > e->lost_until)) {
            store_free(st);
            e->stores[node] = NULL;
        }
    }
    if (commit && epoch > e->lost_until) {
        e->lost_stores = 0;
    }
    if (commit) {
        qatomic_set(&e->committed, epoch);
        /* Where the placed devices ran when this node saved it */
        distvm_devices_committed(s, epoch);
    }
    qatomic_set(&e->ended, MAX(e->ended, epoch));
}

/*
 * A rollback to epoch @epoch, in the receive thread: a home lost as it
 * sent its COMMIT may have left this node without it, although another
 * node has it (the standby in its place takes the newest any node has),
 * and every node then keeps all of the epoch's data: it commits here
 * too.  The data of any later epoch is dropped: no home commits it now.
 */
static void stores_roll_back(DistvmState *s, uint64_t epoch)
{
    DistvmEpoch *e = s->epoch;

    qemu_mutex_lock(&e->lock);
    if (epoch > e->committed) {
        trace_distvm_epoch_commit_late(epoch);
        stores_end_epoch(s, epoch, true);
    }
    for (uint32_t node = 0; node < DISTVM_MAX_NODES; node++) {
        EpochStore *st = e->stores[node];
        GList *l, *next;

        for (l = st ? st->pending.head : NULL; l; l = next) {
            EpochPending *p = l->data;

            next = l->next;
            if (p->epoch > epoch) {
                g_queue_delete_link(&st->pending, l);
                pending_free(p);
            }
        }
    }
    qemu_mutex_unlock(&e->lock);
}

void distvm_epoch_send(DistvmState *s, uint32_t to, DistvmEpochStep step,
                       uint32_t node, uint64_t epoch, uint64_t bytes,
                       uint32_t vcpus)
{
    g_autoptr(GByteArray) m = g_byte_array_new();
    DistvmMsgEpoch msg = {
        .step = step, .node = node, .epoch = epoch, .bytes = bytes,
        .vcpus = vcpus,
    };

    distvm_wire_epoch(m, s->node_id, &msg);
    distvm_send(s, to, m);
}

/* Home: @step, about @node, to every other node of the cluster */
static void epoch_broadcast(DistvmState *s, DistvmEpochStep step,
                            uint32_t node, uint64_t epoch)
{
    uint32_t present = qatomic_read(&s->present);

    for (uint32_t i = 0; i < s->nodes; i++) {
        if ((present & BIT(i)) && i != s->node_id) {
            distvm_epoch_send(s, i, step, node, epoch, 0, 0);
        }
    }
}

/* ---- a node sends its epoch's data to its replica ---- */

typedef struct EpochSender {
    DistvmState *s;
    uint32_t to;
    uint64_t epoch;
    GByteArray *msg;            /* EPOCH_PAGES being filled, or empty */
    uint32_t block;             /* ... of this RAMBlock */
    uint64_t bytes;
    uint32_t vcpus;
    uint32_t kind;              /* of its pages: 0, ASK, DELTA or SLOT */
    EpochPending *own;          /* this node's own copy, or NULL */
    uint8_t *buf;               /* DELTA, SLOT: a page's, as sent */
} EpochSender;

static void sender_send(EpochSender *es)
{
    es->bytes += es->msg->len;
    distvm_send(es->s, es->to, es->msg);
    g_byte_array_set_size(es->msg, 0);
}

static void sender_flush_pages(EpochSender *es)
{
    if (es->msg->len) {
        distvm_wire_end(es->msg);
        sender_send(es);
    }
}

/* The page to send as @es->kind: with DELTA, its change to the parity */
static const void *sender_delta(EpochSender *es, uint32_t block,
                                uint64_t page, const void *data,
                                uint32_t *slot)
{
    DistvmEpoch *e = es->s->epoch;
    gpointer key = page_key(block, page);
    EpochCopy *old;
    bool changed;

    qemu_mutex_lock(&e->lock);
    *slot = distvm_parity_own_slot(e->parity, (uintptr_t)key);
    old = g_hash_table_lookup(store_of(e, es->s->node_id)->pages, key);
    changed = distvm_parity_xor(es->buf, data,
                                old && old->data ? old->data->data : NULL);
    qemu_mutex_unlock(&e->lock);
    return changed ? es->buf : NULL;
}

/* Add page @page of RAMBlock @block to the message @es fills */
static void sender_add(EpochSender *es, uint32_t block, uint64_t page,
                       uint32_t slot, const void *data)
{
    if (es->msg->len && es->block != block) {
        sender_flush_pages(es);
    }
    if (!es->msg->len) {
        distvm_wire_epoch_pages_begin(es->msg, es->s->node_id, es->epoch,
                                      block);
        es->block = block;
    }
    if (distvm_wire_epoch_pages_add_slot(es->msg, page, es->kind, slot,
                                         data) == DISTVM_EPOCH_PAGES_MAX) {
        sender_flush_pages(es);
    }
}

static void sender_page(void *opaque, uint32_t block, uint64_t page,
                        const void *data)
{
    EpochSender *es = opaque;
    const void *sent = data;
    uint32_t slot = 0;

    if (es->kind == DISTVM_EPOCH_PAGE_DELTA) {
        sent = sender_delta(es, block, page, data, &slot);
    }
    sender_add(es, block, page, slot, sent);
    if (es->own) {
        g_hash_table_replace(es->own->pages, page_key(block, page),
                             page_copy_new(es->epoch, data));
    }
}

static void sender_state(EpochSender *es, DistvmEpochStateKind kind,
                         uint32_t index, const GByteArray *state)
{
    DistvmMsgEpochState st = {
        .epoch = es->epoch, .kind = kind, .index = index,
        .total = state->len,
    };

    for (st.offset = 0; st.offset < state->len; st.offset += st.len) {
        st.len = MIN(state->len - st.offset, EPOCH_STATE_CHUNK);
        st.data = state->data + st.offset;
        distvm_wire_epoch_state(es->msg, es->s->node_id, &st);
        sender_send(es);
    }
    if (es->own) {
        g_hash_table_replace(es->own->states, state_key(kind, index),
                             copy_new(es->epoch, state->data, state->len));
    }
}

/* Home: the state of the machine's devices (QEMU's, as COLO saves it) */
static int devices_save_file(QEMUFile *f, void *opaque)
{
    int ret;

    /* The run state the guest has, which a rollback loads as migration */
    global_state_store();
    ret = qemu_save_device_state(f);
    if (!ret) {
        /* The disk writes held, for home's standby */
        distvm_output_disk_save(f);
        ret = qemu_file_get_error(f);
    }
    return ret;
}

static bool devices_save(GByteArray *out, Error **errp)
{
    int ret = distvm_state_save(out, 256 * KiB, devices_save_file, NULL);

    if (ret) {
        error_setg(errp, "distvm: cannot save the devices' state for a "
                   "checkpoint: %s", strerror(-ret));
    }
    return !ret;
}

/*
 * In the main loop, with every vCPU of the cluster held: send this
 * node's data of @epoch to its keeper (its replica, or home with
 * redundancy=parity, which gets the pages' changes to its parity), then
 * SENT.  False if the epoch cannot be taken now (see above), or a state
 * cannot be saved.
 */
static bool epoch_save(DistvmState *s, uint64_t epoch)
{
    DistvmEpoch *e = s->epoch;
    g_autoptr(GByteArray) msg = g_byte_array_new();
    bool delta = e->parity && !distvm_is_home(s);
    g_autofree uint8_t *buf = delta ? g_malloc(DISTVM_PAGE_SIZE) : NULL;
    EpochSender es = {
        .s = s, .to = distvm_epoch_keeper_of(s, s->node_id), .epoch = epoch,
        .msg = msg, .kind = delta ? DISTVM_EPOCH_PAGE_DELTA : 0, .buf = buf,
    };
    Error *err = NULL;
    CPUState *cpu;

    if (epoch <= qatomic_read(&e->ended)) {
        return false;   /* abandoned already: a lost node is taken over */
    }
    if (!distvm_guest_paused_whole() || !distvm_ram_quiesce(s, 1000)) {
        trace_distvm_epoch_busy(epoch, -1);
        return false;   /* stopped, run or reset meanwhile; pages on the way */
    }
    /* Leaving here, or coming: its state may be on its way */
    CPU_FOREACH(cpu) {
        if (distvm_vcpu_moving(s, cpu->cpu_index)) {
            trace_distvm_epoch_busy(epoch, cpu->cpu_index);
            return false;
        }
    }
    distvm_output_seal(epoch);
    distvm_netqueues_saved(s);
    distvm_devices_saved(s, epoch);
    /*
     * What it sends, this node keeps too: a node lost takes its replica's
     * copies with it, and so the only committed copy of its predecessor's
     */
    es.own = pending_new(epoch);
    CPU_FOREACH(cpu) {
        g_autoptr(GByteArray) state = g_byte_array_new();

        if (distvm_vcpu_node(s, cpu->cpu_index) != s->node_id) {
            continue;
        }
        if (!distvm_vcpu_save(cpu, state, &err)) {
            error_report_err(err);
            pending_free(es.own);
            return false;
        }
        sender_state(&es, DISTVM_EPOCH_STATE_VCPU, cpu->cpu_index, state);
        es.vcpus++;
    }
    if (distvm_is_home(s)) {
        g_autoptr(GByteArray) state = g_byte_array_new();

        if (!devices_save(state, &err)) {
            error_report_err(err);
            pending_free(es.own);
            return false;
        }
        sender_state(&es, DISTVM_EPOCH_STATE_DEVICES, 0, state);
    } else if (distvm_devices_on_node(s, s->node_id, false)) {
        g_autoptr(GByteArray) state = g_byte_array_new();

        if (!distvm_placed_state_save(s, state, &err)) {
            error_report_err(err);
            pending_free(es.own);
            return false;
        }
        sender_state(&es, DISTVM_EPOCH_STATE_PLACED, s->node_id, state);
    }
    distvm_ram_checkpoint_pages(s, es.to != e->sent_to, e->sent_aborted,
                                sender_page, &es);
    sender_flush_pages(&es);
    qemu_mutex_lock(&e->lock);
    own_pending_add(store_of(e, s->node_id), es.own);
    qemu_mutex_unlock(&e->lock);
    e->sent_to = es.to;
    e->sent_epoch = epoch;
    e->sent_aborted = false;
    trace_distvm_epoch_sent(epoch, es.to, es.bytes);
    distvm_epoch_send(s, es.to, DISTVM_EPOCH_SENT, s->node_id, epoch, es.bytes,
                      es.vcpus);
    return true;
}

/* ---- home: the epochs ---- */

static void epoch_arm(DistvmState *s, int64_t ms)
{
    timer_mod(s->epoch->timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + ms);
}

static void epoch_end(DistvmState *s)
{
    DistvmEpoch *e = s->epoch;

    e->phase = EPOCH_IDLE;
    /*
     * Every node paused: a device that a rollback brought home, and could
     * not send back at its end (its node's path was down), goes back now
     * that it may, without a rollback of its own (unless one is asked for,
     * or a lost node is being taken over, which would bring it home again)
     */
    if (!distvm_epoch_rollback_pending(s) && !distvm_recovery_busy(s)) {
        distvm_devices_send_away(s);
    }
    distvm_guest_resume(s);
    epoch_arm(s, s->checkpoint_ms);
    /* Until one begins a pause (a rollback): the rest wait for its end */
    while (e->when_idle && e->phase == EPOCH_IDLE) {
        g_autofree EpochWhenIdle *w = e->when_idle->data;

        e->when_idle = g_slist_delete_link(e->when_idle, e->when_idle);
        w->fn(s);
    }
}

void distvm_epoch_when_idle(DistvmState *s, void (*fn)(DistvmState *s))
{
    DistvmEpoch *e = s->epoch;
    EpochWhenIdle *w;

    if (!e || e->phase == EPOCH_IDLE) {
        fn(s);
        return;
    }
    w = g_new(EpochWhenIdle, 1);
    w->fn = fn;
    e->when_idle = g_slist_append(e->when_idle, w);
}

static uint32_t nr_vcpus_plugged(void);

/* The epoch begun is abandoned: the nodes drop its data */
static void epoch_abandon(DistvmState *s)
{
    DistvmEpoch *e = s->epoch;

    trace_distvm_epoch_abort(e->epoch);
    e->aborted++;
    epoch_broadcast(s, DISTVM_EPOCH_ABORT, 0, e->epoch);
    qemu_mutex_lock(&e->lock);
    stores_end_epoch(s, e->epoch, false);
    qemu_mutex_unlock(&e->lock);
    e->sent_aborted = true;
}

/*
 * Every node answered, and one could not save its data: after every
 * STORED, no data of the epoch is still on its way to a replica.
 */
static void epoch_abort(DistvmState *s)
{
    epoch_abandon(s);
    epoch_end(s);
}

/*
 * An epoch committed: the cluster as it was then, which a rollback needs
 * as it is (every node keeps it: its standby may take home's place)
 */
static void committed_cluster(DistvmState *s)
{
    DistvmEpoch *e = s->epoch;

    e->committed_vcpus = nr_vcpus_plugged();
    e->committed_present = qatomic_read(&s->present);
    e->committed_blocks = distvm_ram_next_block(s);
}

/*
 * Home: whether its standby may take its place if it is lost, among
 * @nodes: with another node, and no parity.  Then an epoch's output waits
 * for the standby's COMMITTED (the guest never goes back to before what
 * the world saw), and a home that ends leaves its committed disk writes
 * to the standby.
 */
static bool standby_may_take_over(DistvmState *s, uint32_t nodes)
{
    return !s->epoch->parity && ctpop32(nodes & ~BIT(s->node_id)) >= 2;
}

/* Home, ending: whether its standby may have taken its place since */
bool distvm_epoch_standby_may_write(DistvmState *s)
{
    return s->epoch && standby_may_take_over(s, s->epoch->committed_present);
}

static void epoch_commit(DistvmState *s)
{
    DistvmEpoch *e = s->epoch;
    uint64_t pause_us = (get_clock() - e->begun_ns) / SCALE_US;

    epoch_broadcast(s, DISTVM_EPOCH_COMMIT, 0, e->epoch);
    qemu_mutex_lock(&e->lock);
    stores_end_epoch(s, e->epoch, true);
    e->epochs++;
    e->last_pause_us = pause_us;
    e->last_bytes = e->bytes;
    e->all_bytes += e->bytes;
    e->pause_us[e->nr_pauses++ % EPOCH_PAUSE_SAMPLES] = MIN(pause_us,
                                                            UINT32_MAX);
    qemu_mutex_unlock(&e->lock);
    committed_cluster(s);
    distvm_netqueues_committed(s);
    trace_distvm_epoch_commit(e->epoch, pause_us, e->bytes);
    if (!standby_may_take_over(s, qatomic_read(&s->present))) {
        distvm_output_release(e->epoch);
    }
    epoch_end(s);
}

static uint32_t nr_vcpus_plugged(void)
{
    uint32_t n = 0;
    CPUState *cpu;

    CPU_FOREACH(cpu) {
        n++;
    }
    return n;
}

/*
 * Home: @node answered SAVE: its data is stored, with the states of
 * @vcpus vCPUs, or it is @busy.  Once every node answered, the epoch
 * commits if each vCPU's state was saved once: not one whose state was
 * on its way between two nodes.
 */
static void epoch_answered(DistvmState *s, uint32_t node, uint64_t epoch,
                           bool busy, uint64_t bytes, uint32_t vcpus)
{
    DistvmEpoch *e = s->epoch;

    if (e->phase != EPOCH_SAVING || epoch != e->epoch ||
        !(e->waiting & BIT(node))) {
        return;
    }
    e->waiting &= ~BIT(node);
    e->busy |= busy;
    e->bytes += bytes;
    e->vcpus += vcpus;
    if (e->waiting) {
        return;
    }
    if (distvm_recovery_busy(s)) {
        /*
         * A node found lost since it answered: its takeover abandons this
         * epoch, the guest still paused (distvm_epoch_recover()), and rolls
         * back to the last commit, whose cluster it counts on
         */
        return;
    }
    if (e->busy || e->vcpus != nr_vcpus_plugged()) {
        epoch_abort(s);
    } else {
        epoch_commit(s);
    }
}

/* Every node paused: all save their data, home first */
static void epoch_save_all(DistvmState *s)
{
    DistvmEpoch *e = s->epoch;

    e->phase = EPOCH_SAVING;
    e->waiting = qatomic_read(&s->present);
    e->busy = false;
    e->bytes = 0;
    e->vcpus = 0;
    if (distvm_guest_paused_whole()) {
        /* It may read pages that other nodes hold: before they save */
        distvm_netqueues_checkpoint(s);
    }
    epoch_broadcast(s, DISTVM_EPOCH_SAVE, 0, e->epoch);
    if (!epoch_save(s, e->epoch)) {
        epoch_answered(s, s->node_id, e->epoch, true, 0, 0);
    }
}

uint64_t distvm_epoch_committed(DistvmState *s)
{
    return s->epoch ? qatomic_read(&s->epoch->committed) : 0;
}

bool distvm_epoch_taken(DistvmState *s)
{
    return s->epoch && distvm_replica_of(s, s->node_id) != s->node_id;
}

/* Whether home can take an epoch now */
static bool epoch_can_begin(DistvmState *s)
{
    return qatomic_read(&s->state) == DISTVM_CLUSTER_STATE_RUNNING &&
           runstate_is_running() &&
           qatomic_read(&s->joining) == UINT32_MAX &&
           qatomic_read(&s->draining) == UINT32_MAX &&
           distvm_replica_of(s, s->node_id) != s->node_id;
}

static void epoch_begin(DistvmState *s)
{
    DistvmEpoch *e = s->epoch;

    e->epoch++;
    e->phase = EPOCH_STOPPING;
    e->waiting = qatomic_read(&s->present) & ~BIT(s->node_id);
    e->begun_ns = get_clock();
    trace_distvm_epoch_begin(e->epoch, e->waiting);
    distvm_guest_pause(s, e->epoch);
    /* Until the nodes answer: past peer-timeout, one is lost */
    epoch_arm(s, s->peer_timeout * 1000);
}

/* How long home waits for the nodes' answers to a step of an epoch */
static int64_t epoch_answer_ns(DistvmState *s)
{
    return 2 * (int64_t)s->peer_timeout * NANOSECONDS_PER_SECOND;
}

/* A node home waits for did not answer in time */
static void epoch_timed_out(DistvmState *s)
{
    DistvmEpoch *e = s->epoch;
    uint32_t node = ctz32(e->waiting);
    g_autofree char *why = NULL;

    if (e->recovering && !e->waiting) {
        distvm_fatal_node_lost(s, s->node_id, "the nodes could not take a "
                               "lost node's part over within twice "
                               "peer-timeout");
        return;
    }
    if (e->phase == EPOCH_SAVING && !e->waiting) {
        /*
         * Every node saved, and a node lost meanwhile is being taken over:
         * its takeover ends the epoch (epoch_answered()), and the watch
         * thread bounds it (distvm_recovery_watch())
         */
        return;
    }
    if (e->phase == EPOCH_STOPPING) {
        why = g_strdup_printf("it did not pause the guest for checkpoint "
                              "epoch %" PRIu64 " within twice peer-timeout=%"
                              PRIu32 " s", e->epoch, s->peer_timeout);
    } else if (e->phase == EPOCH_ROLLING) {
        why = g_strdup_printf("it did not roll back to checkpoint epoch %"
                              PRIu64 " within twice peer-timeout=%" PRIu32
                              " s", e->committed, s->peer_timeout);
    } else {
        uint32_t primary = node;

        node = distvm_epoch_keeper_of(s, primary);
        why = g_strdup_printf("node %" PRIu32 "'s data of checkpoint epoch %"
                              PRIu64 " was not stored on it, its keeper, "
                              "within twice peer-timeout=%" PRIu32 " s",
                              primary,
                              e->epoch, s->peer_timeout);
        if (node == s->node_id) {
            node = primary;
        }
    }
    distvm_fatal_node_lost(s, node, why);
}

static void rollback_all(DistvmState *s);

static void epoch_tick(void *opaque)
{
    DistvmState *s = opaque;
    DistvmEpoch *e = s->epoch;

    if (e->phase == EPOCH_ROLLING && !e->waiting &&
        get_clock() - e->rollback_begun_ns >=
        (int64_t)s->peer_timeout * NANOSECONDS_PER_SECOND) {
        /* Some nodes restored what they hold: the guest cannot go on */
        distvm_fatal_node_lost(s, s->node_id, "the nodes could not roll "
                               "back to the last committed checkpoint "
                               "epoch within peer-timeout: a vCPU moved, or "
                               "pages travelled, all along");
    } else if (e->phase == EPOCH_ROLLING && !e->waiting) {
        rollback_all(s);        /* a node was busy: again */
    } else if (e->phase != EPOCH_IDLE) {
        if (get_clock() - e->begun_ns >= epoch_answer_ns(s)) {
            epoch_timed_out(s);
        } else {
            epoch_arm(s, s->peer_timeout * 1000);
        }
    } else if (epoch_can_begin(s)) {
        epoch_begin(s);
        if (e->phase == EPOCH_STOPPING && !e->waiting) {
            epoch_save_all(s);
        }
    } else {
        epoch_arm(s, s->checkpoint_ms);
    }
}

void distvm_epoch_node_paused(DistvmState *s, uint32_t node, uint64_t epoch)
{
    DistvmEpoch *e = s->epoch;

    if (!e || e->phase != EPOCH_STOPPING || epoch != e->epoch ||
        !(e->waiting & BIT(node))) {
        return;
    }
    e->waiting &= ~BIT(node);
    if (!e->waiting && e->recovering) {
        distvm_recovery_settle_all(s);
    } else if (!e->waiting && e->rolling) {
        rollback_all(s);
    } else if (!e->waiting) {
        epoch_save_all(s);
    }
}


/* ---- rolling back to the last committed epoch ---- */

/*
 * With e->lock: the newest committed copy of page @key that this node
 * keeps, of any node, or NULL
 */
static EpochCopy *newest_page(DistvmEpoch *e, gpointer key)
{
    EpochCopy *newest = NULL;

    for (uint32_t node = 0; node < DISTVM_MAX_NODES; node++) {
        EpochStore *st = e->stores[node];
        EpochCopy *c = st ? g_hash_table_lookup(st->pages, key) : NULL;

        if (c && (!newest || c->epoch > newest->epoch)) {
            newest = c;
        }
    }
    return newest;
}

/* A whole copy @c, committed */
static EpochCopy *copy_dup(const EpochCopy *c)
{
    return copy_new(c->epoch, c->data ? c->data->data : NULL,
                    c->data ? c->data->len : 0);
}

/* With e->lock: keep @c in @table at @key if it is newer; frees it if not */
static void copy_offer(GHashTable *table, gpointer key, EpochCopy *c)
{
    EpochCopy *old = g_hash_table_lookup(table, key);

    if (old && old->epoch >= c->epoch) {
        copy_free(c);
    } else {
        g_hash_table_replace(table, key, c);
    }
}

/* Whether a state of @kind is of devices, which only home loads */
static bool state_of_devices(uint32_t kind)
{
    return kind == DISTVM_EPOCH_STATE_DEVICES ||
           kind == DISTVM_EPOCH_STATE_PLACED;
}

/*
 * With e->lock: into @newest, a copy of the newest committed state of
 * each vCPU that this node keeps, and of the devices if @devices
 */
static void newest_states(DistvmEpoch *e, bool devices, GHashTable *newest)
{
    GHashTableIter it;
    gpointer key, value;

    for (uint32_t node = 0; node < DISTVM_MAX_NODES; node++) {
        if (!e->stores[node]) {
            continue;
        }
        g_hash_table_iter_init(&it, e->stores[node]->states);
        while (g_hash_table_iter_next(&it, &key, &value)) {
            if (devices || !state_of_devices((uintptr_t)key >> 32)) {
                copy_offer(newest, key, copy_dup(value));
            }
        }
    }
}

static void rollback_free(EpochRollback *rb)
{
    g_array_free(rb->pages, true);
    g_hash_table_unref(rb->pages_asked);
    g_hash_table_unref(rb->states);
    g_hash_table_unref(rb->partial);
    g_free(rb);
}

static void rollback_page(void *opaque, uint32_t block, uint64_t page)
{
    EpochRollback *rb = opaque;
    DistvmPageRef ref = { .block = block, .page = page };

    g_array_append_val(rb->pages, ref);
}

/* Ask @to for the committed copies of the pages, then FETCH */
static void rollback_ask(DistvmState *s, EpochRollback *rb, uint32_t to)
{
    g_autoptr(GByteArray) msg = g_byte_array_new();
    EpochSender es = {
        .s = s, .to = to, .epoch = rb->epoch, .msg = msg,
        .kind = DISTVM_EPOCH_PAGE_ASK,
    };

    for (guint i = 0; i < rb->pages->len; i++) {
        DistvmPageRef *ref = &g_array_index(rb->pages, DistvmPageRef, i);

        sender_page(&es, ref->block, ref->page, NULL);
    }
    sender_flush_pages(&es);
    distvm_epoch_send(s, to, DISTVM_EPOCH_FETCH, s->node_id, rb->epoch, 0, 0);
}

static void rollback_answer(DistvmState *s, bool busy, uint32_t vcpus);
static void rollback_apply(DistvmState *s);

/*
 * ROLLBACK, in the main loop, with the guest paused: find the pages this
 * node must restore, take the copies of them that it keeps, and ask the
 * other nodes for theirs (rollback_apply() goes on once all came).
 */
static void rollback_start(DistvmState *s, uint64_t epoch, uint32_t lost)
{
    DistvmEpoch *e = s->epoch;
    EpochRollback *rb;
    CPUState *cpu;

    /* A run state change or a reset meanwhile: rolled back too */
    if (!distvm_guest_paused() || !distvm_ram_quiesce(s, 1000)) {
        rollback_answer(s, true, 0);
        return;
    }
    CPU_FOREACH(cpu) {
        if (distvm_vcpu_moving(s, cpu->cpu_index)) {
            rollback_answer(s, true, 0);
            return;
        }
    }
    if (e->home_rollback) {
        /* A node was busy: all again */
        rollback_free(e->home_rollback);
        e->home_rollback = NULL;
    }
    rb = g_new0(EpochRollback, 1);
    rb->epoch = epoch;
    rb->pages = g_array_new(false, false, sizeof(DistvmPageRef));
    rb->pages_asked = copies_new();
    rb->states = copies_new();
    rb->partial = copies_new();
    /* Home is never lost here: it means none */
    if (lost == distvm_home(s)) {
        lost = UINT32_MAX;
    }
    rb->waiting = qatomic_read(&s->present) & ~BIT(s->node_id);
    if (lost < s->nodes) {
        rb->waiting &= ~BIT(lost);
        qemu_mutex_lock(&e->lock);
        rb->took_over = e->lost_stores & BIT(lost);
        qemu_mutex_unlock(&e->lock);
    }
    distvm_ram_rollback_pages(s, e->sent_aborted, rollback_page, rb);
    trace_distvm_epoch_rollback_start(epoch, rb->pages->len);
    /* Home saved the devices' state, but that of those placed elsewhere */
    distvm_devices_go_home(s, e->took_home && lost < s->nodes ? lost :
                           distvm_home(s));

    qemu_mutex_lock(&e->lock);
    for (guint i = 0; lost != s->node_id && i < rb->pages->len; i++) {
        DistvmPageRef *ref = &g_array_index(rb->pages, DistvmPageRef, i);
        gpointer key = page_key(ref->block, ref->page);
        EpochCopy *c = newest_page(e, key);

        if (c) {
            g_hash_table_replace(rb->pages_asked, key, copy_dup(c));
        }
    }
    if (lost != s->node_id) {
        newest_states(e, distvm_is_home(s), rb->states);
    }
    assert(!e->rollback);
    e->rollback = rb;
    qemu_mutex_unlock(&e->lock);

    for (uint32_t n = 0; n < s->nodes; n++) {
        if (rb->waiting & BIT(n)) {
            rollback_ask(s, rb, n);
        }
    }
    if (!rb->waiting) {
        rollback_apply(s);
    }
}

/* A copy this node keeps of a page asked for */
typedef struct AskedCopy {
    uint64_t page;
    const EpochCopy *copy;
} AskedCopy;

static int cmp_asked_epoch(const void *a, const void *b)
{
    uint64_t x = ((const AskedCopy *)a)->copy->epoch;
    uint64_t y = ((const AskedCopy *)b)->copy->epoch;

    return x < y ? -1 : x > y;
}

/*
 * In the receive thread: @msg's sender asks for the copies of pages.  It
 * gets the newest each that this node keeps, in one message per epoch.
 */
static void rollback_ask_received(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgEpochPages *ep = &msg->u.epoch_pages;
    DistvmEpoch *e = s->epoch;
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_byte_array_unref);
    AskedCopy found[DISTVM_EPOCH_PAGES_MAX];
    const uint8_t *pos = ep->entries;
    GByteArray *m = NULL;
    uint32_t n = 0;

    qemu_mutex_lock(&e->lock);
    for (uint32_t i = 0; i < ep->count; i++) {
        uint64_t page;
        EpochCopy *c;

        distvm_wire_epoch_page(&pos, &page);
        c = newest_page(e, page_key(ep->block, page));
        if (c && c->epoch <= ep->epoch) {
            found[n++] = (AskedCopy) { .page = page, .copy = c };
        }
    }
    qsort(found, n, sizeof(found[0]), cmp_asked_epoch);
    for (uint32_t i = 0; i < n; i++) {
        const EpochCopy *c = found[i].copy;

        if (!i || c->epoch != found[i - 1].copy->epoch) {
            m = g_byte_array_new();
            g_ptr_array_add(out, m);
            distvm_wire_epoch_pages_begin(m, s->node_id, c->epoch,
                                          ep->block);
        }
        distvm_wire_epoch_pages_add(m, found[i].page, DISTVM_EPOCH_PAGE_COPY,
                                    c->data ? c->data->data : NULL);
    }
    qemu_mutex_unlock(&e->lock);
    for (guint i = 0; i < out->len; i++) {
        distvm_wire_end(g_ptr_array_index(out, i));
        distvm_send(s, msg->hdr.src, g_ptr_array_index(out, i));
    }
}

/*
 * In the receive thread: @msg's sender asked for all it needs (FETCH):
 * send it the committed states this node keeps, of the vCPUs and, to
 * home, of the devices, then FETCHED.
 */
static void rollback_fetch_received(DistvmState *s, const DistvmMsg *msg)
{
    DistvmEpoch *e = s->epoch;
    uint32_t to = msg->hdr.src;
    uint64_t epoch = msg->u.epoch.epoch;
    g_autoptr(GByteArray) m = g_byte_array_new();
    g_autoptr(GHashTable) newest = copies_new();
    GHashTableIter it;
    gpointer key, value;

    /* All committed: none after @epoch, the last commit */
    qemu_mutex_lock(&e->lock);
    newest_states(e, to == distvm_home(s), newest);
    qemu_mutex_unlock(&e->lock);
    g_hash_table_iter_init(&it, newest);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        EpochCopy *c = value;
        EpochSender es = { .s = s, .to = to, .epoch = c->epoch, .msg = m };
        uint32_t kind = (uintptr_t)key >> 32;

        sender_state(&es, kind == DISTVM_EPOCH_STATE_DEVICES ?
                     DISTVM_EPOCH_STATE_DEVICES_COPY :
                     kind == DISTVM_EPOCH_STATE_PLACED ?
                     DISTVM_EPOCH_STATE_PLACED_COPY :
                     DISTVM_EPOCH_STATE_VCPU_COPY,
                     (uint32_t)(uintptr_t)key, c->data);
    }
    distvm_epoch_send(s, to, DISTVM_EPOCH_FETCHED, s->node_id, epoch, 0, 0);
}

/*
 * In the receive thread, with e->lock held: the rollback this node is
 * in, or NULL, @msg refused
 */
static EpochRollback *rollback_of(DistvmState *s, const DistvmMsg *msg,
                                  uint64_t epoch)
{
    EpochRollback *rb = s->epoch->rollback;

    if (!rb || epoch > rb->epoch || !(rb->waiting & BIT(msg->hdr.src))) {
        distvm_msg_refused(s, msg->hdr.src, "%s of epoch %" PRIu64 " that "
                           "no rollback of this node asked for",
                           distvm_msg_type_name(msg->hdr.type), epoch);
        return NULL;
    }
    return rb;
}

/* In the receive thread: a committed copy of a page this node asked for */
static void rollback_copy_received(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgEpochPages *ep = &msg->u.epoch_pages;
    DistvmEpoch *e = s->epoch;
    const uint8_t *pos = ep->entries;
    EpochRollback *rb;

    qemu_mutex_lock(&e->lock);
    rb = rollback_of(s, msg, ep->epoch);
    for (uint32_t i = 0; rb && i < ep->count; i++) {
        uint64_t page;
        const uint8_t *data = distvm_wire_epoch_page(&pos, &page);

        copy_offer(rb->pages_asked, page_key(ep->block, page),
                   page_copy_new(ep->epoch, data));
    }
    qemu_mutex_unlock(&e->lock);
}

/* In the receive thread: part of a committed state, for this node */
static void rollback_state_received(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgEpochState *es = &msg->u.epoch_state;
    uint32_t kind = es->kind == DISTVM_EPOCH_STATE_DEVICES_COPY ?
                    DISTVM_EPOCH_STATE_DEVICES :
                    es->kind == DISTVM_EPOCH_STATE_PLACED_COPY ?
                    DISTVM_EPOCH_STATE_PLACED : DISTVM_EPOCH_STATE_VCPU;
    gpointer key = state_key(kind, es->index);
    gpointer part_key = (gpointer)((uintptr_t)key |
                                   (uint64_t)msg->hdr.src << 48);
    DistvmEpoch *e = s->epoch;
    EpochRollback *rb;
    EpochCopy *c;

    qemu_mutex_lock(&e->lock);
    rb = rollback_of(s, msg, es->epoch);
    if (!rb) {
        qemu_mutex_unlock(&e->lock);
        return;
    }
    c = g_hash_table_lookup(rb->partial, part_key);
    if (es->offset == 0) {
        c = g_new0(EpochCopy, 1);
        c->epoch = es->epoch;
        c->total = es->total;
        c->data = g_byte_array_new();
        g_hash_table_replace(rb->partial, part_key, c);
    } else if (!c || c->total != es->total || c->epoch != es->epoch ||
               c->data->len != es->offset) {
        qemu_mutex_unlock(&e->lock);
        distvm_msg_refused(s, msg->hdr.src, "EPOCH_STATE: bytes %" PRIu32
                           " of a committed state of kind %" PRIu32
                           " and index %" PRIu32 " out of order", es->offset,
                           es->kind, es->index);
        return;
    }
    g_byte_array_append(c->data, es->data, es->len);
    if (c->data->len == c->total) {
        g_hash_table_steal(rb->partial, part_key);
        copy_offer(rb->states, key, c);
    }
    qemu_mutex_unlock(&e->lock);
}

/* In the main loop: @node sent all this node asked it for */
static void rollback_fetched(DistvmState *s, uint32_t node)
{
    DistvmEpoch *e = s->epoch;
    bool done;

    qemu_mutex_lock(&e->lock);
    if (!e->rollback) {
        qemu_mutex_unlock(&e->lock);
        return;
    }
    e->rollback->waiting &= ~BIT(node);
    done = !e->rollback->waiting;
    qemu_mutex_unlock(&e->lock);
    if (done) {
        rollback_apply(s);
    }
}

/* Home: QEMU's device state, as devices_save() made it */
/* As qemu_save_device_state() wrote it, with its header */
static int devices_load_file(QEMUFile *f, void *opaque)
{
    Error **errp = opaque;
    int ret;

    if (qemu_get_be32(f) != QEMU_VM_FILE_MAGIC ||
        qemu_get_be32(f) != QEMU_VM_FILE_VERSION) {
        return -EINVAL;
    }
    ret = qemu_load_device_state(f);
    if (!ret && errp && !distvm_output_disk_replay(f, errp)) {
        return -EIO;
    }
    return ret;
}

/*
 * Load the devices' @state; in home's place (@took_home), its disk images
 * active, write what home held of its disks too
 */
static bool devices_load(const GByteArray *state, bool took_home,
                         Error **errp)
{
    Error *err = NULL;
    int ret = distvm_state_load(state->data, state->len, devices_load_file,
                                took_home ? &err : NULL);

    if (err) {
        error_propagate_prepend(errp, err, "distvm: in the home node's "
                                "place: ");
    } else if (ret < 0) {
        error_setg(errp, "distvm: cannot load the devices' state of the "
                   "last committed epoch: %s", strerror(-ret));
    }
    return !err && ret >= 0;
}

/*
 * Load the committed states of the vCPUs this node runs, and tell the
 * other nodes their LAPICs' addressing.  Counts them in @vcpus.
 */
static bool rollback_load_vcpus(DistvmState *s, EpochRollback *rb,
                                uint32_t *vcpus, Error **errp)
{
    CPUState *cpu;

    CPU_FOREACH(cpu) {
        EpochCopy *c;

        if (distvm_vcpu_node(s, cpu->cpu_index) != s->node_id) {
            continue;
        }
        c = g_hash_table_lookup(rb->states,
                                state_key(DISTVM_EPOCH_STATE_VCPU,
                                          cpu->cpu_index));
        if (!c) {
            error_setg(errp, "no node keeps the state of vCPU %d",
                       cpu->cpu_index);
            return false;
        }
        if (!distvm_vcpu_load(cpu, c->data->data, c->data->len, errp)) {
            return false;
        }
        tlb_flush(cpu);
        distvm_vcpu_tell_apic(cpu);
        (*vcpus)++;
    }
    return true;
}

/*
 * A rollback that took a lost node over is done here: the lost node's
 * copies are kept until every node sent all it holds, in its next epoch
 */
static void rollback_took_over(DistvmState *s, EpochRollback *rb)
{
    DistvmEpoch *e = s->epoch;

    if (!rb->took_over) {
        return;
    }
    qemu_mutex_lock(&e->lock);
    e->lost_until = rb->epoch;
    qemu_mutex_unlock(&e->lock);
    e->sent_to = UINT32_MAX;
}

/* The guest is in no state to go on: the cluster ends.  Frees @err, @rb */
static void rollback_failed(DistvmState *s, EpochRollback *rb, Error *err)
{
    error_prepend(&err, "cannot roll back to checkpoint epoch %" PRIu64
                  ": ", rb->epoch);
    rollback_free(rb);
    distvm_fatal_node_lost(s, s->node_id, error_get_pretty(err));
    error_free(err);
}

/*
 * Every node sent what this node asked for: restore the pages as they
 * were when the epoch committed (every page has a copy since the first
 * epoch committed: the nodes sent all they held), then, except on home,
 * the vCPUs this node runs, and drop the output made since.  Home loads
 * its vCPUs and the devices once every node restored its pages
 * (rollback_finish_home()): a device's state may point into guest RAM.
 */
static void rollback_apply(DistvmState *s)
{
    DistvmEpoch *e = s->epoch;
    EpochRollback *rb;
    Error *err = NULL;
    uint32_t vcpus = 0;
    CPUState *cpu;

    qemu_mutex_lock(&e->lock);
    rb = e->rollback;
    e->rollback = NULL;
    qemu_mutex_unlock(&e->lock);

    for (guint i = 0; i < rb->pages->len; i++) {
        DistvmPageRef *ref = &g_array_index(rb->pages, DistvmPageRef, i);
        EpochCopy *c = g_hash_table_lookup(rb->pages_asked,
                                           page_key(ref->block, ref->page));

        if (!c) {
            error_setg(&err, "no node keeps page %" PRIu64 " of RAMBlock %"
                       PRIu32, ref->page, ref->block);
            rollback_failed(s, rb, err);
            return;
        }
        distvm_ram_restore_page(s, ref->block, ref->page,
                                c->data ? c->data->data : NULL);
    }
    if (distvm_is_home(s)) {
        CPU_FOREACH(cpu) {
            vcpus += distvm_vcpu_node(s, cpu->cpu_index) == s->node_id;
        }
        e->home_rollback = rb;
        rollback_answer(s, false, vcpus);
        return;
    }
    if (!rollback_load_vcpus(s, rb, &vcpus, &err)) {
        rollback_failed(s, rb, err);
        return;
    }
    distvm_output_rollback(rb->epoch);
    distvm_netqueues_rolled_back(s);
    distvm_devpath_rolled_back(s);
    rollback_took_over(s, rb);
    trace_distvm_epoch_rollback_done(rb->epoch, rb->pages->len, vcpus);
    rollback_free(rb);
    rollback_answer(s, false, vcpus);
}

/* Home: over the devices' state, that of those brought home */
static bool placed_load(DistvmState *s, EpochRollback *rb, Error **errp)
{
    for (uint32_t n = 0; n < s->nodes; n++) {
        EpochCopy *c;

        if (!distvm_devices_taken_from(s, n)) {
            continue;
        }
        c = g_hash_table_lookup(rb->states,
                                state_key(DISTVM_EPOCH_STATE_PLACED, n));
        if (!c) {
            error_setg(errp, "no node keeps the state of the devices that "
                       "node %" PRIu32 " ran", n);
            return false;
        }
        if (!distvm_placed_state_load(s, n, c->data, errp)) {
            return false;
        }
    }
    return true;
}

/*
 * Home, every node's pages restored: load the devices, then home's
 * vCPUs; the other nodes take home's host bridge and PM timer as they
 * are now.
 */
static bool rollback_finish_home(DistvmState *s)
{
    DistvmEpoch *e = s->epoch;
    EpochRollback *rb = e->home_rollback;
    Error *err = NULL;
    uint32_t vcpus = 0;
    EpochCopy *c;

    e->home_rollback = NULL;
    c = g_hash_table_lookup(rb->states,
                            state_key(DISTVM_EPOCH_STATE_DEVICES, 0));
    if (!c) {
        error_setg(&err, "no node keeps the devices' state");
    }
    /* In home's place: its disks, as home held them, and held from now */
    if (!err && e->took_home) {
        distvm_output_disk_activate(&err);
    }
    if (!err) {
        /* Before the cards load: which of their pairs home serves now */
        distvm_netqueues_rolled_back(s);
    }
    if (!err && devices_load(c->data, e->took_home, &err) &&
        placed_load(s, rb, &err)) {
        distvm_devices_rolled_back(s);
        distvm_vcpu_stop_foreign_timers(s);
        rollback_load_vcpus(s, rb, &vcpus, &err);
    }
    if (!err && e->took_home && !distvm_output_disk_hold(&err)) {
        error_prepend(&err, "cannot hold the guest's disk writes until "
                      "their epoch commits: ");
    }
    e->took_home = false;
    if (err) {
        rollback_failed(s, rb, err);
        return false;
    }
    for (uint32_t n = 0; n < s->nodes; n++) {
        if (n != s->node_id && distvm_node_present(s, n)) {
            distvm_chipset_send_state(s, n);
        }
    }
    /* Before the guest runs: the devices placed elsewhere go back */
    distvm_devices_send_away(s);
    distvm_pic_output_resend(s);
    distvm_clock_update(s);
    /* What committed may wait for a COMMITTED of a node lost since */
    distvm_output_release(rb->epoch);
    distvm_output_rollback(rb->epoch);
    rollback_took_over(s, rb);
    trace_distvm_epoch_rollback_done(rb->epoch, rb->pages->len, vcpus);
    rollback_free(rb);
    return true;
}

static void rollback_answered(DistvmState *s, uint32_t node, bool busy,
                              uint32_t vcpus);

static void rollback_answer(DistvmState *s, bool busy, uint32_t vcpus)
{
    if (distvm_is_home(s)) {
        rollback_answered(s, s->node_id, busy, vcpus);
    } else {
        distvm_epoch_send(s, distvm_home(s), busy ? DISTVM_EPOCH_BUSY :
                          DISTVM_EPOCH_ROLLED, s->node_id, s->epoch->committed,
                          0, vcpus);
    }
}

/* Home, every node paused: all roll back, home too */
static void rollback_all(DistvmState *s)
{
    DistvmEpoch *e = s->epoch;

    e->phase = EPOCH_ROLLING;
    e->waiting = qatomic_read(&s->present);
    e->busy = false;
    e->vcpus = 0;
    e->begun_ns = get_clock();
    epoch_arm(s, s->peer_timeout * 1000);
    epoch_broadcast(s, DISTVM_EPOCH_ROLLBACK, e->rolling_lost, e->committed);
    stores_roll_back(s, e->committed);
    e->sent_aborted |= e->sent_epoch > e->committed;
    rollback_start(s, e->committed, e->rolling_lost);
}

/*
 * Home: @node rolled back, with @vcpus vCPU states loaded, or could not
 * now (@busy).  Once every node answered, the guest runs on if each
 * vCPU was loaded once; if a node could not, all try again 10 ms later,
 * the guest still paused (what some did, they do again).
 */
static void rollback_answered(DistvmState *s, uint32_t node, bool busy,
                              uint32_t vcpus)
{
    DistvmEpoch *e = s->epoch;
    g_autofree char *why = NULL;

    if (e->phase != EPOCH_ROLLING || !(e->waiting & BIT(node))) {
        return;
    }
    e->waiting &= ~BIT(node);
    e->busy |= busy;
    e->vcpus += vcpus;
    if (e->waiting) {
        return;
    }
    if (e->busy) {
        epoch_arm(s, 10);
        return;
    }
    if (e->vcpus != nr_vcpus_plugged()) {
        why = g_strdup_printf("the nodes loaded %" PRIu32 " vCPU states of "
                              "checkpoint epoch %" PRIu64 " where the guest "
                              "has %" PRIu32 " vCPUs", e->vcpus,
                              e->committed, nr_vcpus_plugged());
        distvm_fatal_node_lost(s, s->node_id, why);
        return;
    }
    if (!rollback_finish_home(s)) {
        return;
    }
    e->rolling = false;
    if (!e->number_ended) {
        e->epoch--;             /* its number was only the pause's */
    }
    e->number_ended = false;
    e->rollbacks++;
    e->last_rollback_us = (get_clock() - e->rollback_begun_ns) / SCALE_US;
    trace_distvm_epoch_rolled_back(e->committed, e->last_rollback_us);
    if (e->recovering) {
        /*
         * The lost node's copies are still needed until the next commit
         * (its replica keeps them): no other loss, no rollback until then
         */
        e->recovering = false;
        e->committed_present = 0;
        distvm_recovery_done(s);
    }
    epoch_end(s);
}

/*
 * From any thread, as node @node is found lost: the copies this node
 * keeps of it stay until the others sent all they hold
 */
void distvm_epoch_keep_lost(DistvmState *s, uint32_t node)
{
    DistvmEpoch *e = s->epoch;

    qemu_mutex_lock(&e->lock);
    e->lost_stores |= BIT(node);
    e->lost_until = UINT64_MAX;
    qemu_mutex_unlock(&e->lock);
}

/*
 * Home, in the main loop: lost node @lost's part is taken over
 * (distvm-recovery.c): the guest pauses as for an epoch, the one under
 * way abandoned; once every node paused, distvm_recovery_settle_all().
 */
void distvm_epoch_recover(DistvmState *s, uint32_t lost)
{
    DistvmEpoch *e = s->epoch;
    const char *refusal = distvm_epoch_recover_refusal(s, lost);

    if (refusal) {
        g_autofree char *why = g_strdup_printf(
            "node %" PRIu32 " was lost, and its part cannot be taken over: "
            "%s", lost, refusal);

        distvm_fatal_node_lost(s, s->node_id, why);
        return;
    }
    if (e->phase == EPOCH_SAVING) {
        /* Its data may have been on the lost node: not to be committed */
        epoch_abandon(s);
        e->number_ended = true;
        e->phase = EPOCH_STOPPING;
        e->waiting = 0;
    } else if (e->phase == EPOCH_STOPPING) {
        e->waiting &= ~BIT(lost);
    }
    e->recovering = true;
    e->rolling = true;
    e->rolling_lost = lost;
    e->rollback_begun_ns = get_clock();
    if (e->phase == EPOCH_IDLE) {
        epoch_begin(s);
    } else {
        e->begun_ns = get_clock();
        epoch_arm(s, s->peer_timeout * 1000);
    }
    if (e->phase == EPOCH_STOPPING && !e->waiting) {
        distvm_recovery_settle_all(s);
    }
}

/*
 * Home, in the place of a home lost: before the rollback, the newest
 * epoch that a node saw committed, @epoch, is committed here too, if it
 * was not (the lost home's COMMIT did not reach this node)
 */
void distvm_epoch_commit_late(DistvmState *s, uint64_t epoch)
{
    if (epoch > distvm_epoch_committed(s)) {
        stores_roll_back(s, epoch);
        distvm_output_release(epoch);
    }
}

/*
 * This node, the lost home's standby, is home now (distvm-recovery.c):
 * it takes the epochs over.  The number after the last epoch ended here
 * may be one the lost home had begun: it is not used again.
 */
void distvm_epoch_take_home(DistvmState *s)
{
    DistvmEpoch *e = s->epoch;

    e->epoch = qatomic_read(&e->ended) + 1;
    e->phase = EPOCH_IDLE;
    e->took_home = true;
    if (!e->timer) {
        e->timer = timer_new_ms(QEMU_CLOCK_REALTIME, epoch_tick, s);
    }
}

/*
 * Why this node cannot take the place of home, lost, as its standby, or
 * NULL if it can
 */
const char *distvm_epoch_home_refusal(DistvmState *s)
{
    bool rolling, took_over;

    qemu_mutex_lock(&s->epoch->lock);
    rolling = s->epoch->rollback != NULL;
    took_over = s->epoch->lost_stores != 0;
    qemu_mutex_unlock(&s->epoch->lock);
    if (rolling) {
        return "the guest was rolling back";
    }
    if (took_over) {
        return "another node was taken over since the last commit";
    }
    if (s->epoch->parity) {
        return "home keeps the parity of the others' pages "
               "(redundancy=parity)";
    }
    /* The other nodes' disks are never written */
    if (s->epoch->stand_in &&
        distvm_replica_of(s, distvm_home(s)) == s->node_id) {
        return s->epoch->stand_in;
    }
    return NULL;
}

/* Home: every node knows where each vCPU runs: roll back */
void distvm_epoch_recover_rollback(DistvmState *s)
{
    /* Retried while a node is busy, for at most peer-timeout from now */
    s->epoch->rollback_begun_ns = get_clock();
    rollback_all(s);
}

/*
 * Home: why the cluster cannot take lost node @lost's part over, or NULL.
 * From any thread as the node is found lost, then in the main loop.
 */
const char *distvm_epoch_recover_refusal(DistvmState *s, uint32_t lost)
{
    DistvmEpoch *e = s->epoch;

    if (!e->committed ||
        e->committed_present != (qatomic_read(&s->present) | BIT(lost))) {
        return "no checkpoint epoch was committed since the cluster last "
               "changed";
    }
    if (e->committed_blocks != distvm_ram_next_block(s) ||
        e->committed_vcpus != nr_vcpus_plugged()) {
        return "memory or a vCPU was plugged since the last committed "
               "checkpoint epoch";
    }
    if (e->phase == EPOCH_ROLLING) {
        return "the guest was rolling back";
    }
    return NULL;
}

/* Home: whether the cluster can roll back to its last commit now */
static bool rollback_possible(DistvmState *s, Error **errp)
{
    DistvmEpoch *e = s->epoch;

    if (!e->committed) {
        error_setg(errp, "distvm: no checkpoint epoch was committed yet");
    } else if (!epoch_can_begin(s)) {
        error_setg(errp, "distvm: the guest must run, with no node joining "
                   "or being drained, to be rolled back");
    } else if (e->committed_vcpus != nr_vcpus_plugged()) {
        error_setg(errp, "distvm: a vCPU was plugged or unplugged since "
                   "the last committed checkpoint epoch");
    } else if (e->committed_present != qatomic_read(&s->present)) {
        error_setg(errp, "distvm: a node joined or left since the last "
                   "committed checkpoint epoch");
    } else if (e->committed_blocks != distvm_ram_next_block(s)) {
        error_setg(errp, "distvm: memory was plugged since the last "
                   "committed checkpoint epoch");
    } else {
        return true;
    }
    return false;
}

static void rollback_begin(DistvmState *s)
{
    DistvmEpoch *e = s->epoch;
    Error *err = NULL;

    if (e->phase != EPOCH_IDLE) {
        distvm_epoch_when_idle(s, rollback_begin);
        return;
    }
    e->rolling_lost = GPOINTER_TO_UINT(g_queue_pop_head(
                                           &e->rollbacks_asked)) - 1;
    if (!rollback_possible(s, &err)) {
        error_prepend(&err, "no rollback to checkpoint epoch %" PRIu64 ": ",
                      e->committed);
        warn_report_err(err);
        return;
    }
    e->rolling = true;
    e->rollback_begun_ns = get_clock();
    epoch_begin(s);
    if (e->phase == EPOCH_STOPPING && !e->waiting) {
        rollback_all(s);
    }
}

bool distvm_epoch_rollback_pending(DistvmState *s)
{
    DistvmEpoch *e = s->epoch;

    return e && (e->rolling || !g_queue_is_empty(&e->rollbacks_asked));
}

bool distvm_epoch_rollback(DistvmState *s, bool has_lost, uint32_t lost,
                           Error **errp)
{
    DistvmEpoch *e = s->epoch;

    if (!e) {
        error_setg(errp, "distvm: there are no checkpoint epochs to roll "
                   "back to (replicas=0)");
        return false;
    }
    if (!distvm_is_home(s)) {
        error_setg(errp, "distvm: only the home node rolls the guest back");
        return false;
    }
    if (!rollback_possible(s, errp)) {
        return false;
    }
    if (has_lost && (lost == s->node_id || !distvm_node_present(s, lost))) {
        error_setg(errp, "distvm: node %" PRIu32 " is not another node of "
                   "the cluster", lost);
        return false;
    }
    if (has_lost && e->parity) {
        error_setg(errp, "distvm: with redundancy=parity, home rebuilds a "
                   "node's copies only once the node is lost; roll back "
                   "without 'as-if-lost'");
        return false;
    }
    g_queue_push_tail(&e->rollbacks_asked,
                      GUINT_TO_POINTER((has_lost ? lost : s->node_id) + 1));
    distvm_epoch_when_idle(s, rollback_begin);
    return true;
}
/* ---- messages ---- */

/*
 * Whether this node takes @src's data of epoch @epoch.  Not whether it
 * is @src's replica: a node that joined or left just before the epoch
 * may be known to @src before this node (home's NODE_JOINED or NODE_LEFT
 * reach them on different connections), and the data of a node that is
 * not its replica is dropped once an epoch commits (stores_end_epoch()).
 * But never data of an epoch that ended (dropped quietly if it was
 * abandoned while its data travelled, as for a lost node taken over), or
 * of one after the next: that of the next may come before this one's
 * COMMIT.  A node that saw no epoch end yet (one that just joined) takes
 * any.
 */
static bool replica_check(DistvmState *s, const DistvmMsg *msg,
                          uint64_t epoch)
{
    uint64_t ended = qatomic_read(&s->epoch->ended);

    if (ended && epoch <= ended && epoch > distvm_epoch_committed(s)) {
        trace_distvm_epoch_late(epoch, msg->hdr.src);
        return false;
    }
    if (ended && (epoch <= ended || epoch > ended + 2)) {
        distvm_msg_refused(s, msg->hdr.src, "%s of epoch %" PRIu64 " once "
                           "epoch %" PRIu64 " ended",
                           distvm_msg_type_name(msg->hdr.type), epoch, ended);
        return false;
    }
    return true;
}

/*
 * A replica, in the receive thread: the pending data of @msg's sender for
 * @epoch, with e->lock held; or NULL, the message refused
 */
static EpochPending *pending_lock(DistvmState *s, const DistvmMsg *msg,
                                  uint64_t epoch)
{
    DistvmEpoch *e = s->epoch;
    EpochPending *p;

    if (!replica_check(s, msg, epoch)) {
        return NULL;
    }
    qemu_mutex_lock(&e->lock);
    /* Abandoned meanwhile (ABORT, in another thread): dropped quietly */
    if (epoch <= qatomic_read(&e->ended) &&
        epoch > qatomic_read(&e->committed)) {
        qemu_mutex_unlock(&e->lock);
        trace_distvm_epoch_late(epoch, msg->hdr.src);
        return NULL;
    }
    p = pending_of(store_of(e, msg->hdr.src), epoch);
    if (!p) {
        qemu_mutex_unlock(&e->lock);
        distvm_msg_refused(s, msg->hdr.src, "%s of epoch %" PRIu64 ", a "
                           "third epoch not ended",
                           distvm_msg_type_name(msg->hdr.type), epoch);
    }
    return p;
}

/* ---- redundancy=parity: rebuilding a lost node's copies ---- */

/* With e->lock: one of the lost node's pages, into its store */
static void parity_rebuilt_page(void *opaque, uint64_t key, uint64_t epoch,
                                const uint8_t *data)
{
    EpochStore *st = opaque;
    gpointer k = (gpointer)(uintptr_t)key;
    EpochCopy *old = g_hash_table_lookup(st->pages, k);
    EpochCopy *c;

    if (old && old->epoch >= epoch) {
        return;
    }
    if (old) {
        st->bytes -= copy_bytes(old);
    }
    c = page_copy_new(epoch, data);
    st->bytes += copy_bytes(c);
    g_hash_table_replace(st->pages, k, c);
}

/* Home, in the main loop: every node sent its slots */
static void parity_rebuilt(DistvmState *s)
{
    DistvmEpoch *e = s->epoch;
    uint32_t lost;
    EpochStore *st;

    qemu_mutex_lock(&e->lock);
    lost = distvm_parity_rebuilding(e->parity);
    st = store_of(e, lost);
    distvm_parity_rebuild_end(e->parity, parity_rebuilt_page, st);
    trace_distvm_epoch_parity_rebuilt(lost, g_hash_table_size(st->pages));
    qemu_mutex_unlock(&e->lock);
}

/*
 * Home, in the main loop, taking lost node @lost's part over, every
 * node paused: with redundancy=parity, rebuild its copies as of epoch
 * @epoch, the last commit, from the parity and the other nodes' copies
 * in the same slots (PARITY_ASK).  True if it waits for them:
 * distvm_recovery_parity_rebuilt() follows once all came.
 */
bool distvm_epoch_parity_rebuild(DistvmState *s, uint32_t lost,
                                 uint64_t epoch)
{
    DistvmEpoch *e = s->epoch;
    uint32_t slots, waiting;

    if (!e->parity) {
        return false;
    }
    qemu_mutex_lock(&e->lock);
    slots = distvm_parity_rebuild_begin(e->parity, lost);
    waiting = qatomic_read(&s->present) & ~BIT(s->node_id) & ~BIT(lost);
    e->parity_waiting = slots ? waiting : 0;
    qemu_mutex_unlock(&e->lock);
    trace_distvm_epoch_parity_rebuild(lost, slots, e->parity_waiting);
    if (!e->parity_waiting) {
        parity_rebuilt(s);
        return false;
    }
    for (uint32_t n = 0; n < s->nodes; n++) {
        if (waiting & BIT(n)) {
            distvm_epoch_send(s, n, DISTVM_EPOCH_PARITY_ASK, lost, epoch,
                              slots, 0);
        }
    }
    return true;
}

/*
 * In the receive thread: home asks for this node's committed copies in
 * slots 0 to @bytes - 1 (SLOT), then PARITY_DONE
 */
static void parity_ask_received(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgEpoch *m = &msg->u.epoch;
    DistvmEpoch *e = s->epoch;
    g_autoptr(GByteArray) out = g_byte_array_new();
    g_autofree uint8_t *buf = g_malloc(DISTVM_PAGE_SIZE);
    EpochSender es = {
        .s = s, .to = msg->hdr.src, .epoch = m->epoch, .msg = out,
        .kind = DISTVM_EPOCH_PAGE_SLOT, .buf = buf,
    };
    uint32_t slots;

    if (!e->parity || distvm_recovery_lost(s) != m->node) {
        distvm_msg_refused(s, msg->hdr.src, "EPOCH PARITY_ASK about node %"
                           PRIu32 ", which this node does not take over "
                           "with redundancy=parity", m->node);
        return;
    }
    qemu_mutex_lock(&e->lock);
    slots = MIN(m->bytes, distvm_parity_own_slots(e->parity));
    qemu_mutex_unlock(&e->lock);
    for (uint32_t slot = 0; slot < slots; slot++) {
        uint64_t key;
        EpochCopy *c;
        bool some;

        qemu_mutex_lock(&e->lock);
        distvm_parity_own_key(e->parity, slot, &key);
        c = g_hash_table_lookup(store_of(e, s->node_id)->pages,
                                (gpointer)(uintptr_t)key);
        some = c && c->data;
        if (some) {
            memcpy(es.buf, c->data->data, DISTVM_PAGE_SIZE);
        }
        qemu_mutex_unlock(&e->lock);
        if (some) {
            sender_add(&es, page_key_block(key), page_key_page(key), slot,
                       es.buf);
        }
    }
    sender_flush_pages(&es);
    distvm_epoch_send(s, msg->hdr.src, DISTVM_EPOCH_PARITY_DONE, m->node,
                      m->epoch, es.bytes, 0);
}

/* Home, in the receive thread: another node's copies in some slots */
static void parity_slots_received(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgEpochPages *ep = &msg->u.epoch_pages;
    DistvmEpoch *e = s->epoch;
    const uint8_t *pos = ep->entries;
    uint64_t page;
    uint32_t slot;

    qemu_mutex_lock(&e->lock);
    if (!e->parity || !(e->parity_waiting & BIT(msg->hdr.src))) {
        qemu_mutex_unlock(&e->lock);
        distvm_msg_refused(s, msg->hdr.src, "EPOCH_PAGES of kind SLOT that "
                           "no rebuild of this node asked for");
        return;
    }
    /* All or nothing: a page left out would rebuild a wrong one */
    for (uint32_t i = 0; i < ep->count; i++) {
        distvm_wire_epoch_page_slot(&pos, &page, &slot);
        if (!distvm_parity_rebuild_check(e->parity, slot)) {
            if (!e->parity_refused) {
                e->parity_refused = g_strdup_printf(
                    "node %" PRIu32 " sent slot %" PRIu32 ", which home "
                    "did not ask for", msg->hdr.src, slot);
            }
            qemu_mutex_unlock(&e->lock);
            distvm_msg_refused(s, msg->hdr.src, "EPOCH_PAGES of kind SLOT "
                               "with slot %" PRIu32 ", which home did not "
                               "ask for", slot);
            return;
        }
    }
    pos = ep->entries;
    for (uint32_t i = 0; i < ep->count; i++) {
        const uint8_t *data = distvm_wire_epoch_page_slot(&pos, &page, &slot);

        distvm_parity_rebuild_add(e->parity, slot, data);
    }
    qemu_mutex_unlock(&e->lock);
}

/* Home, in the main loop: @node sent all home asked it for */
static void parity_done(DistvmState *s, uint32_t node)
{
    DistvmEpoch *e = s->epoch;
    g_autofree char *why = NULL;
    bool done;

    qemu_mutex_lock(&e->lock);
    if (!e->parity || !(e->parity_waiting & BIT(node))) {
        qemu_mutex_unlock(&e->lock);
        distvm_msg_refused(s, node, "EPOCH PARITY_DONE that no rebuild of "
                           "this node asked for");
        return;
    }
    e->parity_waiting &= ~BIT(node);
    done = !e->parity_waiting;
    why = done ? g_steal_pointer(&e->parity_refused) : NULL;
    qemu_mutex_unlock(&e->lock);
    if (why) {
        g_autofree char *lost = g_strdup_printf(
            "node %" PRIu32 "'s copies cannot be rebuilt from the parity: "
            "%s", distvm_parity_rebuilding(e->parity), why);

        distvm_fatal_node_lost(s, s->node_id, lost);
        return;
    }
    if (done) {
        parity_rebuilt(s);
        distvm_recovery_parity_rebuilt(s);
    }
}

/* A replica, in the receive thread: an epoch's pages of its node */
static bool epoch_pages_received(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgEpochPages *ep = &msg->u.epoch_pages;
    DistvmEpoch *e = s->epoch;
    const uint8_t *pos = ep->entries;
    bool delta = e->parity && msg->hdr.src != distvm_home(s);
    EpochPending *p;

    if (ep->kind == DISTVM_EPOCH_PAGE_ASK) {
        rollback_ask_received(s, msg);
        return false;
    }
    if (ep->kind == DISTVM_EPOCH_PAGE_COPY) {
        rollback_copy_received(s, msg);
        return false;
    }
    if (ep->kind == DISTVM_EPOCH_PAGE_HELD) {
        distvm_recovery_held_received(s, msg);
        return false;
    }
    if (ep->kind == DISTVM_EPOCH_PAGE_SLOT) {
        parity_slots_received(s, msg);
        return false;
    }
    if ((ep->kind == DISTVM_EPOCH_PAGE_DELTA) != delta ||
        (delta && !distvm_is_home(s))) {
        /*
         * With parity, home takes only changes to its parity from the
         * others, and the others take only home's pages, as its replica
         */
        distvm_msg_refused(s, msg->hdr.src, "EPOCH_PAGES of kind 0x%" PRIx32
                           " with redundancy=%s", ep->kind,
                           DistvmRedundancy_str(s->redundancy));
        return false;
    }
    p = pending_lock(s, msg, ep->epoch);
    if (!p) {
        return false;
    }
    for (uint32_t i = 0; i < ep->count; i++) {
        uint64_t page;
        uint32_t slot;
        const uint8_t *data = distvm_wire_epoch_page_slot(&pos, &page, &slot);

        if (delta) {
            distvm_parity_deltas_put(p->deltas, slot,
                                     (uintptr_t)page_key(ep->block, page),
                                     ep->epoch, data);
        } else {
            g_hash_table_replace(p->pages, page_key(ep->block, page),
                                 page_copy_new(ep->epoch, data));
        }
    }
    p->bytes += msg->hdr.length;
    qemu_mutex_unlock(&e->lock);
    return false;
}

/* A replica, in the receive thread: part of a state of its node */
static bool epoch_state_received(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgEpochState *es = &msg->u.epoch_state;
    DistvmEpoch *e = s->epoch;
    gpointer key = state_key(es->kind, es->index);
    EpochPending *p;
    EpochCopy *c;

    if (es->kind == DISTVM_EPOCH_STATE_VCPU_COPY ||
        es->kind == DISTVM_EPOCH_STATE_DEVICES_COPY ||
        es->kind == DISTVM_EPOCH_STATE_PLACED_COPY) {
        rollback_state_received(s, msg);
        return false;
    }
    if (es->kind == DISTVM_EPOCH_STATE_DEVICES &&
        msg->hdr.src != distvm_home(s)) {
        distvm_msg_refused(s, msg->hdr.src, "EPOCH_STATE: only the home node "
                           "sends the devices' state");
        return false;
    }
    if (es->kind == DISTVM_EPOCH_STATE_PLACED && es->index != msg->hdr.src) {
        distvm_msg_refused(s, msg->hdr.src, "EPOCH_STATE: the state of the "
                           "devices placed on node %" PRIu32 " from node %"
                           PRIu32, es->index, msg->hdr.src);
        return false;
    }
    p = pending_lock(s, msg, es->epoch);
    if (!p) {
        return false;
    }
    c = g_hash_table_lookup(p->states, key);
    if (es->offset == 0) {
        c = g_new0(EpochCopy, 1);
        c->epoch = es->epoch;
        c->total = es->total;
        c->data = g_byte_array_new();     /* grows with what comes */
        g_hash_table_replace(p->states, key, c);
    } else if (!c || c->total != es->total || c->data->len != es->offset) {
        qemu_mutex_unlock(&e->lock);
        distvm_msg_refused(s, msg->hdr.src, "EPOCH_STATE: bytes %" PRIu32
                           " of a state of kind %" PRIu32 " and index %"
                           PRIu32 " out of order", es->offset, es->kind,
                           es->index);
        return false;
    }
    g_byte_array_append(c->data, es->data, es->len);
    p->bytes += msg->hdr.length;
    qemu_mutex_unlock(&e->lock);
    return false;
}

/*
 * A replica, in the receive thread: its node sent all of an epoch.
 * Whether every state it began came whole is checked here; a node that
 * sent less is refused and its epoch is never stored.
 */
static bool epoch_sent_received(DistvmState *s, const DistvmMsg *msg)
{
    DistvmEpoch *e = s->epoch;
    uint64_t epoch = msg->u.epoch.epoch;
    GHashTableIter it;
    gpointer value;
    EpochPending *p;
    bool whole = true;

    if (distvm_is_home(s) &&
        distvm_epoch_keeper_of(s, msg->hdr.src) != s->node_id) {
        /* home counts it as stored: only from the node it keeps */
        distvm_msg_refused(s, msg->hdr.src, "EPOCH SENT to the home node, "
                           "which does not keep node %" PRIu32 "'s state",
                           msg->hdr.src);
        return false;
    }
    p = pending_lock(s, msg, epoch);
    if (!p) {
        return false;
    }
    g_hash_table_iter_init(&it, p->states);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        EpochCopy *c = value;

        whole = whole && c->data->len == c->total;
    }
    qemu_mutex_unlock(&e->lock);
    if (!whole) {
        distvm_msg_refused(s, msg->hdr.src, "EPOCH SENT for epoch %" PRIu64
                           " before all of its states", epoch);
        return false;
    }
    trace_distvm_epoch_stored(epoch, msg->hdr.src, msg->u.epoch.bytes);
    if (distvm_is_home(s)) {
        return true;            /* epoch_main_loop() counts it */
    }
    distvm_epoch_send(s, distvm_home(s), DISTVM_EPOCH_STORED, msg->hdr.src,
                      epoch, msg->u.epoch.bytes, msg->u.epoch.vcpus);
    return false;
}

static bool epoch_received(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgEpoch *m = &msg->u.epoch;
    DistvmEpoch *e = s->epoch;

    switch (m->step) {
    case DISTVM_EPOCH_SENT:
        return epoch_sent_received(s, msg);
    case DISTVM_EPOCH_FETCH:
        rollback_fetch_received(s, msg);
        return false;
    case DISTVM_EPOCH_PARITY_ASK:
        parity_ask_received(s, msg);
        return false;
    case DISTVM_EPOCH_PARITY_DONE:
        return true;
    case DISTVM_EPOCH_COMMIT:
    case DISTVM_EPOCH_ABORT:
        qemu_mutex_lock(&e->lock);
        stores_end_epoch(s, m->epoch, m->step == DISTVM_EPOCH_COMMIT);
        qemu_mutex_unlock(&e->lock);
        if (m->step == DISTVM_EPOCH_COMMIT &&
            distvm_replica_of(s, msg->hdr.src) == s->node_id) {
            /* Home's standby: home may send the epoch's output on */
            distvm_epoch_send(s, msg->hdr.src, DISTVM_EPOCH_COMMITTED,
                              s->node_id, m->epoch, 0, 0);
        }
        /* Its packets go on; after an abort, what was sent goes again */
        return true;
    case DISTVM_EPOCH_COMMITTED:
        return true;
    case DISTVM_EPOCH_ROLLBACK:
        stores_roll_back(s, m->epoch);
        return true;
    default:
        if (m->step >= DISTVM_EPOCH_LOST) {
            return distvm_recovery_received(s, msg);
        }
        return true;            /* SAVE, BUSY, STORED: the main loop's */
    }
}

static void epoch_main_loop(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgEpoch *m = &msg->u.epoch;
    DistvmEpoch *e = s->epoch;

    switch (m->step) {
    case DISTVM_EPOCH_SAVE:
        if (!epoch_save(s, m->epoch)) {
            distvm_epoch_send(s, distvm_home(s), DISTVM_EPOCH_BUSY,
                              s->node_id, m->epoch, 0, 0);
        }
        break;
    case DISTVM_EPOCH_COMMIT:
        committed_cluster(s);
        distvm_netqueues_committed(s);
        distvm_output_release(m->epoch);
        break;
    case DISTVM_EPOCH_ABORT:
        e->sent_aborted = true;
        break;
    case DISTVM_EPOCH_BUSY:
        if (e->phase == EPOCH_ROLLING) {
            rollback_answered(s, msg->hdr.src, true, 0);
        } else {
            epoch_answered(s, msg->hdr.src, m->epoch, true, 0, 0);
        }
        break;
    case DISTVM_EPOCH_ROLLBACK:
        /* What it committed late, and what it sent since, not committed */
        distvm_output_release(m->epoch);
        e->sent_aborted |= e->sent_epoch > m->epoch;
        rollback_start(s, m->epoch, m->node);
        break;
    case DISTVM_EPOCH_FETCHED:
        rollback_fetched(s, msg->hdr.src);
        break;
    case DISTVM_EPOCH_ROLLED:
        rollback_answered(s, msg->hdr.src, false, m->vcpus);
        break;
    case DISTVM_EPOCH_SENT:     /* home is the replica of its sender */
        epoch_answered(s, msg->hdr.src, m->epoch, false, m->bytes,
                       m->vcpus);
        break;
    case DISTVM_EPOCH_STORED:
        if (e->parity && m->node != distvm_home(s)) {
            /* Home keeps the others' state itself */
            distvm_msg_refused(s, msg->hdr.src, "EPOCH STORED about node %"
                               PRIu32 ", which home keeps with "
                               "redundancy=parity", m->node);
            break;
        }
        epoch_answered(s, m->node, m->epoch, false, m->bytes, m->vcpus);
        break;
    case DISTVM_EPOCH_PARITY_DONE:
        parity_done(s, msg->hdr.src);
        break;
    case DISTVM_EPOCH_COMMITTED:
        if (m->epoch <= distvm_epoch_committed(s)) {
            distvm_output_release(m->epoch);
        }
        break;
    default:
        if (m->step >= DISTVM_EPOCH_LOST) {
            distvm_recovery_main_loop(s, msg);
        }
        break;
    }
}

static const DistvmMsgHandler epoch_handlers[] = {
    { DISTVM_MSG_EPOCH, .receive = epoch_received,
      .main_loop = epoch_main_loop },
    { DISTVM_MSG_EPOCH_PAGES, .receive = epoch_pages_received },
    { DISTVM_MSG_EPOCH_STATE, .receive = epoch_state_received },
};

/* ---- QMP ---- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

DistvmCheckpointInfo *distvm_epoch_query(DistvmState *s)
{
    DistvmEpoch *e = s->epoch;
    DistvmCheckpointInfo *info;

    if (!e) {
        return NULL;
    }
    info = g_new0(DistvmCheckpointInfo, 1);
    info->interval_ms = s->checkpoint_ms;
    info->redundancy = s->redundancy;
    info->replica = distvm_epoch_keeper_of(s, s->node_id);
    info->standby = distvm_replica_of(s, distvm_home(s));
    qemu_mutex_lock(&e->lock);
    info->committed_epoch = e->committed;
    info->epochs = e->epochs;
    info->aborted = e->aborted;
    if (e->nr_pauses) {
        unsigned n = MIN(e->nr_pauses, EPOCH_PAUSE_SAMPLES);
        g_autofree uint32_t *sorted = g_memdup2(e->pause_us,
                                                n * sizeof(uint32_t));

        qsort(sorted, n, sizeof(uint32_t), cmp_u32);
        info->has_last_pause_us = info->has_pause_us_p50 =
            info->has_pause_us_p99 = info->has_last_bytes =
            info->has_bytes = true;
        info->last_pause_us = e->last_pause_us;
        info->pause_us_p50 = sorted[(n - 1) / 2];
        info->pause_us_p99 = sorted[(n - 1) * 99 / 100];
        info->last_bytes = e->last_bytes;
        info->bytes = e->all_bytes;
    }
    for (uint32_t node = 0; node < DISTVM_MAX_NODES; node++) {
        if (e->stores[node] && node == s->node_id) {
            info->own_bytes = e->stores[node]->bytes;
        } else if (e->stores[node]) {
            info->stored_pages += g_hash_table_size(e->stores[node]->pages);
            info->stored_bytes += e->stores[node]->bytes;
        }
    }
    if (e->parity) {
        info->parity_bytes = distvm_parity_bytes(e->parity);
    }
    qemu_mutex_unlock(&e->lock);
    distvm_output_stats(&info->held_packets, &info->released_packets);
    distvm_output_disk_stats(&info->held_writes, &info->held_write_bytes,
                             &info->released_writes);
    info->rollbacks = e->rollbacks;
    distvm_recovery_stats(s, &info->recoveries, &info->last_recovery_ms);
    info->has_last_recovery_ms = info->recoveries > 0;
    if (e->rollbacks) {
        info->has_last_rollback_us = true;
        info->last_rollback_us = e->last_rollback_us;
    }
    return info;
}

DistvmReplicaPageList *distvm_epoch_replica_page(DistvmState *s,
                                                 const char *ramblock,
                                                 uint64_t page, Error **errp)
{
    DistvmEpoch *e = s->epoch;
    DistvmReplicaPageList *list = NULL;
    int block = distvm_ram_block_index(s, ramblock);
    static const uint8_t zero[DISTVM_PAGE_SIZE];

    if (!e) {
        error_setg(errp, "distvm: no checkpoints are taken (replicas=0)");
        return NULL;
    }
    if (block < 0) {
        error_setg(errp, "distvm: no RAMBlock '%s'", ramblock);
        return NULL;
    }
    qemu_mutex_lock(&e->lock);
    for (int node = DISTVM_MAX_NODES - 1; node >= 0; node--) {
        EpochStore *st = node == s->node_id ? NULL : e->stores[node];
        EpochCopy *c = st ? g_hash_table_lookup(st->pages,
                                                page_key(block, page)) : NULL;
        DistvmReplicaPage *rp;

        if (!c) {
            continue;
        }
        rp = g_new0(DistvmReplicaPage, 1);
        rp->node = node;
        rp->epoch = c->epoch;
        rp->sha256 = g_compute_checksum_for_data(
            G_CHECKSUM_SHA256, c->data ? c->data->data : zero,
            DISTVM_PAGE_SIZE);
        QAPI_LIST_PREPEND(list, rp);
    }
    qemu_mutex_unlock(&e->lock);
    return list;
}

/* The machine exists: hold the packets of its NICs */
static void epoch_machine_done(Notifier *n, void *data)
{
    DistvmState *s = distvm_state();
    Error *err = NULL;
    bool ambiguous = false;

    /*
     * QEMU saves a SCSI device's requests only with the run state stopped,
     * which an epoch's pause does not change (it would assert)
     */
    if (object_resolve_path_type("", TYPE_SCSI_BUS, &ambiguous) ||
        ambiguous) {
        error_report("distvm: replicas=1 cannot checkpoint a machine with a "
                     "SCSI bus yet: QEMU saves SCSI requests only with the "
                     "guest stopped; use virtio-blk or IDE disks");
        exit(1);
    }

    if (!distvm_output_hold(&err)) {
        error_report_err(err);
        exit(1);
    }
    if (!distvm_is_home(s)) {
        const char *disk = distvm_output_disk_stand_in();

        if (disk) {
            s->epoch->stand_in = g_strdup_printf(
                "the standby was given no image of disk %s (the null "
                "driver)", disk);
        }
        if (!distvm_output_disk_inactivate(&err)) {
            error_report_err(err);
            exit(1);
        }
    }
}

static Notifier machine_done = { .notify = epoch_machine_done };

void distvm_epoch_init(DistvmState *s)
{
    DistvmEpoch *e;

    if (!s->replicas) {
        return;
    }
    e = s->epoch = g_new0(DistvmEpoch, 1);
    qemu_mutex_init(&e->lock);
    e->sent_to = UINT32_MAX;
    if (s->redundancy == DISTVM_REDUNDANCY_PARITY) {
        e->parity = distvm_parity_new();
    }
    distvm_msg_handlers_register(s, epoch_handlers,
                                 ARRAY_SIZE(epoch_handlers));
    qemu_add_machine_init_done_notifier(&machine_done);
    if (distvm_is_home(s)) {
        e->timer = timer_new_ms(QEMU_CLOCK_REALTIME, epoch_tick, s);
        epoch_arm(s, s->checkpoint_ms);
    }
}
