/*
 * distvm: guest RAM kept coherent across nodes
 *
 * Single writer / multiple readers per 4 KiB page (DESIGN.md section 4).
 * On each node a page is I (not present), S (present, write-protected)
 * or E (present, writable: this node owns it).  Every page has a
 * manager node that records its owner and copy set and handles one
 * request for the page at a time (fixed, but for a drained node's pages,
 * which it hands to another: distvm-handoff.c):
 *
 *   read miss    requester -> manager -> owner or a sharer: PAGE_FWD;
 *                the holder write-protects, copies, sends PAGE_DATA (S)
 *   write miss   with an owner: PAGE_FWD(WRITE); the owner write-protects,
 *                copies, sends PAGE_DATA (E), discards its copy
 *   write, no    the manager invalidates every other copy (PAGE_INV, or
 *   owner        PAGE_FWD(DROP) to the sharer that sends the data) and
 *                sends PAGE_GRANT once they all acknowledged
 *
 * The requester sends PAGE_DONE when the page is in place, and only then
 * does the manager take the page's next request; except when the message
 * that completes the request comes from the manager itself: a read miss
 * it serves from its own copy (PAGE_DATA), or a grant to a node that holds
 * the page already, an upgrade above all (PAGE_GRANT).  That message, marked
 * FINAL, goes before anything else about the page can go to the requester,
 * and the manager takes the next request at once.  Not for its own
 * requests, whose messages to itself wait until ram->lock is released.
 *
 * A node that writes pages of another one after the other (memory homed
 * elsewhere being zeroed or loaded, as Linux does at boot) gets, with the
 * page it asked for, the untouched pages that follow, when the manager
 * owns them: PAGE_FWD(RUN) to itself, then one PAGE_DATA(RUN) each,
 * for which no request and no PAGE_DONE travel.
 *
 * A vCPU that moves here brings the list of the pages its TLB mapped on
 * its last node (warm pages, distvm-vcpu.c); this node asks for them all
 * at once, with requests like a fault's that no thread waits for, and
 * the vCPU's faults on them merge with those requests.
 *
 * Memory plugged while the guest runs (distvm-memplug.c) takes the next
 * index of the RAMBlock table on every node, and keeps it when it is
 * unplugged: the table only grows, up to DISTVM_RAM_PLUG_BLOCKS entries
 * more than the machine had at start, so that the fault thread and the
 * receive threads read it without a lock.  An unplugged block is dead:
 * its pages are no longer anyone's and messages about them are dropped.
 *
 * Faults come from a userfaultfd registered MISSING|WP on every RAMBlock
 * and are read by one fault thread; concurrent faults on a page become one
 * request.  Neither the fault thread nor the receive threads take the BQL,
 * run work on a vCPU or wait for an RCU grace period: a vCPU stalled in a
 * fault may hold the BQL.
 *
 * A vCPU that translates code holds TCG's lock of the code's pages and may
 * fault on the next page meanwhile.  So a page this node gives up is
 * dropped with TCG's lock of the page held, and its translated code is
 * invalidated before the page's new owner can write it.  The receive
 * thread drops it at once if the lock is free and the page holds no code
 * (most pages that travel are data); otherwise a thread of its own, the
 * drop thread, waits for the lock.  The receive threads and the fault
 * thread never wait for a TCG lock, and a page being translated is never
 * dropped in the middle of it.  A vCPU of this node that writes a page
 * with code makes it writable here before TCG invalidates the code, and
 * invalidates it again after the write; writes to pages that held code
 * are tracked once they leave this node's hands, so that they do too
 * (distvm_ram_write_before() and after).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <poll.h>
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/cutils.h"
#include "qemu/madvise.h"
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "qemu/timer.h"
#include "qemu/userfaultfd.h"
#include "exec/ram_addr.h"
#include "exec/ramblock.h"
#include "exec/cputlb.h"
#include "exec/exec-all.h"
#include "migration/blocker.h"
#include "block/block-global-state.h"
#include "block/block-io.h"
#include "system/system.h"
#include "distvm-internal.h"
#include "distvm-ram.h"
#include "trace.h"

#define PAGE_BITS       12
#define NO_OWNER        (-1)
/* Consecutive pages share a manager in runs of this many. */
#define MANAGER_RUN_BITS 4
/* At most this many pages change hands at once in a sweep (holder_run). */
#define SWEEP_PAGES     64
/* RAMBlocks that may be plugged into the running guest, over its life */
#define DISTVM_RAM_PLUG_BLOCKS 64

typedef struct DistvmBlock {
    RAMBlock *rb;
    uint8_t *host;
    ram_addr_t ram_addr;
    uint64_t pages;
    uint64_t first;             /* global number of its first page */
    uint32_t home;              /* owns every page at power-on */
    bool homed;                 /* by the NUMA layout: manages its pages */
    bool dead;                  /* atomic: unplugged, or never plugged */
    uint32_t *page_faults;      /* this node's requests, by page */
    unsigned long *had_code;    /* atomic: pages that held code here */
    unsigned long *populated;   /* known to hold data here; ram->lock */
    /*
     * Atomic: pages that came here writable, or whose write tracking for
     * migration was reset, since the last checkpoint (distvm-epoch.c)
     */
    unsigned long *changed;
    unsigned long *sent;        /* sent in the last checkpoint; ram->lock */
    /*
     * ram->lock: pages that came here read-only since the last checkpoint
     * (@received), and between the last committed one and that
     * (@received_before), for a rollback (distvm_ram_rollback_pages())
     */
    unsigned long *received;
    unsigned long *received_before;
    /*
     * Taking over a lost node (distvm-recovery.c), ram->lock: the pages
     * a fault made usable here meanwhile, whatever they hold (@spoiled:
     * not held here, or held read-only and made writable);
     * and, for the pages this node manages, the nodes that hold each one
     * as the others reported (@held_by) and its owner (@held_owner)
     */
    unsigned long *spoiled;
    uint16_t *held_by;
    int8_t *held_owner;
    uint8_t *state;             /* DistvmPageState of every page, here */
    int8_t *owner;              /* directory, for the pages managed here */
    uint16_t *copyset;
} DistvmBlock;

/* A request of this node for a page, from fault to PAGE_DONE. */
typedef struct DistvmPending {
    DistvmFaultKind kind;
    int cpu;                    /* the vCPU that faulted, or -1 */
    uint32_t server;            /* the node whose data or grant came first */
    bool write;
    bool got_data;
    bool got_grant;
    bool warm;                  /* asked for before @cpu touched it */
    uint64_t arrival;           /* warm: DistvmArrival.gen of @cpu */
    int64_t start_ns;
    /* the vCPUs whose store waits for it, but @cpu's unless @warm */
    unsigned long *writers;
} DistvmPending;

static void pending_free(gpointer data)
{
    DistvmPending *p = data;

    g_free(p->writers);
    g_free(p);
}

/* A request the manager is handling, and the ones queued behind it. */
typedef struct DistvmTxn {
    uint32_t requester;
    bool write;
    bool grant_final;           /* the requester needs only the grant */
    uint16_t acks;              /* the nodes whose PAGE_INV_ACK is due */
    GQueue waiting;             /* DistvmQueued */
} DistvmTxn;

typedef struct DistvmQueued {
    uint32_t requester;
    uint32_t flags;
} DistvmQueued;

/* Messages built under the lock and sent after it is released. */
typedef struct DistvmOutbox {
    GPtrArray *msgs;            /* GByteArray */
    GArray *dests;              /* uint32_t */
    uint32_t lost;              /* nodes whose connection closed meanwhile */
} DistvmOutbox;

/* A PAGE_FWD that gives the page away, or a PAGE_INV: the drop thread's. */
typedef struct DistvmDrop {
    uint32_t type;
    uint32_t src;
    DistvmMsgPage m;            /* without data */
    DistvmOutbox o;
    Error *err;
    bool ok;
    unsigned recover_gen;       /* ram->recover_gen when it came */
    int flushing;               /* the ram->flushing[] it counts in, or -1 */
} DistvmDrop;

struct DistvmRam {
    QemuMutex lock;
    uint32_t nr_blocks;         /* atomic: entries of @blocks in use */
    uint32_t max_blocks;        /* room in @blocks and @block_pages */
    DistvmBlock *blocks;
    uint64_t *block_pages;
    uint64_t next_first;        /* at start: DistvmBlock.first of the next */
    bool started;
    int uffd;
    int quit_fd;
    int pagemap_fd;             /* /proc/self/pagemap: see host_populated() */
    QemuThread fault_thread;
    QemuThread drop_thread;
    GAsyncQueue *drops;         /* DistvmDrop, for the drop thread */
    GHashTable *pending;        /* page key -> DistvmPending */
    GHashTable *txns;           /* page key -> DistvmTxn (managed here) */
    DistvmRamStats stats;
    DistvmArrival *arrivals;    /* [nr_vcpus]: each vCPU's last arrival */
    uint32_t lat_next;
    Error *blocker;

    /*
     * Parts of the directory handed to another node (distvm-handoff.c),
     * indexed by the node that manages a page at first (page_manager()):
     * @mgr the node that manages it now, @mgr_next the node it is being
     * handed to (whose manager messages are taken meanwhile; @mgr when
     * none is), @mgr_prev the one it was handed from, or UINT32_MAX.
     * Atomic; changed under ram->lock.
     */
    uint32_t mgr[DISTVM_WIRE_MAX_NODES];
    uint32_t mgr_next[DISTVM_WIRE_MAX_NODES];
    uint32_t mgr_prev[DISTVM_WIRE_MAX_NODES];
    /* Handing off its part: requests for it are parked, not taken */
    bool handing_off;
    GArray *parked;             /* DistvmParked: those requests */
    /*
     * Outboxes being sent after ram->lock was released, by the parity of
     * @epoch when they were filled (ram_unlock_flush()): a node whose map
     * changes waits for those filled before (mgr_wait_sent()).
     */
    unsigned epoch;
    unsigned flushing[2];       /* atomic */
    /* Checkpoints are taken: DistvmBlock.changed is kept (atomic) */
    bool track_changes;
    /*
     * Atomic, changed under ram->lock: a node was lost and its part is
     * being taken over (distvm_ram_recover_enter()): page messages are
     * dropped until this node rebuilt its part of the directory
     * (@recover_drop), and faults served here until every node did
     * (@recover_local); @recover_gen counts the takeovers, so that the
     * drop thread's work from before one is dropped.
     */
    bool recover_drop;
    bool recover_local;
    unsigned recover_gen;
};

/* A request parked while this node hands its pages off */
typedef struct DistvmParked {
    uint32_t block;
    uint32_t requester;
    uint32_t flags;
    uint64_t page;
} DistvmParked;

static uint8_t zero_page[DISTVM_PAGE_SIZE] QEMU_ALIGNED(DISTVM_PAGE_SIZE);

static inline gpointer page_key(uint32_t block, uint64_t page)
{
    return (gpointer)(uintptr_t)(((uint64_t)block << 44) | page);
}

/*
 * A homed block's directory is on its home; the others' is spread over
 * the nodes the cluster starts with (nodes that join later manage none).
 */
static inline uint32_t page_first_manager(DistvmState *s, DistvmBlock *b,
                                          uint64_t page)
{
    if (b->homed) {
        return b->home;
    }
    return ((b->first + page) >> MANAGER_RUN_BITS) % s->start_nodes;
}

/* The node that manages @page now: where its first manager handed it */
static inline uint32_t page_manager(DistvmState *s, DistvmBlock *b,
                                    uint64_t page)
{
    return qatomic_read(&s->ram->mgr[page_first_manager(s, b, page)]);
}

/*
 * Whether @node may send what @page's manager sends: it manages the page,
 * or the page is being handed to it.
 */
static bool page_manager_is(DistvmState *s, DistvmBlock *b, uint64_t page,
                            uint32_t node)
{
    uint32_t first = page_first_manager(s, b, page);

    return node == qatomic_read(&s->ram->mgr[first]) ||
           node == qatomic_read(&s->ram->mgr_next[first]);
}

/* The node @page was handed off from, to this node, or UINT32_MAX */
static uint32_t page_manager_before(DistvmState *s, DistvmBlock *b,
                                    uint64_t page)
{
    return qatomic_read(&s->ram->mgr_prev[page_first_manager(s, b, page)]);
}

static inline void *page_host(DistvmBlock *b, uint64_t page)
{
    return b->host + (page << PAGE_BITS);
}

static inline ram_addr_t page_ram_addr(DistvmBlock *b, uint64_t page)
{
    return b->ram_addr + (page << PAGE_BITS);
}

/*
 * The range @page of @b is resident in (distvm-residency.c), or NULL; a
 * range set while the guest runs may still be gathering its pages.
 */
static const DistvmResident *page_resident(DistvmState *s, DistvmBlock *b,
                                           uint64_t page)
{
    uint32_t n = distvm_residency_count(s);

    for (uint32_t i = 0; i < n; i++) {
        const DistvmResident *r = &s->resident[i];
        uint64_t off = page << PAGE_BITS;

        if (r->rb == b->rb && off >= r->offset &&
            off - r->offset < r->size) {
            return r;
        }
    }
    return NULL;
}

/* ---- outbox ---- */

static void outbox_init(DistvmOutbox *o)
{
    o->msgs = g_ptr_array_new_with_free_func((GDestroyNotify)g_byte_array_unref);
    o->dests = g_array_new(false, false, sizeof(uint32_t));
    o->lost = 0;
}

static GByteArray *outbox_add(DistvmOutbox *o, uint32_t dest)
{
    GByteArray *m = g_byte_array_sized_new(DISTVM_WIRE_HDR_SIZE + 64 +
                                           DISTVM_PAGE_SIZE);

    g_ptr_array_add(o->msgs, m);
    g_array_append_val(o->dests, dest);
    return m;
}

static void outbox_page(DistvmState *s, DistvmOutbox *o, uint32_t dest,
                        DistvmMsgType type, uint32_t block, uint64_t page,
                        uint32_t node, uint32_t flags, const void *data)
{
    distvm_wire_page(outbox_add(o, dest), type, s->node_id, 0, block, page,
                     node, flags, data);
}

static void outbox_free(DistvmOutbox *o)
{
    g_ptr_array_free(o->msgs, true);
    g_array_free(o->dests, true);
}

/*
 * Send the messages @o holds so far, all those to one other node with one
 * system call (a run's pages, a moved vCPU's warm pages); note the nodes
 * that are gone.  The messages to one node keep their order; messages to
 * different nodes have none on the wire anyway.
 */
static void outbox_send(DistvmState *s, DistvmOutbox *o)
{
    uint32_t sent = 0;

    for (guint i = 0; i < o->msgs->len; i++) {
        uint32_t dest = g_array_index(o->dests, uint32_t, i);
        GByteArray *m = g_ptr_array_index(o->msgs, i);
        unsigned count = 1;

        if (sent & (1u << dest)) {
            continue;
        }
        /* Delivered here, a message is taken on its own. */
        if (dest != s->node_id) {
            sent |= 1u << dest;
            for (guint j = i + 1; j < o->msgs->len; j++) {
                GByteArray *next = g_ptr_array_index(o->msgs, j);

                if (g_array_index(o->dests, uint32_t, j) == dest) {
                    g_byte_array_append(m, next->data, next->len);
                    count++;
                }
            }
        }
        trace_distvm_outbox_send(dest, count, m->len);
        if (!distvm_send(s, dest, m)) {
            o->lost |= 1u << dest;
        }
    }
    g_ptr_array_set_size(o->msgs, 0);
    g_array_set_size(o->dests, 0);
}

/*
 * Send @now's messages at once, with ram->lock held, and free it: for
 * messages that nothing this node decides next about their pages may
 * overtake.  None to this node (delivered here, it would take ram->lock
 * again); a node gone meanwhile is @o's to report, once the lock is free.
 */
static void outbox_send_now(DistvmState *s, DistvmOutbox *o,
                            DistvmOutbox *now)
{
    outbox_send(s, now);
    o->lost |= now->lost;
    outbox_free(now);
}

/* Send the messages, report the nodes gone, then free the outbox. */
static void outbox_flush(DistvmState *s, DistvmOutbox *o)
{
    outbox_send(s, o);
    for (uint32_t n = 0; n < s->nodes; n++) {
        if (o->lost & (1u << n)) {
            distvm_fatal_node_lost(s, n, "connection closed");
        }
    }
    outbox_free(o);
}

/*
 * Release ram->lock, then send @o's messages: its requests and PAGE_DONEs
 * go to the managers the directory map named under the lock.  A node
 * whose map changes waits for those (mgr_wait_sent()).
 */
static void ram_unlock_flush(DistvmState *s, DistvmOutbox *o)
{
    DistvmRam *ram = s->ram;
    unsigned e = ram->epoch & 1;

    qatomic_inc(&ram->flushing[e]);
    qemu_mutex_unlock(&ram->lock);
    outbox_flush(s, o);
    qatomic_dec(&ram->flushing[e]);
}

/* ---- page operations (called with ram->lock held) ---- */

static int uffd_place(DistvmRam *ram, void *host, const void *src, bool wp)
{
    struct uffdio_copy copy = {
        .dst = (uintptr_t)host,
        .src = (uintptr_t)src,
        .len = DISTVM_PAGE_SIZE,
        .mode = wp ? UFFDIO_COPY_MODE_WP : 0,
    };

    while (ioctl(ram->uffd, UFFDIO_COPY, &copy)) {
        if (errno != EAGAIN) {
            return -errno;
        }
        copy.copy = 0;
    }
    return 0;
}

