"""Evaluate a compiled network on a dataset with the golden model (learning off).

Each sample is encoded on its own, so its spike train depends only on ``(seed, sample
index)`` and not on the batch size or on the other samples: sample ``i`` uses the encoder
seed ``SeedSequence([seed, i]).generate_state(1)[0]`` (deterministic encoders ignore it).
Samples are run in batches with :func:`neurocore.sim.golden.run_batch` (state cleared
before every sample, samples in parallel threads) and decoded with
:meth:`CompiledNetwork.decode`.
"""
from __future__ import annotations

import numpy as np

from .compiler import CompiledNetwork

__all__ = ["evaluate", "sample_seed", "encode_samples", "layer_spike_rates", "RECORD_BUDGET"]

#: At most this many spike flags (batch x steps x neurons) per batch when every neuron is recorded.
RECORD_BUDGET = 1 << 26


def sample_seed(seed: int, index: int) -> int:
    """The encoder seed of sample ``index`` for the evaluation seed ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def encode_samples(x: np.ndarray, steps: int, encoder: str, seed: int, first_index: int = 0,
                   **encoder_kwargs) -> np.ndarray:
    """Spike trains ``bool[n, steps, f]`` of the rows of ``x`` (row ``j`` is sample ``first_index + j``)."""
    from .encoders import encode

    out = np.empty((len(x), steps, x.shape[1]), np.bool_)
    for j in range(len(x)):
        out[j] = encode(encoder, x[j:j + 1], steps, seed=sample_seed(seed, first_index + j),
                        **encoder_kwargs)[0]
    return out


def evaluate(compiled, x, y, *, steps: int, encoder: str = "rate", seed: int = 0,
             batch_size: int = 256, progress: bool = False, encoder_kwargs: dict | None = None,
             layer_rates: bool = False) -> dict:
    """Classify ``x`` (float ``[n, f]`` in [0, 1]) on the golden model and score against ``y``.

    ``compiled`` is a :class:`~neurocore.sw.compiler.CompiledNetwork` (one core) or a
    :class:`~neurocore.sw.partition.CompiledChip` (the golden chip model; the result then
    gains ``mean_packets``, the remote spikes per sample).

    Returns a dict: ``accuracy``, ``n_samples``, ``steps``, ``encoder``, ``seed``,
    ``n_classes``, ``correct``, ``mean_output_spikes`` (output spikes per sample),
    ``mean_input_spikes``, ``mean_sops`` (synaptic operations per sample),
    ``silent_fraction`` (samples without any output spike; they decode to class 0 under the
    count rule), ``confusion_matrix`` (``[true][predicted]``, list of lists) and
    ``predictions`` (list of int).

    ``layer_rates`` also counts the spikes of every neuron, in the same run: the program is
    run with every neuron as an output column (its own outputs first, so the decoding is
    unchanged; which neurons are reported changes nothing else in the core) and the result
    gains ``spike_rates`` (:func:`layer_spike_rates`). Batches then hold at most
    ``RECORD_BUDGET`` spike flags (``batch x steps x neurons``).
    """
    from ..sim import golden, golden_chip
    from .partition import CompiledChip

    on_chip = isinstance(compiled, CompiledChip)
    if on_chip and layer_rates:
        raise ValueError("evaluate: layer_rates is not available for a chip (run a core image for them)")
    x = np.asarray(x)
    y = np.asarray(y).reshape(-1)
    if x.ndim != 2:
        raise ValueError(f"evaluate: x must be [n_samples, n_features], got shape {x.shape}")
    if x.shape[1] != compiled.input_axons:
        raise ValueError(f"evaluate: the samples have {x.shape[1]} features but the network has "
                         f"{compiled.input_axons} input axons")
    if len(y) != len(x):
        raise ValueError(f"evaluate: {len(x)} samples but {len(y)} labels")
    if len(x) == 0:
        raise ValueError("evaluate: no samples")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError("evaluate: labels y must be non-negative integers")
    if compiled.n_outputs == 0:
        raise ValueError("evaluate: the network has no output neurons")
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise ValueError(f"evaluate: steps must be a positive integer, got {steps!r}")
    if batch_size < 1:
        raise ValueError(f"evaluate: batch_size must be positive, got {batch_size}")
    steps = int(steps)
    encoder_kwargs = encoder_kwargs or {}
    n = len(x)
    predictions = np.zeros(n, np.int64)
    out_spikes = np.zeros(n, np.int64)
    in_spikes = np.zeros(n, np.int64)
    sops = np.zeros(n, np.int64)
    program = None if on_chip else compiled.program
    packets = np.zeros(n, np.int64)
    n_out = compiled.n_outputs
    if layer_rates:
        program, columns = _all_neurons_reported(program)
        batch_size = max(1, min(batch_size, RECORD_BUDGET // (steps * program.n_neurons)))
        neuron_counts = np.zeros(program.n_neurons, np.int64)
    starts = range(0, n, batch_size)
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc="evaluate", unit="batch", total=-(-n // batch_size))
    for start in starts:
        stop = min(n, start + batch_size)
        inputs = encode_samples(x[start:stop], steps, encoder, seed, start, **encoder_kwargs)
        if on_chip:
            result = golden_chip.run_chip_batch(compiled.chip, inputs, learn=False)
            packets[start:stop] = result.packets
        else:
            result = golden.run_batch(program, inputs, learn=False)
        outputs = result.spikes[:, :, :n_out]
        if layer_rates:
            neuron_counts[columns] += np.count_nonzero(result.spikes, axis=(0, 1))
        predictions[start:stop] = compiled.decode(outputs)
        out_spikes[start:stop] = outputs.sum(axis=(1, 2))
        in_spikes[start:stop] = inputs.sum(axis=(1, 2))
        sops[start:stop] = result.sops
    k = max(compiled.n_classes, int(y.max()) + 1, int(predictions.max()) + 1)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (y.astype(np.int64), predictions), 1)
    correct = int((predictions == y).sum())
    extra = {"mean_packets": float(packets.mean())} if on_chip else {}
    if layer_rates:
        extra["spike_rates"] = layer_spike_rates(compiled, neuron_counts, n_samples=n, steps=steps,
                                                 input_spikes=int(in_spikes.sum()))
    return {
        "accuracy": correct / n,
        "correct": correct,
        "n_samples": n,
        "steps": steps,
        "encoder": encoder,
        "seed": int(seed),
        "n_classes": k,
        "mean_output_spikes": float(out_spikes.mean()),
        "mean_input_spikes": float(in_spikes.mean()),
        "mean_sops": float(sops.mean()),
        "silent_fraction": float((out_spikes == 0).mean()),
        "confusion_matrix": confusion.tolist(),
        "predictions": predictions.tolist(),
        **extra,
    }


def _all_neurons_reported(program):
    """``(program with every neuron an output, core neuron of each output column)``: the
    program's own outputs first, then the other neurons in increasing order."""
    import dataclasses

    rest = np.setdiff1d(np.arange(program.n_neurons), program.outputs)
    columns = np.concatenate([np.asarray(program.outputs, np.int64), rest.astype(np.int64)])
    return dataclasses.replace(program, outputs=columns), columns


