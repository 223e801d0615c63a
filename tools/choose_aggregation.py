"""Choose a model's frame -> video aggregation rule on validation videos.

    python tools/choose_aggregation.py [--model fak3zer0-default] [--cache /work/cache/dev_videos] \\
        [--out bench/results/aggregation.json]
    python tools/choose_aggregation.py --out-of-fold runs/source_cv [--compare-flip] [--max-auc-drop 0.01] \\
        --out bench/results/aggregation_oof.json

Scores every usable entry of a face-crop cache once (raw logits, cached under /tmp so a rerun does
not run the model again), then, with the package's own scoring (``evaluate.scoring.summarise``: per
face track aggregate with the rule, a video takes its most suspicious face, as the Detector does)
and metrics (``evaluate.metrics``), reports video-level AUC, log loss and accuracy for every rule in
``AGGREGATION_RULES`` on: the ``val`` split, the ``test`` split (both the default recipe's split,
``fak3zer0.train.recipe.recipe_split``), DFDC sources (source name starts with "DFDC", all splits),
talking-face sources (everything else, all splits) and all videos.

``--out-of-fold WORK`` scores with the fold models of a source-level cross-validation
(``tools/source_cv.py --work WORK``) instead: each talking-face clip by the fold model whose training
left its source out (logits divided by that model's temperature). The rule is then chosen on those
clips outside the test groups: material from sources the recipe never trained on, as users' is.
``--compare-flip`` also scores each crop with its mirror image (mean logit) and reports the paired
AUC difference, log loss and false alarms against plain scoring in every cell.

The rule is chosen on ``val`` (or the out-of-fold cell) only: the lowest video log loss (ties ->
``mean``). A rule other than ``mean`` is taken only if it wins clearly: the 95 % interval of its paired
log-loss difference to ``mean`` over a bootstrap of those videos (--bootstrap resamples) lies entirely
below zero (and, with --max-auc-drop D, its AUC is at most D below mean's). Otherwise ``mean`` stays.
The other cells are reported, never used to decide. The checkpoint is not modified.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results" / "aggregation.json"
DFDC_PREFIX = "DFDC"


def _cells(sources, items, covered=None) -> dict[str, list[int]]:
    """Cell name -> indices into ``items``. ``val``/``test`` are the default recipe's split
    (``recipe_split``: what the shipped weights were trained without), not the cache's own.
    With ``covered`` (out-of-fold mode) only the out-of-fold cells, over the covered items."""
    from fak3zer0.train.recipe import recipe_split

    def entry(it):
        return sources[it.src].entries[it.entry]

    split = {}

    def split_of(e):
        if e.group not in split:
            split[e.group] = recipe_split(e.group)
        return split[e.group]

    if covered is not None:
        cells = {
            "oof": lambda e, j: covered[j] and split_of(e) != "test",
            "oof_test": lambda e, j: covered[j] and split_of(e) == "test",
            "oof_all": lambda e, j: covered[j],
        }
    else:
        cells = {
            "val": lambda e, j: split_of(e) == "val",
            "test": lambda e, j: split_of(e) == "test",
            "dfdc": lambda e, j: e.source.startswith(DFDC_PREFIX),
            "talking_face": lambda e, j: not e.source.startswith(DFDC_PREFIX),
            "all": lambda e, j: True,
        }
    return {name: [j for j, it in enumerate(items) if want(entry(it), j)] for name, want in cells.items()}


CELL_TITLES = {
    "val": "val split",
    "test": "test split",
    "dfdc": "DFDC sources (all splits)",
    "talking_face": "talking-face sources (all splits)",
    "all": "all videos",
    "oof": "out of fold, train+val groups",
    "oof_test": "out of fold, test groups",
    "oof_all": "out of fold, all",
}


def _weights_digest(state_dict) -> str:
    h = hashlib.sha256()
    for k in sorted(state_dict):
        h.update(k.encode())
        h.update(state_dict[k].detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _items_digest(items) -> str:
    h = hashlib.sha256()
    for it in items:
        h.update(repr((it.src, it.entry, it.track, it.crops, it.cover, it.label)).encode())
    return h.hexdigest()[:16]


def mirror_mean(model):
    """``model`` whose logit is the mean of the crop's and its mirror image's (flip test-time augmentation)."""
    import torch

    class MirrorMean(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return (self.inner(x) + self.inner(torch.flip(x, dims=[-1]))) / 2

    return MirrorMean(model)


def score_cache(model_spec: str, cache: Path, logits_dir: Path, batch_size: int, tta: str = "none"):
    """``(loaded, sources, items, logits, cache_info)``; logits are read from ``logits_dir`` when cached.
    ``tta="flip"``: each logit is the mean of the crop's and its mirror image's."""
    import torch

    from fak3zer0.evaluate.runner import _eval_dataset, load_model
    from fak3zer0.evaluate.scoring import predict_logits
    from fak3zer0.train.data import open_sources

    loaded = load_model(model_spec)
    sources = open_sources([str(cache)])
    keys, items, ds = _eval_dataset(sources, None, loaded.input_spec)
    if not keys:
        raise SystemExit(f"no usable entries in {cache}")
    index_sha = hashlib.sha1((cache / "index.jsonl").read_bytes()).hexdigest()[:16]
    tag = f"{_weights_digest(loaded.model.state_dict())}-{index_sha}-{_items_digest(items)}"
    tag += "-flip" if tta == "flip" else ""
    logits_dir.mkdir(parents=True, exist_ok=True)
    cached = logits_dir / f"logits-{tag}.npy"
    t0 = time.perf_counter()
    if cached.is_file():
        logits = np.load(cached)
        how = f"reused {cached}"
    else:
        model = loaded.model.eval() if tta == "none" else mirror_mean(loaded.model.eval())
        logits = predict_logits(model, ds, batch_size=batch_size, device="cpu")
        tmp = cached.with_suffix(".tmp.npy")
        np.save(tmp, logits)
        os.replace(tmp, cached)
        how = f"scored in {time.perf_counter() - t0:.0f} s ({torch.get_num_threads()} torch threads), saved to {cached}"
    if len(logits) != len(items):
        raise SystemExit(f"{cached} holds {len(logits)} logits for {len(items)} inputs; delete it")
    info = {"cache": str(cache), "index_sha1": index_sha, "entries": len(keys), "inputs": len(items),
            "tta": tta, "logits": how}
    return loaded, sources, items, logits, info


def out_of_fold(work: Path, cache: Path, logits_dir: Path, batch_size: int, tta: str = "none"):
    """Source-CV scores: ``(sources, items, logits, covered, info)``, each item's logit from the fold model
    (``work/fold{i}/model.pt``, tools/source_cv.py) whose training left the item's source out, already
    divided by that model's temperature; ``covered`` marks the items some fold held out."""
    from fak3zer0.train.recipe import source_folds

    runs = sorted(work.glob("fold*/model.pt"), key=lambda q: int(q.parent.name[4:]))
    if not runs or [q.parent.name for q in runs] != [f"fold{i}" for i in range(len(runs))]:
        raise SystemExit(f"{work} holds no fold0..foldK-1/model.pt: run tools/source_cv.py --work {work} first")
    folds = source_folds(cache, len(runs))
    base = None
    info = {"work": str(work), "folds": folds, "models": []}
    for run, held in zip(runs, folds):
        loaded, sources, items, logits, one = score_cache(str(run), cache, logits_dir, batch_size, tta)
        if base is None:
            base = sources, items, np.full(len(items), np.nan), np.zeros(len(items), bool), _items_digest(items)
        elif _items_digest(items) != base[4]:
            raise SystemExit(f"{run} was scored on different inputs than {runs[0]}")
        out, covered = base[2], base[3]
        for j, it in enumerate(items):
            if sources[it.src].entries[it.entry].source in held:
                out[j], covered[j] = logits[j] / loaded.temperature, True
        info["models"].append({"checkpoint": str(run), "version": loaded.version,
                               "temperature": loaded.temperature, "logits": one["logits"]})
    info.update({k: one[k] for k in ("cache", "index_sha1", "entries", "inputs", "tta")})
    sources, items, out, covered, _ = base
    return sources, items, np.where(covered, out, 0.0), covered, info


