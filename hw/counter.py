"""The statistics counter of the core: it saturates at its maximum and never wraps.

Every statistics counter of the RTL (the registers STEP_COUNT, CYCLES, SOPS, ERRORS,
LTP_UPDATES, FEED_CYCLES, UPDATE_CYCLES and the step-cycle count behind LAST_STEP_CYCLES;
the integrator's ``sops`` / ``busy_cycles``, the LTP engine's ``updates`` / ``busy_cycles``)
is a :class:`SaturatingCounter` of ``COUNTER_BITS`` (hw/widths.py) bits.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .widths import COUNTER_BITS

__all__ = ["SaturatingCounter", "activity_members", "count_activity"]


def activity_members(events: str) -> dict:
    """The status and statistics ports of a datapath block: ``busy``, ``clear_count``,
    ``<events>`` (its operations) and ``busy_cycles``, both ``Out(COUNTER_BITS)``."""
    return {"busy": Out(1), "clear_count": In(1), events: Out(COUNTER_BITS),
            "busy_cycles": Out(COUNTER_BITS)}


def count_activity(m: Module, block, events: str, event) -> None:
    """Drive ``block.<events>`` (counting ``event``) and ``block.busy_cycles`` (counting
    ``block.busy``) from two :class:`SaturatingCounter`; ``block.clear_count`` restarts both
    (the events of its own cycle are counted)."""
    for name, amount in ((events, event), ("busy_cycles", block.busy)):
        m.submodules[name] = counter = SaturatingCounter()
        m.d.comb += [counter.restart.eq(block.clear_count), counter.amount.eq(amount),
                     getattr(block, name).eq(counter.count)]


class SaturatingCounter(wiring.Component):
    """``count`` += ``amount`` every cycle with ``enable``, saturating at ``MAX = 2^width - 1``.

    Per cycle::

        count' = min(restart_value + amount, MAX)   if restart
        count' = min(count + amount, MAX)           else if enable
        count' = count                              otherwise

    so a ``restart`` counts the events of its own cycle, and a counter at ``MAX`` stays there
    until the next ``restart`` (or reset). A 1-bit ``amount`` (an event) is counted as an
    increment enabled while ``count != MAX``: no comparator on the sum, the enable of the
    flip-flops does the saturation. A wider ``amount`` clamps the exact sum,
    ``count' = (sum > MAX) ? MAX : sum``, formed from ``count`` and ``amount`` alone;
    ``enable`` (1 unless driven) only gates the flip-flops, so a late ``enable`` (SOPS adds the
    step's count at FINISH) is not in series with the adder.

    Parameters (keyword-only)
    -------------------------
    width : int, default ``COUNTER_BITS``
    amount_bits : int, default 1
    restart_value : int, default 0
        What ``restart`` loads before adding ``amount``; ``0 <= restart_value < MAX``.
    init : int, default 0
        Reset value (``0 <= init <= MAX``; a value near ``MAX`` lets a test reach saturation).

    Members
    -------
    amount : In(amount_bits)
    enable : In(1, init=1)
    restart : In(1)
    count : Out(width)
    next : Out(width)
        The value ``count`` takes at the next clock edge (the D input of its flip-flops): a
        reader that must see this cycle's events reads it instead of ``count``.
    """

    def __init__(self, *, width: int = COUNTER_BITS, amount_bits: int = 1, restart_value: int = 0,
                 init: int = 0):
        for name, value, low in (("width", width, 1), ("amount_bits", amount_bits, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"SaturatingCounter: {name} must be an int >= {low}, got {value!r}")
        self.max = (1 << width) - 1
        if not isinstance(restart_value, int) or not 0 <= restart_value < self.max:
            raise ValueError(f"SaturatingCounter: restart_value must be in 0 .. {self.max - 1}, "
                             f"got {restart_value!r}")
        if not isinstance(init, int) or not 0 <= init <= self.max:
            raise ValueError(f"SaturatingCounter: init must be in 0 .. {self.max}, got {init!r}")
        self._width = width
        self._amount_bits = amount_bits
        self._restart_value = restart_value
        super().__init__({
            "amount": In(amount_bits),
            "enable": In(1, init=1),
            "restart": In(1),
            "count": Out(width, init=init),
            "next": Out(width),
        })

    def elaborate(self, platform):
        m = Module()
        top = self.max
        restarted = self.amount + self._restart_value
        total = self.count + self.amount               # exact: max(width, amount_bits) + 1 bits
        m.d.comb += self.next.eq(self.count)
        with m.If(self.restart):
            if (1 << self._amount_bits) - 1 + self._restart_value > top:   # can pass MAX: clamp
                m.d.comb += self.next.eq(Mux(restarted > top, top, restarted))
            else:
                m.d.comb += self.next.eq(restarted)
        with m.Elif(self.enable):
            if self._amount_bits == 1:
                with m.If(self.amount & ~self.count.all()):
                    m.d.comb += self.next.eq(self.count + 1)
            else:
                m.d.comb += self.next.eq(Mux(total > top, top, total))
        m.d.sync += self.count.eq(self.next)
        return m
