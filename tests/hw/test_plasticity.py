"""WeightUpdate (hw/plasticity.py) against the spec formula of docs/core-spec.md, phase 4
(``reference.depress`` / ``reference.potentiate``; ``reference.dw`` checked against the golden
model's).

Random differential tests, streamed one update per clock through the pipeline, with the
extremes: every shift 0..63 (and dw around 2^W for each), soft bound at u = 0 and u = R,
w_min = w_max, amplitudes and traces 0 and maximal, weight widths 2 and 16, trace widths 2
and 16, one and several multiplier slices, per-update and fixed LTP/LTD mode.
"""
from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from neurocore.hw.config import CoreConfig
from neurocore.hw.plasticity import WeightUpdate
from neurocore.sim import reference

from learning_draws import corner as _corner
from learning_draws import golden_dw
from learning_draws import weight_update_params as random_params


def datapath_params(p: dict) -> SimpleNamespace:
    """The learning parameters as the reference's rules read them (``lp.shift``, ...). Not a
    validated ``LearningParams``: the datapath is exact for the whole 6-bit shift field
    (``0 .. 63``), beyond a program's ``0 .. LEARN_SHIFT_MAX``, and the tests cover it."""
    return SimpleNamespace(**p)


def spec_update(w, trace, ltp, p):
    """The weight after one update: the reference's LTP (``potentiate``) or LTD (``depress``)."""
    lp = datapath_params(p)
    return reference.potentiate(w, trace, lp) if ltp else reference.depress(w, trace, lp)


def random_updates(rng: random.Random, config: CoreConfig, p: dict, n: int) -> list[tuple]:
    """(w, trace, ltp) triples; w inside [w_min, w_max] (and outside it without soft bound)."""
    wlo, whi = config.weight_range
    tmax = config.trace_max
    mid = (p["w_min"] + p["w_max"]) // 2
    out = []
    for _ in range(n):
        if not p["soft_bound"] and rng.random() < 0.15:
            w = rng.randint(wlo, whi)                              # hard bound: exact for any w
        else:
            w = rng.choice([p["w_min"], p["w_max"], mid, mid + 1 if mid < p["w_max"] else mid,
                            rng.randint(p["w_min"], p["w_max"]), rng.randint(p["w_min"], p["w_max"])])
        trace = _corner(rng, tmax)
        out.append((w, trace, rng.random() < 0.5))
    return out


def run_batches(config: CoreConfig, batches, *, gaps: bool, stalls: bool, seed: int, mode=None):
    """Stream each batch ``(params, updates)`` through one WeightUpdate; return the outputs.

    Inputs go in one per cycle (``gaps``: random idle cycles; ``stalls``: random ``en`` low).
    Returns per batch the list of (w', tag) in output order, and checks the latency when the
    pipeline is never stalled. With a fixed ``mode`` the ``ltp`` of each update is still
    driven on ``in_ltp``, which the DUT must ignore.
    """
    dut = WeightUpdate(config=config, tag_shape=16, mode=mode)
    rng = random.Random(seed)
    results = []

    async def testbench(ctx):
        cycle = 0
        for params, updates in batches:
            for name, value in params.items():
                ctx.set(getattr(dut.learning, name), int(value))
            got, sent_at = [], {}
            pending = list(enumerate(updates))
            idle = 0
            while pending or len(got) < len(updates):
                en = 0 if (stalls and rng.random() < 0.2) else 1
                send = bool(pending) and not (gaps and rng.random() < 0.25)
                ctx.set(dut.en, en)
                ctx.set(dut.in_valid, int(send))
                if send:
                    tag, (w, trace, ltp) = pending[0]
                    ctx.set(dut.in_w, w)
                    ctx.set(dut.in_trace, trace)
                    ctx.set(dut.in_ltp, int(ltp))
                    ctx.set(dut.in_tag, tag)
                if en and ctx.get(dut.out_valid):
                    tag = ctx.get(dut.out_tag)
                    got.append((ctx.get(dut.out_w), tag))
                    if not stalls:
                        assert cycle - sent_at[tag] == WeightUpdate.LATENCY
                if en and send:
                    sent_at[pending[0][0]] = cycle
                    pending.pop(0)
                await ctx.tick()
                cycle += 1
                idle = idle + 1 if not pending else 0
                assert idle < 100, "pipeline lost an update"
            ctx.set(dut.in_valid, 0)
            ctx.set(dut.en, 1)
            assert not ctx.get(dut.busy)
            results.append(got)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return results


