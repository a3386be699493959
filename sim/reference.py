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
from ..hw.program import NO_ROUTE, RESET_TO_ZERO, CoreProgram, CoreState, LearningParams
from .checks import chip_arguments, run_arguments
from .golden import BatchResult, RunResult   # the result types are shared with the golden model

__all__ = ["run", "run_batch", "RunResult", "BatchResult", "sat", "usat", "decay", "uses_of", "program_uses", "accumulate",
           "leak", "integrate", "threshold_of", "neuron_update", "wta", "reset", "trace_jump", "dw", "depress",
           "potentiate", "ltd_pass", "plastic_by_target", "ltp_pass", "firing_order", "theta_update"]


# -- notation (spec, "Notation") -------------------------------------------------------------------
def sat(x: int, bits: int) -> int:
    """``sat_B(x)``: clamp to the signed ``B``-bit range ``[-2^(B-1), 2^(B-1)-1]``."""
    return min(max(x, -(1 << (bits - 1))), (1 << (bits - 1)) - 1)


def usat(x: int, bits: int) -> int:
    """``usat_B(x)``: clamp to the unsigned ``B``-bit range ``[0, 2^B-1]``."""
    return min(max(x, 0), (1 << bits) - 1)


def decay(x: int, shift: int) -> int:
    """``x - (x >> k)`` if ``k > 0``, else ``x``: the leak of ``v`` (spec section 2), the decay
    of ``theta`` and of the traces ``x`` and ``y`` (section 5, phase 4). ``|result| <= |x|``."""
    return x - (x >> shift) if shift > 0 else x


# -- the rules of one step, one function each (spec section 5) --------------------------------------
def uses_of(ptr: list[int], target: list[int], seg_start: list[int], seg_len: list[int],
            seg_offset: list[int], seg_base: list[int], seg_count: list[int], seg_first: list[int],
            neuron_index_bits: int) -> list[list[tuple[int, int]]]:
    """Section 3: the uses ``(n, s)`` of every axon, in order: its row synapses
    ``(target[s], s)`` for ``s in ptr[a] .. ptr[a+1]-1``, then for each entry ``k`` of its
    segment list ``seg_start[a] .. seg_start[a]+seg_len[a]-1`` the pairs
    ``(t0 + j, base + j)``, ``j < count``, where ``t0 = (seg_offset[a] + first) mod 2^nib``."""
    uses = []
    for a in range(len(ptr) - 1):
        mine = [(target[s], s) for s in range(ptr[a], ptr[a + 1])]
        for k in range(seg_start[a], seg_start[a] + seg_len[a]):
            t0 = (seg_offset[a] + seg_first[k]) % (1 << neuron_index_bits)
            mine += [(t0 + j, seg_base[k] + j) for j in range(seg_count[k])]
        uses.append(mine)
    return uses


def program_uses(program: CoreProgram) -> list[list[tuple[int, int]]]:
    """:func:`uses_of` for a :class:`CoreProgram` (its rows and segment lists)."""
    seg = program.segments
    return uses_of(_ints(program.ptr), _ints(program.target), _ints(seg.start), _ints(seg.length),
                   _ints(seg.offset), _ints(seg.base), _ints(seg.count), _ints(seg.first),
                   program.config.neuron_index_bits)


def accumulate(active: list[bool], uses: list[list[tuple[int, int]]], weight: list[int],
               n_neurons: int) -> tuple[list[int], int]:
    """Phase 1: ``(acc, sops)``. ``acc[n]`` sums ``weight[s]`` (as at the start of the step) over
    the uses ``(n, s)`` of every active axon; ``sops`` counts the uses visited."""
    acc = [0] * n_neurons
    sops = 0
    for a, on in enumerate(active):
        if on:
            for n, s in uses[a]:
                acc[n] += weight[s]
                sops += 1
    return acc, sops


def leak(v: int, leak_shift: int) -> int:
    """Phase 2: ``v1 = v - (v >> leak_shift)`` (no leak for 0); stays in the ``V``-bit range."""
    return decay(v, leak_shift)


def integrate(v1: int, acc: int, bias: int, V: int) -> int:
    """Phase 2: ``v2 = sat_V(v1 + acc + bias)``, the sum formed at full precision."""
    return sat(v1 + acc + bias, V)


def threshold_of(threshold: int, theta: int) -> int:
    """Phase 2: ``thr = threshold + theta`` (theta from the start of the step), full precision."""
    return threshold + theta


