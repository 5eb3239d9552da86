/*
 * distvm: accelerator state shared by the files of accel/distvm
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ACCEL_DISTVM_INTERNAL_H
#define ACCEL_DISTVM_INTERNAL_H

#include "system/distvm.h"
#include "accel/tcg/tcg-accel-state.h"
#include "qapi/qapi-types-distvm.h"
#include "qapi/qapi-types-sockets.h"
#include "qemu/thread.h"
#include "io/channel-socket.h"
#include "io/net-listener.h"
#include "crypto/tlscreds.h"
#include "exec/memattrs.h"
#include "exec/memory.h"
#include "hw/mem/memory-device.h"
#include "distvm-wire.h"

typedef struct DistvmRam DistvmRam;
typedef struct DistvmFlow DistvmFlow;
typedef struct DistvmClock DistvmClock;
typedef struct DistvmTlbFlush DistvmTlbFlush;
typedef struct DistvmMsgHandler DistvmMsgHandler;
typedef struct DistvmNetQueues DistvmNetQueues;
typedef struct DistvmRun DistvmRun;
typedef struct DistvmLeave DistvmLeave;
typedef struct DistvmIoWait DistvmIoWait;
typedef struct DistvmAffinity DistvmAffinity;
typedef struct DistvmMemPlug DistvmMemPlug;
typedef struct DistvmPlug DistvmPlug;
typedef struct DistvmResWaits DistvmResWaits;
typedef struct DistvmDevices DistvmDevices;
typedef struct DistvmEpoch DistvmEpoch;
typedef struct DistvmRecovery DistvmRecovery;
typedef struct DistvmJoin DistvmJoin;
typedef struct DistvmDrain DistvmDrain;
typedef struct DistvmHandoff DistvmHandoff;

/*
 * A range of guest RAM resident on one node (distvm-residency.c).  Set
 * once, before it is published (DistvmState.nr_resident), except @active.
 */
typedef struct DistvmResident {
    uint64_t base;
    uint64_t size;
    uint32_t node;
    bool active;                /* atomic: all its pages are on @node */
    RAMBlock *rb;               /* the RAM it is, from @offset */
    ram_addr_t offset;
    MemoryRegion overlay;       /* the other nodes: where accesses go */
    uint64_t remote_accesses;   /* atomic */
    uint64_t vcpu_moves;        /* atomic */
} DistvmResident;

typedef struct DistvmDevPath DistvmDevPath;

/* A PCI device that a node other than home runs (distvm-devices.c) */
typedef struct DistvmPlacedDevice {
    char *name;                 /* as device-nodes names it */
    const char *option;         /* the property that names it */
    uint32_t node;              /* atomic: set under the BQL */
    uint32_t placed;            /* the node device-nodes names */
    /* Home, in a rollback: the node whose saved state it loads, or none */
    uint32_t taken_from;
    bool moved;                 /* atomic: a rollback brought it home */
    /*
     * Atomic: the node that ran it when this node saved its data for the
     * last checkpoint epoch (@saved_epoch), and for the last one
     * committed: the node whose state of that epoch holds it
     */
    uint32_t saved_node;
    uint64_t saved_epoch;
    uint32_t ckpt_node;
    /* Atomic: @placed was lost or left; it never goes back there */
    bool stays_home;
    DistvmDevPath *path;        /* a card's node's path (distvm-devpath.c) */
    PCIDevice *dev;             /* once the machine exists */
    Error *unplug_blocker;
    uint64_t local;             /* atomic: accesses of vCPUs here, done here */
    uint64_t forwarded;         /* atomic: those sent to @node */
    uint64_t served;            /* atomic: done here for other nodes */
    uint64_t moves;             /* under the BQL: home, and back */
    /* queue-nodes: a virtio-net card's pairs on several nodes, or NULL */
    DistvmNetQueues *queues;
} DistvmPlacedDevice;

/* Which nodes do an access of a vCPU to a placed device */
typedef struct DistvmIoRoute {
    uint32_t node;              /* the node that does it, and answers it */
    uint32_t mirror;            /* nodes that do a write too, before it */
    int queue;                  /* the virtio queue it notifies, or -1 */
} DistvmIoRoute;

/* A RAMBlock homed on a node other than by default (distvm-numa.c) */
typedef struct DistvmNumaHome {
    RAMBlock *rb;
    uint32_t node;
} DistvmNumaHome;


typedef enum DistvmIoKind {
    DISTVM_IO_KIND_PORT,
    DISTVM_IO_KIND_MMIO,
    DISTVM_IO_KIND_PIC_ACK,
    DISTVM_IO_KIND__MAX
} DistvmIoKind;

/* Latencies of the last this many accesses of each kind are kept. */
#define DISTVM_IO_LAT_SAMPLES 4096

typedef struct DistvmIoStats {
    uint64_t count[DISTVM_IO_KIND__MAX];
    uint32_t lat_us[DISTVM_IO_KIND__MAX][DISTVM_IO_LAT_SAMPLES];
} DistvmIoStats;

/* One other node of the cluster, as this node sees it. */
typedef struct DistvmPeer {
    uint32_t id;
    char *addr;                 /* its listen address */
    QIOChannelSocket *sioc;     /* NULL until connected */
    QIOChannel *ioc;            /* the stream over it: sioc or TLS */
    QemuThread rx_thread;
    bool loop_done;             /* s->lock: its receive loop ended */
    int64_t heard_ns;           /* atomic: when bytes_received last grew */

    /*
     * Messages wait in @sendq, in the order sent, for the peer's writer
     * thread; a sender writes itself only when the queue is empty and the
     * socket takes the whole message at once (distvm_send()).
     */
    QemuMutex send_lock;        /* the fields below */
    QemuCond send_cond;
    GQueue sendq;               /* GByteArray */
    size_t sendq_bytes;
    int64_t sendq_over_ns;      /* over DISTVM_SENDQ_MAX since, or 0 */
    bool writing;               /* a thread writes to sioc now */
    bool broken;                /* a write failed: nothing more is sent */
    QemuThread tx_thread;       /* joinable: distvm_peer_reuse() */
    bool ready;                 /* home: it reported its mesh complete */
    uint64_t bytes_sent;        /* atomic */
    uint64_t bytes_received;    /* atomic */
    uint64_t rtt_ns;            /* round trip measured at join */
    uint32_t speed;             /* its speed property; set once it joined */
} DistvmPeer;

OBJECT_DECLARE_TYPE(DistvmState, DistvmAccelClass, DISTVM_ACCEL)

struct DistvmState {
    TCGState parent_obj;

