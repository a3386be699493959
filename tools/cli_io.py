"""What the ``neurocore`` commands read and write, shared by every command.

Reading: :func:`parse_config` (``--config``: a CoreConfig from inline JSON or a JSON file),
:func:`load_source` (an image directory or a ``program.npz``), :func:`image_and_test_data`
(an image and the test split it is evaluated on; ``run`` and ``cosim --image``).

Writing: :func:`output_path` checks an output path before any work is done, so that a bad
``-o`` / ``--out`` / ``--plot`` / ``--save-ann`` / ``--work-dir`` is one line naming the
option and the path, and not a traceback at the end of a long run; :func:`plot_path` is the
file a ``--plot PNG`` option writes (matplotlib adds ``.png`` to a name without suffix);
:func:`check_simulation` checks ``--work-dir`` and ``--simulator`` of a co-simulation;
:func:`writing` turns an OS error while writing into the same kind of line.

Every problem is a :class:`~neurocore.tools.cli_common.UsageError` (one line, exit status 2).
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from .cli_common import UsageError

__all__ = ["IMAGE_DEFAULT_STEPS", "parse_config", "load_source", "image_and_test_data", "output_path",
           "plot_path", "check_simulation", "writing"]

IMAGE_DEFAULT_STEPS = 32   # steps per sample of an image whose manifest names none


# -- reading ---------------------------------------------------------------------------------------
def _json_kind(value) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


def _loads(source: str, where: str):
    try:
        return json.loads(source)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise UsageError(f"{where}: JSON nested too deeply") from None


def parse_config(text: str | None, option: str = "--config"):
    """A CoreConfig from inline JSON or a JSON file path (None: the default config).

    ``text`` is inline JSON when it starts with ``{`` or ``[``, or when it is no file but
    valid JSON (``42``, ``true``); else the path of a JSON file. Either must hold a JSON
    object of CoreConfig fields.
    """
    from ..hw.config import CoreConfig

    if text is None:
        return CoreConfig()
    where = option
    if text.lstrip()[:1] in ("{", "["):
        source = text
    elif Path(text).is_file():
        where = f"{option} {text}"
        try:
            source = Path(text).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise UsageError(f"{where}: cannot read the file ({reason})") from None
    elif Path(text).is_dir():
        raise UsageError(f"{option}: {text} is a directory (give a JSON object or a JSON file)")
    else:
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            raise UsageError(f"{option}: no such file: {text} (give a JSON object or a JSON file)") from None
        raise UsageError(f"{option}: expected a JSON object of CoreConfig fields, got {_json_kind(value)}")
    fields = _loads(source, where)
    if not isinstance(fields, dict):
        raise UsageError(f"{where}: expected a JSON object of CoreConfig fields, got {_json_kind(fields)}")
    try:
        return CoreConfig.from_dict(fields)
    except TypeError as exc:   # a field of the wrong kind that the checks did not name
        raise UsageError(f"{where}: {exc}") from None


def load_source(source: str):
    """A CompiledNetwork from an image directory or a program .npz."""
    from ..sw.image_dir import load_image_dir, load_program_npz

    path = Path(source)
    if path.is_dir():
        return load_image_dir(path)
    if path.is_file():
        return load_program_npz(path)
    raise UsageError(f"no such image directory or program file: {source}")


def image_and_test_data(image, *, config=None, dataset=None, data_dir=None, steps=None,
                        encoder=None, limit=None):
    """Load an image directory and the test split it is evaluated on.

    ``config`` is the text of a ``--config`` option (the image must match it). Dataset, steps
    and encoder default to the image's encoding section (else digits,
    :data:`IMAGE_DEFAULT_STEPS`, rate), and so do the encoder's own arguments when the
    encoder is the section's (``encoders.encoding_kwargs``: ``max_rate``, ``t_min``,
    ``window``). Returns ``(compiled, x, y, steps, encoder, dataset_name, encoder_kwargs)``;
    shared by ``run`` and ``cosim --image``.
    """
    from ..sw.datasets import load_dataset
    from ..sw.encoders import ENCODERS, encoding_kwargs
    from ..sw.chip_image import is_chip_image, load_chip_image
    from ..sw.image_dir import load_image_dir

    if config is None and is_chip_image(image):
        compiled = load_chip_image(image)
    else:
        compiled = load_image_dir(image, config=parse_config(config) if config is not None else None)
    enc = compiled.encoding
    dataset_name = dataset or enc.get("dataset") or "digits"
    steps = steps or enc.get("steps") or IMAGE_DEFAULT_STEPS
    encoder = encoder or (enc.get("kind") if enc.get("kind") in ENCODERS else None) or "rate"
    if encoder not in ENCODERS:
        raise UsageError(f"unknown encoder {encoder!r}; choose one of {', '.join(ENCODERS)}")
    try:
        data = load_dataset(dataset_name, data_dir)
    except KeyError as exc:
        raise UsageError(f"unknown dataset {dataset_name!r} ({exc})") from None
    x, y = data.x_test, data.y_test
    if limit is not None:
        x, y = x[:limit], y[:limit]
    if x.shape[1] != compiled.input_axons:
        raise UsageError(f"dataset {dataset_name!r} has {x.shape[1]} features per sample but the image "
                         f"has {compiled.input_axons} input axons")
    kwargs = encoding_kwargs(enc, encoder)
    if kwargs.get("window", 0) > int(steps):
        raise UsageError(f"--steps {steps}: the image's latency code needs at least window = "
                         f"{kwargs['window']} steps")
    return compiled, x, y, int(steps), encoder, dataset_name, kwargs


# -- writing ---------------------------------------------------------------------------------------
def output_path(text, option: str, *, directory: bool | None = False, make_parents: bool = False) -> Path:
    """Check the output path ``text`` of ``option`` before anything is computed; returns it.

    A file output (``directory=False``) must not be an existing directory; a directory
    output (``True``) must not be an existing file; with ``None`` what may be replaced is
    left to the command (``demo --force``). Its parent folder must exist, or with
    ``make_parents`` the nearest existing ancestor must be a folder (the command creates
    the rest). Whether an existing output may be replaced is the command's decision.
    """
    path = Path(text)
    shown = f"{option} {text}"
    if path.is_dir() and directory is False:
        raise UsageError(f"{shown}: is a directory (give a file name)")
    if path.exists() and not path.is_dir() and directory is True:
        raise UsageError(f"{shown}: exists and is not a directory")
    parent = path.absolute().parent
    if not parent.is_dir():
        ancestor = parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if ancestor.exists() and not ancestor.is_dir():
            raise UsageError(f"{shown}: {_shown_ancestor(ancestor, path)} is not a directory")
        if not make_parents:
            raise UsageError(f"{shown}: directory {path.parent} does not exist")
    return path


def _shown_ancestor(ancestor: Path, path: Path) -> str:
    """``ancestor`` as the user wrote it in ``path`` where possible."""
    for candidate in path.parents:
        if candidate.absolute() == ancestor:
            return str(candidate)
    return str(ancestor)


def plot_path(text, option: str = "--plot") -> Path:
    """The file a ``--plot`` option writes (checked as :func:`output_path`).

    matplotlib saves a name without suffix as ``<name>.png``; the path returned is that file,
    so that the command reports what it wrote.
    """
    path = Path(text)
    if not path.suffix:
        path = path.with_name(path.name + ".png")
    return output_path(path, option)


def check_simulation(args) -> None:
    """Before a co-simulation: ``args.work_dir`` (if given) is a usable output folder and
    ``args.simulator`` is installed."""
    from ..sim.cosim import available_simulators

    if args.work_dir is not None:
        output_path(args.work_dir, "--work-dir", directory=True, make_parents=True)
    if args.simulator not in available_simulators():
        raise UsageError(f"simulator {args.simulator} is not installed "
                         f"(available: {', '.join(available_simulators()) or 'none'})")


@contextlib.contextmanager
def writing(option: str, path):
    """OS errors in the block become one line naming ``option``, ``path`` and the OS error."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        what = exc.strerror or str(exc)
        at = exc.filename if exc.filename is not None else None
        detail = f" ({at})" if at is not None and os.fspath(at) != os.fspath(path) else ""
        raise UsageError(f"{option} {path}: cannot write: {what}{detail}") from None
