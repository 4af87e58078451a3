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


def test_checks_name_unconverged_networks_and_solvers_and_the_missing_design():
    rows = methods_rows({"threshold": [0, 0, 0], "feta": [0.1, 0.1, 0.1], "lobs": [0.05, 0.05, 0.05]},
                        {"threshold": 0.01, "feta": 1.0, "lobs": 2.0})
    rows["epochs_trained"] = np.where(rows["seed"] == 2, 30, 12)  # seed 2 ran into the epoch cap
    rows["max_epochs"] = 30
    rows["converged"] = ~((rows["method"] == "feta") & (rows["seed"] == 1) & (rows["sparsity"] == 0.95))
    checks = [(check.text, check.met) for check in report.checks_for("2", {"methods_accuracy": rows})]
    assert ("fc/digits: 2 of 3 seed(s) stopped early on the validation accuracy (12-30 epochs of at most 30; "
            "unpruned test accuracy 0.900)", False) in checks
    assert ("feta: the solver converged in 5 of 6 cells", False) in checks
    assert ("lobs: the solver converged in 6 of 6 cells", True) in checks
    assert ("not run: nettrim", False) in checks and ("methods: 3 seed(s); the design asks at least 5", False) in checks
    assert ("sparsities with every hidden layer pruned: 90%, 95%; the paper's 10 (50%-95%)", False) in checks
    old = report.checks_for("2", {"methods_accuracy": methods_rows({"threshold": [0]}, {"threshold": 0.0})})
    assert old[0].met is None and "no training record" in old[0].text


def test_an_unmet_check_reaches_the_report_and_the_readme_block(tmp_path):
    results, figures = tmp_path / "results", tmp_path / "figures"
    results.mkdir()
    rows = methods_rows({"threshold": [0, 0], "feta": [0.1, 0.12]}, {"threshold": 0, "feta": 1})
    rows = rows.assign(epochs_trained=8, max_epochs=30, converged=True)
    save_table(results / "methods_accuracy.parquet", rows, {"preset": "test"})
    readme = tmp_path / "README.md"
    readme.write_text(f"{report.README_BEGIN}\n{report.README_END}\n")
    text = report.write_report(results, figures, readme).read_text()
    claim2 = text.split("## Claim 2")[1].split("## Claim 3")[0]
    assert "- met: fc/digits: 2 of 2 seed(s) stopped early" in claim2
    assert "- **not met**: not run: nettrim" in claim2
    assert "Checks not met: 3 (see the report)." in readme.read_text()  # nettrim, seeds, sparsities


def test_networks_table_gives_each_networks_epochs_and_leaves_missing_records_blank():
    rows = methods_rows({"threshold": [0, 0, 0]}, {"threshold": 0.0})
    rows = rows.assign(epochs_trained=np.where(rows["seed"] == 2, 30, 12), best_epoch=7, max_epochs=30)
    old = methods_rows({"threshold": [0]}, {"threshold": 0.0}).assign(model="lenet5")  # no training record
    table = report.networks_table({"methods_accuracy": pd.concat([rows, old], ignore_index=True)})
    fc, lenet5 = (table[table["model"] == m].iloc[0] for m in ("fc", "lenet5"))
    assert (fc["seeds"], fc["epochs"], fc["best_epoch"], fc["epoch_cap"]) == (3, "12-30", "7", "30")
    assert (lenet5["seeds"], lenet5["epochs"]) == (1, "")
