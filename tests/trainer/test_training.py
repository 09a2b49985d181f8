import json
import math

import numpy as np
import pytest
import torch

from shared.manifest import content_hash, load_manifest
from shared.nn.zoo import load_model
from trainer.data import load_dataset
from trainer.evaluate import evaluate_point
from trainer.parity import parity
from trainer.train import TrainConfig, sample_beta, sample_snr, train


@pytest.fixture(scope="module")
def fashion():
    return load_dataset("fashion-mnist")


def test_beta_and_snr_sampling_ranges():
    gen = torch.Generator().manual_seed(0)
    cfg = TrainConfig(beta_range=(1e-5, 1.0))
    beta = sample_beta(100_000, cfg, gen)
    assert beta.min() >= 1e-5 and beta.max() <= 1.0
    # log-uniform: half the mass below the geometric midpoint 10^-2.5
    assert (beta < 10**-2.5).float().mean().item() == pytest.approx(0.5, abs=0.01)
    uniform = sample_beta(100_000, TrainConfig(beta_dist="uniform"), gen)
    assert uniform.mean().item() == pytest.approx(0.5, abs=0.01)
    assert torch.all(sample_beta(3, TrainConfig(fixed_beta=0.1), gen) == 0.1)
    snr = sample_snr(100_000, TrainConfig(snr_range=(0, 25), snr_margin_db=0.0), gen)
    assert snr.min() >= 0 and snr.max() <= 25 and snr.mean().item() == pytest.approx(12.5, abs=0.1)
    with pytest.raises(ValueError):
        TrainConfig(beta_dist="normal")


def test_paper_objective_draws_one_uniform_beta_per_minibatch():
    """Hyper-VIB eq. (15)-(17), Alg. 1: β^(t) ~ U[a, b], then a minibatch for it, no weight."""
    import argparse

    from trainer.__main__ import add_train_flags, train_config_from

    cfg = TrainConfig.from_options(objective="paper", beta_range=(0.2, 0.6))
    assert (cfg.beta_dist, cfg.loss_weight) == ("uniform", "none")
    gen = torch.Generator().manual_seed(0)
    batches = torch.stack([sample_beta(128, cfg, gen)[:, 0] for _ in range(4000)])
    assert torch.all(batches == batches[:, :1])  # one β for every example of a minibatch
    draws = batches[:, 0]
    assert draws.min() >= 0.2 and draws.max() <= 0.6
    assert draws.mean().item() == pytest.approx(0.4, abs=0.005)  # uniform, not log-uniform
    assert draws.std().item() == pytest.approx(0.4 / 12**0.5, abs=0.005)
    with pytest.raises(ValueError, match="eq. \\(15\\)"):
        TrainConfig.from_options(objective="paper", loss_weight="inverse-d-beta")
    parser = argparse.ArgumentParser()
    add_train_flags(parser)
    from_cli = train_config_from(parser.parse_args(["--objective", "paper"]))
    assert (from_cli.objective, from_cli.beta_dist, from_cli.loss_weight) == (
        "paper", "uniform", "none",
    )  # fmt: skip
    default = train_config_from(parser.parse_args([]))
    assert (default.beta_dist, default.loss_weight) == ("log-uniform", "inverse-d-beta")


def test_beta_per_minibatch_keeps_the_log_uniform_draw_and_the_weight():
    """beta_per="minibatch" (Alg. 1's one β^(t) per minibatch) with the weighted objective:
    one β per batch, still log-uniform on [1e-4, 1] (mean of ln β = ln 1e-2 ± 0.1)."""
    import argparse

    from trainer.__main__ import add_train_flags, train_config_from

    cfg = TrainConfig.from_options(beta_range=(1e-4, 1.0), beta_per="minibatch")
    assert cfg.loss_weight == "inverse-d-beta"
    gen = torch.Generator().manual_seed(0)
    batches = torch.stack([sample_beta(64, cfg, gen)[:, 0] for _ in range(3000)])
    assert torch.all(batches == batches[:, :1])
    assert torch.log(batches[:, 0]).mean().item() == pytest.approx(math.log(1e-2), abs=0.1)
    per_example = sample_beta(64, TrainConfig(beta_range=(1e-4, 1.0)), gen)
    assert per_example.unique().numel() == 64
    with pytest.raises(ValueError, match="beta_per"):
        TrainConfig(beta_per="epoch")
    parser = argparse.ArgumentParser()
    add_train_flags(parser)
    assert train_config_from(parser.parse_args(["--beta-per", "minibatch"])).beta_per == (
        "minibatch"
    )


