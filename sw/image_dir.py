"""Image directories: a compiled network on disk, for the RTL (``$readmemh``) and for Python.

An image directory holds:

* one ``<region>.hex`` file per program memory region: ``param.hex`` (N words),
  ``pointer.hex`` (A), ``synapse.hex`` (S), ``theta.hex`` (N, only with
  ``adaptive_threshold``) and ``ltp_range.hex`` (N, the LTP axon range of every neuron, only
  with ``learning``). ``$readmemh`` format: one word per line, lower-case hex,
  zero-padded to ``ceil(bits / 4)`` digits, words packed exactly as
  :func:`neurocore.hw.images.program_images` packs them. Only the used prefix of each
  memory is written (word ``i`` of the file is address ``i``).
* ``program.npz``: every :class:`CoreProgram` array plus the config, learning parameters and
  network metadata as JSON strings (no pickles), for Python.
* ``manifest.json``, with the fields

  ``format`` ("neurocore-image"), ``format_version`` (3; older images are rejected with the command that
  re-compiles them from their ``program.npz``: version 2 named the LTP axon ranges
  ``rpointer.hex``, version 1 predates synapse rows of consecutive targets), ``created_by``;
  ``config`` (``CoreConfig.to_dict()``) and ``config_hash`` (``CoreConfig.hash()``);
  ``registers``: register name -> value from ``program_registers(program, learn=False)``;
  ``learning``: ``plastic_synapses``, ``enabled`` and ``params`` (the LearningParams);
  ``layers``: per population ``name``, ``first_neuron``, ``size``, ``neurons`` [first, last],
  ``axons`` [first, last] or null, ``wta_group`` (0: none), ``output``, ``synapses_in``,
  ``plastic_synapses_in``; ``input_axons``; ``outputs``: ``layers``, ``neurons``,
  ``neuron_indices`` (output column order); ``encoding`` and ``decoding`` (as compiled);
  ``network``: totals (inputs, neurons, axons, synapses, plastic_synapses, outputs,
  wta_groups, learning) and ``projections`` (source, target, plastic, synapses);
  ``utilisation``: used / capacity / percent of neurons, axons, synapses, wta_groups;
  ``files``: per file ``sha256`` and ``bytes``, and for ``.hex`` files ``region``,
  ``region_id`` (``hw.host.Region``), ``words``, ``word_bits``, ``hex_digits``.

:func:`write_image_dir` is atomic: everything is written and fsynced in a temporary
sibling directory that is swapped into place, and it replaces only an earlier output of
neurocore (:mod:`neurocore.sw.output_dir`); :func:`check_metadata` refuses, before anything
is written, metadata that the loader would refuse. :func:`load_image_dir` trusts nothing: it
checks every checksum, the config hash, the program's validity, the type and range of
every metadata field (:func:`check_metadata`), that the ``.hex`` files equal the memory
images of the program in ``program.npz`` and that the manifest agrees with the program.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..hw.config import CoreConfig
from ..hw.program import NEURON_FIELDS, CoreProgram, LearningParams, NeuronParams, Segments, WtaBlocks
from .compiler import CompiledNetwork
from .output_dir import IMAGE_FORMAT as FORMAT
from .output_dir import IMAGE_MANIFEST as MANIFEST

__all__ = ["ImageDirError", "write_image_dir", "write_image_files", "check_image_path", "check_metadata", "load_image_dir", "load_program_npz", "build_manifest",
           "REGION_FILES", "FORMAT", "FORMAT_VERSION", "MANIFEST", "PROGRAM_NPZ", "hex_files"]

FORMAT_VERSION = 4     # 4: segment lists with offsets (pointer words gain seg_offset)
PROGRAM_NPZ = "program.npz"
# region name (hw.host.Region) -> file name, in the order they are written
REGION_FILES = {"PARAM": "param.hex", "POINTER": "pointer.hex", "SYNAPSE": "synapse.hex",
                "THETA": "theta.hex", "LTP_RANGE": "ltp_range.hex", "SEGMENT": "segment.hex",
                "NCLASS": "nclass.hex"}
# Optional program.npz arrays (absent in programs without shared rows or WTA blocks, and in
# files written before they existed): name -> (part of CoreProgram, field).
# Segments are stored as the core holds them: lists with offsets.
_SEGMENT_FIELDS = ("start", "length", "offset", "base", "count", "first")
_OPTIONAL_ARRAYS = {f"segments_{f}": ("segments", f) for f in _SEGMENT_FIELDS} | \
                   {f"wta_blocks_{f}": ("wta_blocks", f) for f in ("first", "size", "count", "k")}
_LEARNING_FIELDS = tuple(f.name for f in dataclasses.fields(LearningParams))


def _json_default(value):
    """numpy scalars and arrays as plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class ImageDirError(ValueError):
    """An image directory that cannot be written or loaded (one line, names the file)."""


