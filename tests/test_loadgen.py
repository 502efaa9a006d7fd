"""scripts/loadgen.py against a small HTTPS stand-in for the app on 127.0.0.1: what it
counts as failed, closed, retried, acknowledged and stored, with the faults a deploy
can cause (an idle keep-alive connection closed, as nginx's old workers do on
reload; a write stored but not answered; a write answered but not stored).

The generator runs as a subprocess, as during() runs it; each run lasts about a second.
"""

from __future__ import annotations

import datetime
import itertools
import json
import re
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import ROOT

LOADGEN = ROOT / "scripts" / "loadgen.py"
SITE = "site.test"
sys.path.insert(0, str(ROOT / "scripts"))
import loadgen  # noqa: E402


def certificate(subject: str, key, issuer: x509.Certificate | None, issuer_key, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    public = key.public_key()
    builder = (x509.CertificateBuilder()
               .subject_name(name)
               .issuer_name(issuer.subject if issuer else name)
               .public_key(public)
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                              critical=False))
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = (builder
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    """A throwaway CA's certificate file, and a server context with a certificate it signed for SITE."""
    where = tmp_path_factory.mktemp("loadgen-tls")
    ca_key, site_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("loadgen test CA", ca_key, None, ca_key, ca=True)
    site = certificate(SITE, site_key, ca, ca_key, ca=False)
    (where / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (where / "site.crt").write_bytes(site.public_bytes(serialization.Encoding.PEM))
    (where / "site.key").write_bytes(site_key.private_bytes(serialization.Encoding.PEM,
                                                            serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(where / "site.crt", where / "site.key")
    return where / "ca.crt", context


class Notes:
    """The stand-in's database, and the fault it injects on every `every`-th request."""

    def __init__(self, fault: str | None, every: int, list_limit: int | None) -> None:
        self.fault = fault
        self.every = every
        self.list_limit = list_limit
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.stored: dict[int, str] = {}
        self.requests = 0
        self.written = threading.Event()  # set once three notes are stored

    def fault_now(self) -> str | None:
        with self.lock:
            self.requests += 1
            return self.fault if self.requests % self.every == 0 else None


class Handler(BaseHTTPRequestHandler):
    """/healthz, GET /api/notes (every note, or the newest list_limit), GET /api/notes/<id>,
    POST /api/notes (JSON {"text": ...} -> 201 and the note), as the app answers them."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes
    timeout = 5
    server: ThreadingHTTPServer

    def log_message(self, *args) -> None:
        pass

    def answer(self, status: int, payload: dict, close: bool = False) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        if close:
            self.send_header("Connection", "close")  # and http.server closes it after the answer
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        notes: Notes = self.server.notes
        by_id = re.fullmatch(r"/api/notes/(\d+)", self.path)
        fault = notes.fault_now()
        if self.path == "/healthz":
            self.answer(200, {"status": "ok", "release": "r1"}, close=fault == "answer-then-close")
        elif self.path == "/api/notes":
            with notes.lock:
                listing = [{"id": i, "text": t} for i, t in sorted(notes.stored.items())]
            self.answer(200, {"notes": listing[-notes.list_limit:] if notes.list_limit else listing})
        elif by_id and int(by_id.group(1)) in notes.stored:
            self.answer(200, {"id": int(by_id.group(1)), "text": notes.stored[int(by_id.group(1))]})
        else:
            self.answer(404, {"error": "not found"})
        if fault == "idle-close":
            # Answered with keep-alive, then closed while idle: the client finds out
            # only when it sends its next request on the connection.
            self.close_connection = True

    def do_POST(self) -> None:
        notes: Notes = self.server.notes
        text = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["text"]
        fault = notes.fault_now()
        note = {"id": next(notes.ids), "text": text}
        if fault != "ack-without-store":
            with notes.lock:
                notes.stored[note["id"]] = text
                if len(notes.stored) >= 3:
                    notes.written.set()
        if fault == "store-then-drop":
            self.close_connection = True  # committed, then the connection is gone: no answer
            return
        self.answer(201, note)


@pytest.fixture
def serve(tls) -> Iterator:
    """serve(fault, every, list_limit) starts a stand-in; the generator's arguments to reach it come back."""
    ca_file, context = tls
    servers: list[ThreadingHTTPServer] = []

    def start(fault: str | None = None, every: int = 4, list_limit: int | None = None) -> tuple[list[str], Notes]:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.notes = Notes(fault, every, list_limit)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        port = server.server_address[1]
        return ["--url", f"https://{SITE}:{port}/healthz", "--connect", f"127.0.0.1:{port}",
                "--cacert", str(ca_file)], server.notes

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def load(target: list[str], *args: str) -> dict:
    """Run the generator for about a second; its JSON figures."""
    result = subprocess.run([sys.executable, str(LOADGEN), *target, "--seconds", "1", "--requests", "100000",
                             "--timeout", "3", *args], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_clean_server_fails_nothing_and_stores_every_write(serve) -> None:
    target, notes = serve()
    figures = load(target, "--strict", "--concurrency", "2", "--post-workers", "2", "--pause", "0.002")
    assert figures["strict"] is True
    assert figures["sent"] > 20 and figures["failed"] == 0, figures
    assert figures["retried"] == 0 and figures["closed_by_server"] == 0, figures
    assert figures["releases"] == ["r1"]
    assert figures["writes_sent"] > 5, figures
    assert figures["writes_acknowledged"] == figures["writes_sent"] == figures["writes_stored"], figures
    assert figures["writes_failed"] == figures["writes_missing"] == figures["writes_unacknowledged_stored"] == 0
    assert figures["statuses"] == {"200": figures["sent"] - figures["writes_sent"], "201": figures["writes_sent"]}
    # Every note carries the run's marker and its own number.
    texts = set(notes.stored.values())
    assert len(texts) == figures["writes_sent"]
    assert all(text.startswith(figures["writes_marker"] + " write ") for text in texts)


def test_idle_keepalive_closes_fail_strict_and_are_retried_otherwise(serve) -> None:
    target, _ = serve("idle-close", every=4)
    strict = load(target, "--strict", "--concurrency", "2", "--pause", "0.002")
    assert strict["failed"] > 0 and strict["closed_by_server"] > 0, strict
    assert strict["retried"] == 0, strict
    # Nothing else went wrong: every failure is a closed keep-alive connection.
    assert strict["failed"] == strict["closed_by_server"] == strict["statuses"]["error"], strict
    assert "reused connection" in strict["errors"][0], strict

    default = load(target, "--concurrency", "2", "--pause", "0.002")
    assert default["strict"] is False
    assert default["retried"] > 0 and default["failed"] == 0, default
    assert default["closed_by_server"] == default["retried"], default


def test_an_answer_that_ends_the_connection_is_no_failure(serve) -> None:
    # Connection: close on an answer (nginx's old workers do that to a request
    # they are still serving) is counted, but the request was answered.
    target, _ = serve("answer-then-close", every=4)
    figures = load(target, "--strict", "--concurrency", "2", "--pause", "0.002")
    assert figures["closed_after_response"] > 0, figures
    assert figures["failed"] == figures["closed_by_server"] == figures["retried"] == 0, figures


@pytest.mark.parametrize("mode", [["--strict"], []], ids=["strict", "default"])
def test_a_write_stored_but_not_answered_is_unacknowledged_stored(serve, mode: list[str]) -> None:
    target, notes = serve("store-then-drop", every=3)
    figures = load(target, *mode, "--concurrency", "1", "--post-workers", "2", "--pause", "0.002")
    assert figures["writes_failed"] > 0 and figures["failed"] >= figures["writes_failed"], figures
    assert figures["writes_unacknowledged_stored"] == figures["writes_failed"], figures
    assert figures["writes_missing"] == 0, figures
    assert figures["writes_stored"] == figures["writes_sent"] == len(notes.stored), figures
    # A POST is never resent, not even in the default mode: it could store the note twice.
    assert figures["retried"] == 0 and figures["closed_by_server"] == figures["writes_failed"], figures
    assert any(p.startswith("stored, never acknowledged: ") for p in figures["writes_problems"]), figures


def test_a_write_answered_but_not_stored_is_missing(serve) -> None:
    target, _ = serve("ack-without-store", every=3)
    figures = load(target, "--strict", "--concurrency", "1", "--post-workers", "2", "--pause", "0.002")
    assert figures["failed"] == figures["writes_failed"] == 0, figures
    assert figures["writes_missing"] > 0, figures
    assert figures["writes_missing"] == figures["writes_acknowledged"] - figures["writes_stored"], figures
    assert figures["writes_unacknowledged_stored"] == 0, figures
    assert any(p.startswith("missing: ") for p in figures["writes_problems"]), figures


def test_a_list_that_stops_short_is_checked_note_by_note(serve) -> None:
    # Only the newest 5 notes in the list: the others are found by id, not counted missing.
    target, _ = serve(list_limit=5)
    figures = load(target, "--strict", "--concurrency", "1", "--post-workers", "1", "--post-pause", "0.01")
    assert figures["writes_acknowledged"] > 5, figures
    assert figures["writes_missing"] == 0 and figures["failed"] == 0, figures


def test_during_runs_the_command_under_load(serve, tmp_path: Path) -> None:
    target, notes = serve()
    # The command lasts until the load has written to the server (however long the
    # generator takes to start on a busy machine), as a playbook outlasts the settle time.
    flag = tmp_path / "written"
    threading.Thread(target=lambda: notes.written.wait(20) and flag.touch(), daemon=True).start()
    wait = f"import pathlib, time\nwhile not pathlib.Path({str(flag)!r}).exists(): time.sleep(0.02)\nprint('done')"
    result, figures, seconds = loadgen.during(
        [sys.executable, "-c", wait],
        [*target, "--strict", "--concurrency", "1", "--post-workers", "1", "--pause", "0.01"], settle=0.3,
        timeout=30)
    assert result.returncode == 0 and result.stdout == "done\n", result.stderr
    assert seconds < 25
    assert figures["sent"] > 3 and figures["failed"] == 0 and figures["retried"] == 0, figures
    assert figures["writes_acknowledged"] == figures["writes_stored"] >= 3, figures


def test_bad_bounds_are_refused(serve) -> None:
    target, _ = serve()
    result = subprocess.run([sys.executable, str(LOADGEN), *target, "--concurrency", "0"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2 and "1-64 threads in all" in result.stderr


def test_the_bench_files_the_load_figures_per_stage(serve, monkeypatch: pytest.MonkeyPatch) -> None:
    # bench/provisioning.py names the generator's figures per stage; bench/run.py
    # files them under "zero downtime": checked with a real run's JSON.
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import provisioning
    import run

    target, _ = serve("store-then-drop", every=3)
    figures = load(target, "--strict", "--concurrency", "1", "--post-workers", "1", "--pause", "0.002")
    stages = {**provisioning.load_figures("deploy", figures), **provisioning.load_figures("rollback", figures)}
    assert stages["deploy_failed_strict"] == figures["failed"] > 0
    assert stages["rollback_writes_unacknowledged_stored"] == figures["writes_unacknowledged_stored"] > 0
    summary = provisioning.load_summary(figures)
    assert f"failed {figures['failed']} (strict; {figures['closed_by_server']} closed" in summary
    monkeypatch.setattr(provisioning, "measure", lambda warm: {"deploy_seconds": 17.4, "failed_deploy_seconds": 20.7,
                                                               **stages})
    timings, zero_downtime = run.measure_provisioning(warm=True)
    assert timings == {"deploy_seconds": 17.4, "failed_deploy_seconds": 20.7}
    assert zero_downtime == stages and len(stages) == 2 * len(provisioning.LOAD_FIGURES)
