"""The command line: one-line errors for bad input, and a quick end-to-end pass of the main job."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import main


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=900)


@pytest.mark.parametrize("args, message", [
    (["depth", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["depth", "--preset", "huge"], "unknown preset 'huge'"),
    (["depth", "--device", "tpu"], "unknown device 'tpu'"),
    (["train", "--dataset", "mnist", "--no-download", "--data-dir", "{tmp}/nodata"], "put train-images-idx3-ubyte.gz"),
    (["depth", "--results", "/proc/forbidden"], "cannot write to directory /proc/forbidden"),
    (["figures", "--results", "{tmp}/empty"], "results table not found"),
])
def test_bad_input_gives_one_line_and_nonzero_exit(tmp_path, capsys, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(args + ["--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hardthresh: error:") and message in err and "\n" not in err
    assert not (tmp_path / "nodata").exists()


def test_bad_seeds_are_rejected_by_the_parser():
    result = run_cli("depth", "--seeds", "a,b")
    assert result.returncode == 2 and "seeds must be comma-separated integers" in result.stderr
    assert "Traceback" not in result.stderr


def test_reproduce_end_to_end_on_fashion_mnist(tmp_path):
    """The main job on the smoke preset: real Fashion-MNIST, every stage, figures from the table."""
    results, figures = tmp_path / "results", tmp_path / "figures"
    args = ["reproduce", "--preset", "smoke", "--results", str(results), "--figures", str(figures),
            "--device", "cpu", "--no-progress"]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    table = pd.read_parquet(results / "depth.parquet")
    assert set(table["mode"]) == {"alone", "onward"} and table["seed"].nunique() == 2
    assert table["layer"].nunique() == 8 and (table["dataset"] == "fashion-mnist").all()
    meta = json.loads((results / "depth.json").read_text())
    assert meta["config"]["train"]["dataset"] == "fashion-mnist"
    for name in ("depth_accuracy_vs_sparsity", "depth_degradation_vs_depth"):
        assert (figures / f"{name}.pdf").stat().st_size > 1000 and (figures / f"{name}.png").stat().st_size > 1000
    index = json.loads((figures / "index.json").read_text())
    assert index["depth_accuracy_vs_sparsity"]["source"].endswith("depth.parquet")
    checkpoints = {p: p.stat().st_mtime_ns for p in (results / "cache" / "models").iterdir()}
    assert len([p for p in checkpoints if p.name.startswith("cnn8-")]) == 2  # the two depth seeds
    second = run_cli(*args)  # everything cached: same numbers, nothing retrained
    assert second.returncode == 0
    pd.testing.assert_frame_equal(table, pd.read_parquet(results / "depth.parquet"))
    assert {p: p.stat().st_mtime_ns for p in (results / "cache" / "models").iterdir()} == checkpoints
