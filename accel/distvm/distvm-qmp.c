/*
 * distvm: QMP and HMP
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "qemu/timer.h"
#include "qapi/qapi-commands-distvm.h"
#include "qobject/qdict.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "hw/core/cpu.h"
#include "distvm-internal.h"
#include "distvm-ram.h"

static DistvmState *distvm_state_or_error(Error **errp)
{
    DistvmState *s = distvm_state();

    if (!s) {
        error_setg(errp, "distvm is not the active accelerator");
    }
    return s;
}

DistvmState *distvm_qmp_home(const char *command, Error **errp)
{
    DistvmState *s = distvm_state_or_error(errp);

    if (s && (s->nodes == 1 || !distvm_is_home(s))) {
        error_setg(errp, "distvm: %s is asked of the home node (node %"
                   PRIu32 ") of a cluster", command, distvm_home(s));
        return NULL;
    }
    return s;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/*
 * @count requests; @lat_us holds the latencies of the last @samples of
 * them, or of the last @max if there were more.
 */
static DistvmFaultStats *latency_stats(uint64_t count, uint64_t samples,
                                       const uint32_t *lat_us, uint64_t max)
{
    DistvmFaultStats *f = g_new0(DistvmFaultStats, 1);
    uint64_t n = MIN(samples, max);

    f->count = count;
    if (n) {
        g_autofree uint32_t *lat = g_memdup2(lat_us, n * sizeof(uint32_t));

        qsort(lat, n, sizeof(uint32_t), cmp_u32);
        f->has_p50_us = f->has_p99_us = true;
        f->p50_us = lat[(n - 1) / 2];
        f->p99_us = lat[(n - 1) * 99 / 100];
    }
    return f;
}

static DistvmFaultStats *fault_stats(DistvmRamStats *st, DistvmFaultKind kind)
{
    return latency_stats(st->faults[kind], st->lat_count[kind],
                         st->lat_us[kind], DISTVM_LAT_SAMPLES);
}

static DistvmFaultStats *io_kind_stats(DistvmIoStats *st, DistvmIoKind kind)
{
    return latency_stats(st->count[kind], st->count[kind], st->lat_us[kind],
                         DISTVM_IO_LAT_SAMPLES);
}

static DistvmIoInfo *io_info(DistvmState *s)
{
    g_autofree DistvmIoStats *st = g_new(DistvmIoStats, 1);
    DistvmIoInfo *io = g_new0(DistvmIoInfo, 1);

    distvm_io_get_stats(s, st);
    distvm_clock_get_stats(s, &io->clock_reads_local, &io->clock_reads_sent);
    io->port = io_kind_stats(st, DISTVM_IO_KIND_PORT);
    io->mmio = io_kind_stats(st, DISTVM_IO_KIND_MMIO);
    io->pic_ack = io_kind_stats(st, DISTVM_IO_KIND_PIC_ACK);
    io->served = distvm_io_served(s);
    return io;
}

static DistvmRamInfo *ram_info(DistvmState *s)
{
    g_autofree DistvmRamStats *st = g_new(DistvmRamStats, 1);
    DistvmRamInfo *ri = g_new0(DistvmRamInfo, 1);

    distvm_ram_get_stats(s, st);
    ri->invalid = st->pages[DISTVM_PAGE_I];
    ri->shared = st->pages[DISTVM_PAGE_S];
    ri->exclusive = st->pages[DISTVM_PAGE_E];
    ri->read_miss = fault_stats(st, DISTVM_FAULT_READ_MISS);
    ri->write_miss = fault_stats(st, DISTVM_FAULT_WRITE_MISS);
    ri->upgrade = fault_stats(st, DISTVM_FAULT_UPGRADE);
    ri->merged = st->merged;
    ri->local = st->local;
    ri->pages_sent = st->pages_sent;
    ri->pages_received = st->pages_received;
    ri->invalidations = st->invalidations;
    ri->warm_asked = st->warm_asked;
    ri->warm_received = st->warm_received;
    return ri;
}

