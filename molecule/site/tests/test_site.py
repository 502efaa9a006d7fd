"""The whole product, seen from outside: HTTPS through nginx with the CA that
site.yml fetched, the app's data in PostgreSQL, then deploys (one with a
migration), a failing migration, a failing deploy and a rollback while a load
generator keeps asking, a backup and a restore, and a --check --diff run that
must find nothing to do.

The tests run in file order and build on each other (the release served at the
start, the note written before the deploys), like an operator's day.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

SITE = "flask-vps.localhost"
ROOT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
# This run's own files live under the project's .cache, not in pytest's or
# Molecule's temporary directories: concurrent pytest sessions prune old
# basetemp directories, which removed them mid-run. prepare.yml makes the
# operator's key here, the converge fetches the CA here
# (molecule/site/group_vars/flask_vps.yml), and the inventory is copied here once.
CONTAINER = f"fv-site-{os.environ.get('MOLECULE_DISTRO', 'debian13')}{os.environ.get('FLASK_VPS_NAME_SUFFIX', '')}"
WORK = ROOT / ".cache" / "molecule-site" / CONTAINER
WORK.mkdir(parents=True, exist_ok=True)
INVENTORY = WORK / "inventory"
if (EPHEMERAL / "inventory").is_dir():
    # A fresh copy: a run before this one on the same machine left its own.
    shutil.rmtree(INVENTORY, ignore_errors=True)
    shutil.copytree(EPHEMERAL / "inventory", INVENTORY, symlinks=True, dirs_exist_ok=True)
CA_FILE = WORK / "ca.crt"
# The output of this run's verbose playbook run (site.yml --check --diff -v, or the
# site.yml over SSH, whichever this Debian runs): the audit searches it for the secret.
VERBOSE_LOG = WORK / "ansible-v.log"
VERBOSE_LOG.unlink(missing_ok=True)
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "scripts"))
import loadgen  # noqa: E402  (scripts/loadgen.py: the load and its during())
STATE: dict[str, str] = {}


def container_address() -> str:
    """The container's address now: a restart (the crash tests) gives it a new one."""
    inspect = subprocess.run(
        ["docker", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", CONTAINER],
        capture_output=True, text=True, timeout=60, check=True)
    return inspect.stdout.split()[0]


@pytest.fixture
def address(host) -> str:
    # Taking host keeps every test that takes address under testinfra's host
    # parameter, so pytest runs them in file order (it moves parametrised tests
    # apart from plain ones).
    return container_address()


def tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(CA_FILE))


def request(address: str, path: str, method: str = "GET", body: bytes | None = None,
            headers: dict[str, str] | None = None, port: int = 443, scheme: str = "https"):
    """One request to the container's address, by the site's name (SNI and Host)."""
    import http.client

    if scheme == "https":
        conn = http.client.HTTPSConnection(SITE, port, context=tls_context(), timeout=10)
    else:
        conn = http.client.HTTPConnection(SITE, port, timeout=10)
    conn._create_connection = lambda _a, timeout, source: socket.create_connection((address, port), timeout, source)
    conn.request(method, path, body=body, headers={"Host": SITE, **(headers or {})})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data


def served_release(address: str) -> str:
    response, data = request(address, "/healthz")
    assert response.status == 200, data
    return json.loads(data)["release"]


def playbook_run(name: str, *args: str) -> tuple[list[str], dict]:
    """The command line and settings that run one of the project's playbooks here."""
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(ROOT / "roles"), ANSIBLE_FORCE_COLOR="false",
               PATH=f"{BIN}:{os.environ['PATH']}")
    env.pop("ANSIBLE_CONFIG", None)
    return [str(BIN / "ansible-playbook"), f"playbooks/{name}", "-i", str(INVENTORY), *args], {"cwd": ROOT, "env": env}


