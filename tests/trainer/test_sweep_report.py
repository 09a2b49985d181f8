"""The β sweep's rate plot (trainer/experiments/sweep_report.py): Hyper-VIB Fig. 4 read along
the rate axis, z sampled and μ sent on one plot."""

from __future__ import annotations

from trainer.experiments import sweep_report
from trainer.experiments.sweep_report import MU_SENT, plot_rate_tradeoff, rate_curve


def entry(kl, mu, z):
    return {"kl_nats": kl, "values": mu, "values_sampled": z}


def test_rate_curve_orders_points_by_rate_and_keeps_each_pair():
    e = entry([50.0, 2.0, 10.0], [0.9, 0.5, 0.8], [0.85, 0.4, 0.7])
    assert rate_curve(e) == ([2.0, 10.0, 50.0], [0.4, 0.7, 0.85])
    assert rate_curve(e, "values") == ([2.0, 10.0, 50.0], [0.5, 0.8, 0.9])


def test_the_rate_plot_has_z_sampled_for_every_model_and_mu_sent_dashed(tmp_path, monkeypatch):
    drawn = {}
    real = sweep_report.plot_lines

    def spy(path, series, *args, **kwargs):
        drawn.update(series=series, styles=kwargs["styles"], logx=kwargs["logx"])
        return real(path, series, *args, **kwargs)

    monkeypatch.setattr(sweep_report, "plot_lines", spy)
    sweep = {"hyper": entry([5.0, 50.0], [0.88, 0.9], [0.8, 0.89]),
             "grid": entry([0.1, 120.0], [0.1, 0.9], [0.1, 0.9])}  # fmt: skip
    variant = entry([2.0, 9.0], [0.7, 0.79], [0.6, 0.78])
    trivial = (([0.1, 150.0], [0.5, 0.5]), {"ls": ":"})
    path = plot_rate_tradeoff(tmp_path / "rate.png", sweep, "w", {"paper": variant},
                              "accuracy", "t", extra={"trivial": trivial})  # fmt: skip
    assert path.stat().st_size > 1000 and drawn["logx"]
    series, styles = drawn["series"], drawn["styles"]
    assert series["Hyper-VIB, w (headline)"] == ([5.0, 50.0], [0.8, 0.89])
    assert series["Hyper-VIB, paper"] == ([2.0, 9.0], [0.6, 0.78])
    assert series[MU_SENT[0]] == ([5.0, 50.0], [0.88, 0.9])
    assert series[MU_SENT[1]] == ([0.1, 120.0], [0.1, 0.9])
    assert {name for name, s in styles.items() if s.get("ls") == "--"} == set(MU_SENT)
    assert series["trivial"] == ([0.1, 150.0], [0.5, 0.5]) and styles["trivial"] == {"ls": ":"}
