"""Does the SBI-only member help the default ensemble more at 224 px than at 160 px? (talking-face left out)

    python bench/ensemble_sizes_loso.py --images DEV_IMAGE_CACHE --videos DEV_VIDEO_CACHE \\
        --mixed RUNS/dfdc+sbi-face+lower/model.pt \\
        --pair 0 SBI160_SEED0/model.pt SBI224_SEED0/model.pt --pair 1 SBI160_SEED1/model.pt SBI224_SEED1/model.pt \\
        --rule RULE.md [--work runs/ensemble_sizes]

Every member was trained on DFDC only (``bench/synthesis_loso.py``: the mixed member is the variant
``dfdc+sbi-face+lower``, the SBI-only members ``dfdc-real-only+sbi-face+lower`` at 160 px and its ``@224``
twin, one pair per seed). For each pair, ``tools/make_ensemble.py`` joins the mixed member with each
SBI-only member the way the shipped default is joined (raw logits, second weight the largest whose
DFDC val AUC stays within 0.02 of the mixed member's alone, temperature refit on val), then
``bench/source_eval.py`` scores both ensembles on the 93 talking-face clips none of them saw and on
the DFDC test crops, paired against the 160 px ensemble (the shipped recipe). The decision rule,
written down before anything was scored, is read from ``--rule`` and applied by :func:`decide`.
Writes bench/results/ensemble_sizes_loso.json (or --out).

``--left-out dfdc`` runs the other direction, reported only: members trained on the talking-face
clips alone (``synthesis_loso.py`` variants ``tf+sbi-face+lower`` and ``tf-real-only+sbi-face+lower``
[``@224``]), joined on that training's own validation split, scored on every DFDC face crop.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list[str], log: Path) -> None:
    print("$", " ".join(cmd), flush=True)
    with open(log, "a") as out:
        subprocess.run(cmd, check=True, stdout=out, stderr=subprocess.STDOUT)


#: per left-out source, the caches' entries and split the members trained on (bench/synthesis_loso.py's
#: _DFDC_ONLY and _TF_ONLY): source regexes, crops per video, val and test shares
TRAINING_SOURCE = {"talking-face": {"include": "^DFDC", "exclude": None, "max_crops": 32, "val": 0.1, "test": 0.1},
                   "dfdc": {"include": None, "exclude": "^DFDC", "max_crops": 16, "val": 0.2, "test": 0.0}}


def make_ensemble_flags(source: dict) -> list[str]:
    """tools/make_ensemble.py's data flags for one of TRAINING_SOURCE's entries."""
    flags = [*(["--include-source", source["include"]] if source["include"] else []),
             *(["--exclude-source", source["exclude"]] if source["exclude"] else [])]
    return flags + ["--max-crops", str(source["max_crops"]), "--val", str(source["val"]), "--test", str(source["test"])]


TRAINED_ON = {name: make_ensemble_flags(source) for name, source in TRAINING_SOURCE.items()}


def join(mixed: Path, sbi: Path, images: Path, videos: Path, out: Path, threads: int,
         left_out: str = "talking-face") -> Path:
    """The shipped recipe's ensemble of ``mixed`` and ``sbi`` on their training's val split (reused if present)."""
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        run([sys.executable, str(ROOT / "tools/make_ensemble.py"), str(mixed), str(sbi), "--cache", str(images),
             "--cache", str(videos), *TRAINED_ON[left_out], "--keep-first-within", "0.02",
             "--threads", str(threads), "--out", str(out)], out.with_suffix(".log"))
    return out


def ensembles(args, seed: str, sbi160: str, sbi224: str) -> dict[int, Path]:
    """One seed's two ensembles, by the size of their SBI-only member."""
    return {size: join(args.mixed, Path(sbi), args.images, args.videos,
                       args.work / f"seed{seed}" / f"ens{size}" / "model.pt", args.threads, args.left_out)
            for size, sbi in ((160, sbi160), (224, sbi224))}


