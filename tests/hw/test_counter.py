"""SaturatingCounter (hw/counter.py) and the core's statistics registers: they saturate at
their maximum and never wrap."""
from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from neurocore.hw.config import CoreConfig
from neurocore.hw.core import Core
from neurocore.hw.counter import SaturatingCounter
from neurocore.hw.host import Opcode, Region, Register
from neurocore.hw.images import pack
from neurocore.hw.layouts import pointer_layout
from neurocore.hw.widths import COUNTER_BITS, COUNTER_MAX
from neurocore.sim.host_driver import run_amaranth
from neurocore.sim.host_protocol import Command, step_command


def _run_random(counter: SaturatingCounter, restart_value: int, seed: int, cycles: int = 400):
    """Random amounts, enables and restarts; the count is checked every cycle against
    ``min(count + amount, MAX)`` with ``enable``, ``count`` without, and
    ``min(restart_value + amount, MAX)`` on a restart (whatever ``enable``)."""
    rng = random.Random(seed)
    top = counter.max
    stats = {"at_max": 0, "held_at_max": 0, "disabled": 0}
    sim = Simulator(counter)
    sim.add_clock(1e-8)

    async def bench(ctx):
        want = ctx.get(counter.count)
        for _ in range(cycles):
            amount = rng.choice([0, 1, rng.randrange(1 << len(counter.amount))])
            restart = int(rng.random() < 0.03)
            enable = int(rng.random() < 0.8)
            ctx.set(counter.amount, amount)
            ctx.set(counter.restart, restart)
            ctx.set(counter.enable, enable)
            await ctx.tick()
            before = want
            if restart or enable:
                want = min((restart_value if restart else want) + amount, top)
            stats["disabled"] += not (restart or enable) and amount != 0
            got = ctx.get(counter.count)
            assert got == want, (before, amount, restart, got, want)
            stats["at_max"] += got == top
            stats["held_at_max"] += before == top and amount and not restart

    sim.add_testbench(bench)
    sim.run()
    return stats


@pytest.mark.parametrize("amount_bits", [1, 3])
@pytest.mark.parametrize("width", [1, 4])
def test_small_counter_saturates(width, amount_bits):
    for seed in range(3):
        restart_value = seed % (1 << width) if (1 << width) - 1 > seed else 0
        counter = SaturatingCounter(width=width, amount_bits=amount_bits, restart_value=restart_value)
        stats = _run_random(counter, restart_value, seed)
        assert stats["at_max"] > 10 and stats["held_at_max"] > 5 and stats["disabled"] > 5, stats


def test_full_width_counter_from_near_max():
    for amount_bits in (1, COUNTER_BITS):
        counter = SaturatingCounter(amount_bits=amount_bits, init=COUNTER_MAX - 5)
        assert counter.max == COUNTER_MAX
        stats = _run_random(counter, 0, 7, cycles=60)
        assert stats["held_at_max"] > 0, stats


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="width"):
        SaturatingCounter(width=0)
    with pytest.raises(ValueError, match="amount_bits"):
        SaturatingCounter(amount_bits=True)
    with pytest.raises(ValueError, match="restart_value"):
        SaturatingCounter(width=2, restart_value=3)
    with pytest.raises(ValueError, match="init"):
        SaturatingCounter(width=2, init=4)
    with pytest.raises(TypeError):
        SaturatingCounter(8)             # keyword-only


@pytest.mark.parametrize("learning", [False, True])
def test_core_statistics_registers_stop_at_the_max(learning):
    """CYCLES, STEP_COUNT, SOPS and ERRORS start 3 below the max (``registers=``); after
    steps and rejected commands they read ``COUNTER_MAX``, never a wrapped small value."""
    cfg = CoreConfig(neurons=4, axons=4, synapses=8, learning=learning, wta=False,
                     adaptive_threshold=False)
    near = COUNTER_MAX - 3
    counters = (Register.CYCLES, Register.STEP_COUNT, Register.SOPS, Register.ERRORS)
    dut = Core(config=cfg, registers={**{r: near for r in counters}, Register.N_NEURONS: 4,
                                      Register.N_AXONS: 4, Register.N_INPUTS: 4})
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    got = {}

    async def host(driver):
        # One synapse per step (axon 0 -> neuron 0), so SOPS grows by one per step.
        await driver.command(Command(Opcode.WRITE, Region.POINTER, 0,
                                     pack(pointer_layout(cfg), base=0, count=1, first=0)))
        for _ in range(6):
            await driver.spike(0)
            await driver.command(step_command())
            await driver.command(Command(Opcode.WRITE, Region.REG, 15))   # no such register: an error
        for register in (*counters, Register.LAST_STEP_SOPS):
            got[register] = await driver.read_register(register)

    run_amaranth(sim, dut, cfg, host)
    assert got[Register.LAST_STEP_SOPS] == 1, got
    for register in counters:
        assert got[register] == COUNTER_MAX, (register, got[register])