def neuron_update(v: int, refrac: int, acc: int, *, leak_shift: int, bias: int, threshold: int,
                  theta: int, V: int) -> tuple[int, int, bool, int]:
    """Phase 2 for one neuron, before winner-take-all: ``(v, refrac, candidate, margin)``.

    Refractory (``refrac > 0``): ``refrac - 1``, ``v`` held, input and bias discarded, not a
    candidate. Otherwise ``v2 = sat_V(leak(v) + acc + bias)`` is the new ``v``, and the
    neuron is a candidate when ``margin = v2 - thr >= 0``.
    """
    if refrac > 0:
        return v, refrac - 1, False, 0
    v2 = integrate(leak(v, leak_shift), acc, bias, V)
    margin = v2 - threshold_of(threshold, theta)
    return v2, refrac, margin >= 0, margin


def wta(candidate: list[bool], margin: list[int], group: list[int],
        block: list[int] | None = None, block_k: list[int] | None = None) -> tuple[list[bool], list[bool]]:
    """Winner-take-all: ``(fired, loser)`` per neuron.

    A neuron is in an explicit group ``group[n] >= 1`` (which keeps 1 winner), or in the WTA
    block ``block[n] >= 0`` (which keeps ``block_k[block[n]]``), or in none. Candidates in no
    group fire. In each group the candidates are ranked by margin, larger first, ties to the
    lower index; the first ``k`` fire, the others are losers.
    """
    n_neurons = len(candidate)
    block = block if block is not None else [-1] * n_neurons
    members: dict[tuple[str, int], list[int]] = {}
    for n in range(n_neurons):
        if candidate[n]:
            if group[n] >= 1:
                members.setdefault(("group", group[n]), []).append(n)
            elif block[n] >= 0:
                members.setdefault(("block", block[n]), []).append(n)
    fired = [candidate[n] and group[n] == 0 and block[n] < 0 for n in range(n_neurons)]
    loser = [False] * n_neurons
    for (kind, g), neurons in members.items():
        k = 1 if kind == "group" else block_k[g]
        ranked = sorted(neurons, key=lambda n: (-margin[n], n))
        for i, n in enumerate(ranked):
            if i < k:
                fired[n] = True
            else:
                loser[n] = True
    return fired, loser


def firing_order(fired: list[bool], group: list[int], block: list[int]) -> list[int]:
    """Phase 3: the fired neurons in firing order: those in no group in increasing index, then
    the WTA winners (explicit groups and blocks) in increasing index."""
    alone = [n for n, f in enumerate(fired) if f and group[n] == 0 and block[n] < 0]
    winners = [n for n, f in enumerate(fired) if f and (group[n] != 0 or block[n] >= 0)]
    return alone + winners


def reset(margin: int, reset_mode: int) -> int:
    """``v`` of a neuron that fires: 0 (reset to zero) or ``v2 - thr`` (by subtraction: the
    margin, ``0 <= margin <= v2``)."""
    return 0 if reset_mode == RESET_TO_ZERO else margin


def trace_jump(decayed: int, jump: int, spiked: bool, X: int) -> int:
    """Phase 4: the decayed trace, plus ``jump`` (saturating, ``usat_X``) when it spiked."""
    return usat(decayed + jump, X) if spiked else decayed


def dw(amplitude: int, trace: int, w: int, lp: LearningParams) -> int:
    """``dw(A, trace, w)`` of phase 4: ``(A * trace) >> shift``, or with the soft bound
    ``(A * trace * u * (R - u)) >> shift`` where ``u = w - w_min``, ``R = w_max - w_min``."""
    if not lp.soft_bound:
        return (amplitude * trace) >> lp.shift
    R = lp.w_max - lp.w_min
    u = w - lp.w_min
    assert 0 <= u <= R
    return (amplitude * trace * u * (R - u)) >> lp.shift


def depress(w: int, yd: int, lp: LearningParams) -> int:
    """LTD (phase 4 (a)): ``max(w - dw(a_minus, yd, w), w_min)``, ``yd`` the decayed post trace."""
    return max(w - dw(lp.a_minus, yd, w, lp), lp.w_min)


def potentiate(w: int, xn: int, lp: LearningParams) -> int:
    """LTP (phase 4 (b)): ``min(w + dw(a_plus, xn, w), w_max)``, ``xn`` the new pre trace."""
    return min(w + dw(lp.a_plus, xn, w, lp), lp.w_max)


