/*
 * distvm wire protocol: encoder and validating decoder
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qapi/error.h"
#include "system/distvm.h"
#include "distvm-wire.h"

/* Fixed part of every PAGE_* payload: block, flags, page, node, reserved */
#define PAGE_FIXED_SIZE 24

static const char *const msg_type_names[DISTVM_MSG__MAX] = {
    [DISTVM_MSG_HELLO] = "HELLO",
    [DISTVM_MSG_WELCOME] = "WELCOME",
    [DISTVM_MSG_REFUSE] = "REFUSE",
    [DISTVM_MSG_PEER_HELLO] = "PEER_HELLO",
    [DISTVM_MSG_READY] = "READY",
    [DISTVM_MSG_START] = "START",
    [DISTVM_MSG_PAGE_REQ] = "PAGE_REQ",
    [DISTVM_MSG_PAGE_FWD] = "PAGE_FWD",
    [DISTVM_MSG_PAGE_DATA] = "PAGE_DATA",
    [DISTVM_MSG_PAGE_INV] = "PAGE_INV",
    [DISTVM_MSG_PAGE_INV_ACK] = "PAGE_INV_ACK",
    [DISTVM_MSG_PAGE_GRANT] = "PAGE_GRANT",
    [DISTVM_MSG_PAGE_DONE] = "PAGE_DONE",
    [DISTVM_MSG_PING] = "PING",
    [DISTVM_MSG_PONG] = "PONG",
    [DISTVM_MSG_BYE] = "BYE",
    [DISTVM_MSG_HEARTBEAT] = "HEARTBEAT",
    [DISTVM_MSG_POLICY] = "POLICY",
    [DISTVM_MSG_NODE_LOST] = "NODE_LOST",
    [DISTVM_MSG_VCPU_MOVE] = "VCPU_MOVE",
    [DISTVM_MSG_VCPU_STATE] = "VCPU_STATE",
    [DISTVM_MSG_VCPU_MOVED] = "VCPU_MOVED",
    [DISTVM_MSG_VCPU_IPI] = "VCPU_IPI",
    [DISTVM_MSG_VCPU_WARM_PAGES] = "VCPU_WARM_PAGES",
    [DISTVM_MSG_PCI_CONFIG] = "PCI_CONFIG",
    [DISTVM_MSG_IO_REQ] = "IO_REQ",
    [DISTVM_MSG_IO_REPLY] = "IO_REPLY",
    [DISTVM_MSG_VCPU_APIC] = "VCPU_APIC",
    [DISTVM_MSG_RUN_STATE] = "RUN_STATE",
    [DISTVM_MSG_PIC_OUTPUT] = "PIC_OUTPUT",
    [DISTVM_MSG_CLOCK_REGS] = "CLOCK_REGS",
    [DISTVM_MSG_MEM_PLUG] = "MEM_PLUG",
    [DISTVM_MSG_MEM_PLUG_ACK] = "MEM_PLUG_ACK",
    [DISTVM_MSG_MEM_UNPLUG] = "MEM_UNPLUG",
    [DISTVM_MSG_RES_ACCESS] = "RES_ACCESS",
    [DISTVM_MSG_RES_REPLY] = "RES_REPLY",
    [DISTVM_MSG_VCPU_NODES] = "VCPU_NODES",
    [DISTVM_MSG_PCI_INTX] = "PCI_INTX",
    [DISTVM_MSG_RES_SET] = "RES_SET",
    [DISTVM_MSG_END] = "END",
    [DISTVM_MSG_ENDED] = "ENDED",
    [DISTVM_MSG_CPU_PLUG] = "CPU_PLUG",
    [DISTVM_MSG_CPU_PLUG_ACK] = "CPU_PLUG_ACK",
    [DISTVM_MSG_CPU_UNPLUG] = "CPU_UNPLUG",
    [DISTVM_MSG_PAGE_REQS] = "PAGE_REQS",
    [DISTVM_MSG_NODE_JOINING] = "NODE_JOINING",
    [DISTVM_MSG_VCPU_WHERE] = "VCPU_WHERE",
    [DISTVM_MSG_NODE_JOINED] = "NODE_JOINED",
    [DISTVM_MSG_NODE_DRAIN] = "NODE_DRAIN",
    [DISTVM_MSG_DRAIN_PAGES] = "DRAIN_PAGES",
    [DISTVM_MSG_DRAINED] = "DRAINED",
    [DISTVM_MSG_NODE_LEFT] = "NODE_LEFT",
    [DISTVM_MSG_FLOW] = "FLOW",
    [DISTVM_MSG_MGR_MOVE] = "MGR_MOVE",
    [DISTVM_MSG_MGR_ENTRIES] = "MGR_ENTRIES",
    [DISTVM_MSG_EPOCH] = "EPOCH",
    [DISTVM_MSG_EPOCH_PAGES] = "EPOCH_PAGES",
    [DISTVM_MSG_EPOCH_STATE] = "EPOCH_STATE",
    [DISTVM_MSG_NET_CTRL] = "NET_CTRL",
    [DISTVM_MSG_NET_PAIR] = "NET_PAIR",
    [DISTVM_MSG_DEVICE_HOME] = "DEVICE_HOME",
    [DISTVM_MSG_DEVICE_AWAY] = "DEVICE_AWAY",
    [DISTVM_MSG_VCPU_FLUSH] = "VCPU_FLUSH",
    [DISTVM_MSG_VCPU_FLUSHED] = "VCPU_FLUSHED",
};

const char *distvm_msg_type_name(uint32_t type)
{
    if (type < DISTVM_MSG__MAX && msg_type_names[type]) {
        return msg_type_names[type];
    }
    return "unknown";
}

bool distvm_wire_parse_header(const uint8_t *buf, DistvmMsgHeader *hdr,
                              Error **errp)
{
    hdr->magic = ldl_le_p(buf);
    hdr->version = lduw_le_p(buf + 4);
    hdr->type = lduw_le_p(buf + 6);
    hdr->length = ldl_le_p(buf + 8);
    hdr->src = ldl_le_p(buf + 12);
    hdr->seq = ldq_le_p(buf + 16);

    if (hdr->magic != DISTVM_WIRE_MAGIC) {
        error_setg(errp, "bad magic 0x%08" PRIx32, hdr->magic);
        return false;
    }
    if (hdr->version != DISTVM_WIRE_VERSION) {
        error_setg(errp, "protocol version %u, this node speaks %u",
                   hdr->version, DISTVM_WIRE_VERSION);
        return false;
    }
    if (hdr->type == 0 || hdr->type >= DISTVM_MSG__MAX) {
        error_setg(errp, "unknown message type %u", hdr->type);
        return false;
    }
    if (hdr->length > DISTVM_WIRE_MAX_PAYLOAD) {
        error_setg(errp, "%s message of %" PRIu32 " bytes exceeds the "
                   "limit of %u", distvm_msg_type_name(hdr->type),
                   hdr->length, DISTVM_WIRE_MAX_PAYLOAD);
        return false;
    }
    return true;
}

/* A bounds-checked reader over one payload. */
typedef struct WireReader {
    const uint8_t *p;
    size_t left;
    const char *what;           /* message type, for errors */
} WireReader;

static bool get_u32(WireReader *r, uint32_t *v, Error **errp)
{
    if (r->left < 4) {
        error_setg(errp, "%s message is truncated", r->what);
        return false;
    }
    *v = ldl_le_p(r->p);
    r->p += 4;
    r->left -= 4;
    return true;
}

static bool get_u64(WireReader *r, uint64_t *v, Error **errp)
{
    if (r->left < 8) {
        error_setg(errp, "%s message is truncated", r->what);
        return false;
    }
    *v = ldq_le_p(r->p);
    r->p += 8;
    r->left -= 8;
    return true;
}

static bool get_str(WireReader *r, char **s, Error **errp)
{
    uint32_t len;

    if (!get_u32(r, &len, errp)) {
        return false;
    }
    if (len > DISTVM_WIRE_MAX_STR) {
        error_setg(errp, "%s message has a string of %" PRIu32 " bytes "
                   "(limit %u)", r->what, len, DISTVM_WIRE_MAX_STR);
        return false;
    }
    if (r->left < len) {
        error_setg(errp, "%s message is truncated", r->what);
        return false;
    }
    if (memchr(r->p, '\0', len)) {
        error_setg(errp, "%s message has a string with a NUL byte", r->what);
        return false;
    }
    *s = g_strndup((const char *)r->p, len);
    r->p += len;
    r->left -= len;
    return true;
}

static bool check_node(const DistvmWireLimits *lim, const char *what,
                       const char *field, uint32_t node, Error **errp)
{
    if (node >= lim->nodes) {
        error_setg(errp, "%s message names node %" PRIu32 " in %s; the "
                   "cluster has %" PRIu32, what, node, field, lim->nodes);
        return false;
    }
    return true;
}

static bool get_speed(WireReader *r, const char *what, uint32_t *speed,
                      Error **errp)
{
    if (!get_u32(r, speed, errp)) {
        return false;
    }
    if (*speed < DISTVM_WIRE_SPEED_MIN || *speed > DISTVM_WIRE_SPEED_MAX) {
        error_setg(errp, "%s with a node speed of %" PRIu32 " thousandths "
                   "(%u to %u)", what, *speed, DISTVM_WIRE_SPEED_MIN,
                   DISTVM_WIRE_SPEED_MAX);
        return false;
    }
    return true;
}

static bool decode_hello(WireReader *r, const DistvmMsgHeader *hdr,
                         const DistvmWireLimits *lim, DistvmMsgHello *h,
                         Error **errp)
{
    if (!get_u32(r, &h->node_id, errp) || !get_u32(r, &h->nodes, errp) ||
        !get_str(r, &h->listen, errp)) {
        return false;
    }
    if (h->node_id != hdr->src && h->node_id != DISTVM_WIRE_NODE_ANY) {
        error_setg(errp, "HELLO from node %" PRIu32 " claims node id %"
                   PRIu32, hdr->src, h->node_id);
        return false;
    }
    if (h->nodes == 0 || h->nodes > DISTVM_WIRE_MAX_NODES) {
        error_setg(errp, "HELLO with a cluster of %" PRIu32 " nodes",
                   h->nodes);
        return false;
    }
    if (!get_speed(r, "HELLO", &h->speed, errp) ||
        !get_u32(r, &h->nr_items, errp)) {
        return false;
    }
    if (h->nr_items > DISTVM_WIRE_MAX_ITEMS) {
        error_setg(errp, "HELLO with %" PRIu32 " fingerprint items (limit %u)",
                   h->nr_items, DISTVM_WIRE_MAX_ITEMS);
        return false;
    }
    h->keys = g_new0(char *, h->nr_items + 1);
    h->values = g_new0(char *, h->nr_items + 1);
    for (uint32_t i = 0; i < h->nr_items; i++) {
        if (!get_str(r, &h->keys[i], errp) ||
            !get_str(r, &h->values[i], errp)) {
            return false;
        }
    }
    return true;
}

