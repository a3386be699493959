"""Tests of ``neurocore.hw.arith``: every helper against its rule in ``neurocore.sim.reference``.

``decay(x, shift)`` is checked exhaustively: every ``x`` of a signed and an unsigned signal of
several widths, against every value of a shift signal (including shifts as wide as ``x`` and
wider, where the arithmetic shift leaves ``0`` or ``-1``). The result's width and signedness
are those of ``x``.
"""
from __future__ import annotations

import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from neurocore.hw.arith import decay
from neurocore.sim import reference


def _values(shape) -> range:
    width = shape.width
    return range(-(1 << (width - 1)), 1 << (width - 1)) if shape.signed else range(1 << width)


@pytest.mark.parametrize("shape", [unsigned(1), unsigned(4), unsigned(8), signed(2), signed(5), signed(8),
                                   unsigned(16), signed(16)], ids=str)
@pytest.mark.parametrize("shift_bits", [3, 5])
def test_decay_exhaustive(shape, shift_bits):
    """``decay`` equals ``reference.decay`` for every ``x`` (16-bit: a strided sample plus both
    ends) and every shift ``0 .. 2^shift_bits - 1``."""
    x = Signal(shape)
    shift = Signal(shift_bits)
    result = decay(x, shift)
    assert result.shape() == shape            # never leaves the width of x
    m = Module()
    out = Signal(shape)
    m.d.comb += out.eq(result)
    values = list(_values(shape))
    if shape.width > 8:
        values = sorted(set(values[::97] + values[:64] + values[-64:] + [0, 1, -1]) & set(values))
    checked = 0

    async def testbench(ctx):
        nonlocal checked
        for k in range(1 << shift_bits):
            ctx.set(shift, k)
            for value in values:
                ctx.set(x, value)
                assert ctx.get(out) == reference.decay(value, k), (shape, value, k)
                checked += 1

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
    assert checked == len(values) << shift_bits


def test_decay_constant_shift():
    """A constant shift (the traces' ``post_decay_shift`` may be a port or a constant)."""
    x = Signal(signed(6))
    m = Module()
    outs = [Signal(signed(6), name=f"out{k}") for k in range(8)]
    m.d.comb += [out.eq(decay(x, k)) for k, out in enumerate(outs)]

    async def testbench(ctx):
        for value in _values(signed(6)):
            ctx.set(x, value)
            assert [ctx.get(out) for out in outs] == [reference.decay(value, k) for k in range(8)]

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