/* vCPU @cpu's last arrival here by a move, if any */
static DistvmVcpuArrival *vcpu_arrival(DistvmState *s, uint32_t cpu)
{
    DistvmVcpuArrival *info;
    DistvmArrival a;

    if (!distvm_ram_arrival(s, cpu, &a)) {
        return NULL;
    }
    info = g_new0(DistvmVcpuArrival, 1);
    info->from = a.from;
    info->downtime_us = a.downtime_us;
    info->state_bytes = a.state_bytes;
    info->has_warm_pages = a.warm_listed;
    info->warm_pages = a.warm_asked;
    info->has_warm_left = a.warm_listed;
    info->warm_left = a.warm_left;
    info->has_warm_us = a.warm_us >= 0;
    info->warm_us = MAX(a.warm_us, 0);
    info->faults_10ms = a.faults_window;
    return info;
}

DistvmInfo *qmp_query_distvm(Error **errp)
{
    DistvmState *s = distvm_state_or_error(errp);
    DistvmInfo *info;
    DistvmVcpuInfoList **tail;
    DistvmNodeInfoList **ntail;
    CPUState *cpu;

    if (!s) {
        return NULL;
    }

    info = g_new0(DistvmInfo, 1);
    info->node_id = s->node_id;
    info->home_node = distvm_home(s);
    info->nodes = s->nodes;
    info->start_nodes = s->start_nodes;
    info->state = s->state;
    info->listen = g_strdup(s->listen);
    info->home = g_strdup(s->home);
    info->bytes_sent = qatomic_read(&s->bytes_sent);
    info->bytes_received = qatomic_read(&s->bytes_received);
    info->protocol_errors = qatomic_read(&s->protocol_errors);
    info->tls = s->tls_server != NULL;
    info->moves = qatomic_read(&s->moves_done);
    info->pause_sleeps = qatomic_read(&s->pause_sleeps);
    info->interrupts_sent = qatomic_read(&s->irqs_sent);
    info->interrupts_received = qatomic_read(&s->irqs_received);
    distvm_tlb_flush_counts(s, &info->tlb_flushes_sent,
                            &info->tlb_flushes_done);
    info->flow_waits = qatomic_read(&s->flow_waits);
    info->policy = qatomic_read(&s->policy);
    info->capacity = s->capacity;
    if (info->moves) {
        info->has_last_downtime_us = true;
        info->last_downtime_us = qatomic_read(&s->last_downtime_ns) / 1000;
    }

    ntail = &info->node_list;
    for (uint32_t i = 0; i < s->nodes; i++) {
        DistvmPeer *peer = &s->peers[i];
        DistvmNodeInfo *n = g_new0(DistvmNodeInfo, 1);
        uint64_t rtt = qatomic_read(&peer->rtt_ns);

        n->node_id = i;
        n->self = i == s->node_id;
        if (n->self) {
            n->address = g_strdup(s->listen);
        } else {
            qemu_mutex_lock(&s->lock);  /* a node that joins again sets it */
            n->address = g_strdup(peer->addr);
            qemu_mutex_unlock(&s->lock);
        }
        if (i == DISTVM_HOME_NODE && !n->address) {
            n->address = g_strdup(s->home);
        }
        n->connected = n->self || qatomic_read(&peer->sioc) != NULL;
        n->present = distvm_node_present(s, i);
        n->has_rtt_us = rtt != 0;
        n->rtt_us = rtt / 1000;
        n->bytes_sent = qatomic_read(&peer->bytes_sent);
        n->bytes_received = qatomic_read(&peer->bytes_received);
        if (!n->self) {
            n->has_queued_bytes = true;
            n->queued_bytes = distvm_peer_queued(peer);
        }
        if (!n->self && n->connected) {
            n->has_last_heard_ms = true;
            n->last_heard_ms = (get_clock() -
                                qatomic_read(&peer->heard_ns)) / SCALE_MS;
        }
        if (distvm_node_speed(s, i)) {
            n->has_speed = n->has_tier = true;
            n->speed = (double)distvm_node_speed(s, i) /
                       DISTVM_WIRE_SPEED_ONE;
            n->tier = distvm_node_tier(s, i);
        }
        QAPI_LIST_APPEND(ntail, n);
    }
    if (s->ram) {
        info->ram = ram_info(s);
        info->memory = distvm_ram_ranges(s);
        info->has_memory = true;
    }
    info->residency = distvm_residency_query(s);
    info->has_residency = info->residency != NULL;
    info->devices = distvm_devices_query(s);
    info->has_devices = info->devices != NULL;
    info->checkpoint = distvm_epoch_query(s);
    if (s->nodes > 1) {
        info->io = io_info(s);
        info->affinity = distvm_affinity_query(s);
    }

    tail = &info->vcpus;
    CPU_FOREACH(cpu) {
        DistvmVcpuInfo *vcpu = g_new0(DistvmVcpuInfo, 1);

        vcpu->cpu_index = cpu->cpu_index;
        vcpu->node = distvm_vcpu_node(s, cpu->cpu_index);
        vcpu->qom_path = object_get_canonical_path(OBJECT(cpu));
        if (vcpu->node == s->node_id) {
            vcpu->arrival = vcpu_arrival(s, cpu->cpu_index);
        }
        vcpu->allowed_nodes = distvm_vcpu_allowed_nodes(s, cpu->cpu_index);
        vcpu->has_allowed_nodes = vcpu->allowed_nodes != NULL;
        QAPI_LIST_APPEND(tail, vcpu);
    }
    return info;
}

