"""One dict per registered model for ``fak3zer0 models``: what it is, how big, how costly.

FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode` on a one-sample
dummy input built from the model's :class:`InputSpec` (one frame, one clip or one
landmark track), so "FLOPs per clip" means per forward pass of that input.  The counter
reports 2 FLOPs per multiply-add and only counts matrix multiplications and convolutions
(plus attention); element-wise work is not counted.  The model is built on the ``meta``
device, so nothing is computed and nothing is allocated.
"""
from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from fak3zer0.models.registry import InputSpec, create_model, list_models, model_entry


def dummy_input(spec: InputSpec, batch: int = 1, *, device: str | torch.device = "cpu",
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Random input of the shape ``forward`` expects for ``spec`` (values in [0, 1])."""
    s, t = spec.size, max(spec.frames, 1)
    shapes = {
        "frame": (batch, 3, s, s),
        "frames": (batch, t, 3, s, s),
        "clip": (batch, 3, t, s, s),
        "landmarks": (batch, t, spec.landmarks, 2),
    }
    return torch.rand(shapes[spec.kind], generator=generator, device=device)


def count_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return int(counter.get_total_flops())


def describe_model(name: str, flops: bool = True, **cfg: Any) -> dict[str, Any]:
    """One row: name, family, description, params, trainable_params, input_spec (dict),
    flops (per input of the spec; None when ``flops=False``) and weights_available (tags)."""
    entry = model_entry(name)
    with torch.device("meta"):
        model = create_model(name, **cfg).eval()
    spec = model.input_spec
    n_flops: int | None = None
    if flops:
        try:
            n_flops = count_flops(model, dummy_input(spec, device="meta"))
        except (NotImplementedError, RuntimeError):  # an op without a meta kernel: count on CPU instead
            n_flops = count_flops(create_model(name, **cfg).eval(), dummy_input(spec))
    return {
        "name": name,
        "family": entry.family,
        "description": entry.description,
        "params": sum(p.numel() for p in model.parameters()),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "input_spec": spec.to_dict(),
        "flops": n_flops,
        "weights_available": entry.weights_available(),
    }


def describe_models(pattern: str = "*", flops: bool = True) -> list[dict[str, Any]]:
    """Describe every registered model whose name matches the glob ``pattern``."""
    return [describe_model(name, flops=flops) for name in list_models(pattern)]
