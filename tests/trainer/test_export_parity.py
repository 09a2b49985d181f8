"""Every model family exports to one ONNX file that ONNX Runtime runs like PyTorch:
Gaussian head, quantized, variable length (VL-VFE), CNN with per-channel and eq. (14)
kernel-block gates. Small models trained for a few steps on real Fashion-MNIST."""

from dataclasses import replace

import pytest

from trainer.data import load_dataset
from trainer.export import write_artifacts
from trainer.parity import parity
from trainer.train import TrainConfig, train

FAMILIES = {
    "gaussian-mlp": {},
    "quantized-2bit": {"bits": 2},
    "variable-length": {
        "head": "deterministic", "prior": "log-uniform", "variable_length": True,
        "snr_range": (10.0, 25.0),
    },
    "variable-length-hyper-beta-4bit": {
        "head": "deterministic", "prior": "log-uniform", "variable_length": True, "bits": 4,
    },
    "cnn-channel-gates": {"arch": "cnn"},
    "cnn-kernel-gates": {"arch": "cnn", "conv_gate": "kernel"},
}  # fmt: skip


@pytest.fixture(scope="module")
def fashion_small():
    data = load_dataset("fashion-mnist")
    return replace(data, x_test=data.x_test[:600], y_test=data.y_test[:600])


@pytest.mark.parametrize("family", FAMILIES)
def test_onnx_export_matches_pytorch(family, fashion_small, tmp_path):
    cfg = TrainConfig.from_options(
        epochs=1, train_subset=512, batch_size=128, hidden=64, progress=False, **FAMILIES[family]
    )
    model, _ = train(cfg, fashion_small)
    write_artifacts(model, fashion_small, cfg.trained_beta_range, cfg.trained_snr_range, tmp_path)
    for beta, snr_db in ((1e-3, 12.0), (1e-1, 24.0)):
        result = parity(model, tmp_path, fashion_small, beta=beta, snr_db=snr_db)
        assert result["n_active_equal"] == 1.0, result
        if "level_index_agreement" in result:
            assert result["level_index_agreement"] >= 0.999, result
        else:
            assert result["symbol_agreement"] >= 0.999, result
        assert abs(result["metric_gap"]) <= 0.005, result


def test_manifest_names_the_start_up_beta(fashion_small, tmp_path):
    """The exporter writes default_beta (the device reads it): the chosen one, else the
    shared rule's; one outside the trained range is refused before anything is written."""
    from device.knobs import default_knobs
    from shared.manifest import load_manifest, start_beta

    cfg = TrainConfig.from_options(epochs=1, train_subset=256, batch_size=128, hidden=32,
                                   progress=False)  # fmt: skip
    model, _ = train(cfg, fashion_small)
    lo, hi = cfg.trained_beta_range
    write_artifacts(model, fashion_small, (lo, hi), cfg.trained_snr_range, tmp_path / "a")
    manifest = load_manifest(tmp_path / "a")
    assert manifest.default_beta == start_beta((lo, hi))
    chosen = (lo * hi) ** 0.5
    write_artifacts(model, fashion_small, (lo, hi), cfg.trained_snr_range, tmp_path / "b",
                    default_beta=chosen)  # fmt: skip
    assert default_knobs(load_manifest(tmp_path / "b")).beta == pytest.approx(chosen)
    with pytest.raises(ValueError, match="outside the trained beta range"):
        write_artifacts(model, fashion_small, (lo, hi), cfg.trained_snr_range, tmp_path / "c",
                        default_beta=hi * 10)  # fmt: skip
    assert not (tmp_path / "c").exists()
