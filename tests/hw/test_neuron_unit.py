"""Tests of ``neurocore.hw.neuron_unit.NeuronUnit`` (spec phase 2 + theta / y part of phase 4).

* ``spec_step`` composes the per-rule functions of ``neurocore.sim.reference`` (the
  line-by-line spec, docs/core-spec.md section 5: phase 2, WTA, reset; theta and post-trace
  updates of phase 4) over the unit's memories. It is checked against the golden model
  (``neurocore.sim.golden``) on random single-step programs.
* The unit is simulated (async Amaranth testbenches) in a harness that owns the memories,
  on many random cases per configuration, including consecutive steps on the same state
  (which also exercises the self-cleaning WTA group table), random backpressure on
  ``fired`` (in the scan and in the commit) and extreme values. Every memory word, the
  ``fired`` stream (as an exact sequence: neurons without a WTA group in index order, then
  the WTA winners in index order) and the cycle count of every pass are compared.
* Structural WTA blocks (k-WTA, ``wta_blocks > 0``): random block ranges mixed with explicit
  groups, against ``reference.wta`` / ``reference.firing_order``, and a directed example.
"""
from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from neurocore.hw.config import CoreConfig
from neurocore.hw.layouts import neuron_param_layout, neuron_state_layout
from neurocore.hw.neuron_unit import NeuronUnit
from neurocore.hw.signatures import WtaBlocksSignature
from neurocore.sim import reference
from test_wta_commit import block_arrays, drive_blocks, random_block_ranges

# Units built only to inspect their signature (or to provoke a ValueError) are never elaborated.
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


# ==== the spec, from the per-rule functions of the reference ===================================
def _update(cfg: CoreConfig, p: dict, state: dict, i: int):
    """``reference.neuron_update`` of neuron ``i``: ``(v, refrac, candidate, margin)``."""
    return reference.neuron_update(state["v"][i], state["refrac"][i], state["acc"][i],
                                   leak_shift=p["leak_shift"], bias=p["bias"], threshold=p["threshold"],
                                   theta=state["theta"][i], V=cfg.membrane_bits)


def spec_step(cfg: CoreConfig, params: list[dict], state: dict, n: int, learn: bool,
              post_decay_shift: int, post_jump: int, blocks=None):
    """One step of phase 2 (+ WTA, reset) and the theta / y part of phase 4 over neurons
    ``0 .. n-1``, composed from ``neurocore.sim.reference``'s rules (neuron_update, wta, reset,
    theta_update, decay, trace_jump). ``state`` holds lists ``v, refrac, theta, y, acc``;
    ``blocks`` is ``(block, block_k)`` of the block ranges over ``0 .. n-1`` (None: none);
    returns the new state (a copy, ``acc`` of the active neurons zeroed) and the fired neurons
    in index order."""
    new = {key: list(values) for key, values in state.items()}
    update = [_update(cfg, params[i], state, i) for i in range(n)]
    group = [params[i]["wta_group"] if cfg.wta else 0 for i in range(n)]
    fired, loser = reference.wta([u[2] for u in update], [u[3] for u in update], group,
                                 *(blocks if blocks is not None else ()))
    for i, (v, refrac, _, margin) in enumerate(update):
        p = params[i]
        if loser[i]:
            v = 0                                      # loser: no refractory, no theta increment
        elif fired[i]:
            v, refrac = reference.reset(margin, p["reset_mode"]), p["refractory"]
        new["v"][i], new["refrac"][i], new["acc"][i] = v, refrac, 0
        if learn and cfg.adaptive_threshold:
            new["theta"][i] = reference.theta_update(state["theta"][i], fired[i], theta_inc=p["theta_inc"],
                                                     theta_decay_shift=p["theta_decay_shift"],
                                                     V=cfg.membrane_bits)
        if learn:
            new["y"][i] = reference.trace_jump(reference.decay(state["y"][i], post_decay_shift), post_jump,
                                               fired[i], cfg.trace_bits)
    return new, [i for i in range(n) if fired[i]]


# ==== random cases ==============================================================================
def _pick(rng: random.Random, lo: int, hi: int, *extremes: int, p_extreme: float = 0.3) -> int:
    if extremes and rng.random() < p_extreme:
        return rng.choice(extremes)
    return rng.randint(lo, hi)


