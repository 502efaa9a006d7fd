#!/usr/bin/env python3
"""Audit a provisioned flask-vps host the way an outside reviewer would.

Prints a table (check, figure, threshold, result) and exits non-zero when any
threshold is missed. The target is a local container (the sandbox, or a Molecule
scenario's): commands inside it go through `docker exec`, network checks go from
this host to the container's address, like an attacker on the same network.

    scripts/audit.py --container flask-vps-sandbox --server-name flask-vps.localhost \
        --ca .cache/sandbox/ca.crt --ssh-key .cache/sandbox/id_ed25519
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import ssl
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    check: str
    figure: str
    threshold: str
    passed: bool


@dataclass
class Audit:
    args: argparse.Namespace
    address: str = ""
    rows: list[Row] = field(default_factory=list)

    def record(self, check: str, figure: object, threshold: str, passed: bool) -> None:
        self.rows.append(Row(check, str(figure), threshold, bool(passed)))

    def inside(self, *cmd: str, user: str = "root", check: bool = False,
               stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run cmd in the container; stdin, when given, is how a secret gets in (never argv)."""
        return subprocess.run(
            ["docker", "exec", *(["-i"] if stdin is not None else []), "-u", user, self.args.container, *cmd],
            capture_output=True, text=True, check=check, input=stdin,
        )


def container_address(container: str) -> str:
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", container],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    if not out:
        raise SystemExit(f"audit: container {container} has no IP address")
    return out[0]


# --- systemd sandboxing -----------------------------------------------------------

def exposure(audit: Audit, unit: str) -> float | None:
    result = audit.inside("systemd-analyze", "security", "--no-pager", unit)
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout + result.stderr)
    return float(match.group(1)) if match else None


def check_systemd(audit: Audit) -> None:
    units = audit.inside(
        "systemctl", "list-units", "--type=service", "--state=running", "--plain", "--no-legend",
        f"{audit.args.app_unit_prefix}*",
    ).stdout.split("\n")
    app_units = [line.split()[0] for line in units if line.strip()]
    if not app_units:
        audit.record("systemd exposure: app unit", "no running unit", "≤ 1.5", False)
    for unit in app_units:
        score = exposure(audit, unit)
        audit.record(f"systemd exposure: {unit}", score, "≤ 1.5", score is not None and score <= 1.5)
    front_door = active_front_door(audit)
    limit = DEBIAN_UNIT_EXPOSURE[front_door]
    score = exposure(audit, f"{front_door}.service")
    audit.record(f"systemd exposure: {front_door}.service", score, f"< {limit} (Debian's unit)",
                 score is not None and score < limit)


# The front doors' own units as Debian ships them (systemd-analyze security, no drop-in).
DEBIAN_UNIT_EXPOSURE = {"nginx": 9.6, "caddy": 8.8}


def active_front_door(audit: Audit) -> str:
    """The front door that serves (flask_vps_proxy): nginx unless Caddy runs."""
    caddy = audit.inside("systemctl", "is-active", "caddy.service").stdout.strip()
    return "caddy" if caddy == "active" else "nginx"


# --- TLS ---------------------------------------------------------------------------