def test_the_beta_gate_scale_flag_reaches_every_beta_gate():
    """--beta-gate-scale sets the model field beyond TrainConfig.from_options' options; the
    default keeps Hyper-VIB eq. (13) as written (scale 1), and a scale ≤ 0 is refused."""
    import argparse

    from shared.nn.hyper import BetaGate
    from shared.nn.zoo import build
    from trainer.__main__ import add_train_flags, train_config_from

    parser = argparse.ArgumentParser()
    add_train_flags(parser)
    cfg = train_config_from(parser.parse_args(["--beta-gate-scale", "10", "--arch", "cnn"]))
    gates = [m for m in build(cfg.model).modules() if isinstance(m, BetaGate)]
    assert len(gates) > 4 and {g.scale for g in gates} == {10.0}
    assert train_config_from(parser.parse_args([])).model.beta_gate_scale == 1.0
    with pytest.raises(ValueError, match="beta_gate_scale must be > 0"):
        train_config_from(parser.parse_args(["--beta-gate-scale", "0"]))


def test_snr_margin_widens_the_training_draws_only():
    gen = torch.Generator().manual_seed(0)
    cfg = TrainConfig(snr_range=(0, 25), snr_margin_db=3.0)
    snr = sample_snr(100_000, cfg, gen)
    assert snr.min() < -2.9 and snr.max() > 27.9 and snr.min() >= -3 and snr.max() <= 28
    assert cfg.trained_snr_range == (0, 25)  # what the manifest promises is unchanged


def test_quick_does_not_override_explicit_flags():
    import argparse

    from trainer.__main__ import add_train_flags, train_config_from

    parser = argparse.ArgumentParser()
    add_train_flags(parser)
    assert train_config_from(parser.parse_args(["--quick", "--epochs", "12"])).epochs == 12
    assert train_config_from(parser.parse_args(["--quick"])).epochs == 4
    assert train_config_from(parser.parse_args([])).epochs == 30
    quick_lr = train_config_from(parser.parse_args(["--quick", "--lr", "5e-4"]))
    assert quick_lr.lr == 5e-4 and quick_lr.epochs == 4


def test_training_is_deterministic_under_a_seed(fashion):
    cfg = TrainConfig.from_options(
        epochs=1, train_subset=1024, batch_size=256, progress=False, hidden=64
    )
    _, log_a = train(cfg, fashion)
    _, log_b = train(cfg, fashion)
    assert log_a["epochs"][0]["loss"] == log_b["epochs"][0]["loss"]


def test_baselines_switch_the_gates_off(fashion):
    cfg = TrainConfig.from_options(
        epochs=1, train_subset=256, progress=False, fixed_beta=1e-3, fixed_snr=10.0, hidden=32
    )
    model, _ = train(cfg, fashion)
    names = [n for n, _ in model.named_parameters()]
    assert not any("beta_gate" in n or "snr_scale" in n for n in names)


def test_quick_model_beats_80_percent(quick_model_dir, fashion):
    model = load_model(quick_model_dir)
    point = evaluate_point(model, fashion, beta=1e-4, snr_db=20.0, draws=5)
    assert point["value"] > 0.80, point
    assert point["bits"] == point["n_active"] * 4  # 4-bit quantized quick model


