/*
 * distvm: one guest spread over several QEMU processes
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef SYSTEM_DISTVM_H
#define SYSTEM_DISTVM_H

#include "qemu/accel.h"

#define TYPE_DISTVM_ACCEL ACCEL_CLASS_NAME("distvm")

/* Nodes a cluster may have; node ids are 0 .. DISTVM_MAX_NODES - 1. */
#define DISTVM_MAX_NODES 16

/* The node that owns devices and, at power-on, all guest RAM. */
#define DISTVM_HOME_NODE 0

extern bool distvm_allowed;

static inline bool distvm_enabled(void)
{
    return distvm_allowed;
}

#endif /* SYSTEM_DISTVM_H */
