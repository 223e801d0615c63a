"""Training configuration: defaults, YAML loading, dotted overrides, validation.

A config is a nested dict with sections ``model``, ``data``, ``augment``, ``optim``,
``sched``, ``train``, ``output`` (reference: ``docs/training.md``). Files only need the keys
they change; everything else comes from :data:`DEFAULTS`. Unknown keys are errors (a typo
must not silently train something else), except inside ``model.kwargs``.
"""
from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any, Iterable

import yaml

from fak3zer0.errors import ConfigError
from fak3zer0.train.augment import DEFAULT_AUGMENT

DEFAULTS: dict[str, Any] = {
    "model": {
        "name": "meso4",
        "pretrained": None,     # weight tag of the registry (e.g. meso4: df / f2f)
        "checkpoint": None,     # start from the weights of a fak3zer0 checkpoint
        "kwargs": {},           # builder keyword arguments (e.g. size, dropout)
    },
    "data": {
        "sources": [],          # cache folders, or {root:, layout:}, or {cache:, train_splits:, val_splits:, name:}
        "layout": None,         # layout for sources that are dataset folders, not caches
        "train_splits": ["train"],
        "val_splits": ["val"],
        "val_fraction": 0.2,    # used only when no entry is in a val split: share of groups held out
        "size": None,           # model input size (default: the model's)
        "frames": None,         # frames per clip for temporal models (default: the model's)
        "max_crops_per_video": None,  # frame models: use at most this many crops per video
        "preload": "auto",      # keep crops in memory: true / false / auto (if under 2 GiB)
        "synthesis": None,      # sbi: add a self-blended fake per real training item
        "synthesis_lower_face": 0.0,  # share of those fakes blended over the lower face only (lip-sync-like)
        "preprocess_frames": 32,  # frames per video when a dataset must be preprocessed first
    },
    "augment": copy.deepcopy(DEFAULT_AUGMENT),
    "optim": {
        "name": "adamw",        # adamw | sgd
        "lr": 1e-3,
        "weight_decay": 1e-4,
        "momentum": 0.9,        # sgd only
        "nesterov": True,       # sgd only
        "betas": [0.9, 0.999],  # adamw only
    },
    "sched": {
        "name": "cosine",       # cosine | step | constant
        "warmup_epochs": 0.0,   # linear warm-up (fractions allowed)
        "min_lr_ratio": 0.01,   # cosine floor, as a fraction of lr
        "step_size": 10,        # step: epochs between decays
        "gamma": 0.1,           # step: decay factor
    },
    "train": {
        "epochs": 10,
        "batch_size": 32,
        "eval_batch_size": None,  # default: 2 x batch_size, at most defaults.CPU_BATCH_SIZE on a CPU
        "seed": 0,
        "num_workers": 0,
        "device": "auto",       # auto | cpu | cuda | cuda:N
        "threads": None,        # torch CPU threads (None: leave torch's default)
        "amp": False,           # mixed precision, CUDA only (ignored on CPU)
        "grad_clip": None,      # max gradient norm
        "balance": "none",      # none | weighted_sampler | pos_weight
        "select": "video_auc",  # best.pt by: video_auc | frame_auc | val_loss
        "resume": False,        # continue output.dir/output.name/last.pt
        "calibrate": True,      # fit temperature + pick aggregation on val after training
    },
    "output": {
        "dir": "runs",
        "name": None,           # default: <model>-<YYYYmmdd-HHMMSS>
        "overwrite": False,     # allow reusing an existing run folder without resume
    },
}

_FREE_FORM = {("model", "kwargs"), ("augment",)}
_CHOICES = {
    ("optim", "name"): ("adamw", "sgd"),
    ("sched", "name"): ("cosine", "step", "constant"),
    ("train", "balance"): ("none", "weighted_sampler", "pos_weight"),
    ("train", "select"): ("video_auc", "frame_auc", "val_loss"),
}
_FLOATS = {("optim", "lr"), ("optim", "weight_decay"), ("optim", "momentum"), ("sched", "warmup_epochs"),
           ("sched", "min_lr_ratio"), ("sched", "gamma"), ("data", "val_fraction")}
_INTS = {("train", "epochs"), ("train", "batch_size"), ("train", "seed"), ("train", "num_workers"),
         ("sched", "step_size"), ("data", "preprocess_frames")}


