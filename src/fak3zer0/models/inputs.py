"""Turn uint8 face crops / landmark tracks into the tensors a model's InputSpec asks for.

Training, evaluation and detection all go through these functions, so preprocessing
can never drift between them.
"""
from __future__ import annotations

import numpy as np
import torch

from fak3zer0.models.registry import InputSpec


def crops_to_tensor(crops: np.ndarray, spec: InputSpec) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float, scaled to [0, 1] then normalised by the spec."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(spec.mean, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def window_starts(n: int, length: int) -> list[int]:
    """Start offsets of non-overlapping windows of ``length`` covering ``n`` items (last one may be padded)."""
    if n <= length:
        return [0]
    starts = list(range(0, n - length + 1, length))
    if starts[-1] + length < n:
        starts.append(n - length)
    return starts


def pad_indices(n: int, length: int) -> np.ndarray:
    """Indices 0..n-1 stretched to ``length`` (repeat evenly) when a track is shorter than a window."""
    return np.floor(np.linspace(0, n, num=length, endpoint=False)).astype(int).clip(0, n - 1)


def sequence_to_tensor(crops: np.ndarray, spec: InputSpec) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> one sample for a temporal model: (1, T, 3, H, W) or (1, 3, T, H, W) for clips."""
    x = crops_to_tensor(crops, spec)  # (T, 3, H, W)
    if spec.kind == "clip":
        return x.permute(1, 0, 2, 3).unsqueeze(0)
    return x.unsqueeze(0)


def landmarks_to_tensor(points: np.ndarray) -> torch.Tensor:
    """(T, P, 2) landmark coordinates (in crop-normalised units, 0..1) -> (1, T, P, 2) float."""
    return torch.from_numpy(np.asarray(points, dtype=np.float32)).unsqueeze(0)
