#!/usr/bin/env python3
"""Serve a directory over HTTP on 127.0.0.1 for the interop tests.

    serve_dir.py DIR [--port N] [--port-file FILE] [--exit-on-stdin-eof] [--verbose]

Contract (used by the Rust tests):
  * listens on 127.0.0.1 only; port 0 (the default) means an ephemeral port;
  * the FIRST line written to stdout is the port number in decimal, alone on
    the line, flushed as soon as the socket is listening;
  * with --port-file, the port is also written to FILE (atomically, via
    rename) once listening;
  * GET/HEAD of DIR/<path> returns the file bytes with status 200, a missing
    file gives 404; nothing is ever written under DIR;
  * runs until SIGTERM/SIGINT, or, with --exit-on-stdin-eof, until its stdin
    is closed (so it dies with a parent that holds the other end of a pipe).
Only standard library; does not need python-tuf.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import signal
import sys
import threading


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    verbose = False

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        if self.verbose:
            sys.stderr.write("serve_dir: %s - %s\n" % (self.address_string(), format % args))


def start(directory: str, port: int = 0, verbose: bool = False) -> http.server.ThreadingHTTPServer:
    """Start serving `directory` in a daemon thread; returns the server."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"not a directory: {directory}")
    handler = functools.partial(QuietHandler, directory=os.path.abspath(directory))
    QuietHandler.verbose = verbose
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serve_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Serve DIR on 127.0.0.1 (first stdout line: the port).")
    ap.add_argument("dir", help="directory to serve")
    ap.add_argument("--port", type=int, default=0, help="port (default 0: ephemeral)")
    ap.add_argument("--port-file", help="also write the port to this file once listening")
    ap.add_argument("--exit-on-stdin-eof", action="store_true",
                    help="exit when stdin is closed")
    ap.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = ap.parse_args(argv)

    try:
        server = start(args.dir, args.port, args.verbose)
    except (OSError, FileNotFoundError) as e:
        print(f"serve_dir: cannot serve {args.dir}: {e}", file=sys.stderr)
        return 1
    port = server.server_address[1]
    print(port, flush=True)
    if args.port_file:
        tmp = f"{args.port_file}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    if args.exit_on_stdin_eof:
        def watch_stdin() -> None:
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            except OSError:
                pass
            done.set()
        threading.Thread(target=watch_stdin, daemon=True).start()
    while not done.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(serve_main())
