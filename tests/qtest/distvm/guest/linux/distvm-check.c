/*
 * distvm-check: the Linux test guest's data generator and checker
 *
 *   distvm-check gen BYTES      write BYTES of a fixed, compressible
 *                               sequence to standard output
 *   distvm-check verify BYTES   read standard input and check that it is
 *                               exactly what "gen BYTES" writes
 *   distvm-check dimm BASE SIZE MB
 *                               on the CPU it runs on, take MB MiB of
 *                               memory, write dimm_pattern() into each of
 *                               its pages that lies in guest-physical
 *                               [BASE, BASE + SIZE), report them, and
 *                               hold them until killed
 *   distvm-check topology       print what the distmem-topology device
 *                               says: generation and the node of each
 *                               vCPU, read through sysfs
 *
 * The guest pipes "gen" through a multi-threaded xz compression and
 * decompression into "verify"; "verify" prints one line the qtest looks
 * for, and exits 1 on the first difference.  Built statically with the
 * host's compiler.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "dimm-pattern.h"
#include "hw/distmem/distmem-topology.h"

#define PAGE_SIZE       4096
#define PAGEMAP_PRESENT (1ull << 63)
#define PAGEMAP_PFN     ((1ull << 55) - 1)

/* Byte @i of the sequence: words of a slow counter and a little noise. */
static unsigned char seq_byte(uint64_t i)
{
    uint64_t word = i / 8;
    uint64_t x = (word / 64) * 0x9e3779b97f4a7c15ull;

    x ^= (word % 7) << 5;
    return (unsigned char)(x >> ((i % 8) * 8));
}

static int gen(uint64_t bytes)
{
    unsigned char buf[65536];

    for (uint64_t done = 0; done < bytes;) {
        size_t n = bytes - done < sizeof(buf) ? bytes - done : sizeof(buf);

        for (size_t k = 0; k < n; k++) {
            buf[k] = seq_byte(done + k);
        }
        if (fwrite(buf, 1, n, stdout) != n) {
            perror("distvm-check gen");
            return 1;
        }
        done += n;
    }
    return fflush(stdout) ? 1 : 0;
}

static int verify(uint64_t bytes)
{
    unsigned char buf[65536];
    uint64_t got = 0;
    size_t n;

    while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
        for (size_t k = 0; k < n; k++) {
            if (got + k >= bytes || buf[k] != seq_byte(got + k)) {
                printf("distvm-linux: FAIL xz round trip differs at byte "
                       "%llu\n", (unsigned long long)(got + k));
                return 1;
            }
        }
        got += n;
    }
    if (got != bytes) {
        printf("distvm-linux: FAIL xz round trip gave %llu of %llu bytes\n",
               (unsigned long long)got, (unsigned long long)bytes);
        return 1;
    }
    printf("distvm-linux: xz round trip ok %llu bytes\n",
           (unsigned long long)bytes);
    return 0;
}

static int dimm(uint64_t base, uint64_t size, uint64_t mb)
{
    size_t len = mb << 20;
    unsigned char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1,
                              0);
    int fd = open("/proc/self/pagemap", O_RDONLY);
    uint64_t found = 0;

    if (mem == MAP_FAILED || fd < 0 || mlock(mem, len)) {
        perror("distvm-check dimm");
        return 1;
    }
    for (size_t off = 0; off < len; off += PAGE_SIZE) {
        uint64_t entry, addr;

        mem[off] = 1;                   /* a page of its own, not zero's */
        if (pread(fd, &entry, sizeof(entry),
                  (uintptr_t)(mem + off) / PAGE_SIZE * sizeof(entry)) !=
            sizeof(entry) ||
            !(entry & PAGEMAP_PRESENT)) {
            printf("distvm-linux: FAIL no physical page for offset %zu\n",
                   off);
            return 1;
        }
        addr = (entry & PAGEMAP_PFN) * PAGE_SIZE;
        if (addr - base >= size) {
            continue;
        }
        for (size_t w = 0; w < PAGE_SIZE; w += 8) {
            *(volatile uint64_t *)(mem + off + w) = dimm_pattern(addr + w);
        }
        if (found < DIMM_PATTERN_PAGES_SHOWN) {
            printf("distvm-linux: dimm page 0x%llx\n",
                   (unsigned long long)addr);
        }
        found++;
    }
    printf("distvm-linux: dimm pages %llu written\n",
           (unsigned long long)found);
    fflush(stdout);
    for (;;) {
        pause();
    }
}

