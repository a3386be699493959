"""Tests of ``neurocore.hw.lif``: the combinational LIF block against the per-rule functions of
``neurocore.sim.reference`` (leak, integrate, threshold_of, neuron_update, reset,
theta_update, trace_jump).

The block's three cuts (stages B, C, D of the scan) are wired straight through
(``leaked_q = leaked``, ``integrated_q = integrated``), so one settle evaluates the whole
rule. Every case is checked cut by cut (``leaked.thr``, ``integrated.v2``) and on the words
written back, on many random cases per configuration whose values come often from the corners
(both ends of v, acc, bias, threshold, theta, trace; shifts 0, 1, V-1; refractory 0, 1, 255),
so that saturation on both sides, ``v2 == thr`` and ``margin == 0`` all occur (the test counts
them). For the narrowest membrane, every ``(v, acc)`` pair is run for a few parameter sets.
"""
from __future__ import annotations

import random

import pytest
from amaranth.hdl import Elaboratable, Module, Signal, signed
from amaranth.sim import Simulator

from neurocore.hw.config import CoreConfig
from neurocore.hw.lif import LifUpdate, fire_reset, saturating_add
from neurocore.sim import reference

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


class Through(Elaboratable):
    """The LIF block with its pipeline cuts wired straight through."""

    def __init__(self, cfg: CoreConfig):
        self.lif = LifUpdate(config=cfg)

    def elaborate(self, platform):
        m = Module()
        m.submodules.lif = lif = self.lif
        m.d.comb += [lif.leaked_q.eq(lif.leaked), lif.integrated_q.eq(lif.integrated)]
        return m


def _pick(rng: random.Random, lo: int, hi: int, *corners: int) -> int:
    return rng.choice(corners) if corners and rng.random() < 0.4 else rng.randint(lo, hi)


def random_case(rng: random.Random, cfg: CoreConfig) -> dict:
    V = cfg.membrane_bits
    v_min, v_max = cfg.membrane_range
    a_min, a_max = cfg.accumulator_range
    tmax, ymax = cfg.theta_max, cfg.trace_max
    return dict(
        v=_pick(rng, v_min, v_max, v_min, v_max, 0, -1, 1),
        refrac=0 if rng.random() < 0.7 else _pick(rng, 1, 255, 1, 255),
        acc=_pick(rng, a_min, a_max, a_min, a_max, 0, -1),
        leak_shift=_pick(rng, 0, V - 1, 0, 1, V - 1),
        bias=_pick(rng, v_min, v_max, v_min, v_max, 0),
        threshold=_pick(rng, 1, tmax, 1, tmax),
        theta=_pick(rng, 0, tmax, 0, tmax) if cfg.adaptive_threshold else 0,
        theta_inc=_pick(rng, 0, tmax, 0, 1, tmax),
        theta_decay_shift=_pick(rng, 0, V - 1, 0, 1, V - 1),
        reset_mode=rng.randint(0, 1),
        refractory=_pick(rng, 0, 255, 0, 255),
        y=_pick(rng, 0, ymax, 0, ymax),
        post_decay_shift=_pick(rng, 0, 15, 0, 15),
        post_jump=_pick(rng, 0, ymax, 0, ymax),
        wta=rng.random() < 0.3,          # a WTA candidate: does not fire in stage D
    )


def expected(cfg: CoreConfig, c: dict) -> dict:
    """The block's outputs, from the reference rules."""
    V = cfg.membrane_bits
    v, refrac, candidate, margin = reference.neuron_update(
        c["v"], c["refrac"], c["acc"], leak_shift=c["leak_shift"], bias=c["bias"],
        threshold=c["threshold"], theta=c["theta"], V=V)
    fire = candidate and not c["wta"]
    out = dict(candidate=candidate,
               thr=reference.threshold_of(c["threshold"], c["theta"]),
               v=reference.reset(margin, c["reset_mode"]) if fire else v,
               refrac=c["refractory"] if fire else refrac)
    if c["refrac"] == 0:
        out["v2"] = reference.integrate(reference.leak(c["v"], c["leak_shift"]), c["acc"], c["bias"], V)
    if candidate:
        out["margin"] = margin
    if cfg.adaptive_threshold and cfg.learning:
        out["theta"] = reference.theta_update(c["theta"], fire, theta_inc=c["theta_inc"],
                                              theta_decay_shift=c["theta_decay_shift"], V=V)
    if cfg.learning:
        out["y"] = reference.trace_jump(reference.decay(c["y"], c["post_decay_shift"]), c["post_jump"],
                                        fire, cfg.trace_bits)
    return out


