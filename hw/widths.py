"""Every fixed width and limit of docs/core-spec.md, defined once.

The widths that follow from a :class:`~neurocore.hw.config.CoreConfig` (``V``, ``C``,
``W``, ``X``, index widths) are its fields and properties; the ones here do not depend on
the config. The layouts (:mod:`neurocore.hw.layouts`), the registers (:mod:`neurocore.hw.host`),
``CoreConfig`` and ``CoreProgram.validate()``, the compiler and the random programs all
read these names: change a width here and in the spec, nowhere else.

A width ``B`` field holds ``0 .. 2^B - 1``; where the spec allows less than the field holds
(``shift``: a 6-bit field, ``0 .. 47`` in a program), the limit is named beside the width.
"""
from __future__ import annotations

__all__ = [
    "REFRACTORY_BITS", "REFRACTORY_MAX", "SHIFT_BITS",
    "AMPLITUDE_BITS", "AMPLITUDE_MAX", "LEARN_SHIFT_BITS", "LEARN_SHIFT_MAX",
    "TRACE_DECAY_BITS", "TRACE_DECAY_MAX",
    "COUNTER_BITS", "COUNTER_MAX", "INDEX_BITS",
    "WTA_BLOCKS_MAX", "WTA_K_MAX", "SEGMENTS_MAX",
    "PARAM_CLASSES_MAX",
    "CONFIG_RANGES",
    "CHIP_SIDE_MAX", "ROUTES_MAX", "LINK_FIFO_MAX", "CHIP_RANGES",
]

# -- per-neuron parameters (spec section 2) ----------------------------------------------------
REFRACTORY_BITS = 8                            # refractory period and counter
REFRACTORY_MAX = (1 << REFRACTORY_BITS) - 1    # 255 steps
SHIFT_BITS = 5                                 # leak_shift, theta_decay_shift: 0 .. V-1 <= 31

# -- learning parameters (spec section 4) ------------------------------------------------------
AMPLITUDE_BITS = 8                             # a_plus, a_minus
AMPLITUDE_MAX = (1 << AMPLITUDE_BITS) - 1      # 255
LEARN_SHIFT_BITS = 6                           # shift: the datapath is exact for 0 .. 63 ...
LEARN_SHIFT_MAX = 47                           # ... a program uses 0 .. 47
TRACE_DECAY_BITS = 4                           # pre_decay_shift, post_decay_shift
TRACE_DECAY_MAX = (1 << TRACE_DECAY_BITS) - 1  # 15

# -- shared rows and structural winner-take-all (spec sections 3 and 5) --------------------------
SEGMENTS_MAX = 1 << 20                         # segment table depth (config field ``segments``)
WTA_BLOCKS_MAX = 4                             # structural block ranges (config field ``wta_blocks``)
WTA_K_MAX = 4                                  # winners a block keeps (k-WTA), 1 .. 4
PARAM_CLASSES_MAX = 1 << 12                    # parameter classes (config field ``param_classes``)

# -- host interface (docs/hw.md) ---------------------------------------------------------------
INDEX_BITS = 24                                # word index in a region: the largest memory, 2^24 synapses
COUNTER_BITS = 32                              # every statistics counter and the output-spike step
COUNTER_MAX = (1 << COUNTER_BITS) - 1          # counters saturate here, they never wrap (spec section 8)

# -- core configuration (spec section 1): field -> (low, high) ---------------------------------
# ``accumulator_bits`` is further bounded below by ``weight_bits``; booleans are apart.
CONFIG_RANGES = {
    "neurons": (1, 1 << 16),
    "axons": (1, 1 << 16),
    "synapses": (1, 1 << INDEX_BITS),
    "weight_bits": (2, 16),
    "membrane_bits": (8, 32),
    "accumulator_bits": (2, 32),
    "trace_bits": (2, 16),
    "wta_groups": (1, 256),
    "segments": (0, SEGMENTS_MAX),
    "wta_blocks": (0, WTA_BLOCKS_MAX),
    "param_classes": (0, PARAM_CLASSES_MAX),
}


# -- the chip (spec section 9): field -> (low, high) -------------------------------------------
CHIP_SIDE_MAX = 16                             # rows and columns of the core grid
ROUTES_MAX = 1 << 20                           # remote route entries per core (route table depth)
LINK_FIFO_MAX = 64                             # packets a mesh link buffers
CHIP_RANGES = {
    "rows": (1, CHIP_SIDE_MAX),
    "cols": (1, CHIP_SIDE_MAX),
    "routes": (0, ROUTES_MAX),
    "link_fifo": (1, LINK_FIFO_MAX),
}
