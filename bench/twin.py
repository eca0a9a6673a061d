#!/usr/bin/python3
"""The PyTorch twin of vaegan's VAE-GAN step, written independently of the C++ code.

A straightforward Python implementation of DESIGN.md §2/§3 (Algorithm 1 with three
torch.autograd.grad calls over the parameter groups; the discriminator runs once on
[X, Xr, Xp]), timed in four settings: fp32, channels_last, bf16 autocast, both.
Prints one JSON line per (preset, setting). Used by `make bench` for the side-by-side ratio.
"""
import argparse
import json
import resource
import time

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


def build(preset, channels=1):
    s, ec, efc, z, dc, dic, dfc = PRESETS[preset]
    return Enc(channels, s, ec, efc, z), Dec(channels, s, dc, z), Dis(channels, s, dic, dfc), s, z


def losses(enc, dec, dis, x, eps, zp):
    b = x.shape[0]
    mu, logvar = enc(x)
    z = mu + torch.exp(0.5 * logvar) * eps
    xd = dec(torch.cat([z, zp]))
    logits, feat = dis(torch.cat([x, xd]))
    logits, feat = logits.float(), feat.float()
    lx, lr, lp = logits[:b], logits[b:2 * b], logits[2 * b:]
    fx, fr = feat[:b], feat[b:2 * b]
    mu, logvar = mu.float(), logvar.float()
    l_prior = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(1).mean()
    l_llike = 0.5 * (fr - fx).pow(2).sum(1).mean()
    bce = F.binary_cross_entropy_with_logits
    l_dis = bce(lx, torch.ones_like(lx)) + bce(lr, torch.zeros_like(lr)) + bce(lp, torch.zeros_like(lp))
    l_adv = bce(lr, torch.ones_like(lr)) + bce(lp, torch.ones_like(lp))
    return l_prior, l_llike, l_dis, l_adv


def step(nets, opts, x, eps, zp, gamma, autocast):
    enc, dec, dis = nets
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        l_prior, l_llike, l_dis, l_adv = losses(enc, dec, dis, x, eps, zp)
    ge = torch.autograd.grad(l_prior + l_llike, list(enc.parameters()), retain_graph=True)
    gd = torch.autograd.grad(gamma * l_llike + l_adv, list(dec.parameters()), retain_graph=True)
    gc = torch.autograd.grad(l_dis, list(dis.parameters()))
    for net, grads, opt in zip(nets, (ge, gd, gc), opts):
        for p, g in zip(net.parameters(), grads):
            p.grad = g
        opt.step()
    return [float(v) for v in (l_prior, l_llike, l_dis, l_adv)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", default="small32,paper64")
    ap.add_argument("--settings", default="fp32,channels_last,bf16,both")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    for preset in args.presets.split(","):
        for setting in args.settings.split(","):
            torch.manual_seed(0)
            enc, dec, dis, s, z = build(preset)
            cl = setting in ("channels_last", "both")
            ac = setting in ("bf16", "both")
            mf = torch.channels_last if cl else torch.contiguous_format
            nets = [n.to(memory_format=mf) for n in (enc, dec, dis)]
            opts = [torch.optim.RMSprop(n.parameters(), lr=3e-4, alpha=0.9) for n in nets]
            b = args.batch_size
            x = (torch.rand(b, 1, s, s) * 2 - 1).contiguous(memory_format=mf)
            times = []
            for i in range(args.warmup + args.steps):
                eps, zp = torch.randn(b, z), torch.randn(b, z)
                t0 = time.perf_counter()
                step(nets, opts, x, eps, zp, 1e-2, ac)
                if i >= args.warmup:
                    times.append(time.perf_counter() - t0)
            times.sort()
            med = times[len(times) // 2]
            print(json.dumps({"impl": "pytorch-twin", "preset": preset, "setting": setting, "batch": b,
                              "threads": torch.get_num_threads(), "ms_per_step": med * 1e3,
                              "images_per_sec": b / med, "images_per_sec_min": b / times[-1],
                              "images_per_sec_max": b / times[0],
                              # process peak so far (settings run in sequence in one process)
                              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)


if __name__ == "__main__":
    main()
