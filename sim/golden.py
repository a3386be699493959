"""The bit-exact golden model of the core, compiled with numba.

It implements docs/core-spec.md, section 5 (one time step in four phases) and section 6
(clear state), and is differentially tested against the line-by-line pure-Python
reference in :mod:`neurocore.sim.reference`.

Engine notes (they do not change the semantics):

* Event-driven integration: only active axons are visited, so the cost of phase 1 grows
  with the number of synaptic operations, not with neurons x axons. Active axons come from
  the host input row of the step and from a list of pending internal axons.
* Arithmetic is done in ``int64``, wider than every quantity of the spec (at most 32-bit
  state, 58-bit learning products), so nothing in this file can wrap; every narrowing to a
  spec width is an explicit ``_sat`` / ``min`` / ``max`` with a comment.
* The hot loop uses the narrowest exact types, which halves its memory traffic: targets as
  ``uint16`` (< 2^16 neurons), weights as ``int16`` (at most 16 bits) and accumulators as
  ``int32`` (at most 32 bits, by the bound ``CoreProgram.validate`` proves).
* ``run_batch`` with learning off runs samples in parallel threads (``numba.prange``):
  after *clear state* nothing a step can change survives (theta changes only when
  learning), so samples are independent.
"""
from __future__ import annotations

import dataclasses

import numba
import numpy as np

from ..hw.program import CoreProgram, CoreState
from ..hw.widths import CONFIG_RANGES
from .checks import run_arguments

__all__ = ["RunResult", "BatchResult", "run", "run_batch", "warmup"]


@dataclasses.dataclass
class RunResult:
    """What one run of ``T`` steps produced."""

    spikes: np.ndarray                 # bool[T, n_outputs]; column j is neuron outputs[j]
    state: CoreState                   # state after the last step
    sops: int                          # synaptic operations (phase-1 visits of (axon, synapse))
    neuron_spikes: np.ndarray | None   # bool[T, n_neurons] when record_neurons, else None


@dataclasses.dataclass
class BatchResult:
    """What a batch of samples produced (each sample starts from a cleared state)."""

    spikes: np.ndarray   # bool[B, T, n_outputs]
    sops: np.ndarray     # int64[B]
    state: CoreState     # state after the last sample


# The kernels' narrow types must hold the widest core hw/widths.py allows (module docstring).
if not (CONFIG_RANGES["neurons"][1] <= 1 << 16 and CONFIG_RANGES["weight_bits"][1] <= 16
        and CONFIG_RANGES["accumulator_bits"][1] <= 32):
    raise ImportError("hw/widths.py allows a core wider than the golden model's uint16 targets, "
                      "int16 weights or int32 accumulators: widen them in sim/golden.py")

# Rows of the packed neuron-parameter matrix (int64[8, n_neurons]).
_THRESHOLD, _LEAK, _RESET, _REFRACTORY, _BIAS, _THETA_INC, _THETA_DECAY, _GROUP = range(8)
# Entries of the packed learning-parameter vector (int64[10]).
(_A_PLUS, _A_MINUS, _SHIFT, _PRE_DECAY, _POST_DECAY, _PRE_JUMP, _POST_JUMP, _W_MIN, _W_MAX,
 _SOFT) = range(10)
# Entries of the packed width vector (int64[5]).
_V_MIN, _V_MAX, _THETA_MAX, _TRACE_MAX, _GROUPS = range(5)


@numba.njit(cache=True, inline="always")
def _sat(value, low, high):
    """Clamp to ``low..high`` (spec: sat_B / usat_B / clamp)."""
    return min(max(value, low), high)


@numba.njit(cache=True, inline="always")
def _decay(value, shift):
    """``value - (value >> shift)`` for ``shift > 0``, else ``value`` (leak, trace and theta decay).

    ``>>`` on int64 is arithmetic (floor), as the spec demands; for a value in a B-bit range
    the result stays in that range (|value >> k| <= |value| with the same sign).
    """
    if shift > 0:
        return value - (value >> shift)
    return value