def test_evaluation_reports_the_rate_beside_accuracy(quick_model_dir, fashion):
    """The KL (nats) falls as β rises, and the sampled-z score is reported."""
    model = load_model(quick_model_dir)
    low = evaluate_point(model, fashion, beta=1e-5, snr_db=20.0, draws=1, n=2000)
    high = evaluate_point(model, fashion, beta=1.0, snr_db=20.0, draws=1, n=2000)
    # QML-IB eq. (14) carries d·log K - H(Z̃) >= 0 (up to 177 nats at 4 bits, d = 64), so the
    # 4-bit model's bound falls by less than the unquantized KL would
    assert high["kl"] < 0.8 * low["kl"], (low, high)
    assert 0.5 < low["value_sampled"] <= 1.0


def test_onnx_parity_on_the_test_set(quick_model_dir, fashion):
    model = load_model(quick_model_dir)
    result = parity(model, quick_model_dir, fashion, beta=1e-4, snr_db=20.0)
    assert result["level_index_agreement"] >= 0.9999, result
    assert abs(result["metric_gap"]) <= 0.001, result
    assert result["n_active_equal"] == 1.0


def test_manifest_describes_the_artifacts(quick_model_dir):
    import onnx

    manifest = load_manifest(quick_model_dir)
    assert manifest.model_id == content_hash(
        [quick_model_dir / "encoder.onnx", quick_model_dir / "decoder.pt"]
    )
    assert manifest.bits == 4 and len(manifest.levels) == 16 and len(manifest.breakpoints) == 15
    assert np.all(np.diff(manifest.levels) > 0) and manifest.levels[0] == pytest.approx(-1)
    assert manifest.beta_range == (1e-5, 1.0) and manifest.snr_db_range == (0.0, 25.0)
    assert manifest.class_names[9] == "Ankle boot"
    proto = onnx.load(str(quick_model_dir / "encoder.onnx"))
    assert [i.name for i in proto.graph.input] == ["x", "beta", "snr_db"]
    assert [o.name for o in proto.graph.output] == ["symbols", "n_active", "levels"]
    assert any(op.domain in ("", "ai.onnx") and op.version == 18 for op in proto.opset_import)
    assert not list(quick_model_dir.glob("*.data"))  # one file, no external data
    log = json.loads((quick_model_dir / "train_log.json").read_text())
    assert log["train_wall_s"] > 0 and len(log["epochs"]) == 4


def test_cli_reports_a_bad_range_clearly(tmp_path, capsys):
    from trainer.__main__ import main

    code = main(["train", "--beta-min", "0", "--out", str(tmp_path / "m")])
    assert code == 2 and "beta range" in capsys.readouterr().err


def test_edge_runtime_loads_quantized_decoder(quick_model_dir, fashion):
    """decoder.pt alone (no encoder/quantizer weights) serves the edge, same outputs."""
    from edge_server.decoder import DecoderRuntime

    decoder = DecoderRuntime(quick_model_dir, device="cpu")
    model = load_model(quick_model_dir)
    y = np.random.default_rng(0).normal(size=(8, decoder.config.d)).astype(np.float32)
    beta, snr = np.full(8, 1e-3, np.float32), np.full(8, 10.0, np.float32)
    probs = decoder(y, beta, snr)
    with torch.no_grad():
        ref = torch.softmax(
            model.decode(torch.from_numpy(y), torch.full((8, 1), 1e-3), torch.full((8, 1), 10.0)), 1
        )
    np.testing.assert_allclose(probs, ref.numpy(), atol=1e-6)
    assert probs.shape == (8, 10)


def test_train_config_nests_the_model_config_and_round_trips():
    from dataclasses import asdict

    cfg = TrainConfig.from_options(bits=4, arch="cnn", epochs=7, fixed_beta=1e-2)
    assert cfg.model.bits == 4 and cfg.model.arch == "cnn" and cfg.epochs == 7
    assert TrainConfig.from_dict(asdict(cfg)) == cfg
    # a flat train_config, as logs written before the nesting hold it
    flat = {"task": "fashion-mnist", "bits": 2, "epochs": 3, "beta_range": [1e-4, 1e-1]}
    old = TrainConfig.from_dict(flat)
    assert old.model.bits == 2 and old.beta_range == (1e-4, 1e-1)
    with pytest.raises(ValueError, match="prior"):
        TrainConfig.from_options(prior="laplace")


