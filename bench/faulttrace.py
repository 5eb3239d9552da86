#!/usr/bin/env python3
"""distvm benchmark helper: how a cluster's pages travel, from its traces.

    faulttrace.py TRACE [TRACE ...] [--top N]

Reads the trace logs of the nodes of one run, each node's QEMU started
with

    -msg timestamp=on -trace enable=distvm_fault_done
    -trace enable=distvm_mgr_start -trace file=TRACE

(bench/linux-nodes.py --trace-faults does that), and prints what decides
the number of remote faults:
- faults by kind, and how the manager routed each request: served by the
  requester's own directory, by a manager that holds the page, or through
  three nodes; invalidations of sharers (a write where no node owns it);
- how long a node held a page before another node's request took it
  away (a read of another node takes only a written page), and how many
  faults followed a hold shorter than a wake-up;
- read misses followed at once by the same node's upgrade of the page, no
  other node's request between (what granting such reads exclusive, a
  migratory page, would save at most);
- how long each node's vCPUs waited for pages, by kind;
- for each write that took read-only copies away from other nodes, the
  time since the last of those nodes' reads: the copies that sat unread
  that long are what releasing a copy early (before the write asks for
  it) could have spared the writer's wait;
- the pages with the most requests, with the sequence of requests at the
  middle of the run (W2 R0: a write of node 2, then a read of node 0).
A trace adds a line per fault: the run is slower than an untraced one.
"""

import argparse
import bisect
import collections
import re
import sys

LINE = re.compile(r"^\d+@(\d+)\.(\d+):(distvm_fault_done|distvm_mgr_start) "
                  r"block (\d+) page 0x([0-9a-f]+) (.*)$")
DONE = re.compile(r"kind (\d+) (\d+) us$")
START = re.compile(r"for node (\d+) write (\d) owner (-?\d+) copyset")
KINDS = ("read-miss", "write-miss", "upgrade")   # DistvmFaultKind


def parse(paths):
    """Per trace (one per node): faults (end s, page key, kind, us); per
    page, the requests its manager started (s, requester, write, owner,
    manager's trace index)."""
    faults, reqs = [], collections.defaultdict(list)
    for n, path in enumerate(paths):
        with open(path, errors="replace") as f:
            for line in f:
                m = LINE.match(line)
                if not m:
                    continue
                t = int(m.group(1)) + int(m.group(2)) / 1e6
                key = (int(m.group(4)), int(m.group(5), 16))
                if m.group(3) == "distvm_fault_done":
                    d = DONE.match(m.group(6))
                    faults.append((t, n, key, int(d.group(1)),
                                   int(d.group(2))))
                else:
                    r = START.match(m.group(6))
                    reqs[key].append((t, int(r.group(1)), int(r.group(2)),
                                      int(r.group(3)), n))
    for v in reqs.values():
        v.sort()
    faults.sort()
    return faults, reqs


def node_of_trace(faults, reqs, traces):
    """The node id of each trace: the requester of the requests that
    precede its faults."""
    votes = collections.Counter()
    for t, n, key, _, us in faults[::50]:
        v = reqs.get(key, [])
        i = bisect.bisect_left(v, (t - us / 1e6 - 0.001,))
        if i < len(v) and v[i][0] <= t:
            votes[(n, v[i][1])] += 1
    node = {}
    for (n, r), _ in votes.most_common():
        if n not in node and r not in node.values():
            node[n] = r
    return [node.get(n, -1) for n in range(traces)]


def pct(values, q):
    return values[int(q * (len(values) - 1))] if values else 0


def takes_away(req, node, had_write):
    """Does request @req take the page away from @node, which faulted it
    in for writing if @had_write?"""
    return req[1] != node and (req[2] or had_write)