static bool decode_welcome(WireReader *r, DistvmMsgWelcome *w, Error **errp)
{
    if (!get_u32(r, &w->nodes, errp) || !get_u32(r, &w->node_id, errp)) {
        return false;
    }
    if (w->nodes == 0 || w->nodes > DISTVM_WIRE_MAX_NODES) {
        error_setg(errp, "WELCOME with a cluster of %" PRIu32 " nodes",
                   w->nodes);
        return false;
    }
    if (w->node_id == 0 || w->node_id >= w->nodes) {
        error_setg(errp, "WELCOME of node %" PRIu32 " in a cluster of %"
                   PRIu32 " nodes", w->node_id, w->nodes);
        return false;
    }
    w->addrs = g_new0(char *, w->nodes + 1);
    w->speeds = g_new0(uint32_t, w->nodes);
    for (uint32_t i = 0; i < w->nodes; i++) {
        if (!get_str(r, &w->addrs[i], errp)) {
            return false;
        }
        /* A node not in the cluster (start-nodes): no address, speed 0 */
        if (!w->addrs[i][0]) {
            if (!get_u32(r, &w->speeds[i], errp)) {
                return false;
            }
            if (w->speeds[i]) {
                error_setg(errp, "WELCOME with a speed for node %" PRIu32
                           ", which has no address", i);
                return false;
            }
        } else if (!get_speed(r, "WELCOME", &w->speeds[i], errp)) {
            return false;
        }
    }
    if (!w->addrs[w->node_id][0]) {
        error_setg(errp, "WELCOME without the address of node %" PRIu32
                   ", the node welcomed", w->node_id);
        return false;
    }
    return true;
}

/* Whether the RAM layout, which a page message refers to, was agreed */
static bool ram_agreed(WireReader *r, const DistvmWireLimits *lim,
                       Error **errp)
{
    if (lim->nr_blocks == 0) {
        error_setg(errp, "%s message before the RAM layout was agreed",
                   r->what);
        return false;
    }
    return true;
}

static bool decode_page(WireReader *r, const DistvmMsgHeader *hdr,
                        const DistvmWireLimits *lim, DistvmMsgPage *pg,
                        Error **errp)
{
    uint32_t reserved;

    if (!ram_agreed(r, lim, errp)) {
        return false;
    }
    if (!get_u32(r, &pg->block, errp) || !get_u32(r, &pg->flags, errp) ||
        !get_u64(r, &pg->page, errp) || !get_u32(r, &pg->node, errp) ||
        !get_u32(r, &reserved, errp)) {
        return false;
    }
    if (pg->block >= lim->nr_blocks) {
        error_setg(errp, "%s message for RAMBlock %" PRIu32 "; there are %"
                   PRIu32, r->what, pg->block, lim->nr_blocks);
        return false;
    }
    if (pg->page >= lim->block_pages[pg->block]) {
        error_setg(errp, "%s message for page %" PRIu64 " of RAMBlock %"
                   PRIu32 ", which has %" PRIu64 " pages", r->what, pg->page,
                   pg->block, lim->block_pages[pg->block]);
        return false;
    }
    if (pg->flags & ~DISTVM_PAGE_FLAGS_ALL) {
        error_setg(errp, "%s message with unknown flags 0x%" PRIx32, r->what,
                   pg->flags);
        return false;
    }
    if ((pg->flags & DISTVM_PAGE_RUN) &&
        !(hdr->type == DISTVM_MSG_PAGE_FWD &&
          (pg->flags & DISTVM_PAGE_WRITE)) &&
        !(hdr->type == DISTVM_MSG_PAGE_DATA &&
          (pg->flags & (DISTVM_PAGE_WRITE | DISTVM_PAGE_ZERO)) ==
          (DISTVM_PAGE_WRITE | DISTVM_PAGE_ZERO))) {
        error_setg(errp, "%s message with flags 0x%" PRIx32 ": only an "
                   "exclusive PAGE_FWD or an exclusive all-zero PAGE_DATA "
                   "is part of a run", r->what, pg->flags);
        return false;
    }
    if ((pg->flags & DISTVM_PAGE_FINAL) &&
        hdr->type != DISTVM_MSG_PAGE_GRANT &&
        (hdr->type != DISTVM_MSG_PAGE_DATA ||
         (pg->flags & (DISTVM_PAGE_WRITE | DISTVM_PAGE_RUN)))) {
        error_setg(errp, "%s message with flags 0x%" PRIx32 ": only a "
                   "shared PAGE_DATA or a PAGE_GRANT needs no PAGE_DONE",
                   r->what, pg->flags);
        return false;
    }
    if (reserved) {
        error_setg(errp, "%s message with a non-zero reserved field",
                   r->what);
        return false;
    }
    if (!check_node(lim, r->what, "its requester", pg->node, errp)) {
        return false;
    }
    if (hdr->type == DISTVM_MSG_PAGE_DATA && !(pg->flags & DISTVM_PAGE_ZERO)) {
        if (r->left < DISTVM_PAGE_SIZE) {
            error_setg(errp, "PAGE_DATA message is truncated");
            return false;
        }
        pg->data = r->p;
        r->p += DISTVM_PAGE_SIZE;
        r->left -= DISTVM_PAGE_SIZE;
    } else {
        pg->data = NULL;
    }
    return true;
}

/*
 * An IPI's delivery: mode (fixed 0, lowest priority 1, SMI 2, NMI 4,
 * INIT 5, STARTUP 6) | vector << 8 | trigger mode (0 or 1) << 16; or an
 * A20 line: DISTVM_DM_A20 | enabled (0 or 1) << 8.
 */
static bool ipi_delivery_valid(uint64_t delivery)
{
    static const uint8_t modes = 1 << 0 | 1 << 1 | 1 << 2 | 1 << 4 |
                                 1 << 5 | 1 << 6;
    uint8_t mode = delivery & 0xff;

    if (mode == DISTVM_DM_A20) {
        return !(delivery >> 9);
    }
    return !(delivery >> 17) && mode < 8 && (modes & (1 << mode));
}

/* The rest of the payload, a state: @data points into it */
static void take_rest(WireReader *r, const uint8_t **data, uint32_t *len)
{
    *data = r->p;
    *len = r->left;
    r->p += r->left;
    r->left = 0;
}

static bool decode_vcpu(WireReader *r, const DistvmMsgHeader *hdr,
                        const DistvmWireLimits *lim, DistvmMsgVcpu *v,
                        Error **errp)
{
    bool moves = hdr->type == DISTVM_MSG_VCPU_MOVE ||
                 hdr->type == DISTVM_MSG_VCPU_STATE ||
                 hdr->type == DISTVM_MSG_VCPU_MOVED;

    if (!get_u32(r, &v->cpu, errp) || !get_u32(r, &v->from, errp) ||
        !get_u32(r, &v->to, errp) || !get_u32(r, &v->reason, errp) ||
        !get_u64(r, &v->value, errp)) {
        return false;
    }
    if (v->cpu >= lim->nr_vcpus) {
        error_setg(errp, "%s message for vCPU %" PRIu32 "; there are %" PRIu32,
                   r->what, v->cpu, lim->nr_vcpus);
        return false;
    }
    if (moves ? v->reason >= DISTVM_MOVE__MAX : v->reason != 0) {
        error_setg(errp, "%s message with reason %" PRIu32, r->what,
                   v->reason);
        return false;
    }
    if (!check_node(lim, r->what, "its source", v->from, errp) ||
        !check_node(lim, r->what, "its destination", v->to, errp)) {
        return false;
    }
    if (hdr->type == DISTVM_MSG_VCPU_IPI && !ipi_delivery_valid(v->value)) {
        error_setg(errp, "VCPU_IPI message with an invalid delivery 0x%"
                   PRIx64, v->value);
        return false;
    }
    if (hdr->type == DISTVM_MSG_VCPU_NODES &&
        (!v->value || v->value >> lim->nodes)) {
        error_setg(errp, "VCPU_NODES message with nodes 0x%" PRIx64,
                   v->value);
        return false;
    }
    if (hdr->type == DISTVM_MSG_VCPU_FLUSH &&
        (!v->value || (lim->nr_vcpus < 64 && v->value >> lim->nr_vcpus))) {
        error_setg(errp, "VCPU_FLUSH message with vCPUs 0x%" PRIx64,
                   v->value);
        return false;
    }
    if (hdr->type == DISTVM_MSG_VCPU_FLUSHED && v->value) {
        error_setg(errp, "VCPU_FLUSHED message with a value 0x%" PRIx64,
                   v->value);
        return false;
    }
    if ((hdr->type == DISTVM_MSG_VCPU_FLUSH ||
         hdr->type == DISTVM_MSG_VCPU_FLUSHED) && !hdr->seq) {
        error_setg(errp, "%s message without a sequence number", r->what);
        return false;
    }
    if (hdr->type == DISTVM_MSG_VCPU_APIC &&
        v->value >> DISTVM_APIC_VALUE_BITS) {
        error_setg(errp, "VCPU_APIC message with an invalid addressing 0x%"
                   PRIx64, v->value);
        return false;
    }
    if (hdr->type == DISTVM_MSG_VCPU_STATE) {
        if (r->left == 0) {
            error_setg(errp, "VCPU_STATE message without a state");
            return false;
        }
        take_rest(r, &v->data, &v->len);
    }
    return true;
}

/*
 * @count pages of guest RAM, at most @max, each with flags in @flags, into
 * @pages.
 */
static bool decode_page_refs(WireReader *r, const DistvmWireLimits *lim,
                             uint32_t count, uint32_t max, uint32_t flags,
                             DistvmPageRef **pages, Error **errp)
{
    if (count > max) {
        error_setg(errp, "%s message with %" PRIu32 " pages (limit %u)",
                   r->what, count, max);
        return false;
    }
    if (r->left < (size_t)count * 16) {
        error_setg(errp, "%s message is truncated", r->what);
        return false;
    }
    *pages = g_new(DistvmPageRef, count);
    for (uint32_t i = 0; i < count; i++) {
        DistvmPageRef *pg = &(*pages)[i];

        get_u32(r, &pg->block, errp);
        get_u32(r, &pg->flags, errp);
        get_u64(r, &pg->page, errp);
        if (pg->block >= lim->nr_blocks ||
            pg->page >= lim->block_pages[pg->block]) {
            error_setg(errp, "%s message for page %" PRIu64 " of RAMBlock %"
                       PRIu32 ", which does not exist", r->what, pg->page,
                       pg->block);
            return false;
        }
        if (pg->flags & ~flags) {
            error_setg(errp, "%s message with unknown page flags 0x%" PRIx32,
                       r->what, pg->flags);
            return false;
        }
    }
    return true;
}

static bool decode_warm_pages(WireReader *r, const DistvmWireLimits *lim,
                              DistvmMsgWarmPages *h, Error **errp)
{
    if (!ram_agreed(r, lim, errp)) {
        return false;
    }
    if (!get_u32(r, &h->cpu, errp) || !get_u32(r, &h->count, errp)) {
        return false;
    }
    if (h->cpu >= lim->nr_vcpus) {
        error_setg(errp, "%s message for vCPU %" PRIu32 "; there are %" PRIu32,
                   r->what, h->cpu, lim->nr_vcpus);
        return false;
    }
    return decode_page_refs(r, lim, h->count, DISTVM_WARM_PAGES_MAX,
                            DISTVM_WARM_WRITE, &h->pages, errp);
}

static bool decode_page_reqs(WireReader *r, const DistvmWireLimits *lim,
                             DistvmMsgPageReqs *h, Error **errp)
{
    if (!ram_agreed(r, lim, errp)) {
        return false;
    }
    if (!get_u32(r, &h->count, errp)) {
        return false;
    }
    if (h->count == 0) {
        error_setg(errp, "%s message without a page", r->what);
        return false;
    }
    return decode_page_refs(r, lim, h->count, DISTVM_PAGE_REQS_MAX,
                            DISTVM_PAGE_REQ_FLAGS, &h->reqs, errp);
}

static bool decode_pci_config(WireReader *r, DistvmMsgPciConfig *pc,
                              Error **errp)
{
    if (!get_str(r, &pc->path, errp) || !get_u32(r, &pc->addr, errp) ||
        !get_u32(r, &pc->val, errp) || !get_u32(r, &pc->len, errp)) {
        return false;
    }
    if ((pc->len != 1 && pc->len != 2 && pc->len != 4) ||
        pc->addr > DISTVM_PCI_CONFIG_SPACE - pc->len) {
        error_setg(errp, "PCI_CONFIG message writing %" PRIu32 " bytes at "
                   "offset %" PRIu32, pc->len, pc->addr);
        return false;
    }
    return true;
}