@numba.njit(cache=True, inline="always")
def _dw(amplitude, trace, w, lp):
    """Weight change magnitude (spec section 5, phase 4); always >= 0.

    Plain: (A * trace) >> shift, at most 8 + 16 bits before the shift.
    Soft bound: (A * trace * u * (R - u)) >> shift with u = w - w_min, R = w_max - w_min;
    at most 8 + 16 + 2 * 17 = 58 bits, inside int64.
    """
    product = amplitude * trace
    if lp[_SOFT] != 0:
        u = w - lp[_W_MIN]
        product = product * u * (lp[_W_MAX] - lp[_W_MIN] - u)
    return product >> lp[_SHIFT]


@numba.njit(cache=True)
def _run_sample(inputs, n_inputs, ptr, target, weight, plastic, seg_ptr, seg_base, seg_count, seg_first,
                block, block_k, plastic_start, plastic_word, plastic_axon, params,
                route, out_col, lp, learn_on, widths,
                v, refrac, theta, y, x, pending, out_spikes, neuron_spikes, record_neurons):
    """Run ``inputs.shape[0]`` steps from the given state, in place. Returns the SOP count.

    ``weight`` (int16, every word: rows then kernel words) is modified in place when
    ``learn_on``. ``pending`` (bool per axon) carries internal spikes into the first step and
    out of the last one. ``block[n]`` is neuron ``n``'s WTA block (-1: none), ``block_k`` the
    winners each block keeps.
    """
    n_neurons = v.shape[0]
    n_axons = x.shape[0]
    n_groups = widths[_GROUPS]
    v_min, v_max = widths[_V_MIN], widths[_V_MAX]
    theta_max, trace_max = widths[_THETA_MAX], widths[_TRACE_MAX]

    acc = np.zeros(n_neurons, np.int32)                 # C <= 32-bit accumulators (bound proven)
    active = np.empty(n_axons, np.int64)                # active axon ids of the step
    pend_list = np.empty(n_axons, np.int64)             # internal axons pending for next step
    n_pend = 0
    for a in range(n_axons):
        if pending[a]:
            pend_list[n_pend] = a
            n_pend += 1
    cand = np.empty(n_neurons, np.int64)                # candidates of the step, index order
    margin = np.zeros(n_neurons, np.int64)
    fired = np.zeros(n_neurons, np.bool_)
    best_margin = np.zeros(n_groups + 1, np.int64)      # per WTA group: best margin so far
    best_index = np.full(n_groups + 1, -1, np.int64)    # per WTA group: its neuron (-1: none)
    yd = np.empty(n_neurons, np.int64)
    xn = np.empty(n_axons, np.int64)
    win = np.zeros(n_neurons, np.bool_)                 # structural WTA: in its block's best k
    top_n = np.empty(4, np.int64)                       # the current block's best k (k <= WTA_K_MAX = 4) ...
    top_m = np.empty(4, np.int64)                       # ... and their margins, best first
    order = np.empty(n_neurons, np.int64)               # fired neurons in firing order (phase 3)
    sops = 0

    for t in range(inputs.shape[0]):
        # ---- phase 1: integrate ------------------------------------------------------------
        n_active = 0
        for a in range(n_inputs):
            if inputs[t, a]:
                active[n_active] = a
                n_active += 1
        for i in range(n_pend):
            active[n_active] = pend_list[i]
            n_active += 1
        acc[:] = 0
        for i in range(n_active):
            a = active[i]
            lo, hi = ptr[a], ptr[a + 1]
            sops += hi - lo
            for s in range(lo, hi):
                acc[target[s]] += weight[s]             # weight as at the start of the step
            for k in range(seg_ptr[a], seg_ptr[a + 1]):   # then its segments (shared rows)
                base, first, count = seg_base[k], seg_first[k], seg_count[k]
                sops += count
                for j in range(count):
                    acc[first + j] += weight[base + j]

        # ---- phase 2: update neurons in index order -----------------------------------------
        n_cand = 0
        for n in range(n_neurons):
            fired[n] = False
            if refrac[n] > 0:
                refrac[n] -= 1                          # input and bias discarded, v held
                continue
            v1 = _decay(v[n], params[_LEAK, n])         # leak: v - (v >> k), stays in V bits
            # v1 + acc + bias needs max(V, C) + 2 bits (int64 here), then sat_V.
            v2 = _sat(v1 + np.int64(acc[n]) + params[_BIAS, n], v_min, v_max)
            thr = params[_THRESHOLD, n] + theta[n]      # <= 2^V - 2, full precision
            v[n] = v2
            if v2 >= thr:
                cand[n_cand] = n
                n_cand += 1
                m = v2 - thr
                margin[n] = m
                g = params[_GROUP, n]
                # WTA: largest margin wins, ties to the lowest index (strict > in index order).
                if g > 0 and (best_index[g] < 0 or m > best_margin[g]):
                    best_index[g] = n
                    best_margin[g] = m

        # ---- structural WTA: each block's best k (blocks are consecutive, candidates in index
        # order, so one block is ranked at a time; a later equal margin ranks below) ----------
        cur, kept = -1, 0
        for i in range(n_cand + 1):
            b = block[cand[i]] if i < n_cand else -1
            if b != cur:
                for j in range(kept):
                    win[top_n[j]] = True
                cur, kept = b, 0
            if b < 0:
                continue
            n = cand[i]
            m = margin[n]
            k = block_k[b]
            pos = kept
            while pos > 0 and m > top_m[pos - 1]:
                pos -= 1
            if pos < k:
                last = min(kept, k - 1)
                for j in range(last, pos, -1):
                    top_n[j] = top_n[j - 1]
                    top_m[j] = top_m[j - 1]
                top_n[pos] = n
                top_m[pos] = m
                kept = min(kept + 1, k)

        # ---- WTA resolution, reset, phase 3: route ------------------------------------------
        n_pend = 0
        n_order = 0
        for i in range(n_cand):                         # firing order: neurons in no group first
            n = cand[i]
            if params[_GROUP, n] == 0 and block[n] < 0:
                order[n_order] = n
                n_order += 1
        for i in range(n_cand):
            n = cand[i]
            g = params[_GROUP, n]
            if (g > 0 and best_index[g] != n) or (block[n] >= 0 and not win[n]):
                v[n] = 0                                # WTA loser: no spike, v = 0
                continue
            if g > 0 or block[n] >= 0:
                order[n_order] = n                      # then the WTA winners
                n_order += 1
            fired[n] = True
            if params[_RESET, n] == 0:
                v[n] = 0                                # reset to zero
            else:
                v[n] = margin[n]                        # reset by subtraction: v2 - thr, in 0..v2
            refrac[n] = params[_REFRACTORY, n]
            r = route[n]
            if r >= 0:
                pend_list[n_pend] = r                   # delivered in step t + 1
                n_pend += 1
            c = out_col[n]
            if c >= 0:
                out_spikes[t, c] = True
            if record_neurons:
                neuron_spikes[t, n] = True
        for i in range(n_cand):
            best_index[params[_GROUP, cand[i]]] = -1
            win[cand[i]] = False

        # ---- phase 4: learn ----------------------------------------------------------------
        if learn_on:
            for n in range(n_neurons):
                # theta: decay, then + theta_inc on a spike, usat_(V-1)
                th = _decay(theta[n], params[_THETA_DECAY, n])
                if fired[n]:
                    th = min(th + params[_THETA_INC, n], theta_max)
                theta[n] = th
                yd[n] = _decay(y[n], lp[_POST_DECAY])   # decayed, before the jump
            for a in range(n_axons):
                xn[a] = _decay(x[a], lp[_PRE_DECAY])
            for i in range(n_active):
                a = active[i]
                xn[a] = min(xn[a] + lp[_PRE_JUMP], trace_max)   # usat_X
            # (a) LTD on the uses of active axons, in increasing axon (a shared word is
            # updated once per use, in order), with the pre-jump post trace yd.
            ltd_axons = np.sort(active[:n_active])
            for i in range(n_active):
                a = ltd_axons[i]
                for s in range(ptr[a], ptr[a + 1]):
                    if plastic[s]:
                        w = np.int64(weight[s])
                        w = max(w - _dw(lp[_A_MINUS], yd[target[s]], w, lp), lp[_W_MIN])
                        weight[s] = w
                for k in range(seg_ptr[a], seg_ptr[a + 1]):
                    base, first = seg_base[k], seg_first[k]
                    for j in range(seg_count[k]):
                        s = base + j
                        if plastic[s]:
                            w = np.int64(weight[s])
                            w = max(w - _dw(lp[_A_MINUS], yd[first + j], w, lp), lp[_W_MIN])
                            weight[s] = w
            # (b) LTP on the plastic uses of fired neurons, in firing order, each in increasing
            # axon, with the post-jump pre trace xn.
            for i in range(n_order):
                n = order[i]
                for j in range(plastic_start[n], plastic_start[n + 1]):
                    s = plastic_word[j]
                    w = np.int64(weight[s])
                    w = min(w + _dw(lp[_A_PLUS], xn[plastic_axon[j]], w, lp), lp[_W_MAX])
                    weight[s] = w
            for n in range(n_neurons):
                y[n] = yd[n]
            for i in range(n_cand):
                n = cand[i]
                if fired[n]:
                    y[n] = min(y[n] + lp[_POST_JUMP], trace_max)  # usat_X
            for a in range(n_axons):
                x[a] = xn[a]

    pending[:] = False
    for i in range(n_pend):
        pending[pend_list[i]] = True
    return sops


