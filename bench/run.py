#!/usr/bin/env python3
"""`make bench`: throughput and latency of the sandbox, measured with wrk.

Every load runs inside the sandbox container against its own loopback, with the
same wrk settings for each case, so the cases compare like with like:

1. a static file served by nginx over HTTPS;
2. a dynamic page through nginx -> Gunicorn with the project's defaults;
3. the same page straight from Gunicorn with the project's settings, no nginx;
4. the same page from a naive Gunicorn (its defaults: one sync worker);
5. the same static file served by Flask;
6. the static file of case 1 served by Caddy over HTTPS;
7. the page of case 2 through Caddy -> Gunicorn.

Cases 6 and 7 switch the sandbox's front door to Caddy (site.yml with
flask_vps_proxy=caddy, as an operator would) and back to nginx afterwards.

Then bench/servers.py puts each app server (Gunicorn, Uvicorn, Waitress, uWSGI)
live in turn and measures the page through nginx and straight from the server,
start-to-ready, memory and exposure, one row per server (latest-servers.png).

Last, bench/cluster.py brings up the several-host sandbox (make demo-cluster:
lb1, web1, web2, worker1, db1) and times a rolling deploy over the two web hosts under the
same strict load, through lb1 ("several hosts"; then make demo-cluster-destroy
removes it).

Before that, bench/provisioning.py times a cold site.yml on a fresh
sandbox, a no-op re-run (with the project's ansible.cfg and with Ansible's
defaults), a deploy, a failing deploy and a rollback, the last three under constant
HTTPS load, reads and writes, nothing retried (--warm skips the cold run and keeps
the running sandbox).

Writes bench/results/latest.json, latest.md and latest.png. With
--throughput-only it measures only the seven wrk cases on the running sandbox
(`make demo` first) and writes bench/results/<date>-throughput.json and .md,
leaving latest.* as they are; with --servers-only, only the app servers' rows,
in bench/results/<date>-servers.json, .md and .png; with --cluster-only, only
the several-host figures, in bench/results/<date>-cluster.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import cluster  # bench/cluster.py: the rolling deploy over several hosts
import provisioning  # bench/provisioning.py, beside this file
import servers  # bench/servers.py: the app servers side by side

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SITE = "flask-vps.localhost"
TUNED_PORT, NAIVE_PORT = 9001, 9002


def sandbox(*cmd: str, check: bool = True, user: str = "root") -> str:
    result = subprocess.run(
        ["docker", "exec", "-u", user, "flask-vps-sandbox", *cmd], capture_output=True, text=True
    )
    if check and result.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def unit_property(unit: str, name: str) -> str:
    return sandbox("systemctl", "show", "-P", name, unit).strip()


def live_slot() -> str:
    out = sandbox("systemctl", "list-units", "--type=service", "--state=running", "--plain", "--no-legend", "flaskapp@*")
    units = [line.split()[0] for line in out.splitlines() if line.strip()]
    if not units:
        raise SystemExit("bench: no running flaskapp@ unit in the sandbox; run `make demo` first")
    return units[0]


def site_answers() -> int:
    """The HTTP status of /healthz through nginx, as the sandbox's users see it."""
    return int(sandbox("curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "-H", f"Host: {SITE}",
                       f"https://{SITE}/healthz", check=False) or 0)


def start_direct_gunicorn(unit: str) -> None:
    """Two Gunicorns on loopback TCP beside the live slot: the tuned one with the
    live unit's own command line (its socket swapped for a port, bench/servers.py),
    and a naive one with Gunicorn's defaults. Both run as the app user with the
    app's environment."""
    # The tuned one never binds the live slot's socket path: a second Gunicorn there
    # takes it over, and unlinks it when it stops (the sandbox then answered 502
    # until the slot restarted).
    servers.start_direct(sandbox, unit_property, unit, "gunicorn", name="bench-tuned", port=TUNED_PORT)
    argv, workdir, env_files = servers.slot_command(unit_property, unit)
    servers.start_transient(sandbox, "bench-naive",
                            [argv[0], "--bind", f"127.0.0.1:{NAIVE_PORT}", "--no-control-socket", "wsgi:app"],
                            workdir, env_files, NAIVE_PORT)


def stop_direct_gunicorn() -> None:
    for name in ("bench-tuned", "bench-naive"):
        servers.stop_direct(sandbox, name)


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    out = sandbox("wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", f"Host: {SITE}", url)

    def millis(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([0-9.]+)(us|ms|s)", out, re.M)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests_per_second": float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1)),
        "p50_ms": millis("50"),
        "p99_ms": millis("99"),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": sum(map(int, socket_errors.groups())) if socket_errors else 0,
    }


