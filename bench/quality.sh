#!/usr/bin/env bash
# Sample and reconstruction quality at a fixed training budget (issue: recall and a second
# dataset; docs/training-defaults.md). Never part of `make test`: each row trains for minutes.
#
#   bench/quality.sh run NAME SEED [TRAIN FLAGS...]   train NAME's configuration with SEED, evaluate, record a line
#   bench/quality.sh eval NAME SEED                   evaluate that run again (a new metric, another classifier)
#   bench/quality.sh table                            mean of the seeds of every NAME
#   make bench-quality                                the default configuration and the plain VAE, seeds 1 and 2
#
# `run` trains `vaegan train --dataset $QUALITY_DATASET --max-minutes $QUALITY_MINUTES --seed SEED
# FLAGS` (or `--max-steps $QUALITY_STEPS` when that is set) into runs/quality/NAME-sSEED, then
# `vaegan eval` with one fixed classifier directory ($QUALITY_CLASSIFIER, trained once for
# $QUALITY_CLASSIFIER_EPOCHS epochs when missing; every line records its path and test accuracy),
# and records one JSON line in $QUALITY_RESULTS, replacing an earlier one of the same dataset, NAME
# and SEED: the configuration, seed, steps, Fréchet distance, precision, recall, MSE, SSIM, class
# agreement and feature distance.
# A run that kept a moving average of the decoder (--ema-decay) gets a second line, NAME@trained,
# evaluated with its trained decoder. Use two seeds for every row: one seed is not evidence at
# this budget.
#
# A folder dataset: QUALITY_DATASET=folder QUALITY_DATA_DIR=DIR (training, its classifier and the
# rows are named after DIR's last component), e.g. the Oxygen icons of scripts/oxygen-icons.sh:
#   QUALITY_DATASET=folder QUALITY_DATA_DIR=data/oxygen-icons QUALITY_CLASSIFIER_FLAGS="--channels 3 --image-size 32" \
#     bench/quality.sh run vaegan-default 1 --arch small32 --channels 3
set -euo pipefail
cd "$(dirname "$0")/.."
VAEGAN="${VAEGAN:-build/vaegan}"
PY="${VAEGAN_PYTHON:-/usr/bin/python3}"
DATASET="${QUALITY_DATASET:-fashion-mnist}"
DATA_DIR="${QUALITY_DATA_DIR:-}"
LABEL="$DATASET"  # names the classifier and the runs: the folder's name for a folder dataset
DATA_FLAGS=()
if [ -n "$DATA_DIR" ]; then
  LABEL="$(basename "$DATA_DIR")"
  DATA_FLAGS=(--data-dir "$DATA_DIR")
fi
MINUTES="${QUALITY_MINUTES:-10}"
# QUALITY_STEPS=N: a budget of N steps instead of minutes (the same on every machine; a folder's
# epochs are short, so the epoch count is lifted out of the way either way).
STEPS="${QUALITY_STEPS:-0}"
BUDGET=(--max-minutes "$MINUTES" --epochs 100000)
[ "$STEPS" = 0 ] || { BUDGET=(--max-steps "$STEPS" --epochs 100000); MINUTES=0; }
SAMPLES="${QUALITY_SAMPLES:-10000}"
RESULTS="${QUALITY_RESULTS:-bench/quality-results.jsonl}"
CLASSIFIER="${QUALITY_CLASSIFIER:-runs/quality/classifier-$LABEL}"
CLASSIFIER_EPOCHS="${QUALITY_CLASSIFIER_EPOCHS:-15}"
read -r -a CLASSIFIER_FLAGS <<< "${QUALITY_CLASSIFIER_FLAGS:-}"

usage() { sed -n '5,8p' "$0" | sed 's/^#//' >&2; exit 2; }

# record RUN EVAL_FILE NAME SEED FLAGS...: the figures of RUN/EVAL_FILE as one line of $RESULTS, in
# place of an earlier line of the same dataset, NAME and SEED (whose flags and budget it keeps when
# $MINUTES is "keep", as `eval` sets it).
record() {
  local run="$1" file="$2" row="$3" seed="$4"
  shift 4
  "$PY" - "$run" "$file" "$row" "$seed" "$MINUTES" "$RESULTS" "$@" <<'PY'
import json, os, sys, time
run, eval_file, name, seed, minutes, results, flags = (sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]),
                                                        sys.argv[5], sys.argv[6], sys.argv[7:])
keep = minutes == "keep"
minutes = None if keep else float(minutes)
e = json.load(open(f"{run}/{eval_file}"))
last = open(f"{run}/checkpoints/last").read().strip()
state = json.load(open(f"{run}/checkpoints/{last}/state.json"))
rec, smp = e.get("reconstruction", {}), e.get("samples", {})
config = json.load(open(f"{run}/config.json"))
dataset = config["dataset"]
if dataset == "folder":  # named after the folder (data/oxygen-icons: folder:oxygen-icons)
    dataset += ":" + os.path.basename(os.path.normpath(config["data_dir"]))
