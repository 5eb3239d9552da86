#!/bin/sh
# Build the Linux test guest into OUTDIR: the kernel of Debian's
# linux-image-amd64 and an initramfs made of Debian's busybox-static and
# xz (xz-utils, with the libraries it loads from liblzma5 and libc6), plus
# the init script and the checker (distvm-check.c, linked statically) of
# tests/qtest/distvm/guest/linux/.  The .deb files are
# fetched with "apt-get download" and unpacked here; nothing is installed
# on the host.
#
#   build-linux-guest.sh OUTDIR
set -eu

out=$1
repo=$(cd "$(dirname "$0")/.." && pwd)
src=$repo/tests/qtest/distvm/guest/linux
cache=$(dirname "$out")/debs

die() { echo "build-linux-guest: $*" >&2; exit 1; }

mkdir -p "$out" "$cache"
out=$(cd "$out" && pwd)
cache=$(cd "$cache" && pwd)

# fetch PACKAGE: download PACKAGE's .deb into the cache, print its path.
fetch() {
    deb=$(ls "$cache/$1"_*.deb 2>/dev/null | head -n 1 || true)
    if [ -z "$deb" ]; then
        (cd "$cache" && apt-get download -q "$1" >/dev/null 2>&1) \
            || die "apt-get download $1 failed"
        deb=$(ls "$cache/$1"_*.deb | head -n 1)
    fi
    echo "$deb"
}

kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
       sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n 1)
[ -n "$kpkg" ] || die "cannot resolve linux-image-amd64 (is apt's package list current?)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

dpkg-deb -x "$(fetch "$kpkg")" "$work/kernel"
cp "$work"/kernel/boot/vmlinuz-* "$out/vmlinuz"
kver=$(ls "$work/kernel/lib/modules" | head -n 1)

root=$work/root
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" \
         "$root/lib/modules/$kver"
dpkg-deb -x "$(fetch busybox-static)" "$work/busybox"
cp "$work/busybox/bin/busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$src/init" "$root/init"
chmod 755 "$root/init"

# A real multi-threaded program, and the checker of its output.
for p in xz-utils liblzma5 libc6; do
    dpkg-deb -x "$(fetch "$p")" "$work/xz"
done
libdir=lib/x86_64-linux-gnu
mkdir -p "$root/$libdir" "$root/lib64" "$root/usr/bin"
cp "$work/xz/usr/bin/xz" "$root/usr/bin/xz"
for lib in liblzma.so.5 libc.so.6 ld-linux-x86-64.so.2; do
    cp -L "$work/xz/$libdir/$lib" "$root/$libdir/$lib"
done
ln -s "/$libdir/ld-linux-x86-64.so.2" "$root/lib64/ld-linux-x86-64.so.2"
${CC:-cc} -static -O2 -Wall -Wextra -Werror -o "$root/bin/distvm-check" \
    -I"$repo/include" "$src/distvm-check.c" ||
    die "cannot build distvm-check (static libc?)"

# Kernel modules the guest loads (with what they depend on), in load order.
mods="virtio_pci virtio_blk virtio_net"
moddir=$work/kernel/lib/modules/$kver
/sbin/depmod -b "$work/kernel" "$kver" || die "depmod failed"
: > "$root/lib/modules/load-order"
for m in $mods; do
    path=$(find "$moddir" -name "$m.ko*" | head -n 1)
    [ -n "$path" ] || continue
    rel=${path#"$moddir"/}
    deps=$(sed -n "s|^$rel: *||p" "$moddir/modules.dep")
    for d in $(printf '%s\n' $deps | tac) "$rel"; do
        base=${d##*/}
        [ -f "$root/lib/modules/$kver/$base" ] && continue
        cp "$moddir/$d" "$root/lib/modules/$kver/$base"
        echo "$base" >> "$root/lib/modules/load-order"
    done
done

(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -9 > "$out/initramfs.cpio.gz"
echo "$kpkg $(dpkg-deb -f "$(fetch "$kpkg")" Version)" > "$out/kernel-version"
echo "build-linux-guest: $(cat "$out/kernel-version"), busybox $(dpkg-deb -f "$(fetch busybox-static)" Version), xz $(dpkg-deb -f "$(fetch xz-utils)" Version)"
