#!/usr/bin/env python3
"""Build TUF repositories with python-tuf for cpantuf's interop tests.

    make_repos.py OUTDIR [--only NAME ...] [--list]

Writes one directory per scenario (see tests/interop/README.md for the exact
layout and the scenario.json contract):

    OUTDIR/<scenario>/metadata/      N.root.json..., timestamp.json,
                                     N.snapshot.json, N.targets.json,
                                     N.<delegated>.json
    OUTDIR/<scenario>/targets/       <dir>/<sha256hex>.<basename> and <dir>/<basename>
    OUTDIR/<scenario>/initial_root.json
    OUTDIR/<scenario>/scenario.json

Everything is made with python-tuf's Metadata API and securesystemslib's
CryptoSigner.  Keys are derived from fixed seeds, so key ids, ed25519
signatures and all file contents are the same on every run; ECDSA signatures
are randomised by the signing library, so ECDSA-signed files differ between
runs (their scenario.json does not).
"""

from __future__ import annotations

import argparse
import copy
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

try:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from securesystemslib.signer import CryptoSigner, Signature
    from tuf.api.metadata import (
        DelegatedRole,
        Delegations,
        Metadata,
        MetaFile,
        Role,
        Root,
        Snapshot,
        TargetFile,
        Targets,
        Timestamp,
    )
    from tuf.api.serialization.json import JSONSerializer
except ImportError as e:  # pragma: no cover - environment problem
    sys.exit(
        f"make_repos.py: cannot import python-tuf ({e}); "
        "run scripts/setup-test-deps.sh and use the venv's python"
    )

# Far-future expiry for everything that is not meant to be expired.
FAR_FUTURE = datetime(2099, 12, 31, 0, 0, 0, tzinfo=timezone.utc)
LONG_AGO = datetime(2001, 1, 1, 0, 0, 0, tzinfo=timezone.utc)
TOP = ("root", "timestamp", "snapshot", "targets")

# ---------------------------------------------------------------------------
# Deterministic keys
# ---------------------------------------------------------------------------
_P256_ORDER = int(
    "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16
)


def make_key(scenario: str, name: str, kind: str) -> CryptoSigner:
    """A signer whose private key is derived from (scenario, name)."""
    seed = hashlib.sha256(f"cpantuf-interop/{scenario}/{name}".encode()).digest()
    if kind == "ed25519":
        return CryptoSigner(Ed25519PrivateKey.from_private_bytes(seed))
    if kind == "ecdsa":
        scalar = int.from_bytes(seed, "big") % (_P256_ORDER - 1) + 1
        return CryptoSigner(ec.derive_private_key(scalar, ec.SECP256R1()))
    raise ValueError(f"unknown key kind {kind}")


