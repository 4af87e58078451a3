"""The one interface every layer-wise pruning method implements, and its registry.

A method sees one layer at a time: its weights and bias, the layer's inputs ``X``
over a set of samples, its original pre-activation outputs ``Z = X W^T + b`` on the
same samples, whether a relu follows, and a target sparsity. It returns new
weights, the (unchanged) bias, a boolean mask of kept weights and an info dict.

Conventions (rows are samples, as in torch):

* Linear layer: ``X`` is ``(N, d_in)``, ``Z`` is ``(N, d_out)``.
* Conv2d layer: ``X`` is ``(N, C_in, H, W)``, ``Z`` is ``(N, C_out, H', W')``.
* Sparsity ``s`` is the fraction of weight entries that are exactly zero.
  Biases are never pruned.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn


class PruningError(ValueError):
    """Bad input to a pruning method; the message names the layer and the problem."""


@dataclass
class PruneResult:
    """Output of a layer-wise pruner. ``mask`` is True where a weight is kept."""

    weight: torch.Tensor
    bias: torch.Tensor | None
    mask: torch.Tensor
    info: dict = field(default_factory=dict)

    @property
    def sparsity(self) -> float:
        return 1.0 - self.mask.float().mean().item()


def check_sparsity(sparsity: float, name: str = "sparsity") -> float:
    """Return ``sparsity`` as float if it lies in [0, 1), else raise PruningError."""
    s = float(sparsity)
    if not (0.0 <= s < 1.0) or math.isnan(s):
        raise PruningError(f"{name} must lie in [0, 1), got {sparsity!r}")
    return s


def count_to_prune(numel: int, sparsity: float) -> int:
    """Number of entries to zero so that the sparsity is ``sparsity`` (nearest integer)."""
    return int(round(check_sparsity(sparsity) * numel))


def describe(layer: nn.Module, name: str | None = None) -> str:
    if name:
        return f"layer {name!r} ({type(layer).__name__})"
    return f"layer {type(layer).__name__}"


def check_layer_data(layer: nn.Module, inputs: torch.Tensor, outputs: torch.Tensor,
                     name: str | None = None) -> None:
    """Validate that ``inputs`` and ``outputs`` fit ``layer`` and are finite."""
    where = describe(layer, name)
    if not isinstance(layer, (nn.Linear, nn.Conv2d)):
        raise PruningError(f"{where}: unsupported layer type, expected Linear or Conv2d")
    if inputs.shape[0] != outputs.shape[0]:
        raise PruningError(f"{where}: inputs have {inputs.shape[0]} samples but outputs "
                           f"have {outputs.shape[0]}")
    linear = isinstance(layer, nn.Linear)
    ndim, size_name = (2, "features") if linear else (4, "channels")
    for label, tensor, expected in (("inputs", inputs, layer.in_features if linear else layer.in_channels),
                                    ("outputs", outputs, layer.out_features if linear else layer.out_channels)):
        if tensor.ndim != ndim or tensor.shape[1] != expected:
            prefix = "in" if label == "inputs" else "out"
            raise PruningError(f"{where}: {label} of shape {tuple(tensor.shape)} do not match "
                               f"{prefix}_{size_name}={expected}")
    for label, t in (("inputs", inputs), ("outputs", outputs)):
        if not torch.isfinite(t).all():
            raise PruningError(f"{where}: {label} contain NaN or infinite values")


class LayerPruner:
    """Base class: subclasses set ``name`` and implement ``_prune``.

    Options go in ``__init__`` (scikit-learn style); ``prune`` validates, times the
    call and fills ``info['wall_time_s']`` and ``info['sparsity']``.
    """

    name: str = ""
    supports: tuple[type[nn.Module], ...] = (nn.Linear,)
    needs_data: bool = True

    def prune(self, layer: nn.Module, inputs: torch.Tensor | None, outputs: torch.Tensor | None,
              sparsity: float, *, relu: bool = True, layer_name: str | None = None) -> PruneResult:
        """Prune ``layer`` to ``sparsity`` given its inputs and original pre-activations."""
        check_sparsity(sparsity)
        where = describe(layer, layer_name)
        if not isinstance(layer, self.supports):
            allowed = ", ".join(t.__name__ for t in self.supports)
            raise PruningError(f"{where}: method {self.name!r} supports {allowed} only")
        if self.needs_data:
            if inputs is None or outputs is None:
                raise PruningError(f"{where}: method {self.name!r} needs layer inputs and outputs")
            check_layer_data(layer, inputs, outputs, layer_name)
        start = time.perf_counter()
        with torch.no_grad():
            result = self._prune(layer, inputs, outputs, sparsity, relu)
        if result.weight.is_cuda:
            torch.cuda.synchronize()
        result.info["wall_time_s"] = time.perf_counter() - start
        result.info["sparsity"] = result.sparsity
        result.info["method"] = self.name
        return result

    def _prune(self, layer: nn.Module, inputs: torch.Tensor | None, outputs: torch.Tensor | None,
               sparsity: float, relu: bool) -> PruneResult:
        raise NotImplementedError


_REGISTRY: dict[str, Callable[..., LayerPruner]] = {}


def register(name: str) -> Callable[[type[LayerPruner]], type[LayerPruner]]:
    """Class decorator adding a pruner to the registry under ``name``."""

    def decorate(cls: type[LayerPruner]) -> type[LayerPruner]:
        if name in _REGISTRY:
            raise ValueError(f"pruning method {name!r} is registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def available_methods() -> list[str]:
    return sorted(_REGISTRY)


def get_method(name: str, **options) -> LayerPruner:
    """Instantiate the registered method ``name`` with ``options``."""
    if name not in _REGISTRY:
        raise PruningError(f"unknown pruning method {name!r}; choose from {', '.join(available_methods())}")
    return _REGISTRY[name](**options)
