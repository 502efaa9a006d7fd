#!/usr/bin/env bash
# Make sure a Docker engine answers. On a Debian host where we are root, install
# Debian's docker.io and start dockerd if needed; anywhere else, say what to do.
set -euo pipefail

log=${FLASK_VPS_DOCKERD_LOG:-/var/log/flask-vps-dockerd.log}

if docker info >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ] || [ ! -f /etc/debian_version ]; then
  cat >&2 <<'MSG'
flask-vps: no Docker engine answers (`docker info` failed).
Start one and make sure your user may use it, then run the command again:
  - on Debian/Ubuntu as root, this script installs docker.io and starts dockerd itself;
  - otherwise: install Docker, start it, and add your user to the `docker` group.
MSG
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "flask-vps: installing Debian's docker.io" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl start docker
  else
    echo "flask-vps: starting dockerd (log: $log)" >&2
    nohup dockerd >>"$log" 2>&1 &
  fi
fi

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "flask-vps: dockerd did not answer within 60 s; see $log" >&2
exit 1