CONFIGS = [
    CoreConfig(weight_bits=2, trace_bits=2),
    CoreConfig(weight_bits=8, trace_bits=8),
    CoreConfig(weight_bits=16, trace_bits=16),
    CoreConfig(weight_bits=2, trace_bits=16),
    CoreConfig(weight_bits=16, trace_bits=2),
    CoreConfig(weight_bits=5, trace_bits=11),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"W{c.weight_bits}X{c.trace_bits}")
def test_random_differential(config):
    rng = random.Random(config.weight_bits * 100 + config.trace_bits)
    batches = []
    for _ in range(20):
        p = random_params(rng, config)
        batches.append((p, random_updates(rng, config, p, 48)))
    results = run_batches(config, batches, gaps=False, stalls=False, seed=1)
    checked = 0
    for (p, updates), got in zip(batches, results):
        assert [tag for _, tag in got] == list(range(len(updates)))
        for (w, trace, ltp), (w_new, _) in zip(updates, got):
            want = spec_update(w, trace, ltp, p)
            if p["soft_bound"] or p["w_min"] <= w <= p["w_max"]:
                amp = p["a_plus"] if ltp else p["a_minus"]
                lp = datapath_params(p)
                assert reference.dw(amp, trace, w, lp) == golden_dw(amp, trace, w, lp)
            assert w_new == want, f"w={w} trace={trace} ltp={ltp} params={p}: got {w_new}, want {want}"
            checked += 1
    assert checked == 20 * 48


