#!/usr/bin/env python3
"""distvm benchmark: one node alone under distvm next to plain TCG.

    single-node.py BUILD_DIR [--runs N] [--iters I]

Runs the bare-metal SMP test guest's workload (1 vCPU by default: with
more, its spinlock contention makes run times vary more than the
difference measured; --cpus sets it) to completion under -accel tcg and under -accel distvm (one node),
alternately, N times each, and prints the median wall time of each and
their ratio (target: distvm at most 2% slower).
"""

import argparse
import os
import statistics
import subprocess
import tempfile
import time


args_cpus = 1


def run(qemu, guest, accel, iters, tmp):
    log = os.path.join(tmp, "serial.log")
    if os.path.exists(log):
        os.unlink(log)
    start = time.monotonic()
    p = subprocess.Popen([qemu, "-accel", accel, "-machine", "pc", "-m", "64M",
                          "-smp", str(args_cpus), "-nodefaults", "-display", "none",
                          "-kernel", guest, "-append",
                          "cpus=%d iters=%d" % (args_cpus, iters), "-serial", "file:" + log])
    try:
        while True:
            try:
                with open(log) as f:
                    if "distvm-guest: DONE" in f.read():
                        return time.monotonic() - start
            except FileNotFoundError:
                pass
            if p.poll() is not None:
                raise RuntimeError("QEMU exited early")
            time.sleep(0.01)
    finally:
        p.kill()
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--iters", type=int, default=40000000)
    ap.add_argument("--cpus", type=int, default=1)
    args = ap.parse_args()
    global args_cpus
    args_cpus = args.cpus
    qemu = os.path.join(args.build, "qemu-system-x86_64")
    guest = os.path.join(args.build, "guests", "smp-guest.elf")
    times = {"tcg": [], "distvm": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            for accel in ("tcg", "distvm"):
                times[accel].append(run(qemu, guest, accel, args.iters, tmp))
    tcg = statistics.median(times["tcg"])
    dvm = statistics.median(times["distvm"])
    print("one node: SMP test guest, %d vCPU(s) x %d iterations, %d runs "
          "each (boot included)" % (args.cpus, args.iters, args.runs))
    for accel, median in (("tcg", tcg), ("distvm", dvm)):
        print("-accel %-7s median %6.2f s   (runs: %s)" % (
            accel, median, " ".join("%.2f" % t for t in times[accel])))
    print("distvm / tcg: %.3f (target: <= 1.02)" % (dvm / tcg))


if __name__ == "__main__":
    main()