def prepare_wrk() -> None:
    sandbox("sh", "-c", "command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk curl >/dev/null")
    # wrk sends the URL's host as SNI; let the site's name resolve to loopback inside.
    sandbox("sh", "-c", f"grep -q ' {SITE}$' /etc/hosts || echo '127.0.0.1 {SITE}' >> /etc/hosts")


def measure_throughput(seconds: int, connections: int) -> dict[str, dict[str, float]]:
    prepare_wrk()
    start_direct_gunicorn(live_slot())
    try:
        cases = {
            "1 static, nginx (HTTPS)": f"https://{SITE}/static/style.css",
            "2 page, nginx -> Gunicorn (HTTPS)": f"https://{SITE}/",
            "3 page, Gunicorn direct (project settings)": f"http://127.0.0.1:{TUNED_PORT}/",
            "4 page, naive Gunicorn (1 sync worker)": f"http://127.0.0.1:{NAIVE_PORT}/",
            "5 static, Flask": f"http://127.0.0.1:{TUNED_PORT}/static/style.css",
        }
        results = {name: wrk(url, seconds, connections) for name, url in cases.items()}
        switch_front_door("caddy")
        try:
            results["6 static, Caddy (HTTPS)"] = wrk(f"https://{SITE}/static/style.css", seconds, connections)
            results["7 page, Caddy -> Gunicorn (HTTPS)"] = wrk(f"https://{SITE}/", seconds, connections)
        finally:
            switch_front_door("nginx")
        return results
    finally:
        stop_direct_gunicorn()
        if site_answers() != 200:
            raise SystemExit("bench: the sandbox no longer answers /healthz after the throughput cases")


def switch_front_door(proxy: str) -> None:
    """site.yml on the sandbox with another front door (README: Switching the front door)."""
    result = subprocess.run(provisioning.command("site.yml", "-e", f"flask_vps_proxy={proxy}"), cwd=ROOT,
                            env=provisioning.ENV, capture_output=True, text=True, check=False)
    if result.returncode != 0 or site_answers() != 200:
        raise SystemExit(f"bench: switching the sandbox to {proxy} failed:\n{result.stdout[-4000:]}")


def ratios(cases: dict[str, dict[str, float]]) -> dict[str, float]:
    rps = [case["requests_per_second"] for case in cases.values()]
    figures = {
        "front door cost (2/3, aim >= 0.8)": round(rps[1] / rps[2], 2),
        "tuning gain (2/4)": round(rps[1] / rps[3], 2),
        "static from nginx (1/5)": round(rps[0] / rps[4], 2),
    }
    if len(rps) >= 7:
        figures["front door cost, Caddy (7/3)"] = round(rps[6] / rps[2], 2)
        figures["static, Caddy against nginx (6/1)"] = round(rps[5] / rps[0], 2)
    return figures


