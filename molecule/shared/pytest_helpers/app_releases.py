"""Deploys run from the test as an operator would: a broken release never takes
traffic, a release with new requirements serves them, secrets stay out of the log.
Molecule's idempotence step has already proven that a second converge changes
nothing; the runs here prove that their output holds no secret.

Collected by molecule/app_servers/tests/test_supervisor.py, under supervisor with
a server other than Gunicorn (a slot that never became healthy is stopped
differently by systemd and by supervisor; under systemd every server's failing
deploy runs under load in test_servers.py). Each costs two playbook runs or one,
so Debian 13 and Debian 12 share them out (sharing.py): the failing release on
13, the new requirements on 12 (building a release's virtualenv is the flask_app
role's, the same under either process manager; the site scenario deploys under
systemd on both)."""

from __future__ import annotations

import json

import pytest

from .appslots import APP, SECRET, app_copy, get, live_state, run_playbook


def failing_release_retries(server: str) -> int:
    """Health check tries for a release that crashes at import: fewer than the
    default 20, but enough that the crash is in the slot's log when they run out.
    Gunicorn and uWSGI import the app before they tell systemd they are ready;
    Uvicorn and Waitress import it after their start returned (Uvicorn in each
    spawned worker), which took up to 9 s on a loaded test machine."""
    return 5 if server in ("gunicorn", "uwsgi") else 15


@pytest.mark.only_on("debian13")
def test_release_failing_its_health_check_leaves_the_old_one_serving(host, tmp_path):
    before = live_state(host)
    broken = app_copy(tmp_path)
    (broken / "wsgi.py").write_text('raise RuntimeError("broken on purpose by the test")\n')

    result = run_playbook({"flask_app_source_dir": str(broken), "flask_app_pre_hooks": [],
                           "gunicorn_healthcheck_retries": failing_release_retries(before.get("server", "gunicorn"))})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "did not pass its health check" in output
    assert "broken on purpose by the test" in output, "the release's own output"
    assert SECRET not in output

    after = live_state(host)
    assert after == before
    status, body = get(host, "/healthz", f"/run/{APP}/{before['slot']}.sock")
    assert status == 200 and json.loads(body)["release"] == before["release"]
    # The failed release stays marked until the next run deletes it.
    marked = host.check_output(f"ls /srv/{APP}/releases/*/.unfinished 2>/dev/null || true").split()
    assert len(marked) == 1

    rerun = run_playbook()
    assert rerun.returncode == 0, rerun.stdout[-4000:]
    assert SECRET not in rerun.stdout + rerun.stderr
    assert host.check_output(f"ls /srv/{APP}/releases/*/.unfinished 2>/dev/null || true") == ""
    assert live_state(host) == before


@pytest.mark.only_on("debian12")
def test_release_with_new_requirements_serves_them(host, tmp_path):
    before = live_state(host)
    app = app_copy(tmp_path)
    with (app / "requirements.txt").open("a") as requirements:
        requirements.write("six==1.16.0\n")
    with (app / "wsgi.py").open("a") as wsgi:
        wsgi.write('\nimport six\n\n\n@app.get("/dependency")\ndef dependency():\n    return {"six": six.__version__}\n')

    result = run_playbook({"flask_app_source_dir": str(app)})
    assert result.returncode == 0, result.stdout[-6000:]
    assert SECRET not in result.stdout + result.stderr

    after = live_state(host)
    assert after["release"] != before["release"] and after["slot"] != before["slot"]
    status, body = get(host, "/dependency", f"/run/{APP}/{after['slot']}.sock")
    assert status == 200 and json.loads(body) == {"six": "1.16.0"}
    assert not host.file(f"/run/{APP}/{before['slot']}.sock").exists


# What `from pytest_helpers.app_releases import *` brings into a scenario's test module:
# the test cases, in this order.
__all__ = [name for name in list(globals()) if name.startswith("test_")]
