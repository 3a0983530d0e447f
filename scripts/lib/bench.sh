# Helpers shared by the scripts/bench-*.sh scripts; sourced, not run. The caller sets B (the
# directory of the release binaries) and KEYS (keys-example); build_old also needs TARGET_DIR.

# A free TCP port on 127.0.0.1.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Signs a mirror directory with the example keys: a new repository, then a full publish.
sign_mirror() { # $1 = mirror dir, $2 = signer config
    "$B/cpantuf-sign" init --mirror "$1" --config "$2" \
        --root-key "$KEYS/root-1.pem" --root-key "$KEYS/root-2.pem" --root-key "$KEYS/root-3.pem" --root-threshold 2 \
        --targets-key "$KEYS/targets-1.pub.pem" --targets-key "$KEYS/targets-2.pub.pem" --targets-threshold 2 \
        --snapshot-key "$KEYS/snapshot.pem" --timestamp-key "$KEYS/timestamp.pem" \
        --index-key "$KEYS/index.pem" --registry-key "$KEYS/registry.pem" --authors-key "$KEYS/authors.pem" \
        --no-fsync >/dev/null
    "$B/cpantuf-sign" publish --config "$2" --key "$KEYS/targets-1.pem" --key "$KEYS/targets-2.pem" >/dev/null
}

# `cpantuf-mirror serve` of a directory over loopback HTTP, without an access log, in the
# background of the calling shell; returns once it answers.
serve_plain() { # $1 = root, $2 = port
    "$B/cpantuf-mirror" --log error serve --root "$1" --http-listen "127.0.0.1:$2" --access-log off &
    for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$2/tuf/timestamp.json" && break; sleep 0.05; done
}

# Builds binary $3 of package $2 as of the merge base of HEAD and $1 into the file $4 (sources
# unpacked under $5), in this checkout's target directory. The old sources leave their
# artifacts there under the same names, newer than the current sources, so cargo would take
# them as fresh: the workspace's own crates are cleaned afterwards, to be rebuilt.
build_old() { # $1 = base, $2 = package, $3 = binary, $4 = output file, $5 = scratch dir
    mkdir -p "$5"
    git archive "$(git merge-base HEAD "$1")" | tar -x -C "$5"
    (cd "$5" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --quiet -p "$2" --bin "$3")
    cp "$B/$3" "$4"
    cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json,sys; print(" ".join("-p " + p["name"] for p in json.load(sys.stdin)["packages"]))' |
        xargs cargo clean --release --quiet
}
