#!/usr/bin/env python3
"""distvm benchmark: vCPU move downtime next to a whole-VM live migration.

    vcpu-moves.py BUILD_DIR [--moves N] [--migrations M]

In one run:
- a 2-node distvm cluster runs the bare-metal SMP test guest (2 vCPUs
  computing chains with their LAPIC timers ticking); its vCPUs are moved
  back and forth N times, and the downtime each DISTVM_VCPU_MOVED event
  reports (vCPU stopped on one node to running on the other) is recorded;
- the same guest runs under plain TCG and is live-migrated M times
  between two QEMU processes over a UNIX socket; QEMU's own downtime
  figure (query-migrate) is recorded.
It prints p50 and p99 of both and their ratio.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
from qmp import QMPClient  # noqa: E402

MACHINE = ["-machine", "pc", "-m", "128M", "-smp", "2", "-nodefaults",
           "-display", "none"]


def pct(values, p):
    v = sorted(values)
    return v[(len(v) - 1) * p // 100]


def wait_file(path, text, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(path, errors="replace") as f:
                if text in f.read():
                    return
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    raise TimeoutError("no '%s' in %s" % (text, path))


def qmp(path):
    deadline = time.time() + 30
    while True:
        try:
            return QMPClient(path)
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def bench_moves(qemu, guest, tmp, count):
    procs = []
    for node in (0, 1):
        accel = ("distvm,node-id=%d,nodes=2,listen=unix:%s/n%d.sock" %
                 (node, tmp, node))
        if node:
            accel += ",home=unix:%s/n0.sock" % tmp
        procs.append(subprocess.Popen(
            [qemu, "-accel", accel] + MACHINE +
            ["-kernel", guest, "-append", "cpus=2 moves=1",
             "-serial", "file:%s/moves%d.log" % (tmp, node),
             "-qmp", "unix:%s/mq%d.sock,server=on,wait=off" % (tmp, node)]))
    try:
        q = [qmp("%s/mq%d.sock" % (tmp, n)) for n in (0, 1)]
        wait_file("%s/moves0.log" % tmp, "all cpus up")
        where = [0, 0]
        downtimes = []
        for i in range(count):
            cpu = i % 2
            to = 1 - where[cpu]
            q[i % 2].cmd("distvm-move-vcpu", **{"cpu-index": cpu, "node": to})
            ev = q[0].event("DISTVM_VCPU_MOVED", {"cpu-index": cpu, "to": to})
            downtimes.append(ev["data"]["downtime-us"])
            where[cpu] = to
            time.sleep(0.01)
        return downtimes
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


def bench_migration(qemu, guest, tmp, count, totals):
    downtimes = []
    for i in range(count):
        common = MACHINE + ["-accel", "tcg", "-kernel", guest,
                            "-append", "cpus=2 moves=1"]
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
        finally:
            for p in (src, dst):
                p.terminate()
            for p in (src, dst):
                p.wait()
    return downtimes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--moves", type=int, default=200)
    ap.add_argument("--migrations", type=int, default=5)
    args = ap.parse_args()

    qemu = os.path.join(args.build, "qemu-system-x86_64")
    guest = os.path.join(args.build, "guests", "smp-guest.elf")
    tmp = tempfile.mkdtemp(prefix="distvm-bench-")
    try:
        moves = bench_moves(qemu, guest, tmp, args.moves)
        totals = []
        migrations = bench_migration(qemu, guest, tmp, args.migrations,
                                     totals)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("distvm vCPU moves (2 nodes, UNIX sockets) vs whole-VM live "
          "migration (same guest: 2 vCPUs, 128 MiB)")
    print("%-34s %6s %10s %10s" % ("", "count", "p50 (us)", "p99 (us)"))
    m50, m99 = pct(moves, 50), pct(moves, 99)
    g50, g99 = pct(migrations, 50), pct(migrations, 99)
    print("%-34s %6d %10d %10d" % ("vCPU move downtime", len(moves), m50,
                                   m99))
    print("%-34s %6d %10d %10d" % ("live migration downtime", len(migrations),
                                   g50, g99))
    print("%-34s %6d %10d %10d" % ("live migration total time",
                                   len(totals), pct(totals, 50),
                                   pct(totals, 99)))
    print("migration downtime / move downtime at p50: %.1fx (target: >= "
          "100x); move p50 target: < 1000 us" % (g50 / m50))
    print("(QEMU reports migration downtime in whole milliseconds)")


if __name__ == "__main__":
    main()