    /* -accel distvm properties */
    uint32_t node_id;
    bool node_id_given;         /* or, with home=, home gives one on joining */
    uint32_t nodes;             /* at most, ids 0 to nodes - 1 */
    /*
     * Atomic: the node that runs the devices and coordinates the cluster
     * (home): DISTVM_HOME_NODE, until its standby takes its place
     * (distvm-recovery.c)
     */
    uint32_t home_node;
    uint32_t start_nodes;       /* nodes 0 to start_nodes - 1 form it */
    char *listen;               /* as given, "tcp:HOST:PORT" or "unix:PATH" */
    char *home;
    SocketAddress *listen_addr; /* parsed from @listen */
    SocketAddress *home_addr;   /* parsed from @home */
    uint32_t join_timeout;      /* seconds */
    uint32_t peer_timeout;      /* seconds a peer may stay silent */
    uint32_t path_up_delay_ms;  /* a tap that came up counts as up then */
    uint32_t pause_sleep_us;    /* a spinning vCPU's sleep (distvm-pause.c) */
    bool warm_pages;            /* moved vCPUs take their pages along */
    bool auto_numa;             /* no -numa: a NUMA node per cluster node */
    bool pv_tlb_flush;          /* the guest's remote TLB flush hypercall */
    uint32_t replicas;          /* 0 or 1: checkpoint epochs (distvm-epoch.c) */
    uint32_t redundancy;        /* DistvmRedundancy: what replicas keep */
    uint32_t standby;           /* home's replica, or 0: the next node */
    uint32_t checkpoint_ms;     /* the time between two epochs */
    uint32_t policy;            /* DistvmPolicy, atomic (distvm-affinity.c) */
    uint32_t capacity;          /* vCPUs the policy may place here */
    uint32_t speed;             /* relative, in DISTVM_WIRE_SPEED_ONE units */
    char *tls_creds;            /* id of a tls-creds-* object, or NULL */
    char *tls_authz;            /* id of an authz object, or NULL */
    char *tls_hostname;         /* the name servers' certificates carry */
    QCryptoTLSCreds *tls_server;    /* for accepted connections */
    QCryptoTLSCreds *tls_client;    /* for the ones this node opens */

    /* vCPU placement: vcpu_node[cpu_index] is the node running it. */
    char *placement;            /* the property: "N:N:..." by cpu index */
    unsigned nr_vcpus;
    uint32_t *vcpu_node;        /* under @lock once the cluster runs */
    uint32_t *vcpu_allowed;     /* atomic: nodes each vCPU may run on */
    struct DistvmVcpuMove *moves;   /* [nr_vcpus], distvm-vcpu.c */
    GAsyncQueue *vcpus_outgoing;    /* evicted, for the sender thread */
    uint64_t moves_done;        /* atomic: VCPU_MOVED seen here */
    uint64_t last_downtime_ns;  /* atomic */
    uint64_t pause_sleeps;      /* atomic: sleeps of spinning vCPUs */
    uint64_t irqs_sent;         /* atomic: interrupts sent to other nodes */
    uint64_t irqs_received;     /* atomic: and received from them */

    /* Guest RAM resident on one node (distvm-residency.c) */
    char *residency;            /* the property */
    /* [DISTVM_RESIDENT_MAX]; entries below nr_resident (acquire) are set */
    DistvmResident *resident;
    uint32_t nr_resident;
    DistvmResWaits *res_waits;
    NotifierList placement_notifiers;   /* BQL; distvm-topology.c */

    /* PCI devices run by a node other than home (distvm-devices.c) */
    char *device_nodes;         /* the property */
    char *queue_nodes;          /* the property (distvm-netqueues.c) */
    OnOffAuto queue_follow;     /* pairs follow their vCPUs (the same) */
    DistvmDevices *devices;     /* NULL if it names none */

    /* Cluster membership and transport (distvm-net.c) */
    QemuMutex lock;             /* the fields below and peer->sioc */
    QemuCond cond;
    /*
     * Once LEAVING (a node left in order and the cluster shuts down),
     * this node serves its own page faults and fails the accesses it
     * would forward, since the nodes they wait for may be gone.
     */
    DistvmClusterState state;
    DistvmPeer peers[DISTVM_MAX_NODES];
    /*
     * Atomic: the nodes that are part of the cluster (the start nodes,
     * and those that joined the running guest since: distvm-join.c).
     */
    uint32_t present;
    /* The node joining now, announced by home, or UINT32_MAX */
    uint32_t joining;
    /* Atomic: the node being drained (distvm-drain.c), or UINT32_MAX */
    uint32_t draining;
    /* Atomic: the nodes that left after a drain, gone for good */
    uint32_t left;
    DistvmJoin *join;           /* home: the join under way (distvm-join.c) */
    DistvmDrain *drain;         /* the drain under way (distvm-drain.c) */
    /* A part of the page directory handed to another (distvm-handoff.c) */
    DistvmHandoff *handoff;
    int64_t join_paused_ns;     /* home: when it paused the guest for it */
    QIONetListener *listener;
    GMainContext *accept_ctx;   /* the listener's, in the accept thread */
    GPtrArray *unidentified;    /* DistvmConn, accepted, not identified */
    uint32_t fp_items;          /* this node's fingerprint */
    char **fp_keys;
    char **fp_values;
    bool want_autostart;        /* start the guest once the cluster formed */
    bool ready_sent;            /* this node reported its mesh complete */
    bool starting;              /* the cluster is being started here */
    uint64_t protocol_errors;   /* atomic: connections dropped for bad input */
    uint64_t bytes_sent;        /* atomic, all peers */
    uint64_t bytes_received;    /* atomic, all peers */

    /* Message handlers, and the main loop's work (distvm-dispatch.c) */
    const DistvmMsgHandler *handlers[DISTVM_MSG__MAX];
    QemuMutex main_calls_lock;  /* the four fields below */
    GQueue main_calls;          /* DistvmMainCall, in the order asked */
    unsigned main_calls_from[DISTVM_MAX_NODES];  /* waiting or running */
    unsigned main_calls_running;
    unsigned main_calls_held;   /* BQL: while the devices change run state */
    QEMUBH *main_calls_bh;

    /* This node's vCPUs wait for other nodes' main loops (distvm-flow.c) */
    DistvmFlow *flow;
    uint64_t flow_waits;        /* atomic */

    /* Guest RAM coherence (distvm-ram.c) */
    DistvmRam *ram;
    /* Devices plugged on every node while the guest runs (distvm-plug.c) */
    DistvmPlug *plug;
    /* Memory plugged while the guest runs (distvm-memplug.c) */
    DistvmMemPlug *memplug;