def random_neuron(rng: random.Random, cfg: CoreConfig, mode: str, groups: list[int]) -> tuple[dict, dict]:
    """Random (params, state-with-acc) of one neuron; valid per spec section 7."""
    vb = cfg.membrane_bits
    v_min, v_max = cfg.membrane_range
    a_min, a_max = cfg.accumulator_range
    tmax = cfg.theta_max
    small = min(tmax, 1 << (vb // 2))
    th_ok = cfg.adaptive_threshold
    p = dict(
        leak_shift=_pick(rng, 0, vb - 1, 0, 1, vb - 1),
        reset_mode=rng.randint(0, 1),
        refractory=_pick(rng, 0, 255, 0, 1, 255, p_extreme=0.6),
        theta_inc=_pick(rng, 0, tmax, 0, 1, tmax) if th_ok else 0,
        theta_decay_shift=_pick(rng, 0, vb - 1, 0, 1, vb - 1),
        wta_group=rng.choice(groups),
        route_valid=rng.randint(0, 1),
        route=rng.randint(0, (1 << cfg.axon_index_bits) - 1),
        output=rng.randint(0, 1),
    )
    s = dict(
        refrac=0 if rng.random() < 0.65 else _pick(rng, 1, 255, 1, 2, 255),
        y=_pick(rng, 0, cfg.trace_max, 0, 1, cfg.trace_max) if cfg.learning else 0,
    )
    if mode == "tie":
        # equal margins in a few groups: v = 0, no leak, bias = threshold + small k
        t = rng.randint(1, small)
        p.update(threshold=t, leak_shift=0, bias=t + rng.choice([-1, 0, 0, 1, 1, 2]))
        s.update(v=0, theta=0, acc=0)
    elif mode == "fire":
        p.update(threshold=_pick(rng, 1, small, 1), bias=_pick(rng, 0, v_max, v_max))
        s.update(v=_pick(rng, v_min, v_max, v_min, 0, v_max),
                 theta=_pick(rng, 0, small, 0) if th_ok else 0,
                 acc=_pick(rng, 0, a_max, a_max, 0))
    else:   # "random": full ranges with extremes
        p.update(threshold=_pick(rng, 1, tmax, 1, tmax, small, p_extreme=0.5),
                 bias=_pick(rng, v_min, v_max, v_min, v_max, 0, -1, 1))
        s.update(v=_pick(rng, v_min, v_max, v_min, v_max, 0, -1),
                 theta=_pick(rng, 0, tmax, 0, tmax, 1) if th_ok else 0,
                 acc=_pick(rng, a_min, a_max, a_min, a_max, 0))
    return p, s


def random_episode(rng: random.Random, cfg: CoreConfig, n: int):
    """Params and state of all ``cfg.neurons`` words (only ``0..n-1`` active)."""
    mode = rng.choice(["random", "random", "fire", "tie"])
    if cfg.wta:
        choices = [0, 1, 2, cfg.wta_groups] if mode != "tie" else [0, 1, 1, 2]
        groups = [min(g, cfg.wta_groups) for g in choices]
    else:
        groups = [0]
    params, state = [], dict(v=[], refrac=[], theta=[], y=[], acc=[])
    for i in range(cfg.neurons):
        p, s = random_neuron(rng, cfg, mode, groups)
        if cfg.param_classes and i and rng.random() < 0.6:
            # with parameter classes: often a copy of an earlier neuron j whose route is shifted
            # like a layer's (route_i - i = route_j - j), so that the two share a class word
            j = rng.randrange(i)
            p = dict(params[j], route=(params[j]["route"] + i - j) % (1 << cfg.axon_index_bits))
        params.append(p)
        for key in state:
            state[key].append(s[key])
    return params, state, mode


def param_word(cfg: CoreConfig, p: dict) -> dict:
    """The fields of ``p`` that the PARAM word of ``cfg`` has (no theta fields without the
    adaptive threshold, no WTA group without WTA)."""
    members = neuron_param_layout(cfg).members
    return {k: v for k, v in p.items() if k in members}


def class_words(cfg: CoreConfig, params: list[dict]) -> tuple[list[dict], list[int]]:
    """The class table and the neurons' classes of ``params`` (PARAM words with absolute
    routes): a class word holds ``route - n mod 2^aib`` (docs/core-spec.md, section 2; for the
    unit every word's route field is an offset, valid or not)."""
    modulus = 1 << cfg.axon_index_bits
    words, index = [], []
    for i, p in enumerate(params):
        word = dict(param_word(cfg, p), route=(p["route"] - i) % modulus)
        if word not in words:
            words.append(word)
        index.append(words.index(word))
    assert len(words) <= cfg.param_classes
    return words, index


def random_acc(rng: random.Random, cfg: CoreConfig, mode: str) -> list[int]:
    a_min, a_max = cfg.accumulator_range
    if mode == "tie":
        return [0] * cfg.neurons
    if mode == "fire":
        return [_pick(rng, 0, a_max, a_max) for _ in range(cfg.neurons)]
    return [_pick(rng, a_min, a_max, a_min, a_max, 0) for _ in range(cfg.neurons)]


# ==== the model against the golden model =========================================================
def golden_one_step(cfg: CoreConfig, params: list[dict], state: dict, n: int, learn: bool, pds: int, pj: int,
                    ranges=()):
    """One golden-model step of ``n`` neurons from ``state``: one host input per neuron, whose
    one synapse of weight ``acc[i]`` gives it its accumulator (weight_bits == accumulator_bits);
    ``ranges``: WTA block ranges ``(first, size, count, k)``."""
    from neurocore.hw.program import NEURON_FIELDS, CoreProgram, CoreState, LearningParams, NeuronParams, WtaBlocks
    from neurocore.sim import golden

    program = CoreProgram.from_synapses(
        cfg, n_inputs=n, n_axons=n, axon=range(n), target=range(n), weight=state["acc"],
        neurons=NeuronParams(**{f: [p[f] for p in params] for f in NEURON_FIELDS}),
        outputs=np.zeros(0, np.int64), learning=LearningParams(post_decay_shift=pds, post_jump=pj),
        theta=state["theta"])
    if ranges:
        program.wta_blocks = WtaBlocks(*([r[j] for r in ranges] for j in range(4)))
        program.validate()
    start = CoreState.initial(program)
    for key in ("v", "refrac", "theta", "y"):
        getattr(start, key)[:] = state[key]
    return golden.run(program, np.ones((1, n), bool), learn=learn, state=start, record_neurons=True)


@pytest.mark.parametrize("cfg", [
    CoreConfig(neurons=12, axons=12, synapses=12, weight_bits=8, accumulator_bits=8, membrane_bits=8,
               trace_bits=4, wta_groups=3),
    CoreConfig(neurons=12, axons=12, synapses=12, weight_bits=12, accumulator_bits=12, membrane_bits=10,
               trace_bits=8, wta_groups=2),
    CoreConfig(neurons=12, axons=12, synapses=12, weight_bits=16, accumulator_bits=16, membrane_bits=24,
               trace_bits=8, wta_groups=16),
], ids=["v8", "v10", "v24"])
def test_spec_model_matches_golden(cfg):
    """``spec_step`` agrees with the golden model on one-step runs (acc built from synapses)."""
    rng = random.Random(1234 + cfg.membrane_bits)
    for case in range(150):
        n = rng.randint(1, cfg.neurons)
        params, state, mode = random_episode(rng, cfg, n)
        state["acc"] = random_acc(rng, cfg, mode)
        params, state = params[:n], {k: v[:n] for k, v in state.items()}
        learn = rng.random() < 0.7
        pds, pj = rng.randint(0, 15), _pick(rng, 0, cfg.trace_max, 0, cfg.trace_max)
        result = golden_one_step(cfg, params, state, n, learn, pds, pj)
        expect, fired = spec_step(cfg, params, state, n, learn, pds, pj)
        for key in ("v", "refrac", "theta", "y"):
            assert getattr(result.state, key).tolist() == expect[key], (case, key)
        assert np.flatnonzero(result.neuron_spikes[0]).tolist() == fired, case


def test_spec_model_blocks_match_golden():
    """``spec_step`` with block ranges agrees with the golden model (a program with
    ``wta_blocks``): the model the block tests compare the unit with is the spec's."""
    cfg = CoreConfig(neurons=16, axons=16, synapses=16, weight_bits=8, accumulator_bits=8, membrane_bits=8,
                     trace_bits=4, wta_groups=3, wta_blocks=4)
    rng = random.Random(4321)
    block_losers = 0
    for case in range(150):
        n = rng.randint(1, cfg.neurons)
        params, state, mode = random_episode(rng, cfg, n)
        state["acc"] = random_acc(rng, cfg, mode)
        params, state = params[:n], {k: v[:n] for k, v in state.items()}
        ranges = random_block_ranges(rng, n, cfg.wta_blocks)
        block, block_k = block_arrays(ranges, n)
        for i, p in enumerate(params):
            if block[i] >= 0:
                p["wta_group"] = 0
        learn = rng.random() < 0.7
        pds, pj = rng.randint(0, 15), _pick(rng, 0, cfg.trace_max, 0, cfg.trace_max)
        result = golden_one_step(cfg, params, state, n, learn, pds, pj, ranges)
        expect, fired = spec_step(cfg, params, state, n, learn, pds, pj, (block, block_k))
        for key in ("v", "refrac", "theta", "y"):
            assert getattr(result.state, key).tolist() == expect[key], (case, key)
        assert np.flatnonzero(result.neuron_spikes[0]).tolist() == fired, case
        block_losers += sum(1 for i in range(n) if block[i] >= 0 and _update(cfg, params[i], state, i)[2]
                            and i not in fired)
    assert block_losers > 0


# ==== simulation harness ========================================================================
class Harness(Elaboratable):
    """The unit plus the memories the core's top level would own, connected port to port.

    Read ports are non-transparent (the unit must not need transparency).
    """

    def __init__(self, cfg: CoreConfig, params: list[dict], state: dict):
        self.cfg = cfg
        self.unit = NeuronUnit(config=cfg)
        # address width must be neuron_index_bits, which is 1 (not 0) for a single neuron
        depth = max(cfg.neurons, 2)
        params = params + params[:1] * (depth - cfg.neurons)
        state = {k: v + v[:1] * (depth - cfg.neurons) for k, v in state.items()}
        if cfg.param_classes:      # the class table, and each neuron's class
            words, index = class_words(cfg, params[:cfg.neurons])
            self.nclass = Memory(shape=NeuronUnit.class_shape(cfg), depth=depth,
                                 init=index + index[:1] * (depth - cfg.neurons))
            self.param = Memory(shape=neuron_param_layout(cfg), depth=max(cfg.param_classes, 2),
                                init=words)
        else:
            self.nclass = None
            self.param = Memory(shape=neuron_param_layout(cfg), depth=depth,
                                init=[param_word(cfg, p) for p in params])
        self.state = Memory(shape=neuron_state_layout(cfg), depth=depth,
                            init=[{"v": v, "refrac": r} for v, r in zip(state["v"], state["refrac"])])
        self.acc = Memory(shape=NeuronUnit.acc_shape(cfg), depth=depth, init=state["acc"])
        self.theta = (Memory(shape=NeuronUnit.theta_shape(cfg), depth=depth, init=state["theta"])
                      if cfg.adaptive_threshold else None)
        self.y = (Memory(shape=NeuronUnit.y_shape(cfg), depth=depth, init=state["y"])
                  if cfg.learning else None)

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = self.unit
        m.submodules.param = self.param
        m.submodules.state = self.state
        m.submodules.acc = self.acc
        wiring.connect(m, unit.param_rd, self.param.read_port())
        if self.nclass is not None:
            m.submodules.nclass = self.nclass
            wiring.connect(m, unit.nclass_rd, self.nclass.read_port())
        wiring.connect(m, unit.state_rd, self.state.read_port())
        wiring.connect(m, unit.state_wr, self.state.write_port())
        wiring.connect(m, unit.acc_rd, self.acc.read_port())
        wiring.connect(m, unit.acc_wr, self.acc.write_port())
        if self.theta is not None:
            m.submodules.theta = self.theta
            wiring.connect(m, unit.theta_rd, self.theta.read_port())
            if self.cfg.learning:
                wiring.connect(m, unit.theta_wr, self.theta.write_port())
        if self.y is not None:
            m.submodules.y = self.y
            wiring.connect(m, unit.y_rd, self.y.read_port())
            wiring.connect(m, unit.y_wr, self.y.write_port())
        return m


def load(ctx, h: Harness, params: list[dict] | None, state: dict, keys=("v", "refrac", "theta", "y", "acc")):
    if params is not None and h.nclass is not None:
        words, index = class_words(h.cfg, params[:h.cfg.neurons])
        for c, word in enumerate(words):
            ctx.set(h.param.data[c], word)
        for i, c in enumerate(index):
            ctx.set(h.nclass.data[i], c)
        params = None
    for i in range(h.cfg.neurons):
        if params is not None:
            ctx.set(h.param.data[i], param_word(h.cfg, params[i]))
        if "v" in keys:
            ctx.set(h.state.data[i], {"v": state["v"][i], "refrac": state["refrac"][i]})
        if "acc" in keys:
            ctx.set(h.acc.data[i], state["acc"][i])
        if "theta" in keys and h.theta is not None:
            ctx.set(h.theta.data[i], state["theta"][i])
        if "y" in keys and h.y is not None:
            ctx.set(h.y.data[i], state["y"][i])


def dump(ctx, h: Harness) -> dict:
    out = dict(v=[], refrac=[], theta=[], y=[], acc=[])
    for i in range(h.cfg.neurons):
        word = ctx.get(h.state.data[i])
        out["v"].append(int(word.v))
        out["refrac"].append(int(word.refrac))
        out["acc"].append(ctx.get(h.acc.data[i]))
        out["theta"].append(ctx.get(h.theta.data[i]) if h.theta is not None else 0)
        out["y"].append(ctx.get(h.y.data[i]) if h.y is not None else 0)
    return out


async def run_pass(ctx, h: Harness, rng: random.Random, n: int, learn: bool, pds: int, pj: int,
                   p_ready: float):
    """One pass: returns (fired words, cycles from the start cycle to the done cycle, stalls)."""
    u = h.unit
    ctx.set(u.n_neurons, n)
    ctx.set(u.learn, learn)
    if h.cfg.learning:
        ctx.set(u.post_decay_shift, pds)
        ctx.set(u.post_jump, pj)
    assert not ctx.get(u.busy)
    ctx.set(u.start, 1)
    fired, cycle, stalls = [], 0, 0
    while True:
        ready = rng.random() < p_ready
        ctx.set(u.fired.ready, ready)
        if ctx.get(u.fired.valid):
            if ready:
                word = ctx.get(u.fired.payload)
                fired.append((int(word.neuron), int(word.route_valid), int(word.route), int(word.output)))
            else:
                stalls += 1
        if ctx.get(u.done):
            assert not ctx.get(u.busy)
            assert not ctx.get(u.fired.valid)
            break
        assert ctx.get(u.busy) == (cycle > 0), cycle
        await ctx.tick()
        ctx.set(u.start, 0)
        cycle += 1
        assert cycle < 10 * (n + 10) + 50 * (stalls + 1), "pass does not finish"
    await ctx.tick()
    assert not ctx.get(u.done), "done is a one-cycle pulse"
    return fired, cycle, stalls


def expected_cycles(n: int, wta_candidates: int, classes: bool = False) -> int:
    """Documented cost of a pass with ``fired.ready`` high (start cycle -> done cycle); with
    parameter classes the scan has one stage more."""
    if n == 0:
        return 2
    return n + 4 + classes + (wta_candidates + 2 if wta_candidates else 0)


def emission_order(cfg: CoreConfig, params: list[dict], fired: list[int]) -> list[int]:
    """The order in which the unit emits a step's spikes (``fired`` in index order): neurons
    without a WTA group during the scan, then the WTA winners in the commit."""
    def wta(i):
        return cfg.wta and params[i]["wta_group"] != 0
    return [i for i in fired if not wta(i)] + [i for i in fired if wta(i)]


SIM_CONFIGS = {
    # tiny widths: saturation on both sides is common
    "v8_g3": (CoreConfig(neurons=16, axons=16, synapses=16, membrane_bits=8, accumulator_bits=8,
                         weight_bits=8, trace_bits=4, wta_groups=3), 40),
    # accumulator wider than the membrane, non power-of-two neuron count, one group
    "v12_c16_n13": (CoreConfig(neurons=13, axons=32, synapses=16, membrane_bits=12, accumulator_bits=16,
                               trace_bits=8, wta_groups=1), 40),
    # default widths
    "v24_g16": (CoreConfig(neurons=8, axons=64, synapses=16), 40),
    # widest membrane and accumulator, 16-bit traces
    "v32_c32_x16": (CoreConfig(neurons=16, axons=16, synapses=16, membrane_bits=32, accumulator_bits=32,
                               weight_bits=16, trace_bits=16, wta_groups=5), 40),
    # accumulator narrower than the membrane, 256 groups
    "v20_c8_g256": (CoreConfig(neurons=12, axons=16, synapses=16, membrane_bits=20, accumulator_bits=8,
                               weight_bits=8, trace_bits=6, wta_groups=256), 40),
    # no learning, no WTA, no adaptive threshold: the minimal unit
    "bare": (CoreConfig(neurons=10, axons=16, synapses=16, membrane_bits=16, accumulator_bits=12,
                        learning=False, wta=False, adaptive_threshold=False), 40),
    # learning without adaptive threshold
    "learn_no_theta": (CoreConfig(neurons=12, axons=16, synapses=16, membrane_bits=10, accumulator_bits=10,
                                  wta_groups=4, adaptive_threshold=False), 40),
    # adaptive threshold as a fixed offset (no learning)
    "theta_no_learn": (CoreConfig(neurons=9, axons=16, synapses=16, membrane_bits=14, accumulator_bits=14,
                                  wta_groups=2, learning=False), 40),
    # a single neuron
    "n1": (CoreConfig(neurons=1, axons=2, synapses=2, membrane_bits=8, accumulator_bits=8,
                      wta_groups=1), 40),
    # parameter classes: PARAM is a class table, NCLASS the neurons' classes; with and without WTA
    "classes_v8_g3": (CoreConfig(neurons=16, axons=16, synapses=16, membrane_bits=8, accumulator_bits=8,
                                 weight_bits=8, trace_bits=4, wta_groups=3, param_classes=16), 40),
    "classes_bare": (CoreConfig(neurons=10, axons=8, synapses=16, membrane_bits=16, accumulator_bits=12,
                                learning=False, wta=False, adaptive_threshold=False, param_classes=16), 40),
}


@pytest.mark.parametrize("name", list(SIM_CONFIGS))
def test_unit_matches_spec(name):
    cfg, episodes = SIM_CONFIGS[name]
    rng = random.Random(f"neuron-unit-{name}")
    params0, state0, _ = random_episode(rng, cfg, cfg.neurons)
    state0["acc"] = random_acc(rng, cfg, "random")
    h = Harness(cfg, params0, state0)
    stats = {"passes": 0, "candidates": 0, "fired": 0, "stalls": 0}

    async def testbench(ctx):
        first = True
        for ep in range(episodes):
            n = cfg.neurons if first or rng.random() < 0.4 else rng.randint(0, cfg.neurons)
            if first:   # memories already hold params0 / state0 from `init=`
                params, state, mode = params0, state0, "random"
            else:
                params, state, mode = random_episode(rng, cfg, n)
                load(ctx, h, params, state)
            first = False
            # a few consecutive steps on the same state, fresh accumulators each step
            for step in range(rng.choice([1, 1, 2, 3])):
                if step > 0:
                    state["acc"] = random_acc(rng, cfg, mode)
                    load(ctx, h, None, state, keys=("acc",))
                assert dump(ctx, h) == state
                learn = cfg.learning and rng.random() < 0.6
                pds, pj = _pick(rng, 0, 15, 0, 15), _pick(rng, 0, cfg.trace_max, 0, cfg.trace_max)
                p_ready = rng.choice([1.0, 1.0, 0.7, 0.3])
                expect, fired = spec_step(cfg, params, state, n, learn, pds, pj)
                got_fired, cycles, stalls = await run_pass(ctx, h, rng, n, learn, pds, pj, p_ready)
                got = dump(ctx, h)
                for key in expect:
                    assert got[key] == expect[key], (name, ep, step, key, n, mode)
                assert got_fired == [(i, params[i]["route_valid"], params[i]["route"], params[i]["output"])
                                     for i in emission_order(cfg, params, fired)], (name, ep, step)
                n_cand = _candidates(cfg, params, state, n)
                n_wta = _candidates(cfg, params, state, n, wta_only=True)
                classes = cfg.param_classes > 0
                assert cycles == expected_cycles(n, n_wta, classes) + stalls, (cycles, n, n_wta, stalls)
                assert cycles <= n + n_wta + 6 + classes + stalls
                stats["passes"] += 1
                stats["candidates"] += n_cand
                stats["fired"] += len(fired)
                stats["stalls"] += stalls
                state = expect

    sim = Simulator(h)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert stats["passes"] >= episodes
    assert stats["fired"] > 0
    if cfg.wta:
        assert stats["candidates"] > stats["fired"] or name == "n1", "no WTA loser exercised"
    print(name, stats)


def _candidates(cfg, params, state, n, wta_only=False, block=None):
    """Number of phase-2 candidates of a step; with ``wta_only`` only those of a WTA group or
    block (``block[i] >= 0``) (the commit pass visits exactly these)."""
    return sum(_update(cfg, params[i], state, i)[2] for i in range(n)
               if not wta_only or (cfg.wta and params[i]["wta_group"] != 0)
               or (block is not None and block[i] >= 0))


BLOCK_SIM_CONFIGS = {
    # tiny widths, 4 range slots, 3 explicit groups beside
    "b4_v8_g3": (CoreConfig(neurons=24, axons=16, synapses=16, membrane_bits=8, accumulator_bits=8,
                            weight_bits=8, trace_bits=4, wta_groups=3, wta_blocks=4), 40),
    # accumulator wider than the membrane, non power-of-two neuron count, one slot
    "b1_v12_c16_n13": (CoreConfig(neurons=13, axons=32, synapses=16, membrane_bits=12, accumulator_bits=16,
                                  trace_bits=8, wta_groups=1, wta_blocks=1), 40),
    # default widths
    "b2_v16": (CoreConfig(neurons=20, axons=16, synapses=16, wta_blocks=2), 30),
    # widest membrane and accumulator
    "b3_v32_c32": (CoreConfig(neurons=16, axons=16, synapses=16, membrane_bits=32, accumulator_bits=32,
                              weight_bits=16, trace_bits=16, wta_groups=5, wta_blocks=3), 30),
    # learning without adaptive threshold; adaptive threshold without learning
    "b4_learn_no_theta": (CoreConfig(neurons=12, axons=16, synapses=16, membrane_bits=10, accumulator_bits=10,
                                     wta_groups=4, wta_blocks=4, adaptive_threshold=False), 30),
    "b2_theta_no_learn": (CoreConfig(neurons=9, axons=16, synapses=16, membrane_bits=14, accumulator_bits=14,
                                     wta_groups=2, wta_blocks=2, learning=False), 30),
    # a single neuron
    "b1_n1": (CoreConfig(neurons=1, axons=2, synapses=2, membrane_bits=8, accumulator_bits=8,
                         wta_groups=1, wta_blocks=1), 30),
    # parameter classes: the commit reads a block candidate's class word
    "b4_classes": (CoreConfig(neurons=24, axons=16, synapses=16, membrane_bits=8, accumulator_bits=8,
                              weight_bits=8, trace_bits=4, wta_groups=3, wta_blocks=4, param_classes=32), 30),
}


@pytest.mark.parametrize("name", list(BLOCK_SIM_CONFIGS))
def test_unit_blocks_match_spec(name):
    """Block ranges (random, back to back or with gaps, in random slots; a pass with fewer
    neurons cuts the last blocks short, as ``WtaBlocks.block_of(n)``) mixed with explicit
    groups and neurons in no group, with backpressure: every memory word, the ``fired``
    sequence (``reference.firing_order``) and the cycles (``n + 4``, plus ``c + 2`` for ``c``
    WTA candidates of groups and blocks) match the spec."""
    cfg, episodes = BLOCK_SIM_CONFIGS[name]
    rng = random.Random(f"neuron-unit-blocks-{name}")
    params0, state0, _ = random_episode(rng, cfg, cfg.neurons)
    state0["acc"] = random_acc(rng, cfg, "random")
    h = Harness(cfg, params0, state0)
    u = h.unit
    stats = {"passes": 0, "block_fired": 0, "block_losers": 0, "stalls": 0, "cut": 0}

    async def testbench(ctx):
        for ep in range(episodes):
            params, state, mode = random_episode(rng, cfg, cfg.neurons)
            ranges = random_block_ranges(rng, cfg.neurons, WtaBlocksSignature(cfg).ranges)
            block_all, _ = block_arrays(ranges, cfg.neurons)
            for i, p in enumerate(params):
                if block_all[i] >= 0:
                    p["wta_group"] = 0              # a block member is in no explicit group
            load(ctx, h, params, state)
            drive_blocks(ctx, u.wta_blocks, cfg, ranges, rng)
            for step in range(rng.choice([1, 2, 3])):
                if step > 0:
                    state["acc"] = random_acc(rng, cfg, mode)
                    load(ctx, h, None, state, keys=("acc",))
                n = cfg.neurons if rng.random() < 0.6 else rng.randint(0, cfg.neurons)
                block, block_k = block_arrays(ranges, n)
                learn = cfg.learning and rng.random() < 0.6
                pds, pj = _pick(rng, 0, 15, 0, 15), _pick(rng, 0, cfg.trace_max, 0, cfg.trace_max)
                p_ready = rng.choice([1.0, 0.7, 0.3])
                expect, fired = spec_step(cfg, params, state, n, learn, pds, pj, (block, block_k))
                got_fired, cycles, stalls = await run_pass(ctx, h, rng, n, learn, pds, pj, p_ready)
                assert dump(ctx, h) == expect, (name, ep, step, n, ranges)
                fired_mask = [i in fired for i in range(n)]
                group = [params[i]["wta_group"] for i in range(n)]
                order = reference.firing_order(fired_mask, group, block)
                assert got_fired == [(i, params[i]["route_valid"], params[i]["route"], params[i]["output"])
                                     for i in order], (name, ep, step, n, ranges)
                n_wta = _candidates(cfg, params, state, n, wta_only=True, block=block)
                assert cycles == expected_cycles(n, n_wta, cfg.param_classes > 0) + stalls, (cycles, n, n_wta, stalls)
                in_block = [i for i in range(n) if block[i] >= 0 and _update(cfg, params[i], state, i)[2]]
                stats["passes"] += 1
                stats["block_fired"] += sum(fired_mask[i] for i in in_block)
                stats["block_losers"] += sum(not fired_mask[i] for i in in_block)
                stats["stalls"] += stalls
                stats["cut"] += any(r[0] < n < r[0] + r[1] * r[2] for r in ranges)
                state = expect

    sim = Simulator(h)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert stats["block_fired"] > 0 and stats["stalls"] > 0, stats
    if name != "b1_n1":
        assert stats["block_losers"] > 0 and stats["cut"] > 0, stats
    print(name, stats)


def test_wta_blocks_directed():
    """Hand-computed k-WTA: two ranges loaded in reverse order beside an explicit group and
    neurons in no group; ties go to the lower index, a block keeps its k best, a block with k
    or fewer candidates keeps them all, non-candidates are untouched. Two steps (the key
    buffer and the top-k registers start over)."""
    cfg = CoreConfig(neurons=16, axons=8, synapses=8, membrane_bits=12, accumulator_bits=12,
                     wta_groups=2, wta_blocks=3)
    base = dict(leak_shift=0, reset_mode=1, refractory=3, theta_inc=5, theta_decay_shift=0,
                route_valid=1, route=0, output=1)
    # ranges: A = neurons 1..8 as 2 blocks of 4 keeping 2; B = neurons 10..12, 1 block keeping 3
    ranges = [(10, 3, 1, 3), (1, 4, 2, 2)]
    #            group  bias(=v2)  threshold  -> margin
    table = [(0, 5, 5),     # n0: margin 0, no group: fires in the scan
             (0, 9, 8),     # n1: A0 margin 1 -> third, loser
             (0, 11, 8),    # n2: A0 margin 3 -> best, winner
             (0, 10, 8),    # n3: A0 margin 2 -> second, winner (ties with n4, lower index)
             (0, 10, 8),    # n4: A0 margin 2 -> tie with n3 -> loser
             (0, 3, 8),     # n5: A1 not a candidate (untouched, v = 3)
             (0, 8, 8),     # n6: A1 margin 0 -> winner (only 2 candidates: both win)
             (0, 2, 8),     # n7: A1 not a candidate
             (0, 30, 8),    # n8: A1 margin 22 -> winner
             (1, 20, 8),    # n9: group 1, margin 12 -> loser
             (0, 9, 8),     # n10: B margin 1 -> winner (3 candidates, k = 3)
             (0, 9, 8),     # n11: B margin 1 -> winner
             (0, 40, 8),    # n12: B margin 32 -> winner
             (1, 21, 8),    # n13: group 1, margin 13 -> winner
             (0, 4, 8),     # n14: no group, not a candidate
             (0, 8, 7)]     # n15: no group, margin 1: fires in the scan
    params = [dict(base, wta_group=g, bias=b, threshold=t, route=i) for i, (g, b, t) in enumerate(table)]
    zeros = [0] * cfg.neurons
    state = dict(v=list(zeros), refrac=list(zeros), theta=list(zeros), y=list(zeros), acc=list(zeros))
    h = Harness(cfg, params, state)
    block, block_k = block_arrays(ranges, cfg.neurons)
    # blocks are numbered over the ranges in the order listed: B is block 0, A blocks 1 and 2
    assert block == [-1, 1, 1, 1, 1, 2, 2, 2, 2, -1, 0, 0, 0, -1, -1, -1] and block_k == [3, 2, 2]

    async def testbench(ctx):
        drive_blocks(ctx, h.unit.wta_blocks, cfg, ranges, random.Random(7))
        st = state
        for step in range(2):
            expect, fired = spec_step(cfg, params, st, cfg.neurons, True, 1, 7, (block, block_k))
            got_fired, cycles, stalls = await run_pass(ctx, h, random.Random(step), cfg.neurons, True, 1, 7,
                                                       0.5)
            order = reference.firing_order([i in fired for i in range(cfg.neurons)],
                                           [p["wta_group"] for p in params], block)
            assert [f[0] for f in got_fired] == order
            assert dump(ctx, h) == expect
            if step == 0:
                assert fired == [0, 2, 3, 6, 8, 10, 11, 12, 13, 15]
                assert order == [0, 15, 2, 3, 6, 8, 10, 11, 12, 13]
                assert expect["v"] == [0, 0, 3, 2, 0, 3, 0, 2, 22, 0, 1, 1, 32, 13, 4, 1]
                assert expect["refrac"] == [3, 0, 3, 3, 0, 0, 3, 0, 3, 0, 3, 3, 3, 3, 0, 3]
                assert expect["theta"] == [5, 0, 5, 5, 0, 0, 5, 0, 5, 0, 5, 5, 5, 5, 0, 5]
                # 16 neurons + 4, commit: 11 WTA candidates + 2
                assert cycles == 16 + 4 + 11 + 2 + stalls
            st = expect

    sim = Simulator(h)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


def test_wta_ties_and_groups_directed():
    """Directed WTA case: ties go to the lowest index, group 0 always fires, losers get v = 0,
    non-candidate members are untouched; run twice to check the group table cleaned itself."""
    cfg = CoreConfig(neurons=8, axons=8, synapses=8, membrane_bits=12, accumulator_bits=12, wta_groups=3)
    base = dict(leak_shift=0, reset_mode=1, refractory=3, theta_inc=5, theta_decay_shift=0,
                route_valid=1, route=0, output=1)
    #            group  bias(=v2)  threshold  -> margin
    table = [(1, 10, 8),    # n0: margin 2  winner of group 1 (ties with n2, lower index)
             (1, 9, 8),     # n1: margin 1  loser
             (1, 10, 8),    # n2: margin 2  tie with n0 -> loser
             (0, 5, 5),     # n3: margin 0, group 0 fires
             (2, 3, 8),     # n4: not a candidate (untouched, v = 3)
             (2, 20, 8),    # n5: margin 12 winner of group 2
             (3, 7, 7),     # n6: margin 0, single candidate of group 3 -> fires
             (2, 19, 8)]    # n7: margin 11 loser
    params = [dict(base, wta_group=g, bias=b, threshold=t, route=i) for i, (g, b, t) in enumerate(table)]
    zeros = [0] * cfg.neurons
    state = dict(v=list(zeros), refrac=list(zeros), theta=list(zeros), y=list(zeros), acc=list(zeros))
    h = Harness(cfg, params, state)

    async def testbench(ctx):
        st = state
        for step in range(2):
            expect, fired = spec_step(cfg, params, st, cfg.neurons, True, 1, 7)
            got_fired, cycles, stalls = await run_pass(ctx, h, random.Random(step), cfg.neurons, True, 1, 7,
                                                       0.5)
            assert [f[0] for f in got_fired] == emission_order(cfg, params, fired)
            assert dump(ctx, h) == expect
            st = expect
            if step == 0:
                assert fired == [0, 3, 5, 6]
                assert emission_order(cfg, params, fired) == [3, 0, 5, 6]   # group 0 first
                assert expect["v"] == [2, 0, 0, 0, 3, 12, 0, 0]
                assert expect["refrac"] == [3, 0, 0, 3, 0, 3, 3, 0]
                assert expect["theta"] == [5, 0, 0, 5, 0, 5, 5, 0]
                assert expect["y"] == [7, 0, 0, 7, 0, 7, 7, 0]

    sim = Simulator(h)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


def test_long_backpressure():
    """``fired.ready`` held low for many cycles while the scan emits: the unit waits, loses
    nothing, writes once (a neuron's theta only in the cycle its word is accepted)."""
    cfg = CoreConfig(neurons=6, axons=8, synapses=8, membrane_bits=10, accumulator_bits=10, wta_groups=2)
    params = [dict(threshold=1, leak_shift=0, reset_mode=0, refractory=2, bias=5, theta_inc=1,
                   theta_decay_shift=0, wta_group=0, route_valid=1, route=i + 1, output=i % 2)
              for i in range(cfg.neurons)]
    zeros = [0] * cfg.neurons
    state = dict(v=list(zeros), refrac=list(zeros), theta=list(zeros), y=list(zeros), acc=list(zeros))
    h = Harness(cfg, params, state)
    u = h.unit

    async def testbench(ctx):
        ctx.set(u.n_neurons, cfg.neurons)
        ctx.set(u.learn, 1)
        ctx.set(u.post_jump, 3)
        ctx.set(u.fired.ready, 0)
        ctx.set(u.start, 1)
        await ctx.tick()
        ctx.set(u.start, 0)
        got = []
        await ctx.tick().until(u.fired.valid)
        for k in range(cfg.neurons):
            for _ in range(25):         # stalled: the same word stays on the stream
                await ctx.tick()
                assert ctx.get(u.fired.valid)
                assert ctx.get(u.fired.payload.neuron) == k
                for i in range(k, cfg.neurons):     # not written before it is accepted
                    assert ctx.get(h.theta.data[i]) == 0
                    assert ctx.get(h.state.data[i]).refrac == 0
            ctx.set(u.fired.ready, 1)
            got.append(ctx.get(u.fired.payload.neuron))
            await ctx.tick()
            ctx.set(u.fired.ready, 0)
        await ctx.tick().until(u.done)
        assert got == list(range(cfg.neurons))
        assert [ctx.get(h.theta.data[i]) for i in range(cfg.neurons)] == [1] * cfg.neurons
        assert [ctx.get(h.y.data[i]) for i in range(cfg.neurons)] == [3] * cfg.neurons
        assert [ctx.get(h.state.data[i]).refrac for i in range(cfg.neurons)] == [2] * cfg.neurons

    sim = Simulator(h)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


ALL_FIRE_CONFIGS = {
    # WTA present, but no neuron in a group: nothing for the commit
    "wta_unused": CoreConfig(neurons=64, axons=16, synapses=16, membrane_bits=12, accumulator_bits=12,
                             wta_groups=3),
    "bare": CoreConfig(neurons=40, axons=16, synapses=16, membrane_bits=16, accumulator_bits=12,
                       learning=False, wta=False, adaptive_threshold=False),
}


@pytest.mark.parametrize("name", list(ALL_FIRE_CONFIGS))
def test_every_neuron_fires_costs_one_cycle_per_neuron(name):
    """A pass in which every neuron fires (no WTA group) costs ``n_neurons + 4`` cycles: the
    spikes leave during the scan, there is no commit."""
    cfg = ALL_FIRE_CONFIGS[name]
    rng = random.Random(f"all-fire-{name}")
    params, state, _ = random_episode(rng, cfg, cfg.neurons)
    for i, p in enumerate(params):
        p.update(threshold=1, bias=cfg.membrane_range[1], leak_shift=0, refractory=0, wta_group=0)
        state["v"][i] = rng.randint(0, cfg.membrane_range[1])
        state["refrac"][i] = 0
        state["theta"][i] = 0
    state["acc"] = [0] * cfg.neurons
    h = Harness(cfg, params, state)

    async def testbench(ctx):
        st = state
        for n in (cfg.neurons, cfg.neurons, cfg.neurons // 2 + 1, 1):
            learn = cfg.learning
            expect, fired = spec_step(cfg, params, st, n, learn, 3, cfg.trace_max // 2)
            assert fired == list(range(n))
            got_fired, cycles, stalls = await run_pass(ctx, h, rng, n, learn, 3, cfg.trace_max // 2, 1.0)
            assert [f[0] for f in got_fired] == fired
            assert stalls == 0
            assert cycles == n + 4, (n, cycles)
            assert dump(ctx, h) == expect
            # theta back to 0, so that the next pass fires every neuron again
            st = dict(expect, theta=[0] * cfg.neurons)
            load(ctx, h, None, st, keys=("theta",))

    sim = Simulator(h)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


@pytest.mark.parametrize("p_ready", [0.2, 0.5, 0.8])
def test_scan_backpressure_random(p_ready):
    """Most neurons fire during the scan while ``fired.ready`` is random: every memory word and
    the spike sequence stay bit-exact, and every stalled cycle costs exactly one cycle; WTA
    groups mixed in, so the commit follows a stalled scan."""
    cfg = CoreConfig(neurons=24, axons=16, synapses=16, membrane_bits=10, accumulator_bits=10,
                     trace_bits=6, wta_groups=2)
    rng = random.Random(f"scan-backpressure-{p_ready}")
    groups = [0, 0, 0, 0, 1, 2]

    def episode():
        params, state = [], dict(v=[], refrac=[], theta=[], y=[], acc=[])
        for _ in range(cfg.neurons):
            p, st = random_neuron(rng, cfg, "fire", groups)
            p["refractory"] = rng.choice([0, 0, 1])
            params.append(p)
            for key in state:
                state[key].append(st[key])
        return params, state

    params, state = episode()
    h = Harness(cfg, params, state)
    totals = {"fired": 0, "stalls": 0, "wta": 0}

    async def testbench(ctx):
        nonlocal params, state
        for ep in range(12):
            if ep:
                params, state = episode()
                load(ctx, h, params, state)
            for step in range(3):
                if step:
                    state["acc"] = random_acc(rng, cfg, "fire")
                    load(ctx, h, None, state, keys=("acc",))
                n = cfg.neurons if rng.random() < 0.7 else rng.randint(1, cfg.neurons)
                learn = rng.random() < 0.7
                pds, pj = rng.randint(0, 4), rng.randint(0, cfg.trace_max)
                expect, fired = spec_step(cfg, params, state, n, learn, pds, pj)
                got_fired, cycles, stalls = await run_pass(ctx, h, rng, n, learn, pds, pj, p_ready)
                assert dump(ctx, h) == expect, (ep, step)
                assert got_fired == [(i, params[i]["route_valid"], params[i]["route"], params[i]["output"])
                                     for i in emission_order(cfg, params, fired)], (ep, step)
                n_wta = _candidates(cfg, params, state, n, wta_only=True)
                assert cycles == expected_cycles(n, n_wta) + stalls, (cycles, n, n_wta, stalls)
                totals["fired"] += len(fired)
                totals["stalls"] += stalls
                totals["wta"] += n_wta
                state = expect

    sim = Simulator(h)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert totals["fired"] > 100 and totals["stalls"] > 50 and totals["wta"] > 0, totals


def test_config_validation():
    with pytest.raises(ValueError, match="CoreConfig"):
        NeuronUnit(config={"neurons": 4})
    with pytest.raises(TypeError):
        NeuronUnit(CoreConfig())    # keyword-only


def test_block_ports_follow_config():
    """``wta_blocks`` is a port only with block ranges (and WTA); without it the unit's
    Verilog has no block hardware."""
    for cfg in (CoreConfig(), CoreConfig(wta_blocks=4, wta=False)):
        assert "wta_blocks" not in NeuronUnit(config=cfg).signature.members
    cfg = CoreConfig(neurons=16, wta_blocks=2)
    assert NeuronUnit(config=cfg).signature.members["wta_blocks"] == wiring.In(WtaBlocksSignature(cfg))
    small = dict(neurons=16, axons=16, synapses=16, membrane_bits=8, accumulator_bits=8, wta_groups=3)
    assert "key_mem" not in verilog.convert(NeuronUnit(config=CoreConfig(**small)), name="neuron_unit")
    assert "key_mem" in verilog.convert(NeuronUnit(config=CoreConfig(**small, wta_blocks=1)), name="neuron_unit")


def test_ports_follow_config():
    full = NeuronUnit(config=CoreConfig()).signature.members
    bare = NeuronUnit(config=CoreConfig(learning=False, wta=False, adaptive_threshold=False)).signature.members
    for name in ("theta_rd", "theta_wr", "y_rd", "y_wr", "post_decay_shift", "post_jump"):
        assert name in full and name not in bare
    fixed_theta = NeuronUnit(config=CoreConfig(learning=False)).signature.members
    assert "theta_rd" in fixed_theta and "theta_wr" not in fixed_theta


def test_verilog_conversion():
    text = verilog.convert(NeuronUnit(config=CoreConfig()), name="neuron_unit")
    assert "module neuron_unit" in text
