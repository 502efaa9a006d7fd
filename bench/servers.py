"""The app servers side by side (`make bench`, or `bench/run.py --servers-only` on
a running sandbox): Gunicorn, Uvicorn (the Flask app through a2wsgi), Waitress
and uWSGI, each made the live server of the sandbox by a deploy
(`deploy.yml -e flask_vps_app_server=<server>`, as an operator switches), then:

- the page through nginx (HTTPS), as users get it;
- the same page straight from the server: a second instance started with the live
  slot's own command line, its Unix socket swapped for a loopback TCP port (wrk
  speaks TCP only), as the app user with the app's environment, so the same
  workers and threads;
- start-to-ready: from starting that instance to its first 200 on /healthz;
- memory of all that instance's processes after its load: the sum of their RSS,
  and of their PSS (shared pages counted once: the forked workers share the
  imported app);
- the live slot's `systemd-analyze security` exposure.

For uWSGI also the two ways nginx can talk to it, like for like on loopback
plain HTTP: `proxy_pass` to its HTTP socket (what the role configures, so every
server sits behind the same proxy configuration) and `uwsgi_pass` to a uwsgi-
protocol socket, each through a temporary nginx server on a loopback port.

The sandbox goes back to Gunicorn (the default) at the end.
"""

from __future__ import annotations

import re
import subprocess
import time

import provisioning  # bench/provisioning.py

SERVERS = ["gunicorn", "uvicorn", "waitress", "uwsgi"]
DIRECT_PORT = 9003
DIRECT_UNIT = "bench-server"
# uWSGI's protocol comparison: a second uWSGI speaking the uwsgi protocol, and a
# temporary nginx server per protocol.
UWSGI_PROTOCOL_PORT, NGINX_HTTP_PORT, NGINX_UWSGI_PORT = 9004, 9005, 9006
NGINX_BENCH_CONF = "/etc/nginx/conf.d/bench-uwsgi.conf"


def direct_argv(argv: list[str], server: str, port: int) -> list[str]:
    """The live slot's command line with its socket on 127.0.0.1:port instead."""
    address = f"127.0.0.1:{port}"
    swap = {
        "gunicorn": {"--bind": ["--bind", address], "--control-socket": ["--no-control-socket"]},
        "uvicorn": {"--uds": ["--host", "127.0.0.1", "--port", str(port)]},
        "waitress": {"--unix-socket": ["--listen", address]},
        "uwsgi": {"--http-socket": ["--http-socket", address]},
    }[server]
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in swap:
            out += swap[arg]
            skip = True  # the option's value: the slot's socket
        else:
            out.append(arg)
    if out == argv:
        raise SystemExit(f"bench: no socket option to swap in {server}'s command line: {argv}")
    return out


def slot_command(unit_property, unit: str) -> tuple[list[str], str, list[str]]:
    """A slot unit's command line, working directory and environment files."""
    argv = re.search(r"argv\[\]=([^;]+);", unit_property(unit, "ExecStart")).group(1).split()
    env_files = [path.split(" ")[0] for path in unit_property(unit, "EnvironmentFiles").split("\n") if path]
    return argv, unit_property(unit, "WorkingDirectory"), env_files


def transient(sandbox, name: str, argv: list[str], workdir: str, env_files: list[str]) -> float:
    """argv as a transient unit (the app user, the app's environment files), any
    leftover of the same name stopped first; returns when it was started."""
    sandbox("systemctl", "stop", name, check=False)
    started = time.monotonic()
    sandbox("systemd-run", "--quiet", "--collect", f"--unit={name}", "--uid=flaskapp", "--gid=flaskapp",
            f"--working-directory={workdir}", "--property=Type=exec", "--property=KillMode=mixed",
            *[f"--property=EnvironmentFile={path}" for path in env_files], *argv)
    return started


