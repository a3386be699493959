"""Image directories: round trip, file formats, atomic writes, and refusal of anything corrupt."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from neurocore.hw.config import CoreConfig
from neurocore.hw.host import Region
from neurocore.hw.images import program_images, program_registers
from neurocore.hw.program import NEURON_FIELDS
from neurocore.sw import image_dir
from neurocore.sw.compiler import compile_network
from neurocore.sw.image_dir import ImageDirError, load_image_dir, load_program_npz, write_image_dir


def _load_sibling(name: str):
    """A sibling test module by path (works with every pytest import mode)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"_neurocore_tests_sw_{name}",
                                                  Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


small_net = _load_sibling("test_compiler").small_net

ARRAYS = ("ptr", "target", "weight", "plastic", "route", "outputs", "theta")


@pytest.fixture()
def compiled():
    return compile_network(small_net())


@pytest.fixture()
def image(tmp_path, compiled):
    return write_image_dir(compiled, tmp_path / "img")


def assert_same_program(a, b):
    assert a.config == b.config and a.n_inputs == b.n_inputs and a.learning == b.learning
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    for name in NEURON_FIELDS:
        assert np.array_equal(getattr(a.neurons, name), getattr(b.neurons, name)), name


def rewrite_manifest(path: Path, change) -> None:
    manifest = json.loads((path / "manifest.json").read_text())
    change(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2))


def replace_file(path: Path, name: str, data: bytes, *, fix_checksum: bool) -> None:
    (path / name).write_bytes(data)
    if fix_checksum:
        def fix(m):
            m["files"][name]["sha256"] = hashlib.sha256(data).hexdigest()
        rewrite_manifest(path, fix)


def test_round_trip(compiled, image):
    assert sorted(os.listdir(image)) == sorted(["manifest.json", "program.npz", "param.hex", "pointer.hex",
                                                "synapse.hex", "theta.hex", "ltp_range.hex"])
    loaded = load_image_dir(image)
    assert_same_program(compiled.program, loaded.program)
    assert loaded.meta() == compiled.meta()
    assert np.array_equal(loaded.synapse_projection, compiled.synapse_projection)
    assert load_image_dir(image, config=CoreConfig()).layers == compiled.layers
    standalone = load_program_npz(image / "program.npz")
    assert_same_program(compiled.program, standalone.program)


