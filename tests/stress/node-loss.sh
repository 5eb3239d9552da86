#!/bin/sh
# Stress the takeover of a lost node (issue 15): each case of a node lost
# while the guest runs, REPEAT times (default 10), each with a new random
# seed (which node, which vCPU moves, when the node is lost).
#
#   node-loss.sh BUILD_DIR [REPEAT]
#
# The cases: the bare-metal SMP guest on 3 nodes with a node killed
# (SIGKILL), with home killed (its standby takes its place, its disk
# too), on 2 nodes
# with node 1 killed, on 4 nodes with two nodes killed one after the
# other (with redundancy=replica, and with redundancy=parity), and on 3
# nodes with a node, or home, cut off by a partition (network
# namespaces), and the Linux guest on 3
# nodes with a node, or home, killed during its workload, with the node
# that does its I/O killed during its HTTP fetch, with the node that
# serves a queue pair of its multi-queue card killed during its fetches
# over it, and with a node, or home, cut off by a partition.
# make check runs each of them once (in their qtest suites), but the
# Linux cases of a random node killed and of partitions, which make
# check-long runs; make stress runs this.  Prints each run's outcome and a summary; the exit status is
# non-zero if any run failed, and the log of each failed run is kept.
set -u

build=$(cd "$1" && pwd)
repeat=${2:-10}
cases="distvm-epoch-test:/x86_64/distvm/epoch/kill
distvm-epoch-test:/x86_64/distvm/epoch/kill-home
distvm-epoch-test:/x86_64/distvm/epoch/disk-kill-home
distvm-epoch-test:/x86_64/distvm/epoch/kill-two
distvm-epoch-test:/x86_64/distvm/epoch/kill-twice
distvm-epoch-test:/x86_64/distvm/epoch/kill-parity
distvm-epoch-test:/x86_64/distvm/epoch/partition
distvm-epoch-test:/x86_64/distvm/epoch/partition-home
distvm-linux-test:/x86_64/distvm/linux/3-nodes-kill
distvm-linux-test:/x86_64/distvm/linux/3-nodes-kill-home
distvm-linux-test:/x86_64/distvm/linux/3-nodes-kill-io
distvm-linux-test:/x86_64/distvm/linux/3-nodes-kill-pair
distvm-linux-test:/x86_64/distvm/linux/3-nodes-partition
distvm-linux-test:/x86_64/distvm/linux/3-nodes-partition-home"

export DISTVM_GUEST_DIR="$build/guests"
# The cases too long for make check are there too
export DISTVM_LONG=1
export QTEST_QEMU_BINARY=./qemu-system-x86_64
logs=$(mktemp -d /tmp/node-loss.XXXXXX)
failed=0
runs=0
for c in $cases; do
    test=${c%%:*}
    path=${c#*:}
    ok=0
    i=1
    while [ "$i" -le "$repeat" ]; do
        log=$logs/$test-$(basename "$path")-$i.log
        start=$(date +%s)
        if (cd "$build/qemu" && timeout 900 "tests/qtest/$test" --tap -k \
            -p "$path") > "$log" 2>&1 && grep -q "^ok 1 " "$log"; then
            ok=$((ok + 1))
            rm -f "$log"
            echo "$path run $i: ok ($(($(date +%s) - start)) s)"
        else
            failed=$((failed + 1))
            echo "$path run $i: FAILED ($(($(date +%s) - start)) s), log $log"
        fi
        runs=$((runs + 1))
        i=$((i + 1))
    done
    echo "$path: $ok of $repeat passed"
done
echo "node-loss: $((runs - failed)) of $runs runs passed"
[ "$failed" -eq 0 ] && rmdir "$logs"
[ "$failed" -eq 0 ]
