/*
 * distvm: data residency, guest RAM that never leaves its node
 *
 * -accel distvm,...,residency=BASE+SIZE@NODE[:BASE+SIZE@NODE...] keeps
 * the pages of the guest-physical range [BASE, BASE+SIZE) on NODE only.
 * They start owned by NODE (distvm-ram.c), and no other node ever holds
 * a copy: on every other node, an I/O region covers the range, above the
 * RAM, so that nothing there reaches its pages through the page protocol.
 *
 * - A vCPU of another node whose instruction touches the range stops
 *   before it did anything (its state restored to the instruction), and
 *   moves to NODE (reason "residency"), where the instruction runs again
 *   on local RAM.  A vCPU that moved for residency less than
 *   DISTVM_RESIDENT_STAY_NS ago does the access remotely instead, so that
 *   an instruction that touches ranges of two nodes completes.
 * - Any other access (a device's DMA on home, code fetched for
 *   translation, an interrupt's delivery, qtest) is done on NODE: a
 *   RES_ACCESS of at most 8 bytes, which a thread of NODE's that takes no
 *   lock a vCPU may hold performs on its memory and answers with
 *   RES_REPLY.  The access waits for that round trip; a NODE that does
 *   not answer within peer-timeout is lost.
 * - The pages never travel: warm pages and sweeps leave them out, and a
 *   request for one from another node is refused.
 *
 * Only RAM given on the command line can be resident.  A range given by
 * the property is resident from power-on: what the firmware or -kernel
 * loads into it on home before the guest runs is not kept there (the
 * range starts zeroed).  A range set while the guest runs
 * (distvm-set-residency, asked of home) keeps its data, in steps
 * (RES_SET): home asks NODE; NODE registers the range, so that it serves
 * accesses to it, and tells home; home asks every other node to cover
 * it; each does, then makes sure that none of its vCPUs still maps the
 * RAM (queued work on each, after TCG's own TLB flush of the new memory
 * map) and tells NODE; NODE then brings every page to itself for
 * writing, one write fault each, until all are there, and tells all
 * nodes that the range is active (home emits DISTVM_RESIDENT): from then
 * on a request for one of its pages from another node is refused.  Only
 * home starts a step that registers a range, so every node has the same
 * ranges in the same order.
 *
 * A node that joins the running guest (distvm-join.c) has the property's
 * ranges from its own options; home sends it the others, active, with
 * the state it joins with (RES_SET_KNOWN), and it covers them before it
 * starts.  A join waits until no range is becoming resident, and a range
 * does not start becoming resident while a node joins.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-distvm.h"
#include "qapi/qapi-events-distvm.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "exec/address-spaces.h"
#include "exec/exec-all.h"
#include "exec/memory.h"
#include "exec/ramblock.h"
#include "hw/boards.h"
#include "hw/core/cpu.h"
#include "qemu/rcu.h"
#include "qemu/units.h"
#include "distvm-internal.h"
#include "distvm-ram.h"
#include "trace.h"

/* Above the RAM and the devices it covers */
#define DISTVM_RESIDENT_PRIORITY 100
/* After a residency move, accesses to other nodes' ranges stay remote */
#define DISTVM_RESIDENT_STAY_NS (10 * SCALE_MS)

/* The accesses this node waits for another node to do */
struct DistvmResWaits {
    QemuMutex lock;
    QemuCond cond;
    uint64_t next_seq;
    GHashTable *waits;          /* seq -> DistvmResWait */
    int64_t *moved_ns;          /* [nr_vcpus]: last residency move from here */
    GAsyncQueue *accesses;      /* DistvmMsg, for the access thread */
    /* These with the BQL */
    DistvmMsgResSet asked;      /* home: becoming resident, if @size */
    DistvmResident *gathering;  /* its node: the range, until active */
    uint32_t covered;           /* its node: the nodes that covered it */
};

/* A node covered a range: queued work on each vCPU, the last tells NODE */
typedef struct DistvmResCover {
    DistvmMsgResSet set;
    int left;                   /* atomic: vCPUs that did not run it yet */
} DistvmResCover;

