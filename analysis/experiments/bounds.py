"""Bounds against measurement: per-layer bounds, the depth profile, distribution certificates, differential bounds.

For every prunable layer k and sparsity s of LeNet-5 and the 8-layer CNN (float64 copies):

* ``bounds``: each bound of ``theory`` on ``||f~(x) - f(x)||`` beside the measured perturbation
  (layer k alone, and with every layer after it), with the median ratio and violations;
* ``bounds_depth_profile``: ``theory.depth_profile`` per mode, the measured change and its sound
  bound split into residual x gain x looseness, with the accuracy drop;
* ``bounds_certificates``: Clopper-Pearson and order-statistic certificates at confidence
  1 - delta, measured on held-out test samples not used above;
* ``bounds_differential``: the worst case over l-infinity balls of radius eps around test samples
  (``theory.differential_bounds``) beside a PGD attack, the fraction certified to keep the
  unpruned class on the whole ball, and the fraction whose certificate PGD refutes
  (``theory.certificate_attack``: 1 minus it bounds what any sound certificate can reach);
* ``bounds_correlations``: rank correlations, pooled over layers and sparsities, between the
  measured accuracy drop and each bound, with bootstrap intervals.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from pruning import check_sparsity, hard_threshold
from pruning.layers import prunable_layers
from theory import (certificate_attack, depth_profile, differential_attack, differential_bounds, layer_bounds,
                    module_lipschitz_constants, multi_layer_bounds, pooled_rank_correlation, pruning_certificates)

from ..contract import Cell, check_unique
from ..errors import WorkbenchError
from ..measures import swapped_weights
from ..models import layer_names
from ..networks import derived, trained_network, with_seed
from ..presets import pick, preset_training, sparsity_grid
from ..runtime import Runtime
from ..training import TrainConfig

# 1: the median ratios are the median, where torch's median gave the lower of the two middle values.
REVISION = 1
# differential 2: max-pool's upper plane is the chord of max(z_j, U) (was DeepPoly's constant max u), and
# refuted_fraction (PGD on the class certificate).
COORDINATE_REVISIONS = {"kind": {"differential": 2}}
TABLES = ("bounds", "bounds_depth_profile", "bounds_certificates", "bounds_differential", "bounds_correlations")
BOUND_ORDER = ("batch_max", "per_sample", "crown", "jacobian_estimate")
ESTIMATES = ("jacobian_estimate",)
MODES = ("alone", "onward")


@dataclass(frozen=True)
class Config:
    GRID: ClassVar[tuple[str, ...]] = ("seeds", "sparsities", "eps_values", "differential_sparsities")

    networks: tuple[TrainConfig, ...] = field(default_factory=lambda: (TrainConfig(model="lenet5"),))
    seeds: tuple[int, ...] = (0,)
    sparsities: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)
    eval_size: int = 256  # test samples for the bounds and the depth profile
    onward: bool = True  # also prune each layer together with every layer after it
    certificate_size: int = 1000  # held-out test samples (after the first eval_size) for the certificates
    delta: float = 0.05
    quantile: float = 0.95
    eps_values: tuple[float, ...] = (0.0, 1 / 255, 2 / 255, 4 / 255)
    differential_sparsities: tuple[float, ...] = (0.5,)
    differential_size: int = 32  # test samples whose balls are bounded
    differential_models: tuple[str, ...] | None = None  # networks with differential cells (None: every one)

    def __post_init__(self):
        for s in self.sparsities + self.differential_sparsities:
            check_sparsity(s)
        for name in self.GRID:
            check_unique(name, getattr(self, name))
        if not 0 < self.delta < 1 or not 0 < self.quantile < 1:
            raise WorkbenchError(f"delta and quantile must lie in (0, 1), got {self.delta} and {self.quantile}")
        if min(self.eps_values, default=0.0) < 0:
            raise WorkbenchError(f"eps_values must be >= 0, got {self.eps_values}")
        unknown = set(self.differential_models or ()) - {train.model for train in self.networks}
        if unknown:
            raise WorkbenchError(f"differential_models {sorted(unknown)} are not among the networks "
                                 f"{[train.model for train in self.networks]}")
        for name in ("eval_size", "certificate_size", "differential_size"):
            if getattr(self, name) < 1:
                raise WorkbenchError(f"{name} must be >= 1, got {getattr(self, name)}")


def preset(name: str, dataset: str, seeds: tuple[int, ...] | None = None) -> Config:
    """LeNet-5 and the 8-layer CNN, the networks of the tightness goal (quick: differential cells on LeNet-5 only)."""
    networks = tuple(preset_training(name, model, dataset) for model in ("lenet5", "cnn8"))
    return pick(name,
                smoke=lambda: Config(networks[:1], seeds or (0,), (0.5, 0.9), eval_size=32, certificate_size=200,
                                     eps_values=(0.0, 1 / 255), differential_size=8),
                # quick: no differential cells on the 8-layer CNN, whose symbol budget leaves its bounds
                # vacuous (bound / attack 1e4-1e5) at 10-50 s a sample and eps on 2 CPU cores
                quick=lambda: Config(networks, seeds or (0,), (0.3, 0.5, 0.7, 0.9), eval_size=128,
                                     differential_models=("lenet5",)),
                paper=lambda: Config(networks, seeds or (0, 1, 2), sparsity_grid(0.1, 0.9), eval_size=1000,
                                     differential_sparsities=(0.3, 0.5, 0.7, 0.9), differential_size=100))


def cells(config: Config) -> list[Cell]:
    found = []
    for index, train in enumerate(config.networks):
        layers = range(len(layer_names(train)))
        for seed in config.seeds:
            common = dict(network=index, seed=seed)
            found += [Cell.make("bounds", config, kind="layer", **common, layer_index=k, sparsity=s)
                      for k in layers for s in config.sparsities]
            found += [Cell.make("bounds", config, kind="profile", **common, mode=mode, sparsity=s)
                      for mode in MODES for s in config.sparsities]
            if config.differential_models is None or train.model in config.differential_models:
                found += [Cell.make("bounds", config, kind="differential", **common, layer_index=k, sparsity=s,
                                    eps=eps)
                          for k in layers for s in config.differential_sparsities for eps in config.eps_values]
    return found


def _float64_network(trained) -> tuple[torch.nn.Sequential, list[float]]:
    """A float64 copy of a trained network (bounds free of float32 rounding) and its Lipschitz constants."""
    def make():
        model = copy.deepcopy(trained.model).double().eval()
        return model, module_lipschitz_constants(model, tuple(trained.split.x_test.shape[1:]))
    return derived(trained.key, ("float64",), make)


def compute(cell: Cell, runtime: Runtime) -> list[dict]:
    config: Config = cell.config
    trained = trained_network(with_seed(config.networks[cell["network"]], cell["seed"]), runtime)
    model, constants = _float64_network(trained)
    device = runtime.torch_device()
    model = model.to(device)
    x, y = trained.split.x_test.to(device).double(), trained.split.y_test.to(device)
    label = {"model": trained.config.model, "dataset": trained.config.data.label}
    if cell["kind"] == "profile":
        rows = profile_rows(model, cell["mode"], cell["sparsity"], x[:config.eval_size], y[:config.eval_size])
    elif cell["kind"] == "differential":
        n = config.differential_size
        rows = differential_rows(model, cell["layer_index"], cell["sparsity"], cell["eps"], x[:n])
    else:
        rows = bounds_rows(model, cell["layer_index"], cell["sparsity"], config.onward, x[:config.eval_size],
                           y[:config.eval_size], constants)
        held_out = slice(config.eval_size, config.eval_size + config.certificate_size)
        rows += certificate_rows(model, cell["layer_index"], cell["sparsity"], config, x[held_out], y[held_out])
    return [{**label, **row} for row in rows]


def _pruned(model, indices, sparsity: float) -> dict[int, torch.Tensor]:
    layers = prunable_layers(model)
    return {i: hard_threshold(layers[i][1].weight.detach(), sparsity) for i in indices}


def _modes(model, layer_index: int, onward: bool) -> list[tuple[str, list[int]]]:
    count = len(prunable_layers(model))
    modes = [("alone", [layer_index])]
    if onward and layer_index < count - 1:
        modes.append(("onward", list(range(layer_index, count))))
    return modes


def bounds_rows(model: torch.nn.Sequential, layer_index: int, sparsity: float, onward: bool, x: torch.Tensor,
                y: torch.Tensor, constants: list[float]) -> list[dict]:
    """Every bound for layer ``layer_index`` of a float64 ``model`` at one sparsity, alone (and onward)."""
    layers = prunable_layers(model)
    rows = []
    for mode, indices in _modes(model, layer_index, onward):
        pruned = _pruned(model, indices, sparsity)
        if mode == "alone":
            bounds = layer_bounds(model, layer_index, pruned[layer_index], x, lipschitz=constants)
        else:
            bounds = multi_layer_bounds(model, pruned, x, lipschitz=constants)
        with torch.no_grad(), swapped_weights({layers[i][1]: w for i, w in pruned.items()}):
            accuracy = (model(x).argmax(1) == y).double().mean().item()
        for row in _summaries(bounds):
            rows.append({"table": "bounds", "layer": layers[layer_index][0], "mode": mode,
                         "remaining_depth": len(layers) - 1 - layer_index, "pruned_accuracy": accuracy, **row})
    return rows


def _summaries(bounds: dict[str, torch.Tensor]) -> list[dict]:
    measured = bounds["measured"]
    rows = []
    for name in (n for n in BOUND_ORDER if n in bounds):
        values = bounds[name]
        sound = name not in ESTIMATES
        rows.append({"bound": name, "is_estimate": not sound, "mean_bound": values.mean().item(),
                     "median_ratio": _median_ratio(values, measured),
                     "violations": int((values < measured * (1 - 1e-6)).sum()) if sound else 0,
                     "mean_measured": measured.mean().item()})
    return rows


def certificate_rows(model, layer_index: int, sparsity: float, config: Config, x, y) -> list[dict]:
    """Distribution-level certificates on held-out samples, for the layer alone (and onward)."""
    if len(x) == 0:
        raise WorkbenchError(f"no held-out test samples after the first {config.eval_size} for the certificates")
    rows = []
    for mode, indices in _modes(model, layer_index, config.onward):
        found = pruning_certificates(model, _pruned(model, indices, sparsity), x, y, delta=config.delta,
                                     q=config.quantile)
        rows.append({"table": "bounds_certificates", "layer": prunable_layers(model)[layer_index][0], "mode": mode,
                     "remaining_depth": len(prunable_layers(model)) - 1 - layer_index, **found})
    return rows


def profile_rows(model, mode: str, sparsity: float, x, y) -> list[dict]:
    """``theory.depth_profile`` for one mode and sparsity, with the accuracy drop of each row's pruning."""
    table = depth_profile(model, x, hard_threshold, sparsity, mode=mode)
    layers = prunable_layers(model)
    with torch.no_grad():
        base = (model(x).argmax(1) == y).double().mean().item()
    rows = []
    for row in table.to_dict("records"):
        indices = [row["layer"]] if mode == "alone" else list(range(row["layer"], len(layers)))
        with torch.no_grad(), swapped_weights({layers[i][1]: w for i, w in _pruned(model, indices, sparsity).items()}):
            accuracy = (model(x).argmax(1) == y).double().mean().item()
        rows.append({"table": "bounds_depth_profile", **{k: v for k, v in row.items() if k not in ("mode", "sparsity")},
                     "base_accuracy": base, "accuracy_drop": base - accuracy})
    return rows


