"""Logit-averaging ensembles of frame models: one checkpoint, one ONNX graph, one forward.

The ensemble's logit is a weighted mean of its members' logits (equal weights by default), each
optionally divided by a fixed per-member temperature (1 by default; see
:func:`ensemble_from_checkpoints`). Members may take different crop sizes: the ensemble takes the
largest, and a member that takes a smaller one sees the crop shrunk inside the graph by a fixed
area-resampling matrix (what OpenCV's ``INTER_AREA`` computes), so one face crop feeds them all. The checkpoint's config lists the members (registry name,
builder config, temperature, weight); their parameters live in the one state dict under
``members.<i>.``::

    model = ensemble_from_checkpoints(["a.pt", "b.pt"])   # then evaluate/save/export as any model
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fak3zer0.errors import ModelError
from fak3zer0.models.registry import InputSpec, create_model, register_model


#: What ``create_model("ensemble")`` builds without members: the shape of the shipped default
#: (EfficientNet-Lite0 at 160 px and at 224 px), so ``fak3zer0 models`` can describe its size and cost.
DEFAULT_MEMBERS: tuple[dict[str, Any], ...] = (
    {"model": "efficientnet_lite0", "config": {"size": 160}},
    {"model": "efficientnet_lite0", "config": {"size": 224}},
)


def area_resize_matrix(src: int, dst: int) -> torch.Tensor:
    """``(dst, src)`` matrix ``R`` with ``R @ x @ R.T`` = ``x`` shrunk from ``src`` to ``dst`` pixels a side by
    area averaging: output pixel i is the mean of input span ``[i * src / dst, (i + 1) * src / dst)``,
    partly covered pixels weighted by their covered share (OpenCV's ``INTER_AREA`` when shrinking)."""
    if not 0 < dst <= src:
        raise ModelError(f"area resampling shrinks: cannot go from {src} to {dst} pixels")
    scale = src / dst
    edges = torch.arange(dst + 1, dtype=torch.float64) * scale
    pixels = torch.arange(src, dtype=torch.float64)
    covered = (torch.minimum(edges[1:, None], pixels[None] + 1) - torch.maximum(edges[:-1, None], pixels[None]))
    return (covered.clamp(min=0) / scale).float()


class LogitEnsemble(nn.Module):
    """``forward(x) = sum_i w_i * member_i(shrink_i(x)) / T_i`` over frame models that share their
    normalisation; ``shrink_i`` is the identity for members that take the ensemble's (largest) size.

    ``weights`` (non-negative, normalised to sum to 1; equal when omitted) and ``temperatures`` are
    fixed numbers, not parameters.
    """

    def __init__(self, members: list[nn.Module], temperatures: list[float],
                 weights: list[float] | None = None) -> None:
        super().__init__()
        if not members:
            raise ModelError("an ensemble needs at least one member")
        if len(temperatures) != len(members) or min(temperatures) <= 0:
            raise ModelError(f"one positive temperature per member is needed, got {temperatures}")
        weights = [1.0] * len(members) if weights is None else [float(w) for w in weights]
        if len(weights) != len(members) or min(weights) < 0 or sum(weights) <= 0:
            raise ModelError(f"one non-negative weight per member is needed (not all zero), got {weights}")
        specs = {replace(m.input_spec, size=0) for m in members}
        if len(specs) != 1:
            raise ModelError("ensemble members must take the same input (crop size aside); they take "
                             f"{sorted(str(m.input_spec) for m in members)}")
        self.input_spec = max((m.input_spec for m in members), key=lambda spec: spec.size)
        if self.input_spec.kind != "frame":
            raise ModelError("ensembles are of frame models only")
        self.members = nn.ModuleList(members)
        self.member_sizes = [m.input_spec.size for m in members]
        for size in sorted(set(self.member_sizes) - {self.input_spec.size}):
            self.register_buffer(f"shrink_{size}", area_resize_matrix(self.input_spec.size, size), persistent=False)
        self.weights = [w / sum(weights) for w in weights]
        self.temperatures = [float(t) for t in temperatures]
        factors = [w / t for w, t in zip(self.weights, temperatures)]
        self.register_buffer("factors", torch.tensor(factors), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.combine(self.member_logits(x))

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Each member's raw logits on the ensemble's input, ``(members, N)``."""
        return torch.stack([m(self.member_input(x, i)) for i, m in enumerate(self.members)])

    def member_input(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """The ensemble's ``(N, 3, S, S)`` input as member ``i`` takes it (shrunk to its size if smaller)."""
        if self.member_sizes[i] == x.shape[-1]:
            return x
        shrink = getattr(self, f"shrink_{self.member_sizes[i]}")
        return shrink @ x @ shrink.T

    def combine(self, member_logits: torch.Tensor) -> torch.Tensor:
        """The ensemble's logits from its members' ``(members, N)`` logits (:meth:`member_logits`):
        ``sum_i w_i / T_i * logit_i`` (lets a tool score the members once and try several weightings)."""
        return (member_logits * self.factors[:, None]).sum(0)

    def cam_layer(self) -> list[nn.Module] | None:
        """One Grad-CAM layer per member (the explainer sums their maps); None: use saliency."""
        layers = [m.cam_layer() for m in self.members if hasattr(m, "cam_layer")]
        return layers if len(layers) == len(self.members) else None


@register_model(
    "ensemble",
    input_spec=InputSpec(kind="frame"),
    family="ensemble",
    description="weighted mean of frame models' logits (members from their checkpoints)",
)
def ensemble(members: list[dict[str, Any]] | None = None) -> LogitEnsemble:
    """``members``: ``[{"model": name, "config": {...}, "temperature": T, "weight": w}, ...]``
    (temperature 1 and equal weights when omitted)."""
    built, temps, weights = [], [], []
    for m in DEFAULT_MEMBERS if members is None else members:
        if not isinstance(m, dict) or "model" not in m:
            raise ModelError(f"each ensemble member needs a 'model' name, got {m!r}")
        if m["model"] == "ensemble":
            raise ModelError("ensembles do not nest")
        built.append(create_model(m["model"], **m.get("config", {})))
        temps.append(float(m.get("temperature", 1.0)))
        weights.append(float(m.get("weight", 1.0)))
    return LogitEnsemble(built, temps, weights)


def ensemble_from_checkpoints(paths: list[str | Path], scaling: str = "raw",
                              weights: list[float] | None = None) -> LogitEnsemble:
    """Build an ensemble of saved models (``weights``: one per member, normalised; equal when omitted).

    ``scaling="raw"`` averages the members' raw logits (T_i = 1); ``"temperature"`` divides each by
    the temperature in its checkpoint. Raw is the default because a member's temperature is fitted
    on its own validation data: a member that was never meant to detect that data's fakes (say, one
    trained on self-blended fakes only, calibrated on DFDC swaps) gets a huge temperature and would
    be silenced.
    """
    from fak3zer0.models.checkpoint import file_digest, read_checkpoint

    if scaling not in ("raw", "temperature"):
        raise ModelError(f"member scaling must be 'raw' or 'temperature', not {scaling!r}")
    ckpts = [read_checkpoint(p) for p in paths]
    members = [{"model": c["model"], "config": c.get("config", {}),
                "temperature": float(c.get("calibration", {}).get("temperature", 1.0)) if scaling == "temperature"
                else 1.0,
                "weight": 1.0 if weights is None else float(w),
                "version": file_digest(p)} for c, p, w in zip(ckpts, paths, weights or [None] * len(paths))]
    model = create_model("ensemble", members=members)
    for member, ckpt in zip(model.members, ckpts):
        member.load_state_dict(ckpt["state_dict"])  # float16-stored weights are cast to the member's float32
    return model
