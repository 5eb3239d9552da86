/*
 * distvm: the guest's disk writes wait for their epoch's commit
 *
 * With checkpoint epochs (replicas=1, distvm-epoch.c), a lost node rolls
 * the guest back to the last committed epoch, so nothing the guest wrote
 * after it may have reached its disks, as for its packets
 * (distvm-output.c).  Home, which runs the disks, puts a filter node of
 * this driver on top of every disk of the machine as it starts.  The
 * filter keeps each write (and write of zeroes, and discard) in memory,
 * in the order the guest made them, and answers it at once; reads see
 * them on top of what the disk holds.  When an epoch's data is saved the
 * writes held so far are sealed with its number; when it commits, those
 * of it and of earlier, abandoned epochs are written to the disk in
 * order, the disk is flushed if the guest asked for a flush meanwhile,
 * and only then are the packets of those epochs sent on.  So what the
 * world sees of an epoch comes after its writes are on the disk.
 *
 * A flush of the guest completes once what committed is written: the
 * disk is flushed where it was asked, once its epoch commits.  Any flush
 * writes out what committed, so that a node that ends (its cluster lost
 * a node) leaves the disk as of the last commit; the node closing, at
 * the end, writes out everything.  A stopped guest's writes wait for
 * the commit of the epoch after "cont".  While the cluster is a single
 * node, which takes no epochs, writes go through.
 *
 * A write that fails once its epoch committed cannot fail the guest's
 * request any more, which was answered: it is reported.  A disk added
 * later (device_add) is not held, and a held one cannot be resized
 * while it holds writes.  What is held is not bounded: an epoch's
 * writes, or more while epochs cannot be taken (a node joins or is
 * drained).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/units.h"
#include "block/block_int.h"
#include "block/block-io.h"
#include "system/block-backend.h"
#include "system/runstate.h"
#include "migration/qemu-file-types.h"
#include "distvm-internal.h"
#include "trace.h"

#define DISTVM_OUTPUT_DISK_DRIVER "distvm-output"

typedef enum HeldKind {
    HELD_WRITE,
    HELD_ZEROES,
    HELD_DISCARD,
    HELD_FLUSH,                 /* the guest flushed here */
} HeldKind;

/* One request of the guest, held */
typedef struct HeldWrite {
    HeldKind kind;
    uint64_t epoch;             /* sealed in; 0 while its epoch runs */
    int64_t offset;
    int64_t bytes;
    void *buf;                  /* HELD_WRITE: the data */
    QTAILQ_ENTRY(HeldWrite) next;
} HeldWrite;

typedef struct BDRVDistvmOutputState {
    QemuMutex lock;             /* @held, @release_to, @releasing */
    QTAILQ_HEAD(, HeldWrite) held;      /* oldest first */
    uint64_t release_to;        /* write the epochs up to this one */
    bool releasing;             /* a release_co() runs */
    bool failed;                /* a held write failed: reported once */
    /*
     * Held writes are taken off @held only once they are on the disk,
     * with this taken for writing; a read holds it while it reads the
     * disk and lays what is held on top
     */
    CoRwlock readers;
    /* Writes to the disk of what is held go one after the other */
    CoMutex writing;
} BDRVDistvmOutputState;

/* Under the BQL */
static GPtrArray *disks;        /* BlockDriverState of the filters */
static uint64_t packets_to;     /* the packets released up to this epoch */
/* Atomic */
static uint64_t held_writes;
static uint64_t held_bytes;
static uint64_t released_writes;

/* @h is done with: @written to the disk, or dropped */
static void held_free(HeldWrite *h, bool written)
{
    qatomic_sub(&held_writes, 1);
    qatomic_sub(&held_bytes, h->bytes);
    if (written) {
        qatomic_inc(&released_writes);
    }
    g_free(h->buf);
    g_free(h);
}

static int output_open(BlockDriverState *bs, QDict *options, int flags,
                       Error **errp)
{
    BDRVDistvmOutputState *st = bs->opaque;
    int ret;

    if (!disks) {
        error_setg(errp, "%s is made by distvm itself, with replicas=1",
                   DISTVM_OUTPUT_DISK_DRIVER);
        return -EINVAL;
    }
    qemu_mutex_init(&st->lock);
    QTAILQ_INIT(&st->held);
    qemu_co_rwlock_init(&st->readers);
    qemu_co_mutex_init(&st->writing);
    ret = bdrv_open_file_child(NULL, options, "file", bs, errp);
    if (ret < 0) {
        qemu_mutex_destroy(&st->lock);
        return ret;
    }
    bs->supported_write_flags = 0;
    bs->supported_zero_flags = 0;
    g_ptr_array_add(disks, bs);
    return 0;
}

