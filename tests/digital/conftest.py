"""A real entropy-coded quick model: artifacts/test-quick fine-tuned with its code length
(python -m trainer digital, ~15 s; tests/quick_models.py), rebuilt when the sources or the
base model change."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import quick_models


@pytest.fixture(scope="session")
def quick_digital_model_dir() -> Path:
    return quick_models.quick_digital()
