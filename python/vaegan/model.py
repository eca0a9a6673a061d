"""Loading a vaegan checkpoint into PyTorch (docs/python.md).

A checkpoint directory (``RUN/checkpoints/step-NNNNNNN``) holds ``model.pt`` (a TorchScript archive
of every weight and batch-norm statistic, written by LibTorch's ``torch::save``), optionally
``decoder-ema.pt`` (the moving average of the decoder's weights, the same kind of archive), ``config.json``
(the architecture) and ``state.json`` (step, format version); ``RUN/checkpoints/last`` names the
newest. See docs/design.md, "Checkpoints".
"""
import json
import os

import torch
import torch.nn as nn

from .networks import PRESET_VERSION, Decoder, Discriminator, Encoder, network_options

__all__ = ["FORMAT_VERSION", "VaeGanModel", "load", "resolve_checkpoint"]

FORMAT_VERSION = 2
"""The checkpoint format this package reads (``format_version`` of ``state.json``)."""

_HAS_ENCODER = {"vaegan": True, "vae": True, "gan": False, "vae-then-gan": True}
_HAS_DISCRIMINATOR = {"vaegan": True, "vae": False, "gan": True, "vae-then-gan": True}


def resolve_checkpoint(path):
    """The checkpoint directory of ``path``: ``path`` itself when it holds ``model.pt``, else the
    one ``path/checkpoints/last`` names (a run directory). Raises ``FileNotFoundError`` naming
    ``path`` when it is neither."""
    path = os.fspath(path)
    if os.path.isfile(os.path.join(path, "model.pt")):
        return path
    last = os.path.join(path, "checkpoints", "last")
    if os.path.isfile(last):
        with open(last) as f:
            directory = os.path.join(path, "checkpoints", f.read().strip())
        if os.path.isfile(os.path.join(directory, "model.pt")):
            return directory
        raise FileNotFoundError(f"{last} names {directory}, which has no model.pt")
    raise FileNotFoundError(f"{path}: neither a checkpoint directory (with model.pt) "
                            "nor a run directory (with checkpoints/last)")


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read: {e}") from e


class VaeGanModel(nn.Module):
    """The networks of one checkpoint, in eval mode (batch norm uses its running statistics).

    ``encoder``, ``decoder`` and ``discriminator`` are ``torch.nn.Module`` s holding the
    checkpoint's weights; a model type without one has ``None`` there (``vae``: no
    discriminator, ``gan``: no encoder). Images are ``[B, C, S, S]`` in ``[-1, 1]`` on the model's
    device; latents ``[B, Z]``. The methods do not switch off autograd: wrap them in
    ``torch.no_grad()`` when gradients are not wanted. ``decoder_weights`` (set by ``load``) says
    which decoder weights it holds: ``"ema"`` (the moving average) or ``"trained"``.
    """

    def __init__(self, config, encoder, decoder, discriminator, checkpoint=None, step=None):
        super().__init__()
        self.config, self.checkpoint, self.step = config, checkpoint, step
        self.encoder, self.decoder, self.discriminator = encoder, decoder, discriminator
        self.decoder_weights = "trained"

    @property
    def latent_dim(self):
        """Z, the latent size."""
        return self.decoder.fc[0].in_features

    @property
    def image_shape(self):
        """``(C, S, S)`` of the images the model reads and writes."""
        return (self.decoder.out_channels, self.decoder.image_size, self.decoder.image_size)

    @property
    def device(self):
        """The ``torch.device`` the networks are on."""
        return next(self.decoder.parameters()).device

    def _need(self, network, what):
        """The network named ``network``, or ``ValueError`` saying the model type has none."""
        if getattr(self, network) is None:
            raise ValueError(f"a {self.config['model']['type']} model has no {network} to {what} with")
        return getattr(self, network)

    def encode(self, x):
        """``x`` ``[B, C, S, S]`` in ``[-1, 1]`` -> ``(mu, logvar)`` of q(z|x), each ``[B, Z]``.
        Raises ``ValueError`` for a model without an encoder (``gan``)."""
        return self._need("encoder", "encode")(x)

    def decode(self, z):
        """``z`` ``[B, Z]`` -> images ``[B, C, S, S]`` in ``[-1, 1]``."""
        return self.decoder(z)

    def sample(self, n, generator=None):
        """``n`` images decoded from the prior N(0, I): ``[n, C, S, S]`` in ``[-1, 1]``. The latents
        are drawn on the CPU from ``generator`` (default: the global one), as ``vaegan sample`` draws
        them: a generator seeded with ``vaegan sample``'s ``--seed`` gives its images."""
        z = torch.randn(n, self.latent_dim, generator=generator)
        return self.decode(z.to(self.device))

    def reconstruct(self, x):
        """Deterministic reconstruction Dec(mu(x)) of ``x`` ``[B, C, S, S]`` in ``[-1, 1]``, as
        ``vaegan reconstruct``: ``[B, C, S, S]`` in ``[-1, 1]``."""
        return self.decode(self.encode(x)[0])

    def discriminator_features(self, x):
        """``Dis_l(x)``, the discriminator representation the VAE-GAN's reconstruction loss
        compares (paper eq. 7; ``feature_layer`` of the config), flattened: ``[B, F]``. Raises
        ``ValueError`` for a model without a discriminator (``vae``)."""
        return self._need("discriminator", "compute features")(x)[1]


