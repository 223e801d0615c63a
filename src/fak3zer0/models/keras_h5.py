"""Read Keras HDF5 weight files (``model.save_weights`` / ``load_weights`` format) with h5py.

No TensorFlow needed: we only read arrays and convert layouts
(Keras conv kernels are ``(kh, kw, in, out)``, torch wants ``(out, in, kh, kw)``).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from fak3zer0.errors import ModelError


def read_keras_layers(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Return ``{layer_name: {weight_name: array}}`` for every layer that has weights."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"Keras weight file not found: {path}")
    out: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        for raw in root.attrs["layer_names"]:
            layer = raw.decode() if isinstance(raw, bytes) else str(raw)
            group = root[layer]
            weights = {}
            for wraw in group.attrs.get("weight_names", []):
                wname = wraw.decode() if isinstance(wraw, bytes) else str(wraw)
                short = wname.split("/")[-1].split(":")[0]
                weights[short] = np.asarray(group[wname])
            if weights:
                out[layer] = weights
    return out


def layers_of_type(layers: dict[str, dict[str, np.ndarray]], prefix: str) -> list[dict[str, np.ndarray]]:
    """Layers named ``prefix_N`` sorted by N (Keras numbers layers in creation order)."""
    pat = re.compile(rf"^{prefix}_(\d+)$")
    found = [(int(m.group(1)), w) for name, w in layers.items() if (m := pat.match(name))]
    return [w for _, w in sorted(found, key=lambda t: t[0])]


def load_conv(conv: torch.nn.Conv2d, w: dict[str, np.ndarray]) -> None:
    kernel = torch.from_numpy(w["kernel"]).permute(3, 2, 0, 1).contiguous()
    if kernel.shape != conv.weight.shape:
        raise ModelError(f"conv kernel shape {tuple(kernel.shape)} != {tuple(conv.weight.shape)}")
    conv.weight.data.copy_(kernel)
    conv.bias.data.copy_(torch.from_numpy(w["bias"]))


def load_batchnorm(bn: torch.nn.BatchNorm2d, w: dict[str, np.ndarray]) -> None:
    bn.weight.data.copy_(torch.from_numpy(w["gamma"]))
    bn.bias.data.copy_(torch.from_numpy(w["beta"]))
    bn.running_mean.data.copy_(torch.from_numpy(w["moving_mean"]))
    bn.running_var.data.copy_(torch.from_numpy(w["moving_variance"]))


def load_dense(linear: torch.nn.Linear, w: dict[str, np.ndarray], *, chw_from_hwc: tuple[int, int, int] | None = None) -> None:
    """Copy a Keras Dense layer; ``chw_from_hwc`` reorders inputs that came from a channels-last Flatten."""
    kernel = torch.from_numpy(w["kernel"])  # (in, out)
    if chw_from_hwc is not None:
        c, h, wd = chw_from_hwc
        kernel = kernel.reshape(h, wd, c, -1).permute(2, 0, 1, 3).reshape(c * h * wd, -1)
    linear.weight.data.copy_(kernel.t().contiguous())
    linear.bias.data.copy_(torch.from_numpy(w["bias"]))
