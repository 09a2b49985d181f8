"""The vl-vfe-threshold experiment: γ0 chosen on training images beside the paper's γ0."""

from __future__ import annotations

import itertools
import json

import pytest

from trainer.experiments import vl_vfe_threshold as threshold_exp
from trainer.experiments.vl_vfe_threshold import margins, pick


def test_pick_takes_the_largest_threshold_within_the_tolerance_at_every_psnr():
    """Costs worked by hand against the first row: 0.1 has its worst PSNR 0.15 points down
    (within 0.2), 0.2 is 0.5 down at 20 dB (out), 0.3 is 0.18 down at most (in, though 0.2 is
    out): the largest within wins."""
    tried = [
        {"gamma0": 0.05, "accuracy": [0.850, 0.880, 0.885]},
        {"gamma0": 0.1, "accuracy": [0.8485, 0.880, 0.886]},
        {"gamma0": 0.2, "accuracy": [0.850, 0.879, 0.880]},
        {"gamma0": 0.3, "accuracy": [0.8482, 0.879, 0.885]},
        {"gamma0": 0.5, "accuracy": [0.840, 0.870, 0.880]},
    ]
    assert pick(tried, tolerance=0.2) == 0.3
    assert [round(r["cost_points"], 6) for r in tried] == [0.0, 0.15, 0.5, 0.18, 1.0]
    assert pick(tried, tolerance=0.1) == 0.05  # the paper's γ0 always qualifies
    assert pick(tried, tolerance=1.01) == 0.5


def _point(psnr, n_active, accuracy):
    return {"psnr_db": psnr, "n_active": n_active, "latency_ms": n_active / 9.6,
            "accuracy": accuracy}  # fmt: skip


def test_margins_by_hand():
    """DeepJSCC 36 symbols (3.75 ms); the rule's m = ∞ row sends 40 / 30 / 20 symbols at
    15 / 20 / 25 dB: the worst latency gap above 10 dB is (40 − 36)/9.6 ms; the 10 dB point
    (64 symbols) does not count. Errors: m = ∞ above m = 8 by 0.4 points at 20 dB."""
    psnrs = [10.0, 15.0, 20.0, 25.0]

    def rows(symbols, accuracies):
        return [_point(*row) for row in zip(psnrs, symbols, accuracies, strict=True)]

    dj = rows((36,) * 4, (0.86, 0.87, 0.88, 0.88))
    inf = rows((64, 40, 30, 20), (0.85, 0.872, 0.876, 0.88))
    m8 = rows((64, 45, 33, 22), (0.85, 0.872, 0.88, 0.88))
    m0 = rows((64,) * 4, (0.85, 0.87, 0.88, 0.881))
    results = {"psnr_db": psnrs, "dynamic": {
        "deepjscc": dj, "r, m=inf": inf, "r, m=8": m8, "r, m=0": m0}}  # fmt: skip
    m = margins(results, "r")
    assert m["latency_gap"] == pytest.approx(4 / 9.6)
    assert m["accuracy_gap"] == pytest.approx(-0.4)  # 0.876 − 0.88 at 20 dB
    assert m["pilots_latency_gap"] == pytest.approx(28 / 9.6)  # m = 0 sends 64 everywhere
    assert m["inf_minus_8"] == pytest.approx(0.4)
    assert m["8_minus_0"] == pytest.approx(0.1)  # 25 dB: m = 0 0.881, m = 8 0.88


def test_quick_run_keeps_the_paper_rows_and_a_larger_threshold_sends_no_more(tmp_path, one_thread):
    """End to end on a small run: the paper-γ0 rows are what vl-vfe's own dynamic rows give
    for the same model at γ0 = 0.05 (the model's trained threshold is back afterwards); a
    larger γ0 never sends more symbols; the chosen γ0 is within the tolerance on training
    images and every larger candidate is not."""
    from trainer.experiments.common import RunSettings, run_experiment

    settings = RunSettings(quick=True, epochs=1, train_subset=2000, n_eval=500, draws=1,
                           progress=False)  # fmt: skip
    run_experiment(threshold_exp, settings, tmp_path, command="test")
    stored = json.loads((tmp_path / "results.json").read_text())
    dynamic = stored["dynamic"]
    assert set(dynamic) == {"deepjscc"} | {
        f"{rule}, m={m}" for rule in threshold_exp.RULES for m in ("0", "8", "inf")
    }
    tried = stored["choice"]["tried"]
    assert [row["gamma0"] for row in tried] == list(threshold_exp.CANDIDATES)
    for earlier, later in itertools.pairwise(tried):
        assert all(b <= a for a, b in zip(earlier["n_active"], later["n_active"], strict=True))
    chosen = stored["choice"]["gamma0"]
    assert chosen in threshold_exp.CANDIDATES
    for row in tried:
        if row["gamma0"] == chosen:
            assert row["cost_points"] <= threshold_exp.TOLERANCE
        if row["gamma0"] > chosen:
            assert row["cost_points"] > threshold_exp.TOLERANCE
    paper_inf = dynamic["paper γ0, m=inf"]
    chosen_inf = dynamic["γ0 chosen, m=inf"]
    assert all(c["n_active"] <= p["n_active"] for p, c in zip(paper_inf, chosen_inf, strict=True))
    assert len(stored["checks"]) == 10
    for name in stored["plots"]:
        assert (tmp_path / name).stat().st_size > 1000


def test_threshold_is_restored_and_the_paper_rows_match_vl_vfe(one_thread):
    """threshold() moves only the device's γ0 and puts the trained one back, even after an
    error; at γ0 = 0.05 the evaluation is vl-vfe's own."""
    from trainer.experiments import vl_vfe
    from trainer.experiments import vl_vfe_parts as parts
    from trainer.experiments.common import RunSettings, load_data
    from trainer.experiments.grid import train_grid

    settings = RunSettings(quick=True, epochs=1, train_subset=1000, n_eval=300, draws=1,
                           progress=False)  # fmt: skip
    data = load_data("fashion-mnist", None, 0)
    plan = threshold_exp.plan_for("fashion-mnist")
    jobs = parts.jobs("fashion-mnist", plan, settings.epochs)
    assert [j.label for j in jobs] == ["vl-vfe/0.01", "deepjscc/20/36"]
    trained = dict(zip((j.label for j in jobs), train_grid(jobs, settings), strict=True))
    model = trained["vl-vfe/0.01"][0]
    assert model.config.gamma0 == parts.GAMMA0
    with pytest.raises(RuntimeError), threshold_exp.threshold(model, 0.5):
        assert model.config.gamma0 == 0.5
        raise RuntimeError
    assert model.config.gamma0 == parts.GAMMA0
    points = vl_vfe.Evaluator(trained, data, 1, 300)
    direct = points.point("vl-vfe/0.01", 0.01, 15.0)
    with threshold_exp.threshold(model, 1e9):  # nothing passes: no symbol is sent
        pruned = points.point("vl-vfe/0.01", 0.01, 15.0)
    assert direct["n_active"] > 0 and pruned["n_active"] == 0
    assert points.point("vl-vfe/0.01", 0.01, 15.0) == direct
