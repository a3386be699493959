"""The standard benchmark network and the golden-model benchmark.

``neurocore bench golden`` calls :func:`golden_benchmark` and prints its dict (``--json``)
or :func:`format_golden` of it. ``benchmarks/brian2_compare.py`` runs the same network
in Brian2. docs/benchmarks.md describes the network and records measured figures.

The standard network (docs/benchmarks.md, "The standard network"):

* 4096 LIF neurons, 4096 host input axons, no internal axons (no recurrence).
* Every input axon has fan-out 256 to distinct neurons drawn uniformly at random
  (so 1,048,576 synapses; a neuron has 256 synapses on average, binomially distributed).
* Weights uniform over the full int8 range ``-128 .. 127`` (mean about 0: a balanced,
  fluctuation-driven network).
* Every neuron: threshold 800, leak shift 4 (``v -= v >> 4``), reset by subtraction,
  refractory 0, bias 0, no WTA, no adaptive threshold; every neuron is an output.
* No learning (no plastic synapse; the config has ``learning=False``).
* Input: independent Bernoulli spikes, probability 5 % per axon per step.

With these values about 3 % of the neurons fire per step (measured, seed 0).
"""
from __future__ import annotations

import os
import platform
import time

import numpy as np

from neurocore.hw.config import CoreConfig
from neurocore.hw.program import RESET_BY_SUBTRACTION, CoreProgram, NeuronParams

__all__ = ["STANDARD", "standard_config", "standard_network", "describe_network", "golden_benchmark",
           "time_golden", "format_golden", "cpu_model", "load_average"]

# The documented standard network (docs/benchmarks.md). Change it only together with the doc.
STANDARD = dict(
    neurons=4096,
    axons=4096,          # all host inputs
    fan_out=256,         # each input axon drives a window of 256 consecutive neurons
    weight_low=-128,     # weights uniform in weight_low .. weight_high (int8)
    weight_high=127,
    threshold=800,
    leak_shift=4,
    reset_mode=RESET_BY_SUBTRACTION,
    input_rate=0.05,     # Bernoulli probability per axon per step
    steps=10000,         # steps of the standard input (about 1.6 s of golden model)
)


def standard_config(**config_overrides) -> CoreConfig:
    """The core configuration of the standard network; keyword arguments override fields."""
    fields = dict(neurons=STANDARD["neurons"], axons=STANDARD["axons"],
                  synapses=STANDARD["axons"] * STANDARD["fan_out"],
                  learning=False, wta=False, adaptive_threshold=False)
    fields.update(config_overrides)
    return CoreConfig(**fields)


def describe_network() -> str:
    s = STANDARD
    return (f"standard: {s['neurons']} LIF neurons, {s['axons']} host input axons x fan-out "
            f"{s['fan_out']} (a window of consecutive neurons at a random offset), int8 weights uniform "
            f"{s['weight_low']}..{s['weight_high']}, threshold {s['threshold']}, leak shift "
            f"{s['leak_shift']}, reset by subtraction, no learning, Bernoulli input "
            f"{s['input_rate']:g}/axon/step")


def standard_network(steps: int | None = None, seed: int = 0, **config_overrides):
    """Build the standard benchmark network and its input spikes.

    Returns ``(program, inputs)``: a validated :class:`CoreProgram` and a bool array
    ``[steps, 4096]`` of host input spikes (``steps`` defaults to ``STANDARD['steps']``).
    The network depends on ``seed`` only; the input on ``seed`` and ``steps`` (its first
    rows do not depend on ``steps``). Keyword arguments override ``CoreConfig`` fields.
    """
    s = STANDARD
    steps = s["steps"] if steps is None else int(steps)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    n, a, fan = s["neurons"], s["axons"], s["fan_out"]
    config = standard_config(**config_overrides)

    net_rng = np.random.default_rng([seed, 0])
    # Each axon's row (spec section 3) drives `fan` consecutive neurons from a random first one.
    first = net_rng.integers(0, n - fan + 1, size=a, dtype=np.int64)
    targets = first[:, None] + np.arange(fan, dtype=np.int64)
    weights = net_rng.integers(s["weight_low"], s["weight_high"] + 1, size=(a, fan), dtype=np.int64)
    axon = np.repeat(np.arange(a, dtype=np.int64), fan)

    neurons = NeuronParams.uniform(n, threshold=s["threshold"], leak_shift=s["leak_shift"],
                                   reset_mode=s["reset_mode"])
    program = CoreProgram.from_synapses(
        config, n_inputs=a, n_axons=a, axon=axon, target=targets.reshape(-1),
        weight=weights.reshape(-1), neurons=neurons, outputs=np.arange(n))

    in_rng = np.random.default_rng([seed, 1])
    inputs = np.empty((steps, a), bool)
    chunk = 1024
    for start in range(0, steps, chunk):
        rows = min(chunk, steps - start)
        inputs[start:start + rows] = in_rng.random((rows, a)) < s["input_rate"]
    return program, inputs


