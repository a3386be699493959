"""Co-simulation of a compiled network: its program on the RTL and on the golden model.

``neurocore cosim --image DIR`` and the demo run a compiled image on test samples with
:func:`image_cosim`. It lives in sw/, not beside the runner in sim/, because it needs what
sw/ defines (the evaluation's per-sample encoding, the network's decoding) and sim/ never
imports sw/ (the import direction is hw, sim, sw, tools; see tests/test_layering.py).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ..sim import golden
from ..sim.cosim import build, compare, rtl_spikes, run_cases
from .compiler import CompiledNetwork
from .evaluate import encode_samples

__all__ = ["image_cosim"]


def image_cosim(compiled: CompiledNetwork, x: np.ndarray, y: np.ndarray, *, steps: int, encoder: str,
                seed: int = 0, simulator: str = "verilator", work_dir=None, waves: bool = False,
                encoder_kwargs: dict | None = None) -> dict:
    """Run a compiled network on the RTL and on the golden model for the samples ``x``.

    The samples are encoded exactly as :func:`~neurocore.sw.evaluate.evaluate` encodes them
    (same encoder and ``encoder_kwargs``, same per-sample seeds), loaded once and run one after the other with a
    *clear state* in between; every output spike, the final state and every weight are
    compared, and both sides' predictions are decoded.
    """
    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="neurocore-cosim-"))
    program = compiled.program
    inputs = encode_samples(np.asarray(x), steps, encoder, seed, **(encoder_kwargs or {}))
    build_dir = work_dir / f"{simulator}-image"
    t0 = time.perf_counter()
    runner = build(program.config, simulator, build_dir, waves=waves)
    build_seconds = time.perf_counter() - t0
    raw = run_cases(runner, program.config, [(program, inputs, False)], build_dir, waves=waves)[0]
    report = compare(program, inputs, False, raw)
    want = golden.run_batch(program, inputs)
    got, _ = rtl_spikes(program, raw, inputs.shape[0], steps)
    rtl_counts, golden_counts = got.sum(axis=1), want.spikes.sum(axis=1)
    rtl_pred, golden_pred = compiled.decode(got), compiled.decode(want.spikes)
    y = np.asarray(y)
    return {
        "simulator": simulator,
        "samples": int(inputs.shape[0]),
        "steps": int(steps),
        "encoder": encoder,
        "mismatches": len(report.mismatches),
        "problems": report.mismatches[:10],
        "samples_with_equal_spike_counts": int((rtl_counts == golden_counts).all(axis=1).sum()),
        "output_spikes": int(golden_counts.sum()),
        "rtl_accuracy": float((rtl_pred == y).mean()),
        "golden_accuracy": float((golden_pred == y).mean()),
        "predictions_equal": bool((rtl_pred == golden_pred).all()),
        "sops": report.sops,
        "cycles": report.cycles,
        "sop_per_cycle": round(report.sops / report.cycles, 4) if report.cycles else 0.0,
        "cycles_per_sample": round(report.cycles / inputs.shape[0], 1),
        "build_seconds": round(build_seconds, 1),
        "sim_seconds": round(raw["wall_seconds"], 2),
        "work_dir": str(work_dir),
    }
