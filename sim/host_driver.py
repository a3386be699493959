"""The host that drives a core, written once for every simulator.

:mod:`neurocore.sim.host_protocol` says *what* the host sends (the command lists, the
read-back plan); this module says *how*, cycle by cycle, over the core's valid/ready
streams (``cmd``, ``rsp``, ``spike_in``, ``spike_out``). The simulators differ only in
how a port is set and read and how one waits for a clock edge; a :class:`Transport` hides
that (:class:`AmaranthTransport` here for ``amaranth.sim`` testbenches, ``CocotbTransport``
in :mod:`neurocore.sim.cocotb_tb`), so the sequencing of load, clear, input spikes, step,
output-spike collection and read-back exists once, in :class:`HostDriver`.

Transfer rule (docs/hw.md): a word moves at a rising clock edge at which ``valid`` and
``ready`` are both high. A transport's ``tick`` returns the values the ports had *at* that
edge (before the registers update), so a driver sees exactly the handshakes the core sees.

Backpressure: the consumers of ``rsp`` and ``spike_out`` (:class:`StreamSink`) hold ``ready``
low with probability ``stall`` in every cycle in which ``valid`` is high, drawn from a seeded
:class:`random.Random`; ``stall_cycles`` counts those cycles. The core must then neither
lose, duplicate nor reorder a word (docs/hw.md: "nothing is lost").
"""
from __future__ import annotations

import random
import time
from typing import Callable, Protocol

from ..hw.config import CoreConfig
from ..hw.host import Opcode, Region, Register, command_layout, output_spike_layout
from ..hw.images import pack, unpack
from ..hw.program import CoreProgram, CoreState
from .host_protocol import (Command, clear_command, input_axons, load_commands, readback_plan,
                            step_command)

__all__ = ["Transport", "AmaranthTransport", "StreamSink", "HostDriver", "run_amaranth", "check_stall",
           "STEP_REGISTERS", "FINAL_REGISTERS", "DRAIN_IDLE_CYCLES"]

STEP_REGISTERS = (Register.LAST_STEP_CYCLES, Register.LAST_STEP_SOPS, Register.FEED_CYCLES,
                  Register.UPDATE_CYCLES)
"""Registers that describe one step, read after every step when asked for."""

FINAL_REGISTERS = (Register.STATUS, Register.ERRORS, Register.STEP_COUNT, Register.CYCLES,
                   Register.SOPS, Register.LTP_UPDATES)
"""Registers read once at the end of a case."""

DRAIN_IDLE_CYCLES = 4
"""The output FIFO counts as drained after this many consecutive edges with ``spike_out``
not valid (more than any bubble between two words of the FIFO)."""


def check_stall(stall: float) -> float:
    """``stall`` as a float in ``[0, 1)``, or ``ValueError`` naming the limit."""
    try:
        p = float(stall)
    except (TypeError, ValueError):
        raise ValueError(f"stall probability must be a number in [0, 1), got {stall!r}") from None
    if not 0.0 <= p < 1.0:      # p = 1 would never take a word: the run would not end
        raise ValueError(f"stall probability must be in [0, 1) (0 <= P < 1), got {stall!r}")
    return p


class Transport(Protocol):
    """How one simulator sets, reads and clocks the core's ports.

    Ports are named ``"<stream>.<field>"`` (``"cmd.valid"``, ``"spike_out.payload"``) or by
    their own name (``"error"``, ``"busy"``). Call ``set`` only between clock edges (right
    after ``tick`` returned): the value holds until set again.
    """

    def set(self, port: str, value: int) -> None: ...

    def get(self, port: str) -> int:
        """The port's current value."""

    async def tick(self, *ports: str) -> tuple[int, ...]:
        """Wait for the next rising clock edge; the values ``ports`` had at that edge."""

    async def tick_until(self, port: str, *ports: str) -> tuple[int, ...]:
        """Wait (at least one edge) for an edge at which ``port`` is high; the values ``ports``
        had at that edge. May sleep through idle cycles."""