/* Map the zero page, without util/userfaultfd's report of EEXIST. */
static int uffd_zero(DistvmRam *ram, void *host)
{
    struct uffdio_zeropage zero = {
        .range = { .start = (uintptr_t)host, .len = DISTVM_PAGE_SIZE },
    };

    return ioctl(ram->uffd, UFFDIO_ZEROPAGE, &zero) ? -errno : 0;
}

/*
 * Map the zero page where this node's pages of @b were never touched, so
 * that their first access takes no fault: reading them costs nothing,
 * and writing them is the host kernel's copy-on-write, not a trip through
 * the fault thread.
 */
static void map_zero_pages(DistvmRam *ram, DistvmBlock *b)
{
    g_autofree unsigned char *vec = g_malloc(b->pages);
    uint64_t p = 0;

    if (mincore(b->host, b->pages << PAGE_BITS, vec)) {
        return;     /* then the first touches fault, as they may */
    }
    while (p < b->pages) {
        uint64_t end = p;
        struct uffdio_zeropage zero;

        while (end < b->pages && !(vec[end] & 1)) {
            end++;
        }
        if (end > p) {
            zero = (struct uffdio_zeropage) {
                .range = { .start = (uintptr_t)page_host(b, p),
                           .len = (end - p) << PAGE_BITS },
                .mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE,
            };
            if (!ioctl(ram->uffd, UFFDIO_ZEROPAGE, &zero)) {
                bitmap_set(b->populated, p, end - p);
            }
        }
        /*
         * In memory already (mincore() also counts userfaultfd's
         * write-protect markers of unpopulated pages, which this node
         * does not use: its pages are write-protected only present).
         */
        if (end < b->pages) {
            set_bit(end, b->populated);
        }
        p = end + 1;
    }
}

/*
 * This node cannot keep its pages coherent with the others' (a host call
 * that must not fail failed): it leaves the cluster, rather than let a
 * vCPU or a device use a stale copy, or send one.
 */
static void G_NORETURN ram_failed(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

static void ram_failed(const char *fmt, ...)
{
    DistvmState *s = distvm_state();
    g_autofree char *why = NULL;
    va_list ap;

    va_start(ap, fmt);
    why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    distvm_fatal_node_lost(s, s->node_id, why);
    _exit(1);           /* it returns if the cluster failed before */
}

/* Drop [@offset, @offset + @len) of @b: it is no longer this node's */
static void block_discard(DistvmBlock *b, ram_addr_t offset, uint64_t len)
{
    int ret;

    /* Before: a page is never marked populated while it is not */
    bitmap_clear(b->populated, offset >> PAGE_BITS, len >> PAGE_BITS);
    ret = ram_block_discard_range(b->rb, offset, len);

    if (ret) {
        ram_failed("it cannot drop guest RAM %s+%#" PRIx64 ", %#" PRIx64
                   " bytes, which other nodes now hold: %s",
                   qemu_ram_get_idstr(b->rb), (uint64_t)offset, len,
                   strerror(-ret));
    }
}

/* /proc/self/pagemap's entry of a page: present, or swapped out */
#define PAGEMAP_PRESENT         (1ull << 63)
#define PAGEMAP_SWAPPED         (1ull << 62)

/*
 * Does the page hold data here, or is it untouched (all zero, and a
 * userfault when touched)?  Not mincore(), which tells only whether the
 * page is in memory: a page the host swapped out holds data, and sending
 * it as all zero would lose it.
 */
static bool host_populated(DistvmRam *ram, void *host)
{
    uint64_t entry;
    ssize_t n;

    do {
        n = pread(ram->pagemap_fd, &entry, sizeof(entry),
                  ((uintptr_t)host >> PAGE_BITS) * sizeof(entry));
    } while (n < 0 && errno == EINTR);
    if (n != sizeof(entry)) {
        /* Neither answer is safe: a wrong one loses data, or deadlocks */
        ram_failed("it cannot read /proc/self/pagemap: %s",
                   n < 0 ? strerror(errno) : "short read");
    }
    return entry & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED);
}

/*
 * Page @page of @b was placed here: it holds data until it is dropped.
 * Under ram->lock, as block_discard(), so that a page is never marked
 * between its discard's clearing and the discard itself.
 */
static void page_placed(DistvmBlock *b, uint64_t page)
{
    set_bit(page, b->populated);
}

/*
 * host_populated() of a page, asked of the host kernel only while this
 * node does not know: a page it placed or found populated stays so until
 * block_discard() drops it, which is the only way a page of guest RAM
 * loses its data while a cluster runs (balloon and virtio-mem discards
 * are disabled).
 */
static bool page_populated(DistvmRam *ram, DistvmBlock *b, uint64_t page)
{
    if (test_bit(page, b->populated)) {
        return true;
    }
    if (!host_populated(ram, page_host(b, page))) {
        return false;
    }
    page_placed(b, page);
    return true;
}

/*
 * The page's content changed under this node: for the display, as for a
 * DMA write, but with no translated code to invalidate: that of a page is
 * invalidated when the page is dropped (see the drop thread), so a page
 * that arrives has none.  Not for migration, which a cluster blocks: its
 * bit keeps the writes to the page tracked (page_track_writes()).
 */
static void page_mark_changed(DistvmBlock *b, uint64_t page)
{
    cpu_physical_memory_set_dirty_flag(page_ram_addr(b, page),
                                       DIRTY_MEMORY_VGA);
}

/*
 * Have TCG track this node's writes to pages that held code, which this
 * node no longer holds writable, through patch 0017's hooks
 * (distvm_ram_write_before()): as for a page with code, write entries of
 * the vCPUs' TLBs and the ones filled later send them through
 * notdirty_write(), until one is done.  The page is "clean" for
 * migration, which no cluster does; checkpoints log writes with the same
 * bit (distvm_ram_checkpoint_pages()), so a write it logged is kept.
 */
static void page_track_writes(DistvmRam *ram, DistvmBlock *b, uint64_t page)
{
    if (cpu_physical_memory_test_and_clear_dirty(page_ram_addr(b, page),
                                                 DISTVM_PAGE_SIZE,
                                                 DIRTY_MEMORY_MIGRATION) &&
        qatomic_read(&ram->track_changes)) {
        set_bit_atomic(page, b->changed);
    }
}

/*
 * Drop this node's copy: write-protected first, so no write is lost.  On
 * the drop thread, with TCG's lock of the page held.
 */
static void page_discard(DistvmBlock *b, uint64_t page)
{
    block_discard(b, page << PAGE_BITS, DISTVM_PAGE_SIZE);
    page_mark_changed(b, page);
}

/*
 * Make the page ready to be sent: write-protect it if asked (a page this
 * node owned), and return its content, or NULL if it is all zero.  An E
 * page that was never touched here is not populated: it is all zero.
 */
static const void *page_contents(DistvmRam *ram, DistvmBlock *b,
                                 uint64_t page, bool write_protect)
{
    void *host = page_host(b, page);

    if (!page_populated(ram, b, page)) {
        return NULL;
    }
    if (write_protect &&
        uffd_change_protection(ram->uffd, host, DISTVM_PAGE_SIZE, true,
                               false)) {
        /* A write after the copy would be lost (errno: reported above) */
        ram_failed("it cannot write-protect page %" PRIu64 " of %s to "
                   "send it", page, qemu_ram_get_idstr(b->rb));
    }
    return buffer_is_zero(host, DISTVM_PAGE_SIZE) ? NULL : host;
}

static void stats_state(DistvmRam *ram, uint8_t from, uint8_t to)
{
    ram->stats.pages[from]--;
    ram->stats.pages[to]++;
}

static void set_state(DistvmRam *ram, DistvmBlock *b, uint64_t page,
                      DistvmPageState st)
{
    stats_state(ram, b->state[page], st);
    if (st == DISTVM_PAGE_S && b->state[page] == DISTVM_PAGE_I) {
        set_bit(page, b->received);
    }
    b->state[page] = st;
    /* Its writer's checkpoint is this node's now */
    if (st == DISTVM_PAGE_E && qatomic_read(&ram->track_changes)) {
        set_bit_atomic(page, b->changed);
    }
}

/* ---- manager ---- */

static int lowest_node(uint16_t set)
{
    return set ? ctz32(set) : -1;
}

/*
 * May page @q of @block go with a run?  This node manages it and owns it
 * alone, and no request is about it.  Its content is for the caller.
 */
static bool run_page_free(DistvmState *s, uint32_t block, uint64_t q)
{
    DistvmBlock *b = &s->ram->blocks[block];

    return q < b->pages && page_manager(s, b, q) == s->node_id &&
           !page_resident(s, b, q) &&
           b->state[q] == DISTVM_PAGE_E && b->owner[q] == (int)s->node_id &&
           b->copyset[q] == (1u << s->node_id) &&
           !g_hash_table_contains(s->ram->txns, page_key(block, q));
}

/*
 * Did @r write-miss the two pages before @page, managed here, too, and
 * would the page after it, untouched, go with a run?  (Only a hint: the
 * drop thread, that gives the run, looks again.)
 */
static bool mgr_sweeping(DistvmState *s, uint32_t block, uint64_t page,
                         uint32_t r)
{
    DistvmBlock *b = &s->ram->blocks[block];

    for (uint64_t q = page - MIN(page, 2); q < page; q++) {
        if (page_manager(s, b, q) != s->node_id || b->owner[q] != (int)r) {
            return false;
        }
    }
    return page >= 2 && run_page_free(s, block, page + 1) &&
           !page_contents(s->ram, b, page + 1, false);
}

static bool holder_forward(DistvmState *s, DistvmOutbox *o, uint32_t block,
                           uint64_t page, uint32_t requester, uint32_t flags,
                           uint32_t manager, Error **errp);

/*
 * A read miss of another node on a page this node manages and holds:
 * send the page at once, before ram->lock is released, so that whatever
 * this node decides next about the page reaches the requester after it;
 * then no PAGE_DONE needs to order what comes next.
 */
static bool mgr_serve_read(DistvmState *s, DistvmOutbox *o, uint32_t block,
                           uint64_t page, uint32_t r, Error **errp)
{
    DistvmOutbox now;
    bool ok;

    outbox_init(&now);
    ok = holder_forward(s, &now, block, page, r, DISTVM_PAGE_FINAL,
                        s->node_id, errp);
    outbox_send_now(s, o, &now);
    return ok;
}

/*
 * Grant the page to @r, exclusive if @write.  @final: @r holds the page
 * already, or will have all it needs with this grant.  Unless @r is this
 * node, such a grant is marked FINAL and sent at once, before ram->lock is
 * released, as mgr_serve_read() sends its page: whatever this node decides
 * next about the page reaches @r after it, so no PAGE_DONE needs to come
 * back, and the caller may take the page's next request at once; true
 * then.
 */
static bool mgr_grant(DistvmState *s, DistvmOutbox *o, uint32_t block,
                      uint64_t page, uint32_t r, bool write, bool final)
{
    uint32_t flags = write ? DISTVM_PAGE_WRITE : 0;
    DistvmOutbox now;

    if (!final || r == s->node_id) {
        outbox_page(s, o, r, DISTVM_MSG_PAGE_GRANT, block, page, r, flags,
                    NULL);
        return false;
    }
    outbox_init(&now);
    outbox_page(s, &now, r, DISTVM_MSG_PAGE_GRANT, block, page, r,
                flags | DISTVM_PAGE_FINAL, NULL);
    outbox_send_now(s, o, &now);
    return true;
}

/*
 * Start @txn's request.  @finished: it needs no PAGE_DONE, the next
 * request may start.
 */
static bool mgr_start(DistvmState *s, DistvmOutbox *o, uint32_t block,
                      uint64_t page, DistvmTxn *txn, bool *finished,
                      Error **errp)
{
    DistvmRam *ram = s->ram;
    DistvmBlock *b = &ram->blocks[block];
    uint32_t r = txn->requester;
    int owner = b->owner[page];
    uint16_t set = b->copyset[page];
    uint16_t rbit = 1u << r;

    trace_distvm_mgr_start(block, page, r, txn->write, owner, set);
    *finished = false;
    if (owner == (int)r) {
        /* It holds the page already (a fault that raced with the grant). */
        *finished = mgr_grant(s, o, block, page, r, false, true);
        return true;
    }
    if (!txn->write) {
        uint16_t self = 1u << s->node_id;
        int holder = owner >= 0 ? owner : lowest_node(set & ~rbit);

        if (r != s->node_id && (owner == (int)s->node_id ||
                                (owner < 0 && (set & self)))) {
            b->owner[page] = NO_OWNER;
            b->copyset[page] = set | rbit | self;
            *finished = true;
            return mgr_serve_read(s, o, block, page, r, errp);
        }
        if (holder < 0) {
            if (set & rbit) {
                *finished = mgr_grant(s, o, block, page, r, false, true);
                return true;
            }
            error_setg(errp, "page %" PRIu64 " of %s has no holder", page,
                       qemu_ram_get_idstr(b->rb));
            return false;
        }
        outbox_page(s, o, holder, DISTVM_MSG_PAGE_FWD, block, page, r, 0,
                    NULL);
        b->owner[page] = NO_OWNER;
        b->copyset[page] = set | rbit | (1u << holder);
        return true;
    }

    if (owner >= 0) {
        outbox_page(s, o, owner, DISTVM_MSG_PAGE_FWD, block, page, r,
                    DISTVM_PAGE_WRITE |
                    (owner == (int)s->node_id &&
                     mgr_sweeping(s, block, page, r) ?
                     DISTVM_PAGE_RUN : 0), NULL);
    } else {
        uint16_t others = set & ~rbit;
        int sender = (set & rbit) ? -1 : lowest_node(others);

        if (!(set & rbit) && sender < 0) {
            error_setg(errp, "page %" PRIu64 " of %s has no holder", page,
                       qemu_ram_get_idstr(b->rb));
            return false;
        }
        txn->acks = others;
        txn->grant_final = sender < 0;
        for (uint32_t n = 0; n < s->nodes; n++) {
            if (!(others & (1u << n))) {
                continue;
            }
            if ((int)n == sender) {
                outbox_page(s, o, n, DISTVM_MSG_PAGE_FWD, block, page, r,
                            DISTVM_PAGE_DROP, NULL);
            } else {
                outbox_page(s, o, n, DISTVM_MSG_PAGE_INV, block, page, r, 0,
                            NULL);
            }
        }
        if (!txn->acks) {
            *finished = mgr_grant(s, o, block, page, r, true,
                                  txn->grant_final);
        }
    }
    b->owner[page] = r;
    b->copyset[page] = rbit;
    return true;
}

/* Make @txn the next queued request; false, @txn freed, if none waits. */
static bool mgr_take_next(DistvmState *s, uint32_t block, uint64_t page,
                          DistvmTxn *txn)
{
    DistvmQueued *next = g_queue_pop_head(&txn->waiting);

    if (!next) {
        g_hash_table_remove(s->ram->txns, page_key(block, page));
        return false;
    }
    txn->requester = next->requester;
    txn->write = next->flags & DISTVM_PAGE_WRITE;
    g_free(next);
    return true;
}

/* Start @txn's request, and the next ones while they finish at once. */
static bool mgr_run(DistvmState *s, DistvmOutbox *o, uint32_t block,
                    uint64_t page, DistvmTxn *txn, Error **errp)
{
    bool finished;

    do {
        if (!mgr_start(s, o, block, page, txn, &finished, errp)) {
            return false;
        }
    } while (finished && mgr_take_next(s, block, page, txn));
    return true;
}

static bool mgr_request(DistvmState *s, DistvmOutbox *o, uint32_t block,
                        uint64_t page, uint32_t requester, uint32_t flags,
                        Error **errp)
{
    DistvmRam *ram = s->ram;
    DistvmTxn *txn = g_hash_table_lookup(ram->txns, page_key(block, page));

    if (page_manager(s, &ram->blocks[block], page) != s->node_id) {
        error_setg(errp, "node %" PRIu32 " does not manage page %" PRIu64
                   " of RAMBlock %" PRIu32, s->node_id, page, block);
        return false;
    }
    if (ram->handing_off) {
        DistvmParked pk = { block, requester, flags, page };

        g_array_append_val(ram->parked, pk);
        return true;
    }
    if (txn) {
        DistvmQueued *q = g_new(DistvmQueued, 1);

        q->requester = requester;
        q->flags = flags;
        g_queue_push_tail(&txn->waiting, q);
        return true;
    }
    txn = g_new0(DistvmTxn, 1);
    txn->requester = requester;
    txn->write = flags & DISTVM_PAGE_WRITE;
    g_queue_init(&txn->waiting);
    g_hash_table_insert(ram->txns, page_key(block, page), txn);
    return mgr_run(s, o, block, page, txn, errp);
}

/* page_msg_state_refusal() checked that it finishes @txn. */
static bool mgr_done(DistvmState *s, DistvmOutbox *o, uint32_t block,
                     uint64_t page, Error **errp)
{
    DistvmTxn *txn = g_hash_table_lookup(s->ram->txns, page_key(block, page));

    return !mgr_take_next(s, block, page, txn) ||
           mgr_run(s, o, block, page, txn, errp);
}

/* page_msg_state_refusal() checked that @from owes it. */
static bool mgr_inv_ack(DistvmState *s, DistvmOutbox *o, uint32_t block,
                        uint64_t page, uint32_t from, Error **errp)
{
    DistvmTxn *txn = g_hash_table_lookup(s->ram->txns, page_key(block, page));

    txn->acks &= ~(1u << from);
    if (txn->acks ||
        !mgr_grant(s, o, block, page, txn->requester, true,
                   txn->grant_final)) {
        return true;
    }
    return !mgr_take_next(s, block, page, txn) ||
           mgr_run(s, o, block, page, txn, errp);
}

