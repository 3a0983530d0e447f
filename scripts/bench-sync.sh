#!/usr/bin/env bash
# `cpantuf-mirror sync` against rsync -aH on the same upstream tree, in one run (issue 18):
#
#   the synthetic mirror from the real 2026 index (by default; or a seeded one, see SEEDED
#   below), signed by cpantuf-sign and served on 127.0.0.1 by `cpantuf-mirror serve`, and the
#   same directory exported by an rsync daemon on 127.0.0.1 (or, with RSYNC_LOCAL=1 or when
#   the daemon does not start, copied by a local `rsync -aH SRC/ DST/`, labelled as such).
#   Three followers: the sync binary before this work ("old"), the current one ("new") and
#   rsync -aH, each with its own destination, timed on:
#
#   first copy       one run each
#   nothing changed  RUNS runs each; the syncs are returning ones (the copy above)
#   one new upload   RUNS rounds: `cpantuf-sign add` of one new file + `timestamp` upstream,
#                    then each follower once, on the same change
#   2024 -> 2026     a second upstream, the synthetic mirror of the 2024 index, copied by each
#                    follower (untimed); then it moves to the 2026 index (releases added, those
#                    gone from the index deleted, index files rewritten), `cpantuf-sign publish`,
#                    and each follower once, on the same change (skipped with SEEDED or
#                    NO_UPDATE=1)
#
# Prints median wall time (and the largest peak RSS of the process) per row and follower,
# and each sync's ratio to rsync -aH of the same row.
#
# The old binary is built from BASE (a commit, default the merge base with main) into this
# checkout's target directory and copied out, then the current one is built (as
# scripts/bench-resolve.sh does, then cleans the workspace's own release artifacts so that the
# current ones are rebuilt); or pass one ready-made as OLD_MIRROR=path.
#
# Usage: scripts/bench-sync.sh [RUNS] [BASE]   (default 5, main)
#   SEEDED="FILES AUTHORS"  build a seeded synthetic mirror of that size instead of the 2026
#                           index (smaller machines)
#   RSYNC_LOCAL=1           local rsync -aH instead of a daemon
# Needs: python3, curl, cargo, rsync (installed by scripts/install-mirror-test-deps.sh --bench
# when missing and run as root; otherwise its column is skipped, and said).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if ! command -v rsync >/dev/null && [ "$(id -u)" = 0 ]; then
    scripts/install-mirror-test-deps.sh --bench
fi
RUNS=${1:-5}
BASE=${2:-main}
W=$(mktemp -d /tmp/cpantuf-bench-sync.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
KEYS="$ROOT/keys-example"
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
B="$TARGET_DIR/release"
. "$ROOT/scripts/lib/bench.sh"

if [ -n "${OLD_MIRROR:-}" ]; then
    OLD="$OLD_MIRROR"
else
    echo "== building the old cpantuf-mirror from $BASE"
    OLD="$W/old-cpantuf-mirror"
    build_old "$BASE" cpantuf-mirror-server cpantuf-mirror "$OLD" "$W/old-src"
fi
cargo build --release --quiet --bins -p cpantuf-repo-signer -p cpantuf-mirror-server -p cpantuf-fixtures
NEW="$W/new-cpantuf-mirror"
cp "$B/cpantuf-mirror" "$NEW"

# Runs a command once; appends "ms rss-MB" to the file $1 (peak RSS of the process itself,
# from wait4). Fails loudly if the command does.
time_once() {
    python3 - "$@" <<'EOF'
import os, sys, time
out, cmd = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_WRONLY); os.dup2(fd, 1); os.dup2(fd, 2)
    os.execvp(cmd[0], cmd)
_, status, ru = os.wait4(pid, 0)
ms = (time.perf_counter() - t0) * 1000
if status != 0:
    sys.exit(f"{' '.join(cmd)} failed")
with open(out, "a") as f:
    f.write(f"{ms:.1f} {ru.ru_maxrss / 1024:.1f}\n")
EOF
}

UP="$W/upstream"
if [ -n "${SEEDED:-}" ]; then
    read -r FILES AUTHORS <<<"$SEEDED"
    SCALE="seeded synthetic mirror, $FILES files, $AUTHORS authors"
    "$B/cpantuf-fixtures" synthetic --files "$FILES" --authors "$AUTHORS" --out "$UP" >/dev/null
