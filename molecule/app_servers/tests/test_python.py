"""What a user of the host sees after the python role: an interpreter that makes
virtualenvs, uv in its own venv, and a system Python nobody pip-installed into.

The python role's own tests, run on the app_servers host (its converge runs the role
with uv) rather than on a container of their own: one converge fewer per Debian."""

import pytest


def test_interpreter_and_venv_packages_are_installed(host):
    for name in ["python3", "python3-venv", "python3-packaging"]:
        assert host.package(name).is_installed, name


def test_build_tools_stay_off_by_default(host):
    assert not host.package("build-essential").is_installed
    assert not host.package("python3-dev").is_installed
    assert host.run("command -v gcc").rc != 0


def test_system_python_stays_externally_managed(host):
    # PEP 668: Debian's marker is intact and the system Python has no pip at all.
    marker = host.run("python3 -c 'import sysconfig; print(sysconfig.get_path(\"stdlib\"))'").stdout.strip()
    assert host.file(f"{marker}/EXTERNALLY-MANAGED").exists
    assert host.run("python3 -m pip --version").rc != 0
    assert host.run("ls /usr/local/lib/python3*/dist-packages 2>/dev/null | grep -q .").rc != 0


def test_an_unprivileged_user_can_make_a_virtualenv(host):
    cmd = "runuser -u nobody -- sh -c 'cd /tmp && python3 -m venv /tmp/probe-venv && /tmp/probe-venv/bin/python -m pip --version'"
    result = host.run(cmd)
    host.run("rm -rf /tmp/probe-venv")
    assert result.rc == 0, result.stderr
    assert "probe-venv" in result.stdout


def test_uv_runs_from_its_own_virtualenv(host):
    uv = host.file("/opt/flask-vps/uv/bin/uv")
    assert uv.exists and uv.user == "root"
    assert not uv.mode & 0o022, oct(uv.mode)
    out = host.check_output("/opt/flask-vps/uv/bin/uv --version")
    assert out.startswith("uv 0.13.9")


@pytest.mark.parametrize("path", ["/opt/flask-vps/uv", "/opt/flask-vps/uv/lib"])
def test_uv_venv_is_not_writable_by_others(host, path):
    f = host.file(path)
    assert f.user == "root" and not f.mode & 0o002