static void output_close(BlockDriverState *bs)
{
    BDRVDistvmOutputState *st = bs->opaque;
    HeldWrite *h;

    g_ptr_array_remove(disks, bs);
    /* Written out as the node closed (output_co_flush()), but if it failed */
    while ((h = QTAILQ_FIRST(&st->held))) {
        QTAILQ_REMOVE(&st->held, h, next);
        held_free(h, false);
    }
    qemu_mutex_destroy(&st->lock);
}

/*
 * As a filter's, and writing to the disk while it holds writes, whatever
 * its parents need: what is held still goes out as the node closes, its
 * parents gone
 */
static void output_child_perm(BlockDriverState *bs, BdrvChild *c,
                              BdrvChildRole role,
                              BlockReopenQueue *reopen_queue,
                              uint64_t perm, uint64_t shared,
                              uint64_t *nperm, uint64_t *nshared)
{
    BDRVDistvmOutputState *st = bs->opaque;

    bdrv_default_perms(bs, c, role, reopen_queue, perm, shared, nperm,
                       nshared);
    if (!QTAILQ_EMPTY(&st->held)) {
        *nperm |= BLK_PERM_WRITE;
    }
}

static int64_t coroutine_fn GRAPH_RDLOCK
output_co_getlength(BlockDriverState *bs)
{
    return bdrv_co_getlength(bs->file->bs);
}

/* Lay @h on [@offset, @offset + @bytes) of @qiov, read from the disk */
static void held_overlay(const HeldWrite *h, int64_t offset, int64_t bytes,
                         QEMUIOVector *qiov, size_t qiov_offset)
{
    int64_t start = MAX(offset, h->offset);
    int64_t end = MIN(offset + bytes, h->offset + h->bytes);

    if (start >= end || h->kind == HELD_DISCARD || h->kind == HELD_FLUSH) {
        return;     /* a discarded range may read as it was */
    }
    if (h->kind == HELD_ZEROES) {
        qemu_iovec_memset(qiov, qiov_offset + start - offset, 0, end - start);
    } else {
        qemu_iovec_from_buf(qiov, qiov_offset + start - offset,
                            (uint8_t *)h->buf + start - h->offset,
                            end - start);
    }
}

static int coroutine_fn GRAPH_RDLOCK
output_co_preadv_part(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      QEMUIOVector *qiov, size_t qiov_offset,
                      BdrvRequestFlags flags)
{
    BDRVDistvmOutputState *st = bs->opaque;
    HeldWrite *h;
    int ret;

    qemu_co_rwlock_rdlock(&st->readers);
    ret = bdrv_co_preadv_part(bs->file, offset, bytes, qiov, qiov_offset,
                              flags);
    if (ret >= 0) {
        qemu_mutex_lock(&st->lock);
        QTAILQ_FOREACH(h, &st->held, next) {
            held_overlay(h, offset, bytes, qiov, qiov_offset);
        }
        qemu_mutex_unlock(&st->lock);
    }
    qemu_co_rwlock_unlock(&st->readers);
    return ret;
}

/* Write @h to the disk */
static int coroutine_fn GRAPH_RDLOCK held_write(BlockDriverState *bs,
                                                const HeldWrite *h)
{
    switch (h->kind) {
    case HELD_WRITE:
        return bdrv_co_pwrite(bs->file, h->offset, h->bytes, h->buf, 0);
    case HELD_ZEROES:
        return bdrv_co_pwrite_zeroes(bs->file, h->offset, h->bytes, 0);
    case HELD_DISCARD:
        return bdrv_co_pdiscard(bs->file, h->offset, h->bytes);
    default:
        return bdrv_co_flush(bs->file->bs);
    }
}

/* The first held write sealed up to @epoch not yet written, or NULL */
static HeldWrite *held_next(BDRVDistvmOutputState *st, HeldWrite *after,
                            uint64_t epoch)
{
    HeldWrite *h = after ? QTAILQ_NEXT(after, next) : QTAILQ_FIRST(&st->held);

    return h && h->epoch && h->epoch <= epoch ? h : NULL;
}

