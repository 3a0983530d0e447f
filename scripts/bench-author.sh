#!/usr/bin/env bash
# A claimed author's release at CPAN scale (issue 13), against PAUSE's own upload in the same
# run:
#
#   the synthetic mirror from the real 2026 index (43,765 files, 6,895 authors), signed by
#   cpantuf-sign and served on 127.0.0.1 by cpantuf-mirror; one author claims their role
#   (`cpantuf author keygen` + `claim`, `cpantuf-sign author import --claim-key`); then RUNS
#   rounds, each:
#     - `cpantuf author release` of a new tarball (the author's machine: fetches the role
#       through TUF, hashes the tarball, signs),
#     - `cpantuf-sign author import` of that role with the tarball uploaded (PAUSE: checks
#       the bytes against the author's signature, publishes in one incremental step),
#     - `cpantuf-sign add` of a new file of an unclaimed author (the anchor: PAUSE signing
#       an upload itself).
#   Prints the median wall time and largest peak RSS of each, and import's ratio to add.
#   Goal: import as fast as add, <= 20 ms.
#
#   With BINNED=1 the claiming author is the largest one, whose role is split into hash bins
#   (ADR 0006): the author signs their own bins, a release re-signs one; the script then also
#   prints what a new client fetches at most for one of that author's files.
#
# Usage: [BINNED=1] scripts/bench-author.sh [RUNS]   (default 9)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUNS=${1:-9}
W=$(mktemp -d /tmp/cpantuf-bench-author.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
KEYS="$ROOT/keys-example"
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
B="$TARGET_DIR/release"
. "$ROOT/scripts/lib/bench.sh"
cargo build --release --quiet --bins -p cpantuf-repo-signer -p cpantuf-mirror-server -p cpantuf-fixtures -p cpantuf-client

UP="$W/upstream"
"$B/cpantuf-fixtures" synthetic --index data/cpan-index/02packages.details.2026-04-02.txt.gz \
    --mailrc data/cpan-index/01mailrc.perlancar-darkpan-cpan.2022-01-11.txt.gz --out "$UP" >/dev/null
echo "== synthetic mirror of the real 2026 index: signing"
sign_mirror "$UP" "$W/up.json"
P=$(port)
serve_plain "$UP" "$P"
export CPANTUF_HOME="$W/client"
"$B/cpantuf" -q init "http://127.0.0.1:$P/" --root "$UP/tuf/1.root.json"

# The claiming author: the one with the most files under PAUSE's bin threshold (the largest
# role an author signs whole); the anchor: another author's upload.
# With BINNED=1: the author with the most files (split into bins).
read -r AUTHOR_DIR ANCHOR_DIR < <(python3 - "$UP" "${BINNED:-0}" <<'PY'
import os, sys
root = os.path.join(sys.argv[1], "authors", "id")
dirs = []
for l in os.listdir(root):
    for p in os.listdir(os.path.join(root, l)):
        for a in os.listdir(os.path.join(root, l, p)):
            d = os.path.join(root, l, p, a)
            n = sum(1 for f in os.listdir(d) if f.endswith(".tar.gz") and len(f.split(".", 1)[0]) != 64)
            dirs.append((n, d))
dirs.sort()
under = [d for n, d in dirs if n < 256]
print(dirs[-1][1] if sys.argv[2] == "1" else under[-1], dirs[len(dirs) // 2][1])
PY
)
ID=$(basename "$AUTHOR_DIR")
FILES=$(ls "$AUTHOR_DIR" | grep -c '\.tar\.gz$' || true)
echo "== $ID claims their role ($FILES tarballs and twins in the directory)"
A="$W/author"
mkdir -p "$A"
echo "bench passphrase" >"$A/pass"
"$B/cpantuf" -q author keygen "$A/$ID.pem" --passphrase-file "$A/pass" >/dev/null
"$B/cpantuf" -q author claim "$ID" --key "$A/$ID.pem" --passphrase-file "$A/pass" --out "$A" >/dev/null
"$B/cpantuf-sign" author import --config "$W/up.json" "$ID" "$A/$ID.role.json" --claim-key "$A/$ID.pub.pem" \
    --key "$KEYS/targets-1.pem" --key "$KEYS/targets-2.pem" >/dev/null
"$B/cpantuf-sign" timestamp --config "$W/up.json" >/dev/null

# Runs a command once; appends "ms rss-MB" to the file $1.
time_once() {
    python3 - "$@" <<'PY'
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
PY
}

echo "== $RUNS rounds: author release, PAUSE import, PAUSE add (anchor)"
R="$W/results"
mkdir -p "$R"
for i in $(seq "$RUNS"); do
    t="$A/Bench-Release-$i.0.tar.gz"
    head -c 30000 /dev/urandom >"$t"
    time_once "$R/release" "$B/cpantuf" -q author release "$ID" "$t" --key "$A/$ID.pem" \
        --passphrase-file "$A/pass" --out "$A"
    cp "$t" "$AUTHOR_DIR/"
    time_once "$R/import" "$B/cpantuf-sign" author import --config "$W/up.json" "$ID" "$A/$ID.role.json"
    "$B/cpantuf-sign" timestamp --config "$W/up.json" >/dev/null
    u="$ANCHOR_DIR/Bench-Anchor-$i.0.tar.gz"
    head -c 30000 /dev/urandom >"$u"
    time_once "$R/add" "$B/cpantuf-sign" add --config "$W/up.json" "$u"
done
"$B/cpantuf" -q fetch "${AUTHOR_DIR#"$UP"/}/Bench-Release-$RUNS.0.tar.gz" >/dev/null ||
    { echo "bench-author: the last release does not verify for a client" >&2; exit 1; }

echo
echo "== results: median of $RUNS, whole process; $ID's role lists $((FILES / 2)) files or so"
python3 - "$R" <<'PY'
import statistics, sys
r = sys.argv[1]
def row(name):
    runs = [tuple(map(float, l.split())) for l in open(f"{r}/{name}") if l.strip()]
    return statistics.median(t for t, _ in runs), min(t for t, _ in runs), max(m for _, m in runs)
anchor = row("add")[0]
print("| step | median | min | peak RSS | ratio to add |")
print("|---|---|---|---|---|")
for name, label in [("release", "cpantuf author release (author's machine, fetch through TUF + sign)"),
                    ("import", "cpantuf-sign author import (PAUSE: check bytes + publish)"),
                    ("add", "cpantuf-sign add (PAUSE signs an upload itself)")]:
    med, lo, rss = row(name)
    print(f"| {label} | {med:.1f} ms | {lo:.1f} ms | {rss:.1f} MB | {med / anchor:.2f}x |")
PY

python3 - "$UP" "$ID" "$A/$ID.role.json" <<'PY'
import json, os, sys
up, id, upload = sys.argv[1:]
tuf = os.path.join(up, "tuf")
ts = json.load(open(os.path.join(tuf, "timestamp.json")))
sv = ts["signed"]["meta"]["snapshot.json"]["version"]
snap = json.load(open(os.path.join(tuf, f"{sv}.snapshot.json")))["signed"]["meta"]
def size(role):
    v = snap[f"{role}.json"]["version"]
    return os.path.getsize(os.path.join(tuf, f"{v}.{role}.json"))
role = f"author-{id}"
u = json.load(open(upload))
roles = list(u["roles"]) if "roles" in u else [role]
print(f"the last release uploads {os.path.getsize(upload)} bytes of metadata: {', '.join(roles)}")
bins = [r[:-5] for r in snap if r.startswith(f"{role}-bin-")]
live = json.load(open(os.path.join(tuf, f"{snap[role + '.json']['version']}.{role}.json")))
succinct = (live["signed"].get("delegations") or {}).get("succinct_roles")
if succinct:
    n = 1 << succinct["bit_length"]
    largest = max(size(b) for b in bins)
    print(f"{role}: {size(role)} bytes, delegating to {n} bins signed by the author (largest "
          f"{largest} bytes): a new client fetches at most {size(role) + largest} bytes of "
          f"{id}'s metadata for one file")
else:
    print(f"{role}: {size(role)} bytes, one role")
PY
