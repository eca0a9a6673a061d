#!/usr/bin/python3
"""Summarizes a Chrome trace written by `vaegan_bench --profile DIR` (LibTorch's autograd
profiler): total time per operator name, inclusive of the operators it calls, largest first.

Usage: bench/profile_summary.py TRACE.json [--top N]
"""
import argparse
import collections
import json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    with open(args.trace) as f:
        events = json.load(f)
    if isinstance(events, dict):
        events = events.get("traceEvents", [])
    total = collections.Counter()
    calls = collections.Counter()
    for e in events:
        if e.get("ph") == "X":
            total[e["name"]] += e.get("dur", 0)
            calls[e["name"]] += 1
    print(f"{'operator':48} {'ms':>9} {'calls':>6}")
    for name, us in total.most_common(args.top):
        print(f"{name[:48]:48} {us / 1e3:9.1f} {calls[name]:6d}")


if __name__ == "__main__":
    main()
