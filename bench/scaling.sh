#!/usr/bin/env bash
# Data-parallel scaling on one machine (docs/scaling.md): for each preset, one process with every
# core's thread against one rank per core with one thread each (`vaegan train --nproc`), at the
# same global batch, with the time each rank spends in collectives. One JSON line per run is
# appended to OUT; the table is printed at the end.
#
#   bench/scaling.sh [OUT.jsonl]                      (make bench-scaling)
#   VAEGAN=build-torch2/vaegan VAEGAN_SCALING_STEPS=40 VAEGAN_SCALING_PRESETS=small32 bench/scaling.sh
#
# Throughput is the last metrics line's images_per_sec (global images per second over the run's
# steps, start-up and validation excluded). Compare ratios from one run on one machine only.
set -euo pipefail
cd "$(dirname "$0")/.."
VAEGAN="${VAEGAN:-build/vaegan}"
OUT="${1:-scaling-results.jsonl}"
STEPS="${VAEGAN_SCALING_STEPS:-30}"
PRESETS="${VAEGAN_SCALING_PRESETS:-small32 paper64}"
PRECISION="${VAEGAN_SCALING_PRECISION:-auto}"
GLOBAL_BATCH="${VAEGAN_SCALING_BATCH:-64}"
DATA="${VAEGAN_SCALING_DATA:-/usr/share/datasets/fashion-mnist}"
CORES="$(nproc)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for preset in $PRESETS; do
  for mode in threads ranks; do
    if [ "$mode" = threads ]; then
      args=(--threads "$CORES" --batch-size "$GLOBAL_BATCH")
      processes=1 threads="$CORES"
    else
      args=(--nproc "$CORES" --threads 1 --batch-size "$((GLOBAL_BATCH / CORES))")
      processes="$CORES" threads=1
    fi
    rm -rf "$work/run"
    "$VAEGAN" train --dataset fashion-mnist --data-dir "$DATA" --arch "$preset" --max-steps "$STEPS" \
      --log-every "$STEPS" --val-images 64 --grid-size 4 --precision "$PRECISION" --out "$work/run" "${args[@]}" \
      2>"$work/log" || { cat "$work/log"; exit 1; }
    python3 - "$work" "$preset" "$mode" "$processes" "$threads" "$GLOBAL_BATCH" "$STEPS" "$OUT" <<'EOF'
import json, re, sys
work, preset, mode, processes, threads, batch, steps, out = sys.argv[1:]
lines = [json.loads(l) for l in open(f"{work}/run/metrics.jsonl") if '"split"' not in l]
config = json.load(open(f"{work}/run/config.json"))
log = open(f"{work}/log").read()
m = re.search(r"collectives: ([\d.]+) s of ([\d.]+) s \(([\d.]+) %, ([\d.]+) ms per step\)", log)
row = {"preset": preset, "mode": mode, "processes": int(processes), "threads_per_process": int(threads),
       "global_batch": int(batch), "steps": lines[-1]["step"], "precision": config["precision"],
       "images_per_sec": round(lines[-1]["images_per_sec"], 2),
       "collective_ms_per_step": float(m.group(4)) if m else 0.0,
       "collective_share": float(m.group(3)) / 100 if m else 0.0}
with open(out, "a") as f:
    f.write(json.dumps(row) + "\n")
EOF
  done
done

python3 - "$OUT" "$PRESETS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"{'preset':8} {'processes x threads':>20} {'precision':>9} {'img/s':>8} {'efficiency':>10} {'collectives/step':>17}")
for preset in sys.argv[2].split():
    mine = [r for r in rows if r["preset"] == preset][-2:]
    base = next(r for r in mine if r["mode"] == "threads")
    for r in mine:
        eff = r["images_per_sec"] / base["images_per_sec"]
        print(f"{preset:8} {str(r['processes']) + ' x ' + str(r['threads_per_process']):>20} {r['precision']:>9} "
              f"{r['images_per_sec']:8.1f} {eff:10.2f} {r['collective_ms_per_step']:14.1f} ms")
EOF
