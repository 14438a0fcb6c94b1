#!/usr/bin/env bash
# Installs what the non-Rust peers of the benchmark harness need:
#   golang-go        Go (Debian's, 1.19 on bookworm) for bench/harness/go
#   libgc-dev        Boehm GC (bdwgc) headers and library, for bench/harness/c
#   pkg-config       to find bdwgc's compiler and linker flags (bdw-gc.pc)
#   build-essential  cc and make
#
#   bench/harness/install-peers.sh          # installs if root and CI=true,
#                                           # otherwise lists what is missing
#   bench/harness/install-peers.sh --yes    # installs (apt-get; sudo if not root)
#
# Only what is missing is installed, so running it again is a no-op. A tool
# already on PATH counts as present even if it did not come from apt (a Go
# from go.dev, say). Exit status: 0 when everything is present afterwards,
# 1 when something is missing and was not installed (the list is printed on
# stderr), 2 for a bad argument.
set -euo pipefail

yes=0
for arg in "$@"; do
    case "$arg" in
        --yes|-y) yes=1 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install-peers.sh: unknown argument '$arg' (only --yes)" >&2; exit 2 ;;
    esac
done

missing() {
    local pkgs=()
    command -v go >/dev/null 2>&1 || pkgs+=(golang-go)
    if ! command -v pkg-config >/dev/null 2>&1; then
        pkgs+=(pkg-config)
        # Without pkg-config we cannot ask for bdw-gc; look for the header.
        [ -e /usr/include/gc.h ] || pkgs+=(libgc-dev)
    elif ! pkg-config --exists bdw-gc; then
        pkgs+=(libgc-dev)
    fi
    { command -v cc >/dev/null 2>&1 && command -v make >/dev/null 2>&1; } || pkgs+=(build-essential)
    echo "${pkgs[@]}"
}

need=$(missing)
if [ -z "$need" ]; then
    echo "install-peers.sh: all present: $(go version | cut -d' ' -f3), bdw-gc $(pkg-config --modversion bdw-gc), $(cc --version | head -n1)"
    exit 0
fi

if [ "$yes" = 0 ] && ! { [ "$(id -u)" = 0 ] && [ "${CI:-}" = true ]; }; then
    echo "install-peers.sh: missing: $need" >&2
    echo "  install with:  apt-get install -y $need" >&2
    echo "  or rerun as:   bench/harness/install-peers.sh --yes" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-peers.sh: missing: $need, and there is no apt-get here; install them with your package manager" >&2
    exit 1
fi
sudo=()
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "install-peers.sh: missing: $need; not root and no sudo, so run as root: apt-get install -y $need" >&2
        exit 1
    fi
fi

echo "install-peers.sh: installing: $need"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086  # $need is a list of package names
"${sudo[@]}" apt-get update -q
# shellcheck disable=SC2086
"${sudo[@]}" apt-get install -y -q --no-install-recommends $need

need=$(missing)
if [ -n "$need" ]; then
    echo "install-peers.sh: still missing after apt-get: $need" >&2
    exit 1
fi
echo "install-peers.sh: all present: $(go version | cut -d' ' -f3), bdw-gc $(pkg-config --modversion bdw-gc), $(cc --version | head -n1)"