    /*
     * The messages received that DistvmMsgHandler.before_replies named,
     * and those of them whose main-loop part ran (distvm-dispatch.c).
     */
    QemuMutex replay_lock;
    QemuCond replay_cond;
    uint64_t replays_received;  /* atomic */
    uint64_t replays_done;      /* atomic; changes under replay_lock */

    /* Device accesses forwarded to home (distvm-io.c) */
    DistvmIoWait *io_waits;     /* [nr_vcpus] */
    QemuMutex io_stats_lock;
    DistvmIoStats io_stats;
    /* Accesses done here for other nodes, by device (BQL) */
    GHashTable *io_served;
    /* Home, under the BQL: the vCPU whose access is replayed, if any, */
    CPUState *io_replaying;
    /* and the A20 line it set: 0, 1, or -1 if it did not */
    int io_replay_a20;
    /* and the nodes it made main-loop work for (distvm-flow.c) */
    uint32_t io_replay_flow;

    /*
     * Home's PCI_CONFIGs (distvm-chipset.c), numbered from 1: home, under
     * the BQL: the last it sent; the others: the last applied (atomic).
     */
    uint64_t config_gen;

    /* The guest's 8259 PIC, home's (distvm-pic.c) */
    int pic_home_output;        /* not home: its output, as last told */
    int pic_output_sent;        /* home: as last told, under the BQL */

    /* Home's run state and clocks, followed (distvm-runstate.c) */
    DistvmRun *run;
    /* The cluster ends in order (distvm-leave.c) */
    DistvmLeave *leave;

    /* Where each vCPU's remote data comes from (distvm-affinity.c) */
    DistvmAffinity *affinity;

    /* Registers that only read a clock (distvm-clock.c) */
    DistvmClock *clock;

    /* vCPUs flush other vCPUs' TLBs (distvm-tlbflush.c), or NULL */
    DistvmTlbFlush *tlbflush;

    /* Checkpoint epochs and the replicas' stores (distvm-epoch.c) */
    DistvmEpoch *epoch;
    /* A lost node's part taken over (distvm-recovery.c) */
    DistvmRecovery *recovery;

    /* The guest NUMA nodes' memory homes (distvm-numa.c) */
    bool numa_planned;
    unsigned nr_numa_homes;
    DistvmNumaHome *numa_homes;     /* and the RAMBlocks of distmem-dimms */
    unsigned nr_numa_nodes;
    uint32_t *numa_node_home;   /* [nr_numa_nodes]: a node or UINT32_MAX */
    uint32_t *vcpu_numa_home;   /* [nr_vcpus]: see distvm_numa_vcpu_home() */
};

struct DistvmAccelClass {
    AccelClass parent_class;

    int (*parent_init_machine)(MachineState *ms);
};

/* distvm-accel.c */
DistvmState *distvm_state(void);
uint32_t distvm_vcpu_node(DistvmState *s, int cpu_index);

static inline bool distvm_node_present(DistvmState *s, uint32_t node)
{
    return node < DISTVM_MAX_NODES && (qatomic_read(&s->present) & BIT(node));
}

/* Whether vCPUs may go to @node: it is present and not being drained */
static inline bool distvm_node_usable(DistvmState *s, uint32_t node)
{
    return distvm_node_present(s, node) &&
           node != qatomic_read(&s->draining);
}

static inline uint32_t distvm_home(DistvmState *s)
{
    return qatomic_read(&s->home_node);
}

static inline bool distvm_is_home(DistvmState *s)
{
    return s->node_id == distvm_home(s);
}

static inline bool distvm_cluster_leaving(DistvmState *s)
{
    return qatomic_read(&s->state) == DISTVM_CLUSTER_STATE_LEAVING;
}

/* distvm-net.c */
bool distvm_net_init(DistvmState *s, Error **errp);
void distvm_home_welcome(DistvmState *s, uint32_t node);
/* Send a message to @node (this node included); false if it is gone. */
bool distvm_send(DistvmState *s, uint32_t node, GByteArray *msg);
uint64_t distvm_peer_queued(DistvmPeer *peer);
void distvm_fatal_node_lost(DistvmState *s, uint32_t node, const char *why);
/* Stop talking with @node: its connection is shut down */
void distvm_net_cut(DistvmState *s, uint32_t node);
/* Whether this thread receives a peer's messages */
bool distvm_net_receiving(void);

/* distvm-dispatch.c */
/*
 * What this node does with the messages of one type.  Once the message
 * passed the checks of distvm_dispatch() (its sender's role, the vCPU it
 * names), @receive runs at once, in the thread that received it (or the
 * one that sent it, for a message to this node), never with the BQL; it
 * returns false if it refused the message (distvm_msg_refused()).  Then
 * @main_loop runs in the main loop, with the BQL, after the main-loop
 * work of the messages received before it, on a copy of the message.
 * Either may be NULL.  If @main_loop_now, asked with the BQL, says so of
 * a message, @main_loop runs instead at once in the receiving thread,
 * provided the BQL is free and the main loop has nothing of the sender's
 * to do before it: for work that never waits for a page (which that
 * thread could have to bring), nor for the BQL.  If @before_replies says
 * so of a message, a vCPU
 * of this node whose device access home answered after it does not go on
 * before its @main_loop ran (distvm_dispatch_wait_before_replies()): for
 * what home's replay of the access sent this node on the way (a chipset
 * write that changes the memory map, an SMI for the vCPU), which must
 * take effect before the vCPU's next instruction, as on one node.
 */
struct DistvmMsgHandler {
    DistvmMsgType type;
    bool (*receive)(DistvmState *s, const DistvmMsg *msg);
    void (*main_loop)(DistvmState *s, const DistvmMsg *msg);
    bool (*main_loop_now)(const DistvmMsg *msg);
    bool (*before_replies)(const DistvmMsg *msg);
};
/*
 * For DistvmMsgHandler.before_replies and main_loop_now: every message of
 * the type.
 */
bool distvm_msg_always(const DistvmMsg *msg);

void distvm_dispatch_init(DistvmState *s);
/* Each subsystem registers its handlers, a type at most once. */
void distvm_msg_handlers_register(DistvmState *s,
                                  const DistvmMsgHandler *handlers,
                                  size_t n);
/* A message received from a peer, or sent by this node to itself. */
void distvm_dispatch(DistvmState *s, const DistvmMsg *msg);
/*
 * Run @fn(@opaque) in the main loop, with the BQL, after the calls asked
 * before it: the work that messages bring is done in their order.  @src
 * is the node whose message asks for it; a node with too many calls
 * waiting is lost.
 */