# -- memory images -------------------------------------------------------------------------------
def _word_bits(config: CoreConfig, region) -> int:
    from amaranth.hdl import Shape

    from ..hw.host import word_shape
    return Shape.cast(word_shape(config, region)).width


def hex_files(program: CoreProgram) -> dict[str, dict]:
    """``{file name: {"region", "region_id", "word_bits", "hex_digits", "words" (list of int)}}``."""
    from ..hw.images import program_images

    images = program_images(program)
    files = {}
    for region, words in images.items():
        bits = _word_bits(program.config, region)
        files[REGION_FILES[region.name]] = {"region": region.name, "region_id": region.value,
                                            "word_bits": bits, "hex_digits": -(-bits // 4),
                                            "words": [int(w) for w in words]}
    return files


def _hex_text(words: list[int], digits: int) -> bytes:
    return "".join(f"{w:0{digits}x}\n" for w in words).encode("ascii")


def _parse_hex(path: Path, digits: int, bits: int) -> list[int]:
    words = []
    try:
        text = path.read_text("ascii")
    except UnicodeDecodeError:
        raise ImageDirError(f"{path.name}: not a hex file (non-ASCII bytes)") from None
    for line_no, line in enumerate(text.splitlines(), start=1):
        if len(line) != digits:
            raise ImageDirError(f"{path.name} line {line_no}: expected {digits} hex digits, got {line!r:.40}")
        try:
            word = int(line, 16)
        except ValueError:
            raise ImageDirError(f"{path.name} line {line_no}: not a hex word: {line!r:.40}") from None
        if word >> bits:
            raise ImageDirError(f"{path.name} line {line_no}: word {line} is wider than {bits} bits")
        words.append(word)
    return words


# -- program.npz ---------------------------------------------------------------------------------
def _npz_arrays(compiled: CompiledNetwork) -> dict[str, np.ndarray]:
    p = compiled.program
    lp = p.learning
    arrays = {
        "format": np.array(FORMAT),
        "format_version": np.array(FORMAT_VERSION),
        "config_json": np.array(json.dumps(p.config.to_dict(), sort_keys=True)),
        "learning_json": np.array(json.dumps(dataclasses.asdict(lp))),   # plain int / bool fields
        "meta_json": np.array(json.dumps(compiled.meta(), sort_keys=True, default=_json_default)),
        "n_inputs": np.array(p.n_inputs, np.int64),
        "ptr": p.ptr, "target": p.target, "weight": p.weight, "plastic": p.plastic,
        "route": p.route, "outputs": p.outputs, "theta": p.theta,
    }
    for f in NEURON_FIELDS:
        arrays[f"neurons_{f}"] = getattr(p.neurons, f)
    if p.shared:
        arrays.update({f"segments_{f}": getattr(p.segments, f) for f in _SEGMENT_FIELDS})
    if len(p.wta_blocks):
        arrays.update({f"wta_blocks_{f}": getattr(p.wta_blocks, f) for f in ("first", "size", "count", "k")})
    if compiled.synapse_projection is not None:
        arrays["synapse_projection"] = compiled.synapse_projection
    return arrays


def _npz_bytes(compiled: CompiledNetwork) -> bytes:
    import io
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **_npz_arrays(compiled))
    return buffer.getvalue()


