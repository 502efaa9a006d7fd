"""Bad input stops site.yml, deploy.yml and rollback.yml before any host is touched.

Each case runs a real playbook against a project inventory with one wrong value
(`-e @file.yml`, so values keep their YAML type). The first play validates on the
control node: the run must fail, the message must name the variable, and the play
recap must list only localhost, which proves no task ran on a managed host. No
container is needed: the inventory's host is never contacted.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import VENV_BIN, run

# A well-formed public key (its private half was thrown away): the sandbox's own
# operator key may not exist yet where these tests run.
ADMIN_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICKuHhNMA3+KgbFBfSNO8pdcJirc2+4lJwteBH7bCei2 test@flask-vps"
GOOD_SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
# What a filled-in vault of a non-sandbox environment holds.
GOOD_STAGING = {
    "vault_flask_vps_secret_key": GOOD_SECRET,
    "vault_flask_vps_acme_email": "ops@flask-vps.test",
    "vault_flask_vps_admin_keys": [ADMIN_KEY],
}

# (case id, inventory, extra vars, variable the message must name)
BAD_INPUTS = [
    ("missing-secret", "sandbox", {"flask_vps_secret_key": ""}, "flask_vps_secret_key"),
    ("short-secret", "sandbox", {"flask_vps_secret_key": "tooshort"}, "flask_vps_secret_key"),
    ("secret-not-in-vault", "staging", {k: v for k, v in GOOD_STAGING.items() if k != "vault_flask_vps_secret_key"},
     "flask_vps_secret_key"),
    ("placeholder-secret", "staging",
     GOOD_STAGING | {"vault_flask_vps_secret_key": "REPLACE_ME_with_python3_-c_import_secrets_print_secrets.token_hex_32"},
     "flask_vps_secret_key"),
    ("sandbox-secret-in-staging", "staging",
     GOOD_STAGING | {"vault_flask_vps_secret_key": "sandbox-only-value-copied-into-staging-by-mistake"},
     "flask_vps_secret_key"),
    ("placeholder-app-secret", "staging", GOOD_STAGING | {"flask_vps_app_secrets": {"FLASK_API_TOKEN": "change-me"}},
     "flask_vps_app_secrets"),
    ("domains-wrong-type", "sandbox", {"flask_vps_domains": "flask-vps.localhost"}, "flask_vps_domains"),
    ("bad-domain", "sandbox", {"flask_vps_domains": ["flask-vps.localhost", "bad_name!.example.com"]}, "flask_vps_domains"),
    ("no-domain", "sandbox", {"flask_vps_domains": []}, "flask_vps_domains"),
    ("unknown-process-manager", "sandbox", {"flask_vps_process_manager": "upstart"}, "flask_vps_process_manager"),
    ("unknown-tls-mode", "sandbox", {"flask_vps_tls_mode": "letsencrypt"}, "flask_vps_tls_mode"),
    ("acme-without-email", "staging", GOOD_STAGING | {"vault_flask_vps_acme_email": "REPLACE_ME@example.com"},
     "flask_vps_acme_email"),
    ("port-out-of-range", "sandbox", {"flask_vps_ssh_port": 70000}, "flask_vps_ssh_port"),
    ("port-zero", "sandbox", {"flask_vps_ssh_port": 0}, "flask_vps_ssh_port"),
    ("port-wrong-type", "sandbox", {"flask_vps_ssh_port": [22]}, "flask_vps_ssh_port"),
    ("missing-app-source", "sandbox", {"flask_vps_app_source_dir": "/nonexistent/flask-vps-app"}, "flask_vps_app_source_dir"),
    ("bad-git-url", "sandbox", {"flask_vps_app_git_repo": "not a url"}, "flask_vps_app_git_repo"),
    ("git-url-without-path", "sandbox", {"flask_vps_app_git_repo": "https://"}, "flask_vps_app_git_repo"),
    ("unknown-environment", "sandbox", {"flask_vps_environment": "prod"}, "flask_vps_environment"),
    ("no-admin-key", "sandbox", {"flask_vps_admin_keys": []}, "flask_vps_admin_keys"),
    ("placeholder-admin-key", "sandbox", {"flask_vps_admin_keys": ["ssh-ed25519 REPLACE_ME you@laptop"]},
     "flask_vps_admin_keys"),
    ("root-as-admin", "sandbox", {"flask_vps_admin_user": "root"}, "flask_vps_admin_user"),
    ("bad-app-name", "sandbox", {"flask_vps_app_name": "My App"}, "flask_vps_app_name"),
]


def run_playbook(playbook: str, inventory: str, extra: dict, tmp_path: Path):
    varsfile = tmp_path / "vars.yml"
    values = {"flask_vps_admin_keys": [ADMIN_KEY]} | extra
    varsfile.write_text(yaml.safe_dump(values))
    return run([str(VENV_BIN / "ansible-playbook"), f"playbooks/{playbook}",
                "-i", f"inventories/{inventory}", "-e", f"@{varsfile}"])


def recap_hosts(output: str) -> set[str]:
    recap = output.split("PLAY RECAP", 1)[-1]
    return set(re.findall(r"^(\S+)\s+:\s+ok=", recap, flags=re.MULTILINE))


@pytest.mark.parametrize(("inventory", "extra", "variable"),
                         [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_stops_site_before_any_host(inventory: str, extra: dict, variable: str, tmp_path: Path) -> None:
    result = run_playbook("site.yml", inventory, extra, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    failure = "\n".join(line for line in output.splitlines() if "fatal:" in line or "FAILED" in line)
    assert variable in failure, output[-4000:]
    assert recap_hosts(output) == {"localhost"}, output[-4000:]


@pytest.mark.parametrize("playbook", ["deploy.yml", "rollback.yml"])
@pytest.mark.parametrize(("inventory", "extra", "variable"), [
    ("sandbox", {"flask_vps_secret_key": ""}, "flask_vps_secret_key"),
    ("sandbox", {"flask_vps_environment": "qa"}, "flask_vps_environment"),
    ("sandbox", {"flask_vps_process_manager": "runit"}, "flask_vps_process_manager"),
], ids=["missing-secret", "unknown-environment", "unknown-process-manager"])
def test_deploy_and_rollback_validate_first(playbook: str, inventory: str, extra: dict, variable: str,
                                            tmp_path: Path) -> None:
    result = run_playbook(playbook, inventory, extra, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    assert variable in output, output[-4000:]
    assert recap_hosts(output) == {"localhost"}, output[-4000:]


def test_secret_value_never_printed(tmp_path: Path) -> None:
    secret = "REPLACE_ME_this_value_must_not_appear_in_any_output_0123456789"
    result = run_playbook("site.yml", "staging", GOOD_STAGING | {"vault_flask_vps_secret_key": secret}, tmp_path)
    assert result.returncode != 0
    assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize("inventory,extra", [("sandbox", {}), ("staging", GOOD_STAGING)])
def test_good_input_passes_validation(inventory: str, extra: dict, tmp_path: Path) -> None:
    """The checks can pass: without this, a validation that always fails would look fine."""
    result = run_playbook("validate.yml", inventory, extra, tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