def wait_answering(sandbox, port: int, started: float, what: str) -> float:
    """Seconds from `started` until 127.0.0.1:port answers /healthz with 200."""
    probe = ["docker", "exec", "flask-vps-sandbox", "curl", "-fsS", "-o", "/dev/null", "-H",
             "Host: flask-vps.localhost", f"http://127.0.0.1:{port}/healthz"]
    while time.monotonic() - started < 60:
        if subprocess.run(probe, capture_output=True).returncode == 0:
            return round(time.monotonic() - started, 2)
        time.sleep(0.05)
    log = sandbox("journalctl", "--no-pager", "-n", "40", "-u", what, check=False)
    raise SystemExit(f"bench: {what} on port {port} did not answer within 60 s:\n{log}")


def start_transient(sandbox, name: str, argv: list[str], workdir: str, env_files: list[str], port: int) -> float:
    """argv as a transient unit that answers on 127.0.0.1:port; returns its
    start-to-ready time in seconds."""
    return wait_answering(sandbox, port, transient(sandbox, name, argv, workdir, env_files), name)


def start_direct(sandbox, unit_property, unit: str, server: str, name: str = DIRECT_UNIT,
                 port: int = DIRECT_PORT) -> float:
    """The live slot's server again beside it, on loopback TCP; start-to-ready, s."""
    argv, workdir, env_files = slot_command(unit_property, unit)
    return start_transient(sandbox, name, direct_argv(argv, server, port), workdir, env_files, port)


def stop_direct(sandbox, name: str = DIRECT_UNIT) -> None:
    sandbox("systemctl", "stop", name, check=False)


def uwsgi_protocols(sandbox, unit_property, unit: str, wrk, seconds: int, connections: int) -> dict[str, dict]:
    """nginx -> uWSGI over HTTP (proxy_pass) against the uwsgi protocol
    (uwsgi_pass), with the direct HTTP instance already on DIRECT_PORT."""
    argv, workdir, env_files = slot_command(unit_property, unit)
    protocol_argv = direct_argv(argv, "uwsgi", UWSGI_PROTOCOL_PORT)
    protocol_argv[protocol_argv.index("--http-socket")] = "--socket"
    # Ready when nginx answers through it; start it first, then the nginx servers.
    transient(sandbox, "bench-uwsgi-protocol", protocol_argv, workdir, env_files)
    conf = (f"server {{ listen 127.0.0.1:{NGINX_HTTP_PORT}; location / {{ proxy_set_header Host $host; "
            f"proxy_pass http://127.0.0.1:{DIRECT_PORT}; }} }}\n"
            f"server {{ listen 127.0.0.1:{NGINX_UWSGI_PORT}; location / {{ include uwsgi_params; "
            f"uwsgi_pass 127.0.0.1:{UWSGI_PROTOCOL_PORT}; }} }}\n")
    try:
        sandbox("sh", "-c", f"printf '%s' '{conf}' > {NGINX_BENCH_CONF} && nginx -t -q && systemctl reload nginx")
        for port in (NGINX_HTTP_PORT, NGINX_UWSGI_PORT):
            wait_answering(sandbox, port, time.monotonic(), "nginx")
        return {"proxy_pass (HTTP)": wrk(f"http://127.0.0.1:{NGINX_HTTP_PORT}/", seconds, connections),
                "uwsgi_pass": wrk(f"http://127.0.0.1:{NGINX_UWSGI_PORT}/", seconds, connections)}
    finally:
        sandbox("sh", "-c", f"rm -f {NGINX_BENCH_CONF} && systemctl reload nginx", check=False)
        sandbox("systemctl", "stop", "bench-uwsgi-protocol", check=False)


def memory_mib(sandbox, unit: str) -> dict[str, float]:
    """RSS and PSS summed over the unit's processes, MiB."""
    # The unit's processes as systemd counts them (ps's unit column): no cgroup
    # paths, which differ between cgroup v1 and v2 and inside a container.
    script = ("for p in $(ps -e -o pid=,unit= | awk '$2 == \"" + unit + ".service\" {print $1}'); do "
              "awk '/^Rss:|^Pss:/ {print $1, $2}' /proc/$p/smaps_rollup; done")
    rss = pss = 0
    # As the app user: /proc/<pid>/smaps_rollup needs ptrace rights over the
    # process, which the container's root lacks (no CAP_SYS_PTRACE).
    for line in sandbox("sh", "-c", script, user="flaskapp").splitlines():
        name, kib = line.split()
        if name == "Rss:":
            rss += int(kib)
        else:
            pss += int(kib)
    if not rss:
        raise SystemExit(f"bench: found no process of {unit}.service to measure")
    return {"rss_mib": round(rss / 1024, 1), "pss_mib": round(pss / 1024, 1)}


