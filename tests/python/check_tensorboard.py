"""TensorBoard reads vaegan's event files (docs/design.md, "TensorBoard").

Trains a short run on a small IDX dataset written here, damages its newest checkpoint so that
`--resume` continues from an older one (the steps after it were logged once already) and cuts
the event file's last record short (a crash while writing it), resumes,
then reads RUN/tensorboard with TensorBoard's own event reader and checks, against the run's
files: every scalar of metrics.jsonl under `train/KEY` or `validation/KEY` at the same steps with
the same (float32) value and each step once; each epoch grid's PNG bytes as an image; the
configuration as text; a histogram of the latent means whose count, minimum, maximum and sum
match the means that the Python package computes from the final checkpoint. Then starts
`tensorboard --logdir` on a loopback port and checks that its HTTP API lists the run, its tags
and the scalar values. Also checks `vaegan encode` (a split and a class folder) against the
Python package and `python -m vaegan sample/reconstruct` against the binary's.
Exit 0 on success, 1 on a mismatch, 77 (skip) when tensorboard is not installed.

Usage: check_tensorboard.py VAEGAN_BINARY WORK_DIR
"""
import gzip
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request

import numpy as np

try:
    from tensorboard.backend.event_processing import event_accumulator
except ImportError:
    print("skip: tensorboard is not installed for", sys.executable, "(scripts/setup-python.sh installs it)")
    sys.exit(77)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import torch  # noqa: E402
import vaegan  # noqa: E402
from vaegan.__main__ import dataset_images, to_uint8  # noqa: E402

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)


def write_idx(path, array):
    """An IDX file (gzip) of uint8 `array`."""
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.astype(np.uint8).tobytes())


