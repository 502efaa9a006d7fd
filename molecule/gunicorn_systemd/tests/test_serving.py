"""The live slot as nginx, an attacker and an operator see it."""

from __future__ import annotations

import json

from conftest import APP, SECRET, get


def gunicorn_pids(host) -> list[str]:
    return host.check_output(f"pgrep -u {APP} -f 'bin/gunicorn' || true").split()


def test_socket_answers_healthz_for_nginx_user(host, live):
    status, body = get(host, "/healthz", live["socket"], user="www-data")
    assert status == 200, body
    answer = json.loads(body)
    assert answer == {"status": "ok", "release": live["release"], "database": "ok"}


def test_socket_refuses_other_users(host, live):
    status, body = get(host, "/healthz", live["socket"], user="nobody")
    assert status == 0 and "PermissionError" in body, body


def test_app_runs_as_its_own_user(host, live):
    pids = gunicorn_pids(host)
    assert len(pids) >= 2, "a master and its workers"
    users = {host.check_output(f"ps -o user= -p {pid}").strip() for pid in pids}
    assert users == {APP}
    assert host.run("pgrep -u root -f 'bin/gunicorn'").rc != 0


def test_socket_and_runtime_dir_modes(host, live):
    runtime = host.file(f"/run/{APP}")
    assert (runtime.user, runtime.group, runtime.mode) == (APP, "www-data", 0o750)
    sock = host.file(live["socket"])
    assert sock.is_socket and sock.user == APP
    # Only the live slot listens.
    idle = "green" if live["slot"] == "blue" else "blue"
    assert not host.file(f"/run/{APP}/{idle}.sock").exists


def test_code_is_root_owned_and_data_is_private(host, live):
    release = host.file(f"/srv/{APP}/current")
    assert release.is_symlink and release.linked_to == f"/srv/{APP}/releases/{live['release']}"
    for path in ["wsgi.py", "webapp/views.py", ".venv/bin/gunicorn", "REVISION"]:
        f = host.file(f"/srv/{APP}/current/{path}")
        assert f.user == "root" and not f.mode & 0o022, (path, oct(f.mode))
    assert host.run(f"runuser -u {APP} -- touch /srv/{APP}/current/x").rc != 0
    data = host.file(f"/srv/{APP}/shared/data")
    assert (data.user, data.group, data.mode) == (APP, APP, 0o750)
    db = host.file(f"/srv/{APP}/shared/data/app.sqlite3")
    assert db.exists and db.user == APP and not db.mode & 0o007


def test_env_file_is_readable_by_the_app_group_only(host):
    env = host.file(f"/etc/flask-vps/{APP}.env")
    assert (env.user, env.group, env.mode) == ("root", APP, 0o640)
    assert host.run(f"runuser -u www-data -- cat /etc/flask-vps/{APP}.env").rc != 0


def test_secret_is_in_the_process_environment_only(host):
    pids = gunicorn_pids(host)
    environ = host.check_output(f"tr '\\0' '\\n' < /proc/{pids[0]}/environ")
    assert f"FLASK_SECRET_KEY={SECRET}" in environ.splitlines()
    # Not on any command line of any process.
    leaked = host.run(f"grep -lF -- {SECRET} /proc/[0-9]*/cmdline")
    assert leaked.stdout.strip() == "", leaked.stdout


def test_secret_is_in_no_file_others_can_read(host):
    found = host.run(
        f"grep -rlsF -- {SECRET} / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev --exclude-dir=run"
    ).stdout.split()
    assert found == [f"/etc/flask-vps/{APP}.env"], found
    for path in found:
        assert not host.file(path).mode & 0o007, path


def gunicorn_masters(host) -> list[str]:
    rows = [line.split(None, 2) for line in host.check_output("ps -eo pid=,ppid=,args=").splitlines()]
    gunicorns = {pid: ppid for pid, ppid, args in rows if "bin/gunicorn" in args}
    return [pid for pid, ppid in gunicorns.items() if ppid not in gunicorns]


def test_exactly_one_slot_runs(host, live):
    masters = gunicorn_masters(host)
    assert len(masters) == 1, masters
