"""The live slot as nginx, an attacker and an operator see it, whichever server
runs it (Gunicorn, Uvicorn, Waitress or uWSGI) under systemd or supervisor.

Collected by molecule/app_servers/tests/: test_gunicorn.py (Gunicorn under
systemd) and test_supervisor.py (another server under supervisor)."""

from __future__ import annotations

import json

from .appslots import APP, SECRET, env_file, get


# Every server runs from the release's virtualenv, so its processes (masters,
# workers, Uvicorn's spawned ones) name a release on their command line.
RELEASES = f"/srv/{APP}/releases/"


def app_processes(host) -> dict[str, tuple[str, str, str]]:
    """pid: (parent pid, user, command line) of every process of the app's server."""
    rows = [line.split(None, 3) for line in host.check_output("ps -eo pid=,ppid=,user:32=,args=").splitlines()]
    return {pid: (ppid, user, args) for pid, ppid, user, args in rows if RELEASES in args and not args.startswith(("ps ", "sh "))}


def app_pids(host) -> list[str]:
    return list(app_processes(host))


def app_masters(host) -> list[str]:
    """The server's top processes: one per running slot."""
    processes = app_processes(host)
    return [pid for pid, (ppid, _, _) in processes.items() if ppid not in processes]


def test_socket_answers_healthz_for_nginx_user(host, live):
    status, body = get(host, "/healthz", live["socket"], user="www-data")
    assert status == 200, body
    answer = json.loads(body)
    assert answer == {"status": "ok", "release": live["release"], "database": "ok"}


def test_socket_refuses_other_users(host, live):
    status, body = get(host, "/healthz", live["socket"], user="nobody")
    assert status == 0 and "PermissionError" in body, body


def test_app_runs_as_its_own_user(host, live):
    processes = app_processes(host)
    # Waitress is one process with threads; the others a master and its workers.
    assert len(processes) >= (1 if live.get("server") == "waitress" else 2), processes
    users = {user for _, user, _ in processes.values()}
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
    for path in ["wsgi.py", "webapp/views.py", ".venv/bin/python", "REVISION"]:
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
    assert_secret_only_in_the_environment(host)


def assert_secret_only_in_the_environment(host) -> None:
    """The secret is in the environment of every process of the server, and on no
    command line of any process."""
    pids = app_pids(host)
    assert pids
    for pid in pids:
        environ = host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ")
        assert f"FLASK_SECRET_KEY={SECRET}" in environ.splitlines(), pid
    # Compared here, not by a grep in the container: a grep for the secret would
    # find its own command line.
    cmdlines = host.run("for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done 2>/dev/null").stdout
    assert RELEASES in cmdlines
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


def test_exactly_one_slot_runs(host, live):
    masters = app_masters(host)
    assert len(masters) == 1, masters


# What `from pytest_helpers.gunicorn_serving import *` brings into a scenario's test module:
# the test cases, in this order.
__all__ = [name for name in list(globals()) if name.startswith("test_")]