typedef struct DistvmResWait {
    uint32_t node;
    bool done;
    uint64_t data;
    uint32_t result;
} DistvmResWait;

static bool resident_parse_one(DistvmState *s, const char *item,
                               DistvmResident *r, Error **errp)
{
    g_autofree char *copy = g_strdup(item);
    char *plus = strchr(copy, '+');
    char *at = strchr(copy, '@');
    uint64_t node;

    if (!plus || !at || at < plus) {
        error_setg(errp, "distvm: residency=%s: '%s' is not BASE+SIZE@NODE",
                   s->residency, item);
        return false;
    }
    *plus = *at = '\0';
    if (qemu_strtou64(copy, NULL, 0, &r->base) ||
        qemu_strtou64(plus + 1, NULL, 0, &r->size) ||
        qemu_strtou64(at + 1, NULL, 10, &node)) {
        error_setg(errp, "distvm: residency=%s: '%s' is not BASE+SIZE@NODE "
                   "(numbers)", s->residency, item);
        return false;
    }
    if (!r->size || (r->base | r->size) % DISTVM_PAGE_SIZE ||
        r->base + r->size < r->base) {
        error_setg(errp, "distvm: residency=%s: '%s' is not a non-empty "
                   "range of whole 4 KiB pages", s->residency, item);
        return false;
    }
    if (node >= s->nodes) {
        error_setg(errp, "distvm: residency=%s: there is no node %" PRIu64
                   " (the cluster has nodes 0 to %" PRIu32 ")", s->residency,
                   node, s->nodes - 1);
        return false;
    }
    if (node >= s->start_nodes) {
        error_setg(errp, "distvm: residency=%s: node %" PRIu64 " joins the "
                   "running guest later (the cluster starts with nodes 0 "
                   "to %" PRIu32 ")", s->residency, node, s->start_nodes - 1);
        return false;
    }
    r->node = node;
    return true;
}

/* The property, once the cluster's size is known */
bool distvm_residency_init(DistvmState *s, Error **errp)
{
    g_auto(GStrv) items = NULL;

    s->resident = g_new0(DistvmResident, DISTVM_RESIDENT_MAX);
    s->res_waits = g_new0(DistvmResWaits, 1);
    qemu_mutex_init(&s->res_waits->lock);
    qemu_cond_init(&s->res_waits->cond);
    s->res_waits->waits = g_hash_table_new(g_int64_hash, g_int64_equal);
    s->res_waits->moved_ns = g_new0(int64_t, s->nr_vcpus);
    if (!s->residency || !*s->residency) {
        return true;
    }
    items = g_strsplit(s->residency, ":", -1);
    if (g_strv_length(items) > DISTVM_RESIDENT_MAX) {
        error_setg(errp, "distvm: residency=%s: more than %d ranges",
                   s->residency, DISTVM_RESIDENT_MAX);
        return false;
    }
    for (uint32_t i = 0; items[i]; i++) {
        DistvmResident *r = &s->resident[i];

        if (!resident_parse_one(s, items[i], r, errp)) {
            return false;
        }
        for (uint32_t j = 0; j < i; j++) {
            const DistvmResident *o = &s->resident[j];

            if (r->base < o->base + o->size && o->base < r->base + r->size) {
                error_setg(errp, "distvm: residency=%s: ranges %s and %s "
                           "overlap", s->residency, items[j], items[i]);
                return false;
            }
        }
        r->active = true;       /* its pages start on its node */
    }
    qatomic_store_release(&s->nr_resident, g_strv_length(items));
    return true;
}

static DistvmResident *resident_of(DistvmState *s, uint64_t addr,
                                   uint64_t size)
{
    uint32_t n = distvm_residency_count(s);

    for (uint32_t i = 0; i < n; i++) {
        DistvmResident *r = &s->resident[i];

        if (addr >= r->base && addr - r->base + size <= r->size) {
            return r;
        }
    }
    return NULL;
}