def layer_spike_rates(compiled: CompiledNetwork, neuron_counts, *, n_samples: int, steps: int,
                      input_spikes: int) -> dict:
    r"""Per-layer activity from the spike count of every core neuron over a whole evaluation.

    ``neuron_counts[i]`` is the number of spikes of core neuron ``i`` summed over the
    ``n_samples`` samples of ``steps`` steps each. For a layer ``L`` of ``|L|`` neurons
    (``compiled.layers``, in order):

    .. math::  \mathrm{rate}_L = \frac{\sum_{i \in L} c_i}{n_\mathrm{samples}\, T\, |L|}

    the mean spikes per neuron per step; ``spikes_per_sample`` is ``sum c_i / n_samples``
    and ``silent_fraction`` the fraction of its neurons that never spiked. ``input`` is
    the same rate of the host input axons (``input_spikes`` in all).

    Returns ``{"steps", "n_samples", "input", "layers": [{"name", "neurons", "rate",
    "spikes_per_sample", "silent_fraction"}, ...]}``.
    """
    counts = np.asarray(neuron_counts, np.int64)
    layers = []
    for name, (first, size) in compiled.layers.items():
        c = counts[first:first + size]
        layers.append({"name": name, "neurons": int(size),
                       "rate": float(c.sum() / (n_samples * steps * size)) if size else 0.0,
                       "spikes_per_sample": float(c.sum() / n_samples),
                       "silent_fraction": float((c == 0).mean()) if size else 0.0})
    n_inputs = compiled.input_axons
    return {"steps": int(steps), "n_samples": int(n_samples),
            "input": float(input_spikes / (n_samples * steps * n_inputs)) if n_inputs else 0.0,
            "layers": layers}
