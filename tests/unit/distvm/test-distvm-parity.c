/*
 * Unit tests for the parity of redundancy=parity (distvm-parity.c)
 *
 * A model of what distvm-epoch.c does with it: sending nodes, each with
 * its committed own copies and its own slots, send home the delta of
 * each page they changed in an epoch; home, the keeper, applies them to
 * its parity as the epoch commits, or drops them if it is abandoned.
 * Then nodes are lost one after the other and rebuilt from the parity
 * and the others' committed copies of the same slots: what comes out
 * must be exactly the lost node's committed copies.  At every step the
 * parity kept is checked against the one the model computes.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "system/distvm.h"
#include "distvm-wire.h"
#include "distvm-parity.h"

#define PAGE DISTVM_PAGE_SIZE

/* The sending nodes of the model (home, node 0, is the keeper) */
#define SENDERS 3
/* The pages they may send, and how many of them each changes an epoch */
#define PAGES 300
#define CHANGES_MAX 48

/* Every instance made, freed once the tests ran */
static GPtrArray *parities;

static DistvmParity *parity_new(void)
{
    DistvmParity *p = distvm_parity_new();

    g_ptr_array_add(parities, p);
    return p;
}

/* A committed copy of a page, as distvm-epoch.c keeps it */
typedef struct Copy {
    uint64_t epoch;
    uint8_t *data;              /* NULL: zero */
} Copy;

static Copy *copy_new(uint64_t epoch, const uint8_t *data)
{
    Copy *c = g_new(Copy, 1);

    c->epoch = epoch;
    c->data = data ? g_memdup2(data, PAGE) : NULL;
    return c;
}

static void copy_free(gpointer data)
{
    Copy *c = data;

    g_free(c->data);
    g_free(c);
}

/* page key -> Copy */
static GHashTable *copies_new(void)
{
    return g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                 copy_free);
}

static gpointer key_ptr(uint64_t key)
{
    return (gpointer)(uintptr_t)key;
}

/* The page key distvm-epoch.c uses: RAMBlock above bit 40, page below */
static uint64_t page_key(uint32_t block, uint64_t page)
{
    return ((uint64_t)block << 40) | page;
}

static bool is_zero(const uint8_t *data)
{
    return !data || buffer_is_zero(data, PAGE);
}

static bool same_page(const uint8_t *a, const uint8_t *b)
{
    if (!a || !b) {
        return is_zero(a) && is_zero(b);
    }
    return !memcmp(a, b, PAGE);
}

static void fill_random(GRand *r, uint8_t *data)
{
    for (size_t i = 0; i < PAGE; i += sizeof(uint32_t)) {
        uint32_t v = g_rand_int(r);

        memcpy(data + i, &v, sizeof(v));
    }
}

/* A page of @byte (0: NULL), in a fresh buffer */
static uint8_t *page_of(uint8_t byte)
{
    uint8_t *data;

    if (!byte) {
        return NULL;
    }
    data = g_malloc(PAGE);
    memset(data, byte, PAGE);
    return data;
}

/* ---- the model ---- */

typedef struct Node {
    uint32_t id;
    bool lost;
    DistvmParity *own;          /* its slots, as the sender keeps them */
    GHashTable *committed;      /* its own copies: key -> Copy */
    GHashTable *sent;           /* this epoch's: key -> Copy, not committed */
    GHashTable *deltas;         /* ... and home's table of its deltas */
    uint32_t range;             /* it sends pages keys[0 .. range - 1] */
} Node;

typedef struct Model {
    GRand *rand;
    DistvmParity *home;
    Node nodes[SENDERS];
    uint64_t keys[PAGES];
    uint64_t epoch;
    uint32_t commits, abandons;
    uint64_t deltas_sent, deltas_null, zero_pages;
} Model;

