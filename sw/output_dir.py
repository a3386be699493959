"""Output directories: written atomically, replacing only what neurocore itself wrote.

Every writer of an output directory (the image directories of ``compile``, ``convert``
and ``train-stdp``, through :func:`neurocore.sw.image_dir.write_image_dir`; the report
folder of ``demo``) goes through :func:`staged_output`, so one rule decides what may be
replaced:

* never the current directory or one of its parents (``-o .``, ``-o ..``);
* never a symbolic link (the link is not an output; give the directory itself);
* never a file, nor a directory holding anything but an earlier neurocore output;
* an earlier output -- an image directory (its ``manifest.json`` has format
  ``neurocore-image`` and lists every file in it) or a demo report (its ``report.json``
  has kind ``neurocore-demo-report`` and lists every file under it) -- or an empty
  directory only when the caller allows that kind (``--force`` / ``overwrite=True``; the
  demo replaces its own earlier report without ``--force``).

A refusal is one line naming the path and the reason (:class:`OutputDirError`, a
``ValueError``).

Writing. :func:`staged_output` makes a hidden staging sibling ``.<name>.tmp-<hex>``
holding the marker file :data:`STAGING_MARKER`, lets the writer fill it, removes the
marker and swaps it into place:

* no output yet: one ``rename``;
* an earlier output: on Linux one ``renameat2(RENAME_EXCHANGE)``, which swaps the two
  directories atomically (the path always holds the old or the new output), then the
  staging name, now holding the old output, is deleted. Where the exchange is not
  available, the old output is first renamed to ``.<name>.old-<hex>`` and the new one
  renamed in; an interruption between the two renames leaves the path missing, and the
  next write of the path (or :func:`recover`, which ``load_image_dir`` calls) renames the
  old output back.

Leftovers. A killed run leaves its staging folder (and, after the fallback swap, an
``.old`` folder). The next write of the same path removes every sibling named
``.<name>.tmp-<hex>`` or ``.<name>.old-<hex>`` that is ours by content: a real
directory (not a link) holding the staging marker of a process that no longer runs (a
concurrent writer's folder is kept), or an earlier output, or nothing. Anything else of
that name is left alone.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import shutil
import uuid
from collections.abc import Collection, Iterator
from pathlib import Path

__all__ = ["OutputDirError", "STAGING_MARKER", "IMAGE", "REPORT", "EMPTY", "ANY_OUTPUT", "IMAGE_FORMAT",
           "REPORT_KIND", "output_kind", "output_files", "check_output_dir", "staged_output", "recover",
           "clean_leftovers", "exchange"]

#: Kinds of existing directory :func:`check_output_dir` may be allowed to replace.
IMAGE, REPORT, EMPTY = "image", "report", "empty"
ANY_OUTPUT = (IMAGE, REPORT, EMPTY)
_KIND_NAMES = {IMAGE: "an earlier neurocore image directory", REPORT: "an earlier neurocore demo report",
               EMPTY: "an empty directory"}

#: The marker files of the two outputs, and the value that identifies each.
IMAGE_MANIFEST, IMAGE_FORMAT = "manifest.json", "neurocore-image"
REPORT_JSON, REPORT_KIND = "report.json", "neurocore-demo-report"

#: The file that marks a staging directory while it is being written (with the writer's pid).
STAGING_MARKER = ".neurocore-staging"
_MARKER_TEXT = "neurocore staging directory: being written, removed when complete\npid {pid}\n"

_HEX = 12   # hex digits of the random part of a staging / old name
_DEBRIS = re.compile(r"\.(?P<name>.+)\.(?P<what>tmp|old)-[0-9a-f]{8,32}")


class OutputDirError(ValueError):
    """An output path that must not be written or replaced (one line, names the path)."""


# -- what a directory holds ----------------------------------------------------------------------
def _entries(root: Path) -> tuple[list[str], bool]:
    """``(relative paths of every non-directory entry under root, whether it holds a link)``.

    Links (to files or directories) are listed, never followed.
    """
    found, links = [], False
    stack = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        with os.scandir(directory) as it:
            for entry in it:
                rel = prefix + entry.name
                if entry.is_symlink():
                    links = True
                    found.append(rel)
                elif entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), rel + "/"))
                else:
                    found.append(rel)
    return sorted(found), links


def output_files(path) -> list[str]:
    """The files under ``path`` (relative, ``/``-separated, sorted), without the staging marker."""
    return [f for f in _entries(Path(path))[0] if f != STAGING_MARKER]


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None


def _owned(path: Path) -> tuple[str | None, set[str]]:
    """``(kind, files it lists)`` of the output marker file in ``path`` (``(None, set())``: none)."""
    manifest = _read_json(path / IMAGE_MANIFEST)
    if isinstance(manifest, dict) and manifest.get("format") == IMAGE_FORMAT \
            and isinstance(manifest.get("files"), dict):
        return IMAGE, {IMAGE_MANIFEST} | {str(f) for f in manifest["files"]}
    report = _read_json(path / REPORT_JSON)
    if isinstance(report, dict) and report.get("kind") == REPORT_KIND and isinstance(report.get("files"), list):
        return REPORT, {REPORT_JSON} | {str(f) for f in report["files"]}
    return None, set()


def _strangers(path: Path) -> tuple[str | None, list[str]]:
    """``(kind, files under path that are not part of that output)``; kind None: not an output."""
    files, _ = _entries(path)
    if not files:
        return EMPTY, []
    kind, owned = _owned(path)
    return kind, [f for f in files if f not in owned]


def output_kind(path) -> str | None:
    """:data:`IMAGE`, :data:`REPORT` or :data:`EMPTY` if the directory ``path`` is an earlier
    output of neurocore (every file in it listed by its marker file) or empty; else None."""
    path = Path(path)
    if path.is_symlink() or not path.is_dir():
        return None
    kind, strangers = _strangers(path)
    return kind if not strangers else None


# -- the rule ------------------------------------------------------------------------------------
def _location(path) -> Path:
    """``path`` made absolute with its parent's links resolved (the last component kept)."""
    path = Path(path).expanduser()
    if path.name in ("", ".", ".."):
        return Path(os.path.realpath(path))
    return Path(os.path.realpath(path.parent)) / path.name


