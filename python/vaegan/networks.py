"""vaegan's three networks as ``torch.nn.Module`` s (docs/design.md, "Architectures").

Module and parameter names are those of the C++ networks (``include/vaegan/nn/``), so a
checkpoint's ``model.pt`` loads with ``load_state_dict(..., strict=True)``. Legend: B batch,
C channels, S image size, Z latent size. Images are ``[B, C, S, S]`` in ``[-1, 1]``.
"""
import torch
import torch.nn as nn

__all__ = ["Encoder", "Decoder", "Discriminator", "PRESETS", "PRESET_VERSION", "network_options", "build_networks"]

# Per preset (include/vaegan/nn/presets.h): image size, latent size, encoder convolutions and fc
# width, decoder convolutions, discriminator convolutions and fc width. mlp28 has no convolutions.
PRESETS = {
    "small32": dict(size=32, latent=16, enc=(32, 64, 128), enc_fc=1024, dec=(128, 64, 16), dis=(16, 64, 128, 128),
                    dis_fc=256, feature_layer=3),
    "paper64": dict(size=64, latent=128, enc=(64, 128, 256), enc_fc=2048, dec=(256, 128, 32), dis=(32, 128, 256, 256),
                    dis_fc=512, feature_layer=4),
    "mlp28": dict(size=28, latent=20, enc=(), enc_fc=512, dec=(), dis=(32, 128, 256, 256), dis_fc=512,
                  feature_layer=4),
}

# The revision of the presets that a size of 0 means (``kPresetVersion`` in presets.h). Earlier
# revisions differ in small32's latent size only: 1 gave Z = 64 (runs written before 2026-11-28;
# their config.json has no ``preset_version``), 2 gave Z = 32.
PRESET_VERSION = 3
_EARLIER_LATENT = {1: {"small32": 64}, 2: {"small32": 32}}


