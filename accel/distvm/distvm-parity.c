/*
 * distvm: the parity of the nodes' copies (redundancy=parity)
 *
 * With replicas=1 each node keeps a committed copy of every page it
 * sent in an epoch (its own copies, distvm-epoch.c).  With
 * redundancy=replica its replica keeps the same copies.  With
 * redundancy=parity, each node other than home gives each of its own
 * copies a slot, for good, the first time it sends that page, and sends
 * home, its keeper, the XOR of the slot's committed content and its new
 * one (a delta).  Home keeps one page of parity per slot: the XOR of
 * every node's content in that slot, as of the last commit.  So home
 * keeps as many pages as the node with the most copies, not their sum.
 *
 * A lost node's copies are the parity XOR the other nodes' committed
 * content of the same slots, which they send home as it rebuilds them
 * (distvm-epoch.c); home then keeps them as a replica would have, and
 * takes the lost node's part out of the parity.
 *
 * This file holds the data and its arithmetic; distvm-epoch.c calls it
 * with its lock held, and sends what it says.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "system/distvm.h"
#include "distvm-wire.h"
#include "distvm-parity.h"

/* Where a node's copy in one slot is, as of the last commit */
typedef struct ParitySlot {
    uint64_t key;
    uint64_t epoch;             /* 0: the slot is not used */
} ParitySlot;

struct DistvmParity {
    /* The keeper (home) */
    GPtrArray *pages;           /* slot -> its page of parity, NULL: zero */
    uint64_t nr_pages;          /* not NULL */
    GArray *slots[DISTVM_MAX_NODES];    /* ParitySlot, by slot */
    uint32_t rebuilding;        /* the node rebuilt, or UINT32_MAX */
    GPtrArray *rebuilt;         /* slot -> its XOR so far, NULL: zero */

    /* A node that sends: the slots of its own copies */
    GHashTable *own;            /* page key (a pointer) -> slot + 1 */
    GArray *own_keys;           /* slot -> page key */
};

DistvmParity *distvm_parity_new(void)
{
    DistvmParity *p = g_new0(DistvmParity, 1);

    p->pages = g_ptr_array_new_with_free_func(g_free);
    p->rebuilding = UINT32_MAX;
    p->own = g_hash_table_new(g_direct_hash, g_direct_equal);
    p->own_keys = g_array_new(false, false, sizeof(uint64_t));
    return p;
}

uint32_t distvm_parity_own_slot(DistvmParity *p, uint64_t key)
{
    gpointer slot = g_hash_table_lookup(p->own, (gpointer)(uintptr_t)key);

    if (!slot) {
        g_array_append_val(p->own_keys, key);
        slot = GUINT_TO_POINTER(p->own_keys->len);
        g_hash_table_insert(p->own, (gpointer)(uintptr_t)key, slot);
    }
    return GPOINTER_TO_UINT(slot) - 1;
}

bool distvm_parity_own_key(DistvmParity *p, uint32_t slot, uint64_t *key)
{
    if (slot >= p->own_keys->len) {
        return false;
    }
    *key = g_array_index(p->own_keys, uint64_t, slot);
    return true;
}

uint32_t distvm_parity_own_slots(DistvmParity *p)
{
    return p->own_keys->len;
}

bool distvm_parity_xor(uint8_t *out, const uint8_t *a, const uint8_t *b)
{
    static const uint8_t zero[DISTVM_PAGE_SIZE];
    const uint64_t *x = (const uint64_t *)(a ?: zero);
    const uint64_t *y = (const uint64_t *)(b ?: zero);
    uint64_t *o = (uint64_t *)out;
    uint64_t any = 0;

    for (size_t i = 0; i < DISTVM_PAGE_SIZE / sizeof(uint64_t); i++) {
        o[i] = x[i] ^ y[i];
        any |= o[i];
    }
    return any != 0;
}

static void delta_free(gpointer data)
{
    DistvmParityDelta *d = data;

    g_free(d->data);
    g_free(d);
}

GHashTable *distvm_parity_deltas_new(void)
{
    return g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                 delta_free);
}

void distvm_parity_deltas_put(GHashTable *deltas, uint32_t slot,
                              uint64_t key, uint64_t epoch,
                              const uint8_t *data)
{
    DistvmParityDelta *d = g_new0(DistvmParityDelta, 1);

    d->key = key;
    d->epoch = epoch;
    d->data = data ? g_memdup2(data, DISTVM_PAGE_SIZE) : NULL;
    g_hash_table_replace(deltas, GUINT_TO_POINTER(slot), d);
}

