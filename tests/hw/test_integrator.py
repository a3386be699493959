"""Integrator (hw/integrator.py): phase 1 of docs/core-spec.md plus phase-4 LTD.

A harness holds the pointer, synapse, accumulator and post-trace memories and wires their
ports to the integrator. Random programs (rows of consecutive targets, spec section 3, built
and validated by ``CoreProgram``) are run through it and the final accumulators and weights
are compared with the spec (the rules of ``sim/reference.py`` over the program's ``target``
list, which the RTL never sees: it derives targets from the pointer word) and with the
golden model. The synapse memory is single-port, as in the core (one address, read
disabled in a write cycle), and a monitor checks that the integrator never reads and writes it
in the same cycle. A throughput test measures SOPs per clock and the exact cycle counts.
"""
from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Elaboratable, Module, Mux, signed, unsigned
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import connect

from neurocore.hw.config import CoreConfig
from neurocore.hw.integrator import Integrator
from neurocore.hw.layouts import pointer_layout, segment_layout, synapse_layout
from neurocore.hw.plasticity import WeightUpdate
from neurocore.hw.program import CoreProgram, CoreState, LearningParams, NeuronParams, Segments
from neurocore.sim import golden, reference

from synapse_ports import simulate, watch_synapse_ports


class Harness(Elaboratable):
    """The integrator and the four memories it works on, with 1-cycle synchronous read ports.

    The synapse memory is single-port like the core's ``syn_mem``: one address,
    ``syn_wr.addr`` in a write cycle, ``syn_rd.addr`` otherwise, the read disabled while
    writing. Call :meth:`add_monitor` to count the cycles that read and write it at once.
    """

    def __init__(self, config: CoreConfig, *, transparent: bool = False):
        self.config = config
        self.transparent = transparent
        self.dut = Integrator(config=config)
        self.ptr_mem = Memory(shape=pointer_layout(config), depth=config.axons, init=[])
        self.syn_mem = Memory(shape=synapse_layout(config), depth=config.synapses, init=[])
        self.acc_mem = Memory(shape=signed(config.accumulator_bits), depth=config.neurons, init=[])
        self.y_mem = Memory(shape=unsigned(config.trace_bits), depth=config.neurons, init=[])
        if config.segments:
            self.seg_mem = Memory(shape=segment_layout(config), depth=config.segments, init=[])
        self.syn_ops = {"reads": 0, "writes": 0, "both": 0}

    def add_monitor(self, sim):
        """A background testbench counting synapse reads, writes and cycles with both."""
        watch_synapse_ports(sim, [self.dut], self.syn_ops)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.dut
        m.submodules.ptr_mem = self.ptr_mem
        m.submodules.syn_mem = self.syn_mem
        m.submodules.acc_mem = self.acc_mem
        m.submodules.y_mem = self.y_mem
        dut = self.dut
        if self.config.segments:
            m.submodules.seg_mem = self.seg_mem
            connect(m, dut.seg_rd, self.seg_mem.read_port())
        syn_rd, syn_wr = self.syn_mem.read_port(), self.syn_mem.write_port()
        m.d.comb += [
            syn_rd.addr.eq(Mux(dut.syn_wr.en, dut.syn_wr.addr, dut.syn_rd.addr)),
            syn_rd.en.eq(dut.syn_rd.en & ~dut.syn_wr.en),
            dut.syn_rd.data.eq(syn_rd.data),
            syn_wr.addr.eq(syn_rd.addr),
            syn_wr.data.eq(dut.syn_wr.data),
            syn_wr.en.eq(dut.syn_wr.en),
        ]
        acc_wr = self.acc_mem.write_port()
        connect(m, self.dut.ptr_rd, self.ptr_mem.read_port())
        connect(m, self.dut.acc_rd,
                self.acc_mem.read_port(transparent_for=(acc_wr,) if self.transparent else ()))
        connect(m, self.dut.acc_wr, acc_wr)
        connect(m, self.dut.y_rd, self.y_mem.read_port())
        return m


# -- the spec: the reference's rules over the program's target list -------------------------

