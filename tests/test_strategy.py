"""The project's strategy (plugins/strategy/mitogen_linear.py, set in ansible.cfg):
Mitogen when it is installed, Ansible's own linear strategy after one warning when
it is not. Both run a play on the control node (the scenarios and the sandbox run
every remote play through it)."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import VENV_BIN, run

PLAY = "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n"
MISSING = "Mitogen is not installed"


def play(tmp_path: Path, **env: str):
    playbook = tmp_path / "ping.yml"
    playbook.write_text(PLAY)
    return run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                "-e", f"ansible_python_interpreter={VENV_BIN / 'python'}", str(playbook)],
               env={**os.environ, "ANSIBLE_FORCE_COLOR": "false", **env})


def test_mitogen_strategy_loads_with_the_pinned_ansible(tmp_path: Path) -> None:
    result = play(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert MISSING not in result.stderr
    assert "ok=1" in result.stdout


def test_falls_back_to_plain_linear_without_mitogen(tmp_path: Path) -> None:
    # A package of that name that cannot be imported hides the installed one.
    hidden = tmp_path / "hide" / "ansible_mitogen"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ImportError("hidden by the test")\n')
    result = play(tmp_path, PYTHONPATH=str(hidden.parent))
    assert result.returncode == 0, result.stdout + result.stderr
    assert MISSING in result.stderr
    assert "ok=1" in result.stdout
