"""Train (or load) an ANN on a dataset, convert it, compile it, evaluate it on the golden model.

:func:`convert_dataset` is what ``neurocore convert`` runs:

1. **ANN.** ``arch="mlp"`` (the default): an ``sklearn.neural_network.MLPClassifier``
   (ReLU hidden units, Adam, fixed ``random_state=seed``) trained on the training split --
   or, with ``ann_path``, a fitted model loaded from a pickle/joblib file. ``arch="cnn"``:
   the small PyTorch CNN of :mod:`neurocore.sw.convert.cnn` (``maps`` feature maps per conv
   layer, ``epochs`` of Adam, seeded), read by :func:`~neurocore.sw.convert.frontends.from_torch`.
   Nothing is written unless asked: the trained MLP is saved only with ``save_ann``, the
   compiled image only with ``out``.
2. **Convert** (:func:`neurocore.sw.convert.quantize.convert`): percentile normalisation on
   (up to ``calib_samples`` of) the training data, per-layer quantisation to the core's
   ``weight_bits``, IF neurons with reset by subtraction. For the CNN two exact rewrites of
   the float graph come first (:mod:`neurocore.sw.convert.cnn`): the pooling before the
   dense readout is folded into it (:func:`~neurocore.sw.convert.cnn.fold_pooling`,
   ``fold``), and the readout's biases are lifted by one constant so that the winning
   output neuron spikes early (:func:`~neurocore.sw.convert.cnn.lift_readout`); neither
   changes the ANN's predictions.
3. **Compile** with :func:`neurocore.sw.compiler.compile_network` onto the default core
   (capacities raised if the network needs it) with the requested ``weight_bits``.
4. **Evaluate** the float ANN on the test split and the SNN with
   :func:`neurocore.sw.evaluate.evaluate` on the bit-exact golden model, at ``steps`` and
   for every ``T`` of ``curve_steps`` (the accuracy-vs-T curve).

**Time steps.** ``T`` is the number of core steps run per sample, counted from the first
input step: the input spike train is presented for steps ``0 .. T-1`` and the output
spikes of the same steps are counted. Every population adds one step of latency, so the
output layer of a network of ``L`` populations integrates only ``T - (L - 1)`` steps of
input (one hidden layer: ``T - 1``); nothing is hidden in extra, uncounted steps.
"""
from __future__ import annotations

import dataclasses
import pickle
import re
import time
import warnings
from pathlib import Path

import numpy as np

from . import cnn as cnn_mod
from .frontends import from_nir, from_sklearn, from_torch
from .graph import Graph
from .quantize import DEFAULT_PERCENTILE, Converted, convert

__all__ = ["ARCHS", "convert_dataset", "train_mlp", "load_ann", "save_ann", "rate_limit_predict", "plot_curve",
           "DEFAULT_HIDDEN", "DEFAULT_CURVE", "DEFAULT_STEPS"]

ARCHS = ("mlp", "cnn")
DEFAULT_HIDDEN = (128,)
DEFAULT_CURVE = (1, 2, 4, 8, 12, 16, 24, 32, 64)
DEFAULT_STEPS = 16
DEFAULT_MAX_ITER = 1000
DEFAULT_CALIB = 10000
# what MLPClassifier warns when its training loop catches a KeyboardInterrupt
_SKLEARN_INTERRUPTED = r"Training interrupted by user"


