/*
 * distvm: guest RAM coherence, what the monitor sees of it
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ACCEL_DISTVM_RAM_H
#define ACCEL_DISTVM_RAM_H

#include "qapi/qapi-types-distvm.h"
#include "distvm-wire.h"

typedef enum DistvmPageState {
    DISTVM_PAGE_I,              /* not present on this node */
    DISTVM_PAGE_S,              /* present, read-only */
    DISTVM_PAGE_E,              /* present, writable: owned here */
    DISTVM_PAGE__MAX
} DistvmPageState;

typedef enum DistvmFaultKind {
    DISTVM_FAULT_READ_MISS,
    DISTVM_FAULT_WRITE_MISS,
    DISTVM_FAULT_UPGRADE,
    DISTVM_FAULT__MAX
} DistvmFaultKind;

/* Latencies of the last this many faults of each kind are kept. */
#define DISTVM_LAT_SAMPLES 4096

typedef struct DistvmRamStats {
    uint64_t pages[DISTVM_PAGE__MAX];   /* this node's pages by state */
    uint64_t faults[DISTVM_FAULT__MAX]; /* remote requests made */
    uint64_t merged;            /* faults merged into a pending request */
    uint64_t local;             /* faults resolved without a message */
    uint64_t pages_sent;
    uint64_t pages_received;
    uint64_t invalidations;
    uint64_t warm_asked;        /* pages asked for with an arriving vCPU */
    uint64_t warm_received;     /* of those, in place */
    uint64_t lat_count[DISTVM_FAULT__MAX];
    uint32_t lat_us[DISTVM_FAULT__MAX][DISTVM_LAT_SAMPLES];
} DistvmRamStats;

void distvm_ram_get_stats(DistvmState *s, DistvmRamStats *stats);

/* A vCPU's last arrival on this node by a move, and what it cost. */
typedef struct DistvmArrival {
    uint64_t gen;               /* its arrivals here so far */
    uint32_t from;
    int64_t stopped_ns;         /* CLOCK_REALTIME: stopped on its source */
    int64_t resumed_ns;         /* get_clock(): running here; 0 before */
    uint64_t downtime_us;
    uint64_t state_bytes;
    bool warm_listed;           /* its source sent its warm pages */
    uint32_t warm_asked;        /* pages asked for with it */
    uint32_t warm_left;         /* of them, not in place yet */
    int64_t warm_us;            /* stopped to its last one in place, or -1 */
    uint32_t faults_window;     /* remote faults in its first 10 ms here */
} DistvmArrival;

bool distvm_ram_gather(DistvmState *s, const DistvmResident *r);
uint64_t distvm_ram_take_from(DistvmState *s, uint32_t node);
/* The page directory handed from one node to another (distvm-handoff.c) */
uint64_t distvm_ram_managers(DistvmState *s);
uint32_t distvm_ram_mgr_now(DistvmState *s, uint32_t node);
void distvm_ram_mgr_coming(DistvmState *s, uint32_t from, uint32_t to);
bool distvm_ram_mgr_park(DistvmState *s, int64_t timeout_us);
GPtrArray *distvm_ram_mgr_entries(DistvmState *s);
bool distvm_ram_mgr_install(DistvmState *s, uint32_t src,
                            const DistvmMsgMgrEntries *e, Error **errp);
void distvm_ram_mgr_switch(DistvmState *s, uint32_t from, uint32_t to);
bool distvm_ram_set_spread(DistvmState *s, bool spread, Error **errp);
/* A page a checkpoint keeps: its content, or NULL if all zero */
typedef void DistvmCheckpointPageFn(void *opaque, uint32_t block,
                                    uint64_t page, const void *data);
bool distvm_ram_quiesce(DistvmState *s, int64_t timeout_ms);
void distvm_ram_checkpoint_pages(DistvmState *s, bool all, bool again,
                                 DistvmCheckpointPageFn *fn, void *opaque);
/* A page a rollback restores */
typedef void DistvmRollbackPageFn(void *opaque, uint32_t block,
                                  uint64_t page);
void distvm_ram_rollback_pages(DistvmState *s, bool again,
                               DistvmRollbackPageFn *fn, void *opaque);
void distvm_ram_restore_page(DistvmState *s, uint32_t block, uint64_t page,
                             const void *data);
/* Taking over a lost node (distvm-recovery.c) */
void distvm_ram_recover_enter(DistvmState *s);
void distvm_ram_recover_settle(DistvmState *s, uint32_t lost, uint32_t to);
typedef void DistvmHeldPageFn(void *opaque, uint32_t manager, uint32_t block,
                              uint64_t page, bool owned);
void distvm_ram_recover_held(DistvmState *s, DistvmHeldPageFn *fn,
                             void *opaque);
bool distvm_ram_recover_holder(DistvmState *s, uint32_t node, uint32_t block,
                               uint64_t page, bool owned);
uint64_t distvm_ram_recover_rebuild(DistvmState *s);
uint64_t distvm_ram_recover_end(DistvmState *s);
/* The index of the RAMBlock named @idstr, or -1 if it has none */
int distvm_ram_block_index(DistvmState *s, const char *idstr);
bool distvm_ram_warm_page(DistvmState *s, uintptr_t host, bool written,
                          DistvmPageRef *out);
void distvm_ram_vcpu_incoming(DistvmState *s, uint32_t cpu, uint32_t from,
                              int64_t stopped_ns, uint64_t state_bytes);
void distvm_ram_vcpu_resumed(DistvmState *s, uint32_t cpu,
                             uint64_t downtime_ns);
void distvm_ram_warm(DistvmState *s, uint32_t cpu, const DistvmPageRef *pages,
                     uint32_t count);
bool distvm_ram_arrival(DistvmState *s, uint32_t cpu, DistvmArrival *out);
/* Every RAMBlock with its home, for query-distvm */
DistvmMemoryRangeList *distvm_ram_ranges(DistvmState *s);
/* The @count pages this node asked other nodes for most often */
#define DISTVM_HOT_PAGES_MAX    1024
DistvmHotPageList *distvm_ram_hot_pages(DistvmState *s, uint32_t count,
                                        Error **errp);
char *distvm_ram_page_states(DistvmState *s, const char *idstr,
                             uint64_t start, uint64_t count, Error **errp);

#endif /* ACCEL_DISTVM_RAM_H */