/*
 * Write what is held of the epochs up to @epoch (all: UINT64_MAX) to the
 * disk, in order, flushing it where the guest did, then take them off
 * @held; with @flush, flush the disk at the end if anything was written.
 * Returns the first error, or 0.
 */
static int coroutine_fn GRAPH_RDLOCK held_write_out(BlockDriverState *bs,
                                                    uint64_t epoch,
                                                    bool flush)
{
    BDRVDistvmOutputState *st = bs->opaque;
    HeldWrite *h = NULL, *last = NULL;
    int ret = 0, r;

    qemu_co_mutex_lock(&st->writing);
    for (;;) {
        qemu_mutex_lock(&st->lock);
        h = held_next(st, last, epoch);
        qemu_mutex_unlock(&st->lock);
        if (!h) {
            break;
        }
        r = held_write(bs, h);
        trace_distvm_output_disk_write(bdrv_get_node_name(bs), h->epoch,
                                       h->kind, h->offset, h->bytes, r);
        if (r < 0 && !st->failed) {
            st->failed = true;
            error_report("distvm: a write of the guest to disk %s failed "
                         "once its epoch committed (its data is lost): %s",
                         bdrv_get_device_or_node_name(bs), strerror(-r));
        }
        ret = ret ?: MIN(r, 0);
        last = h;
    }
    if (last && flush) {
        r = bdrv_co_flush(bs->file->bs);
        ret = ret ?: r;
    }
    if (last) {
        qemu_co_rwlock_wrlock(&st->readers);
        qemu_mutex_lock(&st->lock);
        while ((h = QTAILQ_FIRST(&st->held))) {
            bool was_last = h == last;

            QTAILQ_REMOVE(&st->held, h, next);
            held_free(h, true);
            if (was_last) {
                break;
            }
        }
        qemu_mutex_unlock(&st->lock);
        qemu_co_rwlock_unlock(&st->readers);
    }
    qemu_co_mutex_unlock(&st->writing);
    return ret;
}

/* Seal what is open, as if an epoch was saved: all of it goes out */
static void held_seal_all(BDRVDistvmOutputState *st)
{
    HeldWrite *h;

    qemu_mutex_lock(&st->lock);
    QTAILQ_FOREACH(h, &st->held, next) {
        if (!h->epoch) {
            h->epoch = UINT64_MAX;
        }
    }
    qemu_mutex_unlock(&st->lock);
}

static void release_done_bh(void *opaque);

/* In the disk's AioContext: release what committed, then say so */
static void coroutine_fn release_co(void *opaque)
{
    BlockDriverState *bs = opaque;
    BDRVDistvmOutputState *st = bs->opaque;
    uint64_t epoch;

    for (;;) {
        qemu_mutex_lock(&st->lock);
        epoch = st->release_to;
        if (!held_next(st, NULL, epoch)) {
            st->releasing = false;
            qemu_mutex_unlock(&st->lock);
            break;
        }
        qemu_mutex_unlock(&st->lock);
        WITH_GRAPH_RDLOCK_GUARD() {
            held_write_out(bs, epoch, false);
        }
    }
    /* The main loop drops the reference distvm_output_disk_release() took */
    aio_bh_schedule_oneshot(qemu_get_aio_context(), release_done_bh, bs);
    bdrv_dec_in_flight(bs);
}

static bool output_passes(void)
{
    return !distvm_epoch_taken(distvm_state());
}

/* Hold a request of the guest, or, on a single node, let it through */
static int coroutine_fn GRAPH_RDLOCK
output_hold(BlockDriverState *bs, HeldKind kind, int64_t offset,
            int64_t bytes, QEMUIOVector *qiov, size_t qiov_offset)
{
    BDRVDistvmOutputState *st = bs->opaque;
    HeldWrite *h;
    int ret;

    if (output_passes()) {
        /* Drained to one node: what it held goes first, in order */
        held_seal_all(st);
        held_write_out(bs, UINT64_MAX, false);
        switch (kind) {
        case HELD_WRITE:
            ret = bdrv_co_pwritev_part(bs->file, offset, bytes, qiov,
                                       qiov_offset, 0);
            break;
        case HELD_ZEROES:
            ret = bdrv_co_pwrite_zeroes(bs->file, offset, bytes, 0);
            break;
        default:
            ret = bdrv_co_pdiscard(bs->file, offset, bytes);
            break;
        }
        return ret;
    }
    h = g_new0(HeldWrite, 1);
    h->kind = kind;
    h->offset = offset;
    h->bytes = bytes;
    if (kind == HELD_WRITE) {
        h->buf = g_malloc(bytes);
        qemu_iovec_to_buf(qiov, qiov_offset, h->buf, bytes);
    }
    qemu_mutex_lock(&st->lock);
    QTAILQ_INSERT_TAIL(&st->held, h, next);
    qemu_mutex_unlock(&st->lock);
    qatomic_inc(&held_writes);
    qatomic_add(&held_bytes, bytes);
    return 0;
}

