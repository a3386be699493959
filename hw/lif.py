"""The LIF neuron rule of docs/core-spec.md (section 5, phase 2, and the per-neuron part of
phase 4) as one combinational block, apart from the scan pipeline that feeds it.

Like ODIN's ``lif_neuron_state.v``, :class:`LifUpdate` holds no state and no memory: it maps
one neuron's words to the words written back. Its arithmetic is cut where the scan pipeline
of :class:`~neurocore.hw.neuron_unit.NeuronUnit` has its registers (stages B, C, D), so the
unit keeps those registers and wires each cut's output to its register and the register to
the next cut's input. Wired straight through, the three cuts are the whole rule.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from .arith import decay
from .component import CoreComponent
from .config import CoreConfig
from .layouts import neuron_param_layout, neuron_state_layout
from .widths import REFRACTORY_BITS, TRACE_DECAY_BITS

__all__ = ["LifUpdate", "fire_reset", "saturating_add", "leaked_layout", "integrated_layout"]


def saturating_add(x, inc, maximum):
    """``min(x + inc, maximum)`` for unsigned ``x`` and ``inc``: the sum is formed one bit wider
    than the wider operand (exact), then clamped (``usat``). The theta and trace jumps."""
    total = x + inc
    return Mux(total > maximum, maximum, total)


def fire_reset(fire, reset_mode, margin, held):
    """``v`` written: for a neuron that fires, ``margin = v2 - thr`` (reset by subtraction,
    ``reset_mode == 1``) or 0 (reset to zero); otherwise ``held``."""
    return Mux(fire, Mux(reset_mode, margin, 0), held)


def _theta_written(config: CoreConfig) -> bool:
    return config.adaptive_threshold and config.learning


def leaked_layout(config: CoreConfig) -> data.StructLayout:
    """Output of stage B (registered into stage C)."""
    vbits = config.membrane_bits
    fields = {
        "v1": signed(vbits),                    # leak(v), or v held when refractory
        # acc + bias, exact: signed(C) + signed(V) needs max(V, C) + 1 bits
        "ab": signed(max(vbits, config.accumulator_bits) + 1),
        "thr": unsigned(vbits),                 # threshold + theta <= 2 * (2^(V-1) - 1), exact
        "refractory": unsigned(1),              # refrac != 0
        "refrac": unsigned(REFRACTORY_BITS),    # refrac - 1 if refractory, else 0 (when not firing)
    }
    if _theta_written(config):
        fields["theta_d"] = unsigned(vbits - 1)     # decay(theta, theta_decay_shift)
        fields["theta_inc"] = unsigned(vbits - 1)
    if config.learning:
        fields["yd"] = unsigned(config.trace_bits)  # decay(y, post_decay_shift)
    return data.StructLayout(fields)


def integrated_layout(config: CoreConfig) -> data.StructLayout:
    """Output of stage C (registered into stage D)."""
    vbits = config.membrane_bits
    fields = {
        "v2": signed(vbits),                    # sat_V(v1 + acc + bias), or v held when refractory
        "thr": unsigned(vbits),
        "candidate": unsigned(1),               # not refractory and v2 >= thr
        "refractory": unsigned(1),
        "refrac": unsigned(REFRACTORY_BITS),
    }
    if _theta_written(config):
        fields["theta_d"] = unsigned(vbits - 1)
        fields["theta_j"] = unsigned(vbits - 1)     # usat_(V-1)(theta_d + theta_inc)
    if config.learning:
        fields["yd"] = unsigned(config.trace_bits)
        fields["yj"] = unsigned(config.trace_bits)  # usat_X(yd + post_jump)
    return data.StructLayout(fields)


class LifUpdate(CoreComponent):
    """One neuron's phase 2 (leak, integrate, compare, reset, refractory) and its theta and
    post-trace updates of phase 4; combinational, in three cuts.

    Stage B (``leaked`` from the words read)::

        refractory = refrac != 0
        v1   = v if refractory else v - (v >> leak_shift)        (decay; stays in V bits)
        ab   = acc + bias                                         (max(V, C) + 1 bits, exact)
        thr  = threshold + theta                                  (V bits unsigned, exact)
        refrac' = refrac - 1 if refractory else 0
        theta_d = decay(theta, theta_decay_shift);  yd = decay(y, post_decay_shift)

    Stage C (``integrated`` from ``leaked_q``, the registered ``leaked``)::

        v2 = v1 if refractory else sat_V(v1 + ab)                 (sum in max(V, C) + 2 bits)
        candidate = not refractory and v2 >= thr                  (signed V+1 compare)
        theta_j = usat_(V-1)(theta_d + theta_inc);  yj = usat_X(yd + post_jump)

    The compare is made in stage C, on the sum beside its saturation, so that stage D (whose
    fire decision gates the whole scan pipeline) starts from a register::

        candidate = not refractory and (v_max >= thr if v1 + ab > v_max else v1 + ab >= thr)

    (a sum below v_min saturates to v_min < 0 <= thr: no candidate, as ``v1 + ab >= thr`` says).

    Stage D (from ``integrated_q``)::

        margin    = v2 - thr        (V-1 bits: 0 <= margin <= 2^(V-1) - 2 for a candidate)
        and, with ``fire`` (a candidate that fires, decided by the unit):
        v     = margin or 0 (reset_mode) if fire else v2
        refrac = refractory (the period) if fire else refrac'
        theta = theta_j if fire else theta_d;   y = yj if fire else yd

    Ports
    -----
    param : In(neuron_param_layout), state : In(neuron_state_layout), acc : In(signed(C))
        The words of the neuron in stage B.
    theta : In(unsigned(V-1))
        Its theta (present iff ``adaptive_threshold``; otherwise ``thr = threshold``).
    y : In(unsigned(X)), post_decay_shift : In(TRACE_DECAY_BITS), post_jump : In(X)
        Its post trace and the global trace parameters (present iff ``learning``).
    leaked : Out(leaked_layout), leaked_q : In(leaked_layout)
    integrated : Out(integrated_layout), integrated_q : In(integrated_layout)
    candidate : Out(1), margin : Out(unsigned(V-1))
    fire : In(1), reset_mode : In(1), refractory : In(REFRACTORY_BITS)
        The fire decision of stage D and the firing neuron's reset mode and refractory period.
    new_state : Out(neuron_state_layout), new_theta : Out(unsigned(V-1)) (iff adaptive_threshold
    and learning), new_y : Out(unsigned(X)) (iff learning)
        The words written back.
    """

    def __init__(self, *, config: CoreConfig):
        self._use_config(config)
        vbits = config.membrane_bits
        members = {
            "param": In(neuron_param_layout(config)),
            "state": In(neuron_state_layout(config)),
            "acc": In(signed(config.accumulator_bits)),
            "leaked": Out(leaked_layout(config)),
            "leaked_q": In(leaked_layout(config)),
            "integrated": Out(integrated_layout(config)),
            "integrated_q": In(integrated_layout(config)),
            "candidate": Out(1),
            "margin": Out(unsigned(vbits - 1)),
            "fire": In(1),
            "reset_mode": In(1),
            "refractory": In(REFRACTORY_BITS),
            "new_state": Out(neuron_state_layout(config)),
        }
        if config.adaptive_threshold:
            members["theta"] = In(unsigned(vbits - 1))
            if config.learning:
                members["new_theta"] = Out(unsigned(vbits - 1))
        if config.learning:
            members["y"] = In(unsigned(config.trace_bits))
            members["post_decay_shift"] = In(TRACE_DECAY_BITS)
            members["post_jump"] = In(config.trace_bits)
            members["new_y"] = Out(unsigned(config.trace_bits))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        v_min, v_max = cfg.membrane_range
        param, state = self.param, self.state
        theta = self.theta if cfg.adaptive_threshold else 0

        # stage B
        b, c = self.leaked, self.leaked_q
        m.d.comb += [
            b.refractory.eq(state.refrac != 0),
            b.v1.eq(Mux(b.refractory, state.v, decay(state.v, param.leak_shift))),
            b.ab.eq(self.acc + param.bias),
            b.thr.eq(param.threshold + theta),
            b.refrac.eq(Mux(b.refractory, state.refrac - 1, 0)),
        ]
        if _theta_written(cfg):
            m.d.comb += [b.theta_d.eq(decay(self.theta, param.theta_decay_shift)),
                         b.theta_inc.eq(param.theta_inc)]
        if cfg.learning:
            m.d.comb += b.yd.eq(decay(self.y, self.post_decay_shift))

        # stage C
        ci = self.integrated
        total = Signal(signed(len(c.ab) + 1))          # v1 + ab, exact: max(V, C) + 2 bits
        m.d.comb += total.eq(c.v1 + c.ab)
        with m.If(c.refractory):
            m.d.comb += ci.v2.eq(c.v1)                  # refractory: input and bias discarded
        with m.Elif(total > v_max):
            m.d.comb += ci.v2.eq(v_max)
        with m.Elif(total < v_min):
            m.d.comb += ci.v2.eq(v_min)
        with m.Else():
            m.d.comb += ci.v2.eq(total)
        m.d.comb += [
            # v_max >= thr is thr < 2^(V-1), the top bit of thr clear (thr <= 2^V - 2)
            ci.candidate.eq(~c.refractory & Mux(total > v_max, ~c.thr[-1], total >= c.thr)),
            ci.thr.eq(c.thr), ci.refractory.eq(c.refractory), ci.refrac.eq(c.refrac),
        ]
        if _theta_written(cfg):
            m.d.comb += [ci.theta_d.eq(c.theta_d),
                         ci.theta_j.eq(saturating_add(c.theta_d, c.theta_inc, cfg.theta_max))]
        if cfg.learning:
            m.d.comb += [ci.yd.eq(c.yd), ci.yj.eq(saturating_add(c.yd, self.post_jump, cfg.trace_max))]

        # stage D
        d = self.integrated_q
        m.d.comb += [
            self.candidate.eq(d.candidate),
            self.margin.eq(d.v2 - d.thr),
            self.new_state.v.eq(fire_reset(self.fire, self.reset_mode, self.margin, d.v2)),
            self.new_state.refrac.eq(Mux(self.fire, self.refractory, d.refrac)),
        ]
        if _theta_written(cfg):
            m.d.comb += self.new_theta.eq(Mux(self.fire, d.theta_j, d.theta_d))
        if cfg.learning:
            m.d.comb += self.new_y.eq(Mux(self.fire, d.yj, d.yd))
        return m