async def evaluate(ctx, cfg: CoreConfig, lif: LifUpdate, c: dict) -> dict:
    """Drive one case (fire = candidate and not a WTA candidate, as the unit decides)."""
    theta = dict(theta_inc=c["theta_inc"], theta_decay_shift=c["theta_decay_shift"]) \
        if cfg.adaptive_threshold else {}           # the PARAM word has them only then
    ctx.set(lif.param, dict(threshold=c["threshold"], leak_shift=c["leak_shift"],
                            reset_mode=c["reset_mode"], refractory=c["refractory"], bias=c["bias"], **theta))
    ctx.set(lif.state, dict(v=c["v"], refrac=c["refrac"]))
    ctx.set(lif.acc, c["acc"])
    if cfg.adaptive_threshold:
        ctx.set(lif.theta, c["theta"])
    if cfg.learning:
        ctx.set(lif.y, c["y"])
        ctx.set(lif.post_decay_shift, c["post_decay_shift"])
        ctx.set(lif.post_jump, c["post_jump"])
    candidate = bool(ctx.get(lif.candidate))
    ctx.set(lif.fire, candidate and not c["wta"])
    ctx.set(lif.reset_mode, c["reset_mode"])
    ctx.set(lif.refractory, c["refractory"])
    state = ctx.get(lif.new_state)
    got = dict(candidate=candidate, thr=ctx.get(lif.leaked.thr), v=int(state.v), refrac=int(state.refrac),
               v2=ctx.get(lif.integrated.v2), margin=ctx.get(lif.margin))
    if cfg.adaptive_threshold and cfg.learning:
        got["theta"] = ctx.get(lif.new_theta)
    if cfg.learning:
        got["y"] = ctx.get(lif.new_y)
    return got


CONFIGS = {
    "v8_c8_x4": CoreConfig(membrane_bits=8, accumulator_bits=8, weight_bits=8, trace_bits=4),
    "v10_c16_x8": CoreConfig(membrane_bits=10, accumulator_bits=16, weight_bits=8, trace_bits=8),
    "v16_c12": CoreConfig(membrane_bits=16, accumulator_bits=12, weight_bits=8, trace_bits=8),
    "v24": CoreConfig(),
    "v32_c32_x16": CoreConfig(membrane_bits=32, accumulator_bits=32, weight_bits=16, trace_bits=16),
    "v20_c8_x6": CoreConfig(membrane_bits=20, accumulator_bits=8, weight_bits=8, trace_bits=6),
    "bare": CoreConfig(membrane_bits=12, accumulator_bits=12, learning=False, wta=False,
                       adaptive_threshold=False),
    "learn_no_theta": CoreConfig(membrane_bits=10, accumulator_bits=10, adaptive_threshold=False),
    "theta_no_learn": CoreConfig(membrane_bits=14, accumulator_bits=14, learning=False),
}


def _check(got: dict, want: dict, case) -> None:
    for key, value in want.items():
        assert got[key] == value, (key, got[key], value, case)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_lif_matches_reference_random(name):
    cfg = CONFIGS[name]
    v_min, v_max = cfg.membrane_range
    rng = random.Random(f"lif-{name}")
    h = Through(cfg)
    seen = dict(sat_high=0, sat_low=0, candidate=0, margin0=0, fired=0, refractory=0, wta=0)

    async def testbench(ctx):
        for _ in range(3000):
            c = random_case(rng, cfg)
            want = expected(cfg, c)
            _check(await evaluate(ctx, cfg, h.lif, c), want, c)
            if c["refrac"] == 0:
                total = reference.leak(c["v"], c["leak_shift"]) + c["acc"] + c["bias"]
                seen["sat_high"] += total > v_max
                seen["sat_low"] += total < v_min
            else:
                seen["refractory"] += 1
            seen["candidate"] += want["candidate"]
            seen["margin0"] += want.get("margin") == 0
            seen["fired"] += want["candidate"] and not c["wta"]
            seen["wta"] += want["candidate"] and c["wta"]

    sim = Simulator(h)
    sim.add_testbench(testbench)
    sim.run()
    assert min(seen.values()) >= 5, seen


