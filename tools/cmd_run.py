"""``neurocore run``: evaluate a compiled image on a dataset's test split (golden model)."""
from __future__ import annotations

import time
from pathlib import Path

from .cli_common import (add_command, add_dataset_arguments, add_image_arguments, add_json_argument,
                         add_seed_argument, add_steps_argument, positive_int, print_json)
from .cli_common import UsageError
from .cli_io import IMAGE_DEFAULT_STEPS, image_and_test_data, output_path, writing

DESCRIPTION = """\
Evaluate an image directory on the test split of a dataset with the bit-exact
golden model (learning off): encode every test image as spike trains, run it,
decode the output spikes (count or vote decoding from the manifest) and print
the accuracy and spike statistics (output spikes, synaptic operations and
silent samples per sample). --steps, --encoder and --dataset default to the
image's encoding section (else 32 steps, rate, digits). Sample i is encoded
with a seed derived from (--seed, i), so results do not depend on batching."""

EXAMPLES = """\
neurocore run build/digits-img --dataset digits
neurocore run build/mnist-img --dataset mnist --data-dir ~/data/mnist --steps 64 --json
neurocore run build/img --dataset digits --limit 100 --encoder latency --steps 16
neurocore run build/img --config core.json     # refuse an image compiled for another core
neurocore run build/digits-img --plot plots/    # raster, membrane traces, confusion matrix"""


def register(subparsers) -> None:
    parser = add_command(subparsers, "run", help="evaluate a compiled image on a dataset (golden model)",
                         description=DESCRIPTION, examples=EXAMPLES)
    add_image_arguments(parser)
    add_dataset_arguments(parser, default=None, default_text="the image's, else digits")
    add_steps_argument(parser, f"time steps per sample (default: the image's, else {IMAGE_DEFAULT_STEPS})")
    parser.add_argument("--encoder", default=None, metavar="NAME",
                        help="rate, current or latency (default: the image's, else rate)")
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N",
                        help="evaluate only the first N test samples")
    add_seed_argument(parser, "seed of the rate encoder")
    parser.add_argument("--batch-size", type=positive_int, default=256, metavar="B",
                        help="samples per golden-model call (default: %(default)s)")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    parser.add_argument("--plot", default=None, metavar="DIR",
                        help="write PNG plots to DIR: spike raster and membrane traces of the first "
                             "evaluated sample, confusion matrix (DIR is created if its parent exists)")
    add_json_argument(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..sw.evaluate import evaluate

    plot_dir = output_path(args.plot, "--plot", directory=True) if args.plot else None
    compiled, x, y, steps, encoder, dataset_name, encoder_kwargs = image_and_test_data(
        args.image, config=args.config, dataset=args.dataset, data_dir=args.data_dir,
        steps=args.steps, encoder=args.encoder, limit=args.limit)
    from ..sw.partition import CompiledChip

    on_chip = isinstance(compiled, CompiledChip)
    if on_chip and plot_dir is not None:
        raise UsageError(f"--plot: not available for chip images yet ({args.image} is a "
                         f"{compiled.config.rows}x{compiled.config.cols} chip); run one of its core images")
    t0 = time.perf_counter()
    result = evaluate(compiled, x, y, steps=int(steps), encoder=encoder, seed=args.seed,
                      batch_size=args.batch_size, progress=args.progress, encoder_kwargs=encoder_kwargs)
    elapsed = time.perf_counter() - t0
    plots = None
    if plot_dir is not None:
        with writing("--plot", plot_dir):
            plots = write_plots(plot_dir, compiled, x, y, result, steps=steps, encoder=encoder,
                                seed=args.seed, dataset=dataset_name, encoder_kwargs=encoder_kwargs)
    report = {
        "image": str(args.image),
        "dataset": dataset_name,
        "split": "test",
        "samples": result["n_samples"],
        "accuracy": result["accuracy"],
        "correct": result["correct"],
        "steps": result["steps"],
        "encoder": encoder,
        "seed": args.seed,
        "n_classes": result["n_classes"],
        "mean_output_spikes": result["mean_output_spikes"],
        "mean_input_spikes": result["mean_input_spikes"],
        "mean_sops": result["mean_sops"],
        "silent_fraction": result["silent_fraction"],
        "decoding": compiled.decoding.get("kind", "count"),
        "confusion_matrix": result["confusion_matrix"],
        "time_s": elapsed,
        "plots": plots,
    }
    if on_chip:
        report["chip"] = {"grid": [compiled.config.rows, compiled.config.cols],
                          "mean_packets": result["mean_packets"],
                          "packets_per_step": result["mean_packets"] / result["steps"],
                          "route_entries": compiled.remote_entries()}
    if args.json:
        print_json(report)
        return 0
    if on_chip:
        programs = compiled.chip.cores
        print(f"image    : {args.image} ({compiled.config.rows}x{compiled.config.cols} chip: "
              f"{sum(p.n_neurons for p in programs)} neurons, {sum(p.n_synapses for p in programs)} synapses, "
              f"{compiled.remote_entries()} route entries; {report['decoding']} decoding)")
    else:
        print(f"image    : {args.image} ({compiled.program.n_neurons} neurons, "
              f"{compiled.program.n_synapses} synapses, {report['decoding']} decoding)")
    print(f"dataset  : {dataset_name} test split, {report['samples']} samples, {encoder} encoding, "
          f"{report['steps']} steps, seed {args.seed}")
    print(f"accuracy : {report['accuracy']:.4f} ({report['correct']}/{report['samples']})")
    print(f"spikes   : {report['mean_output_spikes']:.2f} output / {report['mean_input_spikes']:.1f} input "
          f"per sample; {report['silent_fraction']:.1%} silent samples")
    print(f"SOPs     : {report['mean_sops']:.1f} per sample"
          + (f"; {report['chip']['mean_packets']:.1f} packets between cores "
             f"({report['chip']['packets_per_step']:.1f} per step)" if on_chip else ""))
    print(f"time     : {elapsed:.2f} s")
    if plots:
        print(f"plots    : {', '.join(plots.values())}")
    return 0


def write_plots(out_dir, compiled, x, y, result, *, steps, encoder, seed, dataset,
                encoder_kwargs=None) -> dict[str, str]:
    """The ``--plot`` PNGs: raster and membrane traces of the first sample (encoded as
    :func:`~neurocore.sw.evaluate.evaluate` encoded it), confusion matrix of ``result``."""
    from ..sw.evaluate import encode_samples
    from . import plots

    inputs = encode_samples(x[:1], steps, encoder, seed, **(encoder_kwargs or {}))[0]
    files = plots.sample_plots(compiled, inputs, out_dir, label=int(y[0]), name=f"{dataset} test sample 0")
    files["confusion"] = plots.confusion_matrix(
        result["confusion_matrix"], Path(out_dir) / plots.PLOT_FILES["confusion"],
        title=f"{dataset} test split ({result['n_samples']} samples), T = {steps}: "
              f"{100 * result['accuracy']:.2f} % correct")
    return {name: str(path) for name, path in files.items()}
