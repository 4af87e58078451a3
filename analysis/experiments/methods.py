"""Claims 1 and 2: smart layer-wise pruning against hard thresholding, with and without retraining.

(a) accuracy and the relative l2 change of the last hidden representation against sparsity,
without retraining, for each method, pruning each hidden fully connected layer alone and all
of them together; (b) total time: pruning time plus retraining time until test accuracy is
back within a tolerance of the unpruned network, with the accuracy-against-time curve;
(c) pruning wall time per method and layer (from (a)).
Grid: network x seed x method x target x sparsity; a cell at a retraining sparsity with every
hidden layer as target also retrains the network it pruned.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import pandas as pd

from pruning import available_methods, check_sparsity, last_hidden_representation, prune_network

from ..contract import Cell, check_unique
from ..errors import WorkbenchError
from ..models import hidden_linear_names
from ..networks import trained_network, with_seed
from ..presets import pick, preset_training
from ..retraining import RetrainConfig, retrain
from ..runtime import Runtime
from ..training import TrainConfig, evaluate

DEFAULT_METHODS = ("threshold", "feta", "nettrim", "lobs")
# Iteration caps for the smoke and quick presets. Converged FeTa and Net-Trim take minutes per layer
# on 2 CPU cores (issue 14's speed work), so these presets stop them early; each row records whether
# every layer's solver converged. The paper preset runs them to convergence.
SOLVER_BUDGETS = {
    "smoke": {"feta": {"max_rounds": 10}, "nettrim": {"search_steps": 4, "max_iterations": 100}},
    "quick": {"feta": {"max_rounds": 20}, "nettrim": {"search_steps": 5, "max_iterations": 300}},
}
TOGETHER = "all hidden"
TABLES = ("methods_accuracy", "methods_retraining", "pruning_time")


@dataclass(frozen=True)
class Config:
    GRID: ClassVar[tuple[str, ...]] = ("seeds", "sparsities", "methods", "retrain_sparsities")

    networks: tuple[TrainConfig, ...] = field(default_factory=lambda: (TrainConfig(model="fc"),))
    methods: tuple[str, ...] = DEFAULT_METHODS
    method_options: dict = field(default_factory=dict)  # method name -> constructor options
    seeds: tuple[int, ...] = (0,)
    sparsities: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
    prune_samples: int | None = None  # training samples the methods see (None = all)
    eval_size: int | None = None
    retrain_sparsities: tuple[float, ...] = (0.9,)
    retrain: RetrainConfig = RetrainConfig(max_epochs=3.0, tolerance=0.01, eval_every=20)

    def __post_init__(self):
        for s in self.sparsities + self.retrain_sparsities:
            check_sparsity(s)
        for name in ("seeds", "sparsities", "methods", "retrain_sparsities"):
            check_unique(name, getattr(self, name))
        unknown = set(self.methods) - set(available_methods())
        if unknown:
            raise WorkbenchError(f"unknown pruning method(s) {sorted(unknown)}; choose from "
                                 f"{', '.join(available_methods())}")
        if self.prune_samples is not None and self.prune_samples < 1:
            raise WorkbenchError(f"prune_samples must be >= 1 or None, got {self.prune_samples}")


def preset(name: str, dataset: str, seeds: tuple[int, ...] | None = None) -> Config:
    """The paper's fc net for ``dataset`` and LeNet-5's fully connected layer, every method."""
    networks = tuple(preset_training(name, model, dataset) for model in ("fc", "lenet5"))
    return pick(
        name,
        smoke=lambda: Config(networks[:1], seeds=seeds or (0,), sparsities=(0.5, 0.9), prune_samples=1000,
                             eval_size=1000, retrain=RetrainConfig(max_epochs=1.0, tolerance=0.01, eval_every=5),
                             method_options=SOLVER_BUDGETS["smoke"]),
        quick=lambda: Config(networks, seeds=seeds or (0, 1), sparsities=(0.5, 0.75, 0.9), prune_samples=3000,
                             eval_size=5000, retrain=RetrainConfig(max_epochs=5.0, tolerance=0.01, eval_every=10),
                             method_options=SOLVER_BUDGETS["quick"]),
        paper=lambda: Config(networks, methods=DEFAULT_METHODS + ("lobs-exact",), seeds=seeds or (0, 1, 2),
                             retrain_sparsities=(0.8, 0.9, 0.95),
                             retrain=RetrainConfig(max_epochs=10.0, tolerance=0.01, eval_every=20)))


def targets(train: TrainConfig) -> list[tuple[str, tuple[str, ...]]]:
    """(label, layer names): each hidden Linear layer by its position, then all of them together."""
    names = hidden_linear_names(train)
    alone = [(f"hidden {position + 1}", (name,)) for position, name in enumerate(names)]
    return alone + [(TOGETHER, tuple(names))] if len(names) > 1 else alone


def cells(config: Config) -> list[Cell]:
    found = []
    for index, train in enumerate(config.networks):
        labels = targets(train)
        for seed in config.seeds:
            for method in config.methods:
                for label, _ in labels:
                    for sparsity in config.sparsities + tuple(s for s in config.retrain_sparsities
                                                              if s not in config.sparsities):
                        found.append(Cell.make("methods", config, network=index, seed=seed, method=method,
                                               target=label, sparsity=sparsity,
                                               retrain=label == labels[-1][0]
                                               and sparsity in config.retrain_sparsities))
    return found


def compute(cell: Cell, runtime: Runtime) -> list[dict]:
    config: Config = cell.config
    trained = trained_network(with_seed(config.networks[cell["network"]], cell["seed"]), runtime)
    device = runtime.torch_device()
    x = trained.split.x_test[:config.eval_size].to(device)
    y = trained.split.y_test[:config.eval_size].to(device)
    layers = list(dict(targets(trained.config))[cell["target"]])
    samples = trained.split.x_train[:config.prune_samples].to(device)
    base = evaluate(trained.model, x, y)["accuracy"]
    pruned = prune_network(trained.model, layers, cell["method"], cell["sparsity"], samples,
                           **config.method_options.get(cell["method"], {}))
    network = {"model": trained.config.model, "dataset": trained.config.data.label, "layers": ",".join(layers),
               "base_accuracy": base, "pruning_time_s": pruned.pruning_time_s,
               "converged": all(info.get("converged", True) for info in pruned.infos.values())}
    rows = []
    if cell["sparsity"] in config.sparsities:
        reference = last_hidden_representation(trained.model, x)
        change = (last_hidden_representation(pruned.model, x) - reference).norm() / reference.norm()
        metrics = evaluate(pruned.model, x, y)
        rows.append({"table": "methods_accuracy", **network, **metrics, "representation_change": change.item(),
                     "accuracy_drop": base - metrics["accuracy"]})
    if cell["retrain"]:
        rows += retraining_rows(pruned, trained, network, config, x, y)
    return rows


def retraining_rows(pruned, trained, network: dict, config: Config, x, y) -> list[dict]:
    result = retrain(pruned.model, trained.config, trained.split, network["base_accuracy"], config.retrain, x, y)
    total = pruned.pruning_time_s + result.time_s
    return [{"table": "methods_retraining", **network, "retrain_time_s": result.time_s, "total_time_s": total,
             "reached": result.reached, "retrain_steps": result.steps,
             "curve_time_s": pruned.pruning_time_s + point["time_s"], "curve_step": point["step"],
             "curve_accuracy": point["accuracy"]} for point in result.history]


def tables(config: Config, rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    part = {name: rows[rows["table"] == name].dropna(axis=1, how="all")
            .drop(columns=["table", "retrain"], errors="ignore").reset_index(drop=True).infer_objects()
            for name in TABLES[:2]}
    part["pruning_time"] = pruning_time_table(part["methods_accuracy"])
    return part


def pruning_time_table(accuracy: pd.DataFrame) -> pd.DataFrame:
    """(c) Median pruning wall time per model, method and layer, over seeds and sparsities."""
    if accuracy.empty:
        return pd.DataFrame()
    alone = accuracy[accuracy["target"] != TOGETHER]
    return (alone.groupby(["model", "dataset", "target", "layers", "method"])["pruning_time_s"]
            .agg(["median", "min", "max", "count"]).reset_index()
            .rename(columns={"target": "layer", "layers": "module", "median": "median_s", "min": "min_s",
                             "max": "max_s"}))
