"""Reading and checking points: every bad file or array is a one-line DimensionError (a
WorkbenchError) naming the culprit, before any work; anything else gives the right estimate."""
import re
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from analysis.dimension import DimensionError, as_points, estimate_dimension, read_points
from analysis.dimension.points import MAX_FEATURES
from analysis.errors import WorkbenchError

RNG = np.random.default_rng(0)


def write(path, array):
    if path.suffix == ".csv":
        np.savetxt(path, array, delimiter=",")
    elif path.suffix == ".npz":
        np.savez(path, array)
    else:
        np.save(path, array)
    return path


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv"])
def test_points_files_are_read_as_float64(tmp_path, suffix):
    points = RNG.random((30, 4))
    read = read_points(write(tmp_path / f"points{suffix}", points))
    assert read.dtype == np.float64 and read.shape == (30, 4)
    np.testing.assert_allclose(read, points, rtol=1e-15)


def test_images_are_flattened_and_integers_accepted(tmp_path):
    images = RNG.integers(0, 255, size=(25, 3, 4, 4), dtype=np.uint8)
    read = read_points(write(tmp_path / "images.npy", images))
    assert read.shape == (25, 48) and (read == images.reshape(25, -1)).all()


def file_cases(tmp_path):
    (tmp_path / "zero.npy").write_bytes(b"")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not a zip")
    with zipfile.ZipFile(tmp_path / "no_arrays.npz", "w"):
        pass
    (tmp_path / "header.csv").write_text("a,b\n1,2\n")
    (tmp_path / "blank.csv").write_text("\n")
    (tmp_path / "points.txt").write_text("1,2\n")
    return {
        "zero.npy": "empty (0 bytes)",
        "junk.npz": "cannot read",
        "no_arrays.npz": "holds no arrays",
        "header.csv": "cannot read",
        "blank.csv": "is empty: shape",
        "points.txt": "unsupported type",
        "missing.npy": "not found",
        write(tmp_path / "empty.npy", np.empty((0, 3))).name: "is empty: shape",
        write(tmp_path / "nan.npy", np.full((40, 3), np.nan)).name: "NaN or inf values in 40 of 40 rows",
        write(tmp_path / "flat.npy", RNG.random(50)).name: "must be 2-D",
        write(tmp_path / "strings.npy", np.array([["a", "b"]] * 30)).name: "dtype <U1",
        write(tmp_path / "complex.npy", RNG.random((30, 2)) + 1j).name: "complex values",
        write(tmp_path / "objects.npy", np.empty(0, dtype=object)).name: "cannot read",
    }


def test_bad_points_files_name_the_file_and_the_problem(tmp_path):
    for name, message in file_cases(tmp_path).items():
        with pytest.raises(DimensionError, match=re.escape(message)) as error:
            read_points(tmp_path / name)
        assert f"points file {tmp_path / name}" in str(error.value)
        assert "\n" not in str(error.value) and isinstance(error.value, WorkbenchError)


def test_too_few_or_identical_points_fail_before_any_work(tmp_path):
    transposed = read_points(write(tmp_path / "wide.npy", RNG.random((3, 10000))))
    with pytest.raises(DimensionError, match="at least 21 distinct points.*has 3 .*transposed"):
        estimate_dimension(transposed, "mle", data_name="wide.npy")
    identical = read_points(write(tmp_path / "same.npy", np.ones((200, 5))))
    with pytest.raises(DimensionError, match="same.npy has 1 \\(199 duplicates removed\\)"):
        estimate_dimension(identical, "twonn", data_name="same.npy")


def test_complex_points_are_refused_not_cast():
    with pytest.raises(DimensionError, match="complex"):
        estimate_dimension(RNG.random((40, 3)).astype(np.complex128), "mle")  # even with zero imaginary part
    with pytest.raises(DimensionError, match="complex"):
        as_points(torch.randn(40, 3, dtype=torch.complex64))


def test_too_many_features_refused_before_any_copy():
    wide = np.broadcast_to(np.float64(1.0), (3, MAX_FEATURES + 1))  # no memory behind it
    with pytest.raises(DimensionError, match=f"{MAX_FEATURES + 1} features"):
        as_points(wide)


def test_torch_points_of_any_float_type_accepted():
    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    assert as_points(x).dtype == np.float64


@pytest.mark.parametrize("bad", [-1, 2.5, True, "3"])
def test_bad_n_bootstrap(bad):
    with pytest.raises(DimensionError, match="n_bootstrap"):
        estimate_dimension(RNG.random((50, 3)), "mle", n_bootstrap=bad)


@pytest.mark.parametrize("device, message", [("cpu:junk", "unknown"), ("tpu", "unknown"),
                                             ("cuda:7", "not available")])
def test_bad_device_fails_before_any_work(device, message):
    if device == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    with pytest.raises(DimensionError, match=message):
        estimate_dimension(RNG.random((50, 3)), "mle", device=device)


# ---- random malformed arrays -------------------------------------------------------------

FAILING = ("nan", "inf", "complex", "object", "strings", "one_d", "no_rows", "no_features")
VALID = ("plain", "duplicates", "tiny_scale", "huge_scale", "huge_dimension", "constant")
K = 20


def reference_mle(points: np.ndarray) -> float:
    """Levina-Bickel MLE with k = 20 and MacKay-Ghahramani's combination, by scipy's cdist."""
    distances = np.sort(cdist(points, points), axis=1)[:, 1:K + 1]
    local = (K - 1) / np.log(distances[:, -1:] / distances).sum(axis=1)
    return 1.0 / np.mean(1.0 / local)


@st.composite
def malformed_points(draw):
    kind = draw(st.sampled_from(FAILING + VALID))
    n = draw(st.integers(1, 45))
    dim = draw(st.integers(1000, 4000)) if kind == "huge_dimension" else draw(st.integers(1, 6))
    base = np.random.default_rng(draw(st.integers(0, 2**16))).normal(size=(n, dim))
    row, col = draw(st.integers(0, n - 1)), draw(st.integers(0, dim - 1))
    array = base.copy()
    if kind in ("nan", "inf"):
        array[row, col] = np.nan if kind == "nan" else draw(st.sampled_from([np.inf, -np.inf]))
    made = {"complex": lambda: base + 1j * draw(st.sampled_from([0.0, 1.0])),
            "object": lambda: base.astype(object), "strings": lambda: base.astype(str),
            "one_d": lambda: base[:, 0], "no_rows": lambda: base[:0], "no_features": lambda: base[:, :0],
            "duplicates": lambda: base[np.sort(np.random.default_rng(n).integers(0, n, 2 * n))],
            "tiny_scale": lambda: np.ldexp(base, -900), "huge_scale": lambda: np.ldexp(base, 900),
            "constant": lambda: np.repeat(base[:1], n, axis=0)}
    return kind, base, made.get(kind, lambda: array)()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(malformed_points())
def test_malformed_arrays_give_a_dimension_error_or_the_right_estimate(case):
    kind, base, array = case
    try:
        estimate = estimate_dimension(array, "mle", device="cpu")
    except DimensionError as error:
        assert "\n" not in str(error)
        assert kind in FAILING or len(np.unique(array, axis=0)) < K + 1, f"{kind}: {error}"
        return
    assert kind in VALID
    distinct = np.unique(base if kind.endswith("_scale") else array, axis=0)
    assert np.isfinite(estimate.value) and estimate.n_points == len(distinct)
    # the same estimate whatever the scale (a power of two) and the duplicates
    assert estimate.value == pytest.approx(reference_mle(distinct), rel=1e-9)
