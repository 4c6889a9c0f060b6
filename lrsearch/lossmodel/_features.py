"""The quantities the two loss laws are written in, computed from a schedule's LR at every step.

Units: an LR is a ratio of ``lr_ref`` and a step count a ratio of ``steps_ref`` (both set by the
fit from its data), so every quantity is O(1) whatever the optimizer or the run length. ``t`` is
the number of optimizer steps done; step ``i`` (from 0) trains at ``eta[i]``.

- ``area``: the forward area ``S1(t) = sum_{i<t} eta_i`` (Tissue et al. 2024; Luo et al. 2025),
  and ``ema_w(t)``, the LR's exponential average over the last ~``w`` steps, started from 0. The
  latter is Tissue et al.'s annealing area up to constants: with ``m_i = lambda m_{i-1} + (eta_{i-1}
  - eta_i)`` and ``lambda = 1 - 1/w``, ``-S2(t) = w * ema_w(t)`` minus a constant times the peak.
- ``drop``: the multi-power law's loss drop (Luo et al. 2025) without its factor ``B``:
  ``sum_k (eta_{k-1} - eta_k) * G(eta_k ** -gamma * S_k(t))``, ``G(x) = 1 - (C x + 1) ** -beta``,
  ``S_k(t) = sum_{k<=i<t} eta_i``, over the steps after the LR's peak.
"""

from __future__ import annotations

import numpy as np


def area(eta: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``S1(t)`` for each ``t`` in ``t`` (steps done, ``1 <= t <= len(eta)``)."""
    return np.concatenate([[0.0], np.cumsum(eta)])[t]


def ema(eta: np.ndarray, t: np.ndarray, window: float) -> np.ndarray:
    """The LR's exponential average with time constant ``window`` steps, after ``t`` steps."""
    if window <= 1.0:
        return np.concatenate([[0.0], eta])[t]  # no memory: the last step's LR
    lam = 1.0 - 1.0 / window
    # e_{s+j} = lam^j e_s + (1 - lam) lam^(j-1) sum_{i<j} lam^-i eta_{s+i}, in blocks short
    # enough that lam^-j stays finite
    block = max(1, int(300.0 / -np.log(lam)))
    out = np.zeros(len(eta) + 1)
    for s in range(0, len(eta), block):
        part = eta[s:s + block]
        j = np.arange(1, len(part) + 1)
        sums = np.cumsum(lam ** -np.arange(len(part)) * part)
        out[s + 1:s + len(part) + 1] = lam ** j * out[s] + (1.0 - lam) * lam ** (j - 1) * sums
    return out[t]


def drop(eta: np.ndarray, t: np.ndarray, beta: float, gamma: float, c: float) -> np.ndarray:
    """The multi-power law's annealing term (without ``B``) after ``t`` steps."""
    peak = int(np.argmax(eta))
    cum = np.concatenate([[0.0], np.cumsum(eta)])
    out = np.zeros(len(t))
    k = np.arange(peak + 1, len(eta))
    if not len(k):
        return out
    delta = eta[k - 1] - eta[k]
    keep = delta != 0
    k, delta = k[keep], delta[keep]
    if not len(k):
        return out
    scale = np.maximum(eta[k], 1e-12) ** -gamma
    for j, tj in enumerate(t):
        m = k < tj
        if m.any():
            x = scale[m] * (cum[tj] - cum[k[m]])
            out[j] = np.dot(delta[m], 1.0 - (c * x + 1.0) ** -beta)
    return out
