"""The one classification-metrics module: scikit-learn's figures, macro over all three classes."""

import numpy as np
import pytest
from sklearn import metrics as sk

from sensequant_assets.classification import classification_report, log_loss, probability_report

LABELS = [0, 1, 2]


def _sklearn_report(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, object]:
    precision, recall, f1, _ = sk.precision_recall_fscore_support(
        y_true, y_pred, labels=LABELS, average="macro", zero_division=0
    )
    per_p, per_r, per_f, support = sk.precision_recall_fscore_support(
        y_true, y_pred, labels=LABELS, average=None, zero_division=0
    )
    return {
        "samples": len(y_true),
        "accuracy": sk.accuracy_score(y_true, y_pred),
        "precision_macro": precision,
        "recall_macro": recall,
        "f1_macro": f1,
        "per_class": {
            name: {
                "precision": per_p[i],
                "recall": per_r[i],
                "f1": per_f[i],
                "support": support[i],
            }
            for i, name in enumerate(("down", "neutral", "up"))
        },
        "confusion_matrix": sk.confusion_matrix(y_true, y_pred, labels=LABELS).tolist(),
    }


def _metric_cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(11)
    eye = np.eye(3)
    cases = [
        ("single sample", np.array([2]), np.array([[0.2, 0.3, 0.5]])),
        ("single sample, wrong", np.array([0]), np.array([[0.1, 0.1, 0.8]])),
        ("perfect", np.array([0, 1, 2, 2, 1]), eye[[0, 1, 2, 2, 1]]),
        ("perfect, one class", np.array([1, 1, 1]), eye[[1, 1, 1]]),
        ("certainly wrong", np.array([0, 1, 2]), eye[[2, 0, 1]]),
        ("class missing from truth", np.array([0, 0, 2, 2]), eye[[0, 1, 2, 1]] * 0.7 + 0.1),
        ("class missing from predictions", np.array([0, 1, 2, 1]), eye[[0, 0, 2, 2]]),
        ("class missing from both", np.array([0, 2, 2, 0]), eye[[2, 2, 0, 0]] * 0.5 + 0.5 / 3),
        ("ties go to the first class", np.array([1, 2]), np.full((2, 3), 1 / 3)),
    ]
    for i in range(300):
        n = int(rng.integers(1, 60))
        classes = rng.choice(3, size=int(rng.integers(1, 4)), replace=False)
        y_true = rng.choice(classes, size=n)
        probabilities = rng.dirichlet(np.full(3, rng.uniform(0.05, 3.0)), size=n)
        if i % 5 == 0:  # confident predictions drawn from a subset of classes
            predicted = rng.choice(rng.choice(3, size=2, replace=False), size=n)
            probabilities = 0.98 * eye[predicted] + 0.02 * probabilities
        cases.append((f"random {i}", y_true, probabilities))
    return cases


@pytest.mark.parametrize("name, y_true, probabilities", _metric_cases())
def test_metrics_equal_sklearn_exactly(
    name: str, y_true: np.ndarray, probabilities: np.ndarray
) -> None:
    y_pred = probabilities.argmax(axis=1)
    expected = _sklearn_report(y_true, y_pred)
    assert classification_report(y_true, y_pred) == expected
    del expected["samples"]
    expected["log_loss"] = sk.log_loss(y_true, probabilities, labels=LABELS)
    assert probability_report(y_true, probabilities) == expected
    assert log_loss(y_true, probabilities) == expected["log_loss"]


def test_macro_averages_count_an_absent_class_as_zero() -> None:
    # Neutral occurs in neither the truth nor the calls, which are all right: down and up
    # score 1, neutral 0 (zero division), so every macro average is 2/3, not 1 (the average
    # over the classes present would give 1).
    truth = np.array([0, 0, 2, 2, 2])
    report = classification_report(truth, truth)
    assert report["accuracy"] == 1.0
    for key in ("precision_macro", "recall_macro", "f1_macro"):
        assert report[key] == pytest.approx(2 / 3, abs=1e-15)
    assert report["per_class"]["neutral"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
    }
    present = sk.precision_recall_fscore_support(truth, truth, average="macro", zero_division=0)
    assert present[:3] == (1.0, 1.0, 1.0)  # scikit-learn's default label set: what we do not do
    # A class present but never called: precision 0 (not undefined), recall 0, F1 0.
    called = np.array([0, 0, 0, 2, 2])
    truth = np.array([0, 1, 1, 2, 2])
    report = classification_report(truth, called)
    assert report["per_class"]["neutral"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 2,
    }
    assert report["precision_macro"] == pytest.approx((1 / 3 + 0 + 1) / 3, abs=1e-15)
    assert report["recall_macro"] == pytest.approx((1 + 0 + 1) / 3, abs=1e-15)


def test_labels_may_be_whole_floats_but_nothing_else() -> None:
    report = classification_report(np.array([0.0, 2.0]), np.array([0, 1]))
    assert report["confusion_matrix"] == [[1, 0, 0], [0, 0, 0], [0, 1, 0]]
    for bad in ([0.5, 1.0], [np.nan, 1.0], [3, 1], [-1, 1]):
        with pytest.raises(ValueError, match="class ids"):
            classification_report(np.array(bad), np.array([0, 1]))
    with pytest.raises(ValueError, match="2 labels but 1 predictions"):
        classification_report(np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError, match="at least one sample"):
        classification_report(np.array([], dtype=int), np.array([], dtype=int))


def test_metrics_reject_inputs_sklearn_would_reject() -> None:
    with pytest.raises(ValueError, match="class ids"):
        probability_report(np.array([3]), np.array([[0.2, 0.3, 0.5]]))
    with pytest.raises(ValueError, match="shape"):
        probability_report(np.array([0, 1]), np.array([[0.2, 0.3, 0.5]]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        probability_report(np.array([0]), np.array([[1.2, -0.1, -0.1]]))
