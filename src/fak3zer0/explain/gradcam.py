"""Grad-CAM (Selvaraju et al. 2017) for frame models, input-gradient saliency for the rest."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from fak3zer0.models.inputs import crops_to_tensor, sequence_to_tensor


def _gradcam(model: torch.nn.Module, x: torch.Tensor, layers: torch.nn.Module | list[torch.nn.Module]) -> np.ndarray:
    """Grad-CAM at one layer, or the sum of the maps at several (an ensemble's members)."""
    layers = layers if isinstance(layers, list) else [layers]
    store: dict[int, torch.Tensor] = {}

    def hook_for(i: int):
        def hook(_m, _i, out):
            out.retain_grad()
            store[i] = out
        return hook

    handles = [layer.register_forward_hook(hook_for(i)) for i, layer in enumerate(layers)]
    try:
        with torch.enable_grad():
            logit = model(x)
            model.zero_grad(set_to_none=True)
            logit.sum().backward()
    finally:
        for handle in handles:
            handle.remove()
    cams = []
    for act in store.values():
        weights = act.grad.mean(dim=(2, 3), keepdim=True)
        cams.append(torch.relu((weights * act).sum(dim=1))[:1].detach())
    side = max(cam.shape[-1] for cam in cams)  # members at different crop sizes: maps on one grid
    return sum(torch.nn.functional.interpolate(cam[None], size=(side, side), mode="bilinear")[0, 0]
               if cam.shape[-1] != side else cam[0] for cam in cams).numpy()


def _saliency(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    x = x.clone().requires_grad_(True)
    with torch.enable_grad():
        model(x).sum().backward()
    g = (x.grad * x).abs()
    # Reduce every non-spatial axis: frames (B,3,H,W) / sequences (B,T,3,H,W) / clips (B,3,T,H,W).
    return g.reshape(-1, g.shape[-2], g.shape[-1]).sum(0).detach().numpy()


def face_heatmap(model: torch.nn.Module, crops: np.ndarray) -> np.ndarray:
    """Heat map in [0, 1] at crop size for the crop(s) of one face.

    ``crops`` is (H, W, 3) for frame models or (T, H, W, 3) for temporal ones.
    """
    spec = model.input_spec
    was_training = model.training
    model.eval()
    try:
        if spec.kind == "frame":
            x = crops_to_tensor(crops[None] if crops.ndim == 3 else crops[:1], spec)
            layer = model.cam_layer() if hasattr(model, "cam_layer") else None
            heat = _gradcam(model, x, layer) if layer is not None else _saliency(model, x)
        else:
            seq = crops if crops.ndim == 4 else crops[None].repeat(spec.frames, 0)
            heat = _saliency(model, sequence_to_tensor(seq, spec))
    finally:
        model.train(was_training)
    size = spec.size
    heat = cv2.resize(heat.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
    heat -= heat.min()
    peak = heat.max()
    return heat / peak if peak > 0 else heat


def save_heatmap_png(crop: np.ndarray, heat: np.ndarray, path: str | Path, title: str = "") -> Path:
    """Write ``crop | heat overlay`` side by side as a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)[:, :, ::-1]
    overlay = (0.55 * crop + 0.45 * colour).clip(0, 255).astype(np.uint8)
    panel = np.concatenate([crop, overlay], axis=1)
    if title:
        panel = np.concatenate([np.full((22, panel.shape[1], 3), 255, np.uint8), panel], axis=0)
        cv2.putText(panel, title, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), panel[:, :, ::-1])
    return path
