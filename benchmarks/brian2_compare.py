"""Compare the neurocore golden model with Brian2 on the standard benchmark network.

    python benchmarks/brian2_compare.py [--steps N] [--seed S] [--repeats R] [--json] [--profile]

Run it with the neurocore virtualenv's python (it imports ``neurocore``). It

1. creates, once, a separate virtualenv ``benchmarks/.venv-brian2`` (gitignored) with
   ``brian2==2.9.*`` and ``numpy<2.3`` (Brian2 2.9 calls ``ndarray.ptp``, removed in
   numpy 2.3), installed with pip by package name; later runs reuse it;
2. builds the standard network (``neurocore.tools.bench.standard_network``) and exports
   its synapses, neuron parameters and input spikes to a temporary ``.npz``;
3. runs the golden model on it (single numba thread, learning off, compilation untimed);
4. runs ``benchmarks/brian2_side.py`` with the Brian2 venv's python: the same network in
   Brian2's ``cpp_standalone`` device without OpenMP (one thread), C++ build untimed, the
   simulation loop timed by Brian2 itself (see brian2_side.py for the exact mapping of a
   neurocore step onto Brian2's schedule and for what is timed); the timed repeats
   alternate a golden-model run and a run of the compiled Brian2 binary, so that both
   engines see the same conditions on a shared machine;
5. prints both runtimes, the SOP/s of both, the speed ratio (golden / Brian2) and how far
   the two spike rasters agree. docs/benchmarks.md records the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-brian2"
SIDE = HERE / "brian2_side.py"
REQUIREMENTS = ["brian2==2.9.*", "numpy<2.3"]


def _log(message: str) -> None:
    print(f"[brian2_compare] {message}", file=sys.stderr, flush=True)


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _venv_ok(python: Path) -> bool:
    """True when ``python`` imports brian2 2.9.x with numpy < 2.3."""
    if not python.exists():
        return False
    probe = ("import brian2, numpy; v = brian2.__version__.split('.'); n = numpy.__version__.split('.');"
             "raise SystemExit(0 if v[:2] == ['2', '9'] and (int(n[0]), int(n[1])) < (2, 3) else 1)")
    return subprocess.run([str(python), "-c", probe], capture_output=True).returncode == 0


def ensure_brian2_venv() -> Path:
    """Create ``benchmarks/.venv-brian2`` with Brian2 if it is not there yet (idempotent)."""
    python = venv_python()
    if _venv_ok(python):
        return python
    if not python.exists():
        _log(f"creating virtualenv {VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    _log(f"installing {' '.join(REQUIREMENTS)} into {VENV}")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True)
    if not _venv_ok(python):
        raise SystemExit(f"brian2_compare: {VENV} does not provide {' '.join(REQUIREMENTS)}")
    return python


def export_network(program, inputs, path: Path) -> None:
    """Write the program's synapses, neuron parameters and the input spikes to ``path``."""
    p = program.neurons
    in_step, in_index = np.nonzero(inputs)
    np.savez(path,
             n_neurons=program.n_neurons, n_inputs=program.n_inputs, steps=inputs.shape[0],
             syn_axon=program.synapse_axon().astype(np.int32),
             syn_target=program.target.astype(np.int32),
             syn_weight=program.weight.astype(np.int32),
             threshold=p.threshold, leak_shift=p.leak_shift, reset_mode=p.reset_mode, bias=p.bias,
             refractory=p.refractory, theta=program.theta, wta_group=p.wta_group,
             n_routed=int(np.count_nonzero(program.route >= 0)),
             in_step=in_step.astype(np.int32), in_index=in_index.astype(np.int32))


def compare_spikes(golden_spikes: np.ndarray, index: np.ndarray, step: np.ndarray) -> dict:
    """Agreement of the golden raster (bool [T, N]) with Brian2's spike list."""
    brian = np.zeros_like(golden_spikes)
    brian[step, index] = True
    duplicates = len(index) - int(np.count_nonzero(brian))
    differ = golden_spikes != brian
    diff_steps = np.flatnonzero(differ.any(axis=1))
    per_neuron_g = golden_spikes.sum(axis=0)
    per_neuron_b = brian.sum(axis=0)
    return {
        "golden_spikes": int(np.count_nonzero(golden_spikes)),
        "brian2_spikes": int(len(index)),
        "duplicate_brian2_spikes": duplicates,
        "identical_rasters": bool(not differ.any()),
        "differing_entries": int(np.count_nonzero(differ)),
        "first_differing_step": int(diff_steps[0]) if diff_steps.size else None,
        "neurons_with_equal_counts": int(np.count_nonzero(per_neuron_g == per_neuron_b)),
        "spike_count_ratio": (len(index) / max(1, int(np.count_nonzero(golden_spikes)))),
    }


