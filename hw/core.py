"""The neuromorphic core: memories, host interface, step controller and spike router.

``Core`` wires the datapath blocks (:class:`~neurocore.hw.integrator.Integrator`,
:class:`~neurocore.hw.neuron_unit.NeuronUnit`, :class:`~neurocore.hw.stdp.TraceSweep`,
:class:`~neurocore.hw.stdp.LtpEngine`) to the memories of docs/hw.md and sequences one
time step of docs/core-spec.md:

====== ================================================================================
FEED   host input queue, then the pending queue of internal axons, into the integrator
       (phase 1, LTD inline); every fed axon is marked in the active bitmap (learning)
UPDATE neuron pass and WTA commit (phase 2); the router (phase 3) sends each fired neuron
       to ``spike_out`` (outputs), to the other bank of the pending queue (routes) and to
       the LTP list (learning); the pre-trace sweep runs beside it (phase 4, traces)
LTP    the LTP engine scans the LTP axon range of every fired neuron (phase 4 (b))
====== ================================================================================

Every memory has one read and one write port, shared by the blocks; the controller's
phase selects who drives them (the host while idle). The phases never overlap on a
memory, which is what makes the sharing safe. The synapse memory is single-port in every
config (one address for both ports, so that it fits the iCE40 UP5K's SPRAM): the
integrator (LTD) and the LTP engine hold their synapse reads in the cycles of their
write-backs.
"""
from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, enum, stream
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .component import CoreComponent
from .config import CoreConfig
from .counter import SaturatingCounter
from .host import Opcode, Region, Register, command_layout, data_bits, output_spike_layout, \
    word_shape
from .integrator import Integrator
from .neuron_unit import NeuronUnit
from .stdp import LtpEngine, TraceSweep
from .widths import AMPLITUDE_BITS, COUNTER_BITS, LEARN_SHIFT_BITS, TRACE_DECAY_BITS

__all__ = ["Core"]

OUTPUT_FIFO_DEPTH = 16


class _Phase(enum.Enum, shape=3):
    HOST = 0     # idle: the host owns the memory ports
    CLEAR = 1    # clear-state sweep
    FEED = 2     # phase 1
    UPDATE = 3   # phases 2, 3 and the trace sweep
    LTP = 4      # phase 4 (b)


def _depth(count: int) -> int:
    """Memory depth for ``count`` words: at least 2, so that 1-bit addresses connect."""
    return max(count, 2)