static void model_init(Model *m, uint32_t seed)
{
    static const uint32_t ids[SENDERS] = { 1, 2, DISTVM_MAX_NODES - 1 };

    memset(m, 0, sizeof(*m));
    m->rand = g_rand_new_with_seed(seed);
    m->home = parity_new();
    for (uint32_t i = 0; i < PAGES; i++) {
        /* Page 0 of RAMBlock 0 is key 0 */
        m->keys[i] = page_key(i % 3, i / 3 * 5 + (i % 3 == 2 ? 1 << 20 : 0));
    }
    for (uint32_t n = 0; n < SENDERS; n++) {
        Node *node = &m->nodes[n];

        node->id = ids[n];
        node->own = parity_new();
        node->committed = copies_new();
        /* So that their numbers of slots differ */
        node->range = PAGES * (n + 2) / (SENDERS + 1);
    }
}

static void model_destroy(Model *m)
{
    for (uint32_t n = 0; n < SENDERS; n++) {
        g_hash_table_unref(m->nodes[n].committed);
        g_assert_null(m->nodes[n].sent);
        g_assert_null(m->nodes[n].deltas);
    }
    g_rand_free(m->rand);
}

/*
 * What the sender does with one page it sends in the epoch
 * (sender_delta() in distvm-epoch.c): its slot, and the delta from its
 * committed copy, NULL if unchanged; home puts it in its table
 */
static void node_send(Model *m, Node *node, uint64_t key,
                      const uint8_t *data)
{
    Copy *old = g_hash_table_lookup(node->committed, key_ptr(key));
    const uint8_t *old_data = old ? old->data : NULL;
    uint8_t *delta = g_malloc(PAGE);
    uint32_t slot = distvm_parity_own_slot(node->own, key);
    uint64_t own_key;
    bool changed;

    g_assert_true(distvm_parity_own_key(node->own, slot, &own_key));
    g_assert_cmphex(own_key, ==, key);
    memset(delta, 0xa5, PAGE);
    changed = distvm_parity_xor(delta, data, old_data);
    g_assert_cmpint(changed, ==, !same_page(data, old_data));
    distvm_parity_deltas_put(node->deltas, slot, key, m->epoch,
                             changed ? delta : NULL);
    g_hash_table_replace(node->sent, key_ptr(key),
                         copy_new(m->epoch, is_zero(data) ? NULL : data));
    m->deltas_sent++;
    m->deltas_null += !changed;
    m->zero_pages += is_zero(data);
    g_free(delta);
}

/* One epoch of @node: it changes some pages, in every way there is */
static void node_epoch(Model *m, Node *node)
{
    uint32_t changes = g_rand_int_range(m->rand, 0, CHANGES_MAX + 1);
    g_autofree uint8_t *data = g_malloc(PAGE);

    node->sent = copies_new();
    node->deltas = distvm_parity_deltas_new();
    for (uint32_t i = 0; i < changes; i++) {
        uint64_t key = m->keys[g_rand_int_range(m->rand, 0, node->range)];
        Copy *old = g_hash_table_lookup(node->committed, key_ptr(key));
        uint32_t how = g_rand_int_range(m->rand, 0, 100);

        /* A page is sent once an epoch */
        if (g_hash_table_contains(node->sent, key_ptr(key))) {
            continue;
        }
        if (how < 15) {
            /* Becomes (or stays, or is new and) all zero */
            node_send(m, node, key, NULL);
            continue;
        }
        if (how < 20) {
            /* Zero, but as a buffer */
            memset(data, 0, PAGE);
        } else if (how < 35) {
            /* Written again, with the same content */
            if (old && old->data) {
                memcpy(data, old->data, PAGE);
            } else {
                memset(data, 0, PAGE);
            }
        } else if (how < 65 && old && old->data) {
            /* A few bytes change */
            memcpy(data, old->data, PAGE);
            for (uint32_t j = g_rand_int_range(m->rand, 1, 9); j; j--) {
                data[g_rand_int_range(m->rand, 0, PAGE)] ^=
                    g_rand_int_range(m->rand, 1, 256);
            }
        } else {
            fill_random(m->rand, data);
        }
        node_send(m, node, key, data);
    }
}

/*
 * The epoch ends: committed, home applies every node's deltas and the
 * nodes' sent pages become their committed copies; abandoned, neither
 */