def _conv(cin, cout, k, stride, bias):
    """k x k convolution with padding k // 2 (stride 2 halves H and W)."""
    return nn.Conv2d(cin, cout, k, stride, k // 2, bias=bias)


class Encoder(nn.Module):
    """q(z|x): strided convolutions (batch norm, ReLU), fully connected layers, then the mean and
    log-variance of a diagonal Gaussian (paper section 2.1). An MLP when ``channels`` is empty."""

    def __init__(self, in_channels, image_size, latent_dim, channels=(64, 128, 256), fc_dim=2048, fc_layers=1,
                 batch_norm=True, kernel_size=5):
        super().__init__()
        layers, cin = [], in_channels
        for c in channels:
            layers += [_conv(cin, c, kernel_size, 2, not batch_norm)]
            layers += [nn.BatchNorm2d(c)] if batch_norm else []
            layers += [nn.ReLU()]
            cin = c
        self.features = nn.Sequential(*layers)
        s = image_size >> len(channels)
        fc, fin = [], cin * s * s
        for _ in range(fc_layers):
            fc += [nn.Linear(fin, fc_dim, bias=not batch_norm)]
            fc += [nn.BatchNorm1d(fc_dim)] if batch_norm else []
            fc += [nn.ReLU()]
            fin = fc_dim
        self.fc = nn.Sequential(*fc)
        self.mu = nn.Linear(fc_dim, latent_dim)
        self.logvar = nn.Linear(fc_dim, latent_dim)

    def forward(self, x):
        """``x`` ``[B, C, S, S]`` in ``[-1, 1]`` -> ``(mu, logvar)``, each ``[B, Z]``."""
        h = self.fc(self.features(x).flatten(1))
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    """p(x|z), the generator: a fully connected layer to a small feature map, transposed
    convolutions that double it (batch norm, ReLU), a last convolution and tanh. An MLP when
    ``channels`` is empty."""

    def __init__(self, latent_dim, out_channels, image_size, channels=(256, 128, 32), fc_dim=512, fc_layers=2,
                 kernel_size=5):
        super().__init__()
        self.out_channels, self.image_size, self.channels = out_channels, image_size, tuple(channels)
        if not channels:
            fc, fin = [], latent_dim
            for _ in range(fc_layers):
                fc += [nn.Linear(fin, fc_dim), nn.ReLU()]
                fin = fc_dim
            fc += [nn.Linear(fin, out_channels * image_size * image_size)]
            self.fc, self.layers = nn.Sequential(*fc), nn.Sequential()
            return
        s, c0 = image_size >> len(channels), channels[0]
        self.fc = nn.Sequential(nn.Linear(latent_dim, c0 * s * s, bias=False), nn.BatchNorm1d(c0 * s * s), nn.ReLU())
        layers, cin = [], c0
        for c in channels:
            layers += [nn.ConvTranspose2d(cin, c, kernel_size, 2, kernel_size // 2, output_padding=1, bias=False),
                       nn.BatchNorm2d(c), nn.ReLU()]
            cin = c
        layers += [_conv(cin, out_channels, kernel_size, 1, True)]
        self.layers = nn.Sequential(*layers)

    def preactivation(self, z):
        """``z`` ``[B, Z]`` -> the output before tanh, ``[B, C, S, S]``."""
        if not self.channels:
            return self.fc(z).view(-1, self.out_channels, self.image_size, self.image_size)
        s = self.image_size >> len(self.channels)
        return self.layers(self.fc(z).view(-1, self.channels[0], s, s))

    def forward(self, z):
        """``z`` ``[B, Z]`` -> images ``[B, C, S, S]`` in ``[-1, 1]``."""
        return torch.tanh(self.preactivation(z))


class Discriminator(nn.Module):
    """Convolutions (the first with stride 1 and a bias, the others stride 2 with batch norm; ReLU)
    and a fully connected head giving one logit. ``Dis_l``, the representation the VAE-GAN's
    reconstruction loss compares (paper eq. 7), is the output of convolution ``feature_layer``
    (1-based) before its batch norm and ReLU."""

    def __init__(self, in_channels, image_size, channels=(32, 128, 256, 256), fc_dim=512, feature_layer=4,
                 kernel_size=5):
        super().__init__()
        if not 1 <= feature_layer <= len(channels):
            raise ValueError(f"feature_layer must be in 1..{len(channels)}, got {feature_layer}")
        self.convs, self.norms, cin = nn.ModuleList(), nn.ModuleList(), in_channels
        for i, c in enumerate(channels):
            self.convs.append(_conv(cin, c, kernel_size, 1 if i == 0 else 2, i == 0))
            if i > 0:
                self.norms.append(nn.BatchNorm2d(c))
            cin = c
        s = image_size >> (len(channels) - 1)
        self.head = nn.Sequential(nn.Linear(cin * s * s, fc_dim, bias=False), nn.BatchNorm1d(fc_dim), nn.ReLU(),
                                  nn.Linear(fc_dim, 1))
        self.feature_layer = feature_layer

    def forward(self, x):
        """``x`` ``[B, C, S, S]`` in ``[-1, 1]`` -> ``(logits [B, 1], features [B, F])``: the logit of
        "x is real" and ``Dis_l(x)`` flattened."""
        features = None
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i + 1 == self.feature_layer:
                features = x.flatten(1)
            if i > 0:
                x = self.norms[i - 1](x)
            x = torch.relu(x)
        return self.head(x.flatten(1)), features


def network_options(arch, channels=1, image_size=0, latent_dim=0, feature_layer=0, preset_version=PRESET_VERSION):
    """The constructor arguments of the three networks for preset ``arch`` (``small32``,
    ``paper64``, ``mlp28``), as ``config.json``'s ``model`` object gives them (0: the preset's
    size in revision ``preset_version``, the preset's feature layer: ``preset_feature_layer`` in
    presets.h). Raises ``ValueError`` naming the field for an unknown preset or revision."""
    if arch not in PRESETS:
        raise ValueError(f"arch: unknown architecture {arch!r} (expected one of {', '.join(PRESETS)})")
    if preset_version not in range(1, PRESET_VERSION + 1):
        raise ValueError(f"preset_version: must be in 1..{PRESET_VERSION}, got {preset_version!r}")
    p = PRESETS[arch]
    preset_z = _EARLIER_LATENT.get(preset_version, {}).get(arch, p["latent"])
    s, z = image_size or p["size"], latent_dim or preset_z
    mlp = arch == "mlp28"
    enc = dict(in_channels=channels, image_size=s, latent_dim=z, channels=p["enc"], fc_dim=p["enc_fc"],
               fc_layers=2 if mlp else 1, batch_norm=not mlp)
    dec = dict(latent_dim=z, out_channels=channels, image_size=s, channels=p["dec"])
    dis = dict(in_channels=channels, image_size=s, channels=p["dis"], fc_dim=p["dis_fc"],
               feature_layer=feature_layer or p["feature_layer"])
    return enc, dec, dis


def build_networks(arch, channels=1, image_size=0, latent_dim=0, feature_layer=0, preset_version=PRESET_VERSION):
    """``(Encoder, Decoder, Discriminator)`` of preset ``arch`` with freshly initialized weights."""
    enc, dec, dis = network_options(arch, channels, image_size, latent_dim, feature_layer, preset_version)
    return Encoder(**enc), Decoder(**dec), Discriminator(**dis)
