"""Winner-take-all of docs/core-spec.md (section 5, phase 2): the group winners found during
the neuron unit's scan, and the commit pass that fires them and resets the losers.

:class:`WtaCommit` owns the two memories WTA needs and nothing of the neuron's own words:
the unit (:class:`~neurocore.hw.neuron_unit.NeuronUnit`) reads and writes PARAM, STATE,
theta and ``y`` at the addresses this block gives, and multiplexes its ports.
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
from .widths import REFRACTORY_BITS

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

    Ports
    -----
    clear : In(1)
        A pass starts: the candidate buffer is emptied.
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
    reset_mode : In(1), refractory : In(REFRACTORY_BITS)
        Stage R: from the PARAM word read.
    neuron : Out(neuron_index_bits), write : Out(1), win : Out(1), fired_valid : Out(1),
    state : Out(neuron_state_layout)
        Stage R: the candidate, write its words now, it won, offer it on ``fired``, its
        STATE word.
    last : Out(1)
        The commit ends in this cycle (every candidate written).
    """

    def __init__(self, *, config: CoreConfig):
        self._use_config(config)
        if not config.wta:
            raise ValueError("WtaCommit: the config has no WTA (CoreConfig.wta is False)")
        nib, gbits = config.neuron_index_bits, config.wta_group_bits
        margin = unsigned(config.membrane_bits - 1)
        super().__init__({
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
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        nib, vbits = cfg.neuron_index_bits, cfg.membrane_bits

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
        m.submodules.group_mem = group_mem = Memory(shape=group_layout, depth=cfg.wta_groups + 1, init=[])
        group_wr = group_mem.write_port()
        # Transparent: in the scan, neuron n+1 reads its group's entry in the cycle in which
        # neuron n writes it.
        group_rd = group_mem.read_port(domain="sync", transparent_for=(group_wr,))
        best = group_rd.data

        # ==== scan: record the candidates, keep each group's best =============================
        count = Signal(nib + 1)            # candidates recorded
        recording = Signal()               # a candidate of a group g >= 1 in stage D
        better = Signal()                  # ... that beats its group's entry
        m.d.comb += [
            recording.eq(self.candidate & (self.cand_group != 0)),
            better.eq(recording & (~best.valid | (self.cand_margin > best.margin))),
            self.pending.eq(~((count == 0) & ~recording)),
            cand_wr.en.eq(recording),
            cand_wr.addr.eq(count),
            cand_wr.data.neuron.eq(self.cand_neuron),
            cand_wr.data.margin.eq(self.cand_margin),
            cand_wr.data.group.eq(self.cand_group),
        ]
        with m.If(recording):
            m.d.sync += count.eq(count + 1)
        with m.If(self.clear):
            m.d.sync += count.eq(0)

        # ==== commit: P read entry cidx; Q entry present, read its words; R decide, write =====
        cidx = Signal(nib + 1)             # next candidate-buffer entry to read
        q_valid = Signal()
        r_valid = Signal()
        r_margin = Signal(unsigned(vbits - 1))
        r_group = Signal(cfg.wta_group_bits)
        advance = Signal()                 # R is not a winner stalled on `fired`
        entry = cand_rd.data
        m.d.comb += [
            self.win.eq(best.valid & (best.neuron == self.neuron)),
            advance.eq(~r_valid | ~self.win | self.ready),
            self.write.eq(r_valid & advance),
            self.fired_valid.eq(r_valid & self.win),
            self.read.eq(advance),
            self.read_neuron.eq(entry.neuron),
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