/* ---- accesses of the other nodes ---- */

/*
 * Have @r's node do an access, and wait for it.  A caller may hold the
 * BQL: the other node's main loop answers without waiting for this one.
 */
static MemTxResult resident_remote(DistvmResident *r, hwaddr offset,
                                   uint64_t *data, unsigned size,
                                   bool write)
{
    DistvmState *s = distvm_state();
    DistvmResWaits *rw = s->res_waits;
    g_autoptr(GByteArray) m = g_byte_array_new();
    DistvmResWait w = { .node = r->node };
    int64_t deadline = get_clock() + (int64_t)s->peer_timeout *
                       NANOSECONDS_PER_SECOND;
    uint64_t seq;

    qemu_mutex_lock(&rw->lock);
    seq = ++rw->next_seq;
    g_hash_table_insert(rw->waits, &seq, &w);
    qemu_mutex_unlock(&rw->lock);

    distvm_wire_res(m, DISTVM_MSG_RES_ACCESS, s->node_id, seq,
                    &(DistvmMsgRes) {
                        .addr = r->base + offset, .size = size,
                        .flags = write ? DISTVM_RES_WRITE : 0,
                        .data = write ? *data : 0,
                    });
    if (!distvm_send(s, r->node, m)) {
        distvm_fatal_node_lost(s, r->node, "connection closed");
    }

    qemu_mutex_lock(&rw->lock);
    while (!w.done && !distvm_cluster_leaving(s)) {
        int64_t left = deadline - get_clock();

        if (left <= 0) {
            break;
        }
        qemu_cond_timedwait(&rw->cond, &rw->lock,
                            MIN(left / SCALE_MS + 1, 100));
    }
    g_hash_table_remove(rw->waits, &seq);
    qemu_mutex_unlock(&rw->lock);

    trace_distvm_resident_remote(r->base + offset, size, write, r->node,
                                 w.done);
    if (!w.done) {
        /* Not an error the guest could see and go on from: data is lost */
        if (!distvm_cluster_leaving(s)) {
            distvm_fatal_node_lost(s, r->node, "it did not answer an access "
                                   "to its resident RAM within "
                                   "peer-timeout");
        }
        return MEMTX_ERROR;
    }
    qatomic_inc(&r->remote_accesses);
    if (!write) {
        *data = w.data;
    }
    return w.result;
}

static MemTxResult resident_read(void *opaque, hwaddr addr, uint64_t *data,
                                 unsigned size, MemTxAttrs attrs)
{
    return resident_remote(opaque, addr, data, size, false);
}

static MemTxResult resident_write(void *opaque, hwaddr addr, uint64_t data,
                                  unsigned size, MemTxAttrs attrs)
{
    return resident_remote(opaque, addr, &data, size, true);
}

static const MemoryRegionOps resident_ops = {
    .read_with_attrs = resident_read,
    .write_with_attrs = resident_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8 },
    .impl = { .min_access_size = 1, .max_access_size = 8 },
};

/*
 * Called by the MMIO hook before anything else: a vCPU of this node that
 * touches RAM resident on another node moves there.  Its instruction has
 * done nothing yet: it stops, and runs again once there.  An access that
 * is not an instruction's (@ra 0: fetching code to translate, delivering
 * an interrupt) is done on that node instead, by this node's overlay:
 * true then.
 */
bool distvm_residency_vcpu_access(DistvmState *s, CPUState *cs,
                                  hwaddr addr, uintptr_t ra)
{
    DistvmResident *r = resident_of(s, addr, 1);
    int64_t *moved_ns;
    int64_t now;

    if (!r || r->node == s->node_id) {
        return false;
    }
    moved_ns = &s->res_waits->moved_ns[cs->cpu_index];
    now = get_clock();
    if (cs != current_cpu || !ra ||
        qatomic_read(&s->state) != DISTVM_CLUSTER_STATE_RUNNING ||
        now - qatomic_read(moved_ns) < DISTVM_RESIDENT_STAY_NS) {
        return true;
    }
    if (!distvm_vcpu_moving(s, cs->cpu_index)) {
        qatomic_set(moved_ns, now);
        trace_distvm_resident_vcpu(cs->cpu_index, addr, r->node);
        qatomic_inc(&r->vcpu_moves);
        distvm_vcpu_request_move(s, cs->cpu_index, s->node_id, r->node,
                                 DISTVM_MOVE_RESIDENCY, 0);
    }
    cpu_loop_exit_restore(cs, ra);
}

