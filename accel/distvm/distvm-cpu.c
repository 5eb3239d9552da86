/*
 * distvm: vCPU accelerator interface
 *
 * The accelerator framework looks for "<accel>-accel-<cpu type>" to set up
 * the vCPU class; distvm vCPUs are TCG vCPUs.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "cpu.h"
#include "accel/accel-cpu-target.h"

static const TypeInfo distvm_cpu_accel_type = {
    .name = ACCEL_CPU_NAME("distvm"),
    .parent = ACCEL_CPU_NAME("tcg"),
    .abstract = true,
};

static void distvm_cpu_register_types(void)
{
    type_register_static(&distvm_cpu_accel_type);
}

type_init(distvm_cpu_register_types);
