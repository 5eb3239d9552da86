#!/usr/bin/env python3
"""distvm benchmark: the Linux test guest on 1, 2 and 3 nodes next to TCG.

    linux-nodes.py [BUILD_DIR] [--runs K] [--work N] [--only NAME[,NAME]]
                   [--qemu PATH] [--timeout S] [-v]

Runs the Linux test guest (4 vCPUs, 512 MiB; init runs one workload per
CPU and a multi-threaded xz round trip, distvm.work=N, then powers off)
to completion under: tcg (-accel tcg), 1node (-accel distvm), 2nodes
(vCPUs placed 0:0:1:1), 3nodes (0:1:2:1), and 2nodes-numa / 3nodes-numa
(the same with one guest NUMA node per cluster node), and 3nodes-pinned /
3nodes-numa-pinned (each node held to one host CPU with taskset, node n
on the n-th CPU this script may use, modulo their number: as if each
node had a host of its own, which is what a cluster is; plain TCG uses
all of them); K runs of each, round-robin, so that the drift of a noisy
machine spreads over all.
Per run, seen from here by polling node 0's console every 20 ms: wall
time (processes started to all exited, status 0), boot time (to init's
"distvm-linux: nproc") and workload time ("workload start" to "workload
done").  The accelerator is checked through QMP; on a cluster,
query-distvm is polled on every node every 0.5 s and the last answers
give the remote faults by kind and the device accesses sent home, summed
over nodes (the last half second before power-off is missed).  Prints
medians, all runs, ratios to TCG, the counts, the clocksource Linux
ended on (-v: all clocksource and TSC lines), then the targets.
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
from qmp import QMPClient  # noqa: E402

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
MACHINE = ["-machine", "pc", "-m", "512M", "-smp", "4", "-nodefaults",
           "-display", "none"]
# A NUMA node holds whole sockets, or Linux warns of its topology.
NUMA2 = ("-smp 4,sockets=2 -object memory-backend-ram,id=m0,size=256M "
         "-object memory-backend-ram,id=m1,size=256M "
         "-numa node,nodeid=0,memdev=m0,cpus=0-1 "
         "-numa node,nodeid=1,memdev=m1,cpus=2-3").split()
NUMA3 = ("-smp 4,sockets=4 -object memory-backend-ram,id=m0,size=256M "
         "-object memory-backend-ram,id=m1,size=128M "
         "-object memory-backend-ram,id=m2,size=128M "
         "-numa node,nodeid=0,memdev=m0,cpus=0 "
         "-numa node,nodeid=1,memdev=m1,cpus=1,cpus=3 "
         "-numa node,nodeid=2,memdev=m2,cpus=2").split()
# name, title, nodes (0: plain TCG), placement, extra machine options,
# whether each node is held to one host CPU
CONFIGS = [
    ("tcg", "tcg", 0, None, [], False),
    ("1node", "distvm 1 node", 1, None, [], False),
    ("2nodes", "2 nodes", 2, "0:0:1:1", [], False),
    ("3nodes", "3 nodes", 3, "0:1:2:1", [], False),
    ("2nodes-numa", "2 nodes + numa", 2, "0:0:1:1", NUMA2, False),
    ("3nodes-numa", "3 nodes + numa", 3, "0:1:2:1", NUMA3, False),
    ("3nodes-pinned", "3 nodes, pinned", 3, "0:1:2:1", [], True),
    ("3nodes-numa-pinned", "3 nodes + numa, pinned", 3, "0:1:2:1", NUMA3,
     True),
]
HOST_CPUS = sorted(os.sched_getaffinity(0))
WORK_DEFAULT = 60000    # tests/qtest/distvm-linux-test.c
FAULTS = ("read-miss", "write-miss", "upgrade")
IO = ("port", "mmio", "pic-ack")
MARKS = {"boot": "distvm-linux: nproc",
         "start": "distvm-linux: workload start",
         "done": "distvm-linux: workload done"}


def node_args(qemu, build, work, cfg, tmp, n, opts):
    _, _, nodes, placement, extra, pinned = cfg
    if nodes == 0:
        accel = "tcg"
    elif nodes == 1:
        accel = "distvm"
    else:
        accel = ("distvm,node-id=%d,nodes=%d,listen=unix:%s/node%d.sock,"
                 "placement=%s" % (n, nodes, tmp, n, placement))
        if n:
            accel += ",home=unix:%s/node0.sock" % tmp
    if nodes and opts:
        accel += "," + opts
    guest = os.path.join(build, "guests", "linux")
    pin = (["taskset", "-c", str(HOST_CPUS[n % len(HOST_CPUS)])]
           if pinned else [])
    return (pin + [qemu, "-accel", accel] + MACHINE + extra +
            ["-kernel", os.path.join(guest, "vmlinuz"),
             "-initrd", os.path.join(guest, "initramfs.cpio.gz"),
             "-append", "console=ttyS0 panic=-1 distvm.work=%d" % work,
             "-serial", "file:%s/console-%d.log" % (tmp, n),
             "-qmp", "unix:%s/qmp-%d.sock,server=on,wait=off" % (tmp, n)])


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read().replace("\r\n", "\n")
    except FileNotFoundError:
        return ""


class Poller(threading.Thread):
    """Checks each node's accelerator, then (for a cluster) keeps the
    last query-distvm answer of each node until its QEMU exits."""

    def __init__(self, tmp, procs, nodes):
        super().__init__(daemon=True)
        self.tmp, self.procs, self.nodes = tmp, procs, nodes
        self.last = [None] * len(procs)
        self.checked = 0
        self.errors = []
        self.stop = threading.Event()

    def connect(self, n):
        while not self.stop.is_set() and self.procs[n].poll() is None:
            try:
                return QMPClient("%s/qmp-%d.sock" % (self.tmp, n))
            except (OSError, ValueError):
                time.sleep(0.05)
        return None

    def check(self, n, q):
        """distvm: query-distvm answers for node n of the cluster; tcg:
        query-distvm fails ("distvm is not the active accelerator") and
        x-query-jit, which fails unless TCG runs, answers."""
        try:
            info = q.cmd("query-distvm")
            ok = (self.nodes and info["node-id"] == n and
                  info["nodes"] == self.nodes)
        except RuntimeError:
            ok = not self.nodes and q.cmd("x-query-jit") is not None
        self.checked += 1 if ok else 0

    def run(self):
        clients = []
        try:
            for n in range(len(self.procs)):
                clients.append(self.connect(n))
                if clients[n]:
                    self.check(n, clients[n])
            while self.nodes > 1 and not self.stop.wait(0.5):
                for n, q in enumerate(clients):
                    try:
                        if q:
                            self.last[n] = q.cmd("query-distvm")
                    except (OSError, RuntimeError, ValueError):
                        clients[n] = None
        except (OSError, RuntimeError, ValueError) as e:
            self.errors.append("QMP: %s" % e)
        for q in clients:
            if q:
                q.close()


def stop_all(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        p.wait()


def watch(args, procs, tmp, start, seen):
    """Until every process exited: note when the console shows each of
    MARKS.  Returns an error, or None."""
    while any(p.poll() is None for p in procs):
        now = time.monotonic()
        text = read("%s/console-0.log" % tmp)
        for mark, line in MARKS.items():
            if mark not in seen and line in text:
                seen[mark] = now - start
        if "Kernel panic" in text:
            return "kernel panic"
        if now - start > args.timeout:
            return "timed out after %d s" % args.timeout
        if any(p.poll() not in (None, 0) for p in procs):
            return "a node failed"
        time.sleep(0.02)
    return None


def run_once(args, cfg, tmp):
    """One run of @cfg: a dict of figures, or of 'error' and 'detail'."""
    count = max(cfg[2], 1)
    procs, seen, poller = [], {}, None
    start = time.monotonic()
    try:
        for n in range(count):
            with open("%s/node%d.err" % (tmp, n), "w") as err:
                procs.append(subprocess.Popen(
                    node_args(args.qemu, args.build, args.work, cfg, tmp, n,
                              args.distvm_opts),
                    stdin=subprocess.DEVNULL, stdout=err,
                    stderr=subprocess.STDOUT))
        poller = Poller(tmp, procs, cfg[2])
        poller.start()
        error = watch(args, procs, tmp, start, seen)
        wall = time.monotonic() - start
    finally:
        if poller:
            poller.stop.set()
        stop_all(procs)
    poller.join()
    text = read("%s/console-0.log" % tmp)
    codes = [p.returncode for p in procs]
    if not error and codes != [0] * count:
        error = "exit statuses %s" % codes
    if not error and len(seen) != len(MARKS):
        error = "no %s on the console" % " or ".join(
            "'%s'" % l for m, l in MARKS.items() if m not in seen)
    if not error and (poller.errors or poller.checked != count):
        error = "QMP: the accelerator is not %s %s" % (
            "distvm" if cfg[2] else "tcg", "; ".join(poller.errors))
    if error:
        detail = "console of node 0, last lines:\n" + tail(text, 30)
        for n in range(count):
            detail += "node %d (exit %s) stderr:\n%s" % (
                n, codes[n], tail(read("%s/node%d.err" % (tmp, n)), 15))
        return {"error": error, "detail": detail}
    return figures(wall, seen, text, poller.last)


def figures(wall, seen, text, last):
    r = {"wall": wall, "boot": seen["boot"],
         "workload": seen["done"] - seen["start"]}
    infos = [i for i in last if i and "ram" in i]
    for k in FAULTS if infos else ():
        r[k] = sum(i["ram"][k]["count"] for i in infos)
    for k in IO if infos else ():
        r[k] = sum(i["io"][k]["count"] for i in infos)
    cs = re.findall(r"clocksource: Switched to clocksource (\S+)", text)
    r["clocksource"] = cs[-1] if cs else "?"
    r["unstable"] = [strip(l) for l in text.splitlines() if "unstable" in l]
    r["clock"] = [strip(l) for l in text.splitlines()
                  if "clocksource" in l or "TSC" in l or "tsc:" in l]
    return r


def tail(text, lines):
    return "".join("    " + l + "\n" for l in text.splitlines()[-lines:])


def strip(line):
    return re.sub(r"^\[\s*[0-9.]+\]\s*", "", line)


def ratio(a, b):
    return "%.2f" % (a / b) if a and b else "n/a"


def medians(configs, results):
    return {c[0]: {k: statistics.median(r[k] for r in results[c[0]])
                   if results[c[0]] else None
                   for k in ("wall", "boot", "workload")} for c in configs}


def print_times(args, configs, results, med):
    tcg = med.get("tcg", {})
    print("\nLinux test guest, 4 vCPUs, 512 MiB, distvm.work=%d%s; %d run(s) "
          "per configuration, interleaved; medians in s" % (
              args.work, "" if args.work == WORK_DEFAULT else
              " (the tests use %d)" % WORK_DEFAULT, args.runs))
    print("%-22s %5s %8s %8s %9s %9s %9s   all runs: wall/boot/workload" % (
        "configuration", "ok", "wall", "boot", "workload", "wall/tcg",
        "boot/tcg"))
    for name, title, *_ in configs:
        m = med[name]
        print("%-22s %5s %8s %8s %9s %9s %9s   %s" % (
            title, "%d/%d" % (len(results[name]), args.runs),
            *("%.1f" % m[k] if m[k] else "-"
              for k in ("wall", "boot", "workload")),
            ratio(m["wall"], tcg.get("wall")),
            ratio(m["boot"], tcg.get("boot")),
            " ".join("%.1f/%.1f/%.1f" % (r["wall"], r["boot"], r["workload"])
                     for r in results[name])))


def print_counts(configs, results):
    print("\nremote faults and device accesses sent home, summed over nodes "
          "(last query-distvm answers; median over runs):")
    print("%-22s %10s %10s %10s %9s %9s %9s" % (("configuration",) + FAULTS
                                                 + IO))
    for name, title, *_ in configs:
        ok = [r for r in results[name] if FAULTS[0] in r]
        if ok:
            print("%-22s %10d %10d %10d %9d %9d %9d" % ((title,) + tuple(
                statistics.median_low(r[k] for r in ok) for k in FAULTS + IO)))


def print_clock(args, configs, results):
    print("\nclocksource Linux ended on; console lines with 'unstable':")
    for name, title, *_ in configs:
        ok = results[name]
        cs = sorted(set(r["clocksource"] for r in ok))
        unstable = sorted(set(l for r in ok for l in r["unstable"]))
        print("%-22s %-10s %s" % (title, ",".join(cs) or "-", "; ".join(
            unstable) if unstable else ("none" if ok else "-")))
        if args.verbose and ok:
            print("".join("    %s\n" % l for l in ok[0]["clock"]), end="")


def print_targets(med):
    tcg = med.get("tcg", {})
    print()
    for name, what, target in (("3nodes-numa", "wall", 1.2),
                               ("3nodes", "wall", 1.5),
                               ("3nodes", "boot", 1.5),
                               ("3nodes-numa-pinned", "wall", 1.2),
                               ("3nodes-pinned", "wall", 1.5),
                               ("3nodes-pinned", "boot", 1.5)):
        title = [c[1] for c in CONFIGS if c[0] == name][0]
        print("%s %s / tcg: %s (target <= %.1f)" % (
            title, what, ratio(med.get(name, {}).get(what), tcg.get(what)),
            target))


def run_all(args, configs, top):
    """Every configuration K times, round-robin."""
    results = {c[0]: [] for c in configs}
    failed = []
    for k in range(args.runs):
        for cfg in configs:
            tmp = os.path.join(top, "%s-%d" % (cfg[0], k))
            os.mkdir(tmp)
            r = run_once(args, cfg, tmp)
            shutil.rmtree(tmp, ignore_errors=True)
            if "error" in r:
                failed.append("%s#%d" % (cfg[0], k + 1))
                print("run %d %s: FAILED: %s\n%s" % (
                    k + 1, cfg[1], r["error"], r["detail"]), flush=True)
                continue
            results[cfg[0]].append(r)
            print("run %d %-22s wall %6.1f s, boot %5.1f s, workload %6.1f "
                  "s, clocksource %s" % (k + 1, cfg[1], r["wall"], r["boot"],
                                         r["workload"], r["clocksource"]),
                  flush=True)
    return results, failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default=os.path.join(TOP, "build"))
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--work", type=int, default=WORK_DEFAULT)
    ap.add_argument("--only", help="names, comma-separated: " +
                    ",".join(c[0] for c in CONFIGS))
    ap.add_argument("--qemu")
    ap.add_argument("--distvm-opts", default="",
                    help="more -accel distvm options, e.g. peer-timeout=10")
    ap.add_argument("--timeout", type=int, default=1800,
                    help="seconds per run")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print the clocksource and TSC lines of a run")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    args.qemu = args.qemu or os.path.join(args.build, "qemu-system-x86_64")
    names = args.only.split(",") if args.only else [c[0] for c in CONFIGS]
    unknown = set(names) - set(c[0] for c in CONFIGS)
    if unknown:
        ap.error("unknown configuration(s): %s" % ",".join(sorted(unknown)))
    configs = [c for c in CONFIGS if c[0] in names]
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    top = tempfile.mkdtemp(prefix="distvm-bench-")
    try:
        results, failed = run_all(args, configs, top)
    except KeyboardInterrupt:
        sys.exit("bench: interrupted")
    finally:
        shutil.rmtree(top, ignore_errors=True)
    med = medians(configs, results)
    print_times(args, configs, results, med)
    print_counts(configs, results)
    print_clock(args, configs, results)
    print_targets(med)
    if failed:
        print("%d run(s) failed: %s" % (len(failed), ", ".join(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
