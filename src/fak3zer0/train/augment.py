"""Training augmentations for uint8 RGB face crops, compression robustness first.

One draw of parameters per training item, applied identically to every frame of a window
(so a clip stays temporally consistent). Order: horizontal flip, downscale-upscale,
Gaussian blur, colour jitter, Gaussian noise, JPEG re-compression (last, as in the wild).

Config (``augment:`` section; ``p`` is the probability of each step)::

    augment:
      hflip: 0.5
      downscale: {p: 0.2, scale: [0.4, 0.9]}
      blur: {p: 0.2, sigma: [0.3, 1.5]}
      color_jitter: {p: 0.5, brightness: 0.2, contrast: 0.2, saturation: 0.2}
      noise: {p: 0.2, std: [2.0, 8.0]}        # in 0..255 units
      jpeg: {p: 0.5, quality: [40, 95]}
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from fak3zer0.errors import ConfigError

DEFAULT_AUGMENT: dict[str, Any] = {
    "hflip": 0.5,
    "downscale": {"p": 0.2, "scale": [0.4, 0.9]},
    "blur": {"p": 0.2, "sigma": [0.3, 1.5]},
    "color_jitter": {"p": 0.5, "brightness": 0.2, "contrast": 0.2, "saturation": 0.2},
    "noise": {"p": 0.2, "std": [2.0, 8.0]},
    "jpeg": {"p": 0.5, "quality": [40, 95]},
}
_STEP_KEYS = {
    "downscale": {"p", "scale"},
    "blur": {"p", "sigma"},
    "color_jitter": {"p", "brightness", "contrast", "saturation"},
    "noise": {"p", "std"},
    "jpeg": {"p", "quality"},
}


def _range(v: Any, name: str) -> tuple[float, float]:
    if isinstance(v, (int, float)):
        return float(v), float(v)
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise ConfigError(f"augment.{name} must be a number or [low, high], not {v!r}")
    lo, hi = float(v[0]), float(v[1])
    if lo > hi:
        raise ConfigError(f"augment.{name}: low {lo} is above high {hi}")
    return lo, hi


class Augmenter:
    """Callable ``(crops: list[HxWx3 uint8], rng) -> list[HxWx3 uint8]``; picklable for workers."""

    def __init__(self, cfg: dict[str, Any] | None) -> None:
        cfg = dict(cfg or {})
        unknown = set(cfg) - set(_STEP_KEYS) - {"hflip", "enabled"}
        if unknown:
            known = sorted(set(_STEP_KEYS) | {"hflip", "enabled"})
            raise ConfigError(f"augment: unknown key(s) {sorted(unknown)}; known: {known}")
        self.enabled = bool(cfg.get("enabled", True))
        self.hflip = float(cfg.get("hflip", 0.0) or 0.0)
        self.steps: dict[str, dict[str, Any]] = {}
        for name, keys in _STEP_KEYS.items():
            step = cfg.get(name)
            if not step:
                continue
            if not isinstance(step, dict):
                raise ConfigError(f"augment.{name} must be a mapping like {DEFAULT_AUGMENT[name]}")
            bad = set(step) - keys
            if bad:
                raise ConfigError(f"augment.{name}: unknown key(s) {sorted(bad)}; known: {sorted(keys)}")
            s = dict(step)
            s["p"] = float(s.get("p", 1.0))
            for k in keys - {"p"}:
                if k in s:
                    s[k] = _range(s[k], f"{name}.{k}") if k in ("scale", "sigma", "std", "quality") else float(s[k])
            self.steps[name] = s

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        """Sample the parameters of one item (a fixed number of draws per step: reproducible)."""
        out: dict[str, Any] = {}
        u = rng.random(8)
        out["hflip"] = bool(u[0] < self.hflip)
        for j, (name, s) in enumerate(self.steps.items(), start=1):
            vals = rng.random(4)
            if u[j] >= s["p"]:
                continue
            if name == "color_jitter":
                out[name] = tuple(1.0 + s.get(k, 0.0) * (2 * v - 1)
                                  for k, v in zip(("brightness", "contrast", "saturation"), vals))
            else:
                key = {"downscale": "scale", "blur": "sigma", "noise": "std", "jpeg": "quality"}[name]
                lo, hi = s[key]
                out[name] = lo + (hi - lo) * vals[0]
                if name == "noise":
                    out["noise_seed"] = int(vals[1] * 2 ** 31)
        return out

    def apply(self, img: np.ndarray, prm: dict[str, Any]) -> np.ndarray:
        h, w = img.shape[:2]
        if prm.get("hflip"):
            img = img[:, ::-1]
        if "downscale" in prm:
            sw, sh = max(1, int(round(w * prm["downscale"]))), max(1, int(round(h * prm["downscale"])))
            img = cv2.resize(np.ascontiguousarray(img), (sw, sh), interpolation=cv2.INTER_AREA)
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        if "blur" in prm:
            img = cv2.GaussianBlur(np.ascontiguousarray(img), (0, 0), sigmaX=float(prm["blur"]))
        if "color_jitter" in prm or "noise" in prm:
            x = img.astype(np.float32)
            if "color_jitter" in prm:
                b, c, s = prm["color_jitter"]
                x *= b
                x = (x - x.mean()) * c + x.mean()
                gray = x @ np.array([0.299, 0.587, 0.114], np.float32)
                x = (x - gray[..., None]) * s + gray[..., None]
            if "noise" in prm:
                x += np.random.default_rng(prm["noise_seed"]).normal(0.0, prm["noise"], x.shape).astype(np.float32)
            img = np.clip(x + 0.5, 0, 255).astype(np.uint8)
        if "jpeg" in prm:
            bgr = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR)
            ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(round(prm["jpeg"]))])
            if ok:
                img = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        return np.ascontiguousarray(img, dtype=np.uint8)

    def __call__(self, crops: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
        if not self.enabled:
            return crops
        prm = self.draw(rng)
        return [self.apply(c, prm) for c in crops]
