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
