"""Winner-take-all of docs/core-spec.md (section 5, phase 2): the group winners (explicit
groups, 1 winner each; structural block ranges, ``k`` winners per block) found during the
neuron unit's scan, and the commit pass that fires them and resets the losers.

:class:`WtaCommit` owns the memories WTA needs (two; three with block ranges) and nothing of
the neuron's own words: the unit (:class:`~neurocore.hw.neuron_unit.NeuronUnit`) reads and
writes PARAM, STATE, theta and ``y`` at the addresses this block gives, and multiplexes its
ports.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .component import CoreComponent
from .config import CoreConfig
from .layouts import neuron_state_layout
from .lif import fire_reset
from .signatures import WtaBlocksSignature
from .widths import REFRACTORY_BITS, WTA_K_MAX

__all__ = ["WtaCommit"]


class WtaCommit(CoreComponent):
    """Group winners (during the scan) and the commit pass (after it).

    Scan: every candidate of a group ``g >= 1`` (``candidate`` with ``group != 0``, in stage
    D of the scan) is appended to a *candidate buffer* (``config.neurons`` words of neuron,
    margin, group) and replaces its group's entry in a *group table* (``wta_groups + 1``
    words of valid, best margin, best neuron) when the entry is invalid or its margin is
    larger (strictly: a tie keeps the lower index, which came first). The table entry of a
    neuron's group is read one cycle ahead (``lookup`` in stage C; the table's read port is
    transparent, so the entry written by the neuron just before is seen).

    Commit, one buffered candidate per clock in three stages: P reads the buffer entry; Q
    has it, and ``read_neuron`` / ``read`` ask the unit for that neuron's PARAM, theta and
    ``y`` while the group entry is read here; R decides ``win`` (the group's best neuron is
    this one) and writes: ``state`` (winner: reset to 0 or by subtraction to its margin, and
    its refractory period; loser: ``v = 0``, no refractory). A winner is offered on the
    unit's ``fired`` stream (``fired_valid``); until ``ready`` takes it, P-R hold. The
    winner invalidates its group's entry, so the table is all-invalid again at the end of
    every pass (it starts all-invalid) and never needs clearing.

    Structural blocks (only when ``WtaBlocksSignature(config).ranges > 0``; otherwise none of
    this hardware exists). Per range slot ``r`` a tracker follows the scan in stage C with
    counters (no division): it enters the range at ``lookup_neuron == first[r]`` (slot used:
    ``count != 0``), counts the neuron's offset in its block and the blocks left, and hands
    stage D ``in_block`` (the neuron is a block member: the unit must not fire it in the
    scan), the block's ``k`` and *block end* (the last neuron of its block). Stage D keeps
    the current block's best ``WTA_K_MAX`` candidates in registers, best first: a candidate
    (margin ``m``, neuron ``n``) beats slot ``j`` when the slot is empty or ``m >
    margin_j`` (strictly: the slots hold lower indices, so an equal margin ranks below), is
    inserted at the first slot it beats (the slots below move down one, the last drops out);
    slot ``k-1`` is then the block's ``k``-th best, whatever its ``k``. Every block
    candidate is appended to the candidate buffer (group 0, ``first`` set for the block's
    first candidate). At the block end (or at the
    last neuron of the scan, for a block cut short by ``n_neurons``), a block that had a
    candidate appends its *key*, slot ``k-1`` after this neuron's insertion, to a *key
    buffer* (``config.neurons`` words of valid, margin, neuron; invalid: fewer than ``k``
    candidates, all win), and the slots are emptied for the next block. Blocks with
    candidates appear in the candidate buffer in the order of their keys, so the commit
    reads the next key (stage Q) at every entry with ``first`` and decides a block entry in
    stage R in one cycle: it wins iff the key is invalid, or ``(margin, -neuron) >=
    (key.margin, -key.neuron)`` (it ranks among the block's ``k`` best, ties to the lower
    index). Block entries (group 0) and group entries share the buffer and the commit, in
    increasing neuron index.

    Ports
    -----
    clear : In(1)
        A pass starts: the candidate buffer is emptied (with blocks also the key buffer, the
        best-k registers and the range trackers).
    lookup : In(1), lookup_group : In(wta_group_bits)
        Stage C of the scan: read the group table entry of ``lookup_group``.
    candidate : In(1), cand_neuron : In(neuron_index_bits), cand_margin : In(V-1),
    cand_group : In(wta_group_bits)
        Stage D of the scan: a phase-2 candidate, its margin ``v2 - thr`` and group.
    pending : Out(1)
        There is something to commit (a candidate recorded, or being recorded now).
    begin : In(1), run : In(1), ready : In(1)
        Reset the commit pipeline; the commit is running (the unit's ports are ours);
        ``fired.ready``.
    read : Out(1), read_neuron : Out(neuron_index_bits)
        Stage Q: read PARAM, theta and ``y`` of this neuron (their data is seen in stage R).
    cand_class : In(class_index_bits), read_class : Out(class_index_bits)
        Only with parameter classes (``param_classes > 0``): the candidate's class, recorded
        with it in stage D of the scan; in stage Q the class whose PARAM word to read.
    reset_mode : In(1), refractory : In(REFRACTORY_BITS)
        Stage R: from the PARAM word read.
    neuron : Out(neuron_index_bits), write : Out(1), win : Out(1), fired_valid : Out(1),
    state : Out(neuron_state_layout)
        Stage R: the candidate, write its words now, it won, offer it on ``fired``, its
        STATE word.
    last : Out(1)
        The commit ends in this cycle (every candidate written).

    Block ports (only when ``WtaBlocksSignature(config).ranges > 0``):

    blocks : In(WtaBlocksSignature(config))
        The block ranges; stable during the pass.
    lookup_neuron : In(neuron_index_bits)
        Stage C of the scan: the neuron whose block is tracked when ``lookup`` is high
        (neurons come in increasing index, one ``lookup`` each).
    in_block : Out(1)
        Stage D: the neuron that the last ``lookup`` moved to D is a block member (a
        register). A block member never fires in the scan, so it never stalls it.
    scan_valid : In(1), scan_last : In(1)
        Stage D holds a neuron and moves on in this cycle; it is the last of the scan.
    """

    def __init__(self, *, config: CoreConfig):
        self._use_config(config)
        if not config.wta:
            raise ValueError("WtaCommit: the config has no WTA (CoreConfig.wta is False)")
        nib, gbits = config.neuron_index_bits, config.wta_group_bits
        margin = unsigned(config.membrane_bits - 1)
        blocks = WtaBlocksSignature(config)
        self._ranges = blocks.ranges
        members = {
            "clear": In(1),
            "lookup": In(1), "lookup_group": In(gbits),
            "candidate": In(1), "cand_neuron": In(nib), "cand_margin": In(margin), "cand_group": In(gbits),
            "pending": Out(1),
            "begin": In(1), "run": In(1), "ready": In(1),
            "read": Out(1), "read_neuron": Out(nib),
            "reset_mode": In(1), "refractory": In(REFRACTORY_BITS),
            "neuron": Out(nib), "write": Out(1), "win": Out(1), "fired_valid": Out(1),
            "state": Out(neuron_state_layout(config)),
            "last": Out(1),
        }
        if config.param_classes:       # the candidate's parameter class, for its PARAM read
            members.update({"cand_class": In(config.class_index_bits),
                            "read_class": Out(config.class_index_bits)})
        if self._ranges:
            members.update({"blocks": In(blocks), "lookup_neuron": In(nib), "in_block": Out(1),
                            "scan_valid": In(1), "scan_last": In(1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        nib, vbits = cfg.neuron_index_bits, cfg.membrane_bits
        has_blocks = self._ranges > 0

        cand_fields = {
            "neuron": unsigned(nib),
            "margin": unsigned(vbits - 1),
            "group": unsigned(cfg.wta_group_bits),
        }
        if cfg.param_classes:
            cand_fields["cls"] = unsigned(cfg.class_index_bits)
        if has_blocks:
            cand_fields["first"] = unsigned(1)      # a block's first candidate: read its key
        cand_layout = data.StructLayout(cand_fields)
        m.submodules.cand_mem = cand_mem = Memory(shape=cand_layout, depth=cfg.neurons, init=[])
        cand_wr = cand_mem.write_port()
        cand_rd = cand_mem.read_port(domain="sync")
        group_layout = data.StructLayout({
            "valid": unsigned(1),
            "margin": unsigned(vbits - 1),
            "neuron": unsigned(nib),
        })
        m.submodules.group_mem = group_mem = Memory(shape=group_layout, depth=cfg.wta_groups + 1, init=[])
        group_wr = group_mem.write_port()
        # Transparent: in the scan, neuron n+1 reads its group's entry in the cycle in which
        # neuron n writes it.
        group_rd = group_mem.read_port(domain="sync", transparent_for=(group_wr,))
        best = group_rd.data

        # ==== scan: record the candidates, keep each group's best =============================
        count = Signal(nib + 1)            # candidates recorded
        recording = Signal()               # a candidate of a group g >= 1 (or of a block) in stage D
        better = Signal()                  # ... that beats its group's entry
        if has_blocks:
            grouped = Signal()             # a candidate of an explicit group g >= 1 in stage D
            blocked = Signal()             # a candidate of a block in stage D
            m.d.comb += [
                grouped.eq(self.candidate & (self.cand_group != 0)),
                blocked.eq(self.candidate & self.in_block & (self.cand_group == 0)),
                recording.eq(grouped | blocked),
            ]
        else:
            grouped = recording
            m.d.comb += recording.eq(self.candidate & (self.cand_group != 0))
        m.d.comb += [
            better.eq(grouped & (~best.valid | (self.cand_margin > best.margin))),
            self.pending.eq(~((count == 0) & ~recording)),
            cand_wr.en.eq(recording),
            cand_wr.addr.eq(count),
            cand_wr.data.neuron.eq(self.cand_neuron),
            cand_wr.data.margin.eq(self.cand_margin),
            cand_wr.data.group.eq(self.cand_group),
        ]
        if cfg.param_classes:
            m.d.comb += cand_wr.data.cls.eq(self.cand_class)
        with m.If(recording):
            m.d.sync += count.eq(count + 1)
        with m.If(self.clear):
            m.d.sync += count.eq(0)
        if has_blocks:
            key = self._scan_blocks(m, group_layout, blocked, cand_wr)

        # ==== commit: P read entry cidx; Q entry present, read its words; R decide, write =====
        cidx = Signal(nib + 1)             # next candidate-buffer entry to read
        q_valid = Signal()
        r_valid = Signal()
        r_margin = Signal(unsigned(vbits - 1))
        r_group = Signal(cfg.wta_group_bits)
        advance = Signal()                 # R is not a winner stalled on `fired`
        entry = cand_rd.data
        group_win = best.valid & (best.neuron == self.neuron)
        if has_blocks:
            # a block entry (group 0) ranks among its block's k best: (margin, -neuron) >= key
            block_win = ~key.data.valid | (r_margin > key.data.margin) | (
                (r_margin == key.data.margin) & (self.neuron <= key.data.neuron))
            m.d.comb += self.win.eq(Mux(r_group == 0, block_win, group_win))
        else:
            m.d.comb += self.win.eq(group_win)
        m.d.comb += [
            advance.eq(~r_valid | ~self.win | self.ready),
            self.write.eq(r_valid & advance),
            self.fired_valid.eq(r_valid & self.win),
            self.read.eq(advance),
            self.read_neuron.eq(entry.neuron),
            *([self.read_class.eq(entry.cls)] if cfg.param_classes else []),
            # winner: reset to 0 or by subtraction (v2 - thr); loser: v = 0, no refractory
            self.state.v.eq(fire_reset(self.win, self.reset_mode, r_margin, 0)),
            self.state.refrac.eq(Mux(self.win, self.refractory, 0)),
            self.last.eq((cidx == count) & ~q_valid & (~r_valid | advance)),
        ]
        with m.If(self.run & advance):
            m.d.sync += [
                r_valid.eq(q_valid),
                self.neuron.eq(entry.neuron),
                r_margin.eq(entry.margin),
                r_group.eq(entry.group),
                q_valid.eq(cidx != count),
            ]
            with m.If(cidx != count):
                m.d.sync += cidx.eq(cidx + 1)
        with m.If(self.begin):
            m.d.sync += [cidx.eq(0), q_valid.eq(0), r_valid.eq(0)]
        if has_blocks:
            # stage Q: the first entry of a block reads the block's key (seen in R, and held
            # for the block's later entries, which follow it in the buffer)
            key_idx = Signal(nib + 1)      # next key to read
            next_key = Signal()
            m.d.comb += next_key.eq(self.run & advance & q_valid & entry.first)
            with m.If(next_key):
                m.d.sync += key_idx.eq(key_idx + 1)
            with m.If(self.begin):
                m.d.sync += key_idx.eq(0)
            m.d.comb += [key.addr.eq(key_idx), key.en.eq(next_key)]

        # ==== the group table's and the buffer's ports: commit or scan =========================
        with m.If(self.run):
            m.d.comb += [
                cand_rd.addr.eq(cidx),
                cand_rd.en.eq(advance),
                group_rd.addr.eq(entry.group),
                group_rd.en.eq(advance),
                # the winner invalidates its group's entry: the table cleans itself
                group_wr.addr.eq(r_group),
                group_wr.en.eq(self.write & self.win),
                group_wr.data.valid.eq(0),
            ]
        with m.Else():
            m.d.comb += [
                cand_rd.en.eq(0),
                group_rd.addr.eq(self.lookup_group),
                group_rd.en.eq(self.lookup),
                group_wr.addr.eq(self.cand_group),
                group_wr.en.eq(better),
                group_wr.data.valid.eq(1),
                group_wr.data.margin.eq(self.cand_margin),
                group_wr.data.neuron.eq(self.cand_neuron),
            ]
        return m

    def _track_ranges(self, m: Module):
        """Stage C: the block range trackers. Returns the registers stage D reads: the neuron
        is a block member, it ends its block, and the block's ``k``."""
        nib = self._config.neuron_index_bits
        blocks = self.blocks
        c_in, c_end, c_k = [], [], []
        for r in range(self._ranges):
            first, size, count, k = blocks.first[r], blocks.size[r], blocks.count[r], blocks.k[r]
            running = Signal(name=f"range{r}_running")          # inside range r, past its first neuron
            offset = Signal(nib, name=f"range{r}_offset")       # next neuron's place in its block
            left = Signal(nib, name=f"range{r}_left")           # blocks of the range after its block
            inside = Signal(name=f"range{r}_inside")            # lookup_neuron is in range r
            place = Signal(nib, name=f"range{r}_place")         # ... at this offset in its block
            after = Signal(nib, name=f"range{r}_after")         # ... with this many blocks after it
            ends = Signal(name=f"range{r}_ends")                # ... and ends its block
            m.d.comb += [
                inside.eq(running | ((self.lookup_neuron == first) & (count != 0) & (size != 0))),
                place.eq(Mux(running, offset, 0)),
                after.eq(Mux(running, left, count - 1)),
                ends.eq(place + 1 == size),
            ]
            with m.If(self.lookup & inside):
                m.d.sync += [
                    running.eq(~(ends & (after == 0))),
                    offset.eq(Mux(ends, 0, place + 1)),
                    left.eq(Mux(ends, after - 1, after)),
                ]
            with m.If(self.clear):
                m.d.sync += running.eq(0)
            c_in.append(inside)
            c_end.append(inside & ends)
            c_k.append(Mux(inside, k, 0))
        d_in = Signal()                    # the neuron in stage D is a block member ...
        d_end = Signal()                   # ... the last of its block ...
        d_k = Signal(WtaBlocksSignature.K_BITS)    # ... which keeps d_k winners
        with m.If(self.lookup):
            m.d.sync += [d_in.eq(_any(c_in)), d_end.eq(_any(c_end)), d_k.eq(_any(c_k))]
        m.d.comb += self.in_block.eq(d_in)
        return d_in, d_end, d_k

    def _scan_blocks(self, m: Module, slot_layout, blocked, cand_wr):
        """Stage D: the current block's best candidates and the key buffer. Returns the key
        buffer's read port, which the commit drives."""
        cfg = self._config
        d_in, d_end, d_k = self._track_ranges(m)
        m.submodules.key_mem = key_mem = Memory(shape=slot_layout, depth=cfg.neurons, init=[])
        key_wr = key_mem.write_port()
        key_rd = key_mem.read_port(domain="sync")

        # the block's best WTA_K_MAX candidates so far, best first (whatever the block's k: slot
        # k-1 is its k-th best)
        slots = [Signal(slot_layout, name=f"top{j}") for j in range(WTA_K_MAX)]
        ranked = [Signal(slot_layout, name=f"ranked{j}") for j in range(WTA_K_MAX)]   # with stage D's candidate
        beats = [Signal(name=f"beats{j}") for j in range(WTA_K_MAX)]
        new = Signal(slot_layout)
        m.d.comb += [new.valid.eq(1), new.margin.eq(self.cand_margin), new.neuron.eq(self.cand_neuron)]
        for j in range(WTA_K_MAX):
            m.d.comb += beats[j].eq(~slots[j].valid | (self.cand_margin > slots[j].margin))
            with m.If(blocked & beats[j]):
                if j == 0:
                    m.d.comb += ranked[j].eq(new)
                else:
                    m.d.comb += ranked[j].eq(Mux(beats[j - 1], slots[j - 1], new))
            with m.Else():
                m.d.comb += ranked[j].eq(slots[j])
        kth = Signal(slot_layout)          # the block's k-th best (invalid: fewer than k)
        with m.Switch(d_k):
            for k in range(1, WTA_K_MAX):
                with m.Case(k):
                    m.d.comb += kth.eq(ranked[k - 1])
            with m.Default():
                m.d.comb += kth.eq(ranked[WTA_K_MAX - 1])

        block_done = Signal()              # stage D ends its block
        key_count = Signal(cfg.neuron_index_bits + 1)
        m.d.comb += [
            block_done.eq(self.scan_valid & d_in & (d_end | self.scan_last)),
            cand_wr.data.first.eq(blocked & ~slots[0].valid),
            key_wr.addr.eq(key_count),
            key_wr.en.eq(block_done & ranked[0].valid),     # a block without candidate has no key
            key_wr.data.eq(kth),
        ]
        with m.If(key_wr.en):
            m.d.sync += key_count.eq(key_count + 1)
        with m.If(block_done):
            m.d.sync += [slot.valid.eq(0) for slot in slots]
        with m.Elif(self.scan_valid & d_in):
            m.d.sync += [slot.eq(ranked[j]) for j, slot in enumerate(slots)]
        with m.If(self.clear):
            m.d.sync += [key_count.eq(0), *(slot.valid.eq(0) for slot in slots)]
        return key_rd


def _any(values):
    """OR of a list of values (one of them at most is non-zero: the ranges do not overlap)."""
    result = values[0]
    for value in values[1:]:
        result = result | value
    return result
