"""The neuron update unit: phase 2 of a time step (LIF update and winner-take-all) and the
per-neuron part of phase 4 (theta and post trace ``y``), docs/core-spec.md, section 5.

One *pass* (started by ``start``) runs the neuron-update part of one time step, in two
sub-passes:

1. **scan** - a pipelined sweep over ``n = 0 .. n_neurons-1`` at one neuron per clock. Every
   neuron is read once and written once. A candidate in no WTA group (``wta_group == 0`` and
   in no structural block) fires right there (reset, refractory period, theta and ``y``
   jump, one word on ``fired``); a candidate of a WTA group or block is recorded in an
   internal candidate buffer, its group's best candidate in an internal group table, and a
   block's ``k``-th best candidate, at the block's end, in an internal key buffer.
2. **commit** - a sweep over the recorded WTA candidates only (skipped when there is none):
   each group's winner and each block's ``k`` best fire, the losers get ``v = 0``.

The cost of a pass is at most ``n_neurons + wta_candidates + 6`` clock cycles from the
``start`` cycle to the ``done`` cycle (``n_neurons + 4`` without WTA candidates, however many
neurons fire), plus one cycle for every cycle that ``fired`` holds a word that is not
accepted (``fired.ready`` low).
"""
from __future__ import annotations

from amaranth.hdl import Const, Module, Signal, signed, unsigned
from amaranth.lib import data, memory, stream
from amaranth.lib.wiring import In, Out

from .component import CoreComponent
from .config import CoreConfig
from .layouts import fired_layout, neuron_param_layout, neuron_state_layout
from .lif import LifUpdate, integrated_layout, leaked_layout, saturating_add
from .signatures import WtaBlocksSignature
from .widths import REFRACTORY_BITS, TRACE_DECAY_BITS
from .wta_commit import WtaCommit

__all__ = ["NeuronUnit"]


def _drive(port, addr, en, data=None) -> list:
    """Drive a memory port: ``addr``, ``en`` and (write port) ``data``; nothing for an absent
    port (``None``)."""
    if port is None:
        return []
    return [port.addr.eq(addr), port.en.eq(en)] + ([] if data is None else [port.data.eq(data)])


def _fire_layout(config: CoreConfig) -> data.StructLayout:
    """The parameters a firing neuron needs in stage D: reset, refractory period, route, output."""
    return data.StructLayout({
        "reset_mode": unsigned(1),
        "refractory": unsigned(REFRACTORY_BITS),
        "route_valid": unsigned(1),
        "route": unsigned(config.axon_index_bits),
        "output": unsigned(1),
    })


def _route(word, neuron, abits: int):
    """With parameter classes, ``word.route`` is an offset: the route of ``neuron`` is
    ``(neuron + offset) mod 2^aib`` (docs/core-spec.md, section 2)."""
    return (neuron + word.route)[:abits]


def _offer(fired, valid, neuron, word) -> list:
    """Drive the ``fired`` stream: ``neuron`` with the route and output flag of ``word``."""
    return [fired.valid.eq(valid), fired.payload.neuron.eq(neuron),
            *(fired.payload[name].eq(word[name]) for name in ("route_valid", "route", "output"))]


