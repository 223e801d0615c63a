"""tools/reproduce_default.py: the shipped model's recipe file, its plan, and a one-epoch run of every stage."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import write_crop_cache, write_video_cache

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import reproduce_default as rd  # noqa: E402

TINY_RECIPE = """
caches:
  images: {tool: prep_dev_images}
  videos: {tool: preprocess, size: 72, frames: 4}
stages:
  first: {caches: [images], args: {size: 64, epochs: 1, threads: 1}}
  tuned: {caches: [images, videos], init: first, args: {size: 64, max_crops: 4, sbi: 0.3, sbi_lower: 0.5, threads: 1}}
  blends: {caches: [images, videos], args: {size: 64, max_crops: 4, real_only: true, sbi: 0.5, threads: 1}}
ensemble:
  members: [tuned, blends]
  caches: [images, videos]
  args: {max_crops: 4, keep_first_within: 0.02, threads: 1}
"""


def test_flags_follow_the_tools_options():
    assert rd.flags({"max_crops": 32, "real_only": True, "mesh": False, "lr": 1e-4}) == \
        ["--max-crops", "32", "--real-only", "--lr", "0.0001"]


def test_the_shipped_recipe_plans_the_shipped_stages(tmp_path):
    recipe = rd.load_recipe(rd.DEFAULT_RECIPE)
    caches = {"images": tmp_path / "img", "videos": tmp_path / "vid"}
    steps = rd.plan(recipe, tmp_path / "w", caches, smoke=False)
    assert [s[0] for s in steps] == ["v1", "v2", "sbi_only", "ensemble"]
    cmds = {name: cmd for name, _, cmd in steps}
    assert cmds["v2"][cmds["v2"].index("--init") + 1] == str(tmp_path / "w" / "v1" / "model.pt")
    assert "--real-only" in cmds["sbi_only"] and "--init" not in cmds["sbi_only"]
    assert cmds["ensemble"][2:4] == [str(tmp_path / "w" / m / "model.pt") for m in ("v2", "sbi_only")]


def test_the_recipe_file_matches_how_the_shipped_ensemble_was_joined():
    from fak3zer0.defaults import DEFAULT_MODEL
    from fak3zer0.models.checkpoint import read_checkpoint
    from fak3zer0.models.hub import shipped_models

    if DEFAULT_MODEL not in shipped_models():
        pytest.skip("default model not shipped")
    shipped = read_checkpoint(shipped_models()[DEFAULT_MODEL])
    recorded = shipped["meta"]["args"]
    recipe = rd.load_recipe(rd.DEFAULT_RECIPE)
    ens = recipe["ensemble"]["args"]
    assert {k: str(v) for k, v in ens.items() if k != "threads"} == \
        {k: recorded[k] for k in ens if k != "threads"}
    # each member's input size is the one its recipe stage trains at
    sizes = [m["config"]["size"] for m in shipped["config"]["members"]]
    assert sizes == [recipe["stages"][m]["args"]["size"] for m in recipe["ensemble"]["members"]]


def test_a_bad_recipe_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY_RECIPE.replace("init: first", "init: nowhere"))
    with pytest.raises(SystemExit, match="unknown cache or init"):
        rd.load_recipe(bad)


def test_smoke_run_trains_every_stage_joins_them_and_resumes(tmp_path, capsys):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(TINY_RECIPE)
    images = write_crop_cache(tmp_path / "images", n=40)
    videos = write_video_cache(tmp_path / "videos", sources=2)
    argv = [str(recipe), "--work", str(tmp_path / "w"), "--images", str(images), "--videos", str(videos), "--smoke"]
    assert rd.main(argv) == 0
    rows = {r["stage"]: r for r in json.loads((tmp_path / "w" / "summary.json").read_text())}
    assert {"first", "tuned", "blends", "ensemble"} <= set(rows)
    assert all(0 <= rows[s]["val_auc"] <= 1 and rows[s]["temperature"] > 0 for s in ("first", "ensemble"))
    capsys.readouterr()
    assert rd.main(argv) == 0  # everything is there: nothing is trained again
    out = capsys.readouterr().out
    assert out.count("skipped") == 4 and "$ " not in out


def test_smoke_weights_cannot_be_shipped(tmp_path):
    with pytest.raises(SystemExit, match="cannot be shipped"):
        rd.main(["--smoke", "--ship", "--work", str(tmp_path)])
