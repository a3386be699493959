"""The demo behind ``neurocore demo``: a small pattern classifier run on the golden model.

The network is built by hand, in code (no training):

* 64 host inputs: the pixels of an 8x8 image, rate coded (an "on" pixel spikes with
  probability ``P_ON`` per step, an "off" pixel with ``P_OFF``).
* 16 hidden LIF neurons, 4 per class. Each is a template detector: excitatory synapses from
  a random 75 % of its class's pixels, inhibitory ones from every pixel outside the pattern.
  Each routes its spikes to an internal axon (delay one step).
* 4 output neurons in one winner-take-all group: excited by the 4 hidden neurons of their
  class, inhibited by the others. At most one output fires per step.

A few noisy samples of the four patterns are run with ``golden.run_batch`` (learning off,
samples in parallel threads) and one by one with ``golden.run`` (timed both ways), then once
more recording every neuron's spikes; batch and single runs must agree. The predicted class of a sample is the output that spiked most.

Later this becomes the full flow (ANN -> SNN conversion -> compile -> RTL co-simulation);
:func:`run_demo` returns a plain dict so further stages can add their own sections.
"""
from __future__ import annotations

import time

import numpy as np

from ..hw.config import CoreConfig
from ..hw.program import CoreProgram, NeuronParams

__all__ = ["PATTERNS", "CLASSES", "build_network", "make_inputs", "run_demo", "format_demo"]

# Four handcrafted 8x8 patterns ('#' = on).
PATTERNS: dict[str, tuple[str, ...]] = {
    "X": ("#......#",
          ".#....#.",
          "..#..#..",
          "...##...",
          "...##...",
          "..#..#..",
          ".#....#.",
          "#......#"),
    "O": ("..####..",
          ".#....#.",
          "#......#",
          "#......#",
          "#......#",
          "#......#",
          ".#....#.",
          "..####.."),
    "T": ("########",
          "########",
          "...##...",
          "...##...",
          "...##...",
          "...##...",
          "...##...",
          "...##..."),
    "L": ("##......",
          "##......",
          "##......",
          "##......",
          "##......",
          "##......",
          "########",
          "########"),
}
CLASSES = tuple(PATTERNS)

SIDE = 8
N_INPUTS = SIDE * SIDE
HIDDEN_PER_CLASS = 4
P_ON, P_OFF = 0.30, 0.02        # spike probability per step of an on / off pixel
FLIP = 0.05                     # fraction of pixels flipped in each sample
KEEP = 0.75                     # fraction of its pattern's pixels a hidden neuron listens to
EXCITATION = 96                 # sum of a hidden neuron's excitatory weights
INHIBITION = -4                 # weight from a pixel outside the pattern
HIDDEN = dict(threshold=64, leak_shift=2, refractory=2)
OUT_EXCITE, OUT_INHIBIT = 16, -8
OUTPUT = dict(threshold=24, leak_shift=1, refractory=1, wta_group=1)
REPEATS = 3                     # timed repetitions; the best is reported


def pattern_bits(name: str) -> np.ndarray:
    """The pattern as a bool vector of 64 pixels, row-major."""
    return np.array([c == "#" for row in PATTERNS[name] for c in row], bool)


