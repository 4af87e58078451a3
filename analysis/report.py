"""The reproduction report: for each of the paper's four claims, the statement, the measured
effect with a 95% interval over seeds, a verdict with its reason, and where it comes from.

``write_report(results, figures)`` reads the stored result tables (never recomputes), so
``hardthresh report`` is cheap and the README's results section can be regenerated from
``figures/REPORT.md``. A claim whose tables are missing is reported as "not measured".
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .designs import CLAIM3_SPARSITIES, DIFFERENTIAL_SUMMARY, TOGETHER
from .report_checks import PAPER_SMART, Check, checks_for
from .statistics import mean_interval
from .store import atomic_write, load_table

SMART = PAPER_SMART + ("lobs-exact",)  # the paper's smart layer-wise methods and the exact L-OBS
UNDECIDED = "no verdict"  # one seed: no interval over seeds to decide on
HIGH_SPARSITY = 0.9  # "above 90% sparsity" (claim 2)


@dataclass
class Finding:
    claim: str
    statement: str
    effect: str
    verdict: str  # reproduced / partly / not reproduced / no verdict (one seed) / not measured
    reason: str
    sources: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    details: pd.DataFrame | None = None
    checks: list[Check] = field(default_factory=list)  # convergence and design (analysis.report_checks)

    def unmet(self) -> str:
        """' Checks not met: n (see the report).' when a check failed, else ''."""
        count = sum(check.met is False for check in self.checks)
        return f" Checks not met: {count} (see the report)." if count else ""


def _interval(values) -> str:
    mean, low, high, n = mean_interval(values)
    if n < 2:
        return f"{mean:+.3f} (one seed, no interval)"
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}] (n={n})"


def _positive(values) -> bool:
    return mean_interval(values)[1] > 0


def _missing(claim: str, statement: str, names: list[str]) -> Finding:
    return Finding(claim, statement, "-", "not measured", f"no result table {', '.join(names)}; run the experiment")


STATEMENTS = {
    "1": "Hard thresholding followed by retraining is the most efficient way to remove parameters when "
         "pruning time plus retraining time are counted.",
    "2": "Without retraining, smart layer-wise pruning (Net-Trim, L-OBS, FeTa) loses less accuracy than hard "
         "thresholding; FeTa is the fastest of them and loses the least (about 10 points above thresholding "
         "beyond 90% sparsity).",
    "3": "The accuracy lost to hard thresholding grows with the depth that remains after the pruned layer.",
    "4": "Networks trained on data of lower latent (intrinsic) dimension are more robust to hard thresholding.",
}


def claim_retraining(tables: dict[str, pd.DataFrame]) -> Finding:
    if "methods_retraining" not in tables:
        return _missing("1", STATEMENTS["1"], ["methods_retraining"])
    runs = tables["methods_retraining"].drop_duplicates(["model", "dataset", "seed", "method", "sparsity"])
    rows, verdicts, effects = [], [], []
    for (model, dataset, sparsity), part in runs.groupby(["model", "dataset", "sparsity"]):
        times = part.pivot_table(index="seed", columns="method", values="total_time_s")
        reached = part.groupby("method")["reached"].mean()
        for method in times.columns:
            rows.append({"network": f"{model}/{dataset}", "sparsity": sparsity, "method": method,
                         "total_time_s": times[method].mean(), "reached_fraction": reached[method]})
        smart = [m for m in SMART if m in times.columns]
        if "threshold" not in times.columns or not smart:
            continue
        fastest = min(smart, key=lambda m: times[m].mean())
        saving = (times[fastest] - times["threshold"]).dropna()
        effects.append(f"{model}/{dataset} at {sparsity:.0%}: time saved by thresholding against the fastest "
                       f"smart method ({fastest}) {_interval(saving)} s")
        wins = reached["threshold"] == 1.0 and _positive(saving)
        verdicts.append(UNDECIDED if len(saving) < 2 else "reproduced" if wins
                        else "partly" if saving.mean() > 0 and reached["threshold"] > 0 else "not reproduced")
    return _combine("1", effects, verdicts, pd.DataFrame(rows), ["methods_retraining"],
                    ["methods_time_to_accuracy", "methods_total_time"],
                    "thresholding reaches the tolerance with the least total time, with an interval above 0",
                    "thresholding is faster on average but not in every seed, or misses the tolerance",
                    "a smart method reaches the tolerance sooner")


def claim_smart_pruning(tables: dict[str, pd.DataFrame]) -> Finding:
    if "methods_accuracy" not in tables:
        return _missing("2", STATEMENTS["2"], ["methods_accuracy"])
    table = tables["methods_accuracy"]
    table = table[(table["target"] == TOGETHER) & (table["sparsity"] >= HIGH_SPARSITY - 1e-9)]
    rows, verdicts, effects = [], [], []
    for (model, dataset), part in table.groupby(["model", "dataset"]):
        accuracy = part.groupby(["seed", "method"])["accuracy"].mean().unstack()
        timing = part.groupby("method")["pruning_time_s"].median()
        smart = [m for m in SMART if m in accuracy.columns]
        if "threshold" not in accuracy.columns or not smart:
            continue
        gains = {m: (accuracy[m] - accuracy["threshold"]).dropna() for m in smart}
        for method, gain in gains.items():
            rows.append({"network": f"{model}/{dataset}", "method": method, "gain_over_threshold": gain.mean(),
                         "gain_low": mean_interval(gain)[1], "gain_high": mean_interval(gain)[2],
                         "median_pruning_time_s": timing[method]})
        best = max(smart, key=lambda m: gains[m].mean())
        quickest = min(smart, key=lambda m: timing[m])
        effects.append(f"{model}/{dataset}, every hidden layer at >= {HIGH_SPARSITY:.0%}: accuracy gain over "
                       + "; ".join(f"{m} {_interval(g)}" for m, g in gains.items())
                       + f"; most accurate {best}, fastest {quickest}"
                       + "".join(f"; not run: {m}" for m in PAPER_SMART if m not in smart))
        helped = [m for m in smart if _positive(gains[m])]
        feta_leads = "feta" in smart and best == "feta" and quickest == "feta"
        verdicts.append(UNDECIDED if len(accuracy) < 2 else "reproduced" if len(helped) == len(smart) and feta_leads
                        else "partly" if helped else "not reproduced")
    return _combine("2", effects, verdicts, pd.DataFrame(rows), ["methods_accuracy"],
                    ["methods_accuracy_vs_sparsity_fc", "methods_accuracy_vs_sparsity_lenet5"],
                    "every smart method beats thresholding (interval above 0) and FeTa is both the most "
                    "accurate and the fastest",
                    "some smart methods beat thresholding, but not all, or FeTa is not the most accurate "
                    "and fastest",
                    "no smart method beats thresholding with an interval above 0")


def claim_depth(tables: dict[str, pd.DataFrame]) -> Finding:
    if "depth" not in tables:
        return _missing("3", STATEMENTS["3"], ["depth"])
    table = tables["depth"]
    if "method" in table.columns:
        table = table[table["method"] == "threshold"]
    table = table[table["sparsity"].round(4).isin(CLAIM3_SPARSITIES)]
    rows, verdicts, effects = [], [], []
    for (model, dataset, mode), part in table.groupby(["model", "dataset", "mode"]):
        per_seed = (part.groupby(["seed", "sparsity"])
                    .apply(_depth_correlation, include_groups=False)
                    .groupby("seed").mean().dropna())
        mean, low, high, n = mean_interval(per_seed)
        rows.append({"network": f"{model}/{dataset}", "mode": mode, "spearman_depth_drop": mean,
                     "ci_low": low, "ci_high": high, "seeds": n})
        effects.append(f"{model}/{dataset}, {mode}: Spearman correlation of the accuracy drop with the "
                       f"remaining depth (mean over 70-95% sparsity) {_interval(per_seed)}")
        if mode == "onward":
            verdicts.append("reproduced" if low > 0 else "partly" if mean > 0 else "not reproduced")
    return _combine("3", effects, verdicts, pd.DataFrame(rows), ["depth", "depth_claim3"],
                    ["depth_degradation_vs_depth", "depth_claim3_accuracy", "depth_claim3_methods"],
                    "with layers k and after pruned (the paper's setting), the drop rises with the remaining "
                    "depth, interval above 0",
                    "the drop rises with the remaining depth on average, but the interval includes 0",
                    "the drop does not rise with the remaining depth")


def claim_dimension(tables: dict[str, pd.DataFrame]) -> Finding:
    if "dimension_link_regression" not in tables:
        return _missing("4", STATEMENTS["4"], ["dimension_link_regression"])
    fits = tables["dimension_link_regression"]
    fits = fits[(fits["measure"] == "estimated_mle") & (fits["term"] == "dimension")]
    effects, verdicts, rows = [], [], []
    for kind, part in fits.groupby("kind"):
        sparsity = part["sparsity"].iloc[(part["sparsity"] - HIGH_SPARSITY).abs().argmin()]
        at = part[part["sparsity"] == sparsity].set_index("model")
        plain, controlled = at.loc["drop ~ dimension"], at.loc["drop ~ dimension + base_accuracy"]
        rows += [{"kind": kind, "sparsity": sparsity, "model": model, **at.loc[model, ["coef", "ci_low", "ci_high",
                                                                                      "p_value", "n"]].to_dict()}
                 for model in at.index]
        effects.append(f"{kind}: slope of the first layer's accuracy drop at {sparsity:.0%} on the estimated "
                       f"(MLE) dimension {plain['coef']:+.4f} [{plain['ci_low']:+.4f}, {plain['ci_high']:+.4f}] "
                       f"per dimension; with the unpruned accuracy as covariate {controlled['coef']:+.4f} "
                       f"[{controlled['ci_low']:+.4f}, {controlled['ci_high']:+.4f}] (n={int(controlled['n'])})")
        verdicts.append("reproduced" if controlled["ci_low"] > 0 else
                        "not reproduced" if controlled["ci_high"] < 0 or controlled["coef"] <= 0 else "partly")
    return _combine("4", effects, verdicts, pd.DataFrame(rows), ["dimension_link", "dimension_link_regression"],
                    ["dimension_drop_vs_level", "dimension_drop_vs_dimension"],
                    "the drop rises with the estimated dimension in both experiments, with an interval above 0 "
                    "after controlling for the unpruned accuracy",
                    "the drop rises with the dimension, but the interval includes 0",
                    "the drop does not rise with the estimated dimension (a slope at or below 0)")


def _sentence(text: str) -> str:
    return f"{text[:1].upper()}{text[1:]}."


def _depth_correlation(group: pd.DataFrame) -> float:
    """Spearman correlation of the drop with the remaining depth; nan where either is constant."""
    if group["accuracy_drop"].nunique() < 2 or group["remaining_depth"].nunique() < 2:
        return float("nan")
    return group["remaining_depth"].corr(group["accuracy_drop"], method="spearman")


def _combine(claim: str, effects: list[str], verdicts: list[str], details: pd.DataFrame, sources: list[str],
             figures: list[str], *reasons: str) -> Finding:
    if not verdicts:
        return Finding(claim, STATEMENTS[claim], "-", "not measured",
                       "the tables hold no rows this claim can be measured on", sources, figures)
    verdict = (UNDECIDED if UNDECIDED in verdicts else
               "reproduced" if set(verdicts) == {"reproduced"} else
               "not reproduced" if set(verdicts) == {"not reproduced"} else "partly")
    reason = {"reproduced": reasons[0], "partly": reasons[1], "not reproduced": reasons[2],
              UNDECIDED: "one seed: a 95% interval over seeds needs at least two; run more seeds"}[verdict]
    if verdict == "partly" and len(set(verdicts)) > 1:
        reason = "the networks disagree: " + ", ".join(verdicts)
    return Finding(claim, STATEMENTS[claim], "\n".join(f"- {e}" for e in effects), verdict, reason,
                   sources, figures, details)


def beyond_the_paper(tables: dict[str, pd.DataFrame]) -> list[tuple[str, str]]:
    """(title, markdown) sections for what this workbench measures that the paper does not."""
    sections = []
    if "methods_ablation" in tables:
        ablation = tables["methods_ablation"]
        summary = (ablation.groupby(["model", "dataset", "sparsity", "support", "solver"])["accuracy"]
                   .agg(["mean", "std", "count"]).reset_index()
                   .rename(columns={"mean": "accuracy", "std": "sd", "count": "seeds"}))
        sections.append((
            "Support choice against refit (the ablation)",
            "Every hidden layer pruned together. `support` says which method chose the kept weights "
            "(`threshold` = magnitude); `solver` what set their values (`none` = the trained values, "
            "`refit` = least squares to the layer's unpruned outputs, relu-aware). Threshold-and-refit is "
            "not in the paper.\n\n" + summary.to_markdown(index=False, floatfmt=".3f")))
    if "methods_accuracy" in tables:
        part = tables["methods_accuracy"]
        part = part[(part["target"] == TOGETHER) & part["method"].isin(["threshold-refit", "lobs-exact"])]
        if len(part):
            summary = (part.groupby(["model", "dataset", "method", "sparsity"])["accuracy"].mean()
                       .unstack("sparsity").reset_index())
            sections.append(("Methods the paper does not run",
                             "Mean test accuracy with every hidden layer pruned, per sparsity.\n\n"
                             + summary.to_markdown(index=False, floatfmt=".3f")))
    return sections


def theory_section(tables: dict[str, pd.DataFrame]) -> list[tuple[str, str]]:
    """The bounds of ``theory`` on the run's networks: soundness, tightness, and what they predict."""
    parts = []
    if "bounds" in tables:
        sound = tables["bounds"][~tables["bounds"]["is_estimate"]]
        parts.append(f"Sound per-layer and onward bounds: {int(sound['violations'].sum())} violations in "
                     f"{len(sound)} cells.")
    if "bounds_differential" in tables:
        table = tables["bounds_differential"]
        parts.append(f"Differential bounds: {int(table['violations'].sum())} violations in {len(table)} cells. "
                     "Median bound / attack, fraction certified to keep the unpruned class and fraction whose "
                     "certificate a PGD attack refutes, per layer:\n\n"
                     + table.pivot_table(index=["model", "layer", "layer_type", "sparsity"], columns="eps",
                                         values=[c for c in DIFFERENTIAL_SUMMARY if c in table.columns])
                     .round(3).to_markdown(floatfmt=".3g"))
    if "bounds_correlations" in tables:
        parts.append("Spearman correlation of the accuracy drop with each predictor, pooled over layers, "
                     "sparsities and seeds (bootstrap 95% interval):\n\n"
                     + tables["bounds_correlations"].to_markdown(index=False, floatfmt=".3f"))
    if "bounds_depth_profile" in tables:
        profile = tables["bounds_depth_profile"]
        middle = profile["sparsity"].iloc[(profile["sparsity"] - 0.5).abs().argmin()]
        onward = profile[(profile["mode"] == "onward") & (profile["sparsity"] == middle)]
        columns = [c for c in ("model", "remaining_depth", "measured", "residual", "gain", "tail_lipschitz",
                               "looseness", "per_sample_bound") if c in onward.columns]
        parts.append(f"Depth profile at {middle:.0%}, each layer pruned with every layer after it (measured = "
                     "residual x gain, "
                     "bound = measured x looseness; first seed):\n\n"
                     + onward[onward["seed"] == onward["seed"].min()][columns].sort_values(columns[:2])
                     .to_markdown(index=False, floatfmt=".4g"))
    return [("the theory on these networks", "\n\n".join(parts))] if parts else []


