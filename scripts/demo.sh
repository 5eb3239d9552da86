#!/bin/sh
# make demo: boot the Linux test guest under -accel distvm and show what
# query-distvm reports while it runs.
#
#   demo.sh BUILD_DIR
set -eu

build=$(cd "$1" && pwd)
qemu=$build/qemu-system-x86_64
guests=$build/guests/linux
scripts=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/distvm-demo.XXXXXX)
pid=""

cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

wait_console() {
    # wait_console TEXT SECONDS
    i=0
    while ! grep -q "$1" "$tmp/console.log" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || { echo "demo: QEMU exited early" >&2; cat "$tmp/console.log" >&2; exit 1; }
        i=$((i + 1))
        [ $i -le $(($2 * 10)) ] || { echo "demo: timed out waiting for '$1'" >&2; exit 1; }
        sleep 0.1
    done
}

echo "demo: booting the Linux guest (2 vCPUs) on one node under -accel distvm"
start=$(date +%s)
"$qemu" -accel distvm,node-id=0,nodes=1 -machine pc -m 512M -smp 2 \
    -kernel "$guests/vmlinuz" -initrd "$guests/initramfs.cpio.gz" \
    -append "console=ttyS0 panic=-1 distvm.work=20000" \
    -display none -nodefaults -serial "file:$tmp/console.log" \
    -qmp "unix:$tmp/qmp.sock,server=on,wait=off" &
pid=$!

wait_console "distvm-linux: booted" 300
echo "demo: guest booted in $(( $(date +%s) - start )) s; query-distvm says:"
python3 "$scripts/qmp.py" "$tmp/qmp.sock" query-distvm
wait_console "distvm-linux: workload done" 300
echo "demo: guest console:"
grep "distvm-linux:" "$tmp/console.log" | sed 's/^/    /'
status=0
wait "$pid" || status=$?
pid=""
echo "demo: guest powered off, QEMU exited with status $status after $(( $(date +%s) - start )) s"
exit $status