@numba.njit(cache=True, parallel=True)
def _run_batch_parallel(inputs, n_inputs, ptr, target, weight, plastic, seg_ptr, seg_base, seg_count, seg_first,
                        block, block_k, plastic_start, plastic_word, plastic_axon,
                        params, route, out_col, lp, widths, state_v, state_refrac, theta, state_y,
                        state_x, state_pending, out_spikes, sops):
    """Learning-off batch: every sample from a cleared state, in parallel threads.

    The ``state_*`` arrays receive the state after the last sample (theta is unchanged
    without learning).
    """
    n_neurons = theta.shape[0]
    n_axons = state_x.shape[0]
    last = inputs.shape[0] - 1
    for b in numba.prange(inputs.shape[0]):
        v = np.zeros(n_neurons, np.int64)
        refrac = np.zeros(n_neurons, np.int64)
        th = theta.copy()
        y = np.zeros(n_neurons, np.int64)
        x = np.zeros(n_axons, np.int64)
        pending = np.zeros(n_axons, np.bool_)
        dummy = np.zeros((0, n_neurons), np.bool_)
        sops[b] = _run_sample(inputs[b], n_inputs, ptr, target, weight, plastic, seg_ptr, seg_base,
                              seg_count, seg_first, block, block_k, plastic_start, plastic_word,
                              plastic_axon, params, route, out_col, lp, False, widths,
                              v, refrac, th, y, x, pending, out_spikes[b], dummy, False)
        if b == last:                                   # only one iteration writes the state
            state_v[:] = v
            state_refrac[:] = refrac
            state_y[:] = y
            state_x[:] = x
            state_pending[:] = pending


