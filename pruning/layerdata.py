"""Shared plumbing of the data-driven Linear-layer pruners (FeTa, Net-Trim, L-OBS).

* ``LayerProblem``: the layer's weights, bias, inputs and target in one working dtype
  and device (float32 on the inputs' device unless asked otherwise).
* ``Standardiser``: the exact change of variables ``v = u * sd``, ``c = b + u . mean``
  that makes a layer act on standardised inputs. It leaves every loss unchanged and,
  because biases are not penalised, turns ``lam ||u||_1`` into the weighted
  ``lam sum_q |v_q| / sd_q`` (a diagonal preconditioner for first-order solvers).
* ``soft_threshold`` and ``top_k_mask`` (the final exact-sparsity projection).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .threshold import magnitude_mask

# Input columns whose standard deviation is below this (relative to the largest) are constant.
_CONSTANT_COLUMN = 1e-6


@dataclass
class LayerProblem:
    """Weights ``(d_out, d_in)``, bias ``(d_out,)``, inputs ``(N, d_in)``, target ``(N, d_out)``."""

    weight: torch.Tensor
    bias: torch.Tensor
    inputs: torch.Tensor
    target: torch.Tensor
    relu: bool


def layer_problem(layer: nn.Linear, inputs: torch.Tensor, outputs: torch.Tensor, relu: bool,
                  dtype: torch.dtype = torch.float32) -> LayerProblem:
    """Collect a Linear layer's data; the target is ``relu(Z)`` when a relu follows, else ``Z``."""
    device = inputs.device
    weight = layer.weight.detach().to(device=device, dtype=dtype)
    bias = (torch.zeros(weight.shape[0], device=device, dtype=dtype) if layer.bias is None
            else layer.bias.detach().to(device=device, dtype=dtype))
    target = outputs.to(dtype)
    return LayerProblem(weight.clone(), bias.clone(), inputs.to(dtype),
                        target.clamp_min(0) if relu else target, relu)


def output_bias(layer: nn.Linear, bias: torch.Tensor) -> torch.Tensor | None:
    """The bias to return: None for a bias-free layer (its bias must stay absent)."""
    return None if layer.bias is None else bias.to(layer.bias.dtype)


class Standardiser:
    """Exact reparametrisation of ``z = x W^T + b`` on standardised inputs ``(x - mean) / sd``."""

    def __init__(self, inputs: torch.Tensor) -> None:
        var, mean = torch.var_mean(inputs, dim=0, correction=0)
        sd = var.sqrt()
        self.constant = sd <= _CONSTANT_COLUMN * sd.max().clamp_min(1e-30)
        self.mean = mean.to(inputs.dtype)
        self.sd = torch.where(self.constant, torch.ones_like(sd), sd).to(inputs.dtype)

    def to_standard(self, weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bias = bias + weight @ self.mean
        return weight * ~self.constant * self.sd, bias  # a constant input is carried by the bias

    def from_standard(self, v: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weight = v / self.sd
        return weight, c - weight @ self.mean

    def forward(self, inputs: torch.Tensor, v: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``((x - mean) / sd) v^T + c`` without forming the standardised inputs."""
        weight = v / self.sd
        return torch.addmm(c - weight @ self.mean, inputs, weight.T)

    def backward(self, inputs: torch.Tensor, grad_z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradients w.r.t. ``(v, c)`` of a loss whose gradient w.r.t. ``z`` is ``grad_z``."""
        grad_c = grad_z.sum(0)
        grad_v = (grad_z.T @ inputs - torch.outer(grad_c, self.mean)) / self.sd
        return grad_v, grad_c


def soft_threshold(values: torch.Tensor, threshold: torch.Tensor | float) -> torch.Tensor:
    """Proximal operator of ``threshold * |.|``: ``sign(v) max(|v| - threshold, 0)``."""
    return values.sign() * (values.abs() - threshold).clamp_min(0)


def top_k_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep the ``numel - round(s numel)`` largest-magnitude entries (exact count, stable ties)."""
    return magnitude_mask(weight, sparsity)
