"""Capture the inputs and pre-activations of Linear/Conv2d layers with forward hooks.

For a layer ``y = W x + b`` the hook records ``x`` (the layer input, ``X``) and
``W x + b`` (its pre-activation output, ``Z``) over a set of samples, batch by
batch on the model's device, and concatenates them. ``capture_cascade`` gives
Net-Trim's cascade data: layer inputs from the already pruned network, targets from
the original one (Aghasi et al., "Net-Trim", cascade formulation).
"""
from __future__ import annotations

from typing import Iterable, NamedTuple, Sequence, Union

import torch
from torch import nn

from .base import PruningError
from .layers import is_prunable

LayerRef = Union[str, nn.Module]
Samples = Union[torch.Tensor, Iterable]


class LayerActivations(NamedTuple):
    """A layer's inputs ``X`` and pre-activations ``Z`` over the same samples (rows)."""

    inputs: torch.Tensor
    outputs: torch.Tensor


def model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def resolve_layers(model: nn.Module, layers: Sequence[LayerRef]) -> dict[str, nn.Module]:
    """Map each entry of ``layers`` (a module of ``model`` or its name) to ``name -> module``."""
    by_name = dict(model.named_modules())
    name_of = {id(module): name for name, module in by_name.items()}
    resolved: dict[str, nn.Module] = {}
    for ref in layers:
        if isinstance(ref, str):
            if ref not in by_name:
                raise PruningError(f"layer {ref!r}: no such module in the model")
            resolved[ref] = by_name[ref]
        elif id(ref) in name_of:
            resolved[name_of[id(ref)]] = ref
        else:
            raise PruningError(f"layer {type(ref).__name__}: not a module of the model")
    for name, module in resolved.items():
        if not is_prunable(module):
            raise PruningError(f"layer {name!r} ({type(module).__name__}): unsupported layer type, "
                               "expected Linear or Conv2d")
    return resolved


def _batches(samples: Samples, batch_size: int) -> Iterable[torch.Tensor]:
    if isinstance(samples, torch.Tensor):
        yield from torch.split(samples, batch_size)
        return
    for batch in samples:
        yield batch[0] if isinstance(batch, (tuple, list)) else batch


@torch.no_grad()
def capture_activations(model: nn.Module, layers: Sequence[LayerRef], samples: Samples,
                        batch_size: int = 1024, store_device: torch.device | str | None = None
                        ) -> dict[str, LayerActivations]:
    """Run ``samples`` through ``model`` and return ``{layer name: (X, Z)}`` for ``layers``.

    ``samples`` is a tensor (split into batches of ``batch_size``) or an iterable of
    batches (tensors or ``(inputs, labels)`` pairs, as a DataLoader yields). Batches
    run on the model's device; results are stored on ``store_device`` (default: the
    model's device). The model is put in eval mode during the capture and restored.
    """
    if batch_size < 1:
        raise PruningError(f"batch_size must be a positive integer, got {batch_size!r}")
    targets = resolve_layers(model, layers)
    device = model_device(model)
    store = torch.device(store_device) if store_device is not None else device
    pieces: dict[str, tuple[list, list]] = {name: ([], []) for name in targets}

    def make_hook(name: str):
        def hook(module, args, output):
            pieces[name][0].append(args[0].detach().to(store))
            pieces[name][1].append(output.detach().to(store))
        return hook

    handles = [module.register_forward_hook(make_hook(name)) for name, module in targets.items()]
    was_training = model.training
    model.eval()
    try:
        for batch in _batches(samples, batch_size):
            model(batch.to(device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if any(not xs for xs, _ in pieces.values()):
        raise PruningError("capture_activations: no samples were given")
    return {name: LayerActivations(torch.cat(xs), torch.cat(zs)) for name, (xs, zs) in pieces.items()}


def capture_cascade(original: nn.Module, pruned: nn.Module, layer: LayerRef, samples: Samples,
                    batch_size: int = 1024) -> LayerActivations:
    """Net-Trim cascade data for one layer: ``X`` from ``pruned``, ``Z`` from ``original``.

    ``pruned`` must have the same architecture as ``original`` (e.g. a deep copy whose
    earlier layers were already pruned); ``layer`` is a name or a module of ``original``.
    """
    name = next(iter(resolve_layers(original, [layer])))
    pruned_inputs = capture_activations(pruned, [name], samples, batch_size)[name].inputs
    original_outputs = capture_activations(original, [name], samples, batch_size)[name].outputs
    return LayerActivations(pruned_inputs, original_outputs)
