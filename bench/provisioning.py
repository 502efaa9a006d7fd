#!/usr/bin/env python3
"""The provisioning and zero-downtime figures, measured on the sandbox.

1. cold site.yml on a fresh container (the sandbox is removed and made again);
2. a no-op re-run of site.yml (time and changed count; aim: under 30 s, 0 changed),
   then the same with Ansible's defaults (no pipelining, no fact cache), and the
   ratio of the two; then without ControlPersist as well, which the firewall's SSH
   rate limit may refuse;
3. deploy.yml of a code change (aim: under 20 s), under HTTPS load on loopback;
4. deploy.yml of a release that never passes its health check (must fail);
5. backup.yml, then deploy.yml of a release with a migration that adds a column;
6. rollback.yml (to the release before the migration), then restore.yml of that
   backup (the schema back where app/'s migrations end);
with the figures of the load during 3, 4, the migration deploy and the rollback: GET /healthz from 4 workers and
unique notes POSTed to /api/notes by a fifth, in scripts/loadgen.py's strict mode
(nothing retried, so a keep-alive connection nginx closes on reload counts as a
failure and in closed_by_server), and the notes read back afterwards (missing:
acknowledged but not stored; unacknowledged_stored: stored but never answered).

    bench/provisioning.py            all of the above (removes the sandbox first)
    bench/provisioning.py --warm     skip 1: measure on the running sandbox

Prints one line per figure; `make bench` (bench/run.py) calls measure() and puts
the figures in bench/results/. Every playbook's output is kept in
.cache/sandbox/logs/measure-<name>.log.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import loadgen  # noqa: E402  (scripts/loadgen.py: the load and its during())

STATE = ROOT / ".cache" / "sandbox"
HTTPS_PORT = os.environ.get("FLASK_VPS_SANDBOX_HTTPS_PORT", "8443")
# profile_tasks puts each task's time in the logs, so a slow run says where it went.
ENV = {**os.environ, "ANSIBLE_FORCE_COLOR": "false",
       "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.timer,ansible.posix.profile_tasks"}
BROKEN = '''

# Broken on purpose by bench/provisioning.py: imports, but never healthy.
from flask import abort, request


@app.before_request
def refuse_health():
    if request.path == "/healthz":
        abort(503)
'''

# An expand migration after app/'s last one: a nullable column the older releases ignore.
HEAD_REVISION = sorted(p.stem.split("_")[0] for p in (ROOT / "app" / "webapp" / "migrations" / "versions").glob("[0-9]*.py"))[-1]
MIGRATION = f'''from alembic import op
import sqlalchemy as sa

revision = "9001"
down_revision = "{HEAD_REVISION}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notes", sa.Column("bench_tag", sa.Text(), nullable=True))
'''


def command(playbook: str, *args: str) -> list[str]:
    return [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", "inventories/sandbox", f"playbooks/{playbook}",
            *args]


def changed(output: str) -> int:
    found = re.findall(r"^sandbox\s+:.*changed=(\d+)", output, re.M)
    return int(found[-1]) if found else -1


def finish(name: str, result: subprocess.CompletedProcess[str], expect_failure: bool = False) -> None:
    log = STATE / "logs" / f"measure-{name}.log"
    log.write_text(result.stdout + result.stderr)
    if expect_failure and result.returncode == 0:
        raise SystemExit(f"measure: {name} should have failed but did not; see {log}")
    if not expect_failure and result.returncode != 0:
        raise SystemExit(f"measure: {name} failed (exit {result.returncode}); see {log}\n{result.stdout[-3000:]}")


def timed(name: str, cmd: list[str], env: dict | None = None) -> tuple[float, int]:
    started = time.monotonic()
    result = subprocess.run(cmd, cwd=ROOT, env=env or ENV, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    finish(name, result)
    return round(seconds, 1), changed(result.stdout)


# The load's figures kept per stage (deploy, failed_deploy, rollback): the figure's
# suffix and the key in scripts/loadgen.py's JSON. bench/run.py files the figures
# with these suffixes under "zero downtime".
LOAD_FIGURES = {"_requests": "sent", "_failed_strict": "failed", "_closed_by_server": "closed_by_server",
                "_writes_sent": "writes_sent", "_writes_acknowledged": "writes_acknowledged",
                "_writes_failed": "writes_failed", "_writes_missing": "writes_missing",
                "_writes_unacknowledged_stored": "writes_unacknowledged_stored"}


def load_figures(stage: str, load: dict) -> dict[str, int | None]:
    """The figures of the load during one stage, named for it (deploy_failed_strict ...)."""
    return {stage + suffix: load[key] for suffix, key in LOAD_FIGURES.items()}


def load_summary(load: dict) -> str:
    return (f"requests {load['sent']}, failed {load['failed']} (strict; {load['closed_by_server']} closed by the "
            f"server), writes {load['writes_acknowledged']}/{load['writes_sent']} acknowledged, "
            f"missing {load['writes_missing']}, unacknowledged stored {load['writes_unacknowledged_stored']}")


def under_load(name: str, cmd: list[str], expect_failure: bool = False) -> tuple[float, int, dict]:
    result, load, seconds = loadgen.during(
        cmd,
        ["--url", f"https://flask-vps.localhost:{HTTPS_PORT}/healthz", "--connect", f"127.0.0.1:{HTTPS_PORT}",
         "--cacert", str(STATE / "ca.crt"), "--requests", "100000", "--seconds", "600", "--concurrency", "4",
         # Constant load, not saturation: on 2 cores an unpaced generator would
         # measure CPU starvation of the deploy rather than the deploy.
         "--pause", "0.01",
         # No retries, and writes: at most 20 notes a second, so the sandbox's
         # database grows by a few hundred notes per stage.
         "--strict", "--post-workers", "1", "--post-pause", "0.05"],
        cwd=ROOT, env=ENV)
    finish(name, result, expect_failure)
    if load["failed"] or load["writes_missing"] != 0 or load["writes_unacknowledged_stored"] != 0:
        print(f"measure: {name}: {load_summary(load)}: {load['errors']} {load['writes_problems']}", file=sys.stderr)
    return round(seconds, 1), changed(result.stdout), load


def app_copy(where: Path, extra: str) -> Path:
    target = where / "app"
    shutil.copytree(ROOT / "app", target, ignore=shutil.ignore_patterns(".venv", "__pycache__", "instance",
                                                                          ".pytest_cache", "tests"))
    with (target / "wsgi.py").open("a") as wsgi:
        wsgi.write(extra)
    return target


# How long the run without ControlPersist may crawl before it is stopped.
NO_PERSIST_CAP = 180


def measure(warm: bool) -> dict[str, float]:
    (STATE / "logs").mkdir(parents=True, exist_ok=True)
    figures: dict[str, float] = {}

    def say(line: str) -> None:
        print(line, flush=True)

    if not warm:
        # The fresh container gets its packages through the shared package cache
        # (scripts/apt-cache.sh), like the test containers: the figure measures
        # Ansible, dpkg and the roles, not this machine's link to the mirror. The
        # first run on a new machine fills the cache (make test fills it too).
        proxy = subprocess.run(["scripts/apt-cache.sh"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.strip()
        subprocess.run(["scripts/sandbox.sh", "down"], cwd=ROOT, check=True)
        subprocess.run(["scripts/sandbox.sh", "up"], cwd=ROOT, check=True, env={**ENV, "FLASK_VPS_APT_PROXY": proxy})
        seconds, count = timed("cold", command("site.yml"))
        say(f"cold site.yml:            {seconds} s, changed={count} (packages: {proxy or 'from the mirror'})")
        figures.update(cold_site_seconds=seconds, cold_site_changed=count)

    seconds, count = timed("noop", command("site.yml"))
    say(f"no-op site.yml:           {seconds} s, changed={count}")
    figures.update(noop_site_seconds=seconds, noop_site_changed=count)

    # Ansible's own defaults: no pipelining, no fact cache (facts gathered again),
    # and its default ssh_args, which do keep a ControlPersist master for 60 s.
    # Only the roles path is kept.
    with tempfile.NamedTemporaryFile("w", suffix=".cfg") as defaults:
        defaults.write(f"[defaults]\nroles_path = {ROOT}/roles\n")
        defaults.flush()
        slow, count = timed("noop-defaults", command("site.yml"), env={**ENV, "ANSIBLE_CONFIG": defaults.name})
    ratio = round(slow / figures["noop_site_seconds"], 1)
    say(f"no-op, Ansible defaults:  {slow} s, changed={count} ({ratio}x the project's ansible.cfg)")
    figures.update(noop_site_defaults_seconds=slow, noop_defaults_ratio=ratio)

    # Without ControlPersist every task opens a new SSH connection, and the
    # firewall's rate limit on SSH (30 new connections at once from one address,
    # then 10 a minute) may refuse the run: what a VPS hardened by this project
    # does to a client that opens a connection per task.
    with tempfile.NamedTemporaryFile("w", suffix=".cfg") as bare:
        bare.write(f"[defaults]\nroles_path = {ROOT}/roles\n[ssh_connection]\nssh_args = -o ControlMaster=no\n")
        bare.flush()
        started = time.monotonic()
        # Capped: past the burst the limit lets a new connection through every 6 s,
        # so such a run crawls (a no-op site.yml would take over half an hour).
        try:
            result = subprocess.run(command("site.yml"), cwd=ROOT, env={**ENV, "ANSIBLE_CONFIG": bare.name},
                                    capture_output=True, text=True, check=False, timeout=NO_PERSIST_CAP)
            output, crawled = result.stdout, False
        except subprocess.TimeoutExpired as expired:
            output, crawled = expired.stdout.decode() if isinstance(expired.stdout, bytes) else expired.stdout or "", True
            result = None
        (STATE / "logs" / "measure-noop-no-controlpersist.log").write_text(output)
    tasks = len(re.findall(r'^TASK ', output, re.M))
    refused = result is not None and result.returncode != 0 and "UNREACHABLE" in output
    outcome = (f"refused by the SSH rate limit after {tasks} tasks" if refused
               else f"{tasks} tasks in {NO_PERSIST_CAP} s, then stopped (past a burst of 30 the SSH rate"
                    " limit lets 10 new connections a minute through)" if crawled
               else f"{time.monotonic() - started:.1f} s, exit {result.returncode}")
    say(f"no-op, no ControlPersist: {outcome}")
    figures.update(noop_no_controlpersist=outcome)
    if refused:
        time.sleep(60)  # a minute brings back 10 connections of the rate limit's allowance

    with tempfile.TemporaryDirectory(prefix="measure-") as tmp:
        # A code change: a copy of app/ with one more line, so the release id changes.
        change = app_copy(Path(tmp) / "change", f"\n# measured change {time.time_ns()}\n")
        seconds, count, load = under_load("deploy", command("deploy.yml", "-e", f"flask_vps_app_source_dir={change}"))
        say(f"deploy.yml (code change): {seconds} s, changed={count}, {load_summary(load)}")
        figures.update(deploy_seconds=seconds, **load_figures("deploy", load))

        # A release that imports but never answers its health check: the play must
        # fail and the live release keep serving.
        broken = app_copy(Path(tmp) / "broken", BROKEN)
        seconds, _, load = under_load(
            "failed-deploy",
            command("deploy.yml", "-e", f"flask_vps_app_source_dir={broken}", "-e", "gunicorn_healthcheck_retries=5"),
            expect_failure=True)
        say(f"failed deploy (refused):  {seconds} s, {load_summary(load)}")
        figures.update(failed_deploy_seconds=seconds, **load_figures("failed_deploy", load))

        # The database's undo path, timed: a backup, a deploy whose migration adds
        # a column (expand: the old release ignores it), a rollback to the release
        # before it, and a restore of the backup, which puts the schema back where
        # app/'s migrations end, so `make demo-deploy` works after the bench.
        seconds, _ = timed("backup", command("backup.yml"))
        backup = re.search(r"Backup (\S+\.dump) in ", (STATE / "logs" / "measure-backup.log").read_text())
        say(f"backup.yml:               {seconds} s ({backup.group(1) if backup else 'no backup name printed'})")
        figures.update(backup_seconds=seconds)
        migrated = app_copy(Path(tmp) / "migration", f"\n# measured migration {time.time_ns()}\n")
        (migrated / "webapp" / "migrations" / "versions" / "9001_bench_column.py").write_text(MIGRATION)
        seconds, count, load = under_load("migration-deploy",
                                          command("deploy.yml", "-e", f"flask_vps_app_source_dir={migrated}"))
        say(f"deploy.yml (migration):   {seconds} s, changed={count}, {load_summary(load)}")
        figures.update(migration_deploy_seconds=seconds, **load_figures("migration_deploy", load))

    seconds, count, load = under_load("rollback", command("rollback.yml"))
    say(f"rollback.yml:             {seconds} s, changed={count}, {load_summary(load)}")
    figures.update(rollback_seconds=seconds, **load_figures("rollback", load))

    if backup:
        seconds, _ = timed("restore", command("restore.yml", "-e", f"backup={backup.group(1)}",
                                              "-e", "restore_confirm=yes"))
        say(f"restore.yml:              {seconds} s")
        figures.update(restore_seconds=seconds)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warm", action="store_true", help="keep the running sandbox: no cold site.yml")
    figures = measure(parser.parse_args().warm)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