def test_fading_training_meets_the_fading_channel_and_is_seeded(fashion, monkeypatch):
    """--fading: the forward gets the block-fading channel, the encoder the SNR it is told
    and the decoder the receiver's instantaneous SNR (clipped to the training draws' range)."""
    from shared.nn.model import CoInferenceModel

    seen = []
    forward = CoInferenceModel.forward

    def spy(self, x, beta, snr_db, sample=None, channel=None, decoder_snr_db=None):
        seen.append((snr_db.clone(), decoder_snr_db, channel))
        return forward(self, x, beta, snr_db, sample, channel, decoder_snr_db)

    monkeypatch.setattr(CoInferenceModel, "forward", spy)
    options = dict(epochs=1, train_subset=512, batch_size=256, progress=False, hidden=64,
                   fixed_beta=1e-3, fading="rayleigh", fading_feedback="instantaneous")  # fmt: skip
    _, log_a = train(TrainConfig.from_options(**options), fashion)
    told, heard, channel = seen[0]
    assert channel is not None and heard is not None
    assert torch.equal(told, heard)  # told the instantaneous SNR = what the receiver sees
    assert told.min() >= -3.0 and told.max() <= 28.0  # clipped to [0 - 3, 25 + 3] dB
    assert told.std() > 3.0  # |h|² spreads the SNR by several dB
    _, log_b = train(TrainConfig.from_options(**options), fashion)
    assert log_a["epochs"][0]["loss"] == log_b["epochs"][0]["loss"]
    seen.clear()
    train(TrainConfig.from_options(**{**options, "fading_feedback": "average"}), fashion)
    told, heard, _ = seen[0]
    assert not torch.equal(told, heard)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fading", "rician", "--k-factor", "-2"], "--k-factor"),
        (["--fading", "rayleigh", "--coherence", "0"], "--coherence"),
        (["--fading", "awgn"], "--fading"),
        (["--fading", "rayleigh", "--fading-feedback", "stale"], "--fading-feedback"),
    ],
)
def test_cli_fading_usage_errors_name_the_flag(tmp_path, capsys, argv, message):
    from trainer.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", *argv, "--out", str(tmp_path / "m")])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_fading_options_that_do_not_fit_are_refused(tmp_path, capsys):
    from trainer.__main__ import main

    assert main(["train", "--fading", "rayleigh", "--k-factor", "3", "--out", str(tmp_path)]) == 2
    assert "rician" in capsys.readouterr().err
    with pytest.raises(ValueError, match="single-device"):
        TrainConfig.from_options(fading="rayleigh", n_links=2)


def test_beta_draws_give_each_part_of_a_minibatch_its_own_beta():
    """Hyper-VIB Alg. 1 with T = 4: four draws of β per update, each shared by a quarter of
    the minibatch (example i takes draw i mod T); T = 1 is one β for the whole minibatch."""
    import argparse

    from trainer.__main__ import add_train_flags, train_config_from

    cfg = TrainConfig.from_options(objective="paper", beta_range=(0.2, 0.6), beta_draws=4)
    gen = torch.Generator().manual_seed(0)
    betas = sample_beta(128, cfg, gen)[:, 0].view(32, 4)
    assert torch.all(betas == betas[:1]) and betas[0].unique().numel() == 4
    assert betas.min() >= 0.2 and betas.max() <= 0.6
    short = sample_beta(10, cfg, gen)[:, 0]  # a last minibatch of 10: parts of 3, 3, 2, 2
    assert torch.equal(short[4:8], short[:4]) and torch.equal(short[8:], short[:2])
    assert short[:4].unique().numel() == 4
    with pytest.raises(ValueError, match="beta_draws"):
        TrainConfig(beta_draws=4)  # β per example: nothing to split
    with pytest.raises(ValueError, match="beta_draws"):
        TrainConfig(beta_per="minibatch", beta_draws=0)
    parser = argparse.ArgumentParser()
    add_train_flags(parser)
    args = parser.parse_args(["--beta-per", "minibatch", "--beta-draws", "8"])
    assert train_config_from(args).beta_draws == 8


