#!/usr/bin/env python3
"""distvm benchmark: the Linux test guest on 1, 2 and 3 nodes next to TCG.

    linux-nodes.py [BUILD_DIR] [--runs K] [--work N] [--only NAME[,NAME]]
                   [--qemu PATH] [--timeout S] [--append ARGS]
                   [--hot N [--kallsyms FILE]] [--trace-faults]
                   [--trace EVENT]... [--sample-rip] [--keep DIR] [-v]

Runs the Linux test guest (4 vCPUs, 512 MiB; init runs one workload per
CPU and a multi-threaded xz round trip, distvm.work=N, then powers off)
to completion under: tcg (-accel tcg), 1node (-accel distvm), 2nodes
(vCPUs placed 0:0:1:1), 3nodes (0:1:2:1), both without -numa options
(so with the NUMA nodes auto-numa makes), 3nodes-ipi (3nodes with
pv-tlb-flush=off: the guest flushes other vCPUs' TLBs with IPIs, not
the hypercall), 3nodes-flat (3nodes with
auto-numa=off: no guest NUMA nodes, all memory on home), 2nodes-numa /
3nodes-numa (one guest NUMA node per cluster node given with -numa),
3nodes-affinity (3nodes-flat under policy=affinity, issue 13's 6(c)),
3nodes-ckpt50 / -ckpt100 / -ckpt200 (3nodes with replicas=1 and a
checkpoint epoch every 50, 100 or 200 ms, issue 15: their overhead
against 3nodes, the epochs' pause p50/p99 and bytes per epoch as home
reports them; 3nodes-rollback: 3nodes-ckpt100 rolled back to its last
committed epoch, x-distvm-rollback, every second of its workload, with
the pause of each rollback; 3nodes-kill: 3nodes-ckpt100 with node 2
killed, SIGKILL, 1 s into its workload: the time from the kill until
home reports the node taken over, seen from here by polling every 20 ms,
and home's own recovery time; 3nodes-kill-home: the same with home
killed, node 1, its standby, taking its place (the guest's console goes
on on node 1's serial port); 3nodes-parity and 3nodes-kill-parity: the
same as 3nodes-ckpt100 and 3nodes-kill with redundancy=parity, and the
memory each node keeps of the others' at power-off, against
redundancy=replica; 4nodes-ckpt100 and 4nodes-parity: the same on 4
nodes, a vCPU each), 3nodes-pinned / 3nodes-numa-pinned (each node held
to one host CPU with taskset, the nodes spread over the CPUs this script
may use so that each CPU runs about as many vCPUs as another: as if each
node had a host of its own, which is what a cluster is; plain TCG uses
all of them), and 3nodes-home2, 3nodes-numa-home2 and their -pinned
(the same with two vCPUs on home, 0:0:1:2: Linux moves work away from a
NUMA node of one CPU, home's included, whenever another task becomes
runnable there, and then runs much of its boot, its init and its
console output on other nodes, away from the kernel's memory and the
devices); K runs of each, round-robin, so that
the drift of a noisy machine spreads over all.  The machine is -smp
4,sockets=4: auto-numa needs each node's vCPUs to fill whole sockets.
Per run, seen from here by polling node 0's console every 20 ms: wall
time (processes started to all exited, status 0), boot time (to init's
"distvm-linux: nproc") and workload time ("workload start" to "workload
done").  The accelerator is checked through QMP; on a cluster,
query-distvm is polled on every node every 0.5 s and the last answers
give the remote faults by kind and the device accesses sent home, summed
over nodes (the last half second before power-off is missed).  Prints
medians, all runs, ratios to TCG, the counts, the clocksource Linux
ended on (-v: all clocksource and TSC lines), then the targets.
Under the counts, the p50 latency of each kind of fault on each node
(first run).

To see which guest pages travel: --hot N also polls
x-query-distvm-hot-pages and prints the N pages the nodes asked for most
in the first run, by guest-physical address.  With --append nokaslr and
--kallsyms FILE, a copy of /proc/kallsyms from the same kernel booted
with nokaslr (e.g. under plain TCG with -append "console=ttyS0 nokaslr
rdinit=/bin/sh", then "mount -t proc proc /proc; cat /proc/kallsyms"),
it names the kernel symbols in each page.  To see how they travel:
--trace-faults traces each node's remote faults and its manager's
requests, and prints for the first run of each cluster what
bench/faulttrace.py finds in them (routes, how long pages are held,
read misses upgraded next, each node's waits by kind, how long copies
sat unread before a write took them, the request sequences of the
hottest pages);
the traced runs are slower.  --trace EVENT enables any other QEMU trace
event on every node (distvm_io_forward: which device registers vCPUs away
from home use; the console's UART is the busiest while Linux boots),
written to trace-N.log in the run's directory.  --sample-rip reads each
vCPU's RIP through each node's monitor about 20 times a second and
prints, for the first run of each configuration, where each vCPU was in
each phase (firmware and decompression, the kernel's boot, init before
the workload, the workload), by kernel symbol with --kallsyms and
--append nokaslr (a blocked vCPU shows the instruction it waits on).
QEMU's threads have names
(-name debug-threads=on) for top -H and perf.

CPU time: each run's nodes' CPU time (user and system, from the
kernel's accounting of the children this script reaped) and its split
by thread, read from /proc every 0.25 s: the vCPUs, the threads that
receive from other nodes (distvm-conn, distvm-join, distvm-rx), the
fault thread (distvm-fault) and the rest (main loop, send, drop...).
On a host whose CPUs the guest keeps busy, the spread guest's wall time
grows with the CPU time the nodes spend serving each other.
"""

