"""PNG plots of a compiled network's activity, for ``neurocore demo`` and ``neurocore run --plot``.

Every function draws with matplotlib's Agg backend (no display needed), writes one PNG
(creating its folder, whose parent must exist) and returns its path:

* :func:`accuracy_curve`: accuracy versus time steps of a
  :func:`neurocore.sw.convert.pipeline.convert_dataset` result (the float ANN as a line,
  the SNN on the golden model as points; :func:`~neurocore.sw.convert.pipeline.plot_curve`);
* :func:`spike_raster`: every spike of one sample, host inputs and each layer, coloured by
  layer (``CompiledNetwork.layers``);
* :func:`membrane_traces`: the membrane potential ``v`` of a few neurons, step by step,
  with their thresholds and spikes;
* :func:`confusion_matrix`: true versus predicted class, counts in the cells;
* :func:`spike_rate_bars`: the mean spikes per neuron per step of every layer of a
  ``convert_dataset`` result (its ``spike_rates``), one bar per layer, the input first;
* :func:`convert_plots`: the accuracy curve and the spike rates of one ``convert_dataset``
  result into a folder (``neurocore convert --plot-dir``).

:func:`sample_activity` gets the data of the two middle plots from the golden model: the
spikes of every neuron from one ``golden.run(..., record_neurons=True)``, and ``v`` by
running the same sample one step at a time (``golden.run(program, inputs[t:t+1],
state=state)``, reading ``result.state.v``; the model does not record ``v`` per step). Both
runs must give the same spikes. :func:`sample_plots` draws both plots for one sample.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["SampleActivity", "sample_activity", "accuracy_curve", "spike_raster", "membrane_traces",
           "confusion_matrix", "pick_neurons", "sample_plots", "spike_rate_bars", "convert_plots", "PLOT_FILES",
           "CONVERT_PLOT_FILES"]

# File names of the plots in a report directory.
PLOT_FILES = {
    "accuracy": "accuracy-vs-steps.png",
    "raster": "spike-raster.png",
    "membrane": "membrane-traces.png",
    "confusion": "confusion-matrix.png",
}
# File names of the plots of ``neurocore convert --plot-dir``.
CONVERT_PLOT_FILES = {"accuracy": PLOT_FILES["accuracy"], "spike_rates": "spike-rates.png"}

_INPUT_COLOUR = "0.45"


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(exist_ok=True)   # one level: a mistyped path does not grow folders
    fig.savefig(path)
    _pyplot().close(fig)
    return path


class SampleActivity:
    """One sample on the golden model: ``inputs`` bool ``[T, n_inputs]``, ``spikes`` bool
    ``[T, n_neurons]`` and ``v`` int ``[T, n_neurons]`` (after each step), ``sops``."""

    def __init__(self, inputs: np.ndarray, spikes: np.ndarray, v: np.ndarray, sops: int):
        self.inputs, self.spikes, self.v, self.sops = inputs, spikes, v, int(sops)

    @property
    def steps(self) -> int:
        return int(self.inputs.shape[0])


def sample_activity(program, inputs) -> SampleActivity:
    """Run one sample (bool ``[T, n_inputs]``, from a cleared state, learning off).

    Raises ``RuntimeError`` if the step-by-step run disagrees with the whole run.
    """
    from ..sim import golden

    inputs = np.asarray(inputs, bool)
    whole = golden.run(program, inputs, record_neurons=True)
    v = np.zeros((inputs.shape[0], program.n_neurons), np.int64)
    spikes = np.zeros_like(whole.neuron_spikes)
    state, sops = None, 0
    for t in range(inputs.shape[0]):
        step = golden.run(program, inputs[t:t + 1], state=state, record_neurons=True)
        state = step.state
        v[t] = state.v
        spikes[t] = step.neuron_spikes[0]
        sops += step.sops
    if not np.array_equal(spikes, whole.neuron_spikes) or sops != whole.sops:
        raise RuntimeError("golden model: running one step at a time gave other spikes than one run")
    return SampleActivity(inputs, whole.neuron_spikes, v, whole.sops)


def accuracy_curve(result: dict, path, *, title: str | None = None) -> Path:
    """Accuracy vs T of a ``convert_dataset`` result (its ``curve`` and ``ann_accuracy``)."""
    from ..sw.convert.pipeline import plot_curve

    if not result.get("curve"):
        raise ValueError("accuracy_curve: the result has no accuracy-vs-T curve")
    title = title or (f"{result['dataset']}: float ANN vs int{result['weight_bits']} SNN "
                      f"({result['n_test']} test samples)")
    return plot_curve(result, path, title=title)


def _layer_colours(names):
    plt = _pyplot()
    cmap = plt.get_cmap("tab10")
    return {name: cmap(i % 10) for i, name in enumerate(names)}


def spike_raster(compiled, activity: SampleActivity, path, *, title: str | None = None) -> Path:
    """Raster of one sample: host inputs at the bottom, then each layer (its neurons in order)."""
    plt = _pyplot()
    steps = activity.steps
    n_in = activity.inputs.shape[1]
    groups = [("input", 0, n_in, activity.inputs)]
    offset = n_in
    for name, (first, size) in compiled.layers.items():
        groups.append((name, offset, size, activity.spikes[:, first:first + size]))
        offset += size
    colours = _layer_colours([g[0] for g in groups[1:]])
    height = min(9.0, 2.5 + offset / 40)
    fig, ax = plt.subplots(figsize=(8.5, height), dpi=120)
    ticks, labels = [], []
    for name, base, size, spikes in groups:
        t, n = np.nonzero(spikes)
        colour = _INPUT_COLOUR if name == "input" else colours[name]
        ax.scatter(t, base + n, marker="|", s=max(8, min(60, 3000 / max(offset, 1))), linewidths=1.0,
                   color=colour)
        if base:
            ax.axhline(base - 0.5, color="0.8", linewidth=0.8)
        ticks.append(base + (size - 1) / 2)
        labels.append(f"{name}\n{size} {'axons' if name == 'input' else 'neurons'}\n"
                      f"{int(spikes.sum())} spikes")
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels, fontsize=8)
    for tick, (name, *_rest) in zip(ax.get_yticklabels(), groups):
        tick.set_color(_INPUT_COLOUR if name == "input" else colours[name])
    ax.set_ylim(-0.5, offset - 0.5)
    ax.set_xlim(-0.5, steps - 0.5)
    ax.set_xticks(range(0, steps, max(1, steps // 16)))
    ax.set_xlabel("time step")
    ax.set_title(title or "spikes of one sample", fontsize=10)
    ax.grid(True, axis="x", alpha=0.2)
    fig.tight_layout()
    return _save(fig, path)


def pick_neurons(compiled, activity: SampleActivity, count: int = 4) -> list[int]:
    """Neurons worth tracing: the two busiest output neurons, then per other layer its busiest
    neuron and one firing about every fourth step, up to ``count`` (ties: the highest peak ``v``)."""
    counts = activity.spikes.sum(axis=0)
    peak = activity.v.max(axis=0)
    outputs = [n for name in compiled.output_layers
               for n in range(compiled.layers[name][0], sum(compiled.layers[name]))]
    hidden = [name for name in compiled.layers if name not in compiled.output_layers]

    def busiest(neurons, k):
        return sorted(neurons, key=lambda n: (-counts[n], -peak[n], n))[:k]

    chosen = busiest(outputs, min(2, count))
    for name in hidden:
        # the busiest neuron of the layer, and one that fires about every fourth step
        first, size = compiled.layers[name]
        layer = range(first, first + size)
        quarter = min(layer, key=lambda n: (abs(counts[n] - activity.steps / 4), -peak[n], n))
        chosen += [n for n in dict.fromkeys(busiest(layer, 1) + [quarter]) if n not in chosen]
    rest = busiest([n for n in range(compiled.program.n_neurons) if n not in chosen], count)
    return (chosen + rest)[:count]


def membrane_traces(compiled, activity: SampleActivity, path, *, neurons=None,
                    title: str | None = None) -> Path:
    """``v`` after every step of a few neurons (default :func:`pick_neurons`), one panel each,
    with the firing threshold (dashed) and the steps in which the neuron spiked (markers)."""
    plt = _pyplot()
    program = compiled.program
    neurons = pick_neurons(compiled, activity) if neurons is None else [int(n) for n in neurons]
    if not neurons:
        raise ValueError("membrane_traces: no neurons to trace")
    colours = _layer_colours(list(compiled.layers))
    fig, axes = plt.subplots(len(neurons), 1, figsize=(8.5, 1.7 * len(neurons) + 0.8), dpi=120,
                             sharex=True, squeeze=False)
    for ax, n in zip(axes[:, 0], neurons):
        layer, index = compiled.layer_of(n)
        threshold = int(program.neurons.threshold[n]) + int(program.theta[n])
        colour = colours[layer]
        # v after step t is drawn over [t, t + 1)
        ax.step(np.arange(activity.steps + 1), np.append(activity.v[:, n], activity.v[-1, n]),
                where="post", color=colour, linewidth=1.4)
        ax.axhline(threshold, color="k", linestyle="--", linewidth=0.8)
        fired = np.flatnonzero(activity.spikes[:, n])
        ax.plot(fired, np.full(len(fired), threshold), "v", color="crimson", markersize=6,
                label="spike" if len(fired) else None)
        ax.set_ylabel("v", fontsize=8)
        ax.set_title(f"{layer} neuron {index} (core neuron {n}): {len(fired)} spikes, "
                     f"threshold {threshold}", fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.25)
    axes[-1, 0].set_xlabel("time step (v after the step: reset by subtraction after a spike)")
    axes[-1, 0].set_xlim(-0.3, activity.steps + 0.3)
    fig.suptitle(title or "membrane potentials", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def confusion_matrix(matrix, path, *, labels=None, title: str | None = None) -> Path:
    """Confusion matrix ``[true][predicted]`` (counts), with the per-class recall on the right."""
    plt = _pyplot()
    m = np.asarray(matrix, np.int64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"confusion_matrix: expected a square matrix, got shape {m.shape}")
    k = m.shape[0]
    labels = [str(i) for i in range(k)] if labels is None else [str(x) for x in labels]
    total = int(m.sum())
    accuracy = np.trace(m) / total if total else 0.0
    size = min(8.0, 2.5 + 0.45 * k)
    fig, ax = plt.subplots(figsize=(size + 0.3, size), dpi=120)
    ax.imshow(m, cmap="Blues", vmin=0)
    high = m.max() / 2 if m.max() else 1
    for i in range(k):
        for j in range(k):
            if m[i, j]:
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=max(5, 10 - k // 4),
                        color="white" if m[i, j] > high else "black")
    ax.set_xticks(range(k))
    ax.set_xticklabels(labels)
    ax.set_yticks(range(k))
    ax.set_yticklabels(labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    recall = [f"{100 * m[i, i] / m[i].sum():.0f} %" if m[i].sum() else "-" for i in range(k)]
    right = ax.secondary_yaxis("right")
    right.set_yticks(range(k))
    right.set_yticklabels(recall, fontsize=7)
    right.set_ylabel("recall", fontsize=8)
    ax.set_title(title or f"confusion matrix: {100 * accuracy:.2f} % of {total} correct", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def sample_plots(compiled, inputs, out_dir, *, label=None, name: str = "sample 0") -> dict[str, Path]:
    """Raster and membrane traces of one sample (bool ``[T, n_inputs]``) into ``out_dir``.

    Returns ``{"raster": path, "membrane": path}`` (file names from :data:`PLOT_FILES`).
    """
    activity = sample_activity(compiled.program, inputs)
    outputs = activity.spikes[:, compiled.program.outputs]
    predicted = int(compiled.decode(outputs[None])[0])
    what = f"{name}" + (f", label {label}" if label is not None else "") + f", predicted {predicted}"
    out_dir = Path(out_dir)
    return {
        "raster": spike_raster(compiled, activity, out_dir / PLOT_FILES["raster"],
                               title=f"spikes of {what} ({activity.steps} steps, {activity.sops} "
                                     f"synaptic ops)"),
        "membrane": membrane_traces(compiled, activity, out_dir / PLOT_FILES["membrane"],
                                    title=f"membrane potentials, {what}"),
    }


def spike_rate_bars(result: dict, path, *, title: str | None = None) -> Path:
    """Bar chart of a ``convert_dataset`` result's ``spike_rates``: the mean spikes per neuron
    per step of the host input and of every layer (in network order), each bar labelled
    with its rate, its neurons and its spikes per sample."""
    plt = _pyplot()
    rates = result.get("spike_rates")
    if not rates or not rates.get("layers"):
        raise ValueError("spike_rate_bars: the result has no per-layer spike rates")
    layers = rates["layers"]
    names = ["input"] + [layer["name"] for layer in layers]
    values = [rates["input"]] + [layer["rate"] for layer in layers]
    sizes = [result["n_features"]] + [layer["neurons"] for layer in layers]
    per_sample = [rates["input"] * rates["steps"] * result["n_features"]] + \
        [layer["spikes_per_sample"] for layer in layers]
    colours = _layer_colours(names[1:])
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(names) + 2), 3.8), dpi=100)
    bars = ax.bar(range(len(names)), values, color=[_INPUT_COLOUR] + [colours[n] for n in names[1:]])
    top = max(values) if max(values) > 0 else 1.0
    for bar, value, size, spikes in zip(bars, values, sizes, per_sample):
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 0.02 * top,
                f"{value:.3f}\n{spikes:,.0f} per sample", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([f"{n}\n{s:,} {'axons' if i == 0 else 'neurons'}" for i, (n, s) in
                        enumerate(zip(names, sizes))], fontsize=8)
    ax.set_ylim(0, top * 1.3)
    ax.set_ylabel("spikes per neuron per step")
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_title(title or f"{result['dataset']}: mean spike rates at T = {rates['steps']} "
                          f"({rates['n_samples']} test samples; spikes per sample under each rate)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _network_name(result: dict) -> str:
    """``"CNN 8-16"`` (its maps), ``"CNN 8-16, stride 2"``, ``"MLP 64-128-10"`` or ``"NIR network"``."""
    ann = result.get("ann", {})
    if result.get("arch") == "cnn":
        stride = ann.get("stride", 1)
        return "CNN " + "-".join(str(m) for m in ann.get("maps", ())) + \
            (f", stride {stride}" if stride != 1 else "")
    if result.get("arch") == "mlp":
        return "MLP " + "-".join(str(v) for v in [result["n_features"], *ann.get("hidden", ()), result["n_classes"]])
    return "NIR network"


def convert_plots(result: dict, out_dir) -> dict[str, str]:
    """The PNGs of one ``convert_dataset`` result in ``out_dir`` (created; its parent must
    exist): the accuracy-vs-T curve (if the result has one) and the per-layer spike rates.

    Returns ``{"accuracy": path, "spike_rates": path}`` (file names from
    :data:`CONVERT_PLOT_FILES`).
    """
    out_dir = Path(out_dir)
    arch = _network_name(result)
    files = {}
    if result.get("curve"):
        files["accuracy"] = accuracy_curve(
            result, out_dir / CONVERT_PLOT_FILES["accuracy"],
            title=f"{result['dataset']} {arch}: ANN vs int{result['weight_bits']} SNN")
    files["spike_rates"] = spike_rate_bars(
        result, out_dir / CONVERT_PLOT_FILES["spike_rates"],
        title=f"{result['dataset']} {arch}: mean spike rates at T = {result['spike_rates']['steps']} "
              f"({result['spike_rates']['n_samples']} test samples)")
    return {k: str(v) for k, v in files.items()}
