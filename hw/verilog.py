"""The core as Verilog: :func:`write_verilog` converts :class:`~neurocore.hw.core.Core` with
Amaranth's Verilog back end (top module :data:`TOPLEVEL`, ports in docs/hw.md).

Used by ``neurocore verilog``, the co-simulation builds (:mod:`neurocore.sim.cosim`), the
demo and the FPGA flow; it needs nothing but the hardware description.
"""
from __future__ import annotations

import os
from pathlib import Path

from .config import CoreConfig
from .program import CoreProgram

__all__ = ["TOPLEVEL", "write_verilog"]

# The top module's name: the cocotb testbench and the synthesis flow address it by this name.
TOPLEVEL = "core"


def write_verilog(config: CoreConfig, path, *, program: CoreProgram | None = None,
                  learn: bool = False) -> Path:
    """Write the core as Verilog (module ``core``); with ``program``, its memory images and
    registers become the initial contents. Written to a temporary sibling, then renamed: a
    failed write leaves neither a partial ``path`` nor the temporary file."""
    from amaranth.back import verilog

    from .core import Core

    text = verilog.convert(Core.for_program(config, program, learn=learn), name=TOPLEVEL)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
