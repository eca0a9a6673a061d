#!/usr/bin/python3
"""Fréchet distance of two feature sets the textbook way (scipy.linalg.sqrtm), independent of
vaegan's eigendecomposition: reads A.npy [N, F] and B.npy [M, F], prints the distance."""
import sys

import numpy as np
from scipy import linalg


def main():
    a, b = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2]).astype(np.float64)
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(s1.dot(s2))
    if np.iscomplexobj(root):
        root = root.real
    print(repr(float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))))


if __name__ == "__main__":
    main()