else
    SCALE="synthetic mirror of the real 2026 index (02packages 2026-04-02)"
    "$B/cpantuf-fixtures" synthetic --index data/cpan-index/02packages.details.2026-04-02.txt.gz \
        --mailrc data/cpan-index/01mailrc.perlancar-darkpan-cpan.2022-01-11.txt.gz --out "$UP" >/dev/null
fi
echo "== $SCALE: signing"
sign_mirror "$UP" "$W/up.json"
FILES_NOW=$(find "$UP" -type f | wc -l)
echo "   $FILES_NOW files upstream (targets and their hash-named twins, metadata)"
P=$(port)
serve_plain "$UP" "$P"
URL="http://127.0.0.1:$P/"

# rsync: a daemon exporting the upstream directory, else a local copy.
RSYNC_SRC="" RSYNC_LABEL=""
if command -v rsync >/dev/null; then
    if [ -z "${RSYNC_LOCAL:-}" ]; then
        RP=$(port)
        cat >"$W/rsyncd.conf" <<EOF
use chroot = no
uid = $(id -u)
gid = $(id -g)
pid file = $W/rsyncd.pid
[cpan]
path = $UP
read only = yes
[cpan2024]
path = $W/upstream-2024
read only = yes
EOF
        rsync --daemon --no-detach --address=127.0.0.1 --port="$RP" --config="$W/rsyncd.conf" &
        for _ in $(seq 100); do rsync "rsync://127.0.0.1:$RP/" >/dev/null 2>&1 && break; sleep 0.05; done
        if rsync "rsync://127.0.0.1:$RP/" >/dev/null 2>&1; then
            RSYNC_SRC="rsync://127.0.0.1:$RP/cpan/" RSYNC_LABEL="rsync -aH (daemon)"
        fi
    fi
    if [ -z "$RSYNC_SRC" ]; then
        RSYNC_SRC="$UP/" RSYNC_LABEL="rsync -aH (local copy, stand-in)"
    fi
else
    echo "   rsync not installed: no rsync column"
fi

R="$W/results"
mkdir -p "$R"
# The upstream the followers follow (the 2024 -> 2026 row switches them).
F_URL="$URL" F_ROOT="$UP/tuf/1.root.json" F_RSYNC="$RSYNC_SRC" F_DEST="dest"
follow() { # $1 = follower, $2 = row: one run, timed into $R/$2.$1
    # Each run starts with the page cache warm and nothing waiting to be written back, so
    # that no follower pays for the writes of the one before it (or of the upstream's).
    sync
    case $1 in
        old|new)
            local bin; bin=$([ "$1" = old ] && echo "$OLD" || echo "$NEW")
            time_once "$R/$2.$1" "$bin" --log error sync --upstream "$F_URL" \
                --trusted-root "$F_ROOT" --dest "$W/$F_DEST-$1" ;;
        rsync)
            time_once "$R/$2.$1" rsync -aH --delete "$F_RSYNC" "$W/$F_DEST-rsync/" ;;
    esac
}
FOLLOWERS="old new"
[ -n "$RSYNC_SRC" ] && FOLLOWERS="$FOLLOWERS rsync"

echo "== first copy (one run each)"
for f in $FOLLOWERS; do follow "$f" first; done
echo "== nothing changed ($RUNS runs each)"
for _ in $(seq "$RUNS"); do for f in $FOLLOWERS; do follow "$f" unchanged; done; done
echo "== one new upload ($RUNS rounds: add + timestamp upstream, then each follower)"
AUTHOR_DIR=$(find "$UP/authors/id" -mindepth 3 -maxdepth 3 -type d | sort | awk "NR == 1")
for i in $(seq "$RUNS"); do
    f="$AUTHOR_DIR/Bench-Upload-$i.0.tar.gz"
    head -c 30000 /dev/urandom >"$f"
    "$B/cpantuf-sign" add --config "$W/up.json" "$f" >/dev/null
    "$B/cpantuf-sign" timestamp --config "$W/up.json" >/dev/null
    for fl in $FOLLOWERS; do follow "$fl" upload; done