/* ---- the range's node ---- */

/*
 * RES_ACCESS, on the access thread: one load or store of the RAM, as a
 * DMA does it (translated code of the page is invalidated).  Neither the
 * BQL nor anything a vCPU waiting for a page may hold is taken, so the
 * node that asks may hold its BQL, and this node's main loop may be busy.
 */
static void resident_access(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgRes *a = &msg->u.res;
    g_autoptr(GByteArray) m = g_byte_array_new();
    DistvmResident *r = resident_of(s, a->addr, a->size);
    MemTxResult res = MEMTX_DECODE_ERROR;
    MemTxAttrs attrs = MEMTXATTRS_UNSPECIFIED;
    AddressSpace *as = &address_space_memory;
    bool write = a->flags & DISTVM_RES_WRITE;
    uint64_t data = 0;

    if (!r || r->node != s->node_id) {
        error_report_once("distvm: node %" PRIu32 " asked for an access to "
                          "%#" PRIx64 ", not resident here", msg->hdr.src,
                          a->addr);
    } else if (write) {
        switch (a->size) {
        case 1:
            address_space_stb(as, a->addr, a->data, attrs, &res);
            break;
        case 2:
            address_space_stw_le(as, a->addr, a->data, attrs, &res);
            break;
        case 4:
            address_space_stl_le(as, a->addr, a->data, attrs, &res);
            break;
        default:
            address_space_stq_le(as, a->addr, a->data, attrs, &res);
            break;
        }
    } else {
        switch (a->size) {
        case 1:
            data = address_space_ldub(as, a->addr, attrs, &res);
            break;
        case 2:
            data = address_space_lduw_le(as, a->addr, attrs, &res);
            break;
        case 4:
            data = address_space_ldl_le(as, a->addr, attrs, &res);
            break;
        default:
            data = address_space_ldq_le(as, a->addr, attrs, &res);
            break;
        }
    }
    distvm_wire_res(m, DISTVM_MSG_RES_REPLY, s->node_id, msg->hdr.seq,
                    &(DistvmMsgRes) {
                        .addr = a->addr, .size = a->size, .flags = res,
                        .data = data,
                    });
    distvm_send(s, msg->hdr.src, m);
}

static void *resident_access_thread(void *opaque)
{
    DistvmState *s = opaque;

    rcu_register_thread();
    for (;;) {
        g_autofree DistvmMsg *msg = g_async_queue_pop(s->res_waits->accesses);

        resident_access(s, msg);
    }
    return NULL;
}

/* RES_ACCESS, in the receive thread: for the access thread */
static bool resident_access_received(DistvmState *s, const DistvmMsg *msg)
{
    if (!distvm_residency_count(s)) {
        distvm_msg_refused(s, msg->hdr.src, "RES_ACCESS, but no RAM is "
                           "resident on a node");
        return false;
    }
    g_async_queue_push(s->res_waits->accesses, g_memdup2(msg, sizeof(*msg)));
    return true;
}

/* RES_REPLY, in the receive thread */
static bool resident_answered(DistvmState *s, const DistvmMsg *msg)
{
    DistvmResWaits *rw = s->res_waits;
    uint64_t seq = msg->hdr.seq;
    DistvmResWait *w;

    if (!distvm_residency_count(s)) {
        distvm_msg_refused(s, msg->hdr.src, "RES_REPLY, but no RAM is "
                           "resident on a node");
        return false;
    }
    qemu_mutex_lock(&rw->lock);
    w = g_hash_table_lookup(rw->waits, &seq);
    if (w && w->node == msg->hdr.src && !w->done) {
        w->data = msg->u.res.data;
        w->result = msg->u.res.flags;
        w->done = true;
        qemu_cond_broadcast(&rw->cond);
    }
    qemu_mutex_unlock(&rw->lock);
    return true;
}