import argparse
import bisect
import io
import os
import re
import resource
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
from benchlib import NUMA2, NUMA3, NUMA3_HOME2, read  # noqa: E402
import faulttrace  # noqa: E402

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
MACHINE = ["-machine", "pc", "-m", "512M", "-smp", "4,sockets=4",
           "-nodefaults", "-name", "debug-threads=on",
           "-display", "none"]
# name, title, nodes (0: plain TCG), placement, extra machine options,
# whether each node is held to one host CPU, more -accel distvm options
CONFIGS = [
    ("tcg", "tcg", 0, None, [], False, ""),
    ("1node", "distvm 1 node", 1, None, [], False, ""),
    ("2nodes", "2 nodes", 2, "0:0:1:1", [], False, ""),
    ("3nodes", "3 nodes", 3, "0:1:2:1", [], False, ""),
    # the same with TLB flushes made by IPIs, not the guest's hypercall
    ("3nodes-ipi", "3 nodes, pv-tlb-flush=off", 3, "0:1:2:1", [], False,
     "pv-tlb-flush=off"),
    # the same without the NUMA nodes auto-numa makes (all memory on home)
    ("3nodes-flat", "3 nodes, auto-numa=off", 3, "0:1:2:1", [], False,
     "auto-numa=off"),
    ("2nodes-numa", "2 nodes + numa", 2, "0:0:1:1", NUMA2, False, ""),
    ("3nodes-numa", "3 nodes + numa", 3, "0:1:2:1", NUMA3, False, ""),
    ("3nodes-pinned", "3 nodes, pinned", 3, "0:1:2:1", [], True, ""),
    ("3nodes-numa-pinned", "3 nodes + numa, pinned", 3, "0:1:2:1", NUMA3,
     True, ""),
    # the same four with two vCPUs on home
    ("3nodes-home2", "3 nodes, 2 on home", 3, "0:0:1:2", [], False, ""),
    ("3nodes-numa-home2", "3 nodes + numa, 2 on home", 3, "0:0:1:2",
     NUMA3_HOME2, False, ""),
    ("3nodes-home2-pinned", "3 nodes, 2 on home, pinned", 3, "0:0:1:2", [],
     True, ""),
    ("3nodes-numa-home2-pinned", "3 nodes + numa, 2 on home, pinned", 3,
     "0:0:1:2", NUMA3_HOME2, True, ""),
    # issue 13, 6(c): the same placement as 3nodes, under policy=affinity
    # without NUMA nodes, which the policy leaves alone: 3nodes-flat's
    ("3nodes-affinity", "3 nodes, affinity", 3, "0:1:2:1", [], False,
     "policy=affinity,auto-numa=off"),
    # issue 15: 3nodes with checkpoint epochs every 50, 100 and 200 ms
    ("3nodes-ckpt50", "3 nodes, epochs 50 ms", 3, "0:1:2:1", [], False,
     "replicas=1,checkpoint-ms=50"),
    ("3nodes-ckpt100", "3 nodes, epochs 100 ms", 3, "0:1:2:1", [], False,
     "replicas=1,checkpoint-ms=100"),
    ("3nodes-ckpt200", "3 nodes, epochs 200 ms", 3, "0:1:2:1", [], False,
     "replicas=1,checkpoint-ms=200"),
    # ... and 3nodes-ckpt100 rolled back every second of its workload
    ("3nodes-rollback", "3 nodes, rollbacks", 3, "0:1:2:1", [], False,
     "replicas=1,checkpoint-ms=100"),
    # ... and 3nodes-ckpt100 with node 2 killed during its workload
    ("3nodes-kill", "3 nodes, node 2 killed", 3, "0:1:2:1", [], False,
     "replicas=1,checkpoint-ms=100"),
    # ... and with home killed: node 1, its standby, takes its place
    ("3nodes-kill-home", "3 nodes, home killed", 3, "0:1:2:1", [], False,
     "replicas=1,checkpoint-ms=100"),
    # 3nodes-ckpt100 and 3nodes-kill with home keeping parity, not copies
    ("3nodes-parity", "3 nodes, parity 100 ms", 3, "0:1:2:1", [], False,
     "replicas=1,checkpoint-ms=100,redundancy=parity"),
    ("3nodes-kill-parity", "3 nodes, parity, 2 killed", 3, "0:1:2:1", [],
     False, "replicas=1,checkpoint-ms=100,redundancy=parity"),
    # ... and on 4 nodes, where parity keeps less than the copies do
    ("4nodes-ckpt100", "4 nodes, epochs 100 ms", 4, "0:1:2:3", [], False,
     "replicas=1,checkpoint-ms=100"),
    ("4nodes-parity", "4 nodes, parity 100 ms", 4, "0:1:2:3", [], False,
     "replicas=1,checkpoint-ms=100,redundancy=parity"),
]
CKPT = ("3nodes-ckpt50", "3nodes-ckpt100", "3nodes-ckpt200",
        "3nodes-rollback", "3nodes-kill", "3nodes-kill-home",
        "3nodes-parity", "3nodes-kill-parity", "4nodes-ckpt100",
        "4nodes-parity")
