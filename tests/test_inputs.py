"""Bad input stops site.yml, deploy.yml and rollback.yml before any host is touched.

Each case runs a real playbook against a project inventory with one wrong value
(`-e @file.yml`, so values keep their YAML type). The first play validates on the
control node: the run must fail in that play, the message must name the variable,
and the play recap must list only localhost with no change, which proves no task
ran on a managed host. No container is needed: the inventory's host is never
contacted. README's "Refused before any host changes" lists BAD_INPUTS and
CERTIFICATE_CASES with their count; test_readme_lists_the_matrix keeps the two in
step.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import ROOT, VENV_BIN, run

# A well-formed public key (its private half was thrown away): the sandbox's own
# operator key may not exist yet where these tests run.
ADMIN_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICKuHhNMA3+KgbFBfSNO8pdcJirc2+4lJwteBH7bCei2 test@flask-vps"
GOOD_SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
# What a filled-in vault of a non-sandbox environment holds.
GOOD_DATABASE_PASSWORD = "Vq3xT8rLk2NwZp5hYc7dMf9sGb4jHa6e"
GOOD_STAGING = {
    "vault_flask_vps_secret_key": GOOD_SECRET,
    "vault_flask_vps_database_password": GOOD_DATABASE_PASSWORD,
    "vault_flask_vps_acme_email": "ops@flask-vps.test",
    "vault_flask_vps_admin_keys": [ADMIN_KEY],
}
VALIDATION_PLAY = "Validate the inputs before touching any host"
LONG_LABEL = "a" * 64
# Valid labels, 70 characters in all: too long for a certificate's common name.
LONG_FIRST_NAME = ("b" * 60) + ".example.com"

# (case id, inventory, extra vars, variable the message must name, what is refused)
BAD_INPUTS = [
    # Secrets
    ("missing-secret", "sandbox", {"flask_vps_secret_key": ""}, "flask_vps_secret_key", "no secret key"),
    ("short-secret", "sandbox", {"flask_vps_secret_key": "tooshort"}, "flask_vps_secret_key", "shorter than 32 characters"),
    ("whitespace-secret", "sandbox", {"flask_vps_secret_key": " " * 40}, "flask_vps_secret_key", "40 spaces"),
    ("repeated-char-secret", "sandbox", {"flask_vps_secret_key": "a" * 48}, "flask_vps_secret_key",
     "one character repeated"),
    ("secret-not-in-vault", "staging", {k: v for k, v in GOOD_STAGING.items() if k != "vault_flask_vps_secret_key"},
     "flask_vps_secret_key", "vault without the secret key"),
    ("placeholder-secret", "staging",
     GOOD_STAGING | {"vault_flask_vps_secret_key": "REPLACE_ME_with_python3_-c_import_secrets_print_secrets.token_hex_32"},
     "flask_vps_secret_key", "the example placeholder"),
    ("sandbox-secret-in-staging", "staging",
     GOOD_STAGING | {"vault_flask_vps_secret_key": "sandbox-only-value-copied-into-staging-by-mistake"},
     "flask_vps_secret_key", "the sandbox's value outside the sandbox"),
    ("placeholder-app-secret", "staging", GOOD_STAGING | {"flask_vps_app_secrets": {"FLASK_API_TOKEN": "change-me"}},
     "flask_vps_app_secrets", "a placeholder app secret"),
    # The database
    ("unknown-database", "sandbox", {"flask_vps_database": "mysql"}, "flask_vps_database", "a database other than postgresql or sqlite"),
    ("database-password-not-in-vault", "staging",
     {k: v for k, v in GOOD_STAGING.items() if k != "vault_flask_vps_database_password"},
     "flask_vps_database_password", "postgresql with a vault without the database password"),
    ("short-database-password", "sandbox", {"flask_vps_database_password": "short"}, "flask_vps_database_password",
     "a database password shorter than 16 characters"),
    ("placeholder-database-password", "staging",
     GOOD_STAGING | {"vault_flask_vps_database_password": "REPLACE_ME_with_python3_-c_import_secrets_print_secrets.token_urlsafe_32"},
     "flask_vps_database_password", "the example placeholder"),
    ("sandbox-database-password-in-staging", "staging",
     GOOD_STAGING | {"vault_flask_vps_database_password": "sandbox-only-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"},
     "flask_vps_database_password", "the sandbox's database password outside the sandbox"),
    ("database-password-is-the-secret-key", "staging", GOOD_STAGING | {"vault_flask_vps_database_password": GOOD_SECRET},
     "flask_vps_database_password", "the secret key reused as the database password"),
    # A database host of its own ("sandbox+x": the sandbox with tests/inventories/x.yml added)
    ("two-database-hosts", "sandbox+two-database-hosts", {}, "flask_vps_db", "two hosts in the database host group"),
    ("database-group-outside-flask-vps", "sandbox+database-host-outside", {}, "flask_vps_db",
     "a database host group that is not a child of flask_vps"),
    ("sqlite-with-database-host", "sandbox+database-host", {"flask_vps_database": "sqlite"}, "flask_vps_database",
     "sqlite with a database host"),
    ("private-address-not-ipv4", "sandbox+database-host", {"flask_vps_private_address": "db.internal"},
     "flask_vps_private_address", "a name instead of the private IPv4 address"),
    # Several hosts (docs/growing-beyond-one-server.md)
    ("two-load-balancers", "sandbox+two-load-balancers", {}, "flask_vps_lb", "two hosts in the load balancer group"),
    ("sqlite-with-two-web-hosts", "sandbox+two-web-hosts", {"flask_vps_database": "sqlite"}, "flask_vps_database",
     "sqlite with two web hosts"),
    ("two-web-hosts-without-database-host", "sandbox+two-web-hosts", {}, "flask_vps_db",
     "two web hosts, each with a PostgreSQL of its own"),
    ("caddy-behind-load-balancer", "sandbox+cluster", {"flask_vps_proxy": "caddy"}, "flask_vps_proxy",
     "Caddy as the front door behind a load balancer"),
    ("repeated-char-app-secret", "sandbox", {"flask_vps_app_secrets": {"FLASK_API_TOKEN": "x" * 40}},
     "flask_vps_app_secrets", "an app secret of one character repeated"),
    ("whitespace-app-secret", "sandbox", {"flask_vps_app_secrets": {"FLASK_API_TOKEN": "\t  \t"}},
     "flask_vps_app_secrets", "an app secret of whitespace"),
    # The app's environment
    ("env-name-with-space", "sandbox", {"flask_vps_app_env": {"FLASK_MY SETTING": "1"}}, "flask_vps_app_env",
     "a name with a space"),
    ("env-name-leading-digit", "sandbox", {"flask_vps_app_secrets": {"1_TOKEN": GOOD_SECRET}}, "flask_vps_app_secrets",
     "a name starting with a digit"),
    ("env-nested-mapping", "sandbox", {"flask_vps_app_env": {"FLASK_DB": {"host": "db", "port": 5432}}},
     "flask_vps_app_env", "a mapping as a value"),
    ("env-list-value", "sandbox", {"flask_vps_app_env": {"FLASK_HOSTS": ["a", "b"]}}, "flask_vps_app_env",
     "a list as a value"),
    ("env-as-string", "sandbox", {"flask_vps_app_env": "FLASK_DEBUG=0"}, "flask_vps_app_env",
     "a string instead of a mapping"),
    ("secret-key-env-name", "sandbox", {"flask_vps_secret_key_env": "FLASK-SECRET-KEY"}, "flask_vps_secret_key_env",
     "an invalid variable name for the key"),
    # Domains
    ("domains-wrong-type", "sandbox", {"flask_vps_domains": "flask-vps.localhost"}, "flask_vps_domains",
     "a string instead of a list"),
    ("bad-domain", "sandbox", {"flask_vps_domains": ["flask-vps.localhost", "bad_name!.example.com"]},
     "flask_vps_domains", "characters DNS does not allow"),
    ("no-domain", "sandbox", {"flask_vps_domains": []}, "flask_vps_domains", "an empty list"),
    ("domain-label-too-long", "sandbox", {"flask_vps_domains": [f"{LONG_LABEL}.example.com"]}, "flask_vps_domains",
     "a label over 63 characters"),
    ("domain-too-long", "sandbox", {"flask_vps_domains": [".".join(["c" * 60] * 4) + ".example.com"]},
     "flask_vps_domains", "a name over 253 characters"),
    ("first-domain-over-64", "sandbox", {"flask_vps_domains": [LONG_FIRST_NAME]}, "flask_vps_domains",
     "a first name too long for the certificate's subject"),
    ("server-names-string", "sandbox", {"nginx_server_names": "flask-vps.localhost"}, "nginx_server_names",
     "a role variable's list given as a string"),
    # Choices
    ("unknown-environment", "sandbox", {"flask_vps_environment": "prod"}, "flask_vps_environment", "an unknown environment"),
    ("unknown-process-manager", "sandbox", {"flask_vps_process_manager": "upstart"}, "flask_vps_process_manager",
     "an unknown process manager"),
    ("unknown-process-manager-role-var", "sandbox", {"gunicorn_process_manager": "runit"}, "gunicorn_process_manager",
     "the same, set on the role"),
    ("unknown-app-server", "sandbox", {"flask_vps_app_server": "bjoern"}, "flask_vps_app_server", "an unknown app server"),
    ("unknown-app-server-role-var", "sandbox", {"gunicorn_app_server": "daphne"}, "gunicorn_app_server",
     "the same, set on the role"),
    ("asgi-without-uvicorn", "sandbox", {"flask_vps_app_interface": "asgi"}, "flask_vps_app_interface",
     "an ASGI app with a server other than uvicorn"),
    ("unknown-proxy", "sandbox", {"flask_vps_proxy": "apache"}, "flask_vps_proxy", "an unknown front door"),
    ("unknown-tls-mode", "sandbox", {"flask_vps_tls_mode": "letsencrypt"}, "flask_vps_tls_mode", "an unknown TLS mode"),
    ("unknown-tls-mode-role-var", "sandbox", {"tls_mode": "manual"}, "tls_mode", "the same, set on the role"),
    ("unknown-journald-storage", "sandbox", {"base_journald_storage": "disk"}, "base_journald_storage",
     "a choice the base role does not have"),
    ("unknown-firewall-logging", "sandbox", {"firewall_logging": "verbose"}, "firewall_logging",
     "a choice the firewall role does not have"),
    # ACME
    ("acme-without-email", "staging", GOOD_STAGING | {"vault_flask_vps_acme_email": "REPLACE_ME@example.com"},
     "flask_vps_acme_email", "ACME with the placeholder address"),
    ("acme-without-email-sandbox", "sandbox", {"flask_vps_tls_mode": "acme"}, "flask_vps_acme_email",
     "ACME without an address in the sandbox"),
    # SSH port
    ("port-out-of-range", "sandbox", {"flask_vps_ssh_port": 70000}, "flask_vps_ssh_port", "70000"),
    ("port-zero", "sandbox", {"flask_vps_ssh_port": 0}, "flask_vps_ssh_port", "0"),
    ("port-wrong-type", "sandbox", {"flask_vps_ssh_port": [22]}, "flask_vps_ssh_port", "a list"),
    ("port-not-a-number", "sandbox", {"flask_vps_ssh_port": "ssh"}, "flask_vps_ssh_port", "a word"),
    ("port-http", "sandbox", {"flask_vps_ssh_port": 80}, "flask_vps_ssh_port", "80, nginx's"),
    ("port-https", "sandbox", {"flask_vps_ssh_port": 443}, "flask_vps_ssh_port", "443, nginx's"),
    ("role-port-http", "sandbox", {"ssh_port": 80}, "ssh_port", "80 set on the ssh role"),
    ("port-of-a-firewall-rule", "sandbox",
     {"flask_vps_ssh_port": 8080, "firewall_rules": [{"port": "8080", "comment": "metrics"}]}, "flask_vps_ssh_port",
     "a port firewall_rules opens for something else"),
    ("port-in-a-firewall-range", "sandbox",
     {"flask_vps_ssh_port": 6005, "firewall_rules": [{"port": "6000:6010", "proto": "tcp", "comment": "workers"}]},
     "flask_vps_ssh_port", "a port inside a range firewall_rules opens"),
    ("firewall-port-differs", "sandbox", {"firewall_ssh_port": 2222}, "firewall_ssh_port",
     "a firewall port other than sshd's"),
    # Users
    ("root-as-admin", "sandbox", {"flask_vps_admin_user": "root"}, "flask_vps_admin_user", "root as the admin"),
    ("root-as-app", "sandbox", {"flask_vps_app_name": "root"}, "flask_vps_app_name", "root as the app's user"),
    ("admin-as-app", "sandbox", {"flask_vps_app_name": "deploy"}, "flask_vps_app_name", "the admin user as the app's"),
    ("system-user-as-app", "sandbox", {"flask_vps_app_name": "daemon"}, "flask_vps_app_name", "daemon"),
    ("sshd-as-app", "sandbox", {"flask_vps_app_name": "sshd"}, "flask_vps_app_name", "sshd"),
    ("sudo-group-as-app", "sandbox", {"flask_vps_app_name": "sudo"}, "flask_vps_app_name",
     "sudo, whose group would give the app root"),
    ("www-data-as-app-user", "sandbox", {"gunicorn_user": "www-data"}, "gunicorn_user", "www-data, nginx's user"),
    ("bad-app-name", "sandbox", {"flask_vps_app_name": "My App"}, "flask_vps_app_name", "a name with a space"),
    ("no-admin-key", "sandbox", {"flask_vps_admin_keys": []}, "flask_vps_admin_keys", "no key"),
    ("placeholder-admin-key", "sandbox", {"flask_vps_admin_keys": ["ssh-ed25519 REPLACE_ME you@laptop"]},
     "flask_vps_admin_keys", "a placeholder key"),
    # Paths
    ("healthcheck-without-slash", "sandbox", {"gunicorn_healthcheck_path": "ping"}, "gunicorn_healthcheck_path",
     "ping (the check asked for / and passed)"),
    ("health-path-without-slash", "sandbox", {"flask_vps_health_path": "healthz"}, "flask_vps_health_path",
     "healthz"),
    ("relative-static-dir", "sandbox", {"nginx_app_static_dir": "webapp/static"}, "nginx_app_static_dir",
     "a relative directory"),
    ("relative-app-root", "sandbox", {"flask_vps_app_root": "srv/flaskapp"}, "flask_vps_app_root",
     "a relative directory"),
    ("relative-sysctl-file", "sandbox", {"base_sysctl_file": "60-hardening.conf"}, "base_sysctl_file",
     "a relative file"),
    # Counts
    ("workers-negative", "sandbox", {"gunicorn_workers": -1}, "gunicorn_workers", "-1"),
    ("workers-zero", "sandbox", {"gunicorn_workers": 0}, "gunicorn_workers", "0"),
    ("workers-not-a-number", "sandbox", {"gunicorn_workers": "many"}, "gunicorn_workers", "a word"),
    ("keep-no-release", "sandbox", {"flask_app_keep_releases": 0}, "flask_app_keep_releases", "0"),
    ("keep-one-release", "sandbox", {"flask_app_keep_releases": 1}, "flask_app_keep_releases",
     "1 (nothing to roll back to)"),
    ("gunicorn-timeout-zero", "sandbox", {"gunicorn_timeout": 0}, "gunicorn_timeout", "0"),
    ("healthcheck-timeout-zero", "sandbox", {"gunicorn_healthcheck_timeout": 0}, "gunicorn_healthcheck_timeout", "0"),
    ("healthcheck-retries-zero", "sandbox", {"gunicorn_healthcheck_retries": 0}, "gunicorn_healthcheck_retries", "0"),
    ("worker-connections-zero", "sandbox", {"nginx_worker_connections": 0}, "nginx_worker_connections", "0"),
    ("max-auth-tries-zero", "sandbox", {"ssh_max_auth_tries": 0}, "ssh_max_auth_tries", "0 (no login possible)"),
    # Booleans that are strings
    ("use-uv-string-false", "sandbox", {"flask_vps_use_uv": "false"}, "flask_vps_use_uv",
     "the string \"false\" (-e flask_vps_use_uv=false)"),
    ("unlock-string-true", "sandbox", {"flask_vps_deploy_unlock": "true"}, "flask_vps_deploy_unlock",
     "the string \"true\""),
    ("role-bool-string", "sandbox", {"nginx_hsts": "no"}, "nginx_hsts", "the string \"no\" on a role variable"),
    ("firewall-enabled-string", "sandbox", {"firewall_enabled": "yes"}, "firewall_enabled", "the string \"yes\""),
    # Files on the control node
    ("missing-app-source", "sandbox", {"flask_vps_app_source_dir": "/nonexistent/flask-vps-app"},
     "flask_vps_app_source_dir", "a directory that does not exist"),
    ("source-without-requirements", "sandbox", {"flask_vps_app_source_dir": str(ROOT / "docs")},
     "flask_app_requirements_file", "a source without requirements.txt"),
    ("missing-requirements-file", "sandbox", {"flask_app_requirements_file": "requirements-prod.txt"},
     "flask_app_requirements_file", "a requirements file that does not exist"),
    ("missing-hook-file", "sandbox", {"flask_vps_deploy_hooks": {"before_build": ["hooks/absent.yml"]}},
     "flask_vps_deploy_hooks", "a hook file that does not exist"),
    ("unknown-hook-phase", "sandbox", {"flask_vps_deploy_hooks": {"before_deploy": []}}, "flask_vps_deploy_hooks",
     "a phase ship.yml does not have"),
    ("bad-git-url", "sandbox", {"flask_vps_app_git_repo": "not a url"}, "flask_vps_app_git_repo", "not a URL"),
    ("git-url-without-path", "sandbox", {"flask_vps_app_git_repo": "https://"}, "flask_vps_app_git_repo",
     "a URL without a host or path"),
    # Background workers and scheduled jobs
    ("worker-bad-name", "sandbox", {"flask_vps_workers": [{"name": "Jobs Queue", "command": "flask --app wsgi worker", "count": 1}]},
     "flask_vps_workers", "a worker name that cannot name a unit"),
    ("worker-count-zero", "sandbox", {"flask_vps_workers": [{"name": "jobs", "command": "flask --app wsgi worker", "count": 0}]},
     "flask_vps_workers", "a worker with count 0"),
    ("worker-without-command", "sandbox", {"flask_vps_workers": [{"name": "jobs", "count": 2}]},
     "flask_vps_workers", "a worker without a command"),
    ("duplicate-worker-names", "sandbox", {"flask_vps_workers": [{"name": "jobs", "command": "flask --app wsgi worker"}, {"name": "jobs", "command": "flask --app wsgi worker"}]},
     "flask_vps_workers", "two workers with one name"),
    ("timer-without-schedule", "sandbox", {"flask_vps_timers": [{"name": "tick", "command": "flask --app wsgi tick"}]},
     "flask_vps_timers", "a timer without on_calendar"),
    ("timer-bad-name", "sandbox", {"flask_vps_timers": [{"name": "../tick", "command": "flask --app wsgi tick", "on_calendar": "hourly"}]},
     "flask_vps_timers", "a timer name with a slash"),
    ("worker-host-outside", "sandbox+worker-outside", {},
     "flask_vps_worker", "a worker host outside flask_vps"),
    ("worker-on-database-host", "sandbox+cluster+worker-on-database-host", {},
     "flask_vps_db", "the database host in flask_vps_worker too"),
]


def run_playbook(playbook: str, inventory: str, extra: dict, tmp_path: Path, *args: str):
    """inventory: a project inventory, or "name+extra" for that inventory with
    tests/inventories/extra.yml added (more hosts and groups)."""
    varsfile = tmp_path / "vars.yml"
    values = {"flask_vps_admin_keys": [ADMIN_KEY]} | extra
    varsfile.write_text(yaml.safe_dump(values))
    project, *added = inventory.split("+")
    sources = [f"inventories/{project}", *(f"tests/inventories/{name}.yml" for name in added)]
    return run([str(VENV_BIN / "ansible-playbook"), f"playbooks/{playbook}",
                *(arg for source in sources for arg in ("-i", source)), "-e", f"@{varsfile}", *args])


def recap(output: str) -> dict[str, str]:
    text = output.split("PLAY RECAP", 1)[-1]
    return dict(re.findall(r"^(\S+)\s+:\s+(ok=.*)$", text, flags=re.MULTILINE))


def assert_refused_before_any_host(result, variable: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    # Failed in the validation play: no other play started.
    assert re.findall(r"^PLAY \[(.*?)\]", output, flags=re.MULTILINE) == [VALIDATION_PLAY], output[-4000:]
    failure = "\n".join(line for line in output.splitlines()
                        if line.startswith(("fatal:", "failed:", "[ERROR]")) or "FAILED" in line)
    assert variable in failure, output[-4000:]
    hosts = recap(output)
    assert set(hosts) == {"localhost"} and "changed=0 " in hosts["localhost"], output[-4000:]


@pytest.mark.parametrize(("inventory", "extra", "variable"),
                         [case[1:4] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_stops_site_before_any_host(inventory: str, extra: dict, variable: str, tmp_path: Path) -> None:
    assert_refused_before_any_host(run_playbook("site.yml", inventory, extra, tmp_path), variable)


@pytest.mark.parametrize("playbook", ["deploy.yml", "rollback.yml"])
@pytest.mark.parametrize(("inventory", "extra", "variable"), [
    ("sandbox", {"flask_vps_secret_key": ""}, "flask_vps_secret_key"),
    ("sandbox", {"flask_vps_environment": "qa"}, "flask_vps_environment"),
    ("sandbox", {"gunicorn_workers": 0}, "gunicorn_workers"),
], ids=["missing-secret", "unknown-environment", "workers-zero"])
def test_deploy_and_rollback_validate_first(playbook: str, inventory: str, extra: dict, variable: str,
                                            tmp_path: Path) -> None:
    assert_refused_before_any_host(run_playbook(playbook, inventory, extra, tmp_path), variable)


def test_boolean_from_the_command_line_is_refused_with_the_json_form(tmp_path: Path) -> None:
    """`-e name=false` gives the string "false", which Jinja finds true."""
    result = run_playbook("site.yml", "sandbox", {}, tmp_path, "-e", "flask_vps_use_uv=false")
    assert_refused_before_any_host(result, "flask_vps_use_uv")
    assert """-e '{"flask_vps_use_uv": false}'""" in result.stdout + result.stderr


def test_secret_value_never_printed(tmp_path: Path) -> None:
    for secret in ("REPLACE_ME_this_value_must_not_appear_in_any_output_0123456789", "z" * 40):
        result = run_playbook("site.yml", "staging", GOOD_STAGING | {"vault_flask_vps_secret_key": secret}, tmp_path)
        assert result.returncode != 0
        assert secret not in result.stdout + result.stderr


# Provided certificates: made here with the cryptography package Ansible itself needs.
def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _certificate(key: ec.EllipticCurvePrivateKey, names: list[str], days: int) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=2)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """PEM files: a good pair for flask-vps.localhost, and each kind of bad one."""
    folder = tmp_path_factory.mktemp("certificates")
    key, other = _key(), _key()
    pem = serialization.Encoding.PEM

    def cert(name: str, names: list[str], days: int) -> str:
        return _write(folder / name, _certificate(key, names, days).public_bytes(pem))

    key_file = _write(folder / "key.pem", key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()))
    return {
        "good": cert("good.pem", ["flask-vps.localhost"], 90),
        "key": key_file,
        "other-key": _write(folder / "other.pem", other.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                                      serialization.NoEncryption())),
        "wrong-domain": cert("wrong-domain.pem", ["other.example.com"], 90),
        "expiring": cert("expiring.pem", ["flask-vps.localhost"], 5),
        "expired": cert("expired.pem", ["flask-vps.localhost"], -1),
    }


PROVIDED = {"flask_vps_tls_mode": "provided"}
# (case id, certificate file, key file, variable the message must name, what is refused)
CERTIFICATE_CASES = [
    ("provided-cert-missing", "/nonexistent/fullchain.pem", "key", "tls_provided_certificate_src",
     "a certificate file that does not exist"),
    ("provided-key-missing", "good", "/nonexistent/privkey.pem", "tls_provided_private_key_src",
     "a key file that does not exist"),
    ("provided-key-as-cert", "key", "key", "tls_provided_certificate_src", "the key given as the certificate"),
    ("provided-key-mismatch", "good", "other-key", "tls_provided_private_key", "a key of another certificate"),
    ("provided-wrong-domain", "wrong-domain", "key", "tls_provided_certificate", "a certificate for other names"),
    ("provided-expiring", "expiring", "key", "tls_provided_certificate", "5 days left"),
    ("provided-expired", "expired", "key", "tls_provided_certificate", "expired yesterday"),
]


@pytest.mark.parametrize(("cert", "key", "variable"), [case[1:4] for case in CERTIFICATE_CASES],
                         ids=[case[0] for case in CERTIFICATE_CASES])
def test_bad_provided_certificate_stops_site(cert: str, key: str, variable: str, certificates: dict[str, str],
                                             tmp_path: Path) -> None:
    extra = PROVIDED | {"tls_provided_certificate_src": certificates.get(cert, cert),
                        "tls_provided_private_key_src": certificates.get(key, key)}
    assert_refused_before_any_host(run_playbook("site.yml", "sandbox", extra, tmp_path), variable)


GOOD_INPUTS = {
    "sandbox": ("sandbox", {}),
    "staging": ("staging", GOOD_STAGING),
    "production": ("production", GOOD_STAGING),
    # A 187-character second name: nginx's server_names_hash_bucket_size is sized for it.
    "long-domain": ("sandbox", {"flask_vps_domains": ["flask-vps.localhost", ".".join(["e" * 60] * 3) + ".test"]}),
    "booleans-in-json": ("sandbox", {"flask_vps_use_uv": False, "flask_vps_deploy_unlock": True}),
    "ssh-port-2222": ("sandbox", {"flask_vps_ssh_port": 2222}),
    "caddy": ("sandbox", {"flask_vps_proxy": "caddy"}),
    # A database host of its own beside the app's host (docs/database-host.md).
    "database-host": ("sandbox+database-host", {}),
    "database-host-private-address": ("sandbox+database-host", {"flask_vps_private_address": "10.0.0.5"}),
    # A load balancer, two web hosts and a database host.
    "cluster": ("sandbox+cluster", {}),
    # ... with a host that runs the background workers only.
    "cluster-worker-host": ("sandbox+cluster+worker-host", {}),
    "caddy-acme": ("staging", {"flask_vps_proxy": "caddy", **GOOD_STAGING}),
    # A rule that closes the SSH port to a network opens nothing.
    "ssh-port-with-deny-rule": ("sandbox", {"flask_vps_ssh_port": 2222,
                                            "firewall_rules": [{"port": "2222", "rule": "deny", "from": "10.0.0.0/8"}]}),
}


@pytest.mark.parametrize(("inventory", "extra"), GOOD_INPUTS.values(), ids=GOOD_INPUTS.keys())
def test_good_input_passes_validation(inventory: str, extra: dict, tmp_path: Path) -> None:
    """The checks can pass: without this, a validation that always fails would look fine."""
    result = run_playbook("validate.yml", inventory, extra, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    # Every role's argument spec was checked, none skipped.
    roles = sorted(p.parent.parent.name for p in ROOT.glob("roles/*/meta/argument_specs.yml"))
    checked = re.findall(r"^ok: \[localhost\] => \(item=(\w+)\)$", output, flags=re.MULTILINE)
    assert roles and all(role in checked for role in roles), output[-4000:]


def test_good_provided_certificate_passes_validation(certificates: dict[str, str], tmp_path: Path) -> None:
    extra = PROVIDED | {"tls_provided_certificate_src": certificates["good"],
                        "tls_provided_private_key_src": certificates["key"]}
    result = run_playbook("validate.yml", "sandbox", extra, tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


def test_readme_lists_the_matrix() -> None:
    """README's table is this matrix: the same cases, variables and count."""
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| `(\w+)` \| (.+) \|$", readme, flags=re.MULTILINE)
    cases = [(c[0], c[3], c[4]) for c in BAD_INPUTS + CERTIFICATE_CASES]
    assert rows == cases
    assert len({case for case, _, _ in cases}) == len(cases)
    assert f"### Refused before any host changes: {len(cases)} bad inputs" in readme


def test_nginx_bucket_size_fits_the_longest_name(tmp_path: Path) -> None:
    """The sizes the nginx role picks, at the boundaries measured with `nginx -t`
    (nginx 1.22): a name of 46 characters fits a 64-byte bucket, 47 needs 128, 111
    needs 256 and 239 needs 512."""
    expected = {46: 64, 47: 128, 110: 128, 111: 256, 238: 256, 239: 512, 253: 512}
    playbook = tmp_path / "bucket.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "vars_files": [str(ROOT / "roles" / "nginx" / "vars" / "main.yml")],
        "tasks": [{"ansible.builtin.debug": {"msg": "size {{ item }} {{ nginx_server_names_hash_bucket_size }}"},
                   "vars": {"nginx_server_names": "{{ ['short.example', 'n' * item] }}"},
                   "loop": sorted(expected)}],
    }]))
    result = run([str(VENV_BIN / "ansible-playbook"), str(playbook)])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    sizes = {int(length): int(size) for length, size in re.findall(r'"size (\d+) (\d+)"', result.stdout)}
    assert sizes == expected