def check_output_dir(path, *, replace: Collection[str] = (), hint: str = "use --force to replace it",
                     error: type[Exception] = OutputDirError) -> Path:
    """Check that ``path`` may be written; returns its location (absolute, parents resolved).

    A path that does not exist may be written. An existing one may be replaced only if it
    is one of the kinds in ``replace`` (:data:`IMAGE`, :data:`REPORT`, :data:`EMPTY`) and
    is never the current directory or one of its parents, a link, a file or a directory
    of other files (see the module docstring). Raises ``error`` (one line; ``hint`` says
    how to allow the replacement of an output of another kind).
    """
    where = _location(path)
    if not (where.exists() or where.is_symlink()):
        return where
    real = Path(os.path.realpath(where))
    cwd = Path.cwd().resolve()
    if real == cwd or real in cwd.parents:
        raise error(f"{path}: refusing to replace the current directory or one of its parents")
    if where.is_symlink():
        raise error(f"{path} is a symbolic link (to {os.readlink(where)}); refusing to replace it: "
                    "give a new directory or the directory itself")
    if not where.is_dir():
        raise error(f"{path} exists and is not a directory; refusing to replace it")
    try:
        kind, strangers = _strangers(where)
    except OSError as exc:
        raise error(f"{path}: cannot read the directory ({exc.strerror or exc}); refusing to replace it") from None
    if kind is None or strangers:
        shown = ", ".join(strangers[:3]) + (f" and {len(strangers) - 3} more" if len(strangers) > 3 else "")
        why = "it is not an earlier neurocore output" if kind is None else \
            f"it holds files that are not part of the {kind} ({shown})"
        raise error(f"{path} exists and {why}; refusing to replace a directory of other files: "
                    "choose another output directory")
    if kind not in replace:
        raise error(f"{path} already exists ({_KIND_NAMES[kind]}; {hint})")
    return where


# -- the swap ------------------------------------------------------------------------------------
_RENAME_EXCHANGE = 2   # linux/fs.h
_AT_FDCWD = -100


def _renameat2():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_renameat2_fn = _renameat2()


def exchange(a, b) -> bool:
    """Atomically swap the directories ``a`` and ``b`` (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where the exchange is not available (another OS, an old C library, a file
    system without it); raises ``OSError`` for any other failure.
    """
    if _renameat2_fn is None:
        return False
    if _renameat2_fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), os.fspath(a), None, os.fspath(b))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sibling(path: Path, what: str) -> Path:
    return path.with_name(f".{path.name}.{what}-{uuid.uuid4().hex[:_HEX]}")