static bool get_block_slot(WireReader *r, uint32_t *slot, Error **errp)
{
    if (!get_u32(r, slot, errp)) {
        return false;
    }
    if (*slot >= DISTVM_WIRE_MAX_BLOCKS) {
        error_setg(errp, "%s message names RAMBlock %" PRIu32 " (limit %u)",
                   r->what, *slot, DISTVM_WIRE_MAX_BLOCKS);
        return false;
    }
    return true;
}

static bool get_name(WireReader *r, const char *field, char **s,
                     Error **errp)
{
    if (!get_str(r, s, errp)) {
        return false;
    }
    if (!**s) {
        error_setg(errp, "%s message with an empty %s", r->what, field);
        return false;
    }
    return true;
}

static bool decode_cpu_plug(WireReader *r, const DistvmMsgHeader *hdr,
                            const DistvmWireLimits *lim,
                            DistvmMsgCpuPlug *c, Error **errp)
{
    if (!get_u32(r, &c->cpu, errp)) {
        return false;
    }
    if (c->cpu >= lim->nr_vcpus) {
        error_setg(errp, "%s message for vCPU %" PRIu32 "; there are %" PRIu32,
                   r->what, c->cpu, lim->nr_vcpus);
        return false;
    }
    switch (hdr->type) {
    case DISTVM_MSG_CPU_PLUG:
        return get_name(r, "device", &c->device, errp);
    case DISTVM_MSG_CPU_PLUG_ACK:
        return get_str(r, &c->error, errp);
    default:
        return true;
    }
}

static bool decode_mem(WireReader *r, const DistvmMsgHeader *hdr,
                       DistvmMsgMemPlug *mem, Error **errp)
{
    if (!get_block_slot(r, &mem->slot, errp)) {
        return false;
    }
    switch (hdr->type) {
    case DISTVM_MSG_MEM_PLUG:
        if (!get_u64(r, &mem->size, errp)) {
            return false;
        }
        if (!mem->size || mem->size % DISTVM_PAGE_SIZE) {
            error_setg(errp, "MEM_PLUG message with a backend of %" PRIu64
                       " bytes (a non-zero multiple of %u)", mem->size,
                       DISTVM_PAGE_SIZE);
            return false;
        }
        return get_name(r, "backend type", &mem->backend_type, errp) &&
               get_name(r, "backend id", &mem->backend_id, errp) &&
               get_name(r, "device", &mem->device, errp);
    case DISTVM_MSG_MEM_PLUG_ACK:
        return get_str(r, &mem->error, errp);
    default:
        return true;
    }
}

static bool decode_res(WireReader *r, const DistvmMsgHeader *hdr,
                       DistvmMsgRes *res, Error **errp)
{
    if (!get_u64(r, &res->addr, errp) || !get_u32(r, &res->size, errp) ||
        !get_u32(r, &res->flags, errp) || !get_u64(r, &res->data, errp)) {
        return false;
    }
    if (hdr->type == DISTVM_MSG_RES_REPLY) {
        return true;
    }
    if ((res->size != 1 && res->size != 2 && res->size != 4 &&
         res->size != 8) || res->addr % res->size) {
        error_setg(errp, "RES_ACCESS message of %" PRIu32 " bytes at %#"
                   PRIx64, res->size, res->addr);
        return false;
    }
    if (res->flags & ~DISTVM_RES_WRITE) {
        error_setg(errp, "RES_ACCESS message with flags %#" PRIx32,
                   res->flags);
        return false;
    }
    return true;
}

static bool decode_res_set(WireReader *r, const DistvmWireLimits *lim,
                           DistvmMsgResSet *set, Error **errp)
{
    if (!get_u64(r, &set->base, errp) || !get_u64(r, &set->size, errp) ||
        !get_u32(r, &set->node, errp) || !get_u32(r, &set->step, errp)) {
        return false;
    }
    if (!set->size || (set->base | set->size) & (DISTVM_PAGE_SIZE - 1) ||
        set->base + set->size < set->base) {
        error_setg(errp, "RES_SET message for %#" PRIx64 "+%#" PRIx64 ", not "
                   "a range of whole pages", set->base, set->size);
        return false;
    }
    if (set->node >= lim->nodes || set->step >= DISTVM_RES_SET__MAX) {
        error_setg(errp, "RES_SET message with node %" PRIu32 " and step %"
                   PRIu32, set->node, set->step);
        return false;
    }
    return true;
}

static bool decode_mgr_move(WireReader *r, const DistvmWireLimits *lim,
                            DistvmMsgMgrMove *mv, Error **errp)
{
    if (!get_u32(r, &mv->step, errp) || !get_u32(r, &mv->from, errp) ||
        !get_u32(r, &mv->to, errp) ||
        !check_node(lim, r->what, "the node the pages leave", mv->from,
                    errp) ||
        !check_node(lim, r->what, "the node the pages go to", mv->to, errp)) {
        return false;
    }
    if (mv->step >= DISTVM_MGR_MOVE__MAX || mv->from == mv->to) {
        error_setg(errp, "MGR_MOVE message of step %" PRIu32 " from node %"
                   PRIu32 " to node %" PRIu32, mv->step, mv->from, mv->to);
        return false;
    }
    return true;
}

static bool decode_mgr_entries(WireReader *r, const DistvmWireLimits *lim,
                               DistvmMsgMgrEntries *e, Error **errp)
{
    if (!ram_agreed(r, lim, errp) || !get_u32(r, &e->block, errp) ||
        !get_u32(r, &e->count, errp) || !get_u64(r, &e->first, errp)) {
        return false;
    }
    if (e->block >= lim->nr_blocks || !e->count ||
        e->count > DISTVM_MGR_ENTRIES_MAX ||
        e->first >= lim->block_pages[e->block] ||
        e->count > lim->block_pages[e->block] - e->first) {
        error_setg(errp, "MGR_ENTRIES message for %" PRIu32 " pages from "
                   "page %" PRIu64 " of RAMBlock %" PRIu32, e->count,
                   e->first, e->block);
        return false;
    }
    if (r->left < (size_t)e->count * 4) {
        error_setg(errp, "%s message is truncated", r->what);
        return false;
    }
    e->entries = r->p;
    for (uint32_t i = 0; i < e->count; i++) {
        uint32_t v = ldl_le_p(r->p + i * 4);
        uint32_t owner = v & 0xff;

        if ((owner != DISTVM_MGR_NO_OWNER && owner >= lim->nodes) ||
            (v & 0xff00) || (v >> 16) >> lim->nodes) {
            error_setg(errp, "MGR_ENTRIES message with entry 0x%" PRIx32
                       " for page %" PRIu64, v, e->first + i);
            return false;
        }
    }
    r->p += (size_t)e->count * 4;
    r->left -= (size_t)e->count * 4;
    return true;
}

static bool decode_epoch(WireReader *r, const DistvmWireLimits *lim,
                         DistvmMsgEpoch *e, Error **errp)
{
    uint32_t reserved;

    if (!get_u32(r, &e->step, errp) || !get_u32(r, &e->node, errp) ||
        !get_u64(r, &e->epoch, errp) || !get_u64(r, &e->bytes, errp) ||
        !get_u32(r, &e->vcpus, errp) || !get_u32(r, &reserved, errp) ||
        !check_node(lim, r->what, "the node it is about", e->node, errp)) {
        return false;
    }
    if (e->step >= DISTVM_EPOCH__MAX || !e->epoch ||
        e->vcpus > lim->nr_vcpus) {
        error_setg(errp, "EPOCH message of step %" PRIu32 " for epoch %"
                   PRIu64 " with %" PRIu32 " vCPUs", e->step, e->epoch,
                   e->vcpus);
        return false;
    }
    if (reserved) {
        error_setg(errp, "%s message with a non-zero reserved field",
                   r->what);
        return false;
    }
    return true;
}

/* The kinds of EPOCH_PAGES whose pages carry a slot */
#define EPOCH_PAGE_SLOTTED  (DISTVM_EPOCH_PAGE_DELTA | DISTVM_EPOCH_PAGE_SLOT)

static bool decode_epoch_pages(WireReader *r, const DistvmWireLimits *lim,
                               DistvmMsgEpochPages *e, Error **errp)
{
    uint64_t slots = 0;

    if (!ram_agreed(r, lim, errp) || !get_u64(r, &e->epoch, errp) ||
        !get_u32(r, &e->block, errp) || !get_u32(r, &e->count, errp)) {
        return false;
    }
    if (!e->epoch || e->block >= lim->nr_blocks || !e->count ||
        e->count > DISTVM_EPOCH_PAGES_MAX) {
        error_setg(errp, "EPOCH_PAGES message of epoch %" PRIu64 " with %"
                   PRIu32 " pages of RAMBlock %" PRIu32, e->epoch, e->count,
                   e->block);
        return false;
    }
    /* A node's copies are of distinct pages: at most one slot each */
    for (uint32_t b = 0; b < lim->nr_blocks; b++) {
        slots += lim->block_pages[b];
    }
    e->entries = r->p;
    for (uint32_t i = 0; i < e->count; i++) {
        uint32_t kinds = DISTVM_EPOCH_PAGE_ASK | DISTVM_EPOCH_PAGE_COPY |
                         DISTVM_EPOCH_PAGE_HELD | EPOCH_PAGE_SLOTTED;
        uint64_t page;
        uint32_t flags, slot = 0;

        if (!get_u64(r, &page, errp) || !get_u32(r, &flags, errp) ||
            ((flags & EPOCH_PAGE_SLOTTED) && !get_u32(r, &slot, errp))) {
            return false;
        }
        if (slot >= slots) {
            error_setg(errp, "EPOCH_PAGES message with page %" PRIu64
                       " of RAMBlock %" PRIu32 " in slot %" PRIu32 ", past "
                       "the guest's %" PRIu64 " pages", page, e->block, slot,
                       slots);
            return false;
        }
        if (!i) {
            e->kind = flags & kinds;
        }
        if (page >= lim->block_pages[e->block] ||
            (flags & ~(DISTVM_EPOCH_PAGE_ZERO | DISTVM_EPOCH_PAGE_OWNED |
                       kinds)) ||
            (flags & kinds) != e->kind || (e->kind & (e->kind - 1)) ||
            (e->kind == DISTVM_EPOCH_PAGE_ASK &&
             flags != DISTVM_EPOCH_PAGE_ASK) ||
            (e->kind == DISTVM_EPOCH_PAGE_HELD ?
             (flags & ~DISTVM_EPOCH_PAGE_OWNED) != DISTVM_EPOCH_PAGE_HELD :
             !!(flags & DISTVM_EPOCH_PAGE_OWNED))) {
            error_setg(errp, "EPOCH_PAGES message with page %" PRIu64
                       " of RAMBlock %" PRIu32 " and flags 0x%" PRIx32, page,
                       e->block, flags);
            return false;
        }
        if (!(flags & (DISTVM_EPOCH_PAGE_ZERO | DISTVM_EPOCH_PAGE_ASK |
                       DISTVM_EPOCH_PAGE_HELD))) {
            if (r->left < DISTVM_PAGE_SIZE) {
                error_setg(errp, "%s message is truncated", r->what);
                return false;
            }
            r->p += DISTVM_PAGE_SIZE;
            r->left -= DISTVM_PAGE_SIZE;
        }
    }
    return true;
}

