"""The whole product with Caddy as the front door, seen from outside: the same
site as nginx's (redirect, static files, headers on every response, unknown names
refused, limits), deploys, a failing deploy and a rollback under strict load with
nothing dropped, a refused Caddyfile, the switch to nginx and back under load
(its gap measured), and the outside audit.

The tests run in file order and build on each other, like the site scenario's.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import run_playbook

testinfra_hosts = [f"ansible://flask_vps?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}"]

SITE = "flask-vps.localhost"
ROOT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
INVENTORY = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "inventory"
CONTAINER = f"fv-caddy-{os.environ.get('MOLECULE_DISTRO', 'debian13')}{os.environ.get('FLASK_VPS_NAME_SUFFIX', '')}"
# prepare.yml made the operator's key here, the converge fetched the CA here
# (group_vars/flask_vps.yml); the measured figures are written here too.
WORK = ROOT / ".cache" / "molecule-caddy" / CONTAINER
CA_FILE = WORK / "ca.crt"
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "scripts"))
import loadgen  # noqa: E402  (scripts/loadgen.py: the load and its during())

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
}
STATE: dict[str, str] = {}


def container_address() -> str:
    inspect = subprocess.run(
        ["docker", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", CONTAINER],
        capture_output=True, text=True, timeout=60, check=True)
    return inspect.stdout.split()[0]


@pytest.fixture
def address(host) -> str:
    # Taking host keeps the tests that take address in file order (see test_site.py).
    return container_address()


def request(address: str, path: str, method: str = "GET", body: bytes | None = None,
            headers: dict[str, str] | None = None, *, tls: bool = True, name: str = SITE):
    """One request to the container's address, by a name (SNI and Host)."""
    port = 443 if tls else 80
    sock = socket.create_connection((address, port), timeout=10)
    if tls:
        sock = ssl.create_default_context(cafile=str(CA_FILE)).wrap_socket(sock, server_hostname=name)
    conn = http.client.HTTPConnection(name, port, timeout=10)
    conn.sock = sock
    conn.request(method, path, body=body, headers={"Host": name, **(headers or {})})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data


def served_release(address: str) -> str:
    response, data = request(address, "/healthz")
    assert response.status == 200, data
    return json.loads(data)["release"]


def playbook_run(name: str, *args: str) -> tuple[list[str], dict]:
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(ROOT / "roles"), ANSIBLE_FORCE_COLOR="false",
               PATH=f"{BIN}:{os.environ['PATH']}")
    env.pop("ANSIBLE_CONFIG", None)
    return [str(BIN / "ansible-playbook"), f"playbooks/{name}", "-i", str(INVENTORY), *args], {"cwd": ROOT, "env": env}


def app_copy(wsgi_extra: str) -> Path:
    """A copy of the app whose wsgi.py ends with wsgi_extra: a new release id."""
    target = Path(tempfile.mkdtemp(dir=WORK)) / "app"
    shutil.copytree(ROOT / "app", target, ignore=shutil.ignore_patterns(".venv", "__pycache__", "instance",
                                                                          ".pytest_cache", "tests"))
    with (target / "wsgi.py").open("a") as wsgi:
        wsgi.write(wsgi_extra)
    return target


def load_arguments(address: str) -> list[str]:
    # The site scenario's strict load: 4 keep-alive clients (at most 100 requests/s
    # each) that never retry, and a writer whose acknowledged notes must be stored.
    return ["--url", f"https://{SITE}/healthz", "--connect", f"{address}:443", "--cacert", str(CA_FILE),
            "--requests", "50000", "--seconds", "600", "--concurrency", "4", "--pause", "0.01",
            "--timeout", "30", "--strict", "--post-workers", "1", "--post-pause", "0.05"]


def under_load(address: str, name: str, *args: str):
    command, settings = playbook_run(name, *args)
    return loadgen.during(command, load_arguments(address), timeout=900, **settings)


