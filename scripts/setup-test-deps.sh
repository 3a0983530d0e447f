#!/usr/bin/env bash
# Install everything cpantuf's tests need on a Debian 12 machine (run as root).
#
#   scripts/setup-test-deps.sh            # install what is missing
#   CPANTUF_VENV=/some/dir scripts/setup-test-deps.sh
#
# Idempotent and non-interactive:
#   * Debian packages: installed with --no-install-recommends, and only the
#     missing ones; `apt-get update` runs only when something is missing.
#   * Python venv (default: <project root>/.venv, override with CPANTUF_VENV)
#     with the exact pins of tests/interop/requirements.txt.  A stamp file in
#     the venv records the requirements' checksum and the interpreter, so a
#     re-run with nothing changed is a fast no-op.
#
# Environment:
#   CPANTUF_VENV     venv location (default: <project root>/.venv)
#   CPANTUF_PYTHON   interpreter used to create the venv (default: /usr/bin/python3,
#                    Debian's, which the python3-venv package makes venv-capable)
#   CPANTUF_FORCE=1  rebuild the venv even if the stamp says it is up to date
set -euo pipefail

log() { printf 'setup-test-deps: %s\n' "$*"; }
die() { printf 'setup-test-deps: ERROR: %s\n' "$*" >&2; exit 1; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQS="$ROOT/tests/interop/requirements.txt"
VENV="${CPANTUF_VENV:-$ROOT/.venv}"
PYTHON="${CPANTUF_PYTHON:-/usr/bin/python3}"

[ -f "$REQS" ] || die "missing $REQS (run from a cpantuf checkout)"

# --------------------------------------------------------------------------
# 1. Debian packages
# --------------------------------------------------------------------------
# cpanminus MUST come without its Recommends: those pull CPAN modules (Moo and
# friends) into the system perl, after which "cpanm installed X" tests could
# pass without cpanm having installed anything.  Everything here is installed
# with --no-install-recommends for the same reason.
#
# Note: libwww-perl has a hard Depends on libtry-tiny-perl, so Try::Tiny IS in
# the system perl once libwww-perl is installed.  Install tests must not use
# Try::Tiny as proof that cpanm installed something; Moo is not pulled in by
# anything below.
#
# Why each package:
#   cpanminus                    the CPAN client the mirror/client is tested with
#   carton                       the bundler tested with `cpantuf carton` (it pulls
#                                Menlo and small helpers, not Moo or its deps)
#   make                         cpanm builds distributions (Makefile.PL -> make)
#   perl                         (cpanminus depends on it anyway)
#   libwww-perl                  cpanm's LWP download backend
#   curl, wget                   cpanm's curl / wget download backends, and tests
#   libio-socket-ssl-perl,
#   libnet-ssleay-perl           https for cpanm's HTTP::Tiny (and LWP) backends
#   ca-certificates              https trust store for the above
#   openssl                      test certificates
#   faketime                     clock-skew / expiry tests
#   python3, python3-venv        the python-tuf interop venv
APT_PKGS=(
  cpanminus carton make perl
  libwww-perl curl wget libio-socket-ssl-perl libnet-ssleay-perl ca-certificates
  openssl faketime
  python3 python3-venv
)

command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script supports Debian (12) only"

missing=()
for p in "${APT_PKGS[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)"
  case "$status" in
    ii*) ;;
    *) missing+=("$p") ;;
  esac
done

if [ "${#missing[@]}" -eq 0 ]; then
  log "Debian packages: all ${#APT_PKGS[@]} already installed"
else
  [ "$(id -u)" -eq 0 ] || die "need root to install Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  log "Debian packages missing: ${missing[*]}"
  log "running apt-get update"
  apt-get update -q || die "apt-get update failed"
  log "running apt-get install --no-install-recommends ${missing[*]}"
  apt-get install -y -q --no-install-recommends "${missing[@]}" \
    || die "apt-get install failed for: ${missing[*]}"
fi

# Sanity checks of what the tests rely on (cheap, run every time).
for c in cpanm carton make curl wget openssl faketime perl; do
  command -v "$c" >/dev/null 2>&1 || die "'$c' is not on PATH after installing packages"
done
perl -MLWP::UserAgent -MIO::Socket::SSL -MNet::SSLeay -MHTTP::Tiny -e \
  'exit(HTTP::Tiny->can_ssl ? 0 : 1)' 2>/dev/null \
  || die "perl https support (LWP, IO::Socket::SSL, Net::SSLeay, HTTP::Tiny->can_ssl) is not usable"
# Not fatal (this script never removes packages), but say it loudly: with Moo
# already in the system perl, "cpanm installed Moo" tests prove nothing.
if perl -MMoo -e 1 2>/dev/null; then
  log "WARNING: Moo is already installed in the system perl ($(perl -MMoo -e 'print $INC{"Moo.pm"}'));"
  log "WARNING: install tests that expect cpanm to install Moo are meaningless on this machine"
fi

# --------------------------------------------------------------------------
# 2. Python venv for the python-tuf interop tests
# --------------------------------------------------------------------------
[ -x "$PYTHON" ] || die "python interpreter '$PYTHON' not found (set CPANTUF_PYTHON)"

STAMP="$VENV/.cpantuf-setup-stamp"
want_stamp="$(
  {
    sha256sum "$REQS" | cut -d' ' -f1
    "$PYTHON" -c 'import sys; print(sys.version)'
    readlink -f "$PYTHON"
  } | sha256sum | cut -d' ' -f1
)"

if [ "${CPANTUF_FORCE:-0}" != 1 ] && [ -f "$STAMP" ] \
   && [ "$(cat "$STAMP")" = "$want_stamp" ] \
   && "$VENV/bin/python" -c 'import tuf.ngclient, tuf.api.metadata, securesystemslib.signer' 2>/dev/null; then
  log "python venv $VENV: up to date ($("$VENV/bin/python" -c 'import tuf; print("tuf", tuf.__version__)'))"
  log "done"
  exit 0
fi

if [ -d "$VENV" ]; then
  log "python venv $VENV: out of date or incomplete, recreating"
  rm -rf "$VENV"
fi
log "creating python venv $VENV with $PYTHON"
"$PYTHON" -m venv "$VENV" || die "could not create venv at $VENV (is python3-venv installed?)"

log "installing pinned packages from tests/interop/requirements.txt"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  -r "$REQS" || die "pip install -r $REQS failed"

"$VENV/bin/python" - <<'PY' || die "installed packages do not work (see above)"
import tuf, securesystemslib
from securesystemslib.signer import CryptoSigner
import tuf.ngclient, tuf.api.metadata
# ed25519 and ecdsa signing both need pyca/cryptography: prove they work.
for gen in (CryptoSigner.generate_ed25519, CryptoSigner.generate_ecdsa):
    s = gen()
    sig = s.sign(b"probe")
    s.public_key.verify_signature(sig, b"probe")
print(f"setup-test-deps: verified tuf {tuf.__version__}, securesystemslib {securesystemslib.__version__}: ed25519 + ecdsa sign/verify ok")
PY

printf '%s\n' "$want_stamp" > "$STAMP"
log "done"