/* How many states of @kind there are: vCPUs, the devices, or nodes */
static uint32_t epoch_state_indexes(const DistvmWireLimits *lim,
                                    uint32_t kind)
{
    switch (kind) {
    case DISTVM_EPOCH_STATE_VCPU:
    case DISTVM_EPOCH_STATE_VCPU_COPY:
        return lim->nr_vcpus;
    case DISTVM_EPOCH_STATE_PLACED:
    case DISTVM_EPOCH_STATE_PLACED_COPY:
        return lim->nodes;
    default:
        return 1;
    }
}

static bool decode_device_away(WireReader *r, const DistvmMsgHeader *hdr,
                               const DistvmWireLimits *lim,
                               DistvmMsgDeviceAway *a, Error **errp)
{
    if (!get_u32(r, &a->device, errp) || !get_u32(r, &a->node, errp)) {
        return false;
    }
    /* Which devices there are, and their state, distvm-devices.c checks */
    if (a->node >= lim->nodes || a->node == lim->home || !hdr->seq) {
        error_setg(errp, "DEVICE_AWAY message to node %" PRIu32 " of %"
                   PRIu32 " (home %" PRIu32 "), configuration generation %"
                   PRIu64, a->node, lim->nodes, lim->home, hdr->seq);
        return false;
    }
    if (r->left == 0) {
        error_setg(errp, "DEVICE_AWAY message without a state");
        return false;
    }
    take_rest(r, &a->data, &a->len);
    return true;
}

static bool decode_epoch_state(WireReader *r, const DistvmWireLimits *lim,
                               DistvmMsgEpochState *st, Error **errp)
{
    if (!get_u64(r, &st->epoch, errp) || !get_u32(r, &st->kind, errp) ||
        !get_u32(r, &st->index, errp) || !get_u32(r, &st->total, errp) ||
        !get_u32(r, &st->offset, errp)) {
        return false;
    }
    take_rest(r, &st->data, &st->len);
    if (!st->epoch || st->kind >= DISTVM_EPOCH_STATE__MAX ||
        st->index >= epoch_state_indexes(lim, st->kind) ||
        st->total > DISTVM_EPOCH_STATE_MAX || !st->len ||
        st->offset > st->total || st->len > st->total - st->offset) {
        error_setg(errp, "EPOCH_STATE message of epoch %" PRIu64 ", kind %"
                   PRIu32 " and index %" PRIu32 " with bytes %" PRIu32
                   " to %" PRIu64 " of %" PRIu32, st->epoch, st->kind,
                   st->index, st->offset, (uint64_t)st->offset + st->len,
                   st->total);
        return false;
    }
    return true;
}

static bool decode_net_ctrl(WireReader *r, DistvmMsgNetCtrl *c, Error **errp)
{
    if (!get_str(r, &c->path, errp) || !get_u32(r, &c->len, errp)) {
        return false;
    }
    if (c->len < DISTVM_NET_CTRL_MIN || c->len > DISTVM_NET_CTRL_MAX) {
        error_setg(errp, "NET_CTRL message with a command of %" PRIu32
                   " bytes (%u to %u)", c->len, DISTVM_NET_CTRL_MIN,
                   DISTVM_NET_CTRL_MAX);
        return false;
    }
    if (r->left < c->len) {
        error_setg(errp, "NET_CTRL message is truncated");
        return false;
    }
    c->data = r->p;
    r->p += c->len;
    r->left -= c->len;
    return true;
}

static bool decode_net_pair(WireReader *r, DistvmMsgNetPair *np,
                            Error **errp)
{
    if (!get_str(r, &np->path, errp) || !get_u32(r, &np->step, errp) ||
        !get_u32(r, &np->pair, errp) || !get_u32(r, &np->node, errp) ||
        !get_u32(r, &np->queue, errp) || !get_u32(r, &np->move, errp)) {
        return false;
    }
    if (np->step >= DISTVM_NET_PAIR__MAX) {
        error_setg(errp, "NET_PAIR message with unknown step %" PRIu32,
                   np->step);
        return false;
    }
    if (np->node >= DISTVM_WIRE_MAX_NODES) {
        error_setg(errp, "NET_PAIR message for node %" PRIu32 " (at most "
                   "%u nodes)", np->node, DISTVM_WIRE_MAX_NODES);
        return false;
    }
    if (np->queue / 2 != np->pair) {
        error_setg(errp, "NET_PAIR message for queue %" PRIu32 " of pair %"
                   PRIu32, np->queue, np->pair);
        return false;
    }
    return true;
}

static bool decode_io(WireReader *r, const DistvmMsgHeader *hdr,
                      const DistvmWireLimits *lim, DistvmMsgIo *io,
                      Error **errp)
{
    if (!get_u32(r, &io->cpu, errp) || !get_u32(r, &io->space, errp) ||
        !get_u32(r, &io->size, errp) || !get_u32(r, &io->flags, errp) ||
        !get_u64(r, &io->addr, errp) || !get_u64(r, &io->data, errp)) {
        return false;
    }
    for (int i = 0; (io->flags & DISTVM_IO_REGS) && i < DISTVM_IO_NR_REGS;
         i++) {
        if (!get_u64(r, &io->regs[i], errp)) {
            return false;
        }
    }
    if (hdr->type == DISTVM_MSG_IO_REQ && (io->flags & DISTVM_IO_CONFIG_GEN) &&
        !get_u64(r, &io->config_gen, errp)) {
        return false;
    }
    if (io->cpu >= lim->nr_vcpus) {
        error_setg(errp, "%s message for vCPU %" PRIu32 "; there are %" PRIu32,
                   r->what, io->cpu, lim->nr_vcpus);
        return false;
    }
    if (io->space == DISTVM_IO_PIC_ACK &&
        (io->size != 1 || io->addr ||
         (hdr->type == DISTVM_MSG_IO_REQ && (io->flags || io->data)))) {
        error_setg(errp, "%s message for a PIC acknowledge with size %" PRIu32
                   ", address %#" PRIx64 ", flags %#" PRIx32 " and data %#"
                   PRIx64, r->what, io->size, io->addr, io->flags, io->data);
        return false;
    }
    if (io->space > DISTVM_IO_PIC_ACK ||
        (io->space == DISTVM_IO_PORT && io->addr > 0xffff) ||
        (io->size != 1 && io->size != 2 && io->size != 4 &&
         (io->size != 8 || io->space == DISTVM_IO_PORT)) ||
        (io->space != DISTVM_IO_PORT && (io->addr & (io->size - 1))) ||
        (io->size < 8 && io->data >> (io->size * 8))) {
        error_setg(errp, "%s message for %" PRIu32 " bytes at %#" PRIx64
                   " of space %" PRIu32 " (data %#" PRIx64 ")", r->what,
                   io->size, io->addr, io->space, io->data);
        return false;
    }
    if ((hdr->type == DISTVM_MSG_IO_REQ ?
         io->flags & ~(DISTVM_IO_WRITE | DISTVM_IO_REGS |
                       DISTVM_IO_CONFIG_GEN) :
         (io->flags & ~(DISTVM_IO_STOP | DISTVM_IO_REGS | DISTVM_IO_A20 |
                        DISTVM_IO_A20_ON)) > 0xff ||
         (io->flags & (DISTVM_IO_A20 | DISTVM_IO_A20_ON)) ==
         DISTVM_IO_A20_ON) ||
        ((io->flags & (DISTVM_IO_REGS | DISTVM_IO_A20)) &&
         io->space != DISTVM_IO_PORT)) {
        error_setg(errp, "%s message with flags %#" PRIx32, r->what,
                   io->flags);
        return false;
    }
    return true;
}

static bool decode_run_state(WireReader *r, DistvmMsgRunState *run,
                             Error **errp)
{
    uint32_t reserved;

    if (!get_u32(r, &run->action, errp) || !get_u32(r, &reserved, errp) ||
        !get_u64(r, &run->virtual_ns, errp) ||
        !get_u64(r, &run->guest_ticks, errp) ||
        !get_u64(r, &run->host_ns, errp) ||
        !get_u64(r, &run->host_ticks, errp) ||
        !get_u64(r, &run->host_id, errp)) {
        return false;
    }
    if (run->action >= DISTVM_RUN__MAX) {
        error_setg(errp, "%s message with an unknown action %" PRIu32,
                   r->what, run->action);
        return false;
    }
    if (reserved) {
        error_setg(errp, "%s message with a non-zero reserved field",
                   r->what);
        return false;
    }
    return true;
}

/* The PM timer is a 4-byte register in the 64 KiB of port I/O. */
#define PM_TIMER_PORT_MAX   0xfffc

static bool decode_clock_regs(WireReader *r, DistvmMsgClockRegs *clock,
                              Error **errp)
{
    if (!get_u32(r, &clock->flags, errp) ||
        !get_u32(r, &clock->pm_timer_port, errp) ||
        !get_u64(r, &clock->hpet_base, errp) ||
        !get_u64(r, &clock->hpet_counter, errp) ||
        !get_u64(r, &clock->hpet_offset, errp)) {
        return false;
    }
    if (clock->flags & ~DISTVM_CLOCK_FLAGS_ALL) {
        error_setg(errp, "%s message with unknown flags 0x%" PRIx32,
                   r->what, clock->flags);
        return false;
    }
    if ((clock->flags & DISTVM_CLOCK_HPET_ENABLED) &&
        !(clock->flags & DISTVM_CLOCK_HPET)) {
        error_setg(errp, "%s message with a running HPET at no address",
                   r->what);
        return false;
    }
    if (clock->pm_timer_port > PM_TIMER_PORT_MAX ||
        (!(clock->flags & DISTVM_CLOCK_PM_TIMER) && clock->pm_timer_port)) {
        error_setg(errp, "%s message with PM timer port 0x%" PRIx32,
                   r->what, clock->pm_timer_port);
        return false;
    }
    if ((clock->hpet_base & (DISTVM_PAGE_SIZE - 1)) ||
        (!(clock->flags & DISTVM_CLOCK_HPET) && clock->hpet_base)) {
        error_setg(errp, "%s message with HPET address 0x%" PRIx64,
                   r->what, clock->hpet_base);
        return false;
    }
    return true;
}

