"""ChipBridge (hw/chip_bridge.py): every spike becomes its route entries' packets, in order,
and the chip outputs reach the host, under random backpressure on both."""
from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from neurocore.hw.chip import ChipConfig, Routes
from neurocore.hw.chip_bridge import ChipBridge
from neurocore.hw.config import CoreConfig


@pytest.mark.parametrize("seed, stall", [(0, 0.0), (1, 0.4), (2, 0.8)])
def test_spikes_become_their_packets(seed, stall):
    rng = random.Random(seed)
    chip = ChipConfig(rows=2, cols=3, core=CoreConfig(neurons=12, axons=32, synapses=64), routes=40)
    lists = [[(rng.randrange(6), rng.randrange(32)) for _ in range(rng.choice([0, 0, 1, 2, 5]))] for _ in range(12)]
    while sum(map(len, lists)) > 40:
        lists[rng.randrange(12)].clear()
    routes = Routes.from_lists(lists)
    to_host = [rng.random() < 0.4 for _ in range(12)]
    dut = ChipBridge(chip=chip, routes=routes, to_host=to_host)
    spikes = [(rng.randrange(12), step) for step in range(20) for _ in range(rng.randint(0, 3))]
    want_packets = [(k // 3, k % 3, a) for n, _ in spikes for k, a in lists[n]]
    want_host = [(n, t) for n, t in spikes if to_host[n]]
    got_packets, got_host = [], []
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def bench(ctx):
        queue = list(spikes)
        for _ in range(5000):
            if queue:
                ctx.set(dut.spikes.payload, {"neuron": queue[0][0], "step": queue[0][1]})
            ctx.set(dut.spikes.valid, int(bool(queue)))
            ctx.set(dut.packets.ready, int(rng.random() >= stall))
            ctx.set(dut.host.ready, int(rng.random() >= stall))
            await ctx.delay(1e-9)
            taken = ctx.get(dut.spikes.valid) and ctx.get(dut.spikes.ready)
            if ctx.get(dut.packets.valid) and ctx.get(dut.packets.ready):
                p = ctx.get(dut.packets.payload)
                got_packets.append((p.row, p.col, p.axon))
            if ctx.get(dut.host.valid) and ctx.get(dut.host.ready):
                h = ctx.get(dut.host.payload)
                got_host.append((h.neuron, h.step))
            await ctx.tick()
            if taken:
                queue.pop(0)
            if not queue and not ctx.get(dut.busy):
                break
        assert not queue

    sim.add_testbench(bench)
    sim.run()
    assert got_packets == want_packets
    assert got_host == want_host
    assert len(want_packets) > 5 and len(want_host) > 2


def test_bridge_refuses_a_table_the_chip_cannot_hold():
    chip = ChipConfig(rows=1, cols=2, core=CoreConfig(neurons=2, axons=4, synapses=8), routes=1)
    with pytest.raises(ValueError, match="exceed"):
        ChipBridge(chip=chip, routes=Routes.from_lists([[(1, 0), (1, 1)], []]), to_host=[False, False])
    with pytest.raises(ValueError, match="one flag per neuron"):
        ChipBridge(chip=chip, routes=Routes.from_lists([[(1, 0)], []]), to_host=[False])