def assert_strict_load_passed(load: dict, minimum: int) -> None:
    assert load["sent"] >= minimum and load["failed"] == 0, (load, load["errors"])
    assert load["closed_by_server"] == 0 and load["retried"] == 0, load
    assert load["writes_failed"] == load["writes_missing"] == load["writes_unacknowledged_stored"] == 0, load["writes_problems"]
    assert load["writes_acknowledged"] == load["writes_sent"] > 0, load


def caddy_pid(host) -> str:
    return host.check_output("systemctl show -p MainPID --value caddy.service")


# At most this long without an answer while the front door changes (README).
SWITCH_GAP_LIMIT = 5.0


def record(name: str, figures: dict) -> None:
    """Keep a measured figure beside this run's files (the README quotes them)."""
    (WORK / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")


# --- The same site as nginx's -------------------------------------------------------

def test_caddy_serves_with_the_fetched_ca(host, address: str) -> None:
    assert host.service("caddy.service").is_running and host.service("caddy.service").is_enabled
    assert not host.package("nginx").is_installed
    response, data = request(address, "/healthz")
    assert response.status == 200 and json.loads(data)["database"] == "ok"
    assert "Server" not in response.headers
    STATE["release"] = json.loads(data)["release"]
    with socket.create_connection((address, 443), timeout=10) as raw:
        with ssl.create_default_context(cafile=str(CA_FILE)).wrap_socket(raw, server_hostname=SITE) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_old_tls_versions_are_refused(address: str) -> None:
    for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            context.minimum_version = context.maximum_version = version
            context.set_ciphers("ALL:@SECLEVEL=0")
        except (ValueError, ssl.SSLError):
            continue  # this host's OpenSSL cannot even offer it
        with socket.create_connection((address, 443), timeout=10) as raw:
            with pytest.raises((ssl.SSLError, ConnectionError)):
                context.wrap_socket(raw, server_hostname=SITE)


def test_http_redirects_to_https_with_308(address: str) -> None:
    response, _ = request(address, "/some/page?x=1", tls=False)
    assert response.status == 308
    assert response.getheader("Location") == f"https://{SITE}/some/page?x=1"


@pytest.mark.parametrize("path", ["/", "/static/style.css", "/missing-page", "/static/missing.css"])
def test_security_headers_on_success_and_errors(address: str, path: str) -> None:
    response, _ = request(address, path)
    assert response.status in (200, 404)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get_all(name) == [value], (path, name)
    # The sandbox's certificate is self-signed: no HSTS (as with nginx).
    assert "Strict-Transport-Security" not in response.headers


def test_static_files_come_from_caddy_and_the_live_release(host, address: str) -> None:
    response, data = request(address, "/static/style.css")
    assert response.status == 200
    assert response.getheader("Content-Type", "").startswith("text/css")
    assert response.getheader("Cache-Control") == "max-age=604800"
    assert data == host.file("/srv/flaskapp/current/webapp/static/style.css").content
    # A missing static file is Caddy's 404, never a request to the app.
    before = host.check_output("journalctl -u 'flaskapp@*' --no-pager -o cat | wc -l")
    missing, body = request(address, "/static/missing.css")
    assert missing.status == 404 and b"<html" not in body.lower()
    assert host.check_output("journalctl -u 'flaskapp@*' --no-pager -o cat | wc -l") == before


def test_unknown_names_get_no_site(address: str) -> None:
    # Port 80: the connection is closed without an answer.
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
        request(address, "/", tls=False, name="unknown.example")
    # Port 443: no certificate for the name, the handshake fails.
    with socket.create_connection((address, 443), timeout=10) as raw:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with pytest.raises(ssl.SSLError):
            context.wrap_socket(raw, server_hostname="unknown.example")
    # The site's name in the handshake and another in Host: refused (421).
    response, _ = request(address, "/", headers={"Host": "unknown.example"})
    assert response.status == 421


def post_oversized(address: str, path: str, size: int) -> bytes:
    """POST a body of `size` bytes and return what the server answered, read while
    the upload goes on (as curl and browsers do) until the server closes. One
    thread: an SSL object used by a reader and a writer thread at once crashed
    Python (segmentation fault) in a loop of this exchange."""
    body = memoryview(b"x" * size)
    answer = b""
    with socket.create_connection((address, 443), timeout=30) as raw:
        with ssl.create_default_context(cafile=str(CA_FILE)).wrap_socket(raw, server_hostname=SITE) as tls:
            tls.sendall((f"POST {path} HTTP/1.1\r\nHost: {SITE}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {size}\r\n\r\n").encode())
            tls.setblocking(False)
            sent, deadline = 0, time.monotonic() + 30
            while time.monotonic() < deadline:
                readable, writable, _ = select.select([tls], [tls] if sent < size else [], [], 1)
                try:
                    if readable or tls.pending():
                        chunk = tls.recv(65536)
                        if not chunk:
                            break
                        answer += chunk
                    elif writable:
                        sent += tls.send(body[sent:sent + 65536])
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    continue
                except OSError:
                    if sent >= size or answer:
                        break
                    sent = size  # the server stopped the upload: read its answer
    return answer


def test_body_size_limit(address: str) -> None:
    # A declared Content-Length over 10 MiB is refused by Caddy itself from the
    # headers, before any of the body is read or proxied: its own 413 (the
    # handle_errors text, not the app's page), on the app's routes and the static
    # ones alike. Streamed to the app instead, which refuses it at once without
    # reading it, the upload raced the app's answer: 413, or 502 when Caddy's write
    # to the app failed first.
    for path in ("/api/notes", "/static/style.css"):
        answer = post_oversized(address, path, 11 * 1024 * 1024)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413 "), (path, answer[:300])
        assert b"\r\nConnection: close" in head, (path, head)
        assert body == b"413 Request Entity Too Large", (path, answer[:600])
    # A small body reaches the app (which refuses it: it is no JSON note).
    response, _ = request(address, "/api/notes", "POST", b"x" * 1000, {"Content-Type": "application/json"})
    assert response.status not in (413, 502)


def test_admin_api_is_a_root_and_caddy_only_socket(host) -> None:
    socket_file = host.file("/run/caddy/admin.sock")
    assert socket_file.is_socket and socket_file.user == "caddy" and socket_file.mode & 0o007 == 0
    # No TCP port of Caddy's but 80 and 443 (22 is sshd's, when the host roles ran).
    ports = set(host.check_output("ss -Htln | awk '{print $4}' | sed 's/.*://' | sort -un").split())
    assert {"80", "443"} <= ports <= {"22", "80", "443"}, ports


def test_key_is_readable_by_root_and_ssl_cert_only(host) -> None:
    key = host.file("/etc/ssl/flask-vps/flaskapp/privkey.pem")
    assert (key.user, key.group, key.mode) == ("root", "ssl-cert", 0o640)
    assert "ssl-cert" in host.check_output("systemctl show -p SupplementaryGroups --value caddy.service")


def test_sandbox_exposure(host) -> None:
    out = host.check_output("systemd-analyze security --no-pager caddy.service")
    score = float(re.search(r"Overall exposure level for caddy.service: ([0-9.]+)", out).group(1))
    record("exposure", {"caddy.service": score})
    assert score <= 2.5  # nginx's with the project's drop-in; Debian's caddy unit: 8.8


def test_reload_is_graceful_through_the_admin_socket(host, address: str) -> None:
    before = caddy_pid(host)
    assert host.run("systemctl reload caddy.service").rc == 0
    assert caddy_pid(host) == before
    assert served_release(address) == STATE["release"]


def test_refused_caddyfile_leaves_the_live_one(host, address: str) -> None:
    before = host.file("/etc/caddy/Caddyfile").content_string
    pid = caddy_pid(host)
    result = run_playbook("broken.yml")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "failed to validate" in output and "read_header" in output, output[-4000:]
    # A body size Caddy could not read is refused before the template, by name.
    result = run_playbook("broken.yml", "-e", "caddy_max_body_size=ten-megabytes")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "caddy_max_body_size (" in output and "must be a size above zero" in output, output[-4000:]
    assert host.file("/etc/caddy/Caddyfile").content_string == before
    assert caddy_pid(host) == pid
    assert served_release(address) == STATE["release"]


def served_certificate(address: str) -> x509.Certificate:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((address, 443), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=SITE) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def test_provided_certificate_is_served_after_a_reload(host, address: str) -> None:
    """tls_mode provided: the operator's files, checked by the tls role, installed
    with the key for ssl-cert, and served by Caddy after a graceful reload; then
    the sandbox's own certificate again."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SITE)])
    now = datetime.now(timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
                   .not_valid_after(now + timedelta(days=30))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(SITE)]), critical=False)
                   .sign(key, hashes.SHA256()))
    (WORK / "provided.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (WORK / "provided.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    (WORK / "provided.key").chmod(0o600)
    pid = caddy_pid(host)
    result = run_playbook("certificate.yml", "-e", "flask_vps_tls_mode=provided",
                          "-e", f"tls_provided_certificate_src={WORK / 'provided.crt'}",
                          "-e", f"tls_provided_private_key_src={WORK / 'provided.key'}")
    assert result.returncode == 0, result.stdout[-6000:]
    for _ in range(20):
        if served_certificate(address).serial_number == certificate.serial_number:
            break
        time.sleep(0.5)
    assert served_certificate(address).serial_number == certificate.serial_number
    installed = host.file("/etc/ssl/flask-vps/flaskapp/privkey.pem")
    assert (installed.group, installed.mode) == ("ssl-cert", 0o640)
    assert caddy_pid(host) == pid
    # Back to the sandbox's CA, and trusted by it again.
    result = run_playbook("certificate.yml")
    assert result.returncode == 0, result.stdout[-6000:]
    for _ in range(20):
        if served_certificate(address).serial_number != certificate.serial_number:
            break
        time.sleep(0.5)
    assert served_release(address) == STATE["release"]  # verified against the sandbox's CA


# --- The release switch under load: no Caddy reload, nothing dropped ----------------

@pytest.mark.only_on("debian13")
def test_deploy_under_load_drops_nothing(host, address: str) -> None:
    pid = caddy_pid(host)
    source = app_copy(f"\n# caddy scenario release {uuid.uuid4().hex}\n")
    result, load, seconds = under_load(address, "deploy.yml", "-e", f"flask_vps_app_source_dir={source}")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    record("deploy", {"seconds": round(seconds, 1), **{k: load[k] for k in ("sent", "failed", "closed_by_server")}})
    assert_strict_load_passed(load, 500)
    assert caddy_pid(host) == pid
    after = served_release(address)
    assert after != STATE["release"] and after in result.stdout
    STATE["deployed"] = after


@pytest.mark.only_on("debian12")
def test_release_failing_its_health_check_never_takes_traffic(address: str) -> None:
    before = served_release(address)
    broken = app_copy((
        "\n\n# Broken on purpose by the caddy scenario: imports, but never healthy.\n"
        "from flask import abort, request\n\n\n"
        "@app.before_request\n"
        "def refuse_health():\n"
        "    if request.path == '/healthz':\n"
        "        abort(503)\n"))
    result, load, _ = under_load(address, "deploy.yml", "-e", f"flask_vps_app_source_dir={broken}",
                                 "-e", "gunicorn_healthcheck_retries=5")
    assert result.returncode != 0, result.stdout[-6000:]
    assert "did not pass its health check" in result.stdout, result.stdout[-6000:]
    record("failed-deploy", {k: load[k] for k in ("sent", "failed", "closed_by_server")})
    assert_strict_load_passed(load, 200)
    assert load["releases"] == [before], load
    assert served_release(address) == before


@pytest.mark.only_on("debian13")
def test_rollback_under_load_drops_nothing(host, address: str) -> None:
    pid = caddy_pid(host)
    result, load, _ = under_load(address, "rollback.yml")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    record("rollback", {k: load[k] for k in ("sent", "failed", "closed_by_server")})
    assert_strict_load_passed(load, 200)
    assert caddy_pid(host) == pid
    assert served_release(address) == STATE["release"]


# --- Switching the front door on a live host ------------------------------------------

class Prober(threading.Thread):
    """A new TLS connection and one request every 20 ms: when the site answered,
    to time the gap while the ports change hands (the strict load counts the
    requests lost on kept-alive connections)."""

    def __init__(self, address: str) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.samples: list[tuple[float, bool]] = []
        self.stop = threading.Event()

    def probe(self) -> bool:
        try:
            response, _ = request(self.address, "/healthz", headers={"Connection": "close"})
            return response.status == 200
        except (OSError, http.client.HTTPException):
            return False

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.monotonic(), self.probe()))
            time.sleep(0.02)

    def longest_gap(self) -> float:
        """Seconds from the last answer before the longest run of failures to the first after it."""
        gap, last_ok, failing = 0.0, None, False
        for moment, ok in self.samples:
            if ok:
                if failing and last_ok is not None:
                    gap = max(gap, moment - last_ok)
                last_ok, failing = moment, False
            else:
                failing = True
        return gap


def switch(host, address: str, proxy: str) -> dict:
    prober = Prober(address)
    prober.start()
    try:
        # As the converge: the host's security is the site scenario's.
        result, load, seconds = under_load(address, "site.yml", "--skip-tags", "host",
                                           "-e", f"flask_vps_proxy={proxy}")
    finally:
        prober.stop.set()
        prober.join()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    figures = {
        "to": proxy, "site_yml_seconds": round(seconds, 1),
        "probes": len(prober.samples), "probes_failed": sum(1 for _, ok in prober.samples if not ok),
        "gap_seconds": round(prober.longest_gap(), 3),
        **{k: load[k] for k in ("sent", "failed", "closed_by_server", "writes_sent", "writes_failed",
                                "writes_missing", "writes_unacknowledged_stored")},
        "errors": load["errors"][:5],
    }
    record(f"switch-to-{proxy}", figures)
    # Whatever was lost in the handover, no acknowledged write is lost and none
    # stored unacknowledged, and the site is back within the stated gap.
    assert load["writes_missing"] == load["writes_unacknowledged_stored"] == 0, load["writes_problems"]
    # The bound README states: the old front door stops before the new one starts
    # (measured 2.2 to 2.6 s with the build machine's load average at 25).
    assert figures["gap_seconds"] < SWITCH_GAP_LIMIT, figures
    assert served_release(address) == STATE["release"]
    return figures


def test_switch_to_nginx_under_load(host, address: str) -> None:
    switch(host, address, "nginx")
    response, _ = request(address, "/healthz")
    assert response.getheader("Server") == "nginx"
    assert host.service("nginx.service").is_running and host.service("nginx.service").is_enabled
    assert not host.service("caddy.service").is_running and not host.service("caddy.service").is_enabled
    key = host.file("/etc/ssl/flask-vps/flaskapp/privkey.pem")
    assert (key.group, key.mode) == ("root", 0o600)


def test_switch_back_to_caddy_under_load(host, address: str) -> None:
    switch(host, address, "caddy")
    response, _ = request(address, "/healthz")
    assert "Server" not in response.headers
    assert host.service("caddy.service").is_running and host.service("caddy.service").is_enabled
    assert not host.service("nginx.service").is_running and not host.service("nginx.service").is_enabled


def test_outside_audit_passes() -> None:
    """scripts/audit.py (make audit on the sandbox) with Caddy in front: the rows the
    front door decides (its sandbox, TLS, headers) and the secrets, with the same
    thresholds as nginx's. Ports, SSH and Lynis are the host roles' (skipped here,
    the site scenario audits them; README: make audit on a Caddy sandbox)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "audit.py"), "--container", CONTAINER, "--server-name", SITE,
         "--ca", str(CA_FILE), "--ssh-key", str(WORK / "operator_ed25519"), "--json", str(WORK / "audit.json"),
         "--only", "systemd", "tls", "headers", "secrets"],
        cwd=ROOT, capture_output=True, text=True, timeout=1200, check=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "caddy.service" in result.stdout
