#!/usr/bin/env bash
# Print Lynis' hardening index of a running container (one of the project's test
# containers): installs the Debian lynis package inside it when missing, runs
# `lynis audit system --quick`, prints the index, and with -v the suggestions.
#   scripts/lynis-index.sh [-v] CONTAINER
set -euo pipefail

verbose=0
if [[ ${1:-} == -v ]]; then
  verbose=1
  shift
fi
container=${1:?usage: scripts/lynis-index.sh [-v] CONTAINER}

if ! docker exec "$container" sh -c 'command -v lynis' >/dev/null; then
  docker exec "$container" sh -c \
    'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lynis' >/dev/null
fi
docker exec "$container" lynis audit system --quick --no-colors >/dev/null 2>&1 || true
report=$(docker exec "$container" cat /var/log/lynis-report.dat)
index=$(sed -n 's/^hardening_index=//p' <<<"$report")
if [[ -z $index ]]; then
  echo "lynis wrote no hardening index in $container" >&2
  exit 1
fi
echo "$index"
if ((verbose)); then
  sed -n 's/^suggestion\[\]=//p' <<<"$report" | cut -d'|' -f1,2 | sed 's/|/: /'
fi
