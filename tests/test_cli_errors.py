"""Bad input to the ``neurocore`` command line: every case is exit status 2 and exactly one line
``neurocore: error: ...`` on stderr, no traceback, and nothing written (issue 9, section 6).

The cases: deeply nested or non-object ``--config`` JSON; sizes above their documented bound
(``--steps``, ``--curve``, ``--hidden``, ``--neurons``); OS errors on output paths; a missing
parent folder of ``--plot`` / ``--save-ann``; unknown options; an error while a progress bar
is drawn; ``--plot`` without a suffix reports the file it wrote.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from neurocore.hw.program import NeuronParams
from neurocore.sw.compiler import compile_network
from neurocore.sw.image_dir import write_image_dir
from neurocore.sw.network import Population, Projection, SnnNetwork
from neurocore.tools import cli, cli_io, cmd_demo
from neurocore.tools.cli_common import MAX_BENCH_STEPS, MAX_NEURONS, MAX_STEPS, UsageError

HUGE = "1000000000000"


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """A tiny digits image: 64 inputs -> 10 outputs."""
    rng = np.random.default_rng(0)
    out = Population("out", NeuronParams.uniform(10, threshold=20), output=True)
    net = SnnNetwork(64, [out], [Projection.dense("input", "out", rng.integers(-4, 8, (10, 64)))],
                     encoding={"kind": "rate", "steps": 4, "dataset": "digits"})
    return write_image_dir(compile_network(net), tmp_path_factory.mktemp("errors") / "img")


@pytest.fixture()
def cwd(tmp_path, monkeypatch):
    """A scratch working directory holding a file FILE and a directory DIR."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEUROCORE_DEBUG", raising=False)
    (tmp_path / "FILE").write_text("a file\n")
    (tmp_path / "DIR").mkdir()
    return tmp_path


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def one_error(capsys, *argv) -> str:
    """Run the CLI; it must fail with status 2 and one line on stderr, nothing on stdout."""
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert status == 2, (status, err)
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err[:-1]


# -- --config ----------------------------------------------------------------------------------
DEEP_ARRAY = "[" * 50000 + "]" * 50000
DEEP_OBJECT = '{"a":' * 5000 + "1" + "}" * 5000


@pytest.mark.parametrize("command", [["verilog", "-o", "core.v"], ["inspect", "{img}"], ["run", "{img}"],
                                     ["compile", "{img}", "-o", "out"]], ids=lambda c: c[0])
def test_deeply_nested_config_file(capsys, cwd, image, command):
    (cwd / "deep.json").write_text(DEEP_ARRAY)
    argv = [str(image) if a == "{img}" else a for a in command]
    before = listing(cwd)
    assert one_error(capsys, *argv, "--config", "deep.json") == \
        "neurocore: error: --config deep.json: JSON nested too deeply"
    assert listing(cwd) == before


def test_deeply_nested_inline_config(capsys, cwd):
    assert one_error(capsys, "verilog", "-o", "core.v", "--config", DEEP_OBJECT) == \
        "neurocore: error: --config: JSON nested too deeply"
    assert not (cwd / "core.v").exists()


@pytest.mark.parametrize("text, kind", [("[1,2]", "an array"), ("42", "a number"), ("true", "a boolean"),
                                        ('"neurons"', "a string"), ("null", "null")])
def test_config_that_is_not_an_object(capsys, cwd, text, kind):
    assert one_error(capsys, "verilog", "-o", "core.v", "--config", text) == \
        f"neurocore: error: --config: expected a JSON object of CoreConfig fields, got {kind}"


def test_config_file_that_is_not_an_object(capsys, cwd):
    (cwd / "list.json").write_text("[1, 2]\n")
    assert one_error(capsys, "verilog", "-o", "core.v", "--config", "list.json") == \
        "neurocore: error: --config list.json: expected a JSON object of CoreConfig fields, got an array"


