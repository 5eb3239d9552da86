#!/usr/bin/env python3
"""distvm benchmark: policy=affinity against the data's placement by hand.

    affinity.py [BUILD_DIR] [--runs K] [--rounds R] [--timeout S]

Runs the bare-metal SMP test guest in mode affinity=R on 3 nodes (5
vCPUs: the boot vCPU on home; writers 1 and 2 on nodes 1 and 2, which
keep rewriting their pages; readers 3 and 4, which read them R rounds)
under three placements, K runs of each, round-robin:
  local     the readers placed on their writers' nodes from power-on
  remote    the readers on home, policy=manual: they stay there
  affinity  the readers on home, policy=affinity: distvm moves them
Per run: the work's time (console "all cpus up" to "DONE", polled every
20 ms), the moves and why, and the readers' remote faults per second
over their last second on home and after they settled (query-distvm,
polled every 0.25 s).  Prints medians and every run, the ratios to
local, then the target of issue 13: affinity <= 1.3x local.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
from qmp import QMPClient  # noqa: E402

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CONFIGS = [("local", "0:1:2:1:2", "manual"),
           ("remote", "0:1:2:0:0", "manual"),
           ("affinity", "0:1:2:0:0", "affinity")]
READERS = (3, 4)


def console(tmp):
    try:
        with open(os.path.join(tmp, "console-0.log"), errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def reader_rates(qs):
    """The readers' remote faults a second: {cpu: rate} on home (whether
    they still run there or not: a node keeps a vCPU's last rate until
    its next window), and {cpu: rate} where they run, if not home."""
    home, away = {}, {}
    for n, q in enumerate(qs):
        for v in q.cmd("query-distvm")["affinity"]["vcpus"]:
            if v["cpu-index"] not in READERS:
                continue
            if n == 0:
                home[v["cpu-index"]] = sum(v["fault-rate"])
            elif v["running"]:
                away[v["cpu-index"]] = sum(v["fault-rate"])
    return home, away


def run(build, cfg, rounds, timeout):
    name, placement, policy = cfg
    tmp = tempfile.mkdtemp(prefix="distvm-affinity-")
    procs, qs = [], []
    try:
        for n in range(3):
            accel = ("distvm,node-id=%d,nodes=3,listen=unix:%s/node%d.sock,"
                     "placement=%s,policy=%s,auto-numa=off" % (
                         n, tmp, n, placement, policy))
            if n:
                accel += ",home=unix:%s/node0.sock" % tmp
            procs.append(subprocess.Popen(
                [os.path.join(build, "qemu-system-x86_64"), "-accel", accel,
                 "-machine", "pc", "-m", "128M", "-smp", "5", "-nodefaults",
                 "-display", "none",
                 "-kernel", os.path.join(build, "guests", "smp-guest.elf"),
                 "-append", "cpus=5 affinity=%d" % rounds,
                 "-serial", "file:%s/console-%d.log" % (tmp, n),
                 "-qmp", "unix:%s/qmp-%d.sock,server=on,wait=off" % (tmp, n)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for n in range(3):
            for _ in range(400):
                try:
                    qs.append(QMPClient("%s/qmp-%d.sock" % (tmp, n)))
                    break
                except (OSError, ValueError):
                    time.sleep(0.05)
            else:
                raise RuntimeError("node %d: no QMP" % n)
            info = qs[n].cmd("query-distvm")
            if info["node-id"] != n or info["nodes"] != 3:
                raise RuntimeError("node %d: distvm is not the accelerator"
                                   % n)
        deadline = time.time() + timeout
        start = done = None
        home_rate, settled_rate, last_poll = {}, {}, 0
        while time.time() < deadline:
            text = console(tmp)
            now = time.time()
            if start is None and "distvm-guest: all cpus up" in text:
                start = now
            if "distvm-guest: DONE" in text:
                done = now
                break
            if start is not None and now - last_poll >= 0.25:
                last_poll = now
                home, away = reader_rates(qs)
                for cpu, rate in home.items():
                    home_rate[cpu] = max(home_rate.get(cpu, 0), rate)
                settled_rate.update(away)
            time.sleep(0.02)
        if done is None or start is None:
            raise RuntimeError("the guest did not finish in %d s" % timeout)
        info = qs[0].cmd("query-distvm")
        moves = info["moves"]
        placed = ":".join(str(v["node"]) for v in info["vcpus"])
        if "FAIL" in console(tmp):
            raise RuntimeError("the guest failed")
        return {"time": done - start, "moves": moves, "placed": placed,
                "home": home_rate, "settled": settled_rate}
    finally:
        for q in qs:
            q.close()
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default=os.path.join(TOP, "build"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=6000)
    ap.add_argument("--timeout", type=int, default=300)
    args = ap.parse_args()

    results = {c[0]: [] for c in CONFIGS}
    for k in range(args.runs):
        for cfg in CONFIGS:
            r = run(args.build, cfg, args.rounds, args.timeout)
            results[cfg[0]].append(r)
            print("run %d %-9s %6.2f s  moves %d  placed %s  readers' "
                  "faults/s on home %s, after %s" %
                  (k + 1, cfg[0], r["time"], r["moves"], r["placed"],
                   r["home"] or "-", r["settled"] or "-"), flush=True)

    print("\nmode=affinity=%d, 3 nodes, 5 vCPUs; %d run(s) each, "
          "interleaved; the work's time, medians" % (args.rounds, args.runs))
    local = statistics.median(r["time"] for r in results["local"])
    for name, _, _ in CONFIGS:
        times = [r["time"] for r in results[name]]
        med = statistics.median(times)
        print("%-9s %7.2f s  %5.2fx local   all runs: %s" %
              (name, med, med / local,
               " ".join("%.2f" % t for t in times)))
    ratio = statistics.median(r["time"] for r in results["affinity"]) / local
    print("\naffinity / local: %.2f (target <= 1.3): %s" %
          (ratio, "met" if ratio <= 1.3 else "missed"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