def train_mlp(x, y, *, hidden=DEFAULT_HIDDEN, seed: int = 0, max_iter: int = DEFAULT_MAX_ITER):
    """Fit ``MLPClassifier(hidden, activation="relu", random_state=seed)`` (Adam, sklearn defaults).

    BLAS runs single-threaded during the fit: for these small matrices thread start-up
    costs more than it saves (about 10x on a 2-core machine).

    Ctrl-C stops the training: scikit-learn catches the ``KeyboardInterrupt`` of its
    training loop and only warns ("Training interrupted by user."), keeping a half-trained
    network; that warning is turned back into ``KeyboardInterrupt`` here, so nothing is
    converted, written or reported after an interrupt.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    hidden = tuple(int(h) for h in hidden)
    if not hidden or min(hidden) < 1:
        raise ValueError(f"hidden must be one or more positive layer sizes, got {hidden}")
    model = MLPClassifier(hidden_layer_sizes=hidden, activation="relu", random_state=int(seed),
                          max_iter=int(max_iter))
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)   # reported as "converged": False
        warnings.filterwarnings("error", message=_SKLEARN_INTERRUPTED, category=UserWarning)
        try:
            model.fit(x, y)
        except UserWarning as exc:
            if re.match(_SKLEARN_INTERRUPTED, str(exc)):
                raise KeyboardInterrupt from None
            raise
    return model


def load_ann(path):
    """A fitted sklearn MLP from a pickle or joblib file (only load files you trust)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "no such file", str(path))
    try:
        import joblib
        model = joblib.load(path)
    except Exception:  # noqa: BLE001 - fall back to plain pickle, then report
        try:
            with path.open("rb") as f:
                model = pickle.load(f)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"cannot load an ANN from {path}: {type(exc).__name__}: {exc}") from None
    if not hasattr(model, "coefs_"):
        raise ValueError(f"{path} holds a {type(model).__name__}, not a fitted sklearn MLPClassifier")
    return model


def save_ann(model, path) -> Path:
    """Write ``model`` with joblib (creating parent directories)."""
    import joblib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return path


def rate_limit_predict(converted: Converted, x) -> np.ndarray:
    """Predictions of the integer network in the limit ``T -> infinity`` (no time, no spikes).

    Every population computes the rate ``clip((M_int a + bias) / theta, 0, 1)`` of its
    integer weights, bias and threshold (what its spike count tends to per step); the
    class is the argmax of the output rates, ties to the lowest index. It separates the
    error of quantisation and clipping from the error of finite ``T``.
    """
    from scipy.sparse import csr_matrix

    net = converted.network
    a = {"input": np.asarray(x, np.float64)}
    sizes = {p.name: p.size for p in net.populations} | {"input": net.n_inputs}
    for pop in net.populations:
        z = np.zeros((len(x), pop.size))
        for pr in net.projections:
            if pr.target == pop.name:
                m = csr_matrix((pr.weight.astype(np.float64), (pr.post, pr.pre)),
                               shape=(pop.size, sizes[pr.source]))
                z += np.asarray(m.dot(a[pr.source].T).T)
        a[pop.name] = np.clip((z + pop.params.bias) / pop.params.threshold, 0.0, 1.0)
    return a[net.outputs[0].name].argmax(axis=1)


def _steps_list(values) -> list[int]:
    steps = sorted({int(v) for v in values})
    if not steps or steps[0] < 1:
        raise ValueError(f"time steps must be positive integers, got {list(values)}")
    return steps