def playbook(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    command, settings = playbook_run(name, *args)
    return subprocess.run(command, capture_output=True, text=True, timeout=900, check=False, **settings)


# Migrations a test deployed, by file name: every later copy of the app carries
# them, as every later release of a real app would (a release without a revision
# the database is at cannot run `flask db upgrade`). So once a migration went
# live, a run that ships app/ itself would fail: later runs name the source of
# the live release (STATE["source"], set by each deploy that switched).
MIGRATIONS: dict[str, str] = {}


def live_source() -> list[str]:
    """The -e that ships the live release's own source: a run with nothing new to build."""
    return ["-e", f"flask_vps_app_source_dir={STATE['source']}"] if "source" in STATE else []


def app_copy(wsgi_extra: str, migrations: dict[str, str] | None = None) -> Path:
    """A copy of the app whose wsgi.py ends with wsgi_extra: a new release id."""
    target = Path(tempfile.mkdtemp(dir=WORK)) / "app"
    shutil.copytree(ROOT / "app", target, ignore=shutil.ignore_patterns(".venv", "__pycache__", "instance",
                                                                          ".pytest_cache", "tests"))
    with (target / "wsgi.py").open("a") as wsgi:
        wsgi.write(wsgi_extra)
    for name, source in {**MIGRATIONS, **(migrations or {})}.items():
        (target / "webapp" / "migrations" / "versions" / name).write_text(source)
    return target


def migration(revision: str, down_revision: str, upgrade: str) -> str:
    """An Alembic revision whose upgrade() runs the given lines."""
    return (f"from alembic import op\nimport sqlalchemy as sa\n\nrevision = {revision!r}\n"
            f"down_revision = {down_revision!r}\nbranch_labels = None\ndepends_on = None\n\n\n"
            f"def upgrade() -> None:\n{upgrade}\n")


def sql(host, query: str) -> str:
    """A query in the app's database, as postgres over the socket (peer)."""
    return host.check_output(f"runuser -u postgres -- psql -d flaskapp -AtX -c {shlex.quote(query)}")


def note_columns(host) -> list[str]:
    return sql(host, "SELECT column_name FROM information_schema.columns WHERE table_name = 'notes' "
                     "ORDER BY column_name").split()


def backups(host) -> list[str]:
    return host.check_output("ls -1 /var/backups/postgresql").split()


def under_load(address: str, name: str, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    """Run a playbook while scripts/loadgen.py keeps requesting /healthz over HTTPS."""
    command, settings = playbook_run(name, *args)
    result, load, _ = loadgen.during(command, load_arguments(address), timeout=900, **settings)
    return result, load


def load_arguments(address: str) -> list[str]:
    return ["--url", f"https://{SITE}/healthz", "--connect", f"{address}:443", "--cacert", str(CA_FILE),
         # Constant, not saturating: 4 clients, each at most 100 requests a second.
         # Unpaced, the two site scenarios' generators took most of the 2 cores
         # the other scenarios run on.
         "--requests", "50000", "--seconds", "600", "--concurrency", "4", "--pause", "0.01",
         # A request still waiting after 30 s counts as failed; the test machine
         # runs other scenarios beside this one, so 10 s would measure the machine.
         "--timeout", "30",
         # Strict: no retry of any kind (a request on a kept-alive connection that
         # the server closes counts as failed), and a writer whose every
         # acknowledged note must be stored afterwards, and nothing else.
         "--strict", "--post-workers", "1", "--post-pause", "0.05"]


def assert_strict_load_passed(load: dict, minimum: int) -> None:
    assert load["sent"] >= minimum and load["failed"] == 0, (load, load["errors"])
    assert load["closed_by_server"] == 0 and load["retried"] == 0, load
    assert load["writes_failed"] == load["writes_missing"] == load["writes_unacknowledged_stored"] == 0, load["writes_problems"]
    assert load["writes_acknowledged"] == load["writes_sent"] > 0, load


def nginx_processes(host) -> str:
    """nginx's master and workers: a reload would replace the workers."""
    return host.check_output("pgrep -a nginx | sort")


def recap(output: str) -> dict[str, int]:
    line = re.search(r"^fv-\S+\s+:\s+(.*)$", output.split("PLAY RECAP")[-1], re.MULTILINE)
    assert line, output[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line.group(1))}


def test_healthz_over_https_with_the_fetched_ca(address: str) -> None:
    response, data = request(address, "/healthz")
    assert response.status == 200
    body = json.loads(data)
    assert body["status"] == "ok" and body["database"] == "ok"
    STATE["release"] = body["release"]


def test_certificate_is_for_the_site_and_checked(address: str) -> None:
    with socket.create_connection((address, 443), timeout=10) as raw:
        with tls_context().wrap_socket(raw, server_hostname=SITE) as tls:
            names = [v for k, v in tls.getpeercert()["subjectAltName"] if k == "DNS"]
            assert SITE in names
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    # Without the sandbox's CA the certificate is not trusted.
    with socket.create_connection((address, 443), timeout=10) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ssl.create_default_context().wrap_socket(raw, server_hostname=SITE)


def test_http_redirects_to_https(address: str) -> None:
    response, _ = request(address, "/some/page?x=1", scheme="http", port=80)
    assert response.status in (301, 308)
    assert response.getheader("Location") == f"https://{SITE}/some/page?x=1"


def test_page_shows_the_release_with_security_headers(address: str) -> None:
    response, data = request(address, "/")
    assert response.status == 200
    assert f'<span id="release">{STATE["release"]}</span>' in data.decode()
    assert "default-src 'self'" in response.getheader("Content-Security-Policy", "")
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert "nginx/" not in response.getheader("Server", "")


def test_static_files_come_from_nginx_with_cache_headers(address: str) -> None:
    response, data = request(address, "/static/style.css")
    assert response.status == 200
    assert response.getheader("Content-Type", "").startswith("text/css")
    assert "max-age=" in response.getheader("Cache-Control", "")
    assert response.getheader("Expires")
    assert data == (ROOT / "app" / "webapp" / "static" / "style.css").read_bytes()


def test_unknown_host_gets_no_site(address: str) -> None:
    with socket.create_connection((address, 443), timeout=10) as raw:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with context.wrap_socket(raw, server_hostname="other.example") as tls:
                tls.sendall(b"GET / HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n")
                answer = tls.recv(200)
        except (ssl.SSLError, ConnectionError):
            return
    assert b"flask-vps" not in answer and not answer.startswith(b"HTTP/1.1 200")


def test_only_ssh_http_https_are_open(address: str) -> None:
    for port, expected in [(22, True), (80, True), (443, True), (8000, False), (5000, False), (8080, False)]:
        with socket.socket() as sock:
            sock.settimeout(3)
            reachable = sock.connect_ex((address, port)) == 0
        assert reachable is expected, port


def test_a_note_written_through_the_app_is_stored(address: str) -> None:
    text = f"written before the deploys {uuid.uuid4().hex}"
    response, data = request(address, "/api/notes", "POST", json.dumps({"text": text}).encode(),
                             {"Content-Type": "application/json"})
    assert response.status == 201, data
    STATE["note"] = text
    response, data = request(address, "/api/notes")
    assert text in [n["text"] for n in json.loads(data)["notes"]]


def test_the_apps_data_is_in_postgresql_over_the_socket(host) -> None:
    assert STATE["note"] in sql(host, "SELECT text FROM notes").splitlines()
    assert sql(host, "SELECT version_num FROM alembic_version") == "0003"
    assert not host.file("/srv/flaskapp/shared/data/app.sqlite3").exists
    # The app logs in over the Unix socket: PostgreSQL has no TCP listener at all.
    assert ":5432" not in host.check_output("ss -Htln")
    # The password is in the environment file only (root and the app's group).
    password = "sandbox-only-" + (WORK / "database_password").read_text().strip()
    env = host.file(host.file("/etc/flask-vps/flaskapp.env").linked_to)
    assert (env.user, env.group, env.mode) == ("root", "flaskapp", 0o640)
    assert f"{password}@/flaskapp?host=/var/run/postgresql" in env.content_string
    assert password not in host.check_output("ps -eo args")
    STATE["database_password"] = password


@pytest.mark.only_on("debian13")
def test_check_diff_finds_nothing_to_change(address: str) -> None:
    # Before the deploys, while the live release is still site.yml's own: the
    # address fixture keeps this test in file order (pytest moves the tests that
    # take no host-parametrised fixture to the end). Verbose, and kept: the audit
    # at the end searches it for the secret.
    result = playbook("site.yml", "--check", "--diff", "-v")
    VERBOSE_LOG.write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    counts = recap(result.stdout)
    assert counts["changed"] == 0 and counts["failed"] == 0, result.stdout[-6000:]
    assert STATE["database_password"] not in result.stdout + result.stderr


@pytest.mark.only_on("debian12")
def test_check_of_a_new_release_reports_the_switch_and_starts_nothing(host, address: str) -> None:
    # deploy.yml --check with code that would make a new release: the run succeeds,
    # says what a real run would switch, and nothing is built, started or served.
    before = served_release(address)
    releases = host.check_output("ls -1 /srv/flaskapp/releases")
    units = host.check_output("systemctl list-units --no-legend --plain 'flaskapp@*'")
    source = app_copy(f"\n# site scenario, checked only {uuid.uuid4().hex}\n")
    result = playbook("deploy.yml", "--check", "-e", f"flask_vps_app_source_dir={source}")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "Check mode: release" in result.stdout and "nothing was started" in result.stdout, result.stdout[-6000:]
    assert recap(result.stdout)["changed"] > 0, result.stdout[-6000:]
    assert host.check_output("ls -1 /srv/flaskapp/releases") == releases
    assert host.check_output("systemctl list-units --no-legend --plain 'flaskapp@*'") == units
    assert served_release(address) == before


def test_deploy_with_a_migration_under_load_drops_nothing(host, address: str) -> None:
    # Expand/contract: the migration adds a nullable column, which the old
    # release (still serving, and writing, until the switch) ignores.
    before = served_release(address)
    nginx_before = nginx_processes(host)
    backups_before = backups(host)
    added = {"0004_site_tag.py": migration("0004", "0003",
                                           "    op.add_column('notes', sa.Column('site_tag', sa.Text(), nullable=True))")}
    source = app_copy(f"\n# site scenario release {uuid.uuid4().hex}\n", added)
    result, load = under_load(address, "deploy.yml", "-e", f"flask_vps_app_source_dir={source}")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert_strict_load_passed(load, 1000)
    MIGRATIONS.update(added)
    STATE["source"] = str(source)
    assert "site_tag" in note_columns(host)
    assert sql(host, "SELECT version_num FROM alembic_version") == "0004"
    # flask_vps_backup_before_migrate: one backup, taken before the migration.
    assert len(set(backups(host)) - set(backups_before)) == 1
    # The switch moved the live socket link: nginx was not reloaded.
    assert nginx_processes(host) == nginx_before
    after = served_release(address)
    assert after != before
    assert after in result.stdout
    STATE["deployed"] = after


def test_note_survives_the_deploy(address: str) -> None:
    _, data = request(address, "/api/notes")
    assert STATE["note"] in [n["text"] for n in json.loads(data)["notes"]]


@pytest.mark.only_on("debian13")
def test_a_failing_migration_changes_nothing_and_the_release_keeps_serving(host, address: str) -> None:
    # One transaction for the whole upgrade: the column added before the error
    # is rolled back with it (PostgreSQL's DDL is transactional).
    before = served_release(address)
    columns = note_columns(host)
    failing = {"0005_fails.py": migration("0005", "0004", (
        "    op.add_column('notes', sa.Column('half_done', sa.Text(), nullable=True))\n"
        "    op.execute('SELECT 1 / 0')"))}
    source = app_copy(f"\n# site scenario, failing migration {uuid.uuid4().hex}\n", failing)
    result, load = under_load(address, "deploy.yml", "-e", f"flask_vps_app_source_dir={source}")
    assert result.returncode != 0, result.stdout[-6000:]
    assert "division by zero" in result.stdout, result.stdout[-6000:]
    assert_strict_load_passed(load, 100)
    assert load["releases"] == [before], load
    assert note_columns(host) == columns
    assert sql(host, "SELECT version_num FROM alembic_version") == "0004"
    assert served_release(address) == before


@pytest.mark.only_on("debian12")
def test_release_failing_its_health_check_never_takes_traffic(address: str) -> None:
    before = served_release(address)
    broken = app_copy((
        "\n\n# Broken on purpose by the site scenario: imports, but never healthy.\n"
        "from flask import abort, request\n\n\n"
        "@app.before_request\n"
        "def refuse_health():\n"
        "    if request.path == '/healthz':\n"
        "        abort(503)\n"))
    result, load = under_load(address, "deploy.yml", "-e", f"flask_vps_app_source_dir={broken}",
                              "-e", "gunicorn_healthcheck_retries=5")
    assert result.returncode != 0, result.stdout[-6000:]
    assert "did not pass its health check" in result.stdout, result.stdout[-6000:]
    assert_strict_load_passed(load, 200)
    assert load["releases"] == [before], load
    assert served_release(address) == before


def test_rollback_under_load_drops_nothing(host, address: str) -> None:
    nginx_before = nginx_processes(host)
    result, load = under_load(address, "rollback.yml")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert_strict_load_passed(load, 200)
    assert nginx_processes(host) == nginx_before
    assert served_release(address) == STATE["release"]


def test_rollback_reads_current_not_the_newest_folder(host, address: str) -> None:
    # current points at the first release again, which is not the newest folder.
    current = host.file("/srv/flaskapp/current").linked_to
    assert current.endswith("/" + STATE["release"])
    oldest = host.check_output("ls -1tr /srv/flaskapp/releases/*/REVISION | head -n 1").split("/")[-2]
    if oldest == STATE["release"]:
        # On a fresh host nothing was built before it: a rollback has nowhere to go.
        result = playbook("rollback.yml")
        assert result.returncode != 0
        assert "No release was built before the live one" in result.stdout, result.stdout[-4000:]
        assert served_release(address) == STATE["release"]
    # Any kept release can be named.
    result = playbook("rollback.yml", "-e", f"release={STATE['deployed']}")
    assert result.returncode == 0, result.stdout[-6000:]
    assert served_release(address) == STATE["deployed"]


def test_note_survives_the_rollbacks(address: str) -> None:
    _, data = request(address, "/api/notes")
    assert STATE["note"] in [n["text"] for n in json.loads(data)["notes"]]


def test_backup_then_restore_finds_the_data_again(host, address: str) -> None:
    def notes() -> list[str]:
        response, data = request(address, "/api/notes")
        assert response.status == 200, data
        return [n["text"] for n in json.loads(data)["notes"]]

    result = playbook("backup.yml")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    name = re.search(r"Backup (flaskapp-\S+\.dump) in /var/backups/postgresql", result.stdout)
    assert name, result.stdout[-4000:]
    # Gone after the backup: deleted rows, and a note written too late to be in it.
    sql(host, "DELETE FROM notes")
    assert STATE["note"] not in notes()

    refused = playbook("restore.yml", "-e", f"backup={name.group(1)}")
    assert refused.returncode != 0 and "restore_confirm=yes" in refused.stdout, refused.stdout[-4000:]
    assert STATE["note"] not in notes()

    result = playbook("restore.yml", "-e", f"backup={name.group(1)}", "-e", "restore_confirm=yes")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    # The app's pooled connections were closed by the restore; it reconnects.
    assert STATE["note"] in notes()
    assert sql(host, "SELECT version_num FROM alembic_version") == "0004"


# Where a deploy is killed (SIGKILL to ansible-playbook and its workers), by the
# task whose header it has just printed.
KILL_POINTS = {
    "before-the-new-slot-starts": "Start the new slot]",
    "after-the-new-slot-started": "Health-check the new slot through its socket]",
    "after-the-switch": "Point current at the release that serves]",
    "before-the-old-slot-stops": "Wait until the old slot's socket has no queued connection]",
}


def deploy_killed_at(marker: str, source: Path) -> tuple[bool, str]:
    """Run deploy.yml and SIGKILL its whole process group when marker is printed."""
    command, settings = playbook_run("deploy.yml", "-e", f"flask_vps_app_source_dir={source}")
    settings["env"]["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True, **settings)
    seen: list[str] = []
    killed = False
    for line in process.stdout:
        seen.append(line)
        if marker in line:
            os.killpg(process.pid, signal.SIGKILL)
            killed = True
            break
    process.stdout.close()
    process.wait(timeout=120)
    return killed, "".join(seen[-60:])


def healthy_release_after_restart() -> str:
    """Restart the container as a crash would (no clean shutdown) and wait for the site."""
    subprocess.run(["docker", "restart", "--time", "0", CONTAINER], check=True, capture_output=True, timeout=120)
    deadline = time.monotonic() + 180
    while True:
        try:
            return served_release(container_address())
        except (OSError, AssertionError, http.client.HTTPException, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


# Two kill points on each Debian: the four together on the two runs.
@pytest.mark.parametrize("point", [
    pytest.param(point, marks=pytest.mark.only_on(("debian13", "debian12")[number % 2]))
    for number, point in enumerate(KILL_POINTS)])
def test_deploy_killed_at_any_step_leaves_the_site_serving(address: str, point: str) -> None:
    before = served_release(address)
    source = app_copy(f"\n# site scenario, killed {point} {uuid.uuid4().hex}\n")
    with loadgen.under_load(load_arguments(address)) as load:
        killed, output = deploy_killed_at(KILL_POINTS[point], source)
    assert killed, output
    assert_strict_load_passed(load, 100)
    # A crash right after the kill: the host comes back on a healthy release.
    assert healthy_release_after_restart() in (before, *load["releases"])
    # And the next deploy of the same code completes and serves it.
    result = playbook("deploy.yml", "-e", f"flask_vps_app_source_dir={source}")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    after = served_release(container_address())
    assert after != before and after in result.stdout
    STATE["source"] = str(source)


@pytest.mark.only_on("debian13")
def test_a_run_beside_a_deploy_that_holds_the_lock_is_refused(host, address: str) -> None:
    lock = "/run/lock/flask-vps-flaskapp-deploy"
    owner = {"controller": "elsewhere.example", "pid": "4242", "user": "alice", "since": "2026-12-02 10:00:00 UTC",
             "action": "deploy", "release": "abc123"}
    host.check_output(f"mkdir {lock} && echo '{json.dumps(owner)}' > {lock}/owner.json")
    before = served_release(address)
    refused = playbook("rollback.yml")
    assert refused.returncode != 0
    for word in ("locked by another run", "alice@elsewhere.example", "since 2026-12-02 10:00:00 UTC",
                 "release abc123", """-e '{"flask_vps_deploy_unlock": true}'"""):
        assert word in refused.stdout, refused.stdout[-4000:]
    assert served_release(address) == before and host.file(lock).is_directory
    # The documented flag clears it.
    cleared = playbook("deploy.yml", "-e", '{"flask_vps_deploy_unlock": true}', *live_source())
    assert cleared.returncode == 0, cleared.stdout[-6000:]
    assert not host.file(lock).exists


@pytest.mark.only_on("debian13")
def test_a_lock_left_by_a_killed_run_from_this_machine_is_cleared(host) -> None:
    lock = "/run/lock/flask-vps-flaskapp-deploy"
    owner = {"controller": socket.gethostname(), "pid": "999999", "user": "bob", "since": "2026-12-02 11:00:00 UTC",
             "action": "deploy", "release": "(choosing)"}
    host.check_output(f"mkdir {lock} && echo '{json.dumps(owner)}' > {lock}/owner.json")
    result = playbook("deploy.yml", *live_source())
    assert result.returncode == 0, result.stdout[-6000:]
    assert "its process is gone" in result.stdout
    assert not host.file(lock).exists


def ssh_inventory(address: str) -> Path:
    """The scenario's inventory, reached over real SSH as an operator reaches a VPS: the
    admin user (connect.yml finds it) with the operator's key, through the firewall's
    SSH rate limit and fail2ban."""
    inventory = WORK / "ssh-inventory"
    shutil.rmtree(inventory, ignore_errors=True)
    shutil.copytree(INVENTORY, inventory, symlinks=True)
    (inventory / "host_vars").mkdir(exist_ok=True)
    (inventory / "host_vars" / f"{CONTAINER}.yml").write_text(json.dumps({
        "ansible_connection": "ssh", "ansible_host": address,
        "ansible_ssh_private_key_file": str(WORK / "operator_ed25519"),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}))
    return inventory


@pytest.mark.only_on("debian12")
def test_site_deploy_and_rollback_back_to_back_over_ssh(host, address: str) -> None:
    """Issue 13: an operator who runs site.yml, deploy.yml and rollback.yml with no pause
    between them, over SSH, is never refused by the project's own SSH rate limit or
    fail2ban, and each run passes."""
    inventory = ssh_inventory(address)
    failed_before = host.check_output("fail2ban-client status sshd")
    live = served_release(address)
    source = app_copy(f"\n# site scenario, over SSH {uuid.uuid4().hex}\n")
    # site.yml verbose: on the Debian that runs no --check --diff -v, the audit
    # searches this output for the secret.
    for name, args in (("site.yml", ("-v", *live_source())),
                       ("deploy.yml", ("-e", f"flask_vps_app_source_dir={source}")),
                       ("rollback.yml", ())):
        command, settings = playbook_run(name, *args)
        command[command.index(str(INVENTORY))] = str(inventory)
        settings["env"]["ANSIBLE_HOST_KEY_CHECKING"] = "False"
        result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False, **settings)
        assert result.returncode == 0, (name, result.stdout[-6000:] + result.stderr[-3000:])
        assert "Logging in as deploy on port 22" in result.stdout, (name, result.stdout[-3000:])
        if name == "site.yml":
            VERBOSE_LOG.write_text(result.stdout + result.stderr)
            assert served_release(address) == live
        if name == "deploy.yml":
            deployed = served_release(address)
            assert deployed != live and deployed in result.stdout
    assert served_release(address) not in (deployed, "")
    status = host.check_output("fail2ban-client status sshd")
    total = re.compile(r"Total failed:\s+(\d+)")
    assert total.search(status).group(1) == total.search(failed_before).group(1), status
    assert re.search(r"Currently banned:\s+0\b", status), status


def test_outside_audit_passes() -> None:
    """scripts/audit.py (make audit on the sandbox) on this host: every threshold holds."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "audit.py"), "--container", CONTAINER, "--server-name", SITE,
         "--ca", str(CA_FILE), "--ssh-key", str(WORK / "operator_ed25519"),
         "--ansible-output", str(VERBOSE_LOG), "--json", str(WORK / "audit.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=1200, check=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