static void model_end_epoch(Model *m, bool commit)
{
    for (uint32_t n = 0; n < SENDERS; n++) {
        Node *node = &m->nodes[n];
        GHashTableIter it;
        gpointer key;
        Copy *c;

        if (node->lost) {
            continue;
        }
        if (commit) {
            distvm_parity_commit(m->home, node->id, node->deltas);
            g_hash_table_iter_init(&it, node->sent);
            while (g_hash_table_iter_next(&it, &key, (gpointer *)&c)) {
                g_hash_table_iter_steal(&it);
                g_hash_table_replace(node->committed, key, c);
            }
        }
        g_clear_pointer(&node->sent, g_hash_table_unref);
        g_clear_pointer(&node->deltas, g_hash_table_unref);
    }
    if (commit) {
        m->commits++;
    } else {
        m->abandons++;
    }
}

static void model_epoch(Model *m, uint32_t abandon_percent)
{
    m->epoch++;
    for (uint32_t n = 0; n < SENDERS; n++) {
        if (!m->nodes[n].lost) {
            node_epoch(m, &m->nodes[n]);
        }
    }
    model_end_epoch(m, g_rand_int_range(m->rand, 0, 100) >= abandon_percent);
}

/* @node's committed content of its slot @slot, and whether it has one */
static bool node_slot(Node *node, uint32_t slot, uint64_t *key,
                      const uint8_t **data)
{
    Copy *c;

    if (!distvm_parity_own_key(node->own, slot, key)) {
        return false;
    }
    c = g_hash_table_lookup(node->committed, key_ptr(*key));
    *data = c ? c->data : NULL;
    return c != NULL;
}

/*
 * The parity home should keep: per slot, the XOR of the committed
 * content of every node not lost (nor rebuilt); its bytes
 */
static uint64_t model_parity_bytes(Model *m)
{
    uint32_t slots = 0;
    uint64_t pages = 0;
    g_autofree uint8_t *sum = g_malloc(PAGE);

    for (uint32_t n = 0; n < SENDERS; n++) {
        slots = MAX(slots, distvm_parity_own_slots(m->nodes[n].own));
    }
    for (uint32_t slot = 0; slot < slots; slot++) {
        bool any = false;

        memset(sum, 0, PAGE);
        for (uint32_t n = 0; n < SENDERS; n++) {
            const uint8_t *data;
            uint64_t key;

            if (!m->nodes[n].lost &&
                node_slot(&m->nodes[n], slot, &key, &data)) {
                any = distvm_parity_xor(sum, sum, data);
            }
        }
        pages += any;
    }
    return pages * PAGE;
}

static void check_parity_bytes(Model *m)
{
    g_assert_cmpuint(distvm_parity_bytes(m->home), ==,
                     model_parity_bytes(m));
}

typedef struct Rebuilt {
    GHashTable *pages;          /* key -> Copy */
    uint32_t calls;
} Rebuilt;

static void rebuilt_page(void *opaque, uint64_t key, uint64_t epoch,
                         const uint8_t *data)
{
    Rebuilt *r = opaque;

    r->calls++;
    /* Each page once */
    g_assert_false(g_hash_table_contains(r->pages, key_ptr(key)));
    g_hash_table_insert(r->pages, key_ptr(key), copy_new(epoch, data));
}

static void never_called(void *opaque, uint64_t key, uint64_t epoch,
                         const uint8_t *data)
{
    g_assert_not_reached();
}

/* The bound rebuild_begin should give: past the last slot committed */
static uint32_t model_bound(Node *node)
{
    for (uint32_t slot = distvm_parity_own_slots(node->own); slot; slot--) {
        const uint8_t *data;
        uint64_t key;

        if (node_slot(node, slot - 1, &key, &data)) {
            return slot;
        }
    }
    return 0;
}

/*
 * Node @lost is lost: home rebuilds its copies from the parity and what
 * the others send (parity_ask_received() in distvm-epoch.c: their
 * non-zero committed copies in their slots below the bound); they must
 * be exactly its committed copies
 */
