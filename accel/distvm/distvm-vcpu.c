/*
 * distvm: vCPUs on several nodes, and moving one while the guest runs
 *
 * Every node creates every vCPU and runs those it owns; the others are
 * parked (CPUState::parked): their threads sleep but still answer stop
 * requests and queued work.
 *
 * A move: the request reaches the vCPU's owner (a node that no longer
 * owns it forwards the request; requests for a vCPU that is moving wait
 * until it has arrived).  The owner stops the vCPU with run_on_cpu on its
 * own thread, parks it and serializes it with QEMU's migration
 * descriptions (vmstate_cpu_common, vmstate_x86_cpu and the LAPIC's
 * vmstate_apic_common), and a separate thread sends it.  The destination
 * loads the three sections under the BQL, in the same order, which
 * re-arms the LAPIC timer, unparks the vCPU and tells every node, each of
 * which then reports DISTVM_VCPU_MOVED.
 *
 * Interrupts and IPIs for a vCPU that runs elsewhere are sent to its
 * node (apic_remote_deliver_hook); those that arrive while it moves are
 * held and follow it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-distvm.h"
#include "qapi/qapi-events-distvm.h"
#include "qemu/bswap.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "cpu.h"
#include "hw/core/cpu.h"
#include "hw/i386/apic_internal.h"
#include "io/channel-buffer.h"
#include "migration/qemu-file.h"
#include "migration/vmstate.h"
#include "system/cpus.h"
#include "system/hw_accel.h"
#include "distvm-internal.h"
#include "distvm-ram.h"
#include "trace.h"

typedef struct DistvmVcpuMove {
    uint64_t generation;        /* moves of this vCPU applied here */
    bool moving;                /* owner: being stopped and sent */
    bool incoming;              /* destination: received, not yet running */
    GQueue waiting;             /* DistvmMsgVcpu: moves held meanwhile */
    GQueue ipis;                /* DistvmIpi: deliveries held meanwhile */
} DistvmVcpuMove;

typedef struct DistvmIpi {
    uint32_t cpu;
    uint64_t delivery;
} DistvmIpi;

/* A vCPU's state on its way out, from its thread to the sender thread. */
typedef struct DistvmOutgoing {
    uint32_t cpu;
    uint32_t dest;
    uint32_t reason;            /* DistvmMoveWhy */
    uint64_t generation;
    uint64_t paused_ns;
    GByteArray *state;
    DistvmPageRef *warm;        /* [nr_warm]: the pages it used last */
    uint32_t nr_warm;
} DistvmOutgoing;

/* Ask @node to move vCPU @cpu; @value: for the policy, see VCPU_MOVE */
static void vcpu_send_move(DistvmState *s, uint32_t node, uint32_t cpu,
                           uint32_t from, uint32_t to, uint32_t reason,
                           uint64_t value)
{
    g_autoptr(GByteArray) m = g_byte_array_new();

    distvm_wire_vcpu_move(m, DISTVM_MSG_VCPU_MOVE, s->node_id, cpu, from, to,
                          reason, value, NULL, 0);
    if (!distvm_send(s, node, m)) {
        distvm_fatal_node_lost(s, node, "connection closed");
    }
}

/* A delivery that query-distvm counts: all but the A20 line's */
static bool ipi_is_interrupt(uint64_t delivery)
{
    return (delivery & 0xff) != DISTVM_DM_A20;
}

static void vcpu_send_ipi(DistvmState *s, uint32_t node, uint32_t cpu,
                          uint64_t delivery)
{
    g_autoptr(GByteArray) m = g_byte_array_new();

    distvm_wire_vcpu(m, DISTVM_MSG_VCPU_IPI, s->node_id, cpu, s->node_id,
                     node, delivery, NULL, 0);
    if (ipi_is_interrupt(delivery)) {
        qatomic_inc(&s->irqs_sent);
    }
    if (!distvm_send(s, node, m)) {
        distvm_fatal_node_lost(s, node, "connection closed");
    }
    distvm_flow_sent(s, BIT(node));
}

static gint ipi_cmp(gconstpointer a, gconstpointer b)
{
    const DistvmIpi *x = a, *y = b;

    return x->delivery != y->delivery;
}

static gint ipi_a20_cmp(gconstpointer a, gconstpointer b)
{
    const DistvmIpi *x = a;

    return (x->delivery & 0xff) != DISTVM_DM_A20;
}

/*
 * Hold a delivery for a vCPU on its way, with s->lock held.  The vCPU
 * does not run until they are all applied, one after the other, so a
 * delivery equal to one held already changes nothing (the LAPIC's IRR,
 * its pending NMI, INIT, SIPI and SMI are each one bit): it is not kept
 * twice, which bounds the queue by the number of different deliveries.
 * The A20 line is a level, not an event: only its last one is kept.
 */
static void vcpu_hold_ipi(DistvmVcpuMove *mv, uint32_t cpu,
                          uint64_t delivery)
{
    DistvmIpi key = { .cpu = cpu, .delivery = delivery };
    GList *old;

    if ((delivery & 0xff) == DISTVM_DM_A20 &&
        (old = g_queue_find_custom(&mv->ipis, &key, ipi_a20_cmp))) {
        g_free(old->data);
        g_queue_delete_link(&mv->ipis, old);
    }
    if (!g_queue_find_custom(&mv->ipis, &key, ipi_cmp)) {
        g_queue_push_tail(&mv->ipis, g_memdup2(&key, sizeof(key)));
    }
}

/*
 * Where a delivery to vCPU @cpu goes, with the BQL held (which excludes
 * the vCPU's eviction, run on its thread under the BQL).  Returns false
 * if it is to be applied here, now; otherwise the delivery was held (the
 * vCPU is on its way) or sent to the node that runs it.
 */
static bool vcpu_route_ipi(DistvmState *s, uint32_t cpu, uint64_t delivery)
{
    DistvmVcpuMove *mv = &s->moves[cpu];
    CPUState *cs = qemu_get_cpu(cpu);
    uint32_t owner;

    qemu_mutex_lock(&s->lock);
    owner = s->vcpu_node[cpu];
    if (mv->incoming || (mv->moving && qatomic_read(&cs->parked))) {
        vcpu_hold_ipi(mv, cpu, delivery);
        qemu_mutex_unlock(&s->lock);
        return true;
    }
    qemu_mutex_unlock(&s->lock);
    if (owner == s->node_id) {
        return false;
    }
    trace_distvm_ipi_forward(cpu, owner, delivery);
    vcpu_send_ipi(s, owner, cpu, delivery);
    return true;
}

