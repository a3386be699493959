"""Named port groups that recur between the blocks of the core."""
from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from .config import CoreConfig
from .widths import AMPLITUDE_BITS, LEARN_SHIFT_BITS, TRACE_DECAY_BITS

__all__ = ["LearningSignature"]


class LearningSignature(wiring.Signature):
    """The learning parameters of spec section 4, as the register file drives them.

    ``a_plus``, ``a_minus`` (``AMPLITUDE_BITS``), ``shift`` (``LEARN_SHIFT_BITS``),
    ``pre_decay_shift``, ``post_decay_shift`` (``TRACE_DECAY_BITS``), ``pre_jump``,
    ``post_jump`` (``X`` = ``trace_bits``), ``w_min``, ``w_max`` (``signed(W)``),
    ``soft_bound`` (1). All are ``Out`` from the register file; a block takes them as
    ``In(LearningSignature(config))`` and reads the fields it needs (they are stable while
    the block is busy: the host writes registers only while the core is idle).
    """

    def __init__(self, config: CoreConfig):
        if not isinstance(config, CoreConfig):
            raise ValueError(f"LearningSignature: config must be a CoreConfig, got {config!r}")
        self._config = config
        w, x = config.weight_bits, config.trace_bits
        super().__init__({
            "a_plus": Out(AMPLITUDE_BITS),
            "a_minus": Out(AMPLITUDE_BITS),
            "shift": Out(LEARN_SHIFT_BITS),
            "pre_decay_shift": Out(TRACE_DECAY_BITS),
            "post_decay_shift": Out(TRACE_DECAY_BITS),
            "pre_jump": Out(unsigned(x)),
            "post_jump": Out(unsigned(x)),
            "w_min": Out(signed(w)),
            "w_max": Out(signed(w)),
            "soft_bound": Out(1),
        })

    def __eq__(self, other):
        return type(other) is type(self) and other._config == self._config

    def __hash__(self):
        return hash((type(self), self._config))

    def __repr__(self):
        return f"LearningSignature({self._config!r})"