void distvm_main_loop_call(DistvmState *s, uint32_t src,
                           void (*fn)(void *opaque), void *opaque);
/*
 * For vCPU @cs, whose access home just answered: wait until the main
 * loop ran the messages received so far that @before_replies named.  Stops
 * waiting if @cs is asked to stop, since the main loop may be waiting
 * for it.
 */
void distvm_dispatch_wait_before_replies(DistvmState *s, CPUState *cs);
void G_GNUC_PRINTF(3, 4) distvm_msg_refused(DistvmState *s, uint32_t src,
                                            const char *fmt, ...);

/* distvm-join.c */
void distvm_join_init(DistvmState *s);
char *distvm_join_refusal(DistvmState *s, uint32_t node);
void distvm_join_announce(DistvmState *s, uint32_t node, uint32_t speed);
void distvm_join_ready(DistvmState *s, uint32_t node);
void distvm_join_node_held(DistvmState *s, uint32_t node, uint64_t number);
bool distvm_join_lost(DistvmState *s, uint32_t node, const char *why);

/* distvm-drain.c */
void distvm_drain_init(DistvmState *s);

/* distvm-handoff.c */
void distvm_handoff_init(DistvmState *s);
uint32_t distvm_handoff_start(DistvmState *s, uint32_t from);
void distvm_handoff_send_state(DistvmState *s, uint32_t node);
void distvm_handoff_end(DistvmState *s);

/* distvm-epoch.c */
void distvm_epoch_init(DistvmState *s);
/* Home, in the main loop: @node paused the guest for @epoch (PAUSED) */
void distvm_epoch_node_paused(DistvmState *s, uint32_t node, uint64_t epoch);
/*
 * Home, in the main loop: run @fn once no epoch is being taken (now if
 * none is): a node joins or leaves between two epochs, so that the nodes
 * agree on which node is whose replica for the whole of one.
 */
void distvm_epoch_when_idle(DistvmState *s, void (*fn)(DistvmState *s));
DistvmCheckpointInfo *distvm_epoch_query(DistvmState *s);
/*
 * Home: roll the guest back to the last committed epoch, once idle; with
 * @has_lost, without the copies that node @lost keeps, as if it were lost
 */
bool distvm_epoch_rollback(DistvmState *s, bool has_lost, uint32_t lost,
                           Error **errp);
/* The last epoch committed, or 0; from any thread */
uint64_t distvm_epoch_committed(DistvmState *s);
/* Home: whether a rollback was asked for and has not ended */
bool distvm_epoch_rollback_pending(DistvmState *s);
uint32_t distvm_replica_of(DistvmState *s, uint32_t node);
/* Send EPOCH @step about @node, of @epoch, to @to */
void distvm_epoch_send(DistvmState *s, uint32_t to, DistvmEpochStep step,
                       uint32_t node, uint64_t epoch, uint64_t bytes,
                       uint32_t vcpus);
/* Whether epochs are taken: replicas=1, and another node to keep state */
bool distvm_epoch_taken(DistvmState *s);
DistvmReplicaPageList *distvm_epoch_replica_page(DistvmState *s,
                                                 const char *ramblock,
                                                 uint64_t page, Error **errp);
/* Home, taking over a lost node (distvm-recovery.c) */
void distvm_epoch_keep_lost(DistvmState *s, uint32_t node);
uint32_t distvm_epoch_keeper_of(DistvmState *s, uint32_t node);
bool distvm_epoch_parity_rebuild(DistvmState *s, uint32_t lost,
                                 uint64_t epoch);
void distvm_epoch_recover(DistvmState *s, uint32_t lost);
void distvm_epoch_recover_rollback(DistvmState *s);
void distvm_epoch_commit_late(DistvmState *s, uint64_t epoch);
void distvm_epoch_take_home(DistvmState *s);
const char *distvm_epoch_home_refusal(DistvmState *s);
bool distvm_epoch_standby_may_write(DistvmState *s);
const char *distvm_epoch_recover_refusal(DistvmState *s, uint32_t lost);

/* distvm-recovery.c */
void distvm_recovery_init(DistvmState *s);
/* From any thread: once no other thread is counting @node out as lost */
void distvm_recovery_wait_counted_out(DistvmState *s, uint32_t node);
/*
 * From any thread: node @node is lost (@why); whether the other nodes
 * take its part over (if not, the caller ends this node)
 */
bool distvm_recovery_node_lost(DistvmState *s, uint32_t node,
                               const char *why);
bool distvm_recovery_busy(DistvmState *s);
void distvm_recovery_watch(DistvmState *s, int64_t now);
void distvm_recovery_settle_all(DistvmState *s);
void distvm_recovery_parity_rebuilt(DistvmState *s);
uint32_t distvm_recovery_lost(DistvmState *s);
void distvm_recovery_done(DistvmState *s);
void distvm_recovery_stats(DistvmState *s, uint64_t *count,
                           uint64_t *last_ms);
void distvm_recovery_home_news(DistvmState *s, const DistvmMsg *msg);
bool distvm_recovery_was_home(DistvmState *s, uint32_t src);
bool distvm_recovery_received(DistvmState *s, const DistvmMsg *msg);
void distvm_recovery_main_loop(DistvmState *s, const DistvmMsg *msg);
void distvm_recovery_held_received(DistvmState *s, const DistvmMsg *msg);

/* distvm-output.c: the guest's packets wait for their epoch's commit */
bool distvm_output_hold(Error **errp);
void distvm_output_seal(uint64_t epoch);
/* Hold the packets that come to the guest while an epoch pauses it */
void distvm_output_pause(bool paused);
void distvm_output_release(uint64_t epoch);
void distvm_output_packets_release(uint64_t epoch);
/* A rollback to @epoch: what the guest sent after it never goes */
void distvm_output_rollback(uint64_t epoch);
void distvm_output_stats(uint64_t *held, uint64_t *released);

/* distvm-output-disk.c: and its disk writes */
bool distvm_output_disk_hold(Error **errp);
const char *distvm_output_disk_stand_in(void);
bool distvm_output_disk_inactivate(Error **errp);
bool distvm_output_disk_activate(Error **errp);
void distvm_output_disk_save(QEMUFile *f);
bool distvm_output_disk_replay(QEMUFile *f, Error **errp);
void distvm_output_disk_seal(uint64_t epoch);
void distvm_output_disk_release(uint64_t epoch);
void distvm_output_disk_rollback(uint64_t epoch);
void distvm_output_disk_stats(uint64_t *writes, uint64_t *bytes,
                              uint64_t *released);

