"""Slow, obviously-correct reference model of one neuromorphic core.

Written line by line from docs/core-spec.md:

* section 5, "One time step": the four phases in order,
  phase 1 *integrate*, phase 2 *update neurons* (with *winner-take-all*),
  phase 3 *route*, phase 4 *learn* (traces, weight updates, theta);
* section 6, *clear state*, between the samples of a batch.

Everything in the step logic is plain Python ``int``/``bool`` and ``list``; the program's numpy
arrays are converted at entry. Nothing here is meant to be fast: the golden model
(``neurocore.sim.golden``) is the fast one, and the differential tests demand that the two agree
bit for bit. The API mirrors the golden model's: ``run`` and ``run_batch`` returning
``RunResult`` / ``BatchResult``.
"""
from __future__ import annotations

import numpy as np

from ..hw.config import CoreConfig
from ..hw.program import NO_ROUTE, CoreProgram, CoreState
from .golden import BatchResult, RunResult   # the result types are shared with the golden model

__all__ = ["run", "run_batch", "RunResult", "BatchResult"]


# -- notation (spec, "Notation") -------------------------------------------------------------------
def sat(x: int, bits: int) -> int:
    """``sat_B(x)``: clamp to the signed ``B``-bit range ``[-2^(B-1), 2^(B-1)-1]``."""
    return min(max(x, -(1 << (bits - 1))), (1 << (bits - 1)) - 1)


def usat(x: int, bits: int) -> int:
    """``usat_B(x)``: clamp to the unsigned ``B``-bit range ``[0, 2^B-1]``."""
    return min(max(x, 0), (1 << bits) - 1)


# -- the program as plain Python lists ---------------------------------------------------------------
def _ints(array) -> list[int]:
    return [int(v) for v in np.asarray(array).tolist()]


def _bools(array) -> list[bool]:
    return [bool(v) for v in np.asarray(array).tolist()]


