"""Chip image directories: a network compiled for a chip (docs/core-spec.md, section 9).

A chip image directory holds

* ``coreKK/`` for every core ``KK`` (two digits or more, row-major): a complete image
  directory of that core's program (:mod:`neurocore.sw.image_dir`), loadable on its own;
* ``chip.npz``: every core's remote route table (``remote_start_K``, ``remote_core_K``,
  ``remote_axon_K``) and chip-output flags (``to_host_K``), the chip's input map (``inputs_start``, ``inputs_core``,
  ``inputs_axon``) and ``output_order`` (the chip output column of each network output);
* ``manifest.json``: ``format`` "neurocore-image", ``kind`` "chip", ``format_version``,
  ``config`` (``ChipConfig.to_dict()``) and ``config_hash``, ``cores`` (each core's
  directory and config hash), ``slices`` (population -> ``[core, first, stop]`` lists),
  ``encoding``, ``decoding``, ``utilisation`` (per core) and ``files``: the ``sha256`` and
  ``bytes`` of every file of the directory, the cores' files included.

Writing is atomic (one staging directory for the whole chip, :mod:`neurocore.sw.output_dir`);
loading verifies every checksum, every core image (as :func:`load_image_dir` does) and the
chip program (``ChipProgram.validate``).
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from ..hw.chip import ChipConfig, ChipProgram, Routes
from .image_dir import (FORMAT, MANIFEST, ImageDirError, _json_default, _output_rule, _sha256, _write_file,
                        load_image_dir, read_manifest, verify_files, write_image_files)
from .partition import CompiledChip

__all__ = ["CHIP_KIND", "CHIP_FORMAT_VERSION", "CHIP_NPZ", "write_chip_image", "load_chip_image", "load_image",
           "is_chip_image"]

CHIP_KIND = "chip"
CHIP_FORMAT_VERSION = 1
CHIP_NPZ = "chip.npz"


def _core_dir(k: int, n_cores: int) -> str:
    return f"core{k:0{max(2, len(str(n_cores - 1)))}d}"


def write_chip_image(compiled: CompiledChip, path, *, overwrite: bool = False) -> Path:
    """Write ``compiled`` as a chip image directory at ``path`` (atomically); returns the path."""
    from .output_dir import STAGING_MARKER, staged_output

    compiled.chip.validate()
    n = compiled.config.n_cores
    with staged_output(path, **_output_rule(overwrite)) as tmp:
        cores = []
        for k, core in enumerate(compiled.cores):
            name = _core_dir(k, n)
            (tmp / name).mkdir()
            write_image_files(core, tmp / name)
            cores.append({"dir": name, "config_hash": core.config.hash()})
        arrays = {"output_order": np.asarray(compiled.output_order, np.int64),
                  "inputs_start": compiled.chip.inputs.start, "inputs_core": compiled.chip.inputs.core,
                  "inputs_axon": compiled.chip.inputs.axon}
        for k, table in enumerate(compiled.chip.remote):
            arrays |= {f"remote_start_{k}": table.start, f"remote_core_{k}": table.core,
                       f"remote_axon_{k}": table.axon, f"to_host_{k}": compiled.chip.to_host[k]}
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        _write_file(tmp / CHIP_NPZ, buffer.getvalue())
        files = {}
        for file in sorted(p for p in tmp.rglob("*") if p.is_file() and p.name != STAGING_MARKER):
            rel = file.relative_to(tmp).as_posix()
            files[rel] = {"bytes": file.stat().st_size, "sha256": _sha256(file)}
        manifest = {
            "format": FORMAT, "kind": CHIP_KIND, "format_version": CHIP_FORMAT_VERSION,
            "config": compiled.config.to_dict(), "config_hash": compiled.config.hash(),
            "cores": cores,
            "slices": {name: [list(map(int, s)) for s in parts] for name, parts in compiled.slices.items()},
            "encoding": compiled.encoding, "decoding": compiled.decoding,
            "utilisation": compiled.utilisation(), "route_entries": compiled.remote_entries(),
            "files": files,
        }
        _write_file(tmp / MANIFEST, (json.dumps(manifest, indent=2, default=_json_default) + "\n").encode())
    return Path(path)


def is_chip_image(path) -> bool:
    """Whether ``path`` holds a chip image manifest (nothing verified)."""
    try:
        manifest = json.loads((Path(path) / MANIFEST).read_text())
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(manifest, dict) and manifest.get("kind") == CHIP_KIND


def load_chip_image(path) -> CompiledChip:
    """Load and verify a chip image directory; raises :class:`ImageDirError` naming the file."""
    path = Path(path)
    manifest = read_manifest(path, kind=CHIP_KIND, version=CHIP_FORMAT_VERSION)
    verify_files(path, manifest, nested=True)
    try:
        config = ChipConfig.from_dict(manifest["config"])
    except (TypeError, ValueError) as exc:
        raise ImageDirError(f"{MANIFEST}: bad chip config ({exc})") from None
    if config.hash() != manifest["config_hash"]:
        raise ImageDirError(f"{MANIFEST}: config_hash does not match its config; the manifest was modified")
    cores = manifest.get("cores")
    if not isinstance(cores, list) or len(cores) != config.n_cores:
        raise ImageDirError(f"{MANIFEST}: 'cores' must list the {config.n_cores} cores of the "
                            f"{config.rows}x{config.cols} chip")
    compiled = []
    for k, entry in enumerate(cores):
        name = entry.get("dir") if isinstance(entry, dict) else None
        if name != _core_dir(k, config.n_cores):
            raise ImageDirError(f"{MANIFEST}: cores[{k}] must be directory {_core_dir(k, config.n_cores)!r}")
        try:
            compiled.append(load_image_dir(path / name, config=config.core))
        except ImageDirError as exc:
            raise ImageDirError(f"{name}/{exc}") from None
    try:
        with np.load(path / CHIP_NPZ, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        remote = [Routes(arrays[f"remote_start_{k}"], arrays[f"remote_core_{k}"], arrays[f"remote_axon_{k}"])
                  for k in range(config.n_cores)]
        inputs = Routes(arrays["inputs_start"], arrays["inputs_core"], arrays["inputs_axon"])
        order = arrays["output_order"].astype(np.int64)
        to_host = [arrays[f"to_host_{k}"].astype(bool) for k in range(config.n_cores)]
        chip = ChipProgram(config, [c.program for c in compiled], remote, inputs, to_host)
    except KeyError as exc:
        raise ImageDirError(f"{CHIP_NPZ}: missing array {exc}") from None
    except (OSError, ValueError) as exc:
        raise ImageDirError(f"{CHIP_NPZ}: {exc}") from None
    if sorted(order.tolist()) != list(range(chip.n_outputs)):
        raise ImageDirError(f"{CHIP_NPZ}: output_order must be a permutation of the {chip.n_outputs} outputs")
    slices = manifest.get("slices")
    if not isinstance(slices, dict):
        raise ImageDirError(f"{MANIFEST}: 'slices' must be an object")
    return CompiledChip(chip=chip, cores=compiled, slices={k: [tuple(s) for s in v] for k, v in slices.items()},
                        encoding=dict(manifest.get("encoding") or {}), decoding=dict(manifest.get("decoding") or {}),
                        output_order=order)


def load_image(path):
    """A core image (:class:`~neurocore.sw.compiler.CompiledNetwork`) or a chip image
    (:class:`~neurocore.sw.partition.CompiledChip`), whichever ``path`` holds."""
    return load_chip_image(path) if is_chip_image(path) else load_image_dir(path)