def check_tls(audit: Audit) -> None:
    from sslyze import (
        CertificateInfoExtraArgument, Scanner, ScanCommandsExtraArguments, ServerNetworkConfiguration,
        ServerNetworkLocation, ServerScanRequest, ServerScanStatusEnum,
    )
    from sslyze.mozilla_tls_profile.tls_config_checker import (
        MozillaTlsConfiguration, ServerNotCompliantWithTlsConfiguration, TlsConfigurationEnum,
        check_server_against_tls_configuration,
    )

    location = ServerNetworkLocation(audit.args.server_name, 443, ip_address=audit.address)
    request = ServerScanRequest(
        server_location=location,
        network_configuration=ServerNetworkConfiguration(audit.args.server_name),
        scan_commands_extra_arguments=ScanCommandsExtraArguments(
            certificate_info=CertificateInfoExtraArgument(custom_ca_file=Path(audit.args.ca))
        ),
    )
    scanner = Scanner()
    scanner.queue_scans([request])
    result = next(iter(scanner.get_results()))
    if result.scan_status != ServerScanStatusEnum.COMPLETED:
        audit.record("TLS: sslyze scan", result.scan_status.value, "completed", False)
        return
    try:
        check_server_against_tls_configuration(
            result, MozillaTlsConfiguration.get(TlsConfigurationEnum.MOZILLA_INTERMEDIATE)
        )
        audit.record("TLS: Mozilla intermediate (sslyze)", "compliant", "compliant", True)
    except ServerNotCompliantWithTlsConfiguration as error:
        audit.record("TLS: Mozilla intermediate (sslyze)", "; ".join(error.issues), "compliant", False)

    scans = result.scan_result
    for name, attempt in (("1.0", scans.tls_1_0_cipher_suites), ("1.1", scans.tls_1_1_cipher_suites)):
        accepted = len(attempt.result.accepted_cipher_suites)
        audit.record(f"TLS {name} refused", f"{accepted} suites accepted", "0", accepted == 0)
    deployment = scans.certificate_info.result.certificate_deployments[0]
    leaf = deployment.received_certificate_chain[0]
    days = (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days
    audit.record("TLS: certificate lifetime (days)", days, "≤ 90", days <= 90)
    audit.record("TLS: chain verifies against the CA", bool(deployment.verified_certificate_chain), "True",
                 bool(deployment.verified_certificate_chain))


# --- HTTP headers ------------------------------------------------------------------

REQUIRED_HEADERS = {
    "x-content-type-options": lambda v: v.lower() == "nosniff",
    "referrer-policy": lambda v: bool(v),
    "content-security-policy": lambda v: "default-src" in v and "frame-ancestors" in v,
    "x-frame-options": lambda v: v.upper() in {"DENY", "SAMEORIGIN"},
}


def fetch_headers(audit: Audit, path: str) -> tuple[int, dict[str, str]]:
    """GET path over TLS from the container's address, speaking to the site's name."""
    context = ssl.create_default_context(cafile=audit.args.ca)
    request = f"GET {path} HTTP/1.1\r\nHost: {audit.args.server_name}\r\nConnection: close\r\n\r\n"
    data = b""
    with socket.create_connection((audit.address, 443), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=audit.args.server_name) as tls:
            tls.sendall(request.encode())
            while chunk := tls.recv(65536):
                data += chunk
    status_line, *header_lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers


def check_headers(audit: Audit) -> None:
    for path in ("/", audit.args.static_path, "/this-page-does-not-exist"):
        status, headers = fetch_headers(audit, path)
        missing = [name for name, ok in REQUIRED_HEADERS.items() if not ok(headers.get(name, ""))]
        audit.record(f"headers on {path} ({status})", "all present" if not missing else "missing " + ", ".join(missing),
                     ", ".join(REQUIRED_HEADERS), not missing)


# --- ports ---------------------------------------------------------------------------

async def open_ports(address: str, ports, concurrency: int = 2000, timeout: float = 3.0) -> list[int]:
    semaphore = asyncio.Semaphore(concurrency)
    found: list[int] = []

    async def probe(port: int) -> None:
        async with semaphore:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout=timeout)
            except (OSError, asyncio.TimeoutError):
                return
            found.append(port)
            writer.close()

    await asyncio.gather(*(probe(port) for port in ports))
    return sorted(found)


def check_ports(audit: Audit) -> None:
    expected = sorted({audit.args.ssh_port, 80, 443})
    # The firewall drops rather than refuses, so every closed port costs a full
    # timeout: all ports in parallel first, then the expected and the found ones
    # again one by one with a patient timeout, so a busy machine cannot hide one.
    found = set(asyncio.run(open_ports(audit.address, range(1, 65536), timeout=3.0)))
    for port in sorted(found | set(expected)):
        if asyncio.run(open_ports(audit.address, [port], timeout=10.0)):
            found.add(port)
        else:
            found.discard(port)
    audit.record("open TCP ports (all 65535 scanned)", sorted(found), f"exactly {expected}", sorted(found) == expected)


# --- secrets -------------------------------------------------------------------------

def env_value(audit: Audit, name: str) -> str | None:
    """One variable of the app's environment file, or None."""
    for line in audit.inside("cat", audit.args.env_file).stdout.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == name:
            return value.strip().strip("'\"")
    return None


def secret_value(audit: Audit) -> str:
    secret = env_value(audit, "FLASK_SECRET_KEY")
    if secret is None:
        raise SystemExit(f"audit: no FLASK_SECRET_KEY in {audit.args.env_file}")
    return secret


