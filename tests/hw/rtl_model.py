"""The RTL Core (hw/core.py) under amaranth.sim, behind the golden model's API.

``run``, ``run_batch`` and ``run_steps`` take and return what ``sim.golden``'s do, so that a
hand-computed example of tests/test_spec_examples.py runs unchanged on the golden model, the
reference and the RTL. Each call is one simulation through the host driver (``run_core`` of
tests/hw/test_core.py): load the program and the state, CLEAR (``run_batch``: before every
sample; ``run``: never, it starts from the loaded state), the steps, the state read back.

What the host interface cannot see, this engine cannot report or load: the ``pending`` spikes
(internal axons driven in the next step) live in the core's pending queue. A returned state's
``pending`` is all-false (``PENDING_VISIBLE`` is False), and ``run`` refuses a state with a
pending spike (``run_batch`` clears it before the first sample, so there it does not matter).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from neurocore.hw.program import CoreProgram, CoreState
from neurocore.sim.checks import run_arguments
from neurocore.sim.golden import BatchResult, RunResult

from test_core import run_core

__all__ = ["run", "run_batch", "run_steps", "PENDING_VISIBLE"]

PENDING_VISIBLE = False


def _every_neuron_an_output(program: CoreProgram) -> CoreProgram:
    """The program with neuron ``n`` in output column ``n``: ``spike_out`` then reports every
    neuron that fires (``outputs`` only chooses what phase 3 emits, nothing else)."""
    return dataclasses.replace(program, outputs=np.arange(program.n_neurons, dtype=np.int64))


def _simulate(program: CoreProgram, inputs: np.ndarray, learn: bool, state: CoreState,
              *, clear_first: bool, every_neuron: bool, every_step: bool):
    """One simulation of ``inputs`` [B, T, n_inputs]: (spikes [B, T, columns], final state,
    total SOPs, and with ``every_step`` the states and SOPs after every step); the columns are
    the program's outputs, or with ``every_neuron`` every neuron in index order."""
    run_program = _every_neuron_an_output(program) if every_neuron else program
    spikes, final, stats = run_core(run_program, inputs, learn=learn, samples=inputs.shape[0],
                                    state=state, clear_first=clear_first, read_every_step=every_step)
    if stats["errors"] or stats["status"] & 1:
        raise RuntimeError(f"the core flagged {stats['errors']} errors (status {stats['status']:#x})")
    assert stats["steps"] == inputs.shape[0] * inputs.shape[1]
    step_sops = [int(s) for s in stats["step_sops"]]
    if every_step:   # the core's two SOP counters agree: the total and the sum of the per-step counts
        assert stats["sops"] == sum(step_sops), (stats["sops"], step_sops)
    return spikes, final, int(stats["sops"]), stats["step_states"], step_sops


def _start(program: CoreProgram, learn, inputs, state: CoreState | None, batched: bool):
    """The models' checks of the arguments (sim/checks.py); the start state (a copy)."""
    inputs, learn, state = run_arguments(program, inputs, learn=learn, state=state, batched=batched)
    if not batched and state.pending.any():       # (a batch clears them before its first sample)
        raise ValueError("the RTL core cannot load pending spikes: they are not host visible")
    return inputs, state


def _run(program: CoreProgram, inputs, learn, state, *, record_neurons: bool, every_step: bool):
    inputs, state = _start(program, learn, inputs, state, batched=False)
    spikes, final, sops, states, step_sops = _simulate(program, inputs[None], learn, state, clear_first=False,
                                                       every_neuron=record_neurons, every_step=every_step)
    neuron_spikes = spikes[0] if record_neurons else None
    result = RunResult(spikes=spikes[0][:, program.outputs] if record_neurons else spikes[0], state=final,
                       sops=sops, neuron_spikes=neuron_spikes)
    return result, states, step_sops


def run(program: CoreProgram, inputs, *, learn: bool = False, state: CoreState | None = None,
        record_neurons: bool = False) -> RunResult:
    """``golden.run`` on the RTL: ``T`` steps from ``state`` (default: the program's initial state)."""
    return _run(program, inputs, learn, state, record_neurons=record_neurons, every_step=False)[0]


def run_steps(program: CoreProgram, inputs, *, learn: bool = False,
              state: CoreState | None = None) -> tuple[RunResult, list[CoreState], list[int]]:
    """``run`` with ``record_neurons``, plus the state and the SOPs after every step, read back
    between the steps of the same simulation (the pending spikes stay in the core)."""
    return _run(program, inputs, learn, state, record_neurons=True, every_step=True)


def run_batch(program: CoreProgram, inputs, *, learn: bool = False,
              state: CoreState | None = None) -> BatchResult:
    """``golden.run_batch`` on the RTL: for each sample, CLEAR then ``T`` steps."""
    inputs, state = _start(program, learn, inputs, state, batched=True)
    spikes, final, _, _, step_sops = _simulate(program, inputs, learn, state, clear_first=True,
                                               every_neuron=False, every_step=True)
    sops = np.array(step_sops, np.int64).reshape(inputs.shape[0], inputs.shape[1]).sum(axis=1)
    return BatchResult(spikes=spikes, sops=sops, state=final)