# ---------------------------------------------------------------------------
# Synthetic CPAN-like target contents (deterministic)
# ---------------------------------------------------------------------------
def _tar_gz(dist: str, extra: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        files = {
            f"{dist}/README": f"{dist}: synthetic distribution for cpantuf interop tests.\n{extra}",
            f"{dist}/META.json": json.dumps({"name": dist.rsplit("-", 1)[0], "version": dist.rsplit("-", 1)[-1]}) + "\n",
        }
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


def content_for(path: str, variant: str = "") -> bytes:
    """Small, deterministic, plausible contents for a CPAN-like path."""
    base = path.rsplit("/", 1)[-1]
    if base == "02packages.details.txt.gz":
        text = (
            "File:         02packages.details.txt\n"
            "Description:  Package names found in directory $CPAN/authors/id/\n"
            "Columns:      package name, version, path\n"
            "Line-Count:   2\n"
            "Written-By:   cpantuf interop make_repos.py\n"
            "\n"
            "Moo                               2.005005  H/HA/HAARG/Moo-2.005005.tar.gz\n"
            "Moose                             2.2207  E/ET/ETHER/Moose-2.2207.tar.gz\n"
            f"{variant}"
        )
        return gzip.compress(text.encode(), mtime=0)
    if base.endswith(".tar.gz"):
        return _tar_gz(base[: -len(".tar.gz")], variant)
    return f"{path}: synthetic file for cpantuf interop tests.\n{variant}".encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------
# Repository builder
# ---------------------------------------------------------------------------
Hook = Callable[[bytes], bytes]


@dataclass
class TargetsRole:
    name: str
    signed: Targets
    signers: list[CryptoSigner]
    # replace the signatures after signing (e.g. mislabelled signatures)
    resign: Callable[[Metadata], None] | None = None


@dataclass
class Scenario:
    name: str
    description: str
    roots: list[tuple[Root, list[CryptoSigner]]] = field(default_factory=list)
    targets_roles: list[TargetsRole] = field(default_factory=list)
    snapshot_signers: list[CryptoSigner] = field(default_factory=list)
    timestamp_signers: list[CryptoSigner] = field(default_factory=list)
    # path -> published bytes (what the repository serves)
    files: dict[str, bytes] = field(default_factory=dict)
    # extra published files: (path, bytes) served under the hash-prefixed
    # name only (e.g. a second, different version listed by another role)
    extra_published: list[tuple[str, bytes]] = field(default_factory=list)
    downloads: list[dict] = field(default_factory=list)
    refresh_expect: str = "ok"
    refresh_why: str | None = None
    # prefix of the reason python-tuf's ngclient gives (as printed by
    # ngclient_check.py); informational for other clients
    refresh_refusal: str | None = None
    meta_hashes: bool = True
    timestamp_expires: datetime = FAR_FUTURE
    snapshot_version: int = 1
    timestamp_version: int = 1
    # post-signing byte mutation of a metadata file, by role name
    hooks: dict[str, Hook] = field(default_factory=dict)
    # replace a targets-role file AFTER snapshot recorded its length/hash
    # (the published file then differs from what snapshot vouches for)
    after_meta_hooks: dict[str, Hook] = field(default_factory=dict)
    # post-signing mutation of a published target file, by target path
    target_hooks: dict[str, Hook] = field(default_factory=dict)

    # -- helpers for scenario definitions ---------------------------------
    def ok(self, target: str) -> None:
        self.downloads.append({"target": target, "expect": "ok"})

    def fail(self, target: str, why: str, refusal: str | None = None) -> None:
        d = {"target": target, "expect": "fail", "why": why}
        if refusal:
            d["ngclient_refusal"] = refusal
        self.downloads.append(d)


def serialize(md: Metadata) -> bytes:
    # Pretty-printed (not canonical) on purpose: clients must verify the
    # signature over the canonical form of "signed", not the file bytes.
    return md.to_bytes(JSONSerializer(compact=False)) + b"\n"


def metafile(version: int, data: bytes, with_hashes: bool) -> MetaFile:
    if with_hashes:
        return MetaFile(version=version, length=len(data), hashes={"sha256": sha256_hex(data)})
    return MetaFile(version=version)


def add_target(t: Targets, sc: Scenario, path: str, data: bytes | None = None) -> bytes:
    """List `path` in targets role `t` and publish it (unless already published)."""
    if data is None:
        data = sc.files.get(path) or content_for(path)
    t.targets[path] = TargetFile.from_data(path, data, ["sha256"])
    if path not in sc.files:
        sc.files[path] = data
    elif sc.files[path] != data:
        sc.extra_published.append((path, data))
    return data


def write_scenario(sc: Scenario, outdir: str) -> None:
    base = os.path.join(outdir, sc.name)
    if os.path.exists(base):
        shutil.rmtree(base)
    mdir = os.path.join(base, "metadata")
    tdir = os.path.join(base, "targets")
    os.makedirs(mdir)
    os.makedirs(tdir)

    def put(path: str, data: bytes) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    def finish(role: str, md: Metadata) -> bytes:
        data = serialize(md)
        hook = sc.hooks.get(role)
        return hook(data) if hook else data

    # Root chain
    assert sc.roots, "scenario without root"
    for root, signers in sc.roots:
        md = Metadata(root)
        for s in signers:
            md.sign(s, append=True)
        data = finish(f"root.v{root.version}", md)
        put(os.path.join(mdir, f"{root.version}.root.json"), data)
        if root.version == 1:
            put(os.path.join(base, "initial_root.json"), data)

    # Targets roles (top-level + delegated)
    snapshot = Snapshot(version=sc.snapshot_version, expires=FAR_FUTURE, meta={})
    for tr in sc.targets_roles:
        md = Metadata(tr.signed)
        for s in tr.signers:
            md.sign(s, append=True)
        if tr.resign:
            tr.resign(md)
        data = finish(tr.name, md)
        snapshot.meta[f"{tr.name}.json"] = metafile(tr.signed.version, data, sc.meta_hashes)
        if tr.name in sc.after_meta_hooks:
            data = sc.after_meta_hooks[tr.name](data)
        put(os.path.join(mdir, f"{tr.signed.version}.{tr.name}.json"), data)

    md = Metadata(snapshot)
    for s in sc.snapshot_signers:
        md.sign(s, append=True)
    snap_bytes = finish("snapshot", md)
    put(os.path.join(mdir, f"{snapshot.version}.snapshot.json"), snap_bytes)

    # The timestamp always carries length+hashes of the *published* snapshot
    # bytes (after any hook), so a hooked snapshot fails on its own defect,
    # not on a hash mismatch.
    ts = Timestamp(
        version=sc.timestamp_version,
        expires=sc.timestamp_expires,
        snapshot_meta=metafile(snapshot.version, snap_bytes, True),
    )
    md = Metadata(ts)
    for s in sc.timestamp_signers:
        md.sign(s, append=True)
    put(os.path.join(mdir, "timestamp.json"), finish("timestamp", md))

    # Targets: <dir>/<sha256>.<basename> (consistent snapshot) + plain name.
    def publish(path: str, data: bytes, plain: bool) -> None:
        digest = sha256_hex(data)  # name is the hash of the *signed* bytes
        published = sc.target_hooks.get(path, lambda b: b)(data)
        d, _, b = path.rpartition("/")
        put(os.path.join(tdir, d, f"{digest}.{b}"), published)
        if plain:
            put(os.path.join(tdir, d, b), published)

    for path, data in sc.files.items():
        publish(path, data, True)
    for path, data in sc.extra_published:
        publish(path, data, False)

    # scenario.json
    downloads = []
    for d in sc.downloads:
        d = dict(d)
        if d["expect"] == "ok":
            d["sha256"] = sha256_hex(sc.files[d["target"]])
        elif sc.refresh_expect == "fail":
            d.setdefault("ngclient_refusal", sc.refresh_refusal)
        if d["expect"] == "fail":
            assert d.get("ngclient_refusal"), f"{sc.name}: {d['target']}: fail without ngclient_refusal"
        downloads.append(d)
    doc = {
        "name": sc.name,
        "description": sc.description,
        "refresh_expect": sc.refresh_expect,
    }
    if sc.refresh_why:
        doc["refresh_why"] = sc.refresh_why
    if sc.refresh_refusal:
        doc["refresh_ngclient_refusal"] = sc.refresh_refusal
    if sc.refresh_expect == "ok":
        doc["trusted_root_version"] = max(r.version for r, _ in sc.roots)
    doc["downloads"] = downloads
    put(os.path.join(base, "scenario.json"), (json.dumps(doc, indent=2) + "\n").encode())


# ---------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------
MOO = "authors/id/H/HA/HAARG/Moo-2.005005.tar.gz"
MOOSE = "authors/id/E/ET/ETHER/Moose-2.2207.tar.gz"
PACKAGES = "modules/02packages.details.txt.gz"
MIRRORED_BY = "MIRRORED.BY"
CPANM = "authors/id/M/MI/MIYAGAWA/App-cpanminus-1.7047.tar.gz"
PLACK = "authors/id/M/MI/MIYAGAWA/Plack-1.0050.tar.gz"
NOT_LISTED = "authors/id/N/NO/NOBODY/Not-Listed-0.01.tar.gz"
NOT_FOUND = "TargetNotFound"


def make_root(
    version: int,
    role_keys: dict[str, list[CryptoSigner]],
    thresholds: dict[str, int] | None = None,
) -> Root:
    thresholds = thresholds or {}
    root = Root(
        version=version,
        expires=FAR_FUTURE,
        consistent_snapshot=True,
        roles={r: Role([], thresholds.get(r, 1)) for r in TOP},
    )
    for role in TOP:
        for s in role_keys[role]:
            root.add_key(s.public_key, role)
    return root


def standard(name: str, description: str, kind: str = "ed25519") -> tuple[Scenario, dict[str, CryptoSigner], Targets]:
    """Scenario with one key per top-level role, root v1, empty targets v1."""
    keys = {r: make_key(name, r, kind) for r in TOP}
    sc = Scenario(name, description)
    sc.roots.append((make_root(1, {r: [keys[r]] for r in TOP}), [keys["root"]]))
    targets = Targets(version=1, expires=FAR_FUTURE)
    sc.targets_roles.append(TargetsRole("targets", targets, [keys["targets"]]))
    sc.snapshot_signers = [keys["snapshot"]]
    sc.timestamp_signers = [keys["timestamp"]]
    return sc, keys, targets


def delegate(
    parent: Targets,
    sc: Scenario,
    name: str,
    key: CryptoSigner | list[CryptoSigner],
    *,
    paths: list[str] | None = None,
    path_hash_prefixes: list[str] | None = None,
    terminating: bool = False,
    threshold: int = 1,
    signers: list[CryptoSigner] | None = None,
) -> Targets:
    """Delegate from `parent` to a new role `name` trusting `key` (one or a
    list) with `threshold`; the child is signed by `signers` (default: all
    its keys). Returns the child's Targets."""
    keys = key if isinstance(key, list) else [key]
    if parent.delegations is None:
        parent.delegations = Delegations(keys={}, roles={})
    role = DelegatedRole(name, [], threshold, terminating, paths, path_hash_prefixes)
    parent.delegations.roles[name] = role
    for k in keys:
        parent.add_key(k.public_key, name)
    child = Targets(version=1, expires=FAR_FUTURE)
    sc.targets_roles.append(TargetsRole(name, child, signers if signers is not None else keys))
    return child


def flip_hex_char(s: str, index: int = 10) -> str:
    c = s[index]
    return s[:index] + ("0" if c != "0" else "1") + s[index + 1 :]


# ---------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------
def sc_ed25519_basic() -> Scenario:
    sc, keys, t = standard(
        "ed25519_basic",
        "All top-level roles with one ed25519 key each; top-level targets lists a "
        "file at the repository root and CPAN-like files in sub-directories. "
        "A path listed nowhere must not be downloadable.",
    )
    for p in (MIRRORED_BY, PACKAGES, MOO):
        add_target(t, sc, p)
        sc.ok(p)
    sc.fail(NOT_LISTED, "target is not listed in any targets metadata", NOT_FOUND)
    return sc


def sc_ecdsa_keys() -> Scenario:
    sc, keys, t = standard(
        "ecdsa_keys",
        "All top-level roles with one ECDSA P-256 key each (keytype 'ecdsa', scheme "
        "'ecdsa-sha2-nistp256', PEM public keys). Snapshot's meta entries carry only "
        "versions (no length/hashes).",
        kind="ecdsa",
    )
    sc.meta_hashes = False
    for p in (PACKAGES, MOO):
        add_target(t, sc, p)
        sc.ok(p)
    return sc


def sc_mixed_key_types_threshold() -> Scenario:
    name = "mixed_key_types_threshold"
    sc = Scenario(
        name,
        "Root has threshold 2 of 3 keys (ed25519, ecdsa, ed25519) and is signed by "
        "only the first two (one ed25519 + one ecdsa); targets has threshold 2 of 2 "
        "(ed25519 + ecdsa); snapshot uses ecdsa, timestamp ed25519.",
    )
    r1 = make_key(name, "root-1", "ed25519")
    r2 = make_key(name, "root-2", "ecdsa")
    r3 = make_key(name, "root-3", "ed25519")
    t1 = make_key(name, "targets-1", "ed25519")
    t2 = make_key(name, "targets-2", "ecdsa")
    snap = make_key(name, "snapshot", "ecdsa")
    ts = make_key(name, "timestamp", "ed25519")
    root = make_root(
        1,
        {"root": [r1, r2, r3], "targets": [t1, t2], "snapshot": [snap], "timestamp": [ts]},
        {"root": 2, "targets": 2},
    )
    sc.roots.append((root, [r1, r2]))
    t = Targets(version=1, expires=FAR_FUTURE)
    sc.targets_roles.append(TargetsRole("targets", t, [t1, t2]))
    sc.snapshot_signers = [snap]
    sc.timestamp_signers = [ts]
    for p in (PACKAGES, MOO):
        add_target(t, sc, p)
        sc.ok(p)
    return sc


def sc_nested_delegations() -> Scenario:
    sc, keys, t = standard(
        "nested_delegations",
        "targets -> 'authors' (paths authors/id/*/*/*/*) -> 'ether' (paths "
        "authors/id/E/ET/ETHER/*, ecdsa key). Moose is listed only by 'ether', "
        "Moo only by 'authors', 02packages only by top-level targets.",
    )
    add_target(t, sc, PACKAGES)
    a = delegate(t, sc, "authors", make_key(sc.name, "authors", "ed25519"),
                 paths=["authors/id/*/*/*/*"])
    add_target(a, sc, MOO)
    b = delegate(a, sc, "ether", make_key(sc.name, "ether", "ecdsa"),
                 paths=["authors/id/E/ET/ETHER/*"])
    add_target(b, sc, MOOSE)
    sc.ok(MOOSE)
    sc.ok(MOO)
    sc.ok(PACKAGES)
    sc.fail("authors/id/E/ET/ETHER/Not-Listed-0.01.tar.gz",
            "delegated to 'ether' but listed by no role", NOT_FOUND)
    return sc


def _two_delegations(name: str, description: str, terminating: bool) -> Scenario:
    sc, keys, t = standard(name, description)
    pattern = ["authors/id/M/MI/MIYAGAWA/*"]
    a = delegate(t, sc, "miyagawa-primary", make_key(name, "primary", "ed25519"),
                 paths=pattern, terminating=terminating)
    b = delegate(t, sc, "miyagawa-backup", make_key(name, "backup", "ed25519"),
                 paths=pattern)
    add_target(a, sc, CPANM)
    # The later role lists the same path with DIFFERENT contents: the client
    # must take the first role's entry (pre-order, delegation order).
    add_target(b, sc, CPANM, content_for(CPANM, "backup copy that must never be chosen\n"))
    add_target(b, sc, PLACK)
    sc.ok(CPANM)
    return sc


def sc_terminating_delegation() -> Scenario:
    sc = _two_delegations(
        "terminating_delegation",
        "targets delegates authors/id/M/MI/MIYAGAWA/* first to 'miyagawa-primary' "
        "(terminating) and then to 'miyagawa-backup'. Plack is listed only by the "
        "backup role, so it must NOT be found: the terminating role ends the search. "
        "App-cpanminus is listed by both with different contents; the primary's wins.",
        terminating=True,
    )
    sc.fail(PLACK, "only 'miyagawa-backup' lists it, and it comes after the terminating "
                   "'miyagawa-primary' whose paths match, so the search must stop there", NOT_FOUND)
    return sc


def sc_non_terminating_delegation_fallthrough() -> Scenario:
    sc = _two_delegations(
        "non_terminating_delegation_fallthrough",
        "Same as terminating_delegation but 'miyagawa-primary' is NOT terminating: "
        "Plack must be found in 'miyagawa-backup'. App-cpanminus is listed by both "
        "with different contents; the primary's wins.",
        terminating=False,
    )
    sc.ok(PLACK)
    return sc


def sc_hashed_bins() -> Scenario:
    sc, keys, t = standard(
        "hashed_bins",
        "targets delegates to 8 hash bins 'bin-0'..'bin-7' with path_hash_prefixes "
        "(bin-i gets the two one-hex-digit prefixes 2i and 2i+1 of sha256(target path)); "
        "all bins share one ed25519 key. One target is listed in a bin its path hash "
        "does not belong to and must not be found.",
    )
    bin_key = make_key(sc.name, "bins", "ed25519")
    bins = []
    for i in range(8):
        prefixes = [format(2 * i, "x"), format(2 * i + 1, "x")]
        bins.append(delegate(t, sc, f"bin-{i}", bin_key, path_hash_prefixes=prefixes))

    def bin_of(path: str) -> int:
        return int(hashlib.sha256(path.encode()).hexdigest()[0], 16) // 2

    paths = [
        PACKAGES,
        MOO,
        MOOSE,
        CPANM,
        PLACK,
        "authors/id/D/DA/DAGOLDEN/Path-Tiny-0.144.tar.gz",
        "authors/id/R/RJ/RJBS/Sub-Exporter-0.991.tar.gz",
        "authors/id/T/TO/TODDR/IO-Tty-1.20.tar.gz",
    ]
    for p in paths:
        add_target(bins[bin_of(p)], sc, p)
        sc.ok(p)
    misplaced = "authors/id/X/XX/XMISPLACED/Misplaced-1.0.tar.gz"
    wrong_bin = (bin_of(misplaced) + 1) % 8
    add_target(bins[wrong_bin], sc, misplaced)
    sc.fail(misplaced, f"listed only by bin-{wrong_bin}, whose path_hash_prefixes do not "
                       f"cover the path's hash (it belongs to bin-{bin_of(misplaced)})", NOT_FOUND)
    sc.fail(NOT_LISTED, "its bin exists but does not list it", NOT_FOUND)
    return sc


def sc_root_rotation() -> Scenario:
    name = "root_rotation"
    sc = Scenario(
        name,
        "Root v1 -> v2 -> v3; each version replaces the root key and the timestamp "
        "key, and each new root is signed by the previous and the new root key. The "
        "published timestamp is signed only by the v3 timestamp key, so a client "
        "initialised with v1 must walk to v3 before it can refresh.",
    )
    snap = make_key(name, "snapshot", "ed25519")
    tgt = make_key(name, "targets", "ed25519")
    prev_root_key = None
    ts_key = None
    for v in (1, 2, 3):
        root_key = make_key(name, f"root-v{v}", "ed25519" if v != 2 else "ecdsa")
        ts_key = make_key(name, f"timestamp-v{v}", "ed25519")
        root = make_root(v, {"root": [root_key], "timestamp": [ts_key],
                             "snapshot": [snap], "targets": [tgt]})
        signers = [root_key] if prev_root_key is None else [prev_root_key, root_key]
        sc.roots.append((root, signers))
        prev_root_key = root_key
    t = Targets(version=1, expires=FAR_FUTURE)
    sc.targets_roles.append(TargetsRole("targets", t, [tgt]))
    sc.snapshot_signers = [snap]
    sc.timestamp_signers = [ts_key]
    for p in (PACKAGES, MOO):
        add_target(t, sc, p)
        sc.ok(p)
    return sc


# -- tampered / must-fail variants ------------------------------------------
def sc_tampered_target() -> Scenario:
    sc, keys, t = standard(
        "tampered_target",
        "Moo's published bytes were changed after signing (same length, one byte "
        "flipped, under both the hash-prefixed and the plain name). 02packages is "
        "untouched and must still download.",
    )
    add_target(t, sc, PACKAGES)
    add_target(t, sc, MOO)

    def flip(b: bytes) -> bytes:
        i = len(b) // 2
        return b[:i] + bytes([b[i] ^ 0x01]) + b[i + 1 :]

    sc.target_hooks[MOO] = flip
    sc.ok(PACKAGES)
    sc.fail(MOO, "published bytes do not match the sha256 in targets metadata",
            "LengthOrHashMismatchError: Observed hash")
    return sc


def _sig_hook() -> Hook:
    """Alter one hex digit of every signature in a metadata file."""
    def hook(data: bytes) -> bytes:
        doc = json.loads(data)
        for sig in doc["signatures"]:
            sig["sig"] = flip_hex_char(sig["sig"])
        return (json.dumps(doc, indent=1) + "\n").encode()
    return hook


def sc_bad_snapshot_signature() -> Scenario:
    sc, keys, t = standard(
        "bad_snapshot_signature",
        "One hex digit of the snapshot signature was changed after signing; the "
        "timestamp's length/hash for snapshot match the altered file, so only the "
        "signature is wrong. Refresh must fail.",
    )
    for p in (PACKAGES, MOO):
        add_target(t, sc, p)
        sc.fail(p, "refresh must fail: snapshot signature does not verify")
    sc.hooks["snapshot"] = _sig_hook()
    sc.refresh_expect = "fail"
    sc.refresh_why = "snapshot signature does not verify with the snapshot key from root"
    sc.refresh_refusal = "UnsignedMetadataError: snapshot was signed by 0/1 keys"
    return sc


def sc_targets_signed_by_wrong_key() -> Scenario:
    sc, keys, t = standard(
        "targets_signed_by_wrong_key",
        "targets metadata is signed by a key that is not in root, and the signature "
        "is labelled with the key id of the real targets key (so only actually "
        "verifying the signature catches it). Refresh must fail.",
    )
    for p in (PACKAGES, MOO):
        add_target(t, sc, p)
        sc.fail(p, "refresh must fail: targets is not signed by the targets key")
    wrong = make_key(sc.name, "attacker", "ed25519")
    good_keyid = keys["targets"].public_key.keyid

    def resign(md: Metadata) -> None:
        sig = wrong.sign(md.signed_bytes)
        md.signatures = {good_keyid: Signature(good_keyid, sig.signature)}

    sc.targets_roles[0].resign = resign
    sc.refresh_expect = "fail"
    sc.refresh_why = "targets signature does not verify with the targets key from root"
    sc.refresh_refusal = "UnsignedMetadataError: targets was signed by 0/1 keys"
    return sc


def sc_delegated_role_signs_outside_its_paths() -> Scenario:
    sc, keys, t = standard(
        "delegated_role_signs_outside_its_paths",
        "targets delegates authors/id/H/HA/HAARG/* to 'haarg'. 'haarg' (validly "
        "signed) also lists Moose (ETHER) and 02packages, outside its delegated "
        "paths; those must not be found. Moo (inside its paths) must download.",
    )
    h = delegate(t, sc, "haarg", make_key(sc.name, "haarg", "ed25519"),
                 paths=["authors/id/H/HA/HAARG/*"])
    add_target(h, sc, MOO)
    add_target(h, sc, MOOSE)
    add_target(h, sc, PACKAGES)
    sc.ok(MOO)
    sc.fail(MOOSE, "listed only by 'haarg', which is not trusted for authors/id/E/ET/ETHER/*", NOT_FOUND)
    sc.fail(PACKAGES, "listed only by 'haarg', which is not trusted for modules/*", NOT_FOUND)
    return sc


def sc_expired_timestamp() -> Scenario:
    sc, keys, t = standard(
        "expired_timestamp",
        f"timestamp.json expired at {LONG_AGO.isoformat()}; everything else is valid. "
        "Refresh must fail.",
    )
    for p in (PACKAGES, MOO):
        add_target(t, sc, p)
        sc.fail(p, "refresh must fail: timestamp metadata is expired")
    sc.timestamp_expires = LONG_AGO
    sc.refresh_expect = "fail"
    sc.refresh_why = "timestamp metadata is expired"
    sc.refresh_refusal = "ExpiredMetadataError: timestamp.json is expired"
    return sc


def sc_rollback_of_root_rotation_missing_old_signature() -> Scenario:
    name = "rollback_of_root_rotation_missing_old_signature"
    sc, keys, t = standard(
        name,
        "2.root.json replaces the root key but is signed ONLY by the new root key "
        "(not by the v1 root key the client trusts). All other roles keep their keys, "
        "so a client that skipped the old-root check would refresh fine. Refresh must fail.",
    )
    new_root = make_key(name, "root-v2", "ed25519")
    root2 = make_root(2, {"root": [new_root], "timestamp": [keys["timestamp"]],
                          "snapshot": [keys["snapshot"]], "targets": [keys["targets"]]})
    sc.roots.append((root2, [new_root]))
    for p in (PACKAGES, MOO):
        add_target(t, sc, p)
        sc.fail(p, "refresh must fail: 2.root.json is not signed by the trusted v1 root key")
    sc.refresh_expect = "fail"
    sc.refresh_why = "2.root.json lacks a threshold of signatures from the v1 root keys"
    sc.refresh_refusal = "UnsignedMetadataError: root was signed by 0/1 keys"
    return sc


def sc_length_mismatch_in_targets() -> Scenario:
    sc, keys, t = standard(
        "length_mismatch_in_targets",
        "targets lists Moo with length one byte MORE than the file and 02packages with "
        "length one byte LESS (hashes are correct). Both must be refused; "
        "MIRRORED.BY has the right length and must download.",
    )
    add_target(t, sc, MIRRORED_BY)
    for p, delta in ((MOO, +1), (PACKAGES, -1)):
        add_target(t, sc, p)
        tf = t.targets[p]
        t.targets[p] = TargetFile(tf.length + delta, dict(tf.hashes), p)
    sc.ok(MIRRORED_BY)
    sc.fail(MOO, "metadata length is one byte more than the file",
            "LengthOrHashMismatchError: Observed length")
    sc.fail(PACKAGES, "metadata length is one byte less than the file",
            "DownloadLengthMismatchError")
    return sc


def sc_delegated_threshold_not_met() -> Scenario:
    sc, keys, t = standard(
        "delegated_threshold_not_met",
        "targets delegates authors/id/E/ET/ETHER/* to 'ether' with threshold 2 of 2 "
        "keys (ed25519 + ecdsa), but 1.ether.json carries only the ed25519 key's "
        "signature. Moose (listed only by 'ether') must fail; 02packages (top-level) "
        "must download.",
    )
    add_target(t, sc, PACKAGES)
    k1 = make_key(sc.name, "ether-1", "ed25519")
    k2 = make_key(sc.name, "ether-2", "ecdsa")
    e = delegate(t, sc, "ether", [k1, k2], paths=["authors/id/E/ET/ETHER/*"],
                 threshold=2, signers=[k1])
    add_target(e, sc, MOOSE)
    sc.ok(PACKAGES)
    sc.fail(MOOSE, "'ether' metadata has 1 of the 2 required signatures",
            "UnsignedMetadataError: ether was signed by 1/2 keys")
    return sc


def sc_snapshot_hash_mismatch_for_targets() -> Scenario:
    sc, keys, t = standard(
        "snapshot_hash_mismatch_for_targets",
        "The published 1.targets.json is validly signed by the targets key but is "
        "not the file snapshot vouches for: snapshot's length/sha256 for targets.json "
        "describe a different (also validly signed) targets file of the same length "
        "and version, which points Moo at other bytes. Refresh must fail.",
    )
    for p in (PACKAGES, MOO):
        add_target(t, sc, p)
        sc.fail(p, "refresh must fail: targets.json does not match snapshot's length/hash")
    # What gets published: the same role and version, validly signed, but
    # pointing Moo at different bytes of the same length (published too, so a
    # client that accepted the substituted file would deliver them). Same
    # file length, so only the hash in snapshot can catch the substitution.
    evil = bytearray(sc.files[MOO])
    evil[len(evil) // 2] ^= 0x01
    swapped = copy.deepcopy(t)
    swapped.targets[MOO] = TargetFile.from_data(MOO, bytes(evil), ["sha256"])
    md = Metadata(swapped)
    md.sign(keys["targets"])
    swapped_bytes = serialize(md)
    sc.extra_published.append((MOO, bytes(evil)))

    def swap(data: bytes) -> bytes:
        assert len(data) == len(swapped_bytes), "substituted targets.json must keep the length"
        return swapped_bytes

    sc.after_meta_hooks["targets"] = swap
    sc.refresh_expect = "fail"
    sc.refresh_why = "targets.json's length/sha256 differ from those in snapshot"
    sc.refresh_refusal = "LengthOrHashMismatchError: Observed hash"
    return sc


SCENARIOS: list[Callable[[], Scenario]] = [
    sc_ed25519_basic,
    sc_ecdsa_keys,
    sc_mixed_key_types_threshold,
    sc_nested_delegations,
    sc_terminating_delegation,
    sc_non_terminating_delegation_fallthrough,
    sc_hashed_bins,
    sc_root_rotation,
    sc_tampered_target,
    sc_bad_snapshot_signature,
    sc_targets_signed_by_wrong_key,
    sc_delegated_role_signs_outside_its_paths,
    sc_expired_timestamp,
    sc_rollback_of_root_rotation_missing_old_signature,
    sc_length_mismatch_in_targets,
    sc_delegated_threshold_not_met,
    sc_snapshot_hash_mismatch_for_targets,
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", nargs="?", help="output directory (created if missing)")
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="build only this scenario (repeatable)")
    ap.add_argument("--list", action="store_true", help="list scenario names and exit")
    args = ap.parse_args()

    built = [f() for f in SCENARIOS]
    names = [s.name for s in built]
    assert len(set(names)) == len(names), "duplicate scenario names"
    if args.list:
        print("\n".join(names))
        return 0
    if not args.outdir:
        ap.error("OUTDIR is required")
    unknown = set(args.only) - set(names)
    if unknown:
        ap.error(f"unknown scenario(s): {', '.join(sorted(unknown))}; known: {', '.join(names)}")
    os.makedirs(args.outdir, exist_ok=True)
    for sc in built:
        if args.only and sc.name not in args.only:
            continue
        write_scenario(sc, args.outdir)
        print(f"wrote {sc.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