static bool distvm_apic_remote_deliver(APICCommonState *apic,
                                       uint8_t delivery_mode,
                                       uint8_t vector_num,
                                       uint8_t trigger_mode)
{
    DistvmState *s = distvm_state();

    if (s->nodes == 1 ||
        qatomic_read(&s->state) != DISTVM_CLUSTER_STATE_RUNNING) {
        return false;
    }
    /*
     * Devices are the home node's, but for those placed on other nodes:
     * the other device models of the other nodes must not interrupt
     * vCPUs (their own vCPUs' IPIs are forwarded).
     */
    if (!distvm_is_home(s) && !current_cpu && !distvm_devices_run_here(s) &&
        distvm_vcpu_node(s, CPU(apic->cpu)->cpu_index) != s->node_id) {
        return true;
    }
    return vcpu_route_ipi(s, CPU(apic->cpu)->cpu_index,
                          delivery_mode | vector_num << 8 |
                          (uint32_t)trigger_mode << 16);
}

/*
 * A LAPIC's addressing changed here, or it was reset (an INIT, or the
 * machine's reset, which the other nodes' copies do not see), with the
 * BQL: the other nodes deliver to it by its APIC ID, logical destination
 * and destination format, or (x2APIC mode) by its x2APIC ID and logical ID,
 * which follow from its initial APIC ID; broadcasts reach the LAPICs in
 * the mode they address, and a node hands the 8259's output to vCPU 0's
 * LAPIC only while it is enabled.  QEMU's lowest-priority arbitration
 * takes the first LAPIC addressed: no more to share for it.
 */
static uint64_t apic_addressing_value(APICCommonState *apic)
{
    uint64_t value = qatomic_read(&apic->id) |
                     qatomic_read(&apic->log_dest) << 8 |
                     (uint64_t)(qatomic_read(&apic->dest_mode) & 0xf) << 16;
    uint64_t base = qatomic_read(&apic->apicbase);

    if (base & MSR_IA32_APICBASE_EXTD) {
        value |= DISTVM_APIC_X2APIC;
    }
    if (base & MSR_IA32_APICBASE_ENABLE) {
        value |= DISTVM_APIC_ENABLED;
    }
    if (qatomic_read(&apic->spurious_vec) & APIC_SV_ENABLE) {
        value |= DISTVM_APIC_SW_ENABLED;
    }
    return value;
}

static void distvm_apic_addressing(APICCommonState *apic)
{
    DistvmState *s = distvm_state();
    g_autoptr(GByteArray) m = NULL;
    uint32_t cpu = CPU(apic->cpu)->cpu_index;
    uint64_t value = apic_addressing_value(apic);

    /*
     * Only the node that runs the vCPU tells: the others keep copies.  Not
     * of a CPU it plugs for home: every node resets its copy the same way,
     * and some have not plugged theirs yet.
     */
    if (s->nodes == 1 ||
        qatomic_read(&s->state) != DISTVM_CLUSTER_STATE_RUNNING ||
        distvm_vcpu_node(s, cpu) != s->node_id ||
        distvm_cpuplug_mirroring(CPU(apic->cpu))) {
        return;
    }
    trace_distvm_apic_addressing(cpu, value);
    m = g_byte_array_new();
    for (uint32_t i = 0; i < s->nodes; i++) {
        if (i != s->node_id) {
            g_byte_array_set_size(m, 0);
            distvm_wire_vcpu(m, DISTVM_MSG_VCPU_APIC, s->node_id, cpu,
                             s->node_id, i, value, NULL, 0);
            distvm_send(s, i, m);
        }
    }
}

/*
 * Another node's vCPU changed its LAPIC's addressing: so does our copy,
 * at once, in the receive thread.  Its node may tell ours next, through
 * guest memory, that the vCPU is ready for interrupts (Linux marks a CPU
 * online after it set its logical destination); that page comes on this
 * same connection, after this message, and must find the change made.
 * Deliveries read these bytes under the BQL; a delivery racing with the
 * change reaches the vCPU with either addressing, as on real hardware.
 */
static bool vcpu_apic_received(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgVcpu *m = &msg->u.vcpu;
    CPUState *cpu = qemu_get_cpu(m->cpu);
    DeviceState *lapic = cpu ? qatomic_read(&X86_CPU(cpu)->apic_state)
                             : NULL;
    APICCommonState *apic;

    if (!lapic) {
        return true;            /* unplugged meanwhile (distvm-cpuplug.c) */
    }
    apic = APIC_COMMON(lapic);
    if (distvm_vcpu_node(s, m->cpu) != s->node_id) {
        uint64_t base = apic->apicbase &
                        ~(MSR_IA32_APICBASE_EXTD | MSR_IA32_APICBASE_ENABLE);

        if (m->value & DISTVM_APIC_X2APIC) {
            base |= MSR_IA32_APICBASE_EXTD;
        }
        if (m->value & DISTVM_APIC_ENABLED) {
            base |= MSR_IA32_APICBASE_ENABLE;
        }
        qatomic_set(&apic->id, m->value & 0xff);
        qatomic_set(&apic->log_dest, (m->value >> 8) & 0xff);
        qatomic_set(&apic->dest_mode, (m->value >> 16) & 0xf);
        qatomic_set(&apic->apicbase, base);
        qatomic_set(&apic->spurious_vec,
                    (apic->spurious_vec & ~APIC_SV_ENABLE) |
                    (m->value & DISTVM_APIC_SW_ENABLED ? APIC_SV_ENABLE : 0));
    }
    return true;
}

/*
 * cpu_interrupt() of a vCPU, with the BQL: SMI and NMI for a vCPU that
 * runs elsewhere are sent to it as LAPIC deliveries.  Returns the part of
 * @mask to raise here.
 */
int distvm_vcpu_forward_interrupt(CPUState *cpu, int mask)
{
    DistvmState *s = distvm_state();

    if (!s || s->nodes == 1 ||
        qatomic_read(&s->state) != DISTVM_CLUSTER_STATE_RUNNING ||
        distvm_vcpu_node(s, cpu->cpu_index) == s->node_id) {
        return mask;
    }
    if ((mask & CPU_INTERRUPT_SMI) &&
        vcpu_route_ipi(s, cpu->cpu_index, APIC_DM_SMI)) {
        mask &= ~CPU_INTERRUPT_SMI;
    }
    if ((mask & CPU_INTERRUPT_NMI) &&
        vcpu_route_ipi(s, cpu->cpu_index, APIC_DM_NMI)) {
        mask &= ~CPU_INTERRUPT_NMI;
    }
    return mask;
}

static void vcpu_apply_ipi(DistvmState *s, uint32_t cpu, uint64_t delivery)
{
    X86CPU *x86 = X86_CPU(qemu_get_cpu(cpu));

    if ((delivery & 0xff) == DISTVM_DM_A20) {
        x86_cpu_set_a20(x86, (delivery >> 8) & 1);  /* routed by the hook */
    } else if (!vcpu_route_ipi(s, cpu, delivery)) {
        trace_distvm_ipi_deliver(cpu, delivery);
        apic_deliver_local(APIC_COMMON(x86->apic_state), delivery & 0xff,
                           (delivery >> 8) & 0xff, (delivery >> 16) & 1);
    }
}