bool distvm_wire_decode(const DistvmMsgHeader *hdr, const uint8_t *payload,
                        const DistvmWireLimits *lim, DistvmMsg *msg,
                        Error **errp)
{
    WireReader r = {
        .p = payload,
        .left = hdr->length,
        .what = distvm_msg_type_name(hdr->type),
    };
    bool ok;

    memset(msg, 0, sizeof(*msg));
    msg->hdr = *hdr;
    if (!check_node(lim, r.what, "its sender", hdr->src, errp)) {
        return false;
    }

    switch (hdr->type) {
    case DISTVM_MSG_HELLO:
        ok = decode_hello(&r, hdr, lim, &msg->u.hello, errp);
        break;
    case DISTVM_MSG_WELCOME:
        ok = decode_welcome(&r, &msg->u.welcome, errp);
        break;
    case DISTVM_MSG_REFUSE:
        ok = get_str(&r, &msg->u.reason, errp);
        break;
    case DISTVM_MSG_PEER_HELLO:
        ok = get_u32(&r, &msg->u.node_id, errp) &&
             check_node(lim, r.what, "its node id", msg->u.node_id, errp);
        if (ok && msg->u.node_id != hdr->src) {
            error_setg(errp, "PEER_HELLO from node %" PRIu32 " claims node "
                       "id %" PRIu32, hdr->src, msg->u.node_id);
            ok = false;
        }
        break;
    case DISTVM_MSG_NODE_LOST:
        ok = get_u32(&r, &msg->u.node_id, errp) &&
             check_node(lim, r.what, "the lost node", msg->u.node_id, errp);
        break;
    case DISTVM_MSG_NODE_DRAIN:
    case DISTVM_MSG_DRAIN_PAGES:
    case DISTVM_MSG_DRAINED:
    case DISTVM_MSG_NODE_LEFT:
        ok = get_u32(&r, &msg->u.node_id, errp) &&
             check_node(lim, r.what, "the drained node", msg->u.node_id,
                        errp);
        if (ok && msg->u.node_id == lim->home) {
            error_setg(errp, "%s message for the home node", r.what);
            ok = false;
        }
        break;
    case DISTVM_MSG_NODE_JOINING:
    case DISTVM_MSG_NODE_JOINED:
        ok = get_u32(&r, &msg->u.join.node_id, errp) &&
             check_node(lim, r.what, "the joining node", msg->u.join.node_id,
                        errp) &&
             get_speed(&r, r.what, &msg->u.join.speed, errp);
        if (ok && msg->u.join.node_id == lim->home) {
            error_setg(errp, "%s message for the home node", r.what);
            ok = false;
        }
        break;
    case DISTVM_MSG_READY:
    case DISTVM_MSG_START:
    case DISTVM_MSG_BYE:
    case DISTVM_MSG_HEARTBEAT:
    case DISTVM_MSG_END:
    case DISTVM_MSG_ENDED:
        ok = true;
        break;
    case DISTVM_MSG_PAGE_REQ:
    case DISTVM_MSG_PAGE_FWD:
    case DISTVM_MSG_PAGE_DATA:
    case DISTVM_MSG_PAGE_INV:
    case DISTVM_MSG_PAGE_INV_ACK:
    case DISTVM_MSG_PAGE_GRANT:
    case DISTVM_MSG_PAGE_DONE:
        ok = decode_page(&r, hdr, lim, &msg->u.page, errp);
        break;
    case DISTVM_MSG_PING:
    case DISTVM_MSG_PONG:
    case DISTVM_MSG_FLOW:
        ok = get_u64(&r, &msg->u.value, errp);
        break;
    case DISTVM_MSG_MGR_MOVE:
        ok = decode_mgr_move(&r, lim, &msg->u.mgr_move, errp);
        break;
    case DISTVM_MSG_MGR_ENTRIES:
        ok = decode_mgr_entries(&r, lim, &msg->u.mgr_entries, errp);
        break;
    case DISTVM_MSG_EPOCH:
        ok = decode_epoch(&r, lim, &msg->u.epoch, errp);
        break;
    case DISTVM_MSG_EPOCH_PAGES:
        ok = decode_epoch_pages(&r, lim, &msg->u.epoch_pages, errp);
        break;
    case DISTVM_MSG_EPOCH_STATE:
        ok = decode_epoch_state(&r, lim, &msg->u.epoch_state, errp);
        break;
    case DISTVM_MSG_NET_CTRL:
        ok = decode_net_ctrl(&r, &msg->u.net_ctrl, errp);
        break;
    case DISTVM_MSG_NET_PAIR:
        ok = decode_net_pair(&r, &msg->u.net_pair, errp);
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
        ok = decode_vcpu(&r, hdr, lim, &msg->u.vcpu, errp);
        break;
    case DISTVM_MSG_RUN_STATE:
        ok = decode_run_state(&r, &msg->u.run, errp);
        break;
    case DISTVM_MSG_PCI_CONFIG:
        ok = decode_pci_config(&r, &msg->u.pci, errp);
        break;
    case DISTVM_MSG_IO_REQ:
    case DISTVM_MSG_IO_REPLY:
        ok = decode_io(&r, hdr, lim, &msg->u.io, errp);
        break;
    case DISTVM_MSG_POLICY:
        ok = get_u32(&r, &msg->u.policy, errp);
        if (ok && msg->u.policy >= DISTVM_POLICY_COUNT) {
            error_setg(errp, "POLICY message with policy %" PRIu32,
                       msg->u.policy);
            ok = false;
        }
        break;
    case DISTVM_MSG_DEVICE_HOME:
        /* Which devices there are, distvm-devices.c checks */
        ok = get_u32(&r, &msg->u.device, errp);
        break;
    case DISTVM_MSG_DEVICE_AWAY:
        ok = decode_device_away(&r, hdr, lim, &msg->u.away, errp);
        break;
    case DISTVM_MSG_PIC_OUTPUT:
        ok = get_u32(&r, &msg->u.level, errp);
        if (ok && msg->u.level > 1) {
            error_setg(errp, "PIC_OUTPUT message with level %" PRIu32,
                       msg->u.level);
            ok = false;
        }
        break;
    case DISTVM_MSG_PCI_INTX:
        ok = get_u32(&r, &msg->u.intx.irq, errp) &&
             get_u32(&r, &msg->u.intx.level, errp);
        if (ok && (msg->u.intx.irq >= DISTVM_PCI_INTX_MAX ||
                   msg->u.intx.level > 1)) {
            error_setg(errp, "PCI_INTX message with line %" PRIu32
                       " and level %" PRIu32, msg->u.intx.irq,
                       msg->u.intx.level);
            ok = false;
        }
        break;
    case DISTVM_MSG_CLOCK_REGS:
        ok = decode_clock_regs(&r, &msg->u.clock, errp);
        break;
    case DISTVM_MSG_VCPU_WARM_PAGES:
        ok = decode_warm_pages(&r, lim, &msg->u.warm, errp);
        break;
    case DISTVM_MSG_PAGE_REQS:
        ok = decode_page_reqs(&r, lim, &msg->u.reqs, errp);
        break;
    case DISTVM_MSG_MEM_PLUG:
    case DISTVM_MSG_MEM_PLUG_ACK:
    case DISTVM_MSG_MEM_UNPLUG:
        ok = decode_mem(&r, hdr, &msg->u.mem, errp);
        break;
    case DISTVM_MSG_RES_ACCESS:
    case DISTVM_MSG_RES_REPLY:
        ok = decode_res(&r, hdr, &msg->u.res, errp);
        break;
    case DISTVM_MSG_RES_SET:
        ok = decode_res_set(&r, lim, &msg->u.res_set, errp);
        break;
    case DISTVM_MSG_CPU_PLUG:
    case DISTVM_MSG_CPU_PLUG_ACK:
    case DISTVM_MSG_CPU_UNPLUG:
        ok = decode_cpu_plug(&r, hdr, lim, &msg->u.cpu_plug, errp);
        break;
    default:
        error_setg(errp, "unknown message type %u", hdr->type);
        ok = false;
        break;
    }
    if (ok && r.left) {
        error_setg(errp, "%s message has %zu bytes of trailing garbage",
                   r.what, r.left);
        ok = false;
    }
    if (!ok) {
        distvm_msg_clear(msg);
    }
    return ok;
}

void distvm_msg_clear(DistvmMsg *msg)
{
    switch (msg->hdr.type) {
    case DISTVM_MSG_HELLO:
        g_free(msg->u.hello.listen);
        g_strfreev(msg->u.hello.keys);
        g_strfreev(msg->u.hello.values);
        break;
    case DISTVM_MSG_WELCOME:
        g_strfreev(msg->u.welcome.addrs);
        g_free(msg->u.welcome.speeds);
        break;
    case DISTVM_MSG_REFUSE:
        g_free(msg->u.reason);
        break;
    case DISTVM_MSG_PCI_CONFIG:
        g_free(msg->u.pci.path);
        break;
    case DISTVM_MSG_NET_CTRL:
        g_free(msg->u.net_ctrl.path);
        break;
    case DISTVM_MSG_NET_PAIR:
        g_free(msg->u.net_pair.path);
        break;
    case DISTVM_MSG_VCPU_WARM_PAGES:
        g_free(msg->u.warm.pages);
        break;
    case DISTVM_MSG_PAGE_REQS:
        g_free(msg->u.reqs.reqs);
        break;
    case DISTVM_MSG_MEM_PLUG:
    case DISTVM_MSG_MEM_PLUG_ACK:
    case DISTVM_MSG_MEM_UNPLUG:
        g_free(msg->u.mem.backend_type);
        g_free(msg->u.mem.backend_id);
        g_free(msg->u.mem.device);
        g_free(msg->u.mem.error);
        break;
    case DISTVM_MSG_CPU_PLUG:
    case DISTVM_MSG_CPU_PLUG_ACK:
    case DISTVM_MSG_CPU_UNPLUG:
        g_free(msg->u.cpu_plug.device);
        g_free(msg->u.cpu_plug.error);
        break;
    default:
        break;
    }
    memset(&msg->u, 0, sizeof(msg->u));
}

void distvm_wire_begin(GByteArray *buf, DistvmMsgType type, uint32_t src,
                       uint64_t seq)
{
    uint8_t hdr[DISTVM_WIRE_HDR_SIZE];

    stl_le_p(hdr, DISTVM_WIRE_MAGIC);
    stw_le_p(hdr + 4, DISTVM_WIRE_VERSION);
    stw_le_p(hdr + 6, type);
    stl_le_p(hdr + 8, 0);
    stl_le_p(hdr + 12, src);
    stq_le_p(hdr + 16, seq);
    g_byte_array_set_size(buf, 0);
    g_byte_array_append(buf, hdr, sizeof(hdr));
}

void distvm_wire_put_u32(GByteArray *buf, uint32_t v)
{
    uint8_t b[4];

    stl_le_p(b, v);
    g_byte_array_append(buf, b, sizeof(b));
}

void distvm_wire_put_u64(GByteArray *buf, uint64_t v)
{
    uint8_t b[8];

    stq_le_p(b, v);
    g_byte_array_append(buf, b, sizeof(b));
}

void distvm_wire_put_str(GByteArray *buf, const char *s)
{
    size_t len = s ? strlen(s) : 0;

    distvm_wire_put_u32(buf, len);
    g_byte_array_append(buf, (const guint8 *)s, len);
}

void distvm_wire_put_bytes(GByteArray *buf, const void *data, size_t len)
{
    g_byte_array_append(buf, data, len);
}

void distvm_wire_end(GByteArray *buf)
{
    stl_le_p(buf->data + 8, buf->len - DISTVM_WIRE_HDR_SIZE);
}

void distvm_wire_hello(GByteArray *buf, uint32_t src, uint32_t node_id,
                       uint32_t nodes, const char *listen, uint32_t speed,
                       uint32_t nr_items, char *const *keys,
                       char *const *values)
{
    distvm_wire_begin(buf, DISTVM_MSG_HELLO, src, 0);
    distvm_wire_put_u32(buf, node_id);
    distvm_wire_put_u32(buf, nodes);
    distvm_wire_put_str(buf, listen);
    distvm_wire_put_u32(buf, speed);
    distvm_wire_put_u32(buf, nr_items);
    for (uint32_t i = 0; i < nr_items; i++) {
        distvm_wire_put_str(buf, keys[i]);
        distvm_wire_put_str(buf, values[i]);
    }
    distvm_wire_end(buf);
}

void distvm_wire_welcome(GByteArray *buf, uint32_t nodes, uint32_t node_id,
                         char *const *addrs, const uint32_t *speeds)
{
    distvm_wire_begin(buf, DISTVM_MSG_WELCOME, 0, 0);
    distvm_wire_put_u32(buf, nodes);
    distvm_wire_put_u32(buf, node_id);
    for (uint32_t i = 0; i < nodes; i++) {
        distvm_wire_put_str(buf, addrs[i]);
        distvm_wire_put_u32(buf, speeds[i]);
    }
    distvm_wire_end(buf);
}

void distvm_wire_refuse(GByteArray *buf, uint32_t src, const char *reason)
{
    distvm_wire_begin(buf, DISTVM_MSG_REFUSE, src, 0);
    distvm_wire_put_str(buf, reason);
    distvm_wire_end(buf);
}

void distvm_wire_node_join(GByteArray *buf, DistvmMsgType type, uint32_t src,
                           uint32_t node_id, uint32_t speed)
{
    distvm_wire_begin(buf, type, src, 0);
    distvm_wire_put_u32(buf, node_id);
    distvm_wire_put_u32(buf, speed);
    distvm_wire_end(buf);
}

