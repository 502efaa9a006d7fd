"""Each server in turn (Uvicorn, Waitress, uWSGI, then back to Gunicorn), under
systemd, while a strict load runs through nginx: keep-alive clients that never
retry, and POSTed notes checked against what was stored.

For each server: a deploy that also changes the server (a change of server is a
deploy: the new one starts on the idle slot, passes its health check, and the live
socket link moves) with 0 failed requests; the secret in every server process's
environment and on no command line; the unit's exposure score (<= 1.5) and its
readiness (sd_notify for Gunicorn and uWSGI, the health check for the others);
exactly one slot left. Then a failing deploy and a rollback under the same load:
these cost a minute each, so Debian 13 and Debian 12 share them out (sharing.py),
and together they prove both for every server; each Debian deploys every server.
Uvicorn also deploys an ASGI app (a tiny fixture) natively, then the Flask app
again.
Runs after test_gunicorn.py and test_python.py (file order)."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

import pytest

from pytest_helpers.app_releases import failing_release_retries
from pytest_helpers.app_serving import app_masters, assert_secret_only_in_the_environment
from pytest_helpers.appslots import APP_DIR

from conftest import (
    APP, EPHEMERAL, SECRET, assert_strict_load_passed, choose, exposure, forget_source, get, live_state, run_playbook,
    under_load, unit_properties,
)

SERVERS = ["uvicorn", "waitress", "uwsgi", "gunicorn"]
# Servers that tell systemd they are ready (Type=notify); the others are Type=exec
# and the role's health check decides before the switch.
NOTIFY = {"gunicorn", "uwsgi"}
# Which Debian runs each server's failing deploy; the other runs its rollback.
FAILING_ON = {"uvicorn": "debian13", "waitress": "debian12", "uwsgi": "debian13", "gunicorn": "debian12"}
# Where each release's source is, so a later run ships the live release's own.
SOURCES: dict[str, str] = {}


def other(distro: str) -> str:
    return "debian12" if distro == "debian13" else "debian13"


CASES = []
for _server in SERVERS:
    CASES.append(pytest.param(_server, "deploy", id=f"{_server}-deploy"))
    if _server == "uvicorn":
        CASES.append(pytest.param(_server, "asgi", id="uvicorn-asgi"))
    CASES.append(pytest.param(_server, "failing-deploy", id=f"{_server}-failing-deploy",
                              marks=pytest.mark.only_on(FAILING_ON[_server])))
    CASES.append(pytest.param(_server, "rollback", id=f"{_server}-rollback",
                              marks=pytest.mark.only_on(other(FAILING_ON[_server]))))


def source_copy(name: str, wsgi_extra: str = "", files: dict[str, str] | None = None) -> Path:
    """A copy of app/ whose content (so release id) is new; kept for this run."""
    dest = EPHEMERAL / "sources" / name
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(APP_DIR, dest, ignore=shutil.ignore_patterns("tests", "__pycache__", ".coverage", "instance", ".venv"))
    (dest / "webapp" / "static" / "deployed-as.txt").write_text(f"{name}\n")
    if wsgi_extra:
        with (dest / "wsgi.py").open("a") as wsgi:
            wsgi.write(wsgi_extra)
    for path, text in (files or {}).items():
        (dest / path).write_text(text)
    return dest


def served_through_nginx(address: str) -> dict:
    with urllib.request.urlopen(f"http://{address}/healthz", timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def check_server_runs_the_live_slot(host, server: str) -> None:
    state = live_state(host)
    assert state["server"] == server and state["manager"] == "systemd", state
    unit = f"{APP}@{state['slot']}.service"
    props = unit_properties(host, unit)
    assert props["Type"] == ("notify" if server in NOTIFY else "exec"), props
    assert props["ActiveState"] == "active" and props["UnitFileState"] == "enabled", props
    assert props["TimeoutStopUSec"] == "30s", props  # graceful_timeout 20 + 10
    exposure(host, unit)
    command = host.check_output(f"systemctl show -p ExecStart --value {unit}")
    assert f"/bin/{ {'waitress': 'python', 'uwsgi': 'uwsgi'}.get(server, server)} " in command, command
    assert len(app_masters(host)) == 1, app_masters(host)
    idle = "green" if state["slot"] == "blue" else "blue"
    assert not host.file(f"/run/{APP}/{idle}.sock").exists
    assert_secret_only_in_the_environment(host)


def deploy(host, address: str, server: str) -> None:
    before = live_state(host)
    source = source_copy(server)
    choose(server=server, interface="wsgi", module="wsgi:app", manager="systemd")
    result, load = under_load(address, {"flask_app_source_dir": str(source)})
    assert result.returncode == 0, result.stdout[-6000:]
    assert SECRET not in result.stdout + result.stderr
    assert_strict_load_passed(load, 100)
    after = live_state(host)
    assert after["slot"] != before["slot"] and after["release"] != before["release"], (before, after)
    assert load["releases"][-1] == after["release"], load["releases"]
    SOURCES[after["release"]] = str(source)
    choose(source=str(source))
    check_server_runs_the_live_slot(host, server)
    assert served_through_nginx(address)["release"] == after["release"]


def failing_deploy(host, address: str, server: str) -> None:
    before = live_state(host)
    broken = source_copy(f"{server}-broken", wsgi_extra='\nraise RuntimeError("broken on purpose by the test")\n')
    result, load = under_load(address, {"flask_app_source_dir": str(broken), "flask_app_pre_hooks": [],
                                        "gunicorn_healthcheck_retries": failing_release_retries(server)})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "did not pass its health check" in output, output[-6000:]
    assert "broken on purpose by the test" in output, "the release's own output"
    assert SECRET not in output
    assert_strict_load_passed(load, 50)
    assert load["releases"] == [before["release"]], load["releases"]
    assert live_state(host) == before
    assert len(app_masters(host)) == 1, app_masters(host)


def rollback(host, address: str, server: str) -> None:
    before = live_state(host)
    result, load = under_load(address, {"app_servers_rollback": True})
    assert result.returncode == 0, result.stdout[-6000:]
    assert SECRET not in result.stdout + result.stderr
    assert_strict_load_passed(load, 100)
    after = live_state(host)
    assert after["release"] != before["release"] and after["slot"] != before["slot"], (before, after)
    assert after["server"] == server
    assert load["releases"][-1] == after["release"], load["releases"]
    # Later runs ship the live release's own source.
    if after["release"] in SOURCES:
        choose(source=SOURCES[after["release"]])
    else:
        forget_source()
    check_server_runs_the_live_slot(host, server)


ASGI_FIXTURE = '''"""A tiny ASGI app (test fixture): answers /healthz with the release id."""

import json
from pathlib import Path

RELEASE = (Path(__file__).resolve().parent / "REVISION").read_text().strip()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = json.dumps({"status": "ok", "release": RELEASE, "interface": "asgi",
                       "asgi": scope.get("asgi", {}).get("version")}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
'''


def asgi(host, address: str) -> None:
    """Uvicorn serves an ASGI callable natively (gunicorn_app_interface: asgi)."""
    before = live_state(host)
    source = source_copy("uvicorn-asgi", files={"asgi_fixture.py": ASGI_FIXTURE})
    result = run_playbook({"flask_app_source_dir": str(source), "gunicorn_app_interface": "asgi",
                           "gunicorn_wsgi_module": "asgi_fixture:app"})
    assert result.returncode == 0, result.stdout[-6000:]
    after = live_state(host)
    SOURCES[after["release"]] = str(source)
    assert after["interface"] == "asgi" and after["server"] == "uvicorn" and after["slot"] != before["slot"], after
    answer = served_through_nginx(address)
    assert answer == {"status": "ok", "release": after["release"], "interface": "asgi", "asgi": "3.0"}, answer
    status, body = get(host, "/healthz", f"/run/{APP}/{after['slot']}.sock")
    assert status == 200 and json.loads(body)["interface"] == "asgi"
    assert_secret_only_in_the_environment(host)
    # Back to the Flask app under Uvicorn (WSGI through a2wsgi): the fixture answers
    # every path as /healthz, so the strict load's writes of the cases after this
    # would fail against it.
    result = run_playbook()
    assert result.returncode == 0, result.stdout[-6000:]
    assert live_state(host)["release"] == before["release"]


@pytest.mark.parametrize(("server", "case"), CASES)
def test_server(host, address, server: str, case: str) -> None:
    {"deploy": deploy, "failing-deploy": failing_deploy, "rollback": rollback,
     "asgi": lambda host, address, server: asgi(host, address)}[case](host, address, server)


def test_uvicorn_ran_wsgi_through_a2wsgi(host) -> None:
    """Uvicorn's own WSGI mode is deprecated: it warns in the slot's log when used."""
    log = host.check_output(f"journalctl --no-pager -o cat -u '{APP}@*.service' | grep -i 'deprecated' || true")
    assert "WSGI implementation is deprecated" not in log, log
