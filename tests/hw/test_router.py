"""SpikeRouter (hw/router.py): every fired neuron reaches the output stream (if an output, in
order, none lost while ``spikes`` stalls), the other pending bank (if routed) and the LTP list
(with ``learn``); banks swap at ``step_end``. Random steps with random stalls against a model."""
from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from neurocore.hw.config import CoreConfig
from neurocore.hw.router import SpikeRouter

CFG = CoreConfig(neurons=16, axons=8, synapses=32)


async def _read_port(ctx, port, count):
    words = []
    for i in range(count):
        ctx.set(port.addr, i)
        ctx.set(port.en, 1)
        await ctx.tick()
        ctx.set(port.en, 0)
        words.append(ctx.get(port.data))
    return words


@pytest.mark.parametrize("p_stall", [0.0, 0.5])
def test_random_steps(p_stall):
    dut = SpikeRouter(config=CFG)
    rng = random.Random(int(p_stall * 10))
    stats = {"outputs": 0, "routes": 0, "ltp": 0, "stalls": 0}
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    out = []

    async def consumer(ctx):
        async for _, _, valid, payload in ctx.tick().sample(dut.spikes.valid, dut.spikes.payload):
            ready = rng.random() >= p_stall
            if valid and ctx.get(dut.spikes.ready):
                out.append((payload.neuron, payload.step))
            ctx.set(dut.spikes.ready, ready)
            stats["stalls"] += not ready

    async def bench(ctx):
        pending = []                      # what the previous step routed
        for step in range(10):
            learn = rng.random() < 0.7
            ctx.set(dut.learn, learn)
            ctx.set(dut.step, step)
            ctx.set(dut.step_start, 1)
            await ctx.tick()
            ctx.set(dut.step_start, 0)
            assert ctx.get(dut.pending_count) == len(pending)
            assert await _read_port(ctx, dut.pending, len(pending)) == pending
            fired = rng.sample(range(CFG.neurons), rng.randint(0, 10))
            words = [dict(neuron=n, route_valid=rng.random() < 0.5, route=rng.randrange(CFG.axons),
                          output=rng.random() < 0.6) for n in fired]
            out.clear()
            ctx.set(dut.enable, 1)
            for word in words:
                ctx.set(dut.fired.payload, word)
                ctx.set(dut.fired.valid, 1)
                await ctx.tick().until(dut.fired.ready)
            ctx.set(dut.fired.valid, 0)
            ctx.set(dut.enable, 0)
            await ctx.tick().repeat(3)
            assert out == [(w["neuron"], step) for w in words if w["output"]]
            if learn:
                assert ctx.get(dut.ltp_count) == len(fired)
                assert await _read_port(ctx, dut.ltp_list, len(fired)) == fired
            else:
                assert ctx.get(dut.ltp_count) == 0
            ctx.set(dut.step_end, 1)
            await ctx.tick()
            ctx.set(dut.step_end, 0)
            pending = [w["route"] for w in words if w["route_valid"]]
            stats["outputs"] += len(out)
            stats["routes"] += len(pending)
            stats["ltp"] += len(fired) * learn
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        assert ctx.get(dut.pending_count) == 0
        assert stats["outputs"] > 10 and stats["routes"] > 10 and stats["ltp"] > 10, stats

    sim.add_testbench(bench)
    sim.add_testbench(consumer, background=True)
    sim.run()
    assert (stats["stalls"] > 20) == (p_stall > 0)


def test_not_enabled_takes_nothing():
    dut = SpikeRouter(config=CFG)
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def bench(ctx):
        ctx.set(dut.spikes.ready, 1)
        ctx.set(dut.fired.payload, dict(neuron=3, route_valid=1, route=2, output=1))
        ctx.set(dut.fired.valid, 1)
        for _ in range(4):
            await ctx.tick()
            assert not ctx.get(dut.fired.ready) and not ctx.get(dut.spikes.valid)
        ctx.set(dut.step_end, 1)
        await ctx.tick()
        assert ctx.get(dut.pending_count) == 0

    sim.add_testbench(bench)
    sim.run()