ROLLBACK = "3nodes-rollback"
ROLLBACK_EVERY_S = 1.0
# The configurations that kill a node, and the node each kills
KILLS = {"3nodes-kill": 2, "3nodes-kill-parity": 2, "3nodes-kill-home": 0}
KILL_AFTER_S = 1.0      # into the workload
HOST_CPUS = sorted(os.sched_getaffinity(0))
WORK_DEFAULT = 60000    # tests/qtest/distvm-linux-test.c
FAULTS = ("read-miss", "write-miss", "upgrade")
IO = ("port", "mmio", "pic-ack")
MARKS = {"boot": "distvm-linux: nproc",
         "start": "distvm-linux: workload start",
         "done": "distvm-linux: workload done"}


def consoles(tmp, count):
    """The guest's console: node 0's serial port, then those of the
    others, which print only once one took home's place"""
    return "".join(read("%s/console-%d.log" % (tmp, n))
                   for n in range(count))


def host_cpu(placement, node):
    """The host CPU that a pinned configuration holds @node to: nodes with
    more vCPUs first, each on the CPU that runs the fewest vCPUs so far"""
    counts = {}
    for n in placement.split(":"):
        counts[int(n)] = counts.get(int(n), 0) + 1
    load = [0] * len(HOST_CPUS)
    for n in sorted(counts, key=lambda n: (-counts[n], n)):
        cpu = load.index(min(load))
        load[cpu] += counts[n]
        if n == node:
            return HOST_CPUS[cpu]
    raise ValueError("node %d runs no vCPU in %s" % (node, placement))


def node_args(qemu, build, work, cfg, tmp, n, opts, append, trace, events):
    _, _, nodes, placement, extra, pinned, cfg_opts = cfg
    opts = ",".join(o for o in (opts, cfg_opts) if o)
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
    events = list(events or [])
    if trace and nodes > 1:
        events += ["distvm_fault_done", "distvm_mgr_start"]
    traced = []
    if events:
        traced = ["-msg", "timestamp=on"]
        for e in events:
            traced += ["-trace", "enable=" + e]
        # the last -trace names the file (each one sets it)
        traced += ["-trace", "file=%s/trace-%d.log" % (tmp, n)]
    guest = os.path.join(build, "guests", "linux")
    pin = (["taskset", "-c", str(host_cpu(placement, n))]
           if pinned else [])
    return (pin + [qemu, "-accel", accel] + MACHINE + extra + traced +
            ["-kernel", os.path.join(guest, "vmlinuz"),
             "-initrd", os.path.join(guest, "initramfs.cpio.gz"),
             "-append", "console=ttyS0 panic=-1 distvm.work=%d%s" % (
                 work, " " + append if append else ""),
             "-serial", "file:%s/console-%d.log" % (tmp, n),
             "-qmp", "unix:%s/qmp-%d.sock,server=on,wait=off" % (tmp, n)])


# The phases --sample-rip tells apart, by the first console line of each
RIP_PHASES = (("firmware", None), ("kernel boot", "Linux version"),
              ("init", MARKS["boot"]), ("workload", MARKS["start"]))
RIP_LINE = re.compile(r"^CPU#(\d+)|RIP=([0-9a-f]{16})", re.M)


