/*
 * libFuzzer target for the distvm wire protocol decoder
 *
 * The input is a stream of messages as a node would receive it from a
 * socket: a 24-byte header, then header.length bytes of payload, then the
 * next message.  Each payload is decoded from a malloc'd copy of exactly
 * its length so that AddressSanitizer catches any read beyond it, under
 * two fixed sets of limits (with and without an agreed RAMBlock table;
 * both with 8 vCPUs).
 * Every accepted message is encoded again with the encoder functions; the
 * result must carry the same payload bytes and decode to an equal message.
 * Its role is checked as each node would receive it (a RUN_STATE's
 * against the rule for its action, an EPOCH's against that of its step).
 *
 * Built with -DDISTVM_WIRE_FUZZ_SEEDS instead, this file is a program that
 * writes a seed corpus of valid messages into the directory given on its
 * command line (see tests/unit/distvm/unit.mk, target "seeds").
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qapi/error.h"
#include "distvm-wire.h"
#include "wire-sizes.h"

#ifndef DISTVM_WIRE_FUZZ_SEEDS

static const uint64_t block_pages[] = { 16, 1, 262144 };

static const DistvmWireLimits fuzz_limits[] = {
    { .nodes = 4, .nr_vcpus = 8, .nr_blocks = 3, .block_pages = block_pages },
    { .nodes = 4, .nr_vcpus = 8, .nr_blocks = 0, .block_pages = NULL },
};

#define CHECK(cond) do {                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "distvm-wire-fuzz: %s:%d: check failed: %s\n", \
                    __FILE__, __LINE__, #cond);                           \
            abort();                                                      \
        }                                                                 \
    } while (0)

static bool is_page_type(uint32_t type)
{
    return type >= DISTVM_MSG_PAGE_REQ && type <= DISTVM_MSG_PAGE_DONE;
}

/*
 * An IPI's delivery: mode 0, 1, 2, 4, 5 or 6, any vector in bits 8-15,
 * trigger mode in bit 16, nothing above; or the A20 line, mode 3 and
 * bit 8 at most
 */
static bool ipi_delivery_ok(uint64_t v)
{
    uint64_t mode = v & 0xff;

    if (mode == DISTVM_DM_A20) {
        return v <= 0x1ff;
    }
    return v <= 0x1ffff && mode <= 6;
}

/*
 * A LAPIC's addressing: any APIC ID in bits 0-7, logical destination in
 * bits 8-15, destination format in bits 16-19, the mode flags in bits
 * 20-22, nothing above
 */
static bool apic_addressing_ok(uint64_t v)
{
    return v <= 0x7fffff;
}

/* A decoded string is never NULL and never longer than the limit */
static void check_str(const char *s)
{
    CHECK(s);
    CHECK(strlen(s) <= DISTVM_WIRE_MAX_STR);
}

/* A decoded string is a copy, not a pointer into the payload */
static void check_copy(const char *s, const uint8_t *payload, uint32_t len)
{
    CHECK((uintptr_t)s < (uintptr_t)payload ||
          (uintptr_t)s >= (uintptr_t)payload + len);
}

/* A MEM_PLUG's name: a string that is not empty */
static void check_name(const char *s, const uint8_t *payload, uint32_t len)
{
    check_str(s);
    CHECK(s[0]);
    check_copy(s, payload, len);
}

/* What the decoder promises about a message it accepted */
/* A list of @count pages that exist, with no flag outside @flags, at @wire */
static void check_page_refs(const DistvmPageRef *pages, uint32_t count,
                            uint32_t flags, const uint8_t *wire,
                            const DistvmWireLimits *lim)
{
    for (uint32_t i = 0; i < count; i++) {
        CHECK(pages[i].block < lim->nr_blocks);
        CHECK(pages[i].page < lim->block_pages[pages[i].block]);
        CHECK(!(pages[i].flags & ~flags));
        CHECK(pages[i].page == ldq_le_p(wire + 16 * i + 8));
    }
}

/*
 * A manager's directory entries: 1 to DISTVM_MGR_ENTRIES_MAX pages of a
 * RAMBlock, that exist; each entry an owner of the cluster or none, bits
 * 8-15 clear, and a copy set of nodes of the cluster; as
 * distvm_wire_mgr_entry() reads them
 */
static void check_mgr_entries(const DistvmMsgMgrEntries *e,
                              const uint8_t *payload, uint32_t length,
                              const DistvmWireLimits *lim)
{
    CHECK(lim->nr_blocks > 0);
    CHECK(e->block < lim->nr_blocks);
    CHECK(e->count >= 1);
    CHECK(e->count <= DISTVM_MGR_ENTRIES_MAX);
    CHECK(e->first < lim->block_pages[e->block]);
    CHECK(e->count <= lim->block_pages[e->block] - e->first);
    CHECK(length == MGR_ENTRIES_FIXED + 4 * e->count);
    CHECK(e->block == (uint32_t)ldl_le_p(payload));
    CHECK(e->count == (uint32_t)ldl_le_p(payload + 4));
    CHECK(e->first == ldq_le_p(payload + 8));
    /* the entries stay in the payload */
    CHECK(e->entries == payload + MGR_ENTRIES_FIXED);
    for (uint32_t i = 0; i < e->count; i++) {
        uint32_t v = ldl_le_p(e->entries + 4 * i);
        int owner;
        uint16_t copyset;

        distvm_wire_mgr_entry(e, i, &owner, &copyset);
        CHECK(!(v & 0xff00));
        CHECK(copyset == v >> 16);
        CHECK(!((uint32_t)copyset >> lim->nodes));
        if ((v & 0xff) == DISTVM_MGR_NO_OWNER) {
            CHECK(owner == -1);
        } else {
            CHECK(owner == (int)(v & 0xff));
            CHECK(owner < (int)lim->nodes);
        }
    }
}

/*
 * An epoch's pages: of an epoch other than 0, 1 to DISTVM_EPOCH_PAGES_MAX
 * pages of a RAMBlock, that exist, all of the message's kind: an epoch's
 * pages (0) or the copies sent back in a rollback (COPY), each all zero
 * or with its bytes, or pages asked for in a rollback (ASK, alone), or
 * pages held, taking a lost node over (HELD, alone or with OWNED), both
 * without bytes; or, with redundancy=parity, changes to the parity
 * (DELTA) or a slot's content (SLOT), each with its slot after its
 * flags, below the guest's count of pages, then all zero or its bytes.
 * Walking them with distvm_wire_epoch_page_slot() stays within the
 * payload and ends exactly at its end; distvm_wire_epoch_page() walks
 * them the same way.
 */
static void check_epoch_pages(const DistvmMsg *m, const uint8_t *payload,
                              uint32_t length, const DistvmWireLimits *lim)
{
    const DistvmMsgEpochPages *e = &m->u.epoch_pages;
    const uint32_t slotted = DISTVM_EPOCH_PAGE_DELTA |
                             DISTVM_EPOCH_PAGE_SLOT;
    const uint32_t kinds = DISTVM_EPOCH_PAGE_ASK | DISTVM_EPOCH_PAGE_COPY |
                           DISTVM_EPOCH_PAGE_HELD | slotted;
    const uint8_t *end = payload + length;
    const uint8_t *pos = e->entries;
    /* a page's number and flags, and its slot if of a kind with one */
    size_t head = EPOCH_PAGE_HDR + (e->kind & slotted ? EPOCH_SLOT_SIZE : 0);
    uint64_t slots = 0;

    CHECK(lim->nr_blocks > 0);
    CHECK(e->kind == 0 || e->kind == DISTVM_EPOCH_PAGE_ASK ||
          e->kind == DISTVM_EPOCH_PAGE_COPY ||
          e->kind == DISTVM_EPOCH_PAGE_HELD ||
          e->kind == DISTVM_EPOCH_PAGE_DELTA ||
          e->kind == DISTVM_EPOCH_PAGE_SLOT);
    CHECK(e->epoch != 0);
    CHECK(e->block < lim->nr_blocks);
    CHECK(e->count >= 1);
    CHECK(e->count <= DISTVM_EPOCH_PAGES_MAX);
    CHECK(length >= EPOCH_PAGES_FIXED + head * e->count);
    CHECK(length <= EPOCH_PAGES_FIXED +
          (head + DISTVM_PAGE_SIZE) * e->count);
    CHECK(e->epoch == ldq_le_p(payload));
    CHECK(e->block == (uint32_t)ldl_le_p(payload + 8));
    CHECK(e->count == (uint32_t)ldl_le_p(payload + 12));
    /* the pages stay in the payload */
    CHECK(e->entries == payload + EPOCH_PAGES_FIXED);
    for (uint32_t b = 0; b < lim->nr_blocks; b++) {
        slots += lim->block_pages[b];
    }
    for (uint32_t i = 0; i < e->count; i++) {
        const uint8_t *at = pos;
        const uint8_t *again = pos;
        uint32_t flags, slot;
        uint64_t page, page_again;
        const uint8_t *data;

        CHECK(at + head <= end);
        flags = ldl_le_p(at + 8);
        data = distvm_wire_epoch_page_slot(&pos, &page, &slot);
        /* without the slot, the same page, data and next one */
        CHECK(distvm_wire_epoch_page(&again, &page_again) == data);
        CHECK(page_again == page);
        CHECK(again == pos);
        CHECK(page == ldq_le_p(at));
        CHECK(page < lim->block_pages[e->block]);
        if (e->kind & slotted) {
            CHECK(slot == (uint32_t)ldl_le_p(at + EPOCH_PAGE_HDR));
            CHECK(slot < slots);
        } else {
            CHECK(slot == 0);
        }
        CHECK(!(flags & ~(DISTVM_EPOCH_PAGE_ZERO | DISTVM_EPOCH_PAGE_OWNED |
                          kinds)));
        CHECK((flags & kinds) == e->kind);
        if (e->kind == DISTVM_EPOCH_PAGE_ASK) {
            CHECK(flags == DISTVM_EPOCH_PAGE_ASK);
        }
        if (e->kind == DISTVM_EPOCH_PAGE_HELD) {
            CHECK(flags == DISTVM_EPOCH_PAGE_HELD ||
                  flags == (DISTVM_EPOCH_PAGE_HELD | DISTVM_EPOCH_PAGE_OWNED));
        } else {
            CHECK(!(flags & DISTVM_EPOCH_PAGE_OWNED));
        }
        if (flags & (DISTVM_EPOCH_PAGE_ZERO | DISTVM_EPOCH_PAGE_ASK |
                     DISTVM_EPOCH_PAGE_HELD)) {
            CHECK(!data);
            CHECK(pos == at + head);
        } else {
            CHECK(data == at + head);
            CHECK(pos == data + DISTVM_PAGE_SIZE);
        }
        CHECK(pos > at && pos <= end);
    }
    CHECK(pos == end);
}

/*
 * A chunk of a state: of an epoch other than 0, a vCPU's of the machine,
 * the devices' (index 0) or those placed on a node of the cluster, or
 * the committed copy of one of them, of at most DISTVM_EPOCH_STATE_MAX
 * bytes; the bytes it carries, the rest of the payload and at least one,
 * are within the state
 */
static void check_epoch_state(const DistvmMsgEpochState *st,
                              const uint8_t *payload, uint32_t length,
                              const DistvmWireLimits *lim)
{
    CHECK(st->epoch != 0);
    CHECK(st->kind < DISTVM_EPOCH_STATE__MAX);
    if (st->kind == DISTVM_EPOCH_STATE_VCPU ||
        st->kind == DISTVM_EPOCH_STATE_VCPU_COPY) {
        CHECK(st->index < lim->nr_vcpus);
    } else if (st->kind == DISTVM_EPOCH_STATE_PLACED ||
               st->kind == DISTVM_EPOCH_STATE_PLACED_COPY) {
        CHECK(st->index < lim->nodes);
    } else {
        CHECK(st->index == 0);
    }
    CHECK(st->total <= DISTVM_EPOCH_STATE_MAX);
    CHECK(st->len >= 1);
    CHECK((uint64_t)st->offset + st->len <= st->total);
    CHECK(length > EPOCH_STATE_FIXED);
    CHECK(st->len == length - EPOCH_STATE_FIXED);
    CHECK(st->data == payload + EPOCH_STATE_FIXED);
    CHECK(st->epoch == ldq_le_p(payload));
    CHECK(st->kind == (uint32_t)ldl_le_p(payload + 8));
    CHECK(st->index == (uint32_t)ldl_le_p(payload + 12));
    CHECK(st->total == (uint32_t)ldl_le_p(payload + 16));
    CHECK(st->offset == (uint32_t)ldl_le_p(payload + 20));
}

