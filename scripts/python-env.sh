#!/usr/bin/env bash
# A Python virtual environment of the project (used by setup-python.sh and setup-torch2.sh):
#   python-env.sh VENV system|isolated PIN...
# creates VENV from Debian's Python when missing (`system`: seeing Debian's packages, torch
# 1.13 and numpy among them, and building the project's package with Debian's setuptools;
# `isolated`: seeing nothing of Debian's), installs the pinned PyPI packages PIN (name==version)
# that are missing or of another version, and installs the project's package python/ (editable,
# without dependencies) when VENV does not import it from there. Idempotent. Prints VENV's python.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="$1"; MODE="$2"; shift 2
if [ ! -x "$VENV/bin/python" ]; then
  if [ "$MODE" = system ]; then /usr/bin/python3 -m venv --system-site-packages "$VENV"; else /usr/bin/python3 -m venv "$VENV"; fi
fi
check='import importlib.metadata as m, sys
pins = [p.split("==") for p in sys.argv[1:]]
sys.exit(any(m.version(n).split("+")[0] != v for n, v in pins))'
if [ $# -gt 0 ] && ! "$VENV/bin/python" -c "$check" "$@" >/dev/null 2>&1; then
  echo "python-env: installing $* into $VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
fi
here='import vaegan, os, sys; sys.exit(os.path.dirname(os.path.realpath(vaegan.__file__)) != os.path.realpath(sys.argv[1]))'
if ! "$VENV/bin/python" -c "$here" python/vaegan >/dev/null 2>&1; then
  build=()
  [ "$MODE" = system ] && build=(--no-build-isolation)
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps "${build[@]}" -e ./python >&2
fi
echo "$(cd "$VENV" && pwd)/bin/python"
