"""Phase 1 of a time step, "integrate" (docs/core-spec.md, section 5), with phase-4 LTD folded in.

For every active axon the :class:`Integrator` walks the axon's synapse row and adds each
synapse's weight into the accumulator of its target neuron, at one synaptic operation (SOP)
per clock. A row drives consecutive neurons (spec section 3), so the target of a synapse is
computed from the pointer word, not stored in the synapse word. When learning is enabled it also applies LTD (spec phase 4 (a)) to every
plastic synapse it visits and writes the new weight back.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory
from amaranth.lib.wiring import In, connect, flipped

from .arith import decay
from .component import CoreComponent
from .config import CoreConfig
from .layouts import pointer_layout, synapse_layout
from .counter import activity_members, count_activity
from .plasticity import WeightUpdate
from .range_walker import RangeWalker
from .segment_walker import SegmentWalker
from .signatures import LearningSignature, axon_stream, segment_ports, synapse_ports

__all__ = ["Integrator"]


class Integrator(CoreComponent):
    """Phase 1 (integrate) plus LTD, one synaptic operation per clock.

    Operation
    ---------
    The controller clears the accumulator memory (spec: ``acc = 0`` at the start of every
    step; not done here, the integrator only adds), then sends the active axon ids of the
    step on ``axons`` (any order, each at most once, gaps allowed) and waits until ``busy``
    is low: from then on every accumulator and every LTD write-back is in memory.

    For each axon ``a``: the pointer word ``(base, count, first)`` is read from ``ptr_rd``,
    the synapse addresses ``s = base + j`` for ``j = 0 .. count-1`` are generated together
    with their targets ``target = first + j``, each synapse word ``(weight, plastic)`` is
    read from ``syn_rd``, and ``acc[target] += weight`` is done as a read-modify-write on
    ``acc_rd`` / ``acc_wr``. The target travels down the pipeline beside the address. The weight added is the one
    in the synapse memory at the start of the step (each synapse belongs to one axon and
    each axon is active at most once per step, so every synapse is read exactly once per
    step, before its own LTD write-back).

    LTD (when the core is configured with ``learning`` and ``learn`` is high): every plastic
    synapse visited gets ``w = max(w - dw(a_minus, yd[target], w), w_min)`` (spec phase 4
    (a)) through a :class:`~neurocore.hw.plasticity.WeightUpdate`, and the word is written
    back on ``syn_wr`` (new weight, plastic set). ``yd`` is the post trace of
    the target after this step's decay and before its jump:
    ``yd = y - (y >> post_decay_shift)`` (``y`` if the shift is 0), where ``y`` is read from
    ``y_rd``. The controller must run this phase before the neuron pass of the step updates
    ``y``, so that ``y_rd`` returns the value at the start of the step. Since integration
    reads every synapse's weight exactly once per step, before the write-back, doing LTD
    here is equivalent to the spec's phase 4 (a); LTP (phase 4 (b)) must run afterwards.
    Without ``learning`` in the config the LTD hardware is not built: ``learn`` and the
    learning parameters are ignored, ``syn_wr.en`` is 0 and ``y_rd`` is unused.

    Shared rows (``segments > 0``): after its row, every axon's segments are walked
    (:class:`~neurocore.hw.segment_walker.SegmentWalker`); integration depresses the row
    words only, since a kernel word is read by other uses of the same step, which must add
    its start-of-step weight. With ``learning`` too, the integrator has an **LTD-only mode**,
    ``shared_ltd`` high (the core's shared-LTD pass, after integration and before the neuron
    pass, so ``y_rd`` still returns the start-of-step ``y``): the axons sent (the active
    ones, in increasing index: spec phase 4 (a)) walk their segments only (every row reads
    as empty: one cycle), each plastic kernel use gets
    ``w = max(w - dw(a_minus, yd[target], w), w_min)`` and is written back, nothing is added
    to the accumulators (``acc_rd.en = acc_wr.en = 0``) and no SOP is counted. **Stall
    rule** (read-after-write on the synapse memory): a use is not issued while its address
    equals that of an earlier use still in flight, in S1 (any word), S2 or S3 (plastic), S4
    (an LTD) or a ``WeightUpdate`` stage 0-4 (a 5-deep shadow of their valid bits and
    addresses); in the cycle of the write itself ``syn_wr.en`` holds the issue anyway, and a
    read in the next cycle sees the new weight. So a word shared by several uses is
    depressed once per use, each from the value the previous one left, and two uses of one
    word are issued at least 11 cycles apart. ``shared_ltd`` must be stable while ``busy``;
    the stall rule applies only in this mode, so integration keeps its cycle counts.

    Throughput
    ----------
    One SOP per clock sustained, whatever the targets, except for the cycles of LTD
    write-backs: the synapse memory may be single-port, so in a cycle with a write-back on
    ``syn_wr`` the address generator issues no read and holds (a bubble travels down the
    pipeline). The accumulator read-after-write
    hazard (the same target at a distance of 1 or 2 cycles, while its previous sum has not
    reached the memory; within a row targets are distinct, so this happens across rows,
    e.g. a row ending at neuron ``t`` followed by one starting at ``t``, or short rows on
    one neuron) is resolved by forwarding, never by stalling. The pointer of the
    next axon is fetched while the current axon's synapses are issued, so consecutive
    non-empty axons follow each other without a bubble; an axon with no synapses costs one
    cycle. The only other overhead is the pipeline fill and drain of a step: the first
    address is issued 2 cycles after the first axon is accepted, and ``busy`` falls 5 cycles
    after the last address is issued (at most 11 with LTD on: S4 + ``WeightUpdate.LATENCY``
    + 1 after the last plastic synapse). A step of ``n`` SOPs whose axons arrive back to back
    therefore keeps ``busy`` high for exactly ``n + 6`` cycles without LTD, and for
    ``n + w + 6`` to ``n + w + 12`` cycles with LTD on, ``w`` being the write-backs that
    land before the last address is issued (every plastic synapse visited has one, 10 cycles
    after its address; those of the last 10 cycles of addresses fall in the drain, so
    ``p - 10 <= w <= p`` for ``p`` plastic synapses visited); plus one cycle per empty
    axon.

    Pipeline (cycle relative to the issue of one synapse address)
    ---------------------------------------------------------------
    ====  ===============================================================================
    -2    ``axons`` handshake; ``ptr_rd.addr`` = axon id
    -1    stage P: pointer word on ``ptr_rd.data``; loaded into the address generator
    0     S0, address generator: ``syn_rd.addr`` = synapse address ``base + j``, target
          ``first + j`` (held, no read, in a cycle with ``syn_wr.en``)
    1     S1: ``syn_rd.data``, registered (with address and target)
    2     S2: ``acc_rd.addr`` = ``y_rd.addr`` = target; forwarding matches computed
    3     S3: ``acc_rd.data``; sum = (forwarded or read) acc + weight; ``y_rd.data`` registered
    4     S4: ``acc_wr`` (addr = target, data = sum); ``yd`` computed and sent to the
          WeightUpdate (LTD); S5 keeps the last sum for forwarding
    10    (LTD) WeightUpdate output: ``syn_wr`` (addr = synapse address)
    ====  ===============================================================================

    Memory port requirements
    ------------------------
    All read ports are synchronous with a latency of one cycle (address in cycle ``t``,
    data in cycle ``t+1``); none has to be transparent and none has to hold its data
    while ``en`` is low (the integrator re-presents the address when it stalls).
    ``acc_rd`` may be transparent for ``acc_wr`` or not: forwarding covers the two cycles
    in which memory and pipeline differ, and returns the same value a transparent port
    would. ``syn_rd`` needs no transparency for ``syn_wr`` (a synapse is never read after
    its write-back in the same step), and ``syn_rd.en`` and ``syn_wr.en`` are never high in
    the same cycle, so the two may be one single-port memory port
    (``addr = syn_wr.en ? syn_wr.addr : syn_rd.addr``). The ports may be shared with the host by the
    top level while the integrator is idle (all enables are low then, except
    ``ptr_rd.en``, which is always high).

    Parameters
    ----------
    config : CoreConfig
        Keyword-only.

    Members
    -------
    axons : ``In(stream.Signature(unsigned(axon_index_bits)))``
        Active axon ids of the step.
    ptr_rd : ``In(memory.ReadPort.Signature(addr_width=axon_index_bits, shape=pointer_layout))``
    syn_rd : ``In(memory.ReadPort.Signature(addr_width=synapse_address_bits, shape=synapse_layout))``
    syn_wr : ``In(memory.WritePort.Signature(addr_width=synapse_address_bits, shape=synapse_layout))``
    acc_rd, acc_wr : read / write port of the accumulator memory, ``signed(C)``, neuron addresses.
    y_rd : read port of the post-trace memory, ``unsigned(X)``, neuron addresses.
    learn : ``In(1)``
        Apply LTD to the plastic synapses visited.
    seg_rd : ``In(memory.ReadPort.Signature(addr_width=segment_index_bits, shape=segment_layout))``
        Only with ``segments > 0``: the segment table (region SEGMENT).
    shared_ltd : ``In(1)``
        Only with ``segments > 0`` and ``learning``: the LTD-only mode (above).
    learning : ``In(LearningSignature(config))``
        Learning parameters (spec section 4; LTD reads ``a_minus``, ``shift``,
        ``post_decay_shift``, ``w_min``, ``w_max``, ``soft_bound``); stable while ``busy``.
    busy : ``Out(1)``
        High while ``axons.valid`` is high or anything is buffered or in flight.
    clear_count : ``In(1)``
        Restart the counters (the operations of the same cycle are counted).
    sops : ``Out(COUNTER_BITS)``
        Synaptic operations (synapse addresses issued) since ``clear_count``; saturates at
        ``COUNTER_MAX`` (a :class:`~neurocore.hw.counter.SaturatingCounter`).
    busy_cycles : ``Out(COUNTER_BITS)``
        Cycles with ``busy`` high since ``clear_count`` (``sops / busy_cycles`` is the
        achieved SOP rate); saturates likewise.
    """

    def __init__(self, *, config: CoreConfig):
        self._use_config(config)
        a_bits = config.axon_index_bits
        n_bits = config.neuron_index_bits
        super().__init__({
            "axons": In(axon_stream(config)),
            "ptr_rd": In(memory.ReadPort.Signature(addr_width=a_bits, shape=pointer_layout(config))),
            **segment_ports(config),
            **synapse_ports(config),
            "acc_rd": In(memory.ReadPort.Signature(addr_width=n_bits, shape=signed(config.accumulator_bits))),
            "acc_wr": In(memory.WritePort.Signature(addr_width=n_bits, shape=signed(config.accumulator_bits))),
            "y_rd": In(memory.ReadPort.Signature(addr_width=n_bits, shape=unsigned(config.trace_bits))),
            "learn": In(1),
            "learning": In(LearningSignature(config)),
            **({"shared_ltd": In(1)} if config.segments and config.learning else {}),
            **activity_members("sops"),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        s_bits = cfg.synapse_address_bits
        n_bits = cfg.neuron_index_bits
        syn_shape = synapse_layout(cfg)

        # -- stages P (pointer look-up, one axon buffered) and S0 (address generator) -----------
        # The target of address base + j is first + j (spec section 3). The synapse memory is
        # single-port: in a cycle with an LTD write-back the generator holds and a bubble
        # travels down the pipeline instead of a synapse. An empty row costs one cycle.
        # With a segment table the row is followed by the axon's segments (SegmentWalker: one
        # more look-up stage, the same one use per clock); ``shared`` marks kernel words.
        shared_ltd = cfg.segments and cfg.learning
        if cfg.segments:
            m.submodules.rows = rows = SegmentWalker(config=cfg)
            connect(m, flipped(self.axons), rows.axons)
            connect(m, flipped(self.seg_rd), rows.seg_rd)
            m.d.comb += [self.ptr_rd.addr.eq(rows.ptr_rd.addr), self.ptr_rd.en.eq(rows.ptr_rd.en),
                         rows.ptr_rd.data.eq(self.ptr_rd.data)]
            if shared_ltd and cfg.rows:   # the LTD pass walks the segments only: rows read as empty
                m.d.comb += rows.ptr_rd.data.count.eq(Mux(self.shared_ltd, 0, self.ptr_rd.data.count))
            cur_addr, cur_target, cur_shared = rows.addr, rows.target, rows.shared
        else:
            m.submodules.rows = rows = RangeWalker(
                key_bits=len(self.axons.payload), word=pointer_layout(cfg),
                starts={"addr": "base", "target": "first"}, drop_empty=False)
            connect(m, flipped(self.axons), rows.keys)
            connect(m, flipped(self.ptr_rd), rows.lookup)
            cur_addr, cur_target, cur_shared = rows.index.addr, rows.index.target, 0
        issue = rows.issue
        hazard = Signal()       # the LTD pass: the word at cur_addr has an update in flight
        m.d.comb += [
            rows.hold.eq(self.syn_wr.en | hazard),
            self.syn_rd.addr.eq(cur_addr),
            self.syn_rd.en.eq(issue),
        ]

        # -- stage S1: synapse word arrives ------------------------------------------------------
        s1_valid = Signal()
        s1_addr = Signal(s_bits)
        s1_target = Signal(n_bits)
        s1_shared = Signal()
        m.d.sync += [s1_valid.eq(issue), s1_addr.eq(cur_addr), s1_target.eq(cur_target),
                     s1_shared.eq(cur_shared)]

        # -- stage S2: registered synapse word; accumulator and trace reads ---------------------
        s2_valid = Signal()
        s2_addr = Signal(s_bits)
        s2_target = Signal(n_bits)
        s2_shared = Signal()
        s2_syn = Signal(syn_shape)
        m.d.sync += [s2_valid.eq(s1_valid), s2_addr.eq(s1_addr), s2_target.eq(s1_target),
                     s2_shared.eq(s1_shared), s2_syn.eq(self.syn_rd.data)]

        s3_valid = Signal()
        s3_shared = Signal()
        s3_addr = Signal(s_bits)
        s3_target = Signal(n_bits)
        s3_syn = Signal(syn_shape)
        s3_fwd1 = Signal()     # the sum of the synapse one cycle ahead (now in S4) is newer
        s3_fwd2 = Signal()     # the sum of the synapse two cycles ahead (now in S5) is newer
        s4_valid = Signal()
        s4_target = Signal(n_bits)
        s4_sum = Signal(signed(cfg.accumulator_bits))
        s5_sum = Signal(signed(cfg.accumulator_bits))

        accumulate = ~self.shared_ltd if shared_ltd else 1     # the LTD pass adds nothing
        m.d.comb += [
            self.acc_rd.addr.eq(s2_target),
            self.acc_rd.en.eq(s2_valid & accumulate),
        ]
        # Read-after-write: a synapse reading acc[t] in cycle c sees every write made up to
        # cycle c-1. The writes of the synapses 1 and 2 cycles ahead (in S3 and S4 now) are
        # missing, so their sums are forwarded; the newest one wins.
        m.d.sync += [
            s3_valid.eq(s2_valid), s3_addr.eq(s2_addr), s3_target.eq(s2_target), s3_syn.eq(s2_syn),
            s3_shared.eq(s2_shared),
            s3_fwd1.eq(s3_valid & (s3_target == s2_target)),
            s3_fwd2.eq(s4_valid & (s4_target == s2_target)),
        ]

        # -- stage S3: add ---------------------------------------------------------------------
        # No overflow: every partial sum of a step lies within the accumulator bound that
        # CoreProgram.validate proves (spec section 3), so truncating to C bits is exact.
        acc_in = Mux(s3_fwd1, s4_sum, Mux(s3_fwd2, s5_sum, self.acc_rd.data))
        m.d.sync += [
            s4_valid.eq(s3_valid),
            s4_target.eq(s3_target),
            s4_sum.eq(acc_in + s3_syn.weight),
        ]

        # -- stage S4: write back; S5 keeps the last sum for forwarding --------------------------
        m.d.comb += [
            self.acc_wr.addr.eq(s4_target),
            self.acc_wr.data.eq(s4_sum),
            self.acc_wr.en.eq(s4_valid & accumulate),
        ]
        m.d.sync += s5_sum.eq(s4_sum)

        # -- LTD --------------------------------------------------------------------------------
        # S3 registers the post trace; S4 decays it and feeds the WeightUpdate, whose output
        # LATENCY cycles later is written back to the synapse memory.
        in_flight = Cat(rows.busy, s1_valid, s2_valid, s3_valid, s4_valid).any()
        if cfg.learning:
            m.submodules.ltd = ltd = WeightUpdate(config=cfg, mode="ltd")      # tag: the synapse address
            s4_ltd = Signal()
            s4_addr = Signal(s_bits)
            s4_weight = Signal(signed(cfg.weight_bits))
            s4_y = Signal(unsigned(cfg.trace_bits))
            # Integration depresses the row words only (other uses of this step still read the
            # kernel words); the LTD pass issues kernel words only and depresses them.
            ltd_word = Mux(self.shared_ltd, s3_shared, ~s3_shared) if shared_ltd else ~s3_shared
            m.d.sync += [
                s4_ltd.eq(s3_valid & s3_syn.plastic & self.learn & ltd_word),
                s4_addr.eq(s3_addr),
                s4_weight.eq(s3_syn.weight),
                s4_y.eq(self.y_rd.data),
            ]
            yd = decay(s4_y, self.learning.post_decay_shift)
            m.d.comb += [
                self.y_rd.addr.eq(s2_target),
                self.y_rd.en.eq(s2_valid & self.learn),
                ltd.in_valid.eq(s4_ltd),
                ltd.in_ltp.eq(0),
                ltd.in_w.eq(s4_weight),
                ltd.in_trace.eq(yd),
                ltd.in_tag.eq(s4_addr),
                self.syn_wr.addr.eq(ltd.out_tag),
                self.syn_wr.data.weight.eq(ltd.out_w),
                self.syn_wr.data.plastic.eq(1),
                self.syn_wr.en.eq(ltd.out_valid),
            ]
            connect(m, flipped(self.learning), ltd.learning)
            in_flight = in_flight | ltd.busy
            if shared_ltd:
                # Read-after-write on the synapse memory in the LTD pass: a use is not issued
                # while an earlier update of its word has not been written (S1, whose word is
                # not known yet, S2-S4 and the WeightUpdate stages 0-4, followed by a shadow of
                # their valid bits and addresses; in the cycle of the write itself, stage 5,
                # syn_wr.en holds the issue anyway). A read in the cycle after the write sees
                # the new weight.
                flight = [(s1_valid, s1_addr), (s2_valid & s2_syn.plastic, s2_addr),
                          (s3_valid & s3_syn.plastic, s3_addr), (s4_ltd, s4_addr)]
                prev_valid, prev_addr = s4_ltd, s4_addr
                for i in range(WeightUpdate.LATENCY - 1):
                    sh_valid, sh_addr = Signal(name=f"wu{i}_valid"), Signal(s_bits, name=f"wu{i}_addr")
                    m.d.sync += [sh_valid.eq(prev_valid), sh_addr.eq(prev_addr)]
                    flight.append((sh_valid, sh_addr))
                    prev_valid, prev_addr = sh_valid, sh_addr
                m.d.comb += hazard.eq(self.shared_ltd &
                                      Cat(v & (a == cur_addr) for v, a in flight).any())
        else:
            m.d.comb += [self.syn_wr.en.eq(0), self.y_rd.en.eq(0)]

        # -- status and counters -----------------------------------------------------------------
        m.d.comb += self.busy.eq(self.axons.valid | in_flight)
        count_activity(m, self, "sops", issue & accumulate)
        return m
