#!/usr/bin/env python3
"""A bounded HTTPS load generator for the zero-downtime tests (stdlib only).

    scripts/loadgen.py --url https://flask-vps.localhost:8443/healthz --cacert ca.crt \\
        --connect 127.0.0.1:8443 --requests 5000 --seconds 60 --concurrency 4 \\
        --strict --post-workers 1 --post-pause 0.05

Threads send GET requests to --url over TLS (certificate checked against --cacert,
SNI and Host from the URL) until --requests were sent, --seconds passed, or the stop
file (--stop-file) appears, whichever comes first. Each worker keeps its HTTP/1.1
connection alive and opens a new one when the server closes it, as a browser would.
A request counts as failed when it gets no response, or a status other than 200
(GET) or other than 201 with the note echoed (POST).

--strict    No retry of any kind: every request is sent once. Without it, a GET whose
            reused keep-alive connection the server had closed without answering is
            resent once on a new connection, as browsers do (RFC 9112 9.3.1), and
            counted in `retried`. A POST is never resent in either mode: it is not
            idempotent, and a resent POST could store a note twice.
--post-workers N
            N more threads (beside the --concurrency GET workers) POST notes to
            --post-path (/api/notes), keep-alive too, each text unique: "loadgen
            <run marker> write <n>". After the load stops, the generator reads the
            notes back (GET --post-path, the whole list) and compares them with
            what the server acknowledged.
--post-pause S
            seconds each POST worker waits between writes (default: --pause).

It prints one JSON object:

    sent, failed, statuses     all requests, GET and POST
    errors                     the first few failures, as text
    releases                   release ids seen in /healthz answers, in order of first appearance
    strict                     whether --strict was given
    retried                    GETs resent after a server close (always 0 with --strict)
    closed_by_server           requests the server closed the connection on without
                               answering, whether it closed it then or while it lay
                               idle between requests (noticed by the next request);
                               each is also in failed unless it was retried
    closed_after_response      answers that ended the connection (Connection: close,
                               as nginx sends after keepalive_requests, 1000 by
                               default); not failures
    writes_sent, writes_acknowledged, writes_failed
                               the POSTs (writes_failed is part of failed)
    writes_stored              notes of this run found afterwards
    writes_missing             acknowledged, but not stored (must be 0)
    writes_unacknowledged_stored
                               stored, but never acknowledged: a write whose answer
                               was lost (must be 0 in a strict pass)
    writes_problems            the first few missing or unacknowledged notes
    writes_marker              the text every note of this run starts with
    elapsed                    seconds

writes_missing and writes_unacknowledged_stored are null when the notes could not be
read back (the reason is in writes_problems). The read-back is not part of the
measured load: a GET of it whose connection was closed is sent again once.

A strict pass (--strict --post-workers 1 or more): failed, closed_by_server, retried,
writes_failed, writes_missing and writes_unacknowledged_stored all 0, and
writes_acknowledged == writes_sent > 0.

It only sends to the address it is given: loopback or the project's own containers.

`under_load(load_args)` keeps this generator asking while a with-block runs (the
site scenario kills a deploy inside one), and `during(command, load_args)` runs a
command (a playbook) that way: the one way the site scenario and the benchmark
measure zero downtime.
"""

from __future__ import annotations

import argparse
import contextlib
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
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


# Errors that mean "the server closed the connection before any response".
CLOSED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ssl.SSLEOFError,
          ssl.SSLZeroReturnError)
USER_AGENT = "flask-vps-loadgen"


@dataclass(frozen=True)
class Target:
    """Where requests go: the site's name (SNI and Host) and the address to connect to."""

    address: tuple[str, int]
    server_name: str
    netloc: str
    path: str
    post_path: str

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Target:
        url = urlsplit(args.url)
        server_name = url.hostname or "localhost"
        host, _, port = (args.connect or f"{server_name}:{url.port or 443}").rpartition(":")
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        return cls((host, int(port)), server_name, url.netloc, path, args.post_path)