static void model_lose(Model *m, Node *lost)
{
    Rebuilt r = { .pages = copies_new() };
    uint32_t bound;
    GHashTableIter it;
    gpointer key;
    Copy *want;

    g_assert_false(lost->lost);
    g_assert_cmpuint(distvm_parity_rebuilding(m->home), ==, UINT32_MAX);
    g_assert_false(distvm_parity_rebuild_check(m->home, 0));

    bound = distvm_parity_rebuild_begin(m->home, lost->id);
    g_assert_cmpuint(bound, ==, model_bound(lost));
    g_assert_cmpuint(distvm_parity_rebuilding(m->home), ==, lost->id);
    g_assert_false(distvm_parity_rebuild_check(m->home, bound));
    g_assert_false(distvm_parity_rebuild_check(m->home, bound + 1));
    g_assert_false(distvm_parity_rebuild_check(m->home, UINT32_MAX));
    if (bound) {
        g_assert_true(distvm_parity_rebuild_check(m->home, 0));
        g_assert_true(distvm_parity_rebuild_check(m->home, bound - 1));
    }

    for (uint32_t n = 0; n < SENDERS; n++) {
        Node *node = &m->nodes[n];
        uint32_t slots = MIN(bound, distvm_parity_own_slots(node->own));

        if (node == lost || node->lost) {
            continue;
        }
        for (uint32_t slot = 0; slot < slots; slot++) {
            const uint8_t *data;
            uint64_t k;

            g_assert_true(distvm_parity_rebuild_check(m->home, slot));
            if (node_slot(node, slot, &k, &data) && data) {
                distvm_parity_rebuild_add(m->home, slot, data);
            }
        }
    }

    distvm_parity_rebuild_end(m->home, rebuilt_page, &r);
    g_assert_cmpuint(distvm_parity_rebuilding(m->home), ==, UINT32_MAX);
    g_assert_false(distvm_parity_rebuild_check(m->home, 0));

    /* Exactly its committed copies: every one, and no other */
    g_assert_cmpuint(r.calls, ==, g_hash_table_size(lost->committed));
    g_assert_cmpuint(g_hash_table_size(r.pages), ==,
                     g_hash_table_size(lost->committed));
    g_hash_table_iter_init(&it, lost->committed);
    while (g_hash_table_iter_next(&it, &key, (gpointer *)&want)) {
        Copy *got = g_hash_table_lookup(r.pages, key);

        g_assert_nonnull(got);
        g_assert_cmpuint(got->epoch, ==, want->epoch);
        if (want->data) {
            g_assert_nonnull(got->data);
            g_assert_cmpmem(got->data, PAGE, want->data, PAGE);
        } else {
            g_assert_null(got->data);
        }
    }
    g_hash_table_unref(r.pages);

    /* Its part left the parity */
    lost->lost = true;
    check_parity_bytes(m);
}

static uint64_t nonzero_copies(Node *node)
{
    GHashTableIter it;
    Copy *c;
    uint64_t pages = 0;

    g_hash_table_iter_init(&it, node->committed);
    while (g_hash_table_iter_next(&it, NULL, (gpointer *)&c)) {
        pages += c->data != NULL;
    }
    return pages;
}

/*
 * Random epochs, some abandoned; lose @order[0] and rebuild it, more
 * epochs of those left, lose @order[1], then @order[2], the last
 */
typedef struct ModelCase {
    uint32_t seed;
    uint32_t order[SENDERS];
} ModelCase;

