"""How much weight should the SBI-only member get? Chosen by leaving a source out, not on DFDC validation alone.

    python bench/ensemble_weight_cv.py --images DEV_IMAGE_CACHE --videos DEV_VIDEO_CACHE \\
        --direction talking-face MIXED_DFDC SBI224_DFDC_SEED0 --direction talking-face MIXED_DFDC SBI224_DFDC_SEED1 \\
        --direction dfdc MIXED_TF SBI224_TF --shipped V2 SBI224_ALL --rule RULE.md [--work runs/weight_cv]

The shipped ensemble (``tools/make_ensemble.py --keep-first-within 0.02``) gives its SBI-only member the
largest weight (0 ... 0.5) whose validation AUC stays within 0.02 of the mixed member's alone, so the
weight is chosen on the sources it trained on. This sweep asks what weight ranks a *left-out* source
best. A ``--direction LEFT_OUT MIXED SBI`` is one pair of members trained without the source
``LEFT_OUT`` (``bench/synthesis_loso.py`` runs; several pairs per direction = seeds). For every weight
w in 0, 0.05, ..., 1 the ensemble logit is ``(1 - w) * mixed + w * sbi`` (raw logits, as shipped), its
temperature is refitted on the training source's validation split (the split make_ensemble uses in
``bench/ensemble_sizes_loso.py``), and every input of the left-out source is scored as
``bench/source_eval.py`` does (mean of up to 16 crops' probabilities). ``--shipped`` gives the two
members of the shipped default; their validation AUC by weight (the shipped split, every source) is
reported beside. The decision rule, written down before the sweep was scored, is read from
``--rule`` and applied by :func:`decide`. Member logits are kept in ``--work`` (re-runs are instant).
Writes bench/results/ensemble_weight_cv.json (or --out) and a plot beside it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from ensemble_sizes_loso import TRAINING_SOURCE  # noqa: E402

#: every weight of the SBI-only member the sweep tries
WEIGHTS = tuple(float(w) for w in np.round(np.arange(0, 1.001, 0.05), 2))
#: a weight is admissible while the training source's validation AUC is at most this below the mixed member's
ADMISSIBLE_WITHIN = 0.05
#: the left-out source's inputs: which cache holds them and the source group source_eval calls them
LEFT_OUT_INPUTS = {"talking-face": ("videos", "talking-face"), "dfdc": ("images", "DFDC")}


def pair_model(mixed: Path, sbi: Path):
    """The two members as one ensemble (loaded once): its input is the larger member's crop size."""
    from fak3zer0.models.ensemble import ensemble_from_checkpoints

    return ensemble_from_checkpoints([mixed, sbi])


def member_logits(model, crops: np.ndarray) -> np.ndarray:
    """Both members' raw logits ``(2, n)`` (as tools/make_ensemble.py scores them)."""
    from fak3zer0.train.recipe import predict

    return predict(model, crops, forward=model.member_logits)


def cached(work: Path, name: str, key: str, make) -> dict[str, np.ndarray]:
    """``make()``'s arrays, kept in ``work/NAME-HASH.npz`` (hash of ``key``) and read back on later runs."""
    path = work / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"
    if not path.is_file():
        work.mkdir(parents=True, exist_ok=True)
        np.savez(path, **make())
    return dict(np.load(path))


def validation_crops(caches: list[Path], size: int, source: dict) -> tuple[np.ndarray, np.ndarray]:
    """The crops and labels of the validation split a direction's members were joined on."""
    from fak3zer0.train.recipe import load_crops, recipe_split

    crops, _, labels, groups, _ = load_crops(caches, size, source["include"], source["exclude"], source["max_crops"])
    val = np.array([recipe_split(g, 0, source["val"], source["test"]) == "val" for g in groups])
    return crops[val], labels[val]


