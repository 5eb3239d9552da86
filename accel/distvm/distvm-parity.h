/*
 * distvm: the parity of the nodes' copies (redundancy=parity)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef DISTVM_PARITY_H
#define DISTVM_PARITY_H

typedef struct DistvmParity DistvmParity;

/* A change a node made to one slot of its copies, in one epoch */
typedef struct DistvmParityDelta {
    uint64_t key;               /* the page, as distvm-epoch.c keys it */
    uint64_t epoch;
    uint8_t *data;              /* old XOR new content; NULL: unchanged */
} DistvmParityDelta;

DistvmParity *distvm_parity_new(void);
void distvm_parity_free(DistvmParity *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DistvmParity, distvm_parity_free)

/*
 * A node sending its changes: the slot of its copy of page @key, given
 * the first time it is asked for; the page in a slot, false if none
 */
uint32_t distvm_parity_own_slot(DistvmParity *p, uint64_t key);
bool distvm_parity_own_key(DistvmParity *p, uint32_t slot, uint64_t *key);
uint32_t distvm_parity_own_slots(DistvmParity *p);

/* @out = @a XOR @b, DISTVM_PAGE_SIZE bytes each (NULL: zero); false if zero */
bool distvm_parity_xor(uint8_t *out, const uint8_t *a, const uint8_t *b);

/* The keeper: one epoch's changes of a node, slot -> DistvmParityDelta */
GHashTable *distvm_parity_deltas_new(void);
void distvm_parity_deltas_put(GHashTable *deltas, uint32_t slot,
                              uint64_t key, uint64_t epoch,
                              const uint8_t *data);
/* ... applied to the parity as the epoch commits */
void distvm_parity_commit(DistvmParity *p, uint32_t node,
                          GHashTable *deltas);
/* The bytes of parity kept */
uint64_t distvm_parity_bytes(DistvmParity *p);

/*
 * Rebuilding lost node @node's copies: begin (the slots it used are
 * below what it returns, 0 if none), add each other node's committed
 * content of each slot below that, then end: @fn gets each page of
 * @node with its epoch and content (NULL: zero), and @node's part leaves
 * the parity.
 */
uint32_t distvm_parity_rebuild_begin(DistvmParity *p, uint32_t node);
/* Whether another node's content of @slot is asked for */
bool distvm_parity_rebuild_check(DistvmParity *p, uint32_t slot);
void distvm_parity_rebuild_add(DistvmParity *p, uint32_t slot,
                               const uint8_t *data);
void distvm_parity_rebuild_end(DistvmParity *p,
                               void (*fn)(void *opaque, uint64_t key,
                                          uint64_t epoch,
                                          const uint8_t *data),
                               void *opaque);
/* The node being rebuilt, or UINT32_MAX */
uint32_t distvm_parity_rebuilding(DistvmParity *p);

#endif
