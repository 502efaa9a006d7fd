#!/usr/bin/env python3
"""A bounded HTTPS load generator for the zero-downtime tests (stdlib only).

    scripts/loadgen.py --url https://flask-vps.localhost:8443/healthz --cacert ca.crt \\
        --connect 127.0.0.1:8443 --requests 5000 --seconds 60 --concurrency 4

Threads send GET requests over TLS (certificate checked against --cacert, SNI and
Host from the URL) until --requests were sent, --seconds passed, or the stop file
(--stop-file) appears, whichever comes first. Each worker keeps its connection
alive and opens a new one when the server closes it, as a browser would; a request
counts as failed when it gets no response or a status other than 200. It prints one
JSON object: sent, failed, statuses, errors (first few), releases (release ids
seen in /healthz answers, in order of first appearance), retried_stale_keepalive
(GETs resent once on a new connection because the server had closed the reused
keep-alive connection without answering, as browsers do), elapsed seconds.

It only sends to the address it is given: loopback or the project's own containers.

`during(command, load_args)` runs a command (a playbook) while this generator keeps
asking: the one way the site scenario and the benchmark measure zero downtime.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit


# Errors that mean "the connection was closed before any response".
STALE_KEEPALIVE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class Totals:
    """Counters shared by the worker threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent = 0
        self.failed = 0
        self.statuses: Counter[str] = Counter()
        self.errors: list[str] = []
        self.releases: list[str] = []
        self.retried = 0

    def count_retry(self) -> None:
        with self.lock:
            self.retried += 1

    def claim(self, limit: int) -> bool:
        with self.lock:
            if self.sent >= limit:
                return False
            self.sent += 1
            return True

    def record(self, status: str, ok: bool, release: str | None = None, error: str | None = None) -> None:
        with self.lock:
            self.statuses[status] += 1
            if not ok:
                self.failed += 1
            if error and len(self.errors) < 10:
                self.errors.append(error)
            if release and release not in self.releases:
                self.releases.append(release)


class SiteConnection(http.client.HTTPSConnection):
    """HTTPS to a fixed address while presenting (SNI) and checking the site's name."""

    def __init__(self, address: tuple[str, int], server_name: str, context: ssl.SSLContext,
                 timeout: float = 10.0) -> None:
        super().__init__(server_name, address[1], context=context, timeout=timeout)
        # http.client opens the socket to (host, port) and takes SNI from host:
        # open it to the given address instead and keep the name for TLS.
        self._create_connection = lambda _addr, timeout, source: socket.create_connection(address, timeout, source)


def worker(args: argparse.Namespace, totals: Totals, deadline: float, context: ssl.SSLContext) -> None:
    url = urlsplit(args.url)
    server_name = url.hostname or "localhost"
    port = url.port or 443
    host, _, connect_port = (args.connect or f"{server_name}:{port}").rpartition(":")
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    conn = None
    reused = False
    while time.monotonic() < deadline and not (args.stop_file and os.path.exists(args.stop_file)):
        if not totals.claim(args.requests):
            break
        for attempt in (1, 2):
            try:
                if conn is None:
                    conn = SiteConnection((host, int(connect_port)), server_name, context, args.timeout)
                    reused = False
                conn.request("GET", path, headers={"Host": url.netloc, "User-Agent": "flask-vps-loadgen"})
                response = conn.getresponse()
                body = response.read()
            except STALE_KEEPALIVE as exc:
                conn.close()
                conn = None
                # The server closed an idle keep-alive connection as this request
                # went out (nginx does on reload): no response means not processed,
                # and a GET is retried on a new connection, as browsers do (RFC 9112
                # 9.3.1). Counted, and a second failure counts as failed.
                if reused and attempt == 1:
                    totals.count_retry()
                    continue
                totals.record("error", False, error=f"{type(exc).__name__}: {exc}")
                break
            except (OSError, http.client.HTTPException) as exc:
                if conn is not None:
                    conn.close()
                conn = None
                totals.record("error", False, error=f"{type(exc).__name__}: {exc}")
                break
            release = None
            if response.status == 200 and body.startswith(b"{"):
                try:
                    release = json.loads(body).get("release")
                except ValueError:
                    pass
            totals.record(str(response.status), response.status == 200, release)
            reused = True
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
            break
        if args.pause:
            time.sleep(args.pause)
    if conn is not None:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="https://name[:port]/path (SNI and Host)")
    parser.add_argument("--connect", help="address:port to connect to instead of the URL's host")
    parser.add_argument("--cacert", required=True, help="CA certificate that signed the server's")
    parser.add_argument("--requests", type=int, default=5000, help="stop after this many requests")
    parser.add_argument("--seconds", type=float, default=120.0, help="stop after this many seconds")
    parser.add_argument("--concurrency", type=int, default=4, help="worker threads")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds a request may take before it counts as failed")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds each worker waits between requests")
    parser.add_argument("--stop-file", help="stop as soon as this file exists")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.seconds <= 0 or not 1 <= args.concurrency <= 64:
        parser.error("--requests, --seconds and --concurrency (1-64) bound the load")

    context = ssl.create_default_context(cafile=args.cacert)
    totals = Totals()
    started = time.monotonic()
    deadline = started + args.seconds
    threads = [threading.Thread(target=worker, args=(args, totals, deadline, context), daemon=True)
               for _ in range(args.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    json.dump({"sent": totals.sent, "failed": totals.failed, "statuses": dict(totals.statuses),
               "retried_stale_keepalive": totals.retried, "errors": totals.errors, "releases": totals.releases,
               "elapsed": round(time.monotonic() - started, 2)}, sys.stdout)
    sys.stdout.write("\n")
    return 0


def during(command: list[str], load_args: list[str], settle: float = 2.0,
           **run_kwargs) -> tuple[subprocess.CompletedProcess[str], dict, float]:
    """Run command while the generator (given load_args) keeps asking.

    The load starts `settle` seconds before the command and stops `settle` seconds
    after it. Returns the command's result (output captured as text), the load's
    figures, and the command's own duration in seconds.
    """
    with tempfile.TemporaryDirectory(prefix="loadgen-") as tmp:
        stop = Path(tmp) / "stop"
        load = subprocess.Popen([sys.executable, __file__, *load_args, "--stop-file", str(stop)],
                                stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(settle)
            started = time.monotonic()
            result = subprocess.run(command, capture_output=True, text=True, check=False, **run_kwargs)
            seconds = time.monotonic() - started
            time.sleep(settle)
        finally:
            stop.touch()
            out, _ = load.communicate(timeout=120)
    return result, json.loads(out), seconds


if __name__ == "__main__":
    sys.exit(main())
