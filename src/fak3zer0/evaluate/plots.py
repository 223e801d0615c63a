"""PNG plots (matplotlib, Agg backend): ROC, PR, score histograms, training curves."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray, float | None]], path: str | Path,
             title: str = "ROC") -> Path:
    """``curves``: label -> (fpr, tpr, auc)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, (fpr, tpr, auc) in curves.items():
        if len(fpr) and np.all(np.isfinite(fpr)) and np.all(np.isfinite(tpr)):
            ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})" if auc is not None else name)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
    ax.set(xlabel="false positive rate (reals called fake)", ylabel="true positive rate (fakes caught)",
           xlim=(0, 1), ylim=(0, 1.01), title=title)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_pr(curves: dict[str, tuple[np.ndarray, np.ndarray, float | None]], path: str | Path,
            title: str = "Precision-recall (fake = positive)") -> Path:
    """``curves``: label -> (precision, recall, ap)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, (prec, rec, ap) in curves.items():
        if len(rec) and np.all(np.isfinite(rec)):
            ax.step(rec, prec, where="post", label=f"{name} (AP {ap:.3f})" if ap is not None else name)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01), title=title)
    ax.legend(loc="lower left", fontsize=8)
    return _save(fig, path)


def plot_histograms(panels: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path,
                    threshold: float | None = 0.5) -> Path:
    """One panel per label: fake-probability histograms of reals and fakes. ``panels``: name -> (labels, probs)."""
    plt = _plt()
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5 * max(1, len(panels)), 3.6), squeeze=False)
    bins = np.linspace(0, 1, 26)
    for ax, (name, (y, p)) in zip(axes[0], panels.items()):
        y, p = np.asarray(y), np.asarray(p)
        ax.hist(p[y == 0], bins=bins, alpha=0.6, label=f"real (n={int((y == 0).sum())})", color="tab:blue")
        ax.hist(p[y == 1], bins=bins, alpha=0.6, label=f"fake (n={int((y == 1).sum())})", color="tab:red")
        if threshold is not None:
            ax.axvline(threshold, c="k", ls="--", lw=0.8)
        ax.set(xlabel="fake probability", ylabel="count", title=name)
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_curves(x: Sequence[float], series: dict[str, Sequence[float | None]], path: str | Path,
                ylabel: str, title: str = "", xlabel: str = "epoch") -> Path:
    """Training curves (or any series over ``x``; whole-number ticks when ``xlabel`` is "epoch");
    ``None`` values are left out."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, ys in series.items():
        pts = [(a, b) for a, b in zip(x, ys) if b is not None and np.isfinite(b)]
        if pts:
            ax.plot([a for a, _ in pts], [b for _, b in pts], marker="o", ms=3, label=name)
    from matplotlib.ticker import MaxNLocator

    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if xlabel == "epoch":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)
