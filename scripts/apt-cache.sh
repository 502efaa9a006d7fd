#!/usr/bin/env bash
# One package cache for every test container: print the apt proxy URL the test
# containers should use (empty when there is none), starting the cache if needed.
#
#   FLASK_VPS_APT_PROXY set      -> that proxy (yours), nothing is started
#   root on Debian               -> Debian's apt-cacher-ng, installed if missing and
#                                   run with the project's own config and cache
#                                   (.cache/apt-cacher-ng), bound to the Docker
#                                   bridge only, on FLASK_VPS_APT_CACHE_PORT (3144)
#   anything else                -> no cache (each container downloads for itself)
#   FLASK_VPS_APT_CACHE=off      -> no cache
#
# The cache forwards requests to the hosts the containers' apt sources name (the
# mirror read from this machine's own apt sources when the images were built): no
# remapping, so no mirror is named here.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${FLASK_VPS_APT_PROXY:-}" ]; then
  echo "$FLASK_VPS_APT_PROXY"; exit 0
fi
if [ "${FLASK_VPS_APT_CACHE:-on}" = off ]; then
  echo ""; exit 0
fi
if [ "$(id -u)" -ne 0 ] || [ ! -f /etc/debian_version ]; then
  echo "flask-vps: no shared package cache (needs root on Debian, or set FLASK_VPS_APT_PROXY)" >&2
  echo ""; exit 0
fi

port=${FLASK_VPS_APT_CACHE_PORT:-3144}
# The address of the Docker bridge on this host: reachable from every container on
# the default network, not from outside the machine.
gateway=$(docker network inspect bridge --format '{{range .IPAM.Config}}{{.Gateway}}{{end}}' 2>/dev/null || true)
if [ -z "$gateway" ]; then
  # A freshly started engine may list the bridge's subnet without its gateway:
  # then the bridge interface's own address is the gateway.
  bridge=$(docker network inspect bridge --format '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null || true)
  gateway=$(ip -4 -o addr show dev "${bridge:-docker0}" 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')
fi
if [ -z "$gateway" ]; then
  echo "flask-vps: no Docker bridge found; no shared package cache" >&2
  echo ""; exit 0
fi
url="http://$gateway:$port"

dir=$PWD/.cache/apt-cacher-ng
answers() { curl -fsS -o /dev/null --max-time 3 "$url/acng-report.html" 2>/dev/null; }
if answers; then
  echo "$url"; exit 0
fi

mkdir -p "$dir/cache" "$dir/log" "$dir/conf"
exec 9>"$dir/lock"
flock -w 120 9   # parallel test workers ask at the same time; one starts the cache

if ! answers; then
  if [ ! -x /usr/sbin/apt-cacher-ng ]; then
    echo "flask-vps: installing Debian's apt-cacher-ng (the test containers' package cache)" >&2
    apt-get update -qq
    # Its package may start a system-wide instance with Debian's defaults on port
    # 3142; ours runs beside it with its own config and port.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq apt-cacher-ng >/dev/null
  fi
  cat >"$dir/conf/acng.conf" <<CONF
# Written by scripts/apt-cache.sh; the project's own apt-cacher-ng instance.
CacheDir: $dir/cache
LogDir: $dir/log
PidFile: $dir/apt-cacher-ng.pid
SocketPath: $dir/socket
SupportDir: /usr/lib/apt-cacher-ng
Port: $port
BindAddress: $gateway
ReportPage: acng-report.html
ExThreshold: 4
CONF
  # 9>&-: the daemon must not inherit (and so hold forever) the lock.
  /usr/sbin/apt-cacher-ng -c "$dir/conf" ForeGround=0 >>"$dir/log/start.log" 2>&1 9>&-
  for _ in $(seq 1 30); do
    answers && break
    sleep 1
  done
  if ! answers; then
    echo "flask-vps: apt-cacher-ng did not answer on $url (see $dir/log); no shared package cache" >&2
    echo ""; exit 0
  fi
  echo "flask-vps: shared package cache at $url (files in $dir/cache)" >&2
fi
echo "$url"
