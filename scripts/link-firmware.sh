#!/bin/sh
# A QEMU run from its build tree looks for firmware under
# <build>/qemu-bundle/<configured path>.  Link the configured firmware
# directories (Debian's seabios, ipxe-qemu and qemu-system-data) there so
# that build/qemu-system-x86_64 finds them without -L.
#
#   link-firmware.sh QEMU_BUILD_DIR
set -eu

build=$1
paths=$(sed -n 's/^#define CONFIG_QEMU_FIRMWAREPATH //p' "$build/config-host.h" |
        tr -d '",')
for dir in $paths; do
    [ -d "$dir" ] || { echo "link-firmware: $dir is missing (scripts/setup-host.sh installs it)" >&2; exit 1; }
    mkdir -p "$build/qemu-bundle$(dirname "$dir")"
    ln -sfn "$dir" "$build/qemu-bundle$dir"
done
