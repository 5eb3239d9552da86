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
 * read of a vCPU away from home is a round trip to the home node.  TCG
 * does not list the bit as one it supports: it is set once the vCPU's
 * features were filtered.
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
    distvm_numa_plan(distvm_state(), MACHINE(qdev_get_machine()));
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
