"""The STDP engine: the pre-trace sweep and LTP of phase 4 "learn" (docs/core-spec.md, section 5).

Two blocks, both driven by the core's controller after the integrator (phase 1, which also
does LTD, spec phase 4 (a)) has finished:

* :class:`TraceSweep` - for every axon ``a``: ``x[a] := xn[a]``, the pre trace after this
  step's decay and jump, and the axon's bit in the *active bitmap* cleared for the next
  step. One axon per clock.
* :class:`LtpEngine` - spec phase 4 (b): for every fired neuron, every plastic use of it
  (a row word, or with segments a kernel word) gets ``w := min(w + dw(a_plus, xn[axon], w), w_max)`` through the shared
  :class:`~neurocore.hw.plasticity.WeightUpdate` datapath. It scans the neuron's LTP axon
  range (region 8 of docs/hw.md) and finds the synapse in each axon's row from the pointer
  word (region 6). One axon visited per clock.

Order within a step (docs/hw.md, "One step in hardware"): integrate (sets the active bits,
applies LTD) -> trace sweep (may overlap the neuron pass: they share no memory) -> LTP
(needs ``x = xn``, i.e. the sweep's ``done``, and the integrator's LTD write-backs).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import memory
from amaranth.lib.wiring import In, Out, connect, flipped

from .arith import decay
from .component import CoreComponent
from .config import CoreConfig
from .layouts import ltp_range_layout, pointer_layout, segment_layout
from .counter import activity_members, count_activity
from .plasticity import WeightUpdate
from .range_walker import RangeWalker
from .signatures import LearningSignature, neuron_stream, segment_ports, synapse_ports
from .widths import TRACE_DECAY_BITS

__all__ = ["TraceSweep", "LtpEngine"]


class TraceSweep(CoreComponent):
    """Pre-trace update of spec phase 4 for all axons, and the clearing of the active bitmap.

    One *pass* (started by ``start``) visits ``a = 0 .. n_axons-1`` at one axon per clock and,
    depending on the mode sampled at ``start``:

    ============ ===================================================================== ==========
    mode         ``x[a]`` becomes                                                      ``active[a]``
    ============ ===================================================================== ==========
    learn        ``usat_X(decay(x[a]) + (pre_jump if active[a] else 0))`` = ``xn[a]``  0
    ``learn=0``  unchanged (spec: no phase 4 when learning is off for the run)         0
    ``zero``     0 (the core's *clear state*, spec section 6)                          0
    ============ ===================================================================== ==========

    with ``decay(x) = x - (x >> pre_decay_shift)`` if ``pre_decay_shift > 0`` else ``x``.
    ``zero`` takes precedence over ``learn``. Every mode leaves the active bitmap all-zero for
    the next step, so the core sets the bit of every axon it integrates and never clears it.

    Memories (owned by the top level)
    ---------------------------------
    ========== ============================== =========================================
    ports      word shape                     use
    ========== ============================== =========================================
    x_rd       ``unsigned(trace_bits)``       read (learn mode), region 5, axon address
    x_wr                                      write (learn and zero modes)
    active_rd  ``unsigned(1)``                read (learn mode), the active bitmap:
                                              one bit per axon, 1 = integrated this step
    active_wr                                 write 0 (every mode)
    ========== ============================== =========================================

    Both memories hold ``config.axons`` words addressed with ``axon_index_bits`` bits (for
    ``axons == 1`` that is 1 bit: such a memory needs ``depth=2``). :meth:`x_shape` and
    :meth:`active_shape` give the word shapes. Read ports are synchronous with one cycle of
    latency; they need not be transparent (every word is read once, before its own write,
    and never after it within a pass) and need not hold their data while ``en`` is low. Write
    ports are synchronous, whole word. The sweep must have exclusive use of the ports while
    ``busy`` (the top multiplexes the host and the core's active-bit setter onto them
    otherwise); all enables are low while idle.

    The pass needs the complete active bitmap of the step: start it after the last active
    axon of the step has been marked (after phase 1), and finish it before the next step
    marks any axon. It may run beside the neuron pass (no shared memory); LTP must wait for
    its ``done`` (LTP reads ``xn``).

    Control and data ports
    ----------------------
    start : In(1)
        One-cycle pulse, accepted when not ``busy``; begins a pass.
    n_axons : In(axon_index_bits + 1)
        Number of axons to visit (``0 .. config.axons``); sampled at ``start``.
    learn : In(1, init=1)
        Update ``x`` (phase 4 enabled for this step); sampled at ``start``. When low only the
        active bitmap is cleared.
    zero : In(1)
        Write 0 to ``x`` and ``active`` of every visited axon; sampled at ``start``.
    pre_decay_shift : In(TRACE_DECAY_BITS), pre_jump : In(trace_bits)
        Learning parameters (spec section 4); sampled at ``start``.
    busy : Out(1)
        High from the cycle after ``start`` until the last cycle of the pass.
    done : Out(1)
        One-cycle pulse in the cycle after the pass (``busy`` is low again). All memory writes
        of the pass have been performed by then.

    Cycle cost: a pass whose ``start`` is seen in cycle 0 raises ``done`` in cycle
    ``n_axons + 3`` (2 when ``n_axons == 0``): one cycle per axon plus the start cycle and two
    pipeline stages.

    Pipeline (cycle relative to the read of axon ``a``)
    ---------------------------------------------------
    ====  ==================================================================================
    0     A: ``x_rd.addr`` = ``active_rd.addr`` = ``a``
    1     B: ``x[a]``, ``active[a]`` on the read ports; ``xd = decay(x[a])`` registered
    2     C: ``xn = usat_X(xd + jump)``; ``x_wr`` (``xn``, 0 or nothing), ``active_wr`` (0)
    ====  ==================================================================================

    Parameters
    ----------
    config : CoreConfig
        Keyword-only. Gives ``axon_index_bits`` and the trace width ``X``.
    """

    def __init__(self, *, config: CoreConfig):
        self._use_config(config)
        a_bits = config.axon_index_bits
        super().__init__({
            "start": In(1),
            "n_axons": In(a_bits + 1),
            "learn": In(1, init=1),
            "zero": In(1),
            "pre_decay_shift": In(TRACE_DECAY_BITS),
            "pre_jump": In(config.trace_bits),
            "busy": Out(1),
            "done": Out(1),
            "x_rd": In(memory.ReadPort.Signature(addr_width=a_bits, shape=self.x_shape(config))),
            "x_wr": In(memory.WritePort.Signature(addr_width=a_bits, shape=self.x_shape(config))),
            "active_rd": In(memory.ReadPort.Signature(addr_width=a_bits, shape=self.active_shape(config))),
            "active_wr": In(memory.WritePort.Signature(addr_width=a_bits, shape=self.active_shape(config))),
        })

    # -- word shapes of the memories the sweep uses (for the top level) ----------------------
    @staticmethod
    def x_shape(config: CoreConfig):
        """Pre-trace word (region 5): ``unsigned(trace_bits)``."""
        return unsigned(config.trace_bits)

    @staticmethod
    def active_shape(config: CoreConfig):
        """Active-bitmap word: one bit per axon (a whole word, so the core sets it with a
        plain write, no read-modify-write)."""
        return unsigned(1)

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        a_bits = cfg.axon_index_bits
        X = cfg.trace_bits
        trace_max = cfg.trace_max

        # -- parameters sampled at start --------------------------------------------------------
        n_q = Signal(a_bits + 1)
        learn_q = Signal()
        zero_q = Signal()
        shift_q = Signal(TRACE_DECAY_BITS)
        jump_q = Signal(X)

        running = Signal()
        idx = Signal(a_bits + 1)
        done = Signal()
        m.d.sync += done.eq(0)
        m.d.comb += self.done.eq(done)

        # -- stage A: issue the reads of axon idx -----------------------------------------------
        issue = Signal()
        m.d.comb += [
            issue.eq(running & (idx != n_q)),
            self.x_rd.addr.eq(idx),
            self.x_rd.en.eq(issue & learn_q & ~zero_q),
            self.active_rd.addr.eq(idx),
            self.active_rd.en.eq(issue & learn_q & ~zero_q),
        ]
        b_valid = Signal()
        b_axon = Signal(a_bits)
        m.d.sync += b_valid.eq(issue)
        with m.If(issue):
            m.d.sync += [idx.eq(idx + 1), b_axon.eq(idx)]

        # -- stage B: decay ---------------------------------------------------------------------
        x = self.x_rd.data
        c_valid = Signal()
        c_axon = Signal(a_bits)
        c_xd = Signal(X)
        c_active = Signal()
        m.d.sync += [
            c_valid.eq(b_valid),
            c_axon.eq(b_axon),
            c_xd.eq(decay(x, shift_q)),   # stays in 0..x
            c_active.eq(self.active_rd.data),
        ]

        # -- stage C: jump, saturate, write back ------------------------------------------------
        jumped = Signal(X + 1)
        m.d.comb += jumped.eq(c_xd + Mux(c_active, jump_q, 0))
        xn = Mux(jumped > trace_max, trace_max, jumped)
        m.d.comb += [
            self.x_wr.addr.eq(c_axon),
            self.x_wr.data.eq(Mux(zero_q, 0, xn)),
            self.x_wr.en.eq(c_valid & (learn_q | zero_q)),
            self.active_wr.addr.eq(c_axon),
            self.active_wr.data.eq(0),
            self.active_wr.en.eq(c_valid),
        ]

        # -- sequencing -------------------------------------------------------------------------
        with m.FSM(name="sweep"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [
                        idx.eq(0),
                        n_q.eq(self.n_axons),
                        learn_q.eq(self.learn),
                        zero_q.eq(self.zero),
                        shift_q.eq(self.pre_decay_shift),
                        jump_q.eq(self.pre_jump),
                    ]
                    m.next = "SWEEP"
            with m.State("SWEEP"):
                m.d.comb += [running.eq(1), self.busy.eq(1)]
                # Leave when the last axon is in stage C (its writes land at the end of this
                # cycle, before done is seen).
                with m.If(~issue & ~b_valid):
                    m.d.sync += done.eq(1)
                    m.next = "IDLE"
        return m


class LtpEngine(CoreComponent):
    """Spec phase 4 (b), LTP: potentiates the plastic synapses of every fired neuron.

    For each neuron ``n`` received on ``fired`` the engine reads its axon range
    ``(first, count)`` (region 8 LTP_RANGE, ``ltp_range_layout``: the axons with a plastic
    synapse to ``n``, from ``CoreProgram.ltp_ranges()``) and visits every axon
    ``a = first .. first+count-1``: it reads the axon's pointer word ``(base, cnt, first_a)``
    (region 6 POINTER, ``pointer_layout``); when the row's window holds ``n``,
    ``first_a <= n < first_a + cnt``, the synapse of ``a`` to ``n`` is at

        s = base + (n - first_a)

    and the engine reads the synapse word ``(weight, plastic)`` and ``x[a]``; if the word is
    plastic it writes back ``(min(w + dw(a_plus, x[a], w), w_max), 1)`` through a
    :class:`~neurocore.hw.plasticity.WeightUpdate` in LTP mode. Axons whose window does not
    hold ``n`` and non-plastic synapses are skipped (no write). The range only says where to
    look: the synapses written are exactly those of spec phase 4 (b). ``x`` must hold ``xn``
    (the pre traces after this step's decay and jump): run the engine after the
    :class:`TraceSweep` pass of the step.

    Without segments there is no read-after-write hazard on weights: a synapse has one
    target, and every neuron fires at most once per step, so each synapse is read and written
    at most once per pass (the fired neurons of one step): the address ``s`` above belongs to
    the single pair ``(a, n)``. The engine therefore reads synapse words without forwarding,
    and ``syn_rd`` needs no transparency for ``syn_wr``.

    Shared rows (``segments > 0``, spec phase 4 (b) on shared words): after the row, each
    entry of the axon's segment list ``seg_start .. seg_start+seg_count-1`` (pointer word) is
    checked the same way, its window ``(base, count, first)`` read from ``seg_rd`` and tested
    against ``r = (n - seg_offset) mod 2^nib`` (L computes it): the use of ``n`` is the kernel
    word ``base + r - first`` (an axon has at most one use of a neuron, so at most one window
    hits). Two stages replace the window test of A1: L hands out the axon's
    windows one per cycle (the row, then every segment, reading ``seg_rd``; G and A1 hold
    meanwhile) and K tests the window (the row's, registered, or the segment word on
    ``seg_rd.data``). A kernel word is the use of several ``(axon, neuron)`` pairs, so a
    pass may read a word whose previous update is in flight: **A2 holds** (and with it the
    whole front end) while ``s`` equals the address of A3 or of a ``WeightUpdate`` stage
    0-4 (a 5-deep shadow of their valid bits and addresses); in the cycle of the write
    itself the write-back holds the front end anyway, and a read in the next cycle sees the
    new weight. So the updates of a shared word are sequential, in the order of ``fired``
    and of the axons, as the spec's; two reads of one word are at least 8 cycles apart.
    An axon visited costs ``1 + seg_count`` cycles (``max(seg_count, 1)`` on a core
    without rows, whose L has no row window to hand out), and ``seg_rd`` must hold its data while
    ``en`` is low (K keeps its segment word on the port through a stall). **Precondition**: within one pass a neuron appears
    at most once on ``fired``. The LTD write-backs of the integrator must have landed before
    the pass (integrator ``busy`` low), and the next step's integration must wait for this
    engine's ``busy`` to fall.

    Throughput
    ----------
    One *axon visited* per clock, including across neurons, plus one cycle per update: the
    synapse memory may be single-port, so in a cycle with a write-back on ``syn_wr`` the
    front end (G, A1, A2) stalls and A2 issues no synapse read. The range word of the next neuron is looked up while the current
    range is issued, and the next range is loaded in the cycle that issues the current
    range's last axon. A fired neuron with an empty range (``count == 0``: no plastic synapse)
    is dropped at the range stage and costs nothing while a range is being issued (one
    cycle otherwise). The other overhead is the pipeline fill and drain: a pass that visits
    ``V = sum of count[n] over the fired neurons`` axons and makes ``k <= V`` updates, whose
    ``fired`` words arrive without gaps, keeps ``busy`` high for ``V + k' + 11`` cycles when
    the first neuron has a non-empty range, no range runs dry before the next range word is
    ready and the last axon visited is an update (as with ranges from
    ``ltp_ranges()``), ``k'`` being the write-backs that land before the last synapse
    read: those of the last 7 cycles fall in the drain, so ``V + k + 4 .. V + k + 10``.
    ``V - k`` is the number of axons in the ranges that have no plastic synapse to the
    neuron. Gaps on ``fired`` and silent neurons that reach the range stage while the axon
    generator is idle cost one cycle each.

    Pipeline (cycle relative to the ``fired`` handshake of a neuron that finds the axon
    generator idle)
    ------------------------------------------------------------------------------------------
    ====  ===================================================================================
    0     ``fired`` handshake; ``range_rd.addr`` = neuron
    1     P: range word on ``range_rd.data``; loaded into the axon generator
    2     G: ``ptr_rd.addr`` = axon (one per cycle: ``first``, ``first + 1``, ...); G, A1
          and A2 hold (no read) in a cycle with ``syn_wr.en``
    3     A1: pointer word on ``ptr_rd.data``; window test and ``s = base + n - first_a``,
          registered
    4     A2: ``syn_rd.addr`` = ``s``, ``x_rd.addr`` = axon (only when the window holds ``n``)
    5     A3: synapse word and ``x`` on the read ports: WeightUpdate input (if plastic)
    11    WeightUpdate output: ``syn_wr`` (addr = ``s``, word with the new weight)
    ====  ===================================================================================

    Cycles are for a pass without write-back stalls; a stall delays G, A1 and A2 by one
    cycle. ``busy`` falls in the cycle after the last write-back: 8 cycles after the last
    synapse read (cycle 12 for a single axon visited).

    Memory port requirements
    ------------------------
    All read ports synchronous, one cycle of latency; none has to be transparent. ``ptr_rd``
    must hold its data while ``en`` is low (A1 keeps its pointer word on the port through a
    write-back stall); ``range_rd`` need not (the range stage re-presents its address while it
    waits, ``range_rd.en`` is always high). The other enables are low while the engine is
    idle, so the top level may share those ports with the host (and ``ptr_rd`` with the
    integrator) then. The engine must have exclusive use of ``syn_wr`` while ``busy``;
    ``syn_rd`` and ``x_rd`` must read the memories the engine writes / the sweep wrote.
    ``syn_rd.en`` and ``syn_wr.en`` are never high in the same cycle, so the two may be one
    single-port memory port (``addr = syn_wr.en ? syn_wr.addr : syn_rd.addr``).

    Parameters
    ----------
    config : CoreConfig
        Keyword-only. Must be configured with ``learning`` (``ValueError`` otherwise).

    Members
    -------
    fired : ``In(stream.Signature(unsigned(neuron_index_bits)))``
        Neurons that fired this step (any order, each at most once per pass, gaps allowed).
    range_rd : ``In(memory.ReadPort.Signature(addr_width=neuron_index_bits, shape=ltp_range_layout))``
        Region 8, the LTP axon range of every neuron.
    ptr_rd : ``In(memory.ReadPort.Signature(addr_width=axon_index_bits, shape=pointer_layout))``
        Region 6, the row of every axon.
    seg_rd : ``In(memory.ReadPort.Signature(addr_width=segment_index_bits, shape=segment_layout))``
        Only with ``segments > 0``: region SEGMENT, the segment table.
    syn_rd, syn_wr : read / write port of the synapse memory (region 7), ``synapse_layout``.
    x_rd : read port of the pre-trace memory (region 5), ``unsigned(trace_bits)``, axon
        addresses.
    learning : ``In(LearningSignature(config))``
        Learning parameters (spec section 4; LTP reads ``a_plus``, ``shift``, ``w_min``,
        ``w_max``, ``soft_bound``), as in ``WeightUpdate``; stable while ``busy``.
    busy : ``Out(1)``
        High while ``fired.valid`` is high or anything is buffered or in flight. When it is
        low every write-back of the pass is in memory.
    clear_count : ``In(1)``
        Restart the counters (the events of the same cycle are counted).
    updates : ``Out(COUNTER_BITS)``
        Synapse write-backs (LTP updates performed) since ``clear_count``; saturates at
        ``COUNTER_MAX`` (a :class:`~neurocore.hw.counter.SaturatingCounter`).
    busy_cycles : ``Out(COUNTER_BITS)``
        Cycles with ``busy`` high since ``clear_count``; saturates likewise.
    """

    def __init__(self, *, config: CoreConfig):
        self._use_config(config)
        if not config.learning:
            raise ValueError("LtpEngine: the config has learning=False; the LTP engine is only built "
                             "for a core configured with learning")
        n_bits = config.neuron_index_bits
        a_bits = config.axon_index_bits
        super().__init__({
            "fired": In(neuron_stream(config)),
            "range_rd": In(memory.ReadPort.Signature(addr_width=n_bits, shape=ltp_range_layout(config))),
            "ptr_rd": In(memory.ReadPort.Signature(addr_width=a_bits, shape=pointer_layout(config))),
            **segment_ports(config),
            **synapse_ports(config),
            "x_rd": In(memory.ReadPort.Signature(addr_width=a_bits, shape=TraceSweep.x_shape(config))),
            "learning": In(LearningSignature(config)),
            **activity_members("updates"),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        n_bits = cfg.neuron_index_bits
        s_bits = cfg.synapse_address_bits
        a_bits = cfg.axon_index_bits

        # -- stages P (range look-up, one neuron buffered) and G (axon generator) --------------
        # An empty range is dropped in P. The synapse memory is single-port: in a cycle with a
        # write-back the front end (G, A1, A2; with segments also L and K) stalls, so that A2
        # issues no synapse read. A1 keeps its pointer word on ptr_rd.data because G issues no
        # read either (a read port holds its data while ``en`` is low).
        m.submodules.ranges = ranges = RangeWalker(
            key_bits=n_bits, word=ltp_range_layout(cfg), starts={"axon": "first"}, drop_empty=True)
        advance = Signal()
        connect(m, flipped(self.fired), ranges.keys)
        connect(m, flipped(self.range_rd), ranges.lookup)
        issue, g_axon, g_neuron = ranges.issue, ranges.index.axon, ranges.key
        a1_free = Signal()                     # A1 takes the next axon (always, without segments)
        m.d.comb += [
            ranges.hold.eq(~(advance & a1_free)),
            self.ptr_rd.addr.eq(g_axon),
            self.ptr_rd.en.eq(issue),
        ]

        # -- stage A1: pointer word arrives ---------------------------------------------------------
        a1_valid = Signal()
        a1_axon = Signal(a_bits)
        a1_neuron = Signal(n_bits)
        with m.If(advance & a1_free):
            m.d.sync += [a1_valid.eq(issue), a1_axon.eq(g_axon), a1_neuron.eq(g_neuron)]
        row = self.ptr_rd.data

        def window(neuron, word):
            """``(hit, s)``: does the window ``(base, count, first)`` of ``word`` hold
            ``neuron``, and the address ``s = base + neuron - first`` of its word."""
            offset = Signal(n_bits)            # n - first, meaningful when n >= first
            hit = Signal()
            m.d.comb += [offset.eq(neuron - word.first),
                         hit.eq((neuron >= word.first) & (offset < word.count))]
            return hit, word.base + offset

        if cfg.segments:
            # -- stage L: the axon's windows, one per cycle: its row, then each segment --------
            l_row = Signal()                                   # the row is still to check
            l_seg = Signal(cfg.segment_index_bits)             # next segment
            l_left = Signal(cfg.segment_index_bits + 1)        # segments left
            l_axon = Signal(a_bits)
            l_neuron = Signal(n_bits)
            l_word = Signal(segment_layout(cfg))               # the row's window
            l_rel = Signal(n_bits)                             # neuron - seg_offset mod 2^nib
            l_valid = Signal()
            l_last = Signal()
            m.d.comb += [
                l_valid.eq(l_row | (l_left != 0)),
                l_last.eq(l_row & (l_left == 0) | ~l_row & (l_left == 1)),
                a1_free.eq(~a1_valid | ~l_valid | l_last),
                self.seg_rd.addr.eq(l_seg),
                self.seg_rd.en.eq(advance & l_valid & ~l_row),
            ]
            with m.If(advance):
                with m.If(a1_valid & (~l_valid | l_last)):
                    m.d.sync += [l_row.eq(int(cfg.rows)), l_seg.eq(row.seg_start), l_left.eq(row.seg_count),
                                 l_axon.eq(a1_axon), l_neuron.eq(a1_neuron),
                                 l_rel.eq(a1_neuron - row.seg_offset)]
                    if cfg.rows:
                        m.d.sync += [l_word.base.eq(row.base), l_word.count.eq(row.count),
                                     l_word.first.eq(row.first)]
                with m.Elif(l_row):
                    m.d.sync += l_row.eq(0)
                with m.Elif(l_valid):
                    m.d.sync += [l_seg.eq(l_seg + 1), l_left.eq(l_left - 1)]

            # -- stage K: the window (the row's, or the segment word just read); the test ------
            # seg_rd holds its word through a stall (no read is issued then).
            k_valid = Signal()
            k_row = Signal()
            k_axon = Signal(a_bits)
            k_neuron = Signal(n_bits)
            k_word = Signal(segment_layout(cfg))
            k_rel = Signal(n_bits)
            with m.If(advance):
                m.d.sync += [k_valid.eq(l_valid), k_row.eq(l_row), k_axon.eq(l_axon),
                             k_neuron.eq(l_neuron), k_rel.eq(l_rel), k_word.eq(l_word)]
            test_word = Signal(segment_layout(cfg))
            m.d.comb += test_word.eq(Mux(k_row, k_word, self.seg_rd.data))
            # an entry's targets start at (offset + first) mod 2^nib and do not wrap (validate()):
            # n is one of them iff (n - offset) mod 2^nib is one of first .. first+count-1
            hit, synapse = window(Mux(k_row, k_neuron, k_rel), test_word)
            test_valid, test_axon = k_valid, k_axon
            front = Cat(l_valid, k_valid)
        else:
            m.d.comb += a1_free.eq(1)
            hit, synapse = window(a1_neuron, row)
            test_valid, test_axon = a1_valid, a1_axon
            front = Cat()

        # -- stage A2: synapse and trace reads ------------------------------------------------------
        a2_valid = Signal()
        a2_axon = Signal(a_bits)
        a2_synapse = Signal(s_bits)
        with m.If(advance):
            m.d.sync += [
                a2_valid.eq(test_valid & hit),
                a2_axon.eq(test_axon),
                a2_synapse.eq(synapse),
            ]
        a2_read = a2_valid & advance
        m.d.comb += [
            self.syn_rd.addr.eq(a2_synapse),
            self.syn_rd.en.eq(a2_read),
            self.x_rd.addr.eq(a2_axon),
            self.x_rd.en.eq(a2_read),
        ]

        # -- stage A3: synapse word and xn arrive: WeightUpdate input -------------------------------
        a3_valid = Signal()
        a3_synapse = Signal(s_bits)
        m.d.sync += [a3_valid.eq(a2_read), a3_synapse.eq(a2_synapse)]
        syn = self.syn_rd.data
        m.submodules.update = update = WeightUpdate(config=cfg, mode="ltp")      # tag: the synapse address
        m.d.comb += [
            update.en.eq(1),
            update.in_valid.eq(a3_valid & syn.plastic),
            update.in_ltp.eq(1),
            update.in_w.eq(syn.weight),
            update.in_trace.eq(self.x_rd.data),
            update.in_tag.eq(a3_synapse),
        ]
        connect(m, flipped(self.learning), update.learning)

        # -- read-after-write (with segments) -------------------------------------------------------
        # A kernel word is the use of several (axon, neuron) pairs, so a pass may read a word
        # whose previous update is still in flight: A2 holds (and with it the front end) while
        # its address equals that of A3 or of a WeightUpdate stage 0-4 (a shadow of their
        # valid bits and addresses); in the cycle of the write itself (stage 5) the write-back
        # stalls the front end anyway, and a read in the next cycle sees the new weight.
        # Without segments every synapse word is read at most once per pass: no check.
        hazard = Signal()
        if cfg.segments:
            flight = [(a3_valid, a3_synapse)]
            prev_valid, prev_addr = update.in_valid, a3_synapse
            for i in range(WeightUpdate.LATENCY - 1):
                sh_valid, sh_addr = Signal(name=f"wu{i}_valid"), Signal(s_bits, name=f"wu{i}_addr")
                m.d.sync += [sh_valid.eq(prev_valid), sh_addr.eq(prev_addr)]
                flight.append((sh_valid, sh_addr))
                prev_valid, prev_addr = sh_valid, sh_addr
            m.d.comb += hazard.eq(a2_valid & Cat(v & (a == a2_synapse) for v, a in flight).any())
        m.d.comb += advance.eq(~self.syn_wr.en & ~hazard)

        # -- write back -----------------------------------------------------------------------------
        m.d.comb += [
            self.syn_wr.addr.eq(update.out_tag),
            self.syn_wr.data.weight.eq(update.out_w),
            self.syn_wr.data.plastic.eq(1),
            self.syn_wr.en.eq(update.out_valid),
        ]

        # -- status and counters --------------------------------------------------------------------
        in_flight = Cat(ranges.busy, a1_valid, front, a2_valid, a3_valid, update.busy).any()
        m.d.comb += self.busy.eq(self.fired.valid | in_flight)
        count_activity(m, self, "updates", self.syn_wr.en)
        return m