/*
 * The A20 line of @x86 changed, with the BQL (on home: port 0x92's or
 * the 8042's write, replayed).  A20M# is an input of the processor, as
 * NMI is: the change goes where the vCPU runs, or, when it is the vCPU
 * whose access home replays, with the reply to that access.  Returns
 * true if it is not to be applied here.
 */
static bool distvm_a20_changed(X86CPU *x86, bool enabled)
{
    DistvmState *s = distvm_state();
    uint32_t cpu = CPU(x86)->cpu_index;

    if (s->nodes == 1 ||
        qatomic_read(&s->state) != DISTVM_CLUSTER_STATE_RUNNING) {
        return false;
    }
    if (distvm_io_replay_a20(s, CPU(x86), enabled)) {
        return true;
    }
    trace_distvm_a20(cpu, enabled);
    return vcpu_route_ipi(s, cpu, DISTVM_DM_A20 | (uint64_t)enabled << 8);
}

/*
 * An SMI that a vCPU's write to the APM control port raised (home replays
 * the write) is taken before the vCPU's next instruction, as on one node.
 */
static bool vcpu_ipi_is_smi(const DistvmMsg *msg)
{
    return (msg->u.vcpu.value & 0xff) == APIC_DM_SMI;
}

/*
 * Delivering to a LAPIC needs the BQL, but touches no guest RAM: the
 * receive thread does it when the BQL is free (main_loop_now), else the
 * main loop.
 */
static void vcpu_ipi_received(DistvmState *s, const DistvmMsg *msg)
{
    if (ipi_is_interrupt(msg->u.vcpu.value)) {
        qatomic_inc(&s->irqs_received);
    }
    vcpu_apply_ipi(s, msg->u.vcpu.cpu, msg->u.vcpu.value);
}

/* ---- serialization ---- */

/*
 * Subsections of vmstate_x86_cpu that only KVM (or its Xen emulation)
 * fills in: paravirtual and Hyper-V MSRs, nested state, Xen, processor
 * trace, SGX, LBR and TSC scaling.  Under distvm (TCG) no vCPU needs
 * them, and cpu/nested_state would even be loaded through a pointer that
 * TCG leaves NULL, so a vCPU state that carries one is refused: it is
 * loaded with vmstate_x86_cpu_incoming, whose list of subsections lacks
 * them, and VMState fails on the first one before loading it.
 * (cpu/poll_control_msr is not one of them: TCG leaves the MSR at 0,
 * not at KVM's reset value 1, so every state carries it.)
 */
static const char *const kvm_only_subsections[] = {
    "cpu/steal_time_msr", "cpu/async_pf_msr", "cpu/async_pf_int_msr",
    "cpu/async_pv_eoi_msr", "cpu/msr_hyperv_",
    "cpu/nested_state", "cpu/xen_vcpu", "cpu/intel_pt", "cpu/intel_sgx",
    "cpu/arch_lbr", "cpu/amd_tsc_scale_msr",
};

static VMStateDescription vmstate_x86_cpu_incoming;

static bool kvm_only_subsection(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(kvm_only_subsections); i++) {
        if (g_str_has_prefix(name, kvm_only_subsections[i])) {
            return true;
        }
    }
    return false;
}

static void vcpu_incoming_init(void)
{
    const VMStateDescription *const *sub = vmstate_x86_cpu.subsections;
    GPtrArray *kept = g_ptr_array_new();

    for (; sub && *sub; sub++) {
        if (!kvm_only_subsection((*sub)->name)) {
            g_ptr_array_add(kept, (gpointer)*sub);
        }
    }
    g_ptr_array_add(kept, NULL);
    vmstate_x86_cpu_incoming = vmstate_x86_cpu;
    vmstate_x86_cpu_incoming.subsections =
        (const VMStateDescription *const *)g_ptr_array_free(kept, false);
}

int distvm_state_save(GByteArray *out, size_t hint,
                      int (*save)(QEMUFile *f, void *opaque), void *opaque)
{
    QIOChannelBuffer *bioc = qio_channel_buffer_new(hint);
    QEMUFile *f = qemu_file_new_output(QIO_CHANNEL(bioc));
    int ret = save(f, opaque);

    if (!ret) {
        ret = qemu_fflush(f);
    }
    if (!ret) {
        g_byte_array_append(out, bioc->data, bioc->usage);
    }
    qemu_fclose(f);
    object_unref(OBJECT(bioc));
    return ret;
}

int distvm_state_load(const uint8_t *data, size_t len,
                      int (*load)(QEMUFile *f, void *opaque), void *opaque)
{
    QIOChannelBuffer *bioc = qio_channel_buffer_new(len);
    QEMUFile *f;
    int ret;

    memcpy(bioc->data, data, len);
    bioc->usage = len;
    f = qemu_file_new_input(QIO_CHANNEL(bioc));
    ret = load(f, opaque);
    qemu_fclose(f);
    object_unref(OBJECT(bioc));
    return ret;
}

static int vcpu_save(QEMUFile *f, void *opaque)
{
    CPUState *cpu = opaque;
    X86CPU *x86 = X86_CPU(cpu);
    int ret;

    ret = vmstate_save_state(f, &vmstate_cpu_common, cpu, NULL);
    if (!ret) {
        ret = vmstate_save_state(f, &vmstate_x86_cpu, x86, NULL);
    }
    if (!ret) {
        ret = vmstate_save_state(f, &vmstate_apic_common,
                                 APIC_COMMON(x86->apic_state), NULL);
    }
    return ret;
}

bool distvm_vcpu_save(CPUState *cpu, GByteArray *out, Error **errp)
{
    int ret = distvm_state_save(out, 64 * KiB, vcpu_save, cpu);

    if (ret) {
        error_setg(errp, "distvm: cannot serialize vCPU %d: %s",
                   cpu->cpu_index, strerror(-ret));
    }
    return !ret;
}

static int vcpu_load(QEMUFile *f, void *opaque)
{
    CPUState *cpu = opaque;
    X86CPU *x86 = X86_CPU(cpu);
    int ret;

    cpu_synchronize_pre_loadvm(cpu);
    ret = vmstate_load_state(f, &vmstate_cpu_common, cpu,
                             vmstate_cpu_common.version_id);
    if (!ret) {
        ret = vmstate_load_state(f, &vmstate_x86_cpu_incoming, x86,
                                 vmstate_x86_cpu.version_id);
    }
    if (!ret) {
        ret = vmstate_load_state(f, &vmstate_apic_common,
                                 APIC_COMMON(x86->apic_state),
                                 vmstate_apic_common.version_id);
    }
    /*
     * No exception is being delivered in a saved state: not the #DF of a
     * triple fault whose reset a takeover dropped, which would make the
     * next exception a triple fault (as a migration's destination has it)
     */
    x86->env.old_exception = -1;
    return ret;
}