done
for f in "$W/dest-old/current/" "$W/dest-new/current/"; do
    # Both syncs serve the last upload, byte for byte.
    cmp -s "$f${AUTHOR_DIR#"$UP"/}/Bench-Upload-$RUNS.0.tar.gz" "$AUTHOR_DIR/Bench-Upload-$RUNS.0.tar.gz" \
        || { echo "bench-sync: $f lacks the last upload" >&2; exit 1; }
done

ROWS="first unchanged upload"
if [ -z "${SEEDED:-}" ] && [ -z "${NO_UPDATE:-}" ]; then
    echo "== 2024 -> 2026 index update: a second upstream from the 2024 index"
    UP2="$W/upstream-2024"
    synth() { "$B/cpantuf-fixtures" synthetic --index "data/cpan-index/02packages.details.$1.txt.gz" \
        --mailrc data/cpan-index/01mailrc.perlancar-darkpan-cpan.2022-01-11.txt.gz --out "$UP2" >/dev/null; }
    synth 2024-01-11
    sign_mirror "$UP2" "$W/up2.json"
    P2=$(port)
    serve_plain "$UP2" "$P2"
    F_URL="http://127.0.0.1:$P2/" F_ROOT="$UP2/tuf/1.root.json" F_DEST="dest2024"
    case "$RSYNC_SRC" in
        rsync://*) F_RSYNC="${RSYNC_SRC%cpan/}cpan2024/" ;;
        *) F_RSYNC="$UP2/" ;;
    esac
    echo "   first copy of the 2024 mirror by each follower (not timed)"
    for f in $FOLLOWERS; do follow "$f" first2024; done
    synth 2026-04-02
    python3 - "$UP2" <<'EOF'
import gzip, os, sys
def dists(date):
    with gzip.open(f"data/cpan-index/02packages.details.{date}.txt.gz", "rt") as f:
        lines = iter(f)
        for line in lines:
            if not line.strip():
                break
        return {"authors/id/" + l.split()[2] for l in lines if len(l.split()) >= 3}
old, new = dists("2024-01-11"), dists("2026-04-02")
for gone in old - new:
    path = os.path.join(sys.argv[1], gone)
    if os.path.exists(path):
        os.remove(path)
print(f"   the 2026 index: {len(new - old)} releases added, {len(old - new)} deleted")
EOF
    "$B/cpantuf-sign" publish --config "$W/up2.json" --key "$KEYS/targets-1.pem" --key "$KEYS/targets-2.pem" >/dev/null
    echo "   each follower once on the update"
    for f in $FOLLOWERS; do follow "$f" update; done
    for f in $FOLLOWERS; do
        d="$W/dest2024-$f"
        [ "$f" = rsync ] || d="$d/current"
        cmp -s "$d/modules/02packages.details.txt.gz" data/cpan-index/02packages.details.2026-04-02.txt.gz ||
            { echo "bench-sync: $f does not serve the 2026 index" >&2; exit 1; }
    done
    ROWS="$ROWS update"
fi

echo
echo "== results: $SCALE, $FILES_NOW files; median of $RUNS (first copy: 1 run); ratio = time / $RSYNC_LABEL time"
python3 - "$R" "$FOLLOWERS" "$RSYNC_LABEL" "$ROWS" <<'EOF'
import statistics, sys
r, followers, rlabel, rows = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4].split()
label = {"old": "cpantuf-mirror sync (old)", "new": "cpantuf-mirror sync (new)", "rsync": rlabel}
def row(name, f):
    with open(f"{r}/{name}.{f}") as fh:
        runs = [tuple(map(float, l.split())) for l in fh if l.strip()]
    return statistics.median(t for t, _ in runs), max(m for _, m in runs)
print(f"| case | follower | median | peak RSS | ratio to rsync -aH |")
print(f"|---|---|---|---|---|")
titles = {"first": "first copy", "unchanged": "nothing changed", "upload": "one new upload",
          "update": "2024 -> 2026 index update (1 run)"}
for name in rows:
    title = titles[name]
    anchor = row(name, "rsync")[0] if "rsync" in followers else None
    for f in followers:
        t, m = row(name, f)
        ratio = f"{t / anchor:.3g}x ({anchor / t:.3g}x faster)" if anchor and f != "rsync" else ("1x" if anchor else "-")
        print(f"| {title} | {label[f]} | {t:.1f} ms | {m:.1f} MB | {ratio} |")
EOF