/* distvm-cluster.c */
void distvm_cluster_init(DistvmState *s);
/* A node other than home: report READY once the mesh is complete. */
void distvm_check_ready(DistvmState *s);
void distvm_cluster_start(DistvmState *s);

/* distvm-tls.c */
bool distvm_tls_init(DistvmState *s, Error **errp);
QIOChannel *distvm_tls_wrap(DistvmState *s, QIOChannelSocket *sioc,
                            const char *peer_addr, Error **errp);

/* distvm-chipset.c */
void distvm_chipset_init(DistvmState *s);
void distvm_chipset_quiesce(DistvmState *s);
void distvm_chipset_reset(DistvmState *s);
void distvm_chipset_send_state(DistvmState *s, uint32_t node);

/* distvm-clock.c */
void distvm_clock_init(DistvmState *s);
void distvm_clock_start(DistvmState *s);
void distvm_clock_update(DistvmState *s);
void distvm_clock_send_state(DistvmState *s, uint32_t node);
/* A read of a clock register by a vCPU here: answered if true */
bool distvm_clock_read(DistvmState *s, uint32_t space, uint64_t addr,
                       unsigned size, uint64_t *val);
void distvm_clock_get_stats(DistvmState *s, uint64_t *local, uint64_t *sent);

/* distvm-io.c */
void distvm_io_init(DistvmState *s);
void distvm_io_get_stats(DistvmState *s, DistvmIoStats *stats);
void distvm_io_fail_waits(DistvmState *s);
void distvm_io_req_failed(DistvmState *s, const DistvmMsg *msg);
void distvm_io_cancel(DistvmState *s, unsigned cpu);
void distvm_io_fail_waits_on(DistvmState *s, uint32_t node);
bool distvm_io_forwarded(DistvmState *s);
bool distvm_io_replay_a20(DistvmState *s, CPUState *cpu, bool enabled);
/* Under the BQL: the accesses done here for other nodes, by device */
DistvmIoServedList *distvm_io_served(DistvmState *s);
/*
 * Send vCPU @cs's access to the home node and wait for its result, with
 * the BQL released if this thread held it.  @data is little-endian.
 */
MemTxResult distvm_io_forward(DistvmState *s, CPUState *cs, uint32_t space,
                              uint64_t addr, uint64_t *data, unsigned size,
                              bool is_write);

/* distvm-paravirt.c: the guest's hypercall for remote TLB flushes */
void distvm_paravirt_init(DistvmState *s);

/* distvm-tlbflush.c */
void distvm_tlb_flush_init(DistvmState *s);
/*
 * vCPU @cs, on its thread, flushes the TLBs of the vCPUs @vcpus names (a
 * bit each by index, itself included or not) wherever they run.  Returns
 * false, with the flush perhaps partly done, if the vCPU is asked to
 * leave the guest's code before every node answered: it is to ask again.
 */
bool distvm_tlb_flush(DistvmState *s, CPUState *cs, uint64_t vcpus);
/* The cluster ends, or node @node was lost: flushes wait for it no more */
void distvm_tlb_flush_fail_waits(DistvmState *s);
void distvm_tlb_flush_fail_waits_on(DistvmState *s, uint32_t node);
/*
 * On vCPU @cs's thread, as it enters and leaves the guest's code
 * (cpu_exec()), with distvm_tlb_flush_init() done
 */
void distvm_tlb_flush_exec_enter(CPUState *cs);
void distvm_tlb_flush_exec_exit(CPUState *cs);
/* vCPU @cpu is unplugged, or plugged: not flushed while unplugged */
void distvm_tlb_flush_vcpu_present(DistvmState *s, uint32_t cpu,
                                   bool present);
/* Flushes asked of other nodes, and done here for them */
void distvm_tlb_flush_counts(DistvmState *s, uint64_t *asked,
                             uint64_t *done_for_others);

/* distvm-affinity.c */
void distvm_affinity_init(DistvmState *s);
/* The vCPU whose thread is @tid, or -1 */
int distvm_affinity_vcpu_of_thread(DistvmState *s, int tid);
/*
 * vCPU @cpu (-1: no vCPU) took a remote fault: a miss whose data node
 * @server sent, or an @upgrade.
 */
void distvm_affinity_fault(DistvmState *s, int cpu, bool upgrade,
                           uint32_t server);
/* vCPU @cpu sent a device access to the home node. */
void distvm_affinity_io(DistvmState *s, int cpu);
DistvmAffinityInfo *distvm_affinity_query(DistvmState *s);
/*
 * A policy move of vCPU @cpu here from node @from, where its remote cost
 * (a second) is @cost: whether this node has room for it
 */
bool distvm_affinity_admit(DistvmState *s, uint32_t cpu, uint32_t from,
                           uint64_t cost);
/* Node @node's speed property (DISTVM_WIRE_SPEED_ONE units); 0: unknown */
uint32_t distvm_node_speed(DistvmState *s, uint32_t node);
/* Its rank by speed: 1 for the fastest nodes, 2 for the next speed down */
uint32_t distvm_node_tier(DistvmState *s, uint32_t node);
/* vCPU @cpu now runs here, moved from @from for @reason (DistvmMoveWhy) */
void distvm_affinity_arrived(DistvmState *s, uint32_t cpu, uint32_t from,
                             uint32_t reason);

/* distvm-numa.c */
/* auto-numa: a guest NUMA node per cluster node that runs vCPUs */
bool distvm_numa_auto(DistvmState *s, MachineState *ms, Error **errp);
/*
 * Home the guest NUMA nodes' memory, and give the CPU slots auto-numa
 * listed early their type; once NUMA is configured, before ACPI.
 */
void distvm_numa_plan(DistvmState *s, MachineState *ms);
/* The node that owns @rb's pages at power-on; @homed: by the NUMA layout */
uint32_t distvm_numa_block_home(DistvmState *s, RAMBlock *rb, bool *homed);
uint32_t distvm_numa_vcpu_home(DistvmState *s, unsigned cpu);
void distvm_ram_clear_home(DistvmState *s, RAMBlock *rb);

/* distvm-topology.c */
void distvm_placement_notify(DistvmState *s, DistvmPlacementChange what);

/* distvm-residency.c */
#define DISTVM_RESIDENT_MAX     16
bool distvm_residency_init(DistvmState *s, Error **errp);
/* The ranges of guest RAM resident on a node so far */
static inline uint32_t distvm_residency_count(DistvmState *s)
{
    return qatomic_load_acquire(&s->nr_resident);
}
bool distvm_residency_setup(DistvmState *s, Error **errp);
/*
 * vCPU @cs is about to access @addr: does not return if it must move;
 * true if @addr is resident on another node, which this node's overlay
 * has do the access.
 */