def _median_ratio(values: torch.Tensor, reference: torch.Tensor) -> float:
    """Median of ``values / reference`` over the samples where ``reference`` is not 0 (nan if none)."""
    positive = reference > 1e-12
    return (values[positive] / reference[positive]).quantile(0.5).item() if positive.any() else float("nan")


def differential_rows(model, layer_index: int, sparsity: float, eps: float, x) -> list[dict]:
    """Differential bound and PGD attack on the eps-balls around ``x`` for layer ``layer_index`` alone."""
    pruned = _pruned(model, [layer_index], sparsity)
    bounds = differential_bounds(model, pruned, x, eps)
    attack = differential_attack(model, pruned, x, eps)
    layer = prunable_layers(model)[layer_index]
    return [{"table": "bounds_differential", "layer": layer[0], "layer_type": type(layer[1]).__name__,
             "remaining_depth": len(prunable_layers(model)) - 1 - layer_index,
             "mean_bound": bounds["bound"].mean().item(), "mean_attack": attack.mean().item(),
             "mean_measured": bounds["measured"].mean().item(),
             "median_ratio_to_attack": _median_ratio(bounds["bound"], attack),
             "violations": int((bounds["bound"] < attack * (1 - 1e-6)).sum().item()),
             "certified_fraction": bounds["certified"].double().mean().item(),
             "refuted_fraction": certificate_attack(model, pruned, x, eps).double().mean().item(), "samples": len(x)}]