/* The first line of sysfs file @dir/@name, as a number */
static unsigned long sysfs_number(const char *dir, const char *name)
{
    char path[512], buf[64] = "";
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "r");
    if (f) {
        if (!fgets(buf, sizeof(buf), f)) {
            buf[0] = 0;
        }
        fclose(f);
    }
    return strtoul(buf, NULL, 0);
}

static int topology(void)
{
    char dir[512], path[600];
    volatile uint32_t *regs;
    uint32_t gen, vcpus;
    FILE *enable;
    int fd = -1;

    for (int dev = 0; dev < 32 && fd < 0; dev++) {
        snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/0000:00:%02x.0",
                 dev);
        if (sysfs_number(dir, "vendor") == DISTMEM_TOPOLOGY_VENDOR_ID &&
            sysfs_number(dir, "device") == DISTMEM_TOPOLOGY_DEVICE_ID) {
            /* With no driver, the device may not decode its BAR yet */
            snprintf(path, sizeof(path), "%s/enable", dir);
            enable = fopen(path, "w");
            if (enable) {
                fputs("1", enable);
                fclose(enable);
            }
            snprintf(path, sizeof(path), "%s/resource0", dir);
            fd = open(path, O_RDWR | O_SYNC);
        }
    }
    if (fd < 0) {
        printf("distvm-linux: FAIL no distmem-topology device\n");
        return 1;
    }
    regs = mmap(NULL, DISTMEM_TOPOLOGY_BAR_SIZE, PROT_READ | PROT_WRITE,
                MAP_SHARED, fd, 0);
    if (regs == MAP_FAILED) {
        perror("distvm-check topology");
        return 1;
    }
    if (regs[DISTMEM_TOPOLOGY_MAGIC / 4] != DISTMEM_TOPOLOGY_MAGIC_VALUE) {
        printf("distvm-linux: FAIL distmem-topology magic %#x\n",
               regs[DISTMEM_TOPOLOGY_MAGIC / 4]);
        return 1;
    }
    vcpus = regs[DISTMEM_TOPOLOGY_VCPUS / 4];
    do {
        gen = regs[DISTMEM_TOPOLOGY_GENERATION / 4];
        printf("distvm-linux: topology nodes %u generation %u vcpus",
               regs[DISTMEM_TOPOLOGY_NODES / 4], gen);
        for (uint32_t cpu = 0; cpu < vcpus; cpu++) {
            printf(" %u", regs[DISTMEM_TOPOLOGY_VCPU_TABLE / 4 + cpu]);
        }
        /* BASE+SIZE@NODE, and h if homed there, for each range */
        printf("\ndistvm-linux: topology-ranges");
        for (uint32_t i = 0; i < regs[DISTMEM_TOPOLOGY_RANGES / 4]; i++) {
            volatile uint32_t *r = regs + (DISTMEM_TOPOLOGY_RANGE_TABLE +
                                           i * DISTMEM_TOPOLOGY_RANGE_SIZE) /
                                          4;

            printf(" %#" PRIx64 "+%#" PRIx64 "@%u%s",
                   r[DISTMEM_TOPOLOGY_RANGE_BASE_LO / 4] |
                   (uint64_t)r[DISTMEM_TOPOLOGY_RANGE_BASE_HI / 4] << 32,
                   r[DISTMEM_TOPOLOGY_RANGE_SIZE_LO / 4] |
                   (uint64_t)r[DISTMEM_TOPOLOGY_RANGE_SIZE_HI / 4] << 32,
                   r[DISTMEM_TOPOLOGY_RANGE_NODE / 4],
                   r[DISTMEM_TOPOLOGY_RANGE_FLAGS / 4] & 1 ? "h" : "");
        }
        printf("\n");
    } while (regs[DISTMEM_TOPOLOGY_GENERATION / 4] != gen);
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t bytes;

    if (argc == 2 && !strcmp(argv[1], "topology")) {
        return topology();
    }
    if (argc == 5 && !strcmp(argv[1], "dimm")) {
        return dimm(strtoull(argv[2], NULL, 0), strtoull(argv[3], NULL, 0),
                    strtoull(argv[4], NULL, 0));
    }
    if (argc != 3) {
        fprintf(stderr, "usage: distvm-check gen|verify BYTES, or dimm BASE "
                "SIZE MB\n");
        return 2;
    }
    bytes = strtoull(argv[2], NULL, 0);
    if (!strcmp(argv[1], "gen")) {
        return gen(bytes);
    }
    if (!strcmp(argv[1], "verify")) {
        return verify(bytes);
    }
    fprintf(stderr, "distvm-check: unknown mode %s\n", argv[1]);
    return 2;
}
