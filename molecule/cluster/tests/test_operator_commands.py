"""The operator commands (playbooks/status.yml, logs.yml, exec.yml) run as an
operator runs them, against this scenario's hosts: web1 and web2 run the app
(web2 its workers too), worker1 the workers only, db1 is the database host, lb1
the load balancer (no app, no database: none of the commands has anything to
show there). Their output is read through
Ansible's json callback."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from pytest_helpers.fleet import APP, NAMES, WEB_HOSTS, host_url, live_release, node, served_by, served_by_all
from pytest_helpers.fleet import APP_HOSTS as APP_HOST_NAMES
from pytest_helpers.network import PROJECT_DIR, ansible_playbook, ansible_playbook_command, container_ip

# exec.yml's host when none is named: the first app host.
testinfra_hosts = [host_url("web1")]
WEB, WEB2, WORKER, DB, LB = NAMES["web1"], NAMES["web2"], NAMES["worker1"], NAMES["db1"], NAMES["lb1"]
APP_HOSTS = [NAMES[name] for name in APP_HOST_NAMES]
WEB_HOST_NAMES = [NAMES[name] for name in WEB_HOSTS]
LOCK = f"/run/lock/flask-vps-{APP}-deploy"
JSON = {"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}


def playbook(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return ansible_playbook(PROJECT_DIR / "playbooks" / name, *args, **JSON)


def extra(**values: object) -> tuple[str, str]:
    """-e with JSON: a value with spaces stays whole (-e key=value splits at spaces)."""
    return ("-e", json.dumps(values))


def report(result: subprocess.CompletedProcess[str]) -> dict:
    """The json callback's document; other callbacks (profile_tasks under
    Molecule) may print after it."""
    return json.JSONDecoder().raw_decode(result.stdout[result.stdout.index("{"):])[0]


def messages(result: subprocess.CompletedProcess[str], task: str) -> dict[str, object]:
    """Each host's msg from the debug task of that name."""
    return {host: outcome.get("msg") for play in report(result)["plays"] for entry in play["tasks"]
            if entry["task"]["name"] == task for host, outcome in entry["hosts"].items()
            if not outcome.get("skipped")}


def fields(lines: list[str]) -> dict[str, str]:
    return {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in lines)}


def live_state(host) -> dict:
    slot = host.file(f"/var/lib/flask-vps/{APP}/live.sock").linked_to.rsplit("/", 1)[-1].removesuffix(".sock")
    return {"slot": slot, **json.loads(host.file(f"/var/lib/flask-vps/{APP}/{slot}.json").content_string)}


def secret_key(host) -> str:
    env = host.check_output(f"cat /etc/flask-vps/{APP}.env")
    line = next(line for line in env.splitlines() if line.startswith("FLASK_SECRET_KEY="))
    return line.split("=", 1)[1].strip('"')


def assert_changed_nothing(result: subprocess.CompletedProcess[str]) -> None:
    stats = report(result)["stats"]
    assert all(host_stats["changed"] == 0 for host_stats in stats.values()), stats


def test_status_names_the_live_release_and_slot_health_and_a_free_lock():
    result = playbook("status.yml")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert_changed_nothing(result)
    apps = messages(result, "Show the app's state")
    # The app's state on the app hosts only (not on lb1 or db1).
    assert sorted(apps) == sorted(APP_HOSTS), list(apps)
    for name in WEB_HOSTS:
        live = live_state(node(name))
        web = fields(apps[NAMES[name]])
        assert web["release"] == live["release"]
        assert web["slot"] == live["slot"]
        assert web["app server"] == f"{live['server']} under {live['manager']}"
        assert web["health"].startswith("ok"), web
        assert web["lock"] == "free"
        assert web["groups"] == ("flask_vps, flask_vps_web, flask_vps_worker" if name == "web2" else "flask_vps, flask_vps_web")
        assert web["database"] == f"PostgreSQL on {DB}"
        assert web["rotation"] == f"in ({LB})", web
        assert web["workers"] == ("2 running: flaskapp-worker-jobs@1.service, flaskapp-worker-jobs@2.service"
                                  if name == "web2" else "none here"), web
    # The worker host: its release is where current points; no app server.
    worker = fields(apps[WORKER])
    assert worker["groups"] == "flask_vps, flask_vps_worker"
    assert worker["release"] == live_release("worker1") == live_state(node("web1"))["release"]
    assert (worker["slot"], worker["app server"]) == ("none", "none (a worker host)"), worker
    assert worker["health"] == "none (no app server here)", worker
    assert worker["workers"] == "2 running: flaskapp-worker-jobs@1.service, flaskapp-worker-jobs@2.service", worker
    assert worker["lock"] == "free" and worker["database"] == f"PostgreSQL on {DB}", worker
    assert worker["rotation"] == "none (not behind a load balancer)", worker
    postgres = messages(result, "Show PostgreSQL's state")
    assert list(postgres) == [DB], list(postgres)
    db = fields(postgres[DB])
    assert db["groups"] == "flask_vps, flask_vps_db"
    assert db["role"] == f"database host (PostgreSQL for {', '.join(APP_HOSTS)})"
    assert db["postgresql"] == "accepting connections", db


