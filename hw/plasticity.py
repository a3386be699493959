"""The STDP weight-update datapath (docs/core-spec.md, section 5, phase 4).

One :class:`WeightUpdate` computes, for one plastic synapse per clock,

    LTP:  w' = min(w + dw(a_plus,  trace, w), w_max)
    LTD:  w' = max(w - dw(a_minus, trace, w), w_min)

    dw(A, trace, w) = (A * trace) >> shift                          if not soft_bound
    dw(A, trace, w) = (A * trace * u * (R - u)) >> shift            if soft_bound
        where u = w - w_min, R = w_max - w_min

bit-exactly, as ``neurocore.sim.golden._dw`` does in int64. It is shared by LTD (inside
the integrator, :mod:`neurocore.hw.integrator`) and LTP (the LTP engine).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Shape, ShapeCastable, Signal, signed, unsigned
from amaranth.lib.wiring import In, Out

from .component import CoreComponent
from .config import CoreConfig

__all__ = ["WeightUpdate", "AMPLITUDE_BITS", "LEARN_SHIFT_BITS"]

AMPLITUDE_BITS = 8      # a_plus, a_minus: 0..255 (spec section 4)
LEARN_SHIFT_BITS = 6    # shift: 0..47 in a program; the datapath is exact for 0..63
_CHUNK = 17             # multiplier operand chunk: an unsigned 17-bit value fits an 18x18 signed DSP


def _chunks(value, width: int) -> list:
    """Split an unsigned ``width``-bit value into 17-bit slices, least significant first."""
    return [value[i:min(i + _CHUNK, width)] for i in range(0, width, _CHUNK)]


class WeightUpdate(CoreComponent):
    """Pipelined STDP weight update: one synapse per clock, fixed latency :attr:`LATENCY`.

    An update presented on the ``in_*`` ports in a cycle with ``in_valid`` (and ``en``) high
    leaves on the ``out_*`` ports exactly :attr:`LATENCY` enabled cycles later, with
    ``out_valid`` high and ``out_tag`` equal to ``in_tag`` (a passthrough, e.g. the synapse
    address and the rest of its memory word, so the caller can write the new weight back).
    There is no back-pressure: an enabled pipeline advances every cycle. ``en`` is a clock
    enable: while it is low every stage holds (``in_valid`` is ignored and ``out_*`` keep
    their value, so a caller that writes ``out_*`` to memory while stalled writes the same
    word again, which is harmless).

    Pipeline (one register per row; the multiplies map to 18x18 DSP blocks):

    ====  ==================================================================================
    0     input register; amplitude select, ``u = w - w_min``, ``v = w_max - w``
    1     ``p = A * trace`` (8 x X bits); ``q = u * v`` if ``soft_bound`` else 1 (W x W bits)
    2     partial products of ``p * q`` on 17-bit operand slices (one DSP each)
    3     sum of the partial products: the full product (at most ``8 + X + 2W`` bits)
    4     ``dw = product >> shift``: its low ``W+1`` bits and a flag "dw >= 2^(W+1)"
    5     clamp and apply (output register): LTD ``w - dw`` or ``w_min``, LTP ``w + dw``
          or ``w_max``
    ====  ==================================================================================

    The learning parameters (``a_plus``, ``a_minus``, ``shift``, ``w_min``, ``w_max``,
    ``soft_bound``, spec section 4) are ports read by several stages; they must be stable
    while updates are in flight (``busy``). ``u (R - u) <= R^2 / 4`` is at most ``2W - 2``
    bits, so the widest product has ``8 + X + 2W - 2 <= 54`` bits (the spec's bound is 58).

    Preconditions (guaranteed for plastic synapses by ``CoreProgram.validate`` and by the
    clamping of every update): ``w_min <= w_max`` and, when ``soft_bound``,
    ``w_min <= w <= w_max``. Without ``soft_bound`` the result is exact for every ``w``;
    with ``soft_bound`` and ``w`` outside the range the result is unspecified but still lies
    between the bound and ``w``. ``shift`` is exact for every 6-bit value (0..63).

    Parameters
    ----------
    config : CoreConfig
        Gives the weight width ``W`` and the trace width ``X``.
    tag_shape : shape-castable, optional
        Shape of the passthrough tag; default ``unsigned(config.synapse_address_bits)``.

    Attributes
    ----------
    LATENCY : int
        Cycles from ``in_valid`` to ``out_valid`` (6).
    """

    LATENCY = 6

    def __init__(self, *, config: CoreConfig, tag_shape=None):
        self._use_config(config)
        if tag_shape is None:
            tag_shape = unsigned(config.synapse_address_bits)
        if not isinstance(tag_shape, ShapeCastable):
            try:
                tag_shape = Shape.cast(tag_shape)
            except TypeError as error:
                raise ValueError(f"tag_shape must be shape-castable, got {tag_shape!r}") from error
        self._tag_shape = tag_shape
        w, x = config.weight_bits, config.trace_bits
        super().__init__({
            "en": In(1, init=1),
            "in_valid": In(1),
            "in_ltp": In(1),                        # 1: LTP (potentiate), 0: LTD (depress)
            "in_w": In(signed(w)),
            "in_trace": In(unsigned(x)),
            "in_tag": In(tag_shape),
            "out_valid": Out(1),
            "out_w": Out(signed(w)),
            "out_tag": Out(tag_shape),
            "busy": Out(1),                         # some update is in flight
            # learning parameters (spec section 4)
            "a_plus": In(AMPLITUDE_BITS),
            "a_minus": In(AMPLITUDE_BITS),
            "shift": In(LEARN_SHIFT_BITS),
            "w_min": In(signed(w)),
            "w_max": In(signed(w)),
            "soft_bound": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        W, X = cfg.weight_bits, cfg.trace_bits
        tag_shape = self._tag_shape

        def stage(name):
            """Registers of one stage: valid, ltp, w, u, v, tag (carried down the pipeline)."""
            return dict(
                valid=Signal(1, name=f"{name}_valid"),
                ltp=Signal(1, name=f"{name}_ltp"),
                w=Signal(signed(W), name=f"{name}_w"),
                u=Signal(signed(W + 1), name=f"{name}_u"),
                v=Signal(signed(W + 1), name=f"{name}_v"),
                tag=Signal(tag_shape, name=f"{name}_tag"),
            )

        def advance(dst, src):
            m.d.sync += [dst[k].eq(src[k]) for k in dst]

        s0, s1, s2, s3, s4 = (stage(f"s{i}") for i in range(5))
        with m.If(self.en):
            # -- stage 0: input register ---------------------------------------------------
            m.d.sync += [
                s0["valid"].eq(self.in_valid),
                s0["ltp"].eq(self.in_ltp),
                s0["w"].eq(self.in_w),
                s0["u"].eq(self.in_w - self.w_min),     # 0..R for a plastic weight
                s0["v"].eq(self.w_max - self.in_w),     # R - u
                s0["tag"].eq(self.in_tag),
            ]
            amp = Signal(AMPLITUDE_BITS)
            trace = Signal(X)
            m.d.sync += [
                amp.eq(Mux(self.in_ltp, self.a_plus, self.a_minus)),
                trace.eq(self.in_trace),
            ]

            # -- stage 1: A * trace and u * (R - u) ------------------------------------------
            advance(s1, s0)
            p = Signal(AMPLITUDE_BITS + X)
            q = Signal(2 * W)
            m.d.sync += [
                p.eq(amp * trace),
                q.eq(Mux(self.soft_bound, s0["u"][:W] * s0["v"][:W], 1)),
            ]

            # -- stage 2: partial products on 17-bit slices ----------------------------------
            advance(s2, s1)
            partials = []    # (signal, bit offset)
            for i, p_slice in enumerate(_chunks(p, len(p))):
                for j, q_slice in enumerate(_chunks(q, len(q))):
                    pp = Signal(len(p_slice) + len(q_slice), name=f"pp{i}{j}")
                    m.d.sync += pp.eq(p_slice * q_slice)
                    partials.append((pp, _CHUNK * (i + j)))

            # -- stage 3: the full product --------------------------------------------------
            advance(s3, s2)
            prod = Signal(len(p) + len(q))
            m.d.sync += prod.eq(sum((pp << off for pp, off in partials), Const(0, len(prod))))

            # -- stage 4: dw = prod >> shift, narrowed to W+1 bits plus an overflow flag -----
            advance(s4, s3)
            dw = Signal(W + 1)
            dw_big = Signal()    # dw >= 2^(W+1) > every |u|, |v|: the bound is reached
            m.d.sync += [
                dw.eq(prod >> self.shift),
                dw_big.eq((prod >> (self.shift + (W + 1))).any()),
            ]

            # -- stage 5: clamp and apply (output register) -----------------------------------
            # LTD: max(w - dw, w_min) = w_min iff dw >= u = w - w_min, else w - dw.
            # LTP: min(w + dw, w_max) = w_max iff dw >= v = w_max - w, else w + dw.
            # When not saturated, dw < u (or v) <= 2^W, so w -/+ dw stays in the W-bit range.
            ltd_sat = dw_big | (dw >= s4["u"])
            ltp_sat = dw_big | (dw >= s4["v"])
            new_w = Mux(s4["ltp"],
                        Mux(ltp_sat, self.w_max, s4["w"] + dw),
                        Mux(ltd_sat, self.w_min, s4["w"] - dw))
            m.d.sync += [
                self.out_valid.eq(s4["valid"]),
                self.out_w.eq(new_w),
                self.out_tag.eq(s4["tag"]),
            ]

        m.d.comb += self.busy.eq(Cat(*(s["valid"] for s in (s0, s1, s2, s3, s4)), self.out_valid).any())
        return m
