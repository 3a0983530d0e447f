#!/usr/bin/env bash
# The whole cpantuf system on the embedded sample, on one machine:
#
#   1. copies the sample mirror (six real CPAN tarballs: Moo and its
#      dependencies, by two authors) to demo-work/mirror;
#   2. signs it with cpantuf-sign and the DEMO keys in keys-example/
#      (root 2-of-3, targets 2-of-2, per-author roles);
#   3. generates a demo CA and a certificate for 127.0.0.1 and starts
#      cpantuf-mirror over TLS;
#   4. initialises a cpantuf client that trusts that root, shows how Moo
#      resolves, and installs Moo with the real cpanm through
#      `cpantuf install` into demo-work/perl5, listing every verified file;
#   5. has the author ETHER make a key, claim their role, and sign a new
#      release on their own machine (`cpantuf author`); PAUSE imports it, and
#      the user installs it, verified against ETHER's own key.
#
# Run from a checkout, as root on a fresh Debian 12 machine (it installs
# cpanminus and openssl if missing). Everything it writes is under
# demo-work/ (removed at the start of each run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK="$ROOT/demo-work"
KEYS="$ROOT/keys-example"
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "prerequisites (cpanminus, openssl, curl)"
need=()
for p in cpanminus openssl make curl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    # No Recommends: they would put Moo into the system perl.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

say "building cpantuf (release)"
cargo build --release --quiet --bins -p cpantuf-client -p cpantuf-repo-signer -p cpantuf-mirror-server
BIN="$ROOT/target/release"

rm -rf "$WORK"
mkdir -p "$WORK"
cp -r "$ROOT/sample-mirror" "$WORK/mirror"
rm -f "$WORK/mirror/PROVENANCE.md"

say "PAUSE operator: cpantuf-sign init + publish (demo keys: never for real use)"
"$BIN/cpantuf-sign" init --mirror "$WORK/mirror" --config "$WORK/signer.json" \
    --root-key "$KEYS/root-1.pem" --root-key "$KEYS/root-2.pem" --root-key "$KEYS/root-3.pem" \
    --root-threshold 2 \
    --targets-key "$KEYS/targets-1.pub.pem" --targets-key "$KEYS/targets-2.pub.pem" --targets-threshold 2 \
    --snapshot-key "$KEYS/snapshot.pem" --timestamp-key "$KEYS/timestamp.pem" \
    --index-key "$KEYS/index.pem" --registry-key "$KEYS/registry.pem" --authors-key "$KEYS/authors.pem"
"$BIN/cpantuf-sign" publish --config "$WORK/signer.json" \
    --key "$KEYS/targets-1.pem" --key "$KEYS/targets-2.pem"
"$BIN/cpantuf-sign" status --config "$WORK/signer.json" || true
ls "$WORK/mirror/tuf" | sed 's/^/    tuf\//' | head -20

say "mirror admin: demo CA + certificate for 127.0.0.1, cpantuf-mirror serve over TLS"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=cpantuf demo CA" -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=127.0.0.1" -keyout "$WORK/server.key" -out "$WORK/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$WORK/ext.cnf"
openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
    -days 2 -extfile "$WORK/ext.cnf" -out "$WORK/server.pem" 2>/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN/cpantuf-mirror" serve --root "$WORK/mirror" --listen "127.0.0.1:$PORT" \
    --cert "$WORK/server.pem" --key "$WORK/server.key" --access-log "$WORK/access.log" \
    --log warn &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    curl -s --cacert "$WORK/ca.pem" -o /dev/null "https://127.0.0.1:$PORT/tuf/timestamp.json" && break
    sleep 0.1
done
echo "    serving https://127.0.0.1:$PORT/ (access log: demo-work/access.log)"

say "Perl user: cpantuf init (trust the root, by file), refresh, resolve"
export CPANTUF_HOME="$WORK/client"
"$BIN/cpantuf" init "https://127.0.0.1:$PORT/" --root "$WORK/mirror/tuf/1.root.json" --ca-cert "$WORK/ca.pem"
"$BIN/cpantuf" refresh
"$BIN/cpantuf" resolve Moo Role::Tiny Class::Method::Modifiers