static void test_model(const void *opaque)
{
    const ModelCase *mc = opaque;
    Model m;
    Node *last = &m.nodes[mc->order[SENDERS - 1]];

    model_init(&m, mc->seed);
    check_parity_bytes(&m);

    for (uint32_t i = 0; i < 12; i++) {
        model_epoch(&m, 25);
        check_parity_bytes(&m);
    }
    /* An epoch abandoned leaves it all as it was */
    {
        uint64_t bytes = distvm_parity_bytes(m.home);

        model_epoch(&m, 100);
        g_assert_cmpuint(distvm_parity_bytes(m.home), ==, bytes);
        check_parity_bytes(&m);
    }
    model_epoch(&m, 0);
    check_parity_bytes(&m);
    g_assert_cmpuint(distvm_parity_bytes(m.home), >, 0);

    model_lose(&m, &m.nodes[mc->order[0]]);

    /* Those left go on, with the lost node's part out of the parity */
    for (uint32_t i = 0; i < 6; i++) {
        model_epoch(&m, 25);
        check_parity_bytes(&m);
    }
    model_lose(&m, &m.nodes[mc->order[1]]);

    /* One node left: the parity is its non-zero copies */
    g_assert_cmpuint(distvm_parity_bytes(m.home), ==,
                     nonzero_copies(last) * PAGE);
    model_epoch(&m, 0);
    g_assert_cmpuint(distvm_parity_bytes(m.home), ==,
                     nonzero_copies(last) * PAGE);

    /* ... rebuilt from the parity alone, which is then empty */
    model_lose(&m, last);
    g_assert_cmpuint(distvm_parity_bytes(m.home), ==, 0);

    g_test_message("seed 0x%" PRIx32 ": %" PRIu64 " epochs (%" PRIu32
                   " committed, %" PRIu32 " abandoned), %" PRIu64
                   " pages sent (%" PRIu64 " unchanged, %" PRIu64 " zero)",
                   mc->seed, m.epoch, m.commits, m.abandons, m.deltas_sent,
                   m.deltas_null, m.zero_pages);
    /* The model went through every kind of change */
    g_assert_cmpuint(m.abandons, >, 1);
    g_assert_cmpuint(m.deltas_null, >, 0);
    g_assert_cmpuint(m.zero_pages, >, 0);
    model_destroy(&m);
}

/* ---- single functions and edge cases ---- */

static void test_xor(void)
{
    g_autofree uint8_t *a = g_malloc(PAGE);
    g_autofree uint8_t *b = g_malloc(PAGE);
    g_autofree uint8_t *out = g_malloc(PAGE);
    g_autoptr(GRand) r = g_rand_new_with_seed(1);

    fill_random(r, a);
    fill_random(r, b);

    memset(out, 0xff, PAGE);
    g_assert_false(distvm_parity_xor(out, NULL, NULL));
    g_assert_true(buffer_is_zero(out, PAGE));

    memset(out, 0xff, PAGE);
    g_assert_false(distvm_parity_xor(out, a, a));
    g_assert_true(buffer_is_zero(out, PAGE));

    g_assert_true(distvm_parity_xor(out, a, NULL));
    g_assert_cmpmem(out, PAGE, a, PAGE);
    g_assert_true(distvm_parity_xor(out, NULL, b));
    g_assert_cmpmem(out, PAGE, b, PAGE);

    g_assert_true(distvm_parity_xor(out, a, b));
    for (size_t i = 0; i < PAGE; i++) {
        g_assert_cmphex(out[i], ==, a[i] ^ b[i]);
    }
    /* In place, as the keeper does */
    g_assert_false(distvm_parity_xor(out, out, out));
    g_assert_true(buffer_is_zero(out, PAGE));

    /* One bit in the last byte is not zero */
    memcpy(b, a, PAGE);
    b[PAGE - 1] ^= 0x80;
    g_assert_true(distvm_parity_xor(out, a, b));
    g_assert_true(buffer_is_zero(out, PAGE - 1));
    g_assert_cmphex(out[PAGE - 1], ==, 0x80);
}

static void test_own_slots(void)
{
    DistvmParity *p = parity_new();
    uint64_t big = page_key(7, (1ULL << 40) - 1);
    uint64_t key = 42;

    g_assert_cmpuint(distvm_parity_own_slots(p), ==, 0);
    g_assert_false(distvm_parity_own_key(p, 0, &key));
    g_assert_cmphex(key, ==, 42);

    /* Dense, in the order first asked for, and for good */
    g_assert_cmpuint(distvm_parity_own_slot(p, big), ==, 0);
    g_assert_cmpuint(distvm_parity_own_slot(p, 0), ==, 1);
    g_assert_cmpuint(distvm_parity_own_slot(p, page_key(1, 0)), ==, 2);
    g_assert_cmpuint(distvm_parity_own_slot(p, 0), ==, 1);
    g_assert_cmpuint(distvm_parity_own_slot(p, big), ==, 0);
    g_assert_cmpuint(distvm_parity_own_slots(p), ==, 3);

    g_assert_true(distvm_parity_own_key(p, 0, &key));
    g_assert_cmphex(key, ==, big);
    g_assert_true(distvm_parity_own_key(p, 1, &key));
    g_assert_cmphex(key, ==, 0);
    g_assert_true(distvm_parity_own_key(p, 2, &key));
    g_assert_cmphex(key, ==, page_key(1, 0));
    g_assert_false(distvm_parity_own_key(p, 3, &key));
    g_assert_false(distvm_parity_own_key(p, UINT32_MAX, &key));

    /* A sender's slots are not a keeper's parity */
    g_assert_cmpuint(distvm_parity_bytes(p), ==, 0);
}

