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
#include "system/distvm.h"
#include "distvm-wire.h"
#include "distvm-parity.h"

/* Where a node's copy in one slot is, as of the last commit */
typedef struct ParitySlot {
    uint64_t key;
    uint64_t epoch;
} ParitySlot;

/*
 * Tables by slot (a peer's slot numbers, which it hands out densely,
 * cost no more than the slots it sent)
 */
struct DistvmParity {
    /* The keeper (home) */
    GHashTable *pages;          /* slot -> its page of parity, if not zero */
    GHashTable *slots[DISTVM_MAX_NODES];    /* slot -> ParitySlot */
    uint32_t rebuilding;        /* the node rebuilt, or UINT32_MAX */
    uint32_t rebuild_slots;     /* ... the slots it used are below this */
    GHashTable *rebuilt;        /* slot -> its XOR so far, if not zero */

    /* A node that sends: the slots of its own copies */
    GHashTable *own;            /* page key (a pointer) -> slot + 1 */
    GArray *own_keys;           /* slot -> page key */
};

static GHashTable *by_slot_new(void)
{
    return g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                 g_free);
}

DistvmParity *distvm_parity_new(void)
{
    DistvmParity *p = g_new0(DistvmParity, 1);

    p->pages = by_slot_new();
    p->rebuilding = UINT32_MAX;
    p->own = g_hash_table_new(g_direct_hash, g_direct_equal);
    p->own_keys = g_array_new(false, false, sizeof(uint64_t));
    return p;
}

void distvm_parity_free(DistvmParity *p)
{
    g_hash_table_unref(p->pages);
    for (uint32_t node = 0; node < DISTVM_MAX_NODES; node++) {
        if (p->slots[node]) {
            g_hash_table_unref(p->slots[node]);
        }
    }
    if (p->rebuilt) {
        g_hash_table_unref(p->rebuilt);
    }
    g_hash_table_unref(p->own);
    g_array_free(p->own_keys, true);
    g_free(p);
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

/* XOR @data into the page of @slot in @pages; one that becomes zero goes */
static void xor_into(GHashTable *pages, uint32_t slot, const uint8_t *data)
{
    gpointer key = GUINT_TO_POINTER(slot);
    uint8_t *page;

    if (!data) {
        return;
    }
    page = g_hash_table_lookup(pages, key);
    if (!page) {
        g_hash_table_insert(pages, key, g_memdup2(data, DISTVM_PAGE_SIZE));
    } else if (!distvm_parity_xor(page, page, data)) {
        g_hash_table_remove(pages, key);
    }
}

static GHashTable *slots_of(DistvmParity *p, uint32_t node)
{
    if (!p->slots[node]) {
        p->slots[node] = by_slot_new();
    }
    return p->slots[node];
}

void distvm_parity_commit(DistvmParity *p, uint32_t node,
                          GHashTable *deltas)
{
    GHashTable *slots = slots_of(p, node);
    GHashTableIter it;
    gpointer key, value;

    g_hash_table_iter_init(&it, deltas);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        DistvmParityDelta *d = value;
        ParitySlot *ps = g_new(ParitySlot, 1);

        xor_into(p->pages, GPOINTER_TO_UINT(key), d->data);
        *ps = (ParitySlot) { .key = d->key, .epoch = d->epoch };
        g_hash_table_replace(slots, key, ps);
    }
}

uint64_t distvm_parity_bytes(DistvmParity *p)
{
    return (uint64_t)g_hash_table_size(p->pages) * DISTVM_PAGE_SIZE;
}

uint32_t distvm_parity_rebuilding(DistvmParity *p)
{
    return p->rebuilding;
}

uint32_t distvm_parity_rebuild_begin(DistvmParity *p, uint32_t node)
{
    GHashTableIter it;
    gpointer key;

    assert(p->rebuilding == UINT32_MAX);
    p->rebuilding = node;
    p->rebuild_slots = 0;
    p->rebuilt = by_slot_new();
    g_hash_table_iter_init(&it, slots_of(p, node));
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        uint32_t slot = GPOINTER_TO_UINT(key);

        p->rebuild_slots = MAX(p->rebuild_slots, slot + 1);
        xor_into(p->rebuilt, slot, g_hash_table_lookup(p->pages, key));
    }
    return p->rebuild_slots;
}

bool distvm_parity_rebuild_check(DistvmParity *p, uint32_t slot)
{
    return p->rebuilding != UINT32_MAX && slot < p->rebuild_slots;
}

void distvm_parity_rebuild_add(DistvmParity *p, uint32_t slot,
                               const uint8_t *data)
{
    assert(distvm_parity_rebuild_check(p, slot));
    /* A slot the lost node did not use: nothing of it to rebuild */
    if (g_hash_table_contains(p->slots[p->rebuilding],
                              GUINT_TO_POINTER(slot))) {
        xor_into(p->rebuilt, slot, data);
    }
}

void distvm_parity_rebuild_end(DistvmParity *p,
                               void (*fn)(void *opaque, uint64_t key,
                                          uint64_t epoch,
                                          const uint8_t *data),
                               void *opaque)
{
    GHashTable *slots = slots_of(p, p->rebuilding);
    GHashTableIter it;
    gpointer key, value;

    g_hash_table_iter_init(&it, slots);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        const ParitySlot *ps = value;
        const uint8_t *page = g_hash_table_lookup(p->rebuilt, key);

        fn(opaque, ps->key, ps->epoch, page);
        /* The parity is of the other nodes from now on */
        xor_into(p->pages, GPOINTER_TO_UINT(key), page);
    }
    g_hash_table_remove_all(slots);
    g_clear_pointer(&p->rebuilt, g_hash_table_unref);
    p->rebuilding = UINT32_MAX;
}