say "Perl user: cpantuf install Moo (real cpanm through the local verifying mirror)"
"$BIN/cpantuf" install Moo -- -L "$WORK/perl5" --notest --quiet

say "result"
perl -I"$WORK/perl5/lib/perl5" -e '
    use Moo ();
    package Greeter { use Moo; has name => (is => "ro"); sub hi { "hello, " . $_[0]->name } }
    print "Moo $Moo::VERSION installed from TUF-verified files: ", Greeter->new(name => "CPAN")->hi, "\n";'

say "CPAN author ETHER: a key of their own, claimed (PAUSE registers it in an offline session)"
A="$WORK/author"
mkdir -p "$A"
echo "demo passphrase, never for real use" > "$A/passphrase"
"$BIN/cpantuf" author keygen "$A/ETHER.pem" --passphrase-file "$A/passphrase"
"$BIN/cpantuf" author claim ETHER --key "$A/ETHER.pem" --passphrase-file "$A/passphrase" --out "$A"
"$BIN/cpantuf-sign" author import --config "$WORK/signer.json" ETHER "$A/ETHER.role.json" \
    --claim-key "$A/ETHER.pub.pem" --key "$KEYS/targets-1.pem" --key "$KEYS/targets-2.pem"

say "CPAN author ETHER: build a release and sign it locally (cpantuf author release)"
mkdir -p "$A/build/Acme-Demo-Hello-0.01/lib/Acme/Demo"
cat > "$A/build/Acme-Demo-Hello-0.01/Makefile.PL" <<'PERL'
use ExtUtils::MakeMaker;
WriteMakefile(NAME => 'Acme::Demo::Hello', VERSION_FROM => 'lib/Acme/Demo/Hello.pm');
PERL
cat > "$A/build/Acme-Demo-Hello-0.01/lib/Acme/Demo/Hello.pm" <<'PERL'
package Acme::Demo::Hello;
our $VERSION = '0.01';
sub hello { "hello from a release ETHER signed on their own machine" }
1;
PERL
tar -C "$A/build" -czf "$A/Acme-Demo-Hello-0.01.tar.gz" Acme-Demo-Hello-0.01
"$BIN/cpantuf" author release ETHER "$A/Acme-Demo-Hello-0.01.tar.gz" \
    --key "$A/ETHER.pem" --passphrase-file "$A/passphrase"

say "PAUSE: the upload (tarball + ETHER.role.json) checked against ETHER's signature, published, indexed"
cp "$A/Acme-Demo-Hello-0.01.tar.gz" "$WORK/mirror/authors/id/E/ET/ETHER/"
"$BIN/cpantuf-sign" author import --config "$WORK/signer.json" ETHER "$A/ETHER.role.json"
python3 - "$WORK/mirror/modules/02packages.details.txt.gz" <<'PY'
import gzip, sys
text = gzip.open(sys.argv[1], "rt").read()
head, body = text.split("\n\n", 1)
lines = [l for l in body.splitlines() if l] + [f"{'Acme::Demo::Hello':<30} {'0.01':>8}  E/ET/ETHER/Acme-Demo-Hello-0.01.tar.gz"]
lines.sort(key=str.lower)
head = "\n".join(f"Line-Count:   {len(lines)}" if h.startswith("Line-Count:") else h for h in head.splitlines())
with gzip.open(sys.argv[1], "wt") as f:
    f.write(head + "\n\n" + "\n".join(lines) + "\n")
PY
"$BIN/cpantuf-sign" index --config "$WORK/signer.json"
"$BIN/cpantuf-sign" timestamp --config "$WORK/signer.json"

say "Perl user: install it (verified against ETHER's own key), and ETHER checks what CPAN publishes"
"$BIN/cpantuf" resolve Acme::Demo::Hello
"$BIN/cpantuf" install Acme::Demo::Hello -- -L "$WORK/perl5" --notest --quiet
perl -I"$WORK/perl5/lib/perl5" -MAcme::Demo::Hello -e 'print Acme::Demo::Hello::hello(), "\n"'
"$BIN/cpantuf" author status ETHER --key "$A/ETHER.pub.pem" --dir "$A"
echo
echo "demo complete: everything is in demo-work/"
