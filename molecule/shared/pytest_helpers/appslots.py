"""Helpers shared by the flask_app and app_servers tests:
run a deploy from the test (as an operator would) and talk to the app's sockets from
inside the container as a chosen user."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from .network import PROJECT_DIR as ROOT, ansible_playbook, ansible_playbook_command, scenario_dir

APP_DIR = ROOT / "app"
# The same value the scenarios' converge.yml set; tests look for it everywhere.
SECRET = "molecule-only-3c1e0f5b9d2a4e7c8b6a1f0e9d8c7b6a5f4e3d2c"
APP = "flaskapp"
LIVE_SOCKET = f"/var/lib/flask-vps/{APP}/live.sock"

PROBE = """
import http.client, json, socket, sys
class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(sys.argv[1])
try:
    c = Conn("localhost")
    c.request("GET", sys.argv[2], headers={"Host": "localhost"})
    r = c.getresponse()
    print(json.dumps({"status": r.status, "body": r.read().decode()}))
except OSError as e:
    print(json.dumps({"status": 0, "body": type(e).__name__ + ": " + str(e)}))
"""


def run_playbook(extra_vars: dict | None = None, playbook: str = "converge.yml",
                 scenario: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run one of the playbooks of the scenario under test (or of scenario) against its container, with -v."""
    return ansible_playbook(*playbook_arguments(extra_vars, playbook, scenario), **PLAYBOOK_ENV)


def playbook_command(extra_vars: dict | None = None, playbook: str = "converge.yml",
                     scenario: Path | None = None) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of run_playbook, for a run under load."""
    return ansible_playbook_command(*playbook_arguments(extra_vars, playbook, scenario), **PLAYBOOK_ENV)


PLAYBOOK_ENV = {"ANSIBLE_PIPELINING": "1", "ANSIBLE_HOST_KEY_CHECKING": "false"}


def playbook_arguments(extra_vars: dict | None, playbook: str, scenario: Path | None) -> tuple:
    return (scenario or scenario_dir()) / playbook, "-v", "-e", json.dumps(extra_vars or {})


def app_copy(tmp_path: Path) -> Path:
    """A copy of app/ that a test may break or extend."""
    dest = tmp_path / "app"
    shutil.copytree(APP_DIR, dest, ignore=shutil.ignore_patterns("tests", "__pycache__", ".coverage", "instance", ".venv"))
    return dest


def get(host, path: str, slot_socket: str, user: str = "www-data") -> tuple[int, str]:
    """GET path through a unix socket, from inside the container, as user."""
    out = host.check_output(f"runuser -u {user} -- python3 -c {quote(PROBE)} {slot_socket} {path}")
    answer = json.loads(out)
    return answer["status"], answer["body"]


def quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def env_file(host) -> str:
    """The environment file the live slot loads (/etc/flask-vps/<app>.env links to it)."""
    link = host.file(f"/etc/flask-vps/{APP}.env")
    assert link.is_symlink, "the environment file's name is a link to the live version"
    return host.check_output(f"readlink -f /etc/flask-vps/{APP}.env")


def live_state(host) -> dict:
    """The live slot (where the live socket link points) and that slot's record."""
    slot = host.file(LIVE_SOCKET).linked_to.rsplit("/", 1)[-1].removesuffix(".sock")
    record = json.loads(host.file(f"/var/lib/flask-vps/{APP}/{slot}.json").content_string)
    return {"slot": slot, **record}


def live_socket(host) -> str:
    return f"/run/{APP}/{live_state(host)['slot']}.sock"


@pytest.fixture
def live(host):
    state = live_state(host)
    state["socket"] = f"/run/{APP}/{state['slot']}.sock"
    return state
