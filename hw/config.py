"""The core's configuration: the one source of truth for RTL, golden model and compiler.

See docs/core-spec.md, section 1.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

from .widths import CONFIG_RANGES

__all__ = ["CoreConfig"]

# Fields added after images carried config hashes -> the value CoreConfig.hash() leaves out.
_LATER_FIELDS = {"segments": 0, "wta_blocks": 0, "param_classes": 0, "rows": True}


def _bits_for(count: int) -> int:
    """Bits needed to index ``count`` items (at least 1)."""
    return max(1, (count - 1).bit_length())


@dataclasses.dataclass(frozen=True)
class CoreConfig:
    """Capacities, widths and feature switches of one neuromorphic core.

    Every field is validated on construction; a bad value raises ``ValueError``
    naming the field and its allowed range.
    """

    neurons: int = 256
    axons: int = 256
    synapses: int = 65536
    weight_bits: int = 8
    membrane_bits: int = 16
    accumulator_bits: int = 16
    trace_bits: int = 8
    wta_groups: int = 16
    segments: int = 0               # segment table depth (shared rows); 0: rows only
    wta_blocks: int = 0             # structural WTA block ranges; 0: none
    param_classes: int = 0          # parameter classes (class table depth); 0: a word per neuron
    rows: bool = True               # explicit rows in POINTER; False: segment lists only
    learning: bool = True
    wta: bool = True
    adaptive_threshold: bool = True

    # (field, low, high) from hw/widths.py; booleans are checked separately.
    _RANGES = tuple((name, low, high) for name, (low, high) in CONFIG_RANGES.items())

    def __post_init__(self):
        for name, low, high in self._RANGES:
            value = getattr(self, name)
            if name == "accumulator_bits" and isinstance(self.weight_bits, int):
                low = max(low, self.weight_bits)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"CoreConfig.{name} must be an integer in {low}..{high}, got {value!r}")
            if not low <= value <= high:
                raise ValueError(f"CoreConfig.{name} must be in {low}..{high}, got {value}")
        for name in ("rows", "learning", "wta", "adaptive_threshold"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"CoreConfig.{name} must be True or False, got {getattr(self, name)!r}")
        if not self.rows and self.segments == 0:
            raise ValueError("CoreConfig.rows = false needs a segment table (segments > 0): "
                             "without rows every synapse is reached through a segment list")

    # -- derived widths and ranges (docs/core-spec.md, sections 1-4) --------------------------
    @property
    def neuron_index_bits(self) -> int:
        return _bits_for(self.neurons)

    @property
    def axon_index_bits(self) -> int:
        return _bits_for(self.axons)

    @property
    def synapse_address_bits(self) -> int:
        return _bits_for(self.synapses)

    @property
    def wta_group_bits(self) -> int:
        return _bits_for(self.wta_groups + 1)

    @property
    def segment_index_bits(self) -> int:
        return _bits_for(self.segments)

    @property
    def class_index_bits(self) -> int:
        """Bits of a neuron's parameter-class index (``param_classes > 0``)."""
        return _bits_for(self.param_classes)

    @property
    def weight_range(self) -> tuple[int, int]:
        return -(1 << (self.weight_bits - 1)), (1 << (self.weight_bits - 1)) - 1

    @property
    def membrane_range(self) -> tuple[int, int]:
        return -(1 << (self.membrane_bits - 1)), (1 << (self.membrane_bits - 1)) - 1

    @property
    def accumulator_range(self) -> tuple[int, int]:
        return -(1 << (self.accumulator_bits - 1)), (1 << (self.accumulator_bits - 1)) - 1

    @property
    def theta_max(self) -> int:
        """Largest threshold, theta and theta increment: ``V-1`` unsigned bits."""
        return (1 << (self.membrane_bits - 1)) - 1

    @property
    def trace_max(self) -> int:
        return (1 << self.trace_bits) - 1

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "CoreConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"CoreConfig: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)

    def hash(self) -> str:
        """SHA-256 of the canonical JSON of all fields; compiled images carry it.

        ``segments``, ``wta_blocks`` and ``param_classes`` enter only when not 0 and ``rows``
        only when False, so a core without those features keeps the hash it had before the
        fields existed (and its images load).
        """
        fields = {name: value for name, value in self.to_dict().items()
                  if not (name in _LATER_FIELDS and value == _LATER_FIELDS[name])}
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()
