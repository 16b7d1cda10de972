"""Small stored teachers for the candidate, reward-loop and search tests.

``write_teacher`` stores a 3-class booster the way ``train_teacher`` stores one (model file,
hash and run metadata), without training on market data: what the distillation reads.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import lightgbm as lgb
import numpy as np

from sensequant_assets.features import feature_columns
from sensequant_assets.training.teacher_record import TeacherRun
from sensequant_assets.training.windows import TrainingWindow

NAMES = list(feature_columns())


def write_teacher(directory: Path, label: str, seed: int = 0) -> None:
    """A 5-round booster on random rows (``seed``) stored under ``directory`` for ``label``."""
    rng = np.random.default_rng(seed)
    data = lgb.Dataset(
        rng.normal(size=(300, len(NAMES))), rng.integers(0, 3, 300), feature_name=NAMES
    )
    params = {"objective": "multiclass", "num_class": 3, "verbose": -1, "num_threads": 1}
    text = lgb.train(params, data, num_boost_round=5).model_to_string()
    window = TrainingWindow.from_label(label)
    run = TeacherRun(
        label, window.symbol, window.start, window.end, "completed", features=NAMES,
        model_file="model.txt", sha256=hashlib.sha256(text.encode()).hexdigest(),
        metrics=dict.fromkeys(("accuracy", "precision_macro", "recall_macro", "f1_macro"), 0.4),
    )  # fmt: skip
    directory.mkdir(parents=True)
    (directory / "model.txt").write_text(text)
    (directory / "metadata.json").write_text(json.dumps(run.to_dict()))
