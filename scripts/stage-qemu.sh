#!/bin/sh
# Build the staged QEMU tree: the pristine upstream tree, plus patches/,
# plus distvm's own files linked (not copied) in, so an edit to one of our
# files rebuilds incrementally.
#
#   stage-qemu.sh [--link-only] PRISTINE STAGED REPO
#
# rsync restores only the files that differ from upstream (those patched
# last time), so re-staging after a patch change rebuilds only what the
# patches touch.
set -eu

link_only=no
if [ "${1:-}" = --link-only ]; then
    link_only=yes
    shift
fi
pristine=$1
staged=$2
repo=$(cd "$3" && pwd)

die() { echo "stage-qemu: $*" >&2; exit 1; }

[ -f "$pristine/VERSION" ] || die "$pristine is not a QEMU tree; run ./configure"

# Directories of the repository that overlay the QEMU tree.
OVERLAY_ROOTS="accel hw migration qapi tests docs include target"

# Reset the tree to upstream and apply patches/.
restage() {
    mkdir -p "$staged"
    rsync -a --delete --exclude=/roms/ --exclude=/debian/ --exclude=/.pc/ \
        "$pristine/" "$staged/"
    [ -f "$repo/patches/series" ] || return 0
    grep -v -e '^#' -e '^[[:space:]]*$' "$repo/patches/series" | while read -r p; do
        patch -d "$staged" -p1 -s -N --no-backup-if-mismatch -r - \
            < "$repo/patches/$p" || die "patches/$p does not apply to $pristine"
    done
}

# link_tree REL: link every entry of $repo/REL into $staged/REL.
link_tree() {
    # Recursive: each call has its own variables (dash and bash know local).
    local rel entry name target
    rel=$1
    for entry in "$repo/$rel"/* "$repo/$rel"/.[!.]*; do
        [ -e "$entry" ] || continue
        name=${entry##*/}
        target="$staged/$rel/$name"
        if [ -d "$entry" ] && [ -d "$target" ] && [ ! -L "$target" ]; then
            link_tree "$rel/$name"
        elif [ -e "$target" ] && [ ! -L "$target" ]; then
            die "$rel/$name shadows an upstream QEMU file; change upstream files through patches/"
        else
            ln -sfn "$entry" "$target"
        fi
    done
}

[ "$link_only" = yes ] || restage
for root in $OVERLAY_ROOTS; do
    [ -d "$repo/$root" ] && link_tree "$root"
done
exit 0