/* ---- the ranges, from the property or set while the guest runs ---- */

/* Where @r is in guest RAM; false (@errp set) if it cannot be resident. */
static bool resident_find_ram(DistvmResident *r, Error **errp)
{
    MemoryRegionSection sec = memory_region_find(get_system_memory(),
                                                 r->base, r->size);
    MachineState *ms = MACHINE(qdev_get_machine());
    DeviceMemoryState *dm = ms->device_memory;
    const char *why = NULL;

    if (r->base < 1 * MiB) {
        why = "is below 1 MiB, where firmware and SMRAM are";
    } else if (dm && r->base < dm->base + memory_region_size(&dm->mr) &&
               dm->base < r->base + r->size) {
        why = "is in the memory of DIMMs, which can be unplugged";
    } else if (!sec.mr || !memory_region_is_ram(sec.mr) ||
               sec.readonly || memory_region_is_rom(sec.mr) ||
               int128_get64(sec.size) != r->size) {
        why = "is not all in one range of guest RAM";
    } else {
        r->rb = sec.mr->ram_block;
        r->offset = sec.offset_within_region;
    }
    if (sec.mr) {
        memory_region_unref(sec.mr);
    }
    if (why) {
        error_setg(errp, "distvm: residency: [%#" PRIx64 ", %#" PRIx64
                   ") %s", r->base, r->base + r->size, why);
        return false;
    }
    trace_distvm_resident_range(r->base, r->size, r->node,
                                qemu_ram_get_idstr(r->rb), r->offset);
    return true;
}

/* With the BQL, on a node other than @r's: accesses to @r go there. */
static void resident_cover(DistvmResident *r)
{
    memory_region_init_io(&r->overlay, NULL, &resident_ops, r,
                          "distvm-resident", r->size);
    memory_region_add_subregion_overlap(get_system_memory(), r->base,
                                        &r->overlay,
                                        DISTVM_RESIDENT_PRIORITY);
}

/* Can [@base, @base + @size) become resident on @node?  With the BQL. */
static bool resident_check_new(DistvmState *s, uint64_t base, uint64_t size,
                               uint32_t node, DistvmResident *r,
                               Error **errp)
{
    uint32_t n = distvm_residency_count(s);

    *r = (DistvmResident) { .base = base, .size = size, .node = node };
    if (!size || (base | size) % DISTVM_PAGE_SIZE || base + size < base) {
        error_setg(errp, "distvm: residency: %#" PRIx64 "+%#" PRIx64 " is "
                   "not a non-empty range of whole 4 KiB pages", base, size);
        return false;
    }
    if (node >= s->nodes) {
        error_setg(errp, "distvm: there is no node %" PRIu32 " (the cluster "
                   "has nodes 0 to %" PRIu32 ")", node, s->nodes - 1);
        return false;
    }
    if (!distvm_node_present(s, node)) {
        error_setg(errp, "distvm: node %" PRIu32 " is not part of the "
                   "cluster: it has not joined, or it left", node);
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        const DistvmResident *o = &s->resident[i];

        if (base < o->base + o->size && o->base < base + size) {
            error_setg(errp, "distvm: residency: %#" PRIx64 "+%#" PRIx64
                       " overlaps %#" PRIx64 "+%#" PRIx64 ", resident on "
                       "node %" PRIu32, base, size, o->base, o->size,
                       o->node);
            return false;
        }
    }
    if (n == DISTVM_RESIDENT_MAX) {
        error_setg(errp, "distvm: residency: %d ranges are resident already, "
                   "the most there can be", DISTVM_RESIDENT_MAX);
        return false;
    }
    return resident_find_ram(r, errp);
}