class _Core:
    """The program (read-only) as plain lists, and the state (mutable) as plain lists."""

    def __init__(self, program: CoreProgram, state: CoreState):
        program.validate()
        cfg: CoreConfig = program.config
        self.cfg = cfg
        self.V = cfg.membrane_bits
        self.C = cfg.accumulator_bits
        self.X = cfg.trace_bits
        self.n_inputs = int(program.n_inputs)
        self.n_neurons = program.n_neurons
        self.n_axons = program.n_axons
        self.n_synapses = program.n_synapses
        # synapses (section 3)
        self.ptr = _ints(program.ptr)
        self.target = _ints(program.target)
        self.plastic = _bools(program.plastic)
        self.axon_of = [a for a in range(self.n_axons) for _ in range(self.ptr[a], self.ptr[a + 1])]
        # neuron parameters (section 2)
        p = program.neurons
        self.threshold = _ints(p.threshold)
        self.leak_shift = _ints(p.leak_shift)
        self.reset_mode = _ints(p.reset_mode)
        self.refractory = _ints(p.refractory)
        self.bias = _ints(p.bias)
        self.theta_inc = _ints(p.theta_inc)
        self.theta_decay_shift = _ints(p.theta_decay_shift)
        self.wta_group = _ints(p.wta_group)
        self.route = _ints(program.route)
        self.outputs = _ints(program.outputs)
        # learning parameters (section 4)
        lp = program.learning
        self.a_plus = int(lp.a_plus)
        self.a_minus = int(lp.a_minus)
        self.shift = int(lp.shift)
        self.pre_decay_shift = int(lp.pre_decay_shift)
        self.post_decay_shift = int(lp.post_decay_shift)
        self.pre_jump = int(lp.pre_jump)
        self.post_jump = int(lp.post_jump)
        self.w_min = int(lp.w_min)
        self.w_max = int(lp.w_max)
        self.soft_bound = bool(lp.soft_bound)
        # plastic synapses of each neuron, for LTP ("every plastic s with target[s] == n")
        self.plastic_of = [[s for s in range(self.n_synapses) if self.plastic[s] and self.target[s] == n]
                           for n in range(self.n_neurons)]
        # state (section 2)
        self.v = _ints(state.v)
        self.refrac = _ints(state.refrac)
        self.theta = _ints(state.theta)
        self.y = _ints(state.y)
        self.x = _ints(state.x)
        self.pending = _bools(state.pending)
        self.weight = _ints(state.weight)

    def to_state(self) -> CoreState:
        return CoreState(v=np.array(self.v, np.int64).reshape(-1),
                         refrac=np.array(self.refrac, np.int64).reshape(-1),
                         theta=np.array(self.theta, np.int64).reshape(-1),
                         y=np.array(self.y, np.int64).reshape(-1),
                         x=np.array(self.x, np.int64).reshape(-1),
                         pending=np.array(self.pending, bool).reshape(-1),
                         weight=np.array(self.weight, np.int64).reshape(-1))

    # -- section 6 --------------------------------------------------------------------------------
    def clear_state(self) -> None:
        """*Clear state*: ``v``, ``refrac``, ``acc``, ``x``, ``y``, ``pending`` to zero; keep weights, theta."""
        self.v = [0] * self.n_neurons
        self.refrac = [0] * self.n_neurons
        self.y = [0] * self.n_neurons
        self.x = [0] * self.n_axons
        self.pending = [False] * self.n_axons
        # acc is zeroed at the start of every step anyway (phase 1)

    # -- section 5 --------------------------------------------------------------------------------
    def step(self, in_t: list[bool], learn: bool) -> tuple[list[bool], int]:
        """One time step; returns ``(fired, sops)``."""
        active, acc, sops = self.phase1_integrate(in_t)
        fired = self.phase2_update_neurons(acc)
        self.phase3_route(fired)
        if learn:
            self.phase4_learn(active, fired)
        return fired, sops

    def phase1_integrate(self, in_t: list[bool]) -> tuple[list[bool], list[int], int]:
        """Phase 1: ``active[a]``, ``acc[n]`` (weights as at the start of the step) and the SOP count."""
        active = [(a < self.n_inputs and in_t[a]) or self.pending[a] for a in range(self.n_axons)]
        acc = [0] * self.n_neurons
        sops = 0
        for a in range(self.n_axons):
            if active[a]:
                for s in range(self.ptr[a], self.ptr[a + 1]):
                    acc[self.target[s]] += self.weight[s]
                    sops += 1
        lo, hi = -(1 << (self.C - 1)), (1 << (self.C - 1)) - 1
        for n in range(self.n_neurons):
            # cannot fail for a validated program (section 3, accumulator bound)
            assert lo <= acc[n] <= hi, f"accumulator of neuron {n} = {acc[n]} left the {self.C}-bit range"
        return active, acc, sops

    def phase2_update_neurons(self, acc: list[int]) -> list[bool]:
        """Phase 2: leak, integrate, saturate, compare; winner-take-all; reset and refractory."""
        candidate = [False] * self.n_neurons
        margin = [0] * self.n_neurons
        v2_of = [0] * self.n_neurons
        thr_of = [0] * self.n_neurons
        for n in range(self.n_neurons):
            if self.refrac[n] > 0:
                self.refrac[n] -= 1                    # input and bias are discarded, v is held
                candidate[n] = False
            else:
                v = self.v[n]
                v1 = v - (v >> self.leak_shift[n]) if self.leak_shift[n] > 0 else v
                v2 = sat(v1 + acc[n] + self.bias[n], self.V)
                thr = self.threshold[n] + self.theta[n]    # theta as at the start of the step
                candidate[n] = v2 >= thr
                margin[n] = v2 - thr
                self.v[n] = v2
                v2_of[n] = v2
                thr_of[n] = thr

        # Winner-take-all
        fired = [False] * self.n_neurons
        for n in range(self.n_neurons):
            if candidate[n] and self.wta_group[n] == 0:
                fired[n] = True
        groups = sorted({self.wta_group[n] for n in range(self.n_neurons)
                         if candidate[n] and self.wta_group[n] >= 1})
        for g in groups:
            winner = None
            for n in range(self.n_neurons):                # index order: ties go to the lowest index
                if candidate[n] and self.wta_group[n] == g:
                    if winner is None or margin[n] > margin[winner]:
                        winner = n
            fired[winner] = True
            for n in range(self.n_neurons):
                if candidate[n] and self.wta_group[n] == g and n != winner:
                    self.v[n] = 0                          # loser: no refractory, no theta increment

        # a neuron that fires
        for n in range(self.n_neurons):
            if fired[n]:
                if self.reset_mode[n] == 0:
                    self.v[n] = 0                          # reset to zero
                else:
                    self.v[n] = v2_of[n] - thr_of[n]       # reset by subtraction
                    assert 0 <= self.v[n] <= v2_of[n]
                self.refrac[n] = self.refractory[n]
        return fired

    def phase3_route(self, fired: list[bool]) -> None:
        """Phase 3: a spike of step t becomes ``pending`` on its internal axon for step t+1.

        Output emission (``output[n]``) is done by the caller from ``fired``, in ``outputs`` order.
        """
        self.pending = [False] * self.n_axons
        for n in range(self.n_neurons):
            if fired[n]:
                if self.route[n] != NO_ROUTE:
                    self.pending[self.route[n]] = True

    def dw(self, amplitude: int, trace: int, w: int) -> int:
        """``dw(A, trace, w)`` of phase 4."""
        if not self.soft_bound:
            return (amplitude * trace) >> self.shift
        R = self.w_max - self.w_min
        u = w - self.w_min
        assert 0 <= u <= R
        return (amplitude * trace * u * (R - u)) >> self.shift

    def phase4_learn(self, active: list[bool], fired: list[bool]) -> None:
        """Phase 4: traces decay then jump; LTD pass (a); LTP pass (b); theta."""
        X = self.X
        xd = [self.x[a] - (self.x[a] >> self.pre_decay_shift) if self.pre_decay_shift > 0 else self.x[a]
              for a in range(self.n_axons)]
        yd = [self.y[n] - (self.y[n] >> self.post_decay_shift) if self.post_decay_shift > 0 else self.y[n]
              for n in range(self.n_neurons)]
        xn = [usat(xd[a] + self.pre_jump, X) if active[a] else xd[a] for a in range(self.n_axons)]
        yn = [usat(yd[n] + self.post_jump, X) if fired[n] else yd[n] for n in range(self.n_neurons)]

        # (a) LTD: pre spike now, post spikes in the past
        for a in range(self.n_axons):
            if active[a]:
                for s in range(self.ptr[a], self.ptr[a + 1]):
                    if self.plastic[s]:
                        w = self.weight[s]
                        self.weight[s] = max(w - self.dw(self.a_minus, yd[self.target[s]], w), self.w_min)
        # (b) LTP: post spike now, pre spikes in the past or now
        for n in range(self.n_neurons):
            if fired[n]:
                for s in self.plastic_of[n]:
                    a = self.axon_of[s]
                    w = self.weight[s]
                    self.weight[s] = min(w + self.dw(self.a_plus, xn[a], w), self.w_max)
        self.x = xn
        self.y = yn

        # Theta, for every neuron, from its value at the start of the step
        if self.cfg.adaptive_threshold:
            for n in range(self.n_neurons):
                th = (self.theta[n] - (self.theta[n] >> self.theta_decay_shift[n])
                      if self.theta_decay_shift[n] > 0 else self.theta[n])
                self.theta[n] = usat(th + (self.theta_inc[n] if fired[n] else 0), self.V - 1)


