/*
 * Unit tests for the distvm wire protocol encoder and validating decoder
 *
 * Every message type is encoded with the encoder functions, parsed and
 * decoded back field by field; then malformed messages of every kind
 * are checked to be refused with an error that names the problem.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qapi/error.h"
#include "distvm-wire.h"

#include "wire-sizes.h"

/* Offsets of header fields */
#define OFF_MAGIC   0
#define OFF_VERSION 4
#define OFF_TYPE    6
#define OFF_LENGTH  8
#define OFF_SRC     12
#define OFF_SEQ     16

static const uint64_t block_pages[] = { 16, 1, 262144 };

static const DistvmWireLimits limits = {
    .nodes = 4,
    .nr_vcpus = 8,
    .nr_blocks = ARRAY_SIZE(block_pages),
    .block_pages = block_pages,
};

/* Before the RAMBlock table is agreed */
static const DistvmWireLimits limits_no_ram = {
    .nodes = 4,
    .nr_vcpus = 8,
    .nr_blocks = 0,
    .block_pages = NULL,
};

/* Two nodes and a single vCPU */
static const DistvmWireLimits limits_one_vcpu = {
    .nodes = 2,
    .nr_vcpus = 1,
};

/* Four nodes and a single vCPU */
static const DistvmWireLimits limits_one_vcpu_4nodes = {
    .nodes = 4,
    .nr_vcpus = 1,
};

/* Two nodes, no vCPUs and no RAMBlocks */
static const DistvmWireLimits limits_nodes_only = {
    .nodes = 2,
};

/* The most nodes and vCPUs the wire allows */
static const DistvmWireLimits limits_most = {
    .nodes = DISTVM_WIRE_MAX_NODES,
    .nr_vcpus = UINT32_MAX,
};

static const DistvmMsgType page_types[] = {
    DISTVM_MSG_PAGE_REQ, DISTVM_MSG_PAGE_FWD, DISTVM_MSG_PAGE_DATA,
    DISTVM_MSG_PAGE_INV, DISTVM_MSG_PAGE_INV_ACK, DISTVM_MSG_PAGE_GRANT,
    DISTVM_MSG_PAGE_DONE,
};

static const DistvmMsgType vcpu_types[] = {
    DISTVM_MSG_VCPU_MOVE, DISTVM_MSG_VCPU_STATE, DISTVM_MSG_VCPU_MOVED,
    DISTVM_MSG_VCPU_IPI, DISTVM_MSG_VCPU_APIC, DISTVM_MSG_VCPU_NODES,
    DISTVM_MSG_VCPU_WHERE,
};

static const DistvmMsgType io_types[] = {
    DISTVM_MSG_IO_REQ, DISTVM_MSG_IO_REPLY,
};

static const DistvmMsgType mem_types[] = {
    DISTVM_MSG_MEM_PLUG, DISTVM_MSG_MEM_PLUG_ACK, DISTVM_MSG_MEM_UNPLUG,
};

static const DistvmMsgType res_types[] = {
    DISTVM_MSG_RES_ACCESS, DISTVM_MSG_RES_REPLY,
};

/* The largest value that fits in @size (1, 2 or 4) bytes */
#define IO_MAX(size) ((size) == 4 ? UINT32_MAX : (1u << ((size) * 8)) - 1)

/* IPI deliveries: mode | vector << 8 | trigger mode << 16 */
#define IPI(mode, vector, trigger) \
    ((uint64_t)(mode) | (uint64_t)(vector) << 8 | (uint64_t)(trigger) << 16)

/* LAPIC addressing: APIC ID | logical destination << 8 | format << 16 */
#define APIC(id, logical, format) \
    ((uint64_t)(id) | (uint64_t)(logical) << 8 | (uint64_t)(format) << 16)

/* The largest addressing: bits 0 to 19, and the mode flags above */
#define APIC_MAX (APIC(0xff, 0xff, 0xf) | DISTVM_APIC_X2APIC | \
                  DISTVM_APIC_ENABLED | DISTVM_APIC_SW_ENABLED)

/* Where home's HPET usually is, and Q35's ACPI PM timer */
#define HPET_BASE       UINT64_C(0xfed00000)
#define PM_TIMER_Q35    0x608

/*
 * Home's clock registers: all of them, the HPET running since 5 s of
 * guest time (its counter is the virtual clock minus 5 s)
 */
static const DistvmMsgClockRegs clock_regs_all = {
    .flags = DISTVM_CLOCK_HPET | DISTVM_CLOCK_HPET_ENABLED |
             DISTVM_CLOCK_PM_TIMER,
    .pm_timer_port = PM_TIMER_Q35, .hpet_base = HPET_BASE,
    .hpet_counter = 0x2faf080, .hpet_offset = (uint64_t)-5000000000ll,
};

/* An HPET whose main counter is stopped; no PM timer */
static const DistvmMsgClockRegs clock_regs_stopped = {
    .flags = DISTVM_CLOCK_HPET, .hpet_base = HPET_BASE,
    .hpet_counter = 0x123456789ull,
};

/* Nothing known yet */
static const DistvmMsgClockRegs clock_regs_none = { 0 };

/* The largest memory backend: a whole number of pages */
#define MEM_SIZE_MAX (UINT64_MAX & ~(uint64_t)(DISTVM_PAGE_SIZE - 1))

/* A pc-dimm's properties, as home sends them */
#define DIMM_JSON \
    "{\"driver\": \"pc-dimm\", \"id\": \"dimm1\", \"memdev\": \"mem1\"}"

/* Home plugs a 128 MiB pc-dimm backed by memory-backend-ram mem1 */
static const DistvmMsgMemPlug mem_plug_dimm = {
    .slot = 3, .size = UINT64_C(128) << 20,
    .backend_type = (char *)"memory-backend-ram",
    .backend_id = (char *)"mem1", .device = (char *)DIMM_JSON,
};

/*
 * Helpers
 */

/* A copy of @len bytes in an allocation of exactly that size (NULL if 0) */
static uint8_t *copy_payload(const uint8_t *p, size_t len)
{
    uint8_t *copy;

    if (!len) {
        return NULL;
    }
    copy = g_malloc(len);
    memcpy(copy, p, len);
    return copy;
}

static GByteArray *buf_dup(const GByteArray *buf)
{
    GByteArray *copy = g_byte_array_sized_new(buf->len);

    g_byte_array_append(copy, buf->data, buf->len);
    return copy;
}

static void buf_free(gpointer buf)
{
    g_byte_array_unref(buf);
}

static void set_u16(GByteArray *buf, size_t off, uint16_t v)
{
    g_assert_cmpuint(off + 2, <=, buf->len);
    stw_le_p(buf->data + off, v);
}

static void set_u32(GByteArray *buf, size_t off, uint32_t v)
{
    g_assert_cmpuint(off + 4, <=, buf->len);
    stl_le_p(buf->data + off, v);
}

static void set_u64(GByteArray *buf, size_t off, uint64_t v)
{
    g_assert_cmpuint(off + 8, <=, buf->len);
    stq_le_p(buf->data + off, v);
}

static void check_error(Error **errp, const char *what)
{
    const char *msg;

    g_assert_nonnull(*errp);
    msg = error_get_pretty(*errp);
    g_assert_nonnull(msg);
    if (!strstr(msg, what)) {
        g_test_message("error \"%s\" does not mention \"%s\"", msg, what);
        g_test_fail();
    }
    error_free_or_abort(errp);
}

/* A decoded message and the payload it may point into */
typedef struct Decoded {
    DistvmMsg msg;
    uint8_t *payload;
} Decoded;

/* @buf is a whole message that must be accepted under @lim */
static void decode_ok(const GByteArray *buf, const DistvmWireLimits *lim,
                      Decoded *d)
{
    DistvmMsgHeader hdr;
    Error *err = NULL;

    g_assert_cmpuint(buf->len, >=, HDR);
    if (!distvm_wire_parse_header(buf->data, &hdr, &err)) {
        g_error("header refused: %s", error_get_pretty(err));
    }
    g_assert_null(err);
    g_assert_cmpuint(hdr.length, ==, buf->len - HDR);

    d->payload = copy_payload(buf->data + HDR, hdr.length);
    if (!distvm_wire_decode(&hdr, d->payload, lim, &d->msg, &err)) {
        g_error("%s message refused: %s", distvm_msg_type_name(hdr.type),
                error_get_pretty(err));
    }
    g_assert_null(err);
    g_assert(memcmp(&d->msg.hdr, &hdr, sizeof(hdr)) == 0);
}

static void decoded_free(Decoded *d)
{
    distvm_msg_clear(&d->msg);
    g_free(d->payload);
}

static void check_hdr(const DistvmMsgHeader *hdr, DistvmMsgType type,
                      uint32_t length, uint32_t src, uint64_t seq)
{
    g_assert_cmphex(hdr->magic, ==, DISTVM_WIRE_MAGIC);
    g_assert_cmpuint(hdr->version, ==, DISTVM_WIRE_VERSION);
    g_assert_cmpuint(hdr->type, ==, type);
    g_assert_cmpuint(hdr->length, ==, length);
    g_assert_cmpuint(hdr->src, ==, src);
    g_assert_cmpuint(hdr->seq, ==, seq);
}

/* @buf must be refused by distvm_wire_parse_header */
static void expect_header_error(const GByteArray *buf, const char *what)
{
    DistvmMsgHeader hdr;
    Error *err = NULL;

    g_assert_cmpuint(buf->len, >=, HDR);
    g_assert_false(distvm_wire_parse_header(buf->data, &hdr, &err));
    check_error(&err, what);
}

/*
 * The error distvm_wire_decode gives for @buf, which must pass
 * distvm_wire_parse_header; NULL (the test failed) if it accepts it.
 */
static char *decode_error(const GByteArray *buf, const DistvmWireLimits *lim)
{
    DistvmMsgHeader hdr;
    DistvmMsg msg;
    Error *err = NULL;
    uint8_t *payload;
    char *what = NULL;

    g_assert_cmpuint(buf->len, >=, HDR);
    if (!distvm_wire_parse_header(buf->data, &hdr, &err)) {
        g_error("header refused: %s", error_get_pretty(err));
    }
    g_assert_cmpuint(hdr.length, ==, buf->len - HDR);

    payload = copy_payload(buf->data + HDR, hdr.length);
    if (distvm_wire_decode(&hdr, payload, lim, &msg, &err)) {
        g_test_message("%s message of %u bytes accepted",
                       distvm_msg_type_name(hdr.type), hdr.length);
        g_test_fail();
        distvm_msg_clear(&msg);
    } else {
        what = g_strdup(error_get_pretty(err));
        error_free(err);
    }
    g_free(payload);
    return what;
}

/* @buf must pass distvm_wire_parse_header but be refused when decoded */
static void expect_decode_error(const GByteArray *buf,
                                const DistvmWireLimits *lim,
                                const char *what)
{
    g_autofree char *got = decode_error(buf, lim);

    if (got && !strstr(got, what)) {
        g_test_message("error \"%s\" does not mention \"%s\"", got, what);
        g_test_fail();
    }
}

/* A string of @len 'x' characters */
static char *long_str(size_t len)
{
    char *s = g_malloc(len + 1);

    memset(s, 'x', len);
    s[len] = '\0';
    return s;
}

/*
 * The error an EPOCH of step @step for epoch @epoch with @vcpus vCPUs is
 * refused with, if one of them is wrong
 */
static char *epoch_error(uint32_t step, uint64_t epoch, uint32_t vcpus)
{
    return g_strdup_printf("EPOCH message of step %" PRIu32 " for epoch %"
                           PRIu64 " with %" PRIu32 " vCPUs", step, epoch,
                           vcpus);
}

/*
 * The error an EPOCH_STATE of epoch @epoch, of @kind and @index, with
 * bytes @offset to @end of @total, is refused with
 */
static char *epoch_state_error(uint64_t epoch, uint32_t kind, uint32_t index,
                               uint32_t offset, uint64_t end, uint32_t total)
{
    return g_strdup_printf("EPOCH_STATE message of epoch %" PRIu64 ", kind %"
                           PRIu32 " and index %" PRIu32 " with bytes %" PRIu32
                           " to %" PRIu64 " of %" PRIu32, epoch, kind, index,
                           offset, end, total);
}

/* Every valid message shape, for the truncation and trailing tests */
static GPtrArray *valid_messages(void)
{
    static char *keys[] = { (char *)"machine", (char *)"ram", (char *)"" };
    static char *values[] = { (char *)"pc-q35-10.0", (char *)"",
                              (char *)"empty key" };
    /* node 1 is not in the cluster (start-nodes): no address, speed 0 */
    static char *addrs[] = { (char *)"tcp:10.0.0.1:4444", (char *)"",
                             (char *)"unix:/tmp/n2", (char *)"tcp:[::1]:7" };
    static const uint32_t speeds[] = { 1000, 0, DISTVM_WIRE_SPEED_MAX, 1 };
    static uint8_t data[DISTVM_PAGE_SIZE];
    GPtrArray *msgs = g_ptr_array_new_with_free_func(buf_free);
    GByteArray *b;

    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = i * 7 + 1;
    }

#define NEXT() (b = g_byte_array_new(), g_ptr_array_add(msgs, b), b)
    distvm_wire_hello(NEXT(), 2, 2, 4, "tcp:10.0.0.2:4444", 2500, 3, keys,
                      values);
    distvm_wire_hello(NEXT(), 0, 0, 1, NULL, DISTVM_WIRE_SPEED_MIN, 0, NULL,
                      NULL);
    distvm_wire_hello(NEXT(), 3, DISTVM_WIRE_NODE_ANY, 4, "unix:/n.sock",
                      DISTVM_WIRE_SPEED_ONE, 0, NULL, NULL);
    distvm_wire_welcome(NEXT(), 4, 2, addrs, speeds);
    distvm_wire_welcome(NEXT(), 3, 2, addrs, speeds);
    distvm_wire_refuse(NEXT(), 0, "machine type differs");
    distvm_wire_refuse(NEXT(), 3, "");
    distvm_wire_node(NEXT(), DISTVM_MSG_PEER_HELLO, 3, 3);
    distvm_wire_empty(NEXT(), DISTVM_MSG_READY, 1, 5);
    distvm_wire_empty(NEXT(), DISTVM_MSG_START, 0, 0);
    distvm_wire_empty(NEXT(), DISTVM_MSG_BYE, 3, UINT64_MAX);
    distvm_wire_empty(NEXT(), DISTVM_MSG_HEARTBEAT, 2, 0);
    distvm_wire_empty(NEXT(), DISTVM_MSG_END, 1, 0);
    distvm_wire_empty(NEXT(), DISTVM_MSG_ENDED, 0, 7);
    distvm_wire_policy(NEXT(), 2, 1);
    {
        static const DistvmPageRef warm[] = {
            { .block = 2, .flags = DISTVM_WARM_WRITE, .page = 262143 },
            { .block = 0, .flags = 0, .page = 15 },
        };

        distvm_wire_warm_pages(NEXT(), 1, 7, warm, ARRAY_SIZE(warm));
    }
    {
        static const DistvmPageRef reqs[] = {
            { .block = 2, .flags = DISTVM_PAGE_WRITE, .page = 262143 },
            { .block = 0, .flags = DISTVM_PAGE_WRITE | DISTVM_PAGE_HAS_COPY,
              .page = 15 },
            { .block = 1, .flags = 0, .page = 0 },
        };

        distvm_wire_page_reqs(NEXT(), 1, reqs, ARRAY_SIZE(reqs));
    }
    distvm_wire_mem_plug(NEXT(), 0, 21, &mem_plug_dimm);
    distvm_wire_mem_plug(NEXT(), 0, 0, &(DistvmMsgMemPlug) {
        .slot = DISTVM_WIRE_MAX_BLOCKS - 1, .size = MEM_SIZE_MAX,
        .backend_type = (char *)"t", .backend_id = (char *)"i",
        .device = (char *)"d",
    });
    distvm_wire_mem_plug_ack(NEXT(), 2, 21, 3, "");
    distvm_wire_mem_plug_ack(NEXT(), 3, UINT64_MAX, DISTVM_WIRE_MAX_BLOCKS - 1,
                             "cannot allocate memory");
    distvm_wire_mem_unplug(NEXT(), 0, 3);
    distvm_wire_mem_unplug(NEXT(), 0, DISTVM_WIRE_MAX_BLOCKS - 1);
    distvm_wire_cpu_plug(NEXT(), 0, 9, 3, "{\"driver\": \"x\"}");
    distvm_wire_cpu_plug_ack(NEXT(), 1, 9, 3, "");
    distvm_wire_cpu_plug_ack(NEXT(), 2, UINT64_MAX, 0, "it failed");
    distvm_wire_cpu_unplug(NEXT(), 0, 3);
    /* a 4-byte read, an 8-byte write at the top, their replies */
    distvm_wire_res(NEXT(), DISTVM_MSG_RES_ACCESS, 1, 31, &(DistvmMsgRes) {
        .addr = 0x12345678, .size = 4, .flags = 0, .data = 0,
    });
    distvm_wire_res(NEXT(), DISTVM_MSG_RES_ACCESS, 3, UINT64_MAX,
                    &(DistvmMsgRes) {
        .addr = UINT64_MAX - 7, .size = 8, .flags = DISTVM_RES_WRITE,
        .data = UINT64_MAX,
    });
    distvm_wire_res(NEXT(), DISTVM_MSG_RES_ACCESS, 0, 0, &(DistvmMsgRes) {
        .addr = 0xfff, .size = 1, .flags = DISTVM_RES_WRITE, .data = 0xa5,
    });
    distvm_wire_res(NEXT(), DISTVM_MSG_RES_REPLY, 2, 31, &(DistvmMsgRes) {
        .addr = 0x12345678, .size = 4, .flags = 0, .data = 0xdeadbeef,
    });
    /* a reply is not checked: any size, address and MemTxResult */
    distvm_wire_res(NEXT(), DISTVM_MSG_RES_REPLY, 0, UINT64_MAX,
                    &(DistvmMsgRes) {
        .addr = UINT64_MAX, .size = UINT32_MAX, .flags = UINT32_MAX,
        .data = UINT64_MAX,
    });
    distvm_wire_vcpu_move(NEXT(), DISTVM_MSG_VCPU_MOVE, 2, 1, 2, 3,
                          DISTVM_MOVE_POLICY, 0, NULL, 0);
    distvm_wire_vcpu_move(NEXT(), DISTVM_MSG_VCPU_MOVED, 3, 6, 1, 3,
                          DISTVM_MOVE_RESIDENCY, 98765, NULL, 0);
    distvm_wire_node(NEXT(), DISTVM_MSG_NODE_LOST, 1, 3);
    distvm_wire_node(NEXT(), DISTVM_MSG_NODE_LOST, 0, 0);
    distvm_wire_node_join(NEXT(), DISTVM_MSG_NODE_JOINING, 0, 3,
                          DISTVM_WIRE_SPEED_MAX);
    distvm_wire_node_join(NEXT(), DISTVM_MSG_NODE_JOINED, 0, 1,
                          DISTVM_WIRE_SPEED_MIN);
    distvm_wire_vcpu(NEXT(), DISTVM_MSG_VCPU_WHERE, 0, 5, 0, 2, 0, NULL, 0);
    distvm_wire_node(NEXT(), DISTVM_MSG_NODE_DRAIN, 0, 2);
    distvm_wire_node(NEXT(), DISTVM_MSG_DRAIN_PAGES, 0, 3);
    distvm_wire_node(NEXT(), DISTVM_MSG_DRAINED, 1, 3);
    distvm_wire_node(NEXT(), DISTVM_MSG_NODE_LEFT, 0, 1);
    distvm_wire_flow(NEXT(), 2, 0);
    distvm_wire_flow(NEXT(), 0, UINT64_MAX);
    distvm_wire_flow(NEXT(), 3, 0x0123456789abcdefull);
    /* node 2's part of the page directory goes to node 1, step by step */
    for (uint32_t step = 0; step < DISTVM_MGR_MOVE__MAX; step++) {
        bool by_from = step == DISTVM_MGR_MOVE_PREPARE ||
                       step == DISTVM_MGR_MOVE_MOVED;

        distvm_wire_mgr_move(NEXT(), by_from ? 2 : 0, step, 2, 1);
    }
    {
        static const int8_t owner[] = { 1, -1, 3, 0 };
        static const uint16_t copyset[] = { 0x2, 0, 0xf, 0x9 };

        distvm_wire_mgr_entries(NEXT(), 2, 0, 12, ARRAY_SIZE(owner), owner,
                                copyset);
        distvm_wire_mgr_entries(NEXT(), 2, 2, 262143, 1, owner + 2,
                                copyset + 2);
    }
    /*
     * checkpoint epoch 5: home asks the others to save it; node 1 is busy;
     * node 2 sent its data and the states of 3 vCPUs to its replica, node
     * 3, which stored them; node 1 sent all 8 vCPUs' to node 2; home
     * commits it, and aborts the last epoch there can be
     */
    distvm_wire_epoch(NEXT(), 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SAVE, .node = 0, .epoch = 5,
    });
    distvm_wire_epoch(NEXT(), 1, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_BUSY, .node = 1, .epoch = 5,
    });
    distvm_wire_epoch(NEXT(), 2, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SENT, .node = 2, .epoch = 5,
        .bytes = 0x123456789ull, .vcpus = 3,
    });
    distvm_wire_epoch(NEXT(), 3, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_STORED, .node = 2, .epoch = 5,
        .bytes = 0x123456789ull, .vcpus = 3,
    });
    distvm_wire_epoch(NEXT(), 1, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SENT, .node = 1, .epoch = 5,
        .bytes = UINT64_MAX, .vcpus = 8,
    });
    distvm_wire_epoch(NEXT(), 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_COMMIT, .node = 0, .epoch = 5,
    });
    distvm_wire_epoch(NEXT(), 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_ABORT, .node = 3, .epoch = UINT64_MAX,
        .bytes = UINT64_MAX,
    });
    /* node 2's pages of epoch 5, changed and zero; the last of RAMBlock 2 */
    distvm_wire_epoch_pages_begin(NEXT(), 2, 5, 0);
    distvm_wire_epoch_pages_add(b, 15, 0, data);
    distvm_wire_epoch_pages_add(b, 0, 0, NULL);
    distvm_wire_epoch_pages_add(b, 3, 0, data);
    distvm_wire_end(b);
    distvm_wire_epoch_pages_begin(NEXT(), 1, UINT64_MAX, 2);
    distvm_wire_epoch_pages_add(b, 262143, 0, NULL);
    distvm_wire_end(b);
    /*
     * a chunk from the middle of vCPU 7's state, with room after it; the
     * whole of home's devices' state, with none
     */
    distvm_wire_epoch_state(NEXT(), 2, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = DISTVM_EPOCH_STATE_VCPU, .index = 7,
        .total = 3 * DISTVM_PAGE_SIZE, .offset = 100, .len = 1000,
        .data = data,
    });
    distvm_wire_epoch_state(NEXT(), 0, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = DISTVM_EPOCH_STATE_DEVICES, .index = 0,
        .total = 64, .offset = 0, .len = 64, .data = data,
    });
    /* the devices placed on node 3 (the last), and their committed copy */
    distvm_wire_epoch_state(NEXT(), 3, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = DISTVM_EPOCH_STATE_PLACED, .index = 3,
        .total = 200, .offset = 0, .len = 200, .data = data,
    });
    distvm_wire_epoch_state(NEXT(), 1, &(DistvmMsgEpochState) {
        .epoch = 4, .kind = DISTVM_EPOCH_STATE_PLACED_COPY, .index = 3,
        .total = 200, .offset = 100, .len = 100, .data = data,
    });
    /*
     * a rollback to epoch 5: home tells node 1; node 1 asks node 2 for
     * the committed copies of three pages, then FETCH; node 2 sends them,
     * one all zero and one from epoch 4, and a chunk of vCPU 7's state,
     * then FETCHED; home gets its devices' state from node 1; node 1
     * rolled back, with all 8 vCPUs' states
     */
    distvm_wire_epoch(NEXT(), 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_ROLLBACK, .node = 0, .epoch = 5,
    });
    distvm_wire_epoch_pages_begin(NEXT(), 1, 5, 0);
    distvm_wire_epoch_pages_add(b, 15, DISTVM_EPOCH_PAGE_ASK, NULL);
    distvm_wire_epoch_pages_add(b, 0, DISTVM_EPOCH_PAGE_ASK, NULL);
    distvm_wire_epoch_pages_add(b, 3, DISTVM_EPOCH_PAGE_ASK, NULL);
    distvm_wire_end(b);
    distvm_wire_epoch(NEXT(), 1, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_FETCH, .node = 1, .epoch = 5,
    });
    distvm_wire_epoch_pages_begin(NEXT(), 2, 5, 0);
    distvm_wire_epoch_pages_add(b, 15, DISTVM_EPOCH_PAGE_COPY, data);
    distvm_wire_epoch_pages_add(b, 0, DISTVM_EPOCH_PAGE_COPY, NULL);
    distvm_wire_end(b);
    distvm_wire_epoch_pages_begin(NEXT(), 2, 4, 0);
    distvm_wire_epoch_pages_add(b, 3, DISTVM_EPOCH_PAGE_COPY, data);
    distvm_wire_end(b);
    distvm_wire_epoch_state(NEXT(), 2, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = DISTVM_EPOCH_STATE_VCPU_COPY, .index = 7,
        .total = 3 * DISTVM_PAGE_SIZE, .offset = 4096, .len = 500,
        .data = data,
    });
    distvm_wire_epoch(NEXT(), 2, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_FETCHED, .node = 2, .epoch = 5,
    });
    distvm_wire_epoch_state(NEXT(), 1, &(DistvmMsgEpochState) {
        .epoch = 4, .kind = DISTVM_EPOCH_STATE_DEVICES_COPY, .index = 0,
        .total = 100, .offset = 0, .len = 100, .data = data,
    });
    distvm_wire_epoch(NEXT(), 1, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_ROLLED, .node = 1, .epoch = 5, .vcpus = 8,
    });
    /*
     * node 3 is lost, its part taken over from epoch 5: node 1 tells
     * home, which tells the others, then to settle; node 2's page
     * messages stopped; it holds two pages of node 1's, one writable,
     * and node 1 the last of RAMBlock 2, writable; node 1 runs vCPU 4
     * and is ready; home places vCPU 7 on node 2, and the guest runs
     */
    distvm_wire_epoch(NEXT(), 1, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_LOST, .node = 3, .epoch = 5,
    });
    distvm_wire_epoch(NEXT(), 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_RECOVER, .node = 3, .epoch = 5,
    });
    distvm_wire_epoch(NEXT(), 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SETTLE, .node = 3, .epoch = 5,
    });
    distvm_wire_epoch(NEXT(), 2, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_MARK, .node = 3, .epoch = 5,
    });
    distvm_wire_epoch_pages_begin(NEXT(), 2, 5, 0);
    distvm_wire_epoch_pages_add(b, 15, DISTVM_EPOCH_PAGE_HELD, NULL);
    distvm_wire_epoch_pages_add(b, 3, DISTVM_EPOCH_PAGE_HELD |
                                DISTVM_EPOCH_PAGE_OWNED, NULL);
    distvm_wire_end(b);
    distvm_wire_epoch_pages_begin(NEXT(), 1, 5, 2);
    distvm_wire_epoch_pages_add(b, 262143, DISTVM_EPOCH_PAGE_HELD |
                                DISTVM_EPOCH_PAGE_OWNED, NULL);
    distvm_wire_end(b);
    distvm_wire_epoch(NEXT(), 2, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_HELD_DONE, .node = 3, .epoch = 5,
    });
    distvm_wire_epoch(NEXT(), 1, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_RUNS, .node = 3, .epoch = 5, .vcpus = 4,
    });
    distvm_wire_epoch(NEXT(), 1, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_READY, .node = 3, .epoch = 5,
    });
    distvm_wire_epoch(NEXT(), 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_PLACE, .node = 2, .epoch = 5, .vcpus = 7,
    });
    distvm_wire_epoch(NEXT(), 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_RECOVERED, .node = 3, .epoch = 5,
    });
    /*
     * with redundancy=parity: node 2 sends its keeper, node 3, the
     * changes to the parity of its slots 0 and 7 at epoch 5, the second
     * all zero; node 3 is lost, home asks node 1 for the committed
     * content of its slots 0 to 262160, the guest's last, which it sends
     * (the last page of RAMBlock 2 in that slot, and an all zero one),
     * then PARITY_DONE
     */
    distvm_wire_epoch_pages_begin(NEXT(), 2, 5, 0);
    distvm_wire_epoch_pages_add_slot(b, 15, DISTVM_EPOCH_PAGE_DELTA, 0, data);
    distvm_wire_epoch_pages_add_slot(b, 3, DISTVM_EPOCH_PAGE_DELTA, 7, NULL);
    distvm_wire_end(b);
    distvm_wire_epoch(NEXT(), 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_PARITY_ASK, .node = 3, .epoch = 5,
        .bytes = 262161,
    });
    distvm_wire_epoch_pages_begin(NEXT(), 1, 5, 2);
    distvm_wire_epoch_pages_add_slot(b, 262143, DISTVM_EPOCH_PAGE_SLOT,
                                     262160, data);
    distvm_wire_epoch_pages_add_slot(b, 0, DISTVM_EPOCH_PAGE_SLOT, 1, NULL);
    distvm_wire_end(b);
    distvm_wire_epoch(NEXT(), 1, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_PARITY_DONE, .node = 3, .epoch = 5,
        .bytes = DISTVM_PAGE_SIZE,
    });
    /* home's standby, node 1, tells home it has its COMMIT of epoch 5 */
    distvm_wire_epoch(NEXT(), 1, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_COMMITTED, .node = 1, .epoch = 5,
    });
    distvm_wire_empty(NEXT(), DISTVM_MSG_PING, 1, 0x0123456789abcdefull);
    distvm_wire_empty(NEXT(), DISTVM_MSG_PONG, 2, 42);
    distvm_wire_page(NEXT(), DISTVM_MSG_PAGE_REQ, 1, 7, 0, 15, 1,
                     DISTVM_PAGE_WRITE | DISTVM_PAGE_HAS_COPY, NULL);
    distvm_wire_page(NEXT(), DISTVM_MSG_PAGE_FWD, 0, 8, 2, 262143, 3,
                     DISTVM_PAGE_WRITE | DISTVM_PAGE_DROP, NULL);
    distvm_wire_page(NEXT(), DISTVM_MSG_PAGE_DATA, 2, 9, 1, 0, 1,
                     DISTVM_PAGE_WRITE, data);
    distvm_wire_page(NEXT(), DISTVM_MSG_PAGE_DATA, 2, 10, 2, 77, 1,
                     DISTVM_PAGE_ZERO, NULL);
    distvm_wire_page(NEXT(), DISTVM_MSG_PAGE_INV, 0, 11, 0, 3, 2, 0, NULL);
    distvm_wire_page(NEXT(), DISTVM_MSG_PAGE_INV_ACK, 2, 11, 0, 3, 2, 0,
                     NULL);
    distvm_wire_page(NEXT(), DISTVM_MSG_PAGE_GRANT, 0, 12, 2, 1, 1,
                     DISTVM_PAGE_WRITE, NULL);
    distvm_wire_page(NEXT(), DISTVM_MSG_PAGE_DONE, 1, 12, 2, 1, 1, 0, NULL);
    distvm_wire_vcpu(NEXT(), DISTVM_MSG_VCPU_MOVE, 1, 0, 1, 3, 0, NULL, 0);
    distvm_wire_vcpu(NEXT(), DISTVM_MSG_VCPU_MOVE, 3, 7, 0, 0, 0, NULL, 0);
    distvm_wire_vcpu(NEXT(), DISTVM_MSG_VCPU_STATE, 1, 2, 1, 3,
                     1763776000123456789ull, data, sizeof(data));
    distvm_wire_vcpu(NEXT(), DISTVM_MSG_VCPU_STATE, 0, 7, 0, 2, 0, data, 1);
    distvm_wire_vcpu(NEXT(), DISTVM_MSG_VCPU_MOVED, 3, 2, 1, 3, 1234567,
                     NULL, 0);
    distvm_wire_vcpu(NEXT(), DISTVM_MSG_VCPU_IPI, 2, 5, 2, 0,
                     IPI(0, 0xfe, 1), NULL, 0);
    distvm_wire_vcpu(NEXT(), DISTVM_MSG_VCPU_IPI, 0, 0, 0, 1, IPI(6, 0x10, 0),
                     NULL, 0);
    distvm_wire_vcpu(NEXT(), DISTVM_MSG_VCPU_IPI, 0, 0, 0, 1,
                     IPI(DISTVM_DM_A20, 1, 0), NULL, 0);
    distvm_wire_vcpu(NEXT(), DISTVM_MSG_VCPU_APIC, 1, 2, 1, 3,
                     APIC(2, 0x04, 0xf), NULL, 0);
    distvm_wire_vcpu(NEXT(), DISTVM_MSG_VCPU_APIC, 3, 7, 3, 3, APIC_MAX,
                     NULL, 0);
    distvm_wire_vcpu(NEXT(), DISTVM_MSG_VCPU_APIC, 0, 0, 0, 2, 0, NULL, 0);
    distvm_wire_vcpu(NEXT(), DISTVM_MSG_VCPU_NODES, 1, 5, 1, 1, 0xb, NULL,
                     0);
    distvm_wire_vcpu(NEXT(), DISTVM_MSG_VCPU_NODES, 0, 0, 0, 0, 0x1, NULL,
                     0);
    distvm_wire_vcpu(NEXT(), DISTVM_MSG_VCPU_NODES, 3, 7, 3, 3, 0xf, NULL,
                     0);
    distvm_wire_pci_config(NEXT(), 0, 1, "/machine/q35/mch", 0x90, 0x30, 1);
    distvm_wire_pci_config(NEXT(), 0, 2, "", DISTVM_PCI_CONFIG_SPACE - 2,
                           0xbeef, 2);
    distvm_wire_pci_config(NEXT(), 0, UINT64_MAX,
                           "/machine/unattached/device[2]",
                           DISTVM_PCI_CONFIG_SPACE - 4, 0xb0000001, 4);
    /* to a node that runs a placed device, after home's write 42 */
    distvm_wire_io(NEXT(), DISTVM_MSG_IO_REQ, 1, &(DistvmMsgIo) {
        .cpu = 3, .space = DISTVM_IO_MEMORY, .size = 2,
        .flags = DISTVM_IO_WRITE | DISTVM_IO_CONFIG_GEN, .addr = 0xfebf7004,
        .data = 0x1, .config_gen = 42,
    });
    distvm_wire_io(NEXT(), DISTVM_MSG_IO_REQ, 0, &(DistvmMsgIo) {
        .cpu = 0, .space = DISTVM_IO_PORT, .size = 1,
        .flags = DISTVM_IO_CONFIG_GEN, .addr = 0xc093, .config_gen = 0,
    });
    distvm_wire_pci_intx(NEXT(), 2, 0, 1);
    distvm_wire_pci_intx(NEXT(), 1, DISTVM_PCI_INTX_MAX - 1, 0);
    distvm_wire_net_ctrl(NEXT(), 0, "/machine/peripheral/vmq",
                         (const uint8_t[]) { 4, 0, 4, 0 }, 4);
    distvm_wire_vcpu(NEXT(), DISTVM_MSG_VCPU_FLUSH, 1, 3, 1, 2, 0x0a, NULL, 0);
    distvm_wire_set_seq(b, 7);
    distvm_wire_vcpu(NEXT(), DISTVM_MSG_VCPU_FLUSHED, 2, 3, 2, 1, 0, NULL, 0);
    distvm_wire_set_seq(b, 7);
    distvm_wire_net_pair(NEXT(), 0, "/machine/peripheral/vmq",
                         DISTVM_NET_PAIR_MOVE, 2, 0, 4, 1);
    for (uint32_t step = 0; step < DISTVM_RES_SET__MAX; step++) {
        distvm_wire_res_set(NEXT(), step ? 2 : 0, &(DistvmMsgResSet) {
            .base = 0x1200000, .size = 0x400000, .node = 2, .step = step,
        });
    }
    distvm_wire_io(NEXT(), DISTVM_MSG_IO_REQ, 1, &(DistvmMsgIo) {
        .cpu = 3, .space = DISTVM_IO_PORT, .size = 1,
        .flags = DISTVM_IO_WRITE, .addr = 0x3f8, .data = 0x41,
    });
    distvm_wire_io(NEXT(), DISTVM_MSG_IO_REQ, 3, &(DistvmMsgIo) {
        .cpu = 7, .space = DISTVM_IO_PORT, .size = 4, .flags = 0,
        .addr = 0xcfc, .data = 0,
    });
    distvm_wire_io(NEXT(), DISTVM_MSG_IO_REPLY, 0, &(DistvmMsgIo) {
        .cpu = 7, .space = DISTVM_IO_PORT, .size = 4, .flags = 0,
        .addr = 0xcfc, .data = 0x29c08086,
    });
    distvm_wire_io(NEXT(), DISTVM_MSG_IO_REPLY, 0, &(DistvmMsgIo) {
        .cpu = 0, .space = DISTVM_IO_PORT, .size = 2, .flags = 0xff,
        .addr = 0xffff, .data = 0xffff,
    });
    /* a reset request through the PIIX3's reset control register */
    distvm_wire_io(NEXT(), DISTVM_MSG_IO_REPLY, 0, &(DistvmMsgIo) {
        .cpu = 2, .space = DISTVM_IO_PORT, .size = 1,
        .flags = DISTVM_IO_STOP, .addr = 0xcf9, .data = 0,
    });
    /* A20 turned off, then on, through port 0x92 */
    distvm_wire_io(NEXT(), DISTVM_MSG_IO_REPLY, 0, &(DistvmMsgIo) {
        .cpu = 0, .space = DISTVM_IO_PORT, .size = 1,
        .flags = DISTVM_IO_A20, .addr = 0x92, .data = 0,
    });
    distvm_wire_io(NEXT(), DISTVM_MSG_IO_REPLY, 0, &(DistvmMsgIo) {
        .cpu = 0, .space = DISTVM_IO_PORT, .size = 1,
        .flags = DISTVM_IO_A20 | DISTVM_IO_A20_ON, .addr = 0x92, .data = 0,
    });
    distvm_wire_run_state(NEXT(), 0, &(DistvmMsgRunState) {
        .action = DISTVM_RUN_CONT, .virtual_ns = 5000000000ull,
        .guest_ticks = 12500000000ull, .host_ns = 86400123456789ull,
        .host_ticks = 216000308641972ull, .host_id = 0x5d41402abc4b2a76ull,
    });
    distvm_wire_run_state(NEXT(), 0, &(DistvmMsgRunState) {
        .action = DISTVM_RUN_STOP,
    });
    distvm_wire_run_state(NEXT(), 3, &(DistvmMsgRunState) {
        .action = DISTVM_RUN_RESET, .virtual_ns = UINT64_MAX,
        .guest_ticks = UINT64_MAX, .host_ns = UINT64_MAX,
        .host_ticks = UINT64_MAX, .host_id = UINT64_MAX,
    });
    /*
     * home pauses the guest for epoch 5; node 2 paused, with its clocks;
     * home ends the pause, with its own
     */
    distvm_wire_run_state(NEXT(), 0, &(DistvmMsgRunState) {
        .action = DISTVM_RUN_PAUSE, .virtual_ns = 5,
    });
    distvm_wire_run_state(NEXT(), 2, &(DistvmMsgRunState) {
        .action = DISTVM_RUN_PAUSED, .virtual_ns = 5000000000ull,
        .guest_ticks = 12500000000ull, .host_ns = 5,
    });
    distvm_wire_run_state(NEXT(), 0, &(DistvmMsgRunState) {
        .action = DISTVM_RUN_UNPAUSE, .virtual_ns = 5000000000ull,
        .guest_ticks = 12500000000ull, .host_ns = 86400123456789ull,
        .host_ticks = 216000308641972ull, .host_id = 0x5d41402abc4b2a76ull,
    });
    distvm_wire_pic_output(NEXT(), 0, 1);
    distvm_wire_pic_output(NEXT(), 2, 0);
    /* a rollback brought devices 0 and 7 of device-nodes home */
    distvm_wire_device_home(NEXT(), 0, 0);
    distvm_wire_device_home(NEXT(), 1, 7);
    distvm_wire_device_away(NEXT(), 0, 5, 2, 1, (const uint8_t *)"VM", 2);
    distvm_wire_io(NEXT(), DISTVM_MSG_IO_REQ, 2, &(DistvmMsgIo) {
        .cpu = 5, .space = DISTVM_IO_PIC_ACK, .size = 1,
    });
    distvm_wire_io(NEXT(), DISTVM_MSG_IO_REPLY, 0, &(DistvmMsgIo) {
        .cpu = 5, .space = DISTVM_IO_PIC_ACK, .size = 1, .flags = 0,
        .data = 0x08,
    });
    distvm_wire_io(NEXT(), DISTVM_MSG_IO_REPLY, 0, &(DistvmMsgIo) {
        .cpu = 0, .space = DISTVM_IO_PIC_ACK, .size = 1, .flags = 0xff,
        .data = 0xff,
    });
    distvm_wire_clock_regs(NEXT(), 0, &clock_regs_all);
    distvm_wire_clock_regs(NEXT(), 0, &clock_regs_stopped);
    distvm_wire_clock_regs(NEXT(), 3, &clock_regs_none);
#undef NEXT

    return msgs;
}

/*
 * Round trips
 */

static void test_type_names(void)
{
    static const char *const names[DISTVM_MSG__MAX] = {
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
        [DISTVM_MSG_NODE_LOST] = "NODE_LOST",
        [DISTVM_MSG_VCPU_MOVE] = "VCPU_MOVE",
        [DISTVM_MSG_VCPU_STATE] = "VCPU_STATE",
        [DISTVM_MSG_VCPU_MOVED] = "VCPU_MOVED",
        [DISTVM_MSG_VCPU_IPI] = "VCPU_IPI",
        [DISTVM_MSG_PCI_CONFIG] = "PCI_CONFIG",
        [DISTVM_MSG_IO_REQ] = "IO_REQ",
        [DISTVM_MSG_IO_REPLY] = "IO_REPLY",
        [DISTVM_MSG_VCPU_APIC] = "VCPU_APIC",
        [DISTVM_MSG_RUN_STATE] = "RUN_STATE",
        [DISTVM_MSG_PIC_OUTPUT] = "PIC_OUTPUT",
        [DISTVM_MSG_CLOCK_REGS] = "CLOCK_REGS",
        [DISTVM_MSG_HEARTBEAT] = "HEARTBEAT",
        [DISTVM_MSG_POLICY] = "POLICY",
        [DISTVM_MSG_VCPU_WARM_PAGES] = "VCPU_WARM_PAGES",
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
        [DISTVM_MSG_VCPU_FLUSH] = "VCPU_FLUSH",
        [DISTVM_MSG_VCPU_FLUSHED] = "VCPU_FLUSHED",
        [DISTVM_MSG_NET_PAIR] = "NET_PAIR",
        [DISTVM_MSG_DEVICE_HOME] = "DEVICE_HOME",
        [DISTVM_MSG_DEVICE_AWAY] = "DEVICE_AWAY",
    };

    /* the table above names every type, and no more */
    g_assert_cmpuint(DISTVM_MSG__MAX, ==, DISTVM_MSG_DEVICE_AWAY + 1);
    for (uint32_t t = 1; t < DISTVM_MSG__MAX; t++) {
        g_assert_nonnull(names[t]);
        g_assert_cmpstr(distvm_msg_type_name(t), ==, names[t]);
    }
    g_assert_cmpstr(distvm_msg_type_name(0), ==, "unknown");
    g_assert_cmpstr(distvm_msg_type_name(DISTVM_MSG__MAX), ==, "unknown");
    g_assert_cmpstr(distvm_msg_type_name(0xffff), ==, "unknown");
    g_assert_cmpstr(distvm_msg_type_name(UINT32_MAX), ==, "unknown");
}

/* ---- roles ---- */

static bool role_ok(uint32_t type, uint32_t action, uint32_t src,
                    uint32_t dst, const char *want_error)
{
    DistvmMsg msg = { .hdr = { .type = type, .src = src } };
    Error *err = NULL;
    bool ok;

    msg.u.run.action = action;
    ok = distvm_wire_check_role(&msg, 0, dst, &err);
    g_assert(ok == !err);
    if (err) {
        g_assert_nonnull(strstr(error_get_pretty(err),
                                distvm_msg_type_name(type)));
        if (want_error) {
            g_assert_nonnull(strstr(error_get_pretty(err), want_error));
        }
        error_free(err);
    }
    return ok;
}

/* Whether @msg may go from its sender to @dst while node @home is home */
static bool moved_role_ok(DistvmMsg *msg, uint32_t home, uint32_t src,
                          uint32_t dst)
{
    Error *err = NULL;
    bool ok;

    msg->hdr.src = src;
    ok = distvm_wire_check_role(msg, home, dst, &err);
    g_assert(ok == !err);
    error_free(err);
    return ok;
}

/* Once a standby (node 2) took home's place, roles follow it */
static void test_roles_moved_home(void)
{
    DistvmMsg run = { .hdr.type = DISTVM_MSG_RUN_STATE,
                      .u.run.action = DISTVM_RUN_STOP };
    DistvmMsg ready = { .hdr.type = DISTVM_MSG_READY };
    DistvmMsg epoch = { .hdr.type = DISTVM_MSG_EPOCH,
                        .u.epoch = { .step = DISTVM_EPOCH_SAVE, .node = 1,
                                     .epoch = 1 } };
    DistvmMsg set = { .hdr.type = DISTVM_MSG_RES_SET,
                      .u.res_set = { .node = 1,
                                     .step = DISTVM_RES_SET_ASK } };
    DistvmMsg mv = { .hdr.type = DISTVM_MSG_MGR_MOVE,
                     .u.mgr_move = { .step = DISTVM_MGR_MOVE_KNOWN,
                                     .from = 1, .to = 3 } };

    /* from home: from node 2, to node 0 too, and no longer from node 0 */
    g_assert_true(moved_role_ok(&run, 2, 2, 0));
    g_assert_true(moved_role_ok(&run, 2, 2, 1));
    g_assert_false(moved_role_ok(&run, 2, 0, 1));
    g_assert_false(moved_role_ok(&run, 2, 1, 2));
    run.u.run.action = DISTVM_RUN_STOPPED;
    g_assert_true(moved_role_ok(&run, 2, 1, 2));
    g_assert_false(moved_role_ok(&run, 2, 1, 0));
    /* to home */
    g_assert_true(moved_role_ok(&ready, 2, 0, 2));
    g_assert_false(moved_role_ok(&ready, 2, 2, 0));
    g_assert_false(moved_role_ok(&ready, 2, 1, 0));
    /* by step */
    g_assert_true(moved_role_ok(&epoch, 2, 2, 0));
    g_assert_false(moved_role_ok(&epoch, 2, 0, 1));
    epoch.u.epoch.step = DISTVM_EPOCH_LOST;
    g_assert_true(moved_role_ok(&epoch, 2, 3, 2));
    g_assert_false(moved_role_ok(&epoch, 2, 3, 0));
    g_assert_true(moved_role_ok(&set, 2, 2, 1));
    g_assert_false(moved_role_ok(&set, 2, 0, 1));
    g_assert_true(moved_role_ok(&mv, 2, 2, 0));
    g_assert_false(moved_role_ok(&mv, 2, 0, 2));
}

/*
 * Every message type against the three relations a sender can have to
 * the receiver: home to another node, another node to home, and between
 * two nodes that are not home.
 */
static void test_roles(void)
{
    enum { ANY, FROM_HOME, TO_HOME, HOME_LINK, NONE, BY_STEP };
    static const int roles[DISTVM_MSG__MAX] = {
        [DISTVM_MSG_HELLO] = NONE,
        [DISTVM_MSG_WELCOME] = NONE,
        [DISTVM_MSG_REFUSE] = NONE,
        [DISTVM_MSG_PEER_HELLO] = NONE,
        [DISTVM_MSG_READY] = TO_HOME,
        [DISTVM_MSG_START] = FROM_HOME,
        [DISTVM_MSG_PCI_CONFIG] = FROM_HOME,
        /* to home or to a placed device's node, and back */
        [DISTVM_MSG_IO_REQ] = ANY,
        [DISTVM_MSG_IO_REPLY] = ANY,
        [DISTVM_MSG_RUN_STATE] = FROM_HOME,
        [DISTVM_MSG_PIC_OUTPUT] = FROM_HOME,
        [DISTVM_MSG_DEVICE_HOME] = FROM_HOME,
        [DISTVM_MSG_DEVICE_AWAY] = FROM_HOME,
        [DISTVM_MSG_CLOCK_REGS] = FROM_HOME,
        [DISTVM_MSG_POLICY] = HOME_LINK,
        [DISTVM_MSG_MEM_PLUG] = FROM_HOME,
        [DISTVM_MSG_MEM_PLUG_ACK] = TO_HOME,
        [DISTVM_MSG_MEM_UNPLUG] = FROM_HOME,
        [DISTVM_MSG_CPU_PLUG] = FROM_HOME,
        [DISTVM_MSG_CPU_PLUG_ACK] = TO_HOME,
        [DISTVM_MSG_CPU_UNPLUG] = FROM_HOME,
        /* to whichever node the RAM is resident on, and back */
        [DISTVM_MSG_RES_ACCESS] = ANY,
        [DISTVM_MSG_RES_REPLY] = ANY,
        /* any node may say where a vCPU may run */
        [DISTVM_MSG_VCPU_NODES] = ANY,
        [DISTVM_MSG_PCI_INTX] = TO_HOME,
        /* a node that joins the running guest, told by home */
        [DISTVM_MSG_NODE_JOINING] = FROM_HOME,
        [DISTVM_MSG_VCPU_WHERE] = FROM_HOME,
        [DISTVM_MSG_NODE_JOINED] = FROM_HOME,
        /* a node drained: home leads, the managers answer */
        [DISTVM_MSG_NODE_DRAIN] = FROM_HOME,
        [DISTVM_MSG_DRAIN_PAGES] = FROM_HOME,
        [DISTVM_MSG_DRAINED] = TO_HOME,
        [DISTVM_MSG_NODE_LEFT] = FROM_HOME,
        /* any receiver tells its sender how many messages it is done with */
        [DISTVM_MSG_FLOW] = ANY,
        /* from the node whose pages move to the node they move to */
        [DISTVM_MSG_MGR_ENTRIES] = ANY,
        /* from a node to its replica, whichever node that is */
        [DISTVM_MSG_EPOCH_PAGES] = ANY,
        [DISTVM_MSG_EPOCH_STATE] = ANY,
        /* from a card's node to the nodes that serve its other pairs */
        [DISTVM_MSG_NET_CTRL] = ANY,
        /* a vCPU's flush asked of every node, and their answers */
        [DISTVM_MSG_VCPU_FLUSH] = ANY,
        [DISTVM_MSG_VCPU_FLUSHED] = ANY,
        /* test_res_set_roles() */
        [DISTVM_MSG_RES_SET] = BY_STEP,
        /* test_mgr_move_roles() */
        [DISTVM_MSG_MGR_MOVE] = BY_STEP,
        /* test_epoch_roles() */
        [DISTVM_MSG_EPOCH] = BY_STEP,
        /* test_net_pair_roles() */
        [DISTVM_MSG_NET_PAIR] = BY_STEP,
    };

    for (uint32_t t = 1; t < DISTVM_MSG__MAX; t++) {
        bool from_home = role_ok(t, DISTVM_RUN_CONT, 0, 2, NULL);
        bool to_home = role_ok(t, DISTVM_RUN_CONT, 2, 0, NULL);
        bool between = role_ok(t, DISTVM_RUN_CONT, 1, 2, NULL);

        switch (roles[t]) {
        case ANY:
            g_assert_true(from_home && to_home && between);
            break;
        case FROM_HOME:
            g_assert_true(from_home && !to_home && !between);
            role_ok(t, DISTVM_RUN_CONT, 1, 0, "by the home node only");
            break;
        case TO_HOME:
            g_assert_true(!from_home && to_home && !between);
            role_ok(t, DISTVM_RUN_CONT, 0, 1, "to the home node only");
            break;
        case HOME_LINK:
            g_assert_true(from_home && to_home && !between);
            role_ok(t, DISTVM_RUN_CONT, 1, 2, "between the home node and "
                    "another node only");
            break;
        case NONE:
            g_assert_true(!from_home && !to_home && !between);
            role_ok(t, DISTVM_RUN_CONT, 0, 1, "once the cluster has formed");
            break;
        case BY_STEP:
            break;
        }
    }
    /*
     * A node reports to home that it stopped, paused for an epoch, or
     * holds its vCPUs; home decides the rest.
     */
    for (uint32_t a = 0; a < DISTVM_RUN__MAX; a++) {
        bool report = a == DISTVM_RUN_STOPPED || a == DISTVM_RUN_PAUSED ||
                      a == DISTVM_RUN_HELD;

        if (report) {
            g_assert_true(role_ok(DISTVM_MSG_RUN_STATE, a, 1, 0, NULL));
            g_assert_false(role_ok(DISTVM_MSG_RUN_STATE, a, 0, 1,
                                   "to the home node only"));
            g_assert_false(role_ok(DISTVM_MSG_RUN_STATE, a, 1, 2, NULL));
        } else {
            g_assert_true(role_ok(DISTVM_MSG_RUN_STATE, a, 0, 1, NULL));
            g_assert_false(role_ok(DISTVM_MSG_RUN_STATE, a, 1, 0,
                                   "by the home node only"));
            g_assert_false(role_ok(DISTVM_MSG_RUN_STATE, a, 1, 2, NULL));
        }
    }
    /*
     * An epoch's pause: home pauses the others, each answers it paused,
     * home ends the pause; from every node to every other
     */
    for (uint32_t src = 0; src < limits.nodes; src++) {
        for (uint32_t dst = 0; dst < limits.nodes; dst++) {
            if (src == dst) {
                continue;
            }
            g_assert_cmpint(role_ok(DISTVM_MSG_RUN_STATE, DISTVM_RUN_PAUSE,
                                    src, dst, "by the home node only"),
                            ==, src == 0);
            g_assert_cmpint(role_ok(DISTVM_MSG_RUN_STATE, DISTVM_RUN_PAUSED,
                                    src, dst, "to the home node only"),
                            ==, dst == 0);
            g_assert_cmpint(role_ok(DISTVM_MSG_RUN_STATE,
                                    DISTVM_RUN_UNPAUSE, src, dst,
                                    "by the home node only"),
                            ==, src == 0);
        }
    }
    g_assert_false(role_ok(DISTVM_MSG_RUN_STATE, DISTVM_RUN_PAUSED, 0, 0,
                           "to the home node only, by the others"));
    g_assert_false(role_ok(DISTVM_MSG_RUN_STATE, DISTVM_RUN_PAUSE, 0, 0,
                           "by the home node only, to the others"));
    g_assert_false(role_ok(DISTVM_MSG_RUN_STATE, DISTVM_RUN_UNPAUSE, 0, 0,
                           "by the home node only, to the others"));
    /* Types outside the protocol have no role. */
    g_assert_false(role_ok(DISTVM_MSG__MAX, 0, 0, 1, NULL));
    g_assert_false(role_ok(0, 0, 0, 1, NULL));
}

/*
 * Whether @msg, whose role is by its step, may go to @dst; if not, the
 * error must mention @what
 */
static bool step_role_ok(const DistvmMsg *msg, uint32_t dst, const char *what)
{
    Error *err = NULL;
    bool ok = distvm_wire_check_role(msg, 0, dst, &err);

    g_assert(ok == !err);
    if (err) {
        if (!strstr(error_get_pretty(err), what)) {
            g_test_message("error \"%s\" does not mention \"%s\"",
                           error_get_pretty(err), what);
            g_test_fail();
        }
        error_free(err);
    }
    return ok;
}

/* Whether RES_SET of @step for a range on @node may go from @src to @dst */
static bool res_set_role_ok(uint32_t step, uint32_t node, uint32_t src,
                            uint32_t dst)
{
    DistvmMsg msg = { .hdr = { .type = DISTVM_MSG_RES_SET, .src = src } };

    msg.u.res_set = (DistvmMsgResSet) {
        .base = 0x1000000, .size = 0x1000, .node = node, .step = step,
    };
    return step_role_ok(&msg, dst, "RES_SET of step");
}

/*
 * RES_SET, for every sender and receiver among 4 nodes and a range on
 * each: home asks the range's node, which tells home it registered it;
 * home asks the others to cover it, which tell the range's node they
 * did, and it tells everyone it is active.  Home tells a joining node of
 * each range resident.
 */
static void test_res_set_roles(void)
{
    for (uint32_t node = 0; node < 4; node++) {
        for (uint32_t src = 0; src < 4; src++) {
            for (uint32_t dst = 0; dst < 4; dst++) {
                g_assert_cmpint(res_set_role_ok(DISTVM_RES_SET_ASK, node, src,
                                                dst), ==,
                                src == 0 && dst == node);
                g_assert_cmpint(res_set_role_ok(DISTVM_RES_SET_REGISTERED,
                                                node, src, dst), ==,
                                src == node && dst == 0);
                g_assert_cmpint(res_set_role_ok(DISTVM_RES_SET_COVER, node,
                                                src, dst), ==,
                                src == 0 && dst != node);
                g_assert_cmpint(res_set_role_ok(DISTVM_RES_SET_COVERED, node,
                                                src, dst), ==,
                                src != node && dst == node);
                g_assert_cmpint(res_set_role_ok(DISTVM_RES_SET_ACTIVE, node,
                                                src, dst), ==,
                                src == node);
                g_assert_cmpint(res_set_role_ok(DISTVM_RES_SET_KNOWN, node,
                                                src, dst), ==,
                                src == 0 && dst != node);
            }
        }
    }
}

/* The rule each step of MGR_MOVE is sent by */
static const char *const mgr_move_rules[DISTVM_MGR_MOVE__MAX] = {
    [DISTVM_MGR_MOVE_ASK] = "by the home node to the node the pages leave",
    [DISTVM_MGR_MOVE_PREPARE] = "by the node the pages leave",
    [DISTVM_MGR_MOVE_PREPARED] = "to the node the pages leave",
    [DISTVM_MGR_MOVE_MOVED] = "by the node the pages leave",
    [DISTVM_MGR_MOVE_MOVED_ACK] = "to the node the pages leave",
    [DISTVM_MGR_MOVE_KNOWN] = "by the home node to another node",
};

/*
 * Whether MGR_MOVE of @step, of the pages @from manages to @to, may go
 * from @src to @dst; if not, the error must be that of the step's rule
 */
static bool mgr_move_role_ok(uint32_t step, uint32_t from, uint32_t to,
                             uint32_t src, uint32_t dst)
{
    DistvmMsg msg = { .hdr = { .type = DISTVM_MSG_MGR_MOVE, .src = src } };
    g_autofree char *what = g_strdup_printf(
        "MGR_MOVE of step %" PRIu32 " is sent %s only", step,
        mgr_move_rules[step]);

    msg.u.mgr_move = (DistvmMsgMgrMove) {
        .step = step, .from = from, .to = to,
    };
    return step_role_ok(&msg, dst, what);
}

/*
 * MGR_MOVE, for every sender and receiver among 4 nodes and every move
 * between two of them: home asks the node whose pages move to hand them
 * off; it asks the others to take the messages of the node they go to
 * too, and they tell it they have; it tells them they moved, and they
 * acknowledge it to it.  Home tells a joining node of each move.  Who
 * the pages go to does not matter.
 */
static void test_mgr_move_roles(void)
{
    for (uint32_t from = 0; from < 4; from++) {
        for (uint32_t to = 0; to < 4; to++) {
            if (from == to) {
                continue;
            }
            for (uint32_t src = 0; src < 4; src++) {
                for (uint32_t dst = 0; dst < 4; dst++) {
                    g_assert_cmpint(mgr_move_role_ok(DISTVM_MGR_MOVE_ASK,
                                                     from, to, src, dst), ==,
                                    src == 0 && dst == from);
                    g_assert_cmpint(mgr_move_role_ok(DISTVM_MGR_MOVE_PREPARE,
                                                     from, to, src, dst), ==,
                                    src == from);
                    g_assert_cmpint(mgr_move_role_ok(
                                        DISTVM_MGR_MOVE_PREPARED, from, to,
                                        src, dst), ==,
                                    dst == from);
                    g_assert_cmpint(mgr_move_role_ok(DISTVM_MGR_MOVE_MOVED,
                                                     from, to, src, dst), ==,
                                    src == from);
                    g_assert_cmpint(mgr_move_role_ok(
                                        DISTVM_MGR_MOVE_MOVED_ACK, from, to,
                                        src, dst), ==,
                                    dst == from);
                    g_assert_cmpint(mgr_move_role_ok(DISTVM_MGR_MOVE_KNOWN,
                                                     from, to, src, dst), ==,
                                    src == 0 && dst != 0);
                }
            }
        }
    }

    /*
     * as distvm-handoff.c sends them: node 2's pages go to node 1.  Home
     * asks node 2; node 2 asks each other node to prepare, which tells it
     * it has; node 2 tells node 1 they moved, then the others, each of
     * which acknowledges it; home tells node 3, which joins, of the move
     */
    g_assert_true(mgr_move_role_ok(DISTVM_MGR_MOVE_ASK, 2, 1, 0, 2));
    for (uint32_t n = 0; n < 4; n++) {
        if (n == 2) {
            continue;
        }
        g_assert_true(mgr_move_role_ok(DISTVM_MGR_MOVE_PREPARE, 2, 1, 2, n));
        g_assert_true(mgr_move_role_ok(DISTVM_MGR_MOVE_PREPARED, 2, 1, n,
                                       2));
    }
    g_assert_true(mgr_move_role_ok(DISTVM_MGR_MOVE_MOVED, 2, 1, 2, 1));
    g_assert_true(mgr_move_role_ok(DISTVM_MGR_MOVE_MOVED_ACK, 2, 1, 1, 2));
    for (uint32_t n = 0; n < 4; n++) {
        if (n == 2 || n == 1) {
            continue;
        }
        g_assert_true(mgr_move_role_ok(DISTVM_MGR_MOVE_MOVED, 2, 1, 2, n));
        g_assert_true(mgr_move_role_ok(DISTVM_MGR_MOVE_MOVED_ACK, 2, 1, n,
                                       2));
    }
    g_assert_true(mgr_move_role_ok(DISTVM_MGR_MOVE_KNOWN, 2, 1, 0, 3));

    /* and not otherwise, each refused with the rule of its step */
    g_assert_false(mgr_move_role_ok(DISTVM_MGR_MOVE_ASK, 2, 1, 0, 1));
    g_assert_false(mgr_move_role_ok(DISTVM_MGR_MOVE_ASK, 2, 1, 0, 3));
    g_assert_false(mgr_move_role_ok(DISTVM_MGR_MOVE_ASK, 2, 1, 1, 2));
    g_assert_false(mgr_move_role_ok(DISTVM_MGR_MOVE_ASK, 2, 1, 2, 0));
    g_assert_false(mgr_move_role_ok(DISTVM_MGR_MOVE_PREPARE, 2, 1, 1, 2));
    g_assert_false(mgr_move_role_ok(DISTVM_MGR_MOVE_PREPARE, 2, 1, 0, 3));
    g_assert_false(mgr_move_role_ok(DISTVM_MGR_MOVE_PREPARED, 2, 1, 0, 1));
    g_assert_false(mgr_move_role_ok(DISTVM_MGR_MOVE_PREPARED, 2, 1, 2, 3));
    g_assert_false(mgr_move_role_ok(DISTVM_MGR_MOVE_MOVED, 2, 1, 1, 2));
    g_assert_false(mgr_move_role_ok(DISTVM_MGR_MOVE_MOVED, 2, 1, 0, 3));
    g_assert_false(mgr_move_role_ok(DISTVM_MGR_MOVE_MOVED_ACK, 2, 1, 2, 1));
    g_assert_false(mgr_move_role_ok(DISTVM_MGR_MOVE_MOVED_ACK, 2, 1, 0, 1));
    g_assert_false(mgr_move_role_ok(DISTVM_MGR_MOVE_KNOWN, 2, 1, 2, 3));
    g_assert_false(mgr_move_role_ok(DISTVM_MGR_MOVE_KNOWN, 2, 1, 3, 0));

    /* the errors, spelled out */
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_MGR_MOVE, .src = 0 },
        .u.mgr_move = { .step = DISTVM_MGR_MOVE_ASK, .from = 2, .to = 1 },
    }, 1, "MGR_MOVE of step 0 is sent by the home node to the node the "
       "pages leave only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_MGR_MOVE, .src = 3 },
        .u.mgr_move = { .step = DISTVM_MGR_MOVE_PREPARE, .from = 2,
                        .to = 1 },
    }, 1, "MGR_MOVE of step 1 is sent by the node the pages leave only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_MGR_MOVE, .src = 2 },
        .u.mgr_move = { .step = DISTVM_MGR_MOVE_PREPARED, .from = 2,
                        .to = 1 },
    }, 3, "MGR_MOVE of step 2 is sent to the node the pages leave only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_MGR_MOVE, .src = 3 },
        .u.mgr_move = { .step = DISTVM_MGR_MOVE_MOVED, .from = 2, .to = 1 },
    }, 1, "MGR_MOVE of step 3 is sent by the node the pages leave only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_MGR_MOVE, .src = 2 },
        .u.mgr_move = { .step = DISTVM_MGR_MOVE_MOVED_ACK, .from = 2,
                        .to = 1 },
    }, 1, "MGR_MOVE of step 4 is sent to the node the pages leave only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_MGR_MOVE, .src = 2 },
        .u.mgr_move = { .step = DISTVM_MGR_MOVE_KNOWN, .from = 2, .to = 1 },
    }, 3, "MGR_MOVE of step 5 is sent by the home node to another node "
       "only"));

    /* the largest cluster: its last node's pages go to home */
    {
        uint32_t last = DISTVM_WIRE_MAX_NODES - 1;

        g_assert_true(mgr_move_role_ok(DISTVM_MGR_MOVE_ASK, last, 0, 0,
                                       last));
        g_assert_true(mgr_move_role_ok(DISTVM_MGR_MOVE_PREPARE, last, 0,
                                       last, 0));
        g_assert_true(mgr_move_role_ok(DISTVM_MGR_MOVE_PREPARED, last, 0, 0,
                                       last));
        g_assert_true(mgr_move_role_ok(DISTVM_MGR_MOVE_MOVED, last, 0, last,
                                       0));
        g_assert_true(mgr_move_role_ok(DISTVM_MGR_MOVE_MOVED_ACK, last, 0, 0,
                                       last));
        g_assert_false(mgr_move_role_ok(DISTVM_MGR_MOVE_ASK, last, 0, 0, 1));
        g_assert_false(mgr_move_role_ok(DISTVM_MGR_MOVE_PREPARE, last, 0, 0,
                                        last));
        g_assert_false(mgr_move_role_ok(DISTVM_MGR_MOVE_MOVED, last, 0, 0,
                                        last));
        g_assert_false(mgr_move_role_ok(DISTVM_MGR_MOVE_PREPARED, last, 0,
                                        last, 0));
    }
}

static const char *const net_pair_rules[DISTVM_NET_PAIR__MAX] = {
    [DISTVM_NET_PAIR_MOVE] = "by the home node to the others",
    [DISTVM_NET_PAIR_TAKE] = "to the node the pair moves to",
    [DISTVM_NET_PAIR_KICK] = "to the node it names",
    [DISTVM_NET_PAIR_TAKEN] = "by the node the pair moves to, to the home "
                              "node",
    [DISTVM_NET_PAIR_PATH_DOWN] = "by the node it names, to the home node",
    [DISTVM_NET_PAIR_PATH_UP] = "by the node it names, to the home node",
    [DISTVM_NET_PAIR_STATE] = "by the home node to the others",
};

/* Whether NET_PAIR of @step, of a pair moving to @node, may go @src->@dst */
static bool net_pair_role_ok(uint32_t step, uint32_t node, uint32_t src,
                             uint32_t dst)
{
    DistvmMsg msg = { .hdr = { .type = DISTVM_MSG_NET_PAIR, .src = src } };
    g_autofree char *what = g_strdup_printf(
        "NET_PAIR of step %" PRIu32 " is sent %s only", step,
        net_pair_rules[step]);

    msg.u.net_pair = (DistvmMsgNetPair) { .step = step, .node = node };
    return step_role_ok(&msg, dst, what);
}

/*
 * NET_PAIR, for every sender and receiver among 4 nodes and every node a
 * pair moves to: home tells the others of the move; the pair's last node
 * tells the new one to take it; any node passes a notification on to the
 * node it names, which it knows serves the pair; the new node tells home
 * it took it, unless it is home; a node tells home of its network path,
 * unless it is home; home tells a node that joins where the pairs are.
 */
static void test_net_pair_roles(void)
{
    for (uint32_t node = 0; node < 4; node++) {
        for (uint32_t src = 0; src < 4; src++) {
            for (uint32_t dst = 0; dst < 4; dst++) {
                g_assert_cmpint(net_pair_role_ok(DISTVM_NET_PAIR_MOVE, node,
                                                 src, dst), ==,
                                src == 0 && dst != 0);
                g_assert_cmpint(net_pair_role_ok(DISTVM_NET_PAIR_STATE, node,
                                                 src, dst), ==,
                                src == 0 && dst != 0);
                g_assert_cmpint(net_pair_role_ok(DISTVM_NET_PAIR_TAKE, node,
                                                 src, dst), ==,
                                dst == node && src != node);
                g_assert_cmpint(net_pair_role_ok(DISTVM_NET_PAIR_KICK, node,
                                                 src, dst), ==,
                                dst == node && src != node);
                for (uint32_t step = DISTVM_NET_PAIR_TAKEN;
                     step <= DISTVM_NET_PAIR_PATH_UP; step++) {
                    g_assert_cmpint(net_pair_role_ok(step, node, src, dst),
                                    ==, src == node && dst == 0 && src != 0);
                }
            }
        }
    }
}

/* The rule each step of EPOCH is sent by */
static const char *const epoch_rules[DISTVM_EPOCH__MAX] = {
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
    [DISTVM_EPOCH_HELD_DONE] = "by a node other than the one it is about",
    [DISTVM_EPOCH_RUNS] = "to the home node by the others",
    [DISTVM_EPOCH_READY] = "to the home node by the others",
    [DISTVM_EPOCH_PLACE] = "by the home node to the others",
    [DISTVM_EPOCH_RECOVERED] = "by the home node to the others",
    [DISTVM_EPOCH_PARITY_ASK] = "by the home node to the others",
    [DISTVM_EPOCH_PARITY_DONE] = "to the home node by the others",
    [DISTVM_EPOCH_COMMITTED] = "to the home node by the others",
};

/*
 * Whether EPOCH of @step, about @node, may go from @src to @dst; if not,
 * the error must be exactly that of the step's rule
 */
static bool epoch_role_ok(uint32_t step, uint32_t node, uint32_t src,
                          uint32_t dst)
{
    DistvmMsg msg = { .hdr = { .type = DISTVM_MSG_EPOCH, .src = src } };
    g_autofree char *what = g_strdup_printf(
        "EPOCH of step %" PRIu32 " is sent %s only", step, epoch_rules[step]);
    Error *err = NULL;
    bool ok;

    msg.u.epoch = (DistvmMsgEpoch) {
        .step = step, .node = node, .epoch = 1, .bytes = 4096,
    };
    ok = distvm_wire_check_role(&msg, 0, dst, &err);
    g_assert(ok == !err);
    if (err) {
        g_assert_cmpstr(error_get_pretty(err), ==, what);
        error_free(err);
    }
    return ok;
}

/*
 * EPOCH, for every sender and receiver among 4 nodes and every node it
 * is about: home asks the others to save an epoch, to commit it, to
 * abort it and to roll back to it; they tell home they are busy, that
 * they rolled back, and a replica tells it that it stored a node's data;
 * a node tells its replica, whichever node that is, that it sent all of
 * its own, and during a rollback any other that it asked for all it
 * needs (FETCH) or sent all that was asked (FETCHED).  Taking a lost
 * node over, home tells the others to (RECOVER), to settle (SETTLE),
 * where a vCPU runs (PLACE) and that it is done (RECOVERED); they tell
 * home that they lost a node (LOST), the vCPUs they run (RUNS) and that
 * they are ready (READY); any node but the one they are about tells any
 * other that its page messages stopped (MARK) and that it told all the
 * pages it holds (HELD_DONE).  With redundancy=parity, home asks the
 * others for their slots' content (PARITY_ASK); they tell home they sent
 * it (PARITY_DONE).  Home's standby tells home it has its COMMIT of an
 * epoch (COMMITTED).
 */
static void test_epoch_roles(void)
{
    static const uint32_t bad_steps[] = {
        DISTVM_EPOCH__MAX, DISTVM_EPOCH__MAX + 1, 0x100, 0x10000, INT32_MAX,
        0x80000000u, UINT32_MAX,
    };
    uint32_t last = DISTVM_WIRE_MAX_NODES - 1;

    /* the rules above name every step */
    g_assert_cmpuint(DISTVM_EPOCH__MAX, ==, DISTVM_EPOCH_COMMITTED + 1);
    for (uint32_t step = 0; step < DISTVM_EPOCH__MAX; step++) {
        g_assert_nonnull(epoch_rules[step]);
    }

    for (uint32_t node = 0; node < 4; node++) {
        for (uint32_t src = 0; src < 4; src++) {
            for (uint32_t dst = 0; dst < 4; dst++) {
                bool from_home = src == 0 && dst != 0;
                bool to_home = src != 0 && dst == 0;

                g_assert_cmpint(epoch_role_ok(DISTVM_EPOCH_SAVE, node, src,
                                              dst), ==, from_home);
                g_assert_cmpint(epoch_role_ok(DISTVM_EPOCH_BUSY, node, src,
                                              dst), ==, to_home);
                g_assert_cmpint(epoch_role_ok(DISTVM_EPOCH_SENT, node, src,
                                              dst), ==, src == node);
                g_assert_cmpint(epoch_role_ok(DISTVM_EPOCH_STORED, node, src,
                                              dst), ==, to_home);
                g_assert_cmpint(epoch_role_ok(DISTVM_EPOCH_COMMIT, node, src,
                                              dst), ==, from_home);
                g_assert_cmpint(epoch_role_ok(DISTVM_EPOCH_ABORT, node, src,
                                              dst), ==, from_home);
                g_assert_cmpint(epoch_role_ok(DISTVM_EPOCH_ROLLBACK, node,
                                              src, dst), ==, from_home);
                g_assert_cmpint(epoch_role_ok(DISTVM_EPOCH_FETCH, node, src,
                                              dst), ==, src == node);
                g_assert_cmpint(epoch_role_ok(DISTVM_EPOCH_FETCHED, node,
                                              src, dst), ==, src == node);
                g_assert_cmpint(epoch_role_ok(DISTVM_EPOCH_ROLLED, node,
                                              src, dst), ==, to_home);
                g_assert_cmpint(epoch_role_ok(DISTVM_EPOCH_LOST, node, src,
                                              dst), ==, to_home);
                g_assert_cmpint(epoch_role_ok(DISTVM_EPOCH_RECOVER, node,
                                              src, dst), ==, from_home);
                g_assert_cmpint(epoch_role_ok(DISTVM_EPOCH_SETTLE, node,
                                              src, dst), ==, from_home);
                g_assert_cmpint(epoch_role_ok(DISTVM_EPOCH_MARK, node, src,
                                              dst), ==, src != node);
                g_assert_cmpint(epoch_role_ok(DISTVM_EPOCH_HELD_DONE, node,
                                              src, dst), ==, src != node);
                g_assert_cmpint(epoch_role_ok(DISTVM_EPOCH_RUNS, node, src,
                                              dst), ==, to_home);
                g_assert_cmpint(epoch_role_ok(DISTVM_EPOCH_READY, node, src,
                                              dst), ==, to_home);
                g_assert_cmpint(epoch_role_ok(DISTVM_EPOCH_PLACE, node, src,
                                              dst), ==, from_home);
                g_assert_cmpint(epoch_role_ok(DISTVM_EPOCH_RECOVERED, node,
                                              src, dst), ==, from_home);
                g_assert_cmpint(epoch_role_ok(DISTVM_EPOCH_PARITY_ASK, node,
                                              src, dst), ==, from_home);
                g_assert_cmpint(epoch_role_ok(DISTVM_EPOCH_PARITY_DONE,
                                              node, src, dst), ==, to_home);
                g_assert_cmpint(epoch_role_ok(DISTVM_EPOCH_COMMITTED,
                                              node, src, dst), ==, to_home);
            }
        }
    }

    /*
     * as distvm-epoch.c sends them: home asks nodes 1 to 3 to save epoch
     * 1 (node 0 in the message); node 1 is busy; node 2 sends to its
     * replica, node 3, which tells home it stored node 2's data; node 3
     * sends to home, its replica; home sends its own to node 1; home
     * commits the epoch, or aborts it; node 1, home's replica (its
     * standby), tells home it has the COMMIT
     */
    for (uint32_t n = 1; n < 4; n++) {
        g_assert_true(epoch_role_ok(DISTVM_EPOCH_SAVE, 0, 0, n));
        g_assert_true(epoch_role_ok(DISTVM_EPOCH_COMMIT, 0, 0, n));
        g_assert_true(epoch_role_ok(DISTVM_EPOCH_ABORT, 0, 0, n));
    }
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_BUSY, 1, 1, 0));
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_SENT, 2, 2, 3));
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_STORED, 2, 3, 0));
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_SENT, 3, 3, 0));
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_SENT, 0, 0, 1));
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_COMMITTED, 1, 1, 0));

    /* and not otherwise */
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_SAVE, 0, 1, 2));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_SAVE, 0, 1, 0));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_BUSY, 0, 0, 1));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_BUSY, 1, 1, 2));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_SENT, 2, 3, 2));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_SENT, 2, 0, 3));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_STORED, 2, 3, 1));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_STORED, 2, 0, 3));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_COMMIT, 0, 2, 0));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_ABORT, 0, 3, 1));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_COMMITTED, 0, 0, 1));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_COMMITTED, 1, 1, 2));

    /* the errors, spelled out */
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 1 },
        .u.epoch = { .step = DISTVM_EPOCH_SAVE, .node = 0, .epoch = 1 },
    }, 2, "EPOCH of step 0 is sent by the home node to the others only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 0 },
        .u.epoch = { .step = DISTVM_EPOCH_BUSY, .node = 0, .epoch = 1 },
    }, 1, "EPOCH of step 1 is sent to the home node by the others only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 3 },
        .u.epoch = { .step = DISTVM_EPOCH_SENT, .node = 2, .epoch = 1 },
    }, 0, "EPOCH of step 2 is sent by the node it is about only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 3 },
        .u.epoch = { .step = DISTVM_EPOCH_STORED, .node = 2, .epoch = 1 },
    }, 1, "EPOCH of step 3 is sent to the home node by the others only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 2 },
        .u.epoch = { .step = DISTVM_EPOCH_COMMIT, .node = 0, .epoch = 1 },
    }, 0, "EPOCH of step 4 is sent by the home node to the others only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 1 },
        .u.epoch = { .step = DISTVM_EPOCH_ABORT, .node = 0, .epoch = 1 },
    }, 3, "EPOCH of step 5 is sent by the home node to the others only"));

    /*
     * a step the decoder would refuse is refused here too, whoever sends
     * it to whomever: an error that names it, not an assertion
     */
    for (size_t i = 0; i < ARRAY_SIZE(bad_steps); i++) {
        g_autofree char *what = g_strdup_printf(
            "EPOCH of unknown step %" PRIu32, bad_steps[i]);

        for (uint32_t src = 0; src < 4; src++) {
            for (uint32_t dst = 0; dst < 4; dst++) {
                DistvmMsg msg = {
                    .hdr = { .type = DISTVM_MSG_EPOCH, .src = src },
                    .u.epoch = { .step = bad_steps[i], .node = src,
                                 .epoch = 1 },
                };
                Error *err = NULL;

                g_assert_false(distvm_wire_check_role(&msg, 0, dst, &err));
                g_assert_nonnull(err);
                g_assert_cmpstr(error_get_pretty(err), ==, what);
                error_free(err);
                /* and without an errp */
                g_assert_false(distvm_wire_check_role(&msg, 0, dst, NULL));
            }
        }
    }

    /* the largest cluster: its last node */
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_SAVE, 0, 0, last));
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_BUSY, last, last, 0));
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_SENT, last, last, 1));
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_STORED, 1, last, 0));
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_COMMITTED, last, last, 0));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_SENT, last, 1, last));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_COMMIT, 0, last, 1));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_COMMITTED, last, 0, last));
}

/*
 * EPOCH of the step after the last (COMMITTED, the last since version
 * 25), about @node, sent by home to node 1, is unknown, with an errp or
 * without; of @from_home, it goes to node 1, and not to home itself; of
 * @to_home (none if DISTVM_EPOCH__MAX), sent by node 1, it goes to home,
 * and not to node 2
 */
static void check_role_after_last(uint32_t node, uint32_t from_home,
                                  uint32_t to_home)
{
    DistvmMsg msg = {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 0 },
        .u.epoch = { .step = 22, .node = node, .epoch = 1 },
    };
    Error *err = NULL;

    g_assert_false(distvm_wire_check_role(&msg, 0, 1, &err));
    g_assert_cmpstr(error_get_pretty(err), ==, "EPOCH of unknown step 22");
    error_free(err);
    g_assert_false(distvm_wire_check_role(&msg, 0, 1, NULL));
    msg.u.epoch.step = from_home;
    g_assert_true(distvm_wire_check_role(&msg, 0, 1, NULL));
    g_assert_false(distvm_wire_check_role(&msg, 0, 0, NULL));
    if (to_home != DISTVM_EPOCH__MAX) {
        msg.hdr.src = 1;
        msg.u.epoch.step = to_home;
        g_assert_true(distvm_wire_check_role(&msg, 0, 0, NULL));
        g_assert_false(distvm_wire_check_role(&msg, 0, 2, NULL));
    }
}

/*
 * EPOCH's rollback steps, as distvm-epoch.c sends them among 4 nodes:
 * home tells nodes 1 to 3 to roll back (ROLLBACK, about node 0); each
 * node, once it asked another for the copies of its pages, sends it
 * FETCH about itself, and that one answers FETCHED about itself; nodes 1
 * to 3 tell home they rolled back (ROLLED) or cannot now (BUSY).  Not
 * otherwise, with the step's rule in the error.
 */
static void test_epoch_rollback_roles(void)
{
    uint32_t last = DISTVM_WIRE_MAX_NODES - 1;

    for (uint32_t n = 1; n < 4; n++) {
        uint32_t other = n % 3 + 1;

        g_assert_true(epoch_role_ok(DISTVM_EPOCH_ROLLBACK, 0, 0, n));
        g_assert_true(epoch_role_ok(DISTVM_EPOCH_ROLLED, n, n, 0));
        g_assert_true(epoch_role_ok(DISTVM_EPOCH_BUSY, n, n, 0));
        /* not to home, nor between the others, whatever the node */
        g_assert_false(epoch_role_ok(DISTVM_EPOCH_ROLLBACK, 0, n, 0));
        g_assert_false(epoch_role_ok(DISTVM_EPOCH_ROLLBACK, n, n, other));
        g_assert_false(epoch_role_ok(DISTVM_EPOCH_ROLLBACK, 0, n, other));
        /* not from home, nor to another than home */
        g_assert_false(epoch_role_ok(DISTVM_EPOCH_ROLLED, 0, 0, n));
        g_assert_false(epoch_role_ok(DISTVM_EPOCH_ROLLED, n, n, other));
        g_assert_false(epoch_role_ok(DISTVM_EPOCH_ROLLED, n, 0, n));
    }
    /* home does not send itself either */
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_ROLLBACK, 0, 0, 0));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_ROLLED, 0, 0, 0));

    /* every node asks every other, home too, and is answered */
    for (uint32_t asker = 0; asker < 4; asker++) {
        for (uint32_t to = 0; to < 4; to++) {
            uint32_t third = 0;

            if (to == asker) {
                continue;
            }
            while (third == asker || third == to) {
                third++;
            }
            g_assert_true(epoch_role_ok(DISTVM_EPOCH_FETCH, asker, asker,
                                        to));
            g_assert_true(epoch_role_ok(DISTVM_EPOCH_FETCHED, to, to,
                                        asker));
            /* about the other end, or a third node */
            g_assert_false(epoch_role_ok(DISTVM_EPOCH_FETCH, to, asker, to));
            g_assert_false(epoch_role_ok(DISTVM_EPOCH_FETCHED, asker, to,
                                         asker));
            g_assert_false(epoch_role_ok(DISTVM_EPOCH_FETCH, third, asker,
                                         to));
            g_assert_false(epoch_role_ok(DISTVM_EPOCH_FETCHED, third, to,
                                         asker));
        }
    }

    /* the errors, spelled out */
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 1 },
        .u.epoch = { .step = DISTVM_EPOCH_ROLLBACK, .node = 0, .epoch = 1 },
    }, 2, "EPOCH of step 6 is sent by the home node to the others only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 0 },
        .u.epoch = { .step = DISTVM_EPOCH_ROLLBACK, .node = 0, .epoch = 1 },
    }, 0, "EPOCH of step 6 is sent by the home node to the others only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 2 },
        .u.epoch = { .step = DISTVM_EPOCH_FETCH, .node = 1, .epoch = 1 },
    }, 1, "EPOCH of step 7 is sent by the node it is about only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 1 },
        .u.epoch = { .step = DISTVM_EPOCH_FETCHED, .node = 2, .epoch = 1 },
    }, 2, "EPOCH of step 8 is sent by the node it is about only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 0 },
        .u.epoch = { .step = DISTVM_EPOCH_ROLLED, .node = 0, .epoch = 1 },
    }, 1, "EPOCH of step 9 is sent to the home node by the others only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 2 },
        .u.epoch = { .step = DISTVM_EPOCH_ROLLED, .node = 2, .epoch = 1 },
    }, 3, "EPOCH of step 9 is sent to the home node by the others only"));

    /* the step after the last is unknown, with an errp or without */
    check_role_after_last(0, DISTVM_EPOCH_ROLLBACK, DISTVM_EPOCH__MAX);

    /* the largest cluster: its last node */
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_ROLLBACK, 0, 0, last));
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_FETCH, last, last, 1));
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_FETCHED, last, last, 0));
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_ROLLED, last, last, 0));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_ROLLBACK, 0, last, 1));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_FETCH, 1, last, 1));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_ROLLED, last, last, 1));
}

/*
 * EPOCH's steps about a lost node, whichever of nodes 1 to 3 it is: each
 * of @from_home sent by home to every other node left, each of @to_home
 * by every other node left to home.  Not to home nor between the others,
 * not from home nor to another than home, and home does not send itself
 * either.
 */
static void check_roles_about_lost(const uint32_t *from_home, size_t nr_from,
                                   const uint32_t *to_home, size_t nr_to)
{
    for (uint32_t lost = 1; lost < 4; lost++) {
        for (uint32_t n = 1; n < 4; n++) {
            uint32_t other = n % 3 + 1;

            if (n == lost) {
                continue;
            }
            for (size_t i = 0; i < nr_from; i++) {
                g_assert_true(epoch_role_ok(from_home[i], lost, 0, n));
                /* not to home, nor between the others */
                g_assert_false(epoch_role_ok(from_home[i], lost, n, 0));
                g_assert_false(epoch_role_ok(from_home[i], lost, n,
                                             other));
            }
            for (size_t i = 0; i < nr_to; i++) {
                g_assert_true(epoch_role_ok(to_home[i], lost, n, 0));
                /* not from home, nor to another than home */
                g_assert_false(epoch_role_ok(to_home[i], lost, 0, n));
                g_assert_false(epoch_role_ok(to_home[i], lost, n, other));
            }
        }
    }
    /* home does not send itself either */
    for (size_t i = 0; i < nr_from; i++) {
        g_assert_false(epoch_role_ok(from_home[i], 1, 0, 0));
    }
    for (size_t i = 0; i < nr_to; i++) {
        g_assert_false(epoch_role_ok(to_home[i], 1, 0, 0));
    }
}

/*
 * EPOCH's steps taking a lost node over, as distvm-recovery.c sends them
 * among 4 nodes, each about the lost node but PLACE: a node tells home
 * it lost it (LOST); home tells the others to take it over (RECOVER) and
 * to settle (SETTLE); every node left tells every other that its page
 * messages stopped (MARK) and that it told the pages it holds
 * (HELD_DONE); the others tell home the vCPUs they run (RUNS) and that
 * they are ready (READY); home tells them where each vCPU runs (PLACE,
 * about that node, home or another) and that the guest runs again
 * (RECOVERED).  Not otherwise, with the step's rule in the error.
 */
static void test_epoch_recovery_roles(void)
{
    static const uint32_t from_home[] = {
        DISTVM_EPOCH_RECOVER, DISTVM_EPOCH_SETTLE, DISTVM_EPOCH_RECOVERED,
    };
    static const uint32_t to_home[] = {
        DISTVM_EPOCH_LOST, DISTVM_EPOCH_RUNS, DISTVM_EPOCH_READY,
    };
    static const uint32_t by_others[] = {
        DISTVM_EPOCH_MARK, DISTVM_EPOCH_HELD_DONE,
    };
    uint32_t last = DISTVM_WIRE_MAX_NODES - 1;

    check_roles_about_lost(from_home, ARRAY_SIZE(from_home), to_home,
                           ARRAY_SIZE(to_home));
    for (uint32_t lost = 1; lost < 4; lost++) {
        for (uint32_t n = 1; n < 4; n++) {
            uint32_t other = n % 3 + 1;

            if (n == lost) {
                continue;
            }
            /* a vCPU runs on this node, or on home */
            g_assert_true(epoch_role_ok(DISTVM_EPOCH_PLACE, n, 0, n));
            g_assert_true(epoch_role_ok(DISTVM_EPOCH_PLACE, 0, 0, n));
            g_assert_false(epoch_role_ok(DISTVM_EPOCH_PLACE, n, n, 0));
            g_assert_false(epoch_role_ok(DISTVM_EPOCH_PLACE, n, n, other));
        }

        /* every node left, home too, tells every other */
        for (uint32_t src = 0; src < 4; src++) {
            for (uint32_t dst = 0; dst < 4; dst++) {
                if (src == dst || src == lost || dst == lost) {
                    continue;
                }
                for (size_t i = 0; i < ARRAY_SIZE(by_others); i++) {
                    g_assert_true(epoch_role_ok(by_others[i], lost, src,
                                                dst));
                    /* not about itself, nor from the lost node */
                    g_assert_false(epoch_role_ok(by_others[i], src, src,
                                                 dst));
                    g_assert_false(epoch_role_ok(by_others[i], lost, lost,
                                                 dst));
                }
            }
        }
    }
    /* home does not send itself either */
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_PLACE, 0, 0, 0));

    /* the errors, spelled out */
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 0 },
        .u.epoch = { .step = DISTVM_EPOCH_LOST, .node = 3, .epoch = 1 },
    }, 1, "EPOCH of step 10 is sent to the home node by the others only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 1 },
        .u.epoch = { .step = DISTVM_EPOCH_RECOVER, .node = 3, .epoch = 1 },
    }, 2, "EPOCH of step 11 is sent by the home node to the others only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 0 },
        .u.epoch = { .step = DISTVM_EPOCH_SETTLE, .node = 3, .epoch = 1 },
    }, 0, "EPOCH of step 12 is sent by the home node to the others only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 3 },
        .u.epoch = { .step = DISTVM_EPOCH_MARK, .node = 3, .epoch = 1 },
    }, 1, "EPOCH of step 13 is sent by a node other than the one it is "
       "about only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 0 },
        .u.epoch = { .step = DISTVM_EPOCH_HELD_DONE, .node = 0,
                     .epoch = 1 },
    }, 2, "EPOCH of step 14 is sent by a node other than the one it is "
       "about only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 1 },
        .u.epoch = { .step = DISTVM_EPOCH_RUNS, .node = 3, .epoch = 1,
                     .vcpus = 2 },
    }, 2, "EPOCH of step 15 is sent to the home node by the others only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 0 },
        .u.epoch = { .step = DISTVM_EPOCH_READY, .node = 3, .epoch = 1 },
    }, 2, "EPOCH of step 16 is sent to the home node by the others only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 2 },
        .u.epoch = { .step = DISTVM_EPOCH_PLACE, .node = 2, .epoch = 1,
                     .vcpus = 5 },
    }, 1, "EPOCH of step 17 is sent by the home node to the others only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 1 },
        .u.epoch = { .step = DISTVM_EPOCH_RECOVERED, .node = 3,
                     .epoch = 1 },
    }, 0, "EPOCH of step 18 is sent by the home node to the others only"));

    /* the largest cluster: its last node lost, or taking another over */
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_LOST, last, 1, 0));
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_LOST, 1, last, 0));
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_RECOVER, last, 0, 1));
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_MARK, last, 1, 0));
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_HELD_DONE, 1, last, 2));
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_RUNS, 1, last, 0));
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_PLACE, last, 0, last));
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_RECOVERED, 1, 0, last));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_MARK, last, last, 1));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_READY, 1, last, 1));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_SETTLE, 1, last, 1));
}

/*
 * EPOCH's steps rebuilding a lost node's copies with redundancy=parity,
 * as distvm-epoch.c sends them among 4 nodes, each about the lost node:
 * home asks every other node left for the committed content of its
 * slots (PARITY_ASK); each tells home it sent it (PARITY_DONE).  Not
 * otherwise, with the step's rule in the error; the step after the last
 * (COMMITTED) is unknown.
 */
static void test_epoch_parity_roles(void)
{
    static const uint32_t from_home[] = { DISTVM_EPOCH_PARITY_ASK };
    static const uint32_t to_home[] = { DISTVM_EPOCH_PARITY_DONE };
    uint32_t last = DISTVM_WIRE_MAX_NODES - 1;

    check_roles_about_lost(from_home, ARRAY_SIZE(from_home), to_home,
                           ARRAY_SIZE(to_home));

    /* the errors, spelled out */
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 1 },
        .u.epoch = { .step = DISTVM_EPOCH_PARITY_ASK, .node = 3,
                     .epoch = 1, .bytes = 5 },
    }, 2, "EPOCH of step 19 is sent by the home node to the others only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 0 },
        .u.epoch = { .step = DISTVM_EPOCH_PARITY_ASK, .node = 3,
                     .epoch = 1 },
    }, 0, "EPOCH of step 19 is sent by the home node to the others only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 0 },
        .u.epoch = { .step = DISTVM_EPOCH_PARITY_DONE, .node = 3,
                     .epoch = 1 },
    }, 1, "EPOCH of step 20 is sent to the home node by the others only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 2 },
        .u.epoch = { .step = DISTVM_EPOCH_PARITY_DONE, .node = 3,
                     .epoch = 1, .bytes = 4096 },
    }, 1, "EPOCH of step 20 is sent to the home node by the others only"));

    /* the step after the last is unknown, with an errp or without */
    check_role_after_last(3, DISTVM_EPOCH_PARITY_ASK,
                          DISTVM_EPOCH_PARITY_DONE);

    /* the largest cluster: its last node lost, or asked */
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_PARITY_ASK, last, 0, 1));
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_PARITY_ASK, 1, 0, last));
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_PARITY_DONE, last, 1, 0));
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_PARITY_DONE, 1, last, 0));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_PARITY_ASK, 1, last, 1));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_PARITY_DONE, 1, last, 1));
}

/*
 * EPOCH's COMMITTED, as distvm-epoch.c sends it among 4 nodes: home's
 * standby, whichever of nodes 1 to 3 it is, tells home it has home's
 * COMMIT of an epoch, about itself.  Not from home, nor to another than
 * home, nor from home to itself, with the step's rule in the error; once
 * a standby took home's place, to the new home.  The step after it is
 * unknown.
 */
static void test_epoch_committed_roles(void)
{
    DistvmMsg moved = {
        .hdr = { .type = DISTVM_MSG_EPOCH },
        .u.epoch = { .step = DISTVM_EPOCH_COMMITTED, .node = 3,
                     .epoch = 1 },
    };
    uint32_t last = DISTVM_WIRE_MAX_NODES - 1;

    for (uint32_t n = 1; n < 4; n++) {
        uint32_t other = n % 3 + 1;

        g_assert_true(epoch_role_ok(DISTVM_EPOCH_COMMITTED, n, n, 0));
        /* not from home, nor to another than home */
        g_assert_false(epoch_role_ok(DISTVM_EPOCH_COMMITTED, n, 0, n));
        g_assert_false(epoch_role_ok(DISTVM_EPOCH_COMMITTED, n, n, other));
        /* the role check does not look at the node it is about */
        g_assert_true(epoch_role_ok(DISTVM_EPOCH_COMMITTED, other, n, 0));
        g_assert_true(epoch_role_ok(DISTVM_EPOCH_COMMITTED, 0, n, 0));
    }
    /* home does not send itself either */
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_COMMITTED, 0, 0, 0));

    /* the errors, spelled out */
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 0 },
        .u.epoch = { .step = DISTVM_EPOCH_COMMITTED, .node = 0,
                     .epoch = 1 },
    }, 1, "EPOCH of step 21 is sent to the home node by the others only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 1 },
        .u.epoch = { .step = DISTVM_EPOCH_COMMITTED, .node = 1,
                     .epoch = 7 },
    }, 2, "EPOCH of step 21 is sent to the home node by the others only"));
    g_assert_false(step_role_ok(&(DistvmMsg) {
        .hdr = { .type = DISTVM_MSG_EPOCH, .src = 0 },
        .u.epoch = { .step = DISTVM_EPOCH_COMMITTED, .node = 0,
                     .epoch = 1 },
    }, 0, "EPOCH of step 21 is sent to the home node by the others only"));

    /* node 2 home, node 3 its standby: to node 2, not to node 0 */
    g_assert_true(moved_role_ok(&moved, 2, 3, 2));
    g_assert_true(moved_role_ok(&moved, 2, 0, 2));
    g_assert_false(moved_role_ok(&moved, 2, 3, 0));
    g_assert_false(moved_role_ok(&moved, 2, 2, 3));
    g_assert_false(moved_role_ok(&moved, 2, 2, 2));

    /* the step after the last is unknown, with an errp or without */
    check_role_after_last(1, DISTVM_EPOCH_COMMIT, DISTVM_EPOCH_COMMITTED);

    /* the largest cluster: its last node home's standby */
    g_assert_true(epoch_role_ok(DISTVM_EPOCH_COMMITTED, last, last, 0));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_COMMITTED, last, 0, last));
    g_assert_false(epoch_role_ok(DISTVM_EPOCH_COMMITTED, last, last, 1));
}

/* The messages about a vCPU, whose index must name one that exists. */
static void test_msg_vcpu(void)
{
    for (uint32_t t = 1; t < DISTVM_MSG__MAX; t++) {
        DistvmMsg msg = { .hdr = { .type = t } };
        bool io = t == DISTVM_MSG_IO_REQ || t == DISTVM_MSG_IO_REPLY;
        bool vcpu = t == DISTVM_MSG_VCPU_MOVE || t == DISTVM_MSG_VCPU_STATE ||
                    t == DISTVM_MSG_VCPU_MOVED || t == DISTVM_MSG_VCPU_IPI ||
                    t == DISTVM_MSG_VCPU_APIC || t == DISTVM_MSG_VCPU_NODES ||
                    t == DISTVM_MSG_VCPU_WHERE || t == DISTVM_MSG_VCPU_FLUSH ||
                    t == DISTVM_MSG_VCPU_FLUSHED;
        bool warm = t == DISTVM_MSG_VCPU_WARM_PAGES;
        uint32_t cpu = UINT32_MAX;

        if (io) {
            msg.u.io.cpu = 3;
        } else if (vcpu) {
            msg.u.vcpu.cpu = 3;
        } else if (warm) {
            msg.u.warm.cpu = 3;
        } else {
            /*
             * a memory device's RAMBlock is not a vCPU, nor is the
             * address of a resident access
             */
            msg.u.mem.slot = 3;
        }
        g_assert_cmpint(distvm_wire_msg_vcpu(&msg, &cpu), ==,
                        io || vcpu || warm);
        g_assert_cmpuint(cpu, ==, io || vcpu || warm ? 3 : UINT32_MAX);
    }
}

static void test_header_layout(void)
{
    GByteArray *b = g_byte_array_new();
    static const uint8_t expect[HDR] = {
        'D', 'V', 'M', 'P',                 /* magic */
        32, 0,                              /* version */
        DISTVM_MSG_PING, 0,                 /* type */
        8, 0, 0, 0,                         /* length */
        3, 0, 0, 0,                         /* src */
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,    /* seq */
    };

    g_assert_cmpuint(DISTVM_WIRE_VERSION, ==, 32);
    distvm_wire_empty(b, DISTVM_MSG_PING, 3, 0x0102030405060708ull);
    g_assert_cmpuint(b->len, ==, HDR + 8);
    g_assert(memcmp(b->data, expect, HDR) == 0);
    g_assert(memcmp(b->data + HDR, expect + 16, 8) == 0);

    /* distvm_wire_begin empties the buffer first */
    distvm_wire_empty(b, DISTVM_MSG_READY, 1, 2);
    g_assert_cmpuint(b->len, ==, HDR);
    g_byte_array_unref(b);
}

static void test_hello(void)
{
    char *keys[] = { (char *)"machine", (char *)"ram_size", (char *)"smp",
                     (char *)"" };
    char *values[] = { (char *)"pc-q35-10.0", (char *)"536870912",
                       (char *)"", (char *)"v" };
    const char *listen = "tcp:10.0.0.2:4444";
    GByteArray *b = g_byte_array_new();
    size_t len = 4 + 4 + 4 + strlen(listen) + 4 + 4;
    Decoded d;

    for (int i = 0; i < 4; i++) {
        len += 8 + strlen(keys[i]) + strlen(values[i]);
    }
    distvm_wire_hello(b, 2, 2, 4, listen, 250, 4, keys, values);
    g_assert_cmpuint(b->len, ==, HDR + len);

    decode_ok(b, &limits, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_HELLO, len, 2, 0);
    g_assert_cmpuint(d.msg.u.hello.node_id, ==, 2);
    g_assert_cmpuint(d.msg.u.hello.nodes, ==, 4);
    g_assert_cmpstr(d.msg.u.hello.listen, ==, listen);
    g_assert_cmpuint(d.msg.u.hello.speed, ==, 250);
    g_assert_cmpuint(d.msg.u.hello.nr_items, ==, 4);
    for (int i = 0; i < 4; i++) {
        g_assert_cmpstr(d.msg.u.hello.keys[i], ==, keys[i]);
        g_assert_cmpstr(d.msg.u.hello.values[i], ==, values[i]);
    }
    g_assert_null(d.msg.u.hello.keys[4]);
    g_assert_null(d.msg.u.hello.values[4]);
    decoded_free(&d);
    g_byte_array_unref(b);
}

static void test_hello_empty(void)
{
    GByteArray *b = g_byte_array_new();
    Decoded d;

    distvm_wire_hello(b, 3, 3, 16, NULL, DISTVM_WIRE_SPEED_ONE, 0, NULL,
                      NULL);
    g_assert_cmpuint(b->len, ==, HDR + 20);
    decode_ok(b, &limits, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_HELLO, 20, 3, 0);
    g_assert_cmpuint(d.msg.u.hello.node_id, ==, 3);
    g_assert_cmpuint(d.msg.u.hello.nodes, ==, 16);
    g_assert_cmpstr(d.msg.u.hello.listen, ==, "");
    g_assert_cmpuint(d.msg.u.hello.nr_items, ==, 0);
    g_assert_nonnull(d.msg.u.hello.keys);
    g_assert_nonnull(d.msg.u.hello.values);
    g_assert_null(d.msg.u.hello.keys[0]);
    g_assert_null(d.msg.u.hello.values[0]);
    decoded_free(&d);
    g_byte_array_unref(b);
}

/* The largest accepted fingerprint and strings */
static void test_hello_at_limits(void)
{
    char **keys = g_new0(char *, DISTVM_WIRE_MAX_ITEMS + 1);
    char **values = g_new0(char *, DISTVM_WIRE_MAX_ITEMS + 1);
    char *listen = long_str(DISTVM_WIRE_MAX_STR);
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (int i = 0; i < DISTVM_WIRE_MAX_ITEMS; i++) {
        keys[i] = g_strdup_printf("key%d", i);
        values[i] = i == 7 ? long_str(DISTVM_WIRE_MAX_STR)
                           : g_strdup_printf("value%d", i * 3);
    }
    distvm_wire_hello(b, 1, 1, DISTVM_WIRE_MAX_NODES, listen,
                      DISTVM_WIRE_SPEED_MAX, DISTVM_WIRE_MAX_ITEMS, keys,
                      values);
    decode_ok(b, &limits, &d);
    g_assert_cmpuint(d.msg.u.hello.nodes, ==, DISTVM_WIRE_MAX_NODES);
    g_assert_cmpuint(d.msg.u.hello.speed, ==, DISTVM_WIRE_SPEED_MAX);
    g_assert_cmpstr(d.msg.u.hello.listen, ==, listen);
    g_assert_cmpuint(d.msg.u.hello.nr_items, ==, DISTVM_WIRE_MAX_ITEMS);
    for (int i = 0; i < DISTVM_WIRE_MAX_ITEMS; i++) {
        g_assert_cmpstr(d.msg.u.hello.keys[i], ==, keys[i]);
        g_assert_cmpstr(d.msg.u.hello.values[i], ==, values[i]);
    }
    g_assert_null(d.msg.u.hello.keys[DISTVM_WIRE_MAX_ITEMS]);
    g_assert_null(d.msg.u.hello.values[DISTVM_WIRE_MAX_ITEMS]);
    decoded_free(&d);

    g_byte_array_unref(b);
    g_strfreev(keys);
    g_strfreev(values);
    g_free(listen);
}

/* A node that joins the running guest asks home for its node id */
static void test_hello_any(void)
{
    GByteArray *b = g_byte_array_new();
    Decoded d;

    distvm_wire_hello(b, 2, DISTVM_WIRE_NODE_ANY, 4, "unix:/n.sock",
                      DISTVM_WIRE_SPEED_ONE, 0, NULL, NULL);
    decode_ok(b, &limits, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_HELLO, 4 + 4 + 4 + 12 + 4 + 4, 2, 0);
    g_assert_cmpuint(d.msg.u.hello.node_id, ==, DISTVM_WIRE_NODE_ANY);
    g_assert_cmpuint(d.msg.u.hello.nodes, ==, 4);
    g_assert_cmpstr(d.msg.u.hello.listen, ==, "unix:/n.sock");
    decoded_free(&d);
    g_byte_array_unref(b);
}

static void test_welcome(void)
{
    char *addrs[DISTVM_WIRE_MAX_NODES] = {
        (char *)"tcp:10.0.0.1:4444", (char *)"", (char *)"unix:/run/n2.sock",
        (char *)"tcp:[fe80::1]:4444",
    };
    uint32_t speeds[DISTVM_WIRE_MAX_NODES];
    GByteArray *b = g_byte_array_new();
    char *big = long_str(DISTVM_WIRE_MAX_STR);
    size_t len = 8;
    Decoded d;

    /* Node 1 is not in the cluster (start-nodes): no address, speed 0 */
    for (int i = 0; i < DISTVM_WIRE_MAX_NODES; i++) {
        speeds[i] = i == 1 ? 0 : i == 2 ? DISTVM_WIRE_SPEED_MAX :
                    i == 3 ? DISTVM_WIRE_SPEED_MIN : 1000 + i;
    }
    for (int i = 0; i < 4; i++) {
        len += 4 + strlen(addrs[i]) + 4;
    }
    distvm_wire_welcome(b, 4, 3, addrs, speeds);
    g_assert_cmpuint(b->len, ==, HDR + len);
    decode_ok(b, &limits, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_WELCOME, len, 0, 0);
    g_assert_cmpuint(d.msg.u.welcome.nodes, ==, 4);
    g_assert_cmpuint(d.msg.u.welcome.node_id, ==, 3);
    for (int i = 0; i < 4; i++) {
        g_assert_cmpstr(d.msg.u.welcome.addrs[i], ==, addrs[i]);
        g_assert_cmpuint(d.msg.u.welcome.speeds[i], ==, speeds[i]);
    }
    g_assert_null(d.msg.u.welcome.addrs[4]);
    decoded_free(&d);

    /* Largest cluster; the home node's WELCOME need not fit lim->nodes */
    for (int i = 4; i < DISTVM_WIRE_MAX_NODES; i++) {
        addrs[i] = i == 15 ? big : (char *)"tcp:h:1";
    }
    distvm_wire_welcome(b, DISTVM_WIRE_MAX_NODES, DISTVM_WIRE_MAX_NODES - 1,
                        addrs, speeds);
    decode_ok(b, &limits, &d);
    g_assert_cmpuint(d.msg.u.welcome.nodes, ==, DISTVM_WIRE_MAX_NODES);
    g_assert_cmpuint(d.msg.u.welcome.node_id, ==, DISTVM_WIRE_MAX_NODES - 1);
    for (int i = 0; i < DISTVM_WIRE_MAX_NODES; i++) {
        g_assert_cmpstr(d.msg.u.welcome.addrs[i], ==, addrs[i]);
        g_assert_cmpuint(d.msg.u.welcome.speeds[i], ==, speeds[i]);
    }
    g_assert_null(d.msg.u.welcome.addrs[DISTVM_WIRE_MAX_NODES]);
    decoded_free(&d);

    g_free(big);
    g_byte_array_unref(b);
}

static void test_refuse(void)
{
    const char *reason = "guest RAM size differs: 512M here, 1G at home";
    GByteArray *b = g_byte_array_new();
    char *big = long_str(DISTVM_WIRE_MAX_STR);
    Decoded d;

    distvm_wire_refuse(b, 1, reason);
    g_assert_cmpuint(b->len, ==, HDR + 4 + strlen(reason));
    decode_ok(b, &limits, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_REFUSE, 4 + strlen(reason), 1, 0);
    g_assert_cmpstr(d.msg.u.reason, ==, reason);
    decoded_free(&d);

    distvm_wire_refuse(b, 0, NULL);
    decode_ok(b, &limits, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_REFUSE, 4, 0, 0);
    g_assert_cmpstr(d.msg.u.reason, ==, "");
    decoded_free(&d);

    distvm_wire_refuse(b, 3, big);
    decode_ok(b, &limits, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_REFUSE, 4 + DISTVM_WIRE_MAX_STR, 3, 0);
    g_assert_cmpstr(d.msg.u.reason, ==, big);
    decoded_free(&d);

    g_free(big);
    g_byte_array_unref(b);
}

static void test_peer_hello(void)
{
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (uint32_t n = 0; n < limits.nodes; n++) {
        distvm_wire_node(b, DISTVM_MSG_PEER_HELLO, n, n);
        g_assert_cmpuint(b->len, ==, HDR + 4);
        decode_ok(b, &limits, &d);
        check_hdr(&d.msg.hdr, DISTVM_MSG_PEER_HELLO, 4, n, 0);
        g_assert_cmpuint(d.msg.u.node_id, ==, n);
        decoded_free(&d);
    }
    g_byte_array_unref(b);
}

/* Unlike PEER_HELLO, the lost node need not be the sender */
static void test_node_lost(void)
{
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (uint32_t src = 0; src < limits.nodes; src++) {
        for (uint32_t n = 0; n < limits.nodes; n++) {
            distvm_wire_node(b, DISTVM_MSG_NODE_LOST, src, n);
            g_assert_cmpuint(b->len, ==, HDR + 4);
            decode_ok(b, &limits, &d);
            check_hdr(&d.msg.hdr, DISTVM_MSG_NODE_LOST, 4, src, 0);
            g_assert_cmpuint(d.msg.u.node_id, ==, n);
            decoded_free(&d);

            /* No RAM layout is needed */
            decode_ok(b, &limits_no_ram, &d);
            g_assert_cmpuint(d.msg.u.node_id, ==, n);
            decoded_free(&d);
        }
    }
    g_byte_array_unref(b);
}

static void test_empty_messages(void)
{
    static const DistvmMsgType types[] = {
        DISTVM_MSG_READY, DISTVM_MSG_START, DISTVM_MSG_BYE,
        DISTVM_MSG_END, DISTVM_MSG_ENDED,
    };
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
        uint32_t src = i % limits.nodes;

        distvm_wire_empty(b, types[i], src, 0xfedcba9876543210ull + i);
        g_assert_cmpuint(b->len, ==, HDR);
        decode_ok(b, &limits, &d);
        check_hdr(&d.msg.hdr, types[i], 0, src, 0xfedcba9876543210ull + i);
        g_assert_null(d.payload);
        decoded_free(&d);

        /* No RAM layout is needed for these */
        decode_ok(b, &limits_no_ram, &d);
        decoded_free(&d);
    }
    g_byte_array_unref(b);
}

static void test_ping_pong(void)
{
    static const uint64_t seqs[] = { 0, 1, 0x0123456789abcdefull, UINT64_MAX };
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (size_t i = 0; i < ARRAY_SIZE(seqs); i++) {
        distvm_wire_empty(b, DISTVM_MSG_PING, 0, seqs[i]);
        g_assert_cmpuint(b->len, ==, HDR + 8);
        decode_ok(b, &limits, &d);
        check_hdr(&d.msg.hdr, DISTVM_MSG_PING, 8, 0, seqs[i]);
        g_assert_cmpuint(d.msg.u.value, ==, seqs[i]);
        decoded_free(&d);

        distvm_wire_empty(b, DISTVM_MSG_PONG, 3, seqs[i]);
        decode_ok(b, &limits_no_ram, &d);
        check_hdr(&d.msg.hdr, DISTVM_MSG_PONG, 8, 3, seqs[i]);
        g_assert_cmpuint(d.msg.u.value, ==, seqs[i]);
        decoded_free(&d);
    }

    /* The value need not equal the sequence number */
    distvm_wire_begin(b, DISTVM_MSG_PONG, 2, 5);
    distvm_wire_put_u64(b, 6);
    distvm_wire_end(b);
    decode_ok(b, &limits, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_PONG, 8, 2, 5);
    g_assert_cmpuint(d.msg.u.value, ==, 6);
    decoded_free(&d);

    g_byte_array_unref(b);
}

static void check_page(DistvmMsgType type, uint32_t src, uint64_t seq,
                       uint32_t block, uint64_t page, uint32_t node,
                       uint32_t flags)
{
    bool has_data = type == DISTVM_MSG_PAGE_DATA &&
                    !(flags & DISTVM_PAGE_ZERO);
    uint32_t len = PAGE_FIXED + (has_data ? DISTVM_PAGE_SIZE : 0);
    uint8_t *data = g_malloc(DISTVM_PAGE_SIZE);
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (int i = 0; i < DISTVM_PAGE_SIZE; i++) {
        data[i] = (i * 13 + block + page) & 0xff;
    }
    distvm_wire_page(b, type, src, seq, block, page, node, flags,
                     has_data ? data : NULL);
    g_assert_cmpuint(b->len, ==, HDR + len);

    decode_ok(b, &limits, &d);
    check_hdr(&d.msg.hdr, type, len, src, seq);
    g_assert_cmpuint(d.msg.u.page.block, ==, block);
    g_assert_cmpuint(d.msg.u.page.page, ==, page);
    g_assert_cmpuint(d.msg.u.page.node, ==, node);
    g_assert_cmpuint(d.msg.u.page.flags, ==, flags);
    if (has_data) {
        /* points into the payload, just after the fixed part */
        g_assert(d.msg.u.page.data == d.payload + PAGE_FIXED);
        g_assert(memcmp(d.msg.u.page.data, data, DISTVM_PAGE_SIZE) == 0);
    } else {
        g_assert_null(d.msg.u.page.data);
    }
    decoded_free(&d);

    g_free(data);
    g_byte_array_unref(b);
}

static void test_page_messages(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(page_types); i++) {
        DistvmMsgType t = page_types[i];

        for (uint32_t blk = 0; blk < limits.nr_blocks; blk++) {
            uint64_t last = block_pages[blk] - 1;

            /* PAGE_REQ is sent by the requester itself */
            check_page(t, 1, 100 + i, blk, 0, 1, 0);
            check_page(t, 2, UINT64_MAX, blk, last, 2, DISTVM_PAGE_WRITE);
            check_page(t, 3, 0, blk, last / 2, 3,
                       DISTVM_PAGE_FLAGS_ALL &
                       ~(DISTVM_PAGE_RUN | DISTVM_PAGE_FINAL));
        }
        check_page(t, 0, 1, 2, 4097, 0,
                   DISTVM_PAGE_WRITE | DISTVM_PAGE_HAS_COPY);
        check_page(t, 3, 2, 0, 9, 3, DISTVM_PAGE_ZERO);
        check_page(t, 0, 3, 2, 100, 0, DISTVM_PAGE_DROP | DISTVM_PAGE_WRITE);
    }

    /* The requester may differ from the sender except for PAGE_REQ */
    check_page(DISTVM_MSG_PAGE_FWD, 0, 4, 0, 1, 3, DISTVM_PAGE_WRITE);
    check_page(DISTVM_MSG_PAGE_DATA, 1, 5, 1, 0, 2, DISTVM_PAGE_WRITE);
    check_page(DISTVM_MSG_PAGE_DATA, 1, 6, 2, 5, 0, DISTVM_PAGE_ZERO);
    check_page(DISTVM_MSG_PAGE_GRANT, 0, 7, 2, 5, 2, DISTVM_PAGE_WRITE);

    /* A run: given by an exclusive PAGE_FWD, of exclusive zero pages */
    check_page(DISTVM_MSG_PAGE_FWD, 1, 8, 2, 2, 0,
               DISTVM_PAGE_WRITE | DISTVM_PAGE_RUN);
    check_page(DISTVM_MSG_PAGE_DATA, 1, 9, 2, 3, 0,
               DISTVM_PAGE_WRITE | DISTVM_PAGE_ZERO | DISTVM_PAGE_RUN);
    /* A shared copy that needs no PAGE_DONE */
    check_page(DISTVM_MSG_PAGE_DATA, 1, 10, 2, 3, 0, DISTVM_PAGE_FINAL);
    check_page(DISTVM_MSG_PAGE_DATA, 1, 11, 2, 4, 0,
               DISTVM_PAGE_FINAL | DISTVM_PAGE_ZERO);
    /* A grant that needs no PAGE_DONE: an upgrade, or a page held already */
    check_page(DISTVM_MSG_PAGE_GRANT, 0, 12, 2, 5, 2,
               DISTVM_PAGE_WRITE | DISTVM_PAGE_FINAL);
    check_page(DISTVM_MSG_PAGE_GRANT, 0, 13, 2, 6, 2, DISTVM_PAGE_FINAL);
}

static bool run_flag_ok(DistvmMsgType t, uint32_t flags)
{
    return !(flags & DISTVM_PAGE_RUN) ||
           (t == DISTVM_MSG_PAGE_FWD && (flags & DISTVM_PAGE_WRITE)) ||
           (t == DISTVM_MSG_PAGE_DATA && (flags & DISTVM_PAGE_WRITE) &&
            (flags & DISTVM_PAGE_ZERO));
}

/* A page message of type @t with @flags, whatever they say */
static void page_with_flags(GByteArray *b, DistvmMsgType t, uint32_t flags)
{
    static const uint8_t page[DISTVM_PAGE_SIZE];
    bool data = t == DISTVM_MSG_PAGE_DATA && !(flags & DISTVM_PAGE_ZERO);

    distvm_wire_page(b, t, 2, 0, 2, 3, 2, data ? 0 : DISTVM_PAGE_ZERO,
                     data ? page : NULL);
    set_u32(b, HDR + 4, flags);
}

/* Nothing else is part of a run */
static void test_page_run_flag(void)
{
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(page_types); i++) {
        for (uint32_t flags = 0; flags <= DISTVM_PAGE_FLAGS_ALL; flags++) {
            if (!run_flag_ok(page_types[i], flags)) {
                page_with_flags(b, page_types[i], flags);
                expect_decode_error(b, &limits, "part of a run");
            }
        }
    }
    g_byte_array_unref(b);
}

/* Only a shared copy or a grant needs no PAGE_DONE */
static void test_page_final_flag(void)
{
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(page_types); i++) {
        for (uint32_t flags = 0; flags <= DISTVM_PAGE_FLAGS_ALL; flags++) {
            DistvmMsgType t = page_types[i];

            if ((flags & DISTVM_PAGE_FINAL) && run_flag_ok(t, flags) &&
                t != DISTVM_MSG_PAGE_GRANT &&
                (t != DISTVM_MSG_PAGE_DATA ||
                 (flags & (DISTVM_PAGE_WRITE | DISTVM_PAGE_RUN)))) {
                page_with_flags(b, t, flags);
                expect_decode_error(b, &limits, "needs no PAGE_DONE");
            }
        }
    }
    g_byte_array_unref(b);
}

static bool is_vcpu_type(uint32_t type)
{
    return (type >= DISTVM_MSG_VCPU_MOVE && type <= DISTVM_MSG_VCPU_IPI) ||
           type == DISTVM_MSG_VCPU_APIC || type == DISTVM_MSG_VCPU_NODES ||
           type == DISTVM_MSG_VCPU_WHERE || type == DISTVM_MSG_VCPU_FLUSH ||
           type == DISTVM_MSG_VCPU_FLUSHED;
}

static bool is_io_type(uint32_t type)
{
    return type == DISTVM_MSG_IO_REQ || type == DISTVM_MSG_IO_REPLY;
}

/*
 * Only VCPU_STATE carries @state_len bytes of state; the other encoders
 * are given them too, and must leave them out.
 */
static void check_vcpu(const DistvmWireLimits *lim, DistvmMsgType type,
                       uint32_t src, uint32_t cpu, uint32_t from, uint32_t to,
                       uint64_t value, uint32_t state_len)
{
    bool has_state = type == DISTVM_MSG_VCPU_STATE;
    uint32_t len = VCPU_FIXED + (has_state ? state_len : 0);
    uint8_t *state = g_malloc(MAX(state_len, 1));
    GByteArray *b = g_byte_array_new();
    Decoded d;

    g_assert_cmpuint(state_len, >, 0);
    for (uint32_t i = 0; i < state_len; i++) {
        state[i] = (i * 11 + cpu) & 0xff;
    }
    distvm_wire_vcpu(b, type, src, cpu, from, to, value, state, state_len);
    g_assert_cmpuint(b->len, ==, HDR + len);

    /* the fixed part: cpu, from, to, reason (a command: 0), value */
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + HDR), ==, cpu);
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + HDR + 4), ==, from);
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + HDR + 8), ==, to);
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + HDR + 12), ==, 0);
    g_assert_cmphex(ldq_le_p(b->data + HDR + 16), ==, value);

    decode_ok(b, lim, &d);
    check_hdr(&d.msg.hdr, type, len, src, 0);
    g_assert_cmpuint(d.msg.u.vcpu.cpu, ==, cpu);
    g_assert_cmpuint(d.msg.u.vcpu.from, ==, from);
    g_assert_cmpuint(d.msg.u.vcpu.to, ==, to);
    g_assert_cmphex(d.msg.u.vcpu.value, ==, value);
    if (has_state) {
        /* points into the payload, just after the fixed part */
        g_assert(d.msg.u.vcpu.data == d.payload + VCPU_FIXED);
        g_assert_cmpuint(d.msg.u.vcpu.len, ==, state_len);
        g_assert(memcmp(d.msg.u.vcpu.data, state, state_len) == 0);
    } else {
        g_assert_null(d.msg.u.vcpu.data);
        g_assert_cmpuint(d.msg.u.vcpu.len, ==, 0);
    }
    decoded_free(&d);

    g_free(state);
    g_byte_array_unref(b);
}

static void test_vcpu_messages(void)
{
    static const uint64_t values[] = {
        0, 1, 1763776000123456789ull, IPI(3, 0, 0), 1ull << 17, UINT64_MAX,
    };

    for (size_t i = 0; i < ARRAY_SIZE(vcpu_types); i++) {
        DistvmMsgType t = vcpu_types[i];
        uint64_t value = t == DISTVM_MSG_VCPU_IPI ? IPI(0, 0x30, 0) :
                         t == DISTVM_MSG_VCPU_APIC ? APIC(5, 0x20, 0xf) :
                         t == DISTVM_MSG_VCPU_NODES ? 0x3 :
                         0x0123456789abcdefull;

        /* every vCPU below the limit */
        for (uint32_t cpu = 0; cpu < limits.nr_vcpus; cpu++) {
            check_vcpu(&limits, t, cpu % 4, cpu, (cpu + 1) % 4, (cpu + 2) % 4,
                       value, cpu + 1);
        }
        /*
         * Any nodes of the cluster, the sender among them, and the same
         * node twice; no RAM layout is needed
         */
        for (uint32_t src = 0; src < limits.nodes; src++) {
            for (uint32_t from = 0; from < limits.nodes; from++) {
                for (uint32_t to = 0; to < limits.nodes; to++) {
                    check_vcpu(&limits_no_ram, t, src, 5, from, to, value,
                               3);
                }
            }
        }
        check_vcpu(&limits_one_vcpu, t, 1, 0, 1, 0, value, 1);
        check_vcpu(&limits_most, t, DISTVM_WIRE_MAX_NODES - 1, UINT32_MAX - 1,
                   DISTVM_WIRE_MAX_NODES - 1, 0, value, 2);
        /* the largest state that fits in a message */
        check_vcpu(&limits, t, 0, 7, 0, 1, value,
                   DISTVM_WIRE_MAX_PAYLOAD - VCPU_FIXED);
    }

    /* Only the values of VCPU_IPI, VCPU_APIC and VCPU_NODES are checked */
    for (size_t i = 0; i < ARRAY_SIZE(values); i++) {
        check_vcpu(&limits, DISTVM_MSG_VCPU_MOVE, 1, 2, 1, 3, values[i], 1);
        check_vcpu(&limits, DISTVM_MSG_VCPU_STATE, 3, 4, 3, 2, values[i], 9);
        check_vcpu(&limits, DISTVM_MSG_VCPU_MOVED, 2, 6, 3, 2, values[i], 1);
    }
}

/*
 * Every delivery mode, vector and trigger mode an IPI may have, and both
 * states of the A20 line
 */
static void test_vcpu_ipi(void)
{
    static const uint8_t modes[] = { 0, 1, 2, 4, 5, 6 };

    for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
        for (uint32_t vector = 0; vector < 256; vector++) {
            for (uint32_t trigger = 0; trigger < 2; trigger++) {
                check_vcpu(&limits, DISTVM_MSG_VCPU_IPI, vector % 4,
                           vector % 8, (vector + 1) % 4, vector / 64,
                           IPI(modes[i], vector, trigger), 1);
            }
        }
    }
    for (uint32_t on = 0; on < 2; on++) {
        check_vcpu(&limits, DISTVM_MSG_VCPU_IPI, 0, 2, 0, 1,
                   IPI(DISTVM_DM_A20, on, 0), 1);
    }
}

/*
 * Every APIC ID, logical destination and destination format (the wire
 * does not tell flat 0xf and cluster 0x0 from the reserved formats)
 */
static void test_vcpu_apic(void)
{
    for (uint32_t format = 0; format < 16; format++) {
        for (uint32_t n = 0; n < 256; n++) {
            check_vcpu(&limits, DISTVM_MSG_VCPU_APIC, n % 4, n % 8,
                       (n + 1) % 4, n / 64, APIC(n, 1u << (n % 8), format),
                       1);
            check_vcpu(&limits_no_ram, DISTVM_MSG_VCPU_APIC, format % 4,
                       format % 8, format % 4, (n + 3) % 4,
                       APIC(format * 16 + 1, n, format), 1);
        }
    }

    /* Any single bit below 23, and all of them */
    for (int bit = 0; bit < DISTVM_APIC_VALUE_BITS; bit++) {
        check_vcpu(&limits, DISTVM_MSG_VCPU_APIC, 1, 3, 1, 2, 1ull << bit, 1);
    }
    check_vcpu(&limits, DISTVM_MSG_VCPU_APIC, 1, 3, 1, 2, APIC_MAX, 1);
    g_assert_cmphex(APIC_MAX, ==, (1ull << DISTVM_APIC_VALUE_BITS) - 1);

    /* An APIC ID that would be a reserved IPI delivery mode is fine */
    for (uint32_t id = 0; id < 256; id++) {
        check_vcpu(&limits, DISTVM_MSG_VCPU_APIC, 0, 0, 0, 1,
                   APIC(id, 0, 0), 1);
    }
}

/*
 * VCPU_NODES: the nodes a vCPU may run on, a bit each, from and to the
 * sending node; any non-empty set of the cluster's nodes
 */
static void test_vcpu_nodes(void)
{
    /* every set of four nodes, from every node, for every vCPU */
    for (uint64_t mask = 1; mask < 1ull << limits.nodes; mask++) {
        for (uint32_t src = 0; src < limits.nodes; src++) {
            check_vcpu(&limits, DISTVM_MSG_VCPU_NODES, src,
                       (mask + src) % limits.nr_vcpus, src, src, mask, 1);
        }
        /* no RAM layout is needed, and from and to are any nodes */
        check_vcpu(&limits_no_ram, DISTVM_MSG_VCPU_NODES, mask % 4, 7,
                   (mask + 1) % 4, (mask + 2) % 4, mask, 1);
    }
    /* every vCPU, all nodes */
    for (uint32_t cpu = 0; cpu < limits.nr_vcpus; cpu++) {
        check_vcpu(&limits, DISTVM_MSG_VCPU_NODES, 2, cpu, 2, 2, 0xf, 1);
    }

    /* the limits' nodes, not the wire's: two nodes */
    for (uint64_t mask = 1; mask < 4; mask++) {
        check_vcpu(&limits_one_vcpu, DISTVM_MSG_VCPU_NODES, 1, 0, 1, 1, mask,
                   1);
    }

    /* the most nodes: each alone, the last, and all of them */
    for (int bit = 0; bit < DISTVM_WIRE_MAX_NODES; bit++) {
        check_vcpu(&limits_most, DISTVM_MSG_VCPU_NODES, bit, UINT32_MAX - 1,
                   bit, bit, 1ull << bit, 1);
    }
    check_vcpu(&limits_most, DISTVM_MSG_VCPU_NODES,
               DISTVM_WIRE_MAX_NODES - 1, 0, DISTVM_WIRE_MAX_NODES - 1,
               DISTVM_WIRE_MAX_NODES - 1,
               (1ull << DISTVM_WIRE_MAX_NODES) - 1, 1);
    check_vcpu(&limits_most, DISTVM_MSG_VCPU_NODES, 0, 0, 0, 0, 0xa5a5, 1);

    /* it is a vCPU message: distvm_wire_msg_vcpu() returns its cpu */
    {
        GByteArray *b = g_byte_array_new();
        uint32_t cpu = UINT32_MAX;
        Decoded d;

        distvm_wire_vcpu(b, DISTVM_MSG_VCPU_NODES, 3, 6, 3, 3, 0x9, NULL, 0);
        decode_ok(b, &limits, &d);
        g_assert_cmpuint(d.msg.u.vcpu.reason, ==, 0);
        g_assert_true(distvm_wire_msg_vcpu(&d.msg, &cpu));
        g_assert_cmpuint(cpu, ==, 6);
        decoded_free(&d);
        g_byte_array_unref(b);
    }
}

/*
 * A PCI_CONFIG write of @len bytes of @val at @addr of @path (NULL sends
 * an empty path): its layout, and its decoding under @lim
 */
static void check_pci_config(const DistvmWireLimits *lim, uint32_t src,
                             const char *path, uint32_t addr, uint32_t val,
                             uint32_t len)
{
    size_t plen = path ? strlen(path) : 0;
    uint32_t length = PCI_FIXED + plen;
    GByteArray *b = g_byte_array_new();
    const uint8_t *p;
    Decoded d;

    distvm_wire_pci_config(b, src, addr + 1, path, addr, val, len);
    g_assert_cmpuint(b->len, ==, HDR + length);

    /* str path (length, bytes), addr, val, len */
    p = b->data + HDR;
    g_assert_cmpuint((uint32_t)ldl_le_p(p), ==, plen);
    g_assert(plen == 0 || memcmp(p + 4, path, plen) == 0);
    g_assert_cmpuint((uint32_t)ldl_le_p(p + 4 + plen), ==, addr);
    g_assert_cmphex((uint32_t)ldl_le_p(p + 8 + plen), ==, val);
    g_assert_cmpuint((uint32_t)ldl_le_p(p + 12 + plen), ==, len);

    decode_ok(b, lim, &d);
    /* the seq numbers home's configuration writes */
    check_hdr(&d.msg.hdr, DISTVM_MSG_PCI_CONFIG, length, src, addr + 1);
    g_assert_cmpuint(d.msg.u.pci.addr, ==, addr);
    g_assert_cmphex(d.msg.u.pci.val, ==, val);
    g_assert_cmpuint(d.msg.u.pci.len, ==, len);
    /* the path is a copy, not a pointer into the payload */
    g_free(d.payload);
    d.payload = NULL;
    g_assert_nonnull(d.msg.u.pci.path);
    g_assert_cmpstr(d.msg.u.pci.path, ==, path ? path : "");
    decoded_free(&d);

    g_byte_array_unref(b);
}

static void test_pci_config(void)
{
    static const uint32_t lens[] = { 1, 2, 4 };
    const char *q35 = "/machine/q35/mch";
    const char *i440fx = "/machine/unattached/device[2]";
    char *big = long_str(DISTVM_WIRE_MAX_STR);
    char *almost = long_str(DISTVM_WIRE_MAX_STR - 1);

    for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
        uint32_t len = lens[i];
        uint32_t last = DISTVM_PCI_CONFIG_SPACE - len;
        uint32_t max = len == 4 ? UINT32_MAX : (1u << (len * 8)) - 1;

        /* the first and the last offsets at which @len bytes fit */
        check_pci_config(&limits, 0, q35, 0, 0, len);
        check_pci_config(&limits, 0, q35, 0, max, len);
        check_pci_config(&limits, 0, i440fx, last, max, len);
        check_pci_config(&limits, 0, i440fx, last, 0x5a5a5a5a & max, len);

        /* the longest path, an empty one and none at all */
        check_pci_config(&limits, 0, big, last, 0x12345678 & max, len);
        check_pci_config(&limits, 0, almost, 0, 1, len);
        check_pci_config(&limits, 0, "", last, max, len);
        check_pci_config(&limits, 0, NULL, 0, 0, len);

        /* no RAM layout and no vCPUs are needed */
        check_pci_config(&limits_no_ram, 0, q35, 0x90, 0x30 & max, len);
        check_pci_config(&limits_nodes_only, 0, big, last, max, len);

        /*
         * The decoder takes it from any node of the cluster; that only
         * home sends it is for the receiver to check
         */
        for (uint32_t src = 0; src < limits.nodes; src++) {
            check_pci_config(&limits, src, q35, 0x59, 0x11 & max, len);
        }

        /* every offset at which it fits */
        for (uint32_t addr = 0; addr <= last; addr++) {
            check_pci_config(&limits, 0, "/machine/q35/mch", addr,
                             addr * 0x01010101u & max, len);
        }
    }

    /* the last valid offsets, spelled out */
    check_pci_config(&limits, 0, q35, 4095, 0xff, 1);
    check_pci_config(&limits, 0, q35, 4094, 0xffff, 2);
    check_pci_config(&limits, 0, q35, 4092, 0xffffffff, 4);

    g_free(almost);
    g_free(big);
}

/* An IO_REQ or IO_REPLY @io from @src: its layout, and its decoding */
static void check_io(const DistvmWireLimits *lim, DistvmMsgType type,
                     uint32_t src, const DistvmMsgIo *io)
{
    GByteArray *b = g_byte_array_new();
    const uint8_t *p;
    Decoded d;

    size_t len = IO_FIXED + (io->flags & DISTVM_IO_REGS ?
                             DISTVM_IO_NR_REGS * 8 : 0);

    distvm_wire_io(b, type, src, io);
    g_assert_cmpuint(b->len, ==, HDR + len);

    /* cpu, space, size, flags, addr, data */
    p = b->data + HDR;
    g_assert_cmpuint((uint32_t)ldl_le_p(p), ==, io->cpu);
    g_assert_cmpuint((uint32_t)ldl_le_p(p + 4), ==, io->space);
    g_assert_cmpuint((uint32_t)ldl_le_p(p + 8), ==, io->size);
    g_assert_cmphex((uint32_t)ldl_le_p(p + 12), ==, io->flags);
    g_assert_cmphex(ldq_le_p(p + 16), ==, io->addr);
    g_assert_cmphex(ldq_le_p(p + 24), ==, io->data);
    for (int i = 0; i < (len - IO_FIXED) / 8; i++) {
        g_assert_cmphex(ldq_le_p(p + IO_FIXED + i * 8), ==, io->regs[i]);
    }

    decode_ok(b, lim, &d);
    check_hdr(&d.msg.hdr, type, len, src, 0);
    g_assert_cmpuint(d.msg.u.io.cpu, ==, io->cpu);
    g_assert_cmpuint(d.msg.u.io.space, ==, io->space);
    g_assert_cmpuint(d.msg.u.io.size, ==, io->size);
    g_assert_cmphex(d.msg.u.io.flags, ==, io->flags);
    g_assert_cmphex(d.msg.u.io.addr, ==, io->addr);
    g_assert_cmphex(d.msg.u.io.data, ==, io->data);
    for (int i = 0; i < (len - IO_FIXED) / 8; i++) {
        g_assert_cmphex(d.msg.u.io.regs[i], ==, io->regs[i]);
    }
    decoded_free(&d);

    g_byte_array_unref(b);
}

/* A port access with the vCPU's registers (VMware's I/O port) */
static void test_io_regs(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(io_types); i++) {
        DistvmMsgType t = io_types[i];
        DistvmMsgIo io = {
            .cpu = 3, .space = DISTVM_IO_PORT, .size = 4,
            .flags = DISTVM_IO_REGS, .addr = 0x5658,
            .data = t == DISTVM_MSG_IO_REPLY ? 6 : 0,
            .regs = { 0x564d5868, 0x0a, 0x5658, 0xffffffff, 0x7000,
                      UINT64_MAX, 1ull << 63, 0 },
        };
        GByteArray *b = g_byte_array_new();

        check_io(&limits, t, t == DISTVM_MSG_IO_REPLY ? 0 : 2, &io);
        io.flags |= t == DISTVM_MSG_IO_REPLY ? DISTVM_IO_STOP
                                             : DISTVM_IO_WRITE;
        check_io(&limits_no_ram, t, 1, &io);

        /* only with a port access */
        io.space = DISTVM_IO_MEMORY;
        io.addr = 0x5658;
        distvm_wire_io(b, t, 1, &io);
        expect_decode_error(b, &limits, "with flags");
        /* the registers, all of them, only with the flag */
        io.space = DISTVM_IO_PORT;
        distvm_wire_io(b, t, 1, &io);
        g_byte_array_set_size(b, b->len - 8);
        set_u32(b, 8, b->len - HDR);
        expect_decode_error(b, &limits, "");
        io.flags &= ~DISTVM_IO_REGS;
        distvm_wire_io(b, t, 1, &io);
        g_byte_array_append(b, (const uint8_t *)io.regs, 16);
        set_u32(b, 8, b->len - HDR);
        expect_decode_error(b, &limits, "trailing garbage");
        g_byte_array_unref(b);
    }
}

static void test_io_messages(void)
{
    static const uint32_t sizes[] = { 1, 2, 4 };
    static const uint64_t addrs[] = { 0, 1, 0x70, 0x3f8, 0xcf8, 0xcfc,
                                      0xfffc, 0xfffe, 0xffff };

    for (size_t i = 0; i < ARRAY_SIZE(io_types); i++) {
        DistvmMsgType t = io_types[i];
        /* a read and a write; for a reply, MEMTX_OK and MEMTX_ERROR */
        uint32_t flags[] = { 0, 1 };

        for (size_t j = 0; j < ARRAY_SIZE(sizes); j++) {
            uint32_t size = sizes[j];
            uint64_t max = IO_MAX(size);
            uint64_t datas[] = { 0, 1, 0x5a5a5a5a & max, max - 1, max };

            for (size_t k = 0; k < ARRAY_SIZE(addrs); k++) {
                for (size_t l = 0; l < ARRAY_SIZE(datas); l++) {
                    for (size_t f = 0; f < ARRAY_SIZE(flags); f++) {
                        check_io(&limits, t, (k + l) % 4, &(DistvmMsgIo) {
                            .cpu = l, .space = DISTVM_IO_PORT, .size = size,
                            .flags = flags[f], .addr = addrs[k],
                            .data = datas[l],
                        });
                    }
                }
            }

            /* every port */
            for (uint64_t addr = 0; addr <= 0xffff; addr++) {
                check_io(&limits, t, 0, &(DistvmMsgIo) {
                    .cpu = addr % 8, .space = DISTVM_IO_PORT, .size = size,
                    .flags = addr & 1, .addr = addr,
                    .data = (addr * 0x01000193u) & max,
                });
            }

            /* every vCPU below the limit, from any node */
            for (uint32_t cpu = 0; cpu < limits.nr_vcpus; cpu++) {
                for (uint32_t src = 0; src < limits.nodes; src++) {
                    check_io(&limits, t, src, &(DistvmMsgIo) {
                        .cpu = cpu, .space = DISTVM_IO_PORT, .size = size,
                        .flags = cpu & 1, .addr = 0x60 + cpu,
                        .data = max,
                    });
                }
            }

            /* no RAM layout is needed; the limit is on the index itself */
            check_io(&limits_no_ram, t, 1, &(DistvmMsgIo) {
                .cpu = 7, .space = DISTVM_IO_PORT, .size = size,
                .flags = DISTVM_IO_WRITE, .addr = 0xffff, .data = max,
            });
            check_io(&limits_one_vcpu, t, 1, &(DistvmMsgIo) {
                .cpu = 0, .space = DISTVM_IO_PORT, .size = size,
                .flags = 0, .addr = 0, .data = max,
            });
            check_io(&limits_most, t, DISTVM_WIRE_MAX_NODES - 1,
                     &(DistvmMsgIo) {
                .cpu = UINT32_MAX - 1, .space = DISTVM_IO_PORT,
                .size = size, .flags = DISTVM_IO_WRITE, .addr = 0xffff,
                .data = max,
            });
        }
    }

    /* A reply's flags are a MemTxResult: any byte */
    for (uint32_t flags = 0; flags <= 0xff; flags++) {
        for (size_t j = 0; j < ARRAY_SIZE(sizes); j++) {
            check_io(&limits, DISTVM_MSG_IO_REPLY, 0, &(DistvmMsgIo) {
                .cpu = flags % 8, .space = DISTVM_IO_PORT,
                .size = sizes[j], .flags = flags, .addr = flags * 0x101,
                .data = IO_MAX(sizes[j]),
            });
        }
    }
}

/* A RUN_STATE @run from @src: its layout, and its decoding under @lim */
static void check_run_state(const DistvmWireLimits *lim, uint32_t src,
                            const DistvmMsgRunState *run)
{
    GByteArray *b = g_byte_array_new();
    const uint8_t *p;
    Decoded d;

    distvm_wire_run_state(b, src, run);
    g_assert_cmpuint(b->len, ==, HDR + RUN_FIXED);

    /* action, reserved, virtual_ns, guest_ticks, host_ns, host_ticks, id */
    p = b->data + HDR;
    g_assert_cmpuint((uint32_t)ldl_le_p(p), ==, run->action);
    g_assert_cmpuint((uint32_t)ldl_le_p(p + 4), ==, 0);
    g_assert_cmphex(ldq_le_p(p + 8), ==, run->virtual_ns);
    g_assert_cmphex(ldq_le_p(p + 16), ==, run->guest_ticks);
    g_assert_cmphex(ldq_le_p(p + 24), ==, run->host_ns);
    g_assert_cmphex(ldq_le_p(p + 32), ==, run->host_ticks);
    g_assert_cmphex(ldq_le_p(p + 40), ==, run->host_id);

    decode_ok(b, lim, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_RUN_STATE, RUN_FIXED, src, 0);
    g_assert_cmpuint(d.msg.u.run.action, ==, run->action);
    g_assert_cmphex(d.msg.u.run.virtual_ns, ==, run->virtual_ns);
    g_assert_cmphex(d.msg.u.run.guest_ticks, ==, run->guest_ticks);
    g_assert_cmphex(d.msg.u.run.host_ns, ==, run->host_ns);
    g_assert_cmphex(d.msg.u.run.host_ticks, ==, run->host_ticks);
    g_assert_cmphex(d.msg.u.run.host_id, ==, run->host_id);
    decoded_free(&d);

    g_byte_array_unref(b);
}

static void test_run_state(void)
{
    static const uint64_t clocks[] = {
        0, 1, 1000000000, 1763776000123456789ull, INT64_MAX,
        (uint64_t)INT64_MAX + 1, UINT64_MAX - 1, UINT64_MAX,
    };
    const size_t n = ARRAY_SIZE(clocks);

    for (uint32_t action = 0; action < DISTVM_RUN__MAX; action++) {
        /* a 2.5 GHz TSC, a day after the host booted */
        DistvmMsgRunState run = {
            .action = action, .virtual_ns = 5000000000ull,
            .guest_ticks = 12500000000ull, .host_ns = 86400123456789ull,
            .host_ticks = 216000308641972ull,
            .host_id = 0x5d41402abc4b2a76ull,
        };

        /*
         * The decoder takes it from any node of the cluster; that only
         * home sends it is for the receiver to check
         */
        for (uint32_t src = 0; src < limits.nodes; src++) {
            check_run_state(&limits, src, &run);
        }

        /* no RAM layout and no vCPUs are needed */
        check_run_state(&limits_no_ram, 3, &run);
        check_run_state(&limits_nodes_only, 1, &run);
        check_run_state(&limits_most, DISTVM_WIRE_MAX_NODES - 1, &run);

        /* The clocks are not interpreted: any values, in any order */
        for (size_t i = 0; i < n; i++) {
            check_run_state(&limits, 0, &(DistvmMsgRunState) {
                .action = action, .virtual_ns = clocks[i],
                .guest_ticks = clocks[(i + 1) % n],
                .host_ns = clocks[(i + 2) % n],
                .host_ticks = clocks[(i + 3) % n],
                .host_id = clocks[(i + 5) % n],
            });
            check_run_state(&limits, 0, &(DistvmMsgRunState) {
                .action = action, .virtual_ns = clocks[i],
                .guest_ticks = clocks[i], .host_ns = clocks[i],
                .host_ticks = clocks[i], .host_id = clocks[i],
            });
        }
        /* each field in its place */
        for (int bit = 0; bit < 64; bit++) {
            check_run_state(&limits, 0, &(DistvmMsgRunState) {
                .action = action, .virtual_ns = 1ull << bit,
                .guest_ticks = ~(1ull << bit),
                .host_ns = 1ull << (63 - bit),
                .host_ticks = 0x0101010101010101ull * (bit + 1),
                .host_id = (uint64_t)bit << 56 | bit,
            });
        }
    }
}

/* A PIC_OUTPUT of @level from @src: its layout, and its decoding */
static void check_pic_output(const DistvmWireLimits *lim, uint32_t src,
                             uint32_t level)
{
    GByteArray *b = g_byte_array_new();
    Decoded d;

    distvm_wire_pic_output(b, src, level);
    g_assert_cmpuint(b->len, ==, HDR + PIC_FIXED);
    g_assert_cmpuint(lduw_le_p(b->data + OFF_TYPE), ==,
                     DISTVM_MSG_PIC_OUTPUT);
    g_assert_cmphex(ldq_le_p(b->data + OFF_SEQ), ==, 0);
    /* level */
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + HDR), ==, level);

    decode_ok(b, lim, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_PIC_OUTPUT, PIC_FIXED, src, 0);
    g_assert_cmpuint(d.msg.u.level, ==, level);
    decoded_free(&d);

    g_byte_array_unref(b);
}

static void test_pic_output(void)
{
    static const DistvmWireLimits one_node = {
        .nodes = 1,
    };
    GByteArray *b = g_byte_array_new();

    for (uint32_t level = 0; level <= 1; level++) {
        /*
         * The decoder takes it from any node of the cluster; that only
         * home sends it is for the receiver to check
         */
        for (uint32_t src = 0; src < limits.nodes; src++) {
            check_pic_output(&limits, src, level);
        }

        /* no RAM layout and no vCPUs are needed */
        check_pic_output(&limits_no_ram, 3, level);
        check_pic_output(&limits_nodes_only, 1, level);
        check_pic_output(&one_node, 0, level);
        check_pic_output(&limits_most, DISTVM_WIRE_MAX_NODES - 1, level);

        /* the layout, by hand; any sequence number is passed through */
        for (int bit = 0; bit < 64; bit += 21) {
            Decoded d;

            distvm_wire_begin(b, DISTVM_MSG_PIC_OUTPUT, 2, 1ull << bit);
            distvm_wire_put_u32(b, level);
            distvm_wire_end(b);
            decode_ok(b, &limits, &d);
            check_hdr(&d.msg.hdr, DISTVM_MSG_PIC_OUTPUT, PIC_FIXED, 2,
                      1ull << bit);
            g_assert_cmpuint(d.msg.u.level, ==, level);
            decoded_free(&d);
        }
    }

    /* distvm_wire_pic_output empties the buffer first */
    distvm_wire_empty(b, DISTVM_MSG_READY, 1, 2);
    distvm_wire_pic_output(b, 0, 1);
    g_assert_cmpuint(b->len, ==, HDR + PIC_FIXED);
    g_byte_array_unref(b);
}

/*
 * DEVICE_HOME (wire version 30): a u32, the index of a device in
 * device-nodes, any (the receiver knows how many there are), from any
 * node (the receiver checks it is home); with nothing missing or after it
 */
static void test_device_home(void)
{
    static const uint32_t devices[] = { 0, 1, 7, 0x80000000u, UINT32_MAX };
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (size_t i = 0; i < ARRAY_SIZE(devices); i++) {
        for (uint32_t src = 0; src < limits.nodes; src++) {
            distvm_wire_device_home(b, src, devices[i]);
            g_assert_cmpuint(b->len, ==, HDR + DEVICE_HOME_FIXED);
            g_assert_cmpuint(lduw_le_p(b->data + OFF_TYPE), ==,
                             DISTVM_MSG_DEVICE_HOME);
            g_assert_cmpuint((uint32_t)ldl_le_p(b->data + HDR), ==, devices[i]);
            decode_ok(b, &limits, &d);
            check_hdr(&d.msg.hdr, DISTVM_MSG_DEVICE_HOME, DEVICE_HOME_FIXED,
                      src, 0);
            g_assert_cmpuint(d.msg.u.device, ==, devices[i]);
            decoded_free(&d);
        }
        /* no RAM layout and no vCPUs are needed */
        distvm_wire_device_home(b, 1, devices[i]);
        decode_ok(b, &limits_nodes_only, &d);
        g_assert_cmpuint(d.msg.u.device, ==, devices[i]);
        decoded_free(&d);
    }
    /* a byte short, or one more */
    distvm_wire_begin(b, DISTVM_MSG_DEVICE_HOME, 0, 0);
    g_byte_array_append(b, (const uint8_t *)"\1\0\0", 3);
    distvm_wire_end(b);
    expect_decode_error(b, &limits, "DEVICE_HOME message is truncated");
    distvm_wire_begin(b, DISTVM_MSG_DEVICE_HOME, 0, 0);
    distvm_wire_put_u32(b, 1);
    g_byte_array_append(b, (const uint8_t *)"\0", 1);
    distvm_wire_end(b);
    expect_decode_error(b, &limits, "DEVICE_HOME message has 1 bytes of "
                        "trailing garbage");
    g_byte_array_unref(b);
}

/*
 * DEVICE_AWAY (wire version 31): a device's index in device-nodes, any,
 * and a node below the limit but home, then its state, at least a byte;
 * a configuration generation in its seq
 */
static void test_device_away(void)
{
    static const uint8_t state[] = { 'V', 'M', 0, 1, 0xff };
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (uint32_t len = 1; len <= sizeof(state); len += sizeof(state) - 1) {
        for (uint32_t node = 1; node < limits.nodes; node++) {
            distvm_wire_device_away(b, 0, 7 + node, 3, node, state, len);
            g_assert_cmpuint(b->len, ==, HDR + DEVICE_AWAY_FIXED + len);
            g_assert_cmpuint((uint32_t)ldl_le_p(b->data + HDR), ==, 3);
            g_assert_cmpuint((uint32_t)ldl_le_p(b->data + HDR + 4), ==, node);
            decode_ok(b, &limits, &d);
            check_hdr(&d.msg.hdr, DISTVM_MSG_DEVICE_AWAY,
                      DEVICE_AWAY_FIXED + len, 0, 7 + node);
            g_assert_cmpuint(d.msg.u.away.device, ==, 3);
            g_assert_cmpuint(d.msg.u.away.node, ==, node);
            g_assert_cmpuint(d.msg.u.away.len, ==, len);
            g_assert(!memcmp(d.msg.u.away.data, state, len));
            decoded_free(&d);
        }
    }
    /* a node beyond the cluster, home, no generation, no state, short */
    distvm_wire_device_away(b, 0, 1, 0, limits.nodes, state, 1);
    expect_decode_error(b, &limits, "DEVICE_AWAY message to node 4 of 4 "
                        "(home 0), configuration generation 1");
    distvm_wire_device_away(b, 0, 1, 0, 0, state, 1);
    expect_decode_error(b, &limits, "DEVICE_AWAY message to node 0 of 4 "
                        "(home 0), configuration generation 1");
    distvm_wire_device_away(b, 0, 0, 0, 1, state, sizeof(state));
    expect_decode_error(b, &limits, "DEVICE_AWAY message to node 1 of 4 "
                        "(home 0), configuration generation 0");
    distvm_wire_device_away(b, 0, 1, 0, 1, state, 0);
    expect_decode_error(b, &limits, "DEVICE_AWAY message without a state");
    distvm_wire_begin(b, DISTVM_MSG_DEVICE_AWAY, 0, 1);
    distvm_wire_put_u32(b, 0);
    g_byte_array_append(b, (const uint8_t *)"\1\0\0", 3);
    distvm_wire_end(b);
    expect_decode_error(b, &limits, "DEVICE_AWAY message is truncated");
    g_byte_array_unref(b);
}

/*
 * A FLOW of @done from @src: its layout (the one built by hand, bit for
 * bit), and its decoding
 */
static void check_flow(const DistvmWireLimits *lim, uint32_t src,
                       uint64_t done)
{
    GByteArray *b = g_byte_array_new();
    GByteArray *hand = g_byte_array_new();
    Decoded d;

    distvm_wire_flow(b, src, done);
    g_assert_cmpuint(b->len, ==, HDR + FLOW_FIXED);
    g_assert_cmpuint(lduw_le_p(b->data + OFF_TYPE), ==, DISTVM_MSG_FLOW);
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + OFF_LENGTH), ==,
                     FLOW_FIXED);
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + OFF_SRC), ==, src);
    /* the encoder numbers none */
    g_assert_cmphex(ldq_le_p(b->data + OFF_SEQ), ==, 0);
    /* the count, alone */
    g_assert_cmphex(ldq_le_p(b->data + HDR), ==, done);

    distvm_wire_begin(hand, DISTVM_MSG_FLOW, src, 0);
    distvm_wire_put_u64(hand, done);
    distvm_wire_end(hand);
    g_assert_cmpmem(hand->data, hand->len, b->data, b->len);

    decode_ok(b, lim, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_FLOW, FLOW_FIXED, src, 0);
    g_assert_cmphex(d.msg.u.value, ==, done);
    decoded_free(&d);

    g_byte_array_unref(hand);
    g_byte_array_unref(b);
}

static void test_flow(void)
{
    static const DistvmWireLimits one_node = {
        .nodes = 1,
    };
    /* counts of messages done with */
    static const uint64_t values[] = {
        0, 1, 2, 1024, 0xffffffffull, 0x100000000ull, 0x0123456789abcdefull,
        INT64_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX - 1, UINT64_MAX,
    };
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (size_t i = 0; i < ARRAY_SIZE(values); i++) {
        /* any node may be a receiver that tells its sender */
        for (uint32_t src = 0; src < limits.nodes; src++) {
            check_flow(&limits, src, values[i]);
            check_flow(&limits, src, ~values[i]);
        }

        /* no RAM layout and no vCPUs are needed */
        check_flow(&limits_no_ram, 3, values[i]);
        check_flow(&limits_nodes_only, 1, ~values[i]);
        check_flow(&one_node, 0, values[i]);
        check_flow(&limits_most, DISTVM_WIRE_MAX_NODES - 1, ~values[i]);
    }

    /* each bit of the count in its place */
    for (int bit = 0; bit < 64; bit++) {
        check_flow(&limits, 2, 1ull << bit);
        check_flow(&limits, 1, ~(1ull << bit));
    }

    /* a sequence number is not looked at: passed through as it is */
    for (size_t i = 0; i < ARRAY_SIZE(values); i++) {
        distvm_wire_flow(b, 1, values[i]);
        distvm_wire_set_seq(b, ~values[i]);
        decode_ok(b, &limits, &d);
        check_hdr(&d.msg.hdr, DISTVM_MSG_FLOW, FLOW_FIXED, 1, ~values[i]);
        g_assert_cmphex(d.msg.u.value, ==, values[i]);
        decoded_free(&d);
    }

    /* distvm_wire_flow empties the buffer first */
    distvm_wire_empty(b, DISTVM_MSG_READY, 1, 2);
    distvm_wire_flow(b, 0, 5);
    g_assert_cmpuint(b->len, ==, HDR + FLOW_FIXED);
    g_assert_cmphex(ldq_le_p(b->data + OFF_SEQ), ==, 0);
    g_byte_array_unref(b);
}

/* PCI_INTX: line and level, both u32; lines below 64, levels 0 or 1 */

static void test_pci_intx(void)
{
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (uint32_t irq = 0; irq < DISTVM_PCI_INTX_MAX; irq += 9) {
        for (uint32_t level = 0; level <= 1; level++) {
            distvm_wire_pci_intx(b, 2, irq, level);
            g_assert_cmpuint(b->len, ==, HDR + INTX_FIXED);
            g_assert_cmpuint(lduw_le_p(b->data + OFF_TYPE), ==,
                             DISTVM_MSG_PCI_INTX);
            g_assert_cmpuint((uint32_t)ldl_le_p(b->data + HDR), ==, irq);
            g_assert_cmpuint((uint32_t)ldl_le_p(b->data + HDR + 4), ==,
                             level);
            decode_ok(b, &limits, &d);
            check_hdr(&d.msg.hdr, DISTVM_MSG_PCI_INTX, INTX_FIXED, 2, 0);
            g_assert_cmpuint(d.msg.u.intx.irq, ==, irq);
            g_assert_cmpuint(d.msg.u.intx.level, ==, level);
            decoded_free(&d);
        }
    }
    /* a line out of range, or a level that is neither low nor high */
    distvm_wire_pci_intx(b, 1, DISTVM_PCI_INTX_MAX, 0);
    expect_decode_error(b, &limits, "PCI_INTX message with line 64 and "
                        "level 0");
    distvm_wire_pci_intx(b, 1, 3, 2);
    expect_decode_error(b, &limits, "PCI_INTX message with line 3 and "
                        "level 2");
    distvm_wire_pci_intx(b, 1, UINT32_MAX, UINT32_MAX);
    expect_decode_error(b, &limits, "PCI_INTX message with line");
    g_byte_array_unref(b);
}

/*
 * NET_CTRL: the card's QOM path (a string), then the control command's
 * length (u32) and bytes: from 2 (virtio's header alone) to 64 KiB
 */
/*
 * A VCPU_FLUSH or VCPU_FLUSHED of vCPU @cpu's flush @seq, from node
 * @from to node @to, with @vcpus: its layout and its decoding under @lim
 */
static void check_vcpu_flush(const DistvmWireLimits *lim, DistvmMsgType type,
                             uint32_t cpu, uint32_t from, uint32_t to,
                             uint64_t vcpus, uint64_t seq)
{
    GByteArray *b = g_byte_array_new();
    uint32_t got_cpu = UINT32_MAX;
    Decoded d;

    distvm_wire_vcpu(b, type, from, cpu, from, to, vcpus, NULL, 0);
    distvm_wire_set_seq(b, seq);
    g_assert_cmpuint(b->len, ==, HDR + VCPU_FIXED);
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + HDR), ==, cpu);
    g_assert_cmphex(ldq_le_p(b->data + HDR + 16), ==, vcpus);

    decode_ok(b, lim, &d);
    check_hdr(&d.msg.hdr, type, VCPU_FIXED, from, seq);
    g_assert_cmpuint(d.msg.u.vcpu.cpu, ==, cpu);
    g_assert_cmpuint(d.msg.u.vcpu.from, ==, from);
    g_assert_cmpuint(d.msg.u.vcpu.to, ==, to);
    g_assert_cmpuint(d.msg.u.vcpu.reason, ==, 0);
    g_assert_cmphex(d.msg.u.vcpu.value, ==, vcpus);
    /* a vCPU message: the asker's index */
    g_assert_true(distvm_wire_msg_vcpu(&d.msg, &got_cpu));
    g_assert_cmpuint(got_cpu, ==, cpu);
    decoded_free(&d);
    g_byte_array_unref(b);
}

static void test_vcpu_flush(void)
{
    /* each vCPU alone, and all of them, from and to every node */
    for (uint32_t bit = 0; bit < limits.nr_vcpus; bit++) {
        for (uint32_t from = 0; from < limits.nodes; from++) {
            check_vcpu_flush(&limits, DISTVM_MSG_VCPU_FLUSH, bit, from,
                             (from + 1) % limits.nodes, 1ull << bit, 1);
        }
    }
    check_vcpu_flush(&limits, DISTVM_MSG_VCPU_FLUSH, 7, 3, 0,
                     (1ull << limits.nr_vcpus) - 1, UINT64_MAX);
    /* 64 vCPUs or more: any mask but none */
    check_vcpu_flush(&limits_most, DISTVM_MSG_VCPU_FLUSH, 100, 2, 9,
                     UINT64_MAX, 42);
    check_vcpu_flush(&limits_most, DISTVM_MSG_VCPU_FLUSH, 0, 0, 1,
                     1ull << 63, 42);
    /* the answers */
    check_vcpu_flush(&limits, DISTVM_MSG_VCPU_FLUSHED, 5, 2, 1, 0, 1);
    check_vcpu_flush(&limits, DISTVM_MSG_VCPU_FLUSHED, 0, 0, 3, 0,
                     0x0123456789abcdefull);
}

/* @b, decoded under @lim, is refused with an error naming @what */
static void expect_flush_error(GByteArray *b, const DistvmWireLimits *lim,
                               const char *what)
{
    g_autofree char *got = decode_error(b, lim);

    g_assert_nonnull(got);
    expect_decode_error(b, lim, what);
    g_byte_array_set_size(b, 0);
}

static void test_vcpu_flush_bad(void)
{
    GByteArray *b = g_byte_array_new();

    /* no vCPU to flush */
    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_FLUSH, 1, 2, 1, 0, 0, NULL, 0);
    distvm_wire_set_seq(b, 1);
    expect_flush_error(b, &limits, "VCPU_FLUSH message with vCPUs 0x0");
    /* a vCPU the limits do not have, alone or with valid ones */
    for (int bit = limits.nr_vcpus; bit < 64; bit++) {
        distvm_wire_vcpu(b, DISTVM_MSG_VCPU_FLUSH, 1, 2, 1, 0,
                         (1ull << bit) | 1, NULL, 0);
        distvm_wire_set_seq(b, 1);
        expect_flush_error(b, &limits, "VCPU_FLUSH message with vCPUs");
    }
    /* without a sequence number, asked or answered */
    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_FLUSH, 1, 2, 1, 0, 1, NULL, 0);
    expect_flush_error(b, &limits, "without a sequence number");
    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_FLUSHED, 0, 2, 0, 1, 0, NULL, 0);
    expect_flush_error(b, &limits, "without a sequence number");
    /* an answer with a value */
    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_FLUSHED, 0, 2, 0, 1, 4, NULL, 0);
    distvm_wire_set_seq(b, 3);
    expect_flush_error(b, &limits, "VCPU_FLUSHED message with a value 0x4");
    /* the asker is no vCPU, or a node is not one */
    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_FLUSH, 1, 8, 1, 0, 1, NULL, 0);
    distvm_wire_set_seq(b, 1);
    expect_flush_error(b, &limits, "for vCPU 8");
    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_FLUSH, 1, 2, 1, 4, 1, NULL, 0);
    distvm_wire_set_seq(b, 1);
    expect_flush_error(b, &limits, "destination");
    /* a reason: only moves have one */
    distvm_wire_vcpu_move(b, DISTVM_MSG_VCPU_FLUSH, 1, 2, 1, 0,
                          DISTVM_MOVE_POLICY, 1, NULL, 0);
    distvm_wire_set_seq(b, 1);
    expect_flush_error(b, &limits, "with reason");
    /* truncated, or with more after it */
    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_FLUSH, 1, 2, 1, 0, 1, NULL, 0);
    distvm_wire_set_seq(b, 1);
    g_byte_array_set_size(b, b->len - 1);
    stl_le_p(b->data + 8, VCPU_FIXED - 1);
    expect_flush_error(b, &limits, "truncated");
    g_byte_array_unref(b);
}

static void test_net_ctrl(void)
{
    static const uint32_t lens[] = {
        DISTVM_NET_CTRL_MIN, 3, 4, 8, 100, DISTVM_NET_CTRL_MAX - 1,
        DISTVM_NET_CTRL_MAX,
    };
    const char *path = "/machine/peripheral/vmq";
    g_autofree uint8_t *cmd = g_malloc(DISTVM_NET_CTRL_MAX + 1);
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (uint32_t i = 0; i <= DISTVM_NET_CTRL_MAX; i++) {
        cmd[i] = i * 7 + 3;
    }
    for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
        distvm_wire_net_ctrl(b, 1, path, cmd, lens[i]);
        g_assert_cmpuint(b->len, ==, HDR + 8 + strlen(path) + lens[i]);
        g_assert_cmpuint(lduw_le_p(b->data + OFF_TYPE), ==,
                         DISTVM_MSG_NET_CTRL);
        g_assert_cmpuint(ldl_le_p(b->data + HDR), ==, strlen(path));
        g_assert_cmpmem(b->data + HDR + 4, strlen(path), path, strlen(path));
        g_assert_cmpuint(ldl_le_p(b->data + HDR + 4 + strlen(path)), ==,
                         lens[i]);
        g_assert_cmpmem(b->data + HDR + 8 + strlen(path), lens[i], cmd,
                        lens[i]);
        decode_ok(b, &limits, &d);
        check_hdr(&d.msg.hdr, DISTVM_MSG_NET_CTRL,
                  8 + strlen(path) + lens[i], 1, 0);
        g_assert_cmpstr(d.msg.u.net_ctrl.path, ==, path);
        g_assert_cmpuint(d.msg.u.net_ctrl.len, ==, lens[i]);
        g_assert_cmpmem(d.msg.u.net_ctrl.data, lens[i], cmd, lens[i]);
        decoded_free(&d);
    }
    /* no command, a header cut short, one longer than any */
    distvm_wire_net_ctrl(b, 2, path, cmd, 0);
    expect_decode_error(b, &limits, "NET_CTRL message with a command of 0 "
                        "bytes (2 to 65536)");
    distvm_wire_net_ctrl(b, 2, path, cmd, 1);
    expect_decode_error(b, &limits, "NET_CTRL message with a command of 1 "
                        "bytes (2 to 65536)");
    distvm_wire_net_ctrl(b, 2, path, cmd, DISTVM_NET_CTRL_MAX + 1);
    expect_decode_error(b, &limits, "NET_CTRL message with a command of "
                        "65537 bytes (2 to 65536)");
    /* a path, or a command, cut short */
    distvm_wire_net_ctrl(b, 2, path, cmd, 2);
    set_u32(b, HDR, 0x100);
    expect_decode_error(b, &limits, "NET_CTRL message is truncated");
    distvm_wire_net_ctrl(b, 2, path, cmd, 2);
    set_u32(b, HDR + 4 + strlen(path), 3);
    expect_decode_error(b, &limits, "NET_CTRL message is truncated");
    g_byte_array_unref(b);
}

static void test_net_pair(void)
{
    const char *path = "/machine/peripheral/vmq";
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (uint32_t step = 0; step < DISTVM_NET_PAIR__MAX; step++) {
        distvm_wire_net_pair(b, 1, path, step, 3, 2, 7, 9);
        g_assert_cmpuint(b->len, ==, HDR + NET_PAIR_FIXED + strlen(path));
        g_assert_cmpuint(lduw_le_p(b->data + OFF_TYPE), ==,
                         DISTVM_MSG_NET_PAIR);
        g_assert_cmpuint(ldl_le_p(b->data + HDR), ==, strlen(path));
        g_assert_cmpmem(b->data + HDR + 4, strlen(path), path, strlen(path));
        decode_ok(b, &limits, &d);
        check_hdr(&d.msg.hdr, DISTVM_MSG_NET_PAIR,
                  NET_PAIR_FIXED + strlen(path), 1, 0);
        g_assert_cmpstr(d.msg.u.net_pair.path, ==, path);
        g_assert_cmpuint(d.msg.u.net_pair.step, ==, step);
        g_assert_cmpuint(d.msg.u.net_pair.pair, ==, 3);
        g_assert_cmpuint(d.msg.u.net_pair.node, ==, 2);
        g_assert_cmpuint(d.msg.u.net_pair.queue, ==, 7);
        g_assert_cmpuint(d.msg.u.net_pair.move, ==, 9);
        decoded_free(&d);
    }
    /* an unknown step, a node past any, a queue of another pair */
    distvm_wire_net_pair(b, 1, path, DISTVM_NET_PAIR__MAX, 0, 0, 0, 1);
    expect_decode_error(b, &limits, "NET_PAIR message with unknown step 7");
    distvm_wire_net_pair(b, 1, path, DISTVM_NET_PAIR_MOVE, 0,
                         DISTVM_WIRE_MAX_NODES, 0, 1);
    expect_decode_error(b, &limits, "NET_PAIR message for node 16 (at most "
                        "16 nodes)");
    distvm_wire_net_pair(b, 1, path, DISTVM_NET_PAIR_MOVE, 1, 0, 4, 1);
    expect_decode_error(b, &limits, "NET_PAIR message for queue 4 of pair 1");
    /* cut short */
    distvm_wire_net_pair(b, 1, path, DISTVM_NET_PAIR_MOVE, 0, 0, 0, 1);
    g_byte_array_set_size(b, b->len - 1);
    stl_le_p(b->data + 8, NET_PAIR_FIXED + strlen(path) - 1);
    expect_decode_error(b, &limits, "truncated");
    g_byte_array_unref(b);
}

/* A CLOCK_REGS @clock from @src: its layout, and its decoding under @lim */
static void check_clock_regs(const DistvmWireLimits *lim, uint32_t src,
                             const DistvmMsgClockRegs *clock)
{
    GByteArray *b = g_byte_array_new();
    const uint8_t *p;
    Decoded d;

    distvm_wire_clock_regs(b, src, clock);
    g_assert_cmpuint(b->len, ==, HDR + CLOCK_FIXED);
    g_assert_cmpuint(lduw_le_p(b->data + OFF_TYPE), ==,
                     DISTVM_MSG_CLOCK_REGS);
    g_assert_cmphex(ldq_le_p(b->data + OFF_SEQ), ==, 0);

    /* flags, pm_timer_port, hpet_base, hpet_counter, hpet_offset */
    p = b->data + HDR;
    g_assert_cmphex((uint32_t)ldl_le_p(p), ==, clock->flags);
    g_assert_cmphex((uint32_t)ldl_le_p(p + 4), ==, clock->pm_timer_port);
    g_assert_cmphex(ldq_le_p(p + 8), ==, clock->hpet_base);
    g_assert_cmphex(ldq_le_p(p + 16), ==, clock->hpet_counter);
    g_assert_cmphex(ldq_le_p(p + 24), ==, clock->hpet_offset);

    decode_ok(b, lim, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_CLOCK_REGS, CLOCK_FIXED, src, 0);
    g_assert_cmphex(d.msg.u.clock.flags, ==, clock->flags);
    g_assert_cmphex(d.msg.u.clock.pm_timer_port, ==, clock->pm_timer_port);
    g_assert_cmphex(d.msg.u.clock.hpet_base, ==, clock->hpet_base);
    g_assert_cmphex(d.msg.u.clock.hpet_counter, ==, clock->hpet_counter);
    g_assert_cmphex(d.msg.u.clock.hpet_offset, ==, clock->hpet_offset);
    decoded_free(&d);

    g_byte_array_unref(b);
}

static void test_clock_regs(void)
{
    static const DistvmMsgClockRegs valid[] = {
        /* the PM timer alone, where the i440FX has it */
        { .flags = DISTVM_CLOCK_PM_TIMER, .pm_timer_port = 0xb008 },
        /* the last port a 4-byte register fits in; any alignment */
        { .flags = DISTVM_CLOCK_PM_TIMER, .pm_timer_port = 0xfffc },
        { .flags = DISTVM_CLOCK_PM_TIMER, .pm_timer_port = 0x601 },
        /* the first and the last 4 KiB aligned HPET addresses */
        { .flags = DISTVM_CLOCK_HPET | DISTVM_CLOCK_HPET_ENABLED,
          .hpet_base = 0x1000, .hpet_offset = 1 },
        { .flags = DISTVM_CLOCK_HPET | DISTVM_CLOCK_PM_TIMER,
          .pm_timer_port = 0x608, .hpet_base = UINT64_MAX & ~0xfffull,
          .hpet_counter = UINT64_MAX },
        /* the counter and offset are not interpreted */
        { .flags = DISTVM_CLOCK_FLAGS_ALL, .pm_timer_port = 0x408,
          .hpet_base = HPET_BASE, .hpet_counter = UINT64_MAX,
          .hpet_offset = UINT64_MAX },
    };
    static const DistvmMsgClockRegs *const named[] = {
        &clock_regs_all, &clock_regs_stopped, &clock_regs_none,
    };
    const size_t n = ARRAY_SIZE(named);

    for (size_t i = 0; i < n + ARRAY_SIZE(valid); i++) {
        const DistvmMsgClockRegs *clock = i < n ? named[i] : &valid[i - n];

        /*
         * The decoder takes it from any node of the cluster; that only
         * home sends it is for the receiver to check
         */
        for (uint32_t src = 0; src < limits.nodes; src++) {
            check_clock_regs(&limits, src, clock);
        }

        /* no RAM layout and no vCPUs are needed */
        check_clock_regs(&limits_no_ram, 3, clock);
        check_clock_regs(&limits_nodes_only, 1, clock);
        check_clock_regs(&limits_most, DISTVM_WIRE_MAX_NODES - 1, clock);
    }

    /* every combination of flags in which the HPET runs only if known */
    for (uint32_t flags = 0; flags <= DISTVM_CLOCK_FLAGS_ALL; flags++) {
        if ((flags & DISTVM_CLOCK_HPET_ENABLED) &&
            !(flags & DISTVM_CLOCK_HPET)) {
            continue;
        }
        check_clock_regs(&limits, 0, &(DistvmMsgClockRegs) {
            .flags = flags,
            .pm_timer_port = flags & DISTVM_CLOCK_PM_TIMER ? 0x608 : 0,
            .hpet_base = flags & DISTVM_CLOCK_HPET ? HPET_BASE : 0,
            .hpet_counter = flags, .hpet_offset = ~flags,
        });
    }

    /* each field in its place */
    for (int bit = 0; bit < 64; bit++) {
        check_clock_regs(&limits, 0, &(DistvmMsgClockRegs) {
            .flags = DISTVM_CLOCK_FLAGS_ALL,
            .pm_timer_port = 4u << (bit % 14),
            .hpet_base = bit < 12 ? HPET_BASE : 1ull << bit,
            .hpet_counter = 1ull << bit, .hpet_offset = ~(1ull << bit),
        });
    }
}

/*
 * Every valid message decodes, so the rejection tests below are fair, and
 * every message type is among them
 */
static void test_valid_messages(void)
{
    g_autoptr(GPtrArray) msgs = valid_messages();
    bool seen[DISTVM_MSG__MAX] = { false };

    for (guint i = 0; i < msgs->len; i++) {
        GByteArray *b = buf_dup(msgs->pdata[i]);
        Decoded d;

        decode_ok(b, &limits, &d);
        seen[d.msg.hdr.type] = true;
        decoded_free(&d);

        /* any sequence number is passed through */
        set_u64(b, OFF_SEQ, 0x8000000000000001ull + i);
        decode_ok(b, &limits, &d);
        g_assert_cmphex(d.msg.hdr.seq, ==, 0x8000000000000001ull + i);
        decoded_free(&d);
        g_byte_array_unref(b);
    }
    for (uint32_t t = 1; t < DISTVM_MSG__MAX; t++) {
        if (!seen[t]) {
            g_test_message("no valid %s message", distvm_msg_type_name(t));
            g_test_fail();
        }
    }
}

/*
 * Header rejection
 */

static void test_bad_magic(void)
{
    static const uint32_t magics[] = {
        0, 0x504d5645u, 0x444d5650u /* "PVMD": byte-swapped */, UINT32_MAX,
    };
    GByteArray *b = g_byte_array_new();

    distvm_wire_empty(b, DISTVM_MSG_READY, 0, 0);
    for (size_t i = 0; i < ARRAY_SIZE(magics); i++) {
        set_u32(b, OFF_MAGIC, magics[i]);
        expect_header_error(b, "bad magic");
    }
    /* one flipped bit anywhere in the magic */
    for (int bit = 0; bit < 32; bit++) {
        set_u32(b, OFF_MAGIC, DISTVM_WIRE_MAGIC ^ (1u << bit));
        expect_header_error(b, "bad magic");
    }
    g_byte_array_unref(b);
}

static void test_bad_version(void)
{
    /*
     * 1 is the version before PIC_OUTPUT and DISTVM_IO_PIC_ACK, 2 the one
     * before CLOCK_REGS, 3 the one before HEARTBEAT, 4 the one before
     * POLICY and the reason of a move, 5 the one before the nodes' speeds,
     * 6 the one before the A20 line, 7 the one before moves the guest asks
     * for, 8 the one before memory hotplug (MEM_PLUG, MEM_UNPLUG), 9 the
     * one before devices on other nodes (PCI_INTX, DISTVM_IO_CONFIG_GEN),
     * 10 the one before ranges made resident while the guest runs (RES_SET),
     * 11 the one before the cluster's ordered end (END, ENDED), 12 the
     * one before CPU hot-plug (CPU_PLUG, CPU_PLUG_ACK, CPU_UNPLUG), 13
     * the one before PAGE_REQS, 14 the one before the policy's
     * consolidation (DISTVM_MOVE_CONSOLIDATE), 15 the one before nodes
     * that join and leave the running guest (NODE_JOINING, VCPU_WHERE,
     * NODE_JOINED, NODE_DRAIN, DRAIN_PAGES, DRAINED, NODE_LEFT,
     * DISTVM_MOVE_DRAIN), 16 the one before node ids given by home
     * (DISTVM_WIRE_NODE_ANY, WELCOME's node id), 17 the one before joins
     * held the vCPUs rather than stopping the guest (RUN_HOLD, RUN_HELD,
     * RUN_RELEASE) and told a joining node of resident RAM
     * (RES_SET_KNOWN), 18 the one before a receiver could ask its sender
     * to wait (FLOW), 19 the one before a start node could hand its part
     * of the page directory off (MGR_MOVE, MGR_ENTRIES), 20 the one
     * before checkpoints (EPOCH, EPOCH_PAGES, EPOCH_STATE), 21 the one
     * before rollbacks (DISTVM_EPOCH_ROLLBACK, FETCH, FETCHED, ROLLED,
     * DISTVM_EPOCH_PAGE_ASK and COPY, DISTVM_EPOCH_STATE_VCPU_COPY and
     * DEVICES_COPY), 22 the one before taking a lost node over
     * (DISTVM_EPOCH_LOST to RECOVERED, DISTVM_EPOCH_PAGE_HELD and OWNED),
     * 23 the one before redundancy=parity (DISTVM_EPOCH_PARITY_ASK and
     * PARITY_DONE, DISTVM_EPOCH_PAGE_DELTA and SLOT, with their slot),
     * 24 the one before home's standby told home it has its COMMIT
     * (DISTVM_EPOCH_COMMITTED), 25 the one before queue pairs of a card
     * served on several nodes (NET_CTRL), 26 the one before the guest's
     * remote TLB flushes (VCPU_FLUSH, VCPU_FLUSHED), 27 the one before
     * queue pairs that move between nodes (NET_PAIR), 28 the one before
     * the nodes told home of their network paths (DISTVM_NET_PAIR_PATH_*),
     * 29 the one before epochs kept the state of the devices placed away
     * from home (DISTVM_EPOCH_STATE_PLACED and PLACED_COPY, DEVICE_HOME),
     * 30 the one before a device went back to its node (DEVICE_AWAY), 31
     * the one before a node that joins learnt where queue pairs are
     * served (DISTVM_NET_PAIR_STATE)
     */
    static const uint16_t versions[] = {
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
        19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 33, 0x100,
        0x10f, 0x200, 0x300, 0xd00, UINT16_MAX,
    };
    GByteArray *b = g_byte_array_new();

    distvm_wire_empty(b, DISTVM_MSG_PING, 0, 1);
    for (size_t i = 0; i < ARRAY_SIZE(versions); i++) {
        g_autofree char *what = g_strdup_printf(
            "protocol version %u, this node speaks 32", versions[i]);

        set_u16(b, OFF_VERSION, versions[i]);
        expect_header_error(b, what);
    }

    /* whatever the message */
    for (uint16_t t = 1; t < DISTVM_MSG__MAX; t++) {
        set_u16(b, OFF_TYPE, t);
        set_u16(b, OFF_VERSION, 2);
        expect_header_error(b, "protocol version 2, this node speaks 32");
    }
    g_byte_array_unref(b);
}

static void test_bad_type(void)
{
    static const uint16_t types[] = {
        0, DISTVM_MSG__MAX, DISTVM_MSG__MAX + 1, 0x100, UINT16_MAX,
    };
    GByteArray *b = g_byte_array_new();

    distvm_wire_empty(b, DISTVM_MSG_READY, 0, 0);
    for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
        set_u16(b, OFF_TYPE, types[i]);
        expect_header_error(b, "unknown message type");
    }
    g_byte_array_unref(b);
}

/* The decoder does not rely on the header check for the type */
static void test_decode_bad_type(void)
{
    static const uint16_t types[] = { 0, DISTVM_MSG__MAX, UINT16_MAX };
    uint8_t payload[8] = { 0 };

    for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
        DistvmMsgHeader hdr = {
            .magic = DISTVM_WIRE_MAGIC,
            .version = DISTVM_WIRE_VERSION,
            .type = types[i],
            .length = sizeof(payload),
            .src = 0,
        };
        DistvmMsg msg;
        Error *err = NULL;

        g_assert_false(distvm_wire_decode(&hdr, payload, &limits, &msg,
                                          &err));
        check_error(&err, "unknown message type");
    }
}

static void test_oversized(void)
{
    static const uint32_t lengths[] = {
        DISTVM_WIRE_MAX_PAYLOAD + 1, DISTVM_WIRE_MAX_PAYLOAD * 2,
        INT32_MAX, (uint32_t)INT32_MAX + 1, UINT32_MAX,
    };
    GByteArray *b = g_byte_array_new();
    DistvmMsgHeader hdr;
    Error *err = NULL;

    for (uint16_t t = 1; t < DISTVM_MSG__MAX; t++) {
        distvm_wire_empty(b, DISTVM_MSG_READY, 0, 0);
        set_u16(b, OFF_TYPE, t);
        for (size_t i = 0; i < ARRAY_SIZE(lengths); i++) {
            set_u32(b, OFF_LENGTH, lengths[i]);
            expect_header_error(b, "exceeds the limit");
        }
        /* the limit itself is allowed */
        set_u32(b, OFF_LENGTH, DISTVM_WIRE_MAX_PAYLOAD);
        g_assert_true(distvm_wire_parse_header(b->data, &hdr, &err));
        g_assert_null(err);
        g_assert_cmpuint(hdr.length, ==, DISTVM_WIRE_MAX_PAYLOAD);
        g_assert_cmpuint(hdr.type, ==, t);
    }
    g_byte_array_unref(b);
}

/*
 * Payload rejection
 */

/*
 * The fixed part of a message whose payload ends in a state: a
 * VCPU_STATE's or an EPOCH_STATE's; 0 for any other message
 */
static uint32_t state_fixed(const GByteArray *m)
{
    switch (lduw_le_p(m->data + OFF_TYPE)) {
    case DISTVM_MSG_VCPU_STATE:
        return VCPU_FIXED;
    case DISTVM_MSG_DEVICE_AWAY:
        return DEVICE_AWAY_FIXED;
    case DISTVM_MSG_EPOCH_STATE:
        return EPOCH_STATE_FIXED;
    default:
        return 0;
    }
}

/* The state a decoded VCPU_STATE or EPOCH_STATE carries, and its length */
static const uint8_t *state_bytes(const DistvmMsg *msg, uint32_t *len)
{
    if (msg->hdr.type == DISTVM_MSG_EPOCH_STATE) {
        *len = msg->u.epoch_state.len;
        return msg->u.epoch_state.data;
    }
    if (msg->hdr.type == DISTVM_MSG_DEVICE_AWAY) {
        *len = msg->u.away.len;
        return msg->u.away.data;
    }
    g_assert_cmpuint(msg->hdr.type, ==, DISTVM_MSG_VCPU_STATE);
    *len = msg->u.vcpu.len;
    return msg->u.vcpu.data;
}

/*
 * The error @m, a VCPU_STATE or an EPOCH_STATE, is refused with if its
 * state is @len bytes (its state is none, or its chunk too long)
 */
static char *state_error(const GByteArray *m, uint32_t len)
{
    const uint8_t *p = m->data + HDR;
    uint32_t offset = ldl_le_p(p + 20);

    if (lduw_le_p(m->data + OFF_TYPE) == DISTVM_MSG_VCPU_STATE) {
        return g_strdup("VCPU_STATE message without a state");
    }
    if (lduw_le_p(m->data + OFF_TYPE) == DISTVM_MSG_DEVICE_AWAY) {
        return g_strdup("DEVICE_AWAY message without a state");
    }
    return epoch_state_error(ldq_le_p(p), ldl_le_p(p + 8), ldl_le_p(p + 12),
                             offset, (uint64_t)offset + len,
                             ldl_le_p(p + 16));
}

/*
 * Every proper prefix of every valid payload is truncated, except that a
 * VCPU_STATE's state, and an EPOCH_STATE's chunk, is the rest of its
 * payload: a prefix that ends in the state is a shorter state, and one
 * that ends just before it has none.
 */
static void test_truncated(void)
{
    g_autoptr(GPtrArray) msgs = valid_messages();
    unsigned cuts = 0;

    for (guint i = 0; i < msgs->len; i++) {
        GByteArray *full = msgs->pdata[i];
        uint32_t len = full->len - HDR;
        uint32_t fixed = state_fixed(full);

        for (uint32_t cut = 0; cut < len; cut++) {
            GByteArray *b = buf_dup(full);
            Decoded d;

            g_byte_array_set_size(b, HDR + cut);
            set_u32(b, OFF_LENGTH, cut);
            if (!fixed || cut < fixed) {
                expect_decode_error(b, &limits, "truncated");
                cuts++;
            } else if (cut == fixed) {
                g_autofree char *what = state_error(full, 0);
                g_autofree char *got = decode_error(b, &limits);

                g_assert_cmpstr(got, ==, what);
            } else {
                const uint8_t *state;
                uint32_t state_len;

                decode_ok(b, &limits, &d);
                state = state_bytes(&d.msg, &state_len);
                g_assert(state == d.payload + fixed);
                g_assert_cmpuint(state_len, ==, cut - fixed);
                g_assert(memcmp(state, full->data + HDR + fixed,
                                cut - fixed) == 0);
                decoded_free(&d);
            }
            g_byte_array_unref(b);
        }
    }
    g_test_message("%u cut points", cuts);
    g_assert_cmpuint(cuts, >, DISTVM_PAGE_SIZE);
}

/*
 * Bytes after a valid payload are garbage, except after a VCPU_STATE's,
 * where they make a longer state, and after an EPOCH_STATE's, where they
 * make a longer chunk: refused if it ends past its state's end
 */
static void test_trailing(void)
{
    static const uint32_t extra[] = { 1, 3, 4, 8, DISTVM_PAGE_SIZE };
    g_autoptr(GPtrArray) msgs = valid_messages();
    unsigned longer = 0, past = 0;

    for (guint i = 0; i < msgs->len; i++) {
        GByteArray *m = msgs->pdata[i];
        uint32_t len = m->len - HDR;
        uint32_t fixed = state_fixed(m);
        bool epoch_state = lduw_le_p(m->data + OFF_TYPE) ==
                           DISTVM_MSG_EPOCH_STATE;

        for (size_t j = 0; j < ARRAY_SIZE(extra); j++) {
            GByteArray *b = buf_dup(m);
            g_autofree char *what = g_strdup_printf(
                "has %" PRIu32 " bytes of trailing garbage", extra[j]);
            uint32_t state_len = len - fixed + extra[j];
            Decoded d;

            g_byte_array_set_size(b, b->len + extra[j]);
            memset(b->data + b->len - extra[j], 0, extra[j]);
            set_u32(b, OFF_LENGTH, b->len - HDR);
            if (!fixed) {
                expect_decode_error(b, &limits, what);
            } else if (epoch_state &&
                       (uint64_t)ldl_le_p(m->data + HDR + 20) + state_len >
                       (uint32_t)ldl_le_p(m->data + HDR + 16)) {
                g_autofree char *err = state_error(m, state_len);
                g_autofree char *got = decode_error(b, &limits);

                g_assert_cmpstr(got, ==, err);
                past++;
            } else {
                const uint8_t *state;
                uint32_t got_len;

                decode_ok(b, &limits, &d);
                state = state_bytes(&d.msg, &got_len);
                g_assert_cmpuint(got_len, ==, state_len);
                g_assert(memcmp(state, m->data + HDR + fixed,
                                len - fixed) == 0);
                decoded_free(&d);
                longer += epoch_state;
            }
            g_byte_array_unref(b);
        }
    }
    /* both kinds of EPOCH_STATE are among the valid messages */
    g_assert_cmpuint(longer, >, 0);
    g_assert_cmpuint(past, >, 0);
}

/* A zero page carries no bytes; anything after the fixed part is garbage */
static void test_page_zero_with_data(void)
{
    static uint8_t data[DISTVM_PAGE_SIZE];
    GByteArray *b = g_byte_array_new();

    distvm_wire_page(b, DISTVM_MSG_PAGE_DATA, 1, 0, 0, 0, 1,
                     DISTVM_PAGE_WRITE, data);
    set_u32(b, HDR + 4, DISTVM_PAGE_WRITE | DISTVM_PAGE_ZERO);
    expect_decode_error(b, &limits, "trailing garbage");

    /* only PAGE_DATA carries a page */
    for (size_t i = 0; i < ARRAY_SIZE(page_types); i++) {
        if (page_types[i] != DISTVM_MSG_PAGE_DATA) {
            set_u16(b, OFF_TYPE, page_types[i]);
            set_u32(b, HDR + 4, DISTVM_PAGE_WRITE);
            expect_decode_error(b, &limits, "trailing garbage");
        }
    }
    g_byte_array_unref(b);
}

static void test_page_out_of_range(void)
{
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(page_types); i++) {
        for (uint32_t blk = 0; blk < limits.nr_blocks; blk++) {
            /* page index == block_pages */
            distvm_wire_page(b, page_types[i], 1, 0, blk, block_pages[blk], 1,
                             DISTVM_PAGE_ZERO, NULL);
            expect_decode_error(b, &limits, "RAMBlock");
            distvm_wire_page(b, page_types[i], 1, 0, blk, UINT64_MAX, 1,
                             DISTVM_PAGE_ZERO, NULL);
            expect_decode_error(b, &limits, "RAMBlock");
            distvm_wire_page(b, page_types[i], 1, 0, blk,
                             block_pages[blk] << 32, 1, DISTVM_PAGE_ZERO,
                             NULL);
            expect_decode_error(b, &limits, "RAMBlock");
        }
        /* block index == nr_blocks */
        distvm_wire_page(b, page_types[i], 1, 0, limits.nr_blocks, 0, 1,
                         DISTVM_PAGE_ZERO, NULL);
        expect_decode_error(b, &limits, "RAMBlock");
        distvm_wire_page(b, page_types[i], 1, 0, UINT32_MAX, 0, 1,
                         DISTVM_PAGE_ZERO, NULL);
        expect_decode_error(b, &limits, "RAMBlock");
    }
    g_byte_array_unref(b);
}

/*
 * No page message (nor a list of warm pages) is meaningful before the
 * RAMBlock table is agreed
 */
static void test_page_before_layout(void)
{
    static uint8_t data[DISTVM_PAGE_SIZE];
    GByteArray *b = g_byte_array_new();
    g_autoptr(GPtrArray) msgs = valid_messages();

    for (size_t i = 0; i < ARRAY_SIZE(page_types); i++) {
        distvm_wire_page(b, page_types[i], 1, 0, 0, 0, 1, 0, data);
        expect_decode_error(b, &limits_no_ram, "RAM layout");
        /* even if truncated */
        g_byte_array_set_size(b, HDR + 3);
        set_u32(b, OFF_LENGTH, 3);
        expect_decode_error(b, &limits_no_ram, "RAM layout");
    }

    /*
     * The other messages do not need it, but for lists of pages, a
     * manager's directory entries and an epoch's pages
     */
    for (guint i = 0; i < msgs->len; i++) {
        GByteArray *m = msgs->pdata[i];
        uint16_t type = lduw_le_p(m->data + OFF_TYPE);
        Decoded d;

        if ((type < DISTVM_MSG_PAGE_REQ || type > DISTVM_MSG_PAGE_DONE) &&
            type != DISTVM_MSG_VCPU_WARM_PAGES &&
            type != DISTVM_MSG_PAGE_REQS && type != DISTVM_MSG_MGR_ENTRIES &&
            type != DISTVM_MSG_EPOCH_PAGES) {
            decode_ok(m, &limits_no_ram, &d);
            decoded_free(&d);
        } else {
            expect_decode_error(m, &limits_no_ram, "RAM layout");
        }
    }
    g_byte_array_unref(b);
}

static void test_page_bad_flags(void)
{
    static const uint32_t flags[] = {
        0x40, 0x80, 0x100, 0x8000, 0x80000000u, 0x7f,
        DISTVM_PAGE_FLAGS_ALL | 0x40, UINT32_MAX,
    };
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(page_types); i++) {
        for (size_t j = 0; j < ARRAY_SIZE(flags); j++) {
            distvm_wire_page(b, page_types[i], 2, 0, 2, 3, 2,
                             DISTVM_PAGE_ZERO, NULL);
            set_u32(b, HDR + 4, flags[j]);
            expect_decode_error(b, &limits, "unknown flags");
        }
    }
    g_byte_array_unref(b);
}

static void test_page_reserved(void)
{
    static const uint32_t reserved[] = { 1, 0x100, 0x80000000u, UINT32_MAX };
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(page_types); i++) {
        for (size_t j = 0; j < ARRAY_SIZE(reserved); j++) {
            distvm_wire_begin(b, page_types[i], 1, 0);
            distvm_wire_put_u32(b, 0);                  /* block */
            distvm_wire_put_u32(b, DISTVM_PAGE_ZERO);   /* flags */
            distvm_wire_put_u64(b, 0);                  /* page */
            distvm_wire_put_u32(b, 1);                  /* node */
            distvm_wire_put_u32(b, reserved[j]);
            distvm_wire_end(b);
            expect_decode_error(b, &limits, "reserved");
        }
    }
    g_byte_array_unref(b);
}

/* A message from a node outside the cluster */
static void test_bad_sender(void)
{
    static const uint32_t srcs[] = { 4, 5, DISTVM_WIRE_MAX_NODES, UINT32_MAX };
    g_autoptr(GPtrArray) msgs = valid_messages();

    for (guint i = 0; i < msgs->len; i++) {
        for (size_t j = 0; j < ARRAY_SIZE(srcs); j++) {
            GByteArray *b = buf_dup(msgs->pdata[i]);

            set_u32(b, OFF_SRC, srcs[j]);
            expect_decode_error(b, &limits, "in its sender");
            g_byte_array_unref(b);
        }
    }
}

static void test_page_bad_node(void)
{
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(page_types); i++) {
        distvm_wire_page(b, page_types[i], 0, 0, 0, 0, 4, DISTVM_PAGE_ZERO,
                         NULL);
        expect_decode_error(b, &limits, "in its requester");
        distvm_wire_page(b, page_types[i], 0, 0, 0, 0, UINT32_MAX,
                         DISTVM_PAGE_ZERO, NULL);
        expect_decode_error(b, &limits, "in its requester");
    }
    g_byte_array_unref(b);
}

/*
 * A PAGE_REQ on behalf of another node is well formed: who may ask for
 * what is the page protocol's to refuse (distvm-ram.c), and a refused
 * message does not cost the connection as a malformed one does.
 */
static void test_page_req_on_behalf(void)
{
    GByteArray *b = g_byte_array_new();

    for (uint32_t src = 0; src < limits.nodes; src++) {
        for (uint32_t node = 0; node < limits.nodes; node++) {
            Decoded d;

            distvm_wire_page(b, DISTVM_MSG_PAGE_REQ, src, 1, 0, 0, node,
                             DISTVM_PAGE_WRITE, NULL);
            decode_ok(b, &limits, &d);
            g_assert_cmpuint(d.msg.u.page.node, ==, node);
            decoded_free(&d);
        }
    }
    g_byte_array_unref(b);
}

static void test_vcpu_out_of_range(void)
{
    static const uint32_t cpus[] = { 8, 9, 64, 0x80000000u, UINT32_MAX };
    static const uint8_t state[16];
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(vcpu_types); i++) {
        DistvmMsgType t = vcpu_types[i];
        const char *name = distvm_msg_type_name(t);
        g_autofree char *one = g_strdup_printf(
            "%s message for vCPU 1; there are 1", name);

        for (size_t j = 0; j < ARRAY_SIZE(cpus); j++) {
            g_autofree char *what = g_strdup_printf(
                "%s message for vCPU %" PRIu32 "; there are 8", name, cpus[j]);

            distvm_wire_vcpu(b, t, 1, cpus[j], 1, 2, IPI(0, 0x30, 0), state,
                             sizeof(state));
            expect_decode_error(b, &limits, what);
            expect_decode_error(b, &limits_no_ram, what);
        }

        /* The limit is the machine's, and applies to the index itself */
        distvm_wire_vcpu(b, t, 1, 1, 1, 2, IPI(0, 0x30, 0), state,
                         sizeof(state));
        expect_decode_error(b, &limits_one_vcpu_4nodes, one);
    }
    g_byte_array_unref(b);
}

/*
 * Limits with no vCPUs refuse every vCPU and I/O message (both start with
 * the vCPU index), and nothing else
 */
static void test_vcpu_no_vcpus(void)
{
    static const DistvmWireLimits no_vcpus = {
        .nodes = 4,
        .nr_vcpus = 0,
        .nr_blocks = ARRAY_SIZE(block_pages),
        .block_pages = block_pages,
    };
    g_autoptr(GPtrArray) msgs = valid_messages();
    bool seen[DISTVM_MSG__MAX] = { false };

    for (guint i = 0; i < msgs->len; i++) {
        GByteArray *m = msgs->pdata[i];
        uint16_t type = lduw_le_p(m->data + OFF_TYPE);
        Decoded d;

        if (is_vcpu_type(type) || is_io_type(type) ||
            type == DISTVM_MSG_VCPU_WARM_PAGES ||
            type == DISTVM_MSG_CPU_PLUG || type == DISTVM_MSG_CPU_PLUG_ACK ||
            type == DISTVM_MSG_CPU_UNPLUG) {
            g_autofree char *what = g_strdup_printf(
                "%s message for vCPU %" PRIu32 "; there are 0",
                distvm_msg_type_name(type), (uint32_t)ldl_le_p(m->data + HDR));

            expect_decode_error(m, &no_vcpus, what);
            seen[type] = true;
        } else if (type == DISTVM_MSG_EPOCH_STATE &&
                   (ldl_le_p(m->data + HDR + 8) == DISTVM_EPOCH_STATE_VCPU ||
                    ldl_le_p(m->data + HDR + 8) ==
                    DISTVM_EPOCH_STATE_VCPU_COPY)) {
            /*
             * the state of a vCPU, or its copy; but the devices' state
             * is no vCPU's
             */
            g_autofree char *what = state_error(m, m->len - HDR -
                                                   EPOCH_STATE_FIXED);
            g_autofree char *got = decode_error(m, &no_vcpus);

            g_assert_cmpstr(got, ==, what);
            seen[type] = true;
        } else if (type == DISTVM_MSG_EPOCH &&
                   ldl_le_p(m->data + HDR + 24)) {
            /* vCPU states sent or stored; none of an epoch without */
            g_autofree char *what = epoch_error(ldl_le_p(m->data + HDR),
                                                ldq_le_p(m->data + HDR + 8),
                                                ldl_le_p(m->data + HDR + 24));
            g_autofree char *got = decode_error(m, &no_vcpus);

            g_assert_cmpstr(got, ==, what);
            seen[type] = true;
        } else {
            decode_ok(m, &no_vcpus, &d);
            decoded_free(&d);
        }
    }
    g_assert_true(seen[DISTVM_MSG_EPOCH]);
    for (size_t i = 0; i < ARRAY_SIZE(vcpu_types); i++) {
        g_assert_true(seen[vcpu_types[i]]);
    }
    g_assert_true(seen[DISTVM_MSG_VCPU_WARM_PAGES]);
    g_assert_true(seen[DISTVM_MSG_CPU_PLUG]);
    g_assert_true(seen[DISTVM_MSG_CPU_PLUG_ACK]);
    g_assert_true(seen[DISTVM_MSG_CPU_UNPLUG]);
    g_assert_true(seen[DISTVM_MSG_EPOCH_STATE]);
    for (size_t i = 0; i < ARRAY_SIZE(io_types); i++) {
        g_assert_true(seen[io_types[i]]);
    }
}

static void test_vcpu_bad_node(void)
{
    static const uint32_t nodes[] = {
        4, 5, DISTVM_WIRE_MAX_NODES, 0x80000000u, UINT32_MAX,
    };
    static const uint8_t state[8];
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(vcpu_types); i++) {
        DistvmMsgType t = vcpu_types[i];
        const char *name = distvm_msg_type_name(t);

        for (size_t j = 0; j < ARRAY_SIZE(nodes); j++) {
            g_autofree char *from = g_strdup_printf(
                "%s message names node %" PRIu32 " in its source; the "
                "cluster has 4", name, nodes[j]);
            g_autofree char *to = g_strdup_printf(
                "%s message names node %" PRIu32 " in its destination; the "
                "cluster has 4", name, nodes[j]);

            distvm_wire_vcpu(b, t, 0, 3, nodes[j], 1, IPI(5, 0, 0), state,
                             sizeof(state));
            expect_decode_error(b, &limits, from);
            distvm_wire_vcpu(b, t, 0, 3, 1, nodes[j], IPI(5, 0, 0), state,
                             sizeof(state));
            expect_decode_error(b, &limits, to);
            distvm_wire_vcpu(b, t, 0, 3, nodes[j], nodes[j], IPI(5, 0, 0),
                             state, sizeof(state));
            expect_decode_error(b, &limits, "in its source");
        }

        /* The sender is checked first */
        distvm_wire_vcpu(b, t, 4, 3, 4, 4, IPI(5, 0, 0), state,
                         sizeof(state));
        expect_decode_error(b, &limits, "in its sender");
    }
    g_byte_array_unref(b);
}

/*
 * The reason of a move (VCPU_MOVE, VCPU_STATE, VCPU_MOVED) is a
 * DistvmMoveWhy, DISTVM_MOVE_DRAIN (6) the last; the field is zero in the
 * other VCPU_* messages.
 */
static void test_vcpu_reason(void)
{
    static const uint32_t reasons[] = {
        0, 1, 2, 3, 4, 5, 6, 7, 0x100, 0x80000000u, UINT32_MAX,
    };
    static const uint32_t encoded[] = {
        DISTVM_MOVE_COMMAND, DISTVM_MOVE_POLICY, DISTVM_MOVE_TIER,
        DISTVM_MOVE_GUEST, DISTVM_MOVE_RESIDENCY, DISTVM_MOVE_CONSOLIDATE,
        DISTVM_MOVE_DRAIN,
    };
    GByteArray *b = g_byte_array_new();

    /* the values are on the wire */
    g_assert_cmpuint(DISTVM_MOVE_RESIDENCY, ==, 4);
    g_assert_cmpuint(DISTVM_MOVE_CONSOLIDATE, ==, 5);
    g_assert_cmpuint(DISTVM_MOVE_DRAIN, ==, 6);
    g_assert_cmpuint(DISTVM_MOVE__MAX, ==, 7);
    g_assert_false(distvm_move_by_policy(DISTVM_MOVE_RESIDENCY));
    g_assert_false(distvm_move_by_policy(DISTVM_MOVE_DRAIN));
    g_assert_true(distvm_move_by_policy(DISTVM_MOVE_CONSOLIDATE));

    for (size_t i = 0; i < ARRAY_SIZE(vcpu_types); i++) {
        DistvmMsgType t = vcpu_types[i];
        bool move = t == DISTVM_MSG_VCPU_MOVE || t == DISTVM_MSG_VCPU_STATE ||
                    t == DISTVM_MSG_VCPU_MOVED;
        /* a valid value for each type: VCPU_NODES' is a node mask */
        uint64_t value = t == DISTVM_MSG_VCPU_NODES ? 0x5 : IPI(1, 0x41, 1);

        for (size_t j = 0; j < ARRAY_SIZE(reasons); j++) {
            g_autofree char *what = g_strdup_printf(
                "%s message with reason %" PRIu32, distvm_msg_type_name(t),
                reasons[j]);

            distvm_wire_begin(b, t, 2, 0);
            distvm_wire_put_u32(b, 1);                  /* cpu */
            distvm_wire_put_u32(b, 2);                  /* from */
            distvm_wire_put_u32(b, 3);                  /* to */
            distvm_wire_put_u32(b, reasons[j]);
            distvm_wire_put_u64(b, value);
            if (t == DISTVM_MSG_VCPU_STATE) {
                distvm_wire_put_bytes(b, "state", 5);
            }
            distvm_wire_end(b);
            if (reasons[j] >= (move ? DISTVM_MOVE__MAX : 1)) {
                expect_decode_error(b, &limits, what);
            } else {
                /* the layout above is right */
                Decoded d;

                decode_ok(b, &limits, &d);
                g_assert_cmpuint(d.msg.u.vcpu.cpu, ==, 1);
                g_assert_cmpuint(d.msg.u.vcpu.from, ==, 2);
                g_assert_cmpuint(d.msg.u.vcpu.to, ==, 3);
                g_assert_cmpuint(d.msg.u.vcpu.reason, ==, reasons[j]);
                g_assert_cmphex(d.msg.u.vcpu.value, ==, value);
                decoded_free(&d);
            }
        }
        /* the encoder of moves puts it there, whatever the reason */
        for (size_t j = 0; move && j < ARRAY_SIZE(encoded); j++) {
            Decoded d;

            distvm_wire_vcpu_move(b, t, 2, 1, 2, 3, encoded[j], 7,
                                  "state", 5);
            g_assert_cmpuint(ldl_le_p(b->data + HDR + 12), ==, encoded[j]);
            decode_ok(b, &limits, &d);
            g_assert_cmpuint(d.msg.u.vcpu.reason, ==, encoded[j]);
            g_assert_cmpuint(d.msg.u.vcpu.cpu, ==, 1);
            g_assert_cmpuint(d.msg.u.vcpu.from, ==, 2);
            g_assert_cmpuint(d.msg.u.vcpu.to, ==, 3);
            g_assert_cmphex(d.msg.u.vcpu.value, ==, 7);
            decoded_free(&d);
        }
        if (move) {
            /* and refuses the one after the last */
            g_autofree char *what = g_strdup_printf(
                "%s message with reason 7", distvm_msg_type_name(t));

            distvm_wire_vcpu_move(b, t, 2, 1, 2, 3, DISTVM_MOVE__MAX, 7,
                                  "state", 5);
            expect_decode_error(b, &limits, what);
        } else {
            /* a residency move's reason is no IPI's or APIC's */
            g_autofree char *what = g_strdup_printf(
                "%s message with reason 4", distvm_msg_type_name(t));

            distvm_wire_vcpu_move(b, t, 2, 1, 2, 3, DISTVM_MOVE_RESIDENCY,
                                  value, NULL, 0);
            expect_decode_error(b, &limits, what);
        }
    }
    g_byte_array_unref(b);
}

/* POLICY: one u32, a DistvmPolicy, from any node */
static void test_policy(void)
{
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (uint32_t p = 0; p < DISTVM_POLICY_COUNT; p++) {
        distvm_wire_policy(b, 3, p);
        g_assert_cmpuint(b->len, ==, HDR + 4);
        decode_ok(b, &limits, &d);
        check_hdr(&d.msg.hdr, DISTVM_MSG_POLICY, 4, 3, 0);
        g_assert_cmpuint(d.msg.u.policy, ==, p);
        decoded_free(&d);
    }
    distvm_wire_policy(b, 1, DISTVM_POLICY_COUNT);
    expect_decode_error(b, &limits, "POLICY message with policy 2");
    distvm_wire_policy(b, 1, UINT32_MAX);
    expect_decode_error(b, &limits, "POLICY message with policy 4294967295");
    distvm_wire_begin(b, DISTVM_MSG_POLICY, 1, 0);
    distvm_wire_end(b);
    expect_decode_error(b, &limits, "POLICY");
    g_byte_array_unref(b);
}

/*
 * @n pages that exist, spread over the blocks, the i-th with flags
 * @flags[i % @nr_flags]
 */
static DistvmPageRef *page_refs_new(uint32_t n, const uint32_t *flags,
                                    size_t nr_flags)
{
    DistvmPageRef *refs = g_new(DistvmPageRef, n);

    for (uint32_t i = 0; i < n; i++) {
        refs[i] = (DistvmPageRef) {
            .block = i % 3, .flags = flags[i % nr_flags],
            .page = (i * 7919ull) % block_pages[i % 3],
        };
    }
    return refs;
}

/*
 * VCPU_WARM_PAGES: a vCPU, a count, then count pages (block, flags, page)
 * that exist, with no flag but DISTVM_WARM_WRITE
 */
static void test_warm_pages(void)
{
    static const uint32_t counts[] = { 0, 1, 3, DISTVM_WARM_PAGES_MAX };
    static const uint32_t warm_flags[] = { 0, DISTVM_WARM_WRITE };
    g_autofree DistvmPageRef *pages =
        page_refs_new(DISTVM_WARM_PAGES_MAX + 1, warm_flags,
                      ARRAY_SIZE(warm_flags));
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (size_t i = 0; i < ARRAY_SIZE(counts); i++) {
        distvm_wire_warm_pages(b, 2, 7, pages, counts[i]);
        g_assert_cmpuint(b->len, ==, HDR + 8 + 16 * counts[i]);
        decode_ok(b, &limits, &d);
        check_hdr(&d.msg.hdr, DISTVM_MSG_VCPU_WARM_PAGES, 8 + 16 * counts[i],
                  2, 0);
        g_assert_cmpuint(d.msg.u.warm.cpu, ==, 7);
        g_assert_cmpuint(d.msg.u.warm.count, ==, counts[i]);
        g_assert_cmpmem(d.msg.u.warm.pages, counts[i] * sizeof(*pages),
                        pages, counts[i] * sizeof(*pages));
        decoded_free(&d);
    }

    distvm_wire_warm_pages(b, 2, 7, pages, 1);
    expect_decode_error(b, &limits_no_ram, "VCPU_WARM_PAGES message before "
                        "the RAM layout was agreed");
    distvm_wire_warm_pages(b, 2, 8, pages, 1);
    expect_decode_error(b, &limits, "VCPU_WARM_PAGES message for vCPU 8; "
                        "there are 8");
    distvm_wire_warm_pages(b, 2, 0, pages, DISTVM_WARM_PAGES_MAX + 1);
    expect_decode_error(b, &limits, "VCPU_WARM_PAGES message with 513 pages "
                        "(limit 512)");
    /* a count that the pages do not match, either way */
    distvm_wire_warm_pages(b, 2, 0, pages, 2);
    stl_le_p(b->data + HDR + 4, 3);
    expect_decode_error(b, &limits, "VCPU_WARM_PAGES message is truncated");
    stl_le_p(b->data + HDR + 4, 1);
    expect_decode_error(b, &limits, "VCPU_WARM_PAGES message has 16 bytes of "
                        "trailing garbage");
    distvm_wire_begin(b, DISTVM_MSG_VCPU_WARM_PAGES, 2, 0);
    distvm_wire_put_u32(b, 0);
    distvm_wire_end(b);
    expect_decode_error(b, &limits, "VCPU_WARM_PAGES message is truncated");
    /* pages that do not exist, and unknown flags */
    pages[0] = (DistvmPageRef) { .block = 3 };
    distvm_wire_warm_pages(b, 2, 0, pages, 1);
    expect_decode_error(b, &limits, "VCPU_WARM_PAGES message for page 0 of "
                        "RAMBlock 3, which does not exist");
    pages[0] = (DistvmPageRef) { .block = 1, .page = 1 };
    distvm_wire_warm_pages(b, 2, 0, pages, 1);
    expect_decode_error(b, &limits, "VCPU_WARM_PAGES message for page 1 of "
                        "RAMBlock 1, which does not exist");
    pages[0] = (DistvmPageRef) { .block = 2, .page = 262144 };
    distvm_wire_warm_pages(b, 2, 0, pages, 1);
    expect_decode_error(b, &limits, "which does not exist");
    for (int bit = 1; bit < 32; bit++) {
        pages[0] = (DistvmPageRef) { .block = 2, .flags = 1u << bit };
        distvm_wire_warm_pages(b, 2, 0, pages, 1);
        expect_decode_error(b, &limits, "VCPU_WARM_PAGES message with unknown "
                            "page flags");
    }
    g_byte_array_unref(b);
}

/*
 * PAGE_REQS: a count, then count requests (block, flags, page) for pages
 * that exist, with no flag but those of a PAGE_REQ
 */
static void test_page_reqs(void)
{
    static const uint32_t counts[] = { 1, 3, DISTVM_PAGE_REQS_MAX };
    static const uint32_t req_flags[] = {
        0, DISTVM_PAGE_WRITE, DISTVM_PAGE_WRITE | DISTVM_PAGE_HAS_COPY,
    };
    g_autofree DistvmPageRef *reqs =
        page_refs_new(DISTVM_PAGE_REQS_MAX + 1, req_flags,
                      ARRAY_SIZE(req_flags));
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (size_t i = 0; i < ARRAY_SIZE(counts); i++) {
        distvm_wire_page_reqs(b, 2, reqs, counts[i]);
        g_assert_cmpuint(b->len, ==, HDR + 4 + 16 * counts[i]);
        decode_ok(b, &limits, &d);
        check_hdr(&d.msg.hdr, DISTVM_MSG_PAGE_REQS, 4 + 16 * counts[i], 2, 0);
        g_assert_cmpuint(d.msg.u.reqs.count, ==, counts[i]);
        g_assert_cmpmem(d.msg.u.reqs.reqs, counts[i] * sizeof(*reqs),
                        reqs, counts[i] * sizeof(*reqs));
        decoded_free(&d);
    }

    distvm_wire_page_reqs(b, 2, reqs, 1);
    expect_decode_error(b, &limits_no_ram, "PAGE_REQS message before the RAM "
                        "layout was agreed");
    distvm_wire_page_reqs(b, 2, reqs, 0);
    expect_decode_error(b, &limits, "PAGE_REQS message without a page");
    distvm_wire_page_reqs(b, 2, reqs, DISTVM_PAGE_REQS_MAX + 1);
    expect_decode_error(b, &limits, "PAGE_REQS message with 513 pages "
                        "(limit 512)");
    /* a count that the requests do not match, either way */
    distvm_wire_page_reqs(b, 2, reqs, 2);
    stl_le_p(b->data + HDR, 3);
    expect_decode_error(b, &limits, "PAGE_REQS message is truncated");
    stl_le_p(b->data + HDR, 1);
    expect_decode_error(b, &limits, "PAGE_REQS message has 16 bytes of "
                        "trailing garbage");
    distvm_wire_begin(b, DISTVM_MSG_PAGE_REQS, 2, 0);
    distvm_wire_end(b);
    expect_decode_error(b, &limits, "PAGE_REQS message is truncated");
    /* pages that do not exist, and flags a PAGE_REQ does not have */
    reqs[0] = (DistvmPageRef) { .block = 3 };
    distvm_wire_page_reqs(b, 2, reqs, 1);
    expect_decode_error(b, &limits, "PAGE_REQS message for page 0 of "
                        "RAMBlock 3, which does not exist");
    reqs[0] = (DistvmPageRef) { .block = 1, .page = 1 };
    distvm_wire_page_reqs(b, 2, reqs, 1);
    expect_decode_error(b, &limits, "PAGE_REQS message for page 1 of "
                        "RAMBlock 1, which does not exist");
    for (int bit = 0; bit < 32; bit++) {
        if ((1u << bit) & DISTVM_PAGE_REQ_FLAGS) {
            continue;
        }
        reqs[0] = (DistvmPageRef) { .block = 2, .flags = 1u << bit };
        distvm_wire_page_reqs(b, 2, reqs, 1);
        expect_decode_error(b, &limits, "PAGE_REQS message with unknown "
                            "page flags");
    }
    g_byte_array_unref(b);
}

/*
 * A MEM_PLUG of @mem from @src with @seq: its layout, and its decoding
 * under @lim
 */
static void check_mem_plug(const DistvmWireLimits *lim, uint32_t src,
                           uint64_t seq, const DistvmMsgMemPlug *mem)
{
    size_t tlen = strlen(mem->backend_type);
    size_t ilen = strlen(mem->backend_id);
    size_t dlen = strlen(mem->device);
    uint32_t length = MEM_PLUG_FIXED + tlen + ilen + dlen;
    GByteArray *b = g_byte_array_new();
    const uint8_t *p;
    Decoded d;

    distvm_wire_mem_plug(b, src, seq, mem);
    g_assert_cmpuint(b->len, ==, HDR + length);

    /* slot, size, str backend_type, str backend_id, str device */
    p = b->data + HDR;
    g_assert_cmpuint((uint32_t)ldl_le_p(p), ==, mem->slot);
    g_assert_cmphex(ldq_le_p(p + 4), ==, mem->size);
    p += 12;
    g_assert_cmpuint((uint32_t)ldl_le_p(p), ==, tlen);
    g_assert(memcmp(p + 4, mem->backend_type, tlen) == 0);
    p += 4 + tlen;
    g_assert_cmpuint((uint32_t)ldl_le_p(p), ==, ilen);
    g_assert(memcmp(p + 4, mem->backend_id, ilen) == 0);
    p += 4 + ilen;
    g_assert_cmpuint((uint32_t)ldl_le_p(p), ==, dlen);
    g_assert(memcmp(p + 4, mem->device, dlen) == 0);

    decode_ok(b, lim, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_MEM_PLUG, length, src, seq);
    g_assert_cmpuint(d.msg.u.mem.slot, ==, mem->slot);
    g_assert_cmphex(d.msg.u.mem.size, ==, mem->size);
    /* the strings are copies, not pointers into the payload */
    g_free(d.payload);
    d.payload = NULL;
    g_assert_cmpstr(d.msg.u.mem.backend_type, ==, mem->backend_type);
    g_assert_cmpstr(d.msg.u.mem.backend_id, ==, mem->backend_id);
    g_assert_cmpstr(d.msg.u.mem.device, ==, mem->device);
    g_assert_null(d.msg.u.mem.error);
    decoded_free(&d);

    g_byte_array_unref(b);
}

/*
 * MEM_PLUG: a RAMBlock index below DISTVM_WIRE_MAX_BLOCKS, a non-zero
 * whole number of pages, and three non-empty strings; the header's seq
 * names the plug
 */
static void test_mem_plug(void)
{
    static const uint32_t slots[] = {
        0, 1, 2, 3, 4, 511, 512, DISTVM_WIRE_MAX_BLOCKS - 1,
    };
    static const uint64_t sizes[] = {
        DISTVM_PAGE_SIZE, 2 * DISTVM_PAGE_SIZE, UINT64_C(128) << 20,
        UINT64_C(1) << 32, UINT64_C(0x100000001000), UINT64_C(1) << 63,
        MEM_SIZE_MAX,
    };
    char *big = long_str(DISTVM_WIRE_MAX_STR);
    DistvmMsgMemPlug mem = mem_plug_dimm;

    for (size_t i = 0; i < ARRAY_SIZE(slots); i++) {
        for (size_t j = 0; j < ARRAY_SIZE(sizes); j++) {
            mem.slot = slots[i];
            mem.size = sizes[j];
            check_mem_plug(&limits, 0, i * 100 + j + 1, &mem);
        }
    }

    /* the longest strings and the shortest */
    mem = (DistvmMsgMemPlug) {
        .slot = 7, .size = DISTVM_PAGE_SIZE,
        .backend_type = big, .backend_id = big, .device = big,
    };
    check_mem_plug(&limits, 0, 1, &mem);
    mem.backend_type = (char *)"t";
    mem.backend_id = (char *)"i";
    mem.device = (char *)"d";
    check_mem_plug(&limits, 0, 1, &mem);

    /*
     * The slot is bounded by the wire's limit, not by the agreed RAMBlock
     * table: the plugged block is a new one.  Neither RAM layout nor vCPUs
     * are needed.
     */
    mem = mem_plug_dimm;
    mem.slot = ARRAY_SIZE(block_pages);
    check_mem_plug(&limits, 0, 5, &mem);
    check_mem_plug(&limits_no_ram, 0, 5, &mem);
    check_mem_plug(&limits_nodes_only, 0, 5, &mem);
    mem.slot = DISTVM_WIRE_MAX_BLOCKS - 1;
    check_mem_plug(&limits_no_ram, 0, 5, &mem);

    /*
     * The decoder takes it from any node of the cluster, with any seq;
     * that only home sends it is the role check's
     */
    for (uint32_t src = 0; src < limits.nodes; src++) {
        check_mem_plug(&limits, src, 0, &mem_plug_dimm);
        check_mem_plug(&limits, src, UINT64_MAX, &mem_plug_dimm);
    }

    g_free(big);
}

/*
 * A MEM_PLUG_ACK of RAMBlock @slot from @src with @seq and @error (NULL
 * sends an empty one): its layout, and its decoding under @lim
 */
static void check_mem_plug_ack(const DistvmWireLimits *lim, uint32_t src,
                               uint64_t seq, uint32_t slot, const char *error)
{
    size_t elen = error ? strlen(error) : 0;
    uint32_t length = MEM_ACK_FIXED + elen;
    GByteArray *b = g_byte_array_new();
    const uint8_t *p;
    Decoded d;

    distvm_wire_mem_plug_ack(b, src, seq, slot, error);
    g_assert_cmpuint(b->len, ==, HDR + length);

    /* slot, str error */
    p = b->data + HDR;
    g_assert_cmpuint((uint32_t)ldl_le_p(p), ==, slot);
    g_assert_cmpuint((uint32_t)ldl_le_p(p + 4), ==, elen);
    g_assert(elen == 0 || memcmp(p + 8, error, elen) == 0);

    decode_ok(b, lim, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_MEM_PLUG_ACK, length, src, seq);
    g_assert_cmpuint(d.msg.u.mem.slot, ==, slot);
    g_free(d.payload);
    d.payload = NULL;
    /* an empty error, not none, when plugged */
    g_assert_nonnull(d.msg.u.mem.error);
    g_assert_cmpstr(d.msg.u.mem.error, ==, error ? error : "");
    /* nothing of a MEM_PLUG */
    g_assert_cmpuint(d.msg.u.mem.size, ==, 0);
    g_assert_null(d.msg.u.mem.backend_type);
    g_assert_null(d.msg.u.mem.backend_id);
    g_assert_null(d.msg.u.mem.device);
    decoded_free(&d);

    g_byte_array_unref(b);
}

/* MEM_PLUG_ACK: a RAMBlock index and an error, empty if plugged */
static void test_mem_plug_ack(void)
{
    static const uint32_t slots[] = {
        0, 1, 3, 511, DISTVM_WIRE_MAX_BLOCKS - 1,
    };
    char *big = long_str(DISTVM_WIRE_MAX_STR);
    const char *const errors[] = {
        NULL, "", "x", "cannot allocate memory",
        "memory-backend-ram: property 'size' of 134217728 bytes: "
        "No space left on device", big,
    };

    for (size_t i = 0; i < ARRAY_SIZE(slots); i++) {
        for (size_t j = 0; j < ARRAY_SIZE(errors); j++) {
            check_mem_plug_ack(&limits, 1 + j % 3, i * 100 + j, slots[i],
                               errors[j]);
        }
    }

    /* the seq of the plug is echoed, whatever it is */
    check_mem_plug_ack(&limits, 2, 0, 3, NULL);
    check_mem_plug_ack(&limits, 2, UINT64_MAX, 3, "");

    /* no RAM layout and no vCPUs are needed; any sender decodes */
    check_mem_plug_ack(&limits_no_ram, 3, 9, DISTVM_WIRE_MAX_BLOCKS - 1, "");
    check_mem_plug_ack(&limits_nodes_only, 1, 9, 3, "failed");
    for (uint32_t src = 0; src < limits.nodes; src++) {
        check_mem_plug_ack(&limits, src, 9, 3, "");
    }

    g_free(big);
}

/*
 * CPU_PLUG, CPU_PLUG_ACK and CPU_UNPLUG: their layout and decoding, the
 * seq of the plug passed through; a vCPU the machine does not have, or a
 * CPU_PLUG without a device, refused
 */
static void test_cpu_plug(void)
{
    static const char device[] = "{\"apic-id\": 7, \"driver\": \"d\"}";
    GByteArray *b = g_byte_array_new();
    Decoded d;

    distvm_wire_cpu_plug(b, 0, 77, 7, device);
    g_assert_cmpuint(b->len, ==, HDR + CPU_PLUG_FIXED + strlen(device));
    decode_ok(b, &limits, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_CPU_PLUG,
              CPU_PLUG_FIXED + strlen(device), 0, 77);
    g_assert_cmpuint(d.msg.u.cpu_plug.cpu, ==, 7);
    g_assert_cmpstr(d.msg.u.cpu_plug.device, ==, device);
    g_assert_null(d.msg.u.cpu_plug.error);
    decoded_free(&d);

    distvm_wire_cpu_plug_ack(b, 3, 77, 7, "no");
    decode_ok(b, &limits, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_CPU_PLUG_ACK, CPU_ACK_FIXED + 2, 3, 77);
    g_assert_cmpuint(d.msg.u.cpu_plug.cpu, ==, 7);
    g_assert_cmpstr(d.msg.u.cpu_plug.error, ==, "no");
    g_assert_null(d.msg.u.cpu_plug.device);
    decoded_free(&d);

    distvm_wire_cpu_unplug(b, 0, 0);
    decode_ok(b, &limits, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_CPU_UNPLUG, CPU_UNPLUG_FIXED, 0, 0);
    g_assert_cmpuint(d.msg.u.cpu_plug.cpu, ==, 0);
    g_assert_null(d.msg.u.cpu_plug.device);
    g_assert_null(d.msg.u.cpu_plug.error);
    decoded_free(&d);

    for (uint32_t cpu = limits.nr_vcpus; cpu < limits.nr_vcpus + 3; cpu++) {
        g_autofree char *what = g_strdup_printf("message for vCPU %" PRIu32
                                                "; there are %" PRIu32, cpu,
                                                limits.nr_vcpus);

        distvm_wire_cpu_plug(b, 0, 1, cpu, device);
        expect_decode_error(b, &limits, what);
        distvm_wire_cpu_plug_ack(b, 1, 1, cpu, "");
        expect_decode_error(b, &limits, what);
        distvm_wire_cpu_unplug(b, 0, cpu);
        expect_decode_error(b, &limits, what);
    }
    distvm_wire_cpu_unplug(b, 0, UINT32_MAX);
    expect_decode_error(b, &limits, "CPU_UNPLUG message for vCPU 4294967295");
    distvm_wire_cpu_plug(b, 0, 1, 1, "");
    expect_decode_error(b, &limits, "CPU_PLUG message with an empty device");
    g_byte_array_unref(b);
}

/* A MEM_UNPLUG of RAMBlock @slot from @src: its layout and its decoding */
static void check_mem_unplug(const DistvmWireLimits *lim, uint32_t src,
                             uint32_t slot)
{
    GByteArray *b = g_byte_array_new();
    Decoded d;

    distvm_wire_mem_unplug(b, src, slot);
    g_assert_cmpuint(b->len, ==, HDR + MEM_UNPLUG_FIXED);
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + HDR), ==, slot);

    decode_ok(b, lim, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_MEM_UNPLUG, MEM_UNPLUG_FIXED, src, 0);
    g_assert_cmpuint(d.msg.u.mem.slot, ==, slot);
    g_assert_cmpuint(d.msg.u.mem.size, ==, 0);
    g_assert_null(d.msg.u.mem.backend_type);
    g_assert_null(d.msg.u.mem.backend_id);
    g_assert_null(d.msg.u.mem.device);
    g_assert_null(d.msg.u.mem.error);
    decoded_free(&d);

    g_byte_array_unref(b);
}

/* MEM_UNPLUG: a RAMBlock index, of any block below the limit */
static void test_mem_unplug(void)
{
    for (uint32_t slot = 0; slot < DISTVM_WIRE_MAX_BLOCKS; slot++) {
        check_mem_unplug(&limits, 0, slot);
    }
    check_mem_unplug(&limits_no_ram, 0, DISTVM_WIRE_MAX_BLOCKS - 1);
    check_mem_unplug(&limits_nodes_only, 0, 0);
    for (uint32_t src = 0; src < limits.nodes; src++) {
        check_mem_unplug(&limits, src, 3);
    }
}

/* @slot in a message of each MEM_* type must be refused */
static void expect_mem_slot_error(const DistvmWireLimits *lim, uint32_t slot)
{
    GByteArray *b = g_byte_array_new();
    DistvmMsgMemPlug mem = mem_plug_dimm;

    for (size_t i = 0; i < ARRAY_SIZE(mem_types); i++) {
        g_autofree char *what = g_strdup_printf(
            "%s message names RAMBlock %" PRIu32 " (limit %u)",
            distvm_msg_type_name(mem_types[i]), slot,
            DISTVM_WIRE_MAX_BLOCKS);

        switch (mem_types[i]) {
        case DISTVM_MSG_MEM_PLUG:
            mem.slot = slot;
            distvm_wire_mem_plug(b, 0, 1, &mem);
            break;
        case DISTVM_MSG_MEM_PLUG_ACK:
            distvm_wire_mem_plug_ack(b, 1, 1, slot, "");
            break;
        default:
            distvm_wire_mem_unplug(b, 0, slot);
            break;
        }
        expect_decode_error(b, lim, what);
    }
    g_byte_array_unref(b);
}

/* A RAMBlock index at or above DISTVM_WIRE_MAX_BLOCKS */
static void test_mem_bad_slot(void)
{
    static const uint32_t slots[] = {
        DISTVM_WIRE_MAX_BLOCKS, DISTVM_WIRE_MAX_BLOCKS + 1,
        2 * DISTVM_WIRE_MAX_BLOCKS, 0x10000, 0x7fffffffu, 0x80000000u,
        UINT32_MAX - 1, UINT32_MAX,
    };
    GByteArray *b = g_byte_array_new();
    DistvmMsgMemPlug mem = {
        .slot = DISTVM_WIRE_MAX_BLOCKS, .size = 0,
        .backend_type = (char *)"", .backend_id = (char *)"",
        .device = (char *)"",
    };

    for (size_t i = 0; i < ARRAY_SIZE(slots); i++) {
        expect_mem_slot_error(&limits, slots[i]);
        expect_mem_slot_error(&limits_no_ram, slots[i]);
    }
    /* every slot up to 0x10000 past the limit */
    for (uint32_t slot = DISTVM_WIRE_MAX_BLOCKS; slot < 0x10000; slot += 7) {
        expect_mem_slot_error(&limits, slot);
    }

    /* the slot is checked before the size and the strings */
    distvm_wire_mem_plug(b, 0, 1, &mem);
    expect_decode_error(b, &limits, "MEM_PLUG message names RAMBlock 1024 "
                        "(limit 1024)");
    /* and before the rest is found missing */
    distvm_wire_begin(b, DISTVM_MSG_MEM_PLUG, 0, 1);
    distvm_wire_put_u32(b, DISTVM_WIRE_MAX_BLOCKS);
    distvm_wire_end(b);
    expect_decode_error(b, &limits, "MEM_PLUG message names RAMBlock 1024");
    distvm_wire_begin(b, DISTVM_MSG_MEM_PLUG_ACK, 1, 1);
    distvm_wire_put_u32(b, UINT32_MAX);
    distvm_wire_end(b);
    expect_decode_error(b, &limits, "MEM_PLUG_ACK message names RAMBlock "
                        "4294967295");
    /* but the sender comes first */
    distvm_wire_mem_unplug(b, 4, DISTVM_WIRE_MAX_BLOCKS);
    expect_decode_error(b, &limits, "in its sender");
    g_byte_array_unref(b);
}

/* A MEM_PLUG's backend is a non-zero whole number of pages */
static void test_mem_plug_bad_size(void)
{
    static const uint64_t sizes[] = {
        0, 1, 512, DISTVM_PAGE_SIZE - 1, DISTVM_PAGE_SIZE + 1,
        DISTVM_PAGE_SIZE + 512, 2 * DISTVM_PAGE_SIZE - 1,
        (UINT64_C(128) << 20) + 1, (UINT64_C(128) << 20) - 1,
        UINT64_C(1) << 11, (UINT64_C(1) << 63) + 1, (UINT64_C(1) << 63) - 1,
        MEM_SIZE_MAX + 1, UINT64_MAX - 1, UINT64_MAX,
    };
    GByteArray *b = g_byte_array_new();
    DistvmMsgMemPlug mem = mem_plug_dimm;

    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
        g_autofree char *what = g_strdup_printf(
            "MEM_PLUG message with a backend of %" PRIu64 " bytes (a "
            "non-zero multiple of 4096)", sizes[i]);

        mem.size = sizes[i];
        distvm_wire_mem_plug(b, 0, 1, &mem);
        expect_decode_error(b, &limits, what);
        expect_decode_error(b, &limits_no_ram, what);
    }
    /* every size below two pages but one page */
    for (uint64_t size = 0; size < 2 * DISTVM_PAGE_SIZE; size++) {
        if (size != DISTVM_PAGE_SIZE) {
            mem.size = size;
            distvm_wire_mem_plug(b, 0, 1, &mem);
            expect_decode_error(b, &limits, "MEM_PLUG message with a "
                                "backend of");
        }
    }

    /* the size is checked before the strings */
    mem = (DistvmMsgMemPlug) {
        .slot = 3, .size = 0, .backend_type = (char *)"",
        .backend_id = (char *)"", .device = (char *)"",
    };
    distvm_wire_mem_plug(b, 0, 1, &mem);
    expect_decode_error(b, &limits, "MEM_PLUG message with a backend of 0 "
                        "bytes");
    /* and before they are found missing */
    distvm_wire_begin(b, DISTVM_MSG_MEM_PLUG, 0, 1);
    distvm_wire_put_u32(b, 3);
    distvm_wire_put_u64(b, 100);
    distvm_wire_end(b);
    expect_decode_error(b, &limits, "MEM_PLUG message with a backend of 100 "
                        "bytes");
    g_byte_array_unref(b);
}

/* A MEM_* payload cut short, or with bytes left over */
static void test_mem_bad_length(void)
{
    static const uint32_t extra[] = { 1, 3, 4, 8, 12 };
    GByteArray *b = g_byte_array_new();
    GByteArray *plug = g_byte_array_new();
    GByteArray *ack = g_byte_array_new();
    GByteArray *unplug = g_byte_array_new();
    size_t tlen = strlen(mem_plug_dimm.backend_type);
    size_t ilen = strlen(mem_plug_dimm.backend_id);
    g_autofree char *what = NULL;
    /* where MEM_PLUG's fields end */
    const uint32_t plug_ends[] = {
        4, 12, 16 + tlen, 20 + tlen + ilen,
    };

    distvm_wire_mem_plug(plug, 0, 1, &mem_plug_dimm);
    distvm_wire_mem_plug_ack(ack, 1, 1, 3, "no memory");
    distvm_wire_mem_unplug(unplug, 0, 3);

    /* nothing at all */
    for (size_t i = 0; i < ARRAY_SIZE(mem_types); i++) {
        g_autofree char *what = g_strdup_printf(
            "%s message is truncated", distvm_msg_type_name(mem_types[i]));

        distvm_wire_empty(b, mem_types[i], i == 1, 0);
        expect_decode_error(b, &limits, what);
    }

    /* MEM_PLUG that ends after a field, or within one */
    for (size_t i = 0; i < ARRAY_SIZE(plug_ends); i++) {
        for (uint32_t cut = plug_ends[i] - 1; cut <= plug_ends[i]; cut++) {
            g_byte_array_unref(b);
            b = buf_dup(plug);
            g_byte_array_set_size(b, HDR + cut);
            set_u32(b, OFF_LENGTH, cut);
            expect_decode_error(b, &limits, "MEM_PLUG message is truncated");
        }
    }
    /* the device's length says one byte more than there is */
    g_byte_array_unref(b);
    b = buf_dup(plug);
    set_u32(b, HDR + plug_ends[3], strlen(mem_plug_dimm.device) + 1);
    expect_decode_error(b, &limits, "MEM_PLUG message is truncated");
    /* MEM_PLUG_ACK without its error, or with part of it */
    for (uint32_t cut = 4; cut < ack->len - HDR; cut++) {
        g_byte_array_unref(b);
        b = buf_dup(ack);
        g_byte_array_set_size(b, HDR + cut);
        set_u32(b, OFF_LENGTH, cut);
        expect_decode_error(b, &limits, "MEM_PLUG_ACK message is truncated");
    }
    /* MEM_UNPLUG with part of its slot */
    for (uint32_t cut = 1; cut < MEM_UNPLUG_FIXED; cut++) {
        g_byte_array_unref(b);
        b = buf_dup(unplug);
        g_byte_array_set_size(b, HDR + cut);
        set_u32(b, OFF_LENGTH, cut);
        expect_decode_error(b, &limits, "MEM_UNPLUG message is truncated");
    }

    /* bytes after the last field */
    for (size_t i = 0; i < ARRAY_SIZE(extra); i++) {
        GByteArray *const whole[] = { plug, ack, unplug };

        for (size_t j = 0; j < ARRAY_SIZE(whole); j++) {
            g_autofree char *what = g_strdup_printf(
                "%s message has %" PRIu32 " bytes of trailing garbage",
                distvm_msg_type_name(mem_types[j]), extra[i]);

            g_byte_array_unref(b);
            b = buf_dup(whole[j]);
            g_byte_array_set_size(b, b->len + extra[i]);
            memset(b->data + b->len - extra[i], 'x', extra[i]);
            set_u32(b, OFF_LENGTH, b->len - HDR);
            expect_decode_error(b, &limits, what);
        }
    }

    /* one type's payload as another's */
    g_byte_array_unref(b);
    b = buf_dup(plug);
    set_u16(b, OFF_TYPE, DISTVM_MSG_MEM_UNPLUG);
    what = g_strdup_printf("MEM_UNPLUG message has %u bytes of trailing "
                           "garbage", plug->len - HDR - MEM_UNPLUG_FIXED);
    expect_decode_error(b, &limits, what);
    /* the size's low half, 128 MiB, is read as the error's length */
    set_u16(b, OFF_TYPE, DISTVM_MSG_MEM_PLUG_ACK);
    expect_decode_error(b, &limits, "MEM_PLUG_ACK message has a string of "
                        "134217728 bytes (limit 4096)");
    g_byte_array_unref(b);
    b = buf_dup(unplug);
    set_u16(b, OFF_TYPE, DISTVM_MSG_MEM_PLUG);
    expect_decode_error(b, &limits, "MEM_PLUG message is truncated");
    set_u16(b, OFF_TYPE, DISTVM_MSG_MEM_PLUG_ACK);
    expect_decode_error(b, &limits, "MEM_PLUG_ACK message is truncated");
    g_byte_array_unref(b);
    b = buf_dup(ack);
    set_u16(b, OFF_TYPE, DISTVM_MSG_MEM_UNPLUG);
    expect_decode_error(b, &limits, "MEM_UNPLUG message has 13 bytes of "
                        "trailing garbage");
    set_u16(b, OFF_TYPE, DISTVM_MSG_MEM_PLUG);
    expect_decode_error(b, &limits, "MEM_PLUG message with a backend of");

    g_byte_array_unref(b);
    g_byte_array_unref(plug);
    g_byte_array_unref(ack);
    g_byte_array_unref(unplug);
}

/*
 * A RES_ACCESS or RES_REPLY of @res from @src with @seq: its layout, and
 * its decoding under @lim
 */
static void check_res(const DistvmWireLimits *lim, DistvmMsgType type,
                      uint32_t src, uint64_t seq, const DistvmMsgRes *res)
{
    GByteArray *b = g_byte_array_new();
    const uint8_t *p;
    Decoded d;

    distvm_wire_res(b, type, src, seq, res);
    g_assert_cmpuint(b->len, ==, HDR + RES_FIXED);

    /* addr, size, flags, data */
    p = b->data + HDR;
    g_assert_cmphex(ldq_le_p(p), ==, res->addr);
    g_assert_cmpuint((uint32_t)ldl_le_p(p + 8), ==, res->size);
    g_assert_cmphex((uint32_t)ldl_le_p(p + 12), ==, res->flags);
    g_assert_cmphex(ldq_le_p(p + 16), ==, res->data);

    decode_ok(b, lim, &d);
    check_hdr(&d.msg.hdr, type, RES_FIXED, src, seq);
    g_assert_cmphex(d.msg.u.res.addr, ==, res->addr);
    g_assert_cmpuint(d.msg.u.res.size, ==, res->size);
    g_assert_cmphex(d.msg.u.res.flags, ==, res->flags);
    g_assert_cmphex(d.msg.u.res.data, ==, res->data);
    decoded_free(&d);

    g_byte_array_unref(b);
}


/* A RES_SET of @set from @src: its layout, and its decoding under @lim */
static void check_res_set(const DistvmWireLimits *lim, uint32_t src,
                          const DistvmMsgResSet *set)
{
    GByteArray *b = g_byte_array_new();
    const uint8_t *p;
    Decoded d;

    distvm_wire_res_set(b, src, set);
    g_assert_cmpuint(b->len, ==, HDR + RES_SET_FIXED);
    p = b->data + HDR;
    g_assert_cmphex(ldq_le_p(p), ==, set->base);
    g_assert_cmphex(ldq_le_p(p + 8), ==, set->size);
    g_assert_cmpuint((uint32_t)ldl_le_p(p + 16), ==, set->node);
    g_assert_cmpuint((uint32_t)ldl_le_p(p + 20), ==, set->step);

    decode_ok(b, lim, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_RES_SET, RES_SET_FIXED, src, 0);
    g_assert_cmphex(d.msg.u.res_set.base, ==, set->base);
    g_assert_cmphex(d.msg.u.res_set.size, ==, set->size);
    g_assert_cmpuint(d.msg.u.res_set.node, ==, set->node);
    g_assert_cmpuint(d.msg.u.res_set.step, ==, set->step);
    decoded_free(&d);
    g_byte_array_unref(b);
}

/*
 * RES_SET: a range of whole pages, that does not wrap, on a node of the
 * cluster, and one of the steps
 */
static void test_res_set(void)
{
    static const struct {
        uint64_t base, size;
    } ranges[] = {
        { 0, 0x1000 }, { 0x1200000, 0x400000 }, { 0x100000000ull, 1ull << 40 },
        { UINT64_MAX - 0x1fff, 0x1000 }, { 0x1000, UINT64_MAX - 0x1fff },
    };
    static const struct {
        uint64_t base, size;
    } bad[] = {
        { 0x1200000, 0 }, { 0x1200001, 0x1000 }, { 0x1200000, 0xfff },
        { UINT64_MAX - 0xfff, 0x2000 }, { 0x2000, UINT64_MAX & ~0xfffull },
        { UINT64_MAX - 0xfff, 0x1000 },     /* to the end: it wraps to 0 */
    };
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(ranges); i++) {
        for (uint32_t step = 0; step < DISTVM_RES_SET__MAX; step++) {
            check_res_set(&limits, step % limits.nodes, &(DistvmMsgResSet) {
                .base = ranges[i].base, .size = ranges[i].size,
                .node = limits.nodes - 1 - step % limits.nodes, .step = step,
            });
        }
    }
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        distvm_wire_res_set(b, 0, &(DistvmMsgResSet) {
            .base = bad[i].base, .size = bad[i].size, .node = 1,
        });
        expect_decode_error(b, &limits, "not a range of whole pages");
    }
    distvm_wire_res_set(b, 0, &(DistvmMsgResSet) {
        .base = 0x1000, .size = 0x1000, .node = limits.nodes,
    });
    expect_decode_error(b, &limits, "RES_SET message with node");
    distvm_wire_res_set(b, 0, &(DistvmMsgResSet) {
        .base = 0x1000, .size = 0x1000, .node = 1,
        .step = DISTVM_RES_SET__MAX,
    });
    expect_decode_error(b, &limits, "and step 6");
    g_byte_array_unref(b);
}

/* Sequence numbers of requests, and of the replies that echo them */
static const uint64_t res_seqs[] = {
    0, 1, 2, 0x7fffffffffffffffull, 0x8000000000000001ull, UINT64_MAX,
};

/*
 * RES_ACCESS: a read, or with DISTVM_RES_WRITE a write, of 1, 2, 4 or 8
 * bytes at a naturally aligned guest-physical address; the header's seq
 * names the request
 */
static void test_res_access(void)
{
    static const uint32_t sizes[] = { 1, 2, 4, 8 };
    static const uint64_t addrs[] = {
        0, 8, 0x1000, 0xa0000, 0xfed00000, 0x100000000ull,
        0x8000000000000000ull, UINT64_MAX & ~7ull,
    };
    uint32_t n = 0;

    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
        uint32_t size = sizes[i];
        /* the largest value of @size bytes */
        uint64_t max = size == 8 ? UINT64_MAX : (1ull << (size * 8)) - 1;

        for (size_t j = 0; j < ARRAY_SIZE(addrs); j++) {
            for (uint32_t flags = 0; flags <= DISTVM_RES_WRITE; flags++) {
                DistvmMsgRes res = {
                    .addr = addrs[j], .size = size, .flags = flags,
                    .data = flags & DISTVM_RES_WRITE ?
                            0x0123456789abcdefull & max : 0,
                };

                check_res(&limits, DISTVM_MSG_RES_ACCESS, n % 4,
                          res_seqs[n % ARRAY_SIZE(res_seqs)], &res);
                n++;
            }
        }
        /* the top of the address space, every byte of it */
        check_res(&limits, DISTVM_MSG_RES_ACCESS, 1, 7, &(DistvmMsgRes) {
            .addr = UINT64_MAX - (size - 1), .size = size,
            .flags = DISTVM_RES_WRITE, .data = max,
        });
    }
    /* one byte anywhere */
    for (uint64_t addr = 0; addr < 64; addr++) {
        check_res(&limits, DISTVM_MSG_RES_ACCESS, 2, addr, &(DistvmMsgRes) {
            .addr = addr, .size = 1, .flags = addr & 1, .data = addr & 1,
        });
    }
    check_res(&limits, DISTVM_MSG_RES_ACCESS, 2, 3, &(DistvmMsgRes) {
        .addr = UINT64_MAX, .size = 1,
    });

    /* any seq is passed through, from any node */
    for (size_t i = 0; i < ARRAY_SIZE(res_seqs); i++) {
        for (uint32_t src = 0; src < limits.nodes; src++) {
            check_res(&limits, DISTVM_MSG_RES_ACCESS, src, res_seqs[i],
                      &(DistvmMsgRes) {
                .addr = 0x7ffe0, .size = 4, .flags = DISTVM_RES_WRITE,
                .data = 0xcafe,
            });
        }
    }

    /* neither a RAM layout nor vCPUs are needed */
    check_res(&limits_no_ram, DISTVM_MSG_RES_ACCESS, 3, 99, &(DistvmMsgRes) {
        .addr = 0x100000000ull, .size = 8,
    });
    check_res(&limits_nodes_only, DISTVM_MSG_RES_ACCESS, 1, 99,
              &(DistvmMsgRes) {
        .addr = 0x2000, .size = 2, .flags = DISTVM_RES_WRITE, .data = 0xffff,
    });
    check_res(&limits_most, DISTVM_MSG_RES_ACCESS,
              DISTVM_WIRE_MAX_NODES - 1, 99, &(DistvmMsgRes) {
        .addr = 0x2000, .size = 8,
    });
}

/*
 * RES_REPLY: the request's seq, @data read and a MemTxResult in @flags;
 * nothing in it is checked but its length
 */
static void test_res_reply(void)
{
    static const uint32_t sizes[] = { 0, 1, 2, 3, 4, 8, 16, UINT32_MAX };
    static const uint64_t addrs[] = {
        0, 1, 3, 0xfff, 0xfed00001, UINT64_MAX,
    };
    /* MEMTX_OK, _ERROR, _DECODE_ERROR, _ACCESS_ERROR, and anything */
    static const uint32_t results[] = { 0, 1, 2, 4, 0x80, UINT32_MAX };
    uint32_t n = 0;

    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
        for (size_t j = 0; j < ARRAY_SIZE(addrs); j++) {
            for (size_t k = 0; k < ARRAY_SIZE(results); k++) {
                DistvmMsgRes res = {
                    .addr = addrs[j], .size = sizes[i], .flags = results[k],
                    .data = 0xfedcba9876543210ull >> (n % 64),
                };

                check_res(&limits, DISTVM_MSG_RES_REPLY, n % 4,
                          res_seqs[n % ARRAY_SIZE(res_seqs)], &res);
                n++;
            }
        }
    }

    /* the request's seq is echoed, whatever it is, by any node */
    for (size_t i = 0; i < ARRAY_SIZE(res_seqs); i++) {
        for (uint32_t src = 0; src < limits.nodes; src++) {
            check_res(&limits, DISTVM_MSG_RES_REPLY, src, res_seqs[i],
                      &(DistvmMsgRes) {
                .addr = 0x7ffe0, .size = 4, .data = 0x12345678,
            });
        }
    }

    /* neither a RAM layout nor vCPUs are needed */
    check_res(&limits_no_ram, DISTVM_MSG_RES_REPLY, 0, 5, &(DistvmMsgRes) {
        .addr = 0x1000, .size = 8, .data = UINT64_MAX,
    });
    check_res(&limits_nodes_only, DISTVM_MSG_RES_REPLY, 1, 5,
              &(DistvmMsgRes) { .flags = 2 });
}

/* A RES_ACCESS of @size bytes at @addr with @flags must be refused */
static void expect_res_error(uint64_t addr, uint32_t size, uint32_t flags,
                             const char *what)
{
    GByteArray *b = g_byte_array_new();
    DistvmMsgRes res = {
        .addr = addr, .size = size, .flags = flags, .data = 0,
    };

    distvm_wire_res(b, DISTVM_MSG_RES_ACCESS, 1, 17, &res);
    expect_decode_error(b, &limits, what);
    expect_decode_error(b, &limits_no_ram, what);
    /* the same as a reply is fine */
    check_res(&limits, DISTVM_MSG_RES_REPLY, 2, 17, &res);
    g_byte_array_unref(b);
}

/* A RES_ACCESS of 1, 2, 4 or 8 bytes only */
static void test_res_bad_size(void)
{
    static const uint32_t sizes[] = {
        0, 3, 5, 6, 7, 9, 12, 16, 32, 64, 0x100, 0x10000, 0x80000000u,
        UINT32_MAX - 7, UINT32_MAX,
    };

    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
        g_autofree char *what = g_strdup_printf(
            "RES_ACCESS message of %" PRIu32 " bytes at 0x1000", sizes[i]);

        expect_res_error(0x1000, sizes[i], 0, what);
        expect_res_error(0x1000, sizes[i], DISTVM_RES_WRITE, what);
    }
    /* every size up to 64 but the four */
    for (uint32_t size = 0; size <= 64; size++) {
        g_autofree char *what = g_strdup_printf(
            "RES_ACCESS message of %" PRIu32 " bytes", size);

        if (size != 1 && size != 2 && size != 4 && size != 8) {
            expect_res_error(0, size, DISTVM_RES_WRITE, what);
        }
    }
    /* the size is checked before the flags */
    expect_res_error(0x1000, 16, UINT32_MAX, "RES_ACCESS message of 16 "
                     "bytes at 0x1000");
}

/* A RES_ACCESS at an address that is not a multiple of its size */
static void test_res_bad_addr(void)
{
    static const uint32_t sizes[] = { 2, 4, 8 };
    static const uint64_t addrs[] = {
        0x1001, 0x1002, 0x1004, 0x1006, 0xfed00003, 0x100000001ull,
        0x8000000000000004ull, UINT64_MAX - 1, UINT64_MAX,
    };

    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
        uint32_t size = sizes[i];

        for (size_t j = 0; j < ARRAY_SIZE(addrs); j++) {
            g_autofree char *what = g_strdup_printf(
                "RES_ACCESS message of %" PRIu32 " bytes at 0x%" PRIx64,
                size, addrs[j]);

            if (addrs[j] % size) {
                expect_res_error(addrs[j], size, 0, what);
                expect_res_error(addrs[j], size, DISTVM_RES_WRITE, what);
            }
        }
        /* every misaligned address of the first 64 bytes */
        for (uint64_t addr = 0; addr < 64; addr++) {
            if (addr % size) {
                expect_res_error(addr, size, 0, "RES_ACCESS message of");
            } else {
                check_res(&limits, DISTVM_MSG_RES_ACCESS, 0, addr,
                          &(DistvmMsgRes) { .addr = addr, .size = size });
            }
        }
    }
    /* the address is checked before the flags */
    expect_res_error(0x1002, 4, 0x80, "RES_ACCESS message of 4 bytes at "
                     "0x1002");
}

/* A RES_ACCESS with a flag other than DISTVM_RES_WRITE */
static void test_res_bad_flags(void)
{
    for (int bit = 1; bit < 32; bit++) {
        g_autofree char *what = g_strdup_printf(
            "RES_ACCESS message with flags 0x%" PRIx32, 1u << bit);
        g_autofree char *what_write = g_strdup_printf(
            "RES_ACCESS message with flags 0x%" PRIx32,
            (1u << bit) | DISTVM_RES_WRITE);

        expect_res_error(0x1000, 4, 1u << bit, what);
        expect_res_error(0x1000, 4, (1u << bit) | DISTVM_RES_WRITE,
                         what_write);
    }
    expect_res_error(0, 8, UINT32_MAX, "RES_ACCESS message with flags "
                     "0xffffffff");
    expect_res_error(0, 1, ~(uint32_t)DISTVM_RES_WRITE,
                     "RES_ACCESS message with flags 0xfffffffe");
}

/* A RES_* payload cut short, or with bytes left over */
static void test_res_bad_length(void)
{
    static const uint32_t extra[] = { 1, 3, 4, 8, 12, 24 };
    static const DistvmMsgRes res = {
        .addr = 0x1000, .size = 8, .flags = DISTVM_RES_WRITE,
        .data = 0x0123456789abcdefull,
    };
    GByteArray *b = g_byte_array_new();
    GByteArray *whole = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(res_types); i++) {
        const char *name = distvm_msg_type_name(res_types[i]);
        g_autofree char *truncated = g_strdup_printf(
            "%s message is truncated", name);

        distvm_wire_res(whole, res_types[i], 1, 42, &res);

        /* nothing at all */
        distvm_wire_empty(b, res_types[i], 1, 42);
        expect_decode_error(b, &limits, truncated);

        /* every cut, within a field or after one */
        for (uint32_t cut = 0; cut < RES_FIXED; cut++) {
            g_byte_array_unref(b);
            b = buf_dup(whole);
            g_byte_array_set_size(b, HDR + cut);
            set_u32(b, OFF_LENGTH, cut);
            expect_decode_error(b, &limits, truncated);
        }
        /* cut short, it is truncated before its size is looked at */
        g_byte_array_unref(b);
        b = buf_dup(whole);
        set_u32(b, HDR + 8, 3);
        g_byte_array_set_size(b, HDR + 16);
        set_u32(b, OFF_LENGTH, 16);
        expect_decode_error(b, &limits, truncated);

        /* bytes after the last field */
        for (size_t j = 0; j < ARRAY_SIZE(extra); j++) {
            g_autofree char *what = g_strdup_printf(
                "%s message has %" PRIu32 " bytes of trailing garbage", name,
                extra[j]);

            g_byte_array_unref(b);
            b = buf_dup(whole);
            g_byte_array_set_size(b, b->len + extra[j]);
            memset(b->data + b->len - extra[j], 'x', extra[j]);
            set_u32(b, OFF_LENGTH, b->len - HDR);
            expect_decode_error(b, &limits, what);
        }
    }

    /* one type's payload as another's */
    distvm_wire_res(whole, DISTVM_MSG_RES_ACCESS, 1, 42, &res);
    g_byte_array_unref(b);
    b = buf_dup(whole);
    set_u16(b, OFF_TYPE, DISTVM_MSG_PING);
    expect_decode_error(b, &limits, "PING message has 16 bytes of trailing "
                        "garbage");
    distvm_wire_mem_unplug(b, 0, 3);
    set_u16(b, OFF_TYPE, DISTVM_MSG_RES_ACCESS);
    expect_decode_error(b, &limits, "RES_ACCESS message is truncated");
    set_u16(b, OFF_TYPE, DISTVM_MSG_RES_REPLY);
    expect_decode_error(b, &limits, "RES_REPLY message is truncated");
    /* an IO_REQ's 32 bytes are 8 too many */
    distvm_wire_io(b, DISTVM_MSG_IO_REQ, 1, &(DistvmMsgIo) {
        .cpu = 0, .space = DISTVM_IO_PORT, .size = 1, .addr = 0x3f8,
    });
    set_u16(b, OFF_TYPE, DISTVM_MSG_RES_REPLY);
    expect_decode_error(b, &limits, "RES_REPLY message has 8 bytes of "
                        "trailing garbage");

    /* the sender comes first */
    distvm_wire_res(b, DISTVM_MSG_RES_ACCESS, 4, 1, &(DistvmMsgRes) {
        .addr = 1, .size = 3, .flags = 2,
    });
    expect_decode_error(b, &limits, "in its sender");
    distvm_wire_res(b, DISTVM_MSG_RES_REPLY, UINT32_MAX, 1, &res);
    expect_decode_error(b, &limits, "in its sender");

    g_byte_array_unref(b);
    g_byte_array_unref(whole);
}

/* A VCPU_STATE without any state */
static void test_vcpu_state_empty(void)
{
    static const uint8_t state[4] = { 1, 2, 3, 4 };
    GByteArray *b = g_byte_array_new();

    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_STATE, 1, 0, 1, 2, 0, NULL, 0);
    g_assert_cmpuint(b->len, ==, HDR + VCPU_FIXED);
    expect_decode_error(b, &limits, "VCPU_STATE message without a state");
    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_STATE, 3, 7, 3, 0, UINT64_MAX, state,
                     0);
    g_assert_cmpuint(b->len, ==, HDR + VCPU_FIXED);
    expect_decode_error(b, &limits_no_ram,
                        "VCPU_STATE message without a state");

    /* A VCPU_MOVE turned into a VCPU_STATE */
    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_MOVE, 1, 0, 1, 2, 0, state,
                     sizeof(state));
    g_assert_cmpuint(b->len, ==, HDR + VCPU_FIXED);
    set_u16(b, OFF_TYPE, DISTVM_MSG_VCPU_STATE);
    expect_decode_error(b, &limits, "VCPU_STATE message without a state");

    /* and the other way: only VCPU_STATE carries a state */
    for (size_t i = 0; i < ARRAY_SIZE(vcpu_types); i++) {
        g_autofree char *what = g_strdup_printf(
            "%s message has 4 bytes of trailing garbage",
            distvm_msg_type_name(vcpu_types[i]));

        if (vcpu_types[i] == DISTVM_MSG_VCPU_STATE) {
            continue;
        }
        /* a value of 1 is valid for every type, VCPU_NODES' mask too */
        distvm_wire_vcpu(b, DISTVM_MSG_VCPU_STATE, 1, 0, 1, 2, 1, state,
                         sizeof(state));
        set_u16(b, OFF_TYPE, vcpu_types[i]);
        expect_decode_error(b, &limits, what);
    }
    g_byte_array_unref(b);
}

static bool ipi_mode_valid(uint32_t mode)
{
    return mode == 0 || mode == 1 || mode == 2 || mode == 4 || mode == 5 ||
           mode == 6;
}

static void test_vcpu_ipi_bad_delivery(void)
{
    static const uint64_t bad[] = {
        IPI(3, 2, 0), IPI(7, 0, 0), IPI(8, 0, 0),
        IPI(3, 0x30, 1), IPI(3, 0, 1), IPI(3, 1, 1), IPI(3, 0xff, 0),
        IPI(7, 0xff, 0), IPI(8, 0x30, 1),
        IPI(0x80, 0, 0), IPI(0xff, 0xff, 1),
        IPI(0, 0x30, 2), IPI(0, 0x30, 3),      /* bit 17 */
        1ull << 17, IPI(5, 0, 0) | 1ull << 17,
        1ull << 24, IPI(0, 0x30, 0) | 1ull << 24, 0xff000000ull,
        IPI(6, 0x10, 1) | 0xff000000ull,
        1ull << 32, 1ull << 63, IPI(4, 0, 0) | 1ull << 63, UINT64_MAX,
    };
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        g_autofree char *what = g_strdup_printf(
            "VCPU_IPI message with an invalid delivery 0x%" PRIx64, bad[i]);

        distvm_wire_vcpu(b, DISTVM_MSG_VCPU_IPI, 1, 3, 1, 2, bad[i], NULL, 0);
        expect_decode_error(b, &limits, what);
        expect_decode_error(b, &limits_no_ram, what);
    }

    /*
     * Every mode: the six defined ones are accepted, no other (the A20
     * line's takes no such vector)
     */
    for (uint32_t mode = 0; mode < 256; mode++) {
        uint64_t value = IPI(mode, 0xec, mode & 1);

        distvm_wire_vcpu(b, DISTVM_MSG_VCPU_IPI, 2, 0, 2, 3, value, NULL, 0);
        if (ipi_mode_valid(mode)) {
            Decoded d;

            decode_ok(b, &limits, &d);
            g_assert_cmphex(d.msg.u.vcpu.value, ==, value);
            decoded_free(&d);
        } else {
            expect_decode_error(b, &limits, "invalid delivery");
        }
    }

    /* Nothing above the trigger mode, whatever the rest */
    for (int bit = 17; bit < 64; bit++) {
        distvm_wire_vcpu(b, DISTVM_MSG_VCPU_IPI, 2, 0, 2, 3,
                         IPI(0, 0x30, 0) | 1ull << bit, NULL, 0);
        expect_decode_error(b, &limits, "invalid delivery");
        distvm_wire_vcpu(b, DISTVM_MSG_VCPU_IPI, 2, 0, 2, 3,
                         IPI(1, 0xff, 1) | 1ull << bit, NULL, 0);
        expect_decode_error(b, &limits, "invalid delivery");
    }
    g_byte_array_unref(b);
}

/* An APIC ID, logical destination, 4-bit format and 3 flags, no more */
static void test_vcpu_apic_bad_addressing(void)
{
    static const uint64_t bad[] = {
        1ull << 23, 1ull << 27, APIC(2, 0x04, 0xf) | 1ull << 23,
        APIC(0, 0, 0x800), APIC(0, 0, 0xff0), APIC(0xff, 0xff, 0x8f),
        0xff800000ull, 1ull << 24, 1ull << 31, 0xffffffffull, 1ull << 32,
        APIC(1, 1, 0) | 1ull << 32, 1ull << 63, APIC_MAX | 1ull << 63,
        ~APIC_MAX, UINT64_MAX,
    };
    static const uint8_t state[8];
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        g_autofree char *what = g_strdup_printf(
            "VCPU_APIC message with an invalid addressing 0x%" PRIx64,
            bad[i]);

        distvm_wire_vcpu(b, DISTVM_MSG_VCPU_APIC, 1, 3, 1, 2, bad[i], NULL,
                         0);
        expect_decode_error(b, &limits, what);
        expect_decode_error(b, &limits_no_ram, what);
    }

    /* Nothing above the flags, whatever the rest */
    for (int bit = DISTVM_APIC_VALUE_BITS; bit < 64; bit++) {
        uint64_t value = APIC_MAX | 1ull << bit;
        g_autofree char *what = g_strdup_printf(
            "VCPU_APIC message with an invalid addressing 0x%" PRIx64, value);

        distvm_wire_vcpu(b, DISTVM_MSG_VCPU_APIC, 2, 0, 2, 3, 1ull << bit,
                         NULL, 0);
        expect_decode_error(b, &limits, "invalid addressing");
        distvm_wire_vcpu(b, DISTVM_MSG_VCPU_APIC, 2, 0, 2, 3, value, NULL, 0);
        expect_decode_error(b, &limits, what);
    }

    /* The other vCPU messages' values are not addressings */
    for (size_t i = 0; i < ARRAY_SIZE(vcpu_types); i++) {
        DistvmMsgType t = vcpu_types[i];
        Decoded d;

        if (t == DISTVM_MSG_VCPU_APIC || t == DISTVM_MSG_VCPU_IPI ||
            t == DISTVM_MSG_VCPU_NODES) {
            continue;
        }
        distvm_wire_vcpu(b, t, 1, 3, 1, 2, 1ull << 20, state, sizeof(state));
        decode_ok(b, &limits, &d);
        g_assert_cmphex(d.msg.u.vcpu.value, ==, 1ull << 20);
        decoded_free(&d);
    }

    /* The vCPU, the reason and the nodes are checked first */
    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_APIC, 1, 8, 1, 2, UINT64_MAX, NULL,
                     0);
    expect_decode_error(b, &limits, "VCPU_APIC message for vCPU 8");
    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_APIC, 1, 3, 1, 2, UINT64_MAX, NULL,
                     0);
    set_u32(b, HDR + 12, 1);
    expect_decode_error(b, &limits, "VCPU_APIC message with reason 1");
    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_APIC, 1, 3, 4, 2, UINT64_MAX, NULL,
                     0);
    expect_decode_error(b, &limits, "in its source");
    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_APIC, 1, 3, 1, 4, UINT64_MAX, NULL,
                     0);
    expect_decode_error(b, &limits, "in its destination");
    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_APIC, 4, 3, 1, 2, UINT64_MAX, NULL,
                     0);
    expect_decode_error(b, &limits, "in its sender");
    g_byte_array_unref(b);
}

/* Under @lim, a VCPU_NODES of @mask is refused for that mask */
static void expect_vcpu_nodes_error(const DistvmWireLimits *lim,
                                    uint64_t mask)
{
    GByteArray *b = g_byte_array_new();
    g_autofree char *what = g_strdup_printf(
        "VCPU_NODES message with nodes 0x%" PRIx64, mask);

    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_NODES, 1, 0, 1, 1, mask, NULL, 0);
    expect_decode_error(b, lim, what);
    g_byte_array_unref(b);
}

/*
 * A VCPU_NODES' mask is not empty and names no node beyond the cluster;
 * its reason is zero, its vCPU one that exists, and it has its 24 bytes
 * exactly
 */
static void test_vcpu_nodes_bad(void)
{
    static const uint32_t extra[] = { 1, 3, 4, 8, 24 };
    static const uint32_t reasons[] = {
        1, DISTVM_MOVE_RESIDENCY, DISTVM_MOVE__MAX, 0x80000000u, UINT32_MAX,
    };
    static const uint32_t cpus[] = { 8, 9, 0x80000000u, UINT32_MAX };
    GByteArray *b = g_byte_array_new();
    GByteArray *whole = g_byte_array_new();

    /* no node at all, whatever the limits */
    expect_vcpu_nodes_error(&limits, 0);
    expect_vcpu_nodes_error(&limits_no_ram, 0);
    expect_vcpu_nodes_error(&limits_one_vcpu, 0);
    expect_vcpu_nodes_error(&limits_most, 0);

    /* a bit at or above the cluster's nodes, alone or with valid ones */
    for (int bit = limits.nodes; bit < 64; bit++) {
        expect_vcpu_nodes_error(&limits, 1ull << bit);
        expect_vcpu_nodes_error(&limits, 0xfull | 1ull << bit);
        expect_vcpu_nodes_error(&limits_no_ram, 1ull << bit);
    }
    for (int bit = limits_one_vcpu.nodes; bit < 64; bit++) {
        expect_vcpu_nodes_error(&limits_one_vcpu, 1ull << bit);
        expect_vcpu_nodes_error(&limits_one_vcpu, 0x3ull | 1ull << bit);
    }
    for (int bit = DISTVM_WIRE_MAX_NODES; bit < 64; bit++) {
        expect_vcpu_nodes_error(&limits_most, 1ull << bit);
    }
    expect_vcpu_nodes_error(&limits, 0x10);
    expect_vcpu_nodes_error(&limits, 0x1f);
    expect_vcpu_nodes_error(&limits, UINT64_MAX);
    expect_vcpu_nodes_error(&limits, ~0xfull);
    expect_vcpu_nodes_error(&limits_one_vcpu, 0x4);
    expect_vcpu_nodes_error(&limits_one_vcpu, 0xf);
    expect_vcpu_nodes_error(&limits_most, 1ull << DISTVM_WIRE_MAX_NODES);
    expect_vcpu_nodes_error(&limits_most, UINT64_MAX);

    /* a mask valid for four nodes is not for two */
    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_NODES, 1, 0, 1, 1, 0x4, NULL, 0);
    {
        Decoded d;

        decode_ok(b, &limits, &d);
        decoded_free(&d);
    }
    expect_decode_error(b, &limits_one_vcpu,
                        "VCPU_NODES message with nodes 0x4");

    /* the reason is zero: no VCPU_NODES is a move */
    for (size_t i = 0; i < ARRAY_SIZE(reasons); i++) {
        g_autofree char *what = g_strdup_printf(
            "VCPU_NODES message with reason %" PRIu32, reasons[i]);

        distvm_wire_vcpu_move(b, DISTVM_MSG_VCPU_NODES, 2, 1, 2, 2,
                              reasons[i], 0x5, NULL, 0);
        g_assert_cmpuint((uint32_t)ldl_le_p(b->data + HDR + 12), ==,
                         reasons[i]);
        expect_decode_error(b, &limits, what);
        expect_decode_error(b, &limits_no_ram, what);
    }

    /* a vCPU the machine has */
    for (size_t i = 0; i < ARRAY_SIZE(cpus); i++) {
        g_autofree char *what = g_strdup_printf(
            "VCPU_NODES message for vCPU %" PRIu32 "; there are 8", cpus[i]);

        distvm_wire_vcpu(b, DISTVM_MSG_VCPU_NODES, 1, cpus[i], 1, 1, 0x3,
                         NULL, 0);
        expect_decode_error(b, &limits, what);
        expect_decode_error(b, &limits_no_ram, what);
    }
    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_NODES, 1, 1, 1, 1, 0x3, NULL, 0);
    expect_decode_error(b, &limits_one_vcpu,
                        "VCPU_NODES message for vCPU 1; there are 1");

    /* the vCPU, the reason and the nodes are checked before the mask */
    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_NODES, 1, 8, 1, 1, 0, NULL, 0);
    expect_decode_error(b, &limits, "VCPU_NODES message for vCPU 8");
    distvm_wire_vcpu_move(b, DISTVM_MSG_VCPU_NODES, 1, 3, 1, 1, 1, 0, NULL,
                          0);
    expect_decode_error(b, &limits, "VCPU_NODES message with reason 1");
    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_NODES, 1, 3, 4, 1, 0, NULL, 0);
    expect_decode_error(b, &limits, "in its source");
    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_NODES, 1, 3, 1, 4, UINT64_MAX, NULL,
                     0);
    expect_decode_error(b, &limits, "in its destination");
    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_NODES, 4, 3, 1, 1, 0, NULL, 0);
    expect_decode_error(b, &limits, "in its sender");

    /* nothing, every cut, and bytes after the last field */
    distvm_wire_vcpu(whole, DISTVM_MSG_VCPU_NODES, 1, 2, 1, 1, 0x3, NULL, 0);
    g_assert_cmpuint(whole->len, ==, HDR + VCPU_FIXED);
    distvm_wire_empty(b, DISTVM_MSG_VCPU_NODES, 1, 0);
    expect_decode_error(b, &limits, "VCPU_NODES message is truncated");
    for (uint32_t cut = 0; cut < VCPU_FIXED; cut++) {
        g_byte_array_unref(b);
        b = buf_dup(whole);
        g_byte_array_set_size(b, HDR + cut);
        set_u32(b, OFF_LENGTH, cut);
        expect_decode_error(b, &limits, "VCPU_NODES message is truncated");
    }
    for (size_t i = 0; i < ARRAY_SIZE(extra); i++) {
        g_autofree char *what = g_strdup_printf(
            "VCPU_NODES message has %" PRIu32 " bytes of trailing garbage",
            extra[i]);

        g_byte_array_unref(b);
        b = buf_dup(whole);
        g_byte_array_set_size(b, b->len + extra[i]);
        memset(b->data + b->len - extra[i], 'x', extra[i]);
        set_u32(b, OFF_LENGTH, b->len - HDR);
        expect_decode_error(b, &limits, what);
    }

    /* a VCPU_STATE's state is no part of a VCPU_NODES */
    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_STATE, 1, 2, 1, 1, 0x3, "state", 5);
    set_u16(b, OFF_TYPE, DISTVM_MSG_VCPU_NODES);
    expect_decode_error(b, &limits, "VCPU_NODES message has 5 bytes of "
                        "trailing garbage");
    /* and the encoder leaves it out */
    distvm_wire_vcpu(b, DISTVM_MSG_VCPU_NODES, 1, 2, 1, 1, 0x3, "state", 5);
    g_assert_cmpuint(b->len, ==, HDR + VCPU_FIXED);

    g_byte_array_unref(b);
    g_byte_array_unref(whole);
}

static void expect_pci_config_error(GByteArray *b, uint32_t addr, uint32_t len)
{
    g_autofree char *what = g_strdup_printf(
        "PCI_CONFIG message writing %" PRIu32 " bytes at offset %" PRIu32,
        len, addr);

    distvm_wire_pci_config(b, 0, 1, "/machine/q35/mch", addr, 0, len);
    expect_decode_error(b, &limits, what);
    expect_decode_error(b, &limits_no_ram, what);
}

/* A configuration write is of 1, 2 or 4 bytes */
static void test_pci_config_bad_len(void)
{
    static const uint32_t lens[] = {
        0, 3, 5, 6, 7, 8, 16, 0x100, DISTVM_PCI_CONFIG_SPACE,
        DISTVM_PCI_CONFIG_SPACE + 1, 0x80000000u, 0x80000001u,
        UINT32_MAX - 3, UINT32_MAX - 1, UINT32_MAX,
    };
    static const uint32_t addrs[] = {
        0, 1, 4, 0x90, DISTVM_PCI_CONFIG_SPACE - 8,
        DISTVM_PCI_CONFIG_SPACE - 4, DISTVM_PCI_CONFIG_SPACE - 1,
    };
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
        for (size_t j = 0; j < ARRAY_SIZE(addrs); j++) {
            expect_pci_config_error(b, addrs[j], lens[i]);
        }
    }

    /* every length below 0x10000 but 1, 2 and 4, at offset 0 */
    for (uint32_t len = 0; len < 0x10000; len++) {
        if (len != 1 && len != 2 && len != 4) {
            expect_pci_config_error(b, 0, len);
        }
    }

    /* The sender is checked first */
    distvm_wire_pci_config(b, 4, 1, "/machine/q35/mch", 0, 0, 3);
    expect_decode_error(b, &limits, "in its sender");
    g_byte_array_unref(b);
}

/* A write must end within the configuration space, without wrapping */
static void test_pci_config_out_of_range(void)
{
    static const uint32_t lens[] = { 1, 2, 4 };
    static const uint32_t addrs[] = {
        DISTVM_PCI_CONFIG_SPACE, DISTVM_PCI_CONFIG_SPACE + 1,
        DISTVM_PCI_CONFIG_SPACE + 4, 0x10000, 0x10090, 0x7fffffffu,
        0x80000000u, 0xfffff000u, UINT32_MAX - DISTVM_PCI_CONFIG_SPACE,
        UINT32_MAX - 4, UINT32_MAX - 3, UINT32_MAX - 2, UINT32_MAX - 1,
        UINT32_MAX,
    };
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
        uint32_t len = lens[i];

        /* one byte or more past the end */
        for (uint32_t addr = DISTVM_PCI_CONFIG_SPACE - len + 1;
             addr <= DISTVM_PCI_CONFIG_SPACE + 8; addr++) {
            expect_pci_config_error(b, addr, len);
        }
        for (size_t j = 0; j < ARRAY_SIZE(addrs); j++) {
            expect_pci_config_error(b, addrs[j], len);
        }
        /* addr + len wraps around to 0 .. len - 1 */
        for (uint32_t k = 1; k <= len; k++) {
            expect_pci_config_error(b, (uint32_t)(0 - k), len);
        }
    }
    g_byte_array_unref(b);
}

/* The path's length says more than the payload holds */
static void test_pci_config_bad_path(void)
{
    static const uint32_t lens[] = {
        PCI_FIXED - 4 + 1, PCI_FIXED, 100, DISTVM_WIRE_MAX_STR,
    };
    char *big = long_str(DISTVM_WIRE_MAX_STR + 1);
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
        /* length only, then addr, val and len without any NUL byte */
        distvm_wire_begin(b, DISTVM_MSG_PCI_CONFIG, 0, 0);
        distvm_wire_put_u32(b, lens[i]);
        distvm_wire_put_u32(b, 0x01010101);
        distvm_wire_put_u32(b, 0x01010101);
        distvm_wire_put_u32(b, 0x01010101);
        distvm_wire_end(b);
        expect_decode_error(b, &limits, "PCI_CONFIG message is truncated");
    }

    /* Too long, whatever follows */
    distvm_wire_pci_config(b, 0, 1, big, 0, 0, 4);
    expect_decode_error(b, &limits, "PCI_CONFIG message has a string of "
                        "4097 bytes (limit 4096)");
    distvm_wire_begin(b, DISTVM_MSG_PCI_CONFIG, 0, 0);
    distvm_wire_put_u32(b, UINT32_MAX);
    distvm_wire_put_u32(b, 0);
    distvm_wire_put_u32(b, 0);
    distvm_wire_put_u32(b, 1);
    distvm_wire_end(b);
    expect_decode_error(b, &limits, "(limit 4096)");

    /* A bad path is refused before a bad length or offset is looked at */
    distvm_wire_begin(b, DISTVM_MSG_PCI_CONFIG, 0, 0);
    distvm_wire_put_u32(b, 3);
    distvm_wire_put_bytes(b, "a\0b", 3);
    distvm_wire_put_u32(b, UINT32_MAX);
    distvm_wire_put_u32(b, 0);
    distvm_wire_put_u32(b, 3);
    distvm_wire_end(b);
    expect_decode_error(b, &limits, "PCI_CONFIG message has a string with "
                        "a NUL byte");

    g_free(big);
    g_byte_array_unref(b);
}

/* @io sent as @type must be refused with exactly the range error */
static void expect_io_range_error(DistvmMsgType type, const DistvmMsgIo *io)
{
    GByteArray *b = g_byte_array_new();
    g_autofree char *what = g_strdup_printf(
        "%s message for %" PRIu32 " bytes at %#" PRIx64 " of space %" PRIu32
        " (data %#" PRIx64 ")", distvm_msg_type_name(type), io->size,
        io->addr, io->space, io->data);

    distvm_wire_io(b, type, 1, io);
    expect_decode_error(b, &limits, what);
    expect_decode_error(b, &limits_no_ram, what);
    g_byte_array_unref(b);
}

/* MMIO of a vCPU: aligned accesses of 1 to 8 bytes, at any address */
static void test_io_memory(void)
{
    static const uint32_t spaces[] = { DISTVM_IO_MEMORY, DISTVM_IO_SMM };
    static const uint32_t sizes[] = { 1, 2, 4, 8 };
    static const uint64_t addrs[] = {
        0, 0x10000, 0xa0000, 0xfec00010, 0xfed000f0, 1ull << 32,
        UINT64_MAX - 7,
    };

    for (size_t i = 0; i < ARRAY_SIZE(io_types); i++) {
        for (size_t j = 0; j < ARRAY_SIZE(spaces); j++) {
            for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
                uint32_t size = sizes[k];

                for (size_t l = 0; l < ARRAY_SIZE(addrs); l++) {
                    check_io(&limits, io_types[i], 1, &(DistvmMsgIo) {
                        .cpu = l % 8, .space = spaces[j], .size = size,
                        .flags = 0, .addr = addrs[l],
                        .data = size == 8 ? UINT64_MAX : IO_MAX(size),
                    });
                }
                if (size > 1) {
                    /* misaligned */
                    expect_io_range_error(io_types[i], &(DistvmMsgIo) {
                        .cpu = 1, .space = spaces[j], .size = size,
                        .flags = 0, .addr = 0xfed000f0 + size / 2,
                        .data = 0,
                    });
                }
                if (size < 8) {
                    expect_io_range_error(io_types[i], &(DistvmMsgIo) {
                        .cpu = 1, .space = spaces[j], .size = size,
                        .flags = 0, .addr = 0xfed000f0,
                        .data = (uint64_t)IO_MAX(size) + 1,
                    });
                }
            }
            expect_io_range_error(io_types[i], &(DistvmMsgIo) {
                .cpu = 1, .space = spaces[j], .size = 16, .flags = 0,
                .addr = 0xfed000f0, .data = 0,
            });
        }
    }
}

/*
 * The 8259's acknowledge cycle: a request of one byte at address 0 that
 * neither writes nor carries data; its reply carries the vector and a
 * MemTxResult
 */
static void test_io_pic_ack(void)
{

    for (size_t i = 0; i < ARRAY_SIZE(io_types); i++) {
        DistvmMsgType t = io_types[i];

        /* every vCPU below the limit, from any node */
        for (uint32_t cpu = 0; cpu < limits.nr_vcpus; cpu++) {
            for (uint32_t src = 0; src < limits.nodes; src++) {
                check_io(&limits, t, src, &(DistvmMsgIo) {
                    .cpu = cpu, .space = DISTVM_IO_PIC_ACK, .size = 1,
                });
            }
        }

        /* no RAM layout is needed; the limit is on the index itself */
        check_io(&limits_no_ram, t, 1, &(DistvmMsgIo) {
            .cpu = 7, .space = DISTVM_IO_PIC_ACK, .size = 1,
        });
        check_io(&limits_one_vcpu, t, 1, &(DistvmMsgIo) {
            .cpu = 0, .space = DISTVM_IO_PIC_ACK, .size = 1,
        });
        check_io(&limits_most, t, DISTVM_WIRE_MAX_NODES - 1, &(DistvmMsgIo) {
            .cpu = UINT32_MAX - 1, .space = DISTVM_IO_PIC_ACK, .size = 1,
        });
    }

    /* A reply: every vector, with MEMTX_OK and MEMTX_ERROR */
    for (uint32_t vector = 0; vector <= 0xff; vector++) {
        for (uint32_t flags = 0; flags <= 1; flags++) {
            check_io(&limits, DISTVM_MSG_IO_REPLY, vector % 4,
                     &(DistvmMsgIo) {
                .cpu = vector % 8, .space = DISTVM_IO_PIC_ACK, .size = 1,
                .flags = flags, .addr = 0, .data = vector,
            });
        }
    }

    /* and any MemTxResult byte, with the largest vector */
    for (uint32_t flags = 0; flags <= 0xff; flags++) {
        check_io(&limits_no_ram, DISTVM_MSG_IO_REPLY, 0, &(DistvmMsgIo) {
            .cpu = 3, .space = DISTVM_IO_PIC_ACK, .size = 1, .flags = flags,
            .data = 0xff,
        });
    }
}

/*
 * Port I/O, memory, SMM memory and the PIC's acknowledge are the only
 * address spaces
 */
static void test_io_bad_space(void)
{
    static const uint32_t spaces[] = {
        4, 5, 0xff, 0x100, 0x103, 0x80000000u, 0x80000003u, UINT32_MAX,
    };

    for (size_t i = 0; i < ARRAY_SIZE(io_types); i++) {
        for (size_t j = 0; j < ARRAY_SIZE(spaces); j++) {
            expect_io_range_error(io_types[i], &(DistvmMsgIo) {
                .cpu = 1, .space = spaces[j], .size = 1, .flags = 0,
                .addr = 0x3f8, .data = 0,
            });
            expect_io_range_error(io_types[i], &(DistvmMsgIo) {
                .cpu = 0, .space = spaces[j], .size = 4, .flags = 0,
                .addr = 0, .data = UINT32_MAX,
            });
        }
        /* every space above the last, even shaped as a PIC acknowledge */
        for (uint32_t space = DISTVM_IO_PIC_ACK + 1; space <= 0xff;
             space++) {
            expect_io_range_error(io_types[i], &(DistvmMsgIo) {
                .cpu = 2, .space = space, .size = 1, .flags = 0,
                .addr = 0, .data = 0,
            });
        }
    }
}

/* Ports are 16 bits */
static void test_io_bad_addr(void)
{
    static const uint64_t addrs[] = {
        0x10000, 0x10001, 0x1ffff, 0xffffffffu, 1ull << 32, 1ull << 63,
        UINT64_MAX - 0xffff, UINT64_MAX,
    };
    static const uint32_t sizes[] = { 1, 2, 4 };

    for (size_t i = 0; i < ARRAY_SIZE(io_types); i++) {
        for (size_t j = 0; j < ARRAY_SIZE(addrs); j++) {
            for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
                expect_io_range_error(io_types[i], &(DistvmMsgIo) {
                    .cpu = 2, .space = DISTVM_IO_PORT, .size = sizes[k],
                    .flags = 0, .addr = addrs[j], .data = 0,
                });
            }
        }
    }
}

/* A port access is of 1, 2 or 4 bytes */
static void test_io_bad_size(void)
{
    static const uint32_t sizes[] = {
        0, 3, 5, 6, 7, 8, 16, 32, 64, 0x100, 0x80000000u, UINT32_MAX,
    };

    for (size_t i = 0; i < ARRAY_SIZE(io_types); i++) {
        for (size_t j = 0; j < ARRAY_SIZE(sizes); j++) {
            expect_io_range_error(io_types[i], &(DistvmMsgIo) {
                .cpu = 3, .space = DISTVM_IO_PORT, .size = sizes[j],
                .flags = 0, .addr = 0x80, .data = 0,
            });
            expect_io_range_error(io_types[i], &(DistvmMsgIo) {
                .cpu = 3, .space = DISTVM_IO_PORT, .size = sizes[j],
                .flags = 0, .addr = 0xffff, .data = 1,
            });
        }
    }
}

/* The data must fit in the access */
static void test_io_data_too_wide(void)
{
    static const uint32_t sizes[] = { 1, 2, 4 };

    for (size_t i = 0; i < ARRAY_SIZE(io_types); i++) {
        for (size_t j = 0; j < ARRAY_SIZE(sizes); j++) {
            uint32_t size = sizes[j];
            uint64_t max = IO_MAX(size);
            uint64_t datas[] = {
                max + 1, max + 2, (max << 1) | 1, max << 8, 1ull << 32,
                1ull << 63, UINT64_MAX - max, UINT64_MAX,
            };

            for (size_t k = 0; k < ARRAY_SIZE(datas); k++) {
                expect_io_range_error(io_types[i], &(DistvmMsgIo) {
                    .cpu = 4, .space = DISTVM_IO_PORT, .size = size,
                    .flags = 0, .addr = 0x60, .data = datas[k],
                });
            }
            /* every bit just above the access */
            for (uint32_t bit = size * 8; bit < 64; bit++) {
                expect_io_range_error(io_types[i], &(DistvmMsgIo) {
                    .cpu = 4, .space = DISTVM_IO_PORT, .size = size,
                    .flags = 0, .addr = 0, .data = 1ull << bit,
                });
            }
        }
    }
}

/* @io sent as @type must be refused with exactly the flags error */
static void expect_io_flags_error_in(DistvmMsgType type,
                                     const DistvmMsgIo *io)
{
    GByteArray *b = g_byte_array_new();
    g_autofree char *what = g_strdup_printf(
        "%s message with flags %#" PRIx32, distvm_msg_type_name(type),
        io->flags);

    distvm_wire_io(b, type, 0, io);
    expect_decode_error(b, &limits, what);
    expect_decode_error(b, &limits_no_ram, what);
    g_byte_array_unref(b);
}

static void expect_io_flags_error(DistvmMsgType type, uint32_t flags)
{
    expect_io_flags_error_in(type, &(DistvmMsgIo) {
        .cpu = 5, .space = DISTVM_IO_PORT, .size = 2, .flags = flags,
        .addr = 0x1f0, .data = 0xbeef,
    });
}

/*
 * A request may only say it writes; a reply's flags are a one-byte result,
 * DISTVM_IO_STOP, DISTVM_IO_REGS and the A20 line (DISTVM_IO_A20_ON only
 * with DISTVM_IO_A20)
 */
static void test_io_bad_flags(void)
{
    static const uint32_t req_flags[] = {
        4, 5, 6, 0x80, 0xff, 0x100, 0x80000000u, 0x80000001u, UINT32_MAX,
    };
    static const uint32_t reply_flags[] = {
        0x800, 0x801, 0x8ff, 0x900, 0x1000, 0x1401, 0x10000, 0x10100,
        0x80000000u, UINT32_MAX,
    };

    for (size_t i = 0; i < ARRAY_SIZE(req_flags); i++) {
        expect_io_flags_error(DISTVM_MSG_IO_REQ, req_flags[i]);
    }
    for (uint32_t bit = 1; bit < 32; bit++) {
        if (1u << bit == DISTVM_IO_REGS ||
            1u << bit == DISTVM_IO_CONFIG_GEN) {
            continue;           /* test_io_regs(), the valid messages */
        }
        expect_io_flags_error(DISTVM_MSG_IO_REQ, 1u << bit);
        expect_io_flags_error(DISTVM_MSG_IO_REQ, 1u << bit | DISTVM_IO_WRITE);
    }
    /*
     * every reply result but 0 to 3 (a write, and a configuration write's
     * number) is refused in a request
     */
    for (uint32_t flags = 4; flags <= 0xff; flags++) {
        expect_io_flags_error(DISTVM_MSG_IO_REQ, flags);
    }
    for (size_t i = 0; i < ARRAY_SIZE(reply_flags); i++) {
        expect_io_flags_error(DISTVM_MSG_IO_REPLY, reply_flags[i]);
    }
    for (uint32_t bit = 11; bit < 32; bit++) {
        expect_io_flags_error(DISTVM_MSG_IO_REPLY, 1u << bit);
        expect_io_flags_error(DISTVM_MSG_IO_REPLY, 1u << bit | DISTVM_IO_STOP);
    }
    for (uint32_t bit = 12; bit < 32; bit++) {
        expect_io_flags_error(DISTVM_MSG_IO_REPLY, 1u << bit | DISTVM_IO_A20 |
                              DISTVM_IO_A20_ON);
    }
    /* the A20 line only after a port access */
    for (uint32_t space = DISTVM_IO_MEMORY; space <= DISTVM_IO_SMM; space++) {
        expect_io_flags_error_in(DISTVM_MSG_IO_REPLY, &(DistvmMsgIo) {
            .cpu = 1, .space = space, .size = 4,
            .flags = DISTVM_IO_A20 | DISTVM_IO_A20_ON, .addr = 0xfed00000,
        });
    }
}

static void test_io_out_of_range(void)
{
    static const uint32_t cpus[] = { 8, 9, 64, 0x80000000u, UINT32_MAX };
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(io_types); i++) {
        DistvmMsgType t = io_types[i];
        const char *name = distvm_msg_type_name(t);
        g_autofree char *one = g_strdup_printf(
            "%s message for vCPU 1; there are 1", name);

        for (size_t j = 0; j < ARRAY_SIZE(cpus); j++) {
            g_autofree char *what = g_strdup_printf(
                "%s message for vCPU %" PRIu32 "; there are 8", name, cpus[j]);

            distvm_wire_io(b, t, 1, &(DistvmMsgIo) {
                .cpu = cpus[j], .space = DISTVM_IO_PORT, .size = 1,
                .flags = 0, .addr = 0x64, .data = 0,
            });
            expect_decode_error(b, &limits, what);
            expect_decode_error(b, &limits_no_ram, what);
        }

        /* The limit is the machine's, and applies to the index itself */
        distvm_wire_io(b, t, 1, &(DistvmMsgIo) {
            .cpu = 1, .space = DISTVM_IO_PORT, .size = 1, .flags = 0,
            .addr = 0x64, .data = 0,
        });
        expect_decode_error(b, &limits_one_vcpu_4nodes, one);
    }
    g_byte_array_unref(b);
}

/* @io sent as @type must be refused with exactly the PIC acknowledge error */
static void expect_pic_ack_error(DistvmMsgType type, const DistvmMsgIo *io)
{
    GByteArray *b = g_byte_array_new();
    g_autofree char *what = g_strdup_printf(
        "%s message for a PIC acknowledge with size %" PRIu32 ", address %#"
        PRIx64 ", flags %#" PRIx32 " and data %#" PRIx64,
        distvm_msg_type_name(type), io->size, io->addr, io->flags, io->data);

    g_assert_cmpuint(io->space, ==, DISTVM_IO_PIC_ACK);
    distvm_wire_io(b, type, 1, io);
    expect_decode_error(b, &limits, what);
    expect_decode_error(b, &limits_no_ram, what);
    g_byte_array_unref(b);
}

/* A PIC acknowledge is of one byte, in a request and in its reply */
static void test_io_pic_ack_bad_size(void)
{
    static const uint32_t sizes[] = {
        0, 2, 3, 4, 8, 16, 0x101, 0x10001, 0x80000000u, 0x80000001u,
        UINT32_MAX,
    };
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(io_types); i++) {
        for (size_t j = 0; j < ARRAY_SIZE(sizes); j++) {
            expect_pic_ack_error(io_types[i], &(DistvmMsgIo) {
                .cpu = 1, .space = DISTVM_IO_PIC_ACK, .size = sizes[j],
            });
        }
        /* every size below 0x100 but 1, with data that would fit it */
        for (uint32_t size = 0; size <= 0xff; size++) {
            if (size != 1) {
                expect_pic_ack_error(io_types[i], &(DistvmMsgIo) {
                    .cpu = 6, .space = DISTVM_IO_PIC_ACK, .size = size,
                });
            }
        }
    }

    /* a reply's data and flags do not excuse the size */
    for (uint32_t size = 2; size <= 8; size *= 2) {
        expect_pic_ack_error(DISTVM_MSG_IO_REPLY, &(DistvmMsgIo) {
            .cpu = 0, .space = DISTVM_IO_PIC_ACK, .size = size,
            .flags = 1, .data = 0x20,
        });
    }

    /* the message, spelled out */
    distvm_wire_io(b, DISTVM_MSG_IO_REQ, 2, &(DistvmMsgIo) {
        .cpu = 4, .space = DISTVM_IO_PIC_ACK, .size = 2,
    });
    expect_decode_error(b, &limits, "IO_REQ message for a PIC acknowledge "
                        "with size 2, address 0, flags 0 and data 0");
    distvm_wire_io(b, DISTVM_MSG_IO_REPLY, 0, &(DistvmMsgIo) {
        .cpu = 4, .space = DISTVM_IO_PIC_ACK, .size = 4, .flags = 0,
        .data = 0x08,
    });
    expect_decode_error(b, &limits, "IO_REPLY message for a PIC "
                        "acknowledge with size 4, address 0, flags 0 and "
                        "data 0x8");
    g_byte_array_unref(b);
}

/* A PIC acknowledge is at address 0 */
static void test_io_pic_ack_bad_addr(void)
{
    static const uint64_t addrs[] = {
        1, 2, 4, 8, 0x20, 0x21, 0xa0, 0xa1, 0x3f8, 0xffff, 0x10000,
        0xfec00000, 1ull << 32, 1ull << 63, UINT64_MAX - 7, UINT64_MAX,
    };
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(io_types); i++) {
        for (size_t j = 0; j < ARRAY_SIZE(addrs); j++) {
            expect_pic_ack_error(io_types[i], &(DistvmMsgIo) {
                .cpu = 2, .space = DISTVM_IO_PIC_ACK, .size = 1,
                .addr = addrs[j],
            });
        }
        /* every bit of the address */
        for (int bit = 0; bit < 64; bit++) {
            expect_pic_ack_error(io_types[i], &(DistvmMsgIo) {
                .cpu = 7, .space = DISTVM_IO_PIC_ACK, .size = 1,
                .addr = 1ull << bit,
            });
        }
    }

    /* the message, spelled out: the 8259's command port */
    distvm_wire_io(b, DISTVM_MSG_IO_REPLY, 0, &(DistvmMsgIo) {
        .cpu = 1, .space = DISTVM_IO_PIC_ACK, .size = 1, .flags = 0,
        .addr = 0x20, .data = 0x30,
    });
    expect_decode_error(b, &limits, "IO_REPLY message for a PIC "
                        "acknowledge with size 1, address 0x20, flags 0 "
                        "and data 0x30");
    g_byte_array_unref(b);
}

/* A PIC acknowledge request does not write, nor carry data */
static void test_io_pic_ack_bad_request(void)
{
    static const uint32_t flags[] = {
        DISTVM_IO_WRITE, 2, 3, 0xff, 0x100, 0x80000000u, UINT32_MAX,
    };
    static const uint64_t datas[] = {
        1, 0x08, 0x30, 0xff, 0x100, 0xffff, 1ull << 32, 1ull << 63,
        UINT64_MAX,
    };
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(flags); i++) {
        expect_pic_ack_error(DISTVM_MSG_IO_REQ, &(DistvmMsgIo) {
            .cpu = 3, .space = DISTVM_IO_PIC_ACK, .size = 1,
            .flags = flags[i],
        });
    }
    for (int bit = 0; bit < 32; bit++) {
        expect_pic_ack_error(DISTVM_MSG_IO_REQ, &(DistvmMsgIo) {
            .cpu = 3, .space = DISTVM_IO_PIC_ACK, .size = 1,
            .flags = 1u << bit,
        });
    }
    for (size_t i = 0; i < ARRAY_SIZE(datas); i++) {
        expect_pic_ack_error(DISTVM_MSG_IO_REQ, &(DistvmMsgIo) {
            .cpu = 5, .space = DISTVM_IO_PIC_ACK, .size = 1,
            .data = datas[i],
        });
        expect_pic_ack_error(DISTVM_MSG_IO_REQ, &(DistvmMsgIo) {
            .cpu = 5, .space = DISTVM_IO_PIC_ACK, .size = 1,
            .flags = DISTVM_IO_WRITE, .data = datas[i],
        });
    }
    for (int bit = 0; bit < 64; bit++) {
        expect_pic_ack_error(DISTVM_MSG_IO_REQ, &(DistvmMsgIo) {
            .cpu = 5, .space = DISTVM_IO_PIC_ACK, .size = 1,
            .data = 1ull << bit,
        });
    }

    /* the message, spelled out: a write of a vector */
    distvm_wire_io(b, DISTVM_MSG_IO_REQ, 1, &(DistvmMsgIo) {
        .cpu = 0, .space = DISTVM_IO_PIC_ACK, .size = 1,
        .flags = DISTVM_IO_WRITE, .data = 0x41,
    });
    expect_decode_error(b, &limits, "IO_REQ message for a PIC acknowledge "
                        "with size 1, address 0, flags 0x1 and data 0x41");
    g_byte_array_unref(b);
}

/* A PIC acknowledge reply: a one-byte vector and a one-byte MemTxResult */
static void test_io_pic_ack_bad_reply(void)
{
    static const uint64_t datas[] = {
        0x100, 0x101, 0x1ff, 0xffff, 1ull << 32, 1ull << 63, UINT64_MAX,
    };
    static const uint32_t flags[] = {
        0x400, 0x401, 0x4ff, 0x10000, 0x80000000u, UINT32_MAX,
    };

    /* a vector wider than a byte */
    for (size_t i = 0; i < ARRAY_SIZE(datas); i++) {
        expect_io_range_error(DISTVM_MSG_IO_REPLY, &(DistvmMsgIo) {
            .cpu = 1, .space = DISTVM_IO_PIC_ACK, .size = 1, .flags = 0,
            .addr = 0, .data = datas[i],
        });
    }
    for (int bit = 8; bit < 64; bit++) {
        expect_io_range_error(DISTVM_MSG_IO_REPLY, &(DistvmMsgIo) {
            .cpu = 1, .space = DISTVM_IO_PIC_ACK, .size = 1, .flags = 1,
            .addr = 0, .data = 1ull << bit | 0x30,
        });
    }

    /* a result wider than a byte, besides DISTVM_IO_STOP */
    for (size_t i = 0; i < ARRAY_SIZE(flags); i++) {
        expect_io_flags_error_in(DISTVM_MSG_IO_REPLY, &(DistvmMsgIo) {
            .cpu = 2, .space = DISTVM_IO_PIC_ACK, .size = 1,
            .flags = flags[i], .addr = 0, .data = 0x08,
        });
    }
    for (int bit = 11; bit < 32; bit++) {
        expect_io_flags_error_in(DISTVM_MSG_IO_REPLY, &(DistvmMsgIo) {
            .cpu = 2, .space = DISTVM_IO_PIC_ACK, .size = 1,
            .flags = 1u << bit, .addr = 0, .data = 0xff,
        });
    }

    /* the vector is checked before the result */
    expect_io_range_error(DISTVM_MSG_IO_REPLY, &(DistvmMsgIo) {
        .cpu = 3, .space = DISTVM_IO_PIC_ACK, .size = 1, .flags = 0x100,
        .addr = 0, .data = 0x100,
    });
}

/* What a PIC acknowledge's checks come after, and before */
static void test_io_pic_ack_order(void)
{
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(io_types); i++) {
        DistvmMsgType t = io_types[i];
        const char *name = distvm_msg_type_name(t);
        g_autofree char *vcpu = g_strdup_printf(
            "%s message for vCPU 8; there are 8", name);
        g_autofree char *one = g_strdup_printf(
            "%s message for vCPU 1; there are 1", name);

        /* the sender, then the vCPU */
        distvm_wire_io(b, t, 4, &(DistvmMsgIo) {
            .cpu = 8, .space = DISTVM_IO_PIC_ACK, .size = 2, .addr = 1,
            .flags = 0x100, .data = UINT64_MAX,
        });
        expect_decode_error(b, &limits, "in its sender");
        distvm_wire_io(b, t, 1, &(DistvmMsgIo) {
            .cpu = 8, .space = DISTVM_IO_PIC_ACK, .size = 2, .addr = 1,
            .flags = 0x100, .data = UINT64_MAX,
        });
        expect_decode_error(b, &limits, vcpu);
        expect_decode_error(b, &limits_no_ram, vcpu);
        distvm_wire_io(b, t, 1, &(DistvmMsgIo) {
            .cpu = 1, .space = DISTVM_IO_PIC_ACK, .size = 1,
        });
        expect_decode_error(b, &limits_one_vcpu_4nodes, one);

        /*
         * The PIC acknowledge's shape, before the range check: data too
         * wide for the size, a misaligned or a huge address
         */
        expect_pic_ack_error(t, &(DistvmMsgIo) {
            .cpu = 0, .space = DISTVM_IO_PIC_ACK, .size = 2,
            .data = 0x10000,
        });
        expect_pic_ack_error(t, &(DistvmMsgIo) {
            .cpu = 0, .space = DISTVM_IO_PIC_ACK, .size = 4, .addr = 2,
        });
        expect_pic_ack_error(t, &(DistvmMsgIo) {
            .cpu = 0, .space = DISTVM_IO_PIC_ACK, .size = 0,
            .addr = UINT64_MAX, .data = UINT64_MAX,
        });
        /* and before the flags */
        expect_pic_ack_error(t, &(DistvmMsgIo) {
            .cpu = 0, .space = DISTVM_IO_PIC_ACK, .size = 2,
            .flags = UINT32_MAX,
        });
    }

    /* A request's flags and data are refused as a PIC acknowledge's */
    expect_pic_ack_error(DISTVM_MSG_IO_REQ, &(DistvmMsgIo) {
        .cpu = 0, .space = DISTVM_IO_PIC_ACK, .size = 1, .flags = 0x100,
        .data = 0x100,
    });
    g_byte_array_unref(b);
}

/* @run sent from node 1 must be refused with exactly the action error */
static void expect_run_action_error(const DistvmMsgRunState *run)
{
    GByteArray *b = g_byte_array_new();
    g_autofree char *what = g_strdup_printf(
        "RUN_STATE message with an unknown action %" PRIu32, run->action);

    distvm_wire_run_state(b, 1, run);
    expect_decode_error(b, &limits, what);
    expect_decode_error(b, &limits_no_ram, what);
    g_byte_array_unref(b);
}

/*
 * Stop, continue, reset, stopped, hold, held, release, pause, paused,
 * unpause: the only actions
 */
static void test_run_state_bad_action(void)
{
    static const uint32_t actions[] = {
        10, 11, 12, 15, 16, 0xff, 0x100, 0x10000, 0x7fffffffu, 0x80000000u,
        0x80000001u, UINT32_MAX - 1, UINT32_MAX,
    };
    GByteArray *b = g_byte_array_new();

    /* the values below are right for these ten actions only */
    g_assert_cmpuint(DISTVM_RUN__MAX, ==, 10);
    g_assert_cmpuint(DISTVM_RUN_PAUSE, ==, 7);
    g_assert_cmpuint(DISTVM_RUN_PAUSED, ==, 8);
    g_assert_cmpuint(DISTVM_RUN_UNPAUSE, ==, 9);

    for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
        expect_run_action_error(&(DistvmMsgRunState) {
            .action = actions[i], .virtual_ns = 5000000000ull,
            .guest_ticks = 12500000000ull, .host_ns = 86400123456789ull,
            .host_ticks = 216000308641972ull, .host_id = 1,
        });
        expect_run_action_error(&(DistvmMsgRunState) {
            .action = actions[i],
        });
    }

    /* every action below 0x100: the ten defined ones are accepted */
    for (uint32_t action = 0; action <= 0xff; action++) {
        DistvmMsgRunState run = {
            .action = action, .virtual_ns = action, .host_ns = ~action,
        };

        if (action < DISTVM_RUN__MAX) {
            check_run_state(&limits, 2, &run);
        } else {
            expect_run_action_error(&run);
        }
    }
    /* any bit above the first four, alone or with another */
    for (int bit = 4; bit < 32; bit++) {
        expect_run_action_error(&(DistvmMsgRunState) {
            .action = 1u << bit,
        });
        expect_run_action_error(&(DistvmMsgRunState) {
            .action = 1u << bit | DISTVM_RUN_CONT,
        });
        expect_run_action_error(&(DistvmMsgRunState) {
            .action = 1u << bit | DISTVM_RUN_UNPAUSE,
        });
    }

    /* The action is checked before the reserved field */
    distvm_wire_run_state(b, 0, &(DistvmMsgRunState) { .action = 10 });
    set_u32(b, HDR + 4, 1);
    expect_decode_error(b, &limits, "RUN_STATE message with an unknown "
                        "action 10");

    /* The sender is checked first */
    distvm_wire_run_state(b, 4, &(DistvmMsgRunState) { .action = 10 });
    expect_decode_error(b, &limits, "in its sender");
    g_byte_array_unref(b);
}

static void test_run_state_reserved(void)
{
    static const uint32_t reserved[] = { 0, 1, 0x100, 0x80000000u, UINT32_MAX };
    GByteArray *b = g_byte_array_new();

    for (uint32_t action = 0; action < DISTVM_RUN__MAX; action++) {
        for (size_t j = 0; j < ARRAY_SIZE(reserved); j++) {
            distvm_wire_begin(b, DISTVM_MSG_RUN_STATE, 0, 0);
            distvm_wire_put_u32(b, action);
            distvm_wire_put_u32(b, reserved[j]);
            distvm_wire_put_u64(b, 11);                 /* virtual_ns */
            distvm_wire_put_u64(b, 22);                 /* guest_ticks */
            distvm_wire_put_u64(b, 33);                 /* host_ns */
            distvm_wire_put_u64(b, 44);                 /* host_ticks */
            distvm_wire_put_u64(b, 55);                 /* host_id */
            distvm_wire_end(b);
            if (reserved[j]) {
                expect_decode_error(b, &limits, "RUN_STATE message with a "
                                    "non-zero reserved field");
                expect_decode_error(b, &limits_no_ram, "reserved");
            } else {
                /* the layout above is right */
                Decoded d;

                decode_ok(b, &limits, &d);
                g_assert_cmpuint(d.msg.u.run.action, ==, action);
                g_assert_cmpuint(d.msg.u.run.virtual_ns, ==, 11);
                g_assert_cmpuint(d.msg.u.run.guest_ticks, ==, 22);
                g_assert_cmpuint(d.msg.u.run.host_ns, ==, 33);
                g_assert_cmpuint(d.msg.u.run.host_ticks, ==, 44);
                g_assert_cmpuint(d.msg.u.run.host_id, ==, 55);
                decoded_free(&d);
            }
        }
    }
    g_byte_array_unref(b);
}

/*
 * @buf must be refused with exactly @what, and without RAM too; but a
 * message that @needs_ram is refused without it for that
 */
static void expect_exact_error_ram(const GByteArray *buf, bool needs_ram,
                                   const char *what)
{
    g_autofree char *got = decode_error(buf, &limits);

    g_assert_cmpstr(got, ==, what);
    expect_decode_error(buf, &limits_no_ram,
                        needs_ram ? "before the RAM layout was agreed" : what);
}

/* @buf must be refused, with or without RAM, with exactly @what */
static void expect_exact_error(const GByteArray *buf, const char *what)
{
    expect_exact_error_ram(buf, false, what);
}

/*
 * PIC_OUTPUT's level: a u32 at the start of the payload that must be 0
 * or 1
 */
typedef uint32_t WordOf(const DistvmMsg *msg);

static uint32_t pic_level(const DistvmMsg *msg)
{
    return msg->u.level;
}

/* @whole from @src, numbered @seq, with @word at the start of its payload */
static GByteArray *with_word(const GByteArray *whole, uint32_t src,
                             uint64_t seq, uint32_t word)
{
    GByteArray *b = buf_dup(whole);

    set_u32(b, OFF_SRC, src);
    set_u64(b, OFF_SEQ, seq);
    set_u32(b, HDR, word);
    return b;
}

/* @whole with @word must be refused with exactly the error for its value */
static void expect_word_error(const GByteArray *whole, const char *field,
                              uint32_t src, uint64_t seq, uint32_t word)
{
    GByteArray *b = with_word(whole, src, seq, word);
    g_autofree char *what = g_strdup_printf(
        "%s message with %s %" PRIu32,
        distvm_msg_type_name(lduw_le_p(whole->data + OFF_TYPE)), field,
        word);

    expect_exact_error(b, what);
    g_byte_array_unref(b);
}

/*
 * The word of @whole, a valid message, is 0 or 1: another value is
 * refused with an error that names it as @field; @word_of reads it from
 * the decoded message
 */
static void check_word_bad_value(const GByteArray *whole, const char *field,
                                 WordOf *word_of)
{
    static const uint32_t bad[] = {
        2, 3, 4, 0xff, 0x100, 0x101, 0x10000, 0x10001, 0x7fffffffu,
        0x80000000u, 0x80000001u, UINT32_MAX - 1, UINT32_MAX,
    };
    uint32_t type = lduw_le_p(whole->data + OFF_TYPE);
    GByteArray *b;

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        for (uint32_t src = 0; src < limits.nodes; src++) {
            expect_word_error(whole, field, src, 0, bad[i]);
            expect_word_error(whole, field, src, UINT64_MAX - i, bad[i]);
        }
    }

    /* every word below 0x1000: 0 and 1 are accepted, no other */
    for (uint32_t word = 0; word < 0x1000; word++) {
        if (word <= 1) {
            Decoded d;

            b = with_word(whole, 0, word, word);
            decode_ok(b, &limits, &d);
            check_hdr(&d.msg.hdr, type, whole->len - HDR, 0, word);
            g_assert_cmpuint(word_of(&d.msg), ==, word);
            decoded_free(&d);
            g_byte_array_unref(b);
        } else {
            expect_word_error(whole, field, 0, word, word);
        }
    }
    /* any bit above the first, with or without it */
    for (int bit = 1; bit < 32; bit++) {
        expect_word_error(whole, field, 1, 1ull << bit, 1u << bit);
        expect_word_error(whole, field, 1, 1ull << (bit + 32),
                          1u << bit | 1);
    }

    /* The word is checked before trailing bytes */
    for (uint64_t seq = 0; seq <= 7; seq += 7) {
        g_autofree char *what = g_strdup_printf(
            "%s message with %s 2", distvm_msg_type_name(type), field);

        b = with_word(whole, 0, seq, 2);
        distvm_wire_put_u32(b, 0);
        set_u32(b, OFF_LENGTH, b->len - HDR);
        expect_decode_error(b, &limits, what);
        g_byte_array_unref(b);
    }

    /* The sender is checked first */
    b = with_word(whole, 4, 0, 2);
    expect_decode_error(b, &limits, "in its sender");
    g_byte_array_unref(b);
    b = with_word(whole, UINT32_MAX, UINT64_MAX, UINT32_MAX);
    expect_decode_error(b, &limits, "in its sender");
    g_byte_array_unref(b);
}

/*
 * The payload of @whole, a valid message, is exactly what it is: cut
 * anywhere it is truncated (numbered as it is, and by the cut), and 1 to
 * 16 bytes more are trailing garbage, each refused with exactly that (if
 * it @needs_ram, once the RAM layout is agreed)
 */
static void check_exact_length(const GByteArray *whole, bool needs_ram)
{
    const char *name = distvm_msg_type_name(
        lduw_le_p(whole->data + OFF_TYPE));
    uint32_t len = whole->len - HDR;
    g_autofree char *truncated = g_strdup_printf("%s message is truncated",
                                                 name);

    for (uint32_t cut = 0; cut < len; cut++) {
        GByteArray *b = buf_dup(whole);

        g_byte_array_set_size(b, HDR + cut);
        set_u32(b, OFF_LENGTH, cut);
        expect_exact_error_ram(b, needs_ram, truncated);
        set_u64(b, OFF_SEQ, cut);
        expect_exact_error_ram(b, needs_ram, truncated);
        g_byte_array_unref(b);
    }

    for (uint32_t extra = 1; extra <= 16; extra++) {
        GByteArray *b = buf_dup(whole);
        g_autofree char *what = g_strdup_printf(
            "%s message has %" PRIu32 " bytes of trailing garbage",
            name, extra);

        g_byte_array_set_size(b, whole->len + extra);
        memset(b->data + whole->len, 0, extra);
        set_u32(b, OFF_LENGTH, len + extra);
        expect_exact_error_ram(b, needs_ram, what);
        g_byte_array_unref(b);
    }
}

/* @b, retyped as PIC_OUTPUT, must be accepted as a level of 1 */
static void check_retyped_level(GByteArray *b, uint64_t seq)
{
    Decoded d;

    set_u16(b, OFF_TYPE, DISTVM_MSG_PIC_OUTPUT);
    decode_ok(b, &limits, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_PIC_OUTPUT, PIC_FIXED, 0, seq);
    g_assert_cmpuint(d.msg.u.level, ==, 1);
    decoded_free(&d);
}

/* @b, retyped as @type, must be refused with exactly @what */
static void expect_retyped_error(GByteArray *b, DistvmMsgType type,
                                 const char *what)
{
    set_u16(b, OFF_TYPE, type);
    expect_exact_error(b, what);
}

/* The PIC's output is low or high */
static void test_pic_output_bad_level(void)
{
    GByteArray *b = g_byte_array_new();

    distvm_wire_pic_output(b, 0, 1);
    check_word_bad_value(b, "level", pic_level);

    /* the message, spelled out */
    distvm_wire_pic_output(b, 0, 2);
    expect_decode_error(b, &limits, "PIC_OUTPUT message with level 2");
    distvm_wire_pic_output(b, 0, UINT32_MAX);
    distvm_wire_set_seq(b, UINT64_MAX);
    expect_decode_error(b, &limits,
                        "PIC_OUTPUT message with level 4294967295");
    g_byte_array_unref(b);
}

/* A PIC_OUTPUT's payload is exactly its level */
static void test_pic_output_bad_length(void)
{
    GByteArray *b = g_byte_array_new();

    for (uint32_t level = 0; level <= 1; level++) {
        distvm_wire_pic_output(b, 0, level);
        check_exact_length(b, false);
        distvm_wire_set_seq(b, UINT64_MAX);
        check_exact_length(b, false);
    }

    /* the level as a u64 */
    distvm_wire_begin(b, DISTVM_MSG_PIC_OUTPUT, 0, 0);
    distvm_wire_put_u64(b, 1);
    distvm_wire_end(b);
    expect_exact_error(b, "PIC_OUTPUT message has 4 bytes of trailing "
                       "garbage");

    /*
     * other messages with a level's worth of payload, retyped; the
     * sequence number is passed through
     */
    distvm_wire_node(b, DISTVM_MSG_NODE_LOST, 0, 1);
    check_retyped_level(b, 0);
    distvm_wire_node(b, DISTVM_MSG_NODE_LOST, 0, 1);
    distvm_wire_set_seq(b, 9);
    check_retyped_level(b, 9);
    distvm_wire_empty(b, DISTVM_MSG_PING, 0, 1);
    expect_retyped_error(b, DISTVM_MSG_PIC_OUTPUT, "PIC_OUTPUT message has "
                         "4 bytes of trailing garbage");
    distvm_wire_empty(b, DISTVM_MSG_READY, 0, 0);
    expect_retyped_error(b, DISTVM_MSG_PIC_OUTPUT,
                         "PIC_OUTPUT message is truncated");
    distvm_wire_run_state(b, 0, &(DistvmMsgRunState) {
        .action = DISTVM_RUN_CONT,
    });
    expect_retyped_error(b, DISTVM_MSG_PIC_OUTPUT, "PIC_OUTPUT message has "
                         "44 bytes of trailing garbage");

    /* and the other way */
    distvm_wire_pic_output(b, 0, 1);
    expect_retyped_error(b, DISTVM_MSG_RUN_STATE,
                         "RUN_STATE message is truncated");
    distvm_wire_pic_output(b, 0, 1);
    expect_retyped_error(b, DISTVM_MSG_IO_REPLY,
                         "IO_REPLY message is truncated");
    g_byte_array_unref(b);
}

/* Counts of messages done with: any */
static const uint64_t flow_dones[] = {
    0, 1, 0xffffffffull, 0x100000000ull, 0x0123456789abcdefull,
    UINT64_MAX - 1, UINT64_MAX,
};

/*
 * @b, retyped as @type, must be accepted from @src, numbered @seq, with
 * @value
 */
static void check_retyped_value(GByteArray *b, DistvmMsgType type,
                                uint32_t src, uint64_t seq, uint64_t value)
{
    Decoded d;

    set_u16(b, OFF_TYPE, type);
    decode_ok(b, &limits, &d);
    check_hdr(&d.msg.hdr, type, 8, src, seq);
    g_assert_cmphex(d.msg.u.value, ==, value);
    decoded_free(&d);
}

/* A FLOW's payload is exactly its count */
static void test_flow_bad_length(void)
{
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(flow_dones); i++) {
        distvm_wire_flow(b, 0, flow_dones[i]);
        check_exact_length(b, false);
        distvm_wire_flow(b, 3, flow_dones[i]);
        distvm_wire_set_seq(b, UINT64_MAX - i);
        check_exact_length(b, false);
    }

    /* a count of four bytes */
    distvm_wire_begin(b, DISTVM_MSG_FLOW, 0, 0);
    distvm_wire_put_u32(b, 5);
    distvm_wire_end(b);
    expect_exact_error(b, "FLOW message is truncated");
    /* the stop and the count, as before */
    distvm_wire_begin(b, DISTVM_MSG_FLOW, 0, 0);
    distvm_wire_put_u32(b, 1);
    distvm_wire_put_u64(b, 5);
    distvm_wire_end(b);
    expect_exact_error(b, "FLOW message has 4 bytes of trailing garbage");
    /* the count twice */
    distvm_wire_flow(b, 0, 5);
    distvm_wire_put_u64(b, 5);
    set_u32(b, OFF_LENGTH, b->len - HDR);
    expect_exact_error(b, "FLOW message has 8 bytes of trailing garbage");

    /*
     * PING and PONG carry a u64 too: retyped either way, the value and
     * the sequence number are passed through
     */
    for (size_t i = 0; i < ARRAY_SIZE(flow_dones); i++) {
        distvm_wire_empty(b, DISTVM_MSG_PING, 1, flow_dones[i]);
        check_retyped_value(b, DISTVM_MSG_FLOW, 1, flow_dones[i],
                            flow_dones[i]);
        distvm_wire_empty(b, DISTVM_MSG_PONG, 2, flow_dones[i]);
        check_retyped_value(b, DISTVM_MSG_FLOW, 2, flow_dones[i],
                            flow_dones[i]);

        distvm_wire_flow(b, 3, flow_dones[i]);
        check_retyped_value(b, DISTVM_MSG_PING, 3, 0, flow_dones[i]);
        check_retyped_value(b, DISTVM_MSG_PONG, 3, 0, flow_dones[i]);
        check_retyped_value(b, DISTVM_MSG_FLOW, 3, 0, flow_dones[i]);
    }
    /* a PONG whose value is not its sequence number */
    distvm_wire_begin(b, DISTVM_MSG_PONG, 2, 5);
    distvm_wire_put_u64(b, 6);
    distvm_wire_end(b);
    check_retyped_value(b, DISTVM_MSG_FLOW, 2, 5, 6);

    /* other messages, retyped */
    distvm_wire_pic_output(b, 0, 1);
    expect_retyped_error(b, DISTVM_MSG_FLOW, "FLOW message is truncated");
    distvm_wire_empty(b, DISTVM_MSG_READY, 0, 0);
    expect_retyped_error(b, DISTVM_MSG_FLOW, "FLOW message is truncated");
    distvm_wire_run_state(b, 0, &(DistvmMsgRunState) {
        .action = DISTVM_RUN_CONT,
    });
    expect_retyped_error(b, DISTVM_MSG_FLOW, "FLOW message has 40 bytes of "
                         "trailing garbage");

    /* and the other way */
    distvm_wire_flow(b, 0, 1);
    expect_retyped_error(b, DISTVM_MSG_PIC_OUTPUT, "PIC_OUTPUT message has "
                         "4 bytes of trailing garbage");
    distvm_wire_flow(b, 0, 1);
    expect_retyped_error(b, DISTVM_MSG_RUN_STATE,
                         "RUN_STATE message is truncated");
    distvm_wire_flow(b, 0, 1);
    expect_retyped_error(b, DISTVM_MSG_READY, "READY message has 8 bytes "
                         "of trailing garbage");
    g_byte_array_unref(b);
}

/* FLOW counts the messages the main loop takes, and no others */
static void test_flow_counted(void)
{
    static const bool counted[DISTVM_MSG__MAX + 1] = {
        [DISTVM_MSG_PCI_CONFIG] = true,
        [DISTVM_MSG_VCPU_IPI] = true,
        [DISTVM_MSG_PIC_OUTPUT] = true,
        [DISTVM_MSG_PCI_INTX] = true,
        [DISTVM_MSG_NET_CTRL] = true,
    };

    for (uint32_t t = 0; t <= DISTVM_MSG__MAX; t++) {
        g_assert_cmpint(distvm_wire_flow_counted(t), ==, counted[t]);
    }
    /* nor any type the header could carry */
    g_assert_false(distvm_wire_flow_counted(0xffff));
    g_assert_false(distvm_wire_flow_counted(UINT32_MAX));
}

/*
 * An MGR_MOVE of @step, of the pages @from manages to @to, sent by @src:
 * its layout (the one built by hand, bit for bit), and its decoding under
 * @lim
 */
static void check_mgr_move(const DistvmWireLimits *lim, uint32_t src,
                           uint32_t step, uint32_t from, uint32_t to)
{
    GByteArray *b = g_byte_array_new();
    GByteArray *hand = g_byte_array_new();
    const uint8_t *p;
    Decoded d;

    distvm_wire_mgr_move(b, src, step, from, to);
    g_assert_cmpuint(b->len, ==, HDR + MGR_MOVE_FIXED);
    g_assert_cmpuint(lduw_le_p(b->data + OFF_TYPE), ==, DISTVM_MSG_MGR_MOVE);
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + OFF_LENGTH), ==,
                     MGR_MOVE_FIXED);
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + OFF_SRC), ==, src);
    /* the encoder numbers none */
    g_assert_cmphex(ldq_le_p(b->data + OFF_SEQ), ==, 0);
    /* step, from, to */
    p = b->data + HDR;
    g_assert_cmpuint((uint32_t)ldl_le_p(p), ==, step);
    g_assert_cmpuint((uint32_t)ldl_le_p(p + 4), ==, from);
    g_assert_cmpuint((uint32_t)ldl_le_p(p + 8), ==, to);

    distvm_wire_begin(hand, DISTVM_MSG_MGR_MOVE, src, 0);
    distvm_wire_put_u32(hand, step);
    distvm_wire_put_u32(hand, from);
    distvm_wire_put_u32(hand, to);
    distvm_wire_end(hand);
    g_assert_cmpmem(hand->data, hand->len, b->data, b->len);

    decode_ok(b, lim, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_MGR_MOVE, MGR_MOVE_FIXED, src, 0);
    g_assert_cmpuint(d.msg.u.mgr_move.step, ==, step);
    g_assert_cmpuint(d.msg.u.mgr_move.from, ==, from);
    g_assert_cmpuint(d.msg.u.mgr_move.to, ==, to);
    decoded_free(&d);

    g_byte_array_unref(hand);
    g_byte_array_unref(b);
}

/*
 * MGR_MOVE: a known step, and two different nodes of the cluster; no
 * RAM layout and no vCPUs are needed
 */
static void test_mgr_move(void)
{
    static const DistvmWireLimits two_nodes_ram = {
        .nodes = 2,
        .nr_blocks = ARRAY_SIZE(block_pages),
        .block_pages = block_pages,
    };
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (uint32_t step = 0; step < DISTVM_MGR_MOVE__MAX; step++) {
        /* between any two nodes, from any sender */
        for (uint32_t from = 0; from < limits.nodes; from++) {
            for (uint32_t to = 0; to < limits.nodes; to++) {
                if (from == to) {
                    continue;
                }
                for (uint32_t src = 0; src < limits.nodes; src++) {
                    check_mgr_move(&limits, src, step, from, to);
                }
                check_mgr_move(&limits_no_ram, from, step, from, to);
                check_mgr_move(&limits_one_vcpu_4nodes, 0, step, from, to);
            }
        }
        check_mgr_move(&limits_nodes_only, 1, step, 1, 0);
        check_mgr_move(&two_nodes_ram, 0, step, 0, 1);
        /* the largest cluster, to and from its last node */
        check_mgr_move(&limits_most, DISTVM_WIRE_MAX_NODES - 1, step,
                       DISTVM_WIRE_MAX_NODES - 1, 0);
        check_mgr_move(&limits_most, 0, step, 1, DISTVM_WIRE_MAX_NODES - 1);
    }

    /* a sequence number is not looked at: passed through as it is */
    for (size_t i = 0; i < ARRAY_SIZE(flow_dones); i++) {
        distvm_wire_mgr_move(b, 2, DISTVM_MGR_MOVE_MOVED, 2, 1);
        distvm_wire_set_seq(b, flow_dones[i]);
        decode_ok(b, &limits, &d);
        check_hdr(&d.msg.hdr, DISTVM_MSG_MGR_MOVE, MGR_MOVE_FIXED, 2,
                  flow_dones[i]);
        g_assert_cmpuint(d.msg.u.mgr_move.step, ==, DISTVM_MGR_MOVE_MOVED);
        g_assert_cmpuint(d.msg.u.mgr_move.from, ==, 2);
        g_assert_cmpuint(d.msg.u.mgr_move.to, ==, 1);
        decoded_free(&d);
    }

    /* distvm_wire_mgr_move empties the buffer first */
    distvm_wire_empty(b, DISTVM_MSG_READY, 1, 2);
    distvm_wire_mgr_move(b, 0, DISTVM_MGR_MOVE_ASK, 2, 1);
    g_assert_cmpuint(b->len, ==, HDR + MGR_MOVE_FIXED);
    g_assert_cmphex(ldq_le_p(b->data + OFF_SEQ), ==, 0);
    g_byte_array_unref(b);
}

/* MGR_MOVE of @step from @from to @to must be refused with exactly @what */
static void expect_mgr_move_error(uint32_t src, uint32_t step, uint32_t from,
                                  uint32_t to, const char *what)
{
    GByteArray *b = g_byte_array_new();

    distvm_wire_mgr_move(b, src, step, from, to);
    expect_exact_error(b, what);
    g_byte_array_unref(b);
}

/* MGR_MOVE of an unknown step, from a node to itself, or outside the cluster */
static void test_mgr_move_bad(void)
{
    static const uint32_t steps[] = {
        DISTVM_MGR_MOVE__MAX, DISTVM_MGR_MOVE__MAX + 1, 0x100, 0x10000,
        INT32_MAX, 0x80000000u, UINT32_MAX,
    };
    static const uint32_t nodes[] = {
        4, 5, DISTVM_WIRE_MAX_NODES, 0x80000000u, UINT32_MAX,
    };
    GByteArray *b = g_byte_array_new();

    /* a step that does not exist */
    for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
        g_autofree char *what = g_strdup_printf(
            "MGR_MOVE message of step %" PRIu32 " from node 1 to node 2",
            steps[i]);

        expect_mgr_move_error(1, steps[i], 1, 2, what);
    }

    /* pages that would stay where they are, at any step */
    for (uint32_t step = 0; step < DISTVM_MGR_MOVE__MAX; step++) {
        for (uint32_t n = 0; n < limits.nodes; n++) {
            g_autofree char *what = g_strdup_printf(
                "MGR_MOVE message of step %" PRIu32 " from node %" PRIu32
                " to node %" PRIu32, step, n, n);

            expect_mgr_move_error(0, step, n, n, what);
        }
    }

    /* nodes outside the cluster, on either side */
    for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
        g_autofree char *leave = g_strdup_printf(
            "MGR_MOVE message names node %" PRIu32 " in the node the pages "
            "leave; the cluster has 4", nodes[i]);
        g_autofree char *go = g_strdup_printf(
            "MGR_MOVE message names node %" PRIu32 " in the node the pages "
            "go to; the cluster has 4", nodes[i]);

        expect_mgr_move_error(0, DISTVM_MGR_MOVE_ASK, nodes[i], 1, leave);
        expect_mgr_move_error(2, DISTVM_MGR_MOVE_MOVED, nodes[i], 0, leave);
        expect_mgr_move_error(0, DISTVM_MGR_MOVE_ASK, 1, nodes[i], go);
        expect_mgr_move_error(3, DISTVM_MGR_MOVE_PREPARED, 0, nodes[i], go);
        /* the node the pages leave first */
        expect_mgr_move_error(0, DISTVM_MGR_MOVE_KNOWN, nodes[i], nodes[i],
                              leave);
    }

    /* The limit is the cluster's size, not DISTVM_WIRE_MAX_NODES */
    distvm_wire_mgr_move(b, 0, DISTVM_MGR_MOVE_ASK, 1, 2);
    expect_decode_error(b, &limits_nodes_only, "MGR_MOVE message names node "
                        "2 in the node the pages go to; the cluster has 2");
    distvm_wire_mgr_move(b, 0, DISTVM_MGR_MOVE_ASK, 15, 1);
    expect_decode_error(b, &limits, "MGR_MOVE message names node 15 in the "
                        "node the pages leave; the cluster has 4");

    /* The sender is checked first, then the nodes, then the step */
    expect_mgr_move_error(0, UINT32_MAX, 4, 4, "MGR_MOVE message names node "
                          "4 in the node the pages leave; the cluster has 4");
    expect_mgr_move_error(0, UINT32_MAX, 1, 4, "MGR_MOVE message names node "
                          "4 in the node the pages go to; the cluster has 4");
    distvm_wire_mgr_move(b, 4, UINT32_MAX, 4, 4);
    expect_decode_error(b, &limits, "MGR_MOVE message names node 4 in its "
                        "sender; the cluster has 4");

    /* The step and the nodes are checked before trailing bytes */
    distvm_wire_mgr_move(b, 0, DISTVM_MGR_MOVE__MAX, 1, 2);
    distvm_wire_put_u32(b, 0);
    set_u32(b, OFF_LENGTH, b->len - HDR);
    expect_exact_error(b, "MGR_MOVE message of step 6 from node 1 to node 2");
    distvm_wire_mgr_move(b, 0, DISTVM_MGR_MOVE_ASK, 3, 3);
    distvm_wire_put_u32(b, 0);
    set_u32(b, OFF_LENGTH, b->len - HDR);
    expect_exact_error(b, "MGR_MOVE message of step 0 from node 3 to node 3");

    /* The payload is exactly the step and the two nodes */
    for (uint32_t step = 0; step < DISTVM_MGR_MOVE__MAX; step++) {
        distvm_wire_mgr_move(b, 1, step, 1, 2);
        check_exact_length(b, false);
        distvm_wire_mgr_move(b, 3, step, 3, 0);
        distvm_wire_set_seq(b, UINT64_MAX - step);
        check_exact_length(b, false);
    }

    /* other messages, retyped, and the other way */
    distvm_wire_pci_intx(b, 1, 0, 1);
    expect_retyped_error(b, DISTVM_MSG_MGR_MOVE,
                         "MGR_MOVE message is truncated");
    distvm_wire_flow(b, 1, 0x100000000ull);
    expect_retyped_error(b, DISTVM_MSG_MGR_MOVE,
                         "MGR_MOVE message is truncated");
    distvm_wire_mgr_move(b, 0, DISTVM_MGR_MOVE_ASK, 1, 2);
    expect_retyped_error(b, DISTVM_MSG_PCI_INTX, "PCI_INTX message has 4 "
                         "bytes of trailing garbage");
    distvm_wire_mgr_move(b, 0, DISTVM_MGR_MOVE_ASK, 1, 2);
    expect_retyped_error(b, DISTVM_MSG_FLOW, "FLOW message has 4 bytes of "
                         "trailing garbage");
    g_byte_array_unref(b);
}

/*
 * @n directory entries for a cluster of @nodes: owners that go round the
 * nodes and none, and copy sets of nodes of the cluster
 */
static void mgr_entries_new(uint32_t n, uint32_t nodes, int8_t **owner,
                            uint16_t **copyset)
{
    *owner = g_new(int8_t, n);
    *copyset = g_new(uint16_t, n);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t o = i % (nodes + 1);

        (*owner)[i] = o == nodes ? -1 : o;
        (*copyset)[i] = (i * 40503u >> 3) & ((1u << nodes) - 1);
    }
}

/*
 * An MGR_ENTRIES from @src of the @count entries @owner and @copyset of
 * pages @first on of RAMBlock @block: its layout (the one built by hand,
 * bit for bit), its decoding under @lim, and the entries read back
 */
static void check_mgr_entries(const DistvmWireLimits *lim, uint32_t src,
                              uint32_t block, uint64_t first, uint32_t count,
                              const int8_t *owner, const uint16_t *copyset)
{
    GByteArray *b = g_byte_array_new();
    GByteArray *hand = g_byte_array_new();
    const uint8_t *p;
    Decoded d;

    distvm_wire_mgr_entries(b, src, block, first, count, owner, copyset);
    g_assert_cmpuint(b->len, ==, HDR + MGR_ENTRIES_FIXED + 4ull * count);
    g_assert_cmpuint(lduw_le_p(b->data + OFF_TYPE), ==,
                     DISTVM_MSG_MGR_ENTRIES);
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + OFF_LENGTH), ==,
                     MGR_ENTRIES_FIXED + 4ull * count);
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + OFF_SRC), ==, src);
    /* the encoder numbers none */
    g_assert_cmphex(ldq_le_p(b->data + OFF_SEQ), ==, 0);
    /* block, count, first */
    p = b->data + HDR;
    g_assert_cmpuint((uint32_t)ldl_le_p(p), ==, block);
    g_assert_cmpuint((uint32_t)ldl_le_p(p + 4), ==, count);
    g_assert_cmphex(ldq_le_p(p + 8), ==, first);

    /* each entry: the owner or 0xff in bits 0-7, the copy set above 16 */
    distvm_wire_begin(hand, DISTVM_MSG_MGR_ENTRIES, src, 0);
    distvm_wire_put_u32(hand, block);
    distvm_wire_put_u32(hand, count);
    distvm_wire_put_u64(hand, first);
    for (uint32_t i = 0; i < count; i++) {
        distvm_wire_put_u32(hand, (owner[i] < 0 ? 0xff : owner[i]) |
                                  (uint32_t)copyset[i] << 16);
    }
    distvm_wire_end(hand);
    g_assert_cmpmem(hand->data, hand->len, b->data, b->len);

    decode_ok(b, lim, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_MGR_ENTRIES,
              MGR_ENTRIES_FIXED + 4 * count, src, 0);
    g_assert_cmpuint(d.msg.u.mgr_entries.block, ==, block);
    g_assert_cmpuint(d.msg.u.mgr_entries.count, ==, count);
    g_assert_cmphex(d.msg.u.mgr_entries.first, ==, first);
    /* the entries stay in the payload */
    g_assert(d.msg.u.mgr_entries.entries == d.payload + MGR_ENTRIES_FIXED);
    for (uint32_t i = 0; i < count; i++) {
        int o = INT_MAX;
        uint16_t cs = 0xdead;

        distvm_wire_mgr_entry(&d.msg.u.mgr_entries, i, &o, &cs);
        g_assert_cmpint(o, ==, owner[i] < 0 ? -1 : owner[i]);
        g_assert_cmphex(cs, ==, copyset[i]);
    }
    decoded_free(&d);

    g_byte_array_unref(hand);
    g_byte_array_unref(b);
}

/*
 * MGR_ENTRIES: 1 to DISTVM_MGR_ENTRIES_MAX consecutive pages of a
 * RAMBlock, each with its owner (or none) and its copy set
 */
static void test_mgr_entries(void)
{
    static const struct {
        uint32_t block, count;
        uint64_t first;
    } ranges[] = {
        { 0, 1, 0 }, { 0, 16, 0 }, { 0, 1, 15 }, { 0, 13, 3 }, { 1, 1, 0 },
        { 2, 3, 0 }, { 2, 7, 12345 }, { 2, 1, 262143 },
        { 2, DISTVM_MGR_ENTRIES_MAX, 0 },
        { 2, DISTVM_MGR_ENTRIES_MAX, 262144 - DISTVM_MGR_ENTRIES_MAX },
    };
    /* the most nodes the wire allows, with the RAM layout agreed */
    static const DistvmWireLimits most_ram = {
        .nodes = DISTVM_WIRE_MAX_NODES,
        .nr_vcpus = 8,
        .nr_blocks = ARRAY_SIZE(block_pages),
        .block_pages = block_pages,
    };
    static const DistvmWireLimits one_node_ram = {
        .nodes = 1,
        .nr_blocks = ARRAY_SIZE(block_pages),
        .block_pages = block_pages,
    };
    g_autofree int8_t *owner = NULL;
    g_autofree uint16_t *copyset = NULL;
    g_autofree int8_t *most_owner = NULL;
    g_autofree uint16_t *most_copyset = NULL;
    int8_t one_owner[DISTVM_WIRE_MAX_NODES + 1];
    uint16_t one_copyset[DISTVM_WIRE_MAX_NODES + 1];
    GByteArray *b = g_byte_array_new();
    Decoded d;

    /* from an offset of each sender's */
    mgr_entries_new(DISTVM_MGR_ENTRIES_MAX + limits.nodes, limits.nodes,
                    &owner, &copyset);
    mgr_entries_new(DISTVM_MGR_ENTRIES_MAX, DISTVM_WIRE_MAX_NODES,
                    &most_owner, &most_copyset);
    for (size_t i = 0; i < ARRAY_SIZE(ranges); i++) {
        /* from any node */
        for (uint32_t src = 0; src < limits.nodes; src++) {
            check_mgr_entries(&limits, src, ranges[i].block, ranges[i].first,
                              ranges[i].count, owner + src,
                              copyset + src);
        }
        check_mgr_entries(&most_ram, DISTVM_WIRE_MAX_NODES - 1,
                          ranges[i].block, ranges[i].first, ranges[i].count,
                          most_owner, most_copyset);
    }

    /* each owner, and none, with each copy set of one node */
    for (uint32_t n = 0; n <= DISTVM_WIRE_MAX_NODES; n++) {
        one_owner[n] = n == DISTVM_WIRE_MAX_NODES ? -1 : n;
        one_copyset[n] = 1u << (n % DISTVM_WIRE_MAX_NODES);
    }
    check_mgr_entries(&most_ram, 0, 0, 0, DISTVM_WIRE_MAX_NODES, one_owner,
                      one_copyset);
    check_mgr_entries(&most_ram, 1, 2, 100, DISTVM_WIRE_MAX_NODES + 1,
                      one_owner, one_copyset);
    /* all of the nodes in each copy set; none */
    for (uint32_t n = 0; n <= DISTVM_WIRE_MAX_NODES; n++) {
        one_copyset[n] = 0xffff;
    }
    check_mgr_entries(&most_ram, 2, 2, 0, DISTVM_WIRE_MAX_NODES + 1,
                      one_owner, one_copyset);
    for (uint32_t n = 0; n <= DISTVM_WIRE_MAX_NODES; n++) {
        one_copyset[n] = 0;
    }
    check_mgr_entries(&most_ram, 3, 2, 0, DISTVM_WIRE_MAX_NODES + 1,
                      one_owner, one_copyset);
    /* a cluster of one node: its own pages, or no owner */
    one_owner[0] = 0;
    one_owner[1] = -1;
    one_copyset[0] = 1;
    one_copyset[1] = 1;
    check_mgr_entries(&one_node_ram, 0, 0, 14, 2, one_owner, one_copyset);
    check_mgr_entries(&one_node_ram, 0, 1, 0, 1, one_owner + 1,
                      one_copyset + 1);

    /* any negative owner is no owner */
    {
        static const int8_t neg_owner[] = { INT8_MIN, -2, -1 };
        static const uint16_t zero[ARRAY_SIZE(neg_owner)] = { 0 };
        int o;
        uint16_t cs;

        distvm_wire_mgr_entries(b, 1, 0, 0, ARRAY_SIZE(neg_owner), neg_owner,
                                zero);
        decode_ok(b, &limits, &d);
        for (uint32_t i = 0; i < ARRAY_SIZE(neg_owner); i++) {
            g_assert_cmphex(ldl_le_p(b->data + HDR + MGR_ENTRIES_FIXED +
                                     4 * i), ==, DISTVM_MGR_NO_OWNER);
            distvm_wire_mgr_entry(&d.msg.u.mgr_entries, i, &o, &cs);
            g_assert_cmpint(o, ==, -1);
            g_assert_cmpuint(cs, ==, 0);
        }
        decoded_free(&d);
    }

    /* a sequence number is not looked at: passed through as it is */
    for (size_t i = 0; i < ARRAY_SIZE(flow_dones); i++) {
        distvm_wire_mgr_entries(b, 2, 0, 4, 3, owner, copyset);
        distvm_wire_set_seq(b, flow_dones[i]);
        decode_ok(b, &limits, &d);
        check_hdr(&d.msg.hdr, DISTVM_MSG_MGR_ENTRIES, MGR_ENTRIES_FIXED + 12,
                  2, flow_dones[i]);
        g_assert_cmpuint(d.msg.u.mgr_entries.count, ==, 3);
        decoded_free(&d);
    }

    /* distvm_wire_mgr_entries empties the buffer first */
    distvm_wire_empty(b, DISTVM_MSG_READY, 1, 2);
    distvm_wire_mgr_entries(b, 0, 1, 0, 1, owner, copyset);
    g_assert_cmpuint(b->len, ==, HDR + MGR_ENTRIES_FIXED + 4);
    g_assert_cmphex(ldq_le_p(b->data + OFF_SEQ), ==, 0);
    g_byte_array_unref(b);
}

/*
 * An MGR_ENTRIES of 4 pages from page 2 of RAMBlock 0, whose entry @i is
 * @v, must be refused for that entry under @lim
 */
static void expect_mgr_entry_error(const DistvmWireLimits *lim, uint32_t i,
                                   uint32_t v)
{
    static const int8_t owner[] = { 0, 1, -1, 3 };
    static const uint16_t copyset[] = { 0x1, 0x3, 0, 0x8 };
    GByteArray *b = g_byte_array_new();
    g_autofree char *what = g_strdup_printf(
        "MGR_ENTRIES message with entry 0x%" PRIx32 " for page %" PRIu32, v,
        2 + i);
    g_autofree char *got = NULL;

    distvm_wire_mgr_entries(b, 1, 0, 2, ARRAY_SIZE(owner), owner, copyset);
    set_u32(b, HDR + MGR_ENTRIES_FIXED + 4 * i, v);
    got = decode_error(b, lim);
    g_assert_cmpstr(got, ==, what);
    g_byte_array_unref(b);
}

/* @b, an MGR_ENTRIES, must be refused for its range with exactly that */
static void expect_mgr_range_error(const GByteArray *b, uint32_t block,
                                   uint64_t first, uint32_t count)
{
    g_autofree char *what = g_strdup_printf(
        "MGR_ENTRIES message for %" PRIu32 " pages from page %" PRIu64
        " of RAMBlock %" PRIu32, count, first, block);

    expect_exact_error_ram(b, true, what);
}

/*
 * MGR_ENTRIES before the RAM layout is agreed, of pages that do not
 * exist, too many or none, that do not match their count, and with
 * entries that name nodes outside the cluster or set the bits between
 */
static void test_mgr_entries_bad(void)
{
    static const struct {
        uint32_t block, count;
        uint64_t first;
    } bad[] = {
        /* RAMBlocks that do not exist */
        { 3, 1, 0 }, { 4, 1, 0 }, { UINT32_MAX, 1, 0 },
        /* no page */
        { 0, 0, 0 }, { 2, 0, 262143 }, { 2, 0, 262144 },
        /* more than DISTVM_MGR_ENTRIES_MAX, in a block that has them */
        { 2, DISTVM_MGR_ENTRIES_MAX + 1, 0 },
        /* past the end of the block */
        { 0, 1, 16 }, { 0, 2, 15 }, { 0, 17, 0 }, { 1, 1, 1 }, { 1, 2, 0 },
        { 2, 1, 262144 }, { 2, DISTVM_MGR_ENTRIES_MAX, 262145 -
                            DISTVM_MGR_ENTRIES_MAX },
        { 2, 1, UINT64_MAX }, { 0, 16, UINT64_MAX - 15 },
        { 2, 2, UINT64_MAX }, { 0, 1, 1ull << 32 },
    };
    static const uint32_t counts[] = {
        DISTVM_MGR_ENTRIES_MAX + 2, 0x100000, INT32_MAX, UINT32_MAX,
    };
    static const DistvmWireLimits two_nodes_ram = {
        .nodes = 2,
        .nr_blocks = ARRAY_SIZE(block_pages),
        .block_pages = block_pages,
    };
    static const DistvmWireLimits most_ram = {
        .nodes = DISTVM_WIRE_MAX_NODES,
        .nr_blocks = ARRAY_SIZE(block_pages),
        .block_pages = block_pages,
    };
    g_autofree int8_t *owner = NULL;
    g_autofree uint16_t *copyset = NULL;
    GByteArray *b = g_byte_array_new();

    mgr_entries_new(DISTVM_MGR_ENTRIES_MAX + 1, limits.nodes, &owner,
                    &copyset);

    /* Before the RAM layout is agreed, even if truncated or out of range */
    distvm_wire_mgr_entries(b, 1, 0, 0, 3, owner, copyset);
    expect_decode_error(b, &limits_no_ram, "MGR_ENTRIES message before the "
                        "RAM layout was agreed");
    check_exact_length(b, true);
    distvm_wire_mgr_entries(b, 1, 3, 0, 0, owner, copyset);
    expect_decode_error(b, &limits_no_ram, "MGR_ENTRIES message before the "
                        "RAM layout was agreed");
    distvm_wire_begin(b, DISTVM_MSG_MGR_ENTRIES, 1, 0);
    distvm_wire_end(b);
    expect_decode_error(b, &limits_no_ram, "MGR_ENTRIES message before the "
                        "RAM layout was agreed");

    /* Pages that do not exist, and counts out of range */
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        distvm_wire_mgr_entries(b, 2, bad[i].block, bad[i].first,
                                bad[i].count, owner, copyset);
        expect_mgr_range_error(b, bad[i].block, bad[i].first, bad[i].count);
    }
    /* counts far too large: refused as such, not as truncated */
    for (size_t i = 0; i < ARRAY_SIZE(counts); i++) {
        distvm_wire_mgr_entries(b, 2, 2, 0, 1, owner, copyset);
        set_u32(b, HDR + 4, counts[i]);
        expect_mgr_range_error(b, 2, 0, counts[i]);
    }
    /* a block that does not exist, without entries: the block is named */
    distvm_wire_begin(b, DISTVM_MSG_MGR_ENTRIES, 0, 0);
    distvm_wire_put_u32(b, 3);
    distvm_wire_put_u32(b, 1);
    distvm_wire_put_u64(b, 0);
    distvm_wire_end(b);
    expect_mgr_range_error(b, 3, 0, 1);
    /* the limits themselves are fine (see test_mgr_entries) */

    /* a count the entries do not match, either way */
    distvm_wire_mgr_entries(b, 2, 0, 4, 2, owner, copyset);
    set_u32(b, HDR + 4, 3);
    expect_exact_error_ram(b, true, "MGR_ENTRIES message is truncated");
    set_u32(b, HDR + 4, 1);
    expect_exact_error_ram(b, true, "MGR_ENTRIES message has 4 bytes of "
                           "trailing garbage");
    /* every cut is truncated, every byte more is garbage */
    distvm_wire_mgr_entries(b, 2, 0, 13, 3, owner, copyset);
    check_exact_length(b, true);
    distvm_wire_mgr_entries(b, 3, 2, 262143, 1, owner, copyset);
    distvm_wire_set_seq(b, UINT64_MAX);
    check_exact_length(b, true);

    /* owners outside the cluster; 0xff is none */
    for (uint32_t o = limits.nodes; o < DISTVM_MGR_NO_OWNER; o++) {
        expect_mgr_entry_error(&limits, 0, o);
        expect_mgr_entry_error(&limits, 3, o | 0x10000);
    }
    for (uint32_t o = DISTVM_WIRE_MAX_NODES; o < DISTVM_MGR_NO_OWNER; o++) {
        expect_mgr_entry_error(&most_ram, 1, o);
    }
    expect_mgr_entry_error(&two_nodes_ram, 2, 2);
    expect_mgr_entry_error(&two_nodes_ram, 3, 3);

    /* bits 8-15 are none of the owner's nor the copy set's */
    for (int bit = 8; bit < 16; bit++) {
        expect_mgr_entry_error(&limits, 0, 1u << bit);
        expect_mgr_entry_error(&limits, 1, 1u << bit | 1 | 0x20000);
        expect_mgr_entry_error(&limits, 2, 1u << bit | DISTVM_MGR_NO_OWNER);
        expect_mgr_entry_error(&most_ram, 3, 1u << bit | 0xffff000f);
    }
    expect_mgr_entry_error(&limits, 2, 0xff00 | DISTVM_MGR_NO_OWNER);

    /* copy sets with a node outside the cluster */
    for (int bit = limits.nodes; bit < 16; bit++) {
        expect_mgr_entry_error(&limits, 0, 1u << (16 + bit));
        expect_mgr_entry_error(&limits, 3, 1u << (16 + bit) | 0xf0000 |
                               DISTVM_MGR_NO_OWNER);
    }
    for (int bit = 2; bit < 16; bit++) {
        expect_mgr_entry_error(&two_nodes_ram, 1, 1u << (16 + bit) | 1);
    }
    expect_mgr_entry_error(&limits, 1, 0xfff00000 | DISTVM_MGR_NO_OWNER);

    /* The first bad entry is named */
    distvm_wire_mgr_entries(b, 1, 2, 1000, 4, owner, copyset);
    set_u32(b, HDR + MGR_ENTRIES_FIXED + 4, 0x100);
    set_u32(b, HDR + MGR_ENTRIES_FIXED + 12, 0x4);
    expect_exact_error_ram(b, true, "MGR_ENTRIES message with entry 0x100 "
                           "for page 1001");

    /*
     * The order of the checks: the sender, the RAM layout, the range, the
     * length, the entries, then trailing bytes
     */
    distvm_wire_mgr_entries(b, 4, 3, 0, 1, owner, copyset);
    expect_decode_error(b, &limits_no_ram, "MGR_ENTRIES message names node 4 "
                        "in its sender; the cluster has 4");
    distvm_wire_begin(b, DISTVM_MSG_MGR_ENTRIES, 1, 0);
    distvm_wire_put_u32(b, 0);
    distvm_wire_put_u32(b, 17);
    distvm_wire_put_u64(b, 0);
    distvm_wire_put_u32(b, 0x100);
    distvm_wire_end(b);
    expect_mgr_range_error(b, 0, 0, 17);
    set_u32(b, HDR + 4, 2);
    expect_exact_error_ram(b, true, "MGR_ENTRIES message is truncated");
    distvm_wire_put_u32(b, 0);
    distvm_wire_put_u32(b, 0);
    set_u32(b, OFF_LENGTH, b->len - HDR);
    expect_exact_error_ram(b, true, "MGR_ENTRIES message with entry 0x100 "
                           "for page 0");

    /* MGR_MOVE retyped, and the other way */
    distvm_wire_mgr_move(b, 0, DISTVM_MGR_MOVE_ASK, 1, 2);
    set_u16(b, OFF_TYPE, DISTVM_MSG_MGR_ENTRIES);
    expect_exact_error_ram(b, true, "MGR_ENTRIES message is truncated");
    distvm_wire_mgr_entries(b, 0, 1, 0, 1, owner, copyset);
    expect_retyped_error(b, DISTVM_MSG_MGR_MOVE, "MGR_MOVE message has 8 "
                         "bytes of trailing garbage");
    g_byte_array_unref(b);
}

/*
 * An EPOCH @e sent by @src: its layout (the one built by hand, bit for
 * bit), and its decoding under @lim
 */
static void check_epoch(const DistvmWireLimits *lim, uint32_t src,
                        const DistvmMsgEpoch *e)
{
    GByteArray *b = g_byte_array_new();
    GByteArray *hand = g_byte_array_new();
    const uint8_t *p;
    Decoded d;

    distvm_wire_epoch(b, src, e);
    g_assert_cmpuint(b->len, ==, HDR + EPOCH_FIXED);
    g_assert_cmpuint(lduw_le_p(b->data + OFF_TYPE), ==, DISTVM_MSG_EPOCH);
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + OFF_LENGTH), ==,
                     EPOCH_FIXED);
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + OFF_SRC), ==, src);
    /* the encoder numbers none */
    g_assert_cmphex(ldq_le_p(b->data + OFF_SEQ), ==, 0);
    /* step, node, epoch, bytes, vCPUs, reserved */
    p = b->data + HDR;
    g_assert_cmpuint((uint32_t)ldl_le_p(p), ==, e->step);
    g_assert_cmpuint((uint32_t)ldl_le_p(p + 4), ==, e->node);
    g_assert_cmphex(ldq_le_p(p + 8), ==, e->epoch);
    g_assert_cmphex(ldq_le_p(p + 16), ==, e->bytes);
    g_assert_cmpuint((uint32_t)ldl_le_p(p + 24), ==, e->vcpus);
    g_assert_cmpuint((uint32_t)ldl_le_p(p + 28), ==, 0);

    distvm_wire_begin(hand, DISTVM_MSG_EPOCH, src, 0);
    distvm_wire_put_u32(hand, e->step);
    distvm_wire_put_u32(hand, e->node);
    distvm_wire_put_u64(hand, e->epoch);
    distvm_wire_put_u64(hand, e->bytes);
    distvm_wire_put_u32(hand, e->vcpus);
    distvm_wire_put_u32(hand, 0);
    distvm_wire_end(hand);
    g_assert_cmpmem(hand->data, hand->len, b->data, b->len);

    decode_ok(b, lim, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_EPOCH, EPOCH_FIXED, src, 0);
    g_assert_cmpuint(d.msg.u.epoch.step, ==, e->step);
    g_assert_cmpuint(d.msg.u.epoch.node, ==, e->node);
    g_assert_cmphex(d.msg.u.epoch.epoch, ==, e->epoch);
    g_assert_cmphex(d.msg.u.epoch.bytes, ==, e->bytes);
    g_assert_cmpuint(d.msg.u.epoch.vcpus, ==, e->vcpus);
    decoded_free(&d);

    g_byte_array_unref(hand);
    g_byte_array_unref(b);
}

/*
 * EPOCH: a known step of an epoch other than 0, about a node of the
 * cluster, with any count of bytes and at most the machine's vCPUs; no
 * RAM layout is needed
 */
static void test_epoch(void)
{
    static const uint64_t epochs[] = {
        1, 2, 0xffffffffull, 0x100000000ull, UINT64_MAX - 1, UINT64_MAX,
    };
    static const uint64_t bytes[] = {
        0, 1, 4096, 0x123456789abull, UINT64_MAX - 1, UINT64_MAX,
    };
    /* up to limits.nr_vcpus */
    static const uint32_t vcpus[] = { 0, 1, 8, 2, 7, 5 };
    static const DistvmWireLimits one_node = { .nodes = 1 };
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (uint32_t step = 0; step < DISTVM_EPOCH__MAX; step++) {
        for (uint32_t node = 0; node < limits.nodes; node++) {
            for (size_t i = 0; i < ARRAY_SIZE(epochs); i++) {
                DistvmMsgEpoch e = {
                    .step = step, .node = node, .epoch = epochs[i],
                    .bytes = bytes[i], .vcpus = vcpus[i],
                };

                /* from any node, about any */
                for (uint32_t src = 0; src < limits.nodes; src++) {
                    check_epoch(&limits, src, &e);
                }
                check_epoch(&limits_no_ram, node, &e);
                /* a machine of fewer vCPUs */
                e.vcpus = MIN(vcpus[i], limits_one_vcpu_4nodes.nr_vcpus);
                check_epoch(&limits_one_vcpu_4nodes, 3 - node, &e);
                e.vcpus = 0;
                if (node < limits_nodes_only.nodes) {
                    check_epoch(&limits_nodes_only, node, &e);
                }
            }
        }
        check_epoch(&limits_most, DISTVM_WIRE_MAX_NODES - 1,
                    &(DistvmMsgEpoch) {
            .step = step, .node = DISTVM_WIRE_MAX_NODES - 1, .epoch = 7,
            .bytes = 1, .vcpus = UINT32_MAX,
        });
        check_epoch(&one_node, 0, &(DistvmMsgEpoch) {
            .step = step, .node = 0, .epoch = 1,
        });
    }

    /* each field in its place */
    for (int bit = 0; bit < 64; bit++) {
        check_epoch(&limits_most, bit % DISTVM_WIRE_MAX_NODES,
                    &(DistvmMsgEpoch) {
            .step = bit % DISTVM_EPOCH__MAX,
            .node = (bit + 1) % DISTVM_WIRE_MAX_NODES,
            .epoch = 1ull << bit, .bytes = ~(1ull << bit),
            .vcpus = 1u << (31 - bit % 32),
        });
    }

    /* a sequence number is not looked at: passed through as it is */
    for (size_t i = 0; i < ARRAY_SIZE(flow_dones); i++) {
        distvm_wire_epoch(b, 2, &(DistvmMsgEpoch) {
            .step = DISTVM_EPOCH_SENT, .node = 2, .epoch = 9, .bytes = 100,
            .vcpus = 6,
        });
        distvm_wire_set_seq(b, flow_dones[i]);
        decode_ok(b, &limits, &d);
        check_hdr(&d.msg.hdr, DISTVM_MSG_EPOCH, EPOCH_FIXED, 2,
                  flow_dones[i]);
        g_assert_cmpuint(d.msg.u.epoch.step, ==, DISTVM_EPOCH_SENT);
        g_assert_cmpuint(d.msg.u.epoch.node, ==, 2);
        g_assert_cmpuint(d.msg.u.epoch.epoch, ==, 9);
        g_assert_cmpuint(d.msg.u.epoch.bytes, ==, 100);
        g_assert_cmpuint(d.msg.u.epoch.vcpus, ==, 6);
        decoded_free(&d);
    }

    /* distvm_wire_epoch empties the buffer first */
    distvm_wire_empty(b, DISTVM_MSG_READY, 1, 2);
    distvm_wire_epoch(b, 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SAVE, .epoch = 1,
    });
    g_assert_cmpuint(b->len, ==, HDR + EPOCH_FIXED);
    g_assert_cmphex(ldq_le_p(b->data + OFF_SEQ), ==, 0);
    g_byte_array_unref(b);
}

/* EPOCH @e from @src must be refused with exactly @what */
static void expect_epoch_error(uint32_t src, const DistvmMsgEpoch *e,
                               const char *what)
{
    GByteArray *b = g_byte_array_new();

    distvm_wire_epoch(b, src, e);
    expect_exact_error(b, what);
    g_byte_array_unref(b);
}

/* EPOCH of an unknown step, of epoch 0, or about a node outside the cluster */
static void test_epoch_bad(void)
{
    static const uint32_t steps[] = {
        DISTVM_EPOCH__MAX, DISTVM_EPOCH__MAX + 1, 0x100, 0x10000,
        INT32_MAX, 0x80000000u, UINT32_MAX,
    };
    static const uint32_t nodes[] = {
        4, 5, DISTVM_WIRE_MAX_NODES, 0x80000000u, UINT32_MAX,
    };
    GByteArray *b = g_byte_array_new();

    /* a step that does not exist, of any epoch, with any vCPUs */
    for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
        g_autofree char *what = epoch_error(steps[i], 5, 0);
        g_autofree char *last = epoch_error(steps[i], UINT64_MAX, 8);

        expect_epoch_error(0, &(DistvmMsgEpoch) {
            .step = steps[i], .node = 0, .epoch = 5,
        }, what);
        expect_epoch_error(3, &(DistvmMsgEpoch) {
            .step = steps[i], .node = 3, .epoch = UINT64_MAX,
            .bytes = UINT64_MAX, .vcpus = 8,
        }, last);
    }

    /* epoch 0, at any step, about any node */
    for (uint32_t step = 0; step < DISTVM_EPOCH__MAX; step++) {
        g_autofree char *what = epoch_error(step, 0, 0);
        g_autofree char *with_vcpus = epoch_error(step, 0, 3);

        for (uint32_t n = 0; n < limits.nodes; n++) {
            expect_epoch_error(n, &(DistvmMsgEpoch) {
                .step = step, .node = n, .epoch = 0, .bytes = 4096,
            }, what);
            expect_epoch_error(n, &(DistvmMsgEpoch) {
                .step = step, .node = n, .epoch = 0, .bytes = 4096,
                .vcpus = 3,
            }, with_vcpus);
        }
    }

    /* a node outside the cluster, at any step */
    for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
        g_autofree char *what = g_strdup_printf(
            "EPOCH message names node %" PRIu32 " in the node it is about; "
            "the cluster has 4", nodes[i]);

        for (uint32_t step = 0; step < DISTVM_EPOCH__MAX; step++) {
            expect_epoch_error(step % limits.nodes, &(DistvmMsgEpoch) {
                .step = step, .node = nodes[i], .epoch = 5,
            }, what);
        }
    }

    /* The limit is the cluster's size, not DISTVM_WIRE_MAX_NODES */
    distvm_wire_epoch(b, 1, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_STORED, .node = 2, .epoch = 5,
    });
    expect_decode_error(b, &limits_nodes_only, "EPOCH message names node 2 "
                        "in the node it is about; the cluster has 2");
    distvm_wire_epoch(b, 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SENT, .node = 15, .epoch = 5,
    });
    expect_decode_error(b, &limits, "EPOCH message names node 15 in the "
                        "node it is about; the cluster has 4");

    /* The sender is checked first, then the node, then step and epoch */
    expect_epoch_error(0, &(DistvmMsgEpoch) {
        .step = UINT32_MAX, .node = 4, .epoch = 0,
    }, "EPOCH message names node 4 in the node it is about; the cluster "
       "has 4");
    distvm_wire_epoch(b, 4, &(DistvmMsgEpoch) {
        .step = UINT32_MAX, .node = 4, .epoch = 0,
    });
    expect_decode_error(b, &limits, "EPOCH message names node 4 in its "
                        "sender; the cluster has 4");
    expect_epoch_error(0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH__MAX, .node = 0, .epoch = 0, .vcpus = 9,
    }, "EPOCH message of step 22 for epoch 0 with 9 vCPUs");

    /*
     * The step, the node, the epoch and the vCPUs are checked before
     * trailing bytes
     */
    distvm_wire_epoch(b, 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH__MAX, .node = 0, .epoch = 1,
    });
    distvm_wire_put_u32(b, 0);
    set_u32(b, OFF_LENGTH, b->len - HDR);
    expect_exact_error(b, "EPOCH message of step 22 for epoch 1 with 0 "
                       "vCPUs");
    distvm_wire_epoch(b, 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SAVE, .node = 0, .epoch = 0,
    });
    distvm_wire_put_u64(b, 1);
    set_u32(b, OFF_LENGTH, b->len - HDR);
    expect_exact_error(b, "EPOCH message of step 0 for epoch 0 with 0 "
                       "vCPUs");
    distvm_wire_epoch(b, 2, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SENT, .node = 2, .epoch = 1, .vcpus = 9,
    });
    distvm_wire_put_u32(b, 0);
    set_u32(b, OFF_LENGTH, b->len - HDR);
    expect_exact_error(b, "EPOCH message of step 2 for epoch 1 with 9 "
                       "vCPUs");
    distvm_wire_epoch(b, 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SAVE, .node = 4, .epoch = 1,
    });
    distvm_wire_put_u32(b, 0);
    set_u32(b, OFF_LENGTH, b->len - HDR);
    expect_exact_error(b, "EPOCH message names node 4 in the node it is "
                       "about; the cluster has 4");

    /*
     * The payload is exactly the step, the node, the epoch, bytes, the
     * vCPUs and the reserved field
     */
    for (uint32_t step = 0; step < DISTVM_EPOCH__MAX; step++) {
        distvm_wire_epoch(b, 1, &(DistvmMsgEpoch) {
            .step = step, .node = 1, .epoch = 9, .bytes = 4096,
        });
        check_exact_length(b, false);
        distvm_wire_epoch(b, 3, &(DistvmMsgEpoch) {
            .step = step, .node = 2, .epoch = UINT64_MAX,
            .bytes = UINT64_MAX, .vcpus = 8,
        });
        distvm_wire_set_seq(b, UINT64_MAX - step);
        check_exact_length(b, false);
    }

    /* other messages, retyped, and the other way */
    distvm_wire_mgr_move(b, 0, DISTVM_MGR_MOVE_ASK, 1, 2);
    expect_retyped_error(b, DISTVM_MSG_EPOCH, "EPOCH message is truncated");
    distvm_wire_flow(b, 1, 0x100000000ull);
    expect_retyped_error(b, DISTVM_MSG_EPOCH, "EPOCH message is truncated");
    distvm_wire_epoch(b, 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SAVE, .node = 0, .epoch = 1,
    });
    expect_retyped_error(b, DISTVM_MSG_MGR_MOVE, "MGR_MOVE message has 20 "
                         "bytes of trailing garbage");
    distvm_wire_epoch(b, 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SAVE, .node = 0, .epoch = 1,
    });
    expect_retyped_error(b, DISTVM_MSG_FLOW, "FLOW message has 24 bytes of "
                         "trailing garbage");
    g_byte_array_unref(b);
}

/* EPOCH @e from @src must be refused under @lim with exactly @what */
static void expect_epoch_error_lim(const DistvmWireLimits *lim, uint32_t src,
                                   const DistvmMsgEpoch *e, const char *what)
{
    GByteArray *b = g_byte_array_new();
    g_autofree char *got = NULL;

    distvm_wire_epoch(b, src, e);
    got = decode_error(b, lim);
    g_assert_cmpstr(got, ==, what);
    g_byte_array_unref(b);
}

/*
 * EPOCH's vCPUs: how many vCPU states the node sent (SENT) or its replica
 * stored (STORED), at most the machine's, whatever the step
 */
static void test_epoch_vcpus(void)
{
    static const DistvmWireLimits *const lims[] = {
        &limits, &limits_no_ram, &limits_one_vcpu, &limits_one_vcpu_4nodes,
        &limits_nodes_only,
    };
    static const uint32_t too_many[] = {
        9, 16, 0x100, 0x10000, INT32_MAX, 0x80000000u, UINT32_MAX - 1,
        UINT32_MAX,
    };
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(lims); i++) {
        const DistvmWireLimits *lim = lims[i];
        uint32_t last = lim->nodes - 1;

        for (uint32_t step = 0; step < DISTVM_EPOCH__MAX; step++) {
            g_autofree char *what = epoch_error(step, 5, lim->nr_vcpus + 1);
            g_autofree char *most = epoch_error(step, UINT64_MAX,
                                                UINT32_MAX);

            /* all of the machine's vCPUs, and none */
            check_epoch(lim, last, &(DistvmMsgEpoch) {
                .step = step, .node = last, .epoch = 5, .bytes = 4096,
                .vcpus = lim->nr_vcpus,
            });
            check_epoch(lim, 0, &(DistvmMsgEpoch) {
                .step = step, .node = 0, .epoch = UINT64_MAX,
                .bytes = UINT64_MAX,
            });
            /* one more is refused, and the most there can be */
            expect_epoch_error_lim(lim, last, &(DistvmMsgEpoch) {
                .step = step, .node = last, .epoch = 5, .bytes = 4096,
                .vcpus = lim->nr_vcpus + 1,
            }, what);
            expect_epoch_error_lim(lim, 0, &(DistvmMsgEpoch) {
                .step = step, .node = 0, .epoch = UINT64_MAX,
                .bytes = UINT64_MAX, .vcpus = UINT32_MAX,
            }, most);
        }
    }

    /* any count above the machine's 8, at the steps that carry one */
    for (size_t i = 0; i < ARRAY_SIZE(too_many); i++) {
        g_autofree char *sent = epoch_error(DISTVM_EPOCH_SENT, 7,
                                            too_many[i]);
        g_autofree char *stored = epoch_error(DISTVM_EPOCH_STORED, 7,
                                              too_many[i]);

        expect_epoch_error(2, &(DistvmMsgEpoch) {
            .step = DISTVM_EPOCH_SENT, .node = 2, .epoch = 7,
            .bytes = 9876, .vcpus = too_many[i],
        }, sent);
        expect_epoch_error(3, &(DistvmMsgEpoch) {
            .step = DISTVM_EPOCH_STORED, .node = 2, .epoch = 7,
            .bytes = 9876, .vcpus = too_many[i],
        }, stored);
    }

    /* every count below 0x100: up to 8 are accepted, no more */
    for (uint32_t vcpus = 0; vcpus <= 0xff; vcpus++) {
        DistvmMsgEpoch e = {
            .step = DISTVM_EPOCH_SENT, .node = 1, .epoch = vcpus + 1,
            .bytes = vcpus * 4096, .vcpus = vcpus,
        };

        if (vcpus <= limits.nr_vcpus) {
            check_epoch(&limits, 1, &e);
        } else {
            g_autofree char *what = epoch_error(DISTVM_EPOCH_SENT,
                                                vcpus + 1, vcpus);

            expect_epoch_error(1, &e, what);
        }
    }

    /* The limit is the machine's vCPUs, not the most the wire allows */
    check_epoch(&limits_most, 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_STORED, .node = 1, .epoch = 1,
        .vcpus = UINT32_MAX,
    });
    expect_epoch_error_lim(&limits_one_vcpu, 1, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SENT, .node = 1, .epoch = 1, .vcpus = 2,
    }, "EPOCH message of step 2 for epoch 1 with 2 vCPUs");
    expect_epoch_error_lim(&limits_nodes_only, 1, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SENT, .node = 1, .epoch = 1, .vcpus = 1,
    }, "EPOCH message of step 2 for epoch 1 with 1 vCPUs");

    /* The sender and the node are checked first */
    distvm_wire_epoch(b, 4, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SENT, .node = 4, .epoch = 1, .vcpus = 9,
    });
    expect_decode_error(b, &limits, "EPOCH message names node 4 in its "
                        "sender; the cluster has 4");
    expect_epoch_error(0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SENT, .node = 4, .epoch = 1, .vcpus = 9,
    }, "EPOCH message names node 4 in the node it is about; the cluster "
       "has 4");
    g_byte_array_unref(b);
}

/* EPOCH's reserved field, after the vCPUs, must be 0 */
static void test_epoch_reserved(void)
{
    static const uint32_t reserved[] = {
        1, 2, 0x100, 0x10000, 0x80000000u, UINT32_MAX,
    };
    const char *what = "EPOCH message with a non-zero reserved field";
    GByteArray *b = g_byte_array_new();

    for (uint32_t step = 0; step < DISTVM_EPOCH__MAX; step++) {
        for (size_t i = 0; i < ARRAY_SIZE(reserved); i++) {
            /* the layout, by hand */
            distvm_wire_begin(b, DISTVM_MSG_EPOCH, 2, 0);
            distvm_wire_put_u32(b, step);
            distvm_wire_put_u32(b, 2);                  /* node */
            distvm_wire_put_u64(b, 5);                  /* epoch */
            distvm_wire_put_u64(b, 4096);               /* bytes */
            distvm_wire_put_u32(b, 3);                  /* vcpus */
            distvm_wire_put_u32(b, reserved[i]);
            distvm_wire_end(b);
            expect_exact_error(b, what);
            expect_decode_error(b, &limits_one_vcpu_4nodes, "EPOCH message "
                                "of step");

            /* the encoder's, with all of the machine's vCPUs */
            distvm_wire_epoch(b, 1, &(DistvmMsgEpoch) {
                .step = step, .node = 1, .epoch = UINT64_MAX,
                .bytes = UINT64_MAX, .vcpus = 8,
            });
            set_u32(b, HDR + 28, reserved[i]);
            expect_exact_error(b, what);
        }
    }

    /* The layout above is right */
    {
        Decoded d;

        distvm_wire_begin(b, DISTVM_MSG_EPOCH, 2, 0);
        distvm_wire_put_u32(b, DISTVM_EPOCH_SENT);
        distvm_wire_put_u32(b, 2);
        distvm_wire_put_u64(b, 5);
        distvm_wire_put_u64(b, 4096);
        distvm_wire_put_u32(b, 3);
        distvm_wire_put_u32(b, 0);
        distvm_wire_end(b);
        decode_ok(b, &limits, &d);
        g_assert_cmpuint(d.msg.u.epoch.step, ==, DISTVM_EPOCH_SENT);
        g_assert_cmpuint(d.msg.u.epoch.node, ==, 2);
        g_assert_cmpuint(d.msg.u.epoch.epoch, ==, 5);
        g_assert_cmpuint(d.msg.u.epoch.bytes, ==, 4096);
        g_assert_cmpuint(d.msg.u.epoch.vcpus, ==, 3);
        decoded_free(&d);
    }

    /*
     * The sender, the node, then the step, the epoch and the vCPUs are
     * checked before the reserved field; it is before trailing bytes
     */
    distvm_wire_epoch(b, 4, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SENT, .node = 1, .epoch = 1,
    });
    set_u32(b, HDR + 28, 1);
    expect_decode_error(b, &limits, "EPOCH message names node 4 in its "
                        "sender; the cluster has 4");
    distvm_wire_epoch(b, 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SENT, .node = 4, .epoch = 1,
    });
    set_u32(b, HDR + 28, 1);
    expect_exact_error(b, "EPOCH message names node 4 in the node it is "
                       "about; the cluster has 4");
    distvm_wire_epoch(b, 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH__MAX, .node = 0, .epoch = 1,
    });
    set_u32(b, HDR + 28, 1);
    expect_exact_error(b, "EPOCH message of step 22 for epoch 1 with 0 "
                       "vCPUs");
    distvm_wire_epoch(b, 0, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SAVE, .node = 0, .epoch = 0,
    });
    set_u32(b, HDR + 28, UINT32_MAX);
    expect_exact_error(b, "EPOCH message of step 0 for epoch 0 with 0 "
                       "vCPUs");
    distvm_wire_epoch(b, 2, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SENT, .node = 2, .epoch = 1, .vcpus = 9,
    });
    set_u32(b, HDR + 28, 1);
    expect_exact_error(b, "EPOCH message of step 2 for epoch 1 with 9 "
                       "vCPUs");
    distvm_wire_epoch(b, 2, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SENT, .node = 2, .epoch = 1, .vcpus = 8,
    });
    set_u32(b, HDR + 28, 1);
    distvm_wire_put_u32(b, 0);
    set_u32(b, OFF_LENGTH, b->len - HDR);
    expect_exact_error(b, what);
    g_byte_array_unref(b);
}

/*
 * An EPOCH @msg sent by @src, decoded under @lim; NULL: with the RAM
 * layout and without
 */
typedef struct EpochSent {
    uint32_t src;
    DistvmMsgEpoch msg;
    const DistvmWireLimits *lim;
} EpochSent;

/* @s's EPOCH, of step @step */
static DistvmMsgEpoch epoch_of_step(const EpochSent *s, uint32_t step)
{
    DistvmMsgEpoch e = s->msg;

    e.step = step;
    return e;
}

/*
 * A run of EPOCH's steps (test_epoch_steps): @steps, numbered from @first
 * on the wire, one after another, right after @before and right before
 * @after; @run, the run step by step as it is sent; @more, more of them,
 * each under its limits; each step sent by every node of 4, and about
 * @small_node between 2 nodes; each step's layout by hand, as @hand's
 * but for its step
 */
typedef struct EpochSteps {
    const uint32_t *steps;
    size_t nr_steps;
    uint32_t first;
    uint32_t before;
    uint32_t after;
    const EpochSent *run;
    size_t nr_run;
    const EpochSent *more;
    size_t nr_more;
    uint32_t small_node;
    EpochSent hand;
} EpochSteps;

/*
 * A run of EPOCH's steps, @opaque's EpochSteps: their numbers on the
 * wire, the run step by step, with the RAM layout or without, and more
 * of them; they are encoded as every EPOCH is, and need no RAM layout
 */
static void test_epoch_steps(const void *opaque)
{
    const EpochSteps *t = opaque;
    GByteArray *b = g_byte_array_new();
    const DistvmMsgEpoch *h = &t->hand.msg;
    Decoded d;

    /* their numbers on the wire, one after another, and no other between */
    g_assert_cmpuint(t->before, ==, t->first - 1);
    for (size_t i = 0; i < t->nr_steps; i++) {
        g_assert_cmpuint(t->steps[i], ==, t->first + i);
    }
    g_assert_cmpuint(t->after, ==, t->first + t->nr_steps);

    /* the run, step by step, with the RAM layout or without */
    for (int ram = 0; ram < 2; ram++) {
        for (size_t i = 0; i < t->nr_run; i++) {
            check_epoch(ram ? &limits : &limits_no_ram, t->run[i].src,
                        &t->run[i].msg);
        }
    }

    for (size_t i = 0; i < t->nr_more; i++) {
        check_epoch(t->more[i].lim, t->more[i].src, &t->more[i].msg);
    }
    for (size_t i = 0; i < t->nr_steps; i++) {
        for (uint32_t src = 0; src < limits.nodes; src++) {
            check_epoch(&limits, src, &(DistvmMsgEpoch) {
                .step = t->steps[i], .node = 3 - src,
                .epoch = 0x100000000ull, .bytes = UINT64_MAX,
                .vcpus = src * 2,
            });
        }
        check_epoch(&limits_nodes_only, 1, &(DistvmMsgEpoch) {
            .step = t->steps[i], .node = t->small_node, .epoch = 7,
        });
    }

    /* the layout by hand: each step's number */
    for (uint32_t step = t->first; step < t->first + t->nr_steps; step++) {
        distvm_wire_begin(b, DISTVM_MSG_EPOCH, t->hand.src, 0);
        distvm_wire_put_u32(b, step);
        distvm_wire_put_u32(b, h->node);
        distvm_wire_put_u64(b, h->epoch);
        distvm_wire_put_u64(b, h->bytes);
        distvm_wire_put_u32(b, h->vcpus);
        distvm_wire_put_u32(b, 0);                  /* reserved */
        distvm_wire_end(b);
        decode_ok(b, t->hand.lim, &d);
        check_hdr(&d.msg.hdr, DISTVM_MSG_EPOCH, EPOCH_FIXED, t->hand.src, 0);
        g_assert_cmpuint(d.msg.u.epoch.step, ==, t->steps[step - t->first]);
        g_assert_cmpuint(d.msg.u.epoch.node, ==, h->node);
        g_assert_cmpuint(d.msg.u.epoch.epoch, ==, h->epoch);
        g_assert_cmpuint(d.msg.u.epoch.bytes, ==, h->bytes);
        g_assert_cmpuint(d.msg.u.epoch.vcpus, ==, h->vcpus);
        decoded_free(&d);
    }
    g_byte_array_unref(b);
}

/*
 * The steps of a run refused (test_epoch_steps_bad): each step as
 * @numbers sends it, for its epoch or vCPUs (epoch 0, 9 vCPUs, the most
 * of both); as @reserved sends it, with @reserved_value in its reserved
 * field; as @cut sends it, cut or with bytes more; and the steps after
 * the last, @after, refused with @after_what
 */
typedef struct EpochStepsBad {
    const uint32_t *steps;
    size_t nr_steps;
    EpochSent numbers[3];
    EpochSent reserved;
    uint32_t reserved_value;
    EpochSent cut;
    EpochSent after[2];
    const char *after_what[2];
} EpochStepsBad;

/*
 * The steps of a run, @opaque's EpochStepsBad, are refused for what any
 * step is: epoch 0, more vCPUs than the machine's, a node outside the
 * cluster, a non-zero reserved field, a payload of another length; the
 * steps after the last are unknown
 */
static void test_epoch_steps_bad(const void *opaque)
{
    const EpochStepsBad *t = opaque;
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < t->nr_steps; i++) {
        uint32_t step = t->steps[i];
        g_autofree char *two = epoch_error(step, 7, 2);
        DistvmMsgEpoch e;

        for (size_t j = 0; j < ARRAY_SIZE(t->numbers); j++) {
            g_autofree char *what = NULL;

            e = epoch_of_step(&t->numbers[j], step);
            what = epoch_error(step, e.epoch, e.vcpus);
            expect_epoch_error(t->numbers[j].src, &e, what);
        }
        expect_epoch_error_lim(&limits_one_vcpu, 1, &(DistvmMsgEpoch) {
            .step = step, .node = 1, .epoch = 7, .vcpus = 2,
        }, two);
        expect_epoch_error(0, &(DistvmMsgEpoch) {
            .step = step, .node = 4, .epoch = 7,
        }, "EPOCH message names node 4 in the node it is about; the "
           "cluster has 4");
        expect_epoch_error_lim(&limits_nodes_only, 1, &(DistvmMsgEpoch) {
            .step = step, .node = 2, .epoch = 7,
        }, "EPOCH message names node 2 in the node it is about; the "
           "cluster has 2");

        /* the reserved field */
        e = epoch_of_step(&t->reserved, step);
        distvm_wire_epoch(b, t->reserved.src, &e);
        set_u32(b, HDR + 28, t->reserved_value);
        expect_exact_error(b, "EPOCH message with a non-zero reserved "
                           "field");

        /* every cut is truncated, every byte more is garbage */
        e = epoch_of_step(&t->cut, step);
        distvm_wire_epoch(b, t->cut.src, &e);
        check_exact_length(b, false);
    }

    for (size_t j = 0; j < ARRAY_SIZE(t->after); j++) {
        expect_epoch_error(t->after[j].src, &t->after[j].msg,
                           t->after_what[j]);
    }
    g_byte_array_unref(b);
}

/* EPOCH's rollback steps */
static const uint32_t rollback_steps[] = {
    DISTVM_EPOCH_ROLLBACK, DISTVM_EPOCH_FETCH, DISTVM_EPOCH_FETCHED,
    DISTVM_EPOCH_ROLLED,
};

/*
 * EPOCH's rollback steps (wire version 22), as distvm-epoch.c sends them
 * for a rollback to committed epoch 7: home tells the others (ROLLBACK,
 * about node 0); node 1 asked node 2 for its copies (FETCH, about
 * itself); node 2 sent them (FETCHED, about itself); node 1 rolled back,
 * with the 3 vCPU states it loaded (ROLLED), or cannot now (BUSY).
 */
static const EpochSent rollback_run[] = {
    { 0, { .step = DISTVM_EPOCH_ROLLBACK, .node = 0, .epoch = 7 } },
    { 1, { .step = DISTVM_EPOCH_FETCH, .node = 1, .epoch = 7 } },
    { 2, { .step = DISTVM_EPOCH_FETCHED, .node = 2, .epoch = 7 } },
    { 1, { .step = DISTVM_EPOCH_ROLLED, .node = 1, .epoch = 7, .vcpus = 3 } },
    { 1, { .step = DISTVM_EPOCH_BUSY, .node = 1, .epoch = 7 } },
};

/*
 * ROLLED: every vCPU of the machine loaded on one node, or none; the
 * decoder does not look at the bytes, nor at who the steps are about
 * (that is the role check's)
 */
static const EpochSent rollback_more[] = {
    { 3, { .step = DISTVM_EPOCH_ROLLED, .node = 3, .epoch = UINT64_MAX,
           .vcpus = 8 }, &limits },
    { 2, { .step = DISTVM_EPOCH_ROLLED, .node = 2, .epoch = 1 }, &limits },
    { 1, { .step = DISTVM_EPOCH_ROLLED, .node = 1, .epoch = 2, .vcpus = 1 },
      &limits_one_vcpu },
    { DISTVM_WIRE_MAX_NODES - 1, { .step = DISTVM_EPOCH_ROLLED,
      .node = DISTVM_WIRE_MAX_NODES - 1, .epoch = 7, .vcpus = UINT32_MAX },
      &limits_most },
};

/*
 * The rollback's step numbers, 6 to 9, after the checkpoint's (ABORT,
 * 5), then a recovery's (LOST, 10; recovery below)
 */
static const EpochSteps rollback = {
    .steps = rollback_steps, .nr_steps = ARRAY_SIZE(rollback_steps),
    .first = 6, .before = DISTVM_EPOCH_ABORT, .after = DISTVM_EPOCH_LOST,
    .run = rollback_run, .nr_run = ARRAY_SIZE(rollback_run),
    .more = rollback_more, .nr_more = ARRAY_SIZE(rollback_more),
    .small_node = 1,
    .hand = { 3, { .node = 3, .epoch = 7, .bytes = 0, .vcpus = 2 }, &limits },
};

static const EpochStepsBad rollback_bad = {
    .steps = rollback_steps, .nr_steps = ARRAY_SIZE(rollback_steps),
    .numbers = {
        { 1, { .node = 1, .epoch = 0 } },
        { 2, { .node = 2, .epoch = 7, .vcpus = 9 } },
        { 3, { .node = 3, .epoch = UINT64_MAX, .bytes = UINT64_MAX,
               .vcpus = UINT32_MAX } },
    },
    .reserved = { 1, { .node = 1, .epoch = 7, .vcpus = 8 } },
    .reserved_value = 0x80000000u,
    .cut = { 2, { .node = 2, .epoch = 7, .bytes = 1, .vcpus = 8 } },
    /* the steps after COMMITTED, the last since version 25 */
    .after = {
        { 0, { .step = 22, .node = 0, .epoch = 7 } },
        { 1, { .step = 23, .node = 1, .epoch = 7, .vcpus = 3 } },
    },
    .after_what = {
        "EPOCH message of step 22 for epoch 7 with 0 vCPUs",
        "EPOCH message of step 23 for epoch 7 with 3 vCPUs",
    },
};

/* EPOCH's steps taking a lost node over */
static const uint32_t recovery_steps[] = {
    DISTVM_EPOCH_LOST, DISTVM_EPOCH_RECOVER, DISTVM_EPOCH_SETTLE,
    DISTVM_EPOCH_MARK, DISTVM_EPOCH_HELD_DONE, DISTVM_EPOCH_RUNS,
    DISTVM_EPOCH_READY, DISTVM_EPOCH_PLACE, DISTVM_EPOCH_RECOVERED,
};

/*
 * EPOCH's steps taking a lost node over (wire version 23), as
 * distvm-recovery.c sends them when node 3 is lost, from committed epoch
 * 7: node 1 tells home (LOST, about node 3); home tells the others
 * (RECOVER), then SETTLE; node 2 tells the others its page messages
 * stopped (MARK), then that it told the pages it holds (HELD_DONE); node
 * 1 runs vCPU 5 (RUNS) and is READY; home places vCPU 6 on node 2
 * (PLACE, about node 2), and the guest runs again (RECOVERED).
 */
static const EpochSent recovery_run[] = {
    { 1, { .step = DISTVM_EPOCH_LOST, .node = 3, .epoch = 7 } },
    { 0, { .step = DISTVM_EPOCH_RECOVER, .node = 3, .epoch = 7 } },
    { 0, { .step = DISTVM_EPOCH_SETTLE, .node = 3, .epoch = 7 } },
    { 2, { .step = DISTVM_EPOCH_MARK, .node = 3, .epoch = 7 } },
    { 2, { .step = DISTVM_EPOCH_HELD_DONE, .node = 3, .epoch = 7 } },
    { 1, { .step = DISTVM_EPOCH_RUNS, .node = 3, .epoch = 7, .vcpus = 5 } },
    { 1, { .step = DISTVM_EPOCH_READY, .node = 3, .epoch = 7 } },
    { 0, { .step = DISTVM_EPOCH_PLACE, .node = 2, .epoch = 7, .vcpus = 6 } },
    { 0, { .step = DISTVM_EPOCH_RECOVERED, .node = 3, .epoch = 7 } },
};

/*
 * RUNS and PLACE: the first vCPU and the last; the decoder does not look
 * at the bytes, nor at who the steps are about (that is the role check's)
 */
static const EpochSent recovery_more[] = {
    { 3, { .step = DISTVM_EPOCH_RUNS, .node = 1, .epoch = UINT64_MAX },
      &limits },
    { 0, { .step = DISTVM_EPOCH_PLACE, .node = 0, .epoch = 1, .vcpus = 7 },
      &limits },
    { 0, { .step = DISTVM_EPOCH_PLACE, .node = 1, .epoch = 2 },
      &limits_one_vcpu },
    { DISTVM_WIRE_MAX_NODES - 1, { .step = DISTVM_EPOCH_MARK, .node = 1,
      .epoch = 7, .vcpus = UINT32_MAX }, &limits_most },
};

/*
 * The recovery's step numbers, 10 to 18, after the rollback's (ROLLED,
 * 9), then parity's (PARITY_ASK, 19; parity below)
 */
static const EpochSteps recovery = {
    .steps = recovery_steps, .nr_steps = ARRAY_SIZE(recovery_steps),
    .first = 10, .before = DISTVM_EPOCH_ROLLED,
    .after = DISTVM_EPOCH_PARITY_ASK,
    .run = recovery_run, .nr_run = ARRAY_SIZE(recovery_run),
    .more = recovery_more, .nr_more = ARRAY_SIZE(recovery_more),
    .small_node = 0,
    .hand = { 2, { .node = 3, .epoch = 7, .bytes = 0, .vcpus = 4 }, &limits },
};

/* EPOCH's steps rebuilding a lost node's copies with redundancy=parity */
static const uint32_t parity_steps[] = {
    DISTVM_EPOCH_PARITY_ASK, DISTVM_EPOCH_PARITY_DONE,
};

/*
 * EPOCH's steps rebuilding a lost node's copies with redundancy=parity
 * (wire version 24), as distvm-epoch.c sends them when node 3 is lost,
 * from committed epoch 7: home asks node 1 for the committed content of
 * its slots 0 to 4 (PARITY_ASK, about node 3, with the count of slots as
 * its bytes); node 1 sent it (PARITY_DONE, about node 3, with the count
 * of bytes it sent).
 */
static const EpochSent parity_run[] = {
    { 0, { .step = DISTVM_EPOCH_PARITY_ASK, .node = 3, .epoch = 7,
           .bytes = 5 } },
    { 1, { .step = DISTVM_EPOCH_PARITY_DONE, .node = 3, .epoch = 7,
           .bytes = 2 * DISTVM_PAGE_SIZE } },
};

/*
 * any count of slots asked for or of bytes sent, none too; the decoder
 * does not look at them, nor at who the steps are about (that is the
 * role check's)
 */
static const EpochSent parity_more[] = {
    { 0, { .step = DISTVM_EPOCH_PARITY_ASK, .node = 1, .epoch = UINT64_MAX,
           .bytes = UINT64_MAX }, &limits },
    { 2, { .step = DISTVM_EPOCH_PARITY_DONE, .node = 2, .epoch = 1 },
      &limits },
    { 0, { .step = DISTVM_EPOCH_PARITY_ASK, .node = 1, .epoch = 2,
           .bytes = 1, .vcpus = 1 }, &limits_one_vcpu },
    { DISTVM_WIRE_MAX_NODES - 1, { .step = DISTVM_EPOCH_PARITY_DONE,
      .node = 1, .epoch = 7, .bytes = 0x123456789ull, .vcpus = UINT32_MAX },
      &limits_most },
};

/*
 * Parity's step numbers, 19 and 20, after a recovery's (RECOVERED, 18),
 * then home's standby's (COMMITTED, 21; below)
 */
static const EpochSteps parity = {
    .steps = parity_steps, .nr_steps = ARRAY_SIZE(parity_steps),
    .first = 19, .before = DISTVM_EPOCH_RECOVERED,
    .after = DISTVM_EPOCH_COMMITTED,
    .run = parity_run, .nr_run = ARRAY_SIZE(parity_run),
    .more = parity_more, .nr_more = ARRAY_SIZE(parity_more),
    .small_node = 0,
    .hand = { 1, { .node = 3, .epoch = 7, .bytes = 5, .vcpus = 0 }, &limits },
};

static const EpochStepsBad parity_bad = {
    .steps = parity_steps, .nr_steps = ARRAY_SIZE(parity_steps),
    .numbers = {
        { 1, { .node = 3, .epoch = 0, .bytes = 5 } },
        { 2, { .node = 3, .epoch = 7, .vcpus = 9 } },
        { 0, { .node = 3, .epoch = UINT64_MAX, .bytes = UINT64_MAX,
               .vcpus = UINT32_MAX } },
    },
    .reserved = { 1, { .node = 3, .epoch = 7, .bytes = 5, .vcpus = 8 } },
    .reserved_value = 1,
    .cut = { 2, { .node = 3, .epoch = 7, .bytes = 4096, .vcpus = 8 } },
    /* the step after COMMITTED, the last since version 25, any vCPUs */
    .after = {
        { 0, { .step = DISTVM_EPOCH_COMMITTED + 1, .node = 3, .epoch = 7,
               .bytes = 5 } },
        { 2, { .step = DISTVM_EPOCH_COMMITTED + 1, .node = 3, .epoch = 7,
               .vcpus = 8 } },
    },
    .after_what = {
        "EPOCH message of step 22 for epoch 7 with 0 vCPUs",
        "EPOCH message of step 22 for epoch 7 with 8 vCPUs",
    },
};

/* EPOCH's step of home's standby */
static const uint32_t committed_steps[] = {
    DISTVM_EPOCH_COMMITTED,
};

/*
 * EPOCH's COMMITTED (wire version 25), as distvm-epoch.c sends it once
 * node 1, home's standby, has home's COMMIT of epoch 7: about itself, no
 * bytes, no vCPUs.
 */
static const EpochSent committed_run[] = {
    { 0, { .step = DISTVM_EPOCH_COMMIT, .node = 0, .epoch = 7 } },
    { 1, { .step = DISTVM_EPOCH_COMMITTED, .node = 1, .epoch = 7 } },
};

/*
 * the first epoch and the last, from the last node of the largest
 * cluster; the decoder does not look at the bytes, nor at who the step is
 * about (that is the role check's), and takes up to the machine's vCPUs
 */
static const EpochSent committed_more[] = {
    { 3, { .step = DISTVM_EPOCH_COMMITTED, .node = 3, .epoch = 1 },
      &limits },
    { 2, { .step = DISTVM_EPOCH_COMMITTED, .node = 2, .epoch = UINT64_MAX },
      &limits },
    { 1, { .step = DISTVM_EPOCH_COMMITTED, .node = 0, .epoch = 7,
           .bytes = UINT64_MAX, .vcpus = 8 }, &limits },
    { 1, { .step = DISTVM_EPOCH_COMMITTED, .node = 1, .epoch = 2,
           .vcpus = 1 }, &limits_one_vcpu },
    { DISTVM_WIRE_MAX_NODES - 1, { .step = DISTVM_EPOCH_COMMITTED,
      .node = DISTVM_WIRE_MAX_NODES - 1, .epoch = 7 }, &limits_most },
};

/*
 * COMMITTED's step number, 21, after parity's (PARITY_DONE, 20); no more
 * (DISTVM_EPOCH__MAX, 22)
 */
static const EpochSteps committed = {
    .steps = committed_steps, .nr_steps = ARRAY_SIZE(committed_steps),
    .first = 21, .before = DISTVM_EPOCH_PARITY_DONE,
    .after = DISTVM_EPOCH__MAX,
    .run = committed_run, .nr_run = ARRAY_SIZE(committed_run),
    .more = committed_more, .nr_more = ARRAY_SIZE(committed_more),
    .small_node = 1,
    .hand = { 1, { .node = 1, .epoch = 7, .bytes = 0, .vcpus = 0 }, &limits },
};

static const EpochStepsBad committed_bad = {
    .steps = committed_steps, .nr_steps = ARRAY_SIZE(committed_steps),
    .numbers = {
        { 1, { .node = 1, .epoch = 0 } },
        { 3, { .node = 3, .epoch = 7, .vcpus = 9 } },
        { 2, { .node = 2, .epoch = UINT64_MAX, .bytes = UINT64_MAX,
               .vcpus = UINT32_MAX } },
    },
    .reserved = { 1, { .node = 1, .epoch = 7 } },
    .reserved_value = UINT32_MAX,
    .cut = { 3, { .node = 3, .epoch = UINT64_MAX } },
    /* the steps after COMMITTED, the last since version 25 */
    .after = {
        { 1, { .step = DISTVM_EPOCH_COMMITTED + 1, .node = 1, .epoch = 7 } },
        { 3, { .step = DISTVM_EPOCH_COMMITTED + 2, .node = 3, .epoch = 7,
               .vcpus = 2 } },
    },
    .after_what = {
        "EPOCH message of step 22 for epoch 7 with 0 vCPUs",
        "EPOCH message of step 23 for epoch 7 with 2 vCPUs",
    },
};

/* A page of an EPOCH_PAGES: its number, and its data, NULL if all zero */
typedef struct EpochPage {
    uint64_t page;
    const uint8_t *data;
} EpochPage;

/*
 * An EPOCH_PAGES from @src of the @count pages @pages of RAMBlock @block
 * at epoch @epoch, of @kind (0, DISTVM_EPOCH_PAGE_ASK: pages without
 * data, or DISTVM_EPOCH_PAGE_COPY), seq @seq: its layout as it is built
 * (the one built by hand, bit for bit, at the end), its decoding under
 * @lim, and its pages read back with distvm_wire_epoch_page(), which ends
 * exactly at the end of the payload
 */
static void check_epoch_pages_full(const DistvmWireLimits *lim, uint32_t src,
                                   uint64_t seq, uint64_t epoch,
                                   uint32_t block, uint32_t kind,
                                   const EpochPage *pages, uint32_t count)
{
    GByteArray *b = g_byte_array_new();
    GByteArray *hand = g_byte_array_new();
    size_t len = EPOCH_PAGES_FIXED;
    const uint8_t *pos;
    Decoded d;

    distvm_wire_epoch_pages_begin(b, src, epoch, block);
    g_assert_cmpuint(b->len, ==, HDR + EPOCH_PAGES_FIXED);
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + HDR + 12), ==, 0);
    for (uint32_t i = 0; i < count; i++) {
        /* an asked page has no data */
        g_assert(kind != DISTVM_EPOCH_PAGE_ASK || !pages[i].data);
        /* each page counted as it is added */
        g_assert_cmpuint(distvm_wire_epoch_pages_add(b, pages[i].page, kind,
                                                     pages[i].data), ==,
                         i + 1);
        len += EPOCH_PAGE_HDR + (pages[i].data ? DISTVM_PAGE_SIZE : 0);
        g_assert_cmpuint(b->len, ==, HDR + len);
        g_assert_cmpuint((uint32_t)ldl_le_p(b->data + HDR + 12), ==, i + 1);
    }
    distvm_wire_end(b);
    if (seq) {
        distvm_wire_set_seq(b, seq);
    }
    g_assert_cmpuint(b->len, ==, HDR + len);
    g_assert_cmpuint(lduw_le_p(b->data + OFF_TYPE), ==,
                     DISTVM_MSG_EPOCH_PAGES);
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + OFF_LENGTH), ==, len);
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + OFF_SRC), ==, src);
    g_assert_cmphex(ldq_le_p(b->data + OFF_SEQ), ==, seq);

    /*
     * epoch, block, count; each page: its number, its flags (the kind,
     * and DISTVM_EPOCH_PAGE_ZERO if zero, but for an asked page), and
     * unless zero or asked its bytes
     */
    distvm_wire_begin(hand, DISTVM_MSG_EPOCH_PAGES, src, seq);
    distvm_wire_put_u64(hand, epoch);
    distvm_wire_put_u32(hand, block);
    distvm_wire_put_u32(hand, count);
    for (uint32_t i = 0; i < count; i++) {
        distvm_wire_put_u64(hand, pages[i].page);
        if (kind == DISTVM_EPOCH_PAGE_ASK) {
            distvm_wire_put_u32(hand, DISTVM_EPOCH_PAGE_ASK);
        } else {
            distvm_wire_put_u32(hand, kind | (pages[i].data ? 0 :
                                              DISTVM_EPOCH_PAGE_ZERO));
        }
        if (pages[i].data) {
            distvm_wire_put_bytes(hand, pages[i].data, DISTVM_PAGE_SIZE);
        }
    }
    distvm_wire_end(hand);
    g_assert_cmpmem(hand->data, hand->len, b->data, b->len);

    decode_ok(b, lim, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_EPOCH_PAGES, len, src, seq);
    g_assert_cmphex(d.msg.u.epoch_pages.epoch, ==, epoch);
    g_assert_cmpuint(d.msg.u.epoch_pages.block, ==, block);
    g_assert_cmpuint(d.msg.u.epoch_pages.count, ==, count);
    g_assert_cmphex(d.msg.u.epoch_pages.kind, ==, kind);
    /* the pages stay in the payload */
    g_assert(d.msg.u.epoch_pages.entries == d.payload + EPOCH_PAGES_FIXED);
    pos = d.msg.u.epoch_pages.entries;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *at = pos;
        uint64_t page = ~pages[i].page;
        const uint8_t *data = distvm_wire_epoch_page(&pos, &page);

        g_assert_cmpuint(page, ==, pages[i].page);
        if (pages[i].data) {
            g_assert(data == at + EPOCH_PAGE_HDR);
            g_assert_cmpmem(data, DISTVM_PAGE_SIZE, pages[i].data,
                            DISTVM_PAGE_SIZE);
            g_assert(pos == data + DISTVM_PAGE_SIZE);
        } else {
            g_assert_null(data);
            g_assert(pos == at + EPOCH_PAGE_HDR);
        }
    }
    g_assert(pos == d.payload + len);
    decoded_free(&d);

    g_byte_array_unref(hand);
    g_byte_array_unref(b);
}

static void check_epoch_pages_seq(const DistvmWireLimits *lim, uint32_t src,
                                  uint64_t seq, uint64_t epoch,
                                  uint32_t block, const EpochPage *pages,
                                  uint32_t count)
{
    check_epoch_pages_full(lim, src, seq, epoch, block, 0, pages, count);
}

static void check_epoch_pages(const DistvmWireLimits *lim, uint32_t src,
                              uint64_t epoch, uint32_t block,
                              const EpochPage *pages, uint32_t count)
{
    check_epoch_pages_full(lim, src, 0, epoch, block, 0, pages, count);
}

static void check_epoch_pages_kind(const DistvmWireLimits *lim, uint32_t src,
                                   uint64_t epoch, uint32_t block,
                                   uint32_t kind, const EpochPage *pages,
                                   uint32_t count)
{
    check_epoch_pages_full(lim, src, 0, epoch, block, kind, pages, count);
}

/*
 * EPOCH_PAGES: 1 to DISTVM_EPOCH_PAGES_MAX pages of a RAMBlock, each
 * changed (with its bytes) or all zero (without), in any order
 */
static void test_epoch_pages(void)
{
    static const DistvmWireLimits most_ram = {
        .nodes = DISTVM_WIRE_MAX_NODES,
        .nr_blocks = ARRAY_SIZE(block_pages),
        .block_pages = block_pages,
    };
    g_autofree uint8_t *data = g_malloc(DISTVM_EPOCH_PAGES_MAX *
                                        DISTVM_PAGE_SIZE);
    EpochPage pages[DISTVM_EPOCH_PAGES_MAX];
    GByteArray *b = g_byte_array_new();
    Decoded d;

    /* a different content for each page */
    for (size_t i = 0; i < DISTVM_EPOCH_PAGES_MAX * DISTVM_PAGE_SIZE; i++) {
        data[i] = i * 13 + i / DISTVM_PAGE_SIZE + 1;
    }

    /* a mix of changed pages and zero ones, in any order, from any node */
    {
        const EpochPage mix[] = {
            { 15, data }, { 0, NULL }, { 3, data + DISTVM_PAGE_SIZE },
            { 4, NULL }, { 5, NULL }, { 14, data + 2 * DISTVM_PAGE_SIZE },
            { 1, data + 3 * DISTVM_PAGE_SIZE },
        };

        for (uint32_t src = 0; src < limits.nodes; src++) {
            check_epoch_pages(&limits, src, 5, 0, mix, ARRAY_SIZE(mix));
        }
        check_epoch_pages(&most_ram, DISTVM_WIRE_MAX_NODES - 1, UINT64_MAX,
                          0, mix, ARRAY_SIZE(mix));
        /* starting with a zero page, ending with one */
        check_epoch_pages(&limits, 2, 1, 0, mix + 1, ARRAY_SIZE(mix) - 2);
    }

    /* one page, changed or zero; the last of a block, the only one */
    for (int zero = 0; zero < 2; zero++) {
        const uint8_t *one = zero ? NULL : data + 7 * DISTVM_PAGE_SIZE;

        check_epoch_pages(&limits, 1, 1, 2, &(EpochPage) { 262143, one }, 1);
        check_epoch_pages(&limits, 3, UINT64_MAX, 2,
                          &(EpochPage) { 0, one }, 1);
        check_epoch_pages(&limits, 0, 7, 1, &(EpochPage) { 0, one }, 1);
        check_epoch_pages(&limits, 2, 0x100000000ull, 0,
                          &(EpochPage) { 15, one }, 1);
    }

    /* every page of RAMBlock 0, changed and zero in turn */
    for (uint32_t i = 0; i < 16; i++) {
        pages[i] = (EpochPage) {
            .page = i, .data = i % 2 ? NULL : data + i * DISTVM_PAGE_SIZE,
        };
    }
    check_epoch_pages(&limits, 1, 3, 0, pages, 16);

    /*
     * as many pages as a message takes: all changed, all zero, a mix;
     * from the end of RAMBlock 2 backwards
     */
    for (int kind = 0; kind < 3; kind++) {
        for (uint32_t i = 0; i < DISTVM_EPOCH_PAGES_MAX; i++) {
            bool zero = kind == 1 || (kind == 2 && i % 3 == 1);

            pages[i] = (EpochPage) {
                .page = 262143 - i * 7,
                .data = zero ? NULL : data + i * DISTVM_PAGE_SIZE,
            };
        }
        check_epoch_pages(&limits, 2, 9, 2, pages, DISTVM_EPOCH_PAGES_MAX);
        check_epoch_pages(&limits, 0, UINT64_MAX, 2, pages,
                          DISTVM_EPOCH_PAGES_MAX);
    }
    /* the largest is well within a payload */
    g_assert_cmpuint(EPOCH_PAGES_FIXED + DISTVM_EPOCH_PAGES_MAX *
                     (EPOCH_PAGE_HDR + DISTVM_PAGE_SIZE), <=,
                     DISTVM_WIRE_MAX_PAYLOAD);

    /* a sequence number is not looked at: passed through as it is */
    for (size_t i = 1; i < ARRAY_SIZE(flow_dones); i++) {
        check_epoch_pages_seq(&limits, 3, flow_dones[i], 4, 2, pages, 2);
    }

    /* distvm_wire_epoch_pages_begin empties the buffer first */
    distvm_wire_empty(b, DISTVM_MSG_READY, 1, 2);
    distvm_wire_epoch_pages_begin(b, 0, 1, 1);
    g_assert_cmpuint(b->len, ==, HDR + EPOCH_PAGES_FIXED);
    g_assert_cmphex(ldq_le_p(b->data + OFF_SEQ), ==, 0);
    g_assert_cmpuint(distvm_wire_epoch_pages_add(b, 0, 0, NULL), ==, 1);
    distvm_wire_end(b);
    decode_ok(b, &limits, &d);
    g_assert_cmpuint(d.msg.u.epoch_pages.count, ==, 1);
    decoded_free(&d);
    /* and again, after a message of pages */
    distvm_wire_epoch_pages_begin(b, 0, 2, 0);
    g_assert_cmpuint(b->len, ==, HDR + EPOCH_PAGES_FIXED);
    g_assert_cmpuint(distvm_wire_epoch_pages_add(b, 1, 0, data), ==, 1);
    distvm_wire_end(b);
    decode_ok(b, &limits, &d);
    g_assert_cmpuint(d.msg.u.epoch_pages.count, ==, 1);
    g_assert_cmpuint(d.msg.u.epoch_pages.epoch, ==, 2);
    decoded_free(&d);
    g_byte_array_unref(b);
}

/*
 * @b, an EPOCH_PAGES, must be refused for its epoch, count and block with
 * exactly that
 */
static void expect_epoch_pages_error(const GByteArray *b, uint64_t epoch,
                                     uint32_t count, uint32_t block)
{
    g_autofree char *what = g_strdup_printf(
        "EPOCH_PAGES message of epoch %" PRIu64 " with %" PRIu32 " pages of "
        "RAMBlock %" PRIu32, epoch, count, block);

    expect_exact_error_ram(b, true, what);
}

/* @b, an EPOCH_PAGES, must be refused for a page with exactly that */
static void expect_epoch_page_error(const GByteArray *b, uint64_t page,
                                    uint32_t block, uint32_t flags)
{
    g_autofree char *what = g_strdup_printf(
        "EPOCH_PAGES message with page %" PRIu64 " of RAMBlock %" PRIu32
        " and flags 0x%" PRIx32, page, block, flags);

    expect_exact_error_ram(b, true, what);
}

/*
 * EPOCH_PAGES before the RAM layout is agreed, of epoch 0, of a RAMBlock
 * that does not exist, with no page or too many, of pages that do not
 * exist or with unknown flags, and without all of their data
 */
static void test_epoch_pages_bad(void)
{
    static const uint32_t blocks[] = {
        3, 4, DISTVM_WIRE_MAX_BLOCKS, 0x80000000u, UINT32_MAX,
    };
    static const uint32_t counts[] = {
        DISTVM_EPOCH_PAGES_MAX + 1, DISTVM_EPOCH_PAGES_MAX + 2, 0x100,
        0x10000, INT32_MAX, 0x80000000u, UINT32_MAX,
    };
    /*
     * bits outside ZERO, ASK, COPY, HELD, OWNED, DELTA and SLOT, with
     * some of those or without; HELD with ZERO or another kind; OWNED
     * without HELD; DELTA with SLOT or HELD
     */
    static const uint32_t flags[] = {
        0x9, 0xa, 0xc, 0xf, 0x10, 0x11, 0x1f, 0x60, 0x28, 0x38, 0x80,
        0x100, 0x10000, 0x80000000u, 0x80000001u, 0x80000002u,
        0x80000004u, 0x80000008u, UINT32_MAX - 1, UINT32_MAX,
    };
    static uint8_t data[DISTVM_PAGE_SIZE];
    GByteArray *b = g_byte_array_new();
    g_autofree char *got = NULL;

    /* Before the RAM layout is agreed, even if truncated or out of range */
    distvm_wire_epoch_pages_begin(b, 1, 5, 0);
    distvm_wire_epoch_pages_add(b, 3, 0, data);
    distvm_wire_epoch_pages_add(b, 4, 0, NULL);
    distvm_wire_end(b);
    got = decode_error(b, &limits_no_ram);
    g_assert_cmpstr(got, ==, "EPOCH_PAGES message before the RAM layout was "
                    "agreed");
    check_exact_length(b, true);
    distvm_wire_epoch_pages_begin(b, 1, 0, 3);
    distvm_wire_end(b);
    expect_decode_error(b, &limits_no_ram, "EPOCH_PAGES message before the "
                        "RAM layout was agreed");
    distvm_wire_begin(b, DISTVM_MSG_EPOCH_PAGES, 1, 0);
    distvm_wire_end(b);
    expect_decode_error(b, &limits_no_ram, "EPOCH_PAGES message before the "
                        "RAM layout was agreed");

    /* RAMBlocks that do not exist, whatever their pages */
    for (size_t i = 0; i < ARRAY_SIZE(blocks); i++) {
        distvm_wire_epoch_pages_begin(b, 2, 5, blocks[i]);
        distvm_wire_epoch_pages_add(b, 0, 0, NULL);
        distvm_wire_end(b);
        expect_epoch_pages_error(b, 5, 1, blocks[i]);
        distvm_wire_epoch_pages_add(b, UINT64_MAX, 0, data);
        distvm_wire_end(b);
        expect_epoch_pages_error(b, 5, 2, blocks[i]);
    }

    /* no page, in any RAMBlock */
    for (uint32_t blk = 0; blk < limits.nr_blocks; blk++) {
        distvm_wire_epoch_pages_begin(b, 2, 5, blk);
        distvm_wire_end(b);
        expect_epoch_pages_error(b, 5, 0, blk);
        /* even with a page after it */
        distvm_wire_put_u64(b, 0);
        distvm_wire_put_u32(b, DISTVM_EPOCH_PAGE_ZERO);
        distvm_wire_end(b);
        expect_epoch_pages_error(b, 5, 0, blk);
    }

    /* more than DISTVM_EPOCH_PAGES_MAX, each of them fine */
    distvm_wire_epoch_pages_begin(b, 2, 5, 2);
    for (uint32_t i = 0; i <= DISTVM_EPOCH_PAGES_MAX; i++) {
        g_assert_cmpuint(distvm_wire_epoch_pages_add(b, i, 0, i % 2 ? NULL :
                                                     data), ==, i + 1);
    }
    distvm_wire_end(b);
    expect_epoch_pages_error(b, 5, DISTVM_EPOCH_PAGES_MAX + 1, 2);
    /* counts far too large: refused as such, not as truncated */
    for (size_t i = 0; i < ARRAY_SIZE(counts); i++) {
        distvm_wire_epoch_pages_begin(b, 2, 5, 2);
        distvm_wire_epoch_pages_add(b, 0, 0, NULL);
        distvm_wire_end(b);
        set_u32(b, HDR + 12, counts[i]);
        expect_epoch_pages_error(b, 5, counts[i], 2);
    }

    /* epoch 0, with pages that are fine */
    distvm_wire_epoch_pages_begin(b, 2, 0, 0);
    distvm_wire_epoch_pages_add(b, 1, 0, data);
    distvm_wire_end(b);
    expect_epoch_pages_error(b, 0, 1, 0);
    /* and everything at once */
    distvm_wire_epoch_pages_begin(b, 2, 0, UINT32_MAX);
    distvm_wire_end(b);
    expect_epoch_pages_error(b, 0, 0, UINT32_MAX);

    /* pages that do not exist: the block's page count, and beyond */
    for (uint32_t blk = 0; blk < limits.nr_blocks; blk++) {
        const uint64_t bad[] = {
            block_pages[blk], block_pages[blk] + 1, block_pages[blk] << 32,
            UINT64_MAX,
        };

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
            /* the first page fine, the second not: zero, or with data */
            distvm_wire_epoch_pages_begin(b, 1, 5, blk);
            distvm_wire_epoch_pages_add(b, 0, 0, NULL);
            distvm_wire_epoch_pages_add(b, bad[i], 0, NULL);
            distvm_wire_end(b);
            expect_epoch_page_error(b, bad[i], blk, DISTVM_EPOCH_PAGE_ZERO);
            distvm_wire_epoch_pages_begin(b, 1, 5, blk);
            distvm_wire_epoch_pages_add(b, block_pages[blk] - 1, 0, data);
            distvm_wire_epoch_pages_add(b, bad[i], 0, data);
            distvm_wire_end(b);
            expect_epoch_page_error(b, bad[i], blk, 0);
        }
    }

    /*
     * unknown page flags, with the zero flag or without; with DELTA or
     * SLOT among them, a slot (0) follows, which is read before the flags
     * are checked
     */
    for (size_t i = 0; i < ARRAY_SIZE(flags); i++) {
        distvm_wire_epoch_pages_begin(b, 1, 5, 0);
        distvm_wire_epoch_pages_add(b, 2, 0, NULL);
        distvm_wire_epoch_pages_add(b, 3, 0, NULL);
        distvm_wire_end(b);
        set_u32(b, HDR + EPOCH_PAGES_FIXED + EPOCH_PAGE_HDR + 8, flags[i]);
        if (flags[i] & (DISTVM_EPOCH_PAGE_DELTA | DISTVM_EPOCH_PAGE_SLOT)) {
            distvm_wire_put_u32(b, 0);
            distvm_wire_end(b);
        }
        expect_epoch_page_error(b, 3, 0, flags[i]);
        /* the first page's, with its data (all zero: slot 0 if read) */
        distvm_wire_epoch_pages_begin(b, 1, 5, 0);
        distvm_wire_epoch_pages_add(b, 2, 0, data);
        distvm_wire_end(b);
        set_u32(b, HDR + EPOCH_PAGES_FIXED + 8, flags[i]);
        expect_epoch_page_error(b, 2, 0, flags[i]);
    }
    /*
     * every unknown flag bit (ASK and COPY: test_epoch_pages_kinds_bad;
     * HELD and OWNED: test_epoch_pages_held_bad; DELTA and SLOT, which
     * may be ZERO: test_epoch_pages_slot_bad), and HELD and OWNED with
     * ZERO
     */
    for (int bit = 3; bit < 32; bit++) {
        if (1u << bit & (DISTVM_EPOCH_PAGE_DELTA | DISTVM_EPOCH_PAGE_SLOT)) {
            continue;
        }
        distvm_wire_epoch_pages_begin(b, 3, 5, 2);
        distvm_wire_epoch_pages_add(b, 100, 0, NULL);
        distvm_wire_end(b);
        set_u32(b, HDR + EPOCH_PAGES_FIXED + 8,
                1u << bit | DISTVM_EPOCH_PAGE_ZERO);
        expect_epoch_page_error(b, 100, 2, 1u << bit | DISTVM_EPOCH_PAGE_ZERO);
    }

    /* The first bad page is named */
    distvm_wire_epoch_pages_begin(b, 1, 5, 0);
    distvm_wire_epoch_pages_add(b, 1, 0, NULL);
    distvm_wire_epoch_pages_add(b, 16, 0, data);
    distvm_wire_epoch_pages_add(b, 17, 0, NULL);
    distvm_wire_end(b);
    expect_epoch_page_error(b, 16, 0, 0);

    /* a page without all of its data */
    distvm_wire_epoch_pages_begin(b, 1, 5, 0);
    distvm_wire_epoch_pages_add(b, 3, 0, data);
    distvm_wire_end(b);
    for (uint32_t cut = 1; cut <= DISTVM_PAGE_SIZE; cut *= 2) {
        GByteArray *c = buf_dup(b);

        g_byte_array_set_size(c, b->len - cut);
        set_u32(c, OFF_LENGTH, c->len - HDR);
        expect_exact_error_ram(c, true, "EPOCH_PAGES message is truncated");
        g_byte_array_unref(c);
    }
    /* a zero page whose flag is cleared: its data never came */
    distvm_wire_epoch_pages_begin(b, 1, 5, 0);
    distvm_wire_epoch_pages_add(b, 3, 0, NULL);
    distvm_wire_epoch_pages_add(b, 4, 0, NULL);
    distvm_wire_end(b);
    set_u32(b, HDR + EPOCH_PAGES_FIXED + 8, 0);
    expect_exact_error_ram(b, true, "EPOCH_PAGES message is truncated");
    /* a changed page whose zero flag is set: its data is garbage */
    distvm_wire_epoch_pages_begin(b, 1, 5, 0);
    distvm_wire_epoch_pages_add(b, 3, 0, data);
    distvm_wire_end(b);
    set_u32(b, HDR + EPOCH_PAGES_FIXED + 8, DISTVM_EPOCH_PAGE_ZERO);
    expect_exact_error_ram(b, true, "EPOCH_PAGES message has 4096 bytes of "
                           "trailing garbage");

    /* a count the pages do not match, either way */
    distvm_wire_epoch_pages_begin(b, 2, 5, 0);
    distvm_wire_epoch_pages_add(b, 3, 0, data);
    distvm_wire_epoch_pages_add(b, 4, 0, NULL);
    distvm_wire_end(b);
    set_u32(b, HDR + 12, 3);
    expect_exact_error_ram(b, true, "EPOCH_PAGES message is truncated");
    set_u32(b, HDR + 12, 1);
    expect_exact_error_ram(b, true, "EPOCH_PAGES message has 12 bytes of "
                           "trailing garbage");

    /* every cut is truncated, every byte more is garbage */
    distvm_wire_epoch_pages_begin(b, 2, 5, 0);
    distvm_wire_epoch_pages_add(b, 0, 0, NULL);
    distvm_wire_epoch_pages_add(b, 15, 0, data);
    distvm_wire_epoch_pages_add(b, 7, 0, NULL);
    distvm_wire_end(b);
    check_exact_length(b, true);
    distvm_wire_epoch_pages_begin(b, 3, UINT64_MAX, 2);
    distvm_wire_epoch_pages_add(b, 262143, 0, NULL);
    distvm_wire_end(b);
    distvm_wire_set_seq(b, UINT64_MAX);
    check_exact_length(b, true);

    /*
     * The order of the checks: the sender, the RAM layout, the epoch, the
     * block and the count, each page (its number and flags, then its
     * data), then trailing bytes
     */
    distvm_wire_epoch_pages_begin(b, 4, 0, 3);
    distvm_wire_end(b);
    expect_decode_error(b, &limits_no_ram, "EPOCH_PAGES message names node "
                        "4 in its sender; the cluster has 4");
    expect_decode_error(b, &limits, "EPOCH_PAGES message names node 4 in "
                        "its sender; the cluster has 4");
    distvm_wire_epoch_pages_begin(b, 1, 5, 0);
    distvm_wire_epoch_pages_add(b, 16, 0, NULL);
    distvm_wire_end(b);
    set_u32(b, HDR + 12, DISTVM_EPOCH_PAGES_MAX + 1);
    expect_epoch_pages_error(b, 5, DISTVM_EPOCH_PAGES_MAX + 1, 0);
    set_u32(b, HDR + 12, 2);
    expect_epoch_page_error(b, 16, 0, DISTVM_EPOCH_PAGE_ZERO);
    distvm_wire_epoch_pages_begin(b, 1, 5, 0);
    distvm_wire_epoch_pages_add(b, 3, 0, NULL);
    distvm_wire_end(b);
    distvm_wire_put_u64(b, 4);
    distvm_wire_put_u32(b, 0x2);
    distvm_wire_put_u32(b, 0);
    set_u32(b, OFF_LENGTH, b->len - HDR);
    expect_exact_error_ram(b, true, "EPOCH_PAGES message has 16 bytes of "
                           "trailing garbage");
    set_u32(b, HDR + 12, 2);
    expect_epoch_page_error(b, 4, 0, 0x2);

    /* EPOCH retyped, and the other way */
    distvm_wire_epoch(b, 1, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SENT, .node = 1, .epoch = 1, .bytes = 4096,
    });
    set_u16(b, OFF_TYPE, DISTVM_MSG_EPOCH_PAGES);
    expect_epoch_pages_error(b, 0x100000002ull, 0, 1);
    /* one page is 4 bytes short of an EPOCH */
    distvm_wire_epoch_pages_begin(b, 2, 5, 0);
    distvm_wire_epoch_pages_add(b, 3, 0, NULL);
    distvm_wire_end(b);
    expect_retyped_error(b, DISTVM_MSG_EPOCH, "EPOCH message is truncated");
    /*
     * two are 8 bytes too many: step 5 of epoch 2 << 32, 3 bytes, 1 vCPU
     * (the first page's flags) and the second page's number in the
     * reserved field
     */
    distvm_wire_epoch_pages_begin(b, 2, 5, 0);
    distvm_wire_epoch_pages_add(b, 3, 0, NULL);
    distvm_wire_epoch_pages_add(b, 0, 0, NULL);
    distvm_wire_end(b);
    expect_retyped_error(b, DISTVM_MSG_EPOCH, "EPOCH message has 8 bytes of "
                         "trailing garbage");
    distvm_wire_epoch_pages_begin(b, 2, 5, 0);
    distvm_wire_epoch_pages_add(b, 3, 0, NULL);
    distvm_wire_epoch_pages_add(b, 15, 0, NULL);
    distvm_wire_end(b);
    expect_retyped_error(b, DISTVM_MSG_EPOCH, "EPOCH message with a non-zero "
                         "reserved field");
    g_byte_array_unref(b);
}

/*
 * EPOCH_PAGES of a rollback (wire version 22): the pages a node asks
 * another for the committed copies of (ASK: the flag alone and no bytes,
 * whatever the page holds), and the copies sent back (COPY with their
 * bytes, or COPY | ZERO without); all pages of a message are of one
 * kind, which the decoder gives as its kind (0 for an epoch's pages)
 */
static void test_epoch_pages_kinds(void)
{
    enum {
        ZERO = DISTVM_EPOCH_PAGE_ZERO,
        ASK = DISTVM_EPOCH_PAGE_ASK,
        COPY = DISTVM_EPOCH_PAGE_COPY,
    };
    static const DistvmWireLimits most_ram = {
        .nodes = DISTVM_WIRE_MAX_NODES,
        .nr_blocks = ARRAY_SIZE(block_pages),
        .block_pages = block_pages,
    };
    /* the flags the encoder gives a page of each kind, zero or not */
    static const struct {
        uint32_t kind;
        bool zero;
        uint32_t flags;
    } encoded[] = {
        { 0, false, 0 }, { 0, true, ZERO }, { ASK, true, ASK },
        { COPY, false, COPY }, { COPY, true, COPY | ZERO },
    };
    g_autofree uint8_t *data = g_malloc(DISTVM_EPOCH_PAGES_MAX *
                                        DISTVM_PAGE_SIZE);
    EpochPage pages[DISTVM_EPOCH_PAGES_MAX];
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (size_t i = 0; i < DISTVM_EPOCH_PAGES_MAX * DISTVM_PAGE_SIZE; i++) {
        data[i] = i * 11 + i / DISTVM_PAGE_SIZE + 3;
    }

    /* the flags' bits on the wire */
    g_assert_cmphex(ZERO, ==, 0x1);
    g_assert_cmphex(ASK, ==, 0x2);
    g_assert_cmphex(COPY, ==, 0x4);

    /* pages asked for, in any order, from any node */
    {
        const EpochPage asked[] = {
            { 15, NULL }, { 0, NULL }, { 3, NULL }, { 14, NULL },
            { 1, NULL },
        };

        for (uint32_t src = 0; src < limits.nodes; src++) {
            check_epoch_pages_kind(&limits, src, 7, 0, ASK, asked,
                                   ARRAY_SIZE(asked));
        }
        check_epoch_pages_kind(&most_ram, DISTVM_WIRE_MAX_NODES - 1,
                               UINT64_MAX, 0, ASK, asked, ARRAY_SIZE(asked));
        /* one: the last of a block, the only one, the first */
        check_epoch_pages_kind(&limits, 1, 1, 2, ASK,
                               &(EpochPage) { 262143, NULL }, 1);
        check_epoch_pages_kind(&limits, 2, 7, 1, ASK,
                               &(EpochPage) { 0, NULL }, 1);
        check_epoch_pages_kind(&limits, 3, 0x100000000ull, 2, ASK,
                               &(EpochPage) { 0, NULL }, 1);
    }

    /* copies sent back: changed and zero, in any order, from any node */
    {
        const EpochPage copies[] = {
            { 15, data }, { 0, NULL }, { 3, data + DISTVM_PAGE_SIZE },
            { 4, NULL }, { 5, NULL }, { 14, data + 2 * DISTVM_PAGE_SIZE },
            { 1, data + 3 * DISTVM_PAGE_SIZE },
        };

        for (uint32_t src = 0; src < limits.nodes; src++) {
            check_epoch_pages_kind(&limits, src, 5, 0, COPY, copies,
                                   ARRAY_SIZE(copies));
        }
        check_epoch_pages_kind(&most_ram, DISTVM_WIRE_MAX_NODES - 1,
                               UINT64_MAX, 0, COPY, copies,
                               ARRAY_SIZE(copies));
        /* starting with a zero page, ending with one */
        check_epoch_pages_kind(&limits, 2, 1, 0, COPY, copies + 1,
                               ARRAY_SIZE(copies) - 2);
    }
    /* one copy, changed or zero; the last of a block, the only one */
    for (int zero = 0; zero < 2; zero++) {
        const uint8_t *one = zero ? NULL : data + 7 * DISTVM_PAGE_SIZE;

        check_epoch_pages_kind(&limits, 1, 1, 2, COPY,
                               &(EpochPage) { 262143, one }, 1);
        check_epoch_pages_kind(&limits, 3, UINT64_MAX, 1, COPY,
                               &(EpochPage) { 0, one }, 1);
    }

    /*
     * as many pages as a message takes, from the end of RAMBlock 2
     * backwards: asked; copies all changed, all zero, a mix
     */
    for (int k = 0; k < 4; k++) {
        uint32_t kind = k ? COPY : ASK;

        for (uint32_t i = 0; i < DISTVM_EPOCH_PAGES_MAX; i++) {
            bool zero = k == 0 || k == 2 || (k == 3 && i % 3 == 1);

            pages[i] = (EpochPage) {
                .page = 262143 - i * 7,
                .data = zero ? NULL : data + i * DISTVM_PAGE_SIZE,
            };
        }
        check_epoch_pages_kind(&limits, 2, 9, 2, kind, pages,
                               DISTVM_EPOCH_PAGES_MAX);
        check_epoch_pages_kind(&limits, 0, UINT64_MAX, 2, kind, pages,
                               DISTVM_EPOCH_PAGES_MAX);
    }
    /* the most asked for are only their numbers and flags */
    distvm_wire_epoch_pages_begin(b, 1, 9, 2);
    for (uint32_t i = 0; i < DISTVM_EPOCH_PAGES_MAX; i++) {
        g_assert_cmpuint(distvm_wire_epoch_pages_add(b, i, ASK, NULL), ==,
                         i + 1);
    }
    distvm_wire_end(b);
    g_assert_cmpuint(b->len, ==, HDR + EPOCH_PAGES_FIXED +
                     DISTVM_EPOCH_PAGES_MAX * EPOCH_PAGE_HDR);
    decode_ok(b, &limits, &d);
    g_assert_cmpuint(d.msg.u.epoch_pages.count, ==, DISTVM_EPOCH_PAGES_MAX);
    g_assert_cmphex(d.msg.u.epoch_pages.kind, ==, ASK);
    decoded_free(&d);

    /* a sequence number is not looked at: passed through as it is */
    for (size_t i = 1; i < ARRAY_SIZE(flow_dones); i++) {
        const EpochPage two[] = { { 5, NULL }, { 3, data } };

        check_epoch_pages_full(&limits, 3, flow_dones[i], 4, 0, ASK, two, 1);
        check_epoch_pages_full(&limits, 3, flow_dones[i], 4, 0, COPY, two,
                               2);
    }

    /* the flags of a page, as the encoder writes them */
    for (size_t i = 0; i < ARRAY_SIZE(encoded); i++) {
        uint32_t len = EPOCH_PAGES_FIXED + EPOCH_PAGE_HDR +
                       (encoded[i].zero ? 0 : DISTVM_PAGE_SIZE);

        distvm_wire_epoch_pages_begin(b, 1, 7, 0);
        g_assert_cmpuint(distvm_wire_epoch_pages_add(b, 5, encoded[i].kind,
                                                     encoded[i].zero ? NULL :
                                                     data), ==, 1);
        distvm_wire_end(b);
        g_assert_cmpuint(b->len, ==, HDR + len);
        g_assert_cmphex(ldl_le_p(b->data + HDR + EPOCH_PAGES_FIXED + 8), ==,
                        encoded[i].flags);
        decode_ok(b, &limits, &d);
        check_hdr(&d.msg.hdr, DISTVM_MSG_EPOCH_PAGES, len, 1, 0);
        g_assert_cmphex(d.msg.u.epoch_pages.kind, ==, encoded[i].kind);
        decoded_free(&d);
    }
    g_byte_array_unref(b);
}

/*
 * An EPOCH_PAGES's page by hand: @flags, @slot if they have DELTA or
 * SLOT, then @data unless they say none
 */
static void put_epoch_page_slot(GByteArray *b, uint64_t page, uint32_t flags,
                                uint32_t slot, const uint8_t *data)
{
    distvm_wire_put_u64(b, page);
    distvm_wire_put_u32(b, flags);
    if (flags & (DISTVM_EPOCH_PAGE_DELTA | DISTVM_EPOCH_PAGE_SLOT)) {
        distvm_wire_put_u32(b, slot);
    }
    if (!(flags & (DISTVM_EPOCH_PAGE_ZERO | DISTVM_EPOCH_PAGE_ASK |
                   DISTVM_EPOCH_PAGE_HELD))) {
        distvm_wire_put_bytes(b, data, DISTVM_PAGE_SIZE);
    }
}

/* The same, in slot 0 if it has one */
static void put_epoch_page(GByteArray *b, uint64_t page, uint32_t flags,
                           const uint8_t *data)
{
    put_epoch_page_slot(b, page, flags, 0, data);
}

/* An EPOCH_PAGES's fixed part by hand, of @count pages to come */
static void begin_epoch_pages(GByteArray *b, uint32_t src, uint64_t epoch,
                              uint32_t block, uint32_t count)
{
    distvm_wire_begin(b, DISTVM_MSG_EPOCH_PAGES, src, 0);
    distvm_wire_put_u64(b, epoch);
    distvm_wire_put_u32(b, block);
    distvm_wire_put_u32(b, count);
}

/*
 * EPOCH_PAGES with pages of two kinds, or with flags no kind has: ASK
 * with ZERO (an asked page has no content to be zero), a page of another
 * kind than the first (ASK then 0, COPY then 0, 0 then COPY and every
 * other pair), unknown bits with ASK or COPY; each refused for the first
 * such page, with its flags.  An asked page carries no bytes, a copy its
 * bytes unless zero.
 */
static void test_epoch_pages_kinds_bad(void)
{
    enum {
        ZERO = DISTVM_EPOCH_PAGE_ZERO,
        ASK = DISTVM_EPOCH_PAGE_ASK,
        COPY = DISTVM_EPOCH_PAGE_COPY,
    };
    /* a page of the first's kind, then one of another */
    static const struct {
        uint32_t first, then;
    } mixed[] = {
        /* asked, then an epoch's page, changed or zero, or a copy */
        { ASK, 0 }, { ASK, ZERO }, { ASK, COPY }, { ASK, COPY | ZERO },
        /* a copy, changed or zero, then an epoch's page or an asked one */
        { COPY, 0 }, { COPY, ZERO }, { COPY | ZERO, 0 },
        { COPY | ZERO, ZERO }, { COPY, ASK }, { COPY | ZERO, ASK },
        /* an epoch's page, then a copy or an asked one */
        { 0, COPY }, { 0, COPY | ZERO }, { ZERO, COPY },
        { ZERO, COPY | ZERO }, { 0, ASK }, { ZERO, ASK },
        /* ASK | COPY after a page of any kind */
        { ASK, ASK | COPY }, { COPY, ASK | COPY },
        { COPY | ZERO, ASK | COPY | ZERO }, { 0, ASK | COPY },
        { ZERO, ASK | COPY | ZERO },
    };
    static const uint32_t kinds[] = { ASK, COPY, COPY | ZERO };
    static uint8_t data[DISTVM_PAGE_SIZE];
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = i % 253 + 1;
    }

    /* ASK with ZERO: alone, or among asked pages, first, middle or last */
    begin_epoch_pages(b, 1, 7, 0, 1);
    put_epoch_page(b, 3, ASK | ZERO, NULL);
    distvm_wire_end(b);
    expect_epoch_page_error(b, 3, 0, ASK | ZERO);
    for (uint32_t bad = 0; bad < 3; bad++) {
        begin_epoch_pages(b, 2, 7, 2, 3);
        for (uint32_t i = 0; i < 3; i++) {
            put_epoch_page(b, 100 + i, i == bad ? ASK | ZERO : ASK, NULL);
        }
        distvm_wire_end(b);
        expect_epoch_page_error(b, 100 + bad, 2, ASK | ZERO);
    }
    /* the encoder's, with the zero flag set after */
    distvm_wire_epoch_pages_begin(b, 3, 7, 1);
    distvm_wire_epoch_pages_add(b, 0, ASK, NULL);
    distvm_wire_end(b);
    set_u32(b, HDR + EPOCH_PAGES_FIXED + 8, ASK | ZERO);
    expect_epoch_page_error(b, 0, 1, ASK | ZERO);

    /* kinds mixed: the second page, in each RAMBlock; or a later one */
    for (size_t i = 0; i < ARRAY_SIZE(mixed); i++) {
        for (uint32_t blk = 0; blk < limits.nr_blocks; blk++) {
            uint64_t last = block_pages[blk] - 1;

            begin_epoch_pages(b, 1, 7, blk, 2);
            put_epoch_page(b, 0, mixed[i].first, data);
            put_epoch_page(b, last, mixed[i].then, data);
            distvm_wire_end(b);
            expect_epoch_page_error(b, last, blk, mixed[i].then);
        }
        begin_epoch_pages(b, 3, UINT64_MAX, 2, 5);
        put_epoch_page(b, 10, mixed[i].first, data);
        put_epoch_page(b, 11, mixed[i].first, data);
        put_epoch_page(b, 12, mixed[i].first, data);
        put_epoch_page(b, 13, mixed[i].then, data);
        put_epoch_page(b, 14, mixed[i].first, data);
        distvm_wire_end(b);
        expect_epoch_page_error(b, 13, 2, mixed[i].then);
    }
    /* by the encoder: ASK then 0, COPY then 0, 0 then COPY */
    distvm_wire_epoch_pages_begin(b, 1, 7, 0);
    distvm_wire_epoch_pages_add(b, 1, ASK, NULL);
    distvm_wire_epoch_pages_add(b, 2, 0, data);
    distvm_wire_end(b);
    expect_epoch_page_error(b, 2, 0, 0);
    distvm_wire_epoch_pages_begin(b, 1, 7, 0);
    distvm_wire_epoch_pages_add(b, 1, COPY, data);
    distvm_wire_epoch_pages_add(b, 2, 0, NULL);
    distvm_wire_end(b);
    expect_epoch_page_error(b, 2, 0, ZERO);
    distvm_wire_epoch_pages_begin(b, 1, 7, 0);
    distvm_wire_epoch_pages_add(b, 1, 0, NULL);
    distvm_wire_epoch_pages_add(b, 2, COPY, data);
    distvm_wire_end(b);
    expect_epoch_page_error(b, 2, 0, COPY);

    /* unknown bits with a kind: the first page, or the second */
    for (int bit = 3; bit < 32; bit++) {
        for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
            uint32_t flags = kinds[i] | 1u << bit;

            begin_epoch_pages(b, 2, 7, 2, 1);
            put_epoch_page(b, 100, flags, data);
            distvm_wire_end(b);
            expect_epoch_page_error(b, 100, 2, flags);
            begin_epoch_pages(b, 2, 7, 2, 2);
            put_epoch_page(b, 100, kinds[i], data);
            put_epoch_page(b, 101, flags, data);
            distvm_wire_end(b);
            expect_epoch_page_error(b, 101, 2, flags);
        }
    }

    /*
     * An asked page carries no bytes: any after it are garbage, or read
     * as the next page (here page 0 with flags 0, of another kind)
     */
    {
        static const uint8_t zeros[DISTVM_PAGE_SIZE];

        distvm_wire_epoch_pages_begin(b, 1, 7, 0);
        distvm_wire_epoch_pages_add(b, 3, ASK, NULL);
        distvm_wire_end(b);
        distvm_wire_put_bytes(b, zeros, DISTVM_PAGE_SIZE);
        distvm_wire_end(b);
        expect_exact_error_ram(b, true, "EPOCH_PAGES message has 4096 bytes "
                               "of trailing garbage");
        set_u32(b, HDR + 12, 2);
        expect_epoch_page_error(b, 0, 0, 0);
    }
    /* more asked pages counted than came */
    distvm_wire_epoch_pages_begin(b, 1, 7, 0);
    distvm_wire_epoch_pages_add(b, 3, ASK, NULL);
    distvm_wire_epoch_pages_add(b, 4, ASK, NULL);
    distvm_wire_end(b);
    set_u32(b, HDR + 12, 3);
    expect_exact_error_ram(b, true, "EPOCH_PAGES message is truncated");
    set_u32(b, HDR + 12, 1);
    expect_exact_error_ram(b, true, "EPOCH_PAGES message has 12 bytes of "
                           "trailing garbage");
    /* every cut is truncated, every byte more is garbage */
    distvm_wire_epoch_pages_begin(b, 2, 7, 0);
    distvm_wire_epoch_pages_add(b, 0, ASK, NULL);
    distvm_wire_epoch_pages_add(b, 15, ASK, NULL);
    distvm_wire_epoch_pages_add(b, 7, ASK, NULL);
    distvm_wire_end(b);
    check_exact_length(b, true);

    /* A copy carries its bytes unless zero */
    distvm_wire_epoch_pages_begin(b, 1, 7, 0);
    distvm_wire_epoch_pages_add(b, 3, COPY, data);
    distvm_wire_end(b);
    for (uint32_t cut = 1; cut <= DISTVM_PAGE_SIZE; cut *= 2) {
        GByteArray *c = buf_dup(b);

        g_byte_array_set_size(c, b->len - cut);
        set_u32(c, OFF_LENGTH, c->len - HDR);
        expect_exact_error_ram(c, true, "EPOCH_PAGES message is truncated");
        g_byte_array_unref(c);
    }
    /* a changed copy flagged zero: its bytes are garbage */
    set_u32(b, HDR + EPOCH_PAGES_FIXED + 8, COPY | ZERO);
    expect_exact_error_ram(b, true, "EPOCH_PAGES message has 4096 bytes of "
                           "trailing garbage");
    /* a zero copy whose flag is cleared: its bytes never came */
    distvm_wire_epoch_pages_begin(b, 1, 7, 0);
    distvm_wire_epoch_pages_add(b, 3, COPY, NULL);
    distvm_wire_epoch_pages_add(b, 4, COPY, NULL);
    distvm_wire_end(b);
    set_u32(b, HDR + EPOCH_PAGES_FIXED + 8, COPY);
    expect_exact_error_ram(b, true, "EPOCH_PAGES message is truncated");
    /* every cut is truncated, every byte more is garbage */
    distvm_wire_epoch_pages_begin(b, 2, 7, 0);
    distvm_wire_epoch_pages_add(b, 0, COPY, NULL);
    distvm_wire_epoch_pages_add(b, 15, COPY, data);
    distvm_wire_epoch_pages_add(b, 7, COPY, NULL);
    distvm_wire_end(b);
    check_exact_length(b, true);

    /*
     * What every EPOCH_PAGES is refused for is checked before the kinds:
     * the sender, the RAM layout, the epoch, the block and the count;
     * a page's number is checked with its flags, in one error
     */
    distvm_wire_epoch_pages_begin(b, 4, 7, 0);
    distvm_wire_epoch_pages_add(b, 3, ASK, NULL);
    distvm_wire_end(b);
    expect_decode_error(b, &limits, "EPOCH_PAGES message names node 4 in "
                        "its sender; the cluster has 4");
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
        begin_epoch_pages(b, 1, 0, 0, 1);
        put_epoch_page(b, 3, kinds[i], data);
        distvm_wire_end(b);
        expect_epoch_pages_error(b, 0, 1, 0);
        begin_epoch_pages(b, 1, 7, 3, 1);
        put_epoch_page(b, 3, kinds[i], data);
        distvm_wire_end(b);
        expect_epoch_pages_error(b, 7, 1, 3);
        begin_epoch_pages(b, 1, 7, 0, DISTVM_EPOCH_PAGES_MAX + 1);
        put_epoch_page(b, 3, kinds[i], data);
        distvm_wire_end(b);
        expect_epoch_pages_error(b, 7, DISTVM_EPOCH_PAGES_MAX + 1, 0);
        begin_epoch_pages(b, 1, 7, 0, 0);
        put_epoch_page(b, 3, kinds[i], data);
        distvm_wire_end(b);
        expect_epoch_pages_error(b, 7, 0, 0);
        /* a page that does not exist */
        begin_epoch_pages(b, 1, 7, 0, 1);
        put_epoch_page(b, 16, kinds[i], data);
        distvm_wire_end(b);
        expect_epoch_page_error(b, 16, 0, kinds[i]);
        begin_epoch_pages(b, 1, 7, 2, 2);
        put_epoch_page(b, 262143, kinds[i], data);
        put_epoch_page(b, 262144, kinds[i], data);
        distvm_wire_end(b);
        expect_epoch_page_error(b, 262144, 2, kinds[i]);
    }
    g_byte_array_unref(b);
}

/*
 * ASK with COPY, with ZERO or without, is no kind: a page is asked for
 * or is a copy.  It is refused at the first page with it, as any flags
 * no kind has are.
 */
static void test_epoch_pages_ask_copy(void)
{
    enum {
        ZERO = DISTVM_EPOCH_PAGE_ZERO,
        ASK = DISTVM_EPOCH_PAGE_ASK,
        COPY = DISTVM_EPOCH_PAGE_COPY,
    };
    static const uint32_t both[] = { ASK | COPY, ASK | COPY | ZERO };
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(both); i++) {
        for (uint32_t count = 1; count <= 3; count++) {
            begin_epoch_pages(b, 1, 7, 2, count);
            for (uint32_t p = 0; p < count; p++) {
                put_epoch_page(b, 5 + p, both[i], NULL);
            }
            distvm_wire_end(b);
            expect_epoch_page_error(b, 5, 2, both[i]);
        }
        /* followed by an asked page: the first is the one refused */
        begin_epoch_pages(b, 1, 7, 2, 2);
        put_epoch_page(b, 5, both[i], NULL);
        put_epoch_page(b, 6, ASK, NULL);
        distvm_wire_end(b);
        expect_epoch_page_error(b, 5, 2, both[i]);
    }
    g_byte_array_unref(b);
}

/* A page of an EPOCH_PAGES of kind HELD: its number, and whether owned */
typedef struct HeldPage {
    uint64_t page;
    bool owned;
} HeldPage;

/*
 * An EPOCH_PAGES from @src of the @count pages @pages of RAMBlock @block
 * held at epoch @epoch: its layout as it is built (the one built by
 * hand, bit for bit: each page's number and HELD, with OWNED if owned,
 * and no bytes), its decoding under @lim, of kind HELD, and its pages
 * read back with distvm_wire_epoch_page(), without data, which ends
 * exactly at the end of the payload
 */
static void check_epoch_pages_held(const DistvmWireLimits *lim, uint32_t src,
                                   uint64_t epoch, uint32_t block,
                                   const HeldPage *pages, uint32_t count)
{
    GByteArray *b = g_byte_array_new();
    GByteArray *hand = g_byte_array_new();
    size_t len = EPOCH_PAGES_FIXED + count * EPOCH_PAGE_HDR;
    const uint8_t *pos;
    Decoded d;

    distvm_wire_epoch_pages_begin(b, src, epoch, block);
    for (uint32_t i = 0; i < count; i++) {
        uint32_t flags = DISTVM_EPOCH_PAGE_HELD |
                         (pages[i].owned ? DISTVM_EPOCH_PAGE_OWNED : 0);

        /* each page counted as it is added, without data */
        g_assert_cmpuint(distvm_wire_epoch_pages_add(b, pages[i].page, flags,
                                                     NULL), ==, i + 1);
        g_assert_cmpuint(b->len, ==, HDR + EPOCH_PAGES_FIXED +
                         (i + 1) * EPOCH_PAGE_HDR);
    }
    distvm_wire_end(b);
    g_assert_cmpuint(b->len, ==, HDR + len);
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + OFF_LENGTH), ==, len);

    distvm_wire_begin(hand, DISTVM_MSG_EPOCH_PAGES, src, 0);
    distvm_wire_put_u64(hand, epoch);
    distvm_wire_put_u32(hand, block);
    distvm_wire_put_u32(hand, count);
    for (uint32_t i = 0; i < count; i++) {
        distvm_wire_put_u64(hand, pages[i].page);
        distvm_wire_put_u32(hand, pages[i].owned ?
                            DISTVM_EPOCH_PAGE_HELD | DISTVM_EPOCH_PAGE_OWNED :
                            DISTVM_EPOCH_PAGE_HELD);
    }
    distvm_wire_end(hand);
    g_assert_cmpmem(hand->data, hand->len, b->data, b->len);

    decode_ok(b, lim, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_EPOCH_PAGES, len, src, 0);
    g_assert_cmphex(d.msg.u.epoch_pages.epoch, ==, epoch);
    g_assert_cmpuint(d.msg.u.epoch_pages.block, ==, block);
    g_assert_cmpuint(d.msg.u.epoch_pages.count, ==, count);
    g_assert_cmphex(d.msg.u.epoch_pages.kind, ==, DISTVM_EPOCH_PAGE_HELD);
    g_assert(d.msg.u.epoch_pages.entries == d.payload + EPOCH_PAGES_FIXED);
    pos = d.msg.u.epoch_pages.entries;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *at = pos;
        uint64_t page = ~pages[i].page;

        /* whether owned is in the flags, for the receiver to read */
        g_assert_cmphex(ldl_le_p(at + 8) & DISTVM_EPOCH_PAGE_OWNED, ==,
                        pages[i].owned ? DISTVM_EPOCH_PAGE_OWNED : 0);
        g_assert_null(distvm_wire_epoch_page(&pos, &page));
        g_assert_cmpuint(page, ==, pages[i].page);
        g_assert(pos == at + EPOCH_PAGE_HDR);
    }
    g_assert(pos == d.payload + len);
    decoded_free(&d);

    g_byte_array_unref(hand);
    g_byte_array_unref(b);
}

/*
 * EPOCH_PAGES taking a lost node over (wire version 23): the pages the
 * sender holds, to their manager (HELD: no bytes, whatever the page
 * holds), writable ones also OWNED; all pages of a message are held,
 * owned or not, and the decoder gives HELD as its kind
 */
static void test_epoch_pages_held(void)
{
    enum {
        HELD = DISTVM_EPOCH_PAGE_HELD,
        OWNED = DISTVM_EPOCH_PAGE_OWNED,
    };
    static const DistvmWireLimits most_ram = {
        .nodes = DISTVM_WIRE_MAX_NODES,
        .nr_blocks = ARRAY_SIZE(block_pages),
        .block_pages = block_pages,
    };
    static const HeldPage held[] = {
        { 15, false }, { 3, true }, { 0, true }, { 14, false },
        { 1, false }, { 7, true },
    };
    HeldPage pages[DISTVM_EPOCH_PAGES_MAX];
    GByteArray *b = g_byte_array_new();
    Decoded d;

    /* the flags' bits on the wire, after ZERO, ASK and COPY */
    g_assert_cmphex(HELD, ==, 0x8);
    g_assert_cmphex(OWNED, ==, 0x10);

    /* one page held, one held and owned, from any node */
    for (uint32_t src = 0; src < limits.nodes; src++) {
        check_epoch_pages_held(&limits, src, 5, 0, held, 2);
    }
    /* in any order, owned or not; starting or ending with either */
    check_epoch_pages_held(&limits, 1, 7, 0, held, ARRAY_SIZE(held));
    check_epoch_pages_held(&limits, 2, 7, 0, held + 1, ARRAY_SIZE(held) - 2);
    check_epoch_pages_held(&most_ram, DISTVM_WIRE_MAX_NODES - 1, UINT64_MAX,
                           0, held, ARRAY_SIZE(held));
    /* one, owned or not: the last of a block, the only one, the first */
    for (int owned = 0; owned < 2; owned++) {
        check_epoch_pages_held(&limits, 1, 1, 2,
                               &(HeldPage) { 262143, owned }, 1);
        check_epoch_pages_held(&limits, 2, 7, 1, &(HeldPage) { 0, owned },
                               1);
        check_epoch_pages_held(&limits, 3, 0x100000000ull, 2,
                               &(HeldPage) { 0, owned }, 1);
    }

    /*
     * as many pages as a message takes, from the end of RAMBlock 2
     * backwards: none owned, all owned, every third
     */
    for (int k = 0; k < 3; k++) {
        for (uint32_t i = 0; i < DISTVM_EPOCH_PAGES_MAX; i++) {
            pages[i] = (HeldPage) {
                .page = 262143 - i * 7,
                .owned = k == 1 || (k == 2 && i % 3 == 1),
            };
        }
        check_epoch_pages_held(&limits, 2, 9, 2, pages,
                               DISTVM_EPOCH_PAGES_MAX);
        check_epoch_pages_held(&limits, 0, UINT64_MAX, 2, pages,
                               DISTVM_EPOCH_PAGES_MAX);
    }

    /* the flags of a page, as the encoder writes them: never ZERO */
    for (int owned = 0; owned < 2; owned++) {
        uint32_t flags = HELD | (owned ? OWNED : 0);

        distvm_wire_epoch_pages_begin(b, 1, 7, 0);
        g_assert_cmpuint(distvm_wire_epoch_pages_add(b, 5, flags, NULL), ==,
                         1);
        distvm_wire_end(b);
        g_assert_cmpuint(b->len, ==, HDR + EPOCH_PAGES_FIXED +
                         EPOCH_PAGE_HDR);
        g_assert_cmphex(ldl_le_p(b->data + HDR + EPOCH_PAGES_FIXED + 8), ==,
                        flags);
        decode_ok(b, &limits, &d);
        g_assert_cmphex(d.msg.u.epoch_pages.kind, ==, HELD);
        g_assert_cmpuint(d.msg.u.epoch_pages.count, ==, 1);
        decoded_free(&d);
    }
    g_byte_array_unref(b);
}

/*
 * EPOCH_PAGES with flags no held page has: OWNED without HELD (alone,
 * with ZERO, or with ASK or COPY), HELD with ZERO, HELD with another
 * kind in one page, first or later; a held page among pages of another
 * kind, or another kind's among held pages (a COPY after HELD ones, and
 * every other pair); each refused for the first such page, with its
 * flags.  A held page carries no bytes.
 */
static void test_epoch_pages_held_bad(void)
{
    enum {
        ZERO = DISTVM_EPOCH_PAGE_ZERO,
        ASK = DISTVM_EPOCH_PAGE_ASK,
        COPY = DISTVM_EPOCH_PAGE_COPY,
        HELD = DISTVM_EPOCH_PAGE_HELD,
        OWNED = DISTVM_EPOCH_PAGE_OWNED,
    };
    /* flags refused in any page */
    static const uint32_t bad[] = {
        /* OWNED without HELD */
        OWNED, OWNED | ZERO, OWNED | ASK, OWNED | COPY, OWNED | COPY | ZERO,
        /* HELD with ZERO */
        HELD | ZERO, HELD | OWNED | ZERO,
        /* HELD with another kind, in one page */
        HELD | ASK, HELD | COPY, HELD | COPY | ZERO, HELD | ASK | OWNED,
        HELD | COPY | OWNED, HELD | ASK | COPY, HELD | ASK | COPY | OWNED,
        HELD | ASK | COPY | OWNED | ZERO,
    };
    /* a page of the first's kind, then one of another */
    static const struct {
        uint32_t first, then;
    } mixed[] = {
        /* held, then a copy, changed or zero, an asked or epoch's page */
        { HELD, COPY }, { HELD, COPY | ZERO }, { HELD | OWNED, COPY },
        { HELD | OWNED, COPY | ZERO }, { HELD, ASK }, { HELD | OWNED, ASK },
        { HELD, 0 }, { HELD, ZERO }, { HELD | OWNED, 0 },
        { HELD | OWNED, ZERO },
        /* a page of another kind, then a held one, owned or not */
        { COPY, HELD }, { COPY | ZERO, HELD | OWNED }, { ASK, HELD },
        { ASK, HELD | OWNED }, { 0, HELD }, { ZERO, HELD | OWNED },
    };
    static const uint32_t helds[] = { HELD, HELD | OWNED };
    static uint8_t data[DISTVM_PAGE_SIZE];
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = i % 251 + 1;
    }

    /* alone, or after a page of its kind fine (OWNED's without it) */
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        uint32_t kind = bad[i] & (ASK | COPY | HELD);
        uint32_t fine = kind == HELD ? HELD | OWNED : kind;

        if (kind & (kind - 1)) {
            fine = HELD;
        }
        for (uint32_t blk = 0; blk < limits.nr_blocks; blk++) {
            uint64_t last = block_pages[blk] - 1;

            begin_epoch_pages(b, 1, 7, blk, 1);
            put_epoch_page(b, last, bad[i], data);
            distvm_wire_end(b);
            expect_epoch_page_error(b, last, blk, bad[i]);
        }
        begin_epoch_pages(b, 2, 7, 2, 3);
        put_epoch_page(b, 100, fine, data);
        put_epoch_page(b, 101, bad[i], data);
        put_epoch_page(b, 102, fine, data);
        distvm_wire_end(b);
        expect_epoch_page_error(b, 101, 2, bad[i]);
    }
    /* the encoder's, with OWNED set after, or HELD cleared */
    distvm_wire_epoch_pages_begin(b, 3, 7, 0);
    distvm_wire_epoch_pages_add(b, 4, ASK, NULL);
    distvm_wire_end(b);
    set_u32(b, HDR + EPOCH_PAGES_FIXED + 8, ASK | OWNED);
    expect_epoch_page_error(b, 4, 0, ASK | OWNED);
    distvm_wire_epoch_pages_begin(b, 3, 7, 0);
    distvm_wire_epoch_pages_add(b, 4, HELD | OWNED, NULL);
    distvm_wire_end(b);
    set_u32(b, HDR + EPOCH_PAGES_FIXED + 8, OWNED);
    expect_epoch_page_error(b, 4, 0, OWNED);

    /* kinds mixed: the second page, in each RAMBlock; or a later one */
    for (size_t i = 0; i < ARRAY_SIZE(mixed); i++) {
        for (uint32_t blk = 0; blk < limits.nr_blocks; blk++) {
            uint64_t last = block_pages[blk] - 1;

            begin_epoch_pages(b, 1, 7, blk, 2);
            put_epoch_page(b, 0, mixed[i].first, data);
            put_epoch_page(b, last, mixed[i].then, data);
            distvm_wire_end(b);
            expect_epoch_page_error(b, last, blk, mixed[i].then);
        }
        begin_epoch_pages(b, 3, UINT64_MAX, 2, 5);
        put_epoch_page(b, 10, mixed[i].first, data);
        put_epoch_page(b, 11, mixed[i].first, data);
        put_epoch_page(b, 12, mixed[i].first, data);
        put_epoch_page(b, 13, mixed[i].then, data);
        put_epoch_page(b, 14, mixed[i].first, data);
        distvm_wire_end(b);
        expect_epoch_page_error(b, 13, 2, mixed[i].then);
    }
    /* by the encoder: held pages, then a copy, changed or zero */
    for (int zero = 0; zero < 2; zero++) {
        distvm_wire_epoch_pages_begin(b, 2, 7, 0);
        distvm_wire_epoch_pages_add(b, 1, HELD, NULL);
        distvm_wire_epoch_pages_add(b, 2, HELD | OWNED, NULL);
        distvm_wire_epoch_pages_add(b, 3, COPY, zero ? NULL : data);
        distvm_wire_end(b);
        expect_epoch_page_error(b, 3, 0, zero ? COPY | ZERO : COPY);
    }
    /* and a held page after an asked one */
    distvm_wire_epoch_pages_begin(b, 2, 7, 0);
    distvm_wire_epoch_pages_add(b, 1, ASK, NULL);
    distvm_wire_epoch_pages_add(b, 2, HELD | OWNED, NULL);
    distvm_wire_end(b);
    expect_epoch_page_error(b, 2, 0, HELD | OWNED);

    /*
     * A held page carries no bytes: any after it are garbage, or read
     * as the next page (here page 0 with flags 0, of another kind)
     */
    for (size_t i = 0; i < ARRAY_SIZE(helds); i++) {
        static const uint8_t zeros[DISTVM_PAGE_SIZE];

        distvm_wire_epoch_pages_begin(b, 1, 7, 0);
        distvm_wire_epoch_pages_add(b, 3, helds[i], NULL);
        distvm_wire_end(b);
        distvm_wire_put_bytes(b, zeros, DISTVM_PAGE_SIZE);
        distvm_wire_end(b);
        expect_exact_error_ram(b, true, "EPOCH_PAGES message has 4096 bytes "
                               "of trailing garbage");
        set_u32(b, HDR + 12, 2);
        expect_epoch_page_error(b, 0, 0, 0);
    }
    /* more held pages counted than came, or fewer */
    distvm_wire_epoch_pages_begin(b, 1, 7, 0);
    distvm_wire_epoch_pages_add(b, 3, HELD, NULL);
    distvm_wire_epoch_pages_add(b, 4, HELD | OWNED, NULL);
    distvm_wire_end(b);
    set_u32(b, HDR + 12, 3);
    expect_exact_error_ram(b, true, "EPOCH_PAGES message is truncated");
    set_u32(b, HDR + 12, 1);
    expect_exact_error_ram(b, true, "EPOCH_PAGES message has 12 bytes of "
                           "trailing garbage");
    /* every cut is truncated, every byte more is garbage */
    distvm_wire_epoch_pages_begin(b, 2, 7, 0);
    distvm_wire_epoch_pages_add(b, 0, HELD | OWNED, NULL);
    distvm_wire_epoch_pages_add(b, 15, HELD, NULL);
    distvm_wire_epoch_pages_add(b, 7, HELD | OWNED, NULL);
    distvm_wire_end(b);
    check_exact_length(b, true);

    /*
     * What every EPOCH_PAGES is refused for is checked before the kinds:
     * the sender, the RAM layout, the epoch, the block and the count;
     * a page's number is checked with its flags, in one error
     */
    distvm_wire_epoch_pages_begin(b, 4, 7, 0);
    distvm_wire_epoch_pages_add(b, 3, HELD, NULL);
    distvm_wire_end(b);
    expect_decode_error(b, &limits, "EPOCH_PAGES message names node 4 in "
                        "its sender; the cluster has 4");
    for (size_t i = 0; i < ARRAY_SIZE(helds); i++) {
        begin_epoch_pages(b, 1, 0, 0, 1);
        put_epoch_page(b, 3, helds[i], NULL);
        distvm_wire_end(b);
        expect_epoch_pages_error(b, 0, 1, 0);
        begin_epoch_pages(b, 1, 7, 3, 1);
        put_epoch_page(b, 3, helds[i], NULL);
        distvm_wire_end(b);
        expect_epoch_pages_error(b, 7, 1, 3);
        begin_epoch_pages(b, 1, 7, 0, DISTVM_EPOCH_PAGES_MAX + 1);
        put_epoch_page(b, 3, helds[i], NULL);
        distvm_wire_end(b);
        expect_epoch_pages_error(b, 7, DISTVM_EPOCH_PAGES_MAX + 1, 0);
        begin_epoch_pages(b, 1, 7, 0, 0);
        put_epoch_page(b, 3, helds[i], NULL);
        distvm_wire_end(b);
        expect_epoch_pages_error(b, 7, 0, 0);
        /* a page that does not exist */
        begin_epoch_pages(b, 1, 7, 0, 1);
        put_epoch_page(b, 16, helds[i], NULL);
        distvm_wire_end(b);
        expect_epoch_page_error(b, 16, 0, helds[i]);
        begin_epoch_pages(b, 1, 7, 2, 2);
        put_epoch_page(b, 262143, helds[i], NULL);
        put_epoch_page(b, 262144, helds[i], NULL);
        distvm_wire_end(b);
        expect_epoch_page_error(b, 262144, 2, helds[i]);
    }
    g_byte_array_unref(b);
}

/* The guest's count of pages under @lim: each RAMBlock's, summed */
static uint64_t guest_pages(const DistvmWireLimits *lim)
{
    uint64_t pages = 0;

    for (uint32_t b = 0; b < lim->nr_blocks; b++) {
        pages += lim->block_pages[b];
    }
    return pages;
}

/*
 * A page of an EPOCH_PAGES of kind DELTA or SLOT: its number, its slot,
 * and its data, NULL if all zero
 */
typedef struct SlotPage {
    uint64_t page;
    uint32_t slot;
    const uint8_t *data;
} SlotPage;

/*
 * An EPOCH_PAGES from @src of the @count pages @pages of RAMBlock @block
 * at epoch @epoch, of @kind (DISTVM_EPOCH_PAGE_DELTA or SLOT): its layout
 * as it is built (the one built by hand, bit for bit: each page's
 * number, the kind with DISTVM_EPOCH_PAGE_ZERO if zero, its slot, and
 * unless zero its bytes), its decoding under @lim, of @kind, and its
 * pages read back with distvm_wire_epoch_page_slot(), slots and all, and
 * with distvm_wire_epoch_page(), which skips the slots; both end exactly
 * at the end of the payload
 */
static void check_epoch_pages_slot(const DistvmWireLimits *lim,
                                   uint32_t src, uint64_t epoch,
                                   uint32_t block, uint32_t kind,
                                   const SlotPage *pages, uint32_t count)
{
    GByteArray *b = g_byte_array_new();
    GByteArray *hand = g_byte_array_new();
    size_t len = EPOCH_PAGES_FIXED;
    const uint8_t *pos, *again;
    Decoded d;

    g_assert(kind == DISTVM_EPOCH_PAGE_DELTA ||
             kind == DISTVM_EPOCH_PAGE_SLOT);
    distvm_wire_epoch_pages_begin(b, src, epoch, block);
    for (uint32_t i = 0; i < count; i++) {
        /* each page counted as it is added, with its slot */
        g_assert_cmpuint(distvm_wire_epoch_pages_add_slot(b, pages[i].page,
                                                          kind,
                                                          pages[i].slot,
                                                          pages[i].data),
                         ==, i + 1);
        len += EPOCH_PAGE_HDR + EPOCH_SLOT_SIZE +
               (pages[i].data ? DISTVM_PAGE_SIZE : 0);
        g_assert_cmpuint(b->len, ==, HDR + len);
        g_assert_cmpuint((uint32_t)ldl_le_p(b->data + HDR + 12), ==, i + 1);
    }
    distvm_wire_end(b);
    g_assert_cmpuint(b->len, ==, HDR + len);
    g_assert_cmpuint(lduw_le_p(b->data + OFF_TYPE), ==,
                     DISTVM_MSG_EPOCH_PAGES);
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + OFF_LENGTH), ==, len);
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + OFF_SRC), ==, src);

    /*
     * epoch, block, count; each page: its number, its flags (the kind,
     * and DISTVM_EPOCH_PAGE_ZERO if zero), its slot, and unless zero its
     * bytes
     */
    distvm_wire_begin(hand, DISTVM_MSG_EPOCH_PAGES, src, 0);
    distvm_wire_put_u64(hand, epoch);
    distvm_wire_put_u32(hand, block);
    distvm_wire_put_u32(hand, count);
    for (uint32_t i = 0; i < count; i++) {
        distvm_wire_put_u64(hand, pages[i].page);
        distvm_wire_put_u32(hand, kind | (pages[i].data ? 0 :
                                          DISTVM_EPOCH_PAGE_ZERO));
        distvm_wire_put_u32(hand, pages[i].slot);
        if (pages[i].data) {
            distvm_wire_put_bytes(hand, pages[i].data, DISTVM_PAGE_SIZE);
        }
    }
    distvm_wire_end(hand);
    g_assert_cmpmem(hand->data, hand->len, b->data, b->len);

    decode_ok(b, lim, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_EPOCH_PAGES, len, src, 0);
    g_assert_cmphex(d.msg.u.epoch_pages.epoch, ==, epoch);
    g_assert_cmpuint(d.msg.u.epoch_pages.block, ==, block);
    g_assert_cmpuint(d.msg.u.epoch_pages.count, ==, count);
    g_assert_cmphex(d.msg.u.epoch_pages.kind, ==, kind);
    /* the pages stay in the payload */
    g_assert(d.msg.u.epoch_pages.entries == d.payload + EPOCH_PAGES_FIXED);
    pos = again = d.msg.u.epoch_pages.entries;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *at = pos;
        uint64_t page = ~pages[i].page;
        uint32_t slot = ~pages[i].slot;
        const uint8_t *data = distvm_wire_epoch_page_slot(&pos, &page,
                                                          &slot);

        g_assert_cmpuint(page, ==, pages[i].page);
        g_assert_cmpuint(slot, ==, pages[i].slot);
        g_assert_cmpuint((uint32_t)ldl_le_p(at + EPOCH_PAGE_HDR), ==,
                         pages[i].slot);
        if (pages[i].data) {
            g_assert(data == at + EPOCH_PAGE_HDR + EPOCH_SLOT_SIZE);
            g_assert_cmpmem(data, DISTVM_PAGE_SIZE, pages[i].data,
                            DISTVM_PAGE_SIZE);
            g_assert(pos == data + DISTVM_PAGE_SIZE);
        } else {
            g_assert_null(data);
            g_assert(pos == at + EPOCH_PAGE_HDR + EPOCH_SLOT_SIZE);
        }
        /* without its slot: the same page and data, then the same next */
        page = ~pages[i].page;
        g_assert(distvm_wire_epoch_page(&again, &page) == data);
        g_assert_cmpuint(page, ==, pages[i].page);
        g_assert(again == pos);
    }
    g_assert(pos == d.payload + len);
    decoded_free(&d);

    g_byte_array_unref(hand);
    g_byte_array_unref(b);
}

/*
 * EPOCH_PAGES with redundancy=parity (wire version 24): what a node sends
 * its keeper to change the parity of the slot of its copy of a page
 * (DELTA: the XOR of the committed content and the new one, all zero if
 * the page did not change), and a slot's committed content, sent to home
 * as it rebuilds a lost node's copies (SLOT); each page with its slot, a
 * u32 after its flags, anywhere below the guest's count of pages (the
 * sum of its RAMBlocks', whatever the page's), then its bytes unless all
 * zero.  All pages of a message are of one kind, which the decoder gives
 * as its kind.
 */
static void test_epoch_pages_slot(void)
{
    enum {
        ZERO = DISTVM_EPOCH_PAGE_ZERO,
        DELTA = DISTVM_EPOCH_PAGE_DELTA,
        SLOT = DISTVM_EPOCH_PAGE_SLOT,
    };
    static const DistvmWireLimits most_ram = {
        .nodes = DISTVM_WIRE_MAX_NODES,
        .nr_blocks = ARRAY_SIZE(block_pages),
        .block_pages = block_pages,
    };
    /* RAMBlocks 0 and 1 only: a guest of 17 pages */
    static const DistvmWireLimits small_ram = {
        .nodes = 4,
        .nr_vcpus = 8,
        .nr_blocks = 2,
        .block_pages = block_pages,
    };
    static const uint32_t kinds[] = { DELTA, SLOT };
    /* the flags the encoder gives a page of each kind, zero or not */
    static const struct {
        uint32_t kind;
        bool zero;
        uint32_t flags;
    } encoded[] = {
        { DELTA, false, DELTA }, { DELTA, true, DELTA | ZERO },
        { SLOT, false, SLOT }, { SLOT, true, SLOT | ZERO },
    };
    uint64_t guest = guest_pages(&limits);
    g_autofree uint8_t *data = g_malloc(DISTVM_EPOCH_PAGES_MAX *
                                        DISTVM_PAGE_SIZE);
    SlotPage pages[DISTVM_EPOCH_PAGES_MAX];
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (size_t i = 0; i < DISTVM_EPOCH_PAGES_MAX * DISTVM_PAGE_SIZE; i++) {
        data[i] = i * 5 + i / DISTVM_PAGE_SIZE + 7;
    }

    /* the flags' bits on the wire, after HELD and OWNED */
    g_assert_cmphex(DELTA, ==, 0x20);
    g_assert_cmphex(SLOT, ==, 0x40);
    /* the guest's pages: RAMBlocks of 16, 1 and 262144 */
    g_assert_cmpuint(guest, ==, 262161);
    g_assert_cmpuint(guest_pages(&small_ram), ==, 17);

    for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
        uint32_t kind = kinds[k];
        /* changed and zero, in any order, in any slots, the last too */
        const SlotPage mix[] = {
            { 15, 0, data }, { 0, 1, NULL },
            { 3, guest - 1, data + DISTVM_PAGE_SIZE }, { 4, 0x10000, NULL },
            { 5, 16, NULL }, { 14, 262144, data + 2 * DISTVM_PAGE_SIZE },
            { 1, 5, data + 3 * DISTVM_PAGE_SIZE },
        };

        /* from any node */
        for (uint32_t src = 0; src < limits.nodes; src++) {
            check_epoch_pages_slot(&limits, src, 5, 0, kind, mix,
                                   ARRAY_SIZE(mix));
        }
        check_epoch_pages_slot(&most_ram, DISTVM_WIRE_MAX_NODES - 1,
                               UINT64_MAX, 0, kind, mix, ARRAY_SIZE(mix));
        /* starting with a zero page, ending with one */
        check_epoch_pages_slot(&limits, 2, 1, 0, kind, mix + 1,
                               ARRAY_SIZE(mix) - 2);

        /*
         * one page, changed or zero: the last of a block, the only one,
         * in the guest's first slot or its last, whatever the RAMBlock
         */
        for (int zero = 0; zero < 2; zero++) {
            const uint8_t *one = zero ? NULL : data + 7 * DISTVM_PAGE_SIZE;

            check_epoch_pages_slot(&limits, 1, 1, 2, kind,
                                   &(SlotPage) { 262143, guest - 1, one },
                                   1);
            check_epoch_pages_slot(&limits, 3, UINT64_MAX, 2, kind,
                                   &(SlotPage) { 262143, 0, one }, 1);
            check_epoch_pages_slot(&limits, 2, 7, 1, kind,
                                   &(SlotPage) { 0, guest - 1, one }, 1);
            check_epoch_pages_slot(&limits, 0, 0x100000000ull, 0, kind,
                                   &(SlotPage) { 15, 0, one }, 1);
            /* another guest: its own last slot */
            check_epoch_pages_slot(&small_ram, 1, 7, 0, kind,
                                   &(SlotPage) { 0, 16, one }, 1);
            check_epoch_pages_slot(&small_ram, 1, 7, 1, kind,
                                   &(SlotPage) { 0, 0, one }, 1);
        }

        /*
         * as many pages as a message takes, from the end of RAMBlock 2
         * backwards, in slots from the guest's last backwards: all
         * changed, all zero, a mix
         */
        for (int z = 0; z < 3; z++) {
            for (uint32_t i = 0; i < DISTVM_EPOCH_PAGES_MAX; i++) {
                bool zero = z == 1 || (z == 2 && i % 3 == 1);

                pages[i] = (SlotPage) {
                    .page = 262143 - i * 7,
                    .slot = guest - 1 - i * 1000,
                    .data = zero ? NULL : data + i * DISTVM_PAGE_SIZE,
                };
            }
            check_epoch_pages_slot(&limits, 2, 9, 2, kind, pages,
                                   DISTVM_EPOCH_PAGES_MAX);
            check_epoch_pages_slot(&limits, 0, UINT64_MAX, 2, kind, pages,
                                   DISTVM_EPOCH_PAGES_MAX);
        }
    }
    /* the largest is well within a payload */
    g_assert_cmpuint(EPOCH_PAGES_FIXED + DISTVM_EPOCH_PAGES_MAX *
                     (EPOCH_PAGE_HDR + EPOCH_SLOT_SIZE + DISTVM_PAGE_SIZE),
                     <=, DISTVM_WIRE_MAX_PAYLOAD);

    /* the flags and slot of a page, as the encoder writes them */
    for (size_t i = 0; i < ARRAY_SIZE(encoded); i++) {
        uint32_t len = EPOCH_PAGES_FIXED + EPOCH_PAGE_HDR + EPOCH_SLOT_SIZE +
                       (encoded[i].zero ? 0 : DISTVM_PAGE_SIZE);
        const uint8_t *p;

        distvm_wire_epoch_pages_begin(b, 1, 7, 0);
        g_assert_cmpuint(distvm_wire_epoch_pages_add_slot(b, 5,
                                                          encoded[i].kind,
                                                          0x12345,
                                                          encoded[i].zero ?
                                                          NULL : data), ==,
                         1);
        distvm_wire_end(b);
        p = b->data + HDR + EPOCH_PAGES_FIXED;
        g_assert_cmpuint(b->len, ==, HDR + len);
        g_assert_cmphex(ldq_le_p(p), ==, 5);
        g_assert_cmphex(ldl_le_p(p + 8), ==, encoded[i].flags);
        g_assert_cmphex(ldl_le_p(p + EPOCH_PAGE_HDR), ==, 0x12345);
        decode_ok(b, &limits, &d);
        check_hdr(&d.msg.hdr, DISTVM_MSG_EPOCH_PAGES, len, 1, 0);
        g_assert_cmphex(d.msg.u.epoch_pages.kind, ==, encoded[i].kind);
        decoded_free(&d);
    }

    /*
     * The other kinds have no slot: read with
     * distvm_wire_epoch_page_slot(), theirs is 0, and the next page is
     * where distvm_wire_epoch_page() finds it
     */
    {
        static const struct {
            uint32_t kind;
            bool data;
        } others[] = {
            { 0, true }, { 0, false }, { DISTVM_EPOCH_PAGE_ASK, false },
            { DISTVM_EPOCH_PAGE_COPY, true },
            { DISTVM_EPOCH_PAGE_COPY, false },
            { DISTVM_EPOCH_PAGE_HELD, false },
            { DISTVM_EPOCH_PAGE_HELD | DISTVM_EPOCH_PAGE_OWNED, false },
        };

        for (size_t i = 0; i < ARRAY_SIZE(others); i++) {
            const uint8_t *pos, *again;
            uint64_t page = 0, page_again = 0;
            uint32_t slot = UINT32_MAX;

            distvm_wire_epoch_pages_begin(b, 2, 7, 0);
            distvm_wire_epoch_pages_add(b, 9, others[i].kind,
                                        others[i].data ? data : NULL);
            distvm_wire_epoch_pages_add(b, 10, others[i].kind,
                                        others[i].data ? data : NULL);
            distvm_wire_end(b);
            decode_ok(b, &limits, &d);
            pos = again = d.msg.u.epoch_pages.entries;
            g_assert(distvm_wire_epoch_page_slot(&pos, &page, &slot) ==
                     distvm_wire_epoch_page(&again, &page_again));
            g_assert_cmpuint(page, ==, 9);
            g_assert_cmpuint(page_again, ==, 9);
            g_assert_cmpuint(slot, ==, 0);
            g_assert(pos == again);
            slot = UINT32_MAX;
            distvm_wire_epoch_page_slot(&pos, &page, &slot);
            g_assert_cmpuint(page, ==, 10);
            g_assert_cmpuint(slot, ==, 0);
            g_assert(pos == d.payload + d.msg.hdr.length);
            decoded_free(&d);
        }
    }
    g_byte_array_unref(b);
}

/*
 * @b, an EPOCH_PAGES, must be refused under @lim for its page @page of
 * RAMBlock @block in slot @slot, past the guest's pages, with exactly
 * that; and without the RAM layout for that
 */
static void expect_epoch_slot_error(const GByteArray *b,
                                    const DistvmWireLimits *lim,
                                    uint64_t page, uint32_t block,
                                    uint32_t slot)
{
    g_autofree char *what = g_strdup_printf(
        "EPOCH_PAGES message with page %" PRIu64 " of RAMBlock %" PRIu32
        " in slot %" PRIu32 ", past the guest's %" PRIu64 " pages", page,
        block, slot, guest_pages(lim));
    g_autofree char *got = decode_error(b, lim);

    g_assert_cmpstr(got, ==, what);
    expect_decode_error(b, &limits_no_ram, "before the RAM layout was "
                        "agreed");
}

/*
 * EPOCH_PAGES of kinds DELTA and SLOT refused: a slot at or past the
 * guest's count of pages (not the RAMBlock's), in the first page or a
 * later one; OWNED with either (only a held page is owned); DELTA with
 * SLOT or another kind in one page; a page of either among pages of
 * another kind, or another kind's among them, DELTA and SLOT mixed too;
 * each refused for the first such page, with its flags, or its slot.
 * Their pages carry a slot, then their bytes unless zero: cut short,
 * either is truncated.
 */
static void test_epoch_pages_slot_bad(void)
{
    enum {
        ZERO = DISTVM_EPOCH_PAGE_ZERO,
        ASK = DISTVM_EPOCH_PAGE_ASK,
        COPY = DISTVM_EPOCH_PAGE_COPY,
        HELD = DISTVM_EPOCH_PAGE_HELD,
        OWNED = DISTVM_EPOCH_PAGE_OWNED,
        DELTA = DISTVM_EPOCH_PAGE_DELTA,
        SLOT = DISTVM_EPOCH_PAGE_SLOT,
    };
    /* RAMBlock 0 only: a guest of 16 pages */
    static const DistvmWireLimits one_block = {
        .nodes = 4,
        .nr_vcpus = 8,
        .nr_blocks = 1,
        .block_pages = block_pages,
    };
    static const uint32_t kinds[] = { DELTA, DELTA | ZERO, SLOT, SLOT | ZERO };
    /* flags refused in any page */
    static const uint32_t bad[] = {
        /* OWNED with DELTA or SLOT, zero or not */
        DELTA | OWNED, DELTA | OWNED | ZERO, SLOT | OWNED,
        SLOT | OWNED | ZERO,
        /* DELTA or SLOT with another kind, in one page */
        DELTA | SLOT, DELTA | SLOT | ZERO, DELTA | ASK, DELTA | COPY,
        DELTA | COPY | ZERO, DELTA | HELD, DELTA | HELD | OWNED, SLOT | ASK,
        SLOT | COPY, SLOT | COPY | ZERO, SLOT | HELD, SLOT | HELD | OWNED,
        DELTA | SLOT | OWNED | ZERO,
    };
    /* a page of the first's kind, then one of another */
    static const struct {
        uint32_t first, then;
    } mixed[] = {
        /* DELTA and SLOT, either way, changed or zero */
        { DELTA, SLOT }, { DELTA | ZERO, SLOT }, { DELTA, SLOT | ZERO },
        { SLOT, DELTA }, { SLOT | ZERO, DELTA | ZERO },
        /* either, then an epoch's page, a copy, an asked or held one */
        { DELTA, 0 }, { DELTA | ZERO, ZERO }, { DELTA, COPY },
        { DELTA, COPY | ZERO }, { DELTA, ASK }, { DELTA, HELD },
        { DELTA | ZERO, HELD | OWNED }, { SLOT, 0 }, { SLOT | ZERO, ZERO },
        { SLOT, COPY }, { SLOT | ZERO, COPY | ZERO }, { SLOT, ASK },
        { SLOT, HELD | OWNED },
        /* a page of another kind, then one of either */
        { 0, DELTA }, { ZERO, DELTA | ZERO }, { COPY, DELTA },
        { COPY | ZERO, SLOT }, { ASK, DELTA }, { ASK, SLOT | ZERO },
        { HELD, SLOT }, { HELD | OWNED, DELTA | ZERO }, { 0, SLOT },
        { ZERO, SLOT | ZERO },
    };
    static const uint32_t past[] = {
        262161, 262162, 0x100000, 0x7fffffffu, 0x80000000u, UINT32_MAX,
    };
    static const uint8_t zeros[DISTVM_PAGE_SIZE];
    static uint8_t data[DISTVM_PAGE_SIZE];
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = i % 249 + 1;
    }

    /*
     * A slot at or past the guest's 262161 pages: one page, the last of
     * each RAMBlock; or the second of three, the others fine
     */
    for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
        const uint8_t *with = kinds[k] & ZERO ? NULL : data;
        uint32_t kind = kinds[k] & ~ZERO;

        for (size_t i = 0; i < ARRAY_SIZE(past); i++) {
            for (uint32_t blk = 0; blk < limits.nr_blocks; blk++) {
                uint64_t last = block_pages[blk] - 1;

                distvm_wire_epoch_pages_begin(b, 1, 7, blk);
                distvm_wire_epoch_pages_add_slot(b, last, kind, past[i],
                                                 with);
                distvm_wire_end(b);
                expect_epoch_slot_error(b, &limits, last, blk, past[i]);
            }
            distvm_wire_epoch_pages_begin(b, 2, 7, 2);
            distvm_wire_epoch_pages_add_slot(b, 100, kind, 0, with);
            distvm_wire_epoch_pages_add_slot(b, 101, kind, past[i], with);
            distvm_wire_epoch_pages_add_slot(b, 102, kind, 262160, with);
            distvm_wire_end(b);
            expect_epoch_slot_error(b, &limits, 101, 2, past[i]);
        }
        /* the guest's last slot is fine, the next is not */
        distvm_wire_epoch_pages_begin(b, 3, 7, 1);
        distvm_wire_epoch_pages_add_slot(b, 0, kind, 262160, with);
        distvm_wire_end(b);
        decode_ok(b, &limits, &d);
        decoded_free(&d);
        set_u32(b, HDR + EPOCH_PAGES_FIXED + EPOCH_PAGE_HDR, 262161);
        expect_epoch_slot_error(b, &limits, 0, 1, 262161);

        /*
         * The limit is the guest's pages, not the RAMBlock's: slot 16 of
         * a guest of RAMBlock 0 alone is past it, not of one with more;
         * slot 0 is not
         */
        distvm_wire_epoch_pages_begin(b, 1, 7, 0);
        distvm_wire_epoch_pages_add_slot(b, 15, kind, 15, with);
        distvm_wire_epoch_pages_add_slot(b, 3, kind, 16, with);
        distvm_wire_end(b);
        decode_ok(b, &limits, &d);
        decoded_free(&d);
        expect_epoch_slot_error(b, &one_block, 3, 0, 16);
        set_u32(b, HDR + EPOCH_PAGES_FIXED + EPOCH_PAGE_HDR +
                EPOCH_SLOT_SIZE + (with ? DISTVM_PAGE_SIZE : 0) +
                EPOCH_PAGE_HDR, 0);
        decode_ok(b, &one_block, &d);
        decoded_free(&d);
    }

    /* flags no such page has: alone, or after a fine page of its kind */
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        uint32_t fine = bad[i] & DELTA ? DELTA : SLOT;

        for (uint32_t blk = 0; blk < limits.nr_blocks; blk++) {
            uint64_t last = block_pages[blk] - 1;

            begin_epoch_pages(b, 1, 7, blk, 1);
            put_epoch_page_slot(b, last, bad[i], 3, data);
            distvm_wire_end(b);
            expect_epoch_page_error(b, last, blk, bad[i]);
        }
        begin_epoch_pages(b, 2, 7, 2, 3);
        put_epoch_page_slot(b, 100, fine, 0, data);
        put_epoch_page_slot(b, 101, bad[i], 1, data);
        put_epoch_page_slot(b, 102, fine, 2, data);
        distvm_wire_end(b);
        expect_epoch_page_error(b, 101, 2, bad[i]);
    }
    /* the encoder's, with OWNED set after */
    for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
        distvm_wire_epoch_pages_begin(b, 3, 7, 0);
        distvm_wire_epoch_pages_add_slot(b, 4, kinds[k] & ~ZERO, 9,
                                         kinds[k] & ZERO ? NULL : data);
        distvm_wire_end(b);
        set_u32(b, HDR + EPOCH_PAGES_FIXED + 8, kinds[k] | OWNED);
        expect_epoch_page_error(b, 4, 0, kinds[k] | OWNED);
    }

    /* kinds mixed: the second page, in each RAMBlock; or a later one */
    for (size_t i = 0; i < ARRAY_SIZE(mixed); i++) {
        for (uint32_t blk = 0; blk < limits.nr_blocks; blk++) {
            uint64_t last = block_pages[blk] - 1;

            begin_epoch_pages(b, 1, 7, blk, 2);
            put_epoch_page_slot(b, 0, mixed[i].first, 1, data);
            put_epoch_page_slot(b, last, mixed[i].then, 2, data);
            distvm_wire_end(b);
            expect_epoch_page_error(b, last, blk, mixed[i].then);
        }
        begin_epoch_pages(b, 3, UINT64_MAX, 2, 5);
        put_epoch_page_slot(b, 10, mixed[i].first, 10, data);
        put_epoch_page_slot(b, 11, mixed[i].first, 11, data);
        put_epoch_page_slot(b, 12, mixed[i].first, 12, data);
        put_epoch_page_slot(b, 13, mixed[i].then, 13, data);
        put_epoch_page_slot(b, 14, mixed[i].first, 14, data);
        distvm_wire_end(b);
        expect_epoch_page_error(b, 13, 2, mixed[i].then);
    }
    /*
     * by the encoder: DELTA then SLOT, SLOT then DELTA, DELTA then a
     * copy, an epoch's page then DELTA, held pages then SLOT
     */
    distvm_wire_epoch_pages_begin(b, 1, 7, 0);
    distvm_wire_epoch_pages_add_slot(b, 1, DELTA, 1, data);
    distvm_wire_epoch_pages_add_slot(b, 2, SLOT, 2, data);
    distvm_wire_end(b);
    expect_epoch_page_error(b, 2, 0, SLOT);
    distvm_wire_epoch_pages_begin(b, 1, 7, 0);
    distvm_wire_epoch_pages_add_slot(b, 1, SLOT, 1, NULL);
    distvm_wire_epoch_pages_add_slot(b, 2, DELTA, 2, NULL);
    distvm_wire_end(b);
    expect_epoch_page_error(b, 2, 0, DELTA | ZERO);
    distvm_wire_epoch_pages_begin(b, 1, 7, 0);
    distvm_wire_epoch_pages_add_slot(b, 1, DELTA, 1, NULL);
    distvm_wire_epoch_pages_add(b, 2, COPY, data);
    distvm_wire_end(b);
    expect_epoch_page_error(b, 2, 0, COPY);
    distvm_wire_epoch_pages_begin(b, 1, 7, 0);
    distvm_wire_epoch_pages_add(b, 1, 0, data);
    distvm_wire_epoch_pages_add_slot(b, 2, DELTA, 2, data);
    distvm_wire_end(b);
    expect_epoch_page_error(b, 2, 0, DELTA);
    distvm_wire_epoch_pages_begin(b, 2, 7, 0);
    distvm_wire_epoch_pages_add(b, 1, HELD, NULL);
    distvm_wire_epoch_pages_add(b, 2, HELD | OWNED, NULL);
    distvm_wire_epoch_pages_add_slot(b, 3, SLOT, 3, data);
    distvm_wire_end(b);
    expect_epoch_page_error(b, 3, 0, SLOT);

    /*
     * The slot is read with the page's number and flags, and checked
     * before them: past the guest's pages, it is what is refused
     */
    begin_epoch_pages(b, 1, 7, 0, 1);
    put_epoch_page_slot(b, 16, DELTA | OWNED, 262161, data);
    distvm_wire_end(b);
    expect_epoch_slot_error(b, &limits, 16, 0, 262161);
    begin_epoch_pages(b, 1, 7, 0, 2);
    put_epoch_page_slot(b, 1, COPY, 0, data);
    put_epoch_page_slot(b, 2, SLOT, UINT32_MAX, data);
    distvm_wire_end(b);
    expect_epoch_slot_error(b, &limits, 2, 0, UINT32_MAX);

    /* A slot cut short, in the only page or the last one */
    for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
        const uint8_t *with = kinds[k] & ZERO ? NULL : data;

        for (uint32_t cut = 0; cut < EPOCH_SLOT_SIZE; cut++) {
            begin_epoch_pages(b, 1, 7, 0, 1);
            distvm_wire_put_u64(b, 3);
            distvm_wire_put_u32(b, kinds[k]);
            g_byte_array_append(b, (const uint8_t *)"\x01\x00\x00", cut);
            distvm_wire_end(b);
            expect_exact_error_ram(b, true, "EPOCH_PAGES message is "
                                   "truncated");
            begin_epoch_pages(b, 1, 7, 0, 2);
            put_epoch_page_slot(b, 2, kinds[k], 0, with);
            distvm_wire_put_u64(b, 3);
            distvm_wire_put_u32(b, kinds[k]);
            g_byte_array_append(b, (const uint8_t *)"\x01\x00\x00", cut);
            distvm_wire_end(b);
            expect_exact_error_ram(b, true, "EPOCH_PAGES message is "
                                   "truncated");
        }
    }
    /*
     * a page of kind 0 made DELTA, SLOT, or either zero: its slot never
     * came, or is read from its bytes and its bytes are short
     */
    for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
        distvm_wire_epoch_pages_begin(b, 1, 7, 0);
        distvm_wire_epoch_pages_add(b, 3, 0, NULL);
        distvm_wire_end(b);
        set_u32(b, HDR + EPOCH_PAGES_FIXED + 8, kinds[k]);
        expect_exact_error_ram(b, true, "EPOCH_PAGES message is truncated");
        if (!(kinds[k] & ZERO)) {
            distvm_wire_epoch_pages_begin(b, 1, 7, 0);
            distvm_wire_epoch_pages_add(b, 3, 0, zeros);
            distvm_wire_end(b);
            set_u32(b, HDR + EPOCH_PAGES_FIXED + 8, kinds[k]);
            expect_exact_error_ram(b, true, "EPOCH_PAGES message is "
                                   "truncated");
        }
    }

    /* Their bytes, unless zero: cut short, or flagged zero */
    for (size_t k = 0; k < 2; k++) {
        uint32_t kind = k ? SLOT : DELTA;

        distvm_wire_epoch_pages_begin(b, 1, 7, 0);
        distvm_wire_epoch_pages_add_slot(b, 3, kind, 7, data);
        distvm_wire_end(b);
        for (uint32_t cut = 1; cut <= DISTVM_PAGE_SIZE; cut *= 2) {
            GByteArray *c = buf_dup(b);

            g_byte_array_set_size(c, b->len - cut);
            set_u32(c, OFF_LENGTH, c->len - HDR);
            expect_exact_error_ram(c, true, "EPOCH_PAGES message is "
                                   "truncated");
            g_byte_array_unref(c);
        }
        /* a changed page flagged zero: its bytes are garbage */
        set_u32(b, HDR + EPOCH_PAGES_FIXED + 8, kind | ZERO);
        expect_exact_error_ram(b, true, "EPOCH_PAGES message has 4096 bytes "
                               "of trailing garbage");
        /* a zero page whose flag is cleared: its bytes never came */
        distvm_wire_epoch_pages_begin(b, 1, 7, 0);
        distvm_wire_epoch_pages_add_slot(b, 3, kind, 7, NULL);
        distvm_wire_epoch_pages_add_slot(b, 4, kind, 8, NULL);
        distvm_wire_end(b);
        set_u32(b, HDR + EPOCH_PAGES_FIXED + 8, kind);
        expect_exact_error_ram(b, true, "EPOCH_PAGES message is truncated");
        /* more pages counted than came, or fewer */
        set_u32(b, HDR + EPOCH_PAGES_FIXED + 8, kind | ZERO);
        set_u32(b, HDR + 12, 3);
        expect_exact_error_ram(b, true, "EPOCH_PAGES message is truncated");
        set_u32(b, HDR + 12, 1);
        expect_exact_error_ram(b, true, "EPOCH_PAGES message has 16 bytes "
                               "of trailing garbage");
        /* every cut is truncated, every byte more is garbage */
        distvm_wire_epoch_pages_begin(b, 2, 7, 0);
        distvm_wire_epoch_pages_add_slot(b, 0, kind, 262160, NULL);
        distvm_wire_epoch_pages_add_slot(b, 15, kind, 0, data);
        distvm_wire_epoch_pages_add_slot(b, 7, kind, 5, NULL);
        distvm_wire_end(b);
        check_exact_length(b, true);
    }

    /*
     * What every EPOCH_PAGES is refused for is checked before the kinds
     * and slots: the sender, the RAM layout, the epoch, the block and the
     * count; a page's number is checked with its flags, in one error
     */
    distvm_wire_epoch_pages_begin(b, 4, 7, 0);
    distvm_wire_epoch_pages_add_slot(b, 3, DELTA, UINT32_MAX, NULL);
    distvm_wire_end(b);
    expect_decode_error(b, &limits, "EPOCH_PAGES message names node 4 in "
                        "its sender; the cluster has 4");
    for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
        begin_epoch_pages(b, 1, 0, 0, 1);
        put_epoch_page_slot(b, 3, kinds[k], UINT32_MAX, data);
        distvm_wire_end(b);
        expect_epoch_pages_error(b, 0, 1, 0);
        begin_epoch_pages(b, 1, 7, 3, 1);
        put_epoch_page_slot(b, 3, kinds[k], UINT32_MAX, data);
        distvm_wire_end(b);
        expect_epoch_pages_error(b, 7, 1, 3);
        begin_epoch_pages(b, 1, 7, 0, DISTVM_EPOCH_PAGES_MAX + 1);
        put_epoch_page_slot(b, 3, kinds[k], 0, data);
        distvm_wire_end(b);
        expect_epoch_pages_error(b, 7, DISTVM_EPOCH_PAGES_MAX + 1, 0);
        begin_epoch_pages(b, 1, 7, 0, 0);
        put_epoch_page_slot(b, 3, kinds[k], 0, data);
        distvm_wire_end(b);
        expect_epoch_pages_error(b, 7, 0, 0);
        /* a page that does not exist, in a slot that does */
        begin_epoch_pages(b, 1, 7, 0, 1);
        put_epoch_page_slot(b, 16, kinds[k], 16, data);
        distvm_wire_end(b);
        expect_epoch_page_error(b, 16, 0, kinds[k]);
        begin_epoch_pages(b, 1, 7, 2, 2);
        put_epoch_page_slot(b, 262143, kinds[k], 1, data);
        put_epoch_page_slot(b, 262144, kinds[k], 2, data);
        distvm_wire_end(b);
        expect_epoch_page_error(b, 262144, 2, kinds[k]);
    }
    g_byte_array_unref(b);
}

/*
 * An EPOCH_STATE @st from @src: its layout (the one built by hand, bit for
 * bit), and its decoding under @lim
 */
static void check_epoch_state(const DistvmWireLimits *lim, uint32_t src,
                              const DistvmMsgEpochState *st)
{
    GByteArray *b = g_byte_array_new();
    GByteArray *hand = g_byte_array_new();
    uint32_t len = EPOCH_STATE_FIXED + st->len;
    const uint8_t *p;
    Decoded d;

    distvm_wire_epoch_state(b, src, st);
    g_assert_cmpuint(b->len, ==, HDR + len);
    g_assert_cmpuint(lduw_le_p(b->data + OFF_TYPE), ==,
                     DISTVM_MSG_EPOCH_STATE);
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + OFF_LENGTH), ==, len);
    g_assert_cmpuint((uint32_t)ldl_le_p(b->data + OFF_SRC), ==, src);
    /* the encoder numbers none */
    g_assert_cmphex(ldq_le_p(b->data + OFF_SEQ), ==, 0);
    /* epoch, kind, index, total, offset, then the bytes */
    p = b->data + HDR;
    g_assert_cmphex(ldq_le_p(p), ==, st->epoch);
    g_assert_cmpuint((uint32_t)ldl_le_p(p + 8), ==, st->kind);
    g_assert_cmpuint((uint32_t)ldl_le_p(p + 12), ==, st->index);
    g_assert_cmpuint((uint32_t)ldl_le_p(p + 16), ==, st->total);
    g_assert_cmpuint((uint32_t)ldl_le_p(p + 20), ==, st->offset);
    g_assert_cmpmem(p + EPOCH_STATE_FIXED, st->len, st->data, st->len);

    distvm_wire_begin(hand, DISTVM_MSG_EPOCH_STATE, src, 0);
    distvm_wire_put_u64(hand, st->epoch);
    distvm_wire_put_u32(hand, st->kind);
    distvm_wire_put_u32(hand, st->index);
    distvm_wire_put_u32(hand, st->total);
    distvm_wire_put_u32(hand, st->offset);
    distvm_wire_put_bytes(hand, st->data, st->len);
    distvm_wire_end(hand);
    g_assert_cmpmem(hand->data, hand->len, b->data, b->len);

    decode_ok(b, lim, &d);
    check_hdr(&d.msg.hdr, DISTVM_MSG_EPOCH_STATE, len, src, 0);
    g_assert_cmphex(d.msg.u.epoch_state.epoch, ==, st->epoch);
    g_assert_cmpuint(d.msg.u.epoch_state.kind, ==, st->kind);
    g_assert_cmpuint(d.msg.u.epoch_state.index, ==, st->index);
    g_assert_cmpuint(d.msg.u.epoch_state.total, ==, st->total);
    g_assert_cmpuint(d.msg.u.epoch_state.offset, ==, st->offset);
    g_assert_cmpuint(d.msg.u.epoch_state.len, ==, st->len);
    /* the bytes stay in the payload: the rest of it */
    g_assert(d.msg.u.epoch_state.data == d.payload + EPOCH_STATE_FIXED);
    g_assert_cmpmem(d.msg.u.epoch_state.data, d.msg.u.epoch_state.len,
                    st->data, st->len);
    decoded_free(&d);

    g_byte_array_unref(hand);
    g_byte_array_unref(b);
}

/*
 * EPOCH_STATE: bytes of a vCPU's state or of the devices' (index 0), of
 * up to DISTVM_EPOCH_STATE_MAX bytes, whole or a chunk of it at an
 * offset; no RAM layout is needed
 */
static void test_epoch_state(void)
{
    enum {
        VCPU = DISTVM_EPOCH_STATE_VCPU,
        DEVICES = DISTVM_EPOCH_STATE_DEVICES,
    };
    /* the largest chunk a payload carries */
    const uint32_t most = DISTVM_WIRE_MAX_PAYLOAD - EPOCH_STATE_FIXED;
    g_autofree uint8_t *state = g_malloc(DISTVM_WIRE_MAX_PAYLOAD);
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (size_t i = 0; i < DISTVM_WIRE_MAX_PAYLOAD; i++) {
        state[i] = i * 37 + i / 251;
    }

    /* a vCPU's state whole, in one message, from any node */
    for (uint32_t src = 0; src < limits.nodes; src++) {
        check_epoch_state(&limits, src, &(DistvmMsgEpochState) {
            .epoch = 5, .kind = VCPU, .index = 7, .total = 1000,
            .offset = 0, .len = 1000, .data = state,
        });
    }
    /* a chunk at an offset, in the middle; the last chunk */
    check_epoch_state(&limits, 2, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = VCPU, .index = 3, .total = 10000,
        .offset = 4096, .len = 1000, .data = state + 4096,
    });
    check_epoch_state(&limits, 2, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = VCPU, .index = 3, .total = 10000,
        .offset = 8192, .len = 1808, .data = state + 8192,
    });
    /* one byte: the first, the only, the last */
    check_epoch_state(&limits, 1, &(DistvmMsgEpochState) {
        .epoch = 1, .kind = VCPU, .index = 0, .total = 10000, .offset = 0,
        .len = 1, .data = state,
    });
    check_epoch_state(&limits, 1, &(DistvmMsgEpochState) {
        .epoch = 1, .kind = VCPU, .index = 0, .total = 1, .offset = 0,
        .len = 1, .data = state,
    });
    check_epoch_state(&limits, 1, &(DistvmMsgEpochState) {
        .epoch = 1, .kind = VCPU, .index = 0, .total = 10000,
        .offset = 9999, .len = 1, .data = state + 9999,
    });
    /* each vCPU of the machine; the only one; the last of the most */
    for (uint32_t cpu = 0; cpu < limits.nr_vcpus; cpu++) {
        check_epoch_state(&limits, cpu % limits.nodes,
                          &(DistvmMsgEpochState) {
            .epoch = cpu + 1, .kind = VCPU, .index = cpu, .total = 600,
            .offset = 100 * cpu % 600, .len = 100, .data = state + cpu,
        });
    }
    check_epoch_state(&limits_one_vcpu, 1, &(DistvmMsgEpochState) {
        .epoch = 2, .kind = VCPU, .index = 0, .total = 64, .offset = 32,
        .len = 32, .data = state,
    });
    check_epoch_state(&limits_most, DISTVM_WIRE_MAX_NODES - 1,
                      &(DistvmMsgEpochState) {
        .epoch = UINT64_MAX, .kind = VCPU, .index = UINT32_MAX - 1,
        .total = 64, .offset = 0, .len = 64, .data = state,
    });

    /* home's devices, index 0; no vCPU or RAM layout needed */
    check_epoch_state(&limits, 0, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = DEVICES, .index = 0, .total = 300000,
        .offset = 0, .len = 300000, .data = state,
    });
    check_epoch_state(&limits_no_ram, 0, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = DEVICES, .index = 0, .total = 300000,
        .offset = 200000, .len = 100000, .data = state + 200000,
    });
    check_epoch_state(&limits_nodes_only, 0, &(DistvmMsgEpochState) {
        .epoch = UINT64_MAX, .kind = DEVICES, .index = 0, .total = 1,
        .offset = 0, .len = 1, .data = state,
    });
    /* (the decoder does not know who may send them: distvm-epoch.c does) */
    check_epoch_state(&limits, 3, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = DEVICES, .index = 0, .total = 2, .offset = 1,
        .len = 1, .data = state,
    });

    /* the largest state: chunks as large as a payload, first and last */
    check_epoch_state(&limits, 2, &(DistvmMsgEpochState) {
        .epoch = 3, .kind = VCPU, .index = 1, .total = DISTVM_EPOCH_STATE_MAX,
        .offset = 0, .len = most, .data = state,
    });
    check_epoch_state(&limits, 0, &(DistvmMsgEpochState) {
        .epoch = 3, .kind = DEVICES, .index = 0,
        .total = DISTVM_EPOCH_STATE_MAX,
        .offset = DISTVM_EPOCH_STATE_MAX - most, .len = most, .data = state,
    });
    check_epoch_state(&limits, 0, &(DistvmMsgEpochState) {
        .epoch = 3, .kind = DEVICES, .index = 0,
        .total = DISTVM_EPOCH_STATE_MAX,
        .offset = DISTVM_EPOCH_STATE_MAX - 1, .len = 1, .data = state,
    });

    /* a sequence number is not looked at: passed through as it is */
    for (size_t i = 0; i < ARRAY_SIZE(flow_dones); i++) {
        distvm_wire_epoch_state(b, 1, &(DistvmMsgEpochState) {
            .epoch = 4, .kind = VCPU, .index = 2, .total = 50, .offset = 10,
            .len = 20, .data = state,
        });
        distvm_wire_set_seq(b, flow_dones[i]);
        decode_ok(b, &limits, &d);
        check_hdr(&d.msg.hdr, DISTVM_MSG_EPOCH_STATE, EPOCH_STATE_FIXED + 20,
                  1, flow_dones[i]);
        g_assert_cmpuint(d.msg.u.epoch_state.offset, ==, 10);
        g_assert_cmpuint(d.msg.u.epoch_state.len, ==, 20);
        decoded_free(&d);
    }

    /* distvm_wire_epoch_state empties the buffer first */
    distvm_wire_empty(b, DISTVM_MSG_READY, 1, 2);
    distvm_wire_epoch_state(b, 0, &(DistvmMsgEpochState) {
        .epoch = 1, .kind = DEVICES, .total = 3, .len = 3, .data = state,
    });
    g_assert_cmpuint(b->len, ==, HDR + EPOCH_STATE_FIXED + 3);
    g_assert_cmphex(ldq_le_p(b->data + OFF_SEQ), ==, 0);
    g_byte_array_unref(b);
}

/* EPOCH_STATE @st from @src must be refused for it under @lim, exactly */
static void expect_epoch_state_error(const DistvmWireLimits *lim,
                                     uint32_t src,
                                     const DistvmMsgEpochState *st)
{
    GByteArray *b = g_byte_array_new();
    g_autofree char *what = epoch_state_error(st->epoch, st->kind, st->index,
                                              st->offset,
                                              (uint64_t)st->offset + st->len,
                                              st->total);
    g_autofree char *got = NULL;

    distvm_wire_epoch_state(b, src, st);
    got = decode_error(b, lim);
    g_assert_cmpstr(got, ==, what);
    g_byte_array_unref(b);
}

/*
 * EPOCH_STATE of an unknown kind, of a vCPU that does not exist, of the
 * devices with an index, of the devices placed on a node that does not
 * exist, of a state too large, without bytes, with bytes
 * past the end of the state, or of epoch 0
 */
static void test_epoch_state_bad(void)
{
    enum {
        VCPU = DISTVM_EPOCH_STATE_VCPU,
        DEVICES = DISTVM_EPOCH_STATE_DEVICES,
    };
    static const uint32_t kinds[] = {
        DISTVM_EPOCH_STATE__MAX, DISTVM_EPOCH_STATE__MAX + 1, 0x100,
        0x80000000u, UINT32_MAX,
    };
    static const uint32_t cpus[] = { 8, 9, 0x80000000u, UINT32_MAX };
    static const uint32_t totals[] = {
        DISTVM_EPOCH_STATE_MAX + 1, DISTVM_EPOCH_STATE_MAX * 2,
        0x80000000u, UINT32_MAX,
    };
    static uint8_t state[4096];
    GByteArray *b = g_byte_array_new();
    g_autofree char *got = NULL;

    /* kinds that do not exist, of any index */
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
        expect_epoch_state_error(&limits, 1, &(DistvmMsgEpochState) {
            .epoch = 5, .kind = kinds[i], .index = 0, .total = 100,
            .offset = 0, .len = 100, .data = state,
        });
        expect_epoch_state_error(&limits_no_ram, 2, &(DistvmMsgEpochState) {
            .epoch = 5, .kind = kinds[i], .index = 7, .total = 100,
            .offset = 50, .len = 10, .data = state,
        });
    }

    /* a vCPU that does not exist */
    for (size_t i = 0; i < ARRAY_SIZE(cpus); i++) {
        expect_epoch_state_error(&limits, 1, &(DistvmMsgEpochState) {
            .epoch = 5, .kind = VCPU, .index = cpus[i], .total = 100,
            .offset = 0, .len = 100, .data = state,
        });
    }
    /* the limit is the machine's vCPUs */
    expect_epoch_state_error(&limits_one_vcpu, 1, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = VCPU, .index = 1, .total = 1, .offset = 0,
        .len = 1, .data = state,
    });
    expect_epoch_state_error(&limits_nodes_only, 1, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = VCPU, .index = 0, .total = 1, .offset = 0,
        .len = 1, .data = state,
    });

    /* the state of devices placed on a node that does not exist */
    for (size_t i = 0; i < ARRAY_SIZE(cpus); i++) {
        expect_epoch_state_error(&limits, 1, &(DistvmMsgEpochState) {
            .epoch = 5, .kind = DISTVM_EPOCH_STATE_PLACED,
            .index = cpus[i] - 4, .total = 100, .offset = 0, .len = 100,
            .data = state,
        });
        expect_epoch_state_error(&limits, 1, &(DistvmMsgEpochState) {
            .epoch = 5, .kind = DISTVM_EPOCH_STATE_PLACED_COPY,
            .index = cpus[i], .total = 100, .offset = 0, .len = 100,
            .data = state,
        });
    }

    /* the devices' state has index 0 */
    for (uint32_t index = 1; index < 10; index++) {
        expect_epoch_state_error(&limits, 0, &(DistvmMsgEpochState) {
            .epoch = 5, .kind = DEVICES, .index = index, .total = 100,
            .offset = 0, .len = 100, .data = state,
        });
    }
    expect_epoch_state_error(&limits, 0, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = DEVICES, .index = UINT32_MAX, .total = 100,
        .offset = 0, .len = 100, .data = state,
    });
    /* even if there are no vCPUs, or as many as there can be */
    expect_epoch_state_error(&limits_nodes_only, 0, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = DEVICES, .index = 1, .total = 1, .offset = 0,
        .len = 1, .data = state,
    });
    expect_epoch_state_error(&limits_most, 0, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = DEVICES, .index = 1, .total = 1, .offset = 0,
        .len = 1, .data = state,
    });

    /* a state larger than DISTVM_EPOCH_STATE_MAX, at its start or end */
    for (size_t i = 0; i < ARRAY_SIZE(totals); i++) {
        expect_epoch_state_error(&limits, 2, &(DistvmMsgEpochState) {
            .epoch = 5, .kind = VCPU, .index = 2, .total = totals[i],
            .offset = 0, .len = 16, .data = state,
        });
        expect_epoch_state_error(&limits, 0, &(DistvmMsgEpochState) {
            .epoch = 5, .kind = DEVICES, .index = 0, .total = totals[i],
            .offset = totals[i] - 16, .len = 16, .data = state,
        });
    }

    /* no bytes: at the start, in the middle, at the end, of nothing */
    expect_epoch_state_error(&limits, 2, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = VCPU, .index = 2, .total = 100, .offset = 0,
        .len = 0, .data = state,
    });
    expect_epoch_state_error(&limits, 2, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = VCPU, .index = 2, .total = 100, .offset = 50,
        .len = 0, .data = state,
    });
    expect_epoch_state_error(&limits, 2, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = VCPU, .index = 2, .total = 100, .offset = 100,
        .len = 0, .data = state,
    });
    expect_epoch_state_error(&limits, 0, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = DEVICES, .index = 0, .total = 0, .offset = 0,
        .len = 0, .data = state,
    });

    /* bytes past the end of the state */
    {
        static const struct {
            uint32_t total, offset, len;
        } past[] = {
            { 100, 0, 101 }, { 100, 50, 51 }, { 100, 99, 2 },
            { 100, 100, 1 }, { 100, 101, 1 }, { 100, 1000, 4096 },
            { 0, 0, 1 }, { 1, 1, 1 },
            { DISTVM_EPOCH_STATE_MAX, DISTVM_EPOCH_STATE_MAX, 1 },
            { DISTVM_EPOCH_STATE_MAX, DISTVM_EPOCH_STATE_MAX - 1, 2 },
            /* an offset + len that would wrap in 32 bits */
            { DISTVM_EPOCH_STATE_MAX, UINT32_MAX, 1 },
            { DISTVM_EPOCH_STATE_MAX, UINT32_MAX - 1, 4096 },
        };

        for (size_t i = 0; i < ARRAY_SIZE(past); i++) {
            expect_epoch_state_error(&limits, 3, &(DistvmMsgEpochState) {
                .epoch = 5, .kind = VCPU, .index = 6, .total = past[i].total,
                .offset = past[i].offset, .len = past[i].len, .data = state,
            });
        }
    }

    /* epoch 0, whatever else */
    expect_epoch_state_error(&limits, 1, &(DistvmMsgEpochState) {
        .epoch = 0, .kind = VCPU, .index = 1, .total = 100, .offset = 0,
        .len = 100, .data = state,
    });
    expect_epoch_state_error(&limits, 0, &(DistvmMsgEpochState) {
        .epoch = 0, .kind = DEVICES, .index = 0, .total = 1, .offset = 0,
        .len = 1, .data = state,
    });

    /* every cut of the fixed part is truncated, with RAM or without */
    distvm_wire_epoch_state(b, 1, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = VCPU, .index = 1, .total = 100, .offset = 0,
        .len = 100, .data = state,
    });
    for (uint32_t cut = 0; cut < EPOCH_STATE_FIXED; cut++) {
        GByteArray *c = buf_dup(b);

        g_byte_array_set_size(c, HDR + cut);
        set_u32(c, OFF_LENGTH, cut);
        expect_exact_error(c, "EPOCH_STATE message is truncated");
        g_byte_array_unref(c);
    }

    /* The sender is checked first */
    distvm_wire_epoch_state(b, 4, &(DistvmMsgEpochState) {
        .epoch = 0, .kind = UINT32_MAX, .total = UINT32_MAX,
        .offset = UINT32_MAX, .len = 0, .data = state,
    });
    expect_decode_error(b, &limits, "EPOCH_STATE message names node 4 in "
                        "its sender; the cluster has 4");

    /*
     * EPOCH retyped: the devices' state (kind 1, index 0: step 2 and node
     * 1) of epoch 1 << 32 | 2, with its bytes for the total and the
     * offset, and its vCPUs and reserved field as 8 bytes of state;
     * within 4096 bytes, not within 4
     */
    {
        Decoded d;

        distvm_wire_epoch(b, 1, &(DistvmMsgEpoch) {
            .step = DISTVM_EPOCH_SENT, .node = 1, .epoch = 1, .bytes = 4096,
            .vcpus = 3,
        });
        set_u16(b, OFF_TYPE, DISTVM_MSG_EPOCH_STATE);
        decode_ok(b, &limits, &d);
        g_assert_cmpuint(d.msg.u.epoch_state.epoch, ==, 0x100000002ull);
        g_assert_cmpuint(d.msg.u.epoch_state.kind, ==, DEVICES);
        g_assert_cmpuint(d.msg.u.epoch_state.index, ==, 0);
        g_assert_cmpuint(d.msg.u.epoch_state.total, ==, 4096);
        g_assert_cmpuint(d.msg.u.epoch_state.offset, ==, 0);
        g_assert_cmpuint(d.msg.u.epoch_state.len, ==, 8);
        g_assert_cmpuint(ldl_le_p(d.msg.u.epoch_state.data), ==, 3);
        g_assert_cmpuint(ldl_le_p(d.msg.u.epoch_state.data + 4), ==, 0);
        decoded_free(&d);
    }
    distvm_wire_epoch(b, 1, &(DistvmMsgEpoch) {
        .step = DISTVM_EPOCH_SENT, .node = 1, .epoch = 1, .bytes = 4,
        .vcpus = 3,
    });
    set_u16(b, OFF_TYPE, DISTVM_MSG_EPOCH_STATE);
    got = decode_error(b, &limits);
    g_assert_cmpstr(got, ==, "EPOCH_STATE message of epoch 4294967298, "
                    "kind 1 and index 0 with bytes 0 to 8 of 4");

    /*
     * and the other way: 7 bytes of state are one short of an EPOCH, 9
     * (all zero: no vCPUs, and a reserved field of 0) one too many
     */
    distvm_wire_epoch_state(b, 1, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = VCPU, .index = 1, .total = 7, .offset = 0,
        .len = 7, .data = state,
    });
    expect_retyped_error(b, DISTVM_MSG_EPOCH, "EPOCH message is truncated");
    distvm_wire_epoch_state(b, 1, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = VCPU, .index = 1, .total = 9, .offset = 0,
        .len = 9, .data = state,
    });
    expect_retyped_error(b, DISTVM_MSG_EPOCH, "EPOCH message has 1 bytes of "
                         "trailing garbage");
    g_byte_array_unref(b);
}

/*
 * EPOCH_STATE of a rollback (wire version 22): the committed copy of a
 * vCPU's state (VCPU_COPY, of a vCPU of the machine) or of the devices'
 * (DEVICES_COPY, index 0), sent to a node that rolls back; whole or in
 * chunks, as the states of an epoch are
 */
static void test_epoch_state_copies(void)
{
    enum {
        VCPU_COPY = DISTVM_EPOCH_STATE_VCPU_COPY,
        DEVICES_COPY = DISTVM_EPOCH_STATE_DEVICES_COPY,
    };
    const uint32_t most = DISTVM_WIRE_MAX_PAYLOAD - EPOCH_STATE_FIXED;
    g_autofree uint8_t *state = g_malloc(DISTVM_WIRE_MAX_PAYLOAD);
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (size_t i = 0; i < DISTVM_WIRE_MAX_PAYLOAD; i++) {
        state[i] = i * 29 + i / 241;
    }

    /* their numbers on the wire, after an epoch's own; no more */
    g_assert_cmpuint(DISTVM_EPOCH_STATE_VCPU, ==, 0);
    g_assert_cmpuint(DISTVM_EPOCH_STATE_DEVICES, ==, 1);
    g_assert_cmpuint(VCPU_COPY, ==, 2);
    g_assert_cmpuint(DEVICES_COPY, ==, 3);
    g_assert_cmpuint(DISTVM_EPOCH_STATE_PLACED, ==, 4);
    g_assert_cmpuint(DISTVM_EPOCH_STATE_PLACED_COPY, ==, 5);
    g_assert_cmpuint(DISTVM_EPOCH_STATE__MAX, ==, 6);

    /* each vCPU of the machine's copy, whole, from any node */
    for (uint32_t cpu = 0; cpu < limits.nr_vcpus; cpu++) {
        for (uint32_t src = 0; src < limits.nodes; src++) {
            check_epoch_state(&limits, src, &(DistvmMsgEpochState) {
                .epoch = cpu + 1, .kind = VCPU_COPY, .index = cpu,
                .total = 600, .offset = 0, .len = 600, .data = state + cpu,
            });
        }
    }
    /* in chunks: the first, one in the middle, the last; one byte */
    check_epoch_state(&limits, 2, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = VCPU_COPY, .index = 3, .total = 10000,
        .offset = 0, .len = 4096, .data = state,
    });
    check_epoch_state(&limits, 2, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = VCPU_COPY, .index = 3, .total = 10000,
        .offset = 4096, .len = 1000, .data = state + 4096,
    });
    check_epoch_state(&limits, 2, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = VCPU_COPY, .index = 3, .total = 10000,
        .offset = 8192, .len = 1808, .data = state + 8192,
    });
    check_epoch_state(&limits, 1, &(DistvmMsgEpochState) {
        .epoch = 1, .kind = VCPU_COPY, .index = 7, .total = 1, .offset = 0,
        .len = 1, .data = state,
    });
    /* the only vCPU; the last of the most; no RAM layout needed */
    check_epoch_state(&limits_one_vcpu, 1, &(DistvmMsgEpochState) {
        .epoch = 2, .kind = VCPU_COPY, .index = 0, .total = 64,
        .offset = 32, .len = 32, .data = state,
    });
    check_epoch_state(&limits_most, DISTVM_WIRE_MAX_NODES - 1,
                      &(DistvmMsgEpochState) {
        .epoch = UINT64_MAX, .kind = VCPU_COPY, .index = UINT32_MAX - 1,
        .total = 64, .offset = 0, .len = 64, .data = state,
    });
    check_epoch_state(&limits_no_ram, 3, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = VCPU_COPY, .index = 7, .total = 300,
        .offset = 100, .len = 200, .data = state,
    });

    /*
     * the devices' copy, index 0, to home from any other node (the
     * decoder does not know who may send it: distvm-epoch.c does); no
     * vCPU or RAM layout needed
     */
    for (uint32_t src = 1; src < limits.nodes; src++) {
        check_epoch_state(&limits, src, &(DistvmMsgEpochState) {
            .epoch = 5, .kind = DEVICES_COPY, .index = 0, .total = 300000,
            .offset = 0, .len = 300000, .data = state,
        });
    }
    check_epoch_state(&limits_no_ram, 1, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = DEVICES_COPY, .index = 0, .total = 300000,
        .offset = 200000, .len = 100000, .data = state + 200000,
    });
    check_epoch_state(&limits_nodes_only, 1, &(DistvmMsgEpochState) {
        .epoch = UINT64_MAX, .kind = DEVICES_COPY, .index = 0, .total = 1,
        .offset = 0, .len = 1, .data = state,
    });
    check_epoch_state(&limits, 0, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = DEVICES_COPY, .index = 0, .total = 2,
        .offset = 1, .len = 1, .data = state,
    });

    /* the largest state: chunks as large as a payload, first and last */
    check_epoch_state(&limits, 2, &(DistvmMsgEpochState) {
        .epoch = 3, .kind = VCPU_COPY, .index = 1,
        .total = DISTVM_EPOCH_STATE_MAX, .offset = 0, .len = most,
        .data = state,
    });
    check_epoch_state(&limits, 1, &(DistvmMsgEpochState) {
        .epoch = 3, .kind = DEVICES_COPY, .index = 0,
        .total = DISTVM_EPOCH_STATE_MAX,
        .offset = DISTVM_EPOCH_STATE_MAX - most, .len = most, .data = state,
    });

    /* the layout by hand: kinds 2 and 3 */
    for (uint32_t kind = 2; kind <= 3; kind++) {
        distvm_wire_begin(b, DISTVM_MSG_EPOCH_STATE, 2, 0);
        distvm_wire_put_u64(b, 7);                  /* epoch */
        distvm_wire_put_u32(b, kind);
        distvm_wire_put_u32(b, 0);                  /* index */
        distvm_wire_put_u32(b, 10);                 /* total */
        distvm_wire_put_u32(b, 4);                  /* offset */
        distvm_wire_put_bytes(b, state, 6);
        distvm_wire_end(b);
        decode_ok(b, &limits, &d);
        check_hdr(&d.msg.hdr, DISTVM_MSG_EPOCH_STATE, EPOCH_STATE_FIXED + 6,
                  2, 0);
        g_assert_cmpuint(d.msg.u.epoch_state.kind, ==,
                         kind == 2 ? VCPU_COPY : DEVICES_COPY);
        g_assert_cmpuint(d.msg.u.epoch_state.index, ==, 0);
        g_assert_cmpuint(d.msg.u.epoch_state.total, ==, 10);
        g_assert_cmpuint(d.msg.u.epoch_state.offset, ==, 4);
        g_assert_cmpuint(d.msg.u.epoch_state.len, ==, 6);
        g_assert(d.msg.u.epoch_state.data == d.payload + EPOCH_STATE_FIXED);
        decoded_free(&d);
    }
    g_byte_array_unref(b);
}

/*
 * EPOCH_STATE of the devices placed on a node (PLACED, wire version 30),
 * and its committed copy (PLACED_COPY), indexed by that node: each node
 * of the cluster, whole or in chunks, from any node (distvm-epoch.c
 * checks who may send it)
 */
static void test_epoch_state_placed(void)
{
    static const uint32_t kinds[] = {
        DISTVM_EPOCH_STATE_PLACED, DISTVM_EPOCH_STATE_PLACED_COPY,
    };
    static uint8_t state[4096];

    for (size_t i = 0; i < sizeof(state); i++) {
        state[i] = i * 31 + 7;
    }
    for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
        for (uint32_t node = 0; node < limits.nodes; node++) {
            check_epoch_state(&limits, (node + 1) % limits.nodes,
                              &(DistvmMsgEpochState) {
                .epoch = node + 1, .kind = kinds[k], .index = node,
                .total = 300, .offset = 0, .len = 300, .data = state,
            });
            check_epoch_state(&limits, node, &(DistvmMsgEpochState) {
                .epoch = 9, .kind = kinds[k], .index = node,
                .total = 4096, .offset = 1000, .len = 3096,
                .data = state + 1000,
            });
        }
        /* the last node there can be; no vCPU or RAM layout needed */
        check_epoch_state(&limits_most, 0, &(DistvmMsgEpochState) {
            .epoch = UINT64_MAX, .kind = kinds[k],
            .index = DISTVM_WIRE_MAX_NODES - 1, .total = 1, .offset = 0,
            .len = 1, .data = state,
        });
        check_epoch_state(&limits_nodes_only, 1, &(DistvmMsgEpochState) {
            .epoch = 3, .kind = kinds[k], .index = 0, .total = 64,
            .offset = 0, .len = 64, .data = state,
        });
    }
}

/*
 * EPOCH_STATE copies refused as the states of an epoch are: a vCPU's of
 * a vCPU the machine does not have, the devices' with an index, of epoch
 * 0, of a state too large, without bytes, or with bytes past its end;
 * kind 6, after them and the placed devices' (wire version 30), is
 * unknown
 */
static void test_epoch_state_copies_bad(void)
{
    enum {
        VCPU_COPY = DISTVM_EPOCH_STATE_VCPU_COPY,
        DEVICES_COPY = DISTVM_EPOCH_STATE_DEVICES_COPY,
    };
    static const uint32_t cpus[] = { 8, 9, 0x100, 0x80000000u, UINT32_MAX };
    static const uint32_t copies[] = { VCPU_COPY, DEVICES_COPY };
    static uint8_t state[4096];
    GByteArray *b = g_byte_array_new();
    g_autofree char *got = NULL;

    /* a vCPU that does not exist */
    for (size_t i = 0; i < ARRAY_SIZE(cpus); i++) {
        expect_epoch_state_error(&limits, 1, &(DistvmMsgEpochState) {
            .epoch = 5, .kind = VCPU_COPY, .index = cpus[i], .total = 100,
            .offset = 0, .len = 100, .data = state,
        });
        expect_epoch_state_error(&limits_no_ram, 2, &(DistvmMsgEpochState) {
            .epoch = 5, .kind = VCPU_COPY, .index = cpus[i], .total = 100,
            .offset = 50, .len = 10, .data = state,
        });
    }
    /* the limit is the machine's vCPUs */
    expect_epoch_state_error(&limits_one_vcpu, 1, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = VCPU_COPY, .index = 1, .total = 1, .offset = 0,
        .len = 1, .data = state,
    });
    expect_epoch_state_error(&limits_nodes_only, 1, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = VCPU_COPY, .index = 0, .total = 1, .offset = 0,
        .len = 1, .data = state,
    });
    expect_epoch_state_error(&limits_most, 1, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = VCPU_COPY, .index = UINT32_MAX, .total = 1,
        .offset = 0, .len = 1, .data = state,
    });

    /* the devices' copy has index 0, whatever the vCPUs */
    for (uint32_t index = 1; index < 10; index++) {
        expect_epoch_state_error(&limits, 1, &(DistvmMsgEpochState) {
            .epoch = 5, .kind = DEVICES_COPY, .index = index, .total = 100,
            .offset = 0, .len = 100, .data = state,
        });
    }
    expect_epoch_state_error(&limits, 1, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = DEVICES_COPY, .index = UINT32_MAX, .total = 100,
        .offset = 0, .len = 100, .data = state,
    });
    expect_epoch_state_error(&limits_nodes_only, 1, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = DEVICES_COPY, .index = 1, .total = 1,
        .offset = 0, .len = 1, .data = state,
    });
    expect_epoch_state_error(&limits_most, 1, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = DEVICES_COPY, .index = 1, .total = 1,
        .offset = 0, .len = 1, .data = state,
    });

    /* the rest is checked as for any state */
    for (size_t i = 0; i < ARRAY_SIZE(copies); i++) {
        static const struct {
            uint32_t total, offset, len;
        } bad[] = {
            /* too large a state; no bytes; bytes past its end */
            { DISTVM_EPOCH_STATE_MAX + 1, 0, 16 },
            { UINT32_MAX, UINT32_MAX - 16, 16 },
            { 100, 0, 0 }, { 100, 100, 0 }, { 0, 0, 0 },
            { 100, 0, 101 }, { 100, 99, 2 }, { 100, 101, 1 }, { 0, 0, 1 },
            { DISTVM_EPOCH_STATE_MAX, UINT32_MAX, 1 },
        };

        for (size_t j = 0; j < ARRAY_SIZE(bad); j++) {
            expect_epoch_state_error(&limits, 2, &(DistvmMsgEpochState) {
                .epoch = 5, .kind = copies[i], .index = 0,
                .total = bad[j].total, .offset = bad[j].offset,
                .len = bad[j].len, .data = state,
            });
        }
        expect_epoch_state_error(&limits, 2, &(DistvmMsgEpochState) {
            .epoch = 0, .kind = copies[i], .index = 0, .total = 100,
            .offset = 0, .len = 100, .data = state,
        });
    }

    /* the kind after PLACED_COPY, of any index */
    for (uint32_t index = 0; index < 2; index++) {
        expect_epoch_state_error(&limits, 1, &(DistvmMsgEpochState) {
            .epoch = 5, .kind = 6, .index = index, .total = 100,
            .offset = 0, .len = 100, .data = state,
        });
    }
    distvm_wire_epoch_state(b, 1, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = 6, .index = 0, .total = 100, .offset = 0,
        .len = 100, .data = state,
    });
    got = decode_error(b, &limits);
    g_assert_cmpstr(got, ==, "EPOCH_STATE message of epoch 5, kind 6 and "
                    "index 0 with bytes 0 to 100 of 100");

    /* every cut of the fixed part is truncated, with RAM or without */
    distvm_wire_epoch_state(b, 1, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = DEVICES_COPY, .index = 0, .total = 100,
        .offset = 0, .len = 100, .data = state,
    });
    for (uint32_t cut = 0; cut < EPOCH_STATE_FIXED; cut++) {
        GByteArray *c = buf_dup(b);

        g_byte_array_set_size(c, HDR + cut);
        set_u32(c, OFF_LENGTH, cut);
        expect_exact_error(c, "EPOCH_STATE message is truncated");
        g_byte_array_unref(c);
    }

    /* The sender is checked first */
    distvm_wire_epoch_state(b, 4, &(DistvmMsgEpochState) {
        .epoch = 5, .kind = VCPU_COPY, .index = 8, .total = 1,
        .offset = 0, .len = 1, .data = state,
    });
    expect_decode_error(b, &limits, "EPOCH_STATE message names node 4 in "
                        "its sender; the cluster has 4");
    g_byte_array_unref(b);
}

/* @clock sent from node 1 must be refused with exactly @what */
static void expect_clock_regs_error(const DistvmMsgClockRegs *clock,
                                    const char *what)
{
    GByteArray *b = g_byte_array_new();

    distvm_wire_clock_regs(b, 1, clock);
    expect_decode_error(b, &limits, what);
    expect_decode_error(b, &limits_no_ram, what);
    g_byte_array_unref(b);
}

/*
 * Known flags only; a running HPET only at an address; a PM timer port
 * that a 4-byte register fits after, only with its flag; a 4 KiB aligned
 * HPET address, only with its flag.  In that order.
 */
static void test_clock_regs_bad(void)
{
    enum {
        HPET = DISTVM_CLOCK_HPET,
        RUNS = DISTVM_CLOCK_HPET_ENABLED,
        PM = DISTVM_CLOCK_PM_TIMER,
    };
    static const struct {
        DistvmMsgClockRegs clock;
        const char *what;
    } bad[] = {
        /* an unknown flag bit, whatever else */
        { { .flags = 0x08 },
          "CLOCK_REGS message with unknown flags 0x8" },
        { { .flags = DISTVM_CLOCK_FLAGS_ALL | 0x08, .pm_timer_port = 0x608,
            .hpet_base = HPET_BASE },
          "CLOCK_REGS message with unknown flags 0xf" },
        { { .flags = 0x80000000u | PM, .pm_timer_port = 0x608 },
          "CLOCK_REGS message with unknown flags 0x80000004" },
        { { .flags = UINT32_MAX, .pm_timer_port = UINT32_MAX,
            .hpet_base = 1 },
          "CLOCK_REGS message with unknown flags 0xffffffff" },
        { { .flags = RUNS | 0x10, .pm_timer_port = 0x608 },
          "CLOCK_REGS message with unknown flags 0x12" },
        /* a running HPET without one, whatever else */
        { { .flags = RUNS },
          "CLOCK_REGS message with a running HPET at no address" },
        { { .flags = RUNS | PM, .pm_timer_port = 0x608,
            .hpet_offset = 5 },
          "CLOCK_REGS message with a running HPET at no address" },
        { { .flags = RUNS, .pm_timer_port = 0xffff,
            .hpet_base = HPET_BASE + 1 },
          "CLOCK_REGS message with a running HPET at no address" },
        /* a PM timer port a 4-byte register does not fit after */
        { { .flags = PM, .pm_timer_port = 0xfffd },
          "CLOCK_REGS message with PM timer port 0xfffd" },
        { { .flags = PM, .pm_timer_port = 0xffff },
          "CLOCK_REGS message with PM timer port 0xffff" },
        { { .flags = PM | HPET, .pm_timer_port = 0x10000,
            .hpet_base = HPET_BASE },
          "CLOCK_REGS message with PM timer port 0x10000" },
        { { .flags = PM, .pm_timer_port = UINT32_MAX },
          "CLOCK_REGS message with PM timer port 0xffffffff" },
        /* a port without the flag, whatever else; before the address */
        { { .flags = 0, .pm_timer_port = 0x608 },
          "CLOCK_REGS message with PM timer port 0x608" },
        { { .flags = HPET | RUNS, .pm_timer_port = 0xb008,
            .hpet_base = HPET_BASE },
          "CLOCK_REGS message with PM timer port 0xb008" },
        { { .flags = 0, .pm_timer_port = 1, .hpet_base = 1 },
          "CLOCK_REGS message with PM timer port 0x1" },
        /* an HPET address that is not 4 KiB aligned */
        { { .flags = HPET, .hpet_base = HPET_BASE + 1 },
          "CLOCK_REGS message with HPET address 0xfed00001" },
        { { .flags = HPET | RUNS | PM, .pm_timer_port = 0x608,
            .hpet_base = HPET_BASE + 0x800 },
          "CLOCK_REGS message with HPET address 0xfed00800" },
        { { .flags = HPET, .hpet_base = 0xfff },
          "CLOCK_REGS message with HPET address 0xfff" },
        { { .flags = HPET, .hpet_base = UINT64_MAX },
          "CLOCK_REGS message with HPET address 0xffffffffffffffff" },
        /* an address without the flag, whatever else */
        { { .flags = 0, .hpet_base = HPET_BASE },
          "CLOCK_REGS message with HPET address 0xfed00000" },
        { { .flags = PM, .pm_timer_port = 0x608, .hpet_base = 0x1000,
            .hpet_counter = 7 },
          "CLOCK_REGS message with HPET address 0x1000" },
        { { .flags = 0, .hpet_base = HPET_BASE + 4 },
          "CLOCK_REGS message with HPET address 0xfed00004" },
    };
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        expect_clock_regs_error(&bad[i].clock, bad[i].what);
    }

    /* every unknown flag bit, alone and with the known ones */
    for (int bit = 3; bit < 32; bit++) {
        g_autofree char *what = g_strdup_printf(
            "CLOCK_REGS message with unknown flags 0x%" PRIx32, 1u << bit);

        expect_clock_regs_error(&(DistvmMsgClockRegs) {
            .flags = 1u << bit,
        }, what);
        expect_clock_regs_error(&(DistvmMsgClockRegs) {
            .flags = 1u << bit | DISTVM_CLOCK_FLAGS_ALL,
            .pm_timer_port = 0x608, .hpet_base = HPET_BASE,
        }, "unknown flags");
    }

    /* every port bit: above 0xffff, or without the flag */
    for (int bit = 0; bit < 32; bit++) {
        uint32_t port = 1u << bit;
        g_autofree char *what = g_strdup_printf(
            "CLOCK_REGS message with PM timer port 0x%" PRIx32, port);

        if (bit >= 16) {
            expect_clock_regs_error(&(DistvmMsgClockRegs) {
                .flags = PM, .pm_timer_port = port,
            }, what);
        }
        expect_clock_regs_error(&(DistvmMsgClockRegs) {
            .flags = HPET, .pm_timer_port = port, .hpet_base = HPET_BASE,
        }, what);
    }

    /* every address bit: below 4 KiB, or without the flag */
    for (int bit = 0; bit < 64; bit++) {
        uint64_t base = 1ull << bit;
        g_autofree char *what = g_strdup_printf(
            "CLOCK_REGS message with HPET address 0x%" PRIx64, base);

        if (bit < 12) {
            g_autofree char *unaligned = g_strdup_printf(
                "CLOCK_REGS message with HPET address 0x%" PRIx64,
                HPET_BASE | base);

            expect_clock_regs_error(&(DistvmMsgClockRegs) {
                .flags = HPET | RUNS, .hpet_base = HPET_BASE | base,
            }, unaligned);
        }
        expect_clock_regs_error(&(DistvmMsgClockRegs) {
            .flags = PM, .pm_timer_port = 0x608, .hpet_base = base,
        }, what);
    }

    /* The sender is checked first */
    distvm_wire_clock_regs(b, 4, &(DistvmMsgClockRegs) { .flags = 0x08 });
    expect_decode_error(b, &limits, "in its sender");
    g_byte_array_unref(b);
}

/* A CLOCK_REGS payload is exactly its five fields */
static void test_clock_regs_bad_length(void)
{
    GByteArray *full = g_byte_array_new();
    GByteArray *b = g_byte_array_new();

    distvm_wire_clock_regs(full, 0, &clock_regs_all);
    g_assert_cmpuint(full->len, ==, HDR + CLOCK_FIXED);

    /* every proper prefix: the checks come after the whole is read */
    for (uint32_t len = 0; len < CLOCK_FIXED; len++) {
        g_byte_array_set_size(b, 0);
        g_byte_array_append(b, full->data, HDR + len);
        set_u32(b, OFF_LENGTH, len);
        expect_decode_error(b, &limits, "CLOCK_REGS message is truncated");
        if (len >= 4) {
            /* even with an unknown flag in the bytes that came */
            set_u32(b, HDR, 0x08);
            expect_decode_error(b, &limits_no_ram,
                                "CLOCK_REGS message is truncated");
        }
    }

    /* any byte more, even zero */
    for (uint32_t extra = 1; extra <= 16; extra++) {
        g_autofree char *what = g_strdup_printf(
            "CLOCK_REGS message has %" PRIu32 " bytes of trailing garbage",
            extra);

        g_byte_array_set_size(b, 0);
        g_byte_array_append(b, full->data, full->len);
        g_byte_array_set_size(b, full->len + extra);
        memset(b->data + full->len, 0, extra);
        set_u32(b, OFF_LENGTH, CLOCK_FIXED + extra);
        expect_decode_error(b, &limits, what);
    }

    /* other messages retyped: too short, and a RUN_STATE's 16 bytes more */
    distvm_wire_pic_output(b, 0, 1);
    set_u16(b, OFF_TYPE, DISTVM_MSG_CLOCK_REGS);
    expect_decode_error(b, &limits, "CLOCK_REGS message is truncated");
    distvm_wire_run_state(b, 0, &(DistvmMsgRunState) {
        .action = DISTVM_RUN_CONT,
    });
    set_u16(b, OFF_TYPE, DISTVM_MSG_CLOCK_REGS);
    expect_decode_error(b, &limits, "CLOCK_REGS message has 16 bytes of "
                        "trailing garbage");

    /* and the other way */
    distvm_wire_clock_regs(b, 0, &clock_regs_all);
    set_u16(b, OFF_TYPE, DISTVM_MSG_RUN_STATE);
    expect_decode_error(b, &limits, "RUN_STATE message is truncated");
    distvm_wire_clock_regs(b, 0, &clock_regs_none);
    set_u16(b, OFF_TYPE, DISTVM_MSG_PIC_OUTPUT);
    expect_decode_error(b, &limits, "PIC_OUTPUT message has 28 bytes of "
                        "trailing garbage");

    g_byte_array_unref(b);
    g_byte_array_unref(full);
}

static void test_hello_bad_node_id(void)
{
    static const uint32_t ids[] = { 0, 1, 3, 4, UINT32_MAX - 1 };
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
        distvm_wire_begin(b, DISTVM_MSG_HELLO, 2, 0);
        distvm_wire_put_u32(b, ids[i]);
        distvm_wire_put_u32(b, 4);
        distvm_wire_put_str(b, "tcp:x:1");
        distvm_wire_put_u32(b, DISTVM_WIRE_SPEED_ONE);
        distvm_wire_put_u32(b, 0);
        distvm_wire_end(b);
        expect_decode_error(b, &limits, "claims node id");
    }
    g_byte_array_unref(b);
}

static void test_hello_bad_nodes(void)
{
    static const uint32_t nodes[] = {
        0, DISTVM_WIRE_MAX_NODES + 1, 1000, UINT32_MAX,
    };
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
        distvm_wire_hello(b, 1, 1, nodes[i], "tcp:x:1",
                          DISTVM_WIRE_SPEED_ONE, 0, NULL, NULL);
        expect_decode_error(b, &limits, "cluster of");
    }
    g_byte_array_unref(b);
}

/* A node speed of 0 or above the maximum, in HELLO and in WELCOME */
static void test_bad_speed(void)
{
    static const uint32_t bad[] = {
        0, DISTVM_WIRE_SPEED_MAX + 1, UINT32_MAX,
    };
    char *addrs[] = { (char *)"tcp:h:1", (char *)"tcp:h:2" };
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        uint32_t speeds[] = { DISTVM_WIRE_SPEED_ONE, bad[i] };

        distvm_wire_hello(b, 1, 1, 2, "tcp:x:1", bad[i], 0, NULL, NULL);
        expect_decode_error(b, &limits, "node speed");
        distvm_wire_welcome(b, 2, 1, addrs, speeds);
        expect_decode_error(b, &limits, "node speed");
    }
    /* A node without an address is not in the cluster: no speed */
    {
        char *absent[] = { (char *)"tcp:h:1", (char *)"",
                           (char *)"tcp:h:3" };
        uint32_t speeds[] = { DISTVM_WIRE_SPEED_ONE, DISTVM_WIRE_SPEED_ONE,
                              DISTVM_WIRE_SPEED_ONE };

        distvm_wire_welcome(b, 3, 2, absent, speeds);
        expect_decode_error(b, &limits, "which has no address");
        /* The node welcomed has its address: it is joining */
        speeds[1] = 0;
        distvm_wire_welcome(b, 3, 1, absent, speeds);
        expect_decode_error(b, &limits, "WELCOME without the address of "
                            "node 1, the node welcomed");
    }
    g_byte_array_unref(b);
}

/* NODE_DRAIN, DRAIN_PAGES, DRAINED, NODE_LEFT: a node other than home */
static void test_node_drain(void)
{
    static const DistvmMsgType types[] = {
        DISTVM_MSG_NODE_DRAIN, DISTVM_MSG_DRAIN_PAGES, DISTVM_MSG_DRAINED,
        DISTVM_MSG_NODE_LEFT,
    };
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
        for (uint32_t n = 1; n < limits.nodes; n++) {
            distvm_wire_node(b, types[i], 1, n);
            g_assert_cmpuint(b->len, ==, HDR + 4);
            decode_ok(b, &limits_no_ram, &d);
            check_hdr(&d.msg.hdr, types[i], 4, 1, 0);
            g_assert_cmpuint(d.msg.u.node_id, ==, n);
            decoded_free(&d);
        }
        distvm_wire_node(b, types[i], 0, 0);
        expect_decode_error(b, &limits, "for the home node");
        distvm_wire_node(b, types[i], 0, limits.nodes);
        expect_decode_error(b, &limits, "the drained node");
        distvm_wire_empty(b, types[i], 0, 0);
        expect_decode_error(b, &limits, "is truncated");
    }
    g_byte_array_unref(b);
}

/* Once a standby took home's place, the drained node may be node 0 */
static void test_node_drain_moved_home(void)
{
    DistvmWireLimits moved = limits_no_ram;
    GByteArray *b = g_byte_array_new();
    Decoded d;

    moved.home = 2;
    distvm_wire_node(b, DISTVM_MSG_NODE_DRAIN, 2, 0);
    decode_ok(b, &moved, &d);
    g_assert_cmpuint(d.msg.u.node_id, ==, 0);
    decoded_free(&d);
    distvm_wire_node(b, DISTVM_MSG_NODE_DRAIN, 2, 2);
    expect_decode_error(b, &moved, "for the home node");
    distvm_wire_node_join(b, DISTVM_MSG_NODE_JOINING, 2, 2,
                          DISTVM_WIRE_SPEED_ONE);
    expect_decode_error(b, &moved, "for the home node");
    g_byte_array_unref(b);
}

/* NODE_JOINING and NODE_JOINED: a node other than home, and its speed */
static void test_node_join(void)
{
    static const DistvmMsgType types[] = {
        DISTVM_MSG_NODE_JOINING, DISTVM_MSG_NODE_JOINED,
    };
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
        for (uint32_t n = 1; n < limits.nodes; n++) {
            distvm_wire_node_join(b, types[i], 0, n, 250 * n);
            g_assert_cmpuint(b->len, ==, HDR + 8);
            decode_ok(b, &limits_no_ram, &d);
            check_hdr(&d.msg.hdr, types[i], 8, 0, 0);
            g_assert_cmpuint(d.msg.u.join.node_id, ==, n);
            g_assert_cmpuint(d.msg.u.join.speed, ==, 250 * n);
            decoded_free(&d);
        }
        distvm_wire_node_join(b, types[i], 0, 0, DISTVM_WIRE_SPEED_ONE);
        expect_decode_error(b, &limits, "for the home node");
        distvm_wire_node_join(b, types[i], 0, limits.nodes,
                              DISTVM_WIRE_SPEED_ONE);
        expect_decode_error(b, &limits, "the joining node");
        distvm_wire_node_join(b, types[i], 0, 1, 0);
        expect_decode_error(b, &limits, "node speed");
        distvm_wire_node_join(b, types[i], 0, 1, DISTVM_WIRE_SPEED_MAX + 1);
        expect_decode_error(b, &limits, "node speed");
        distvm_wire_node(b, types[i], 0, 1);
        expect_decode_error(b, &limits, "is truncated");
    }
    g_byte_array_unref(b);
}

static void test_peer_hello_bad(void)
{
    GByteArray *b = g_byte_array_new();

    distvm_wire_node(b, DISTVM_MSG_PEER_HELLO, 1, 2);
    expect_decode_error(b, &limits, "claims node id");
    distvm_wire_node(b, DISTVM_MSG_PEER_HELLO, 1, 4);
    expect_decode_error(b, &limits, "in its node id");
    distvm_wire_node(b, DISTVM_MSG_PEER_HELLO, 0, UINT32_MAX);
    expect_decode_error(b, &limits, "in its node id");
    g_byte_array_unref(b);
}

static void test_node_lost_bad(void)
{
    static const uint32_t nodes[] = {
        4, 5, DISTVM_WIRE_MAX_NODES, 0x80000000u, UINT32_MAX,
    };
    static const DistvmWireLimits limits_two = {
        .nodes = 2,
        .nr_vcpus = 8,
        .nr_blocks = ARRAY_SIZE(block_pages),
        .block_pages = block_pages,
    };
    GByteArray *b = g_byte_array_new();
    Decoded d;

    for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
        g_autofree char *what = g_strdup_printf(
            "NODE_LOST message names node %" PRIu32 " in the lost node; "
            "the cluster has 4", nodes[i]);

        distvm_wire_node(b, DISTVM_MSG_NODE_LOST, 1, nodes[i]);
        expect_decode_error(b, &limits, what);
        expect_decode_error(b, &limits_no_ram, what);
    }

    /* The limit is the cluster's size, not DISTVM_WIRE_MAX_NODES */
    distvm_wire_node(b, DISTVM_MSG_NODE_LOST, 0, 1);
    decode_ok(b, &limits_two, &d);
    g_assert_cmpuint(d.msg.u.node_id, ==, 1);
    decoded_free(&d);
    distvm_wire_node(b, DISTVM_MSG_NODE_LOST, 0, 2);
    expect_decode_error(b, &limits_two, "NODE_LOST message names node 2 in "
                        "the lost node; the cluster has 2");
    distvm_wire_node(b, DISTVM_MSG_NODE_LOST, 1, 3);
    expect_decode_error(b, &limits_two, "in the lost node");

    /* The sender is checked first */
    distvm_wire_node(b, DISTVM_MSG_NODE_LOST, 4, 9);
    expect_decode_error(b, &limits, "in its sender");
    g_byte_array_unref(b);
}

static void test_welcome_bad_nodes(void)
{
    static const uint32_t nodes[] = {
        0, DISTVM_WIRE_MAX_NODES + 1, UINT32_MAX,
    };
    GByteArray *b = g_byte_array_new();

    static const uint32_t ids[] = { 0, 3, 4, UINT32_MAX };
    char *addrs[] = { (char *)"tcp:h:1", (char *)"tcp:h:2",
                      (char *)"tcp:h:3" };
    uint32_t speeds[] = { 1, 1, 1 };

    for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
        distvm_wire_begin(b, DISTVM_MSG_WELCOME, 0, 0);
        distvm_wire_put_u32(b, nodes[i]);
        distvm_wire_put_u32(b, 1);
        for (int j = 0; j < 20; j++) {
            distvm_wire_put_str(b, "tcp:h:1");
            distvm_wire_put_u32(b, DISTVM_WIRE_SPEED_ONE);
        }
        distvm_wire_end(b);
        expect_decode_error(b, &limits, "cluster of");
    }

    /* The node welcomed: not home, and one of the cluster */
    for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
        g_autofree char *what = g_strdup_printf(
            "WELCOME of node %" PRIu32 " in a cluster of 3 nodes", ids[i]);

        distvm_wire_welcome(b, 3, ids[i], addrs, speeds);
        expect_decode_error(b, &limits, what);
    }

    /* fewer nodes than it says */
    distvm_wire_begin(b, DISTVM_MSG_WELCOME, 0, 0);
    distvm_wire_put_u32(b, 3);
    distvm_wire_put_u32(b, 1);
    distvm_wire_put_str(b, "tcp:h:1");
    distvm_wire_put_u32(b, DISTVM_WIRE_SPEED_ONE);
    distvm_wire_put_str(b, "tcp:h:2");
    distvm_wire_put_u32(b, DISTVM_WIRE_SPEED_ONE);
    distvm_wire_end(b);
    expect_decode_error(b, &limits, "truncated");
    g_byte_array_unref(b);
}

/*
 * A message with strings in it: the one numbered @where has a length field
 * of @wire_len followed by @len bytes of @s, the others are fine.
 */
static void put_strings_raw(GByteArray *b, int where, uint32_t wire_len,
                            const void *s, size_t len)
{
    const char *ok = "ok";
    int i;

#define STR(n) do {                                       \
        if (where == (n)) {                               \
            distvm_wire_put_u32(b, wire_len);             \
            distvm_wire_put_bytes(b, s, len);             \
        } else {                                          \
            distvm_wire_put_str(b, ok);                   \
        }                                                 \
    } while (0)

    switch (where / 100) {
    case 0:     /* REFUSE */
        distvm_wire_begin(b, DISTVM_MSG_REFUSE, 1, 0);
        STR(0);
        break;
    case 1:     /* HELLO: listen is 100, then key/value pairs 101.. */
        distvm_wire_begin(b, DISTVM_MSG_HELLO, 1, 0);
        distvm_wire_put_u32(b, 1);
        distvm_wire_put_u32(b, 4);
        STR(100);
        distvm_wire_put_u32(b, DISTVM_WIRE_SPEED_ONE);
        distvm_wire_put_u32(b, 3);
        for (i = 101; i < 107; i++) {
            STR(i);
        }
        break;
    case 2:     /* WELCOME of node 1: addresses 200.., each with a speed */
        distvm_wire_begin(b, DISTVM_MSG_WELCOME, 0, 0);
        distvm_wire_put_u32(b, 4);
        distvm_wire_put_u32(b, 1);
        for (i = 200; i < 204; i++) {
            STR(i);
            distvm_wire_put_u32(b, DISTVM_WIRE_SPEED_ONE);
        }
        break;
    case 3:     /* PCI_CONFIG: the path is 300 */
        distvm_wire_begin(b, DISTVM_MSG_PCI_CONFIG, 0, 0);
        STR(300);
        distvm_wire_put_u32(b, 0x59);
        distvm_wire_put_u32(b, 0x30);
        distvm_wire_put_u32(b, 1);
        break;
    case 4:     /* MEM_PLUG: backend type 400, backend id 401, device 402 */
        distvm_wire_begin(b, DISTVM_MSG_MEM_PLUG, 0, 1);
        distvm_wire_put_u32(b, 3);
        distvm_wire_put_u64(b, DISTVM_PAGE_SIZE);
        for (i = 400; i < 403; i++) {
            STR(i);
        }
        break;
    case 5:     /* MEM_PLUG_ACK: the error is 500 */
        distvm_wire_begin(b, DISTVM_MSG_MEM_PLUG_ACK, 1, 1);
        distvm_wire_put_u32(b, 3);
        STR(500);
        break;
    default:
        g_assert_not_reached();
    }
#undef STR
    distvm_wire_end(b);
}

static void put_strings(GByteArray *b, int where, const void *s, size_t len)
{
    put_strings_raw(b, where, len, s, len);
}

static const int string_places[] = {
    0, 100, 101, 102, 103, 104, 105, 106, 200, 201, 202, 203, 300,
    400, 401, 402, 500,
};

/* (WELCOME's last field is a speed) */
static const int last_string_places[] = { 0, 106, 402, 500 };

static void test_long_strings(void)
{
    char *big = long_str(DISTVM_WIRE_MAX_STR + 64);
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(string_places); i++) {
        Decoded d;

        /* the limit is accepted */
        put_strings(b, string_places[i], big, DISTVM_WIRE_MAX_STR);
        decode_ok(b, &limits, &d);
        decoded_free(&d);

        put_strings(b, string_places[i], big, DISTVM_WIRE_MAX_STR + 1);
        expect_decode_error(b, &limits, "(limit 4096)");
        put_strings(b, string_places[i], big, DISTVM_WIRE_MAX_STR + 64);
        expect_decode_error(b, &limits, "has a string of 4160 bytes");

        /* a huge length with nothing behind it: the limit comes first */
        put_strings_raw(b, string_places[i], UINT32_MAX, "", 0);
        expect_decode_error(b, &limits, "(limit 4096)");
        put_strings_raw(b, string_places[i], DISTVM_WIRE_MAX_STR + 1, big,
                        DISTVM_WIRE_MAX_STR);
        expect_decode_error(b, &limits, "(limit 4096)");
    }

    /*
     * A length within the limit, not followed by that many bytes: in the
     * last string of a message, or the next fields would be read as text.
     */
    for (size_t i = 0; i < ARRAY_SIZE(last_string_places); i++) {
        put_strings_raw(b, last_string_places[i], DISTVM_WIRE_MAX_STR, big,
                        DISTVM_WIRE_MAX_STR - 1);
        expect_decode_error(b, &limits, "truncated");
        put_strings_raw(b, last_string_places[i], 1, "", 0);
        expect_decode_error(b, &limits, "truncated");
    }

    g_free(big);
    g_byte_array_unref(b);
}

static void test_nul_in_string(void)
{
    static const struct {
        const char *s;
        size_t len;
    } bad[] = {
        { "\0", 1 },
        { "ab\0cd", 5 },
        { "\0abc", 4 },
        { "abc\0", 4 },
        { "tcp:10.0.0.1:4444\0evil", 22 },
    };
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(string_places); i++) {
        for (size_t j = 0; j < ARRAY_SIZE(bad); j++) {
            put_strings(b, string_places[i], bad[j].s, bad[j].len);
            expect_decode_error(b, &limits, "NUL byte");
        }
    }
    g_byte_array_unref(b);
}

/*
 * A MEM_PLUG names a backend type, a backend id and a device; none may be
 * empty.  A MEM_PLUG_ACK's error may.
 */
static void test_mem_plug_empty_name(void)
{
    static const struct {
        int where;
        const char *what;
    } names[] = {
        { 400, "MEM_PLUG message with an empty backend type" },
        { 401, "MEM_PLUG message with an empty backend id" },
        { 402, "MEM_PLUG message with an empty device" },
    };
    GByteArray *b = g_byte_array_new();
    DistvmMsgMemPlug mem;
    Decoded d;

    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        /* empty, or none at all from the encoder */
        for (int none = 0; none < 2; none++) {
            mem = mem_plug_dimm;
            switch (names[i].where) {
            case 400:
                mem.backend_type = none ? NULL : (char *)"";
                break;
            case 401:
                mem.backend_id = none ? NULL : (char *)"";
                break;
            default:
                mem.device = none ? NULL : (char *)"";
                break;
            }
            distvm_wire_mem_plug(b, 0, 1, &mem);
            expect_decode_error(b, &limits, names[i].what);
            expect_decode_error(b, &limits_no_ram, names[i].what);
        }
        put_strings(b, names[i].where, "", 0);
        expect_decode_error(b, &limits, names[i].what);
        /* one character is enough */
        put_strings(b, names[i].where, "x", 1);
        decode_ok(b, &limits, &d);
        decoded_free(&d);
    }

    /* in the order of the payload */
    mem = (DistvmMsgMemPlug) { .slot = 3, .size = DISTVM_PAGE_SIZE };
    distvm_wire_mem_plug(b, 0, 1, &mem);
    expect_decode_error(b, &limits, "empty backend type");
    mem.backend_type = (char *)"memory-backend-ram";
    distvm_wire_mem_plug(b, 0, 1, &mem);
    expect_decode_error(b, &limits, "empty backend id");
    mem.backend_id = (char *)"mem1";
    distvm_wire_mem_plug(b, 0, 1, &mem);
    expect_decode_error(b, &limits, "empty device");
    /* an empty name with nothing after it is still empty, not truncated */
    distvm_wire_begin(b, DISTVM_MSG_MEM_PLUG, 0, 1);
    distvm_wire_put_u32(b, 3);
    distvm_wire_put_u64(b, DISTVM_PAGE_SIZE);
    distvm_wire_put_str(b, "");
    distvm_wire_end(b);
    expect_decode_error(b, &limits, "empty backend type");

    /* a MEM_PLUG_ACK's error may be empty: the device is plugged */
    put_strings(b, 500, "", 0);
    decode_ok(b, &limits, &d);
    g_assert_cmpstr(d.msg.u.mem.error, ==, "");
    decoded_free(&d);
    g_byte_array_unref(b);
}

static void test_too_many_items(void)
{
    static const uint32_t counts[] = {
        DISTVM_WIRE_MAX_ITEMS + 1, 0x10000, 0x7fffffff, UINT32_MAX - 1,
        UINT32_MAX,
    };
    GByteArray *b = g_byte_array_new();

    for (size_t i = 0; i < ARRAY_SIZE(counts); i++) {
        distvm_wire_begin(b, DISTVM_MSG_HELLO, 1, 0);
        distvm_wire_put_u32(b, 1);
        distvm_wire_put_u32(b, 4);
        distvm_wire_put_str(b, "tcp:x:1");
        distvm_wire_put_u32(b, DISTVM_WIRE_SPEED_ONE);
        distvm_wire_put_u32(b, counts[i]);
        distvm_wire_put_str(b, "k");
        distvm_wire_put_str(b, "v");
        distvm_wire_end(b);
        expect_decode_error(b, &limits, "fingerprint items");
    }

    /* more items claimed than present */
    distvm_wire_begin(b, DISTVM_MSG_HELLO, 1, 0);
    distvm_wire_put_u32(b, 1);
    distvm_wire_put_u32(b, 4);
    distvm_wire_put_str(b, "tcp:x:1");
    distvm_wire_put_u32(b, DISTVM_WIRE_SPEED_ONE);
    distvm_wire_put_u32(b, DISTVM_WIRE_MAX_ITEMS);
    distvm_wire_put_str(b, "k");
    distvm_wire_put_str(b, "v");
    distvm_wire_put_str(b, "k2");
    distvm_wire_end(b);
    expect_decode_error(b, &limits, "truncated");
    g_byte_array_unref(b);
}

/* A failed decode frees what it allocated and may be retried */
static void test_failed_decode_reuse(void)
{
    g_autoptr(GPtrArray) msgs = valid_messages();
    DistvmMsg msg;
    DistvmMsgHeader hdr;
    Error *err = NULL;

    for (guint i = 0; i < msgs->len; i++) {
        GByteArray *m = msgs->pdata[i];
        uint8_t *payload;

        g_assert_true(distvm_wire_parse_header(m->data, &hdr, &err));
        payload = copy_payload(m->data + HDR, hdr.length);
        if (hdr.length) {
            uint32_t len = hdr.length;

            /*
             * fails after allocating part of the message; a VCPU_STATE
             * or an EPOCH_STATE one byte short only has a shorter state,
             * one without any state fails
             */
            hdr.length = state_fixed(m) ? state_fixed(m) : len - 1;
            g_assert_false(distvm_wire_decode(&hdr, payload, &limits, &msg,
                                              &err));
            error_free_or_abort(&err);
            hdr.length = len;
        }
        /* the same DistvmMsg decodes the whole message */
        g_assert_true(distvm_wire_decode(&hdr, payload, &limits, &msg,
                                         &err));
        g_assert_null(err);
        distvm_msg_clear(&msg);
        /* clearing twice is harmless */
        distvm_msg_clear(&msg);
        g_free(payload);
    }
}

/* Errors may be ignored with a NULL errp */
static void test_null_errp(void)
{
    GByteArray *b = g_byte_array_new();
    DistvmMsgHeader hdr;
    DistvmMsg msg;

    distvm_wire_refuse(b, 0, "x");
    set_u32(b, OFF_MAGIC, 0);
    g_assert_false(distvm_wire_parse_header(b->data, &hdr, NULL));
    set_u32(b, OFF_MAGIC, DISTVM_WIRE_MAGIC);
    g_assert_true(distvm_wire_parse_header(b->data, &hdr, NULL));
    hdr.length--;
    g_assert_false(distvm_wire_decode(&hdr, b->data + HDR, &limits, &msg,
                                      NULL));
    g_byte_array_unref(b);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/distvm/wire/type-names", test_type_names);
    g_test_add_func("/distvm/wire/header-layout", test_header_layout);
    g_test_add_func("/distvm/wire/roundtrip/hello", test_hello);
    g_test_add_func("/distvm/wire/roundtrip/hello-empty", test_hello_empty);
    g_test_add_func("/distvm/wire/roundtrip/hello-any", test_hello_any);
    g_test_add_func("/distvm/wire/roundtrip/hello-at-limits",
                    test_hello_at_limits);
    g_test_add_func("/distvm/wire/roundtrip/welcome", test_welcome);
    g_test_add_func("/distvm/wire/roundtrip/refuse", test_refuse);
    g_test_add_func("/distvm/wire/roundtrip/peer-hello", test_peer_hello);
    g_test_add_func("/distvm/wire/roundtrip/node-lost", test_node_lost);
    g_test_add_func("/distvm/wire/roundtrip/node-join", test_node_join);
    g_test_add_func("/distvm/wire/roundtrip/node-drain", test_node_drain);
    g_test_add_func("/distvm/wire/roundtrip/node-drain-moved-home",
                    test_node_drain_moved_home);
    g_test_add_func("/distvm/wire/roundtrip/empty", test_empty_messages);
    g_test_add_func("/distvm/wire/roundtrip/ping-pong", test_ping_pong);
    g_test_add_func("/distvm/wire/roundtrip/page", test_page_messages);
    g_test_add_func("/distvm/wire/roundtrip/vcpu", test_vcpu_messages);
    g_test_add_func("/distvm/wire/roundtrip/vcpu-ipi", test_vcpu_ipi);
    g_test_add_func("/distvm/wire/roundtrip/vcpu-apic", test_vcpu_apic);
    g_test_add_func("/distvm/wire/roundtrip/vcpu-nodes", test_vcpu_nodes);
    g_test_add_func("/distvm/wire/roundtrip/pci-config", test_pci_config);
    g_test_add_func("/distvm/wire/roundtrip/io", test_io_messages);
    g_test_add_func("/distvm/wire/roundtrip/run-state", test_run_state);
    g_test_add_func("/distvm/wire/roundtrip/pic-output", test_pic_output);
    g_test_add_func("/distvm/wire/roundtrip/flow", test_flow);
    g_test_add_func("/distvm/wire/roundtrip/pci-intx", test_pci_intx);
    g_test_add_func("/distvm/wire/roundtrip/net-ctrl", test_net_ctrl);
    g_test_add_func("/distvm/wire/roundtrip/net-pair", test_net_pair);
    g_test_add_func("/distvm/wire/roundtrip/vcpu-flush", test_vcpu_flush);
    g_test_add_func("/distvm/wire/decode/vcpu-flush-bad",
                    test_vcpu_flush_bad);
    g_test_add_func("/distvm/wire/roundtrip/clock-regs", test_clock_regs);
    g_test_add_func("/distvm/wire/roundtrip/all-valid", test_valid_messages);

    g_test_add_func("/distvm/wire/header/bad-magic", test_bad_magic);
    g_test_add_func("/distvm/wire/header/bad-version", test_bad_version);
    g_test_add_func("/distvm/wire/header/bad-type", test_bad_type);
    g_test_add_func("/distvm/wire/header/oversized", test_oversized);

    g_test_add_func("/distvm/wire/decode/bad-type", test_decode_bad_type);
    g_test_add_func("/distvm/wire/decode/truncated", test_truncated);
    g_test_add_func("/distvm/wire/decode/trailing", test_trailing);
    g_test_add_func("/distvm/wire/decode/page-zero-with-data",
                    test_page_zero_with_data);
    g_test_add_func("/distvm/wire/decode/page-out-of-range",
                    test_page_out_of_range);
    g_test_add_func("/distvm/wire/decode/page-before-layout",
                    test_page_before_layout);
    g_test_add_func("/distvm/wire/decode/page-bad-flags", test_page_bad_flags);
    g_test_add_func("/distvm/wire/decode/page-run-flag", test_page_run_flag);
    g_test_add_func("/distvm/wire/decode/page-final-flag",
                    test_page_final_flag);
    g_test_add_func("/distvm/wire/decode/page-reserved", test_page_reserved);
    g_test_add_func("/distvm/wire/decode/bad-sender", test_bad_sender);
    g_test_add_func("/distvm/wire/decode/page-bad-node", test_page_bad_node);
    g_test_add_func("/distvm/wire/decode/page-req-on-behalf",
                    test_page_req_on_behalf);
    g_test_add_func("/distvm/wire/decode/vcpu-out-of-range",
                    test_vcpu_out_of_range);
    g_test_add_func("/distvm/wire/decode/vcpu-no-vcpus", test_vcpu_no_vcpus);
    g_test_add_func("/distvm/wire/decode/vcpu-bad-node", test_vcpu_bad_node);
    g_test_add_func("/distvm/wire/decode/vcpu-reason", test_vcpu_reason);
    g_test_add_func("/distvm/wire/roundtrip/policy", test_policy);
    g_test_add_func("/distvm/wire/roundtrip/warm-pages", test_warm_pages);
    g_test_add_func("/distvm/wire/roundtrip/page-reqs", test_page_reqs);
    g_test_add_func("/distvm/wire/roundtrip/mem-plug", test_mem_plug);
    g_test_add_func("/distvm/wire/roundtrip/mem-plug-ack", test_mem_plug_ack);
    g_test_add_func("/distvm/wire/roundtrip/mem-unplug", test_mem_unplug);
    g_test_add_func("/distvm/wire/roundtrip/cpu-plug", test_cpu_plug);
    g_test_add_func("/distvm/wire/decode/mem-bad-slot", test_mem_bad_slot);
    g_test_add_func("/distvm/wire/decode/mem-plug-bad-size",
                    test_mem_plug_bad_size);
    g_test_add_func("/distvm/wire/decode/mem-plug-empty-name",
                    test_mem_plug_empty_name);
    g_test_add_func("/distvm/wire/decode/mem-bad-length",
                    test_mem_bad_length);
    g_test_add_func("/distvm/wire/roundtrip/res-access", test_res_access);
    g_test_add_func("/distvm/wire/roundtrip/res-set", test_res_set);
    g_test_add_func("/distvm/wire/roundtrip/res-reply", test_res_reply);
    g_test_add_func("/distvm/wire/roundtrip/mgr-move", test_mgr_move);
    g_test_add_func("/distvm/wire/roundtrip/mgr-entries", test_mgr_entries);
    g_test_add_func("/distvm/wire/decode/mgr-move-bad", test_mgr_move_bad);
    g_test_add_func("/distvm/wire/decode/mgr-entries-bad",
                    test_mgr_entries_bad);
    g_test_add_func("/distvm/wire/roundtrip/epoch", test_epoch);
    g_test_add_data_func("/distvm/wire/roundtrip/epoch-rollback",
                         &rollback, test_epoch_steps);
    g_test_add_data_func("/distvm/wire/roundtrip/epoch-recovery",
                         &recovery, test_epoch_steps);
    g_test_add_data_func("/distvm/wire/roundtrip/epoch-parity",
                         &parity, test_epoch_steps);
    g_test_add_data_func("/distvm/wire/roundtrip/epoch-committed",
                         &committed, test_epoch_steps);
    g_test_add_func("/distvm/wire/roundtrip/epoch-pages", test_epoch_pages);
    g_test_add_func("/distvm/wire/roundtrip/epoch-pages-kinds",
                    test_epoch_pages_kinds);
    g_test_add_func("/distvm/wire/roundtrip/epoch-pages-held",
                    test_epoch_pages_held);
    g_test_add_func("/distvm/wire/roundtrip/epoch-pages-slot",
                    test_epoch_pages_slot);
    g_test_add_func("/distvm/wire/roundtrip/epoch-state", test_epoch_state);
    g_test_add_func("/distvm/wire/roundtrip/epoch-state-copies",
                    test_epoch_state_copies);
    g_test_add_func("/distvm/wire/roundtrip/epoch-state-placed",
                    test_epoch_state_placed);
    g_test_add_func("/distvm/wire/roundtrip/device-home", test_device_home);
    g_test_add_func("/distvm/wire/roundtrip/device-away", test_device_away);
    g_test_add_func("/distvm/wire/decode/epoch-bad", test_epoch_bad);
    g_test_add_data_func("/distvm/wire/decode/epoch-rollback-bad",
                         &rollback_bad, test_epoch_steps_bad);
    g_test_add_data_func("/distvm/wire/decode/epoch-parity-bad",
                         &parity_bad, test_epoch_steps_bad);
    g_test_add_data_func("/distvm/wire/decode/epoch-committed-bad",
                         &committed_bad, test_epoch_steps_bad);
    g_test_add_func("/distvm/wire/decode/epoch-vcpus", test_epoch_vcpus);
    g_test_add_func("/distvm/wire/decode/epoch-reserved",
                    test_epoch_reserved);
    g_test_add_func("/distvm/wire/decode/epoch-pages-bad",
                    test_epoch_pages_bad);
    g_test_add_func("/distvm/wire/decode/epoch-pages-kinds-bad",
                    test_epoch_pages_kinds_bad);
    g_test_add_func("/distvm/wire/decode/epoch-pages-ask-copy",
                    test_epoch_pages_ask_copy);
    g_test_add_func("/distvm/wire/decode/epoch-pages-held-bad",
                    test_epoch_pages_held_bad);
    g_test_add_func("/distvm/wire/decode/epoch-pages-slot-bad",
                    test_epoch_pages_slot_bad);
    g_test_add_func("/distvm/wire/decode/epoch-state-bad",
                    test_epoch_state_bad);
    g_test_add_func("/distvm/wire/decode/epoch-state-copies-bad",
                    test_epoch_state_copies_bad);
    g_test_add_func("/distvm/wire/decode/res-bad-size", test_res_bad_size);
    g_test_add_func("/distvm/wire/decode/res-bad-addr", test_res_bad_addr);
    g_test_add_func("/distvm/wire/decode/res-bad-flags", test_res_bad_flags);
    g_test_add_func("/distvm/wire/decode/res-bad-length",
                    test_res_bad_length);
    g_test_add_func("/distvm/wire/decode/vcpu-state-empty",
                    test_vcpu_state_empty);
    g_test_add_func("/distvm/wire/decode/vcpu-ipi-bad-delivery",
                    test_vcpu_ipi_bad_delivery);
    g_test_add_func("/distvm/wire/decode/vcpu-apic-bad-addressing",
                    test_vcpu_apic_bad_addressing);
    g_test_add_func("/distvm/wire/decode/vcpu-nodes-bad",
                    test_vcpu_nodes_bad);
    g_test_add_func("/distvm/wire/decode/pci-config-bad-len",
                    test_pci_config_bad_len);
    g_test_add_func("/distvm/wire/decode/pci-config-out-of-range",
                    test_pci_config_out_of_range);
    g_test_add_func("/distvm/wire/decode/pci-config-bad-path",
                    test_pci_config_bad_path);
    g_test_add_func("/distvm/wire/roundtrip/io-memory", test_io_memory);
    g_test_add_func("/distvm/wire/roundtrip/io-pic-ack", test_io_pic_ack);
    g_test_add_func("/distvm/wire/decode/io-bad-space", test_io_bad_space);
    g_test_add_func("/distvm/wire/decode/io-bad-addr", test_io_bad_addr);
    g_test_add_func("/distvm/wire/decode/io-bad-size", test_io_bad_size);
    g_test_add_func("/distvm/wire/decode/io-data-too-wide",
                    test_io_data_too_wide);
    g_test_add_func("/distvm/wire/decode/io-bad-flags", test_io_bad_flags);
    g_test_add_func("/distvm/wire/decode/io-regs", test_io_regs);
    g_test_add_func("/distvm/wire/decode/io-out-of-range",
                    test_io_out_of_range);
    g_test_add_func("/distvm/wire/decode/io-pic-ack-bad-size",
                    test_io_pic_ack_bad_size);
    g_test_add_func("/distvm/wire/decode/io-pic-ack-bad-addr",
                    test_io_pic_ack_bad_addr);
    g_test_add_func("/distvm/wire/decode/io-pic-ack-bad-request",
                    test_io_pic_ack_bad_request);
    g_test_add_func("/distvm/wire/decode/io-pic-ack-bad-reply",
                    test_io_pic_ack_bad_reply);
    g_test_add_func("/distvm/wire/decode/io-pic-ack-order",
                    test_io_pic_ack_order);
    g_test_add_func("/distvm/wire/decode/run-state-bad-action",
                    test_run_state_bad_action);
    g_test_add_func("/distvm/wire/decode/run-state-reserved",
                    test_run_state_reserved);
    g_test_add_func("/distvm/wire/decode/pic-output-bad-level",
                    test_pic_output_bad_level);
    g_test_add_func("/distvm/wire/decode/pic-output-bad-length",
                    test_pic_output_bad_length);
    g_test_add_func("/distvm/wire/decode/flow-bad-length",
                    test_flow_bad_length);
    g_test_add_func("/distvm/wire/decode/clock-regs-bad",
                    test_clock_regs_bad);
    g_test_add_func("/distvm/wire/decode/clock-regs-bad-length",
                    test_clock_regs_bad_length);
    g_test_add_func("/distvm/wire/decode/hello-bad-node-id",
                    test_hello_bad_node_id);
    g_test_add_func("/distvm/wire/decode/hello-bad-nodes",
                    test_hello_bad_nodes);
    g_test_add_func("/distvm/wire/decode/bad-speed", test_bad_speed);
    g_test_add_func("/distvm/wire/decode/peer-hello-bad",
                    test_peer_hello_bad);
    g_test_add_func("/distvm/wire/decode/node-lost-bad", test_node_lost_bad);
    g_test_add_func("/distvm/wire/decode/welcome-bad-nodes",
                    test_welcome_bad_nodes);
    g_test_add_func("/distvm/wire/decode/long-strings", test_long_strings);
    g_test_add_func("/distvm/wire/decode/nul-in-string", test_nul_in_string);
    g_test_add_func("/distvm/wire/decode/too-many-items",
                    test_too_many_items);
    g_test_add_func("/distvm/wire/decode/failed-decode-reuse",
                    test_failed_decode_reuse);
    g_test_add_func("/distvm/wire/decode/null-errp", test_null_errp);
    g_test_add_func("/distvm/wire/roles", test_roles);
    g_test_add_func("/distvm/wire/roles/moved-home", test_roles_moved_home);
    g_test_add_func("/distvm/wire/roles/res-set", test_res_set_roles);
    g_test_add_func("/distvm/wire/roles/mgr-move", test_mgr_move_roles);
    g_test_add_func("/distvm/wire/roles/net-pair", test_net_pair_roles);
    g_test_add_func("/distvm/wire/roles/epoch", test_epoch_roles);
    g_test_add_func("/distvm/wire/roles/epoch-rollback",
                    test_epoch_rollback_roles);
    g_test_add_func("/distvm/wire/roles/epoch-recovery",
                    test_epoch_recovery_roles);
    g_test_add_func("/distvm/wire/roles/epoch-parity",
                    test_epoch_parity_roles);
    g_test_add_func("/distvm/wire/roles/epoch-committed",
                    test_epoch_committed_roles);
    g_test_add_func("/distvm/wire/msg-vcpu", test_msg_vcpu);
    g_test_add_func("/distvm/wire/flow-counted", test_flow_counted);

    return g_test_run();
}