def ltd_pass(weight: list[int], active: list[bool], uses: list[list[tuple[int, int]]], plastic: list[bool],
             yd: list[int], lp: LearningParams) -> list[int]:
    """Phase 4 (a), LTD: ``depress`` of every plastic use ``(n, s)`` of every active axon, in
    increasing axon and use order, with ``yd[n]``, the decayed post trace of its target; a word
    shared by several uses is depressed once per use, each time from the value left before."""
    weight = list(weight)
    for a, on in enumerate(active):
        if on:
            for n, s in uses[a]:
                if plastic[s]:
                    weight[s] = depress(weight[s], yd[n], lp)
    return weight


def plastic_by_target(uses: list[list[tuple[int, int]]], plastic: list[bool],
                      n_neurons: int) -> list[list[tuple[int, int]]]:
    """The plastic uses of every neuron as ``(a, s)``, in increasing axon (phase 4 (b))."""
    of: list[list[tuple[int, int]]] = [[] for _ in range(n_neurons)]
    for a, mine in enumerate(uses):
        for n, s in mine:
            if plastic[s]:
                of[n].append((a, s))
    return of


def ltp_pass(weight: list[int], order: list[int], plastic_of: list[list[tuple[int, int]]],
             xn: list[int], lp: LearningParams) -> list[int]:
    """Phase 4 (b), LTP: ``potentiate`` of every plastic use ``(a, s)`` of every fired neuron,
    neurons in firing ``order`` (:func:`firing_order`), uses in increasing axon (``plastic_of``,
    from :func:`plastic_by_target`), with ``xn[a]``, the new pre trace of its axon."""
    weight = list(weight)
    for n in order:
        for a, s in plastic_of[n]:
            weight[s] = potentiate(weight[s], xn[a], lp)
    return weight


def theta_update(theta: int, fired: bool, *, theta_inc: int, theta_decay_shift: int, V: int) -> int:
    """Phase 4: ``usat_(V-1)(decay(theta) + (theta_inc if fired else 0))``."""
    return usat(decay(theta, theta_decay_shift) + (theta_inc if fired else 0), V - 1)


# -- the program as plain Python lists ---------------------------------------------------------------
def _ints(array) -> list[int]:
    return [int(v) for v in np.asarray(array).tolist()]


def _bools(array) -> list[bool]:
    return [bool(v) for v in np.asarray(array).tolist()]


class _Core:
    """The program (read-only) as plain lists, and the state (mutable) as plain lists."""

    def __init__(self, program: CoreProgram, state: CoreState):
        # program and state were checked by sim.checks.run_arguments
        cfg: CoreConfig = program.config
        self.cfg = cfg
        self.V = cfg.membrane_bits
        self.C = cfg.accumulator_bits
        self.X = cfg.trace_bits
        self.n_inputs = int(program.n_inputs)
        self.n_neurons = program.n_neurons
        self.n_axons = program.n_axons
        self.n_synapses = program.n_synapses
        # synapses: rows and segments (section 3)
        self.uses = program_uses(program)
        self.plastic = _bools(program.plastic)
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
        block, block_k = program.wta_blocks.block_of(program.n_neurons)
        self.block, self.block_k = _ints(block), _ints(block_k)
        self.route = _ints(program.route)
        self.outputs = _ints(program.outputs)
        # learning parameters (section 4)
        self.lp = program.learning            # frozen, plain int / bool fields
        # plastic uses of each neuron, for LTP, in increasing axon
        self.plastic_of = plastic_by_target(self.uses, self.plastic, self.n_neurons)
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
        acc, sops = accumulate(active, self.uses, self.weight, self.n_neurons)
        lo, hi = -(1 << (self.C - 1)), (1 << (self.C - 1)) - 1
        for n in range(self.n_neurons):
            # cannot fail for a validated program (section 3, accumulator bound)
            assert lo <= acc[n] <= hi, f"accumulator of neuron {n} = {acc[n]} left the {self.C}-bit range"
        return active, acc, sops

    def phase2_update_neurons(self, acc: list[int]) -> list[bool]:
        """Phase 2: leak, integrate, saturate, compare; winner-take-all; reset and refractory."""
        candidate = [False] * self.n_neurons
        margin = [0] * self.n_neurons
        for n in range(self.n_neurons):
            self.v[n], self.refrac[n], candidate[n], margin[n] = neuron_update(
                self.v[n], self.refrac[n], acc[n], leak_shift=self.leak_shift[n], bias=self.bias[n],
                threshold=self.threshold[n], theta=self.theta[n], V=self.V)
        fired, loser = wta(candidate, margin, self.wta_group, self.block, self.block_k)
        for n in range(self.n_neurons):
            if loser[n]:
                self.v[n] = 0                              # loser: no refractory, no theta increment
            elif fired[n]:
                self.v[n] = reset(margin[n], self.reset_mode[n])
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

    def phase4_learn(self, active: list[bool], fired: list[bool]) -> None:
        """Phase 4: traces decay then jump; LTD pass (a); LTP pass (b); theta."""
        lp, X = self.lp, self.X
        xd = [decay(x, lp.pre_decay_shift) for x in self.x]
        yd = [decay(y, lp.post_decay_shift) for y in self.y]
        xn = [trace_jump(xd[a], lp.pre_jump, active[a], X) for a in range(self.n_axons)]
        yn = [trace_jump(yd[n], lp.post_jump, fired[n], X) for n in range(self.n_neurons)]

        # (a) LTD: pre spike now, post spikes in the past; (b) LTP: post spike now, pre spikes in
        # the past or now
        self.weight = ltd_pass(self.weight, active, self.uses, self.plastic, yd, lp)
        order = firing_order(fired, self.wta_group, self.block)
        self.weight = ltp_pass(self.weight, order, self.plastic_of, xn, lp)
        self.x = xn
        self.y = yn

        # Theta, for every neuron, from its value at the start of the step
        if self.cfg.adaptive_threshold:
            for n in range(self.n_neurons):
                self.theta[n] = theta_update(self.theta[n], fired[n], theta_inc=self.theta_inc[n],
                                             theta_decay_shift=self.theta_decay_shift[n], V=self.V)


