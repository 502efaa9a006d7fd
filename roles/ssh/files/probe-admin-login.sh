#!/bin/sh
# Prove that USER can log in over SSH with a key under the sshd configuration CONFIG
# (and run sudo when the third argument is "sudo"), without touching the running sshd
# or USER's authorized_keys: a one-shot sshd in debug mode on a free loopback port,
# with a throwaway key pair, then an ssh login to it. Prints flask-vps-login-ok.
set -eu
user=$1
config=$2
want_sudo=${3:-sudo}

dir=$(mktemp -d /run/flask-vps-ssh-probe.XXXXXX)
unit=flask-vps-ssh-probe-$$
sshd_pid=
cleanup() {
  if [ -n "$sshd_pid" ]; then kill "$sshd_pid" 2>/dev/null || true; else systemctl stop "$unit" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
chmod 0755 "$dir"
ssh-keygen -q -t ed25519 -N '' -C flask-vps-login-probe -f "$dir/key"
cp "$dir/key.pub" "$dir/authorized_keys"
chmod 0644 "$dir/authorized_keys"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# -d: serve one connection, stay in the foreground; -p replaces the configured ports.
# Started by systemd, like the real sshd: a daemon started from this (SSH) session
# would inherit its audit login uid, and where the kernel does not let it set a new
# one (an LXC or Docker "VPS" without CAP_AUDIT_CONTROL) pam_loginuid refuses the
# session although the configuration is fine.
set -- /usr/sbin/sshd -d -f "$config" -p "$port" -o ListenAddress=127.0.0.1 \
  -o "AuthorizedKeysFile=$dir/authorized_keys" -o "PidFile=$dir/sshd.pid" -E "$dir/sshd.log"
if [ -d /run/systemd/system ]; then
  systemd-run --quiet --collect --unit="$unit" "$@"
else
  "$@" &
  sshd_pid=$!
fi

tries=0
# Wait for the log line, not for a connection: sshd -d serves exactly one.
until grep -q "Server listening on 127.0.0.1 port $port" "$dir/sshd.log" 2>/dev/null; do
  tries=$((tries + 1))
  if [ "$tries" -gt 50 ]; then
    echo "the probe sshd did not start:" >&2
    cat "$dir/sshd.log" >&2
    exit 1
  fi
  sleep 0.1
done

command=true
if [ "$want_sudo" = sudo ]; then
  command="sudo -n true"
fi
if ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o ConnectTimeout=5 -o IdentitiesOnly=yes -o LogLevel=ERROR -i "$dir/key" -p "$port" \
    "$user@127.0.0.1" "$command"; then
  echo flask-vps-login-ok
else
  echo "$user could not log in to an sshd running the new configuration:" >&2
  cat "$dir/sshd.log" >&2
  exit 1
fi
