"""The host input-spike queue: the axons of ``spike_in`` for the next step, each once."""
from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import memory
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .arbiter import address_bits
from .component import CoreComponent
from .config import CoreConfig
from .signatures import axon_stream

__all__ = ["InputSpikeQueue"]


class InputSpikeQueue(CoreComponent):
    """Collects the host input spikes of the next step; duplicates within a step count once.

    While ``enable`` (the controller is idle) ``spikes`` is ready. An accepted axon
    ``>= n_inputs`` is rejected (``rejected`` high in the accepting cycle, the controller
    counts an error); any other axon is appended to the queue memory (``inq_mem``, ``count``
    entries) unless its bit in the ``queued`` bitmap (``queued_mem``, one bit per axon) is
    already set. Two stages: accept and look the bit up; one cycle later append and set the
    bit. A repeat right behind an axon (whose bit is written in that very cycle, and the read
    is not transparent) is caught by comparing with the previous stage-2 axon. ``settling``
    is high while a spike is accepted or in stage 2: a command must wait for it.

    The controller reads the queue on ``feed`` (a memory read port, one cycle of latency) and
    clears the bit of every input axon it feeds (``done`` with ``done_axon``), so the bitmap
    is all-zero again after the step; ``restart`` empties the queue (``count := 0``, at the
    end of a step and of a clear). ``zero`` with ``zero_addr`` clears the bit of axon
    ``zero_addr`` (if ``< A``) in the clear-state sweep. ``zero``, ``done`` and stage 2
    never write in the same cycle (different controller states; stage 2 only while idle).

    Members
    -------
    spikes : In(stream.Signature(unsigned(axon_index_bits)))
    enable : In(1); n_inputs : In(axon_index_bits + 1)
    rejected, settling : Out(1); count : Out(axon_index_bits + 1)
    feed : Out(memory.ReadPort.Signature(addr_width=axon_index_bits, shape=unsigned(axon_index_bits)))
    done : In(1); done_axon : In(axon_index_bits)
    zero : In(1); zero_addr : In(range(max(N, A) + 1))
    restart : In(1)
    """

    def __init__(self, *, config: CoreConfig):
        self._use_config(config)
        abits = config.axon_index_bits
        super().__init__({
            "spikes": In(axon_stream(config)),
            "enable": In(1),
            "n_inputs": In(abits + 1),
            "rejected": Out(1),
            "settling": Out(1),
            "count": Out(abits + 1),
            "feed": Out(memory.ReadPort.Signature(addr_width=address_bits(config.axons),
                                                  shape=unsigned(abits))),
            "done": In(1),
            "done_axon": In(abits),
            "zero": In(1),
            "zero_addr": In(range(max(config.neurons, config.axons) + 1)),
            "restart": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        A, abits = cfg.axons, cfg.axon_index_bits
        m.submodules.inq_mem = inq = Memory(shape=unsigned(abits), depth=max(A, 2), init=[])
        m.submodules.queued_mem = queued = Memory(shape=unsigned(1), depth=max(A, 2), init=[])
        inq_w, inq_r = inq.write_port(), inq.read_port(domain="sync")
        queued_w, queued_r = queued.write_port(), queued.read_port(domain="sync")
        m.d.comb += [inq_r.addr.eq(self.feed.addr), inq_r.en.eq(self.feed.en),
                     self.feed.data.eq(inq_r.data)]

        # Stage 1: accept, look the axon up in the bitmap.
        spike = self.spikes
        accept = spike.valid & spike.ready
        s2_valid = Signal()
        s2_axon = Signal(abits)
        m.d.comb += [spike.ready.eq(self.enable),
                     queued_r.addr.eq(spike.payload), queued_r.en.eq(accept),
                     self.rejected.eq(accept & (spike.payload >= self.n_inputs)),
                     self.settling.eq(s2_valid | accept)]
        m.d.sync += [s2_valid.eq(accept & (spike.payload < self.n_inputs)), s2_axon.eq(spike.payload)]

        # Stage 2: append unless queued (a repeat of the previous stage-2 axon reads as queued).
        s2_prev_valid = Signal()
        s2_prev_axon = Signal(abits)
        m.d.sync += [s2_prev_valid.eq(s2_valid), s2_prev_axon.eq(s2_axon)]
        dup = queued_r.data | (s2_prev_valid & (s2_prev_axon == s2_axon))
        with m.If(s2_valid & ~dup):
            m.d.comb += [inq_w.addr.eq(self.count), inq_w.data.eq(s2_axon), inq_w.en.eq(1),
                         queued_w.addr.eq(s2_axon), queued_w.data.eq(1), queued_w.en.eq(1)]
            m.d.sync += self.count.eq(self.count + 1)
        with m.If(self.done):
            m.d.comb += [queued_w.addr.eq(self.done_axon), queued_w.data.eq(0), queued_w.en.eq(1)]
        with m.If(self.zero):
            m.d.comb += [queued_w.addr.eq(self.zero_addr), queued_w.data.eq(0),
                         queued_w.en.eq(self.zero_addr < A)]
        with m.If(self.restart):
            m.d.sync += self.count.eq(0)
        return m
