"""The default recipe's data loading (fak3zer0.train.recipe, used by tools/train_default.py): face-mesh landmarks for self-blend masks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fak3zer0.data.sbi import blend_mask
from fak3zer0.train.recipe import load_crops


def _write_mesh(cache: Path, missing: set[int]) -> None:
    """A mesh sidecar per entry: a ring of 468 points around the crop centre, NaN for ``missing`` entries."""
    (cache / "mesh468").mkdir()
    angle = np.linspace(0, 2 * np.pi, 468, endpoint=False)
    ring = np.stack([32 + 24 * np.cos(angle), 32 + 28 * np.sin(angle)], 1).astype(np.float32)
    for i in range(60):
        marks = np.full((1, 468, 2), np.nan, np.float32) if i in missing else ring[None]
        np.savez_compressed(cache / "mesh468" / f"e{i}.npz", landmarks=marks)


def test_mesh_landmarks_replace_the_five_points_where_found(crop_cache):
    _write_mesh(crop_cache, missing={3})
    crops, marks, labels, groups, _ = load_crops([crop_cache], 32, None, None, 1, mesh=True)
    assert len(marks) == len(crops) == 60 and labels.tolist() == [i % 2 for i in range(60)]  # index order
    assert [len(m) for m in marks].count(468) == 59 and len(marks[3]) == 5  # no mesh there: five points kept
    assert np.allclose(marks[0].max(0), [(32 + 24) / 2, (32 + 28) / 2], atol=0.1)  # scaled to the 32 px crops
    five = load_crops([crop_cache], 32, None, None, 1)[1]
    assert five.shape == (60, 5, 2) and np.allclose(marks[3], five[3])
    # the mesh hull is the mask's outline: it reaches what the ring covers and not the crop's corner
    mask = blend_mask((32, 32), marks[0], np.random.default_rng(0))
    assert mask[16, 16] > 0.9 and mask[16, 4] > 0 and mask[0, 0] == 0


def test_mesh_without_sidecars_says_how_to_make_them(crop_cache):
    with pytest.raises(SystemExit, match="mesh_landmarks.py"):
        load_crops([crop_cache], 32, None, None, 1, mesh=True)


def test_source_eval_reads_each_models_crops_at_its_own_size(tmp_path):
    """Models of different input sizes are scored on the same entries, each from crops read at its size."""
    import json
    import sys

    import torch

    from conftest import write_video_cache
    from fak3zer0.data.cache import FaceCropCache
    from fak3zer0.evaluate.metrics import log_loss
    from fak3zer0.models import create_model
    from fak3zer0.models.checkpoint import load_checkpoint, save_checkpoint
    from fak3zer0.models.inputs import crops_to_tensor

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from source_eval import main

    cache = write_video_cache(tmp_path / "videos", n_videos=8)
    paths = []
    for size in (48, 72):
        torch.manual_seed(size)
        paths.append(save_checkpoint(tmp_path / f"m{size}.pt", create_model("efficientnet_lite0", size=size).eval(),
                                     temperature=1.5))
    out = tmp_path / "eval.json"
    assert main(["--model", str(paths[0]), "--model", str(paths[1]), "--cache", str(cache), "--split", "all",
                 "--max-crops", "4", "--threads", "1", "--paired-against", str(paths[1]), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = {r["model"]: r for r in report["rows"]}
    assert rows[str(paths[0])]["n"] == rows[str(paths[1])]["n"] == 8 and len(report["paired"]) == 1
    # the 48 px model's video scores are its own mean probabilities over crops read at 48 px
    small, store = load_checkpoint(paths[0]), FaceCropCache(cache)
    entries = list(store.filter())
    with torch.inference_mode():
        probs = [float(torch.sigmoid(small.model(crops_to_tensor(store.crops(e, 48, 4), small.input_spec)) / 1.5)
                       .mean()) for e in entries]
    labels = np.array([int(e["label"]) for e in entries])
    assert rows[str(paths[0])]["log_loss"] == pytest.approx(log_loss(labels, np.array(probs)), abs=1e-4)


def test_ensemble_size_rule_needs_every_check_in_every_seed():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from ensemble_sizes_loso import decide

    def seed(n, gain, flagged, dfdc):
        return {"seed": n, "tf_gain": {"difference": gain}, "tf_real_flagged": flagged, "dfdc_test_auc": dfdc}

    ok = seed(0, 0.039, [0.65, 0.65], [0.871, 0.865])
    assert decide([ok, seed(1, 0.027, [0.60, 0.64], [0.868, 0.866])])[0]
    for bad in (seed(1, 0.019, [0.60, 0.60], [0.87, 0.87]),   # (1) gain below +0.02
                seed(1, 0.05, [0.60, 0.66], [0.87, 0.87]),    # (2) six points more reals flagged
                seed(1, 0.05, [0.60, 0.60], [0.87, 0.859])):  # (3) DFDC test AUC down 0.011
        ship, reasons = decide([ok, bad])
        assert not ship and sum(r.endswith("fails") for r in reasons) == 1


def _weight_cv():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import ensemble_weight_cv

    return ensemble_weight_cv


def test_weight_sweep_scores_left_out_inputs_as_source_eval_does():
    """w = 0 is the mixed member alone, w = 1 the SBI member alone; an input's score is its crops' mean probability."""
    from fak3zer0.evaluate.metrics import fit_temperature, roc_auc, sigmoid

    cv = _weight_cv()
    rng = np.random.default_rng(0)
    y_val = np.repeat([0, 1], 20)
    counts, y = np.array([1, 3, 2, 4, 2, 3]), np.array([0, 0, 0, 1, 1, 1])
    crop_y = np.repeat(y, counts)
    scores = {"val_logits": np.stack([y_val * 2 + rng.normal(size=40), rng.normal(size=40)]), "val_labels": y_val,
              "held_logits": np.stack([rng.normal(size=15), crop_y * 3 + rng.normal(size=15)]),
              "held_counts": counts, "held_labels": y}
    rows = {r["weight"]: r for r in cv.sweep(scores)}
    assert set(rows) == set(cv.WEIGHTS) and len(rows) == 21
    assert rows[0.0]["val_auc"] == pytest.approx(roc_auc(y_val, scores["val_logits"][0]))
    t = fit_temperature(scores["val_logits"][1], y_val)  # refitted on the validation logits at w = 1
    assert rows[1.0]["temperature"] == pytest.approx(t)
    last = sigmoid(scores["held_logits"][1][-3:] / t).mean()  # the sixth input: the last three crops
    assert rows[1.0]["p"][-1] == pytest.approx(last)
    assert rows[1.0]["auc"] == pytest.approx(roc_auc(y, rows[1.0]["p"]))


def test_weight_rule_picks_best_mean_left_out_auc_and_checks_it_nested():
    cv = _weight_cv()

    def rows(auc_at, val_drop=0.0, flagged=0.5):
        return [{"weight": w, "val_auc": 0.9 - val_drop * w, "auc": auc_at(w), "real_flagged": flagged - 0.2 * w}
                for w in cv.WEIGHTS]

    # both directions rank their left-out source best near w = 0.6; validation AUC falls 0.1 per unit weight
    peak = lambda w: 0.7 - (w - 0.6) ** 2  # noqa: E731
    directions = {"talking-face": [rows(peak, 0.1), rows(peak, 0.1)], "dfdc": [rows(peak, 0.1)]}
    shipped = {w: 0.85 - 0.04 * w for w in cv.WEIGHTS}
    d = cv.decide(directions, shipped)
    assert d["weight"] == 0.5  # 0.6 would drop validation AUC by 0.06 > 0.05: not admissible
    assert d["nested"]["dfdc"]["v4_weights"] == [0.2] and d["nested"]["dfdc"]["weight_chosen_elsewhere"] == 0.5
    assert d["ship"], d["reasons"]
    # the shipped members losing more than 0.05 validation AUC at w* blocks it
    assert not cv.decide(directions, {w: 0.85 - 0.2 * w for w in cv.WEIGHTS})["ship"]
    # a direction whose left-out AUC falls with w pulls w* down and fails the nested check
    directions["dfdc"] = [rows(lambda w: 0.7 - 0.3 * w, 0.1)]
    d = cv.decide(directions, shipped)
    assert d["nested"]["talking-face"]["weight_chosen_elsewhere"] == 0.0 and not d["ship"]


def test_micro_batches_add_up_to_the_whole_batch_gradient():
    """--micro-batch: same loss and, for a model without BatchNorm, the same gradient as one whole batch."""
    import sys

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from train_default import accumulate

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1),
                                torch.nn.Flatten(0))
    x, y = torch.randn(10, 3, 2, 2), (torch.arange(10) % 2).float()
    grads = []
    for micro in (None, 4):  # 4 + 4 + 2: an uneven last piece is weighted by its share too
        model.zero_grad()
        loss = accumulate(model, x, y, micro)
        grads.append((loss, [p.grad.clone() for p in model.parameters()]))
    assert grads[0][0] == pytest.approx(grads[1][0], abs=1e-6)
    for whole, pieces in zip(grads[0][1], grads[1][1]):
        assert torch.allclose(whole, pieces, atol=1e-6)


def test_weight_average_is_the_mean_of_the_steps_it_saw():
    """--average-from: float entries (weights, BatchNorm statistics) are the mean of the averaged steps."""
    import sys

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from train_default import WeightAverage

    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    average = WeightAverage(model)
    with pytest.raises(ValueError):
        average.state_dict(model)
    seen = []
    for step in range(3):
        with torch.no_grad():
            model[0].weight.fill_(float(step))
            model[1].running_mean.fill_(2.0 * step)
        model[1].num_batches_tracked.fill_(10 + step)
        average.update(model)
        seen.append(model[0].weight.clone())
    mean = average.state_dict(model)
    assert torch.allclose(mean["0.weight"], torch.stack(seen).mean(0))
    assert torch.allclose(mean["1.running_mean"], torch.full((2,), 2.0))
    assert mean["1.num_batches_tracked"].item() == 12  # integer buffers are the last step's, not averaged
    model.load_state_dict(mean)
    assert torch.allclose(model[0].weight, torch.ones(3, 2).T)


def test_augment_with_mask_flips_image_and_mask_together_and_matches_augment():
    from fak3zer0.train.recipe import augment, augment_with_mask

    img = np.zeros((32, 32, 3), np.uint8)
    img[:, :8] = 255                                   # a bright band on the left
    mask = np.zeros((32, 32), np.float32)
    mask[:, :8] = 1.0                                  # the mask marks the same band
    flipped = 0
    for seed in range(12):
        a, m = augment_with_mask(img, mask, np.random.default_rng(seed))
        assert np.array_equal(a, augment(img, np.random.default_rng(seed)))  # same draws, same image
        left_bright = a[:, :8].mean() > a[:, -8:].mean()
        assert left_bright == (m[:, :8].mean() > m[:, -8:].mean())
        flipped += not left_bright
    assert 0 < flipped < 12


def test_boundary_head_learns_where_the_seam_is():
    """--boundary-loss: the head reads the last stride-16 block, targets 4M(1-M) pooled to that grid, and its
    loss falls when trained; detach() removes the hook so the saved model is the plain classifier."""
    import sys

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from train_default import BoundaryHead, accumulate

    from fak3zer0.models import create_model

    torch.manual_seed(0)
    model = create_model("efficientnet_lite0", pretrained=None, size=64)
    head = BoundaryHead(model, 64)
    assert head.grid == 4
    masks = torch.zeros(4, 64, 64)
    masks[:2, 16:48, 16:48] = 0.5                      # two "self-blends"; 4M(1-M) = 1 inside
    x, y = torch.randn(4, 3, 64, 64), torch.tensor([1.0, 1.0, 0.0, 0.0])
    opt = torch.optim.Adam(list(model.parameters()) + list(head.parameters()), lr=1e-3)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        model(x)
        losses.append(head.loss(masks).item())
        accumulate(model, x, y, 2, (head, masks, 10.0))
        opt.step()
    assert losses[-1] < losses[0] * 0.7
    head.detach()
    model(x)
    assert head.tap is None
    assert not any(k.startswith("conv") for k in model.state_dict())


def test_group_share_keeps_whole_groups_reproducibly():
    """--group-share: a seeded share of the leakage groups, each kept whole, and never none."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from train_default import keep_group_share

    groups = [f"g{i // 3}" for i in range(30)]          # 10 groups of 3 entries
    idx = np.arange(30)
    half = keep_group_share(idx, groups, 0.5, seed=0)
    assert len({groups[i] for i in half}) == 5 and len(half) == 15
    for g in {groups[i] for i in half}:                 # whole groups only
        assert sum(groups[i] == g for i in half) == 3
    assert np.array_equal(half, keep_group_share(idx, groups, 0.5, seed=0))
    assert not np.array_equal(half, keep_group_share(idx, groups, 0.5, seed=1))
    assert len(keep_group_share(idx[:3], groups, 0.01, seed=0)) == 3
    assert np.array_equal(keep_group_share(idx, groups, 1.0, seed=0), idx)
