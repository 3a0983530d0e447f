#!/usr/bin/env bash
# Self-test of the interop tooling, python-tuf against python-tuf:
# build every scenario with make_repos.py, serve them on 127.0.0.1, and check
# each with ngclient_check.py --scenario (python-tuf's ngclient).  Every
# scenario must behave exactly as its scenario.json says: refresh outcome,
# trusted root version, each download's outcome, sha256 of what downloaded,
# and the reason python-tuf gives for each refusal.
#
#   tests/interop/selftest.sh [OUTDIR]
#
# OUTDIR (optional) keeps the built repositories and per-scenario logs;
# default is a temporary directory that is removed afterwards.
# The last line printed is "N passed, M failed"; exit status 0 iff M = 0 and N > 0.
set -u

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${CPANTUF_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"

die() { printf 'selftest: ERROR: %s\n' "$*" >&2; echo "0 passed, 1 failed"; exit 1; }

[ -x "$PY" ] || die "no venv python at $PY: run scripts/setup-test-deps.sh first"

if [ $# -ge 1 ]; then
  OUT="$1"; mkdir -p "$OUT" || die "cannot create $OUT"; KEEP=1
else
  OUT="$(mktemp -d "${TMPDIR:-/tmp}/cpantuf-interop-selftest.XXXXXX")"; KEEP=0
fi
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; fi
  [ "$KEEP" = 1 ] || rm -rf "$OUT"
}
trap cleanup EXIT

REPOS="$OUT/repos"
LOGS="$OUT/logs"
rm -rf "$REPOS" "$LOGS" "$OUT/port"
mkdir -p "$LOGS"

"$PY" "$HERE/make_repos.py" "$REPOS" > "$LOGS/make_repos.log" 2>&1 \
  || { cat "$LOGS/make_repos.log" >&2; die "make_repos.py failed"; }
mapfile -t SCENARIOS < <("$PY" "$HERE/make_repos.py" --list) \
  || die "make_repos.py --list failed"
[ "${#SCENARIOS[@]}" -gt 0 ] || die "make_repos.py lists no scenarios"

"$PY" "$HERE/serve_dir.py" "$REPOS" --port-file "$OUT/port" > "$LOGS/server.out" 2> "$LOGS/server.err" &
SERVER_PID=$!
for _ in $(seq 1 100); do
  [ -s "$OUT/port" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$LOGS/server.err" >&2; die "serve_dir.py exited"; }
  sleep 0.1
done
[ -s "$OUT/port" ] || die "serve_dir.py did not report a port within 10 s"
PORT="$(cat "$OUT/port")"
echo "selftest: serving ${#SCENARIOS[@]} scenarios on 127.0.0.1:$PORT"

passed=0
failed=0
for sc in "${SCENARIOS[@]}"; do
  log="$LOGS/$sc.log"
  if [ ! -f "$REPOS/$sc/scenario.json" ]; then
    echo "FAIL $sc: make_repos.py did not write $sc/scenario.json"
    failed=$((failed + 1))
    continue
  fi
  if "$PY" "$HERE/ngclient_check.py" --scenario "$REPOS/$sc/scenario.json" \
       --base-url "http://127.0.0.1:$PORT/$sc" > "$log" 2>&1; then
    echo "PASS $sc ($(tail -n 1 "$log" | sed 's/^ngclient_check: //'))"
    passed=$((passed + 1))
  else
    echo "FAIL $sc"
    sed 's/^/    /' "$log"
    failed=$((failed + 1))
  fi
done

[ "$KEEP" = 1 ] && echo "selftest: repositories and logs kept in $OUT"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