static void check_valid(const DistvmMsg *m, const uint8_t *payload,
                        const DistvmWireLimits *lim)
{
    CHECK(m->hdr.magic == DISTVM_WIRE_MAGIC);
    CHECK(m->hdr.version == DISTVM_WIRE_VERSION);
    CHECK(m->hdr.type > 0 && m->hdr.type < DISTVM_MSG__MAX);
    CHECK(m->hdr.length <= DISTVM_WIRE_MAX_PAYLOAD);
    CHECK(m->hdr.src < lim->nodes);

    switch (m->hdr.type) {
    case DISTVM_MSG_HELLO:
        CHECK(m->u.hello.node_id == m->hdr.src ||
              m->u.hello.node_id == DISTVM_WIRE_NODE_ANY);
        CHECK(m->u.hello.nodes > 0);
        CHECK(m->u.hello.nodes <= DISTVM_WIRE_MAX_NODES);
        CHECK(m->u.hello.nr_items <= DISTVM_WIRE_MAX_ITEMS);
        check_str(m->u.hello.listen);
        CHECK(m->u.hello.speed >= DISTVM_WIRE_SPEED_MIN);
        CHECK(m->u.hello.speed <= DISTVM_WIRE_SPEED_MAX);
        for (uint32_t i = 0; i < m->u.hello.nr_items; i++) {
            check_str(m->u.hello.keys[i]);
            check_str(m->u.hello.values[i]);
        }
        CHECK(!m->u.hello.keys[m->u.hello.nr_items]);
        CHECK(!m->u.hello.values[m->u.hello.nr_items]);
        break;
    case DISTVM_MSG_WELCOME:
        CHECK(m->u.welcome.nodes > 0);
        CHECK(m->u.welcome.nodes <= DISTVM_WIRE_MAX_NODES);
        CHECK(m->u.welcome.node_id > 0);
        CHECK(m->u.welcome.node_id < m->u.welcome.nodes);
        CHECK(m->u.welcome.addrs[m->u.welcome.node_id][0]);
        for (uint32_t i = 0; i < m->u.welcome.nodes; i++) {
            check_str(m->u.welcome.addrs[i]);
            /* a node not in the cluster: no address, speed 0 */
            if (!m->u.welcome.addrs[i][0]) {
                CHECK(m->u.welcome.speeds[i] == 0);
                continue;
            }
            CHECK(m->u.welcome.speeds[i] >= DISTVM_WIRE_SPEED_MIN);
            CHECK(m->u.welcome.speeds[i] <= DISTVM_WIRE_SPEED_MAX);
        }
        CHECK(!m->u.welcome.addrs[m->u.welcome.nodes]);
        break;
    case DISTVM_MSG_REFUSE:
        check_str(m->u.reason);
        break;
    case DISTVM_MSG_PEER_HELLO:
        CHECK(m->u.node_id == m->hdr.src);
        break;
    case DISTVM_MSG_NODE_LOST:
        /* any node of the cluster, the sender included */
        CHECK(m->hdr.length == 4);
        CHECK(m->u.node_id < lim->nodes);
        break;
    case DISTVM_MSG_NODE_DRAIN:
    case DISTVM_MSG_DRAIN_PAGES:
    case DISTVM_MSG_DRAINED:
    case DISTVM_MSG_NODE_LEFT:
        /* a node other than home */
        CHECK(m->hdr.length == 4);
        CHECK(m->u.node_id < lim->nodes);
        CHECK(m->u.node_id != 0);
        break;
    case DISTVM_MSG_NODE_JOINING:
    case DISTVM_MSG_NODE_JOINED:
        /* a node other than home, with a speed */
        CHECK(m->hdr.length == 8);
        CHECK(m->u.join.node_id < lim->nodes);
        CHECK(m->u.join.node_id != 0);
        CHECK(m->u.join.speed >= DISTVM_WIRE_SPEED_MIN);
        CHECK(m->u.join.speed <= DISTVM_WIRE_SPEED_MAX);
        break;
    case DISTVM_MSG_READY:
    case DISTVM_MSG_START:
    case DISTVM_MSG_BYE:
    case DISTVM_MSG_HEARTBEAT:
    case DISTVM_MSG_END:
    case DISTVM_MSG_ENDED:
        CHECK(m->hdr.length == 0);
        break;
    case DISTVM_MSG_PING:
    case DISTVM_MSG_PONG:
        CHECK(m->hdr.length == 8);
        break;
    case DISTVM_MSG_VCPU_MOVE:
    case DISTVM_MSG_VCPU_STATE:
    case DISTVM_MSG_VCPU_MOVED:
    case DISTVM_MSG_VCPU_IPI:
    case DISTVM_MSG_VCPU_APIC:
    case DISTVM_MSG_VCPU_NODES:
    case DISTVM_MSG_VCPU_WHERE:
    case DISTVM_MSG_VCPU_FLUSH:
    case DISTVM_MSG_VCPU_FLUSHED:
        CHECK(m->u.vcpu.cpu < lim->nr_vcpus);
        CHECK(m->u.vcpu.from < lim->nodes);
        CHECK(m->u.vcpu.to < lim->nodes);
        /* a move's reason, or zero */
        CHECK(m->u.vcpu.reason == (uint32_t)ldl_le_p(payload + 12));
        if (m->hdr.type == DISTVM_MSG_VCPU_MOVE ||
            m->hdr.type == DISTVM_MSG_VCPU_STATE ||
            m->hdr.type == DISTVM_MSG_VCPU_MOVED) {
            CHECK(m->u.vcpu.reason < DISTVM_MOVE__MAX);
        } else {
            CHECK(m->u.vcpu.reason == 0);
        }
        if (m->hdr.type == DISTVM_MSG_VCPU_IPI) {
            CHECK(ipi_delivery_ok(m->u.vcpu.value));
        }
        if (m->hdr.type == DISTVM_MSG_VCPU_APIC) {
            CHECK(apic_addressing_ok(m->u.vcpu.value));
        }
        if (m->hdr.type == DISTVM_MSG_VCPU_FLUSH) {
            /* some vCPUs, all of them below lim->nr_vcpus; numbered */
            CHECK(m->u.vcpu.value != 0);
            CHECK(lim->nr_vcpus >= 64 ||
                  m->u.vcpu.value < (1ull << lim->nr_vcpus));
            CHECK(m->hdr.seq != 0);
        }
        if (m->hdr.type == DISTVM_MSG_VCPU_FLUSHED) {
            CHECK(m->u.vcpu.value == 0);
            CHECK(m->hdr.seq != 0);
        }
        if (m->hdr.type == DISTVM_MSG_VCPU_NODES) {
            /* some nodes, all of them below lim->nodes */
            CHECK(m->u.vcpu.value != 0);
            CHECK(m->u.vcpu.value < (1ull << lim->nodes));
        }
        if (m->hdr.type == DISTVM_MSG_VCPU_STATE) {
            /* the state is the rest of the payload, and not empty */
            CHECK(m->hdr.length > VCPU_FIXED);
            CHECK(m->u.vcpu.data == payload + VCPU_FIXED);
            CHECK(m->u.vcpu.len == m->hdr.length - VCPU_FIXED);
        } else {
            CHECK(m->hdr.length == VCPU_FIXED);
            CHECK(!m->u.vcpu.data);
            CHECK(m->u.vcpu.len == 0);
        }
        break;
    case DISTVM_MSG_PCI_CONFIG:
        /* 1, 2 or 4 bytes within the configuration space */
        check_str(m->u.pci.path);
        CHECK(m->hdr.length == PCI_FIXED + strlen(m->u.pci.path));
        CHECK((uint32_t)ldl_le_p(payload) == strlen(m->u.pci.path));
        CHECK(m->u.pci.len == 1 || m->u.pci.len == 2 || m->u.pci.len == 4);
        CHECK((uint64_t)m->u.pci.addr + m->u.pci.len <=
              DISTVM_PCI_CONFIG_SPACE);
        /* a copy, not a pointer into the payload */
        CHECK((uintptr_t)m->u.pci.path < (uintptr_t)payload ||
              (uintptr_t)m->u.pci.path >=
              (uintptr_t)payload + m->hdr.length);
        break;
    case DISTVM_MSG_NET_CTRL:
        /* a path, then a command of 2 bytes to 64 KiB, in the payload */
        check_str(m->u.net_ctrl.path);
        CHECK(m->hdr.length == NET_CTRL_FIXED + strlen(m->u.net_ctrl.path) +
              m->u.net_ctrl.len);
        CHECK((uint32_t)ldl_le_p(payload) == strlen(m->u.net_ctrl.path));
        CHECK(m->u.net_ctrl.len >= DISTVM_NET_CTRL_MIN &&
              m->u.net_ctrl.len <= DISTVM_NET_CTRL_MAX);
        CHECK(m->u.net_ctrl.data == payload + NET_CTRL_FIXED +
              strlen(m->u.net_ctrl.path));
        break;
    case DISTVM_MSG_NET_PAIR:
        /* a path, a known step, a node, and a queue of the pair */
        check_str(m->u.net_pair.path);
        CHECK(m->hdr.length == NET_PAIR_FIXED + strlen(m->u.net_pair.path));
        CHECK((uint32_t)ldl_le_p(payload) == strlen(m->u.net_pair.path));
        CHECK(m->u.net_pair.step < DISTVM_NET_PAIR__MAX);
        CHECK(m->u.net_pair.node < DISTVM_WIRE_MAX_NODES);
        CHECK(m->u.net_pair.queue / 2 == m->u.net_pair.pair);
        break;
    case DISTVM_MSG_IO_REQ:
    case DISTVM_MSG_IO_REPLY:
        /*
         * 1, 2 or 4 bytes of port I/O, 1 to 8 aligned bytes of memory, or
         * a PIC acknowledge, by a vCPU of the machine
         */
        CHECK(m->hdr.length == IO_FIXED +
              ((m->u.io.flags & DISTVM_IO_REGS) ? 8 * DISTVM_IO_NR_REGS : 0) +
              (m->hdr.type == DISTVM_MSG_IO_REQ &&
               (m->u.io.flags & DISTVM_IO_CONFIG_GEN) ? 8 : 0));
        CHECK(m->u.io.cpu < lim->nr_vcpus);
        if (m->u.io.space == DISTVM_IO_PORT) {
            CHECK(m->u.io.addr <= 0xffff);
            CHECK(m->u.io.size == 1 || m->u.io.size == 2 ||
                  m->u.io.size == 4);
        } else if (m->u.io.space == DISTVM_IO_PIC_ACK) {
            /* one byte at 0; a request neither writes nor carries data */
            CHECK(m->u.io.size == 1);
            CHECK(m->u.io.addr == 0);
            if (m->hdr.type == DISTVM_MSG_IO_REQ) {
                CHECK(m->u.io.flags == 0);
                CHECK(m->u.io.data == 0);
            }
        } else {
            CHECK(m->u.io.space == DISTVM_IO_MEMORY ||
                  m->u.io.space == DISTVM_IO_SMM);
            CHECK(m->u.io.size == 1 || m->u.io.size == 2 ||
                  m->u.io.size == 4 || m->u.io.size == 8);
            CHECK(!(m->u.io.addr & (m->u.io.size - 1)));
        }
        CHECK(m->u.io.size == 8 || !(m->u.io.data >> (m->u.io.size * 8)));
        if (m->hdr.type == DISTVM_MSG_IO_REQ) {
            CHECK(!(m->u.io.flags & ~(DISTVM_IO_WRITE | DISTVM_IO_REGS |
                                      DISTVM_IO_CONFIG_GEN)));
        } else {
            /*
             * a one-byte result, DISTVM_IO_STOP, DISTVM_IO_REGS and the
             * A20 line
             */
            CHECK((m->u.io.flags & ~(DISTVM_IO_STOP | DISTVM_IO_REGS |
                                     DISTVM_IO_A20 | DISTVM_IO_A20_ON)) <=
                  0xff);
            CHECK(!(m->u.io.flags & DISTVM_IO_A20_ON) ||
                  (m->u.io.flags & DISTVM_IO_A20));
        }
        /* registers and the A20 line only with a port access */
        CHECK(!(m->u.io.flags & (DISTVM_IO_REGS | DISTVM_IO_A20)) ||
              m->u.io.space == DISTVM_IO_PORT);
        break;
    case DISTVM_MSG_RUN_STATE:
        /* a known action; the clocks may be anything */
        CHECK(m->hdr.length == RUN_FIXED);
        CHECK(m->u.run.action < DISTVM_RUN__MAX);
        CHECK(m->u.run.action == (uint32_t)ldl_le_p(payload));
        CHECK(ldl_le_p(payload + 4) == 0);      /* reserved */
        break;
    case DISTVM_MSG_VCPU_WARM_PAGES:
        /* a vCPU; at most 512 pages, each exists, with known flags */
        CHECK(m->u.warm.cpu < lim->nr_vcpus);
        CHECK(m->u.warm.count <= DISTVM_WARM_PAGES_MAX);
        CHECK(m->hdr.length == 8 + 16 * m->u.warm.count);
        check_page_refs(m->u.warm.pages, m->u.warm.count, DISTVM_WARM_WRITE,
                        payload + 8, lim);
        break;
    case DISTVM_MSG_PAGE_REQS:
        /* 1 to 512 requests, each for a page that exists, a PAGE_REQ's */
        CHECK(m->u.reqs.count >= 1);
        CHECK(m->u.reqs.count <= DISTVM_PAGE_REQS_MAX);
        CHECK(m->hdr.length == 4 + 16 * m->u.reqs.count);
        check_page_refs(m->u.reqs.reqs, m->u.reqs.count,
                        DISTVM_PAGE_REQ_FLAGS, payload + 4, lim);
        break;
    case DISTVM_MSG_MEM_PLUG:
        /*
         * a RAMBlock index below the wire's limit, whatever the agreed
         * table (the block is a new one); a non-zero whole number of
         * pages; three names, none empty; no error
         */
        CHECK(m->u.mem.slot < DISTVM_WIRE_MAX_BLOCKS);
        CHECK(m->u.mem.slot == (uint32_t)ldl_le_p(payload));
        CHECK(m->u.mem.size != 0);
        CHECK(!(m->u.mem.size % DISTVM_PAGE_SIZE));
        CHECK(m->u.mem.size == ldq_le_p(payload + 4));
        check_name(m->u.mem.backend_type, payload, m->hdr.length);
        check_name(m->u.mem.backend_id, payload, m->hdr.length);
        check_name(m->u.mem.device, payload, m->hdr.length);
        CHECK((uint32_t)ldl_le_p(payload + 12) ==
              strlen(m->u.mem.backend_type));
        CHECK(m->hdr.length == MEM_PLUG_FIXED +
              strlen(m->u.mem.backend_type) + strlen(m->u.mem.backend_id) +
              strlen(m->u.mem.device));
        CHECK(!m->u.mem.error);
        break;
    case DISTVM_MSG_MEM_PLUG_ACK:
        /* a RAMBlock index below the limit; an error, empty if plugged */
        CHECK(m->u.mem.slot < DISTVM_WIRE_MAX_BLOCKS);
        CHECK(m->u.mem.slot == (uint32_t)ldl_le_p(payload));
        check_str(m->u.mem.error);
        check_copy(m->u.mem.error, payload, m->hdr.length);
        CHECK((uint32_t)ldl_le_p(payload + 4) == strlen(m->u.mem.error));
        CHECK(m->hdr.length == MEM_ACK_FIXED + strlen(m->u.mem.error));
        CHECK(m->u.mem.size == 0);
        CHECK(!m->u.mem.backend_type && !m->u.mem.backend_id &&
              !m->u.mem.device);
        break;
    case DISTVM_MSG_MEM_UNPLUG:
        /* a RAMBlock index below the limit, and nothing else */
        CHECK(m->hdr.length == MEM_UNPLUG_FIXED);
        CHECK(m->u.mem.slot < DISTVM_WIRE_MAX_BLOCKS);
        CHECK(m->u.mem.slot == (uint32_t)ldl_le_p(payload));
        CHECK(m->u.mem.size == 0);
        CHECK(!m->u.mem.backend_type && !m->u.mem.backend_id &&
              !m->u.mem.device && !m->u.mem.error);
        break;
    case DISTVM_MSG_CPU_PLUG:
        /* a vCPU of the machine, the device to plug: not empty */
        CHECK(m->u.cpu_plug.cpu < lim->nr_vcpus);
        CHECK(m->u.cpu_plug.cpu == (uint32_t)ldl_le_p(payload));
        check_name(m->u.cpu_plug.device, payload, m->hdr.length);
        CHECK(m->hdr.length == CPU_PLUG_FIXED +
              strlen(m->u.cpu_plug.device));
        CHECK(!m->u.cpu_plug.error);
        break;
    case DISTVM_MSG_CPU_PLUG_ACK:
        /* a vCPU of the machine; an error, empty if plugged */
        CHECK(m->u.cpu_plug.cpu < lim->nr_vcpus);
        CHECK(m->u.cpu_plug.cpu == (uint32_t)ldl_le_p(payload));
        check_str(m->u.cpu_plug.error);
        check_copy(m->u.cpu_plug.error, payload, m->hdr.length);
        CHECK(m->hdr.length == CPU_ACK_FIXED + strlen(m->u.cpu_plug.error));
        CHECK(!m->u.cpu_plug.device);
        break;
    case DISTVM_MSG_CPU_UNPLUG:
        /* a vCPU of the machine, and nothing else */
        CHECK(m->hdr.length == CPU_UNPLUG_FIXED);
        CHECK(m->u.cpu_plug.cpu < lim->nr_vcpus);
        CHECK(m->u.cpu_plug.cpu == (uint32_t)ldl_le_p(payload));
        CHECK(!m->u.cpu_plug.device && !m->u.cpu_plug.error);
        break;
    case DISTVM_MSG_RES_ACCESS:
        /*
         * a read or a write of 1, 2, 4 or 8 naturally aligned bytes at any
         * address, with no flag but DISTVM_RES_WRITE; the data may be
         * anything
         */
        CHECK(m->hdr.length == RES_FIXED);
        CHECK(m->u.res.size == 1 || m->u.res.size == 2 ||
              m->u.res.size == 4 || m->u.res.size == 8);
        CHECK(!(m->u.res.addr & (m->u.res.size - 1)));
        CHECK(!(m->u.res.flags & ~DISTVM_RES_WRITE));
        CHECK(m->u.res.addr == ldq_le_p(payload));
        CHECK(m->u.res.size == (uint32_t)ldl_le_p(payload + 8));
        CHECK(m->u.res.flags == (uint32_t)ldl_le_p(payload + 12));
        CHECK(m->u.res.data == ldq_le_p(payload + 16));
        break;
    case DISTVM_MSG_RES_REPLY:
        /* anything, as long as it is all there: flags is a MemTxResult */
        CHECK(m->hdr.length == RES_FIXED);
        CHECK(m->u.res.addr == ldq_le_p(payload));
        CHECK(m->u.res.size == (uint32_t)ldl_le_p(payload + 8));
        CHECK(m->u.res.flags == (uint32_t)ldl_le_p(payload + 12));
        CHECK(m->u.res.data == ldq_le_p(payload + 16));
        break;
    case DISTVM_MSG_RES_SET:
        /*
         * whole pages that do not wrap, on a node of the cluster, at a
         * known step
         */
        CHECK(m->hdr.length == 24);
        CHECK(m->u.res_set.size &&
              !((m->u.res_set.base | m->u.res_set.size) &
                (DISTVM_PAGE_SIZE - 1)));
        CHECK(m->u.res_set.base + m->u.res_set.size > m->u.res_set.base);
        CHECK(m->u.res_set.node < lim->nodes);
        CHECK(m->u.res_set.step < DISTVM_RES_SET__MAX);
        CHECK(m->u.res_set.base == ldq_le_p(payload));
        CHECK(m->u.res_set.size == ldq_le_p(payload + 8));
        CHECK(m->u.res_set.node == (uint32_t)ldl_le_p(payload + 16));
        CHECK(m->u.res_set.step == (uint32_t)ldl_le_p(payload + 20));
        break;
    case DISTVM_MSG_POLICY:
        /* a known policy */
        CHECK(m->hdr.length == 4);
        CHECK(m->u.policy < DISTVM_POLICY_COUNT);
        CHECK(m->u.policy == (uint32_t)ldl_le_p(payload));
        break;
    case DISTVM_MSG_PCI_INTX:
        /* a line of the root bus, low or high */
        CHECK(m->hdr.length == 8);
        CHECK(m->u.intx.irq < DISTVM_PCI_INTX_MAX);
        CHECK(m->u.intx.level == 0 || m->u.intx.level == 1);
        CHECK(m->u.intx.irq == (uint32_t)ldl_le_p(payload));
        CHECK(m->u.intx.level == (uint32_t)ldl_le_p(payload + 4));
        break;
    case DISTVM_MSG_DEVICE_HOME:
        /* a device's index: any */
        CHECK(m->hdr.length == DEVICE_HOME_FIXED);
        CHECK(m->u.device == (uint32_t)ldl_le_p(payload));
        break;
    case DISTVM_MSG_DEVICE_AWAY:
        /* a device's index, a node of the cluster, a generation, a state */
        CHECK(m->hdr.length == DEVICE_AWAY_FIXED + m->u.away.len);
        CHECK(m->u.away.device == (uint32_t)ldl_le_p(payload));
        CHECK(m->u.away.node == (uint32_t)ldl_le_p(payload + 4));
        CHECK(m->u.away.node < DISTVM_WIRE_MAX_NODES);
        CHECK(m->hdr.seq != 0);
        CHECK(m->u.away.data == payload + DEVICE_AWAY_FIXED);
        break;
    case DISTVM_MSG_PIC_OUTPUT:
        /* low or high */
        CHECK(m->hdr.length == PIC_FIXED);
        CHECK(m->u.level == 0 || m->u.level == 1);
        CHECK(m->u.level == (uint32_t)ldl_le_p(payload));
        break;
    case DISTVM_MSG_FLOW:
        /* a count of messages done with: any */
        CHECK(m->hdr.length == FLOW_FIXED);
        CHECK(m->u.value == ldq_le_p(payload));
        break;
    case DISTVM_MSG_MGR_MOVE:
        /* a known step, between two different nodes of the cluster */
        CHECK(m->hdr.length == MGR_MOVE_FIXED);
        CHECK(m->u.mgr_move.step < DISTVM_MGR_MOVE__MAX);
        CHECK(m->u.mgr_move.from < lim->nodes);
        CHECK(m->u.mgr_move.to < lim->nodes);
        CHECK(m->u.mgr_move.from != m->u.mgr_move.to);
        CHECK(m->u.mgr_move.step == (uint32_t)ldl_le_p(payload));
        CHECK(m->u.mgr_move.from == (uint32_t)ldl_le_p(payload + 4));
        CHECK(m->u.mgr_move.to == (uint32_t)ldl_le_p(payload + 8));
        break;
    case DISTVM_MSG_MGR_ENTRIES:
        check_mgr_entries(&m->u.mgr_entries, payload, m->hdr.length, lim);
        break;
    case DISTVM_MSG_EPOCH:
        /*
         * a known step of an epoch other than 0, about a node of the
         * cluster, with at most the machine's vCPUs; the bytes may be
         * anything
         */
        CHECK(m->hdr.length == EPOCH_FIXED);
        CHECK(m->u.epoch.step < DISTVM_EPOCH__MAX);
        CHECK(m->u.epoch.node < lim->nodes);
        CHECK(m->u.epoch.epoch != 0);
        CHECK(m->u.epoch.vcpus <= lim->nr_vcpus);
        CHECK(m->u.epoch.step == (uint32_t)ldl_le_p(payload));
        CHECK(m->u.epoch.node == (uint32_t)ldl_le_p(payload + 4));
        CHECK(m->u.epoch.epoch == ldq_le_p(payload + 8));
        CHECK(m->u.epoch.bytes == ldq_le_p(payload + 16));
        CHECK(m->u.epoch.vcpus == (uint32_t)ldl_le_p(payload + 24));
        CHECK(ldl_le_p(payload + 28) == 0);     /* reserved */
        break;
    case DISTVM_MSG_EPOCH_PAGES:
        check_epoch_pages(m, payload, m->hdr.length, lim);
        break;
    case DISTVM_MSG_EPOCH_STATE:
        check_epoch_state(&m->u.epoch_state, payload, m->hdr.length, lim);
        break;
    case DISTVM_MSG_CLOCK_REGS:
        /*
         * known flags; a running HPET is at an address; a 4-byte PM timer
         * register within the port space; a 4 KiB aligned HPET; no port
         * or address without its flag.  The counter and offset may be
         * anything.
         */
        CHECK(m->hdr.length == CLOCK_FIXED);
        CHECK(!(m->u.clock.flags & ~DISTVM_CLOCK_FLAGS_ALL));
        CHECK(!(m->u.clock.flags & DISTVM_CLOCK_HPET_ENABLED) ||
              (m->u.clock.flags & DISTVM_CLOCK_HPET));
        CHECK(m->u.clock.pm_timer_port <= 0xfffc);
        CHECK((m->u.clock.flags & DISTVM_CLOCK_PM_TIMER) ||
              !m->u.clock.pm_timer_port);
        CHECK(!(m->u.clock.hpet_base & (DISTVM_PAGE_SIZE - 1)));
        CHECK((m->u.clock.flags & DISTVM_CLOCK_HPET) ||
              !m->u.clock.hpet_base);
        CHECK(m->u.clock.flags == (uint32_t)ldl_le_p(payload));
        CHECK(m->u.clock.pm_timer_port == (uint32_t)ldl_le_p(payload + 4));
        CHECK(m->u.clock.hpet_base == ldq_le_p(payload + 8));
        CHECK(m->u.clock.hpet_counter == ldq_le_p(payload + 16));
        CHECK(m->u.clock.hpet_offset == ldq_le_p(payload + 24));
        break;
    default:
        CHECK(is_page_type(m->hdr.type));
        CHECK(lim->nr_blocks > 0);
        CHECK(m->u.page.block < lim->nr_blocks);
        CHECK(m->u.page.page < lim->block_pages[m->u.page.block]);
        CHECK(!(m->u.page.flags & ~DISTVM_PAGE_FLAGS_ALL));
        /* Who may ask for whom is distvm-ram.c's to refuse. */
        CHECK(m->u.page.node < lim->nodes);
        if (m->hdr.type == DISTVM_MSG_PAGE_DATA &&
            !(m->u.page.flags & DISTVM_PAGE_ZERO)) {
            CHECK(m->hdr.length == 24 + DISTVM_PAGE_SIZE);
            CHECK(m->u.page.data == payload + 24);
        } else {
            CHECK(m->hdr.length == 24);
            CHECK(!m->u.page.data);
        }
        break;
    }
}

