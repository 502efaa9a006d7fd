"""The project-wide group_vars/ at the top of the repository really reach every
environment, and each environment's own values win over them.

Each inventory's group_vars/all/00_project links to ../../../../group_vars/all and
sorts before the environment's main.yml and vault.yml. These tests ask Ansible
itself what a host ends up with, so they fail if the link breaks or the order flips.
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from conftest import ROOT, VENV_BIN, run

ENVIRONMENTS = {"production": "web1", "staging": "web1", "sandbox": "sandbox"}
# Only the top-level group_vars set these.
PROJECT_ONLY = {"flask_vps_admin_user": "deploy", "flask_vps_process_manager": "systemd",
                "flask_vps_app_name": "flaskapp", "flask_vps_first_contact_user": "root"}


def host_values(environment: str, host: str, names: list[str], *extra: str) -> dict:
    expr = "{{ {" + ", ".join(f"'{n}': {n}" for n in names) + "} | to_json }}"
    # --playbook-dir as for playbooks/*.yml: an ad-hoc command otherwise takes the
    # current directory as the playbook's, and from the repository root that would
    # load the top-level group_vars/ a second time, above the inventory's.
    result = run([str(VENV_BIN / "ansible"), host, "-i", f"inventories/{environment}", "-c", "local",
                  "--playbook-dir", "playbooks",
                  "-m", "ansible.builtin.debug", "-a", f"msg={expr}", "-o", *extra])
    assert result.returncode == 0, result.stdout + result.stderr
    payload = result.stdout.split("=>", 1)[1]
    msg = json.loads(payload)["msg"]
    return msg if isinstance(msg, dict) else json.loads(msg)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_project_defaults_reach_every_environment(environment: str) -> None:
    link = ROOT / "inventories" / environment / "group_vars" / "all" / "00_project"
    assert link.resolve() == (ROOT / "group_vars" / "all").resolve()
    values = host_values(environment, ENVIRONMENTS[environment], list(PROJECT_ONLY) + ["gunicorn_app_name"])
    for name, expected in PROJECT_ONLY.items():
        assert values[name] == expected, (environment, name, values[name])
    # The wiring in the top-level roles.yml: one name reaches every role.
    assert values["gunicorn_app_name"] == "flaskapp"


@pytest.mark.parametrize(("environment", "tls_mode", "domains"), [
    ("production", "acme", ["example.com", "www.example.com"]),
    ("staging", "acme", ["staging.example.com"]),
    ("sandbox", "selfsigned", ["flask-vps.localhost"]),
])
def test_environment_overrides_project_defaults(environment: str, tls_mode: str, domains: list[str]) -> None:
    names = ["flask_vps_environment", "flask_vps_tls_mode", "flask_vps_domains", "nginx_server_names", "tls_domains"]
    values = host_values(environment, ENVIRONMENTS[environment], names)
    # The project default is an empty list and acme: these come from the environment.
    assert values["flask_vps_environment"] == environment
    assert values["flask_vps_tls_mode"] == tls_mode
    assert values["flask_vps_domains"] == domains
    # ...and reach the roles through the project's wiring.
    assert values["nginx_server_names"] == domains
    assert values["tls_domains"] == domains


def test_sandbox_secret_is_random_private_and_kept() -> None:
    values = host_values("sandbox", "sandbox", ["flask_vps_secret_key", "flask_vps_sandbox_dir"])
    secret = values["flask_vps_secret_key"]
    assert re.fullmatch(r"[0-9a-fA-F]{64}", secret), "not 64 random hex digits"
    kept = Path(values["flask_vps_sandbox_dir"]) / "secret_key"
    assert kept.read_text().split()[0] == secret
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    # The next run reads the same key (sessions survive), and git knows nothing of it.
    assert host_values("sandbox", "sandbox", ["flask_vps_secret_key"])["flask_vps_secret_key"] == secret
    assert run(["git", "grep", "-lF", "-e", secret]).stdout == ""


@pytest.mark.parametrize("setting", ["ssh_port", "flask_vps_ssh_port"])
def test_the_firewall_follows_the_ssh_port_however_it_is_set(setting: str) -> None:
    """Issue 13: ssh_port set directly once left the firewall on 22."""
    values = host_values("production", "web1", ["ssh_port", "firewall_ssh_port"], "-e", json.dumps({setting: 2200}))
    assert values == {"ssh_port": 2200, "firewall_ssh_port": 2200}
