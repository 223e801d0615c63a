"""Rebuild the shipped default model from ../shared/data/dev with one command, stage by stage.

    python tools/reproduce_default.py [RECIPE] [--work runs/reproduce-default] [--reuse v1=CKPT] [--ship]
    make default-model

RECIPE (default configs/fak3zer0-default.recipe.yaml) names the face-crop caches to build, the training
stages (``tools/train_default.py`` runs, a stage may start from an earlier one's weights), the ensemble
join (``tools/make_ensemble.py``) and how the result is shipped. Every step writes into --work and is
skipped when its output is already there, so running the command again after a stop continues where it
stopped. The run ends with a table of each stage's val/test metrics beside the shipped checkpoint's.

--images / --videos use existing caches instead of building them; --reuse NAME=CKPT takes a stage's
checkpoint from elsewhere (e.g. the first shipped weights for ``v1``, a 14-82 minute stage);
--ship copies the ensemble into the package (float16) and writes its ONNX twins, replacing the shipped
weights; --dry-run prints the commands; --smoke trains every stage for one short epoch (a plumbing check,
never shippable).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RECIPE = ROOT / "configs" / "fak3zer0-default.recipe.yaml"
SMOKE = {"epochs": 1, "max_train": 64}


def flags(args: dict) -> list[str]:
    """``{"max_crops": 32, "real_only": True}`` -> ``["--max-crops", "32", "--real-only"]``."""
    out = []
    for key, value in args.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            out.append(flag)
        elif value not in (False, None):
            out += [flag, str(value)]
    return out


def load_recipe(path: Path) -> dict:
    recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
    missing = {"caches", "stages", "ensemble"} - set(recipe or {})
    if missing:
        raise SystemExit(f"{path}: missing section(s) {', '.join(sorted(missing))}")
    for name, stage in recipe["stages"].items():
        unknown = [c for c in stage.get("caches", []) if c not in recipe["caches"]]
        if unknown or (stage.get("init") and stage["init"] not in recipe["stages"]):
            raise SystemExit(f"{path}: stage {name} names an unknown cache or init stage")
    if any(m not in recipe["stages"] for m in recipe["ensemble"]["members"]):
        raise SystemExit(f"{path}: the ensemble names a member that is not a stage")
    return recipe


def video_manifest(dev: Path, out: Path) -> Path:
    """The dev manifest's video rows with absolute paths (and its labels/), for ``fak3zer0 preprocess``."""
    out.mkdir(parents=True, exist_ok=True)
    with open(dev / "manifest.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = [dict(r, relpath=str((dev / r["relpath"]).resolve())) for r in reader if r["kind"] == "video"]
        fields = reader.fieldnames
    with open(out / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    if not (out / "labels").exists():
        (out / "labels").symlink_to((dev / "labels").resolve())
    return out / "manifest.csv"


def cache_command(name: str, spec: dict, dest: Path, dev: Path) -> list[str]:
    if spec["tool"] == "prep_dev_images":
        return [sys.executable, str(ROOT / "tools/prep_dev_images.py"), str(dest)]
    if spec["tool"] == "preprocess":
        manifest = video_manifest(dev, dest.parent / f"{name}-manifest")
        return [sys.executable, "-m", "fak3zer0.cli", "preprocess", str(manifest), "--layout", "manifest",
                "--out", str(dest), *flags({k: v for k, v in spec.items() if k != "tool"})]
    raise SystemExit(f"cache {name}: unknown tool {spec['tool']!r} (prep_dev_images | preprocess)")


def plan(recipe: dict, work: Path, caches: dict[str, Path], smoke: bool) -> list[tuple[str, Path, list[str]]]:
    """``[(step name, output that marks it done, command)]`` in run order."""
    def cache_flags(names):
        return [a for n in names for a in ("--cache", str(caches[n]))]

    steps = []
    for name, stage in recipe["stages"].items():
        args = {**stage.get("args", {}), **(SMOKE if smoke else {})}
        cmd = [sys.executable, str(ROOT / "tools/train_default.py"), *cache_flags(stage["caches"]), *flags(args)]
        if stage.get("init"):
            cmd += ["--init", str(work / stage["init"] / "model.pt")]
        steps.append((name, work / name / "model.pt", cmd + ["--out", str(work / name)]))
    ens = recipe["ensemble"]
    out = work / "ensemble" / "model.pt"
    steps.append(("ensemble", out, [sys.executable, str(ROOT / "tools/make_ensemble.py"),
                                    *(str(work / m / "model.pt") for m in ens["members"]),
                                    *cache_flags(ens["caches"]), *flags(ens.get("args", {})), "--out", str(out)]))
    return steps


def ship_commands(recipe: dict, work: Path, caches: dict[str, Path]) -> list[list[str]]:
    ship = recipe.get("ship", {})
    name = ship.get("name", "fak3zer0-default")
    cmds = [[sys.executable, str(ROOT / "tools/ship_model.py"), str(work / "ensemble" / "model.pt"), "--name", name,
             *(["--half"] if ship.get("half") else [])]]
    export = [sys.executable, "-m", "fak3zer0.cli", "export", name]
    if ship.get("int8_calibration"):
        export += ["--int8", "--calibration", str(caches[ship["int8_calibration"]])]
    return cmds + [export]


def run(cmd: list[str], log: Path, dry: bool) -> None:
    print("$ " + shlex.join(cmd), flush=True)
    if dry:
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with open(log, "a") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT).returncode
    if rc:
        raise SystemExit(f"step failed (exit {rc}); its output is in {log}; fix and run the same command again")
    print(f"  done in {(time.time() - t0) / 60:.1f} min (log: {log})", flush=True)


def summary(recipe: dict, work: Path) -> list[dict]:
    """Each stage's and the ensemble's recorded metrics, beside the shipped checkpoint's."""
    from fak3zer0.models.checkpoint import read_checkpoint
    from fak3zer0.models.hub import shipped_models

    rows = []
    keys = ("val_auc", "test_auc", "test_log_loss", "test_accuracy", "temperature")
    paths = {n: work / n / "model.pt" for n in [*recipe["stages"], "ensemble"]}
    shipped = shipped_models().get(recipe.get("ship", {}).get("name", "fak3zer0-default"))
    if shipped:
        paths["shipped"] = Path(shipped)
    for name, path in paths.items():
        if path.is_file():
            ck = read_checkpoint(path)
            m = {**ck.get("metrics", {}), "temperature": ck.get("calibration", {}).get("temperature")}
            rows.append({"stage": name, **{k: m.get(k) for k in keys}})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", nargs="?", type=Path, default=DEFAULT_RECIPE)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "reproduce-default",
                    help="where caches, stage checkpoints and logs go")
    ap.add_argument("--images", type=Path, help="use this existing cache as `images` instead of building it")
    ap.add_argument("--videos", type=Path, help="use this existing cache as `videos` instead of building it")
    ap.add_argument("--reuse", action="append", default=[], metavar="STAGE=CKPT",
                    help="take STAGE's checkpoint from CKPT instead of training it (copied into --work)")
    ap.add_argument("--ship", action="store_true", help="replace the packaged weights with the result")
    ap.add_argument("--smoke", action="store_true", help="one short epoch per stage (plumbing check only)")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = ap.parse_args(argv)
    if args.smoke and args.ship:
        raise SystemExit("--smoke weights are a plumbing check; they cannot be shipped")
    recipe = load_recipe(args.recipe)
    work = args.work.resolve()
    given = {"images": args.images, "videos": args.videos}
    caches = {n: (given.get(n) or work / "caches" / n).resolve() for n in recipe["caches"]}

    need = [n for n in recipe["caches"] if not given.get(n) and not (caches[n] / ".complete").is_file()]
    if need:
        from fak3zer0.paths import dev_data_dir

        dev = dev_data_dir()
        if dev is None:
            raise SystemExit("../shared/data/dev is missing: the caches are built from it "
                             "(or pass --images/--videos CACHE)")
        for n in need:
            run(cache_command(n, recipe["caches"][n], caches[n], dev), work / "logs" / f"cache-{n}.log",
                args.dry_run)
            if not args.dry_run:
                (caches[n] / ".complete").write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))
    reused = set()
    for item in args.reuse:
        stage, _, ckpt = item.partition("=")
        if stage not in recipe["stages"] or not Path(ckpt).is_file():
            raise SystemExit(f"--reuse {item}: want STAGE=CKPT with STAGE one of {', '.join(recipe['stages'])}")
        dest = work / stage / "model.pt"
        if not dest.is_file() and not args.dry_run:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ckpt, dest)
        reused.add(stage)
        print(f"{stage}: reusing {ckpt}")
    for name, out, cmd in plan(recipe, work, caches, args.smoke):
        if out.is_file() or name in reused:
            print(f"{name}: {out} exists, skipped")
            continue
        run(cmd, work / "logs" / f"{name}.log", args.dry_run)
    if args.ship:
        for i, cmd in enumerate(ship_commands(recipe, work, caches)):
            run(cmd, work / "logs" / f"ship-{i}.log", args.dry_run)
    if args.dry_run:
        return 0
    rows = summary(recipe, work)
    print(f"\n{'stage':<10} {'val AUC':>8} {'test AUC':>9} {'test logloss':>13} {'test acc':>9} {'T':>6}")
    for r in rows:
        print(f"{r['stage']:<10} " + " ".join(f"{'-' if r[k] is None else format(r[k], '.3f'):>{w}}" for k, w in
              (("val_auc", 8), ("test_auc", 9), ("test_log_loss", 13), ("test_accuracy", 9), ("temperature", 6))))
    (work / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {work / 'summary.json'}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
