"""The ``neurocore`` command line.

Each subcommand is one module, ``neurocore.tools.cmd_<name>``, with a ``register(subparsers)``
function (see :mod:`neurocore.tools.cli_common`). To add a command, write that module and
add its name to :data:`COMMANDS`.

Exit status: 0 on success, 2 for a usage error (bad arguments, or a ``UsageError``,
``ValueError``, ``OSError`` or ``MemoryError`` raised by a command; reported as one line
``neurocore: error: <message>`` on stderr, without a traceback; an OS error names its path),
130 on Ctrl-C. Set ``NEUROCORE_DEBUG=1`` to get the traceback of such an error instead.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .cli_common import (PROG, ArgumentParser, LineTracker, MissingCommand, UsageError, add_subcommands,
                         print_error, print_line)

__all__ = ["COMMANDS", "build_parser", "main"]

# Subcommands in the order ``--help`` lists them; ``name`` lives in ``neurocore.tools.cmd_<name>``.
# Planned: none.
COMMANDS: tuple[str, ...] = ("demo", "bench", "verilog", "cosim", "compile", "run", "inspect", "convert", "train-stdp", "synth")

EXAMPLES = """\
examples:
  neurocore demo                    # digits: ANN -> SNN -> images -> golden model + RTL co-sim, report folder
  neurocore demo --json             # the same report as JSON
  neurocore bench golden            # golden-model throughput (SOP/s, neuron updates/s)
  neurocore bench core              # RTL cycle counts in co-simulation (SOP/clock, step cost)
  neurocore verilog -o core.v       # the core as Verilog (default CoreConfig)
  neurocore cosim --random 50 --seed 1 --json   # RTL (cocotb) vs golden model
  neurocore compile IMG -o OUT --config '{"neurons": 128}'   # re-place an image onto another core
  neurocore run IMG --dataset digits --json     # accuracy and spike statistics (golden model)
  neurocore inspect IMG             # verify and summarise a compiled image directory
  neurocore convert --dataset digits --steps 16   # ANN -> int8 SNN, accuracy vs T (golden model)
  neurocore train-stdp --neurons 256 --epochs 12  # unsupervised on-chip STDP (golden model)
  neurocore synth --target ice40-up5k  # FPGA fit and Fmax (Yosys + nextpnr; neurocore[fpga])
  neurocore COMMAND --help          # options and examples of one command
"""


def _version() -> str:
    from importlib import metadata
    try:
        return metadata.version("neurocore")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown (not installed)"


def command_module(name: str):
    """The module implementing subcommand ``name``."""
    return importlib.import_module(f"{__package__}.cmd_{name.replace('-', '_')}")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description="neurocore: hardware/software co-design toolkit for spiking neural networks "
                    "(Amaranth core, numba golden model, compiler and tools).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.set_defaults(command_parser=parser)
    subparsers = add_subcommands(parser, dest="command", metavar="COMMAND", title="commands")
    for name in COMMANDS:
        command_module(name).register(subparsers)
    return parser


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        paths = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 is not None else "")
        return f"{exc.strerror or type(exc).__name__}: {paths}"
    if isinstance(exc, MemoryError):
        return (f"not enough memory ({exc or 'MemoryError'}); ask for less: fewer --steps, samples "
                f"or neurons, or a smaller --batch-size")
    return str(exc) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:  # reported by the command they were given to, which names its own --help
            args.command_parser.error(f"unrecognized arguments: {' '.join(extras)}")
        if isinstance(args.func, MissingCommand):
            args.func()
    except SystemExit as exc:  # --help / --version (0) and argument errors (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    stderr = sys.stderr
    sys.stderr = LineTracker(stderr)
    try:
        status = args.func(args)
        sys.stdout.flush()
        return 0 if status is None else int(status)
    except KeyboardInterrupt:
        print_line(f"{PROG}: interrupted")
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `neurocore demo | head`): stop quietly
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    except (UsageError, ValueError, OSError, MemoryError) as exc:
        if os.environ.get("NEUROCORE_DEBUG"):
            raise
        print_error(_describe(exc))
        return 2
    finally:
        sys.stderr = stderr


if __name__ == "__main__":
    raise SystemExit(main())
