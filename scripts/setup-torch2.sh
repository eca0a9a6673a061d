#!/usr/bin/env bash
# Creates the project's virtual environment (.venv, or $VAEGAN_VENV) with PyTorch 2.x from PyPI:
# its LibTorch (CUDA build, C++11 ABI) is what the second build compiles against (make
# build-torch2), and its Python runs that build's PyTorch reference tests and the bench's twin.
# Idempotent: installs only when a pinned version is missing. Prints the CMake prefix of the
# LibTorch it holds. Needs Debian's python3-venv (scripts/install-deps.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VAEGAN_VENV:-.venv}"
PINS=("torch==2.15.0" "numpy==2.4.6" "scipy==1.17.1")

if [ ! -x "$VENV/bin/python" ]; then
  /usr/bin/python3 -m venv "$VENV"
fi
check='import importlib.metadata as m, sys
pins = [p.split("==") for p in sys.argv[1:]]
sys.exit(any(m.version(n).split("+")[0] != v for n, v in pins))'
if ! "$VENV/bin/python" -c "$check" "${PINS[@]}" >/dev/null 2>&1; then
  echo "setup-torch2: installing ${PINS[*]} into $VENV (a CUDA build: about 4 GB with its NVIDIA wheels)" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}"
fi
"$VENV/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))'
