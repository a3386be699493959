"""The phase of the core's step controller: who owns the memory ports (docs/hw.md)."""
from __future__ import annotations

from amaranth.lib import enum

__all__ = ["Phase"]


class Phase(enum.Enum, shape=3):
    HOST = 0     # idle: the host owns the memory ports
    CLEAR = 1    # clear-state sweep
    FEED = 2     # phase 1: integration (LTD inline)
    UPDATE = 3   # phases 2, 3 and the trace sweep
    LTP = 4      # phase 4 (b)
    LTD = 5      # phase 4 (a) on kernel words: the shared-LTD pass (configs with segments and learning)