def _install(tmp: Path, path: Path) -> None:
    """Put the finished ``tmp`` at ``path``; an existing ``path`` ends up deleted."""
    parent = path.parent
    if not path.exists():
        os.rename(tmp, path)
        _fsync_dir(parent)
        return
    if exchange(tmp, path):                # path: the new output; tmp: the old one
        _fsync_dir(parent)
        shutil.rmtree(tmp, ignore_errors=True)
        return
    old = _sibling(path, "old")            # fallback: two renames, undone on error,
    os.rename(path, old)                   # recovered by recover() after a kill
    try:
        os.rename(tmp, path)
    except BaseException:
        os.rename(old, path)
        raise
    _fsync_dir(parent)
    shutil.rmtree(old, ignore_errors=True)


# -- leftovers of interrupted writes -------------------------------------------------------------
def _debris(path: Path) -> list[tuple[str, Path]]:
    """``(tmp|old, folder)`` for every leftover sibling of ``path`` that is ours by name and content."""
    found = []
    try:
        siblings = list(os.scandir(path.parent))
    except OSError:
        return []
    for entry in siblings:
        m = _DEBRIS.fullmatch(entry.name)
        if not m or m["name"] != path.name or entry.is_symlink() or not entry.is_dir(follow_symlinks=False):
            continue
        folder = Path(entry.path)
        writer = _staging_pid(folder)
        if writer is not None:
            if not _alive(writer):          # a running writer's folder is its own business
                found.append(("staging", folder))
            continue
        try:
            if output_kind(folder) is not None:
                found.append((m["what"], folder))
        except OSError:
            pass
    return found


def _staging_pid(folder: Path) -> int | None:
    """The pid in ``folder``'s staging marker, or None if it has no (valid) marker."""
    try:
        text = (folder / STAGING_MARKER).read_text()
    except (OSError, UnicodeDecodeError):
        return None
    head, _, pid = text.rpartition("pid ")
    if head + "pid {pid}\n" != _MARKER_TEXT or not pid.rstrip("\n").isdigit():
        return None
    return int(pid)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (True when it cannot be told: a folder is kept, not lost)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:          # EPERM: it exists, under another user
        return True
    return True


def recover(path) -> bool:
    """If ``path`` is missing because a swap was interrupted between its two renames, rename
    the old output (``.<name>.old-<hex>``, the newest if several) back; True if it did."""
    path = _location(path)
    if path.exists() or path.is_symlink():
        return False
    olds = [folder for what, folder in _debris(path) if what == "old" and output_kind(folder) != EMPTY]
    if not olds:
        return False
    newest = max(olds, key=lambda f: f.stat().st_mtime)
    try:
        os.rename(newest, path)
    except OSError:
        return False
    return True


def clean_leftovers(path) -> list[Path]:
    """Delete the leftover staging and old folders of earlier writes of ``path``; returns them."""
    removed = []
    for _, folder in _debris(_location(path)):
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


# -- writing -------------------------------------------------------------------------------------
@contextlib.contextmanager
def staged_output(path, *, replace: Collection[str] = (), hint: str = "use --force to replace it",
                  error: type[Exception] = OutputDirError) -> Iterator[Path]:
    """Write an output directory atomically: ``with staged_output(path) as tmp:`` fill ``tmp``.

    Checks ``path`` (:func:`check_output_dir` with ``replace``, ``hint`` and ``error``)
    after recovering an interrupted swap and before anything is written, removes the
    leftovers of earlier writes of ``path``, yields a fresh staging directory and, when
    the block ends normally, checks ``path`` again and swaps the staging directory into
    place (see the module docstring). On any exception (``KeyboardInterrupt`` included) the
    staging directory is removed and ``path`` is left as it was.
    """
    recover(path)
    where = check_output_dir(path, replace=replace, hint=hint, error=error)
    parent = where.parent
    if parent.exists() and not parent.is_dir():
        raise error(f"{parent} is not a directory")
    clean_leftovers(where)
    parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(where, "tmp")
    tmp.mkdir()
    try:
        marker = tmp / STAGING_MARKER
        marker.write_text(_MARKER_TEXT.format(pid=os.getpid()))
        yield tmp
        marker.unlink()
        _fsync_dir(tmp)
        check_output_dir(path, replace=replace, hint=hint, error=error)   # may have appeared meanwhile
        _install(tmp, where)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