def tables(config: Config, rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    found = {name: rows[rows["table"] == name].dropna(axis=1, how="all")
             .drop(columns=["table", "kind"], errors="ignore").reset_index(drop=True).infer_objects()
             for name in TABLES[:4]}  # a table with no cells (say, no differential sparsities) stays empty
    found["bounds_correlations"] = correlations(found["bounds_depth_profile"], found["bounds_certificates"],
                                                found["bounds"])
    return found


def correlations(profile: pd.DataFrame, certificates: pd.DataFrame, bounds: pd.DataFrame) -> pd.DataFrame:
    """Spearman rho (bootstrap 95% interval), pooled over layers, sparsities and seeds, of the measured
    accuracy drop against (a) each factor of the depth profile and (b) the certified quantile bound."""
    rows = []
    drops = bounds[bounds["bound"] == "per_sample"]
    for (model, dataset), part in profile.groupby(["model", "dataset"]):
        for mode, cells in part.groupby("mode"):
            for column in ("measured", "per_sample_bound", "jacobian_estimate", "residual", "tail_lipschitz"):
                rows.append(_correlation(model, dataset, mode, f"depth_profile.{column}", cells[column],
                                         cells["accuracy_drop"]))
        certified = certificates[(certificates["model"] == model)].merge(
            drops[drops["model"] == model][["seed", "layer", "sparsity", "mode", "pruned_accuracy"]],
            on=["seed", "layer", "sparsity", "mode"])
        for mode, cells in certified.groupby("mode"):
            rows.append(_correlation(model, dataset, mode, "certificates.quantile_upper_bound",
                                     cells["quantile_upper_bound"], 1 - cells["accuracy"]))
    return pd.DataFrame(rows)


def _correlation(model: str, dataset: str, mode: str, against: str, x: pd.Series, drop: pd.Series) -> dict:
    finite = np.isfinite(x.to_numpy(float)) & np.isfinite(drop.to_numpy(float))
    if finite.sum() < 3:
        rho = low = high = float("nan")
    else:
        rho, low, high = pooled_rank_correlation(x.to_numpy(float)[finite], drop.to_numpy(float)[finite], seed=0)
    return {"model": model, "dataset": dataset, "mode": mode, "against": against, "cells": int(finite.sum()),
            "spearman": rho, "ci_low": low, "ci_high": high}


def tightness_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per network, mode and bound: median ratio bound/measured over layers and sparsities, and violations."""
    return (table.groupby(["model", "dataset", "mode", "bound"], sort=False)
            .agg(median_ratio=("median_ratio", "median"), violations=("violations", "sum"), cells=("layer", "size"))
            .reset_index())
