#!/usr/bin/env python3
"""distvm benchmark: vCPU moves next to a whole-VM live migration.

    vcpu-moves.py BUILD_DIR [--moves N] [--migrations M]

In one run:
- a 2-node distvm cluster runs the bare-metal SMP test guest (2 vCPUs
  computing chains with their LAPIC timers ticking); its vCPUs are moved
  back and forth N times, once with warm pages (the default: a moved vCPU
  takes the pages its TLB maps along) and once without
  (warm-pages=off).  For each move the destination's query-distvm
  reports the downtime (vCPU stopped on one node to running on the
  other), the vCPU's remote faults in its first 10 ms there, its state's
  size, its warm pages and when the last of them was in place; a whole
  move takes the longer of the downtime and that, and carries the state
  and the warm pages;
- the same guest runs under plain TCG and is live-migrated M times
  between two QEMU processes over a UNIX socket; QEMU's own downtime,
  total time and bytes (query-migrate) are recorded.
It prints p50 and p99 of each, and the ratios.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import qmp, wait_file

MACHINE = ["-machine", "pc", "-m", "128M", "-smp", "2", "-nodefaults",
           "-display", "none"]


def pct(values, p):
    v = sorted(values)
    return v[(len(v) - 1) * p // 100]


def arrival(q, cpu):
    """vCPU @cpu's last arrival, from its node's query-distvm."""
    for v in q.cmd("query-distvm")["vcpus"]:
        if v["cpu-index"] == cpu:
            return v.get("arrival")
    return None


def bench_moves(qemu, guest, tmp, count, warm, append):
    procs = []
    for node in (0, 1):
        accel = ("distvm,node-id=%d,nodes=2,listen=unix:%s/n%d.sock,"
                 "warm-pages=%s" % (node, tmp, node, "on" if warm else "off"))
        if node:
            accel += ",home=unix:%s/n0.sock" % tmp
        procs.append(subprocess.Popen(
            [qemu, "-accel", accel] + MACHINE +
            ["-kernel", guest, "-append", append,
             "-serial", "file:%s/moves%d.log" % (tmp, node),
             "-qmp", "unix:%s/mq%d.sock,server=on,wait=off" % (tmp, node)]))
    try:
        q = [qmp("%s/mq%d.sock" % (tmp, n)) for n in (0, 1)]
        wait_file("%s/moves0.log" % tmp, "all cpus up")
        where = [0, 0]
        arrivals = []
        for i in range(count):
            cpu = i % 2
            to = 1 - where[cpu]
            q[i % 2].cmd("distvm-move-vcpu", **{"cpu-index": cpu, "node": to})
            q[0].event("DISTVM_VCPU_MOVED", {"cpu-index": cpu, "to": to})
            where[cpu] = to
            # Past its first 10 ms, until its warm pages are all in place
            time.sleep(0.015)
            deadline = time.time() + 5
            a = arrival(q[to], cpu)
            while warm and "warm-us" not in a and time.time() < deadline:
                time.sleep(0.005)
                a = arrival(q[to], cpu)
            if warm and "warm-us" not in a:
                sys.exit("bench: warm pages of vCPU %d never arrived" % cpu)
            a.setdefault("warm-pages", 0)
            arrivals.append(a)
        return arrivals
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


def bench_migration(qemu, guest, tmp, count, totals, sizes, append):
    downtimes = []
    for i in range(count):
        common = MACHINE + ["-accel", "tcg", "-kernel", guest,
                            "-append", append]
        src = subprocess.Popen(
            [qemu] + common + ["-serial", "file:%s/src.log" % tmp,
                               "-qmp", "unix:%s/src.sock,server=on,wait=off" %
                               tmp])
        dst = subprocess.Popen(
            [qemu] + common + ["-serial", "file:%s/dst.log" % tmp,
                               "-qmp", "unix:%s/dst.sock,server=on,wait=off" %
                               tmp,
                               "-incoming", "unix:%s/mig.sock" % tmp])
        try:
            s = qmp("%s/src.sock" % tmp)
            qmp("%s/dst.sock" % tmp)
            wait_file("%s/src.log" % tmp, "all cpus up")
            time.sleep(0.2)
            s.cmd("migrate", uri="unix:%s/mig.sock" % tmp)
            while True:
                info = s.cmd("query-migrate")
                if info.get("status") in ("completed", "failed"):
                    break
                time.sleep(0.02)
            if info["status"] != "completed":
                sys.exit("bench: migration failed: %s" % info)
            downtimes.append(info["downtime"] * 1000)     # ms -> us
            totals.append(info["total-time"] * 1000)
            sizes.append(info["ram"]["transferred"])
        finally:
            for p in (src, dst):
                p.terminate()
            for p in (src, dst):
                p.wait()
    return downtimes


WORKLOADS = [
    ("chains, timers and IPIs (mode=moves)", "cpus=2 moves=1"),
    ("each vCPU rewrites 256 pages of its own (mode=stress)",
     "cpus=2 stress=1"),
]


def report(title, runs, migrations, totals, sizes):
    print("\n%s:" % title)
    print("%-40s %6s %10s %10s" % ("", "count", "p50", "p99"))

    def row(name, values, unit):
        print("%-40s %6d %10d %10d  %s" % (name, len(values), pct(values, 50),
                                          pct(values, 99), unit))

    whole, size = {}, {}
    for warm in (True, False):
        a = runs[warm]
        print("move, warm pages %s:" % ("on" if warm else "off"))
        row("  downtime", [x["downtime-us"] for x in a], "us")
        row("  remote faults in its first 10 ms",
            [x["faults-10ms"] for x in a], "")
        row("  warm pages", [x["warm-pages"] for x in a], "")
        whole[warm] = [max(x["downtime-us"], x.get("warm-us", 0)) for x in a]
        row("  whole move (warm pages in place)", whole[warm], "us")
        size[warm] = [x["state-bytes"] + 4096 * x["warm-pages"] for x in a]
        row("  bytes (state + 4 KiB a warm page)", size[warm], "B")
    print("live migration of the same guest under TCG:")
    row("  downtime", migrations, "us")
    row("  total time", totals, "us")
    row("  bytes", sizes, "B")
    on = [x["faults-10ms"] for x in runs[True]]
    off = [x["faults-10ms"] for x in runs[False]]
    print("remote faults in the first 10 ms, mean: %.1f with warm pages, "
          "%.1f without" % (sum(on) / len(on), sum(off) / len(off)))
    print("at p50, migration / move (warm pages on): downtime %.1fx (target "
          ">= 100x; move p50 target < 1000 us), total time %.0fx, bytes "
          "%.0fx" % (pct(migrations, 50) /
                     max(pct([x["downtime-us"] for x in runs[True]], 50), 1),
                     pct(totals, 50) / max(pct(whole[True], 50), 1),
                     pct(sizes, 50) / max(pct(size[True], 50), 1)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--moves", type=int, default=200)
    ap.add_argument("--migrations", type=int, default=5)
    args = ap.parse_args()

    qemu = os.path.join(args.build, "qemu-system-x86_64")
    guest = os.path.join(args.build, "guests", "smp-guest.elf")
    tmp = tempfile.mkdtemp(prefix="distvm-bench-")
    results = []
    try:
        for title, append in WORKLOADS:
            runs = {}
            for warm in (True, False):
                runs[warm] = bench_moves(qemu, guest, tmp, args.moves, warm,
                                         append)
            totals, sizes = [], []
            migrations = bench_migration(qemu, guest, tmp, args.migrations,
                                         totals, sizes, append)
            results.append((title, runs, migrations, totals, sizes))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("distvm vCPU moves (2 nodes, UNIX sockets) vs whole-VM live "
          "migration (same guest: 2 vCPUs, 128 MiB)")
    for r in results:
        report(*r)
    print("(QEMU reports migration downtime in whole milliseconds)")


if __name__ == "__main__":
    main()