static int coroutine_fn GRAPH_RDLOCK
output_co_pwritev_part(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       QEMUIOVector *qiov, size_t qiov_offset,
                       BdrvRequestFlags flags)
{
    return output_hold(bs, HELD_WRITE, offset, bytes, qiov, qiov_offset);
}

static int coroutine_fn GRAPH_RDLOCK
output_co_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                        BdrvRequestFlags flags)
{
    return output_hold(bs, HELD_ZEROES, offset, bytes, NULL, 0);
}

static int coroutine_fn GRAPH_RDLOCK
output_co_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    return output_hold(bs, HELD_DISCARD, offset, bytes, NULL, 0);
}

/*
 * A flush writes out what committed.  While the guest runs, what did not
 * is flushed where the flush came, once its epoch commits; on a single
 * node, or as the node closes (the end), everything is written out.
 */
static int coroutine_fn GRAPH_RDLOCK output_co_flush(BlockDriverState *bs)
{
    BDRVDistvmOutputState *st = bs->opaque;
    bool all = output_passes() || !bs->refcnt;
    bool held;
    int ret;

    if (all) {
        held_seal_all(st);
    }
    ret = held_write_out(bs, all ? UINT64_MAX :
                         distvm_epoch_committed(distvm_state()), true);
    qemu_mutex_lock(&st->lock);
    held = !QTAILQ_EMPTY(&st->held);
    if (held && runstate_is_running()) {
        HeldWrite *h = g_new0(HeldWrite, 1);

        h->kind = HELD_FLUSH;
        QTAILQ_INSERT_TAIL(&st->held, h, next);
        qatomic_inc(&held_writes);
    }
    qemu_mutex_unlock(&st->lock);
    if (!held) {
        int r = bdrv_co_flush(bs->file->bs);

        ret = ret ?: r;
    }
    return ret;
}

/* What the disk holds where the guest's writes wait is data */
static int coroutine_fn GRAPH_RDLOCK
output_co_block_status(BlockDriverState *bs, bool want_zero, int64_t offset,
                       int64_t bytes, int64_t *pnum, int64_t *map,
                       BlockDriverState **file)
{
    BDRVDistvmOutputState *st = bs->opaque;
    bool held = false;
    HeldWrite *h;

    qemu_mutex_lock(&st->lock);
    QTAILQ_FOREACH(h, &st->held, next) {
        if (h->kind != HELD_DISCARD && h->kind != HELD_FLUSH &&
            h->offset < offset + bytes && offset < h->offset + h->bytes) {
            held = true;
            break;
        }
    }
    qemu_mutex_unlock(&st->lock);
    *pnum = bytes;
    if (held) {
        return BDRV_BLOCK_DATA;
    }
    *map = offset;
    *file = bs->file->bs;
    return BDRV_BLOCK_RAW | BDRV_BLOCK_OFFSET_VALID;
}

static int coroutine_fn GRAPH_RDLOCK
output_co_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                   PreallocMode prealloc, BdrvRequestFlags flags,
                   Error **errp)
{
    BDRVDistvmOutputState *st = bs->opaque;
    bool held;

    qemu_mutex_lock(&st->lock);
    held = !QTAILQ_EMPTY(&st->held);
    qemu_mutex_unlock(&st->lock);
    if (held) {
        error_setg(errp, "distvm: disk %s holds writes of the guest until "
                   "their checkpoint epoch commits: it cannot be resized "
                   "now", bdrv_get_device_or_node_name(bs));
        return -EBUSY;
    }
    return bdrv_co_truncate(bs->file, offset, exact, prealloc, flags, errp);
}

