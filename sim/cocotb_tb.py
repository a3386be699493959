"""cocotb 2.x testbench of the generated core Verilog (the cocotb test module).

Run through :mod:`neurocore.sim.cosim`, never directly: the cases to run come from the
pickle named by ``NEUROCORE_COSIM_CASES`` and the results go to the pickle named by
``NEUROCORE_COSIM_RESULTS``. Each case is ``(program, inputs, learn)`` with ``inputs`` of
shape ``[samples, T, n_inputs]``; the core is reset, loaded through the host interface,
cleared before every sample and stepped ``T`` times; then every state word and weight is
read back. After every step the registers LAST_STEP_CYCLES, LAST_STEP_SOPS, FEED_CYCLES and
UPDATE_CYCLES are read (``step_cycles``, ``step_sops``, ``step_feed_cycles``,
``step_update_cycles`` of the result); CYCLES is read before and after the stepping loop
(``cycles_start``, ``cycles_end``; with ``wall_seconds``, the co-simulation speed).

The testbench wakes on events (handshakes, a rising ``ready`` or ``valid``), not on every
idle clock, so the simulator runs free while the core computes a step.
"""
from __future__ import annotations

import os
import pickle
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from ..hw.host import Opcode, Region, Register, command_layout, output_spike_layout
from ..hw.images import pack, unpack
from .host_protocol import (Command, clear_command, input_axons, load_commands, readback_plan,
                            step_command)


class TB:
    """Owns the clock, the reset, the host-side drivers and the output spike monitor."""

    def __init__(self, dut, config):
        self.dut = dut
        self.config = config
        self.spike_layout = output_spike_layout(config)
        self.command_layout = command_layout(config)    # built once: it is slow to build
        self.spikes: list[dict] = []
        dut.cmd__valid.value = 0
        dut.spike_in__valid.value = 0
        dut.rsp__ready.value = 0
        dut.spike_out__ready.value = 1
        self._monitoring = False
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 2)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        if not self._monitoring:            # outputs are defined from the first reset on
            self._monitoring = True
            cocotb.start_soon(self._monitor())

    async def _put(self, valid, payload, ready, value: int):
        """One stream transfer: hold ``valid`` until a clock edge sees ``ready``."""
        payload.value = value
        valid.value = 1
        await RisingEdge(self.dut.clk)
        while ready.value != 1:
            await RisingEdge(ready)          # sleep while the core is busy
            await RisingEdge(self.dut.clk)
        valid.value = 0

    async def command(self, command: Command):
        # Same word as ``command.packed(config)``, without rebuilding the layout per command.
        word = pack(self.command_layout, op=command.op.value, region=command.region.value,
                    index=command.index, data=command.data)
        await self._put(self.dut.cmd__valid, self.dut.cmd__payload, self.dut.cmd__ready, word)

    async def spike(self, axon: int):
        await self._put(self.dut.spike_in__valid, self.dut.spike_in__payload,
                        self.dut.spike_in__ready, axon)

    async def read(self, region: Region, index: int) -> int:
        await self.command(Command(Opcode.READ, region, index))
        self.dut.rsp__ready.value = 1
        await RisingEdge(self.dut.clk)
        while self.dut.rsp__valid.value != 1:
            await RisingEdge(self.dut.clk)
        word = int(self.dut.rsp__payload.value)
        self.dut.rsp__ready.value = 0
        return word

    async def _monitor(self):
        valid, payload = self.dut.spike_out__valid, self.dut.spike_out__payload
        while True:
            if valid.value != 1:
                await RisingEdge(valid)
            await RisingEdge(self.dut.clk)
            if valid.value == 1 and self.dut.spike_out__ready.value == 1:
                self.spikes.append(unpack(self.spike_layout, int(payload.value)))

    async def run_case(self, program, inputs, learn: bool) -> dict:
        """Load, run every sample, read everything back; returns the raw results."""
        await self.reset()
        self.spikes = []
        load_start = time.perf_counter()
        for c in load_commands(program, learn=learn):
            await self.command(c)
        load_seconds = time.perf_counter() - load_start
        step_cycles = []
        step_sops = []
        step_feed_cycles = []
        step_update_cycles = []
        cycles_start = await self.read(Region.REG, Register.CYCLES.value)
        start = time.perf_counter()
        for sample in inputs:
            await self.command(clear_command())
            for row in sample:
                for axon in input_axons(row):
                    await self.spike(axon)
                await self.command(step_command())
                # The next command is accepted only when the step is done.
                step_cycles.append(await self.read(Region.REG, Register.LAST_STEP_CYCLES.value))
                step_sops.append(await self.read(Region.REG, Register.LAST_STEP_SOPS.value))
                step_feed_cycles.append(await self.read(Region.REG, Register.FEED_CYCLES.value))
                step_update_cycles.append(await self.read(Region.REG, Register.UPDATE_CYCLES.value))
        wall = time.perf_counter() - start
        cycles_end = await self.read(Region.REG, Register.CYCLES.value)
        await ClockCycles(self.dut.clk, 8)   # let the output FIFO drain
        words = [await self.read(region, i) for region, i in readback_plan(program)]
        registers = {r.name: await self.read(Region.REG, r.value)
                     for r in (Register.STATUS, Register.ERRORS, Register.STEP_COUNT,
                               Register.CYCLES, Register.SOPS, Register.LTP_UPDATES)}
        return {"spikes": list(self.spikes), "words": words, "registers": registers,
                "step_cycles": step_cycles, "step_sops": step_sops,
                "step_feed_cycles": step_feed_cycles, "step_update_cycles": step_update_cycles,
                "cycles_start": cycles_start, "cycles_end": cycles_end, "wall_seconds": wall,
                "load_seconds": load_seconds}


@cocotb.test()
async def run_cases(dut):
    """Run every case of the cases file and write the results file."""
    with open(os.environ["NEUROCORE_COSIM_CASES"], "rb") as f:
        config, cases = pickle.load(f)
    tb = TB(dut, config)
    results = []
    for program, inputs, learn in cases:
        results.append(await tb.run_case(program, inputs, learn))
    path = os.environ["NEUROCORE_COSIM_RESULTS"]
    with open(path + ".tmp", "wb") as f:
        pickle.dump(results, f)
    os.replace(path + ".tmp", path)