DistvmPageStates *qmp_x_query_distvm_pages(const char *ramblock,
                                           uint64_t start, uint64_t count,
                                           Error **errp)
{
    DistvmState *s = distvm_state_or_error(errp);
    DistvmPageStates *ret;
    char *states;

    if (!s) {
        return NULL;
    }
    states = distvm_ram_page_states(s, ramblock, start, count, errp);
    if (!states) {
        return NULL;
    }
    ret = g_new0(DistvmPageStates, 1);
    ret->states = states;
    return ret;
}

DistvmReplicaPageList *qmp_x_query_distvm_replica_page(const char *ramblock,
                                                       uint64_t page,
                                                       Error **errp)
{
    DistvmState *s = distvm_state_or_error(errp);

    return s ? distvm_epoch_replica_page(s, ramblock, page, errp) : NULL;
}

void qmp_x_distvm_rollback(bool has_as_if_lost, uint32_t as_if_lost,
                           Error **errp)
{
    DistvmState *s = distvm_state_or_error(errp);

    if (s) {
        distvm_epoch_rollback(s, has_as_if_lost, as_if_lost, errp);
    }
}

void qmp_x_distvm_send_message(uint32_t to, uint16_t type, bool has_seq,
                               uint64_t seq, const char *payload,
                               Error **errp)
{
    DistvmState *s = distvm_state_or_error(errp);
    g_autoptr(GByteArray) msg = g_byte_array_new();
    size_t len = payload ? strlen(payload) : 0;

    if (!s) {
        return;
    }
    if (to >= s->nodes || to == s->node_id) {
        error_setg(errp, "distvm: node %" PRIu32 " is not another node of "
                   "this cluster", to);
        return;
    }
    if (len % 2 || len / 2 > DISTVM_WIRE_MAX_PAYLOAD) {
        error_setg(errp, "distvm: the payload must be an even number of "
                   "hexadecimal digits, at most %u bytes",
                   DISTVM_WIRE_MAX_PAYLOAD);
        return;
    }
    distvm_wire_begin(msg, type, s->node_id, seq);
    for (size_t i = 0; i < len; i += 2) {
        int hi = g_ascii_xdigit_value(payload[i]);
        int lo = g_ascii_xdigit_value(payload[i + 1]);
        uint8_t byte = hi << 4 | lo;

        if (hi < 0 || lo < 0) {
            error_setg(errp, "distvm: the payload is not hexadecimal");
            return;
        }
        g_byte_array_append(msg, &byte, 1);
    }
    distvm_wire_end(msg);
    if (!distvm_send(s, to, msg)) {
        error_setg(errp, "distvm: node %" PRIu32 " cannot be reached", to);
    }
}

DistvmHotPageList *qmp_x_query_distvm_hot_pages(bool has_count,
                                                uint32_t count,
                                                Error **errp)
{
    DistvmState *s = distvm_state_or_error(errp);

    if (!s) {
        return NULL;
    }
    if (has_count && (count < 1 || count > DISTVM_HOT_PAGES_MAX)) {
        error_setg(errp, "distvm: count=%" PRIu32 " is out of range (1 to "
                   "%d)", count, DISTVM_HOT_PAGES_MAX);
        return NULL;
    }
    return distvm_ram_hot_pages(s, has_count ? count : 16, errp);
}

static void hmp_print_faults(Monitor *mon, const char *name,
                             DistvmFaultStats *f)
{
    monitor_printf(mon, "  %-10s %" PRId64, name, f->count);
    if (f->has_p50_us) {
        monitor_printf(mon, " (p50 %" PRId64 " us, p99 %" PRId64 " us)",
                       f->p50_us, f->p99_us);
    }
    monitor_printf(mon, "\n");
}