static void coroutine_fn GRAPH_RDLOCK
output_co_eject(BlockDriverState *bs, bool eject_flag)
{
    bdrv_co_eject(bs->file->bs, eject_flag);
}

static void coroutine_fn GRAPH_RDLOCK
output_co_lock_medium(BlockDriverState *bs, bool locked)
{
    bdrv_co_lock_medium(bs->file->bs, locked);
}

static BlockDriver bdrv_distvm_output = {
    .format_name            = DISTVM_OUTPUT_DISK_DRIVER,
    .instance_size          = sizeof(BDRVDistvmOutputState),
    .bdrv_open              = output_open,
    .bdrv_close             = output_close,
    .bdrv_child_perm        = output_child_perm,
    .bdrv_co_getlength      = output_co_getlength,
    .bdrv_co_preadv_part    = output_co_preadv_part,
    .bdrv_co_pwritev_part   = output_co_pwritev_part,
    .bdrv_co_pwrite_zeroes  = output_co_pwrite_zeroes,
    .bdrv_co_pdiscard       = output_co_pdiscard,
    .bdrv_co_flush          = output_co_flush,
    .bdrv_co_block_status   = output_co_block_status,
    .bdrv_co_truncate       = output_co_truncate,
    .bdrv_co_eject          = output_co_eject,
    .bdrv_co_lock_medium    = output_co_lock_medium,
    .is_filter              = true,
};

static void distvm_output_disk_register(void)
{
    bdrv_register(&bdrv_distvm_output);
}

block_init(distvm_output_disk_register);

/*
 * The epoch up to which every disk wrote out what it held: the packets
 * of those epochs may go
 */
static uint64_t disks_written_to(void)
{
    uint64_t epoch = distvm_epoch_committed(distvm_state());

    for (guint i = 0; disks && i < disks->len; i++) {
        BlockDriverState *bs = g_ptr_array_index(disks, i);
        BDRVDistvmOutputState *st = bs->opaque;
        HeldWrite *h;

        qemu_mutex_lock(&st->lock);
        h = QTAILQ_FIRST(&st->held);
        if (h && h->epoch && h->epoch <= epoch) {
            epoch = h->epoch - 1;
        }
        qemu_mutex_unlock(&st->lock);
    }
    return epoch;
}

/* Send on the packets of the epochs whose writes are all out */
static void packets_release(void)
{
    uint64_t epoch = disks_written_to();

    if (epoch > packets_to) {
        packets_to = epoch;
        distvm_output_packets_release(epoch);
    }
}

static void release_done_bh(void *opaque)
{
    packets_release();
    bdrv_unref(opaque);
}

void distvm_output_disk_seal(uint64_t epoch)
{
    for (guint i = 0; disks && i < disks->len; i++) {
        BlockDriverState *bs = g_ptr_array_index(disks, i);
        BDRVDistvmOutputState *st = bs->opaque;
        HeldWrite *h;

        qemu_mutex_lock(&st->lock);
        QTAILQ_FOREACH_REVERSE(h, &st->held, next) {
            if (h->epoch) {
                break;
            }
            h->epoch = epoch;
        }
        qemu_mutex_unlock(&st->lock);
    }
}

void distvm_output_disk_release(uint64_t epoch)
{
    for (guint i = 0; disks && i < disks->len; i++) {
        BlockDriverState *bs = g_ptr_array_index(disks, i);
        BDRVDistvmOutputState *st = bs->opaque;
        bool start;

        qemu_mutex_lock(&st->lock);
        st->release_to = epoch;
        start = !st->releasing && held_next(st, NULL, epoch);
        st->releasing |= start;
        qemu_mutex_unlock(&st->lock);
        if (start) {
            bdrv_ref(bs);
            bdrv_inc_in_flight(bs);
            aio_co_enter(bdrv_get_aio_context(bs),
                         qemu_coroutine_create(release_co, bs));
        }
    }
    packets_release();
}

void distvm_output_disk_rollback(uint64_t epoch)
{
    for (guint i = 0; disks && i < disks->len; i++) {
        BlockDriverState *bs = g_ptr_array_index(disks, i);
        BDRVDistvmOutputState *st = bs->opaque;
        HeldWrite *h, *next;

        qemu_mutex_lock(&st->lock);
        QTAILQ_FOREACH_SAFE(h, &st->held, next, next) {
            /* Not those being written out at once (UINT64_MAX) */
            if (!h->epoch || (h->epoch > epoch && h->epoch != UINT64_MAX)) {
                QTAILQ_REMOVE(&st->held, h, next);
                held_free(h, false);
            }
        }
        qemu_mutex_unlock(&st->lock);
    }
}

