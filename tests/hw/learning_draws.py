"""Random STDP parameters biased to the corners, shared by the plasticity and STDP block tests,
and the golden model's weight-change rule called on the reference's arguments."""
from __future__ import annotations

import random

import numpy as np

from neurocore.hw.config import CoreConfig
from neurocore.hw.program import LearningParams
from neurocore.sim import golden


def corner(rng: random.Random, top: int, p_ends: float = 0.2) -> int:
    """A value in 0..top: with probability ``p_ends`` one of 0, 1, top, else mostly in the
    upper half, sometimes anywhere."""
    pick = rng.random()
    if pick < p_ends:
        return rng.choice([0, 1, top])
    return rng.randint(top // 2, top) if pick < 0.6 else rng.randint(0, top)


def weight_update_params(rng: random.Random, config: CoreConfig, *, max_shift: int = 63) -> dict:
    """``a_plus``, ``a_minus``, ``shift``, ``w_min``, ``w_max``, ``soft_bound`` for a WeightUpdate.

    The plastic range is sometimes empty, sometimes the whole weight range; the shift is
    sometimes extreme, else chosen so that dw is about the size of the plastic range for
    large traces (most updates neither stay put nor hit a bound).
    """
    wlo, whi = config.weight_range
    pick = rng.random()
    if pick < 0.08:
        w_min = w_max = rng.randint(wlo, whi)                     # empty plastic range
    elif pick < 0.35:
        w_min, w_max = wlo, whi                                   # the full range
    else:
        w_min, w_max = sorted(rng.randint(wlo, whi) for _ in range(2))
    soft = rng.random() < 0.5
    a_plus, a_minus = corner(rng, 255), corner(rng, 255)
    if rng.random() < 0.3:
        shift = rng.choice([0, 47, max_shift, rng.randint(0, 47)])
    else:
        r = w_max - w_min
        big = max(a_plus, a_minus, 1) * config.trace_max * (max(r * r // 4, 1) if soft else 1)
        shift = min(max(big.bit_length() - rng.randint(0, max(r, 1).bit_length() + 4), 0), max_shift)
    return dict(a_plus=a_plus, a_minus=a_minus, shift=shift, w_min=w_min, w_max=w_max, soft_bound=soft)


def golden_dw(amplitude: int, trace: int, w: int, lp: LearningParams) -> int:
    """The golden model's own ``_dw`` (its pure-Python function) on the arguments of
    ``reference.dw``: a check that the two models share the rule."""
    packed = np.zeros(10, np.int64)
    packed[golden._SHIFT], packed[golden._W_MIN], packed[golden._W_MAX] = lp.shift, lp.w_min, lp.w_max
    packed[golden._SOFT] = int(lp.soft_bound)
    return int(golden._dw.py_func(np.int64(amplitude), np.int64(trace), np.int64(w), packed))
