"""Classification figures of three-class calls: the one implementation, for every model.

Teachers, the student, walk-forward validation, its baselines and the stress tests all score
their calls here, so an ``f1_macro`` means the same thing wherever it is published (the
briefing puts the teachers' and the student's side by side).

Conventions:

* **Macro averages run over all three classes** (down, neutral, up), whichever of them occur:
  the unweighted mean of the three per-class values.
* **Zero division scores 0.** A class never predicted has precision 0, a class absent from the
  truth has recall 0, and F1 = 2·TP / (support + predicted) is 0 for a class absent from both.
  Such a class therefore pulls every macro average down rather than dropping out of it: the
  pessimistic reading (scikit-learn's ``labels=[0, 1, 2], zero_division=0``).
* ``per_class`` and the confusion matrix (rows true, columns predicted) always list all three
  classes; accuracy is the share of calls equal to the truth.
* ``log_loss`` scores probabilities against the true class; like scikit-learn it clips them to
  [eps, 1 − eps] (float64 eps) and does not renormalise rows.

The figures equal scikit-learn's (``precision_recall_fscore_support`` with the arguments
above, ``accuracy_score``, ``log_loss``, ``confusion_matrix``) bit for bit, as
``test_classification.py`` checks; they are written out in numpy because scikit-learn's input
validation costs more than a teacher's LightGBM fit on its small validation set.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sensequant_assets.features.labels import CLASS_NAMES, DOWN, NEUTRAL, UP

CLASSES = (DOWN, NEUTRAL, UP)


def classification_report(truth: Any, predicted: Any) -> dict[str, Any]:
    """Accuracy, macro and per-class precision/recall/F1 and the confusion matrix of the calls.

    ``truth`` and ``predicted`` are class ids (:data:`CLASSES`), one per sample, at least one.
    """
    truth = _class_ids(truth, "labels")
    predicted = _class_ids(predicted, "predictions")
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} labels but {len(predicted)} predictions")
    if len(truth) == 0:
        raise ValueError("classification metrics need at least one sample")
    n_classes = len(CLASSES)
    matrix = np.bincount(n_classes * truth + predicted, minlength=n_classes**2).reshape(
        n_classes, n_classes
    )
    true_positive = np.diag(matrix)
    support = matrix.sum(axis=1)
    calls = matrix.sum(axis=0)
    precision = _divide_or_zero(true_positive, calls)
    recall = _divide_or_zero(true_positive, support)
    f1 = _divide_or_zero(2.0 * true_positive, support + calls)
    return {
        "samples": len(truth),
        "accuracy": float((truth == predicted).mean()),
        "precision_macro": float(precision.mean()),
        "recall_macro": float(recall.mean()),
        "f1_macro": float(f1.mean()),
        "per_class": {
            CLASS_NAMES[c]: {
                "precision": float(precision[k]),
                "recall": float(recall[k]),
                "f1": float(f1[k]),
                "support": int(support[k]),
            }
            for k, c in enumerate(CLASSES)
        },
        "confusion_matrix": matrix.tolist(),
    }


def log_loss(truth: Any, probabilities: Any) -> float:
    """Mean negative log probability of the true class; ``probabilities`` in class order."""
    truth = _class_ids(truth, "labels")
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape != (len(truth), len(CLASSES)):
        raise ValueError(
            f"probabilities of shape {probabilities.shape} do not match {len(truth)} labels "
            f"and {len(CLASSES)} classes"
        )
    if len(truth) == 0:
        raise ValueError("classification metrics need at least one sample")
    if probabilities.min() < 0 or probabilities.max() > 1:
        raise ValueError("probabilities must lie in [0, 1]")
    eps = np.finfo(np.float64).eps
    clipped = np.clip(probabilities, eps, 1 - eps)
    return float(-np.log(clipped[np.arange(len(truth)), truth]).mean())


def probability_report(truth: Any, probabilities: Any) -> dict[str, Any]:
    """:func:`classification_report` of the argmax calls (ties go to the first class), with
    the :func:`log_loss` of the probabilities themselves; no ``samples`` count."""
    loss = log_loss(truth, probabilities)
    report = classification_report(truth, np.asarray(probabilities).argmax(axis=1))
    return {
        "accuracy": report["accuracy"],
        "precision_macro": report["precision_macro"],
        "recall_macro": report["recall_macro"],
        "f1_macro": report["f1_macro"],
        "log_loss": loss,
        "per_class": report["per_class"],
        "confusion_matrix": report["confusion_matrix"],
    }


def _class_ids(values: Any, what: str) -> np.ndarray:
    array = np.asarray(values)
    whole = array.dtype.kind in "iu" or (
        array.dtype.kind == "f"
        and bool(np.isfinite(array).all())
        and bool((array == np.round(array)).all())
    )
    ids = array.astype(np.int64) if whole else None
    if array.ndim != 1 or ids is None or not np.isin(ids, CLASSES).all():
        shown = sorted(set(array.ravel().tolist()), key=str)
        raise ValueError(f"{what} must be class ids {CLASSES}, got {shown}")
    return ids


def _divide_or_zero(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` in float64, 0 where the denominator is 0 (zero_division=0)."""
    safe = np.where(denominator == 0, 1, denominator).astype(np.float64)
    return np.where(denominator == 0, 0.0, numerator.astype(np.float64) / safe)