def test_config_directory_and_missing_file(capsys, cwd):
    assert one_error(capsys, "verilog", "-o", "core.v", "--config", "DIR") == \
        "neurocore: error: --config: DIR is a directory (give a JSON object or a JSON file)"
    assert one_error(capsys, "verilog", "-o", "core.v", "--config", "nothing.json") == \
        "neurocore: error: --config: no such file: nothing.json (give a JSON object or a JSON file)"


def test_config_of_the_wrong_kind_of_values(capsys, cwd):
    assert one_error(capsys, "verilog", "-o", "core.v", "--config", '{"neurons": [[1]]}') == \
        "neurocore: error: CoreConfig.neurons must be an integer in 1..65536, got [[1]]"


# -- sizes above their bound -----------------------------------------------------------------------
INTEGERS = "comma-separated positive integers"
BOUNDS = [
    (["run", "{img}", "--steps"], "--steps", f"an integer in 1..{MAX_STEPS}", "run"),
    (["convert", "--steps"], "--steps", f"an integer in 1..{MAX_STEPS}", "convert"),
    (["convert", "--curve"], "--curve", f"{INTEGERS}, each at most {MAX_STEPS}", "convert"),
    (["convert", "--hidden"], "--hidden", f"{INTEGERS}, each at most {MAX_NEURONS}", "convert"),
    (["train-stdp", "--steps"], "--steps", f"an integer in 1..{MAX_STEPS}", "train-stdp"),
    (["train-stdp", "--eval-steps"], "--eval-steps", f"an integer in 1..{MAX_STEPS}", "train-stdp"),
    (["train-stdp", "--neurons"], "--neurons", f"an integer in 1..{MAX_NEURONS}", "train-stdp"),
    (["bench", "golden", "--steps"], "--steps", f"an integer in 1..{MAX_BENCH_STEPS}", "bench golden"),
    (["bench", "core", "--steps"], "--steps", f"an integer in 1..{MAX_STEPS}", "bench core"),
    (["cosim", "--image", "{img}", "--steps"], "--steps", f"an integer in 1..{MAX_STEPS}", "cosim"),
    (["demo", "--steps"], "--steps", f"an integer in 1..{MAX_STEPS}", "demo"),
]


def case_id(value):
    return " ".join(value) if isinstance(value, list) else None


@pytest.mark.parametrize("argv, option, expected, command", BOUNDS, ids=case_id)
def test_huge_sizes_are_refused(capsys, cwd, image, argv, option, expected, command):
    argv = [str(image) if a == "{img}" else a for a in argv]
    value = repr(HUGE) if "comma" in expected else HUGE
    assert one_error(capsys, *argv, HUGE) == \
        f"neurocore: error: argument {option}: expected {expected}, got {value} (see 'neurocore {command} --help')"
    assert listing(cwd) == ["DIR", "FILE"]


@pytest.mark.parametrize("argv, option, expected, command", BOUNDS, ids=case_id)
def test_bounds_are_documented(capsys, argv, option, expected, command):
    """Each bounded option states its bound in --help."""
    status = cli.main(command.split() + ["--help"])
    out, _ = capsys.readouterr()
    assert status == 0
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(f"  {option} "))
    end = next(i for i in range(first + 1, len(lines)) if not lines[i].startswith(" " * 6))
    entry = " ".join(" ".join(lines[first:end]).split())      # the option's help, unwrapped
    maximum = re.search(r"(\d+)$", expected).group(1)
    assert f"at most {maximum}" in entry, entry


def test_hidden_layers_must_fit_one_core(capsys, cwd):
    assert one_error(capsys, "convert", "--hidden", "40000,30000") == \
        f"neurocore: error: --hidden: 70000 hidden neurons in all, a core holds at most {MAX_NEURONS}"


def test_out_of_memory_is_one_line(capsys, cwd, monkeypatch):
    def fail(args):
        raise MemoryError("Unable to allocate 14.6 PiB for an array with shape (256, 1000000000000, 64)")
    monkeypatch.setattr(cmd_demo, "run", fail)
    assert one_error(capsys, "demo") == (
        "neurocore: error: not enough memory (Unable to allocate 14.6 PiB for an array with shape "
        "(256, 1000000000000, 64)); ask for less: fewer --steps, samples or neurons, or a smaller --batch-size")