def _merge(base: dict, new: dict, path: tuple[str, ...] = ()) -> dict:
    out = copy.deepcopy(base)
    for k, v in (new or {}).items():
        p = path + (str(k),)
        if p[:2] in _FREE_FORM or p[:1] in _FREE_FORM:
            if isinstance(v, dict) and isinstance(out.get(k), dict):
                out[k] = _merge(out[k], v, p)
            else:
                out[k] = copy.deepcopy(v)
            continue
        if k not in out:
            known = list(out)
            hint = difflib.get_close_matches(str(k), known, n=1)
            where = ".".join(p)
            raise ConfigError(f"unknown config key {where!r}" + (f" (did you mean {'.'.join(p[:-1] + (hint[0],))!r}?)"
                                                                 if hint else f"; known here: {', '.join(known)}"))
        if isinstance(out[k], dict) and not isinstance(v, dict) and p not in _FREE_FORM:
            raise ConfigError(f"config key {'.'.join(p)!r} is a section; give a mapping, not {v!r}")
        out[k] = _merge(out[k], v, p) if isinstance(out[k], dict) and isinstance(v, dict) else copy.deepcopy(v)
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.epochs=5"`` -> ``(["train", "epochs"], 5)``; the value is parsed as YAML."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} is not KEY=VALUE with a dotted key (e.g. train.epochs=5)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from None
    return key.split("."), value


def apply_overrides(config: dict, overrides: Iterable[str]) -> dict:
    """Return a copy of ``config`` with dotted ``KEY=VALUE`` overrides applied (values parsed as YAML)."""
    out = copy.deepcopy(config)
    for text in overrides or ():
        keys, value = parse_override(text)
        node = out
        for k in keys[:-1]:
            if not isinstance(node.get(k), dict):
                node[k] = {}
            node = node[k]
        node[keys[-1]] = value
    return out


def load_config_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config is a mapping of sections (model:, data:, ...)")
    return data


def _num(cfg: dict, sec: str, key: str, kind: type) -> None:
    v = cfg[sec][key]
    if v is None:
        return
    try:
        cfg[sec][key] = kind(float(v)) if kind is int and not isinstance(v, bool) else kind(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{sec}.{key} must be a number, not {v!r}") from None
    if kind is int and float(v) != cfg[sec][key]:
        raise ConfigError(f"{sec}.{key} must be a whole number, not {v!r}")


def resolve_config(config: dict | None = None, overrides: Iterable[str] = ()) -> dict:
    """Defaults + ``config`` + overrides, checked and normalised (numbers from strings like ``1e-3``)."""
    cfg = _merge(DEFAULTS, apply_overrides(config or {}, overrides))
    if cfg["augment"] in (None, False):
        cfg["augment"] = {"enabled": False}
    for sec, key in _FLOATS:
        _num(cfg, sec, key, float)
    for sec, key in _INTS:
        _num(cfg, sec, key, int)
    for (sec, key), allowed in _CHOICES.items():
        if cfg[sec][key] not in allowed:
            raise ConfigError(f"{sec}.{key} must be one of {allowed}, not {cfg[sec][key]!r}")
    if not cfg["model"]["name"]:
        raise ConfigError("model.name is required (see `fak3zer0 models`)")
    if not isinstance(cfg["model"]["kwargs"], dict):
        raise ConfigError("model.kwargs must be a mapping of builder arguments")
    src = cfg["data"]["sources"]
    cfg["data"]["sources"] = [src] if isinstance(src, (str, dict)) else list(src or [])
    for key in ("train_splits", "val_splits"):
        v = cfg["data"][key]
        cfg["data"][key] = [v] if isinstance(v, str) else list(v or [])
    if cfg["data"]["synthesis"] not in (None, "none", "sbi"):
        raise ConfigError(f"data.synthesis must be sbi or null, not {cfg['data']['synthesis']!r}")
    if cfg["data"]["synthesis"] == "none":
        cfg["data"]["synthesis"] = None
    lower = cfg["data"]["synthesis_lower_face"]
    if isinstance(lower, bool) or not isinstance(lower, (int, float)) or not 0.0 <= lower <= 1.0:
        raise ConfigError(f"data.synthesis_lower_face must be a share in [0, 1], not {lower!r}")
    if cfg["data"]["preload"] not in (True, False, "auto"):
        raise ConfigError("data.preload must be true, false or auto")
    for key in ("size", "frames", "max_crops_per_video"):
        _num(cfg, "data", key, int)
    for key in ("grad_clip",):
        _num(cfg, "train", key, float)
    if cfg["train"]["epochs"] < 1 or cfg["train"]["batch_size"] < 1:
        raise ConfigError("train.epochs and train.batch_size must be at least 1")
    if not 0.0 <= cfg["data"]["val_fraction"] < 1.0:
        raise ConfigError("data.val_fraction must be in [0, 1)")
    return cfg


def dump_config(cfg: dict, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None), encoding="utf-8")
