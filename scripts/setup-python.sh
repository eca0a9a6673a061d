#!/usr/bin/env bash
# Creates the project's Python environment for the LibTorch 1.13 build: .venv-py (or
# $VAEGAN_PY_VENV), Debian's Python seeing Debian's python3-torch, numpy and Pillow, plus the
# pinned PyPI tensorboard (the tests read vaegan's event files with it; `tensorboard --logdir
# runs` shows runs) and the project's package python/ (editable: `import vaegan` loads
# checkpoints; docs/python.md). Idempotent. Prints the interpreter's path. Needs Debian's
# python3-venv, python3-setuptools and python3-wheel (scripts/install-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/python-env.sh "${VAEGAN_PY_VENV:-.venv-py}" system "tensorboard==2.21.0"