void distvm_wire_node(GByteArray *buf, DistvmMsgType type, uint32_t src,
                      uint32_t node_id)
{
    distvm_wire_begin(buf, type, src, 0);
    distvm_wire_put_u32(buf, node_id);
    distvm_wire_end(buf);
}

void distvm_wire_empty(GByteArray *buf, DistvmMsgType type, uint32_t src,
                       uint64_t seq)
{
    distvm_wire_begin(buf, type, src, seq);
    if (type == DISTVM_MSG_PING || type == DISTVM_MSG_PONG) {
        distvm_wire_put_u64(buf, seq);
    }
    distvm_wire_end(buf);
}

void distvm_wire_vcpu(GByteArray *buf, DistvmMsgType type, uint32_t src,
                      uint32_t cpu, uint32_t from, uint32_t to, uint64_t value,
                      const void *data, uint32_t len)
{
    distvm_wire_vcpu_move(buf, type, src, cpu, from, to, DISTVM_MOVE_COMMAND,
                          value, data, len);
}

void distvm_wire_vcpu_move(GByteArray *buf, DistvmMsgType type, uint32_t src,
                           uint32_t cpu, uint32_t from, uint32_t to,
                           uint32_t reason, uint64_t value, const void *data,
                           uint32_t len)
{
    distvm_wire_begin(buf, type, src, 0);
    distvm_wire_put_u32(buf, cpu);
    distvm_wire_put_u32(buf, from);
    distvm_wire_put_u32(buf, to);
    distvm_wire_put_u32(buf, reason);
    distvm_wire_put_u64(buf, value);
    if (type == DISTVM_MSG_VCPU_STATE) {
        distvm_wire_put_bytes(buf, data, len);
    }
    distvm_wire_end(buf);
}

void distvm_wire_pci_config(GByteArray *buf, uint32_t src, uint64_t seq,
                            const char *path, uint32_t addr, uint32_t val,
                            uint32_t len)
{
    distvm_wire_begin(buf, DISTVM_MSG_PCI_CONFIG, src, seq);
    distvm_wire_put_str(buf, path);
    distvm_wire_put_u32(buf, addr);
    distvm_wire_put_u32(buf, val);
    distvm_wire_put_u32(buf, len);
    distvm_wire_end(buf);
}

bool distvm_wire_msg_vcpu(const DistvmMsg *msg, uint32_t *cpu)
{
    switch (msg->hdr.type) {
    case DISTVM_MSG_VCPU_MOVE:
    case DISTVM_MSG_VCPU_STATE:
    case DISTVM_MSG_VCPU_MOVED:
    case DISTVM_MSG_VCPU_IPI:
    case DISTVM_MSG_VCPU_APIC:
    case DISTVM_MSG_VCPU_NODES:
    case DISTVM_MSG_VCPU_WHERE:
    case DISTVM_MSG_VCPU_FLUSH:
    case DISTVM_MSG_VCPU_FLUSHED:
        *cpu = msg->u.vcpu.cpu;
        return true;
    case DISTVM_MSG_IO_REQ:
    case DISTVM_MSG_IO_REPLY:
        *cpu = msg->u.io.cpu;
        return true;
    case DISTVM_MSG_VCPU_WARM_PAGES:
        *cpu = msg->u.warm.cpu;
        return true;
    default:
        return false;
    }
}

void distvm_wire_set_seq(GByteArray *buf, uint64_t seq)
{
    assert(buf->len >= DISTVM_WIRE_HDR_SIZE);
    stq_le_p(buf->data + 16, seq);
}

void distvm_wire_io(GByteArray *buf, DistvmMsgType type, uint32_t src,
                    const DistvmMsgIo *io)
{
    distvm_wire_begin(buf, type, src, 0);
    distvm_wire_put_u32(buf, io->cpu);
    distvm_wire_put_u32(buf, io->space);
    distvm_wire_put_u32(buf, io->size);
    distvm_wire_put_u32(buf, io->flags);
    distvm_wire_put_u64(buf, io->addr);
    distvm_wire_put_u64(buf, io->data);
    for (int i = 0; (io->flags & DISTVM_IO_REGS) && i < DISTVM_IO_NR_REGS;
         i++) {
        distvm_wire_put_u64(buf, io->regs[i]);
    }
    if (type == DISTVM_MSG_IO_REQ && (io->flags & DISTVM_IO_CONFIG_GEN)) {
        distvm_wire_put_u64(buf, io->config_gen);
    }
    distvm_wire_end(buf);
}

void distvm_wire_run_state(GByteArray *buf, uint32_t src,
                           const DistvmMsgRunState *run)
{
    distvm_wire_begin(buf, DISTVM_MSG_RUN_STATE, src, 0);
    distvm_wire_put_u32(buf, run->action);
    distvm_wire_put_u32(buf, 0);
    distvm_wire_put_u64(buf, run->virtual_ns);
    distvm_wire_put_u64(buf, run->guest_ticks);
    distvm_wire_put_u64(buf, run->host_ns);
    distvm_wire_put_u64(buf, run->host_ticks);
    distvm_wire_put_u64(buf, run->host_id);
    distvm_wire_end(buf);
}

void distvm_wire_policy(GByteArray *buf, uint32_t src, uint32_t policy)
{
    distvm_wire_begin(buf, DISTVM_MSG_POLICY, src, 0);
    distvm_wire_put_u32(buf, policy);
    distvm_wire_end(buf);
}

void distvm_wire_pic_output(GByteArray *buf, uint32_t src, uint32_t level)
{
    distvm_wire_begin(buf, DISTVM_MSG_PIC_OUTPUT, src, 0);
    distvm_wire_put_u32(buf, level);
    distvm_wire_end(buf);
}

void distvm_wire_device_home(GByteArray *buf, uint32_t src, uint32_t device)
{
    distvm_wire_begin(buf, DISTVM_MSG_DEVICE_HOME, src, 0);
    distvm_wire_put_u32(buf, device);
    distvm_wire_end(buf);
}

void distvm_wire_device_away(GByteArray *buf, uint32_t src, uint64_t gen,
                             uint32_t device, uint32_t node,
                             const uint8_t *data, uint32_t len)
{
    distvm_wire_begin(buf, DISTVM_MSG_DEVICE_AWAY, src, gen);
    distvm_wire_put_u32(buf, device);
    distvm_wire_put_u32(buf, node);
    distvm_wire_put_bytes(buf, data, len);
    distvm_wire_end(buf);
}

void distvm_wire_flow(GByteArray *buf, uint32_t src, uint64_t done)
{
    distvm_wire_begin(buf, DISTVM_MSG_FLOW, src, 0);
    distvm_wire_put_u64(buf, done);
    distvm_wire_end(buf);
}

bool distvm_wire_flow_counted(uint32_t type)
{
    switch (type) {
    case DISTVM_MSG_PCI_CONFIG:
    case DISTVM_MSG_VCPU_IPI:
    case DISTVM_MSG_PIC_OUTPUT:
    case DISTVM_MSG_PCI_INTX:
    case DISTVM_MSG_NET_CTRL:
        return true;
    default:
        return false;
    }
}

void distvm_wire_pci_intx(GByteArray *buf, uint32_t src, uint32_t irq,
                          uint32_t level)
{
    distvm_wire_begin(buf, DISTVM_MSG_PCI_INTX, src, 0);
    distvm_wire_put_u32(buf, irq);
    distvm_wire_put_u32(buf, level);
    distvm_wire_end(buf);
}

void distvm_wire_clock_regs(GByteArray *buf, uint32_t src,
                            const DistvmMsgClockRegs *clock)
{
    distvm_wire_begin(buf, DISTVM_MSG_CLOCK_REGS, src, 0);
    distvm_wire_put_u32(buf, clock->flags);
    distvm_wire_put_u32(buf, clock->pm_timer_port);
    distvm_wire_put_u64(buf, clock->hpet_base);
    distvm_wire_put_u64(buf, clock->hpet_counter);
    distvm_wire_put_u64(buf, clock->hpet_offset);
    distvm_wire_end(buf);
}

static void put_page_refs(GByteArray *buf, const DistvmPageRef *pages,
                          uint32_t count)
{
    distvm_wire_put_u32(buf, count);
    for (uint32_t i = 0; i < count; i++) {
        distvm_wire_put_u32(buf, pages[i].block);
        distvm_wire_put_u32(buf, pages[i].flags);
        distvm_wire_put_u64(buf, pages[i].page);
    }
}

void distvm_wire_warm_pages(GByteArray *buf, uint32_t src, uint32_t cpu,
                            const DistvmPageRef *pages, uint32_t count)
{
    distvm_wire_begin(buf, DISTVM_MSG_VCPU_WARM_PAGES, src, 0);
    distvm_wire_put_u32(buf, cpu);
    put_page_refs(buf, pages, count);
    distvm_wire_end(buf);
}

void distvm_wire_page_reqs(GByteArray *buf, uint32_t src,
                           const DistvmPageRef *reqs, uint32_t count)
{
    distvm_wire_begin(buf, DISTVM_MSG_PAGE_REQS, src, 0);
    put_page_refs(buf, reqs, count);
    distvm_wire_end(buf);
}

void distvm_wire_mem_plug(GByteArray *buf, uint32_t src, uint64_t seq,
                          const DistvmMsgMemPlug *mem)
{
    distvm_wire_begin(buf, DISTVM_MSG_MEM_PLUG, src, seq);
    distvm_wire_put_u32(buf, mem->slot);
    distvm_wire_put_u64(buf, mem->size);
    distvm_wire_put_str(buf, mem->backend_type);
    distvm_wire_put_str(buf, mem->backend_id);
    distvm_wire_put_str(buf, mem->device);
    distvm_wire_end(buf);
}

void distvm_wire_mem_plug_ack(GByteArray *buf, uint32_t src, uint64_t seq,
                              uint32_t slot, const char *error)
{
    distvm_wire_begin(buf, DISTVM_MSG_MEM_PLUG_ACK, src, seq);
    distvm_wire_put_u32(buf, slot);
    distvm_wire_put_str(buf, error);
    distvm_wire_end(buf);
}

void distvm_wire_mem_unplug(GByteArray *buf, uint32_t src, uint32_t slot)
{
    distvm_wire_begin(buf, DISTVM_MSG_MEM_UNPLUG, src, 0);
    distvm_wire_put_u32(buf, slot);
    distvm_wire_end(buf);
}

void distvm_wire_cpu_plug(GByteArray *buf, uint32_t src, uint64_t seq,
                          uint32_t cpu, const char *device)
{
    distvm_wire_begin(buf, DISTVM_MSG_CPU_PLUG, src, seq);
    distvm_wire_put_u32(buf, cpu);
    distvm_wire_put_str(buf, device);
    distvm_wire_end(buf);
}

void distvm_wire_cpu_plug_ack(GByteArray *buf, uint32_t src, uint64_t seq,
                              uint32_t cpu, const char *error)
{
    distvm_wire_begin(buf, DISTVM_MSG_CPU_PLUG_ACK, src, seq);
    distvm_wire_put_u32(buf, cpu);
    distvm_wire_put_str(buf, error);
    distvm_wire_end(buf);
}

void distvm_wire_cpu_unplug(GByteArray *buf, uint32_t src, uint32_t cpu)
{
    distvm_wire_begin(buf, DISTVM_MSG_CPU_UNPLUG, src, 0);
    distvm_wire_put_u32(buf, cpu);
    distvm_wire_end(buf);
}

