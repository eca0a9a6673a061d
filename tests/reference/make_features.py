#!/usr/bin/python3
"""Writes a tiny TorchScript feature extractor (per-channel means and the overall standard
deviation of each image) to argv[1], standing in for a user's Inception module in the tests of
`vaegan eval --features`."""
import sys

import torch


class Features(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean((2, 3)), x.flatten(1).std(1, keepdim=True)], 1)


if __name__ == "__main__":
    torch.jit.script(Features()).save(sys.argv[1])