def test_hex_files_are_readmemh_of_program_images(compiled, image):
    images = program_images(compiled.program)
    manifest = json.loads((image / "manifest.json").read_text())
    for region, words in images.items():
        name = image_dir.REGION_FILES[region.name]
        entry = manifest["files"][name]
        lines = (image / name).read_text().splitlines()
        assert entry["region"] == region.name and entry["region_id"] == region.value
        assert entry["words"] == len(words) == len(lines)
        assert entry["hex_digits"] == -(-entry["word_bits"] // 4)
        assert all(re.fullmatch(f"[0-9a-f]{{{entry['hex_digits']}}}", line) for line in lines)
        assert [int(line, 16) for line in lines] == words
        assert entry["sha256"] == hashlib.sha256((image / name).read_bytes()).hexdigest()
    assert manifest["files"]["synapse.hex"]["words"] == compiled.program.n_synapses
    assert manifest["files"]["ltp_range.hex"]["words"] == compiled.program.n_neurons


def test_manifest_fields(compiled, image):
    m = json.loads((image / "manifest.json").read_text())
    assert m["format"] == "neurocore-image" and m["format_version"] == 4
    assert m["config"] == CoreConfig().to_dict() and m["config_hash"] == CoreConfig().hash()
    assert m["registers"] == {r.name: v for r, v in program_registers(compiled.program).items()}
    assert [(layer["name"], layer["first_neuron"], layer["size"]) for layer in m["layers"]] == [
        ("hidden", 0, 3), ("out", 3, 2), ("side", 5, 2)]
    assert m["input_axons"] == 4
    assert m["outputs"] == {"layers": ["out"], "neurons": 2, "neuron_indices": [3, 4]}
    assert m["encoding"] == {"kind": "rate", "steps": 10}
    assert m["decoding"] == {"kind": "count", "n_classes": 2}
    assert m["network"]["synapses"] == compiled.program.n_synapses
    assert m["learning"]["enabled"] is True and m["learning"]["params"]["w_max"] == 20
    assert m["utilisation"]["neurons"]["used"] == 7
    assert set(m["files"]) == set(os.listdir(image)) - {"manifest.json"}


def test_optional_regions_follow_the_config(tmp_path):
    net = small_net()
    net.projections[1].plastic = False
    for pop in net.populations:
        pop.params.theta_inc[:] = 0
        pop.theta = None
    cfg = CoreConfig(learning=False, adaptive_threshold=False)
    path = write_image_dir(compile_network(net, cfg), tmp_path / "new" / "lean")   # parents are created
    assert sorted(p.name for p in path.glob("*.hex")) == ["param.hex", "pointer.hex", "synapse.hex"]
    assert load_image_dir(path).config == cfg


def test_existing_target_refused_or_swapped(tmp_path, compiled, image):
    before = {p.name: p.read_bytes() for p in image.iterdir()}
    with pytest.raises(ImageDirError, match="already exists"):
        write_image_dir(compiled, image)
    assert {p.name: p.read_bytes() for p in image.iterdir()} == before
    other = compile_network(compiled.to_network(), CoreConfig(neurons=16, axons=16, synapses=64))
    write_image_dir(other, image, overwrite=True)
    assert load_image_dir(image).config == other.config
    assert os.listdir(tmp_path) == ["img"]     # no temporary or old directories left


@pytest.mark.parametrize("existing", [False, True])
def test_crash_midway_leaves_nothing(tmp_path, monkeypatch, compiled, existing):
    target = tmp_path / "img"
    if existing:
        write_image_dir(compiled, target)
    before = {p.name: p.read_bytes() for p in target.iterdir()} if existing else None
    calls = []
    real = image_dir._write_file

    def crashing(path, data):
        calls.append(path.name)
        if len(calls) == 3:
            raise OSError("disk full (simulated)")
        real(path, data)

    monkeypatch.setattr(image_dir, "_write_file", crashing)
    with pytest.raises(OSError, match="simulated"):
        write_image_dir(compiled, target, overwrite=True)
    assert len(calls) == 3
    assert os.listdir(tmp_path) == (["img"] if existing else [])
    if existing:
        assert {p.name: p.read_bytes() for p in target.iterdir()} == before


@pytest.mark.parametrize("swap", ["exchange", "two renames"])
def test_failed_swap_restores_the_old_directory(tmp_path, monkeypatch, compiled, image, swap):
    from neurocore.sw import output_dir

    before = {p.name: p.read_bytes() for p in image.iterdir()}
    real = os.rename

    def rename(src, dst):
        if ".tmp-" in str(src):
            raise OSError("rename failed (simulated)")
        real(src, dst)

    def failing_exchange(a, b):
        raise OSError("exchange failed (simulated)")

    if swap == "exchange":
        monkeypatch.setattr(output_dir, "exchange", failing_exchange)
    else:
        monkeypatch.setattr(output_dir, "exchange", lambda a, b: False)
        monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="simulated"):
        write_image_dir(compiled, image, overwrite=True)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["img"]
    assert {p.name: p.read_bytes() for p in image.iterdir()} == before


# -- refusals --------------------------------------------------------------------------------------
def test_missing_or_not_an_image(tmp_path):
    with pytest.raises(ImageDirError, match="no such image directory"):
        load_image_dir(tmp_path / "nope")
    with pytest.raises(ImageDirError, match=r"no manifest.json"):
        load_image_dir(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ImageDirError, match=r"manifest.json: not valid JSON"):
        load_image_dir(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "something-else"}')
    with pytest.raises(ImageDirError, match="not a neurocore image manifest"):
        load_image_dir(tmp_path)


def test_bad_checksum_names_the_file(image):
    data = bytearray((image / "synapse.hex").read_bytes())
    data[0] = ord("f") if data[0] != ord("f") else ord("e")
    (image / "synapse.hex").write_bytes(bytes(data))
    with pytest.raises(ImageDirError, match=r"^synapse.hex: checksum mismatch"):
        load_image_dir(image)


