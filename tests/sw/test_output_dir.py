"""Output directories (``neurocore.sw.output_dir``): nothing of the user's is ever deleted.

The dangerous situations are built in ``tmp_path``: the current directory and its parents
as ``-o``/``--out``, a directory of a stranger's files, an image directory with an extra
file, a symbolic link to a directory, a file; every writer (``compile --force``,
``convert --overwrite --out``, ``train-stdp --force --out``, ``demo --force``, and
``write_image_dir(overwrite=True)``) must refuse them with one line and leave every byte
in place. Then the leftovers of killed writes (real SIGKILLs of a subprocess) and the
interrupted swap.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from neurocore.hw.program import NeuronParams
from neurocore.sw import image_dir, output_dir
from neurocore.sw.compiler import compile_network
from neurocore.sw.image_dir import ImageDirError, load_image_dir, write_image_dir
from neurocore.sw.network import Population, Projection, SnnNetwork
from neurocore.sw.output_dir import STAGING_MARKER, check_output_dir, output_kind
from neurocore.tools import cli


def small_net() -> SnnNetwork:
    """2 inputs -> 2 output neurons: the smallest network worth writing."""
    out = Population("out", NeuronParams.uniform(2, threshold=4), output=True)
    return SnnNetwork(n_inputs=2, populations=[out],
                      projections=[Projection("input", "out", [0, 1], [0, 1], [3, 4])])


@pytest.fixture(scope="module")
def compiled():
    return compile_network(small_net())


@pytest.fixture(scope="module")
def source(tmp_path_factory, compiled):
    """An image directory outside the test's own tmp_path (the source of ``compile``)."""
    return write_image_dir(compiled, tmp_path_factory.mktemp("source") / "img")


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root`` (links by target, files by content, directories as such)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                found[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                found[rel] = "dir"
            else:
                found[rel] = p.read_bytes()
    return found


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, out, err, *needles):
    assert status == 2 and out == "", (status, out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("neurocore: error: "), err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.fixture()
def work(tmp_path, monkeypatch):
    """``tmp_path/work/sub`` full of the user's files, with the current directory in ``sub``."""
    sub = tmp_path / "work" / "sub"
    sub.mkdir(parents=True)
    (tmp_path / "work" / "thesis.tex").write_text("years of work")
    (sub / "data.csv").write_text("1,2,3\n")
    monkeypatch.chdir(sub)
    return tmp_path


# the commands that replace an output directory, with their force flag; {out} is the path
WRITERS = {
    "compile": lambda src: ["compile", src, "-o", "{out}", "--force"],
    "convert": lambda src: ["convert", "--no-curve", "--steps", "4", "--hidden", "8", "--out", "{out}",
                            "--overwrite"],
    "train-stdp": lambda src: ["train-stdp", "--neurons", "4", "--epochs", "1", "--limit", "5", "--eval-steps",
                               "4", "--no-progress", "--out", "{out}", "--force"],
    "demo": lambda src: ["demo", "--no-cosim", "--no-progress", "--steps", "4", "--out", "{out}", "--force"],
}


def writer_argv(name, src, out):
    return [str(out) if a == "{out}" else a for a in WRITERS[name](src)]


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("out", [".", "..", "../..", "./", "../sub/..", "ABS_WORK"])
def test_cwd_and_its_parents_are_never_replaced(capsys, work, source, writer, out):
    if out == "ABS_WORK":
        out = work / "work"
    before = snapshot(work)
    assert_one_line_error(*run_cli(capsys, *writer_argv(writer, source, out)),
                          "current directory or one of its parents")
    assert snapshot(work) == before


@pytest.fixture()
def dangerous(tmp_path):
    """Existing paths that hold something of the user's, name -> (path, the refusal's words)."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    (mine / "deep").mkdir()
    (mine / "deep" / "more.txt").write_text("and me")
    image = write_image_dir(compile_network(small_net()), tmp_path / "image-plus")
    (image / "notes.txt").write_text("added by the user")
    report = tmp_path / "foreign-report"
    report.mkdir()
    (report / "report.json").write_text(json.dumps({"kind": "something else", "files": []}))
    link = tmp_path / "link"
    link.symlink_to(mine, target_is_directory=True)
    (tmp_path / "file.txt").write_text("a file")
    return {
        "stranger's dir": (mine, "not an earlier neurocore output"),
        "image with an extra file": (image, "notes.txt"),
        "someone else's report.json": (report, "not an earlier neurocore output"),
        "link to a dir": (link, "symbolic link"),
        "file": (tmp_path / "file.txt", "not a directory"),
    }


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("case", ["stranger's dir", "image with an extra file", "someone else's report.json",
                                  "link to a dir", "file"])
def test_directories_of_other_files_are_never_replaced(capsys, tmp_path, source, dangerous, writer, case):
    path, words = dangerous[case]
    before = snapshot(tmp_path)
    assert_one_line_error(*run_cli(capsys, *writer_argv(writer, source, path)), words)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("case", ["stranger's dir", "image with an extra file", "someone else's report.json",
                                  "link to a dir", "file"])
def test_write_image_dir_refuses_the_same(tmp_path, compiled, dangerous, case):
    path, words = dangerous[case]
    before = snapshot(tmp_path)
    with pytest.raises(ImageDirError, match=words):
        write_image_dir(compiled, path, overwrite=True)
    assert snapshot(tmp_path) == before


def test_earlier_outputs_are_replaced(tmp_path, compiled, source, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert output_kind(empty) == output_dir.EMPTY
    write_image_dir(compiled, empty, overwrite=True)
    assert output_kind(empty) == output_dir.IMAGE
    status, out, err = run_cli(capsys, "compile", source, "-o", empty, "--force")
    assert status == 0, err
    assert load_image_dir(empty).config == compiled.config
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]      # nothing left beside it
    # without the flag an earlier output is refused too, and says how to replace it
    with pytest.raises(ImageDirError, match="already exists.*overwrite=True"):
        write_image_dir(compiled, empty)


def test_check_output_dir_kinds(tmp_path, compiled):
    image = write_image_dir(compiled, tmp_path / "img")
    assert check_output_dir(image, replace=[output_dir.IMAGE]) == image
    with pytest.raises(ValueError, match="already exists .*image directory.*--force"):
        check_output_dir(image, replace=[output_dir.REPORT])
    assert check_output_dir(tmp_path / "new" / "x") == tmp_path / "new" / "x"
    # the location has its parents' links resolved but keeps the last component
    (tmp_path / "via").symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "real").mkdir()
    assert check_output_dir(tmp_path / "via" / "img") == tmp_path / "real" / "img"


# -- leftovers of killed writes --------------------------------------------------------------------
KILLED_WRITE = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import test_output_dir as tc
from neurocore.sw import image_dir, output_dir
from neurocore.sw.compiler import compile_network

where = sys.argv[1]
point = sys.argv[2]
real_write, real_rename, real_exchange = image_dir._write_file, os.rename, output_dir.exchange

def die(*args):
    os.kill(os.getpid(), signal.SIGKILL)

if point == "writing":          # in the middle of the files
    calls = []
    def write(path, data):
        calls.append(path)
        if len(calls) == 3:
            die()
        real_write(path, data)
    image_dir._write_file = write
elif point == "after-exchange":  # the new image in place, the old one not yet deleted
    def exchange(a, b):
        assert real_exchange(a, b)
        die()
    output_dir.exchange = exchange
elif point == "between-renames":  # no exchange: the old image renamed aside, the new one not yet in
    output_dir.exchange = lambda a, b: False
    def rename(src, dst):
        real_rename(src, dst)
        if ".old-" in str(dst):
            die()
    os.rename = rename
image_dir.write_image_dir(compile_network(tc.small_net()), where, overwrite=True)
"""


def killed_write(path: Path, point: str) -> None:
    script = textwrap.dedent(KILLED_WRITE.format(tests=str(Path(__file__).parent)))
    proc = subprocess.run([sys.executable, "-c", script, str(path), point], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -9, proc.stderr


def hidden(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_leftovers_of_killed_writes_are_cleaned(tmp_path, compiled):
    target = tmp_path / "img"
    killed_write(target, "writing")                 # no image yet: a staging folder is left
    assert not target.exists()
    [staging] = hidden(tmp_path)
    assert staging.startswith(".img.tmp-") and (tmp_path / staging / STAGING_MARKER).is_file()
    write_image_dir(compiled, target)               # ... which this write removes
    assert hidden(tmp_path) == []
    before = snapshot(target)
    killed_write(target, "writing")                 # over an image: it is untouched
    assert snapshot(target) == before and len(hidden(tmp_path)) == 1
    killed_write(target, "after-exchange")          # the new one is in, the old one left hidden ...
    assert load_image_dir(target).config == compiled.config
    [old] = hidden(tmp_path)                        # ... and the staging folder of the last kill is gone
    assert old.startswith(".img.tmp-") and output_kind(tmp_path / old) == output_dir.IMAGE
    # folders of that name that are not ours by content are left alone
    strangers = [tmp_path / ".img.tmp-0123456789ab", tmp_path / ".img.old-abcdef012345"]
    for folder in strangers:
        folder.mkdir()
        (folder / "precious.txt").write_text("not neurocore's")
    (tmp_path / ".other.tmp-0123456789ab").mkdir()   # of another output: not this write's business
    running = tmp_path / ".img.tmp-aaaaaaaaaaaa"      # a writer that still runs (this process)
    running.mkdir()
    (running / STAGING_MARKER).write_text(output_dir._MARKER_TEXT.format(pid=os.getpid()))
    write_image_dir(compiled, target, overwrite=True)
    assert hidden(tmp_path) == sorted([".img.old-abcdef012345", ".img.tmp-0123456789ab",
                                       ".img.tmp-aaaaaaaaaaaa", ".other.tmp-0123456789ab"])
    for folder in strangers:
        assert (folder / "precious.txt").read_text() == "not neurocore's"


def test_swap_interrupted_between_the_renames_is_recovered(tmp_path, compiled):
    target = write_image_dir(compiled, tmp_path / "img")
    before = snapshot(target)
    killed_write(target, "between-renames")
    assert not target.exists()                      # the old image is only in the hidden folder
    assert [n[:9] for n in hidden(tmp_path)] == [".img.old-", ".img.tmp-"]
    assert load_image_dir(target).config == compiled.config   # the load renames it back
    assert snapshot(target) == before
    # and the next write cleans the staging folder of the killed run
    write_image_dir(compiled, target, overwrite=True)
    assert hidden(tmp_path) == []


def test_write_after_interrupted_swap_recovers_first(tmp_path, compiled):
    target = write_image_dir(compiled, tmp_path / "img")
    killed_write(target, "between-renames")
    with pytest.raises(ImageDirError, match="already exists"):   # the old image is back, not replaced
        write_image_dir(compiled, target)
    assert output_kind(target) == output_dir.IMAGE
    assert [n[:9] for n in hidden(tmp_path)] == [".img.tmp-"]   # a refused write removes nothing
    write_image_dir(compiled, target, overwrite=True)
    assert hidden(tmp_path) == []


@pytest.mark.parametrize("exchange", [True, False])
def test_interrupt_while_writing_leaves_the_old_image(tmp_path, monkeypatch, compiled, exchange):
    target = write_image_dir(compiled, tmp_path / "img")
    before = snapshot(target)
    if not exchange:
        monkeypatch.setattr(output_dir, "exchange", lambda a, b: False)
    real = image_dir._write_file

    def interrupted(path, data):
        if path.name == image_dir.MANIFEST:
            raise KeyboardInterrupt
        real(path, data)

    monkeypatch.setattr(image_dir, "_write_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_image_dir(compiled, target, overwrite=True)
    assert snapshot(target) == before and hidden(tmp_path) == []


def test_exchange_swaps_two_directories(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "1").write_text("a")
    (b / "2").write_text("b")
    if not output_dir.exchange(a, b):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here")
    assert [p.name for p in a.iterdir()] == ["2"] and [p.name for p in b.iterdir()] == ["1"]
    with pytest.raises(OSError):
        output_dir.exchange(a, tmp_path / "missing")