def bootstrap_val(sources, items, probs, rules, n_resamples: int, seed: int) -> dict:
    """Paired bootstrap over videos of the video log loss of each rule, and its difference to ``mean``."""
    from fak3zer0.evaluate.metrics import log_loss
    from fak3zer0.evaluate.scoring import video_scores

    per_rule = {}
    keys0 = None
    for r in rules:
        keys, vp, vy = video_scores(sources, items, probs, r)
        if keys0 is None:
            keys0, y = keys, vy
        assert keys == keys0  # same videos, same order: the resamples are paired
        per_rule[r] = vp
    n = len(keys0)
    rng = np.random.default_rng(seed)
    ll = {r: np.empty(n_resamples) for r in rules}
    for b in range(n_resamples):
        idx = rng.integers(0, n, n)
        for r in rules:
            ll[r][b] = log_loss(y[idx], per_rule[r][idx])
    out = {"videos": int(n), "resamples": int(n_resamples), "seed": int(seed), "by_rule": {}}
    for r in rules:
        d = ll[r] - ll["mean"]
        out["by_rule"][r] = {
            "log_loss_ci95": [float(np.percentile(ll[r], 2.5)), float(np.percentile(ll[r], 97.5))],
            "diff_vs_mean": float(log_loss(y, per_rule[r]) - log_loss(y, per_rule["mean"])),
            "diff_vs_mean_ci95": [float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))],
            "p_better_than_mean": None if r == "mean" else float(np.mean(d < 0)),
        }
    return out


