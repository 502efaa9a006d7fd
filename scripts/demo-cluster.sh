#!/usr/bin/env bash
# The several-host sandbox: the cluster scenario's five containers (lb1, web1,
# web2, worker1, db1 on Docker's bridge, from the local Debian 13 image), converged by
# playbooks/site.yml with the sandbox's settings, and left running. Only lb1
# publishes 443, on 127.0.0.1:FLASK_VPS_CLUSTER_HTTPS_PORT (9443).
#
#   scripts/demo-cluster.sh up        create (or keep) and converge them; print the URL
#   scripts/demo-cluster.sh deploy [ansible-playbook options]
#                                     a rolling deploy of app/ as a new release
#   scripts/demo-cluster.sh down      remove them
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export MOLECULE_DISTRO=debian13
export FLASK_VPS_NAME_SUFFIX=-demo
export FLASK_VPS_CLUSTER_HTTPS_PORT=${FLASK_VPS_CLUSTER_HTTPS_PORT:-9443}
# lb1's only published port (molecule/cluster/molecule.yml), on loopback.
export FLASK_VPS_CLUSTER_PUBLISH="127.0.0.1:$FLASK_VPS_CLUSTER_HTTPS_PORT:443"
export MOLECULE_EPHEMERAL_DIRECTORY="$root/.cache/demo-cluster"
export PATH="$root/.venv/bin:$PATH"
export ANSIBLE_FORCE_COLOR=false PY_COLORS=0
# The scenario's group_vars find the project (and its .cache) through it.
export MOLECULE_PROJECT_DIRECTORY="$root"
site=flask-vps.localhost
ca="$root/.cache/molecule-cluster$FLASK_VPS_NAME_SUFFIX/ca.crt"

case "${1:-up}" in
  up)
    FLASK_VPS_IMAGE=$(scripts/build-image.sh debian13)
    FLASK_VPS_APT_PROXY=$(scripts/apt-cache.sh)
    export FLASK_VPS_IMAGE FLASK_VPS_APT_PROXY
    mkdir -p "$MOLECULE_EPHEMERAL_DIRECTORY"
    if [ "$(docker inspect -f '{{.State.Running}}' "fv-cluster-lb1-debian13$FLASK_VPS_NAME_SUFFIX" 2>/dev/null)" != true ]; then
      molecule create -s cluster
      molecule prepare -s cluster --force
    fi
    molecule converge -s cluster
    cat <<EOF

The cluster sandbox serves https://$site:$FLASK_VPS_CLUSTER_HTTPS_PORT/ (lb1 in front of web1 and web2; worker1 runs workers only; db1 behind).
Trust its CA ($ca), or:
  curl --cacert $ca --resolve $site:$FLASK_VPS_CLUSTER_HTTPS_PORT:127.0.0.1 -sD - https://$site:$FLASK_VPS_CLUSTER_HTTPS_PORT/healthz
The X-Served-By header names the web host that answered.
EOF
    ;;
  deploy)
    shift
    ansible-playbook -i "$MOLECULE_EPHEMERAL_DIRECTORY/inventory" playbooks/deploy.yml -e '{"flask_app_force_release": true}' "$@"
    ;;
  down)
    molecule destroy -s cluster
    ;;
  *)
    echo "usage: $0 up|deploy|down" >&2
    exit 2
    ;;
esac
