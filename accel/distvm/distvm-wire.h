/*
 * distvm wire protocol: message format, encoder and validating decoder
 *
 * Every message is a 24-byte little-endian header followed by a payload
 * of header.length bytes:
 *
 *   u32 magic  "DVMP"      u16 version     u16 type
 *   u32 length             u32 src (sending node)
 *   u64 seq (request id; echoed by replies where the type says so)
 *
 * The decoder checks every field against DistvmWireLimits before a
 * message is handed to the protocol.  It has no QEMU-global state so that
 * it can be unit-tested and fuzzed on its own.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ACCEL_DISTVM_WIRE_H
#define ACCEL_DISTVM_WIRE_H

#define DISTVM_WIRE_MAGIC       0x504d5644u     /* "DVMP" */
#define DISTVM_WIRE_VERSION     32
#define DISTVM_WIRE_HDR_SIZE    24
#define DISTVM_WIRE_MAX_PAYLOAD (1u << 20)
#define DISTVM_WIRE_MAX_STR     4096
#define DISTVM_WIRE_MAX_ITEMS   1024
#define DISTVM_WIRE_MAX_NODES   16
/* HELLO's node id of a node that asks home for one */
#define DISTVM_WIRE_NODE_ANY    UINT32_MAX
/* RAMBlock indexes are below this */
#define DISTVM_WIRE_MAX_BLOCKS  1024
/* A node's relative speed (the speed property), in thousandths */
#define DISTVM_WIRE_SPEED_ONE   1000
#define DISTVM_WIRE_SPEED_MIN   1
#define DISTVM_WIRE_SPEED_MAX   (1000 * DISTVM_WIRE_SPEED_ONE)
#define DISTVM_PAGE_SIZE        4096
#define DISTVM_PCI_CONFIG_SPACE 4096    /* PCI Express extended space */

typedef enum DistvmMsgType {
    DISTVM_MSG_HELLO = 1,       /* joining node -> home: fingerprint */
    DISTVM_MSG_WELCOME,         /* home -> node: every node's address */
    DISTVM_MSG_REFUSE,          /* home -> node: why it may not join */
    DISTVM_MSG_PEER_HELLO,      /* node -> node: opens a mesh connection */
    DISTVM_MSG_READY,           /* node -> home: mesh complete */
    DISTVM_MSG_START,           /* home -> node: the cluster is formed */
    DISTVM_MSG_PAGE_REQ,        /* requester -> manager */
    DISTVM_MSG_PAGE_FWD,        /* manager -> holder: send the page */
    DISTVM_MSG_PAGE_DATA,       /* holder -> requester: the page */
    DISTVM_MSG_PAGE_INV,        /* manager -> sharer: drop your copy */
    DISTVM_MSG_PAGE_INV_ACK,    /* sharer -> manager: dropped */
    DISTVM_MSG_PAGE_GRANT,      /* manager -> requester: you own it now */
    DISTVM_MSG_PAGE_DONE,       /* requester -> manager: placed */
    DISTVM_MSG_PING,            /* round trip probe */
    DISTVM_MSG_PONG,
    DISTVM_MSG_BYE,             /* orderly leave */
    DISTVM_MSG_NODE_LOST,       /* the sender lost its connection to a node */
    DISTVM_MSG_VCPU_MOVE,       /* -> the vCPU's owner: move it */
    DISTVM_MSG_VCPU_STATE,      /* source -> destination: the vCPU */
    DISTVM_MSG_VCPU_MOVED,      /* destination -> all: it runs there now */
    DISTVM_MSG_VCPU_IPI,        /* -> the vCPU's owner: deliver to its LAPIC */
    DISTVM_MSG_PCI_CONFIG,      /* home -> all: a chipset config write */
    DISTVM_MSG_IO_REQ,          /* -> home or a device's node: an access */
    DISTVM_MSG_IO_REPLY,        /* its result */
    DISTVM_MSG_VCPU_APIC,       /* owner -> all: how its LAPIC is addressed */
    DISTVM_MSG_RUN_STATE,       /* run, stop, reset (home -> all); clocks */
    DISTVM_MSG_PIC_OUTPUT,      /* home -> all: the 8259's output level */
    DISTVM_MSG_CLOCK_REGS,      /* home -> all: where clock registers are */
    DISTVM_MSG_HEARTBEAT,       /* node -> node: still here (peer-timeout) */
    DISTVM_MSG_POLICY,          /* -> home: set it; home -> all: it is set */
    DISTVM_MSG_VCPU_WARM_PAGES, /* a move's source -> its destination */
    DISTVM_MSG_MEM_PLUG,        /* home -> all: plug a memory device */
    DISTVM_MSG_MEM_PLUG_ACK,    /* node -> home: plugged, or why not */
    DISTVM_MSG_MEM_UNPLUG,      /* home -> all: unplug a memory device */
    DISTVM_MSG_RES_ACCESS,      /* -> a range's node: access it for me */
    DISTVM_MSG_RES_REPLY,       /* its result */
    DISTVM_MSG_VCPU_NODES,      /* -> all: where a vCPU may run */
    DISTVM_MSG_PCI_INTX,        /* a device's node -> home: INTx line level */
    DISTVM_MSG_RES_SET,         /* a range becomes resident: its steps */
    DISTVM_MSG_END,             /* a leaving node: stop, drain, answer */
    DISTVM_MSG_ENDED,           /* -> it: stopped, the I/O drained */
    DISTVM_MSG_CPU_PLUG,        /* home -> all: plug a CPU */
    DISTVM_MSG_CPU_PLUG_ACK,    /* node -> home: plugged, or why not */
    DISTVM_MSG_CPU_UNPLUG,      /* home -> all: unplug a CPU */
    DISTVM_MSG_PAGE_REQS,       /* requester -> manager: several PAGE_REQs */
    DISTVM_MSG_NODE_JOINING,    /* home -> all: a node joins the guest */
    DISTVM_MSG_VCPU_WHERE,      /* home -> a joining node: a vCPU's node */
    DISTVM_MSG_NODE_JOINED,     /* home -> all: it is part of the cluster */
    DISTVM_MSG_NODE_DRAIN,      /* home -> all: a node is being drained */
    DISTVM_MSG_DRAIN_PAGES,     /* home -> a manager: take its pages back */
    DISTVM_MSG_DRAINED,         /* a manager -> home: it holds none */
    DISTVM_MSG_NODE_LEFT,       /* home -> all: it left the cluster */
    DISTVM_MSG_FLOW,            /* -> a sender: its messages done with */
    DISTVM_MSG_MGR_MOVE,        /* a node's part of the directory moves */
    DISTVM_MSG_MGR_ENTRIES,     /* its entries, to the node it moves to */
    DISTVM_MSG_EPOCH,           /* a checkpoint epoch's steps */
    DISTVM_MSG_EPOCH_PAGES,     /* a node -> its replica: pages it changed */
    DISTVM_MSG_EPOCH_STATE,     /* ... its vCPUs; home -> standby: devices */
    DISTVM_MSG_NET_CTRL,        /* a card's node -> its pairs': a command */
    DISTVM_MSG_VCPU_FLUSH,      /* -> every node: flush these vCPUs' TLBs */
    DISTVM_MSG_VCPU_FLUSHED,    /* -> the asker: done with them here */
    DISTVM_MSG_NET_PAIR,        /* a card's queue pair moves to a node */
    DISTVM_MSG_DEVICE_HOME,     /* home -> a joining node: a device came */
    DISTVM_MSG_DEVICE_AWAY,     /* home -> all: a device goes to its node */
    DISTVM_MSG__MAX
} DistvmMsgType;