void distvm_output_disk_stats(uint64_t *writes, uint64_t *bytes,
                              uint64_t *released)
{
    *writes = qatomic_read(&held_writes);
    *bytes = qatomic_read(&held_bytes);
    *released = qatomic_read(&released_writes);
}

/*
 * Home's held writes, as its standby keeps them with the devices' state:
 * records of a disk's name, a kind, an offset, a length and a write's
 * data, then an end
 */
#define HELD_RECORD_END         0
#define HELD_RECORD             1
#define HELD_RECORD_MAX_BYTES   (64 * MiB)

/*
 * Home, saving the devices for an epoch, its writes sealed: the writes
 * it holds of that epoch, and of epochs committed that may not be on the
 * disk yet, go with them to its standby, which writes them if it takes
 * home's place (distvm_output_disk_replay())
 */
void distvm_output_disk_save(QEMUFile *f)
{
    for (guint i = 0; disks && i < disks->len; i++) {
        BlockDriverState *bs = g_ptr_array_index(disks, i);
        BDRVDistvmOutputState *st = bs->opaque;
        const char *name = bdrv_get_device_or_node_name(bs);
        HeldWrite *h;

        qemu_mutex_lock(&st->lock);
        QTAILQ_FOREACH(h, &st->held, next) {
            if (!h->epoch || h->epoch == UINT64_MAX ||
                h->kind == HELD_FLUSH) {
                continue;
            }
            qemu_put_byte(f, HELD_RECORD);
            qemu_put_byte(f, strlen(name));
            qemu_put_buffer(f, (const uint8_t *)name, strlen(name));
            qemu_put_byte(f, h->kind);
            qemu_put_be64(f, h->offset);
            qemu_put_be64(f, h->bytes);
            if (h->kind == HELD_WRITE) {
                qemu_put_buffer(f, h->buf, h->bytes);
            }
        }
        qemu_mutex_unlock(&st->lock);
    }
    qemu_put_byte(f, HELD_RECORD_END);
}

/*
 * What writes to @blk's disk: @blk, if its device took the permission to
 * write, or else a BlockBackend of its own (unref it), or NULL
 */
static BlockBackend *replay_writer(BlockBackend *blk, Error **errp)
{
    BlockBackend *writer;
    uint64_t perm, shared;

    blk_get_perm(blk, &perm, &shared);
    if (perm & BLK_PERM_WRITE) {
        blk_ref(blk);
        return blk;
    }
    writer = blk_new(blk_get_aio_context(blk), BLK_PERM_WRITE, BLK_PERM_ALL);
    if (blk_insert_bs(writer, blk_bs(blk), errp) < 0) {
        blk_unref(writer);
        return NULL;
    }
    return writer;
}

/* One record of distvm_output_disk_save(), written to its disk */
static bool replay_record(QEMUFile *f, Error **errp)
{
    char name[256] = "";
    uint8_t len = qemu_get_byte(f);
    g_autofree uint8_t *buf = NULL;
    BlockBackend *blk, *writer;
    uint8_t kind;
    int64_t offset, bytes;
    int ret;

    qemu_get_buffer(f, (uint8_t *)name, len);
    kind = qemu_get_byte(f);
    offset = qemu_get_be64(f);
    bytes = qemu_get_be64(f);
    blk = blk_by_name(name);
    if (qemu_file_get_error(f) || kind > HELD_DISCARD || !blk ||
        offset < 0 || bytes <= 0 || bytes > HELD_RECORD_MAX_BYTES ||
        offset + bytes > blk_getlength(blk)) {
        error_setg(errp, "a write held for disk '%s' is not one it can "
                   "take", name);
        return false;
    }
    if (kind == HELD_WRITE) {
        buf = g_malloc(bytes);
        if (qemu_get_buffer(f, buf, bytes) != bytes) {
            error_setg(errp, "a write held for disk '%s' is cut short",
                       name);
            return false;
        }
    }
    writer = replay_writer(blk, errp);
    if (!writer) {
        error_prepend(errp, "disk '%s': ", name);
        return false;
    }
    if (kind == HELD_WRITE) {
        ret = blk_pwrite(writer, offset, bytes, buf, 0);
    } else if (kind == HELD_ZEROES) {
        ret = blk_pwrite_zeroes(writer, offset, bytes, 0);
    } else {
        ret = blk_pdiscard(writer, offset, bytes, 0);
    }
    blk_unref(writer);
    trace_distvm_output_disk_replay(name, kind, offset, bytes, ret);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "cannot write to disk '%s' what home "
                         "held of it", name);
        return false;
    }
    return true;
}