static bool strv_equal(char *const *a, char *const *b, uint32_t n)
{
    for (uint32_t i = 0; i <= n; i++) {
        if (!a[i] || !b[i]) {
            if (a[i] != b[i]) {
                return false;
            }
        } else if (strcmp(a[i], b[i])) {
            return false;
        }
    }
    return true;
}

/* Equal strings, or both none */
static bool str_equal(const char *a, const char *b)
{
    if (!a || !b) {
        return a == b;
    }
    return !strcmp(a, b);
}

/* Equal directory entries, as distvm_wire_mgr_entry() reads them */
static bool mgr_entries_equal(const DistvmMsgMgrEntries *a,
                              const DistvmMsgMgrEntries *b)
{
    if (a->block != b->block || a->count != b->count ||
        a->first != b->first) {
        return false;
    }
    for (uint32_t i = 0; i < a->count; i++) {
        int owner_a, owner_b;
        uint16_t copyset_a, copyset_b;

        distvm_wire_mgr_entry(a, i, &owner_a, &copyset_a);
        distvm_wire_mgr_entry(b, i, &owner_b, &copyset_b);
        if (owner_a != owner_b || copyset_a != copyset_b) {
            return false;
        }
    }
    return true;
}

/*
 * Equal pages of an epoch, as distvm_wire_epoch_page_slot() reads them,
 * with equal flags (a held page's OWNED) and slots (DELTA's and SLOT's)
 */