def run_brian2(python: Path, network: Path, out: Path, workdir: Path, repeats: int, profile: bool,
               float_type: str = "float32") -> dict:
    """Run brian2_side.py in the Brian2 venv; returns its JSON (build, timings, run command)."""
    command = [str(python), str(SIDE), "--network", str(network), "--out", str(out),
               "--workdir", str(workdir), "--repeats", str(repeats), "--float", float_type]
    if profile:
        command.append("--profile")
    # OpenMP is off in the generated code; keep any BLAS / OpenMP runtime at one thread too.
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-5000:] + done.stderr[-20000:])
        raise SystemExit(f"brian2_compare: the Brian2 side failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _time_brian2_binary(brian: dict) -> tuple[float, float]:
    """Run the compiled Brian2 simulation once; returns (loop CPU seconds, process wall seconds)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", **brian["run_env"])
    if os.path.exists(brian["run_info"]):
        os.remove(brian["run_info"])
    t0 = time.perf_counter()
    subprocess.run(brian["run_command"], cwd=brian["run_cwd"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    with open(brian["run_info"]) as f:
        loop_seconds, completed = (float(x) for x in f.read().split())
    if completed != 1.0:
        raise RuntimeError(f"the Brian2 run completed only {completed:.0%} of the simulation")
    return loop_seconds, wall


def compare(steps: int | None = None, seed: int = 0, repeats: int = 3, profile: bool = False,
            keep: Path | None = None, float_type: str = "float32") -> dict:
    """Build, export and run the standard network in both engines; see the module doc.

    After one Brian2 run for the spikes (and the build), the timed repeats alternate a
    golden-model run and a run of the compiled Brian2 binary, so that both see the same
    conditions on a shared machine; each engine's best repeat counts.
    """
    import numba

    from neurocore.sim import golden
    from neurocore.tools.bench import (STANDARD, cpu_model, describe_network, load_average, standard_network,
                                       time_golden)

    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    python = ensure_brian2_venv()
    load_before = load_average()
    steps = STANDARD["steps"] if steps is None else steps
    _log(f"building the standard network ({steps} steps, seed {seed})")
    program, inputs = standard_network(steps, seed)

    _log("golden model: compiling and a first run")
    _, result = time_golden(program, inputs, 1)

    workdir = Path(tempfile.mkdtemp(prefix="neurocore-brian2-")) if keep is None else keep
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        network = workdir / "network.npz"
        out = workdir / "brian2_spikes.npz"
        export_network(program, inputs, network)
        _log(f"Brian2: building and a first run (cpp_standalone, 1 thread; project in {workdir / 'project'})")
        brian = run_brian2(python, network, out, workdir / "project", 1, profile, float_type)
        spikes = np.load(out)
        agreement = compare_spikes(result.spikes, spikes["index"], spikes["step"])

        _log(f"timing: {repeats} alternating repeats of each engine")
        g_wall, g_cpu, b_loop, b_wall = [], [], [], []
        previous_threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            for _ in range(repeats):
                c0 = time.thread_time()
                t0 = time.perf_counter()
                again = golden.run(program, inputs)
                g_wall.append(time.perf_counter() - t0)
                g_cpu.append(time.thread_time() - c0)
                if again.sops != result.sops or not np.array_equal(again.spikes, result.spikes):
                    raise RuntimeError("golden.run is not deterministic")
                loop, wall = _time_brian2_binary(brian)
                b_loop.append(loop)
                b_wall.append(wall)
        finally:
            numba.set_num_threads(previous_threads)
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)

    sops = result.sops
    golden_seconds, golden_cpu, brian_seconds = min(g_wall), min(g_cpu), min(b_loop)
    return {
        "benchmark": "brian2_compare",
        "network": describe_network(),
        "neurons": program.n_neurons,
        "axons": program.n_axons,
        "synapses": program.n_synapses,
        "steps": steps,
        "seed": seed,
        "repeats": repeats,
        "input_spikes": int(np.count_nonzero(inputs)),
        "sops": sops,
        "neuron_updates": steps * program.n_neurons,
        "golden": {
            "seconds": golden_seconds,
            "seconds_all": g_wall,
            "cpu_seconds": golden_cpu,
            "cpu_seconds_all": g_cpu,
            "sops_per_s": sops / golden_seconds,
            "sops_per_cpu_s": sops / golden_cpu,
            "numba_threads": 1,
            "numba": numba.__version__,
            "numpy": np.__version__,
            "output_spikes": int(np.count_nonzero(result.spikes)),
        },
        "brian2": {
            "version": brian["brian2"],
            "numpy": brian["numpy"],
            "device": brian["device"],
            "openmp_threads": brian["openmp_threads"],
            "float": brian["float"],
            "compile_args": brian["compile_args"],
            "seconds": brian_seconds,
            "seconds_all": b_loop,
            "process_seconds": min(b_wall),
            "process_seconds_all": b_wall,
            "build_seconds": brian["build_seconds"],
            "sops_per_s": sops / brian_seconds,
            "output_spikes": brian["output_spikes"],
            "profile": brian["profile"],
        },
        # Brian2's loop time is CPU time (std::clock, no OpenMP): compare it with the golden
        # model's CPU time; the wall-time ratios are given too.
        "speed_ratio": brian_seconds / golden_cpu,
        "speed_ratio_wall": brian_seconds / golden_seconds,
        "speed_ratio_process": min(b_wall) / golden_seconds,
        "agreement": agreement,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average": [load_before, load_average()],
    }


def format_compare(r: dict) -> str:
    g, b, a = r["golden"], r["brian2"], r["agreement"]
    lines = [
        f"network   {r['network']}",
        f"run       {r['steps']} steps (seed {r['seed']}), {r['input_spikes']} input spikes, "
        f"{r['sops']} SOPs, {r['neuron_updates']} neuron updates; best of {r['repeats']}",
        f"machine   {r['cpu']}, {r['cpu_count']} CPUs; load average "
        + " -> ".join(str(x) for x in r.get("load_average") or ["?"]),
        "",
        f"{'engine':<38} {'seconds':>9} {'SOP/s':>11}  notes",
        f"{'neurocore golden (numba, 1 thread)':<38} {g['cpu_seconds']:>9.4f} {g['sops_per_cpu_s']:>11.3e}  "
        f"CPU time; numba {g['numba']}",
        f"{'  same, wall clock':<38} {g['seconds']:>9.4f} {g['sops_per_s']:>11.3e}  "
        "golden.run() call",
        f"{'Brian2 cpp_standalone (1 thread)':<38} {b['seconds']:>9.4f} {b['sops_per_s']:>11.3e}  "
        f"CPU time of the simulation loop; Brian2 {b['version']}, {b['float']}",
        f"{'  same, whole binary run (wall)':<38} {b['process_seconds']:>9.4f} "
        f"{r['sops'] / b['process_seconds']:>11.3e}  incl. start-up, loading, writing results",
        f"{'  (C++ build, untimed)':<38} {b['build_seconds']:>9.1f}",
        "",
        f"speed ratio golden / Brian2: {r['speed_ratio']:.2f}x (CPU time of the loops), "
        f"{r['speed_ratio_wall']:.2f}x (Brian2 loop / golden wall), "
        f"{r['speed_ratio_process']:.2f}x (Brian2 whole binary / golden wall)",
        f"spikes: golden {a['golden_spikes']}, Brian2 {a['brian2_spikes']}; rasters "
        + ("identical" if a["identical_rasters"] else
           f"differ in {a['differing_entries']} (step, neuron) entries from step {a['first_differing_step']}")
        + f"; {a['neurons_with_equal_counts']}/{r['neurons']} neurons with equal counts",
    ]
    if b.get("profile"):
        lines.append("Brian2 profile (per code object, profiled run):")
        lines += [f"  {name:<40} {seconds:.4f} s" for name, seconds in b["profile"]]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Golden model vs Brian2 on the standard network.")
    parser.add_argument("--steps", type=int, default=None, help="steps (default: the standard 10000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats; the best counts")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--profile", action="store_true",
                        help="add Brian2's per-code-object profile of its first run (the binary is then "
                             "built with profiling, which the timed runs include)")
    parser.add_argument("--brian2-float", choices=("float32", "float64"), default="float32",
                        help="Brian2's float type (both exact for this network; float32 is faster)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the exported network and Brian2 project in this directory")
    args = parser.parse_args(argv)
    try:
        import neurocore.tools.bench  # noqa: F401
    except ImportError:
        raise SystemExit("brian2_compare: run this with the neurocore virtualenv's python "
                         "(e.g. .venv/bin/python benchmarks/brian2_compare.py)")
    result = compare(args.steps, args.seed, args.repeats, args.profile, args.keep, args.brian2_float)
    print(json.dumps(result, indent=2) if args.json else format_compare(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
