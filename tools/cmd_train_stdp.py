"""``neurocore train-stdp``: unsupervised STDP training with the core's own learning rule."""
from __future__ import annotations

import argparse
import sys

from .cli_common import (MAX_NEURONS, UsageError, add_command, add_dataset_arguments, add_json_argument,
                         add_seed_argument, add_steps_argument, int_in_range, positive_int, print_json)
from ..hw.widths import CONFIG_RANGES

ARCHS = ("fc", "cnn")
WIDEST_GROUPS = CONFIG_RANGES["wta_groups"][1]
_FC_ONLY = ("neurons", "eval_steps", "rule")
_CNN_ONLY = ("maps", "kernel", "pool")
from .cli_io import output_path, plot_path, writing

DESCRIPTION = """\
Train K excitatory neurons without labels, after Diehl & Cook (2015): rate-coded
pixels (an ON and an OFF axon per pixel) -> K neurons in one winner-take-all group
with an adaptive threshold, plastic input synapses learned by the core's own STDP
rule on the bit-exact golden model (the weights are what the hardware would learn;
no host-side weight normalisation). Then learning is frozen, each neuron is
labelled with the class it responds to most on the training set, and the test
split is classified by the mean spike count of each class's neurons ("vote"
decoding). Rules: 'trace' (additive, clamped to [w_min, w_max]) and
'multiplicative' (soft bound, Kheradpisheh et al. 2018). See sw/stdp.py and
docs/results.md. Prints accuracy, neurons, epochs and seconds (JSON with --json;
progress bars go to stderr). --out writes the trained network as an image
directory (learning parameters kept, so the core can keep learning on chip).

--arch cnn trains the spiking CNN of Kheradpisheh et al. (2018) instead: on/off
difference-of-Gaussians edges, latency-coded -> conv1 (--maps kernels of
--kernel x --kernel, learned by the core's soft-bound STDP on shared kernels,
one winner per map and step while training, WTA between the maps of a position
at inference) -> sum pooling -> a readout of one neuron per class whose weights
are fitted to the pool's spike counts (logistic regression, quantised) and
whose argmax the core's WTA evaluates in one go step. Each epoch reports the
test accuracy of the whole network on the golden model (epoch 0: the initial
kernels). --plot saves the kernels and the accuracy per epoch; see
sw/stdp_cnn.py and docs/results.md."""

EXAMPLES = """\
neurocore train-stdp --dataset digits --neurons 256 --epochs 12          # the documented run
neurocore train-stdp --neurons 256 --epochs 12 --out build/stdp --plot stdp.png
neurocore train-stdp --neurons 100 --epochs 8 --rule multiplicative --json
neurocore train-stdp --dataset mnist --data-dir ~/data/mnist --neurons 256 --epochs 1
neurocore train-stdp --arch cnn --dataset mnist-5k --epochs 1 --plot cnn.png --out build/stdp-cnn
neurocore train-stdp --arch cnn --maps 16 --epochs 2 --json
neurocore train-stdp --arch cnn --maps 32,64 --epochs 1       # two conv layers, trained one after the other"""


