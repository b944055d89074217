# shellcheck shell=bash
# Shared helpers for scripts/*: where the test environment lives and how to
# run a command inside it.  Sourced, never executed.
#
# The environment is either a venv on the host's Python (when it is >= 3.14.2)
# or, as a fallback, a Debian testing root file system built by debootstrap.
# Both live in a cache outside the checkout so a fresh clone reuses them.

set -euo pipefail

KPN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KPN_CACHE="${KPN_VOIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kpn_voip}"
KPN_ROOTFS="$KPN_CACHE/rootfs"
KPN_WHEELS="$KPN_CACHE/wheels"
KPN_MIN_PY="3.14.2"
# Inside the root file system the venv has a fixed place; on the host it is in
# the cache.
KPN_ROOTFS_VENV="/opt/kpn_voip-venv"
KPN_HOST_VENV="$KPN_CACHE/venv"
# What `python -m kpn_devtools ...` (scripts/standin, call, develop; benchmarks)
# needs on its path: the checkout and the folder of the engine package kpn_line.
KPN_DEV_PYTHONPATH="$KPN_ROOT:$KPN_ROOT/custom_components/kpn_voip"

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Prints a host Python >= 3.14.2 if there is one.
host_python() {
  local candidate
  for candidate in "${KPN_PYTHON:-}" python3.14 python3; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 14, 2))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

# "host" or "rootfs": which kind of environment this machine uses.
env_kind() {
  if [ "${KPN_VOIP_FORCE_ROOTFS:-0}" != 1 ] && host_python >/dev/null; then
    echo host
  else
    echo rootfs
  fi
}

venv_dir() {
  if [ "$(env_kind)" = host ]; then echo "$KPN_HOST_VENV"; else echo "$KPN_ROOTFS_VENV"; fi
}

# Run a command inside the environment, in the checkout, with the venv first
# on PATH.  In rootfs mode this enters a private mount namespace (so no mount
# outlives the command) and chroots with a clean environment: the host's PIP_*
# settings point at folders that do not exist inside.
# `in_env --exec CMD...` replaces the calling shell: CMD keeps its process id
# (signals sent to that pid reach CMD itself, scripts/develop).
in_env() {
  local -a run=()
  if [ "${1:-}" = --exec ]; then
    run=(exec)
    shift
  fi
  local venv
  venv="$(venv_dir)"
  local path="$venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  if [ "$(env_kind)" = host ]; then
    if [ ${#run[@]} -gt 0 ]; then
      cd "$KPN_ROOT"
      PATH="$path" VIRTUAL_ENV="$venv" exec "$@"
    fi
    (cd "$KPN_ROOT" && PATH="$path" VIRTUAL_ENV="$venv" "$@")
    return
  fi
  [ -x "$KPN_ROOTFS/usr/bin/python3.14" ] || die "root file system missing: run scripts/setup"
  local -a pass=()
  local var
  for var in CI TERM COLUMNS KPN_VOIP_DEBUG PYTEST_ADDOPTS KPN_HA_PORT KPN_SIP_PORT KPN_UPDATE_SCREENSHOTS; do
    [ -n "${!var:-}" ] && pass+=("$var=${!var}")
  done
  "${run[@]}" unshare --mount --propagation private -- /bin/bash -euc '
    root="$1"; src="$2"; shift 2
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount --rbind /sys "$root/sys"
    mount -t tmpfs tmpfs "$root/run"
    mkdir -p "$root$src"
    mount --bind "$src" "$root$src"
    # Replace atomically and only when changed: a process in another
    # scripts/run may be reading these files right now.
    for pair in /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/host-ca.crt /etc/resolv.conf:/etc/resolv.conf; do
      from="${pair%%:*}"; to="$root${pair#*:}"
      cmp -s "$from" "$to" 2>/dev/null \
        || { cp "$from" "$to.$$" && mv -f "$to.$$" "$to"; } 2>/dev/null || true
    done
    exec chroot "$root" "$@"
  ' _ "$KPN_ROOTFS" "$KPN_ROOT" \
    /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH="$path" VIRTUAL_ENV="$venv" \
    KPN_ENV_ROOT="$KPN_ROOTFS" \
    SSL_CERT_FILE=/etc/ssl/certs/host-ca.crt PIP_CERT=/etc/ssl/certs/host-ca.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "${pass[@]}" /bin/bash -c 'cd "$1" && shift && exec "$@"' _ "$KPN_ROOT" "$@"
}

# Downloads Debian packages of another architecture (amd64, arm64) and
# unpacks them (never installs) into DEST, with apt working on a private
# state folder so the environment's own apt setup is left alone.
#   apt_unpack_foreign ARCH DEST PACKAGE...
apt_unpack_foreign() {
  local arch="$1" dest="$2"
  shift 2
  local work="$dest.partial"
  rm -rf "$work" && mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs" "$work/root"
  : >"$work/status"
  local -a opts=(-q -o Acquire::Check-Valid-Until=false -o "APT::Architecture=$arch"
    -o "APT::Architectures::=$arch" -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
    -o "Dir::State::status=$work/status")
  apt-get "${opts[@]}" update >"$work/apt.log" 2>&1 || { tail -5 "$work/apt.log" >&2; return 1; }
  (cd "$work/debs" && apt-get "${opts[@]}" download "$@") >>"$work/apt.log" 2>&1 \
    || { tail -5 "$work/apt.log" >&2; return 1; }
  local deb
  for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$work/root" || return 1
  done
  # Merged /usr: base-files (not unpacked) makes /lib point into /usr.
  for deb in lib bin sbin; do
    [ -e "$work/root/$deb" ] || ln -s "usr/$deb" "$work/root/$deb"
  done
  rm -rf "$work/lists" "$work/cache" "$work/debs"
  rm -rf "$dest" && mv "$work" "$dest"
}