/* With the BQL: publish @r, checked by resident_check_new(). */
static DistvmResident *resident_add(DistvmState *s, const DistvmResident *r)
{
    uint32_t n = distvm_residency_count(s);

    s->resident[n] = *r;
    qatomic_store_release(&s->nr_resident, n + 1);
    return &s->resident[n];
}

static void res_set_send(DistvmState *s, uint32_t to,
                         const DistvmMsgResSet *set)
{
    g_autoptr(GByteArray) m = g_byte_array_new();

    if (!distvm_node_present(s, to)) {
        return;                 /* not part of the cluster: no RAM of it */
    }
    distvm_wire_res_set(m, s->node_id, set);
    if (!distvm_send(s, to, m)) {
        distvm_fatal_node_lost(s, to, "connection closed");
    }
}

/* The range's node, on a thread of its own: bring its pages here. */
static void *resident_gather_thread(void *opaque)
{
    DistvmResident *r = opaque;
    DistvmState *s = distvm_state();
    DistvmMsgResSet set = {
        .base = r->base, .size = r->size, .node = r->node,
        .step = DISTVM_RES_SET_ACTIVE,
    };

    if (distvm_ram_gather(s, r)) {
        /* Here first: home may ask this node for another range next */
        res_set_send(s, s->node_id, &set);
        for (uint32_t n = 0; n < s->nodes; n++) {
            if (n != s->node_id) {
                res_set_send(s, n, &set);
            }
        }
    }
    return NULL;
}

/*
 * On each vCPU's thread.  Covering the range queued TCG's switch to the
 * new memory map, with its TLB flush, on every vCPU (tcg_commit()) before
 * this work, which runs after it: the vCPU no longer maps the RAM.
 */
static void resident_covered_cpu(CPUState *cpu, run_on_cpu_data data)
{
    DistvmResCover *c = data.host_ptr;

    if (qatomic_dec_fetch(&c->left) == 0) {
        DistvmState *s = distvm_state();

        c->set.step = DISTVM_RES_SET_COVERED;
        res_set_send(s, c->set.node, &c->set);
        g_free(c);
    }
}

/* The range of @set, set before, or NULL */
static DistvmResident *resident_find(DistvmState *s,
                                     const DistvmMsgResSet *set)
{
    DistvmResident *r = resident_of(s, set->base, set->size);

    return r && r->base == set->base && r->size == set->size &&
           r->node == set->node ? r : NULL;
}

/* Register @set's range, as resident_check_new() allows; NULL if not. */
static DistvmResident *res_set_register(DistvmState *s, uint32_t src,
                                        const DistvmMsgResSet *set)
{
    g_autoptr(Error) err = NULL;
    DistvmResident r;
    const char *why;

    if (!resident_check_new(s, set->base, set->size, set->node, &r, &err)) {
        why = error_get_pretty(err);
        distvm_msg_refused(s, src, "RES_SET of %#" PRIx64 "+%#" PRIx64 ": %s",
                           set->base, set->size,
                           g_str_has_prefix(why, "distvm: ") ? why + 8 : why);
        return NULL;
    }
    return resident_add(s, &r);
}

/* @set is the range home asked for, and waits for */
static bool res_set_asked(DistvmState *s, const DistvmMsgResSet *set)
{
    DistvmResWaits *rw = s->res_waits;

    return rw->asked.size && rw->asked.base == set->base &&
           rw->asked.size == set->size && rw->asked.node == set->node;
}

