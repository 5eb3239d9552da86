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
 *
 * The guest pipes "gen" through a multi-threaded xz compression and
 * decompression into "verify"; "verify" prints one line the qtest looks
 * for, and exits 1 on the first difference.  Built statically with the
 * host's compiler.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "dimm-pattern.h"

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

int main(int argc, char **argv)
{
    uint64_t bytes;

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