/* One delta of @node in slot @slot committed at home */
static void commit_one(DistvmParity *home, uint32_t node, uint32_t slot,
                       uint64_t key, uint64_t epoch, const uint8_t *delta)
{
    GHashTable *deltas = distvm_parity_deltas_new();

    distvm_parity_deltas_put(deltas, slot, key, epoch, delta);
    distvm_parity_commit(home, node, deltas);
    g_hash_table_unref(deltas);
}

static void test_deltas_table(void)
{
    GHashTable *deltas = distvm_parity_deltas_new();
    g_autofree uint8_t *x = page_of(0x11);
    g_autofree uint8_t *y = page_of(0x22);
    DistvmParityDelta *d;

    distvm_parity_deltas_put(deltas, 3, 100, 5, x);
    distvm_parity_deltas_put(deltas, 4, 101, 5, NULL);
    /* The table keeps a copy of the data */
    memset(x, 0x99, PAGE);
    g_assert_cmpuint(g_hash_table_size(deltas), ==, 2);
    d = g_hash_table_lookup(deltas, GUINT_TO_POINTER(3));
    g_assert_nonnull(d);
    g_assert_cmphex(d->key, ==, 100);
    g_assert_cmpuint(d->epoch, ==, 5);
    g_assert_nonnull(d->data);
    g_assert_cmphex(d->data[0], ==, 0x11);
    g_assert_cmphex(d->data[PAGE - 1], ==, 0x11);
    d = g_hash_table_lookup(deltas, GUINT_TO_POINTER(4));
    g_assert_nonnull(d);
    g_assert_null(d->data);

    /* A slot put again replaces what it had */
    distvm_parity_deltas_put(deltas, 3, 100, 6, y);
    g_assert_cmpuint(g_hash_table_size(deltas), ==, 2);
    d = g_hash_table_lookup(deltas, GUINT_TO_POINTER(3));
    g_assert_cmpuint(d->epoch, ==, 6);
    g_assert_cmphex(d->data[0], ==, 0x22);
    g_hash_table_unref(deltas);
}

/* A rebuild that expects nothing: bound 0, no slot asked, no page */
static void rebuild_nothing(DistvmParity *home, uint32_t node)
{
    uint64_t bytes = distvm_parity_bytes(home);

    g_assert_cmpuint(distvm_parity_rebuild_begin(home, node), ==, 0);
    g_assert_cmpuint(distvm_parity_rebuilding(home), ==, node);
    g_assert_false(distvm_parity_rebuild_check(home, 0));
    g_assert_false(distvm_parity_rebuild_check(home, 1));
    distvm_parity_rebuild_end(home, never_called, NULL);
    g_assert_cmpuint(distvm_parity_rebuilding(home), ==, UINT32_MAX);
    g_assert_cmpuint(distvm_parity_bytes(home), ==, bytes);
}