static void hmp_print_count(Monitor *mon, uint64_t total, uint64_t rate)
{
    monitor_printf(mon, " %10" PRIu64 " %6" PRIu64 "/s", total, rate);
}

/*
 * The vCPU x serving node matrix of misses, then upgrades and device
 * accesses sent home: totals, and rates over the last second.
 */
static void hmp_print_affinity(Monitor *mon, uint32_t nodes,
                               DistvmAffinityInfo *a)
{
    uint64List *f, *r;

    monitor_printf(mon, "misses here by the node that sent the data, "
                   "upgrades, device accesses sent home:\n       ");
    for (uint32_t n = 0; n < nodes; n++) {
        g_autofree char *node = g_strdup_printf("node %" PRIu32, n);

        monitor_printf(mon, " %10s%9s", node, "");
    }
    monitor_printf(mon, " %10s%9s %10s\n", "upgrades", "", "devices");
    for (DistvmVcpuAffinityList *v = a->vcpus; v; v = v->next) {
        monitor_printf(mon, "vCPU %-2" PRId64 "%s", v->value->cpu_index,
                       v->value->running ? "*" : " ");
        for (f = v->value->faults, r = v->value->fault_rate; f && r;
             f = f->next, r = r->next) {
            hmp_print_count(mon, f->value, r->value);
        }
        hmp_print_count(mon, v->value->upgrades, v->value->upgrade_rate);
        hmp_print_count(mon, v->value->io, v->value->io_rate);
        if (v->value->running) {
            monitor_printf(mon, "  busy %" PRIu32 "%%", v->value->busy);
        }
        monitor_printf(mon, "\n");
    }
    monitor_printf(mon, "others ");
    for (f = a->other_faults; f; f = f->next) {
        monitor_printf(mon, " %10" PRIu64 "         ", f->value);
    }
    monitor_printf(mon, " %10" PRIu64 "\n(* runs here)\n", a->other_upgrades);
}

