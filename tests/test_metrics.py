"""Metrics against hand-computed values and known cases (perfect, inverted, random, ties, one class)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from fak3zer0.evaluate import metrics as M

# A small case worked out by hand: scores 0.1 (real), 0.4 (real), 0.35 (fake), 0.8 (fake).
Y4 = [0, 0, 1, 1]
S4 = [0.1, 0.4, 0.35, 0.8]


def test_average_ranks_share_ties():
    assert M.average_ranks(np.array([1.0, 2.0, 2.0, 3.0])).tolist() == [1.0, 2.5, 2.5, 4.0]
    assert M.average_ranks(np.array([5.0, 5.0, 5.0])).tolist() == [2.0, 2.0, 2.0]


def test_auc_hand_computed():
    # pairs (fake, real): (0.35, 0.1) win, (0.35, 0.4) loss, (0.8, *) two wins -> 3/4
    assert M.roc_auc(Y4, S4) == pytest.approx(0.75)


def test_auc_ties_count_half():
    # (0.6 vs 0.2) 1, (0.6 vs 0.6) 1/2, (0.9 vs 0.2) 1, (0.9 vs 0.6) 1 -> 3.5 / 4
    assert M.roc_auc([0, 0, 1, 1], [0.2, 0.6, 0.6, 0.9]) == pytest.approx(0.875)
    assert M.roc_auc([0, 1, 0, 1], [0.5] * 4) == pytest.approx(0.5)


def test_perfect_and_inverted():
    y = [0, 0, 1, 1]
    good, bad = [0.1, 0.2, 0.8, 0.9], [0.9, 0.8, 0.2, 0.1]
    assert M.roc_auc(y, good) == 1.0 and M.roc_auc(y, bad) == 0.0
    eer, thr = M.equal_error_rate(y, good)
    assert eer == 0.0 and thr == pytest.approx(0.8)  # lowest fake score: every sample right
    assert M.average_precision(y, good) == pytest.approx(1.0)
    assert M.equal_error_rate(y, bad)[0] == pytest.approx(1.0)
    # inverted PR: (R, P) = (0.5, 1/3) then (1, 1/2) -> 0.5 * 1/3 + 0.5 * 1/2
    assert M.average_precision(y, bad) == pytest.approx(0.5 / 3 + 0.25)
    m = M.compute_metrics(y, good)
    assert m["accuracy_at_eer"] == 1.0 and m["balanced_accuracy_at_eer"] == 1.0


def test_random_scores_near_chance():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 20000)
    s = rng.random(20000)
    assert abs(M.roc_auc(y, s) - 0.5) < 0.02
    assert abs(M.equal_error_rate(y, s)[0] - 0.5) < 0.02
    assert abs(M.average_precision(y, s) - y.mean()) < 0.02


def test_auc_matches_pairwise_definition():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300), 1)  # many ties
    pos, neg = s[y == 1], s[y == 0]
    pairwise = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (pos.size * neg.size)
    assert M.roc_auc(y, s) == pytest.approx(pairwise)
    # trapezoid area under the ROC curve equals the rank AUC (ties give diagonal segments)
    fpr, tpr, _ = M.roc_curve(y, s)
    assert np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2) == pytest.approx(pairwise)


def test_roc_and_pr_curves_hand_computed():
    fpr, tpr, thr = M.roc_curve(Y4, S4)
    assert fpr.tolist() == [0, 0, 0.5, 0.5, 1]
    assert tpr.tolist() == [0, 0.5, 0.5, 1, 1]
    assert thr[0] == np.inf and thr[1:].tolist() == [0.8, 0.4, 0.35, 0.1]
    prec, rec, _ = M.pr_curve(Y4, S4)
    assert rec.tolist() == [0, 0.5, 0.5, 1, 1]
    assert prec[1:].tolist() == pytest.approx([1, 0.5, 2 / 3, 0.5])
    # AP = 0.5 * 1 + 0.5 * 2/3
    assert M.average_precision(Y4, S4) == pytest.approx(0.5 + 1 / 3)


def test_eer_hand_computed():
    # at threshold 0.4: one real of two called fake, one fake of two missed -> EER 0.5
    eer, thr = M.equal_error_rate(Y4, S4)
    assert eer == pytest.approx(0.5) and thr == pytest.approx(0.4)
    # interpolated crossing: ROC (0, .5) -> (1, 1) for an all-tied pair of groups
    eer, _ = M.equal_error_rate([0, 1], [0.3, 0.3])
    assert eer == pytest.approx(0.5)


def test_log_loss_and_dfdc_clipping():
    assert M.log_loss([1, 0], [0.8, 0.3]) == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2)
    assert M.log_loss([1], [0.0]) == pytest.approx(-math.log(1e-15))
    assert M.log_loss([0], [1.0]) == pytest.approx(-math.log(1e-15), rel=1e-3)
    assert M.log_loss([1, 0], [0.5, 0.5]) == pytest.approx(math.log(2))


def test_accuracy_and_balanced_accuracy():
    y, p = [0, 0, 0, 1], [0.6, 0.1, 0.2, 0.9]
    assert M.accuracy(y, p) == pytest.approx(0.75)
    assert M.balanced_accuracy(y, p) == pytest.approx((2 / 3 + 1) / 2)
    assert M.accuracy(y, p, threshold=0.7) == 1.0
    assert M.accuracy([1], [0.5]) == 1.0  # threshold is inclusive: p >= 0.5 is fake


def test_ece_hand_computed():
    # bin of 0.1: mean p 0.1, half fake -> 0.4 * 1/2; bin of 0.9: 0.9 vs 1 -> 0.1 * 1/2
    assert M.expected_calibration_error([0, 1, 1, 1], [0.1, 0.1, 0.9, 0.9]) == pytest.approx(0.25)
    assert M.expected_calibration_error([0, 1], [0.0, 1.0]) == pytest.approx(0.0)
    mp, frac, cnt = M.calibration_curve([0, 1, 1, 1], [0.1, 0.1, 0.9, 0.9])
    assert cnt.tolist() == [2, 2] and frac.tolist() == [0.5, 1.0]


def test_fit_temperature_recovers_overconfidence():
    rng = np.random.default_rng(2)
    true = rng.normal(0, 2, 20000)
    y = (rng.random(true.size) < M.sigmoid(true)).astype(int)
    t = M.fit_temperature(3.0 * true, y)
    assert t == pytest.approx(3.0, rel=0.1)
    grid = np.exp(np.linspace(np.log(0.5), np.log(10), 400))
    best = grid[np.argmin([M.scaled_nll(3.0 * true, y, g) for g in grid])]
    assert t == pytest.approx(best, rel=0.02)
    assert M.scaled_nll(3 * true, y, t) <= M.scaled_nll(3 * true, y, 1.0)


def test_fit_temperature_degenerate():
    assert M.fit_temperature([1.0, 2.0], [1, 1]) == 1.0
    assert M.fit_temperature([], []) == 1.0
    assert M.fit_temperature([0.0, 0.0], [0, 1]) == 1.0


def test_compute_metrics_keys_and_values():
    m = M.compute_metrics(Y4, S4)
    assert set(m) == set(M.METRIC_KEYS)
    assert {"auc", "log_loss", "eer", "ap", "accuracy", "balanced_accuracy", "n"} <= set(m)
    assert m["n"] == 4 and m["auc"] == pytest.approx(0.75) and m["eer_threshold"] == pytest.approx(0.4)
    # at 0.5 only 0.8 is called fake: 3 of 4 right; recall real 1, fake 1/2
    assert m["accuracy"] == pytest.approx(0.75) and m["balanced_accuracy"] == pytest.approx(0.75)
    assert m["accuracy_at_eer"] == pytest.approx(0.5) and m["note"] is None


def test_single_class_and_empty_never_crash():
    m = M.compute_metrics([1, 1, 1], [0.2, 0.9, 0.7])
    assert m["auc"] is None and m["eer"] is None and m["ap"] is None and m["eer_threshold"] is None
    assert "only fake" in m["note"]
    assert m["accuracy"] == pytest.approx(2 / 3) and m["log_loss"] is not None and m["n"] == 3
    e = M.compute_metrics([], [])
    assert e["n"] == 0 and e["auc"] is None and e["note"]
    nan = M.compute_metrics([0, 1, 1], [0.1, float("nan"), 0.8])
    assert nan["n"] == 2 and "non-finite" in nan["note"]
    assert M.roc_auc([0, 0], [0.1, 0.2]) is None


def test_bad_inputs_are_reported():
    with pytest.raises(ValueError):
        M.roc_auc([0, 1], [0.1])
    with pytest.raises(ValueError):
        M.roc_auc([0, 2], [0.1, 0.2])


def test_aggregation_by_video():
    ids, p, y = M.aggregate_by_video(["a", "a", "b"], [0.2, 0.4, 0.9], [0, 0, 1])
    assert ids == ["a", "b"] and p.tolist() == pytest.approx([0.3, 0.9]) and y.tolist() == [0, 1]
    _, p, _ = M.aggregate_by_video(["a", "a", "a"], [0.1, 0.2, 0.9], rule="median")
    assert p.tolist() == pytest.approx([0.2])
    # per face track, then the most suspicious face (the Detector's rule)
    _, p, _ = M.aggregate_by_video(["a"] * 4, [0.1, 0.3, 0.8, 0.6], tracks=[0, 0, 1, 1])
    assert p.tolist() == pytest.approx([0.7])
    _, p, _ = M.aggregate_by_video(["a", "a"], [0.5, 0.9], rule="logit_mean")
    assert p[0] == pytest.approx(M.sigmoid((0 + math.log(9)) / 2))
    with pytest.raises(ValueError):
        M.aggregate_probs([0.5], "max_of_nothing")


def test_aggregation_rules_match_the_detector():
    det = pytest.importorskip("fak3zer0.api.detector")
    rng = np.random.default_rng(3)
    for rule in M.AGGREGATION_RULES:
        for n in (1, 2, 7):
            p = rng.random(n)
            assert M.aggregate_probs(p, rule) == pytest.approx(det.aggregate(p, rule), abs=1e-12)


def test_paired_auc_difference_resamples_the_same_inputs():
    from fak3zer0.evaluate.metrics import paired_auc_difference

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 50)
    good = y + rng.normal(0, 0.5, y.size)  # AUC about 0.92
    noise = rng.normal(0, 1, y.size)  # about 0.5
    d = paired_auc_difference(y, good, noise, resamples=300)
    assert d["difference"] == pytest.approx(M.roc_auc(y, good) - M.roc_auc(y, noise), abs=1e-4)
    assert 0 < d["ci95"][0] < d["difference"] < d["ci95"][1] and d["share_le_0"] == 0.0
    same = paired_auc_difference(y, good, good, resamples=50)
    assert same["difference"] == 0 and same["ci95"] == [0, 0] and same["share_le_0"] == 1.0
    assert same["resamples"] == 50
    with pytest.raises(ValueError, match="both labels"):
        paired_auc_difference([1, 1], [0.2, 0.3], [0.1, 0.2])


def test_reals_needed_for_a_false_alarm_bound():
    assert [M.reals_needed(a) for a in (0.05, 0.1, 0.2, 0.5)] == [19, 9, 4, 1]
    with pytest.raises(ValueError):
        M.reals_needed(0.0)


def test_false_alarm_threshold_is_the_conformal_order_statistic():
    scores = np.array([0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 0.35])  # k = 10
    # alpha 0.2: rank ceil(11 * 0.8) = 9 -> the 9th smallest, 0.8; "p >= t" flags only scores above it
    t = M.false_alarm_threshold(scores, 0.2)
    assert 0.8 < t < 0.8 + 1e-12
    assert (scores >= t).sum() == 1
    assert M.false_alarm_threshold(scores, 0.1) > 0.9          # rank 10: the largest
    with pytest.raises(ValueError, match="at least 19"):
        M.false_alarm_threshold(scores, 0.05)


def test_false_alarm_threshold_bounds_false_alarms_on_exchangeable_reals():
    """Reals from one distribution: the share of new reals called fake averages (k + 1 - rank) / (k + 1) <= alpha,
    whatever the distribution (here a skewed one, as an uncalibrated model gives an unseen source)."""
    rng = np.random.default_rng(0)
    k, alpha, draws = 19, 0.1, 4000
    rank = math.ceil((k + 1) * (1 - alpha))
    expected = (k + 1 - rank) / (k + 1)                       # 0.1 exactly
    flagged = []
    for _ in range(draws):
        reals = rng.beta(5, 2, size=k + 200)
        t = M.false_alarm_threshold(reals[:k], alpha)
        flagged.append((reals[k:] >= t).mean())
    assert abs(np.mean(flagged) - expected) < 0.01
    assert np.mean(flagged) <= alpha + 0.01
