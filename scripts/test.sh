#!/usr/bin/env bash
# Run every test of cpantuf: installs the test prerequisites (Debian packages,
# the python-tuf venv) through scripts/setup-test-deps.sh, checks the python
# interop tooling against python-tuf itself, then runs the Rust tests of the
# whole workspace (unit, attack, interop and end-to-end tests).
#
#   scripts/test.sh            # everything
#   scripts/test.sh -- FILTER  # only Rust tests whose name matches FILTER
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n==> %s\n' "$*"; }

step "test prerequisites"
scripts/setup-test-deps.sh
scripts/install-mirror-test-deps.sh

step "python interop tooling checked against python-tuf"
tests/interop/selftest.sh

step "Rust tests (workspace)"
if [ "${1:-}" = "--" ]; then shift; fi
cargo test --workspace --all-targets "$@"
