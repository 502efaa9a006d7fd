#!/usr/bin/env bash
# The local sandbox: a container built from the Debian 13 test image that behaves
# like a freshly ordered VPS (systemd, sshd, root reachable with one operator key),
# published on loopback only. Ansible reaches it over SSH exactly like a real server.
#
#   scripts/sandbox.sh up        create and boot it (no-op when it already runs)
#   scripts/sandbox.sh down      remove it (and forget its host key)
#   scripts/sandbox.sh status    print whether it runs
#   scripts/sandbox.sh ssh-key   print the operator's public key
#   scripts/sandbox.sh ssh [cmd] log in as the admin user (or root before the first run)
#   scripts/sandbox.sh info      print the URL, the CA file to trust and a curl line
#
# Ports (127.0.0.1 only): FLASK_VPS_SANDBOX_SSH_PORT (2222), _HTTP_PORT (8080),
# _HTTPS_PORT (8443). FLASK_VPS_APT_PROXY, when set, is given to the container's apt
# the way the test containers get it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
name=${FLASK_VPS_SANDBOX_NAME:-flask-vps-sandbox}
state="$root/.cache/sandbox"
key="$state/id_ed25519"
known_hosts="$state/known_hosts"
ssh_port=${FLASK_VPS_SANDBOX_SSH_PORT:-2222}
http_port=${FLASK_VPS_SANDBOX_HTTP_PORT:-8080}
https_port=${FLASK_VPS_SANDBOX_HTTPS_PORT:-8443}
site=flask-vps.localhost

say() { echo "sandbox: $*" >&2; }

running() {
  [ "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" = "true" ]
}

make_key() {
  mkdir -p "$state"
  chmod 0700 "$state"
  if [ ! -f "$key" ]; then
    ssh-keygen -q -t ed25519 -N '' -C "flask-vps sandbox operator" -f "$key"
    say "made the operator key $key"
  fi
}

wait_for_boot() {
  local status
  for _ in $(seq 1 60); do
    status=$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)
    case "$status" in
      running | degraded) return 0 ;;
    esac
    sleep 1
  done
  say "systemd did not finish booting (state: ${status:-unknown})"
  return 1
}

wait_for_ssh() {
  for _ in $(seq 1 30); do
    if ssh-keyscan -T 2 -t ed25519 -p "$ssh_port" 127.0.0.1 >"$known_hosts.tmp" 2>/dev/null \
      && [ -s "$known_hosts.tmp" ]; then
      mv "$known_hosts.tmp" "$known_hosts"
      return 0
    fi
    sleep 1
  done
  rm -f "$known_hosts.tmp"
  say "sshd does not answer on 127.0.0.1:$ssh_port"
  return 1
}

# When this machine reaches PyPI through a TLS-inspecting proxy, its extra CAs
# (/usr/local/share/ca-certificates) go into the sandbox too, so pip and uv trust
# the same chain; as with a real VPS behind such a proxy, that is not the roles' job.
trust_extra_cas() {
  local ca found=0
  for ca in /usr/local/share/ca-certificates/*.crt; do
    [ -f "$ca" ] || continue
    docker cp "$ca" "$name:/usr/local/share/ca-certificates/$(basename "$ca")"
    found=1
  done
  [ "$found" -eq 1 ] || return 0
  docker exec "$name" sh -c 'update-ca-certificates >/dev/null 2>&1 &&
    printf "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n" >/etc/pip.conf &&
    mkdir -p /etc/uv && printf "native-tls = true\n" >/etc/uv/uv.toml'
  say "trusted this machine's extra CAs inside the sandbox"
}

up() {
  make_key
  if running; then
    say "$name already runs"
    [ -s "$known_hosts" ] || wait_for_ssh
    return 0
  fi
  docker rm -f "$name" >/dev/null 2>&1 || true
  local image
  image=$("$here/build-image.sh" debian13)
  say "starting $name from $image"
  # systemd as PID 1 without --privileged (shared/ENVIRONMENT.md).
  docker run -d --name "$name" --hostname "$name" \
    --label flask-vps.sandbox=1 \
    --cap-add SYS_ADMIN --cap-add NET_ADMIN \
    --security-opt seccomp=unconfined --cgroupns=host \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock \
    -p "127.0.0.1:$ssh_port:22" -p "127.0.0.1:$http_port:80" -p "127.0.0.1:$https_port:443" \
    "$image" /lib/systemd/systemd >/dev/null
  wait_for_boot
  # What a provider does with the key you give it when you order a server.
  docker exec -i "$name" sh -c \
    'install -d -m 0700 /root/.ssh && cat >/root/.ssh/authorized_keys && chmod 0600 /root/.ssh/authorized_keys' \
    <"$key.pub"
  # Host keys of its own, as a provider's first boot makes them. (The image's
  # ssh.service drop-in runs ssh-keygen -A only after Debian's `sshd -t`, which
  # fails without keys, so sshd would not start on its own.)
  docker exec "$name" sh -c \
    'ssh-keygen -A >/dev/null && systemctl reset-failed ssh.service && systemctl restart ssh.service'
  if [ -n "${FLASK_VPS_APT_PROXY:-}" ]; then
    printf 'Acquire::http::Proxy "%s";\n' "$FLASK_VPS_APT_PROXY" \
      | docker exec -i "$name" sh -c 'cat >/etc/apt/apt.conf.d/00flask-vps-test-proxy'
  fi
  trust_extra_cas
  wait_for_ssh
  say "$name is up: ssh -i $key -p $ssh_port root@127.0.0.1"
}

down() {
  if docker inspect "$name" >/dev/null 2>&1; then
    docker rm -f "$name" >/dev/null
    say "removed $name"
  else
    say "$name does not exist"
  fi
  rm -f "$known_hosts" "$state/ca.crt"
  # Facts cached for the old container would describe a machine that is gone.
  rm -f "$root"/.cache/ansible-facts/*sandbox
}

info() {
  local ca="$state/ca.crt"
  cat <<INFO

  The sandbox serves the app at  https://$site:$https_port/
  Trust this CA (made for the sandbox only):  $ca
  Try it:  curl --cacert $ca https://$site:$https_port/healthz
  Log in:  scripts/sandbox.sh ssh
  Ship a new release:  make demo-deploy      Roll back:  make demo-rollback
  Remove it all:  make demo-destroy

INFO
}

ssh_in() {
  local user=deploy
  if ! ssh -i "$key" -o UserKnownHostsFile="$known_hosts" -o BatchMode=yes -o ConnectTimeout=5 \
    -p "$ssh_port" "$user@127.0.0.1" true 2>/dev/null; then
    user=root
  fi
  exec ssh -i "$key" -o UserKnownHostsFile="$known_hosts" -p "$ssh_port" "$user@127.0.0.1" "$@"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) if running; then echo "running"; else echo "absent"; exit 1; fi ;;
  ssh-key) make_key; cat "$key.pub" ;;
  ssh) shift; ssh_in "$@" ;;
  info) info ;;
  *) echo "usage: $0 {up|down|status|ssh-key|ssh|info}" >&2; exit 2 ;;
esac
