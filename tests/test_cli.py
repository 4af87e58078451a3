"""The command line: one-line errors for bad input (before any work), output naming, and an end-to-end pass."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.cli import main


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis.cli", *args], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=1800, cwd=cwd)


def one_line_error(capsys, argv, tmp_path) -> str:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv + ["--no-progress", "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hardthresh: error:") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("args, message", [
    (["depth", "--device", "cpu:junk"], "unknown device 'cpu:junk'"),
    (["train", "--dataset", "mnist", "--no-download", "--data-dir", "{tmp}/nodata"], "train-images-idx3-ubyte.gz"),
    (["figures", "--results", "{tmp}/empty"], "no result tables"),
    (["prune", "--sparsity", "1.5"], "--sparsity must lie in [0, 1)"),
    (["prune", "--sparsity", "0.5", "--samples", "-5"], "--samples must be >= 1"),
    (["prune", "--sparsity", "0.5", "--layers", "1,1"], "each layer name once"),
    (["prune", "--sparsity", "0.5", "--layers", "9"], "no prunable layer '9'"),
    (["prune", "--sparsity", "0.5", "--method", "magic"], "unknown method 'magic'"),
    (["dimension", "--points", "{tmp}/missing.npy"], "missing.npy"),
    (["dimension", "--bootstrap", "-1"], "--bootstrap"),
    (["depth", "--methods", "threshold,magic"], "unknown pruning method(s) ['magic']"),
    (["methods", "--methods", "feta,feta"], "--methods: 'feta' is given twice"),
])
def test_bad_input_fails_before_any_work(tmp_path, capsys, args, message):
    assert message in one_line_error(capsys, args, tmp_path)
    assert not (tmp_path / "results" / "cache" / "models").exists()  # nothing was trained
    assert not (tmp_path / "nodata").exists()


def test_argument_errors_are_one_line(tmp_path, capsys):
    for argv in (["depth", "--preset", "huge"], ["depth", "--dataset", "imagenet"], ["depth", "--seeds", "a,b"],
                 ["depth", "--seeds", "0,0"], ["nonsense"], ["depth", "--bogus"]):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("hardthresh: error:") and "\n" not in err and "usage" not in err, err


def test_unwritable_results_folder(tmp_path, capsys):
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert main(["depth", "--results", str(blocked / "sub"), "--no-progress"]) == 2
    assert "cannot write to directory" in capsys.readouterr().err


def test_help_lists_every_command_without_importing_torch():
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", "import sys; from analysis.cli import main\n"
                             "try: main(['--help'])\nexcept SystemExit: pass\n"
                             "print('torch' in sys.modules)"], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    assert result.stdout.strip().endswith("False"), result.stdout
    for name in ("depth", "methods", "bounds", "dimension", "dimension-link", "train", "prune", "figures"):
        assert name in result.stdout
    assert elapsed < 10  # the README's figure (about 0.1 s) comes from a quiet machine, not from this test


def test_prune_names_outputs_by_everything_that_made_them(tmp_path):
    base = ["prune", "--preset", "smoke", "--dataset", "digits", "--model", "fc", "--sparsity", "0.5",
            "--samples", "300", "--results", str(tmp_path), "--no-progress", "--device", "cpu"]
    for extra in (["--seeds", "0,1"], ["--seeds", "0", "--method", "lobs"], ["--seeds", "0", "--parallel",
                                                                                "--method", "lobs"]):
        result = run_cli(*base, *extra)
        assert result.returncode == 0, result.stderr
    outputs = sorted((tmp_path / "pruned").glob("*.json"))
    assert len(outputs) == 4 and len(list((tmp_path / "pruned").glob("*.pt"))) == 4
    metrics = [json.loads(p.read_text()) for p in outputs]
    assert {(m["seed"], m["method"], m["mode"]) for m in metrics} == {
        (0, "threshold", "cascade"), (1, "threshold", "cascade"), (0, "lobs", "cascade"), (0, "lobs", "parallel")}
    assert all(0 < m["accuracy_after"] <= 1 and m["samples"] == 300 for m in metrics)
    assert all(oct(p.stat().st_mode & 0o777) != "0o600" for p in outputs)


def test_points_file_errors_are_one_line(tmp_path, capsys):
    cases = {"empty.npy": np.zeros((0, 3)), "flat.npy": np.arange(10.0), "nan.npy": np.full((50, 3), np.nan),
             "same.npy": np.ones((200, 4)), "complex.npy": np.ones((50, 3)) * 1j}
    for name, array in cases.items():
        np.save(tmp_path / name, array)
    (tmp_path / "zero.npy").write_bytes(b"")
    for name in list(cases) + ["zero.npy"]:
        err = one_line_error(capsys, ["dimension", "--points", str(tmp_path / name)], tmp_path)
        assert name in err


@pytest.mark.data
def test_reproduce_end_to_end_on_fashion_mnist(smoke_workspace):
    """The main job on the smoke preset: real Fashion-MNIST, every experiment, figures from every table."""
    folder, args, first = smoke_workspace
    results, figures = folder / "results", folder / "figures"
    assert first.returncode == 0, first.stderr
    tables = {p.stem: pd.read_parquet(p) for p in results.glob("*.parquet")}
    assert set(tables) >= {"depth", "methods_accuracy", "methods_retraining", "pruning_time", "bounds",
                           "bounds_depth_profile", "bounds_certificates", "bounds_differential", "bounds_correlations",
                           "dimension_datasets", "dimension_validation", "dimension_link", "generalization"}
    depth = tables["depth"]
    assert set(depth["mode"]) == {"alone", "onward"} and depth["seed"].nunique() == 2
    assert depth["layer"].nunique() == 8 and (depth["dataset"] == "fashion-mnist").all()
    assert (depth[depth["sparsity"] == 0.0]["accuracy_drop"] == 0).all()
    accuracy = tables["methods_accuracy"]
    assert set(accuracy["method"]) == {"threshold", "feta", "nettrim", "lobs"}
    assert accuracy["accuracy"].between(0, 1).all() and (accuracy["pruning_time_s"] > 0).all()
    assert (tables["methods_retraining"]["sparsity"] == 0.9).all()
    sound = tables["bounds"][~tables["bounds"]["is_estimate"]]
    assert (sound["violations"] == 0).all() and (tables["bounds_differential"]["violations"] == 0).all()
    profile = tables["bounds_depth_profile"]
    assert (profile["per_sample_bound"] >= profile["measured"] * (1 - 1e-9)).all()
    assert (tables["bounds_certificates"]["accuracy_lower_bound"] <= tables["bounds_certificates"]["accuracy"]).all()
    assert (tables["generalization"]["k"] > 0).all()
    dims = tables["dimension_datasets"]
    assert ((dims["value"] > 5) & (dims["value"] < 40)).all()
    assert set(tables["dimension_link"]["kind"]) == {"pca", "synthetic"}
    meta = json.loads((results / "depth.json").read_text())
    assert meta["config"]["train"]["data"]["dataset"] == "fashion-mnist"
    index = json.loads((figures / "index.json").read_text())
    report = (figures / "REPORT.md").read_text()
    assert all(f"## Claim {claim}" in report for claim in "1234") and "**Verdict:" in report
    # smoke networks train one epoch without early stopping: the report's checks must say so
    assert report.count("**Checked**") == 4 and "- **not met**: fc/fashion-mnist: 0 of 1 seed(s) stopped early" in report
    for name in ("depth_accuracy_vs_sparsity", "depth_degradation_vs_depth", "methods_accuracy_vs_sparsity_fc",
                 "methods_total_time", "bounds_vs_depth", "dimension_estimator_validation",
                 "dimension_drop_vs_dimension", "bounds_depth_profile", "bounds_differential",
                 "generalization_bound_vs_dimension"):
        assert name in index and (figures / f"{name}.png").stat().st_size > 1000
    checkpoints = {p: p.stat().st_mtime_ns for p in (results / "cache" / "models").glob("*.pt")}
    second = run_cli(*args, cwd=folder)  # everything cached: same numbers, nothing retrained
    assert second.returncode == 0, second.stderr
    pd.testing.assert_frame_equal(depth, pd.read_parquet(results / "depth.parquet"))
    assert {p: p.stat().st_mtime_ns for p in (results / "cache" / "models").glob("*.pt")} == checkpoints
    assert sorted(p.name for p in folder.iterdir()) == ["figures", "results"]


MALFORMED = st.one_of(
    st.just(np.zeros((0, 5))), st.just(np.arange(7.0)), st.just(np.ones((40, 3)) * (1 + 1j)),
    st.builds(lambda n, d: np.full((n, d), np.nan), st.integers(1, 40), st.integers(1, 6)),
    st.builds(lambda n: np.ones((n, 3)), st.integers(1, 300)),  # all duplicates
    st.builds(lambda n: np.random.default_rng(n).random((n, 4)), st.integers(1, 20)),  # too few points
    st.builds(lambda n: np.where(np.arange(4 * n).reshape(n, 4) % 5 == 0, np.inf, 1.0), st.integers(2, 50)),
    st.just(np.array([["a", "b"], ["c", "d"]])),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(points=MALFORMED)
def test_malformed_points_files_fail_before_any_work(tmp_path, capsys, points):
    path = tmp_path / "points.npy"
    np.save(path, points)
    assert main(["dimension", "--points", str(path), "--preset", "smoke", "--no-progress",
                 "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hardthresh: error:") and "\n" not in err and str(path) in err
    assert not (tmp_path / "results" / "cache" / "cells").exists()
