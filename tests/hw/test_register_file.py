"""RegisterFile (hw/register_file.py): writes keep the low bits, reads return every register,
STATUS and the error flag, the statistics counters of a step; random writes against a model."""
from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from neurocore.hw.config import CoreConfig
from neurocore.hw.host import Register
from neurocore.hw.register_file import RegisterFile, register_widths
from neurocore.hw.widths import COUNTER_MAX

CFG = CoreConfig(neurons=8, axons=8, synapses=32)


def _sim(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


async def _write(ctx, dut, index, data):
    """One register WRITE, then the cycles the core would wait while ``settling`` (an error of
    the write being counted): exactly one after an error, none otherwise."""
    ctx.set(dut.index, index)
    ctx.set(dut.write_data, data)
    ctx.set(dut.write, 1)
    await ctx.tick()
    ctx.set(dut.write, 0)
    if ctx.get(dut.settling):
        await ctx.tick()
        assert not ctx.get(dut.settling)


def _read(ctx, dut, index):
    ctx.set(dut.index, index)
    return ctx.get(dut.read_data)


def test_random_writes_and_reads():
    dut = RegisterFile(config=CFG, registers={Register.A_PLUS: 7, Register.W_MIN: -3 & 0xFF})
    widths = register_widths(CFG)
    rng = random.Random(1)
    model = {r: 0 for r in widths}
    model[Register.A_PLUS], model[Register.W_MIN] = 7, 0xFD
    errors = 0

    async def bench(ctx):
        nonlocal errors
        for register, value in model.items():
            assert _read(ctx, dut, register.value) == value, register
        for _ in range(300):
            register = rng.choice([*widths, None])
            index = register.value if register else rng.choice([15, 16, 25, 1000])
            data = rng.getrandbits(40)
            await _write(ctx, dut, index, data)
            if register:
                model[register] = data & ((1 << widths[register]) - 1)
            else:
                errors += 1         # read-only or unknown: an error, nothing stored
            for r, value in model.items():
                assert _read(ctx, dut, r.value) == value, r
            assert _read(ctx, dut, Register.ERRORS.value) == errors
            assert ctx.get(dut.error) == (errors > 0)
        # The ports follow the registers (learning fields signed where two's complement).
        assert ctx.get(dut.n_neurons) == model[Register.N_NEURONS]
        assert ctx.get(dut.learn) == model[Register.LEARN]
        assert ctx.get(dut.learning.a_plus) == model[Register.A_PLUS]
        w_min = model[Register.W_MIN]
        assert ctx.get(dut.learning.w_min) == w_min - (256 if w_min & 0x80 else 0)
        assert _read(ctx, dut, 15) == 0          # unknown numbers read 0
        # STATUS: bit 0 the sticky error, bit 1 busy; writing bit 0 clears the error.
        ctx.set(dut.busy, 1)
        assert _read(ctx, dut, Register.STATUS.value) == 3
        await _write(ctx, dut, Register.STATUS.value, 0)
        assert ctx.get(dut.error) == 1
        await _write(ctx, dut, Register.STATUS.value, 1)
        assert ctx.get(dut.error) == 0 and _read(ctx, dut, Register.STATUS.value) == 2
        assert _read(ctx, dut, Register.ERRORS.value) == errors    # the count stays

    _sim(dut, bench)
    assert errors > 20


def test_step_counters():
    dut = RegisterFile(config=CFG)

    async def bench(ctx):
        for step, (feed, update, ltp, sops) in enumerate([(3, 5, 2, 17), (1, 4, 0, 0), (6, 2, 9, 40)]):
            ctx.set(dut.step_start, 1)
            await ctx.tick()
            ctx.set(dut.step_start, 0)
            for count, name in ((feed, "feed_cycle"), (update, "update_cycle"), (ltp, None)):
                ctx.set(dut.step_cycle, 1)
                if name:
                    ctx.set(getattr(dut, name), 1)
                for _ in range(count):
                    await ctx.tick()
                ctx.set(dut.step_cycle, 0)
                if name:
                    ctx.set(getattr(dut, name), 0)
            ctx.set(dut.step_sops, sops)
            ctx.set(dut.step_done, 1)
            await ctx.tick()
            ctx.set(dut.step_done, 0)
            ctx.set(dut.step_sops, 0)
            assert _read(ctx, dut, Register.LAST_STEP_CYCLES.value) == 2 + feed + update + ltp
            assert _read(ctx, dut, Register.FEED_CYCLES.value) == feed
            assert _read(ctx, dut, Register.UPDATE_CYCLES.value) == update
            assert _read(ctx, dut, Register.LAST_STEP_SOPS.value) == sops
            assert _read(ctx, dut, Register.STEP_COUNT.value) == step + 1
            assert ctx.get(dut.step_count) == step + 1
        assert _read(ctx, dut, Register.SOPS.value) == 57
        cycles = _read(ctx, dut, Register.CYCLES.value)
        await ctx.tick().repeat(5)
        assert _read(ctx, dut, Register.CYCLES.value) == cycles + 5
        ctx.set(dut.ltp_updates, 1234)
        assert _read(ctx, dut, Register.LTP_UPDATES.value) == 1234

    _sim(dut, bench)


def test_counters_saturate():
    dut = RegisterFile(config=CFG, registers={Register.SOPS: COUNTER_MAX - 10,
                                              Register.STEP_COUNT: COUNTER_MAX})

    async def bench(ctx):
        ctx.set(dut.step_sops, 7)
        ctx.set(dut.step_done, 1)
        await ctx.tick().repeat(2)
        assert _read(ctx, dut, Register.SOPS.value) == COUNTER_MAX
        assert _read(ctx, dut, Register.STEP_COUNT.value) == COUNTER_MAX

    _sim(dut, bench)


def test_bad_registers_argument():
    with pytest.raises(ValueError, match="Register"):
        RegisterFile(config=CFG, registers={5: 1})
    with pytest.raises(ValueError, match="A_PLUS"):
        RegisterFile(config=CFG, registers={Register.A_PLUS: -1})
