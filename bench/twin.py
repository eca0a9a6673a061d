#!/usr/bin/python3
"""The PyTorch twin of vaegan's training steps for `make bench`.

Times tests/reference/vaegan_ref.py's steps (an independent Python implementation: the VAE-GAN
step with three torch.autograd.grad calls, configured like vaegan's defaults: one network call
per input, reconstructions not in L_dis; the VAE on its ELBO with BCE; the GAN's simultaneous
step) in the settings a careful PyTorch user would try: fp32, channels_last, bf16 autocast, both,
and with torch 2.x also `torch.compile` of each network (fp32, and channels_last + bf16:
compile, compile_both; on a GPU also compile_graphs: mode="reduce-overhead", which replays the
compiled networks from CUDA graphs). On a GPU (--device cuda) each step is timed to the end of
its kernels. A setting that fails is reported on stderr and the others go on.
Besides vaegan, vae and gan, two VAE-GAN variants: vaegan-literal (Algorithm 1 as the paper
writes it: joint batch norm, reconstructions in L_dis) and vaegan-original (the authors' recipe:
their batch-norm groups, minimax decoder term, real-vs-generated weighting, weight decay and
equilibrium rule; vaegan's --recipe original).
Prints one JSON line per (preset, model, setting).
"""
import argparse
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import vaegan_ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", default="small32,paper64")
    ap.add_argument("--models", default="vaegan,vae,gan", help="also vaegan-literal, vaegan-original")
    ap.add_argument("--settings", default=None,
                    help="default: fp32,channels_last,bf16,both (+ compile,compile_both with torch 2.x, "
                         "+ compile_graphs on a GPU)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    has_compile = hasattr(torch, "compile")
    if args.settings is None:
        args.settings = "fp32,channels_last,bf16,both" + (",compile,compile_both" if has_compile else "")
        if has_compile and args.device.startswith("cuda"):
            args.settings += ",compile_graphs"
    dev = torch.device(args.device)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    for preset, model, setting in ((p, m, s) for p in args.presets.split(",") for m in args.models.split(",")
                                   for s in args.settings.split(",")):
        try:
            line = time_setting(args, dev, sync, preset, model, setting)
        except Exception as e:  # e.g. a torch.compile mode this model or torch does not support
            print(f"twin: {preset} {model} {setting} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            continue
        print(json.dumps(line), flush=True)


def time_setting(args, dev, sync, preset, model, setting):
    """Times `args.steps` steps of one (preset, model, setting); returns its JSON line."""
    torch.manual_seed(0)
    enc, dec, dis, s, z = vaegan_ref.build(preset)
    cl = setting in ("channels_last", "both", "compile_both")
    ac = setting in ("bf16", "both", "compile_both")
    mf = torch.channels_last if cl else torch.contiguous_format
    nets = {"vae": (enc, dec), "gan": (dec, dis)}.get(model, (enc, dec, dis))
    nets = [n.to(dev, memory_format=mf) for n in nets]
    original = model == "vaegan-original"
    lr, wd = (0.025 / 64, 1e-5 / 64) if original else (3e-4, 0.0)
    opts = [torch.optim.RMSprop(n.parameters(), lr=lr, alpha=0.9, weight_decay=wd) for n in nets]
    variant = {"vaegan": dict(gamma=1e-2),
               "vaegan-literal": dict(gamma=1e-2, joint=True, dis_on_recon=True),
               "vaegan-original": dict(gamma=1e-6 / (1 - 1e-6), original=True, real_weight=0.5,
                                       gan_loss="minimax", equilibrium=(0.68, 0.35, "decoder"))}.get(model)
    graphs = setting == "compile_graphs"
    if setting.startswith("compile"):
        # the optimizers keep the original parameters; the compiled modules share them
        nets = [torch.compile(n, mode="reduce-overhead" if graphs else "default") for n in nets]
    b = args.batch_size
    x = (torch.rand(b, 1, s, s) * 2 - 1).to(dev).contiguous(memory_format=mf)
    # reduce-overhead runs a compiled network eagerly once, records its graph the next time, and
    # replays it after: one warm-up step more
    warmup = args.warmup + (1 if graphs else 0)
    times = []
    for i in range(warmup + args.steps):
        eps, zp = torch.randn(b, z, device=dev), torch.randn(b, z, device=dev)
        sync()
        t0 = time.perf_counter()
        if graphs:  # a new iteration: the graphs' outputs of the last one may be overwritten
            torch.compiler.cudagraph_mark_step_begin()
        if variant is not None:
            vaegan_ref.step(nets, opts, x, eps, zp, autocast=ac, **variant)
        elif model == "vae":
            vaegan_ref.vae_step(nets, opts, x, eps, autocast=ac)
        else:
            vaegan_ref.gan_step(nets, opts, x, zp, autocast=ac)
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    return {"impl": "pytorch-twin", "torch": torch.__version__, "device": str(dev),
            "preset": preset, "model": model, "setting": setting, "batch": b,
            "threads": torch.get_num_threads(), "ms_per_step": med * 1e3,
            "images_per_sec": b / med, "images_per_sec_min": b / times[-1],
            "images_per_sec_max": b / times[0],
            # process peak so far (the settings run in sequence in one process)
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


if __name__ == "__main__":
    main()