class Poller(threading.Thread):
    """Checks each node's accelerator, then (for a cluster) keeps the
    last query-distvm answer of each node until its QEMU exits.  With
    @rips, also counts each vCPU's RIP by phase: rips[phase][cpu][rip]."""

    def __init__(self, tmp, procs, nodes, hot, rips=None, rollback=False,
                 kill=None):
        super().__init__(daemon=True)
        self.tmp, self.procs, self.nodes, self.hot = tmp, procs, nodes, hot
        self.rips = rips
        self.rollback = rollback
        self.kill = kill            # the node to kill, or None
        self.home = 0               # ... and the node home is then
        self.killed_at = None       # monotonic: node @kill killed
        self.recovered_s = None     # ... to home's recoveries seen at 1
        self.recovery_ms = None     # home's last-recovery-ms
        self.start_seen = None      # monotonic: the workload started
        self.rollback_us = []       # the pause of each rollback
        self.rolled_at, self.rolled = None, 0
        self.last = [None] * len(procs)
        self.hot_pages = [[] for _ in procs]
        self.checked = 0
        self.errors = []
        self.stop = threading.Event()

    def read_hot(self, n, q):
        """With --hot, node @n's hot pages so far, through @q"""
        if self.hot and self.nodes > 1:
            self.hot_pages[n] = q.cmd("x-query-distvm-hot-pages",
                                      count=self.hot)

    def sample_rips(self, clients, hot):
        """Each vCPU's RIP on the node that runs it (its registers are
        that node's; a parked vCPU's are not read there); with @hot, also
        each node's hot pages."""
        text = consoles(self.tmp, len(self.procs))
        phase = [name for name, line in RIP_PHASES
                 if line is None or line in text][-1]
        for n, q in enumerate(clients):
            if not q:
                continue
            try:
                info = q.cmd("query-distvm") if self.nodes else None
                if hot:
                    self.read_hot(n, q)
                out = q.cmd("human-monitor-command",
                            **{"command-line": "info registers -a"})
            except (OSError, RuntimeError, ValueError):
                clients[n] = None       # it exited
                continue
            if info and self.nodes > 1:
                self.last[n] = info
            cpu = None
            for m in RIP_LINE.finditer(out):
                if m.group(1) is not None:
                    cpu = int(m.group(1))
                elif cpu is not None and self.runs_here(info, cpu):
                    per_cpu = self.rips.setdefault(phase, {})
                    count = per_cpu.setdefault(cpu, {})
                    rip = int(m.group(2), 16)
                    count[rip] = count.get(rip, 0) + 1

    @staticmethod
    def runs_here(info, cpu):
        if info is None:
            return True
        return any(v["cpu-index"] == cpu and v["node"] == info["node-id"]
                   for v in info.get("vcpus", []))

    def roll_back(self, q):
        """During the workload, roll the guest back every
        ROLLBACK_EVERY_S, once the last rollback is done; note each one's
        pause."""
        text = consoles(self.tmp, len(self.procs))
        if MARKS["start"] not in text or MARKS["done"] in text:
            return
        try:
            cp = q.cmd("query-distvm")["checkpoint"]
            if len(self.rollback_us) < cp["rollbacks"]:
                self.rollback_us.append(cp["last-rollback-us"])
            if len(self.rollback_us) < cp["rollbacks"] or (
                    self.rolled_at is not None and
                    (len(self.rollback_us) < self.rolled or
                     time.monotonic() - self.rolled_at < ROLLBACK_EVERY_S)):
                return
            q.cmd("x-distvm-rollback")
            self.rolled_at = time.monotonic()
            self.rolled = len(self.rollback_us) + 1
        except (OSError, RuntimeError, ValueError) as e:
            self.errors.append("rollback: %s" % e)

    def kill_node(self, clients):
        """KILL_AFTER_S into the workload, SIGKILL node @kill; then
        watch home's query-distvm (node 1's, in the place of home killed)
        until it took the node's part over."""
        if self.killed_at is None:
            text = read("%s/console-0.log" % self.tmp)
            if MARKS["start"] not in text:
                return
            if self.start_seen is None:
                self.start_seen = time.monotonic()
            if time.monotonic() - self.start_seen < KILL_AFTER_S:
                return
            self.procs[self.kill].send_signal(signal.SIGKILL)
            self.killed_at = time.monotonic()
            self.home = 1 if self.kill == 0 else 0
            if clients[self.kill]:
                clients[self.kill].close()
                clients[self.kill] = None
            return
        if self.recovered_s is None and clients[self.home]:
            cp = clients[self.home].cmd("query-distvm")["checkpoint"]
            if cp["recoveries"]:
                self.recovered_s = time.monotonic() - self.killed_at
                self.recovery_ms = cp["last-recovery-ms"]

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
            samples = 0
            while (self.rips is not None and any(clients) and
                   not self.stop.wait(0.05)):
                # the hot pages every 0.5 s, as below
                self.sample_rips(clients, self.hot and samples % 10 == 0)
                samples += 1
            while self.nodes > 1 and not self.stop.wait(
                    0.02 if self.kill is not None and
                    self.recovered_s is None else 0.5):
                if self.rollback and clients[0]:
                    self.roll_back(clients[0])
                if self.kill is not None:
                    self.kill_node(clients)
                    if self.recovered_s is None:
                        continue
                for n, q in enumerate(clients):
                    try:
                        if q:
                            self.last[n] = q.cmd("query-distvm")
                            self.read_hot(n, q)
                    except (OSError, RuntimeError, ValueError):
                        clients[n] = None
        except (OSError, RuntimeError, ValueError) as e:
            self.errors.append("QMP: %s" % e)
        for q in clients:
            if q:
                q.close()


# The kinds of QEMU's threads, by name (-name debug-threads=on)
THREAD_KINDS = (("vcpu", re.compile(r"^CPU \d+/")),
                ("receive", re.compile(r"^distvm-(conn|join|rx)$")),
                ("fault", re.compile(r"^distvm-fault$")),
                ("other", re.compile(r"")))
