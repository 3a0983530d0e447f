#!/usr/bin/env bash
# Installs the Debian packages the mirror-server tests and benchmark need, if missing:
# real CPAN clients for mirror-server/tests/serve/cpan_clients.rs (cpanm with its LWP, wget,
# curl and HTTP::Tiny backends; CPAN.pm comes with perl), and nginx + wrk for
# scripts/bench-mirror.sh and rsync for scripts/bench-sync.sh (--bench). Meant for .ci/run and fresh machines; needs root.
set -euo pipefail
pkgs=(perl cpanminus make tar wget curl libwww-perl liblwp-protocol-https-perl)
[ "${1:-}" = "--bench" ] && pkgs+=(nginx-light wrk rsync)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-mirror-test-deps: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