def spec_step(program: CoreProgram, active, y, learn: bool):
    """Phase 1 (acc from zero, ``reference.accumulate``) and, when ``learn``, phase 4 (a) LTD
    (``reference.ltd_pass`` with the decayed post trace ``reference.decay(y)``): (acc, new
    weights, sops) for the active axons (a list of axons)."""
    lp = program.learning
    assert len(set(active)) == len(active), "an axon is active once per step"
    on = [a in set(active) for a in range(program.n_axons)]
    uses, weight = reference.program_uses(program), program.weight.tolist()
    acc, sops = reference.accumulate(on, uses, weight, program.n_neurons)
    if learn:
        yd = [reference.decay(int(v), lp.post_decay_shift) for v in y]
        weight = reference.ltd_pass(weight, on, uses, program.plastic.tolist(), yd, lp)
    return np.array(acc, np.int64), np.array(weight, np.int64), sops


def golden_step(program: CoreProgram, active, y, learn: bool):
    """The golden model on the same step: with a threshold no input reaches, ``v`` after the
    step is ``acc`` and only LTD changes weights (no neuron fires, so no LTP)."""
    state = CoreState.initial(program)
    state.y[:] = y
    inputs = np.zeros((1, program.n_inputs), bool)
    inputs[0, list(active)] = True
    result = golden.run(program, inputs, learn=learn, state=state)
    return result.state.v, result.state.weight, result.sops


# -- random cases ------------------------------------------------------------------------------

def _corner(rng: random.Random, low: int, high: int) -> int:
    pick = rng.random()
    if pick < 0.3:
        return rng.choice([low, high, min(max(0, low), high), min(max(-1, low), high), min(max(1, low), high)])
    return rng.randint(low, high)


def random_rows(rng: random.Random, n_axons: int, n_neurons: int, lengths) -> list[tuple[int, int]]:
    """``(first, count)`` of every axon's row. The placement mode makes the targets of
    consecutive rows collide at distances 1..4 (read-after-write on the accumulator):
    uniform windows, all rows on one window, chained rows (the next starts where the last
    ended, or just before), or rows piled on a few neurons."""
    mode = rng.choice(["uniform", "same", "chain", "chain", "few"])
    pool = [rng.randrange(n_neurons) for _ in range(2)]
    rows, end = [], rng.randrange(n_neurons)
    fixed = rng.randrange(n_neurons)
    for count in lengths:
        count = min(count, n_neurons)
        top = n_neurons - count
        if mode == "same":
            first = min(fixed, top)
        elif mode == "chain":
            first = min(max(end - rng.randint(0, 3), 0), top)
        elif mode == "few":
            first = min(rng.choice(pool), top)
        else:
            first = rng.randint(0, top)
        rows.append((first, count))
        if count:
            end = first + count - 1
            if end >= n_neurons - 1 and rng.random() < 0.5:
                end = rng.randrange(n_neurons)
    return rows