@dataclass
class Outcome:
    """What one request got: an answer (status and body) or an error."""

    status: int | None = None
    body: bytes = b""
    error: str | None = None
    closed: bool = False  # the server closed the connection without answering
    reused: bool = False  # sent on a connection that had carried an earlier request
    closed_after: bool = False  # answered, then the server ended the connection


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
        self.closed_by_server = 0
        self.closed_after_response = 0

    def claim(self, limit: int) -> bool:
        with self.lock:
            if self.sent >= limit:
                return False
            self.sent += 1
            return True

    def attempt(self, outcome: Outcome, retrying: bool = False) -> None:
        """Count what one attempt tells about the connection (every attempt, retried or not)."""
        with self.lock:
            self.closed_by_server += outcome.closed
            self.closed_after_response += outcome.closed_after
            self.retried += retrying

    def record(self, outcome: Outcome, ok: bool, release: str | None = None) -> None:
        """Count a request's final outcome."""
        with self.lock:
            self.statuses["error" if outcome.status is None else str(outcome.status)] += 1
            if not ok:
                self.failed += 1
                if len(self.errors) < 10:
                    self.errors.append(outcome.error or f"HTTP {outcome.status}: {outcome.body[:200]!r}")
            if release and release not in self.releases:
                self.releases.append(release)


class Writes:
    """The notes the POST workers sent, and which the server acknowledged."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.marker = f"loadgen {uuid.uuid4().hex[:12]}"
        self.sent = 0
        self.acknowledged: dict[str, int] = {}  # text -> id the server gave it
        self.failed: list[str] = []

    def next_text(self) -> str:
        with self.lock:
            self.sent += 1
            return f"{self.marker} write {self.sent}"

    def record(self, text: str, note_id: int | None) -> None:
        with self.lock:
            if note_id is None:
                self.failed.append(text)
            else:
                self.acknowledged[text] = note_id


class SiteConnection(http.client.HTTPSConnection):
    """HTTPS to a fixed address while presenting (SNI) and checking the site's name."""

    def __init__(self, address: tuple[str, int], server_name: str, context: ssl.SSLContext,
                 timeout: float = 10.0) -> None:
        super().__init__(server_name, address[1], context=context, timeout=timeout)
        # http.client opens the socket to (host, port) and takes SNI from host:
        # open it to the given address instead and keep the name for TLS.
        self._create_connection = lambda _addr, timeout, source: socket.create_connection(address, timeout, source)


class Client:
    """One worker's keep-alive connection, opened again after the server ends it."""

    def __init__(self, target: Target, context: ssl.SSLContext, timeout: float) -> None:
        self.target = target
        self.context = context
        self.timeout = timeout
        self.conn: SiteConnection | None = None

    def exchange(self, method: str, path: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None) -> Outcome:
        """Send one request, once; never resent here."""
        if self.conn is None:
            self.conn = SiteConnection(self.target.address, self.target.server_name, self.context, self.timeout)
        # http.client drops the socket after an answer that ends the connection and
        # opens a new one on the next request: that request is not on a reused one.
        reused = self.conn.sock is not None
        try:
            self.conn.request(method, path, body=body,
                              headers={"Host": self.target.netloc, "User-Agent": USER_AGENT, **(headers or {})})
            response = self.conn.getresponse()
            data = response.read()
        except CLOSED as exc:
            self.close()
            return Outcome(error=f"{type(exc).__name__}: {exc} ({'reused' if reused else 'new'} connection)",
                           closed=True, reused=reused)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return Outcome(error=f"{type(exc).__name__}: {exc}", reused=reused)
        if response.will_close:
            self.close()
        return Outcome(response.status, data, reused=reused, closed_after=response.will_close)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def running(args: argparse.Namespace, totals: Totals, deadline: float) -> bool:
    if time.monotonic() >= deadline or (args.stop_file and os.path.exists(args.stop_file)):
        return False
    return totals.claim(args.requests)