def load(path, device="cpu", decoder_weights="auto"):
    """Loads the model of ``path`` (a checkpoint directory, or a run directory meaning its newest
    checkpoint) onto ``device``: its ``config.json`` gives the architecture, ``model.pt`` the
    weights (``load_state_dict(strict=True)``). Returns a ``VaeGanModel`` in eval mode.

    ``decoder_weights`` as the commands' ``--decoder-weights``: ``"auto"`` takes the moving
    average of the decoder's weights (``decoder-ema.pt``, kept by ``train --ema-decay``) when the
    checkpoint has one, ``"ema"`` requires it, ``"trained"`` takes the trained decoder of ``model.pt``.

    Raises ``FileNotFoundError`` naming the path when there is no checkpoint (or no
    ``decoder-ema.pt`` for ``"ema"``), ``ValueError`` for a checkpoint of another format version,
    an unknown model type or architecture, weights that do not match the architecture, or an
    unknown ``decoder_weights``.
    """
    if decoder_weights not in ("auto", "ema", "trained"):
        raise ValueError(f"decoder_weights must be 'auto', 'ema' or 'trained', got {decoder_weights!r}")
    directory = resolve_checkpoint(path)
    state = _read_json(os.path.join(directory, "state.json"))
    version = state.get("format_version", 0)
    if version != FORMAT_VERSION:
        raise ValueError(f"{directory}: checkpoint format version {version} (this package reads {FORMAT_VERSION})")
    config = _read_json(os.path.join(directory, "config.json"))
    m = config.get("model", {})
    kind = m.get("type", "vaegan")
    if kind not in _HAS_ENCODER:
        raise ValueError(f"{directory}/config.json: unknown model type {kind!r}")
    # A run's config.json written before the presets had revisions means revision 1 (presets.h).
    preset_version = m.get("preset_version", 1 if "format_version" in config and "model" in config else PRESET_VERSION)
    enc, dec, dis = network_options(m.get("arch", "small32"), m.get("channels", 1), m.get("image_size", 0),
                                    m.get("latent_dim", 0), m.get("feature_layer", 0), preset_version)
    encoder = Encoder(**enc) if _HAS_ENCODER[kind] else None
    discriminator = Discriminator(**dis) if _HAS_DISCRIMINATOR[kind] else None
    model = VaeGanModel(config, encoder, Decoder(**dec), discriminator, checkpoint=directory, step=state.get("step"))
    _load_archive(model, os.path.join(directory, "model.pt"))
    ema = os.path.join(directory, "decoder-ema.pt")
    if decoder_weights == "ema" and not os.path.isfile(ema):
        raise FileNotFoundError(f"{directory}: no decoder-ema.pt (train with --ema-decay to keep one)")
    if decoder_weights != "trained" and os.path.isfile(ema):
        _load_archive(model.decoder, ema)
        model.decoder_weights = "ema"
    return model.to(device).eval()


def _load_archive(module, path):
    """Loads every parameter and buffer of the LibTorch archive ``path`` into ``module``
    (``load_state_dict(strict=True)``); raises ``ValueError`` naming ``path`` when they do not match."""
    archive = torch.jit.load(path, map_location="cpu")
    weights = dict(archive.named_parameters())
    weights.update(dict(archive.named_buffers()))
    try:
        module.load_state_dict({k: v.detach() for k, v in weights.items()}, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path} does not match its config.json: {e}") from e