def test_status_changes_nothing_in_check_mode():
    result = playbook("status.yml", "--check")
    assert result.returncode == 0, result.stdout[-6000:]
    assert_changed_nothing(result)
    apps = messages(result, "Show the app's state")
    assert sorted(apps) == sorted(APP_HOSTS), apps
    assert all(fields(apps[web])["health"].startswith("ok") for web in WEB_HOST_NAMES), apps


def test_status_shows_who_holds_the_deploy_lock(host):
    owner = {"controller": "elsewhere.example", "pid": "4242", "user": "alice", "since": "2026-12-02 10:00:00 UTC",
             "action": "deploy", "release": "abc123"}
    host.check_output(f"mkdir {LOCK} && echo '{json.dumps(owner)}' > {LOCK}/owner.json")
    try:
        result = playbook("status.yml")
    finally:
        host.check_output(f"rm -r {LOCK}")
    assert result.returncode == 0, result.stdout[-6000:]
    apps = messages(result, "Show the app's state")
    lock = fields(apps[WEB])["lock"]
    assert lock == "held: deploy of release abc123 by alice@elsewhere.example (pid 4242) since 2026-12-02 10:00:00 UTC"
    # Each web host has its own lock: web2's stays free.
    assert fields(apps[WEB2])["lock"] == "free"


def test_logs_show_the_apps_journal_labelled_by_host():
    result = playbook("logs.yml", "-e", "lines=5")
    assert result.returncode == 0, result.stdout[-6000:]
    assert_changed_nothing(result)
    shown = messages(result, "Show the log")
    assert sorted(shown) == sorted(APP_HOSTS), list(shown)
    for web in APP_HOSTS:
        assert 0 < len(shown[web]) <= 5
        assert all(line.startswith(f"{web} | ") for line in shown[web])
    # Gunicorn's access log: the health checks reach each web host's journal;
    # the workers' own lines the worker hosts'.
    everything = messages(playbook("logs.yml", *extra(lines=10000, since="1 day ago")), "Show the log")
    for web in WEB_HOST_NAMES:
        assert any("/healthz" in line for line in everything[web]), everything[web][-20:]
        assert len(everything[web]) > 5
    for name in ("web2", "worker1"):
        assert any(f"Worker {name}/" in line for line in everything[NAMES[name]]), everything[NAMES[name]][-20:]
    assert not any("Worker web1/" in line for line in everything[WEB])


def test_logs_honour_since():
    result = playbook("logs.yml", "-e", "since=2099-01-01")
    assert result.returncode == 0, result.stdout[-6000:]
    assert messages(result, "Show the log") == {web: [f"{web} | (no lines since 2099-01-01)"] for web in APP_HOSTS}


@pytest.mark.parametrize(("options", "variable"), [
    (("-e", "lines=abc"), "lines must be"), (("-e", "lines=0"), "lines must be"), (("-e", "lines=-5"), "lines must be"),
    (extra(since="; rm -rf /"), "since must be"), (("-e", "since="), "since must be"),
    (("-e", "follow=maybe"), "follow is true or false"), (("-e", "follow=true"), "cannot follow a log"),
    (("-e", "since=10 min ago"), "was cut at its first space"),
])
def test_logs_refuse_bad_values_naming_the_variable(options: tuple[str, ...], variable: str):
    result = playbook("logs.yml", *options)
    assert result.returncode != 0
    assert variable in result.stdout, result.stdout[-3000:]


def test_logs_follow_prints_the_ssh_command():
    result = playbook("logs.yml", "-e", "follow=true")
    for web in WEB_HOST_NAMES:
        assert f"@{web} sudo journalctl --follow --unit '{APP}@*'" in result.stdout, result.stdout[-3000:]
    assert f"@{WORKER} sudo journalctl --follow --unit '{APP}-worker-*' --unit '{APP}-timer-*'" in result.stdout


def test_exec_runs_a_flask_command_in_the_live_release(host):
    result = playbook("exec.yml", *extra(cmd="flask routes && pwd"))
    assert result.returncode == 0, result.stdout[-6000:]
    assert_changed_nothing(result)
    shown = messages(result, "Show what it printed")
    assert list(shown) == [WEB]
    output = json.dumps(shown[WEB])
    assert "/healthz" in output
    assert json.dumps(live_state(host)["release_dir"]) in output
    console = messages(result, "Say how to open a console")[WEB]
    assert "ssh -t" in console and f"sudo -u {APP}" in console and console.endswith("flask shell")


def test_exec_gives_the_app_its_config_from_the_environment_on_the_host_named():
    check = "python -c \"from wsgi import app; print('secret key set:', bool(app.config.get('SECRET_KEY')))\""
    result = playbook("exec.yml", *extra(cmd=check + " && hostname", host=WEB2))
    assert result.returncode == 0, result.stdout[-6000:]
    shown = messages(result, "Show what it printed")
    assert list(shown) == [WEB2]
    assert "secret key set: True" in result.stdout
    assert "web2" in json.dumps(shown[WEB2])
    assert secret_key(node("web2")) not in result.stdout + result.stderr