def test_missing_file(image):
    (image / "pointer.hex").unlink()
    with pytest.raises(ImageDirError, match="pointer.hex: listed in manifest.json but missing"):
        load_image_dir(image)


def test_corrupt_hex_with_matching_checksum(image):
    lines = (image / "synapse.hex").read_text().splitlines()
    lines[3] = "z" * len(lines[3])
    replace_file(image, "synapse.hex", ("\n".join(lines) + "\n").encode(), fix_checksum=True)
    with pytest.raises(ImageDirError, match=r"synapse.hex line 4: not a hex word"):
        load_image_dir(image)


def test_hex_disagreeing_with_program(image):
    lines = (image / "synapse.hex").read_text().splitlines()
    word = int(lines[2], 16) ^ 1            # flip the lowest bit of synapse 2 (its target)
    lines[2] = f"{word:0{len(lines[2])}x}"
    replace_file(image, "synapse.hex", ("\n".join(lines) + "\n").encode(), fix_checksum=True)
    with pytest.raises(ImageDirError, match=r"synapse.hex: word 2 is .* program.npz gives .* disagree"):
        load_image_dir(image)


def test_corrupt_npz(image):
    replace_file(image, "program.npz", b"PK\x03\x04 garbage", fix_checksum=True)
    with pytest.raises(ImageDirError, match=r"program.npz: not a readable .npz file"):
        load_image_dir(image)


def test_older_format_names_the_recompile_command(image):
    """A version 2 image (LTP axon ranges in rpointer.hex) is refused with the command that
    re-compiles it from its program.npz, and that command works."""
    rewrite_manifest(image, lambda m: m.update(format_version=2))
    with pytest.raises(ImageDirError, match=r"format_version 2 is not supported .* re-compile it with "
                                            r"`neurocore compile .*program.npz -o NEW_DIR`"):
        load_image_dir(image)
    assert load_program_npz(image / "program.npz").program.n_neurons > 0


def test_tampered_manifest_config(image):
    rewrite_manifest(image, lambda m: m["config"].update(neurons=1024))
    with pytest.raises(ImageDirError, match=r"config_hash .* does not match its config"):
        load_image_dir(image)

    def consistent(m):   # a careful forger also fixes the hash: program.npz still disagrees
        m["config_hash"] = CoreConfig.from_dict(m["config"]).hash()
    rewrite_manifest(image, consistent)
    with pytest.raises(ImageDirError, match=r"config mismatch: program.npz and manifest.json disagree "
                                                 r"\(neurons: program.npz 256, manifest.json 1024\)"):
        load_image_dir(image)


@pytest.mark.parametrize("change, field", [
    (lambda m: m["layers"][0].update(size=4), "layers"),
    (lambda m: m["decoding"].update(n_classes=3), "decoding"),
    (lambda m: m["registers"].update(N_INPUTS=5), "registers"),
])
def test_tampered_manifest_fields(image, change, field):
    rewrite_manifest(image, change)
    with pytest.raises(ImageDirError, match=rf"manifest.json: field\(s\) {field} do not match program.npz"):
        load_image_dir(image)


def test_config_mismatch_lists_fields(image):
    wanted = dataclasses.replace(CoreConfig(), neurons=128, learning=False)
    with pytest.raises(ImageDirError) as info:
        load_image_dir(image, config=wanted)
    msg = str(info.value)
    assert msg.startswith("config mismatch")
    assert "neurons: image 256, requested 128" in msg and "learning: image True, requested False" in msg
    assert "axons" not in msg