/* ---- holder: send a page away ---- */

/* The pages a PAGE_FWD(RUN) of @page may give away: those TCG locks. */
static uint64_t sweep_end(DistvmBlock *b, uint64_t page)
{
    return MIN(page + SWEEP_PAGES, b->pages);
}

/*
 * Give @requester, which is writing pages one after the other, the
 * untouched pages after @page (about to be sent to it) in one go, instead
 * of one round trip each: those that this node manages and owns alone,
 * that no request is about, and that are all zero; up to the first that
 * is not.  With TCG's lock of them held (drop_page()): they hold no code
 * then.
 */
static void holder_run(DistvmState *s, DistvmOutbox *o, uint32_t block,
                       uint64_t page, uint32_t requester)
{
    DistvmRam *ram = s->ram;
    DistvmBlock *b = &ram->blocks[block];
    DistvmOutbox run;
    uint64_t q;

    outbox_init(&run);
    for (q = page + 1; q < sweep_end(b, page); q++) {
        if (!run_page_free(s, block, q)) {
            break;
        }
        /* A page with data stays here, writable again. */
        if (page_contents(ram, b, q, true)) {
            uffd_change_protection(ram->uffd, page_host(b, q),
                                   DISTVM_PAGE_SIZE, false, false);
            break;
        }
        set_state(ram, b, q, DISTVM_PAGE_I);
        b->owner[q] = requester;
        b->copyset[q] = 1u << requester;
        page_discard(b, q);
        outbox_page(s, &run, requester, DISTVM_MSG_PAGE_DATA, block, q,
                    requester, DISTVM_PAGE_WRITE | DISTVM_PAGE_ZERO |
                    DISTVM_PAGE_RUN, NULL);
        ram->stats.pages_sent++;
    }
    trace_distvm_page_run(block, page + 1, q - page - 1, requester);
    /*
     * The directory has the pages on @requester now, and no PAGE_DONE
     * orders what comes next about them.
     */
    outbox_send_now(s, o, &run);
}

static bool holder_forward(DistvmState *s, DistvmOutbox *o, uint32_t block,
                           uint64_t page, uint32_t requester, uint32_t flags,
                           uint32_t manager, Error **errp)
{
    DistvmRam *ram = s->ram;
    DistvmBlock *b = &ram->blocks[block];
    uint8_t st = b->state[page];
    uint32_t dflags = 0;
    const void *data;

    if (st == DISTVM_PAGE_I || ((flags & DISTVM_PAGE_WRITE) &&
                                st != DISTVM_PAGE_E)) {
        error_setg(errp, "asked to forward page %" PRIu64 " of %s, held %s "
                   "here", page, qemu_ram_get_idstr(b->rb),
                   st == DISTVM_PAGE_I ? "nowhere" : "shared");
        return false;
    }
    /*
     * A run goes first: the requester goes on writing as soon as it has
     * @page, and finds the pages after it in place.
     */
    if ((flags & DISTVM_PAGE_RUN) && manager == s->node_id) {
        holder_run(s, o, block, page, requester);
    }
    /* Order at the holder: state, write-protect, copy, discard, send. */
    if (flags & (DISTVM_PAGE_WRITE | DISTVM_PAGE_DROP)) {
        set_state(ram, b, page, DISTVM_PAGE_I);
    } else {
        set_state(ram, b, page, DISTVM_PAGE_S);
        if (st == DISTVM_PAGE_E && test_bit(page, b->had_code)) {
            page_track_writes(ram, b, page);
        }
    }
    data = page_contents(ram, b, page, st == DISTVM_PAGE_E);
    dflags |= flags & (DISTVM_PAGE_WRITE | DISTVM_PAGE_FINAL);
    if (!data) {
        dflags |= DISTVM_PAGE_ZERO;
    }
    /* The message holds a copy: the page may be discarded below. */
    outbox_page(s, o, requester, DISTVM_MSG_PAGE_DATA, block, page, requester,
                dflags, data);
    ram->stats.pages_sent++;
    if (flags & (DISTVM_PAGE_WRITE | DISTVM_PAGE_DROP)) {
        page_discard(b, page);
    }
    if (flags & DISTVM_PAGE_DROP) {
        outbox_page(s, o, manager, DISTVM_MSG_PAGE_INV_ACK, block, page,
                    requester, 0, NULL);
    }
    return true;
}

static bool holder_invalidate(DistvmState *s, DistvmOutbox *o, uint32_t block,
                              uint64_t page, uint32_t requester,
                              uint32_t manager, Error **errp)
{
    DistvmRam *ram = s->ram;
    DistvmBlock *b = &ram->blocks[block];

    if (b->state[page] == DISTVM_PAGE_E) {
        error_setg(errp, "asked to invalidate page %" PRIu64 " of %s, owned "
                   "here", page, qemu_ram_get_idstr(b->rb));
        return false;
    }
    if (b->state[page] == DISTVM_PAGE_S) {
        set_state(ram, b, page, DISTVM_PAGE_I);
        page_discard(b, page);
    }
    ram->stats.invalidations++;
    outbox_page(s, o, manager, DISTVM_MSG_PAGE_INV_ACK, block, page,
                requester, 0, NULL);
    return true;
}

/* ---- requester ---- */

/* ---- pages that travel with a moved vCPU ---- */

/* Remote faults counted in a vCPU's first this many ns on a node */
#define DISTVM_ARRIVAL_WINDOW_NS (10 * SCALE_MS)

/* With ram->lock held: a warm page of @p->cpu's is in place. */
static void arrival_warm_done(DistvmRam *ram, DistvmPending *p)
{
    DistvmArrival *a = &ram->arrivals[p->cpu];

    ram->stats.warm_received++;
    if (a->gen == p->arrival && a->warm_left && !--a->warm_left) {
        a->warm_us = (get_clock_realtime() - a->stopped_ns) / SCALE_US;
    }
}

/* With ram->lock held: a remote fault of vCPU @cpu, at @now (get_clock). */
static void arrival_fault(DistvmRam *ram, int cpu, int64_t now)
{
    DistvmArrival *a;

    if (cpu < 0) {
        return;
    }
    a = &ram->arrivals[cpu];
    if (a->resumed_ns && now - a->resumed_ns <= DISTVM_ARRIVAL_WINDOW_NS) {
        a->faults_window++;
    }
}

/*
 * A vCPU's store that waited for its page passed TCG's check of its TLB
 * entry first, and lands only when the vCPU runs again.  If a vCPU of this
 * node translated the page's code meanwhile (a page waiting for an upgrade
 * stays readable), that code must not outlive the store: each vCPU whose
 * store waited invalidates it, at its next exit, after its store.
 */
static void waited_write_invalidate(CPUState *cpu, run_on_cpu_data data)
{
    ram_addr_t start = data.host_ulong;

    tb_invalidate_phys_range(start, start + DISTVM_PAGE_SIZE - 1);
}

/* With ram->lock held: @p's writers may go on with their stores. */
static void req_waited_writes(DistvmState *s, uint32_t block, uint64_t page,
                              DistvmPending *p)
{
    ram_addr_t start = page_ram_addr(&s->ram->blocks[block], page);
    run_on_cpu_data data = RUN_ON_CPU_HOST_ULONG(start);
    CPUState *cpu;

    if (!p->write || (p->warm && !p->writers) ||
        cpu_physical_memory_get_dirty_flag(start, DIRTY_MEMORY_CODE)) {
        return;         /* no store waited, or no code from the page */
    }
    trace_distvm_code_write_waited(block, page, p->cpu);
    if (!p->warm && p->cpu >= 0 && (cpu = qemu_get_cpu(p->cpu))) {
        async_run_on_cpu(cpu, waited_write_invalidate, data);
    }
    for (unsigned i = 0; p->writers && i < s->nr_vcpus; i++) {
        if (test_bit(i, p->writers) && (cpu = qemu_get_cpu(i))) {
            async_run_on_cpu(cpu, waited_write_invalidate, data);
        }
    }
}

/* @final: the manager sent the page and needs no PAGE_DONE. */
static void req_complete(DistvmState *s, DistvmOutbox *o, uint32_t block,
                         uint64_t page, DistvmPending *p, bool final)
{
    DistvmRam *ram = s->ram;
    DistvmBlock *b = &ram->blocks[block];
    uint64_t us = (get_clock() - p->start_ns) / 1000;

    if (p->warm) {
        if (p->cpu >= 0) {
            arrival_warm_done(ram, p);
        }
    } else {
        distvm_affinity_fault(s, p->cpu, p->kind == DISTVM_FAULT_UPGRADE,
                              p->server);
        ram->stats.lat_us[p->kind][ram->stats.lat_count[p->kind] %
                                   DISTVM_LAT_SAMPLES] = MIN(us, UINT32_MAX);
        ram->stats.lat_count[p->kind]++;
    }
    trace_distvm_fault_done(block, page, p->kind, us);
    req_waited_writes(s, block, page, p);
    g_hash_table_remove(ram->pending, page_key(block, page));
    if (!final) {
        outbox_page(s, o, page_manager(s, b, page), DISTVM_MSG_PAGE_DONE,
                    block, page, s->node_id, 0, NULL);
    }
}

/* page_msg_state_refusal() checked that this node waits for it. */
static bool req_data(DistvmState *s, DistvmOutbox *o, uint32_t from,
                     const DistvmMsgPage *m, Error **errp)
{
    DistvmRam *ram = s->ram;
    DistvmBlock *b = &ram->blocks[m->block];
    DistvmPending *p = g_hash_table_lookup(ram->pending,
                                           page_key(m->block, m->page));
    void *host = page_host(b, m->page);
    bool excl = m->flags & DISTVM_PAGE_WRITE;
    const void *src = (m->flags & DISTVM_PAGE_ZERO) ? zero_page : m->data;
    int ret;

    if (excl && (m->flags & DISTVM_PAGE_ZERO)) {
        ret = uffd_zero(ram, host);
    } else {
        ret = uffd_place(ram, host, src, !excl);
    }
    if (!ret) {
        page_placed(b, m->page);
    } else {
        error_setg_errno(errp, -ret, "cannot place page %" PRIu64 " of %s",
                         m->page, qemu_ram_get_idstr(b->rb));
        return false;
    }
    page_mark_changed(b, m->page);
    ram->stats.pages_received++;
    if (m->flags & DISTVM_PAGE_RUN) {
        /*
         * One of a run: ours now.  A request of ours for it, still on its
         * way, finds us its owner and gets a PAGE_GRANT: it is complete
         * once both are in.
         */
        set_state(ram, b, m->page, DISTVM_PAGE_E);
        if (p) {
            if (!p->got_grant) {
                p->server = from;
            }
            p->got_data = true;
            if (p->got_grant) {
                req_complete(s, o, m->block, m->page, p, false);
            }
        }
        return true;
    }
    if (!p->got_grant) {
        p->server = from;
    }
    p->got_data = true;
    if (excl || (p->write && p->got_grant)) {
        if (!excl) {
            uffd_change_protection(ram->uffd, host, DISTVM_PAGE_SIZE, false,
                                   false);
        }
        set_state(ram, b, m->page, DISTVM_PAGE_E);
        req_complete(s, o, m->block, m->page, p, false);
    } else {
        set_state(ram, b, m->page, DISTVM_PAGE_S);
        if (!p->write) {
            req_complete(s, o, m->block, m->page, p,
                         m->flags & DISTVM_PAGE_FINAL);
        }
    }
    return true;
}

/* page_msg_state_refusal() checked that this node waits for it. */
static void req_grant(DistvmState *s, DistvmOutbox *o, uint32_t src,
                      const DistvmMsgPage *m)
{
    DistvmRam *ram = s->ram;
    DistvmBlock *b = &ram->blocks[m->block];
    DistvmPending *p = g_hash_table_lookup(ram->pending,
                                           page_key(m->block, m->page));
    void *host = page_host(b, m->page);
    uint8_t st = b->state[m->page];

    if (!p->got_data) {
        p->server = src;
    }
    p->got_grant = true;
    if (st == DISTVM_PAGE_I) {
        return;                 /* the data is on its way from a sharer */
    }
    if (m->flags & DISTVM_PAGE_WRITE) {
        if (st == DISTVM_PAGE_S) {
            if (!page_populated(ram, b, m->page) &&
                !uffd_place(ram, host, zero_page, false)) {
                page_placed(b, m->page);
            }
            uffd_change_protection(ram->uffd, host, DISTVM_PAGE_SIZE, false,
                                   false);
            set_state(ram, b, m->page, DISTVM_PAGE_E);
        }
    } else {
        uffd_wakeup(ram->uffd, host, DISTVM_PAGE_SIZE);
    }
    req_complete(s, o, m->block, m->page, p, m->flags & DISTVM_PAGE_FINAL);
}

/* ---- dropping pages ---- */

/* With TCG's lock of the page held. */
static void drop_locked(void *opaque)
{
    DistvmDrop *d = opaque;
    DistvmState *s = distvm_state();
    DistvmRam *ram = s->ram;
    DistvmBlock *b = &ram->blocks[d->m.block];

    /* A run's other pages are untouched: they never held code. */
    if (!qatomic_read(&b->dead) && test_bit(d->m.page, b->had_code)) {
        page_track_writes(s->ram, b, d->m.page);
    }
    qemu_mutex_lock(&ram->lock);
    if (distvm_cluster_leaving(s) || qatomic_read(&b->dead) ||
        ram->recover_drop || d->recover_gen != ram->recover_gen) {
        d->ok = true;           /* see page_msg_handle() */
    } else if (d->type == DISTVM_MSG_PAGE_FWD) {
        d->ok = holder_forward(s, &d->o, d->m.block, d->m.page, d->m.node,
                               d->m.flags, d->src, &d->err);
    } else {
        d->ok = holder_invalidate(s, &d->o, d->m.block, d->m.page,
                                  d->m.node, d->src, &d->err);
    }
    /* What it sends counts as sent under the lock (mgr_wait_sent()) */
    d->flushing = ram->epoch & 1;
    qatomic_inc(&ram->flushing[d->flushing]);
    qemu_mutex_unlock(&ram->lock);
}

/*
 * A page message was well-formed but contradicts the directory: the
 * cluster's state can no longer be trusted.  Frees @err.
 */
static void page_protocol_failed(DistvmState *s, uint32_t type, uint32_t src,
                                 Error *err)
{
    error_report("distvm: inconsistent %s from node %" PRIu32 ": %s",
                 distvm_msg_type_name(type), src, error_get_pretty(err));
    error_free(err);
    distvm_fatal_node_lost(s, src, "inconsistent page protocol message");
}

/*
 * Drop the page (@wait: even if that means waiting for TCG's lock of it)
 * and send what the drop says; false if it must wait and @wait is false.
 */
static bool drop_page(DistvmState *s, DistvmDrop *d, bool wait)
{
    DistvmBlock *b = &s->ram->blocks[d->m.block];
    ram_addr_t addr = page_ram_addr(b, d->m.page);
    uint64_t pages = (d->m.flags & DISTVM_PAGE_RUN) ?
                     sweep_end(b, d->m.page) - d->m.page : 1;

    outbox_init(&d->o);
    d->flushing = -1;
    /*
     * Without a run, this thread waits for the page's lock only if the page
     * holds code, or is being translated.  A run's pages are being zeroed.
     */
    if (wait && !(d->m.flags & DISTVM_PAGE_RUN)) {
        set_bit_atomic(d->m.page, b->had_code);
    }
    if (wait) {
        tb_invalidate_phys_range_around(addr,
                                        addr + (pages << PAGE_BITS) - 1,
                                        drop_locked, d);
    } else if (!tb_invalidate_phys_page_try_around(addr, drop_locked, d)) {
        outbox_free(&d->o);
        return false;
    }
    trace_distvm_page_drop(d->m.block, d->m.page,
                           distvm_msg_type_name(d->type), wait);
    outbox_flush(s, &d->o);
    if (d->flushing >= 0) {
        qatomic_dec(&s->ram->flushing[d->flushing]);
    }
    if (!d->ok) {
        page_protocol_failed(s, d->type, d->src, d->err);
    }
    g_free(d);
    return true;
}

static void *distvm_drop_thread(void *opaque)
{
    DistvmState *s = opaque;

    rcu_register_thread();
    for (;;) {
        drop_page(s, g_async_queue_pop(s->ram->drops), true);
    }
    return NULL;
}

/*
 * Who may send which page message: a node asks for pages for itself;
 * only a page's manager forwards, invalidates or grants it; data and
 * grants are for the node they reach.  Returns why @msg is refused, or
 * NULL.
 */
