"""StepController (hw/controller.py) alone, the blocks around it played by the testbench:
host accesses (timing, errors) and the sequence of one step (FEED, UPDATE, LTP, FINISH)."""
from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from neurocore.hw.config import CoreConfig
from neurocore.hw.controller import StepController
from neurocore.hw.host import Opcode, Region
from neurocore.sim.host_protocol import Command, step_command

CFG = CoreConfig(neurons=4, axons=8, synapses=16)


async def _command(ctx, dut, c):
    ctx.set(dut.cmd.payload.as_value(), c.packed(CFG))
    ctx.set(dut.cmd.valid, 1)
    await ctx.tick().until(dut.cmd.ready)
    ctx.set(dut.cmd.valid, 0)


def test_host_access():
    dut = StepController(config=CFG)
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def bench(ctx):
        ctx.set(dut.rsp.ready, 1)
        # WRITE to a memory: the port is written one cycle after the command is accepted.
        await _command(ctx, dut, Command(Opcode.WRITE, Region.SYNAPSE, 9, 0x155))
        wr = dut.host_synapse_wr
        assert ctx.get(wr.en) and ctx.get(wr.addr) == 9 and ctx.get(wr.data.as_value()) == 0x155
        await ctx.tick()
        assert not ctx.get(wr.en)
        # READ of a memory: the read port is enabled (never the write port), the word is the answer.
        ctx.set(dut.host_state_rd.data.as_value(), 0x1234)
        await _command(ctx, dut, Command(Opcode.READ, Region.STATE, 2))
        assert ctx.get(dut.host_state_rd.en) and ctx.get(dut.host_state_rd.addr) == 2
        assert not ctx.get(dut.host_state_wr.en)
        word, = await ctx.tick().sample(dut.rsp.payload).until(dut.rsp.valid)
        assert word == 0x1234
        await ctx.tick()
        # Errors: an index outside the region (a READ answers 0); an index inside is fine.
        for c, want in ((Command(Opcode.WRITE, Region.PARAM, 4, 1), 1),
                        (Command(Opcode.WRITE, Region.PRE, 7, 1), 0),
                        (Command(Opcode.READ, Region.ACC, 4), 1)):
            ctx.set(dut.cmd.payload.as_value(), c.packed(CFG))
            ctx.set(dut.cmd.valid, 1)
            error, = await ctx.tick().sample(dut.error).until(dut.cmd.ready)
            ctx.set(dut.cmd.valid, 0)
            assert error == want, c
        word, = await ctx.tick().sample(dut.rsp.payload).until(dut.rsp.valid)
        assert word == 0
        await ctx.tick()
        # A register WRITE goes to the register file in the accepting cycle.
        ctx.set(dut.cmd.payload.as_value(), Command(Opcode.WRITE, Region.REG, 5, 77).packed(CFG))
        ctx.set(dut.cmd.valid, 1)
        await ctx.delay(1e-9)
        assert ctx.get(dut.reg_write) and ctx.get(dut.reg_index) == 5 and ctx.get(dut.reg_data) == 77
        await ctx.tick()
        ctx.set(dut.cmd.valid, 0)
        # A command waits while an input spike settles.
        ctx.set(dut.inq_settling, 1)
        ctx.set(dut.cmd.valid, 1)
        await ctx.delay(1e-9)
        assert not ctx.get(dut.cmd.ready)
        ctx.set(dut.inq_settling, 0)
        ctx.set(dut.cmd.valid, 0)

    sim.add_testbench(bench)
    sim.run()


EVENTS = ("step_start", "step_cycle", "feed_cycle", "update_cycle", "step_done", "step_end",
          "inq_restart", "nu_start", "sweep_start", "inq_done", "integ_clear")


@pytest.mark.parametrize("learn", [0, 1])
def test_one_step(learn):
    dut = StepController(config=CFG)
    rng = random.Random(learn)
    events = dict.fromkeys(EVENTS, 0)
    fed, ltp_fired, active = [], [], []
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def blocks(ctx):
        """The queues are read ports (the word of an address one cycle later); the
        integrator and the LTP engine take words at random; done pulses some cycles after
        start. Everything is sampled at the clock edge."""
        nu_left = sweep_left = -1
        ports = (dut.inq_feed, dut.pending, dut.ltp_list)
        async for _, _, *v in ctx.tick().sample(
                *(x for p in ports for x in (p.en, p.addr)),
                dut.axons.valid, dut.axons.ready, dut.axons.payload,
                dut.ltp_fired.valid, dut.ltp_fired.ready, dut.ltp_fired.payload,
                dut.active_wr.en, dut.active_wr.addr, dut.nu_start, dut.sweep_start,
                *(getattr(dut, name) for name in EVENTS)):
            for port, word, en, addr in zip(ports, (lambda a: a + 1, lambda a: 7 - a, lambda a: 3 - a),
                                            v[0:6:2], v[1:6:2]):
                if en:
                    ctx.set(port.data, word(addr))
            a_valid, a_ready, a_word, l_valid, l_ready, l_word, w_en, w_addr, nu_start, sweep_start = v[6:16]
            if a_valid and a_ready:
                fed.append(a_word)
            if l_valid and l_ready:
                ltp_fired.append(l_word)
            if w_en:
                active.append(w_addr)
            for name, value in zip(EVENTS, v[16:]):
                events[name] += value
            ctx.set(dut.axons.ready, rng.random() < 0.6)
            ctx.set(dut.ltp_fired.ready, rng.random() < 0.6)
            if nu_start:
                nu_left, sweep_left = 5, (3 if sweep_start else -1)
            ctx.set(dut.nu_done, nu_left == 0)
            ctx.set(dut.sweep_done, sweep_left == 0)
            nu_left, sweep_left = nu_left - 1, sweep_left - 1

    async def bench(ctx):
        ctx.set(dut.learn, learn)
        ctx.set(dut.inq_count, 3)
        ctx.set(dut.pending_count, 2)
        ctx.set(dut.ltp_count, 2)
        await _command(ctx, dut, step_command())
        assert ctx.get(dut.busy)
        await ctx.tick().until(~dut.busy)
        await ctx.tick()

    sim.add_testbench(bench)
    sim.add_testbench(blocks, background=True)
    sim.run()
    assert fed == [1, 2, 3, 7, 6]
    assert ltp_fired == [3, 2]                 # the LTP state runs with and without learn
    assert active == (fed if learn else [])
    assert events["inq_done"] == 3 and events["nu_start"] == 1
    assert events["sweep_start"] == learn
    for name in ("step_start", "integ_clear", "step_done", "step_end", "inq_restart"):
        assert events[name] == 1, name
    assert events["step_cycle"] >= events["feed_cycle"] + events["update_cycle"] + 1
    assert events["feed_cycle"] >= len(fed) and events["update_cycle"] >= 6
