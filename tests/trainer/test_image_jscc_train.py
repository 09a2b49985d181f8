"""Training the image JSCC models, and the image experiment on a CIFAR-10-format folder."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shared.image_metrics import psnr_db
from trainer.data import load_images
from trainer.image_jscc import ImageTrainConfig, evaluate_image_point, train_image_jscc

ROOT = Path(__file__).resolve().parents[2]


def test_cifar_folder_loads_as_images_in_0_1(cifar_folder):
    x_train, x_test = load_images("cifar10", cifar_folder)
    assert x_train.shape == (120, 3, 32, 32) and x_test.shape == (24, 3, 32, 32)
    with open(cifar_folder / "test_batch", "rb") as fh:
        first = pickle.load(fh)[b"data"][0].reshape(3, 32, 32)
    assert np.array_equal(x_test[0], first.astype(np.float32) / 255)
    with pytest.raises(ValueError, match="image task"):
        load_images("ranging-wifi")


def test_training_beats_the_mean_image():
    x_train, x_test = load_images("fashion-mnist")
    cfg = ImageTrainConfig(filters=8, epochs=1, train_subset=1500, snr_range=(10.0, 10.0),
                           batch_size=16, lr=3e-3,
                           adaptation="none", progress=False)  # fmt: skip
    model, log = train_image_jscc(cfg, x_train)
    mean = np.repeat(x_train[:1500].mean(axis=0, keepdims=True), 200, axis=0)
    baseline = float(np.mean(psnr_db(x_test[:200], mean)))
    point = evaluate_image_point(model, x_test[:200], 10.0, draws=1)
    assert point["psnr_db"] > baseline + 2.0
    assert 0.0 < point["ssim"] <= 1.0
    assert log["epochs"][0]["mse"] > 0


def test_fading_training_and_evaluation_run_on_the_fading_channel():
    from shared.fading import Fading
    from trainer.image_jscc import evaluate_image_fading

    x_train, x_test = load_images("fashion-mnist")
    cfg = ImageTrainConfig(filters=4, epochs=1, train_subset=256, batch_size=32,
                           progress=False, fading="rayleigh")  # fmt: skip
    model, _ = train_image_jscc(cfg, x_train)
    rayleigh = evaluate_image_fading(model, x_test[:64], 10.0, Fading("rayleigh"), (0.0, 20.0),
                                     draws=1)  # fmt: skip
    again = evaluate_image_fading(model, x_test[:64], 10.0, Fading("rayleigh"), (0.0, 20.0),
                                  draws=1)  # fmt: skip
    assert rayleigh == again  # seeded
    awgn = evaluate_image_point(model, x_test[:64], 10.0, draws=1)
    assert rayleigh["psnr_db"] != awgn["psnr_db"]
    with pytest.raises(ValueError, match="fading"):
        ImageTrainConfig(fading="nakagami")


def test_image_experiment_runs_on_a_cifar_format_folder(tmp_path, cifar_folder):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "trainer", "experiment", "image-jscc", "--quick", "--task",
           "cifar10", "--data-dir", str(cifar_folder), "--out", str(out)]  # fmt: skip
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=300)
    results = json.loads((out / "results.json").read_text())
    assert results["task"] == "cifar10" and results["padding"] == "none"
    entry = results["ratios"]["0.08333"]
    assert entry["symbols"] == 512  # c = 8 at 8×8: the paper's R = 1/12 on 32×32×3
    assert len(entry["hyper"]["psnr_db"]) == len(results["test_snr_db"])
    for plot in results["plots"]:
        assert (out / plot).stat().st_size > 1000


def test_exported_image_model_matches_torch_on_the_device_and_the_edge(tmp_path):
    import torch

    from device.encoder import OnnxEncoder
    from edge_server.decoder import DecoderRuntime
    from shared.manifest import load_manifest
    from shared.nn.image_jscc import ImageJSCC
    from trainer.image_export import write_image_artifacts

    torch.manual_seed(0)
    model = ImageJSCC(filters=8, channels=2, adaptation="hyper").eval()
    with torch.no_grad():  # SNR layers away from the identity, so the SNR input matters
        for name, p in model.named_parameters():
            if name.endswith("omega"):
                p.normal_(0, 0.5)
    write_image_artifacts(model, "fashion-mnist", (0.0, 20.0), tmp_path)
    manifest = load_manifest(tmp_path)
    assert manifest.task == "reconstruction" and manifest.power == "average"
    assert manifest.d == 128 and manifest.beta_range == (1.0, 1.0)
    x = np.random.default_rng(0).random((16, 1, 28, 28), dtype=np.float32)
    encoder = OnnxEncoder(tmp_path)
    for snr in (0.0, 17.0):
        encoded = encoder.encode(x, 1.0, snr)
        with torch.no_grad():
            ref = model.encoder(torch.from_numpy(x), torch.full((16, 1), snr)).numpy()
        assert np.max(np.abs(encoded.symbols - ref)) < 1e-4
        assert (encoded.n_active == 128).all()
    decoder = DecoderRuntime(tmp_path, device="cpu")
    assert type(decoder.model) is ImageJSCC and decoder.d == 128
    y = encoded.symbols + 0.1
    with torch.no_grad():
        ref = model.decoder(torch.from_numpy(y), torch.full((16, 1), 17.0)).flatten(1).numpy()
    assert np.array_equal(decoder(y, np.ones(16), np.full(16, 17.0)), ref)