static char *page_msg_role_refusal(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgPage *m = &msg->u.page;
    DistvmBlock *b = &s->ram->blocks[m->block];
    uint32_t manager = page_manager(s, b, m->page);
    const char *type = distvm_msg_type_name(msg->hdr.type);
    const DistvmResident *r;

    switch (msg->hdr.type) {
    case DISTVM_MSG_PAGE_REQ:
    case DISTVM_MSG_PAGE_DONE:
    case DISTVM_MSG_PAGE_INV_ACK:
        /* Handed off from here: sent on (page_msg_relayed()) */
        if (manager != s->node_id &&
            (msg->hdr.type == DISTVM_MSG_PAGE_INV_ACK ||
             page_manager_before(s, b, m->page) != s->node_id)) {
            return g_strdup_printf("%s for page %" PRIu64 " of %s, which "
                                   "node %" PRIu32 " manages", type, m->page,
                                   qemu_ram_get_idstr(b->rb), manager);
        }
        /* The node that handed the page here sends on what reached it */
        if (msg->hdr.type != DISTVM_MSG_PAGE_INV_ACK &&
            m->node != msg->hdr.src &&
            msg->hdr.src != page_manager_before(s, b, m->page)) {
            return g_strdup_printf("%s for node %" PRIu32 ": a node asks "
                                   "for itself", type, m->node);
        }
        r = msg->hdr.type == DISTVM_MSG_PAGE_REQ ?
            page_resident(s, b, m->page) : NULL;
        if (r && r->node != m->node && qatomic_read(&r->active)) {
            return g_strdup_printf("%s for page %" PRIu64 " of %s, resident "
                                   "on node %" PRIu32, type, m->page,
                                   qemu_ram_get_idstr(b->rb), r->node);
        }
        break;
    case DISTVM_MSG_PAGE_FWD:
    case DISTVM_MSG_PAGE_INV:
    case DISTVM_MSG_PAGE_GRANT:
        if (!page_manager_is(s, b, m->page, msg->hdr.src)) {
            return g_strdup_printf("%s for page %" PRIu64 " of %s from a "
                                   "node that does not manage it", type,
                                   m->page, qemu_ram_get_idstr(b->rb));
        }
        break;
    }
    switch (msg->hdr.type) {
    case DISTVM_MSG_PAGE_FWD:
    case DISTVM_MSG_PAGE_INV:
        /* The requester: another node. */
        if (m->node == s->node_id) {
            return g_strdup_printf("%s of page %" PRIu64 " of %s for this "
                                   "node itself", type, m->page,
                                   qemu_ram_get_idstr(b->rb));
        }
        if (m->flags & DISTVM_PAGE_RUN) {
            return g_strdup_printf("%s of page %" PRIu64 " of %s with a run: "
                                   "only the node that owns and manages "
                                   "pages gives runs of them", type, m->page,
                                   qemu_ram_get_idstr(b->rb));
        }
        break;
    case DISTVM_MSG_PAGE_DATA:
    case DISTVM_MSG_PAGE_GRANT:
        if ((m->flags & (DISTVM_PAGE_RUN | DISTVM_PAGE_FINAL)) &&
            !page_manager_is(s, b, m->page, msg->hdr.src)) {
            return g_strdup_printf("%s of page %" PRIu64 " of %s %s from a "
                                   "node that does not manage it", type,
                                   m->page, qemu_ram_get_idstr(b->rb),
                                   (m->flags & DISTVM_PAGE_RUN) ?
                                   "in a run" : "that needs no PAGE_DONE");
        }
        /* The requester: this node. */
        if (m->node != s->node_id) {
            return g_strdup_printf("%s of page %" PRIu64 " of %s for node %"
                                   PRIu32, type, m->page,
                                   qemu_ram_get_idstr(b->rb), m->node);
        }
        break;
    }
    return NULL;
}

/*
 * What a page message may ask given the requests under way: a node has
 * at most one request for a page queued behind its current one (its
 * next request may overtake the PAGE_DONE of the last, which another
 * thread sends); only a node asked to invalidate a page acknowledges it;
 * only the node whose request runs finishes it; data and grants answer a
 * request of this node.  The handlers rely on these checks.  Returns why
 * @msg is refused, or NULL.  With ram->lock held.
 */
static char *page_msg_state_refusal(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgPage *m = &msg->u.page;
    DistvmRam *ram = s->ram;
    DistvmBlock *b = &ram->blocks[m->block];
    gpointer key = page_key(m->block, m->page);
    DistvmTxn *txn = g_hash_table_lookup(ram->txns, key);
    DistvmPending *p = g_hash_table_lookup(ram->pending, key);
    const char *type = distvm_msg_type_name(msg->hdr.type);
    const char *why = NULL;

    switch (msg->hdr.type) {
    case DISTVM_MSG_PAGE_REQ:
        for (GList *l = txn ? txn->waiting.head : NULL; l; l = l->next) {
            if (((DistvmQueued *)l->data)->requester == m->node) {
                why = "another request of that node waits";
            }
        }
        break;
    case DISTVM_MSG_PAGE_INV_ACK:
        if (!txn || !txn->write || !(txn->acks & (1u << msg->hdr.src))) {
            why = "that node was not asked to invalidate it";
        }
        break;
    case DISTVM_MSG_PAGE_DONE:
        if (!txn || txn->requester != m->node || txn->acks) {
            why = "no request of that node is to finish";
        }
        break;
    case DISTVM_MSG_PAGE_DATA:
        if ((!p && !(m->flags & DISTVM_PAGE_RUN)) || (p && p->got_data) ||
            b->state[m->page] != DISTVM_PAGE_I) {
            why = "this node did not ask for it";
        }
        break;
    case DISTVM_MSG_PAGE_GRANT:
        if (!p || p->got_grant) {
            why = "this node did not ask for it";
        } else if ((m->flags & DISTVM_PAGE_FINAL) &&
                   b->state[m->page] == DISTVM_PAGE_I) {
            why = "a final grant to a node that does not hold the page";
        }
        break;
    }
    return why ? g_strdup_printf("%s for page %" PRIu64 " of %s: %s", type,
                                 m->page, qemu_ram_get_idstr(b->rb), why)
               : NULL;
}

/* Page messages wait for the RAM layout the cluster agreed on. */
static void page_msgs_wait_joined(DistvmState *s)
{
    qemu_mutex_lock(&s->lock);
    while (s->state == DISTVM_CLUSTER_STATE_JOINING) {
        qemu_cond_wait(&s->cond, &s->lock);
    }
    qemu_mutex_unlock(&s->lock);
}

/*
 * Whether to take @msg: not if it is about an unplugged block (dropped)
 * or its sender may not send it (refused and counted).
 */
static bool page_msg_admitted(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgPage *m = &msg->u.page;
    g_autofree char *refusal = NULL;

    if (qatomic_read(&s->ram->blocks[m->block].dead)) {
        trace_distvm_page_msg_dead(distvm_msg_type_name(msg->hdr.type),
                                   m->page, m->block, msg->hdr.src);
        return false;
    }
    if (msg->hdr.src != s->node_id) {
        refusal = page_msg_role_refusal(s, msg);
        if (refusal) {
            distvm_msg_refused(s, msg->hdr.src, "%s", refusal);
            return false;
        }
    }
    return true;
}

/*
 * With ram->lock held: a request or PAGE_DONE for a page this node handed
 * off (distvm-handoff.c), from a node that did not know yet, this one
 * too: sent on in @o to the page's manager, which takes it as the
 * requester's.  Whether @msg was.
 */
static bool page_msg_relayed(DistvmState *s, const DistvmMsg *msg,
                             DistvmOutbox *o)
{
    const DistvmMsgPage *m = &msg->u.page;
    uint32_t manager = page_manager(s, &s->ram->blocks[m->block], m->page);

    if ((msg->hdr.type != DISTVM_MSG_PAGE_REQ &&
         msg->hdr.type != DISTVM_MSG_PAGE_DONE) ||
        manager == s->node_id) {
        return false;
    }
    trace_distvm_mgr_relay(distvm_msg_type_name(msg->hdr.type), m->block,
                           m->page, m->node, manager);
    outbox_page(s, o, manager, msg->hdr.type, m->block, m->page, m->node,
                m->flags, NULL);
    return true;
}

/*
 * With ram->lock held: @msg, a page message its sender may send, other
 * than those the drop thread takes.  What it sends in answer goes out in
 * @o.  False, with @errp set, if the protocol failed here.
 */
static bool page_msg_locked(DistvmState *s, const DistvmMsg *msg,
                            DistvmOutbox *o, Error **errp)
{
    const DistvmMsgPage *m = &msg->u.page;
    g_autofree char *refusal = NULL;

    if (page_msg_relayed(s, msg, o)) {
        return true;
    }
    refusal = page_msg_state_refusal(s, msg);
    if (refusal) {
        if (msg->hdr.src != s->node_id) {
            distvm_msg_refused(s, msg->hdr.src, "%s", refusal);
            return true;
        }
        /* This node contradicted itself. */
        error_setg(errp, "%s", refusal);
        return false;
    }
    switch (msg->hdr.type) {
    case DISTVM_MSG_PAGE_REQ:
        return mgr_request(s, o, m->block, m->page, m->node, m->flags, errp);
    case DISTVM_MSG_PAGE_DONE:
        return mgr_done(s, o, m->block, m->page, errp);
    case DISTVM_MSG_PAGE_INV_ACK:
        return mgr_inv_ack(s, o, m->block, m->page, msg->hdr.src, errp);
    case DISTVM_MSG_PAGE_FWD:
        return holder_forward(s, o, m->block, m->page, m->node, m->flags,
                              msg->hdr.src, errp);
    case DISTVM_MSG_PAGE_DATA:
        return req_data(s, o, msg->hdr.src, m, errp);
    case DISTVM_MSG_PAGE_GRANT:
        req_grant(s, o, msg->hdr.src, m);
        return true;
    default:
        g_assert_not_reached();
    }
}

/*
 * Take @n page messages that were admitted, other than those the drop
 * thread takes: in order, under one hold of ram->lock, and what they
 * cause goes out in one outbox (one system call to each node).  Unless a
 * node left and the cluster shuts down: this node serves its faults
 * itself now, so pages still on their way (a PAGE_DATA sent before the
 * BYE, on another connection) are no longer wanted.  Nor are the pages of
 * a block unplugged meanwhile.
 */
static bool page_msgs_take(DistvmState *s, const DistvmMsg *msgs,
                           uint32_t n, Error **errp)
{
    DistvmRam *ram = s->ram;
    DistvmOutbox o;
    bool ok = true;

    outbox_init(&o);
    qemu_mutex_lock(&ram->lock);
    for (uint32_t i = 0; ok && i < n && !distvm_cluster_leaving(s) &&
         !ram->recover_drop; i++) {
        if (!qatomic_read(&ram->blocks[msgs[i].u.page.block].dead)) {
            ok = page_msg_locked(s, &msgs[i], &o, errp);
        }
    }
    ram_unlock_flush(s, &o);
    return ok;
}

/*
 * Messages of the page protocol, in the receive thread.  Returns false
 * with @errp set if the directory or this node's memory can no longer be
 * trusted.
 */
static bool page_msg_handle(DistvmState *s, const DistvmMsg *msg,
                            unsigned recover_gen, Error **errp)
{
    DistvmRam *ram = s->ram;
    const DistvmMsgPage *m = &msg->u.page;

    page_msgs_wait_joined(s);
    if (!page_msg_admitted(s, msg)) {
        return true;
    }
    if (msg->hdr.type == DISTVM_MSG_PAGE_INV ||
        (msg->hdr.type == DISTVM_MSG_PAGE_FWD &&
         (m->flags & (DISTVM_PAGE_WRITE | DISTVM_PAGE_DROP)))) {
        DistvmDrop *d = g_new0(DistvmDrop, 1);

        d->type = msg->hdr.type;
        d->src = msg->hdr.src;
        d->recover_gen = recover_gen;
        d->m = *m;
        d->m.data = NULL;
        /* TCG's locks of a run's pages are taken on the drop thread. */
        if ((m->flags & DISTVM_PAGE_RUN) || !drop_page(s, d, false)) {
            g_async_queue_push(ram->drops, d);
        }
        return true;
    }
    return page_msgs_take(s, msg, 1, errp);
}

/*
 * PAGE_REQS: another node's requests for pages this node manages (a
 * moved vCPU's warm pages), each taken as its own PAGE_REQ would be, all
 * together: so the pages this node sends for them leave in one system
 * call to each node.  A request refused is refused alone.
 */
static bool page_reqs_handle(DistvmState *s, const DistvmMsg *msg,
                             Error **errp)
{
    const DistvmMsgPageReqs *reqs = &msg->u.reqs;
    g_autofree DistvmMsg *taken = g_new(DistvmMsg, reqs->count);
    uint32_t n = 0;

    page_msgs_wait_joined(s);
    for (uint32_t i = 0; i < reqs->count; i++) {
        DistvmMsg *req = &taken[n];

        *req = (DistvmMsg) {
            .hdr = msg->hdr,
            .u.page = {
                .block = reqs->reqs[i].block,
                .flags = reqs->reqs[i].flags,
                .page = reqs->reqs[i].page,
                .node = msg->hdr.src,
            },
        };
        req->hdr.type = DISTVM_MSG_PAGE_REQ;
        if (page_msg_admitted(s, req)) {
            n++;
        }
    }
    return page_msgs_take(s, taken, n, errp);
}

static bool page_msg_received(DistvmState *s, const DistvmMsg *msg)
{
    /* Read first: a drop made as a takeover begins is dropped */
    unsigned recover_gen = qatomic_read(&s->ram->recover_gen);
    Error *err = NULL;
    bool ok;

    /* From before the takeover of a lost node: see recover_enter() */
    if (qatomic_read(&s->ram->recover_drop)) {
        return true;
    }
    ok = msg->hdr.type == DISTVM_MSG_PAGE_REQS ?
         page_reqs_handle(s, msg, &err) :
         page_msg_handle(s, msg, recover_gen, &err);
    if (!ok) {
        page_protocol_failed(s, msg->hdr.type, msg->hdr.src, err);
    }
    return true;
}

static const DistvmMsgHandler page_handlers[] = {
    { DISTVM_MSG_PAGE_REQS, .receive = page_msg_received },
    { DISTVM_MSG_PAGE_REQ, .receive = page_msg_received },
    { DISTVM_MSG_PAGE_FWD, .receive = page_msg_received },
    { DISTVM_MSG_PAGE_DATA, .receive = page_msg_received },
    { DISTVM_MSG_PAGE_INV, .receive = page_msg_received },
    { DISTVM_MSG_PAGE_INV_ACK, .receive = page_msg_received },
    { DISTVM_MSG_PAGE_GRANT, .receive = page_msg_received },
    { DISTVM_MSG_PAGE_DONE, .receive = page_msg_received },
};

/* ---- faults ---- */

static DistvmBlock *block_of(DistvmRam *ram, uint64_t addr, uint32_t *index)
{
    uint32_t n = qatomic_load_acquire(&ram->nr_blocks);

    for (uint32_t i = 0; i < n; i++) {
        DistvmBlock *b = &ram->blocks[i];

        if (!qatomic_read(&b->dead) && addr >= (uintptr_t)b->host &&
            addr < (uintptr_t)b->host + (b->pages << PAGE_BITS)) {
            *index = i;
            return b;
        }
    }
    return NULL;
}

/*
 * The page is no one's, or the cluster is shutting down and the page may
 * never come: let the thread go on (with a zero page if it has none), so
 * that it can be stopped.
 */
static void release_fault(DistvmRam *ram, void *host)
{
    if (host_populated(ram, host)) {
        uffd_change_protection(ram->uffd, host, DISTVM_PAGE_SIZE, false,
                               false);
    } else if (uffd_zero(ram, host)) {
        uffd_wakeup(ram->uffd, host, DISTVM_PAGE_SIZE);
    }
}

/*
 * A node left the cluster in order, and the cluster shuts down: the pages
 * it held are gone with it, so faults waiting for them would never end,
 * and neither would the shut-down, which waits for every vCPU to stop.
 * From now on this node serves its faults itself; guest memory no longer
 * matters.
 */
void distvm_ram_leaving(DistvmState *s)
{
    DistvmRam *ram = s->ram;
    GHashTableIter iter;
    gpointer key;

    if (!ram || !ram->started) {
        return;
    }
    qemu_mutex_lock(&ram->lock);
    g_hash_table_iter_init(&iter, ram->pending);
    while (g_hash_table_iter_next(&iter, &key, NULL)) {
        uint64_t k = (uintptr_t)key;    /* see page_key() */

        release_fault(ram, page_host(&ram->blocks[k >> 44],
                                     k & MAKE_64BIT_MASK(0, 44)));
    }
    qemu_mutex_unlock(&ram->lock);
}

/*
 * With ram->lock held: this node asks for @page, for vCPU @cpu (or -1),
 * to write it if @write.  This node holds it S, or not at all, and asks
 * for it already only if it waits for a read-only copy.  @rflags: the
 * flags of the request.
 */
static DistvmPending *pending_start(DistvmRam *ram, uint32_t block,
                                    uint64_t page, int cpu, bool write,
                                    uint32_t *rflags)
{
    DistvmPending *p = g_new0(DistvmPending, 1);

    p->cpu = cpu;
    p->write = write;
    p->start_ns = get_clock();
    if (ram->blocks[block].state[page] == DISTVM_PAGE_S) {
        p->kind = DISTVM_FAULT_UPGRADE;
        *rflags = DISTVM_PAGE_WRITE | DISTVM_PAGE_HAS_COPY;
    } else if (write) {
        p->kind = DISTVM_FAULT_WRITE_MISS;
        *rflags = DISTVM_PAGE_WRITE;
    } else {
        p->kind = DISTVM_FAULT_READ_MISS;
        *rflags = 0;
    }
    g_hash_table_insert(ram->pending, page_key(block, page), p);
    return p;
}

/*
 * With ram->lock held: ask @page's manager for it, as pending_start()
 * says.  The request goes out in @o.
 */
static DistvmPending *request_page(DistvmState *s, DistvmOutbox *o,
                                   uint32_t block, uint64_t page, int cpu,
                                   bool write)
{
    uint32_t rflags;
    DistvmPending *p = pending_start(s->ram, block, page, cpu, write,
                                     &rflags);

    outbox_page(s, o, page_manager(s, &s->ram->blocks[block], page),
                DISTVM_MSG_PAGE_REQ, block, page, s->node_id, rflags, NULL);
    return p;
}

