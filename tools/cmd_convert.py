"""``neurocore convert``: train (or load) an ANN, convert it to an integer SNN, evaluate it."""
from __future__ import annotations

import argparse
from pathlib import Path

from .cli_common import (MAX_NEURONS, MAX_STEPS, UsageError, add_command, add_config_argument, add_dataset_arguments,
                         add_json_argument, add_seed_argument, add_steps_argument, int_in_range,
                         positive_float_up_to, positive_int, print_result)
from .cli_io import output_path, parse_config, plot_path, writing

DESCRIPTION = """\
ANN-to-SNN conversion on a dataset: train a ReLU MLP with scikit-learn (or load
one with --ann) or, with --arch cnn, a small CNN with PyTorch (conv 5x5 - ReLU -
avgpool 2 per entry of --maps, then a dense readout; needs the torch extra:
pip install 'neurocore[torch]'), normalise it with the 99.9th percentile of
each layer's activations on the training data (Rueckauer et al. 2017), quantise
every layer to the core's signed weight width with the threshold as the layer's
scale (IF neurons, reset by subtraction, biases added every step), compile it
for the core and evaluate the float ANN and the SNN (bit-exact golden model) on
the test split, plus the accuracy-vs-T curve. T counts core steps from the
first input step; each layer adds one step of latency (see docs/results.md).
Progress goes to stderr; --json prints only the JSON report on stdout.
--plot-dir writes PNGs: accuracy vs T and the spike rate of every layer.
Nothing is written unless asked (--out, --save-ann, --plot, --plot-dir)."""

EXAMPLES = """\
neurocore convert --dataset digits --steps 16                 # train, convert, evaluate
neurocore convert --steps 16 --json                           # the report as JSON
neurocore convert --hidden 64 --weight-bits 6 --encoder rate  # smaller net, 6-bit weights, Bernoulli input
neurocore convert --steps 16 --out build/digits-snn           # also write the image directory
neurocore convert --save-ann ann.joblib && neurocore convert --ann ann.joblib --steps 8
neurocore convert --dataset mnist --data-dir ~/data/mnist --hidden 256 --steps 32
neurocore convert --curve 1,2,4,8,16,32 --plot docs/img/convert_accuracy_vs_T.png
neurocore convert --arch cnn --steps 32 --curve 8,16,32      # a CNN (8 and 16 feature maps)
neurocore convert --arch cnn --maps 4,8 --epochs 5 --json     # a smaller, shorter-trained CNN
neurocore convert --arch cnn --cnn-stride 2 --plot-dir plots  # strided convs, no pooling: ~1,400 neurons
neurocore convert --arch cnn --cnn-stride 2 --tight --out build/s2  # on the smallest core that holds it
neurocore convert --dataset mnist-5k:pool2 --arch cnn --cnn-stride 2 --tight --steps 32 --out build/up5k
                                                              # 14x14 MNIST: an image for the iCE40 UP5K
neurocore convert --arch cnn --config core.json               # onto a given core (error if it cannot hold it)
neurocore convert --nir net.nir --dataset digits --steps 16   # a network exported to NIR
neurocore convert --nir snn.nir --keep-dynamics --reset subtract --encoder rate   # its own LIF leak
neurocore convert --nir snn.nir --keep-dynamics --dt 1e-3 --json  # dt of the NIR LIF (default 1e-4)"""