bool distvm_residency_vcpu_access(DistvmState *s, CPUState *cs,
                                  hwaddr addr, uintptr_t ra);
DistvmResidentRangeList *distvm_residency_query(DistvmState *s);
void distvm_residency_send_state(DistvmState *s, uint32_t node);
bool distvm_residency_changing(DistvmState *s);

/* distvm-devices.c */
bool distvm_devices_init(DistvmState *s, Error **errp);
bool distvm_devices_setup(DistvmState *s, Error **errp);
/*
 * The placed device that answers an access of @space (DISTVM_IO_PORT or
 * _MEMORY) at @addr, or NULL; and if there is one, where the access (a
 * write of @data if @is_write) goes: @r.  Any thread.
 */
DistvmPlacedDevice *distvm_devices_route(DistvmState *s, uint32_t space,
                                         uint64_t addr, uint64_t data,
                                         bool is_write, DistvmIoRoute *r);
/* The placed device whose model is @dev, or NULL */
DistvmPlacedDevice *distvm_devices_find(DistvmState *s, PCIDevice *dev);
bool distvm_devices_placed(DistvmState *s, PCIDevice *dev);
uint32_t distvm_devices_count(DistvmState *s);
DistvmPlacedDevice *distvm_devices_get(DistvmState *s, uint32_t i);
/* While the properties are parsed: the device @name, placed on home if new */
DistvmPlacedDevice *distvm_devices_card(DistvmState *s, const char *name);
/*
 * The name of a device placed on @node, or of a card whose pairs it
 * serves (if @pairs), or NULL if none is
 */
const char *distvm_devices_on_node(DistvmState *s, uint32_t node,
                                   bool pairs);
/* Whether this node runs devices placed on it (not home) */
bool distvm_devices_run_here(DistvmState *s);
/* Under the BQL: a placed device's configuration was written here */
void distvm_devices_config_written(DistvmState *s, PCIDevice *dev);
/*
 * Under the BQL: have @fn(@msg), an IO_REQ, run once this node applied
 * home's PCI_CONFIG @gen; true if it must wait (@msg is copied) or, made
 * before a node was lost, failed; false if it may run now.
 */
bool distvm_devices_config_wait(DistvmState *s, uint64_t gen,
                                const DistvmMsg *msg,
                                void (*fn)(DistvmState *s,
                                           const DistvmMsg *msg));
/* Under the BQL: home's PCI_CONFIG s->config_gen was applied here */
void distvm_devices_config_applied(DistvmState *s);
/*
 * In the main loop, a node was lost: the accesses that wait, and those
 * that come until this node rolls back for the loss, fail
 */
void distvm_devices_config_waits_fail(DistvmState *s);
void distvm_devices_reset(DistvmState *s);
/*
 * A rollback, under the BQL with the guest paused: every device placed
 * away from home goes to home (a card of queue-nodes, which runs on home,
 * to its standby in its place); those the
 * epoch did not find on @saved_home, the home that saved the devices'
 * state, are taken from the state their node saved (taken_from)
 */
void distvm_devices_go_home(DistvmState *s, uint32_t saved_home);
/*
 * Home, the devices' state loaded after a rollback: the root bus's INTx
 * lines are driven as the devices it runs now say
 */
void distvm_devices_rolled_back(DistvmState *s);
/*
 * Home: whether @d, brought home by a rollback, goes back to its node
 * now: that node is part of the cluster (never lost or left since, not
 * being drained) and, for a card whose tap it watches, its path is up
 */
bool distvm_devices_goes_back(DistvmState *s, DistvmPlacedDevice *d);
/*
 * Home, the guest paused at the end of a rollback (the devices' state
 * loaded) or of a checkpoint epoch: send each device a rollback brought
 * home back to its node, if it goes back now (DEVICE_AWAY)
 */
void distvm_devices_send_away(DistvmState *s);
/* Home: tell joining node @node which devices a rollback brought home */
void distvm_devices_send_state(DistvmState *s, uint32_t node);
/* This node saved its data for checkpoint epoch @epoch, the guest paused */
void distvm_devices_saved(DistvmState *s, uint64_t epoch);
/* Epoch @epoch committed here; in any thread, under the epochs' lock */
void distvm_devices_committed(DistvmState *s, uint64_t epoch);
/* In any thread: @node left the cluster (drained) */
void distvm_devices_node_left(DistvmState *s, uint32_t node);
/* Whether home takes a device from the state that @node saved */
bool distvm_devices_taken_from(DistvmState *s, uint32_t node);
DistvmDeviceInfoList *distvm_devices_query(DistvmState *s);

/* distvm-devpath.c */
/* With replicas=1, watch the tap of @d's card if this node runs it */
void distvm_devpath_setup(DistvmState *s, DistvmPlacedDevice *d);
/*
 * Home: @d's node @node says its path is @up now.  False if @d is no
 * card of device-nodes with replicas=1.
 */
bool distvm_devpath_changed(DistvmState *s, DistvmPlacedDevice *d,
                            uint32_t node, bool up);
/* Home: false if @d's node said that its path is down, and not up since */
bool distvm_devpath_up(DistvmPlacedDevice *d);
/*
 * After a rollback, on a node other than home: tell home again whether
 * the paths of the cards placed here are up, if home changed since
 */
void distvm_devpath_rolled_back(DistvmState *s);

/* distvm-placed-state.c */
/* Whether device @d may run where it is placed, with replicas=1 */
bool distvm_placed_state_check(DistvmState *s, DistvmPlacedDevice *d,
                               Error **errp);
/* The state of the devices placed on this node, for an epoch */
bool distvm_placed_state_save(DistvmState *s, GByteArray *out, Error **errp);
/* Home: load the devices taken from @node, from the @state it saved */
bool distvm_placed_state_load(DistvmState *s, uint32_t node,
                              const GByteArray *state, Error **errp);
/* Home: the state of @d, to send it back to its node */
bool distvm_placed_state_save_one(DistvmPlacedDevice *d, GByteArray *out,
                                  Error **errp);
/* @d's node: load the @len bytes of @state that home sent */
bool distvm_placed_state_load_one(DistvmPlacedDevice *d, const uint8_t *state,
                                  uint32_t len, Error **errp);

/* distvm-qmp.c */
/*
 * The state of a QMP @command asked of the home node of a cluster, or
 * NULL with an error naming home if distvm is not the accelerator or
 * this node is not home
 */