def test_exec_runs_in_the_current_release_on_a_worker_host():
    """worker1 runs no app server: the command runs where `current` points, with
    the environment its workers load."""
    check = "python -c \"from wsgi import app; print('secret key set:', bool(app.config.get('SECRET_KEY')))\""
    result = playbook("exec.yml", *extra(cmd=check + " && pwd -P", host=WORKER))
    assert result.returncode == 0, result.stdout[-6000:]
    shown = json.dumps(messages(result, "Show what it printed")[WORKER])
    assert "secret key set: True" in shown
    assert f"/srv/{APP}/releases/{live_release('worker1')}" in shown, shown


def test_exec_keeps_the_secret_out_of_argv_but_in_the_environment(host):
    secret = secret_key(host)
    command, environ = ansible_playbook_command(PROJECT_DIR / "playbooks" / "exec.yml", *extra(cmd="sleep 25"), **JSON)
    running = subprocess.Popen(command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(60):
            pids = host.run("pgrep -u flaskapp -x sleep").stdout.split()
            if pids:
                break
            time.sleep(0.5)
        assert pids, "the command never started"
        assert secret not in host.check_output("ps -eo args")
        assert f"FLASK_SECRET_KEY={secret}" in host.check_output(f"tr '\\0' '\\n' < /proc/{pids[0]}/environ")
        assert host.check_output(f"ps -o user= -p {pids[0]}").strip() == APP
    finally:
        out, err = running.communicate(timeout=120)
    assert running.returncode == 0, out[-4000:]
    assert secret not in out + err


@pytest.mark.parametrize(("options", "said"), [
    ((), "cmd must be"), (("-e", "cmd="), "cmd must be"), (extra(cmd="   "), "cmd must be"),
    (extra(cmd="flask routes", host=DB), "does not run the app"),
    (extra(cmd="flask routes", host=LB), "does not run the app"),
    (extra(cmd="flask routes", host="nosuchhost"), "does not run the app"),
    (("-e", "cmd=flask routes"), "was cut at its first space"),
])
def test_exec_refuses_before_contacting_a_host(options: tuple[str, ...], said: str):
    result = playbook("exec.yml", *options)
    assert result.returncode != 0
    assert said in result.stdout, result.stdout[-3000:]
    assert list(report(result)["stats"]) == ["localhost"]


def test_an_operator_drains_a_web_host_and_puts_it_back():
    """rotation.yml: web1 out, and every request goes to web2 (nothing reloaded);
    the last web host in rotation cannot go out; web1 back in, both serve."""
    lb = container_ip(node("lb1"))
    result = playbook("rotation.yml", "-e", f"host={WEB}", "-e", "rotation=out")
    assert result.returncode == 0, result.stdout[-6000:]
    assert served_by(lb) == {WEB2}
    status = messages(playbook("status.yml"), "Show the app's state")
    assert fields(status[WEB])["rotation"].startswith("out (drained by an operator"), status[WEB]
    assert fields(status[WEB2])["rotation"] == f"in ({LB})"
    # Again: nothing changes. web2 out too: refused, web2 keeps serving.
    again = playbook("rotation.yml", "-e", f"host={WEB}", "-e", "rotation=out")
    assert again.returncode == 0 and all(s["changed"] == 0 for s in report(again)["stats"].values()), again.stdout[-3000:]
    refused = playbook("rotation.yml", "-e", f"host={WEB2}", "-e", "rotation=out")
    assert refused.returncode != 0
    assert f"Taking {WEB2} out would leave no web host in the load balancer's rotation" in refused.stdout, refused.stdout[-3000:]
    assert served_by(lb) == {WEB2}
    back = playbook("rotation.yml", "-e", f"host={WEB}", "-e", "rotation=in")
    assert back.returncode == 0, back.stdout[-6000:]
    assert served_by_all(lb, {WEB, WEB2}) == {WEB, WEB2}
    assert node("lb1").check_output("iptables -S OUTPUT | grep -c flask-vps || true") == "0"


@pytest.mark.parametrize(("options", "said"), [
    (("-e", "rotation=out"), "is not a web host behind the load balancer"),
    (("-e", f"host={WORKER}", "-e", "rotation=out"), "is not a web host behind the load balancer"),
    (("-e", f"host={LB}", "-e", "rotation=out"), "is not a web host behind the load balancer"),
    (("-e", f"host={WEB}", "-e", "rotation=sideways"), "rotation must be out"),
    (("-e", f"host={WEB}"), "rotation must be out"),
])
def test_rotation_refuses_before_contacting_a_host(options: tuple[str, ...], said: str):
    result = playbook("rotation.yml", *options)
    assert result.returncode != 0
    assert said in result.stdout, result.stdout[-3000:]
    assert list(report(result)["stats"]) == ["localhost"]
