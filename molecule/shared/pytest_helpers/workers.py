"""The sandbox's background workers (worker `jobs`, 2 processes per worker host)
and its timer (`tick`), as the cluster scenario's tests see them: test_workers.py
before the deploys, test_cluster.py after each of them."""

from __future__ import annotations

import re
import time

from .fleet import APP, api

WORKERS = [f"{APP}-worker-jobs@1.service", f"{APP}-worker-jobs@2.service"]
WORKER_UNIT = f"{APP}-worker-jobs@.service"
TIMER = f"{APP}-timer-tick"


def main_pids(host) -> list[int]:
    return [int(host.check_output(f"systemctl show -p MainPID --value {unit}")) for unit in WORKERS]


def worker_journal(host) -> str:
    return host.check_output(f"journalctl --no-pager -u '{APP}-worker-jobs@*'")


def wait_done(lb: str, job_ids: list[int], timeout: float = 90) -> list[dict]:
    """The jobs as the app reports them through the load balancer, once all are
    done or the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = [api(lb, f"/api/jobs/{job_id}") for job_id in job_ids]
        if all(job["status"] == "done" for job in jobs) or time.monotonic() > deadline:
            return jobs
        time.sleep(1)


def wait_started(host, hostname: str, release: str, timeout: float = 90) -> tuple[list[int], str]:
    """The worker processes now running, once each has logged its start on release
    (or the time is up), and the workers' journal."""
    deadline = time.monotonic() + timeout
    while True:
        pids, journal = main_pids(host), worker_journal(host)
        started = all(f"Worker {hostname}/{pid} started: release={release}" in journal for pid in pids)
        if (started and 0 not in pids) or time.monotonic() > deadline:
            return pids, journal
        time.sleep(2)


def stopped_cleanly(journal: str, hostname: str, pid: int) -> bool:
    """Whether the worker finished its job at hand and exited on SIGTERM."""
    return re.search(rf"Worker {hostname}/{pid} stopped after \d+ jobs", journal) is not None
