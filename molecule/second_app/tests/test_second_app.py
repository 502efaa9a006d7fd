"""A second app, deployed by site.yml with variables only, seen from outside: its
health path, its static files from its own package, its own secret and data
directory names, and every path and unit named after it."""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
from pathlib import Path

import pytest

SITE = "flask-vps.localhost"
APP = "storefront"
ROOT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
CONTAINER = f"fv-second_app-{os.environ.get('MOLECULE_DISTRO', 'debian13')}{os.environ.get('FLASK_VPS_NAME_SUFFIX', '')}"
CA_FILE = ROOT / ".cache" / "molecule-site" / CONTAINER / "ca.crt"
SOURCE = ROOT / "molecule" / "second_app" / "app"


@pytest.fixture(scope="module")
def address(host) -> str:
    return next(a for a in host.interface("eth0").addresses if ":" not in a)


def request(address: str, path: str, method: str = "GET") -> tuple[http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPSConnection(SITE, 443, context=ssl.create_default_context(cafile=str(CA_FILE)), timeout=10)
    conn._create_connection = lambda _a, timeout, source: socket.create_connection((address, 443), timeout, source)
    conn.request(method, path, headers={"Host": SITE})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data


def test_health_path_of_its_own_answers_through_nginx(host, address):
    response, data = request(address, "/status/ready")
    assert response.status == 200, data
    body = json.loads(data)
    assert body["ready"] is True
    live = host.file(f"/srv/{APP}/current").linked_to
    assert live.endswith("/" + body["release"])
    # app/'s health path is not this app's.
    assert request(address, "/healthz")[0].status == 404


def test_static_files_come_from_the_package_through_nginx(address):
    response, data = request(address, "/static/shop.css")
    assert response.status == 200
    assert data == (SOURCE / "storefront" / "assets" / "shop.css").read_bytes()
    assert "max-age=" in response.getheader("Cache-Control", "")


def test_secret_and_data_dir_reach_the_app_under_its_own_names(host, address):
    env = host.file(host.check_output(f"readlink -f /etc/flask-vps/{APP}.env"))
    assert (env.user, env.group, env.mode) == ("root", APP, 0o640)
    names = {line.split("=", 1)[0] for line in env.content_string.splitlines() if "=" in line and not line.startswith("#")}
    assert {"SHOP_SIGNING_KEY", "SHOP_STATE_DIR"} <= names
    assert not {"FLASK_SECRET_KEY", "FLASK_DATA_DIR"} & names
    # The app refuses to import without its key, so serving proves it arrived;
    # a write proves the data directory did.
    response, data = request(address, "/visits", "POST")
    assert response.status == 201, data
    assert host.file(f"/srv/{APP}/shared/data/visits").exists


def test_everything_is_named_after_the_app(host):
    assert host.user(APP).shell == "/usr/sbin/nologin"
    units = host.check_output(f"systemctl list-units --no-legend --plain '{APP}@*'")
    assert f"{APP}@" in units and "running" in units
    rows = [line.split(None, 1) for line in host.check_output("ps -eo user:32=,args=").splitlines()]
    assert {user for user, args in rows if "bin/gunicorn" in args} == {APP}
    assert any("storefront.server:application" in args for _, args in rows)
    assert host.file(f"/etc/ssl/flask-vps/{APP}/fullchain.pem").exists
    assert host.file(f"/var/lib/flask-vps/{APP}/live.sock").is_symlink
    assert not host.file("/srv/flaskapp").exists
