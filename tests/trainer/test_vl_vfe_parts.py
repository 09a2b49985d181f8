"""VL-VFE App. C's pilot estimate of σ² and Table III's bit budget at the eq. (13) capacity."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shared.channel import pilot_noise_var_estimates
from shared.link.modes import bit_budget, ideal_airtime_s
from trainer.experiments import vl_vfe_parts as parts
from trainer.experiments.vl_vfe_parts import budget_dims, quant_sizes

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("psnr_db", [10.0, 20.0])
def test_known_pilot_estimate_has_the_chi_square_mean_and_variance(psnr_db):
    """σ̂² = (1/m)·Σ(y − p)² ~ σ²·χ²(m)/m: mean σ², variance 2σ⁴/m (m = 8)."""
    rng = np.random.default_rng(0)
    sigma2 = 10 ** (-psnr_db / 10)
    estimates = pilot_noise_var_estimates(psnr_db, 8, 200_000, rng)
    assert estimates.mean() == pytest.approx(sigma2, rel=0.01)
    assert estimates.var() == pytest.approx(2 * sigma2**2 / 8, rel=0.03)


def test_the_printed_estimator_is_biased_by_m_over_m_minus_1():
    """Appendix C prints 1/(m−1) but known pilots leave all m degrees of freedom: the mean is
    σ²·8/7 with 8 pilots, not σ²."""
    rng = np.random.default_rng(1)
    estimates = pilot_noise_var_estimates(10.0, 8, 200_000, rng, "as-printed")
    assert estimates.mean() == pytest.approx(0.1 * 8 / 7, rel=0.01)
    with pytest.raises(ValueError, match="estimator"):
        pilot_noise_var_estimates(10.0, 8, 10, rng, "guess")
    with pytest.raises(ValueError, match="pilots"):
        pilot_noise_var_estimates(10.0, 1, 10, rng)


def test_bit_budget_by_hand():
    """3.25 ms at 9,600 Baud = 31.2 real symbols; × C from eq. (13) worked by hand
    (1.339341 at 10 dB, 2.545824 at 20 dB): 41.79 -> 41 bits, 79.43 -> 79 bits."""
    assert bit_budget(3.25e-3, 10.0) == 41
    assert bit_budget(3.25e-3, 20.0) == 79
    assert budget_dims() == 31  # analog symbols within the budget
    with pytest.raises(ValueError):
        bit_budget(-1.0, 10.0)


@pytest.mark.parametrize("psnr_db", [10.0, 15.0, 20.0, 25.0])
def test_quantization_sizes_meet_the_latency_budget(psnr_db):
    budget = bit_budget(3.25e-3, psnr_db)
    assert ideal_airtime_s(budget, psnr_db) <= 3.25e-3 < ideal_airtime_s(budget + 1, psnr_db)
    sized = quant_sizes({psnr_db: (2, 4)})
    assert {b for _, b in sized} == {2, 4}
    for n, bits in sized:  # the largest n that fits: one more feature breaks the budget
        assert ideal_airtime_s(n * bits, psnr_db) <= 3.25e-3
        assert ideal_airtime_s((n + 1) * bits, psnr_db) > 3.25e-3


def test_vl_vfe_quick_runs_end_to_end(tmp_path, one_thread):
    """The experiment's quick plan on 1,000 images: every Table III cell picks a point within
    the budget, the pilots' rows and the plots exist."""
    from trainer.experiments import vl_vfe
    from trainer.experiments.common import RunSettings, run_experiment

    settings = RunSettings(quick=True, epochs=1, train_subset=1000, n_eval=300, draws=1,
                           progress=False)  # fmt: skip
    run_experiment(vl_vfe, settings, tmp_path, command="test")
    stored = json.loads((tmp_path / "results.json").read_text())
    assert set(stored["table_iii"]) == {"10", "20"}
    for psnr, row in stored["table_iii"].items():
        for method in ("deepjscc", "quantization"):
            assert row[method]["latency_ms"] <= 3.25
        quant = row["quantization"]
        assert quant["bits"] <= bit_budget(3.25e-3, float(psnr))
    assert set(stored["dynamic"]) == {
        "deepjscc", "m=0", "m=8", "m=inf", "m=inf, uniform-dB, β=0.01",
    }  # fmt: skip
    variant = stored["models"]["vl-vfe uniform-dB/0.01"]
    assert variant["params"] == stored["models"]["vl-vfe/0.01"]["params"]
    # the prefix sweep: k caps what is sent, so no point sends more than k symbols, and
    # the uncapped k = 64 is the m = ∞ point itself
    for psnr, points in stored["prefix_sweep"].items():
        assert all(q["n_active"] <= q["cap"] for q in points)
        full = next(q for q in stored["dynamic"]["m=inf"] if q["psnr_db"] == float(psnr))
        assert points[-1]["cap"] == 64 and points[-1]["accuracy"] == full["accuracy"]
    m0 = stored["dynamic"]["m=0"]  # told 10 dB at every PSNR: the same prefix everywhere
    assert len({q["n_active"] for q in m0}) == 1 and m0[0]["told_psnr_db_mean"] == 10.0
    assert len(stored["checks"]) == 9
    for name in stored["plots"]:
        assert (tmp_path / name).stat().st_size > 1000