# The secret goes to every search on stdin (grep -f -, a Python reading stdin), so
# the audit itself never puts it in a command line.
CMDLINE_SEARCH = r"""
import os, sys
secret = sys.stdin.read().strip().encode()
hits = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if secret in f.read():
                hits.append(pid)
    except OSError:
        pass
print(len(hits))
"""


def check_leaks(audit: Audit, label: str, value: str) -> None:
    """Where a secret value must never be: files others can read, command lines, and the
    verbose Ansible output given with --ansible-output. The value goes in on stdin."""
    readable = audit.inside(
        "grep", "-rlsF", "--exclude-dir=proc", "--exclude-dir=sys", "--exclude-dir=dev", "-f", "-", "/",
        user="nobody", stdin=value + "\n",
    ).stdout.split()
    audit.record(f"{label} in files readable by non-root", readable[:5] or "none", "none", not readable)
    cmdlines = audit.inside("python3", "-c", CMDLINE_SEARCH, stdin=value).stdout.strip()
    audit.record(f"{label} in process command lines", cmdlines, "0", cmdlines == "0")
    if audit.args.ansible_output:
        text = Path(audit.args.ansible_output).read_text(errors="replace")
        audit.record(f"{label} in Ansible output (-v run)", "found" if value in text else "absent", "absent",
                     value not in text)


def check_secrets(audit: Audit) -> None:
    secret = secret_value(audit)
    check_leaks(audit, "secret", secret)
    tracked = subprocess.run(["git", "grep", "-lF", "-f", "-"], cwd=ROOT, capture_output=True, text=True,
                             input=secret + "\n").stdout.split()
    audit.record("secret in tracked files", tracked or "none", "none", not tracked)
    for env in ("production", "staging"):
        vault = ROOT / "inventories" / env / "group_vars" / "all" / "vault.yml"
        if not vault.exists():
            audit.record(f"{env} vault.yml encrypted", "not created yet (vault.yml.example)", "encrypted or absent", True)
            continue
        encrypted = vault.read_text().startswith("$ANSIBLE_VAULT")
        audit.record(f"{env} vault.yml encrypted", "encrypted" if encrypted else "PLAIN TEXT", "encrypted or absent",
                     encrypted)


# --- PostgreSQL ---------------------------------------------------------------------

def psql(audit: Audit, query: str) -> str:
    """One query as the postgres superuser over the socket; the query goes on stdin."""
    return audit.inside("psql", "-XAtq", "-v", "ON_ERROR_STOP=1", user="postgres", stdin=query, check=True).stdout.strip()


def check_database(audit: Audit) -> None:
    url = env_value(audit, audit.args.database_url_env)
    if not url or not url.startswith("postgresql"):
        audit.record("PostgreSQL", "not used (SQLite)", "rows below only with PostgreSQL", True)
        return
    parsed = urlsplit(url)
    role, password = unquote(parsed.username or ""), unquote(parsed.password or "")
    port_open = bool(asyncio.run(open_ports(audit.address, [5432], timeout=10.0)))
    listen = psql(audit, "SHOW listen_addresses;")
    local_only = listen in ("", "localhost", "127.0.0.1", "::1", "127.0.0.1,::1", "localhost,127.0.0.1")
    audit.record("PostgreSQL 5432 from outside", "open" if port_open else "closed",
                 "closed (database on this host)" if local_only else "open only to app hosts", not port_open or not local_only)
    ssl_on = psql(audit, "SHOW ssl;")
    audit.record("PostgreSQL listen_addresses / ssl", f"'{listen}' / {ssl_on}",
                 "no TCP address, or ssl on", local_only or ssl_on == "on")
    weak = psql(audit, "SELECT count(*) FROM pg_hba_file_rules WHERE auth_method IN ('trust', 'md5', 'password');")
    methods = psql(audit, "SELECT string_agg(DISTINCT auth_method, ',') FROM pg_hba_file_rules;")
    audit.record("pg_hba trust/md5/password lines", f"{weak} (methods: {methods})", "0", weak == "0")
    stored = psql(audit, "SELECT coalesce(left(rolpassword, 14), 'none') FROM pg_authid WHERE rolname = "
                  + "'" + role.replace("'", "''") + "';")
    audit.record(f"role {role}'s password stored as", stored.split("$")[0] or "none", "SCRAM-SHA-256",
                 stored.startswith("SCRAM-SHA-256$"))
    if password:
        check_leaks(audit, "database password", password)


