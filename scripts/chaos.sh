#!/usr/bin/env bash
# Fault test (issue 6): trains a tiny run, kills it with SIGKILL at random moments (many land in
# checkpoint writes: there is one after every step), resumes after each kill, and checks that
# (1) after every kill the run directory still loads (`vaegan sample` on it), and (2) the finished
# run has the same metrics (all but images_per_sec) and byte-identical final weights as an
# uninterrupted run. Prints how many kills were survived; exits 1 on any difference.
#
# Usage: scripts/chaos.sh [KILLS] (default 10); VAEGAN=path/to/vaegan (default build/vaegan).
set -euo pipefail
kills=${1:-10}
bin=${VAEGAN:-build/vaegan}
data=${CHAOS_DATA:-/usr/share/datasets/fashion-mnist}
if [ ! -d "$data" ]; then echo "chaos: no Fashion-MNIST in $data (CHAOS_DATA); skipped"; exit 77; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
args=(--dataset fashion-mnist --data-dir "$data" --batch-size 16 --max-steps 40 --epochs 1 --log-every 1
      --checkpoint-every 1 --keep-checkpoints 2 --grid-size 4 --threads 1 --seed 7)

"$bin" train "${args[@]}" --out "$work/reference" > "$work/reference.log" 2>&1

survived=0
"$bin" train "${args[@]}" --out "$work/run" > "$work/run.log" 2>&1 &
pid=$!
for ((i = 1; i <= kills; i++)); do
  sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.3 + 2.5 * r / 32768 }')"
  if ! kill -0 "$pid" 2>/dev/null; then break; fi  # finished before this kill
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null || true
  survived=$((survived + 1))
  if [ -e "$work/run/checkpoints/last" ]; then
    # the newest checkpoint must load
    "$bin" sample --checkpoint "$work/run" --n 2 --out "$work/check.npy" > "$work/check.log" 2>&1 ||
      { echo "chaos: after kill $i the run directory does not load:"; cat "$work/check.log"; exit 1; }
    "$bin" train --resume "$work/run" --threads 1 >> "$work/run.log" 2>&1 &
  else  # killed before the first checkpoint: start again
    "$bin" train "${args[@]}" --out "$work/run" --overwrite >> "$work/run.log" 2>&1 &
  fi
  pid=$!
done
wait "$pid" || { echo "chaos: the last resume failed:"; tail -5 "$work/run.log"; exit 1; }

strip() { sed -E 's/"images_per_sec":[^,}]*,?//' "$1"; }
if ! diff <(strip "$work/reference/metrics.jsonl") <(strip "$work/run/metrics.jsonl") > "$work/diff.txt"; then
  echo "chaos: metrics differ from the uninterrupted run after $survived kills:"; head -20 "$work/diff.txt"; exit 1
fi
ref=$(cat "$work/reference/checkpoints/last"); got=$(cat "$work/run/checkpoints/last")
if ! cmp -s "$work/reference/checkpoints/$ref/model.pt" "$work/run/checkpoints/$got/model.pt"; then
  echo "chaos: final weights differ from the uninterrupted run after $survived kills"; exit 1
fi
echo "chaos: survived $survived SIGKILLs; metrics and final weights equal the uninterrupted run's"