def decide(val_by_rule: dict, boot: dict, rules, max_auc_drop: float | None = None) -> dict:
    ll = {r: val_by_rule[r]["log_loss"] for r in rules}
    best = min(rules, key=lambda r: (np.inf if ll[r] is None else ll[r], rules.index(r)))
    if best == "mean":
        return {"rule": "mean", "best_on_val": best,
                "reason": "mean has the lowest video log loss in the decision cell"}
    b = boot["by_rule"][best]
    lo, hi = b["diff_vs_mean_ci95"]
    auc, auc_mean = val_by_rule[best]["auc"], val_by_rule["mean"]["auc"]
    if max_auc_drop is not None and auc is not None and auc_mean is not None and auc < auc_mean - max_auc_drop:
        return {"rule": "mean", "best_on_val": best,
                "reason": f"{best} has the lowest video log loss but its AUC {auc:.3f} is more than "
                          f"{max_auc_drop} below mean's {auc_mean:.3f}: mean stays"}
    if hi < 0:
        return {"rule": best, "best_on_val": best,
                "reason": f"{best} has the lowest video log loss in the decision cell and the 95 % bootstrap interval of its "
                          f"difference to mean, [{lo:+.4f}, {hi:+.4f}], is below zero"}
    return {"rule": "mean", "best_on_val": best,
            "reason": f"{best} has the lowest video log loss ({ll[best]:.4f} vs {ll['mean']:.4f} for mean), "
                      f"but the 95 % bootstrap interval of the difference over {boot['videos']} videos, "
                      f"[{lo:+.4f}, {hi:+.4f}], includes zero: within noise, mean stays"}


def _f(v, fmt="{:.3f}") -> str:
    return "–" if v is None else fmt.format(v)


def flip_comparison(sources, items, plain, flipped, rule: str, threshold: float) -> dict:
    """Flip test-time augmentation against plain scoring on the same videos (logits already / T)."""
    from fak3zer0.evaluate.metrics import log_loss, paired_auc_difference, roc_auc, sigmoid
    from fak3zer0.evaluate.scoring import video_scores

    out = {}
    for name, logits in (("plain", plain), ("flip", flipped)):
        _, vp, vy = video_scores(sources, items, sigmoid(logits), rule)
        out[name] = {"auc": roc_auc(vy, vp), "log_loss": log_loss(vy, vp),
                     "real_flagged": _share(vp[vy == 0] >= threshold),
                     "fake_flagged": _share(vp[vy == 1] >= threshold), "videos": int(len(vy))}
        out[f"_{name}"] = (vy, vp)
    (y, a), (_, b) = out.pop("_flip"), out.pop("_plain")
    out["flip_minus_plain"] = paired_auc_difference(y, a, b) if len(set(y.tolist())) == 2 else None
    return out


