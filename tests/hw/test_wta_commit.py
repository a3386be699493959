"""Tests of ``neurocore.hw.wta_commit.WtaCommit``: the group winners and the commit pass,
against ``neurocore.sim.reference.wta`` and ``reference.reset``; explicit groups and
structural block ranges (k-WTA).

The testbench plays the neuron unit's scan (stage C looks up the group of the next neuron
while stage D offers a candidate; a neuron without group that fires stalls the scan for a
random number of cycles) and then the commit, with a PARAM memory read at the addresses the
block asks for and random backpressure on the winners. Checked on every pass: the STATE word
written for every WTA candidate (winner: reset and refractory period; loser: 0, 0), once each
in index order; the winners offered, in index order; ``pending``; the commit's cycle count
(``c + 2`` for ``c`` candidates, plus one per stalled cycle); and that the group table cleaned
itself (several passes on one instance). With block ranges (random, back to back or with
gaps, loaded into random slots in random order, the unused slots with garbage and ``count =
0``), mixed with explicit groups and neurons in no group, also ``in_block`` for every neuron
in stage D (a block member never fires in the scan, so it never stalls it).
"""
from __future__ import annotations

import random

import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In
from amaranth.sim import Simulator

from neurocore.hw.config import CoreConfig
from neurocore.hw.layouts import neuron_param_layout
from neurocore.hw.program import WtaBlocks
from neurocore.hw.signatures import WtaBlocksSignature
from neurocore.hw.widths import WTA_K_MAX
from neurocore.hw.wta_commit import WtaCommit
from neurocore.sim import reference

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


class Harness(Elaboratable):
    """The block and the PARAM memory the unit would read for it."""

    def __init__(self, cfg: CoreConfig):
        self.cfg = cfg
        self.wta = WtaCommit(config=cfg)
        self.param = Memory(shape=neuron_param_layout(cfg), depth=max(cfg.neurons, 2), init=[])

    def elaborate(self, platform):
        m = Module()
        m.submodules.wta = wta = self.wta
        m.submodules.param = self.param
        rd = self.param.read_port()
        m.d.comb += [rd.addr.eq(wta.read_neuron), rd.en.eq(wta.read & wta.run),
                     wta.reset_mode.eq(rd.data.reset_mode), wta.refractory.eq(rd.data.refractory)]
        return m


def random_pass(rng: random.Random, cfg: CoreConfig, block=None):
    """Per neuron: (candidate, margin, group, reset_mode, refractory); a block member
    (``block[i] >= 0``) has group 0."""
    n = cfg.neurons
    groups = rng.sample(range(1, cfg.wta_groups + 1), min(cfg.wta_groups, rng.randint(1, 4)))
    margin_max = rng.choice([2, 5, cfg.theta_max])       # small: many ties
    p_candidate = rng.choice([0.5, 0.5, 0.2, 0.9])
    rows = []
    for i in range(n):
        in_block = block is not None and block[i] >= 0
        rows.append((rng.random() < p_candidate, rng.randint(0, margin_max),
                     0 if in_block or rng.random() < 0.25 else rng.choice(groups),
                     rng.randint(0, 1), rng.choice([0, 1, 7, 255])))
    return rows


