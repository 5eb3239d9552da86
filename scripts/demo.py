#!/usr/bin/env python3
"""make demo: one Linux guest on a 3-node distvm cluster on this machine.

    demo.py BUILD_DIR

Starts three QEMU processes (nodes 0, 1 and 2; node 0 is home and runs
the devices), boots the Linux test guest with 4 vCPUs placed on all three
nodes (one socket each, so that the guest gets a NUMA node on each node,
with its memory there: auto-numa), lets it fetch a file over virtio-net
from an HTTP server on loopback and write it to a virtio-blk disk,
hot-plugs a DIMM whose memory lives on node 2 (distmem-dimm) into the
running guest, whose vCPU 2 writes into it, then moves vCPUs between
nodes while the guest runs a workload on every CPU, and unplugs the DIMM
when the guest gives it up; the guest reads where its vCPUs run from a
distmem-topology device.  It prints the live placement, move downtimes
and page-fault figures as it goes, a summary at the end, and leaves no
process behind.  Exits non-zero if anything went wrong.
"""

import hashlib
import http.server
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmp import QMPClient  # noqa: E402

NODES = 3
PLACEMENT = [0, 1, 2, 1]
WORK = 4000
DIMM = "0x100000000,0x8000000,2"    # guest-physical base, size, its vCPU
FILE_SIZE = 1 << 20
DISK_SIZE = 4 << 20


def log(msg):
    print("demo: " + msg, flush=True)