# -- OS errors on output paths ---------------------------------------------------------------------
OUTPUTS = [
    (["verilog", "-o", "DIR"], "-o DIR: is a directory (give a file name)"),
    (["verilog", "-o", "FILE/x"], "-o FILE/x: FILE is not a directory"),
    (["verilog", "-o", "FILE/x/core.v"], "-o FILE/x/core.v: FILE is not a directory"),
    (["compile", "{img}", "-o", "FILE/x"], "-o FILE/x: FILE is not a directory"),
    (["compile", "{img}", "-o", "FILE"], "-o FILE: exists and is not a directory"),
    (["run", "{img}", "--plot", "FILE/sub"], "--plot FILE/sub: FILE is not a directory"),
    (["run", "{img}", "--plot", "FILE"], "--plot FILE: exists and is not a directory"),
    (["convert", "--save-ann", "DIR"], "--save-ann DIR: is a directory (give a file name)"),
    (["convert", "--save-ann", "FILE/ann.joblib"], "--save-ann FILE/ann.joblib: FILE is not a directory"),
    (["convert", "--plot", "FILE/curve.png"], "--plot FILE/curve.png: FILE is not a directory"),
    (["convert", "--out", "FILE/img"], "--out FILE/img: FILE is not a directory"),
    (["train-stdp", "--plot", "FILE/w.png"], "--plot FILE/w.png: FILE is not a directory"),
    (["train-stdp", "--out", "FILE/img"], "--out FILE/img: FILE is not a directory"),
    (["cosim", "--random", "1", "--work-dir", "FILE"], "--work-dir FILE: exists and is not a directory"),
    (["cosim", "--image", "{img}", "--work-dir", "FILE/sub"], "--work-dir FILE/sub: FILE is not a directory"),
    (["bench", "core", "--work-dir", "FILE"], "--work-dir FILE: exists and is not a directory"),
    (["synth", "--target", "ice40-up5k", "--work-dir", "FILE"], "--work-dir FILE: exists and is not a directory"),
    (["demo", "--no-cosim", "--out", "FILE/sub"], "--out FILE/sub: FILE is not a directory"),
    (["demo", "--no-cosim", "--out", "FILE"],
     "FILE exists and is not a directory; refusing to replace it"),
]


@pytest.mark.parametrize("argv, message", OUTPUTS, ids=case_id)
def test_bad_output_paths(capsys, cwd, image, argv, message):
    argv = [str(image) if a == "{img}" else a for a in argv]
    assert one_error(capsys, *argv) == f"neurocore: error: {message}"
    assert listing(cwd) == ["DIR", "FILE"]          # nothing half-written (no DIR.tmp, no x)
    assert (cwd / "FILE").read_text() == "a file\n"


def test_verilog_to_a_directory_leaves_no_temporary_file(capsys, cwd):
    one_error(capsys, "verilog", "-o", "DIR")
    assert not (cwd / "DIR.tmp").exists() and listing(cwd / "DIR") == []


def test_os_error_while_writing_names_the_path(capsys, cwd, image, monkeypatch):
    import neurocore.sw.image_dir as image_dir

    def refuse(compiled, path, *, overwrite=False):
        raise PermissionError(13, "Permission denied", str(Path(path).with_name(".out.tmp-1")))
    monkeypatch.setattr(image_dir, "write_image_dir", refuse)
    assert one_error(capsys, "compile", image, "-o", "out") == \
        "neurocore: error: -o out: cannot write: Permission denied (.out.tmp-1)"


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs sysfs, which refuses new files")
def test_compile_into_sys(capsys, cwd, image):
    if (Path("/sys") / "x").exists():
        pytest.skip("/sys/x exists")
    err = one_error(capsys, "compile", image, "-o", "/sys/x")
    assert err.startswith("neurocore: error: -o /sys/x: ")
    assert not (Path("/sys") / "x").exists()


def test_other_os_errors_are_one_line(capsys, cwd, monkeypatch):
    def fail(args):
        raise NotADirectoryError(20, "Not a directory", "FILE/sub")
    monkeypatch.setattr(cmd_demo, "run", fail)
    assert one_error(capsys, "demo") == "neurocore: error: Not a directory: FILE/sub"