static void test_rebuild_nothing(void)
{
    DistvmParity *home = parity_new();
    GHashTable *empty = distvm_parity_deltas_new();
    g_autofree uint8_t *x = page_of(0x5a);

    /* No rebuild under way */
    g_assert_cmpuint(distvm_parity_rebuilding(home), ==, UINT32_MAX);
    g_assert_false(distvm_parity_rebuild_check(home, 0));
    g_assert_false(distvm_parity_rebuild_check(home, UINT32_MAX));

    /* Nothing at all yet */
    rebuild_nothing(home, 1);

    /* Another node sent; node 2 committed an epoch with no pages */
    commit_one(home, 3, 0, 7, 1, x);
    distvm_parity_commit(home, 2, empty);
    g_hash_table_unref(empty);
    g_assert_cmpuint(distvm_parity_bytes(home), ==, PAGE);
    rebuild_nothing(home, 1);
    rebuild_nothing(home, 2);
    rebuild_nothing(home, DISTVM_MAX_NODES - 1);

    /* ... and node 1 again, once rebuilt: its part is gone */
    commit_one(home, 1, 0, 8, 2, x);
    g_assert_cmpuint(distvm_parity_bytes(home), ==, 0);
    g_assert_cmpuint(distvm_parity_rebuild_begin(home, 1), ==, 1);
    g_assert_true(distvm_parity_rebuild_check(home, 0));
    distvm_parity_rebuild_add(home, 0, x);
    {
        Rebuilt r = { .pages = copies_new() };
        Copy *c;

        distvm_parity_rebuild_end(home, rebuilt_page, &r);
        g_assert_cmpuint(r.calls, ==, 1);
        c = g_hash_table_lookup(r.pages, key_ptr(8));
        g_assert_nonnull(c);
        g_assert_cmpuint(c->epoch, ==, 2);
        g_assert_cmpmem(c->data, PAGE, x, PAGE);
        g_hash_table_unref(r.pages);
    }
    g_assert_cmpuint(distvm_parity_bytes(home), ==, PAGE);
    rebuild_nothing(home, 1);
}

/*
 * Slots whose XOR becomes zero: their parity page goes, and what is
 * rebuilt from them is still right
 */
static void test_zero_slot(void)
{
    DistvmParity *home = parity_new();
    g_autofree uint8_t *x = page_of(0x3c);
    g_autofree uint8_t *y = page_of(0xc3);
    g_autofree uint8_t *xy = page_of(0x3c ^ 0xc3);
    Rebuilt r = { .pages = copies_new() };
    Copy *c;

    /* Node 1 puts X in slot 0, node 2 the same X: the slot is zero */
    commit_one(home, 1, 0, 10, 1, x);
    g_assert_cmpuint(distvm_parity_bytes(home), ==, PAGE);
    commit_one(home, 2, 0, 20, 1, x);
    g_assert_cmpuint(distvm_parity_bytes(home), ==, 0);

    /* Node 1's slot 1: X, then X again (zero), then Y */
    commit_one(home, 1, 1, 11, 2, x);
    g_assert_cmpuint(distvm_parity_bytes(home), ==, PAGE);
    commit_one(home, 1, 1, 11, 3, x);
    g_assert_cmpuint(distvm_parity_bytes(home), ==, 0);
    commit_one(home, 1, 1, 11, 4, y);
    g_assert_cmpuint(distvm_parity_bytes(home), ==, PAGE);
    /* ... written again unchanged: a NULL delta, a newer epoch */
    commit_one(home, 1, 1, 11, 5, NULL);
    g_assert_cmpuint(distvm_parity_bytes(home), ==, PAGE);

    /* Node 1 loses X from slot 0 (X XOR X: zero), node 2 keeps it */
    commit_one(home, 1, 0, 10, 6, x);
    g_assert_cmpuint(distvm_parity_bytes(home), ==, 2 * PAGE);
    /* ... then node 1 puts X XOR Y there: slot 0 is Y */
    commit_one(home, 1, 0, 10, 7, xy);
    g_assert_cmpuint(distvm_parity_bytes(home), ==, 2 * PAGE);

    /* Node 1 lost: slot 0 from node 2's X, slot 1 alone */
    g_assert_cmpuint(distvm_parity_rebuild_begin(home, 1), ==, 2);
    g_assert_true(distvm_parity_rebuild_check(home, 0));
    g_assert_true(distvm_parity_rebuild_check(home, 1));
    g_assert_false(distvm_parity_rebuild_check(home, 2));
    distvm_parity_rebuild_add(home, 0, x);
    distvm_parity_rebuild_end(home, rebuilt_page, &r);
    g_assert_cmpuint(r.calls, ==, 2);
    c = g_hash_table_lookup(r.pages, key_ptr(10));
    g_assert_nonnull(c);
    g_assert_cmpuint(c->epoch, ==, 7);
    g_assert_cmpmem(c->data, PAGE, xy, PAGE);
    c = g_hash_table_lookup(r.pages, key_ptr(11));
    g_assert_nonnull(c);
    g_assert_cmpuint(c->epoch, ==, 5);
    g_assert_cmpmem(c->data, PAGE, y, PAGE);
    g_hash_table_unref(r.pages);

    /* Left: node 2's X in slot 0 */
    g_assert_cmpuint(distvm_parity_bytes(home), ==, PAGE);

    /* Node 2 lost, alone: X from the parity, which is then empty */
    r = (Rebuilt) { .pages = copies_new() };
    g_assert_cmpuint(distvm_parity_rebuild_begin(home, 2), ==, 1);
    distvm_parity_rebuild_end(home, rebuilt_page, &r);
    g_assert_cmpuint(r.calls, ==, 1);
    c = g_hash_table_lookup(r.pages, key_ptr(20));
    g_assert_nonnull(c);
    g_assert_cmpuint(c->epoch, ==, 1);
    g_assert_cmpmem(c->data, PAGE, x, PAGE);
    g_hash_table_unref(r.pages);
    g_assert_cmpuint(distvm_parity_bytes(home), ==, 0);
}

