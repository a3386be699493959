"""The step controller of the core: host commands, and the sequence of one time step."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value, unsigned
from amaranth.lib import memory, stream
from amaranth.lib.wiring import In, Out

from .arbiter import address_bits
from .component import CoreComponent
from .config import CoreConfig
from .host import Opcode, Region, command_layout, data_bits, word_shape
from .phase import Phase
from .signatures import axon_stream, neuron_stream
from .widths import COUNTER_BITS, INDEX_BITS

__all__ = ["StepController", "host_regions", "CLEARED_REGIONS"]

# Regions the clear-state sweep writes with 0 (docs/core-spec.md, section 6).
CLEARED_REGIONS = (Region.STATE, Region.ACC, Region.POST, Region.PRE)


def host_regions(config: CoreConfig) -> dict:
    """The memory regions of ``config``: ``{region: (memory name, depth, word shape)}``."""
    from .neuron_unit import NeuronUnit

    n, a = config.neurons, config.axons
    regions = {
        Region.PARAM: ("param_mem", config.param_classes or n, word_shape(config, Region.PARAM)),
        Region.STATE: ("state_mem", n, word_shape(config, Region.STATE)),
        Region.POINTER: ("ptr_mem", a, word_shape(config, Region.POINTER)),
        Region.SYNAPSE: ("syn_mem", config.synapses, word_shape(config, Region.SYNAPSE)),
        Region.ACC: ("acc_mem", n, NeuronUnit.acc_shape(config)),
    }
    if config.adaptive_threshold:
        regions[Region.THETA] = ("theta_mem", n, word_shape(config, Region.THETA))
    if config.learning:
        regions[Region.POST] = ("y_mem", n, word_shape(config, Region.POST))
        regions[Region.PRE] = ("x_mem", a, word_shape(config, Region.PRE))
        regions[Region.LTP_RANGE] = ("ltp_range_mem", n, word_shape(config, Region.LTP_RANGE))
    if config.param_classes:
        regions[Region.NCLASS] = ("nclass_mem", n, word_shape(config, Region.NCLASS))
    if config.segments:
        regions[Region.SEGMENT] = ("seg_mem", config.segments, word_shape(config, Region.SEGMENT))
    return regions


def _port_name(kind: str, region: Region) -> str:
    return f"{kind}_{region.name.lower()}"


class StepController(CoreComponent):
    """Executes host commands and sequences one time step (docs/hw.md, "Core controller").

    ====== ================================================================================
    state  what happens
    ====== ================================================================================
    IDLE   ``phase`` HOST; accepts a command when no input spike is settling
           (``inq_settling``) and no response is pending. WRITE / READ of a register go to
           the register file (``reg_*``); of a memory, the index and data are registered and
           reach the memory's host port (``host_<region>_rd`` / ``_wr``) one cycle later;
           a READ's word is on ``rsp`` two cycles after that (READ_ADDR, READ). An index
           outside the region, an unknown region or register is an error (``error``; a
           READ then answers 0).
    CLEAR  one word per cycle, ``i = 0 .. max(N, A) - 1``: STATE, ACC, POST, PRE and the
           active and queued bitmaps := 0 (``clear_<region>``, ``active_wr``, ``zero``);
           then the input queue and both pending banks are emptied.
    FEED   the input queue (``inq_feed``), then the current pending bank (``pending``),
           through a one-entry read stage into ``axons`` (the integrator); a fed input axon
           leaves the queued bitmap (``inq_done``), with ``learn`` every fed axon is marked
           in the active bitmap. Ends when all are fed and ``integ_busy`` is low.
    SHARED_LTD (configs with segments and learning; after FEED, only with ``learn``) phase
           LTD: the active bitmap (``active_rd``) for ``a = 0 .. n_axons-1`` through a
           one-entry read stage, every active axon into ``axons`` (the integrator, in its
           LTD-only mode: LTD of the kernel words, spec phase 4 (a)). Ends when all are
           read and ``integ_busy`` is low.
    UPDATE ``nu_start`` (and ``sweep_start`` with ``learn``) in UPDATE_START, then waits for
           ``nu_done`` and ``sweep_done``; the router works in this phase.
    LTP    the LTP list (``ltp_list``) through a one-entry read stage into ``ltp_fired``,
           until all are sent and ``ltp_busy`` is low (configs with learning).
    FINISH ``step_done`` (statistics), ``step_end`` (pending banks swap), input queue emptied.
    ====== ================================================================================

    ``step_start`` pulses in the cycle a STEP is accepted (with ``integ_clear``); the
    ``*_cycle`` outputs say which counters of the register file count this cycle.
    """

    def __init__(self, *, config: CoreConfig):
        self._use_config(config)
        abits, nbits = config.axon_index_bits, config.neuron_index_bits
        a_addr = address_bits(config.axons)
        members = {
            "cmd": In(stream.Signature(command_layout(config))),
            "rsp": Out(stream.Signature(unsigned(data_bits(config)))),
            "busy": Out(1),
            "idle": Out(1),
            "phase": Out(Phase),
            "error": Out(1),
            "reg_index": Out(INDEX_BITS),
            "reg_data": Out(data_bits(config)),
            "reg_write": Out(1),
            "reg_read_data": In(COUNTER_BITS),
            "learn": In(1),
            "step_start": Out(1),
            "step_cycle": Out(1),
            "feed_cycle": Out(1),
            "update_cycle": Out(1),
            "step_done": Out(1),
            "step_end": Out(1),
            "inq_count": In(abits + 1),
            "inq_settling": In(1),
            "inq_feed": In(memory.ReadPort.Signature(addr_width=a_addr, shape=unsigned(abits))),
            "inq_done": Out(1),
            "inq_done_axon": Out(abits),
            "inq_restart": Out(1),
            "zero": Out(1),
            "zero_addr": Out(range(max(config.neurons, config.axons) + 1)),
            "pending": In(memory.ReadPort.Signature(addr_width=abits, shape=unsigned(abits))),
            "pending_count": In(abits + 1),
            "route_clear": Out(1),
            "axons": Out(axon_stream(config)),
            "integ_busy": In(1),
            "integ_clear": Out(1),
            "nu_start": Out(1),
            "nu_done": In(1),
        }
        if config.learning:
            members.update({
                "ltp_list": In(memory.ReadPort.Signature(addr_width=address_bits(config.neurons),
                                                         shape=unsigned(nbits))),
                "ltp_count": In(nbits + 1),
                "ltp_fired": Out(neuron_stream(config)),
                "ltp_busy": In(1),
                "sweep_start": Out(1),
                "sweep_done": In(1),
                "active_wr": In(memory.WritePort.Signature(addr_width=a_addr, shape=unsigned(1))),
            })
        if config.learning and config.segments:
            members.update({
                "active_rd": In(memory.ReadPort.Signature(addr_width=a_addr, shape=unsigned(1))),
                "n_axons": In(abits + 1),
            })
        self._regions = host_regions(config)
        for region, (_, depth, shape) in self._regions.items():
            aw = address_bits(depth)
            members[_port_name("host", region) + "_rd"] = In(
                memory.ReadPort.Signature(addr_width=aw, shape=shape))
            members[_port_name("host", region) + "_wr"] = In(
                memory.WritePort.Signature(addr_width=aw, shape=shape))
            if region in CLEARED_REGIONS:
                members[_port_name("clear", region)] = In(
                    memory.WritePort.Signature(addr_width=aw, shape=shape))
        super().__init__(members)

    def _host_ports(self, region):
        name = _port_name("host", region)
        return getattr(self, name + "_rd"), getattr(self, name + "_wr")

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        self._host_registers(m)
        rsp_valid = Signal()
        self._rsp_data = Signal(data_bits(cfg))
        m.d.comb += [self.rsp.payload.eq(self._rsp_data), self.rsp.valid.eq(rsp_valid),
                     self.reg_index.eq(self.cmd.payload.index), self.reg_data.eq(self.cmd.payload.data)]
        with m.If(self.rsp.valid & self.rsp.ready):
            m.d.sync += rsp_valid.eq(0)
        self._rsp_valid = rsp_valid

        # Feed, clear and LTP bookkeeping.
        abits = cfg.axon_index_bits
        self._feed_idx = Signal(abits + 2)              # next queue entry to read
        self._feed_total = Signal(abits + 2)
        self._feed_valid = Signal()
        self._feed_from_input = Signal()
        self._clear_idx = Signal(range(max(cfg.neurons, cfg.axons) + 1))
        self._nu_done = Signal()
        self._sweep_done = Signal()
        self._ltp_idx = Signal(cfg.neuron_index_bits + 1)
        self._ltp_valid = Signal()
        m.d.comb += self.zero_addr.eq(self._clear_idx)

        with m.FSM(name="ctrl") as fsm:
            self._idle_state(m)
            self._read_states(m)
            self._clear_state(m)
            self._feed_state(m)
            self._update_states(m)
            if cfg.learning and cfg.segments:
                self._shared_ltd_state(m)
            if cfg.learning:
                self._ltp_state(m)
            with m.State("FINISH"):
                m.d.comb += [self.phase.eq(Phase.HOST), self.step_done.eq(1),
                             self.step_end.eq(1), self.inq_restart.eq(1)]
                m.next = "IDLE"
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m

    def _host_registers(self, m):
        """A host access reaches its memory one cycle after the command is accepted, from
        registers (index, data, one enable per memory): the command decode and the memory
        port multiplexers are then in different cycles (on the UP5K the path through both
        into the SPRAM limited the clock). ``en`` serves READ and WRITE; only a WRITE
        enables the write port (a READ must not store the idle data word)."""
        widths = [address_bits(depth) for _, depth, _ in self._regions.values()]
        self._host_index = Signal(max(widths))
        self._host_data = Signal(data_bits(self._config))
        self._host_en = {region: Signal(name=f"host_en_{region.name.lower()}")
                         for region in self._regions}
        self._host_write = Signal()
        m.d.sync += [en.eq(0) for en in self._host_en.values()]
        m.d.sync += self._host_write.eq(0)
        for region in self._regions:
            rd, wr = self._host_ports(region)
            width = len(Value.cast(wr.data))
            m.d.comb += [rd.addr.eq(self._host_index), rd.en.eq(self._host_en[region]),
                         wr.addr.eq(self._host_index), wr.data.eq(self._host_data[:width]),
                         wr.en.eq(self._host_en[region] & self._host_write)]

    def _idle_state(self, m):
        cmd = self.cmd.payload
        with m.State("IDLE"):
            m.d.comb += [self.phase.eq(Phase.HOST), self.idle.eq(1)]
            # A command waits for the spike pipeline to drain and for a pending response.
            m.d.comb += self.cmd.ready.eq(~self.inq_settling & ~self._rsp_valid)
            with m.If(self.cmd.valid & self.cmd.ready):
                index_ok = Signal()
                with m.Switch(cmd.region):
                    for region, (_, depth, _) in self._regions.items():
                        with m.Case(region):
                            m.d.comb += index_ok.eq(cmd.index < depth)
                    with m.Case(Region.REG):
                        m.d.comb += index_ok.eq(1)
                with m.Switch(cmd.op):
                    with m.Case(Opcode.WRITE):
                        with m.If(~index_ok):
                            m.d.comb += self.error.eq(1)
                        with m.Elif(cmd.region == Region.REG):
                            m.d.comb += self.reg_write.eq(1)
                        with m.Else():
                            with m.Switch(cmd.region):
                                for region in self._regions:
                                    with m.Case(region):
                                        m.d.sync += [self._host_index.eq(cmd.index),
                                                     self._host_data.eq(cmd.data),
                                                     self._host_en[region].eq(1),
                                                     self._host_write.eq(1)]
                                with m.Default():
                                    m.d.comb += self.error.eq(1)
                    with m.Case(Opcode.READ):
                        with m.If(~index_ok):
                            m.d.comb += self.error.eq(1)
                            m.d.sync += [self._rsp_data.eq(0), self._rsp_valid.eq(1)]
                        with m.Elif(cmd.region == Region.REG):
                            m.d.sync += [self._rsp_data.eq(self.reg_read_data), self._rsp_valid.eq(1)]
                        with m.Else():
                            with m.Switch(cmd.region):
                                for region in self._regions:
                                    with m.Case(region):
                                        m.d.sync += [self._host_index.eq(cmd.index),
                                                     self._host_en[region].eq(1)]
                            self._read_region = Signal(Region)
                            m.d.sync += self._read_region.eq(cmd.region)
                            m.next = "READ_ADDR"
                    with m.Case(Opcode.STEP):
                        m.d.sync += [self._feed_idx.eq(0),
                                     self._feed_total.eq(self.inq_count + self.pending_count),
                                     self._feed_valid.eq(0)]
                        m.d.comb += [self.integ_clear.eq(1), self.step_start.eq(1)]
                        m.next = "FEED"
                    with m.Case(Opcode.CLEAR):
                        m.d.sync += self._clear_idx.eq(0)
                        m.next = "CLEAR"

    def _read_states(self, m):
        with m.State("READ_ADDR"):                 # the registered read address is out
            m.d.comb += self.phase.eq(Phase.HOST)
            m.next = "READ"
        with m.State("READ"):
            m.d.comb += self.phase.eq(Phase.HOST)
            with m.Switch(self._read_region):
                for region in self._regions:
                    with m.Case(region):
                        rd, _ = self._host_ports(region)
                        m.d.sync += self._rsp_data.eq(Value.cast(rd.data).as_unsigned())
            m.d.sync += self._rsp_valid.eq(1)
            m.next = "IDLE"

    def _clear_state(self, m):
        cfg, idx = self._config, self._clear_idx
        with m.State("CLEAR"):
            m.d.comb += [self.phase.eq(Phase.CLEAR), self.zero.eq(1)]
            for region in CLEARED_REGIONS:
                if region in self._regions:
                    port = getattr(self, _port_name("clear", region))
                    m.d.comb += [port.addr.eq(idx), port.data.eq(0),
                                 port.en.eq(idx < self._regions[region][1])]
            if cfg.learning:
                m.d.comb += [self.active_wr.addr.eq(idx), self.active_wr.data.eq(0),
                             self.active_wr.en.eq(idx < cfg.axons)]
            m.d.sync += idx.eq(idx + 1)
            with m.If(idx == max(cfg.neurons, cfg.axons) - 1):
                m.d.comb += [self.inq_restart.eq(1), self.route_clear.eq(1)]
                m.next = "IDLE"

    def _feed_state(self, m):
        cfg = self._config
        abits = cfg.axon_index_bits
        idx, valid, from_input = self._feed_idx, self._feed_valid, self._feed_from_input
        with m.State("FEED"):
            m.d.comb += [self.phase.eq(Phase.FEED), self.step_cycle.eq(1), self.feed_cycle.eq(1)]
            # A one-entry read stage over the input queue, then the current pending bank.
            advance = ~valid | self.axons.ready
            more = idx < self._feed_total
            m.d.comb += [self.inq_feed.addr.eq(idx), self.inq_feed.en.eq(advance),
                         self.pending.addr.eq((idx - self.inq_count)[:abits]),
                         self.pending.en.eq(advance)]
            with m.If(advance):
                m.d.sync += [valid.eq(more), from_input.eq(idx < self.inq_count)]
                with m.If(more):
                    m.d.sync += idx.eq(idx + 1)
            axon = Mux(from_input, self.inq_feed.data, self.pending.data)
            m.d.comb += [self.axons.payload.eq(axon), self.axons.valid.eq(valid)]
            fed = valid & self.axons.ready
            m.d.comb += [self.inq_done.eq(fed & from_input), self.inq_done_axon.eq(axon)]
            if cfg.learning:
                with m.If(fed & self.learn):
                    m.d.comb += [self.active_wr.addr.eq(axon), self.active_wr.data.eq(1),
                                 self.active_wr.en.eq(1)]
            with m.If(~more & ~valid & ~self.integ_busy):
                m.d.sync += [self._nu_done.eq(0), self._sweep_done.eq(~self.learn)]
                if cfg.learning and cfg.segments:
                    m.d.sync += [idx.eq(0), valid.eq(0)]
                    m.next = "UPDATE_START"
                    with m.If(self.learn):
                        m.next = "SHARED_LTD"
                else:
                    m.next = "UPDATE_START"

    def _shared_ltd_state(self, m):
        """SHARED_LTD (phase LTD): the active bitmap is read for ``a = 0 .. n_axons-1``
        through a one-entry read stage, and every active axon goes to the integrator (in
        its LTD-only mode, which walks the axon's segments); an inactive one is dropped
        in the cycle after its read. Ends when all are read and ``integ_busy`` is low."""
        cfg = self._config
        idx, valid = self._feed_idx, self._feed_valid
        axon = Signal(cfg.axon_index_bits)
        with m.State("SHARED_LTD"):
            m.d.comb += [self.phase.eq(Phase.LTD), self.step_cycle.eq(1)]
            active = self.active_rd.data
            advance = ~valid | ~active | self.axons.ready
            more = idx < self.n_axons
            m.d.comb += [self.active_rd.addr.eq(idx), self.active_rd.en.eq(advance)]
            with m.If(advance):
                m.d.sync += [valid.eq(more), axon.eq(idx)]
                with m.If(more):
                    m.d.sync += idx.eq(idx + 1)
            m.d.comb += [self.axons.payload.eq(axon), self.axons.valid.eq(valid & active)]
            with m.If(~more & ~valid & ~self.integ_busy):
                m.next = "UPDATE_START"

    def _update_states(self, m):
        cfg = self._config
        with m.State("UPDATE_START"):
            # The blocks start once they own the ports (phase UPDATE from this cycle on).
            m.d.comb += [self.phase.eq(Phase.UPDATE), self.nu_start.eq(1), self.step_cycle.eq(1),
                         self.update_cycle.eq(1)]
            if cfg.learning:
                m.d.comb += self.sweep_start.eq(self.learn)
            m.next = "UPDATE"
        with m.State("UPDATE"):
            m.d.comb += [self.phase.eq(Phase.UPDATE), self.step_cycle.eq(1), self.update_cycle.eq(1)]
            with m.If(self.nu_done):
                m.d.sync += self._nu_done.eq(1)
            if cfg.learning:
                with m.If(self.sweep_done):
                    m.d.sync += self._sweep_done.eq(1)
            with m.If(self._nu_done & self._sweep_done):
                m.d.sync += [self._ltp_idx.eq(0), self._ltp_valid.eq(0)]
                m.next = "LTP" if cfg.learning else "FINISH"

    def _ltp_state(self, m):
        idx, valid = self._ltp_idx, self._ltp_valid
        with m.State("LTP"):
            m.d.comb += [self.phase.eq(Phase.LTP), self.step_cycle.eq(1)]
            advance = ~valid | self.ltp_fired.ready
            more = idx < self.ltp_count
            m.d.comb += [self.ltp_list.addr.eq(idx), self.ltp_list.en.eq(advance)]
            with m.If(advance):
                m.d.sync += valid.eq(more)
                with m.If(more):
                    m.d.sync += idx.eq(idx + 1)
            m.d.comb += [self.ltp_fired.payload.eq(self.ltp_list.data), self.ltp_fired.valid.eq(valid)]
            with m.If(~more & ~valid & ~self.ltp_busy):
                m.next = "FINISH"
