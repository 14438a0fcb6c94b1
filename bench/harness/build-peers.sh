#!/usr/bin/env bash
# Builds the non-Rust peers of the benchmark harness into
# bench/harness/target-peers/:
#   harness-go      from bench/harness/go  (go build; Go 1.19 or newer)
#   harness-bdwgc   from bench/harness/c   (make: cc -O2, pkg-config bdw-gc)
#
#   bench/harness/build-peers.sh
#
# Fails, naming what is missing, if go, cc, make, pkg-config or bdwgc's
# development files are not there; bench/harness/install-peers.sh installs
# them. Prints the versions it built with. The output directory gets a
# .gitignore of "*", so the binaries never show up in git status.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/target-peers"

missing=()
command -v go >/dev/null 2>&1 || missing+=("go (apt-get install golang-go)")
command -v cc >/dev/null 2>&1 || missing+=("cc (apt-get install build-essential)")
command -v make >/dev/null 2>&1 || missing+=("make (apt-get install build-essential)")
if ! command -v pkg-config >/dev/null 2>&1; then
    missing+=("pkg-config (apt-get install pkg-config)")
elif ! pkg-config --exists bdw-gc; then
    missing+=("bdwgc development files, pkg-config bdw-gc (apt-get install libgc-dev)")
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "build-peers.sh: cannot build the Go and bdwgc peers; missing:" >&2
    printf '  %s\n' "${missing[@]}" >&2
    echo "bench/harness/install-peers.sh --yes installs them (Debian/Ubuntu)." >&2
    exit 1
fi

# Go 1.19 is what go.mod declares; an older go would fail with a less
# helpful message.
gover=$(go env GOVERSION)
case "$gover" in
    go1.[0-9]|go1.[0-9].*|go1.1[0-8]|go1.1[0-8].*)
        echo "build-peers.sh: $gover is too old, harness-go needs Go 1.19 or newer" >&2
        exit 1 ;;
esac

mkdir -p "$out"
[ -e "$out/.gitignore" ] || echo '*' > "$out/.gitignore"

echo "build-peers.sh: harness-go with $gover"
(cd "$here/go" && go build -trimpath -o "$out/harness-go" .)

echo "build-peers.sh: harness-bdwgc with bdw-gc $(pkg-config --modversion bdw-gc), $(cc --version | head -n1)"
make --no-print-directory -C "$here/c" OUT="$out/harness-bdwgc" >/dev/null

echo "build-peers.sh: built $out/harness-go and $out/harness-bdwgc"
