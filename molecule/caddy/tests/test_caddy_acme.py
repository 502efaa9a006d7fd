"""Caddy's own ACME client: a certificate from Pebble over real HTTP-01 through
Caddy on port 80, its renewal, and the site in front of an echo app (the headers
Caddy sets for the app)."""

from __future__ import annotations

import json
import os
import shlex
import tempfile
import time

import pytest
import requests
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from conftest import request
from pytest_helpers.certificates import certificate_probes

testinfra_hosts = [f"ansible://acme?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}"]

NAME = "acme.flask-vps.test"
ADMIN = "/run/caddy/admin.sock"
served_certificate, served_serial_changes = certificate_probes(NAME)


def pebble_pem(ip: str, path: str) -> str:
    """Pebble's issuing root or intermediate, from its management port (a test fixture)."""
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    response = requests.get(f"https://{ip}:15000/{path}", verify=False, timeout=10)
    response.raise_for_status()
    return response.text


@pytest.fixture(scope="module")
def pebble_root(ip):
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as handle:
        handle.write(pebble_pem(ip, "roots/0"))
    return handle.name


def wait_for_certificate(ip: str, cafile: str) -> x509.Certificate:
    """Caddy obtains the certificate in the background after it starts."""
    error: Exception | None = None
    for _ in range(60):
        try:
            return served_certificate(ip, cafile)
        except OSError as exc:  # ssl.SSLError is an OSError
            error = exc
            time.sleep(1)
    raise AssertionError(f"no certificate from Pebble after 60 s: {error}")


# Caddy's admin API over its unix socket, from inside the container (no curl
# there): Caddy accepts only an empty Host on a unix socket.
ADMIN_CLIENT = f"""
import http.client, socket, sys
class Admin(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect("{ADMIN}")
method, path, body = sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else None)
admin = Admin("")
admin.request(method, path, body=body, headers={{"Content-Type": "application/json"}} if body else {{}})
response = admin.getresponse()
print(response.read().decode())
sys.exit(0 if response.status < 300 else 1)
"""


def admin(host, method: str, path: str, body: str | None = None) -> str:
    """Caddy's admin API, as root inside the container."""
    command = ["python3", "-c", ADMIN_CLIENT, method, path] + ([body] if body is not None else [])
    return host.check_output(" ".join(shlex.quote(part) for part in command))


def test_certificate_chains_to_pebbles_root(ip, pebble_root):
    certificate = wait_for_certificate(ip, pebble_root)  # raises unless the chain verifies
    intermediate = x509.load_pem_x509_certificate(pebble_pem(ip, "intermediates/0").encode())
    assert certificate.issuer == intermediate.subject
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [NAME]
    assert isinstance(certificate.public_key(), EllipticCurvePublicKey)


def test_challenge_was_http01_through_caddy(host):
    # certmagic logs "served key authentication" when it answers an HTTP-01
    # challenge on port 80 (TLS-ALPN-01 is off here: caddy_acme_tlsalpn false).
    log = host.check_output("journalctl -u caddy.service --no-pager -o cat")
    assert "served key authentication" in log, log[-3000:]
    assert "disable_tlsalpn_challenge" in host.file("/etc/caddy/Caddyfile").content_string
    environment = host.check_output("systemctl show -p Environment --value pebble")
    assert "PEBBLE_VA_ALWAYS_VALID" not in environment


def test_acme_account_and_keys_are_caddys_only(host):
    data = "/var/lib/caddy/.local/share/caddy"
    keys = host.check_output(f"find {data} -name '*.key' -type f")
    assert keys, "no key in Caddy's storage"
    for path in keys.splitlines():
        key = host.file(path)
        assert key.user == "caddy" and key.mode & 0o077 == 0, path


def test_forwarded_headers_are_set_not_passed_through(ip, pebble_root):
    spoofed = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "http",
               "X-Forwarded-Host": "evil.example", "X-Forwarded-Port": "8080", "X-Real-IP": "203.0.113.7"}
    response = request(ip, NAME, "/api/notes?x=1", cafile=pebble_root, headers=spoofed)
    assert response.status == 200
    seen = json.loads(response.body)
    assert seen["path"] == "/api/notes?x=1"
    headers = seen["headers"]
    assert headers["host"] == NAME
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-host"] == NAME
    assert headers["x-forwarded-for"] == headers["x-real-ip"]
    assert "203.0.113.7" not in headers["x-forwarded-for"]
    assert headers["x-forwarded-for"].count(".") == 3  # one address: the client Caddy saw
    assert "x-forwarded-port" not in headers
    # The app's own X-Frame-Options (SAMEORIGIN) loses to Caddy's.
    assert response.headers.get_all("X-Frame-Options") == ["DENY"]
    # ACME certificates are trusted: HSTS is sent.
    assert response.headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains"


def test_renewal_is_served_without_restart(host, ip, pebble_root):
    """Debian's Pebble (2.4) issues 5-year certificates and Caddy 2.6 cannot ask for
    a shorter one, so the lifetime Caddy counts with is shortened instead: its
    renewal window grows to 99.9999 % of the certificate's life (through the admin
    API, as an operator could), which makes the certificate due at once, and its
    scan for due certificates runs every second instead of every 10 minutes (a
    loaded certificate is only renewed by that scan). Caddy renews it in the
    background and serves the new one; then the Caddyfile is loaded again
    (systemctl reload) and the defaults are back."""
    before = wait_for_certificate(ip, pebble_root).serial_number
    main_pid = host.check_output("systemctl show -p MainPID --value caddy")
    automation = json.loads(admin(host, "GET", "/config/apps/tls/automation"))
    index = next(i for i, p in enumerate(automation["policies"]) if NAME in p.get("subjects", []))
    automation["policies"][index]["renewal_window_ratio"] = 0.999999
    automation["renew_interval"] = "1s"
    since = host.check_output("date +%s")
    admin(host, "PATCH", "/config/apps/tls/automation", json.dumps(automation))
    try:
        # Up to 4 minutes: a renewal that fails once is retried by certmagic after
        # a minute (its first back-off), and CI's 2 cores run 3 scenarios at once.
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if served_certificate(ip, pebble_root).serial_number != before:
                break
            time.sleep(1)
        assert served_certificate(ip, pebble_root).serial_number != before, host.check_output(
            f"journalctl -u caddy.service --no-pager -o cat --since @{since} | grep -v 'served key authentication' | tail -n 60")
    finally:
        host.run("systemctl reload caddy.service")
    assert host.check_output("systemctl show -p MainPID --value caddy") == main_pid
    log = host.check_output("journalctl -u caddy.service --no-pager -o cat")
    assert "renew" in log.lower()
