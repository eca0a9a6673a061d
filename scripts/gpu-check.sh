#!/usr/bin/env bash
# The GPU check of vaegan in one call: builds vaegan against the machine's own PyTorch
# (torch.utils.cmake_prefix_path), runs the CUDA tests (ctest -L cuda), then the bench on the GPU
# with the PyTorch twin (eager and torch.compile) in the same run, and the training loop against
# the bare step. On a machine without a GPU the same script builds, the CUDA tests skip and the
# bench runs on the CPU (how it is tested before a GPU is lent).
#
# On the `device` tool's GPU machine (no network, no Debian -dev packages): first, here,
# `scripts/gpu-deps.sh` (downloads the packages into .deps/), then one call:
#   run(command="bash scripts/gpu-check.sh $OUT", carry=[".deps"], timeout_s=540)
# Results in OUT_DIR (default gpu-check-out/): summary.txt, build.log, ctest.log, bench.jsonl,
# and backtrace.log where something crashed.
# Environment: VAEGAN_GPU_PYTHON (python3), VAEGAN_GPU_BUILD (build-gpu),
# VAEGAN_GPU_BENCH_ARGS (the bench's flags), VAEGAN_GPU_TRAIN_IMAGES (60000),
# VAEGAN_GPU_BENCH_SECONDS (300: the bench is stopped after this long, keeping the lines it
# printed, so that the whole check fits one call; 0: no bench against the twin).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-gpu-check-out}"
PY="${VAEGAN_GPU_PYTHON:-python3}"
BUILD="${VAEGAN_GPU_BUILD:-build-gpu}"
BENCH_ARGS="${VAEGAN_GPU_BENCH_ARGS:---presets small32,paper64 --models vaegan --precisions fp32,bf16 --reps 20}"
mkdir -p "$OUT_DIR"
: >"$OUT_DIR/summary.txt"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
say() { echo "gpu-check: $*" | tee -a "$OUT_DIR/summary.txt"; }
start=$SECONDS