def test_noise_variance_uniform_draw_follows_vl_vfe():
    """snr_dist="uniform-noise-var": σ² uniform over [10^(-25/10), 10^(-10/10)] (VL-VFE §IV-B),
    so P(SNR < 15 dB) = (0.1 - 10^-1.5) / (0.1 - 10^-2.5) ≈ 0.70; uniform in dB gives 1/3."""
    gen = torch.Generator().manual_seed(0)
    cfg = TrainConfig(snr_range=(10, 25), snr_margin_db=0.0, snr_dist="uniform-noise-var")
    snr = sample_snr(200_000, cfg, gen)[:, 0]
    assert snr.min() >= 10 - 1e-4 and snr.max() <= 25 + 1e-4
    expected = (0.1 - 10**-1.5) / (0.1 - 10**-2.5)
    assert (snr < 15).float().mean().item() == pytest.approx(expected, abs=0.005)
    noise_var = 10 ** (-snr / 10)
    assert noise_var.mean().item() == pytest.approx((0.1 + 10**-2.5) / 2, rel=0.01)
    in_db = sample_snr(200_000, TrainConfig(snr_range=(10, 25), snr_margin_db=0.0), gen)
    assert (in_db < 15).float().mean().item() == pytest.approx(1 / 3, abs=0.005)
    with pytest.raises(ValueError, match="snr_dist"):
        TrainConfig(snr_dist="log")


def test_rate_scale_inverse_sigma_weighs_the_rate_by_the_snr():
    """rate_scale="inverse-sigma" (VL-VFE's code): β·0.1/σ, σ = 10^(-SNR/20): 0.316 β at
    10 dB, β at 20 dB, 1.78 β at 25 dB; "none" leaves β as it is."""
    from trainer.train import rate_scale

    snr = torch.tensor([[10.0], [20.0], [25.0]])
    scaled = rate_scale(TrainConfig(rate_scale="inverse-sigma"), snr)
    torch.testing.assert_close(scaled, torch.tensor([[0.1 / 0.1**0.5], [1.0], [0.1 / 10**-1.25]]))
    assert rate_scale(TrainConfig(), snr) == 1.0
    with pytest.raises(ValueError, match="rate_scale"):
        TrainConfig(rate_scale="sigma")


def test_kl_delay_trains_cross_entropy_only_then_ramps_the_rate(fashion):
    """kl_delay_epochs (VL-VFE's code: 5 epochs without the rate term, then a β ramp): the
    logged loss is the distortion alone through the delay, and carries β·KL after it."""
    from trainer.train import rate_ramp

    assert [rate_ramp(t, 2.0, 4.0) for t in (0.5, 2.0, 3.0, 6.0, 9.0)] == [0, 0, 0.25, 1, 1]
    assert rate_ramp(1.5, 1.0, 0.0) == 1.0 and rate_ramp(0.5, 0.0, 2.0) == 0.25
    cfg = TrainConfig.from_options(
        epochs=2, train_subset=512, fixed_beta=0.05, fixed_snr=20.0, loss_weight="none",
        kl_delay_epochs=1.0, progress=False,
    )  # fmt: skip
    _, log = train(cfg, fashion)
    first, second = log["epochs"]
    assert first["loss"] == pytest.approx(first["distortion"], rel=1e-6)
    assert second["loss"] > second["distortion"] + 0.01
    with pytest.raises(ValueError, match="kl_delay_epochs"):
        TrainConfig(kl_delay_epochs=-1)
