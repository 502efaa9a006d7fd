"""Variables and docs cannot drift apart: every variable the docs name exists, each
role's defaults/main.yml and meta/argument_specs.yml describe the same variables
with the same defaults, and the role READMEs' tables are the ones
scripts/role-docs.py generates. No containers: the whole file runs in seconds.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import ROOT, run

ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir())
SCENARIOS = {p.name for p in (ROOT / "molecule").iterdir() if p.is_dir()}
DOCS = sorted({ROOT / "README.md", ROOT / "app" / "README.md", *ROOT.glob("docs/**/*.md"),
               *ROOT.glob("roles/*/README.md")})
PREFIXES = sorted({*ROLES, "flask_vps"}, key=len, reverse=True)
# A role-prefixed name that is not part of a path, file name or longer word.
VARIABLE = re.compile(r"(?<![\w./-])((?:" + "|".join(map(re.escape, PREFIXES)) + r")_[a-z0-9_]+)(?![\w-])")
# Task and play keys whose mapping's keys are variables.
VARIABLE_MAPS = {"vars", "set_fact", "ansible.builtin.set_fact"}


class Loader(yaml.SafeLoader):
    """Safe YAML that reads Ansible's tagged scalars (!vault, !unsafe) as plain strings."""


def tagged_scalar(loader: Loader, suffix: str, node: yaml.Node) -> str | None:
    return loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None


Loader.add_multi_constructor("!", tagged_scalar)


def load_yaml(path: Path) -> Any:
    text = path.read_text() if path.exists() else ""
    return None if text.startswith("$ANSIBLE_VAULT") else yaml.load(text, Loader=Loader)


def keys(path: Path) -> set[str]:
    data = load_yaml(path)
    return set(data) if isinstance(data, dict) else set()


def argument_specs(role: str) -> dict[str, Any]:
    return load_yaml(ROOT / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]


def defaults(role: str) -> dict[str, Any]:
    return load_yaml(ROOT / "roles" / role / "defaults" / "main.yml") or {}


def names_set_in(node: Any) -> Iterator[str]:
    """Variables a play or task list sets: vars, set_fact keys and register names."""
    if isinstance(node, list):
        for item in node:
            yield from names_set_in(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in VARIABLE_MAPS and isinstance(value, dict):
                yield from (k for k in value if k != "cacheable")
            elif key == "register" and isinstance(value, str):
                yield value
            yield from names_set_in(value)


def defined_variables() -> set[str]:
    names: set[str] = set()
    for role in ROLES:
        for spec in argument_specs(role).values():
            names.update(spec.get("options") or {})
        names.update(defaults(role))
        names.update(keys(ROOT / "roles" / role / "vars" / "main.yml"))
    for pattern in ("group_vars/**/*.yml", "inventories/*/group_vars/**/*.yml", "inventories/*/host_vars/**/*.yml"):
        for path in ROOT.glob(pattern):
            names.update(keys(path))
    for pattern in ("playbooks/**/*.yml", "roles/*/tasks/*.yml"):
        for path in ROOT.glob(pattern):
            names.update(names_set_in(load_yaml(path)))
    # Inventory groups the docs name (flask_vps_db): those an inventory or a
    # scenario's platforms define.
    for pattern in ("inventories/*/hosts.yml", "tests/inventories/*.yml"):
        for path in ROOT.glob(pattern):
            names.update(groups_in(load_yaml(path)))
    for path in ROOT.glob("molecule/*/molecule.yml"):
        for platform in (load_yaml(path) or {}).get("platforms") or []:
            names.update(platform.get("groups") or [])
    return names


def groups_in(inventory: Any) -> Iterator[str]:
    """Group names of a YAML inventory: its top-level keys and their children."""
    if isinstance(inventory, dict):
        for name, group in inventory.items():
            yield name
            if isinstance(group, dict):
                yield from groups_in(group.get("children"))


def mentions(doc: Path) -> Iterator[tuple[int, str]]:
    """(line number, name) of each role-prefixed variable the document names."""
    for number, line in enumerate(doc.read_text().splitlines(), start=1):
        for name in VARIABLE.findall(line):
            if not name.endswith("_") and name not in SCENARIOS:
                yield number, name


@pytest.fixture(scope="module")
def defined() -> set[str]:
    return defined_variables()


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_name_only_defined_variables(doc: Path, defined: set[str]) -> None:
    unknown = [f"{doc.relative_to(ROOT)}:{n}: {name}" for n, name in mentions(doc) if name not in defined]
    if unknown:
        pytest.fail("variables no role, group_vars or playbook defines:\n  " + "\n  ".join(unknown), pytrace=False)


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_argument_specs_name_the_same_variables(role: str) -> None:
    spec = set(argument_specs(role)["main"].get("options") or {})
    default = set(defaults(role))
    problems = [f"roles/{role}/defaults/main.yml only: {name}" for name in sorted(default - spec)]
    problems += [f"roles/{role}/meta/argument_specs.yml (main) only: {name}" for name in sorted(spec - default)]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def same(a: Any, b: Any) -> bool:
    """Equal parsed YAML, where true is not 1 and "1" is not 1."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_argument_specs_agree(role: str) -> None:
    options = argument_specs(role)["main"].get("options") or {}
    values = defaults(role)
    problems = [
        f"roles/{role}: {name} is {values[name]!r} in defaults/main.yml, {option['default']!r} in meta/argument_specs.yml"
        for name, option in options.items()
        if name in values and "default" in option and not same(option["default"], values[name])
    ]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_role_readme_tables_are_generated() -> None:
    result = run([sys.executable, "scripts/role-docs.py", "--check"])
    if result.returncode != 0:
        pytest.fail(result.stderr, pytrace=False)


@pytest.mark.parametrize("role", ROLES)
def test_argument_spec_descriptions_hold_no_jinja(role: str) -> None:
    # validate_argument_spec templates the whole spec: "{{ vault_x }}" in a
    # description fails every run where vault_x is undefined.
    problems = [
        f"roles/{role}/meta/argument_specs.yml: {entry}.{name}'s description has '{{{{'"
        for entry, spec in argument_specs(role).items()
        for name, option in (spec.get("options") or {}).items()
        if "{{" in str(option.get("description", ""))
    ]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
