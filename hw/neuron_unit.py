"""The neuron update unit: phase 2 of a time step (LIF update and winner-take-all) and the
per-neuron part of phase 4 (theta and post trace ``y``), docs/core-spec.md, section 5.

One *pass* (started by ``start``) runs the neuron-update part of one time step, in two
sub-passes:

1. **scan** - a pipelined sweep over ``n = 0 .. n_neurons-1`` at one neuron per clock. Every
   neuron is read once and written once; candidates are recorded in an internal candidate
   buffer and every WTA group's best candidate in an internal group table.
2. **commit** - a sweep over the recorded candidates only (cost proportional to the number
   of candidates): winners fire (reset, refractory period, theta and ``y`` jump, one word on
   ``fired``), WTA losers get ``v = 0``.

The cost of a pass is at most ``n_neurons + candidates + 6`` clock cycles from the ``start``
cycle to the ``done`` cycle, plus one cycle for every cycle that ``fired`` holds a word that
is not accepted (``fired.ready`` low).
"""
from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .config import CoreConfig
from .layouts import fired_layout, neuron_param_layout, neuron_state_layout

__all__ = ["NeuronUnit"]


class NeuronUnit(wiring.Component):
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
                                                      every candidate)
    acc_rd     ``signed(accumulator_bits)``           read (scan)
    acc_wr                                            write 0 (scan: every neuron, clearing
                                                      the accumulator for the next step)
    theta_rd   ``unsigned(membrane_bits - 1)``        read (scan; commit when learning).
                                                      Present iff ``config.adaptive_threshold``.
    theta_wr                                          write (scan: decayed theta; commit: theta
                                                      jump of firing neurons). Present iff
                                                      ``adaptive_threshold`` and ``learning``.
    y_rd       ``unsigned(trace_bits)``               read (scan and commit). Present iff
                                                      ``config.learning``.
    y_wr                                              write (scan: decayed trace ``yd``; commit:
                                                      jump of firing neurons). Present iff
                                                      ``config.learning``.
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
      reads a word in the cycle in which it writes it. Within a pass every neuron's word is
      read once during the scan and written later; the commit re-reads theta and ``y`` of a
      candidate at least two cycles after the scan wrote them;
    * the unit must have exclusive use of these ports while ``busy`` (the top multiplexes the
      host / integrator onto them otherwise). The memories must not change while ``busy``
      except through the unit.

    Internal memories (created in ``elaborate``): a candidate buffer (``config.neurons`` words
    of neuron index, margin and group) and, with ``config.wta``, a WTA group table
    (``wta_groups + 1`` words of valid bit, best margin, best neuron). The group table is
    self-cleaning: the commit invalidates every group's entry when it processes that group's
    winner, so every entry is invalid again at the end of each pass and no per-step clear is
    needed. (Its initial contents are all-invalid.)

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
        Every neuron that fires this step, in increasing neuron index, with its route and
        output flag from its parameter word. Honors backpressure (``ready`` low stalls the
        commit; nothing is lost). Nothing is emitted during the scan.

    Cycle cost: a pass whose ``start`` is seen in cycle 0 raises ``done`` in cycle
    ``n + c + 6`` (``n = n_neurons >= 1``, ``c >= 1`` candidates; a WTA loser costs one cycle
    like a winner), ``n + 5`` when there is no candidate and 3 when ``n_neurons == 0``, plus
    one cycle per cycle in which ``fired`` is valid and not ready. Scan: 1 cycle per neuron +
    4 (start, pipeline fill/drain); commit: 1 cycle per candidate + 2.
    """

    def __init__(self, *, config: CoreConfig):
        if not isinstance(config, CoreConfig):
            raise ValueError(f"NeuronUnit: config must be a CoreConfig, got {type(config).__name__}")
        self._config = config
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

    @property
    def config(self) -> CoreConfig:
        return self._config

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

        # -- internal memories ----------------------------------------------------------------
        cand_fields = {"neuron": unsigned(nib), "margin": unsigned(vbits - 1)}
        if has_wta:
            cand_fields["group"] = unsigned(cfg.wta_group_bits)
        cand_layout = data.StructLayout(cand_fields)
        m.submodules.cand_mem = cand_mem = Memory(shape=cand_layout, depth=cfg.neurons, init=[])
        cand_wr = cand_mem.write_port()
        cand_rd = cand_mem.read_port(domain="sync")

        if has_wta:
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
        count = Signal(nib + 1)            # candidates recorded
        cidx = Signal(nib + 1)             # commit: next candidate-buffer entry to read
        done = Signal()
        m.d.sync += done.eq(0)
        m.d.comb += self.done.eq(done)

        in_scan = Signal()
        in_commit = Signal()

        param = self.param_rd.data
        state = self.state_rd.data
        theta_rd_data = self.theta_rd.data if has_theta else Const(0, unsigned(vbits - 1))

        # ==== scan pipeline ===================================================================
        # A: issue reads of neuron idx.  B: read data present; leak, threshold, decays; theta,
        # y and acc written back.  C: v2 = sat(v1 + acc + bias).  D: compare, state written,
        # candidate recorded, group table updated.
        issue = Signal()
        b_valid = Signal()
        b_neuron = Signal(nib)
        c_valid = Signal()
        c_neuron = Signal(nib)
        c_v1 = Signal(signed(vbits))       # leaked v (or held v when refractory)
        c_ab = Signal(signed(max(vbits, cfg.accumulator_bits) + 1))   # acc + bias
        c_thr = Signal(unsigned(vbits))    # threshold + theta (<= 2^V - 2)
        c_refractory = Signal()
        c_refrac = Signal(8)
        c_group = Signal(cfg.wta_group_bits)
        d_valid = Signal()
        d_neuron = Signal(nib)
        d_v2 = Signal(signed(vbits))
        d_thr = Signal(unsigned(vbits))
        d_refractory = Signal()
        d_refrac = Signal(8)
        d_group = Signal(cfg.wta_group_bits)

        m.d.comb += issue.eq(in_scan & (idx != self.n_neurons))
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
            b_leaked.eq(Mux(param.leak_shift != 0, state.v - (state.v >> param.leak_shift), state.v)),
        ]
        m.d.sync += [
            c_neuron.eq(b_neuron),
            c_v1.eq(Mux(b_refractory, state.v, b_leaked)),
            c_ab.eq(self.acc_rd.data + param.bias),
            c_thr.eq(param.threshold + theta_rd_data),
            c_refractory.eq(b_refractory),
            c_refrac.eq(Mux(b_refractory, state.refrac - 1, 0)),
            c_group.eq(param.wta_group if has_wta else 0),
        ]
        if has_learn:
            y_rd_data = self.y_rd.data
            b_yd = Signal(unsigned(cfg.trace_bits))
            m.d.comb += b_yd.eq(Mux(self.post_decay_shift != 0,
                                    y_rd_data - (y_rd_data >> self.post_decay_shift), y_rd_data))
        if has_theta_wr:
            b_theta_d = Signal(unsigned(vbits - 1))
            m.d.comb += b_theta_d.eq(Mux(param.theta_decay_shift != 0,
                                         theta_rd_data - (theta_rd_data >> param.theta_decay_shift),
                                         theta_rd_data))

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
        m.d.sync += [
            d_neuron.eq(c_neuron),
            d_v2.eq(c_v2),
            d_thr.eq(c_thr),
            d_refractory.eq(c_refractory),
            d_refrac.eq(c_refrac),
            d_group.eq(c_group),
        ]

        # stage D
        d_cand = Signal()
        d_margin = Signal(unsigned(vbits - 1))      # v2 - thr, 0 .. 2^(V-1)-1 for a candidate
        m.d.comb += [
            d_cand.eq(d_valid & ~d_refractory & (d_v2 >= d_thr)),
            d_margin.eq(d_v2 - d_thr),
        ]
        with m.If(d_cand):
            m.d.sync += count.eq(count + 1)
        m.d.comb += [
            cand_wr.en.eq(d_cand),
            cand_wr.addr.eq(count),
            cand_wr.data.neuron.eq(d_neuron),
            cand_wr.data.margin.eq(d_margin),
        ]
        if has_wta:
            m.d.comb += cand_wr.data.group.eq(d_group)
            best = group_rd.data
            d_better = Signal()
            m.d.comb += d_better.eq(d_cand & (d_group != 0) & (~best.valid | (d_margin > best.margin)))

        # ==== commit pipeline =================================================================
        # P: read candidate-buffer entry cidx.  Q: entry present; read its params, theta, y and
        # group entry.  R: decide fire / lose, write back, emit on `fired` (may stall).
        q_valid = Signal()
        r_valid = Signal()
        r_neuron = Signal(nib)
        r_margin = Signal(unsigned(vbits - 1))
        r_group = Signal(cfg.wta_group_bits)
        r_fire = Signal()
        advance = Signal()
        entry = cand_rd.data

        if has_wta:
            m.d.comb += r_fire.eq((r_group == 0) |
                                  (group_rd.data.valid & (group_rd.data.neuron == r_neuron)))
        else:
            m.d.comb += r_fire.eq(1)
        m.d.comb += [
            advance.eq(~r_valid | ~r_fire | self.fired.ready),
            self.fired.valid.eq(r_valid & r_fire),
            self.fired.payload.neuron.eq(r_neuron),
            self.fired.payload.route_valid.eq(param.route_valid),
            self.fired.payload.route.eq(param.route),
            self.fired.payload.output.eq(param.output),
        ]
        r_write = Signal()
        m.d.comb += r_write.eq(r_valid & advance)
        with m.If(in_commit & advance):
            m.d.sync += [
                r_valid.eq(q_valid),
                r_neuron.eq(entry.neuron),
                r_margin.eq(entry.margin),
                r_group.eq(entry.group if has_wta else 0),
                q_valid.eq(cidx != count),
            ]
            with m.If(cidx != count):
                m.d.sync += cidx.eq(cidx + 1)

        # ==== memory port multiplexing ========================================================
        with m.If(in_commit):
            m.d.comb += [
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
            ]
            if has_theta:
                m.d.comb += [
                    self.theta_rd.addr.eq(entry.neuron),
                    self.theta_rd.en.eq(advance & learn_q),
                ]
            if has_theta_wr:
                # theta_rd.data is the decayed theta written by the scan
                theta_jump = theta_rd_data + param.theta_inc
                m.d.comb += [
                    self.theta_wr.addr.eq(r_neuron),
                    self.theta_wr.en.eq(r_write & r_fire & learn_q),
                    self.theta_wr.data.eq(Mux(theta_jump > theta_max, theta_max, theta_jump)),
                ]
            if has_learn:
                # y_rd.data is yd, written by the scan
                y_jump = self.y_rd.data + self.post_jump
                m.d.comb += [
                    self.y_rd.addr.eq(entry.neuron),
                    self.y_rd.en.eq(advance & learn_q),
                    self.y_wr.addr.eq(r_neuron),
                    self.y_wr.en.eq(r_write & r_fire & learn_q),
                    self.y_wr.data.eq(Mux(y_jump > trace_max, trace_max, y_jump)),
                ]
            if has_wta:
                m.d.comb += [
                    group_rd.addr.eq(entry.group),
                    group_rd.en.eq(advance),
                    # the winner invalidates its group's entry: the table cleans itself
                    group_wr.addr.eq(r_group),
                    group_wr.en.eq(r_write & r_fire & (r_group != 0)),
                    group_wr.data.valid.eq(0),
                ]
        with m.Else():
            m.d.comb += [
                cand_rd.en.eq(0),
                self.param_rd.addr.eq(idx),
                self.param_rd.en.eq(issue),
                self.state_rd.addr.eq(idx),
                self.state_rd.en.eq(issue),
                self.acc_rd.addr.eq(idx),
                self.acc_rd.en.eq(issue),
                self.acc_wr.addr.eq(b_neuron),
                self.acc_wr.en.eq(b_valid),            # acc := 0 for the next step
                self.acc_wr.data.eq(0),
                self.state_wr.addr.eq(d_neuron),
                self.state_wr.en.eq(d_valid),
                self.state_wr.data.v.eq(d_v2),         # held v when refractory
                self.state_wr.data.refrac.eq(d_refrac),
            ]
            if has_theta:
                m.d.comb += [
                    self.theta_rd.addr.eq(idx),
                    self.theta_rd.en.eq(issue),
                ]
            if has_theta_wr:
                m.d.comb += [
                    self.theta_wr.addr.eq(b_neuron),
                    self.theta_wr.en.eq(b_valid & learn_q),
                    self.theta_wr.data.eq(b_theta_d),
                ]
            if has_learn:
                m.d.comb += [
                    self.y_rd.addr.eq(idx),
                    self.y_rd.en.eq(issue & learn_q),
                    self.y_wr.addr.eq(b_neuron),
                    self.y_wr.en.eq(b_valid & learn_q),
                    self.y_wr.data.eq(b_yd),
                ]
            if has_wta:
                m.d.comb += [
                    group_rd.addr.eq(c_group),
                    group_rd.en.eq(c_valid),
                    group_wr.addr.eq(d_group),
                    group_wr.en.eq(d_better),
                    group_wr.data.valid.eq(1),
                    group_wr.data.margin.eq(d_margin),
                    group_wr.data.neuron.eq(d_neuron),
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
                # Leave when the last neuron is in stage D (its candidate-buffer write lands at
                # the end of this cycle, before the commit's first read).
                with m.If(~issue & ~b_valid & ~c_valid):
                    m.d.sync += [cidx.eq(0), q_valid.eq(0), r_valid.eq(0)]
                    m.next = "COMMIT"
            with m.State("COMMIT"):
                m.d.comb += [in_commit.eq(1), self.busy.eq(1)]
                with m.If((cidx == count) & ~q_valid & (~r_valid | advance)):
                    m.d.sync += done.eq(1)
                    m.next = "IDLE"
        return m
