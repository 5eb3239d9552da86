/*
 * distvm Linux test guest: what distvm-check dimm writes into the pages
 * of a distmem-dimm, which the qtest reads back by physical address
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef DISTVM_DIMM_PATTERN_H
#define DISTVM_DIMM_PATTERN_H

#include <stdint.h>

/* Pages reported, at most */
#define DIMM_PATTERN_PAGES_SHOWN    8

/* The 8-byte word at guest-physical address @addr */
static inline uint64_t dimm_pattern(uint64_t addr)
{
    return addr * 0x9e3779b97f4a7c15ull ^ 0xd157d1a4ull;
}

#endif /* DISTVM_DIMM_PATTERN_H */