void distvm_wire_res(GByteArray *buf, DistvmMsgType type, uint32_t src,
                     uint64_t seq, const DistvmMsgRes *res)
{
    distvm_wire_begin(buf, type, src, seq);
    distvm_wire_put_u64(buf, res->addr);
    distvm_wire_put_u32(buf, res->size);
    distvm_wire_put_u32(buf, res->flags);
    distvm_wire_put_u64(buf, res->data);
    distvm_wire_end(buf);
}

void distvm_wire_res_set(GByteArray *buf, uint32_t src,
                         const DistvmMsgResSet *set)
{
    distvm_wire_begin(buf, DISTVM_MSG_RES_SET, src, 0);
    distvm_wire_put_u64(buf, set->base);
    distvm_wire_put_u64(buf, set->size);
    distvm_wire_put_u32(buf, set->node);
    distvm_wire_put_u32(buf, set->step);
    distvm_wire_end(buf);
}

void distvm_wire_mgr_move(GByteArray *buf, uint32_t src, uint32_t step,
                         uint32_t from, uint32_t to)
{
    distvm_wire_begin(buf, DISTVM_MSG_MGR_MOVE, src, 0);
    distvm_wire_put_u32(buf, step);
    distvm_wire_put_u32(buf, from);
    distvm_wire_put_u32(buf, to);
    distvm_wire_end(buf);
}

void distvm_wire_mgr_entries(GByteArray *buf, uint32_t src, uint32_t block,
                             uint64_t first, uint32_t count,
                             const int8_t *owner, const uint16_t *copyset)
{
    distvm_wire_begin(buf, DISTVM_MSG_MGR_ENTRIES, src, 0);
    distvm_wire_put_u32(buf, block);
    distvm_wire_put_u32(buf, count);
    distvm_wire_put_u64(buf, first);
    for (uint32_t i = 0; i < count; i++) {
        distvm_wire_put_u32(buf, (owner[i] < 0 ? DISTVM_MGR_NO_OWNER :
                                  (uint8_t)owner[i]) |
                                 (uint32_t)copyset[i] << 16);
    }
    distvm_wire_end(buf);
}

void distvm_wire_mgr_entry(const DistvmMsgMgrEntries *e, uint32_t i,
                           int *owner, uint16_t *copyset)
{
    uint32_t v = ldl_le_p(e->entries + i * 4);

    *owner = (v & 0xff) == DISTVM_MGR_NO_OWNER ? -1 : (int)(v & 0xff);
    *copyset = v >> 16;
}

void distvm_wire_epoch(GByteArray *buf, uint32_t src,
                       const DistvmMsgEpoch *epoch)
{
    distvm_wire_begin(buf, DISTVM_MSG_EPOCH, src, 0);
    distvm_wire_put_u32(buf, epoch->step);
    distvm_wire_put_u32(buf, epoch->node);
    distvm_wire_put_u64(buf, epoch->epoch);
    distvm_wire_put_u64(buf, epoch->bytes);
    distvm_wire_put_u32(buf, epoch->vcpus);
    distvm_wire_put_u32(buf, 0);
    distvm_wire_end(buf);
}

/* Where EPOCH_PAGES keeps its count: after the header, epoch and block */
#define EPOCH_PAGES_COUNT_AT    (DISTVM_WIRE_HDR_SIZE + 12)

void distvm_wire_epoch_pages_begin(GByteArray *buf, uint32_t src,
                                   uint64_t epoch, uint32_t block)
{
    distvm_wire_begin(buf, DISTVM_MSG_EPOCH_PAGES, src, 0);
    distvm_wire_put_u64(buf, epoch);
    distvm_wire_put_u32(buf, block);
    distvm_wire_put_u32(buf, 0);
}

uint32_t distvm_wire_epoch_pages_add_slot(GByteArray *buf, uint64_t page,
                                          uint32_t kind, uint32_t slot,
                                          const void *data)
{
    uint32_t count = ldl_le_p(buf->data + EPOCH_PAGES_COUNT_AT) + 1;
    bool bare = kind & (DISTVM_EPOCH_PAGE_ASK | DISTVM_EPOCH_PAGE_HELD);

    assert(!bare || !data);
    distvm_wire_put_u64(buf, page);
    distvm_wire_put_u32(buf, kind | (data || bare ?
                                     0 : DISTVM_EPOCH_PAGE_ZERO));
    if (kind & EPOCH_PAGE_SLOTTED) {
        distvm_wire_put_u32(buf, slot);
    }
    if (data) {
        distvm_wire_put_bytes(buf, data, DISTVM_PAGE_SIZE);
    }
    stl_le_p(buf->data + EPOCH_PAGES_COUNT_AT, count);
    return count;
}

uint32_t distvm_wire_epoch_pages_add(GByteArray *buf, uint64_t page,
                                     uint32_t kind, const void *data)
{
    assert(!(kind & EPOCH_PAGE_SLOTTED));
    return distvm_wire_epoch_pages_add_slot(buf, page, kind, 0, data);
}

const uint8_t *distvm_wire_epoch_page_slot(const uint8_t **pos,
                                           uint64_t *page, uint32_t *slot)
{
    const uint8_t *p = *pos;
    uint32_t flags = ldl_le_p(p + 8);
    bool zero = flags & (DISTVM_EPOCH_PAGE_ZERO | DISTVM_EPOCH_PAGE_ASK |
                         DISTVM_EPOCH_PAGE_HELD);
    size_t head = flags & EPOCH_PAGE_SLOTTED ? 16 : 12;

    *page = ldq_le_p(p);
    *slot = flags & EPOCH_PAGE_SLOTTED ? ldl_le_p(p + 12) : 0;
    *pos = p + head + (zero ? 0 : DISTVM_PAGE_SIZE);
    return zero ? NULL : p + head;
}

const uint8_t *distvm_wire_epoch_page(const uint8_t **pos, uint64_t *page)
{
    uint32_t slot;

    return distvm_wire_epoch_page_slot(pos, page, &slot);
}

void distvm_wire_net_ctrl(GByteArray *buf, uint32_t src, const char *path,
                          const void *data, uint32_t len)
{
    distvm_wire_begin(buf, DISTVM_MSG_NET_CTRL, src, 0);
    distvm_wire_put_str(buf, path);
    distvm_wire_put_u32(buf, len);
    distvm_wire_put_bytes(buf, data, len);
    distvm_wire_end(buf);
}

void distvm_wire_net_pair(GByteArray *buf, uint32_t src, const char *path,
                          uint32_t step, uint32_t pair, uint32_t node,
                          uint32_t queue, uint32_t move)
{
    distvm_wire_begin(buf, DISTVM_MSG_NET_PAIR, src, 0);
    distvm_wire_put_str(buf, path);
    distvm_wire_put_u32(buf, step);
    distvm_wire_put_u32(buf, pair);
    distvm_wire_put_u32(buf, node);
    distvm_wire_put_u32(buf, queue);
    distvm_wire_put_u32(buf, move);
    distvm_wire_end(buf);
}

void distvm_wire_epoch_state(GByteArray *buf, uint32_t src,
                             const DistvmMsgEpochState *st)
{
    distvm_wire_begin(buf, DISTVM_MSG_EPOCH_STATE, src, 0);
    distvm_wire_put_u64(buf, st->epoch);
    distvm_wire_put_u32(buf, st->kind);
    distvm_wire_put_u32(buf, st->index);
    distvm_wire_put_u32(buf, st->total);
    distvm_wire_put_u32(buf, st->offset);
    distvm_wire_put_bytes(buf, st->data, st->len);
    distvm_wire_end(buf);
}

void distvm_wire_page(GByteArray *buf, DistvmMsgType type, uint32_t src,
                      uint64_t seq, uint32_t block, uint64_t page,
                      uint32_t node, uint32_t flags, const void *data)
{
    distvm_wire_begin(buf, type, src, seq);
    distvm_wire_put_u32(buf, block);
    distvm_wire_put_u32(buf, flags);
    distvm_wire_put_u64(buf, page);
    distvm_wire_put_u32(buf, node);
    distvm_wire_put_u32(buf, 0);
    if (type == DISTVM_MSG_PAGE_DATA && !(flags & DISTVM_PAGE_ZERO)) {
        distvm_wire_put_bytes(buf, data, DISTVM_PAGE_SIZE);
    }
    distvm_wire_end(buf);
}

/* ---- roles ---- */

typedef enum DistvmRole {
    DISTVM_ROLE_NONE,           /* never on a connection of the cluster */
    DISTVM_ROLE_ANY,            /* any node to any other */
    DISTVM_ROLE_FROM_HOME,      /* the home node to the others */
    DISTVM_ROLE_TO_HOME,        /* the others to the home node */
    DISTVM_ROLE_HOME_LINK,      /* between the home node and another */
} DistvmRole;

static const DistvmRole msg_roles[DISTVM_MSG__MAX] = {
    [DISTVM_MSG_HELLO] = DISTVM_ROLE_NONE,
    [DISTVM_MSG_WELCOME] = DISTVM_ROLE_NONE,
    [DISTVM_MSG_REFUSE] = DISTVM_ROLE_NONE,
    [DISTVM_MSG_PEER_HELLO] = DISTVM_ROLE_NONE,
    [DISTVM_MSG_READY] = DISTVM_ROLE_TO_HOME,
    [DISTVM_MSG_START] = DISTVM_ROLE_FROM_HOME,
    [DISTVM_MSG_PAGE_REQ] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_PAGE_FWD] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_PAGE_DATA] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_PAGE_INV] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_PAGE_INV_ACK] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_PAGE_GRANT] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_PAGE_DONE] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_PING] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_PONG] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_BYE] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_NODE_LOST] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_VCPU_MOVE] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_VCPU_STATE] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_VCPU_MOVED] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_VCPU_IPI] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_PCI_CONFIG] = DISTVM_ROLE_FROM_HOME,
    /* to home, or to the node of a device (distvm-devices.c), and back */
    [DISTVM_MSG_IO_REQ] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_IO_REPLY] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_VCPU_APIC] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_RUN_STATE] = DISTVM_ROLE_FROM_HOME,  /* STOPPED: TO_HOME */
    [DISTVM_MSG_PIC_OUTPUT] = DISTVM_ROLE_FROM_HOME,
    [DISTVM_MSG_CLOCK_REGS] = DISTVM_ROLE_FROM_HOME,
    [DISTVM_MSG_HEARTBEAT] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_POLICY] = DISTVM_ROLE_HOME_LINK,
    [DISTVM_MSG_VCPU_WARM_PAGES] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_MEM_PLUG] = DISTVM_ROLE_FROM_HOME,
    [DISTVM_MSG_MEM_PLUG_ACK] = DISTVM_ROLE_TO_HOME,
    [DISTVM_MSG_MEM_UNPLUG] = DISTVM_ROLE_FROM_HOME,
    [DISTVM_MSG_RES_ACCESS] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_RES_REPLY] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_VCPU_NODES] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_PCI_INTX] = DISTVM_ROLE_TO_HOME,
    [DISTVM_MSG_RES_SET] = DISTVM_ROLE_ANY,     /* by step, below */
    [DISTVM_MSG_END] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_ENDED] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_CPU_PLUG] = DISTVM_ROLE_FROM_HOME,
    [DISTVM_MSG_CPU_PLUG_ACK] = DISTVM_ROLE_TO_HOME,
    [DISTVM_MSG_CPU_UNPLUG] = DISTVM_ROLE_FROM_HOME,
    [DISTVM_MSG_PAGE_REQS] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_NODE_JOINING] = DISTVM_ROLE_FROM_HOME,
    [DISTVM_MSG_VCPU_WHERE] = DISTVM_ROLE_FROM_HOME,
    [DISTVM_MSG_NODE_JOINED] = DISTVM_ROLE_FROM_HOME,
    [DISTVM_MSG_NODE_DRAIN] = DISTVM_ROLE_FROM_HOME,
    [DISTVM_MSG_DRAIN_PAGES] = DISTVM_ROLE_FROM_HOME,
    [DISTVM_MSG_DRAINED] = DISTVM_ROLE_TO_HOME,
    [DISTVM_MSG_NODE_LEFT] = DISTVM_ROLE_FROM_HOME,
    [DISTVM_MSG_FLOW] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_MGR_MOVE] = DISTVM_ROLE_ANY,    /* by step, below */
    [DISTVM_MSG_MGR_ENTRIES] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_EPOCH] = DISTVM_ROLE_ANY,       /* by step, below */
    [DISTVM_MSG_EPOCH_PAGES] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_EPOCH_STATE] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_NET_CTRL] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_VCPU_FLUSH] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_VCPU_FLUSHED] = DISTVM_ROLE_ANY,
    [DISTVM_MSG_NET_PAIR] = DISTVM_ROLE_ANY,    /* by step, below */
    [DISTVM_MSG_DEVICE_HOME] = DISTVM_ROLE_FROM_HOME,
    [DISTVM_MSG_DEVICE_AWAY] = DISTVM_ROLE_FROM_HOME,
};

