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
 * Only RAM given on the command line can be resident, from power-on:
 * what the firmware or -kernel loads into a resident range on home
 * before the guest runs is not kept there (the range starts zeroed).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
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
};

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
    r->node = node;
    return true;
}

/* The property, once the cluster's size is known */
bool distvm_residency_init(DistvmState *s, Error **errp)
{
    g_auto(GStrv) items = NULL;

    if (!s->residency || !*s->residency) {
        return true;
    }
    items = g_strsplit(s->residency, ":", -1);
    s->nr_resident = g_strv_length(items);
    s->resident = g_new0(DistvmResident, s->nr_resident);
    for (uint32_t i = 0; i < s->nr_resident; i++) {
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
    }
    s->res_waits = g_new0(DistvmResWaits, 1);
    qemu_mutex_init(&s->res_waits->lock);
    qemu_cond_init(&s->res_waits->cond);
    s->res_waits->waits = g_hash_table_new(g_int64_hash, g_int64_equal);
    s->res_waits->moved_ns = g_new0(int64_t, s->nr_vcpus);
    return true;
}

static DistvmResident *resident_of(DistvmState *s, uint64_t addr,
                                   uint64_t size)
{
    for (uint32_t i = 0; i < s->nr_resident; i++) {
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
    DistvmResident *r = s->nr_resident ? resident_of(s, addr, 1) : NULL;
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
    if (!s->res_waits) {
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

    if (!rw) {
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

static const DistvmMsgHandler residency_handlers[] = {
    { DISTVM_MSG_RES_ACCESS, .receive = resident_access_received },
    { DISTVM_MSG_RES_REPLY, .receive = resident_answered },
};

/*
 * The machine exists: find the RAM of each range, then cover the ranges
 * resident elsewhere.
 */
bool distvm_residency_setup(DistvmState *s, Error **errp)
{
    for (uint32_t i = 0; i < s->nr_resident; i++) {
        DistvmResident *r = &s->resident[i];
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
    }
    for (uint32_t i = 0; i < s->nr_resident; i++) {
        DistvmResident *r = &s->resident[i];

        if (r->node != s->node_id) {
            memory_region_init_io(&r->overlay, NULL, &resident_ops, r,
                                  "distvm-resident", r->size);
            memory_region_add_subregion_overlap(get_system_memory(), r->base,
                                                &r->overlay,
                                                DISTVM_RESIDENT_PRIORITY);
        }
    }
    if (s->nr_resident) {
        QemuThread thread;

        s->res_waits->accesses = g_async_queue_new();
        qemu_thread_create(&thread, "distvm-resident", resident_access_thread,
                           s, QEMU_THREAD_DETACHED);
        distvm_msg_handlers_register(s, residency_handlers,
                                     ARRAY_SIZE(residency_handlers));
    }
    return true;
}

DistvmResidentRangeList *distvm_residency_query(DistvmState *s)
{
    DistvmResidentRangeList *list = NULL, **tail = &list;

    for (uint32_t i = 0; i < s->nr_resident; i++) {
        DistvmResident *r = &s->resident[i];
        DistvmResidentRange *q = g_new0(DistvmResidentRange, 1);

        q->base = r->base;
        q->size = r->size;
        q->node = r->node;
        q->remote_accesses = qatomic_read(&r->remote_accesses);
        q->vcpu_moves = qatomic_read(&r->vcpu_moves);
        QAPI_LIST_APPEND(tail, q);
    }
    return list;
}