/* A node whose pages are all zero: no parity, but its pages rebuilt */
static void test_zero_pages(void)
{
    DistvmParity *home = parity_new();
    DistvmParity *own = parity_new();
    GHashTable *deltas = distvm_parity_deltas_new();
    Rebuilt r = { .pages = copies_new() };
    g_autofree uint8_t *delta = g_malloc(PAGE);

    for (uint64_t page = 0; page < 5; page++) {
        uint32_t slot = distvm_parity_own_slot(own, page_key(2, page));

        g_assert_false(distvm_parity_xor(delta, NULL, NULL));
        distvm_parity_deltas_put(deltas, slot, page_key(2, page), 9, NULL);
    }
    distvm_parity_commit(home, 4, deltas);
    g_hash_table_unref(deltas);
    g_assert_cmpuint(distvm_parity_bytes(home), ==, 0);

    g_assert_cmpuint(distvm_parity_rebuild_begin(home, 4), ==, 5);
    g_assert_true(distvm_parity_rebuild_check(home, 4));
    g_assert_false(distvm_parity_rebuild_check(home, 5));
    distvm_parity_rebuild_end(home, rebuilt_page, &r);
    g_assert_cmpuint(r.calls, ==, 5);
    for (uint64_t page = 0; page < 5; page++) {
        Copy *c = g_hash_table_lookup(r.pages, key_ptr(page_key(2, page)));

        g_assert_nonnull(c);
        g_assert_cmpuint(c->epoch, ==, 9);
        g_assert_null(c->data);
    }
    g_hash_table_unref(r.pages);
    g_assert_cmpuint(distvm_parity_bytes(home), ==, 0);
}

static const ModelCase model_cases[] = {
    { .seed = 0x5eed0001, .order = { 1, 0, 2 } },
    { .seed = 0x5eed0002, .order = { 0, 2, 1 } },
    { .seed = 0x5eed0003, .order = { 2, 1, 0 } },
};

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    parities = g_ptr_array_new_with_free_func(
        (GDestroyNotify)distvm_parity_free);

    g_test_add_func("/distvm/parity/xor", test_xor);
    g_test_add_func("/distvm/parity/own-slots", test_own_slots);
    g_test_add_func("/distvm/parity/deltas-table", test_deltas_table);
    g_test_add_func("/distvm/parity/rebuild-nothing", test_rebuild_nothing);
    g_test_add_func("/distvm/parity/zero-slot", test_zero_slot);
    g_test_add_func("/distvm/parity/zero-pages", test_zero_pages);
    for (size_t i = 0; i < ARRAY_SIZE(model_cases); i++) {
        g_autofree char *path =
            g_strdup_printf("/distvm/parity/model/%zu", i);

        g_test_add_data_func(path, &model_cases[i], test_model);
    }

    ret = g_test_run();
    g_ptr_array_unref(parities);
    return ret;
}