def random_case(rng: random.Random, config: CoreConfig, *, max_synapses: int):
    """A random valid program, an active axon list (random or index order) and post traces."""
    wlo, whi = config.weight_range
    n_neurons = rng.choice([1, 2, rng.randint(1, config.neurons), config.neurons])
    n_axons = rng.randint(1, config.axons)
    lengths = [rng.choice([0, 1, 1, 2, 3, rng.randint(3, 8), rng.randint(8, 24)]) for _ in range(n_axons)]
    while sum(min(n, n_neurons) for n in lengths) > max_synapses:
        lengths[rng.randrange(n_axons)] //= 2

    w_min, w_max = sorted(_corner(rng, wlo, whi) for _ in range(2))
    soft = rng.random() < 0.5
    a_minus = rng.choice([0, 255, rng.randint(1, 255), rng.randint(128, 255)])
    r = w_max - w_min
    big = max(a_minus, 1) * config.trace_max * (max(r * r // 4, 1) if soft else 1)
    # mostly a shift that leaves dw around the size of the plastic range for large traces
    shift = rng.choice([0, 47] + [min(max(big.bit_length() - rng.randint(0, max(r, 1).bit_length() + 4), 0), 47)
                                  for _ in range(4)])
    lp = LearningParams(a_minus=a_minus, shift=shift, post_decay_shift=rng.choice([0, 0, 1, 3, 15]),
                        w_min=w_min, w_max=w_max, soft_bound=soft)

    axon, target, weight, plastic = [], [], [], []
    for a, (first, count) in enumerate(random_rows(rng, n_axons, n_neurons, lengths)):
        for j in range(count):
            # an inner synapse left out becomes a zero-weight gap synapse (from_synapses)
            if 0 < j < count - 1 and rng.random() < 0.1:
                continue
            is_plastic = config.learning and rng.random() < 0.6
            axon.append(a)
            target.append(first + j)
            plastic.append(is_plastic)
            weight.append(_corner(rng, w_min, w_max) if is_plastic else _corner(rng, wlo, whi))
    program = CoreProgram.from_synapses(
        config, n_inputs=n_axons, n_axons=n_axons, axon=axon, target=target, weight=weight,
        plastic=plastic, neurons=NeuronParams.uniform(n_neurons, threshold=config.theta_max),
        learning=lp)

    pick = rng.random()
    if pick < 0.05:
        active = []
    elif pick < 0.3:
        active = list(range(n_axons))
    else:
        active = [a for a in range(n_axons) if rng.random() < 0.6]
    if rng.random() < 0.6:          # index order keeps chained rows adjacent
        rng.shuffle(active)
    y = [_corner(rng, 0, config.trace_max) for _ in range(n_neurons)]
    learn = config.learning and rng.random() < 0.7
    return program, active, y, learn


def count_hazards(program: CoreProgram, active) -> tuple[int, int]:
    """Synapses whose target was also the target of the synapse 1 (2) SOPs before."""
    targets = [int(program.target[s]) for a in active for s in range(program.ptr[a], program.ptr[a + 1])]
    d1 = sum(targets[i] == targets[i - 1] for i in range(1, len(targets)))
    d2 = sum(targets[i] == targets[i - 2] for i in range(2, len(targets)))
    return d1, d2


LTD_WRITE_DELAY = 4 + WeightUpdate.LATENCY     # synapse address issued (S0) to its write-back


def expected_cycles(program: CoreProgram, active, learn: bool) -> int:
    """The documented cost of a step whose axons arrive back to back: cycles with ``busy`` high.

    One cycle per synapse address issued, except that a cycle with an LTD write-back issues no
    address (single-port synapse memory); an empty row costs one cycle; ``busy`` rises 2
    cycles before the first address and falls 5 cycles after the last one, or in the cycle
    after the last write-back.
    """
    if not active:
        return 0
    writes, ends, t = set(), [], 0
    for a in active:
        if program.ptr[a] == program.ptr[a + 1]:
            ends.append(t)
            t += 1
            continue
        for s in range(program.ptr[a], program.ptr[a + 1]):
            while t in writes:                  # the write-back owns the memory port
                t += 1
            ends.append(t + 5)
            if learn and program.plastic[s]:
                writes.add(t + LTD_WRITE_DELAY)
                ends.append(t + LTD_WRITE_DELAY + 1)
            t += 1
    return max(ends) + 2


def plastic_visited(program: CoreProgram, active, learn: bool) -> int:
    """LTD write-backs of a step: the plastic synapses of the active axons (with learning)."""
    if not learn:
        return 0
    return sum(int(program.plastic[program.ptr[a]:program.ptr[a + 1]].sum()) for a in active)


# -- the testbench ------------------------------------------------------------------------------

async def load(ctx, h: Harness, program: CoreProgram, y, learn: bool):
    """Write the program into the memories, zero the accumulators, set the parameters. With a
    segment table the pointer words also name the axon's segments and the table is written."""
    dut, seg = h.dut, program.segments
    first = program.row_first()
    for a in range(program.n_axons):
        count = int(program.ptr[a + 1] - program.ptr[a])
        word = {"base": int(program.ptr[a]) if count else 0, "count": count, "first": int(first[a])}
        if h.config.segments:
            word.update(seg_start=int(seg.start[a]), seg_count=int(seg.length[a]), seg_offset=int(seg.offset[a]))
        ctx.set(h.ptr_mem.data[a], word)
    for k in range(len(seg.base)):
        ctx.set(h.seg_mem.data[k], {"base": int(seg.base[k]), "count": int(seg.count[k]),
                                    "first": int(seg.first[k])})
    for s in range(program.n_synapses):
        ctx.set(h.syn_mem.data[s], {"weight": int(program.weight[s]), "plastic": int(program.plastic[s])})
    for n in range(h.config.neurons):
        ctx.set(h.acc_mem.data[n], 0)
    for n, value in enumerate(y):
        ctx.set(h.y_mem.data[n], int(value))
    lp = program.learning
    ctx.set(dut.learn, int(learn))
    if hasattr(dut, "shared_ltd"):
        ctx.set(dut.shared_ltd, 0)
    for name in ("a_minus", "shift", "post_decay_shift", "w_min", "w_max", "soft_bound"):
        ctx.set(getattr(dut.learning, name), int(getattr(lp, name)))
    ctx.set(dut.clear_count, 1)
    await ctx.tick()
    ctx.set(dut.clear_count, 0)


async def integrate(ctx, h: Harness, active, rng: random.Random | None = None) -> int:
    """Send the active axons (with random gaps when ``rng``), wait for ``busy`` low.

    Returns the cycles from the first accepted axon to the first cycle with ``busy`` low.
    """
    dut = h.dut
    cycle, first = 0, None
    for a in active:
        while rng is not None and rng.random() < 0.3:
            ctx.set(dut.axons.valid, 0)
            await ctx.tick()
            cycle += 1
        ctx.set(dut.axons.valid, 1)
        ctx.set(dut.axons.payload, a)
        while True:
            ready = ctx.get(dut.axons.ready)
            if ready and first is None:
                first = cycle
            await ctx.tick()
            cycle += 1
            if ready:
                break
    ctx.set(dut.axons.valid, 0)
    while ctx.get(dut.busy):
        await ctx.tick()
        cycle += 1
        assert cycle < 100_000
    return cycle - (first or 0)


def read_back(ctx, h: Harness, program: CoreProgram):
    acc = np.array([ctx.get(h.acc_mem.data[n]) for n in range(h.config.neurons)], np.int64)
    rows = [ctx.get(h.syn_mem.data[s]) for s in range(program.n_synapses)]
    return acc, rows


def check_case(ctx, h: Harness, program: CoreProgram, active, y, learn: bool, label: str):
    acc, rows = read_back(ctx, h, program)
    want_acc, want_w, want_sops = spec_step(program, active, y, learn)
    # the spec transcription agrees with the golden model
    g_v, g_w, g_sops = golden_step(program, active, y, learn)
    assert np.array_equal(g_v, want_acc) and np.array_equal(g_w, want_w) and g_sops == want_sops, label
    bad = np.flatnonzero(acc[:program.n_neurons] != want_acc)
    assert bad.size == 0, (f"{label}: acc[{bad[0]}] = {acc[bad[0]]}, want {want_acc[bad[0]]} "
                           f"(active {active}, ptr {program.ptr.tolist()}, target {program.target.tolist()})")
    assert not acc[program.n_neurons:].any(), f"{label}: accumulator beyond n_neurons written"
    for s, row in enumerate(rows):
        got = (row.weight, row.plastic)
        want = (int(want_w[s]), int(program.plastic[s]))
        assert got == want, f"{label}: synapse {s} = {got}, want {want} (learning {program.learning})"
    assert ctx.get(h.dut.sops) == want_sops, label


def run_random(config: CoreConfig, *, cases: int, seed: int, transparent: bool, max_synapses: int):
    h = Harness(config, transparent=transparent)
    rng = random.Random(seed)
    stats = {"cases": 0, "sops": 0, "ltd_changed": 0, "hazard_d1": 0, "hazard_d2": 0, "ltd_writes": 0,
             "timed": 0}

    async def testbench(ctx):
        for i in range(cases):
            program, active, y, learn = random_case(rng, config, max_synapses=max_synapses)
            await load(ctx, h, program, y, learn)
            before = dict(h.syn_ops)
            cycles = await integrate(ctx, h, active, rng if i % 3 else None)
            check_case(ctx, h, program, active, y, learn, f"case {i}")
            _, want_w, sops = spec_step(program, active, y, learn)
            writes = plastic_visited(program, active, learn)
            await ctx.tick()                    # let the monitor sample the last cycle
            assert h.syn_ops["reads"] - before["reads"] == sops, f"case {i}"
            assert h.syn_ops["writes"] - before["writes"] == writes, f"case {i}"
            if not i % 3:                        # axons back to back: the exact cost
                assert cycles == expected_cycles(program, active, learn), (i, cycles, sops, writes)
                stats["timed"] += 1
            stats["ltd_writes"] += writes
            stats["cases"] += 1
            stats["sops"] += sops
            stats["ltd_changed"] += int((want_w != program.weight).sum())
            d1, d2 = count_hazards(program, active)
            stats["hazard_d1"] += d1
            stats["hazard_d2"] += d2

    simulate(h, testbench, monitor=True)
    assert h.syn_ops["both"] == 0, "the synapse memory was read and written in the same cycle"
    return stats


@pytest.fixture(scope="module", autouse=True)
def _compile_golden():
    golden.warmup()


RANDOM_CONFIGS = [
    # (config, transparent accumulator read port)
    (CoreConfig(neurons=16, axons=16, synapses=256, weight_bits=8, accumulator_bits=16, trace_bits=8,
                membrane_bits=32), False),
    (CoreConfig(neurons=16, axons=16, synapses=256, weight_bits=8, accumulator_bits=16, trace_bits=8,
                membrane_bits=32), True),
    (CoreConfig(neurons=16, axons=16, synapses=256, weight_bits=16, accumulator_bits=24, trace_bits=16,
                membrane_bits=32), False),
    (CoreConfig(neurons=8, axons=24, synapses=128, weight_bits=2, accumulator_bits=10, trace_bits=2,
                membrane_bits=32), False),
    (CoreConfig(neurons=16, axons=16, synapses=256, weight_bits=8, accumulator_bits=16, trace_bits=8,
                membrane_bits=32, learning=False), False),
]


@pytest.mark.parametrize("config,transparent", RANDOM_CONFIGS,
                         ids=["W8", "W8-transparent", "W16X16", "W2X2", "W8-nolearning"])
def test_random_differential(config, transparent):
    stats = run_random(config, cases=100, seed=config.weight_bits + 100 * transparent + 7 * config.learning,
                       transparent=transparent, max_synapses=min(config.synapses, 160))
    print(config.weight_bits, transparent, stats)
    assert stats["cases"] == 100 and stats["sops"] > 1000
    assert stats["hazard_d1"] > 20 and stats["hazard_d2"] > 20, stats    # forwarding exercised
    if config.learning:
        assert stats["ltd_changed"] > 10      # LTD really moved weights
        assert stats["ltd_writes"] > 200      # write-backs contended with reads


def test_hazards_directed():
    """Every row pattern that stresses the read-modify-write: one neuron hit by consecutive
    one-synapse rows (distance 1), rows on one window of 2..5 neurons (distances 2..5),
    chained rows (the next starts where the last ended), shifting windows, extreme sums."""
    config = CoreConfig(neurons=8, axons=32, synapses=256, weight_bits=8, accumulator_bits=16,
                        trace_bits=8, membrane_bits=32)
    wlo, whi = config.weight_range
    groups = [                                  # (first, count) of consecutive axons
        [(0, 1)] * 6,
        [(0, 2)] * 4,
        [(0, 3)] * 3,
        [(0, 4)] * 2 + [(0, 5)] * 2,
        [(0, 3), (2, 3), (4, 3), (6, 2)],
        [(5, 1), (4, 2), (3, 3), (2, 4)],
        [(7, 1)],
        [(0, 8), (7, 1), (0, 8)],
    ]
    rows = [row for group in groups for row in group]
    assert len(rows) <= config.axons
    h = Harness(config)

    async def testbench(ctx):
        for weights in ([whi], [wlo], [1, -1, whi, wlo, 3]):
            axon, target, weight = [], [], []
            for a, (first, count) in enumerate(rows):
                for j in range(count):
                    axon.append(a)
                    target.append(first + j)
                    weight.append(weights[(a + j) % len(weights)])
            program = CoreProgram.from_synapses(
                config, n_inputs=len(rows), n_axons=len(rows), axon=axon, target=target,
                weight=weight, neurons=NeuronParams.uniform(8, threshold=config.theta_max))
            assert program.target.tolist() == target           # no gap synapses were needed
            every = list(range(len(rows)))
            for order in (every, every[::-1], every[::2] + every[1::2], [0, 6, 7, 8, 9, 21, 22, 23]):
                y = [0] * 8
                d1, d2 = count_hazards(program, order)
                assert d1 + d2 > 0
                await load(ctx, h, program, y, False)
                cycles = await integrate(ctx, h, order)
                check_case(ctx, h, program, order, y, False, f"weights {weights} order {order}")
                assert cycles == expected_cycles(program, order, False)

    simulate(h, testbench, monitor=True)
    assert h.syn_ops["both"] == h.syn_ops["writes"] == 0


# -- throughput ---------------------------------------------------------------------------------

def _throughput_program(config: CoreConfig, lengths, rng: random.Random):
    """Rows of the given lengths, windows placed to collide (back-to-back and near)."""
    axon, target, weight, plastic = [], [], [], []
    for a, (first, count) in enumerate(random_rows(rng, len(lengths), config.neurons, lengths)):
        for j in range(count):
            axon.append(a)
            target.append(first + j)
            weight.append(rng.randint(-100, 100))
            plastic.append(rng.random() < 0.5)
    return CoreProgram.from_synapses(
        config, n_inputs=len(lengths), n_axons=len(lengths), axon=axon, target=target, weight=weight,
        plastic=plastic, neurons=NeuronParams.uniform(config.neurons, threshold=config.theta_max),
        learning=LearningParams(a_minus=200, shift=4, post_decay_shift=2, w_min=-100, w_max=100))


def test_throughput():
    """SOPs per clock, from the first axon accepted to ``busy`` low (fill and drain included).

    Sustained (several lists of >= 64 synapses, axons sent back to back): >= 0.95 without
    LTD. With LTD every plastic synapse visited (about half here) costs one more cycle, its
    write-back, except those whose write-back lands in the drain.
    """
    config = CoreConfig(neurons=256, axons=64, synapses=2048, weight_bits=8, accumulator_bits=24,
                        trace_bits=8, membrane_bits=32)
    rng = random.Random(5)
    scenarios = [
        ("16 lists x 64", [64] * 16, False),
        ("16 lists x 64, LTD on", [64] * 16, True),
        ("4 lists x 256", [256] * 4, False),
        ("4 lists x 256, LTD on", [256] * 4, True),
        ("1 list x 64", [64], False),
        ("1 list x 256", [256], False),
        ("64 lists x 1", [1] * 64, False),
        ("32 lists x 1..8", [rng.randint(1, 8) for _ in range(32)], False),
    ]
    h = Harness(config)
    results = {}

    async def testbench(ctx):
        for name, lengths, learn in scenarios:
            program = _throughput_program(config, lengths, rng)
            y = [rng.randint(0, config.trace_max) for _ in range(config.neurons)]
            active = list(range(len(lengths)))
            rng.shuffle(active)
            await load(ctx, h, program, y, learn)
            cycles = await integrate(ctx, h, active)
            check_case(ctx, h, program, active, y, learn, name)
            sops = ctx.get(h.dut.sops)
            assert ctx.get(h.dut.busy_cycles) == cycles
            assert cycles == expected_cycles(program, active, learn), name
            results[name] = (sops, plastic_visited(program, active, learn), cycles)

    simulate(h, testbench, monitor=True)
    assert h.syn_ops["both"] == 0 and h.syn_ops["writes"] > 800

    for name, (sops, writes, cycles) in results.items():
        print(f"{name:24s} {sops:5d} SOPs, {writes:4d} LTD write-backs in {cycles:5d} cycles: "
              f"{sops / cycles:.4f} SOP/clock")
    for name in ("16 lists x 64", "4 lists x 256"):
        sops, _, cycles = results[name]
        assert sops / cycles >= 0.95, (name, sops, cycles)
    # fixed fill + drain: 6 cycles per step, no per-list overhead; with LTD one cycle per
    # write-back, less those (at most 10) that land in the drain, plus up to 6 cycles of drain
    # after the last synapse address
    for name, (sops, writes, cycles) in results.items():
        if "LTD on" in name:
            assert writes > 400 and writes - 9 <= cycles - sops - 6 <= writes + 5, (name, sops, writes, cycles)
        else:
            assert cycles - sops == 6, (name, sops, cycles)


def test_empty_axons_and_idle():
    """Axons without synapses cost one cycle each and leave everything untouched."""
    config = CoreConfig(neurons=4, axons=8, synapses=16, weight_bits=8, accumulator_bits=16, trace_bits=8,
                        membrane_bits=32)
    h = Harness(config)

    async def testbench(ctx):
        assert not ctx.get(h.dut.busy)
        program = CoreProgram.from_synapses(
            config, n_inputs=8, n_axons=8, axon=[3, 3, 5], target=[1, 2, 2], weight=[5, -7, 9],
            neurons=NeuronParams.uniform(4, threshold=config.theta_max))
        await load(ctx, h, program, [0] * 4, False)
        cycles = await integrate(ctx, h, [0, 1, 2])          # all empty
        assert cycles == 4 and ctx.get(h.dut.sops) == 0
        check_case(ctx, h, program, [0, 1, 2], [0] * 4, False, "empty")
        await load(ctx, h, program, [0] * 4, False)
        await integrate(ctx, h, [0, 3, 1, 2, 5, 4, 6, 7])
        check_case(ctx, h, program, [0, 3, 1, 2, 5, 4, 6, 7], [0] * 4, False, "mixed")

    simulate(h, testbench, monitor=False)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_constructor_and_verilog():
    with pytest.raises(ValueError):
        Integrator(config={"neurons": 4})
    with pytest.raises(TypeError):
        Integrator(CoreConfig())               # keyword-only
    text = verilog.convert(Integrator(config=CoreConfig()), name="integrator")
    assert "module integrator" in text
    text = verilog.convert(Integrator(config=CoreConfig(learning=False)), name="integrator")
    assert "module integrator" in text
    assert WeightUpdate.LATENCY == 6


# -- learning on shared words: the LTD pass (integrator in LTD-only mode) -------------------------

def kernel_program(config: CoreConfig, *, n_axons: int, kernel, rows=(), learning=None,
                   threshold: int | None = None) -> CoreProgram:
    """A convolution-like program: every axon ``a < n_axons`` has one segment over all the
    (plastic) kernel words, ``kernel[j]`` driving neuron ``a + j``, so neighbouring axons use
    every word in turn; ``rows``: ``(axon, target, weight)``, plastic row words after which the
    kernel words follow. ``n_axons + len(kernel) - 1`` neurons, thresholds ``threshold``
    (default: out of reach)."""
    n = n_axons + len(kernel) - 1
    base = CoreProgram.from_synapses(
        config, n_inputs=n_axons, n_axons=n_axons, axon=[r[0] for r in rows], target=[r[1] for r in rows],
        weight=[r[2] for r in rows], plastic=[True] * len(rows), outputs=range(n), learning=learning,
        neurons=NeuronParams.uniform(n, threshold=config.theta_max if threshold is None else threshold))
    rows_used = base.n_row_synapses
    return dataclasses.replace(
        base, weight=np.concatenate([base.weight, np.array(kernel, np.int64)]),
        plastic=np.concatenate([base.plastic, np.ones(len(kernel), bool)]),
        segments=Segments.csr(np.arange(n_axons + 1), base=[rows_used] * n_axons,
                          count=[len(kernel)] * n_axons, first=list(range(n_axons)))).validate()


SHARED_CONFIG = CoreConfig(neurons=8, axons=8, synapses=32, segments=8, weight_bits=8, accumulator_bits=16,
                           trace_bits=8, membrane_bits=32)


def test_shared_ltd_pass():
    """FEED (``shared_ltd`` low) integrates rows and segments and depresses the row words
    only; the LTD pass (``shared_ltd`` high, the active axons in increasing index) then
    depresses every use of a kernel word in order, each from the value the previous use left
    (the in-flight stall), and adds nothing to the accumulators nor to ``sops``: afterwards
    accumulators and weights are the spec's (phase 1 and phase 4 (a), ``reference``)."""
    config = SHARED_CONFIG
    rng = random.Random(7)
    cases = []
    for kernel in ([40], [30, -20], [30, -20, 50], [5, 6, 7, 8, 9]):
        for soft in (False, True):
            lp = LearningParams(a_minus=rng.randint(100, 255),
                                    shift=rng.randint(22, 24) if soft else rng.randint(11, 13), post_decay_shift=1,
                                w_min=-60, w_max=60, soft_bound=soft)
            n_axons = 8 - len(kernel) + 1
            rows = [(a, (a + len(kernel)) % (n_axons + len(kernel) - 1), 10 + a) for a in range(n_axons)
                    if (a + len(kernel)) < n_axons + len(kernel) - 1]
            cases.append(kernel_program(config, n_axons=n_axons, kernel=kernel, rows=rows, learning=lp))
    h = Harness(config)
    seen = {"stalls": 0, "moved": 0}    # moved: kernel words changed and not at a bound

    async def testbench(ctx):
        for program in cases:
            for trial in range(3):
                active = sorted(rng.sample(range(program.n_axons), rng.randint(1, program.n_axons)))
                y = [rng.randint(0, config.trace_max) for _ in range(program.n_neurons)]
                want_acc, want_w, want_sops = spec_step(program, active, y, True)
                rows = program.n_row_synapses
                await load(ctx, h, program, y, True)
                order = active[:]
                rng.shuffle(order)                   # FEED takes any order
                await integrate(ctx, h, order)
                acc, words = read_back(ctx, h, program)
                weight = np.array([w.weight for w in words], np.int64)
                assert np.array_equal(acc[:program.n_neurons], want_acc), (program.segments, active)
                assert np.array_equal(weight[:rows], want_w[:rows]), "FEED: row words"
                assert np.array_equal(weight[rows:], program.weight[rows:]), "FEED changed a kernel word"
                assert ctx.get(h.dut.sops) == want_sops
                ctx.set(h.dut.shared_ltd, 1)
                cycles = await integrate(ctx, h, active)
                ctx.set(h.dut.shared_ltd, 0)
                acc, words = read_back(ctx, h, program)
                weight = np.array([w.weight for w in words], np.int64)
                assert np.array_equal(acc[:program.n_neurons], want_acc), "the LTD pass accumulated"
                assert np.array_equal(weight, want_w), (f"kernel {program.weight[rows:]} active {active} "
                                                        f"y {y}: {weight[rows:]} want {want_w[rows:]}")
                assert ctx.get(h.dut.sops) == want_sops, "the LTD pass counted SOPs"
                uses = len(active) * (program.n_synapses - rows)
                # one cycle per empty row and use, and at least 11 cycles between two uses of a word
                assert cycles >= max(uses + len(active), 11 * (len(active) - 1)), cycles
                seen["stalls"] += cycles > uses + len(active) + 12
                seen["moved"] += int(((weight[rows:] != program.weight[rows:]) & (weight[rows:] > -60)
                                      & (weight[rows:] < 60)).sum())

    simulate(h, testbench, monitor=True)
    assert h.syn_ops["both"] == 0
    assert seen["stalls"] > 0 and seen["moved"] > 0, seen


def test_shared_ltd_pass_cycles():
    """One kernel word used by every axon: in the LTD pass each use waits for the previous
    one's write-back, so uses are issued 11 cycles apart (read in cycle c, write-back in
    c + 10); without the stall they would be 2 cycles apart (empty row, use)."""
    config = SHARED_CONFIG
    lp = LearningParams(a_minus=255, shift=4, post_decay_shift=0, w_min=-100, w_max=100)
    h = Harness(config)

    async def testbench(ctx):
        for n_active in (1, 2, 5, 8):
            program = kernel_program(config, n_axons=8, kernel=[90], learning=lp)
            y = [3] * program.n_neurons
            await load(ctx, h, program, y, True)
            ctx.set(h.dut.shared_ltd, 1)
            cycles = await integrate(ctx, h, list(range(n_active)))
            ctx.set(h.dut.shared_ltd, 0)
            _, words = read_back(ctx, h, program)
            # every use: 90 - (255 * 3 >> 4) = 90 - 47, then - 47 ... floored at -100
            want = max(90 - 47 * n_active, -100)
            assert words[0].weight == want
            assert cycles == 11 * n_active + 5, (n_active, cycles)     # fill: 5 cycles

    simulate(h, testbench, monitor=True)
    assert h.syn_ops["both"] == 0
