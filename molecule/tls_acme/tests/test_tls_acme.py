"""A certificate from Pebble over real HTTP-01 through nginx, and its renewal."""

from __future__ import annotations

import tempfile

import pytest
import requests
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from pytest_helpers.certificates import certificate_probes

NAME = "acme.flask-vps.test"


def pebble_pem(ip: str, path: str) -> str:
    """Pebble's issuing root or intermediate, from its management port (a test fixture)."""
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    response = requests.get(f"https://{ip}:15000/{path}", verify=False, timeout=10)
    response.raise_for_status()
    return response.text


served_certificate, served_serial_changes = certificate_probes(NAME)


@pytest.fixture(scope="module")
def pebble_root(ip):
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as handle:
        handle.write(pebble_pem(ip, "roots/0"))
    return handle.name


def test_certificate_chains_to_pebbles_root(ip, pebble_root):
    certificate = served_certificate(ip, pebble_root)  # raises unless the chain verifies
    intermediate = x509.load_pem_x509_certificate(pebble_pem(ip, "intermediates/0").encode())
    assert certificate.issuer == intermediate.subject
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [NAME]
    assert isinstance(certificate.public_key(), EllipticCurvePublicKey)


def test_challenge_went_through_nginx(host):
    log = host.file("/var/log/nginx/access.log").content_string
    assert "GET /.well-known/acme-challenge/" in log
    assert any("/.well-known/acme-challenge/" in line and '" 200 ' in line for line in log.splitlines())


def test_pebble_does_not_skip_validation(host):
    environment = host.check_output("systemctl show -p Environment --value pebble")
    assert "PEBBLE_VA_ALWAYS_VALID" not in environment


def test_site_files_point_at_certbots_live_certificate(host):
    for name in ["fullchain.pem", "privkey.pem"]:
        path = f"/etc/ssl/flask-vps/flaskapp/{name}"
        assert host.file(path).is_symlink
        assert host.check_output(f"readlink {path}") == f"/etc/letsencrypt/live/flaskapp/{name}"


def test_keys_are_root_only(host):
    for directory in ["/etc/letsencrypt/live", "/etc/letsencrypt/archive", "/etc/letsencrypt/accounts"]:
        assert host.file(directory).mode == 0o700, directory
        assert host.file(directory).user == "root"
    keys = host.check_output("find /etc/letsencrypt/archive /etc/letsencrypt/accounts -name '*key*' -type f")
    assert keys
    for path in keys.splitlines():
        assert host.file(path).mode & 0o077 == 0, path


def test_renewal_timer_is_active(host):
    assert host.service("certbot.timer").is_enabled
    assert host.service("certbot.timer").is_running
    assert "REQUESTS_CA_BUNDLE=/etc/pebble/listener-ca.crt" in host.check_output(
        "systemctl show -p Environment --value certbot.service")


def test_renewal_not_due_changes_nothing(host, ip, pebble_root):
    before = served_certificate(ip, pebble_root).serial_number
    out = host.run("systemctl start certbot.service && journalctl -u certbot.service --no-pager -n 20")
    assert out.rc == 0, out.stderr
    assert served_certificate(ip, pebble_root).serial_number == before


def test_forced_renewal_is_served_without_restart(host, ip, pebble_root):
    before = served_certificate(ip, pebble_root).serial_number
    main_pid = host.check_output("systemctl show -p MainPID --value nginx")
    renew = host.run("REQUESTS_CA_BUNDLE=/etc/pebble/listener-ca.crt certbot renew --force-renewal "
                     "--cert-name flaskapp --no-random-sleep-on-renew --non-interactive")
    assert renew.rc == 0, renew.stdout + renew.stderr
    log = host.file("/var/log/letsencrypt/letsencrypt.log").content_string
    assert "Running deploy-hook command: /etc/letsencrypt/renewal-hooks/deploy/50-flask-vps-reload-nginx" in log
    assert served_serial_changes(ip, pebble_root, before)
    assert host.check_output("systemctl show -p MainPID --value nginx") == main_pid