def convert_dataset(dataset: str = "digits", steps: int = DEFAULT_STEPS, weight_bits: int | None = None,
                    hidden=DEFAULT_HIDDEN, seed: int = 0, data_dir=None, ann_path=None, *,
                    encoder: str = "current", percentile: float = DEFAULT_PERCENTILE,
                    output_percentile: float | None = None, curve_steps=DEFAULT_CURVE,
                    calib_samples: int = DEFAULT_CALIB, max_iter: int = DEFAULT_MAX_ITER,
                    out=None, overwrite: bool = False, save_ann_path=None,
                    progress: bool = False, arch: str = "mlp", maps=None, epochs: int | None = None,
                    fold: str | None = None, readout_lift: float | None = None, stride: int | None = None,
                    shift: int | None = None, nir_path=None, keep_dynamics: bool = False, dt: float | None = None,
                    reset: str = "zero", tight: bool = False, core=None) -> dict:
    """Train-or-load, convert, compile and evaluate on ``dataset``; see the module docstring.

    ``weight_bits=None`` uses the core's default (``CoreConfig().weight_bits``, 8).
    ``encoder`` is ``"current"`` (deterministic constant-current spike trains, the default)
    or ``"rate"`` (Bernoulli, seeded by ``seed``). ``curve_steps`` are the ``T`` of the
    accuracy-vs-T curve (``steps`` is always included); ``()`` skips the curve. ``out``
    writes the compiled image directory (``overwrite`` to replace one).

    Returns a JSON-friendly dict with at least ``ann_accuracy``, ``snn_accuracy`` (test
    split, golden model, at ``steps``), ``steps``, ``weight_bits``, ``curve`` (a list of
    ``{"steps", "snn_accuracy", "mean_output_spikes", "mean_sops", "silent_fraction"}``),
    ``layers``, ``neurons``, ``synapses``, plus ``gap_points`` (``100 * (snn - ann)``),
    ``rate_limit_accuracy`` (:func:`rate_limit_predict`), the ANN's training details and
    the core config. Also ``arch``, ``synapse_words`` (words of the compiled synapse
    memory, the program's ``n_synapses``, conv kernels stored once; the same as
    ``synapses``), ``synapse_words_unshared`` (what the explicit per-position lowering needs,
    :func:`~neurocore.sw.convert.cnn.unshared_synapse_words`) and ``synapse_pairs`` (the
    number of ``(pre, post)`` connections of the converted network). ``spike_rates`` is the
    activity of every layer on the test split at the largest ``T`` evaluated, counted in
    that same golden-model run (:func:`neurocore.sw.evaluate.layer_spike_rates`: mean spikes
    per neuron per step, spikes per sample, the fraction of silent neurons; and the input's
    rate).

    ``arch="cnn"`` takes ``maps`` (default ``(8, 16)``), ``epochs`` (default 20), ``stride``
    (default 1: conv and 2x2 average pooling per block; 2 or 3: a strided conv, no pooling),
    ``shift`` (the training's random translation in pixels; default
    :func:`~neurocore.sw.convert.cnn.default_shift`, 2 on 28x28 images), ``fold``
    (``"none"``, ``"readout"`` or ``"all"``, see :func:`~neurocore.sw.convert.cnn.fold_pooling`)
    and ``readout_lift`` (see :func:`~neurocore.sw.convert.cnn.lift_readout`; 0 only lifts
    the weakest winning logit of the calibration data to 0); ``hidden``, ``ann_path`` and ``save_ann_path`` apply to the MLP only. Without torch
    it raises ``ImportError`` naming the extra (``pip install 'neurocore[torch]'``).

    ``nir_path`` imports a trained network from a NIR file instead of training one
    (:func:`load_nir_graph`; ``arch`` is then ``"nir"``): its float graph's test accuracy
    is ``ann_accuracy``, and it is calibrated on the training split and evaluated like
    the others. ``keep_dynamics`` (NIR only) keeps the file's LIF leak, threshold and reset
    instead (:func:`~neurocore.sw.convert.frontends.from_nir` with ``dt`` and ``reset``, then
    :func:`~neurocore.sw.convert.frontends.convert_dynamics`: no normalisation, so
    ``rate_limit_accuracy``, ``percentile`` and ``output_percentile`` are None); the report then
    adds ``keep_dynamics``, ``dt``, ``dt_source``, ``reset`` and ``dynamics`` (per layer the
    leak approximation, :meth:`~neurocore.sw.convert.frontends.NeuronDynamics.report`, and
    the integer threshold and scale).

    ``tight`` compiles onto the smallest core that runs the network
    (:func:`~neurocore.sw.compiler.choose_config` ``tight=True``: exact capacities, no learning,
    WTA or adaptive threshold, parameter classes) instead of the default core raised where needed.
    ``core`` (a :class:`~neurocore.hw.config.CoreConfig`) compiles onto that core instead:
    ``ValueError`` naming each capacity the network overflows, and by how much (after the
    conversion, before any evaluation); its ``weight_bits`` is the conversion's.
    """
    from ...hw.config import CoreConfig
    from ..compiler import choose_config, compile_network
    from ..datasets import load_dataset
    from ..encoders import ENCODERS
    from ..evaluate import evaluate

    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}")
    if nir_path is not None:
        if arch != "mlp" or ann_path is not None or save_ann_path is not None:
            raise ValueError("nir_path imports a trained network: it cannot be combined with arch 'cnn', "
                             "ann_path or save_ann_path")
        arch = "nir"
    if keep_dynamics and arch != "nir":
        raise ValueError("keep_dynamics keeps the LIF dynamics of a NIR file: it needs nir_path")
    if not keep_dynamics and (dt is not None or reset != "zero"):
        raise ValueError("dt and reset describe the dynamics: they need keep_dynamics")
    if arch == "cnn":
        cnn_mod.require_torch()
        maps = cnn_mod.check_maps(cnn_mod.DEFAULT_MAPS if maps is None else maps)
        epochs = cnn_mod.check_epochs(cnn_mod.DEFAULT_EPOCHS if epochs is None else epochs)
        stride = cnn_mod.check_stride(cnn_mod.DEFAULT_STRIDE if stride is None else stride)
        shift = None if shift is None else cnn_mod.check_shift(shift)   # None: from the image size
        fold = cnn_mod.DEFAULT_FOLD if fold is None else fold
        if fold not in cnn_mod.FOLD_CHOICES:
            raise ValueError(f"fold must be one of {', '.join(cnn_mod.FOLD_CHOICES)}, got {fold!r}")
        readout_lift = cnn_mod.DEFAULT_READOUT_LIFT if readout_lift is None else float(readout_lift)
        if not readout_lift >= 0:
            raise ValueError(f"readout_lift must be >= 0, got {readout_lift}")
        if ann_path is not None or save_ann_path is not None:
            raise ValueError("ann_path and save_ann_path load and save a scikit-learn MLP; they apply to "
                             "arch 'mlp' only")
    elif any(v is not None for v in (maps, epochs, fold, readout_lift, stride, shift)):
        raise ValueError("maps, epochs, fold, readout_lift, stride and shift apply to arch 'cnn' only")
    if encoder not in ("current", "rate"):
        known = ", ".join(ENCODERS)
        raise ValueError(f"encoder must be 'current' or 'rate' for converted networks, got {encoder!r} "
                         f"(encoders: {known})")
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps}")
    curve = _steps_list(list(curve_steps) + [steps]) if curve_steps else []
    if core is not None:
        if not isinstance(core, CoreConfig):
            raise ValueError(f"core must be a CoreConfig, got {type(core).__name__}")
        if tight:
            raise ValueError("give a core or tight, not both (tight chooses the core)")
        if weight_bits is not None and int(weight_bits) != core.weight_bits:
            raise ValueError(f"--weight-bits {weight_bits} differs from the core's weight_bits {core.weight_bits}")
        weight_bits = core.weight_bits
    weight_bits = CoreConfig().weight_bits if weight_bits is None else int(weight_bits)
    if out is not None:   # refuse a path that may not be written before the training, not after it
        from ..image_dir import check_image_path
        check_image_path(out, overwrite=overwrite)
    if nir_path is not None and not Path(nir_path).is_file():     # before loading anything
        raise ValueError(f"--nir {nir_path}: no such file")
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    data = load_dataset(dataset, data_dir)
    timings["load_s"] = time.perf_counter() - t0

    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=3 + max(1, len(curve)), desc="convert", unit="stage")

    def tick(label: str):
        if bar is not None:
            bar.set_postfix_str(label)
            bar.update(1)

    try:
        # 1. the ANN
        t0 = time.perf_counter()
        rng = np.random.default_rng(seed)
        calib = data.x_train
        if calib_samples and len(calib) > calib_samples:
            calib = calib[np.sort(rng.choice(len(calib), calib_samples, replace=False))]
        readout_shift = graph_accuracy = None
        model, trained = None, False
        if arch == "nir":
            dynamics = dict(keep_dynamics=True, dt=dt, reset=reset,
                            membrane_bits=CoreConfig().membrane_bits) if keep_dynamics else {}
            graph = ann_graph = load_nir_graph(nir_path, n_features=data.x_train.shape[1],
                                               n_classes=data.n_classes, dataset=dataset, **dynamics)
            timings["train_s"] = time.perf_counter() - t0
            ann_accuracy = graph_accuracy = float((graph.predict(data.x_test) == data.y_test).mean())
        elif arch == "cnn":
            input_shape = cnn_mod.dataset_input_shape(data)
            shift = cnn_mod.default_shift(input_shape) if shift is None else shift
            model, ann_accuracy = cnn_mod.train_cnn(data, maps=maps, epochs=epochs, seed=seed, stride=stride,
                                                    shift=shift, progress=progress)
            trained = True
            timings["train_s"] = time.perf_counter() - t0
            ann_graph = from_torch(model, input_shape=input_shape)
            graph = cnn_mod.fold_pooling(ann_graph, fold)
            graph, readout_shift = cnn_mod.lift_readout(graph, calib, lift=readout_lift)
            graph_accuracy = float((graph.predict(data.x_test) == data.y_test).mean())
        else:
            if ann_path is not None:
                model = load_ann(ann_path)
                trained = False
            else:
                model = train_mlp(data.x_train, data.y_train, hidden=hidden, seed=seed, max_iter=max_iter)
                trained = True
            timings["train_s"] = time.perf_counter() - t0
            n_features = int(model.coefs_[0].shape[0])
            if n_features != data.x_train.shape[1]:
                raise ValueError(f"the ANN takes {n_features} inputs but dataset {dataset!r} has "
                                 f"{data.x_train.shape[1]} features")
            n_out = int(model.coefs_[-1].shape[1])
            if n_out != data.n_classes:
                raise ValueError(f"the ANN has {n_out} outputs but dataset {dataset!r} has {data.n_classes} "
                                 "classes")
            if save_ann_path is not None:
                save_ann(model, save_ann_path)
            graph = ann_graph = from_sklearn(model)
            ann_pred = np.asarray(model.predict(data.x_test))
            ann_accuracy = float((ann_pred == data.y_test).mean())
        tick("ann")

        # 2. convert
        t0 = time.perf_counter()
        config = CoreConfig(weight_bits=weight_bits)
        encoding = {"kind": encoder, "steps": steps, "dataset": dataset}
        if keep_dynamics:
            from .frontends import convert_dynamics
            converted = convert_dynamics(graph, weight_bits=weight_bits, config=config, encoding=encoding,
                                         n_classes=data.n_classes)
        else:
            converted = convert(graph, calib, weight_bits=weight_bits, config=config, percentile=percentile,
                                output_percentile=output_percentile, encoding=encoding, n_classes=data.n_classes)
        timings["convert_s"] = time.perf_counter() - t0
        tick("convert")

        # 3. compile: the default core (capacities raised if needed) with the chosen weight width
        t0 = time.perf_counter()
        if core is not None:
            config = core
        else:
            config = choose_config(converted.network, tight=tight)
            config = dataclasses.replace(config, weight_bits=weight_bits,
                                         accumulator_bits=max(config.accumulator_bits, weight_bits))
        compiled = compile_network(converted.network, config)
        timings["compile_s"] = time.perf_counter() - t0
        tick("compile")

        # 4. evaluate
        t0 = time.perf_counter()
        rate_limit = None if keep_dynamics else float((rate_limit_predict(converted, data.x_test) == data.y_test).mean())
        results = {}
        longest = max(curve or [steps])
        for t in curve or [steps]:   # every neuron's spikes are counted in the run at the largest T
            results[t] = evaluate(compiled, data.x_test, data.y_test, steps=t, encoder=encoder, seed=seed,
                                  layer_rates=t == longest)
            tick(f"evaluate T={t}")
        main = results[steps]
        points = [{"steps": t, "snn_accuracy": r["accuracy"], "mean_output_spikes": r["mean_output_spikes"],
                   "mean_sops": r["mean_sops"], "silent_fraction": r["silent_fraction"]}
                  for t, r in results.items()] if curve else []
        timings["evaluate_s"] = time.perf_counter() - t0
    finally:
        if bar is not None:
            bar.close()

    image = None
    if out is not None:
        from ..image_dir import write_image_dir
        image = str(write_image_dir(compiled, out, overwrite=overwrite))

    return {
        "dataset": dataset,
        "n_train": int(len(data.x_train)),
        "n_test": int(len(data.x_test)),
        "n_features": int(data.x_train.shape[1]),
        "n_classes": int(data.n_classes),
        "encoder": encoder,
        "steps": steps,
        "weight_bits": weight_bits,
        "seed": int(seed),
        "ann_accuracy": ann_accuracy,
        "snn_accuracy": main["accuracy"],
        "gap_points": 100.0 * (main["accuracy"] - ann_accuracy),
        "rate_limit_accuracy": rate_limit,
        "mean_output_spikes": main["mean_output_spikes"],
        "mean_sops": main["mean_sops"],
        "silent_fraction": main["silent_fraction"],
        "curve": points,
        "spike_rates": results[longest]["spike_rates"],
        "arch": arch,
        "ann": _ann_report(arch, model, nir_path if arch == "nir" else ann_path, save_ann_path, trained,
                           max_iter, maps, epochs, stride, shift, fold,
                           readout_lift, readout_shift, ann_graph,
                           graph_accuracy),
        "percentile": None if keep_dynamics else converted.percentile,
        "output_percentile": None if keep_dynamics else float(percentile if output_percentile is None
                                                              else output_percentile),
        **(_dynamics_report(graph, converted) if keep_dynamics else {}),
        "depth": converted.depth,
        "layers": [layer.as_dict() for layer in converted.layers],
        "neurons": converted.n_neurons,
        "synapses": int(compiled.program.n_synapses),
        "synapse_words": int(compiled.program.n_synapses),
        "synapse_words_unshared": cnn_mod.unshared_synapse_words(converted),
        "synapse_pairs": int(converted.n_synapses),
        "config": config.to_dict(),
        "config_hash": config.hash(),
        "image": image,
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }


