"""``python -m vaegan``: sample and reconstruct with a vaegan checkpoint, without the C++ binary.

    python -m vaegan sample --checkpoint RUN --n 64 --out samples.png     # or .npy, or DIR/
    python -m vaegan reconstruct --checkpoint RUN --n 32 --out recon.png  # the run's test images

The options mean what they mean for ``vaegan sample`` and ``vaegan reconstruct`` (docs/cli.md):
``--out`` ending in ``.png`` writes a grid (8 per row; reconstructions as rows of originals over
rows of reconstructions), ``.npy`` a uint8 ``[N, H, W, C]`` array, and a path ending in ``/`` a
folder of one PNG per image (``000000.png``, ...), the layout pytorch-fid and clean-fid read.
Exit status 2 for a usage error, 1 for a runtime failure, each with a message naming the cause.
"""
import argparse
import gzip
import os
import sys

import numpy as np
import torch

from .model import load

IDX_DATASETS = ("mnist", "fashion-mnist")


def to_uint8(images):
    """``[N, C, H, W]`` in ``[-1, 1]`` -> uint8 ``[N, H, W, C]``, rounded as vaegan's C++ does."""
    return ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)


def make_grid(pixels, ncol=8, padding=2):
    """uint8 ``[N, H, W, C]`` -> one grid image ``[H', W', C]`` on a grey (128) background."""
    n, h, w, c = pixels.shape
    ncol = max(1, min(ncol, n))
    nrow = (n + ncol - 1) // ncol
    grid = torch.full((nrow * (h + padding) + padding, ncol * (w + padding) + padding, c), 128, dtype=torch.uint8)
    for i in range(n):
        top, left = padding + (i // ncol) * (h + padding), padding + (i % ncol) * (w + padding)
        grid[top:top + h, left:left + w] = pixels[i]
    return grid


def _png(path, hwc):
    try:
        from PIL import Image
    except ImportError as e:
        raise RuntimeError("writing PNG needs Pillow (pip install pillow, or Debian's python3-pil); "
                           "use an --out ending in .npy instead") from e
    a = hwc.numpy()
    Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a).save(path)


def write_images(out, pixels, grid_pixels=None):
    """Writes uint8 ``[N, H, W, C]`` ``pixels`` to ``out`` (.png grid, .npy array or DIR/)."""
    if out.endswith("/") or os.path.isdir(out):
        if os.path.isdir(out) and os.listdir(out):
            raise ValueError(f"--out: {out} is not empty (a folder of images gets exactly the images written)")
        os.makedirs(out, exist_ok=True)
        for i, p in enumerate(pixels):
            _png(os.path.join(out, f"{i:06d}.png"), p)
    elif out.endswith(".npy"):
        np.save(out, pixels.numpy())
    else:
        _png(out, make_grid(pixels if grid_pixels is None else grid_pixels))


def read_idx_images(path):
    """The uint8 ``[N, H, W]`` images of an IDX file (gzip or not)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 16 or data[2] != 8 or data[3] != 3:
        raise ValueError(f"{path}: not an IDX file of uint8 images")
    n, h, w = (int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    if len(data) < 16 + n * h * w:
        raise ValueError(f"{path}: cut short ({len(data)} bytes for {n} images of {h}x{w})")
    return np.frombuffer(data, np.uint8, n * h * w, 16).reshape(n, h, w)


def dataset_images(model, split, n, data_dir=None):
    """The first ``n`` images of the run's IDX dataset split, ``[n, 1, S, S]`` in ``[-1, 1]``,
    zero-padded (black) to the model's size as vaegan pads 28x28 digits."""
    config = model.config
    if config.get("dataset") not in IDX_DATASETS:
        raise ValueError(f"--input is needed: the run's dataset {config.get('dataset')!r} is read by the "
                         f"C++ binary only (this package reads {', '.join(IDX_DATASETS)})")
    directory = data_dir or config.get("data_dir")
    stem = "train" if split == "train" else "t10k"
    for name in (f"{stem}-images-idx3-ubyte.gz", f"{stem}-images-idx3-ubyte", f"{stem}-images.idx3-ubyte"):
        if os.path.exists(os.path.join(directory, name)):
            raw = read_idx_images(os.path.join(directory, name))[:n]
            break
    else:
        raise FileNotFoundError(f"{directory}: no {stem}-images-idx3-ubyte(.gz)")
    x = torch.from_numpy(raw.astype(np.float32) / 127.5 - 1).unsqueeze(1)
    s = model.image_shape[1]
    pad = (s - x.shape[-1]) // 2
    if pad < 0:
        raise ValueError(f"images of {x.shape[-1]} pixels do not fit the model's {s}")
    return torch.nn.functional.pad(x, (pad, s - x.shape[-1] - pad) * 2, value=-1.0)


def read_input(path, n):
    """Images from ``path``: a uint8 ``[N, H, W, C]`` .npy (as ``sample --out x.npy`` writes) -> ``[n, C, H, W]`` in [-1, 1]."""
    if not path.endswith(".npy"):
        raise ValueError(f"--input: {path}: expected a uint8 [N, H, W, C] .npy file")
    a = np.load(path)
    if a.dtype != np.uint8 or a.ndim != 4:
        raise ValueError(f"--input: {path}: expected a uint8 [N, H, W, C] array, got {a.dtype} {list(a.shape)}")
    return torch.from_numpy(a[:n].astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2).contiguous()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m vaegan", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (("sample", "Decode prior samples"), ("reconstruct", "Reconstruct test images")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--checkpoint", required=True, help="Checkpoint or run directory")
        p.add_argument("--n", type=int, default=64 if name == "sample" else 32, help="Number of images")
        p.add_argument("--out", required=True, help="Output: grid .png, uint8 [N, H, W, C] .npy, or DIR/ of PNGs")
        p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
        p.add_argument("--decoder-weights", choices=("auto", "ema", "trained"), default="auto",
                       help="auto: the decoder's moving average when the run kept one (--ema-decay), else the trained")
        if name == "sample":
            p.add_argument("--seed", type=int, default=0, help="Seed of the prior draws (as vaegan sample's)")
        else:
            p.add_argument("--split", choices=("train", "test"), default="test", help="Dataset split")
            p.add_argument("--data-dir", help="Dataset directory (default: the one the model was trained on)")
            p.add_argument("--input", help="Images to reconstruct instead: a uint8 [N, H, W, C] .npy")
    args = parser.parse_args(argv)
    if not 1 <= args.n <= 100000:
        parser.error(f"--n: must be in 1..100000, got {args.n}")
    try:
        model = load(args.checkpoint, device=args.device, decoder_weights=args.decoder_weights)
        with torch.no_grad():
            if args.command == "sample":
                pixels = to_uint8(model.sample(args.n, generator=torch.Generator().manual_seed(args.seed)))
                write_images(args.out, pixels)
            else:
                x = read_input(args.input, args.n) if args.input else dataset_images(model, args.split, args.n,
                                                                                     args.data_dir)
                recon = to_uint8(model.reconstruct(x.to(model.device)))
                original = to_uint8(x)
                rows = [t for i in range(0, len(x), 8) for t in (original[i:i + 8], recon[i:i + 8])]
                write_images(args.out, recon, torch.cat(rows))
    except (FileNotFoundError, ValueError) as e:  # a missing or mismatched checkpoint or input: as vaegan, 2
        print(f"python -m vaegan {args.command}: {e}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as e:
        print(f"python -m vaegan {args.command}: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