def register(subparsers) -> None:
    parser = add_command(subparsers, "train-stdp", help="unsupervised STDP training on the golden model",
                         description=DESCRIPTION, examples=EXAMPLES)
    parser.add_argument("--arch", choices=ARCHS, default="fc",
                        help="fc: one WTA layer (Diehl & Cook); cnn: the spiking CNN (Kheradpisheh et al.) "
                             "(default: %(default)s)")
    add_dataset_arguments(parser, default=None, default_text="digits; with --arch cnn mnist-5k")
    parser.add_argument("--neurons", type=int_in_range(1, MAX_NEURONS, f"an integer in 1..{MAX_NEURONS}"),
                        default=None, metavar="K",
                        help=f"fc: excitatory neurons (default: 256; the default core holds 256); "
                             f"at most {MAX_NEURONS}, a core's largest")
    parser.add_argument("--epochs", type=int_in_range(0, None, "an integer >= 0"), default=None, metavar="E",
                        help="passes over the training set (default: 12; cnn: per conv layer, default 1; "
                             "0 tests the initial weights)")
    add_steps_argument(parser, "fc: steps per training sample (default: the rule's, 2); cnn: steps of the "
                               "latency code (default: 16)")
    add_steps_argument(parser, "fc: steps per sample for labelling and testing (default: the rule's, 64)",
                       flag="--eval-steps")
    parser.add_argument("--rule", choices=("trace", "multiplicative"), default=None,
                        help="fc: STDP rule (default: trace; cnn always uses the soft bound)")
    parser.add_argument("--maps", type=int_list(1, WIDEST_GROUPS), default=None, metavar="M1[,M2]",
                        help=f"cnn: maps per conv layer, comma-separated, one entry per layer (default: 32, "
                             f"one layer); training needs a WTA group per map, at most {WIDEST_GROUPS}")
    parser.add_argument("--kernel", type=int_list(1, 15), default=None, metavar="K1[,K2]",
                        help="cnn: kernel side per conv layer, or one for all (default: 5; 3 on images "
                             "smaller than 16x16)")
    parser.add_argument("--pool", type=int_in_range(1, 8, "an integer in 1..8"), default=None, metavar="P",
                        help="cnn: the last (sum) pooling window; must divide the last conv map (default: "
                             "4, 3 or 2, the first that does and leaves 3x3 windows or more); between conv "
                             "layers a 2x2 max pooling")
    add_seed_argument(parser, "seed of the initial weights, sample order and spike trains")
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N",
                        help="use only the first N training and N test samples (quick runs)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="write the trained network as an image directory")
    parser.add_argument("--force", action="store_true", help="replace an existing --out directory")
    parser.add_argument("--plot", default=None, metavar="PNG",
                        help="save a PNG (its folder must exist; a name without suffix gets .png): fc: the "
                             "learned receptive fields; cnn: the conv1 kernels and the accuracy per epoch")
    add_json_argument(parser, "the report")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    parser.set_defaults(func=run)


def int_list(low: int, high: int):
    """An argparse type: comma-separated integers in ``low..high`` (one line otherwise)."""
    what = f"comma-separated integers in {low}..{high}"

    def parse(text: str) -> tuple[int, ...]:
        values = []
        for part in text.split(","):
            try:
                values.append(int_in_range(low, high, what)(part.strip()))
            except argparse.ArgumentTypeError:
                raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        return tuple(values)
    parse.__name__ = what
    return parse


def _check_arch(args) -> None:
    """One line for an option of the other architecture."""
    other = _CNN_ONLY if args.arch == "fc" else _FC_ONLY
    for name in other:
        if getattr(args, name) is not None:
            raise UsageError(f"--{name.replace('_', '-')} applies to --arch {'cnn' if args.arch == 'fc' else 'fc'}, "
                             f"not --arch {args.arch}")


def _write_outputs(result, args, out, plot, plot_fn) -> dict:
    """The report of ``result``, after writing the image directory (``--out``) and the PNG
    (``--plot``, drawn by ``plot_fn``); their paths join the report."""
    report = result.to_dict()
    if out is not None:
        from ..sw.image_dir import write_image_dir
        with writing("--out", out):
            write_image_dir(result.compiled, out, overwrite=args.force)
        report["out"] = str(out)
    if plot is not None:
        with writing("--plot", plot):
            plot_fn(result, plot)
        report["plot"] = str(plot)
    return report


def _print_tail(report: dict) -> int:
    """The last lines of the text report: where the image and the plot went, the time."""
    if "out" in report:
        print(f"image     : {report['out']}")
    if "plot" in report:
        print(f"plot      : {report['plot']}")
    print(f"seconds   : {report['seconds']:.1f}")
    sys.stdout.flush()
    return 0


