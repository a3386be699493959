"""The golden model of a chip (docs/core-spec.md, section 9): every core's step on the
golden core kernel; the remote spikes of the step join the host inputs of their
destination cores in the next step. Bit-exact with :func:`neurocore.sim.reference.run_chip_batch` (the differential
tests); a 1x1 chip is :func:`neurocore.sim.golden.run_batch`.

A step costs each core's own step (its neurons, its events) plus one operation per remote
entry of a neuron that fired: the mesh is not simulated cycle by cycle (its timing does
not change the semantics; the RTL and ``neurocore bench chip`` measure it).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..hw.program import CoreState
from .checks import chip_arguments
from .golden import _Packed, _run_sample

__all__ = ["ChipBatchResult", "run_chip_batch", "run_chip"]


@dataclasses.dataclass
class ChipBatchResult:
    spikes: np.ndarray       # bool [B, T, n_outputs], the cores' chip outputs (to_host) in core order
    sops: np.ndarray         # int [B]: synaptic operations of each sample, all cores
    packets: np.ndarray      # int [B]: remote spikes (route entries of fired neurons) of each sample
    states: list             # one CoreState per core, after the last sample


class _CoreRun:
    """One core's packed program, state and a one-step buffer for its fired neurons."""

    def __init__(self, program, state: CoreState, remote):
        self.packed = _Packed(program)
        self.program = program
        self.state = state
        self.weight = state.weight.astype(np.int16)
        self.fired = np.zeros((1, program.n_neurons), np.bool_)
        self.out = np.zeros((1, program.n_outputs), np.bool_)
        self.start, self.core, self.axon = remote.start, remote.core, remote.axon
        self.has_remote = np.diff(remote.start) > 0

    def step(self, inputs_t: np.ndarray, learn: bool) -> int:
        p = self.packed
        self.fired[:] = False                      # the kernel only sets the spikes of the step
        self.out[:] = False
        return int(_run_sample(inputs_t, self.program.n_inputs, p.ptr, p.target, self.weight, p.plastic,
                               *p.segments, *p.blocks, *p.plastic_uses, p.params, p.route, p.out_col, p.learn,
                               learn, p.widths, self.state.v, self.state.refrac, self.state.theta, self.state.y,
                               self.state.x, self.state.pending, self.out, self.fired, True))

    def remote_entries(self) -> tuple[np.ndarray, np.ndarray]:
        """Destinations ``(core, axon)`` of this step's fired neurons with remote routes."""
        senders = np.flatnonzero(self.fired[0] & self.has_remote)
        if not len(senders):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        counts = self.start[senders + 1] - self.start[senders]
        entries = np.repeat(self.start[senders] - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        return self.core[entries], self.axon[entries]


def _run_steps(runs: list, inputs: list, learn: bool, spikes: np.ndarray, columns: np.ndarray) -> tuple[int, int]:
    """Run ``T`` chip steps of one sample (``inputs[k]``: core ``k``'s host inputs ``[T, n_inputs]``)
    from the runs' states, no remote spike in flight; fills ``spikes [T, n_outputs]``;
    returns ``(sops, packets)``. The remote spikes of step ``t`` join the host inputs of
    their cores in step ``t + 1`` (section 9)."""
    sops = packets = 0
    arriving = [np.zeros((1, run.program.n_inputs), np.bool_) for run in runs]
    for t in range(spikes.shape[0]):
        for k, run in enumerate(runs):
            sops += run.step(inputs[k][t:t + 1] | arriving[k], learn)
            spikes[t, columns[k]:columns[k + 1]] = run.out[0, run.to_host]
        for a in arriving:
            a[:] = False
        for run in runs:
            cores, axons = run.remote_entries()
            packets += len(cores)
            for j in np.unique(cores).tolist():
                arriving[j][0, axons[cores == j]] = True
    return sops, packets


def _runs(chip, states) -> tuple[list, np.ndarray]:
    runs = [_CoreRun(p, st, table) for p, st, table in zip(chip.cores, states, chip.remote)]
    for run, flags in zip(runs, chip.to_host):
        run.to_host = flags                       # the core's output columns that are chip outputs
    return runs, np.concatenate([[0], np.cumsum([int(f.sum()) for f in chip.to_host])])


def _result(runs, spikes, sops, packets) -> ChipBatchResult:
    for run in runs:
        run.state.weight[:] = run.weight
    return ChipBatchResult(spikes=spikes, sops=sops, packets=packets, states=[run.state for run in runs])


def run_chip_batch(chip, inputs, *, learn: bool = False, states=None) -> ChipBatchResult:
    """For each sample ``b``: clear every core (section 6), run ``T`` chip steps (section 9).

    ``inputs`` is bool ``[B, T, chip.n_inputs]``; weights and theta carry from sample to
    sample (they change only when ``learn``). ``states`` (one :class:`CoreState` per core,
    default: the programs' initial states) are not modified.
    """
    per_core, learn, states = chip_arguments(chip, inputs, learn=learn, states=states, batched=True)
    runs, columns = _runs(chip, states)
    B, T = np.asarray(inputs).shape[:2]
    spikes = np.zeros((B, T, chip.n_outputs), np.bool_)
    sops, packets = np.zeros(B, np.int64), np.zeros(B, np.int64)
    for b in range(B):
        for run in runs:
            run.state.clear()
        sops[b], packets[b] = _run_steps(runs, [x[b] for x in per_core], learn, spikes[b], columns)
    return _result(runs, spikes, sops, packets)


def run_chip(chip, inputs, *, learn: bool = False, states=None) -> ChipBatchResult:
    """One sample (``inputs`` bool ``[T, chip.n_inputs]``) from ``states``, without clearing
    them first (no remote spike is in flight at the start); the result has a batch axis of 1."""
    per_core, learn, states = chip_arguments(chip, inputs, learn=learn, states=states, batched=False)
    runs, columns = _runs(chip, states)
    spikes = np.zeros((1, np.asarray(inputs).shape[0], chip.n_outputs), np.bool_)
    sops, packets = _run_steps(runs, per_core, learn, spikes[0], columns)
    return _result(runs, spikes, np.array([sops]), np.array([packets]))
