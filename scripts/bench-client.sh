#!/usr/bin/env bash
# Client benchmarks (issue: client), all in one run on this machine:
#
#  A. `cpantuf install Moo` vs plain `cpanm --from MIRROR Moo` against the
#     same signed sample mirror served by cpantuf-mirror on 127.0.0.1,
#     alternating, fresh install prefix each run, --notest. Goal: <= 1.10x.
#  B. CPAN scale: the synthetic mirror from the real 2026 index (43,762
#     dists, 6,895 authors) signed by cpantuf-sign and served locally.
#     - a new client's first install of one dist: metadata bytes on the wire
#       (from the mirror's access log) and time of the TUF work (refresh +
#       delegation search down to the author role). Goals: <= 150 KB, <= 150 ms.
#     - a returning client with nothing new: requests made and wall time.
#     - python-tuf's ngclient doing the same first download, for comparison.
#
# Usage: scripts/bench-client.sh [RUNS]   (default 5)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUNS=${1:-5}
W=$(mktemp -d /tmp/cpantuf-bench-client.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
KEYS="$ROOT/keys-example"

command -v bc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bc >/dev/null; }
cargo build --release --quiet --bins -p cpantuf-client -p cpantuf-repo-signer -p cpantuf-mirror-server -p cpantuf-fixtures
B="$ROOT/target/release"
. "$ROOT/scripts/lib/bench.sh"
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
serve() { # $1 = root, $2 = port, $3 = access log
    "$B/cpantuf-mirror" --log error serve --root "$1" --http-listen "127.0.0.1:$2" --access-log "$3" &
    for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$2/tuf/timestamp.json" && return; sleep 0.05; done
    echo "mirror did not start" >&2; exit 1
}

echo "== A. cpantuf install Moo vs cpanm --from (sample mirror, $RUNS runs each, alternating)"
cp -r sample-mirror "$W/sample"
sign_mirror "$W/sample" "$W/sample.json"
PA=$(port); serve "$W/sample" "$PA" "$W/a.log"
URL="http://127.0.0.1:$PA/"
for i in $(seq "$RUNS"); do
    t0=$(now); PERL_CPANM_OPT= cpanm --from "$URL" -L "$W/p-plain-$i" --notest --quiet Moo >/dev/null 2>&1; t1=$(now)
    echo "$t1 - $t0" | bc >> "$W/plain.t"
    H="$W/home-$i"
    t0=$(now)
    "$B/cpantuf" -q --home "$H" init "$URL" --root "$W/sample/tuf/1.root.json"
    "$B/cpantuf" -q --home "$H" install Moo -- -L "$W/p-tuf-$i" --notest --quiet >/dev/null 2>&1
    t1=$(now)
    echo "$t1 - $t0" | bc >> "$W/tuf.t"
    [ -f "$W/p-tuf-$i/lib/perl5/Moo.pm" ] || { echo "cpantuf install did not install Moo" >&2; exit 1; }
done
P=$(median < "$W/plain.t"); T=$(median < "$W/tuf.t")
printf '  plain cpanm --from : median %.3f s\n  cpantuf install    : median %.3f s (fresh client: init + refresh + install)\n  ratio              : %.3fx (goal <= 1.10x)\n' \
    "$P" "$T" "$(echo "$T / $P" | bc -l)"

echo
echo "== B. CPAN scale: synthetic mirror from the 2026 index, signed and served locally"
t0=$(now)
"$B/cpantuf-fixtures" synthetic --index data/cpan-index/02packages.details.2026-04-02.txt.gz \
    --mailrc data/cpan-index/01mailrc.perlancar-darkpan-cpan.2022-01-11.txt.gz --out "$W/big" >/dev/null
t1=$(now); printf '  generated in %.1f s\n' "$(echo "$t1 - $t0" | bc)"
t0=$(now); sign_mirror "$W/big" "$W/big.json"; t1=$(now)
printf '  cpantuf-sign init + publish: %.2f s\n' "$(echo "$t1 - $t0" | bc)"
printf '  metadata files: snapshot %s B, targets %s B\n' \
    "$(stat -c %s "$W"/big/tuf/1.snapshot.json)" "$(stat -c %s "$W"/big/tuf/1.targets.json)"
PB=$(port); serve "$W/big" "$PB" "$W/b.log"
BIG="http://127.0.0.1:$PB/"
DIST=$(zcat "$W/big/modules/02packages.details.txt.gz" | awk '$1=="Moo" {print $3}')
TARGET="authors/id/$DIST"
echo "  first install of $TARGET by a new client ($RUNS runs)"
: > "$W/first.t"
for i in $(seq "$RUNS"); do
    H="$W/bighome-$i"
    "$B/cpantuf" -q --home "$H" init "$BIG" --root "$W/big/tuf/1.root.json"
    : > "$W/b.log"
    t0=$(now)
    "$B/cpantuf" -q --home "$H" fetch "$TARGET" >/dev/null
    t1=$(now)
    echo "$t1 - $t0" | bc >> "$W/first.t"
done
# Bytes of metadata on the wire for the last run (gzip when the client asks for it).
MD=$(awk '$7 ~ /^\/tuf\// && $9==200 {s+=$10} END {print s+0}' "$W/b.log")
NREQ=$(awk '$7 ~ /^\/tuf\// {n++} END {print n+0}' "$W/b.log")
printf '  metadata fetched: %d requests, %.1f KB on the wire (goal <= 150 KB)\n' "$NREQ" "$(echo "$MD / 1000" | bc -l)"
printf '  refresh + search + verified download, wall: median %.1f ms (goal <= 150 ms of TUF work)\n' \
    "$(echo "$(median < "$W/first.t") * 1000" | bc -l)"
: > "$W/again.t"
for i in $(seq "$RUNS"); do
    : > "$W/b.log"
    t0=$(now); "$B/cpantuf" -q --home "$W/bighome-1" refresh; t1=$(now)
    echo "$t1 - $t0" | bc >> "$W/again.t"
done
NREQ=$(awk '{n++} END {print n+0}' "$W/b.log")
printf '  returning client, nothing new: %d requests (%s), median %.1f ms\n' "$NREQ" \
    "$(awk '{printf "%s ", $7}' "$W/b.log")" "$(echo "$(median < "$W/again.t") * 1000" | bc -l)"

if [ -x .venv/bin/python ]; then
    echo "  python-tuf ngclient, same first download (new client):"
    : > "$W/b.log"
    t0=$(now)
    .venv/bin/python tests/interop/ngclient_check.py --metadata-url "${BIG}tuf/" --targets-url "$BIG" \
        --root "$W/big/tuf/1.root.json" --target "$TARGET" --expect ok --workdir "$W/ngc" >/dev/null
    t1=$(now)
    MD=$(awk '$7 ~ /^\/tuf\// && $9==200 {s+=$10} END {print s+0}' "$W/b.log")
    printf '    %.1f KB metadata on the wire, %.0f ms wall (interpreter start included)\n' \
        "$(echo "$MD / 1000" | bc -l)" "$(echo "($t1 - $t0) * 1000" | bc -l)"
fi