/* DistvmMsgVcpu.value of VCPU_APIC, above the addressing (bits 0-19) */
#define DISTVM_APIC_X2APIC      (1u << 20)  /* APIC base: x2APIC mode */
#define DISTVM_APIC_ENABLED     (1u << 21)  /* APIC base: enabled */
#define DISTVM_APIC_SW_ENABLED  (1u << 22)  /* spurious vector: enabled */
#define DISTVM_APIC_VALUE_BITS  23

/*
 * DistvmMsgVcpu.value of VCPU_IPI: the delivery mode that is not an APIC
 * one (3 is reserved there) but the vCPU's A20 line.
 */
#define DISTVM_DM_A20           3

/* Why a vCPU moves: DistvmMsgVcpu.reason of VCPU_MOVE, _STATE, _MOVED */
typedef enum DistvmMoveWhy {
    DISTVM_MOVE_COMMAND,        /* distvm-move-vcpu */
    DISTVM_MOVE_POLICY,         /* the placement policy: for its data */
    DISTVM_MOVE_TIER,           /* the placement policy: to a faster node */
    DISTVM_MOVE_GUEST,          /* the guest, through distmem-topology */
    DISTVM_MOVE_RESIDENCY,      /* it touched RAM resident elsewhere */
    DISTVM_MOVE_CONSOLIDATE,    /* the placement policy: to fewer nodes */
    DISTVM_MOVE_DRAIN,          /* off a node being drained */
    DISTVM_MOVE__MAX
} DistvmMoveWhy;

/* A move the policy decided: admitted by its destination first. */
static inline bool distvm_move_by_policy(uint32_t reason)
{
    return reason == DISTVM_MOVE_POLICY || reason == DISTVM_MOVE_TIER ||
           reason == DISTVM_MOVE_CONSOLIDATE;
}

/* POLICY: the placement policy, below this (QAPI's DistvmPolicy) */
#define DISTVM_POLICY_COUNT     2

/* DistvmMsgPage.flags */
#define DISTVM_PAGE_WRITE       0x01    /* REQ/FWD: exclusive; DATA: placed E */
#define DISTVM_PAGE_ZERO        0x02    /* DATA: all-zero page, no bytes */
#define DISTVM_PAGE_HAS_COPY    0x04    /* REQ: requester holds a current S */
#define DISTVM_PAGE_DROP        0x08    /* FWD: drop your copy, then ack */
#define DISTVM_PAGE_RUN         0x10    /* FWD(WRITE) from itself: give the
                                           untouched pages after it too;
                                           DATA(WRITE|ZERO): one of them */
#define DISTVM_PAGE_FINAL       0x20    /* DATA(read) or GRANT from the
                                           manager: no PAGE_DONE */
#define DISTVM_PAGE_FLAGS_ALL   0x3f

typedef struct DistvmMsgHeader {
    uint32_t magic;
    uint16_t version;
    uint16_t type;
    uint32_t length;
    uint32_t src;
    uint64_t seq;
} DistvmMsgHeader;

/* What a decoded message may refer to. */
typedef struct DistvmWireLimits {
    uint32_t nodes;             /* node ids are below this */
    uint32_t nr_vcpus;          /* vCPU indexes are below this */
    uint32_t home;              /* the home node now (DISTVM_HOME_NODE) */
    uint32_t nr_blocks;         /* 0 until the RAMBlock table is agreed */
    const uint64_t *block_pages;    /* pages in each RAMBlock */
} DistvmWireLimits;

typedef struct DistvmMsgHello {
    uint32_t node_id;
    uint32_t nodes;
    char *listen;
    uint32_t speed;             /* DISTVM_WIRE_SPEED_MIN..MAX */
    uint32_t nr_items;          /* fingerprint: ordered key/value pairs */
    char **keys;
    char **values;
} DistvmMsgHello;

typedef struct DistvmMsgWelcome {
    uint32_t nodes;
    uint32_t node_id;           /* of the node welcomed */
    char **addrs;               /* [nodes] listen address of every node */
    uint32_t *speeds;           /* [nodes] and its speed */
} DistvmMsgWelcome;

typedef struct DistvmMsgPage {
    uint32_t block;
    uint64_t page;
    uint32_t node;              /* REQ/FWD: the requester */
    uint32_t flags;
    const uint8_t *data;        /* DATA without ZERO: points into payload */
} DistvmMsgPage;