def evaluate(models: list[Path], cache: Path, split: str, against: Path, out: Path, threads: int) -> dict:
    cmd = [sys.executable, str(ROOT / "bench/source_eval.py"), "--cache", str(cache), "--split", split,
           "--paired-against", str(against), "--threads", str(threads), "--out", str(out)]
    for m in models:
        cmd += ["--model", str(m)]
    run(cmd, out.with_suffix(".log"))
    return json.loads(out.read_text())


def pick(report: dict, model: Path, group: str, key: str = "rows") -> dict:
    rows = [r for r in report[key] if r["model"] == str(model) and r["set"].startswith(group)]
    if len(rows) != 1:
        raise SystemExit(f"expected one {group} row for {model} in the report, found {len(rows)}")
    return rows[0]


def decide(seeds: list[dict]) -> tuple[bool, list[str]]:
    """The registered rule: for every seed, (1) AUC gain on the unseen clips >= +0.02, (2) real clips
    flagged at 0.5 at most 0.05 above the 160 px ensemble's, (3) DFDC test AUC at most 0.01 below."""
    reasons = []
    for s in seeds:
        checks = {"(1) talking-face AUC gain >= +0.02": s["tf_gain"]["difference"] >= 0.02,
                  "(2) real clips flagged <= 160 px + 0.05": s["tf_real_flagged"][1] <= s["tf_real_flagged"][0] + 0.05,
                  "(3) DFDC test AUC >= 160 px - 0.01": s["dfdc_test_auc"][1] >= s["dfdc_test_auc"][0] - 0.01}
        reasons += [f"seed {s['seed']}: {name}: {'holds' if ok else 'fails'}" for name, ok in checks.items()]
    return all(r.endswith("holds") for r in reasons), reasons


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, required=True, help="dev image cache (tools/prep_dev_images.py)")
    ap.add_argument("--videos", type=Path, required=True, help="dev video cache (fak3zer0 preprocess)")
    ap.add_argument("--mixed", type=Path, required=True,
                    help="the mixed member (v2's recipe) trained without the left-out source")
    ap.add_argument("--pair", nargs=3, action="append", required=True, metavar=("SEED", "SBI160", "SBI224"),
                    help="one seed's SBI-only members at 160 and 224 px (repeatable)")
    ap.add_argument("--rule", type=Path, default=None,
                    help="the decision rule as written before scoring (talking-face left out)")
    ap.add_argument("--left-out", choices=sorted(TRAINED_ON), default="talking-face",
                    help="the source the members never saw (dfdc: reported only, no decision)")
    ap.add_argument("--work", type=Path, default=ROOT / "runs/ensemble_sizes")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/ensemble_sizes_loso.json")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.left_out == "dfdc":
        return dfdc_left_out(args, argv)
    if args.rule is None:
        ap.error("--rule is needed with talking-face left out (the decision is taken there)")
    seeds = []
    for seed, sbi160, sbi224 in args.pair:
        ens = ensembles(args, seed, sbi160, sbi224)
        tf = evaluate([ens[160], ens[224], args.mixed, Path(sbi160), Path(sbi224)], args.videos, "all", ens[160],
                      args.work / f"seed{seed}" / "talking_face.json", args.threads)
        dfdc = evaluate([ens[160], ens[224], args.mixed], args.images, "test", ens[160],
                        args.work / f"seed{seed}" / "dfdc_test.json", args.threads)
        weights = [second_weight(e) for e in (ens[160], ens[224])]
        seeds.append({
            "seed": int(seed), "members": {"mixed": str(args.mixed), "sbi160": sbi160, "sbi224": sbi224},
            "second_weight": {"160": weights[0], "224": weights[1]},
            "tf_auc": [pick(tf, ens[s], "talking-face")["auc"] for s in (160, 224)],
            "tf_real_flagged": [pick(tf, ens[s], "talking-face")["real_flagged"] for s in (160, 224)],
            "tf_gain": pick(tf, ens[224], "talking-face", "paired"),
            "dfdc_test_auc": [pick(dfdc, ens[s], "DFDC")["auc"] for s in (160, 224)],
            "dfdc_test_gain": pick(dfdc, ens[224], "DFDC", "paired"),
            "talking_face_rows": tf["rows"], "dfdc_test_rows": dfdc["rows"]})
    ship, reasons = decide(seeds)
    report = {"what": __doc__.split("\n")[0], "rule": args.rule.read_text(), "decision": "ship" if ship else "keep v3",
              "reasons": reasons, "command": "python bench/ensemble_sizes_loso.py " + " ".join(argv or sys.argv[1:]),
              "seeds": seeds}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\n{'seed':>4} {'weight 160/224':>15} {'TF AUC 160/224':>16} {'gain [95 %]':>24} {'reals flagged':>14} "
          f"{'DFDC test AUC':>14}")
    for s in seeds:
        g = s["tf_gain"]
        print(f"{s['seed']:>4} {s['second_weight']['160']:>7.2f}/{s['second_weight']['224']:<7.2f} "
              f"{s['tf_auc'][0]:>7.3f}/{s['tf_auc'][1]:<8.3f} {g['difference']:+.3f} [{g['ci95'][0]:+.3f}, "
              f"{g['ci95'][1]:+.3f}] {s['tf_real_flagged'][0]:>6.2f}/{s['tf_real_flagged'][1]:<6.2f} "
              f"{s['dfdc_test_auc'][0]:>6.3f}/{s['dfdc_test_auc'][1]:<6.3f}")
    print("\n".join(reasons) + f"\ndecision: {report['decision']}\nwrote {args.out}")
    return 0


