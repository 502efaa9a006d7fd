#!/usr/bin/env bash
# The provisioning figures, measured on the sandbox:
#   1. cold site.yml on a fresh container (the sandbox is removed and made again),
#   2. a no-op re-run of site.yml (time and changed count; aim: under 30 s, 0 changed),
#      then the same with Ansible's defaults (no pipelining, no ControlPersist, no
#      fact cache), and the ratio of the two,
#   3. deploy.yml of a code change (aim: under 20 s), under HTTPS load on loopback,
#   4. deploy.yml of a release that never passes its health check (must fail),
#   5. rollback.yml,
# with the requests sent and failed during 3, 4 and 5 (failed must be 0).
#
#   scripts/measure-provisioning.sh            all of the above (removes the sandbox first)
#   scripts/measure-provisioning.sh --warm     skip 1: measure on the running sandbox
#
# Prints one line per figure and writes them as JSON to FLASK_VPS_FIGURES
# (default .cache/sandbox/figures.json).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=.venv/bin
inventory=inventories/sandbox
state=.cache/sandbox
https_port=${FLASK_VPS_SANDBOX_HTTPS_PORT:-8443}
mkdir -p "$state/logs"
export ANSIBLE_FORCE_COLOR=false

# Runs a playbook, logs it, sets $seconds and $changed (the sandbox host's count).
# With expect_failure=1 the playbook must fail.
timed() {
  local name=$1 log=$state/logs/measure-$1.log
  shift
  local start end rc=0
  start=$(date +%s%N)
  "$bin/ansible-playbook" -i "$inventory" "$@" >"$log" 2>&1 || rc=$?
  end=$(date +%s%N)
  seconds=$(awk -v ns="$((end - start))" 'BEGIN { printf "%.1f", ns / 1e9 }')
  changed=$(sed -n 's/^sandbox *: .*changed=\([0-9]*\).*/\1/p' "$log" | tail -1)
  if [ "${expect_failure:-0}" = 1 ]; then
    if [ "$rc" -eq 0 ]; then
      echo "measure: $name should have failed but did not; see $log" >&2
      exit 1
    fi
    return 0
  fi
  if [ "$rc" -ne 0 ]; then
    echo "measure: $name failed (exit $rc); see $log" >&2
    tail -30 "$log" >&2
    exit "$rc"
  fi
}

# Runs a playbook while scripts/loadgen.py requests /healthz over HTTPS on
# loopback; sets $failed and $sent as well.
under_load() {
  local name=$1
  shift
  local stop=$state/loadgen-stop out=$state/loadgen-$name.json
  rm -f "$stop"
  "$bin/python" scripts/loadgen.py --url "https://flask-vps.localhost:$https_port/healthz" \
    --connect "127.0.0.1:$https_port" --cacert "$state/ca.crt" \
    --requests 100000 --seconds 600 --concurrency 4 --stop-file "$stop" >"$out" &
  local load=$!
  sleep 2
  timed "$name" "$@"
  sleep 2
  touch "$stop"
  wait "$load"
  failed=$("$bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["failed"])' "$out")
  sent=$("$bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["sent"])' "$out")
}

figures=()
if [ "${1:-}" != "--warm" ]; then
  scripts/sandbox.sh down
  scripts/sandbox.sh up
  timed cold playbooks/site.yml
  echo "cold site.yml:            ${seconds} s, changed=${changed}"
  figures+=("\"cold_site_seconds\": $seconds, \"cold_site_changed\": $changed")
fi

timed noop playbooks/site.yml
echo "no-op site.yml:           ${seconds} s, changed=${changed}"
figures+=("\"noop_site_seconds\": $seconds, \"noop_site_changed\": $changed")
noop=$seconds

# Ansible's own defaults: no pipelining, a new SSH connection for every task (no
# ControlPersist), facts gathered again (no cache). Only the roles path is kept.
defaults_cfg=$(mktemp --suffix=.cfg)
printf '[defaults]\nroles_path = %s/roles\n[ssh_connection]\npipelining = False\nssh_args = -o ControlMaster=no\n' \
  "$PWD" >"$defaults_cfg"
ANSIBLE_CONFIG=$defaults_cfg timed noop-defaults playbooks/site.yml
rm -f "$defaults_cfg"
ratio=$(awk -v a="$seconds" -v b="$noop" 'BEGIN { printf "%.1f", a / b }')
echo "no-op, Ansible defaults:  ${seconds} s (${ratio}x the project's ansible.cfg)"
figures+=("\"noop_site_defaults_seconds\": $seconds, \"noop_defaults_ratio\": $ratio")

# A code change: a copy of app/ with one more line, so the release id changes.
change=$(mktemp -d)
trap 'rm -rf "$change"' EXIT
cp -r app "$change/app"
rm -rf "$change/app/tests" "$change/app/.venv"
printf '\n# measured change %s\n' "$(date +%s%N)" >>"$change/app/wsgi.py"
under_load deploy playbooks/deploy.yml -e "flask_vps_app_source_dir=$change/app"
echo "deploy.yml (code change): ${seconds} s, changed=${changed}, requests ${sent}, failed ${failed}"
figures+=("\"deploy_seconds\": $seconds, \"deploy_requests\": $sent, \"deploy_failed\": $failed")

# A release that imports but never answers its health check: the play must fail
# and the live release keep serving.
broken=$(mktemp -d)
cp -r "$change/app" "$broken/app"
cat >>"$broken/app/wsgi.py" <<'PY'

# Broken on purpose by measure-provisioning.sh: never healthy.
from flask import abort, request


@app.before_request
def refuse_health():
    if request.path == "/healthz":
        abort(503)
PY
expect_failure=1 under_load failed-deploy playbooks/deploy.yml -e "flask_vps_app_source_dir=$broken/app" \
  -e gunicorn_healthcheck_retries=5
rm -rf "$broken"
echo "failed deploy (refused):  ${seconds} s, requests ${sent}, failed ${failed}"
figures+=("\"failed_deploy_seconds\": $seconds, \"failed_deploy_requests\": $sent, \"failed_deploy_failed\": $failed")

under_load rollback playbooks/rollback.yml
echo "rollback.yml:             ${seconds} s, changed=${changed}, requests ${sent}, failed ${failed}"
figures+=("\"rollback_seconds\": $seconds, \"rollback_requests\": $sent, \"rollback_failed\": $failed")

out=${FLASK_VPS_FIGURES:-$state/figures.json}
(IFS=,; echo "{${figures[*]}}") >"$out"
echo "measure: figures in $out"
