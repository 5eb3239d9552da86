/*
 * distvm: accelerator state shared by the files of accel/distvm
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ACCEL_DISTVM_INTERNAL_H
#define ACCEL_DISTVM_INTERNAL_H

#include "system/distvm.h"
#include "accel/tcg/tcg-accel-state.h"
#include "qapi/qapi-types-sockets.h"

OBJECT_DECLARE_TYPE(DistvmState, DistvmAccelClass, DISTVM_ACCEL)

struct DistvmState {
    TCGState parent_obj;

    /* -accel distvm properties */
    uint32_t node_id;
    uint32_t nodes;
    char *listen;               /* as given, "tcp:HOST:PORT" or "unix:PATH" */
    char *home;
    SocketAddress *listen_addr; /* parsed from @listen */
    SocketAddress *home_addr;   /* parsed from @home */

    /* vCPU placement: vcpu_node[cpu_index] is the node running it. */
    unsigned nr_vcpus;
    uint32_t *vcpu_node;
};

struct DistvmAccelClass {
    AccelClass parent_class;

    int (*parent_init_machine)(MachineState *ms);
};

/* The active distvm accelerator, or NULL when another one runs. */
DistvmState *distvm_state(void);

/* The node running vCPU @cpu_index. */
uint32_t distvm_vcpu_node(DistvmState *s, int cpu_index);

#endif /* ACCEL_DISTVM_INTERNAL_H */
