#!/bin/sh
# make demo: a Linux guest on a 3-node distvm cluster on this machine,
# with live vCPU moves (see scripts/demo.py).
#
#   demo.sh BUILD_DIR
set -eu
exec python3 "$(dirname "$0")/demo.py" "$1"
