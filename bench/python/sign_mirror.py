#!/usr/bin/env python3
"""python-tuf reference for the cpantuf-sign benchmark.

Builds the same repository shape as `cpantuf-sign publish` over a CPAN
mirror directory, with python-tuf's Metadata API (tuf 7): one role per
author (targets hashed with sha256), one role per X/XY prefix delegating to
its authors (one path pattern per depth), an `index` role, top-level
targets, snapshot (versions only) and timestamp; consistent-snapshot file
names. Then re-signs one upload (the author role, snapshot, timestamp) the
way an incremental signer would: load, modify, sign, write.

    sign_mirror.py MIRROR OUTDIR [--upload-author ID]

Prints one JSON object with the timings (seconds) and peak RSS (KiB).
"""
import argparse
import hashlib
import json
import os
import resource
import sys
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (DelegatedRole, Delegations, Key, Metadata, MetaFile,
                              Root, Snapshot, TargetFile, Targets, Timestamp)
from tuf.api.serialization.json import JSONSerializer

SER = JSONSerializer(compact=True)


def signer():
    return CryptoSigner(Ed25519PrivateKey.generate())


def is_twin(name):
    return len(name) > 65 and name[64] == "." and all(c in "0123456789abcdef" for c in name[:64])


def scan(mirror):
    out = []
    for top in ("modules", "authors"):
        base = os.path.join(mirror, top)
        for dirpath, _dirs, files in os.walk(base):
            for f in files:
                if not is_twin(f):
                    out.append(os.path.relpath(os.path.join(dirpath, f), mirror))
    return out


def owner(path):
    segs = path.split("/")
    if len(segs) == 2:
        return "index", 0
    if segs[:2] == ["authors", "id"] and len(segs) > 5:
        rest = segs[5:]
        if len(rest) == 1 and (rest[0] == "CHECKSUMS" or rest[0].endswith((".meta", ".readme"))):
            return "index", 0
        return segs[4], len(rest)
    raise ValueError(path)


def patterns(base, depth):
    return [base + "/*" * d for d in range(1, depth + 1)]


