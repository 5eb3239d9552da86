/*
 * distvm bare-metal SMP test guest: finding a PCI device that sends MSIs
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdint.h>
#include "guest-hw.h"

/*
 * The device @id (device << 16 | vendor) on bus 0 with an MSI
 * capability: its address, the capability and its BAR 0, which it may
 * decode from now on, as it may master the bus.  0 if there is none.
 */
int pci_find_msi(uint32_t id, uint32_t *bdf, uint32_t *msi_cap,
                 uint32_t *mmio)
{
    for (uint32_t dev = 0; dev < 32; dev++) {
        uint32_t d = dev << 3, cap;

        if (pci_read(d, 0) != id) {
            continue;
        }
        for (cap = pci_read(d, PCI_CAP_PTR) & 0xfc; cap;
             cap = (pci_read(d, cap) >> 8) & 0xfc) {
            if ((pci_read(d, cap) & 0xff) == PCI_CAP_MSI) {
                *bdf = d;
                *msi_cap = cap;
                *mmio = pci_read(d, PCI_BAR0) & ~0xfu;
                pci_write(d, PCI_COMMAND, pci_read(d, PCI_COMMAND) |
                          PCI_CMD_MEMORY | PCI_CMD_MASTER);
                return *mmio != 0;
            }
        }
    }
    return 0;
}