/*
 * Home's standby, in its place, its disk images active: write what home
 * held when it saved the devices of the epoch the guest goes back to
 * (writes of committed epochs are written again: the same data, in the
 * same order), and flush the disks.  Before its own writes are held.
 */
bool distvm_output_disk_replay(QEMUFile *f, Error **errp)
{
    uint8_t tag;

    while ((tag = qemu_get_byte(f)) == HELD_RECORD) {
        if (!replay_record(f, errp)) {
            return false;
        }
    }
    if (tag != HELD_RECORD_END || qemu_file_get_error(f)) {
        error_setg(errp, "the writes home held are cut short");
        return false;
    }
    if (bdrv_flush_all() < 0) {
        error_setg(errp, "cannot flush the disks once home's held writes "
                   "were written");
        return false;
    }
    return true;
}

/*
 * Whether the disks the guest can write are images this node can take
 * over: not the null driver a node other than home may be given
 */
static bool disk_is_stand_in(BlockDriverState *bs)
{
    const char *fmt = bdrv_get_format_name(bs) ?: "";

    return !strcmp(fmt, "null-co") || !strcmp(fmt, "null-aio");
}

/* Put a filter on top of the disk that @blk reaches, if none yet */
static bool hold_disk(BlockBackend *blk, Error **errp)
{
    BlockDriverState *bs = blk_bs(blk);
    BlockDriverState *filter;
    QDict *opts;

    if (!bs || bdrv_is_read_only(bs) ||
        !strcmp(bdrv_get_format_name(bs) ?: "", DISTVM_OUTPUT_DISK_DRIVER)) {
        return true;
    }
    opts = qdict_new();
    qdict_put_str(opts, "driver", DISTVM_OUTPUT_DISK_DRIVER);
    qdict_put_str(opts, "file", bdrv_get_node_name(bs));
    /* Discards come to it, as to the disk, if the disk takes them */
    filter = bdrv_insert_node(bs, opts, BDRV_O_RDWR |
                              (bs->open_flags & BDRV_O_UNMAP), errp);
    if (!filter) {
        error_prepend(errp, "disk %s: ", blk_name(blk)[0] ? blk_name(blk) :
                      bdrv_get_device_or_node_name(bs));
        return false;
    }
    bdrv_unref(filter);         /* its parents keep it */
    return true;
}

/*
 * The name of a disk the guest can write that this node could not take
 * over from home (it was given the null driver, as a node other than
 * home may be), or NULL
 */
const char *distvm_output_disk_stand_in(void)
{
    for (BlockBackend *blk = blk_all_next(NULL); blk;
         blk = blk_all_next(blk)) {
        BlockDriverState *bs = blk_bs(blk);

        if (bs && !bdrv_is_read_only(bs) && disk_is_stand_in(bs)) {
            return blk_name(blk);
        }
    }
    return NULL;
}

/*
 * A node other than home, at start: its disk images are inactive, as an
 * incoming migration's are, until it takes home's place
 * (distvm_output_disk_activate()): not read or written meanwhile, so no
 * cache of them goes stale
 */
bool distvm_output_disk_inactivate(Error **errp)
{
    int ret = bdrv_inactivate_all();

    if (ret < 0) {
        error_setg_errno(errp, -ret, "distvm: cannot leave the disk images "
                         "to home until this node takes its place");
    }
    return ret >= 0;
}

/* Home's standby, in its place: the disk images are its own now */
bool distvm_output_disk_activate(Error **errp)
{
    ERRP_GUARD();

    bdrv_activate_all(errp);
    return !*errp;
}

bool distvm_output_disk_hold(Error **errp)
{
    disks = g_ptr_array_new();
    for (BlockBackend *blk = blk_all_next(NULL); blk;
         blk = blk_all_next(blk)) {
        if (!hold_disk(blk, errp)) {
            return false;
        }
    }
    return true;
}
