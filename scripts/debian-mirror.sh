#!/usr/bin/env bash
# Print the Debian mirror (or, with "security", the security mirror) that this
# machine's own apt sources use, so nothing in the repository names a host.
# FLASK_VPS_DEBIAN_MIRROR / FLASK_VPS_DEBIAN_SECURITY_MIRROR override the answer.
set -euo pipefail
kind=${1:-main}

if [ "$kind" = security ] && [ -n "${FLASK_VPS_DEBIAN_SECURITY_MIRROR:-}" ]; then
  echo "$FLASK_VPS_DEBIAN_SECURITY_MIRROR"; exit 0
fi
if [ "$kind" = main ] && [ -n "${FLASK_VPS_DEBIAN_MIRROR:-}" ]; then
  echo "$FLASK_VPS_DEBIAN_MIRROR"; exit 0
fi

uris=$( { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -E 's/^URIs:[[:space:]]*//' | tr ' ' '\n'
          grep -hE '^deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | sed -E 's/\[[^]]*\]//' | awk '{print $2}'; } | grep -E '^(https?|ftp)://' || true)

if [ "$kind" = security ]; then
  found=$(echo "$uris" | grep -E -- '-security/?$' | head -n1)
else
  found=$(echo "$uris" | grep -vE -- '-(security|ports|backports)/?$' | grep -E '/debian/?$' | head -n1)
fi
if [ -z "$found" ]; then
  echo "flask-vps: cannot read a Debian $kind mirror from /etc/apt; set FLASK_VPS_DEBIAN_MIRROR (and FLASK_VPS_DEBIAN_SECURITY_MIRROR)" >&2
  exit 1
fi
echo "${found%/}"
