#!/usr/bin/env bash
# Install vHeatIR and its pinned dependencies into the current Python environment.
# Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -m pip install -q torch==2.14.1 torchvision==0.29.1
# basicsr 1.4.2's setup.py imports torch while building: no build isolation.
"$PY" -m pip install -q --no-build-isolation basicsr==1.4.2
"$PY" -m pip install -q -r requirements.txt pytest
"$PY" -m pip install -q --no-build-isolation --no-deps -e .
# Optional: inference.py runs under jemalloc where it is installed (faster first images, half the
# heap; docs/speed.md). Installed here when this is a Debian/Ubuntu system we may change.
if ! ldconfig -p 2>/dev/null | grep -q libjemalloc && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    { timeout 300 apt-get install -y -qq libjemalloc2 || { timeout 300 apt-get update -qq \
        && timeout 300 apt-get install -y -qq libjemalloc2; }; } >/dev/null 2>&1 \
        || echo "note: libjemalloc2 not installed; inference.py keeps glibc's malloc"
fi