static bool epoch_pages_equal(const DistvmMsgEpochPages *a,
                              const DistvmMsgEpochPages *b)
{
    const uint8_t *pos_a = a->entries, *pos_b = b->entries;

    if (a->epoch != b->epoch || a->block != b->block ||
        a->count != b->count || a->kind != b->kind) {
        return false;
    }
    for (uint32_t i = 0; i < a->count; i++) {
        uint32_t flags_a = ldl_le_p(pos_a + 8), flags_b = ldl_le_p(pos_b + 8);
        uint32_t slot_a, slot_b;
        uint64_t page_a, page_b;
        const uint8_t *data_a = distvm_wire_epoch_page_slot(&pos_a, &page_a,
                                                            &slot_a);
        const uint8_t *data_b = distvm_wire_epoch_page_slot(&pos_b, &page_b,
                                                            &slot_b);

        if (page_a != page_b || flags_a != flags_b || slot_a != slot_b ||
            !data_a != !data_b ||
            (data_a && memcmp(data_a, data_b, DISTVM_PAGE_SIZE))) {
            return false;
        }
    }
    return true;
}

/* Equal content; the header fields are compared by the caller */
static bool msg_body_equal(const DistvmMsg *a, const DistvmMsg *b)
{
    if (a->hdr.type != b->hdr.type) {
        return false;
    }
    switch (a->hdr.type) {
    case DISTVM_MSG_HELLO:
        return a->u.hello.node_id == b->u.hello.node_id &&
               a->u.hello.nodes == b->u.hello.nodes &&
               !strcmp(a->u.hello.listen, b->u.hello.listen) &&
               a->u.hello.speed == b->u.hello.speed &&
               a->u.hello.nr_items == b->u.hello.nr_items &&
               strv_equal(a->u.hello.keys, b->u.hello.keys,
                          a->u.hello.nr_items) &&
               strv_equal(a->u.hello.values, b->u.hello.values,
                          a->u.hello.nr_items);
    case DISTVM_MSG_WELCOME:
        return a->u.welcome.nodes == b->u.welcome.nodes &&
               strv_equal(a->u.welcome.addrs, b->u.welcome.addrs,
                          a->u.welcome.nodes) &&
               !memcmp(a->u.welcome.speeds, b->u.welcome.speeds,
                       a->u.welcome.nodes * sizeof(uint32_t));
    case DISTVM_MSG_REFUSE:
        return !strcmp(a->u.reason, b->u.reason);
    case DISTVM_MSG_PEER_HELLO:
    case DISTVM_MSG_NODE_LOST:
    case DISTVM_MSG_NODE_DRAIN:
    case DISTVM_MSG_DRAIN_PAGES:
    case DISTVM_MSG_DRAINED:
    case DISTVM_MSG_NODE_LEFT:
        return a->u.node_id == b->u.node_id;
    case DISTVM_MSG_NODE_JOINING:
    case DISTVM_MSG_NODE_JOINED:
        return a->u.join.node_id == b->u.join.node_id &&
               a->u.join.speed == b->u.join.speed;
    case DISTVM_MSG_READY:
    case DISTVM_MSG_START:
    case DISTVM_MSG_BYE:
    case DISTVM_MSG_HEARTBEAT:
    case DISTVM_MSG_END:
    case DISTVM_MSG_ENDED:
        return true;
    case DISTVM_MSG_PING:
    case DISTVM_MSG_PONG:
    case DISTVM_MSG_FLOW:
        return a->u.value == b->u.value;
    case DISTVM_MSG_VCPU_MOVE:
    case DISTVM_MSG_VCPU_STATE:
    case DISTVM_MSG_VCPU_MOVED:
    case DISTVM_MSG_VCPU_IPI:
    case DISTVM_MSG_VCPU_APIC:
    case DISTVM_MSG_VCPU_NODES:
    case DISTVM_MSG_VCPU_WHERE:
    case DISTVM_MSG_VCPU_FLUSH:
    case DISTVM_MSG_VCPU_FLUSHED:
        if (a->u.vcpu.cpu != b->u.vcpu.cpu ||
            a->u.vcpu.from != b->u.vcpu.from ||
            a->u.vcpu.to != b->u.vcpu.to ||
            a->u.vcpu.reason != b->u.vcpu.reason ||
            a->u.vcpu.value != b->u.vcpu.value ||
            a->u.vcpu.len != b->u.vcpu.len ||
            !a->u.vcpu.data != !b->u.vcpu.data) {
            return false;
        }
        return !a->u.vcpu.data ||
               !memcmp(a->u.vcpu.data, b->u.vcpu.data, a->u.vcpu.len);
    case DISTVM_MSG_PCI_CONFIG:
        return !strcmp(a->u.pci.path, b->u.pci.path) &&
               a->u.pci.addr == b->u.pci.addr &&
               a->u.pci.val == b->u.pci.val &&
               a->u.pci.len == b->u.pci.len;
    case DISTVM_MSG_NET_CTRL:
        return !strcmp(a->u.net_ctrl.path, b->u.net_ctrl.path) &&
               a->u.net_ctrl.len == b->u.net_ctrl.len &&
               !memcmp(a->u.net_ctrl.data, b->u.net_ctrl.data,
                       a->u.net_ctrl.len);
    case DISTVM_MSG_NET_PAIR:
        return !strcmp(a->u.net_pair.path, b->u.net_pair.path) &&
               a->u.net_pair.step == b->u.net_pair.step &&
               a->u.net_pair.pair == b->u.net_pair.pair &&
               a->u.net_pair.node == b->u.net_pair.node &&
               a->u.net_pair.queue == b->u.net_pair.queue &&
               a->u.net_pair.move == b->u.net_pair.move;
    case DISTVM_MSG_IO_REQ:
    case DISTVM_MSG_IO_REPLY:
        return a->u.io.cpu == b->u.io.cpu &&
               a->u.io.space == b->u.io.space &&
               a->u.io.size == b->u.io.size &&
               a->u.io.flags == b->u.io.flags &&
               a->u.io.addr == b->u.io.addr &&
               a->u.io.data == b->u.io.data &&
               (a->hdr.type != DISTVM_MSG_IO_REQ ||
                !(a->u.io.flags & DISTVM_IO_CONFIG_GEN) ||
                a->u.io.config_gen == b->u.io.config_gen) &&
               (!(a->u.io.flags & DISTVM_IO_REGS) ||
                !memcmp(a->u.io.regs, b->u.io.regs, sizeof(a->u.io.regs)));
    case DISTVM_MSG_RUN_STATE:
        return a->u.run.action == b->u.run.action &&
               a->u.run.virtual_ns == b->u.run.virtual_ns &&
               a->u.run.guest_ticks == b->u.run.guest_ticks &&
               a->u.run.host_ns == b->u.run.host_ns &&
               a->u.run.host_ticks == b->u.run.host_ticks &&
               a->u.run.host_id == b->u.run.host_id;
    case DISTVM_MSG_PIC_OUTPUT:
        return a->u.level == b->u.level;
    case DISTVM_MSG_DEVICE_HOME:
        return a->u.device == b->u.device;
    case DISTVM_MSG_DEVICE_AWAY:
        return a->u.away.device == b->u.away.device &&
               a->u.away.node == b->u.away.node &&
               a->u.away.len == b->u.away.len &&
               !memcmp(a->u.away.data, b->u.away.data, a->u.away.len);
    case DISTVM_MSG_PCI_INTX:
        return a->u.intx.irq == b->u.intx.irq &&
               a->u.intx.level == b->u.intx.level;
    case DISTVM_MSG_POLICY:
        return a->u.policy == b->u.policy;
    case DISTVM_MSG_VCPU_WARM_PAGES:
        return a->u.warm.cpu == b->u.warm.cpu &&
               a->u.warm.count == b->u.warm.count &&
               (!a->u.warm.count ||
                !memcmp(a->u.warm.pages, b->u.warm.pages,
                        a->u.warm.count * sizeof(DistvmPageRef)));
    case DISTVM_MSG_PAGE_REQS:
        return a->u.reqs.count == b->u.reqs.count &&
               !memcmp(a->u.reqs.reqs, b->u.reqs.reqs,
                       a->u.reqs.count * sizeof(DistvmPageRef));
    case DISTVM_MSG_MEM_PLUG:
    case DISTVM_MSG_MEM_PLUG_ACK:
    case DISTVM_MSG_MEM_UNPLUG:
        return a->u.mem.slot == b->u.mem.slot &&
               a->u.mem.size == b->u.mem.size &&
               str_equal(a->u.mem.backend_type, b->u.mem.backend_type) &&
               str_equal(a->u.mem.backend_id, b->u.mem.backend_id) &&
               str_equal(a->u.mem.device, b->u.mem.device) &&
               str_equal(a->u.mem.error, b->u.mem.error);
    case DISTVM_MSG_CPU_PLUG:
    case DISTVM_MSG_CPU_PLUG_ACK:
    case DISTVM_MSG_CPU_UNPLUG:
        return a->u.cpu_plug.cpu == b->u.cpu_plug.cpu &&
               str_equal(a->u.cpu_plug.device, b->u.cpu_plug.device) &&
               str_equal(a->u.cpu_plug.error, b->u.cpu_plug.error);
    case DISTVM_MSG_RES_ACCESS:
    case DISTVM_MSG_RES_REPLY:
        return a->u.res.addr == b->u.res.addr &&
               a->u.res.size == b->u.res.size &&
               a->u.res.flags == b->u.res.flags &&
               a->u.res.data == b->u.res.data;
    case DISTVM_MSG_RES_SET:
        return a->u.res_set.base == b->u.res_set.base &&
               a->u.res_set.size == b->u.res_set.size &&
               a->u.res_set.node == b->u.res_set.node &&
               a->u.res_set.step == b->u.res_set.step;
    case DISTVM_MSG_MGR_MOVE:
        return a->u.mgr_move.step == b->u.mgr_move.step &&
               a->u.mgr_move.from == b->u.mgr_move.from &&
               a->u.mgr_move.to == b->u.mgr_move.to;
    case DISTVM_MSG_MGR_ENTRIES:
        return mgr_entries_equal(&a->u.mgr_entries, &b->u.mgr_entries);
    case DISTVM_MSG_EPOCH:
        return a->u.epoch.step == b->u.epoch.step &&
               a->u.epoch.node == b->u.epoch.node &&
               a->u.epoch.epoch == b->u.epoch.epoch &&
               a->u.epoch.bytes == b->u.epoch.bytes &&
               a->u.epoch.vcpus == b->u.epoch.vcpus;
    case DISTVM_MSG_EPOCH_PAGES:
        return epoch_pages_equal(&a->u.epoch_pages, &b->u.epoch_pages);
    case DISTVM_MSG_EPOCH_STATE:
        return a->u.epoch_state.epoch == b->u.epoch_state.epoch &&
               a->u.epoch_state.kind == b->u.epoch_state.kind &&
               a->u.epoch_state.index == b->u.epoch_state.index &&
               a->u.epoch_state.total == b->u.epoch_state.total &&
               a->u.epoch_state.offset == b->u.epoch_state.offset &&
               a->u.epoch_state.len == b->u.epoch_state.len &&
               !memcmp(a->u.epoch_state.data, b->u.epoch_state.data,
                       a->u.epoch_state.len);
    case DISTVM_MSG_CLOCK_REGS:
        return a->u.clock.flags == b->u.clock.flags &&
               a->u.clock.pm_timer_port == b->u.clock.pm_timer_port &&
               a->u.clock.hpet_base == b->u.clock.hpet_base &&
               a->u.clock.hpet_counter == b->u.clock.hpet_counter &&
               a->u.clock.hpet_offset == b->u.clock.hpet_offset;
    default:
        if (a->u.page.block != b->u.page.block ||
            a->u.page.page != b->u.page.page ||
            a->u.page.node != b->u.page.node ||
            a->u.page.flags != b->u.page.flags ||
            !a->u.page.data != !b->u.page.data) {
            return false;
        }
        return !a->u.page.data ||
               !memcmp(a->u.page.data, b->u.page.data, DISTVM_PAGE_SIZE);
    }
}

