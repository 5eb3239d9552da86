/*
 * distvm: the 8259 PIC of the home node, for vCPUs wherever they run
 *
 * The guest's PIC is the home node's.  Its output (INTR) reaches the
 * vCPUs that accept it: through LINT0 of their LAPIC in ExtINT mode, or
 * the boot vCPU directly while its LAPIC is disabled.  The home node sends
 * each change of that output to the other nodes, which keep it (their
 * pic_get_output() answers with it) and signal it to the vCPUs they run;
 * their own PIC, which the guest never programs, reaches no vCPU.  A vCPU
 * away from home that takes the interrupt does the acknowledge cycle on
 * the home node's PIC, which returns the vector (an IO_REQ of space
 * DISTVM_IO_PIC_ACK).
 *
 * The acknowledge usually lowers the output.  That change reaches the
 * vCPU's node before the reply (both come on the home node's connection),
 * and the vCPU applies it to itself at once, as a single QEMU process
 * does inside pic_read_irq(): otherwise it would see the interrupt still
 * pending when its handler returns, and read a spurious vector.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "hw/core/cpu.h"
#include "hw/i386/x86.h"
#include "hw/intc/i8259.h"
#include "distvm-internal.h"
#include "trace.h"

/* Signal @level to the vCPUs that run here. */
static void pic_signal_vcpus(int level)
{
    CPUState *cs;

    CPU_FOREACH(cs) {
        if (!qatomic_read(&cs->parked)) {
            x86_cpu_pic_deliver(cs, level);
        }
    }
}

/* The PIC's output changed, under the BQL. */
static bool distvm_pic_output_changed(int level)
{
    DistvmState *s = distvm_state();
    g_autoptr(GByteArray) m = NULL;

    if (!distvm_is_home(s)) {
        return true;            /* not the guest's PIC */
    }
    level = !!level;
    if (level == s->pic_output_sent ||
        qatomic_read(&s->state) != DISTVM_CLUSTER_STATE_RUNNING) {
        return false;
    }
    s->pic_output_sent = level;
    trace_distvm_pic_output_send(level);
    m = g_byte_array_new();
    distvm_wire_pic_output(m, s->node_id, level);
    for (uint32_t i = 0; i < s->nodes; i++) {
        if (i != s->node_id) {
            distvm_send(s, i, m);
        }
    }
    distvm_flow_sent(s, (uint32_t)~BIT(s->node_id));
    return false;
}

/*
 * Home, under the BQL, its devices' state loaded (a rollback, or in the
 * place of a home lost): the other nodes take the PIC's output again.
 */
void distvm_pic_output_resend(DistvmState *s)
{
    if (isa_pic) {
        s->pic_output_sent = -1;
        distvm_pic_output_changed(pic_get_output(isa_pic));
    }
}

/* Not home: pic_get_output() and pic_read_irq() of the guest's PIC. */
static int distvm_pic_remote(bool acknowledge)
{
    DistvmState *s = distvm_state();
    uint64_t vector = 0;

    if (!distvm_io_forwarded(s)) {
        return -1;
    }
    if (!acknowledge) {
        return qatomic_read(&s->pic_home_output);
    }
    if (!current_cpu) {
        /* This node's own I/O APIC in ExtINT mode: not the guest's. */
        return -1;
    }
    if (distvm_io_forward(s, current_cpu, DISTVM_IO_PIC_ACK, 0, &vector, 1,
                          false) != MEMTX_OK) {
        return -1;              /* shutting down */
    }
    trace_distvm_pic_acknowledge(current_cpu->cpu_index, vector,
                                 qatomic_read(&s->pic_home_output));
    x86_cpu_pic_deliver(current_cpu, qatomic_read(&s->pic_home_output));
    return vector;
}

/* Home: the acknowledge cycle of a vCPU away from home, under the BQL. */
uint8_t distvm_pic_acknowledge(void)
{
    return isa_pic ? pic_read_irq(isa_pic) : 0;
}

/*
 * Not home: the level is kept at once, for the acknowledge that may be
 * waiting for the reply behind this message, and signalled to the vCPUs
 * by the main loop.
 */
static bool pic_output_received(DistvmState *s, const DistvmMsg *msg)
{
    qatomic_set(&s->pic_home_output, msg->u.level);
    return true;
}

static void pic_output_signal(DistvmState *s, const DistvmMsg *msg)
{
    pic_signal_vcpus(qatomic_read(&s->pic_home_output));
}

/*
 * A vCPU starts running here, under the BQL: it missed the changes of
 * the output made while it moved.
 */
void distvm_pic_vcpu_arrived(CPUState *cs)
{
    DistvmState *s = distvm_state();

    if (s->nodes == 1 || !isa_pic) {
        return;
    }
    x86_cpu_pic_deliver(cs, distvm_is_home(s) ?
                            pic_get_output(isa_pic) :
                            qatomic_read(&s->pic_home_output));
}

static const DistvmMsgHandler pic_handlers[] = {
    { DISTVM_MSG_PIC_OUTPUT, .receive = pic_output_received,
      .main_loop = pic_output_signal },
};

void distvm_pic_init(DistvmState *s)
{
    distvm_msg_handlers_register(s, pic_handlers, ARRAY_SIZE(pic_handlers));
    x86_pic_output_hook = distvm_pic_output_changed;
    if (!distvm_is_home(s)) {
        pic_remote_hook = distvm_pic_remote;
    }
}