class _SharedMemory:
    """One memory with one read and one write port, shared by several clients.

    Clients are registered with :meth:`reader` / :meth:`writer` together with the condition
    under which they own the port; :meth:`connect` builds the multiplexers. Read data goes
    to every reader (a synchronous read port holds its data while ``en`` is low).

    A **single-port** memory has one address for both ports, so that synthesis can map it
    to single-port RAM (the iCE40 UP5K's SPRAM: one address per cycle, a read or a write).
    Per condition (phase), the reader and the writer registered under the very same
    condition object share the address: ``addr = write.en ? write.addr : read.addr``, and
    the read port is disabled in a cycle that writes. Clients of such a memory must never
    read and write it in the same cycle (a read issued in a write cycle is lost). A memory
    is single-port when built with ``single_port=True`` (the synapse memory: LTD and LTP
    hold their synapse reads in the cycles of their write-backs), or when its only writer
    shares its address with the first reader under the same condition (the regions only
    the host writes: parameters, pointers, the LTP axon ranges, and theta without
    learning; nobody uses a word read in the cycle the host writes).
    """

    def __init__(self, name: str, shape, depth: int, init=(), *, single_port: bool = False):
        self.name = name
        self.shape = shape
        self.depth = depth
        init = list(init)
        if isinstance(shape, data.Layout) and init:
            # Struct-shaped words take layout constants as initial values, not plain ints.
            init = [data.Const(shape, word) for word in init]
        self.memory = Memory(shape=shape, depth=_depth(depth), init=init)
        self._single_port = single_port
        self._readers = []
        self._writers = []

    def reader(self, when, client):
        self._readers.append((when, client))

    def writer(self, when, client):
        self._writers.append((when, client))

    def host_client(self):
        """Plain signals the controller drives for host access (``en`` low by default)."""
        bits = max(1, (self.memory.depth - 1).bit_length())
        return SimpleNamespace(addr=Signal(bits, name=f"{self.name}_host_addr"),
                               en=Signal(name=f"{self.name}_host_en"),
                               data=Signal(self.shape, name=f"{self.name}_host_data"))

    @property
    def single_port(self) -> bool:
        return self._single_port or (
            len(self._writers) == 1 and bool(self._readers)
            and self._writers[0][0] is self._readers[0][0]
            and self._writers[0][1].addr is self._readers[0][1].addr)

    def connect(self, m: Module):
        m.submodules[self.name] = self.memory
        rd = self.memory.read_port(domain="sync")
        wr = self.memory.write_port()
        for _, client in self._readers:
            m.d.comb += client.data.eq(rd.data)
        if not self.single_port:
            for clients, port, fields in ((self._readers, rd, ("addr", "en")),
                                          (self._writers, wr, ("addr", "en", "data"))):
                if not clients:
                    m.d.comb += port.en.eq(0)
                    continue
                for i, (when, client) in enumerate(clients):
                    with m.If(when) if i == 0 else m.Elif(when):
                        for field in fields:
                            m.d.comb += getattr(port, field).eq(getattr(client, field))
                with m.Else():
                    m.d.comb += port.en.eq(0)
            return
        # Single port: pair the reader and the writer of every condition.
        phases = []                                  # [when, reader, writer]
        for clients, slot in ((self._readers, 1), (self._writers, 2)):
            for when, client in clients:
                entry = next((e for e in phases if e[0] is when), None)
                if entry is None:
                    entry = [when, None, None]
                    phases.append(entry)
                if entry[slot] is not None:
                    raise ValueError(f"{self.name}: a single-port memory takes one reader and one "
                                     f"writer per condition")
                entry[slot] = client
        rd_en, wr_en = Signal(name=f"{self.name}_rd_en"), Signal(name=f"{self.name}_wr_en")
        m.d.comb += [wr.addr.eq(rd.addr), wr.en.eq(wr_en), rd.en.eq(rd_en & ~wr_en)]
        for i, (when, reader, writer) in enumerate(phases):
            with m.If(when) if i == 0 else m.Elif(when):
                if reader is not None:
                    m.d.comb += rd_en.eq(reader.en)
                if writer is not None:
                    m.d.comb += [wr_en.eq(writer.en), wr.data.eq(writer.data)]
                if reader is None:
                    m.d.comb += rd.addr.eq(writer.addr)
                elif writer is None or writer.addr is reader.addr:
                    m.d.comb += rd.addr.eq(reader.addr)
                else:
                    m.d.comb += rd.addr.eq(Mux(writer.en, writer.addr, reader.addr))