/*
 * VCPU_MOVE: @from is the node that asked, @to the destination; for
 *   the policy, @value is the vCPU's remote cost (a second) where it runs.
 * VCPU_STATE: @from the source, @to the destination, @value the time
 *   (CLOCK_REALTIME, ns) the vCPU stopped, @data/@len its state.
 * VCPU_MOVED: @from, @to, @value the downtime in ns.
 * VCPU_MOVE, VCPU_STATE and VCPU_MOVED: @reason, DistvmMoveWhy; 0 in the
 *   other VCPU_* messages.
 * VCPU_IPI: @from the sending node, @to the node it was sent to, @value
 *   delivery mode | vector << 8 | trigger mode << 16; or, for the vCPU's
 *   A20 line (an input of the processor, as NMI is), DISTVM_DM_A20 |
 *   enabled << 8.
 * VCPU_NODES: @from and @to the sending node, @value the nodes the vCPU
 *   may run on, a bit each (not 0).
 * VCPU_APIC: @from the vCPU's node, @to the node it was sent to, @value
 *   APIC ID | logical destination << 8 | destination format << 16 |
 *   DISTVM_APIC_* flags.
 * VCPU_FLUSH: vCPU @cpu, of node @from, asks node @to to flush the TLBs
 *   of the vCPUs @value names, a bit each by index (not 0); the header's
 *   seq numbers the vCPU's flushes (distvm-tlbflush.c).
 * VCPU_FLUSHED: node @from answers @to that it flushed those of its
 *   vCPUs that @cpu's flush seq named; @value is 0.
 */
typedef struct DistvmMsgVcpu {
    uint32_t cpu;
    uint32_t from;
    uint32_t to;
    uint32_t reason;
    uint64_t value;
    const uint8_t *data;        /* VCPU_STATE: points into payload */
    uint32_t len;
} DistvmMsgVcpu;

/*
 * PCI_CONFIG: @len bytes of @val written at @addr of device @path; its
 * seq numbers home's PCI_CONFIGs, from 1 (DISTVM_IO_CONFIG_GEN).
 */
typedef struct DistvmMsgPciConfig {
    char *path;                 /* the device's QOM path */
    uint32_t addr;
    uint32_t val;
    uint32_t len;
} DistvmMsgPciConfig;

/* IO_REQ / IO_REPLY */
#define DISTVM_IO_PORT          0       /* the port I/O space */
#define DISTVM_IO_MEMORY        1       /* the vCPU's memory address space */
#define DISTVM_IO_SMM           2       /* the same, in SMM */
/*
 * The 8259's acknowledge cycle: @addr 0, @size 1, not a write; the reply
 * carries the vector in @data.
 */
#define DISTVM_IO_PIC_ACK       3
#define DISTVM_IO_WRITE         0x01    /* IO_REQ flags */
/*
 * IO_REQ to a node that runs a placed device: @config_gen follows, the
 * last of home's PCI_CONFIGs (numbered by their seq) that the requester
 * had applied; the device's node applies it too before the access.
 */
#define DISTVM_IO_CONFIG_GEN    0x02
#define DISTVM_IO_STOP          0x100   /* IO_REPLY: the access stops it */
/* IO_REPLY of a port access: it set the vCPU's A20 line, _A20_ON or off */
#define DISTVM_IO_A20           0x400
#define DISTVM_IO_A20_ON        0x800
/*
 * IO_REQ and IO_REPLY of a port access: @regs follow, the vCPU's general
 * registers before the access and after it, for the devices that read
 * and write them (VMware's I/O port).
 */
#define DISTVM_IO_REGS          0x200
/* RAX, RCX, RDX, RBX, RSP, RBP, RSI and RDI, in the order of env->regs */
#define DISTVM_IO_NR_REGS       8

/*
 * flags: REQ: _WRITE, _REGS, _CONFIG_GEN; REPLY: MemTxResult, _STOP,
 * _REGS, _A20*
 */
typedef struct DistvmMsgIo {
    uint32_t cpu;               /* the vCPU that made the access */
    uint32_t space;             /* DISTVM_IO_PORT, _MEMORY, _SMM, _PIC_ACK */
    uint32_t size;              /* 1, 2 or 4 bytes; or 8 for memory */
    uint32_t flags;
    uint64_t addr;
    uint64_t data;
    uint64_t regs[DISTVM_IO_NR_REGS];   /* with DISTVM_IO_REGS */
    uint64_t config_gen;                /* with DISTVM_IO_CONFIG_GEN */
} DistvmMsgIo;

/*
 * PCI_INTX, from a node that runs PCI devices to home: the level of the
 * interrupt line @irq of the root PCI bus (an input of the chipset's
 * interrupt router, as the bus's map_irq numbers them) that those
 * devices drive.
 */
#define DISTVM_PCI_INTX_MAX     64

typedef struct DistvmMsgIntx {
    uint32_t irq;               /* below DISTVM_PCI_INTX_MAX */
    uint32_t level;             /* 0 or 1 */
} DistvmMsgIntx;

/* RUN_STATE */
typedef enum DistvmRunAction {
    DISTVM_RUN_STOP,            /* pause the vCPUs */
    DISTVM_RUN_CONT,            /* run them, with the clocks given */
    DISTVM_RUN_RESET,           /* the machine is reset: reset the vCPUs */
    DISTVM_RUN_STOPPED,         /* node -> home: stopped, with its clocks */
    DISTVM_RUN_HOLD,            /* hold the vCPUs for join virtual_ns */
    DISTVM_RUN_HELD,            /* node -> home: held, for that join */
    DISTVM_RUN_RELEASE,         /* let them go (they run if the guest does) */
    DISTVM_RUN_PAUSE,           /* pause the guest for epoch virtual_ns */
    DISTVM_RUN_PAUSED,          /* node -> home: paused, for host_ns */
    DISTVM_RUN_UNPAUSE,         /* the epoch's pause ends, home's clocks */
    DISTVM_RUN__MAX
} DistvmRunAction;

