"""The neuron update unit: phase 2 of a time step (LIF update and winner-take-all) and the
per-neuron part of phase 4 (theta and post trace ``y``), docs/core-spec.md, section 5.

One *pass* (started by ``start``) runs the neuron-update part of one time step, in two
sub-passes:

1. **scan** - a pipelined sweep over ``n = 0 .. n_neurons-1`` at one neuron per clock. Every
   neuron is read once and written once. A candidate without WTA group (``wta_group == 0``)
   fires right there (reset, refractory period, theta and ``y`` jump, one word on
   ``fired``); a candidate of a WTA group is recorded in an internal candidate buffer and
   its group's best candidate in an internal group table.
2. **commit** - a sweep over the recorded WTA candidates only (skipped when there is none):
   each group's winner fires, the losers get ``v = 0``.

The cost of a pass is at most ``n_neurons + wta_candidates + 6`` clock cycles from the
``start`` cycle to the ``done`` cycle (``n_neurons + 4`` without WTA candidates, however many
neurons fire), plus one cycle for every cycle that ``fired`` holds a word that is not
accepted (``fired.ready`` low).
"""
from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .arith import decay
from .component import CoreComponent
from .config import CoreConfig
from .layouts import fired_layout, neuron_param_layout, neuron_state_layout

__all__ = ["NeuronUnit"]


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
    param_rd   ``neuron_param_layout(config)``        read (scan and commit)
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

    Internal memories (created in ``elaborate``, only with ``config.wta``): a candidate buffer
    (``config.neurons`` words of neuron index, margin and group of the WTA candidates) and a
    WTA group table (``wta_groups + 1`` words of valid bit, best margin, best neuron). The
    group table is self-cleaning: the commit invalidates every group's entry when it
    processes that group's winner, so every entry is invalid again at the end of each pass
    and no per-step clear is needed. (Its initial contents are all-invalid.)

    Control and data ports
    ----------------------
    start : In(1)
        One-cycle pulse, accepted when not ``busy``; begins a pass.
    n_neurons : In(neuron_index_bits + 1)
        Active neuron count (``0 .. config.neurons``); constant during a pass.
    learn : In(1)
        Phase 4 enabled for this step (theta and ``y`` updates); sampled at ``start``.
        Ignored when the core is configured without ``learning``.
    post_decay_shift : In(4), post_jump : In(trace_bits)
        Global learning parameters of the post trace; constant during a pass. Present iff
        ``config.learning``.
    busy : Out(1)
        High from the cycle after ``start`` until the last cycle of the pass.
    done : Out(1)
        One-cycle pulse in the cycle after the pass (``busy`` is low again). All memory writes
        of the pass have been performed by then.
    fired : Out(stream.Signature(fired_layout(config)))
        Every neuron that fires this step, once, with its route and output flag from its
        parameter word: first the neurons without WTA group, in increasing neuron index,
        during the scan; then the WTA winners, in increasing neuron index, during the commit.
        (A step's spikes are a set, docs/core-spec.md, phase 3.) Honors backpressure:
        ``ready`` low stalls the scan pipeline or the commit as a whole; nothing is lost,
        duplicated or written twice.

    Pipeline
    --------
    Scan, one neuron per clock: A issues the reads (PARAM, STATE, ACC, theta, ``y``); B has
    the read data: leak, ``threshold + theta``, decayed theta and ``yd``, ``acc := 0``
    written; C: ``v2 = sat_V(v1 + acc + bias)`` (or ``v`` held when refractory), theta and
    ``y`` jumps precomputed; D: compare, then one write of STATE, theta and ``y`` (learning
    on): a neuron without group that fires gets its reset, refractory period and jumped
    theta / ``y`` and goes out on ``fired``; a WTA candidate is recorded (candidate buffer,
    group table) and its STATE word is rewritten by the commit. While D holds a spike that
    ``fired`` does not accept, stages A-D all hold. Commit, one WTA candidate per clock: P
    reads the candidate entry, Q its PARAM, theta, ``y`` and group entry, R decides and
    writes back (a stalled winner holds P-R).

    Cycle cost: a pass whose ``start`` is seen in cycle 0 raises ``done`` in cycle ``n + 4``
    when no neuron is a WTA candidate (``n = n_neurons >= 1``, however many neurons fire),
    ``n + c + 6`` with ``c >= 1`` WTA candidates (a WTA loser costs one cycle like a
    winner) and 2 when ``n_neurons == 0``, plus one cycle per cycle in which ``fired`` is
    valid and not ready. Scan: 1 cycle per neuron + 4 (start, fill/drain, done); commit:
    1 cycle per WTA candidate + 2.
    """

    def __init__(self, *, config: CoreConfig):
        self._use_config(config)
        nib = config.neuron_index_bits
        param_shape = neuron_param_layout(config)
        state_shape = neuron_state_layout(config)
        members = {
            "start": In(1),
            "n_neurons": In(nib + 1),
            "learn": In(1),
            "busy": Out(1),
            "done": Out(1),
            "fired": Out(stream.Signature(fired_layout(config))),
            "param_rd": In(memory.ReadPort.Signature(addr_width=nib, shape=param_shape)),
            "state_rd": In(memory.ReadPort.Signature(addr_width=nib, shape=state_shape)),
            "state_wr": In(memory.WritePort.Signature(addr_width=nib, shape=state_shape)),
            "acc_rd": In(memory.ReadPort.Signature(addr_width=nib, shape=self.acc_shape(config))),
            "acc_wr": In(memory.WritePort.Signature(addr_width=nib, shape=self.acc_shape(config))),
        }
        if config.adaptive_threshold:
            members["theta_rd"] = In(memory.ReadPort.Signature(addr_width=nib,
                                                               shape=self.theta_shape(config)))
            if config.learning:
                members["theta_wr"] = In(memory.WritePort.Signature(addr_width=nib,
                                                                    shape=self.theta_shape(config)))
        if config.learning:
            members["post_decay_shift"] = In(4)
            members["post_jump"] = In(config.trace_bits)
            members["y_rd"] = In(memory.ReadPort.Signature(addr_width=nib, shape=self.y_shape(config)))
            members["y_wr"] = In(memory.WritePort.Signature(addr_width=nib, shape=self.y_shape(config)))
        super().__init__(members)

    # -- word shapes of the memories the unit uses (for the top level) ---------------------
    @staticmethod
    def acc_shape(config: CoreConfig):
        return signed(config.accumulator_bits)

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
        vbits = cfg.membrane_bits
        v_min, v_max = cfg.membrane_range
        theta_max = cfg.theta_max
        trace_max = cfg.trace_max
        has_theta = cfg.adaptive_threshold
        has_learn = cfg.learning
        has_theta_wr = has_theta and has_learn
        has_wta = cfg.wta

        def usat(value, maximum):
            """``value`` clamped to ``maximum`` (both non-negative)."""
            return Mux(value > maximum, maximum, value)

        # -- internal memories (WTA only) -----------------------------------------------------
        if has_wta:
            cand_layout = data.StructLayout({
                "neuron": unsigned(nib),
                "margin": unsigned(vbits - 1),
                "group": unsigned(cfg.wta_group_bits),
            })
            m.submodules.cand_mem = cand_mem = Memory(shape=cand_layout, depth=cfg.neurons, init=[])
            cand_wr = cand_mem.write_port()
            cand_rd = cand_mem.read_port(domain="sync")
            group_layout = data.StructLayout({
                "valid": unsigned(1),
                "margin": unsigned(vbits - 1),
                "neuron": unsigned(nib),
            })
            m.submodules.group_mem = group_mem = Memory(shape=group_layout, depth=cfg.wta_groups + 1,
                                                        init=[])
            group_wr = group_mem.write_port()
            # Transparent: in the scan, neuron n+1 reads its group's entry in the cycle in which
            # neuron n writes it.
            group_rd = group_mem.read_port(domain="sync", transparent_for=(group_wr,))

        # -- control state --------------------------------------------------------------------
        learn_q = Signal()                 # learn, sampled at start
        idx = Signal(nib + 1)              # scan: next neuron to read
        count = Signal(nib + 1)            # WTA candidates recorded
        done = Signal()
        m.d.sync += done.eq(0)
        m.d.comb += self.done.eq(done)

        in_scan = Signal()
        in_commit = Signal()

        param = self.param_rd.data
        state = self.state_rd.data
        theta_rd_data = self.theta_rd.data if has_theta else Const(0, unsigned(vbits - 1))

        # ==== scan pipeline ===================================================================
        # A: issue reads of neuron idx.  B: read data present; leak, threshold, decays; acc
        # written back (0).  C: v2 = sat(v1 + acc + bias); theta and y jumps.  D: compare; a
        # neuron without WTA group that crosses threshold fires (reset, refractory, jumps, one
        # word on `fired`); state, theta and y written; a WTA candidate is recorded in the
        # candidate buffer and the group table.
        # Backpressure: while D holds a firing neuron that `fired` does not accept, the whole
        # pipeline holds (no read issued, so the read ports hold their data; no write).
        scan_advance = Signal()            # stage D is not stalled on `fired`
        scan_more = Signal()               # neurons left to issue
        issue = Signal()
        b_valid = Signal()
        b_neuron = Signal(nib)
        c_valid = Signal()
        c_neuron = Signal(nib)
        c_v1 = Signal(signed(vbits))       # leaked v (or held v when refractory)
        c_ab = Signal(signed(max(vbits, cfg.accumulator_bits) + 1))   # acc + bias
        c_thr = Signal(unsigned(vbits))    # threshold + theta (<= 2^V - 2)
        c_refractory = Signal()
        c_refrac = Signal(8)               # counter after this step when not firing
        c_group = Signal(cfg.wta_group_bits)
        d_valid = Signal()
        d_neuron = Signal(nib)
        d_v2 = Signal(signed(vbits))
        d_thr = Signal(unsigned(vbits))
        d_refractory = Signal()
        d_refrac = Signal(8)
        d_group = Signal(cfg.wta_group_bits)
        # parameters a firing neuron needs in stage D: reset, refractory period, route, output
        fire_layout = data.StructLayout({
            "reset_mode": unsigned(1),
            "refractory": unsigned(8),
            "route_valid": unsigned(1),
            "route": unsigned(cfg.axon_index_bits),
            "output": unsigned(1),
        })
        c_fp = Signal(fire_layout)
        d_fp = Signal(fire_layout)

        m.d.comb += [
            scan_more.eq(idx != self.n_neurons),
            issue.eq(in_scan & scan_more & scan_advance),
        ]
        with m.If(scan_advance):
            m.d.sync += [
                b_valid.eq(issue),
                c_valid.eq(b_valid),
                d_valid.eq(c_valid),
            ]
        with m.If(issue):
            m.d.sync += [idx.eq(idx + 1), b_neuron.eq(idx)]

        # stage B
        b_refractory = Signal()
        b_leaked = Signal(signed(vbits))
        m.d.comb += [
            b_refractory.eq(state.refrac != 0),
            b_leaked.eq(decay(state.v, param.leak_shift)),
        ]
        with m.If(scan_advance):
            m.d.sync += [
                c_neuron.eq(b_neuron),
                c_v1.eq(Mux(b_refractory, state.v, b_leaked)),
                c_ab.eq(self.acc_rd.data + param.bias),
                c_thr.eq(param.threshold + theta_rd_data),
                c_refractory.eq(b_refractory),
                c_refrac.eq(Mux(b_refractory, state.refrac - 1, 0)),
                c_group.eq(param.wta_group if has_wta else 0),
                c_fp.reset_mode.eq(param.reset_mode),
                c_fp.refractory.eq(param.refractory),
                c_fp.route_valid.eq(param.route_valid),
                c_fp.route.eq(param.route),
                c_fp.output.eq(param.output),
            ]
        if has_learn:
            y_rd_data = self.y_rd.data
            c_yd = Signal(unsigned(cfg.trace_bits))         # decayed post trace
            d_yd = Signal(unsigned(cfg.trace_bits))
            d_yj = Signal(unsigned(cfg.trace_bits))         # ... plus the jump, saturated
            with m.If(scan_advance):
                m.d.sync += c_yd.eq(decay(y_rd_data, self.post_decay_shift))
        if has_theta_wr:
            c_theta_d = Signal(unsigned(vbits - 1))         # decayed theta
            c_theta_inc = Signal(unsigned(vbits - 1))
            d_theta_d = Signal(unsigned(vbits - 1))
            d_theta_j = Signal(unsigned(vbits - 1))         # ... plus theta_inc, saturated
            with m.If(scan_advance):
                m.d.sync += [
                    c_theta_d.eq(decay(theta_rd_data, param.theta_decay_shift)),
                    c_theta_inc.eq(param.theta_inc),
                ]

        # stage C
        c_sum = Signal(signed(c_ab.shape().width + 1))
        m.d.comb += c_sum.eq(c_v1 + c_ab)          # full precision: max(V, C) + 2 bits
        c_v2 = Signal(signed(vbits))
        with m.If(c_refractory):
            m.d.comb += c_v2.eq(c_v1)                # refractory: input and bias discarded
        with m.Elif(c_sum > v_max):
            m.d.comb += c_v2.eq(v_max)
        with m.Elif(c_sum < v_min):
            m.d.comb += c_v2.eq(v_min)
        with m.Else():
            m.d.comb += c_v2.eq(c_sum)
        with m.If(scan_advance):
            m.d.sync += [
                d_neuron.eq(c_neuron),
                d_v2.eq(c_v2),
                d_thr.eq(c_thr),
                d_refractory.eq(c_refractory),
                d_refrac.eq(c_refrac),
                d_group.eq(c_group),
                d_fp.eq(c_fp),
            ]
            if has_learn:
                m.d.sync += [d_yd.eq(c_yd), d_yj.eq(usat(c_yd + self.post_jump, trace_max))]
            if has_theta_wr:
                m.d.sync += [d_theta_d.eq(c_theta_d),
                             d_theta_j.eq(usat(c_theta_d + c_theta_inc, theta_max))]

        # stage D
        d_cand = Signal()                           # v2 >= thr (not refractory)
        d_fire = Signal()                           # fires now: candidate without WTA group
        d_margin = Signal(unsigned(vbits - 1))      # v2 - thr, 0 .. 2^(V-1)-2 for a candidate
        m.d.comb += [
            d_cand.eq(d_valid & ~d_refractory & (d_v2 >= d_thr)),
            d_fire.eq(d_cand & (d_group == 0)),
            d_margin.eq(d_v2 - d_thr),
            scan_advance.eq(~d_fire | self.fired.ready),
        ]
        if has_wta:
            # A WTA candidate never stalls (it does not fire here), so its writes need no
            # scan_advance.
            d_wta = Signal()
            m.d.comb += d_wta.eq(d_cand & (d_group != 0))
            with m.If(d_wta):
                m.d.sync += count.eq(count + 1)
            m.d.comb += [
                cand_wr.en.eq(d_wta),
                cand_wr.addr.eq(count),
                cand_wr.data.neuron.eq(d_neuron),
                cand_wr.data.margin.eq(d_margin),
                cand_wr.data.group.eq(d_group),
            ]
            best = group_rd.data
            d_better = Signal()
            m.d.comb += d_better.eq(d_wta & (~best.valid | (d_margin > best.margin)))

        # ==== commit pipeline (WTA only) ======================================================
        # P: read candidate-buffer entry cidx.  Q: entry present; read its params, theta, y and
        # group entry.  R: decide win / lose, write back, emit a winner on `fired` (may stall).
        if has_wta:
            cidx = Signal(nib + 1)             # next candidate-buffer entry to read
            q_valid = Signal()
            r_valid = Signal()
            r_neuron = Signal(nib)
            r_margin = Signal(unsigned(vbits - 1))
            r_group = Signal(cfg.wta_group_bits)
            r_fire = Signal()
            advance = Signal()
            entry = cand_rd.data
            m.d.comb += [
                r_fire.eq(group_rd.data.valid & (group_rd.data.neuron == r_neuron)),
                advance.eq(~r_valid | ~r_fire | self.fired.ready),
            ]
            r_write = Signal()
            m.d.comb += r_write.eq(r_valid & advance)
            with m.If(in_commit & advance):
                m.d.sync += [
                    r_valid.eq(q_valid),
                    r_neuron.eq(entry.neuron),
                    r_margin.eq(entry.margin),
                    r_group.eq(entry.group),
                    q_valid.eq(cidx != count),
                ]
                with m.If(cidx != count):
                    m.d.sync += cidx.eq(cidx + 1)

        # ==== memory port and `fired` multiplexing ============================================
        with m.If(in_commit):
            if has_wta:
                m.d.comb += [
                    self.fired.valid.eq(r_valid & r_fire),
                    self.fired.payload.neuron.eq(r_neuron),
                    self.fired.payload.route_valid.eq(param.route_valid),
                    self.fired.payload.route.eq(param.route),
                    self.fired.payload.output.eq(param.output),
                    cand_rd.addr.eq(cidx),
                    cand_rd.en.eq(advance),
                    self.param_rd.addr.eq(entry.neuron),
                    self.param_rd.en.eq(advance),
                    self.state_rd.en.eq(0),
                    self.acc_rd.en.eq(0),
                    self.state_wr.addr.eq(r_neuron),
                    self.state_wr.en.eq(r_write),
                    # winner: reset to 0 or by subtraction (v2 - thr); loser: v = 0, no refractory
                    self.state_wr.data.v.eq(Mux(r_fire & param.reset_mode, r_margin, 0)),
                    self.state_wr.data.refrac.eq(Mux(r_fire, param.refractory, 0)),
                    self.acc_wr.en.eq(0),
                    group_rd.addr.eq(entry.group),
                    group_rd.en.eq(advance),
                    # the winner invalidates its group's entry: the table cleans itself
                    group_wr.addr.eq(r_group),
                    group_wr.en.eq(r_write & r_fire),
                    group_wr.data.valid.eq(0),
                ]
                if has_theta:
                    m.d.comb += [
                        self.theta_rd.addr.eq(entry.neuron),
                        self.theta_rd.en.eq(advance & learn_q),
                    ]
                if has_theta_wr:
                    # theta_rd.data is the decayed theta written by the scan
                    m.d.comb += [
                        self.theta_wr.addr.eq(r_neuron),
                        self.theta_wr.en.eq(r_write & r_fire & learn_q),
                        self.theta_wr.data.eq(usat(theta_rd_data + param.theta_inc, theta_max)),
                    ]
                if has_learn:
                    # y_rd.data is yd, written by the scan
                    m.d.comb += [
                        self.y_rd.addr.eq(entry.neuron),
                        self.y_rd.en.eq(advance & learn_q),
                        self.y_wr.addr.eq(r_neuron),
                        self.y_wr.en.eq(r_write & r_fire & learn_q),
                        self.y_wr.data.eq(usat(self.y_rd.data + self.post_jump, trace_max)),
                    ]
        with m.Else():
            d_write = Signal()
            m.d.comb += [
                d_write.eq(d_valid & scan_advance),
                self.fired.valid.eq(d_fire),
                self.fired.payload.neuron.eq(d_neuron),
                self.fired.payload.route_valid.eq(d_fp.route_valid),
                self.fired.payload.route.eq(d_fp.route),
                self.fired.payload.output.eq(d_fp.output),
                self.param_rd.addr.eq(idx),
                self.param_rd.en.eq(issue),
                self.state_rd.addr.eq(idx),
                self.state_rd.en.eq(issue),
                self.acc_rd.addr.eq(idx),
                self.acc_rd.en.eq(issue),
                self.acc_wr.addr.eq(b_neuron),
                self.acc_wr.en.eq(b_valid & scan_advance),     # acc := 0 for the next step
                self.acc_wr.data.eq(0),
                self.state_wr.addr.eq(d_neuron),
                self.state_wr.en.eq(d_write),
                # firing: reset to 0 or by subtraction, refractory period; otherwise v2 (held v
                # when refractory) - a WTA candidate's word is rewritten by the commit
                self.state_wr.data.v.eq(Mux(d_fire, Mux(d_fp.reset_mode, d_margin, 0), d_v2)),
                self.state_wr.data.refrac.eq(Mux(d_fire, d_fp.refractory, d_refrac)),
            ]
            if has_wta:
                m.d.comb += [
                    cand_rd.en.eq(0),
                    group_rd.addr.eq(c_group),
                    group_rd.en.eq(c_valid & scan_advance),
                    group_wr.addr.eq(d_group),
                    group_wr.en.eq(d_better),
                    group_wr.data.valid.eq(1),
                    group_wr.data.margin.eq(d_margin),
                    group_wr.data.neuron.eq(d_neuron),
                ]
            if has_theta:
                m.d.comb += [
                    self.theta_rd.addr.eq(idx),
                    self.theta_rd.en.eq(issue),
                ]
            if has_theta_wr:
                m.d.comb += [
                    self.theta_wr.addr.eq(d_neuron),
                    self.theta_wr.en.eq(d_write & learn_q),
                    self.theta_wr.data.eq(Mux(d_fire, d_theta_j, d_theta_d)),
                ]
            if has_learn:
                m.d.comb += [
                    self.y_rd.addr.eq(idx),
                    self.y_rd.en.eq(issue & learn_q),
                    self.y_wr.addr.eq(d_neuron),
                    self.y_wr.en.eq(d_write & learn_q),
                    self.y_wr.data.eq(Mux(d_fire, d_yj, d_yd)),
                ]

        # ==== sequencing ======================================================================
        with m.FSM(name="phase"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [
                        idx.eq(0),
                        count.eq(0),
                        learn_q.eq(self.learn if has_learn else 0),
                    ]
                    m.next = "SCAN"
            with m.State("SCAN"):
                m.d.comb += [in_scan.eq(1), self.busy.eq(1)]
                # Leave when the last neuron is in stage D and not stalled (its writes land at
                # the end of this cycle, before the commit's first read); straight to done when
                # there is no WTA candidate to commit.
                with m.If(~scan_more & ~b_valid & ~c_valid & scan_advance):
                    if has_wta:
                        with m.If((count == 0) & ~d_wta):
                            m.d.sync += done.eq(1)
                            m.next = "IDLE"
                        with m.Else():
                            m.d.sync += [cidx.eq(0), q_valid.eq(0), r_valid.eq(0)]
                            m.next = "COMMIT"
                    else:
                        m.d.sync += done.eq(1)
                        m.next = "IDLE"
            if has_wta:
                with m.State("COMMIT"):
                    m.d.comb += [in_commit.eq(1), self.busy.eq(1)]
                    with m.If((cidx == count) & ~q_valid & (~r_valid | advance)):
                        m.d.sync += done.eq(1)
                        m.next = "IDLE"
        return m
