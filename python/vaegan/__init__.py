"""vaegan in Python: load the models that the ``vaegan`` C++ toolkit trains (docs/python.md).

>>> import vaegan
>>> m = vaegan.load("runs/demo")        # a run directory or a checkpoint directory
>>> m.sample(4).shape                   # [4, C, S, S] in [-1, 1]
"""
from .model import FORMAT_VERSION, VaeGanModel, load, resolve_checkpoint
from .networks import Decoder, Discriminator, Encoder, build_networks

__version__ = "0.1.0"
__all__ = ["load", "resolve_checkpoint", "VaeGanModel", "Encoder", "Decoder", "Discriminator", "build_networks",
           "FORMAT_VERSION"]