def _dynamics_report(graph, converted) -> dict:
    """The ``--keep-dynamics`` keys of the report: the LIF leak approximation per layer."""
    return {"keep_dynamics": True, "dt": graph.dt, "dt_source": graph.dt_source, "reset": graph.reset,
            "dynamics": [dict(dyn.report(), layer=info.name, threshold=info.threshold, scale=info.scale)
                         for dyn, info in zip(graph.dynamics, converted.layers)]}


def _ann_report(arch, model, ann_path, save_ann_path, trained, max_iter, maps, epochs, stride, shift, fold,
                readout_lift, readout_shift, graph, graph_accuracy) -> dict:
    """The ``ann`` entry of the report: what was trained (or loaded) and how.

    For the CNN, ``graph_accuracy`` is the test accuracy of the float graph that was
    converted (after folding and lifting, float64): the rewrites are exact, so it equals
    ``ann_accuracy`` up to float32 rounding in torch.
    """
    if arch == "nir":
        return {"source": str(ann_path), "hidden": [], "converged": True, "saved_to": None,
                "graph_accuracy": graph_accuracy, "layers": graph.summary().splitlines()}
    if arch == "cnn":
        return {"source": "trained", "hidden": [], "maps": list(maps), "epochs": int(epochs),
                "stride": int(stride), "shift": int(shift),
                "kernel": cnn_mod.KERNEL, "fold": fold, "readout_lift": readout_lift,
                "readout_shift": float(readout_shift), "graph_accuracy": graph_accuracy,
                "converged": True, "saved_to": None, "layers": graph.summary().splitlines()}
    return {
        "source": str(ann_path) if ann_path is not None else "trained",
        "hidden": [int(w.shape[1]) for w in model.coefs_[:-1]],
        "n_iter": int(getattr(model, "n_iter_", 0)),
        "converged": bool(trained is False or model.n_iter_ < max_iter),
        "saved_to": None if save_ann_path is None else str(save_ann_path),
    }


