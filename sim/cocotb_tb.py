"""cocotb 2.x testbench of the generated core Verilog (the cocotb test module).

Run through :mod:`neurocore.sim.cosim`, never directly: the cases to run come from the
pickle named by ``NEUROCORE_COSIM_CASES`` and the results go to the pickle named by
``NEUROCORE_COSIM_RESULTS``. The cases file holds ``(config, cases, options)``; each case is
``(program, inputs, learn)`` with ``inputs`` of shape ``[samples, T, n_inputs]``, and
``options`` gives ``stall`` (the probability that the ``rsp`` and ``spike_out`` consumers
hold ``ready`` low in a cycle) and ``seeds`` (one seed of those draws per case). Per case the core is reset and then driven by
:meth:`neurocore.sim.host_driver.HostDriver.run_case` (load, clear before every sample,
``T`` steps, every state word and weight read back). After every step the registers
LAST_STEP_CYCLES, LAST_STEP_SOPS, FEED_CYCLES and UPDATE_CYCLES are read (``step_cycles``,
``step_sops``, ``step_feed_cycles``, ``step_update_cycles`` of the result); CYCLES is read
before and after the stepping loop (``cycles_start``, ``cycles_end``; with ``wall_seconds``,
the co-simulation speed).

The transport wakes on events (a rising ``ready`` or ``valid``), not on every idle clock,
so the simulator runs free while the core computes a step.
"""
from __future__ import annotations

import os
import pickle

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

from .host_driver import STEP_REGISTERS, HostDriver

# raw result key of each per-step register, as sim/cosim.py and tools/bench_core.py read them
STEP_RESULT_KEYS = {"LAST_STEP_CYCLES": "step_cycles", "LAST_STEP_SOPS": "step_sops",
                    "FEED_CYCLES": "step_feed_cycles", "UPDATE_CYCLES": "step_update_cycles"}


class CocotbTransport:
    """A :class:`~neurocore.sim.host_driver.Transport` over the Verilog ports of ``dut``.

    Inputs are written right after a rising edge and outputs read at the falling edge that
    follows, when everything has settled: those are the values the next rising edge samples,
    on an event simulator (Icarus) and on a cycle-based one (Verilator, which leaves a
    ``RisingEdge`` with the values *after* the edge) alike.
    """

    def __init__(self, dut):
        self.dut, self.clk = dut, dut.clk
        self._handles: dict[str, object] = {}

    def _handle(self, port: str):
        handle = self._handles.get(port)
        if handle is None:
            handle = self._handles[port] = getattr(self.dut, port.replace(".", "__"))
        return handle

    def set(self, port: str, value: int) -> None:
        self._handle(port).value = value

    def get(self, port: str) -> int:
        return int(self._handle(port).value)

    async def tick(self, *ports: str) -> tuple[int, ...]:
        await FallingEdge(self.clk)
        values = tuple(self.get(p) for p in ports)
        await RisingEdge(self.clk)
        return values

    async def tick_until(self, port: str, *ports: str) -> tuple[int, ...]:
        signal = self._handle(port)
        await FallingEdge(self.clk)
        while signal.value != 1:
            await RisingEdge(signal)        # sleep while the core is busy
            await FallingEdge(self.clk)
        values = tuple(self.get(p) for p in ports)
        await RisingEdge(self.clk)
        return values


class TB:
    """Owns the clock, the reset, the host driver and the output spike monitor."""

    def __init__(self, dut, config, *, stall: float = 0.0):
        self.dut = dut
        self.transport = CocotbTransport(dut)
        self.driver = HostDriver(self.transport, config, stall=stall)
        self.driver.start()
        self._monitoring = False
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 2)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        if not self._monitoring:            # outputs are defined from the first reset on
            self._monitoring = True
            cocotb.start_soon(self.driver.monitor_spikes())

    async def run_case(self, program, inputs, learn: bool, *, seed: int = 0) -> dict:
        """Reset, then load, run every sample, read everything back; returns the raw results.
        ``seed`` restarts the consumers' stall draws."""
        await self.reset()
        self.driver.reseed(seed)
        raw = await self.driver.run_case(program, inputs, learn=learn,
                                         step_registers=STEP_REGISTERS)
        for name, values in raw.pop("step_registers").items():
            raw[STEP_RESULT_KEYS[name]] = values
        return raw


@cocotb.test()
async def run_cases(dut):
    """Run every case of the cases file and write the results file."""
    with open(os.environ["NEUROCORE_COSIM_CASES"], "rb") as f:
        config, cases, options = pickle.load(f)
    tb = TB(dut, config, stall=options["stall"])
    results = []
    for (program, inputs, learn), seed in zip(cases, options["seeds"]):
        results.append(await tb.run_case(program, inputs, learn, seed=seed))
    path = os.environ["NEUROCORE_COSIM_RESULTS"]
    with open(path + ".tmp", "wb") as f:
        pickle.dump(results, f)
    os.replace(path + ".tmp", path)
