"""``neurocore cosim``: run random programs on the RTL (cocotb) and the golden model, compare."""
from __future__ import annotations

import argparse

from .cli_common import (UsageError, add_command, add_dataset_arguments, add_json_argument, add_seed_argument,
                         add_steps_argument, positive_int, print_json)
from .cli_io import check_simulation, image_and_test_data


DESCRIPTION = """\
Co-simulate the core on the generated Verilog under cocotb against the golden
model, comparing every output spike and, at the end, v, refrac, theta, traces
and every weight read back over the host interface. Two sources of work:

  --random N    N random programs (every feature, learning off and on, three
                width configurations; N <= 10^9, drawn one at a time, so a
                large N starts at once)
  --image DIR   a compiled image directory, on --samples test samples of its
                dataset, encoded as `neurocore run` encodes them; also reports
                both sides' accuracy and per-sample spike-count agreement

With --stall P the consumers of spike_out and rsp hold ready low with
probability P (0 <= P < 1) in every cycle in which the core offers a word; the
summary's stall_cycles counts those cycles. The comparison is unchanged: every
output spike must arrive once, in the order the spec gives.

Exit status 1 when anything mismatches."""

EXAMPLES = """\
neurocore cosim --random 50 --seed 1 --json
neurocore cosim --random 20 --stall 0.9 --json  # a consumer that is mostly busy
neurocore cosim --random 10 --simulator icarus
neurocore cosim --random 4 --waves --work-dir build/cosim   # FST/VCD waveforms
neurocore cosim --image build/digits-img --samples 50 --json"""


def register(subparsers) -> None:
    parser = add_command(subparsers, "cosim", help="RTL vs golden model on random programs",
                         description=DESCRIPTION, examples=EXAMPLES)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--random", type=_program_count, metavar="N",
                        help="number of random programs (1..10^9)")
    source.add_argument("--image", metavar="DIR", help="compiled image directory to run on test samples")
    parser.add_argument("--samples", type=positive_int, default=50, metavar="N",
                        help="with --image: test samples to run (default: %(default)s)")
    add_dataset_arguments(parser, default=None, default_text="the image's", when="with --image: ")
    add_steps_argument(parser, "with --image: steps per sample (default: the image's)")
    parser.add_argument("--encoder", default=None, help="with --image: spike encoder (default: the image's)")
    parser.add_argument("--stall", type=_stall_probability, default=0.0, metavar="P",
                        help="with --random: probability that spike_out.ready and rsp.ready are "
                             "low in a cycle, 0 <= P < 1 (default: %(default)s)")
    add_seed_argument(parser, "seed of the program generator and the stall draws, or of the input encoder")
    parser.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator",
                        help="HDL simulator (default: %(default)s)")
    parser.add_argument("--waves", action="store_true",
                        help="dump waveforms (Verilator: FST, Icarus: FST) into the work directory")
    parser.add_argument("--work-dir", metavar="DIR", default=None,
                        help="where the Verilog, builds and waveforms go (default: a new temporary directory)")
    add_json_argument(parser, "the summary")
    parser.set_defaults(func=run)


def _program_count(text: str) -> int:
    from ..sim.cosim import check_program_count

    try:
        return check_program_count(positive_int(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _stall_probability(text: str) -> float:
    from ..sim.host_driver import check_stall

    try:
        return check_stall(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def run(args) -> int:
    from ..sim.cosim import random_cosim

    check_simulation(args)
    if args.image is not None:
        if args.stall:
            raise UsageError("--stall applies to --random only")
        return run_image(args)
    summary = random_cosim(args.random, args.seed, simulator=args.simulator, work_dir=args.work_dir,
                           waves=args.waves, progress=not args.json, stall=args.stall)
    if args.json:
        print_json(summary)
    else:
        print(f"{summary['programs']} programs ({summary['learning_programs']} with learning) on "
              f"{summary['simulator']}, stall {summary['stall']}: {summary['mismatches']} mismatches, "
              f"{summary['stall_cycles']} stall cycles")
        print(f"  {summary['steps']} steps, {summary['sops']} synaptic ops, {summary['cycles']} cycles "
              f"({summary['sop_per_cycle']} SOP/cycle), {summary['output_spikes']} output spikes, "
              f"{summary['weight_changes']} weights changed by learning")
        print("  programs using " + ", ".join(f"{name.replace('_', ' ')}: {count}"
                                               for name, count in summary["features"].items()))
        print(f"  build {summary['build_seconds']} s, simulation {summary['sim_seconds']} s "
              f"({summary['sim_cycles_per_s']} simulated cycles/s); files in {summary['work_dir']}")
        for failure in summary["failures"]:
            print(f"  case {failure['case']} (learn={failure['learn']}): {'; '.join(failure['problems'][:3])}")
    return 1 if summary["mismatches"] else 0


def run_image(args) -> int:
    from ..sw.image_cosim import image_cosim

    compiled, x, y, steps, encoder, dataset, encoder_kwargs = image_and_test_data(
        args.image, dataset=args.dataset, data_dir=args.data_dir, steps=args.steps,
        encoder=args.encoder, limit=args.samples)
    from ..sw.partition import CompiledChip
    if isinstance(compiled, CompiledChip):
        raise UsageError(f"{args.image} is a {compiled.config.rows}x{compiled.config.cols} chip image: its RTL "
                         "co-simulation needs the chip RTL, which is not built yet; co-simulate one of its "
                         "core directories")
    summary = image_cosim(compiled, x, y, steps=steps, encoder=encoder, seed=args.seed,
                          encoder_kwargs=encoder_kwargs,
                          simulator=args.simulator, work_dir=args.work_dir, waves=args.waves)
    summary = {"image": str(args.image), "dataset": dataset, **summary}
    if args.json:
        print_json(summary)
    else:
        print(f"{summary['samples']} {dataset} test samples of {args.image} on {summary['simulator']}, "
              f"{steps} steps, {encoder} encoding: {summary['mismatches']} mismatches")
        print(f"  equal spike counts on {summary['samples_with_equal_spike_counts']}/{summary['samples']} "
              f"samples; accuracy RTL {summary['rtl_accuracy']:.4f}, golden {summary['golden_accuracy']:.4f}")
        print(f"  {summary['sops']} synaptic ops in {summary['cycles']} cycles "
              f"({summary['sop_per_cycle']} SOP/cycle, {summary['cycles_per_sample']} cycles/sample); "
              f"build {summary['build_seconds']} s, simulation {summary['sim_seconds']} s")
        for problem in summary["problems"]:
            print(f"  {problem}")
    return 1 if summary["mismatches"] else 0
