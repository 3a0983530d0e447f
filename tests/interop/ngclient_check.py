#!/usr/bin/env python3
"""Refresh a TUF repository with python-tuf's ngclient and download targets.

    ngclient_check.py --metadata-url URL --targets-url URL --root FILE \\
        --target T --expect ok|fail [--target T --expect ok|fail ...] \\
        [--refresh-expect ok|fail] [--workdir DIR]

    ngclient_check.py --scenario OUTDIR/<name>/scenario.json --base-url URL [--workdir DIR]

    ngclient_check.py --serve DIR [serve_dir.py options]

Each --target is paired with the --expect that follows it (the i-th --target
with the i-th --expect).  With --scenario, the targets, expectations, expected
sha256 digests, refresh expectation, trusted root version and the expected
refusal reasons (ngclient_refusal, refresh_ngclient_refusal: prefixes of the
"<ExceptionClass>: <message>" text) come from scenario.json, and all of them
are checked; --root defaults to the initial_root.json beside it.
--base-url U means --metadata-url U/metadata/ --targets-url U/targets/.

Output (stdout), one line each, in this order:
    REFRESH OK trusted_root_version=<N>
  | REFRESH REFUSED: <ExceptionClass>: <message>
then for every target, in the order given:
    OK <target> sha256=<hex>
  | REFUSED <target>: <ExceptionClass>: <message>
then one UNEXPECTED line per outcome that differs from its expectation, and
the last line:
    ngclient_check: <k> of <n> outcomes as expected
Exit status: 0 iff every outcome (refresh, if an expectation was given, and
each target) matches its expectation; 1 if any does not; 2 for usage or
setup errors.  If refresh fails, every target is REFUSED with the refresh
error (no download is attempted).  A target that no trusted metadata lists is
REFUSED with class TargetNotFound.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def one_line(e: BaseException) -> str:
    msg = " ".join(str(e).split())
    return f"{type(e).__name__}: {msg or '(no message)'}"


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Check a TUF repository with python-tuf's ngclient.",
        epilog="See tests/interop/README.md for the output contract.",
    )
    ap.add_argument("--metadata-url")
    ap.add_argument("--targets-url")
    ap.add_argument("--base-url", help="shorthand: metadata at URL/metadata/, targets at URL/targets/")
    ap.add_argument("--root", help="trusted initial root metadata file")
    ap.add_argument("--target", action="append", default=[], help="target path (repeatable)")
    ap.add_argument("--expect", action="append", default=[], choices=["ok", "fail"],
                    help="expected outcome for the matching --target (repeatable)")
    ap.add_argument("--refresh-expect", choices=["ok", "fail"],
                    help="expected outcome of the top-level refresh")
    ap.add_argument("--scenario", help="scenario.json written by make_repos.py")
    ap.add_argument("--workdir", help="client state directory (must be empty or absent; "
                                      "default: a temporary directory, removed afterwards)")
    ap.add_argument("--verbose", action="store_true", help="python-tuf debug logging to stderr")
    args = ap.parse_args(argv)

    args.sha256 = [None] * len(args.target)
    args.refusal = [None] * len(args.target)
    args.root_version = None
    args.refresh_refusal = None
    if args.scenario:
        try:
            with open(args.scenario, encoding="utf-8") as f:
                sc = json.load(f)
        except (OSError, ValueError) as e:
            ap.error(f"cannot read scenario {args.scenario}: {e}")
        for d in sc["downloads"]:
            args.target.append(d["target"])
            args.expect.append(d["expect"])
            args.sha256.append(d.get("sha256"))
            args.refusal.append(d.get("ngclient_refusal"))
        if args.refresh_expect is None:
            args.refresh_expect = sc.get("refresh_expect")
        args.root_version = sc.get("trusted_root_version")
        args.refresh_refusal = sc.get("refresh_ngclient_refusal")
        if args.root is None:
            args.root = os.path.join(os.path.dirname(os.path.abspath(args.scenario)), "initial_root.json")

    if args.base_url:
        base = args.base_url.rstrip("/")
        args.metadata_url = args.metadata_url or f"{base}/metadata/"
        args.targets_url = args.targets_url or f"{base}/targets/"
    missing = [n for n in ("metadata_url", "targets_url", "root") if not getattr(args, n)]
    if missing:
        ap.error("missing " + ", ".join("--" + m.replace("_", "-") for m in missing))
    if len(args.target) != len(args.expect):
        ap.error(f"{len(args.target)} --target but {len(args.expect)} --expect: give one --expect per --target")
    if not args.target and args.refresh_expect is None:
        ap.error("nothing to check: give --target/--expect pairs or --refresh-expect")
    return args


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--serve":
        sys.dont_write_bytecode = True  # keep tests/interop free of __pycache__
        sys.path.insert(0, HERE)
        from serve_dir import serve_main  # noqa: PLC0415
        return serve_main(argv[1:])

    args = parse_args(argv)

    try:
        from tuf.ngclient import Updater  # noqa: PLC0415
    except ImportError as e:
        print(f"ngclient_check: cannot import python-tuf ({e}); run scripts/setup-test-deps.sh "
              "and use the venv's python", file=sys.stderr)
        return 2
    if args.verbose:
        import logging  # noqa: PLC0415
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)

    try:
        with open(args.root, "rb") as f:
            root_bytes = f.read()
    except OSError as e:
        print(f"ngclient_check: cannot read trusted root {args.root}: {e}", file=sys.stderr)
        return 2

    if args.workdir:
        workdir = args.workdir
        if os.path.exists(workdir) and os.listdir(workdir):
            print(f"ngclient_check: --workdir {workdir} is not empty", file=sys.stderr)
            return 2
        cleanup = False
    else:
        workdir = tempfile.mkdtemp(prefix="ngclient_check.")
        cleanup = True
    mdir = os.path.join(workdir, "metadata")
    tdir = os.path.join(workdir, "targets")
    os.makedirs(mdir, exist_ok=True)
    os.makedirs(tdir, exist_ok=True)

    unexpected: list[str] = []
    total = 0
    try:
        refresh_error: str | None = None
        try:
            updater = Updater(
                metadata_dir=mdir,
                metadata_base_url=args.metadata_url,
                target_dir=tdir,
                target_base_url=args.targets_url,
                bootstrap=root_bytes,
            )
            updater.refresh()
            with open(os.path.join(mdir, "root.json"), "rb") as f:
                trusted_version = json.load(f)["signed"]["version"]
            print(f"REFRESH OK trusted_root_version={trusted_version}")
        except Exception as e:  # noqa: BLE001 - every failure is a refusal
            refresh_error = one_line(e)
            trusted_version = None
            print(f"REFRESH REFUSED: {refresh_error}")

        if args.refresh_expect is not None:
            total += 1
            got = "ok" if refresh_error is None else "fail"
            if got != args.refresh_expect:
                unexpected.append(f"UNEXPECTED refresh: expected {args.refresh_expect}, got {got}")
            elif got == "ok" and args.root_version is not None and trusted_version != args.root_version:
                unexpected.append(f"UNEXPECTED refresh: expected trusted root version "
                                  f"{args.root_version}, got {trusted_version}")
            elif got == "fail" and args.refresh_refusal and not refresh_error.startswith(args.refresh_refusal):
                unexpected.append(f"UNEXPECTED refresh: expected refusal '{args.refresh_refusal}...', "
                                  f"got '{refresh_error}'")

        for i, (target, expect, want_sha, want_refusal) in enumerate(
            zip(args.target, args.expect, args.sha256, args.refusal)
        ):
            total += 1
            digest = None
            reason = None
            if refresh_error is not None:
                reason = refresh_error
                print(f"REFUSED {target}: {reason}")
            else:
                try:
                    info = updater.get_targetinfo(target)
                    if info is None:
                        raise TargetNotFound("no trusted targets metadata lists this path")
                    path = updater.download_target(info, filepath=os.path.join(tdir, f"{i}.download"))
                    with open(path, "rb") as f:
                        digest = hashlib.sha256(f.read()).hexdigest()
                    print(f"OK {target} sha256={digest}")
                except Exception as e:  # noqa: BLE001
                    reason = one_line(e)
                    print(f"REFUSED {target}: {reason}")
            got = "ok" if digest is not None else "fail"
            if got != expect:
                unexpected.append(f"UNEXPECTED {target}: expected {expect}, got {got}")
            elif digest is not None and want_sha is not None and digest != want_sha:
                unexpected.append(f"UNEXPECTED {target}: expected sha256={want_sha}, got sha256={digest}")
            elif reason is not None and want_refusal and not reason.startswith(want_refusal):
                unexpected.append(f"UNEXPECTED {target}: expected refusal '{want_refusal}...', got '{reason}'")
    finally:
        if cleanup:
            shutil.rmtree(workdir, ignore_errors=True)

    for line in unexpected:
        print(line)
    print(f"ngclient_check: {total - len(unexpected)} of {total} outcomes as expected")
    return 0 if not unexpected else 1


class TargetNotFound(Exception):
    """No trusted targets metadata lists the requested path."""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