/* MGR_ENTRIES again, of the entries as distvm_wire_mgr_entry() reads them */
static void reencode_mgr_entries(GByteArray *buf, uint32_t src,
                                 const DistvmMsgMgrEntries *e)
{
    g_autofree int8_t *owner = g_new(int8_t, e->count);
    g_autofree uint16_t *copyset = g_new(uint16_t, e->count);

    for (uint32_t i = 0; i < e->count; i++) {
        int o;

        distvm_wire_mgr_entry(e, i, &o, &copyset[i]);
        owner[i] = o;
    }
    distvm_wire_mgr_entries(buf, src, e->block, e->first, e->count, owner,
                            copyset);
}

/*
 * EPOCH_PAGES again, page by page as distvm_wire_epoch_page_slot() reads
 * them, of its kind (a held page's with its OWNED; a DELTA's or SLOT's
 * in its slot), each counted as it is added
 */
static void reencode_epoch_pages(GByteArray *buf, uint32_t src,
                                 const DistvmMsgEpochPages *e)
{
    const uint8_t *pos = e->entries;

    distvm_wire_epoch_pages_begin(buf, src, e->epoch, e->block);
    for (uint32_t i = 0; i < e->count; i++) {
        uint32_t kind = e->kind | (ldl_le_p(pos + 8) &
                                   DISTVM_EPOCH_PAGE_OWNED);
        uint32_t slot;
        uint64_t page;
        const uint8_t *data = distvm_wire_epoch_page_slot(&pos, &page, &slot);

        if (kind & (DISTVM_EPOCH_PAGE_DELTA | DISTVM_EPOCH_PAGE_SLOT)) {
            CHECK(distvm_wire_epoch_pages_add_slot(buf, page, kind, slot,
                                                   data) == i + 1);
        } else {
            CHECK(slot == 0);
            CHECK(distvm_wire_epoch_pages_add(buf, page, kind, data) ==
                  i + 1);
        }
    }
    distvm_wire_end(buf);
}

/*
 * Encode @m again with the encoder for its type.  The HELLO, WELCOME,
 * REFUSE, PEER_HELLO, NODE_*, *DRAIN*, VCPU_*, IO_*, RUN_STATE,
 * PIC_OUTPUT, DEVICE_HOME, FLOW, PCI_INTX, CLOCK_REGS, POLICY,
 * VCPU_WARM_PAGES,
 * PAGE_REQS, MEM_UNPLUG, CPU_UNPLUG, RES_SET, MGR_MOVE, MGR_ENTRIES,
 * EPOCH, EPOCH_PAGES and EPOCH_STATE encoders always send seq 0 and
 * WELCOME's src 0; @fixed_seq and @fixed_src say so.  MEM_PLUG,
 * MEM_PLUG_ACK, CPU_PLUG and CPU_PLUG_ACK carry the seq of the plug,
 * RES_ACCESS and RES_REPLY that of the request, PCI_CONFIG its number.
 */
static void reencode(const DistvmMsg *m, GByteArray *buf, bool *fixed_seq,
                     bool *fixed_src)
{
    *fixed_seq = false;
    *fixed_src = false;

    switch (m->hdr.type) {
    case DISTVM_MSG_HELLO:
        distvm_wire_hello(buf, m->hdr.src, m->u.hello.node_id,
                          m->u.hello.nodes, m->u.hello.listen,
                          m->u.hello.speed,
                          m->u.hello.nr_items, m->u.hello.keys,
                          m->u.hello.values);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_WELCOME:
        distvm_wire_welcome(buf, m->u.welcome.nodes, m->u.welcome.node_id,
                            m->u.welcome.addrs, m->u.welcome.speeds);
        *fixed_seq = true;
        *fixed_src = true;
        break;
    case DISTVM_MSG_REFUSE:
        distvm_wire_refuse(buf, m->hdr.src, m->u.reason);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_PEER_HELLO:
    case DISTVM_MSG_NODE_LOST:
    case DISTVM_MSG_NODE_DRAIN:
    case DISTVM_MSG_DRAIN_PAGES:
    case DISTVM_MSG_DRAINED:
    case DISTVM_MSG_NODE_LEFT:
        distvm_wire_node(buf, m->hdr.type, m->hdr.src, m->u.node_id);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_NODE_JOINING:
    case DISTVM_MSG_NODE_JOINED:
        distvm_wire_node_join(buf, m->hdr.type, m->hdr.src, m->u.join.node_id,
                              m->u.join.speed);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_READY:
    case DISTVM_MSG_START:
    case DISTVM_MSG_BYE:
    case DISTVM_MSG_HEARTBEAT:
    case DISTVM_MSG_END:
    case DISTVM_MSG_ENDED:
        distvm_wire_empty(buf, m->hdr.type, m->hdr.src, m->hdr.seq);
        break;
    case DISTVM_MSG_PING:
    case DISTVM_MSG_PONG:
        if (m->u.value == m->hdr.seq) {
            distvm_wire_empty(buf, m->hdr.type, m->hdr.src, m->hdr.seq);
        } else {
            distvm_wire_begin(buf, m->hdr.type, m->hdr.src, m->hdr.seq);
            distvm_wire_put_u64(buf, m->u.value);
            distvm_wire_end(buf);
        }
        break;
    case DISTVM_MSG_VCPU_MOVE:
    case DISTVM_MSG_VCPU_STATE:
    case DISTVM_MSG_VCPU_MOVED:
    case DISTVM_MSG_VCPU_IPI:
    case DISTVM_MSG_VCPU_APIC:
    case DISTVM_MSG_VCPU_NODES:
    case DISTVM_MSG_VCPU_WHERE:
        distvm_wire_vcpu_move(buf, m->hdr.type, m->hdr.src, m->u.vcpu.cpu,
                              m->u.vcpu.from, m->u.vcpu.to, m->u.vcpu.reason,
                              m->u.vcpu.value, m->u.vcpu.data,
                              m->u.vcpu.len);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_VCPU_FLUSH:
    case DISTVM_MSG_VCPU_FLUSHED:
        /* the seq numbers the asker's flushes */
        distvm_wire_vcpu(buf, m->hdr.type, m->hdr.src, m->u.vcpu.cpu,
                         m->u.vcpu.from, m->u.vcpu.to, m->u.vcpu.value, NULL,
                         0);
        distvm_wire_set_seq(buf, m->hdr.seq);
        break;
    case DISTVM_MSG_PCI_CONFIG:
        distvm_wire_pci_config(buf, m->hdr.src, m->hdr.seq, m->u.pci.path,
                               m->u.pci.addr, m->u.pci.val, m->u.pci.len);
        break;
    case DISTVM_MSG_IO_REQ:
    case DISTVM_MSG_IO_REPLY:
        distvm_wire_io(buf, m->hdr.type, m->hdr.src, &m->u.io);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_RUN_STATE:
        distvm_wire_run_state(buf, m->hdr.src, &m->u.run);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_PIC_OUTPUT:
        distvm_wire_pic_output(buf, m->hdr.src, m->u.level);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_DEVICE_HOME:
        distvm_wire_device_home(buf, m->hdr.src, m->u.device);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_DEVICE_AWAY:
        distvm_wire_device_away(buf, m->hdr.src, m->hdr.seq, m->u.away.device,
                                m->u.away.node, m->u.away.data,
                                m->u.away.len);
        break;
    case DISTVM_MSG_FLOW:
        distvm_wire_flow(buf, m->hdr.src, m->u.value);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_PCI_INTX:
        distvm_wire_pci_intx(buf, m->hdr.src, m->u.intx.irq, m->u.intx.level);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_NET_CTRL:
        distvm_wire_net_ctrl(buf, m->hdr.src, m->u.net_ctrl.path,
                             m->u.net_ctrl.data, m->u.net_ctrl.len);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_NET_PAIR:
        distvm_wire_net_pair(buf, m->hdr.src, m->u.net_pair.path,
                             m->u.net_pair.step, m->u.net_pair.pair,
                             m->u.net_pair.node, m->u.net_pair.queue,
                             m->u.net_pair.move);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_POLICY:
        distvm_wire_policy(buf, m->hdr.src, m->u.policy);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_VCPU_WARM_PAGES:
        distvm_wire_warm_pages(buf, m->hdr.src, m->u.warm.cpu,
                               m->u.warm.pages, m->u.warm.count);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_PAGE_REQS:
        distvm_wire_page_reqs(buf, m->hdr.src, m->u.reqs.reqs,
                              m->u.reqs.count);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_CLOCK_REGS:
        distvm_wire_clock_regs(buf, m->hdr.src, &m->u.clock);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_MEM_PLUG:
        distvm_wire_mem_plug(buf, m->hdr.src, m->hdr.seq, &m->u.mem);
        break;
    case DISTVM_MSG_MEM_PLUG_ACK:
        distvm_wire_mem_plug_ack(buf, m->hdr.src, m->hdr.seq, m->u.mem.slot,
                                 m->u.mem.error);
        break;
    case DISTVM_MSG_MEM_UNPLUG:
        distvm_wire_mem_unplug(buf, m->hdr.src, m->u.mem.slot);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_CPU_PLUG:
        distvm_wire_cpu_plug(buf, m->hdr.src, m->hdr.seq, m->u.cpu_plug.cpu,
                             m->u.cpu_plug.device);
        break;
    case DISTVM_MSG_CPU_PLUG_ACK:
        distvm_wire_cpu_plug_ack(buf, m->hdr.src, m->hdr.seq,
                                 m->u.cpu_plug.cpu, m->u.cpu_plug.error);
        break;
    case DISTVM_MSG_CPU_UNPLUG:
        distvm_wire_cpu_unplug(buf, m->hdr.src, m->u.cpu_plug.cpu);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_RES_ACCESS:
    case DISTVM_MSG_RES_REPLY:
        distvm_wire_res(buf, m->hdr.type, m->hdr.src, m->hdr.seq, &m->u.res);
        break;
    case DISTVM_MSG_RES_SET:
        distvm_wire_res_set(buf, m->hdr.src, &m->u.res_set);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_MGR_MOVE:
        distvm_wire_mgr_move(buf, m->hdr.src, m->u.mgr_move.step,
                             m->u.mgr_move.from, m->u.mgr_move.to);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_MGR_ENTRIES:
        reencode_mgr_entries(buf, m->hdr.src, &m->u.mgr_entries);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_EPOCH:
        distvm_wire_epoch(buf, m->hdr.src, &m->u.epoch);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_EPOCH_PAGES:
        reencode_epoch_pages(buf, m->hdr.src, &m->u.epoch_pages);
        *fixed_seq = true;
        break;
    case DISTVM_MSG_EPOCH_STATE:
        distvm_wire_epoch_state(buf, m->hdr.src, &m->u.epoch_state);
        *fixed_seq = true;
        break;
    default:
        distvm_wire_page(buf, m->hdr.type, m->hdr.src, m->hdr.seq,
                         m->u.page.block, m->u.page.page, m->u.page.node,
                         m->u.page.flags, m->u.page.data);
        break;
    }
}

static void check_reencode(const DistvmMsg *m, const uint8_t *payload,
                           const DistvmWireLimits *lim)
{
    GByteArray *buf = g_byte_array_new();
    DistvmMsgHeader hdr;
    DistvmMsg m2;
    uint8_t *payload2;
    bool fixed_seq, fixed_src;
    Error *err = NULL;

    reencode(m, buf, &fixed_seq, &fixed_src);

    /* The same bytes: the decoder accepts exactly one encoding */
    CHECK(buf->len == HDR + m->hdr.length);
    CHECK(!m->hdr.length || !memcmp(buf->data + HDR, payload, m->hdr.length));

    if (!distvm_wire_parse_header(buf->data, &hdr, &err)) {
        fprintf(stderr, "re-encoded header refused: %s\n",
                error_get_pretty(err));
        abort();
    }
    CHECK(hdr.type == m->hdr.type);
    CHECK(hdr.length == m->hdr.length);
    CHECK(hdr.src == (fixed_src ? 0 : m->hdr.src));
    CHECK(hdr.seq == (fixed_seq ? 0 : m->hdr.seq));

    payload2 = g_malloc(MAX(hdr.length, 1));
    memcpy(payload2, buf->data + HDR, hdr.length);
    if (!distvm_wire_decode(&hdr, payload2, lim, &m2, &err)) {
        fprintf(stderr, "re-encoded %s refused: %s\n",
                distvm_msg_type_name(hdr.type), error_get_pretty(err));
        abort();
    }
    CHECK(!err);
    CHECK(!memcmp(&m2.hdr, &hdr, sizeof(hdr)));
    check_valid(&m2, payload2, lim);
    CHECK(msg_body_equal(m, &m2));

    distvm_msg_clear(&m2);
    g_free(payload2);
    g_byte_array_unref(buf);
}

/*
 * Whether a RUN_STATE of @action may go from @src to @dst: a node tells
 * home (node 0) it stopped, paused for an epoch or holds its vCPUs; home
 * tells the others the rest
 */
