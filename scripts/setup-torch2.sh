#!/usr/bin/env bash
# Creates the project's virtual environment (.venv, or $VAEGAN_VENV) with PyTorch 2.x from PyPI:
# its LibTorch (CUDA build, C++11 ABI) is what the second build compiles against (make
# build-torch2), and its Python runs that build's PyTorch reference tests and the bench's twin,
# with TensorBoard, Pillow and the project's package python/ for the TensorBoard and package tests.
# Idempotent: installs only when a pinned version is missing. Prints the CMake prefix of the
# LibTorch it holds. Needs Debian's python3-venv (scripts/install-deps.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VAEGAN_VENV:-.venv}"
PINS=("torch==2.15.0" "numpy==2.4.6" "scipy==1.17.1" "tensorboard==2.21.0" "pillow==12.0.0")

bash scripts/python-env.sh "$VENV" isolated "${PINS[@]}" >/dev/null
"$VENV/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))'