bool distvm_vcpu_load(CPUState *cpu, const uint8_t *state, size_t len,
                      Error **errp)
{
    int ret = distvm_state_load(state, len, vcpu_load, cpu);

    if (!ret) {
        cpu_synchronize_post_init(cpu);
    } else if (ret == -ENOENT) {
        error_setg(errp, "distvm: cannot load vCPU %d: its state has a "
                   "subsection that is unknown here or that only KVM uses",
                   cpu->cpu_index);
    } else {
        error_setg(errp, "distvm: cannot load vCPU %d: %s", cpu->cpu_index,
                   strerror(-ret));
    }
    return !ret;
}

/* ---- source ---- */

/*
 * The pages of guest RAM that @cpu's TLB maps and this node holds, those
 * it may write first (a write TLB entry: the guest's page table marked
 * the page dirty), at most DISTVM_WARM_PAGES_MAX: its code, stack, page
 * tables and data, which it will touch again first on its new node.  On
 * its thread, stopped.  A page that two MMU modes map may come twice; the
 * destination asks for it once.
 */
static uint32_t vcpu_warm_pages(DistvmState *s, CPUState *cpu,
                                DistvmPageRef *out)
{
    g_autofree DistvmPageRef *read = g_new(DistvmPageRef,
                                           DISTVM_WARM_PAGES_MAX);
    uint32_t written = 0, nr_read = 0;

    for (int idx = 0; idx < NB_MMU_MODES; idx++) {
        CPUTLBDescFast *fast = &cpu->neg.tlb.f[idx];
        size_t entries = (fast->mask >> CPU_TLB_ENTRY_BITS) + 1;

        /* Most modes are unused: their tables are empty. */
        if (!cpu->neg.tlb.d[idx].n_used_entries) {
            continue;
        }
        for (size_t i = 0; i < entries && written < DISTVM_WARM_PAGES_MAX;
             i++) {
            CPUTLBEntry *e = &fast->table[i];
            const uintptr_t bad = TLB_INVALID_MASK | TLB_MMIO |
                                  TLB_DISCARD_WRITE;
            bool w = !(e->addr_write & bad);
            uintptr_t addr = w ? e->addr_write : e->addr_read;
            DistvmPageRef pg;

            if ((addr & bad) ||
                !distvm_ram_warm_page(s, (addr & TARGET_PAGE_MASK) +
                                      e->addend, w, &pg)) {
                continue;
            }
            if (pg.flags & DISTVM_WARM_WRITE) {
                out[written++] = pg;
            } else if (nr_read < DISTVM_WARM_PAGES_MAX) {
                read[nr_read++] = pg;
            }
        }
    }
    nr_read = MIN(nr_read, DISTVM_WARM_PAGES_MAX - written);
    memcpy(out + written, read, nr_read * sizeof(*read));
    return written + nr_read;
}

/* On the vCPU's own thread, with the BQL: stop it and serialize it. */
static void vcpu_evict(CPUState *cpu, run_on_cpu_data data)
{
    DistvmState *s = distvm_state();
    DistvmOutgoing *out = data.host_ptr;
    APICCommonState *apic = APIC_COMMON(X86_CPU(cpu)->apic_state);
    Error *err = NULL;

    out->paused_ns = get_clock_realtime();
    qatomic_set(&cpu->parked, true);
    cpu_synchronize_state(cpu);
    out->state = g_byte_array_sized_new(32 * KiB);
    if (!distvm_vcpu_save(cpu, out->state, &err)) {
        error_report_err(err);
        exit(1);
    }
    if (s->warm_pages) {
        out->warm = g_new(DistvmPageRef, DISTVM_WARM_PAGES_MAX);
        out->nr_warm = vcpu_warm_pages(s, cpu, out->warm);
    }
    /* Its LAPIC timer runs on the destination from now on. */
    timer_del(apic->timer);
    trace_distvm_vcpu_evicted(cpu->cpu_index, out->state->len);
    /* Never wait for the network here: the sender thread does. */
    g_async_queue_push(s->vcpus_outgoing, out);
}

static void *vcpu_sender_thread(void *opaque)
{
    DistvmState *s = opaque;

    rcu_register_thread();
    for (;;) {
        DistvmOutgoing *out = g_async_queue_pop(s->vcpus_outgoing);
        g_autoptr(GByteArray) m = g_byte_array_sized_new(out->state->len +
                                                         64);
        DistvmVcpuMove *mv = &s->moves[out->cpu];
        GQueue waiting = G_QUEUE_INIT;
        GQueue ipis = G_QUEUE_INIT;
        DistvmMsgVcpu *req;
        DistvmIpi *ipi;

        distvm_wire_vcpu_move(m, DISTVM_MSG_VCPU_STATE, s->node_id, out->cpu,
                              s->node_id, out->dest, out->reason,
                              out->paused_ns, out->state->data,
                              out->state->len);
        /* The header's sequence number carries the move's generation. */
        stq_le_p(m->data + 16, out->generation);
        if (!distvm_send(s, out->dest, m)) {
            distvm_fatal_node_lost(s, out->dest, "connection closed");
        }
        if (out->warm) {
            distvm_wire_warm_pages(m, s->node_id, out->cpu, out->warm,
                                   out->nr_warm);
            trace_distvm_warm_pages_sent(out->cpu, out->dest, out->nr_warm);
            distvm_send(s, out->dest, m);
        }
        qemu_mutex_lock(&s->lock);
        /* Unless a later move of it was already reported here. */
        if (mv->generation < out->generation) {
            qatomic_set(&s->vcpu_node[out->cpu], out->dest);
            mv->generation = out->generation;
        }
        mv->moving = false;
        waiting = mv->waiting;
        g_queue_init(&mv->waiting);
        ipis = mv->ipis;
        g_queue_init(&mv->ipis);
        qemu_mutex_unlock(&s->lock);

        /* Interrupts and requests that arrived meanwhile follow it. */
        while ((ipi = g_queue_pop_head(&ipis))) {
            vcpu_send_ipi(s, out->dest, ipi->cpu, ipi->delivery);
            g_free(ipi);
        }
        while ((req = g_queue_pop_head(&waiting))) {
            vcpu_send_move(s, out->dest, req->cpu, req->from, req->to,
                           req->reason, req->value);
            g_free(req);
        }
        g_byte_array_unref(out->state);
        g_free(out->warm);
        g_free(out);
    }
    rcu_unregister_thread();
    return NULL;
}

