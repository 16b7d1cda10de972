"""Classification figures of three-class calls, computed by scikit-learn from the predictions.

Macro averages run over all three classes (down, neutral, up) with ``zero_division=0``: a class
the model never predicts scores precision 0, the pessimistic reading, rather than dropping out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from sensequant_assets.features.labels import CLASS_NAMES, DOWN, NEUTRAL, UP

CLASSES = (DOWN, NEUTRAL, UP)


def classification_report(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro and per-class precision/recall/F1 and the confusion matrix.

    Confusion matrix rows are the true class, columns the predicted one.
    """
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=list(CLASSES), zero_division=0
    )
    return {
        "samples": len(truth),
        "accuracy": float(accuracy_score(truth, predicted)),
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
        "confusion_matrix": confusion_matrix(truth, predicted, labels=list(CLASSES)).tolist(),
    }
