"""Compares the Python package's outputs with the C++ networks' (tests/python/test_package.cpp).

For each case directory DIR/0 .. DIR/N-1 (a run directory with one checkpoint and .npy files of
inputs and C++ outputs): `vaegan.load(run)` and the same computation. fp32 on both sides; the C++
side runs channels-last (and, on LibTorch 1.x, its sub-pixel transposed convolution), so the sums
are ordered differently: each output must agree to 1e-5 of its largest magnitude (at least 1).
Then a copy of a checkpoint with another format version must be refused, naming it. Exits 1
naming every output or check that fails.

Usage: package_parity.py DIR N
"""
import json
import os
import shutil
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import vaegan  # noqa: E402

TOLERANCE = 1e-5


def main():
    root, n = sys.argv[1], int(sys.argv[2])
    bad = 0
    for i in range(n):
        d = os.path.join(root, str(i))
        model = vaegan.load(d)
        kind = model.config["model"]["type"]
        x = torch.from_numpy(np.load(f"{d}/x.npy"))
        z = torch.from_numpy(np.load(f"{d}/z.npy"))
        with torch.no_grad():
            ours = {"decode": model.decode(z), "sample": model.sample(5, generator=torch.Generator().manual_seed(7))}
            if model.encoder is not None:
                ours["mu"], ours["logvar"] = model.encode(x)
                ours["reconstruct"] = model.reconstruct(x)
            if model.discriminator is not None:
                ours["dis_logits"] = model.discriminator(x)[0]
                ours["dis_features"] = model.discriminator_features(x)
        expected = {f[:-4] for f in os.listdir(d) if f.endswith(".npy")} - {"x", "z"}
        if set(ours) != expected:
            print(f"FAIL {d} ({kind}): outputs {sorted(ours)}, C++ wrote {sorted(expected)}")
            bad += 1
        for name in sorted(set(ours) & expected):
            ref = np.load(f"{d}/{name}.npy")
            got = ours[name].numpy()
            if got.shape != ref.shape:
                print(f"FAIL {d} ({kind}) {name}: shape {got.shape} != {ref.shape}")
                bad += 1
                continue
            err, scale = float(np.abs(got - ref).max()), max(1.0, float(np.abs(ref).max()))
            ok = err <= TOLERANCE * scale
            bad += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {kind} {model.config['model']['arch']} {name} {list(ref.shape)}: "
                  f"max |diff| {err:.2e} (tolerance {TOLERANCE * scale:.2e})")
    # A checkpoint of another format version is refused with a message naming it.
    other = os.path.join(root, "other-version")
    shutil.copytree(vaegan.resolve_checkpoint(os.path.join(root, "0")), other)
    with open(f"{other}/state.json") as f:
        state = json.load(f)
    state["format_version"] = vaegan.FORMAT_VERSION + 1
    with open(f"{other}/state.json", "w") as f:
        json.dump(state, f)
    try:
        vaegan.load(other)
        print("FAIL: a checkpoint of format version", state["format_version"], "loaded")
        bad += 1
    except ValueError as e:
        ok = f"format version {vaegan.FORMAT_VERSION + 1}" in str(e) and other in str(e)
        bad += not ok
        print(f"{'ok  ' if ok else 'FAIL'} another format version: {e}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