def make_dataset(directory):
    """Fashion-MNIST-shaped data: bright rectangles whose place depends on the class."""
    rng = np.random.default_rng(5)
    os.makedirs(directory, exist_ok=True)
    for prefix, n in (("train", 256), ("t10k", 64)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 40, (n, 28, 28))
        for i, c in enumerate(labels):
            images[i, 2 + 2 * c: 10 + 2 * c, 4:24] = 220
        write_idx(f"{directory}/{prefix}-images-idx3-ubyte.gz", images)
        write_idx(f"{directory}/{prefix}-labels-idx1-ubyte.gz", labels[:, None].reshape(n))
    return directory


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}")
    return r


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def main():
    binary, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    data = make_dataset(f"{work}/data")
    run_dir = f"{work}/run"
    run([binary, "train", "--dataset", "fashion-mnist", "--data-dir", data, "--epochs", "2", "--batch-size", "16",
         "--log-every", "4", "--checkpoint-every", "8", "--val-images", "64", "--grid-size", "16", "--threads", "1",
         "--precision", "fp32", "--out", run_dir])
    # A crash after step 32's checkpoint was written but before it could be used: resume from 24.
    with open(f"{run_dir}/checkpoints/last") as f:
        newest = f.read().strip()
    os.remove(f"{run_dir}/checkpoints/{newest}/model.pt")
    # ... and killed while writing a record: half of one at the end of the event file.
    (event_file,) = os.listdir(f"{run_dir}/tensorboard")
    with open(f"{run_dir}/tensorboard/{event_file}", "ab") as f:
        f.write(struct.pack("<Q", 1000) + b"\x00" * 30)
    run([binary, "train", "--resume", run_dir])

    # 1. TensorBoard's event reader against the run's own files.
    acc = event_accumulator.EventAccumulator(f"{run_dir}/tensorboard", size_guidance={
        event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0, event_accumulator.TENSORS: 0,
        event_accumulator.HISTOGRAMS: 0})
    acc.Reload()
    tags = acc.Tags()
    expected = {}
    with open(f"{run_dir}/metrics.jsonl") as f:
        for line in f:
            rec = json.loads(line)
            prefix = "validation" if rec.get("split") == "validation" else "train"
            for key, value in rec.items():
                if key in ("step", "epoch") or isinstance(value, (str, bool)):
                    continue
                expected.setdefault(f"{prefix}/{key}", []).append((rec["step"], np.float32(value)))
    check(sorted(tags["scalars"]) == sorted(expected), f"scalar tags {sorted(tags['scalars'])} != {sorted(expected)}")
    compared = 0
    for tag, points in expected.items():
        if tag not in tags["scalars"]:
            continue
        got = [(e.step, np.float32(e.value)) for e in acc.Scalars(tag)]
        check(got == points, f"{tag}: TensorBoard has {got[:6]}... metrics.jsonl {points[:6]}...")
        compared += len(points)
    steps = [e.step for e in acc.Scalars("train/loss_prior")]
    check(steps == sorted(set(steps)) and steps[-1] == 32, f"train steps not once each and in order: {steps}")

    for kind in ("reconstructions", "samples"):
        events = acc.Images(f"images/{kind}")
        files = sorted(x for x in os.listdir(f"{run_dir}/images") if x.endswith(f"-{kind}.png"))
        check([e.step for e in events] == [16, 32], f"images/{kind} at steps {[e.step for e in events]}")
        for e, name in zip(events, files):
            with open(f"{run_dir}/images/{name}", "rb") as f:
                png = f.read()
            check(e.encoded_image_string == png, f"images/{kind} at step {e.step} differs from {name}")
            w, h = struct.unpack(">II", png[16:24])
            check((e.width, e.height) == (w, h), f"images/{kind}: size {(e.width, e.height)} != PNG's {(w, h)}")

    config_events = acc.Tensors("config")
    check(len(config_events) == 1, f"config text {len(config_events)} times")
    text = config_events[0].tensor_proto.string_val[0].decode()
    with open(f"{run_dir}/config.json") as f:
        check(json.loads("\n".join(x[4:] for x in text.splitlines())) == json.load(f), "config text != config.json")

    hist = acc.Histograms("latent/mean")
    check([h.step for h in hist] == [16, 32], f"latent/mean at steps {[h.step for h in hist]}")
    model = vaegan.load(run_dir)
    with torch.no_grad():
        mu = model.encode(dataset_images(model, "test", 64))[0].double()
    h = hist[-1].histogram_value
    check(h.num == mu.numel() and sum(h.bucket) == h.num, f"histogram counts {h.num}, {sum(h.bucket)}; {mu.numel()} means")
    scale = float(mu.abs().max())
    for name, got, want in (("min", h.min, mu.min()), ("max", h.max, mu.max()), ("sum", h.sum / mu.numel(), mu.mean())):
        check(abs(got - float(want)) <= 1e-4 * scale, f"histogram {name} {got} != the package's {float(want)}")

    # 2. A real TensorBoard server over HTTP.
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", run_dir, "--host", "127.0.0.1",
                               "--port", str(port), "--load_fast", "false", "--reload_interval", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base, listed = f"http://127.0.0.1:{port}/data", None
        deadline = time.time() + 120
        while time.time() < deadline and server.poll() is None:
            try:
                listed = get_json(f"{base}/plugin/scalars/tags")
                if listed.get("tensorboard"):
                    break
            except OSError:
                pass
            time.sleep(1)
        check(listed is not None and server.poll() is None, "tensorboard did not answer: " +
              (server.stderr.read().decode()[-2000:] if server.poll() is not None else "timeout"))
        if listed:
            check(get_json(f"{base}/runs") == ["tensorboard"], f"runs: {get_json(f'{base}/runs')}")
            check(sorted(listed.get("tensorboard", {})) == sorted(expected), f"HTTP scalar tags {listed}")
            series = get_json(f"{base}/plugin/scalars/scalars?run=tensorboard&tag=train/loss_prior")
            check([(s, np.float32(v)) for _, s, v in series] == expected["train/loss_prior"], "HTTP scalar values")
            for plugin, tag in (("images", "images/samples"), ("histograms", "latent/mean"), ("text", "config")):
                got = get_json(f"{base}/plugin/{plugin}/tags")
                names = got.get("tensorboard", {})
                names = names.get("tags", names) if isinstance(names, dict) else names
                check(tag in names, f"HTTP {plugin} tags: {got}")
    finally:
        server.terminate()
        server.wait(30)

    # 3. vaegan encode: the posterior means the package computes, the dataset's labels.
    run([binary, "encode", "--checkpoint", run_dir, "--out", f"{work}/z.npz", "--threads", "1"])
    z = np.load(f"{work}/z.npz")
    with gzip.open(f"{data}/t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    check(np.array_equal(z["labels"], labels.astype(np.int64)), "encode: labels differ from the dataset's")
    check(np.abs(z["mu"] - mu.numpy()).max() <= 1e-5 * scale and z["logvar"].shape == tuple(mu.shape),
          "encode: mu differs from the package's")

    # ... and of a folder of images with class subfolders (32x32 grey PNGs: no resizing).
    from PIL import Image
    originals = dataset_images(model, "test", 6)
    for i, img in enumerate(to_uint8(originals)):
        os.makedirs(f"{work}/folder/{'ab'[i % 2]}", exist_ok=True)
        Image.fromarray(img[:, :, 0].numpy()).save(f"{work}/folder/{'ab'[i % 2]}/{i}.png")
    run([binary, "encode", "--checkpoint", run_dir, "--input", f"{work}/folder", "--out", f"{work}/f.npz",
         "--threads", "1"])
    z = np.load(f"{work}/f.npz")
    order = [0, 2, 4, 1, 3, 5]  # sorted by class folder, then name
    with torch.no_grad():
        want = model.encode(originals[order])[0].numpy()
    check(z["labels"].tolist() == [0, 0, 0, 1, 1, 1], f"encode --input: labels {z['labels'].tolist()}")
    check(np.abs(z["mu"] - want).max() <= 1e-5 * scale, "encode --input: mu differs from the package's")

    # 4. python -m vaegan against the binary, as arrays and as folders of PNGs.
    for tool in ([binary], [sys.executable, "-m", "vaegan"]):
        out = f"{work}/folder-{len(tool)}/"
        run(tool + ["sample", "--checkpoint", run_dir, "--n", "12", "--seed", "3", "--out", out])
        pixels = np.stack([np.asarray(Image.open(f"{out}/{i:06d}.png")) for i in range(12)])
        check(sorted(os.listdir(out)) == [f"{i:06d}.png" for i in range(12)], f"{out}: {sorted(os.listdir(out))}")
        run([binary, "sample", "--checkpoint", run_dir, "--n", "12", "--seed", "3", "--out", f"{work}/s.npy"])
        check(np.abs(pixels.astype(int) - np.load(f"{work}/s.npy")[..., 0]).max() <= 1, f"{out}: pixels differ")
    refused = subprocess.run([binary, "sample", "--checkpoint", run_dir, "--out", out], capture_output=True, text=True)
    check(refused.returncode == 2 and "not empty" in refused.stderr, f"a non-empty --out DIR/: {refused.stderr}")
    for tool in ([binary], [sys.executable, "-m", "vaegan"]):  # a missing checkpoint is a usage error for both
        missing = subprocess.run(tool + ["sample", "--checkpoint", f"{work}/nowhere", "--out", f"{work}/m.npy"],
                                 capture_output=True, text=True)
        check(missing.returncode == 2 and "nowhere" in missing.stderr and not os.path.exists(f"{work}/m.npy"),
              f"{' '.join(tool)} sample on a missing checkpoint: exit {missing.returncode}, {missing.stderr}")

    for command, extra in (("sample", ["--seed", "3"]), ("reconstruct", [])):
        ours, theirs = f"{work}/{command}-py.npy", f"{work}/{command}-cpp.npy"
        run([sys.executable, "-m", "vaegan", command, "--checkpoint", run_dir, "--n", "12", "--out", ours] + extra)
        run([binary, command, "--checkpoint", run_dir, "--n", "12", "--out", theirs, "--threads", "1"] + extra)
        a, b = np.load(ours).astype(int), np.load(theirs).astype(int)
        check(a.shape == b.shape and np.abs(a - b).max() <= 1, f"python -m vaegan {command} differs from vaegan's")

    print(f"compared {compared} scalars, {len(hist)} histograms, 4 images, the config; HTTP API checked")
    if failures:
        print(f"{len(failures)} failures")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