def left_out_inputs(cache: Path, group: str, size: int, max_crops: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Every input of the left-out source (its crops) and its label, as bench/source_eval.py reads them."""
    from source_eval import load_inputs

    rows = [r for r in load_inputs([cache], size, max_crops, ["all"]) if r[1] == group]
    return [r[4] for r in rows], np.array([r[3] for r in rows])


def direction_scores(args, left_out: str, mixed: Path, sbi: Path) -> dict[str, np.ndarray]:
    """One pair's member logits on its validation crops and on every left-out input (cached in --work)."""
    def make() -> dict[str, np.ndarray]:
        model = pair_model(mixed, sbi)
        size = model.input_spec.size
        val_crops, val_labels = validation_crops([args.images, args.videos], size, TRAINING_SOURCE[left_out])
        kind, group = LEFT_OUT_INPUTS[left_out]
        inputs, labels = left_out_inputs(getattr(args, kind), group, size, args.max_crops)
        print(f"{left_out} left out: {len(val_labels)} validation crops, {len(labels)} left-out inputs", flush=True)
        return {"val_logits": member_logits(model, val_crops), "val_labels": val_labels,
                "held_logits": member_logits(model, np.concatenate(inputs)),
                "held_counts": np.array([len(c) for c in inputs]), "held_labels": labels}

    return cached(args.work, left_out, f"{left_out}|{mixed.resolve()}|{sbi.resolve()}|{args.max_crops}", make)


def input_probs(logits: np.ndarray, weight: float, temperature: float, counts) -> np.ndarray:
    """Each input's probability from its crops' member logits ``(2, n)``: the pair joined at ``weight``, scaled by
    ``temperature``, averaged over the input's crops (``counts`` consecutive crops each)."""
    from fak3zer0.evaluate.metrics import sigmoid
    from fak3zer0.train.recipe import weighted_logits

    from source_eval import per_input

    return per_input(sigmoid(weighted_logits(*logits, weight) / temperature), counts)


def sweep(scores: dict[str, np.ndarray], weights=WEIGHTS) -> list[dict]:
    """Per weight: validation AUC, the refitted temperature and the left-out inputs' AUC / log loss /
    accuracy / share of reals and fakes called fake at 0.5; with the left-out scores themselves (``p``)."""
    from fak3zer0.evaluate.metrics import fit_temperature, log_loss, roc_auc
    from fak3zer0.train.recipe import weighted_logits

    y_val, y = scores["val_labels"], scores["held_labels"]
    rows = []
    for w in weights:
        z_val = weighted_logits(*scores["val_logits"], w)
        t = fit_temperature(z_val, y_val)
        p = input_probs(scores["held_logits"], w, t, scores["held_counts"])
        rows.append({"weight": w, "val_auc": roc_auc(y_val, z_val), "temperature": t, "auc": roc_auc(y, p),
                     "log_loss": log_loss(y, p), "accuracy": float(((p >= 0.5) == y).mean()),
                     "real_flagged": float((p[y == 0] >= 0.5).mean()),
                     "fake_flagged": float((p[y == 1] >= 0.5).mean()), "p": p})
    return rows


def v4_weight(rows: list[dict]) -> float:
    """The weight the shipped procedure picks from these validation AUCs (0 ... 0.5, within 0.02)."""
    from fak3zer0.train.recipe import SECOND_WEIGHTS, largest_within

    return largest_within({r["weight"]: r["val_auc"] for r in rows if r["weight"] in SECOND_WEIGHTS}, 0.02)


def admissible(rows: list[dict]) -> set[float]:
    return {r["weight"] for r in rows if r["val_auc"] >= rows[0]["val_auc"] - ADMISSIBLE_WITHIN}


def choose(directions: dict[str, list[list[dict]]], names: list[str]) -> float:
    """The weight admissible for every pair of ``names`` with the highest mean over those directions of
    their pairs' mean left-out AUC; ties go to the smaller weight."""
    ok = set(WEIGHTS).intersection(*(admissible(rows) for n in names for rows in directions[n]))
    if not ok:
        raise SystemExit("no weight keeps every direction's validation AUC within "
                         f"{ADMISSIBLE_WITHIN} of its mixed member's alone")
    return max(sorted(ok), key=lambda w: float(np.mean([mean_at(directions[n], w, "auc") for n in names])))


def mean_at(pairs: list[list[dict]], weight: float | list[float], key: str) -> float:
    """``key`` averaged over a direction's pairs at ``weight`` (one weight, or one per pair)."""
    ws = weight if isinstance(weight, list) else [weight] * len(pairs)
    return float(np.mean([next(r[key] for r in rows if r["weight"] == w) for rows, w in zip(pairs, ws)]))


def decide(directions: dict[str, list[list[dict]]], shipped_val: dict[float, float]) -> dict:
    """The registered rule (text in --rule): w* by mean left-out AUC over directions; ship only if (1) nested,
    each direction gains >= +0.01 left-out AUC over the v4 procedure's weight at the weight the other
    direction(s) alone choose, (2) no direction flags more left-out reals at w* than at the v4 weight,
    (3) the shipped members' val AUC at w* is at most 0.05 below the first member's alone."""
    names = sorted(directions)
    best = choose(directions, names)
    checks, nested = {}, {}
    for n in names:
        pairs = directions[n]
        v4 = [v4_weight(rows) for rows in pairs]
        other = choose(directions, [m for m in names if m != n]) if len(names) > 1 else best
        gain = mean_at(pairs, other, "auc") - mean_at(pairs, v4, "auc")
        nested[n] = {"weight_chosen_elsewhere": other, "v4_weights": v4, "auc_gain": gain}
        checks[f"(1) {n} left out: nested gain {gain:+.3f} >= +0.01"] = gain >= 0.01
        flags = (mean_at(pairs, best, "real_flagged"), mean_at(pairs, v4, "real_flagged"))
        checks[f"(2) {n} left out: reals flagged {flags[0]:.2f} at w* <= {flags[1]:.2f} at v4's weight"] = \
            flags[0] <= flags[1]
    val = (shipped_val[best], shipped_val[0.0])
    checks[f"(3) shipped members' val AUC {val[0]:.3f} at w* >= {val[1]:.3f} - {ADMISSIBLE_WITHIN}"] = \
        val[0] >= val[1] - ADMISSIBLE_WITHIN
    return {"weight": best, "nested": nested, "ship": all(checks.values()),
            "reasons": [f"{name}: {'holds' if ok else 'fails'}" for name, ok in checks.items()]}


def shipped_val_aucs(args) -> dict[float, float]:
    """Validation AUC by weight of the shipped members on the shipped split (every source, 32 crops a video)."""
    from fak3zer0.evaluate.metrics import roc_auc
    from fak3zer0.train.recipe import weighted_logits

    first, second = args.shipped

    def make() -> dict[str, np.ndarray]:
        model = pair_model(first, second)
        source = {"include": None, "exclude": None, "max_crops": 32, "val": 0.1, "test": 0.1}
        crops, labels = validation_crops([args.images, args.videos], model.input_spec.size, source)
        return {"logits": member_logits(model, crops), "labels": labels}

    z = cached(args.work, "shipped", f"shipped|{first.resolve()}|{second.resolve()}", make)
    return {w: roc_auc(z["labels"], weighted_logits(*z["logits"], w)) for w in WEIGHTS}


def paired_gains(pairs: list[list[dict]], labels: list[np.ndarray], best: float, v4: list[float]) -> list[dict]:
    """Per pair: left-out AUC at w* minus at the v4 procedure's weight, 95 % paired bootstrap."""
    from fak3zer0.evaluate.metrics import paired_auc_difference

    at = lambda rows, w: next(r["p"] for r in rows if r["weight"] == w)  # noqa: E731
    return [paired_auc_difference(y, at(rows, best), at(rows, w)) for rows, y, w in zip(pairs, labels, v4)]


def add_direction_arguments(ap: argparse.ArgumentParser) -> None:
    """What :func:`direction_scores` reads: --images, --videos, --direction (repeatable), --max-crops, --work,
    --threads. Shared by the benches built on this script's logit cache."""
    ap.add_argument("--images", type=Path, required=True, help="dev image cache (tools/prep_dev_images.py)")
    ap.add_argument("--videos", type=Path, required=True, help="dev video cache (fak3zer0 preprocess)")
    ap.add_argument("--direction", nargs=3, action="append", required=True, metavar=("LEFT_OUT", "MIXED", "SBI"),
                    help=f"members trained without LEFT_OUT ({', '.join(LEFT_OUT_INPUTS)})")
    ap.add_argument("--max-crops", type=int, default=16, help="crops per left-out video (as source_eval)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", type=Path, default=ROOT / "runs/weight_cv", help="the logit cache")


def parse_direction_arguments(ap: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``ap.parse_args(argv)``, refusing unknown left-out sources; sets torch's thread count."""
    args = ap.parse_args(argv)
    bad = [d[0] for d in args.direction if d[0] not in LEFT_OUT_INPUTS]
    if bad:
        ap.error(f"unknown left-out source {bad[0]!r}: one of {', '.join(LEFT_OUT_INPUTS)}")
    import torch

    torch.set_num_threads(args.threads)
    return args


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_direction_arguments(ap)
    ap.add_argument("--shipped", type=Path, nargs=2, required=True, metavar=("FIRST", "SBI"),
                    help="the shipped ensemble's two members (their val AUC by weight decides check 3)")
    ap.add_argument("--rule", type=Path, required=True, help="the decision rule as written before the sweep")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/ensemble_weight_cv.json")
    args = parse_direction_arguments(ap, argv)
    directions: dict[str, list[list[dict]]] = defaultdict(list)
    labels: dict[str, list[np.ndarray]] = defaultdict(list)
    for left_out, mixed, sbi in args.direction:
        scores = direction_scores(args, left_out, Path(mixed), Path(sbi))
        directions[left_out].append(sweep(scores))
        labels[left_out].append(scores["held_labels"])
    shipped_val = shipped_val_aucs(args)
    decision = decide(directions, shipped_val)
    report = {"what": __doc__.split("\n")[0], "rule": args.rule.read_text(),
              "command": "python bench/ensemble_weight_cv.py " + " ".join(argv or sys.argv[1:]),
              "members": args.direction, "shipped_members": [str(p) for p in args.shipped],
              **decision, "decision": "ship" if decision["ship"] else "keep v4",
              "paired_gain_at_w_star": {n: paired_gains(directions[n], labels[n], decision["weight"],
                                                        decision["nested"][n]["v4_weights"]) for n in directions},
              "shipped_val_auc_by_weight": shipped_val,
              "sweep": {n: [[{k: v for k, v in r.items() if k != "p"} for r in rows] for rows in pairs]
                        for n, pairs in directions.items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print_table(directions, shipped_val, decision)
    plot(directions, shipped_val, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


def print_table(directions: dict[str, list[list[dict]]], shipped_val: dict[float, float], decision: dict) -> None:
    names = sorted(directions)
    head = "".join(f" | {n + ' left out: val / AUC / ll / reals':>40}" for n in names)
    print(f"\n{'w':>5}{head} | shipped val AUC")
    for i, w in enumerate(WEIGHTS):
        cells = "".join(f" | {mean_at(directions[n], w, 'val_auc'):>10.3f} {mean_at(directions[n], w, 'auc'):>8.3f} "
                        f"{mean_at(directions[n], w, 'log_loss'):>8.3f} {mean_at(directions[n], w, 'real_flagged'):>10.2f}"
                        for n in names)
        print(f"{w:>5.2f}{cells} | {shipped_val[w]:.3f}")
    print(f"(means over each direction's pairs)\nw* = {decision['weight']:.2f}; nested: "
          + "; ".join(f"{n}: w {d['weight_chosen_elsewhere']:.2f} vs v4's {d['v4_weights']} -> {d['auc_gain']:+.3f}"
                      for n, d in decision["nested"].items()))
    print("\n".join(decision["reasons"]) + f"\ndecision: {'ship' if decision['ship'] else 'keep v4'}")


def plot(directions: dict[str, list[list[dict]]], shipped_val: dict[float, float], path: Path) -> None:
    from fak3zer0.evaluate.plots import plot_curves

    series = {f"{n} left out{f' (pair {i})' if len(pairs) > 1 else ''}": [r["auc"] for r in rows]
              for n, pairs in sorted(directions.items()) for i, rows in enumerate(pairs)}
    series["shipped members, val (seen sources)"] = [shipped_val[w] for w in WEIGHTS]
    plot_curves(WEIGHTS, series, path, ylabel="AUC", xlabel="weight of the SBI-only member",
                title="left-out source AUC by ensemble weight")


if __name__ == "__main__":
    raise SystemExit(main())