static void handle_fault(DistvmState *s, uint64_t addr, uint64_t flags,
                         int cpu)
{
    DistvmRam *ram = s->ram;
    bool wp = flags & UFFD_PAGEFAULT_FLAG_WP;
    bool write = wp || (flags & UFFD_PAGEFAULT_FLAG_WRITE);
    uint32_t block;
    DistvmBlock *b = block_of(ram, addr, &block);
    DistvmPending *p;
    DistvmOutbox o;
    uint64_t page;
    void *host;
    uint8_t st;

    if (!b) {
        /*
         * Memory being plugged (registered, not yet in the table) or
         * unplugged: nothing shares it yet, or any more.  Let the thread
         * go on rather than wait for ever.
         */
        warn_report("distvm: fault at %#" PRIx64 " outside the guest RAM "
                    "this node shares", addr);
        release_fault(ram, (void *)(uintptr_t)(addr & ~(uint64_t)
                                               (DISTVM_PAGE_SIZE - 1)));
        return;
    }
    page = (addr - (uintptr_t)b->host) >> PAGE_BITS;
    host = page_host(b, page);

    qemu_mutex_lock(&ram->lock);
    st = b->state[page];
    trace_distvm_fault(block, page, wp, write, st);
    if (distvm_cluster_leaving(s) || b->dead) {
        release_fault(ram, host);
        qemu_mutex_unlock(&ram->lock);
        return;
    }
    if (ram->recover_local &&
        (st == DISTVM_PAGE_I || (st == DISTVM_PAGE_S && wp))) {
        /* Until the directory is whole again: distvm_ram_recover_end() */
        set_bit(page, b->spoiled);
        release_fault(ram, host);
        qemu_mutex_unlock(&ram->lock);
        return;
    }
    p = g_hash_table_lookup(ram->pending, page_key(block, page));
    if (p) {
        /* A warm page's vCPU did not fault for it: it waits like others */
        if (write && p->write && cpu >= 0 && (cpu != p->cpu || p->warm)) {
            if (!p->writers) {
                p->writers = bitmap_new(s->nr_vcpus);
            }
            set_bit(cpu, p->writers);
        }
        ram->stats.merged++;
        arrival_fault(ram, cpu, get_clock());
        qemu_mutex_unlock(&ram->lock);
        return;
    }
    if (st == DISTVM_PAGE_E || (st == DISTVM_PAGE_S && !wp)) {
        /*
         * Held here but not populated (never touched since it became
         * ours: all zero), or a fault that raced with the page's
         * arrival: resolve it locally.
         */
        int ret = 0;

        if (st == DISTVM_PAGE_E && wp) {
            uffd_change_protection(ram->uffd, host, DISTVM_PAGE_SIZE, false,
                                   false);
        } else {
            if (st == DISTVM_PAGE_E) {
                ret = uffd_zero(ram, host);
            } else {
                ret = uffd_place(ram, host, zero_page, true);
            }
            if (ret) {
                uffd_wakeup(ram->uffd, host, DISTVM_PAGE_SIZE);
            } else {
                page_placed(b, page);
            }
        }
        ram->stats.local++;
        qemu_mutex_unlock(&ram->lock);
        return;
    }
    outbox_init(&o);
    p = request_page(s, &o, block, page, cpu, write);
    ram->stats.faults[p->kind]++;
    b->page_faults[page]++;
    arrival_fault(ram, cpu, p->start_ns);
    ram_unlock_flush(s, &o);
}

/* ---- code written by a vCPU of this node ---- */

/*
 * A vCPU's write to a page that holds translated code (patch 0017): TCG
 * invalidates the code, then writes.  If the write waited for the page,
 * another vCPU of this node could translate the old code meanwhile and
 * run it for ever after the write.  So the page is made writable here
 * first, and the code translated from it is invalidated again after the
 * write, for when it waited anyway (the page taken away in between).
 * The same holds for a page that held code without holding any now: its
 * code invalidated when it was dropped (the drop thread) or written here.
 * TCG lets a vCPU write it straight away, and the write can wait for the
 * page while another vCPU translates it.  So writes to such a page are
 * tracked once it is dropped or shared (page_track_writes()), and come
 * here too; and tracked again after a write if the page was taken away
 * while TCG marked it written.
 *
 * A store crosses at most two pages; the helpers that write through a
 * host address (probe_access(): the page walker, FXSAVE...) call no hook
 * after, and their writes wait here for the vCPU's next store, or for
 * room.  A store to a page that held no code when TCG checked its TLB
 * entry, and that then waited for the page while another vCPU translated
 * it, is caught when the page arrives (req_waited_writes()).  What is
 * left is upstream's own window: a store that passes TCG's check just
 * before the entry is reset, and does not wait.
 */
#define DISTVM_CODE_WRITES 4

typedef struct DistvmCodeWrites {
    struct {
        ram_addr_t start;
        unsigned size;
    } w[DISTVM_CODE_WRITES];
    unsigned count;
} DistvmCodeWrites;

static __thread DistvmCodeWrites code_writes;

/* The block of guest RAM at @ram_addr, and the page, or NULL */
static DistvmBlock *block_of_ram_addr(DistvmRam *ram, ram_addr_t ram_addr,
                                      uint32_t *index, uint64_t *page)
{
    uint32_t n = qatomic_load_acquire(&ram->nr_blocks);

    for (uint32_t i = 0; i < n; i++) {
        DistvmBlock *b = &ram->blocks[i];

        if (!qatomic_read(&b->dead) && ram_addr >= b->ram_addr &&
            ram_addr - b->ram_addr < (b->pages << PAGE_BITS)) {
            *index = i;
            *page = (ram_addr - b->ram_addr) >> PAGE_BITS;
            return b;
        }
    }
    return NULL;
}

/* The write of code_writes.w[@i] is done. */
static void code_write_done(DistvmRam *ram, unsigned i)
{
    ram_addr_t start = code_writes.w[i].start;
    uint32_t index;
    uint64_t page;
    DistvmBlock *b = block_of_ram_addr(ram, start, &index, &page);

    /*
     * Code a vCPU translated meanwhile, or is translating: this waits for
     * TCG's lock of the page, which a translation holds until its code is
     * in place.
     */
    tb_invalidate_phys_range(start, start + code_writes.w[i].size - 1);
    /* It was taken away while TCG marked it written: track it again */
    if (b && test_bit(page, b->had_code) &&
        qatomic_read(&b->state[page]) != DISTVM_PAGE_E) {
        page_track_writes(ram, b, page);
    }
}

/* After each store of the vCPU's thread (most write no tracked page). */
static void distvm_ram_write_after(void)
{
    if (likely(!code_writes.count)) {
        return;
    }
    for (unsigned i = 0; i < code_writes.count; i++) {
        code_write_done(distvm_state()->ram, i);
    }
    code_writes.count = 0;
}

/* Before a tracked write, and its code's invalidation, on its vCPU. */
static void distvm_ram_write_before(ram_addr_t ram_addr, unsigned size,
                                    bool code)
{
    DistvmRam *ram = distvm_state()->ram;
    ram_addr_t a = ram_addr, last = ram_addr + size - 1;

    if (code_writes.count == DISTVM_CODE_WRITES) {
        /*
         * Writes through a host address left there: all but the last,
         * which may be the first page of a store that crosses two.
         */
        for (unsigned i = 0; i < DISTVM_CODE_WRITES - 1; i++) {
            code_write_done(ram, i);
        }
        code_writes.w[0] = code_writes.w[DISTVM_CODE_WRITES - 1];
        code_writes.count = 1;
    }
    code_writes.w[code_writes.count].start = ram_addr;
    code_writes.w[code_writes.count++].size = size;
    while (a <= last) {
        uint32_t index;
        uint64_t page;
        DistvmBlock *b = block_of_ram_addr(ram, a, &index, &page);

        /*
         * Not for a page that never held code: the page walker asks to
         * write every page table it reads.
         */
        if (b && (code || test_bit(page, b->had_code))) {
            uint8_t st = qatomic_read(&b->state[page]);

            set_bit_atomic(page, b->had_code);
            if (st != DISTVM_PAGE_E) {
                trace_distvm_code_write(index, page, st);
                /* Faults it in for writing, and changes nothing */
                qatomic_fetch_add((uint8_t *)page_host(b, page) +
                                  (a & (DISTVM_PAGE_SIZE - 1)), 0);
            }
        }
        a = (a | (DISTVM_PAGE_SIZE - 1)) + 1;
    }
}

static const TCGCodeWriteHooks distvm_code_write_hooks = {
    .before = distvm_ram_write_before,
    .after = distvm_ram_write_after,
};

/*
 * On a thread of @r's node that may wait: bring every page of @r here,
 * for writing, so that no other node holds a copy (distvm-residency.c,
 * once no vCPU of another node reaches the range).  Each page is a
 * write fault of this thread's, one round trip.  A device's DMA that
 * mapped the range before it was covered may take pages back meanwhile:
 * this goes on until it finds them all here.  True once they are; false
 * if the cluster is leaving.
 */
bool distvm_ram_gather(DistvmState *s, const DistvmResident *r)
{
    uint32_t index;
    DistvmBlock *b = block_of(s->ram, (uintptr_t)qemu_ram_get_host_addr(
                                  r->rb) + r->offset, &index);
    uint64_t first = r->offset >> PAGE_BITS;
    uint64_t end = first + (r->size >> PAGE_BITS);

    /* distvm-residency.c found the range in guest RAM, which this shares */
    assert(b && b->rb == r->rb);
    for (int pass = 0;; pass++) {
        uint64_t away = 0;

        if (pass > 1) {
            g_usleep(10 * 1000);        /* for the DMA to end */
        }

        for (uint64_t p = first; p < end; p++) {
            if (qatomic_read(&b->state[p]) != DISTVM_PAGE_E) {
                away++;
                /* Faults it in for writing, and changes nothing */
                qatomic_fetch_add((uint8_t *)page_host(b, p), 0);
            }
            if (distvm_cluster_leaving(s)) {
                return false;
            }
        }
        trace_distvm_resident_gathered(r->base, r->size, pass, away);
        if (!away) {
            return true;
        }
    }
}

/* With ram->lock held: requests of @node that this manager has under way */
static uint64_t requests_of(DistvmRam *ram, uint32_t node)
{
    GHashTableIter iter;
    gpointer value;
    uint64_t n = 0;

    g_hash_table_iter_init(&iter, ram->txns);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        DistvmTxn *txn = value;

        n += txn->requester == node;
        for (GList *l = txn->waiting.head; l; l = l->next) {
            n += ((DistvmQueued *)l->data)->requester == node;
        }
    }
    return n;
}

/*
 * With ram->lock held: ask for page @page of @block ahead of any fault,
 * as a warm request (no vCPU waits for it; @cpu's, whose arrival it
 * counts, or -1), unless this node holds it as asked (for writing if
 * @write), it is resident on another node (a vCPU's source may list it
 * before it knew the range), or it is asked for already.  The request
 * goes in @o if this node manages the page, else in @reqs[its manager]
 * (requests_ahead_send()).  Returns the request, or NULL if none was
 * made, with @errp set if the directory here refused it.
 */
static DistvmPending *request_ahead(DistvmState *s, DistvmOutbox *o,
                                   GArray **reqs, uint32_t block,
                                   uint64_t page, int cpu, bool write,
                                   Error **errp)
{
    DistvmRam *ram = s->ram;
    DistvmBlock *b = &ram->blocks[block];
    uint8_t st = b->state[page];
    const DistvmResident *r = page_resident(s, b, page);
    uint32_t manager = page_manager(s, b, page);
    DistvmPageRef req = { block, 0, page };
    DistvmPending *p;

    if (b->dead || st == DISTVM_PAGE_E || (st == DISTVM_PAGE_S && !write) ||
        (r && r->node != s->node_id) ||
        g_hash_table_lookup(ram->pending, page_key(block, page))) {
        return NULL;
    }
    p = pending_start(ram, block, page, cpu, write, &req.flags);
    p->warm = true;
    if (manager == s->node_id) {
        /* Its directory is here: as this node's PAGE_REQ would be. */
        return mgr_request(s, o, block, page, s->node_id, req.flags, errp) ?
               p : NULL;
    }
    reqs[manager] = reqs[manager] ?:
                    g_array_new(false, false, sizeof(DistvmPageRef));
    g_array_append_val(reqs[manager], req);
    return p;
}

/*
 * The requests request_ahead() left in @reqs for the pages another node
 * manages: as few PAGE_REQS messages as fit, into @o; @reqs is emptied.
 */
static void requests_ahead_send(DistvmState *s, DistvmOutbox *o,
                                GArray **reqs)
{
    for (uint32_t n = 0; n < s->nodes; n++) {
        for (guint i = 0; reqs[n] && i < reqs[n]->len;
             i += DISTVM_PAGE_REQS_MAX) {
            distvm_wire_page_reqs(outbox_add(o, n), s->node_id,
                                  &g_array_index(reqs[n], DistvmPageRef, i),
                                  MIN(reqs[n]->len - i, DISTVM_PAGE_REQS_MAX));
        }
        if (reqs[n]) {
            g_array_free(reqs[n], true);
            reqs[n] = NULL;
        }
    }
}

/* Pages a manager asks for at once when it takes them from a node */
#define DISTVM_TAKE_AHEAD   64

/*
 * A manager, taking the pages of block @block listed in @pages from @from
 * to @to from another node: ask for them for writing, all at once, as a
 * fault of this node's would (request_ahead()), so that touching them one
 * by one then waits for one round trip, not one each.  Pages held for
 * writing or asked for already are left to the touch.
 */
static void take_ahead(DistvmState *s, uint32_t block, GArray *pages,
                       guint from, guint to)
{
    DistvmRam *ram = s->ram;
    g_autofree GArray **reqs = g_new0(GArray *, s->nodes);
    Error *err = NULL;
    DistvmOutbox o;

    outbox_init(&o);
    qemu_mutex_lock(&ram->lock);
    for (guint j = from; j < to && !err && !distvm_cluster_leaving(s); j++) {
        request_ahead(s, &o, reqs, block, g_array_index(pages, uint64_t, j),
                      -1, true, &err);
    }
    requests_ahead_send(s, &o, reqs);
    ram_unlock_flush(s, &o);
    if (err) {
        page_protocol_failed(s, DISTVM_MSG_PAGE_REQ, s->node_id, err);
    }
}

/*
 * A node is drained (distvm-drain.c): bring every page this node manages
 * that @node holds to this node, for writing, as the residency's gather
 * does, so that @node holds none of them.  Nothing runs on @node any more
 * that would take them back.  Returns how many were brought, or
 * UINT64_MAX if the cluster is leaving.
 */
uint64_t distvm_ram_take_from(DistvmState *s, uint32_t node)
{
    DistvmRam *ram = s->ram;
    uint64_t taken = 0;

    for (int pass = 0;; pass++) {
        uint32_t n = qatomic_load_acquire(&ram->nr_blocks);
        uint64_t held = 0, asked;

        if (distvm_cluster_leaving(s)) {
            return UINT64_MAX;
        }
        for (uint32_t i = 0; i < n; i++) {
            DistvmBlock *b = &ram->blocks[i];
            g_autoptr(GArray) pages = g_array_new(false, false,
                                                  sizeof(uint64_t));

            if (qatomic_read(&b->dead)) {
                continue;
            }
            qemu_mutex_lock(&ram->lock);
            for (uint64_t p = 0; p < b->pages; p++) {
                if (page_manager(s, b, p) == s->node_id &&
                    (b->owner[p] == (int)node ||
                     (b->copyset[p] & (1u << node)))) {
                    g_array_append_val(pages, p);
                }
            }
            qemu_mutex_unlock(&ram->lock);
            /* The block stays while it is touched (an unplug waits) */
            rcu_read_lock();
            for (guint j = 0; j < pages->len && !qatomic_read(&b->dead);
                 j++) {
                uint64_t p = g_array_index(pages, uint64_t, j);

                if (j % DISTVM_TAKE_AHEAD == 0) {
                    take_ahead(s, i, pages, j,
                               MIN(j + DISTVM_TAKE_AHEAD, pages->len));
                }
                /* Faults it in for writing, and changes nothing */
                qatomic_fetch_add((uint8_t *)page_host(b, p), 0);
                if (distvm_cluster_leaving(s)) {
                    rcu_read_unlock();
                    return UINT64_MAX;
                }
            }
            rcu_read_unlock();
            held += pages->len;
        }
        /*
         * A page it asked for before its vCPUs went (a warm page) would
         * come to it after this: wait for those requests, then look again.
         */
        qemu_mutex_lock(&ram->lock);
        asked = requests_of(ram, node);
        qemu_mutex_unlock(&ram->lock);
        trace_distvm_ram_take_from(node, pass, held);
        if (!held && !asked) {
            return taken;
        }
        if (asked) {
            g_usleep(10 * 1000);
        }
        taken += held;
    }
}

/*
 * Source of a move, on the stopped vCPU's thread: the page of guest RAM
 * at @host, if this node holds it, as a warm page for the destination;
 * written only if the vCPU wrote it and it is still this node's.
 */
bool distvm_ram_warm_page(DistvmState *s, uintptr_t host, bool written,
                          DistvmPageRef *out)
{
    DistvmRam *ram = s->ram;
    DistvmBlock *b = ram ? block_of(ram, host, &out->block) : NULL;
    uint8_t st;

    if (!b) {
        return false;
    }
    out->page = (host - (uintptr_t)b->host) >> PAGE_BITS;
    if (page_resident(s, b, out->page)) {
        return false;           /* it never leaves its node */
    }
    st = qatomic_read(&b->state[out->page]);
    out->flags = written && st == DISTVM_PAGE_E ? DISTVM_WARM_WRITE : 0;
    return st != DISTVM_PAGE_I;
}

