"""An independent PyTorch implementation of vaegan's VAE-GAN (DESIGN.md §2 and §3).

Written from the design, not from the C++ code: the networks of the `small32` and `paper64`
presets (module names match the C++ checkpoint keys, so a C++ `model.pt` loads into them), the
four losses, and one training step of Algorithm 1 with three `torch.autograd.grad` calls over
the parameter groups and one RMSprop per network. Used by the parity test
(`tests/reference/parity.py`) and by the benchmark's PyTorch twin (`bench/twin.py`).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    # size, enc channels, enc fc, latent, dec channels, dis channels, dis fc
    "small32": (32, (32, 64, 128), 1024, 64, (128, 64, 16), (16, 64, 128, 128), 256),
    "paper64": (64, (64, 128, 256), 2048, 128, (256, 128, 32), (32, 128, 256, 256), 512),
}


class Enc(nn.Module):
    def __init__(self, c, s, chans, fc, z):
        super().__init__()
        layers, cin = [], c
        for ch in chans:
            layers += [nn.Conv2d(cin, ch, 5, 2, 2, bias=False), nn.BatchNorm2d(ch), nn.ReLU()]
            cin = ch
        self.features = nn.Sequential(*layers)
        r = s >> len(chans)
        self.fc = nn.Sequential(nn.Linear(cin * r * r, fc, bias=False), nn.BatchNorm1d(fc), nn.ReLU())
        self.mu, self.logvar = nn.Linear(fc, z), nn.Linear(fc, z)

    def forward(self, x):
        h = self.fc(self.features(x).flatten(1))
        return self.mu(h), self.logvar(h)


class Dec(nn.Module):
    def __init__(self, c, s, chans, z):
        super().__init__()
        self.r, self.c0 = s >> len(chans), chans[0]
        self.fc = nn.Sequential(nn.Linear(z, chans[0] * self.r * self.r, bias=False),
                                nn.BatchNorm1d(chans[0] * self.r * self.r), nn.ReLU())
        layers, cin = [], chans[0]
        for ch in chans:
            layers += [nn.ConvTranspose2d(cin, ch, 5, 2, 2, output_padding=1, bias=False), nn.BatchNorm2d(ch), nn.ReLU()]
            cin = ch
        layers += [nn.Conv2d(cin, c, 5, 1, 2), nn.Tanh()]
        self.layers = nn.Sequential(*layers)

    def forward(self, z):
        return self.layers(self.fc(z).view(-1, self.c0, self.r, self.r))


class Dis(nn.Module):
    def __init__(self, c, s, chans, fc, layer=4):
        super().__init__()
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        cin = c
        for i, ch in enumerate(chans):
            self.convs.append(nn.Conv2d(cin, ch, 5, 1 if i == 0 else 2, 2, bias=(i == 0)))
            if i > 0:
                self.norms.append(nn.BatchNorm2d(ch))
            cin = ch
        r = s >> (len(chans) - 1)
        self.head = nn.Sequential(nn.Linear(cin * r * r, fc, bias=False), nn.BatchNorm1d(fc), nn.ReLU(), nn.Linear(fc, 1))
        self.layer = layer

    def forward(self, x):
        feat = None
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i + 1 == self.layer:
                feat = x.flatten(1)
            if i > 0:
                x = self.norms[i - 1](x)
            x = F.relu(x)
        return self.head(x.flatten(1)), feat


def build(preset, channels=1, latent=None):
    s, ec, efc, z, dc, dic, dfc = PRESETS[preset]
    z = latent or z
    return Enc(channels, s, ec, efc, z), Dec(channels, s, dc, z), Dis(channels, s, dic, dfc), s, z


def losses(enc, dec, dis, x, eps, zp, joint=False, dis_on_recon=False):
    """L_prior, L_llike, L_dis, L_adv (non-saturating) of DESIGN.md §2.

    joint: decoder on [z; zp] and discriminator on [x; xr; xp] in one batch each (batch norm
    over the concatenation); otherwise one call per input. dis_on_recon: the discriminator's
    loss and the decoder's adversarial term include the reconstructions.
    """
    b = x.shape[0]
    mu, logvar = enc(x)
    z = mu + torch.exp(0.5 * logvar) * eps
    if joint:
        xd = dec(torch.cat([z, zp]))
        logits, feat = dis(torch.cat([x, xd]))
        lx, lr, lp = logits[:b], logits[b:2 * b], logits[2 * b:]
        fx, fr = feat[:b], feat[b:2 * b]
    else:
        (lx, fx), (lr, fr), (lp, _) = dis(x), dis(dec(z)), dis(dec(zp))
    # losses in at least fp32 (under bf16 autocast the networks' outputs are bf16)
    lx, lr, lp, fx, fr, mu, logvar = (t.float() if t.dtype == torch.bfloat16 else t
                                      for t in (lx, lr, lp, fx, fr, mu, logvar))
    l_prior = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(1).mean()
    l_llike = 0.5 * (fr - fx).pow(2).sum(1).mean()
    bce = F.binary_cross_entropy_with_logits
    l_dis = bce(lx, torch.ones_like(lx)) + bce(lp, torch.zeros_like(lp))
    l_adv = bce(lp, torch.ones_like(lp))
    if dis_on_recon:
        l_dis = l_dis + bce(lr, torch.zeros_like(lr))
        l_adv = l_adv + bce(lr, torch.ones_like(lr))
    return l_prior, l_llike, l_dis, l_adv


def load_cpp_checkpoint(path, preset, latent=None):
    """Builds the networks and loads a C++ `torch::save(VaeGan)` file into them."""
    enc, dec, dis, s, z = build(preset, latent=latent)
    m = torch.jit.load(path)
    state = {k: v for k, v in m.named_parameters()}
    state.update({k: v for k, v in m.named_buffers()})
    root = torch.nn.Module()
    root.encoder, root.decoder, root.discriminator = enc, dec, dis
    root.load_state_dict(state)
    return enc, dec, dis


def step(nets, opts, x, eps, zp, gamma, autocast=False, joint=False, dis_on_recon=False):
    """One Algorithm-1 step; returns the four losses before the update."""
    enc, dec, dis = nets
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        l_prior, l_llike, l_dis, l_adv = losses(enc, dec, dis, x, eps, zp, joint, dis_on_recon)
    ge = torch.autograd.grad(l_prior + l_llike, list(enc.parameters()), retain_graph=True)
    gd = torch.autograd.grad(gamma * l_llike + l_adv, list(dec.parameters()), retain_graph=True)
    gc = torch.autograd.grad(l_dis, list(dis.parameters()))
    for net, grads, opt in zip(nets, (ge, gd, gc), opts):
        for p, g in zip(net.parameters(), grads):
            p.grad = g
        opt.step()
    return [float(v) for v in (l_prior, l_llike, l_dis, l_adv)]


