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
from .signatures import LearningSignature
from .widths import AMPLITUDE_BITS

__all__ = ["WeightUpdate"]

_CHUNK = 16             # multiplier operand slice: unsigned 16 bits fit an iCE40 SB_MAC16
                        # (16x16 unsigned) and an ECP5 MULT18X18D


def _chunks(value, width: int) -> list:
    """Split an unsigned ``width``-bit value into 16-bit slices, least significant first."""
    return [value[i:min(i + _CHUNK, width)] for i in range(0, width, _CHUNK)]


def _narrow(prod, shift, width: int):
    """``(prod >> shift) mod 2^width`` and the flag ``prod >> shift >= 2^width``.

    A logarithmic right shifter, most significant shift bit first, that keeps after the
    step of ``2^k`` only the ``width + 2^k - 1`` bits that the remaining shift (at most
    ``2^k - 1``) can still bring into the low ``width`` bits. A bit dropped above that window
    when the step is not taken would land at or above bit ``width``, so it is OR-ed into the
    flag; when the step is taken nothing is dropped (the window before it is at most
    ``width + 2^(k+1) - 1`` bits wide, or ``len(prod) <= 2^(k+1)`` bits for the first step).
    Steps ``2^k >= len(prod)`` clear everything and come back as one ``zero`` condition, for
    the caller to apply (e.g. as the synchronous clear of the register it loads).
    Cost: one 2:1 mux per window bit per step (66 for the default 30-bit product) plus the
    OR tree of the flag, instead of a full 30-to-64-bit barrel shifter and OR-reduction.
    Returns ``(low, flag, zero)``.
    """
    window, flag, zero = prod, Const(0, 1), Const(0, 1)
    for k in reversed(range(len(shift))):
        step, sb = 1 << k, shift[k]
        if step >= len(window):
            zero = zero | sb
            continue
        keep = width + step - 1
        assert len(window) <= step + keep
        if len(window) > keep:
            flag = flag | (~sb & window[keep:].any())
        window = Mux(sb, window[step:step + keep], window[:keep])
    return window[:width], flag, zero


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

    **Reflection.** LTP is computed as LTD on the bitwise complement: ``~a = -a - 1``
    reverses the order of the integers, so

        min(w + dw, w_max) = ~max(~w - dw, ~w_max)

    The datapath always computes ``max(x - dw, b)`` with ``x = w``, ``b = w_min`` (LTD) or
    ``x = ~w``, ``b = ~w_max`` (LTP) and complements the result for LTP. ``u (R - u)`` is
    symmetric in ``u`` and ``R - u``, so dw is the same in both views.

    Widths (``W`` weight bits, ``X`` trace bits, ``A = 8`` amplitude bits; all unsigned
    unless said otherwise). Pipeline, one register per row. The registers next to a
    multiplier are reset-less with nothing between them and it, so that iCE40 synthesis
    packs them into the SB_MAC16: ``amp``, ``trace``, ``u`` as input registers, ``p``, ``q``
    (with the ``+ 1`` in the DSP's adder) and the slice products as output registers. ``v``
    stays in the fabric: its clear is the flip-flop's synchronous reset, in the logic cells of
    the subtractor. Only valid bits and the outputs have a reset.

    ====  ==================================================================================
    0     ``amp`` (A) = ``a_plus`` or ``a_minus``; ``trace`` (X);
          ``u`` (W) = ``w - w_min`` mod 2^W (exact in range: ``0 <= u <= R < 2^W``);
          ``v`` (W) = ``w_max - w`` mod 2^W if ``soft_bound`` else 0;
          ``x`` (W, signed) = ``w`` (LTD) or ``~w`` (LTP)
    1     ``p = amp * trace`` (A + X bits, exact);
          ``q = u * v + (not soft_bound)`` (2W - 2 bits): 1 for the hard bound, else
          ``u (R - u) <= R^2 / 4 < 2^(2W-2)`` (for ``w`` outside the range the product is
          taken mod 2^(2W-2), see below)
    2     ``prod = p * q`` (A + X + 2W - 2 <= 54 bits; the spec allows 58), as products of
          16-bit slices of ``p`` and ``q``, one DSP each (one in all when ``X <= 8`` and
          ``W <= 9``)
    3     ``~dw`` (W) with ``dw = (prod >> shift) mod 2^W``, and ``big = prod >> shift >=
          2^W`` (1): the sum of the slice products and a narrowing shifter (:func:`_narrow`);
          for every ``w`` and ``b`` of the W-bit range ``dw >= 2^W`` reaches the bound, so
          W bits and the flag decide the result
    4     ``t = x - dw`` (W + 2 bits signed, not registered), ``b`` as above;
          ``sat = big or t < b`` (1); ``t mod 2^W`` (W): exact when not ``sat`` because
          then ``b <= t <= x``
    5     output register: ``out_w = sat ? (w_max or w_min) : t`` (LTD) or ``~t`` (LTP)
    ====  ==================================================================================

    ``valid`` goes down all six stages, the tag through six registers, ``x`` (W) through
    stages 0-3 and the LTP/LTD select (1 bit, only when it is per update) through 0-4.

    The learning parameters (``learning``, a :class:`~neurocore.hw.signatures.LearningSignature`:
    ``a_plus``, ``a_minus``, ``shift``, ``w_min``, ``w_max``, ``soft_bound`` of spec
    section 4) are read by several stages; they must be stable
    while updates are in flight (``busy``).

    Preconditions (guaranteed for plastic synapses by ``CoreProgram.validate`` and by the
    clamping of every update): ``w_min <= w_max`` and, when ``soft_bound``,
    ``w_min <= w <= w_max``. Without ``soft_bound`` the result is exact for every ``w``;
    with ``soft_bound`` and ``w`` outside the range the result is unspecified but still lies
    between the bound and ``w`` (any ``dw >= 0`` gives such a result). ``shift`` is exact
    for every 6-bit value (0..63).

    Parameters
    ----------
    config : CoreConfig
        Gives the weight width ``W`` and the trace width ``X``.
    tag_shape : shape-castable, optional
        Shape of the passthrough tag; default ``unsigned(config.synapse_address_bits)``.
    mode : ``None``, ``"ltp"`` or ``"ltd"``, optional
        ``None`` (default): every update says on ``in_ltp`` whether it potentiates.
        ``"ltp"`` / ``"ltd"``: every update does; ``in_ltp`` is ignored and the select
        logic and its pipeline register are left out.

    Attributes
    ----------
    LATENCY : int
        Cycles from ``in_valid`` to ``out_valid`` (6).
    """

    LATENCY = 6

    def __init__(self, *, config: CoreConfig, tag_shape=None, mode=None):
        self._use_config(config)
        if tag_shape is None:
            tag_shape = unsigned(config.synapse_address_bits)
        if not isinstance(tag_shape, ShapeCastable):
            try:
                tag_shape = Shape.cast(tag_shape)
            except TypeError as error:
                raise ValueError(f"tag_shape must be shape-castable, got {tag_shape!r}") from error
        if mode not in (None, "ltp", "ltd"):
            raise ValueError(f"mode must be None, 'ltp' or 'ltd', got {mode!r}")
        self._tag_shape = tag_shape
        self._mode = mode
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
            # learning parameters (spec section 4); the trace fields are not used here
            "learning": In(LearningSignature(config)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        W, X = cfg.weight_bits, cfg.trace_bits
        lp = self.learning

        def reg(shape, name):
            return Signal(shape, name=name, reset_less=True)

        # Pass-through fields: valid (6 stages), tag (6), x (stages 0-3), ltp (0-4).
        valid = [Signal(name=f"s{i}_valid") for i in range(5)] + [self.out_valid]
        tags = [reg(self._tag_shape, f"s{i}_tag") for i in range(5)] + [self.out_tag]
        xs = [reg(signed(W), f"s{i}_x") for i in range(4)]
        if self._mode is None:
            ltps = [self.in_ltp] + [reg(1, f"s{i}_ltp") for i in range(5)]
        else:
            ltps = [Const(int(self._mode == "ltp"), 1)] * 6

        def flip(value, ltp):
            """``~value`` for LTP, ``value`` for LTD."""
            return value ^ ltp.replicate(len(value))

        with m.If(self.en):
            m.d.sync += [valid[0].eq(self.in_valid), tags[0].eq(self.in_tag)]
            m.d.sync += [valid[i + 1].eq(valid[i]) for i in range(5)]
            m.d.sync += [tags[i + 1].eq(tags[i]) for i in range(5)]
            m.d.sync += [xs[i + 1].eq(xs[i]) for i in range(3)]
            if self._mode is None:
                m.d.sync += [ltps[i + 1].eq(ltps[i]) for i in range(5)]

            # -- stage 0: multiplier operands ----------------------------------------------
            amp, trace, u, v = reg(AMPLITUDE_BITS, "amp"), reg(X, "trace"), reg(W, "u"), reg(W, "v")
            m.d.sync += [
                amp.eq(Mux(ltps[0], lp.a_plus, lp.a_minus)),
                trace.eq(self.in_trace),
                u.eq(self.in_w - lp.w_min),
                v.eq(Mux(lp.soft_bound, lp.w_max - self.in_w, 0)),
                xs[0].eq(flip(self.in_w, ltps[0])),
            ]

            # -- stage 1: p = A * trace, q = u (R - u) or 1 --------------------------------
            # keep: Yosys' ice40_dsp would claim these registers both as the output register
            # of the DSP that computes them and as the input register of the one of stage 2,
            # and then drop the first two DSPs; keep restricts it to the former.
            p = Signal(AMPLITUDE_BITS + X, name="p", reset_less=True, attrs={"keep": 1})
            q = Signal(2 * W - 2, name="q", reset_less=True, attrs={"keep": 1})
            m.d.sync += [p.eq(amp * trace), q.eq(u * v + ~lp.soft_bound)]

            # -- stage 2: products of 16-bit slices (one DSP each, output registered) -------
            partials = []    # (signal, bit offset)
            for i, p_slice in enumerate(_chunks(p, len(p))):
                for j, q_slice in enumerate(_chunks(q, len(q))):
                    pp = reg(len(p_slice) + len(q_slice), f"pp{i}{j}")
                    m.d.sync += pp.eq(p_slice * q_slice)
                    partials.append((pp, _CHUNK * (i + j)))

            # -- stage 3: dw = prod >> shift, narrowed to W bits plus the flag "dw >= 2^W" --
            prod_bits = len(p) + len(q)
            if len(partials) == 1:
                prod = partials[0][0]
            else:
                prod = sum((pp << off for pp, off in partials), Const(0, prod_bits))[:prod_bits]
            low, flag, zero = _narrow(prod, lp.shift, W)
            # dw is registered inverted: the subtraction of stage 4 needs ~dw, and the inverters
            # fold into the shifter's last LUTs here but would cost a LUT each after the register.
            ndw, big = reg(W, "ndw"), reg(1, "big")
            m.d.sync += [ndw.eq(~Mux(zero, 0, low)), big.eq(~zero & flag)]

            # -- stage 4: t = x - dw, sat = big or t < b ----------------------------------------
            t = Signal(signed(W + 2))
            m.d.comb += t.eq(xs[3] + Cat(ndw, Const(0b11, 2)).as_signed() + 1)    # -dw = ~dw + 1
            bound = Mux(ltps[4], ~lp.w_max, lp.w_min)
            t_lo, sat = reg(W, "t"), reg(1, "sat")
            m.d.sync += [t_lo.eq(t[:W]), sat.eq(big | (t < bound))]

            # -- stage 5: output register ---------------------------------------------------
            m.d.sync += self.out_w.eq(Mux(sat, Mux(ltps[5], lp.w_max, lp.w_min), flip(t_lo, ltps[5])))

        m.d.comb += self.busy.eq(Cat(*valid).any())
        return m
