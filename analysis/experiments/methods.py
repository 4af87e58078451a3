"""Claims 1 and 2: smart layer-wise pruning against hard thresholding, with and without retraining.

(a) accuracy and the relative l2 change of the last hidden representation against
sparsity, without retraining, for each method, pruning each hidden fully connected
layer alone and all of them together; (b) total time: pruning time plus retraining
time until test accuracy is back within a tolerance of the unpruned network, with the
accuracy-against-time curve; (c) pruning wall time per method and layer (from (a)).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from pruning import available_methods, check_sparsity

from ..errors import WorkbenchError
from ..executor import run_cells
from ..layerwise import hidden_linear_names, last_hidden_representation, prune_network
from ..retraining import RetrainConfig, retrain
from ..training import LastTrained, TrainConfig, dataset_split, evaluate, with_seed

DEFAULT_METHODS = ("threshold", "feta", "nettrim", "lobs")
TOGETHER = "all hidden"


@dataclass(frozen=True)
class MethodsConfig:
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
        unknown = set(self.methods) - set(available_methods())
        if unknown:
            raise WorkbenchError(f"unknown pruning method(s) {sorted(unknown)}; choose from "
                                 f"{', '.join(available_methods())}")


class _Networks:
    """One split per dataset and subset, and the last trained network in memory."""

    def __init__(self, config: MethodsConfig, cache_dir: Path, device, data_dir, download, progress):
        self.config, self.data_dir, self.download = config, data_dir, download
        self.splits: dict[tuple, object] = {}
        self.trained = LastTrained(cache_dir, device, progress)

    def get(self, network: int, seed: int):
        train = with_seed(self.config.networks[network], seed)
        split_key = (train.dataset, train.train_size)
        if split_key not in self.splits:
            self.splits[split_key] = dataset_split(train, self.data_dir, self.download)
        return self.trained.get(train, self.splits[split_key])


def _targets(model) -> list[tuple[str, list[str]]]:
    """(label, layer names): each hidden Linear layer by its position, then all of them together."""
    names = hidden_linear_names(model)
    targets = [(f"hidden {position + 1}", [name]) for position, name in enumerate(names)]
    return targets + [(TOGETHER, names)] if len(names) > 1 else targets


def _eval_tensors(trained, config: MethodsConfig, device):
    x = trained.split.x_test[:config.eval_size].to(device)
    return x, trained.split.y_test[:config.eval_size].to(device)


def _samples(trained, config: MethodsConfig, device) -> torch.Tensor:
    return trained.split.x_train[:config.prune_samples].to(device)


def accuracy_cell(trained, method: str, target: list[str], config: MethodsConfig, device) -> list[dict]:
    x, y = _eval_tensors(trained, config, device)
    base = evaluate(trained.model, x, y)["accuracy"]
    reference = last_hidden_representation(trained.model, x)
    samples = _samples(trained, config, device)
    rows = []
    for sparsity in config.sparsities:
        pruned = prune_network(trained.model, target, method, sparsity, samples,
                               **config.method_options.get(method, {}))
        change = (last_hidden_representation(pruned.model, x) - reference).norm() / reference.norm()
        rows.append({"sparsity": sparsity, "base_accuracy": base, **evaluate(pruned.model, x, y),
                     "representation_change": change.item(), "pruning_time_s": pruned.pruning_time_s})
        rows[-1]["accuracy_drop"] = base - rows[-1]["accuracy"]
    return rows


def retrain_cell(trained, method: str, target: list[str], config: MethodsConfig, device) -> list[dict]:
    x, y = _eval_tensors(trained, config, device)
    base = evaluate(trained.model, x, y)["accuracy"]
    samples = _samples(trained, config, device)
    rows = []
    for sparsity in config.retrain_sparsities:
        pruned = prune_network(trained.model, target, method, sparsity, samples,
                               **config.method_options.get(method, {}))
        masks = {dict(pruned.model.named_modules())[n]: m for n, m in pruned.masks.items()}
        result = retrain(pruned.model, masks, trained.config, trained.split, base, config.retrain, x, y)
        for point in result.history:
            rows.append({"sparsity": sparsity, "base_accuracy": base, "pruning_time_s": pruned.pruning_time_s,
                         "retrain_time_s": result.time_s, "total_time_s": pruned.pruning_time_s + result.time_s,
                         "reached": result.reached, "retrain_steps": result.steps,
                         "curve_time_s": pruned.pruning_time_s + point["time_s"],
                         "curve_step": point["step"], "curve_accuracy": point["accuracy"]})
    return rows


def run_methods(config: MethodsConfig, cache_dir: Path, device: torch.device, data_dir: Path | None = None,
                download: bool = True, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The accuracy table (a) and the retraining table (b), both tidy."""
    networks = _Networks(config, cache_dir, device, data_dir, download, progress)
    accuracy_cells, retrain_cells = [], []
    for index in range(len(config.networks)):
        targets = _targets(networks.get(index, config.seeds[0]).model)
        for seed in config.seeds:
            for method in config.methods:
                for label, names in targets:
                    cell = {"network": index, "seed": seed, "method": method, "target": label,
                            "layers": ",".join(names)}
                    accuracy_cells.append(cell)
                    if label == targets[-1][0]:
                        retrain_cells.append(cell)

    def compute(kind):
        def run(cell: dict) -> list[dict]:
            trained = networks.get(cell["network"], cell["seed"])
            rows = kind(trained, cell["method"], cell["layers"].split(","), config, device)
            return [{"model": trained.config.model, "dataset": trained.config.dataset, **row} for row in rows]
        return run

    accuracy = run_cells(config, accuracy_cells, compute(accuracy_cell), cache_dir / "accuracy",
                         description="methods: accuracy cells", progress=progress)
    retraining = run_cells(config, retrain_cells, compute(retrain_cell), cache_dir / "retrain",
                           description="methods: retraining cells", progress=progress)
    return accuracy, retraining


def pruning_time_table(accuracy: pd.DataFrame) -> pd.DataFrame:
    """(c) Median pruning wall time per model, method and layer, over seeds and sparsities."""
    alone = accuracy[accuracy["target"] != TOGETHER]
    return (alone.groupby(["model", "dataset", "target", "layers", "method"])["pruning_time_s"]
            .agg(["median", "min", "max", "count"]).reset_index()
            .rename(columns={"target": "layer", "layers": "module", "median": "median_s", "min": "min_s",
                             "max": "max_s"}))
