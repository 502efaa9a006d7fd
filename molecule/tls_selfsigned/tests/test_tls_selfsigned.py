"""The sandbox's HTTPS, checked from the test host with the CA fetched by the role."""

from __future__ import annotations

import datetime
import socket
import ssl
import time
from pathlib import Path

import pytest
from cryptography import x509
from sslyze import (
    CertificateInfoExtraArgument,
    Scanner,
    ScanCommandsExtraArguments,
    ServerNetworkLocation,
    ServerScanRequest,
)
from sslyze.mozilla_tls_profile.tls_config_checker import (
    MozillaTlsConfiguration,
    TlsConfigurationEnum,
    check_server_against_tls_configuration,
)

from conftest import request, run_playbook

NAME = "sandbox.flask-vps.test"


def served_serial_changes(ip: str, cafile: str, before: int) -> bool:
    """nginx's old workers finish their connections after a reload: wait a little."""
    for _ in range(20):
        if served_certificate(ip, cafile).serial_number != before:
            return True
        time.sleep(0.5)
    return False


def served_certificate(ip: str, cafile: str) -> x509.Certificate:
    context = ssl.create_default_context(cafile=cafile)
    with socket.create_connection((ip, 443), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=NAME) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


@pytest.fixture(scope="module")
def scan(ip, cafile):
    location = ServerNetworkLocation(hostname=NAME, port=443, ip_address=ip)
    extra = ScanCommandsExtraArguments(certificate_info=CertificateInfoExtraArgument(custom_ca_file=Path(cafile)))
    scanner = Scanner()
    scanner.queue_scans([ServerScanRequest(server_location=location, scan_commands_extra_arguments=extra)])
    return next(iter(scanner.get_results()))


def test_fetched_ca_is_the_hosts_ca(host, cafile):
    assert Path(cafile).read_text() == host.file("/etc/ssl/flask-vps/ca/ca.crt").content_string


def test_chain_verifies_against_the_fetched_ca(ip, cafile):
    certificate = served_certificate(ip, cafile)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [NAME]


def test_chain_does_not_verify_without_the_ca(ip):
    with pytest.raises(ssl.SSLCertVerificationError):
        request(ip, NAME, "/")


def test_leaf_lives_at_most_90_days(ip, cafile):
    certificate = served_certificate(ip, cafile)
    assert certificate.not_valid_after_utc - certificate.not_valid_before_utc <= datetime.timedelta(days=90, minutes=5)


def test_keys_are_root_only(host):
    for path in ["/etc/ssl/flask-vps/ca/ca.key", "/etc/ssl/flask-vps/flaskapp/privkey.pem"]:
        key = host.file(path)
        assert (key.user, key.group, key.mode) == ("root", "root", 0o600), path


def test_old_tls_versions_are_refused(scan):
    result = scan.scan_result
    for attempt in [result.ssl_3_0_cipher_suites, result.tls_1_0_cipher_suites, result.tls_1_1_cipher_suites]:
        assert attempt.result.accepted_cipher_suites == []
    assert result.tls_1_2_cipher_suites.result.accepted_cipher_suites
    assert result.tls_1_3_cipher_suites.result.accepted_cipher_suites


def test_mozilla_intermediate_profile(scan):
    profile = MozillaTlsConfiguration.get(TlsConfigurationEnum.MOZILLA_INTERMEDIATE)
    check_server_against_tls_configuration(scan, profile)  # raises with the list of issues


def test_no_hsts_with_a_private_ca(ip, cafile):
    response = request(ip, NAME, "/static/absent.css", cafile=cafile)
    assert response.status == 404
    assert "Strict-Transport-Security" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_certificate_due_for_renewal_is_renewed_and_served(ip, cafile):
    before = served_certificate(ip, cafile).serial_number
    result = run_playbook("renew.yml")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "RUNNING HANDLER [tls : Reload nginx for the new certificate]" in result.stdout
    assert served_serial_changes(ip, cafile, before)