def load_program_npz(path, *, config: CoreConfig | None = None) -> CompiledNetwork:
    """A :class:`CompiledNetwork` from a ``program.npz`` (validated; ``config`` must match)."""
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise ImageDirError(f"no such program file: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:  # zipfile / numpy format errors of every kind
        raise ImageDirError(f"{name}: not a readable .npz file ({type(exc).__name__}: {exc})") from None
    required = ["format", "config_json", "learning_json", "meta_json", "n_inputs", "ptr", "target",
                "weight", "plastic", "route", "outputs", "theta"] + [f"neurons_{f}" for f in NEURON_FIELDS]
    missing = [k for k in required if k not in arrays]
    if missing:
        raise ImageDirError(f"{name}: not a neurocore program (missing {', '.join(missing)})")
    if str(arrays["format"]) != FORMAT:
        raise ImageDirError(f"{name}: format is {str(arrays['format'])!r}, expected {FORMAT!r}")
    try:
        stored = CoreConfig.from_dict(json.loads(str(arrays["config_json"])))
        learning = json.loads(str(arrays["learning_json"]))
        meta = json.loads(str(arrays["meta_json"]))
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise ImageDirError(f"{name}: bad config/learning/metadata ({exc})") from None
    except RecursionError:
        raise ImageDirError(f"{name}: config/learning/metadata JSON is nested too deeply") from None
    if config is not None and config != stored:
        raise ImageDirError(f"{name}: {_config_mismatch(stored, config)}")
    if not isinstance(learning, dict):
        raise ImageDirError(f"{name}: learning_json must be a JSON object, got {type(learning).__name__}")
    try:
        # Values go in as stored: LearningParams and CoreProgram refuse floats, strings,
        # bools and arrays (a 0-d integer array counts as its value), so nothing is truncated.
        lp = LearningParams(**{f: learning.get(f) for f in _LEARNING_FIELDS})
        neurons = NeuronParams(**{f: arrays[f"neurons_{f}"] for f in NEURON_FIELDS})
        parts = {}
        for key, (part, field) in _OPTIONAL_ARRAYS.items():
            if key in arrays:
                parts.setdefault(part, {})[field] = arrays[key]
        for part, fields in parts.items():
            if len(fields) != {"segments": len(_SEGMENT_FIELDS), "wta_blocks": 4}[part]:
                raise ValueError(f"{part} is incomplete: it has {', '.join(sorted(fields))}")
        program = CoreProgram(config=stored, n_inputs=arrays["n_inputs"], ptr=arrays["ptr"],
                              target=arrays["target"], weight=arrays["weight"], plastic=arrays["plastic"],
                              neurons=neurons, route=arrays["route"], outputs=arrays["outputs"],
                              learning=lp, theta=arrays["theta"],
                              segments=Segments(**parts["segments"]) if "segments" in parts else None,
                              wta_blocks=WtaBlocks(**parts["wta_blocks"]) if "wta_blocks" in parts else None)
        program.validate()
    except (KeyError, TypeError, ValueError) as exc:
        raise ImageDirError(f"{name}: invalid program: {exc}") from None
    sp = arrays.get("synapse_projection")
    if sp is not None and (sp.ndim != 1 or not np.issubdtype(sp.dtype, np.integer)):
        raise ImageDirError(f"{name}: synapse_projection must be a 1-D integer array, got {sp.dtype} "
                            f"of shape {sp.shape}")
    try:
        check_metadata(meta, program.n_outputs)
        # from_meta checks synapse_projection (CompiledNetwork.check_synapse_projection), its
        # range before any cast, so a uint64 2^64-1 cannot wrap to the gap id -1
        compiled = CompiledNetwork.from_meta(program, meta, arrays.get("synapse_projection"))
    except ValueError as exc:
        raise ImageDirError(f"{name}: {exc}") from None
    _check_meta(compiled, name)
    return compiled


# -- network metadata ----------------------------------------------------------------------------
_META_FIELDS = ("layers", "layer_axons", "wta_groups", "input_axons", "output_layers", "encoding", "decoding",
                "projections")


def _bad(field: str, want: str, value) -> ValueError:
    text = repr(value)
    return ValueError(f"metadata field {field} must be {want}, got {text[:60]}{'...' if len(text) > 60 else ''}")


def _int_field(value, field: str, low: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _bad(field, f"an integer >= {low}", value)


def _object_field(value, field: str) -> dict:
    if not isinstance(value, dict):
        raise _bad(field, "a JSON object", value)
    return value


def _range_field(value, field: str) -> None:
    """``[first, size]`` of a layer's neurons or axons."""
    if not isinstance(value, list) or len(value) != 2:
        raise _bad(field, "[first, size]", value)
    _int_field(value[0], f"{field}[0] (first)")
    _int_field(value[1], f"{field}[1] (size)", 1)


def check_metadata(meta, n_outputs: int) -> dict:
    """Check the network metadata of an image (:meth:`CompiledNetwork.meta`, as JSON) by type
    and range; returns it. Raises ``ValueError``, one line naming the field.

    ``layers`` and ``layer_axons``: layer name -> ``[first, size]`` (ints, size >= 1);
    ``wta_groups``: layer -> group id >= 1; ``input_axons``: int >= 0; ``output_layers``:
    layer names; ``projections``: objects with ``source``, ``target`` (layer names or
    ``"input"``), ``plastic`` (bool) and ``synapses`` (int >= 0); ``encoding``:
    :func:`neurocore.sw.encoders.check_encoding`; ``decoding``: ``kind`` "count" or "vote",
    ``n_classes`` an int, ``labels`` ints, then the compiler's rule for decodings (count:
    one output neuron per class; vote: a label in -1..n_classes-1 per output neuron).
    Whether the layers cover the program is checked against the program afterwards.
    """
    from .compiler import _normalise_decoding
    from .encoders import check_encoding
    from .network import INPUT

    meta = _object_field(meta, "(the metadata)")
    missing = [k for k in _META_FIELDS if k not in meta]
    if missing:
        raise ValueError(f"metadata field(s) {', '.join(missing)} missing")
    layers = _object_field(meta["layers"], "layers")
    for layer, value in layers.items():
        _range_field(value, f"layers.{layer}")

    def layer_name(value, field: str, *, input_ok: bool = False) -> None:
        if not isinstance(value, str) or (value not in layers and not (input_ok and value == INPUT)):
            raise _bad(field, "the name of a layer" + (" or 'input'" if input_ok else ""), value)

    for layer, value in _object_field(meta["layer_axons"], "layer_axons").items():
        layer_name(layer, "layer_axons (a key)")
        _range_field(value, f"layer_axons.{layer}")
    for layer, value in _object_field(meta["wta_groups"], "wta_groups").items():
        layer_name(layer, "wta_groups (a key)")
        _int_field(value, f"wta_groups.{layer}", 1)
    _int_field(meta["input_axons"], "input_axons")
    if not isinstance(meta["output_layers"], list):
        raise _bad("output_layers", "a list of layer names", meta["output_layers"])
    for i, layer in enumerate(meta["output_layers"]):
        layer_name(layer, f"output_layers[{i}]")
    if not isinstance(meta["projections"], list):
        raise _bad("projections", "a list", meta["projections"])
    for i, pr in enumerate(meta["projections"]):
        field = f"projections[{i}]"
        _object_field(pr, field)
        layer_name(pr.get("source"), f"{field}.source", input_ok=True)
        layer_name(pr.get("target"), f"{field}.target")
        if not isinstance(pr.get("plastic"), bool):
            raise _bad(f"{field}.plastic", "true or false", pr.get("plastic"))
        _int_field(pr.get("synapses"), f"{field}.synapses")
    check_encoding(meta["encoding"])
    decoding = _object_field(meta["decoding"], "decoding")
    if not isinstance(decoding.get("kind"), str):
        raise _bad("decoding.kind", "'count' or 'vote'", decoding.get("kind"))
    if "n_classes" in decoding:
        _int_field(decoding["n_classes"], "decoding.n_classes", 1 if n_outputs else 0)   # no outputs: 0 classes
    labels = decoding.get("labels", [])
    if not isinstance(labels, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in labels):
        raise _bad("decoding.labels", "a list of integers", labels)
    _normalise_decoding(decoding, n_outputs)
    return meta


def _check_meta(compiled: CompiledNetwork, name: str) -> None:
    """The layer map must cover the program consistently."""
    p = compiled.program
    pos = 0
    # in neuron order (the manifest's JSON keeps keys sorted by name, not by position)
    for layer, (first, size) in sorted(compiled.layers.items(), key=lambda item: item[1][0]):
        if first != pos or size < 1:
            raise ImageDirError(f"{name}: layer '{layer}' at neurons {first}..{first + size - 1} does not "
                                f"follow the previous layer (expected first neuron {pos})")
        pos += size
    if pos != p.n_neurons:
        raise ImageDirError(f"{name}: layers cover {pos} neurons, the program has {p.n_neurons}")
    if compiled.input_axons != p.n_inputs:
        raise ImageDirError(f"{name}: input_axons = {compiled.input_axons} but the program has "
                            f"{p.n_inputs} host inputs")
    expected = [np.arange(compiled.layers[n][0], sum(compiled.layers[n])) for n in compiled.output_layers]
    expected = np.concatenate(expected) if expected else np.zeros(0, np.int64)
    if not np.array_equal(expected, p.outputs):
        raise ImageDirError(f"{name}: output layers {compiled.output_layers} do not match the program's outputs")
    # synapse_projection against the program and the projections: from_meta checked it


# -- manifest ------------------------------------------------------------------------------------
def _version() -> str:
    from importlib import metadata
    try:
        return metadata.version("neurocore")
    except metadata.PackageNotFoundError:
        return "unknown"


def _manifest_body(compiled: CompiledNetwork) -> dict:
    """Every manifest field derived from the compiled network (not the files)."""
    from ..hw.images import program_registers

    p = compiled.program
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": p.config.to_dict(),
        "config_hash": p.config.hash(),
        "registers": {reg.name: int(value) for reg, value in program_registers(p, learn=False).items()},
        "learning": {"plastic_synapses": int(p.plastic.sum()),
                     "enabled": bool(p.config.learning and p.plastic.any()),
                     "params": dataclasses.asdict(p.learning)},
        "layers": compiled.summary()["layers"],
        "input_axons": compiled.input_axons,
        "outputs": {"layers": list(compiled.output_layers), "neurons": int(p.n_outputs),
                    "neuron_indices": [int(n) for n in p.outputs]},
        "encoding": compiled.encoding,
        "decoding": compiled.decoding,
        "network": {k: v for k, v in compiled.summary().items() if k != "layers"},
        "utilisation": compiled.utilisation(),
    }


def build_manifest(compiled: CompiledNetwork, files: dict[str, dict]) -> dict:
    """The manifest of ``compiled``; ``files`` maps file name -> its entry (sha256, ...)."""
    return {**_manifest_body(compiled), "created_by": f"neurocore {_version()}", "files": files}


def _json_roundtrip(data):
    return json.loads(json.dumps(data, sort_keys=True, default=_json_default))


# -- writing -------------------------------------------------------------------------------------
def _write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and fsync it (one file of the image)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _output_rule(overwrite: bool) -> dict:
    from .output_dir import ANY_OUTPUT
    return {"replace": ANY_OUTPUT if overwrite else (), "error": ImageDirError,
            "hint": "use overwrite=True / --force to replace it"}


def check_image_path(path, *, overwrite: bool = False) -> None:
    """Raise :class:`ImageDirError` unless :func:`write_image_dir` may write ``path`` (call it
    before a long computation whose result goes there)."""
    from .output_dir import check_output_dir
    check_output_dir(path, **_output_rule(overwrite))


def write_image_dir(compiled: CompiledNetwork, path, *, overwrite: bool = False) -> Path:
    """Write ``compiled`` as an image directory at ``path`` (atomically); returns the path.

    Written through :func:`neurocore.sw.output_dir.staged_output`: everything goes into a
    hidden staging sibling (``.<name>.tmp-<random>``), each file fsynced, and the directory
    is then swapped into place (atomically, with ``renameat2(RENAME_EXCHANGE)`` on Linux).
    An existing ``path`` is refused unless ``overwrite``, and even then it is replaced only
    if it is an earlier neurocore output (an image directory or demo report whose marker
    file lists every file in it) or an empty directory -- never the current directory or
    one of its parents, a link, a file or a directory of other files. The leftovers of
    earlier, killed writes of ``path`` are removed. On any error (``KeyboardInterrupt``
    included) the staging directory is removed and ``path`` is left as it was.
    """
    from .output_dir import staged_output

    compiled.program.validate()
    try:   # nothing is written that load_image_dir would refuse
        check_metadata(_json_roundtrip(compiled.meta()), compiled.n_outputs)
    except ValueError as exc:
        raise ImageDirError(f"cannot write {path}: {exc}") from None
    with staged_output(path, **_output_rule(overwrite)) as tmp:
        write_image_files(compiled, tmp)
    return Path(path)


def write_image_files(compiled: CompiledNetwork, directory: Path) -> None:
    """The files of an image directory (hex files, ``program.npz``, ``manifest.json``) into
    the existing, empty ``directory``, each fsynced; no staging (the caller's)."""
    compiled.program.validate()
    entries = {}
    for name, info in hex_files(compiled.program).items():
        data = _hex_text(info["words"], info["hex_digits"])
        _write_file(directory / name, data)
        entries[name] = {"region": info["region"], "region_id": info["region_id"],
                         "words": len(info["words"]), "word_bits": info["word_bits"],
                         "hex_digits": info["hex_digits"], "bytes": len(data),
                         "sha256": hashlib.sha256(data).hexdigest()}
    data = _npz_bytes(compiled)
    _write_file(directory / PROGRAM_NPZ, data)
    entries[PROGRAM_NPZ] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest = build_manifest(compiled, entries)
    text = json.dumps(manifest, indent=2, default=_json_default) + "\n"
    _write_file(directory / MANIFEST, text.encode())


# -- loading -------------------------------------------------------------------------------------
def _config_mismatch(image: CoreConfig, wanted: CoreConfig, *, image_label: str = "image",
                     wanted_label: str = "requested",
                     what: str = "the image was compiled for another core") -> str:
    a, b = image.to_dict(), wanted.to_dict()
    diff = ", ".join(f"{k}: {image_label} {a[k]!r}, {wanted_label} {b[k]!r}" for k in a if a[k] != b[k])
    return f"config mismatch: {what} ({diff})"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(path, *, kind: str | None = None, version: int = FORMAT_VERSION) -> dict:
    """The parsed ``manifest.json`` of an image directory (format checked, nothing else).

    ``kind`` is the image's ``kind`` field: None for a core image, ``"chip"`` for a chip
    image (:mod:`neurocore.sw.chip_image`); an image of the other kind is refused by name."""
    from .output_dir import recover

    path = Path(path)
    if not path.exists() and not recover(path):   # recover: a swap interrupted between its renames
        raise ImageDirError(f"no such image directory: {path}")
    if not path.is_dir():
        raise ImageDirError(f"{path} is not an image directory (not a directory)")
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise ImageDirError(f"{path} is not an image directory (no {MANIFEST})")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ImageDirError(f"{MANIFEST}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ImageDirError(f"{MANIFEST}: JSON nested too deeply") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ImageDirError(f"{MANIFEST}: not a neurocore image manifest (format {FORMAT!r} expected)")
    if manifest.get("kind") != kind:
        if manifest.get("kind") == "chip":
            raise ImageDirError(f"{path} is a chip image ({manifest.get('config', {}).get('rows')}x"
                                f"{manifest.get('config', {}).get('cols')} cores); this needs a core image "
                                "(one of its core directories is one)")
        raise ImageDirError(f"{path} is a core image, not a {kind} image")
    if manifest.get("format_version") != version:
        raise ImageDirError(f"{MANIFEST}: format_version {manifest.get('format_version')!r} is not "
                            f"supported (this neurocore reads version {version}; re-compile it with "
                            f"`neurocore compile {path / PROGRAM_NPZ} -o NEW_DIR`)")
    for key in ("config", "config_hash", "files"):
        if key not in manifest:
            raise ImageDirError(f"{MANIFEST}: missing field {key!r}")
    if not isinstance(manifest["files"], dict):
        raise ImageDirError(f"{MANIFEST}: field 'files' must be an object")
    return manifest


def verify_files(path: Path, manifest: dict, *, nested: bool = False) -> None:
    """Every file the manifest lists exists under ``path`` with its ``sha256`` (``nested``:
    paths into subdirectories allowed, as in a chip image; never ``..``)."""
    for name, entry in manifest["files"].items():
        if not isinstance(entry, dict) or "sha256" not in entry:
            raise ImageDirError(f"{MANIFEST}: entry for {name} has no sha256")
        fpath = path / name
        inside = ".." not in Path(name).parts if nested else Path(name).name == name
        if not inside or not fpath.is_file():
            raise ImageDirError(f"{name}: listed in {MANIFEST} but missing from {path}")
        digest = _sha256(fpath)
        if digest != entry["sha256"]:
            raise ImageDirError(f"{name}: checksum mismatch (manifest {str(entry['sha256'])[:12]}..., "
                                f"file {digest[:12]}...); the file is corrupt or was modified")


def load_image_dir(path, *, config: CoreConfig | None = None) -> CompiledNetwork:
    """Load and verify an image directory (see the module docstring); returns the network.

    A ``path`` that is missing because a write was interrupted between the two renames of
    its swap (where ``renameat2`` is not available) is first recovered from the hidden
    ``.<name>.old-*`` folder (:func:`neurocore.sw.output_dir.recover`).

    Raises :class:`ImageDirError` (a ``ValueError``) naming the file at fault: missing or
    unparsable manifest, a checksum mismatch, a config hash that does not match the
    manifest's config, a ``config`` that differs from the image's (listing the fields), an
    invalid program, ``.hex`` files that differ from the program's memory images, or a
    manifest that disagrees with the program.
    """
    path = Path(path)
    manifest = read_manifest(path)
    verify_files(path, manifest)          # checksums first: nothing below reads an unverified byte
    if PROGRAM_NPZ not in manifest["files"]:
        raise ImageDirError(f"{MANIFEST}: does not list {PROGRAM_NPZ}")
    try:
        stored = CoreConfig.from_dict(manifest["config"])
    except (TypeError, ValueError) as exc:
        raise ImageDirError(f"{MANIFEST}: bad config ({exc})") from None
    if stored.hash() != manifest["config_hash"]:
        raise ImageDirError(f"{MANIFEST}: config_hash {str(manifest['config_hash'])[:12]}... does not match "
                            f"its config (hash {stored.hash()[:12]}...); the manifest was modified")
    if config is not None and config != stored:
        raise ImageDirError(_config_mismatch(stored, config))
    compiled = load_program_npz(path / PROGRAM_NPZ)
    if compiled.config != stored:
        raise ImageDirError(_config_mismatch(compiled.config, stored, image_label=PROGRAM_NPZ,
                                             wanted_label=MANIFEST,
                                             what=f"{PROGRAM_NPZ} and {MANIFEST} disagree"))

    # the .hex files the RTL loads must be exactly the program's memory images
    expected = hex_files(compiled.program)
    listed = {n for n in manifest["files"] if n.endswith(".hex")}
    if listed != set(expected):
        raise ImageDirError(f"{MANIFEST}: lists hex files {sorted(listed)}, the config needs {sorted(expected)}")
    for name, info in expected.items():
        entry = manifest["files"][name]
        for key in ("word_bits", "hex_digits", "region"):
            if entry.get(key) != info[key]:
                raise ImageDirError(f"{MANIFEST}: {name} {key} = {entry.get(key)!r}, "
                                    f"the config gives {info[key]!r}")
        words = _parse_hex(path / name, info["hex_digits"], info["word_bits"])
        if entry.get("words") != len(words):
            raise ImageDirError(f"{name}: {len(words)} words, {MANIFEST} says {entry.get('words')!r}")
        if words != info["words"]:
            if len(words) != len(info["words"]):
                raise ImageDirError(f"{name}: {len(words)} words but {PROGRAM_NPZ} gives "
                                    f"{len(info['words'])}; the hex files and the program disagree")
            i = next(i for i, (a, b) in enumerate(zip(words, info["words"])) if a != b)
            raise ImageDirError(f"{name}: word {i} is {words[i]:x}, {PROGRAM_NPZ} gives {info['words'][i]:x}; "
                                "the hex files and the program disagree")

    # the rest of the manifest must describe this program
    body = _json_roundtrip(_manifest_body(compiled))
    differing = [k for k in body if manifest.get(k) != body[k]]
    if differing:
        raise ImageDirError(f"{MANIFEST}: field(s) {', '.join(differing)} do not match {PROGRAM_NPZ}; "
                            "the manifest was modified")
    return compiled
