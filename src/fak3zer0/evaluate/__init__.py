"""Evaluation: metrics (numpy only), scoring of face-crop caches, reports, calibration.

``fak3zer0.evaluate.metrics`` imports nothing heavier than numpy; the runner functions
below import torch when first used.
"""
from __future__ import annotations

from fak3zer0.evaluate.metrics import (  # noqa: F401
    aggregate_by_video,
    aggregate_probs,
    average_precision,
    compute_metrics,
    equal_error_rate,
    expected_calibration_error,
    false_alarm_threshold,
    fit_temperature,
    log_loss,
    pr_curve,
    reals_needed,
    roc_auc,
    roc_curve,
)

_LAZY = {"evaluate", "evaluate_from_cli", "cross_dataset_matrix", "calibrate", "report_markdown", "matrix_markdown"}


def __getattr__(name: str):
    if name in _LAZY:
        from fak3zer0.evaluate import runner

        return getattr(runner, name)
    raise AttributeError(name)