def write(md, role, outdir):
    name = "timestamp.json" if role == "timestamp" else f"{md.signed.version}.{role}.json"
    data = md.to_bytes(SER)
    with open(os.path.join(outdir, name), "wb") as f:
        f.write(data)
    return data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mirror")
    ap.add_argument("outdir")
    ap.add_argument("--upload-author")
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    exp_long = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=365)
    exp = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)
    t = {}
    t0 = time.perf_counter()
    paths = scan(a.mirror)
    t["scan"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    by_role = defaultdict(list)
    depth = defaultdict(lambda: 1)
    for p in paths:
        tf = TargetFile.from_file(p, os.path.join(a.mirror, p), ["sha256"])
        role, d = owner(p)
        by_role[role].append(tf)
        if role != "index":
            depth[role] = max(depth[role], d)
    t["hash"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    keys = {n: signer() for n in ("root", "targets", "snapshot", "timestamp", "index", "registry", "authors")}
    authors_key = keys["authors"].public_key
    registry_pub = keys["registry"].public_key
    index_pub = keys["index"].public_key
    versions = {}
    prefixes = defaultdict(list)
    for role, files in by_role.items():
        if role == "index":
            continue
        prefixes[(role[0], role[:2])].append(role)
        md = Metadata(Targets(version=1, expires=exp, targets={f.path: f for f in files}))
        md.sign(keys["authors"])
        write(md, f"author-{role}", a.outdir)
        versions[f"author-{role}.json"] = 1
    t["author_roles"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    for (l, p), authors in sorted(prefixes.items()):
        roles = {}
        for au in sorted(authors):
            roles[f"author-{au}"] = DelegatedRole(
                f"author-{au}", [authors_key.keyid], 1, True,
                patterns(f"authors/id/{l}/{p}/{au}", depth[au]))
        dl = Delegations({authors_key.keyid: authors_key}, roles=roles)
        md = Metadata(Targets(version=1, expires=exp, delegations=dl))
        md.sign(keys["registry"])
        write(md, f"prefix-{l}-{p}", a.outdir)
        versions[f"prefix-{l}-{p}.json"] = 1
    md = Metadata(Targets(version=1, expires=exp, targets={f.path: f for f in by_role["index"]}))
    md.sign(keys["index"])
    write(md, "index", a.outdir)
    versions["index.json"] = 1
    roles = {"index": DelegatedRole("index", [index_pub.keyid], 1, True,
                                    ["modules/*", "authors/*", "authors/id/*/*/*/CHECKSUMS",
                                     "authors/id/*/*/*/*.meta", "authors/id/*/*/*/*.readme"])}
    for (l, p) in sorted(prefixes):
        roles[f"prefix-{l}-{p}"] = DelegatedRole(
            f"prefix-{l}-{p}", [registry_pub.keyid], 1, True,
            patterns(f"authors/id/{l}/{p}/*", 8))
    dl = Delegations({index_pub.keyid: index_pub, registry_pub.keyid: registry_pub}, roles=roles)
    md = Metadata(Targets(version=1, expires=exp_long, delegations=dl))
    md.sign(keys["targets"])
    write(md, "targets", a.outdir)
    versions["targets.json"] = 1
    root = Root(expires=exp_long, consistent_snapshot=True)
    for n in ("root", "targets", "snapshot", "timestamp"):
        root.add_key(keys[n].public_key, n)
    md = Metadata(root)
    md.sign(keys["root"])
    write(md, "root", a.outdir)
    snap = Metadata(Snapshot(version=1, expires=exp, meta={k: MetaFile(v) for k, v in versions.items()}))
    snap.sign(keys["snapshot"])
    sbytes = write(snap, "snapshot", a.outdir)
    ts = Metadata(Timestamp(version=1, expires=exp, snapshot_meta=MetaFile(
        1, len(sbytes), {"sha256": hashlib.sha256(sbytes).hexdigest()})))
    ts.sign(keys["timestamp"])
    write(ts, "timestamp", a.outdir)
    t["prefix_top_snapshot"] = time.perf_counter() - t0
    t["full_total"] = sum(t.values())

    # One upload: load the author role and snapshot, add a target, bump
    # versions, sign, write.
    au = a.upload_author or sorted(k for k in by_role if k != "index")[0]
    t0 = time.perf_counter()
    role = f"author-{au}"
    md = Metadata[Targets].from_file(os.path.join(a.outdir, f"1.{role}.json"))
    path = f"authors/id/{au[0]}/{au[:2]}/{au}/Bench-Upload-1.0.tar.gz"
    md.signed.targets[path] = TargetFile(10, {"sha256": hashlib.sha256(b"x" * 10).hexdigest()}, path)
    md.signed.version += 1
    md.signatures.clear()
    md.sign(keys["authors"])
    write(md, role, a.outdir)
    snap = Metadata[Snapshot].from_file(os.path.join(a.outdir, "1.snapshot.json"))
    snap.signed.meta[f"{role}.json"] = MetaFile(md.signed.version)
    snap.signed.version += 1
    snap.signatures.clear()
    snap.sign(keys["snapshot"])
    sbytes = write(snap, "snapshot", a.outdir)
    ts.signed.snapshot_meta = MetaFile(snap.signed.version, len(sbytes),
                                       {"sha256": hashlib.sha256(sbytes).hexdigest()})
    ts.signed.version += 1
    ts.signatures.clear()
    ts.sign(keys["timestamp"])
    write(ts, "timestamp", a.outdir)
    t["one_upload"] = time.perf_counter() - t0
    t["files"] = len(paths)
    t["authors"] = len(by_role) - (1 if "index" in by_role else 0)
    t["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(t))


if __name__ == "__main__":
    sys.exit(main())