def test_loaded_program_is_validated(tmp_path, compiled):
    # a program.npz whose weights break the config: rejected even with consistent checksums
    path = write_image_dir(compiled, tmp_path / "img")
    with np.load(path / "program.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["weight"] = arrays["weight"].copy()
    arrays["weight"][0] = 999
    np.savez(path / "bad.npz", **arrays)
    with pytest.raises(ImageDirError, match=r"bad.npz: invalid program: weight\[0\] = 999"):
        load_program_npz(path / "bad.npz")


def test_region_file_names_cover_program_regions(compiled):
    assert {r.name for r in program_images(compiled.program)} <= set(image_dir.REGION_FILES)
    assert set(image_dir.REGION_FILES) <= {r.name for r in Region}


# -- the metadata is checked on load, by type and range ----------------------------------------------
def forge(image: Path, *, meta=None, arrays=None) -> None:
    """Rewrite program.npz (``meta(dict)`` edits meta_json, ``arrays(dict)`` the arrays) as a careful
    forger would: the manifest's encoding/decoding follow, every checksum is fixed."""
    import io
    with np.load(image / "program.npz") as data:
        stored = {k: data[k] for k in data.files}
    m = json.loads(str(stored["meta_json"]))
    if meta is not None:
        meta(m)
        stored["meta_json"] = np.array(json.dumps(m))
    if arrays is not None:
        arrays(stored)
    buffer = io.BytesIO()
    np.savez(buffer, **stored)
    replace_file(image, "program.npz", buffer.getvalue(), fix_checksum=True)
    if isinstance(m, dict):
        rewrite_manifest(image, lambda man: man.update({k: m[k] for k in ("encoding", "decoding") if k in m}))


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def change(m):
        for k in keys[:-1]:
            m = m[k]
        m[keys[-1]] = value
    return change


@pytest.mark.parametrize("change, message", [
    (_set("encoding", "steps", -5), "encoding: steps must be >= 1, got -5"),
    (_set("encoding", "steps", 2.5), "encoding: steps must be an int, got float"),
    (_set("encoding", "steps", "eight"), "encoding: steps must be an int, got str"),
    (_set("encoding", "steps", True), "encoding: steps must be an int, got bool"),
    (_set("encoding", "kind", "evil"), "encoding: unknown encoder kind 'evil'; known: rate, current, latency"),
    (_set("encoding", "kind", 3), "unknown encoder kind 3"),
    (_set("encoding", "dataset", ""), "encoding: dataset must be a non-empty string"),
    (_set("encoding", [1]), "encoding must be a JSON object"),
    (_set("decoding", "kind", "evil"), "unknown decoding kind 'evil'"),
    (_set("decoding", "kind", None), "decoding.kind must be 'count' or 'vote', got None"),
    (_set("decoding", "n_classes", -3), "decoding.n_classes must be an integer >= 1, got -3"),
    (_set("decoding", "n_classes", 2.5), "decoding.n_classes must be an integer >= 1, got 2.5"),
    (_set("decoding", "n_classes", "eight"), "decoding.n_classes must be an integer >= 1, got 'eight'"),
    (_set("decoding", "n_classes", 3), "decoding 'count' needs one output neuron per class"),
    (_set("decoding", {"kind": "vote", "labels": [0, 1.5], "n_classes": 2}), "decoding.labels must be a list of"),
    (_set("decoding", {"kind": "vote", "labels": [0, 7], "n_classes": 2}), r"labels must be in -1..1"),
    (_set("layers", "hidden", [0, 3.0]), r"layers.hidden\[1\] \(size\) must be an integer >= 1, got 3.0"),
    (_set("layers", "hidden", [0]), r"layers.hidden must be \[first, size\]"),
    (_set("layers", "hidden", [-1, 3]), r"layers.hidden\[0\] \(first\) must be an integer >= 0"),
    (_set("input_axons", "4"), "input_axons must be an integer >= 0, got '4'"),
    (_set("output_layers", ["nope"]), r"output_layers\[0\] must be the name of a layer, got 'nope'"),
    (_set("wta_groups", "out", 0), "wta_groups.out must be an integer >= 1, got 0"),
    (_set("wta_groups", "ghost", 1), r"wta_groups \(a key\) must be the name of a layer"),
    (_set("layer_axons", "hidden", "4..6"), r"layer_axons.hidden must be \[first, size\]"),
    (_set("projections", 0, "plastic", "yes"), r"projections\[0\].plastic must be true or false"),
    (_set("projections", 0, "source", "ghost"), r"projections\[0\].source must be the name of a layer or 'input'"),
    (_set("projections", 0, "synapses", -1), r"projections\[0\].synapses must be an integer >= 0"),
    (lambda m: m.pop("decoding"), r"metadata field\(s\) decoding missing"),
])
def test_metadata_checked_on_load(image, change, message):
    forge(image, meta=change)
    for load in (load_image_dir, lambda path: load_program_npz(path / "program.npz")):
        with pytest.raises(ImageDirError, match=rf"^program.npz: .*{message}") as info:
            load(image)
        assert "\n" not in str(info.value)


def _array(name, value):
    def change(arrays):
        arrays[name] = value
    return change


def _learning(field, value):
    def change(arrays):
        learning = json.loads(str(arrays["learning_json"]))
        learning[field] = value
        arrays["learning_json"] = np.array(json.dumps(learning))
    return change


def _projection_ids(compiled, value, index=0, dtype=np.int64):
    ids = compiled.synapse_projection.astype(dtype)
    ids[index] = value
    return _array("synapse_projection", ids)


@pytest.mark.parametrize("make, message", [
    (lambda c: _array("n_inputs", np.array(4.7)),
     r"invalid program: n_inputs must be an integer in 0\.\.65536, got np\.float64\(4\.7\)$"),
    (lambda c: _array("n_inputs", np.array("4")),
     r"invalid program: n_inputs must be an integer in 0\.\.65536, got np\.str_\('4'\)$"),
    (lambda c: _array("n_inputs", np.array([4, 4])),
     r"invalid program: n_inputs must be an integer in 0\.\.65536, got array\(\[4, 4\]\)$"),
    (lambda c: _learning("a_plus", 0.9), r"invalid program: learning\.a_plus must be an integer in 0\.\.255, got 0\.9$"),
    (lambda c: _learning("soft_bound", 1), r"invalid program: learning\.soft_bound must be True or False, got 1$"),
    (lambda c: _learning("w_max", None), r"invalid program: learning\.w_max must be an integer, got None$"),
    (lambda c: _learning("a_minus", "9" * 1000),
     r"invalid program: learning\.a_minus must be an integer in 0\.\.255, got '9{56}\.\.\.$"),
    (lambda c: _projection_ids(c, 2 ** 64 - 1, dtype=np.uint64),
     r"network metadata does not match the program: synapse_projection\[0\] = 18446744073709551615 is "
     r"outside -1\.\.3"),
    (lambda c: _projection_ids(c, 99), r"network metadata does not match the program: synapse_projection\[0\] = 99 "
                                       r"is outside -1\.\.3"),
    (lambda c: _projection_ids(c, 1), r"network metadata does not match the program: projection 0 \(input->hidden\) "
                                      r"has 11 synapses but synapse_projection gives it 10"),
    (lambda c: _array("synapse_projection", c.synapse_projection.astype(float)),
     "synapse_projection must be a 1-D integer array, got float64"),
])
def test_scalars_and_projection_ids_checked_on_load(image, compiled, make, message):
    assert list(compiled.synapse_projection[:1]) == [0]
    forge(image, arrays=make(compiled))
    with pytest.raises(ImageDirError, match=rf"^program.npz: {message}"):
        load_image_dir(image)


@pytest.mark.parametrize("key", ["meta_json", "learning_json", "config_json"])
def test_deeply_nested_json_in_program_npz(image, key):
    forge(image, arrays=_array(key, np.array("[" * 100000 + "]" * 100000)))
    with pytest.raises(ImageDirError, match=r"^program.npz: config/learning/metadata JSON is nested too deeply$"):
        load_program_npz(image / "program.npz")


def test_deeply_nested_json_in_the_manifest(image):
    (image / "manifest.json").write_text('{"format": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(ImageDirError, match=r"^manifest.json: JSON nested too deeply$"):
        load_image_dir(image)


def test_run_refuses_bad_metadata_in_one_line(image, capsys):
    from neurocore.tools import cli
    forge(image, meta=_set("encoding", "kind", "evil"))
    assert cli.main(["run", str(image)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert "unknown encoder kind 'evil'" in captured.err


def test_metadata_checked_before_writing(tmp_path, compiled):
    bad = dataclasses.replace(compiled, encoding={"kind": "evil"})
    with pytest.raises(ImageDirError, match=r"cannot write .*img: encoding: unknown encoder kind 'evil'"):
        write_image_dir(bad, tmp_path / "img")
    assert list(tmp_path.iterdir()) == []
