"""Datasets: the fixed digits split, the IDX reader on files written here, load_dataset."""
from __future__ import annotations

import gzip
import os
import re
import struct

import numpy as np
import pytest

from neurocore.sw.datasets import (
    DATASETS,
    IDX_FILES,
    Dataset,
    load_dataset,
    load_digits,
    load_idx_dataset,
    read_idx,
)

_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(arr: np.ndarray, code: int | None = None) -> bytes:
    arr = np.asarray(arr)
    if code is None:
        code = _CODES[arr.dtype.type]
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write(path, data: bytes, gz: bool = False) -> str:
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if gz else data)
    return str(path)


# ---------------------------------------------------------------------------------------
# digits


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits()


def test_digits_split_sizes_and_types(digits):
    assert digits.name == "digits"
    assert digits.x_train.shape == (1257, 64) and digits.x_test.shape == (540, 64)
    assert digits.y_train.shape == (1257,) and digits.y_test.shape == (540,)
    assert digits.x_train.dtype == np.float32 and digits.y_train.dtype == np.int64
    assert digits.image_shape == (8, 8) and digits.n_classes == 10 and digits.n_features == 64
    for x in (digits.x_train, digits.x_test):
        assert x.min() == 0.0 and x.max() == 1.0
        # pixel values were 0..16, so every value is a multiple of 1/16
        np.testing.assert_array_equal(x * 16, np.round(x * 16))


def test_digits_split_is_stratified_and_complete(digits):
    np.testing.assert_array_equal(np.bincount(digits.y_test), [54, 55, 53, 55, 54, 55, 54, 54, 52, 54])
    assert set(np.unique(digits.y_train)) == set(range(10))
    from sklearn.datasets import load_digits as sk

    full = sk()
    both = np.concatenate([digits.x_train, digits.x_test]) * 16
    labels = np.concatenate([digits.y_train, digits.y_test])
    order = np.lexsort(np.column_stack([both, labels]).T)
    ref_order = np.lexsort(np.column_stack([full.data, full.target]).T)
    np.testing.assert_array_equal(both[order], full.data[ref_order])
    np.testing.assert_array_equal(labels[order], full.target[ref_order])


def test_digits_is_deterministic(digits):
    again = load_digits()
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(again, field), getattr(digits, field))


def test_dataset_is_frozen(digits):
    with pytest.raises(AttributeError):
        digits.name = "other"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------
# Dataset validation


def _ds(**over) -> Dataset:
    kw = dict(
        name="t",
        x_train=np.zeros((3, 4), np.float32),
        y_train=np.zeros(3, np.int64),
        x_test=np.ones((2, 4), np.float32),
        y_test=np.array([1, 2], np.int64),
        image_shape=(2, 2),
        n_classes=3,
    )
    kw.update(over)
    return Dataset(**kw)


def test_dataset_valid():
    assert _ds().n_features == 4


@pytest.mark.parametrize(
    "over, message",
    [
        (dict(x_train=np.zeros((3, 4), np.float64)), "x_train must be a 2-D float32 array"),
        (dict(x_test=np.zeros(4, np.float32)), "x_test must be a 2-D float32 array"),
        (dict(y_train=np.zeros(3, np.int32)), "y_train must be a 1-D int64 array"),
        (dict(y_train=np.zeros(2, np.int64)), "x_train has 3 samples but y_train has 2 labels"),
        (dict(image_shape=(3, 3)), "x_train has 4 features but image_shape (3, 3) has 9 pixels"),
        (dict(image_shape=(4,)), "image_shape must be two positive ints"),
        (dict(n_classes=0), "n_classes must be a positive int"),
        (dict(x_test=np.full((2, 4), 1.5, np.float32)), "x_test values must be within [0, 1]"),
        (dict(x_test=np.full((2, 4), np.nan, np.float32)), "x_test contains NaN; values must be within [0, 1]"),
        (dict(y_test=np.array([1, 3], np.int64)), "y_test labels must be within 0..2, got 1..3"),
        (dict(y_test=np.array([-1, 0], np.int64)), "y_test labels must be within 0..2"),
    ],
)
def test_dataset_rejects(over, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _ds(**over)


# ---------------------------------------------------------------------------------------
# read_idx


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", list(_CODES))
def test_read_idx_roundtrip(tmp_path, dtype, gz):
    rng = np.random.default_rng(1)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        arr = rng.integers(info.min, info.max, size=(3, 4, 5), endpoint=True).astype(dtype)
    else:
        arr = (rng.standard_normal((3, 4, 5)) * 1e3).astype(dtype)
    path = write(tmp_path / "a.idx", idx_bytes(arr), gz=gz)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


def test_read_idx_known_bytes(tmp_path):
    # 2 big-endian shorts 0x0102, 0xFFFE = 258, -2
    path = write(tmp_path / "s", bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 1, 2, 0xFF, 0xFE]))
    np.testing.assert_array_equal(read_idx(path), np.array([258, -2], np.int16))


