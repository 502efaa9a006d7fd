#!/usr/bin/env bash
# pip against uv on the sandbox: install the app's pinned requirements into a new
# virtualenv with each, with empty caches (a first deploy), ROUNDS times, and print
# the medians and their ratio. Needs the sandbox (make demo) with uv installed
# (flask_vps_use_uv, on in the sandbox).
#   bench/pip-vs-uv.sh [ROUNDS]            (default 3)
set -euo pipefail
rounds=${1:-3}
name=${FLASK_VPS_SANDBOX_NAME:-flask-vps-sandbox}
req=/srv/flaskapp/current/requirements.txt
uv=/opt/flask-vps/uv/bin/uv

docker exec -i "$name" bash -s "$rounds" "$req" "$uv" <<'INSIDE'
set -euo pipefail
rounds=$1 req=$2 uv=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
secs() { local s=$(date +%s%N); "$@" >/dev/null 2>&1; echo $(( ($(date +%s%N) - s) / 1000000 )); }
pip_ms=() uv_ms=()
for i in $(seq 1 "$rounds"); do
  rm -rf "$work"/*
  pip_ms+=("$(secs sh -c "python3 -m venv $work/pip && PIP_NO_CACHE_DIR=1 $work/pip/bin/pip install -q -r $req")")
  uv_ms+=("$(secs sh -c "$uv venv -q $work/uv && UV_NO_CACHE=1 $uv pip install -q --python $work/uv/bin/python -r $req")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
p=$(median "${pip_ms[@]}") u=$(median "${uv_ms[@]}")
awk -v p="$p" -v u="$u" -v n="$rounds" 'BEGIN {
  printf "venv + install of the app requirements, no cache, median of %d: pip %.1f s, uv %.1f s, ratio %.1fx\n", n, p/1000, u/1000, p/u }'
INSIDE