/*
 * Destination of a move (a receive thread): vCPU @cpu arrives from @from,
 * stopped there at @stopped_ns (CLOCK_REALTIME), with a state of
 * @state_bytes; its warm pages follow.
 */
void distvm_ram_vcpu_incoming(DistvmState *s, uint32_t cpu, uint32_t from,
                              int64_t stopped_ns, uint64_t state_bytes)
{
    DistvmRam *ram = s->ram;
    DistvmArrival *a = &ram->arrivals[cpu];

    qemu_mutex_lock(&ram->lock);
    *a = (DistvmArrival) {
        .gen = a->gen + 1, .from = from, .stopped_ns = stopped_ns,
        .state_bytes = state_bytes, .warm_us = -1,
    };
    qemu_mutex_unlock(&ram->lock);
}

/* Destination, the main loop: vCPU @cpu runs, @downtime_ns after it stopped */
void distvm_ram_vcpu_resumed(DistvmState *s, uint32_t cpu,
                             uint64_t downtime_ns)
{
    DistvmRam *ram = s->ram;

    qemu_mutex_lock(&ram->lock);
    ram->arrivals[cpu].resumed_ns = get_clock();
    ram->arrivals[cpu].downtime_us = downtime_ns / SCALE_US;
    qemu_mutex_unlock(&ram->lock);
}

/*
 * Destination, the main loop, once vCPU @cpu runs: ask for the @count
 * warm pages that came with it, as its faults would, all at once; no
 * thread waits for them.  Pages held here already, or asked for already,
 * are left alone.
 */
void distvm_ram_warm(DistvmState *s, uint32_t cpu, const DistvmPageRef *pages,
                     uint32_t count)
{
    DistvmRam *ram = s->ram;
    DistvmArrival *a = &ram->arrivals[cpu];
    g_autofree GArray **reqs = g_new0(GArray *, s->nodes);
    Error *err = NULL;
    DistvmOutbox o;

    outbox_init(&o);
    qemu_mutex_lock(&ram->lock);
    for (uint32_t i = 0; i < count && !distvm_cluster_leaving(s) &&
         !ram->recover_local; i++) {
        DistvmPending *p = request_ahead(s, &o, reqs, pages[i].block,
                                         pages[i].page, cpu,
                                         pages[i].flags & DISTVM_WARM_WRITE,
                                         &err);

        if (!p) {
            if (err) {
                break;
            }
            continue;
        }
        p->arrival = a->gen;
        a->warm_asked++;
        a->warm_left++;
        ram->stats.warm_asked++;
    }
    requests_ahead_send(s, &o, reqs);
    a->warm_listed = true;
    if (!a->warm_left) {
        a->warm_us = (get_clock_realtime() - a->stopped_ns) / SCALE_US;
    }
    trace_distvm_warm_pages(cpu, count, a->warm_asked);
    ram_unlock_flush(s, &o);
    if (err) {
        page_protocol_failed(s, DISTVM_MSG_PAGE_REQ, s->node_id, err);
    }
}

/* The record of vCPU @cpu's last arrival here; false if it has none. */
bool distvm_ram_arrival(DistvmState *s, uint32_t cpu, DistvmArrival *out)
{
    DistvmRam *ram = s->ram;

    if (!ram || !ram->arrivals) {
        return false;
    }
    qemu_mutex_lock(&ram->lock);
    *out = ram->arrivals[cpu];
    qemu_mutex_unlock(&ram->lock);
    return out->gen != 0;
}

static void *distvm_fault_thread(void *opaque)
{
    DistvmState *s = opaque;
    DistvmRam *ram = s->ram;
    struct uffd_msg msgs[16];

    rcu_register_thread();
    for (;;) {
        struct pollfd pfd[2] = {
            { .fd = ram->uffd, .events = POLLIN },
            { .fd = ram->quit_fd, .events = POLLIN },
        };
        ssize_t n;

        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            error_report("distvm: poll on userfaultfd: %s", strerror(errno));
            break;
        }
        if (pfd[1].revents) {
            break;
        }
        n = read(ram->uffd, msgs, sizeof(msgs));
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                error_report("distvm: reading userfaultfd: %s",
                             strerror(errno));
                break;
            }
            continue;
        }
        for (ssize_t i = 0; i < n / (ssize_t)sizeof(msgs[0]); i++) {
            if (msgs[i].event == UFFD_EVENT_PAGEFAULT) {
                handle_fault(s, msgs[i].arg.pagefault.address,
                             msgs[i].arg.pagefault.flags,
                             distvm_affinity_vcpu_of_thread(
                                 s, msgs[i].arg.pagefault.feat.ptid));
            }
        }
    }
    rcu_unregister_thread();
    return NULL;
}

/* ---- set-up ---- */

static int count_block(RAMBlock *rb, void *opaque)
{
    (*(uint32_t *)opaque)++;
    return 0;
}

/* @rb's name; a plugged block gets its id only once plugged */
static const char *block_name(RAMBlock *rb)
{
    return *qemu_ram_get_idstr(rb) ? qemu_ram_get_idstr(rb) :
           memory_region_name(rb->mr);
}

/*
 * A disk whose I/O bypasses the host's page cache (cache.direct=on, which
 * cache=none and directsync set) has the host kernel pin the guest pages
 * it reads into or writes from, for as long as the I/O lasts: a page given
 * to another node meanwhile (write-protected, then dropped) would still
 * be read or written there, and the data lost.
 */
static bool disks_check(Error **errp)
{
    for (BlockDriverState *bs = bdrv_next_all_states(NULL); bs;
         bs = bdrv_next_all_states(bs)) {
        if (bdrv_get_flags(bs) & BDRV_O_NOCACHE) {
            error_setg(errp, "distvm: block node %s bypasses the host's "
                       "page cache (cache.direct=on, cache=none or "
                       "directsync); on a cluster its I/O could reach guest "
                       "pages that another node took: use cache.direct=off",
                       bdrv_get_device_or_node_name(bs));
            return false;
        }
    }
    return true;
}

/* Can distvm share @rb's pages between nodes? */
static bool block_check(RAMBlock *rb, Error **errp)
{
    if (qemu_ram_pagesize(rb) != DISTVM_PAGE_SIZE) {
        error_setg(errp, "distvm: RAMBlock %s uses %zu-byte pages "
                   "(hugetlbfs?); only 4 KiB pages can be shared between "
                   "nodes", block_name(rb), qemu_ram_pagesize(rb));
        return false;
    }
    if (qemu_ram_is_shared(rb)) {
        error_setg(errp, "distvm: RAMBlock %s is shared memory; guest RAM "
                   "must be private (share=off)", block_name(rb));
        return false;
    }
    if (qemu_ram_get_fd(rb) >= 0) {
        error_setg(errp, "distvm: RAMBlock %s is backed by a file "
                   "(memory-backend-file or -memfd); distvm shares only "
                   "anonymous memory (memory-backend-ram)", block_name(rb));
        return false;
    }
    return true;
}

/*
 * Entry @index of the table is @rb, which starts at global page @first
 * (which spreads the directory of its pages over the nodes).
 */
static void block_fill(DistvmState *s, uint32_t index, RAMBlock *rb,
                       uint64_t first)
{
    DistvmRam *ram = s->ram;
    DistvmBlock *b = &ram->blocks[index];

    b->rb = rb;
    b->host = qemu_ram_get_host_addr(rb);
    b->ram_addr = qemu_ram_get_offset(rb);
    b->pages = qemu_ram_get_used_length(rb) >> PAGE_BITS;
    b->first = first;
    /* Homed on a node that handed its pages off: where they went */
    b->home = distvm_ram_mgr_now(s, distvm_numa_block_home(s, rb,
                                                           &b->homed));
    b->state = g_new0(uint8_t, b->pages);
    b->owner = g_new(int8_t, b->pages);
    b->copyset = g_new(uint16_t, b->pages);
    b->page_faults = g_new0(uint32_t, b->pages);
    b->had_code = bitmap_new(b->pages);
    b->populated = bitmap_new(b->pages);
    b->changed = bitmap_new(b->pages);
    b->sent = bitmap_new(b->pages);
    b->received = bitmap_new(b->pages);
    b->received_before = bitmap_new(b->pages);
    b->spoiled = bitmap_new(b->pages);
    ram->block_pages[index] = b->pages;
}

static int fill_block(RAMBlock *rb, void *opaque)
{
    DistvmRam *ram = ((DistvmState *)opaque)->ram;

    block_fill(opaque, ram->nr_blocks++, rb, ram->next_first);
    ram->next_first += qemu_ram_get_used_length(rb) >> PAGE_BITS;
    return 0;
}

bool distvm_ram_init(DistvmState *s, Error **errp)
{
    DistvmRam *ram = g_new0(DistvmRam, 1);
    uint32_t count = 0;

    qemu_ram_foreach_block(count_block, &count);
    ram->max_blocks = MIN(count + DISTVM_RAM_PLUG_BLOCKS,
                          DISTVM_WIRE_MAX_BLOCKS);
    if (count > ram->max_blocks) {
        error_setg(errp, "distvm: the machine has %" PRIu32 " RAMBlocks; "
                   "distvm shares at most %u", count, DISTVM_WIRE_MAX_BLOCKS);
        return false;
    }
    ram->blocks = g_new0(DistvmBlock, ram->max_blocks);
    ram->block_pages = g_new0(uint64_t, ram->max_blocks);
    for (uint32_t i = 0; i < DISTVM_WIRE_MAX_NODES; i++) {
        ram->mgr[i] = ram->mgr_next[i] = i;
        ram->mgr_prev[i] = UINT32_MAX;
    }
    ram->parked = g_array_new(false, false, sizeof(DistvmParked));
    s->ram = ram;
    qemu_ram_foreach_block(fill_block, s);
    for (uint32_t i = 0; i < ram->nr_blocks; i++) {
        if (!block_check(ram->blocks[i].rb, errp)) {
            return false;
        }
    }
    if (should_mlock(mlock_state)) {
        error_setg(errp, "distvm: guest RAM cannot be locked in memory "
                   "(-overcommit mem-lock) on a cluster: a page goes to "
                   "another node by being dropped here");
        return false;
    }
    if (!disks_check(errp)) {
        return false;
    }
    distvm_msg_handlers_register(s, page_handlers, ARRAY_SIZE(page_handlers));
    qemu_mutex_init(&ram->lock);
    ram->pending = g_hash_table_new_full(NULL, NULL, NULL, pending_free);
    ram->txns = g_hash_table_new_full(NULL, NULL, NULL, g_free);
    ram->arrivals = g_new0(DistvmArrival, s->nr_vcpus);
    ram->uffd = -1;
    ram->quit_fd = -1;
    ram->pagemap_fd = -1;

    /* Pages change hands behind the back of anything that discards them. */
    if (ram_block_discard_disable(true)) {
        error_setg(errp, "distvm: a device (balloon, virtio-mem) already "
                   "discards guest RAM, which distvm cannot share");
        return false;
    }
    /* A cluster that starts on home alone is not spread yet */
    return (distvm_is_home(s) && s->start_nodes == 1) ||
           distvm_ram_set_spread(s, true, errp);
}

/*
 * The guest is spread over several nodes, or runs on this one alone (it
 * started so, or the others were drained away): QEMU's migration and
 * snapshots are refused, or allowed again.  False, with @errp set, if a
 * migration runs: the guest cannot spread now.
 */
bool distvm_ram_set_spread(DistvmState *s, bool spread, Error **errp)
{
    DistvmRam *ram = s->ram;

    if (spread && !ram->blocker) {
        error_setg(&ram->blocker, "distvm: a guest spread over several "
                   "nodes cannot be migrated, snapshotted or postcopied");
        return migrate_add_blocker(&ram->blocker, errp) == 0;
    }
    if (!spread && ram->blocker) {
        migrate_del_blocker(&ram->blocker);
    }
    return true;
}

void distvm_ram_fingerprint(GPtrArray *keys, GPtrArray *values)
{
    DistvmState *s = distvm_state();
    DistvmRam *ram = s->ram;

    g_ptr_array_add(keys, g_strdup("RAMBlocks"));
    g_ptr_array_add(values, g_strdup_printf("%" PRIu32, ram->nr_blocks));
    for (uint32_t i = 0; i < ram->nr_blocks; i++) {
        g_ptr_array_add(keys, g_strdup_printf("RAMBlock %" PRIu32, i));
        g_ptr_array_add(values, g_strdup_printf("%s, %" PRIu64 " bytes, "
                        "home node %" PRIu32,
                        qemu_ram_get_idstr(ram->blocks[i].rb),
                        ram->blocks[i].pages << PAGE_BITS,
                        ram->blocks[i].home));
    }
}

void distvm_ram_limits(DistvmState *s, DistvmWireLimits *lim)
{
    DistvmRam *ram = s->ram;

    lim->nr_blocks = ram ? qatomic_load_acquire(&ram->nr_blocks) : 0;
    lim->block_pages = ram ? ram->block_pages : NULL;
}

static bool block_register(DistvmRam *ram, RAMBlock *rb, Error **errp)
{
    uint64_t ioctls = 0;

    if (uffd_register_memory(ram->uffd, qemu_ram_get_host_addr(rb),
                             qemu_ram_get_used_length(rb),
                             UFFDIO_REGISTER_MODE_MISSING |
                             UFFDIO_REGISTER_MODE_WP, &ioctls)) {
        error_setg_errno(errp, errno, "distvm: cannot register RAMBlock %s "
                         "with userfaultfd", block_name(rb));
        return false;
    }
    return true;
}

/*
 * Share the pages of @b, registered already: its home owns them, the
 * other nodes drop what they have.  Under ram->lock, or before the fault
 * thread starts.
 */
static void block_start(DistvmState *s, DistvmBlock *b)
{
    DistvmRam *ram = s->ram;
    size_t len = b->pages << PAGE_BITS;
    bool home = b->home == s->node_id;

    qemu_madvise(b->host, len, QEMU_MADV_NOHUGEPAGE);
    qemu_madvise(b->host, len, QEMU_MADV_UNMERGEABLE);
    if (!home) {
        block_discard(b, 0, len);
    } else {
        map_zero_pages(ram, b);
    }
    memset(b->state, home ? DISTVM_PAGE_E : DISTVM_PAGE_I, b->pages);
    ram->stats.pages[home ? DISTVM_PAGE_E : DISTVM_PAGE_I] += b->pages;
    memset(b->owner, b->home, b->pages);
    for (uint64_t p = 0; p < b->pages; p++) {
        b->copyset[p] = 1u << b->home;
    }
    /* Resident RAM starts on its node only (distvm-residency.c) */
    for (uint32_t i = 0; i < distvm_residency_count(s); i++) {
        const DistvmResident *r = &s->resident[i];
        uint64_t first = r->offset >> PAGE_BITS;
        bool here = r->node == s->node_id;

        if (r->rb != b->rb) {
            continue;
        }
        if (home && !here) {
            block_discard(b, r->offset, r->size);
        }
        for (uint64_t p = first; p < first + (r->size >> PAGE_BITS); p++) {
            stats_state(ram, b->state[p], here ? DISTVM_PAGE_E :
                        DISTVM_PAGE_I);
            b->state[p] = here ? DISTVM_PAGE_E : DISTVM_PAGE_I;
            b->owner[p] = r->node;
            b->copyset[p] = 1u << r->node;
        }
    }
}

/*
 * The cluster has formed: share the guest's RAM.  Runs in the main loop
 * before the first vCPU does, after the machine's reset wrote its ROMs.
 */
bool distvm_ram_start(DistvmState *s, Error **errp)
{
    DistvmRam *ram = s->ram;
    uint64_t features = 0;

    if (uffd_query_features(&features) ||
        !(features & UFFD_FEATURE_PAGEFAULT_FLAG_WP)) {
        error_setg(errp, "distvm: this host's userfaultfd has no "
                   "write-protect support (Linux 5.7 or later is needed)");
        return false;
    }
    /* Which thread faulted: whose vCPU's remote data it was */
    ram->uffd = uffd_create_fd(UFFD_FEATURE_PAGEFAULT_FLAG_WP |
                               UFFD_FEATURE_THREAD_ID, true);
    if (ram->uffd < 0) {
        error_setg(errp, "distvm: cannot create a userfaultfd (is "
                   "/dev/userfaultfd or vm.unprivileged_userfaultfd "
                   "available to this user?)");
        return false;
    }
    ram->pagemap_fd = qemu_open_old("/proc/self/pagemap", O_RDONLY);
    if (ram->pagemap_fd < 0) {
        error_setg_errno(errp, errno, "distvm: cannot open "
                         "/proc/self/pagemap, which tells a page the host "
                         "swapped out from one never touched");
        return false;
    }
    for (uint32_t i = 0; i < ram->nr_blocks; i++) {
        DistvmBlock *b = &ram->blocks[i];

        if (!block_register(ram, b->rb, errp)) {
            return false;
        }
        block_start(s, b);
    }
    ram->quit_fd = eventfd(0, EFD_CLOEXEC);
    ram->drops = g_async_queue_new();
    qemu_thread_create(&ram->fault_thread, "distvm-fault",
                       distvm_fault_thread, s, QEMU_THREAD_JOINABLE);
    qemu_thread_create(&ram->drop_thread, "distvm-drop", distvm_drop_thread,
                       s, QEMU_THREAD_JOINABLE);
    tcg_code_write_hooks = &distvm_code_write_hooks;
    ram->started = true;
    trace_distvm_ram_started(ram->nr_blocks);
    return true;
}

/* ---- memory plugged while the guest runs (distvm-memplug.c) ---- */

uint32_t distvm_ram_next_block(DistvmState *s)
{
    return s->ram->nr_blocks;
}

