#!/usr/bin/env bash
# Build the project's virtual environment. PyTorch goes in first, pinned, so that pip resolves
# Ultralytics against it instead of pulling another multi-GB build.
set -euo pipefail
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "GridWatch needs Python >= 3.11; set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --progress-bar off)
if ! "$VENV/bin/python" -c 'import torch, torchvision' 2>/dev/null; then
    echo "== installing torch 2.14.1 and torchvision 0.29.1"
    "${PIP[@]}" torch==2.14.1 torchvision==0.29.1
fi
echo "== installing GridWatch and its dependencies"
"${PIP[@]}" -e '.[test]'
echo "== $VENV ready"
