#!/usr/bin/env python3
"""distvm benchmark: a node joins the running guest, another is drained.

    elastic.py BUILD_DIR [--mb N] [--runs R]

Each run (a cluster of nodes=3, start-nodes=1, the bare-metal SMP test
guest with 2 vCPUs and its mode=pattern, -m 512M):
- home starts alone with the guest stopped (-S); node 1 joins; vCPU 0
  (the one that writes) moves there; the guest runs and writes N MiB
  (default 256) of a pattern, which node 1 then owns, and keeps running;
- node 2 joins the running guest: the time from its start to
  DISTVM_NODE_JOINED on home, the bytes home and node 2 exchanged, and
  how long the vCPUs were held (the event's pause-us; the guest's run
  state does not change);
- node 1 is drained: the time from distvm-drain-node to DISTVM_NODE_LEFT
  (drain-ms), the bytes node 1 sent and received in that time (its pages
  going back), and the longest pause of the guest during it: the move
  downtime of vCPU 0, the only pause a drain makes;
- once node 1 exited, a node started without node-id joins: home gives
  it id 1 again; the time from its start to DISTVM_NODE_JOINED.
Then, in a cluster of two start nodes (nodes=2, vCPU 0 on node 1 from
power-on, which writes the N MiB): node 1, which manages half of the
page directory, is drained: the same figures, its hand-off of the
directory to home included.
It prints each figure of each run, and their medians.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import qmp, wait_file


def node_bytes(q, peer):
    """Bytes the node of @q sent to and received from node @peer."""
    for n in q.cmd("query-distvm")["node-list"]:
        if n["node-id"] == peer:
            return n["bytes-sent"] + n["bytes-received"]
    raise KeyError(peer)


def drain_node1(home, procs):
    """Drain node 1 of @home's cluster: DISTVM_NODE_LEFT, vCPU 0's move
    (its DISTVM_VCPU_MOVED) and the bytes node 1 exchanged meanwhile."""
    before = node_bytes(home, 1)
    home.cmd("distvm-drain-node", node=1)
    moved = home.event("DISTVM_VCPU_MOVED", {"cpu-index": 0,
                                             "reason": "drain"})
    left = home.event("DISTVM_NODE_LEFT", {"node": 1})
    drain_bytes = node_bytes(home, 1) - before
    procs[1].wait(timeout=30)
    if procs[1].returncode != 0:
        sys.exit("bench: drained node 1 exited %d" % procs[1].returncode)
    return left, moved, drain_bytes


def stop(procs):
    for p in procs.values():
        if p.poll() is None:
            p.terminate()
    for p in procs.values():
        p.wait()


def one_run(qemu, guest, tmp, mb):
    procs = {}
    machine = ["-machine", "pc", "-m", "512M", "-smp", "2", "-nodefaults",
               "-display", "none", "-kernel", guest,
               "-append", "cpus=2 pattern=%d" % mb]

    def start(node, extra=(), named=True):
        accel = ("distvm,nodes=3,start-nodes=1,auto-numa=off,"
                 "listen=unix:%s/n%s.sock" % (tmp, node))
        if named:
            accel += ",node-id=%s" % node
        if node:
            accel += ",home=unix:%s/n0.sock" % tmp
        procs[node] = subprocess.Popen(
            [qemu, "-accel", accel] + machine + list(extra) +
            ["-serial", "file:%s/serial%s.log" % (tmp, node),
             "-qmp", "unix:%s/q%s.sock,server=on,wait=off" % (tmp, node)])
        return qmp("%s/q%s.sock" % (tmp, node))

    try:
        home = start(0, ["-S"])
        start(1)
        home.event("DISTVM_NODE_JOINED", {"node": 1})
        home.cmd("distvm-move-vcpu", **{"cpu-index": 0, "node": 1})
        home.event("DISTVM_VCPU_MOVED", {"cpu-index": 0, "to": 1})
        home.cmd("cont")
        wait_file("%s/serial0.log" % tmp, "pattern written", 120)

        t0 = time.monotonic()
        start(2)
        joined = home.event("DISTVM_NODE_JOINED", {"node": 2})
        join_s = time.monotonic() - t0
        join_bytes = node_bytes(home, 2)

        left, moved, drain_bytes = drain_node1(home, procs)

        t0 = time.monotonic()
        start("1b", named=False)
        home.event("DISTVM_NODE_JOINED", {"node": 1})
        rejoin_s = time.monotonic() - t0
        return {
            "rejoin-ms": rejoin_s * 1000,
            "join-ms": join_s * 1000,
            "join-bytes": join_bytes,
            "join-pause-us": joined["data"]["pause-us"],
            "drain-ms": left["data"]["drain-ms"],
            "drain-bytes": drain_bytes,
            "drain-pause-us": moved["data"]["downtime-us"],
        }
    finally:
        stop(procs)


def start_node_run(qemu, guest, tmp, mb):
    """Drain node 1 of two start nodes, after vCPU 0 wrote @mb MiB there"""
    procs = {}
    machine = ["-machine", "pc", "-m", "512M", "-smp", "2", "-nodefaults",
               "-display", "none", "-kernel", guest,
               "-append", "cpus=2 pattern=%d" % mb]
    try:
        for node in (0, 1):
            accel = ("distvm,node-id=%d,nodes=2,placement=1:0,auto-numa=off,"
                     "listen=unix:%s/s%d.sock" % (node, tmp, node))
            if node:
                accel += ",home=unix:%s/s0.sock" % tmp
            procs[node] = subprocess.Popen(
                [qemu, "-accel", accel] + machine +
                ["-serial", "file:%s/sserial%d.log" % (tmp, node),
                 "-qmp", "unix:%s/sq%d.sock,server=on,wait=off" % (tmp, node)])
        home = qmp("%s/sq0.sock" % tmp)
        wait_file("%s/sserial0.log" % tmp, "pattern written", 120)
        left, moved, drain_bytes = drain_node1(home, procs)
        return {
            "start-drain-ms": left["data"]["drain-ms"],
            "start-drain-bytes": drain_bytes,
            "start-drain-pause-us": moved["data"]["downtime-us"],
        }
    finally:
        stop(procs)


def median(values):
    v = sorted(values)
    return v[len(v) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--mb", type=int, default=256,
                    help="MiB the guest writes on the drained node")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    qemu = os.path.join(args.build, "qemu-system-x86_64")
    guest = os.path.join(args.build, "guests", "smp-guest.elf")
    runs = []
    for r in range(args.runs):
        tmp = tempfile.mkdtemp(prefix="distvm-elastic-bench-")
        try:
            runs.append(one_run(qemu, guest, tmp, args.mb))
            runs[-1].update(start_node_run(qemu, guest, tmp, args.mb))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print("run %d: %s" % (r + 1, runs[-1]), flush=True)
    print("\nA node joins the running guest, one is drained of %d MiB "
          "(median of %d runs):" % (args.mb, len(runs)))
    rows = [
        ("join: start to DISTVM_NODE_JOINED", "join-ms", "ms"),
        ("join: bytes home <-> the new node", "join-bytes", "B"),
        ("join: the vCPUs held", "join-pause-us", "us"),
        ("drain: distvm-drain-node to DISTVM_NODE_LEFT", "drain-ms", "ms"),
        ("drain: bytes home <-> the drained node", "drain-bytes", "B"),
        ("drain: longest pause (its vCPU's move)", "drain-pause-us", "us"),
        ("join again, no node-id: start to JOINED", "rejoin-ms", "ms"),
        ("start node drain (directory hand-off too)", "start-drain-ms",
         "ms"),
        ("  bytes home <-> the drained node", "start-drain-bytes", "B"),
        ("  longest pause (its vCPU's move)", "start-drain-pause-us", "us"),
    ]
    for name, key, unit in rows:
        values = [x[key] for x in runs]
        print("  %-46s %12.0f %s   (runs: %s)" % (
            name, median(values), unit,
            ", ".join("%.0f" % v for v in values)))


if __name__ == "__main__":
    main()