/* XOR @data into the parity of @slot; a page that becomes zero is freed */
static void parity_apply(DistvmParity *p, uint32_t slot, const uint8_t *data)
{
    uint8_t *page;

    if (!data) {
        return;
    }
    if (slot >= p->pages->len) {
        g_ptr_array_set_size(p->pages, slot + 1);
    }
    page = g_ptr_array_index(p->pages, slot);
    if (!page) {
        g_ptr_array_index(p->pages, slot) = g_memdup2(data, DISTVM_PAGE_SIZE);
        p->nr_pages++;
    } else if (!distvm_parity_xor(page, page, data)) {
        g_free(page);
        g_ptr_array_index(p->pages, slot) = NULL;
        p->nr_pages--;
    }
}

static GArray *slots_of(DistvmParity *p, uint32_t node)
{
    if (!p->slots[node]) {
        p->slots[node] = g_array_new(false, true, sizeof(ParitySlot));
    }
    return p->slots[node];
}

void distvm_parity_commit(DistvmParity *p, uint32_t node,
                          GHashTable *deltas)
{
    GArray *slots = slots_of(p, node);
    GHashTableIter it;
    gpointer key, value;

    g_hash_table_iter_init(&it, deltas);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        uint32_t slot = GPOINTER_TO_UINT(key);
        DistvmParityDelta *d = value;

        parity_apply(p, slot, d->data);
        if (slot >= slots->len) {
            g_array_set_size(slots, slot + 1);
        }
        g_array_index(slots, ParitySlot, slot) = (ParitySlot) {
            .key = d->key, .epoch = d->epoch,
        };
    }
}

uint64_t distvm_parity_bytes(DistvmParity *p)
{
    return p->nr_pages * DISTVM_PAGE_SIZE;
}

uint32_t distvm_parity_rebuilding(DistvmParity *p)
{
    return p->rebuilding;
}

uint32_t distvm_parity_rebuild_begin(DistvmParity *p, uint32_t node)
{
    GArray *slots = slots_of(p, node);

    assert(p->rebuilding == UINT32_MAX);
    p->rebuilding = node;
    p->rebuilt = g_ptr_array_new_full(slots->len, g_free);
    g_ptr_array_set_size(p->rebuilt, slots->len);
    for (uint32_t i = 0; i < slots->len; i++) {
        const uint8_t *page = i < p->pages->len ?
                              g_ptr_array_index(p->pages, i) : NULL;

        if (g_array_index(slots, ParitySlot, i).epoch && page) {
            g_ptr_array_index(p->rebuilt, i) =
                g_memdup2(page, DISTVM_PAGE_SIZE);
        }
    }
    return slots->len;
}

bool distvm_parity_rebuild_add(DistvmParity *p, uint32_t slot,
                               const uint8_t *data)
{
    uint8_t *page;

    if (p->rebuilding == UINT32_MAX || slot >= p->rebuilt->len) {
        return false;
    }
    if (!data) {
        return true;
    }
    page = g_ptr_array_index(p->rebuilt, slot);
    if (!page) {
        g_ptr_array_index(p->rebuilt, slot) =
            g_memdup2(data, DISTVM_PAGE_SIZE);
    } else {
        distvm_parity_xor(page, page, data);
    }
    return true;
}

void distvm_parity_rebuild_end(DistvmParity *p,
                               void (*fn)(void *opaque, uint64_t key,
                                          uint64_t epoch,
                                          const uint8_t *data),
                               void *opaque)
{
    GArray *slots = slots_of(p, p->rebuilding);

    for (uint32_t i = 0; i < slots->len; i++) {
        const ParitySlot *ps = &g_array_index(slots, ParitySlot, i);
        const uint8_t *page = g_ptr_array_index(p->rebuilt, i);

        if (!ps->epoch) {
            continue;
        }
        if (page && buffer_is_zero(page, DISTVM_PAGE_SIZE)) {
            page = NULL;
        }
        fn(opaque, ps->key, ps->epoch, page);
        /* The parity is of the other nodes from now on */
        parity_apply(p, i, page);
    }
    g_array_set_size(slots, 0);
    g_ptr_array_unref(p->rebuilt);
    p->rebuilt = NULL;
    p->rebuilding = UINT32_MAX;
}
