"""Static checks: YAML style, ansible-lint's production profile, playbook syntax,
and that the collections requirements.yml names are installed and satisfy it."""

from __future__ import annotations

import json

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from conftest import ROOT, VENV_BIN, run

PLAYBOOKS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "playbooks").glob("*.yml"))


def test_yamllint() -> None:
    result = run([str(VENV_BIN / "yamllint"), "--strict", "."])
    assert result.returncode == 0, result.stdout + result.stderr


def test_ansible_lint_production_profile() -> None:
    result = run([str(VENV_BIN / "ansible-lint"), "--profile", "production", "--offline"])
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-8000:]


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_playbook_syntax(playbook: str) -> None:
    result = run([str(VENV_BIN / "ansible-playbook"), "--syntax-check", "-i", "inventories/sandbox", playbook])
    assert result.returncode == 0, result.stdout + result.stderr


def installed_collections() -> dict[str, str]:
    result = run([str(VENV_BIN / "ansible-galaxy"), "collection", "list", "--format", "json"])
    assert result.returncode == 0, result.stderr
    found: dict[str, str] = {}
    for collections in json.loads(result.stdout).values():
        for name, info in collections.items():
            found.setdefault(name, info["version"])
    return found


def test_required_collections_are_bundled() -> None:
    required = yaml.safe_load((ROOT / "requirements.yml").read_text())["collections"]
    installed = installed_collections()
    for item in required:
        name, spec = item["name"], SpecifierSet(item["version"])
        assert name in installed, f"{name} is in requirements.yml but not installed"
        assert Version(installed[name]) in spec, f"{name} {installed[name]} does not satisfy {spec}"