def test_dynamic_models_train_as_the_authors_code_and_the_variant_with_its_own_draws():
    """The dynamic VL-VFE trains with the authors' recipe (σ² uniform over 10-25 dB, §IV-B;
    β·0.1/σ; 5 cross-entropy-only epochs, then a 10-epoch β ramp) for 200 epochs where the
    static models train 60; the uniform-dB variant is the same model and schedule with the
    PSNR uniform in dB, β flat and a 1-epoch ramp; Fig. 6's DeepJSCC trains as long as the
    dynamic model, Table III's as long as the static ones; the longest jobs come first."""
    variants = (("uniform-dB", 3e-3, parts.UNIFORM_DB),)
    plan = {"betas": {20.0: (1e-2,)}, "gaussian_betas": (), "dynamic_betas": (1e-2,),
            "deepjscc": {20.0: (31, 36)}, "quant_bits": {},
            "dynamic_variants": variants}  # fmt: skip
    job_list = parts.jobs("fashion-mnist", plan, 60)
    by_label = {job.label: job for job in job_list}
    headline, variant = by_label["vl-vfe/0.01"].options, by_label["vl-vfe uniform-dB/0.003"].options
    assert variant["fixed_beta"] == 3e-3 and headline["fixed_beta"] == 1e-2
    assert (headline["snr_dist"], headline["snr_margin_db"], headline["rate_scale"]) == (
        "uniform-noise-var", 0.0, "inverse-sigma",
    )  # fmt: skip
    assert (headline["kl_delay_epochs"], headline["kl_warmup_epochs"]) == (5.0, 10.0)
    assert (variant["snr_dist"], variant["snr_margin_db"], variant["rate_scale"]) == (
        "uniform-db", 3.0, "none",
    )  # fmt: skip
    assert (variant["kl_delay_epochs"], variant["kl_warmup_epochs"]) == (0.0, 1.0)
    rest = {k: v for k, v in variant.items() if k not in {*parts.UNIFORM_DB, "fixed_beta"}}
    assert rest == {k: v for k, v in headline.items() if k not in {*parts.UNIFORM_DB, "fixed_beta"}}
    epochs = {job.label: job.epochs for job in job_list}
    assert epochs["vl-vfe/0.01"] == epochs["vl-vfe uniform-dB/0.003"] == 200
    assert epochs["deepjscc/20/36"] == 200 and epochs["deepjscc/20/31"] is None  # the run's 60
    assert epochs["proposed/20/0.01"] is None
    assert [job.epochs for job in job_list] == [200, 200, 200, None, None]
    assert parts.dynamic_epochs(6) == 20 and parts.dynamic_epochs(1) == 3


def test_vl_vfe_runs_on_a_cifar_format_folder_with_table_ii_networks(tmp_path, cifar_folder):
    """``--task cifar10 --data-dir`` (for users who have CIFAR-10, the paper's second task):
    Table II's convolutional device network and §V-C's DeepJSCC n = 16 as Fig. 6's baseline."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "trainer", "experiment", "vl-vfe", "--quick", "--epochs", "1",
           "--task", "cifar10", "--data-dir", str(cifar_folder), "--n-eval", "24",
           "--out", str(out)]  # fmt: skip
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=600)
    results = json.loads((out / "results.json").read_text())
    assert results["task"] == "cifar10" and results["arch"] == "cnn"
    assert results["deepjscc_dynamic"] == "deepjscc/20/16"
    assert len(results["checks"]) == 9
    for name in results["plots"]:
        assert (out / name).stat().st_size > 1000


def test_pilot_rows_evaluate_a_test_set_smaller_than_n_eval():
    """--n-eval past the end of a small test set (a CIFAR-10 folder with a few batches): the
    pilots' PSNR estimates are drawn for the examples there are, not for --n-eval of them."""
    import torch

    from shared.nn.model import CoInferenceModel, ModelConfig
    from trainer.dataset import Dataset
    from trainer.experiments import vl_vfe

    torch.manual_seed(0)
    model = CoInferenceModel(ModelConfig(arch="fc", head="deterministic", d=16, beta_gate=False,
                                         snr_scale=False, prior="log-uniform",
                                         variable_length=True)).eval()  # fmt: skip
    rng = np.random.default_rng(0)
    images = rng.random((12, 1, 28, 28), dtype=np.float32)
    data = Dataset("small", "classification", images, np.arange(12) % 10, images[:7],
                   np.arange(7) % 10, (1, 28, 28), (0.0,), (1.0,))  # fmt: skip
    trained = {"vl-vfe/0.01": (model, {}), "deepjscc/10/16": (model, {})}
    points = vl_vfe.Evaluator(trained, data, draws=1, n=500)
    dynamic = vl_vfe.dynamic_points(points, {"dynamic_betas": (0.01,)}, "deepjscc/10/16", 0)
    assert [len(dynamic[k]) for k in ("m=0", "m=8", "m=inf")] == [len(parts.PSNRS)] * 3
    assert all(0.0 <= q["accuracy"] <= 1.0 for q in dynamic["m=8"])