/*
 * Memory device backed by @rb is being plugged, as entry @index of the
 * RAMBlock table: check that it can be, and register it, so that the
 * guest faults on it from the moment the device maps it.
 */
bool distvm_ram_plug_prepare(DistvmState *s, RAMBlock *rb, uint32_t index,
                             Error **errp)
{
    DistvmRam *ram = s->ram;

    if (!ram->started) {
        error_setg(errp, "distvm: memory is plugged into a cluster only "
                   "once it has formed");
        return false;
    }
    if (index < ram->nr_blocks) {
        error_setg(errp, "distvm: RAMBlock %" PRIu32 " exists on this node "
                   "already", index);
        return false;
    }
    if (index >= ram->max_blocks) {
        error_setg(errp, "distvm: no room for another RAMBlock: %u can be "
                   "plugged into a running guest over its life",
                   DISTVM_RAM_PLUG_BLOCKS);
        return false;
    }
    for (uint32_t i = 0; i < ram->nr_blocks; i++) {
        if (ram->blocks[i].rb == rb && !ram->blocks[i].dead) {
            error_setg(errp, "distvm: RAMBlock %s is in use already",
                       block_name(rb));
            return false;
        }
    }
    return block_check(rb, errp) && block_register(ram, rb, errp);
}

RAMBlock *distvm_ram_block(DistvmState *s, uint32_t index)
{
    DistvmRam *ram = s->ram;
    RAMBlock *rb = NULL;

    qemu_mutex_lock(&ram->lock);
    if (index < ram->nr_blocks && !ram->blocks[index].dead) {
        rb = ram->blocks[index].rb;
    }
    qemu_mutex_unlock(&ram->lock);
    return rb;
}

/* Entries up to @index exist; those added here are dead. */
static void blocks_extend(DistvmRam *ram, uint32_t index)
{
    for (uint32_t i = ram->nr_blocks; i <= index; i++) {
        ram->blocks[i] = (DistvmBlock) { .dead = true };
        ram->block_pages[i] = 0;
    }
}

/*
 * The device is plugged (mapped, its RAMBlock named): share its pages,
 * as entry @index, prepared.  From now on, messages may name them.  The
 * directory of a plugged block not homed on a node is spread over the
 * nodes from its first page: every node computes the same managers,
 * whatever plugs failed on some nodes before.
 */
void distvm_ram_plug(DistvmState *s, RAMBlock *rb, uint32_t index)
{
    DistvmRam *ram = s->ram;
    DistvmBlock *b = &ram->blocks[index];

    qemu_mutex_lock(&ram->lock);
    blocks_extend(ram, index);
    block_fill(s, index, rb, 0);
    block_start(s, b);
    qatomic_set(&b->dead, false);
    qatomic_store_release(&ram->nr_blocks, index + 1);
    qemu_mutex_unlock(&ram->lock);
    trace_distvm_ram_plug(index, qemu_ram_get_idstr(rb), b->pages, b->home);
}

/* @rb was prepared, and will not be plugged. */
void distvm_ram_plug_unprepare(DistvmState *s, RAMBlock *rb)
{
    uffd_unregister_memory(s->ram->uffd, qemu_ram_get_host_addr(rb),
                           qemu_ram_get_used_length(rb));
}

/*
 * Entry @index will not be used: a plug failed on some node.  @rb, if
 * given, was prepared for it.
 */
void distvm_ram_plug_abandon(DistvmState *s, uint32_t index, RAMBlock *rb)
{
    DistvmRam *ram = s->ram;

    if (rb) {
        distvm_ram_plug_unprepare(s, rb);
    }
    qemu_mutex_lock(&ram->lock);
    if (index >= ram->nr_blocks && index < ram->max_blocks) {
        blocks_extend(ram, index);
        qatomic_store_release(&ram->nr_blocks, index + 1);
    }
    qemu_mutex_unlock(&ram->lock);
}

/*
 * The memory device backed by @rb is unplugged: the guest gave its memory
 * up.  Its entry stays, dead, with its arrays (a thread that looked the
 * block up without the lock may still read them); its pages belong to
 * no one, and the faults and requests still about them are dropped.
 * Returns its index, or -1 if @rb is not in the table.
 */
int distvm_ram_unplug(DistvmState *s, RAMBlock *rb)
{
    DistvmRam *ram = s->ram;
    GHashTableIter iter;
    gpointer key, value;
    DistvmBlock *b = NULL;
    uint32_t index;

    qemu_mutex_lock(&ram->lock);
    for (index = 0; index < ram->nr_blocks; index++) {
        if (ram->blocks[index].rb == rb && !ram->blocks[index].dead) {
            b = &ram->blocks[index];
            break;
        }
    }
    if (!b) {
        qemu_mutex_unlock(&ram->lock);
        return -1;
    }
    qatomic_set(&b->dead, true);
    g_hash_table_iter_init(&iter, ram->pending);
    while (g_hash_table_iter_next(&iter, &key, NULL)) {
        uint64_t k = (uintptr_t)key;    /* see page_key() */

        if (k >> 44 == index) {
            release_fault(ram, page_host(b, k & MAKE_64BIT_MASK(0, 44)));
            g_hash_table_iter_remove(&iter);
        }
    }
    g_hash_table_iter_init(&iter, ram->txns);
    while (g_hash_table_iter_next(&iter, &key, &value)) {
        if ((uintptr_t)key >> 44 == index) {
            g_queue_clear_full(&((DistvmTxn *)value)->waiting, g_free);
            g_hash_table_iter_remove(&iter);
        }
    }
    for (uint64_t p = 0; p < b->pages; p++) {
        ram->stats.pages[b->state[p]]--;
    }
    uffd_unregister_memory(ram->uffd, b->host, b->pages << PAGE_BITS);
    qemu_mutex_unlock(&ram->lock);
    trace_distvm_ram_unplug(index, qemu_ram_get_idstr(rb));
    return index;
}

/* ---- the directory handed to another node (distvm-handoff.c) ---- */

/* The nodes that manage pages now, a bit each */
uint64_t distvm_ram_managers(DistvmState *s)
{
    DistvmRam *ram = s->ram;
    uint32_t n = qatomic_load_acquire(&ram->nr_blocks);
    uint64_t set = 0;

    for (uint32_t i = 0; i < s->start_nodes; i++) {
        set |= BIT_ULL(distvm_ram_mgr_now(s, i));
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!qatomic_read(&ram->blocks[i].dead) && ram->blocks[i].homed) {
            set |= BIT_ULL(distvm_ram_mgr_now(s, ram->blocks[i].home));
        }
    }
    return set;
}

/* The node that manages now what @node managed at first */
uint32_t distvm_ram_mgr_now(DistvmState *s, uint32_t node)
{
    return s->ram && node < DISTVM_WIRE_MAX_NODES ?
           qatomic_read(&s->ram->mgr[node]) : node;
}

/*
 * What node @from manages is being handed to node @to: take @to's manager
 * messages about it too.
 */
void distvm_ram_mgr_coming(DistvmState *s, uint32_t from, uint32_t to)
{
    DistvmRam *ram = s->ram;

    qemu_mutex_lock(&ram->lock);
    for (uint32_t i = 0; i < DISTVM_WIRE_MAX_NODES; i++) {
        if (ram->mgr[i] == from) {
            qatomic_set(&ram->mgr_next[i], to);
        }
    }
    qemu_mutex_unlock(&ram->lock);
}

/*
 * Park the requests for the pages this node manages from now on
 * (mgr_request()), then wait until those it took are done, at most
 * @timeout_us: true once they are.  If they are not, it takes the parked
 * requests as usual again: a request it took may wait, through TCG's lock
 * of a page a vCPU translates, for a request it parked (distvm-ram.c's
 * header), so it may not park them for long.
 */
bool distvm_ram_mgr_park(DistvmState *s, int64_t timeout_us)
{
    DistvmRam *ram = s->ram;
    int64_t deadline = get_clock() + timeout_us * SCALE_US;
    g_autoptr(GArray) parked = NULL;
    Error *err = NULL;
    DistvmOutbox o;
    bool idle;

    qemu_mutex_lock(&ram->lock);
    ram->handing_off = true;
    while (!(idle = !g_hash_table_size(ram->txns)) &&
           get_clock() < deadline && !distvm_cluster_leaving(s)) {
        qemu_mutex_unlock(&ram->lock);
        g_usleep(100);
        qemu_mutex_lock(&ram->lock);
    }
    trace_distvm_mgr_park(idle, ram->parked->len);
    if (idle) {
        qemu_mutex_unlock(&ram->lock);
        return true;
    }
    ram->handing_off = false;
    parked = ram->parked;
    ram->parked = g_array_new(false, false, sizeof(DistvmParked));
    outbox_init(&o);
    for (guint i = 0; i < parked->len && !err; i++) {
        DistvmParked *pk = &g_array_index(parked, DistvmParked, i);

        if (!qatomic_read(&ram->blocks[pk->block].dead)) {
            mgr_request(s, &o, pk->block, pk->page, pk->requester, pk->flags,
                        &err);
        }
    }
    ram_unlock_flush(s, &o);
    if (err) {
        page_protocol_failed(s, DISTVM_MSG_PAGE_REQ, s->node_id, err);
    }
    return false;
}

/*
 * The directory entries of the pages this node manages, idle and handing
 * them off: MGR_ENTRIES messages, each of consecutive pages of a block,
 * of which the receiver takes those that this node manages.
 */
GPtrArray *distvm_ram_mgr_entries(DistvmState *s)
{
    DistvmRam *ram = s->ram;
    GPtrArray *msgs = g_ptr_array_new_with_free_func(
                          (GDestroyNotify)g_byte_array_unref);
    uint32_t n = qatomic_load_acquire(&ram->nr_blocks);

    qemu_mutex_lock(&ram->lock);
    for (uint32_t i = 0; i < n; i++) {
        DistvmBlock *b = &ram->blocks[i];

        if (qatomic_read(&b->dead)) {
            continue;
        }
        for (uint64_t p = 0; p < b->pages; p += DISTVM_MGR_ENTRIES_MAX) {
            uint32_t count = MIN(b->pages - p, DISTVM_MGR_ENTRIES_MAX);
            GByteArray *m;
            uint64_t q;

            for (q = p; q < p + count; q++) {
                if (page_manager(s, b, q) == s->node_id) {
                    break;
                }
            }
            if (q == p + count) {
                continue;       /* none of them is managed here */
            }
            m = g_byte_array_new();
            distvm_wire_mgr_entries(m, s->node_id, i, p, count,
                                    b->owner + p, b->copyset + p);
            g_ptr_array_add(msgs, m);
        }
    }
    qemu_mutex_unlock(&ram->lock);
    return msgs;
}

/*
 * MGR_ENTRIES from node @src, which hands what it manages to this node:
 * the entries of the pages it manages.  False, with @errp set, if it
 * hands none here.
 */
bool distvm_ram_mgr_install(DistvmState *s, uint32_t src,
                            const DistvmMsgMgrEntries *e, Error **errp)
{
    DistvmRam *ram = s->ram;
    DistvmBlock *b = &ram->blocks[e->block];
    bool handed = false;

    qemu_mutex_lock(&ram->lock);
    for (uint32_t i = 0; i < DISTVM_WIRE_MAX_NODES; i++) {
        handed |= ram->mgr[i] == src && ram->mgr_next[i] == s->node_id;
    }
    for (uint32_t i = 0; handed && !qatomic_read(&b->dead) && i < e->count;
         i++) {
        uint64_t p = e->first + i;
        int owner;
        uint16_t copyset;

        if (page_manager(s, b, p) != src) {
            continue;
        }
        distvm_wire_mgr_entry(e, i, &owner, &copyset);
        b->owner[p] = owner;
        b->copyset[p] = copyset;
    }
    qemu_mutex_unlock(&ram->lock);
    if (!handed) {
        error_setg(errp, "MGR_ENTRIES from node %" PRIu32 ", which hands no "
                   "pages to this node", src);
    }
    return handed;
}

/* Wait until the outboxes filled before the epoch @e ended are sent. */
static void mgr_wait_sent(DistvmRam *ram, unsigned e)
{
    while (qatomic_read(&ram->flushing[e & 1])) {
        g_usleep(50);
    }
}

/*
 * Node @to manages what node @from managed, from now on: this node sends
 * its requests and PAGE_DONEs for those pages to @to.  Returns once those
 * it sent before are on their way to @from.  If this node is @from, the
 * requests it parked go to @to; if it is @to, it takes those pages' next
 * requests (their entries came first).
 */
void distvm_ram_mgr_switch(DistvmState *s, uint32_t from, uint32_t to)
{
    DistvmRam *ram = s->ram;
    g_autoptr(GArray) parked = NULL;
    unsigned e;

    qemu_mutex_lock(&ram->lock);
    for (uint32_t i = 0; i < DISTVM_WIRE_MAX_NODES; i++) {
        if (ram->mgr[i] == from) {
            /* page_msg_role_refusal() reads them unlocked, in this order */
            qatomic_set(&ram->mgr_prev[i], from);
            qatomic_set(&ram->mgr_next[i], to);
            qatomic_set(&ram->mgr[i], to);
        }
    }
    if (from == s->node_id) {
        ram->handing_off = false;
        parked = ram->parked;
        ram->parked = g_array_new(false, false, sizeof(DistvmParked));
    }
    e = ram->epoch++;
    qemu_mutex_unlock(&ram->lock);

    for (guint i = 0; parked && i < parked->len; i++) {
        DistvmParked *pk = &g_array_index(parked, DistvmParked, i);
        g_autoptr(GByteArray) m = g_byte_array_new();

        distvm_wire_page(m, DISTVM_MSG_PAGE_REQ, s->node_id, 0, pk->block,
                         pk->page, pk->requester, pk->flags, NULL);
        distvm_send(s, to, m);
    }
    mgr_wait_sent(ram, e);
    trace_distvm_mgr_switch(from, to, parked ? parked->len : 0);
}

/* ---- monitor ---- */

/*
 * Checkpoints (distvm-epoch.c), under the BQL, which it lets go while it
 * waits: wait until no request of this node's for a page is under way
 * (with every vCPU of the cluster held, those a move's warm pages or a
 * sweep left), for at most @timeout_ms.  Whether there is none.
 */
bool distvm_ram_quiesce(DistvmState *s, int64_t timeout_ms)
{
    DistvmRam *ram = s->ram;
    int64_t deadline = qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + timeout_ms;
    bool unlocked = false;
    bool idle;

    for (;;) {
        qemu_mutex_lock(&ram->lock);
        idle = !g_hash_table_size(ram->pending);
        qemu_mutex_unlock(&ram->lock);
        if (idle || qemu_clock_get_ms(QEMU_CLOCK_REALTIME) >= deadline) {
            break;
        }
        /* Not the BQL while the network answers: the vCPUs are held */
        if (!unlocked) {
            unlocked = true;
            bql_unlock();
        }
        g_usleep(100);
    }
    if (unlocked) {
        bql_lock();
    }
    return idle;
}

/*
 * Checkpoints (distvm-epoch.c), with every vCPU of the cluster stopped,
 * under the BQL: call @fn for each page of guest RAM this node holds (S
 * or E) that it wrote or that came here writable since the last call, or
 * for every page it holds if @all, with the page's content or NULL if it
 * is all zero; and, if @again (the last checkpoint was abandoned), for
 * those the last call sent too.  Writes are logged by TCG's dirty log
 * for migration (which a cluster blocks), started on the first call, and
 * by set_state().
 */
