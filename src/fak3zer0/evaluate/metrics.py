"""Detection metrics in plain numpy: ranking, calibration, thresholds, frame -> video aggregation.

Conventions: ``labels`` are 0 (real) / 1 (fake); ``probs`` / ``scores`` are fake
probabilities (any monotone score works for the ranking metrics). Every function accepts
empty or single-class input and answers ``None`` where a metric is undefined instead of
raising, so one degenerate test set never takes an evaluation down.
"""
from __future__ import annotations

import math
from typing import Any, Hashable, Iterable, Sequence

import numpy as np

#: DFDC / Kaggle log-loss rule: predictions are clipped to [eps, 1 - eps] before the log.
LOG_LOSS_EPS = 1e-15
ECE_BINS = 15
#: Frame -> face aggregation rules; the same names and formulas as
#: :func:`fak3zer0.api.detector.aggregate` (a test checks that they agree).
AGGREGATION_RULES = ("mean", "median", "logit_mean", "top_half")
#: The outlier-robust rule compared against ``mean`` when a run picks its aggregation.
ROBUST_RULE = "median"

METRIC_KEYS = (
    "auc", "log_loss", "eer", "ap", "accuracy", "balanced_accuracy", "n",
    "accuracy_at_eer", "balanced_accuracy_at_eer", "eer_threshold", "ece", "note",
)


def _as_arrays(labels: Iterable[Any], scores: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(list(labels) if not isinstance(labels, np.ndarray) else labels).astype(np.int64).reshape(-1)
    s = np.asarray(list(scores) if not isinstance(scores, np.ndarray) else scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"labels ({y.size}) and scores ({s.size}) differ in length")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    return y, s


def _two_classes(y: np.ndarray) -> bool:
    return bool(y.size) and 0 < int(y.sum()) < y.size


# ---------------------------------------------------------------- ranking

def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x``; tied values share the mean of the ranks they span."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    # start index of each run of equal values
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], xs.size]
    mean_rank = (starts + ends + 1) / 2.0  # mean of (start+1 .. end)
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def roc_auc(labels, scores) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with average ranks: a tie counts one half).

    ``None`` when only one class is present.
    """
    y, s = _as_arrays(labels, scores)
    if not _two_classes(y):
        return None
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    r = average_ranks(s)
    u = r[y == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _threshold_counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each distinct score t (descending): #positives and #negatives with score >= t."""
    order = np.argsort(-s, kind="mergesort")
    ys, ss = y[order], s[order]
    last_of_run = np.r_[ss[1:] != ss[:-1], True] if ss.size else np.zeros(0, bool)
    idx = np.flatnonzero(last_of_run)
    tp = np.cumsum(ys)[idx].astype(np.float64)
    fp = (idx + 1) - tp
    return tp, fp, ss[idx]