def cpu_model() -> str:
    """The CPU's model name (as ``lscpu`` prints it), or the platform's processor string."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> float | None:
    """The 1-minute load average (other work on the machine skews timings), if known."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def time_golden(program, inputs, repeats: int = 3):
    """Time ``golden.run(program, inputs)`` single-threaded with learning off.

    Numba compilation (``golden.warmup()`` plus a short run on this very program) is not
    timed. Each repeat runs from the initial state. Returns ``(timing, result)``: a dict
    with ``seconds`` (best wall-clock time, ``time.perf_counter``), ``seconds_all``,
    ``warmup_seconds``, ``numba_threads``, ``sops`` and ``output_spikes``, and the
    ``RunResult`` of the last repeat. Raises if two repeats disagree. ``cpu_seconds`` is the
    best CPU time of the calling thread (``time.thread_time``; the numba kernel runs in it),
    which, unlike wall time, excludes time the thread waited for a busy CPU.
    """
    import numba

    from neurocore.sim import golden

    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    previous_threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        t0 = time.perf_counter()
        golden.warmup()
        golden.run(program, inputs[:min(len(inputs), 8)])
        warmup_seconds = time.perf_counter() - t0
        threads = numba.get_num_threads()

        times, cpu_times, result, reference = [], [], None, None
        for _ in range(repeats):
            c0 = time.thread_time()
            t0 = time.perf_counter()
            result = golden.run(program, inputs)
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.thread_time() - c0)
            outcome = (int(result.sops), int(np.count_nonzero(result.spikes)))
            if reference is None:
                reference = outcome
            elif outcome != reference:
                raise RuntimeError(f"golden.run is not deterministic: {outcome} != {reference}")
    finally:
        numba.set_num_threads(previous_threads)
    timing = {"seconds": min(times), "seconds_all": times, "cpu_seconds": min(cpu_times),
              "cpu_seconds_all": cpu_times, "warmup_seconds": warmup_seconds,
              "numba_threads": threads, "sops": reference[0], "output_spikes": reference[1]}
    return timing, result


def golden_benchmark(steps: int | None = None, seed: int = 0, repeats: int = 3) -> dict:
    """Time the numba golden model on the standard network, single-threaded, learning off.

    ``steps`` defaults to ``STANDARD['steps']``. Numba compilation is not timed (see
    :func:`time_golden`); ``seconds`` is the best wall-clock time of ``repeats`` runs of
    ``golden.run(program, inputs)``, each from the initial state.
    """
    import numba

    steps = STANDARD["steps"] if steps is None else int(steps)
    load_before = load_average()
    t0 = time.perf_counter()
    program, inputs = standard_network(steps, seed)
    build_seconds = time.perf_counter() - t0
    timing, _ = time_golden(program, inputs, repeats)

    s = STANDARD
    n = program.n_neurons
    sops, output_spikes, seconds = timing["sops"], timing["output_spikes"], timing["seconds"]
    return {
        "benchmark": "golden",
        "network": describe_network(),
        "neurons": n,
        "axons": program.n_axons,
        "synapses": program.n_synapses,
        "fan_out": s["fan_out"],
        "threshold": s["threshold"],
        "leak_shift": s["leak_shift"],
        "input_rate": s["input_rate"],
        "seed": seed,
        "steps": steps,
        "input_spikes": int(np.count_nonzero(inputs)),
        "sops": sops,
        "neuron_updates": steps * n,
        "output_spikes": output_spikes,
        "firing_rate": output_spikes / (steps * n),
        "seconds": seconds,
        "seconds_all": timing["seconds_all"],
        "cpu_seconds": timing["cpu_seconds"],
        "repeats": repeats,
        "sops_per_s": sops / seconds,
        "neuron_updates_per_s": steps * n / seconds,
        "steps_per_s": steps / seconds,
        "numba_threads": timing["numba_threads"],
        "warmup_seconds": timing["warmup_seconds"],
        "build_seconds": build_seconds,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average": [load_before, load_average()],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
    }


def _si(value: float) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}"
    return f"{value:.3g} "


def format_golden(result: dict) -> str:
    """A human-readable table of a :func:`golden_benchmark` result."""
    r = result
    rows = [
        ("network", r["network"]),
        ("size", f"{r['neurons']} neurons, {r['axons']} axons, {r['synapses']} synapses "
                 f"(fan-out {r['fan_out']})"),
        ("steps", f"{r['steps']} (seed {r.get('seed', 0)})"),
        ("input", f"rate {r['input_rate']:g}, {r.get('input_spikes', '?')} spikes"),
        ("synaptic ops", f"{r['sops']}"),
        ("neuron updates", f"{r['neuron_updates']}"),
        ("output spikes", f"{r['output_spikes']} (firing rate {100 * r['firing_rate']:.2f} % per step)"),
        ("time", f"{r['seconds']:.4f} s (best of {r.get('repeats', len(r.get('seconds_all', [1])))}; "
                 + ", ".join(f"{t:.4f}" for t in r.get("seconds_all", [])) + ")"
                 + (f"; CPU {r['cpu_seconds']:.4f} s" if "cpu_seconds" in r else "")),
        ("SOP/s", f"{_si(r['sops_per_s'])}SOP/s ({r['sops_per_s']:.3e})"),
        ("neuron updates/s", f"{_si(r['neuron_updates_per_s'])}updates/s ({r['neuron_updates_per_s']:.3e})"),
        ("threads", f"{r['numba_threads']} numba thread(s)"),
        ("warmup (untimed)", f"{r.get('warmup_seconds', float('nan')):.2f} s"),
        ("machine", f"{r.get('cpu', '?')}, {r.get('cpu_count', '?')} CPUs; Python {r.get('python', '?')}, "
                    f"numpy {r.get('numpy', '?')}, numba {r.get('numba', '?')}"),
        ("load average", " -> ".join(str(x) for x in r.get("load_average") or ["?"])
                         + " (before -> after; above ~1 other work competed for the CPUs)"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
