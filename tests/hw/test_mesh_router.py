"""MeshRouter (hw/mesh_router.py): dimension-order routing, no loss, no duplication, order kept
per input and output, under random traffic and random backpressure."""
from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from neurocore.hw.chip import ChipConfig
from neurocore.hw.config import CoreConfig
from neurocore.hw.mesh_router import EAST, LOCAL, NORTH, PORTS, SOUTH, WEST, MeshRouter

CHIP = ChipConfig(rows=3, cols=3, core=CoreConfig(neurons=4, axons=1024, synapses=32), link_fifo=2)


def expected_port(row, col, dest_row, dest_col):
    if dest_col > col:
        return EAST
    if dest_col < col:
        return WEST
    if dest_row > row:
        return SOUTH
    if dest_row < row:
        return NORTH
    return LOCAL


def offer(ctx, port, queue, p_valid=1.0, rng=None):
    """Drive the head of ``queue`` (``(row, col, axon)`` packets) on stream ``port``."""
    if queue and (rng is None or rng.random() < p_valid):
        r, c, a = queue[0]
        ctx.set(port.payload, {"row": r, "col": c, "axon": a})
        ctx.set(port.valid, 1)
    else:
        ctx.set(port.valid, 0)


def moved(ctx, port):
    """Whether ``port`` transfers in this cycle, and its payload as ``(row, col, axon)``."""
    p = ctx.get(port.payload)
    return bool(ctx.get(port.valid) and ctx.get(port.ready)), (p.row, p.col, p.axon)


@pytest.mark.parametrize("seed, stall", [(0, 0.0), (1, 0.5), (2, 0.9)])
def test_random_traffic_through_the_centre_router(seed, stall):
    rng = random.Random(seed)
    dut = MeshRouter(chip=CHIP, row=1, col=1)
    sent = {p: [] for p in range(5)}
    got = {p: [] for p in range(5)}
    queues = {p: [(rng.randrange(3), rng.randrange(3), 100 * p + i) for i in range(40)] for p in range(5)}   # unique
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def bench(ctx):
        for cycle in range(3000):
            for p, name in enumerate(PORTS):
                offer(ctx, getattr(dut, f"i_{name}"), queues[p], 0.7, rng)
                ctx.set(getattr(dut, f"o_{name}").ready, int(rng.random() >= stall))
            await ctx.delay(1e-9)
            moved_in = [moved(ctx, getattr(dut, f"i_{n}"))[0] for n in PORTS]
            moved_out = [moved(ctx, getattr(dut, f"o_{n}")) for n in PORTS]
            await ctx.tick()
            for p in range(5):
                if moved_in[p]:
                    sent[p].append(queues[p].pop(0))
                ok, packet = moved_out[p]
                if ok:
                    got[p].append(packet)
            if not any(queues.values()) and not ctx.get(dut.busy) and cycle > 50:
                break
        assert not any(queues.values()), "inputs never drained"

    sim.add_testbench(bench)
    sim.run()
    # every packet left exactly once, through the dimension-order port
    want = {p: [] for p in range(5)}
    for p in range(5):
        for pkt in sent[p]:
            want[expected_port(1, 1, pkt[0], pkt[1])].append((p, pkt))
    for o in range(5):
        assert sorted(got[o]) == sorted(pkt for _, pkt in want[o]), f"output {PORTS[o]}"
        # the packets of one input keep their order on an output
        for p in range(5):
            mine = [pkt for q, pkt in want[o] if q == p]
            assert [pkt for pkt in got[o] if pkt in mine] == mine


def test_router_refuses_positions_outside_the_grid():
    with pytest.raises(ValueError, match="row must be an integer in 0..2, got 3"):
        MeshRouter(chip=CHIP, row=3, col=0)


@pytest.mark.parametrize("rows, cols, stall, seed", [(2, 2, 0.0, 0), (1, 4, 0.5, 1), (3, 3, 0.8, 2), (2, 3, 0.3, 3)])
def test_a_mesh_delivers_every_packet_once_under_backpressure(rows, cols, stall, seed):
    """All cores inject at once to random destinations (heavy traffic, full FIFOs) while the
    local outputs stall at random: every packet reaches its destination core exactly once,
    the mesh drains (no deadlock), and ``busy`` falls only then."""
    from neurocore.hw.mesh import Mesh

    chip = ChipConfig(rows=rows, cols=cols, core=CoreConfig(neurons=4, axons=1024, synapses=32), link_fifo=2)
    rng = random.Random(seed)
    n = chip.n_cores
    dut = Mesh(chip=chip)
    queues = {k: [(rng.randrange(rows), rng.randrange(cols), 100 * k + i) for i in range(30)] for k in range(n)}
    want = {k: [] for k in range(n)}
    for k, packets in queues.items():
        for r, c, a in packets:
            want[r * cols + c].append((r, c, a))
    got = {k: [] for k in range(n)}
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def bench(ctx):
        for cycle in range(20000):
            for k in range(n):
                offer(ctx, getattr(dut, f"inject_{k}"), queues[k])
                ctx.set(getattr(dut, f"deliver_{k}").ready, int(rng.random() >= stall))
            await ctx.delay(1e-9)
            accepted = [moved(ctx, getattr(dut, f"inject_{k}"))[0] for k in range(n)]
            out = [moved(ctx, getattr(dut, f"deliver_{k}")) for k in range(n)]
            busy = ctx.get(dut.busy)
            await ctx.tick()
            for k in range(n):
                if accepted[k]:
                    queues[k].pop(0)
                if out[k][0]:
                    got[k].append(out[k][1])
            if not any(queues.values()) and not busy and not any(a for a, _ in out):
                break
        assert not any(queues.values()) and not ctx.get(dut.busy), f"mesh did not drain in {cycle} cycles"

    sim.add_testbench(bench)
    sim.run()
    for k in range(n):
        assert sorted(got[k]) == sorted(want[k]), f"core {k}"


@pytest.mark.parametrize("cols, hops", [(1, 0), (2, 1), (4, 3)])
def test_latency_is_two_cycles_per_router(cols, hops):
    """Without contention a packet crossing ``h`` links is delivered ``2 (h + 1)`` cycles
    after the cycle it was injected in (each router's FIFO: a write, then a registered read)."""
    from neurocore.hw.mesh import Mesh

    chip = ChipConfig(rows=1, cols=cols, core=CoreConfig(neurons=4, axons=16, synapses=8), link_fifo=2)
    dut = Mesh(chip=chip)
    seen = {}

    async def bench(ctx):
        for k in range(cols):
            ctx.set(getattr(dut, f"deliver_{k}").ready, 1)
        ctx.set(dut.inject_0.payload, {"row": 0, "col": cols - 1, "axon": 3})
        ctx.set(dut.inject_0.valid, 1)
        await ctx.tick()
        ctx.set(dut.inject_0.valid, 0)
        for cycle in range(1, 50):
            await ctx.delay(1e-9)
            if ctx.get(getattr(dut, f"deliver_{cols - 1}").valid):
                seen["cycles"] = cycle
                break
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen["cycles"] == 2 * (hops + 1)