def build_network(config: CoreConfig | None = None, seed: int = 0) -> CoreProgram:
    """The 64 -> 16 -> 4 (WTA) classifier as a validated ``CoreProgram``.

    Neurons ``0..15`` are hidden (class ``i // 4``), ``16..19`` the outputs (class ``i - 16``).
    Axons ``0..63`` are pixels, ``64..79`` carry the hidden neurons' spikes.
    """
    config = config or CoreConfig()
    rng = np.random.default_rng(seed)
    n_classes, n_hidden = len(CLASSES), len(CLASSES) * HIDDEN_PER_CLASS
    axon, target, weight = [], [], []
    for h in range(n_hidden):
        on = pattern_bits(CLASSES[h // HIDDEN_PER_CLASS])
        pixels = np.flatnonzero(on)
        chosen = rng.choice(pixels, size=max(1, round(KEEP * len(pixels))), replace=False)
        w_on = min(config.weight_range[1], max(1, round(EXCITATION / len(chosen))))
        for p in sorted(chosen):
            axon.append(p), target.append(h), weight.append(w_on)
        for p in np.flatnonzero(~on):
            axon.append(p), target.append(h), weight.append(INHIBITION)
    for h in range(n_hidden):
        for c in range(n_classes):
            axon.append(N_INPUTS + h), target.append(n_hidden + c)
            weight.append(OUT_EXCITE if h // HIDDEN_PER_CLASS == c else OUT_INHIBIT)
    neurons = NeuronParams.uniform(n_hidden + n_classes, threshold=1)
    for name in ("threshold", "leak_shift", "refractory", "wta_group"):
        values = getattr(neurons, name)
        values[:n_hidden] = HIDDEN.get(name, 0)
        values[n_hidden:] = OUTPUT.get(name, 0)
    route = np.full(n_hidden + n_classes, -1)
    route[:n_hidden] = N_INPUTS + np.arange(n_hidden)
    return CoreProgram.from_synapses(
        config, n_inputs=N_INPUTS, n_axons=N_INPUTS + n_hidden, axon=axon, target=target,
        weight=weight, neurons=neurons, route=route, outputs=n_hidden + np.arange(n_classes))


def make_inputs(samples: int, steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noisy rate-coded samples, classes in turn: ``(labels[B], images bool[B, 64], spikes bool[B, T, 64])``."""
    rng = np.random.default_rng(seed + 1)
    labels = np.arange(samples) % len(CLASSES)
    images = np.stack([pattern_bits(CLASSES[c]) for c in labels])
    images ^= rng.random(images.shape) < FLIP
    rates = np.where(images, P_ON, P_OFF)
    spikes = rng.random((samples, steps, N_INPUTS)) < rates[:, None, :]
    return labels, images, spikes


def run_demo(steps: int = 64, seed: int = 0, samples: int = 8) -> dict:
    """Build the network, run ``samples`` samples of ``steps`` steps, return the report."""
    from ..sim import golden

    if steps < 1 or samples < 1:
        raise ValueError(f"steps and samples must be at least 1, got steps={steps}, samples={samples}")
    t0 = time.perf_counter()
    program = build_network(seed=seed)
    labels, images, inputs = make_inputs(samples, steps, seed)
    build_s = time.perf_counter() - t0

    # First calls: numba compiles the kernels (or loads them from its on-disk cache).
    t0 = time.perf_counter()
    golden.run(program, inputs[0])
    golden.run_batch(program, inputs[:1])
    first_call_s = time.perf_counter() - t0

    # Steady state, best of REPEATS: the whole batch in one call (samples in parallel
    # threads), and the samples one by one with ``run``.
    batch_s, sequential_s = [], []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        batch = golden.run_batch(program, inputs)
        batch_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for b in range(samples):
            golden.run(program, inputs[b])
        sequential_s.append(time.perf_counter() - t0)
    batch_s, sequential_s = min(batch_s), min(sequential_s)

    # The same samples once more, recording every neuron; they must match the batch.
    singles = [golden.run(program, inputs[b], record_neurons=True) for b in range(samples)]
    consistent = all(np.array_equal(r.spikes, batch.spikes[b]) and r.sops == batch.sops[b]
                     for b, r in enumerate(singles))

    n_hidden = len(CLASSES) * HIDDEN_PER_CLASS
    out_counts = batch.spikes.sum(axis=1)                       # [B, n_classes]
    hidden_counts = np.stack([r.neuron_spikes[:, :n_hidden].sum(axis=0) for r in singles])
    rows = []
    for b in range(samples):
        counts = out_counts[b]
        best = np.flatnonzero(counts == counts.max())
        predicted = CLASSES[int(best[0])] if counts.max() > 0 and len(best) == 1 else None
        rows.append({
            "label": CLASSES[labels[b]],
            "predicted": predicted,
            "correct": predicted == CLASSES[labels[b]],
            "output_spikes": counts.tolist(),
            "hidden_spikes": int(hidden_counts[b].sum()),
            "input_spikes": int(inputs[b].sum()),
            "sops": int(batch.sops[b]),
        })

    total_sops = int(batch.sops.sum())
    neuron_updates = samples * steps * program.n_neurons
    mode, best_s = min((("batch", batch_s), ("sequential", sequential_s)), key=lambda m: m[1])
    best_s = max(best_s, 1e-9)
    cfg = program.config
    return {
        "demo": "pattern classifier on the golden model",
        "config": {**cfg.to_dict(), "hash": cfg.hash()},
        "network": {
            "inputs": N_INPUTS,
            "hidden": n_hidden,
            "outputs": len(CLASSES),
            "classes": list(CLASSES),
            "neurons": program.n_neurons,
            "axons": program.n_axons,
            "synapses": program.n_synapses,
            "wta_groups": 1,
            "layers": f"{N_INPUTS} inputs -> {n_hidden} LIF -> {len(CLASSES)} WTA",
        },
        "stimulus": {"samples": samples, "steps": steps, "seed": seed, "p_on": P_ON,
                     "p_off": P_OFF, "pixel_flip": FLIP},
        "samples": rows,
        "output_spike_counts": dict(zip(CLASSES, out_counts.sum(axis=0).tolist())),
        "hidden_spike_counts": hidden_counts.sum(axis=0).tolist(),
        "accuracy": sum(r["correct"] for r in rows) / samples,
        "sops": total_sops,
        "batch_matches_single_runs": bool(consistent),
        "timing": {
            "build_s": build_s,
            "first_call_s": first_call_s,
            "batch_s": batch_s,
            "sequential_s": sequential_s,
            "repeats": REPEATS,
            "mode": mode,
            "sops_per_s": total_sops / best_s,
            "neuron_updates_per_s": neuron_updates / best_s,
        },
        "raster": {
            "sample": 0,
            # one string per neuron, one character per step: "|" spike, "." none
            "neurons": ["".join("|" if f else "." for f in row) for row in singles[0].neuron_spikes.T],
        },
    }


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def format_demo(result: dict) -> str:
    """The report of :func:`run_demo` as text for a terminal."""
    cfg, net, stim, tm = result["config"], result["network"], result["stimulus"], result["timing"]
    features = "+".join(f for f in ("learning", "wta", "adaptive_threshold") if cfg[f]) or "none"
    lines = [
        f"neurocore demo: {result['demo']}",
        "",
        f"core config : {cfg['neurons']} neurons, {cfg['axons']} axons, {cfg['synapses']} synapses; "
        f"W={cfg['weight_bits']} V={cfg['membrane_bits']} C={cfg['accumulator_bits']} "
        f"X={cfg['trace_bits']} bits; {cfg['wta_groups']} WTA groups; {features} "
        f"(hash {cfg['hash'][:12]})",
        f"network     : {net['layers']}: {net['neurons']} neurons, {net['axons']} axons, "
        f"{net['synapses']} synapses",
        f"stimulus    : {stim['samples']} samples x {stim['steps']} steps, rate coded "
        f"(p_on={stim['p_on']}, p_off={stim['p_off']}, {stim['pixel_flip']:.0%} pixels flipped), "
        f"seed {stim['seed']}",
        "",
        "patterns    :",
        "  " + "   ".join(f"{c:^{SIDE}}" for c in net["classes"]),
    ]
    for r in range(SIDE):
        lines.append("  " + "   ".join(PATTERNS[c][r].replace(".", " ")
                                       for c in net["classes"]))
    lines += ["", f"  sample  label  output spikes {' '.join(f'{c:>3}' for c in net['classes'])}"
                  "  hidden  SOPs  predicted"]
    for i, row in enumerate(result["samples"]):
        mark = "ok" if row["correct"] else ("no decision" if row["predicted"] is None else "WRONG")
        lines.append(f"  {i:>6}  {row['label']:>5}  {'':13} "
                     f"{' '.join(f'{n:>3}' for n in row['output_spikes'])}  {row['hidden_spikes']:>6}"
                     f"  {row['sops']:>4}  {row['predicted'] or '-':>9} {mark}")
    correct = sum(r["correct"] for r in result["samples"])
    totals = ", ".join(f"{c}: {n}" for c, n in result["output_spike_counts"].items())
    lines += [
        "",
        f"accuracy    : {correct}/{len(result['samples'])}",
        f"out spikes  : {totals}",
        f"golden model: {result['sops']} synaptic ops, {tm['sops_per_s']:.3g} SOP/s, "
        f"{tm['neuron_updates_per_s']:.3g} neuron updates/s ({tm['mode']}, best of {tm['repeats']})",
        f"timing      : first call {_ms(tm['first_call_s'])} (includes numba compile or cache load); "
        f"then {_ms(tm['batch_s'])} per batch call (parallel samples), "
        f"{_ms(tm['sequential_s'])} for {len(result['samples'])} sequential runs",
        "check       : batch and single-sample runs "
        + ("agree" if result["batch_matches_single_runs"] else "DISAGREE"),
    ]
    raster = result["raster"]["neurons"]
    n_hidden = net["hidden"]
    width = min(len(raster[0]), 64)
    lines += ["", f"spikes of sample {result['raster']['sample']} "
                  f"(label {result['samples'][0]['label']}), first {width} steps:"]
    for n, row in enumerate(raster):
        if n < n_hidden:
            name = f"h{n:<2} {net['classes'][n // HIDDEN_PER_CLASS]}"
        else:
            name = f"out {net['classes'][n - n_hidden]}"
        lines.append(f"  {name:<6} " + row[:width])
    return "\n".join(line.rstrip() for line in lines)
