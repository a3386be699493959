"""The neuromorphic core: the memories of docs/hw.md and the blocks, composed.

``Core`` builds every memory and composes the blocks (nothing else happens here):

* :class:`~neurocore.hw.controller.StepController` - host commands and the step FSM;
* :class:`~neurocore.hw.register_file.RegisterFile` - region REG and the statistics;
* :class:`~neurocore.hw.input_queue.InputSpikeQueue` - ``spike_in``, deduplicated;
* :class:`~neurocore.hw.router.SpikeRouter` - phase 3, into the output FIFO
  (``SyncFIFOBuffered``, by its streams), the pending queue and the LTP list;
* the datapath: :class:`~neurocore.hw.integrator.Integrator`,
  :class:`~neurocore.hw.neuron_unit.NeuronUnit`, :class:`~neurocore.hw.stdp.TraceSweep`,
  :class:`~neurocore.hw.stdp.LtpEngine`;
* one :class:`~neurocore.hw.arbiter.MemoryArbiter` per memory (``<memory>_ports``).

One time step of docs/core-spec.md:

====== ================================================================================
FEED   host input queue, then the pending queue of internal axons, into the integrator
       (phase 1, LTD inline); every fed axon is marked in the active bitmap (learning)
LTD    (segments and learning, in a learning step) the active axons, in increasing index,
       through the integrator again: LTD of their kernel words (phase 4 (a) on shared words)
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

from amaranth.hdl import Module, unsigned
from amaranth.lib import data, stream
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out, connect, flipped

from .arbiter import MemoryArbiter
from .component import CoreComponent
from .config import CoreConfig
from .controller import CLEARED_REGIONS, StepController, host_regions
from .host import Region, command_layout, data_bits, output_spike_layout
from .input_queue import InputSpikeQueue
from .integrator import Integrator
from .neuron_unit import NeuronUnit
from .phase import Phase
from .register_file import RegisterFile
from .router import SpikeRouter
from .signatures import WtaBlocksSignature, axon_stream, output_spike_stream
from .stdp import LtpEngine, TraceSweep

__all__ = ["Core", "OUTPUT_FIFO_DEPTH"]

OUTPUT_FIFO_DEPTH = 16


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
            "spike_in": In(axon_stream(config)),
            "spike_out": Out(output_spike_stream(config)),
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

    def _memory_clients(self, blocks) -> dict:
        """``{region: (readers, writers)}``, each ``{client name: (phases, port)}``: who owns
        which port of every memory in which phase (docs/hw.md, "Memories")."""
        cfg, ctrl = self._config, blocks["ctrl"]
        integ, nu = blocks["integrator"], blocks["neuron_unit"]
        H, C, F, U, L = Phase.HOST, Phase.CLEAR, Phase.FEED, Phase.UPDATE, Phase.LTP
        # the integrator's phases: FEED, and the shared-LTD pass (segments and learning)
        I = (F, Phase.LTD) if cfg.segments and cfg.learning else F
        clients = {}
        for region in host_regions(cfg):
            host = f"host_{region.name.lower()}"
            writers = {"host_wr": (H, getattr(ctrl, host + "_wr"))}
            if region in CLEARED_REGIONS:
                writers["clear"] = (C, getattr(ctrl, f"clear_{region.name.lower()}"))
            clients[region] = ({"host": (H, getattr(ctrl, host + "_rd"))}, writers)

        # (region, client, phases, block, port): a port named *_wr is a writer.
        table = [
            (Region.POINTER, "integrator", I, integ, "ptr_rd"),
            *([(Region.SEGMENT, "integrator", I, integ, "seg_rd")] if cfg.segments else []),
            (Region.SYNAPSE, "integrator", I, integ, "syn_rd"),
            (Region.ACC, "integrator", F, integ, "acc_rd"),
            (Region.ACC, "integrator_wr", F, integ, "acc_wr"),
            (Region.PARAM, "neuron_unit", U, nu, "param_rd"),
            *([(Region.NCLASS, "neuron_unit", U, nu, "nclass_rd")] if cfg.param_classes else []),
            (Region.STATE, "neuron_unit", U, nu, "state_rd"),
            (Region.STATE, "neuron_unit_wr", U, nu, "state_wr"),
            (Region.ACC, "neuron_unit", U, nu, "acc_rd"),
            (Region.ACC, "neuron_unit_wr", U, nu, "acc_wr"),
        ]
        if cfg.adaptive_threshold:
            table.append((Region.THETA, "neuron_unit", U, nu, "theta_rd"))
            if cfg.learning:
                table.append((Region.THETA, "neuron_unit_wr", U, nu, "theta_wr"))
        if cfg.learning:    # without learning the integrator's syn_wr.en is constant 0
            sweep, ltp = blocks["trace_sweep"], blocks["ltp"]
            table += [
                (Region.SYNAPSE, "integrator_wr", I, integ, "syn_wr"),
                (Region.POST, "integrator", I, integ, "y_rd"),
                (Region.POST, "neuron_unit", U, nu, "y_rd"),
                (Region.POST, "neuron_unit_wr", U, nu, "y_wr"),
                (Region.PRE, "trace_sweep", U, sweep, "x_rd"),
                (Region.PRE, "trace_sweep_wr", U, sweep, "x_wr"),
                (Region.PRE, "ltp", L, ltp, "x_rd"),
                (Region.LTP_RANGE, "ltp", L, ltp, "range_rd"),
                (Region.POINTER, "ltp", L, ltp, "ptr_rd"),    # the integrator's in FEED (and LTD)
                *([(Region.SEGMENT, "ltp", L, ltp, "seg_rd")] if cfg.segments else []),
                (Region.SYNAPSE, "ltp", L, ltp, "syn_rd"),
                (Region.SYNAPSE, "ltp_wr", L, ltp, "syn_wr"),
            ]
        for region, client, phases, block, port in table:
            clients[region][port.endswith("_wr")][client] = (phases, getattr(block, port))
        return clients

    def _shared_memory(self, m, name, shape, depth, init, readers, writers, *, single_port, phase):
        """``name`` (a ``Memory``) and its :class:`MemoryArbiter`, every client connected."""
        init = list(init)
        if isinstance(shape, data.Layout) and init:
            # Struct-shaped words take layout constants as initial values, not plain ints.
            init = [data.Const(shape, word) for word in init]
        m.submodules[name] = mem = Memory(shape=shape, depth=max(depth, 2), init=init)
        m.submodules[name + "_ports"] = arbiter = MemoryArbiter(
            shape=shape, depth=depth, single_port=single_port,
            readers={n: p for n, (p, _) in readers.items()},
            writers={n: p for n, (p, _) in writers.items()})
        m.d.comb += arbiter.phase.eq(phase)
        for clients in (readers, writers):
            for client, (_, port) in clients.items():
                connect(m, port, getattr(arbiter, client))
        rd, wr = mem.read_port(domain="sync"), mem.write_port()
        connect(m, arbiter.rd, rd)
        m.d.comb += [wr.addr.eq(rd.addr if single_port else arbiter.wr.addr),
                     wr.en.eq(arbiter.wr.en), wr.data.eq(arbiter.wr.data)]

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        learning = cfg.learning

        # ---- blocks ---------------------------------------------------------------------------
        blocks = {
            "ctrl": StepController(config=cfg),
            "registers": RegisterFile(config=cfg, registers=self._registers),
            "input_queue": InputSpikeQueue(config=cfg),
            "router": SpikeRouter(config=cfg),
            "integrator": Integrator(config=cfg),
            "neuron_unit": NeuronUnit(config=cfg),
            "out_fifo": SyncFIFOBuffered(width=output_spike_layout(cfg).size, depth=OUTPUT_FIFO_DEPTH),
        }
        if learning:
            blocks["trace_sweep"] = TraceSweep(config=cfg)
            blocks["ltp"] = LtpEngine(config=cfg)
        for name, block in blocks.items():
            m.submodules[name] = block
        ctrl, regs, queue, router = (blocks[n] for n in ("ctrl", "registers", "input_queue", "router"))
        integ, nu, out_fifo = blocks["integrator"], blocks["neuron_unit"], blocks["out_fifo"]

        # ---- memories: the host regions and the active bitmap --------------------------------
        clients = self._memory_clients(blocks)
        for region, (name, depth, shape) in host_regions(cfg).items():
            init = self._images.get(region, ())
            if len(init) > depth:
                raise ValueError(f"Core: image for {region.name} has {len(init)} words, "
                                 f"the memory holds {depth}")
            readers, writers = clients[region]
            # Single-port: the synapses always; a memory only the host writes (nobody uses a
            # word read in the cycle the host writes).
            self._shared_memory(m, name, shape, depth, init, readers, writers, phase=ctrl.phase,
                                single_port=region == Region.SYNAPSE or set(writers) == {"host_wr"})
        if learning:
            sweep, ltp = blocks["trace_sweep"], blocks["ltp"]
            readers = {"trace_sweep": (Phase.UPDATE, sweep.active_rd)}
            if cfg.segments:          # the shared-LTD pass walks the active axons
                readers["shared_ltd"] = (Phase.LTD, ctrl.active_rd)
            self._shared_memory(    # axon active this step (set in FEED, cleared by the sweep)
                m, "active_mem", TraceSweep.active_shape(cfg), cfg.axons, (), readers,
                {"ctrl": ((Phase.FEED, Phase.CLEAR), ctrl.active_wr),
                 "trace_sweep_wr": (Phase.UPDATE, sweep.active_wr)},
                single_port=False, phase=ctrl.phase)

        # ---- host interface -------------------------------------------------------------------
        connect(m, flipped(self.cmd), ctrl.cmd)
        connect(m, ctrl.rsp, flipped(self.rsp))
        connect(m, flipped(self.spike_in), queue.spikes)
        connect(m, router.spikes, out_fifo.w_stream)
        connect(m, out_fifo.r_stream, flipped(self.spike_out))
        m.d.comb += [self.busy.eq(ctrl.busy), self.error.eq(regs.error)]

        # ---- controller <-> register file, input queue, router ------------------------------
        m.d.comb += [
            regs.index.eq(ctrl.reg_index), regs.write_data.eq(ctrl.reg_data),
            regs.write.eq(ctrl.reg_write), regs.busy.eq(ctrl.busy),
            regs.error_cmd.eq(ctrl.error), regs.error_spike.eq(queue.rejected),
            regs.step_start.eq(ctrl.step_start), regs.step_cycle.eq(ctrl.step_cycle),
            regs.feed_cycle.eq(ctrl.feed_cycle), regs.update_cycle.eq(ctrl.update_cycle),
            regs.step_done.eq(ctrl.step_done), regs.step_sops.eq(integ.sops),
            ctrl.reg_read_data.eq(regs.read_data), ctrl.learn.eq(regs.learn),
            queue.enable.eq(ctrl.idle), queue.n_inputs.eq(regs.n_inputs),
            queue.done.eq(ctrl.inq_done), queue.done_axon.eq(ctrl.inq_done_axon),
            queue.zero.eq(ctrl.zero), queue.zero_addr.eq(ctrl.zero_addr),
            queue.restart.eq(ctrl.inq_restart),
            # no command while a spike is settling in the queue or an error is being counted
            ctrl.inq_count.eq(queue.count), ctrl.inq_settling.eq(queue.settling | regs.settling),
            router.enable.eq(ctrl.phase == Phase.UPDATE), router.learn.eq(regs.learn),
            router.step.eq(regs.step_count), router.step_start.eq(ctrl.step_start),
            router.step_end.eq(ctrl.step_end), router.clear.eq(ctrl.route_clear),
            ctrl.pending_count.eq(router.pending_count),
        ]
        if cfg.learning and cfg.segments:
            m.d.comb += [ctrl.n_axons.eq(regs.n_axons), integ.shared_ltd.eq(ctrl.phase == Phase.LTD)]
        connect(m, ctrl.inq_feed, queue.feed)
        connect(m, ctrl.pending, router.pending)

        # ---- controller <-> datapath blocks -------------------------------------------------
        lp = regs.learning
        connect(m, ctrl.axons, integ.axons)
        connect(m, nu.fired, router.fired)
        m.d.comb += [
            integ.clear_count.eq(ctrl.integ_clear), ctrl.integ_busy.eq(integ.busy),
            integ.learn.eq(regs.learn),
            nu.start.eq(ctrl.nu_start), ctrl.nu_done.eq(nu.done),
            nu.n_neurons.eq(regs.n_neurons), nu.learn.eq(regs.learn),
        ]
        if WtaBlocksSignature(cfg).ranges:
            connect(m, regs.wta_blocks, nu.wta_blocks)
        if learning:
            connect(m, lp, integ.learning, blocks["ltp"].learning)
            connect(m, ctrl.ltp_list, router.ltp_list)
            connect(m, ctrl.ltp_fired, ltp.fired)
            m.d.comb += [
                ctrl.ltp_count.eq(router.ltp_count), ctrl.ltp_busy.eq(ltp.busy),
                regs.ltp_updates.eq(ltp.updates), ltp.clear_count.eq(0),
                nu.post_decay_shift.eq(lp.post_decay_shift), nu.post_jump.eq(lp.post_jump),
                sweep.start.eq(ctrl.sweep_start), ctrl.sweep_done.eq(sweep.done),
                sweep.n_axons.eq(regs.n_axons),
                sweep.pre_decay_shift.eq(lp.pre_decay_shift), sweep.pre_jump.eq(lp.pre_jump),
            ]
        return m
