"""The shipped default model: loads offline, is calibrated, and separates real from fake on held-out dev data."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from fak3zer0.defaults import DEFAULT_MODEL
from fak3zer0.models.hub import shipped_models
from fak3zer0.train.recipe import recipe_split  # the split the shipped weights were trained on

pytestmark = pytest.mark.skipif(DEFAULT_MODEL not in shipped_models(), reason="default model not shipped")


def test_default_model_checkpoint_is_complete():
    from fak3zer0.models.checkpoint import read_checkpoint

    path = shipped_models()[DEFAULT_MODEL]
    assert path.stat().st_size < 50e6
    ck = read_checkpoint(path)
    assert ck["model"] and ck["input_spec"]["kind"] == "frame"
    assert 0.05 < ck["calibration"]["temperature"] < 20
    assert ck["meta"].get("description")
    assert ck["metrics"].get("test_auc", 0) > 0.6


def test_default_model_on_held_out_dev_faces(dev_dir):
    """Held-out DFDC face crops (groups the model never saw): AUC well above chance."""
    from fak3zer0.api.detector import Detector

    rows = list(csv.DictReader(open(dev_dir / "labels" / "dfdc_faces224_metadata_subset.csv")))
    picked = {"REAL": [], "FAKE": []}
    for r in rows:
        group = (r["original"] or r["videoname"]).replace(".mp4", "")
        if recipe_split(group) == "test" and len(picked[r["label"]]) < 20:
            path = dev_dir / "images" / ("real" if r["label"] == "REAL" else "fake") / \
                f"dfdc_face224_{r['videoname'].replace('.mp4', '')}.jpg"
            if path.exists():
                picked[r["label"]].append(path)
    assert len(picked["REAL"]) == len(picked["FAKE"]) == 20
    det = Detector(frames=1)
    scores, labels = [], []
    for label, paths in ((0, picked["REAL"]), (1, picked["FAKE"])):
        for v in det.score([det.prepare(p) for p in paths]):
            if v.fake_probability is not None:
                scores.append(v.fake_probability)
                labels.append(label)
    scores, labels = np.array(scores), np.array(labels)
    pos, neg = scores[labels == 1], scores[labels == 0]
    auc = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert len(scores) >= 30
    assert auc > 0.65, auc
    assert all(0 <= s <= 1 and not math.isnan(s) for s in scores)


def test_default_model_runs_on_generated_clip(media_dir):
    from fak3zer0 import Detector

    v = Detector(frames=8).detect(media_dir / "astronaut_pan.mp4")
    assert v.verdict in {"real", "fake"} and v.model == DEFAULT_MODEL and len(v.faces) == 1


def test_detect_table_points_to_the_model_card(media_dir, capsys):
    """The shipped model's card travels inside the package; the readable table names it when it scored a face."""
    from fak3zer0.cli import main as cli_main
    from fak3zer0.models.hub import model_card

    card = model_card(DEFAULT_MODEL)
    assert card is not None and card.read_text().startswith("# Model card")
    assert cli_main(["detect", "--frames", "4", "--no-progress", str(media_dir / "astronaut.png")]) == 0
    assert f"model card: {card}" in capsys.readouterr().out
    assert cli_main(["detect", "--frames", "4", "--no-progress", str(media_dir / "no_face.png")]) == 0
    assert "model card" not in capsys.readouterr().out  # nothing was scored: no calibration note
    assert model_card("no-such-model") is None