def load_nir_graph(path, *, n_features: int, n_classes: int, dataset: str, **from_nir_options) -> Graph:
    """The float :class:`Graph` of the NIR file ``path`` (``nir.read``, then
    :func:`~neurocore.sw.convert.frontends.from_nir` with ``from_nir_options``, e.g.
    ``keep_dynamics=True``: then a ``DynamicGraph``), checked against the dataset: its input
    takes ``n_features`` values and its output gives ``n_classes``. One ``ValueError`` line
    for a missing or unreadable file, a node the frontend does not support, or a shape that
    does not match."""
    import nir

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--nir {path}: no such file")
    try:
        raw = nir.read(str(path))
    except Exception as exc:     # h5py / NIR format errors of every kind
        raise ValueError(f"{path.name}: not a readable NIR file ({type(exc).__name__}: {exc})") from None
    try:
        graph = from_nir(raw, **from_nir_options)
    except ValueError as exc:
        raise ValueError(f"{path.name}: {exc}") from None
    if graph.n_inputs != n_features:
        raise ValueError(f"{path.name}: the network takes {graph.n_inputs} inputs but dataset {dataset!r} has "
                         f"{n_features} features")
    outputs = int(np.prod(graph.output_shape))
    if outputs != n_classes:
        raise ValueError(f"{path.name}: the network has {outputs} outputs but dataset {dataset!r} has "
                         f"{n_classes} classes")
    return graph


