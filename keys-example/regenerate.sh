#!/bin/sh
# Regenerates every demo key in this directory with cpantuf-sign keygen.
# DEMO AND TEST KEYS ONLY: the private keys are public in the repository.
#
#   keys-example/regenerate.sh            (from the project root)
#
# author-HAARG.pem is encrypted with the passphrase in author-HAARG.passphrase
# to exercise encrypted key files.
set -eu
cd "$(dirname "$0")"
SIGN="${CPANTUF_SIGN:-cargo run -q -p cpantuf-repo-signer --bin cpantuf-sign --}"
for k in root-1 root-2 root-3 targets-1 targets-2 snapshot timestamp index registry authors author-ETHER; do
    $SIGN keygen --force "$k.pem"
done
$SIGN keygen --force --encrypt --passphrase-file author-HAARG.passphrase author-HAARG.pem