def random_block_ranges(rng: random.Random, n: int, slots: int) -> list[tuple[int, int, int, int]]:
    """Up to ``slots`` valid, non-overlapping block ranges ``(first, size, count, k)`` inside
    neurons ``0 .. n-1``: back to back or with gaps, blocks of 1 to ``n`` neurons, ``k`` from 1
    to ``min(size, WTA_K_MAX)``; in random order."""
    ranges, pos = [], rng.choice([0, 0, 1, rng.randint(0, n - 1)])
    for _ in range(rng.randint(0 if rng.random() < 0.1 else 1, slots)):
        if pos >= n:
            break
        size = rng.randint(1, min(n - pos, rng.choice([1, 2, 4, 6, n])))
        count = rng.randint(1, min((n - pos) // size, rng.choice([1, 2, 3, n])))
        ranges.append((pos, size, count, rng.randint(1, min(size, WTA_K_MAX))))
        pos += size * count + rng.choice([0, 0, 1, 3])
    rng.shuffle(ranges)
    return ranges


def block_arrays(ranges, n: int) -> tuple[list[int], list[int]]:
    """``(block, block_k)`` of ``WtaBlocks.block_of``: the block of every neuron (-1: none)."""
    blocks = WtaBlocks(*([r[j] for r in ranges] for j in range(4)))
    block, block_k = blocks.block_of(n)
    return block.tolist(), block_k.tolist()


def drive_blocks(ctx, port, cfg: CoreConfig, ranges, rng: random.Random) -> None:
    """Load ``ranges`` into random slots of a ``WtaBlocksSignature`` port; every other slot
    gets ``count = 0`` (unused) and random garbage in its other fields."""
    slots = WtaBlocksSignature(cfg).ranges
    nib = cfg.neuron_index_bits
    where = rng.sample(range(slots), len(ranges))
    fields = {"first": [], "size": [], "count": [], "k": []}
    for slot in range(slots):
        if slot in where:
            first, size, count, k = ranges[where.index(slot)]
        else:
            first, size, count, k = (rng.randint(0, (1 << nib) - 1), rng.randint(0, (1 << (nib + 1)) - 1),
                                     0, rng.randint(0, 7))
        for name, value in zip(fields, (first, size, count, k)):
            fields[name].append(value)
    for name, values in fields.items():
        ctx.set(getattr(port, name), values)


async def run_pass(ctx, h: Harness, rng: random.Random, rows, p_stall: float, p_ready: float, block=None):
    """Scan then commit; returns (writes, winners offered, commit cycles, stalled cycles).
    With ``block`` (the block of every neuron, -1: none; the ranges already driven), the
    block ports are played too and ``in_block`` is checked."""
    w = h.wta
    for i, (_, _, _, mode, refractory) in enumerate(rows):
        ctx.set(h.param.data[i], {"reset_mode": mode, "refractory": refractory})
    ctx.set(w.clear, 1)
    await ctx.tick()
    ctx.set(w.clear, 0)
    # scan: c and d are the neurons in stages C and D (None: empty)
    queue = list(range(len(rows)))
    c = d = None
    while queue or c is not None or d is not None:
        in_block = False
        if block is not None:
            in_block = bool(ctx.get(w.in_block))
            assert d is None or in_block == (block[d] >= 0), (d, in_block)
        # group 0 and not in a block: fires, may stall
        fires = d is not None and rows[d][0] and rows[d][2] == 0 and not in_block
        advance = not (fires and rng.random() < p_stall)
        ctx.set(w.lookup, c is not None and advance)
        ctx.set(w.lookup_group, rows[c][2] if c is not None else 0)
        ctx.set(w.candidate, d is not None and rows[d][0])
        ctx.set(w.cand_neuron, d if d is not None else 0)
        ctx.set(w.cand_margin, rows[d][1] if d is not None else 0)
        ctx.set(w.cand_group, rows[d][2] if d is not None else 0)
        if block is not None:
            ctx.set(w.lookup_neuron, c if c is not None else 0)
            ctx.set(w.scan_valid, d is not None and advance)
            ctx.set(w.scan_last, d is not None and not queue and c is None)
        last_scan = not queue and c is None and d is not None and advance
        if last_scan:
            pending = ctx.get(w.pending)
        await ctx.tick()
        if advance:
            d, c = c, (queue.pop(0) if queue else None)
        if last_scan:
            break
    ctx.set(w.candidate, 0)
    ctx.set(w.lookup, 0)
    if block is not None:
        ctx.set(w.scan_valid, 0)
    writes, winners, cycles, stalls = [], [], 0, 0
    if pending:
        ctx.set(w.begin, 1)
        await ctx.tick()
        ctx.set(w.begin, 0)
        ctx.set(w.run, 1)
        while True:
            ready = rng.random() < p_ready
            ctx.set(w.ready, ready)
            if ctx.get(w.fired_valid):
                if ready:
                    winners.append(ctx.get(w.neuron))
                else:
                    stalls += 1
            if ctx.get(w.write):
                state = ctx.get(w.state)
                writes.append((ctx.get(w.neuron), bool(ctx.get(w.win)), int(state.v), int(state.refrac)))
            last = ctx.get(w.last)
            await ctx.tick()
            cycles += 1
            if last:
                break
            assert cycles < 10 * len(rows) + 10 * (stalls + 1), "commit does not finish"
        ctx.set(w.run, 0)
    return pending, writes, winners, cycles, stalls


CONFIGS = {
    "g3_v8": (CoreConfig(neurons=16, axons=16, synapses=16, membrane_bits=8, accumulator_bits=8,
                         weight_bits=8, trace_bits=4, wta_groups=3), 40),
    "g1_n13": (CoreConfig(neurons=13, axons=16, synapses=16, membrane_bits=12, accumulator_bits=12,
                          wta_groups=1), 30),
    "g256_v20": (CoreConfig(neurons=24, axons=16, synapses=16, membrane_bits=20, accumulator_bits=8,
                            weight_bits=8, wta_groups=256), 30),
    "n1": (CoreConfig(neurons=1, axons=2, synapses=2, membrane_bits=8, accumulator_bits=8, wta_groups=1), 20),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_commit_matches_reference(name):
    cfg, passes = CONFIGS[name]
    rng = random.Random(f"wta-{name}")
    h = Harness(cfg)
    totals = dict(winners=0, losers=0, stalls=0, ties=0)

    async def testbench(ctx):
        for _ in range(passes):
            rows = random_pass(rng, cfg)
            candidate = [r[0] for r in rows]
            margin = [r[1] for r in rows]
            group = [r[2] for r in rows]
            fired, loser = reference.wta(candidate, margin, group)
            pending, writes, winners, cycles, stalls = await run_pass(
                ctx, h, rng, rows, rng.choice([0.0, 0.5]), rng.choice([1.0, 0.6, 0.2]))
            in_group = [i for i in range(len(rows)) if candidate[i] and group[i] != 0]
            assert pending == bool(in_group)
            assert writes == [(i, fired[i],
                               reference.reset(margin[i], rows[i][3]) if fired[i] else 0,
                               rows[i][4] if fired[i] else 0) for i in in_group]
            assert [loser[i] for i in in_group] == [not fired[i] for i in in_group]
            assert winners == [i for i in in_group if fired[i]]
            assert cycles == (len(in_group) + 2 + stalls if in_group else 0), (cycles, len(in_group), stalls)
            totals["winners"] += len(winners)
            totals["losers"] += sum(loser)
            totals["stalls"] += stalls
            totals["ties"] += sum(1 for i in in_group for j in in_group
                                  if j > i and group[i] == group[j] and margin[i] == margin[j])

    sim = Simulator(h)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert totals["winners"] > 0 and totals["stalls"] > 0, totals
    if name != "n1":
        assert totals["losers"] > 0 and totals["ties"] > 0, totals


BLOCK_CONFIGS = {
    "b4_g3_v8": (CoreConfig(neurons=24, axons=16, synapses=16, membrane_bits=8, accumulator_bits=8,
                            weight_bits=8, trace_bits=4, wta_groups=3, wta_blocks=4), 60),
    "b1_g1_n13": (CoreConfig(neurons=13, axons=16, synapses=16, membrane_bits=12, accumulator_bits=12,
                             wta_groups=1, wta_blocks=1), 50),
    "b3_g256_v20": (CoreConfig(neurons=32, axons=16, synapses=16, membrane_bits=20, accumulator_bits=8,
                               weight_bits=8, wta_groups=256, wta_blocks=3), 40),
    "b1_n1": (CoreConfig(neurons=1, axons=2, synapses=2, membrane_bits=8, accumulator_bits=8,
                         wta_groups=1, wta_blocks=1), 20),
}


@pytest.mark.parametrize("name", list(BLOCK_CONFIGS))
def test_blocks_match_reference(name):
    """k-WTA block ranges mixed with explicit groups and neurons in no group: every WTA
    candidate's STATE word (once, in index order), the winners offered (in index order) and
    the commit's cycles (one per WTA candidate + 2, plus stalls) match ``reference.wta``."""
    cfg, passes = BLOCK_CONFIGS[name]
    rng = random.Random(f"wta-blocks-{name}")
    h = Harness(cfg)
    totals = dict(winners=0, losers=0, stalls=0, ties=0, block_winners=0, block_losers=0)
    seen = set()                 # block candidate counts seen: "0", "1", "<k", "k", ">k"

    async def testbench(ctx):
        for _ in range(passes):
            ranges = random_block_ranges(rng, cfg.neurons, WtaBlocksSignature(cfg).ranges)
            block, block_k = block_arrays(ranges, cfg.neurons)
            drive_blocks(ctx, h.wta.blocks, cfg, ranges, rng)
            rows = random_pass(rng, cfg, block)
            candidate = [r[0] for r in rows]
            margin = [r[1] for r in rows]
            group = [r[2] for r in rows]
            fired, loser = reference.wta(candidate, margin, group, block, block_k)
            pending, writes, winners, cycles, stalls = await run_pass(
                ctx, h, rng, rows, rng.choice([0.0, 0.5]), rng.choice([1.0, 0.6, 0.2]), block)
            in_wta = [i for i in range(len(rows)) if candidate[i] and (group[i] != 0 or block[i] >= 0)]
            assert pending == bool(in_wta)
            assert writes == [(i, fired[i],
                               reference.reset(margin[i], rows[i][3]) if fired[i] else 0,
                               rows[i][4] if fired[i] else 0) for i in in_wta]
            assert [loser[i] for i in in_wta] == [not fired[i] for i in in_wta]
            assert winners == [i for i in in_wta if fired[i]]
            assert cycles == (len(in_wta) + 2 + stalls if in_wta else 0), (cycles, len(in_wta), stalls)
            totals["winners"] += len(winners)
            totals["losers"] += sum(loser)
            totals["stalls"] += stalls
            totals["block_winners"] += sum(fired[i] for i in in_wta if block[i] >= 0)
            totals["block_losers"] += sum(loser[i] for i in in_wta if block[i] >= 0)
            totals["ties"] += sum(1 for i in in_wta for j in in_wta
                                  if j > i and block[i] >= 0 and block[i] == block[j] and margin[i] == margin[j])
            for b, k in enumerate(block_k):
                c = sum(1 for i in in_wta if block[i] == b)
                seen.add("0" if c == 0 else "1" if c == 1 else "<k" if c < k else "k" if c == k else ">k")

    sim = Simulator(h)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert totals["block_winners"] > 0 and totals["stalls"] > 0, totals
    if name != "b1_n1":
        assert totals["block_losers"] > 0 and totals["ties"] > 0, totals
        assert seen == {"0", "1", "<k", "k", ">k"}, seen


def test_block_ports_only_with_blocks():
    """Without block ranges (``wta_blocks == 0``) the block has no block port and no block
    hardware (no key buffer, no top-k registers)."""
    from amaranth.back import verilog

    plain = WtaCommit(config=CoreConfig(neurons=16, wta_blocks=0))
    blocks = WtaCommit(config=CoreConfig(neurons=16, wta_blocks=2))
    for name in ("blocks", "lookup_neuron", "in_block", "scan_valid", "scan_last"):
        assert name not in plain.signature.members and name in blocks.signature.members
    assert blocks.signature.members["blocks"] == In(WtaBlocksSignature(CoreConfig(neurons=16, wta_blocks=2)))
    assert "key_mem" not in verilog.convert(plain, name="w")
    assert "key_mem" in verilog.convert(blocks, name="w")


def test_needs_wta():
    with pytest.raises(ValueError, match="no WTA"):
        WtaCommit(config=CoreConfig(wta=False))
    with pytest.raises(ValueError, match="CoreConfig"):
        WtaCommit(config=None)
