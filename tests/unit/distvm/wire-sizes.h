/*
 * distvm wire protocol tests: the fixed part of each message's payload,
 * in bytes, shared by the unit test and the fuzz target
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef DISTVM_WIRE_SIZES_H
#define DISTVM_WIRE_SIZES_H

#define HDR DISTVM_WIRE_HDR_SIZE
#define PAGE_FIXED 24           /* block, flags, page, node, reserved */
#define VCPU_FIXED 24           /* cpu, from, to, reason, value */
#define PCI_FIXED 16            /* path length, addr, val, len; + path */
#define NET_CTRL_FIXED 8        /* path length, command length; + both */
#define NET_PAIR_FIXED 24       /* path length, step, pair, node, queue, move */
#define IO_FIXED 32             /* cpu, space, size, flags, addr, data */
#define RUN_FIXED 48            /* action, reserved, five clocks */
#define PIC_FIXED 4             /* level */
#define DEVICE_HOME_FIXED 4     /* device */
#define DEVICE_AWAY_FIXED 8     /* device, node; + state */
#define FLOW_FIXED 8            /* done */
#define CLOCK_FIXED 32          /* flags, PM port, HPET base, counter, offset */
#define MEM_PLUG_FIXED 24       /* slot, size, three lengths; + strings */
#define MEM_ACK_FIXED 8         /* slot, error length; + error */
#define MEM_UNPLUG_FIXED 4      /* slot */
#define CPU_PLUG_FIXED 8        /* cpu, device length; + device */
#define CPU_ACK_FIXED 8         /* cpu, error length; + error */
#define CPU_UNPLUG_FIXED 4      /* cpu */
#define RES_FIXED 24            /* addr, size, flags, data */
#define MGR_MOVE_FIXED 12       /* step, from, to */
#define MGR_ENTRIES_FIXED 16    /* block, count, first; + entries */
#define EPOCH_FIXED 32          /* step, node, epoch, bytes, vCPUs, 0 */
#define EPOCH_PAGES_FIXED 16    /* epoch, block, count; + pages */
#define EPOCH_PAGE_HDR 12       /* a page's number, flags; + its data */
#define EPOCH_SLOT_SIZE 4       /* a DELTA or SLOT page's slot, after flags */
#define EPOCH_STATE_FIXED 24    /* epoch, kind, index, total, offset; + data */
#define INTX_FIXED 8
#define RES_SET_FIXED 24        /* base, size, node, step */

#endif /* DISTVM_WIRE_SIZES_H */