def plot_curve(results, path, *, title: str | None = None) -> Path:
    """Save the accuracy-vs-T curve(s) of one or more :func:`convert_dataset` results as a PNG.

    ``results`` is one result dict or a list of ``(label, result)`` pairs. Uses the Agg
    backend (no display needed).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if isinstance(results, dict):
        results = [(f"SNN int{results['weight_bits']} ({results['encoder']})", results)]
    ann = 100 * results[0][1]["ann_accuracy"]
    steps = sorted({p["steps"] for _, r in results for p in r["curve"]})
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), dpi=120)
    for ax, zoom in zip(axes, (False, True)):
        for label, res in results:
            ts = [p["steps"] for p in res["curve"]]
            acc = [100 * p["snn_accuracy"] for p in res["curve"]]
            ax.plot(ts, acc, marker="o", label=label)
        ax.axhline(ann, color="k", linestyle="--", linewidth=1, label=f"float ANN ({ann:.2f} %)")
        ax.axhspan(ann - 0.5, ann, color="0.85", zorder=0, label="within 0.5 points of the ANN")
        ax.set_xscale("log", base=2)
        ax.set_xticks(steps)
        ax.set_xticklabels([str(t) for t in steps])
        ax.minorticks_off()
        ax.set_xlabel("time steps T per sample (core steps, latency included)")
        ax.grid(True, alpha=0.3)
        if zoom:
            ax.set_ylim(ann - 4, min(100, ann + 1))
            ax.set_xlim(left=min(t for t in steps if t >= 6) / 1.2 if any(t >= 6 for t in steps) else None)
            ax.set_title("zoom")
            ax.legend(loc="lower right", fontsize=7)
        else:
            ax.set_ylim(0, 100)
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(title or f"ANN-to-SNN conversion on {results[0][1]['dataset']}")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
