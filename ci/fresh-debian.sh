#!/usr/bin/env bash
# Runs a command on a clean clone of this repository inside a fresh Debian root:
# what a new user's machine is (Debian's python3, git, make, ca-certificates, curl
# and nothing else). Needs root: debootstrap, chroot and bind mounts.
#
#   ci/fresh-debian.sh [COMMAND]          default: 'make test'
#   FRESH_SUITE=trixie (Debian 13, the default: Python 3.13, OpenJDK 21)
#              | bookworm (Debian 12: Python 3.11, OpenJDK 17)
#   FRESH_CACHE=DIR   where base roots are kept between runs
#                     (default /var/cache/lag-exporter-ci)
#
# The clone is of the committed HEAD: commit first. The base root is made once
# with debootstrap (minbase) and cached; every run works on a new copy of it, and
# the copy and its mounts are removed however the run ends. The host's CA bundle
# and local CAs, resolver and pip configuration are copied in, so the package
# registries are reached the way they are on the host; the root keeps its own
# apt sources.
set -u
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel) || exit 2
cmd=${1:-make test}
suite=${FRESH_SUITE:-trixie}
cache=${FRESH_CACHE:-/var/cache/lag-exporter-ci}
base=$cache/debian-$suite
mirror=${FRESH_MIRROR:-http://deb.debian.org/debian}

[ "$(id -u)" = 0 ] || { echo "ci/fresh-debian.sh: run as root (debootstrap, chroot and mounts need it)"; exit 2; }
mkdir -p "$cache"

make_base() {
  # Built beside the cache entry and renamed into place, so an interrupted build
  # never leaves a half-made base that a later run would trust.
  command -v debootstrap >/dev/null || {
    echo "installing debootstrap (makes the Debian base root)"
    { apt-get update -qq && apt-get install -y -qq debootstrap; } >/dev/null || exit 1
  }
  echo "making the Debian $suite base root in $base (once, a few minutes)"
  local tmp
  tmp=$(mktemp -d "$cache/.debian-$suite.XXXX")
  if ! debootstrap --variant=minbase --include=python3,git,make,ca-certificates,curl \
      "$suite" "$tmp" "$mirror" >"$tmp.log" 2>&1; then
    echo "debootstrap failed; its log: $tmp.log"
    rm -rf --one-file-system "$tmp"
    exit 1
  fi
  rm -f "$tmp.log"
  mv "$tmp" "$base"
}

# One builder at a time per suite; later runs wait and then reuse the base.
exec 9>"$cache/.lock-$suite"
flock 9
[ -x "$base/usr/bin/python3" ] || make_base
flock -u 9

root=$(mktemp -d "${TMPDIR:-/tmp}/fresh-debian-$suite.XXXX")
cleanup() {
  for m in dev/pts dev sys proc; do umount -l "$root/$m" 2>/dev/null; done
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cp -a "$base"/. "$root"/
chmod 755 "$root"  # mktemp made it (and the base) 0700: other users could not enter /
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
# CAs the host trusts beyond Debian's (a registry proxy's, say) are added the
# Debian way too, so that Java's trust store (made from them when the JRE is
# installed) reaches the registries as the host does.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  local_cas=1
fi
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null
for f in /etc/pip.conf; do
  [ -f "$f" ] && mkdir -p "$root$(dirname "$f")" && cp "$f" "$root$f"
done
[ -f "$HOME/.config/pip/pip.conf" ] && mkdir -p "$root/root/.config/pip" \
  && cp "$HOME/.config/pip/pip.conf" "$root/root/.config/pip/"
[ -f "$HOME/.m2/settings.xml" ] && mkdir -p "$root/root/.m2" && cp "$HOME/.m2/settings.xml" "$root/root/.m2/"
git clone -q "$repo" "$root/root/project" || exit 1
for m in proc sys dev dev/pts; do mount --bind "/$m" "$root/$m" || exit 1; done

[ -n "${local_cas:-}" ] && chroot "$root" update-ca-certificates >/dev/null 2>&1
start=$(date +%s)
chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 CI="${CI:-}" TERM=dumb \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  bash -c "cd /root/project && $cmd"
rc=$?
echo "fresh Debian $suite: '$cmd' exited $rc after $(($(date +%s) - start)) s"
exit "$rc"