CPU_KINDS = tuple(k for k, _ in THREAD_KINDS)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ThreadCpu:
    """The CPU time each thread of @procs used, by kind, as last read
    from /proc (a thread that ended keeps what it had then)."""

    def __init__(self, procs):
        self.procs = procs
        self.ticks = {}         # (pid, tid): (kind, user + system ticks)
        self.next = 0

    def sample(self, now):
        if now < self.next:
            return
        self.next = now + 0.25
        for p in self.procs:
            base = "/proc/%d/task" % p.pid
            try:
                tids = os.listdir(base)
            except OSError:
                continue            # it exited
            for tid in tids:
                try:
                    stat = read("%s/%s/stat" % (base, tid))
                except OSError:
                    continue
                name = stat[stat.index("(") + 1:stat.rindex(")")]
                fields = stat[stat.rindex(")") + 2:].split()
                kind = next(k for k, pat in THREAD_KINDS if pat.match(name))
                self.ticks[(p.pid, tid)] = (kind, int(fields[11]) +
                                            int(fields[12]))

    def seconds(self):
        return {k: sum(t for kind, t in self.ticks.values() if kind == k) /
                CLOCK_TICKS for k in CPU_KINDS}


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def stop_all(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        p.wait()


def watch(args, procs, tmp, start, seen, cpu, killed=None):
    """Until every process exited: note when the console shows each of
    MARKS, and sample @cpu (ThreadCpu).  Returns an error, or None.
    @killed: a process this script kills, whose status is not an
    error."""
    while True:
        running = any(p.poll() is None for p in procs)
        now = time.monotonic()
        cpu.sample(now)
        text = consoles(tmp, len(procs))
        for mark, line in MARKS.items():
            if mark not in seen and line in text:
                seen[mark] = now - start
        if "Kernel panic" in text:
            return "kernel panic"
        if now - start > args.timeout:
            return "timed out after %d s" % args.timeout
        if any(p.poll() not in (None, 0) for p in procs if p is not killed):
            return "a node failed"
        if not running:
            return None     # the console was read once more after the end
        time.sleep(0.02)


def run_once(args, cfg, tmp, trace, rips=None):
    """One run of @cfg: a dict of figures, or of 'error' and 'detail'.
    @trace: trace its faults and keep what faulttrace.py finds; @rips: a
    dict to count its vCPUs' RIPs in (Poller)."""
    count = max(cfg[2], 1)
    procs, seen, poller = [], {}, None
    cpu = ThreadCpu(procs)
    cpu_before = children_cpu()
    start = time.monotonic()
    try:
        for n in range(count):
            with open("%s/node%d.err" % (tmp, n), "w") as err:
                procs.append(subprocess.Popen(
                    node_args(args.qemu, args.build, args.work, cfg, tmp, n,
                              args.distvm_opts, args.append, trace,
                              args.trace),
                    stdin=subprocess.DEVNULL, stdout=err,
                    stderr=subprocess.STDOUT))
        poller = Poller(tmp, procs, cfg[2], args.hot, rips,
                        cfg[0] == ROLLBACK, KILLS.get(cfg[0]))
        poller.start()
        error = watch(args, procs, tmp, start, seen, cpu,
                      procs[KILLS[cfg[0]]] if cfg[0] in KILLS else None)
        wall = time.monotonic() - start
    finally:
        if poller:
            poller.stop.set()
        stop_all(procs)
    poller.join()
    text = consoles(tmp, count)
    codes = [p.returncode for p in procs]
    want = [0] * count
    if cfg[0] in KILLS:
        want[KILLS[cfg[0]]] = -signal.SIGKILL
    if not error and codes != want:
        error = "exit statuses %s" % codes
    if not error and cfg[0] in KILLS and poller.recovered_s is None:
        error = "node %d was killed, and not taken over" % KILLS[cfg[0]]
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
    r = figures(wall, seen, text, poller.last, poller.hot_pages)
    r["cpu"] = children_cpu() - cpu_before
    r["cpu-by-kind"] = cpu.seconds()
    if cfg[0] == ROLLBACK:
        r["rollback-us"] = poller.rollback_us
    if cfg[0] in KILLS:
        r["recovered-s"] = poller.recovered_s
        r["recovery-ms"] = poller.recovery_ms
    if rips:
        r["rips"] = rips
    if trace and cfg[2] > 1:
        found = io.StringIO()
        faulttrace.analyse(["%s/trace-%d.log" % (tmp, n)
                            for n in range(count)], out=found)
        r["trace"] = found.getvalue()
    return r


def figures(wall, seen, text, last, hot_pages):
    r = {"wall": wall, "boot": seen["boot"],
         "workload": seen["done"] - seen["start"], "hot": hot_pages}
    infos = [i for i in last if i and "ram" in i]
    for k in FAULTS if infos else ():
        r[k] = sum(i["ram"][k]["count"] for i in infos)
        r[k + "-p50"] = [i["ram"][k].get("p50-us") for i in infos]
    for k in IO if infos else ():
        r[k] = sum(i["io"][k]["count"] for i in infos)
    if infos:
        # each node counts the moves it saw: the most is the cluster's
        r["moves"] = max(i["moves"] for i in infos)
        r["irqs"] = sum(i["interrupts-sent"] for i in infos)
        r["flushes"] = sum(i["tlb-flushes-sent"] for i in infos)
        # home's: node 0's, or, if node 0 was killed, the one in its place
        cp = [i["checkpoint"] for i in sorted(infos, reverse=True,
                                              key=lambda i: i["node-id"])
              if i["node-id"] == i.get("home-node", 0) and
              "checkpoint" in i]
        if cp and cp[0]["epochs"]:
            r["checkpoint"] = cp[0]
        # what each node keeps of the others', and of its own, in bytes
        r["kept"] = [(i["checkpoint"]["stored-bytes"] +
                      i["checkpoint"]["parity-bytes"],
                      i["checkpoint"]["own-bytes"])
                     for i in infos if "checkpoint" in i]
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
    print("%-34s %5s %8s %8s %9s %9s %9s   all runs: wall/boot/workload" % (
        "configuration", "ok", "wall", "boot", "workload", "wall/tcg",
        "boot/tcg"))
    for name, title, *_ in configs:
        m = med[name]
        print("%-34s %5s %8s %8s %9s %9s %9s   %s" % (
            title, "%d/%d" % (len(results[name]), args.runs),
            *("%.1f" % m[k] if m[k] else "-"
              for k in ("wall", "boot", "workload")),
            ratio(m["wall"], tcg.get("wall")),
            ratio(m["boot"], tcg.get("boot")),
            " ".join("%.1f/%.1f/%.1f" % (r["wall"], r["boot"], r["workload"])
                     for r in results[name])))


def print_counts(configs, results):
    print("\nremote faults, device accesses sent home, interrupts sent "
          "to other nodes' vCPUs (irqs) and TLB flushes asked of other "
          "nodes (flushes), summed over nodes (last query-distvm answers; "
          "median over runs):")
    print("%-34s %10s %10s %10s %9s %9s %9s %8s %8s %6s" % (
        ("configuration",) + FAULTS + IO + ("irqs", "flushes", "moves")))
    for name, title, *_ in configs:
        ok = [r for r in results[name] if FAULTS[0] in r]
        if ok:
            print("%-34s %10d %10d %10d %9d %9d %9d %8d %8d %6d" % (
                (title,) + tuple(statistics.median_low(r[k] for r in ok)
                                 for k in FAULTS + IO +
                                 ("irqs", "flushes", "moves"))))
            print("%-34s %10s %10s %10s   (p50 latency in us, by node, "
                  "run 1)" % (("",) + tuple("/".join(
                      str(v) if v is not None else "-"
                      for v in ok[0][k + "-p50"]) for k in FAULTS)))
            print("%-34s by run: remote faults/irqs/flushes (workload "
                  "time) %s" % ("", " ".join("%d/%d/%d (%.1f s)" % (
                      sum(r[k] for k in FAULTS), r["irqs"], r["flushes"],
                      r["workload"]) for r in ok)))


def print_cpu(configs, results):
    tcg = [r["cpu"] for r in results.get("tcg", [])]
    print("\nCPU time of the nodes, in s (median over runs): all threads "
          "(from the kernel, as reaped), then by thread (read from /proc "
          "every 0.25 s):")
    print("%-34s %8s %8s %8s %8s %8s %8s" % (
        ("configuration", "all", "cpu/tcg") + CPU_KINDS))
    for name, title, *_ in configs:
        ok = results[name]
        if ok:
            all_cpu = statistics.median(r["cpu"] for r in ok)
            print("%-34s %8.1f %8s %8.1f %8.1f %8.1f %8.1f" % (
                (title, all_cpu,
                 ratio(all_cpu, statistics.median(tcg) if tcg else None)) +
                tuple(statistics.median(r["cpu-by-kind"][k] for r in ok)
                      for k in CPU_KINDS)))


def print_checkpoints(configs, results):
    """Issue 15's overhead: each checkpointed configuration against
    3nodes, and its epochs as home reported them last (medians)."""
    ckpt = [c for c in configs if c[0] in CKPT]
    base = [r["wall"] for r in results.get("3nodes", [])]
    if not ckpt:
        return
    print("\ncheckpoint epochs (replicas=1) against 3 nodes without "
          "(replicas=0), home's last query-distvm; medians over runs:")
    print("%-34s %8s %9s %7s %10s %10s %12s" % (
        "configuration", "wall", "overhead", "epochs", "pause p50",
        "pause p99", "bytes/epoch"))
    for name, title, nodes, *_ in ckpt:
        ok = [r for r in results[name] if "checkpoint" in r]
        if not ok:
            print("%-34s %8s" % (title, "-"))
            continue
        wall = statistics.median(r["wall"] for r in results[name])
        over = ("%+.0f%%" % (100 * (wall / statistics.median(base) - 1))
                if base and nodes == 3 else "n/a")
        med = {k: statistics.median(r["checkpoint"][k] for r in ok)
               for k in ("epochs", "pause-us-p50", "pause-us-p99")}
        per = statistics.median(r["checkpoint"]["bytes"] /
                                r["checkpoint"]["epochs"] for r in ok)
        print("%-34s %7.1fs %9s %7d %8d us %8d us %10.0f B" % (
            title, wall, over, med["epochs"], med["pause-us-p50"],
            med["pause-us-p99"], per))
    print("\nmemory kept at power-off, MB (medians over runs): what the "
          "nodes keep of each other's\n(copies, or home's parity), the most "
          "one node keeps, and their own copies:")
    print("%-28s %10s %10s %10s" % ("configuration", "of others",
                                    "most/node", "own"))
    for name, title, *_ in ckpt:
        kept = [r["kept"] for r in results[name] if r.get("kept")]
        if not kept or name in KILLS:
            continue
        print("%-28s %10.1f %10.1f %10.1f" % (
            title,
            statistics.median(sum(k[0] for k in n) for n in kept) / 1e6,
            statistics.median(max(k[0] for k in n) for n in kept) / 1e6,
            statistics.median(sum(k[1] for k in n) for n in kept) / 1e6))
    for name, killed in KILLS.items():
        for r in results.get(name, []):
            if "recovered-s" not in r:
                continue
            print("%s: node %d killed %.0f s into the workload: taken over "
                  "%.0f ms after the kill (home: %d ms from the loss known "
                  "to the guest ready)" % (name, killed, KILL_AFTER_S,
                                           1000 * r["recovered-s"],
                                           r["recovery-ms"]))
    rolled = [us for r in results.get(ROLLBACK, []) for us in
              r.get("rollback-us", [])]
    if rolled:
        print("rollbacks to the last committed epoch during the workload "
              "(3 nodes, epochs 100 ms, one a second): %d, pause p50 %d us,"
              " max %d us (all runs)" % (len(rolled),
                                         statistics.median(rolled),
                                         max(rolled)))


def print_clock(args, configs, results):
    print("\nclocksource Linux ended on; console lines with 'unstable':")
    for name, title, *_ in configs:
        ok = results[name]
        cs = sorted(set(r["clocksource"] for r in ok))
        unstable = sorted(set(l for r in ok for l in r["unstable"]))
        print("%-34s %-10s %s" % (title, ",".join(cs) or "-", "; ".join(
            unstable) if unstable else ("none" if ok else "-")))
        if args.verbose and ok:
            print("".join("    %s\n" % l for l in ok[0]["clock"]), end="")


def block_bases(placement, extra):
    """Guest-physical base of each RAMBlock of a configuration: pc.ram,
    the memory backends of its NUMA nodes one after the other, or those
    auto-numa made (docs/system/distvm.rst: each cluster node's share of
    the vCPUs, in 2 MiB, the first node taking the rest)."""
    bases, at = {"pc.ram": 0}, 0
    for o in extra:
        m = re.match(r"memory-backend-ram,id=(\w+),size=(\d+)M$", o)
        if m:
            bases[m.group(1)] = at
            at += int(m.group(2)) << 20
    if placement and at == 0:
        ram, where = 512 << 20, [int(n) for n in placement.split(":")]
        used = sorted(set(where))
        size = [ram * where.count(n) // len(where) // (2 << 20) * (2 << 20)
                for n in used]
        size[0] = ram - sum(size[1:])
        for i in range(len(used)):
            bases["distvm-numa%d" % i] = sum(size[:i])
    return bases


def kernel_symbols(path):
    """(guest-physical address, name) of the kernel's code and data
    symbols in a copy of the guest's /proc/kallsyms taken from a boot
    with nokaslr, where the kernel's text at 0xffffffff81000000 is loaded
    at 16 MiB."""
    syms = []
    with open(path) as f:
        for line in f:
            fields = line.split()
            if (len(fields) >= 3 and fields[1] in "TtDdBbRr" and
                    fields[0].startswith("ffffffff8")):
                syms.append((int(fields[0], 16) - 0xffffffff80000000,
                             fields[2]))
    return sorted(syms)


def page_symbols(syms, gpa):
    """The symbol that the page at @gpa starts in, and those that start
    in it (the first four)."""
    i = max(bisect.bisect_right(syms, (gpa, "\uffff")) - 1, 0)
    j = bisect.bisect_left(syms, (gpa + 4096, ""))
    names = [n for _, n in syms[i:j]]
    return " ".join(names[:4]) + (" +%d" % (len(names) - 4)
                                  if len(names) > 4 else "")


def print_hot(args, configs, results):
    syms = kernel_symbols(args.kallsyms) if args.kallsyms else []
    for name, title, _, placement, extra, *_ in configs:
        ok = [r for r in results[name] if any(r["hot"])]
        if not ok:
            continue
        bases = block_bases(placement, extra)
        pages = {}
        for n, hot in enumerate(ok[0]["hot"]):
            for h in hot:
                key = (h["ramblock"], h["page"])
                pages.setdefault(key, [0] * len(ok[0]["hot"]))[n] = h["faults"]
        print("\n%s, run 1: the pages with the most remote requests "
              "(requests by node 0/1/...)" % title)
        for (block, page), counts in sorted(
                pages.items(), key=lambda kv: -sum(kv[1]))[:args.hot]:
            gpa = bases.get(block, 0) + page * 4096
            print("  %-8s %#10x  %7d  %-22s %s" % (
                block, gpa, sum(counts), "/".join(map(str, counts)),
                page_symbols(syms, gpa) if syms else ""))


def rip_symbol(syms, rip, phase):
    """The kernel function at @rip (nokaslr), or where @rip is."""
    if rip < 0xffffffff80000000:
        return ("(firmware, decompression)" if phase == "firmware" else
                "(user space)")
    if not syms:
        return "%#x" % rip
    i = bisect.bisect_right(syms, (rip - 0xffffffff80000000, "\uffff")) - 1
    return syms[i][1] if i >= 0 else "%#x" % rip


def print_rips(args, configs, results, top=8):
    syms = kernel_symbols(args.kallsyms) if args.kallsyms else []
    for name, title, *_ in configs:
        ok = [r for r in results[name] if "rips" in r]
        if not ok:
            continue
        print("\n%s, run 1: where each vCPU was (--sample-rip; share of its "
              "samples in each phase)" % title)
        for phase, _ in RIP_PHASES:
            for cpu, counts in sorted(ok[0]["rips"].get(phase, {}).items()):
                by_sym = {}
                for rip, n in counts.items():
                    sym = rip_symbol(syms, rip, phase)
                    by_sym[sym] = by_sym.get(sym, 0) + n
                total = sum(by_sym.values())
                print("  %-11s CPU %d, %4d samples: %s" % (
                    phase, cpu, total, ", ".join(
                        "%s %d%%" % (sym, round(100 * n / total))
                        for sym, n in sorted(by_sym.items(),
                                             key=lambda kv: -kv[1])[:top])))


def print_traces(configs, results):
    for name, title, *_ in configs:
        ok = [r for r in results[name] if "trace" in r]
        if ok:
            print("\n%s, run 1 (traced), how pages travel:\n%s" % (
                title, ok[0]["trace"]), end="")


def print_targets(med):
    tcg = med.get("tcg", {})
    print()
    for name, what, target in (("3nodes-numa", "wall", 1.2),
                               ("3nodes", "wall", 1.5),
                               ("3nodes", "boot", 1.5),
                               ("3nodes-numa-pinned", "wall", 1.2),
                               ("3nodes-pinned", "wall", 1.5),
                               ("3nodes-pinned", "boot", 1.5),
                               ("3nodes-numa-home2", "wall", 1.2),
                               ("3nodes-home2", "wall", 1.5),
                               ("3nodes-home2", "boot", 1.5),
                               ("3nodes-numa-home2-pinned", "wall", 1.2),
                               ("3nodes-home2-pinned", "wall", 1.5),
                               ("3nodes-home2-pinned", "boot", 1.5)):
        title = [c[1] for c in CONFIGS if c[0] == name][0]
        print("%s %s / tcg: %s (target <= %.1f)" % (
            title, what, ratio(med.get(name, {}).get(what), tcg.get(what)),
            target))
    print("3 nodes, epochs 100 ms wall / 3 nodes wall: %s (target <= 1.25)"
          % ratio(med.get("3nodes-ckpt100", {}).get("wall"),
                  med.get("3nodes", {}).get("wall")))


def run_all(args, configs, top):
    """Every configuration K times, round-robin."""
    results = {c[0]: [] for c in configs}
    failed = []
    for k in range(args.runs):
        for cfg in configs:
            tmp = os.path.join(top, "%s-%d" % (cfg[0], k))
            os.mkdir(tmp)
            r = run_once(args, cfg, tmp, args.trace_faults and k == 0,
                         {} if args.sample_rip and k == 0 else None)
            if not args.keep:
                shutil.rmtree(tmp, ignore_errors=True)
            if "error" in r:
                failed.append("%s#%d" % (cfg[0], k + 1))
                print("run %d %s: FAILED: %s\n%s" % (
                    k + 1, cfg[1], r["error"], r["detail"]), flush=True)
                continue
            results[cfg[0]].append(r)
            print("run %d %-34s wall %6.1f s, boot %5.1f s, workload %6.1f "
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
    ap.add_argument("--append", default="",
                    help="more kernel command line, e.g. nokaslr")
    ap.add_argument("--hot", type=int, default=0, metavar="N",
                    help="print the N pages each node asked for most "
                    "(x-query-distvm-hot-pages)")
    ap.add_argument("--kallsyms", metavar="FILE",
                    help="with --hot and --append nokaslr: name the "
                    "kernel symbols in those pages, from a copy of the "
                    "guest's /proc/kallsyms (booted with nokaslr)")
    ap.add_argument("--trace-faults", action="store_true",
                    help="trace remote faults and print how pages travel "
                    "in the first run of each cluster (slower runs)")
    ap.add_argument("--trace", metavar="EVENT", action="append",
                    help="enable this QEMU trace event (pattern) on every "
                    "node, written to trace-N.log (kept with --keep); "
                    "may be repeated")
    ap.add_argument("--sample-rip", action="store_true",
                    help="sample each vCPU's RIP (20 a second) in the "
                    "first run of each configuration and print where they "
                    "were in each phase (with --kallsyms and --append "
                    "nokaslr: by kernel function)")
    ap.add_argument("--keep", metavar="DIR",
                    help="keep each run's consoles and node output in "
                    "DIR/CONFIG-K (DIR: new or empty)")
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
    if args.keep and os.path.isdir(args.keep) and os.listdir(args.keep):
        ap.error("--keep: %s is not empty" % args.keep)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    top = args.keep or tempfile.mkdtemp(prefix="distvm-bench-")
    try:
        if args.keep:
            os.makedirs(top, exist_ok=True)
        results, failed = run_all(args, configs, top)
    except KeyboardInterrupt:
        sys.exit("bench: interrupted")
    finally:
        if not args.keep:
            shutil.rmtree(top, ignore_errors=True)
    med = medians(configs, results)
    print_times(args, configs, results, med)
    print_counts(configs, results)
    print_cpu(configs, results)
    print_checkpoints(configs, results)
    print_clock(args, configs, results)
    print_hot(args, configs, results)
    print_traces(configs, results)
    print_rips(args, configs, results)
    print_targets(med)
    if failed:
        print("%d run(s) failed: %s" % (len(failed), ", ".join(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
