/*
 * distvm: vCPU accelerator interface
 *
 * The accelerator framework looks for "<accel>-accel-<cpu type>" to set up
 * the vCPU class; distvm vCPUs are TCG vCPUs that tell the guest their
 * TSC is invariant.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "cpu.h"
#include "accel/accel-cpu-target.h"
#include "accel/tcg/cpu-ops.h"
#include "hw/boards.h"
#include "distvm-internal.h"

#define CPUID_APM_LEAF  0x80000007

static bool (*tcg_cpu_target_realize)(CPUState *cs, Error **errp);
static void (*tcg_cpu_class_init)(CPUClass *cc);
static void (*target_init_accel_cpu)(AccelCPUClass *acc, CPUClass *cc);
/* The target's TCG operations, with distvm's around cpu_exec() */
static const TCGCPUOps *target_tcg_ops;
static TCGCPUOps distvm_tcg_ops;

/*
 * The guest's TSC is the host's, and every node takes the home node's
 * TSC offset each time the guest runs (distvm-runstate.c): it is
 * invariant and consistent across nodes and moves.  CPUID says so
 * (invariant TSC), so that an unmodified Linux keeps the TSC as its
 * clocksource.  Otherwise it keeps time with the HPET, and every clock
 * read of a vCPU away from home is a round trip to the home node.
 *
 * CPUID also lists IA32_TSC_ADJUST, which TCG reads as 0: nothing ever
 * adjusts this TSC, and with an invariant TSC that has TSC_ADJUST, Linux
 * (on up to 2 or 4 NUMA nodes, by version) trusts the TSC without the
 * clocksource watchdog.  The watchdog compares the TSC with the HPET and
 * gives up on the TSC when two HPET reads on either side of a TSC read
 * are too far apart, as they sometimes are on a vCPU away from home
 * that stalls between them.
 *
 * TCG does not list these bits as ones it supports: they are set once
 * the vCPU's features were filtered.
 */
static bool distvm_cpu_target_realize(CPUState *cs, Error **errp)
{
    CPUX86State *env = cpu_env(cs);

    if (!tcg_cpu_target_realize(cs, errp)) {
        return false;
    }
    if (env->cpuid_xlevel >= CPUID_APM_LEAF) {
        env->features[FEAT_8000_0007_EDX] |= CPUID_APM_INVTSC;
    }
    if (env->cpuid_level >= 7) {
        env->features[FEAT_7_0_EBX] |= CPUID_7_0_EBX_TSC_ADJUST;
    }
    distvm_numa_plan(distvm_state(), MACHINE(qdev_get_machine()));
    distvm_cpuplug_realize(distvm_state(), cs);
    return true;
}

/*
 * The remote TLB flushes of distvm-tlbflush.c need to know when a vCPU
 * is in the guest's code: not waited for while it is not, it flushes
 * its TLB as it enters.
 */
static void distvm_cpu_exec_enter(CPUState *cs)
{
    if (distvm_state()->tlbflush) {
        distvm_tlb_flush_exec_enter(cs);
    }
    if (target_tcg_ops->cpu_exec_enter) {
        target_tcg_ops->cpu_exec_enter(cs);
    }
}

static void distvm_cpu_exec_exit(CPUState *cs)
{
    if (target_tcg_ops->cpu_exec_exit) {
        target_tcg_ops->cpu_exec_exit(cs);
    }
    if (distvm_state()->tlbflush) {
        distvm_tlb_flush_exec_exit(cs);
    }
}

static void distvm_init_accel_cpu(AccelCPUClass *acc, CPUClass *cc)
{
    target_init_accel_cpu(acc, cc);
    /* Every x86 CPU model has the same operations */
    assert(!target_tcg_ops || cc->tcg_ops == target_tcg_ops);
    target_tcg_ops = cc->tcg_ops;
    distvm_tcg_ops = *target_tcg_ops;
    distvm_tcg_ops.cpu_exec_enter = distvm_cpu_exec_enter;
    distvm_tcg_ops.cpu_exec_exit = distvm_cpu_exec_exit;
    cc->tcg_ops = &distvm_tcg_ops;
}

static void distvm_cpu_class_init(CPUClass *cc)
{
    tcg_cpu_class_init(cc);
    target_init_accel_cpu = cc->init_accel_cpu;
    cc->init_accel_cpu = distvm_init_accel_cpu;
}

static void distvm_cpu_accel_class_init(ObjectClass *oc, void *data)
{
    AccelCPUClass *acc = ACCEL_CPU_CLASS(oc);

    tcg_cpu_target_realize = acc->cpu_target_realize;
    acc->cpu_target_realize = distvm_cpu_target_realize;
    tcg_cpu_class_init = acc->cpu_class_init;
    acc->cpu_class_init = distvm_cpu_class_init;
}

static const TypeInfo distvm_cpu_accel_type = {
    .name = ACCEL_CPU_NAME("distvm"),
    .parent = ACCEL_CPU_NAME("tcg"),
    .class_init = distvm_cpu_accel_class_init,
    .abstract = true,
};

static void distvm_cpu_register_types(void)
{
    type_register_static(&distvm_cpu_accel_type);
}

type_init(distvm_cpu_register_types);