/* Moves of one vCPU that may wait while it moves. */
#define DISTVM_MOVES_WAITING_MAX 64

/* False if the move must wait and DISTVM_MOVES_WAITING_MAX wait already. */
static bool vcpu_move_request(DistvmState *s, const DistvmMsgVcpu *m)
{
    DistvmVcpuMove *mv = &s->moves[m->cpu];
    DistvmOutgoing *out;
    uint32_t owner;

    /*
     * A move the policy decided: its destination admits it first, if it
     * has room, and sends it on to the vCPU's node, which takes it unless
     * the vCPU moved since the policy saw it there.
     */
    /* Nor while a lost node is taken over: home places every vCPU */
    if (!distvm_vcpu_allowed(s, m->cpu, m->to) ||
        !distvm_node_usable(s, m->to) || distvm_recovery_busy(s)) {
        trace_distvm_vcpu_move_disallowed(m->cpu, m->to, m->reason);
        return true;
    }
    if (distvm_move_by_policy(m->reason)) {
        owner = distvm_vcpu_node(s, m->cpu);
        if (m->to == s->node_id && owner != s->node_id) {
            if (distvm_affinity_admit(s, m->cpu, m->from, m->value)) {
                vcpu_send_move(s, owner, m->cpu, m->from, m->to, m->reason,
                               m->value);
            }
            return true;
        }
        if (owner != m->from) {
            return true;
        }
    }
    qemu_mutex_lock(&s->lock);
    if (mv->moving || mv->incoming) {
        bool held = g_queue_get_length(&mv->waiting) <
                    DISTVM_MOVES_WAITING_MAX;

        if (held) {
            g_queue_push_tail(&mv->waiting, g_memdup2(m, sizeof(*m)));
        }
        qemu_mutex_unlock(&s->lock);
        return held;
    }
    owner = s->vcpu_node[m->cpu];
    if (owner != s->node_id || m->to == s->node_id) {
        qemu_mutex_unlock(&s->lock);
        if (owner != s->node_id) {
            /* A stale request: the vCPU went on; send it after it. */
            vcpu_send_move(s, owner, m->cpu, m->from, m->to, m->reason,
                           m->value);
        }
        return true;
    }
    mv->moving = true;
    out = g_new0(DistvmOutgoing, 1);
    out->cpu = m->cpu;
    out->dest = m->to;
    out->reason = m->reason;
    out->generation = mv->generation + 1;
    qemu_mutex_unlock(&s->lock);

    trace_distvm_vcpu_move_start(m->cpu, s->node_id, m->to);
    async_run_on_cpu(qemu_get_cpu(m->cpu), vcpu_evict,
                     RUN_ON_CPU_HOST_PTR(out));
    return true;
}

/* ---- destination ---- */

static void vcpu_moved_event(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgVcpu *m = &msg->u.vcpu;

    qapi_event_send_distvm_vcpu_moved(m->cpu, m->from, m->to,
                                      m->value / 1000, m->reason);
    distvm_placement_notify(s, DISTVM_PLACEMENT_VCPU);
}

/* Loading a vCPU needs the BQL: the main loop does it. */
static void vcpu_state_load(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgVcpu *in = &msg->u.vcpu;
    uint64_t generation = msg->hdr.seq;
    CPUState *cpu = qemu_get_cpu(in->cpu);
    DistvmVcpuMove *mv = &s->moves[in->cpu];
    g_autoptr(GByteArray) moved = g_byte_array_new();
    GQueue waiting = G_QUEUE_INIT;
    GQueue ipis = G_QUEUE_INIT;
    DistvmMsgVcpu *req;
    DistvmIpi *ipi;
    Error *err = NULL;
    uint64_t downtime;

    qemu_mutex_lock(&s->lock);
    if (!mv->incoming) {
        /* Placed by home meanwhile: its sender was lost and taken over */
        qemu_mutex_unlock(&s->lock);
        return;
    }
    qemu_mutex_unlock(&s->lock);
    if (!distvm_vcpu_load(cpu, in->data, in->len, &err)) {
        /* The vCPU, partly loaded and never run here, is lost with it. */
        g_autofree char *why = g_strdup_printf(
            "it sent a state of vCPU %" PRIu32 " that cannot be loaded: %s",
            in->cpu, error_get_pretty(err));

        error_free(err);
        qatomic_inc(&s->protocol_errors);
        distvm_fatal_node_lost(s, in->from, why);
        return;
    }
    qemu_mutex_lock(&s->lock);
    qatomic_set(&s->vcpu_node[in->cpu], s->node_id);
    mv->generation = MAX(mv->generation, generation);
    mv->incoming = false;
    waiting = mv->waiting;
    g_queue_init(&mv->waiting);
    ipis = mv->ipis;
    g_queue_init(&mv->ipis);
    qemu_mutex_unlock(&s->lock);

    qatomic_set(&cpu->parked, false);
    distvm_affinity_arrived(s, in->cpu, in->from, in->reason);
    distvm_ram_vcpu_resumed(s, in->cpu, get_clock_realtime() - in->value);
    distvm_pic_vcpu_arrived(cpu);
    while ((ipi = g_queue_pop_head(&ipis))) {
        vcpu_apply_ipi(s, ipi->cpu, ipi->delivery);
        g_free(ipi);
    }
    qemu_cpu_kick(cpu);
    downtime = get_clock_realtime() - in->value;
    trace_distvm_vcpu_arrived(in->cpu, in->from, downtime / 1000);

    distvm_wire_vcpu_move(moved, DISTVM_MSG_VCPU_MOVED, s->node_id, in->cpu,
                          in->from, s->node_id, in->reason, downtime, NULL,
                          0);
    distvm_wire_set_seq(moved, generation);
    for (uint32_t i = 0; i < s->nodes; i++) {
        distvm_send(s, i, moved);
    }
    /* Fewer than the bound: they were all waiting. */
    while ((req = g_queue_pop_head(&waiting))) {
        vcpu_move_request(s, req);
        g_free(req);
    }
}

/*
 * Whether node @src may send vCPU @m->cpu's state here: it owns the vCPU
 * (its VCPU_MOVED, or the placement, came before on this connection),
 * names this node as the destination, the vCPU is parked here and not
 * arriving already, and the move is newer than any seen here.  With
 * s->lock held.
 */
static const char *vcpu_state_refusal(DistvmState *s, uint32_t src,
                                      const DistvmMsg *msg)
{
    const DistvmMsgVcpu *m = &msg->u.vcpu;
    DistvmVcpuMove *mv = &s->moves[m->cpu];

    if (m->to != s->node_id || m->from != src) {
        return "it names another source or destination";
    }
    if (s->vcpu_node[m->cpu] != src) {
        return "the sender does not run that vCPU";
    }
    if (mv->incoming || !qatomic_read(&qemu_get_cpu(m->cpu)->parked)) {
        return "that vCPU runs here already, or is arriving";
    }
    if (msg->hdr.seq <= mv->generation) {
        return "the move is older than one seen here";
    }
    return NULL;
}