def _share(flags: np.ndarray) -> float | None:
    return float(flags.mean()) if flags.size else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="fak3zer0-default", help="checkpoint, run folder or shipped model name")
    ap.add_argument("--out-of-fold", type=Path, default=None, metavar="WORK",
                    help="instead of --model: the fold models of a source-CV run (tools/source_cv.py --work WORK); "
                         "every talking-face clip is scored by the fold model that did not train on its source, "
                         "and the rule is chosen on those clips (test groups excluded)")
    ap.add_argument("--compare-flip", action="store_true",
                    help="also score every crop with its mirror image (mean logit) and compare with plain scoring")
    ap.add_argument("--cache", type=Path, default=Path("/work/cache/dev_videos"), help="face-crop cache of videos")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON result (default bench/results/aggregation.json)")
    ap.add_argument("--logits-dir", type=Path, default=Path("/tmp/fak3zer0-aggregation"),
                    help="where raw logits are cached between runs (keyed by weights and cache contents)")
    ap.add_argument("--bootstrap", type=int, default=1000, help="resamples of the decision cell's videos")
    ap.add_argument("--max-auc-drop", type=float, default=None,
                    help="a rule other than mean must also keep video AUC within this of mean's (default: no check)")
    ap.add_argument("--registered", type=Path, default=None, metavar="FILE",
                    help="text of the decision rule as written down before scoring; stored in the JSON")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default $FAK3ZER0_THREADS)")
    args = ap.parse_args(argv)

    from fak3zer0.api.detector import set_threads
    from fak3zer0.evaluate.metrics import AGGREGATION_RULES, sigmoid
    from fak3zer0.evaluate.scoring import summarise

    set_threads(args.threads)
    rules = list(AGGREGATION_RULES)
    flipped = None
    if args.out_of_fold:
        sources, items, logits, covered, info = out_of_fold(args.out_of_fold, args.cache, args.logits_dir,
                                                            args.batch_size)
        if args.compare_flip:
            flipped = out_of_fold(args.out_of_fold, args.cache, args.logits_dir, args.batch_size, "flip")[2]
        temperature, threshold, own_rule, decide_on = 1.0, 0.5, "mean", "oof"
        model = {"out_of_fold": str(args.out_of_fold)}
        all_cells = _cells(sources, items, covered)
    else:
        loaded, sources, items, logits, info = score_cache(args.model, args.cache, args.logits_dir, args.batch_size)
        if args.compare_flip:
            flipped = score_cache(args.model, args.cache, args.logits_dir, args.batch_size, "flip")[3]
            flipped = flipped / loaded.temperature
        temperature, threshold, decide_on = loaded.temperature, loaded.threshold, "val"
        own_rule = loaded.aggregation if loaded.aggregation in AGGREGATION_RULES else "mean"
        model = {"model": args.model, "version": loaded.version}
        all_cells = _cells(sources, items)
    kw = {"temperature": temperature, "threshold": threshold, "rule": own_rule, "rules": rules}

    cells = {}
    for name, sel in all_cells.items():
        sub = [items[j] for j in sel]
        s = summarise(sources, sub, logits[sel], **kw)
        vids = {(it.src, it.entry): it.label for it in sub}
        cells[name] = {
            "title": CELL_TITLES[name],
            "counts": {"videos": len(vids), "real": sum(v == 0 for v in vids.values()),
                       "fake": sum(v == 1 for v in vids.values()), "inputs": len(sub)},
            "frame": s["frame"],
            "video_by_rule": {r: s["video_by_rule"][r] for r in rules},
        }
        if flipped is not None:
            cells[name]["flip_tta"] = flip_comparison(sources, sub, logits[sel] / temperature, flipped[sel],
                                                      own_rule, threshold)

    sel = all_cells[decide_on]
    probs = sigmoid(logits[sel] / temperature)
    boot = bootstrap_val(sources, [items[j] for j in sel], probs, rules, args.bootstrap, args.seed)
    decision = decide(cells[decide_on]["video_by_rule"], boot, rules, args.max_auc_drop)

    what = ("out-of-fold source-CV scores, " + ", ".join(f"{m['checkpoint']} T={m['temperature']:.3f}"
                                                          for m in info["models"])
            if args.out_of_fold else
            f"model {args.model} (version {loaded.version or '-'}, T = {temperature:.3f}, threshold {threshold})")
    print(f"{what}; its rule: {own_rule}; {info['entries']} videos, {info['inputs']} inputs")
    print(f"{'cell':<34} {'videos (real/fake)':<19} {'rule':<11} {'AUC':>6} {'logloss':>8} {'acc':>6}")
    for name, c in cells.items():
        n = c["counts"]
        for r in rules:
            m = c["video_by_rule"][r]
            print(f"{c['title']:<34} {n['videos']:>3} ({n['real']:>2}/{n['fake']:>2}){'':<9} {r:<11} "
                  f"{_f(m['auc']):>6} {_f(m['log_loss'], '{:.4f}'):>8} {_f(m['accuracy']):>6}")
    print(f"\nbootstrap over {boot['videos']} videos of '{CELL_TITLES[decide_on]}' ({boot['resamples']} resamples, "
          f"seed {boot['seed']}):")
    for r in rules:
        b = boot["by_rule"][r]
        print(f"  {r:<11} log loss 95% [{b['log_loss_ci95'][0]:.4f}, {b['log_loss_ci95'][1]:.4f}]  "
              f"minus mean {b['diff_vs_mean']:+.4f} [{b['diff_vs_mean_ci95'][0]:+.4f}, {b['diff_vs_mean_ci95'][1]:+.4f}]"
              f"  P(better than mean) {_f(b['p_better_than_mean'], '{:.2f}')}")
    print(f"\ndecision: {decision['rule']} -- {decision['reason']}")
    if flipped is not None:
        print(f"\nflip test-time augmentation vs plain ({own_rule} rule):")
        for name, c in cells.items():
            f = c["flip_tta"]
            d = f["flip_minus_plain"]
            diff = (f"{d['difference']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}], share <= 0 "
                    f"{d['share_le_0']:.3f}" if d else "one label only")
            print(f"  {c['title']:<34} AUC {_f(f['plain']['auc'])} -> {_f(f['flip']['auc'])} ({diff}); "
                  f"reals flagged {_f(f['plain']['real_flagged'], '{:.2f}')} -> "
                  f"{_f(f['flip']['real_flagged'], '{:.2f}')}; "
                  f"log loss {_f(f['plain']['log_loss'], '{:.4f}')} -> {_f(f['flip']['log_loss'], '{:.4f}')}")

    result = {
        "what": "frame -> video aggregation rule, chosen on " + CELL_TITLES[decide_on] + " (lowest video log loss, "
                "ties -> mean; a rule other than mean only when its bootstrap 95% interval of the difference is "
                "below zero" + (f" and its AUC within {args.max_auc_drop} of mean's" if args.max_auc_drop else "") + ")",
        "command": " ".join(["python tools/choose_aggregation.py", *(sys.argv[1:] if argv is None else argv)]),
        "date": time.strftime("%Y-%m-%d"), **model, "temperature": temperature, "threshold": threshold,
        "model_aggregation": own_rule, "data": info,
        "dfdc_sources": f"source name starts with {DFDC_PREFIX!r}; talking-face: all others",
        "splits": "val/test: fak3zer0.train.recipe.recipe_split of the entry's group (the default recipe's split)",
        "rules": rules, "cells": cells, "bootstrap": boot, "decision": decision,
    }
    if args.registered:
        result["registered"] = args.registered.read_text(encoding="utf-8")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
