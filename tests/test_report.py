"""The report's verdicts follow the measured effects and their intervals over seeds."""
import numpy as np
import pandas as pd
import pytest

from analysis import report
from analysis.errors import WorkbenchError
from analysis.statistics import mean_interval
from analysis.store import save_table


def methods_rows(gains: dict[str, list[float]], times: dict[str, float]) -> pd.DataFrame:
    """Accuracy rows of the methods table with every hidden layer pruned at 90 and 95%."""
    rows = []
    for method, per_seed in gains.items():
        for seed, gain in enumerate(per_seed):
            for sparsity in (0.9, 0.95):
                rows.append({"model": "fc", "dataset": "digits", "target": report.TOGETHER, "seed": seed,
                             "method": method, "sparsity": sparsity, "accuracy": 0.6 + gain,
                             "base_accuracy": 0.9, "pruning_time_s": times[method]})
    return pd.DataFrame(rows)


def test_mean_interval_is_the_student_t_interval():
    mean, low, high, n = mean_interval([1.0, 2.0, 3.0])
    assert (mean, n) == (2.0, 3) and high - mean == pytest.approx(4.303 * 1 / np.sqrt(3), rel=1e-3)
    assert np.isnan(mean_interval([1.0])[1]) and mean_interval([])[3] == 0


def test_claim_2_reproduced_only_when_every_smart_method_wins_and_feta_leads():
    times = {"threshold": 0.01, "feta": 1.0, "lobs": 5.0}
    clear = report.claim_smart_pruning({"methods_accuracy": methods_rows(
        {"threshold": [0, 0, 0], "feta": [0.10, 0.12, 0.11], "lobs": [0.05, 0.06, 0.04]}, times)})
    assert clear.verdict == "reproduced" and "feta +0.110" in clear.effect
    slower = report.claim_smart_pruning({"methods_accuracy": methods_rows(
        {"threshold": [0, 0, 0], "feta": [0.10, 0.12, 0.11], "lobs": [0.05, 0.06, 0.04]},
        {**times, "feta": 9.0})})
    assert slower.verdict == "partly"
    noise = report.claim_smart_pruning({"methods_accuracy": methods_rows(
        {"threshold": [0, 0, 0], "feta": [0.05, -0.06, 0.01], "lobs": [-0.02, 0.03, -0.01]}, times)})
    assert noise.verdict == "not reproduced"


def test_one_seed_gives_no_verdict():
    """Without a second seed there is no interval, so a large gain is not called 'not reproduced'."""
    one = report.claim_smart_pruning({"methods_accuracy": methods_rows(
        {"threshold": [0], "feta": [0.3], "lobs": [0.04]}, {"threshold": 0.01, "feta": 1.0, "lobs": 5.0})})
    assert one.verdict == report.UNDECIDED and "one seed" in one.reason
    assert "feta +0.300 (one seed, no interval)" in one.effect and "not run: nettrim" in one.effect


def test_claim_3_follows_the_drop_against_remaining_depth():
    rows = [{"model": "cnn8", "dataset": "digits", "mode": mode, "seed": seed, "sparsity": sparsity,
             "remaining_depth": depth, "base_accuracy": 0.9,
             "accuracy_drop": (0.05 * depth if mode == "onward" else 0.01) + 0.001 * seed * (depth % 2)}
            for mode in ("alone", "onward") for seed in range(3) for sparsity in (0.8, 0.9)
            for depth in range(1, 6)]
    finding = report.claim_depth({"depth": pd.DataFrame(rows)})
    assert finding.verdict == "reproduced"
    flat = [dict(row, accuracy_drop=0.01 + 0.001 * ((row["remaining_depth"] + row["seed"]) % 3)) for row in rows]
    assert report.claim_depth({"depth": pd.DataFrame(flat)}).verdict != "reproduced"


def test_write_report_names_every_claim_and_its_missing_tables(tmp_path):
    results, figures = tmp_path / "results", tmp_path / "figures"
    results.mkdir()
    save_table(results / "methods_accuracy.parquet", methods_rows(
        {"threshold": [0, 0], "feta": [0.1, 0.1], "nettrim": [0.02, 0.03]}, {"threshold": 0, "feta": 1, "nettrim": 2}),
        {"preset": "test"})
    path = report.write_report(results, figures)
    text = path.read_text()
    assert path == figures / "REPORT.md" and [p.name for p in figures.iterdir()] == ["REPORT.md"]
    for claim in "1234":
        assert f"## Claim {claim}" in text
    assert text.count("not measured") >= 3 and "methods_accuracy.json" in text


def test_readme_block_is_replaced_between_its_markers_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{report.README_BEGIN}\nold numbers\n{report.README_END}\nafter\n")
    finding = report.Finding("2", report.STATEMENTS["2"], "- feta +0.1", "reproduced", "because")
    report.update_readme(readme, report.summary([finding], tmp_path / "figures"))
    text = readme.read_text()
    assert "old numbers" not in text and "**Claim 2: reproduced.** Because." in text and "  - feta +0.1" in text
    assert text.startswith("# Title\n\nbefore\n") and text.endswith(f"{report.README_END}\nafter\n")
    with pytest.raises(WorkbenchError, match="other.md: no results markers"):
        report.update_readme(tmp_path / "other.md", "x")


def test_claim_4_reads_the_controlled_slope():
    from analysis.experiments.dimension_link import regression_table

    rng = np.random.default_rng(0)
    rows = [{"kind": kind, "level": k, "seed": seed, "sparsity": 0.9, "mode": "alone", "layer_index": 0,
             "true_dimension": float(k), "n_components": float(k), "estimated_mle": 1.1 * k, "estimated_twonn": k,
             "base_accuracy": 0.85 + rng.normal(0, 0.02), "accuracy_drop": slope * k + rng.normal(0, 0.02)}
            for kind, slope in (("pca", 0.01), ("synthetic", 0.01)) for seed in range(4) for k in (2, 4, 8, 16)]
    rising = report.claim_dimension({"dimension_link_regression": regression_table(pd.DataFrame(rows))})
    assert rising.verdict == "reproduced" and "synthetic" in rising.effect and "pca" in rising.effect
    falling = [dict(row, accuracy_drop=0.3 - row["accuracy_drop"]) for row in rows]
    assert report.claim_dimension({"dimension_link_regression": regression_table(pd.DataFrame(falling))}
                                  ).verdict == "not reproduced"
