"""``neurocore cosim``: run random programs on the RTL (cocotb) and the golden model, compare."""
from __future__ import annotations

from .cli_common import (add_command, add_dataset_arguments, add_json_argument, add_seed_argument,
                         add_steps_argument, positive_int, print_json)
from .cli_io import check_simulation, image_and_test_data

DESCRIPTION = """\
Co-simulate the core on the generated Verilog under cocotb against the golden
model, comparing every output spike and, at the end, v, refrac, theta, traces
and every weight read back over the host interface. Two sources of work:

  --random N    N random programs (every feature, learning off and on, three
                width configurations)
  --image DIR   a compiled image directory, on --samples test samples of its
                dataset, encoded as `neurocore run` encodes them; also reports
                both sides' accuracy and per-sample spike-count agreement

Exit status 1 when anything mismatches."""

EXAMPLES = """\
neurocore cosim --random 50 --seed 1 --json
neurocore cosim --random 10 --simulator icarus
neurocore cosim --random 4 --waves --work-dir build/cosim   # FST/VCD waveforms
neurocore cosim --image build/digits-img --samples 50 --json"""


def register(subparsers) -> None:
    parser = add_command(subparsers, "cosim", help="RTL vs golden model on random programs",
                         description=DESCRIPTION, examples=EXAMPLES)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--random", type=positive_int, metavar="N", help="number of random programs")
    source.add_argument("--image", metavar="DIR", help="compiled image directory to run on test samples")
    parser.add_argument("--samples", type=positive_int, default=50, metavar="N",
                        help="with --image: test samples to run (default: %(default)s)")
    add_dataset_arguments(parser, default=None, default_text="the image's", when="with --image: ")
    add_steps_argument(parser, "with --image: steps per sample (default: the image's)")
    parser.add_argument("--encoder", default=None, help="with --image: spike encoder (default: the image's)")
    add_seed_argument(parser, "seed of the program generator or of the input encoder")
    parser.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator",
                        help="HDL simulator (default: %(default)s)")
    parser.add_argument("--waves", action="store_true",
                        help="dump waveforms (Verilator: FST, Icarus: FST) into the work directory")
    parser.add_argument("--work-dir", metavar="DIR", default=None,
                        help="where the Verilog, builds and waveforms go (default: a new temporary directory)")
    add_json_argument(parser, "the summary")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..sim.cosim import random_cosim

    check_simulation(args)
    if args.image is not None:
        return run_image(args)
    summary = random_cosim(args.random, args.seed, simulator=args.simulator, work_dir=args.work_dir,
                           waves=args.waves, progress=not args.json)
    if args.json:
        print_json(summary)
    else:
        print(f"{summary['programs']} programs ({summary['learning_programs']} with learning) on "
              f"{summary['simulator']}: {summary['mismatches']} mismatches")
        print(f"  {summary['steps']} steps, {summary['sops']} synaptic ops, {summary['cycles']} cycles "
              f"({summary['sop_per_cycle']} SOP/cycle), {summary['output_spikes']} output spikes, "
              f"{summary['weight_changes']} weights changed by learning")
        print(f"  build {summary['build_seconds']} s, simulation {summary['sim_seconds']} s "
              f"({summary['sim_cycles_per_s']} simulated cycles/s); files in {summary['work_dir']}")
        for failure in summary["failures"]:
            print(f"  case {failure['case']} (learn={failure['learn']}): {'; '.join(failure['problems'][:3])}")
    return 1 if summary["mismatches"] else 0


def run_image(args) -> int:
    from ..sw.image_cosim import image_cosim

    compiled, x, y, steps, encoder, dataset = image_and_test_data(
        args.image, dataset=args.dataset, data_dir=args.data_dir, steps=args.steps,
        encoder=args.encoder, limit=args.samples)
    summary = image_cosim(compiled, x, y, steps=steps, encoder=encoder, seed=args.seed,
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
