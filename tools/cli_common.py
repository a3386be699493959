"""Shared pieces of the ``neurocore`` command line: the error type, argument types, helpers.

A command lives in its own module ``neurocore.tools.cmd_<name>`` with a
``register(subparsers)`` function that calls :func:`add_command` and sets ``func`` (the
function that runs the command, ``args -> int``) as a parser default. Command modules
import only this module at import time; heavy imports (numba, amaranth, cocotb) go inside
the function that runs the command, so ``neurocore --help`` stays instant.
"""
from __future__ import annotations

import argparse
import json
import sys

__all__ = ["UsageError", "ArgumentParser", "add_command", "positive_int", "non_negative_int",
           "print_json"]

PROG = "neurocore"


class UsageError(Exception):
    """A user mistake (bad input, missing file, impossible request), reported in one line.

    The CLI turns it, like ``ValueError`` and ``FileNotFoundError``, into
    ``neurocore: error: <message>`` on stderr and exit status 2, without a traceback.
    """


class ArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line: ``neurocore: error: <message>``.

    argparse's default prints the usage and the error on separate lines; one line is easier
    to read in logs and to test. The line names the failing (sub)command's ``--help``.
    """

    def error(self, message: str):  # noqa: D102 - argparse API
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
    return subparsers.add_parser(
        name, help=help, description=description, epilog=f"examples:\n{body}",
        formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)


def add_image_arguments(parser) -> None:
    """``IMAGE_DIR`` and ``--config``: the image a command reads, and the core it must match."""
    parser.add_argument("image", metavar="IMAGE_DIR", help="image directory (neurocore compile output)")
    parser.add_argument("--config", metavar="JSON_OR_FILE", default=None,
                        help="refuse the image unless it was compiled for this CoreConfig "
                             "(JSON object or JSON file)")


def _int_at_least(minimum: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value
    parse.__name__ = what  # argparse names the type in some messages
    return parse


positive_int = _int_at_least(1, "a positive integer")
non_negative_int = _int_at_least(0, "a non-negative integer")


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