static bool vcpu_state_received(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgVcpu *m = &msg->u.vcpu;
    const char *refusal;

    qemu_mutex_lock(&s->lock);
    refusal = vcpu_state_refusal(s, msg->hdr.src, msg);
    if (!refusal) {
        s->moves[m->cpu].incoming = true;
    }
    qemu_mutex_unlock(&s->lock);
    if (refusal) {
        distvm_msg_refused(s, msg->hdr.src, "VCPU_STATE of vCPU %" PRIu32
                           " (move %" PRIu64 "): %s", m->cpu, msg->hdr.seq,
                           refusal);
        return false;
    }
    distvm_ram_vcpu_incoming(s, m->cpu, m->from, m->value, m->len);
    return true;
}

/*
 * The pages a vCPU arriving here used last on its source.  They come
 * right after its state, from the same node: the vCPU is arriving, or
 * runs here already, and came from that node.
 */
static bool vcpu_warm_pages_received(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgWarmPages *w = &msg->u.warm;
    DistvmArrival arrival;
    bool ok;

    qemu_mutex_lock(&s->lock);
    ok = s->moves[w->cpu].incoming || s->vcpu_node[w->cpu] == s->node_id;
    qemu_mutex_unlock(&s->lock);
    ok = ok && distvm_ram_arrival(s, w->cpu, &arrival) &&
         arrival.from == msg->hdr.src;
    if (!ok) {
        distvm_msg_refused(s, msg->hdr.src, "VCPU_WARM_PAGES of vCPU %"
                           PRIu32 ", which did not come from that node",
                           w->cpu);
        return false;
    }
    return true;
}

/*
 * They are asked for once the vCPU runs (the main loop loaded it first):
 * asking for them takes nothing from its downtime.
 */
static void vcpu_warm_pages_ask(DistvmState *s, const DistvmMsg *msg)
{
    distvm_ram_warm(s, msg->u.warm.cpu, msg->u.warm.pages, msg->u.warm.count);
}

/*
 * Moves of one vCPU are reported by their destinations, over different
 * connections, so a node may learn of two moves in the opposite order:
 * the generation keeps the placement table on the latest.  A node that
 * runs the vCPU knows that it did not go: it stopped it first
 * (vcpu_evict()), before any destination could report it.
 */
static bool vcpu_moved_received(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgVcpu *m = &msg->u.vcpu;
    DistvmVcpuMove *mv = &s->moves[m->cpu];
    const char *refusal = NULL;

    if (m->to != msg->hdr.src) {
        refusal = "only its destination reports a move";
    } else if (m->to != s->node_id &&
               !qatomic_read(&qemu_get_cpu(m->cpu)->parked)) {
        refusal = "that vCPU runs here";
    }
    if (refusal) {
        distvm_msg_refused(s, msg->hdr.src, "VCPU_MOVED of vCPU %" PRIu32
                           " to node %" PRIu32 ": %s", m->cpu, m->to,
                           refusal);
        return false;
    }
    qemu_mutex_lock(&s->lock);
    if (msg->hdr.seq > mv->generation || m->to == s->node_id) {
        mv->generation = MAX(mv->generation, msg->hdr.seq);
        if (!mv->incoming) {
            qatomic_set(&s->vcpu_node[m->cpu], m->to);
        }
    }
    qemu_mutex_unlock(&s->lock);
    qatomic_inc(&s->moves_done);
    qatomic_set(&s->last_downtime_ns, m->value);
    return true;
}

static bool vcpu_move_received(DistvmState *s, const DistvmMsg *msg)
{
    if (!vcpu_move_request(s, &msg->u.vcpu)) {
        distvm_msg_refused(s, msg->hdr.src, "VCPU_MOVE of vCPU %" PRIu32
                           ": %d moves of it wait already", msg->u.vcpu.cpu,
                           DISTVM_MOVES_WAITING_MAX);
        return false;
    }
    return true;
}

/* VCPU_NODES: where vCPU m->cpu may run, from now on */
static bool vcpu_nodes_received(DistvmState *s, const DistvmMsg *msg)
{
    qatomic_set(&s->vcpu_allowed[msg->u.vcpu.cpu], msg->u.vcpu.value);
    trace_distvm_vcpu_nodes(msg->u.vcpu.cpu, msg->u.vcpu.value,
                            msg->hdr.src);
    return true;
}

/*
 * VCPU_WHERE, from home to this node while it joins the running guest:
 * where vCPU m->cpu runs, after msg->hdr.seq moves.  A VCPU_MOVED of its
 * destination may come first or after: the later move wins.
 */
static bool vcpu_where_received(DistvmState *s, const DistvmMsg *msg)
{
    const DistvmMsgVcpu *m = &msg->u.vcpu;
    DistvmVcpuMove *mv = &s->moves[m->cpu];

    if (s->node_id < s->start_nodes || distvm_node_present(s, s->node_id) ||
        m->to == s->node_id) {
        distvm_msg_refused(s, msg->hdr.src, "VCPU_WHERE of vCPU %" PRIu32
                           ": this node is not joining, or would run it",
                           m->cpu);
        return false;
    }
    qemu_mutex_lock(&s->lock);
    if (msg->hdr.seq >= mv->generation) {
        mv->generation = msg->hdr.seq;
        qatomic_set(&s->vcpu_node[m->cpu], m->to);
    }
    qemu_mutex_unlock(&s->lock);
    return true;
}

/*
 * Home, the vCPUs held: @node joins the guest.  Where each vCPU runs,
 * how its LAPIC is addressed and where it may run, as home knows them.
 */
void distvm_vcpu_send_state(DistvmState *s, uint32_t node)
{
    g_autoptr(GByteArray) m = g_byte_array_new();
    CPUState *cpu;

    CPU_FOREACH(cpu) {
        uint32_t i = cpu->cpu_index;
        uint64_t generation;
        uint32_t where;

        qemu_mutex_lock(&s->lock);
        generation = s->moves[i].generation;
        where = s->vcpu_node[i];
        qemu_mutex_unlock(&s->lock);

        g_byte_array_set_size(m, 0);
        distvm_wire_vcpu(m, DISTVM_MSG_VCPU_WHERE, s->node_id, i, s->node_id,
                         where, 0, NULL, 0);
        distvm_wire_set_seq(m, generation);
        distvm_send(s, node, m);

        g_byte_array_set_size(m, 0);
        distvm_wire_vcpu(m, DISTVM_MSG_VCPU_APIC, s->node_id, i, s->node_id,
                         node, apic_addressing_value(
                             APIC_COMMON(X86_CPU(cpu)->apic_state)),
                         NULL, 0);
        distvm_send(s, node, m);

        g_byte_array_set_size(m, 0);
        distvm_wire_vcpu(m, DISTVM_MSG_VCPU_NODES, s->node_id, i, s->node_id,
                         s->node_id, qatomic_read(&s->vcpu_allowed[i]), NULL,
                         0);
        distvm_send(s, node, m);
    }
}