/*
 * A step of a message (@what) sent by or to a node that @rule, the text
 * of each of the @nr_steps steps, does not name
 */
static bool step_refused(const char *what, uint32_t step,
                         const char *const *rule, uint32_t nr_steps,
                         Error **errp)
{
    error_setg(errp, "%s of step %" PRIu32 " is sent %s only", what, step,
               step < nr_steps ? rule[step] : "in no step known");
    return false;
}

/* Who sends each step of RES_SET to whom (DistvmResSetStep) */
static bool res_set_check_role(const DistvmMsgResSet *set, uint32_t home,
                               uint32_t src, uint32_t dst, Error **errp)
{
    static const char *const rule[DISTVM_RES_SET__MAX] = {
        [DISTVM_RES_SET_ASK] = "by the home node to the range's node",
        [DISTVM_RES_SET_REGISTERED] = "by the range's node to the home node",
        [DISTVM_RES_SET_COVER] = "by the home node to another node",
        [DISTVM_RES_SET_COVERED] = "by another node to the range's node",
        [DISTVM_RES_SET_ACTIVE] = "by the range's node",
        [DISTVM_RES_SET_KNOWN] = "by the home node to another node",
    };
    bool ok;

    switch (set->step) {
    case DISTVM_RES_SET_ASK:
        ok = src == home && dst == set->node;
        break;
    case DISTVM_RES_SET_REGISTERED:
        ok = src == set->node && dst == home;
        break;
    case DISTVM_RES_SET_COVER:
    case DISTVM_RES_SET_KNOWN:
        ok = src == home && dst != set->node;
        break;
    case DISTVM_RES_SET_COVERED:
        ok = src != set->node && dst == set->node;
        break;
    default:
        ok = src == set->node;
        break;
    }
    return ok || step_refused("RES_SET", set->step, rule,
                              DISTVM_RES_SET__MAX, errp);
}

/* Who sends each step of MGR_MOVE to whom (DistvmMgrMoveStep) */
static bool mgr_move_check_role(const DistvmMsgMgrMove *mv, uint32_t home,
                                uint32_t src, uint32_t dst, Error **errp)
{
    static const char *const rule[DISTVM_MGR_MOVE__MAX] = {
        [DISTVM_MGR_MOVE_ASK] = "by the home node to the node the pages "
                                "leave",
        [DISTVM_MGR_MOVE_PREPARE] = "by the node the pages leave",
        [DISTVM_MGR_MOVE_PREPARED] = "to the node the pages leave",
        [DISTVM_MGR_MOVE_MOVED] = "by the node the pages leave",
        [DISTVM_MGR_MOVE_MOVED_ACK] = "to the node the pages leave",
        [DISTVM_MGR_MOVE_KNOWN] = "by the home node to another node",
    };
    bool ok;

    switch (mv->step) {
    case DISTVM_MGR_MOVE_ASK:
        ok = src == home && dst == mv->from;
        break;
    case DISTVM_MGR_MOVE_KNOWN:
        ok = src == home && dst != home;
        break;
    case DISTVM_MGR_MOVE_PREPARE:
    case DISTVM_MGR_MOVE_MOVED:
        ok = src == mv->from;
        break;
    default:
        ok = dst == mv->from;
        break;
    }
    return ok || step_refused("MGR_MOVE", mv->step, rule,
                              DISTVM_MGR_MOVE__MAX, errp);
}

/* Who sends each step of EPOCH to whom (DistvmEpochStep) */
static bool epoch_check_role(const DistvmMsgEpoch *e, uint32_t home,
                             uint32_t src, uint32_t dst, Error **errp)
{
    static const char *const rule[DISTVM_EPOCH__MAX] = {
        [DISTVM_EPOCH_SAVE] = "by the home node to the others",
        [DISTVM_EPOCH_BUSY] = "to the home node by the others",
        [DISTVM_EPOCH_SENT] = "by the node it is about",
        [DISTVM_EPOCH_STORED] = "to the home node by the others",
        [DISTVM_EPOCH_COMMIT] = "by the home node to the others",
        [DISTVM_EPOCH_ABORT] = "by the home node to the others",
        [DISTVM_EPOCH_ROLLBACK] = "by the home node to the others",
        [DISTVM_EPOCH_FETCH] = "by the node it is about",
        [DISTVM_EPOCH_FETCHED] = "by the node it is about",
        [DISTVM_EPOCH_ROLLED] = "to the home node by the others",
        [DISTVM_EPOCH_LOST] = "to the home node by the others",
        [DISTVM_EPOCH_RECOVER] = "by the home node to the others",
        [DISTVM_EPOCH_SETTLE] = "by the home node to the others",
        [DISTVM_EPOCH_MARK] = "by a node other than the one it is about",
        [DISTVM_EPOCH_HELD_DONE] = "by a node other than the one it is "
                                   "about",
        [DISTVM_EPOCH_RUNS] = "to the home node by the others",
        [DISTVM_EPOCH_READY] = "to the home node by the others",
        [DISTVM_EPOCH_PLACE] = "by the home node to the others",
        [DISTVM_EPOCH_RECOVERED] = "by the home node to the others",
        [DISTVM_EPOCH_PARITY_ASK] = "by the home node to the others",
        [DISTVM_EPOCH_PARITY_DONE] = "to the home node by the others",
        [DISTVM_EPOCH_COMMITTED] = "to the home node by the others",
    };
    bool ok;

    switch (e->step) {
    case DISTVM_EPOCH_SAVE:
    case DISTVM_EPOCH_COMMIT:
    case DISTVM_EPOCH_ABORT:
    case DISTVM_EPOCH_ROLLBACK:
    case DISTVM_EPOCH_RECOVER:
    case DISTVM_EPOCH_SETTLE:
    case DISTVM_EPOCH_PLACE:
    case DISTVM_EPOCH_RECOVERED:
    case DISTVM_EPOCH_PARITY_ASK:
        ok = src == home && dst != home;
        break;
    case DISTVM_EPOCH_BUSY:
    case DISTVM_EPOCH_STORED:
    case DISTVM_EPOCH_ROLLED:
    case DISTVM_EPOCH_LOST:
    case DISTVM_EPOCH_RUNS:
    case DISTVM_EPOCH_READY:
    case DISTVM_EPOCH_PARITY_DONE:
    case DISTVM_EPOCH_COMMITTED:
        ok = src != home && dst == home;
        break;
    case DISTVM_EPOCH_MARK:
    case DISTVM_EPOCH_HELD_DONE:
        ok = src != e->node;
        break;
    case DISTVM_EPOCH_SENT:
    case DISTVM_EPOCH_FETCH:
    case DISTVM_EPOCH_FETCHED:
        ok = src == e->node;
        break;
    default:
        error_setg(errp, "EPOCH of unknown step %" PRIu32, e->step);
        return false;
    }
    return ok || step_refused("EPOCH", e->step, rule, DISTVM_EPOCH__MAX,
                              errp);
}

/* Who sends each step of NET_PAIR to whom (DistvmNetPairStep) */
static bool net_pair_check_role(const DistvmMsgNetPair *np, uint32_t home,
                                uint32_t src, uint32_t dst, Error **errp)
{
    static const char *const rule[DISTVM_NET_PAIR__MAX] = {
        [DISTVM_NET_PAIR_MOVE] = "by the home node to the others",
        [DISTVM_NET_PAIR_TAKE] = "to the node the pair moves to",
        [DISTVM_NET_PAIR_KICK] = "to the node it names",
        [DISTVM_NET_PAIR_TAKEN] = "by the node the pair moves to, to the "
                                  "home node",
        [DISTVM_NET_PAIR_PATH_DOWN] = "by the node it names, to the home "
                                      "node",
        [DISTVM_NET_PAIR_PATH_UP] = "by the node it names, to the home node",
        [DISTVM_NET_PAIR_STATE] = "by the home node to the others",
    };
    bool ok;

    switch (np->step) {
    case DISTVM_NET_PAIR_MOVE:
    case DISTVM_NET_PAIR_STATE:
        ok = src == home && dst != home;
        break;
    case DISTVM_NET_PAIR_TAKE:
    case DISTVM_NET_PAIR_KICK:
        ok = dst == np->node && src != np->node;
        break;
    default:
        ok = src == np->node && dst == home && src != home;
        break;
    }
    return ok || step_refused("NET_PAIR", np->step, rule,
                              DISTVM_NET_PAIR__MAX, errp);
}

bool distvm_wire_check_role(const DistvmMsg *msg, uint32_t home,
                            uint32_t dst, Error **errp)
{
    uint32_t type = msg->hdr.type;
    DistvmRole role = type < DISTVM_MSG__MAX ? msg_roles[type] :
                      DISTVM_ROLE_NONE;
    const char *name = distvm_msg_type_name(type);

    if (type == DISTVM_MSG_RUN_STATE &&
        (msg->u.run.action == DISTVM_RUN_STOPPED ||
         msg->u.run.action == DISTVM_RUN_PAUSED ||
         msg->u.run.action == DISTVM_RUN_HELD)) {
        role = DISTVM_ROLE_TO_HOME;
    }
    if (type == DISTVM_MSG_RES_SET) {
        return res_set_check_role(&msg->u.res_set, home, msg->hdr.src, dst,
                                  errp);
    }
    if (type == DISTVM_MSG_MGR_MOVE) {
        return mgr_move_check_role(&msg->u.mgr_move, home, msg->hdr.src,
                                   dst, errp);
    }
    if (type == DISTVM_MSG_EPOCH) {
        return epoch_check_role(&msg->u.epoch, home, msg->hdr.src, dst,
                                errp);
    }
    if (type == DISTVM_MSG_NET_PAIR) {
        return net_pair_check_role(&msg->u.net_pair, home, msg->hdr.src,
                                   dst, errp);
    }
    switch (role) {
    case DISTVM_ROLE_ANY:
        return true;
    case DISTVM_ROLE_FROM_HOME:
        if (msg->hdr.src == home && dst != home) {
            return true;
        }
        error_setg(errp, "%s is sent by the home node only, to the others",
                   name);
        return false;
    case DISTVM_ROLE_TO_HOME:
        if (msg->hdr.src != home && dst == home) {
            return true;
        }
        error_setg(errp, "%s is sent to the home node only, by the others",
                   name);
        return false;
    case DISTVM_ROLE_HOME_LINK:
        if ((msg->hdr.src == home) != (dst == home)) {
            return true;
        }
        error_setg(errp, "%s is sent between the home node and another node "
                   "only", name);
        return false;
    case DISTVM_ROLE_NONE:
    default:
        error_setg(errp, "%s is not sent once the cluster has formed", name);
        return false;
    }
}