def analyse(paths, top=8, out=sys.stdout):
    faults, reqs = parse(paths)
    if not faults:
        print("no distvm_fault_done lines in %s" % " ".join(paths), file=out)
        return
    nodes = node_of_trace(faults, reqs, len(paths))
    kinds = collections.Counter(k for _, _, _, k, _ in faults)
    print("%d remote faults: %s" % (len(faults), ", ".join(
        "%s %d" % (KINDS[k] if k < len(KINDS) else k, c)
        for k, c in sorted(kinds.items()))), file=out)

    routes = collections.Counter()
    for v in reqs.values():
        for _, r, _, owner, m in v:
            mgr = nodes[m]
            if owner < 0:
                routes["to sharers" + (", requester manages" if mgr == r
                                       else "")] += 1
            elif owner == r:
                routes["requester owns it already"] += 1
            elif mgr == r:
                routes["requester manages: 2 messages"] += 1
            elif mgr == owner:
                routes["manager owns it: 2 messages"] += 1
            else:
                routes["3 nodes: 3 messages"] += 1
    print("requests by route: %s" % ", ".join(
        "%s %d" % kv for kv in routes.most_common()), file=out)

    # hold: from a fault's end to the request that takes the page away
    holds, short_refaults, pairs = [], 0, 0
    by_node = collections.defaultdict(list)
    for t, n, key, kind, us in faults:
        by_node[(nodes[n], key)].append((t, kind, us))
    for (node, key), seq in by_node.items():
        v = reqs.get(key, [])
        for j, (t, kind, _) in enumerate(seq):
            i = bisect.bisect_right(v, (t, 1 << 30))
            while i < len(v) and not takes_away(v[i], node, kind != 0):
                i += 1
            if i == len(v):
                continue
            hold = (v[i][0] - t) * 1e6
            holds.append(hold)
            if j + 1 < len(seq) and seq[j + 1][0] > v[i][0] and hold < 50:
                short_refaults += 1
    for key, v in reqs.items():
        for a, b in zip(v, v[1:]):
            pairs += not a[2] and b[2] and a[1] == b[1] and b[3] < 0
    holds.sort()
    print("held before another node took it (us): p10 %.0f, p25 %.0f, "
          "p50 %.0f, p75 %.0f; under 100 us: %.1f%%" % (
              pct(holds, .1), pct(holds, .25), pct(holds, .5),
              pct(holds, .75),
              100 * bisect.bisect_left(holds, 100) / max(len(holds), 1)),
          file=out)
    print("faults again after a hold under 50 us: %d (%.1f%% of faults)" % (
        short_refaults, 100 * short_refaults / len(faults)), file=out)
    print("read misses upgraded next by the same node: %d (%.1f%% of "
          "faults: the most a migratory grant saves)" % (
              pairs, 100 * pairs / len(faults)), file=out)

    waited = collections.defaultdict(lambda: [0, 0])
    for _, n, _, kind, us in faults:
        waited[(nodes[n], kind)][0] += 1
        waited[(nodes[n], kind)][1] += us
    for node in sorted(set(node for node, _ in waited)):
        print("node %d's vCPUs waited for pages: %s" % (node, ", ".join(
            "%s %d in %.2f s (mean %.0f us)" % (
                KINDS[k] if k < len(KINDS) else k, c, us / 1e6, us / c)
            for (n, k), (c, us) in sorted(waited.items()) if n == node)),
            file=out)

    # a write that invalidates copies: how long since their last read
    since = collections.defaultdict(list)
    for v in reqs.values():
        reads = {}
        for t, r, w, _, _ in v:
            if not w:
                reads[r] = t
                continue
            others = [rt for rn, rt in reads.items() if rn != r]
            if others:
                since[r].append((t - max(others)) * 1e6)
            reads = {}
    for node, gaps in sorted(since.items()):
        gaps.sort()
        print("writes of node %d that took copies away: %d; since the last "
              "read of them (us): p10 %.0f, p25 %.0f, p50 %.0f, p75 %.0f; "
              "over 1 ms: %.0f%%" % (
                  node, len(gaps), pct(gaps, .1), pct(gaps, .25),
                  pct(gaps, .5), pct(gaps, .75),
                  100 * (1 - bisect.bisect_right(gaps, 1000) / len(gaps))),
              file=out)

    count = collections.Counter(key for _, _, key, _, _ in faults)
    total = 0
    print("pages with the most remote faults (block, page, faults, "
          "share of all so far; requests at mid-run, time in us):",
          file=out)
    for key, c in count.most_common(top):
        total += c
        v = reqs.get(key, [])
        mid = v[len(v) // 2:len(v) // 2 + 12]
        seq = " ".join("%s%d@%d" % ("W" if w else "R", r,
                                    (t - mid[0][0]) * 1e6)
                       for t, r, w, _, _ in mid)
        print("  %d 0x%05x %6d %5.1f%%  %s" % (
            key[0], key[1], c, 100 * total / len(faults), seq), file=out)
    for n in (10, 100, 1000):
        share = sum(c for _, c in count.most_common(n))
        print("  top %d pages: %.1f%% of faults" % (
            n, 100 * share / len(faults)), file=out, end="")
    print(" (%d pages in all)" % len(count), file=out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("traces", nargs="+")
    ap.add_argument("--top", type=int, default=8)
    args = ap.parse_args()
    analyse(args.traces, args.top)


if __name__ == "__main__":
    main()
