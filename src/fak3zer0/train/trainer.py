"""``train(config) -> run_dir``: fit a registered model on face-crop caches.

The run folder holds::

    config.yaml     the resolved config (defaults + file + overrides)
    last.pt         checkpoint after the latest epoch, with optimizer state (resume from it)
    best.pt         checkpoint of the best epoch (``train.select``), then calibrated on val:
                    temperature, aggregation rule (mean vs robust, by val video log loss),
                    threshold 0.5
    metrics.csv     one row per epoch: train loss, val loss, val frame/video AUC, lr, seconds
    loss.png, auc.png
    calibration.json, train.log

Deterministic on CPU for a given seed: every epoch reseeds torch from ``(seed, epoch)`` and
the augmentations of item i from ``(seed, epoch, i)``, so a resumed run reproduces an
uninterrupted one. Multi-GPU: launch the same command with ``torchrun --nproc_per_node N``;
``WORLD_SIZE`` > 1 switches on DistributedDataParallel, sharded sampling and rank-0-only
writing (the single-process path is the tested one).
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from fak3zer0.errors import ConfigError
from fak3zer0.evaluate.metrics import ROBUST_RULE, fit_temperature
from fak3zer0.evaluate.scoring import plain as _plain, predict_logits, resolve_device, summarise
from fak3zer0.models.checkpoint import atomic_torch_save, checkpoint_dict, read_checkpoint
from fak3zer0.train.augment import Augmenter
from fak3zer0.train.config import dump_config, load_config_file, resolve_config
from fak3zer0.train.data import (
    ArrayStore,
    CacheDataset,
    build_items,
    load_self_blend,
    open_sources,
    train_val_entries,
)

log = logging.getLogger("fak3zer0.train")
CSV_COLUMNS = ("epoch", "train_loss", "val_loss", "val_frame_auc", "val_video_auc", "lr", "seconds")
AGGREGATION_CANDIDATES = ("mean", ROBUST_RULE)


# ---------------------------------------------------------------- distributed

@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owned: bool = False  # we started the process group, so we end it

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def broadcast(self, obj: Any) -> Any:
        if not self.enabled:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def sum(self, *values: float) -> list[float]:
        if not self.enabled:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=_dist_device(self))
        torch.distributed.all_reduce(t)
        return t.cpu().tolist()


def _dist_device(d: _Dist) -> torch.device:
    return torch.device("cuda", d.local_rank) if torch.cuda.is_available() else torch.device("cpu")


def _init_distributed() -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    import torch.distributed as dist

    owned = not dist.is_initialized()
    if owned:  # long enough for rank 0 to validate (the others wait at a barrier)
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", timeout=timedelta(hours=2))
    d = _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), owned)
    if torch.cuda.is_available():
        torch.cuda.set_device(d.local_rank)
    return d


class EpochSampler(torch.utils.data.Sampler):
    """Shuffled (or class-weighted, with replacement) indices from ``(seed, epoch)``, sharded by rank.

    One sampler for one and many processes: every rank draws the same permutation and takes
    its ``rank::world`` share (padded to equal lengths, as DistributedSampler does).
    """

    def __init__(self, n: int, *, seed: int, weights: np.ndarray | None = None, rank: int = 0, world: int = 1) -> None:
        self.n, self.seed, self.rank, self.world = n, int(seed), rank, world
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        self.epoch = 0
        self.per_rank = math.ceil(n / world)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        total = self.per_rank * self.world
        if self.weights is not None:
            idx = torch.multinomial(self.weights, total, replacement=True, generator=g)
        else:
            idx = torch.randperm(self.n, generator=g)
            if total > self.n:
                idx = torch.cat([idx, idx[: total - self.n]])
        return iter(idx[self.rank::self.world].tolist())

    def __len__(self) -> int:
        return self.per_rank


# ---------------------------------------------------------------- pieces

def _lr_at(step: int, steps_per_epoch: int, cfg: dict) -> float:
    opt, sch, epochs = cfg["optim"], cfg["sched"], cfg["train"]["epochs"]
    base = opt["lr"]
    warm = int(round(sch["warmup_epochs"] * steps_per_epoch))
    if step < warm:
        return base * (step + 1) / warm
    if sch["name"] == "constant":
        return base
    if sch["name"] == "step":
        return base * sch["gamma"] ** ((step // steps_per_epoch) // max(1, sch["step_size"]))
    total = max(1, epochs * steps_per_epoch - warm)
    progress = min(1.0, (step - warm) / total)
    floor = sch["min_lr_ratio"]
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def _optimizer(model: torch.nn.Module, cfg: dict) -> torch.optim.Optimizer:
    o = cfg["optim"]
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)  # no weight decay on biases and norms
    groups = [{"params": decay, "weight_decay": o["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    if o["name"] == "sgd":
        nesterov = bool(o["nesterov"]) and o["momentum"] > 0
        return torch.optim.SGD(groups, lr=o["lr"], momentum=o["momentum"], nesterov=nesterov)
    return torch.optim.AdamW(groups, lr=o["lr"], betas=tuple(float(b) for b in o["betas"]))


def _build_model(cfg: dict):
    from fak3zer0.models import create_model

    m, d = cfg["model"], cfg["data"]
    kwargs = dict(m["kwargs"])
    for key in ("size", "frames"):
        if d[key] is not None:
            kwargs.setdefault(key, d[key])
    model = create_model(m["name"], pretrained=m["pretrained"], **kwargs)
    if m["checkpoint"]:
        ck = read_checkpoint(m["checkpoint"])
        if ck["model"] != m["name"]:
            raise ConfigError(f"model.checkpoint is a {ck['model']!r} checkpoint, model.name is {m['name']!r}")
        model.load_state_dict(ck["state_dict"])
    return model


def default_eval_batch_size(batch_size: int, device: torch.device) -> int:
    """Validation batch when the config gives none: twice the training batch (it fits, no gradients are kept),
    but at most ``defaults.CPU_BATCH_SIZE`` on a CPU, where small batches stay in the cache (validating Lite0 at
    224 px on 416 crops: 6.4-8.4 vs 15.6-16.1 s in batches of 8 vs 64, same logits; ``bench/eval_batch.py``)."""
    from fak3zer0.defaults import CPU_BATCH_SIZE

    return min(2 * batch_size, CPU_BATCH_SIZE) if device.type == "cpu" else 2 * batch_size


def _score_key(row: dict, select: str) -> tuple:
    """Larger is better; AUC undefined (one class) falls back to the loss."""
    loss = row.get("val_loss")
    neg_loss = -loss if loss is not None else -math.inf
    fa, va = row.get("val_frame_auc"), row.get("val_video_auc")
    if select == "val_loss":
        return (neg_loss,)
    if select == "frame_auc":
        return (fa if fa is not None else -1.0, neg_loss)
    return (va if va is not None else -1.0, fa if fa is not None else -1.0, neg_loss)


def _write_history(run_dir: Path, history: list[dict]) -> None:
    from fak3zer0.evaluate.plots import plot_curves

    with open(run_dir / "metrics.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for row in history:
            w.writerow({k: ("" if row.get(k) is None else row[k]) for k in CSV_COLUMNS})
    ep = [r["epoch"] for r in history]
    plot_curves(ep, {"train loss": [r["train_loss"] for r in history], "val loss": [r["val_loss"] for r in history]},
                run_dir / "loss.png", "BCE loss", "loss")
    plot_curves(ep, {"val frame AUC": [r["val_frame_auc"] for r in history],
                     "val video AUC": [r["val_video_auc"] for r in history]},
                run_dir / "auc.png", "AUC", "validation AUC")


def _run_dir(cfg: dict, resume: str | Path | None) -> tuple[Path, bool]:
    """``(run folder, resuming?)``."""
    if resume:
        run_dir = Path(resume)
        if not (run_dir / "last.pt").is_file():
            raise ConfigError(f"cannot resume: {run_dir}/last.pt not found")
        return run_dir, True
    out = cfg["output"]
    if cfg["train"]["resume"]:
        if not out["name"]:
            raise ConfigError("train.resume=true needs output.name (the run folder to continue) or --resume RUN_DIR")
        run_dir = Path(out["dir"]) / out["name"]
        return run_dir, (run_dir / "last.pt").is_file()
    name = out["name"] or f"{cfg['model']['name']}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(out["dir"]) / name
    if (run_dir / "last.pt").exists() and not out["overwrite"]:
        if out["name"]:
            raise ConfigError(f"{run_dir} already holds a run; use train.resume=true, output.overwrite=true "
                              "or another output.name")
        k = 2
        while (Path(out["dir"]) / f"{name}-{k}").exists():
            k += 1
        run_dir = Path(out["dir"]) / f"{name}-{k}"
    return run_dir, False


def _log_to(run_dir: Path) -> logging.Handler:
    h = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(h)
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)
    return h


# ---------------------------------------------------------------- the loop

def train(config: dict, *, resume: str | Path | None = None) -> Path:
    """Train the model a config describes; returns the run folder.

    Args:
        config: a config dict (sections as in ``docs/training.md``; missing keys take defaults).
        resume: a run folder to continue from its ``last.pt`` (same as ``train.resume=true``
            with ``output.name`` naming that folder). Raising ``train.epochs`` extends a run.
    """
    cfg = resolve_config(config)
    dist = _init_distributed()
    tcfg = cfg["train"]
    if tcfg["threads"]:
        torch.set_num_threads(int(tcfg["threads"]))
    device = _dist_device(dist) if dist.enabled else resolve_device(tcfg["device"])
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True

    run_dir, resuming = _run_dir(cfg, resume)
    run_dir = Path(dist.broadcast(str(run_dir)))
    handler = None
    if dist.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, run_dir / "config.yaml")
        handler = _log_to(run_dir)
    try:
        return _train(cfg, run_dir, resuming, dist, device)
    finally:
        if handler is not None:
            log.removeHandler(handler)
            handler.close()
        if dist.owned:
            torch.distributed.destroy_process_group()


def _train(cfg: dict, run_dir: Path, resuming: bool, dist: _Dist, device: torch.device) -> Path:
    tcfg, dcfg = cfg["train"], cfg["data"]
    seed = int(tcfg["seed"])
    torch.manual_seed(seed)
    model = _build_model(cfg)
    spec = model.input_spec
    log.info("model %s, input %s", cfg["model"]["name"], spec.to_dict())

    if not dcfg["sources"]:
        raise ConfigError("data.sources is empty: name at least one cache folder (or dataset with layout)")
    sources = []
    for turn in (True, False):  # rank 0 first: it alone preprocesses datasets into caches
        if dist.main == turn:
            sources = open_sources(dcfg["sources"], layout=dcfg["layout"], work_dir=Path(cfg["output"]["dir"]),
                                   frames=dcfg["preprocess_frames"])
        dist.barrier()
    train_keys, val_keys, how = train_val_entries(sources, dcfg["train_splits"], dcfg["val_splits"],
                                                  dcfg["val_fraction"])
    if not train_keys:
        raise ConfigError(f"no training entries in splits {dcfg['train_splits']} of {[s.name for s in sources]}")
    store = ArrayStore(sources, spec.size, need_crops=spec.kind != "landmarks", preload=dcfg["preload"],
                       keys=train_keys + val_keys)
    sbi = load_self_blend(dcfg["synthesis_lower_face"]) if dcfg["synthesis"] == "sbi" else None
    if sbi is not None and spec.kind == "landmarks":
        raise ConfigError("data.synthesis: sbi makes pixels; a landmarks model cannot use it")
    train_items = build_items(store, train_keys, spec, max_crops_per_video=dcfg["max_crops_per_video"],
                              synth_fakes=sbi is not None)
    val_items = build_items(store, val_keys, spec)
    train_ds = CacheDataset(store, train_items, spec, train=True, augment=Augmenter(cfg["augment"]), seed=seed,
                            self_blend=sbi)
    val_ds = CacheDataset(store, val_items, spec, train=False)
    labels = train_ds.labels()
    n_fake, n_real = int(labels.sum()), int(len(labels) - labels.sum())
    log.info("train: %d inputs (%d real, %d fake) from %d entries; val: %d inputs from %d entries (%s)",
             len(train_items), n_real, n_fake, len(train_keys), len(val_items), len(val_keys), how)
    if not val_items:
        log.warning("no validation data: best.pt will be the last epoch and no temperature is fitted")

    balance = tcfg["balance"]
    weights = None
    if balance == "weighted_sampler" and n_real and n_fake:
        weights = np.where(labels == 1, 1.0 / n_fake, 1.0 / n_real)
    sampler = EpochSampler(len(train_ds), seed=seed, weights=weights, rank=dist.rank, world=dist.world)
    bs = int(tcfg["batch_size"])
    drop_last = len(sampler) > bs and len(sampler) % bs == 1  # a batch of 1 breaks batch norm
    loader = torch.utils.data.DataLoader(train_ds, batch_size=bs, sampler=sampler, num_workers=int(tcfg["num_workers"]),
                                         drop_last=drop_last, pin_memory=device.type == "cuda")
    steps_per_epoch = max(1, len(loader))
    pos_weight = None
    if balance == "pos_weight" and n_real and n_fake:
        pos_weight = torch.tensor(n_real / n_fake, device=device)
    criterion = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)

    model.to(device)
    optimizer = _optimizer(model, cfg)
    start_epoch, global_step, history, best_key, best_epoch = 0, 0, [], None, None
    if resuming:
        ck = read_checkpoint(run_dir / "last.pt")
        model.load_state_dict(ck["state_dict"])
        optimizer.load_state_dict(ck["optimizer"])
        st = ck.get("train_state", {})
        start_epoch, global_step = int(ck.get("epoch", 0)), int(st.get("global_step", 0))
        history = list(st.get("history", []))
        best_key = tuple(st["best_key"]) if st.get("best_key") is not None else None
        best_epoch = st.get("best_epoch")
        log.info("resuming %s after epoch %d", run_dir, start_epoch)

    net: torch.nn.Module = model
    if dist.enabled:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dist.local_rank] if device.type == "cuda" else None)
    use_amp = bool(tcfg["amp"]) and device.type == "cuda"
    if tcfg["amp"] and not use_amp:
        log.info("train.amp ignored: mixed precision is used on CUDA only")
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    eval_bs = int(tcfg["eval_batch_size"] or default_eval_batch_size(bs, device))
    meta_base = {
        "train_config": cfg,
        "data": [s.describe() for s in sources],
        "val_split": how,
        "run_dir": str(run_dir),
        "torch": str(torch.__version__),
    }

    for epoch in range(start_epoch, int(tcfg["epochs"])):
        t0 = time.perf_counter()
        torch.manual_seed(seed * 1_000_003 + epoch + 1)
        sampler.set_epoch(epoch)
        train_ds.set_epoch(epoch)
        net.train()
        loss_sum, n_seen, lr = 0.0, 0, cfg["optim"]["lr"]
        for x, y, _ in loader:
            lr = _lr_at(global_step, steps_per_epoch, cfg)
            for g in optimizer.param_groups:
                g["lr"] = lr
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device_type="cuda", dtype=amp_dtype, enabled=use_amp):
                logits = net(x)
            loss = criterion(logits.float().reshape(-1), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if tcfg["grad_clip"]:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(tcfg["grad_clip"]))
            scaler.step(optimizer)
            scaler.update()
            global_step += 1
            loss_sum += float(loss.detach()) * len(y)
            n_seen += len(y)
        loss_sum, n_seen = dist.sum(loss_sum, n_seen)
        row: dict[str, Any] = {"epoch": epoch + 1, "train_loss": loss_sum / max(n_seen, 1), "val_loss": None,
                               "val_frame_auc": None, "val_video_auc": None, "lr": lr}
        val_summary = None
        if dist.main and val_items:
            vlog = predict_logits(model, val_ds, batch_size=eval_bs, device=device)
            vy = val_ds.labels()
            row["val_loss"] = float(torch.nn.functional.binary_cross_entropy_with_logits(
                torch.from_numpy(vlog), torch.from_numpy(vy).double()))
            val_summary = summarise(sources, val_items, vlog, rules=("mean",))
            row["val_frame_auc"] = val_summary["frame"]["auc"]
            row["val_video_auc"] = val_summary["video"]["auc"]
        row["seconds"] = round(time.perf_counter() - t0, 3)
        history.append(row)
        if dist.main:
            key = _score_key(row, tcfg["select"]) if val_items else (float(epoch),)
            improved = best_key is None or key > best_key
            if improved:
                best_key, best_epoch = key, epoch + 1
            metrics = {"epoch": epoch + 1, "train_loss": row["train_loss"], "val_loss": row["val_loss"],
                       "val": {k: val_summary[k] for k in ("frame", "video")} if val_summary else None}
            meta = dict(meta_base, epoch=epoch + 1, best_epoch=best_epoch)
            ck = checkpoint_dict(model, metrics=_plain(metrics), meta=_plain(meta))
            ck["epoch"] = epoch + 1
            if improved:
                atomic_torch_save(ck, run_dir / "best.pt")
            ck["optimizer"] = optimizer.state_dict()
            ck["train_state"] = _plain({"global_step": global_step, "history": history,
                                        "best_key": list(best_key), "best_epoch": best_epoch})
            atomic_torch_save(ck, run_dir / "last.pt")
            _write_history(run_dir, history)
            log.info("epoch %d/%d  train loss %.4f  val loss %s  val AUC frame %s video %s  lr %.2e  %.1fs",
                     epoch + 1, tcfg["epochs"], row["train_loss"], _fmt(row["val_loss"]), _fmt(row["val_frame_auc"]),
                     _fmt(row["val_video_auc"]), lr, row["seconds"])
        dist.barrier()

    if dist.main:
        if not history:
            raise ConfigError(f"nothing to train: train.epochs={tcfg['epochs']} and the run already has "
                              f"{start_epoch} epochs")
        if tcfg["calibrate"] and val_items:
            finalize_best(run_dir, model, val_ds, sources, device=device, batch_size=eval_bs)
        _write_history(run_dir, history)
    dist.barrier()
    return run_dir


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def finalize_best(run_dir: Path, model: torch.nn.Module, val_ds: CacheDataset, sources: Sequence,
                  *, device: torch.device | str = "cpu", batch_size: int = 64) -> dict:
    """Calibrate ``best.pt`` on the val items: temperature, aggregation rule, threshold 0.5.

    The temperature minimises the val NLL of the model inputs; the aggregation rule is the
    one of ``mean`` / the robust rule with the lower val *video* log loss after scaling.
    Writes ``calibration.json`` and returns its content.
    """
    path = Path(run_dir) / "best.pt"
    ck = read_checkpoint(path)
    model.load_state_dict(ck["state_dict"])
    logits = predict_logits(model, val_ds, batch_size=batch_size, device=device)
    labels = val_ds.labels()
    temperature = fit_temperature(logits, labels)
    before = summarise(sources, val_ds.items, logits, rules=AGGREGATION_CANDIDATES)
    after = summarise(sources, val_ds.items, logits, temperature=temperature, rules=AGGREGATION_CANDIDATES)
    losses = {r: after["video_by_rule"][r]["log_loss"] for r in AGGREGATION_CANDIDATES}
    rule = min(AGGREGATION_CANDIDATES, key=lambda r: (math.inf if losses[r] is None else losses[r],
                                                      AGGREGATION_CANDIDATES.index(r)))
    report = {
        "temperature": temperature,
        "aggregation": rule,
        "threshold": 0.5,
        "fitted_on": "val",
        "n_inputs": int(len(labels)),
        "frame_ece_before": before["frame"]["ece"], "frame_ece_after": after["frame"]["ece"],
        "frame_log_loss_before": before["frame"]["log_loss"], "frame_log_loss_after": after["frame"]["log_loss"],
        "video_log_loss_by_rule": losses,
        "video_ece_after": after["video_by_rule"][rule]["ece"],
    }
    ck["calibration"] = _plain({"temperature": float(temperature), "fitted_on": "val",
                                "ece_before": before["frame"]["ece"], "ece_after": after["frame"]["ece"]})
    ck["aggregation"] = rule
    ck["threshold"] = 0.5
    ck["metrics"] = _plain(dict(ck.get("metrics") or {}, calibrated={"frame": after["frame"],
                                                                      "video": after["video_by_rule"][rule]}))
    atomic_torch_save(ck, path)
    (Path(run_dir) / "calibration.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    log.info("best.pt calibrated: T=%.3f, aggregation %s, frame ECE %s -> %s", temperature, rule,
             _fmt(report["frame_ece_before"]), _fmt(report["frame_ece_after"]))
    return report


def train_from_cli(config_path: str | Path | None, overrides: Sequence[str] = (),
                   resume: str | Path | None = None) -> Path:
    """Entry point for ``fak3zer0 train CONFIG [KEY=VALUE ...] [--resume RUN_DIR]``.

    Args:
        config_path: YAML config file. May be ``None`` with ``resume``: the run's own
            ``config.yaml`` is used.
        overrides: dotted ``KEY=VALUE`` strings applied after the file, values parsed as YAML
            (``model.name=meso4 train.epochs=5 data.sources=[a,b] optim.lr=3e-4``).
        resume: a run folder to continue from its ``last.pt``; with ``train.epochs`` raised
            by an override it trains further.

    Returns:
        the run folder (``config.yaml``, ``best.pt``, ``last.pt``, ``metrics.csv``, plots).
    """
    if config_path is None and resume is None:
        raise ConfigError("give a config file, or --resume RUN_DIR")
    base = load_config_file(config_path) if config_path is not None else load_config_file(Path(resume) / "config.yaml")
    cfg = resolve_config(base, overrides)
    if resume is not None:
        cfg["output"]["dir"], cfg["output"]["name"] = str(Path(resume).parent), Path(resume).name
    if not logging.getLogger().handlers and not log.handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    return train(cfg, resume=resume)

