#!/usr/bin/env bash
# Downloads into .deps/ the Debian packages (headers, CMake files and shared libraries) that
# vaegan builds with but a GPU machine of the `device` tool lacks (it has PyTorch, CMake, ninja
# and nvcc, no Debian -dev packages and no network). scripts/gpu-check.sh unpacks them there.
# Run here, where apt works; .deps/ is ignored by git and travels with `carry`.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=(
  libcli11-dev libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 nlohmann-json3-dev
  zlib1g-dev zlib1g libstb-dev libstb0 libjpeg-dev libjpeg62-turbo-dev libjpeg62-turbo
  libgtest-dev libgloo-dev
  libprotobuf-dev libprotobuf32 protobuf-compiler libprotoc32 libzip-dev libzip4
  libcpp-httplib-dev libcpp-httplib0.11 libssl-dev libbrotli-dev libbrotli1 libjs-chart.js
)
mkdir -p .deps
(cd .deps && apt-get download "${PACKAGES[@]}" >/dev/null)
du -sh .deps | sed 's/^/gpu-deps: /'