def networks_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Unpruned test accuracy of every network the tables used, over seeds, with the epochs trained and the
    best (kept) epoch as "lowest-highest" where the tables carry the training record."""
    parts = []
    for name in ("methods_accuracy", "depth", "dimension_link"):
        if name in tables and "base_accuracy" in tables[name]:
            table = tables[name]
            keys = [c for c in ("model", "dataset", "kind", "level") if c in table.columns]
            networks = table.drop_duplicates(keys + ["seed"]).groupby(keys)
            part = networks["base_accuracy"].agg(["mean", "min", "max", "count"])
            for column in ("epochs_trained", "best_epoch", "max_epochs"):
                if column in table.columns:
                    part[column] = networks[column].agg(_range)
            part = part.reset_index().assign(table=name)
            if "level" in part:  # a label (a dimension or a number of components), not a measurement
                part["level"] = part["level"].astype(str)
            parts.append(part)
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True).fillna("").rename(
        columns={"mean": "test_accuracy", "min": "lowest", "max": "highest", "count": "seeds",
                 "epochs_trained": "epochs", "max_epochs": "epoch_cap"})


def _range(values: pd.Series) -> str:
    values = values.dropna()  # cells computed before the training record was kept have none
    if values.empty:
        return ""
    low, high = int(values.min()), int(values.max())
    return str(low) if low == high else f"{low}-{high}"


CLAIMS = (claim_retraining, claim_smart_pruning, claim_depth, claim_dimension)


def read_tables(results: Path) -> dict[str, pd.DataFrame]:
    """Every non-empty result table in ``results`` by name."""
    tables = {path.stem: load_table(path) for path in sorted(results.glob("*.parquet"))}
    return {name: table for name, table in tables.items() if len(table)}


def render(findings: list[Finding], tables: dict[str, pd.DataFrame], results: Path, figures: Path) -> str:
    lines = ["# Reproduction report", "",
             f"Generated by `hardthresh report` from the result tables in `{results}`; do not edit by hand. "
             "Intervals are 95% t-intervals of the mean over seeds, except in claim 4: OLS intervals of the "
             "slope over the networks of every seed and level.", "",
             "| claim | verdict |", "|---|---|"]
    lines += [f"| {f.claim}. {f.statement.split(';')[0]} | **{f.verdict}** |" for f in findings]
    networks = networks_table(tables)
    if len(networks):
        lines += ["", "## Networks", "", networks.to_markdown(index=False, floatfmt=".4f")]
    for finding in findings:
        lines += ["", f"## Claim {finding.claim}", "", f"**Paper.** {finding.statement}", "",
                  "**Measured.**", "", finding.effect, "",
                  f"**Verdict: {finding.verdict}.** {_sentence(finding.reason)}", ""]
        if finding.checks:
            lines += ["**Checked** (convergence, training, design against the paper's):", "",
                      *[check.markdown() for check in finding.checks], ""]
        lines += ["**Configuration.** " + ", ".join(_source(results, name) for name in finding.sources)]
        shown = [name for name in finding.figures if (figures / f"{name}.png").is_file()]
        if shown:
            lines += ["", "**Figures.** " + ", ".join(f"[{name}]({name}.png)" for name in shown)]
        if finding.details is not None and len(finding.details):
            lines += ["", finding.details.to_markdown(index=False, floatfmt=".3f")]
    for title, text in beyond_the_paper(tables) + theory_section(tables):
        lines += ["", f"## Beyond the paper: {title}", "", text]
    return "\n".join(lines) + "\n"


def _source(results: Path, name: str) -> str:
    meta = results / f"{name}.json"
    digest = json.loads(meta.read_text()).get("config_hash", "?") if meta.is_file() else "?"
    return f"`{results / name}.parquet` (config `{results / name}.json`, hash {digest})"


README_BEGIN = "<!-- results: generated by `hardthresh report --readme`; do not edit by hand -->"
README_END = "<!-- results: end -->"


def summary(findings: list[Finding], figures: Path) -> str:
    """The README's results block: each claim's verdict, reason and measured effect."""
    lines = [README_BEGIN, "", f"From [`{figures / 'REPORT.md'}`]({figures / 'REPORT.md'}), which gives the "
             "configuration and the figure behind each line.", ""]
    for finding in findings:
        lines += [f"- **Claim {finding.claim}: {finding.verdict}.** {_sentence(finding.reason)}{finding.unmet()}",
                  *[f"  {line}" for line in finding.effect.splitlines() if line != "-"]]
    return "\n".join(lines + ["", README_END])


def update_readme(readme: Path, block: str) -> Path:
    """Replace the text between the results markers of ``readme`` with ``block``."""
    from .errors import WorkbenchError

    text = readme.read_text() if readme.is_file() else ""
    if README_BEGIN not in text or README_END not in text:
        raise WorkbenchError(f"{readme}: no results markers ({README_BEGIN} ... {README_END}) to replace")
    head, rest = text.split(README_BEGIN, 1)
    tail = rest.split(README_END, 1)[1]
    return atomic_write(readme, lambda tmp: tmp.write_text(head + block + tail))


def write_report(results: Path, figures: Path, readme: Path | None = None) -> Path:
    """Evaluate every claim on the tables in ``results``, write ``figures/REPORT.md`` and, given
    ``readme``, replace its results block with the summary."""
    tables = read_tables(results)
    findings = [evaluate(tables) for evaluate in CLAIMS]
    for finding in findings:
        finding.checks = checks_for(finding.claim, tables)
    if readme is not None:
        update_readme(readme, summary(findings, figures))
    text = render(findings, tables, results, figures)
    return atomic_write(figures / "REPORT.md", lambda tmp: tmp.write_text(text))