static bool run_state_role(uint32_t action, uint32_t src, uint32_t dst)
{
    switch (action) {
    case DISTVM_RUN_STOPPED:
    case DISTVM_RUN_PAUSED:
    case DISTVM_RUN_HELD:
        return src != 0 && dst == 0;
    default:
        return src == 0 && dst != 0;
    }
}

/*
 * Whether an EPOCH of @step about @node may go from @src to @dst: home
 * asks the others to save, commit, abort and roll back, and taking a
 * lost node over tells them to (RECOVER), to settle, where a vCPU runs
 * (PLACE) and that it is done (RECOVERED), and asks them for their
 * slots' content (PARITY_ASK); they tell home they are busy, stored a
 * node's data, rolled back, lost a node, run a vCPU (RUNS), are ready,
 * sent their slots (PARITY_DONE) or, home's standby, that it has home's
 * COMMIT (COMMITTED); the node it is about says it sent its data, asked
 * for all it needs or sent all asked; any other says its page messages
 * stopped (MARK) or that it told all the pages it holds (HELD_DONE)
 */
static bool epoch_role(uint32_t step, uint32_t node, uint32_t src,
                       uint32_t dst)
{
    switch (step) {
    case DISTVM_EPOCH_SAVE:
    case DISTVM_EPOCH_COMMIT:
    case DISTVM_EPOCH_ABORT:
    case DISTVM_EPOCH_ROLLBACK:
    case DISTVM_EPOCH_RECOVER:
    case DISTVM_EPOCH_SETTLE:
    case DISTVM_EPOCH_PLACE:
    case DISTVM_EPOCH_RECOVERED:
    case DISTVM_EPOCH_PARITY_ASK:
        return src == 0 && dst != 0;
    case DISTVM_EPOCH_BUSY:
    case DISTVM_EPOCH_STORED:
    case DISTVM_EPOCH_ROLLED:
    case DISTVM_EPOCH_LOST:
    case DISTVM_EPOCH_RUNS:
    case DISTVM_EPOCH_READY:
    case DISTVM_EPOCH_PARITY_DONE:
    case DISTVM_EPOCH_COMMITTED:
        return src != 0 && dst == 0;
    case DISTVM_EPOCH_SENT:
    case DISTVM_EPOCH_FETCH:
    case DISTVM_EPOCH_FETCHED:
        return src == node;
    case DISTVM_EPOCH_MARK:
    case DISTVM_EPOCH_HELD_DONE:
        return src != node;
    default:
        /* a step the decoder accepts and this does not know */
        CHECK(step >= DISTVM_EPOCH__MAX);
        return false;
    }
}

static void fuzz_one(const DistvmMsgHeader *hdr, const uint8_t *data,
                     const DistvmWireLimits *lim)
{
    DistvmMsg msg;
    Error *err = NULL;
    /* exactly hdr->length bytes, so that over-reads are caught */
    uint8_t *payload = hdr->length ? malloc(hdr->length) : NULL;

    if (hdr->length) {
        CHECK(payload);
        memcpy(payload, data, hdr->length);
    }
    if (distvm_wire_decode(hdr, payload, lim, &msg, &err)) {
        CHECK(!err);
        CHECK(!memcmp(&msg.hdr, hdr, sizeof(*hdr)));
        check_valid(&msg, payload, lim);
        check_reencode(&msg, payload, lim);
        /* the role check, as each node of the cluster receiving it */
        for (uint32_t dst = 0; dst < lim->nodes; dst++) {
            bool ok = distvm_wire_check_role(&msg, lim->home, dst, &err);

            CHECK(ok == !err);
            CHECK(msg.hdr.type != DISTVM_MSG_RUN_STATE ||
                  ok == run_state_role(msg.u.run.action, msg.hdr.src, dst));
            CHECK(msg.hdr.type != DISTVM_MSG_EPOCH ||
                  ok == epoch_role(msg.u.epoch.step, msg.u.epoch.node,
                                   msg.hdr.src, dst));
            if (err) {
                CHECK(error_get_pretty(err)[0]);
                error_free(err);
                err = NULL;
            }
        }
        distvm_msg_clear(&msg);
    } else {
        CHECK(err);
        CHECK(error_get_pretty(err)[0]);
        error_free(err);
    }
    free(payload);
}

/* Called by libFuzzer; declared for -Wmissing-prototypes */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    while (size >= HDR) {
        uint8_t hbuf[HDR];
        DistvmMsgHeader hdr;
        Error *err = NULL;

        memcpy(hbuf, data, HDR);
        if (!distvm_wire_parse_header(hbuf, &hdr, &err)) {
            /* a receiver drops the connection */
            CHECK(err);
            error_free(err);
            break;
        }
        CHECK(!err);
        CHECK(hdr.length <= DISTVM_WIRE_MAX_PAYLOAD);
        data += HDR;
        size -= HDR;
        if (hdr.length > size) {
            break;              /* the rest of the message never came */
        }
        for (size_t i = 0; i < ARRAY_SIZE(fuzz_limits); i++) {
            fuzz_one(&hdr, data, &fuzz_limits[i]);
        }
        data += hdr.length;
        size -= hdr.length;
    }
    return 0;
}

#else /* DISTVM_WIRE_FUZZ_SEEDS */

