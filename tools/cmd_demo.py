"""``neurocore demo``: the whole flow on the digits dataset, with a summary and a report folder."""
from __future__ import annotations

from .cli_common import (add_command, add_json_argument, add_seed_argument, add_steps_argument, positive_int,
                         print_result)
from .cli_io import output_path

DESCRIPTION = """\
The whole flow on scikit-learn's 8x8 digits (no download): train a 64-128-10
ReLU MLP, convert it to an int8 spiking network, compile it to the core's memory
images, evaluate it on the bit-exact golden model over the whole test split (and
the accuracy-vs-T curve), then run the RTL core in cocotb co-simulation on the
first --samples test samples and check that it agrees bit-exactly with the
golden model (every output spike, the final state and every weight).

Prints a summary table (ANN accuracy, SNN accuracy, co-sim agreement, synaptic
operations per clock, time per stage) and writes a report folder: report.json,
summary.txt, image/ (memory images, manifest.json, program.npz), core.v (the
Verilog with the program baked in), cosim/ (build and simulation logs) and four
PNG plots (accuracy vs time steps, spike raster and membrane traces of test
sample 0, confusion matrix). The folder is built next to --out and renamed into
place at the end; an existing directory is replaced only if it is an earlier
report (or empty), and with --force also an earlier image directory; never a
directory of other files, the current directory or one of its parents.

Exit status 1 when the RTL and the golden model disagree. About 2-3 minutes on
2 cores, including the Verilator build; progress bars go to stderr."""

EXAMPLES = """\
neurocore demo                               # everything, report in ./neurocore-report
neurocore demo --json                        # the summary as JSON
neurocore demo --no-cosim --out /tmp/report  # golden model only (no HDL simulator needed)
neurocore demo --simulator icarus --samples 5 --steps 12 --seed 1"""


def register(subparsers) -> None:
    from .demo import DEFAULT_OUT, DEFAULT_SAMPLES, DEFAULT_STEPS

    parser = add_command(subparsers, "demo", help="train, convert, compile, co-simulate digits; write a report",
                         description=DESCRIPTION, examples=EXAMPLES)
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help="report folder (default: %(default)s in the current directory)")
    parser.add_argument("--force", action="store_true",
                        help="also replace --out when it is an earlier image directory (never a "
                             "directory of other files)")
    parser.add_argument("--samples", type=positive_int, default=DEFAULT_SAMPLES, metavar="N",
                        help="test samples to co-simulate on the RTL (default: %(default)s)")
    add_steps_argument(parser, "time steps per sample (default: %(default)s)", default=DEFAULT_STEPS)
    parser.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator",
                        help="HDL simulator of the co-simulation (default: %(default)s)")
    parser.add_argument("--no-cosim", action="store_true",
                        help="skip the RTL co-simulation (e.g. without an HDL simulator)")
    add_seed_argument(parser, "seed of the ANN's training and the calibration subset")
    add_json_argument(parser, "the summary")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    parser.set_defaults(func=run)


def run(args) -> int:
    from .demo import format_summary, run_demo

    # a refused --out, a missing simulator or too many --samples raise ValueError: one-line error
    output_path(args.out, "--out", directory=None, make_parents=True)   # what --force may replace: run_demo
    report = run_demo(args.out, samples=args.samples, steps=args.steps, simulator=args.simulator,
                      cosim=not args.no_cosim, seed=args.seed, force=args.force,
                      progress=not args.no_progress)
    print_result(report, args.json, format_summary)
    return 1 if report["cosim_mismatches"] else 0
