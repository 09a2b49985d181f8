"""The in-memory data set every loader returns (trainer.data, trainer.ranging)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Dataset:
    name: str
    task: str  # "classification" | "regression"
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_shape: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...] = ()
    target_mean: float = 0.0
    target_std: float = 1.0

    @property
    def n_outputs(self) -> int:
        return len(self.class_names) if self.task == "classification" else 1