void distvm_ram_checkpoint_pages(DistvmState *s, bool all, bool again,
                                 DistvmCheckpointPageFn *fn, void *opaque)
{
    DistvmRam *ram = s->ram;
    uint32_t n = qatomic_load_acquire(&ram->nr_blocks);
    Error *err = NULL;

    if (!qatomic_read(&ram->track_changes)) {
        if (!memory_global_dirty_log_start(GLOBAL_DIRTY_MIGRATION, &err)) {
            /* Nothing would say which pages change: keep sending all */
            error_report_err(err);
            all = true;
        } else {
            qatomic_set(&ram->track_changes, true);
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        DistvmBlock *b = &ram->blocks[i];
        g_autofree DirtyBitmapSnapshot *snap = NULL;

        if (qatomic_read(&b->dead)) {
            continue;
        }
        /* Clears the log, and has the vCPUs' TLBs log the next writes */
        snap = cpu_physical_memory_snapshot_and_clear_dirty(
            b->rb->mr, 0, b->pages << PAGE_BITS, DIRTY_MEMORY_MIGRATION);
        qemu_mutex_lock(&ram->lock);
        for (uint64_t page = 0; page < b->pages; page++) {
            bool changed = test_bit(page, b->changed) &&
                           bitmap_test_and_clear_atomic(b->changed, page, 1);
            bool sent = test_bit(page, b->sent);
            uint8_t st = b->state[page];
            const void *host = page_host(b, page);

            if (!again) {
                clear_bit(page, b->received_before);
            }
            if (test_bit(page, b->received)) {
                clear_bit(page, b->received);
                set_bit(page, b->received_before);
            }
            clear_bit(page, b->sent);
            if (!all && !changed && !(again && sent) &&
                !cpu_physical_memory_snapshot_get_dirty(
                    snap, page_ram_addr(b, page), DISTVM_PAGE_SIZE)) {
                continue;
            }
            if (st != DISTVM_PAGE_S && st != DISTVM_PAGE_E) {
                continue;
            }
            set_bit(page, b->sent);
            if (!page_populated(ram, b, page) ||
                buffer_is_zero(host, DISTVM_PAGE_SIZE)) {
                host = NULL;
            }
            fn(opaque, i, page, host);
        }
        qemu_mutex_unlock(&ram->lock);
    }
}

/*
 * A rollback (distvm-epoch.c), with every vCPU of the cluster held and
 * no page of this node's on its way, under the BQL: call @fn for each
 * page this node holds (S or E) that may have changed since the last
 * committed epoch: what distvm_ram_checkpoint_pages() would send next,
 * without clearing what it goes by, and those that came here read-only
 * since (the node that wrote them may be lost).  A page written since
 * then that this node no longer holds went to a node that wrote it or
 * holds it writable, or that still holds it: that node lists it.
 */
void distvm_ram_rollback_pages(DistvmState *s, bool again,
                               DistvmRollbackPageFn *fn, void *opaque)
{
    DistvmRam *ram = s->ram;
    uint32_t n = qatomic_load_acquire(&ram->nr_blocks);

    for (uint32_t i = 0; i < n; i++) {
        DistvmBlock *b = &ram->blocks[i];

        if (qatomic_read(&b->dead)) {
            continue;
        }
        qemu_mutex_lock(&ram->lock);
        for (uint64_t page = 0; page < b->pages; page++) {
            uint8_t st = b->state[page];

            if ((st == DISTVM_PAGE_S || st == DISTVM_PAGE_E) &&
                (test_bit(page, b->changed) ||
                 test_bit(page, b->received) ||
                 (again && (test_bit(page, b->sent) ||
                            test_bit(page, b->received_before))) ||
                 cpu_physical_memory_get_dirty(page_ram_addr(b, page),
                                               DISTVM_PAGE_SIZE,
                                               DIRTY_MEMORY_MIGRATION))) {
                fn(opaque, i, page);
            }
        }
        qemu_mutex_unlock(&ram->lock);
    }
}

/*
 * A rollback, in the main loop with every vCPU of the cluster held: give
 * page @page of block @block its committed content @data (NULL: all
 * zero).  Written here as a device would, without ram->lock: this node
 * takes the page for writing as it goes (another node restoring it too
 * writes the same), and its translated code is invalidated.
 */
void distvm_ram_restore_page(DistvmState *s, uint32_t block, uint64_t page,
                             const void *data)
{
    DistvmRam *ram = s->ram;
    DistvmBlock *b = &ram->blocks[block];
    uint8_t *host = page_host(b, page);
    ram_addr_t addr = page_ram_addr(b, page);
    bool placed = false;

    /*
     * Owned here and never touched (a page taken over from a lost node):
     * all zero; placed at once rather than through a fault
     */
    qemu_mutex_lock(&ram->lock);
    if (b->state[page] == DISTVM_PAGE_E && !page_populated(ram, b, page)) {
        placed = !data || !uffd_place(ram, host, data, false);
        if (data && placed) {
            page_placed(b, page);
        }
    }
    qemu_mutex_unlock(&ram->lock);
    if (placed) {
        return;
    }
    if (data ? !memcmp(host, data, DISTVM_PAGE_SIZE) :
        buffer_is_zero(host, DISTVM_PAGE_SIZE)) {
        return;     /* unchanged: so are the other nodes' copies */
    }
    if (data) {
        memcpy(host, data, DISTVM_PAGE_SIZE);
    } else {
        memset(host, 0, DISTVM_PAGE_SIZE);
    }
    tb_invalidate_phys_range(addr, addr + DISTVM_PAGE_SIZE - 1);
    cpu_physical_memory_set_dirty_range(addr, DISTVM_PAGE_SIZE,
                                        DIRTY_CLIENTS_NOCODE);
}

/* ---- taking over a lost node (distvm-recovery.c) ---- */

/*
 * A node is gone: what it held and what it was asked is lost with it,
 * and nothing can say which of this node's requests wait for it.  Until
 * every node rebuilt its part of the directory, every fault that needs
 * another node is served here with whatever the page holds (a zero page
 * for one not held here; a read-only copy made writable), so that the
 * vCPUs stop for the guest's pause; those pages are spoiled, and
 * dropped at distvm_ram_recover_end() unless this node held them.  Page
 * messages are dropped until this node rebuilt its part, and so is the
 * drop thread's work from before: the rebuild starts from what each node
 * holds once they all stopped sending them.  The guest is rolled back to
 * its last committed checkpoint, so what a vCPU did with a spoiled page
 * is undone.
 */
void distvm_ram_recover_enter(DistvmState *s)
{
    DistvmRam *ram = s->ram;
    GHashTableIter iter;
    gpointer key;
    uint32_t n;

    if (!ram || !ram->started) {
        return;
    }
    qemu_mutex_lock(&ram->lock);
    if (ram->recover_local) {
        qemu_mutex_unlock(&ram->lock);
        return;
    }
    qatomic_set(&ram->recover_drop, true);
    qatomic_set(&ram->recover_local, true);
    qatomic_inc(&ram->recover_gen);
    g_hash_table_iter_init(&iter, ram->pending);
    while (g_hash_table_iter_next(&iter, &key, NULL)) {
        uint64_t k = (uintptr_t)key;    /* see page_key() */
        DistvmBlock *b = &ram->blocks[k >> 44];
        uint64_t page = k & MAKE_64BIT_MASK(0, 44);

        set_bit(page, b->spoiled);
        release_fault(ram, page_host(b, page));
        g_hash_table_iter_remove(&iter);
    }
    n = ram->nr_blocks;
    for (uint32_t i = 0; i < n; i++) {
        DistvmBlock *b = &ram->blocks[i];

        g_free(b->held_by);
        g_free(b->held_owner);
        b->held_by = g_new0(uint16_t, b->pages);
        b->held_owner = g_new(int8_t, b->pages);
        memset(b->held_owner, NO_OWNER, b->pages);
    }
    qemu_mutex_unlock(&ram->lock);
    trace_distvm_ram_recover_enter(n);
}

/*
 * With every vCPU of the cluster held: what @lost managed, @to manages
 * from now on, and nothing of the directory is under way any more (its
 * requests and invalidations were lost with the messages dropped).
 * Returns once what this node sent before is on its way.
 */
void distvm_ram_recover_settle(DistvmState *s, uint32_t lost, uint32_t to)
{
    DistvmRam *ram = s->ram;
    GHashTableIter iter;
    gpointer value;
    unsigned e;

    qemu_mutex_lock(&ram->lock);
    for (uint32_t i = 0; i < DISTVM_WIRE_MAX_NODES; i++) {
        if (ram->mgr[i] == lost || ram->mgr_next[i] == lost) {
            qatomic_set(&ram->mgr_prev[i], UINT32_MAX);
            qatomic_set(&ram->mgr_next[i], to);
            qatomic_set(&ram->mgr[i], to);
        }
    }
    g_hash_table_iter_init(&iter, ram->txns);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        DistvmTxn *txn = value;

        g_queue_clear_full(&txn->waiting, g_free);
        g_hash_table_iter_remove(&iter);
    }
    ram->handing_off = false;
    g_array_set_size(ram->parked, 0);
    e = ram->epoch++;
    qemu_mutex_unlock(&ram->lock);
    mgr_wait_sent(ram, e);
}

/*
 * Call @fn for each page this node holds, with its manager and whether
 * it holds it writable; not under ram->lock (@fn sends, to this node
 * too).  A page a fault spoiled that this node did not hold is not
 * held; one it held read-only still is (distvm_ram_recover_end()).
 */
void distvm_ram_recover_held(DistvmState *s, DistvmHeldPageFn *fn,
                             void *opaque)
{
    DistvmRam *ram = s->ram;
    uint32_t n = qatomic_load_acquire(&ram->nr_blocks);
    g_autoptr(GArray) held = g_array_new(false, false, sizeof(uint8_t));

    for (uint32_t i = 0; i < n; i++) {
        DistvmBlock *b = &ram->blocks[i];

        if (qatomic_read(&b->dead)) {
            continue;
        }
        g_array_set_size(held, b->pages);
        qemu_mutex_lock(&ram->lock);
        memcpy(held->data, b->state, b->pages);
        qemu_mutex_unlock(&ram->lock);
        for (uint64_t page = 0; page < b->pages; page++) {
            uint8_t st = g_array_index(held, uint8_t, page);

            if (st != DISTVM_PAGE_I) {
                fn(opaque, page_manager(s, b, page), i, page,
                   st == DISTVM_PAGE_E);
            }
        }
    }
}

/*
 * In a receive thread: @node holds page @page of @block, writable if
 * @owned.  False if this node does not manage that page.
 */
bool distvm_ram_recover_holder(DistvmState *s, uint32_t node, uint32_t block,
                               uint64_t page, bool owned)
{
    DistvmRam *ram = s->ram;
    DistvmBlock *b = &ram->blocks[block];
    bool ok;

    qemu_mutex_lock(&ram->lock);
    ok = ram->recover_drop && b->held_by && !qatomic_read(&b->dead) &&
         page_manager(s, b, page) == s->node_id;
    if (ok) {
        b->held_by[page] |= 1u << node;
        if (owned) {
            b->held_owner[page] = node;
        }
    }
    qemu_mutex_unlock(&ram->lock);
    return ok;
}

/*
 * Every node reported what it holds: the directory entries of the pages
 * this node manages are what they said.  A page no node holds (the lost
 * node held it alone, or it was on its way) is this node's from now on,
 * and to be restored from its committed copy: it counts as changed here.
 * Page messages are taken again: no other node sends any before every
 * node rebuilt (distvm_ram_recover_end()).  Returns the pages taken.
 */
uint64_t distvm_ram_recover_rebuild(DistvmState *s)
{
    DistvmRam *ram = s->ram;
    uint32_t n = qatomic_load_acquire(&ram->nr_blocks);
    uint64_t taken = 0;

    qemu_mutex_lock(&ram->lock);
    for (uint32_t i = 0; i < n; i++) {
        DistvmBlock *b = &ram->blocks[i];

        if (!qatomic_read(&b->dead) && b->held_by) {
            for (uint64_t page = 0; page < b->pages; page++) {
                if (page_manager(s, b, page) != s->node_id) {
                    continue;
                }
                if (!b->held_by[page]) {
                    /*
                     * What it holds here (nothing, or what a fault made
                     * usable meanwhile, now kept) until it is restored
                     */
                    b->held_by[page] = 1u << s->node_id;
                    b->held_owner[page] = s->node_id;
                    set_state(ram, b, page, DISTVM_PAGE_E);
                    clear_bit(page, b->spoiled);
                    set_bit_atomic(page, b->changed);
                    taken++;
                }
                b->owner[page] = b->held_owner[page];
                b->copyset[page] = b->held_by[page];
            }
        }
        g_clear_pointer(&b->held_by, g_free);
        g_clear_pointer(&b->held_owner, g_free);
    }
    qatomic_set(&ram->recover_drop, false);
    qemu_mutex_unlock(&ram->lock);
    trace_distvm_ram_recover_rebuilt(taken);
    return taken;
}

/*
 * Every node rebuilt its part of the directory: the pages this node's
 * faults made usable meanwhile (spoiled) are dropped if it did not hold
 * them; one it held read-only is write-protected again and counts as
 * changed, so that the rollback restores it (a write to it meanwhile
 * may have changed it), and faults go to the pages' managers again.
 * Returns the pages dropped.
 */
uint64_t distvm_ram_recover_end(DistvmState *s)
{
    DistvmRam *ram = s->ram;
    uint32_t n = qatomic_load_acquire(&ram->nr_blocks);
    g_autoptr(GArray) dropped = g_array_new(false, false, sizeof(ram_addr_t));

    qemu_mutex_lock(&ram->lock);
    if (!ram->recover_local) {
        qemu_mutex_unlock(&ram->lock);
        return 0;
    }
    for (uint32_t i = 0; i < n; i++) {
        DistvmBlock *b = &ram->blocks[i];

        for (uint64_t page = 0; !qatomic_read(&b->dead) && page < b->pages;
             page++) {
            ram_addr_t addr = page_ram_addr(b, page);

            if (!test_bit(page, b->spoiled)) {
                continue;
            }
            clear_bit(page, b->spoiled);
            if (b->state[page] == DISTVM_PAGE_S) {
                uffd_change_protection(ram->uffd, page_host(b, page),
                                       DISTVM_PAGE_SIZE, true, false);
                set_bit_atomic(page, b->changed);
                continue;
            }
            block_discard(b, page << PAGE_BITS, DISTVM_PAGE_SIZE);
            g_array_append_val(dropped, addr);
        }
    }
    qatomic_set(&ram->recover_local, false);
    qemu_mutex_unlock(&ram->lock);
    /* Not under ram->lock: the drop thread takes TCG's lock first */
    for (guint i = 0; i < dropped->len; i++) {
        ram_addr_t addr = g_array_index(dropped, ram_addr_t, i);

        tb_invalidate_phys_range(addr, addr + DISTVM_PAGE_SIZE - 1);
    }
    trace_distvm_ram_recover_end(dropped->len);
    return dropped->len;
}

void distvm_ram_get_stats(DistvmState *s, DistvmRamStats *stats)
{
    DistvmRam *ram = s->ram;

    if (!ram) {
        memset(stats, 0, sizeof(*stats));
        return;
    }
    qemu_mutex_lock(&ram->lock);
    *stats = ram->stats;
    qemu_mutex_unlock(&ram->lock);
}

DistvmMemoryRangeList *distvm_ram_ranges(DistvmState *s)
{
    DistvmRam *ram = s->ram;
    DistvmMemoryRangeList *list = NULL, **tail = &list;

    if (!ram) {
        return NULL;
    }
    qemu_mutex_lock(&ram->lock);
    for (uint32_t i = 0; i < ram->nr_blocks; i++) {
        DistvmBlock *b = &ram->blocks[i];
        DistvmMemoryRange *r;

        if (b->dead) {
            continue;
        }
        r = g_new0(DistvmMemoryRange, 1);

        r->ramblock = g_strdup(qemu_ram_get_idstr(b->rb));
        r->size = b->pages << PAGE_BITS;
        r->home = b->home;
        r->numa = b->homed;
        for (uint64_t p = 0; p < b->pages; p++) {
            r->remote_faults += b->page_faults[p];
        }
        QAPI_LIST_APPEND(tail, r);
    }
    qemu_mutex_unlock(&ram->lock);
    return list;
}

DistvmHotPageList *distvm_ram_hot_pages(DistvmState *s, uint32_t count,
                                        Error **errp)
{
    DistvmRam *ram = s->ram;
    g_autofree DistvmHotPage *top = g_new0(DistvmHotPage, count);
    DistvmHotPageList *list = NULL, **tail = &list;
    uint32_t n = 0;

    if (!ram || !ram->started) {
        error_setg(errp, "distvm: guest RAM is not shared yet");
        return NULL;
    }
    /* Keep the @count most faulted pages, sorted, in @top. */
    qemu_mutex_lock(&ram->lock);
    for (uint32_t i = 0; i < ram->nr_blocks; i++) {
        DistvmBlock *b = &ram->blocks[i];

        for (uint64_t p = 0; !b->dead && p < b->pages; p++) {
            uint32_t f = b->page_faults[p];
            uint32_t at = n;

            if (!f || (n == count && f <= top[n - 1].faults)) {
                continue;
            }
            while (at > 0 && top[at - 1].faults < f) {
                at--;
            }
            n = MIN(n + 1, count);
            memmove(&top[at + 1], &top[at], (n - 1 - at) * sizeof(*top));
            top[at] = (DistvmHotPage) {
                .ramblock = (char *)qemu_ram_get_idstr(b->rb),
                .page = p, .faults = f,
            };
        }
    }
    qemu_mutex_unlock(&ram->lock);
    for (uint32_t i = 0; i < n; i++) {
        DistvmHotPage *h = g_new(DistvmHotPage, 1);

        *h = top[i];
        h->ramblock = g_strdup(top[i].ramblock);
        QAPI_LIST_APPEND(tail, h);
    }
    return list;
}

int distvm_ram_block_index(DistvmState *s, const char *idstr)
{
    DistvmRam *ram = s->ram;
    int index = -1;

    if (!ram) {
        return -1;
    }
    qemu_mutex_lock(&ram->lock);
    for (uint32_t i = 0; i < ram->nr_blocks; i++) {
        if (!ram->blocks[i].dead &&
            !strcmp(qemu_ram_get_idstr(ram->blocks[i].rb), idstr)) {
            index = i;
        }
    }
    qemu_mutex_unlock(&ram->lock);
    return index;
}

char *distvm_ram_page_states(DistvmState *s, const char *idstr,
                             uint64_t start, uint64_t count, Error **errp)
{
    DistvmRam *ram = s->ram;
    static const char letter[] = { 'I', 'S', 'E' };
    DistvmBlock *b;
    char *out;
    int index;

    if (!ram || !ram->started) {
        error_setg(errp, "distvm: guest RAM is not shared yet");
        return NULL;
    }
    index = distvm_ram_block_index(s, idstr);
    if (index < 0) {
        error_setg(errp, "distvm: no RAMBlock '%s'", idstr);
        return NULL;
    }
    b = &ram->blocks[index];
    if (start > b->pages || count > b->pages - start) {
        error_setg(errp, "distvm: pages %" PRIu64 "+%" PRIu64 " are outside "
                   "RAMBlock %s (%" PRIu64 " pages)", start, count, idstr,
                   b->pages);
        return NULL;
    }
    out = g_malloc(count + 1);
    qemu_mutex_lock(&ram->lock);
    for (uint64_t i = 0; i < count; i++) {
        out[i] = letter[b->state[start + i]];
    }
    qemu_mutex_unlock(&ram->lock);
    out[count] = '\0';
    return out;
}
