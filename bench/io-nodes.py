#!/usr/bin/env python3
"""distvm benchmark: a spread guest's I/O, devices on home or where it runs.

    io-nodes.py [BUILD_DIR] [--runs K] [--size MIB] [--only NAME[,NAME]]
                [--qemu PATH] [--timeout S] [--keep DIR] [--trace EVENT]...
                [--failover | --path-down]

Runs the Linux test guest (4 vCPUs, 512 MiB) on 2 nodes (vCPUs placed
0:0:1:1) and on 3 nodes (0:1:2:1), without and with (-numa) one guest
NUMA node per cluster node, homed there, and then the two devices behind
a PCI expander bridge (pxb) of the last node's NUMA node, so that Linux
takes their interrupts and allocates their buffers there.  vCPU 2, on the last node, fetches a
file of --size MiB over virtio-net from an HTTP server this script runs
on loopback, writes it to a virtio-blk disk and reads it back (the guest
times each of the three with /proc/uptime and checks the SHA-256 of what
it got).  Each layout runs twice, in the same sitting:

  home    the disk and the network card on the home node, as every
          device is unless placed (the other nodes give the disk a
          null-co driver);
  local   both on vCPU 2's node (device-nodes=vblk@N:vnet@N), which then
          opens the disk image and runs the network backend.

K runs of each, round-robin.  Per run: the time of each transfer and its
rate, and the accesses of vCPUs to the disk and the network card that
were sent to another node (query-distvm's io.served, summed over the
nodes) while the I/O ran ("io start" to "io done" on the console), per
MiB moved (fetched, written and read: 3 x --size; with 3nodes-mq, those
to the card per MiB it moved, 5 x --size).  Prints medians, the ratios
of local to home, and the targets of the I/O issue: with devices where
the vCPUs are, forwarded accesses per MiB at least 20 times fewer, and
every transfer at least as fast (with 3nodes-mq, the fetches).  Every
run checks the accelerator through QMP, the digests in the guest, and
the exit status 0 of every node.

The layouts 2nodes-irq and 3nodes-irq are 2nodes and 3nodes with the
guest told to take its devices' queue interrupts on vCPU 2
(distvm.irq_cpu=2, /proc/irq/N/smp_affinity_list; not virtio-blk's,
which the kernel manages): how a guest without NUMA nodes keeps them
where the devices are.

The layout 3nodes-mq (needs root) gives the guest, on 3 nodes (0:1:2:1),
a multi-queue network card instead, 4 queue pairs of a tap of this host
(MQ_TAP, whose host side is 10.0.2.2, where a second HTTP server
listens), and after vCPU 2's fetch and disk I/O has each of the 4 vCPUs
fetch the file over it at once; it reports that fetch's total rate:

  home    every queue pair on home, with the card
          (queue-nodes=vnet/0@0, so that the other nodes detach their
          queues from the tap);
  local   each pair on its vCPU's node (queue-nodes=vnet/0@0:vnet/1@1:
          vnet/2@2:vnet/3@1), which then handles its notifications and
          runs its queue of the tap; queue-follow=off, so that the pairs
          stay there (as in home).

With --failover (3nodes-mq), while the 4 fetches run with the pairs
local, pair 2 moves from node 2 to home and back every half second
(distvm-move-queue-pair, as if node 2's path went down and came back):
the fetches must still all be exact; it reports the moves made during
them.  Its forwarded accesses are not the I/O issue's measure then.

With --path-down (3nodes-mq), node 2 has a tap of its own (MQ_TAP_2),
bridged with the others' (MQ_BRIDGE carries 10.0.2.2); while the 4
fetches run with the pairs local, that tap goes down and up again every
half second, and pair 2 must move to home and back by itself
(DISTVM_NETWORK_PATH, then DISTVM_QUEUE_PAIR_MOVED): the fetches must
still all be exact; it reports the moves made during them.

With --moved (3nodes-mq), once vCPU 2's own fetch is done and before the
4 fetches, vCPUs 1 and 3 move to node 2 and vCPU 2 to node 1
(distvm-move-vcpu), and a third place runs as well:

  follow  as local, with queue-follow=on: the pairs follow the vCPUs
          that their receive interrupts go to.

The guest starts the 4 fetches at once, so the moves, and the pairs'
moves after them, overlap their start.  It reports the forwarded
accesses per MiB of local, whose pairs stay on the nodes the vCPUs left,
against follow's.
"""