/*
 * The home node's clocks, read together: the guest's virtual clock (ns)
 * and TSC, and the host's CLOCK_MONOTONIC (ns) and TSC they derive from.
 * @host_id tells whether the sender shares this node's host clocks.
 * STOPPED and PAUSED carry only the node's guest clock and TSC, and
 * PAUSED the epoch's number in @host_ns.
 */
typedef struct DistvmMsgRunState {
    uint32_t action;            /* DistvmRunAction */
    uint64_t virtual_ns;
    uint64_t guest_ticks;
    uint64_t host_ns;
    uint64_t host_ticks;
    uint64_t host_id;
} DistvmMsgRunState;

/* CLOCK_REGS.flags */
#define DISTVM_CLOCK_HPET           0x01    /* an HPET is at @hpet_base */
#define DISTVM_CLOCK_HPET_ENABLED   0x02    /* its main counter runs */
#define DISTVM_CLOCK_PM_TIMER       0x04    /* the ACPI PM timer is mapped */
#define DISTVM_CLOCK_FLAGS_ALL      0x07

/*
 * The registers that only read a clock, as the home node's devices have
 * them: the HPET's main counter (@hpet_counter while it is stopped, the
 * virtual clock plus @hpet_offset ns once it runs) and the port of the
 * ACPI PM timer.
 */
typedef struct DistvmMsgClockRegs {
    uint32_t flags;
    uint32_t pm_timer_port;
    uint64_t hpet_base;
    uint64_t hpet_counter;
    uint64_t hpet_offset;
} DistvmMsgClockRegs;

/*
 * VCPU_WARM_PAGES, from the source of a move to its destination, after
 * the vCPU's VCPU_STATE: pages the vCPU used last on the source (its
 * TLB's), which the destination asks for at once, so that the vCPU runs
 * warm.  On the wire: cpu, count, then count times block (u32), flags
 * (u32: DISTVM_WARM_WRITE if the vCPU wrote the page), page (u64).
 */
#define DISTVM_WARM_PAGES_MAX   512
#define DISTVM_WARM_WRITE       0x1

/* A page of guest RAM in a list: RAMBlock, flags, page in the block */
typedef struct DistvmPageRef {
    uint32_t block;
    uint32_t flags;
    uint64_t page;
} DistvmPageRef;

typedef struct DistvmMsgWarmPages {
    uint32_t cpu;
    uint32_t count;
    DistvmPageRef *pages;       /* [count] */
} DistvmMsgWarmPages;

/*
 * PAGE_REQS, from a requester to a manager: its PAGE_REQs for pages that
 * manager manages (a moved vCPU's warm pages), which the manager takes
 * in order under one hold of its directory.  On the wire: count, then
 * count times block (u32), flags (u32: DISTVM_PAGE_WRITE,
 * DISTVM_PAGE_HAS_COPY, as in a PAGE_REQ), page (u64).
 */
#define DISTVM_PAGE_REQS_MAX    DISTVM_WARM_PAGES_MAX
#define DISTVM_PAGE_REQ_FLAGS   (DISTVM_PAGE_WRITE | DISTVM_PAGE_HAS_COPY)

typedef struct DistvmMsgPageReqs {
    uint32_t count;
    DistvmPageRef *reqs;        /* [count] */
} DistvmMsgPageReqs;

/*
 * MEM_PLUG, home -> the others, while the guest runs: plug memory device
 * @device (a JSON object: its driver and properties) backed by a new
 * @backend_type object @backend_id of @size bytes, whose RAMBlock takes
 * index @slot on every node; the header's seq names the plug.
 * MEM_PLUG_ACK, back to home, with the same seq: @slot, and @error, empty
 * if the device is plugged.  MEM_UNPLUG, home -> the others: unplug the
 * memory device of RAMBlock @slot, and delete its backend.
 */
typedef struct DistvmMsgMemPlug {
    uint32_t slot;
    uint64_t size;
    char *backend_type;
    char *backend_id;
    char *device;
    char *error;
} DistvmMsgMemPlug;

/*
 * CPU_PLUG, home -> the others: plug a CPU, vCPU @cpu, that home's
 * device_add is plugging: @device is the JSON object of its driver, id
 * and APIC ID; the header's seq names the plug.  CPU_PLUG_ACK, back to
 * home, with the same seq: @cpu, and @error, empty if the CPU is plugged.
 * CPU_UNPLUG, home -> the others: unplug vCPU @cpu, which home unplugged.
 */
typedef struct DistvmMsgCpuPlug {
    uint32_t cpu;
    char *device;
    char *error;
} DistvmMsgCpuPlug;

/*
 * RES_ACCESS, to the node a range of guest RAM is resident on: read or
 * (with DISTVM_RES_WRITE) write @size bytes (1, 2, 4 or 8, naturally
 * aligned) at guest-physical @addr, @data in little-endian order; the
 * header's seq names the request.  RES_REPLY, with the same seq: @data
 * read, and the access's MemTxResult in @flags.
 */
#define DISTVM_RES_WRITE        0x1

typedef struct DistvmMsgRes {
    uint64_t addr;
    uint32_t size;
    uint32_t flags;             /* RES_ACCESS: DISTVM_RES_*; REPLY: result */
    uint64_t data;
} DistvmMsgRes;

/*
 * RES_SET: guest RAM [@base, @base + @size) becomes resident on @node
 * while the guest runs (distvm-set-residency), in these steps:
 */
typedef enum DistvmResSetStep {
    DISTVM_RES_SET_ASK,         /* home -> @node: make it resident */
    DISTVM_RES_SET_REGISTERED,  /* @node -> home: it serves the range */
    DISTVM_RES_SET_COVER,       /* home -> the others: cover it */
    DISTVM_RES_SET_COVERED,     /* -> @node: no vCPU here reaches it now */
    DISTVM_RES_SET_ACTIVE,      /* @node -> all: every page is on @node */
    DISTVM_RES_SET_KNOWN,       /* home -> a joining node: it is resident */
    DISTVM_RES_SET__MAX
} DistvmResSetStep;