class _Packed:
    """A program's arrays in the dtypes and layout the kernels take."""

    def __init__(self, program: CoreProgram):
        cfg = program.config
        p = program.neurons
        self.program = program
        self.ptr = program.ptr
        self.target = program.target.astype(np.uint16)
        self.plastic = program.plastic.astype(np.bool_)
        # every axon's segment list resolved to absolute first targets, CSR over the axons
        seg = program.segments
        _, entry, t0 = seg.listed(cfg.neuron_index_bits)
        self.segments = (np.concatenate([[0], np.cumsum(seg.length)]), seg.base[entry], seg.count[entry], t0)
        block, block_k = program.wta_blocks.block_of(program.n_neurons)
        self.blocks = (block, np.concatenate([block_k, [1]]))   # never empty (numba typing)
        self.plastic_uses = program.plastic_uses()              # (start, word, axon)
        self.params = np.stack([p.threshold, p.leak_shift, p.reset_mode, p.refractory, p.bias,
                                p.theta_inc, p.theta_decay_shift, p.wta_group]).astype(np.int64)
        self.route = program.route
        self.out_col = np.full(program.n_neurons, -1, np.int64)
        self.out_col[program.outputs] = np.arange(program.n_outputs)
        lp = program.learning
        self.learn = np.array([lp.a_plus, lp.a_minus, lp.shift, lp.pre_decay_shift,
                               lp.post_decay_shift, lp.pre_jump, lp.post_jump, lp.w_min, lp.w_max,
                               int(lp.soft_bound)], np.int64)
        v_min, v_max = cfg.membrane_range
        self.widths = np.array([v_min, v_max, cfg.theta_max, cfg.trace_max, cfg.wta_groups], np.int64)


