"""``neurocore train-stdp``: unsupervised STDP training with the core's own learning rule."""
from __future__ import annotations

import sys

from .cli_common import (MAX_NEURONS, UsageError, add_command, add_dataset_arguments, add_json_argument,
                         add_seed_argument, add_steps_argument, int_in_range, positive_int, print_json)
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
directory (learning parameters kept, so the core can keep learning on chip)."""

EXAMPLES = """\
neurocore train-stdp --dataset digits --neurons 256 --epochs 12          # the documented run
neurocore train-stdp --neurons 256 --epochs 12 --out build/stdp --plot stdp.png
neurocore train-stdp --neurons 100 --epochs 8 --rule multiplicative --json
neurocore train-stdp --dataset mnist --data-dir ~/data/mnist --neurons 256 --epochs 1"""


def register(subparsers) -> None:
    parser = add_command(subparsers, "train-stdp", help="unsupervised STDP training on the golden model",
                         description=DESCRIPTION, examples=EXAMPLES)
    add_dataset_arguments(parser)
    parser.add_argument("--neurons", type=int_in_range(1, MAX_NEURONS, f"an integer in 1..{MAX_NEURONS}"),
                        default=256, metavar="K",
                        help=f"excitatory neurons (default: %(default)s; the default core holds 256); "
                             f"at most {MAX_NEURONS}, a core's largest")
    parser.add_argument("--epochs", type=positive_int, default=12, metavar="E",
                        help="passes over the training set (default: %(default)s)")
    add_steps_argument(parser, "steps per training sample (default: the rule's, 2)")
    add_steps_argument(parser, "steps per sample for labelling and testing (default: the rule's, 64)",
                       flag="--eval-steps")
    parser.add_argument("--rule", choices=("trace", "multiplicative"), default="trace",
                        help="STDP rule (default: %(default)s)")
    add_seed_argument(parser, "seed of the initial weights, sample order and spike trains")
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N",
                        help="use only the first N training and N test samples (quick runs)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="write the trained network as an image directory")
    parser.add_argument("--force", action="store_true", help="replace an existing --out directory")
    parser.add_argument("--plot", default=None, metavar="PNG",
                        help="save the learned receptive fields as a PNG grid (its folder must exist; "
                             "a name without suffix gets .png)")
    add_json_argument(parser, "the report")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..sw.stdp import plot_weights, train_stdp

    out = output_path(args.out, "--out", directory=True, make_parents=True) if args.out else None
    if out is not None and out.exists() and not args.force:
        raise UsageError(f"--out: {out} already exists (use --force to replace it)")
    if out is not None:
        from ..sw.image_dir import check_image_path
        check_image_path(out, overwrite=args.force)   # what --force may not replace: before training
    plot = plot_path(args.plot) if args.plot is not None else None
    result = train_stdp(dataset=args.dataset, neurons=args.neurons, epochs=args.epochs, steps=args.steps,
                        eval_steps=args.eval_steps, seed=args.seed, rule=args.rule,
                        progress=not args.no_progress, data_dir=args.data_dir,
                        limit_train=args.limit, limit_test=args.limit)
    report = result.to_dict()
    if out is not None:
        from ..sw.image_dir import write_image_dir
        with writing("--out", out):
            write_image_dir(result.compiled, out, overwrite=args.force)
        report["out"] = str(out)
    if plot is not None:
        with writing("--plot", plot):
            plot_weights(result, plot)
        report["plot"] = str(plot)
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
    if out is not None:
        print(f"image     : {out}")
    if plot is not None:
        print(f"plot      : {plot}")
    print(f"seconds   : {report['seconds']:.1f}")
    sys.stdout.flush()
    return 0