def roc_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)``; a sample is called fake when ``score >= threshold``.

    Starts at ``(0, 0)`` with threshold ``+inf`` and ends at ``(1, 1)``. With one class
    the missing rate is all NaN.
    """
    y, s = _as_arrays(labels, scores)
    tp, fp, thr = _threshold_counts(y, s)
    n_pos, n_neg = float(y.sum()), float(y.size - y.sum())
    tp, fp, thr = np.r_[0.0, tp], np.r_[0.0, fp], np.r_[np.inf, thr]
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = tp / n_pos if n_pos else np.full(tp.shape, np.nan)
        fpr = fp / n_neg if n_neg else np.full(fp.shape, np.nan)
    return fpr, tpr, thr


def pr_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(precision, recall, thresholds)`` over decreasing thresholds (recall increasing).

    Starts at recall 0 / precision 1 (threshold ``+inf``), as is customary for plots.
    """
    y, s = _as_arrays(labels, scores)
    tp, fp, thr = _threshold_counts(y, s)
    n_pos = float(y.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / np.maximum(tp + fp, 1)
        recall = tp / n_pos if n_pos else np.full(tp.shape, np.nan)
    return np.r_[1.0, precision], np.r_[0.0, recall], np.r_[np.inf, thr]


def average_precision(labels, scores) -> float | None:
    """AP = sum over thresholds of (R_k - R_{k-1}) * P_k (step interpolation, no smoothing).

    ``None`` when only one class is present.
    """
    y, s = _as_arrays(labels, scores)
    if not _two_classes(y):
        return None
    precision, recall, _ = pr_curve(y, s)
    return float(np.sum(np.diff(recall) * precision[1:]))


def equal_error_rate(labels, scores) -> tuple[float | None, float | None]:
    """``(eer, threshold)``: where the false positive rate equals the false negative rate.

    The EER is linearly interpolated between the two ROC points around the crossing; the
    threshold is the real score of the ROC point closest to it (fake when ``score >=
    threshold``), so applying it reproduces an operating point of the data.
    ``(None, None)`` with one class.
    """
    y, s = _as_arrays(labels, scores)
    if not _two_classes(y):
        return None, None
    fpr, tpr, thr = roc_curve(y, s)
    fnr = 1.0 - tpr
    d = fnr - fpr  # starts at +1, ends at -1, non-increasing
    k = int(np.flatnonzero(d <= 0)[0])
    if d[k] == 0 or k == 0:
        eer = float(fpr[k])
    else:
        t = d[k - 1] / (d[k - 1] - d[k])
        eer = float(fpr[k - 1] + t * (fpr[k] - fpr[k - 1]))
    best = k if (k == 0 or abs(d[k]) <= abs(d[k - 1])) else k - 1
    threshold = thr[best]
    if not np.isfinite(threshold):
        threshold = np.nextafter(s.max(), np.inf)
    return eer, float(threshold)


def reals_needed(false_alarm: float) -> int:
    """Fewest genuine inputs :func:`false_alarm_threshold` needs to bound false alarms at ``false_alarm``."""
    if not 0 < false_alarm < 1:
        raise ValueError(f"false_alarm must be between 0 and 1, got {false_alarm}")
    return math.ceil(round(1 / false_alarm - 1, 9))


def false_alarm_threshold(real_scores, false_alarm: float) -> float:
    """A threshold from genuine inputs only that calls at most ``false_alarm`` of similar reals fake.

    Split-conformal: with ``k`` real scores, ``t`` is the ``ceil((k + 1)(1 - false_alarm))``-th smallest.
    A further real input exchangeable with these (the same kind of footage) scores above ``t`` with
    probability at most ``false_alarm``, however well or badly the model is calibrated on it. The
    returned value is the next float above ``t``, so the usual rule (fake when ``p >= threshold``)
    flags exactly the scores above ``t``. Raises ``ValueError`` with fewer than
    :func:`reals_needed` scores.
    """
    s = np.sort(np.asarray(real_scores, dtype=np.float64).reshape(-1))
    need = reals_needed(false_alarm)
    if s.size < need:
        raise ValueError(f"a false-alarm bound of {false_alarm:g} needs at least {need} real inputs, got {s.size}")
    rank = math.ceil(round((s.size + 1) * (1 - false_alarm), 9))
    return float(np.nextafter(s[rank - 1], np.inf))


# ---------------------------------------------------------------- probabilities

def paired_auc_difference(labels, scores_a, scores_b, *, resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """AUC(a) - AUC(b) on the same inputs, with a 95 % interval from resampling the inputs (paired).

    ``share_le_0`` is the share of resamples in which ``a`` did not beat ``b``.
    """
    y, pa = _as_arrays(labels, scores_a)
    _, pb = _as_arrays(labels, scores_b)
    if not _two_classes(y):
        raise ValueError("a paired AUC difference needs both labels")
    rng, diffs = np.random.default_rng(seed), []
    for _ in range(resamples):
        i = rng.integers(0, len(y), len(y))
        if _two_classes(y[i]):
            diffs.append(roc_auc(y[i], pa[i]) - roc_auc(y[i], pb[i]))
    d = np.array(diffs)
    return {"difference": round(roc_auc(y, pa) - roc_auc(y, pb), 4),
            "ci95": [round(float(v), 4) for v in np.percentile(d, [2.5, 97.5])],
            "share_le_0": round(float((d <= 0).mean()), 4), "resamples": int(len(d))}


def log_loss(labels, probs, eps: float = LOG_LOSS_EPS) -> float | None:
    """Mean binary cross-entropy with ``p`` clipped to ``[eps, 1 - eps]`` (DFDC's rule)."""
    y, p = _as_arrays(labels, probs)
    if not y.size:
        return None
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def accuracy(labels, probs, threshold: float = 0.5) -> float | None:
    """Fraction right when fake means ``p >= threshold``."""
    y, p = _as_arrays(labels, probs)
    if not y.size:
        return None
    return float(np.mean((p >= threshold).astype(np.int64) == y))


def balanced_accuracy(labels, probs, threshold: float = 0.5) -> float | None:
    """Mean of the recall on fakes and on reals; with one class, that class's recall."""
    y, p = _as_arrays(labels, probs)
    if not y.size:
        return None
    pred = (p >= threshold).astype(np.int64)
    recalls = [float(np.mean(pred[y == c] == c)) for c in (0, 1) if np.any(y == c)]
    return float(np.mean(recalls))


def expected_calibration_error(labels, probs, n_bins: int = ECE_BINS) -> float | None:
    """ECE of the fake probability: ``sum_b |B|/N * |mean(p in B) - fraction fake in B|``.

    ``n_bins`` equal-width bins over [0, 1]; the last bin includes 1.0. (This is the
    reliability-diagram form for a binary detector; it is not the top-label variant.)
    """
    y, p = _as_arrays(labels, probs)
    if not y.size:
        return None
    p = np.clip(p, 0.0, 1.0)
    b = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    total = 0.0
    for k in np.unique(b):
        m = b == k
        total += m.sum() / y.size * abs(p[m].mean() - y[m].mean())
    return float(total)


def calibration_curve(labels, probs, n_bins: int = ECE_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean predicted p, fraction fake, count)`` per non-empty bin, for reliability plots."""
    y, p = _as_arrays(labels, probs)
    b = np.minimum((np.clip(p, 0, 1) * n_bins).astype(np.int64), n_bins - 1)
    ks = np.unique(b)
    return (np.array([p[b == k].mean() for k in ks]), np.array([y[b == k].mean() for k in ks]),
            np.array([(b == k).sum() for k in ks]))


# ---------------------------------------------------------------- temperature scaling

def sigmoid(z) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


def logit(p, eps: float = 1e-7) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(p) - np.log1p(-p)


def scaled_nll(logits, labels, temperature: float) -> float:
    """Mean binary NLL of ``sigmoid(logits / temperature)`` (computed stably from logits)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    y = np.asarray(labels, dtype=np.float64)
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def fit_temperature(logits, labels, *, t_min: float = 0.01, t_max: float = 100.0, iters: int = 90) -> float:
    """Temperature ``T`` minimising the NLL of ``sigmoid(logit / T)`` (Guo et al. 2017).

    Golden-section search on ``log T`` in ``[t_min, t_max]``: the NLL is convex in ``1/T``,
    so it is unimodal in ``log T``. Returns 1.0 when there is nothing to fit (no samples,
    one class, or all logits zero).
    """
    y, z = _as_arrays(labels, logits)
    if not _two_classes(y) or not np.any(z != 0) or not np.all(np.isfinite(z)):
        return 1.0
    f = lambda u: scaled_nll(z, y, math.exp(u))  # noqa: E731
    a, b = math.log(t_min), math.log(t_max)
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iters):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    return float(math.exp((a + b) / 2))


# ---------------------------------------------------------------- all at once

def compute_metrics(labels, probs, threshold: float = 0.5, n_bins: int = ECE_BINS) -> dict[str, Any]:
    """Every headline metric of one set of predictions, as a JSON-able dict.

    Keys: ``auc, log_loss, eer, ap, accuracy, balanced_accuracy, n, accuracy_at_eer,
    balanced_accuracy_at_eer, eer_threshold, ece, note``. Undefined values are ``None``
    and ``note`` says why (e.g. one class only); non-finite probabilities are dropped.
    """
    y, p = _as_arrays(labels, probs)
    notes = []
    finite = np.isfinite(p)
    if not finite.all():
        notes.append(f"{int((~finite).sum())} non-finite probabilities dropped")
        y, p = y[finite], p[finite]
    out: dict[str, Any] = {k: None for k in METRIC_KEYS}
    out["n"] = int(y.size)
    if not y.size:
        out["note"] = "; ".join(notes + ["no samples"])
        return out
    if not _two_classes(y):
        cls = "fake" if y[0] == 1 else "real"
        notes.append(f"only {cls} samples: auc, ap and eer are undefined")
    out["auc"] = roc_auc(y, p)
    out["log_loss"] = log_loss(y, p)
    out["eer"], out["eer_threshold"] = equal_error_rate(y, p)
    out["ap"] = average_precision(y, p)
    out["accuracy"] = accuracy(y, p, threshold)
    out["balanced_accuracy"] = balanced_accuracy(y, p, threshold)
    if out["eer_threshold"] is not None:
        out["accuracy_at_eer"] = accuracy(y, p, out["eer_threshold"])
        out["balanced_accuracy_at_eer"] = balanced_accuracy(y, p, out["eer_threshold"])
    out["ece"] = expected_calibration_error(y, p, n_bins)
    out["note"] = "; ".join(notes) or None
    return out


# ---------------------------------------------------------------- frame -> video

def aggregate_probs(probs, rule: str = "mean") -> float:
    """Combine the frame probabilities of one face (same formulas as the Detector).

    ``mean``; ``median`` (robust to a few outlier frames); ``logit_mean`` (mean in logit
    space); ``top_half`` (mean of the most suspicious half).
    """
    if rule not in AGGREGATION_RULES:
        raise ValueError(f"unknown aggregation rule {rule!r}; use one of {AGGREGATION_RULES}")
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-6, 1 - 1e-6)
    if rule == "median":
        return float(np.median(p))
    if rule == "logit_mean":
        return float(sigmoid(np.log(p / (1 - p)).mean()))
    if rule == "top_half":
        return float(np.sort(p)[len(p) // 2:].mean())
    return float(p.mean())


def aggregate_by_video(
    video_ids: Sequence[Hashable],
    probs: Sequence[float],
    labels: Sequence[int] | None = None,
    rule: str = "mean",
    tracks: Sequence[Hashable] | None = None,
) -> tuple[list[Hashable], np.ndarray, np.ndarray | None]:
    """Frame probabilities -> one probability per video, in first-seen order.

    Without ``tracks``, all frames of a video are combined with ``rule``. With ``tracks``
    (a face-track id per frame), each face is combined with ``rule`` and the video takes
    the most suspicious face (the max), as :class:`fak3zer0.api.Detector` does.
    Returns ``(video_ids, video_probs, video_labels or None)``; a video's label is the max
    of its frames' labels.
    """
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    n = p.size
    if len(video_ids) != n or (labels is not None and len(labels) != n) or (tracks is not None and len(tracks) != n):
        raise ValueError("video_ids, probs, labels and tracks must have the same length")
    faces: dict[Hashable, dict[Hashable, list[int]]] = {}
    for i, v in enumerate(video_ids):
        faces.setdefault(v, {}).setdefault(tracks[i] if tracks is not None else 0, []).append(i)
    ids = list(faces)
    vp = np.array([max(aggregate_probs(p[idx], rule) for idx in faces[v].values()) for v in ids])
    vl = None
    if labels is not None:
        lab = np.asarray(labels).reshape(-1)
        vl = np.array([int(max(lab[i] for idx in faces[v].values() for i in idx)) for v in ids], dtype=np.int64)
    return ids, vp, vl
