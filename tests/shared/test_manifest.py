"""load_manifest: schema_version is checked; default_beta is optional and checked."""

from __future__ import annotations

import json

import pytest

from shared.manifest import SCHEMA_VERSION, ManifestError, load_manifest


def write_manifest(folder, **overrides) -> None:
    raw = {
        "schema_version": SCHEMA_VERSION,
        "model_id": "m1",
        "task": "classification",
        "dataset": "fashion-mnist",
        "input": {"shape": [1, 28, 28], "mean": [0.286], "std": [0.353]},
        "class_names": [str(i) for i in range(10)],
        "d": 16,
        "quantizer": None,
        "variable_length": False,
        "beta_range": [1e-5, 1.0],
        "snr_db_range": [0.0, 25.0],
    }
    raw.update(overrides)
    raw = {key: value for key, value in raw.items() if value is not ...}
    (folder / "manifest.json").write_text(json.dumps(raw))


def test_current_schema_loads_without_default_beta(tmp_path) -> None:
    write_manifest(tmp_path)
    manifest = load_manifest(tmp_path)
    assert manifest.model_id == "m1" and manifest.default_beta is None


@pytest.mark.parametrize("version", [SCHEMA_VERSION + 1, 0, "1", ...])
def test_unknown_schema_version_is_refused(tmp_path, version) -> None:
    write_manifest(tmp_path, schema_version=version)
    with pytest.raises(ManifestError, match=f"this code reads schema_version {SCHEMA_VERSION}"):
        load_manifest(tmp_path)


def test_default_beta_is_read_and_checked(tmp_path) -> None:
    write_manifest(tmp_path, default_beta=0.01)
    assert load_manifest(tmp_path).default_beta == 0.01
    write_manifest(tmp_path, default_beta=5.0)
    with pytest.raises(ManifestError, match="default_beta"):
        load_manifest(tmp_path)


def test_start_beta_is_1e3_in_range_else_the_geometric_middle() -> None:
    from shared.manifest import start_beta

    assert start_beta((1e-5, 1.0)) == 1e-3
    assert start_beta([1e-2, 1.0]) == pytest.approx(0.1)
