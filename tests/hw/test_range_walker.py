"""RangeWalker (hw/range_walker.py): keys in, their ranges out as consecutive indices, in order,
none lost or repeated whatever the gaps on ``keys`` and the ``hold`` cycles; back-to-back
ranges without a bubble; empty ranges dropped (``drop_empty``) or one cycle each."""
from __future__ import annotations

import random

import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import data
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import connect
from amaranth.sim import Simulator

from neurocore.hw.range_walker import RangeWalker

KEYS = 16
RANGE = data.StructLayout({"first": 6, "tag": 5, "count": 4})


class Harness(Elaboratable):
    """The walker and its look-up memory: key -> (first, tag, count); fields ``a = first``
    and ``b = tag`` both count up."""

    def __init__(self, table, drop_empty):
        self.walker = RangeWalker(key_bits=4, word=RANGE, starts={"a": "first", "b": "tag"},
                                  drop_empty=drop_empty)
        self.memory = Memory(shape=RANGE, depth=KEYS,
                             init=table)

    def elaborate(self, platform):
        m = Module()
        m.submodules.walker = w = self.walker
        m.submodules.memory = self.memory
        connect(m, w.lookup, self.memory.read_port(domain="sync"))
        return m


@pytest.mark.parametrize("drop_empty", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_random_keys_and_holds(seed, drop_empty):
    rng = random.Random(seed)
    table = [dict(first=rng.randrange(40), tag=rng.randrange(20),
                  count=rng.choice([0, 0, 1, 2, rng.randrange(16)])) for _ in range(KEYS)]
    h = Harness(table, drop_empty)
    w = h.walker
    keys = [rng.randrange(KEYS) for _ in range(40)]
    want = [(key, table[key]["first"] + j, table[key]["tag"] + j)
            for key in keys for j in range(table[key]["count"])]
    got = []
    sim = Simulator(h)
    sim.add_clock(1e-8)

    async def sink(ctx):
        async for _, _, issue, key, a, b in ctx.tick().sample(w.issue, w.key, w.index.a, w.index.b):
            if issue:
                got.append((key, a, b))
            ctx.set(w.hold, rng.random() < 0.2)

    async def source(ctx):
        for key in keys:
            while rng.random() < 0.2:
                await ctx.tick()
            ctx.set(w.keys.payload, key)
            ctx.set(w.keys.valid, 1)
            await ctx.tick().until(w.keys.ready)
            ctx.set(w.keys.valid, 0)
        await ctx.tick().until(~w.busy)
        await ctx.tick()

    sim.add_testbench(source)
    sim.add_testbench(sink, background=True)
    sim.run()
    assert got == want


@pytest.mark.parametrize("drop_empty", [False, True])
def test_back_to_back_cycles(drop_empty):
    """Keys arriving back to back, no hold: the indices follow each other without a gap;
    an empty range between them costs one cycle unless dropped."""
    table = [dict(first=0, tag=0, count=3), dict(first=10, tag=0, count=0),
             dict(first=20, tag=0, count=2)] + [dict(first=0, tag=0, count=0)] * (KEYS - 3)
    h = Harness(table, drop_empty)
    w = h.walker
    issued = []
    sim = Simulator(h)
    sim.add_clock(1e-8)

    async def bench(ctx):
        cycle = 0
        sent = [0, 1, 2]
        ctx.set(w.keys.valid, 1)
        ctx.set(w.keys.payload, sent[0])
        while cycle < 20:
            _, _, ready, issue, a = await ctx.tick().sample(w.keys.ready, w.issue, w.index.a)
            if issue:
                issued.append((cycle, a))
            if ready and sent:
                sent.pop(0)
                ctx.set(w.keys.valid, bool(sent))
                ctx.set(w.keys.payload, sent[0] if sent else 0)
            cycle += 1

    sim.add_testbench(bench)
    sim.run()
    assert [a for _, a in issued] == [0, 1, 2, 20, 21]
    first = issued[0][0]
    assert [c - first for c, _ in issued] == ([0, 1, 2, 3, 4] if drop_empty else [0, 1, 2, 4, 5])


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="key_bits"):
        RangeWalker(key_bits=0, word=RANGE, starts={"a": "first"}, drop_empty=False)
    with pytest.raises(ValueError, match="count"):
        RangeWalker(key_bits=2, word=RANGE, starts={"a": "nothing"}, drop_empty=False)
    with pytest.raises(ValueError, match="count"):
        RangeWalker(key_bits=2, word=data.StructLayout({"first": 4}), starts={"a": "first"},
                    drop_empty=False)
