#!/usr/bin/env bash
# Installs the Debian packages vaegan needs (docs/design.md, "Dependencies"), only those that are missing.
# Idempotent; runs as root without prompts (uses sudo when not root and sudo is available).
set -euo pipefail

PACKAGES=(
  build-essential cmake ccache pkg-config
  libtorch-dev libopenblas0-openmp libgloo-dev
  dataset-fashion-mnist
  libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev zlib1g-dev libstb-dev libjpeg-dev
  libprotobuf-dev protobuf-compiler libzip-dev libcpp-httplib-dev libjs-chart.js
  libgtest-dev
  python3-torch python3-numpy python3-scipy python3-venv python3-setuptools python3-wheel python3-pil
  gnuplot-nox time
  chromium chromium-driver python3-selenium
)
# `--fuzz`: the compiler and runtime of the libFuzzer targets (`make fuzz`); `--icons`: the Oxygen
# icon theme, the quality benchmark's second dataset (scripts/oxygen-icons.sh); not needed otherwise.
for option in "$@"; do
  case "$option" in
    --fuzz) PACKAGES+=(clang libclang-rt-14-dev) ;;
    --icons) PACKAGES+=(oxygen-icon-theme) ;;
    *) echo "install-deps: unknown option $option (expected --fuzz or --icons)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: missing packages (${missing[*]}) and not root; run as root" >&2; exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