typedef struct DistvmMsgResSet {
    uint64_t base;
    uint64_t size;
    uint32_t node;
    uint32_t step;              /* DistvmResSetStep */
} DistvmMsgResSet;

/*
 * MGR_MOVE: the pages node @from manages move to node @to
 * (distvm-handoff.c), in these steps:
 */
typedef enum DistvmMgrMoveStep {
    DISTVM_MGR_MOVE_ASK,        /* home -> @from: hand them to @to */
    DISTVM_MGR_MOVE_PREPARE,    /* @from -> the others: take @to's too */
    DISTVM_MGR_MOVE_PREPARED,   /* -> @from: taken, and its earlier ones */
    DISTVM_MGR_MOVE_MOVED,      /* @from -> the others: @to manages them */
    DISTVM_MGR_MOVE_MOVED_ACK,  /* -> @from: no request goes to it now */
    DISTVM_MGR_MOVE_KNOWN,      /* home -> a joining node: they moved */
    DISTVM_MGR_MOVE__MAX
} DistvmMgrMoveStep;

typedef struct DistvmMsgMgrMove {
    uint32_t step;              /* DistvmMgrMoveStep */
    uint32_t from;
    uint32_t to;
} DistvmMsgMgrMove;

/*
 * MGR_ENTRIES, from the node whose pages move to the node they move to:
 * the directory entries of pages @first to @first + @count - 1 of RAMBlock
 * @block, a u32 each: the owner (DISTVM_MGR_NO_OWNER if none) in bits 0-7,
 * the copy set (a bit a node) in bits 16-31.  The receiver takes those of
 * the pages that move.
 */
#define DISTVM_MGR_ENTRIES_MAX  65536
#define DISTVM_MGR_NO_OWNER     0xff

typedef struct DistvmMsgMgrEntries {
    uint32_t block;
    uint32_t count;
    uint64_t first;
    const uint8_t *entries;     /* [count] u32: points into the payload */
} DistvmMsgMgrEntries;

/*
 * EPOCH: the steps of checkpoint epoch @epoch (distvm-epoch.c), about
 * node @node where the step names one:
 */
typedef enum DistvmEpochStep {
    DISTVM_EPOCH_SAVE,          /* home -> all: send your epoch's data */
    DISTVM_EPOCH_BUSY,          /* -> home: not now (a vCPU is moving) */
    DISTVM_EPOCH_SENT,          /* @node -> its replica: all sent */
    DISTVM_EPOCH_STORED,        /* replica -> home: @node's data stored */
    DISTVM_EPOCH_COMMIT,        /* home -> all: the epoch is committed */
    DISTVM_EPOCH_ABORT,         /* home -> all: drop the epoch's data */
    /*
     * Rolling the guest back to committed epoch @epoch, with it paused:
     * home -> all, ROLLBACK; each node asks every other for the copies
     * it keeps of the pages it must restore (EPOCH_PAGES, ASK), then
     * FETCH; the other sends them (EPOCH_PAGES, COPY), the vCPU states
     * it keeps (and, to home, the devices'), then FETCHED; once every
     * node's came, the node restores them and sends home ROLLED, with
     * the number of vCPU states it loaded in @vcpus.  A node that cannot
     * now answers BUSY instead.  ROLLBACK's @node: a node whose copies
     * are not used, as if it were lost (not asked; it uses none of its
     * own), or home: none.
     */
    DISTVM_EPOCH_ROLLBACK,
    DISTVM_EPOCH_FETCH,         /* @node -> another: all asked */
    DISTVM_EPOCH_FETCHED,       /* @node -> the asker: all sent */
    DISTVM_EPOCH_ROLLED,        /* -> home: rolled back */
    /*
     * Taking over lost node @node (distvm-recovery.c), @epoch the last
     * committed: a node tells home it lost @node (LOST); home tells the
     * others (RECOVER) and pauses the guest; once all paused, SETTLE;
     * each node then tells every other that no page message of its
     * comes any more (MARK), reports the pages it holds to each page's
     * manager (EPOCH_PAGES, HELD), then HELD_DONE to every node; once a
     * node has every node's, it rebuilds its part of the directory and
     * tells home, for each vCPU @vcpus, the moves of it seen there and
     * whether it runs there (RUNS, @bytes), then READY; home then places
     * each vCPU (PLACE: vCPU @vcpus on node @node, as its move @bytes)
     * and rolls the guest back (ROLLBACK, as if @node were lost); then
     * RECOVERED.
     */
    DISTVM_EPOCH_LOST,
    DISTVM_EPOCH_RECOVER,
    DISTVM_EPOCH_SETTLE,
    DISTVM_EPOCH_MARK,
    DISTVM_EPOCH_HELD_DONE,
    DISTVM_EPOCH_RUNS,
    DISTVM_EPOCH_READY,
    DISTVM_EPOCH_PLACE,
    DISTVM_EPOCH_RECOVERED,     /* home -> all: the guest runs again */
    /*
     * With redundancy=parity, home rebuilds lost node @node's copies from
     * the parity it keeps: it asks each other node for the committed
     * content of its slots 0 to @bytes - 1 (PARITY_ASK), which it sends
     * (EPOCH_PAGES, SLOT), then PARITY_DONE.
     */
    DISTVM_EPOCH_PARITY_ASK,
    DISTVM_EPOCH_PARITY_DONE,
    /*
     * Home's standby -> home: it has home's COMMIT of @epoch.  Home sends
     * the epoch's output on only then, when its standby may take its
     * place (distvm-recovery.c), which goes back to that epoch then.
     */
    DISTVM_EPOCH_COMMITTED,
    DISTVM_EPOCH__MAX
} DistvmEpochStep;

typedef struct DistvmMsgEpoch {
    uint32_t step;              /* DistvmEpochStep */
    uint32_t node;
    uint64_t epoch;
    uint64_t bytes;
    uint32_t vcpus;             /* SENT, STORED: the vCPU states in @bytes */
} DistvmMsgEpoch;