def test_lif_exhaustive_v_acc():
    """V = C = 8: every (v, acc) pair, for two parameter sets at the corners (saturation on both
    sides, reset by subtraction and to zero, no leak and the largest leak, theta 0 and large)."""
    cfg = CONFIGS["v8_c8_x4"]
    v_min, v_max = cfg.membrane_range
    a_min, a_max = cfg.accumulator_range
    h = Through(cfg)
    lif = h.lif
    base = dict(refrac=0, theta_inc=3, theta_decay_shift=1, refractory=5, y=9, post_decay_shift=2,
                post_jump=4, wta=False)
    corners = [dict(base, leak_shift=0, bias=v_max, threshold=1, theta=0, reset_mode=1),
               dict(base, leak_shift=7, bias=v_min + 1, threshold=90, theta=30, reset_mode=0)]
    saturated, outcomes = set(), set()

    async def testbench(ctx):
        for params in corners:
            await evaluate(ctx, cfg, lif, dict(params, v=0, acc=0))     # the parameters, once
            for v in range(v_min, v_max + 1):
                ctx.set(lif.state.v, v)
                for acc in range(a_min, a_max + 1):
                    ctx.set(lif.acc, acc)
                    want = expected(cfg, dict(params, v=v, acc=acc))
                    ctx.set(lif.fire, want["candidate"])
                    state = ctx.get(lif.new_state)
                    got = dict(candidate=bool(ctx.get(lif.candidate)), v=int(state.v),
                               refrac=int(state.refrac), theta=ctx.get(lif.new_theta), y=ctx.get(lif.new_y))
                    for key in got:
                        assert got[key] == want[key], (key, v, acc, params)
                    total = reference.leak(v, params["leak_shift"]) + acc + params["bias"]
                    saturated.add((total > v_max) - (total < v_min))
                    outcomes.add(want["candidate"])

    sim = Simulator(h)
    sim.add_testbench(testbench)
    sim.run()
    assert saturated == {-1, 0, 1} and outcomes == {False, True}     # both saturations, both outcomes


def test_helpers():
    """``saturating_add`` and ``fire_reset`` on every small input (they also serve the commit)."""
    x, inc, fire, mode = Signal(4), Signal(4), Signal(), Signal()
    margin, held = Signal(4), Signal(signed(5))
    m = Module()
    total, v = Signal(4), Signal(signed(6))
    m.d.comb += [total.eq(saturating_add(x, inc, 11)), v.eq(fire_reset(fire, mode, margin, held))]

    async def testbench(ctx):
        for a in range(16):
            for b in range(16):
                ctx.set(x, a)
                ctx.set(inc, b)
                assert ctx.get(total) == min(a + b, 11)
        for f in (0, 1):
            for md in (0, 1):
                for mg in (0, 5, 15):
                    for hd in (-16, 0, 15):
                        ctx.set(fire, f), ctx.set(mode, md), ctx.set(margin, mg), ctx.set(held, hd)
                        assert ctx.get(v) == (reference.reset(mg, md) if f else hd)

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()


def test_ports_follow_config():
    full = LifUpdate(config=CoreConfig()).signature.members
    bare = LifUpdate(config=CONFIGS["bare"]).signature.members
    for name in ("theta", "new_theta", "y", "new_y", "post_decay_shift", "post_jump"):
        assert name in full and name not in bare
    assert "theta" in LifUpdate(config=CONFIGS["theta_no_learn"]).signature.members
    assert "new_theta" not in LifUpdate(config=CONFIGS["theta_no_learn"]).signature.members
    with pytest.raises(ValueError, match="CoreConfig"):
        LifUpdate(config=None)
