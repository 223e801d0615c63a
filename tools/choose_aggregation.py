"""Choose a model's frame -> video aggregation rule on validation videos.

    python tools/choose_aggregation.py [--model fak3zer0-default] [--cache /work/cache/dev_videos] \\
        [--out bench/results/aggregation.json]

Scores every usable entry of a face-crop cache once (raw logits, cached under /tmp so a rerun does
not run the model again), then, with the package's own scoring (``evaluate.scoring.summarise``: per
face track aggregate with the rule, a video takes its most suspicious face, as the Detector does)
and metrics (``evaluate.metrics``), reports video-level AUC, log loss and accuracy for every rule in
``AGGREGATION_RULES`` on: the ``val`` split, the ``test`` split, DFDC sources (source name starts
with "DFDC", all splits), talking-face sources (everything else, all splits) and all videos.

The rule is chosen on ``val`` only: the lowest video log loss (ties -> ``mean``). A rule other than
``mean`` is taken only if it wins clearly: the 95 % interval of its paired log-loss difference to
``mean`` over a bootstrap of the val videos (--bootstrap resamples) lies entirely below zero.
Otherwise ``mean`` stays. The test split and the source cells are reported, never used to decide.
The checkpoint is not modified.
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


def _cells(sources, items) -> dict[str, list[int]]:
    """Cell name -> indices into ``items``."""
    def entry(it):
        return sources[it.src].entries[it.entry]

    cells = {
        "val": lambda e: e.split == "val",
        "test": lambda e: e.split == "test",
        "dfdc": lambda e: e.source.startswith(DFDC_PREFIX),
        "talking_face": lambda e: not e.source.startswith(DFDC_PREFIX),
        "all": lambda e: True,
    }
    return {name: [j for j, it in enumerate(items) if want(entry(it))] for name, want in cells.items()}


CELL_TITLES = {
    "val": "val split",
    "test": "test split",
    "dfdc": "DFDC sources (all splits)",
    "talking_face": "talking-face sources (all splits)",
    "all": "all videos",
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


def score_cache(model_spec: str, cache: Path, logits_dir: Path, batch_size: int):
    """``(loaded, sources, items, logits, cache_info)``; logits are read from ``logits_dir`` when cached."""
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
    logits_dir.mkdir(parents=True, exist_ok=True)
    cached = logits_dir / f"logits-{tag}.npy"
    t0 = time.perf_counter()
    if cached.is_file():
        logits = np.load(cached)
        how = f"reused {cached}"
    else:
        model = loaded.model.eval()
        logits = predict_logits(model, ds, batch_size=batch_size, device="cpu")
        tmp = cached.with_suffix(".tmp.npy")
        np.save(tmp, logits)
        os.replace(tmp, cached)
        how = f"scored in {time.perf_counter() - t0:.0f} s ({torch.get_num_threads()} torch threads), saved to {cached}"
    if len(logits) != len(items):
        raise SystemExit(f"{cached} holds {len(logits)} logits for {len(items)} inputs; delete it")
    info = {"cache": str(cache), "index_sha1": index_sha, "entries": len(keys), "inputs": len(items),
            "logits": how}
    return loaded, sources, items, logits, info


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


def decide(val_by_rule: dict, boot: dict, rules) -> dict:
    ll = {r: val_by_rule[r]["log_loss"] for r in rules}
    best = min(rules, key=lambda r: (np.inf if ll[r] is None else ll[r], rules.index(r)))
    if best == "mean":
        return {"rule": "mean", "best_on_val": best,
                "reason": "mean has the lowest val video log loss"}
    b = boot["by_rule"][best]
    lo, hi = b["diff_vs_mean_ci95"]
    if hi < 0:
        return {"rule": best, "best_on_val": best,
                "reason": f"{best} has the lowest val video log loss and the 95 % bootstrap interval of its "
                          f"difference to mean, [{lo:+.4f}, {hi:+.4f}], is below zero"}
    return {"rule": "mean", "best_on_val": best,
            "reason": f"{best} has the lowest val video log loss ({ll[best]:.4f} vs {ll['mean']:.4f} for mean), "
                      f"but the 95 % bootstrap interval of the difference over {boot['videos']} val videos, "
                      f"[{lo:+.4f}, {hi:+.4f}], includes zero: within noise, mean stays"}


def _f(v, fmt="{:.3f}") -> str:
    return "–" if v is None else fmt.format(v)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="fak3zer0-default", help="checkpoint, run folder or shipped model name")
    ap.add_argument("--cache", type=Path, default=Path("/work/cache/dev_videos"), help="face-crop cache of videos")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON result (default bench/results/aggregation.json)")
    ap.add_argument("--logits-dir", type=Path, default=Path("/tmp/fak3zer0-aggregation"),
                    help="where raw logits are cached between runs (keyed by weights and cache contents)")
    ap.add_argument("--bootstrap", type=int, default=1000, help="resamples of the val videos")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default $FAK3ZER0_THREADS)")
    args = ap.parse_args(argv)

    from fak3zer0.api.detector import set_threads
    from fak3zer0.evaluate.metrics import AGGREGATION_RULES, sigmoid
    from fak3zer0.evaluate.scoring import summarise

    set_threads(args.threads)
    rules = list(AGGREGATION_RULES)
    loaded, sources, items, logits, info = score_cache(args.model, args.cache, args.logits_dir, args.batch_size)
    own_rule = loaded.aggregation if loaded.aggregation in AGGREGATION_RULES else "mean"
    kw = {"temperature": loaded.temperature, "threshold": loaded.threshold, "rule": own_rule, "rules": rules}

    cells = {}
    for name, sel in _cells(sources, items).items():
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

    val_sel = _cells(sources, items)["val"]
    val_items = [items[j] for j in val_sel]
    probs = sigmoid(logits[val_sel] / loaded.temperature)
    boot = bootstrap_val(sources, val_items, probs, rules, args.bootstrap, args.seed)
    decision = decide(cells["val"]["video_by_rule"], boot, rules)

    print(f"model {args.model} (version {loaded.version or '-'}, T = {loaded.temperature:.3f}, "
          f"threshold {loaded.threshold}, its rule: {own_rule}); {info['entries']} videos, "
          f"{info['inputs']} frames; logits {info['logits']}")
    print(f"{'cell':<34} {'videos (real/fake)':<19} {'rule':<11} {'AUC':>6} {'logloss':>8} {'acc':>6}")
    for name, c in cells.items():
        n = c["counts"]
        for r in rules:
            m = c["video_by_rule"][r]
            print(f"{c['title']:<34} {n['videos']:>3} ({n['real']:>2}/{n['fake']:>2}){'':<9} {r:<11} "
                  f"{_f(m['auc']):>6} {_f(m['log_loss'], '{:.4f}'):>8} {_f(m['accuracy']):>6}")
    print(f"\nbootstrap over {boot['videos']} val videos ({boot['resamples']} resamples, seed {boot['seed']}):")
    for r in rules:
        b = boot["by_rule"][r]
        print(f"  {r:<11} log loss 95% [{b['log_loss_ci95'][0]:.4f}, {b['log_loss_ci95'][1]:.4f}]  "
              f"minus mean {b['diff_vs_mean']:+.4f} [{b['diff_vs_mean_ci95'][0]:+.4f}, {b['diff_vs_mean_ci95'][1]:+.4f}]"
              f"  P(better than mean) {_f(b['p_better_than_mean'], '{:.2f}')}")
    print(f"\ndecision: {decision['rule']} -- {decision['reason']}")

    result = {
        "what": "frame -> video aggregation rule, chosen on val videos (lowest video log loss, ties -> mean; "
                "a rule other than mean only when its bootstrap 95% interval of the difference is below zero)",
        "command": " ".join(["python tools/choose_aggregation.py", *(sys.argv[1:] if argv is None else argv)]),
        "date": time.strftime("%Y-%m-%d"),
        "model": args.model, "version": loaded.version, "temperature": loaded.temperature,
        "threshold": loaded.threshold, "model_aggregation": own_rule,
        "data": info, "dfdc_sources": f"source name starts with {DFDC_PREFIX!r}; talking-face: all others",
        "rules": rules, "cells": cells, "bootstrap_val": boot, "decision": decision,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