/*
 * EPOCH_PAGES: @count pages of RAMBlock @block as they were at epoch
 * @epoch, each a u64 page number, u32 flags (DISTVM_EPOCH_PAGE_ZERO: all
 * zero) and, unless zero, its 4 KiB.  During a rollback, pages asked for
 * (ASK, without data; @epoch the one rolled back to), and committed
 * copies sent to the asker (COPY); taking over a lost node, the pages
 * the sender holds (HELD, without data, OWNED if writable).  With
 * redundancy=parity, each page also has a u32 slot after its flags: the
 * place of the sender's copy of it among all its copies.  A node sends
 * its keeper the XOR of the slot's committed content and its new one
 * (DELTA, all zero if the page did not change), and, as its keeper
 * rebuilds a lost node's copies, the slot's committed content (SLOT).
 * All pages of one message are of the same kind, @kind.
 */
#define DISTVM_EPOCH_PAGES_MAX  128
#define DISTVM_EPOCH_PAGE_ZERO  0x01
#define DISTVM_EPOCH_PAGE_ASK   0x02
#define DISTVM_EPOCH_PAGE_COPY  0x04
/* Taking over a lost node: a page the sender holds, writable if OWNED */
#define DISTVM_EPOCH_PAGE_HELD  0x08
#define DISTVM_EPOCH_PAGE_OWNED 0x10
/* redundancy=parity: a change to the parity, and a slot's content */
#define DISTVM_EPOCH_PAGE_DELTA 0x20
#define DISTVM_EPOCH_PAGE_SLOT  0x40

typedef struct DistvmMsgEpochPages {
    uint64_t epoch;
    uint32_t block;
    uint32_t count;
    uint32_t kind;              /* ASK, COPY, HELD, DELTA, SLOT or 0 */
    const uint8_t *entries;     /* points into the payload */
} DistvmMsgEpochPages;

/*
 * EPOCH_STATE: bytes @offset to @offset + @len - 1 of the @total bytes
 * of a state at epoch @epoch: vCPU @index's (its VMState, as a move sends
 * it), the machine's devices' (QEMU's device state, @index 0), or that of
 * the devices that node @index runs away from home (device-nodes).
 */
typedef enum DistvmEpochStateKind {
    DISTVM_EPOCH_STATE_VCPU,
    DISTVM_EPOCH_STATE_DEVICES,
    /* The committed copy of one, sent to a node that rolls back */
    DISTVM_EPOCH_STATE_VCPU_COPY,
    DISTVM_EPOCH_STATE_DEVICES_COPY,
    DISTVM_EPOCH_STATE_PLACED,
    DISTVM_EPOCH_STATE_PLACED_COPY,
    DISTVM_EPOCH_STATE__MAX
} DistvmEpochStateKind;

#define DISTVM_EPOCH_STATE_MAX  (64u << 20)

typedef struct DistvmMsgEpochState {
    uint64_t epoch;
    uint32_t kind;              /* DistvmEpochStateKind */
    uint32_t index;
    uint32_t total;
    uint32_t offset;
    uint32_t len;
    const uint8_t *data;        /* points into the payload */
} DistvmMsgEpochState;

/*
 * NET_CTRL, from the node of a virtio-net card whose queue pairs other
 * nodes serve (queue-nodes) to them: a command of the card's control
 * queue, @len bytes of its header and data (virtio's struct
 * virtio_net_ctrl_hdr, then the command's), which they apply to their
 * copy of the card
 */
#define DISTVM_NET_CTRL_MIN     2
#define DISTVM_NET_CTRL_MAX     (64 * 1024)

typedef struct DistvmMsgNetCtrl {
    char *path;                 /* the card's QOM path */
    const uint8_t *data;        /* points into the payload */
    uint32_t len;
} DistvmMsgNetCtrl;

/*
 * NET_PAIR: queue pair @pair of the virtio-net card at @path moves to
 * node @node (distvm-netqueues.c), by steps; and the nodes that serve
 * the card's pairs tell home of their network paths
 */
typedef enum DistvmNetPairStep {
    DISTVM_NET_PAIR_MOVE,       /* home -> every node: it moves to @node */
    DISTVM_NET_PAIR_TAKE,       /* its last node -> @node: take it now */
    /* a node -> @node, which it knows serves the pair: @queue notified */
    DISTVM_NET_PAIR_KICK,
    DISTVM_NET_PAIR_TAKEN,      /* @node -> home: it serves the pair */
    /*
     * @node -> home: @node's network path (its host's tap) went down, or
     * came back up; @pair, @queue and @move are 0
     */
    DISTVM_NET_PAIR_PATH_DOWN,
    DISTVM_NET_PAIR_PATH_UP,
    /*
     * home -> a node that joins: @node serves the pair, and @move is the
     * last of its moves (@queue is 2 * @pair)
     */
    DISTVM_NET_PAIR_STATE,
    DISTVM_NET_PAIR__MAX
} DistvmNetPairStep;

typedef struct DistvmMsgNetPair {
    char *path;                 /* the card's QOM path */
    uint32_t step;              /* DistvmNetPairStep */
    uint32_t pair;
    uint32_t node;              /* the node it moves to */
    uint32_t queue;             /* KICK: the card's queue (2 * @pair + 0/1) */
    /* the pair's move, numbered by home from 1 (KICK: the sender's last) */
    uint32_t move;
} DistvmMsgNetPair;

/* A node that joins the running guest (distvm-join.c) */
typedef struct DistvmMsgNodeJoin {
    uint32_t node_id;
    uint32_t speed;             /* its speed property */
} DistvmMsgNodeJoin;

/*
 * DEVICE_AWAY: device @device of device-nodes, which a rollback brought
 * home, runs on its node @node again, from the state of @len bytes at
 * @data (which the other nodes ignore).  Its seq is a configuration
 * generation, as a PCI_CONFIG's.
 */
typedef struct DistvmMsgDeviceAway {
    uint32_t device;
    uint32_t node;
    const uint8_t *data;        /* points into the payload */
    uint32_t len;
} DistvmMsgDeviceAway;