static void write_seed(const char *dir, const char *name, GByteArray *buf)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    GError *gerr = NULL;

    if (!g_file_set_contents(path, (const char *)buf->data, buf->len,
                             &gerr)) {
        fprintf(stderr, "%s\n", gerr->message);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    static char *keys[] = { (char *)"machine", (char *)"ram_size",
                            (char *)"smp" };
    static char *values[] = { (char *)"pc-q35-10.0", (char *)"536870912",
                              (char *)"2" };
    static char *addrs[] = { (char *)"tcp:10.0.0.1:4444",
                             (char *)"tcp:10.0.0.2:4444",
                             (char *)"unix:/run/distvm/n2.sock",
                             (char *)"tcp:[::1]:4447" };
    static const uint32_t speeds[] = { 1000, 2000, 500, 1 };
    /* node 2 may join later (start-nodes=2) */
    static char *elastic_addrs[] = { (char *)"tcp:10.0.0.1:4444",
                                     (char *)"tcp:10.0.0.2:4444",
                                     (char *)"" };
    static const uint32_t elastic_speeds[] = { 1000, 1000, 0 };
    g_autoptr(GByteArray) b = g_byte_array_new();
    g_autoptr(GByteArray) stream = g_byte_array_new();
    uint8_t *page = g_malloc(DISTVM_PAGE_SIZE);
    uint8_t state[600];

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    for (int i = 0; i < DISTVM_PAGE_SIZE; i++) {
        page[i] = i % 251;
    }
    for (size_t i = 0; i < sizeof(state); i++) {
        state[i] = i * 37 % 256;
    }

#define SEED(name, encode) do {                                       \
        encode;                                                       \
        write_seed(argv[1], name, b);                                 \
        g_byte_array_append(stream, b->data, b->len);                 \
    } while (0)

    SEED("hello", distvm_wire_hello(b, 1, 1, 4, "tcp:10.0.0.2:4444", 500,
                                    3, keys, values));
    SEED("hello-any", distvm_wire_hello(b, 2, DISTVM_WIRE_NODE_ANY, 4,
                                        "unix:/n.sock", 1000, 0, NULL,
                                        NULL));
    SEED("welcome", distvm_wire_welcome(b, 4, 1, addrs, speeds));
    SEED("welcome-elastic", distvm_wire_welcome(b, 3, 1, elastic_addrs,
                                                elastic_speeds));
    SEED("refuse", distvm_wire_refuse(b, 0, "machine type differs"));
    SEED("peer-hello", distvm_wire_node(b, DISTVM_MSG_PEER_HELLO, 2, 2));
    SEED("ready", distvm_wire_empty(b, DISTVM_MSG_READY, 1, 0));
    SEED("start", distvm_wire_empty(b, DISTVM_MSG_START, 0, 0));
    SEED("ping", distvm_wire_empty(b, DISTVM_MSG_PING, 3, 77));
    SEED("pong", distvm_wire_empty(b, DISTVM_MSG_PONG, 0, 77));
    SEED("page-req", distvm_wire_page(b, DISTVM_MSG_PAGE_REQ, 1, 5, 2, 4096,
                                      1, DISTVM_PAGE_WRITE |
                                      DISTVM_PAGE_HAS_COPY, NULL));
    SEED("page-fwd", distvm_wire_page(b, DISTVM_MSG_PAGE_FWD, 0, 5, 2, 4096,
                                      1, DISTVM_PAGE_WRITE |
                                      DISTVM_PAGE_DROP, NULL));
    SEED("page-data", distvm_wire_page(b, DISTVM_MSG_PAGE_DATA, 3, 5, 0, 15,
                                       1, DISTVM_PAGE_WRITE, page));
    SEED("page-data-zero", distvm_wire_page(b, DISTVM_MSG_PAGE_DATA, 3, 6,
                                            1, 0, 1, DISTVM_PAGE_ZERO,
                                            NULL));
    SEED("page-inv", distvm_wire_page(b, DISTVM_MSG_PAGE_INV, 0, 7, 2, 1, 2,
                                      0, NULL));
    SEED("page-inv-ack", distvm_wire_page(b, DISTVM_MSG_PAGE_INV_ACK, 2, 7,
                                          2, 1, 2, 0, NULL));
    SEED("page-grant", distvm_wire_page(b, DISTVM_MSG_PAGE_GRANT, 0, 5, 2,
                                        4096, 1, DISTVM_PAGE_WRITE, NULL));
    SEED("page-done", distvm_wire_page(b, DISTVM_MSG_PAGE_DONE, 1, 5, 2,
                                       4096, 1, 0, NULL));
    SEED("vcpu-move", distvm_wire_vcpu(b, DISTVM_MSG_VCPU_MOVE, 2, 1, 2, 3,
                                       0, NULL, 0));
    SEED("vcpu-state", distvm_wire_vcpu(b, DISTVM_MSG_VCPU_STATE, 0, 1, 0,
                                        3, 1763776000123456789ull, state,
                                        sizeof(state)));
    SEED("vcpu-moved", distvm_wire_vcpu(b, DISTVM_MSG_VCPU_MOVED, 3, 1, 0,
                                        3, 250000, NULL, 0));
    /* the placement policy on node 1 asks node 2 to take vCPU 3 */
    SEED("vcpu-move-policy", distvm_wire_vcpu_move(b, DISTVM_MSG_VCPU_MOVE, 1,
                                                   3, 1, 2, DISTVM_MOVE_POLICY,
                                                   0, NULL, 0));
    /* fixed delivery (mode 0) of vector 0xec, level-triggered */
    SEED("vcpu-ipi", distvm_wire_vcpu(b, DISTVM_MSG_VCPU_IPI, 1, 7, 1, 3,
                                      0xec << 8 | 1 << 16, NULL, 0));
    /*
     * vCPU 3 left node 1 for node 2 with two pages, one it wrote; within
     * the fuzzer's limits (RAMBlocks of 16, 1 and 262144 pages)
     */
    {
        static const DistvmPageRef warm[] = {
            { .block = 2, .flags = DISTVM_WARM_WRITE, .page = 0x123 },
            { .block = 1, .flags = 0, .page = 0 },
        };

        SEED("vcpu-warm-pages", distvm_wire_warm_pages(b, 1, 3, warm, 2));
    }
    /* node 2 asks node 0 for two pages of a moved vCPU, one to write */
    {
        static const DistvmPageRef reqs[] = {
            { .block = 2, .flags = DISTVM_PAGE_WRITE, .page = 0x123 },
            { .block = 0, .flags = 0, .page = 15 },
        };

        SEED("page-reqs", distvm_wire_page_reqs(b, 2, reqs, 2));
    }
    /* home turns vCPU 0's A20 line off, on node 2 */
    SEED("vcpu-ipi-a20", distvm_wire_vcpu(b, DISTVM_MSG_VCPU_IPI, 0, 0, 0, 2,
                                          DISTVM_DM_A20, NULL, 0));
    /*
     * node 1 tells node 3 how vCPU 2's LAPIC is addressed: APIC ID 2,
     * logical destination 0x04, flat destination format
     */
    SEED("vcpu-apic", distvm_wire_vcpu(b, DISTVM_MSG_VCPU_APIC, 1, 2, 1, 3,
                                       2 | 0x04 << 8 | 0xf << 16, NULL, 0));
    /* node 1 says vCPU 5 may run on nodes 0, 1 and 3 only */
    SEED("vcpu-nodes", distvm_wire_vcpu(b, DISTVM_MSG_VCPU_NODES, 1, 5, 1, 1,
                                        0xb, NULL, 0));
    /* home sets PAM0 of the Q35 host bridge: BIOS area read/write RAM */
    SEED("pci-config", distvm_wire_pci_config(b, 0, 1, "/machine/q35/mch",
                                              0x90, 0x30, 1));
    /* node 2's devices raise line 1 of the root PCI bus */
    SEED("pci-intx", distvm_wire_pci_intx(b, 2, 1, 1));
    SEED("net-ctrl", distvm_wire_net_ctrl(b, 0, "/machine/peripheral/vmq",
                                          (const uint8_t[]) { 4, 0, 4, 0 },
                                          4));
    /* home moves pair 2 of a card to itself: node 2 tells it to take it */
    SEED("net-pair-move", distvm_wire_net_pair(b, 0,
                                               "/machine/peripheral/vmq",
                                               DISTVM_NET_PAIR_MOVE, 2, 0,
                                               4, 1));
    SEED("net-pair-take", distvm_wire_net_pair(b, 2,
                                               "/machine/peripheral/vmq",
                                               DISTVM_NET_PAIR_TAKE, 2, 0,
                                               4, 1));
    /* home tells a node that joins: node 1 serves pair 3, moved twice */
    SEED("net-pair-state", distvm_wire_net_pair(b, 0,
                                                "/machine/peripheral/vmq",
                                                DISTVM_NET_PAIR_STATE, 3, 1,
                                                6, 2));
    /* node 1 tells home that its network path went down */
    SEED("net-pair-path-down", distvm_wire_net_pair(b, 1,
                                                    "/machine/peripheral/vmq",
                                                    DISTVM_NET_PAIR_PATH_DOWN,
                                                    0, 1, 0, 0));
    /* vCPU 3 of node 1 asks node 2 to flush vCPUs 1 and 3; its answer */
    SEED("vcpu-flush", (distvm_wire_vcpu(b, DISTVM_MSG_VCPU_FLUSH, 1, 3, 1,
                                         2, 0x0a, NULL, 0),
                        distvm_wire_set_seq(b, 7)));
    SEED("vcpu-flushed", (distvm_wire_vcpu(b, DISTVM_MSG_VCPU_FLUSHED, 2, 3,
                                           2, 1, 0, NULL, 0),
                          distvm_wire_set_seq(b, 7)));
    /* vCPU 0 on node 1 notifies a virtio queue of a device on node 2 */
    SEED("io-req-device", distvm_wire_io(b, DISTVM_MSG_IO_REQ, 1,
                                         &(DistvmMsgIo) {
        .cpu = 0, .space = DISTVM_IO_MEMORY, .size = 2,
        .flags = DISTVM_IO_WRITE | DISTVM_IO_CONFIG_GEN, .addr = 0xfebf7004,
        .data = 1, .config_gen = 17,
    }));
    /* vCPU 1 on node 2 writes 'A' to the COM1 transmit register */
    SEED("io-req", distvm_wire_io(b, DISTVM_MSG_IO_REQ, 2, &(DistvmMsgIo) {
        .cpu = 1, .space = DISTVM_IO_PORT, .size = 1,
        .flags = DISTVM_IO_WRITE, .addr = 0x3f8, .data = 'A',
    }));
    /* vCPU 2 on node 1 reads the HPET's main counter (MMIO, 8 bytes) */
    SEED("io-req-mmio", distvm_wire_io(b, DISTVM_MSG_IO_REQ, 1, &(DistvmMsgIo) {
        .cpu = 2, .space = DISTVM_IO_MEMORY, .size = 8, .flags = 0,
        .addr = 0xfed000f0, .data = 0,
    }));
    /* home answers a 4-byte read of CONFIG_DATA: MEMTX_OK, a device id */
    SEED("io-reply", distvm_wire_io(b, DISTVM_MSG_IO_REPLY, 0,
                                    &(DistvmMsgIo) {
        .cpu = 1, .space = DISTVM_IO_PORT, .size = 4, .flags = 0,
        .addr = 0xcfc, .data = 0x29c08086,
    }));
    /*
     * home lets the guest run on: 5 s of guest time and a 2.5 GHz guest
     * TSC, read a day after the host booted with its own 2.5 GHz TSC
     */
    SEED("run-state", distvm_wire_run_state(b, 0, &(DistvmMsgRunState) {
        .action = DISTVM_RUN_CONT, .virtual_ns = 5000000000ull,
        .guest_ticks = 12500000000ull, .host_ns = 86400123456789ull,
        .host_ticks = 216000308641972ull, .host_id = 0x5d41402abc4b2a76ull,
    }));
    /*
     * home pauses the guest for checkpoint epoch 7; node 2 paused, 6 s
     * into guest time, for it; home ends the pause with its clocks
     */
    SEED("run-state-pause", distvm_wire_run_state(b, 0, &(DistvmMsgRunState) {
        .action = DISTVM_RUN_PAUSE, .virtual_ns = 7,
    }));
    SEED("run-state-paused", distvm_wire_run_state(b, 2,
                                                   &(DistvmMsgRunState) {
        .action = DISTVM_RUN_PAUSED, .virtual_ns = 6000000000ull,
        .guest_ticks = 15000000000ull, .host_ns = 7,
    }));
    SEED("run-state-unpause", distvm_wire_run_state(b, 0,
                                                    &(DistvmMsgRunState) {
        .action = DISTVM_RUN_UNPAUSE, .virtual_ns = 6000000000ull,
        .guest_ticks = 15000000000ull, .host_ns = 86401123456789ull,
        .host_ticks = 216002808641972ull, .host_id = 0x5d41402abc4b2a76ull,
    }));
    /* home's 8259 raises its output: an interrupt for the BSP's LINT0 */
    SEED("pic-output", distvm_wire_pic_output(b, 0, 1));
    SEED("device-home", distvm_wire_device_home(b, 0, 3));
    SEED("device-away", distvm_wire_device_away(b, 0, 9, 3, 2,
                                                (const uint8_t *)"QEVM", 4));
    /* vCPU 0 on node 1 acknowledges it, as INTA cycles would */
    SEED("io-req-pic-ack", distvm_wire_io(b, DISTVM_MSG_IO_REQ, 1,
                                          &(DistvmMsgIo) {
        .cpu = 0, .space = DISTVM_IO_PIC_ACK, .size = 1, .flags = 0,
        .addr = 0, .data = 0,
    }));
    /* home answers: MEMTX_OK, vector 0x08 (IRQ 0 as the BIOS maps it) */
    /* vCPU 0's write to port 0x92 turned its A20 line on */
    SEED("io-reply-a20", distvm_wire_io(b, DISTVM_MSG_IO_REPLY, 0,
                                        &(DistvmMsgIo) {
        .cpu = 0, .space = DISTVM_IO_PORT, .size = 1,
        .flags = DISTVM_IO_A20 | DISTVM_IO_A20_ON, .addr = 0x92, .data = 0,
    }));
    SEED("io-reply-pic-ack", distvm_wire_io(b, DISTVM_MSG_IO_REPLY, 0,
                                            &(DistvmMsgIo) {
        .cpu = 0, .space = DISTVM_IO_PIC_ACK, .size = 1, .flags = 0,
        .addr = 0, .data = 0x08,
    }));
    /* and lowers its output again */
    SEED("pic-output-low", distvm_wire_pic_output(b, 0, 0));
    /* home's clock registers before the firmware has set any up */
    SEED("clock-regs-none", distvm_wire_clock_regs(b, 0,
                                                   &(DistvmMsgClockRegs) {
        .flags = 0,
    }));
    /* Q35's PM timer at 0x608; the HPET at 0xfed00000, its counter stopped */
    SEED("clock-regs-stopped", distvm_wire_clock_regs(b, 0,
                                                      &(DistvmMsgClockRegs) {
        .flags = DISTVM_CLOCK_HPET | DISTVM_CLOCK_PM_TIMER,
        .pm_timer_port = 0x608, .hpet_base = 0xfed00000,
        .hpet_counter = 0x123456789ull,
    }));
    /* the guest starts the HPET 5 s into its time: counter = clock - 5 s */
    SEED("clock-regs", distvm_wire_clock_regs(b, 0, &(DistvmMsgClockRegs) {
        .flags = DISTVM_CLOCK_FLAGS_ALL, .pm_timer_port = 0x608,
        .hpet_base = 0xfed00000, .hpet_counter = 0x123456789ull,
        .hpet_offset = (uint64_t)-5000000000ll,
    }));
    SEED("node-lost", distvm_wire_node(b, DISTVM_MSG_NODE_LOST, 1, 3));
    SEED("node-joining", distvm_wire_node_join(b, DISTVM_MSG_NODE_JOINING, 0,
                                               2, DISTVM_WIRE_SPEED_ONE));
    SEED("node-joined", distvm_wire_node_join(b, DISTVM_MSG_NODE_JOINED, 0, 3,
                                              500));
    SEED("node-drain", distvm_wire_node(b, DISTVM_MSG_NODE_DRAIN, 0, 2));
    SEED("drain-pages", distvm_wire_node(b, DISTVM_MSG_DRAIN_PAGES, 0, 2));
    SEED("drained", distvm_wire_node(b, DISTVM_MSG_DRAINED, 1, 2));
    SEED("node-left", distvm_wire_node(b, DISTVM_MSG_NODE_LEFT, 0, 2));
    /*
     * node 2 tells node 1 it is done with 1024 of its messages for the
     * main loop; and a node that is done with none yet
     */
    SEED("flow", distvm_wire_flow(b, 2, 1024));
    SEED("flow-none", distvm_wire_flow(b, 1, 0));
    SEED("vcpu-where", {
        distvm_wire_vcpu(b, DISTVM_MSG_VCPU_WHERE, 0, 1, 0, 2, 0, NULL, 0);
        distvm_wire_set_seq(b, 7);
    });
    SEED("bye", distvm_wire_empty(b, DISTVM_MSG_BYE, 1, 0));
    SEED("heartbeat", distvm_wire_empty(b, DISTVM_MSG_HEARTBEAT, 2, 0));
    SEED("end", distvm_wire_empty(b, DISTVM_MSG_END, 1, 0));
    SEED("ended", distvm_wire_empty(b, DISTVM_MSG_ENDED, 0, 0));
    SEED("policy", distvm_wire_policy(b, 2, 1));
    /*
     * home plugs a 128 MiB pc-dimm backed by a new memory-backend-ram,
     * whose RAMBlock is index 3 on every node; plug 9
     */
    SEED("mem-plug", distvm_wire_mem_plug(b, 0, 9, &(DistvmMsgMemPlug) {
        .slot = 3, .size = 128 * 1024 * 1024,
        .backend_type = (char *)"memory-backend-ram",
        .backend_id = (char *)"mem1",
        .device = (char *)"{\"driver\": \"pc-dimm\", \"id\": \"dimm1\", "
                  "\"memdev\": \"mem1\"}",
    }));
    /* node 2 plugged it; node 1 could not */
    SEED("mem-plug-ack", distvm_wire_mem_plug_ack(b, 2, 9, 3, ""));
    SEED("mem-plug-ack-error", distvm_wire_mem_plug_ack(b, 1, 9, 3,
                                                        "cannot allocate "
                                                        "memory"));
    /* home takes it out again */
    SEED("mem-unplug", distvm_wire_mem_unplug(b, 0, 3));
    SEED("cpu-plug", distvm_wire_cpu_plug(b, 0, 9, 4, "{\"apic-id\": 4, "
         "\"driver\": \"qemu64-x86_64-cpu\", \"id\": \"cpu4\"}"));
    SEED("cpu-plug-ack", distvm_wire_cpu_plug_ack(b, 1, 9, 4, ""));
    SEED("cpu-plug-ack-error", distvm_wire_cpu_plug_ack(b, 2, 9, 4,
         "vCPU 4 exists here already"));
    SEED("cpu-unplug", distvm_wire_cpu_unplug(b, 0, 4));
    /*
     * node 2 reads 4 bytes of RAM resident on node 1, request 17, then
     * writes 8; node 1 answers the read: MEMTX_OK and what it read
     */
    SEED("res-access", distvm_wire_res(b, DISTVM_MSG_RES_ACCESS, 2, 17,
                                       &(DistvmMsgRes) {
        .addr = 0x40001000, .size = 4, .flags = 0, .data = 0,
    }));
    SEED("res-access-write", distvm_wire_res(b, DISTVM_MSG_RES_ACCESS, 2, 18,
                                             &(DistvmMsgRes) {
        .addr = 0x40001008, .size = 8, .flags = DISTVM_RES_WRITE,
        .data = 0x0123456789abcdefull,
    }));
    SEED("res-reply", distvm_wire_res(b, DISTVM_MSG_RES_REPLY, 1, 17,
                                      &(DistvmMsgRes) {
        .addr = 0x40001000, .size = 4, .flags = 0, .data = 0xdeadbeef,
    }));
    /* home asks node 2 to make 4 MiB at 18 MiB resident there */
    SEED("res-set", distvm_wire_res_set(b, 0, &(DistvmMsgResSet) {
        .base = 0x1200000, .size = 0x400000, .node = 2,
        .step = DISTVM_RES_SET_ASK,
    }));
    /* node 2 tells home it registered it */
    SEED("res-set-registered", distvm_wire_res_set(b, 2, &(DistvmMsgResSet) {
        .base = 0x1200000, .size = 0x400000, .node = 2,
        .step = DISTVM_RES_SET_REGISTERED,
    }));
    /* node 1 has covered it */
    SEED("res-set-covered", distvm_wire_res_set(b, 1, &(DistvmMsgResSet) {
        .base = 0x1200000, .size = 0x400000, .node = 2,
        .step = DISTVM_RES_SET_COVERED,
    }));
    /* home tells a joining node the range is resident */
    SEED("res-set-known", distvm_wire_res_set(b, 0, &(DistvmMsgResSet) {
        .base = 0x1200000, .size = 0x400000, .node = 2,
        .step = DISTVM_RES_SET_KNOWN,
    }));
    /*
     * node 2 is drained: home asks it to hand the pages it manages to
     * node 1; node 2 asks the others to take node 1's messages too, and
     * node 3 has taken them
     */
    SEED("mgr-move-ask", distvm_wire_mgr_move(b, 0, DISTVM_MGR_MOVE_ASK, 2,
                                              1));
    SEED("mgr-move-prepare", distvm_wire_mgr_move(b, 2,
                                                  DISTVM_MGR_MOVE_PREPARE,
                                                  2, 1));
    SEED("mgr-move-prepared", distvm_wire_mgr_move(b, 3,
                                                   DISTVM_MGR_MOVE_PREPARED,
                                                   2, 1));
    /*
     * node 2 sends node 1 its entries: all of RAMBlock 0, with owners and
     * none, and copy sets; and the last page of RAMBlock 2
     */
    {
        static const int8_t owner[16] = {
            0, 1, 2, 3, -1, 0, 0, 1, 2, -1, -1, 3, 3, 2, 1, 0,
        };
        static const uint16_t copyset[16] = {
            0x1, 0x3, 0x4, 0xf, 0, 0x9, 0x1, 0x2, 0x6, 0x5, 0, 0x8, 0xb,
            0xc, 0xe, 0x7,
        };

        SEED("mgr-entries", distvm_wire_mgr_entries(b, 2, 0, 0, 16, owner,
                                                    copyset));
        SEED("mgr-entries-last", distvm_wire_mgr_entries(b, 2, 2, 262143, 1,
                                                         owner + 3,
                                                         copyset + 3));
    }
    /* node 2 tells node 3 that node 1 manages them now; node 3 has seen */
    SEED("mgr-move-moved", distvm_wire_mgr_move(b, 2, DISTVM_MGR_MOVE_MOVED,
                                                2, 1));
    SEED("mgr-move-moved-ack", distvm_wire_mgr_move(b, 3,
                                                    DISTVM_MGR_MOVE_MOVED_ACK,
                                                    2, 1));
    /* home tells a joining node that node 2's pages went to node 1 */
    SEED("mgr-move-known", distvm_wire_mgr_move(b, 0, DISTVM_MGR_MOVE_KNOWN,
                                                2, 1));
    /*
     * checkpoint epoch 7: home asks the others to save it; node 1 is busy
     * moving a vCPU
     */
    SEED("epoch-save", distvm_wire_epoch(b, 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SAVE, .node = 0, .epoch = 7,
    }));
    SEED("epoch-busy", distvm_wire_epoch(b, 1, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_BUSY, .node = 1, .epoch = 7,
    }));
    /*
     * node 2 sends its replica, node 3, the pages it changed in RAMBlock
     * 2, one of them all zero now, and the last of RAMBlock 0
     */
    SEED("epoch-pages", {
        distvm_wire_epoch_pages_begin(b, 2, 7, 2);
        distvm_wire_epoch_pages_add(b, 0x123, 0, page);
        distvm_wire_epoch_pages_add(b, 0x124, 0, NULL);
        distvm_wire_epoch_pages_add(b, 262143, 0, page);
        distvm_wire_end(b);
    });
    SEED("epoch-pages-zero", {
        distvm_wire_epoch_pages_begin(b, 2, 7, 0);
        distvm_wire_epoch_pages_add(b, 15, 0, NULL);
        distvm_wire_end(b);
    });
    /* and vCPU 3's state, in two chunks */
    SEED("epoch-state-vcpu", distvm_wire_epoch_state(b, 2,
                                                     &(DistvmMsgEpochState) {
        .epoch = 7, .kind = DISTVM_EPOCH_STATE_VCPU, .index = 3,
        .total = sizeof(state), .offset = 0, .len = 400, .data = state,
    }));
    SEED("epoch-state-vcpu-end", distvm_wire_epoch_state(b, 2,
                                                       &(DistvmMsgEpochState) {
        .epoch = 7, .kind = DISTVM_EPOCH_STATE_VCPU, .index = 3,
        .total = sizeof(state), .offset = 400, .len = sizeof(state) - 400,
        .data = state + 400,
    }));
    /*
     * then tells it it sent all, with that one vCPU's state; node 3 tells
     * home it stored it
     */
    SEED("epoch-sent", distvm_wire_epoch(b, 2, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SENT, .node = 2, .epoch = 7, .bytes = 9876,
        .vcpus = 1,
    }));
    SEED("epoch-stored", distvm_wire_epoch(b, 3, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_STORED, .node = 2, .epoch = 7, .bytes = 9876,
        .vcpus = 1,
    }));
    /* home sends the devices' state to its replica, node 1 */
    SEED("epoch-state-devices", distvm_wire_epoch_state(b, 0,
                                                        &(DistvmMsgEpochState) {
        .epoch = 7, .kind = DISTVM_EPOCH_STATE_DEVICES, .index = 0,
        .total = sizeof(state), .offset = 0, .len = sizeof(state),
        .data = state,
    }));
    /* and tells it it sent all, without a vCPU's state: none runs there */
    SEED("epoch-sent-no-vcpus", distvm_wire_epoch(b, 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SENT, .node = 0, .epoch = 7,
        .bytes = sizeof(state),
    }));
    /* home commits epoch 7, and aborts epoch 8 */
    SEED("epoch-commit", distvm_wire_epoch(b, 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_COMMIT, .node = 0, .epoch = 7,
    }));
    SEED("epoch-abort", distvm_wire_epoch(b, 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_ABORT, .node = 0, .epoch = 8,
    }));
    /*
     * home rolls the guest back to epoch 7: node 2 asks node 3 for the
     * committed copies of two pages of RAMBlock 2, then FETCH; node 3
     * sends them, one all zero, another of RAMBlock 0 from epoch 6, and
     * vCPU 3's state, then FETCHED; node 1 sends home the devices'
     * state; node 2 rolled back, with one vCPU's state loaded
     */
    SEED("epoch-rollback", distvm_wire_epoch(b, 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_ROLLBACK, .node = 0, .epoch = 7,
    }));
    SEED("epoch-pages-ask", {
        distvm_wire_epoch_pages_begin(b, 2, 7, 2);
        distvm_wire_epoch_pages_add(b, 0x123, DISTVM_EPOCH_PAGE_ASK, NULL);
        distvm_wire_epoch_pages_add(b, 262143, DISTVM_EPOCH_PAGE_ASK, NULL);
        distvm_wire_end(b);
    });
    SEED("epoch-fetch", distvm_wire_epoch(b, 2, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_FETCH, .node = 2, .epoch = 7,
    }));
    SEED("epoch-pages-copy", {
        distvm_wire_epoch_pages_begin(b, 3, 7, 2);
        distvm_wire_epoch_pages_add(b, 0x123, DISTVM_EPOCH_PAGE_COPY, page);
        distvm_wire_epoch_pages_add(b, 262143, DISTVM_EPOCH_PAGE_COPY, NULL);
        distvm_wire_end(b);
    });
    SEED("epoch-pages-copy-zero", {
        distvm_wire_epoch_pages_begin(b, 3, 6, 0);
        distvm_wire_epoch_pages_add(b, 15, DISTVM_EPOCH_PAGE_COPY, NULL);
        distvm_wire_end(b);
    });
    SEED("epoch-state-vcpu-copy", distvm_wire_epoch_state(b, 3,
                                                        &(DistvmMsgEpochState) {
        .epoch = 7, .kind = DISTVM_EPOCH_STATE_VCPU_COPY, .index = 3,
        .total = sizeof(state), .offset = 0, .len = sizeof(state),
        .data = state,
    }));
    SEED("epoch-fetched", distvm_wire_epoch(b, 3, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_FETCHED, .node = 3, .epoch = 7,
    }));
    SEED("epoch-state-devices-copy", distvm_wire_epoch_state(b, 1,
                                                        &(DistvmMsgEpochState) {
        .epoch = 7, .kind = DISTVM_EPOCH_STATE_DEVICES_COPY, .index = 0,
        .total = sizeof(state), .offset = 200, .len = sizeof(state) - 200,
        .data = state + 200,
    }));
    SEED("epoch-rolled", distvm_wire_epoch(b, 2, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_ROLLED, .node = 2, .epoch = 7, .vcpus = 1,
    }));
    /*
     * node 3 is lost, its part taken over from epoch 7: node 1 tells home,
     * which tells the others, then to settle; node 2 tells the others its
     * page messages stopped, tells node 1 the pages of RAMBlock 2 it
     * holds, one of them writable, and one of RAMBlock 0, writable, then
     * that it told all; node 1 runs vCPU 3 and is ready; home places vCPU
     * 5 on node 2, and the guest runs again
     */
    SEED("epoch-lost", distvm_wire_epoch(b, 1, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_LOST, .node = 3, .epoch = 7,
    }));
    SEED("epoch-recover", distvm_wire_epoch(b, 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_RECOVER, .node = 3, .epoch = 7,
    }));
    SEED("epoch-settle", distvm_wire_epoch(b, 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SETTLE, .node = 3, .epoch = 7,
    }));
    SEED("epoch-mark", distvm_wire_epoch(b, 2, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_MARK, .node = 3, .epoch = 7,
    }));
    SEED("epoch-pages-held", {
        distvm_wire_epoch_pages_begin(b, 2, 7, 2);
        distvm_wire_epoch_pages_add(b, 0x123, DISTVM_EPOCH_PAGE_HELD, NULL);
        distvm_wire_epoch_pages_add(b, 262143, DISTVM_EPOCH_PAGE_HELD |
                                    DISTVM_EPOCH_PAGE_OWNED, NULL);
        distvm_wire_end(b);
    });
    SEED("epoch-pages-held-owned", {
        distvm_wire_epoch_pages_begin(b, 2, 7, 0);
        distvm_wire_epoch_pages_add(b, 15, DISTVM_EPOCH_PAGE_HELD |
                                    DISTVM_EPOCH_PAGE_OWNED, NULL);
        distvm_wire_end(b);
    });
    SEED("epoch-held-done", distvm_wire_epoch(b, 2, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_HELD_DONE, .node = 3, .epoch = 7,
    }));
    SEED("epoch-runs", distvm_wire_epoch(b, 1, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_RUNS, .node = 3, .epoch = 7, .vcpus = 3,
    }));
    SEED("epoch-ready", distvm_wire_epoch(b, 1, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_READY, .node = 3, .epoch = 7,
    }));
    SEED("epoch-place", distvm_wire_epoch(b, 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_PLACE, .node = 2, .epoch = 7, .vcpus = 5,
    }));
    SEED("epoch-recovered", distvm_wire_epoch(b, 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_RECOVERED, .node = 3, .epoch = 7,
    }));
    /*
     * with redundancy=parity: node 2 sends its keeper, node 3, the
     * changes to the parity of its slots 0 and 1 for two pages of RAMBlock
     * 0 at epoch 7, the second unchanged (all zero), and of the guest's
     * last slot for the last page of RAMBlock 2; node 3 is lost and home
     * asks node 1 for the committed content of its slots 0 to 4, which
     * it sends (two slots, one all zero), then PARITY_DONE
     */
    SEED("epoch-pages-delta", {
        distvm_wire_epoch_pages_begin(b, 2, 7, 0);
        distvm_wire_epoch_pages_add_slot(b, 15, DISTVM_EPOCH_PAGE_DELTA, 0,
                                         page);
        distvm_wire_epoch_pages_add_slot(b, 3, DISTVM_EPOCH_PAGE_DELTA, 1,
                                         NULL);
        distvm_wire_end(b);
    });
    SEED("epoch-pages-delta-last", {
        distvm_wire_epoch_pages_begin(b, 2, 7, 2);
        distvm_wire_epoch_pages_add_slot(b, 262143, DISTVM_EPOCH_PAGE_DELTA,
                                         16 + 1 + 262144 - 1, page);
        distvm_wire_end(b);
    });
    SEED("epoch-parity-ask", distvm_wire_epoch(b, 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_PARITY_ASK, .node = 3, .epoch = 7, .bytes = 5,
    }));
    SEED("epoch-pages-slot", {
        distvm_wire_epoch_pages_begin(b, 1, 7, 0);
        distvm_wire_epoch_pages_add_slot(b, 4, DISTVM_EPOCH_PAGE_SLOT, 0,
                                         page);
        distvm_wire_epoch_pages_add_slot(b, 9, DISTVM_EPOCH_PAGE_SLOT, 3,
                                         NULL);
        distvm_wire_end(b);
    });
    SEED("epoch-parity-done", distvm_wire_epoch(b, 1, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_PARITY_DONE, .node = 3, .epoch = 7,
        .bytes = DISTVM_PAGE_SIZE,
    }));
    /* node 1, home's standby, tells home it has home's COMMIT of epoch 7 */
    SEED("epoch-committed", distvm_wire_epoch(b, 1, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_COMMITTED, .node = 1, .epoch = 7,
    }));
#undef SEED

    /* all of the above as one connection's stream */
    write_seed(argv[1], "stream", stream);
    g_free(page);
    return 0;
}

#endif /* DISTVM_WIRE_FUZZ_SEEDS */