# -- missing parent folders ------------------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["convert", "--save-ann", "new/ann.joblib"], "--save-ann new/ann.joblib: directory new does not exist"),
    (["convert", "--plot", "new/curve.png"], "--plot new/curve.png: directory new does not exist"),
    (["train-stdp", "--plot", "new/w.png"], "--plot new/w.png: directory new does not exist"),
    (["run", "{img}", "--plot", "new/plots"], "--plot new/plots: directory new does not exist"),
], ids=case_id)
def test_missing_parent_folder_is_refused(capsys, cwd, image, argv, message):
    argv = [str(image) if a == "{img}" else a for a in argv]
    assert one_error(capsys, *argv) == f"neurocore: error: {message}"
    assert not (cwd / "new").exists()


def test_output_path_creates_nothing(tmp_path):
    with pytest.raises(UsageError, match="directory .*a/b does not exist"):
        cli_io.output_path(tmp_path / "a" / "b" / "c.png", "--plot")
    assert cli_io.output_path(tmp_path / "a" / "b", "--out", directory=True, make_parents=True) == \
        tmp_path / "a" / "b"
    assert listing(tmp_path) == []


# -- smaller ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["--frob"], "unknown option --frob (see 'neurocore --help')"),
    (["--frob", "--fizz"], "unknown options --frob --fizz (see 'neurocore --help')"),
    (["bench", "--frob"], "unknown option --frob (see 'neurocore bench --help')"),
    (["bench", "golden", "--frob", "x"], "unknown option --frob; unexpected argument x "
                                         "(see 'neurocore bench golden --help')"),
    (["demo", "--frob"], "unknown option --frob (see 'neurocore demo --help')"),
    (["demo", "extra"], "unexpected argument extra (see 'neurocore demo --help')"),
    ([], "the following arguments are required: COMMAND (see 'neurocore --help')"),
    (["bench"], "the following arguments are required: TARGET (see 'neurocore bench --help')"),
], ids=lambda v: " ".join(v) or "<none>")
def test_unknown_options_are_named(capsys, argv, message):
    assert one_error(capsys, *argv) == f"neurocore: error: {message}"


def test_error_line_is_not_glued_to_a_progress_bar(capsys, monkeypatch):
    from tqdm import tqdm

    def fail(args):
        bar = tqdm(total=10, desc="training")       # a bar left open by the error
        bar.update(3)
        raise UsageError("it went wrong")
    monkeypatch.setattr(cmd_demo, "run", fail)
    status = cli.main(["demo"])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    lines = err.split("\n")
    assert lines[-1] == "" and lines[-2] == "neurocore: error: it went wrong", repr(err)
    assert "training" in lines[-3]


def test_error_after_an_unfinished_line(capsys, monkeypatch):
    import sys

    def fail(args):
        sys.stderr.write("\rstatus: building")
        raise UsageError("it went wrong")
    monkeypatch.setattr(cmd_demo, "run", fail)
    assert cli.main(["demo"]) == 2
    assert capsys.readouterr().err == "\rstatus: building\nneurocore: error: it went wrong\n"


def test_plot_path_is_the_file_written(tmp_path):
    (tmp_path / "DIR").mkdir()
    assert cli_io.plot_path(tmp_path / "DIR") == tmp_path / "DIR.png"
    assert cli_io.plot_path(tmp_path / "w") == tmp_path / "w.png"
    assert cli_io.plot_path(tmp_path / "w.png") == tmp_path / "w.png"
    assert cli_io.plot_path(tmp_path / "w.svg") == tmp_path / "w.svg"


def test_plot_without_suffix_reports_the_png(capsys, cwd):
    status = cli.main(["train-stdp", "--neurons", "4", "--epochs", "1", "--limit", "20", "--eval-steps", "4",
                       "--no-progress", "--plot", "DIR"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "plot      : DIR.png" in out.splitlines()
    assert (cwd / "DIR.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert listing(cwd / "DIR") == []