typedef struct DistvmMsg {
    DistvmMsgHeader hdr;
    union {
        DistvmMsgHello hello;
        DistvmMsgWelcome welcome;
        char *reason;           /* REFUSE */
        uint32_t node_id;       /* PEER_HELLO, NODE_LOST, *DRAIN*, _LEFT */
        DistvmMsgNodeJoin join;     /* NODE_JOINING, NODE_JOINED */
        DistvmMsgPage page;     /* PAGE_* */
        /*
         * PING, PONG; FLOW: how many of its messages for the main loop
         * (distvm_wire_flow_counted()) its receiver is done with
         */
        uint64_t value;
        DistvmMsgVcpu vcpu;     /* VCPU_* */
        DistvmMsgPciConfig pci; /* PCI_CONFIG */
        DistvmMsgIo io;         /* IO_REQ, IO_REPLY */
        DistvmMsgRunState run;  /* RUN_STATE */
        uint32_t level;         /* PIC_OUTPUT: 0 or 1 */
        uint32_t policy;        /* POLICY: below DISTVM_POLICY_COUNT */
        uint32_t device;        /* DEVICE_HOME: its index in device-nodes */
        DistvmMsgDeviceAway away;           /* DEVICE_AWAY */
        DistvmMsgClockRegs clock;   /* CLOCK_REGS */
        DistvmMsgWarmPages warm;    /* VCPU_WARM_PAGES */
        DistvmMsgPageReqs reqs;     /* PAGE_REQS */
        DistvmMsgMemPlug mem;       /* MEM_* */
        DistvmMsgCpuPlug cpu_plug;  /* CPU_* */
        DistvmMsgRes res;           /* RES_ACCESS, RES_REPLY */
        DistvmMsgResSet res_set;    /* RES_SET */
        DistvmMsgIntx intx;         /* PCI_INTX */
        DistvmMsgMgrMove mgr_move;  /* MGR_MOVE */
        DistvmMsgMgrEntries mgr_entries;    /* MGR_ENTRIES */
        DistvmMsgEpoch epoch;               /* EPOCH */
        DistvmMsgEpochPages epoch_pages;    /* EPOCH_PAGES */
        DistvmMsgEpochState epoch_state;    /* EPOCH_STATE */
        DistvmMsgNetCtrl net_ctrl;          /* NET_CTRL */
        DistvmMsgNetPair net_pair;          /* NET_PAIR */
    } u;
} DistvmMsg;

const char *distvm_msg_type_name(uint32_t type);

/* Check a received header; @buf holds DISTVM_WIRE_HDR_SIZE bytes. */
bool distvm_wire_parse_header(const uint8_t *buf, DistvmMsgHeader *hdr,
                              Error **errp);

/*
 * Decode and validate the payload of a message whose header @hdr was
 * accepted by distvm_wire_parse_header.  On success @msg owns copies of
 * its strings (release with distvm_msg_clear), except that a page's data
 * points into @payload.
 */
bool distvm_wire_decode(const DistvmMsgHeader *hdr, const uint8_t *payload,
                        const DistvmWireLimits *lim, DistvmMsg *msg,
                        Error **errp);

void distvm_msg_clear(DistvmMsg *msg);

/*
 * Whether node @src may send @msg to node @dst on a connection of the
 * running cluster, node @home being home: its role, not its format
 * (DESIGN.md section 14).  Home's messages (chipset, clock, interrupt
 * controller, run state, the results of device accesses) come from home
 * only, device accesses and the reports of a stopped node go to home
 * only, and the messages that form the cluster come on no established
 * connection.
 */
bool distvm_wire_check_role(const DistvmMsg *msg, uint32_t home,
                            uint32_t dst, Error **errp);

/*
 * The vCPU index that @msg is about, if it is about one (VCPU_*, IO_*,
 * VCPU_WARM_PAGES).
 */
bool distvm_wire_msg_vcpu(const DistvmMsg *msg, uint32_t *cpu);

/* Set the sequence number of the message encoded in @buf. */
void distvm_wire_set_seq(GByteArray *buf, uint64_t seq);

/*
 * Encoding: distvm_wire_begin starts a message in @buf (emptied first),
 * the put functions append payload fields, distvm_wire_end fills in the
 * length.
 */
void distvm_wire_begin(GByteArray *buf, DistvmMsgType type, uint32_t src,
                       uint64_t seq);
void distvm_wire_put_u32(GByteArray *buf, uint32_t v);
void distvm_wire_put_u64(GByteArray *buf, uint64_t v);
void distvm_wire_put_str(GByteArray *buf, const char *s);
void distvm_wire_put_bytes(GByteArray *buf, const void *data, size_t len);
void distvm_wire_end(GByteArray *buf);

/* Whole messages. */
/* @node_id: @src, or DISTVM_WIRE_NODE_ANY to ask home for one */
void distvm_wire_hello(GByteArray *buf, uint32_t src, uint32_t node_id,
                       uint32_t nodes, const char *listen, uint32_t speed,
                       uint32_t nr_items, char *const *keys,
                       char *const *values);
/* To node @node_id: @addrs[@node_id] is its own address */
void distvm_wire_welcome(GByteArray *buf, uint32_t nodes, uint32_t node_id,
                         char *const *addrs, const uint32_t *speeds);
void distvm_wire_refuse(GByteArray *buf, uint32_t src, const char *reason);
void distvm_wire_node_join(GByteArray *buf, DistvmMsgType type, uint32_t src,
                           uint32_t node_id, uint32_t speed);
void distvm_wire_node(GByteArray *buf, DistvmMsgType type, uint32_t src,
                      uint32_t node_id);
void distvm_wire_empty(GByteArray *buf, DistvmMsgType type, uint32_t src,
                       uint64_t seq);
void distvm_wire_vcpu(GByteArray *buf, DistvmMsgType type, uint32_t src,
                      uint32_t cpu, uint32_t from, uint32_t to, uint64_t value,
                      const void *data, uint32_t len);