# -- argument checking --------------------------------------------------------------------------------
def _check_inputs(program: CoreProgram, inputs, ndim: int) -> np.ndarray:
    shape_text = "[T, n_inputs]" if ndim == 2 else "[B, T, n_inputs]"
    array = np.asarray(inputs)
    if array.ndim != ndim:
        raise ValueError(f"inputs must have shape {shape_text} = [..., {program.n_inputs}], "
                         f"got shape {array.shape}")
    if array.shape[-1] != program.n_inputs:
        raise ValueError(f"inputs must have n_inputs = {program.n_inputs} columns (shape {shape_text}), "
                         f"got shape {array.shape}")
    if array.dtype != bool:
        if not np.issubdtype(array.dtype, np.integer) or (array.size and not np.isin(array, (0, 1)).all()):
            raise ValueError(f"inputs must be a bool array (or integers 0/1), got dtype {array.dtype}")
        array = array.astype(bool)
    return array


def _check_state(program: CoreProgram, state: CoreState) -> None:
    if not isinstance(state, CoreState):
        raise ValueError(f"state must be a CoreState, got {type(state).__name__}")
    sizes = dict(v=program.n_neurons, refrac=program.n_neurons, theta=program.n_neurons,
                 y=program.n_neurons, x=program.n_axons, pending=program.n_axons,
                 weight=program.n_synapses)
    for name, size in sizes.items():
        value = np.asarray(getattr(state, name))
        if value.shape != (size,):
            raise ValueError(f"state.{name} has shape {value.shape}, expected ({size},)")