static const DistvmMsgHandler vcpu_handlers[] = {
    { DISTVM_MSG_VCPU_MOVE, .receive = vcpu_move_received },
    { DISTVM_MSG_VCPU_STATE, .receive = vcpu_state_received,
      .main_loop = vcpu_state_load },
    { DISTVM_MSG_VCPU_MOVED, .receive = vcpu_moved_received,
      .main_loop = vcpu_moved_event },
    { DISTVM_MSG_VCPU_IPI, .main_loop = vcpu_ipi_received,
      .main_loop_now = distvm_msg_always, .before_replies = vcpu_ipi_is_smi },
    { DISTVM_MSG_VCPU_APIC, .receive = vcpu_apic_received },
    { DISTVM_MSG_VCPU_NODES, .receive = vcpu_nodes_received },
    { DISTVM_MSG_VCPU_WHERE, .receive = vcpu_where_received },
    { DISTVM_MSG_VCPU_WARM_PAGES, .receive = vcpu_warm_pages_received,
      .main_loop = vcpu_warm_pages_ask },
};

/* ---- set-up and QMP ---- */

void distvm_vcpu_init(DistvmState *s)
{
    vcpu_incoming_init();
    notifier_list_init(&s->placement_notifiers);
    s->moves = g_new0(DistvmVcpuMove, s->nr_vcpus);
    s->vcpu_allowed = g_new(uint32_t, s->nr_vcpus);
    for (unsigned i = 0; i < s->nr_vcpus; i++) {
        s->vcpu_allowed[i] = MAKE_64BIT_MASK(0, s->nodes);
    }
    for (unsigned i = 0; i < s->nr_vcpus; i++) {
        g_queue_init(&s->moves[i].waiting);
        g_queue_init(&s->moves[i].ipis);
    }
    if (s->nodes > 1) {
        apic_remote_deliver_hook = distvm_apic_remote_deliver;
        apic_addressing_hook = distvm_apic_addressing;
        x86_a20_hook = distvm_a20_changed;
    }
    distvm_msg_handlers_register(s, vcpu_handlers, ARRAY_SIZE(vcpu_handlers));
    s->vcpus_outgoing = g_async_queue_new();
}

/*
 * Once the accelerator is set up: if its set-up fails, QEMU frees it, and
 * a thread started before would use it after that.
 */
void distvm_vcpu_start(DistvmState *s)
{
    QemuThread thread;

    qemu_thread_create(&thread, "distvm-vcpu-tx", vcpu_sender_thread, s,
                       QEMU_THREAD_DETACHED);
}

/* Before the guest first runs: park the vCPUs that run elsewhere. */
void distvm_vcpu_park_foreign(DistvmState *s)
{
    CPUState *cpu;

    CPU_FOREACH(cpu) {
        qatomic_set(&cpu->parked,
                    distvm_vcpu_node(s, cpu->cpu_index) != s->node_id);
    }
}

void distvm_vcpu_tell_apic(CPUState *cpu)
{
    distvm_apic_addressing(APIC_COMMON(X86_CPU(cpu)->apic_state));
}

/*
 * The devices' state was loaded (a rollback): the LAPIC timers of the
 * vCPUs that run elsewhere run there, not here.
 */
void distvm_vcpu_stop_foreign_timers(DistvmState *s)
{
    CPUState *cpu;

    CPU_FOREACH(cpu) {
        if (distvm_vcpu_node(s, cpu->cpu_index) != s->node_id) {
            timer_del(APIC_COMMON(X86_CPU(cpu)->apic_state)->timer);
        }
    }
}

/* The accelerator, for a command about vCPU @cpu_index, or NULL */
static DistvmState *vcpu_command_state(int64_t cpu_index, Error **errp)
{
    DistvmState *s = distvm_state();

    if (!s) {
        error_setg(errp, "distvm is not the active accelerator");
        return NULL;
    }
    if (cpu_index < 0 || !qemu_get_cpu(cpu_index)) {
        error_setg(errp, "distvm: there is no vCPU with cpu-index %" PRId64,
                   cpu_index);
        return NULL;
    }
    return s;
}

static bool node_exists(DistvmState *s, uint32_t node, Error **errp)
{
    if (node >= s->nodes) {
        error_setg(errp, "distvm: there is no node %" PRIu32 " (the cluster "
                   "has nodes 0 to %" PRIu32 ")", node, s->nodes - 1);
        return false;
    }
    return true;
}

bool distvm_vcpu_allowed(DistvmState *s, uint32_t cpu, uint32_t node)
{
    return qatomic_read(&s->vcpu_allowed[cpu]) & (1u << node);
}

/* The nodes vCPU @cpu may run on, as "0, 1" */
static char *vcpu_nodes_str(DistvmState *s, uint32_t cpu)
{
    g_autoptr(GString) str = g_string_new("");
    uint32_t allowed = qatomic_read(&s->vcpu_allowed[cpu]);

    for (uint32_t n = 0; n < s->nodes; n++) {
        if (allowed & (1u << n)) {
            g_string_append_printf(str, "%s%" PRIu32, str->len ? ", " : "",
                                   n);
        }
    }
    return g_string_free(g_steal_pointer(&str), false);
}

uint32List *distvm_vcpu_allowed_nodes(DistvmState *s, uint32_t cpu)
{
    uint32_t allowed = qatomic_read(&s->vcpu_allowed[cpu]);
    uint32List *list = NULL, **tail = &list;

    if (allowed == MAKE_64BIT_MASK(0, s->nodes)) {
        return NULL;
    }
    for (uint32_t n = 0; n < s->nodes; n++) {
        if (allowed & (1u << n)) {
            QAPI_LIST_APPEND(tail, n);
        }
    }
    return list;
}