def get_worker(args: argparse.Namespace, target: Target, totals: Totals, deadline: float,
               context: ssl.SSLContext) -> None:
    client = Client(target, context, args.timeout)
    while running(args, totals, deadline):
        outcome = client.exchange("GET", target.path)
        totals.attempt(outcome)
        # The server closed a kept-alive connection as this request went out (nginx's
        # old workers do on reload): no response means not processed, and a browser
        # sends the GET again on a new connection. Strict mode does not.
        if outcome.closed and outcome.reused and not args.strict:
            outcome = client.exchange("GET", target.path)
            totals.attempt(outcome, retrying=True)
        release = None
        if outcome.status == 200 and outcome.body.startswith(b"{"):
            try:
                release = json.loads(outcome.body).get("release")
            except ValueError:
                pass
        totals.record(outcome, outcome.status == 200, release)
        if args.pause:
            time.sleep(args.pause)
    client.close()


def acknowledged_id(outcome: Outcome, text: str) -> int | None:
    """The note's id when the server answered 201 with the note it stored, else None."""
    if outcome.status != 201:
        return None
    try:
        note = json.loads(outcome.body)
    except ValueError:
        return None
    if isinstance(note, dict) and note.get("text") == text and isinstance(note.get("id"), int):
        return note["id"]
    return None


def post_worker(args: argparse.Namespace, target: Target, totals: Totals, writes: Writes, deadline: float,
                context: ssl.SSLContext) -> None:
    client = Client(target, context, args.timeout)
    while running(args, totals, deadline):
        text = writes.next_text()
        outcome = client.exchange("POST", target.post_path, json.dumps({"text": text}).encode(),
                                  {"Content-Type": "application/json"})
        totals.attempt(outcome)
        note_id = acknowledged_id(outcome, text)
        writes.record(text, note_id)
        totals.record(outcome, note_id is not None)
        if args.post_pause:
            time.sleep(args.post_pause)
    client.close()


def read_back(client: Client, path: str) -> Outcome:
    """A GET after the load, to check it: sent again once if the connection was closed
    (this is not the measured load, which strict mode never retries)."""
    outcome = client.exchange("GET", path)
    return client.exchange("GET", path) if outcome.closed else outcome


def stored_notes(client: Client, marker: str) -> dict[str, list[int]]:
    """This run's notes on the server: text -> ids (GET post_path lists every note)."""
    outcome = read_back(client, client.target.post_path)
    if outcome.status != 200:
        raise RuntimeError(f"reading the notes back: {outcome.error or f'HTTP {outcome.status}'}")
    stored: dict[str, list[int]] = {}
    for note in json.loads(outcome.body)["notes"]:
        if note["text"].startswith(marker + " "):
            stored.setdefault(note["text"], []).append(note["id"])
    return stored


def note_is_stored(client: Client, note_id: int, text: str) -> bool:
    """Whether the note is there when asked for by id (GET post_path/<id>)."""
    outcome = read_back(client, f"{client.target.post_path.rstrip('/')}/{note_id}")
    return outcome.status == 200 and acknowledged_id(Outcome(201, outcome.body), text) == note_id


