"""The whole Core in amaranth.sim against the golden model, through the host interface."""
from __future__ import annotations

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from neurocore.hw.config import CoreConfig
from neurocore.hw.core import Core
from neurocore.hw.host import Opcode, Region, Register
from neurocore.hw.images import unpack
from neurocore.hw.host import output_spike_layout
from neurocore.sim import golden
from neurocore.sim.host_protocol import (Command, clear_command, decode_readback, input_axons,
                                         load_commands, readback_plan, step_command)
from neurocore.sim.random_programs import random_program


def run_core(program, inputs, *, learn, samples=1):
    """Run ``inputs`` ([samples, T, n_inputs]) on the Core; returns spikes, state, stats."""
    cfg = program.config
    dut = Core(config=cfg)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    spikes = []
    result = {}
    layout = output_spike_layout(cfg)

    async def put(ctx, stream, value):
        ctx.set(stream.payload.as_value() if hasattr(stream.payload, "as_value") else stream.payload,
                value)
        ctx.set(stream.valid, 1)
        await ctx.tick().until(stream.ready)
        ctx.set(stream.valid, 0)

    async def command(ctx, c: Command):
        await put(ctx, dut.cmd, c.packed(cfg))

    async def read(ctx, region, index):
        await command(ctx, Command(Opcode.READ, region, index))
        ctx.set(dut.rsp.ready, 1)
        word, = await ctx.tick().sample(dut.rsp.payload).until(dut.rsp.valid)
        ctx.set(dut.rsp.ready, 0)
        return int(word)

    async def monitor(ctx):
        ctx.set(dut.spike_out.ready, 1)
        async for _, _, valid, payload in ctx.tick().sample(dut.spike_out.valid,
                                                             dut.spike_out.payload.as_value()):
            if valid:
                spikes.append(unpack(layout, int(payload)))

    async def host(ctx):
        for c in load_commands(program, learn=learn):
            await command(ctx, c)
        step = 0
        for b in range(samples):
            await command(ctx, clear_command())
            for row in inputs[b]:
                for axon in input_axons(row):
                    await put(ctx, dut.spike_in, axon)
                await command(ctx, step_command())
                step += 1
        status = await read(ctx, Region.REG, Register.STATUS.value)
        await ctx.tick().repeat(30)     # drain the output FIFO
        result["status"] = status
        result["words"] = [await read(ctx, region, i) for region, i in readback_plan(program)]
        result["errors"] = await read(ctx, Region.REG, Register.ERRORS.value)
        result["steps"] = await read(ctx, Region.REG, Register.STEP_COUNT.value)
        result["sops"] = await read(ctx, Region.REG, Register.SOPS.value)

    sim.add_testbench(host)
    sim.add_testbench(monitor, background=True)
    sim.run()
    steps = inputs.shape[1]
    out = np.zeros((samples, steps, program.n_outputs), bool)
    column = {int(n): j for j, n in enumerate(program.outputs)}
    for spike in spikes:
        b, t = divmod(spike["step"], steps)
        out[b, t, column[spike["neuron"]]] = True
    return out, decode_readback(program, result["words"]), result


def assert_state_equal(got, want):
    for name in ("v", "refrac", "theta", "y", "x", "weight"):
        assert np.array_equal(getattr(got, name), getattr(want, name)), \
            f"{name}: core {getattr(got, name)} golden {getattr(want, name)}"


CONFIGS = [
    dict(learning=False),
    dict(learning=True),
]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("learning", [False, True])
def test_core_matches_golden(seed, learning):
    program, inputs = random_program(seed * 2 + int(learning), learning=learning, batch=2,
                                     max_steps=6, max_neurons=8, max_synapses=24)
    out, state, stats = run_core(program, inputs, learn=learning, samples=2)
    want = golden.run_batch(program, inputs, learn=learning)
    assert stats["errors"] == 0 and stats["status"] & 1 == 0
    assert stats["steps"] == inputs.shape[0] * inputs.shape[1]
    assert stats["sops"] == int(want.sops.sum())
    assert np.array_equal(out, want.spikes), f"spikes differ:\ncore {np.argwhere(out)}\ngolden {np.argwhere(want.spikes)}"
    assert_state_equal(state, want.state)


def test_core_converts_to_verilog():
    text = verilog.convert(Core(config=CoreConfig(neurons=16, axons=16, synapses=64)), name="core")
    for port in ("cmd__payload", "cmd__valid", "cmd__ready", "rsp__payload", "spike_in__payload",
                 "spike_out__payload", "busy", "error"):
        assert port in text
