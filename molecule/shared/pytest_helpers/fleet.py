"""The cluster scenario's hosts as its tests reach them: lb1 (the only front door,
HTTPS with the CA that site.yml fetched), web1 and web2 (the app), worker1 (the
workers only) with web2 (the app and the workers, and the timer), db1
(PostgreSQL). Each is a testinfra host by its short name; the site is asked
through lb1 from the test host."""

from __future__ import annotations

import json
import os
import time

import testinfra

from .frontdoor import Response, request
from .network import PROJECT_DIR

INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
DISTRO = os.environ.get("MOLECULE_DISTRO", "debian13")
SUFFIX = os.environ.get("FLASK_VPS_NAME_SUFFIX", "")
NAMES = {name: f"fv-cluster-{name}-{DISTRO}{SUFFIX}" for name in ("lb1", "web1", "web2", "worker1", "db1")}
WEB_HOSTS = ("web1", "web2")
# flask_vps_worker: web2 and worker1, which runs no app server.
WORKER_HOSTS = ("web2", "worker1")
# The hosts that get the release (flask_vps_app_hosts).
APP_HOSTS = ("web1", "web2", "worker1")
# flask_vps_timer_host: the first of the worker hosts in the inventory's order.
TIMER_HOST = "web2"
APP = "flaskapp"
SITE = "flask-vps.localhost"
WORK = PROJECT_DIR / ".cache" / f"molecule-cluster{SUFFIX}"
CA_FILE = WORK / "ca.crt"


def host_url(name: str) -> str:
    """The testinfra_hosts entry of a host, by its short name (not named test_*:
    imported into a test module, pytest would collect it)."""
    return f"ansible://{NAMES[name]}?ansible_inventory={INVENTORY}"


def node(name: str):
    return testinfra.get_host(host_url(name))


def get(lb: str, path: str = "/healthz", headers: dict[str, str] | None = None) -> Response:
    """A GET over HTTPS through the load balancer at lb, by the site's name."""
    return request(lb, SITE, path, cafile=str(CA_FILE), headers=headers)


def api(lb: str, path: str, body: dict | None = None) -> dict:
    """The site's JSON answer through the load balancer; a POST of body when given."""
    if body is None:
        response = get(lb, path)
    else:
        response = request(lb, SITE, path, cafile=str(CA_FILE), method="POST", body=json.dumps(body).encode(),
                           headers={"Content-Type": "application/json"})
    assert response.status in (200, 201, 202), (path, response.status, response.body[:500])
    return json.loads(response.body)


def live_release(name: str) -> str:
    """The release id `current` points to on an app host."""
    return node(name).check_output(f"readlink /srv/{APP}/current").rstrip("/").split("/")[-1]


def served_by(lb: str, count: int = 20) -> set[str]:
    """The X-Served-By values (the web hosts that answered) of count GETs through
    the load balancer."""
    return {get(lb).headers["X-Served-By"] for _ in range(count)}


def served_by_all(lb: str, names: set[str], timeout: float = 30) -> set[str]:
    """The X-Served-By values of 20 GETs through the load balancer, once they are
    names (or the time is up). A web host back in rotation gets requests again
    only after nginx's passive health check lets it (nginx_upstream_fail_timeout,
    10 s, since the balancer last failed to connect to it)."""
    deadline = time.monotonic() + timeout
    while True:
        served = served_by(lb)
        if served == names or time.monotonic() > deadline:
            return served
        time.sleep(1)