/* RES_SET, in the main loop: a step of a range becoming resident */
static void res_set_received(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgResSet *set = &msg->u.res_set;
    DistvmResWaits *rw = s->res_waits;
    uint32_t src = msg->hdr.src;
    DistvmMsgResSet next = *set;
    DistvmResident *r;

    trace_distvm_resident_set_step(set->base, set->size, set->node,
                                   set->step, src);
    switch (set->step) {
    case DISTVM_RES_SET_ASK:
        if (rw->gathering) {
            distvm_msg_refused(s, src, "RES_SET for %#" PRIx64 "+%#" PRIx64
                               " while %#" PRIx64 "+%#" PRIx64 " becomes "
                               "resident here", set->base, set->size,
                               rw->gathering->base, rw->gathering->size);
            return;
        }
        r = res_set_register(s, src, set);
        if (r) {
            rw->gathering = r;
            rw->covered = 0;
            next.step = DISTVM_RES_SET_REGISTERED;
            res_set_send(s, distvm_home(s), &next);
        }
        break;
    case DISTVM_RES_SET_REGISTERED:
        if (!res_set_asked(s, set)) {
            distvm_msg_refused(s, src, "RES_SET: %#" PRIx64 "+%#" PRIx64
                               " registered, but it was not asked for",
                               set->base, set->size);
            return;
        }
        next.step = DISTVM_RES_SET_COVER;
        for (uint32_t n = 0; n < s->nodes; n++) {
            if (n != set->node) {
                res_set_send(s, n, &next);
            }
        }
        break;
    case DISTVM_RES_SET_COVER: {
        DistvmResCover *c;
        CPUState *cpu;
        int cpus = 0;

        r = res_set_register(s, src, set);
        if (!r) {
            return;
        }
        resident_cover(r);
        CPU_FOREACH(cpu) {
            cpus++;
        }
        c = g_new0(DistvmResCover, 1);
        c->set = *set;
        c->left = cpus;
        CPU_FOREACH(cpu) {
            async_run_on_cpu(cpu, resident_covered_cpu,
                             RUN_ON_CPU_HOST_PTR(c));
        }
        break;
    }
    case DISTVM_RES_SET_KNOWN:
        if (s->node_id < s->start_nodes ||
            distvm_node_present(s, s->node_id)) {
            distvm_msg_refused(s, src, "RES_SET: 0x%" PRIx64 "+0x%" PRIx64
                               " known to be resident, but this node is not "
                               "joining", set->base, set->size);
            return;
        }
        if (resident_find(s, set)) {
            break;              /* the property's: covered already */
        }
        r = res_set_register(s, src, set);
        if (r) {
            resident_cover(r);
            qatomic_set(&r->active, true);
        }
        break;
    case DISTVM_RES_SET_COVERED:
        r = rw->gathering;
        if (!r || r != resident_find(s, set) || (rw->covered & (1u << src))) {
            distvm_msg_refused(s, src, "RES_SET: %#" PRIx64 "+%#" PRIx64
                               " covered, but it is not becoming resident "
                               "here, or was covered there before",
                               set->base, set->size);
            return;
        }
        rw->covered |= 1u << src;
        if (rw->covered == (qatomic_read(&s->present) &
                            ~(1u << s->node_id))) {
            QemuThread thread;

            qemu_thread_create(&thread, "distvm-gather",
                               resident_gather_thread, r,
                               QEMU_THREAD_DETACHED);
        }
        break;
    default:
        r = resident_find(s, set);
        if (!r || qatomic_read(&r->active)) {
            distvm_msg_refused(s, src, "RES_SET: %#" PRIx64 "+%#" PRIx64
                               " active, but it is not becoming resident",
                               set->base, set->size);
            return;
        }
        qatomic_set(&r->active, true);
        if (r == rw->gathering) {
            rw->gathering = NULL;
        }
        if (res_set_asked(s, set)) {
            qatomic_set(&rw->asked.size, 0);
            qapi_event_send_distvm_resident(r->base, r->size, r->node);
        }
        break;
    }
}

static const DistvmMsgHandler residency_handlers[] = {
    { DISTVM_MSG_RES_ACCESS, .receive = resident_access_received },
    { DISTVM_MSG_RES_REPLY, .receive = resident_answered },
    { DISTVM_MSG_RES_SET, .main_loop = res_set_received },
};

/*
 * The machine exists: find the RAM of each range, then cover the ranges
 * resident elsewhere.
 */