def test_extremes():
    """Hand-picked corners on the widest configuration (products of 54 bits)."""
    config = CoreConfig(weight_bits=16, trace_bits=16)
    wlo, whi = config.weight_range
    tmax = config.trace_max
    batches = []
    for soft in (False, True):
        for shift in (0, 1, 47, 63):
            for w_min, w_max in ((wlo, whi), (0, 0), (-5, -5), (wlo, wlo), (whi, whi), (-3, 4)):
                p = dict(a_plus=255, a_minus=255, shift=shift, w_min=w_min, w_max=w_max, soft_bound=soft)
                mid = (w_min + w_max) // 2
                updates = [(w, t, ltp) for w in sorted({w_min, w_max, mid, min(mid + 1, w_max)})
                           for t in (0, 1, tmax) for ltp in (False, True)]
                batches.append((p, updates))
    # u (R - u) maximal with A and trace maximal: the widest product, and it must not lose bits
    p = dict(a_plus=255, a_minus=255, shift=40, w_min=wlo, w_max=whi, soft_bound=True)
    batches.append((p, [(-1, tmax, False), (0, tmax, True), (-1, tmax, True), (0, tmax, False)]))
    results = run_batches(config, batches, gaps=False, stalls=False, seed=2)
    widest = 255 * tmax * ((whi - wlo) // 2) * ((whi - wlo + 1) // 2)
    assert widest.bit_length() == 54
    for (p, updates), got in zip(batches, results):
        for (w, trace, ltp), (w_new, _) in zip(updates, got):
            assert w_new == spec_update(w, trace, ltp, p), (w, trace, ltp, p)
        if p["soft_bound"]:
            # weights at exactly w_min or w_max no longer move
            for (w, _, _), (w_new, _) in zip(updates, got):
                if w in (p["w_min"], p["w_max"]):
                    assert w_new == w


@pytest.mark.parametrize("weight_bits", [2, 8])
def test_dw_near_weight_range(weight_bits):
    """dw just below, at and above 2^(W-1), 2^W, 2^(W+1), 2^(W+2): the narrowing of stage 4."""
    config = CoreConfig(weight_bits=weight_bits, trace_bits=16)
    wlo, whi = config.weight_range
    traces = sorted({t for k in range(weight_bits - 2, weight_bits + 4) for t in (2**k - 1, 2**k, 2**k + 1)
                     if 0 <= t <= config.trace_max})
    batches = []
    for a, shift in ((1, 0), (255, 8), (3, 1)):
        for w_min, w_max in ((wlo, whi), (0, whi), (wlo, 0)):
            p = dict(a_plus=a, a_minus=a, shift=shift, w_min=w_min, w_max=w_max, soft_bound=False)
            updates = [(w, t, ltp) for w in sorted({w_min, w_max, (w_min + w_max) // 2})
                       for t in traces for ltp in (False, True)]
            batches.append((p, updates))
    results = run_batches(config, batches, gaps=False, stalls=False, seed=4)
    for (p, updates), got in zip(batches, results):
        for (w, trace, ltp), (w_new, _) in zip(updates, got):
            assert w_new == spec_update(w, trace, ltp, p), (w, trace, ltp, p)


def test_gaps_and_stalls():
    """Random idle cycles and clock-enable stalls do not lose, duplicate or reorder updates."""
    config = CoreConfig(weight_bits=8, trace_bits=8)
    rng = random.Random(7)
    batches = []
    for _ in range(4):
        p = random_params(rng, config)
        batches.append((p, random_updates(rng, config, p, 40)))
    results = run_batches(config, batches, gaps=True, stalls=True, seed=3)
    for (p, updates), got in zip(batches, results):
        assert [tag for _, tag in got] == list(range(len(updates)))
        for (w, trace, ltp), (w_new, _) in zip(updates, got):
            assert w_new == spec_update(w, trace, ltp, p)


@pytest.mark.parametrize("mode", ["ltp", "ltd"])
@pytest.mark.parametrize("config", CONFIGS[:3], ids=lambda c: f"W{c.weight_bits}X{c.trace_bits}")
def test_fixed_mode(config, mode):
    """``mode="ltp"`` / ``"ltd"``: every update is of that kind, whatever ``in_ltp`` says."""
    rng = random.Random(config.weight_bits * 7 + (mode == "ltp"))
    batches = []
    for _ in range(8):
        p = random_params(rng, config)
        batches.append((p, random_updates(rng, config, p, 40)))
    results = run_batches(config, batches, gaps=True, stalls=False, seed=5, mode=mode)
    for (p, updates), got in zip(batches, results):
        assert [tag for _, tag in got] == list(range(len(updates)))
        for (w, trace, _), (w_new, _) in zip(updates, got):
            assert w_new == spec_update(w, trace, mode == "ltp", p), (w, trace, mode, p)


@pytest.mark.parametrize("config", [
    CoreConfig(weight_bits=2, trace_bits=2),        # 12-bit product: steps of 16 and 32 clear it
    CoreConfig(weight_bits=8, trace_bits=8),        # the default: one multiplier slice
    CoreConfig(weight_bits=9, trace_bits=9),        # 17 x 16 bits: two slices of p
    CoreConfig(weight_bits=10, trace_bits=8),       # 16 x 18 bits: two slices of q
    CoreConfig(weight_bits=16, trace_bits=16),      # 24 x 30 bits: four slices, 54-bit product
], ids=lambda c: f"W{c.weight_bits}X{c.trace_bits}")
def test_every_shift(config):
    """Every 6-bit shift, hard and soft bound, with dw around 2^W for the narrowing shifter:
    the largest products, products just below / at / above ``2^(shift + W)``, zero."""
    rng = random.Random(config.weight_bits * 31 + config.trace_bits)
    wlo, whi = config.weight_range
    tmax = config.trace_max
    batches = []
    for shift in range(64):
        for soft in (False, True):
            w_min, w_max = (wlo, whi)
            if rng.random() < 0.4:
                w_min, w_max = sorted(rng.randint(wlo, whi) for _ in range(2))
            a = rng.choice([255, 255, 1, rng.randint(0, 255)])
            p = dict(a_plus=a, a_minus=a, shift=shift, w_min=w_min, w_max=w_max, soft_bound=soft)
            mid = (w_min + w_max) // 2
            updates = []
            for w in sorted({w_min, w_max, mid, min(mid + 1, w_max), rng.randint(w_min, w_max)}):
                factor = a * ((w - w_min) * (w_max - w) if soft else 1)
                traces = {0, 1, tmax, rng.randint(0, tmax)}
                for k in (config.weight_bits - 1, config.weight_bits, config.weight_bits + 1):
                    target = 1 << (shift + k)              # dw = 2^k: around the W-bit boundary
                    if factor:
                        for t in (target // factor - 1, target // factor, -(-target // factor)):
                            if 0 <= t <= tmax:
                                traces.add(t)
                for t in sorted(traces):
                    updates.append((w, t, rng.random() < 0.5))
            batches.append((p, updates))
    results = run_batches(config, batches, gaps=False, stalls=False, seed=6)
    for (p, updates), got in zip(batches, results):
        assert len(got) == len(updates)
        for (w, trace, ltp), (w_new, _) in zip(updates, got):
            assert w_new == spec_update(w, trace, ltp, p), (w, trace, ltp, p)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_constructor_and_verilog():
    with pytest.raises(ValueError):
        WeightUpdate(config=None)
    with pytest.raises(ValueError):
        WeightUpdate(config=CoreConfig(), mode="both")
    with pytest.raises(TypeError):
        WeightUpdate(CoreConfig())        # keyword-only
    for mode in (None, "ltp", "ltd"):
        text = verilog.convert(WeightUpdate(config=CoreConfig(weight_bits=16, trace_bits=16), mode=mode),
                               name="weight_update")
        assert "module weight_update" in text