def _check_learn(program: CoreProgram, learn) -> bool:
    if learn and not program.config.learning:
        raise ValueError("learn=True needs a core configured with learning (CoreConfig.learning=False)")
    return bool(learn)


# -- public API ----------------------------------------------------------------------------------
def run(program: CoreProgram, inputs, *, learn: bool = False, state: CoreState | None = None,
        record_neurons: bool = False) -> RunResult:
    """Run ``T`` steps (spec section 5) from ``state`` (default: the program's initial state).

    ``inputs`` is bool ``[T, n_inputs]``. ``state`` is not modified.
    """
    learn = _check_learn(program, learn)
    inputs = _check_inputs(program, inputs, 2)
    if state is None:
        state = CoreState.initial(program)
    _check_state(program, state)
    core = _Core(program, state)
    T = inputs.shape[0]
    rows = [[bool(b) for b in row] for row in inputs.tolist()]
    spikes = np.zeros((T, program.n_outputs), bool)
    neuron_spikes = np.zeros((T, program.n_neurons), bool) if record_neurons else None
    total_sops = 0
    for t in range(T):
        fired, sops = core.step(rows[t], learn)
        total_sops += sops
        for j, n in enumerate(core.outputs):           # output column j is neuron outputs[j]
            spikes[t, j] = fired[n]
        if record_neurons:
            neuron_spikes[t, :] = fired
    return RunResult(spikes=spikes, state=core.to_state(), sops=total_sops, neuron_spikes=neuron_spikes)


def run_batch(program: CoreProgram, inputs, *, learn: bool = False,
              state: CoreState | None = None) -> BatchResult:
    """For each sample ``b``: clear state (section 6), run ``T`` steps. Weights and theta carry over."""
    learn = _check_learn(program, learn)
    inputs = _check_inputs(program, inputs, 3)
    if state is None:
        state = CoreState.initial(program)
    _check_state(program, state)
    core = _Core(program, state)
    B, T = inputs.shape[0], inputs.shape[1]
    spikes = np.zeros((B, T, program.n_outputs), bool)
    sops = np.zeros(B, np.int64)
    for b in range(B):
        core.clear_state()
        rows = [[bool(v) for v in row] for row in inputs[b].tolist()]
        for t in range(T):
            fired, step_sops = core.step(rows[t], learn)
            sops[b] += step_sops
            for j, n in enumerate(core.outputs):
                spikes[b, t, j] = fired[n]
    return BatchResult(spikes=spikes, sops=sops, state=core.to_state())