DistvmState *distvm_qmp_home(const char *command, Error **errp);

/* distvm-netqueues.c */
/* Parse queue-nodes: its cards become placed devices (home's by default) */
bool distvm_netqueues_init(DistvmState *s, Error **errp);
void distvm_netqueues_register(DistvmState *s);
/* The machine exists: check @pd's card and take its tap's queues apart */
bool distvm_netqueues_setup(DistvmState *s, DistvmPlacedDevice *pd,
                            Error **errp);
/* Under the BQL: the guest wrote the PCI configuration of @pd's card */
void distvm_netqueues_config_written(DistvmState *s, DistvmPlacedDevice *pd);
/* Does @node serve a queue pair of @pd, as a node other than its own? */
bool distvm_netqueues_serves(DistvmPlacedDevice *pd, uint32_t node);
/*
 * distvm_devices_route() for a card of queue-nodes: an access at @offset
 * of its region @bar
 */
void distvm_netqueues_route(DistvmState *s, DistvmPlacedDevice *pd, int bar,
                            uint64_t offset, uint64_t data, bool is_write,
                            DistvmIoRoute *r);
/* This node handled the notification of @queue (>= 0) of @pd */
void distvm_netqueues_handled(DistvmPlacedDevice *pd, int queue);
/*
 * Another node's notification of queue @queue of @pd's card reached this
 * node, which knows that node @node serves it now: pass it on there.
 * False if @queue is no queue of a pair.
 */
bool distvm_netqueues_pass_on(DistvmState *s, DistvmPlacedDevice *pd,
                              int queue, uint32_t node);
DistvmQueuePairInfoList *distvm_netqueues_query(DistvmPlacedDevice *pd);
/* Under the BQL: the cluster runs; tell home of this node's paths */
void distvm_netqueues_cluster_running(DistvmState *s);
/* Checkpoint epochs: home saves the pairs' places, and after a rollback */
void distvm_netqueues_checkpoint(DistvmState *s);
void distvm_netqueues_saved(DistvmState *s);
void distvm_netqueues_committed(DistvmState *s);
const char *distvm_netqueues_changed(DistvmState *s);
void distvm_netqueues_rolled_back(DistvmState *s);
void distvm_netqueues_card_home(DistvmState *s, DistvmPlacedDevice *pd);
void distvm_netqueues_resume(DistvmState *s);
/* Home: tell node @node, which joins, where the pairs are served now */
void distvm_netqueues_send_state(DistvmState *s, uint32_t node);

/* distvm-netpath.c */
typedef struct DistvmNetPath DistvmNetPath;
typedef void DistvmNetPathChanged(void *opaque);
/*
 * Watch the state of this host's network interface @ifname: @changed runs
 * in the main loop when it goes down, or once it came up and stayed up
 * for @up_delay_ms, as distvm_netpath_up() then says (it is taken to be up
 * until the host says otherwise)
 */
DistvmNetPath *distvm_netpath_watch(const char *ifname, uint32_t up_delay_ms,
                                    DistvmNetPathChanged *changed,
                                    void *opaque, Error **errp);
bool distvm_netpath_up(DistvmNetPath *p);
/* The same for the host's interface of tap backend @tap */
DistvmNetPath *distvm_netpath_watch_tap(NetClientState *tap,
                                        uint32_t up_delay_ms,
                                        DistvmNetPathChanged *changed,
                                        void *opaque, Error **errp);

/* distvm-plug.c */
void distvm_plug_init(DistvmState *s);
/* Home: send @msg to every other node; returns a node that is gone, or -1 */
int distvm_plug_send_all(DistvmState *s, GByteArray *msg);
/* Home: whether every node answers, so that @what may be plugged */
bool distvm_plug_nodes_heard(DistvmState *s, const char *what, Error **errp);
/*
 * Home, with the BQL: the sequence number of a new plug to ask for, to
 * which the nodes answer with messages of type @answer
 */
uint64_t distvm_plug_ask(DistvmState *s, DistvmMsgType answer);
/*
 * Home, with the BQL: send @msg, plug @seq, to every other node and wait
 * until each answered, at most peer-timeout; false, with @errp naming
 * @what, if one is gone, refused or did not answer.
 */
bool distvm_plug_send_wait(DistvmState *s, GByteArray *msg, uint64_t seq,
                           const char *what, Error **errp);
/* The same, to node @node only (a node that joins the running guest) */
bool distvm_plug_send_wait_node(DistvmState *s, GByteArray *msg,
                                uint64_t seq, uint32_t node,
                                const char *what, Error **errp);
/*
 * A node, in the main loop: answer home's plug @msg (MEM_PLUG or CPU_PLUG,
 * of RAMBlock or vCPU @index, which is @what) with @err, or that it is
 * plugged if NULL; takes @err.
 */
void distvm_plug_reply(DistvmState *s, const DistvmMsg *msg, uint32_t index,
                       const char *what, Error *err);
/* A node's answer @msg to a plug: @error, or "" if it plugged it */
void distvm_plug_answered(DistvmState *s, const DistvmMsg *msg,
                          const char *error);
/*
 * A node, in the main loop: create the device a plug of home's describes
 * in @json (its driver, a @type, which is @what, and its properties), as
 * if cold-plugged: its id and properties set, not realized.  NULL, with
 * @errp set, if it cannot be.
 */
DeviceState *distvm_plug_new_device(const char *json, const char *type,
                                    const char *what, Error **errp);
/*
 * Realize @dev, of distvm_plug_new_device(); if it fails, it is deleted.
 * Either way the reference distvm_plug_new_device() gave is dropped.
 */
bool distvm_plug_realize(DeviceState *dev, Error **errp);

/* distvm-memplug.c */
void distvm_memplug_init(DistvmState *s);
/*
 * Home, with the BQL: have @node, which joins the running guest and has
 * started its RAM, plug the DIMMs plugged into the guest, and wait.
 */
bool distvm_memplug_send_state(DistvmState *s, uint32_t node, Error **errp);

/* distvm-cpuplug.c */
void distvm_cpuplug_init(DistvmState *s);
/*
 * Home, with the BQL: have @node, which joins the running guest, plug the
 * CPUs plugged into the guest, and wait.
 */
bool distvm_cpuplug_send_state(DistvmState *s, uint32_t node, Error **errp);
/*
 * A vCPU is realized: whether it runs elsewhere, so that its thread here
 * must stay parked.
 */
void distvm_cpuplug_realize(DistvmState *s, CPUState *cpu);
/* With the BQL: whether this node plugs @cpu because home asked it to */
bool distvm_cpuplug_mirroring(CPUState *cpu);

