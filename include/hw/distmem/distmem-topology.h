/*
 * distmem-topology: where a distvm cluster runs the guest's vCPUs and
 * memory, as registers the guest reads (docs/specs/distmem-topology.rst)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_DISTMEM_TOPOLOGY_H
#define HW_DISTMEM_TOPOLOGY_H

#define TYPE_DISTMEM_TOPOLOGY "distmem-topology"

/* An ID of the range left for experiments (docs/specs/pci-ids.rst) */
#define DISTMEM_TOPOLOGY_VENDOR_ID      0x1af4
#define DISTMEM_TOPOLOGY_DEVICE_ID      0x10f0

/* BAR 0: 32-bit registers, little-endian */
#define DISTMEM_TOPOLOGY_BAR_SIZE       0x2000
#define DISTMEM_TOPOLOGY_MAGIC          0x000   /* "DTOP" */
#define DISTMEM_TOPOLOGY_VERSION        0x004
#define DISTMEM_TOPOLOGY_VCPUS          0x008
#define DISTMEM_TOPOLOGY_NODES          0x00c
#define DISTMEM_TOPOLOGY_GENERATION     0x010
#define DISTMEM_TOPOLOGY_INT_STATUS     0x014
#define DISTMEM_TOPOLOGY_INT_MASK       0x018
#define DISTMEM_TOPOLOGY_RANGES         0x01c
#define DISTMEM_TOPOLOGY_REQ_VCPU       0x020
#define DISTMEM_TOPOLOGY_REQ_NODE       0x024
#define DISTMEM_TOPOLOGY_REQ_ADDR_LO    0x028
#define DISTMEM_TOPOLOGY_REQ_ADDR_HI    0x02c
#define DISTMEM_TOPOLOGY_REQ_CMD        0x030
#define DISTMEM_TOPOLOGY_REQ_STATUS     0x034
#define DISTMEM_TOPOLOGY_RANGE_TABLE    0x800   /* RANGES entries */
#define DISTMEM_TOPOLOGY_RANGE_SIZE     0x20
#define DISTMEM_TOPOLOGY_RANGE_MAX      64
#define DISTMEM_TOPOLOGY_VCPU_TABLE     0x1000  /* VCPUS entries */
#define DISTMEM_TOPOLOGY_VCPU_MAX       1024

#define DISTMEM_TOPOLOGY_MAGIC_VALUE    0x504f5444u
#define DISTMEM_TOPOLOGY_VERSION_VALUE  1

/* An entry of the range table, from its start */
#define DISTMEM_TOPOLOGY_RANGE_BASE_LO  0x00
#define DISTMEM_TOPOLOGY_RANGE_BASE_HI  0x04
#define DISTMEM_TOPOLOGY_RANGE_SIZE_LO  0x08
#define DISTMEM_TOPOLOGY_RANGE_SIZE_HI  0x0c
#define DISTMEM_TOPOLOGY_RANGE_NODE     0x10
#define DISTMEM_TOPOLOGY_RANGE_FLAGS    0x14
#define DISTMEM_TOPOLOGY_RANGE_HOMED    (1u << 0)

/* INT_STATUS and INT_MASK */
#define DISTMEM_TOPOLOGY_INT_CHANGED    (1u << 0)

/* REQ_CMD */
#define DISTMEM_TOPOLOGY_CMD_TO_NODE    1   /* REQ_VCPU to REQ_NODE */
#define DISTMEM_TOPOLOGY_CMD_TO_ADDR    2   /* to the node homing REQ_ADDR */

/* REQ_STATUS */
#define DISTMEM_TOPOLOGY_ST_NONE        0   /* no request yet */
#define DISTMEM_TOPOLOGY_ST_STARTED     1   /* the move started */
#define DISTMEM_TOPOLOGY_ST_THERE       2   /* it runs there already */
#define DISTMEM_TOPOLOGY_ST_BAD_CMD     0x80
#define DISTMEM_TOPOLOGY_ST_NO_VCPU     0x81
#define DISTMEM_TOPOLOGY_ST_NO_NODE     0x82
#define DISTMEM_TOPOLOGY_ST_NO_RAM      0x83
#define DISTMEM_TOPOLOGY_ST_REFUSED     0x84

#endif /* HW_DISTMEM_TOPOLOGY_H */