class AmaranthTransport:
    """A :class:`Transport` for one ``amaranth.sim`` testbench (``ctx``) of a core ``dut``."""

    def __init__(self, ctx, dut):
        self.ctx, self.dut = ctx, dut
        self._signals: dict[str, object] = {}

    def _signal(self, port: str):
        signal = self._signals.get(port)
        if signal is None:
            signal = self.dut
            for part in port.split("."):
                signal = getattr(signal, part)
            if hasattr(signal, "as_value"):        # a layout view (payloads)
                signal = signal.as_value()
            self._signals[port] = signal
        return signal

    def set(self, port: str, value: int) -> None:
        self.ctx.set(self._signal(port), value)

    def get(self, port: str) -> int:
        return int(self.ctx.get(self._signal(port)))

    async def tick(self, *ports: str) -> tuple[int, ...]:
        _, _, *values = await self.ctx.tick().sample(*(self._signal(p) for p in ports))
        return tuple(int(v) for v in values)

    async def tick_until(self, port: str, *ports: str) -> tuple[int, ...]:
        # One-shot waits, not ``tick().until()``: a background testbench still waiting when
        # the simulation ends is then closed cleanly.
        signals = [self._signal(p) for p in ports] + [self._signal(port)]
        while True:
            _, _, *values, done = await self.ctx.tick().sample(*signals)
            if done:
                return tuple(int(v) for v in values)


class StreamSink:
    """The consumer of one of the core's output streams (``rsp`` or ``spike_out``).

    In every cycle in which ``valid`` is high, ``ready`` is low with probability ``stall``
    (``rng``); ``stall_cycles`` counts those cycles. While ``valid`` is low ``ready`` keeps
    its last draw, which the core ignores, so a transport may sleep through idle cycles.
    """

    def __init__(self, transport: Transport, stream: str, *, stall: float = 0.0,
                 rng: random.Random | None = None):
        self.transport, self.stream = transport, stream
        self.stall = check_stall(stall)
        self.rng = rng or random.Random(0)
        self.stall_cycles = 0
        self._valid, self._ready, self._payload = (f"{stream}.valid", f"{stream}.ready",
                                                   f"{stream}.payload")

    def _draw(self) -> int:
        return int(self.stall == 0.0 or self.rng.random() >= self.stall)

    async def take(self) -> int:
        """The next word of the stream (after as many stalled cycles as drawn)."""
        while True:
            ready = self._draw()
            self.transport.set(self._ready, ready)
            payload, = await self.transport.tick_until(self._valid, self._payload)
            if ready:
                return payload
            self.stall_cycles += 1

    def hold(self, ready: int) -> None:
        """Drive ``ready`` to ``ready`` until the next :meth:`take`."""
        self.transport.set(self._ready, ready)

    async def collect(self, on_word: Callable[[int], None]) -> None:
        """Take words for ever, handing each to ``on_word`` (a background monitor)."""
        while True:
            on_word(await self.take())