def _run_packed(packed: _Packed, inputs: np.ndarray, learn: bool, state: CoreState,
                record_neurons: bool) -> RunResult:
    """Run one sample on an already packed program; ``state`` is updated in place."""
    program = packed.program
    steps = inputs.shape[0]
    spikes = np.zeros((steps, program.n_outputs), np.bool_)
    neuron_spikes = np.zeros((steps if record_neurons else 0, program.n_neurons), np.bool_)
    weight = state.weight.astype(np.int16)
    sops = _run_sample(inputs, program.n_inputs, packed.ptr, packed.target, weight, packed.plastic,
                       *packed.segments, *packed.blocks, *packed.plastic_uses, packed.params, packed.route,
                       packed.out_col, packed.learn, learn, packed.widths, state.v, state.refrac,
                       state.theta, state.y, state.x, state.pending, spikes, neuron_spikes,
                       record_neurons)
    state.weight[:] = weight
    return RunResult(spikes=spikes, state=state, sops=int(sops),
                     neuron_spikes=neuron_spikes if record_neurons else None)


def run(program: CoreProgram, inputs, *, learn: bool = False, state: CoreState | None = None,
        record_neurons: bool = False) -> RunResult:
    """Run ``program`` for ``T`` steps on host input spikes ``inputs`` (bool ``[T, n_inputs]``).

    ``state`` is the state to start from (it is not modified; default: the state right after
    loading the program). ``learn`` enables phase 4 (STDP, traces, theta). The arguments are
    checked first (:mod:`neurocore.sim.checks`: the program validated, the state fitted to it).
    """
    inputs, learn, state = run_arguments(program, inputs, learn=learn, state=state, batched=False)
    return _run_packed(_Packed(program), inputs, learn, state, record_neurons)


def run_batch(program: CoreProgram, inputs, *, learn: bool = False, state: CoreState | None = None,
              progress: bool = False) -> BatchResult:
    """Run a batch of samples (``inputs``: bool ``[B, T, n_inputs]``), clearing state before each.

    Weights and theta carry from sample to sample (they change only when ``learn``). With
    learning off the samples run in parallel threads; with learning on they run in order.
    ``progress`` shows a progress bar over samples (learning on only; the parallel path is
    one call). The arguments are checked first, as for :func:`run`.
    """
    inputs, learn, state = run_arguments(program, inputs, learn=learn, state=state, batched=True)
    packed = _Packed(program)
    batch, steps = inputs.shape[0], inputs.shape[1]
    spikes = np.zeros((batch, steps, program.n_outputs), np.bool_)
    sops = np.zeros(batch, np.int64)
    if not learn:
        state.clear()
        _run_batch_parallel(inputs, program.n_inputs, packed.ptr, packed.target,
                            state.weight.astype(np.int16), packed.plastic, *packed.segments,
                            *packed.blocks, *packed.plastic_uses, packed.params, packed.route, packed.out_col,
                            packed.learn, packed.widths, state.v, state.refrac, state.theta,
                            state.y, state.x, state.pending, spikes, sops)
        return BatchResult(spikes=spikes, sops=sops, state=state)
    samples = range(batch)
    if progress:
        from tqdm import tqdm
        samples = tqdm(samples, desc="samples", unit="sample")
    for b in samples:
        state.clear()
        result = _run_packed(packed, inputs[b], True, state, False)
        spikes[b] = result.spikes
        sops[b] = result.sops
    return BatchResult(spikes=spikes, sops=sops, state=state)


def warmup() -> None:
    """Compile (or load from cache) every kernel on a tiny program, so timings exclude it."""
    from ..hw.config import CoreConfig
    from ..hw.program import LearningParams, NeuronParams

    config = CoreConfig(neurons=2, axons=2, synapses=2)
    program = CoreProgram.from_synapses(
        config, n_inputs=1, n_axons=2, axon=[0, 1], target=[0, 1], weight=[1, 1], plastic=[True, False],
        neurons=NeuronParams.uniform(2, threshold=1), route=[1, -1], outputs=[1],
        learning=LearningParams(a_plus=1, w_max=1))
    inputs = np.ones((1, 2, 1), np.bool_)
    run(program, inputs[0], learn=True)
    run_batch(program, inputs)
