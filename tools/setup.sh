#!/usr/bin/env bash
# Set up a development environment in ./.venv: system libraries for open3d, then an editable install.
# Idempotent: a second run only checks. Usage: bash tools/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# open3d needs libusb-1.0 (and libGL on minimal systems).
need=()
ldconfig -p | grep -q 'libusb-1.0.so.0' || need+=(libusb-1.0-0)
ldconfig -p | grep -q 'libGL.so.1' || need+=(libgl1)
ldconfig -p | grep -q 'libgomp.so.1' || need+=(libgomp1)
if ((${#need[@]})); then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.mould-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints/ci.txt -nt "$stamp" ]; then
    # pip's own warnings are shown; the build backend's notices (setuptools explains how editable installs
    # work on every install) only when the install fails, with everything else it printed.
    pip_install() {
        local log
        if ! log=$(.venv/bin/python -m pip install -q "$@" 2>&1); then
            printf '%s\n' "$log" >&2
            return 1
        fi
        printf '%s\n' "$log" | grep -E '^(WARNING|ERROR)' | grep -v '^WARNING: Location' >&2 || true
    }
    pip_install --upgrade pip
    pip_install -c constraints/ci.txt -e '.[dev]'
    .venv/bin/python -c 'import mould, open3d, torch' && touch "$stamp"
fi
# The shipped model's ONNX export, made once with torch and cached (~/.cache/mould/onnx), so that the first
# `mould reconstruct` already runs without importing torch; a failure here only costs that first photo time.
.venv/bin/python -c 'from mould.models.runtime import cached_export; from mould.models.checkpoint import resolve_checkpoint; cached_export(resolve_checkpoint(None))' 2>/dev/null || true
