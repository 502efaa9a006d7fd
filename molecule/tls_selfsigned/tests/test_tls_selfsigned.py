"""The sandbox's HTTPS, checked from the test host with the CA fetched by the role."""

from __future__ import annotations

import datetime
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
from pytest_helpers.certificates import certificate_probes

NAME = "sandbox.flask-vps.test"


served_certificate, served_serial_changes = certificate_probes(NAME)


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
    assert "RUNNING HANDLER [tls : Reload the front door for the new certificate]" in result.stdout
    assert served_serial_changes(ip, cafile, before)


# tls_mode provided, last: it replaces the self-signed certificate on this host.

def issue(tmp_path: Path, name: str, days: int = 30) -> tuple[Path, Path, Path]:
    """A CA and a leaf for name, as an operator's certificate authority would hand them over."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(subject, issuer, key, signer, extensions, not_after):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=2)).not_valid_after(not_after))
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signer, hashes.SHA256())

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, f"test CA {tmp_path.name}")])
    ca = cert(ca_name, ca_name, ca_key, ca_key,
              [(x509.BasicConstraints(ca=True, path_length=0), True)], now + datetime.timedelta(days=365))
    leaf = cert(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)]), ca_name, leaf_key, ca_key,
                [(x509.SubjectAlternativeName([x509.DNSName(name)]), False)], now + datetime.timedelta(days=days))
    pem = serialization.Encoding.PEM
    paths = tmp_path / "ca.crt", tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    paths[2].write_bytes(leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    return paths


def served_by(ip: str, cafile: str) -> int | None:
    """The serial served once the chain verifies against cafile (nginx's old workers drain first)."""
    for _ in range(20):
        try:
            return served_certificate(ip, cafile).serial_number
        except ssl.SSLCertVerificationError:
            time.sleep(0.5)
    return None


def test_provided_certificate_from_files_is_served(host, ip, tmp_path):
    ca, chain, key = issue(tmp_path, NAME)
    result = run_playbook("provided.yml", "-e", f"tls_provided_certificate_src={chain}",
                          "-e", f"tls_provided_private_key_src={key}")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "BEGIN PRIVATE KEY" not in result.stdout + result.stderr
    expected = x509.load_pem_x509_certificate(chain.read_bytes()).serial_number
    assert served_by(ip, str(ca)) == expected
    privkey = host.file("/etc/ssl/flask-vps/flaskapp/privkey.pem")
    assert (privkey.user, privkey.group, privkey.mode) == ("root", "root", 0o600)
    again = run_playbook("provided.yml", "-e", f"tls_provided_certificate_src={chain}",
                         "-e", f"tls_provided_private_key_src={key}")
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]


def test_provided_key_of_another_certificate_is_refused_and_nothing_changes(host, ip, tmp_path):
    """The pair comes as text (as from a vault variable); the key belongs to another certificate."""
    before = host.file("/etc/ssl/flask-vps/flaskapp/fullchain.pem").content_string
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, chain, _ = issue(tmp_path / "a", NAME)
    _, _, other_key = issue(tmp_path / "b", NAME)
    vars_file = tmp_path / "vars.yml"
    vars_file.write_text(
        "tls_provided_certificate: |\n" + "".join(f"  {line}\n" for line in chain.read_text().splitlines())
        + "tls_provided_private_key: |\n" + "".join(f"  {line}\n" for line in other_key.read_text().splitlines()))
    result = run_playbook("provided.yml", "-e", f"@{vars_file}")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "the provided private key does not belong to the provided certificate" in output, output[-3000:]
    assert "BEGIN PRIVATE KEY" not in output
    assert host.file("/etc/ssl/flask-vps/flaskapp/fullchain.pem").content_string == before
    assert host.run("nginx -t").rc == 0


def test_expired_provided_certificate_is_refused(host, tmp_path):
    _, chain, key = issue(tmp_path, NAME, days=-1)
    result = run_playbook("provided.yml", "-e", f"tls_provided_certificate_src={chain}",
                          "-e", f"tls_provided_private_key_src={key}")
    assert result.returncode != 0
    assert "the provided certificate expired on" in result.stdout + result.stderr, result.stdout[-3000:]
