"""The live slot as nginx, an attacker and an operator see it.

Collected from molecule/gunicorn_{systemd,supervisor}/tests/test_serving.py."""

from __future__ import annotations

import json

from .appslots import APP, SECRET, env_file, get


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
    # Owners of every Gunicorn process; the command itself must not contain
    # "bin/gunicorn", or `pgrep -f` finds the root shell that runs it.
    rows = [line.split(None, 1) for line in host.check_output("ps -eo user:32=,args=").splitlines()]
    users = {user for user, args in rows if "bin/gunicorn" in args}
    assert users == {APP}, users


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


def test_uv_made_the_virtualenv_and_installed_the_dependencies(host, live):
    venv = f"/srv/{APP}/releases/{live['release']}/.venv"
    installer = host.check_output(f"cat {venv}/lib/python3*/site-packages/flask-*.dist-info/INSTALLER")
    assert installer.strip() == "uv"
    # uv venv bootstraps no pip into the release: nothing at run time needs it.
    assert not host.file(f"{venv}/bin/pip").exists


def test_env_file_is_readable_by_the_app_group_only(host, live):
    path = env_file(host)
    assert path == live["env_file"] and path.startswith(f"/etc/flask-vps/{APP}.env.d/")
    env = host.file(path)
    assert (env.user, env.group, env.mode) == ("root", APP, 0o640)
    assert host.run(f"runuser -u www-data -- cat {path}").rc != 0
    # Only the live version is kept.
    assert host.check_output(f"ls /etc/flask-vps/{APP}.env.d").split() == [path.rsplit("/", 1)[-1]]


def test_secret_is_in_the_process_environment_only(host):
    pids = gunicorn_pids(host)
    environ = host.check_output(f"tr '\\0' '\\n' < /proc/{pids[0]}/environ")
    assert f"FLASK_SECRET_KEY={SECRET}" in environ.splitlines()
    # Not on any command line of any process. Compared here, not by a grep in the
    # container: a grep for the secret would find its own command line.
    cmdlines = host.run("for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done 2>/dev/null").stdout
    assert "bin/gunicorn" in cmdlines
    assert SECRET not in cmdlines


def test_secret_is_in_no_file_others_can_read(host):
    # Every regular file on the root file system; -xdev leaves out /proc, /sys, /dev
    # and /run (separate mounts). `grep -r / --exclude-dir=proc` still read /proc
    # (the pattern does not match the top-level "/proc"), so it never finished.
    found = host.run(
        f"find / -xdev -type f -print0 | xargs -0 grep -lsF -- {SECRET}; true"
    ).stdout.split()
    assert found == [env_file(host)], found
    for path in found:
        assert not host.file(path).mode & 0o007, path


def gunicorn_masters(host) -> list[str]:
    rows = [line.split(None, 2) for line in host.check_output("ps -eo pid=,ppid=,args=").splitlines()]
    gunicorns = {pid: ppid for pid, ppid, args in rows if "bin/gunicorn" in args}
    return [pid for pid, ppid in gunicorns.items() if ppid not in gunicorns]


def test_exactly_one_slot_runs(host, live):
    masters = gunicorn_masters(host)
    assert len(masters) == 1, masters


# What `from pytest_helpers.gunicorn_serving import *` brings into a scenario's test module:
# the test cases, in this order.
__all__ = [name for name in list(globals()) if name.startswith("test_")]
