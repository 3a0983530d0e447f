#!/usr/bin/env bash
# `cpantuf resolve Moo` on a returning client at CPAN scale (issue 17), the
# binary before this work and the current one, in one run:
#
#   the synthetic mirror from the real 2026 index (263,736 package lines,
#   43,762 dists, 6,895 authors), signed by cpantuf-sign and served on
#   127.0.0.1 by cpantuf-mirror; for each binary, a client home that has
#   resolved Moo once (index downloaded and verified), then RUNS timed runs
#   of `resolve Moo`: wall time and peak RSS of the process.
#   Goals: <= 50 ms and <= 32 MB.
#
# The old binary is built from BASE (a commit, default the merge base with
# main) into this checkout's target directory, copied out, then the current
# one is built; or pass one ready-made as OLD_CPANTUF=path.
#
# Usage: scripts/bench-resolve.sh [RUNS] [BASE]   (default 5, main)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUNS=${1:-5}
BASE=${2:-main}
W=$(mktemp -d /tmp/cpantuf-bench-resolve.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
KEYS="$ROOT/keys-example"
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
B="$TARGET_DIR/release"
. "$ROOT/scripts/lib/bench.sh"

if [ -n "${OLD_CPANTUF:-}" ]; then
    OLD="$OLD_CPANTUF"
else
    echo "== building the old cpantuf from $BASE"
    OLD="$W/old-cpantuf"
    build_old "$BASE" cpantuf-client cpantuf "$OLD" "$W/old-src"
fi
cargo build --release --quiet --bins -p cpantuf-client -p cpantuf-repo-signer -p cpantuf-mirror-server -p cpantuf-fixtures
NEW="$W/new-cpantuf"
cp "$B/cpantuf" "$NEW"

# Runs a command RUNS times; prints "median-ms max-rss-MB" (the process's
# own peak RSS, from getrusage of the child, per run; the largest is kept).
measure() {
    python3 - "$RUNS" "$@" <<'EOF'
import resource, subprocess, sys, time, os
runs, cmd = int(sys.argv[1]), sys.argv[2:]
times, rss = [], []
for _ in range(runs):
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY); os.dup2(fd, 1); os.dup2(fd, 2)
        os.execv(cmd[0], cmd)
    _, status, ru = os.wait4(pid, 0)
    times.append(time.perf_counter() - t0)
    if status != 0:
        sys.exit(f"{' '.join(cmd)} failed")
    rss.append(ru.ru_maxrss / 1024)
times.sort()
print(f"{times[len(times)//2]*1000:.1f} {max(rss):.1f}")
EOF
}

echo "== synthetic mirror from the 2026 index"
"$B/cpantuf-fixtures" synthetic --index data/cpan-index/02packages.details.2026-04-02.txt.gz \
    --mailrc data/cpan-index/01mailrc.perlancar-darkpan-cpan.2022-01-11.txt.gz --out "$W/big" >/dev/null
sign_mirror "$W/big" "$W/big.json"
P=$(port)
serve_plain "$W/big" "$P"
URL="http://127.0.0.1:$P/"

row() { # $1 = label, $2 = binary, $3 = home, rest = resolve options
    local label=$1 bin=$2 home=$3; shift 3
    read -r ms mb < <(measure "$bin" -q --home "$home" resolve "$@" Moo)
    printf '  %-44s median %7.1f ms   max RSS %6.1f MB\n' "$label" "$ms" "$mb"
}

echo "== returning client: cpantuf resolve Moo ($RUNS runs each)"
for which in old new; do
    bin=$([ $which = old ] && echo "$OLD" || echo "$NEW")
    H="$W/home-$which"
    "$bin" -q --home "$H" init "$URL" --root "$W/big/tuf/1.root.json"
    "$bin" -q --home "$H" resolve Moo >/dev/null # first run: downloads and verifies the index
    row "$which binary, resolve Moo (refreshes)" "$bin" "$H"
done
row "new binary, resolve --cache-first Moo (offline)" "$NEW" "$W/home-new" --cache-first
"$NEW" --home "$W/home-new" resolve --cache-first --json Moo