class FileHandler(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def console(tmp):
    try:
        with open(os.path.join(tmp, "console-0.log"), errors="replace") as f:
            return f.read().replace("\r\n", "\n")
    except FileNotFoundError:
        return ""


def wait_console(tmp, text, procs, timeout):
    end = time.time() + timeout
    while text not in console(tmp):
        if procs[0].poll() is not None:
            raise RuntimeError("the home node exited early")
        if time.time() > end:
            raise RuntimeError("timed out waiting for '%s'" % text)
        time.sleep(0.1)


def memory_faults(q, block):
    for r in q.cmd("query-distvm")["memory"]:
        if r["ramblock"] == block:
            return r["remote-faults"]
    raise RuntimeError("no RAMBlock %s" % block)


def guest_topology(text):
    """The last line of what the guest read from distmem-topology"""
    lines = [line for line in text.splitlines()
             if line.startswith("distvm-linux: topology ")]
    return lines[-1][len("distvm-linux: topology "):] if lines else ""


def dimm_line(qmps):
    """Where the DIMM's RAMBlock d0 is, as each node's query-distvm says"""
    parts = []
    for n, q in enumerate(qmps):
        for r in q.cmd("query-distvm")["memory"]:
            if r["ramblock"] == "d0":
                parts.append("node%d: %d MiB homed on node %d, %d remote "
                             "faults" % (n, r["size"] >> 20, r["home"],
                                         r["remote-faults"]))
                break
        else:
            parts.append("node%d: none" % n)
    return "; ".join(parts)


def dimm_gone(qmps):
    return all(r["ramblock"] != "d0" for q in qmps
               for r in q.cmd("query-distvm")["memory"])


def plug_dimm(qmps):
    """Hot-plug the DIMM of node 2 on home, which plugs it on every node"""
    t0 = time.time()
    qmps[0].cmd("object-add", **{"qom-type": "memory-backend-ram",
                                 "id": "d0", "size": 128 << 20})
    qmps[0].cmd("device_add", driver="distmem-dimm", id="dimm0",
                memdev="d0", node=2,
                **{"cluster-node": 2, "addr": 0x100000000})
    log("hot-plugged a 128 MiB distmem-dimm homed on node 2 into the "
        "running guest (device_add on home, plugged on every node first) "
        "in %.0f ms" % ((time.time() - t0) * 1000))
    log("  " + dimm_line(qmps))


def unplug_dimm(qmps):
    """The guest gave the DIMM up: unplug it; Linux offlines and ejects it"""
    t0 = time.time()
    qmps[0].cmd("device_del", id="dimm0")
    while not dimm_gone(qmps):
        if time.time() > t0 + 60:
            raise RuntimeError("the DIMM did not leave every node")
        time.sleep(0.1)
    log("  the guest released the DIMM: device_del, Linux offlined and "
        "ejected it, gone from every node in %.0f ms" %
        ((time.time() - t0) * 1000))


def guest_ranges(text):
    """The RAM ranges the guest last read from distmem-topology"""
    lines = [line for line in text.splitlines()
             if line.startswith("distvm-linux: topology-ranges")]
    return lines[-1][len("distvm-linux: topology-ranges"):] if lines else ""


def placement_line(info):
    return " ".join("vCPU%d@node%d" % (v["cpu-index"], v["node"])
                    for v in info["vcpus"])


def fault_line(qmps):
    parts = []
    for n, q in enumerate(qmps):
        ram = q.cmd("query-distvm")["ram"]
        parts.append("node%d %d/%d/%d" % (n, ram["read-miss"]["count"],
                                          ram["write-miss"]["count"],
                                          ram["upgrade"]["count"]))
    return "faults read/write/upgrade: " + ", ".join(parts)


def io_line(qmps):
    parts = []
    for n, q in enumerate(qmps[1:], 1):
        io = q.cmd("query-distvm")["io"]
        parts.append("node%d %d/%d/%d" % (n, io["port"]["count"],
                                          io["mmio"]["count"],
                                          io["pic-ack"]["count"]))
    return "device accesses sent home, port/mmio/pic-ack: " + ", ".join(parts)


def main():
    build = os.path.abspath(sys.argv[1])
    qemu = os.path.join(build, "qemu-system-x86_64")
    guests = os.path.join(build, "guests", "linux")
    tmp = tempfile.mkdtemp(prefix="distvm-demo.")
    procs = []
    qmps = []
    data = bytes((i * 7 + (i >> 8)) & 0xff for i in range(FILE_SIZE))
    FileHandler.body = data
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FileHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    disk = os.path.join(tmp, "disk.img")
    with open(disk, "wb") as f:
        f.truncate(DISK_SIZE)
    start = time.time()
    try:
        log("starting %d nodes; vCPU placement %s (node 0 is home and runs"
            " the devices; a guest NUMA node on each node, its RAM there)" %
            (NODES, PLACEMENT))
        for n in range(NODES):
            accel = ("distvm,node-id=%d,nodes=%d,listen=unix:%s/node%d.sock,"
                     "placement=%s" % (n, NODES, tmp, n,
                                       ":".join(map(str, PLACEMENT))))
            if n:
                accel += ",home=unix:%s/node0.sock" % tmp
            drive = ("file=%s,format=raw" % disk if n == 0 else
                     "driver=null-co,size=%d" % DISK_SIZE)
            args = [qemu, "-accel", accel, "-nodefaults", "-machine", "pc",
                    "-m", "512M,slots=1,maxmem=1G", "-smp", "4,sockets=4",
                    "-display", "none",
                    "-kernel", os.path.join(guests, "vmlinuz"),
                    "-initrd", os.path.join(guests, "initramfs.cpio.gz"),
                    "-append", "console=ttyS0 panic=-1 distvm.work=%d "
                    "distvm.io_cpu=2 distvm.http=10.0.2.2:%d/file "
                    "distvm.disk=vda distvm.dimm=%s distvm.topology=1" %
                    (WORK, port, DIMM),
                    "-device", "distmem-topology",
                    "-drive", "if=none,id=disk0," + drive,
                    "-device", "virtio-blk-pci,drive=disk0",
                    "-netdev", "user,id=net0",
                    "-device", "virtio-net-pci,netdev=net0,romfile=",
                    "-serial", "file:%s/console-%d.log" % (tmp, n),
                    "-qmp", "unix:%s/qmp-%d.sock,server=on,wait=off" %
                    (tmp, n)]
            procs.append(subprocess.Popen(
                args, stdout=open(os.path.join(tmp, "node%d.out" % n), "w"),
                stderr=subprocess.STDOUT))
            sock = os.path.join(tmp, "qmp-%d.sock" % n)
            for _ in range(100):
                if os.path.exists(sock):
                    break
                time.sleep(0.05)
            qmps.append(QMPClient(sock))
        for n, q in enumerate(qmps):
            while q.cmd("query-distvm")["state"] != "running":
                time.sleep(0.1)
        info = qmps[0].cmd("query-distvm")
        log("cluster formed in %.1f s: %s" % (time.time() - start,
                                              placement_line(info)))
        log("booting Linux; vCPUs 1, 2 and 3 start on nodes 1 and 2 through"
            " forwarded INIT/SIPI")
        wait_console(tmp, "distvm-linux: nproc", procs, 600)
        text = console(tmp)
        for line in text[:text.rfind("\n") + 1].splitlines():
            if line.startswith("distvm-linux:"):
                log("guest: " + line[len("distvm-linux: "):])
        # where the vCPUs were at each generation of distmem-topology,
        # which goes up after every move and memory plug
        where = list(PLACEMENT)
        history = [" ".join(map(str, where))]
        wait_console(tmp, "distvm-linux: dimm waiting", procs, 600)
        plug_dimm(qmps)
        history.append(history[-1])
        wait_console(tmp, "distvm-linux: workload start", procs, 600)
        text = console(tmp)
        for line in text.splitlines():
            if "fetched" in line or "disk read back" in line:
                log("guest (I/O from vCPU 2 on node 2): " +
                    line[len("distvm-linux: "):])
            elif line.startswith("distvm-linux: dimm memory"):
                log("guest (a DIMM homed on node 2): " +
                    line[len("distvm-linux: "):])
            elif line.startswith("distvm-linux: dimm pages"):
                log("guest: vCPU 2 on node 2 " + line[len("distvm-linux: "
                                                          "dimm "):] +
                    " of the DIMM; node 2's remote faults on it: %d" %
                    memory_faults(qmps[2], "d0"))
        log("guest (distmem-topology): " + guest_topology(text))
        log("guest (distmem-topology RAM ranges, base+size@node, h: "
            "homed):" + guest_ranges(text))
        log("workload running on 4 CPUs; moving vCPUs between nodes:")
        downtimes = []
        last_io = ""
        k = 0
        unplugged = False
        while "distvm-linux: workload done" not in console(tmp):
            if procs[0].poll() is not None:
                raise RuntimeError("the home node exited early")
            if not unplugged and "dimm released" in console(tmp):
                unplug_dimm(qmps)
                history.append(history[-1])
                unplugged = True
                continue
            cpu = k % 4
            to = (where[cpu] + 1 + (k // 4) % (NODES - 1)) % NODES
            qmps[k % NODES].cmd("distvm-move-vcpu", **{"cpu-index": cpu,
                                                        "node": to})
            ev = qmps[0].event("DISTVM_VCPU_MOVED", {"cpu-index": cpu,
                                                     "to": to})
            where[cpu] = to
            history.append(" ".join(map(str, where)))
            downtimes.append(ev["data"]["downtime-us"])
            k += 1
            if k % 4 == 0:
                info = qmps[0].cmd("query-distvm")
                log("  %3d moves, last downtime %4d us | %s" %
                    (k, downtimes[-1], placement_line(info)))
                log("      " + fault_line(qmps))
                last_io = io_line(qmps)
                log("      " + last_io)
            time.sleep(0.2)
        log("workload done after %d moves; the guest powers off" % k)
        statuses = [p.wait(timeout=120) for p in procs]
        text = console(tmp)
        # The guest read the device as its workload ended: after some of
        # the moves, and then the vCPUs were where those moves left them.
        seen = guest_topology(text).split()
        gen = int(seen[3]) if len(seen) > 4 else -1
        topology_ok = (0 <= gen < len(history) and
                       seen[:3] == ["nodes", str(NODES), "generation"] and
                       " ".join(seen[5:]) == history[gen])
        log("guest (distmem-topology): %s (%s placement at generation %d)"
            % (" ".join(seen), "the" if topology_ok else "NOT the", gen))
        for line in text.splitlines():
            if line.startswith("distvm-linux: work "):
                log("guest: " + line[len("distvm-linux: "):])
        with open(disk, "rb") as f:
            disk_ok = f.read(FILE_SIZE) == data
        want = hashlib.sha256(data).hexdigest()
        fetched_ok = ("fetched %d bytes %s" % (FILE_SIZE, want)) in text
        bad = [w for w in ("soft lockup", "RCU Stall", "BUG:", "Oops",
                           "Call Trace:", "detected stalls") if w in text]
        ds = sorted(downtimes)
        log("summary:")
        log("  nodes %d, vCPUs 4, guest time %.0f s, node exit statuses %s" %
            (NODES, time.time() - start, statuses))
        if ds:
            log("  vCPU moves %d: downtime p50 %d us, p99 %d us, max %d us" %
                (len(ds), statistics.median(ds),
                 ds[min(len(ds) - 1, int(len(ds) * 0.99))], ds[-1]))
        log("  HTTP fetch over virtio-net %s, disk write/read-back %s, "
            "disk image %s" % ("ok" if fetched_ok else "WRONG",
                               "ok" if "disk read back " + want in text
                               else "WRONG",
                               "ok" if disk_ok else "WRONG"))
        if last_io:
            log("  " + last_io)
        log("  console: %s" % ("clean" if not bad else "has " + ", ".join(bad)))
        dimm_ok = unplugged and "distvm-linux: dimm removed" in text
        log("  distmem-dimm: hot-plugged, written by vCPU 2 on node 2, "
            "unplugged: %s" % ("ok" if dimm_ok else "WRONG"))
        ok = (statuses == [0] * NODES and disk_ok and fetched_ok and
              topology_ok and dimm_ok and not bad and
              "workload done" in text)
        log("PASS" if ok else "FAIL")
        return 0 if ok else 1
    except (RuntimeError, ConnectionError, OSError,
            subprocess.TimeoutExpired) as e:
        log("FAIL: %s" % e)
        sys.stderr.write(console(tmp)[-4000:])
        return 1
    finally:
        server.shutdown()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
