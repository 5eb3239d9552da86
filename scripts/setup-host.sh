#!/bin/sh
# Install what building and testing distvm needs on a Debian 12 host, from
# Debian's archive only.  Idempotent; run as root.  The archive mirror is
# never named here: the extra suites are derived from the host's own
# deb822 "debian.sources" entries.
set -eu

SOURCES_OUT=/etc/apt/sources.list.d/distvm.sources
STAMP_DIR=${DISTVM_STAMP_DIR:-/var/lib/distvm}

PACKAGES="build-essential pkg-config ninja-build ccache python3 python3-venv
 flex bison libglib2.0-dev libpixman-1-dev zlib1g-dev libslirp-dev libfdt-dev
 libcap-ng-dev libattr1-dev libgnutls28-dev gnutls-bin dpkg-dev cpio gzip xz-utils
 seabios ipxe-qemu qemu-system-data clang libclang-rt-14-dev
 busybox-static python3-tomli rsync kmod iproute2"
BACKPORT_PACKAGES="meson python3-pycotap"

die() { echo "setup-host: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages with apt-get)"
command -v apt-get >/dev/null || die "apt-get not found: distvm's set-up targets Debian 12"

# Print the value of field $2 in the first deb822 stanza of file $1 whose
# Suites field matches the regular expression $3.
stanza_field() {
    awk -v field="$2" -v want="$3" '
        BEGIN { RS = ""; FS = "\n" }
        {
            suites = ""; value = ""
            for (i = 1; i <= NF; i++) {
                if ($i ~ /^Suites:/) { suites = $i }
                if (index($i, field ":") == 1) { value = substr($i, length(field) + 2) }
            }
            if (suites ~ want && value != "") {
                sub(/^[ \t]+/, "", value); print value; exit
            }
        }' "$1"
}

derive_sources() {
    main_uri=""; sec_uri=""; keyring=""
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        [ "$f" = "$SOURCES_OUT" ] && continue
        [ -n "$main_uri" ] || main_uri=$(stanza_field "$f" URIs '(^|[ :])bookworm([ ]|$)')
        [ -n "$sec_uri" ] || sec_uri=$(stanza_field "$f" URIs 'bookworm-security')
        [ -n "$keyring" ] || keyring=$(stanza_field "$f" Signed-By '(^|[ :])bookworm([ ]|$)')
    done
    if [ -z "$main_uri" ] && [ -f /etc/apt/sources.list ]; then
        main_uri=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list)
        sec_uri=$(awk '$1 == "deb" && $3 == "bookworm-security" { print $2; exit }' /etc/apt/sources.list)
    fi
    [ -n "$main_uri" ] || die "no Debian bookworm entry found in /etc/apt/sources.list{,.d/*.sources}"
    keyring=${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}

    tmp=$(mktemp)
    {
        echo "# Written by distvm scripts/setup-host.sh from the host's own entries."
        echo "Types: deb deb-src"
        echo "URIs: $main_uri"
        echo "Suites: bookworm-backports"
        echo "Components: main"
        echo "Signed-By: $keyring"
        echo
        echo "# QEMU 10.0 source (apt-get source qemu) comes from Debian 13."
        echo "Types: deb-src"
        echo "URIs: $main_uri"
        echo "Suites: trixie trixie-updates"
        echo "Components: main"
        echo "Signed-By: $keyring"
        if [ -n "$sec_uri" ]; then
            echo
            echo "Types: deb-src"
            echo "URIs: $sec_uri"
            echo "Suites: trixie-security"
            echo "Components: main"
            echo "Signed-By: $keyring"
        fi
    } > "$tmp"
    if ! cmp -s "$tmp" "$SOURCES_OUT" 2>/dev/null; then
        mv "$tmp" "$SOURCES_OUT"
        chmod 644 "$SOURCES_OUT"
        rm -f "$STAMP_DIR/apt-updated"
    else
        rm -f "$tmp"
    fi
}

mkdir -p "$STAMP_DIR"
derive_sources

export DEBIAN_FRONTEND=noninteractive
if [ ! -f "$STAMP_DIR/apt-updated" ]; then
    echo "setup-host: apt-get update"
    apt-get update -q >/dev/null || die "apt-get update failed"
    touch "$STAMP_DIR/apt-updated"
fi

# Finish an installation that was interrupted earlier, if any.
dpkg --configure -a >/dev/null 2>&1 || true

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup-host: installing$missing"
    apt-get install -y -q --no-install-recommends $missing >/dev/null \
        || die "apt-get install failed for:$missing"
fi

meson_ok=$(python3 - <<'PY' 2>/dev/null || true
import subprocess
try:
    v = subprocess.run(["meson", "--version"], capture_output=True, text=True).stdout.strip()
    print("yes" if tuple(int(x) for x in v.split(".")[:2]) >= (1, 5) else "no")
except Exception:
    print("no")
PY
)
if [ "$meson_ok" != yes ] || ! dpkg-query -W -f='${Status}' python3-pycotap 2>/dev/null | grep -q "ok installed"; then
    echo "setup-host: installing $BACKPORT_PACKAGES from bookworm-backports"
    apt-get install -y -q --no-install-recommends -t bookworm-backports $BACKPORT_PACKAGES >/dev/null \
        || die "apt-get install -t bookworm-backports failed for: $BACKPORT_PACKAGES"
fi
echo "setup-host: build and test dependencies are installed (meson $(meson --version))"