# 1. Dependencies: Debian packages carried in .deps/ are unpacked into .deps/root.
prefix=""
if compgen -G ".deps/*.deb" >/dev/null; then
  rm -rf .deps/root && mkdir -p .deps/root
  for f in .deps/*.deb; do dpkg-deb -x "$f" .deps/root || { say "cannot unpack $f"; exit 1; }; done
  root="$PWD/.deps/root"
  prefix=";$root/usr"
  export LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PATH="$root/usr/bin:$PATH"  # protoc
fi
torch_dir="$("$PY" -c 'import os, torch; print(os.path.dirname(torch.__file__))')" || { say "$PY has no torch"; exit 1; }
say "$("$PY" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "GPU", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")')"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$OUT_DIR/summary.txt"

# 2. Build (Release) against that PyTorch; GPU code for the visible GPU's architecture.
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
arch="$("$PY" -c 'import torch; c = torch.cuda.get_device_capability() if torch.cuda.is_available() else None; print(f"{c[0]}.{c[1]}" if c else "")')"
cmake -S . -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DVAEGAN_PYTHON="$(command -v "$PY")" \
  -DCMAKE_PREFIX_PATH="$torch_dir/share/cmake;$torch_dir$prefix" ${arch:+-DTORCH_CUDA_ARCH_LIST=$arch} \
  >"$OUT_DIR/build.log" 2>&1 &&
  cmake --build "$BUILD" -j "$(nproc)" >>"$OUT_DIR/build.log" 2>&1
rc=$?
say "build: exit $rc after $((SECONDS - start)) s"
if [ $rc -ne 0 ]; then tail -40 "$OUT_DIR/build.log"; exit 1; fi

# 3. The CUDA tests (they skip, each with a message, where no GPU is visible). A test that
#    crashes runs once more under cuda-gdb (or gdb) for its backtrace, in backtrace.log.
(cd "$BUILD" && ctest -L cuda --output-on-failure --timeout 150) >"$OUT_DIR/ctest.log" 2>&1
tests_rc=$?
say "ctest -L cuda: exit $tests_rc after $((SECONDS - start)) s: $(grep -E 'tests passed|tests failed' "$OUT_DIR/ctest.log")"
grep -E "Skipped|Failed|\*\*\*" "$OUT_DIR/ctest.log" | head -20
debugger="$(command -v gdb || command -v cuda-gdb)"  # cuda-gdb's unwinder failed on a jump to address 0
backtrace_of() {  # backtrace_of LABEL COMMAND...: the crashing thread's stack, if a debugger is here
  [ -n "$debugger" ] || return 0
  echo "=== $1" >>"$OUT_DIR/backtrace.log"
  shift
  # a jump to address 0 leaves nothing to unwind from: the words on the stack then name the
  # caller (printed first: an unwinder's error can end the batch)
  timeout 150 "$debugger" -q -batch -ex "set pagination off" -ex "set print thread-events off" -ex run \
    -ex 'info registers rip rsp' -ex 'x/16a $sp' -ex 'info symbol *(long*)$sp' -ex "bt 40" \
    --args "$@" 2>&1 | grep -v "Cuda Driver error detected" >>"$OUT_DIR/backtrace.log"
}
for t in $(grep -oE 'Test +#[0-9]+: [A-Za-z0-9_.]+ [.]+\*\*\*Exception' "$OUT_DIR/ctest.log" | awk '{print $3}' | head -1); do
  backtrace_of "$t" "$BUILD/tests/vaegan_tests" --gtest_filter="$t"
done
[ -f "$OUT_DIR/backtrace.log" ] && grep -E "^=== |^#[0-9]+ |^0x|^rip|in section" "$OUT_DIR/backtrace.log" | head -60

# 4. The bench on the GPU (or the CPU), with the twin and the training loop on synthetic
#    Fashion-MNIST-sized data (the machine has no dataset; real files where they are).
data="${VAEGAN_GPU_TRAIN_DATA:-/usr/share/datasets/fashion-mnist}"
if [ ! -d "$data" ]; then
  data="$PWD/$BUILD/synthetic-idx"
  "$PY" - "$data" "${VAEGAN_GPU_TRAIN_IMAGES:-60000}" <<'PYEOF'
import gzip, os, struct, sys
import numpy as np
out, n = sys.argv[1], int(sys.argv[2])
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(0)
for prefix, count in (("train", n), ("t10k", 10000)):
    images = (rng.random((count, 28, 28)) * 255).astype(np.uint8)
    labels = rng.integers(0, 10, count).astype(np.uint8)
    with gzip.open(f"{out}/{prefix}-images-idx3-ubyte.gz", "wb", compresslevel=1) as f:
        f.write(struct.pack(">IIII", 2051, count, 28, 28) + images.tobytes())
    with gzip.open(f"{out}/{prefix}-labels-idx1-ubyte.gz", "wb", compresslevel=1) as f:
        f.write(struct.pack(">II", 2049, count) + labels.tobytes())
PYEOF
fi
# 4a. vaegan's steps against the twin's (VAEGAN_GPU_BENCH_SECONDS=0 leaves it out); 4b. the
# training loop against the bare step.
bench_rc=0
: >"$OUT_DIR/bench.jsonl"
if [ "${VAEGAN_GPU_BENCH_SECONDS:-300}" != 0 ]; then
  # shellcheck disable=SC2086
  timeout "${VAEGAN_GPU_BENCH_SECONDS:-300}" "$BUILD/bench/vaegan_bench" --device auto --python "$(command -v "$PY")" \
    --no-loader --train-steps 0 $BENCH_ARGS >"$OUT_DIR/bench.jsonl" 2>"$OUT_DIR/bench.log"
  bench_rc=$?
  say "bench: exit $bench_rc after $((SECONDS - start)) s"
  grep -E '"ratio_to_twin"|_peak"' "$OUT_DIR/bench.jsonl"
fi
loop=("$BUILD/bench/vaegan_bench" --device auto --no-twin --no-loader --presets small32 --models vaegan --reps 20
  --train-data "$data")
timeout 120 "${loop[@]}" >>"$OUT_DIR/bench.jsonl" 2>>"$OUT_DIR/bench.log"
loop_rc=$?
say "training loop: exit $loop_rc after $((SECONDS - start)) s"
grep -E '"train_loop"' "$OUT_DIR/bench.jsonl"
if [ $loop_rc -gt 128 ] && [ $loop_rc -ne 137 ]; then
  backtrace_of "training loop" "${loop[@]}"
  sed -n '/^=== training loop/,$p' "$OUT_DIR/backtrace.log" | grep -E "^#[0-9]+ |^0x|^rip|in section" | head -40
fi
# 5. One rank of a data-parallel job on the GPU: NCCL (a one-GPU machine cannot show more).
"$BUILD/vaegan" train --dataset fashion-mnist --data-dir "$data" --device cuda --nproc 1 --max-steps 50 \
  --log-every 25 --val-images 256 --grid-size 16 --out "$BUILD/nccl-run" --overwrite >"$OUT_DIR/nccl.log" 2>&1
nccl_rc=$?
say "1 rank with NCCL: exit $nccl_rc: $(grep -oE 'joined the job.*|done: .*|collectives: .*' "$OUT_DIR/nccl.log" | tr '\n' ' ')"
[ $tests_rc -eq 0 ] && [ $bench_rc -eq 0 ] && [ $loop_rc -eq 0 ] && [ $nccl_rc -eq 0 ]