def dfdc_left_out(args, argv) -> int:
    """Members trained on talking-face clips only: both ensembles scored on every DFDC face crop."""
    seeds = []
    for seed, sbi160, sbi224 in args.pair:
        ens = ensembles(args, seed, sbi160, sbi224)
        crops = evaluate([ens[160], ens[224], args.mixed, Path(sbi160), Path(sbi224)], args.images, "all", ens[160],
                         args.work / f"seed{seed}" / "dfdc_all.json", args.threads)
        seeds.append({"seed": int(seed), "members": {"mixed": str(args.mixed), "sbi160": sbi160, "sbi224": sbi224},
                      "second_weight": {"160": second_weight(ens[160]), "224": second_weight(ens[224])},
                      "dfdc_auc": [pick(crops, ens[s], "DFDC")["auc"] for s in (160, 224)],
                      "dfdc_real_flagged": [pick(crops, ens[s], "DFDC")["real_flagged"] for s in (160, 224)],
                      "dfdc_gain": pick(crops, ens[224], "DFDC", "paired"), "dfdc_rows": crops["rows"]})
    report = {"what": "DFDC left out: " + __doc__.split("\n")[0], "decision": "reported only",
              "command": "python bench/ensemble_sizes_loso.py " + " ".join(argv or sys.argv[1:]), "seeds": seeds}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\n{'seed':>4} {'weight 160/224':>15} {'DFDC AUC 160/224':>17} {'gain [95 %]':>24} {'reals flagged':>14}")
    for s in seeds:
        g = s["dfdc_gain"]
        print(f"{s['seed']:>4} {s['second_weight']['160']:>7.2f}/{s['second_weight']['224']:<7.2f} "
              f"{s['dfdc_auc'][0]:>8.3f}/{s['dfdc_auc'][1]:<8.3f} {g['difference']:+.3f} [{g['ci95'][0]:+.3f}, "
              f"{g['ci95'][1]:+.3f}] {s['dfdc_real_flagged'][0]:>6.2f}/{s['dfdc_real_flagged'][1]:<6.2f}")
    print(f"wrote {args.out}")
    return 0


def second_weight(checkpoint: Path) -> float:
    """The second member's weight as chosen and saved by make_ensemble."""
    from fak3zer0.models.checkpoint import read_checkpoint

    return float(read_checkpoint(checkpoint)["metrics"]["weights"][1])


if __name__ == "__main__":
    raise SystemExit(main())
