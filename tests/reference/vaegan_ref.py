"""An independent PyTorch implementation of vaegan's models (docs/design.md, "The algorithm" and "Architectures").

Written from the design, not from the C++ code: the VAE-GAN's four losses and one training step of Algorithm 1 with three
`torch.autograd.grad` calls over the parameter groups, the plain VAE's ELBO step (BCE
or squared error summed over pixels, on [0, 1] pixels) and the GAN's two-player step; one
RMSprop per network. Used by the parity test (`tests/reference/parity.py`) and by the
benchmark's PyTorch twin (`bench/twin.py`). The networks of the `small32`, `paper64` and
`mlp28` presets are the Python package's (python/vaegan/networks.py; module names match the C++
checkpoint keys, so a C++ `model.pt` loads into them).
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from vaegan.networks import Decoder, Discriminator, Encoder, network_options  # noqa: E402


def build(preset, channels=1, latent=None, feature_layer=0):
    """The networks of `preset` (the package's, python/vaegan/networks.py: the one Python
    definition of the architectures, itself checked against the C++ networks), their image size
    and latent size; `mlp28` has no discriminator. feature_layer: the discriminator convolution
    of L_llike (0: the preset's)."""
    enc, dec, dis = network_options(preset, channels, 0, latent or 0, feature_layer)
    s, z = enc["image_size"], enc["latent_dim"]
    return Encoder(**enc), Decoder(**dec), (None if preset == "mlp28" else Discriminator(**dis)), s, z


def vae_losses(enc, dec, x, eps, recon="bce"):
    """L_prior and L_pixel of the plain VAE, written as common PyTorch VAE code does: probabilities in [0, 1]
    and `reduction="sum"`, divided by the batch size."""
    b = x.shape[0]
    mu, logvar = enc(x)
    z = mu + torch.exp(0.5 * logvar) * eps
    p = (torch.tanh(dec.preactivation(z)) + 1) / 2  # decoder output on [0, 1]
    t = (x + 1) / 2
    if recon == "bce":
        pixel = F.binary_cross_entropy(p, t, reduction="sum") / b
    else:
        pixel = F.mse_loss(p, t, reduction="sum") / b
    prior = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / b
    return prior, pixel


def translate(images, shifts):
    """DiffAugment's translation (Zhao et al. 2020), image by image: images [B, C, S, S] moved by
    shifts [B, 2] (rows down, columns right; |shift| <= S/8 rounded) with zeros coming in. None:
    the images unchanged."""
    if shifts is None:
        return images
    s = images.shape[-1]
    r = (s + 4) // 8
    padded = F.pad(images, (r, r, r, r))
    out = []
    for i in range(images.shape[0]):
        dy, dx = int(shifts[i][0]), int(shifts[i][1])
        out.append(padded[i, :, r - dy:r - dy + s, r - dx:r - dx + s])
    return torch.stack(out)


def gan_losses(dec, dis, x, zp, joint=False, shifts=None, label_smoothing=0.0):
    """L_dis (real vs prior samples) and the generator's non-saturating term. shifts: None, or
    (real, generated) translations [B, 2] of what the discriminator judges (`translate`).
    label_smoothing s: the real images' target in L_dis is 1 - s (one-sided)."""
    b = x.shape[0]
    fake = dec(zp)
    if shifts is not None:
        x, fake = translate(x, shifts[0]), translate(fake, shifts[1])
    if joint:
        logits, _ = dis(torch.cat([x, fake]))
        lx, lf = logits[:b], logits[b:]
    else:
        (lx, _), (lf, _) = dis(x), dis(fake)
    bce = F.binary_cross_entropy_with_logits
    return (bce(lx, torch.full_like(lx, 1 - label_smoothing)) + bce(lf, torch.zeros_like(lf)),
            bce(lf, torch.ones_like(lf)))


def losses(enc, dec, dis, x, eps, zp, joint=False, dis_on_recon=False, original=False, real_weight=0.0,
           gan_loss="non-saturating", with_fake_cost=False, shifts=None, label_smoothing=0.0):
    """L_prior, L_llike, L_dis, L_adv of docs/design.md, "The algorithm".

    joint: decoder on [z; zp] and discriminator on [x; xr; xp] in one batch each (batch norm
    over the concatenation); original: the authors' groups (decoder once per input, the
    discriminator on [xr; x] for L_llike and on [x; xp], or [x; xr; xp], for the GAN losses);
    otherwise one call per input. dis_on_recon: the discriminator's loss and the decoder's
    adversarial term include the reconstructions. real_weight r > 0: L_dis is
    2 (r BCE(real) + (1 - r) mean BCE(generated)). gan_loss: "non-saturating" BCE(fake, 1) or
    "minimax" -BCE(fake, 0). with_fake_cost: also return (BCE on real, mean BCE on generated).
    shifts: None, or (real, generated) translations [B, 2] of what the discriminator judges: x
    and its reconstruction both by the real ones, the prior samples by the generated ones.
    label_smoothing s: the real images' target in L_dis is 1 - s (one-sided; the fake cost of
    the equilibrium rule stays BCE(real, 1)).
    """
    b = x.shape[0]
    mu, logvar = enc(x)
    z = mu + torch.exp(0.5 * logvar) * eps
    real_shift, generated_shift = shifts if shifts is not None else (None, None)
    x = translate(x, real_shift)  # the encoder has seen it; from here on, what the discriminator sees
    if joint:
        xd = dec(torch.cat([z, zp]))
        xd = torch.cat([translate(xd[:b], real_shift), translate(xd[b:], generated_shift)])
        logits, feat = dis(torch.cat([x, xd]))
        lx, lr, lp = logits[:b], logits[b:2 * b], logits[2 * b:]
        fx, fr = feat[:b], feat[b:2 * b]
    elif original:
        xr, xp = translate(dec(z), real_shift), translate(dec(zp), generated_shift)
        _, feat = dis(torch.cat([xr, x]))
        fr, fx = feat[:b], feat[b:]
        if dis_on_recon:
            logits, _ = dis(torch.cat([x, xr, xp]))
            lx, lr, lp = logits[:b], logits[b:2 * b], logits[2 * b:]
        else:
            logits, _ = dis(torch.cat([x, xp]))
            lx, lp, lr = logits[:b], logits[b:], None
    else:
        (lx, fx), (lr, fr), (lp, _) = (dis(x), dis(translate(dec(z), real_shift)),
                                       dis(translate(dec(zp), generated_shift)))
    # losses in at least fp32 (under bf16 autocast the networks' outputs are bf16)
    lx, lr, lp, fx, fr, mu, logvar = (t.float() if t is not None and t.dtype == torch.bfloat16 else t
                                      for t in (lx, lr, lp, fx, fr, mu, logvar))
    l_prior = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(1).mean()
    l_llike = 0.5 * (fr - fx).pow(2).sum(1).mean()
    bce = F.binary_cross_entropy_with_logits
    real = bce(lx, torch.ones_like(lx))
    real_smoothed = bce(lx, torch.full_like(lx, 1 - label_smoothing))
    generated = [bce(lp, torch.zeros_like(lp))] + ([bce(lr, torch.zeros_like(lr))] if dis_on_recon else [])
    if real_weight > 0:
        l_dis = 2 * (real_weight * real_smoothed + (1 - real_weight) * sum(generated) / len(generated))
    else:
        l_dis = real_smoothed + sum(generated)
    fakes = [lp] + ([lr] if dis_on_recon else [])
    if gan_loss == "minimax":
        l_adv = -sum(generated)
    else:
        l_adv = sum(bce(f, torch.ones_like(f)) for f in fakes)
    if with_fake_cost:
        return l_prior, l_llike, l_dis, l_adv, (float(real.detach()), float(sum(generated).detach()) / len(generated))
    return l_prior, l_llike, l_dis, l_adv


def load_cpp_checkpoint(path, preset, latent=None, model="vaegan", feature_layer=0):
    """Builds the networks of `model` and loads a C++ `torch::save(VaeGan)` file into them;
    a network the model lacks is None (vae: discriminator, gan: encoder)."""
    enc, dec, dis, s, z = build(preset, latent=latent, feature_layer=feature_layer)
    enc = None if model == "gan" else enc
    dis = None if model == "vae" else dis
    m = torch.jit.load(path)
    state = {k: v for k, v in m.named_parameters()}
    state.update({k: v for k, v in m.named_buffers()})
    root = torch.nn.Module()
    root.decoder = dec
    if enc is not None:
        root.encoder = enc
    if dis is not None:
        root.discriminator = dis
    root.load_state_dict(state)
    return enc, dec, dis


def step(nets, opts, x, eps, zp, gamma, autocast=False, joint=False, dis_on_recon=False, original=False,
         real_weight=0.0, gan_loss="non-saturating", equilibrium=None, shifts=None, label_smoothing=0.0):
    """One Algorithm-1 step; returns the four losses before the update and the gate's decisions
    (update discriminator, decoder's adversarial term). equilibrium: None, or (value, margin,
    skip) with skip "adversarial" (drop L_adv from the decoder's gradient) or "decoder" (skip
    the decoder's update), the rule of the authors' code on BCE(real) and the mean BCE of the
    generated images. shifts: the translations of `losses`."""
    enc, dec, dis = nets
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
        out = losses(enc, dec, dis, x, eps, zp, joint, dis_on_recon, original, real_weight, gan_loss,
                     with_fake_cost=equilibrium is not None, shifts=shifts, label_smoothing=label_smoothing)
    l_prior, l_llike, l_dis, l_adv = out[:4]
    update_dis, dec_adv = True, True
    if equilibrium is not None:
        (c_real, c_fake), (value, margin, _) = out[4], equilibrium
        update_dis = not (c_real < value - margin or c_fake < value - margin)
        dec_adv = not (c_real > value + margin or c_fake > value + margin)
        if not update_dis and not dec_adv:
            update_dis = dec_adv = True
    skip_decoder = equilibrium is not None and equilibrium[2] == "decoder" and not dec_adv
    ge = torch.autograd.grad(l_prior + l_llike, list(enc.parameters()), retain_graph=True)
    gd = torch.autograd.grad(gamma * l_llike + (l_adv if dec_adv else 0), list(dec.parameters()), retain_graph=True)
    gc = torch.autograd.grad(l_dis, list(dis.parameters())) if update_dis else None  # held back: not needed
    for net, gs, opt, go in zip(nets, (ge, gd, gc), opts, (True, not skip_decoder, update_dis)):
        if go:
            apply([net], [opt], [gs])
    return [float(v.detach()) for v in (l_prior, l_llike, l_dis, l_adv)], (update_dis, dec_adv)


def apply(nets, opts, grads):
    for net, gs, opt in zip(nets, grads, opts):
        for p, g in zip(net.parameters(), gs):
            p.grad = g
        opt.step()


def vae_step(nets, opts, x, eps, recon="bce", autocast=False):
    """One step of the plain VAE on `L_prior + L_pixel`; returns both losses before the update."""
    enc, dec = nets
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
        prior, pixel = vae_losses(enc, dec, x, eps, recon)
    params = list(enc.parameters()) + list(dec.parameters())
    g = torch.autograd.grad(prior + pixel, params)
    n = len(list(enc.parameters()))
    apply(nets, opts, (g[:n], g[n:]))
    return [float(prior.detach()), float(pixel.detach())]


def gan_step(nets, opts, x, zp, joint=False, autocast=False, shifts=None, label_smoothing=0.0):
    """One simultaneous GAN step: generator on its term, discriminator on L_dis, from one
    forward; returns both losses before the update."""
    dec, dis = nets
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
        l_dis, l_adv = gan_losses(dec, dis, x, zp, joint, shifts, label_smoothing)
    gg = torch.autograd.grad(l_adv, list(dec.parameters()), retain_graph=True)
    gd = torch.autograd.grad(l_dis, list(dis.parameters()))
    apply(nets, opts, (gg, gd))
    return [float(l_dis.detach()), float(l_adv.detach())]