/* distvm-flow.c */
void distvm_flow_init(DistvmState *s);
/* @node is sent @m: count it if FLOW does */
void distvm_flow_count_sent(DistvmState *s, uint32_t node,
                            const GByteArray *m);
/*
 * This node is done with @msg (handled, refused, or run by the main
 * loop): count it if FLOW does, and tell its sender every so often.
 */
void distvm_flow_done(DistvmState *s, const DistvmMsg *msg);
/*
 * This node sent work for the main loops of @nodes (a mask), which the
 * guest made: if it is a window ahead of one, the vCPU that made it waits
 * before its next translation block (on its own thread), or its access
 * replayed here for another node is answered later (distvm_io_*).
 */
void distvm_flow_sent(DistvmState *s, uint32_t nodes);
/*
 * The answer @m to @dest's access, which made work for @nodes: if this
 * node is a window ahead of one, it is sent once it is not (at most
 * DISTVM_FLOW_WAIT_MAX_MS later), and true is returned.
 */
bool distvm_flow_hold_reply(DistvmState *s, uint32_t nodes, uint32_t dest,
                            GByteArray *m);
/* Node @node's connection is new: both count its messages from 0 again. */
void distvm_flow_forget(DistvmState *s, uint32_t node);

/* distvm-pic.c */
void distvm_pic_init(DistvmState *s);
void distvm_pic_output_resend(DistvmState *s);

/* distvm-pause.c */
void distvm_pause_init(DistvmState *s);
uint8_t distvm_pic_acknowledge(void);
void distvm_pic_vcpu_arrived(CPUState *cs);

/* distvm-vcpu.c */
void distvm_vcpu_init(DistvmState *s);
void distvm_vcpu_start(DistvmState *s);
void distvm_vcpu_park_foreign(DistvmState *s);
void distvm_vcpu_stop_foreign_timers(DistvmState *s);
/*
 * QEMU's state in memory: @save writes it, appended to @out (about @hint
 * bytes); @load reads @len bytes at @data.  0 or a negative errno.
 */
int distvm_state_save(GByteArray *out, size_t hint,
                      int (*save)(QEMUFile *f, void *opaque), void *opaque);
int distvm_state_load(const uint8_t *data, size_t len,
                      int (*load)(QEMUFile *f, void *opaque), void *opaque);
/* Tell the other nodes @cpu's LAPIC addressing, as it changes */
void distvm_vcpu_tell_apic(CPUState *cpu);
void distvm_vcpu_send_state(DistvmState *s, uint32_t node);
/* Ask node @node to move vCPU @cpu to node @to, for @reason, with @value */
void distvm_vcpu_request_move(DistvmState *s, uint32_t cpu, uint32_t node,
                              uint32_t to, uint32_t reason, uint64_t value);
/* Whether vCPU @cpu may run on @node (distvm-set-vcpu-nodes) */
bool distvm_vcpu_allowed(DistvmState *s, uint32_t cpu, uint32_t node);
/* The nodes it may run on, or NULL if every node */
uint32List *distvm_vcpu_allowed_nodes(DistvmState *s, uint32_t cpu);
/* Whether vCPU @cpu is leaving this node or arriving */
bool distvm_vcpu_moving(DistvmState *s, uint32_t cpu);
bool distvm_vcpu_sending(DistvmState *s, uint32_t cpu);
uint64_t distvm_vcpu_seen(DistvmState *s, uint32_t cpu, bool *runs);
void distvm_vcpu_place(DistvmState *s, uint32_t cpu, uint32_t node,
                       uint64_t generation);
/* A vCPU's state as a move sends it (its VMState), appended to @out */
bool distvm_vcpu_save(CPUState *cpu, GByteArray *out, Error **errp);
bool distvm_vcpu_load(CPUState *cpu, const uint8_t *state, size_t len,
                      Error **errp);
int distvm_vcpu_forward_interrupt(CPUState *cpu, int mask);

/* distvm-runstate.c */
void distvm_runstate_init(DistvmState *s);
void distvm_runstate_take_home(DistvmState *s);
/* The guest's TSC, the same on every node (AccelOpsClass get_elapsed_ticks) */
int64_t distvm_guest_ticks(void);

/* distvm-leave.c */
void distvm_leave_init(DistvmState *s);
/*
 * This node leaves in order, its vCPUs stopped and its devices drained:
 * every other node stops its guest and drains its I/O before it returns.
 */
void distvm_leave_end_cluster(DistvmState *s);
/* A node said BYE: its leave is over, no ENDED is awaited from it. */
void distvm_leave_peer_bye(DistvmState *s, uint32_t node);
/*
 * Whether a node ends the cluster: this node's guest stops for good, and
 * no device access is answered any more.
 */
bool distvm_leave_ending(DistvmState *s);
void distvm_runstate_start(DistvmState *s);
void distvm_hold_vcpus(bool hold);
/* The guest paused for a checkpoint epoch, without a run state change */
void distvm_guest_pause(DistvmState *s, uint64_t epoch);
bool distvm_guest_paused_whole(void);
bool distvm_guest_paused(void);
void distvm_guest_resume(DistvmState *s);
#define DISTVM_RUN_ALL  UINT32_MAX    /* distvm_runstate_send(): the others */
void distvm_runstate_send(DistvmState *s, uint32_t nodes,
                          DistvmRunAction action, uint64_t number);

/* distvm-ram.c */
bool distvm_ram_init(DistvmState *s, Error **errp);
void distvm_ram_fingerprint(GPtrArray *keys, GPtrArray *values);
bool distvm_ram_start(DistvmState *s, Error **errp);
void distvm_ram_leaving(DistvmState *s);
void distvm_ram_limits(DistvmState *s, DistvmWireLimits *lim);
/* Memory plugged while the guest runs, as entry @index of the table */
uint32_t distvm_ram_next_block(DistvmState *s);
bool distvm_ram_plug_prepare(DistvmState *s, RAMBlock *rb, uint32_t index,
                             Error **errp);
void distvm_ram_plug(DistvmState *s, RAMBlock *rb, uint32_t index);
void distvm_ram_plug_unprepare(DistvmState *s, RAMBlock *rb);
void distvm_ram_plug_abandon(DistvmState *s, uint32_t index, RAMBlock *rb);
int distvm_ram_unplug(DistvmState *s, RAMBlock *rb);
/* The RAMBlock of entry @index, or NULL if it is dead or not there */
RAMBlock *distvm_ram_block(DistvmState *s, uint32_t index);

#endif /* ACCEL_DISTVM_INTERNAL_H */