static void hmp_info_distvm(Monitor *mon, const QDict *qdict)
{
    g_autoptr(DistvmInfo) info = NULL;
    Error *err = NULL;
    DistvmVcpuInfoList *v;
    DistvmNodeInfoList *n;

    info = qmp_query_distvm(&err);
    if (hmp_handle_error(mon, err)) {
        return;
    }
    monitor_printf(mon, "node %" PRIu32 " of %" PRIu32 "%s, cluster %s",
                   info->node_id, info->nodes,
                   info->node_id == info->home_node ? " (home)" : "",
                   DistvmClusterState_str(info->state));
    if (info->start_nodes < info->nodes) {
        monitor_printf(mon, ", started with %" PRIu32 " nodes",
                       info->start_nodes);
    }
    monitor_printf(mon, "\n");
    for (n = info->node_list; n; n = n->next) {
        monitor_printf(mon, "  node %" PRIu32 ": %s%s%s%s",
                       n->value->node_id, n->value->address ?: "-",
                       n->value->self ? " (this node)" : "",
                       n->value->present ? "" : " (not in the cluster)",
                       n->value->connected || !n->value->present ?
                       "" : " (not connected)");
        if (n->value->has_rtt_us) {
            monitor_printf(mon, ", rtt %" PRId64 " us", n->value->rtt_us);
        }
        if (n->value->has_last_heard_ms) {
            monitor_printf(mon, ", heard %" PRIu64 " ms ago",
                           n->value->last_heard_ms);
        }
        if (n->value->has_queued_bytes && n->value->queued_bytes) {
            g_autofree char *q = size_to_str(n->value->queued_bytes);

            monitor_printf(mon, ", %s queued", q);
        }
        if (n->value->has_speed) {
            monitor_printf(mon, ", speed %g (tier %" PRIu32 ")",
                           n->value->speed, n->value->tier);
        }
        monitor_printf(mon, "\n");
    }
    if (info->ram) {
        DistvmRamInfo *r = info->ram;

        monitor_printf(mon, "pages: %" PRId64 " invalid, %" PRId64 " shared, %"
                       PRId64 " exclusive\nfaults:\n", r->invalid, r->shared,
                       r->exclusive);
        hmp_print_faults(mon, "read-miss", r->read_miss);
        hmp_print_faults(mon, "write-miss", r->write_miss);
        hmp_print_faults(mon, "upgrade", r->upgrade);
        monitor_printf(mon, "  merged %" PRId64 ", local %" PRId64 "\n",
                       r->merged, r->local);
        for (DistvmMemoryRangeList *m = info->memory; m; m = m->next) {
            g_autofree char *size = size_to_str(m->value->size);

            monitor_printf(mon, "memory %s: %s, home node %" PRIu32 "%s, %"
                           PRIu64 " remote faults here\n",
                           m->value->ramblock, size, m->value->home,
                           m->value->numa ? " (NUMA)" : "",
                           m->value->remote_faults);
        }
    }
    for (DistvmResidentRangeList *r = info->residency; r; r = r->next) {
        monitor_printf(mon, "resident on node %" PRIu32 "%s: 0x%" PRIx64
                       "+0x%" PRIx64 ", %" PRId64 " accesses done there for "
                       "this node, %" PRId64 " vCPUs moved there\n",
                       r->value->node,
                       r->value->gathering ? " (gathering its pages)" : "",
                       r->value->base, r->value->size,
                       r->value->remote_accesses, r->value->vcpu_moves);
    }
    for (DistvmDeviceInfoList *d = info->devices; d; d = d->next) {
        monitor_printf(mon, "device %s on node %" PRIu32 ": %" PRIu64
                       " accesses of this node's vCPUs done here, %" PRIu64
                       " sent there, %" PRIu64 " done here for other nodes; "
                       "moved %" PRIu64 " times\n",
                       d->value->id, d->value->node, d->value->local,
                       d->value->forwarded, d->value->served,
                       d->value->moves);
    }
    if (info->io) {
        monitor_printf(mon, "device accesses sent to other nodes:\n");
        hmp_print_faults(mon, "port", info->io->port);
        hmp_print_faults(mon, "mmio", info->io->mmio);
        hmp_print_faults(mon, "pic-ack", info->io->pic_ack);
        monitor_printf(mon, "clock reads: %" PRIu64 " answered here, %"
                       PRIu64 " sent to the home node\n",
                       info->io->clock_reads_local,
                       info->io->clock_reads_sent);
        for (DistvmIoServedList *d = info->io->served; d; d = d->next) {
            monitor_printf(mon, "done here for other nodes' vCPUs: %" PRIu64
                           " accesses of %s\n", d->value->accesses,
                           d->value->device);
        }
    }
    if (info->affinity) {
        hmp_print_affinity(mon, info->nodes, info->affinity);
    }
    monitor_printf(mon, "bytes sent %" PRId64 ", received %" PRId64
                   ", protocol errors %" PRId64 "%s\n", info->bytes_sent,
                   info->bytes_received, info->protocol_errors,
                   info->tls ? ", TLS" : "");
    monitor_printf(mon, "vCPU moves %" PRId64, info->moves);
    if (info->has_last_downtime_us) {
        monitor_printf(mon, ", last downtime %" PRId64 " us",
                       info->last_downtime_us);
    }
    monitor_printf(mon, "; spinning vCPUs slept %" PRId64 " times\n",
                   info->pause_sleeps);
    monitor_printf(mon, "interrupts sent to other nodes %" PRIu64
                   ", received %" PRIu64 "\n", info->interrupts_sent,
                   info->interrupts_received);
    monitor_printf(mon, "the guest waited for other nodes' main loops %"
                   PRIu64 " times\n", info->flow_waits);
    monitor_printf(mon, "placement policy %s, capacity %" PRIu32 " vCPUs\n",
                   DistvmPolicy_str(info->policy), info->capacity);
    for (v = info->vcpus; v; v = v->next) {
        monitor_printf(mon, "vCPU %" PRId64 ": node %" PRIu32,
                       v->value->cpu_index, v->value->node);
        for (uint32List *a = v->value->allowed_nodes; a; a = a->next) {
            monitor_printf(mon, "%s%" PRIu32,
                           a == v->value->allowed_nodes ?
                           " (may run only on nodes " : ", ", a->value);
        }
        monitor_printf(mon, "%s\n", v->value->allowed_nodes ? ")" : "");
    }
}

static void distvm_hmp_register(void)
{
    monitor_register_hmp("distvm", true, hmp_info_distvm);
}

type_init(distvm_hmp_register);