def run(args) -> int:
    from ..sw.stdp import plot_weights, train_stdp

    _check_arch(args)
    out = output_path(args.out, "--out", directory=True, make_parents=True) if args.out else None
    if out is not None and out.exists() and not args.force:
        raise UsageError(f"--out: {out} already exists (use --force to replace it)")
    if out is not None:
        from ..sw.image_dir import check_image_path
        check_image_path(out, overwrite=args.force)   # what --force may not replace: before training
    plot = plot_path(args.plot) if args.plot is not None else None
    if args.arch == "cnn":
        return _run_cnn(args, out, plot)
    result = train_stdp(dataset=args.dataset or "digits", neurons=args.neurons or 256,
                        epochs=12 if args.epochs is None else args.epochs, steps=args.steps,
                        eval_steps=args.eval_steps, seed=args.seed, rule=args.rule or "trace",
                        progress=not args.no_progress, data_dir=args.data_dir,
                        limit_train=args.limit, limit_test=args.limit)
    report = _write_outputs(result, args, out, plot, plot_weights)
    if args.json:
        print_json(report)
        return 0
    print(f"dataset   : {report['dataset']} ({report['inputs']} input axons, rate-coded, "
          f"{'ON/OFF' if result.params.complement else 'ON'} per pixel)")
    print(f"network   : {report['neurons']} neurons in one WTA group, {report['synapses']} plastic synapses, "
          f"rule {report['rule']}")
    print(f"training  : {report['epochs']} epochs x {report['steps']} steps per sample, seed {report['seed']}, "
          f"{report['train_seconds']:.1f} s")
    print(f"labelled  : {report['labelled_neurons']} neurons, per class {report['neurons_per_class']}")
    print(f"accuracy  : {report['accuracy']:.4f} test, {report['train_accuracy']:.4f} train "
          f"({report['eval_steps']} steps per sample, vote decoding)")
    print(f"weights   : {report['weights']['min']}..{report['weights']['max']}, mean {report['weights']['mean']}, "
          f"{report['weights']['at_w_max']:.1%} at w_max")
    return _print_tail(report)


def _run_cnn(args, out, plot) -> int:
    from ..sw.stdp_cnn import plot_kernels, train_stdp_cnn

    kernel = args.kernel
    if kernel is not None and args.maps is not None and len(kernel) not in (1, len(args.maps)):
        raise UsageError(f"--kernel: give one side or one per conv layer ({len(args.maps)}), got {len(kernel)}")
    if kernel is not None and len(kernel) == 1:
        kernel = kernel * len(args.maps or (0,))
    overrides = {"maps": args.maps, "kernel": kernel, "pool": args.pool, "steps": args.steps}
    quiet = args.json or args.no_progress
    result = train_stdp_cnn(dataset=args.dataset or "mnist-5k", epochs=1 if args.epochs is None else args.epochs,
                            seed=args.seed, progress=not args.no_progress, data_dir=args.data_dir,
                            limit_train=args.limit, limit_test=args.limit,
                            log=None if quiet else lambda line: print(line, file=sys.stderr, flush=True),
                            **{k: v for k, v in overrides.items() if v is not None})
    report = _write_outputs(result, args, out, plot, plot_kernels)
    if args.json:
        print_json(report)
        return 0
    p = result.params
    layers = report["layers"]
    print(f"dataset   : {report['dataset']} ({result.image_shape[0]}x{result.image_shape[1]}, on/off DoG, "
          f"latency over {p.steps} steps, {report['steps']} steps per sample)")
    convs = " -> ".join(f"conv{i + 1} {m} maps {k}x{k}" for i, (m, k) in enumerate(zip(p.maps, p.kernel)))
    print(f"network   : {convs} -> pool -> readout {result.n_classes}; "
          f"{report['neurons']} neurons, {report['synapse_words']} synapse words"
          + f" ({', '.join(f'{name} {size}' for name, size in layers.items())})")
    print(f"training  : {report['epochs']} epoch(s) per conv layer, seed {report['seed']}, "
          f"{report['train_seconds']:.1f} s of STDP")
    for h in report["history"]:
        what = "initial kernels" if h["layer"] == 0 else f"conv{h['layer']} epoch {h['epoch']}"
        print(f"  {what:<16}: test {h['accuracy']:.4f}, train {h['train_accuracy']:.4f}")
    print(f"accuracy  : {report['accuracy']:.4f} test (the whole network on the golden model)")
    return _print_tail(report)
