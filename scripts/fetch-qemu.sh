#!/bin/sh
# Obtain the pristine upstream QEMU tree distvm is built on.
#
#   fetch-qemu.sh OUTDIR PIN_VERSION [SOURCE]
#
# Without SOURCE, "apt-get source" fetches Debian's "qemu" source package
# (verified against Debian's signed archive) at PIN_VERSION, or, when that
# version has left the archive, the newest 10.0.x on offer.  SOURCE may be
# an upstream QEMU directory or release tarball instead.  The tree ends up
# in OUTDIR/tree and OUTDIR/version names what was used.
set -eu

out=$1
pin=$2
src=${3:-}
series_re='^1:10\.0\.'

die() { echo "fetch-qemu: $*" >&2; exit 1; }

mkdir -p "$out"
out=$(cd "$out" && pwd)

already() {
    [ -f "$out/version" ] && [ -d "$out/tree" ] && [ "$(cat "$out/version")" = "$1" ]
}

if [ -n "$src" ]; then
    if [ -d "$src" ]; then
        src=$(cd "$src" && pwd)
        [ -f "$src/VERSION" ] && [ -f "$src/meson.build" ] \
            || die "$src does not look like a QEMU source tree (no VERSION or meson.build)"
        desc="local tree $src (QEMU $(cat "$src/VERSION"))"
        already "$desc" && { echo "distvm: using QEMU source: $desc"; exit 0; }
        rm -rf "$out/tree"
        rsync -a --exclude=/.git/ --exclude=/build/ "$src/" "$out/tree/"
    elif [ -f "$src" ]; then
        src=$(cd "$(dirname "$src")" && pwd)/$(basename "$src")
        desc="tarball $src"
        already "$desc" && { echo "distvm: using QEMU source: $desc"; exit 0; }
        rm -rf "$out/tree" "$out/unpack"
        mkdir -p "$out/unpack"
        tar -xf "$src" -C "$out/unpack" || die "cannot unpack $src"
        top=$(find "$out/unpack" -mindepth 1 -maxdepth 1 -type d | head -n 1)
        [ -f "$top/VERSION" ] || die "$src does not contain a QEMU source tree"
        mv "$top" "$out/tree"
        rm -rf "$out/unpack"
        desc="$desc (QEMU $(cat "$out/tree/VERSION"))"
    else
        die "--qemu-src=$src: no such directory or file"
    fi
    echo "$desc" > "$out/version"
    echo "distvm: using QEMU source: $desc"
    exit 0
fi

command -v apt-get >/dev/null || die "apt-get not found; use ./configure --qemu-src=DIR|TARBALL"
offered=$(apt-cache showsrc qemu 2>/dev/null | sed -n 's/^Version: //p' | sort -u)
[ -n "$offered" ] || die "apt knows no source package 'qemu': run scripts/setup-host.sh (adds deb-src entries) or use --qemu-src="

version=""
if printf '%s\n' "$offered" | grep -qxF "$pin"; then
    version=$pin
else
    for v in $(printf '%s\n' "$offered" | grep -E "$series_re"); do
        if [ -z "$version" ] || dpkg --compare-versions "$v" gt "$version"; then
            version=$v
        fi
    done
    [ -n "$version" ] || die "neither qemu $pin nor any other 10.0.x source is offered by apt (offered: $(echo $offered))"
    echo "distvm: pinned qemu $pin is no longer in the archive; using the newest 10.0.x: $version" >&2
fi

desc="Debian source package qemu $version"
if already "$desc"; then
    echo "distvm: using QEMU source: $desc"
    exit 0
fi

rm -rf "$out/dl" "$out/tree"
mkdir -p "$out/dl"
(
    cd "$out/dl"
    # apt's sandbox user cannot write here; downloading as root is expected.
    apt-get source -q --download-only "qemu=$version" >/dev/null 2>&1 \
        || apt-get source -q --download-only "qemu=$version" \
        || exit 1
    dsc=$(ls ./*.dsc)
    dpkg-source -q -x "$dsc" tree >/dev/null
) || die "apt-get source qemu=$version failed"
mv "$out/dl/tree" "$out/tree"
rm -rf "$out/dl"
echo "$desc" > "$out/version"
echo "distvm: using QEMU source: $desc"
