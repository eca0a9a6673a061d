#!/usr/bin/env bash
# Fault test (issue 6): trains a tiny run, kills it with SIGKILL at random moments (many land in
# checkpoint writes: there is one after every step), resumes after each kill, and checks that
# (1) after every kill the run directory still loads (`vaegan sample` on it), and (2) the finished
# run has the same metrics (all but images_per_sec) and byte-identical final weights as an
# uninterrupted run. A second run is cut into pieces by --max-minutes stops, each piece resumed
# by two processes started at once (one writer per run directory: the other must be refused),
# with SIGKILLs in between, and must end equal to the uninterrupted run too. Prints how many
# kills were survived; exits 1 on any difference.
#
# Usage: scripts/chaos.sh [KILLS] (default 10); VAEGAN=path/to/vaegan (default build/vaegan).
set -euo pipefail
kills=${1:-10}
bin=${VAEGAN:-build/vaegan}
export CUDA_VISIBLE_DEVICES=  # the CPU: runs are compared bit for bit
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
# compare RUN WHAT: RUN's metrics and final weights against the uninterrupted reference
compare() {
  if ! diff <(strip "$work/reference/metrics.jsonl") <(strip "$1/metrics.jsonl") > "$work/diff.txt"; then
    echo "chaos: metrics differ from the uninterrupted run after $2:"; head -20 "$work/diff.txt"; exit 1
  fi
  local ref got
  ref=$(cat "$work/reference/checkpoints/last"); got=$(cat "$1/checkpoints/last")
  if ! cmp -s "$work/reference/checkpoints/$ref/model.pt" "$1/checkpoints/$got/model.pt"; then
    echo "chaos: final weights differ from the uninterrupted run after $2"; exit 1
  fi
}
compare "$work/run" "$survived kills"

# Time stops (every piece about 0.3 s of training), each resumed by two processes at once.
timed="$work/timed"
"$bin" train "${args[@]}" --max-minutes 0.005 --out "$timed" > "$work/timed.log" 2>&1 || true
refused=0; pieces=1
last_step() { tail -n 1 "$timed/metrics.jsonl" 2>/dev/null | sed -E 's/.*"step":([0-9]+).*/\1/'; }
while [ "$(last_step)" != "40" ] && [ "$pieces" -lt 200 ]; do
  "$bin" train --resume "$timed" > "$work/a.log" 2>&1 & a=$!
  "$bin" train --resume "$timed" > "$work/b.log" 2>&1 & b=$!
  if [ $((RANDOM % 3)) -eq 0 ]; then
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 1.0 * r / 32768 }')"; kill -KILL "$a" 2>/dev/null || true
  fi
  ra=0; rb=0; wait "$a" || ra=$?; wait "$b" || rb=$?
  for pair in "$ra:$work/a.log" "$rb:$work/b.log"; do
    code=${pair%%:*}; log=${pair#*:}
    case "$code" in
      0 | 137) ;;
      2) if grep -q "is being written by another vaegan process" "$log"; then refused=$((refused + 1)); else
           echo "chaos: a resume failed:"; cat "$log"; exit 1; fi ;;
      *) echo "chaos: a resume exited with $code:"; cat "$log"; exit 1 ;;
    esac
  done
  pieces=$((pieces + 1))
done
compare "$timed" "$pieces time-stopped pieces ($refused concurrent starts refused)"
echo "chaos: survived $survived SIGKILLs; $pieces time-stopped pieces, $refused concurrent starts refused;" \
  "metrics and final weights equal the uninterrupted run's"