# -- public API ----------------------------------------------------------------------------------
def run(program: CoreProgram, inputs, *, learn: bool = False, state: CoreState | None = None,
        record_neurons: bool = False) -> RunResult:
    """Run ``T`` steps (spec section 5) from ``state`` (default: the program's initial state).

    ``inputs`` is bool ``[T, n_inputs]``. ``state`` is not modified. The arguments are
    checked as in the golden model (:mod:`neurocore.sim.checks`).
    """
    inputs, learn, state = run_arguments(program, inputs, learn=learn, state=state, batched=False)
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
    inputs, learn, state = run_arguments(program, inputs, learn=learn, state=state, batched=True)
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


# -- the chip (section 9) ------------------------------------------------------------------------
def chip_remote_spikes(chip, fired_per_core) -> list[list[bool]]:
    """Section 9: the host-axon spikes the remote entries of this step's fired neurons give
    every core in the next step."""
    arriving = [[False] * p.n_inputs for p in chip.cores]
    for k, fired in enumerate(fired_per_core):
        table = chip.remote[k]
        for n, spiked in enumerate(fired):
            if spiked:
                for e in range(int(table.start[n]), int(table.start[n + 1])):
                    arriving[int(table.core[e])][int(table.axon[e])] = True
    return arriving


def run_chip_batch(chip, inputs, *, learn: bool = False, states=None):
    """For each sample: clear every core (section 6), run ``T`` chip steps (section 9).

    ``inputs`` is bool ``[B, T, chip.n_inputs]``. Returns ``(spikes bool [B, T, n_outputs],
    sops int [B], states)``: the output columns in core order, one final state per core.
    """
    per_core, learn, states = chip_arguments(chip, inputs, learn=learn, states=states, batched=True)
    cores = [_Core(p, st) for p, st in zip(chip.cores, states)]
    B, T = np.asarray(inputs).shape[:2]
    spikes = np.zeros((B, T, chip.n_outputs), bool)
    sops = np.zeros(B, np.int64)
    rows = [x.tolist() for x in per_core]
    for b in range(B):
        for core in cores:
            core.clear_state()
        arriving = [[False] * p.n_inputs for p in chip.cores]
        for t in range(T):
            fired_all, column = [], 0
            for k, core in enumerate(cores):
                in_t = [x or r for x, r in zip(rows[k][b][t], arriving[k])]
                fired, step_sops = core.step(in_t, learn)
                sops[b] += step_sops
                fired_all.append(fired)
                for n in np.asarray(core.outputs)[chip.to_host[k]].tolist():   # the chip outputs
                    spikes[b, t, column] = fired[n]
                    column += 1
            arriving = chip_remote_spikes(chip, fired_all)
    return spikes, sops, [core.to_state() for core in cores]
