#!/usr/bin/env bash
# Create (once) a virtualenv and install a pinned requirements file into it.
#   scripts/setup-venv.sh VENV_DIR REQUIREMENTS...
# Re-running is a no-op while the requirements files are unchanged.
set -euo pipefail
venv=$1; shift
stamp="$venv/.flask-vps-$(cat "$@" | sha256sum | cut -c1-16)"
[ -f "$stamp" ] && exit 0

python=${PYTHON:-python3}
if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && [ -f /etc/debian_version ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  else
    echo "flask-vps: $python cannot create virtualenvs; install python3-venv" >&2
    exit 1
  fi
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
echo "flask-vps: installing $* into $venv" >&2
"$venv/bin/python" -m pip install -q --upgrade pip
for req in "$@"; do
  "$venv/bin/python" -m pip install -q -r "$req"
done
rm -f "$venv"/.flask-vps-*
touch "$stamp"
