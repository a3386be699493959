"""InputSpikeQueue (hw/input_queue.py): every accepted axon < n_inputs is queued once per step,
in arrival order, whatever the repeats (back to back or apart); the rest are rejected. Random
spike trains against a model; the queue is read back on ``feed`` and released with ``done``."""
from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from neurocore.hw.config import CoreConfig
from neurocore.hw.input_queue import InputSpikeQueue

CFG = CoreConfig(neurons=4, axons=16, synapses=32)


@pytest.mark.parametrize("seed", range(3))
def test_random_trains_dedup_and_reject(seed):
    dut = InputSpikeQueue(config=CFG)
    rng = random.Random(seed)
    stats = {"rejected": 0, "repeats": 0, "queued": 0}
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def bench(ctx):
        for step in range(12):
            n_inputs = rng.randint(1, CFG.axons)
            ctx.set(dut.n_inputs, n_inputs)
            ctx.set(dut.enable, 1)
            want, rejected = [], 0
            for _ in range(rng.randint(0, 30)):
                axon = rng.choice([rng.randrange(CFG.axons), *(want[-1:] * 3)])
                ctx.set(dut.spikes.payload, axon)
                ctx.set(dut.spikes.valid, 1)
                _, _, rej = await ctx.tick().sample(dut.rejected)
                rejected += rej
                if axon >= n_inputs:
                    assert rej
                elif axon in want:
                    stats["repeats"] += 1
                else:
                    want.append(axon)
                if rng.random() < 0.3:           # an idle cycle now and then
                    ctx.set(dut.spikes.valid, 0)
                    await ctx.tick()
            ctx.set(dut.spikes.valid, 0)
            await ctx.tick().until(~dut.settling)
            ctx.set(dut.enable, 0)
            assert ctx.get(dut.spikes.ready) == 0
            assert ctx.get(dut.count) == len(want), (want, ctx.get(dut.count))
            # Read the queue back and release each axon (the controller's FEED).
            got = []
            for i in range(len(want)):
                ctx.set(dut.feed.addr, i)
                ctx.set(dut.feed.en, 1)
                await ctx.tick()
                ctx.set(dut.feed.en, 0)
                got.append(ctx.get(dut.feed.data))
                ctx.set(dut.done_axon, got[-1])
                ctx.set(dut.done, 1)
                await ctx.tick()
                ctx.set(dut.done, 0)
            assert got == want
            ctx.set(dut.restart, 1)
            await ctx.tick()
            ctx.set(dut.restart, 0)
            assert ctx.get(dut.count) == 0
            stats["rejected"] += rejected
            stats["queued"] += len(want)
        assert stats["rejected"] > 5 and stats["repeats"] > 10 and stats["queued"] > 10, stats

    sim.add_testbench(bench)
    sim.run()


def test_zero_clears_the_bitmap():
    """An axon queued and never released (``done``) is a repeat in the next step, unless the
    clear sweep (``zero``) cleared its bit."""
    dut = InputSpikeQueue(config=CFG)
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def put(ctx, axon):
        ctx.set(dut.spikes.payload, axon)
        ctx.set(dut.spikes.valid, 1)
        await ctx.tick()
        ctx.set(dut.spikes.valid, 0)
        await ctx.tick().until(~dut.settling)

    async def bench(ctx):
        ctx.set(dut.n_inputs, CFG.axons)
        ctx.set(dut.enable, 1)
        await put(ctx, 5)
        ctx.set(dut.restart, 1)
        await ctx.tick()
        ctx.set(dut.restart, 0)
        await put(ctx, 5)
        assert ctx.get(dut.count) == 0              # still marked queued: dropped
        ctx.set(dut.zero, 1)
        for i in range(CFG.axons + 1):
            ctx.set(dut.zero_addr, i)
            await ctx.tick()
        ctx.set(dut.zero, 0)
        await put(ctx, 5)
        assert ctx.get(dut.count) == 1

    sim.add_testbench(bench)
    sim.run()
