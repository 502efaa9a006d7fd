#!/usr/bin/env python3
"""The several-host figures, measured on the cluster sandbox (make demo-cluster).

A rolling deploy of a new release over the two web hosts (lb1 in front of web1
and web2, worker1 and db1 behind), one host at a time, each out of rotation at lb1 while it
switches: its duration (aim: under 30 s for 2 nodes) and the load's figures
during it, in scripts/loadgen.py's strict mode through lb1's published port
(4 keep-alive clients that never retry, and a writer whose acknowledged notes
must all be stored).

    bench/cluster.py    brings the cluster sandbox up if it is not (about 10 min
                        the first time), deploys once to warm it, then measures

Prints one line per figure; `make bench` (bench/run.py) calls measure() and files
the figures under "several hosts" in bench/results/. The playbook's output is kept
in .cache/bench-cluster/measure-rolling-deploy.log.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import loadgen  # noqa: E402  (scripts/loadgen.py: the load and its during())

# Not in .cache/demo-cluster, which make demo-cluster-destroy removes.
LOGS = ROOT / ".cache" / "bench-cluster"
CA_FILE = ROOT / ".cache" / "molecule-cluster-demo" / "ca.crt"
HTTPS_PORT = os.environ.get("FLASK_VPS_CLUSTER_HTTPS_PORT", "9443")
DEMO = [str(ROOT / "scripts" / "demo-cluster.sh")]
ENV = {**os.environ, "ANSIBLE_FORCE_COLOR": "false", "FLASK_VPS_CLUSTER_HTTPS_PORT": HTTPS_PORT,
       "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.timer,ansible.posix.profile_tasks"}


def load_arguments() -> list[str]:
    return ["--url", f"https://flask-vps.localhost:{HTTPS_PORT}/healthz", "--connect", f"127.0.0.1:{HTTPS_PORT}",
            "--cacert", str(CA_FILE), "--requests", "100000", "--seconds", "600", "--concurrency", "4",
            "--pause", "0.01", "--timeout", "30", "--strict", "--post-workers", "1", "--post-pause", "0.05"]


def deploy(name: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*DEMO, "deploy"], cwd=ROOT, env=ENV, capture_output=True, text=True, check=False)
    keep(name, result)
    return result


def keep(name: str, result: subprocess.CompletedProcess[str]) -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    (LOGS / f"measure-{name}.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"measure: {name} failed (exit {result.returncode}); see {LOGS}/measure-{name}.log")


def measure() -> dict[str, float | int | None]:
    subprocess.run([*DEMO, "up"], cwd=ROOT, env=ENV, check=True, stdout=subprocess.DEVNULL)
    # A first deploy warms the fact cache and uv's cache on both web hosts, as an
    # operator's second deploy of the day finds them.
    deploy("warm-deploy")
    result, load, seconds = loadgen.during([*DEMO, "deploy"], load_arguments(), cwd=ROOT, env=ENV)
    keep("rolling-deploy", result)
    output = result.stdout + result.stderr
    switched = re.findall(r"^TASK \[Switch the live socket.*\n(?:.*\n)*?(?:changed|ok): \[(\S+)\]", output, re.M)
    figures = {
        "rolling_deploy_seconds": round(seconds, 1),
        "rolling_deploy_web_hosts": len(dict.fromkeys(switched)),
        "rolling_deploy_requests": load["sent"],
        "rolling_deploy_failed_strict": load["failed"],
        "rolling_deploy_closed_by_server": load["closed_by_server"],
        "rolling_deploy_writes_acknowledged": load["writes_acknowledged"],
        "rolling_deploy_writes_sent": load["writes_sent"],
        "rolling_deploy_writes_missing": load["writes_missing"],
        "rolling_deploy_writes_unacknowledged_stored": load["writes_unacknowledged_stored"],
        "rolling_deploy_releases_seen": len(load["releases"]),
    }
    for name, value in figures.items():
        print(f"{name}: {value}", flush=True)
    if load["failed"] or load["writes_missing"] or load["writes_unacknowledged_stored"]:
        print(f"measure: rolling deploy: {load['errors']} {load['writes_problems']}", file=sys.stderr)
    return figures


if __name__ == "__main__":
    measure()