def markdown(result: dict) -> str:
    lines = [
        f"Measured {result['measured_at']} on {result['machine']}; wrk, {result['connections']} connections, "
        f"{result['seconds']} s per case."
        + (f" Load average (1, 5, 15 min) when it ended: {', '.join(f'{x:.1f}' for x in result['load_average'])}."
           if "load_average" in result else ""),
        "",
        "| case | requests/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, case in result["throughput"].items():
        lines.append(f"| {name} | {case['requests_per_second']:.0f} | {case['p50_ms']:.2f} | {case['p99_ms']:.2f} | "
                     f"{case['non_2xx'] + case['socket_errors']} |")
    lines += ["", "| ratio | value |", "|---|---:|"]
    lines += [f"| {name} | {value} |" for name, value in result["ratios"].items()]
    for title, figures in (("provisioning", result.get("provisioning")), ("zero downtime", result.get("zero_downtime")),
                           ("several hosts", result.get("several_hosts"))):
        if figures:
            lines += ["", f"| {title} | value |", "|---|---:|"]
            lines += [f"| {name} | {value} |" for name, value in figures.items()]
    if result.get("app_servers"):
        lines += servers.markdown(result["app_servers"])
    return "\n".join(lines) + "\n"


def chart(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["throughput"])
    rps = [result["throughput"][name]["requests_per_second"] for name in names]
    fig, ax = plt.subplots(figsize=(9, 4))
    bars = ax.barh(names[::-1], rps[::-1], color=["#4c72b0", "#55a868", "#c44e52", "#8172b2", "#ccb974", "#64b5cd", "#8c8c8c"][:len(names)][::-1])
    ax.bar_label(bars, fmt="%.0f", padding=3)
    ax.set_xlabel("requests per second (higher is better)")
    ax.set_title(f"flask-vps sandbox, wrk -c{result['connections']} ({result['measured_at'][:10]})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def measure_provisioning(warm: bool) -> tuple[dict, dict]:
    """The provisioning figures and the zero-downtime ones (the load's, per stage)."""
    figures = provisioning.measure(warm)
    downtime = {name: value for name, value in figures.items() if name.endswith(tuple(provisioning.LOAD_FIGURES))}
    return {name: value for name, value in figures.items() if name not in downtime}, downtime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warm", action="store_true", help="keep the running sandbox: no cold site.yml")
    parser.add_argument("--throughput-only", action="store_true",
                        help="only the wrk cases, on the running sandbox; results beside latest.*, not in them")
    parser.add_argument("--servers-only", action="store_true",
                        help="only the app servers side by side (bench/servers.py), on the running sandbox; "
                             "results beside latest.*, not in them")
    parser.add_argument("--cluster-only", action="store_true",
                        help="only the rolling deploy over several hosts (bench/cluster.py, make demo-cluster's "
                             "sandbox); results beside latest.*, not in them")
    args = parser.parse_args()

    started = time.monotonic()
    if args.servers_only:
        return servers_only(args.seconds, args.connections)
    if args.cluster_only:
        return cluster_only()
    provisioning, zero_downtime = ({}, {}) if args.throughput_only else measure_provisioning(args.warm)
    cases = measure_throughput(args.seconds, args.connections)
    app_servers = {} if args.throughput_only else measure_servers(args.seconds, args.connections)
    several_hosts = {} if args.throughput_only else cluster.measure()
    result = {
        "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores, "
                   f"{platform.system()} {platform.release()}",
        "seconds": args.seconds,
        "connections": args.connections,
        "throughput": cases,
        "ratios": ratios(cases),
        "provisioning": provisioning,
        "zero_downtime": zero_downtime,
        "app_servers": app_servers,
        "several_hosts": several_hosts,
        "bench_minutes": round((time.monotonic() - started) / 60, 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.throughput_only:
        name = f"{result['measured_at'][:10]}-throughput"
        result["load_average"] = os.getloadavg()
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        (RESULTS / f"{name}.md").write_text(markdown(result))
        print(markdown(result))
        return 0
    (RESULTS / "latest.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(markdown(result))
    chart(result, RESULTS / "latest.png")
    servers_chart(app_servers, result["measured_at"], RESULTS / "latest-servers.png")
    print(markdown(result))
    return 0


def measure_servers(seconds: int, connections: int) -> dict[str, dict]:
    """bench/servers.py on the running sandbox, with this file's helpers."""
    prepare_wrk()
    return servers.measure(sandbox, unit_property, live_slot, site_answers, wrk, seconds, connections)


def servers_only(seconds: int, connections: int) -> int:
    measured_at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows = measure_servers(seconds, connections)
    name = f"{measured_at[:10]}-servers"
    load = os.getloadavg()
    text = (f"Measured {measured_at}; wrk, {connections} connections, {seconds} s per case. Load average (1, 5, 15 min) "
            f"when it ended: {', '.join(f'{x:.1f}' for x in load)}.\n" + "\n".join(servers.markdown(rows)) + "\n")
    (RESULTS / f"{name}.json").write_text(json.dumps({"measured_at": measured_at, "load_average": load,
                                                      "seconds": seconds, "connections": connections,
                                                      "app_servers": rows}, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(text)
    servers_chart(rows, measured_at, RESULTS / f"{name}.png")
    print(text)
    return 0


def cluster_only() -> int:
    measured_at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    figures = cluster.measure()
    load = os.getloadavg()
    text = "\n".join([f"Measured {measured_at} on the cluster sandbox (make demo-cluster). Load average (1, 5, 15 min) "
                      f"when it ended: {', '.join(f'{x:.1f}' for x in load)}.", "", "| several hosts | value |",
                      "|---|---:|", *(f"| {name} | {value} |" for name, value in figures.items())]) + "\n"
    name = f"{measured_at[:10]}-cluster"
    (RESULTS / f"{name}.json").write_text(json.dumps({"measured_at": measured_at, "load_average": load,
                                                      "several_hosts": figures}, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(text)
    print(text)
    return 0


def servers_chart(rows: dict[str, dict], measured_at: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    height = 0.38
    for offset, (key, label, colour) in enumerate((("nginx", "through nginx (HTTPS)", "#4c72b0"),
                                                   ("direct", "straight from the server", "#55a868"))):
        bars = ax.barh([i + offset * height for i in range(len(names))],
                       [rows[name][key]["requests_per_second"] for name in names], height, label=label, color=colour)
        ax.bar_label(bars, fmt="%.0f", padding=3)
    ax.set_yticks([i + height / 2 for i in range(len(names))], names)
    ax.invert_yaxis()
    ax.set_xlabel("requests per second, the page (higher is better)")
    ax.set_title(f"flask-vps app servers, same workers and machine ({measured_at[:10]})")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
