"""Fixed-point helpers of the RTL: each rule of docs/core-spec.md that more than one block
computes is written here once."""
from __future__ import annotations

from amaranth.hdl import Mux, Value

__all__ = ["decay"]


def decay(x, shift) -> Value:
    """``x - (x >> shift)`` if ``shift > 0``, else ``x`` (spec sections 2 and 4).

    The leak of ``v``, the decay of ``theta`` and the decays of the traces ``x`` and ``y``.
    ``>>`` is arithmetic for a signed ``x``, so the result keeps the sign of ``x`` and
    ``|result| <= |x|``: it never leaves the width of ``x`` (no saturation needed). The
    width of the result is that of ``x``.
    """
    x = Value.cast(x)
    result = Mux(shift != 0, x - (x >> shift), x)[:len(x)]
    return result.as_signed() if x.shape().signed else result