def check_writes(client: Client, writes: Writes) -> dict:
    """Compare what the server acknowledged with what it stored."""
    figures: dict = {"writes_sent": writes.sent, "writes_acknowledged": len(writes.acknowledged),
                     "writes_failed": len(writes.failed), "writes_stored": 0, "writes_missing": 0,
                     "writes_unacknowledged_stored": 0, "writes_problems": [], "writes_marker": writes.marker}
    if not writes.sent:
        return figures
    try:
        stored = stored_notes(client, writes.marker)
        # An acknowledged note absent from the list is asked for by id before it
        # counts as missing, so a list that someday stops at a page size does not
        # pass for lost writes.
        missing = [text for text, note_id in writes.acknowledged.items()
                   if note_id not in stored.get(text, []) and not note_is_stored(client, note_id, text)]
    except (RuntimeError, ValueError, LookupError, TypeError, AttributeError) as exc:
        return {**figures, "writes_missing": None, "writes_unacknowledged_stored": None,
                "writes_problems": [f"{type(exc).__name__}: {exc}"]}
    unacknowledged = [text for text in stored if text not in writes.acknowledged]
    problems = [f"missing: {text}" for text in missing] + [f"stored, never acknowledged: {text}"
                                                           for text in unacknowledged]
    return {**figures, "writes_stored": sum(map(len, stored.values())), "writes_missing": len(missing),
            "writes_unacknowledged_stored": len(unacknowledged), "writes_problems": problems[:10]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="https://name[:port]/path (SNI and Host)")
    parser.add_argument("--connect", help="address:port to connect to instead of the URL's host")
    parser.add_argument("--cacert", required=True, help="CA certificate that signed the server's")
    parser.add_argument("--requests", type=int, default=5000, help="stop after this many requests")
    parser.add_argument("--seconds", type=float, default=120.0, help="stop after this many seconds")
    parser.add_argument("--concurrency", type=int, default=4, help="GET worker threads")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds a request may take before it counts as failed")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds each worker waits between requests")
    parser.add_argument("--stop-file", help="stop as soon as this file exists")
    parser.add_argument("--strict", action="store_true",
                        help="no retry of any kind: a request without an answer is failed")
    parser.add_argument("--post-workers", type=int, default=0,
                        help="more threads that POST unique notes, checked against the stored ones afterwards")
    parser.add_argument("--post-path", default="/api/notes", help="where notes are POSTed and listed")
    parser.add_argument("--post-pause", type=float, help="seconds each POST worker waits between writes "
                        "(default: --pause)")
    args = parser.parse_args(argv)
    if args.post_pause is None:
        args.post_pause = args.pause
    if (args.requests < 1 or args.seconds <= 0 or args.concurrency < 0 or args.post_workers < 0
            or not 1 <= args.concurrency + args.post_workers <= 64):
        parser.error("--requests, --seconds, --concurrency and --post-workers (1-64 threads in all) bound the load")

    context = ssl.create_default_context(cafile=args.cacert)
    target = Target.from_args(args)
    totals = Totals()
    writes = Writes()
    started = time.monotonic()
    deadline = started + args.seconds
    threads = [threading.Thread(target=get_worker, args=(args, target, totals, deadline, context), daemon=True)
               for _ in range(args.concurrency)]
    threads += [threading.Thread(target=post_worker, args=(args, target, totals, writes, deadline, context),
                                 daemon=True) for _ in range(args.post_workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = round(time.monotonic() - started, 2)
    reader = Client(target, context, args.timeout)
    writes_figures = check_writes(reader, writes)
    reader.close()
    json.dump({"sent": totals.sent, "failed": totals.failed, "statuses": dict(totals.statuses),
               "strict": args.strict, "retried": totals.retried, "closed_by_server": totals.closed_by_server,
               "closed_after_response": totals.closed_after_response, **writes_figures,
               "errors": totals.errors, "releases": totals.releases, "elapsed": elapsed}, sys.stdout)
    sys.stdout.write("\n")
    return 0


@contextlib.contextmanager
def under_load(load_args: list[str], settle: float = 2.0) -> Iterator[dict]:
    """Keep the generator (given load_args) asking while the with-block runs.

    The load starts `settle` seconds before the block and stops `settle` seconds
    after it; the yielded dict holds the load's figures once the block is done.
    """
    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="loadgen-") as tmp:
        stop = Path(tmp) / "stop"
        load = subprocess.Popen([sys.executable, __file__, *load_args, "--stop-file", str(stop)],
                                stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(settle)
            yield figures
            time.sleep(settle)
        finally:
            stop.touch()
            out, _ = load.communicate(timeout=120)
    figures.update(json.loads(out))


def during(command: list[str], load_args: list[str], settle: float = 2.0,
           **run_kwargs) -> tuple[subprocess.CompletedProcess[str], dict, float]:
    """Run command while the generator (given load_args) keeps asking.

    Returns the command's result (output captured as text), the load's figures,
    and the command's own duration in seconds.
    """
    with under_load(load_args, settle) as figures:
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True, check=False, **run_kwargs)
        seconds = time.monotonic() - started
    return result, figures, seconds


if __name__ == "__main__":
    sys.exit(main())