bool distvm_residency_setup(DistvmState *s, Error **errp)
{
    QemuThread thread;

    for (uint32_t i = 0; i < distvm_residency_count(s); i++) {
        DistvmResident *r = &s->resident[i];

        if (!resident_find_ram(r, errp)) {
            return false;
        }
        if (r->node != s->node_id) {
            resident_cover(r);
        }
    }
    s->res_waits->accesses = g_async_queue_new();
    qemu_thread_create(&thread, "distvm-resident", resident_access_thread,
                       s, QEMU_THREAD_DETACHED);
    distvm_msg_handlers_register(s, residency_handlers,
                                 ARRAY_SIZE(residency_handlers));
    return true;
}

void qmp_distvm_set_residency(uint64_t base, uint64_t size, uint32_t node,
                              Error **errp)
{
    DistvmState *s = distvm_qmp_home("distvm-set-residency", errp);
    DistvmResident r;
    CPUState *cpu;

    if (!s) {
        return;
    }
    if (qatomic_read(&s->state) != DISTVM_CLUSTER_STATE_RUNNING) {
        error_setg(errp, "distvm: the cluster has not formed yet");
        return;
    }
    if (s->res_waits->asked.size) {
        error_setg(errp, "distvm: another range is still becoming resident; "
                   "query-distvm shows when it is");
        return;
    }
    if (qatomic_read(&s->joining) != UINT32_MAX) {
        error_setg(errp, "distvm: node %" PRIu32 " is joining the cluster; "
                   "make RAM resident once it joined",
                   qatomic_read(&s->joining));
        return;
    }
    if (!resident_check_new(s, base, size, node, &r, errp)) {
        return;
    }
    CPU_FOREACH(cpu) {
        if (!distvm_vcpu_allowed(s, cpu->cpu_index, node)) {
            error_setg(errp, "distvm: vCPU %d may not run on node %" PRIu32
                       " (distvm-set-vcpu-nodes), where a vCPU that touches "
                       "RAM resident there must run", cpu->cpu_index, node);
            return;
        }
    }
    s->res_waits->asked = (DistvmMsgResSet) {
        .base = base, .node = node, .step = DISTVM_RES_SET_ASK,
    };
    qatomic_set(&s->res_waits->asked.size, size);   /* the join's hint */
    res_set_send(s, node, &s->res_waits->asked);
}

/*
 * Home, with the BQL, the vCPUs held: @node joins the running guest.
 * Tell it every range resident now (those of the property, which it has
 * already, too: it checks they are the same).
 */
void distvm_residency_send_state(DistvmState *s, uint32_t node)
{
    g_autoptr(GByteArray) m = g_byte_array_new();

    for (uint32_t i = 0; i < distvm_residency_count(s); i++) {
        const DistvmResident *r = &s->resident[i];
        DistvmMsgResSet set = {
            .base = r->base, .size = r->size, .node = r->node,
            .step = DISTVM_RES_SET_KNOWN,
        };

        g_byte_array_set_size(m, 0);
        distvm_wire_res_set(m, s->node_id, &set);
        distvm_send(s, node, m);
    }
}

/*
 * Home: a range is becoming resident (distvm-set-residency's steps run).
 * Exact with the BQL, a hint without it.
 */
bool distvm_residency_changing(DistvmState *s)
{
    return qatomic_read(&s->res_waits->asked.size) != 0;
}

DistvmResidentRangeList *distvm_residency_query(DistvmState *s)
{
    DistvmResidentRangeList *list = NULL, **tail = &list;

    for (uint32_t i = 0; i < distvm_residency_count(s); i++) {
        DistvmResident *r = &s->resident[i];
        DistvmResidentRange *q = g_new0(DistvmResidentRange, 1);

        q->base = r->base;
        q->size = r->size;
        q->node = r->node;
        q->gathering = !qatomic_read(&r->active);
        q->remote_accesses = qatomic_read(&r->remote_accesses);
        q->vcpu_moves = qatomic_read(&r->vcpu_moves);
        QAPI_LIST_APPEND(tail, q);
    }
    return list;
}
