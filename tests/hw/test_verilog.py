"""hw/verilog.py: the core as Verilog, written atomically."""
from __future__ import annotations

import os

import pytest

from neurocore.hw.config import CoreConfig
from neurocore.hw.verilog import TOPLEVEL, write_verilog

SMALL = CoreConfig(neurons=4, axons=4, synapses=8, wta_groups=2, learning=False)


def test_writes_one_top_module(tmp_path):
    path = write_verilog(SMALL, tmp_path / "core.v")
    assert path.read_text().count(f"module {TOPLEVEL}(") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["core.v"]


def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    """A disk-full write fails with its OSError; the old file stays and no temporary is left."""
    (tmp_path / "core.v").write_text("old")

    def full(self, text, *args, **kwargs):
        with open(self, "w") as f:
            f.write(text[:100])
        raise OSError(28, os.strerror(28))
    monkeypatch.setattr(type(tmp_path), "write_text", full)
    with pytest.raises(OSError, match="No space left"):
        write_verilog(SMALL, tmp_path / "core.v")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["core.v"]
    assert (tmp_path / "core.v").read_text() == "old"
