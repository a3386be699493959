"""Hypothesis strategies for random valid programs, inputs and core states.

The generator logic lives once, in :mod:`neurocore.sim.random_programs` (the library uses it for
``neurocore cosim --random N`` too); the strategies here draw a seed (plus any overrides given as
strategies) and call it. The seed and overrides are recorded with ``hypothesis.note`` so a failing
example can be rebuilt outside hypothesis with ``random_program(numpy.random.default_rng(seed), ...)``.
"""
from __future__ import annotations

import numpy as np
from hypothesis import note
from hypothesis import strategies as st

from neurocore.hw.program import CoreProgram, CoreState
from neurocore.sim.random_programs import random_program, random_state

__all__ = ["programs", "states", "seeds"]

seeds = st.integers(min_value=0, max_value=2**64 - 1)


@st.composite
def programs(draw, **overrides) -> tuple[CoreProgram, np.ndarray]:
    """``(program, inputs)``: a random valid ``CoreProgram`` and bool inputs ``[T, n_inputs]``.

    ``overrides`` are passed to ``random_program`` (any ``CoreConfig`` field, ``n_neurons``,
    ``steps``, ``batch`` for ``[B, T, n_inputs]`` inputs, ...); a value may be a strategy, which
    is drawn first. Capacities are small (up to 12 neurons, 48 synapses, 30 steps by default);
    widths, features and parameters are drawn with a bias towards extremes.
    """
    values = {k: draw(v) if isinstance(v, st.SearchStrategy) else v for k, v in overrides.items()}
    seed = draw(seeds)
    note(f"random_program(numpy.random.default_rng({seed}), **{values!r})")
    return random_program(np.random.default_rng(seed), **values)


@st.composite
def states(draw, program: CoreProgram) -> CoreState:
    """A random state for ``program``: every field within its width, plastic weights in range."""
    seed = draw(seeds)
    note(f"random_state(numpy.random.default_rng({seed}), program)")
    return random_state(np.random.default_rng(seed), program)