/* The same, for a move: @reason is a DistvmMoveWhy */
void distvm_wire_vcpu_move(GByteArray *buf, DistvmMsgType type, uint32_t src,
                           uint32_t cpu, uint32_t from, uint32_t to,
                           uint32_t reason, uint64_t value, const void *data,
                           uint32_t len);
void distvm_wire_pci_config(GByteArray *buf, uint32_t src, uint64_t seq,
                            const char *path, uint32_t addr, uint32_t val,
                            uint32_t len);
void distvm_wire_io(GByteArray *buf, DistvmMsgType type, uint32_t src,
                    const DistvmMsgIo *io);
void distvm_wire_run_state(GByteArray *buf, uint32_t src,
                           const DistvmMsgRunState *run);
void distvm_wire_pic_output(GByteArray *buf, uint32_t src, uint32_t level);
/* DEVICE_HOME: device @device of device-nodes runs on home */
void distvm_wire_device_home(GByteArray *buf, uint32_t src, uint32_t device);
/* DEVICE_AWAY: see DistvmMsgDeviceAway; @gen its configuration generation */
void distvm_wire_device_away(GByteArray *buf, uint32_t src, uint64_t gen,
                             uint32_t device, uint32_t node,
                             const uint8_t *data, uint32_t len);
void distvm_wire_flow(GByteArray *buf, uint32_t src, uint64_t done);
/* Whether FLOW counts messages of @type */
bool distvm_wire_flow_counted(uint32_t type);
void distvm_wire_pci_intx(GByteArray *buf, uint32_t src, uint32_t irq,
                          uint32_t level);
void distvm_wire_policy(GByteArray *buf, uint32_t src, uint32_t policy);
void distvm_wire_clock_regs(GByteArray *buf, uint32_t src,
                            const DistvmMsgClockRegs *clock);
void distvm_wire_warm_pages(GByteArray *buf, uint32_t src, uint32_t cpu,
                            const DistvmPageRef *pages, uint32_t count);
void distvm_wire_page_reqs(GByteArray *buf, uint32_t src,
                           const DistvmPageRef *reqs, uint32_t count);
void distvm_wire_mem_plug(GByteArray *buf, uint32_t src, uint64_t seq,
                          const DistvmMsgMemPlug *mem);
void distvm_wire_mem_plug_ack(GByteArray *buf, uint32_t src, uint64_t seq,
                              uint32_t slot, const char *error);
void distvm_wire_mem_unplug(GByteArray *buf, uint32_t src, uint32_t slot);
void distvm_wire_cpu_plug(GByteArray *buf, uint32_t src, uint64_t seq,
                          uint32_t cpu, const char *device);
void distvm_wire_cpu_plug_ack(GByteArray *buf, uint32_t src, uint64_t seq,
                              uint32_t cpu, const char *error);
void distvm_wire_cpu_unplug(GByteArray *buf, uint32_t src, uint32_t cpu);
void distvm_wire_res(GByteArray *buf, DistvmMsgType type, uint32_t src,
                     uint64_t seq, const DistvmMsgRes *res);
void distvm_wire_res_set(GByteArray *buf, uint32_t src,
                         const DistvmMsgResSet *set);
void distvm_wire_mgr_move(GByteArray *buf, uint32_t src, uint32_t step,
                         uint32_t from, uint32_t to);
/* MGR_ENTRIES: @owner and @copyset have @count entries each */
void distvm_wire_mgr_entries(GByteArray *buf, uint32_t src, uint32_t block,
                             uint64_t first, uint32_t count,
                             const int8_t *owner, const uint16_t *copyset);
/* Entry @i of a decoded MGR_ENTRIES: its owner (-1 if none), copy set */
void distvm_wire_mgr_entry(const DistvmMsgMgrEntries *e, uint32_t i,
                           int *owner, uint16_t *copyset);
void distvm_wire_page(GByteArray *buf, DistvmMsgType type, uint32_t src,
                      uint64_t seq, uint32_t block, uint64_t page,
                      uint32_t node, uint32_t flags, const void *data);
void distvm_wire_epoch(GByteArray *buf, uint32_t src,
                       const DistvmMsgEpoch *epoch);
/*
 * EPOCH_PAGES: begin one without pages, add up to DISTVM_EPOCH_PAGES_MAX
 * (@data NULL for an all-zero page), then distvm_wire_end().
 */
void distvm_wire_epoch_pages_begin(GByteArray *buf, uint32_t src,
                                   uint64_t epoch, uint32_t block);
/* @kind: 0, ASK (@data NULL), COPY or HELD (@data NULL).  The count. */
uint32_t distvm_wire_epoch_pages_add(GByteArray *buf, uint64_t page,
                                     uint32_t kind, const void *data);
/* The same for kinds DELTA and SLOT: a page in slot @slot */
uint32_t distvm_wire_epoch_pages_add_slot(GByteArray *buf, uint64_t page,
                                          uint32_t kind, uint32_t slot,
                                          const void *data);
/*
 * The next page of a decoded EPOCH_PAGES, from *@pos (@p->entries at
 * first), which it advances: its number, and its data or NULL if zero.
 */
const uint8_t *distvm_wire_epoch_page(const uint8_t **pos, uint64_t *page);
/* The same, and its slot (0 unless of kind DELTA or SLOT) */
const uint8_t *distvm_wire_epoch_page_slot(const uint8_t **pos,
                                           uint64_t *page, uint32_t *slot);
void distvm_wire_net_ctrl(GByteArray *buf, uint32_t src, const char *path,
                          const void *data, uint32_t len);
void distvm_wire_epoch_state(GByteArray *buf, uint32_t src,
                             const DistvmMsgEpochState *st);
void distvm_wire_net_pair(GByteArray *buf, uint32_t src, const char *path,
                          uint32_t step, uint32_t pair, uint32_t node,
                          uint32_t queue, uint32_t move);

#endif /* ACCEL_DISTVM_WIRE_H */
