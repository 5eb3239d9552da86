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
#include "hw/boards.h"
#include "distvm-internal.h"

#define CPUID_APM_LEAF  0x80000007

static bool (*tcg_cpu_target_realize)(CPUState *cs, Error **errp);

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

static void distvm_cpu_accel_class_init(ObjectClass *oc, void *data)
{
    AccelCPUClass *acc = ACCEL_CPU_CLASS(oc);

    tcg_cpu_target_realize = acc->cpu_target_realize;
    acc->cpu_target_realize = distvm_cpu_target_realize;
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