class Core(CoreComponent):
    """A complete core for a :class:`CoreConfig`; see docs/hw.md for ports and address map.

    Parameters (keyword-only)
    -------------------------
    config : CoreConfig
    images : dict mapping :class:`Region` to a list of ints, optional
        Initial memory contents (a compiled program baked into the bitstream); words packed
        as by the host interface.
    registers : dict mapping :class:`Register` to int, optional
        Reset values of the writable registers (n_neurons, learning parameters, ...) and of
        the statistics counters STEP_COUNT, CYCLES, SOPS, ERRORS, FEED_CYCLES and
        UPDATE_CYCLES (0 by default; a value near ``COUNTER_MAX`` tests their saturation).

    Members
    -------
    cmd : In(stream.Signature(command_layout(config)))
        Host commands (WRITE, READ, STEP, CLEAR). Not ready while a command executes.
    rsp : Out(stream.Signature(data_bits(config)))
        One word per READ.
    spike_in : In(stream.Signature(axon_index_bits))
        Host input spikes for the next STEP (duplicates within a step count once; an axon
        ``>= N_INPUTS`` is rejected and counted as an error). Not ready during a step.
    spike_out : Out(stream.Signature(output_spike_layout(config)))
        Output spikes (neuron, step); within a step, neurons without WTA group in increasing
        index, then WTA winners in increasing index. A stalled
        ``spike_out`` stalls the core, nothing is dropped.
    busy : Out(1)
        A command is executing.
    error : Out(1)
        Sticky error flag (cleared by writing 1 to bit 0 of STATUS).
    """

    def __init__(self, *, config: CoreConfig, images=None, registers=None):
        self._use_config(config)
        self._images = dict(images or {})
        self._registers = dict(registers or {})
        for region in self._images:
            if not isinstance(region, Region):
                raise ValueError(f"Core: images keys must be Region members, got {region!r}")
        super().__init__({
            "cmd": In(stream.Signature(command_layout(config))),
            "rsp": Out(stream.Signature(unsigned(data_bits(config)))),
            "spike_in": In(stream.Signature(unsigned(config.axon_index_bits))),
            "spike_out": Out(stream.Signature(output_spike_layout(config))),
            "busy": Out(1),
            "error": Out(1),
        })

    @classmethod
    def for_program(cls, config: CoreConfig, program=None, *, learn: bool = False) -> "Core":
        """A core for ``config``; with ``program`` (a :class:`CoreProgram`), its memory images
        and registers are the initial contents: a program baked into the bitstream."""
        if program is None:
            return cls(config=config)
        from .images import program_images, program_registers

        if program.config != config:
            raise ValueError("the program was compiled for a different CoreConfig")
        return cls(config=config, images=program_images(program),
                   registers=program_registers(program, learn=learn))

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        N, A, S = cfg.neurons, cfg.axons, cfg.synapses
        learning, theta_on = cfg.learning, cfg.adaptive_threshold
        abits = cfg.axon_index_bits

        # ---- memories ------------------------------------------------------------------------
        def memory(name, region, depth, shape=None):
            shape = word_shape(cfg, region) if shape is None else shape
            init = self._images.get(region, ())
            if len(init) > depth:
                raise ValueError(f"Core: image for {region.name} has {len(init)} words, "
                                 f"the memory holds {depth}")
            return _SharedMemory(name, shape, depth, init, single_port=region == Region.SYNAPSE)

        mems = {
            Region.PARAM: memory("param_mem", Region.PARAM, N),
            Region.STATE: memory("state_mem", Region.STATE, N),
            Region.POINTER: memory("ptr_mem", Region.POINTER, A),
            Region.SYNAPSE: memory("syn_mem", Region.SYNAPSE, S),
            Region.ACC: memory("acc_mem", Region.ACC, N, NeuronUnit.acc_shape(cfg)),
        }
        if theta_on:
            mems[Region.THETA] = memory("theta_mem", Region.THETA, N)
        if learning:
            mems[Region.POST] = memory("y_mem", Region.POST, N)
            mems[Region.PRE] = memory("x_mem", Region.PRE, A)
            mems[Region.LTP_RANGE] = memory("ltp_range_mem", Region.LTP_RANGE, N)
        # Controller-private memories (not host visible).
        inq = _SharedMemory("inq_mem", unsigned(abits), A)            # host input queue
        queued = _SharedMemory("queued_mem", unsigned(1), A)           # axon is in inq
        pendq = _SharedMemory("pendq_mem", unsigned(abits), 2 << abits)  # 2 banks, bank = MSB
        private = [inq, queued, pendq]
        if learning:
            active = _SharedMemory("active_mem", unsigned(1), A)       # axon active this step
            ltpq = _SharedMemory("ltpq_mem", unsigned(cfg.neuron_index_bits), N)
            private += [active, ltpq]

        # ---- blocks -------------------------------------------------------------------------
        m.submodules.integrator = integ = Integrator(config=cfg)
        m.submodules.neuron_unit = nu = NeuronUnit(config=cfg)
        if learning:
            m.submodules.trace_sweep = sweep = TraceSweep(config=cfg)
            m.submodules.ltp = ltp = LtpEngine(config=cfg)
        m.submodules.out_fifo = out_fifo = SyncFIFOBuffered(
            width=output_spike_layout(cfg).size, depth=OUTPUT_FIFO_DEPTH)

        phase = Signal(_Phase)
        in_host, in_clear = phase == _Phase.HOST, phase == _Phase.CLEAR
        in_feed, in_update, in_ltp = phase == _Phase.FEED, phase == _Phase.UPDATE, phase == _Phase.LTP

        # ---- registers -----------------------------------------------------------------------
        def reg(register, width, *, signed_=False):
            shape = unsigned(width)
            init = self._registers.get(register, 0)
            if signed_:
                init &= (1 << width) - 1
            return Signal(shape, init=init, name=register.name.lower())

        w = cfg.weight_bits
        regs = {
            Register.N_NEURONS: reg(Register.N_NEURONS, cfg.neuron_index_bits + 1),
            Register.N_AXONS: reg(Register.N_AXONS, abits + 1),
            Register.N_INPUTS: reg(Register.N_INPUTS, abits + 1),
            Register.LEARN: reg(Register.LEARN, 1),
            Register.A_PLUS: reg(Register.A_PLUS, AMPLITUDE_BITS),
            Register.A_MINUS: reg(Register.A_MINUS, AMPLITUDE_BITS),
            Register.SHIFT: reg(Register.SHIFT, LEARN_SHIFT_BITS),
            Register.PRE_DECAY_SHIFT: reg(Register.PRE_DECAY_SHIFT, TRACE_DECAY_BITS),
            Register.POST_DECAY_SHIFT: reg(Register.POST_DECAY_SHIFT, TRACE_DECAY_BITS),
            Register.PRE_JUMP: reg(Register.PRE_JUMP, cfg.trace_bits),
            Register.POST_JUMP: reg(Register.POST_JUMP, cfg.trace_bits),
            Register.W_MIN: reg(Register.W_MIN, w, signed_=True),
            Register.W_MAX: reg(Register.W_MAX, w, signed_=True),
            Register.SOFT_BOUND: reg(Register.SOFT_BOUND, 1),
        }
        learn = Signal()          # learning enabled for the step being run
        if learning:
            m.d.comb += learn.eq(regs[Register.LEARN])
        w_min = regs[Register.W_MIN].as_signed()
        w_max = regs[Register.W_MAX].as_signed()

        def counter(name, *, amount_bits=1, restart_value=0):
            """A statistics counter (saturating); its reset value from ``registers``."""
            register = Register[name.upper()] if name.upper() in Register.__members__ else None
            m.submodules[name] = ctr = SaturatingCounter(
                amount_bits=amount_bits, restart_value=restart_value,
                init=self._registers.get(register, 0))
            return ctr

        step_count, cycles = counter("step_count"), counter("cycles")
        sops = counter("sops", amount_bits=COUNTER_BITS)
        errors = counter("errors")
        # Cycles of the running STEP: 2 in the accepting cycle (it and FINISH), + 1 per cycle
        # of FEED .. LTP; LAST_STEP_CYCLES takes it in FINISH.
        step_cycles = counter("step_cycles", restart_value=2)
        feed_cycles, update_cycles = counter("feed_cycles"), counter("update_cycles")
        last_cycles, last_sops = Signal(COUNTER_BITS, name="last_step_cycles"), \
            Signal(COUNTER_BITS, name="last_step_sops")
        ltp_updates = Signal(COUNTER_BITS, name="ltp_updates")
        error = Signal()
        m.d.comb += cycles.amount.eq(1)
        m.d.comb += self.error.eq(error)
        error_now = Signal()      # one more error this cycle
        m.d.comb += errors.amount.eq(error_now)
        with m.If(error_now):
            m.d.sync += error.eq(1)

        # ---- block parameters ----------------------------------------------------------------
        m.d.comb += [
            nu.n_neurons.eq(regs[Register.N_NEURONS]),
            nu.learn.eq(learn),
            integ.learn.eq(learn),
            integ.a_minus.eq(regs[Register.A_MINUS]),
            integ.shift.eq(regs[Register.SHIFT]),
            integ.post_decay_shift.eq(regs[Register.POST_DECAY_SHIFT]),
            integ.w_min.eq(w_min),
            integ.w_max.eq(w_max),
            integ.soft_bound.eq(regs[Register.SOFT_BOUND]),
        ]
        if learning:
            m.d.comb += [
                nu.post_decay_shift.eq(regs[Register.POST_DECAY_SHIFT]),
                nu.post_jump.eq(regs[Register.POST_JUMP]),
                sweep.n_axons.eq(regs[Register.N_AXONS]),
                sweep.pre_decay_shift.eq(regs[Register.PRE_DECAY_SHIFT]),
                sweep.pre_jump.eq(regs[Register.PRE_JUMP]),
                ltp.a_plus.eq(regs[Register.A_PLUS]),
                ltp.shift.eq(regs[Register.SHIFT]),
                ltp.w_min.eq(w_min),
                ltp.w_max.eq(w_max),
                ltp.soft_bound.eq(regs[Register.SOFT_BOUND]),
            ]

        # ---- memory port owners --------------------------------------------------------------
        host = {region: mem.host_client() for region, mem in mems.items()}
        # A host access reaches its memory one cycle after the command is accepted, from
        # registers (index, data, one enable per memory): the command decode and the memory
        # port multiplexers are then in different cycles (on the UP5K the path through both
        # into the SPRAM limited the clock). The host client's ``en`` serves READ and WRITE;
        # only a WRITE enables the write port (a READ must not store the idle data word).
        host_index = Signal(max(len(client.addr) for client in host.values()))
        host_data = Signal(data_bits(cfg))
        host_en = {region: Signal(name=f"host_en_{region.name.lower()}") for region in host}
        host_write = Signal()
        m.d.sync += [en.eq(0) for en in host_en.values()]
        m.d.sync += host_write.eq(0)
        for region, client in host.items():
            m.d.comb += [client.addr.eq(host_index), client.en.eq(host_en[region])]
        for region, mem in mems.items():
            mem.reader(in_host, host[region])          # host[region].data: the word read
            width = len(Value.cast(host[region].data))
            mem.writer(in_host, SimpleNamespace(addr=host[region].addr, data=host_data[:width],
                                                en=host[region].en & host_write))
        clear = {region: mems[region].host_client()
                 for region in (Region.STATE, Region.ACC, Region.POST, Region.PRE) if region in mems}
        for region, client in clear.items():
            mems[region].writer(in_clear, client)

        P = mems
        P[Region.POINTER].reader(in_feed, integ.ptr_rd)
        P[Region.SYNAPSE].reader(in_feed, integ.syn_rd)
        if learning:    # without learning the integrator's syn_wr.en is constant 0
            P[Region.SYNAPSE].writer(in_feed, integ.syn_wr)
        P[Region.ACC].reader(in_feed, integ.acc_rd)
        P[Region.ACC].writer(in_feed, integ.acc_wr)
        P[Region.PARAM].reader(in_update, nu.param_rd)
        P[Region.STATE].reader(in_update, nu.state_rd)
        P[Region.STATE].writer(in_update, nu.state_wr)
        P[Region.ACC].reader(in_update, nu.acc_rd)
        P[Region.ACC].writer(in_update, nu.acc_wr)
        if theta_on:
            P[Region.THETA].reader(in_update, nu.theta_rd)
            if learning:
                P[Region.THETA].writer(in_update, nu.theta_wr)
        if learning:
            P[Region.POST].reader(in_feed, integ.y_rd)
            P[Region.POST].reader(in_update, nu.y_rd)
            P[Region.POST].writer(in_update, nu.y_wr)
            P[Region.PRE].reader(in_update, sweep.x_rd)
            P[Region.PRE].writer(in_update, sweep.x_wr)
            P[Region.PRE].reader(in_ltp, ltp.x_rd)
            P[Region.LTP_RANGE].reader(in_ltp, ltp.range_rd)
            P[Region.POINTER].reader(in_ltp, ltp.ptr_rd)     # the integrator reads it in FEED only
            P[Region.SYNAPSE].reader(in_ltp, ltp.syn_rd)
            P[Region.SYNAPSE].writer(in_ltp, ltp.syn_wr)

        # Private memories: clients are plain signals driven below.
        inq_w, inq_r = inq.host_client(), inq.host_client()
        queued_w, queued_r = queued.host_client(), queued.host_client()
        pend_w, pend_r = pendq.host_client(), pendq.host_client()
        inq.writer(Const(1), inq_w)
        inq.reader(Const(1), inq_r)
        queued.writer(Const(1), queued_w)
        queued.reader(Const(1), queued_r)
        pendq.writer(Const(1), pend_w)
        pendq.reader(Const(1), pend_r)
        if learning:
            active_w = active.host_client()
            active.writer(in_feed | in_clear, active_w)
            active.writer(in_update, sweep.active_wr)
            active.reader(in_update, sweep.active_rd)
            ltpq_w, ltpq_r = ltpq.host_client(), ltpq.host_client()
            ltpq.writer(Const(1), ltpq_w)
            ltpq.reader(Const(1), ltpq_r)
        for mem in [*mems.values(), *private]:
            mem.connect(m)

        # ---- host input spikes (idle only) -------------------------------------------------
        # Stage 1: accept, look the axon up in the ``queued`` bitmap (transparent read is not
        # needed: stage 2 writes in the cycle after the lookup, and a repeat of the same axon
        # right behind it is caught by comparing with the stage-2 register).
        in_count = Signal(abits + 1)                 # entries in the input queue
        s2_valid = Signal()
        s2_axon = Signal(abits)
        idle = Signal()                              # the controller waits for commands
        m.d.comb += self.spike_in.ready.eq(idle)
        accept = self.spike_in.valid & self.spike_in.ready
        m.d.comb += [queued_r.addr.eq(self.spike_in.payload), queued_r.en.eq(accept)]
        m.d.sync += [s2_valid.eq(accept & (self.spike_in.payload < regs[Register.N_INPUTS])),
                     s2_axon.eq(self.spike_in.payload)]
        with m.If(accept & (self.spike_in.payload >= regs[Register.N_INPUTS])):
            m.d.comb += error_now.eq(1)
        # A repeat of the axon in stage 2 (written this cycle) must read as queued.
        s2_prev_valid = Signal()
        s2_prev_axon = Signal(abits)
        m.d.sync += [s2_prev_valid.eq(s2_valid), s2_prev_axon.eq(s2_axon)]
        dup = queued_r.data | (s2_prev_valid & (s2_prev_axon == s2_axon))
        with m.If(s2_valid & ~dup):
            m.d.comb += [inq_w.addr.eq(in_count), inq_w.data.eq(s2_axon), inq_w.en.eq(1),
                         queued_w.addr.eq(s2_axon), queued_w.data.eq(1), queued_w.en.eq(1)]
            m.d.sync += in_count.eq(in_count + 1)

        # ---- the controller ------------------------------------------------------------------
        cmd = self.cmd.payload
        bank = Signal()                                # pending-queue bank read this step
        pend_count = [Signal(abits + 1, name=f"pend_count{i}") for i in range(2)]
        cur_pend = Signal(abits + 1)
        m.d.comb += cur_pend.eq(Mux(bank, pend_count[1], pend_count[0]))
        rsp_data = Signal(data_bits(cfg))
        rsp_valid = Signal()
        m.d.comb += [self.rsp.payload.eq(rsp_data), self.rsp.valid.eq(rsp_valid)]
        with m.If(self.rsp.valid & self.rsp.ready):
            m.d.sync += rsp_valid.eq(0)
        read_region = Signal(Region)
        step_sops = Signal(COUNTER_BITS)

        # register read value
        reg_value = Signal(COUNTER_BITS)
        with m.Switch(cmd.index):
            for register, sig in regs.items():
                with m.Case(register.value):
                    m.d.comb += reg_value.eq(sig)
            with m.Case(Register.STATUS.value):
                m.d.comb += reg_value.eq(error | (self.busy << 1))
            for register, sig in ((Register.STEP_COUNT, step_count.count),
                                  (Register.CYCLES, cycles.count), (Register.SOPS, sops.count),
                                  (Register.LAST_STEP_CYCLES, last_cycles),
                                  (Register.LAST_STEP_SOPS, last_sops),
                                  (Register.ERRORS, errors.count),
                                  (Register.LTP_UPDATES, ltp_updates),
                                  (Register.FEED_CYCLES, feed_cycles.count),
                                  (Register.UPDATE_CYCLES, update_cycles.count)):
                with m.Case(register.value):
                    m.d.comb += reg_value.eq(sig)

        def region_depth(region):
            return {Region.PARAM: N, Region.STATE: N, Region.THETA: N, Region.POST: N,
                    Region.PRE: A, Region.POINTER: A, Region.SYNAPSE: S, Region.LTP_RANGE: N,
                    Region.ACC: N}[region]

        # Feed and clear bookkeeping.
        feed_idx = Signal(abits + 2)                   # next queue entry to read
        feed_total = Signal(abits + 2)
        feed_valid = Signal()
        feed_from_input = Signal()
        clear_idx = Signal(range(max(N, A) + 1))
        nu_done = Signal()
        sweep_done = Signal()
        ltp_count = Signal(cfg.neuron_index_bits + 1)
        ltp_idx = Signal(cfg.neuron_index_bits + 1)
        ltp_valid = Signal()

        m.d.comb += integ.clear_count.eq(0)
        if learning:
            m.d.comb += [ltp.clear_count.eq(0), ltp_updates.eq(ltp.updates)]

        # Router: fired neurons from the neuron unit (phase 3).
        fired = nu.fired.payload
        out_ok = ~fired.output | out_fifo.w_rdy
        m.d.comb += nu.fired.ready.eq(in_update & out_ok)
        route_now = nu.fired.valid & nu.fired.ready
        m.d.comb += [
            out_fifo.w_data.eq(Cat(fired.neuron, step_count.count)),
            out_fifo.w_en.eq(route_now & fired.output),
        ]
        next_bank = ~bank
        with m.If(route_now & fired.route_valid):
            m.d.comb += [pend_w.addr.eq(Cat(Mux(next_bank, pend_count[1], pend_count[0])[:abits],
                                              next_bank)),
                         pend_w.data.eq(fired.route), pend_w.en.eq(1)]
            with m.If(next_bank):
                m.d.sync += pend_count[1].eq(pend_count[1] + 1)
            with m.Else():
                m.d.sync += pend_count[0].eq(pend_count[0] + 1)
        if learning:
            with m.If(route_now & learn):
                m.d.comb += [ltpq_w.addr.eq(ltp_count), ltpq_w.data.eq(fired.neuron), ltpq_w.en.eq(1)]
                m.d.sync += ltp_count.eq(ltp_count + 1)
        m.d.comb += [self.spike_out.payload.eq(out_fifo.r_data), self.spike_out.valid.eq(out_fifo.r_rdy),
                     out_fifo.r_en.eq(self.spike_out.ready)]

        with m.FSM(name="ctrl") as fsm:
            with m.State("IDLE"):
                m.d.comb += [phase.eq(_Phase.HOST), idle.eq(1)]
                # A command waits for the spike pipeline to drain and for a pending response.
                m.d.comb += self.cmd.ready.eq(~s2_valid & ~rsp_valid & ~accept)
                with m.If(self.cmd.valid & self.cmd.ready):
                    index_ok = Signal()
                    with m.Switch(cmd.region):
                        for region in mems:
                            with m.Case(region):
                                m.d.comb += index_ok.eq(cmd.index < region_depth(region))
                        with m.Case(Region.REG):
                            m.d.comb += index_ok.eq(1)
                    with m.Switch(cmd.op):
                        with m.Case(Opcode.WRITE):
                            with m.If(~index_ok):
                                m.d.comb += error_now.eq(1)
                            with m.Elif(cmd.region == Region.REG):
                                with m.Switch(cmd.index):
                                    for register, sig in regs.items():
                                        with m.Case(register.value):
                                            m.d.sync += sig.eq(cmd.data)
                                    with m.Case(Register.STATUS.value):
                                        with m.If(cmd.data[0]):
                                            m.d.sync += error.eq(0)
                                    with m.Default():
                                        m.d.comb += error_now.eq(1)
                            with m.Else():
                                with m.Switch(cmd.region):
                                    for region in host:
                                        with m.Case(region):
                                            m.d.sync += [host_index.eq(cmd.index), host_data.eq(cmd.data),
                                                         host_en[region].eq(1), host_write.eq(1)]
                                    with m.Default():
                                        m.d.comb += error_now.eq(1)
                        with m.Case(Opcode.READ):
                            with m.If(~index_ok):
                                m.d.comb += error_now.eq(1)
                                m.d.sync += [rsp_data.eq(0), rsp_valid.eq(1)]
                            with m.Elif(cmd.region == Region.REG):
                                m.d.sync += [rsp_data.eq(reg_value), rsp_valid.eq(1)]
                            with m.Else():
                                with m.Switch(cmd.region):
                                    for region in host:
                                        with m.Case(region):
                                            m.d.sync += [host_index.eq(cmd.index), host_en[region].eq(1)]
                                m.d.sync += read_region.eq(cmd.region)
                                m.next = "READ_ADDR"
                        with m.Case(Opcode.STEP):
                            m.d.sync += [feed_idx.eq(0), feed_total.eq(in_count + cur_pend),
                                         feed_valid.eq(0), step_sops.eq(0)]
                            m.d.comb += [integ.clear_count.eq(1), step_cycles.restart.eq(1),
                                         feed_cycles.restart.eq(1), update_cycles.restart.eq(1)]
                            if learning:
                                m.d.sync += ltp_count.eq(0)
                            m.next = "FEED"
                        with m.Case(Opcode.CLEAR):
                            m.d.sync += clear_idx.eq(0)
                            m.next = "CLEAR"
            with m.State("READ_ADDR"):                 # the registered read address is out
                m.d.comb += phase.eq(_Phase.HOST)
                m.next = "READ"
            with m.State("READ"):
                m.d.comb += phase.eq(_Phase.HOST)
                with m.Switch(read_region):
                    for region, client in host.items():
                        with m.Case(region):
                            m.d.sync += rsp_data.eq(Value.cast(client.data).as_unsigned())
                m.d.sync += rsp_valid.eq(1)
                m.next = "IDLE"

            with m.State("CLEAR"):
                m.d.comb += phase.eq(_Phase.CLEAR)
                for region, client in clear.items():
                    m.d.comb += [client.addr.eq(clear_idx), client.data.eq(0),
                                 client.en.eq(clear_idx < region_depth(region))]
                if learning:
                    m.d.comb += [active_w.addr.eq(clear_idx), active_w.data.eq(0),
                                 active_w.en.eq(clear_idx < A)]
                m.d.comb += [queued_w.addr.eq(clear_idx), queued_w.data.eq(0),
                             queued_w.en.eq(clear_idx < A)]
                m.d.sync += clear_idx.eq(clear_idx + 1)
                with m.If(clear_idx == max(N, A) - 1):
                    m.d.sync += [in_count.eq(0), pend_count[0].eq(0), pend_count[1].eq(0)]
                    m.next = "IDLE"

            with m.State("FEED"):
                m.d.comb += [phase.eq(_Phase.FEED), step_cycles.amount.eq(1), feed_cycles.amount.eq(1)]
                # A one-entry read stage over the input queue, then the current pending bank.
                advance = ~feed_valid | integ.axons.ready
                more = feed_idx < feed_total
                from_input = feed_idx < in_count
                m.d.comb += [inq_r.addr.eq(feed_idx), inq_r.en.eq(advance),
                             pend_r.addr.eq(Cat((feed_idx - in_count)[:abits], bank)),
                             pend_r.en.eq(advance)]
                with m.If(advance):
                    m.d.sync += [feed_valid.eq(more), feed_from_input.eq(from_input)]
                    with m.If(more):
                        m.d.sync += feed_idx.eq(feed_idx + 1)
                axon = Mux(feed_from_input, inq_r.data, pend_r.data)
                m.d.comb += [integ.axons.payload.eq(axon), integ.axons.valid.eq(feed_valid)]
                fed = feed_valid & integ.axons.ready
                with m.If(fed & feed_from_input):
                    m.d.comb += [queued_w.addr.eq(axon), queued_w.data.eq(0), queued_w.en.eq(1)]
                if learning:
                    with m.If(fed & learn):
                        m.d.comb += [active_w.addr.eq(axon), active_w.data.eq(1), active_w.en.eq(1)]
                with m.If(~more & ~feed_valid & ~integ.busy):
                    m.d.sync += [nu_done.eq(0), sweep_done.eq(~learn), step_sops.eq(integ.sops)]
                    m.next = "UPDATE_START"

            with m.State("UPDATE_START"):
                # The blocks start once they own the ports (phase UPDATE from this cycle on).
                m.d.comb += [phase.eq(_Phase.UPDATE), nu.start.eq(1), step_cycles.amount.eq(1),
                             update_cycles.amount.eq(1)]
                if learning:
                    m.d.comb += sweep.start.eq(learn)
                m.next = "UPDATE"

            with m.State("UPDATE"):
                m.d.comb += [phase.eq(_Phase.UPDATE), step_cycles.amount.eq(1),
                             update_cycles.amount.eq(1)]
                with m.If(nu.done):
                    m.d.sync += nu_done.eq(1)
                if learning:
                    with m.If(sweep.done):
                        m.d.sync += sweep_done.eq(1)
                with m.If(nu_done & sweep_done):
                    m.d.sync += [ltp_idx.eq(0), ltp_valid.eq(0)]
                    m.next = "LTP" if learning else "FINISH"

            if learning:
                with m.State("LTP"):
                    m.d.comb += [phase.eq(_Phase.LTP), step_cycles.amount.eq(1)]
                    advance = ~ltp_valid | ltp.fired.ready
                    more = ltp_idx < ltp_count
                    m.d.comb += [ltpq_r.addr.eq(ltp_idx), ltpq_r.en.eq(advance)]
                    with m.If(advance):
                        m.d.sync += ltp_valid.eq(more)
                        with m.If(more):
                            m.d.sync += ltp_idx.eq(ltp_idx + 1)
                    m.d.comb += [ltp.fired.payload.eq(ltpq_r.data), ltp.fired.valid.eq(ltp_valid)]
                    with m.If(~more & ~ltp_valid & ~ltp.busy):
                        m.next = "FINISH"

            with m.State("FINISH"):
                m.d.comb += phase.eq(_Phase.HOST)
                m.d.comb += [step_count.amount.eq(1), sops.amount.eq(step_sops)]
                m.d.sync += [last_cycles.eq(step_cycles.count), last_sops.eq(step_sops),
                             bank.eq(next_bank), in_count.eq(0)]
                with m.If(bank):
                    m.d.sync += pend_count[1].eq(0)
                with m.Else():
                    m.d.sync += pend_count[0].eq(0)
                m.next = "IDLE"

        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m

