#!/usr/bin/env bash
# Two "hosts" on one machine: two network namespaces joined by a veth pair, each running one rank
# of a data-parallel `vaegan train` (--nnodes 2 --node-rank N --master-addr, as on two machines),
# so that the rendezvous and Gloo's all-reduces cross a real network interface. Checks that the
# job succeeds, that rank 0 alone wrote the run, and that the gradients went over the link.
#
#   VAEGAN=build/vaegan scripts/dist-two-hosts.sh
#
# Needs root and iproute2; exits 77 (CTest: skipped) with a message where namespaces cannot be
# created. Removes its namespaces and files on every exit.
set -euo pipefail
VAEGAN="${VAEGAN:?set VAEGAN to the vaegan binary}"
DATA="${VAEGAN_DATA:-/usr/share/datasets/fashion-mnist}"
id=$$
ns0="vaegan-h0-$id" ns1="vaegan-h1-$id" if0="vg0-$id" if1="vg1-$id"
work="$(mktemp -d)"
cleanup() {
  ip netns del "$ns0" 2>/dev/null || true
  ip netns del "$ns1" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if ! ip netns add "$ns0" 2>/dev/null; then
  echo "dist-two-hosts: cannot create network namespaces here (needs root and iproute2): skipped"
  exit 77
fi
ip netns add "$ns1"
ip link add "$if0" netns "$ns0" type veth peer name "$if1" netns "$ns1"
ip -n "$ns0" addr add 10.77.0.1/24 dev "$if0"
ip -n "$ns1" addr add 10.77.0.2/24 dev "$if1"
for pair in "$ns0 $if0" "$ns1 $if1"; do
  set -- $pair
  ip -n "$1" link set lo up
  ip -n "$1" link set "$2" up
done

common=(train --dataset fashion-mnist --data-dir "$DATA" --max-steps 4 --batch-size 16 --val-images 64
        --grid-size 4 --log-every 1 --threads 1 --precision fp32 --nproc 1 --nnodes 2 --master-addr 10.77.0.1 --master-port 29511
        --dist-timeout 60 --out "$work/run")
# Each host sees only its own interface: Gloo binds to it (GLOO_SOCKET_IFNAME, as in PyTorch).
ip netns exec "$ns0" env GLOO_SOCKET_IFNAME="$if0" "$VAEGAN" "${common[@]}" --node-rank 0 >"$work/host0.log" 2>&1 &
host0=$!
ip netns exec "$ns1" env GLOO_SOCKET_IFNAME="$if1" "$VAEGAN" "${common[@]}" --node-rank 1 >"$work/host1.log" 2>&1 &
host1=$!
rc0=0 rc1=0
wait "$host0" || rc0=$?
wait "$host1" || rc1=$?
fail() {
  echo "dist-two-hosts: $*"
  echo "--- host 0"; cat "$work/host0.log"; echo "--- host 1"; cat "$work/host1.log"
  exit 1
}
[ "$rc0" -eq 0 ] && [ "$rc1" -eq 0 ] || fail "exit codes $rc0 (host 0) and $rc1 (host 1)"
grep -q "rank 0 of 2 joined the job through 10.77.0.1:29511" "$work/host0.log" || fail "host 0 did not join as rank 0"
[ -f "$work/run/checkpoints/last" ] || fail "no checkpoint in the run directory"
steps=$(grep -vc '"split"' "$work/run/metrics.jsonl")
[ "$steps" -eq 4 ] || fail "metrics.jsonl has $steps training lines, expected 4 (one writer)"
# 4 steps of small32's gradients (millions of fp32 values) went both ways over the veth pair.
rx=$(ip -n "$ns1" -s -j link show "$if1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["bytes"])')
[ "$rx" -gt 10000000 ] || fail "only $rx bytes crossed the link"
echo "dist-two-hosts: 2 ranks in 2 network namespaces trained 4 steps over $if0/$if1 ($rx bytes received by host 1)"