import argparse
import hashlib
import http.server
import os
import re
import shutil
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
from qmp import QMPClient  # noqa: E402
from benchlib import NUMA2, NUMA3, read  # noqa: E402

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
MACHINE = ["-machine", "pc", "-m", "512M", "-nodefaults",
           "-name", "debug-threads=on", "-display", "none"]
# name, nodes, placement (vCPU 2 on the last node), machine options, and
# with -numa the guest NUMA node of the devices (behind a pxb)
LAYOUTS = [("2nodes", 2, "0:0:1:1", ["-smp", "4"], None),
           ("3nodes", 3, "0:1:2:1", ["-smp", "4,sockets=4"], None),
           ("2nodes-numa", 2, "0:0:1:1", NUMA2, 1),
           ("3nodes-numa", 3, "0:1:2:1", NUMA3, 2),
           ("3nodes-mq", 3, "0:1:2:1", ["-smp", "4,sockets=4"], None),
           ("2nodes-irq", 2, "0:0:1:1", ["-smp", "4"], None),
           ("3nodes-irq", 3, "0:1:2:1", ["-smp", "4,sockets=4"], None)]
PLACES = ("home", "local")
# --moved: where vCPUs 1, 2 and 3 go before the 4 fetches
MOVED = {1: 2, 2: 1, 3: 2}
IO_CPU = 2
TRANSFERS = ("fetch", "disk write", "disk read")
# The multi-queue card's tap (3nodes-mq), its host address, and where
# each of its 4 queue pairs is served with the devices local
MQ_TAP = "dvmqbench0"
MQ_TAP_2 = "dvmqbench2"
MQ_BRIDGE = "dvmqbenchbr"
MQ_HOST = "10.0.2.2"
MQ_QUEUE_NODES = "vnet/1@1:vnet/2@2:vnet/3@1"
WORK = 2000


def is_mq(layout):
    return layout[0].endswith("-mq")