line = {"name": name, "seed": seed, "flags": flags, "dataset": dataset,
        "minutes": minutes or None, "steps": state["step"], "frechet_distance": smp.get("frechet_distance"),
        "precision": smp.get("precision"), "recall": smp.get("recall"),
        "mse": rec.get("mse", {}).get("mean"), "ssim": rec.get("ssim", {}).get("mean"),
        "class_agreement": rec.get("class_agreement"),
        "feature_distance": rec.get("feature_distance", {}).get("mean"), "classifier": smp.get("extractor"),
        "decoder_weights": e.get("decoder_weights"), "date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count()}
kept = []
if os.path.exists(results):
    for old in map(json.loads, filter(str.strip, open(results))):
        if (old["dataset"], old["name"], old["seed"]) == (dataset, name, seed):
            if keep:
                line["flags"], line["minutes"] = old["flags"], old["minutes"]
        else:
            kept.append(old)
with open(results + ".tmp", "w") as f:
    for old in kept + [line]:
        f.write(json.dumps(old) + "\n")
os.replace(results + ".tmp", results)
print(json.dumps(line))
PY
}

# evaluate RUN NAME SEED FLAGS...: `vaegan eval` of RUN with the fixed classifier, recorded as NAME;
# a run that kept a moving average of the decoder (--ema-decay) was evaluated with it (the
# default of eval) and gets a second line, NAME@trained, with the trained decoder.
evaluate() {
  local run="$1" name="$2" seed="$3"
  shift 3
  "$VAEGAN" eval --checkpoint "$run" --classifier "$CLASSIFIER" --n-samples "$SAMPLES" --out "$run/eval.json"
  record "$run" eval.json "$name" "$seed" "$@"
  if [ -f "$run/checkpoints/$(cat "$run/checkpoints/last")/decoder-ema.pt" ]; then
    "$VAEGAN" eval --checkpoint "$run" --classifier "$CLASSIFIER" --n-samples "$SAMPLES" --decoder-weights trained \
      --out "$run/eval-trained.json"
    record "$run" eval-trained.json "$name@trained" "$seed" "$@"
  fi
}

case "${1:-}" in
  run)
    [ $# -ge 3 ] || usage
    name="$2" seed="$3"; shift 3
    [[ "$name" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "quality: NAME must be letters, digits, . _ -: $name" >&2; exit 2; }
    [[ "$seed" =~ ^[0-9]+$ ]] || { echo "quality: SEED must be a number: $seed" >&2; exit 2; }
    if [ ! -f "$CLASSIFIER/classifier.json" ]; then
      "$VAEGAN" classifier train --dataset "$DATASET" "${DATA_FLAGS[@]}" "${CLASSIFIER_FLAGS[@]}" \
        --epochs "$CLASSIFIER_EPOCHS" --out "$CLASSIFIER"
    fi
    run="runs/quality/$name-s$seed"
    [ "$LABEL" = fashion-mnist ] || run="runs/quality/$LABEL/$name-s$seed"
    "$VAEGAN" train --dataset "$DATASET" "${DATA_FLAGS[@]}" "${BUDGET[@]}" --seed "$seed" --out "$run" \
      --overwrite "$@"
    evaluate "$run" "$name" "$seed" "$@"
    ;;
  eval)
    [ $# -eq 3 ] || usage
    name="$2" seed="$3"
    run="runs/quality/$name-s$seed"
    [ "$LABEL" = fashion-mnist ] || run="runs/quality/$LABEL/$name-s$seed"
    [ -f "$run/config.json" ] || { echo "quality: no run $run to evaluate" >&2; exit 2; }
    MINUTES=keep evaluate "$run" "$name" "$seed"
    ;;
  table)
    "$PY" - "$RESULTS" <<'PY'
import json, sys
from collections import OrderedDict
rows = OrderedDict()
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows.setdefault((r["dataset"], r["name"]), []).append(r)
keys = ["steps", "frechet_distance", "precision", "recall", "mse", "ssim", "class_agreement", "feature_distance"]
print(f"{'dataset':14} {'name':24} {'seeds':>5} " + " ".join(f"{k[:12]:>12}" for k in keys))
for (dataset, name), rs in rows.items():
    def mean(k):
        v = [r[k] for r in rs if r.get(k) is not None]
        return f"{sum(v) / len(v):12.4g}" if v else f"{'-':>12}"
    print(f"{dataset:14} {name:24} {len(rs):5d} " + " ".join(mean(k) for k in keys))
PY
    ;;
  *) usage ;;
esac
