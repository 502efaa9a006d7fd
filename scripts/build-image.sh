#!/usr/bin/env bash
# Build (once) a Debian image that boots systemd like a fresh VPS, from Debian's
# own packages with debootstrap: no container registry is involved.
#
#   scripts/build-image.sh debian13|debian12   -> prints the image tag
#
# The tag carries a hash of every input (this script, the suite, the package list,
# the mirrors), so an image is rebuilt only when one of them changes.
# FLASK_VPS_IMAGE=<image> skips all this and uses the user's image instead.
set -euo pipefail

distro=${1:-debian13}
if [ -n "${FLASK_VPS_IMAGE:-}" ]; then
  echo "$FLASK_VPS_IMAGE"; exit 0
fi

case "$distro" in
  debian13) suite=trixie ;;
  debian12) suite=bookworm ;;
  *) echo "flask-vps: unknown distro '$distro' (use debian13 or debian12)" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
mirror=$("$here/debian-mirror.sh" main)
security=$("$here/debian-mirror.sh" security)
# What a provider's minimal Debian image has: systemd, python3 (with apt bindings,
# which Debian's cloud images ship), sudo and sshd. Nothing a role installs itself.
packages=systemd,systemd-sysv,dbus,python3,python3-apt,sudo,openssh-server,iproute2,procps,ca-certificates,gnupg

hash=$(printf '%s\n' "$suite" "$packages" "$mirror" "$security" | cat - "$0" | sha256sum | cut -c1-12)
tag="flask-vps/${distro}:${hash}"

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"; exit 0
fi

mkdir -p "${XDG_CACHE_HOME:-$HOME/.cache}/flask-vps"
exec 9>"${XDG_CACHE_HOME:-$HOME/.cache}/flask-vps/build-${distro}.lock"
flock 9
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"; exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && [ -f /etc/debian_version ]; then
    echo "flask-vps: installing debootstrap" >&2
    flock /var/lib/apt/lists/.flask-vps.lock sh -c \
      'command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }'
  else
    echo "flask-vps: debootstrap is needed to build the test images (apt-get install debootstrap, as root)" >&2
    exit 1
  fi
fi

rootfs=$(mktemp -d /var/tmp/flask-vps-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "flask-vps: building $tag from $suite ($mirror), about a minute" >&2
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >&2

cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
SOURCES
# A fresh VPS has its own host keys: make them at first boot, not in the image,
# before Debian's own `sshd -t` check (which fails without keys).
rm -f "$rootfs"/etc/ssh/ssh_host_*
mkdir -p "$rootfs/etc/systemd/system/ssh.service.d"
cat >"$rootfs/etc/systemd/system/ssh.service.d/host-keys.conf" <<'UNIT'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
UNIT
# systemd makes a machine id at first boot; an empty file says "not yet".
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"
# Units that only make sense on hardware or a console.
for unit in getty.target systemd-remount-fs.service console-getty.service; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
# As Debian's own container images do (debuerreotype's minimizing config): dpkg
# skips fsync, since a test container's disk is thrown away with it. Installs
# under the tests' parallel load go several times faster; nothing a role does
# depends on it.
echo force-unsafe-io >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
# The same for man-db: no rebuild of the man page index after every install (CI
# images do this; a VPS with man pages but a stale `apropos` behaves the same).
echo 'man-db man-db/auto-update boolean false' | chroot "$rootfs" debconf-set-selections
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

tar -C "$rootfs" -c . | docker import \
  -c 'CMD ["/lib/systemd/systemd"]' \
  -m "flask-vps test image: $suite from debootstrap" - "$tag" >/dev/null
docker tag "$tag" "flask-vps/${distro}:latest"
echo "$tag"
