"""The argument checks of ``run`` / ``run_batch``, one set for the golden model and the reference.

Both models refuse, before the first step and with one line naming the field, the value and
the limit, everything docs/core-spec.md does not allow: a program that fails
``CoreProgram.validate()`` (validated at every call, once, not per step: its arrays may
have been changed in place since it was built), input spikes of the wrong shape or not
spikes, ``learn`` on a core without learning, and a start state that does not fit the
program (``CoreState.checked``). The golden model's kernels index memory with these
values unchecked, so a value let through here could crash the process or write out of
bounds.
"""
from __future__ import annotations

import numpy as np

from ..hw.program import CoreProgram, CoreState

__all__ = ["run_arguments", "check_inputs", "check_learn", "check_state"]


def run_arguments(program: CoreProgram, inputs, *, learn, state: CoreState | None,
                  batched: bool) -> tuple[np.ndarray, bool, CoreState]:
    """Check everything a run gets; returns ``(inputs, learn, state)`` ready for the models.

    ``inputs`` comes back as a C-contiguous bool array, ``learn`` as a ``bool`` and
    ``state`` as a new :class:`CoreState` (``int64`` / ``bool`` copies; the program's
    initial state when ``None``); the caller's state is never modified.
    """
    if not isinstance(program, CoreProgram):
        raise ValueError(f"program must be a CoreProgram, got {type(program).__name__}")
    program.validate()
    learn = check_learn(program, learn)
    inputs = check_inputs(program, inputs, batched)
    state = CoreState.initial(program) if state is None else check_state(program, state)
    return inputs, learn, state


def check_inputs(program: CoreProgram, inputs, batched: bool) -> np.ndarray:
    """Host input spikes: bool (or integer 0/1) ``[T, n_inputs]``, or ``[B, T, n_inputs]``."""
    want = "[B, T, n_inputs]" if batched else "[T, n_inputs]"
    array = np.asarray(inputs)
    if array.ndim != (3 if batched else 2) or array.shape[-1] != program.n_inputs:
        raise ValueError(f"inputs must have shape {want} with n_inputs = {program.n_inputs}, "
                         f"got shape {array.shape}")
    if array.dtype != np.bool_ and array.size:
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"inputs must be spikes: a bool array or integers 0/1, got dtype {array.dtype}")
        bad = (array != 0) & (array != 1)
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"inputs{list(index)} = {array[index]} is not a spike (bool or 0/1)")
    return np.ascontiguousarray(array, dtype=np.bool_)


def check_learn(program: CoreProgram, learn) -> bool:
    """``learn`` is True or False, and True only on a core configured with learning."""
    if not isinstance(learn, (bool, np.bool_)):
        raise ValueError(f"learn must be True or False, got {learn!r}")
    if learn and not program.config.learning:
        raise ValueError("learn=True needs a core configured with learning (CoreConfig.learning is False)")
    return bool(learn)


def check_state(program: CoreProgram, state) -> CoreState:
    """A start state the program can be in, as new ``int64`` / ``bool`` arrays."""
    if not isinstance(state, CoreState):
        raise ValueError(f"state must be a CoreState, got {type(state).__name__}")
    return state.checked(program)


def chip_arguments(chip, inputs, *, learn, states, batched: bool):
    """Check a chip run's arguments as :func:`run_arguments` checks a core's (spec section 9):
    returns the per-core host inputs, ``learn`` and one fresh state per core."""
    from ..hw.chip import ChipProgram

    if not isinstance(chip, ChipProgram):
        raise ValueError(f"chip must be a ChipProgram, got {type(chip).__name__}")
    chip.validate()
    for program in chip.cores:
        program.validate()
    array = np.asarray(inputs)
    want = "[B, T, n_inputs]" if batched else "[T, n_inputs]"
    if array.ndim != (3 if batched else 2) or array.shape[-1] != chip.n_inputs:
        raise ValueError(f"chip inputs must have shape {want} with n_inputs = {chip.n_inputs}, got shape {array.shape}")
    if array.dtype != np.bool_ and array.size and (not np.issubdtype(array.dtype, np.integer)
                                                   or ((array != 0) & (array != 1)).any()):
        raise ValueError("chip inputs must be spikes: a bool array or integers 0/1")
    per_core = [check_inputs(p, x, batched) for p, x in zip(chip.cores, chip.core_inputs(array.astype(bool)))]
    learn = check_learn(chip.cores[0], learn) if chip.cores else bool(learn)
    if states is None:
        states = [CoreState.initial(p) for p in chip.cores]
    elif len(states) != len(chip.cores):
        raise ValueError(f"states: one CoreState per core ({len(chip.cores)}), got {len(states)}")
    else:
        states = [check_state(p, st) for p, st in zip(chip.cores, states)]
    return per_core, learn, states
