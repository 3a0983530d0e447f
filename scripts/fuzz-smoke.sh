#!/usr/bin/env bash
# Fuzz smoke run: builds every cargo-fuzz target and runs each for a short
# time on one core, starting from the committed seeds in fuzz/corpus/<target>.
# Exits non-zero if a target fails to build or any run finds a crash, a
# leak, a timeout or an out-of-memory (libFuzzer exits non-zero for those
# and leaves the input in fuzz/artifacts/<target>/).
#
#   scripts/fuzz-smoke.sh              # every target, FUZZ_SECONDS each
#   scripts/fuzz-smoke.sh cpan_path    # some targets
#
# Environment: FUZZ_SECONDS (default 20), FUZZ_RUNS (stop after this many
# executions if that comes first; default no limit), FUZZ_SANITIZER (default
# address; "none" for a plain coverage-guided build).
#
# The long runs the threat model reports (10 million executions or 20
# minutes per target):
#   FUZZ_SECONDS=1200 FUZZ_RUNS=10000000 scripts/fuzz-smoke.sh
#
# cargo-fuzz needs nightly compiler flags (-Zsanitizer, sancov passes); the
# project's toolchain is stable, so RUSTC_BOOTSTRAP=1 unlocks them. New
# One in-process libFuzzer run per target (no -jobs/-fork: those spawn
# child processes), so one core at a time. New
# inputs go to a scratch corpus (fuzz/work/, ignored by git) so the
# committed seeds stay small.
set -euo pipefail

cd "$(dirname "$0")/../fuzz"

SECONDS_EACH="${FUZZ_SECONDS:-20}"
SANITIZER="${FUZZ_SANITIZER:-address}"
RUNS="${FUZZ_RUNS:--1}"
export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build -O --sanitizer "$SANITIZER"

failed=()
for t in "${targets[@]}"; do
    mkdir -p "work/$t"
    echo "fuzz-smoke: $t for ${SECONDS_EACH}s" >&2
    if ! cargo fuzz run -O --sanitizer "$SANITIZER" "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_EACH" -runs="$RUNS" -rss_limit_mb=2048 \
        -timeout=10 -print_final_stats=1 2>"work/$t.log"; then
        failed+=("$t")
        tail -n 40 "work/$t.log" >&2
    else
        grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec)' "work/$t.log" >&2 || true
        cp "work/$t.log" "work/$t.last.log"
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz-smoke: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz-smoke: ${#targets[@]} targets ran ${SECONDS_EACH}s each without a crash"
