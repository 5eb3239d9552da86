#!/bin/sh
# Run distvm's tests and the upstream qtests that cover patches/.
#
#   run-tests.sh [--distvm-only|--upstream-only] BUILD_DIR [UPSTREAM_QTEST...]
#
# Tests run through QEMU's own meson test harness; a failing test prints
# its log.  The exit status is non-zero if any test failed.
set -eu

which=all
case ${1:-} in
--distvm-only) which=distvm; shift ;;
--upstream-only) which=upstream; shift ;;
esac
build=$(cd "$1" && pwd)
shift

meson=$build/qemu/pyvenv/bin/meson
[ -x "$meson" ] || { echo "run-tests: $build/qemu is not configured; run make" >&2; exit 1; }
export DISTVM_GUEST_DIR="$build/guests"

here=$(cd "$(dirname "$0")" && pwd)
status=0
failures=$(mktemp)
trap 'rm -f "$failures"' EXIT
run() {
    # $1: number of parallel jobs, then test names
    jobs=$1
    shift
    if ! (cd "$build/qemu" && "$meson" test --no-rebuild --print-errorlogs \
        --num-processes "$jobs" "$@"); then
        status=1
        # Each run overwrites meson's log: save this one's failures now.
        python3 "$here/failed-tests.py" \
            "$build/qemu/meson-logs/testlog.json" >> "$failures"
    fi
}

start=$(date +%s)
if [ "$which" != upstream ]; then
    echo "== distvm tests"
    # One at a time: they boot SMP guests on this machine's cores.
    run 1 qtest-x86_64/distvm-test qtest-x86_64/distvm-ram-test \
        qtest-x86_64/distvm-move-test qtest-x86_64/distvm-elastic-test \
        qtest-x86_64/distvm-linux-test \
        qtest-x86_64/distvm-sequence-test qtest-x86_64/distvm-epoch-test
fi
if [ "$which" != distvm ] && [ $# -gt 0 ]; then
    echo "== upstream qtests covering patches/: $*"
    tests=""
    for t in "$@"; do
        tests="$tests qtest-x86_64/$t"
    done
    run 2 $tests
fi
cat "$failures"
echo "== tests finished in $(( $(date +%s) - start )) s: $([ $status = 0 ] && echo PASS || echo FAIL)"
exit $status