def exposure(sandbox, unit: str) -> float:
    out = sandbox("systemd-analyze", "security", "--no-pager", unit)
    return float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", out).group(1))


def deploy(server: str) -> float:
    started = time.monotonic()
    result = subprocess.run(provisioning.command("deploy.yml", "-e", f"flask_vps_app_server={server}"),
                            cwd=provisioning.ROOT, env=provisioning.ENV, capture_output=True, text=True, check=False)
    (provisioning.STATE / "logs").mkdir(parents=True, exist_ok=True)
    provisioning.finish(f"server-{server}", result)
    return round(time.monotonic() - started, 1)


def measure(sandbox, unit_property, live_slot, site_answers, wrk, seconds: int, connections: int) -> dict[str, dict]:
    """One row per server; run.py passes its sandbox helpers and wrk."""
    rows: dict[str, dict] = {}
    try:
        for server in SERVERS:
            switch_seconds = deploy(server)
            if site_answers() != 200:
                raise SystemExit(f"bench: the sandbox does not answer after the switch to {server}")
            unit = live_slot()
            row = {"switch_deploy_s": switch_seconds, "exposure": exposure(sandbox, unit)}
            row["nginx"] = wrk("https://flask-vps.localhost/", seconds, connections)
            try:
                row["start_to_ready_s"] = start_direct(sandbox, unit_property, unit, server)
                row["direct"] = wrk(f"http://127.0.0.1:{DIRECT_PORT}/", seconds, connections)
                row.update(memory_mib(sandbox, DIRECT_UNIT))
                if server == "uwsgi":
                    row["uwsgi_protocols"] = uwsgi_protocols(sandbox, unit_property, unit, wrk, seconds, connections)
            finally:
                stop_direct(sandbox)
            rows[server] = row
    finally:
        deploy("gunicorn")
    return rows


def errors(case: dict) -> str:
    """Non-2xx answers, and socket errors apart: uWSGI's HTTP socket closes each
    connection after its answer (no keep-alive), which wrk counts as read errors."""
    return f"{case['non_2xx']} + {case['socket_errors']} socket" if case["socket_errors"] else str(case["non_2xx"])


def markdown(rows: dict[str, dict]) -> list[str]:
    lines = ["", "| server | requests/s via nginx | p50 / p99 ms | errors | requests/s direct | p50 / p99 ms | errors "
             "| start-to-ready s | RSS / PSS MiB | exposure | switch deploy s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for server, row in rows.items():
        nginx, direct = row["nginx"], row["direct"]
        lines.append(
            f"| {server} | {nginx['requests_per_second']:.0f} | {nginx['p50_ms']:.1f} / {nginx['p99_ms']:.0f} | "
            f"{errors(nginx)} | {direct['requests_per_second']:.0f} | {direct['p50_ms']:.1f} / {direct['p99_ms']:.0f} | "
            f"{errors(direct)} | "
            f"{row['start_to_ready_s']} | {row['rss_mib']} / {row['pss_mib']} | {row['exposure']} | "
            f"{row['switch_deploy_s']} |")
    for server, row in rows.items():
        if "uwsgi_protocols" in row:
            lines += ["", f"| nginx -> {server}, loopback plain HTTP | requests/s | p50 / p99 ms | errors |",
                      "|---|---:|---:|---:|"]
            for name, case in row["uwsgi_protocols"].items():
                lines.append(f"| {name} | {case['requests_per_second']:.0f} | {case['p50_ms']:.1f} / "
                             f"{case['p99_ms']:.0f} | {case['non_2xx'] + case['socket_errors']} |")
    return lines