def test_read_idx_gzip_detected_by_magic_not_name(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    gz_named_plain = write(tmp_path / "plain.gz", idx_bytes(arr))
    plain_named_gz = write(tmp_path / "compressed-idx1-ubyte", idx_bytes(arr), gz=True)
    np.testing.assert_array_equal(read_idx(gz_named_plain), arr)
    np.testing.assert_array_equal(read_idx(plain_named_gz), arr)


def test_read_idx_accepts_pathlike_and_empty(tmp_path):
    arr = np.zeros((0, 28, 28), np.uint8)
    p = tmp_path / "empty"
    write(p, idx_bytes(arr))
    assert read_idx(p).shape == (0, 28, 28)


def test_read_idx_missing_file(tmp_path):
    missing = tmp_path / "nope-idx1-ubyte"
    with pytest.raises(FileNotFoundError, match=re.escape(f"IDX file not found: {missing}")):
        read_idx(missing)


GOOD = idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3))


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x00\x00\x08", "not an IDX file: only 3 bytes, the header needs at least 4"),
        (b"\x01\x00" + GOOD[2:], "bad IDX magic: the first two bytes must be 00 00, got 01 00"),
        (b"PK\x03\x04" + GOOD[4:], "bad IDX magic: the first two bytes must be 00 00, got 50 4b"),
        (GOOD[:2] + b"\x07" + GOOD[3:], "unknown IDX type code 0x07"),
        (GOOD[:3] + b"\x00", "IDX header declares 0 dimensions"),
        (GOOD[:9], "truncated IDX header: 2 dimensions need 12 header bytes, found 9"),
        (GOOD[:-1], "truncated IDX data: shape (2, 3) of uint8 needs 6 bytes, found 5"),
        (GOOD[:12], "truncated IDX data: shape (2, 3) of uint8 needs 6 bytes, found 0"),
        (
            idx_bytes(np.zeros((2, 3), np.int32))[:-2],
            "truncated IDX data: shape (2, 3) of int32 needs 24 bytes, found 22",
        ),
        (GOOD + b"\x00\x01\x02", "3 bytes of trailing garbage after the IDX data"),
    ],
)
def test_read_idx_malformed(tmp_path, data, message, gz):
    path = write(tmp_path / "bad", data, gz=gz)
    with pytest.raises(ValueError) as info:
        read_idx(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and message in text
    assert "\n" not in text


def test_read_idx_corrupt_gzip(tmp_path):
    data = gzip.compress(GOOD)
    path = write(tmp_path / "bad.gz", data[: len(data) // 2])
    with pytest.raises(ValueError, match=re.escape(f"{path}: corrupt gzip data")):
        read_idx(path)


# ---------------------------------------------------------------------------------------
# load_idx_dataset / load_dataset


def make_idx_dir(root, *, n_train=12, n_test=5, shape=(4, 3), gz=(True, False, True, False), **override):
    rng = np.random.default_rng(7)
    arrays = {
        IDX_FILES[0]: rng.integers(0, 256, size=(n_train, *shape), dtype=np.uint8),
        IDX_FILES[1]: rng.integers(0, 10, size=n_train, dtype=np.uint8),
        IDX_FILES[2]: rng.integers(0, 256, size=(n_test, *shape), dtype=np.uint8),
        IDX_FILES[3]: rng.integers(0, 10, size=n_test, dtype=np.uint8),
    }
    if n_train:
        arrays[IDX_FILES[0]][0, 0, 0] = 255
        arrays[IDX_FILES[0]][0, 0, 1] = 0
    arrays.update(override)
    os.makedirs(root, exist_ok=True)
    for (stem, arr), z in zip(arrays.items(), gz):
        write(os.path.join(root, stem + (".gz" if z else "")), idx_bytes(arr), gz=z)
    return arrays


def test_load_idx_dataset(tmp_path):
    arrays = make_idx_dir(tmp_path)
    ds = load_idx_dataset(tmp_path, "mnist")
    assert ds.name == "mnist" and ds.image_shape == (4, 3) and ds.n_classes == 10 and ds.n_features == 12
    assert ds.x_train.shape == (12, 12) and ds.x_test.shape == (5, 12)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.x_train.max() == 1.0 and ds.x_train.min() == 0.0
    np.testing.assert_allclose(ds.x_train * 255, arrays[IDX_FILES[0]].reshape(12, 12), atol=1e-4)
    np.testing.assert_allclose(ds.x_test * 255, arrays[IDX_FILES[2]].reshape(5, 12), atol=1e-4)
    np.testing.assert_array_equal(ds.y_train, arrays[IDX_FILES[1]])
    np.testing.assert_array_equal(ds.y_test, arrays[IDX_FILES[3]])


def test_load_idx_dataset_mismatched_counts(tmp_path):
    make_idx_dir(tmp_path, **{IDX_FILES[1]: np.zeros(11, np.uint8)})
    with pytest.raises(ValueError, match=r"mnist: train images and labels disagree: .* has 12 images, .* has 11 labels"):
        load_idx_dataset(tmp_path, "mnist")


def test_load_idx_dataset_test_counts(tmp_path):
    make_idx_dir(tmp_path, **{IDX_FILES[2]: np.zeros((6, 4, 3), np.uint8)})
    with pytest.raises(ValueError, match=r"test images and labels disagree: .* has 6 images, .* has 5 labels"):
        load_idx_dataset(tmp_path, "mnist")


def test_load_idx_dataset_bad_labels(tmp_path):
    make_idx_dir(tmp_path, **{IDX_FILES[3]: np.array([0, 1, 2, 10, 3], np.uint8)})
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: labels must be within 0\.\.9, found 10"):
        load_idx_dataset(tmp_path, "mnist")


def test_load_idx_dataset_wrong_type_and_rank(tmp_path):
    make_idx_dir(tmp_path / "a", **{IDX_FILES[0]: np.zeros((12, 4, 3), np.int16)})
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: expected ubyte \(type code 0x08\) data, got int16"):
        load_idx_dataset(tmp_path / "a", "mnist")
    make_idx_dir(tmp_path / "b", **{IDX_FILES[2]: np.zeros((5, 12), np.uint8)})
    with pytest.raises(ValueError, match=r"expected 3-D images \[n, rows, cols\], got shape \(5, 12\)"):
        load_idx_dataset(tmp_path / "b", "mnist")


def test_load_idx_dataset_image_shape_mismatch(tmp_path):
    make_idx_dir(tmp_path, **{IDX_FILES[2]: np.zeros((5, 3, 4), np.uint8)})
    with pytest.raises(ValueError, match=re.escape("mnist: train images are (4, 3) but test images are (3, 4)")):
        load_idx_dataset(tmp_path, "mnist")


def test_load_idx_dataset_missing_file(tmp_path):
    make_idx_dir(tmp_path)
    os.remove(tmp_path / IDX_FILES[1])  # written raw
    expected = f"IDX file not found: {tmp_path / IDX_FILES[1]}[.gz]"
    with pytest.raises(FileNotFoundError, match=re.escape(expected)):
        load_idx_dataset(tmp_path, "mnist")


def test_load_idx_dataset_missing_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(f"fashion-mnist: data directory not found: {tmp_path / 'x'}")):
        load_idx_dataset(tmp_path / "x", "fashion-mnist")


def test_load_dataset_names(tmp_path):
    assert DATASETS == ("digits", "mnist", "fashion-mnist")
    assert load_dataset("digits").x_train.shape == (1257, 64)
    make_idx_dir(tmp_path)
    for name in ("mnist", "fashion-mnist"):
        ds = load_dataset(name, str(tmp_path))
        assert ds.name == name and ds.x_train.shape == (12, 12)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_load_dataset_requires_path(name):
    with pytest.raises(ValueError, match=r"never downloaded: pass --data-dir PATH with the IDX files"):
        load_dataset(name)


def test_load_dataset_unknown():
    with pytest.raises(ValueError, match=re.escape("unknown dataset 'cifar10'; choose one of digits, mnist, fashion-mnist")):
        load_dataset("cifar10")


# empty and truncated IDX files: the loader's own one-line errors, never numpy's
@pytest.mark.parametrize("stem, empty, what", [
    (IDX_FILES[0], np.zeros((0, 4, 3), np.uint8), r"holds no images .*: shape \(0, 4, 3\)"),
    (IDX_FILES[0], np.zeros((12, 0, 0), np.uint8), r"holds no images .*: shape \(12, 0, 0\)"),
    (IDX_FILES[1], np.zeros(0, np.uint8), r"holds no labels: shape \(0,\)"),
    (IDX_FILES[2], np.zeros((0, 4, 3), np.uint8), r"holds no images .*: shape \(0, 4, 3\)"),
    (IDX_FILES[3], np.zeros(0, np.uint8), r"holds no labels: shape \(0,\)"),
])
def test_load_idx_dataset_empty_files(tmp_path, stem, empty, what):
    make_idx_dir(tmp_path, gz=(False,) * 4, **{stem: empty})
    with pytest.raises(ValueError, match=rf"^{re.escape(str(tmp_path / stem))}: {what}$"):
        load_dataset("mnist", tmp_path)


def test_load_idx_dataset_empty_everything(tmp_path):
    """All four files of zero samples: the first one is named, not 'cannot reshape array of size 0'."""
    make_idx_dir(tmp_path, n_train=0, n_test=0, gz=(False,) * 4)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(tmp_path / IDX_FILES[0]))}: holds no images"):
        load_dataset("fashion-mnist", tmp_path)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("cut, message", [
    (0, "not an IDX file: only 0 bytes"),
    (10, "truncated IDX header: 3 dimensions need 16 header bytes, found 10"),
    (16 + 7, r"truncated IDX data: shape \(12, 4, 3\) of uint8 needs 144 bytes, found 7"),
])
def test_load_idx_dataset_truncated_files(tmp_path, gz, cut, message):
    make_idx_dir(tmp_path, gz=(False,) * 4)
    path = tmp_path / IDX_FILES[0]
    data = path.read_bytes()[:cut]
    path.unlink()
    write(str(path) + (".gz" if gz else ""), data, gz=gz)
    with pytest.raises(ValueError, match=rf"{IDX_FILES[0]}(\.gz)?: {message}"):
        load_dataset("mnist", tmp_path)


def test_digits_refuses_a_data_dir(tmp_path):
    with pytest.raises(ValueError, match=r"^--data-dir .*: dataset 'digits' ships with scikit-learn .* "
                                         r"--data-dir is for mnist and fashion-mnist"):
        load_dataset("digits", tmp_path)


@pytest.mark.parametrize("argv", [
    ["convert", "--data-dir", "{tmp}"],
    ["convert", "--dataset", "digits", "--data-dir", "{tmp}", "--no-curve"],
    ["train-stdp", "--data-dir", "{tmp}", "--no-progress"],
])
def test_cli_refuses_data_dir_for_digits(tmp_path, capsys, argv):
    from neurocore.tools import cli
    assert cli.main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert "dataset 'digits' ships with scikit-learn" in captured.err


def test_cli_empty_idx_files_one_line(tmp_path, capsys):
    from neurocore.tools import cli
    make_idx_dir(tmp_path, n_train=0, n_test=0)
    assert cli.main(["convert", "--dataset", "mnist", "--data-dir", str(tmp_path), "--no-curve"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert "holds no images" in captured.err and "reshape" not in captured.err