def _int_list(maximum: int):
    """An argparse type: comma-separated integers in 1..``maximum``."""
    what = f"comma-separated positive integers, each at most {maximum}"

    def parse(text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(v) for v in text.replace(" ", ",").split(",") if v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not values or min(values) < 1 or max(values) > maximum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return values
    parse.__name__ = what
    return parse


_percentile = positive_float_up_to(100, "a number in (0, 100]")

# the CNN's bounds (neurocore.sw.convert.cnn; repeated here so that --help needs no import of it)
MAX_MAPS = 64
MAX_CONV_LAYERS = 3
MAX_EPOCHS = 200
MAX_STRIDE = 3
MAX_SHIFT = 4
FOLD_CHOICES = ("none", "readout", "all")
# the file names of --plot-dir (neurocore.tools.plots.CONVERT_PLOT_FILES; repeated for the same reason)
PLOT_NAMES = {"accuracy": "accuracy-vs-steps.png", "spike_rates": "spike-rates.png"}


def register(subparsers) -> None:
    parser = add_command(subparsers, "convert", help="convert a trained ANN to an SNN and evaluate it",
                         description=DESCRIPTION, examples=EXAMPLES)
    add_dataset_arguments(parser)
    add_steps_argument(parser, "time steps per sample for the headline accuracy (default: %(default)s)",
                       default=16)
    parser.add_argument("--weight-bits", type=positive_int, default=None, metavar="W",
                        help="signed weight width of the core, 2..16 (default: the core's, 8)")
    parser.add_argument("--hidden", type=_int_list(MAX_NEURONS), default=None, metavar="N[,N...]",
                        help=f"hidden layer sizes of the trained MLP (default: 128); in all at most "
                             f"{MAX_NEURONS} neurons, a core's largest")
    parser.add_argument("--arch", choices=("mlp", "cnn"), default="mlp",
                        help="the ANN: a scikit-learn MLP or a PyTorch CNN (default: %(default)s)")
    parser.add_argument("--maps", type=_int_list(MAX_MAPS), default=None, metavar="M[,M...]",
                        help=f"--arch cnn: feature maps of each 5x5 conv layer, 1 to {MAX_CONV_LAYERS} layers of "
                             f"1..{MAX_MAPS} maps (default: 8,16)")
    parser.add_argument("--epochs", type=int_in_range(1, MAX_EPOCHS, f"an integer in 1..{MAX_EPOCHS}"),
                        default=None, metavar="E",
                        help=f"--arch cnn: training epochs, 1..{MAX_EPOCHS} (default: 20)")
    parser.add_argument("--cnn-stride", type=int_in_range(1, MAX_STRIDE, f"an integer in 1..{MAX_STRIDE}"),
                        default=None, metavar="S",
                        help="--arch cnn: 1 (default): conv 5x5 then avgpool 2 per layer; 2 or 3: conv 5x5 with "
                             "that stride and no pooling (fewer neurons: 28x28 -> 12 -> 4 with stride 2)")
    parser.add_argument("--shift", type=int_in_range(0, MAX_SHIFT, f"an integer in 0..{MAX_SHIFT}"),
                        default=None, metavar="PX",
                        help=f"--arch cnn: training augmentation, every image translated by up to PX pixels "
                             f"(seeded), 0..{MAX_SHIFT} (default: the image's shorter side // 14: 2 on 28x28, 0 on "
                             f"the 8x8 digits; 0: none)")
    parser.add_argument("--fold", choices=FOLD_CHOICES, default=None,
                        help="--arch cnn: fold average pooling into the layer after it before converting: "
                             "none, the readout's (default) or all (fewer layers, more synapses)")
    parser.add_argument("--encoder", choices=("current", "rate"), default="current",
                        help="input spike encoding (default: %(default)s)")
    add_seed_argument(parser, "seed of the ANN training, the calibration subset and the rate encoder")
    parser.add_argument("--percentile", type=_percentile, default=None, metavar="P",
                        help="normalisation percentile of the activations (default: 99.9)")
    parser.add_argument("--curve", type=_int_list(MAX_STEPS), default=None, metavar="T[,T...]",
                        help=f"time steps of the accuracy-vs-T curve (default: 1,2,4,8,12,16,24,32,64); "
                             f"each at most {MAX_STEPS}")
    parser.add_argument("--no-curve", action="store_true", help="evaluate only at --steps")
    parser.add_argument("--nir", default=None, metavar="FILE",
                        help="import a trained network from a NIR file (nir.write) instead of training "
                             "one: calibrate, convert and evaluate it on --dataset")
    parser.add_argument("--keep-dynamics", action="store_true",
                        help="--nir: run the network with its own dynamics instead of re-normalising it as a "
                             "rate network: each LIF's tau (forward Euler at --dt: decay 1 - dt/tau) becomes the "
                             "nearest core leak in log(tau) (v -= v >> k, decay 1 - 2^-k, k 1..15), r, "
                             "v_threshold, v_leak and the reset are kept; the report gives the leak error per layer")
    parser.add_argument("--dt", type=positive_float_up_to(1e6, "a positive time step in seconds"), default=None,
                        metavar="SECONDS",
                        help="--keep-dynamics: the time step of one core step (default: the graph's metadata "
                             "'dt', else 1e-4, the fixed step of snnTorch's exporter)")
    parser.add_argument("--reset", choices=("zero", "subtract"), default=None,
                        help="--keep-dynamics: reset semantics, which NIR files do not record: zero (NIR's, to "
                             "v_reset; the default) or subtract (snnTorch's default reset_mechanism)")
    parser.add_argument("--ann", default=None, metavar="FILE",
                        help="load a fitted sklearn MLPClassifier (joblib/pickle) instead of training "
                             "(only load files you trust)")
    parser.add_argument("--save-ann", default=None, metavar="FILE",
                        help="save the trained MLP (joblib; its folder must exist)")
    parser.add_argument("--out", default=None, metavar="DIR", help="write the compiled image directory")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out directory")
    parser.add_argument("--plot", default=None, metavar="PNG",
                        help="save the accuracy-vs-T curve as a PNG (its folder must exist; a name "
                             "without suffix gets .png)")
    parser.add_argument("--plot-dir", default=None, metavar="DIR",
                        help="write PNG plots into DIR (created; its parent must exist): accuracy vs T "
                             f"({PLOT_NAMES['accuracy']}) and the spike rate of every layer at the largest T "
                             f"({PLOT_NAMES['spike_rates']})")
    add_config_argument(parser, "compile onto this core (CoreConfig fields as a JSON object or file); a "
                                "network it cannot hold is an error naming each capacity it overflows "
                                "(default: the default core, raised where needed)")
    parser.add_argument("--tight", action="store_true",
                        help="compile onto the smallest core that runs the network (for an FPGA): every "
                             "capacity exactly what it needs, no learning, WTA or adaptive threshold, "
                             "parameter classes (default: the default core, raised where needed)")
    add_json_argument(parser, "the report")
    parser.set_defaults(func=run)


def format_report(r: dict) -> str:
    layers = r["layers"]
    ann = r["ann"]
    if r.get("arch") == "nir":
        ann_line = f"ANN      : imported from NIR {ann['source']}: " + "; ".join(ann["layers"])
    elif r.get("arch") == "cnn":
        k = ann["kernel"]
        stride = ann.get("stride", 1)
        blocks = "-".join(f"conv{k}x{k}x{m}" + ("-pool2" if stride == 1 else f"/{stride}") for m in ann["maps"])
        ann_line = (f"ANN      : CNN {r['n_features']}-{blocks}-dense{r['n_classes']} (ReLU), trained "
                    f"{ann['epochs']} epochs (shifts up to {ann.get('shift', 0)} px); "
                    + (f"pooling folded: {ann['fold']}" if stride == 1 else "no pooling")
                    + f", readout lifted by {ann['readout_shift']:.3g}")
    else:
        arch = "-".join(str(v) for v in [r["n_features"]] + ann["hidden"] + [r["n_classes"]])
        ann_line = (f"ANN      : MLP {arch} (ReLU), {ann['source']}"
                    + (f", {ann['n_iter']} iterations" if ann["source"] == "trained" else "")
                    + ("" if ann["converged"] else " (not converged)"))
    lines = [
        f"dataset  : {r['dataset']} ({r['n_train']} train / {r['n_test']} test), {r['encoder']} encoding, "
        f"seed {r['seed']}",
        ann_line,
        f"SNN      : {r['depth']} layers, {r['neurons']} neurons, {r['synapse_pairs']} synapses in "
        f"{r['synapse_words']} synapse words ({r['synapse_words_unshared']} unshared), "
        f"int{r['weight_bits']} weights, percentile {r['percentile']:g}, core {r['config_hash'][:12]}",
    ]
    for layer in layers:
        lines.append(f"  {layer['name']:<8} {layer['neurons']:>5} neurons {layer['synapses']:>7} synapses  "
                     f"threshold {layer['threshold']:>5}  bias {layer['bias_min']}..{layer['bias_max']}  "
                     f"lambda {layer['scale']:.3g}")
    lines.append(f"accuracy : ANN {100 * r['ann_accuracy']:.2f} %   SNN {100 * r['snn_accuracy']:.2f} % at "
                 f"T={r['steps']} (gap {r['gap_points']:+.2f} points; T->inf limit "
                 f"{100 * r['rate_limit_accuracy']:.2f} %)")
    lines += _activity_lines(r, gap=True)
    lines += _output_lines(r)
    if r["ann"]["saved_to"]:
        lines.append(f"ANN saved: {r['ann']['saved_to']}")
    return "\n".join(lines)


def run(args) -> int:
    from ..sw.convert.pipeline import DEFAULT_CURVE, DEFAULT_HIDDEN, convert_dataset, plot_curve
    from ..sw.convert.quantize import DEFAULT_PERCENTILE

    if args.weight_bits is not None and not 2 <= args.weight_bits <= 16:
        raise UsageError(f"--weight-bits must be in 2..16, got {args.weight_bits}")
    cnn = args.arch == "cnn"
    if args.nir is None and args.keep_dynamics:
        raise UsageError("--keep-dynamics applies to --nir FILE (the dynamics of an imported spiking network)")
    if not args.keep_dynamics:
        for flag, value in (("--dt", args.dt), ("--reset", args.reset)):
            if value is not None:
                raise UsageError(f"{flag} describes the dynamics of the NIR nodes: it needs --keep-dynamics")
    if args.keep_dynamics and args.percentile is not None:
        raise UsageError("--percentile applies to the ratio-only conversion; --keep-dynamics does not normalise")
    if args.nir is not None:
        for flag, value in (("--arch cnn", cnn or None), ("--hidden", args.hidden), ("--ann", args.ann),
                            ("--save-ann", args.save_ann)):
            if value is not None:
                raise UsageError(f"--nir imports a trained network; it cannot be combined with {flag}")
    if cnn:
        for flag, value in (("--hidden", args.hidden), ("--ann", args.ann), ("--save-ann", args.save_ann)):
            if value is not None:
                raise UsageError(f"{flag} applies to --arch mlp (a scikit-learn MLP), not to --arch cnn")
        if args.maps is not None and len(args.maps) > MAX_CONV_LAYERS:
            raise UsageError(f"--maps: {len(args.maps)} conv layers given, at most {MAX_CONV_LAYERS}")
        from ..sw.convert.cnn import require_torch
        try:
            require_torch()
        except ImportError as exc:
            raise UsageError(str(exc)) from None
    else:
        for flag, value in (("--maps", args.maps), ("--epochs", args.epochs), ("--fold", args.fold),
                            ("--cnn-stride", args.cnn_stride), ("--shift", args.shift)):
            if value is not None:
                raise UsageError(f"{flag} applies to --arch cnn")
    if args.ann is not None and args.hidden is not None:
        raise UsageError("--hidden applies to a trained MLP; it cannot be combined with --ann")
    if args.no_curve and args.curve is not None:
        raise UsageError("--curve and --no-curve exclude each other")
    if args.no_curve and args.plot is not None:
        raise UsageError("--plot needs the curve; drop --no-curve")
    if args.hidden is not None and sum(args.hidden) > MAX_NEURONS:
        raise UsageError(f"--hidden: {sum(args.hidden)} hidden neurons in all, a core holds at most "
                         f"{MAX_NEURONS}")
    if args.out is not None:
        output_path(args.out, "--out", directory=True, make_parents=True)
        if Path(args.out).exists() and not args.overwrite:
            raise UsageError(f"--out {args.out} already exists (use --overwrite to replace it)")
    if args.save_ann is not None:
        output_path(args.save_ann, "--save-ann")
    plot = plot_path(args.plot) if args.plot is not None else None
    plot_dir = output_path(args.plot_dir, "--plot-dir", directory=True) if args.plot_dir is not None else None
    curve = () if args.no_curve else (args.curve if args.curve is not None else DEFAULT_CURVE)
    if args.config is not None and args.tight:
        raise UsageError("--config and --tight exclude each other (--tight chooses the core)")
    core = parse_config(args.config) if args.config is not None else None
    try:
        result = convert_dataset(
            args.dataset, steps=args.steps, weight_bits=args.weight_bits,
            hidden=args.hidden or DEFAULT_HIDDEN, seed=args.seed, data_dir=args.data_dir, ann_path=args.ann,
            encoder=args.encoder, percentile=args.percentile or DEFAULT_PERCENTILE, curve_steps=curve,
            out=args.out, overwrite=args.overwrite, save_ann_path=args.save_ann, progress=True,
            nir_path=args.nir, tight=args.tight, core=core,
            **(dict(keep_dynamics=True, dt=args.dt, reset=args.reset or "zero") if args.keep_dynamics else {}),
            **(dict(arch="cnn", maps=args.maps, epochs=args.epochs, fold=args.fold, stride=args.cnn_stride,
                    shift=args.shift) if cnn else {}))
    except KeyError as exc:
        raise UsageError(f"unknown dataset {args.dataset!r} ({exc})") from None
    result["plot"] = None
    if plot is not None:
        with writing("--plot", plot):
            result["plot"] = str(plot_curve(result, plot))
    result["plots"] = None
    if plot_dir is not None:
        from .plots import convert_plots
        with writing("--plot-dir", plot_dir):
            result["plots"] = convert_plots(result, plot_dir)
    print_result(result, args.json, format_dynamics_report if args.keep_dynamics else format_report)
    return 0


def format_dynamics_report(r: dict) -> str:
    """The text report of ``--nir FILE --keep-dynamics``: the network, its leaks, the accuracies."""
    lines = [
        f"dataset  : {r['dataset']} ({r['n_train']} train / {r['n_test']} test), {r['encoder']} encoding, "
        f"seed {r['seed']}",
        f"SNN      : imported from NIR {r['ann']['source']} with its dynamics: "
        + "; ".join(" ".join(layer.split()) for layer in r["ann"]["layers"]),
        f"dynamics : dt {r['dt']:g} s ({r['dt_source']}), reset {r['reset']}; {r['depth']} layers, {r['neurons']} "
        f"neurons, {r['synapse_pairs']} synapses, int{r['weight_bits']} weights, core {r['config_hash'][:12]}",
    ]
    for layer, dyn in zip(r["layers"], r["dynamics"]):
        leaks = []
        for e in dyn["entries"]:
            if e["leak_shift"] == 0:
                leaks.append(f"no leak ({e['units']})")
            else:
                leaks.append(f"tau {e['tau']:.4g} s decay {e['decay']:.4f} -> leak_shift {e['leak_shift']} "
                             f"decay {e['effective_decay']:.4f} ({100 * e['decay_error']:+.2f} %, tau "
                             f"{100 * e['tau_error']:+.0f} %)" + (f" x{e['units']}" if len(dyn["entries"]) > 1 else "")
                             + (f" [leak floor {e['leak_floor']} >= threshold: the leak hardly acts]"
                                if e["leak_floor"] >= layer["threshold"] else ""))
        lines.append(f"  {layer['name']:<8} {layer['neurons']:>5} neurons {layer['synapses']:>7} synapses  "
                     f"threshold {layer['threshold']:>5}  node {dyn['node']} ({dyn['kind']}): " + "; ".join(leaks))
    lines.append(f"accuracy : float graph (ReLU view) {100 * r['ann_accuracy']:.2f} %   SNN "
                 f"{100 * r['snn_accuracy']:.2f} % at T={r['steps']}")
    lines += _activity_lines(r, gap=False)
    lines += _output_lines(r)
    return "\n".join(lines)


def _activity_lines(r: dict, *, gap: bool) -> list[str]:
    """The spikes line and the accuracy-vs-T curve (``gap``: with the SNN - ANN column)."""
    lines = [f"spikes   : {r['mean_output_spikes']:.2f} output spikes, {r['mean_sops']:.0f} SOPs per sample; "
             f"{100 * r['silent_fraction']:.1f} % silent samples"]
    if r["curve"]:
        lines.append("curve    :      T   SNN acc" + ("   gap (pts)" if gap else "") + "  out spikes       SOPs")
        for p in r["curve"]:
            gap_column = f"{100 * (p['snn_accuracy'] - r['ann_accuracy']):+9.2f}  " if gap else ""
            lines.append(f"           {p['steps']:>6}  {100 * p['snn_accuracy']:6.2f} %  {gap_column}"
                         f"{p['mean_output_spikes']:10.2f} {p['mean_sops']:10.0f}")
    return lines


def _output_lines(r: dict) -> list[str]:
    """The report's closing lines (both formats): layer spike rates, what was written."""
    lines = []
    rates = r.get("spike_rates")
    if rates:
        lines.append(f"rates    : spikes per neuron per step at T={rates['steps']}: input {rates['input']:.3f}, "
                     + ", ".join(f"{layer['name']} {layer['rate']:.3f}" for layer in rates["layers"]))
    if r["image"]:
        lines.append(f"image    : {r['image']}")
    if r.get("plot"):
        lines.append(f"plot     : {r['plot']}")
    if r.get("plots"):
        lines.append(f"plots    : {', '.join(r['plots'].values())}")
    return lines
