"""The one interface every layer-wise pruning method implements, and its registry.

A method sees one layer at a time: its weights and bias, the layer's inputs ``X``
over a set of samples, its original pre-activation outputs ``Z = X W^T + b`` on the
same samples, whether a relu follows, and a target sparsity. It returns new
weights, the bias (moved by data methods, never pruned), a boolean mask of kept
weights and an info dict.

Conventions (rows are samples, as in torch):

* Linear layer: ``X`` is ``(N, d_in)``, ``Z`` is ``(N, d_out)``.
* Conv2d layer: ``X`` is ``(N, C_in, H, W)``, ``Z`` is ``(N, C_out, H', W')``; data methods
  see it as a Linear map on unfolded patches (``layerdata``; groups=1 and zero padding only).
* Sparsity ``s`` is the fraction of weight entries that are exactly zero.

``prune(..., mask=M)`` runs the method's own solver on the fixed support ``M`` (True =
kept) instead of choosing one: with ``M`` from hard thresholding this is "thresholding's
support with the method's solver".

Refused input (``PruningError`` naming the layer and the problem, before any work): a
sparsity outside [0, 1); a layer type the method does not support; a Conv2d with groups > 1
or non-zero padding mode; NaN or inf in the layer's weights or bias; inputs or outputs that
are not real floating-point tensors of the layer's shape, that hold NaN or inf, or that
are empty. Degenerate data (rule for every data method): the input rows must vary, i.e. at
least 2 rows and at least one input column that is not constant over the rows (the
centred inputs have rank >= 1); otherwise no weight is identifiable from the data. Every
result is checked: non-finite weights or bias raise ``PruningError``, and
``info['sparsity']`` is the fraction of exact zeros actually returned.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from .layerdata import PATCH_ROWS, LayerProblem, Standardiser, conv_output_size, layer_problem
from .layers import is_prunable


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


@dataclass
class Solution:
    """What a method's ``_solve`` returns, in the problem's matrix shape ``(d_out, d_in)``."""

    weight: torch.Tensor
    bias: torch.Tensor
    mask: torch.Tensor
    info: dict


def check_sparsity(sparsity: float, name: str = "sparsity") -> float:
    """Return ``sparsity`` as float if it lies in [0, 1), else raise PruningError."""
    try:
        s = float(sparsity)
    except (TypeError, ValueError):
        raise PruningError(f"{name} must be a number in [0, 1), got {sparsity!r}") from None
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


def check_layer(layer: nn.Module, where: str) -> None:
    """The layer is prunable, a plain convolution if Conv2d, and its parameters are finite."""
    if not is_prunable(layer):
        raise PruningError(f"{where}: unsupported layer type, expected Linear or Conv2d")
    if isinstance(layer, nn.Conv2d) and (layer.groups != 1 or layer.padding_mode != "zeros"):
        raise PruningError(f"{where}: only groups=1 and padding_mode='zeros' are supported, got "
                           f"groups={layer.groups}, padding_mode={layer.padding_mode!r}")
    for label, tensor in (("weights", layer.weight), ("bias", layer.bias)):
        if tensor is not None and not torch.isfinite(tensor.detach()).all():
            raise PruningError(f"{where}: the layer's {label} contain NaN or infinite values")


def _expected_shape(layer: nn.Module, inputs: torch.Tensor) -> tuple[tuple, tuple]:
    if isinstance(layer, nn.Linear):
        return (layer.in_features,), (layer.out_features,)
    height, width = (inputs.shape[2:] if inputs.ndim == 4 else (0, 0))
    return ((layer.in_channels, height, width),
            (layer.out_channels, *conv_output_size(layer, int(height), int(width))))


def check_layer_data(layer: nn.Module, inputs, outputs, where: str) -> None:
    """Validate that ``inputs`` and ``outputs`` are finite real tensors that fit ``layer``."""
    for label, tensor in (("inputs", inputs), ("outputs", outputs)):
        if not isinstance(tensor, torch.Tensor):
            raise PruningError(f"{where}: {label} must be a torch.Tensor, got {type(tensor).__name__}")
        if not tensor.is_floating_point():
            raise PruningError(f"{where}: {label} must be real floating-point, got {tensor.dtype}")
    in_shape, out_shape = _expected_shape(layer, inputs)
    for label, tensor, expected in (("inputs", inputs, in_shape), ("outputs", outputs, out_shape)):
        if tensor.ndim != len(expected) + 1 or tuple(tensor.shape[1:]) != expected:
            what = "in" if label == "inputs" else "out"
            size = "features" if isinstance(layer, nn.Linear) else "channels"
            raise PruningError(f"{where}: {label} of shape {tuple(tensor.shape)} do not match "
                               f"{what}_{size} (expected (N, {', '.join(map(str, expected))}))")
    if inputs.shape[0] != outputs.shape[0]:
        raise PruningError(f"{where}: inputs have {inputs.shape[0]} samples but outputs "
                           f"have {outputs.shape[0]}")
    if inputs.shape[0] == 0:
        raise PruningError(f"{where}: the batch is empty (0 samples)")
    for label, tensor in (("inputs", inputs), ("outputs", outputs)):
        if not torch.isfinite(tensor).all():
            raise PruningError(f"{where}: {label} contain NaN or infinite values")


def check_not_degenerate(problem: LayerProblem, where: str) -> None:
    """At least 2 input rows and one input column that varies over them (module docstring)."""
    rows = problem.inputs.shape[0]
    if rows < 2 or bool(Standardiser(problem.inputs).constant.all()):
        raise PruningError(f"{where}: degenerate inputs ({rows} rows, no input column varies); "
                           "a data method needs at least 2 rows and one non-constant input")


def check_mask(mask, layer: nn.Module, where: str) -> torch.Tensor:
    if not isinstance(mask, torch.Tensor) or mask.shape != layer.weight.shape:
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise PruningError(f"{where}: mask must be a tensor of the weight's shape "
                           f"{tuple(layer.weight.shape)}, got {shape}")
    return mask.detach().bool()


class LayerPruner:
    """Base class: subclasses set ``name`` and implement ``_solve`` on a ``LayerProblem``.

    Options go in ``__init__`` (scikit-learn style); ``prune`` validates, builds the
    problem, times the solve and fills ``info['wall_time_s']``, ``info['sparsity']``,
    ``info['method']`` (and ``converged``/``iterations`` when the method sets none).
    ``patch_rows`` and ``seed`` set the patch sampling of Conv2d layers (``layerdata``).
    """

    name: str = ""
    needs_data: bool = True

    def __init__(self, patch_rows: int | None = PATCH_ROWS, seed: int = 0) -> None:
        if patch_rows is not None and patch_rows < 2:
            raise PruningError(f"patch_rows must be None or an integer >= 2, got {patch_rows!r}")
        self.patch_rows, self.seed = patch_rows, seed

    def prune(self, layer: nn.Module, inputs: torch.Tensor | None, outputs: torch.Tensor | None,
              sparsity: float, *, relu: bool = True, layer_name: str | None = None,
              mask: torch.Tensor | None = None) -> PruneResult:
        """Prune ``layer`` to ``sparsity`` (or onto the fixed support ``mask``) from its data."""
        check_sparsity(sparsity)
        where = describe(layer, layer_name)
        check_layer(layer, where)
        fixed = None if mask is None else check_mask(mask, layer, where)
        if self.needs_data:
            if inputs is None or outputs is None:
                raise PruningError(f"{where}: method {self.name!r} needs layer inputs and outputs")
            check_layer_data(layer, inputs, outputs, where)
        start = time.perf_counter()
        problem = layer_problem(layer, inputs if self.needs_data else None,
                                outputs if self.needs_data else None, relu, self.patch_rows, self.seed)
        if self.needs_data:
            check_not_degenerate(problem, where)
        with torch.no_grad():
            try:
                solution = self._solve(problem, sparsity,
                                       None if fixed is None else fixed.reshape(problem.weight.shape))
            except (torch.linalg.LinAlgError, ZeroDivisionError) as error:
                raise PruningError(f"{where}: method {self.name!r} failed numerically ({error})") from None
        if solution.weight.is_cuda:
            torch.cuda.synchronize()
        return self._result(layer, solution, time.perf_counter() - start, where)

    def _result(self, layer: nn.Module, solution: Solution, seconds: float, where: str) -> PruneResult:
        mask = solution.mask.reshape(layer.weight.shape)
        weight = (solution.weight.reshape(layer.weight.shape) * mask).to(layer.weight.dtype)
        bias = None if layer.bias is None else solution.bias.to(layer.bias.dtype)
        if not torch.isfinite(weight).all() or (bias is not None and not torch.isfinite(bias).all()):
            raise PruningError(f"{where}: method {self.name!r} produced non-finite weights "
                               "(inputs too large or too ill-conditioned?)")
        info = dict(solution.info)
        info.setdefault("iterations", 0)
        info.setdefault("converged", True)
        info.update(wall_time_s=seconds, sparsity=int((weight == 0).sum()) / weight.numel(), method=self.name)
        return PruneResult(weight, bias, mask.to(weight.device), info)

    def _solve(self, problem: LayerProblem, sparsity: float, mask: torch.Tensor | None) -> Solution:
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
    try:
        return _REGISTRY[name](**options)
    except TypeError as error:
        raise PruningError(f"method {name!r}: bad options ({error})") from None