class HostDriver:
    """The host of one core: commands and input spikes in, responses and spikes out.

    ``transport`` is the host's own view of the ports; the output spikes are taken by a
    :class:`StreamSink` on ``spike_out`` that runs beside it (:meth:`spike_monitor`, started
    by the simulator-specific code, possibly with another transport). ``stall`` and
    ``seed`` set the backpressure of both the ``rsp`` and the ``spike_out`` consumers.
    """

    def __init__(self, transport: Transport, config: CoreConfig, *, stall: float = 0.0,
                 seed: int = 0):
        self.transport, self.config = transport, config
        self.stall = check_stall(stall)
        self.seed = seed
        self._command_layout = command_layout(config)        # built once: slow to build
        self._spike_layout = output_spike_layout(config)
        self.rsp = StreamSink(transport, "rsp", stall=self.stall, rng=self._rng("rsp"))
        self.spikes: list[dict] = []
        self._spike_sinks: list[StreamSink] = []

    def start(self) -> None:
        """Drive the host's inputs to idle (call once the simulation runs, before anything else)."""
        self.transport.set("cmd.valid", 0)
        self.transport.set("spike_in.valid", 0)
        self.rsp.hold(0)

    def _rng(self, stream: str) -> random.Random:
        return random.Random(f"{self.seed}:{stream}")     # one stream of draws per consumer

    def reseed(self, seed: int) -> None:
        """Restart the stall draws of every consumer from ``seed``."""
        self.seed = seed
        self.rsp.rng = self._rng("rsp")
        for sink in self._spike_sinks:
            sink.rng = self._rng("spike_out")

    # -- output spikes ------------------------------------------------------------------

    def spike_monitor(self, transport: Transport | None = None) -> StreamSink:
        """The ``spike_out`` consumer; await its ``collect(self.add_spike)`` in the background."""
        sink = StreamSink(transport or self.transport, "spike_out", stall=self.stall,
                          rng=self._rng("spike_out"))
        sink.hold(1)
        self._spike_sinks.append(sink)
        return sink

    def add_spike(self, word: int) -> None:
        self.spikes.append(unpack(self._spike_layout, word))

    async def monitor_spikes(self, transport: Transport | None = None) -> None:
        """Run the ``spike_out`` consumer for ever (start it as a background task)."""
        await self.spike_monitor(transport).collect(self.add_spike)

    @property
    def spike_stall_cycles(self) -> int:
        """Cycles the ``spike_out`` consumer held ``ready`` low while the core offered a spike."""
        return sum(s.stall_cycles for s in self._spike_sinks)

    @property
    def stall_cycles(self) -> int:
        """Cycles a consumer (``rsp`` or ``spike_out``) held ``ready`` low on an offered word."""
        return self.rsp.stall_cycles + self.spike_stall_cycles

    async def drain(self) -> None:
        """Wait until the output FIFO is empty (``DRAIN_IDLE_CYCLES`` edges without a word)."""
        idle = 0
        while idle < DRAIN_IDLE_CYCLES:
            valid, = await self.transport.tick("spike_out.valid")
            idle = 0 if valid else idle + 1

    # -- host to core -------------------------------------------------------------------

    async def put(self, stream: str, value: int) -> None:
        """One transfer on ``cmd`` or ``spike_in``: hold ``valid`` until an edge sees ``ready``."""
        self.transport.set(f"{stream}.payload", value)
        self.transport.set(f"{stream}.valid", 1)
        await self.transport.tick_until(f"{stream}.ready")
        self.transport.set(f"{stream}.valid", 0)

    async def command(self, command: Command | int) -> None:
        """Send a :class:`Command` (or an already packed ``cmd`` word)."""
        if isinstance(command, Command):
            command = pack(self._command_layout, op=command.op.value,
                           region=command.region.value, index=command.index, data=command.data)
        await self.put("cmd", command)

    async def spike(self, axon: int) -> None:
        await self.put("spike_in", axon)

    async def response(self) -> int:
        """Take the one ``rsp`` word of a READ."""
        word = await self.rsp.take()
        self.rsp.hold(0)
        return word

    async def read(self, region: Region, index: int) -> int:
        await self.command(Command(Opcode.READ, region, index))
        return await self.response()

    async def read_register(self, register: Register) -> int:
        return await self.read(Region.REG, register.value)

    # -- a whole case -------------------------------------------------------------------

    async def load(self, program: CoreProgram, *, learn: bool, state: CoreState | None = None) -> None:
        for c in load_commands(program, learn=learn, state=state):
            await self.command(c)

    async def read_words(self, program: CoreProgram) -> list[int]:
        """Every state word and weight of ``program``, in :func:`readback_plan` order."""
        return [await self.read(region, i) for region, i in readback_plan(program)]

    async def run_case(self, program: CoreProgram, inputs, *, learn: bool, load: bool = True,
                       state: CoreState | None = None, clear_first: bool = True,
                       step_registers=(), step_words: bool = False) -> dict:
        """Load ``program`` (unless ``load`` is false: baked in) and ``state`` (when given: its
        host-visible fields, not pending spikes), run every sample of ``inputs``
        (``[samples, T, n_inputs]``: CLEAR, then per step its input spikes and STEP), then
        drain the output spikes and read every state word back. With ``clear_first`` false
        the first sample runs from the loaded state, without a CLEAR.

        ``step_registers`` (for example :data:`STEP_REGISTERS`) are read after every step,
        and with ``step_words`` every state word too (``step_words``: one list per step).
        Returns the raw results: ``spikes`` (in arrival order, dicts ``neuron``, ``step``),
        ``words`` (in :func:`readback_plan` order), ``registers`` (:data:`FINAL_REGISTERS`
        by name), ``step_registers`` (name -> one value per step), ``step_words`` (per step,
        the words in :func:`readback_plan` order, with ``step_words``), ``cycles_start`` and
        ``cycles_end`` (CYCLES around the stepping), ``stall_cycles`` (of which
        ``spike_out_stall_cycles`` on ``spike_out``), ``load_seconds``
        and ``wall_seconds`` (host time of loading and of stepping).
        """
        self.spikes.clear()
        stalls_before, spike_stalls_before = self.stall_cycles, self.spike_stall_cycles
        t0 = time.perf_counter()
        if load:
            await self.load(program, learn=learn, state=state)
        load_seconds = time.perf_counter() - t0
        per_step: dict[str, list[int]] = {r.name: [] for r in step_registers}
        words_per_step: list[list[int]] = []
        cycles_start = await self.read_register(Register.CYCLES)
        t0 = time.perf_counter()
        for b, sample in enumerate(inputs):
            if b or clear_first:
                await self.command(clear_command())
            for row in sample:
                for axon in input_axons(row):
                    await self.spike(axon)
                await self.command(step_command())
                # The next command is accepted only when the step is done.
                for register in step_registers:
                    per_step[register.name].append(await self.read_register(register))
                if step_words:
                    words_per_step.append(await self.read_words(program))
        wall_seconds = time.perf_counter() - t0
        cycles_end = await self.read_register(Register.CYCLES)
        words = await self.read_words(program)
        registers = {r.name: await self.read_register(r) for r in FINAL_REGISTERS}
        await self.drain()
        return {"spikes": list(self.spikes), "words": words, "registers": registers,
                "step_registers": per_step, "step_words": words_per_step, "cycles_start": cycles_start,
                "cycles_end": cycles_end, "stall_cycles": self.stall_cycles - stalls_before,
                "spike_out_stall_cycles": self.spike_stall_cycles - spike_stalls_before,
                "load_seconds": load_seconds, "wall_seconds": wall_seconds}


def run_amaranth(sim, dut, config: CoreConfig, body, *, stall: float = 0.0, seed: int = 0) -> HostDriver:
    """Run ``await body(driver)`` as the host testbench of the ``amaranth.sim.Simulator``
    ``sim`` of the core ``dut`` (clock added by the caller), with the ``spike_out`` monitor
    as a background testbench; returns the driver (its ``spikes``, ``stall_cycles``)."""
    transport = AmaranthTransport(None, dut)            # bound to the host's ctx below
    driver = HostDriver(transport, config, stall=stall, seed=seed)

    async def host(ctx):
        transport.ctx = ctx
        driver.start()
        await body(driver)

    async def monitor(ctx):
        await driver.monitor_spikes(AmaranthTransport(ctx, dut))

    sim.add_testbench(host)
    sim.add_testbench(monitor, background=True)
    sim.run()
    return driver
