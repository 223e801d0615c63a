"""tools/choose_aggregation.py: out-of-fold scoring of source-CV fold models, flip test-time augmentation,
and the decision rule; fak3zer0.train.recipe.source_folds deals sources into folds."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_video_cache

from fak3zer0.evaluate.metrics import AGGREGATION_RULES
from fak3zer0.models import create_model
from fak3zer0.models.checkpoint import save_checkpoint
from fak3zer0.train.recipe import source_folds

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import choose_aggregation as ca  # noqa: E402


@pytest.fixture(scope="module")
def source_cv(tmp_path_factory):
    """A 4-source video cache and a 2-fold source-CV work folder of untrained models (T = 2 and 0.5)."""
    root = tmp_path_factory.mktemp("oof")
    cache = write_video_cache(root / "cache", sources=4)
    for i, temperature in enumerate((2.0, 0.5)):
        torch.manual_seed(i)
        save_checkpoint(root / "work" / f"fold{i}" / "model.pt", create_model("efficientnet_lite0", size=64).eval(),
                        temperature=temperature)
    return cache, root / "work", root


def test_source_folds_give_every_fold_real_and_fake_sources(source_cv):
    cache, _, _ = source_cv
    folds = source_folds(cache, 2)
    assert sorted(s for f in folds for s in f) == ["s0", "s1", "s2", "s3"]
    # s0, s2 hold the reals (even videos), s1, s3 the fakes: one of each per fold
    assert all({int(s[1]) % 2 for s in f} == {0, 1} for f in folds)
    assert source_folds(cache, 2) == folds


def test_each_clip_is_scored_by_the_fold_that_left_its_source_out(source_cv):
    cache, work, root = source_cv
    logits_dir = root / "logits"
    sources, items, logits, covered, info = ca.out_of_fold(work, cache, logits_dir, 8)
    assert covered.all() and len(items) == info["inputs"]
    for i, held in enumerate(info["folds"]):
        loaded, _, items_i, own, _ = ca.score_cache(str(work / f"fold{i}" / "model.pt"), cache, logits_dir, 8)
        sel = [j for j, it in enumerate(items) if sources[it.src].entries[it.entry].source in held]
        assert sel
        np.testing.assert_allclose(logits[sel], own[sel] / loaded.temperature, rtol=1e-6)


def test_flip_scoring_is_mirror_invariant_and_the_mean_of_both_views():
    torch.manual_seed(0)
    model = create_model("efficientnet_lite0", size=64).eval()
    x = torch.randn(3, 3, 64, 64)
    tta = ca.mirror_mean(model).eval()
    with torch.inference_mode():
        both = (model(x) + model(torch.flip(x, dims=[-1]))) / 2
        torch.testing.assert_close(tta(x), both)
        torch.testing.assert_close(tta(torch.flip(x, dims=[-1])), tta(x), atol=1e-5, rtol=1e-4)


def test_out_of_fold_run_writes_cells_decision_and_flip_comparison(source_cv):
    cache, work, root = source_cv
    out = root / "aggregation.json"
    assert ca.main(["--out-of-fold", str(work), "--cache", str(cache), "--compare-flip", "--bootstrap", "50",
                    "--max-auc-drop", "0.01", "--logits-dir", str(root / "logits"), "--threads", "1",
                    "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res["cells"]) == {"oof", "oof_test", "oof_all"}
    assert res["cells"]["oof_all"]["counts"]["videos"] == 12
    assert (res["cells"]["oof"]["counts"]["videos"] + res["cells"]["oof_test"]["counts"]["videos"]) == 12
    assert res["decision"]["rule"] in AGGREGATION_RULES and res["bootstrap"]["videos"] == \
        res["cells"]["oof"]["counts"]["videos"]
    flip = res["cells"]["oof_all"]["flip_tta"]
    assert {"plain", "flip", "flip_minus_plain"} <= set(flip)
    assert flip["plain"]["auc"] == pytest.approx(res["cells"]["oof_all"]["video_by_rule"]["mean"]["auc"])
    assert res["data"]["tta"] == "none" and len(res["data"]["models"]) == 2


def test_a_rule_other_than_mean_needs_a_clear_win_and_no_auc_loss():
    rules = ["mean", "median"]
    cells = {"mean": {"log_loss": 0.70, "auc": 0.80}, "median": {"log_loss": 0.60, "auc": 0.78}}
    boot = {"videos": 50, "by_rule": {"median": {"diff_vs_mean_ci95": [-0.2, -0.01]}}}
    assert ca.decide(cells, boot, rules)["rule"] == "median"
    assert ca.decide(cells, boot, rules, max_auc_drop=0.01)["rule"] == "mean"
    boot["by_rule"]["median"]["diff_vs_mean_ci95"] = [-0.2, 0.01]
    assert ca.decide(cells, boot, rules)["rule"] == "mean"
