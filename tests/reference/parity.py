#!/usr/bin/python3
"""Parity run of the PyTorch reference against vaegan (llm.c style).

Everything runs in float64 on both sides, so the two implementations agree to ~1e-10 and any
real difference stands out. Reads from --dir: model.pt (the C++ model before training, `torch::save(VaeGan)`), and x.npy
[T, B, C, S, S], eps.npy [T, B, Z], zp.npy [T, B, Z] (the batches and noise of T steps).
Writes to --dir: py_grads/<parameter>.npy (each network's gradient at step 0, before any update,
routed as DESIGN.md §2 says) and py_losses.npy [T, 4] (L_prior, L_llike, L_dis, L_adv of every
step of T RMSprop steps).
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vaegan_ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--preset", default="small32")
    ap.add_argument("--latent", type=int, default=None)
    ap.add_argument("--gamma", type=float, required=True)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--alpha", type=float, required=True)
    ap.add_argument("--batch-norm", choices=("joint", "separate"), required=True)
    ap.add_argument("--dis-on-recon", choices=("true", "false"), required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    d = args.dir
    enc, dec, dis = (n.double() for n in vaegan_ref.load_cpp_checkpoint(os.path.join(d, "model.pt"), args.preset,
                                                                          args.latent))
    nets = [enc, dec, dis]
    for n in nets:
        n.train()
    x, eps, zp = (torch.from_numpy(np.load(os.path.join(d, f))).double() for f in ("x.npy", "eps.npy", "zp.npy"))

    mode = dict(joint=args.batch_norm == "joint", dis_on_recon=args.dis_on_recon == "true")
    # step-0 gradients of each network's own objective
    l_prior, l_llike, l_dis, l_adv = vaegan_ref.losses(enc, dec, dis, x[0], eps[0], zp[0], **mode)
    objectives = {"encoder": l_prior + l_llike, "decoder": args.gamma * l_llike + l_adv, "discriminator": l_dis}
    os.makedirs(os.path.join(d, "py_grads"), exist_ok=True)
    for name, net in zip(("encoder", "decoder", "discriminator"), nets):
        params = list(net.named_parameters())
        grads = torch.autograd.grad(objectives[name], [p for _, p in params], retain_graph=True)
        for (pname, _), g in zip(params, grads):
            np.save(os.path.join(d, "py_grads", f"{name}.{pname}.npy"), g.numpy())

    # T optimizer steps from the same start
    nets = [n.double() for n in vaegan_ref.load_cpp_checkpoint(os.path.join(d, "model.pt"), args.preset, args.latent)]
    opts = [torch.optim.RMSprop(n.parameters(), lr=args.lr, alpha=args.alpha) for n in nets]
    for n in nets:
        n.train()
    losses = [vaegan_ref.step(nets, opts, x[t], eps[t], zp[t], args.gamma, **mode) for t in range(x.shape[0])]
    np.save(os.path.join(d, "py_losses.npy"), np.array(losses, dtype=np.float64))


if __name__ == "__main__":
    main()
