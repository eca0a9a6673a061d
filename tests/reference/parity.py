#!/usr/bin/python3
"""Parity run of the PyTorch reference against vaegan (llm.c style).

Everything runs in float64 on both sides, so the two implementations agree to ~1e-10 and any
real difference stands out. Reads from --dir: model.pt (the C++ model before training, `torch::save(VaeGan)`), and x.npy
[T, B, C, S, S], eps.npy [T, B, Z], zp.npy [T, B, Z] (the batches and noise of T steps) and, with
--translation, shifts.npy [T, 2, B, 2] (each step's translations of real and generated images,
vaegan_ref.translate).
Writes to --dir: py_grads/<network>.<parameter>.npy (each network's gradient at step 0, before
any update, routed as docs/design.md, "The algorithm" says), py_losses.npy [T, K] (the losses of every step of T
RMSprop steps: vaegan L_prior, L_llike, L_dis, L_adv; vae L_prior, L_pixel; gan L_dis, L_adv) and, for vaegan,
py_gates.npy [T, 2] (the equilibrium rule's decisions: discriminator updated, decoder's adversarial term used).
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vaegan_ref  # noqa: E402


class Clipped:
    """An optimizer whose step first clips its network's gradient norm (clip_grad_norm_)."""

    def __init__(self, opt, net, max_norm):
        self.opt, self.net, self.max_norm = opt, net, max_norm

    def step(self):
        if self.max_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.max_norm)
        self.opt.step()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--model", choices=("vaegan", "vae", "gan"), default="vaegan")
    ap.add_argument("--recon-loss", choices=("bce", "mse"), default="bce")
    ap.add_argument("--preset", default="small32")
    ap.add_argument("--latent", type=int, default=None)
    ap.add_argument("--feature-layer", type=int, default=0, help="discriminator convolution of L_llike (0: preset's)")
    ap.add_argument("--gamma", type=float, required=True)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--alpha", type=float, required=True)
    ap.add_argument("--batch-norm", choices=("joint", "separate", "original"), required=True)
    ap.add_argument("--dis-on-recon", choices=("true", "false"), required=True)
    ap.add_argument("--device", default="cpu", help="cpu or cuda: where the reference computes")
    ap.add_argument("--optimizer", choices=("rmsprop", "adam"), default="rmsprop")
    ap.add_argument("--lr-networks", default=None, help="encoder,decoder,discriminator learning rates")
    ap.add_argument("--betas", default="0.5,0.999")
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--grad-clip", type=float, default=0.0, help="max gradient norm per network (0: none)")
    ap.add_argument("--gan-loss", choices=("non-saturating", "minimax"), default="non-saturating")
    ap.add_argument("--real-weight", type=float, default=0.0, help="weight of real images in L_dis (0: plain sum)")
    ap.add_argument("--label-smoothing", type=float, default=0.0, help="one-sided: real images' target 1 - s")
    ap.add_argument("--equilibrium", default=None, help="VALUE,MARGIN,adversarial|decoder: the equilibrium rule")
    ap.add_argument("--translation", action="store_true", help="translate what the discriminator sees (shifts.npy)")
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.set_num_threads(1)
    d = args.dir
    x, eps, zp = (torch.from_numpy(np.load(os.path.join(d, f))).double().to(dev)
                  for f in ("x.npy", "eps.npy", "zp.npy"))

    shifts = [None] * x.shape[0]
    if args.translation:
        shifts = torch.from_numpy(np.load(os.path.join(d, "shifts.npy"))).long()

    mode = dict(joint=args.batch_norm == "joint", dis_on_recon=args.dis_on_recon == "true",
                original=args.batch_norm == "original", real_weight=args.real_weight, gan_loss=args.gan_loss,
                label_smoothing=args.label_smoothing)
    equilibrium = None
    if args.equilibrium:
        value, margin, skip = args.equilibrium.split(",")
        equilibrium = (float(value), float(margin), skip)

    def load():
        nets = vaegan_ref.load_cpp_checkpoint(os.path.join(d, "model.pt"), args.preset, args.latent, args.model,
                                              args.feature_layer)
        nets = {name: n.double().to(dev).train() for name, n in zip(("encoder", "decoder", "discriminator"), nets)
                if n is not None}
        return nets

    # step-0 gradients of each network's own objective
    nets = load()
    if args.model == "vaegan":
        l_prior, l_llike, l_dis, l_adv = vaegan_ref.losses(*nets.values(), x[0], eps[0], zp[0], shifts=shifts[0],
                                                         **mode)
        objectives = {"encoder": l_prior + l_llike, "decoder": args.gamma * l_llike + l_adv, "discriminator": l_dis}
    elif args.model == "vae":
        l_prior, l_pixel = vaegan_ref.vae_losses(*nets.values(), x[0], eps[0], args.recon_loss)
        objectives = {"encoder": l_prior + l_pixel, "decoder": l_prior + l_pixel}
    else:
        l_dis, l_adv = vaegan_ref.gan_losses(*nets.values(), x[0], zp[0], mode["joint"] or mode["original"],
                                             shifts[0], args.label_smoothing)
        objectives = {"decoder": l_adv, "discriminator": l_dis}
    os.makedirs(os.path.join(d, "py_grads"), exist_ok=True)
    for name, net in nets.items():
        params = list(net.named_parameters())
        grads = torch.autograd.grad(objectives[name], [p for _, p in params], retain_graph=True)
        if args.grad_clip > 0:  # what the C++ step leaves in .grad: clip_grad_norm_'s result
            norm = torch.sqrt(sum((g * g).sum() for g in grads))
            coef = torch.clamp(args.grad_clip / (norm + 1e-6), max=1.0)
            grads = [g * coef for g in grads]
        for (pname, _), g in zip(params, grads):
            np.save(os.path.join(d, "py_grads", f"{name}.{pname}.npy"), g.cpu().numpy())

    # T optimizer steps from the same start
    loaded = load()
    nets = list(loaded.values())
    lrs = dict(zip(("encoder", "decoder", "discriminator"),
                   map(float, args.lr_networks.split(",")) if args.lr_networks else [args.lr] * 3))
    betas = tuple(map(float, args.betas.split(",")))

    def optimizer(name, net):
        if args.optimizer == "adam":
            opt = torch.optim.Adam(net.parameters(), lr=lrs[name], betas=betas, weight_decay=args.weight_decay)
        else:
            opt = torch.optim.RMSprop(net.parameters(), lr=lrs[name], alpha=args.alpha, weight_decay=args.weight_decay)
        return Clipped(opt, net, args.grad_clip)

    opts = [optimizer(name, net) for name, net in loaded.items()]
    losses, gates = [], []
    for t in range(x.shape[0]):
        if args.model == "vaegan":
            step_losses, gate = vaegan_ref.step(nets, opts, x[t], eps[t], zp[t], args.gamma, equilibrium=equilibrium,
                                                shifts=shifts[t], **mode)
            losses.append(step_losses)
            gates.append(gate)
        elif args.model == "vae":
            losses.append(vaegan_ref.vae_step(nets, opts, x[t], eps[t], args.recon_loss))
        else:
            losses.append(vaegan_ref.gan_step(nets, opts, x[t], zp[t], mode["joint"] or mode["original"],
                                              shifts=shifts[t], label_smoothing=args.label_smoothing))
    np.save(os.path.join(d, "py_losses.npy"), np.array(losses, dtype=np.float64))
    if gates:
        np.save(os.path.join(d, "py_gates.npy"), np.array(gates, dtype=np.float64))


if __name__ == "__main__":
    main()