void qmp_distvm_set_vcpu_nodes(int64_t cpu_index, bool has_nodes,
                               uint32List *nodes, Error **errp)
{
    DistvmState *s = vcpu_command_state(cpu_index, errp);
    g_autoptr(GByteArray) m = g_byte_array_new();
    uint32_t allowed = 0;
    uint32_t where;

    if (!s) {
        return;
    }
    if (!has_nodes) {
        allowed = MAKE_64BIT_MASK(0, s->nodes);
    }
    for (uint32List *n = nodes; n; n = n->next) {
        if (!node_exists(s, n->value, errp)) {
            return;
        }
        allowed |= 1u << n->value;
    }
    if (!allowed) {
        error_setg(errp, "distvm: a vCPU must be allowed on a node at least");
        return;
    }
    for (uint32_t i = 0; i < distvm_residency_count(s); i++) {
        const DistvmResident *r = &s->resident[i];

        if (!(allowed & (1u << r->node))) {
            error_setg(errp, "distvm: vCPU %" PRId64 " must be allowed on "
                       "node %" PRIu32 ", where guest RAM %#" PRIx64 "+%#"
                       PRIx64 " is resident: a vCPU that touches it runs "
                       "there", cpu_index, r->node, r->base, r->size);
            return;
        }
    }
    where = distvm_vcpu_node(s, cpu_index);
    if (!(allowed & (1u << where))) {
        error_setg(errp, "distvm: vCPU %" PRId64 " runs on node %" PRIu32
                   ", outside the nodes given; move it into them first",
                   cpu_index, where);
        return;
    }
    if (s->nodes > 1 && s->state != DISTVM_CLUSTER_STATE_RUNNING) {
        error_setg(errp, "distvm: the cluster has not formed yet");
        return;
    }
    distvm_wire_vcpu(m, DISTVM_MSG_VCPU_NODES, s->node_id, cpu_index,
                     s->node_id, s->node_id, allowed, NULL, 0);
    for (uint32_t n = 0; n < s->nodes; n++) {
        if (distvm_node_present(s, n) && !distvm_send(s, n, m)) {
            distvm_fatal_node_lost(s, n, "connection closed");
        }
    }
}

/* A move asked for by a command or by the guest, from any node. */
static bool vcpu_move_asked(int64_t cpu_index, uint32_t node,
                            uint32_t reason, Error **errp)
{
    DistvmState *s = vcpu_command_state(cpu_index, errp);
    uint32_t owner;

    if (!s || !node_exists(s, node, errp)) {
        return false;
    }
    if (!distvm_node_present(s, node)) {
        error_setg(errp, "distvm: node %" PRIu32 " is not part of the "
                   "cluster: it has not joined (start-nodes=%" PRIu32 "), "
                   "or it left", node, s->start_nodes);
        return false;
    }
    if (!distvm_node_usable(s, node)) {
        error_setg(errp, "distvm: node %" PRIu32 " is being drained",
                   node);
        return false;
    }
    if (!distvm_vcpu_allowed(s, cpu_index, node)) {
        g_autofree char *nodes = vcpu_nodes_str(s, cpu_index);

        error_setg(errp, "distvm: vCPU %" PRId64 " may run only on nodes %s "
                   "(distvm-set-vcpu-nodes), not on node %" PRIu32,
                   cpu_index, nodes, node);
        return false;
    }
    owner = distvm_vcpu_node(s, cpu_index);
    if (owner == node) {
        return true;
    }
    if (s->state != DISTVM_CLUSTER_STATE_RUNNING) {
        error_setg(errp, "distvm: the cluster has not formed yet");
        return false;
    }
    if (distvm_recovery_busy(s)) {
        error_setg(errp, "distvm: the cluster is taking a lost node's part "
                   "over; try again once DISTVM_RECOVERED came");
        return false;
    }
    vcpu_send_move(s, owner, cpu_index, s->node_id, node, reason, 0);
    return true;
}

void qmp_distvm_move_vcpu(int64_t cpu_index, uint32_t node, Error **errp)
{
    vcpu_move_asked(cpu_index, node, DISTVM_MOVE_COMMAND, errp);
}

bool distvm_guest_move_vcpu(unsigned cpu_index, uint32_t node, Error **errp)
{
    return vcpu_move_asked(cpu_index, node, DISTVM_MOVE_GUEST, errp);
}

void distvm_vcpu_request_move(DistvmState *s, uint32_t cpu, uint32_t node,
                              uint32_t to, uint32_t reason, uint64_t value)
{
    vcpu_send_move(s, node, cpu, s->node_id, to, reason, value);
}

bool distvm_vcpu_moving(DistvmState *s, uint32_t cpu)
{
    bool moving;

    qemu_mutex_lock(&s->lock);
    moving = s->moves[cpu].moving || s->moves[cpu].incoming;
    qemu_mutex_unlock(&s->lock);
    return moving;
}

/* Whether vCPU @cpu is being stopped and sent away from this node */
bool distvm_vcpu_sending(DistvmState *s, uint32_t cpu)
{
    bool sending;

    qemu_mutex_lock(&s->lock);
    sending = s->moves[cpu].moving;
    qemu_mutex_unlock(&s->lock);
    return sending;
}

/*
 * Taking over a lost node (distvm-recovery.c), with the guest paused:
 * the moves of vCPU @cpu seen here, and in @runs whether it runs here
 * (not on its way out or in)
 */
uint64_t distvm_vcpu_seen(DistvmState *s, uint32_t cpu, bool *runs)
{
    DistvmVcpuMove *mv = &s->moves[cpu];
    uint64_t generation;

    qemu_mutex_lock(&s->lock);
    generation = mv->generation;
    *runs = s->vcpu_node[cpu] == s->node_id && !mv->moving &&
            !mv->incoming && !qatomic_read(&qemu_get_cpu(cpu)->parked);
    qemu_mutex_unlock(&s->lock);
    return generation;
}

/*
 * ... vCPU @cpu runs on @node from now on, as home placed it, as its
 * move @generation: moves and interrupts held for it are dropped (the
 * guest rolls back to a state saved before them).  Unparked if @node is
 * this node (its committed state is loaded by the rollback that
 * follows), parked if it ran here.
 */
void distvm_vcpu_place(DistvmState *s, uint32_t cpu, uint32_t node,
                       uint64_t generation)
{
    DistvmVcpuMove *mv = &s->moves[cpu];
    CPUState *cs = qemu_get_cpu(cpu);

    qemu_mutex_lock(&s->lock);
    qatomic_set(&s->vcpu_node[cpu], node);
    mv->generation = MAX(mv->generation, generation);
    mv->moving = false;
    mv->incoming = false;
    g_queue_clear_full(&mv->waiting, g_free);
    g_queue_clear_full(&mv->ipis, g_free);
    qemu_mutex_unlock(&s->lock);
    if (node == s->node_id && qatomic_read(&cs->parked)) {
        qatomic_set(&cs->parked, false);
        distvm_pic_vcpu_arrived(cs);
        qemu_cpu_kick(cs);
    } else if (node != s->node_id && !qatomic_read(&cs->parked)) {
        qatomic_set(&cs->parked, true);
        timer_del(APIC_COMMON(X86_CPU(cs)->apic_state)->timer);
        qemu_cpu_kick(cs);
    }
}