class NeuronUnit(CoreComponent):
    """LIF datapath: runs spec phase 2 (update neurons, WTA, reset) and the theta / post-trace
    part of phase 4 for one time step.

    Memories (owned by the top level, which also gives the host access to them)
    -----------------------------------------------------------------------------
    The unit reaches each memory through a port pair in its signature. Every memory holds
    ``config.neurons`` words, addressed by neuron index with ``neuron_index_bits`` address bits
    (for ``neurons == 1`` that is 1 bit, so such a memory needs ``depth=2``: a depth-1
    ``Memory`` has 0-bit addresses and will not connect):

    ========== ====================================== ========================================
    ports      word shape                             use
    ========== ====================================== ========================================
    param_rd   ``neuron_param_layout(config)``        read (scan and commit); with parameter
                                                      classes the class table (``param_classes``
                                                      words, addressed by class)
    nclass_rd  ``unsigned(class_index_bits)``         read (scan): the neuron's class. Present
                                                      iff ``config.param_classes > 0``.
    state_rd   ``neuron_state_layout(config)``        read (scan)
    state_wr                                          write (scan: every neuron; commit:
                                                      every WTA candidate)
    acc_rd     ``signed(accumulator_bits)``           read (scan)
    acc_wr                                            write 0 (scan: every neuron, clearing
                                                      the accumulator for the next step)
    theta_rd   ``unsigned(membrane_bits - 1)``        read (scan; commit when learning).
                                                      Present iff ``config.adaptive_threshold``.
    theta_wr                                          write (scan: decayed theta, plus the
                                                      jump for a neuron firing there; commit:
                                                      jump of WTA winners). Present iff
                                                      ``adaptive_threshold`` and ``learning``.
    y_rd       ``unsigned(trace_bits)``               read (scan and commit). Present iff
                                                      ``config.learning``.
    y_wr                                              write (scan: decayed trace ``yd``, plus
                                                      the jump for a neuron firing there;
                                                      commit: jump of WTA winners). Present
                                                      iff ``config.learning``.
    ========== ====================================== ========================================

    The ports are flipped memory port signatures: the unit drives ``addr``/``en`` (and
    ``data`` of write ports); the top connects them with
    ``wiring.connect(m, unit.param_rd, param_mem.read_port())`` and
    ``wiring.connect(m, unit.state_wr, state_mem.write_port())``.

    Requirements on the memories:

    * read ports are synchronous (``domain="sync"``), read latency 1 cycle: ``data`` shows the
      word at the ``addr`` presented in the previous cycle in which ``en`` was high, and *holds*
      its value while ``en`` is low (the unit relies on this to stall on ``fired``
      backpressure) - i.e. exactly :class:`amaranth.lib.memory.ReadPort` semantics;
    * write ports are synchronous (``domain="sync"``), one whole word (no granularity);
    * **no transparency is required** (read ports may be non-transparent): the unit never
      reads a word in the cycle in which it writes it. Within a pass every neuron's words
      are read once during the scan (stage A) and written later (stage B: ``acc``; stage D:
      state, theta, ``y``), and a stalled scan issues no read, so the read data of the
      neuron in stage B is held; the commit re-reads theta and ``y`` of a WTA candidate at
      least two cycles after the scan wrote them;
    * the unit must have exclusive use of these ports while ``busy`` (the top multiplexes the
      host / integrator onto them otherwise). The memories must not change while ``busy``
      except through the unit.

    Parts: the arithmetic of every stage is :class:`~neurocore.hw.lif.LifUpdate` (the unit
    holds the pipeline registers between its cuts); winner-take-all is
    :class:`~neurocore.hw.wta_commit.WtaCommit` (only with ``config.wta``). The unit keeps
    the scan pipeline, the sequencing and the multiplexing of its memory ports and ``fired``
    between the scan and the commit.

    Internal memories (in the ``WtaCommit`` submodule, only with ``config.wta``): a candidate buffer
    (``config.neurons`` words of neuron index, margin and group of the WTA candidates) and a
    WTA group table (``wta_groups + 1`` words of valid bit, best margin, best neuron). The
    group table is self-cleaning: the commit invalidates every group's entry when it
    processes that group's winner, so every entry is invalid again at the end of each pass
    and no per-step clear is needed. (Its initial contents are all-invalid.) With block
    ranges (``WtaBlocksSignature(config).ranges > 0``) also a key buffer (``config.neurons``
    words of valid bit, margin, neuron: the ``k``-th best candidate of every block that had
    a candidate, in block order), ``WTA_K_MAX`` registers of the current block's best
    candidates and, per range slot, a tracker (two ``neuron_index_bits`` counters and a
    flag); none of this exists without block ranges.

    Control and data ports
    ----------------------
    start : In(1)
        One-cycle pulse, accepted when not ``busy``; begins a pass.
    n_neurons : In(neuron_index_bits + 1)
        Active neuron count (``0 .. config.neurons``); constant during a pass.
    learn : In(1)
        Phase 4 enabled for this step (theta and ``y`` updates); sampled at ``start``.
        Ignored when the core is configured without ``learning``.
    post_decay_shift : In(TRACE_DECAY_BITS), post_jump : In(trace_bits)
        Global learning parameters of the post trace; constant during a pass. Present iff
        ``config.learning``.
    wta_blocks : In(WtaBlocksSignature(config))
        The structural WTA block ranges (``first``, ``size``, ``count``, ``k`` per range slot;
        a slot with ``count == 0`` is unused); constant during a pass. Present iff
        ``config.wta`` and ``config.wta_blocks > 0``. A block member must have
        ``wta_group == 0`` (``CoreProgram.validate()``). A block that ``n_neurons`` cuts
        short is ranked over its neurons below ``n_neurons`` (as ``WtaBlocks.block_of``).
    busy : Out(1)
        High from the cycle after ``start`` until the last cycle of the pass.
    done : Out(1)
        One-cycle pulse in the cycle after the pass (``busy`` is low again). All memory writes
        of the pass have been performed by then.
    fired : Out(stream.Signature(fired_layout(config)))
        Every neuron that fires this step, once, with its route and output flag from its
        parameter word: first the neurons in no WTA group or block, in increasing neuron
        index, during the scan; then the WTA winners (explicit groups and blocks alike), in
        increasing neuron index, during the commit (the firing order of spec phase 3).
        (A step's spikes are a set, docs/core-spec.md, phase 3.) Honors backpressure:
        ``ready`` low stalls the scan pipeline or the commit as a whole; nothing is lost,
        duplicated or written twice.

    Pipeline
    --------
    Scan, one neuron per clock: A issues the reads (PARAM, STATE, ACC, theta, ``y``); B has
    the read data: leak, ``threshold + theta``, decayed theta and ``yd``, ``acc := 0``
    written; C: ``v2 = sat_V(v1 + acc + bias)`` (or ``v`` held when refractory), theta and
    ``y`` jumps precomputed, the neuron's block range tracked (with block ranges); D:
    compare, then one write of STATE, theta and ``y`` (learning on): a neuron in no group
    or block that fires gets its reset, refractory period and jumped theta / ``y`` and goes
    out on ``fired``; a WTA candidate is recorded (candidate buffer, group table or the
    block's best-k registers, and the block's key at its end) and its STATE word is
    rewritten by the commit. While D holds a spike that ``fired`` does not accept, stages
    A-D all hold. Commit, one WTA candidate per clock: P reads the candidate entry, Q its
    PARAM, theta, ``y`` and group entry (or its block's key), R decides and writes back (a
    stalled winner holds P-R).

    With parameter classes (``param_classes > 0``) the scan has one stage more in front, A0:
    it reads the neuron's class (NCLASS, ``nclass_rd``), and A reads PARAM at that class,
    with the other words at the neuron; a neuron's route is ``(n + route) mod 2^aib`` (the
    class word holds an offset). A WTA candidate's class goes into the candidate buffer, so
    the commit reads its PARAM word at its class. Every scan cost below is one cycle more.

    Cycle cost: a pass whose ``start`` is seen in cycle 0 raises ``done`` in cycle ``n + 4``
    when no neuron is a WTA candidate (``n = n_neurons >= 1``, however many neurons fire),
    ``n + c + 6`` with ``c >= 1`` WTA candidates (a WTA loser costs one cycle like a
    winner) and 2 when ``n_neurons == 0``, plus one cycle per cycle in which ``fired`` is
    valid and not ready. Scan: 1 cycle per neuron + 4 (start, fill/drain, done); commit:
    1 cycle per WTA candidate + 2. Block ranges do not change this: a block candidate is a
    WTA candidate like a group candidate (``c`` counts both; its winner is decided in one
    commit cycle against its block's key), and a block costs no cycle of its own.
    """

    def __init__(self, *, config: CoreConfig):
        self._use_config(config)
        nib = config.neuron_index_bits
        param_shape = neuron_param_layout(config)
        state_shape = neuron_state_layout(config)
        # with parameter classes PARAM is the class table, addressed by a neuron's class
        param_bits = config.class_index_bits if config.param_classes else nib
        members = {
            "start": In(1),
            "n_neurons": In(nib + 1),
            "learn": In(1),
            "busy": Out(1),
            "done": Out(1),
            "fired": Out(stream.Signature(fired_layout(config))),
            "param_rd": In(memory.ReadPort.Signature(addr_width=param_bits, shape=param_shape)),
            "state_rd": In(memory.ReadPort.Signature(addr_width=nib, shape=state_shape)),
            "state_wr": In(memory.WritePort.Signature(addr_width=nib, shape=state_shape)),
            "acc_rd": In(memory.ReadPort.Signature(addr_width=nib, shape=self.acc_shape(config))),
            "acc_wr": In(memory.WritePort.Signature(addr_width=nib, shape=self.acc_shape(config))),
        }
        if config.param_classes:
            members["nclass_rd"] = In(memory.ReadPort.Signature(addr_width=nib,
                                                                shape=self.class_shape(config)))
        if config.adaptive_threshold:
            members["theta_rd"] = In(memory.ReadPort.Signature(addr_width=nib,
                                                               shape=self.theta_shape(config)))
            if config.learning:
                members["theta_wr"] = In(memory.WritePort.Signature(addr_width=nib,
                                                                    shape=self.theta_shape(config)))
        if WtaBlocksSignature(config).ranges:
            members["wta_blocks"] = In(WtaBlocksSignature(config))
        if config.learning:
            members["post_decay_shift"] = In(TRACE_DECAY_BITS)
            members["post_jump"] = In(config.trace_bits)
            members["y_rd"] = In(memory.ReadPort.Signature(addr_width=nib, shape=self.y_shape(config)))
            members["y_wr"] = In(memory.WritePort.Signature(addr_width=nib, shape=self.y_shape(config)))
        super().__init__(members)

    # -- word shapes of the memories the unit uses (for the top level) ---------------------
    @staticmethod
    def acc_shape(config: CoreConfig):
        return signed(config.accumulator_bits)

    @staticmethod
    def class_shape(config: CoreConfig):
        return unsigned(config.class_index_bits)

    @staticmethod
    def theta_shape(config: CoreConfig):
        return unsigned(config.membrane_bits - 1)

    @staticmethod
    def y_shape(config: CoreConfig):
        return unsigned(config.trace_bits)

    # ----------------------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        nib = cfg.neuron_index_bits
        has_theta = cfg.adaptive_threshold
        has_learn = cfg.learning
        has_theta_wr = has_theta and has_learn
        has_wta = cfg.wta
        has_blocks = WtaBlocksSignature(cfg).ranges > 0
        has_classes = cfg.param_classes > 0
        abits = cfg.axon_index_bits

        m.submodules.lif = lif = LifUpdate(config=cfg)           # the neuron rule, stages B-D
        if has_wta:
            m.submodules.wta = wta = WtaCommit(config=cfg)       # group winners, commit pass

        # -- control state --------------------------------------------------------------------
        learn_q = Signal()                 # learn, sampled at start
        idx = Signal(nib + 1)              # scan: next neuron to read
        done = Signal()
        m.d.sync += done.eq(0)
        m.d.comb += self.done.eq(done)
        in_scan = Signal()
        in_commit = Signal()
        param = self.param_rd.data

        # ==== scan pipeline ===================================================================
        # A: issue reads of neuron idx.  B: read data present; LIF stage B (leak, threshold,
        # decays); acc written back (0).  C: LIF stage C (v2 = sat(v1 + acc + bias), jumps).
        # D: LIF stage D (compare); a neuron without WTA group that crosses threshold fires
        # (one word on `fired`); state, theta and y written; a WTA candidate (of a group or a
        # block) is recorded.
        # Backpressure: while D holds a firing neuron that `fired` does not accept, the whole
        # pipeline holds (no read issued, so the read ports hold their data; no write).
        scan_advance = Signal()            # stage D is not stalled on `fired`
        scan_more = Signal()               # neurons left to issue
        issue = Signal()
        b_valid, c_valid, d_valid = Signal(), Signal(), Signal()
        b_neuron, c_neuron, d_neuron = Signal(nib), Signal(nib), Signal(nib)
        c_group, d_group = Signal(cfg.wta_group_bits), Signal(cfg.wta_group_bits)
        c_lif = Signal(leaked_layout(cfg))         # LIF stage B result, registered
        d_lif = Signal(integrated_layout(cfg))     # LIF stage C result, registered
        c_fp, d_fp = Signal(_fire_layout(cfg)), Signal(_fire_layout(cfg))

        m.d.comb += scan_more.eq(idx != self.n_neurons)
        if has_classes:
            # A0 reads the class of neuron idx; A (one cycle later) reads its class word and
            # its state words. The read port holds the class while the pipeline is stalled.
            fetch = Signal()
            a_valid, a_neuron, b_class = Signal(), Signal(nib), Signal(cfg.class_index_bits)
            m.d.comb += [fetch.eq(in_scan & scan_more & scan_advance), issue.eq(a_valid & scan_advance)]
            with m.If(scan_advance):
                m.d.sync += a_valid.eq(fetch)
            with m.If(fetch):
                m.d.sync += [idx.eq(idx + 1), a_neuron.eq(idx)]
            with m.If(issue):
                m.d.sync += [b_neuron.eq(a_neuron), b_class.eq(self.nclass_rd.data)]
            read_neuron, param_addr, filling = a_neuron, self.nclass_rd.data, a_valid
        else:
            m.d.comb += issue.eq(in_scan & scan_more & scan_advance)
            with m.If(issue):
                m.d.sync += [idx.eq(idx + 1), b_neuron.eq(idx)]
            read_neuron, param_addr, filling = idx, idx, Const(0, 1)
        with m.If(scan_advance):
            m.d.sync += [b_valid.eq(issue), c_valid.eq(b_valid), d_valid.eq(c_valid)]
        drained = ~scan_more & ~filling & ~b_valid & ~c_valid     # the last neuron is in D

        # the LIF block: stage B on the words read, stages C and D on their registers
        m.d.comb += [lif.param.eq(param), lif.state.eq(self.state_rd.data), lif.acc.eq(self.acc_rd.data),
                     lif.leaked_q.eq(c_lif), lif.integrated_q.eq(d_lif)]
        if has_theta:
            m.d.comb += lif.theta.eq(self.theta_rd.data)
        if has_learn:
            m.d.comb += [lif.y.eq(self.y_rd.data), lif.post_decay_shift.eq(self.post_decay_shift),
                         lif.post_jump.eq(self.post_jump)]
        with m.If(scan_advance):
            m.d.sync += [
                c_neuron.eq(b_neuron),                                  # B -> C
                c_lif.eq(lif.leaked),
                c_group.eq(param.wta_group if has_wta else 0),
                *(c_fp[name].eq(param[name]) for name in c_fp.shape().members),
                *([c_fp.route.eq(_route(param, b_neuron, abits))] if has_classes else []),
                d_neuron.eq(c_neuron),                                  # C -> D
                d_lif.eq(lif.integrated),
                d_group.eq(c_group),
                d_fp.eq(c_fp),
            ]

        # stage D
        d_cand = Signal()                           # v2 >= thr (not refractory)
        d_fire = Signal()                           # fires now: candidate without WTA group
        m.d.comb += [
            d_cand.eq(d_valid & lif.candidate),
            # a block member (group 0) is a WTA candidate too: it never fires in the scan
            d_fire.eq(d_cand & (d_group == 0) & ~wta.in_block if has_blocks else d_cand & (d_group == 0)),
            scan_advance.eq(~d_fire | self.fired.ready),
            lif.fire.eq(d_fire), lif.reset_mode.eq(d_fp.reset_mode), lif.refractory.eq(d_fp.refractory),
        ]
        if has_wta:
            # A WTA candidate never stalls (it does not fire here): it is recorded at once.
            m.d.comb += [
                wta.lookup.eq(c_valid & scan_advance), wta.lookup_group.eq(c_group),     # stage C
                wta.candidate.eq(d_cand), wta.cand_neuron.eq(d_neuron),                  # stage D
                wta.cand_margin.eq(lif.margin), wta.cand_group.eq(d_group),
                wta.run.eq(in_commit), wta.ready.eq(self.fired.ready),                   # commit
                wta.reset_mode.eq(param.reset_mode), wta.refractory.eq(param.refractory),
            ]
        if has_wta and has_classes:
            # a WTA candidate's class goes into the candidate buffer: the commit reads its word
            c_class, d_class = Signal.like(b_class), Signal.like(b_class)
            with m.If(scan_advance):
                m.d.sync += [c_class.eq(b_class), d_class.eq(c_class)]
            m.d.comb += wta.cand_class.eq(d_class)
        if has_blocks:
            m.d.comb += [
                *(getattr(wta.blocks, name).eq(getattr(self.wta_blocks, name)) for name in wta.blocks.signature.members),
                wta.lookup_neuron.eq(c_neuron),                                          # stage C
                wta.scan_valid.eq(d_valid & scan_advance),                               # stage D
                wta.scan_last.eq(drained),
            ]

        # ==== memory port and `fired` multiplexing: the commit (WTA) or the scan ==============
        theta_rd = self.theta_rd if has_theta else None
        theta_wr, theta_new, theta_jumped = (
            (self.theta_wr, lif.new_theta, saturating_add(theta_rd.data, param.theta_inc, cfg.theta_max))
            if has_theta_wr else (None, None, None))
        y_rd, y_wr, y_new, y_jumped = (
            (self.y_rd, self.y_wr, lif.new_y, saturating_add(self.y_rd.data, self.post_jump, cfg.trace_max))
            if has_learn else (None, None, None, None))
        with m.If(in_commit):
            if has_wta:
                # a winner's theta and y jump from the decayed values the scan wrote
                jump = wta.write & wta.win & learn_q
                m.d.comb += [
                    *_offer(self.fired, wta.fired_valid, wta.neuron,
                            {**{name: param[name] for name in ("route_valid", "output")},
                             "route": _route(param, wta.neuron, abits) if has_classes else param.route}),
                    *_drive(self.param_rd, wta.read_class if has_classes else wta.read_neuron, wta.read),
                    *_drive(getattr(self, "nclass_rd", None), 0, 0),
                    *_drive(self.state_rd, 0, 0),
                    *_drive(self.acc_rd, 0, 0),
                    *_drive(self.acc_wr, 0, 0),
                    *_drive(self.state_wr, wta.neuron, wta.write, wta.state),
                    *_drive(theta_rd, wta.read_neuron, wta.read & learn_q),
                    *_drive(theta_wr, wta.neuron, jump, theta_jumped),
                    *_drive(y_rd, wta.read_neuron, wta.read & learn_q),
                    *_drive(y_wr, wta.neuron, jump, y_jumped),
                ]
        with m.Else():
            d_write = d_valid & scan_advance
            m.d.comb += [
                *_offer(self.fired, d_fire, d_neuron, d_fp),
                *_drive(getattr(self, "nclass_rd", None), idx, fetch if has_classes else 0),
                *_drive(self.param_rd, param_addr, issue),
                *_drive(self.state_rd, read_neuron, issue),
                *_drive(self.acc_rd, read_neuron, issue),
                *_drive(self.acc_wr, b_neuron, b_valid & scan_advance, 0),   # acc := 0 for the next step
                # a WTA candidate's word (v2) is rewritten by the commit
                *_drive(self.state_wr, d_neuron, d_write, lif.new_state),
                *_drive(theta_rd, read_neuron, issue),
                *_drive(theta_wr, d_neuron, d_write & learn_q, theta_new),
                *_drive(y_rd, read_neuron, issue & learn_q),
                *_drive(y_wr, d_neuron, d_write & learn_q, y_new),
            ]

        # ==== sequencing ======================================================================
        with m.FSM(name="phase"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [idx.eq(0), learn_q.eq(self.learn if has_learn else 0)]
                    if has_wta:
                        m.d.comb += wta.clear.eq(1)
                    m.next = "SCAN"
            with m.State("SCAN"):
                m.d.comb += [in_scan.eq(1), self.busy.eq(1)]
                # Leave when the last neuron is in stage D and not stalled (its writes land at
                # the end of this cycle, before the commit's first read); straight to done when
                # there is no WTA candidate to commit.
                with m.If(drained & scan_advance):
                    if has_wta:
                        with m.If(~wta.pending):
                            m.d.sync += done.eq(1)
                            m.next = "IDLE"
                        with m.Else():
                            m.d.comb += wta.begin.eq(1)
                            m.next = "COMMIT"
                    else:
                        m.d.sync += done.eq(1)
                        m.next = "IDLE"
            if has_wta:
                with m.State("COMMIT"):
                    m.d.comb += [in_commit.eq(1), self.busy.eq(1)]
                    with m.If(wta.last):
                        m.d.sync += done.eq(1)
                        m.next = "IDLE"
        return m
