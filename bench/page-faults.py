#!/usr/bin/env python3
"""distvm benchmark: remote page fault latency next to a raw round trip.

    page-faults.py BUILD_DIR [--transport unix|tcp] [--pages N]

Starts a 2-node cluster (both nodes stopped, -S, so that no vCPU competes
for the machine's cores), fills N pages on the home node, then on node 1:
reads them (read miss), writes them (upgrade: node 1 holds a read-only
copy) and writes N other pages (write miss), through qtest.  The latency
of each fault is measured inside node 1 (from the userfaultfd event to
the page in place) and read back with query-distvm.  In the same run,
bench/socket-rtt measures a raw 48-byte request / 4 KiB reply round trip
between two processes over the same kind of socket, paced like the
faults (the driver's round trip to qtest leaves both cores idle between
two faults, and waking an idle core is a large part of a round trip on
small VMs); it runs before and after the faults and its samples are
pooled, so that both figures see the same machine.

It also times, with bench/uffd-ops and the same pacing, the page-table
changes that each kind of fault needs on this host, and prints each
kind's floor: the raw round trip plus those changes (a read miss: the
owner write-protects the page, the requester places it; a write miss:
the owner also discards it; an upgrade: the other copy is discarded, the
requester's made writable).  What a fault takes beyond its floor is the
protocol's and distvm's own.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
from qmp import qmp_command  # noqa: E402

REGION_READ = 0x01000000      # 16 MiB: read-miss, then upgrade
REGION_WRITE = 0x03000000     # 48 MiB: write-miss


class QtestConn:
    """The qtest text protocol over a UNIX socket."""

    def __init__(self, path):
        deadline = time.time() + 30
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.f = self.sock.makefile("rw")

    def cmd(self, line):
        self.f.write(line + "\n")
        self.f.flush()
        while True:
            reply = self.f.readline()
            if not reply:
                raise ConnectionError("qtest connection closed")
            if reply.startswith("OK") or reply.startswith("FAIL"):
                if reply.startswith("FAIL"):
                    raise RuntimeError(reply)
                return reply.split()[1:] if len(reply.split()) > 1 else []


def make_tls_dir(tmp):
    """A CA and one node certificate (both purposes), with certtool."""
    d = os.path.join(tmp, "tls")
    os.mkdir(d)

    def run(*argv):
        subprocess.run(["certtool"] + list(argv), cwd=d, check=True,
                       capture_output=True)

    with open(os.path.join(d, "ca.info"), "w") as f:
        f.write("cn = bench CA\nca\ncert_signing_key\n")
    with open(os.path.join(d, "node.info"), "w") as f:
        f.write("cn = distvm-node\nip_address = 127.0.0.1\n"
                "tls_www_server\ntls_www_client\n"
                "signing_key\n")
    run("--generate-privkey", "--key-type=ecdsa", "--outfile", "ca-key.pem")
    run("--generate-self-signed", "--load-privkey", "ca-key.pem",
        "--template", "ca.info", "--outfile", "ca-cert.pem")
    run("--generate-privkey", "--key-type=ecdsa", "--outfile",
        "server-key.pem")
    run("--generate-certificate", "--load-privkey", "server-key.pem",
        "--load-ca-certificate", "ca-cert.pem", "--load-ca-privkey",
        "ca-key.pem", "--template", "node.info", "--outfile",
        "server-cert.pem")
    shutil.copy(os.path.join(d, "server-cert.pem"),
                os.path.join(d, "client-cert.pem"))
    shutil.copy(os.path.join(d, "server-key.pem"),
                os.path.join(d, "client-key.pem"))
    return d


def start_node(qemu, tmp, node, nodes, transport, port_base, tls_dir):
    if transport == "unix":
        listen = "unix:%s/node%d.sock" % (tmp, node)
        home = "unix:%s/node0.sock" % tmp
    else:
        listen = "tcp:127.0.0.1:%d" % (port_base + node)
        home = "tcp:127.0.0.1:%d" % port_base
    accel = "distvm,node-id=%d,nodes=%d,listen=%s" % (node, nodes, listen)
    if node:
        accel += ",home=" + home
    tls = []
    if tls_dir:
        accel += ",tls-creds=tls0,tls-authz=authz0"
        tls = ["-object", "tls-creds-x509,id=tls0,dir=%s,endpoint=server,"
               "verify-peer=on" % tls_dir,
               "-object", "authz-simple,id=authz0,identity=CN=distvm-node"]
    args = [qemu] + tls + ["-accel", accel, "-machine", "pc", "-m", "256M",
            "-nodefaults", "-display", "none", "-S",
            "-name", "debug-threads=on",
            "-qmp", "unix:%s/qmp%d.sock,server=on,wait=off" % (tmp, node),
            "-qtest", "unix:%s/qtest%d.sock,server=on,wait=off" % (tmp, node)]
    if os.environ.get("DISTVM_BENCH_TRACE"):
        args += ["-msg", "timestamp=on",
                 "-trace", "enable=distvm_*,file=/tmp/trace%d.log" % node]
    return subprocess.Popen(args, stderr=open("%s/node%d.err" % (tmp, node),
                                               "w"))


def wait_running(tmp, node):
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            r = qmp_command("%s/qmp%d.sock" % (tmp, node), "query-distvm")
            if r["return"]["state"] == "running":
                return r["return"]
        except (OSError, ConnectionError, KeyError):
            pass
        time.sleep(0.05)
    raise TimeoutError("node %d did not join" % node)


def raw_rtt(tool, transport, count, gap_us):
    out = subprocess.run([tool, transport, str(count), str(gap_us)],
                         capture_output=True, text=True, check=True,
                         env=dict(os.environ, SAMPLES="1")).stdout
    return [float(x) for x in out.split()]


# The host operations on each kind's path (bench/uffd-ops names)
FLOOR_OPS = {
    "read-miss": ("write-protect", "place"),
    "write-miss": ("write-protect", "discard", "place"),
    "upgrade": ("discard", "unprotect"),
}


def host_ops(tool, count, gap_us):
    out = subprocess.run([tool, str(count), str(gap_us)], capture_output=True,
                         text=True, check=True).stdout
    return {op: float(p50) for op, p50, _ in
            (line.split() for line in out.splitlines())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--transport", choices=["unix", "tcp"], default="unix")
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--tls", action="store_true",
                    help="x509 TLS between the nodes (the raw round trip "
                    "stays plain: the ratio shows what TLS costs)")
    args = ap.parse_args()

    qemu = os.path.join(args.build, "qemu-system-x86_64")
    rtt_tool = os.path.join(args.build, "bench", "socket-rtt")
    ops_tool = os.path.join(args.build, "bench", "uffd-ops")
    # The gap between two faults: qtest's round trip from this script.
    gap_us = 150
    raw_before = raw_rtt(rtt_tool, args.transport, args.pages, gap_us)
    tmp = tempfile.mkdtemp(prefix="distvm-bench-")
    port_base = 20000 + os.getpid() % 20000
    procs = []
    try:
        tls_dir = make_tls_dir(tmp) if args.tls else None
        for node in (0, 1):
            procs.append(start_node(qemu, tmp, node, 2, args.transport,
                                    port_base, tls_dir))
        home = QtestConn("%s/qtest0.sock" % tmp)
        peer = QtestConn("%s/qtest1.sock" % tmp)
        for node in (0, 1):
            wait_running(tmp, node)

        n = args.pages
        for i in range(n):
            home.cmd("writeq 0x%x 0x%x" % (REGION_READ + i * 4096, i + 1))
            home.cmd("writeq 0x%x 0x%x" % (REGION_WRITE + i * 4096, i + 1))
        for i in range(n):
            peer.cmd("readq 0x%x" % (REGION_READ + i * 4096))
        for i in range(n):
            peer.cmd("writeq 0x%x 0x%x" % (REGION_READ + i * 4096, i))
        for i in range(n):
            peer.cmd("writeq 0x%x 0x%x" % (REGION_WRITE + i * 4096, i))
        ram = qmp_command("%s/qmp1.sock" % tmp,
                          "query-distvm")["return"]["ram"]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    raw = sorted(raw_before + raw_rtt(rtt_tool, args.transport, args.pages,
                                      gap_us))
    ops = host_ops(ops_tool, args.pages, gap_us)
    rtt50 = raw[(len(raw) - 1) // 2]
    rtt99 = raw[(len(raw) - 1) * 99 // 100]

    print("distvm remote page faults, 2 nodes over %s sockets%s, %d faults "
          "of each kind" % (args.transport, " with TLS" if args.tls else "",
                            args.pages))
    print("%-22s %9s %9s %12s %12s" % ("", "p50 (us)", "p99 (us)",
                                      "p50 / raw", "p99 / raw"))
    print("%-22s %9.0f %9.0f %12s %12s" % ("raw request/4K reply*", rtt50,
                                           rtt99, "1.00", "1.00"))
    for kind in ("read-miss", "write-miss", "upgrade"):
        f = ram[kind]
        if f["count"] < args.pages:
            sys.exit("bench: only %d %s faults happened" % (f["count"], kind))
        print("%-22s %9d %9d %12.2f %12.2f" % (
            kind, f["p50-us"], f["p99-us"], f["p50-us"] / rtt50,
            f["p99-us"] / rtt99))
    print("* %d round trips, one every ~%d us, half before and half after "
          "the faults" % (len(raw), gap_us))
    print("host page-table changes, p50 (us), one every ~%d us: %s" % (
        gap_us, ", ".join("%s %.1f" % kv for kv in ops.items())))
    print("%-22s %9s %12s %14s" % ("floor: raw + changes", "p50 (us)",
                                   "floor / raw", "p50 / floor"))
    for kind, needed in FLOOR_OPS.items():
        floor = rtt50 + sum(ops[op] for op in needed)
        print("%-22s %9.0f %12.2f %14.2f" % (
            kind, floor, floor / rtt50, ram[kind]["p50-us"] / floor))


if __name__ == "__main__":
    main()
