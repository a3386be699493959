"""Phase 3 of a step: where the spike of every fired neuron goes (docs/core-spec.md, section 5)."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import memory
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .arbiter import address_bits
from .component import CoreComponent
from .config import CoreConfig
from .signatures import fired_stream, output_spike_stream
from .widths import COUNTER_BITS

__all__ = ["SpikeRouter"]


class SpikeRouter(CoreComponent):
    """Sends every fired neuron to the output, the pending queue and the LTP list.

    While ``enable`` (phase UPDATE) a word on ``fired`` (neuron, route, output flag) is
    taken when its output spike, if it has one, can leave: ``fired.ready = enable &
    (~output | spikes.ready)``. Then, in the same cycle:

    * ``output``: the spike ``(neuron, step)`` goes out on ``spikes`` (to the output FIFO);
    * ``route_valid``: ``route`` (an internal axon) is appended to the **other** bank of the
      pending queue (``pendq_mem``, two banks of ``2^qbits`` entries with ``qbits =
      address_bits(min(neurons, axons))``, the bank in the address MSB): the axons the next
      step integrates. A bank never holds more: every neuron fires at most once a step and
      routes to its own axon;
    * ``learn`` (configs with learning): the neuron is appended to the LTP list
      (``ltpq_mem``), the neurons the LTP engine visits in this step.

    The controller reads the current bank on ``pending`` (entry ``addr`` of the bank,
    ``pending_count`` entries) and the LTP list on ``ltp_list`` (``ltp_count`` entries);
    both are memory read ports with one cycle of latency. ``step_start`` empties the LTP
    list; ``step_end`` swaps the banks and empties the one just read; ``clear`` empties both
    banks (clear state).

    Members
    -------
    fired : In(stream.Signature(fired_layout(config)))
    enable, learn : In(1); step : In(COUNTER_BITS)
    spikes : Out(stream.Signature(output_spike_layout(config)))
    pending : Out(memory.ReadPort.Signature(addr_width=axon_index_bits, shape=unsigned(axon_index_bits)))
    pending_count : Out(axon_index_bits + 1)
    ltp_list : Out(memory.ReadPort.Signature(addr_width=neuron_index_bits, shape=unsigned(neuron_index_bits)))
    ltp_count : Out(neuron_index_bits + 1)
    step_start, step_end, clear : In(1)
    """

    def __init__(self, *, config: CoreConfig):
        self._use_config(config)
        abits, nbits = config.axon_index_bits, config.neuron_index_bits
        members = {
            "fired": In(fired_stream(config)),
            "enable": In(1),
            "learn": In(1),
            "step": In(COUNTER_BITS),
            "spikes": Out(output_spike_stream(config)),
            "pending": Out(memory.ReadPort.Signature(addr_width=abits, shape=unsigned(abits))),
            "pending_count": Out(abits + 1),
            "step_start": In(1),
            "step_end": In(1),
            "clear": In(1),
        }
        if config.learning:
            members["ltp_list"] = Out(memory.ReadPort.Signature(
                addr_width=address_bits(config.neurons), shape=unsigned(nbits)))
            members["ltp_count"] = Out(nbits + 1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        abits = cfg.axon_index_bits
        fired = self.fired.payload

        m.d.comb += [
            self.fired.ready.eq(self.enable & (~fired.output | self.spikes.ready)),
            self.spikes.valid.eq(self.fired.valid & self.enable & fired.output),
            self.spikes.payload.neuron.eq(fired.neuron),
            self.spikes.payload.step.eq(self.step),
        ]
        route_now = self.fired.valid & self.fired.ready

        # Pending queue: bank ``bank`` is read this step, routes go to the other one.
        qbits = address_bits(min(cfg.neurons, cfg.axons))      # entries of one bank
        m.submodules.pendq_mem = pendq = Memory(shape=unsigned(abits), depth=2 << qbits, init=[])
        pend_w, pend_r = pendq.write_port(), pendq.read_port(domain="sync")
        bank = Signal()
        count = [Signal(abits + 1, name=f"pend_count{i}") for i in range(2)]
        next_bank = ~bank
        m.d.comb += [
            self.pending_count.eq(Mux(bank, count[1], count[0])),
            pend_r.addr.eq(Cat(self.pending.addr[:qbits], bank)), pend_r.en.eq(self.pending.en),
            self.pending.data.eq(pend_r.data),
        ]
        with m.If(route_now & fired.route_valid):
            m.d.comb += [pend_w.addr.eq(Cat(Mux(next_bank, count[1], count[0])[:qbits], next_bank)),
                         pend_w.data.eq(fired.route), pend_w.en.eq(1)]
            with m.If(next_bank):
                m.d.sync += count[1].eq(count[1] + 1)
            with m.Else():
                m.d.sync += count[0].eq(count[0] + 1)
        with m.If(self.step_end):
            m.d.sync += bank.eq(next_bank)
            with m.If(bank):
                m.d.sync += count[1].eq(0)
            with m.Else():
                m.d.sync += count[0].eq(0)
        with m.If(self.clear):
            m.d.sync += [count[0].eq(0), count[1].eq(0)]

        # LTP list: the neurons that fired this step, for the LTP engine.
        if cfg.learning:
            m.submodules.ltpq_mem = ltpq = Memory(shape=unsigned(cfg.neuron_index_bits),
                                                  depth=max(cfg.neurons, 2), init=[])
            ltpq_w, ltpq_r = ltpq.write_port(), ltpq.read_port(domain="sync")
            m.d.comb += [ltpq_r.addr.eq(self.ltp_list.addr), ltpq_r.en.eq(self.ltp_list.en),
                         self.ltp_list.data.eq(ltpq_r.data)]
            with m.If(route_now & self.learn):
                m.d.comb += [ltpq_w.addr.eq(self.ltp_count), ltpq_w.data.eq(fired.neuron),
                             ltpq_w.en.eq(1)]
                m.d.sync += self.ltp_count.eq(self.ltp_count + 1)
            with m.If(self.step_start):
                m.d.sync += self.ltp_count.eq(0)
        return m