class Handler(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def http_start(body, addr="127.0.0.1", port=0):
    Handler.body = body
    server = socketserver.TCPServer((addr, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def mq_tap(add, bridged=False):
    """Create (or delete) the multi-queue card's tap, on 10.0.2.0/24;
    bridged, node 2's too, and the bridge carries the address."""
    for dev in (MQ_TAP, MQ_TAP_2, MQ_BRIDGE):
        subprocess.run(["ip", "link", "del", dev], stderr=subprocess.DEVNULL)
    if not add:
        return
    taps = (MQ_TAP, MQ_TAP_2) if bridged else (MQ_TAP,)
    cmds = [["ip", "tuntap", "add", "dev", t, "mode", "tap", "multi_queue"]
            for t in taps]
    if bridged:
        cmds.append(["ip", "link", "add", MQ_BRIDGE, "type", "bridge"])
        cmds += [["ip", "link", "set", t, "master", MQ_BRIDGE] for t in taps]
    cmds.append(["ip", "addr", "add", MQ_HOST + "/24", "dev",
                 MQ_BRIDGE if bridged else MQ_TAP])
    cmds += [["ip", "link", "set", d, "up"]
             for d in taps + ((MQ_BRIDGE,) if bridged else ())]
    for cmd in cmds:
        subprocess.run(cmd, check=True)


def link_set(dev, state):
    subprocess.run(["ip", "link", "set", dev, state], check=True)


def node_args(args, layout, place, tmp, n, port):
    name, nodes, placement, extra, numa_node = layout
    last = nodes - 1
    bus = []
    if numa_node is not None:
        extra = extra + ["-device", "pxb,id=pxb0,bus_nr=32,numa_node=%d" %
                         numa_node]
        bus = [",bus=pxb0"]
    accel = ("distvm,node-id=%d,nodes=%d,listen=unix:%s/node%d.sock,"
             "placement=%s" % (n, nodes, tmp, n, placement))
    if numa_node is None:
        accel += ",auto-numa=off"   # the layouts without guest NUMA nodes
    if n:
        accel += ",home=unix:%s/node0.sock" % tmp
    netdev = "user,id=net0"
    card = "virtio-net-pci,netdev=net0,romfile=,id=vnet"
    fetch = ""
    if is_mq(layout):
        netdev = ("tap,id=net0,ifname=%s,queues=4,script=no,downscript=no,"
                  "vhost=off" % (MQ_TAP_2 if args.path_down and n == 2
                                 else MQ_TAP))
        card += ",mq=on"
        fetch = " distvm.fetch=0@0,0@1,0@2,0@3"
        # Pair 0 on home in both: the other nodes then detach their queues
        # of the tap, which every node opens, from it.
        accel += ",queue-nodes=" + ("vnet/0@0" if place == "home" else
                                    "vnet/0@0:" + MQ_QUEUE_NODES)
        # the pairs follow their vCPUs by default (queue-follow=auto)
        accel += ",queue-follow=" + ("on" if place == "follow" else "off")
    elif place == "local":
        accel += ",device-nodes=vblk@%d:vnet@%d" % (last, last)
    runs_disk = n == (last if place == "local" and not is_mq(layout) else 0)
    drive = ("file=%s/disk.img,format=raw" % tmp if runs_disk else
             "driver=null-co,size=%d" % (2 * args.size << 20))
    guest = os.path.join(args.build, "guests", "linux")
    return ([args.qemu, "-accel", accel] + MACHINE + extra +
            ["-kernel", os.path.join(guest, "vmlinuz"),
             "-initrd", os.path.join(guest, "initramfs.cpio.gz"),
             "-drive", "if=none,id=disk0," + drive,
             "-device", "virtio-blk-pci,drive=disk0,id=vblk" + "".join(bus),
             "-netdev", netdev,
             "-device", card + "".join(bus),
             "-append", "console=ttyS0 panic=-1 distvm.work=%d "
             "distvm.io_cpu=%d distvm.http=10.0.2.2:%d/file "
             "distvm.disk=vda%s%s" % (WORK, IO_CPU, port, fetch,
                                      " distvm.irq_cpu=%d" % IO_CPU
                                      if name.endswith("-irq") else ""),
             "-serial", "file:%s/console-%d.log" % (tmp, n),
             "-qmp", "unix:%s/qmp-%d.sock,server=on,wait=off" % (tmp, n)] +
            traced(args.trace, tmp, n))


def traced(events, tmp, n):
    """The options that trace @events on node @n, into trace-N.log in the
    run's directory (keep it with --keep)."""
    if not events:
        return []
    opts = []
    for e in events:
        opts += ["-trace", "enable=" + e]
    # the last -trace names the file (each one sets it)
    return opts + ["-trace", "file=%s/trace-%d.log" % (tmp, n)]


def connect(path, proc):
    while proc.poll() is None:
        try:
            return QMPClient(path)
        except (OSError, ValueError):
            time.sleep(0.05)
    raise RuntimeError("%s: the node exited" % path)


def forwarded(clients, devices):
    """Accesses to @devices that a node did for another node's vCPUs, so
    far, summed over the nodes."""
    total = 0
    for q in clients:
        for served in q.cmd("query-distvm")["io"]["served"]:
            if served["device"] in devices:
                total += served["accesses"]
    return total


def counted(layout):
    """The devices whose forwarded accesses count, and the MiB moved
    through them: the multi-queue card's, or the disk's and the card's."""
    return (("vnet",), 5) if is_mq(layout) else (("vblk", "vnet"), 3)


def run_once(args, layout, place, tmp, port, digest):
    nodes = layout[1]
    procs, clients, marks = [], [], {}
    with open("%s/disk.img" % tmp, "wb") as f:
        f.truncate(2 * args.size << 20)
    start = time.monotonic()
    try:
        for n in range(nodes):
            with open("%s/node%d.err" % (tmp, n), "w") as err:
                procs.append(subprocess.Popen(
                    node_args(args, layout, place, tmp, n, port),
                    stdin=subprocess.DEVNULL, stdout=err,
                    stderr=subprocess.STDOUT))
        for n in range(nodes):
            clients.append(connect("%s/qmp-%d.sock" % (tmp, n), procs[n]))
            info = clients[n].cmd("query-distvm")
            if info["node-id"] != n or info["nodes"] != nodes:
                raise RuntimeError("node %d: the accelerator is not distvm "
                                   "node %d of %d" % (n, n, nodes))
        moves, last_move, moved = 0, 0.0, False
        while "done" not in marks:
            text = read("%s/console-0.log" % tmp)
            if (args.moved and is_mq(layout) and not moved and
                    "distvm-linux: fetch took" in text):
                for cpu, to in MOVED.items():
                    clients[0].cmd("distvm-move-vcpu", **{"cpu-index": cpu,
                                                          "node": to})
                    clients[0].event("DISTVM_VCPU_MOVED",
                                     {"cpu-index": cpu, "to": to})
                moved = True
            if ((args.failover or args.path_down) and is_mq(layout) and
                    place == "local" and
                    "distvm-linux: fetch took" in text and
                    "distvm-linux: fetches took" not in text and
                    time.monotonic() - last_move >= 0.5):
                # pair 2 to home and back, each move done before the next
                to = 0 if moves % 2 == 0 else 2
                if args.path_down:
                    link_set(MQ_TAP_2, "down" if to == 0 else "up")
                    clients[0].event("DISTVM_NETWORK_PATH",
                                     {"node": 2, "up": to == 2})
                else:
                    clients[0].cmd("distvm-move-queue-pair", device="vnet",
                                   pair=2, node=to)
                clients[0].event("DISTVM_QUEUE_PAIR_MOVED",
                                 {"pair": 2, "node": to})
                moves += 1
                last_move = time.monotonic()
            for mark in ("start", "done"):
                if mark not in marks and "distvm-linux: io %s" % mark in text:
                    marks[mark] = forwarded(clients, counted(layout)[0])
            if "FAIL" in text or "Kernel panic" in text:
                raise RuntimeError("the guest failed")
            if time.monotonic() - start > args.timeout:
                raise RuntimeError("timed out after %d s" % args.timeout)
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a node exited")
            time.sleep(0.02)
        if args.path_down and moves % 2:
            link_set(MQ_TAP_2, "up")
        for q in clients:
            q.close()
        clients = []
        for p in procs:
            p.wait(timeout=args.timeout)
        codes = [p.returncode for p in procs]
        if codes != [0] * nodes:
            raise RuntimeError("exit statuses %s" % codes)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        for p in procs:
            if p.poll() is None:
                p.kill()
        text = read("%s/console-0.log" % tmp)
        return {"error": str(e), "detail": "\n".join(text.splitlines()[-20:])}
    text = read("%s/console-0.log" % tmp)
    size = args.size << 20
    want = ("distvm-linux: fetched %d bytes %s" % (size, digest),
            "distvm-linux: disk read back %s" % digest)
    for line in want:
        if line not in text:
            return {"error": "no '%s' on the console" % line, "detail": ""}
    result = {"forwarded": marks["done"] - marks["start"], "moves": moves}
    for t in TRANSFERS + (("fetches",) if is_mq(layout) else ()):
        m = re.search(r"distvm-linux: %s took (\d+) ms" % t, text)
        result[t] = max(int(m.group(1)), 10) / 1000.0
    if is_mq(layout) and text.count("distvm-linux: eth0 fetched %d bytes %s"
                                    % (size, digest)) != 4:
        return {"error": "not 4 exact fetches over the card", "detail": ""}
    return result


def median(results, key):
    values = [r[key] for r in results if "error" not in r]
    return statistics.median(values) if values else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build", nargs="?", default=os.path.join(TOP, "build"))
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--size", type=int, default=16, help="MiB per transfer")
    ap.add_argument("--only", help="2nodes, 3nodes, 2nodes-numa, "
                    "3nodes-numa, 3nodes-mq, 2nodes-irq, 3nodes-irq")
    ap.add_argument("--qemu")
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--keep", help="keep each run's files in DIR/NAME-K")
    ap.add_argument("--trace", metavar="EVENT", action="append",
                    help="enable a QEMU trace event on every node (more "
                    "than once for several), to trace-N.log; with --keep")
    way = ap.add_mutually_exclusive_group()
    way.add_argument("--failover", action="store_true",
                     help="3nodes-mq: move pair 2 to home and back every "
                     "half second during the 4 fetches")
    way.add_argument("--path-down", action="store_true",
                     help="3nodes-mq: take node 2's own tap down and up "
                     "every half second during the 4 fetches")
    way.add_argument("--moved", action="store_true",
                     help="3nodes-mq: move vCPUs 1, 2 and 3 before the 4 "
                     "fetches, and run the pairs with queue-follow=on too")
    args = ap.parse_args()

    def places(layout):
        return PLACES + (("follow",) if args.moved and is_mq(layout) else ())
    args.build = os.path.abspath(args.build)
    args.qemu = args.qemu or os.path.join(args.build, "qemu-system-x86_64")
    layouts = [l for l in LAYOUTS
               if not args.only or l[0] in args.only.split(",")]
    body = os.urandom(args.size << 20)
    digest = hashlib.sha256(body).hexdigest()
    server = http_start(body)
    port = server.server_address[1]
    mq_server = None
    if any(is_mq(l) for l in layouts):
        mq_tap(True, args.path_down)
        mq_server = http_start(body, MQ_HOST, port)
    results = {(l[0], p): [] for l in layouts for p in places(l)}
    failed = False

    for k in range(args.runs):
        for layout in layouts:
            for place in places(layout):
                tmp = tempfile.mkdtemp(prefix="distvm-io-")
                r = run_once(args, layout, place, tmp, port, digest)
                results[(layout[0], place)].append(r)
                print("%s, devices %s, run %d: %s" % (
                    layout[0], place, k + 1, r.get("error") or ", ".join(
                        "%s %.2f s" % (t, r[t]) for t in TRANSFERS +
                        (("fetches",) if "fetches" in r else ())) +
                    ", %d accesses forwarded" % r["forwarded"] +
                    (", %d moves of pair 2 during the fetches" % r["moves"]
                     if r.get("moves") else "")), flush=True)
                if "error" in r:
                    failed = True
                    print(r["detail"])
                if args.keep:
                    shutil.copytree(tmp, os.path.join(
                        args.keep, "%s-%s-%d" % (layout[0], place, k)),
                        ignore=shutil.ignore_patterns("*.sock"))
                shutil.rmtree(tmp)
    server.shutdown()
    if mq_server:
        mq_server.shutdown()
        mq_tap(False)

    print("\n%d MiB fetched, written and read back by vCPU 2 on the last "
          "node; medians of %d runs" % (args.size, args.runs))
    print("%-22s %9s %9s %9s %12s %16s" % ("layout, devices", "fetch",
                                           "write", "read", "fwd/MiB",
                                           "4 fetches at once"))
    for layout in layouts:
        for place in places(layout):
            rs = results[(layout[0], place)]
            if median(rs, "forwarded") is None:
                print("%-22s failed" % ("%s, %s" % (layout[0], place)))
                continue
            mib = counted(layout)[1] * args.size
            print("%-22s %s %12.1f %s" % (
                "%s, %s" % (layout[0], place),
                " ".join("%5.1f MB/s" % (args.size * 1.048576 /
                                         median(rs, t))
                         for t in TRANSFERS),
                median(rs, "forwarded") / mib,
                "%11.1f MB/s" % (4 * args.size * 1.048576 /
                                 median(rs, "fetches"))
                if is_mq(layout) else ""))
    print("\ntargets (devices local against home): forwarded accesses per "
          "MiB at least 20x fewer, every transfer at least as fast")
    for layout in layouts:
        home, local = (results[(layout[0], p)] for p in PLACES)
        if median(home, "forwarded") is None or \
           median(local, "forwarded") is None:
            continue
        fewer = median(home, "forwarded") / max(median(local, "forwarded"), 1)
        # the multi-queue card's: its fetches (the disk stays on home)
        moved = ("fetch", "fetches") if is_mq(layout) else TRANSFERS
        speed = [median(home, t) / median(local, t) for t in moved]
        print("%s: %.0fx fewer forwarded accesses per MiB (%s); speed "
              "local/home %s (%s)" % (
                  layout[0], fewer, "met" if fewer >= 20 else "NOT met",
                  ", ".join("%s %.2f" % (t, s) for t, s in zip(moved, speed)),
                  "met" if min(speed) >= 1 else "NOT met"))
        follow = results.get((layout[0], "follow"))
        if follow and median(follow, "forwarded") is not None:
            print("%s, vCPUs moved: pairs that follow them (follow) %.0fx "
                  "fewer forwarded accesses per MiB than pairs that stay "
                  "(local); 4 fetches follow/local speed %.2f" % (
                      layout[0], median(local, "forwarded") /
                      max(median(follow, "forwarded"), 1),
                      median(local, "fetches") / median(follow, "fetches")))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