# --- SSH -----------------------------------------------------------------------------

def ssh_login(audit: Audit, user: str, *options: str) -> bool:
    result = subprocess.run(
        ["ssh", "-p", str(audit.args.ssh_port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
         *options, f"{user}@{audit.address}", "true"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    return result.returncode == 0


def check_ssh(audit: Audit) -> None:
    effective = audit.inside("sshd", "-T", "-C", "user=root,host=localhost,addr=127.0.0.1").stdout.lower()
    for key, want in (("passwordauthentication", "no"), ("kbdinteractiveauthentication", "no"),
                      ("permitrootlogin", "no"), ("allowtcpforwarding", "no"), ("x11forwarding", "no")):
        match = re.search(rf"^{key} (\S+)", effective, re.M)
        value = match.group(1) if match else "?"
        audit.record(f"sshd -T {key}", value, want, value == want)
    key = ("-i", audit.args.ssh_key, "-o", "IdentitiesOnly=yes")
    admin = ssh_login(audit, audit.args.admin_user, *key)
    audit.record(f"SSH as {audit.args.admin_user} with the operator key", "accepted" if admin else "refused", "accepted", admin)
    root = ssh_login(audit, "root", *key)
    audit.record("SSH as root with the operator key", "accepted" if root else "refused", "refused", not root)
    password = ssh_login(audit, audit.args.admin_user, "-o", "PreferredAuthentications=password,keyboard-interactive",
                         "-o", "PubkeyAuthentication=no")
    audit.record("SSH password login", "accepted" if password else "refused", "refused", not password)


# --- lynis ---------------------------------------------------------------------------

def check_lynis(audit: Audit) -> None:
    if audit.inside("sh", "-c", "command -v lynis").returncode != 0:
        audit.inside("sh", "-c", "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lynis"
                     " >/dev/null", check=True)
    audit.inside("lynis", "audit", "system", "--quick", "--no-colors")
    report = audit.inside("cat", "/var/log/lynis-report.dat").stdout
    match = re.search(r"^hardening_index=(\d+)", report, re.M)
    index = int(match.group(1)) if match else 0
    audit.record("lynis hardening index", index, "≥ 80", index >= 80)


CHECKS = {
    "systemd": check_systemd,
    "tls": check_tls,
    "headers": check_headers,
    "ports": check_ports,
    "secrets": check_secrets,
    "database": check_database,
    "ssh": check_ssh,
    "lynis": check_lynis,
}


def render(rows: list[Row]) -> str:
    lines = ["| check | figure | threshold | result |", "|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row.check} | {row.figure} | {row.threshold} | {'pass' if row.passed else 'FAIL'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--container", default="flask-vps-sandbox")
    parser.add_argument("--server-name", default="flask-vps.localhost")
    parser.add_argument("--ca", default=str(ROOT / ".cache" / "sandbox" / "ca.crt"))
    parser.add_argument("--ssh-key", default=str(ROOT / ".cache" / "sandbox" / "id_ed25519"))
    parser.add_argument("--ssh-port", type=int, default=22)
    parser.add_argument("--admin-user", default="deploy")
    parser.add_argument("--app-unit-prefix", default="flaskapp")
    parser.add_argument("--env-file", default="/etc/flask-vps/flaskapp.env")
    parser.add_argument("--database-url-env", default="FLASK_DATABASE_URL")
    parser.add_argument("--static-path", default="/static/style.css")
    parser.add_argument("--ansible-output", help="output of a verbose Ansible run to search for the secret")
    parser.add_argument("--only", nargs="*", choices=sorted(CHECKS), help="run only these checks")
    parser.add_argument("--json", help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)

    audit = Audit(args)
    audit.address = container_address(args.container)
    for name in args.only or CHECKS:
        try:
            CHECKS[name](audit)
        except Exception as error:  # a check that cannot run is a failed check, with its reason
            audit.record(f"{name} check", f"error: {error}", "runs", False)
    print(f"flask-vps audit of {args.container} ({audit.address}), "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n")
    print(render(audit.rows))
    if args.json:
        Path(args.json).write_text(json.dumps([row.__dict__ for row in audit.rows], indent=2))
    failed = [row for row in audit.rows if not row.passed]
    print(f"\n{len(audit.rows) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
